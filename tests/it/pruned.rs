//! Status `pruned` (issue 16, schema version 7): a version-6 database rebuilt
//! with every row kept and its foreign keys intact, also when opened by many at
//! once; and a trial stopped by a pruner (claimed, its epochs recorded, then
//! `Owned::prune`) through `lab status`, `compare`, `show`, `report`, `queue
//! list`, `status --shards`, `merge` and `run --retry-failed`, in copies of a
//! store trained on experiments/quick.toml.

use crate::common::{ok, trained};
use lab::store::{
    EpochRecord, NewTrial, QueueItem, Requeue, Reset, Scope, Store, TrialStatus, MIGRATIONS,
};
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const WORKER: &str = "pruner:1";

fn lab(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .arg("--db")
        .arg(db)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("LAB_DB")
        .stdin(Stdio::null())
        .output()
        .expect("lab runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn epoch(n: usize) -> EpochRecord {
    EpochRecord {
        epoch: n,
        train_loss: 0.7 - 0.01 * n as f64,
        valid_loss: 0.69,
        valid_accuracy: 0.5,
        valid_macro_f1: 0.4 + 0.01 * n as f64,
        lr: 5e-3,
        seconds: 0.1,
        samples_per_second: 1000.0,
    }
}

/// Claim the pending `trial`, record epochs 1..=`epochs` and prune it for `reason`.
fn prune(store: &Store, trial: i64, epochs: usize, reason: &str) {
    let claimed = store.claim_trial_id(trial, WORKER, "cpu").unwrap();
    assert!(claimed.is_some(), "trial {trial} is not pending");
    store
        .while_owning(trial, WORKER, |o| {
            (1..=epochs).try_for_each(|n| o.record_epoch(&epoch(n)))?;
            o.prune(reason)
        })
        .unwrap();
}

// ---------------------------------------------------------------- migration

/// A database as lab with schema version 6 left it: one experiment, a trial in
/// each status, with leases, data reports, test splits, provenance, epochs,
/// metrics, confusion, artifacts, predictions and queue rows.
fn v6_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    for step in &MIGRATIONS[..6] {
        conn.execute_batch(step).unwrap();
    }
    conn.pragma_update(None, "user_version", 6).unwrap();
    conn.execute_batch(
        "INSERT INTO experiments VALUES (1, 'old', 'spec', 'hash', '2024-01-01T00:00:00Z');
         INSERT INTO trials (id, experiment_id, config_json, config_hash, seed, status, device,
                             worker, started_at, finished_at, error, heartbeat_at, data_report,
                             test_split, provenance) VALUES
           (1, 1, '{\"experiment\":\"old\",\"seed\":1}', 'h1', 1, 'pending',
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (2, 1, '{\"experiment\":\"old\",\"seed\":2}', 'h2', 2, 'running', 'cpu', 'gone:7',
            't1', NULL, NULL, 't2', '{\"rows\":10}', NULL, '{\"host\":\"gone\"}'),
           (3, 1, '{\"experiment\":\"old\",\"seed\":3}', 'h3', -3, 'done', 'cuda:0', 'a:1',
            't1', 't3', NULL, 't3', '{\"rows\":10}', 'abc123', '{\"host\":\"a\"}'),
           (5, 1, '{\"experiment\":\"old\",\"seed\":5}', 'h5', 5, 'failed', 'cpu', 'b:2',
            't1', 't4', 'loss became NaN', 't4', NULL, NULL, NULL);
         INSERT INTO epochs VALUES (2, 1, 0.7, 0.69, 0.5, 0.4, 0.005, 1.5, 900.0),
                                   (3, 1, 0.7, 0.69, 0.5, 0.4, 0.005, 1.5, 900.0),
                                   (3, 2, 0.6, 0.65, 0.6, 0.55, 0.005, 1.4, 950.0),
                                   (5, 1, 0.9, 0.9, 0.3, 0.2, 0.005, 1.0, 800.0);
         INSERT INTO metrics VALUES (3, 'test', 'accuracy', 0.61), (3, 'valid', 'loss', 0.65);
         INSERT INTO confusion VALUES (3, 'test', '[[3,1],[2,4]]', '[\"neg\",\"pos\"]');
         INSERT INTO artifacts VALUES (3, 'weights', 'old/3/model.safetensors', 'ff00');
         INSERT INTO predictions VALUES (3, 'test', 10, 2, x'4c414250'),
                                        (3, 'valid', 10, 2, x'4c414251');
         INSERT INTO queue VALUES (1, 5, 1, 'seed=1', '/data', 't0', NULL),
                                  (2, 0, 1, 'seed=2', '/data', 't0', 't9');",
    )
    .unwrap();
}

/// Every row of `table` (the given columns, or all), in rowid order, as text.
fn rows(conn: &Connection, table: &str, columns: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT {columns} FROM {table} ORDER BY rowid"))
        .unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            let values: Vec<Sql> = (0..n).map(|i| r.get(i)).collect::<Result<_, _>>()?;
            Ok(format!("{values:?}"))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

const RESULT_TABLES: [&str; 6] = [
    "epochs",
    "metrics",
    "confusion",
    "artifacts",
    "predictions",
    "queue",
];

/// Every table's rows, `trials` by the columns it had at version 6.
fn snapshot(conn: &Connection, trial_columns: &str) -> BTreeMap<String, Vec<String>> {
    let mut all = BTreeMap::new();
    all.insert("trials".to_string(), rows(conn, "trials", trial_columns));
    for table in RESULT_TABLES.iter().chain(&["experiments", "store_meta"]) {
        all.insert(table.to_string(), rows(conn, table, "*"));
    }
    all
}

fn trial_columns(conn: &Connection) -> Vec<String> {
    let mut stmt = conn.prepare("PRAGMA table_info(trials)").unwrap();
    let names = stmt.query_map([], |r| r.get::<_, String>("name")).unwrap();
    names.map(Result::unwrap).collect()
}

#[test]
fn a_v6_database_is_rebuilt_with_every_row_and_foreign_key_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    v6_database(&path);
    let (before, old_columns) = {
        let conn = Connection::open(&path).unwrap();
        let columns = trial_columns(&conn).join(", ");
        (snapshot(&conn, &columns), columns)
    };
    assert_eq!(before["trials"].len(), 4);

    let store = Store::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(
        version,
        MIGRATIONS.len() as i64,
        "and on through the later steps"
    );
    assert_eq!(snapshot(&conn, &old_columns), before, "a row changed");
    let mut columns = trial_columns(&conn);
    let added = columns.split_off(columns.len() - 2);
    assert_eq!(columns.join(", "), old_columns, "columns kept in order");
    assert_eq!(added, ["search_number", "pruned_reason"]);
    let schema = |name: &str| -> Option<String> {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .ok()
    };
    assert!(schema("trials_v7").is_none(), "the new table took the name");
    let index = schema("trials_experiment_status").expect("the status index is rebuilt");
    assert!(
        index.contains("ON trials(experiment_id, status)"),
        "{index}"
    );
    for table in RESULT_TABLES {
        let sql = schema(table).unwrap();
        assert!(sql.contains("REFERENCES trials(id)"), "{table}: {sql}");
    }
    let broken: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(broken, 0);

    // Through the library: the old trials read, with no search number or reason.
    let trials = store.trials(1).unwrap();
    let statuses: Vec<TrialStatus> = trials.iter().map(|t| t.status).collect();
    use TrialStatus::*;
    assert_eq!(statuses, [Pending, Running, Done, Failed]);
    assert!(trials
        .iter()
        .all(|t| t.search_number.is_none() && t.pruned_reason.is_none()));
    assert_eq!(trials[2].seed, (-3i64) as u64);
    // The store's connection has its foreign keys back on.
    let err = store.record_epoch(999, &epoch(1)).unwrap_err();
    assert!(format!("{err:#}").contains("FOREIGN KEY"), "{err:#}");

    // The new CHECK: pruned is a status, a typo is not.
    conn.execute("UPDATE trials SET status = 'pruned' WHERE id = 5", [])
        .unwrap();
    let err = conn
        .execute("UPDATE trials SET status = 'stopped' WHERE id = 5", [])
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
    assert_eq!(store.trial(5).unwrap().unwrap().status, Pruned);
    // Deleting a trial still cascades to what references it (the new table).
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.execute("DELETE FROM trials WHERE id = 3", []).unwrap();
    for table in RESULT_TABLES {
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE trial_id = 3"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

#[test]
fn many_openers_of_a_v6_database_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    v6_database(&path);
    let before = {
        let conn = Connection::open(&path).unwrap();
        snapshot(&conn, &trial_columns(&conn).join(", "))
    };
    // Four processes and four threads open it at once.
    let processes: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_lab"))
                .args(["status", "old", "--format", "json", "--db"])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Store::open(&path).unwrap().trials(1).unwrap().len())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 4);
    }
    for p in processes {
        let out = p.wait_with_output().unwrap();
        let counts = json(&out);
        assert_eq!(counts[0]["pending"], 1);
        assert_eq!(counts[0]["pruned"], 0);
    }
    let conn = Connection::open(&path).unwrap();
    let old_columns = trial_columns(&conn)[..15].join(", ");
    assert_eq!(snapshot(&conn, &old_columns), before);
}

