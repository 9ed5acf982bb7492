//! The grid: sweep axes applied to the fixed configuration, every point
//! validated, seeds innermost.

use super::config::{Spec, TrialConfig};
use super::layers::Layers;
use super::schema::Schema;
use super::values::problem_at;
use super::{validate, Problem, SpecError};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;

/// One sweep axis with its values as they land in the trial's JSON.
struct Axis {
    key: String,
    path: Vec<String>,
    values: Vec<Value>,
}

/// All trials of `spec`, or the first problem, placed by `layers`.
pub(crate) fn trials(
    spec: &Spec,
    base_dir: &Path,
    layers: &Layers,
) -> Result<Vec<TrialConfig>, SpecError> {
    validate::experiment(&spec.experiment).map_err(|p| layers.error(p))?;
    let fixed = fixed(spec);
    // Checked before the JSON round trip below, which turns NaN and infinity
    // into null. A field some axis overrides is checked per grid point instead.
    if let Err(p) = validate::trial(&fixed, base_dir) {
        let swept = spec.sweep.keys().any(|k| {
            let axis: Vec<&str> = k.split('.').collect();
            let n = axis.len().min(p.path.len());
            axis[..n] == p.path[..n]
        });
        if !swept {
            return Err(layers.error(p));
        }
    }
    let base = serde_json::to_value(fixed).expect("trial configs serialize to JSON");

    let schema = Schema::new();
    let mut axes = Vec::new();
    for (key, raw) in &spec.sweep {
        axes.push(axis(&schema, &base, key, raw).map_err(|p| layers.error(p))?);
    }

    let sizes: Vec<usize> = axes.iter().map(|a| a.values.len()).collect();
    let mut out = Vec::new();
    for point in Odometer::new(sizes) {
        let mut json = base.clone();
        for (a, &i) in axes.iter().zip(&point) {
            set(&mut json, &a.path, a.values[i].clone());
        }
        let trial: TrialConfig = serde_json::from_value(json).map_err(|e| {
            layers.error(Problem::new(
                vec!["sweep".into()],
                format!("invalid grid point: {e}"),
            ))
        })?;
        validate::trial(&trial, base_dir)
            .map_err(|p| layers.error(blame_axis(p, &axes, &point)))?;
        for &seed in &spec.experiment.seeds {
            out.push(TrialConfig {
                seed,
                ..trial.clone()
            });
        }
    }
    Ok(out)
}

/// The configuration every grid point starts from (seed 0).
pub(crate) fn fixed(spec: &Spec) -> TrialConfig {
    TrialConfig {
        experiment: spec.experiment.name.clone(),
        seed: 0,
        data: spec.data.clone(),
        preprocess: spec.preprocess.clone(),
        model: spec.model.clone(),
        train: spec.train.clone(),
    }
}

/// The number of trials of `spec`, counted from its axes' lengths and its
/// seeds without expanding anything; `None` when the product overflows.
pub(crate) fn size(spec: &Spec) -> Option<usize> {
    let searched = super::search::configurations(spec)?;
    spec.sweep
        .values()
        .try_fold(spec.experiment.seeds.len(), |n, axis| {
            n.checked_mul(axis.len())
        })?
        .checked_mul(searched)
}

/// Refuses a grid of more than `max_trials` trials before any of it is
/// expanded, naming each axis with its length, the seeds, the product and the limit.
pub(crate) fn check_size(spec: &Spec, max_trials: usize) -> Result<(), Problem> {
    let size = size(spec);
    if size.is_some_and(|n| n <= max_trials) {
        return Ok(());
    }
    let mut factors: Vec<String> = spec
        .sweep
        .iter()
        .map(|(key, axis)| format!("{key}: {} values", axis.len()))
        .collect();
    if let Some(search) = &spec.search {
        let n = super::search::configurations(spec).unwrap_or(usize::MAX);
        factors.push(format!(
            "search: {n} {} configurations",
            search.strategy.name()
        ));
    }
    let seeds = spec.experiment.seeds.len();
    factors.push(format!("{seeds} seed{}", if seeds == 1 { "" } else { "s" }));
    let factors = factors.join(" x ");
    let message = match size {
        Some(n) => format!(
            "the grid has {n} trials ({factors}), more than --max-trials {max_trials}; \
             pass --max-trials {n} to run them all"
        ),
        None => format!(
            "the grid has more than {} trials ({factors}), more than --max-trials {max_trials} \
             could ever allow; sweep fewer values",
            usize::MAX
        ),
    };
    let key = if spec.sweep.is_empty() {
        "experiment.seeds"
    } else {
        "sweep"
    };
    Err(Problem::at_key(key, message))
}

