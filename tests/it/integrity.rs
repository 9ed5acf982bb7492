//! A trained model's files are checked before they are used (issue 14, faults 8
//! and 9): changed bytes in a trial's files are refused by `predict`, `serve` and
//! `export` against the sha256 the store recorded; an export carries a
//! `manifest.json` and a changed file in it is refused the same way; and a config
//! that does not fit its weights (`model.hidden = 1000000000`, `model.layers =
//! 10000000`) is refused naming the file, the key and the weights' shape, where it
//! used to abort the process on an allocation.

use crate::common::{lab, ok, trained};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A copy of the shared trained store (database and run files), to damage freely.
fn store_copy() -> (tempfile::TempDir, PathBuf) {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let src = t.db.parent().unwrap();
    // Other tests read the shared store meanwhile and their temporary files can
    // vanish mid-copy: a few tries.
    let copied = (0..5).any(|_| {
        std::process::Command::new("cp")
            .args(["-a", &format!("{}/.", src.display())])
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    });
    assert!(copied, "cannot copy {}", src.display());
    let db = dir.path().join(t.db.file_name().unwrap());
    (dir, db)
}

/// The path (from the store) of a trial's weights file.
fn weights_of(db: &Path, trial: i64) -> (PathBuf, String) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let (path, sha): (String, String) = conn
        .query_row(
            "SELECT path, sha256 FROM artifacts WHERE trial_id = ?1 AND kind = 'weights'",
            [trial],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (db.parent().unwrap().join(path), sha)
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Change the last byte of a file (a weights file's last float: still a valid file).
fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Refused with exit code 1 (not a signal), the message naming each of `needles`.
fn refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.signal(),
        None,
        "killed by a signal (an abort?):\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "expected a refusal:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    stderr
}

#[test]
fn changed_weights_are_refused_by_predict_serve_and_export() {
    let (dir, db) = store_copy();
    let trial = trained().trials[0];
    let (weights, recorded) = weights_of(&db, trial);
    flip_last_byte(&weights);
    let found = sha256(&weights);
    let db_arg = db.to_str().unwrap();
    let id = trial.to_string();
    let needles = [weights.to_str().unwrap(), recorded.as_str(), found.as_str()];
    refused(
        &lab(&["predict", "--db", db_arg, &id, "a fine film"]),
        &needles,
    );
    // `serve` refuses before it listens.
    refused(
        &lab(&["serve", "--db", db_arg, &id, "--addr", "127.0.0.1:0"]),
        &needles,
    );
    let out = dir.path().join("export");
    let args = ["export", "--db", db_arg, &id, "-o", out.to_str().unwrap()];
    refused(&lab(&args), &needles);
    assert!(
        !out.join("manifest.json").exists(),
        "a refused export must not vouch for its files"
    );
    // The other trials are untouched and still predict.
    let other = trained().trials[1].to_string();
    ok(&lab(&["predict", "--db", db_arg, &other, "a fine film"]));
}

/// Export trial 0 of the shared store into a fresh directory.
fn export() -> (tempfile::TempDir, PathBuf) {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    ok(&lab(&[
        "export",
        &t.trials[0].to_string(),
        "--db",
        t.db.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]));
    (dir, out)
}

fn predict_export(model: &Path) -> Output {
    lab(&["predict", "--model", model.to_str().unwrap(), "a fine film"])
}

#[test]
fn an_export_carries_a_manifest_and_a_changed_file_is_refused() {
    let (_dir, model) = export();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap())
            .unwrap();
    for file in [
        "model.safetensors",
        "vocab.json",
        "config.json",
        "model.json",
    ] {
        assert_eq!(
            manifest["sha256"][file].as_str(),
            Some(sha256(&model.join(file)).as_str()),
            "{file} in {manifest}"
        );
    }
    ok(&predict_export(&model));
    for file in ["model.safetensors", "vocab.json"] {
        let path = model.join(file);
        let before = std::fs::read(&path).unwrap();
        flip_last_byte(&path);
        let expected = manifest["sha256"][file].as_str().unwrap();
        let found = sha256(&path);
        let needles = [path.to_str().unwrap(), expected, found.as_str()];
        refused(&predict_export(&model), &needles);
        let serve = lab(&[
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ]);
        refused(&serve, &needles);
        std::fs::write(&path, before).unwrap();
    }
    ok(&predict_export(&model));
}

