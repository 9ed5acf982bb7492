//! `lab report`: one self-contained HTML file per experiment (inline CSS and
//! SVG, no scripts or network): leaderboard, curves per configuration, the best
//! configuration's confusion matrices and per-class scores, class distribution
//! and the spec.

use super::flatten::flatten_config;
use super::leaderboard::{leaderboard, Leaderboard, LeaderboardOptions};
use super::svg::{bar_chart, heatmap, line_chart, Series, PALETTE};
use crate::store::{ExperimentRow, Store, TrialStatus};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Rows per class in each data split (computed by the caller from the data).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassDistribution {
    /// Class names, in the columns' order.
    pub classes: Vec<String>,
    /// (split name, count per class)
    pub splits: Vec<(String, Vec<u64>)>,
}

fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd}h3{font-size:1rem}\
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}\
th{background:#f4f4f4}td.k,th.k{text-align:left}tr.best{background:#fff6d6;font-weight:bold}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}pre{background:#f7f7f7;padding:.8rem;overflow:auto}.muted{color:#666}";

/// The report of one experiment, ranked by `opts.metric`.
pub fn html_report(
    store: &Store,
    experiment: &ExperimentRow,
    opts: &LeaderboardOptions,
    distribution: Option<&ClassDistribution>,
) -> Result<String> {
    let board = leaderboard(store, experiment, opts)?;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lab report: {name}</title><style>{STYLE}</style></head><body><h1>Experiment {name}</h1><p class=\"muted\">{done} done, {failed} failed, {pending} pending, {running} running trials; ranked by {metric} ({dir}). Generated {now}.</p>",
        name = esc(&experiment.name),
        done = board.counts.done,
        failed = board.counts.failed,
        pending = board.counts.pending,
        running = board.counts.running,
        metric = esc(&opts.metric),
        dir = if board.lower_is_better { "lower is better" } else { "higher is better" },
        now = crate::store::now(),
    );
    leaderboard_table(&mut out, &board);
    curves(&mut out, store, experiment, &board)?;
    if let Some(row) = board.rows.first() {
        best_section(&mut out, store, row.best_trial)?;
    }
    if let Some(d) = distribution {
        out.push_str("<h2>Class distribution of the data splits</h2><div class=\"charts\">");
        let series: Vec<(String, Vec<f64>)> = d
            .splits
            .iter()
            .map(|(s, counts)| (s.clone(), counts.iter().map(|&c| c as f64).collect()))
            .collect();
        out.push_str(&bar_chart("Rows per class", "rows", &d.classes, &series));
        out.push_str("</div>");
    }
    let _ = write!(
        out,
        "<h2>Spec</h2><pre>{}</pre></body></html>",
        esc(&experiment.spec_toml)
    );
    Ok(out)
}

fn leaderboard_table(out: &mut String, board: &Leaderboard) {
    out.push_str("<h2>Leaderboard</h2><table class=\"leaderboard\"><tr><th></th>");
    for k in &board.group_by {
        let _ = write!(out, "<th class=\"k\">{}</th>", esc(k));
    }
    out.push_str("<th>n</th>");
    for c in &board.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("<th>best trial</th></tr>");
    for (i, row) in board.rows.iter().enumerate() {
        let (class, mark) = if i == 0 {
            (" class=\"best\"", "★ best")
        } else {
            ("", "")
        };
        let _ = write!(out, "<tr{class}><td class=\"k\">{mark}</td>");
        for g in &row.group {
            let _ = write!(out, "<td class=\"k\">{}</td>", esc(g));
        }
        let _ = write!(out, "<td>{}</td>", row.n);
        for s in &row.stats {
            match s {
                Some(s) => {
                    let _ = write!(out, "<td>{:.4} ± {:.4}</td>", s.mean, s.std);
                }
                None => out.push_str("<td>-</td>"),
            }
        }
        let _ = write!(out, "<td>{}</td></tr>", row.best_trial);
    }
    out.push_str("</table>");
    if board.rows.is_empty() {
        out.push_str("<p>No done trials yet.</p>");
    }
}

/// Loss and valid-metric curves per configuration, one line per seed.
fn curves(
    out: &mut String,
    store: &Store,
    experiment: &ExperimentRow,
    board: &Leaderboard,
) -> Result<()> {
    let mut groups: BTreeMap<Vec<String>, Vec<(i64, u64)>> = BTreeMap::new();
    for t in store.readable_trials(experiment.id)? {
        if t.status != TrialStatus::Done {
            continue;
        }
        // The leaderboard warned about and left out a garbled config.
        let Ok(config) = serde_json::from_str::<serde_json::Value>(&t.config_json) else {
            continue;
        };
        let flat = flatten_config(&config);
        let key = board
            .group_by
            .iter()
            .map(|k| flat.get(k).cloned().unwrap_or_else(|| "-".into()))
            .collect();
        groups.entry(key).or_default().push((t.id, t.seed));
    }
    out.push_str("<h2>Training curves</h2>");
    for row in &board.rows {
        let Some(trials) = groups.get(&row.group) else {
            continue;
        };
        let name: Vec<String> = board
            .group_by
            .iter()
            .zip(&row.group)
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let name = if name.is_empty() {
            "all trials".to_string()
        } else {
            name.join(", ")
        };
        let _ = write!(out, "<h3>{}</h3><div class=\"charts\">", esc(&name));
        let (mut loss, mut metric) = (Vec::new(), Vec::new());
        for (i, &(id, seed)) in trials.iter().enumerate() {
            let epochs = store.epochs(id)?;
            let color = PALETTE[i % PALETTE.len()];
            let line =
                |label: &str, f: &dyn Fn(&crate::store::EpochRecord) -> f64, dashed| Series {
                    name: format!("{label} seed {seed}"),
                    points: epochs.iter().map(|e| (e.epoch as f64, f(e))).collect(),
                    color,
                    dashed,
                };
            loss.push(line("train", &|e| e.train_loss, false));
            loss.push(line("valid", &|e| e.valid_loss, true));
            metric.push(line("F1", &|e| e.valid_macro_f1, false));
            metric.push(line("acc", &|e| e.valid_accuracy, true));
        }
        out.push_str(&line_chart(
            "Loss (train solid, valid dashed)",
            "epoch",
            "loss",
            &loss,
        ));
        out.push_str(&line_chart(
            "Valid macro F1 (solid) and accuracy (dashed)",
            "epoch",
            "valid metric",
            &metric,
        ));
        out.push_str("</div>");
    }
    Ok(())
}