/// Checks one axis and converts its values to the field's type, so that a
/// wrong value is reported against the axis rather than a grid point.
fn axis(schema: &Schema, base: &Value, key: &str, raw: &[toml::Value]) -> Result<Axis, Problem> {
    let at = vec!["sweep".to_string(), key.to_string()];
    schema
        .check_axis(key)
        .map_err(|(msg, suggestion)| Problem::new(at.clone(), msg).suggest(suggestion))?;
    if raw.is_empty() {
        return Err(Problem::new(at, "an axis needs at least one value".into()));
    }
    let path: Vec<String> = key.split('.').map(String::from).collect();
    let parent = &path[..path.len() - 1];
    if pointer(base, parent).is_none_or(Value::is_null) {
        return Err(Problem::new(
            at,
            format!(
                "`{}` must be set to sweep one of its fields",
                parent.join(".")
            ),
        ));
    }
    let mut values: Vec<Value> = Vec::with_capacity(raw.len());
    // Canonical JSON text of each value: a set keeps the duplicate check linear.
    let mut seen = HashSet::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let mut element = at.clone();
        element.push(i.to_string());
        let mut json = base.clone();
        set(&mut json, &path, to_json(v));
        // Worded as a grid point's problem is (see `blame_axis`).
        if let Some(raw) = v.as_str() {
            if let Some(p) = problem_at(&path, raw) {
                let message = format!("{key} = {raw}: {}", p.message);
                let p = Problem::new(at.clone(), message).suggest(p.suggestion);
                return Err(p.locate(element));
            }
        }
        let typed = serde_json::from_value::<TrialConfig>(json).map_err(|e| {
            Problem::new(at.clone(), format!("value {v}: {e}")).locate(element.clone())
        })?;
        let typed = serde_json::to_value(typed).expect("trial configs serialize to JSON");
        let field = pointer(&typed, &path).cloned().unwrap_or(Value::Null);
        if !seen.insert(field.to_string()) {
            let msg = format!("value {v} is listed twice; its trials would be identical");
            return Err(Problem::new(at, msg).locate(element));
        }
        values.push(field);
    }
    Ok(Axis {
        key: key.to_string(),
        path,
        values,
    })
}

pub(super) fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Puts a grid point's problem on the axis that set the offending value.
fn blame_axis(p: Problem, axes: &[Axis], point: &[usize]) -> Problem {
    let n = |a: &Axis| a.path.len().min(p.path.len());
    let Some((a, &i)) = axes
        .iter()
        .zip(point)
        .find(|(a, _)| a.path[..n(a)] == p.path[..n(a)])
    else {
        return p;
    };
    let at = vec!["sweep".to_string(), a.key.clone()];
    let mut element = at.clone();
    element.push(i.to_string());
    let message = format!(
        "{} = {}: {}",
        p.path.join("."),
        display(&a.values[i]),
        p.message
    );
    Problem {
        path: at,
        at: Some(element),
        message,
        suggestion: p.suggestion,
    }
}

/// `(key, value)` for each axis, as the trial has it.
pub(crate) fn swept_values(trial: &TrialConfig, axes: &[String]) -> Vec<(String, String)> {
    let json = serde_json::to_value(trial).expect("trial configs serialize to JSON");
    axes.iter()
        .map(|key| {
            let path: Vec<String> = key.split('.').map(String::from).collect();
            let v = pointer(&json, &path)
                .map(display)
                .unwrap_or_else(|| "?".into());
            (key.clone(), v)
        })
        .collect()
}

/// A value as a person would write it on the command line.
pub(super) fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

pub(super) fn pointer<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| v.get(seg))
}

pub(super) fn set(v: &mut Value, path: &[String], value: Value) {
    let mut v = v;
    for seg in path {
        if !v.is_object() {
            *v = Value::Object(Default::default());
        }
        v = v
            .as_object_mut()
            .expect("just made an object")
            .entry(seg.clone())
            .or_insert(Value::Null);
    }
    *v = value;
}

/// Every index combination, last position fastest; one empty combination when there are no axes.
struct Odometer {
    sizes: Vec<usize>,
    next: Option<Vec<usize>>,
}

impl Odometer {
    fn new(sizes: Vec<usize>) -> Self {
        let next = (!sizes.contains(&0)).then(|| vec![0; sizes.len()]);
        Self { sizes, next }
    }
}

impl Iterator for Odometer {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let current = self.next.take()?;
        let mut n = current.clone();
        for i in (0..n.len()).rev() {
            n[i] += 1;
            if n[i] < self.sizes[i] {
                self.next = Some(n);
                break;
            }
            n[i] = 0;
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odometer_order() {
        let all: Vec<Vec<usize>> = Odometer::new(vec![2, 3]).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], [0, 0]);
        assert_eq!(all[1], [0, 1]);
        assert_eq!(all[3], [1, 0]);
        assert_eq!(Odometer::new(vec![]).count(), 1);
    }
}
