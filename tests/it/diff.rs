//! `lab diff A B` (issue 15): two trials or configurations on the same test
//! rows, checked against counts made here from the predictions the store holds
//! and against the data file itself; and every refusal names what is wrong.

use crate::common::{lab, ok, trained};
use lab::report::flatten_config;
use lab::stats::mcnemar_exact;
use lab::store::{Predictions, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn db() -> &'static str {
    trained().db.to_str().unwrap()
}

/// `lab diff ARGS --db DB --format json --show 100000` parsed.
fn diff_json(db: &str, args: &[&str]) -> Value {
    let mut all = vec!["diff", "--db", db, "--format", "json", "--show", "100000"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&lab(&all))).expect("lab diff --format json prints JSON")
}

fn predictions(trial: i64) -> Predictions {
    let store = Store::open_read_only(&trained().db).unwrap();
    store
        .predictions(trial, "test")
        .unwrap()
        .expect("test predictions")
}

/// The recorded test metric of a trial, as training computed it.
fn recorded(trial: i64, name: &str) -> f64 {
    let store = Store::open_read_only(&trained().db).unwrap();
    let m = store.metrics(trial).unwrap();
    m.iter()
        .find(|m| m.split == "test" && m.name == name)
        .unwrap_or_else(|| panic!("trial {trial} recorded no test {name}"))
        .value
}

/// Texts of the shipped data file by record index (0 = first data record).
fn data_texts() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "text")
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap()[column].to_string())
        .collect()
}

fn cell(v: &Value, key: &str) -> u64 {
    v["contingency"][key].as_u64().unwrap()
}

#[test]
fn two_trials_are_counted_as_the_predictions_say() {
    let t = &trained().trials;
    let (a, b) = (t[0], t[t.len() - 1]);
    let (pa, pb) = (predictions(a), predictions(b));
    let v = diff_json(db(), &[&a.to_string(), &b.to_string()]);
    let n = pa.len() as u64;
    assert_eq!(v["rows"].as_u64(), Some(n));
    let cells = ["both_right", "only_a", "only_b", "both_wrong"];
    assert_eq!(cells.iter().map(|c| cell(&v, c)).sum::<u64>(), n, "{v}");
    // The same table, counted here from the stored predictions.
    let mut want = [0u64; 4];
    for i in 0..pa.len() {
        let (ra, rb) = (
            pa.predicted[i] == pa.truth[i],
            pb.predicted[i] == pb.truth[i],
        );
        want[match (ra, rb) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        }] += 1;
    }
    for (c, w) in cells.iter().zip(want) {
        assert_eq!(cell(&v, c), w, "{c}");
    }
    let p = mcnemar_exact(want[1], want[2]);
    assert!((v["mcnemar_p"].as_f64().unwrap() - p).abs() < 1e-12);
    assert_eq!(v["pooled"], false);
    // The metrics are the ones training recorded; the difference is theirs.
    let (ma, mb) = (recorded(a, "macro_f1"), recorded(b, "macro_f1"));
    assert!(
        (v["a"]["metric"].as_f64().unwrap() - ma).abs() < 1e-9,
        "{v}"
    );
    assert!(
        (v["b"]["metric"].as_f64().unwrap() - mb).abs() < 1e-9,
        "{v}"
    );
    assert!((v["difference"].as_f64().unwrap() - (ma - mb)).abs() < 1e-9);
    let paired = &v["paired"];
    let (low, high) = (
        paired["interval"]["low"].as_f64().unwrap(),
        paired["interval"]["high"].as_f64().unwrap(),
    );
    assert!(low <= ma - mb && ma - mb <= high, "{paired}");
    let p = paired["p_value"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0);
    check_disagreements(&v, &pa, &pb);
}

