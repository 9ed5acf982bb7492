//! The command line as a user meets it, through the real binary: exit codes, a
//! closed stdout, `--format json`, the flag vocabulary (aliases, `LAB_DB`),
//! completions and the man page, and where diagnostics go.

use crate::common::{ok, trained};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn lab_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LAB_DB")
        .env_remove("RUST_LOG");
    cmd
}

fn lab(args: &[&str]) -> Output {
    lab_cmd(args).output().expect("lab runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn quick_spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn a_closed_stdout_ends_lab_quietly() {
    let db = trained().db.to_str().unwrap();
    for args in [
        vec!["compare", "--db", db],
        vec!["status", "--db", db],
        vec!["completions", "bash"],
        vec!["man"],
    ] {
        let mut child = lab_cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // As `lab compare | head -1` after head has gone: the reader is closed
        // before lab writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn status_prints_json() {
    let t = trained();
    let db = t.db.to_str().unwrap();
    let out = lab(&["status", "--db", db, "--format", "json"]);
    let rows = json(&ok(&out));
    let quick = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["experiment"] == "quick")
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(quick["done"], t.trials.len());
    assert_eq!(quick["failed"], 0);
    assert_eq!(quick["pruned"], 0);
    assert_eq!(quick["stale"], 0);
    // The experiment positionally or with -e; the other formats are grids.
    let by_flag = json(&ok(&lab(&[
        "status", "-e", "quick", "--db", db, "--format", "json",
    ])));
    assert_eq!(by_flag.as_array().unwrap().len(), 1);
    assert_eq!(by_flag[0], *quick);
    let csv = ok(&lab(&["status", "quick", "--db", db, "--format", "csv"]));
    assert_eq!(
        csv.lines().next(),
        Some("experiment,pending,running,done,failed,pruned,stale")
    );
}

#[test]
fn status_of_shards_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    // Tasks 0 and 2 have their trial queued; task 1's shard was never created.
    for task in [0, 2] {
        let shard = dir.path().join(format!("shard-{task}/lab.db"));
        ok(&lab(&[
            "queue",
            "add",
            quick_spec().to_str().unwrap(),
            "--db",
            shard.to_str().unwrap(),
            "--set",
            "experiment.seeds=[1]",
            "--set",
            "sweep.model.cell=[gru]",
        ]));
    }
    let out = lab(&[
        "status",
        "--shards",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let rows = json(&ok(&out));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[0]["task"], "0");
    assert_eq!(rows[0]["status"], "pending");
    assert_eq!(rows[1]["task"], "1");
    assert_eq!(rows[1]["status"], "not started");
    assert_eq!(rows[2]["status"], "pending");
    assert_eq!(rows.len(), 3);
    assert!(stderr(&out).contains("not started"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2_and_bad_input_1() {
    for args in [
        vec!["compare", "--no-such-flag"],
        vec!["status", "--format", "yaml"],
        vec!["nonsense"],
        // Only the position says this is the trial: a usage error too.
        vec!["predict", "not-a-number", "a fine film"],
        // A trial but nothing to classify; N = 0 best rows.
        vec!["predict", "1"],
        vec!["serve"],
        vec!["compare", "--top", "0"],
    ] {
        let out = lab(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = lab(&["status", "--format", "yaml"]);
    assert!(stderr(&out).contains("table, markdown, csv, json"));
    let out = lab(&["compare", "--db", "/nonexistent/lab.db"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/lab.db"));
}

#[test]
fn help_lists_exit_codes_environment_and_values() {
    let help = ok(&lab(&["--help"]));
    for part in [
        "Exit codes:",
        "3    a trial failed",
        "130  interrupted",
        "LAB_DB",
        "LAB_KERNEL",
        "LAB_SQLITE_JOURNAL",
        "RAYON_NUM_THREADS",
        "RUST_LOG",
        "LAB_<SECTION>__<KEY>",
        "--quiet",
        "--verbose",
    ] {
        assert!(help.contains(part), "{part} missing:\n{help}");
    }
    let run = ok(&lab(&["run", "--help"]));
    assert!(run.contains("Examples:"), "{run}");
    assert!(run.contains("-j, --jobs"), "{run}");
    assert!(
        run.contains("[possible values: table, markdown, csv, json]") || run.contains("- json")
    );
    assert!(run.contains("cpu") && run.contains("auto"), "{run}");
}

#[test]
fn completions_and_man_page() {
    let bash = ok(&lab(&["completions", "bash"]));
    assert!(bash.contains("_lab()"), "{bash}");
    // The closed sets are completed: formats and charts.
    assert!(bash.contains("markdown") && bash.contains("confusion"));
    let zsh = ok(&lab(&["completions", "zsh"]));
    assert!(zsh.contains("#compdef lab"), "{zsh}");
    let man = ok(&lab(&["man"]));
    assert!(man.starts_with(".ie") || man.contains(".TH lab"), "{man}");
    assert!(man.contains("LAB_DB"), "the man page has the environment");
    let out = lab(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn lab_db_names_the_store_and_the_flag_wins() {
    let t = trained();
    let out = lab_cmd(&["status", "--format", "json"])
        .env("LAB_DB", &t.db)
        .output()
        .unwrap();
    assert!(json(&ok(&out)).to_string().contains("\"quick\""));
    let out = lab_cmd(&["status"])
        .env("LAB_DB", "/nonexistent/from-env.db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/from-env.db"));
    let out = lab_cmd(&["status", "--db", t.db.to_str().unwrap()])
        .env("LAB_DB", "/nonexistent/from-env.db")
        .output()
        .unwrap();
    ok(&out);
}

#[test]
fn output_paths_take_out_output_and_o() {
    let t = trained();
    let db = t.db.to_str().unwrap();
    let trial = t.trials[0].to_string();
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--out", "--output", "-o"] {
        let file = dir.path().join(format!("chart{flag}.svg"));
        let out = lab(&["plot", &trial, "--db", db, flag, file.to_str().unwrap()]);
        // "wrote …" is news, not a result: stderr; stdout stays empty.
        assert!(ok(&out).is_empty());
        assert!(stderr(&out).contains("wrote"), "{}", stderr(&out));
        assert!(std::fs::read_to_string(&file).unwrap().starts_with("<svg"));
    }
}

#[test]
fn a_trial_is_positional_or_given_with_trial() {
    let t = trained();
    let db = t.db.to_str().unwrap();
    let trial = t.trials[0].to_string();
    let texts = ["a wonderful film", "dull and long"];
    let positional = ok(&lab(&[
        "predict", &trial, texts[0], texts[1], "--db", db, "--format", "json",
    ]));
    let flag = ok(&lab(&[
        "predict", "--trial", &trial, texts[0], texts[1], "--db", db, "--format", "json",
    ]));
    assert_eq!(json(&positional), json(&flag));
    assert_eq!(json(&positional).as_array().unwrap().len(), 2);
}

#[test]
fn quiet_keeps_stderr_to_warnings_and_rust_log_wins() {
    let t = trained();
    let db = t.db.to_str().unwrap();
    let trial = t.trials[0].to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.svg");
    let file = file.to_str().unwrap();
    let plot = |extra: &[&str], rust_log: Option<&str>| {
        let mut args = vec!["plot", &trial, "--db", db, "-o", file];
        args.extend(extra);
        let mut cmd = lab_cmd(&args);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd.output().unwrap();
        ok(&out);
        stderr(&out)
    };
    let normal = plot(&[], None);
    // Not a terminal: each line starts with a UTC timestamp.
    let line = normal.lines().find(|l| l.contains("wrote")).unwrap();
    let (time, message) = line.split_once(' ').unwrap();
    assert!(time.ends_with('Z') && time.contains('T'), "{line}");
    assert!(message.starts_with("wrote "), "{line}");
    assert!(!plot(&["-q"], None).contains("wrote"));
    assert!(plot(&["-q"], Some("lab=info")).contains("wrote"));
    assert!(!plot(&[], Some("off")).contains("wrote"));
}

/// `lab run … 2>&1 | head -1`: the reader is gone before the leaderboard is
/// printed, and a trial failed; the closed pipe must not turn 3 into 0.
#[test]
fn a_closed_stdout_does_not_hide_a_failed_trial() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = quick_spec();
    let mut child = lab_cmd(&[
        "run",
        spec.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--set",
        "experiment.seeds=[1]",
        "--set",
        "sweep.model.cell=[gru]",
        "--set",
        "sweep.train.lr=[1e38]",
        "--set",
        "train.optimizer=sgd",
        "--set",
        "train.epochs=1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
}

#[test]
fn a_failed_trial_exits_3_also_with_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    // lr 1e38 turns the loss NaN in the first epoch: that trial fails; the other runs.
    let out = lab(&[
        "run",
        quick_spec().to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "-j",
        "2",
        "--set",
        "experiment.seeds=[1]",
        "--set",
        "sweep.model.cell=[gru]",
        "--set",
        "sweep.train.lr=[1e38, 0.005]",
        "--set",
        "train.optimizer=sgd",
        "--set",
        "train.epochs=1",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("1 failed (2 jobs)"), "{err}");
    // The leaderboard (the result) is on stdout, with the trial that trained.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("│ 0.005"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