/// Confusion matrices and per-class precision/recall/F1 of the best trial.
fn best_section(out: &mut String, store: &Store, trial_id: i64) -> Result<()> {
    let _ = write!(
        out,
        "<h2>Best configuration: trial {trial_id}</h2><div class=\"charts\">"
    );
    let confusion = store.confusion(trial_id)?;
    // Test first, then valid.
    for c in confusion
        .iter()
        .filter(|c| c.split == "test")
        .chain(confusion.iter().filter(|c| c.split != "test"))
    {
        out.push_str(&heatmap(
            &format!("Confusion matrix ({})", c.split),
            &c.labels,
            &c.matrix,
        ));
    }
    out.push_str("</div>");
    let labels = confusion
        .iter()
        .find(|c| c.split == "test")
        .or(confusion.first())
        .map(|c| c.labels.clone())
        .unwrap_or_default();
    let metrics: BTreeMap<String, f64> = store
        .metrics(trial_id)?
        .into_iter()
        .filter(|m| m.split == "test")
        .map(|m| (m.name, m.value))
        .collect();
    let value = |name: &str, class: &str| metrics.get(&format!("{name}.{class}")).copied();
    out.push_str("<h3>Per class (test split)</h3><table class=\"per-class\"><tr><th class=\"k\">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
    for l in &labels {
        let cell = |name: &str| {
            value(name, l).map_or("-".to_string(), |v| {
                if name == "support" {
                    format!("{v:.0}")
                } else {
                    format!("{v:.4}")
                }
            })
        };
        let _ = write!(
            out,
            "<tr><td class=\"k\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(l),
            cell("precision"),
            cell("recall"),
            cell("f1"),
            cell("support")
        );
    }
    out.push_str("</table><div class=\"charts\">");
    let series: Vec<(String, Vec<f64>)> = ["precision", "recall", "f1"]
        .iter()
        .map(|n| {
            let vals = labels
                .iter()
                .map(|l| value(n, l).unwrap_or(f64::NAN))
                .collect();
            (n.to_string(), vals)
        })
        .collect();
    out.push_str(&bar_chart(
        "Per-class precision, recall, F1 (test)",
        "score",
        &labels,
        &series,
    ));
    out.push_str("</div>");
    Ok(())
}

/// One chart of one trial, for `lab plot`: "loss", "metric" or "confusion".
pub fn trial_chart(store: &Store, trial_id: i64, chart: &str) -> Result<String> {
    let trial = store
        .trial(trial_id)?
        .with_context(|| format!("no trial {trial_id} in {}", store.path().display()))?;
    let epochs = store.epochs(trial_id)?;
    let series =
        |label: &str, f: &dyn Fn(&crate::store::EpochRecord) -> f64, color, dashed| Series {
            name: label.to_string(),
            points: epochs.iter().map(|e| (e.epoch as f64, f(e))).collect(),
            color,
            dashed,
        };
    let seed = trial.seed;
    Ok(match chart {
        "loss" => line_chart(
            &format!("Trial {trial_id} (seed {seed}): loss"),
            "epoch",
            "loss",
            &[
                series("train", &|e| e.train_loss, PALETTE[0], false),
                series("valid", &|e| e.valid_loss, PALETTE[1], true),
            ],
        ),
        "metric" => line_chart(
            &format!("Trial {trial_id} (seed {seed}): valid metrics"),
            "epoch",
            "valid metric",
            &[
                series("macro F1", &|e| e.valid_macro_f1, PALETTE[0], false),
                series("accuracy", &|e| e.valid_accuracy, PALETTE[1], true),
            ],
        ),
        "confusion" => {
            let confusion = store.confusion(trial_id)?;
            let c = confusion
                .iter()
                .find(|c| c.split == "test")
                .with_context(|| format!("trial {trial_id} has no test confusion matrix"))?;
            heatmap(
                &format!("Trial {trial_id}: confusion matrix (test)"),
                &c.labels,
                &c.matrix,
            )
        }
        other => anyhow::bail!("unknown chart `{other}`; expected loss, metric or confusion"),
    })
}
