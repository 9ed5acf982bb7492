//! Bounds checked before the work (issue 14, fault 5 and parts of 10): a grid is
//! counted from its axes' lengths and refused past `--max-trials` before it is
//! expanded; duplicates are found in linear time; `LAB_` variables and
//! experiment names are refused as the spec's typos are; a spec path that is
//! not a regular file is refused instead of read forever. The real binary, with
//! a deadline: on main these commands ran for minutes or aborted on allocation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv")
}

/// A small spec of experiments/quick.toml's shape: `experiment` is the body of
/// `[experiment]`, `extra` follows the fixed sections (e.g. a `[sweep]`).
fn spec(dir: &Path, file: &str, experiment: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[experiment]\n{experiment}\n\n[data]\npath = {:?}\nlimit = 1000\n\n\
         [model]\nembedding_dim = 8\nhidden = 8\n\n[train]\nepochs = 1\n\n{extra}",
        data().display()
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// `lab ARGS` with `env`, killed at `limit`: (output, seconds it ran). A command
/// still running at the limit is a failure of the bound this file tests.
fn lab_within(args: &[&str], env: &[(&str, &str)], limit: Duration) -> (Output, f64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.args(args)
        .envs(env.iter().copied())
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("lab starts");
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "lab {args:?} still running after {limit:?} (killed):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out, start.elapsed().as_secs_f64())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn refused(out: &Output, wants: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in wants {
        assert!(err.contains(w), "missing {w:?} in:\n{err}");
    }
}

fn values(n: usize, f: impl Fn(usize) -> String) -> String {
    (0..n).map(f).collect::<Vec<_>>().join(", ")
}

