//! The SQLite store: schema and migrations in one place, every state change in a
//! transaction, atomic claims of pending trials. Knows nothing of candle.

mod merge;
mod queue;
mod schema;
mod status;

pub use merge::MergeSummary;
pub use queue::{Cancelled, QueueEntry, QueuedTrial};
pub use schema::{latest_version, MIGRATIONS};
pub use status::{StatusCounts, TrialStatus};

use anyhow::{anyhow, bail, Context};
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub type Result<T> = anyhow::Result<T>;

/// How long a writer waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a writer keeps retrying a busy database before reporting it.
const WRITE_PATIENCE: Duration = Duration::from_secs(600);

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
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

/// One connection to the database file. Not shared between threads: each thread
/// or process opens its own; SQLite's locks make their writes safe.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Current time as RFC 3339 UTC, the form of every timestamp in the store.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const TRIAL_COLUMNS: &str = "id, experiment_id, config_json, config_hash, seed, status, device, \
                             worker, started_at, finished_at, error";

fn trial_from_row(row: &Row) -> rusqlite::Result<TrialRow> {
    let status: String = row.get(5)?;
    let status = status.parse::<TrialStatus>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(TrialRow {
        id: row.get(0)?,
        experiment_id: row.get(1)?,
        config_json: row.get(2)?,
        config_hash: row.get(3)?,
        // Seeds are stored as i64 bit patterns so that all u64 seeds fit.
        seed: row.get::<_, i64>(4)? as u64,
        status,
        device: row.get(6)?,
        worker: row.get(7)?,
        started_at: row.get(8)?,
        finished_at: row.get(9)?,
        error: row.get(10)?,
    })
}

fn experiment_from_row(row: &Row) -> rusqlite::Result<ExperimentRow> {
    Ok(ExperimentRow {
        id: row.get(0)?,
        name: row.get(1)?,
        spec_toml: row.get(2)?,
        spec_hash: row.get(3)?,
        created_at: row.get(4)?,
    })
}

