//! TPE proposals: the next configuration as a function of the finished trials.
//! One univariate estimator per parameter (the `tpe` crate, as Optuna's
//! default independent TPE), rebuilt from the history on every call, with a
//! random stream seeded from (seed, number): the same store contents give the
//! same proposal.

use super::prune::Direction;
use super::sample::{self, point_key, Proposal};
use crate::spec::{Param, ParamKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::HashSet;

/// Default `search.startup_trials`: random proposals before TPE (Optuna's 10).
pub const DEFAULT_STARTUP_TRIALS: usize = 10;

/// TPE draws tried for a point not proposed before, before the random stream.
const FRESH_DRAWS: usize = 512;

/// A finished (or pruned) trial as TPE sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Per parameter, its value encoded as TPE models it ([`encode`]); `None`
    /// where the parameter did not apply.
    pub values: Vec<Option<f64>>,
    /// The objective (a pruned trial's last recorded value).
    pub objective: f64,
}

/// A parameter's value in a trial's config, as TPE models it: the number for
/// `uniform` and `int`, its logarithm for `loguniform`, its index for `choice`.
/// `None` when the parameter does not apply to `config` or holds another value.
pub fn encode(param: &Param, config: &Value) -> Option<f64> {
    if !param.active_in(config) {
        return None;
    }
    let v = param.value_in(config)?;
    match &param.kind {
        ParamKind::Uniform { .. } | ParamKind::Int { .. } => v.as_f64(),
        ParamKind::LogUniform { .. } => v.as_f64().filter(|x| *x > 0.0).map(f64::ln),
        ParamKind::Choice(values) => values.iter().position(|c| c == v).map(|i| i as f64),
    }
}

fn decode(kind: &ParamKind, x: f64) -> Value {
    match kind {
        ParamKind::Uniform { low, high } => Value::from(sample::tidy(x, *low, *high)),
        ParamKind::LogUniform { low, high } => Value::from(sample::tidy(x.exp(), *low, *high)),
        ParamKind::Int { low, high } => Value::from((x.round() as i64).clamp(*low, *high)),
        ParamKind::Choice(values) => values[(x.max(0.0) as usize).min(values.len() - 1)].clone(),
    }
}

/// Proposal `number` of a TPE search: the random search's proposal while
/// `number < startup`, else drawn by TPE from `history`. `taken` holds the
/// [`point_key`]s proposed so far, never proposed again in a finite space.
/// `None` when a finite space has no point left.
///
/// # Errors
/// The estimator refused its input (a bound or observation out of range).
pub fn propose(
    params: &[Param],
    history: &[Observation],
    direction: Direction,
    seed: u64,
    number: usize,
    startup: usize,
    taken: &HashSet<String>,
) -> Result<Option<Proposal>, String> {
    let finite = sample::space_size(params);
    if finite.is_some_and(|n| taken.len() as u64 >= n) {
        return Ok(None);
    }
    let fresh = |values: &Vec<Value>| finite.is_none() || !taken.contains(&point_key(values));
    if number >= startup && !history.is_empty() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7470_655f_7470_655f);
        rng.set_stream(number as u64);
        // In a finite space TPE keeps drawing the good points it already
        // tried; each draw is cheap, so draw until a fresh one turns up.
        for _ in 0..FRESH_DRAWS {
            let values = match ask(params, history, direction, &mut rng) {
                Ok(values) => values,
                // An estimator that refuses its input must not stop the
                // search: this proposal comes from the random stream.
                Err(e) => {
                    tracing::warn!(
                        "TPE could not propose configuration {number} ({e}); drawing it at random"
                    );
                    break;
                }
            };
            if fresh(&values) {
                return Ok(Some(Proposal { number, values }));
            }
        }
    }
    // Startup, or TPE keeps landing on taken points: the random stream, from
    // this number's own candidates on.
    let patience = (number as u64 + 1).saturating_mul(64).saturating_add(1024);
    for candidate in number as u64..number as u64 + patience {
        let values = sample::values_at(params, &sample::random_unit(seed, candidate, params.len()));
        if fresh(&values) {
            return Ok(Some(Proposal { number, values }));
        }
    }
    Ok(None)
}

/// One TPE draw per parameter, each estimator told the whole history
/// (minimising; a maximised objective is negated).
fn ask(
    params: &[Param],
    history: &[Observation],
    direction: Direction,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Value>, String> {
    let sign = match direction {
        Direction::Maximize => -1.0,
        Direction::Minimize => 1.0,
    };
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let tell = history
                .iter()
                .map(|o| (o.values[i].unwrap_or(f64::NAN), sign * o.objective));
            let x = match &p.kind {
                ParamKind::Choice(values) => {
                    let range = tpe::categorical_range(values.len()).map_err(|e| e.to_string())?;
                    draw(
                        tpe::TpeOptimizer::new(tpe::histogram_estimator(), range),
                        tell,
                        rng,
                    )?
                }
                kind => {
                    let (low, high) = bounds(kind);
                    // The crate's range is half-open: widen it so `high`
                    // itself (a value at the upper bound) can be told.
                    let high = high + (high - low).abs() * 1e-9 + f64::EPSILON;
                    let range = tpe::range(low, high).map_err(|e| e.to_string())?;
                    draw(
                        tpe::TpeOptimizer::new(tpe::parzen_estimator(), range),
                        tell,
                        rng,
                    )?
                }
            };
            Ok(decode(&p.kind, x))
        })
        .collect()
}

