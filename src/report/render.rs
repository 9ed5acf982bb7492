//! Leaderboards as text: boxed table, markdown, CSV or JSON.

use super::grid::grid;
use super::leaderboard::{leaderboard, Leaderboard, LeaderboardOptions, Summary};
use super::Format;
use crate::store::Store;
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

/// Print one leaderboard. Table and markdown show "mean ± std" cells and a
/// footer with trial counts; CSV and JSON carry `<stat>_mean` and `<stat>_std`
/// separately and no footer.
pub fn render(board: &Leaderboard, format: Format) -> String {
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
                    row
                })
                .collect();
            grid(&header, &rows, Format::Csv)
        }
        Format::Table | Format::Markdown => {
            let mut header = board.group_by.clone();
            header.push("n".into());
            header.extend(board.columns.iter().cloned());
            header.push("best trial".into());
            let rows: Vec<Vec<String>> = board
                .rows
                .iter()
                .map(|r| {
                    let mut row = r.group.clone();
                    row.push(r.n.to_string());
                    row.extend(r.stats.iter().map(cell));
                    row.push(r.best_trial.to_string());
                    row
                })
                .collect();
            let table = if rows.is_empty() {
                "no done trials yet".to_string()
            } else {
                grid(&header, &rows, format)
            };
            format!("{table}\n\n{}", footer(board))
        }
    }
}

fn cell(s: &Option<Summary>) -> String {
    match s {
        Some(s) => format!("{:.4} ± {:.4}", s.mean, s.std),
        None => "-".into(),
    }
}

fn footer(board: &Leaderboard) -> String {
    let c = &board.counts;
    let shown = if board.rows.len() < board.groups {
        format!(" (showing the best {})", board.rows.len())
    } else {
        String::new()
    };
    format!(
        "ranked by {} {} ({} is better); {} done in {} groups{shown}; {} pending, {} running, {} failed",
        board.split,
        board.metric,
        if board.lower_is_better { "lower" } else { "higher" },
        c.done,
        board.groups,
        c.pending,
        c.running,
        c.failed
    )
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
            Value::Object(obj)
        })
        .collect()
}

/// Every experiment's leaderboard, for `lab compare` without an experiment: a
/// heading and a board per experiment (CSV blocks are preceded by a
/// `# experiment: NAME` line), or for JSON one object keyed by experiment name.
pub fn render_all(store: &Store, opts: &LeaderboardOptions, format: Format) -> Result<String> {
    let mut boards = Vec::new();
    for exp in store.experiments()? {
        let board =
            leaderboard(store, &exp, opts).with_context(|| format!("experiment `{}`", exp.name))?;
        boards.push(board);
    }
    if format == Format::Json {
        let obj: Map<String, Value> = boards
            .iter()
            .map(|b| (b.experiment.clone(), Value::Array(json_rows(b))))
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
        .map(|b| {
            let heading = match format {
                Format::Markdown => format!("## {}", b.experiment),
                Format::Csv => format!("# experiment: {}", b.experiment),
                _ => format!("experiment {}", b.experiment),
            };
            format!(
                "{heading}\n{}{}",
                if format == Format::Markdown { "\n" } else { "" },
                render(b, format)
            )
        })
        .collect();
    Ok(parts.join("\n\n"))
}
