//! What a trial states about itself: where and how it ran (`lab show`'s
//! provenance, copied by `lab export`) and the test texts it got most
//! confidently wrong (`lab show --errors`), checked against the data file read
//! here independently with the csv crate, on the store trained by `common`.

use super::common::{lab, ok, trained};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const DATA: &str = "data/rotten_tomatoes.csv";

fn data_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA)
}

fn show_json(db: &Path, args: &[&str]) -> Value {
    let mut all = vec!["show", "--db", db.to_str().unwrap(), "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&lab(&all))).unwrap()
}

/// The data file's records (text, label), in file order, header skipped.
fn records() -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(data_file()).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn a_trial_states_where_and_how_it_ran() {
    let t = trained();
    let id = t.trials[0].to_string();
    let view = show_json(&t.db, &[&id]);
    let p = &view["provenance"];
    assert_eq!(p["lab_version"], env!("CARGO_PKG_VERSION"), "{p}");
    let sha = hex::encode(Sha256::digest(std::fs::read(data_file()).unwrap()));
    assert_eq!(p["data_sha256"], sha.as_str(), "{p}");
    assert!(p["data_file"].as_str().unwrap().ends_with(DATA), "{p}");
    match &p["git_commit"] {
        Value::Null => assert!(p["git_dirty"].is_null(), "{p}"),
        Value::String(c) => {
            assert!(is_hex(c, 40), "{p}");
            assert!(p["git_dirty"].is_boolean(), "{p}");
        }
        other => panic!("git_commit {other}"),
    }
    // Its wall time holds its training time, which the metrics record.
    let train_seconds = view["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["split"] == "train" && m["name"] == "seconds")
        .and_then(|m| m["value"].as_f64())
        .unwrap();
    let wall = p["wall_seconds"].as_f64().unwrap();
    assert!(
        wall > 0.0 && wall >= train_seconds,
        "{p}: trained {train_seconds}s"
    );
    assert!(p["cpu_seconds"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["threads"].as_u64().unwrap() >= 1, "{p}");
    assert_eq!(p["device"], "cpu");
    assert_eq!(p["os"], std::env::consts::OS);
    assert_eq!(p["arch"], std::env::consts::ARCH);
    assert!(!p["host"].as_str().unwrap().is_empty(), "{p}");
    assert_eq!(p["cuda"], cfg!(feature = "cuda"));
    assert!(p["cpu_features"].is_array() && p["build_features"].is_array());
    assert!(p["cpu_model"].is_string() || p["cpu_model"].is_null());
    assert!(is_hex(view["test_split"].as_str().unwrap(), 64), "{view}");
    // The same in the table view's provenance block.
    let text = ok(&lab(&["show", "--db", t.db.to_str().unwrap(), &id]));
    let block = text
        .split("\nprovenance\n")
        .nth(1)
        .expect("a provenance block");
    assert!(block.contains(&format!("data_sha256    {sha}")), "{block}");
    let csv = ok(&lab(&[
        "show",
        "--db",
        t.db.to_str().unwrap(),
        &id,
        "--format",
        "csv",
    ]));
    assert!(csv.contains("# provenance\nkey,value\n"), "{csv}");
}

#[test]
fn errors_are_the_most_confidently_wrong_test_texts_of_the_data_file() {
    let t = trained();
    let id = t.trials[0].to_string();
    let errors = show_json(&t.db, &[&id, "--errors", "5"]);
    let rows = errors["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{errors}");
    let file = records();
    let mut last = f64::INFINITY;
    for row in rows {
        let (text, label) = &file[row["data_row"].as_u64().unwrap() as usize];
        assert_eq!(row["text"], text.as_str(), "{row}");
        assert_eq!(row["label"], label.as_str(), "{row}");
        assert_ne!(row["predicted"], label.as_str(), "not wrong: {row}");
        let p = row["probability"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&p) && p <= last, "{errors}");
        last = p;
    }
    // No wrong row left out is more confident than the last one listed.
    let store = ::lab::store::Store::open(&t.db).unwrap();
    let test = store.predictions(t.trials[0], "test").unwrap().unwrap();
    let wrong: Vec<usize> = (0..test.len())
        .filter(|&i| test.truth[i] != test.predicted[i])
        .collect();
    assert_eq!(errors["wrong"], wrong.len());
    assert_eq!(errors["test_rows"], test.len());
    let more_confident = wrong
        .iter()
        // In f32, as stored and printed (shortest form, which reads back exactly).
        .filter(|&&i| test.probs_of(i)[test.predicted[i] as usize] > last as f32)
        .count();
    assert!(
        more_confident < 5,
        "{more_confident} wrong rows above {last}"
    );
    // CSV carries the full texts; the table cuts them to one line.
    let db = t.db.to_str().unwrap();
    let csv = ok(&lab(&[
        "show", "--db", db, &id, "--errors", "5", "--format", "csv",
    ]));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let texts: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[4].to_string())
        .collect();
    let json_texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts, json_texts);
    let table = ok(&lab(&["show", "--db", db, &id, "--errors", "5"]));
    assert!(
        table.contains("test rows wrong; the 5 most confident"),
        "{table}"
    );
}

/// A copy of the trained store, to change without disturbing other tests.
fn copy_of_store(dir: &Path) -> PathBuf {
    let copy = dir.join("lab.db");
    let conn = rusqlite::Connection::open(&trained().db).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    copy
}

#[test]
fn a_trial_without_predictions_or_provenance_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = copy_of_store(dir.path());
    let (first, second) = (trained().trials[0], trained().trials[1]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("DELETE FROM predictions WHERE trial_id = ?1", [first])
        .unwrap();
    conn.execute("UPDATE trials SET provenance = NULL WHERE id = ?1", [first])
        .unwrap();
    conn.execute(
        "UPDATE trials SET status = 'pending' WHERE id = ?1",
        [second],
    )
    .unwrap();
    drop(conn);
    let db = db.to_str().unwrap();
    for (id, says) in [
        (first, "has no recorded test predictions"),
        (second, "is pending, not done"),
    ] {
        let out = lab(&["show", "--db", db, &id.to_string(), "--errors", "3"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("trial {id} {says}")), "{stderr}");
    }
    let text = ok(&lab(&["show", "--db", db, &first.to_string()]));
    assert!(text.contains("\nprovenance\n  not recorded"), "{text}");
    let view = show_json(Path::new(db), &[&first.to_string()]);
    assert!(view["provenance"].is_null(), "{view}");
}

#[test]
fn an_export_carries_the_provenance_and_the_test_split() {
    let t = trained();
    let id = t.trials[1].to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let db = t.db.to_str().unwrap();
    ok(&lab(&[
        "export",
        "--db",
        db,
        &id,
        "-o",
        out.to_str().unwrap(),
    ]));
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap()
    };
    let exported = read("provenance.json");
    let view = show_json(&t.db, &[&id]);
    assert_eq!(exported["trial"], t.trials[1]);
    assert_eq!(exported["provenance"], view["provenance"]);
    assert_eq!(exported["test_split"], view["test_split"]);
    assert!(
        exported["provenance"]["data_sha256"].is_string(),
        "{exported}"
    );
    let bytes = std::fs::read(out.join("provenance.json")).unwrap();
    assert_eq!(
        read("manifest.json")["sha256"]["provenance.json"],
        hex::encode(Sha256::digest(bytes))
    );
    ok(&lab(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        "a fine film",
    ]));
}
