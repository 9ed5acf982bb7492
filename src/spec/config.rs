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
    /// `[experiment]`: name, description, seeds.
    pub experiment: ExperimentSection,
    /// `[data]`: the file, its columns and the split.
    pub data: DataSection,
    /// `[preprocess]`: cleaning, stop words, stemming, vocabulary, length, balance.
    pub preprocess: PreprocessSection,
    /// `[model]`: the network.
    pub model: ModelSection,
    /// `[train]`: optimisation and early stopping.
    pub train: TrainSection,
    /// Dotted key path (e.g. "model.cell") -> list of values (an axis of the grid).
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
    /// `[search]`: sample configurations from distributions instead of (or
    /// on top of) the grid, and prune poor trials early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSection>,
}

/// `[search]`: a budget of configurations drawn from `space` by `strategy`,
/// each run once per seed (and per point of `[sweep]`, whose axes stay a grid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSection {
    /// How configurations are proposed.
    #[serde(default)]
    pub strategy: Strategy,
    /// Configurations to try (required but for `grid`, which tries every point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<usize>,
    /// What the search optimises; a validation number recorded every epoch.
    #[serde(default)]
    pub objective: Objective,
    /// The sampler's own seed: the same spec proposes the same configurations.
    #[serde(default)]
    pub seed: u64,
    /// TPE: configurations drawn at random before the model takes over
    /// (Optuna's `n_startup_trials`, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_trials: Option<usize>,
    /// Dotted key path (e.g. "train.lr") -> its distribution.
    #[serde(default)]
    pub space: BTreeMap<String, Distribution>,
    /// Stops poor trials after an epoch; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruner: Option<PrunerSection>,
}

/// `search.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every combination of the `choice` and `int` values (today's grid).
    Grid,
    /// Independent uniform draws (seeded).
    Random,
    /// A scrambled Sobol sequence: quasi-random, fills the space evenly.
    Sobol,
    /// Tree-structured Parzen estimator (Bergstra et al. 2011), after
    /// `startup_trials` random draws.
    #[default]
    Tpe,
}

impl Strategy {
    /// The name the spec uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Grid => "grid",
            Self::Random => "random",
            Self::Sobol => "sobol",
            Self::Tpe => "tpe",
        }
    }
}

/// `search.objective`: a validation number and its direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// "valid.macro_f1" (default) | "valid.accuracy" | "valid.loss"
    pub metric: Monitor,
    /// Must be the metric's own direction when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

impl Default for Objective {
    fn default() -> Self {
        Self {
            metric: Monitor::ValidMacroF1,
            mode: None,
        }
    }
}

/// One searched parameter: exactly one of `uniform`, `loguniform`, `int`,
/// `choice`, and optionally `when` (sampled only where every listed key has
/// the listed value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// `[low, high]`: uniform over the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<[f64; 2]>,
    /// `[low, high]`, `0 < low`: uniform in the logarithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loguniform: Option<[f64; 2]>,
    /// `[low, high]`: a whole number, both ends included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int: Option<[i64; 2]>,
    /// One of these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Vec<toml::Value>>,
    /// Dotted key -> value that must hold for this parameter to be sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<BTreeMap<String, toml::Value>>,
}

/// `[search.pruner]`: when to stop a trial early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrunerSection {
    /// "none" | "median" | "asha"
    pub kind: PrunerKind,
    /// No trial is pruned before this epoch; ASHA's first rung.
    #[serde(default = "one")]
    pub min_epochs: usize,
    /// ASHA: each rung keeps the top 1/`reduction` (at least 2).
    #[serde(default = "three")]
    pub reduction: usize,
    /// Median: finished trials needed before any is pruned (Optuna's default 5).
    #[serde(default = "five")]
    pub startup_trials: usize,
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn five() -> usize {
    5
}

/// `search.pruner.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrunerKind {
    /// Never prune.
    None,
    /// Optuna's median rule.
    Median,
    /// Asynchronous successive halving.
    Asha,
}