/// Every listed disagreement is a row where the stored predictions differ,
/// in split order, with their labels, probabilities and the data file's text.
fn check_disagreements(v: &Value, pa: &Predictions, pb: &Predictions) {
    let classes: Vec<String> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(pa.classes, 2);
    let differ: Vec<usize> = (0..pa.len())
        .filter(|&i| pa.predicted[i] != pb.predicted[i])
        .collect();
    let listed = v["disagreements"].as_array().unwrap();
    assert_eq!(listed.len(), differ.len());
    assert_eq!(v["disagreeing"].as_u64(), Some(differ.len() as u64));
    // Two classes: a disagreement is exactly one side right.
    assert_eq!(
        differ.len() as u64,
        cell(v, "only_a") + cell(v, "only_b"),
        "{v}"
    );
    assert!(!differ.is_empty(), "two trials that agree everywhere");
    let texts = data_texts();
    for (d, &i) in listed.iter().zip(&differ) {
        let row = pa.rows[i];
        assert_eq!(d["row"].as_u64(), Some(row as u64));
        assert_eq!(d["truth"], classes[pa.truth[i] as usize].as_str());
        assert_eq!(d["a"], classes[pa.predicted[i] as usize].as_str());
        assert_eq!(d["b"], classes[pb.predicted[i] as usize].as_str());
        let pa_i = pa.probs_of(i)[pa.predicted[i] as usize] as f64;
        assert!((d["a_probability"].as_f64().unwrap() - pa_i).abs() < 1e-6);
        let pb_i = pb.probs_of(i)[pb.predicted[i] as usize] as f64;
        assert!((d["b_probability"].as_f64().unwrap() - pb_i).abs() < 1e-6);
        assert_eq!(d["text"], texts[row as usize].as_str(), "data row {row}");
    }
}

