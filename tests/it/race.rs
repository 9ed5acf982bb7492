//! Seed racing (issue 15, item 7): `lab run --race` through the real binary,
//! real training and the real store. experiments/quick.toml at 2 epochs with a
//! clearly worse learning rate swept beside the good one: the worse
//! configurations keep the spec's seeds, the close ones get the documented
//! extra seeds up to `--max-seeds`, a re-run adds nothing, and `--jobs 2`
//! proposes exactly the trials one process does.

use crate::labels::{refused, succeeds, Dir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The documented sequence for `experiment.seeds = [1, 2]`: the spec's seeds,
/// then the smallest non-negative integers not among them.
const SEQUENCE: [u64; 4] = [1, 2, 0, 3];
const GOOD_LR: &str = "0.005";
const WORSE_LR: &str = "0.00001";

/// quick.toml (4 configurations: cell x lr, seeds [1, 2]) in `dir`, its data
/// path made absolute, 2 epochs.
fn race_dir() -> Dir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let quick = std::fs::read_to_string(root.join("experiments/quick.toml")).unwrap();
    let data = root.join("data/rotten_tomatoes.csv");
    let spec = quick
        .replace("\"../data/rotten_tomatoes.csv\"", &format!("{:?}", data))
        .replace("epochs = 4", "epochs = 2")
        .replace("name = \"quick\"", "name = \"race\"");
    assert!(spec.contains("epochs = 2") && spec.contains("seeds = [1, 2]"));
    let dir = Dir::new();
    dir.write("spec.toml", format!("{spec}\"train.lr\" = [5e-3, 1e-5]\n"));
    dir
}

/// One recorded trial: (cell, lr as the leaderboard shows it) and its seed.
#[derive(Debug, Clone, PartialEq)]
struct Trial {
    config: (String, String),
    seed: u64,
    status: String,
    json: serde_json::Value,
    hash: String,
}

