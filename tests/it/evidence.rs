//! The leaderboard's evidence end to end: per-example predictions recorded by
//! real training and carried by `lab merge`; `lab compare` ranking each test
//! split on its own, never telling identical configurations apart and always
//! telling a clearly worse one apart.

use super::common::{ok, trained};
use lab::store::Store;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn lab_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("lab runs")
}

/// The data file's records (text, label), as the csv crate reads them.
fn records() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect()
}

#[test]
fn predictions_match_the_data_file_and_the_recorded_metrics_and_survive_merge() {
    let t = trained();
    let store = Store::open(&t.db).unwrap();
    let data = records();
    let mut splits = Vec::new();
    for &id in &t.trials {
        let confusion = store.confusion(id).unwrap();
        let test_confusion = confusion.iter().find(|c| c.split == "test").unwrap();
        for split in ["valid", "test"] {
            let p = store.predictions(id, split).unwrap().expect("predictions");
            assert_eq!(p.classes, test_confusion.labels.len());
            for i in 0..p.len() {
                let (text, label) = &data[p.rows[i] as usize];
                assert_eq!(p.hashes[i], lab::data::row_hash(text), "trial {id} row {i}");
                assert_eq!(&test_confusion.labels[p.truth[i] as usize], label);
                // The arg-max of the f32 probabilities; f16 storage may round a
                // near tie to a tie.
                let probs = p.probs_of(i);
                let top = probs[argmax(probs)];
                assert!(
                    probs[p.predicted[i] as usize] >= top - 1e-3,
                    "trial {id}: {probs:?}"
                );
                let sum: f32 = p.probs_of(i).iter().sum();
                assert!((sum - 1.0).abs() < 0.01, "{sum}");
            }
        }
        // The test predictions reproduce the recorded confusion matrix.
        let p = store.predictions(id, "test").unwrap().unwrap();
        let k = p.classes;
        let mut counts = vec![vec![0u64; k]; k];
        for (&y, &q) in p.truth.iter().zip(&p.predicted) {
            counts[y as usize][q as usize] += 1;
        }
        assert_eq!(counts, test_confusion.matrix, "trial {id}");
        splits.push(store.test_split(id).unwrap().expect("fingerprint"));
    }
    // Every trial of an experiment is scored on the same test rows.
    assert!(splits.windows(2).all(|w| w[0] == w[1]), "{splits:?}");

    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged.db");
    let (from, into) = (t.db.to_str().unwrap(), merged.to_str().unwrap());
    ok(&lab_in(dir.path(), &["merge", from, "--into", into]));
    let copy = Store::open(&merged).unwrap();
    let id_of = |s: &Store, seed: u64, config: &str| -> i64 {
        let exp = s.require_experiment("quick").unwrap();
        s.trials(exp.id)
            .unwrap()
            .into_iter()
            .find(|r| r.seed == seed && r.config_hash == config)
            .unwrap()
            .id
    };
    for &id in &t.trials {
        let row = store.trial(id).unwrap().unwrap();
        let other = id_of(&copy, row.seed, &row.config_hash);
        for split in ["valid", "test"] {
            assert_eq!(
                store.predictions(id, split).unwrap(),
                copy.predictions(other, split).unwrap()
            );
        }
        assert_eq!(
            store.test_split(id).unwrap(),
            copy.test_split(other).unwrap()
        );
    }
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// 20 test splits (`data.split.seed`), each with two identical configurations
/// under different names (the same data in two files) and their untrainable
/// twins (lr 1e-5).
const TWINS: &str = r#"
[experiment]
name = "twins"
seeds = [1]

[data]
path = "a.csv"
limit = 3000

[preprocess]
min_freq = 2
max_len = 32

[model]
embedding_dim = 32
hidden = 32
pooling = "mean"

[train]
epochs = 4
batch_size = 32
lr = 5e-3

[sweep]
"data.path" = ["a.csv", "b.csv"]
"train.lr" = [5e-3, 1e-5]
"data.split.seed" = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
"#;

#[test]
fn twins_are_never_told_apart_a_clearly_worse_config_always_is_and_splits_rank_apart() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    std::fs::copy(&data, dir.path().join("a.csv")).unwrap();
    std::fs::copy(&data, dir.path().join("b.csv")).unwrap();
    std::fs::write(dir.path().join("twins.toml"), TWINS).unwrap();
    ok(&lab_in(
        dir.path(),
        &["run", "twins.toml", "--db", "lab.db", "-q"],
    ));

    let out = ok(&lab_in(
        dir.path(),
        &["compare", "twins", "--db", "lab.db", "--format", "json"],
    ));
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 80);
    let mut by_split: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in &rows {
        by_split
            .entry(r["test_split"].as_str().expect("a fingerprint").to_string())
            .or_default()
            .push(r);
    }
    assert_eq!(by_split.len(), 20, "one board per data.split.seed");
    for board in by_split.values() {
        let seeds: Vec<&str> = board
            .iter()
            .map(|r| r["data.split.seed"].as_str().unwrap())
            .collect();
        assert!(seeds.iter().all(|s| *s == seeds[0]), "{seeds:?}");
        let lr = |r: &Value| r["train.lr"].as_str().unwrap().to_string();
        let mark = |r: &Value| r["vs_best"].as_str().unwrap().to_string();
        assert_eq!(mark(board[0]), "best");
        assert_eq!(lr(board[0]), "0.005", "{board:?}");
        for r in &board[1..] {
            if lr(r) == "0.005" {
                assert_eq!(mark(r), "indistinguishable", "{r}");
                assert_eq!(r["p_value"].as_f64(), Some(1.0), "{r}");
            } else {
                assert_eq!(mark(r), "different", "{r}");
                assert!(r["p_adjusted"].as_f64().unwrap() < 0.05, "{r}");
            }
            let (lo, hi) = (
                r["ci_low"].as_f64().unwrap(),
                r["ci_high"].as_f64().unwrap(),
            );
            let mean = r["macro_f1_mean"].as_f64().unwrap();
            assert!(lo <= mean && mean <= hi, "{r}");
            assert_eq!(
                r["ci_method"], "bootstrap",
                "one seed: a bootstrap interval"
            );
        }
    }

    // The table says why the boards are apart, and states its methods.
    let table = ok(&lab_in(dir.path(), &["compare", "twins", "--db", "lab.db"]));
    assert_eq!(table.matches("test split ").count(), 20, "{table}");
    assert!(table.contains("data.split.seed = 7"), "{table}");
    assert!(
        table.contains("paired bootstrap of the difference over 300 test rows"),
        "{table}"
    );
    assert!(table.contains("≈ best (p=1.000)"), "{table}");

    // A grouping that leaves the split seed out still never pools two splits
    // in one row: the twins (same rows) pool, the splits stay apart.
    let pooled = ok(&lab_in(
        dir.path(),
        &[
            "compare",
            "twins",
            "--db",
            "lab.db",
            "--group-by",
            "train.lr",
            "--format",
            "json",
        ],
    ));
    let pooled: Vec<Value> = serde_json::from_str(&pooled).unwrap();
    assert_eq!(pooled.len(), 40, "one row per lr per split");
    assert!(pooled
        .iter()
        .all(|r| r["n"] == 2 && r["test_split"].is_string()));

    // Forced together: one board, a warning, no paired test across splits.
    let mixed = ok(&lab_in(
        dir.path(),
        &[
            "compare",
            "twins",
            "--db",
            "lab.db",
            "--allow-mixed-splits",
            "--format",
            "json",
        ],
    ));
    let rows: Vec<Value> = serde_json::from_str(&mixed).unwrap();
    let best_split = rows[0]["test_split"].clone();
    assert!(best_split.is_string(), "each row names its own split");
    for r in &rows[1..] {
        if r["test_split"] == best_split {
            assert!(r["p_value"].is_number(), "{r}");
        } else {
            assert_eq!(r["vs_best"], "not_tested", "{r}");
            assert_eq!(
                r["vs_best_reason"],
                "scored on other test rows than the best"
            );
        }
    }
    let tested = rows.iter().filter(|r| r["p_value"].is_number()).count();
    assert_eq!(
        tested, 3,
        "only the rows on the best row's split are paired"
    );
    let warned = lab_in(
        dir.path(),
        &["compare", "twins", "--db", "lab.db", "--allow-mixed-splits"],
    );
    let warned = String::from_utf8_lossy(&warned.stdout);
    assert!(warned.contains("warning: ranked together"), "{warned}");
    assert!(
        warned.contains("test split"),
        "a column names each row's split: {warned}"
    );
}

