//! Parallel trials, the queue and its workers, shards and `lab merge`, with the
//! real `lab` binary on real SQLite files. The real Slurm test is in
//! tests/it/slurm.rs.

use rusqlite::Connection;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml")
}

/// `lab --db DB ARGS`, one compute thread (two processes share the 2 CI cores).
fn lab(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.arg("--db").arg(db).args(args);
    cmd.env("RAYON_NUM_THREADS", "1").stdin(Stdio::null());
    cmd
}

/// Small trials of experiments/quick.toml: `name`, these seeds, both cells.
fn sets(name: &str, seeds: &str) -> Vec<String> {
    [
        format!("experiment.name={name}"),
        format!("experiment.seeds={seeds}"),
        "train.epochs=2".into(),
        "model.hidden=16".into(),
        "data.limit=1000".into(),
    ]
    .into()
}

fn with_sets<'a>(mut args: Vec<&'a str>, sets: &'a [String]) -> Vec<&'a str> {
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    args
}

fn output(mut cmd: Command) -> Output {
    let out = cmd.output().expect("lab starts");
    assert!(
        out.status.success(),
        "lab failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// `trial N (...) ... started` lines of progress logs, counted by trial id.
fn starts(logs: &[String]) -> HashMap<i64, usize> {
    let mut seen = HashMap::new();
    for line in logs.iter().flat_map(|l| l.lines()) {
        if !line.ends_with(" started") {
            continue;
        }
        let id = line
            .split("trial ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|id| id.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("no trial id in `{line}`"));
        *seen.entry(id).or_default() += 1;
    }
    seen
}

fn wait_with_log(child: &mut Child, log: &Path) -> String {
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "worker failed ({status}):\n{text}");
    text
}

#[test]
fn two_workers_drain_one_queue_across_experiments_and_run_every_trial_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = spec();
    let spec = spec.to_str().unwrap();
    // 4 trials at priority 0, then 2 of another experiment at priority 5.
    let low = sets("low", "[1,2]");
    let out = output(lab(&db, &with_sets(vec!["queue", "add", spec], &low)));
    assert!(stdout(&out).contains("4 pending"), "{}", stdout(&out));
    let high = sets("high", "[3]");
    output(lab(
        &db,
        &with_sets(vec!["queue", "add", spec, "--priority", "5"], &high),
    ));
    assert_eq!(
        count(&db, "SELECT count(*) FROM trials WHERE status = 'pending'"),
        6
    );
    let list = stdout(&output(lab(&db, &["queue", "list", "--format", "csv"])));
    let first = list.lines().nth(1).unwrap();
    assert!(
        first.contains(",high,") && first.contains(",5,pending"),
        "{list}"
    );

    // The queue was filled from this directory; the workers run from another,
    // so relative data paths must resolve from what the queue recorded.
    let elsewhere = tempfile::tempdir().unwrap();
    let spawn = |i: usize| {
        let log = dir.path().join(format!("worker{i}.log"));
        let child = lab(&db, &["worker", "--device", "cpu"])
            .current_dir(elsewhere.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, log)
    };
    let (mut a, log_a) = spawn(1);
    let (mut b, log_b) = spawn(2);
    let logs = vec![wait_with_log(&mut a, &log_a), wait_with_log(&mut b, &log_b)];

    assert_eq!(count(&db, "SELECT count(*) FROM trials"), 6);
    assert_eq!(
        count(&db, "SELECT count(*) FROM trials WHERE status = 'done'"),
        6
    );
    // Each trial ran once: one start line in the two logs, its epochs once.
    let started = starts(&logs);
    assert_eq!(started.len(), 6, "{logs:?}");
    assert!(started.values().all(|&n| n == 1), "{started:?}");
    assert_eq!(count(&db, "SELECT count(*) FROM epochs"), 12);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM trials WHERE worker IS NOT NULL AND device = 'cpu'"
        ),
        6
    );
    // Priority first: both `high` trials were claimed before any `low` one.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM trials h JOIN experiments eh ON eh.id = h.experiment_id,
                                  trials l JOIN experiments el ON el.id = l.experiment_id
             WHERE eh.name = 'high' AND el.name = 'low' AND h.started_at > l.started_at"
        ),
        0
    );
    // FIFO within a priority: `low` trials started in id order.
    let conn = Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.id FROM trials t JOIN experiments e ON e.id = t.experiment_id
             WHERE e.name = 'low' ORDER BY t.started_at, t.id",
        )
        .unwrap();
    let order: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    let list = stdout(&output(lab(&db, &["queue", "list"])));
    assert!(list.contains("the queue is empty"), "{list}");
    let all = stdout(&output(lab(
        &db,
        &["queue", "list", "--all", "--format", "json"],
    )));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&all).unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows
        .iter()
        .all(|r| r["state"] == "done" && r["device"] == "cpu"));
    // Leaderboards read the same store.
    let board = stdout(&output(lab(&db, &["compare", "high"])));
    assert!(board.contains("gru") && board.contains("lstm"), "{board}");
}