/// The interval TPE searches for a numeric parameter, in its encoding; an
/// integer's cells are widened by half a step so each end is as likely.
fn bounds(kind: &ParamKind) -> (f64, f64) {
    match kind {
        ParamKind::Uniform { low, high } => (*low, *high),
        ParamKind::LogUniform { low, high } => (low.ln(), high.ln()),
        ParamKind::Int { low, high } => (*low as f64 - 0.5, *high as f64 + 0.5),
        ParamKind::Choice(values) => (0.0, values.len() as f64),
    }
}

fn draw<T: tpe::density_estimation::BuildDensityEstimator>(
    mut optimizer: tpe::TpeOptimizer<T>,
    tell: impl Iterator<Item = (f64, f64)>,
    rng: &mut ChaCha8Rng,
) -> Result<f64, String>
where
    T::Error: std::fmt::Display,
{
    for (x, y) in tell.filter(|(_, y)| y.is_finite()) {
        optimizer.tell(x, y).map_err(|e| e.to_string())?;
    }
    optimizer.ask(rng).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(kind: ParamKind) -> Param {
        Param {
            key: "x".into(),
            path: vec!["x".into()],
            kind,
            when: Vec::new(),
        }
    }

    /// A toy objective with its best at x = 0.8 (maximised).
    fn objective(x: f64) -> f64 {
        -(x - 0.8).powi(2)
    }

    fn run(seed: u64, n: usize) -> Vec<Observation> {
        let params = [param(ParamKind::Uniform {
            low: 0.0,
            high: 1.0,
        })];
        let mut history = Vec::new();
        for number in 0..n {
            let p = propose(
                &params,
                &history,
                Direction::Maximize,
                seed,
                number,
                5,
                &HashSet::new(),
            )
            .unwrap()
            .unwrap();
            let x = p.values[0].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x));
            history.push(Observation {
                values: vec![Some(x)],
                objective: objective(x),
            });
        }
        history
    }

    #[test]
    fn the_same_history_gives_the_same_proposal() {
        assert_eq!(run(3, 25), run(3, 25));
        assert_ne!(run(3, 25), run(4, 25));
    }

    #[test]
    fn tpe_concentrates_near_the_optimum_after_startup() {
        let history = run(11, 40);
        let distance = |obs: &[Observation]| {
            obs.iter()
                .map(|o| (o.values[0].unwrap() - 0.8).abs())
                .sum::<f64>()
                / obs.len() as f64
        };
        // Uniform draws are 0.34 from 0.8 on average ((0.8² + 0.2²) / 2).
        let tpe = distance(&history[20..]);
        assert!(tpe < 0.15, "mean distance {tpe}: {:?}", &history[20..]);
    }

    #[test]
    fn values_at_both_bounds_are_accepted() {
        let params = [param(ParamKind::LogUniform {
            low: 1e-4,
            high: 3e-2,
        })];
        let history: Vec<Observation> = [1e-4, 3e-2, 1e-3]
            .iter()
            .map(|&x: &f64| Observation {
                values: vec![Some(x.ln())],
                objective: x,
            })
            .collect();
        let p = propose(
            &params,
            &history,
            Direction::Maximize,
            0,
            5,
            2,
            &HashSet::new(),
        )
        .unwrap()
        .unwrap();
        let x = p.values[0].as_f64().unwrap();
        assert!((1e-4..=3e-2).contains(&x), "{x}");
    }

    #[test]
    fn in_a_finite_space_tpe_still_proposes_from_the_model() {
        // x in 0..=9, the objective x; tried: 0, 1, 2, 3 and the best, 9.
        // TPE's model sits near 9, so its fresh points are mostly 7 and 8;
        // the random stream would pick them 2 times in 5 (fresh: 4 to 8).
        let params = [param(ParamKind::Int { low: 0, high: 9 })];
        let tried = [0, 1, 2, 3, 9];
        let taken: HashSet<String> = tried
            .iter()
            .map(|&x| point_key(&[Value::from(x)]))
            .collect();
        let history: Vec<Observation> = tried
            .iter()
            .map(|&x| Observation {
                values: vec![Some(x as f64)],
                objective: x as f64,
            })
            .collect();
        let high = (5..25)
            .filter(|&number| {
                let p = propose(&params, &history, Direction::Maximize, 1, number, 3, &taken);
                p.unwrap().unwrap().values[0].as_i64().unwrap() >= 7
            })
            .count();
        assert!(high >= 14, "{high} of 20 proposals were 7 or 8");
    }

    #[test]
    fn a_finite_space_runs_out_without_repeats() {
        let params = [param(ParamKind::Int { low: 1, high: 3 })];
        let mut taken = HashSet::new();
        let mut history = Vec::new();
        for number in 0..3 {
            let p = propose(&params, &history, Direction::Minimize, 0, number, 1, &taken)
                .unwrap()
                .unwrap();
            assert!(taken.insert(point_key(&p.values)), "{:?} twice", p.values);
            let x = p.values[0].as_f64().unwrap();
            history.push(Observation {
                values: vec![Some(x)],
                objective: x,
            });
        }
        assert_eq!(
            propose(&params, &history, Direction::Minimize, 0, 3, 1, &taken).unwrap(),
            None
        );
    }
}
