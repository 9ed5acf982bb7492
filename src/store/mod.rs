//! The SQLite store: schema and migrations in one place, every state change in a
//! transaction, atomic claims of pending trials. Knows nothing of candle.
//!
//! By concern: this file opens the database and starts write transactions;
//! `owning` writes while owning a trial (lease checked in the same transaction);
//! `trials` adds and claims trials and moves them between states (one requeue
//! mechanism); `results` writes what a trial records (epochs, metrics,
//! confusion matrices, artifacts); `predictions` holds per-example predictions;
//! `reads` answers compare/show/status; `activity` what a live view polls;
//! `queue` is `lab queue` / `lab worker`; `merge` folds shards in; `notes` holds
//! the tags and notes people attach to experiments and trials; `rows` holds the row
//! types.

mod activity;
mod merge;
mod notes;
mod owning;
mod predictions;
mod queue;
mod reads;
mod results;
mod rows;
mod schema;
mod search;
mod status;
mod trials;

pub use crate::train::EpochRecord;
pub use merge::MergeSummary;
pub use notes::{valid_tag, Target, MAX_NOTE_BYTES, MAX_TAG_CHARS};
pub use owning::{LostLease, Owned};
pub use predictions::Predictions;
pub use queue::{Cancelled, QueueEntry, QueueItem, QueuedTrial};
pub use rows::{
    ArtifactRow, ConfusionRow, ExperimentRow, MetricRow, NewTrial, TrialLease, TrialMetric,
    TrialResult, TrialRow,
};
pub use schema::{latest_version, MIGRATIONS};
pub use search::{EpochCurve, Proposer, SearchTrial};
pub use status::{StatusCounts, TrialStatus};
pub use trials::{Requeue, Reset, Scope};

use anyhow::{anyhow, bail, Context};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The store's result: errors carry the database path and what was being done.
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
