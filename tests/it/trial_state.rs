//! A trial's state (epochs, checkpoint, artifacts) with the real binary: a done
//! trial has exactly epochs 1..N whatever interrupted it; a checkpoint is bound
//! to its store, trial, config and data, and a damaged or foreign one is
//! discarded (said, and the trial restarts) instead of resumed or failed on;
//! files a kill left behind are cleaned up on the next run.

use lab::store::{Store, TrialStatus};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SETS: &[&str] = &[
    "experiment.seeds=[1]",
    "sweep.model.cell=[\"gru\"]",
    "train.epochs=4",
    "data.limit=1500",
];

fn run_cmd(db: &Path, sets: &[&str]) -> Command {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.arg("--db").arg(db).arg("run").arg(spec);
    cmd.args(["--set", "experiment.name=state"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.stdin(Stdio::null());
    cmd
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

/// The only trial's checkpoint file under the store's directory.
fn checkpoint_of(db: &Path) -> PathBuf {
    db.parent()
        .unwrap()
        .join("state/1/checkpoint/checkpoint.safetensors")
}

/// Run and kill -9 once trial 1 has checkpointed at least `epochs` epochs.
fn run_and_kill(db: &Path, sets: &[&str], epochs: usize) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let log = db.with_extension("log");
    let mut child = run_cmd(db, sets)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let recorded = || -> Option<usize> {
        let store = Store::open_read_only(db).ok()?;
        Some(store.epochs(1).ok()?.len())
    };
    let start = Instant::now();
    while !(checkpoint_of(db).exists() && recorded().is_some_and(|n| n >= epochs)) {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("lab exited ({status}) before {epochs} epochs:\n{log}");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Epoch numbers and numbers (no timings) of trial 1, which must be done.
fn epochs_of(db: &Path) -> Vec<[f64; 5]> {
    let store = Store::open(db).unwrap();
    let trial = store.trial(1).unwrap().unwrap();
    assert_eq!(trial.status, TrialStatus::Done, "{:?}", trial.error);
    let epochs: Vec<[f64; 5]> = store
        .epochs(1)
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
    let recorded = store
        .metrics(1)
        .unwrap()
        .into_iter()
        .find(|m| m.split == "train" && m.name == "epochs")
        .unwrap()
        .value as usize;
    let numbers: Vec<usize> = epochs.iter().map(|e| e[0] as usize).collect();
    assert_eq!(numbers, (1..=recorded).collect::<Vec<_>>(), "epochs 1..N");
    epochs
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_failed_trial_retried_from_its_checkpoint_has_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference/lab.db");
    output(run_cmd(&reference, SETS));
    let reference = epochs_of(&reference);
    assert_eq!(reference.len(), 4);

    let db = dir.path().join("retried/lab.db");
    run_and_kill(&db, SETS, 2);
    // The trial failed (e.g. its output closed): --retry-failed runs it again.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE trials SET status = 'failed', error = 'boom'", [])
        .unwrap();
    let mut retry = run_cmd(&db, SETS);
    retry.arg("--retry-failed");
    output(retry);
    assert_eq!(epochs_of(&db), reference);
    crate::store_check::assert_clean_with_files(&db);
}

#[test]
fn a_failed_epoch_write_stops_training_and_the_retry_has_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference/lab.db");
    output(run_cmd(&reference, SETS));
    let reference = epochs_of(&reference);

    // The store refuses epoch 2's row, as a full disk or a lock held past the
    // retries would: a real SQLite error inside the real binary.
    let db = dir.path().join("full/lab.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    drop(Store::open(&db).unwrap());
    let sql = rusqlite::Connection::open(&db).unwrap();
    sql.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON epochs WHEN NEW.epoch = 2
         BEGIN SELECT RAISE(FAIL, 'database or disk is full (injected)'); END;",
    )
    .unwrap();
    let out = run_cmd(&db, SETS).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("disk is full (injected)"),
        "{}",
        stderr(&out)
    );
    let store = Store::open(&db).unwrap();
    let numbers: Vec<usize> = store.epochs(1).unwrap().iter().map(|e| e.epoch).collect();
    assert_eq!(numbers, [1], "training stopped at the failed write");
    assert_eq!(store.trial(1).unwrap().unwrap().status, TrialStatus::Failed);

    sql.execute_batch("DROP TRIGGER full").unwrap();
    let mut retry = run_cmd(&db, SETS);
    retry.arg("--retry-failed");
    output(retry);
    assert_eq!(epochs_of(&db), reference);
    crate::store_check::assert_clean_with_files(&db);
}

/// How many `pwrite64` calls lab makes on the store's WAL in one clean run.
fn wal_writes(db: &Path) -> usize {
    let trace = db.with_extension("trace");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=pwrite64", "-o"])
        .arg(&trace)
        .arg("-P")
        .arg(db.with_extension("db-wal"));
    let run = run_cmd(db, SETS);
    cmd.arg("--").arg(run.get_program()).args(run.get_args());
    output(cmd);
    let text = std::fs::read_to_string(&trace).unwrap();
    text.lines().filter(|l| l.contains("pwrite64(")).count()
}

#[test]
fn a_full_disk_on_the_wal_never_leaves_a_done_trial_without_its_epochs() {
    if crate::fault::can_ptrace().is_err() {
        eprintln!("SKIPPED: strace cannot trace here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference/lab.db");
    std::fs::create_dir_all(reference.parent().unwrap()).unwrap();
    let writes = wal_writes(&reference);
    let reference = epochs_of(&reference);
    // One ENOSPC at points spread over training and the final result (before
    // the fix: a done trial with none or some of its epochs).
    let mut failed = 0;
    for percent in [60, 75, 90] {
        let db = dir.path().join(format!("full{percent}/lab.db"));
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        let wal = db.with_extension("db-wal");
        let when = (writes * percent / 100).to_string();
        let cmd =
            crate::fault::strace_inject_on(&run_cmd(&db, SETS), &wal, "pwrite64", "ENOSPC", &when)
                .unwrap();
        let out = { cmd }.output().unwrap();
        // A refused write is bad luck for the trial (3) or the store (1), never a crash.
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 3)),
            "ENOSPC at WAL write {when}: {}\n{}",
            out.status,
            stderr(&out)
        );
        failed += usize::from(out.status.code() == Some(3));
        crate::store_check::assert_clean(&db);
        let mut retry = run_cmd(&db, SETS);
        retry.arg("--retry-failed");
        output(retry);
        assert_eq!(epochs_of(&db), reference, "ENOSPC at WAL write {when}");
        crate::store_check::assert_clean(&db);
    }
    assert!(
        failed > 0,
        "no injection hit a trial's writes ({writes} WAL writes)"
    );
}

