//! Reads for compare, show, status and reports: experiments, trials, their
//! epochs, metrics, confusion matrices and artifacts. Nothing here writes.

use super::rows::{
    ArtifactRow, ConfusionRow, ExperimentRow, MetricRow, TrialLease, TrialMetric, TrialRow,
    EXPERIMENT_COLUMNS, TRIAL_COLUMNS,
};
use super::{EpochRecord, Result, StatusCounts, Store};
use anyhow::Context;
use rusqlite::{params, OptionalExtension};

impl Store {
    /// How many of the experiment's trials are in each status.
    ///
    /// # Errors
    /// The database cannot be read, or holds an unknown status.
    pub fn status_counts(&self, experiment_id: i64) -> Result<StatusCounts> {
        let mut stmt = self.conn.prepare(
            "SELECT status, COUNT(*) AS n FROM trials WHERE experiment_id = ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map([experiment_id], |r| {
            Ok((r.get::<_, String>("status")?, r.get::<_, i64>("n")?))
        })?;
        let mut counts = StatusCounts::default();
        for row in rows {
            let (status, n) = row?;
            counts.add(status.parse()?, n as usize);
        }
        Ok(counts)
    }

    /// Every experiment, oldest first.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiments(&self) -> Result<Vec<ExperimentRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY id"
        ))?;
        let rows = stmt.query_map([], ExperimentRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The experiment of this name, if any.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentRow>> {
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE name = ?1");
        Ok(self
            .conn
            .query_row(&sql, [name], ExperimentRow::from_row)
            .optional()?)
    }

    /// The experiment named `name`, for commands that were given one.
    ///
    /// # Errors
    /// No experiment has that name ("no experiment `NAME` in DB"), or the query fails.
    pub fn require_experiment(&self, name: &str) -> Result<ExperimentRow> {
        self.experiment_by_name(name)?
            .with_context(|| format!("no experiment `{name}` in {}", self.path().display()))
    }

    /// The experiment with this id, if any.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiment(&self, experiment_id: i64) -> Result<Option<ExperimentRow>> {
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE id = ?1");
        Ok(self
            .conn
            .query_row(&sql, [experiment_id], ExperimentRow::from_row)
            .optional()?)
    }

    /// The experiment's trials in id order.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn trials(&self, experiment_id: i64) -> Result<Vec<TrialRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {TRIAL_COLUMNS} FROM trials WHERE experiment_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([experiment_id], TrialRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The trial with this id, if any.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn trial(&self, trial_id: i64) -> Result<Option<TrialRow>> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE id = ?1");
        Ok(self
            .conn
            .query_row(&sql, [trial_id], TrialRow::from_row)
            .optional()?)
    }

    /// Running trials of the experiment with their leases, in id order.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn running(&self, experiment_id: i64) -> Result<Vec<TrialLease>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, worker, heartbeat_at FROM trials
             WHERE experiment_id = ?1 AND status = 'running' ORDER BY id",
        )?;
        let rows = stmt.query_map([experiment_id], TrialLease::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The trial's epochs in order.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn epochs(&self, trial_id: i64) -> Result<Vec<EpochRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT epoch, train_loss, valid_loss, valid_accuracy, valid_macro_f1, lr, seconds,
                    samples_per_second
             FROM epochs WHERE trial_id = ?1 ORDER BY epoch",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(EpochRecord {
                epoch: r.get::<_, i64>("epoch")? as usize,
                train_loss: r.get("train_loss")?,
                valid_loss: r.get("valid_loss")?,
                valid_accuracy: r.get("valid_accuracy")?,
                valid_macro_f1: r.get("valid_macro_f1")?,
                lr: r.get("lr")?,
                seconds: r.get("seconds")?,
                samples_per_second: r.get("samples_per_second")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The trial's metrics, ordered by split and name.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn metrics(&self, trial_id: i64) -> Result<Vec<MetricRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT split, name, value FROM metrics WHERE trial_id = ?1 ORDER BY split, name",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(MetricRow {
                split: r.get("split")?,
                name: r.get("name")?,
                value: r.get("value")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One split's metrics of every done trial of the experiment, in one query,
    /// ordered by trial id then name.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiment_metrics(&self, experiment_id: i64, split: &str) -> Result<Vec<TrialMetric>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.trial_id, m.name, m.value
             FROM metrics m JOIN trials t ON t.id = m.trial_id
             WHERE t.experiment_id = ?1 AND t.status = 'done' AND m.split = ?2
             ORDER BY m.trial_id, m.name",
        )?;
        let rows = stmt.query_map(params![experiment_id, split], |r| {
            Ok(TrialMetric {
                trial_id: r.get("trial_id")?,
                name: r.get("name")?,
                value: r.get("value")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The trial's confusion matrices, ordered by split.
    ///
    /// # Errors
    /// The database cannot be read, or holds a malformed matrix.
    pub fn confusion(&self, trial_id: i64) -> Result<Vec<ConfusionRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT split, matrix_json, labels_json FROM confusion WHERE trial_id = ?1 ORDER BY split",
        )?;
        let mut rows = stmt.query([trial_id])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let split: String = row.get("split")?;
            let matrix: String = row.get("matrix_json")?;
            let labels: String = row.get("labels_json")?;
            let context =
                || format!("trial {trial_id}: malformed {split} confusion matrix in the store");
            out.push(ConfusionRow {
                matrix: serde_json::from_str(&matrix).with_context(context)?,
                labels: serde_json::from_str(&labels).with_context(context)?,
                split,
            });
        }
        Ok(out)
    }

    /// The trial's artifacts, ordered by kind.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn artifacts(&self, trial_id: i64) -> Result<Vec<ArtifactRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, path, sha256 FROM artifacts WHERE trial_id = ?1 ORDER BY kind",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(ArtifactRow {
                kind: r.get("kind")?,
                path: r.get("path")?,
                sha256: r.get("sha256")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