#[test]
fn cancelled_trials_are_never_claimed_until_queued_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = spec();
    let spec = spec.to_str().unwrap();
    let mut small = sets("cancel", "[1]");
    small.push("train.epochs=1".into());
    output(lab(&db, &with_sets(vec!["queue", "add", spec], &small)));
    let out = output(lab(&db, &["queue", "cancel", "2"]));
    assert!(
        stdout(&out).contains("cancelled 1 pending"),
        "{}",
        stdout(&out)
    );
    let list = stdout(&output(lab(&db, &["queue", "list", "--format", "csv"])));
    assert!(
        list.lines()
            .any(|l| l.starts_with("2,") && l.contains(",cancelled,")),
        "{list}"
    );

    output(lab(&db, &["worker"]));
    let status = |id: i64| -> String {
        Connection::open(&db)
            .unwrap()
            .query_row("SELECT status FROM trials WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(status(1), "done");
    assert_eq!(status(2), "pending");
    // `lab run` of the same grid leaves it alone too.
    let run = output(lab(&db, &with_sets(vec!["run", spec], &small)));
    assert!(stderr(&run).contains("0 run now"), "{}", stderr(&run));
    assert_eq!(status(2), "pending");

    // Unknown ids are refused, naming the trial.
    let bad = lab(&db, &["queue", "cancel", "99"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("trial 99 is not in the queue"),
        "{}",
        stderr(&bad)
    );

    // Queued again, it runs; cancelling finished trials changes nothing.
    output(lab(&db, &with_sets(vec!["queue", "add", spec], &small)));
    output(lab(&db, &["worker"]));
    assert_eq!(status(2), "done");
    let out = output(lab(&db, &["queue", "cancel", "--experiment", "cancel"]));
    assert!(
        stdout(&out).contains("cancelled 0 pending"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_following_worker_picks_up_trials_queued_later() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = spec();
    let spec = spec.to_str().unwrap();
    let mut first = sets("first", "[1]");
    first.push("sweep.model.cell=[\"gru\"]".into());
    first.push("train.epochs=1".into());
    // Started before anything is queued (before the database exists), it waits.
    let log = dir.path().join("worker.log");
    let mut worker = lab(&db, &["worker", "--follow", "--poll-max-secs", "1"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    output(lab(&db, &with_sets(vec!["queue", "add", spec], &first)));
    let done = || count(&db, "SELECT count(*) FROM trials WHERE status = 'done'");
    let wait = |n: i64, worker: &mut Child| {
        let start = Instant::now();
        while done() < n {
            if let Some(status) = worker.try_wait().unwrap() {
                panic!(
                    "worker exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            assert!(start.elapsed() < Duration::from_secs(300), "timed out");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(1, &mut worker);
    // The queue is empty now; the worker keeps polling.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        worker.try_wait().unwrap().is_none(),
        "a following worker exited"
    );
    let mut later = first.clone();
    later[0] = "experiment.name=later".into();
    output(lab(&db, &with_sets(vec!["queue", "add", spec], &later)));
    wait(2, &mut worker);
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert_eq!(count(&db, "SELECT count(DISTINCT worker) FROM trials"), 1);
}

#[test]
fn run_jobs_shares_the_threads_and_runs_every_trial_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = spec();
    let s = sets("jobs", "[1,2]");
    let mut cmd = lab(
        &db,
        &with_sets(vec!["run", spec.to_str().unwrap(), "--jobs", "2"], &s),
    );
    cmd.env("RAYON_NUM_THREADS", "2");
    let out = output(cmd);
    let err = stderr(&out);
    assert!(err.contains("2 jobs, threads per job: 1, 1"), "{err}");
    assert!(err.contains("[job 1]") && err.contains("[job 2]"), "{err}");
    assert!(
        err.contains("4 trials: 0 done before, 4 done now, 0 failed"),
        "{err}"
    );
    let started = starts(std::slice::from_ref(&err));
    assert_eq!(started.len(), 4, "{err}");
    assert!(started.values().all(|&n| n == 1), "{started:?}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM trials WHERE status = 'done'"),
        4
    );
    assert!(stdout(&out).contains("lstm"), "the leaderboard is printed");
}

/// Shards as Slurm array tasks write them: `lab run --trial-index i` into
/// `DIR/shard-i/lab.db`.
fn make_shards(dir: &Path, s: &[String], n: usize) {
    let spec = spec();
    for i in 0..n {
        let db = dir.join(format!("shard-{i}/lab.db"));
        let index = i.to_string();
        output(lab(
            &db,
            &with_sets(
                vec!["run", spec.to_str().unwrap(), "--trial-index", &index],
                s,
            ),
        ));
        assert_eq!(
            count(&db, "SELECT count(*) FROM trials"),
            1,
            "one trial per shard"
        );
    }
}

fn table_counts(db: &Path) -> Vec<i64> {
    [
        "experiments",
        "trials",
        "epochs",
        "metrics",
        "confusion",
        "artifacts",
    ]
    .iter()
    .map(|t| count(db, &format!("SELECT count(*) FROM {t}")))
    .collect()
}

#[test]
fn trial_index_runs_the_grid_trial_that_dry_run_lists_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shard/lab.db");
    let spec = spec();
    let s = sets("index", "[1,2]");
    let dry = stdout(&output(lab(
        &db,
        &with_sets(vec!["run", spec.to_str().unwrap(), "--dry-run"], &s),
    )));
    let line = dry
        .lines()
        .find(|l| l.trim_start().starts_with("2 "))
        .unwrap();
    let hash = line.split_whitespace().nth(1).unwrap();
    output(lab(
        &db,
        &with_sets(
            vec!["run", spec.to_str().unwrap(), "--trial-index", "2"],
            &s,
        ),
    ));
    let conn = Connection::open(&db).unwrap();
    let (stored, status): (String, String) = conn
        .query_row("SELECT config_hash, status FROM trials", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(stored.starts_with(hash), "{stored} vs {dry}");
    assert_eq!(status, "done");
    let bad = lab(
        &db,
        &with_sets(
            vec!["run", spec.to_str().unwrap(), "--trial-index", "4"],
            &s,
        ),
    )
    .output()
    .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--trial-index 4 is outside the grid: it has 4 trials"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn merge_of_real_shards_is_idempotent_and_keeps_artifacts_usable() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    let s = sets("merged", "[1,2]");
    make_shards(&shards, &s, 4);

    let status = output(lab(
        &dir.path().join("unused.db"),
        &["status", "--shards", shards.to_str().unwrap()],
    ));
    assert!(
        stderr(&status).contains("4 tasks: 4 done"),
        "{}",
        stderr(&status)
    );

    // The target already knows the grid as queued (pending) trials.
    let target = dir.path().join("main/lab.db");
    let spec = spec();
    output(lab(
        &target,
        &with_sets(vec!["queue", "add", spec.to_str().unwrap()], &s),
    ));
    let out = output(lab(
        &target,
        &[
            "merge",
            shards.to_str().unwrap(),
            "--into",
            target.to_str().unwrap(),
        ],
    ));
    let text = stdout(&out);
    assert!(text.contains("0 trials added, 4 updated"), "{text}");
    let first = table_counts(&target);
    // 1 experiment, 4 trials, 2 epochs each, one set of artifacts each
    assert_eq!(first[..3], [1, 4, 8]);
    assert_eq!(first[5], 12);
    assert_eq!(
        count(&target, "SELECT count(*) FROM trials WHERE status = 'done'"),
        4
    );

    // Merging again adds nothing.
    let again = stdout(&output(lab(
        &target,
        &[
            "merge",
            shards.to_str().unwrap(),
            "--into",
            target.to_str().unwrap(),
        ],
    )));
    assert!(
        again.contains("0 trials added, 0 updated, 4 unchanged"),
        "{again}"
    );
    assert_eq!(table_counts(&target), first);

    // A worse state in a shard never overwrites a done trial.
    let shard0 = shards.join("shard-0/lab.db");
    Connection::open(&shard0)
        .unwrap()
        .execute(
            "UPDATE trials SET status = 'failed', error = 'injected'",
            [],
        )
        .unwrap();
    let worse = stdout(&output(lab(
        &target,
        &[
            "merge",
            shard0.to_str().unwrap(),
            "--into",
            target.to_str().unwrap(),
        ],
    )));
    assert!(worse.contains("0 added, 0 updated, 1 unchanged"), "{worse}");
    assert_eq!(
        count(&target, "SELECT count(*) FROM trials WHERE status = 'done'"),
        4
    );

    // Artifacts were copied beside the target: the shards can go, show/predict work.
    std::fs::remove_dir_all(&shards).unwrap();
    let id = count(&target, "SELECT min(id) FROM trials").to_string();
    let show = stdout(&output(lab(&target, &["show", &id])));
    assert!(show.contains("model.safetensors"), "{show}");
    let predict = stdout(&output(lab(
        &target,
        &["predict", "--trial", &id, "a wonderful film"],
    )));
    assert!(!predict.trim().is_empty());

    // A fresh target gets the experiment and trials from the shards' own rows.
    let fresh = dir.path().join("fresh/lab.db");
    let shards2 = dir.path().join("shards2");
    make_shards(&shards2, &s, 2);
    let text = stdout(&output(lab(
        &fresh,
        &[
            "merge",
            shards2.to_str().unwrap(),
            "--into",
            fresh.to_str().unwrap(),
        ],
    )));
    assert!(
        text.contains("2 trials added") && text.contains("1 new experiments"),
        "{text}"
    );
}

#[test]
fn submit_dry_run_prints_the_array_script_and_refusals_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = spec();
    let spec = spec.to_str().unwrap();
    let shards = dir.path().join("shards");
    let out = output(lab(
        &db,
        &[
            "submit",
            spec,
            "--slurm",
            "--dry-run",
            "--max-parallel",
            "2",
            "--gres",
            "gpu:1",
            "--time",
            "01:30:00",
            "--partition",
            "gpu",
            "--shards",
            shards.to_str().unwrap(),
        ],
    ));
    let script = stdout(&out);
    for expected in [
        "#SBATCH --array=0-3%2",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=01:30:00",
        "#SBATCH --partition=gpu",
        "--trial-index \"$SLURM_ARRAY_TASK_ID\"",
        "shard-$SLURM_ARRAY_TASK_ID/lab.db",
    ] {
        assert!(script.contains(expected), "missing {expected}:\n{script}");
    }
    assert!(!shards.exists() && !db.exists(), "a dry run writes nothing");

    let refused = |args: &[&str], path: Option<&str>, expected: &str| {
        let mut cmd = lab(&db, args);
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    };
    let empty = tempfile::tempdir().unwrap();
    refused(
        &["submit", spec, "--slurm"],
        Some(empty.path().to_str().unwrap()),
        "sbatch was not found on PATH",
    );
    refused(
        &["submit", spec, "--slurm", "--time", "2h"],
        None,
        "expected HH:MM:SS",
    );
    refused(&["submit", spec], None, "pass --slurm");
    refused(
        &["submit", spec, "--slurm", "--partition", "a b"],
        None,
        "--partition `a b`",
    );
}
