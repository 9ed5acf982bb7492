//! The whole schema and its migrations, in one place. The database's version is
//! `PRAGMA user_version`: the number of migration steps applied so far.

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;

/// Ordered migration steps; step `i` takes the database from version `i` to `i + 1`.
/// Never edit a released step: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    "
    CREATE TABLE experiments (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        spec_toml   TEXT NOT NULL,
        spec_hash   TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE trials (
        id            INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
        config_json   TEXT NOT NULL,
        config_hash   TEXT NOT NULL,
        seed          INTEGER NOT NULL,
        status        TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'done', 'failed')),
        device        TEXT,
        worker        TEXT,
        started_at    TEXT,
        finished_at   TEXT,
        error         TEXT,
        UNIQUE (experiment_id, config_hash)
    );
    CREATE INDEX trials_experiment_status ON trials(experiment_id, status);
    CREATE TABLE epochs (
        trial_id           INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
        epoch              INTEGER NOT NULL,
        train_loss         REAL NOT NULL,
        valid_loss         REAL NOT NULL,
        valid_accuracy     REAL NOT NULL,
        valid_macro_f1     REAL NOT NULL,
        lr                 REAL NOT NULL,
        seconds            REAL NOT NULL,
        samples_per_second REAL NOT NULL,
        PRIMARY KEY (trial_id, epoch)
    );
    CREATE TABLE metrics (
        trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
        split    TEXT NOT NULL,
        name     TEXT NOT NULL,
        value    REAL NOT NULL,
        PRIMARY KEY (trial_id, split, name)
    );
    CREATE TABLE confusion (
        trial_id    INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
        split       TEXT NOT NULL,
        matrix_json TEXT NOT NULL,
        labels_json TEXT NOT NULL,
        PRIMARY KEY (trial_id, split)
    );
    CREATE TABLE artifacts (
        trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
        kind     TEXT NOT NULL,
        path     TEXT NOT NULL,
        sha256   TEXT NOT NULL,
        PRIMARY KEY (trial_id, kind)
    );
    ",
    // 2: leases: a running trial's worker refreshes heartbeat_at; a stale one is reclaimable
    "ALTER TABLE trials ADD COLUMN heartbeat_at TEXT;",
    // 3: the queue of trials for `lab worker`: priority first, then the order of
    // `lab queue add` (batch); where the spec's relative paths resolve (base_dir);
    // a cancelled trial is never claimed
    "
    CREATE TABLE queue (
        trial_id     INTEGER PRIMARY KEY REFERENCES trials(id) ON DELETE CASCADE,
        priority     INTEGER NOT NULL DEFAULT 0,
        batch        INTEGER NOT NULL,
        label        TEXT NOT NULL,
        base_dir     TEXT NOT NULL,
        enqueued_at  TEXT NOT NULL,
        cancelled_at TEXT
    );
    CREATE INDEX queue_order ON queue(priority DESC, batch, trial_id);
    ",
    // 4: what the trial was trained on: the data report (JSON, as `lab data --format
    // json` prints it) of its dataset, recorded when the trial starts; NULL for
    // trials recorded before
    "ALTER TABLE trials ADD COLUMN data_report TEXT;",
    // 5: the store's own identity, random and created once per database (never
    // copied by `lab merge`): checkpoints are bound to it, so a checkpoint left by
    // a deleted or other store is never resumed as one of this store's trials
    "
    CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO store_meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
    ",
    // 6: the evidence behind a ranking: per-example predictions of each done
    // trial (one blob per split, see `predictions.rs`), the fingerprint of the
    // test split it was scored on, and where and how it ran (provenance, JSON)
    "
    CREATE TABLE predictions (
        trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
        split    TEXT NOT NULL,
        rows     INTEGER NOT NULL,
        classes  INTEGER NOT NULL,
        blob     BLOB NOT NULL,
        PRIMARY KEY (trial_id, split)
    );
    ALTER TABLE trials ADD COLUMN test_split TEXT;
    ALTER TABLE trials ADD COLUMN provenance TEXT;
    ",
    // 7: searches with pruning: status `pruned` (stopped early by a pruner, and
    // why: pruned_reason) and the search proposal a trial belongs to
    // (search_number, NULL for grid trials). SQLite cannot alter a CHECK, so
    // `trials` is rebuilt by the 12-step procedure of
    // https://www.sqlite.org/lang_altertable.html#otheralter: `migrate` turns
    // foreign keys off around it (else dropping `trials` would cascade to every
    // result) and runs `PRAGMA foreign_key_check` before committing. The tables
    // referencing `trials` name it, so they refer to the new table once renamed.
    "
    CREATE TABLE trials_v7 (
        id            INTEGER PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
        config_json   TEXT NOT NULL,
        config_hash   TEXT NOT NULL,
        seed          INTEGER NOT NULL,
        status        TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'done', 'failed', 'pruned')),
        device        TEXT,
        worker        TEXT,
        started_at    TEXT,
        finished_at   TEXT,
        error         TEXT,
        heartbeat_at  TEXT,
        data_report   TEXT,
        test_split    TEXT,
        provenance    TEXT,
        search_number INTEGER,
        pruned_reason TEXT,
        UNIQUE (experiment_id, config_hash)
    );
    INSERT INTO trials_v7 (id, experiment_id, config_json, config_hash, seed, status, device,
                           worker, started_at, finished_at, error, heartbeat_at, data_report,
                           test_split, provenance)
        SELECT id, experiment_id, config_json, config_hash, seed, status, device,
               worker, started_at, finished_at, error, heartbeat_at, data_report,
               test_split, provenance
        FROM trials;
    DROP TABLE trials;
    ALTER TABLE trials_v7 RENAME TO trials;
    CREATE INDEX trials_experiment_status ON trials(experiment_id, status);
    ",
    // 8: what people say about their runs (`lab ui`, shown by `lab show` and
    // filtered on by `lab compare --tag`): tags and one note per experiment or
    // trial. Each row belongs to exactly one of the two (CHECK); the partial
    // unique indexes keep one tag per target and one note per target and serve
    // the lookups by trial and by experiment; `tags_tag` finds a tag's targets.
    "
    CREATE TABLE tags (
        experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
        trial_id      INTEGER REFERENCES trials(id) ON DELETE CASCADE,
        tag           TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        CHECK ((experiment_id IS NULL) <> (trial_id IS NULL))
    );
    CREATE UNIQUE INDEX tags_trial ON tags(trial_id, tag) WHERE trial_id IS NOT NULL;
    CREATE UNIQUE INDEX tags_experiment ON tags(experiment_id, tag)
        WHERE experiment_id IS NOT NULL;
    CREATE INDEX tags_tag ON tags(tag);
    CREATE TABLE notes (
        experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
        trial_id      INTEGER REFERENCES trials(id) ON DELETE CASCADE,
        text          TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        CHECK ((experiment_id IS NULL) <> (trial_id IS NULL))
    );
    CREATE UNIQUE INDEX notes_trial ON notes(trial_id) WHERE trial_id IS NOT NULL;
    CREATE UNIQUE INDEX notes_experiment ON notes(experiment_id)
        WHERE experiment_id IS NOT NULL;
    ",
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Refuse databases from a newer build, then apply the missing steps, one
/// transaction each. The version is re-read inside each write transaction so
/// that two processes opening a fresh file at once do not both apply a step.
///
/// Foreign keys are off while steps are applied (SQLite only changes that
/// outside a transaction), so a step may rebuild a table that others reference
/// without cascading deletes; each step's transaction runs `PRAGMA
/// foreign_key_check` and is rolled back when it reports a row. They are
/// turned back on before returning, whatever the outcome.
pub fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    // Up to date (the common case): no write lock, so readers never wait on writers.
    if user_version(conn).ok() == Some(latest_version()) {
        return Ok(());
    }
    let foreign_keys: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .with_context(|| {
            format!(
                "{}: cannot turn foreign keys off to migrate",
                path.display()
            )
        })?;
    let applied = apply_missing(conn, path);
    let restored = conn
        .pragma_update(None, "foreign_keys", foreign_keys)
        .with_context(|| format!("{}: cannot turn foreign keys back on", path.display()));
    applied.and(restored)
}

