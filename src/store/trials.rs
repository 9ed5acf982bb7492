//! Trials through their life: experiments and trials added, pending trials
//! claimed atomically, failures recorded, leases renewed, and trials put back
//! to pending through one requeue mechanism.

use super::rows::{NewTrial, TrialLease, TrialRow, TRIAL_COLUMNS};
use super::{now, Result, Store, TrialStatus};
use anyhow::{bail, Context};
use rusqlite::{params, OptionalExtension, Transaction};

/// Which trials a requeue looks at.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every trial of one experiment.
    Experiment(i64),
    /// These trials (unknown ids are skipped).
    Trials(&'a [i64]),
}

/// What a requeue keeps of a trial's earlier attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Nothing: its epochs, metrics, confusion matrices and artifacts are
    /// deleted; worker, device, times, error and lease are cleared.
    Fresh,
    /// Its recorded epochs and start time (a checkpoint lets it resume); worker,
    /// device, error and lease are cleared.
    Resume,
}

/// Which trials go back to pending, and how: those of `scope` whose status is
/// one of `from` and that `only` accepts.
#[derive(Clone, Copy)]
pub struct Requeue<'a> {
    /// Where to look.
    pub scope: Scope<'a>,
    /// Only trials in one of these statuses.
    pub from: &'a [TrialStatus],
    /// And only those this accepts (e.g. whose worker is gone); `None` takes
    /// all. It runs while the write lock is held, so it should be quick.
    pub only: Option<&'a dyn Fn(&TrialLease) -> bool>,
    /// What is kept of the earlier attempt.
    pub reset: Reset,
}

impl Store {
    /// Record an experiment by name, or update its spec text and hash; returns its id.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn upsert_experiment(&self, name: &str, spec_toml: &str, spec_hash: &str) -> Result<i64> {
        let tx = self.write()?;
        let id = tx
            .query_row(
                "INSERT INTO experiments (name, spec_toml, spec_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE
                 SET spec_toml = excluded.spec_toml, spec_hash = excluded.spec_hash
                 RETURNING id",
                params![name, spec_toml, spec_hash, now()],
                |row| row.get("id"),
            )
            .with_context(|| format!("cannot record experiment `{name}`"))?;
        tx.commit()?;
        Ok(id)
    }

    /// Insert trials as pending (with their search number) unless (experiment,
    /// config_hash) exists, which is left as it is; returns every trial's id in
    /// input order.
    ///
    /// # Errors
    /// No experiment `experiment_id`, or the database cannot be written.
    pub fn add_trials(&self, experiment_id: i64, trials: &[NewTrial]) -> Result<Vec<i64>> {
        let tx = self.write()?;
        let mut ids = Vec::with_capacity(trials.len());
        {
            let mut insert = tx.prepare(
                "INSERT INTO trials (experiment_id, config_json, config_hash, seed, status,
                                     search_number)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5)
                 ON CONFLICT(experiment_id, config_hash) DO NOTHING",
            )?;
            let mut select =
                tx.prepare("SELECT id FROM trials WHERE experiment_id = ?1 AND config_hash = ?2")?;
            for t in trials {
                insert
                    .execute(params![
                        experiment_id,
                        t.config_json,
                        t.config_hash,
                        t.seed as i64,
                        t.search_number
                    ])
                    .with_context(|| {
                        format!(
                            "cannot add trial {} to experiment {experiment_id}",
                            t.config_hash
                        )
                    })?;
                ids.push(select.query_row(params![experiment_id, t.config_hash], |r| r.get("id"))?);
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Atomically move one given trial from pending to running: the runner claims
    /// the trials of its own grid, so a trial left pending by an older version of
    /// the spec is not picked up. `None` when it is not pending, or cancelled in
    /// the queue (`lab queue cancel`). One UPDATE … RETURNING in a write
    /// transaction, so a claim is atomic across processes.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn claim_trial_id(
        &self,
        trial_id: i64,
        worker: &str,
        device: &str,
    ) -> Result<Option<TrialRow>> {
        let tx = self.write()?;
        let sql = format!(
            "UPDATE trials
             SET status = 'running', worker = ?2, device = ?3, started_at = ?4,
                 heartbeat_at = ?4, finished_at = NULL, error = NULL
             WHERE id = ?1 AND status = 'pending'
               AND id NOT IN (SELECT trial_id FROM queue WHERE cancelled_at IS NOT NULL)
             RETURNING {TRIAL_COLUMNS}"
        );
        let trial = tx
            .query_row(
                &sql,
                params![trial_id, worker, device, now()],
                TrialRow::from_row,
            )
            .optional()
            .with_context(|| format!("cannot claim trial {trial_id}"))?;
        tx.commit()?;
        Ok(trial)
    }

    /// Mark a trial failed with the error text.
    ///
    /// # Errors
    /// No such trial, or the database cannot be written.
    pub fn fail_trial(&self, trial_id: i64, error: &str) -> Result<()> {
        let tx = self.write()?;
        let changed = tx.execute(
            "UPDATE trials SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
            params![trial_id, error, now()],
        )?;
        if changed == 0 {
            bail!(
                "{}: no trial {trial_id} to mark failed",
                self.path.display()
            );
        }
        tx.commit()?;
        Ok(())
    }

    /// Record the data report (JSON) of the dataset a trial trains on, replacing
    /// an earlier one.
    ///
    /// # Errors
    /// No such trial, or the database cannot be written.
    pub fn record_data_report(&self, trial_id: i64, report_json: &str) -> Result<()> {
        let tx = self.write()?;
        let changed = tx.execute(
            "UPDATE trials SET data_report = ?2 WHERE id = ?1",
            params![trial_id, report_json],
        )?;
        if changed == 0 {
            bail!(
                "{}: no trial {trial_id} to record a data report for",
                self.path.display()
            );
        }
        tx.commit()?;
        Ok(())
    }

    /// The data report (JSON) recorded with a trial; `None` when none was (a trial
    /// that never started, one recorded by an older lab, or a database older than
    /// the column).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn data_report(&self, trial_id: i64) -> Result<Option<String>> {
        // A shard opened read-only may predate the column (schema version 4).
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < 4 {
            return Ok(None);
        }
        let report: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT data_report FROM trials WHERE id = ?1",
                [trial_id],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("cannot read the data report of trial {trial_id}"))?;
        Ok(report.flatten())
    }

    /// Where and how a trial ran (JSON, see `runner::provenance`); `None` when
    /// not recorded (not started, an older lab, or a database older than the
    /// column).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn provenance(&self, trial_id: i64) -> Result<Option<String>> {
        if !self.has_version(6)? {
            return Ok(None);
        }
        let found: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT provenance FROM trials WHERE id = ?1",
                [trial_id],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("cannot read the provenance of trial {trial_id}"))?;
        Ok(found.flatten())
    }

    /// Refresh the lease of a running trial held by `worker`; false when the trial
    /// is no longer running under that worker (it was reclaimed).
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn heartbeat(&self, trial_id: i64, worker: &str) -> Result<bool> {
        let tx = self.write()?;
        let changed = tx.execute(
            "UPDATE trials SET heartbeat_at = ?3
             WHERE id = ?1 AND worker = ?2 AND status = 'running'",
            params![trial_id, worker, now()],
        )?;
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Move the trials `r` selects back to pending. The selection and the reset
    /// happen in one write transaction. Returns their ids, ascending.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn requeue(&self, r: &Requeue) -> Result<Vec<i64>> {
        if r.from.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.write()?;
        let ids: Vec<i64> = candidates(&tx, r.scope)?
            .into_iter()
            .filter(|(lease, status)| r.from.contains(status) && r.only.is_none_or(|f| f(lease)))
            .map(|(lease, _)| lease.id)
            .collect();
        reset(&tx, &ids, r.reset)?;
        tx.commit()?;
        Ok(ids)
    }

    /// Put the experiment's running trials that `is_stale(worker, heartbeat_at)`
    /// judges abandoned back to pending, keeping their recorded epochs (a
    /// checkpoint lets them resume). A trial with no worker is passed "".
    /// Returns their ids.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn requeue_stale(
        &self,
        experiment_id: i64,
        is_stale: &dyn Fn(&str, Option<&str>) -> bool,
    ) -> Result<Vec<i64>> {
        self.requeue(&Requeue {
            scope: Scope::Experiment(experiment_id),
            from: &[TrialStatus::Running],
            only: Some(&|t: &TrialLease| is_stale(&t.worker, t.heartbeat_at.as_deref())),
            reset: Reset::Resume,
        })
    }

    /// Move the given failed trials back to pending with no trace of the failed
    /// attempt; returns how many moved.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn requeue_failed(&self, ids: &[i64]) -> Result<usize> {
        let moved = self.requeue(&Requeue {
            scope: Scope::Trials(ids),
            from: &[TrialStatus::Failed],
            only: None,
            reset: Reset::Fresh,
        })?;
        Ok(moved.len())
    }
}

