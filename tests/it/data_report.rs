//! `lab data` and the data report recorded with each trial: the real binary on
//! tests/fixtures/data_report (30 reviews of 1..30 tokens after stop words, row k
//! being "the good" or "the bad" k times, and two rows with empty text on physical
//! lines 5 and 13), in LF and CRLF.

use crate::common::ok;
use lab::store::Store;
use rusqlite::Connection;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data_report")
}

/// A scratch directory holding the fixture's spec and data files.
fn setup() -> TempDir {
    let dir = TempDir::new().unwrap();
    for f in ["spec.toml", "reviews.csv", "reviews_crlf.csv"] {
        std::fs::copy(fixtures().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn lab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .arg("--db")
        .arg(dir.join("lab.db"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("lab runs")
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `lab data --format json` (plus `extra` arguments): one object per dataset.
fn data_json(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["data", "spec.toml", "--format", "json"];
    args.extend_from_slice(extra);
    json_lines(&ok(&lab(dir, &args)))
}

#[test]
fn data_counts_skipped_rows_with_their_lines_in_lf_and_crlf_files() {
    let dir = setup();
    for file in ["reviews.csv", "reviews_crlf.csv"] {
        let path = format!("data.path={file}");
        let text = ok(&lab(dir.path(), &["data", "spec.toml", "--set", &path]));
        assert!(text.contains(file), "{text}");
        assert!(
            text.contains("32 read, 30 kept, 2 skipped"),
            "{file}: {text}"
        );
        assert!(
            text.contains("2 (lines 5, 13): empty text"),
            "{file}: {text}"
        );
        assert!(text.contains("csv, UTF-8"), "{file}: {text}");
        // Classes per split, and the first kept rows beside their tokens.
        assert!(
            text.contains("│ neg   │ 11    │ 2     │ 2    │ 15  │"),
            "{text}"
        );
        assert!(text.contains("│ the bad the bad "), "{text}");
        assert!(text.contains("│ bad bad (2) "), "{text}");

        let reports = data_json(dir.path(), &["--set", &path]);
        assert_eq!(reports.len(), 1);
        let r = &reports[0]["report"];
        assert_eq!(r["rows"]["read"], 32);
        assert_eq!(r["rows"]["kept"], 30);
        assert_eq!(r["rows"]["skipped"], 2);
        let empty = &r["notes"]["skipped"]["empty text"];
        assert_eq!(empty["count"], 2, "{r}");
        assert_eq!(empty["first_lines"], serde_json::json!([5, 13]), "{r}");
        assert_eq!(r["notes"]["detected"]["format"], "csv");
        assert_eq!(r["notes"]["detected"]["delimiter"], ",");
        assert_eq!(r["notes"]["lossy"]["count"], 0);
    }
}

#[test]
fn json_counts_equal_what_prepare_says() {
    let dir = setup();
    let prepared = json_lines(&ok(&lab(dir.path(), &["prepare", "spec.toml", "--json"])));
    assert_eq!(prepared.len(), 1);
    let p = &prepared[0];
    assert_eq!(p["cached"], false);
    let r = data_json(dir.path(), &[])[0]["report"].clone();
    assert_eq!(r["rows"]["kept"], p["rows"]);
    assert_eq!(r["rows"]["read"], p["rows_read"]);
    assert_eq!(r["vocab"]["size"], p["vocab"]);
    let per_split: Vec<u64> = ["train", "valid", "test"]
        .iter()
        .map(|s| {
            r["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["rows"][s].as_u64().unwrap())
                .sum()
        })
        .collect();
    assert_eq!(serde_json::json!(per_split), p["split_rows"]);
    // `lab prepare --show N` carries the same report (from the cache now).
    let shown = json_lines(&ok(&lab(
        dir.path(),
        &["prepare", "spec.toml", "--json", "--show", "2"],
    )));
    assert_eq!(shown[0]["cached"], true);
    assert_eq!(shown[0]["data_report"], r);
    assert_eq!(shown[0]["examples"].as_array().unwrap().len(), 2);
    let text = ok(&lab(dir.path(), &["prepare", "spec.toml", "--show", "1"]));
    assert!(text.contains("already cached"), "{text}");
    assert!(text.contains("32 read, 30 kept, 2 skipped"), "{text}");
}

#[test]
fn token_length_percentiles_match_a_hand_count() {
    let dir = setup();
    // Lengths 1..=30 after stop words ("the" dropped); nearest rank over 30 rows:
    // p50 = 15th, p90 = 27th, p95 = 29th (ceil 28.5), p99 = 30th; max_len 20 cuts
    // the ten rows of 21..=30 tokens.
    let r = data_json(dir.path(), &["--show", "0"])[0]["report"].clone();
    let l = &r["lengths"];
    assert_eq!(l["rows"], 30);
    let got: Vec<u64> = ["p50", "p90", "p95", "p99", "max"]
        .iter()
        .map(|k| l[k].as_u64().unwrap())
        .collect();
    assert_eq!(got, [15, 27, 29, 30, 30], "{l}");
    assert_eq!(l["mean"], 15.5);
    assert_eq!(l["max_len"], 20);
    let cut = &l["truncated"];
    let total: u64 = ["train", "valid", "test"]
        .iter()
        .map(|s| cut[s].as_u64().unwrap())
        .sum();
    assert_eq!(total, 10, "{cut}");
    // Coverage: every valid/test word ("good", "bad") is in the vocabulary.
    assert_eq!(r["vocab"]["coverage"]["test"], 1.0);
    assert_eq!(r["vocab"]["unknown"]["train"], 0);

    // Without stop words, "the" counts: 2k tokens.
    let r = data_json(
        dir.path(),
        &["--show", "0", "--set", "preprocess.stopwords=none"],
    )[0]["report"]
        .clone();
    let l = &r["lengths"];
    assert_eq!((l["p50"].as_u64(), l["max"].as_u64()), (Some(30), Some(60)));
    assert_eq!(l["mean"], 31.0);
}

#[test]
fn examples_are_the_first_kept_rows_as_read_and_as_cleaned() {
    let dir = setup();
    let out = data_json(dir.path(), &["--show", "4"]);
    let ex = out[0]["examples"].as_array().unwrap().clone();
    let lines: Vec<u64> = ex.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    // Line 5 (empty text) is skipped.
    assert_eq!(lines, [2, 3, 4, 6]);
    assert_eq!(ex[1]["text"], "the bad the bad");
    assert_eq!(ex[1]["tokens"], serde_json::json!(["bad", "bad"]));
    assert_eq!(ex[1]["class"], "neg");
    assert_eq!(ex[3]["tokens"].as_array().unwrap().len(), 4);
    assert!(out[0]["examples"][0]["split"].is_string());
    assert!(data_json(dir.path(), &["--show", "0"])[0]["examples"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_sweep_over_data_settings_gives_one_report_per_dataset() {
    let dir = setup();
    let out = data_json(
        dir.path(),
        &[
            "--show",
            "0",
            "--set",
            "sweep.preprocess.max_len=[10, 25]",
            "--set",
            "sweep.model.hidden=[4, 8]",
        ],
    );
    assert_eq!(
        out.len(),
        2,
        "model.hidden does not change the data: {out:?}"
    );
    let mut seen: Vec<(String, u64)> = out
        .iter()
        .map(|o| {
            (
                o["sweep"]["preprocess.max_len"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                ["train", "valid", "test"]
                    .iter()
                    .map(|s| o["report"]["lengths"]["truncated"][s].as_u64().unwrap())
                    .sum(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [("10".into(), 20), ("25".into(), 5)]);
    let text = ok(&lab(
        dir.path(),
        &[
            "data",
            "spec.toml",
            "--set",
            "sweep.preprocess.max_len=[10, 25]",
        ],
    ));
    assert!(text.contains("(preprocess.max_len=10)"), "{text}");
    assert!(text.contains("(preprocess.max_len=25)"), "{text}");
}

fn stored_report(db: &Path, trial: i64) -> Option<Value> {
    let conn = Connection::open(db).unwrap();
    let text: Option<String> = conn
        .query_row(
            "SELECT data_report FROM trials WHERE id = ?1",
            [trial],
            |r| r.get(0),
        )
        .unwrap();
    text.map(|t| serde_json::from_str(&t).unwrap())
}

#[test]
fn a_trial_records_its_data_report_show_prints_it_and_merge_carries_it() {
    let dir = setup();
    let shard = TempDir::new().unwrap();
    std::fs::copy(dir.path().join("spec.toml"), shard.path().join("spec.toml")).unwrap();
    std::fs::copy(
        dir.path().join("reviews.csv"),
        shard.path().join("reviews.csv"),
    )
    .unwrap();
    ok(&lab(shard.path(), &["run", "spec.toml"]));
    let want = data_json(shard.path(), &["--show", "0"])[0]["report"].clone();
    let db = shard.path().join("lab.db");
    assert_eq!(stored_report(&db, 1), Some(want.clone()));

    let text = ok(&lab(shard.path(), &["show", "1"]));
    let data = text
        .split("\ndata\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(data.contains("reviews.csv"), "{data}");
    assert!(data.contains("32 read, 30 kept, 2 skipped"), "{data}");
    assert!(data.contains("2 (lines 5, 13): empty text"), "{data}");
    assert!(data.contains("neg 11/2/2, pos 11/2/2"), "{data}");
    let json: Value =
        serde_json::from_str(&ok(&lab(shard.path(), &["show", "1", "--format", "json"]))).unwrap();
    assert_eq!(json["data_report"], want);

    // Merged into another store, the trial keeps its report.
    let target = dir.path().join("merged.db");
    ok(&lab(
        dir.path(),
        &[
            "merge",
            db.to_str().unwrap(),
            "--into",
            target.to_str().unwrap(),
        ],
    ));
    assert_eq!(stored_report(&target, 1), Some(want));
}

#[test]
fn migration_4_adds_the_column_and_older_trials_say_not_recorded() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("lab.db");
    {
        // A database as lab with schema version 3 left it, with a finished trial.
        let conn = Connection::open(&path).unwrap();
        for step in &lab::store::MIGRATIONS[..3] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO experiments VALUES (1, 'old', 'spec', 'hash', 'then');
             INSERT INTO trials (experiment_id, config_json, config_hash, seed, status)
             VALUES (1, '{}', 'abc', 7, 'done');",
        )
        .unwrap();
    }
    // Merged as a shard (read-only, not migrated), it gives a trial without a report.
    let merged = dir.path().join("merged.db");
    ok(&lab(
        dir.path(),
        &[
            "merge",
            path.to_str().unwrap(),
            "--into",
            merged.to_str().unwrap(),
        ],
    ));
    assert_eq!(stored_report(&merged, 1), None);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.trials(1).unwrap().len(), 1);
    assert_eq!(store.data_report(1).unwrap(), None);
    store.record_data_report(1, r#"{"file":"x.csv"}"#).unwrap();
    assert_eq!(
        store.data_report(1).unwrap().as_deref(),
        Some(r#"{"file":"x.csv"}"#)
    );
    assert!(store.record_data_report(99, "{}").is_err());
    drop(store);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    // Migrated to the latest version, 4 (the report column) and later.
    assert_eq!(version, lab::store::latest_version());
    assert!(version >= 4);

    // An upgraded trial without a report: `lab show` says so.
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE trials SET data_report = NULL", [])
        .unwrap();
    let text = ok(&lab(dir.path(), &["show", "1"]));
    assert!(text.contains("data\n  not recorded"), "{text}");
    let json: Value =
        serde_json::from_str(&ok(&lab(dir.path(), &["show", "1", "--format", "json"]))).unwrap();
    assert!(json["data_report"].is_null(), "{json}");
}

#[test]
fn a_run_on_a_cached_dataset_still_says_what_reading_skipped() {
    let dir = setup();
    // `lab data` reads the file and fills the cache; the run then reads the cache only.
    let first = lab(dir.path(), &["data", "spec.toml"]);
    assert!(first.status.success());
    let said = "skipped 2 row(s) with empty text (lines 5, 13";
    assert!(String::from_utf8_lossy(&first.stderr).contains(said));
    let run = lab(dir.path(), &["prepare", "spec.toml", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&run.stdout).contains("\"cached\":true"));
    let run = lab(
        dir.path(),
        &[
            "run",
            "spec.toml",
            "--set",
            "train.epochs=1",
            "--set",
            "experiment.seeds=[1]",
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(stderr.matches(said).count(), 1, "{stderr}");
}
