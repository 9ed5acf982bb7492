//! English lemmatisation from WordNet 3.0 (`preprocess.stem = "lemma"`).
//!
//! The table, `data/wordnet-lemma.txt.gz` (built by `data/wordnet_lemma.sh` from
//! Debian's wordnet-base; WordNet 3.0 licence), holds WordNet's exception lists
//! (irregular forms) and the words of its lemma index with their parts of speech. It
//! is compiled into the binary and parsed once, on first use.
//!
//! Tokens carry no part-of-speech tags, so a word is looked up in this order:
//! 1. an irregular form takes the lemma of the first exception list that has it, the
//!    lists tried as verb, noun, adjective, adverb (`was` → `be`, `went` → `go`,
//!    `mice` → `mouse`, `better` → `good`);
//! 2. a word that is itself a noun or a verb in WordNet's index is kept (`acting`,
//!    `watching`, `gas`);
//! 3. WordNet's detachment rules (morphy(7WN)), for nouns, then verbs, then adjectives,
//!    each rule in WordNet's order: the first result that is in the index of that part
//!    of speech is the lemma (`movies` → `movie`, `stories` → `story`, `greater` →
//!    `great`; also participles WordNet lists as adjectives: `loved` → `love`,
//!    `played` → `play`, `amazing` → `amaze`);
//! 4. otherwise the word is kept as it is (`excellent`, `sometimes`).

use super::FastMap;
use std::io::Read;
use std::sync::OnceLock;

pub(crate) static TABLE: &[u8] = include_bytes!("../../data/wordnet-lemma.txt.gz");

const NOUN: u8 = 1;
const VERB: u8 = 2;
const ADJ: u8 = 4;
const ADV: u8 = 8;

/// Detachment rules per part of speech, as morphy(7WN) lists them: (suffix, ending).
const RULES: [(u8, &[(&str, &str)]); 3] = [
    (
        NOUN,
        &[
            ("s", ""),
            ("ses", "s"),
            ("xes", "x"),
            ("zes", "z"),
            ("ches", "ch"),
            ("shes", "sh"),
            ("men", "man"),
            ("ies", "y"),
        ],
    ),
    (
        VERB,
        &[
            ("s", ""),
            ("ies", "y"),
            ("es", "e"),
            ("es", ""),
            ("ed", "e"),
            ("ed", ""),
            ("ing", "e"),
            ("ing", ""),
        ],
    ),
    (ADJ, &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")]),
];

/// WordNet's exception lists and lemma index, ready for lookups.
pub struct Lemmatizer {
    /// Irregular form -> lemma, already resolved by part-of-speech priority.
    exceptions: FastMap<String, String>,
    /// Index word -> parts of speech (bit set of NOUN, VERB, ADJ, ADV).
    index: FastMap<String, u8>,
}

/// The shipped WordNet table, parsed on first use.
pub fn wordnet() -> &'static Lemmatizer {
    static L: OnceLock<Lemmatizer> = OnceLock::new();
    L.get_or_init(|| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(TABLE)
            .read_to_string(&mut text)
            .expect("data/wordnet-lemma.txt.gz is compiled in and valid gzip UTF-8");
        Lemmatizer::parse(&text)
    })
}

impl Lemmatizer {
    /// Parse the table's text (see data/README.md for the format); malformed lines are
    /// skipped (the shipped table has none: a test checks its size).
    pub fn parse(text: &str) -> Lemmatizer {
        let pos_bit = |p: &str| match p {
            "n" => NOUN,
            "v" => VERB,
            "a" => ADJ,
            "r" => ADV,
            _ => 0,
        };
        // Exceptions by part of speech, to resolve in priority order below.
        let mut by_pos: [Vec<(&str, &str)>; 4] = Default::default();
        let mut index = FastMap::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["e", pos, form, lemma] => {
                    let slot = match pos_bit(pos) {
                        VERB => 0,
                        NOUN => 1,
                        ADJ => 2,
                        ADV => 3,
                        _ => continue,
                    };
                    by_pos[slot].push((*form, *lemma));
                }
                ["w", word, tags] => {
                    let bits = tags
                        .chars()
                        .map(|c| pos_bit(c.encode_utf8(&mut [0; 4])))
                        .fold(0, |a, b| a | b);
                    index.insert(word.to_string(), bits);
                }
                _ => {}
            }
        }
        let mut exceptions = FastMap::default();
        for list in by_pos {
            for (form, lemma) in list {
                exceptions
                    .entry(form.to_string())
                    .or_insert_with(|| lemma.to_string());
            }
        }
        Lemmatizer { exceptions, index }
    }

    /// Irregular forms and index words held.
    pub fn sizes(&self) -> (usize, usize) {
        (self.exceptions.len(), self.index.len())
    }

    /// The lemma of `word` (see the module docs for the order of the rules).
    pub fn lemma(&self, word: &str) -> String {
        if let Some(lemma) = self.exceptions.get(word) {
            return lemma.clone();
        }
        if self
            .index
            .get(word)
            .is_some_and(|bits| bits & (NOUN | VERB) != 0)
        {
            return word.to_string();
        }
        let mut candidate = String::with_capacity(word.len() + 2);
        for (pos, rules) in RULES {
            for (suffix, ending) in rules {
                let Some(stem) = word.strip_suffix(suffix) else {
                    continue;
                };
                if stem.is_empty() {
                    continue;
                }
                candidate.clear();
                candidate.push_str(stem);
                candidate.push_str(ending);
                if self
                    .index
                    .get(&candidate)
                    .is_some_and(|bits| bits & pos != 0)
                {
                    return candidate;
                }
            }
        }
        word.to_string()
    }
}
