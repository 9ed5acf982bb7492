//! Rows scored on different test rows are never ranked together: the
//! experiment's leaderboard is cut into one board per test split, each with
//! its evidence.

use super::evidence::assess;
use super::flatten::flatten_config;
use super::leaderboard::{leaderboard_by_split, Leaderboard, LeaderboardOptions, LeaderboardRow};
use crate::store::{ExperimentRow, Store};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Shown for trials recorded without a test-split fingerprint.
const UNKNOWN: &str = "unknown";

/// The experiment's leaderboards, one per test split (rows whose trials were
/// scored on the same test rows), best split first, each with `top` applied
/// and its rows' evidence (`evidence::assess`). A row never pools trials of
/// different test splits: a configuration scored on two splits (a changed data
/// file, a `--group-by` that leaves out `data.split.seed`) is a row in each.
/// With `opts.allow_mixed_splits`, one board of every row, with a warning in
/// `split_note` when splits differ.
///
/// # Errors
/// As `leaderboard`, or the store's predictions cannot be read.
pub fn leaderboards(
    store: &Store,
    experiment: &ExperimentRow,
    opts: &LeaderboardOptions,
) -> Result<Vec<Leaderboard>> {
    let all = LeaderboardOptions {
        top: None,
        ..opts.clone()
    };
    let splits = store.test_splits(experiment.id)?;
    let board = leaderboard_by_split(store, experiment, &all, Some(&splits))?;
    // Sections in order of their best row: the rows are ranked already.
    let mut sections: Vec<(String, Vec<LeaderboardRow>)> = Vec::new();
    for row in &board.rows {
        let key = row.test_split.clone().unwrap_or_else(|| UNKNOWN.into());
        match sections.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => rows.push(row.clone()),
            None => sections.push((key, vec![row.clone()])),
        }
    }
    let mut boards = if sections.len() <= 1 || opts.allow_mixed_splits {
        let mut one = board.clone();
        one.test_split = sections
            .first()
            .filter(|_| sections.len() == 1)
            .map(|s| s.0.clone());
        if sections.len() > 1 {
            one.split_note = Some(format!(
                "warning: ranked together although scored on {} different test splits (--allow-mixed-splits); rows on another split than the best get no paired test",
                sections.len()
            ));
        }
        vec![one]
    } else {
        let reasons = reasons(store, experiment, &board, &sections)?;
        sections
            .into_iter()
            .zip(reasons)
            .map(|((key, rows), reason)| Leaderboard {
                groups: rows.len(),
                rows,
                test_split: Some(key),
                split_note: Some(reason),
                ..board.clone()
            })
            .collect()
    };
    for b in &mut boards {
        if b.test_split
            .as_deref()
            .is_some_and(|k| k.contains('+') || k == UNKNOWN)
        {
            b.test_split = None;
        }
        if let Some(top) = opts.top {
            b.rows.truncate(top);
        }
        assess(store, b, &opts.evidence)?;
    }
    Ok(boards)
}

/// For each section, what sets its test rows apart: the data and preprocessing
/// keys whose values differ between sections, else a changed data file.
fn reasons(
    store: &Store,
    experiment: &ExperimentRow,
    board: &Leaderboard,
    sections: &[(String, Vec<LeaderboardRow>)],
) -> Result<Vec<String>> {
    let configs: HashMap<i64, BTreeMap<String, String>> = store
        .readable_trials(experiment.id)?
        .into_iter()
        .filter_map(|t| {
            let value = serde_json::from_str(&t.config_json).ok()?;
            Some((t.id, flatten_config(&value)))
        })
        .collect();
    // Per section: key -> the values its trials have.
    let values: Vec<BTreeMap<&str, BTreeSet<&str>>> = sections
        .iter()
        .map(|(_, rows)| {
            let mut m: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for id in rows.iter().flat_map(|r| &r.trials) {
                for (k, v) in configs.get(id).into_iter().flatten() {
                    if k.starts_with("data.") || k.starts_with("preprocess.") {
                        m.entry(k).or_default().insert(v);
                    }
                }
            }
            m
        })
        .collect();
    let keys: BTreeSet<&str> = values.iter().flat_map(|m| m.keys().copied()).collect();
    let differing: Vec<&str> = keys
        .into_iter()
        .filter(|k| {
            values
                .iter()
                .map(|m| m.get(k))
                .collect::<BTreeSet<_>>()
                .len()
                > 1
        })
        .collect();
    let n = sections.len();
    Ok(sections
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(i, ((key, _), m))| {
            let short: String = key.chars().take(12).collect();
            let what: Vec<String> = differing
                .iter()
                .map(|k| {
                    let vals: Vec<&str> = m.get(k).into_iter().flatten().copied().collect();
                    format!(
                        "{k} = {}",
                        if vals.is_empty() {
                            "-".into()
                        } else {
                            vals.join("|")
                        }
                    )
                })
                .collect();
            let why = if key == UNKNOWN {
                "recorded without a test-split fingerprint (an older lab): no paired tests"
                    .to_string()
            } else if what.is_empty() {
                "same data keys as the other splits: the data file's contents changed between runs"
                    .to_string()
            } else {
                what.join(", ")
            };
            format!(
                "test split {} of {n} ({short}, ranked by {} {} within it): {why}",
                i + 1,
                board.split,
                board.metric
            )
        })
        .collect())
}
