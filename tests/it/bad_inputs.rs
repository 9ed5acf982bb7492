//! The catalogue of bad inputs, each run through the real `lab` binary: the exit
//! code, a message naming the offending place, and no half-written record.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db(&self) -> PathBuf {
        self.path("runs/lab.db")
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A spec training a tiny model in a blink on `data`, plus `extra` TOML lines.
    fn spec(&self, data: &str, extra: &str) -> PathBuf {
        self.write(
            "spec.toml",
            format!(
                "[experiment]\nname = \"bad\"\nseeds = [1]\n\n[data]\npath = \"{data}\"\n{extra}\n\n\
                 [model]\nembedding_dim = 8\nhidden = 8\n\n[train]\nepochs = 1\nbatch_size = 16\n"
            ),
        )
    }

    fn lab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(self.dir.path())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .output()
            .unwrap()
    }

    fn run(&self, spec: &Path, more: &[&str]) -> Output {
        let mut args = vec!["run", spec.to_str().unwrap()];
        args.extend(more);
        self.lab(&args)
    }
}

/// A clean two-class CSV of `n` rows.
fn good_csv(n: usize) -> String {
    let mut csv = String::from("text,label\n");
    for i in 0..n {
        if i % 2 == 0 {
            csv += &format!("a fine good film number {i},pos\n");
        } else {
            csv += &format!("a dull bad film number {i},neg\n");
        }
    }
    csv
}

/// Assert a failure with `code` whose stderr contains every one of `parts`.
fn fails(out: &Output, code: i32, parts: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    for part in parts {
        assert!(stderr.contains(part), "expected {part:?} in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn succeeds(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "stderr: {stderr}");
    stderr
}

/// Bad input stops before anything is recorded.
fn nothing_recorded(case: &Case) {
    if !case.db().exists() {
        return;
    }
    let store = lab::store::Store::open(&case.db()).unwrap();
    assert!(
        store.experiments().unwrap().is_empty(),
        "half-written record"
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "text = \"text\n");
    fails(&case.run(&spec, &[]), 1, &["spec.toml:7", "invalid TOML"]);
    nothing_recorded(&case);
}

#[test]
fn unknown_key_names_the_key_and_suggests() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "lable = \"label\"");
    fails(
        &case.run(&spec, &[]),
        1,
        &["spec.toml:7", "data.lable", "label"],
    );
    nothing_recorded(&case);
}

#[test]
fn wrong_type_names_the_key() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "limit = \"many\"");
    fails(
        &case.run(&spec, &[]),
        1,
        &["spec.toml:7", "data.limit", "whole number"],
    );
}

#[test]
fn out_of_range_value_names_the_key() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "");
    let out = case.run(&spec, &["--set", "train.lr=-1"]);
    fails(&out, 1, &["train.lr"]);
    nothing_recorded(&case);
}

#[test]
fn unknown_device_or_monitor_names_the_key_and_suggests() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    // The spec's train table is last: its keys go after the template's.
    let spec = case.spec("d.csv", "");
    let text = std::fs::read_to_string(&spec).unwrap();
    case.write("spec.toml", format!("{text}device = \"gpu\"\n"));
    fails(
        &case.run(&spec, &[]),
        1,
        &[
            "spec.toml:16",
            "train.device",
            "unknown device `gpu`",
            "did you mean `cpu`",
        ],
    );
    case.write(
        "spec.toml",
        format!(
            "{text}early_stopping = {{ monitor = \"valid.acc\", mode = \"max\", patience = 1 }}\n"
        ),
    );
    fails(
        &case.run(&spec, &[]),
        1,
        &[
            "spec.toml:16",
            "train.early_stopping.monitor",
            "unknown metric",
            "valid.accuracy",
        ],
    );
    // The flag is parsed by the same rule.
    case.write("spec.toml", &text);
    fails(
        &case.run(&spec, &["--device", "cuda:x"]),
        1,
        &["unknown device `cuda:x`", "cpu, auto, cuda or cuda:N"],
    );
    nothing_recorded(&case);
}

#[test]
fn empty_grid_axis_is_refused() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "[sweep]\n\"model.hidden\" = []");
    fails(
        &case.run(&spec, &[]),
        1,
        &["spec.toml:8", "sweep.model.hidden", "at least one value"],
    );
}

#[test]
fn huge_grid_asks_for_max_trials() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "[sweep]\n\"model.hidden\" = [4, 5, 6, 7]");
    fails(
        &case.run(&spec, &["--max-trials", "3"]),
        1,
        &["spec.toml", "4 trials", "--max-trials 3", "--max-trials 4"],
    );
    nothing_recorded(&case);
}

#[test]
fn missing_data_file_names_the_path() {
    let case = Case::new();
    let spec = case.spec("nowhere.csv", "");
    fails(&case.run(&spec, &[]), 1, &["spec.toml", "nowhere.csv"]);
    nothing_recorded(&case);
}

#[test]
fn missing_column_names_column_key_and_header() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "text = \"review\"");
    fails(
        &case.run(&spec, &[]),
        1,
        &["d.csv", "\"review\"", "data.text", "text, label"],
    );
    nothing_recorded(&case);
}