#[test]
fn a_huge_grid_is_refused_from_its_axes_lengths_before_it_is_expanded() {
    let dir = tempfile::tempdir().unwrap();
    // 3 axes x 300 values: 27 million trials from a 4.6 KB spec.
    let sweep = format!(
        "[sweep]\n\"model.hidden\" = [{}]\n\"model.embedding_dim\" = [{}]\n\"train.batch_size\" = [{}]\n",
        values(300, |i| (i + 1).to_string()),
        values(300, |i| (i + 1).to_string()),
        values(300, |i| (i + 1).to_string()),
    );
    let path = spec(dir.path(), "huge.toml", "name = \"huge\"", &sweep);
    let p = path.to_str().unwrap();
    let db = dir.path().join("lab.db");
    let db = db.to_str().unwrap();
    let wants = [
        "huge.toml",
        "model.hidden: 300 values",
        "model.embedding_dim: 300 values",
        "train.batch_size: 300 values",
        "1 seed",
        "27000000 trials",
        "--max-trials 1000",
    ];
    let limit = Duration::from_secs(20);
    for args in [
        vec!["--db", db, "run", p, "--dry-run"],
        vec!["--db", db, "run", p],
        vec!["--db", db, "run", p, "--trial-index", "3"],
        vec!["--db", db, "queue", "add", p],
        vec!["--db", db, "submit", p, "--slurm", "--dry-run"],
        vec!["--db", db, "prepare", p],
        vec!["--db", db, "data", p],
    ] {
        let (out, _) = lab_within(&args, &[], limit);
        refused(&out, &wants);
    }
    assert!(!Path::new(db).exists(), "nothing recorded");

    // A product past the integers is "too large", not a wrap-around.
    let axes: String = ["model.hidden", "model.embedding_dim", "train.batch_size"]
        .iter()
        .chain(&["train.epochs", "preprocess.max_len", "preprocess.min_freq"])
        .chain(&["train.lr", "model.dropout"])
        .map(|k| {
            let v = match *k {
                "train.lr" => values(300, |i| format!("{}e-5", i + 1)),
                "model.dropout" => values(300, |i| format!("{}e-4", i)),
                _ => values(300, |i| (i + 1).to_string()),
            };
            format!("\"{k}\" = [{v}]\n")
        })
        .collect();
    let path = spec(
        dir.path(),
        "wide.toml",
        "name = \"wide\"",
        &format!("[sweep]\n{axes}"),
    );
    let (out, _) = lab_within(&["run", path.to_str().unwrap(), "--dry-run"], &[], limit);
    refused(
        &out,
        &["wide.toml", "more than 18446744073709551615 trials"],
    );

    // Under a raised limit, the same count passes to expansion: 2 x 3 trials.
    let small = "[sweep]\n\"model.hidden\" = [4, 8]\n\"train.lr\" = [0.1, 0.01, 0.001]\n";
    let path = spec(dir.path(), "small.toml", "name = \"small\"", small);
    let (out, _) = lab_within(
        &[
            "run",
            path.to_str().unwrap(),
            "--dry-run",
            "--max-trials",
            "5",
        ],
        &[],
        limit,
    );
    refused(&out, &["6 trials", "--max-trials 5", "pass --max-trials 6"]);
    let (out, _) = lab_within(
        &[
            "run",
            path.to_str().unwrap(),
            "--dry-run",
            "--max-trials",
            "6",
        ],
        &[],
        limit,
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn duplicates_in_a_long_axis_or_seed_list_are_found_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40_000;
    // Distinct values, then the first one again: reported at the last element.
    let axis = format!("{}, 0.5", values(n, |i| format!("0.{:06}", i + 100_000)));
    let path = spec(
        dir.path(),
        "long.toml",
        "name = \"long\"",
        &format!("[sweep]\n\"model.dropout\" = [{axis}, 0.1]\n"),
    );
    let limit = Duration::from_secs(60);
    let max = (n + 10).to_string();
    let (out, secs) = lab_within(
        &[
            "run",
            path.to_str().unwrap(),
            "--dry-run",
            "--max-trials",
            &max,
        ],
        &[],
        limit,
    );
    refused(&out, &["long.toml", "sweep.model.dropout", "listed twice"]);
    eprintln!("axis of {n} values checked in {secs:.1} s");

    let seeds = format!(
        "name = \"seeds\"\nseeds = [{}, 7]",
        values(n, |i| i.to_string())
    );
    let path = spec(dir.path(), "seeds.toml", &seeds, "");
    let (out, _) = lab_within(
        &[
            "run",
            path.to_str().unwrap(),
            "--dry-run",
            "--max-trials",
            &max,
        ],
        &[],
        limit,
    );
    refused(
        &out,
        &["seeds.toml", "experiment.seeds", "seed 7 is listed twice"],
    );
}

#[test]
fn env_typos_are_refused_as_the_same_typo_in_the_spec_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec(dir.path(), "s.toml", "name = \"envs\"", "");
    let p = path.to_str().unwrap();
    let limit = Duration::from_secs(20);
    let (out, _) = lab_within(
        &["run", p, "--dry-run"],
        &[("LAB_MODLE__HIDDEN", "64")],
        limit,
    );
    refused(
        &out,
        &[
            "s.toml",
            "LAB_MODLE__HIDDEN",
            "unknown section `modle`",
            "did you mean `LAB_MODEL__HIDDEN`",
        ],
    );
    // A known section with a misspelt key was already refused; still is.
    let (out, _) = lab_within(
        &["run", p, "--dry-run"],
        &[("LAB_MODEL__HIDEN", "64")],
        limit,
    );
    refused(&out, &["LAB_MODEL__HIDEN", "did you mean `model.hidden`"]);
    // lab's own variables are not spec sections.
    let (out, _) = lab_within(
        &["run", p, "--dry-run"],
        &[("LAB_SQLITE_JOURNAL", "wal")],
        limit,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    for cmd in [vec!["run", p, "--dry-run"], vec!["status"]] {
        let (out, _) = lab_within(&cmd, &[("LAB_KERNEL", "refrence")], limit);
        refused(
            &out,
            &["LAB_KERNEL", "refrence", "did you mean `reference`"],
        );
    }
    for ok in ["reference", "fused", ""] {
        let (out, _) = lab_within(&["run", p, "--dry-run"], &[("LAB_KERNEL", ok)], limit);
        assert!(out.status.success(), "LAB_KERNEL={ok}: {}", stderr(&out));
    }
}

#[test]
fn experiment_names_that_cannot_be_directories_are_refused_at_validation() {
    let dir = tempfile::tempdir().unwrap();
    let limit = Duration::from_secs(20);
    let long = "a".repeat(300);
    for (name, why) in [
        ("lab.db", "beside the experiments"),
        ("runs.db-wal", "beside the experiments"),
        ("cache", "beside the experiments"),
        (
            long.as_str(),
            "300 characters long, more than the 100 allowed",
        ),
        (".hidden", "must not start with `.`"),
        ("../escaped", "only letters, digits"),
    ] {
        let path = spec(dir.path(), "n.toml", &format!("name = {name:?}"), "");
        let db = dir.path().join("lab.db");
        let (out, _) = lab_within(
            &["--db", db.to_str().unwrap(), "run", path.to_str().unwrap()],
            &[],
            limit,
        );
        refused(&out, &["n.toml:2", "key `experiment.name`", why]);
        assert!(!db.exists(), "{name}: nothing recorded");
    }
}

#[test]
fn spec_paths_that_are_not_regular_files_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let limit = Duration::from_secs(30);
    let db = dir.path().join("lab.db");
    let db = db.to_str().unwrap();
    for (source, kind) in [
        ("/dev/zero", "a device"),
        (fifo.to_str().unwrap(), "a FIFO"),
        (dir.path().to_str().unwrap(), "a directory"),
    ] {
        let text = std::fs::read_to_string(spec(dir.path(), "d.toml", "name = \"d\"", ""))
            .unwrap()
            .replace(&format!("{:?}", data().display()), &format!("{source:?}"));
        std::fs::write(dir.path().join("d.toml"), text).unwrap();
        let p = dir.path().join("d.toml");
        let (out, _) = lab_within(&["--db", db, "run", p.to_str().unwrap()], &[], limit);
        refused(
            &out,
            &[
                "d.toml",
                "key `data.path`",
                source,
                kind,
                "not a regular file",
            ],
        );
        let stop = format!("[preprocess]\nstopwords = {source:?}\n");
        let p = spec(dir.path(), "w.toml", "name = \"w\"", &stop);
        let (out, _) = lab_within(&["--db", db, "run", p.to_str().unwrap()], &[], limit);
        refused(&out, &["w.toml", "key `preprocess.stopwords`", kind]);
    }
    assert!(!Path::new(db).exists(), "nothing recorded");

    // predict --input reads a user path too.
    let trained = crate::common::trained();
    let id = trained.trials[0].to_string();
    let (out, _) = lab_within(
        &[
            "--db",
            trained.db.to_str().unwrap(),
            "predict",
            "--trial",
            &id,
            "--input",
            fifo.to_str().unwrap(),
        ],
        &[],
        limit,
    );
    refused(&out, &["pipe.csv", "a FIFO", "not a regular file"]);
}

#[test]
fn model_sizes_past_their_sanity_bounds_are_refused_not_allocated() {
    // On main these ran out of memory (layers) or past a minute (hidden, embedding_dim).
    let dir = tempfile::tempdir().unwrap();
    let path = spec(dir.path(), "m.toml", "name = \"m\"", "");
    let db = dir.path().join("lab.db");
    for (set, key, bound) in [
        ("model.layers=100000000", "model.layers", "at most 32"),
        ("model.hidden=1000000000", "model.hidden", "at most 8192"),
        (
            "model.embedding_dim=2000000000",
            "model.embedding_dim",
            "at most 8192",
        ),
    ] {
        let args = [
            "--db",
            db.to_str().unwrap(),
            "run",
            path.to_str().unwrap(),
            "--set",
            set,
        ];
        let (out, _) = lab_within(&args, &[], Duration::from_secs(20));
        refused(&out, &[&format!("key `{key}`"), bound]);
        assert!(!db.exists(), "{set}: nothing recorded");
    }
}
