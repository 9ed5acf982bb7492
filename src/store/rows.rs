//! The store's rows as named structs, each read by column name.

use super::TrialStatus;
use rusqlite::Row;

/// One experiment: a spec recorded under its name.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    /// Row id, referenced by `TrialRow::experiment_id`.
    pub id: i64,
    /// `[experiment] name`, unique in the store.
    pub name: String,
    /// The spec's text as last run.
    pub spec_toml: String,
    /// Hash of `spec_toml`.
    pub spec_hash: String,
    /// RFC 3339 UTC time of the first run.
    pub created_at: String,
}

/// One trial: a resolved config and where it is in its life.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    /// Row id, the trial's number in every command.
    pub id: i64,
    /// The experiment it belongs to.
    pub experiment_id: i64,
    /// The resolved config as JSON.
    pub config_json: String,
    /// The trial's identity: hash of the resolved config, unique per experiment.
    pub config_hash: String,
    /// The trial's seed.
    pub seed: u64,
    /// pending, running, done, failed or pruned.
    pub status: TrialStatus,
    /// Device it ran (or runs) on, e.g. `cpu`, `cuda:0`.
    pub device: Option<String>,
    /// `host:pid` of the process that claimed it.
    pub worker: Option<String>,
    /// RFC 3339 UTC time of the claim.
    pub started_at: Option<String>,
    /// RFC 3339 UTC time it ended (done, failed or pruned).
    pub finished_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The number of the search proposal it belongs to (all seeds of one
    /// proposed configuration share it); `None` for a grid trial, and for
    /// trials recorded before schema version 7.
    pub search_number: Option<i64>,
    /// Why the pruner stopped it (status pruned), e.g. "pruned at epoch 2:
    /// 0.61 < median 0.68 of 5 finished trials".
    pub pruned_reason: Option<String>,
}

/// A trial to add: `Store::add_trials`'s input.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrial {
    /// The resolved config as JSON.
    pub config_json: String,
    /// Hash of the resolved config (the trial's identity in its experiment).
    pub config_hash: String,
    /// The trial's seed.
    pub seed: u64,
    /// The search proposal it belongs to; `None` for a grid trial.
    pub search_number: Option<i64>,
}

/// A trial's lease: who holds it and when they last renewed it. What
/// `Store::running` lists and what a requeue's filter judges.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialLease {
    /// The trial's id.
    pub id: i64,
    /// `host:pid` of its worker; "" when none was recorded.
    pub worker: String,
    /// RFC 3339 UTC time its worker last renewed the lease.
    pub heartbeat_at: Option<String>,
}

/// One metric of a trial.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// `train`, `valid` or `test`.
    pub split: String,
    /// e.g. `accuracy`, `macro_f1`, `f1.positive`, `seconds`.
    pub name: String,
    /// The value (a ratio, a loss, seconds or a count, by name).
    pub value: f64,
}

/// One metric of one trial of an experiment: `Store::experiment_metrics`'s rows.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialMetric {
    /// The trial's id.
    pub trial_id: i64,
    /// The metric's name.
    pub name: String,
    /// Its value.
    pub value: f64,
}

/// A confusion matrix of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionRow {
    /// `valid` or `test`.
    pub split: String,
    /// `matrix[true][predicted]`, counts; (classes, classes).
    pub matrix: Vec<Vec<u64>>,
    /// Class names, in matrix order.
    pub labels: Vec<String>,
}

/// A file a trial left, relative to the store's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRow {
    /// e.g. `weights`, `vocab`, `config`.
    pub kind: String,
    /// Path relative to the database's directory.
    pub path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// Everything a finished trial records, written in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrialResult {
    /// Metrics of every split.
    pub metrics: Vec<MetricRow>,
    /// One confusion matrix per scored split.
    pub confusion: Vec<ConfusionRow>,
    /// Files written for the trial.
    pub artifacts: Vec<ArtifactRow>,
    /// Per-example predictions by split name (`valid`, `test`).
    pub predictions: Vec<(String, super::Predictions)>,
    /// The fingerprint of the test split (`stats::fingerprint`).
    pub test_split: Option<String>,
}

/// The `trials` columns `TrialRow::from_row` reads.
pub(crate) const TRIAL_COLUMNS: &str = "id, experiment_id, config_json, config_hash, seed, \
                                        status, device, worker, started_at, finished_at, error, \
                                        search_number, pruned_reason";

/// `TRIAL_COLUMNS` of a database older than schema version 7 (a shard opened
/// read-only), whose trials have neither a search number nor a pruned reason.
pub(crate) const TRIAL_COLUMNS_V6: &str = "id, experiment_id, config_json, config_hash, seed, \
                                           status, device, worker, started_at, finished_at, \
                                           error, NULL AS search_number, NULL AS pruned_reason";

/// The `experiments` columns `ExperimentRow::from_row` reads.
pub(crate) const EXPERIMENT_COLUMNS: &str = "id, name, spec_toml, spec_hash, created_at";

impl TrialRow {
    /// A row selected with `TRIAL_COLUMNS`.
    pub(crate) fn from_row(row: &Row) -> rusqlite::Result<TrialRow> {
        let status: String = row.get("status")?;
        let status = status.parse::<TrialStatus>().map_err(|e| {
            let index = row.as_ref().column_index("status").unwrap_or(0);
            rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
        })?;
        Ok(TrialRow {
            id: row.get("id")?,
            experiment_id: row.get("experiment_id")?,
            config_json: row.get("config_json")?,
            config_hash: row.get("config_hash")?,
            // Seeds are stored as i64 bit patterns so that all u64 seeds fit.
            seed: row.get::<_, i64>("seed")? as u64,
            status,
            device: row.get("device")?,
            worker: row.get("worker")?,
            started_at: row.get("started_at")?,
            finished_at: row.get("finished_at")?,
            error: row.get("error")?,
            search_number: row.get("search_number")?,
            pruned_reason: row.get("pruned_reason")?,
        })
    }
}

impl ExperimentRow {
    /// A row selected with `EXPERIMENT_COLUMNS`.
    pub(crate) fn from_row(row: &Row) -> rusqlite::Result<ExperimentRow> {
        Ok(ExperimentRow {
            id: row.get("id")?,
            name: row.get("name")?,
            spec_toml: row.get("spec_toml")?,
            spec_hash: row.get("spec_hash")?,
            created_at: row.get("created_at")?,
        })
    }
}

impl TrialLease {
    /// A row with `id`, `worker` (may be NULL) and `heartbeat_at`.
    pub(crate) fn from_row(row: &Row) -> rusqlite::Result<TrialLease> {
        Ok(TrialLease {
            id: row.get("id")?,
            worker: row.get::<_, Option<String>>("worker")?.unwrap_or_default(),
            heartbeat_at: row.get("heartbeat_at")?,
        })
    }
}
