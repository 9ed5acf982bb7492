//! A search's charts in the report: the optimisation history (the objective
//! of each finished trial by trial id, and the best so far) and one
//! slice plot per searched parameter (the objective against its value).

use super::svg::{optimization_history, slice_plot, SliceX};
use crate::spec::{Distribution, Mode};
use crate::store::{ExperimentRow, SearchTrial, Store, TrialStatus};
use anyhow::Result;
use serde_json::Value;
use std::fmt::Write;

/// The section: nothing for an experiment that is not a search, or whose
/// search has no finished trial yet.
///
/// # Errors
/// The store cannot be read.
pub(crate) fn search_section(
    out: &mut String,
    store: &Store,
    experiment: &ExperimentRow,
) -> Result<()> {
    let Some(search) = crate::spec::recorded_search(&experiment.spec_toml) else {
        return Ok(());
    };
    let metric = search.objective.metric.name();
    let trials = store.search_trials(experiment.id, metric)?;
    let pruned = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Pruned)
        .count();
    let done: Vec<(SearchTrial, Value)> = trials
        .into_iter()
        .filter(|t| t.status == TrialStatus::Done && t.objective.is_some())
        .filter_map(|t| {
            let config = serde_json::from_str(&t.config_json).ok()?;
            Some((t, config))
        })
        .collect();
    if done.is_empty() {
        return Ok(());
    }
    let y: Vec<f64> = done
        .iter()
        .map(|(t, _)| t.objective.unwrap_or(f64::NAN))
        .collect();
    let points: Vec<(i64, f64)> = done
        .iter()
        .zip(&y)
        // Trial ids, as the leaderboard names trials (they follow the proposals).
        .map(|((t, _), &v)| (t.id, v))
        .collect();
    let maximize = search.objective.metric.mode() == Mode::Max;
    let _ = write!(
        out,
        "<h2>Search</h2><p class=\"muted\">A {} search, objective {metric}: {} done trials below; {} pruned trials are not drawn.</p><div class=\"charts\">",
        search.strategy.name(),
        done.len(),
        pruned
    );
    out.push_str(&optimization_history(
        "Optimisation history",
        metric,
        &points,
        maximize,
    ));
    for (key, d) in &search.space {
        let path: Vec<&str> = key.split('.').collect();
        let values: Vec<Option<&Value>> = done
            .iter()
            .map(|(_, c)| path.iter().try_fold(c, |v, seg| v.get(seg)))
            .collect();
        out.push_str(&slice_plot(
            &format!("Slice: {key}"),
            key,
            metric,
            &slice_x(d, &values),
            &y,
        ));
    }
    out.push_str("</div>");
    Ok(())
}

/// A parameter's values as the slice plot's x: categories for `choice`, else
/// numbers (on a log axis for `loguniform`); a missing value is left out.
fn slice_x(d: &Distribution, values: &[Option<&Value>]) -> SliceX {
    if let Some(choices) = &d.choice {
        let choices: Vec<Value> = choices
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect();
        let labels = choices.iter().map(shown).collect();
        let index = values
            .iter()
            .map(|v| {
                v.and_then(|v| choices.iter().position(|c| same(c, v)))
                    .unwrap_or(usize::MAX)
            })
            .collect();
        return SliceX::Categorical { labels, index };
    }
    SliceX::Numeric {
        values: values
            .iter()
            .map(|v| v.and_then(Value::as_f64).unwrap_or(f64::NAN))
            .collect(),
        log_x: d.loguniform.is_some(),
    }
}

/// Equal values, a whole number and a float of the same value included (a
/// choice of `1` on a float field reads back as `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    a == b || matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