#[test]
fn a_damaged_predictions_blob_costs_its_row_the_test_not_the_leaderboard() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let conn = rusqlite::Connection::open(&t.db).unwrap();
    conn.execute("VACUUM INTO ?1", [db.to_str().unwrap()])
        .unwrap();
    let json = |out: &Output| -> Vec<Value> { serde_json::from_str(&ok(out)).unwrap() };
    let args = ["compare", "quick", "--db", "lab.db", "--format", "json"];
    let before = json(&lab_in(dir.path(), &args));
    let worst = before.last().unwrap()["best_trial"].as_i64().unwrap();
    let copy = rusqlite::Connection::open(&db).unwrap();
    copy.execute(
        "UPDATE predictions SET blob = x'4c414250' WHERE trial_id = ?1 AND split = 'test'",
        [worst],
    )
    .unwrap();
    drop(copy);
    let out = lab_in(dir.path(), &args);
    let after = json(&out);
    assert_eq!(after.len(), before.len());
    assert_eq!(after[0]["vs_best"], "best");
    assert_eq!(after.last().unwrap()["vs_best"], "not_tested");
    assert!(after.last().unwrap()["p_value"].is_null());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("trial {worst}: test predictions left out")),
        "{stderr}"
    );
}

/// quick.toml's LSTM on a copy of the data, 2 epochs.
const DRIFT: &str = r#"
[experiment]
name = "drift"
seeds = [1]