#[test]
fn a_v6_shard_is_read_and_merged_without_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("shard/lab.db");
    std::fs::create_dir_all(shard.parent().unwrap()).unwrap();
    v6_database(&shard);
    let read = Store::open_read_only(&shard).unwrap();
    let trials = read.trials(1).unwrap();
    assert_eq!(trials.len(), 4);
    assert!(trials.iter().all(|t| t.search_number.is_none()));
    assert_eq!(read.status_counts(1).unwrap().failed, 1);
    let target = Store::open(&dir.path().join("main/lab.db")).unwrap();
    let summary = target.merge_from(&read).unwrap();
    // The failed trial merges; the done one's weights file is not in the shard.
    assert_eq!((summary.added, summary.unfinished), (1, 2), "{summary:?}");
    assert_eq!(summary.refused.len(), 1, "{summary:?}");
    // Still version 6: a read-only open never migrates.
    let version: i64 = Connection::open(&shard)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 6);
}

// ---------------------------------------------------------------- commands

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let dst = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dst);
        } else if !name.to_string_lossy().starts_with("lab.db") {
            std::fs::copy(entry.path(), dst).unwrap();
        }
    }
}

/// A copy of the shared quick.toml store (4 done trials) at `to/lab.db`: its
/// files, and the database copied consistently (`VACUUM INTO`) while other
/// tests may read it.
fn copy_trained(to: &Path) -> PathBuf {
    let from = trained().db.clone();
    copy_dir(from.parent().unwrap(), to);
    let db = to.join("lab.db");
    Connection::open(&from)
        .unwrap()
        .execute("VACUUM INTO ?1", [db.to_str().unwrap()])
        .unwrap();
    db
}

