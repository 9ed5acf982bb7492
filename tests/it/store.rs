//! The store against a real SQLite file in a temporary directory.

use lab::store::{
    ArtifactRow, ConfusionRow, EpochRecord, MetricRow, NewTrial, QueueItem, Requeue, Reset, Scope,
    Store, TrialMetric, TrialResult, TrialStatus,
};
use rusqlite::Connection;
use std::collections::HashSet;

fn trials(n: usize) -> Vec<NewTrial> {
    (0..n)
        .map(|i| {
            new_trial(
                &format!("{{\"i\":{i}}}"),
                &format!("hash{i}"),
                13 + i as u64,
            )
        })
        .collect()
}

fn new_trial(config_json: &str, config_hash: &str, seed: u64) -> NewTrial {
    NewTrial {
        config_json: config_json.into(),
        config_hash: config_hash.into(),
        seed,
        search_number: None,
    }
}

fn metric(split: &str, name: &str, value: f64) -> MetricRow {
    MetricRow {
        split: split.into(),
        name: name.into(),
        value,
    }
}

/// Every trial of the experiment in `from`, back to pending afresh.
fn requeue(store: &Store, exp: i64, from: &[TrialStatus]) -> usize {
    store
        .requeue(&Requeue {
            scope: Scope::Experiment(exp),
            from,
            only: None,
            reset: Reset::Fresh,
        })
        .unwrap()
        .len()
}

fn epoch(epoch: usize, loss: f64) -> EpochRecord {
    EpochRecord {
        epoch,
        train_loss: loss,
        valid_loss: loss + 0.1,
        valid_accuracy: 0.5,
        valid_macro_f1: 0.4,
        lr: 1e-3,
        seconds: 1.5,
        samples_per_second: 100.0,
    }
}

fn result() -> TrialResult {
    TrialResult {
        metrics: vec![
            metric("test", "accuracy", 0.8),
            metric("test", "macro_f1", 0.75),
            metric("valid", "accuracy", 0.7),
        ],
        confusion: vec![ConfusionRow {
            split: "test".into(),
            matrix: vec![vec![5, 1], vec![2, 7]],
            labels: vec!["neg".into(), "pos".into()],
        }],
        artifacts: vec![ArtifactRow {
            kind: "weights".into(),
            path: "runs/1/model.safetensors".into(),
            sha256: "ab".repeat(32),
        }],
        ..Default::default()
    }
}

fn count(path: &std::path::Path, table: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn open_creates_dirs_tables_and_version_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/runs/lab.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.path(), path);
    drop(store);

    let conn = Connection::open(&path).unwrap();
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        [
            "artifacts",
            "confusion",
            "epochs",
            "experiments",
            "metrics",
            "notes",
            "predictions",
            "queue",
            "store_meta",
            "tags",
            "trials"
        ]
    );
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, lab::store::latest_version());
    assert!(version >= 1);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let index: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'trials_experiment_status'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    drop(conn);

    // Reopening keeps data and version.
    let store = Store::open(&path).unwrap();
    let id = store.upsert_experiment("a", "x = 1", "h1").unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.experiments().unwrap().len(), 1);
    assert_eq!(store.experiment_by_name("a").unwrap().unwrap().id, id);
}

#[test]
fn upsert_experiment_keeps_id_and_updates_spec() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    let a = store.upsert_experiment("a", "x = 1", "h1").unwrap();
    let b = store.upsert_experiment("b", "y = 1", "h2").unwrap();
    assert_ne!(a, b);
    let created = store.experiment_by_name("a").unwrap().unwrap().created_at;
    assert!(
        chrono::DateTime::parse_from_rfc3339(&created).is_ok(),
        "{created}"
    );
    assert_eq!(store.upsert_experiment("a", "x = 2", "h3").unwrap(), a);
    let row = store.experiment_by_name("a").unwrap().unwrap();
    assert_eq!(
        (row.spec_toml.as_str(), row.spec_hash.as_str()),
        ("x = 2", "h3")
    );
    assert_eq!(row.created_at, created);
    assert_eq!(store.experiment(b).unwrap().unwrap().name, "b");
    assert!(store.experiment_by_name("zzz").unwrap().is_none());
}

