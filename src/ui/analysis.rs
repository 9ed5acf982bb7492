//! What the experiment page draws beyond the leaderboard: each done trial's
//! swept or searched parameters against the ranked metric (parallel
//! coordinates), and the metric's marginal mean per value of each parameter
//! (effects). Computed here, drawn by `report`'s SVG module.

use crate::report::svg::{effect_chart, parallel_coordinates, AxisValue, Effect, Line};
use crate::report::{flatten_config, Leaderboard, Summary};
use crate::stats::interval::t_interval;
use crate::store::{ExperimentRow, Store, TrialStatus};
use anyhow::Result;
use std::collections::{BTreeMap, HashMap};

/// Most lines a parallel-coordinates chart draws: the best ones.
pub const MAX_LINES: usize = 1000;
/// Distinct numeric values past which an effect chart bins a parameter.
const MAX_LEVELS: usize = 10;
/// Quantile bins of a continuous parameter.
const BINS: usize = 6;

/// One done trial: its values of the parameters and its ranked metric.
pub struct Sample {
    /// Trial id.
    pub trial: i64,
    /// Flattened config values, one per parameter (`None`: not set).
    pub values: Vec<Option<String>>,
    /// The leaderboard's metric on its split.
    pub metric: f64,
}

/// The parameters worth drawing: the leaderboard's grouping keys (those that
/// differ between trials) and a search's space, seeds left out.
pub fn parameters(experiment: &ExperimentRow, board: &Leaderboard) -> Vec<String> {
    let mut keys: Vec<String> = board.group_by.clone();
    if let Some(search) = crate::spec::recorded_search(&experiment.spec_toml) {
        keys.extend(search.space.keys().cloned());
    }
    keys.retain(|k| k != "seed" && !k.ends_with(".seed"));
    keys.sort();
    keys.dedup();
    keys
}

/// The done trials that recorded the board's metric, with their values of `params`.
///
/// # Errors
/// The store cannot be read.
pub fn samples(
    store: &Store,
    experiment: &ExperimentRow,
    board: &Leaderboard,
    params: &[String],
) -> Result<Vec<Sample>> {
    let metric: HashMap<i64, f64> = store
        .metric_values(experiment.id, &board.split, &board.metric)?
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for t in store.readable_trials(experiment.id)? {
        let Some(&value) = metric.get(&t.id) else {
            continue;
        };
        if t.status != TrialStatus::Done {
            continue;
        }
        let Ok(config) = serde_json::from_str::<serde_json::Value>(&t.config_json) else {
            continue;
        };
        let flat = flatten_config(&config);
        out.push(Sample {
            trial: t.id,
            values: params.iter().map(|p| flat.get(p).cloned()).collect(),
            metric: value,
        });
    }
    Ok(out)
}

/// The parallel-coordinates chart of at most [`MAX_LINES`] best samples.
pub fn parallel_chart(samples: &[Sample], params: &[String], board: &Leaderboard) -> String {
    let mut chosen: Vec<&Sample> = samples.iter().collect();
    chosen.sort_by(|a, b| {
        let order = a.metric.total_cmp(&b.metric);
        if board.lower_is_better {
            order
        } else {
            order.reverse()
        }
    });
    chosen.truncate(MAX_LINES);
    let lines: Vec<Line> = chosen
        .iter()
        .map(|s| Line {
            values: s.values.iter().map(|v| axis_value(v.as_deref())).collect(),
            metric: s.metric,
            label: format!("trial {}", s.trial),
        })
        .collect();
    let title = if samples.len() > MAX_LINES {
        format!(
            "Parameters against {} (best {MAX_LINES} of {} trials)",
            board.metric,
            samples.len()
        )
    } else {
        format!(
            "Parameters against {} ({} trials)",
            board.metric,
            samples.len()
        )
    };
    parallel_coordinates(
        &title,
        params,
        &board.metric,
        !board.lower_is_better,
        &lines,
    )
}

fn axis_value(v: Option<&str>) -> AxisValue {
    match v {
        None => AxisValue::Missing,
        Some(s) => match s.parse::<f64>() {
            Ok(x) if x.is_finite() => AxisValue::Number(x),
            _ => AxisValue::Text(s.to_string()),
        },
    }
}