/// A search trial of quick: `base`'s config with another seed.
fn search_trial(store: &Store, base: i64, seed: u64, number: i64) -> i64 {
    let base = store.trial(base).unwrap().unwrap();
    let mut config: Value = serde_json::from_str(&base.config_json).unwrap();
    config["seed"] = seed.into();
    let new = NewTrial {
        config_json: config.to_string(),
        config_hash: format!("search-{seed}"),
        seed,
        search_number: Some(number),
    };
    store.add_trials(base.experiment_id, &[new]).unwrap()[0]
}

const REASON_1: &str = "pruned at epoch 1: 0.41 < median 0.68 of 4 finished trials";
const REASON_2: &str = "pruned at epoch 2: 0.42 < median 0.70 of 4 finished trials";

#[test]
fn a_pruned_trial_is_final_and_every_command_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = copy_trained(dir.path());
    let store = Store::open(&db).unwrap();
    let exp = store.require_experiment("quick").unwrap();
    let done: Vec<i64> = store.trials(exp.id).unwrap().iter().map(|t| t.id).collect();
    assert_eq!(done.len(), 4);
    let (a, b) = (
        search_trial(&store, done[0], 101, 1),
        search_trial(&store, done[1], 102, 2),
    );
    let queued = [a, b].map(|id| QueueItem {
        trial_id: id,
        label: format!("search {id}"),
    });
    assert_eq!(store.enqueue(&queued, 0, "/data").unwrap(), 2);
    prune(&store, a, 1, REASON_1);
    prune(&store, b, 2, REASON_2);

    let t = store.trial(a).unwrap().unwrap();
    assert_eq!(t.status, TrialStatus::Pruned);
    assert_eq!(t.pruned_reason.as_deref(), Some(REASON_1));
    assert_eq!(t.search_number, Some(1));
    assert!(t.finished_at.is_some() && t.error.is_none());
    assert_eq!(store.epochs(b).unwrap().len(), 2);
    assert!(store.metrics(b).unwrap().is_empty());
    let counts = store.status_counts(exp.id).unwrap();
    assert_eq!((counts.done, counts.pruned, counts.total()), (4, 2, 6));
    assert_eq!(counts.pruned_at, BTreeMap::from([(1, 1), (2, 1)]));
    crate::store_check::assert_clean(&db);

    // Final: no claim, requeue or owner takes it.
    assert!(store.claim_trial_id(a, "w:2", "cpu").unwrap().is_none());
    assert!(store.claim_queued("w:2", None).unwrap().is_none());
    assert_eq!(store.requeue_failed(&[a, b]).unwrap(), 0);
    assert!(store
        .requeue_stale(exp.id, &|_, _| true)
        .unwrap()
        .is_empty());
    assert!(store.while_owning(a, WORKER, |o| o.prune("x")).is_err());
    assert_eq!(store.trial(a).unwrap().unwrap(), t);

    let status = json(&lab(&db, &["status", "quick", "--format", "json"]));
    assert_eq!(status[0]["done"], 4);
    assert_eq!(status[0]["pruned"], 2);

    let table = ok(&lab(&db, &["compare", "quick"]));
    assert!(
        table.contains("2 trials pruned (epoch 1: 1, epoch 2: 1)"),
        "{table}"
    );
    let rows = json(&lab(&db, &["compare", "quick", "--format", "json"]));
    let rows = rows.as_array().unwrap();
    let ranked: u64 = rows.iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert_eq!(ranked, 4, "only done trials are ranked: {rows:?}");
    assert!(rows.iter().all(|r| r["pruned"] == 2), "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["best_trial"] != a && r["best_trial"] != b));

    let shown = ok(&lab(&db, &["show", &a.to_string()]));
    assert!(
        shown
            .lines()
            .any(|l| l.contains("status") && l.contains("pruned")),
        "{shown}"
    );
    assert!(shown.contains(REASON_1), "{shown}");
    let shown = json(&lab(&db, &["show", &b.to_string(), "--format", "json"]));
    assert_eq!(shown["status"], "pruned");
    assert_eq!(shown["pruned_reason"], REASON_2);
    assert_eq!(shown["search_number"], 2);
    assert_eq!(shown["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(shown["metrics"].as_array().unwrap().len(), 0);

    // The queue: gone from the work list, `pruned` with --all.
    let listed = ok(&lab(&db, &["queue", "list"]));
    assert!(listed.contains("the queue is empty"), "{listed}");
    let all = json(&lab(&db, &["queue", "list", "--all", "--format", "json"]));
    let states: Vec<(i64, String)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["trial"].as_i64().unwrap(),
                e["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(states, [(a, "pruned".into()), (b, "pruned".into())]);

    let out = dir.path().join("report");
    ok(&lab(&db, &["report", "quick", "-o", out.to_str().unwrap()]));
    let html = std::fs::read_to_string(out.join("quick.html")).unwrap();
    assert!(html.contains("2 pruned"), "the counts line");
    assert!(html.contains("2 trials pruned (epoch 1: 1, epoch 2: 1)"));
}

#[test]
fn lab_status_shards_counts_a_pruned_task_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    for (task, pruned) in [(0, false), (1, true)] {
        let store = Store::open(&shards.join(format!("shard-{task}/lab.db"))).unwrap();
        let exp = store.upsert_experiment("quick", "spec", "h").unwrap();
        let new = NewTrial {
            config_json: format!("{{\"experiment\":\"quick\",\"seed\":{task}}}"),
            config_hash: format!("c{task}"),
            seed: task,
            search_number: Some(task as i64),
        };
        let id = store.add_trials(exp, &[new]).unwrap()[0];
        if pruned {
            prune(&store, id, 3, REASON_2);
        }
    }
    let out = lab(
        &dir.path().join("unused.db"),
        &[
            "status",
            "--shards",
            shards.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let rows = json(&out);
    assert_eq!(rows[0]["status"], "pending");
    assert_eq!(rows[1]["status"], "pruned");
    assert_eq!(rows[1]["epochs"], "3");
    assert_eq!(rows[1]["note"], REASON_2);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("2 tasks: 0 done, 1 pruned, 0 running, 0 failed, 1 pending"),
        "{log}"
    );
}

/// `trial`'s (status, pruned reason, epochs, metrics) in the store at `db`.
fn state(db: &Path, trial: i64) -> (TrialStatus, Option<String>, usize, usize) {
    let store = Store::open(db).unwrap();
    let t = store.trial(trial).unwrap().unwrap();
    (
        t.status,
        t.pruned_reason,
        store.epochs(trial).unwrap().len(),
        store.metrics(trial).unwrap().len(),
    )
}

#[test]
fn merge_carries_pruned_trials_and_a_done_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    // The shard: grid trial g of quick pruned at epoch 2, and a search trial.
    let shard = copy_trained(&dir.path().join("shard"));
    let store = Store::open(&shard).unwrap();
    let exp = store.require_experiment("quick").unwrap().id;
    let g = store.trials(exp).unwrap()[0].id;
    let fresh = Requeue {
        scope: Scope::Trials(&[g]),
        from: &[TrialStatus::Done],
        only: None,
        reset: Reset::Fresh,
    };
    assert_eq!(store.requeue(&fresh).unwrap(), [g]);
    prune(&store, g, 2, REASON_2);
    let s = search_trial(&store, g, 107, 7);
    prune(&store, s, 1, REASON_1);
    drop(store);

    // `lab run --retry-failed` leaves a pruned grid trial as it is.
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml");
    let run = lab(&shard, &["run", spec.to_str().unwrap(), "--retry-failed"]);
    ok(&run);
    let log = String::from_utf8_lossy(&run.stderr);
    // The pruned trial is finished: counted as done before, never run again.
    assert!(
        log.contains("4 done before, 0 run now, 0 failed\n"),
        "{log}"
    );
    let pruned_g = (TrialStatus::Pruned, Some(REASON_2.to_string()), 2, 0);
    assert_eq!(state(&shard, g), pruned_g);

    // Into a store where g is done: g stays done, the search trial comes in.
    let done = copy_trained(&dir.path().join("done"));
    let done_g = state(&done, g);
    assert_eq!((done_g.0, done_g.1.is_none()), (TrialStatus::Done, true));
    ok(&lab(&done, &["merge", shard.to_str().unwrap()]));
    assert_eq!(state(&done, g), done_g, "a done trial is never replaced");
    let merged = Store::open(&done).unwrap();
    let copy = merged
        .trials(exp)
        .unwrap()
        .into_iter()
        .find(|t| t.config_hash == "search-107")
        .expect("the pruned search trial is merged");
    assert_eq!(copy.status, TrialStatus::Pruned);
    assert_eq!(copy.search_number, Some(7));
    assert_eq!(copy.pruned_reason.as_deref(), Some(REASON_1));
    assert_eq!(merged.epochs(copy.id).unwrap(), vec![epoch(1)]);
    crate::store_check::assert_clean(&done);

    // Into a store where g is pending: g becomes the shard's pruned trial...
    let pending = copy_trained(&dir.path().join("pending"));
    let store = Store::open(&pending).unwrap();
    assert_eq!(store.requeue(&fresh).unwrap(), [g]);
    drop(store);
    ok(&lab(&pending, &["merge", shard.to_str().unwrap()]));
    assert_eq!(state(&pending, g), pruned_g);
    // ... merging it again changes nothing, and a done g then replaces it.
    let again = lab(&pending, &["merge", shard.to_str().unwrap()]);
    ok(&again);
    assert_eq!(state(&pending, g), pruned_g);
    ok(&lab(&pending, &["merge", done.to_str().unwrap()]));
    assert_eq!(state(&pending, g), done_g);
    crate::store_check::assert_clean(&pending);
}
