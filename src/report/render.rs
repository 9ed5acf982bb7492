//! Leaderboards as text: boxed table, markdown, CSV or JSON.

use super::evidence::Mark;
use super::grid::grid;
use super::leaderboard::{
    tag_list, tagged_trials, Leaderboard, LeaderboardOptions, LeaderboardRow, Summary,
};
use super::splits::leaderboards;
use super::Format;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

/// Print one leaderboard. Table and markdown show "mean ± std" cells and a
/// footer with trial counts (and a line counting pruned trials by epoch, when
/// any was pruned, and one naming the tags the trials were filtered on); CSV
/// and JSON carry `<stat>_mean` and `<stat>_std` separately and no footer;
/// each JSON row carries the experiment's `pruned` count (of its tagged
/// trials when filtered).
pub fn render(board: &Leaderboard, format: Format) -> String {
    render_boards(std::slice::from_ref(board), format)
}

/// Print one experiment's boards (one per test split, `report::leaderboards`):
/// JSON is one array and CSV one table of every board's rows (each row names
/// its `test_split`); a table or markdown shows each board under its note, and
/// the footer once.
pub fn render_boards(boards: &[Leaderboard], format: Format) -> String {
    match format {
        Format::Json => {
            let rows: Vec<Value> = boards.iter().flat_map(json_rows).collect();
            serde_json::to_string_pretty(&Value::Array(rows)).unwrap_or_default()
        }
        Format::Csv => {
            let mut parts: Vec<String> = boards.iter().map(|b| render_board(b, format)).collect();
            // One header: every board has the same columns.
            for part in parts.iter_mut().skip(1) {
                *part = part
                    .split_once('\n')
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_default();
            }
            parts.retain(|p| !p.is_empty());
            parts.join("")
        }
        Format::Table | Format::Markdown => {
            let mut parts: Vec<String> = boards.iter().map(|b| render_board(b, format)).collect();
            if let Some(last) = boards.last() {
                let total = Leaderboard {
                    groups: boards.iter().map(|b| b.groups).sum(),
                    rows: boards.iter().flat_map(|b| b.rows.clone()).collect(),
                    ..last.clone()
                };
                let mut text = footer(&total);
                if boards.len() > 1 {
                    text.push_str(&format!(
                        "\n{} test splits, each ranked on its own (--allow-mixed-splits ranks them together)",
                        boards.len()
                    ));
                }
                parts.push(text);
            }
            parts.join("\n\n")
        }
    }
}

/// One board without the footer.
fn render_board(board: &Leaderboard, format: Format) -> String {
    match format {
        Format::Json => {
            serde_json::to_string_pretty(&Value::Array(json_rows(board))).unwrap_or_default()
        }
        Format::Csv => {
            let mut header = board.group_by.clone();
            header.push("n".into());
            for c in &board.columns {
                header.push(format!("{c}_mean"));
                header.push(format!("{c}_std"));
            }
            header.push("best_trial".into());
            header.extend(EVIDENCE_KEYS.iter().map(|k| k.to_string()));
            let rows: Vec<Vec<String>> = board
                .rows
                .iter()
                .map(|r| {
                    let mut row = r.group.clone();
                    row.push(r.n.to_string());
                    for s in &r.stats {
                        row.push(s.map(|s| s.mean.to_string()).unwrap_or_default());
                        row.push(s.map(|s| s.std.to_string()).unwrap_or_default());
                    }
                    row.push(r.best_trial.to_string());
                    row.extend(evidence_values(board, r).into_iter().map(|v| match v {
                        Value::Null => String::new(),
                        Value::String(s) => s,
                        other => other.to_string(),
                    }));
                    row
                })
                .collect();
            grid(&header, &rows, Format::Csv)
        }
        Format::Table | Format::Markdown => {
            let mut header = board.group_by.clone();
            let mixed = board.test_split.is_none()
                && board
                    .rows
                    .iter()
                    .any(|r| r.test_split != board.rows[0].test_split);
            if mixed {
                header.push("test split".into());
            }
            header.push("n".into());
            let evidence = board.evidence_note.is_some();
            header.extend(board.columns.iter().take(1).cloned());
            if evidence {
                header.push(ci_header(board));
                header.push("vs best".into());
            }
            header.extend(board.columns.iter().skip(1).cloned());
            header.push("best trial".into());
            let rows: Vec<Vec<String>> = board
                .rows
                .iter()
                .map(|r| {
                    let mut row = r.group.clone();
                    if mixed {
                        let split = r.test_split.as_deref().unwrap_or("unknown");
                        row.push(split.chars().take(12).collect());
                    }
                    row.push(r.n.to_string());
                    row.extend(r.stats.iter().take(1).map(cell));
                    if evidence {
                        row.extend(evidence_cells(r));
                    }
                    row.extend(r.stats.iter().skip(1).map(cell));
                    row.push(r.best_trial.to_string());
                    row
                })
                .collect();
            let table = if rows.is_empty() {
                "no done trials yet".to_string()
            } else {
                grid(&header, &rows, format)
            };
            let mut notes = Vec::new();
            notes.extend(board.split_note.clone());
            notes.push(table);
            notes.extend(
                board
                    .evidence_note
                    .clone()
                    .filter(|_| !board.rows.is_empty()),
            );
            notes.join("\n\n")
        }
    }
}

