//! Data: CSV/TSV loading, label mapping, cleaning, stopwords, stemming,
//! stratified split, balancing, vocabulary, encoding, batching and the dataset cache.

use crate::spec::{Balance, DataSection, PreprocessSection};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Reserved ids.
pub const PAD_ID: u32 = 0;
pub const UNK_ID: u32 = 1;

/// Token <-> id map built from the training split. Id 0 is `<pad>`, 1 is `<unk>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    pub itos: Vec<String>,
}

impl Vocab {
    pub fn len(&self) -> usize {
        self.itos.len()
    }
    pub fn is_empty(&self) -> bool {
        self.itos.is_empty()
    }
    /// Ids for tokens, truncated to `max_len`; never empty (an empty input gives `[UNK_ID]`).
    pub fn encode(&self, tokens: &[String], max_len: usize) -> Vec<u32> {
        let _ = (tokens, max_len);
        todo!("data helper")
    }
}

/// Turns raw text into tokens as the preprocess section says.
pub struct Preprocessor;

impl Preprocessor {
    /// `base_dir` resolves a stopword-list path.
    pub fn new(cfg: &PreprocessSection, base_dir: &Path) -> anyhow::Result<Self> {
        let _ = (cfg, base_dir);
        todo!("data helper")
    }
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let _ = text;
        todo!("data helper")
    }
}

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
/// the data file's bytes and the data + preprocess settings).
pub fn prepare(
    data: &DataSection,
    preprocess: &PreprocessSection,
    base_dir: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Dataset> {
    let _ = (data, preprocess, base_dir, cache_dir);
    todo!("data helper")
}

/// Training-split balancing for one trial: the row indices to train on (each epoch
/// shuffles them) and, for `ClassWeights`, a weight per class.
pub struct Balanced {
    pub indices: Vec<usize>,
    pub class_weights: Option<Vec<f32>>,
}

pub fn balance(train: &Split, n_classes: usize, mode: Balance, seed: u64) -> Balanced {
    let _ = (train, n_classes, mode, seed);
    todo!("data helper")
}

/// A padded batch: `ids` is row-major (batch, time), padded with PAD_ID to the
/// longest sequence of this batch only.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub ids: Vec<u32>,
    pub lengths: Vec<usize>,
    pub labels: Vec<u32>,
    /// For each batch row, its index in the split (to put predictions back in order).
    pub rows: Vec<usize>,
    pub batch: usize,
    pub time: usize,
}

/// Cut `order` (indices into `split`) into batches. With `shuffle_seed` the order
/// is shuffled first; with `bucket` rows of similar length share a batch (the
/// batches themselves are then shuffled).
pub fn batches(
    split: &Split,
    order: &[usize],
    batch_size: usize,
    bucket: bool,
    shuffle_seed: Option<u64>,
) -> Vec<Batch> {
    let _ = (split, order, batch_size, bucket, shuffle_seed);
    todo!("data helper")
}
