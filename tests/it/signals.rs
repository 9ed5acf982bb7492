//! Output closed and stop signals with the real `lab` binary (issue 14, faults
//! 2 and 10): a reader that goes away (`lab run | head`), a `--jobs` parent
//! killed under its jobs, and SIGINT/SIGTERM to `lab run`, `lab run --jobs 2`
//! and `lab worker` mid-epoch. None of them may mark a trial failed; a stopped
//! run exits 130, says how to resume, and resuming gives the uninterrupted
//! run's epochs and metrics.

use crate::crash::{fingerprint, Fingerprint};
use lab::store::{Store, TrialStatus};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Two trials (lstm, gru) of 3 epochs: each epoch takes long enough to be
/// caught in the middle.
const SETS: &[&str] = &[
    "experiment.seeds=[5]",
    "sweep.model.cell=[\"lstm\",\"gru\"]",
    "train.epochs=3",
    "data.limit=1500",
];

fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml")
}

fn lab(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.arg("--db").arg(db).args(args).stdin(Stdio::null());
    // One thread per process, for `--jobs` as for one process: the numbers of
    // the reference run do not depend on how the threads are shared out.
    cmd.env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1");
    cmd
}

/// `lab run` of the quick spec as experiment `name`, with [`SETS`] and `extra`.
fn run_cmd(db: &Path, name: &str, extra: &[&str]) -> Command {
    let name = format!("experiment.name={name}");
    let spec = spec();
    let mut args = vec!["run", spec.to_str().unwrap(), "--set", &name];
    for s in SETS {
        args.extend(["--set", s]);
    }
    args.extend(extra);
    lab(db, &args)
}

fn output(mut cmd: Command) -> Output {
    let out = cmd.output().expect("cannot start lab");
    assert!(
        out.status.success(),
        "lab failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The uninterrupted run's fingerprint (experiment "sig"), computed once.
fn reference() -> &'static Fingerprint {
    static REFERENCE: OnceLock<(tempfile::TempDir, Fingerprint)> = OnceLock::new();
    &REFERENCE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("lab.db");
            output(run_cmd(&db, "sig", &[]));
            let fingerprint = fingerprint(&db, "sig");
            assert_eq!(fingerprint.len(), 2);
            assert!(fingerprint.iter().all(|(_, epochs, _)| epochs.len() == 3));
            (dir, fingerprint)
        })
        .1
}

/// Statuses and errors of experiment `name`'s trials (empty before it exists).
fn trials(db: &Path, name: &str) -> Vec<(TrialStatus, Option<String>)> {
    let Ok(store) = Store::open(db) else {
        return Vec::new();
    };
    let Ok(Some(experiment)) = store.experiment_by_name(name) else {
        return Vec::new();
    };
    store
        .trials(experiment.id)
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.status, t.error))
        .collect()
}

fn assert_none_failed(db: &Path, name: &str) {
    let trials = trials(db, name);
    assert!(
        trials.iter().all(|(s, _)| *s != TrialStatus::Failed),
        "a trial was marked failed: {trials:?}"
    );
}