/// Set `key` (a path into config.json's `config`) to `value`; with `manifest`, the
/// manifest is updated too (a deliberate edit, not damage).
fn edit_config(model: &Path, section: &str, key: &str, value: Value, manifest: bool) {
    let path = model.join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["config"][section][key] = value;
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let manifest_path = model.join("manifest.json");
    if manifest {
        let mut m: Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
        m["sha256"]["config.json"] = sha256(&path).into();
        std::fs::write(&manifest_path, m.to_string()).unwrap();
    } else {
        let _ = std::fs::remove_file(&manifest_path);
    }
}

#[test]
fn a_config_that_does_not_fit_the_weights_is_refused_before_allocating() {
    let cases = [
        (
            "model",
            "hidden",
            Value::from(1_000_000_000u64),
            "model.hidden = 1000000000",
            "hidden 32",
        ),
        (
            "model",
            "layers",
            Value::from(10_000_000u64),
            "model.layers = 10000000",
            "1 layers",
        ),
        (
            "model",
            "embedding_dim",
            Value::from(1_000_000_000u64),
            "model.embedding_dim = 1000000000",
            "embedding_dim 32",
        ),
        (
            "model",
            "hidden",
            Value::from(64u64),
            "model.hidden = 64",
            "hidden 32",
        ),
        (
            "model",
            "bidirectional",
            Value::from(true),
            "model.bidirectional = true",
            "bidirectional = false",
        ),
    ];
    // Without a manifest first: on main 610b7c3 this is the abort.
    for manifest in [false, true] {
        for (section, key, value, said, shape) in &cases {
            let (_dir, model) = export();
            edit_config(&model, section, key, value.clone(), manifest);
            let config = model.join("config.json");
            let stderr = refused(
                &predict_export(&model),
                &[config.to_str().unwrap(), *said, *shape, "model.safetensors"],
            );
            assert!(stderr.contains("shape"), "{stderr}");
        }
    }
    // A vocabulary with more tokens than the embedding has rows.
    let (_dir, model) = export();
    let path = model.join("vocab.json");
    let mut vocab: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    vocab["itos"].as_array_mut().unwrap().push("extra".into());
    std::fs::write(&path, vocab.to_string()).unwrap();
    std::fs::remove_file(model.join("manifest.json")).unwrap();
    refused(
        &predict_export(&model),
        &[path.to_str().unwrap(), "embedding.weight", "tokens"],
    );
}

#[test]
fn an_export_reads_no_file_outside_itself() {
    // A config edited (and the manifest with it, or dropped) to name a word list
    // elsewhere: on main, predict read /etc/passwd as stopwords.
    for manifest in [true, false] {
        for list in ["/etc/passwd", "../../../../etc/passwd"] {
            let (_dir, model) = export();
            edit_config(&model, "preprocess", "stopwords", list.into(), manifest);
            refused(
                &predict_export(&model),
                &["preprocess.stopwords", list, "stopwords.txt"],
            );
        }
    }
}

#[test]
fn predict_never_removes_an_output_it_did_not_create() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    let predict = |output: &Path| {
        lab(&[
            "predict",
            "--db",
            t.db.to_str().unwrap(),
            &t.trials[0].to_string(),
            "--input",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ])
    };
    // A symlink to a device that refuses every write: on main the failed write
    // unlinked the path it was given (and `-o /dev/full` removed the device).
    let link = dir.path().join("full.csv");
    std::os::unix::fs::symlink("/dev/full", &link).unwrap();
    refused(&predict(&link), &["No space left on device"]);
    assert!(
        std::fs::symlink_metadata(&link).is_ok(),
        "the symlink was removed"
    );
    // A regular file is replaced only by a finished annotation.
    let kept = dir.path().join("kept.csv");
    std::fs::write(&kept, "old contents\n").unwrap();
    ok(&predict(&kept));
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(
        text.starts_with("text,label,predicted_label"),
        "{}",
        &text[..80.min(text.len())]
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
