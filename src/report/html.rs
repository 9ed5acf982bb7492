//! `lab report`: one self-contained HTML file per experiment (inline CSS and
//! SVG, no scripts or network): leaderboards with their evidence (one per test
//! split, intervals, verdicts against the best and an interval plot), curves per
//! configuration, the best configuration's confusion matrices, per-class scores
//! and most confidently wrong test texts, class distribution and the spec.

use super::evidence::Mark;
use super::flatten::flatten_config;
use super::leaderboard::{Leaderboard, LeaderboardOptions, LeaderboardRow};
use super::render::{ci_header, evidence_cells};
use super::splits::leaderboards;
use super::svg::{bar_chart, heatmap, interval_chart, line_chart, IntervalRow, Series, PALETTE};
use crate::inference::errors::ConfidentErrors;
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

pub(crate) const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd}h3{font-size:1rem}\
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}\
th{background:#f4f4f4}td.k,th.k{text-align:left}tr.best{background:#fff6d6;font-weight:bold}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}pre{background:#f7f7f7;padding:.8rem;overflow:auto}.muted{color:#666}\
caption{caption-side:top;text-align:left;padding:.3rem 0;color:#444}td.verdict{text-align:left;white-space:nowrap}\
tr.indistinguishable{background:#e9f6ee}tr.indistinguishable td.verdict{color:#2b7a48;font-weight:bold}\
tr.different td.verdict{color:#9b3b3b}tr.too-few td.verdict{color:#777}p.evidence-note{font-size:.9em}\
table.wrong td.text{text-align:left;max-width:44rem}";

/// The best trial's most confidently wrong test texts (`inference::errors`),
/// or the sentence that says why there are none (e.g. a trial recorded without
/// per-example predictions); computed by the caller, as they need the data file.
pub type WrongTexts = std::result::Result<ConfidentErrors, String>;

/// The report of one experiment, ranked by `opts.metric`, with the evidence
/// `lab compare` states for the same options (`report::leaderboards`).
/// `distribution` and `errors` come from the data file and are left out when
/// `None`.
///
/// # Errors
/// As `report::leaderboards`, or the store cannot be read.
pub fn html_report(
    store: &Store,
    experiment: &ExperimentRow,
    opts: &LeaderboardOptions,
    distribution: Option<&ClassDistribution>,
    errors: Option<&WrongTexts>,
) -> Result<String> {
    let boards = leaderboards(store, experiment, opts)?;
    let Some(board) = boards.first() else {
        anyhow::bail!("experiment `{}`: no leaderboard", experiment.name);
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lab report: {name}</title><style>{STYLE}</style></head><body><h1>Experiment {name}</h1><p class=\"muted\">{done} done, {failed} failed, {pruned} pruned, {pending} pending, {running} running trials; ranked by {metric} ({dir}). Generated {now}.</p>",
        name = esc(&experiment.name),
        done = board.counts.done,
        failed = board.counts.failed,
        pruned = board.counts.pruned,
        pending = board.counts.pending,
        running = board.counts.running,
        metric = esc(&opts.metric),
        dir = if board.lower_is_better { "lower is better" } else { "higher is better" },
        now = crate::store::now(),
    );
    out.push_str("<h2>Leaderboard</h2>");
    for b in &boards {
        leaderboard_table(&mut out, b, None);
    }
    if boards.len() > 1 {
        let _ = write!(
            out,
            "<p>{} test splits, each ranked on its own: rows scored on different test rows are not compared.</p>",
            boards.len()
        );
    }
    if let Some(line) = board.counts.pruned_line() {
        let _ = write!(out, "<p>{}; pruned trials are not ranked.</p>", esc(&line));
    }
    curves(&mut out, store, experiment, &boards)?;
    super::search::search_section(&mut out, store, experiment)?;
    if let Some(row) = board.rows.first() {
        best_section(&mut out, store, row.best_trial)?;
        if let Some(errors) = errors {
            wrong_texts(&mut out, row.best_trial, errors);
        }
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

/// One board: its split note as the caption, the rows with their interval and
/// verdict against the best, the methods under it, then its interval plot.
/// With `trial_href` (`/trials/`), best-trial ids link to that path + the id.
pub(crate) fn leaderboard_table(out: &mut String, board: &Leaderboard, trial_href: Option<&str>) {
    let evidence = board.evidence_note.is_some();
    out.push_str("<table class=\"leaderboard\">");
    if let Some(note) = &board.split_note {
        let _ = write!(out, "<caption>{}</caption>", esc(note));
    }
    out.push_str("<tr><th></th>");
    for k in &board.group_by {
        let _ = write!(out, "<th class=\"k\">{}</th>", esc(k));
    }
    out.push_str("<th>n</th>");
    for (i, c) in board.columns.iter().enumerate() {
        let _ = write!(out, "<th>{}</th>", esc(c));
        if i == 0 && evidence {
            let _ = write!(
                out,
                "<th class=\"ci\">{}</th><th class=\"k\">vs best</th>",
                esc(&ci_header(board))
            );
        }
    }
    out.push_str("<th>best trial</th></tr>");
    for (i, row) in board.rows.iter().enumerate() {
        leaderboard_row(out, row, i == 0, evidence, trial_href);
    }
    out.push_str("</table>");
    if board.rows.is_empty() {
        out.push_str("<p>No done trials yet.</p>");
        return;
    }
    if let Some(note) = &board.evidence_note {
        let lines: Vec<String> = note.lines().map(esc).collect();
        let _ = write!(
            out,
            "<p class=\"evidence-note muted\">{}</p>",
            lines.join("<br>")
        );
        let _ = write!(out, "<div class=\"charts\">{}</div>", interval_plot(board));
    }
}

/// A row's CSS class: `best` for the first, else its verdict.
fn row_class(first: bool, row: &LeaderboardRow) -> &'static str {
    match row.evidence.as_ref().map(|e| e.mark) {
        _ if first => "best",
        Some(Mark::Indistinguishable) => "indistinguishable",
        Some(Mark::Different) => "different",
        Some(Mark::NotTested) => "too-few",
        Some(Mark::Best) | None => "",
    }
}

fn leaderboard_row(
    out: &mut String,
    row: &LeaderboardRow,
    first: bool,
    evidence: bool,
    trial_href: Option<&str>,
) {
    let mark = if first { "★ best" } else { "" };
    let _ = write!(
        out,
        "<tr class=\"{}\"><td class=\"k\">{mark}</td>",
        row_class(first, row)
    );
    for g in &row.group {
        let _ = write!(out, "<td class=\"k\">{}</td>", esc(g));
    }
    let _ = write!(out, "<td>{}</td>", row.n);
    for (i, s) in row.stats.iter().enumerate() {
        match s {
            Some(s) => {
                let _ = write!(out, "<td>{:.4} ± {:.4}</td>", s.mean, s.std);
            }
            None => out.push_str("<td>-</td>"),
        }
        if i == 0 && evidence {
            let [interval, verdict] = evidence_cells(row);
            let _ = write!(
                out,
                "<td class=\"ci\">{}</td><td class=\"verdict\">{}</td>",
                esc(&interval),
                esc(&verdict)
            );
        }
    }
    match trial_href {
        Some(href) => {
            let _ = write!(
                out,
                "<td><a href=\"{href}{t}\">{t}</a></td></tr>",
                t = row.best_trial
            );
        }
        None => {
            let _ = write!(out, "<td>{}</td></tr>", row.best_trial);
        }
    }
}

/// The board's interval plot: each row's mean and interval of the ranked metric.
fn interval_plot(board: &Leaderboard) -> String {
    let level = ci_header(board);
    let rows: Vec<IntervalRow> = board
        .rows
        .iter()
        .filter_map(|row| {
            let mean = row.stats.first().copied().flatten()?.mean;
            let evidence = row.evidence.as_ref()?;
            let [interval, verdict] = evidence_cells(row);
            Some(IntervalRow {
                label: row_label(&board.group_by, &row.group),
                mean,
                interval: evidence.interval,
                mark: evidence.mark,
                note: format!("mean {mean:.4}, {level} {interval}; {verdict}"),
            })
        })
        .collect();
    let metric = board.columns.first().map_or("", String::as_str);
    let better = if board.lower_is_better {
        "lower is better"
    } else {
        "higher is better"
    };
    interval_chart(
        &format!("{metric}: mean and {level} per configuration"),
        &format!("{metric} ({better})"),
        &rows,
    )
}

/// `key = value, ...` of a row's group, or "all trials" without keys.
pub(crate) fn row_label(keys: &[String], values: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    if parts.is_empty() {
        "all trials".into()
    } else {
        parts.join(", ")
    }
}

/// Loss and valid-metric curves per configuration, one line per seed.
fn curves(
    out: &mut String,
    store: &Store,
    experiment: &ExperimentRow,
    boards: &[Leaderboard],
) -> Result<()> {
    let Some(board) = boards.first() else {
        return Ok(());
    };
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
    for row in boards.iter().flat_map(|b| &b.rows) {
        let Some(trials) = groups.get(&row.group) else {
            continue;
        };
        let name = row_label(&board.group_by, &row.group);
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
    let _ = write!(out, "<h2>Best configuration: trial {trial_id}</h2>");
    class_scores(out, store, trial_id)
}

/// A trial's confusion matrices (test first), then its per-class precision,
/// recall, F1 and support on the test split as a table and a bar chart.
pub(crate) fn class_scores(out: &mut String, store: &Store, trial_id: i64) -> Result<()> {
    out.push_str("<div class=\"charts\">");
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

/// The best trial's most confidently wrong test texts as a table, or the
/// sentence that says why there are none.
pub(crate) fn wrong_texts(out: &mut String, trial_id: i64, errors: &WrongTexts) {
    out.push_str("<h3>Most confidently wrong test texts</h3>");
    let e = match errors {
        Ok(e) => e,
        Err(why) => {
            let _ = write!(
                out,
                "<p class=\"no-errors\">No wrong test texts to show for trial {trial_id}: {}.</p>",
                esc(why.trim_end_matches('.'))
            );
            return;
        }
    };
    let file = std::path::Path::new(&e.data_file)
        .file_name()
        .map_or(e.data_file.clone(), |f| f.to_string_lossy().into_owned());
    if e.rows.is_empty() {
        let _ = write!(
            out,
            "<p class=\"no-errors\">Trial {trial_id} got all {} of its test rows right.</p>",
            e.test_rows
        );
        return;
    }
    let _ = write!(
        out,
        "<p>The {} test texts trial {} got wrong with the highest probability on its prediction ({} of {} test rows wrong), read back from {}.</p>",
        e.rows.len(),
        e.trial,
        e.wrong,
        e.test_rows,
        esc(&file)
    );
    out.push_str("<table class=\"wrong\"><tr><th class=\"k\">true label</th><th class=\"k\">predicted</th><th>probability</th><th class=\"k\">text</th><th>data row</th></tr>");
    for r in &e.rows {
        let _ = write!(
            out,
            "<tr><td class=\"k\">{}</td><td class=\"k\">{}</td><td>{:.3}</td><td class=\"text\">{}</td><td>{}</td></tr>",
            esc(&r.label),
            esc(&r.predicted),
            r.probability,
            esc(&r.text),
            r.data_row
        );
    }
    out.push_str("</table>");
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
