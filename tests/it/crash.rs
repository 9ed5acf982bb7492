//! Crash safety and concurrency with the real `lab` binary: kill -9 mid-epoch and
//! resume; two processes sharing one sweep. Each runs 3 times, and every test
//! ends with the store checker of `store_check`.

use crate::store_check;
use lab::store::{MetricRow, Store, TrialStatus};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml")
}

pub(crate) fn lab(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.arg("--db").arg(db).args(args);
    cmd.stdin(Stdio::null());
    cmd
}

/// `lab run` of the quick spec with these `--set` overrides.
pub(crate) fn run_cmd(db: &Path, name: &str, sets: &[&str]) -> Command {
    let name = format!("experiment.name={name}");
    let spec = spec();
    let mut args = vec!["run", spec.to_str().unwrap(), "--set", &name];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    lab(db, &args)
}

pub(crate) fn output(mut cmd: Command) -> Output {
    let out = cmd.output().expect("cannot start lab");
    assert!(
        out.status.success(),
        "lab failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Epoch rows without the timing columns, and test metrics, of every trial in order.
pub(crate) type Fingerprint = Vec<(String, Vec<[f64; 5]>, Vec<MetricRow>)>;

pub(crate) fn fingerprint(db: &Path, name: &str) -> Fingerprint {
    let store = Store::open(db).unwrap();
    let experiment = store.experiment_by_name(name).unwrap().unwrap();
    store
        .trials(experiment.id)
        .unwrap()
        .into_iter()
        .map(|t| {
            assert_eq!(t.status, TrialStatus::Done, "trial {} not done", t.id);
            let epochs = store
                .epochs(t.id)
                .unwrap()
                .iter()
                .map(|e| {
                    [
                        e.epoch as f64,
                        e.train_loss,
                        e.valid_loss,
                        e.valid_accuracy,
                        e.valid_macro_f1,
                    ]
                })
                .collect();
            let metrics = store
                .metrics(t.id)
                .unwrap()
                .into_iter()
                .filter(|m| m.split != "train")
                .collect();
            (t.config_hash, epochs, metrics)
        })
        .collect()
}

pub(crate) fn wait_for(what: &str, log: &Path, child: &mut Child, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("lab exited ({status}) before {what}:\n{log}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const KILL_SETS: &[&str] = &[
    "experiment.seeds=[5]",
    "sweep.model.cell=[\"lstm\",\"gru\"]",
    "train.epochs=3",
    "data.limit=1500",
];

#[test]
fn kill_9_mid_epoch_then_resume_gives_the_uninterrupted_results() {
    let dir = tempfile::tempdir().unwrap();
    let reference_db = dir.path().join("reference/lab.db");
    output(run_cmd(&reference_db, "crash", KILL_SETS));
    let reference = fingerprint(&reference_db, "crash");
    assert_eq!(reference.len(), 2);
    assert!(reference.iter().all(|(_, epochs, _)| epochs.len() == 3));

    for round in 0..3 {
        let db = dir.path().join(format!("round{round}/lab.db"));
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        let log = db.with_extension("log");
        let mut child = run_cmd(&db, "crash", KILL_SETS)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Kill while the second trial is in its second epoch (one recorded).
        let epochs_of_second = || -> Option<(Vec<lab::store::TrialRow>, usize)> {
            if !db.exists() {
                return None;
            }
            let store = Store::open(&db).ok()?;
            let experiment = store.experiment_by_name("crash").ok()??;
            let trials = store.trials(experiment.id).ok()?;
            let n = store.epochs(trials.get(1)?.id).ok()?.len();
            Some((trials, n))
        };
        // (and checkpointed: a kill between the two just reruns that epoch).
        let checkpoint = db
            .parent()
            .unwrap()
            .join("crash/2/checkpoint/checkpoint.safetensors");
        wait_for("an epoch of trial 2", &log, &mut child, || {
            checkpoint.exists() && epochs_of_second().is_some_and(|(_, n)| n >= 1)
        });
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let (before, _) = epochs_of_second().unwrap();
        assert_eq!(before[0].status, TrialStatus::Done);
        assert_eq!(before[1].status, TrialStatus::Running);
        let store = Store::open(&db).unwrap();
        let first_epoch_seconds = store.epochs(before[1].id).unwrap()[0].seconds;

        // Stale trials are a warning on stderr; stdout has the counts.
        let status = output(lab(&db, &["status", "crash"]));
        let status = String::from_utf8_lossy(&status.stderr);
        assert!(status.contains("stale: crash trial 2"), "{status}");

        let rerun = output(run_cmd(&db, "crash", KILL_SETS));
        let stderr = String::from_utf8_lossy(&rerun.stderr);
        assert!(
            stderr.contains("2 trials: 1 done before, 1 run now, 0 failed"),
            "{stderr}"
        );
        let after = store.trials(before[0].experiment_id).unwrap();
        assert_eq!(after.len(), 2, "no trial added or lost");
        // The finished trial was not run again; the killed one resumed from its
        // checkpoint rather than starting over (its first epoch row is the old one).
        assert_eq!(after[0].finished_at, before[0].finished_at);
        assert_eq!(
            store.epochs(after[1].id).unwrap()[0].seconds,
            first_epoch_seconds
        );
        assert_eq!(fingerprint(&db, "crash"), reference, "round {round}");
        assert!(
            !db.parent().unwrap().join("crash/2/checkpoint").exists(),
            "checkpoint left behind"
        );
        store_check::assert_clean(&db);
    }
    store_check::assert_clean(&reference_db);
}

#[test]
fn two_processes_share_one_sweep_and_run_every_trial_once() {
    let sets = [
        "experiment.seeds=[1,2,3]",
        "sweep.model.cell=[\"lstm\",\"gru\"]",
        "train.epochs=2",
        "model.hidden=16",
        "data.limit=1000",
    ];
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let db = dir.path().join(format!("round{round}/lab.db"));
        let spawn = || {
            run_cmd(&db, "shared", &sets)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        // A reader while both write.
        let start = Instant::now();
        while !db.exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        let compare = lab(&db, &["compare"]).output().unwrap();
        assert!(
            compare.status.success(),
            "compare during a sweep: {}",
            String::from_utf8_lossy(&compare.stderr)
        );
        let mut ran = 0;
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            let summary = stderr
                .lines()
                .find_map(|l| summary_of(l, "6 trials:"))
                .unwrap_or_else(|| panic!("no summary in {stderr}"));
            let now: usize = summary
                .split(", ")
                .find_map(|part| part.strip_suffix(" run now"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("cannot read {summary}"));
            ran += now;
        }
        assert_eq!(ran, 6, "round {round}: every trial once, none twice");
        let store = Store::open(&db).unwrap();
        let experiment = store.experiment_by_name("shared").unwrap().unwrap();
        let trials = store.trials(experiment.id).unwrap();
        assert_eq!(trials.len(), 6);
        for t in &trials {
            assert_eq!(t.status, TrialStatus::Done);
            assert_eq!(store.epochs(t.id).unwrap().len(), 2);
        }
        store_check::assert_clean(&db);
    }
}

const SMALL: &[&str] = &[
    "experiment.seeds=[1]",
    "sweep.model.cell=[\"gru\"]",
    "train.epochs=1",
    "data.limit=400",
];

/// Force the experiment's only trial into `status` with this worker and heartbeat.
fn set_trial(db: &Path, status: &str, worker: &str, heartbeat: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute(
            "UPDATE trials SET status = ?1, worker = ?2, heartbeat_at = ?3",
            [status, worker, heartbeat],
        )
        .unwrap();
}

fn ran_now(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| summary_of(l, "1 trials:"))
        .unwrap_or_else(|| panic!("no summary in {stderr}"))
        .to_string()
}

/// The summary starting with `start` in a log line: the whole line after its
/// timestamp (stderr is not a terminal here, so each line carries one).
fn summary_of<'a>(line: &'a str, start: &str) -> Option<&'a str> {
    let message = line.split_once(' ').map_or(line, |(time, rest)| {
        if time.ends_with('Z') && time.contains('T') {
            rest
        } else {
            line
        }
    });
    message.starts_with(start).then_some(message)
}