/// One effect chart per parameter with at least two values.
pub fn effect_charts(samples: &[Sample], params: &[String], metric: &str) -> Vec<String> {
    params
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let effects = effects(samples, i);
            (effects.len() >= 2).then(|| {
                effect_chart(
                    &format!("Effect of {p}"),
                    p,
                    &format!("mean {metric} (95% CI)"),
                    &effects,
                )
            })
        })
        .collect()
}

/// The marginal means of parameter `i`: per value (or per quantile bin of a
/// continuous one), the mean metric with its Student-t 95% interval.
pub fn effects(samples: &[Sample], i: usize) -> Vec<Effect> {
    let pairs: Vec<(&str, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.values.get(i)?.as_deref()?, s.metric)))
        .collect();
    let numbers: Option<Vec<(f64, f64)>> = pairs
        .iter()
        .map(|(v, m)| Some((v.parse::<f64>().ok()?, *m)))
        .collect();
    let groups: Vec<(String, Vec<f64>)> = match numbers {
        Some(mut xs) if !xs.is_empty() => {
            xs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut distinct: Vec<f64> = xs.iter().map(|x| x.0).collect();
            distinct.dedup();
            if distinct.len() > MAX_LEVELS {
                quantile_bins(&xs)
            } else {
                let mut by: Vec<(f64, Vec<f64>)> = Vec::new();
                for (x, m) in xs {
                    match by.last_mut() {
                        Some((last, ms)) if *last == x => ms.push(m),
                        _ => by.push((x, vec![m])),
                    }
                }
                by.into_iter()
                    .map(|(x, ms)| (crate::report::svg::short_num(x), ms))
                    .collect()
            }
        }
        _ => {
            let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for (v, m) in pairs {
                by.entry(v).or_default().push(m);
            }
            by.into_iter().map(|(v, ms)| (v.to_string(), ms)).collect()
        }
    };
    groups
        .into_iter()
        .filter_map(|(label, ms)| {
            let s = Summary::of(&ms)?;
            Some(Effect {
                label,
                mean: s.mean,
                interval: t_interval(s.mean, s.std, s.n, 0.95).map(|c| (c.low, c.high)),
                n: s.n,
            })
        })
        .collect()
}

/// Equal-count bins of sorted `(value, metric)` pairs, labelled `lo–hi`.
fn quantile_bins(xs: &[(f64, f64)]) -> Vec<(String, Vec<f64>)> {
    let per = xs.len().div_ceil(BINS);
    xs.chunks(per.max(1))
        .map(|chunk| {
            let (lo, hi) = (chunk[0].0, chunk[chunk.len() - 1].0);
            let label = format!(
                "{}–{}",
                crate::report::svg::short_num(lo),
                crate::report::svg::short_num(hi)
            );
            (label, chunk.iter().map(|c| c.1).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(trial: i64, lr: &str, cell: &str, metric: f64) -> Sample {
        Sample {
            trial,
            values: vec![Some(lr.into()), Some(cell.into())],
            metric,
        }
    }

    #[test]
    fn effects_are_the_mean_and_t_interval_per_value() {
        let s = [
            sample(1, "0.01", "lstm", 0.8),
            sample(2, "0.01", "gru", 0.6),
            sample(3, "0.1", "lstm", 0.7),
            sample(4, "0.1", "gru", 0.5),
        ];
        let cell = effects(&s, 1);
        assert_eq!(
            cell.iter().map(|e| e.label.as_str()).collect::<Vec<_>>(),
            ["gru", "lstm"]
        );
        assert!((cell[1].mean - 0.75).abs() < 1e-12);
        // t(0.975, 1) = 12.706; std of (0.8, 0.7) = 0.0707; half = 12.706 * 0.0707 / sqrt 2.
        let (lo, hi) = cell[1].interval.unwrap();
        assert!((hi - lo - 2.0 * 12.7062 * 0.070711 / 2f64.sqrt()).abs() < 1e-3);
        let lr = effects(&s, 0);
        assert_eq!(
            lr.iter().map(|e| e.label.as_str()).collect::<Vec<_>>(),
            ["0.01", "0.1"]
        );
    }

    #[test]
    fn a_continuous_parameter_is_binned_by_quantiles() {
        let s: Vec<Sample> = (0..60)
            .map(|i| sample(i, &format!("{}", i as f64 / 10.0), "x", i as f64))
            .collect();
        let bins = effects(&s, 0);
        assert_eq!(bins.len(), BINS);
        assert!(bins.iter().all(|b| b.n == 10));
        assert_eq!(bins[0].label, "0–0.9");
    }
}