#[test]
fn a_checkpoint_of_a_deleted_store_is_discarded_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let changed: Vec<&str> = SETS.iter().copied().chain(["train.lr=0.05"]).collect();
    let reference = dir.path().join("reference/lab.db");
    output(run_cmd(&reference, &changed));
    let reference = epochs_of(&reference);

    let db = dir.path().join("deleted/lab.db");
    run_and_kill(&db, SETS, 1);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let out = output(run_cmd(&db, &changed));
    let log = stderr(&out);
    assert!(log.contains("discarded the checkpoint"), "{log}");
    assert!(log.contains("checkpoint.safetensors"), "{log}");
    assert_eq!(epochs_of(&db), reference, "the new trial 1 started afresh");
    crate::store_check::assert_clean_with_files(&db);
}

/// Overwrite the bytes of tensor `name` with 0.5f32 values (finite, plausible).
fn replace_tensor_bytes(path: &Path, name: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let offsets = &header[name]["data_offsets"];
    let (start, end) = (
        8 + n + offsets[0].as_u64().unwrap() as usize,
        8 + n + offsets[1].as_u64().unwrap() as usize,
    );
    for chunk in bytes[start..end].chunks_mut(4) {
        chunk.copy_from_slice(&0.5f32.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_or_unreadable_checkpoint_is_discarded_and_the_trial_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference/lab.db");
    output(run_cmd(&reference, SETS));
    let reference = epochs_of(&reference);

    type Damage = fn(&Path);
    let damage: [(&str, Damage); 2] = [
        ("changed", |p| replace_tensor_bytes(p, "w.0")),
        ("cut", |p| {
            let bytes = std::fs::read(p).unwrap();
            std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
        }),
    ];
    for (how, damage) in damage {
        let db = dir.path().join(format!("{how}/lab.db"));
        run_and_kill(&db, SETS, 2);
        damage(&checkpoint_of(&db));
        let out = output(run_cmd(&db, SETS));
        let log = stderr(&out);
        assert!(log.contains("discarded the checkpoint"), "{how}: {log}");
        assert_eq!(epochs_of(&db), reference, "{how}: restarted from epoch 1");
        crate::store_check::assert_clean_with_files(&db);
    }
}

#[test]
fn leftovers_of_a_done_trial_are_removed_and_artifacts_share_one_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    output(run_cmd(&db, SETS));
    let trial_dir = dir.path().join("state/1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["model.safetensors", "vocab.json", "config.json"] {
            let mode = std::fs::metadata(trial_dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "{name}");
        }
    }
    // What a kill can leave: temporary files of a dead writer, and the
    // checkpoint of a trial recorded done just before the kill.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let checkpoint = trial_dir.join("checkpoint");
    std::fs::create_dir_all(&checkpoint).unwrap();
    std::fs::write(checkpoint.join("checkpoint.safetensors"), b"old").unwrap();
    let dead_tmp = [
        trial_dir.join(format!(".model.safetensors.{dead}.1.tmp")),
        checkpoint.join(format!(".checkpoint.safetensors.{dead}.2.tmp")),
    ];
    for f in &dead_tmp {
        std::fs::write(f, b"partial").unwrap();
    }
    // A live process's temporary file is its own.
    let live_tmp = trial_dir.join(format!(".vocab.json.{}.3.tmp", std::process::id()));
    std::fs::write(&live_tmp, b"busy").unwrap();
    // A directory this store knows nothing of is left alone.
    let unknown = dir.path().join(format!("state/7/.x.{dead}.4.tmp"));
    std::fs::create_dir_all(unknown.parent().unwrap()).unwrap();
    std::fs::write(&unknown, b"?").unwrap();
    // In the dataset cache (perhaps shared with other hosts), a dead writer's
    // file goes only once it is an hour old.
    let cache = dir.path().join("cache");
    let stale_cache = cache.join(format!(".x.dataset.{dead}.5.tmp"));
    let fresh_cache = cache.join(format!(".y.dataset.{dead}.6.tmp"));
    for f in [&stale_cache, &fresh_cache] {
        std::fs::write(f, b"partial").unwrap();
    }
    let touched = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&stale_cache)
        .status()
        .unwrap();
    assert!(touched.success());

    output(run_cmd(&db, SETS));
    assert!(
        !stale_cache.exists(),
        "an hour-old dead cache file is removed"
    );
    assert!(fresh_cache.exists(), "a recent cache file is kept");
    assert!(!checkpoint.exists(), "a done trial's checkpoint is removed");
    for f in &dead_tmp {
        assert!(!f.exists(), "{} is removed", f.display());
    }
    assert!(live_tmp.exists(), "a live writer's file is kept");
    assert!(unknown.exists(), "an unknown trial's files are kept");
    crate::store_check::assert_clean(&db);
}