fn trials(dir: &Dir) -> Vec<Trial> {
    let conn = rusqlite::Connection::open(dir.path().join("lab.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT config_json, config_hash, seed, status FROM trials ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })
    .unwrap()
    .map(|row| {
        let (json, hash, seed, status) = row.unwrap();
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        let cell = json["model"]["cell"].as_str().unwrap().to_string();
        let lr = json["train"]["lr"].as_f64().unwrap();
        let lr = if lr > 1e-3 { GOOD_LR } else { WORSE_LR };
        assert_eq!(json["seed"].as_u64(), Some(seed as u64));
        Trial {
            config: (cell, lr.to_string()),
            seed: seed as u64,
            status,
            json,
            hash,
        }
    })
    .collect()
}

/// Seeds per configuration, in the order they were recorded.
fn seeds(trials: &[Trial]) -> BTreeMap<(String, String), Vec<u64>> {
    let mut out: BTreeMap<_, Vec<u64>> = BTreeMap::new();
    for t in trials {
        out.entry(t.config.clone()).or_default().push(t.seed);
    }
    out
}

/// What every race must leave: each configuration's seeds a prefix of the
/// sequence (at most 4), the worse ones at the spec's two, every trial done
/// and recorded once, each added trial its configuration's config with
/// another seed and the grid's identity hash.
fn check_race(trials: &[Trial]) -> BTreeMap<(String, String), Vec<u64>> {
    let by_config = seeds(trials);
    assert_eq!(by_config.len(), 4, "{by_config:?}");
    for (config, seeds) in &by_config {
        assert!(
            seeds.len() <= 4,
            "{config:?} exceeds --max-seeds 4: {seeds:?}"
        );
        assert_eq!(seeds[..], SEQUENCE[..seeds.len()], "{config:?}");
        if config.1 == WORSE_LR {
            assert_eq!(
                seeds,
                &[1, 2],
                "{config:?} is clearly worse: no seeds beyond round 0"
            );
        }
    }
    assert!(trials.iter().all(|t| t.status == "done"), "{trials:?}");
    let hashes: BTreeSet<&str> = trials.iter().map(|t| t.hash.as_str()).collect();
    assert_eq!(hashes.len(), trials.len(), "a trial recorded twice");
    for t in trials.iter().filter(|t| t.seed != 1 && t.seed != 2) {
        let first = trials.iter().find(|u| u.config == t.config).unwrap();
        let mut same = first.json.clone();
        same["seed"] = t.seed.into();
        assert_eq!(
            t.json, same,
            "added trial {t:?}: the configuration's config, another seed"
        );
        let config: lab::spec::TrialConfig = serde_json::from_value(t.json.clone()).unwrap();
        assert_eq!(
            lab::spec::config_hash(&config),
            t.hash,
            "the grid's identity hash"
        );
    }
    by_config
}

const RACE: [&str; 5] = ["run", "spec.toml", "--race", "--max-seeds", "4"];

#[test]
fn racing_adds_seeds_only_where_the_test_cannot_separate_and_resumes_to_nothing() {
    let dir = race_dir();
    let first = succeeds(&dir.lab(&RACE));
    let recorded = trials(&dir);
    let by_config = check_race(&recorded);
    let counts: Vec<String> = by_config
        .iter()
        .map(|(c, s)| format!("{} lr={}: {} seeds", c.0, c.1, s.len()))
        .collect();
    eprintln!(
        "race observed {} trials: {}",
        recorded.len(),
        counts.join(", ")
    );
    // Round 1: the two good configurations (the best and its contender, which
    // two seeds cannot tell apart) get seed 0; the worse ones are separated.
    let round1 = format!(
        "round 1: 2 configurations get seed 0: model.cell=gru train.lr={GOOD_LR}, model.cell=lstm train.lr={GOOD_LR}; 2 separated"
    );
    assert!(first.contains(&round1), "{first}");
    for cell in ["lstm", "gru"] {
        let good = &by_config[&(cell.to_string(), GOOD_LR.to_string())];
        assert!(good.len() >= 3, "{cell} lr={GOOD_LR}: {good:?}");
    }
    assert!(
        first.contains("no configuration gets another seed"),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            "{} trials: 0 done before, {} run now",
            recorded.len(),
            recorded.len()
        )),
        "{first}"
    );

    // The same command again: every round is decided from the store, the
    // same way: nothing to add, nothing to run.
    let again = succeeds(&dir.lab(&RACE));
    assert_eq!(trials(&dir), recorded, "a re-run changed the trials");
    assert!(
        again.contains("round 1: no configuration gets another seed"),
        "{again}"
    );
    assert!(
        again.contains("8 trials: 8 done before, 0 run now, 0 failed"),
        "{again}"
    );

    // Two processes sharing one store propose exactly the same trials.
    let shared = race_dir();
    let mut jobs = RACE.to_vec();
    jobs.extend(["--jobs", "2"]);
    succeeds(&shared.lab(&jobs));
    let both = trials(&shared);
    assert_eq!(check_race(&both), by_config, "--jobs 2 raced differently");
}

#[test]
fn a_race_that_cannot_run_is_refused_before_anything_is_recorded() {
    let dir = race_dir();
    let few = dir.lab(&["run", "spec.toml", "--race", "--max-seeds", "1"]);
    refused(
        &few,
        &["--max-seeds 1 is fewer than the 2 seeds of experiment.seeds"],
    );
    let loss = dir.lab(&["run", "spec.toml", "--race", "--metric", "loss"]);
    refused(&loss, &["--metric loss", "paired test"]);
    let train = dir.lab(&["run", "spec.toml", "--race", "--metric", "train.accuracy"]);
    refused(&train, &["train split", "valid.accuracy"]);
    let big = dir.lab(&["run", "spec.toml", "--race", "--max-trials", "10"]);
    refused(&big, &["4 configurations to 32 trials", "--max-trials 32"]);
    for usage in [
        vec!["run", "spec.toml", "--max-seeds", "4"],
        vec!["run", "spec.toml", "--race", "--trial-index", "0"],
    ] {
        let out = dir.lab(&usage);
        assert_eq!(out.status.code(), Some(2), "{usage:?}: {out:?}");
    }
    assert_eq!(dir.trials("any"), 0);
}