#[test]
fn add_trials_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let first = store.add_trials(exp, &trials(3)).unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first.iter().collect::<HashSet<_>>().len(), 3);
    // Same hashes again, plus one new: old ids come back, in input order.
    let mut again = trials(4);
    again.reverse();
    let second = store.add_trials(exp, &again).unwrap();
    assert_eq!(&second[1..], &[first[2], first[1], first[0]]);
    let rows = store.trials(exp).unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|t| t.status == TrialStatus::Pending));
    assert_eq!(rows[0].seed, 13);
    assert_eq!(rows[0].config_json, "{\"i\":0}");
    // A huge seed survives the i64 column.
    let big = store
        .add_trials(exp, &[new_trial("{}", "big", u64::MAX)])
        .unwrap();
    assert_eq!(store.trial(big[0]).unwrap().unwrap().seed, u64::MAX);
    // Another experiment may hold the same hash.
    let other = store.upsert_experiment("b", "", "").unwrap();
    let ids = store.add_trials(other, &trials(1)).unwrap();
    assert_ne!(ids[0], first[0]);
    // Unknown experiment: foreign key error.
    assert!(store.add_trials(9999, &trials(1)).is_err());
}

/// Two connections walk the same grid claiming each trial as `lab run` does
/// (`claim_trial_id`, the runner's claim): every trial is taken exactly once.
#[test]
fn concurrent_claims_take_every_trial_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    let store = Store::open(&path).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let ids = store.add_trials(exp, &trials(40)).unwrap();
    let handles: Vec<_> = (0..2)
        .map(|w| {
            let (path, ids) = (path.clone(), ids.clone());
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                let worker = format!("w{w}");
                let mut claimed = Vec::new();
                for id in ids {
                    let Some(t) = store.claim_trial_id(id, &worker, "cpu").unwrap() else {
                        continue;
                    };
                    assert_eq!(t.id, id);
                    assert_eq!(t.status, TrialStatus::Running);
                    assert_eq!(t.worker.as_deref(), Some(worker.as_str()));
                    assert_eq!(t.device.as_deref(), Some("cpu"));
                    assert!(t.started_at.is_some());
                    claimed.push(t.id);
                }
                claimed
            })
        })
        .collect();
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, ids);
    let counts = store.status_counts(exp).unwrap();
    assert_eq!(
        (counts.running, counts.pending, counts.total()),
        (40, 0, 40)
    );
}

/// Two workers drain one queue through `claim_queued` (what `lab worker`
/// runs): every queued trial is taken exactly once.
#[test]
fn concurrent_queue_claims_take_every_trial_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    let store = Store::open(&path).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let ids = store.add_trials(exp, &trials(40)).unwrap();
    let queued: Vec<QueueItem> = ids
        .iter()
        .map(|&trial_id| QueueItem {
            trial_id,
            label: format!("t{trial_id}"),
        })
        .collect();
    assert_eq!(store.enqueue(&queued, 0, "/a").unwrap(), 40);
    let handles: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                let worker = format!("w{w}");
                let mut claimed = Vec::new();
                while let Some(q) = store.claim_queued(&worker, Some("cpu")).unwrap() {
                    assert_eq!(q.trial.status, TrialStatus::Running);
                    assert_eq!(q.trial.worker.as_deref(), Some(worker.as_str()));
                    assert_eq!(q.label, format!("t{}", q.trial.id));
                    claimed.push(q.trial.id);
                }
                claimed
            })
        })
        .collect();
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, ids);
    assert_eq!(store.queued_pending().unwrap(), 0);
}

#[test]
fn claim_takes_only_a_pending_trial_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let other = store.upsert_experiment("b", "", "").unwrap();
    let ids = store.add_trials(exp, &trials(2)).unwrap();
    store.add_trials(other, &trials(1)).unwrap();
    assert_eq!(
        store
            .claim_trial_id(ids[1], "w", "cpu")
            .unwrap()
            .unwrap()
            .id,
        ids[1]
    );
    assert!(store.claim_trial_id(ids[1], "w", "cpu").unwrap().is_none());
    store.fail_trial(ids[0], "boom").unwrap();
    assert!(store.claim_trial_id(ids[0], "w", "cpu").unwrap().is_none());
    assert!(store.claim_trial_id(9999, "w", "cpu").unwrap().is_none());
}

