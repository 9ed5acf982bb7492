//! The typed experiment spec: one struct per TOML section.
//!
//! Every section denies unknown keys and every field has a default, so a spec
//! only names what differs from the defaults. Range checks live in
//! `spec::validate`; these types only describe the shape.

pub use super::values::{Device, Monitor, Stopwords};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A whole spec file: the fixed configuration plus the sweep axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    pub experiment: ExperimentSection,
    pub data: DataSection,
    pub preprocess: PreprocessSection,
    pub model: ModelSection,
    pub train: TrainSection,
    /// Dotted key path (e.g. "model.cell") -> list of values (an axis of the grid).
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
}

/// One point of the grid: everything a single training run needs.
/// Its hash (see `spec::config_hash`) is the trial's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    pub experiment: String,
    pub seed: u64,
    pub data: DataSection,
    pub preprocess: PreprocessSection,
    pub model: ModelSection,
    pub train: TrainSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentSection {
    pub name: String,
    pub description: String,
    /// Every grid point runs once per seed.
    pub seeds: Vec<u64>,
}

impl Default for ExperimentSection {
    fn default() -> Self {
        Self {
            name: "experiment".into(),
            description: String::new(),
            seeds: vec![13],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// CSV/TSV file, optionally gzip-compressed (.gz); relative to the spec file.
    pub path: PathBuf,
    /// Name of the text column.
    pub text: String,
    /// Name of the label column.
    pub label: String,
    /// Field delimiter; when absent it follows the extension (.tsv -> tab, else comma).
    pub delimiter: Option<String>,
    /// Raw label -> class name; merges or renames labels. Unmapped labels are kept as they are.
    pub label_map: BTreeMap<String, String>,
    /// Take only the first N data rows.
    pub limit: Option<usize>,
    pub split: SplitSection,
    /// A row with empty text: "skip" (counted, the default) or "error".
    /// Omitted from the trial hash when unset, so older trials keep their identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_bad_row: Option<OnBadRow>,
    /// Bytes that are not UTF-8: "lossy" (replaced, with a warning; the default) or "error".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_invalid_utf8: Option<OnInvalidUtf8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    #[default]
    Skip,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalidUtf8 {
    #[default]
    Lossy,
    Error,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            text: "text".into(),
            label: "label".into(),
            delimiter: None,
            label_map: BTreeMap::new(),
            limit: None,
            split: SplitSection::default(),
            on_bad_row: None,
            on_invalid_utf8: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitSection {
    pub train: f64,
    pub valid: f64,
    pub test: f64,
    /// Keep each class's share equal across the three splits.
    pub stratify: bool,
    /// The split is fixed by this seed (not the trial seed), so every trial of
    /// an experiment is scored on the same test rows.
    pub seed: u64,
}

impl Default for SplitSection {
    fn default() -> Self {
        Self {
            train: 0.8,
            valid: 0.1,
            test: 0.1,
            stratify: true,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessSection {
    pub lowercase: bool,
    pub strip_html: bool,
    pub remove_urls: bool,
    pub remove_digits: bool,
    pub remove_punctuation: bool,
    /// "none" | "english" | path to a word list (one word per line, relative to the spec file).
    pub stopwords: Stopwords,
    pub stem: Stem,
    pub min_freq: usize,
    pub max_vocab: usize,
    pub max_len: usize,
    /// Applied to the training split only.
    pub balance: Balance,
}

impl Default for PreprocessSection {
    fn default() -> Self {
        Self {
            lowercase: true,
            strip_html: true,
            remove_urls: true,
            remove_digits: false,
            remove_punctuation: true,
            stopwords: Stopwords::None,
            stem: Stem::None,
            min_freq: 2,
            max_vocab: 20000,
            max_len: 64,
            balance: Balance::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stem {
    None,
    Snowball,
    /// WordNet 3.0 lemmas (src/data/lemma.rs).
    Lemma,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    None,
    Upsample,
    Downsample,
    ClassWeights,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub cell: Cell,
    pub bidirectional: bool,
    pub layers: usize,
    pub embedding_dim: usize,
    pub hidden: usize,
    /// Applied to the embeddings, between recurrent layers and before the head.
    pub dropout: f64,
    pub pooling: Pooling,
    /// Pretrained word vectors for the embedding. Omitted from the trial hash when
    /// unset, so older trials keep their identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<EmbeddingsSection>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            cell: Cell::Lstm,
            bidirectional: false,
            layers: 1,
            embedding_dim: 100,
            hidden: 128,
            dropout: 0.3,
            pooling: Pooling::Last,
            embeddings: None,
        }
    }
}

/// `model.embeddings`: a file of pretrained vectors for the vocabulary's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingsSection {
    /// The vectors file, relative to the spec file (`.gz` read transparently for the
    /// text format); `"none"` keeps the random initialisation (a sweep value).
    pub path: PathBuf,
    pub format: EmbeddingFormat,
    /// `npy+vocab` only: the words of the `.npy` rows, one per line, relative to the
    /// spec file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab: Option<PathBuf>,
    /// Keep the embedding fixed: it gets no gradient and no optimizer update.
    pub freeze: bool,
}

impl EmbeddingsSection {
    /// The `path` value that means "no pretrained vectors".
    pub const NONE: &'static str = "none";

    /// Whether a vectors file is named (not `"none"`).
    pub fn has_file(&self) -> bool {
        self.path.as_os_str() != Self::NONE
    }
}

impl Default for EmbeddingsSection {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            format: EmbeddingFormat::GloveText,
            vocab: None,
            freeze: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmbeddingFormat {
    /// `word v1 ... vd` per line (GloVe's text files; a word2vec text header line
    /// `count dim` is skipped).
    #[serde(rename = "glove_text")]
    GloveText,
    /// A float32/float64 `.npy` matrix (one row per word) and a word list.
    #[serde(rename = "npy+vocab")]
    NpyVocab,
    /// word2vec's binary format: `count dim` header, then word, space, dim float32.
    #[serde(rename = "word2vec_bin")]
    Word2vecBin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    Lstm,
    Gru,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    Last,
    Mean,
    Max,
    /// Additive attention over the true positions.
    Attention,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    /// SGD momentum (ignored by Adam/AdamW).
    pub momentum: f64,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    pub grad_clip: f64,
    pub early_stopping: Option<EarlyStopping>,
    /// Sort training rows into batches of similar length so little padding is computed.
    pub bucket_by_length: bool,
    /// Update only the embedding rows of the batch's words (lazy Adam; exact for
    /// SGD without momentum). Left out of the config when false, so the trials
    /// recorded before it existed keep their identity.
    #[serde(skip_serializing_if = "is_false")]
    pub sparse_embedding: bool,
    /// "cpu" | "cuda" | "cuda:N" | "auto"; not part of the trial's identity.
    pub device: Device,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: 0.9,
            grad_clip: 5.0,
            early_stopping: None,
            bucket_by_length: true,
            sparse_embedding: false,
            device: Device::Cpu,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Adam,
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// "valid.loss" | "valid.accuracy" | "valid.macro_f1"
    pub monitor: Monitor,
    pub mode: Mode,
    pub patience: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Min,
    Max,
}
