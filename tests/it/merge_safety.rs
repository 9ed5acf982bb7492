//! A store from elsewhere is untrusted (issue 14, faults 6, 8 and parts of 10):
//! crafted shards (an experiment named `../../escaped`, an absolute or symlinked
//! artifact path, changed artifact bytes, a file that is no database) are
//! refused by file, trial and key while the good ones are merged; `report`,
//! `export` and `lab worker` never build a path outside the store from a
//! stored name; one garbled row does not stop `compare`. Real `lab run`
//! stores, edited with rusqlite as an attacker would.

use crate::common::copy_dir;
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn lab(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("lab runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "lab failed:\n{stdout}\n{stderr}");
    stdout
}

/// A real store: experiments/quick.toml as experiment `m`, one cell, seeds 1
/// and 2, one small epoch (trials 1 and 2).
fn real_store(dir: &Path) -> PathBuf {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml");
    let db = dir.join("lab.db");
    let sets = [
        "experiment.name=m",
        "experiment.seeds=[1,2]",
        "train.epochs=1",
        "model.hidden=8",
        "data.limit=1000",
        "sweep.model.cell=[gru]",
    ];
    let mut args = vec!["run", spec.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s]);
    }
    ok(&lab(&db, &args));
    db
}

/// A copy of the store directory `base` at `to`, edited by `sql`.
fn crafted(base: &Path, to: &Path, sql: &str) -> PathBuf {
    copy_dir(base, to);
    let db = to.join("lab.db");
    if !sql.is_empty() {
        Connection::open(&db).unwrap().execute_batch(sql).unwrap();
    }
    db
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn one(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Every file name under `dir`, recursively.
fn names_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type().unwrap().is_dir() {
            out.extend(names_under(&entry.path()));
        }
    }
    out
}