#[test]
fn epochs_upsert_and_finish_writes_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    let store = Store::open(&path).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let id = store.add_trials(exp, &trials(1)).unwrap()[0];
    store.claim_trial_id(id, "w", "cpu").unwrap().unwrap();
    store.record_epoch(id, &epoch(1, 0.9)).unwrap();
    store.record_epoch(id, &epoch(2, 0.7)).unwrap();
    store.record_epoch(id, &epoch(2, 0.6)).unwrap();
    let epochs = store.epochs(id).unwrap();
    assert_eq!(epochs, vec![epoch(1, 0.9), epoch(2, 0.6)]);

    store.finish_trial(id, &result()).unwrap();
    let t = store.trial(id).unwrap().unwrap();
    assert_eq!(t.status, TrialStatus::Done);
    assert!(t.finished_at.is_some());
    assert_eq!(store.metrics(id).unwrap().len(), 3);
    assert_eq!(store.confusion(id).unwrap(), result().confusion);
    assert_eq!(store.artifacts(id).unwrap(), result().artifacts);
    assert_eq!(
        store.experiment_metrics(exp, "test").unwrap(),
        vec![
            TrialMetric {
                trial_id: id,
                name: "accuracy".into(),
                value: 0.8
            },
            TrialMetric {
                trial_id: id,
                name: "macro_f1".into(),
                value: 0.75
            },
        ]
    );

    // Finishing again replaces the earlier rows rather than adding to them.
    let mut second = result();
    second.metrics.truncate(1);
    second.metrics[0].value = 0.9;
    store.finish_trial(id, &second).unwrap();
    assert_eq!(
        store.metrics(id).unwrap(),
        vec![metric("test", "accuracy", 0.9)]
    );
    assert_eq!(count(&path, "metrics"), 1);
    assert_eq!(count(&path, "confusion"), 1);

    // A duplicate metric fails and leaves the earlier result untouched.
    let mut dup = result();
    dup.metrics.push(dup.metrics[0].clone());
    let err = store.finish_trial(id, &dup).unwrap_err();
    assert!(format!("{err:#}").contains("test.accuracy"), "{err:#}");
    assert_eq!(
        store.metrics(id).unwrap(),
        vec![metric("test", "accuracy", 0.9)]
    );
    assert!(store.finish_trial(12345, &result()).is_err());
}

#[test]
fn fail_and_requeue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    let store = Store::open(&path).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let ids = store.add_trials(exp, &trials(4)).unwrap();
    for &id in &ids[..3] {
        store.claim_trial_id(id, "w", "cpu").unwrap().unwrap();
    }
    store.record_epoch(ids[0], &epoch(1, 0.5)).unwrap();
    store.fail_trial(ids[0], "loss became NaN").unwrap();
    store.finish_trial(ids[1], &result()).unwrap();
    let failed = store.trial(ids[0]).unwrap().unwrap();
    assert_eq!(failed.status, TrialStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("loss became NaN"));
    assert!(failed.finished_at.is_some());
    let counts = store.status_counts(exp).unwrap();
    assert_eq!(
        (counts.pending, counts.running, counts.done, counts.failed),
        (1, 1, 1, 1)
    );

    assert_eq!(requeue(&store, exp, &[]), 0);
    assert_eq!(requeue(&store, exp, &[TrialStatus::Failed]), 1);
    let t = store.trial(ids[0]).unwrap().unwrap();
    assert_eq!(t.status, TrialStatus::Pending);
    assert_eq!(
        (t.worker, t.device, t.started_at, t.finished_at, t.error),
        (None, None, None, None, None)
    );
    assert!(store.epochs(ids[0]).unwrap().is_empty());

    assert_eq!(
        requeue(&store, exp, &[TrialStatus::Done, TrialStatus::Running]),
        2
    );
    assert!(store.metrics(ids[1]).unwrap().is_empty());
    assert_eq!(count(&path, "artifacts"), 0);
    assert_eq!(count(&path, "confusion"), 0);
    assert_eq!(store.status_counts(exp).unwrap().pending, 4);
    assert!(store.fail_trial(12345, "x").is_err());
}

