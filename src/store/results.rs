//! What a trial records: its epochs as they end, then its metrics, confusion
//! matrices and artifacts with status done, in one transaction. The row
//! inserts are shared with `merge` (copying a trial from a shard).

use super::rows::{ArtifactRow, ConfusionRow, MetricRow, TrialResult};
use super::{EpochRecord, Result, Store};
use anyhow::{bail, Context};
use rusqlite::{params, OptionalExtension, Transaction};

impl Store {
    /// Record (or replace) one epoch of a trial.
    ///
    /// # Errors
    /// No such trial, or the database cannot be written.
    pub fn record_epoch(&self, trial_id: i64, epoch: &EpochRecord) -> Result<()> {
        let tx = self.write()?;
        insert_epoch(&tx, trial_id, epoch)?;
        tx.commit()?;
        Ok(())
    }

    /// Forget a trial's epochs after `epoch` (those a checkpoint does not cover).
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn truncate_epochs(&self, trial_id: i64, epoch: usize) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            "DELETE FROM epochs WHERE trial_id = ?1 AND epoch > ?2",
            params![trial_id, epoch as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Metrics, confusion matrices and artifacts, and status done, in one transaction.
    /// Earlier results of the trial are replaced.
    ///
    /// # Errors
    /// No such trial, a metric, matrix or artifact given twice, or the database
    /// cannot be written; then nothing is changed.
    pub fn finish_trial(&self, trial_id: i64, result: &TrialResult) -> Result<()> {
        let tx = self.write()?;
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM trials WHERE id = ?1", [trial_id], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            bail!("{}: no trial {trial_id} to finish", self.path.display());
        }
        write_result(&tx, trial_id, result)?;
        tx.commit()?;
        Ok(())
    }
}

/// Status done with these metrics, confusion matrices and artifacts (earlier
/// ones replaced), inside the caller's transaction.
pub(crate) fn write_result(tx: &Transaction, trial_id: i64, result: &TrialResult) -> Result<()> {
    tx.execute(
        "UPDATE trials SET status = 'done', finished_at = ?2, error = NULL, test_split = ?3,
             pruned_reason = NULL
         WHERE id = ?1",
        params![trial_id, super::now(), result.test_split],
    )?;
    for table in ["metrics", "confusion", "artifacts", "predictions"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE trial_id = ?1"),
            [trial_id],
        )?;
    }
    for m in &result.metrics {
        insert_metric(tx, trial_id, m)?;
    }
    for c in &result.confusion {
        insert_confusion(tx, trial_id, c)?;
    }
    for a in &result.artifacts {
        insert_artifact(tx, trial_id, a)?;
    }
    for (split, p) in &result.predictions {
        super::predictions::insert(tx, trial_id, split, p)?;
    }
    Ok(())
}

/// Insert (or replace) one epoch row.
pub(crate) fn insert_epoch(tx: &Transaction, trial_id: i64, epoch: &EpochRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO epochs (trial_id, epoch, train_loss, valid_loss, valid_accuracy,
                             valid_macro_f1, lr, seconds, samples_per_second)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(trial_id, epoch) DO UPDATE SET
             train_loss = excluded.train_loss, valid_loss = excluded.valid_loss,
             valid_accuracy = excluded.valid_accuracy,
             valid_macro_f1 = excluded.valid_macro_f1, lr = excluded.lr,
             seconds = excluded.seconds, samples_per_second = excluded.samples_per_second",
        params![
            trial_id,
            epoch.epoch as i64,
            epoch.train_loss,
            epoch.valid_loss,
            epoch.valid_accuracy,
            epoch.valid_macro_f1,
            epoch.lr,
            epoch.seconds,
            epoch.samples_per_second
        ],
    )
    .with_context(|| format!("cannot record epoch {} of trial {trial_id}", epoch.epoch))?;
    Ok(())
}

/// Insert one metric; the same (split, name) twice is an error.
pub(crate) fn insert_metric(tx: &Transaction, trial_id: i64, m: &MetricRow) -> Result<()> {
    tx.execute(
        "INSERT INTO metrics (trial_id, split, name, value) VALUES (?1, ?2, ?3, ?4)",
        params![trial_id, m.split, m.name, m.value],
    )
    .with_context(|| {
        format!(
            "trial {trial_id}: cannot record metric {}.{} (given twice?)",
            m.split, m.name
        )
    })?;
    Ok(())
}

/// Insert one split's confusion matrix; the same split twice is an error.
pub(crate) fn insert_confusion(tx: &Transaction, trial_id: i64, c: &ConfusionRow) -> Result<()> {
    tx.execute(
        "INSERT INTO confusion (trial_id, split, matrix_json, labels_json)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            trial_id,
            c.split,
            serde_json::to_string(&c.matrix)?,
            serde_json::to_string(&c.labels)?
        ],
    )
    .with_context(|| {
        format!(
            "trial {trial_id}: cannot record the {} confusion matrix (given twice?)",
            c.split
        )
    })?;
    Ok(())
}

/// Insert one artifact; the same kind twice is an error.
pub(crate) fn insert_artifact(tx: &Transaction, trial_id: i64, a: &ArtifactRow) -> Result<()> {
    tx.execute(
        "INSERT INTO artifacts (trial_id, kind, path, sha256) VALUES (?1, ?2, ?3, ?4)",
        params![trial_id, a.kind, a.path, a.sha256],
    )
    .with_context(|| {
        format!(
            "trial {trial_id}: cannot record artifact `{}` (given twice?)",
            a.kind
        )
    })?;
    Ok(())
}
