//! Searches (issue 16) through the real binary, real training and a real
//! store: the `[search]` checks, deterministic proposals, a TPE search with
//! ASHA end to end, two processes sharing one search, and kill -9 then resume.

use crate::labels::{refused, succeeds, Dir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tiny model on 1500 rows of Rotten Tomatoes, 3 epochs: about a second a
/// trial. `search` is the `[search]` section and what follows it.
fn spec(dir: &Dir, search: &str) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    dir.write(
        "spec.toml",
        format!(
            "[experiment]\nname = \"search\"\nseeds = [1]\n\n\
             [data]\npath = {data:?}\nlimit = 1500\n\n\
             [preprocess]\nmin_freq = 2\nmax_len = 24\n\n\
             [model]\nembedding_dim = 16\nhidden = 16\npooling = \"mean\"\n\n\
             [train]\nepochs = 3\nbatch_size = 32\nlr = 5e-3\n\n{search}"
        ),
    );
}

const TPE_ASHA: &str = "[search]\nstrategy = \"tpe\"\ntrials = 6\nstartup_trials = 3\nseed = 0\n\
    objective = { metric = \"valid.macro_f1\", mode = \"max\" }\n\n\
    [search.space]\n\"train.lr\" = { loguniform = [1e-4, 3e-2] }\n\
    \"model.cell\" = { choice = [\"lstm\", \"gru\"] }\n\
    \"model.dropout\" = { uniform = [0.0, 0.5] }\n\n\
    [search.pruner]\nkind = \"asha\"\nmin_epochs = 1\nreduction = 2\n";

/// Each trial: (search number, status, config hash, epochs recorded, test metrics).
fn recorded(dir: &Dir) -> Vec<(i64, String, String, i64, i64)> {
    let conn = rusqlite::Connection::open(dir.path().join("lab.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT search_number, status, config_hash,
                    (SELECT count(*) FROM epochs e WHERE e.trial_id = t.id),
                    (SELECT count(*) FROM metrics m WHERE m.trial_id = t.id AND m.split = 'test')
             FROM trials t ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every proposal number 0..n exactly once, no config twice, every trial
/// finished (done or pruned).
fn assert_complete(dir: &Dir, n: i64) {
    let trials = recorded(dir);
    let numbers: Vec<i64> = trials.iter().map(|t| t.0).collect();
    assert_eq!(
        numbers.iter().copied().collect::<BTreeSet<_>>(),
        (0..n).collect(),
        "{trials:?}"
    );
    assert_eq!(
        numbers.len() as i64,
        n,
        "one trial per proposal (one seed, no grid): {trials:?}"
    );
    let hashes: BTreeSet<&String> = trials.iter().map(|t| &t.2).collect();
    assert_eq!(hashes.len(), trials.len());
    for t in &trials {
        assert!(t.1 == "done" || t.1 == "pruned", "{t:?}");
    }
}

#[test]
fn bad_search_sections_are_refused_with_file_line_and_key() {
    let dir = Dir::new();
    // (the [search] section, text on the line the error names, parts of the error)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "[search]\nstrategy = \"random\"\n[search.space]\n\"train.lr\" = { uniform = [0.1, 0.2] }\n",
            "[search]", &["key `search`", "missing `trials`"],
        ),
        (
            "[search]\ntrials = 4\n[search.space]\n\"train.lr\" = { loguniform = [1e-2, 1e-4] }\n",
            "\"train.lr\"", &["search.space.train.lr.loguniform", "out of order"],
        ),
        (
            "[search]\ntrials = 4\n[search.space]\n\"model.hidden\" = { uniform = [8.0, 64.0] }\n",
            "\"model.hidden\"", &["whole number", "int = [low, high]"],
        ),
        (
            "[search]\ntrials = 4\n[search.space]\n\"model.hiden\" = { int = [8, 64] }\n",
            "\"model.hiden\"", &["not a searchable key", "did you mean `model.hidden`"],
        ),
        (
            "[search]\ntrials = 4\n[search.space]\n\"train.momentum\" = { uniform = [0.8, 0.99], when = { \"train.optimiser\" = \"sgd\" } }\n",
            "\"train.momentum\"", &["when", "train.optimiser", "did you mean `train.optimizer`"],
        ),
        (
            "[search]\ntrials = 4\n[search.space]\n\"train.lr\" = { uniform = [0.1, 0.2], int = [1, 2] }\n",
            "\"train.lr\"", &["exactly one of"],
        ),
        (
            "[search]\ntrials = 4\nobjective = { metric = \"valid.loss\", mode = \"max\" }\n[search.space]\n\"train.lr\" = { uniform = [0.1, 0.2] }\n",
            "objective", &["search.objective.mode", "mode = \"min\""],
        ),
        (
            "[search]\nstrategy = \"grid\"\n[search.space]\n\"train.lr\" = { uniform = [0.1, 0.2] }\n",
            "\"train.lr\"", &["finite", "choice"],
        ),
        (
            "[search]\ntrials = 4\n[search.space]\n\"model.dropout\" = { uniform = [0.0, 1.5] }\n",
            "\"model.dropout\"", &["model.dropout = 1.5"],
        ),
        (
            "[search]\ntrials = 4\n[search.space]\n\"train.lr\" = { uniform = [0.1, 0.2] }\n[search.pruner]\nkind = \"ashа\"\n",
            "kind", &["search.pruner.kind", "asha"],
        ),
    ];
    for (search, needle, parts) in cases {
        spec(&dir, search);
        let stderr = refused(&dir.lab(&["run", "spec.toml", "--dry-run"]), parts);
        if !needle.is_empty() {
            let text = std::fs::read_to_string(dir.path().join("spec.toml")).unwrap();
            let line = 1 + text.lines().position(|l| l.contains(needle)).unwrap();
            assert!(
                stderr.contains(&format!("spec.toml:{line}:")),
                "line {line} in {stderr}"
            );
        }
    }
    assert_eq!(dir.trials("any"), 0, "nothing is recorded for a bad spec");
}

#[test]
fn dry_run_proposals_are_deterministic_and_inside_the_space() {
    let dir = Dir::new();
    for strategy in ["random", "sobol"] {
        spec(
            &dir,
            &format!(
                "[search]\nstrategy = \"{strategy}\"\ntrials = 12\nseed = 4\n[search.space]\n\
                 \"train.lr\" = {{ loguniform = [1e-4, 1e-2] }}\n\"model.layers\" = {{ int = [1, 3] }}\n"
            ),
        );
        let run = |extra: &[&str]| {
            let mut args = vec!["run", "spec.toml", "--dry-run", "--format", "csv"];
            args.extend(extra);
            let out = dir.lab(&args);
            succeeds(&out);
            String::from_utf8(out.stdout).unwrap()
        };
        let first = run(&[]);
        assert_eq!(
            first,
            run(&[]),
            "{strategy}: the same spec proposes the same points"
        );
        assert_ne!(
            first,
            run(&["--set", "search.seed=5"]),
            "{strategy}: the seed matters"
        );
        let rows: Vec<&str> = first.lines().skip(1).collect();
        assert_eq!(rows.len(), 12, "{first}");
        for row in rows {
            let lr: f64 = value(row, "train.lr=").parse().unwrap();
            let layers: u32 = value(row, "model.layers=").parse().unwrap();
            assert!(
                (1e-4..=1e-2).contains(&lr) && (1..=3).contains(&layers),
                "{row}"
            );
        }
    }
}

fn value<'a>(row: &'a str, key: &str) -> &'a str {
    let rest = &row[row.find(key).unwrap_or_else(|| panic!("{key} in {row}")) + key.len()..];
    rest.split([' ', ',', '"']).next().unwrap()
}