/// The trials of `scope` with their status, ascending by id, each once.
fn candidates(tx: &Transaction, scope: Scope) -> Result<Vec<(TrialLease, TrialStatus)>> {
    fn read(row: &rusqlite::Row) -> rusqlite::Result<(TrialLease, String)> {
        Ok((TrialLease::from_row(row)?, row.get("status")?))
    }
    let columns = "id, worker, heartbeat_at, status";
    let rows: Vec<(TrialLease, String)> = match scope {
        Scope::Experiment(experiment_id) => {
            let mut stmt = tx.prepare(&format!(
                "SELECT {columns} FROM trials WHERE experiment_id = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([experiment_id], read)?;
            rows.collect::<rusqlite::Result<_>>()?
        }
        Scope::Trials(ids) => {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            let mut stmt = tx.prepare(&format!("SELECT {columns} FROM trials WHERE id = ?1"))?;
            let mut rows = Vec::new();
            for id in ids {
                rows.extend(stmt.query_row([id], read).optional()?);
            }
            rows
        }
    };
    rows.into_iter()
        .map(|(lease, status)| Ok((lease, status.parse()?)))
        .collect()
}

/// Back to pending, keeping what `how` says.
fn reset(tx: &Transaction, ids: &[i64], how: Reset) -> Result<()> {
    for id in ids {
        match how {
            Reset::Fresh => {
                for table in ["epochs", "metrics", "confusion", "artifacts", "predictions"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE trial_id = ?1"), [id])?;
                }
                tx.execute(
                    "UPDATE trials SET status = 'pending', worker = NULL, device = NULL,
                         started_at = NULL, finished_at = NULL, error = NULL, heartbeat_at = NULL,
                         data_report = NULL, test_split = NULL, provenance = NULL,
                         pruned_reason = NULL
                     WHERE id = ?1",
                    [id],
                )?;
            }
            Reset::Resume => {
                tx.execute(
                    "UPDATE trials SET status = 'pending', worker = NULL, device = NULL,
                         heartbeat_at = NULL, error = NULL, pruned_reason = NULL
                     WHERE id = ?1",
                    [id],
                )?;
            }
        }
    }
    Ok(())
}