impl Store {
    /// Open (creating parent dirs and the file), WAL, foreign keys, busy timeout, migrate.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The first statement that reads the header is where a foreign file shows up.
        // Switching to WAL needs a moment alone with the file: retry while another
        // process is creating or migrating it.
        let start = std::time::Instant::now();
        let journal = journal_mode()?;
        loop {
            match conn.pragma_update(None, "journal_mode", journal) {
                Err(e) if is_busy(&e) && start.elapsed() < WRITE_PATIENCE => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => break other.map_err(|e| not_a_database(path, e))?,
            }
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing database for reading only: nothing is written to it, not
    /// even a migration (how `lab merge` and `lab status --shards` read shards that
    /// may still be written by a Slurm task on another node).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.is_file() {
            bail!("no database at {}", path.display());
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| not_a_database(path, e))?;
        if version > latest_version() {
            bail!(
                "{}: the database has schema version {version} but this build of lab knows \
                 versions up to {}; upgrade lab to open it",
                path.display(),
                latest_version()
            );
        }
        if version < 1 {
            bail!(
                "{} is not a lab database (it has no lab schema)",
                path.display()
            );
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A write transaction that takes the write lock up front, so that it waits
    /// (busy timeout) instead of failing when another writer upgrades first.
    fn write(&self) -> Result<Transaction<'_>> {
        // The busy timeout already waits; beyond it, back off and retry so that a
        // long writer elsewhere never surfaces as "database is locked".
        let mut pause = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        loop {
            match Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate) {
                Ok(tx) => return Ok(tx),
                Err(e) if is_busy(&e) && waited < WRITE_PATIENCE => {
                    std::thread::sleep(pause);
                    waited += pause + BUSY_TIMEOUT;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "{}: cannot start a write transaction",
                        self.path.display()
                    )))
                }
            }
        }
    }

    /// Experiments are identified by name; the latest spec text and hash are kept.
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
                |row| row.get(0),
            )
            .with_context(|| format!("cannot record experiment `{name}`"))?;
        tx.commit()?;
        Ok(id)
    }

    /// Insert trials as pending unless (experiment, config_hash) exists; returns every
    /// trial's id in input order. Items are (config_json, config_hash, seed).
    pub fn add_trials(
        &self,
        experiment_id: i64,
        trials: &[(String, String, u64)],
    ) -> Result<Vec<i64>> {
        let tx = self.write()?;
        let mut ids = Vec::with_capacity(trials.len());
        {
            let mut insert = tx.prepare(
                "INSERT INTO trials (experiment_id, config_json, config_hash, seed, status)
                 VALUES (?1, ?2, ?3, ?4, 'pending')
                 ON CONFLICT(experiment_id, config_hash) DO NOTHING",
            )?;
            let mut select =
                tx.prepare("SELECT id FROM trials WHERE experiment_id = ?1 AND config_hash = ?2")?;
            for (config_json, config_hash, seed) in trials {
                insert
                    .execute(params![
                        experiment_id,
                        config_json,
                        config_hash,
                        *seed as i64
                    ])
                    .with_context(|| {
                        format!("cannot add trial {config_hash} to experiment {experiment_id}")
                    })?;
                ids.push(select.query_row(params![experiment_id, config_hash], |r| r.get(0))?);
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Atomically move one pending trial of the experiment (lowest id first) to running.
    pub fn claim_trial(
        &self,
        experiment_id: i64,
        worker: &str,
        device: &str,
    ) -> Result<Option<TrialRow>> {
        self.claim(
            "id = (SELECT id FROM trials WHERE experiment_id = ?1 AND status = 'pending'
                   AND id NOT IN (SELECT trial_id FROM queue WHERE cancelled_at IS NOT NULL)
                   ORDER BY id LIMIT 1)",
            experiment_id,
            worker,
            device,
        )
        .with_context(|| format!("cannot claim a trial of experiment {experiment_id}"))
    }

    /// Atomically move one given trial from pending to running: the runner claims
    /// the trials of its own grid, so a trial left pending by an older version of
    /// the spec is not picked up. `None` when it is not pending, or cancelled in
    /// the queue (`lab queue cancel`).
    pub fn claim_trial_id(
        &self,
        trial_id: i64,
        worker: &str,
        device: &str,
    ) -> Result<Option<TrialRow>> {
        self.claim(
            "id = ?1 AND status = 'pending'
             AND id NOT IN (SELECT trial_id FROM queue WHERE cancelled_at IS NOT NULL)",
            trial_id,
            worker,
            device,
        )
        .with_context(|| format!("cannot claim trial {trial_id}"))
    }

    /// One UPDATE … RETURNING in a write transaction, so a claim is atomic across
    /// processes; `filter` selects the trial with `?1` bound to `key`.
    fn claim(
        &self,
        filter: &str,
        key: i64,
        worker: &str,
        device: &str,
    ) -> Result<Option<TrialRow>> {
        let tx = self.write()?;
        let sql = format!(
            "UPDATE trials
             SET status = 'running', worker = ?2, device = ?3, started_at = ?4,
                 heartbeat_at = ?4, finished_at = NULL, error = NULL
             WHERE {filter}
             RETURNING {TRIAL_COLUMNS}"
        );
        let trial = tx
            .query_row(&sql, params![key, worker, device, now()], trial_from_row)
            .optional()?;
        tx.commit()?;
        Ok(trial)
    }

    /// Record (or replace) one epoch of a trial.
    pub fn record_epoch(&self, trial_id: i64, epoch: &EpochRow) -> Result<()> {
        let tx = self.write()?;
        insert_epoch(&tx, trial_id, epoch)?;
        tx.commit()?;
        Ok(())
    }

    /// Metrics, confusion matrices and artifacts, and status done, in one transaction.
    /// Earlier results of the trial are replaced.
    pub fn finish_trial(&self, trial_id: i64, result: &TrialResult) -> Result<()> {
        let tx = self.write()?;
        let changed = tx.execute(
            "UPDATE trials SET status = 'done', finished_at = ?2, error = NULL WHERE id = ?1",
            params![trial_id, now()],
        )?;
        if changed == 0 {
            bail!("{}: no trial {trial_id} to finish", self.path.display());
        }
        for table in ["metrics", "confusion", "artifacts"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE trial_id = ?1"),
                [trial_id],
            )?;
        }
        for (split, name, value) in &result.metrics {
            insert_metric(&tx, trial_id, split, name, *value)?;
        }
        for c in &result.confusion {
            insert_confusion(&tx, trial_id, c)?;
        }
        for a in &result.artifacts {
            insert_artifact(&tx, trial_id, a)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Mark a trial failed with the error text.
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

    /// Move the experiment's trials in any of `from` back to pending, forgetting
    /// their worker, device, times, error and recorded results. Returns how many.
    pub fn requeue(&self, experiment_id: i64, from: &[TrialStatus]) -> Result<usize> {
        if from.is_empty() {
            return Ok(0);
        }
        let tx = self.write()?;
        let mut ids = Vec::new();
        {
            let mut stmt =
                tx.prepare("SELECT id FROM trials WHERE experiment_id = ?1 AND status = ?2")?;
            for status in from {
                let rows = stmt.query_map(params![experiment_id, status.as_str()], |r| r.get(0))?;
                for id in rows {
                    ids.push(id?);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        reset_trials(&tx, &ids)?;
        tx.commit()?;
        Ok(ids.len())
    }

    /// Requeue the experiment's running trials whose worker `is_dead` says is gone
    /// (a crashed process). A running trial with no worker is passed as "".
    /// `is_dead` runs while the write lock is held, so it should be quick.
    pub fn requeue_running_if(
        &self,
        experiment_id: i64,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> Result<usize> {
        let tx = self.write()?;
        let running: Vec<(i64, Option<String>)> = {
            let mut stmt = tx.prepare(
                "SELECT id, worker FROM trials WHERE experiment_id = ?1 AND status = 'running'",
            )?;
            let rows = stmt.query_map([experiment_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let ids: Vec<i64> = running
            .into_iter()
            .filter(|(_, worker)| is_dead(worker.as_deref().unwrap_or("")))
            .map(|(id, _)| id)
            .collect();
        reset_trials(&tx, &ids)?;
        tx.commit()?;
        Ok(ids.len())
    }

    /// Refresh the lease of a running trial held by `worker`; false when the trial
    /// is no longer running under that worker (it was reclaimed).
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

    /// Running trials of the experiment as (id, worker, last heartbeat).
    pub fn running(&self, experiment_id: i64) -> Result<Vec<(i64, String, Option<String>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, COALESCE(worker, ''), heartbeat_at FROM trials
             WHERE experiment_id = ?1 AND status = 'running' ORDER BY id",
        )?;
        let rows = stmt.query_map([experiment_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Put running trials that `is_stale(worker, heartbeat_at)` judges abandoned back
    /// to pending, keeping their recorded epochs (a checkpoint lets them resume).
    /// The check and the reset happen in one transaction. Returns their ids.
    pub fn requeue_stale(
        &self,
        experiment_id: i64,
        is_stale: &dyn Fn(&str, Option<&str>) -> bool,
    ) -> Result<Vec<i64>> {
        let tx = self.write()?;
        let running: Vec<(i64, String, Option<String>)> = {
            let mut stmt = tx.prepare(
                "SELECT id, COALESCE(worker, ''), heartbeat_at FROM trials
                 WHERE experiment_id = ?1 AND status = 'running'",
            )?;
            let rows =
                stmt.query_map([experiment_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let ids: Vec<i64> = running
            .into_iter()
            .filter(|(_, w, h)| is_stale(w, h.as_deref()))
            .map(|(id, _, _)| id)
            .collect();
        for id in &ids {
            tx.execute(
                "UPDATE trials SET status = 'pending', worker = NULL, device = NULL,
                     heartbeat_at = NULL, error = NULL
                 WHERE id = ?1 AND status = 'running'",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Forget a trial's epochs after `epoch` (those a checkpoint does not cover).
    pub fn truncate_epochs(&self, trial_id: i64, epoch: usize) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            "DELETE FROM epochs WHERE trial_id = ?1 AND epoch > ?2",
            params![trial_id, epoch as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Move the given failed trials back to pending; returns how many moved.
    pub fn requeue_failed(&self, ids: &[i64]) -> Result<usize> {
        let tx = self.write()?;
        let mut failed = Vec::new();
        for &id in ids {
            let status: Option<String> = tx
                .query_row("SELECT status FROM trials WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            if status.as_deref() == Some("failed") {
                failed.push(id);
            }
        }
        reset_trials(&tx, &failed)?;
        tx.commit()?;
        Ok(failed.len())
    }

    /// How many of the experiment's trials are in each status.
    pub fn status_counts(&self, experiment_id: i64) -> Result<StatusCounts> {
        let mut stmt = self.conn.prepare(
            "SELECT status, COUNT(*) FROM trials WHERE experiment_id = ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map([experiment_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut counts = StatusCounts::default();
        for row in rows {
            let (status, n) = row?;
            counts.add(status.parse()?, n as usize);
        }
        Ok(counts)
    }

    /// Every experiment, oldest first.
    pub fn experiments(&self) -> Result<Vec<ExperimentRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, spec_toml, spec_hash, created_at FROM experiments ORDER BY id",
        )?;
        let rows = stmt.query_map([], experiment_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, spec_toml, spec_hash, created_at FROM experiments WHERE name = ?1",
                [name],
                experiment_from_row,
            )
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
    pub fn experiment(&self, experiment_id: i64) -> Result<Option<ExperimentRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, spec_toml, spec_hash, created_at FROM experiments WHERE id = ?1",
                [experiment_id],
                experiment_from_row,
            )
            .optional()?)
    }

    /// The experiment's trials in id order.
    pub fn trials(&self, experiment_id: i64) -> Result<Vec<TrialRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {TRIAL_COLUMNS} FROM trials WHERE experiment_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([experiment_id], trial_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn trial(&self, trial_id: i64) -> Result<Option<TrialRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE id = ?1"),
                [trial_id],
                trial_from_row,
            )
            .optional()?)
    }

    /// The trial's epochs in order.
    pub fn epochs(&self, trial_id: i64) -> Result<Vec<EpochRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT epoch, train_loss, valid_loss, valid_accuracy, valid_macro_f1, lr, seconds,
                    samples_per_second
             FROM epochs WHERE trial_id = ?1 ORDER BY epoch",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(EpochRow {
                epoch: r.get::<_, i64>(0)? as usize,
                train_loss: r.get(1)?,
                valid_loss: r.get(2)?,
                valid_accuracy: r.get(3)?,
                valid_macro_f1: r.get(4)?,
                lr: r.get(5)?,
                seconds: r.get(6)?,
                samples_per_second: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// (split, name, value)
    pub fn metrics(&self, trial_id: i64) -> Result<Vec<(String, String, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT split, name, value FROM metrics WHERE trial_id = ?1 ORDER BY split, name",
        )?;
        let rows = stmt.query_map([trial_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One split's metrics of every done trial of the experiment, in one query:
    /// (trial_id, name, value), ordered by trial id.
    pub fn experiment_metrics(
        &self,
        experiment_id: i64,
        split: &str,
    ) -> Result<Vec<(i64, String, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.trial_id, m.name, m.value
             FROM metrics m JOIN trials t ON t.id = m.trial_id
             WHERE t.experiment_id = ?1 AND t.status = 'done' AND m.split = ?2
             ORDER BY m.trial_id, m.name",
        )?;
        let rows = stmt.query_map(params![experiment_id, split], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn confusion(&self, trial_id: i64) -> Result<Vec<ConfusionRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT split, matrix_json, labels_json FROM confusion WHERE trial_id = ?1 ORDER BY split",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (split, matrix, labels) = row?;
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

    pub fn artifacts(&self, trial_id: i64) -> Result<Vec<ArtifactRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, path, sha256 FROM artifacts WHERE trial_id = ?1 ORDER BY kind",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(ArtifactRow {
                kind: r.get(0)?,
                path: r.get(1)?,
                sha256: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Back to pending with no trace of the earlier attempt.
fn reset_trials(tx: &Transaction, ids: &[i64]) -> Result<()> {
    for id in ids {
        for table in ["epochs", "metrics", "confusion", "artifacts"] {
            tx.execute(&format!("DELETE FROM {table} WHERE trial_id = ?1"), [id])?;
        }
        tx.execute(
            "UPDATE trials SET status = 'pending', worker = NULL, device = NULL,
                 started_at = NULL, finished_at = NULL, error = NULL, heartbeat_at = NULL
             WHERE id = ?1",
            [id],
        )?;
    }
    Ok(())
}

/// `LAB_SQLITE_JOURNAL`: `wal` (the default: readers never wait) or `delete`
/// (a rollback journal, for a database on a network file system written by one
/// process and read from other hosts: what Slurm array tasks use for their shards).
fn journal_mode() -> Result<&'static str> {
    match std::env::var("LAB_SQLITE_JOURNAL").as_deref() {
        Err(_) | Ok("") | Ok("wal") => Ok("WAL"),
        Ok("delete") => Ok("DELETE"),
        Ok(other) => bail!("LAB_SQLITE_JOURNAL={other}: expected `wal` or `delete`"),
    }
}

/// SQLite says "file is not a database"; say which file.
fn not_a_database(path: &Path, err: rusqlite::Error) -> anyhow::Error {
    if err.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
        anyhow!(
            "{} is not an SQLite database (lab's store is an SQLite file)",
            path.display()
        )
    } else {
        anyhow::Error::new(err).context(format!("cannot open database {}", path.display()))
    }
}

// One row of a trial's results: shared by `Store` (recording a trial) and
// `merge` (copying one from a shard).

/// Insert (or replace) one epoch row.
pub(crate) fn insert_epoch(tx: &Transaction, trial_id: i64, epoch: &EpochRow) -> Result<()> {
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

pub(crate) fn insert_metric(
    tx: &Transaction,
    trial_id: i64,
    split: &str,
    name: &str,
    value: f64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO metrics (trial_id, split, name, value) VALUES (?1, ?2, ?3, ?4)",
        params![trial_id, split, name, value],
    )
    .with_context(|| {
        format!("trial {trial_id}: cannot record metric {split}.{name} (given twice?)")
    })?;
    Ok(())
}

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