#[test]
fn a_lease_expired_on_another_host_is_rerun_and_a_live_one_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    output(run_cmd(&db, "lease", SMALL));

    // Another host's worker, renewing its lease just now: not ours to take.
    set_trial(&db, "running", "elsewhere:1", &lab::store::now());
    let out = output(run_cmd(&db, "lease", SMALL));
    assert_eq!(
        ran_now(&out),
        "1 trials: 0 done before, 0 run now, 0 failed"
    );
    let status = output(lab(&db, &["status", "lease"]));
    let status = String::from_utf8_lossy(&status.stderr);
    assert!(!status.contains("stale:"), "{status}");

    // Its heartbeat stopped long ago: the trial is abandoned and runs again.
    set_trial(&db, "running", "elsewhere:1", "2000-01-01T00:00:00.000Z");
    let status = output(lab(&db, &["status", "lease"]));
    let status = String::from_utf8_lossy(&status.stderr);
    assert!(
        status.contains("stale: lease trial 1, worker elsewhere:1"),
        "{status}"
    );
    let out = output(run_cmd(&db, "lease", SMALL));
    assert_eq!(
        ran_now(&out),
        "1 trials: 0 done before, 1 run now, 0 failed"
    );
    store_check::assert_clean(&db);
}

#[test]
fn failed_trials_wait_for_retry_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    output(run_cmd(&db, "retry", SMALL));
    set_trial(&db, "failed", "", "");

    let out = output(run_cmd(&db, "retry", SMALL));
    assert_eq!(
        ran_now(&out),
        "1 trials: 0 done before, 0 run now, 0 failed"
    );
    let mut retry = run_cmd(&db, "retry", SMALL);
    retry.arg("--retry-failed");
    let out = output(retry);
    assert_eq!(
        ran_now(&out),
        "1 trials: 0 done before, 1 run now, 0 failed"
    );
    let store = Store::open(&db).unwrap();
    let experiment = store.experiment_by_name("retry").unwrap().unwrap();
    assert_eq!(store.status_counts(experiment.id).unwrap().done, 1);
    store_check::assert_clean(&db);
}

