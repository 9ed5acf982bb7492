//! Leaderboards and trial pages from a store holding synthetic results.

use lab::report::{leaderboard, render, render_all, render_trial, Format, LeaderboardOptions};
use lab::store::{ArtifactRow, ConfusionRow, EpochRecord, MetricRow, NewTrial, Store, TrialResult};

/// Per seed: (macro_f1, accuracy, loss).
type Runs = [(f64, f64, f64); 3];

/// (cell, lr, runs)
const CONFIGS: [(&str, f64, Runs); 3] = [
    (
        "lstm",
        0.001,
        [(0.70, 0.80, 0.5), (0.72, 0.81, 0.5), (0.74, 0.82, 0.5)],
    ),
    (
        "gru",
        0.001,
        [(0.80, 0.90, 0.6), (0.80, 0.90, 0.6), (0.83, 0.93, 0.6)],
    ),
    (
        "gru",
        0.003,
        [(0.60, 0.70, 0.4), (0.65, 0.75, 0.4), (0.70, 0.80, 0.4)],
    ),
];

fn config(cell: &str, lr: f64, seed: u64) -> String {
    serde_json::json!({
        "experiment": "e", "seed": seed,
        "model": {"cell": cell, "hidden": 128},
        "train": {"lr": lr, "epochs": 3}
    })
    .to_string()
}

fn result(f1: f64, acc: f64, loss: f64) -> TrialResult {
    let m = |n: &str, v: f64| MetricRow {
        split: "test".into(),
        name: n.into(),
        value: v,
    };
    TrialResult {
        metrics: vec![
            m("macro_f1", f1),
            m("accuracy", acc),
            m("loss", loss),
            MetricRow {
                split: "valid".into(),
                ..m("macro_f1", f1 - 0.01)
            },
        ],
        confusion: vec![ConfusionRow {
            split: "test".into(),
            matrix: vec![vec![40, 10], vec![3, 47]],
            labels: vec!["negative".into(), "positive".into()],
        }],
        artifacts: vec![ArtifactRow {
            kind: "weights".into(),
            path: "runs/t/model.safetensors".into(),
            sha256: "0f".repeat(32),
        }],
        ..Default::default()
    }
}

