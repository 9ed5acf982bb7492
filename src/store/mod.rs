//! The SQLite store: schema and migrations in one place, every state change in a
//! transaction, atomic claims of pending trials. Knows nothing of candle.

use std::path::Path;

pub type Result<T> = anyhow::Result<T>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialStatus {
    Pending,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    pub id: i64,
    pub name: String,
    pub spec_toml: String,
    pub spec_hash: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    pub id: i64,
    pub experiment_id: i64,
    pub config_json: String,
    pub config_hash: String,
    pub seed: u64,
    pub status: TrialStatus,
    pub device: Option<String>,
    pub worker: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_loss: f64,
    pub valid_accuracy: f64,
    pub valid_macro_f1: f64,
    pub lr: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionRow {
    pub split: String,
    /// matrix[true][predicted]
    pub matrix: Vec<Vec<u64>>,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRow {
    pub kind: String,
    pub path: String,
    pub sha256: String,
}

/// Everything a finished trial records, written in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrialResult {
    /// (split, name, value)
    pub metrics: Vec<(String, String, f64)>,
    pub confusion: Vec<ConfusionRow>,
    pub artifacts: Vec<ArtifactRow>,
}

pub struct Store;

impl Store {
    /// Open (creating parent dirs and the file), WAL, foreign keys, busy timeout, migrate.
    pub fn open(path: &Path) -> Result<Store> {
        let _ = path;
        todo!("store helper")
    }
    /// Experiments are identified by name; the latest spec text and hash are kept.
    pub fn upsert_experiment(&self, name: &str, spec_toml: &str, spec_hash: &str) -> Result<i64> {
        let _ = (name, spec_toml, spec_hash);
        todo!("store helper")
    }
    /// Insert trials as pending unless (experiment, config_hash) exists; returns every
    /// trial's id in input order. Items are (config_json, config_hash, seed).
    pub fn add_trials(&self, experiment_id: i64, trials: &[(String, String, u64)]) -> Result<Vec<i64>> {
        let _ = (experiment_id, trials);
        todo!("store helper")
    }
    /// Atomically move one pending trial of the experiment (lowest id first) to running.
    pub fn claim_trial(&self, experiment_id: i64, worker: &str, device: &str) -> Result<Option<TrialRow>> {
        let _ = (experiment_id, worker, device);
        todo!("store helper")
    }
    pub fn record_epoch(&self, trial_id: i64, epoch: &EpochRow) -> Result<()> {
        let _ = (trial_id, epoch);
        todo!("store helper")
    }
    /// Metrics, confusion matrices and artifacts, and status done, in one transaction.
    pub fn finish_trial(&self, trial_id: i64, result: &TrialResult) -> Result<()> {
        let _ = (trial_id, result);
        todo!("store helper")
    }
    pub fn fail_trial(&self, trial_id: i64, error: &str) -> Result<()> {
        let _ = (trial_id, error);
        todo!("store helper")
    }
    pub fn experiments(&self) -> Result<Vec<ExperimentRow>> {
        todo!("store helper")
    }
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentRow>> {
        let _ = name;
        todo!("store helper")
    }
    pub fn trials(&self, experiment_id: i64) -> Result<Vec<TrialRow>> {
        let _ = experiment_id;
        todo!("store helper")
    }
    pub fn trial(&self, trial_id: i64) -> Result<Option<TrialRow>> {
        let _ = trial_id;
        todo!("store helper")
    }
    pub fn epochs(&self, trial_id: i64) -> Result<Vec<EpochRow>> {
        let _ = trial_id;
        todo!("store helper")
    }
    /// (split, name, value)
    pub fn metrics(&self, trial_id: i64) -> Result<Vec<(String, String, f64)>> {
        let _ = trial_id;
        todo!("store helper")
    }
    pub fn confusion(&self, trial_id: i64) -> Result<Vec<ConfusionRow>> {
        let _ = trial_id;
        todo!("store helper")
    }
    pub fn artifacts(&self, trial_id: i64) -> Result<Vec<ArtifactRow>> {
        let _ = trial_id;
        todo!("store helper")
    }
}