#[test]
fn a_worker_stopped_past_its_lease_loses_the_trial_and_records_nothing() {
    let sets = [
        "experiment.seeds=[3]",
        "sweep.model.cell=[\"gru\"]",
        "train.epochs=3",
        "data.limit=1500",
    ];
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let log = dir.path().join("a.log");
    let mut a = run_cmd(&db, "stopped", &sets);
    a.args(["--lease-secs", "1"]);
    let mut a = a
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let checkpoint = dir
        .path()
        .join("stopped/1/checkpoint/checkpoint.safetensors");
    wait_for("an epoch", &log, &mut a, || checkpoint.exists());
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &a.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_millis(2500));
    let mut b = run_cmd(&db, "stopped", &sets);
    b.args(["--lease-secs", "1"]);
    let out = output(b);
    assert_eq!(
        ran_now(&out),
        "1 trials: 0 done before, 1 run now, 0 failed"
    );
    // What the new owner recorded: its epochs and its weights file.
    let owner = Store::open(&db).unwrap();
    let owners_epochs = owner.epochs(1).unwrap();
    let owners_artifacts = owner.artifacts(1).unwrap();
    let weights = |artifacts: &[lab::store::ArtifactRow]| {
        let row = artifacts.iter().find(|a| a.kind == "weights").unwrap();
        (row.sha256.clone(), dir.path().join(&row.path))
    };
    let (owners_sha, weights_file) = weights(&owners_artifacts);
    assert_eq!(lab::files::sha256_file(&weights_file).unwrap(), owners_sha);
    signal("-CONT");
    let status = a.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    // 3: a trial failed (its run was taken over).
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("taken over by another worker"), "{log}");
    let store = Store::open(&db).unwrap();
    let experiment = store.experiment_by_name("stopped").unwrap().unwrap();
    let trials = store.trials(experiment.id).unwrap();
    assert_eq!(trials.len(), 1);
    assert_eq!(trials[0].status, TrialStatus::Done);
    assert_eq!(trials[0].error, None);
    // The stopped worker wrote nothing of the owner's: no epoch row, no file.
    assert_eq!(store.epochs(1).unwrap(), owners_epochs);
    assert_eq!(store.artifacts(1).unwrap(), owners_artifacts);
    assert_eq!(
        lab::files::sha256_file(&weights_file).unwrap(),
        owners_sha,
        "the weights file is the one the store records"
    );
}