#[test]
fn empty_text_rows_are_skipped_and_counted_or_refused() {
    let case = Case::new();
    let mut csv = good_csv(40);
    csv += " ,pos\n,neg\n";
    case.write("d.csv", csv);
    let spec = case.spec("d.csv", "");
    let stderr = succeeds(&case.run(&spec, &[]));
    assert!(
        stderr.contains("skipped 2 row(s) with empty text"),
        "{stderr}"
    );

    let case = Case::new();
    case.write("d.csv", good_csv(40) + " ,pos\n");
    let spec = case.spec("d.csv", "on_bad_row = \"error\"");
    fails(
        &case.run(&spec, &[]),
        1,
        &["d.csv, line 42", "empty text", "data.on_bad_row"],
    );
    nothing_recorded(&case);
}

#[test]
fn ragged_row_names_its_line() {
    let case = Case::new();
    let mut csv = good_csv(10);
    csv += "one,two,three\n";
    csv += &good_csv(10)[11..];
    case.write("d.csv", csv);
    let spec = case.spec("d.csv", "");
    fails(
        &case.run(&spec, &[]),
        1,
        &["d.csv, line 12", "expected 2 fields", "found 3"],
    );
    nothing_recorded(&case);
}

#[test]
fn unterminated_quote_names_its_line() {
    let case = Case::new();
    let csv = good_csv(30) + "a film,\"pos\n";
    case.write("d.csv", csv);
    let spec = case.spec("d.csv", "");
    fails(
        &case.run(&spec, &[]),
        1,
        &["d.csv, line 32", "unterminated quoted field"],
    );
    nothing_recorded(&case);
}

#[test]
fn invalid_utf8_is_replaced_with_a_warning_or_refused() {
    let mut bytes = good_csv(40).into_bytes();
    bytes.extend_from_slice(b"caf\xe9 film,pos\n");
    let case = Case::new();
    case.write("d.csv", &bytes);
    let spec = case.spec("d.csv", "");
    let stderr = succeeds(&case.run(&spec, &[]));
    assert!(
        stderr.contains("warning:") && stderr.contains("invalid UTF-8 (first at line 42)"),
        "{stderr}"
    );

    let case = Case::new();
    case.write("d.csv", &bytes);
    let spec = case.spec("d.csv", "on_invalid_utf8 = \"error\"");
    fails(
        &case.run(&spec, &[]),
        1,
        &["d.csv, line 42", "invalid UTF-8", "\"text\""],
    );
    nothing_recorded(&case);
}

#[test]
fn a_single_class_is_refused() {
    let case = Case::new();
    case.write("d.csv", good_csv(40).replace(",neg", ",pos"));
    let spec = case.spec("d.csv", "");
    fails(
        &case.run(&spec, &[]),
        1,
        &["d.csv", "1 class(es) (pos)", "\"label\"", "at least 2"],
    );
    nothing_recorded(&case);
}

#[test]
fn a_class_missing_from_the_test_split_is_refused() {
    let case = Case::new();
    // One `rare` row cannot be in train and test at once.
    case.write("d.csv", good_csv(40) + "an odd film,rare\n");
    let spec = case.spec("d.csv", "");
    fails(
        &case.run(&spec, &[]),
        1,
        &["d.csv", "class \"rare\"", "no rows in the test split"],
    );
    nothing_recorded(&case);
}

#[test]
fn labels_unseen_at_training_are_refused_at_predict_time() {
    let case = Case::new();
    case.write("d.csv", good_csv(60));
    let spec = case.spec("d.csv", "");
    succeeds(&case.run(&spec, &[]));
    let input = case.write("new.csv", "text,label\ngood film,pos\nmeh film,meh\n");
    let out = case.lab(&[
        "predict",
        "--trial",
        "1",
        "--input",
        input.to_str().unwrap(),
        "--label-column",
        "label",
    ]);
    fails(
        &out,
        1,
        &[
            "new.csv, line 3",
            "\"meh\"",
            "not seen at training time",
            "neg, pos",
        ],
    );
    assert!(out.stdout.is_empty(), "no half-written predictions");
    // Known labels are scored.
    let input = case.write("ok.csv", "text,label\ngood film,pos\ndull film,neg\n");
    let out = case.lab(&[
        "predict",
        "--trial",
        "1",
        "--input",
        input.to_str().unwrap(),
        "--label-column",
        "label",
    ]);
    assert!(succeeds(&out).contains("accuracy"));
}

#[test]
fn a_database_from_a_newer_schema_is_refused() {
    let case = Case::new();
    std::fs::create_dir_all(case.db().parent().unwrap()).unwrap();
    drop(lab::store::Store::open(&case.db()).unwrap());
    let newer = lab::store::latest_version() + 1;
    rusqlite::Connection::open(case.db())
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let db = case.db();
    let out = case.lab(&["status"]);
    fails(
        &out,
        1,
        &[
            db.to_str().unwrap(),
            &format!("schema version {newer}"),
            "upgrade lab",
        ],
    );
}

#[test]
fn an_unwritable_runs_directory_is_reported() {
    let case = Case::new();
    case.write("d.csv", good_csv(40));
    let spec = case.spec("d.csv", "");
    // A file where the runs directory should be: no user, root included, can write there.
    case.write("runs", "not a directory");
    fails(
        &case.run(&spec, &[]),
        1,
        &["runs", "cannot create", "Not a directory"],
    );
}