fn cell(s: &Option<Summary>) -> String {
    match s {
        // One value has no spread to show: "± 0.0000" would read as none.
        Some(s) if s.n == 1 => format!("{:.4}", s.mean),
        Some(s) => format!("{:.4} ± {:.4}", s.mean, s.std),
        None => "-".into(),
    }
}

/// Keys of a row's evidence in CSV and JSON, in `evidence_values` order.
const EVIDENCE_KEYS: [&str; 9] = [
    "ci_low",
    "ci_high",
    "ci_method",
    "ci_level",
    "vs_best",
    "vs_best_reason",
    "p_value",
    "p_adjusted",
    "test_split",
];

fn evidence_values(board: &Leaderboard, r: &LeaderboardRow) -> Vec<Value> {
    let e = r.evidence.as_ref();
    let interval = e.and_then(|e| e.interval);
    vec![
        json!(interval.map(|i| i.0)),
        json!(interval.map(|i| i.1)),
        json!(e.filter(|e| e.interval.is_some()).map(|e| e.method)),
        json!(e.filter(|e| e.interval.is_some()).map(|e| e.level)),
        json!(e.map(|e| e.mark)),
        json!(e.and_then(|e| e.reason.clone())),
        json!(e.and_then(|e| e.p_value)),
        json!(e.and_then(|e| e.p_adjusted)),
        json!(r.test_split.as_ref().or(board.test_split.as_ref())),
    ]
}

/// The interval column's header, e.g. "95% CI".
pub(super) fn ci_header(board: &Leaderboard) -> String {
    let level = board
        .rows
        .iter()
        .find_map(|r| r.evidence.as_ref().map(|e| e.level))
        .unwrap_or(0.95);
    format!("{:.0}% CI", level * 100.0)
}

/// The interval and the verdict against the best, as table cells (the text
/// table's and the HTML report's wording).
pub(super) fn evidence_cells(r: &LeaderboardRow) -> [String; 2] {
    let Some(e) = &r.evidence else {
        return ["-".into(), "-".into()];
    };
    let interval = match e.interval {
        Some((lo, hi)) => format!("[{lo:.4}, {hi:.4}]"),
        None => "-".into(),
    };
    let p = e
        .p_adjusted
        .map(|p| format!(" (p{})", p_text(p)))
        .unwrap_or_default();
    let mark = match e.mark {
        Mark::Best => "best".to_string(),
        Mark::Indistinguishable => format!("≈ best{p}"),
        Mark::Different => format!("worse{p}"),
        Mark::NotTested => "n/a".to_string(),
    };
    [interval, mark]
}

/// A p-value after `p`: "=0.261", small ones as "<0.001".
fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("={p:.3}")
    }
}

