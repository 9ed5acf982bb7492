//! Writes made while owning a trial: one write transaction that first checks the
//! trial is still `running` under this worker, so a worker whose lease expired
//! and whose trial another worker took over writes nothing (no epoch, no result,
//! no file renamed into place inside the closure). SQLite's write lock is held
//! for the whole closure, so no other worker can claim the trial meanwhile.

use super::results::{insert_epoch, write_result};
use super::rows::TrialResult;
use super::{EpochRecord, Result, Store, TrialStatus};
use anyhow::Context;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashMap;

/// This worker no longer owns the trial: its lease expired and another worker
/// claimed it (or it was requeued); nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("trial {trial_id} was taken over by another worker after this one's lease expired; its results were not recorded")]
pub struct LostLease {
    /// The trial concerned.
    pub trial_id: i64,
}

/// A write transaction in which `worker` owns `trial_id` (checked at its start).
pub struct Owned<'t> {
    tx: &'t Transaction<'t>,
    trial_id: i64,
}

impl Store {
    /// Run `f` in one write transaction that first checks that `trial_id` is
    /// `running` under `worker`; commit when `f` succeeds, roll back otherwise.
    /// Files renamed into place inside `f` are renamed while the trial is owned.
    ///
    /// # Errors
    /// [`LostLease`] (nothing is written) when the trial is not this worker's;
    /// `f`'s error; or the database cannot be written.
    pub fn while_owning<T>(
        &self,
        trial_id: i64,
        worker: &str,
        f: impl FnOnce(&Owned) -> Result<T>,
    ) -> Result<T> {
        let tx = self.write()?;
        let owned: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM trials WHERE id = ?1 AND status = 'running' AND worker = ?2",
                params![trial_id, worker],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("{}: cannot read trial {trial_id}", self.path.display()))?;
        if owned.is_none() {
            return Err(LostLease { trial_id }.into());
        }
        let value = f(&Owned { tx: &tx, trial_id })?;
        tx.commit().with_context(|| {
            format!(
                "{}: cannot commit the writes of trial {trial_id}",
                self.path.display()
            )
        })?;
        Ok(value)
    }

    /// Run `f` with the status of every trial of an experiment while holding the
    /// write lock: no trial can be claimed or finished until `f` returns (how
    /// leftover files are cleaned up without racing a worker that claims).
    ///
    /// # Errors
    /// `f`'s error, or the database cannot be read or locked.
    pub fn with_statuses_locked<T>(
        &self,
        experiment_id: i64,
        f: impl FnOnce(&HashMap<i64, TrialStatus>) -> Result<T>,
    ) -> Result<T> {
        let tx = self.write()?;
        let mut statuses = HashMap::new();
        {
            let mut stmt = tx.prepare("SELECT id, status FROM trials WHERE experiment_id = ?1")?;
            let rows = stmt.query_map([experiment_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (id, status) = row?;
                statuses.insert(id, status.parse()?);
            }
        }
        let value = f(&statuses)?;
        tx.commit()?;
        Ok(value)
    }

    /// This database's identity: random, created once with the database and
    /// never copied by a merge.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn store_id(&self) -> Result<String> {
        self.conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = 'store_id'",
                [],
                |r| r.get(0),
            )
            .with_context(|| format!("{}: cannot read the store's id", self.path.display()))
    }
}

