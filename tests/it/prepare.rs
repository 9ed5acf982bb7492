//! `lab prepare`: the real binary warms the dataset cache of a spec's grid, reports
//! what it did as JSON, and `lab run` then finds every dataset already there.

use crate::common::ok;
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

fn lab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .arg("--db")
        .arg(dir.join("lab.db"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("lab runs")
}

fn reports(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn cache_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// 300 short reviews in two classes, and a spec sweeping stemming (two datasets) and
/// the hidden size (same datasets).
fn setup() -> TempDir {
    let dir = TempDir::new().unwrap();
    let mut csv = String::from("text,label\n");
    for i in 0..300 {
        let (words, label) = if i % 3 == 0 {
            ("the movie was dull and boring", "neg")
        } else {
            ("the children loved these movies", "pos")
        };
        csv.push_str(&format!("{words} number{},{label}\n", i % 11));
    }
    std::fs::write(dir.path().join("reviews.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("spec.toml"),
        r#"
[experiment]
name = "prep"
seeds = [1]

[data]
path = "reviews.csv"

[preprocess]
min_freq = 1
max_len = 8

[model]
embedding_dim = 8

[train]
epochs = 1
batch_size = 32

[sweep]
"preprocess.stem" = ["none", "lemma"]
"model.hidden" = [4, 8]
"#,
    )
    .unwrap();
    dir
}

#[test]
fn prepare_warms_the_cache_that_run_then_uses() {
    let dir = setup();
    let first = reports(&ok(&lab(dir.path(), &["prepare", "spec.toml", "--json"])));
    assert_eq!(first.len(), 2, "two distinct datasets: {first:?}");
    for r in &first {
        assert_eq!(r["cached"], false);
        assert_eq!(r["rows"], 300);
        let split: Vec<u64> = serde_json::from_value(r["split_rows"].clone()).unwrap();
        assert_eq!(split, [240, 30, 30]);
        assert_eq!(r["id_width"], 2);
        assert!(r["rows_per_second"].as_f64().unwrap() > 0.0);
        assert!(Path::new(r["file"].as_str().unwrap()).exists());
    }
    // Lemmas merge "movies" into "movie": the two vocabularies differ.
    assert_ne!(first[0]["vocab"], first[1]["vocab"]);
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");

    let again = reports(&ok(&lab(dir.path(), &["prepare", "spec.toml", "--json"])));
    assert!(again.iter().all(|r| r["cached"] == true), "{again:?}");
    let rebuilt = reports(&ok(&lab(
        dir.path(),
        &["prepare", "spec.toml", "--json", "--rebuild"],
    )));
    assert!(rebuilt.iter().all(|r| r["cached"] == false), "{rebuilt:?}");

    // Text output names the file and the rate.
    let text = ok(&lab(dir.path(), &["prepare", "spec.toml"]));
    assert!(text.contains("already cached"), "{text}");

    // Training finds both datasets in the cache: no new entry appears.
    ok(&lab(dir.path(), &["run", "spec.toml"]));
    assert_eq!(cache_files(dir.path()), files);
}

#[test]
fn prepare_names_a_missing_data_file() {
    let dir = setup();
    let out = lab(
        dir.path(),
        &["prepare", "spec.toml", "--set", "data.path=nope.csv"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.csv"), "{err}");
}