/// The counts under the tables; pruned trials (never ranked) on a line of
/// their own, by the epoch they were stopped at.
fn footer(board: &Leaderboard) -> String {
    let c = &board.counts;
    let shown = if board.rows.len() < board.groups {
        format!(" (showing the best {})", board.rows.len())
    } else {
        String::new()
    };
    let mut text = format!(
        "ranked by {} {} ({} is better); {} done in {} groups{shown}; {} pending, {} running, {} failed",
        board.split,
        board.metric,
        if board.lower_is_better { "lower" } else { "higher" },
        c.done,
        board.groups,
        c.pending,
        c.running,
        c.failed
    );
    if let Some(line) = c.pruned_line() {
        text.push('\n');
        text.push_str(&line);
    }
    if !board.tags.is_empty() {
        let tags: Vec<&str> = board.tags.iter().map(String::as_str).collect();
        text.push_str(&format!(
            "\nonly trials tagged {} (on the trial or its experiment)",
            tag_list(&tags)
        ));
    }
    text
}

fn json_rows(board: &Leaderboard) -> Vec<Value> {
    board
        .rows
        .iter()
        .map(|r| {
            let mut obj = Map::new();
            for (k, v) in board.group_by.iter().zip(&r.group) {
                obj.insert(k.clone(), Value::String(v.clone()));
            }
            obj.insert("n".into(), json!(r.n));
            for (c, s) in board.columns.iter().zip(&r.stats) {
                obj.insert(format!("{c}_mean"), json!(s.map(|s| s.mean)));
                obj.insert(format!("{c}_std"), json!(s.map(|s| s.std)));
            }
            obj.insert("best_trial".into(), json!(r.best_trial));
            obj.insert("pruned".into(), json!(board.counts.pruned));
            for (k, v) in EVIDENCE_KEYS.iter().zip(evidence_values(board, r)) {
                obj.insert(k.to_string(), v);
            }
            Value::Object(obj)
        })
        .collect()
}

/// Every experiment's leaderboard, for `lab compare` without an experiment: a
/// heading and a board per experiment (CSV blocks are preceded by a
/// `# experiment: NAME` line), or for JSON one object keyed by experiment name.
///
/// With tags (`opts.tags()`), only the experiments that carry them or have
/// trials that do, each ranking its tagged trials.
///
/// # Errors
/// No experiment or trial carries the tags; a leaderboard cannot be built.
pub fn render_all(store: &Store, opts: &LeaderboardOptions, format: Format) -> Result<String> {
    let tags = opts.tags();
    let mut boards = Vec::new();
    for exp in store.experiments()? {
        if !tags.is_empty()
            && tagged_trials(store, &exp, &tags)?.is_some_and(|trials| trials.is_empty())
        {
            continue;
        }
        let sections = leaderboards(store, &exp, opts)
            .with_context(|| format!("experiment `{}`", exp.name))?;
        boards.push((exp.name, sections));
    }
    if !tags.is_empty() && boards.is_empty() {
        bail!(
            "no experiment or trial in {} is tagged {}",
            store.path().display(),
            tag_list(&tags)
        );
    }
    if format == Format::Json {
        let obj: Map<String, Value> = boards
            .iter()
            .map(|(name, b)| {
                (
                    name.clone(),
                    Value::Array(b.iter().flat_map(json_rows).collect()),
                )
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&Value::Object(obj))?);
    }
    if boards.is_empty() {
        return Ok(match format {
            Format::Csv => String::new(),
            _ => format!("no experiments in {}", store.path().display()),
        });
    }
    let parts: Vec<String> = boards
        .iter()
        .map(|(name, b)| {
            let heading = match format {
                Format::Markdown => format!("## {name}"),
                Format::Csv => format!("# experiment: {name}"),
                _ => format!("experiment {name}"),
            };
            format!(
                "{heading}\n{}{}",
                if format == Format::Markdown { "\n" } else { "" },
                render_boards(b, format)
            )
        })
        .collect();
    Ok(parts.join("\n\n"))
}
