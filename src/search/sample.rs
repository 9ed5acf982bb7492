//! Proposals that depend on nothing but the spec: grid, random and Sobol. The
//! `n`-th proposal is a function of (space, strategy, seed, n), so a resumed
//! sweep, another process or a Slurm array task computes the same list.

use crate::spec::{Param, ParamKind, Strategy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::HashSet;

/// One proposed configuration: a value for every parameter, in the space's
/// order (a conditional parameter's value is used only where its `when` holds).
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// 0-based, in the order proposed (Optuna's trial number).
    pub number: usize,
    /// One value per parameter.
    pub values: Vec<Value>,
}

/// The most dimensions `sobol_burley` provides.
pub const SOBOL_MAX_DIMENSIONS: usize = 256;

/// A point `u` in `[0, 1)` mapped to a value of `kind`: linearly for
/// `uniform`, in the logarithm for `loguniform`, to equal-width cells for
/// `int` and `choice`.
pub fn from_unit(kind: &ParamKind, u: f64) -> Value {
    let u = u.clamp(0.0, 1.0 - f64::EPSILON);
    match kind {
        ParamKind::Uniform { low, high } => Value::from(tidy(low + u * (high - low), *low, *high)),
        ParamKind::LogUniform { low, high } => {
            let x = (low.ln() + u * (high.ln() - low.ln())).exp();
            Value::from(tidy(x, *low, *high))
        }
        ParamKind::Int { low, high } => {
            let span = (*high as f64) - (*low as f64) + 1.0;
            Value::from((*low).saturating_add((u * span).floor() as i64).min(*high))
        }
        ParamKind::Choice(values) => {
            let i = ((u * values.len() as f64) as usize).min(values.len() - 1);
            values[i].clone()
        }
    }
}

/// `x` to 4 significant digits, kept inside `[low, high]`: labels and
/// configs read `0.007655`, not `0.00765476222096714`, and no search
/// distinguishes values closer than that.
pub fn tidy(x: f64, low: f64, high: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    ((x * scale).round() / scale).clamp(low, high)
}

/// The `candidate`-th uniform point of dimension `dims` for `seed`: one
/// ChaCha8 stream per candidate, so no candidate depends on another.
pub fn random_unit(seed: u64, candidate: u64, dims: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(candidate);
    (0..dims).map(|_| rng.gen::<f64>()).collect()
}

/// The `index`-th point of the Owen-scrambled Sobol sequence (Burley 2020)
/// for `seed`; `dims` at most [`SOBOL_MAX_DIMENSIONS`].
pub fn sobol_unit(seed: u64, index: u32, dims: usize) -> Vec<f64> {
    // The sequence takes a 32-bit seed: fold the high half in.
    let seed = (seed ^ (seed >> 32)) as u32;
    (0..dims as u32)
        .map(|d| f64::from(sobol_burley::sample(index, d, seed)))
        .collect()
}

/// The values a unit point stands for.
pub fn values_at(params: &[Param], u: &[f64]) -> Vec<Value> {
    params
        .iter()
        .zip(u)
        .map(|(p, &u)| from_unit(&p.kind, u))
        .collect()
}

/// How many distinct points a space has, `None` when any parameter is
/// continuous (or the product overflows).
pub fn space_size(params: &[Param]) -> Option<u64> {
    params
        .iter()
        .try_fold(1u64, |n, p| n.checked_mul(p.kind.cardinality()?))
}

/// The text that identifies a point, for telling repeats apart.
pub fn point_key(values: &[Value]) -> String {
    Value::Array(values.to_vec()).to_string()
}

/// The first `trials` proposals of a grid, random or Sobol search (for a grid,
/// every combination, the first parameter varying slowest). A random or Sobol
/// point that repeats an earlier one is skipped in a finite space, so fewer
/// than `trials` come back when the space has fewer points.
///
/// # Errors
/// A Sobol search over more than [`SOBOL_MAX_DIMENSIONS`] parameters; TPE,
/// whose proposals depend on results.
pub fn fixed(
    params: &[Param],
    strategy: Strategy,
    seed: u64,
    trials: usize,
) -> Result<Vec<Proposal>, String> {
    match strategy {
        Strategy::Grid => Ok(grid(params)),
        Strategy::Random => Ok(distinct(params, trials, |c| {
            random_unit(seed, c, params.len())
        })),
        Strategy::Sobol if params.len() > SOBOL_MAX_DIMENSIONS => Err(format!(
            "a Sobol search covers at most {SOBOL_MAX_DIMENSIONS} parameters; this one has {}",
            params.len()
        )),
        Strategy::Sobol => Ok(distinct(params, trials, |c| {
            sobol_unit(seed, u32::try_from(c).unwrap_or(u32::MAX), params.len())
        })),
        Strategy::Tpe => Err("TPE proposals depend on the results so far".into()),
    }
}

/// Every combination of the parameters' values.
fn grid(params: &[Param]) -> Vec<Proposal> {
    let lists: Vec<Vec<Value>> = params.iter().map(|p| all_values(&p.kind)).collect();
    let mut out = vec![Vec::new()];
    for list in &lists {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                list.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
    }
    out.into_iter()
        .enumerate()
        .map(|(number, values)| Proposal { number, values })
        .collect()
}

