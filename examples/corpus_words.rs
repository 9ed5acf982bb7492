//! Prints the distinct tokens of CSV files after lab's default preprocessing
//! (lowercase, HTML, URLs, punctuation), one per line, with how often each
//! occurs: the word list `data/glove.sh` trims the GloVe vectors to.
//!
//! cargo run --release --example corpus_words -- data/rotten_tomatoes.csv data/imdb.csv.gz

use lab::data::{self, Preprocessor};
use lab::spec::{DataSection, PreprocessSection};
use std::collections::HashMap;
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!files.is_empty(), "usage: corpus_words FILE.csv...");
    let pre = Preprocessor::new(&PreprocessSection::default(), Path::new("."))?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for file in &files {
        let section = DataSection {
            path: file.into(),
            ..DataSection::default()
        };
        let table = data::load(&section, Path::new("."))?;
        for text in &table.texts {
            for token in pre.tokens(text) {
                *counts.entry(token).or_insert(0) += 1;
            }
        }
    }
    let mut words: Vec<(String, u64)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (word, n) in words {
        println!("{word}\t{n}");
    }
    Ok(())
}