/// Wait until `ready`, failing if `child` exits first or after 120 s.
fn wait_for(what: &str, child: &mut Child, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("lab exited ({status}) before {what}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{what}: lab did not exit within 120 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first trial's checkpoint: it has finished an epoch, and is in the next.
fn first_checkpoint(db: &Path, name: &str) -> PathBuf {
    db.parent()
        .unwrap()
        .join(format!("{name}/1/checkpoint/checkpoint.safetensors"))
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// A closed output (`lab run | head -n 2`): the reader of stdout and stderr
/// goes away after two lines; the sweep goes on silently, records every
/// trial, and exits 0 (never 101, never a trial failed by a panic).
#[test]
fn a_closed_output_does_not_fail_the_trials() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let mut child = run_cmd(&db, "sig", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    for _ in 0..2 {
        stderr.read_line(&mut line).unwrap();
    }
    assert!(line.contains("trials"), "{line}");
    drop(stderr);
    drop(child.stdout.take());
    let status = wait_exit(&mut child, "closed output");
    assert_none_failed(&db, "sig");
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(&fingerprint(&db, "sig"), reference());
}

/// `lab run --jobs 2` whose parent is killed (`kill -9`) while its jobs train:
/// their stderr (a pipe to the parent) is closed under them. They go on and
/// record their trials done; none is marked failed.
#[test]
fn jobs_outlive_a_killed_parent_without_failing_their_trials() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let mut parent = run_cmd(&db, "sig", &["--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("a checkpoint of trial 1", &mut parent, || {
        first_checkpoint(&db, "sig").exists()
    });
    parent.kill().unwrap(); // SIGKILL
    parent.wait().unwrap();
    // The orphaned jobs finish on their own.
    let start = Instant::now();
    loop {
        let trials = trials(&db, "sig");
        assert!(
            trials.iter().all(|(s, _)| *s != TrialStatus::Failed),
            "a trial was marked failed: {trials:?}"
        );
        if trials.len() == 2 && trials.iter().all(|(s, _)| *s == TrialStatus::Done) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "jobs did not finish: {trials:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(&fingerprint(&db, "sig"), reference());
}

/// A stopped run: exit 130, a message naming the signal and the command that
/// resumes, no failed trial, the first trial back to pending; then the same
/// command completes the sweep with the uninterrupted run's numbers.
fn stop_then_resume(stop: Signal, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let log = dir.path().join("run.log");
    let mut child = run_cmd(&db, "sig", extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("a checkpoint of trial 1", &mut child, || {
        first_checkpoint(&db, "sig").exists()
    });
    signal(&child, stop);
    let status = wait_exit(&mut child, stop.as_str());
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{status}\n{log}");
    let name = if stop == Signal::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    assert!(log.contains(&format!("interrupted by {name}")), "{log}");
    assert!(log.contains("again to resume"), "{log}");
    // The resume command names the test's store, not the default one.
    assert!(log.contains("`lab --db ") && log.contains(" run "), "{log}");
    assert_none_failed(&db, "sig");
    let trials = trials(&db, "sig");
    assert!(
        trials.iter().all(|(s, _)| *s != TrialStatus::Running),
        "a trial left running: {trials:?}"
    );
    assert_eq!(trials[0].0, TrialStatus::Pending, "{trials:?}\n{log}");
    assert!(first_checkpoint(&db, "sig").exists(), "checkpoint kept");

    let again = output(run_cmd(&db, "sig", extra));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(&fingerprint(&db, "sig"), reference(), "{stderr}");
}

#[test]
fn sigint_mid_epoch_stops_lab_run_resumably() {
    stop_then_resume(Signal::SIGINT, &[]);
}

#[test]
fn sigterm_mid_epoch_stops_lab_run_resumably() {
    stop_then_resume(Signal::SIGTERM, &[]);
}

/// The parent of `--jobs 2` passes the signal on to its jobs and waits for them.
#[test]
fn sigterm_to_the_parent_of_jobs_stops_every_job_resumably() {
    stop_then_resume(Signal::SIGTERM, &["--jobs", "2"]);
}

/// `lab worker` stopped mid-epoch: exit 130, its trial back to pending, and
/// the next worker finishes it with the uninterrupted run's numbers.
#[test]
fn sigint_mid_epoch_stops_lab_worker_resumably() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = spec();
    let mut add = vec!["queue", "add", spec.to_str().unwrap(), "--set"];
    add.push("experiment.name=sig");
    for s in SETS {
        add.extend(["--set", s]);
    }
    output(lab(&db, &add));
    let log = dir.path().join("worker.log");
    let mut worker = lab(&db, &["worker"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("a checkpoint of trial 1", &mut worker, || {
        first_checkpoint(&db, "sig").exists()
    });
    signal(&worker, Signal::SIGINT);
    let status = wait_exit(&mut worker, "worker");
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{status}\n{log}");
    assert!(log.contains("interrupted by SIGINT"), "{log}");
    assert!(log.contains("`lab worker` again to resume"), "{log}");
    assert_none_failed(&db, "sig");
    assert_eq!(trials(&db, "sig")[0].0, TrialStatus::Pending, "{log}");

    output(lab(&db, &["worker"]));
    assert_eq!(&fingerprint(&db, "sig"), reference());
}