#[test]
fn tpe_with_asha_runs_prunes_and_reruns_nothing() {
    let dir = Dir::new();
    spec(&dir, TPE_ASHA);
    let out = dir.lab(&["run", "spec.toml"]);
    let stderr = succeeds(&out);
    assert_complete(&dir, 6);
    let trials = recorded(&dir);
    let pruned: Vec<_> = trials.iter().filter(|t| t.1 == "pruned").collect();
    // With reduction 2, the second trial at rung 1 survives only if it beats the first.
    assert!(
        !pruned.is_empty(),
        "ASHA pruned nothing: {trials:?}\n{stderr}"
    );
    for t in &pruned {
        assert!(t.3 < 3, "a pruned trial stops before the last epoch: {t:?}");
        assert_eq!(t.4, 0, "a pruned trial costs no test evaluation: {t:?}");
    }
    assert!(stderr.contains("pruned at epoch"), "{stderr}");
    let again = dir.lab(&["run", "spec.toml"]);
    succeeds(&again);
    assert_eq!(
        recorded(&dir),
        trials,
        "a finished search proposes nothing more"
    );

    // `lab ui` draws the search: history, parameters against the objective, effects.
    let db = dir.db();
    let server = crate::common::Server::start(&["ui", "--db", db.to_str().unwrap()]);
    let html = ureq::get(&server.url("/experiments/search"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for wanted in [
        "Optimisation history",
        "Parameters against macro_f1",
        "Effect of train.lr",
        &format!("{} pruned", pruned.len()),
    ] {
        assert!(
            html.contains(wanted),
            "{wanted} missing from the page:\n{html}"
        );
    }
}

fn spawn(dir: &Dir) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(dir.path())
        .args(["--db", "lab.db", "run", "spec.toml"])
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_share_one_tpe_search_without_duplicates() {
    let dir = Dir::new();
    spec(&dir, &TPE_ASHA.replace("trials = 6", "trials = 8"));
    let children = [spawn(&dir), spawn(&dir)];
    let mut who: BTreeMap<String, usize> = BTreeMap::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        *who.entry(if stderr.contains("started") {
            "ran".into()
        } else {
            "idle".into()
        })
        .or_default() += 1;
    }
    assert_complete(&dir, 8);
    let conn = rusqlite::Connection::open(dir.path().join("lab.db")).unwrap();
    let workers: i64 = conn
        .query_row("SELECT count(DISTINCT worker) FROM trials", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(workers, 2, "both processes claimed trials ({who:?})");
}

#[test]
fn kill_9_mid_search_then_resume_proposes_no_point_twice_and_loses_none() {
    let dir = Dir::new();
    spec(&dir, &TPE_ASHA.replace("trials = 6", "trials = 7"));
    let mut child = spawn(&dir);
    let db = dir.path().join("lab.db");
    let start = Instant::now();
    // Kill once TPE has proposed past its random start and a trial is running.
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the search never got going"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Ok(conn) = rusqlite::Connection::open(&db) else {
            continue;
        };
        let q = conn.query_row(
            "SELECT (SELECT coalesce(max(search_number), -1) FROM trials),
                    (SELECT count(*) FROM trials WHERE status = 'running')",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        );
        if matches!(q, Ok((n, running)) if n >= 3 && running == 1) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = recorded(&dir);
    assert!(before.iter().any(|t| t.1 == "running"), "{before:?}");
    succeeds(&dir.lab(&["run", "spec.toml"]));
    assert_complete(&dir, 7);
    let after = recorded(&dir);
    for t in before.iter().filter(|t| t.1 == "done" || t.1 == "pruned") {
        assert!(
            after.contains(t),
            "a finished trial changed after resume: {t:?}"
        );
    }
}