fn all_values(kind: &ParamKind) -> Vec<Value> {
    match kind {
        ParamKind::Int { low, high } => (*low..=*high).map(Value::from).collect(),
        ParamKind::Choice(values) => values.clone(),
        // Refused for a grid when the spec is loaded.
        ParamKind::Uniform { .. } | ParamKind::LogUniform { .. } => Vec::new(),
    }
}

/// `trials` points from `unit(candidate)`, candidates 0, 1, 2, ..., skipping
/// repeats in a finite space and stopping when it is exhausted.
fn distinct(params: &[Param], trials: usize, unit: impl Fn(u64) -> Vec<f64>) -> Vec<Proposal> {
    let size = space_size(params);
    let want = size.map_or(trials, |n| {
        trials.min(usize::try_from(n).unwrap_or(usize::MAX))
    });
    // Enough candidates to find every point of a finite space with near certainty.
    let patience = (want as u64).saturating_mul(64).saturating_add(1024);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(want);
    let mut candidate = 0u64;
    while out.len() < want && candidate < patience {
        let values = values_at(params, &unit(candidate));
        candidate += 1;
        if size.is_some() && !seen.insert(point_key(&values)) {
            continue;
        }
        out.push(Proposal {
            number: out.len(),
            values,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(key: &str, kind: ParamKind) -> Param {
        Param {
            key: key.into(),
            path: key.split('.').map(String::from).collect(),
            kind,
            when: Vec::new(),
        }
    }

    fn space() -> Vec<Param> {
        vec![
            param(
                "train.lr",
                ParamKind::LogUniform {
                    low: 1e-4,
                    high: 1e-2,
                },
            ),
            param(
                "model.dropout",
                ParamKind::Uniform {
                    low: 0.0,
                    high: 0.6,
                },
            ),
            param("model.layers", ParamKind::Int { low: 1, high: 3 }),
            param(
                "model.cell",
                ParamKind::Choice(vec![Value::from("lstm"), Value::from("gru")]),
            ),
        ]
    }

    #[test]
    fn unit_points_map_inside_the_bounds() {
        let lr = ParamKind::LogUniform {
            low: 1e-4,
            high: 1e-2,
        };
        assert!((from_unit(&lr, 0.0).as_f64().unwrap() - 1e-4).abs() < 1e-12);
        assert!((from_unit(&lr, 0.5).as_f64().unwrap() - 1e-3).abs() < 1e-9);
        let int = ParamKind::Int { low: 1, high: 3 };
        let got: Vec<i64> = [0.0, 0.34, 0.67, 0.999_999, 1.0]
            .iter()
            .map(|&u| from_unit(&int, u).as_i64().unwrap())
            .collect();
        assert_eq!(got, [1, 2, 3, 3, 3]);
    }

    #[test]
    fn continuous_values_keep_four_significant_digits_inside_the_bounds() {
        assert_eq!(tidy(0.00765476222096714, 1e-4, 1e-2), 0.007655);
        assert_eq!(tidy(0.13996898507301078, 0.0, 0.6), 0.14);
        assert_eq!(tidy(0.59999, 0.0, 0.59999), 0.59999);
        assert_eq!(tidy(1.00004e-4, 1.00004e-4, 1e-2), 1.00004e-4);
    }

    #[test]
    fn random_and_sobol_are_deterministic_and_in_bounds() {
        for strategy in [Strategy::Random, Strategy::Sobol] {
            let a = fixed(&space(), strategy, 7, 50).unwrap();
            assert_eq!(a, fixed(&space(), strategy, 7, 50).unwrap(), "{strategy:?}");
            assert_ne!(a, fixed(&space(), strategy, 8, 50).unwrap(), "{strategy:?}");
            assert_eq!(a.len(), 50);
            // A longer run extends a shorter one: proposal n never changes.
            assert_eq!(a[..20], fixed(&space(), strategy, 7, 20).unwrap()[..]);
            for p in &a {
                let lr = p.values[0].as_f64().unwrap();
                let dropout = p.values[1].as_f64().unwrap();
                assert!((1e-4..=1e-2).contains(&lr), "{lr}");
                assert!((0.0..=0.6).contains(&dropout), "{dropout}");
                assert!((1..=3).contains(&p.values[2].as_i64().unwrap()));
            }
        }
    }

    #[test]
    fn sobol_fills_the_space_more_evenly_than_random() {
        // Per-dimension discrepancy: the largest gap between sorted points.
        let gap = |s: Strategy| {
            let mut xs: Vec<f64> = fixed(&space()[1..2], s, 3, 64)
                .unwrap()
                .iter()
                .map(|p| p.values[0].as_f64().unwrap() / 0.6)
                .collect();
            xs.sort_by(f64::total_cmp);
            xs.windows(2).map(|w| w[1] - w[0]).fold(xs[0], f64::max)
        };
        assert!(gap(Strategy::Sobol) < gap(Strategy::Random));
        assert!(
            gap(Strategy::Sobol) < 2.5 / 64.0,
            "{}",
            gap(Strategy::Sobol)
        );
    }

    #[test]
    fn a_finite_space_is_never_proposed_twice_and_runs_out() {
        let finite = &space()[2..];
        let all = fixed(finite, Strategy::Random, 1, 100).unwrap();
        assert_eq!(all.len(), 6, "3 layers x 2 cells");
        let keys: HashSet<String> = all.iter().map(|p| point_key(&p.values)).collect();
        assert_eq!(keys.len(), 6);
        let grid = fixed(finite, Strategy::Grid, 0, 0).unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[1].values, [Value::from(1), Value::from("gru")]);
    }
}