#[test]
fn crafted_shards_are_refused_by_file_trial_and_key_and_the_rest_merged() {
    let tmp = tempfile::tempdir().unwrap();
    // Nested, so that `../../escaped` from the target would still land in tmp.
    let base = tmp.path().join("a/b/base");
    std::fs::create_dir_all(&base).unwrap();
    real_store(&base);
    let shards = tmp.path().join("a/b/shards");
    let host = Path::new("/etc/hostname");
    let host_sha = sha256(host);

    let escape = crafted(
        &base,
        &shards.join("escape"),
        "UPDATE experiments SET name = '../../escaped'",
    );
    // Trial 2's config artifact points at a system file (its sha256 matching).
    let absolute = crafted(
        &base,
        &shards.join("absolute"),
        &format!(
            "UPDATE artifacts SET path = '/etc/hostname', sha256 = '{host_sha}' \
             WHERE trial_id = 2 AND kind = 'config'"
        ),
    );
    // Trial 2's weights changed after they were recorded.
    let changed = crafted(&base, &shards.join("changed"), "");
    let weights = changed.parent().unwrap().join("m/2/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&weights, bytes).unwrap();
    // Trial 2's vocabulary is a symbolic link out of the shard.
    let linked = crafted(
        &base,
        &shards.join("linked"),
        &format!(
            "UPDATE artifacts SET sha256 = '{host_sha}' WHERE trial_id = 2 AND kind = 'vocabulary'"
        ),
    );
    let vocab = linked.parent().unwrap().join("m/2/vocab.json");
    std::fs::remove_file(&vocab).unwrap();
    std::os::unix::fs::symlink(host, &vocab).unwrap();
    let garbage = shards.join("garbage/lab.db");
    std::fs::create_dir_all(garbage.parent().unwrap()).unwrap();
    std::fs::write(&garbage, b"this is no SQLite database, just bytes").unwrap();

    let good = crafted(&base, &shards.join("good"), "");

    // Trials are matched by config hash: each bad trial 2 is looked at because
    // no shard before it merged trial 2; the good shard merges it last.
    let target = tmp.path().join("a/b/target/lab.db");
    let mut args = vec!["merge"];
    let files = [&escape, &changed, &absolute, &linked, &garbage, &good];
    let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    args.extend(files.iter().copied());
    args.extend(["--into", target.to_str().unwrap()]);
    let out = lab(&target, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for want in [
        format!(
            "{}: experiment 1 (key `experiments.name`)",
            escape.display()
        ),
        format!("{}: trial 2 of `m` not merged", absolute.display()),
        "key `artifacts.path` of its config artifact: \"/etc/hostname\" is absolute".into(),
        format!("{}: trial 2 of `m` not merged", changed.display()),
        "changed since it was recorded (key `artifacts.sha256`".into(),
        format!("{}: trial 2 of `m` not merged", linked.display()),
        "through a symbolic link".into(),
        format!("{}: not merged", garbage.display()),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in:\n{stderr}");
    }
    assert!(stdout.contains("merged 5 of 6 shards"), "{stdout}");

    // The good trials of the bad shards are merged, with files matching their rows.
    assert_eq!(
        one(&target, "SELECT count(*) FROM trials WHERE status = 'done'"),
        2
    );
    let root = target.parent().unwrap();
    let conn = Connection::open(&target).unwrap();
    let mut stmt = conn.prepare("SELECT path, sha256 FROM artifacts").unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 6);
    for (path, sha) in rows {
        assert!(!path.starts_with('/') && !path.contains(".."), "{path}");
        assert_eq!(sha256(&root.join(&path)), sha, "{path}");
    }
    // Nothing escaped, nothing of the system was copied in.
    let names = names_under(tmp.path());
    assert!(!names.iter().any(|n| n == "escaped"), "{names:?}");
    assert!(!names_under(root).iter().any(|n| n == "hostname"));
    // No temporary copies left behind.
    assert!(!names_under(root).iter().any(|n| n.ends_with(".tmp")));
}

#[test]
fn stored_names_and_paths_never_lead_report_export_or_a_worker_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("x/base");
    std::fs::create_dir_all(&base).unwrap();
    real_store(&base);

    // report -o DIR with an experiment named to climb out of DIR.
    let store = crafted(
        &base,
        &tmp.path().join("x/report"),
        "UPDATE experiments SET name = '../escaped-report'",
    );
    let reports = tmp.path().join("x/reports");
    let out = lab(&store, &["report", "-o", reports.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("key `experiments.name`"), "{stderr}");
    assert!(!tmp.path().join("x/escaped-report.html").exists());
    assert!(reports.join("index.html").exists());

    // export/predict with a weights path out of the store (to a real model).
    let outside = tmp.path().join("x/outside");
    copy_dir(&base.join("m/1"), &outside);
    let store = crafted(
        &base,
        &tmp.path().join("x/export"),
        "UPDATE artifacts SET path = '../outside/model.safetensors' WHERE trial_id = 1 AND kind = 'weights'",
    );
    let out_dir = tmp.path().join("x/exported");
    for args in [
        vec!["export", "1", "-o", out_dir.to_str().unwrap()],
        vec!["predict", "--trial", "1", "a wonderful film"],
    ] {
        let out = lab(&store, &args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("trial 1: key `artifacts.path` of its weights artifact")
                && stderr.contains("climbs out"),
            "{args:?}: {stderr}"
        );
    }

    // A queued trial whose stored config names an experiment that climbs out.
    let queued = tmp.path().join("x/queue/lab.db");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml");
    let mut args = vec!["queue", "add", spec.to_str().unwrap()];
    for s in [
        "experiment.name=q",
        "experiment.seeds=[1]",
        "train.epochs=1",
        "model.hidden=8",
        "data.limit=1000",
        "sweep.model.cell=[gru]",
    ] {
        args.extend(["--set", s]);
    }
    ok(&lab(&queued, &args));
    Connection::open(&queued)
        .unwrap()
        .execute(
            "UPDATE trials SET config_json = json_set(config_json, '$.experiment', '../../wesc')",
            [],
        )
        .unwrap();
    let out = lab(&queued, &["worker"]);
    let (_, stderr) = text(&out);
    assert!(
        !names_under(tmp.path()).iter().any(|n| n == "wesc"),
        "{stderr}"
    );
    let conn = Connection::open(&queued).unwrap();
    let (status, error): (String, String) = conn
        .query_row("SELECT status, error FROM trials", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(status, "failed");
    assert!(
        error.contains("key `experiment`") && error.contains("../../wesc"),
        "{error}"
    );
}

#[test]
fn one_garbled_row_is_skipped_with_a_warning_not_the_whole_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    real_store(tmp.path());
    let db = tmp.path().join("lab.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "UPDATE trials SET config_json = '{not json' WHERE id = 1;
             UPDATE metrics SET value = 'text' WHERE trial_id = 2 AND split = 'test' AND name = 'accuracy';",
        )
        .unwrap();
    let out = lab(&db, &["compare", "m", "--format", "csv"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("trial 1") && stderr.contains("trials.config_json"),
        "{stderr}"
    );
    assert!(
        stderr.contains("trial 2") && stderr.contains("test.accuracy"),
        "{stderr}"
    );
    // Trial 2 is still ranked (by macro_f1).
    assert!(stdout.lines().count() >= 2, "{stdout}");
    for args in [vec!["compare"], vec!["show", "2"], vec!["status", "m"]] {
        let out = lab(&db, &args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stdout}\n{stderr}");
    }
    let reports = tmp.path().join("reports");
    ok(&lab(&db, &["report", "m", "-o", reports.to_str().unwrap()]));
}
