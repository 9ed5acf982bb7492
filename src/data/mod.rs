//! Data: CSV/TSV loading, label mapping, cleaning, stopwords, stemming and
//! lemmatisation, stratified split, balancing, vocabulary, encoding, batching and the
//! dataset cache.
//!
//! `prepare` is the pipeline: key the data file's bytes and the settings -> (cache hit?
//! map it) -> three streaming passes (`pipeline.rs`: labels and split; token counts and
//! vocabulary; encoding) -> cache file -> mapped. Balancing and batching happen per
//! trial, on the prepared dataset.

mod balance;
mod batch;
pub mod cache;
mod clean;
mod encoded;
mod labels;
pub mod lemma;
mod load;
pub mod notes;
mod pipeline;
pub mod read;
pub mod report;
mod sample;
mod split;
pub mod stopwords;
mod vocab;
pub mod write;

pub use balance::{balance, Balanced};
pub use batch::{batches, Batch, Batches};
pub use clean::Preprocessor;
pub use encoded::{row_hash, Column, Scalar, Split};
pub use labels::{class_of, is_missing as is_missing_label};
pub use load::{data_path, load, parse, record_texts, scan_file, Labels, Table};
pub use pipeline::BuildStats;
pub use report::DataReport;
pub use split::split_indices;
pub use vocab::{Encoder, Vocab, PAD_ID, UNK_ID};

use crate::spec::{DataSection, PreprocessSection};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hash maps and sets on the per-token paths: foldhash is several times faster than
/// the default SipHash on short strings (no untrusted keys flood these maps).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// A prepared dataset: classes, vocabulary and the three encoded splits, and the
/// report of how it was read.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Class names; label `k` in a split means `classes[k]`.
    pub classes: Vec<String>,
    /// Built from the training split only.
    pub vocab: Vocab,
    /// The rows to train on.
    pub train: Split,
    /// The rows for validation (early stopping, model choice).
    pub valid: Split,
    /// The held-out rows for the final scores.
    pub test: Split,
    /// Data rows read from the file (after `limit`).
    pub rows_read: usize,
    /// Rows skipped because their text was empty.
    pub rows_skipped: usize,
    /// What lab read and made of the file (`None` for a dataset made otherwise).
    pub report: Option<Arc<DataReport>>,
}

/// Datasets are equal when their classes, vocabulary, rows and counts are: the
/// report describes how the rows were read, it is not part of them (a dataset
/// built in memory by other means has none).
impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        self.classes == other.classes
            && self.vocab == other.vocab
            && self.train == other.train
            && self.valid == other.valid
            && self.test == other.test
            && self.rows_read == other.rows_read
            && self.rows_skipped == other.rows_skipped
    }
}

/// Load, clean, split and encode; with `cache_dir`, through the cache (keyed by the
/// data file's bytes and the data + preprocess settings) and memory-mapped from it. A
/// cache entry that cannot be read back is ignored and rebuilt.
pub fn prepare(
    data: &DataSection,
    preprocess: &PreprocessSection,
    base_dir: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Dataset> {
    match cache_dir {
        None => {
            let path = data_path(data, base_dir);
            Ok(pipeline::build_in_memory(&path, data, preprocess, base_dir)?.0)
        }
        Some(dir) => {
            let key = cache_key(data, preprocess, base_dir)?;
            prepare_cached(data, preprocess, base_dir, dir, &key)
        }
    }
}

/// [`prepare`] through the cache with the key already computed by [`cache_key`].
pub fn prepare_cached(
    data: &DataSection,
    preprocess: &PreprocessSection,
    base_dir: &Path,
    cache_dir: &Path,
    key: &str,
) -> anyhow::Result<Dataset> {
    let file = cache::cache_path(cache_dir, key);
    if file.exists() {
        if let Ok(ds) = cache::read(&file) {
            if let Some(report) = &ds.report {
                // Said on every run, not only the one that read the file.
                if let Ok(notes) = serde_json::from_value(report.notes.clone()) {
                    load::warn_notes(&report.file, data, &notes);
                }
                return Ok(ds);
            }
        }
    }
    let path = data_path(data, base_dir);
    pipeline::build_to_file(&path, data, preprocess, base_dir, &file)?;
    cache::read(&file)
}

/// What [`warm_cache`] found or did.
#[derive(Debug, Clone)]
pub struct Warmed {
    /// The cache key (hex sha256, see [`cache_key`]).
    pub key: String,
    /// The cache file.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Time spent hashing the data file for the key.
    pub hashing: Duration,
    /// `None` when a valid entry was already there.
    pub built: Option<BuildStats>,
    /// What lab read and made of the file.
    pub report: Arc<DataReport>,
}

/// Make sure the cache holds the dataset (building it when missing, damaged or when
/// `rebuild`), without mapping it: what `lab prepare` runs.
pub fn warm_cache(
    data: &DataSection,
    preprocess: &PreprocessSection,
    base_dir: &Path,
    cache_dir: &Path,
    rebuild: bool,
) -> anyhow::Result<Warmed> {
    let start = Instant::now();
    let key = cache_key(data, preprocess, base_dir)?;
    let hashing = start.elapsed();
    let file = cache::cache_path(cache_dir, &key);
    let cached = match rebuild || !file.exists() {
        true => None,
        false => cache::read(&file).ok().and_then(|ds| ds.report),
    };
    let (built, report) = match cached {
        Some(report) => (None, report),
        None => {
            let path = data_path(data, base_dir);
            let (stats, report) =
                pipeline::build_to_file(&path, data, preprocess, base_dir, &file)?;
            (Some(stats), Arc::new(report))
        }
    };
    let bytes = std::fs::metadata(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    Ok(Warmed {
        key,
        file,
        bytes,
        hashing,
        built,
        report,
    })
}

/// The settings that decide a prepared dataset, as one string: the data file's path,
/// the data section and the preprocess section without `balance`. Trials with equal
/// ids share a dataset (as long as the file does not change).
pub fn settings_id(
    data: &DataSection,
    pre: &PreprocessSection,
    base_dir: &Path,
) -> anyhow::Result<String> {
    let mut pre = serde_json::to_value(pre)?;
    if let Some(obj) = pre.as_object_mut() {
        obj.remove("balance");
    }
    Ok(serde_json::to_string(&(
        data_path(data, base_dir),
        data,
        pre,
    ))?)
}

/// Hex sha256 naming the cache entry: the data file's bytes, the data section, the
/// preprocess section without `balance` (applied per trial), the stop-word file's bytes
/// when `stopwords` is a file and the lemma table when `stem = "lemma"`.
pub fn cache_key(
    data: &DataSection,
    pre: &PreprocessSection,
    base_dir: &Path,
) -> anyhow::Result<String> {
    let stop = stopword_file_bytes(pre, base_dir)?;
    cache::key(&data_path(data, base_dir), data, pre, stop.as_deref())
}

fn stopword_file_bytes(
    pre: &PreprocessSection,
    base_dir: &Path,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(list) = pre.stopwords.file() else {
        return Ok(None);
    };
    let path = base_dir.join(list);
    read::check_regular(&path).map_err(|why| anyhow::anyhow!("preprocess.stopwords: {why}"))?;
    std::fs::read(&path).map(Some).with_context(|| {
        format!(
            "cannot read the stop-word list {} (preprocess.stopwords)",
            path.display()
        )
    })
}