/// Store with experiment "e": 9 done trials (ids by config then seed), one
/// pending and one failed trial; returns the done ids as [config][seed].
fn setup(store: &Store, name: &str) -> Vec<Vec<i64>> {
    let exp = store.upsert_experiment(name, "", "").unwrap();
    let mut ids = Vec::new();
    for (cell, lr, runs) in CONFIGS {
        let mut group = Vec::new();
        for (seed, (f1, acc, loss)) in runs.into_iter().enumerate() {
            let json = config(cell, lr, seed as u64);
            let trial = NewTrial {
                config_json: json.clone(),
                config_hash: json,
                seed: seed as u64,
                search_number: None,
            };
            let id = store.add_trials(exp, &[trial]).unwrap()[0];
            store.claim_trial_id(id, "w", "cpu").unwrap().unwrap();
            store.finish_trial(id, &result(f1, acc, loss)).unwrap();
            group.push(id);
        }
        ids.push(group);
    }
    let extra = [config("lstm", 0.001, 99), config("lstm", 0.003, 0)];
    let extra_ids = store
        .add_trials(
            exp,
            &extra
                .iter()
                .map(|c| NewTrial {
                    config_json: c.clone(),
                    config_hash: c.clone(),
                    seed: 0,
                    search_number: None,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    store
        .claim_trial_id(extra_ids[0], "w", "cpu")
        .unwrap()
        .unwrap();
    store.fail_trial(extra_ids[0], "boom").unwrap();
    ids
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    (dir, store)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn default_leaderboard_groups_by_differing_keys() {
    let (_dir, store) = open();
    let ids = setup(&store, "e");
    let exp = store.experiment_by_name("e").unwrap().unwrap();
    let board = leaderboard(&store, &exp, &LeaderboardOptions::default()).unwrap();
    assert_eq!(board.group_by, ["model.cell", "train.lr"]);
    assert_eq!(board.columns, ["macro_f1", "accuracy"]);
    assert!(!board.lower_is_better);
    assert_eq!(board.groups, 3);
    let groups: Vec<_> = board.rows.iter().map(|r| r.group.clone()).collect();
    assert_eq!(
        groups,
        [["gru", "0.001"], ["lstm", "0.001"], ["gru", "0.003"]]
    );
    assert!(board.rows.iter().all(|r| r.n == 3));

    let best = &board.rows[0];
    let f1 = best.stats[0].unwrap();
    assert!(close(f1.mean, 0.81), "{f1:?}");
    assert!(close(f1.std, 0.0003f64.sqrt()), "{f1:?}");
    let acc = best.stats[1].unwrap();
    assert!(
        close(acc.mean, 0.91) && close(acc.std, 0.0003f64.sqrt()),
        "{acc:?}"
    );
    assert_eq!(best.best_trial, ids[1][2]);
    let second = board.rows[1].stats[0].unwrap();
    assert!(
        close(second.mean, 0.72) && close(second.std, 0.02),
        "{second:?}"
    );
    assert_eq!(board.rows[1].best_trial, ids[0][2]);
    let third = board.rows[2].stats[0].unwrap();
    assert!(
        close(third.mean, 0.65) && close(third.std, 0.05),
        "{third:?}"
    );

    let c = board.counts;
    assert_eq!((c.done, c.pending, c.failed, c.running), (9, 1, 1, 0));
}

#[test]
fn loss_ranks_lower_first_and_top_and_group_by_apply() {
    let (_dir, store) = open();
    setup(&store, "e");
    let exp = store.experiment_by_name("e").unwrap().unwrap();
    let opts = LeaderboardOptions {
        metric: "loss".into(),
        top: Some(2),
        ..Default::default()
    };
    let board = leaderboard(&store, &exp, &opts).unwrap();
    assert!(board.lower_is_better);
    assert_eq!(board.columns, ["loss", "accuracy", "macro_f1"]);
    assert_eq!((board.rows.len(), board.groups), (2, 3));
    assert_eq!(board.rows[0].group, ["gru", "0.003"]);
    assert_eq!(board.rows[1].group, ["lstm", "0.001"]);

    let opts = LeaderboardOptions {
        group_by: Some(vec!["model.cell".into()]),
        ..Default::default()
    };
    let board = leaderboard(&store, &exp, &opts).unwrap();
    assert_eq!(board.group_by, ["model.cell"]);
    assert_eq!(board.rows.len(), 2);
    // gru pools six trials: mean 0.73 beats lstm's 0.72.
    assert_eq!(board.rows[0].group, ["gru"]);
    assert_eq!(board.rows[1].group, ["lstm"]);
    let lstm = board.rows[1].stats[0].unwrap();
    assert!(close(lstm.mean, 0.72));
    assert_eq!(board.rows[0].n, 6);
    let gru = board.rows[0].stats[0].unwrap();
    let vals = [0.80, 0.80, 0.83, 0.60, 0.65, 0.70];
    let mean = vals.iter().sum::<f64>() / 6.0;
    let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    assert!(close(gru.mean, mean) && close(gru.std, std), "{gru:?}");

    // A metric on another split, named split.name.
    let opts = LeaderboardOptions {
        metric: "valid.macro_f1".into(),
        ..Default::default()
    };
    let board = leaderboard(&store, &exp, &opts).unwrap();
    assert_eq!(board.columns, ["valid.macro_f1", "accuracy", "macro_f1"]);
    assert!(close(board.rows[0].stats[0].unwrap().mean, 0.80));
}

#[test]
fn bad_group_key_and_metric_are_explained() {
    let (_dir, store) = open();
    setup(&store, "e");
    let exp = store.experiment_by_name("e").unwrap().unwrap();
    let opts = LeaderboardOptions {
        group_by: Some(vec!["model.cel".into()]),
        ..Default::default()
    };
    let err = leaderboard(&store, &exp, &opts).unwrap_err().to_string();
    assert!(
        err.contains("model.cel") && err.contains("`model.cell`"),
        "{err}"
    );
    let opts = LeaderboardOptions {
        metric: "f2".into(),
        ..Default::default()
    };
    let err = leaderboard(&store, &exp, &opts).unwrap_err().to_string();
    assert!(err.contains("f2") && err.contains("macro_f1"), "{err}");
}

#[test]
fn csv_json_markdown_and_table_carry_the_rows() {
    let (_dir, store) = open();
    setup(&store, "e");
    let exp = store.experiment_by_name("e").unwrap().unwrap();
    let board = leaderboard(&store, &exp, &LeaderboardOptions::default()).unwrap();

    let csv_text = render(&board, Format::Csv);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "model.cell",
            "train.lr",
            "n",
            "macro_f1_mean",
            "macro_f1_std",
            "accuracy_mean",
            "accuracy_std",
            "best_trial",
            "ci_low",
            "ci_high",
            "ci_method",
            "ci_level",
            "vs_best",
            "vs_best_reason",
            "p_value",
            "p_adjusted",
            "test_split"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (&rows[0][0], &rows[0][1], &rows[0][2]),
        ("gru", "0.001", "3")
    );
    assert!(close(rows[0][3].parse().unwrap(), 0.81));
    assert!(close(rows[2][4].parse().unwrap(), 0.05));
    assert_eq!(rows[0][7], board.rows[0].best_trial.to_string());

    let json: serde_json::Value = serde_json::from_str(&render(&board, Format::Json)).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[1]["model.cell"], "lstm");
    assert_eq!(arr[1]["n"], 3);
    assert!(close(arr[1]["macro_f1_mean"].as_f64().unwrap(), 0.72));
    assert!(close(arr[1]["macro_f1_std"].as_f64().unwrap(), 0.02));
    assert_eq!(arr[0]["best_trial"], board.rows[0].best_trial);

    let md = render(&board, Format::Markdown);
    let lines: Vec<Vec<String>> = md
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert_eq!(lines.len(), 5, "{md}");
    assert_eq!(lines[0][..3], ["model.cell", "train.lr", "n"]);
    assert!(lines[1][0].starts_with("--"), "{md}");
    assert_eq!(lines[2][..3], ["gru", "0.001", "3"]);
    assert_eq!(lines[2][3], "0.8100 ± 0.0173");
    assert_eq!(lines[4][3], "0.6500 ± 0.0500");
    assert!(md.contains("1 pending") && md.contains("1 failed"), "{md}");

    let table = render(&board, Format::Table);
    assert!(table.contains("0.7200 ± 0.0200"), "{table}");
    assert!(table.contains("9 done in 3 groups"), "{table}");
}

#[test]
fn render_all_covers_every_experiment() {
    let (_dir, store) = open();
    setup(&store, "first");
    setup(&store, "second");
    store.upsert_experiment("empty", "", "").unwrap();
    let opts = LeaderboardOptions::default();
    let json: serde_json::Value =
        serde_json::from_str(&render_all(&store, &opts, Format::Json).unwrap()).unwrap();
    let obj = json.as_object().unwrap();
    assert_eq!(obj.len(), 3);
    assert_eq!(obj["first"].as_array().unwrap().len(), 3);
    assert_eq!(obj["empty"].as_array().unwrap().len(), 0);
    let md = render_all(&store, &opts, Format::Markdown).unwrap();
    assert!(md.contains("## first") && md.contains("## second") && md.contains("## empty"));
    assert!(md.contains("no done trials yet"), "{md}");
    let csv_text = render_all(&store, &opts, Format::Csv).unwrap();
    assert_eq!(csv_text.matches("# experiment: ").count(), 3);
}

#[test]
fn trial_page_shows_everything() {
    let (_dir, store) = open();
    let ids = setup(&store, "e");
    let id = ids[0][1];
    for epoch in 1..=2 {
        let row = EpochRecord {
            epoch,
            train_loss: 0.9 / epoch as f64,
            valid_loss: 0.8,
            valid_accuracy: 0.7,
            valid_macro_f1: 0.65,
            lr: 1e-3,
            seconds: 2.0,
            samples_per_second: 500.0,
        };
        store.record_epoch(id, &row).unwrap();
    }
    let text = render_trial(&store, id, Format::Table).unwrap();
    for needle in [
        &format!("trial {id}"),
        "done",
        "\"cell\": \"lstm\"",
        "0.4500",
        "true \\ predicted",
        "negative",
        "positive",
        "model.safetensors",
        "0.7200",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    let md = render_trial(&store, id, Format::Markdown).unwrap();
    let confusion: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("## confusion (test)"))
        .filter(|l| l.starts_with('|'))
        .take(4)
        .collect();
    let cells = |l: &str| -> Vec<String> {
        l.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    assert_eq!(
        cells(confusion[0]),
        ["true \\ predicted", "negative", "positive"]
    );
    assert_eq!(cells(confusion[2]), ["negative", "40", "10"]);
    assert_eq!(cells(confusion[3]), ["positive", "3", "47"]);

    let json: serde_json::Value =
        serde_json::from_str(&render_trial(&store, id, Format::Json).unwrap()).unwrap();
    assert_eq!(json["status"], "done");
    assert_eq!(json["config"]["model"]["cell"], "lstm");
    assert_eq!(json["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(json["confusion"][0]["matrix"][1][1], 47);

    let csv_text = render_trial(&store, id, Format::Csv).unwrap();
    assert!(csv_text.contains("# config\nkey,value\n"), "{csv_text}");
    assert!(csv_text.contains("model.cell,lstm"), "{csv_text}");

    let err = render_trial(&store, 4242, Format::Table)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no trial 4242"), "{err}");
}

#[test]
fn format_parses_and_lists_choices() {
    assert_eq!("csv".parse::<Format>().unwrap(), Format::Csv);
    assert_eq!("markdown".parse::<Format>().unwrap(), Format::Markdown);
    let err = "xml".parse::<Format>().unwrap_err().to_string();
    assert!(err.contains("table|markdown|csv|json"), "{err}");
}