/// The migration loop of [`migrate`], with foreign keys off.
fn apply_missing(conn: &Connection, path: &Path) -> Result<()> {
    let latest = latest_version();
    loop {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .with_context(|| format!("{}: cannot start a migration transaction", path.display()))?;
        let version = user_version(&tx)
            .with_context(|| format!("{}: cannot read the schema version", path.display()))?;
        if version > latest {
            bail!(
                "{}: the database has schema version {version} but this build of lab knows \
                 versions up to {latest}; upgrade lab to open it",
                path.display()
            );
        }
        if version < 0 {
            bail!("{}: invalid schema version {version}", path.display());
        }
        if version == latest {
            return Ok(());
        }
        let failed = || {
            format!(
                "{}: migration from schema version {version} to {} failed",
                path.display(),
                version + 1
            )
        };
        tx.execute_batch(MIGRATIONS[version as usize])
            .with_context(failed)?;
        check_foreign_keys(&tx).with_context(failed)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit().with_context(|| {
            format!(
                "{}: cannot commit migration {}",
                path.display(),
                version + 1
            )
        })?;
    }
}

/// `PRAGMA foreign_key_check`: an error naming the first few rows whose
/// reference leads nowhere (table, rowid, referenced table).
fn check_foreign_keys(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} row {} -> {}",
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?
                .map_or_else(|| "?".into(), |id| id.to_string()),
            r.get::<_, String>(2)?
        ))
    })?;
    let broken: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
    if !broken.is_empty() {
        bail!(
            "{} row(s) refer to rows that do not exist (PRAGMA foreign_key_check): {}",
            broken.len(),
            broken
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}