#[test]
fn requeue_running_if_only_dead_workers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let ids = store.add_trials(exp, &trials(3)).unwrap();
    store.claim_trial_id(ids[0], "host:1", "cpu").unwrap();
    store.claim_trial_id(ids[1], "host:2", "cpu").unwrap();
    store.claim_trial_id(ids[2], "host:1", "cpu").unwrap();
    store.record_epoch(ids[0], &epoch(1, 0.5)).unwrap();
    store.fail_trial(ids[2], "boom").unwrap();
    let moved = store
        .requeue(&Requeue {
            scope: Scope::Experiment(exp),
            from: &[TrialStatus::Running],
            only: Some(&|t| t.worker == "host:1"),
            reset: Reset::Fresh,
        })
        .unwrap();
    assert_eq!(moved, vec![ids[0]]);
    let statuses: Vec<_> = store
        .trials(exp)
        .unwrap()
        .iter()
        .map(|t| t.status)
        .collect();
    assert_eq!(
        statuses,
        [
            TrialStatus::Pending,
            TrialStatus::Running,
            TrialStatus::Failed
        ]
    );
    assert!(store.epochs(ids[0]).unwrap().is_empty());
}

#[test]
fn newer_schema_is_refused_naming_file_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    drop(Store::open(&path).unwrap());
    let newer = lab::store::latest_version() + 5;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = format!("{:#}", Store::open(&path).err().unwrap());
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains(&newer.to_string()), "{err}");
    assert!(
        err.contains(&lab::store::latest_version().to_string()),
        "{err}"
    );
    assert!(err.contains("upgrade lab"), "{err}");
}

#[test]
fn non_sqlite_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        "this is a text file, not a database at all, ".repeat(50),
    )
    .unwrap();
    let err = format!("{:#}", Store::open(&path).err().unwrap());
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not an SQLite database"), "{err}");
}

#[test]
fn migration_3_adds_the_queue_and_keeps_older_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    {
        // A database as lab with schema version 2 left it.
        let conn = Connection::open(&path).unwrap();
        for step in &lab::store::MIGRATIONS[..2] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO experiments VALUES (1, 'old', 'spec', 'hash', 'then');
             INSERT INTO trials (experiment_id, config_json, config_hash, seed, status)
             VALUES (1, '{}', 'abc', 7, 'pending');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let trials = store.trials(1).unwrap();
    assert_eq!(trials.len(), 1);
    assert_eq!(trials[0].config_hash, "abc");
    // The old trial can be queued, claimed through the queue, and is not lost.
    assert_eq!(
        store
            .enqueue(
                &[QueueItem {
                    trial_id: trials[0].id,
                    label: "seed=7".into(),
                }],
                0,
                "/data"
            )
            .unwrap(),
        1
    );
    let claimed = store.claim_queued("w", None).unwrap().unwrap();
    assert_eq!(claimed.trial.id, trials[0].id);
    assert_eq!(claimed.base_dir, std::path::PathBuf::from("/data"));
    // No train.device in its config: the device falls back to cpu.
    assert_eq!(claimed.trial.device.as_deref(), Some("cpu"));
    assert!(store.claim_queued("w", None).unwrap().is_none());
}

