//! Data: CSV/TSV loading, label mapping, cleaning, stopwords, stemming,
//! stratified split, balancing, vocabulary, encoding, batching and the dataset cache.
//!
//! `prepare` is the pipeline: read file -> (cache hit? done) -> parse rows -> tokenise
//! (in parallel) -> split -> vocabulary from train -> encode -> write cache.
//! Balancing and batching happen per trial, on the prepared dataset.

mod balance;
mod batch;
pub mod cache;
mod clean;
mod load;
mod split;
pub mod stopwords;
mod vocab;

pub use balance::{balance, Balanced};
pub use batch::{batches, Batch};
pub use clean::Preprocessor;
pub use load::{data_path, load, parse, Table};
pub use split::split_indices;
pub use vocab::{Encoder, Vocab, PAD_ID, UNK_ID};

use crate::spec::{DataSection, PreprocessSection};
use anyhow::Context;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One split, encoded. `ids[i]` has at least one id and at most max_len.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Split {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<u32>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A prepared dataset: classes, vocabulary and the three encoded splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Class names; label `k` in a split means `classes[k]`.
    pub classes: Vec<String>,
    pub vocab: Vocab,
    pub train: Split,
    pub valid: Split,
    pub test: Split,
    /// Data rows read from the file (after `limit`).
    pub rows_read: usize,
    /// Rows skipped because their text was empty.
    pub rows_skipped: usize,
}

/// Load, clean, split and encode (cached under `cache_dir` when given, keyed by
/// the data file's bytes and the data + preprocess settings). A cache entry that
/// cannot be read back is ignored and rebuilt.
pub fn prepare(
    data: &DataSection,
    preprocess: &PreprocessSection,
    base_dir: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Dataset> {
    let path = data_path(data, base_dir);
    let bytes = load::read_bytes(&path)?;
    let cache_file = match cache_dir {
        Some(dir) => {
            let stop = stopword_file_bytes(preprocess, base_dir)?;
            let key = cache::key_from_bytes(&bytes, data, preprocess, stop.as_deref())?;
            Some(cache::cache_path(dir, &key))
        }
        None => None,
    };
    if let Some(file) = cache_file.as_deref().filter(|f| f.exists()) {
        if let Ok(ds) = cache::read(file) {
            return Ok(ds);
        }
    }
    let ds = build(&bytes, &path, data, preprocess, base_dir)?;
    if let Some(file) = cache_file {
        cache::write(&file, &ds)?;
    }
    Ok(ds)
}

fn build(
    bytes: &[u8],
    path: &Path,
    data: &DataSection,
    preprocess: &PreprocessSection,
    base_dir: &Path,
) -> anyhow::Result<Dataset> {
    let table = parse(bytes, path, data)?;
    let pre = Preprocessor::new(preprocess, base_dir)?;
    let tokens: Vec<Vec<String>> = table.texts.par_iter().map(|t| pre.tokens(t)).collect();
    let [train, valid, test] = split_indices(&table.labels, table.classes.len(), &data.split)?;
    // A class the test split never shows cannot be scored: say so now, not as NaNs.
    for (class_id, class) in table.classes.iter().enumerate() {
        let in_test = test.iter().any(|&i| table.labels[i] as usize == class_id);
        if !in_test && !test.is_empty() {
            let total = table
                .labels
                .iter()
                .filter(|&&l| l as usize == class_id)
                .count();
            anyhow::bail!(
                "{}: class {class:?} (column {:?}) has no rows in the test split \
                 ({total} row(s) in all, data.split.test = {}); add rows of it, \
                 raise data.split.test or merge it with data.label_map",
                path.display(),
                data.label,
                data.split.test
            );
        }
    }
    let vocab = Vocab::build(
        train.iter().map(|&i| tokens[i].as_slice()),
        preprocess.min_freq,
        preprocess.max_vocab,
    );
    let encoder = vocab.encoder();
    let encode = |rows: &[usize]| Split {
        ids: rows
            .par_iter()
            .map(|&i| encoder.encode(&tokens[i], preprocess.max_len))
            .collect(),
        labels: rows.iter().map(|&i| table.labels[i]).collect(),
    };
    let (train, valid, test) = (encode(&train), encode(&valid), encode(&test));
    drop(encoder);
    Ok(Dataset {
        classes: table.classes,
        vocab,
        train,
        valid,
        test,
        rows_read: table.rows_read,
        rows_skipped: table.rows_skipped,
    })
}

/// Hex sha256 naming the cache entry: the data file's bytes, the data section, the
/// preprocess section without `balance` (applied per trial) and, when `stopwords` is
/// a file, that file's bytes.
pub fn cache_key(
    data: &DataSection,
    pre: &PreprocessSection,
    base_dir: &Path,
) -> anyhow::Result<String> {
    let bytes = load::read_bytes(&data_path(data, base_dir))?;
    let stop = stopword_file_bytes(pre, base_dir)?;
    cache::key_from_bytes(&bytes, data, pre, stop.as_deref())
}

fn stopword_file_bytes(
    pre: &PreprocessSection,
    base_dir: &Path,
) -> anyhow::Result<Option<Vec<u8>>> {
    match pre.stopwords.trim() {
        "" | "none" | "english" => Ok(None),
        p => {
            let path = base_dir.join(p);
            std::fs::read(&path).map(Some).with_context(|| {
                format!(
                    "cannot read the stop-word list {} (preprocess.stopwords)",
                    path.display()
                )
            })
        }
    }
}