#[test]
fn the_table_cuts_texts_and_csv_keeps_them_whole() {
    let t = &trained().trials;
    let (a, b) = (t[0].to_string(), t[t.len() - 1].to_string());
    let v = diff_json(db(), &[&a, &b]);
    let first = &v["disagreements"][0];
    let text = first["text"].as_str().unwrap();
    let table = ok(&lab(&["diff", &a, &b, "--db", db(), "--show", "1"]));
    assert!(
        table.contains("B right") && table.contains("A wrong"),
        "{table}"
    );
    let cut: String = text.chars().take(99).collect();
    assert!(table.contains(&cut), "{table}");
    assert!(text.chars().count() <= 100 || !table.contains(text));
    let csv_out = ok(&lab(&[
        "diff",
        &a,
        &b,
        "--db",
        db(),
        "--format",
        "csv",
        "--show",
        "1",
    ]));
    let section = csv_out
        .split("# disagreements\n")
        .nth(1)
        .and_then(|s| s.split("\n# ").next())
        .expect("a # disagreements section");
    let mut reader = csv::Reader::from_reader(section.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{section}");
    assert_eq!(&rows[0][6], text);
    assert_eq!(rows[0][0].parse::<u64>().ok(), first["row"].as_u64());
}

#[test]
fn a_trial_against_itself_differs_nowhere() {
    let a = trained().trials[0].to_string();
    let v = diff_json(db(), &[&a, &a]);
    assert_eq!(v["difference"].as_f64(), Some(0.0));
    assert_eq!(v["paired"]["p_value"].as_f64(), Some(1.0));
    assert_eq!(v["mcnemar_p"].as_f64(), Some(1.0));
    assert_eq!(v["disagreeing"].as_u64(), Some(0));
    assert_eq!(v["disagreements"].as_array().map(Vec::len), Some(0));
    assert_eq!(cell(&v, "only_a") + cell(&v, "only_b"), 0);
    let table = ok(&lab(&["diff", &a, &a, "--db", db()]));
    assert!(table.contains("predict the same class on all"), "{table}");
}

/// The done trials of experiment quick with model.cell = `cell`.
fn trials_of(cell: &str) -> Vec<i64> {
    let store = Store::open_read_only(&trained().db).unwrap();
    let exp = store.require_experiment("quick").unwrap();
    store
        .trials(exp.id)
        .unwrap()
        .into_iter()
        .filter(|t| {
            let config = flatten_config(&serde_json::from_str(&t.config_json).unwrap());
            config.get("model.cell").map(String::as_str) == Some(cell)
        })
        .map(|t| t.id)
        .collect()
}

/// A configuration's prediction: the first argmax of its seeds' mean probabilities.
fn pooled(seeds: &[Predictions]) -> Vec<u16> {
    let k = seeds[0].classes;
    (0..seeds[0].len())
        .map(|i| {
            let mean: Vec<f32> = (0..k)
                .map(|c| seeds.iter().map(|s| s.probs_of(i)[c]).sum::<f32>() / seeds.len() as f32)
                .collect();
            (0..k).fold(0, |best, c| if mean[c] > mean[best] { c } else { best }) as u16
        })
        .collect()
}

#[test]
fn configurations_pool_their_seeds() {
    let (lstm, gru) = (trials_of("lstm"), trials_of("gru"));
    assert_eq!((lstm.len(), gru.len()), (2, 2));
    let v = diff_json(db(), &["-e", "quick", "model.cell=lstm", "model.cell=gru"]);
    let ids = |side: &str| -> Vec<i64> {
        v[side]["trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap())
            .collect()
    };
    assert_eq!((ids("a"), ids("b")), (lstm.clone(), gru.clone()));
    assert_eq!(v["pooled"], true);
    assert!(v["mcnemar_p"].is_null());
    let mean = |ts: &[i64]| ts.iter().map(|&t| recorded(t, "macro_f1")).sum::<f64>() / 2.0;
    assert!((v["a"]["metric"].as_f64().unwrap() - mean(&lstm)).abs() < 1e-9);
    assert!((v["b"]["metric"].as_f64().unwrap() - mean(&gru)).abs() < 1e-9);
    let notes = v["notes"].to_string();
    assert!(notes.contains("seed-averaged probabilities"), "{notes}");
    let pa = pooled(&lstm.iter().map(|&t| predictions(t)).collect::<Vec<_>>());
    let pb = pooled(&gru.iter().map(|&t| predictions(t)).collect::<Vec<_>>());
    let truth = predictions(lstm[0]).truth;
    let only_a = (0..truth.len())
        .filter(|&i| pa[i] == truth[i] && pb[i] != truth[i])
        .count() as u64;
    let both = (0..truth.len())
        .filter(|&i| pa[i] == truth[i] && pb[i] == truth[i])
        .count() as u64;
    assert_eq!((cell(&v, "only_a"), cell(&v, "both_right")), (only_a, both));
    let differ = (0..truth.len()).filter(|&i| pa[i] != pb[i]).count();
    assert_eq!(v["disagreements"].as_array().unwrap().len(), differ);
    let total: u64 = ["both_right", "only_a", "only_b", "both_wrong"]
        .iter()
        .map(|c| cell(&v, c))
        .sum();
    assert_eq!(total, truth.len() as u64);
}

/// A failure with `code` whose stderr names every one of `parts`.
fn refused(out: &Output, code: i32, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    for part in parts {
        assert!(stderr.contains(part), "`{part}` not in: {stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout when refused");
}

fn diff(db: &str, args: &[&str]) -> Output {
    let mut all = vec!["diff", "--db", db];
    all.extend_from_slice(args);
    lab(&all)
}

#[test]
fn bad_sides_and_metrics_are_refused_naming_what_is_wrong() {
    let a = trained().trials[0].to_string();
    refused(&diff(db(), &["999999", &a]), 1, &["no trial 999999"]);
    refused(
        &diff(db(), &[&a, "model.cell=gru"]),
        2,
        &["`model.cell=gru`", "-e NAME"],
    );
    refused(&diff(db(), &[&a, "gru"]), 2, &["`gru`", "KEY=VALUE"]);
    let e = ["-e", "quick"];
    let with_e = |more: &[&str]| diff(db(), &[&e[..], more].concat());
    refused(
        &with_e(&["model.cel=gru", &a]),
        1,
        &["unknown key `model.cel`", "did you mean `model.cell`"],
    );
    refused(
        &with_e(&["model.cell=rnn", &a]),
        1,
        &["model.cell=rnn", "its values: gru, lstm"],
    );
    refused(
        &with_e(&["model.cell=gru,model.hidden=64", &a]),
        1,
        &["model.hidden=64", "its values: 32"],
    );
    refused(
        &diff(db(), &["-e", "nope", &a, &a]),
        1,
        &["no experiment `nope`"],
    );
    refused(
        &diff(db(), &[&a, &a, "--metric", "loss"]),
        1,
        &["`loss`", "not a function of the confusion matrix"],
    );
    refused(
        &diff(db(), &[&a, &a, "--metric", "f1.neutral"]),
        1,
        &["no class `neutral`", "fresh, rotten"],
    );
    refused(
        &diff(db(), &[&a, &a, "--metric", "train.accuracy"]),
        1,
        &["valid and test splits only"],
    );
}

/// A copy of the trained store (its database only) in a new directory.
fn copy_of_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("lab.db");
    let conn = rusqlite::Connection::open(&trained().db).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    (dir, copy)
}

fn quick_spec() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments/quick.toml")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn unfinished_trials_and_trials_without_predictions_are_refused() {
    let (_dir, copy) = copy_of_store();
    let db = copy.to_str().unwrap();
    let spec = quick_spec();
    let set = ["--set", "train.lr=0.01"];
    ok(&lab(
        &[&["queue", "add", &spec, "--db", db][..], &set].concat()
    ));
    let store = Store::open_read_only(&copy).unwrap();
    let exp = store.require_experiment("quick").unwrap();
    let pending = store
        .trials(exp.id)
        .unwrap()
        .into_iter()
        .find(|t| t.status.to_string() == "pending")
        .expect("a queued trial")
        .id
        .to_string();
    let a = trained().trials[0].to_string();
    refused(
        &diff(db, &[&pending, &a]),
        1,
        &[&format!("trial {pending} is pending, not done")],
    );
    refused(
        &diff(db, &["-e", "quick", "train.lr=0.01", &a]),
        1,
        &["`train.lr=0.01` matches trials", "(pending)", "none done"],
    );
    // What an older lab left: no predictions, no test-split fingerprint.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute("DELETE FROM predictions WHERE trial_id = ?1", [&a])
        .unwrap();
    conn.execute("UPDATE trials SET test_split = NULL WHERE id = ?1", [&a])
        .unwrap();
    let b = trained().trials[1].to_string();
    refused(
        &diff(db, &[&b, &a]),
        1,
        &[&format!("trial {a} has no test predictions recorded")],
    );
}

#[test]
fn sides_on_different_test_splits_are_refused() {
    let (_dir, copy) = copy_of_store();
    let db = copy.to_str().unwrap();
    let spec = quick_spec();
    ok(&lab(&[
        "run",
        &spec,
        "--db",
        db,
        "-q",
        "--set",
        "data.limit=2000",
        "--set",
        "experiment.seeds=[1]",
    ]));
    let store = Store::open_read_only(&copy).unwrap();
    let exp = store.require_experiment("quick").unwrap();
    let newer = store
        .trials(exp.id)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .filter(|id| !trained().trials.contains(id))
        .max()
        .expect("a trial on 2,000 rows")
        .to_string();
    let a = trained().trials[0].to_string();
    refused(
        &diff(db, &[&a, &newer]),
        1,
        &["different test splits", "data.limit (3000 vs 2000)"],
    );
    refused(
        &diff(db, &["-e", "quick", "model.cell=lstm", "model.cell=gru"]),
        1,
        &[
            "the trials of `model.cell=lstm` were scored on different test splits",
            "narrow it, e.g. `model.cell=lstm,data.limit=3000`",
        ],
    );
    // Narrowed, the configurations compare.
    ok(&diff(
        db,
        &[
            "-e",
            "quick",
            "model.cell=lstm,data.limit=3000",
            "model.cell=gru,data.limit=3000",
        ],
    ));
}