/// One point of the grid: everything a single training run needs.
/// Its hash (see `spec::config_hash`) is the trial's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// The experiment's name.
    pub experiment: String,
    /// The seed of the model's initialisation, dropout and shuffling.
    pub seed: u64,
    /// `[data]` at this point of the grid.
    pub data: DataSection,
    /// `[preprocess]` at this point of the grid.
    pub preprocess: PreprocessSection,
    /// `[model]` at this point of the grid.
    pub model: ModelSection,
    /// `[train]` at this point of the grid.
    pub train: TrainSection,
}

/// `[experiment]`: not part of any trial's configuration but its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentSection {
    /// Names the experiment in the store and its directory (letters, digits, `_.-`).
    pub name: String,
    /// Free text, recorded with the experiment.
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

/// `[data]`: where the rows come from and how they are split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// The data file, relative to the spec file: CSV/TSV, JSON Lines (.jsonl, .ndjson),
    /// a JSON array (.json) or Parquet (.parquet), optionally gzip-compressed (.gz).
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
    /// `data.split`: the train/valid/test fractions.
    pub split: SplitSection,
    /// A row with empty text: "skip" (counted, the default) or "error".
    /// Omitted from the trial hash when unset, so older trials keep their identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_bad_row: Option<OnBadRow>,
    /// Bytes that are not UTF-8: "lossy" (replaced, with a warning; the default) or "error".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_invalid_utf8: Option<OnInvalidUtf8>,
    /// Quote processing of a delimited file: RFC 4180 (the default for CSV) or none
    /// (the default for TSV: one line, one row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoting: Option<Quoting>,
    /// The text encoding of a file without a byte-order mark, as a WHATWG label
    /// ("utf-8", "utf-16", "windows-1252", "latin-1", ...); a BOM always decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Labels that differ only by case or numeric form: merged when this asks for it,
    /// else an error that lists the variants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_normalize: Option<LabelNormalize>,
    /// A seeded, stratified random sample of the rows: a count (`1000`) or a fraction
    /// (`0.1`); seeded by `data.split.seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<Sample>,
}

/// `data.quoting`: how quotes in a delimited file are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quoting {
    /// `"rfc4180"`: a field may be quoted, `""` inside it is a quote, and it may span lines.
    Rfc4180,
    /// `"none"`: a quote is an ordinary character; one line is one row.
    None,
}

/// `data.label_normalize`: which label variants lab merges into one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelNormalize {
    /// `"case"`: `Positive` and `positive` are one class.
    Case,
    /// `"numeric"`: `3`, `3.0` and `3.00` are one class.
    Numeric,
    /// `"both"`: case and numeric form.
    Both,
}

/// `data.sample`: how many rows a stratified sample keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sample {
    /// A number of rows (an integer, at least 1).
    Rows(u64),
    /// A fraction of the rows, in (0, 1).
    Fraction(f64),
}

/// `data.on_bad_row`: what a row with empty text does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    /// `"skip"`: the row is left out and counted.
    #[default]
    Skip,
    /// `"error"`: the first such row stops loading, naming its line.
    Error,
}

/// `data.on_invalid_utf8`: what bytes that are not UTF-8 do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalidUtf8 {
    /// `"lossy"`: replaced by U+FFFD, with a warning.
    #[default]
    Lossy,
    /// `"error"`: loading stops, naming the line.
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
            quoting: None,
            encoding: None,
            label_normalize: None,
            sample: None,
        }
    }
}

/// `data.split`: fractions of the kept rows (they sum to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitSection {
    /// Fraction of rows to train on, in (0, 1].
    pub train: f64,
    /// Fraction for validation (early stopping, model choice), in (0, 1].
    pub valid: f64,
    /// Fraction held out for the final scores, in (0, 1].
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

