//! The store checker of `store_check` on stores damaged on purpose: a clean
//! store from the real `lab` binary passes, and each check fails on the damage
//! it is for (so a checker that passes everything would be caught).

use crate::common::copy_dir;
use crate::store_check::{self, has, Check};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One 2-epoch trial of quick.toml, trained once; each test damages a copy.
fn clean_store() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("store-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("lab.db");
        let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml");
        crate::common::ok(&crate::common::lab(&[
            "run",
            spec.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--set",
            "experiment.name=check",
            "--set",
            "experiment.seeds=[1]",
            "--set",
            "sweep.model.cell=[\"gru\"]",
            "--set",
            "train.epochs=2",
            "--set",
            "data.limit=400",
        ]));
        dir
    })
}

/// A copy of the clean store, to damage by SQL (foreign keys off) or by hand.
struct Damaged {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Damaged {
    fn new() -> Damaged {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean_store(), dir.path());
        let db = dir.path().join("lab.db");
        Damaged { _dir: dir, db }
    }

    fn sql(self, sql: &str) -> Damaged {
        Connection::open(&self.db)
            .unwrap()
            .execute_batch(&format!("PRAGMA foreign_keys = OFF; {sql}"))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        self
    }

    fn root(&self) -> &Path {
        self.db.parent().unwrap()
    }

    /// Panics unless some violation is of kind `check`.
    fn finds(&self, check: Check) {
        let mut found = store_check::violations(&self.db);
        if check == Check::Leftover {
            found.extend(store_check::leftovers(&self.db));
        }
        assert!(has(&found, check), "no {check:?} violation in {found:?}");
    }
}

#[test]
fn a_clean_store_has_no_violations() {
    let d = Damaged::new();
    store_check::assert_clean_with_files(&d.db);
}

#[test]
fn integrity_and_foreign_keys() {
    // The index's declared column order no longer matches its entries.
    Damaged::new()
        .sql(
            "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = \
             'CREATE INDEX trials_experiment_status ON trials(status, experiment_id)' \
             WHERE name = 'trials_experiment_status';",
        )
        .finds(Check::Integrity);
    Damaged::new()
        .sql("INSERT INTO epochs SELECT 99, epoch, train_loss, valid_loss, valid_accuracy, valid_macro_f1, lr, seconds, samples_per_second FROM epochs")
        .finds(Check::ForeignKey);
    let d = Damaged::new();
    std::fs::write(&d.db, b"not a database at all, not even close to one").unwrap();
    d.finds(Check::Integrity);
}

#[test]
fn a_trial_recorded_twice() {
    // The UNIQUE constraint stops this today; a table rebuilt without it must not.
    Damaged::new()
        .sql(
            "CREATE TABLE t2 (id INTEGER PRIMARY KEY, experiment_id, config_json, config_hash, \
             seed, status, worker, data_report); \
             INSERT INTO t2 SELECT id, experiment_id, config_json, config_hash, seed, status, \
             worker, data_report FROM trials; DROP TABLE trials; \
             ALTER TABLE t2 RENAME TO trials; \
             INSERT INTO trials (id, experiment_id, config_json, config_hash, seed, status) \
             SELECT 2, experiment_id, config_json, config_hash, seed, 'pending' FROM trials;",
        )
        .finds(Check::DuplicateTrial);
}

#[test]
fn epoch_gaps_extra_epochs_and_non_finite_values() {
    for sql in [
        "DELETE FROM epochs WHERE epoch = 1",
        "DELETE FROM epochs WHERE epoch = 2",
        "INSERT INTO epochs SELECT trial_id, 3, train_loss, valid_loss, valid_accuracy, valid_macro_f1, lr, seconds, samples_per_second FROM epochs WHERE epoch = 2",
        "UPDATE metrics SET value = 3 WHERE split = 'train' AND name = 'epochs'",
        "DELETE FROM metrics WHERE split = 'train' AND name = 'epochs'",
        "UPDATE epochs SET valid_loss = 9e999 WHERE epoch = 1",
    ] {
        Damaged::new().sql(sql).finds(Check::Epochs);
    }
}

#[test]
fn missing_or_non_finite_metrics() {
    for sql in [
        "DELETE FROM metrics WHERE split = 'test' AND name = 'accuracy'",
        "DELETE FROM metrics WHERE split = 'valid'",
        "UPDATE metrics SET value = -9e999 WHERE split = 'test' AND name = 'roc_auc'",
    ] {
        Damaged::new().sql(sql).finds(Check::Metrics);
    }
}

#[test]
fn confusion_rows_missing_or_inconsistent() {
    for sql in [
        "DELETE FROM confusion WHERE split = 'test'",
        // One more row than the split has (and than the support says).
        "UPDATE confusion SET matrix_json = json_replace(matrix_json, '$[0][0]', json_extract(matrix_json, '$[0][0]') + 1) WHERE split = 'valid'",
        // Same total, moved off the diagonal: the accuracy no longer matches.
        "UPDATE confusion SET matrix_json = json_replace(json_replace(matrix_json, '$[0][0]', json_extract(matrix_json, '$[0][0]') - 1), '$[0][1]', json_extract(matrix_json, '$[0][1]') + 1) WHERE split = 'test'",
        "UPDATE confusion SET labels_json = '[\"a\",\"b\"]' WHERE split = 'test'",
        "UPDATE confusion SET matrix_json = '[[1,2]]' WHERE split = 'valid'",
    ] {
        Damaged::new().sql(sql).finds(Check::Confusion);
    }
}

#[test]
fn artifact_files_missing_changed_or_unrecorded() {
    let d = Damaged::new();
    let weights = d.root().join("check/1/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    d.finds(Check::Artifacts);
    let d = Damaged::new();
    std::fs::remove_file(d.root().join("check/1/vocab.json")).unwrap();
    d.finds(Check::Artifacts);
    Damaged::new()
        .sql("DELETE FROM artifacts WHERE kind = 'weights'")
        .finds(Check::Artifacts);
}

#[test]
fn a_running_trial_whose_worker_is_dead() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let worker = format!("{}:{dead}", lab::runner::this_host());
    let d = Damaged::new().sql(&format!(
        "UPDATE trials SET status = 'running', worker = '{worker}'"
    ));
    d.finds(Check::DeadWorker);
    // Alive (this test process), or on another host: not a violation.
    for worker in [
        format!("{}:{}", lab::runner::this_host(), std::process::id()),
        format!("elsewhere:{dead}"),
    ] {
        let d = Damaged::new().sql(&format!(
            "UPDATE trials SET status = 'running', worker = '{worker}'"
        ));
        let found = store_check::violations(&d.db);
        assert!(!has(&found, Check::DeadWorker), "{worker}: {found:?}");
    }
}

#[test]
fn pending_or_failed_trials_with_results() {
    for status in ["pending", "failed"] {
        Damaged::new()
            .sql(&format!("UPDATE trials SET status = '{status}'"))
            .finds(Check::StrayResults);
    }
}

#[test]
fn leftover_temporary_files_and_checkpoints() {
    let d = Damaged::new();
    std::fs::write(d.root().join("check/1/.model.safetensors.1.2.tmp"), "x").unwrap();
    d.finds(Check::Leftover);
    let d = Damaged::new();
    std::fs::create_dir_all(d.root().join("check/1/checkpoint")).unwrap();
    d.finds(Check::Leftover);
    // Leftovers are opt-in: assert_clean does not look.
    store_check::assert_clean(&d.db);
}