#[test]
fn queue_order_is_priority_then_fifo_and_cancelled_trials_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    let exp = store.upsert_experiment("q", "spec", "h").unwrap();
    let rows: Vec<NewTrial> = (0..5)
        .map(|i| {
            new_trial(
                &format!("{{\"train\":{{\"device\":\"cuda:{i}\"}}}}"),
                &format!("h{i}"),
                i,
            )
        })
        .collect();
    let ids = store.add_trials(exp, &rows).unwrap();
    let label = |i: usize| QueueItem {
        trial_id: ids[i],
        label: format!("t{i}"),
    };
    store.enqueue(&[label(0), label(1)], 0, "/a").unwrap();
    store.enqueue(&[label(2)], 5, "/a").unwrap();
    store.enqueue(&[label(3), label(4)], 0, "/a").unwrap();
    let cancelled = store.cancel(&[ids[1]]).unwrap();
    assert_eq!(cancelled.cancelled, vec![ids[1]]);
    assert!(store.cancel(&[9999]).is_err());
    // run's own claim skips the cancelled trial too
    assert!(store.claim_trial_id(ids[1], "w", "cpu").unwrap().is_none());
    let mut order = Vec::new();
    while let Some(q) = store.claim_queued("w", None).unwrap() {
        order.push((q.trial.id, q.priority, q.trial.device.unwrap()));
    }
    assert_eq!(
        order,
        vec![
            (ids[2], 5, "cuda:2".to_string()),
            (ids[0], 0, "cuda:0".to_string()),
            (ids[3], 0, "cuda:3".to_string()),
            (ids[4], 0, "cuda:4".to_string()),
        ]
    );
    let states: Vec<(i64, String)> = store
        .queue(true)
        .unwrap()
        .into_iter()
        .map(|e| (e.trial_id, e.state))
        .collect();
    assert!(
        states.contains(&(ids[1], "cancelled".to_string())),
        "{states:?}"
    );
    // Cancelling a running trial leaves it running but keeps it from coming back.
    for i in [2, 3, 4] {
        store.finish_trial(ids[i], &TrialResult::default()).unwrap();
    }
    let running = store.cancel(&[ids[0]]).unwrap();
    assert_eq!(running.running, vec![ids[0]]);
    // (its worker dies: the trial goes back to pending)
    assert_eq!(requeue(&store, exp, &[TrialStatus::Running]), 1);
    assert!(store.claim_queued("w", None).unwrap().is_none());
    // Queued again, a cancelled trial is claimable.
    store.enqueue(&[label(1)], 0, "/a").unwrap();
    assert_eq!(
        store
            .claim_queued("w", Some("cpu"))
            .unwrap()
            .unwrap()
            .trial
            .id,
        ids[1]
    );
}

/// The runner's two requeues: abandoned running trials keep their epochs (a
/// checkpoint resumes them); failed trials among the given ids start afresh.
#[test]
fn requeue_stale_keeps_epochs_and_requeue_failed_takes_only_failed_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    let exp = store.upsert_experiment("a", "", "").unwrap();
    let ids = store.add_trials(exp, &trials(4)).unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let worker = if i == 1 { "alive:1" } else { "dead:1" };
        store.claim_trial_id(id, worker, "cpu").unwrap().unwrap();
        store.record_epoch(id, &epoch(1, 0.5)).unwrap();
    }
    store.fail_trial(ids[2], "boom").unwrap();
    store.finish_trial(ids[3], &result()).unwrap();

    let seen = std::cell::RefCell::new(Vec::new());
    let stale = store
        .requeue_stale(exp, &|worker, beat| {
            assert!(beat.is_some(), "a claim sets the heartbeat");
            seen.borrow_mut().push(worker.to_string());
            worker.starts_with("dead")
        })
        .unwrap();
    assert_eq!(stale, vec![ids[0]]);
    // Only running trials are judged.
    assert_eq!(seen.into_inner(), ["dead:1", "alive:1"]);
    let t = store.trial(ids[0]).unwrap().unwrap();
    assert_eq!(t.status, TrialStatus::Pending);
    assert_eq!((t.worker, t.device), (None, None));
    assert!(t.started_at.is_some());
    assert_eq!(store.epochs(ids[0]).unwrap(), vec![epoch(1, 0.5)]);
    assert!(store.running(exp).unwrap().iter().all(|r| r.id == ids[1]));

    // Unknown and repeated ids are harmless; done and running trials stay.
    let moved = store
        .requeue_failed(&[ids[2], ids[3], ids[1], ids[2], 9999])
        .unwrap();
    assert_eq!(moved, 1);
    let t = store.trial(ids[2]).unwrap().unwrap();
    assert_eq!(t.status, TrialStatus::Pending);
    assert_eq!((t.error, t.started_at, t.finished_at), (None, None, None));
    assert!(store.epochs(ids[2]).unwrap().is_empty());
    let statuses: Vec<_> = store
        .trials(exp)
        .unwrap()
        .iter()
        .map(|t| t.status)
        .collect();
    assert_eq!(
        statuses,
        [
            TrialStatus::Pending,
            TrialStatus::Running,
            TrialStatus::Pending,
            TrialStatus::Done
        ]
    );
    assert_eq!(store.metrics(ids[3]).unwrap().len(), 3);
}
