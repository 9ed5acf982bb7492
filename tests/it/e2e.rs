//! End to end: the real `lab` binary trains experiments/quick.toml into a
//! temporary SQLite file; the rows are then read back with plain SQL.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("lab runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn quick_spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml")
}

#[test]
fn quick_sweep_records_every_table_and_reruns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let db_arg = db.to_str().unwrap();
    let spec = quick_spec();
    let spec_arg = spec.to_str().unwrap();

    let out = lab(&["run", spec_arg, "--db", db_arg]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "lab run failed:\n{stdout}\n{stderr}");

    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM experiments WHERE name = 'quick'"
        ),
        1
    );
    // 2 cells x 2 seeds
    assert_eq!(count(&conn, "SELECT count(*) FROM trials"), 4);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM trials WHERE status = 'done'"),
        4
    );
    // quick.toml has no early stopping: every trial runs all 4 epochs
    assert_eq!(count(&conn, "SELECT count(*) FROM epochs"), 16);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM epochs WHERE train_loss > 0 AND valid_loss > 0 AND seconds > 0"
        ),
        16
    );
    for name in [
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "macro_precision",
        "macro_recall",
        "roc_auc",
        "average_precision",
        "f1.fresh",
        "f1.rotten",
    ] {
        let n = count(
            &conn,
            &format!("SELECT count(*) FROM metrics WHERE split = 'test' AND name = '{name}'"),
        );
        assert_eq!(n, 4, "test metric {name}");
    }
    assert_eq!(count(&conn, "SELECT count(*) FROM confusion"), 8);
    assert_eq!(count(&conn, "SELECT count(*) FROM artifacts"), 12);

    // Every artifact exists and has the recorded hash.
    let mut stmt = conn.prepare("SELECT path, sha256 FROM artifacts").unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (path, sha) in rows {
        let full = dir.path().join(&path);
        let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha, "{path}");
    }

    // Beats the majority class: the test confusion matrix gives the class counts.
    let (matrix, accuracy): (String, f64) = conn
        .query_row(
            "SELECT c.matrix_json, (SELECT avg(value) FROM metrics WHERE split='test' AND name='accuracy')
             FROM confusion c WHERE c.split = 'test' LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let matrix: Vec<Vec<u64>> = serde_json::from_str(&matrix).unwrap();
    let totals: Vec<u64> = matrix.iter().map(|row| row.iter().sum()).collect();
    let majority = *totals.iter().max().unwrap() as f64 / totals.iter().sum::<u64>() as f64;
    assert!(
        accuracy > majority,
        "mean test accuracy {accuracy} <= majority share {majority}"
    );

    // A second run finds every trial done and trains nothing.
    let out = lab(&["run", spec_arg, "--db", db_arg]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("4 done before, 0 run now"), "{stderr}");
    assert_eq!(count(&conn, "SELECT count(*) FROM trials"), 4);
    assert_eq!(count(&conn, "SELECT count(*) FROM epochs"), 16);

    // The leaderboard has one row per cell with mean ± std over the 2 seeds.
    let out = lab(&["compare", "quick", "--db", db_arg, "--format", "csv"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.lines().any(|l| l.contains("lstm")), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("gru")), "{stdout}");

    // show and predict work from the recorded trial.
    let out = lab(&["show", "1", "--db", db_arg]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("fresh") && stdout.contains("rotten"),
        "{stdout}"
    );

    let out = lab(&[
        "predict",
        "--trial",
        "1",
        "--db",
        db_arg,
        "--format",
        "json",
        "a moving, beautiful film",
        "",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let preds: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(preds.as_array().unwrap().len(), 2);
    let p = &preds[0]["probabilities"];
    let sum = p["fresh"].as_f64().unwrap() + p["rotten"].as_f64().unwrap();
    assert!((sum - 1.0).abs() < 1e-4, "{stdout}");
}

#[test]
fn dry_run_lists_the_grid_and_trains_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = quick_spec();
    let out = lab(&[
        "run",
        spec.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--dry-run",
        "--set",
        "sweep.model.hidden=[16,32,64]",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("12 trials"), "{stdout}"); // 2 cells x 3 sizes x 2 seeds
    assert!(stdout.contains("model.hidden=64"), "{stdout}");
    assert!(!db.exists());
}

#[test]
fn a_typo_fails_before_training_with_line_key_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("typo.toml");
    let source = std::fs::read_to_string(quick_spec())
        .unwrap()
        .replace("hidden = 32", "hiden = 32")
        .replace("../data/", &format!("{}/data/", env!("CARGO_MANIFEST_DIR")));
    std::fs::write(&spec, &source).unwrap();
    let line = source.lines().position(|l| l.starts_with("hiden")).unwrap() + 1;
    let db = dir.path().join("lab.db");
    let out = lab(&["run", spec.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("typo.toml:{line}")), "{stderr}");
    assert!(stderr.contains("model.hiden"), "{stderr}");
    assert!(stderr.contains("model.hidden"), "{stderr}");
    assert!(!db.exists(), "nothing may be recorded for an invalid spec");
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = quick_spec();
    let out = lab(&[
        "run",
        spec.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--device",
        "cuda:0",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("without CUDA support"), "{stderr}");
}

#[test]
fn a_diverging_trial_is_recorded_as_failed_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = quick_spec();
    // lr 1e38 pushes weights past f32's range after one step: the loss turns NaN.
    let out = lab(&[
        "run",
        spec.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--set",
        "experiment.seeds=[1]",
        "--set",
        "sweep.model.cell=[gru]",
        "--set",
        "sweep.train.lr=[1e38, 0.005]",
        "--set",
        "train.optimizer=sgd",
    ]);
    let (_, stderr) = text(&out);
    // 3: a trial failed (2 is clap's usage error).
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let conn = Connection::open(&db).unwrap();
    let (status, error): (String, String) = conn
        .query_row(
            "SELECT status, error FROM trials WHERE config_json LIKE '%\"lr\":1e+38%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "failed");
    assert!(error.contains("loss became"), "{error}");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM trials WHERE status = 'done'"),
        1
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM metrics m JOIN trials t ON t.id = m.trial_id WHERE t.status = 'failed'"), 0);
}