impl Owned<'_> {
    /// Record (or replace) one epoch.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn record_epoch(&self, epoch: &EpochRecord) -> Result<()> {
        insert_epoch(self.tx, self.trial_id, epoch)
    }

    /// Make the trial's epochs exactly `records` (those of a checkpoint, epochs
    /// 1..k; none for a fresh start): later ones are deleted, these written back.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn set_epochs(&self, records: &[EpochRecord]) -> Result<()> {
        let last = records.iter().map(|r| r.epoch).max().unwrap_or(0);
        self.tx.execute(
            "DELETE FROM epochs WHERE trial_id = ?1 AND epoch > ?2",
            params![self.trial_id, last as i64],
        )?;
        for r in records {
            insert_epoch(self.tx, self.trial_id, r)?;
        }
        Ok(())
    }

    /// Record where and how the trial runs (JSON), replacing what was there.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn record_provenance(&self, provenance_json: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE trials SET provenance = ?2 WHERE id = ?1",
            params![self.trial_id, provenance_json],
        )?;
        Ok(())
    }

    /// Record the data report (JSON) of the trial's dataset.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn record_data_report(&self, report_json: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE trials SET data_report = ?2 WHERE id = ?1",
            params![self.trial_id, report_json],
        )?;
        Ok(())
    }

    /// Epochs (exactly `epochs`), metrics, confusion matrices and artifacts, and
    /// status done; earlier results are replaced.
    ///
    /// # Errors
    /// A metric, matrix or artifact given twice, or the database cannot be written.
    pub fn finish(&self, epochs: &[EpochRecord], result: &TrialResult) -> Result<()> {
        self.set_epochs(epochs)?;
        write_result(self.tx, self.trial_id, result)
    }

    /// Mark the trial pruned: stopped early by a search's pruner, for `reason`
    /// (e.g. "pruned at epoch 2: 0.61 < median 0.68 of 5 finished trials").
    /// Its recorded epochs and artifacts stay; it has no metrics, confusion
    /// matrices or predictions (any are deleted) and no test split. Final like
    /// done: no claim, requeue of stale trials or `--retry-failed` takes it.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn prune(&self, reason: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE trials SET status = 'pruned', pruned_reason = ?2, finished_at = ?3,
                 error = NULL, test_split = NULL, heartbeat_at = NULL
             WHERE id = ?1",
            params![self.trial_id, reason, super::now()],
        )?;
        for table in ["metrics", "confusion", "predictions"] {
            self.tx.execute(
                &format!("DELETE FROM {table} WHERE trial_id = ?1"),
                [self.trial_id],
            )?;
        }
        Ok(())
    }

    /// Mark the trial failed with the error text.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn fail(&self, error: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE trials SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
            params![self.trial_id, error, super::now()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewTrial;

    fn epoch(n: usize) -> EpochRecord {
        EpochRecord {
            epoch: n,
            train_loss: 0.5,
            valid_loss: 0.5,
            valid_accuracy: 0.5,
            valid_macro_f1: 0.5,
            lr: 0.01,
            seconds: 1.0,
            samples_per_second: 1.0,
        }
    }

    #[test]
    fn only_the_owner_writes_and_the_epochs_become_exactly_those_given() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("lab.db")).unwrap();
        let experiment = store.upsert_experiment("e", "", "h").unwrap();
        let new = NewTrial {
            config_json: "{}".into(),
            config_hash: "c".into(),
            seed: 1,
            search_number: None,
        };
        let id = store.add_trials(experiment, &[new]).unwrap()[0];
        let err = store.while_owning(id, "a:1", |_| Ok(())).unwrap_err();
        assert!(
            err.is::<LostLease>(),
            "a pending trial is nobody's: {err:#}"
        );
        store.claim_trial_id(id, "a:1", "cpu").unwrap().unwrap();
        store
            .while_owning(id, "a:1", |o| {
                (1..=4).try_for_each(|n| o.record_epoch(&epoch(n)))
            })
            .unwrap();
        let err = store.while_owning(id, "b:2", |o| o.fail("x")).unwrap_err();
        assert!(err.is::<LostLease>(), "{err:#}");
        store
            .while_owning(id, "a:1", |o| o.set_epochs(&[epoch(1), epoch(2)]))
            .unwrap();
        let numbers: Vec<usize> = store.epochs(id).unwrap().iter().map(|e| e.epoch).collect();
        assert_eq!(numbers, [1, 2]);
        // An error inside rolls everything back.
        let _ = store.while_owning::<()>(id, "a:1", |o| {
            o.set_epochs(&[])?;
            anyhow::bail!("no")
        });
        assert_eq!(store.epochs(id).unwrap().len(), 2);
        assert_eq!(store.store_id().unwrap().len(), 32);
    }
}