/// Rewrite the checkpoint's `meta` so it claims one weight fewer, with a
/// checksum recomputed as lab computes it: a file that passes every check on
/// load but cannot be resumed (as one written by a lab with another layout).
fn claim_one_weight_fewer(path: &Path) {
    use sha2::{Digest, Sha256};
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = |name: &str| {
        let o = &header[name]["data_offsets"];
        8 + n + o[0].as_u64().unwrap() as usize..8 + n + o[1].as_u64().unwrap() as usize
    };
    let meta = data("meta");
    let last = meta.end - 8..meta.end;
    let weights = i64::from_le_bytes(bytes[last.clone()].try_into().unwrap());
    bytes[last].copy_from_slice(&(weights - 1).to_le_bytes());
    let mut names: Vec<&String> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .collect();
    names.sort();
    let mut hash = Sha256::new();
    for name in names {
        let t = &header[name.as_str()];
        let shape: Vec<u64> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        hash.update(name.as_bytes());
        hash.update(format!("\0{}{shape:?}\0", t["dtype"].as_str().unwrap()).as_bytes());
        hash.update(&bytes[data(name)]);
    }
    let old = header["__metadata__"]["lab.checksum"].as_str().unwrap();
    let text = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let text = text.replace(old, &hex::encode(hash.finalize()));
    bytes[8..8 + n].copy_from_slice(text.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_checkpoint_that_cannot_be_resumed_fails_the_trial_once_not_forever() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference/lab.db");
    output(run_cmd(&reference, SETS));
    let reference = epochs_of(&reference);

    let db = dir.path().join("layout/lab.db");
    run_and_kill(&db, SETS, 2);
    claim_one_weight_fewer(&checkpoint_of(&db));
    let out = run_cmd(&db, SETS).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("it was discarded"), "{log}");
    assert!(!checkpoint_of(&db).exists());
    let mut retry = run_cmd(&db, SETS);
    retry.arg("--retry-failed");
    output(retry);
    assert_eq!(epochs_of(&db), reference);
    crate::store_check::assert_clean_with_files(&db);
}