[data]
path = "d.csv"
limit = 1000

[preprocess]
min_freq = 2
max_len = 32

[model]
cell = "lstm"
embedding_dim = 16
hidden = 16

[train]
epochs = 2
"#;

#[test]
fn a_data_file_changed_between_seeds_splits_the_row_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    let text = std::fs::read_to_string(data).unwrap();
    std::fs::write(dir.path().join("d.csv"), &text).unwrap();
    std::fs::write(dir.path().join("drift.toml"), DRIFT).unwrap();
    ok(&lab_in(
        dir.path(),
        &["run", "drift.toml", "--db", "lab.db", "-q"],
    ));
    // Every text edited: the same rows, other contents.
    let edited: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l}\n")
            } else {
                format!("\"{}\",{}\n", "x", l.rsplit(',').next().unwrap())
            }
        })
        .collect();
    std::fs::write(dir.path().join("d.csv"), edited).unwrap();
    let seeds = "experiment.seeds=[1, 2]";
    ok(&lab_in(
        dir.path(),
        &["run", "drift.toml", "--db", "lab.db", "-q", "--set", seeds],
    ));

    let json = ok(&lab_in(
        dir.path(),
        &["compare", "drift", "--db", "lab.db", "--format", "json"],
    ));
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rows.len(),
        2,
        "one row per test split, never one row of n=2: {rows:?}"
    );
    assert!(rows.iter().all(|r| r["n"] == 1));
    assert_ne!(rows[0]["test_split"], rows[1]["test_split"]);
    let table = ok(&lab_in(dir.path(), &["compare", "drift", "--db", "lab.db"]));
    assert!(
        table.contains("the data file's contents changed between runs"),
        "{table}"
    );
    assert_eq!(table.matches("test split ").count(), 2, "{table}");
}

#[test]
fn an_export_carries_the_predictions_byte_for_byte() {
    let t = trained();
    let store = Store::open(&t.db).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let id = t.trials[0].to_string();
    let db = t.db.to_str().unwrap();
    ok(&lab_in(
        dir.path(),
        &["export", &id, "-o", out.to_str().unwrap(), "--db", db],
    ));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    for split in ["valid", "test"] {
        let name = lab::inference::export::predictions_file(split);
        assert!(manifest["sha256"][&name].is_string(), "{manifest}");
        let exported = lab::inference::export::exported_predictions(&out, split).unwrap();
        assert_eq!(exported, store.predictions(t.trials[0], split).unwrap());
        assert!(exported.is_some());
    }
    // The export still loads (its manifest vouches for the new files).
    ok(&lab_in(
        dir.path(),
        &["predict", "--model", out.to_str().unwrap(), "a fine film"],
    ));
}