/// `[preprocess]`: how texts become tokens and tokens become ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessSection {
    /// Lowercase every text.
    pub lowercase: bool,
    /// Drop HTML tags and decode entities.
    pub strip_html: bool,
    /// Drop URLs.
    pub remove_urls: bool,
    /// Drop digits.
    pub remove_digits: bool,
    /// Drop punctuation (apostrophes inside words too, so "don't" becomes "dont").
    pub remove_punctuation: bool,
    /// "none" | "english" | path to a word list (one word per line, relative to the spec file).
    pub stopwords: Stopwords,
    /// Reduce each token to a base form, after stop words are removed.
    pub stem: Stem,
    /// A word enters the vocabulary when it occurs at least this often in training rows.
    pub min_freq: usize,
    /// Vocabulary size, padding and unknown included (the most frequent words win).
    pub max_vocab: usize,
    /// Tokens kept per text (the first ones).
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

/// `preprocess.stem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stem {
    /// `"none"`: tokens as cleaning leaves them.
    None,
    /// `"snowball"`: the English Snowball stemmer.
    Snowball,
    /// WordNet 3.0 lemmas (src/data/lemma.rs).
    Lemma,
}

/// `preprocess.balance`: evening out the classes of the training split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// `"none"`: the rows as they are.
    None,
    /// `"upsample"`: rows of smaller classes repeated up to the largest class.
    Upsample,
    /// `"downsample"`: rows of larger classes dropped down to the smallest class.
    Downsample,
    /// `"class_weights"`: the loss weighs each class by its inverse frequency.
    ClassWeights,
}

/// `[model]`: embedding, recurrent stack, pooling and head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// The recurrent cell.
    pub cell: Cell,
    /// Run each layer in both directions (the outputs are concatenated).
    pub bidirectional: bool,
    /// Stacked recurrent layers.
    pub layers: usize,
    /// Width of a word's embedding vector.
    pub embedding_dim: usize,
    /// Hidden units per direction and layer.
    pub hidden: usize,
    /// Applied to the embeddings, between recurrent layers and before the head.
    pub dropout: f64,
    /// How the outputs over time become one vector per text.
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
    /// The vectors file's format.
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

/// `model.embeddings.format`.
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

/// `model.cell`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// `"lstm"`: long short-term memory.
    Lstm,
    /// `"gru"`: gated recurrent unit.
    Gru,
}

/// `model.pooling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// `"last"`: the final state of each direction (at the text's true end).
    Last,
    /// `"mean"`: the mean over the true positions.
    Mean,
    /// `"max"`: the element-wise maximum over the true positions.
    Max,
    /// Additive attention over the true positions.
    Attention,
}

/// `[train]`: the optimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Passes over the training split (fewer with early stopping).
    pub epochs: usize,
    /// Texts per optimisation step.
    pub batch_size: usize,
    /// The update rule.
    pub optimizer: Optimizer,
    /// Learning rate.
    pub lr: f64,
    /// L2 penalty (Adam, SGD) or decoupled decay (AdamW).
    pub weight_decay: f64,
    /// SGD momentum (ignored by Adam/AdamW).
    pub momentum: f64,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    pub grad_clip: f64,
    /// `train.early_stopping`; without it every epoch runs and the last one's weights are kept.
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

/// `train.optimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// `"adam"`.
    Adam,
    /// `"adamw"`: Adam with decoupled weight decay.
    Adamw,
    /// `"sgd"`, with `train.momentum`.
    Sgd,
}

/// `train.early_stopping`: stop when the monitored number stops improving, and
/// keep the best epoch's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// "valid.loss" | "valid.accuracy" | "valid.macro_f1"
    pub monitor: Monitor,
    /// The direction of improvement; must be the monitor's own (`Monitor::mode`).
    pub mode: Mode,
    /// Epochs without a strict improvement before training stops (at least 1).
    pub patience: usize,
}

/// Whether a number improves downwards or upwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `"min"`: smaller is better (a loss).
    Min,
    /// `"max"`: larger is better (accuracy, F1).
    Max,
}
