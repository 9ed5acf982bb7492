//! `[search]`: its checks at load time, and its parameters resolved against
//! the types of the fields they set, so a sampler only maps numbers to values.

use super::config::{Distribution, Mode, Spec, Strategy, TrialConfig};
use super::grid::{display, pointer, set, to_json};
use super::schema::Schema;
use super::validate;
use super::Problem;
use serde_json::Value;
use std::path::Path;

/// A `when` condition: the key path and the value it must hold.
pub type Condition = (Vec<String>, Value);

/// One searched parameter, checked and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its dotted key, e.g. `train.lr`.
    pub key: String,
    /// `key` split at the dots.
    pub path: Vec<String>,
    /// Its distribution.
    pub kind: ParamKind,
    /// Conditions `(key path, value)` that must all hold in a configuration
    /// for the parameter to be set there (`when`); empty when unconditional.
    pub when: Vec<Condition>,
}

/// A parameter's distribution, its values typed as the field's.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    /// Uniform on `[low, high]`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Uniform in `ln x` on `[low, high]`, `0 < low`.
    LogUniform {
        /// Lower bound, above 0.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// A whole number in `[low, high]`, both included.
    Int {
        /// Smallest value.
        low: i64,
        /// Largest value.
        high: i64,
    },
    /// One of these values (JSON as in a trial's config).
    Choice(Vec<Value>),
}

impl ParamKind {
    /// The number of distinct values, `None` for a continuous distribution.
    pub fn cardinality(&self) -> Option<u64> {
        match self {
            Self::Int { low, high } => Some(high.abs_diff(*low).saturating_add(1)),
            Self::Choice(values) => Some(values.len() as u64),
            Self::Uniform { .. } | Self::LogUniform { .. } => None,
        }
    }
}

impl Param {
    /// Whether the parameter applies to `config` (a trial config as JSON).
    pub fn active_in(&self, config: &Value) -> bool {
        self.when
            .iter()
            .all(|(path, value)| pointer(config, path) == Some(value))
    }

    /// The parameter's value in `config`, if the key is set there.
    pub fn value_in<'a>(&self, config: &'a Value) -> Option<&'a Value> {
        pointer(config, &self.path)
    }
}

/// The `[search]` section of a spec's text as the store records it (without
/// the `--set` and environment layers of its run), for readers that have no
/// spec file: a queue worker's pruner, the report. `None` when it has none or
/// it does not read.
pub fn recorded_search(spec_toml: &str) -> Option<super::config::SearchSection> {
    let table: toml::Table = toml::from_str(spec_toml).ok()?;
    table.get("search")?.clone().try_into().ok()
}

/// How many configurations `[search]` proposes: `trials`, or for a grid the
/// product of the parameters' sizes. 1 without `[search]`; `None` on overflow.
pub(crate) fn configurations(spec: &Spec) -> Option<usize> {
    let Some(search) = &spec.search else {
        return Some(1);
    };
    if search.strategy != Strategy::Grid {
        return Some(search.trials.unwrap_or(0));
    }
    search.space.values().try_fold(1usize, |n, d| {
        let size = match (&d.choice, d.int) {
            (Some(values), _) => values.len(),
            (None, Some([low, high])) => {
                usize::try_from(high.abs_diff(low)).ok()?.checked_add(1)?
            }
            _ => 1,
        };
        n.checked_mul(size)
    })
}

/// Check `spec.search` against the fixed configuration `fixed` and return its
/// parameters (none without `[search]`).
///
/// # Errors
/// The first problem, at its key: a missing budget, an unknown or unsweepable
/// key, a key both swept and searched, not exactly one distribution, bounds
/// out of order, a distribution that does not fit the field's type, a value
/// the field refuses, a `when` on an unknown key, a pruner out of range.
pub(crate) fn resolve(
    spec: &Spec,
    fixed: &TrialConfig,
    base_dir: &Path,
) -> Result<Vec<Param>, Problem> {
    let Some(search) = &spec.search else {
        return Ok(Vec::new());
    };
    let grid = search.strategy == Strategy::Grid;
    match search.trials {
        None if !grid => {
            return Err(Problem::at_key(
                "search",
                format!(
                    "missing `trials`: how many configurations should the {} search try? (e.g. trials = 40)",
                    search.strategy.name()
                ),
            ))
        }
        Some(_) if grid => {
            return Err(Problem::at_key(
                "search.trials",
                "a grid search tries every combination; remove `trials` or choose \
                 strategy \"random\", \"sobol\" or \"tpe\""
                    .into(),
            ))
        }
        Some(0) => {
            return Err(Problem::at_key(
                "search.trials",
                "must be at least 1".into(),
            ))
        }
        _ => {}
    }
    if let Some(mode) = search.objective.mode {
        let metric = search.objective.metric;
        if mode != metric.mode() {
            let want = if metric.mode() == Mode::Max {
                "max"
            } else {
                "min"
            };
            return Err(Problem::at_key(
                "search.objective.mode",
                format!(
                    "{} improves towards {want}; set mode = \"{want}\" or leave it out",
                    metric.name()
                ),
            ));
        }
    }
    pruner(spec)?;
    if search.space.is_empty() {
        return Err(Problem::at_key(
            "search.space",
            "names no parameter; add one, e.g. \"train.lr\" = { loguniform = [1e-4, 1e-2] }".into(),
        ));
    }
    let base = serde_json::to_value(fixed).expect("trial configs serialize to JSON");
    let schema = Schema::new();
    search
        .space
        .iter()
        .map(|(key, d)| param(&schema, spec, &base, base_dir, key, d, grid))
        .collect()
}

fn pruner(spec: &Spec) -> Result<(), Problem> {
    let Some(p) = spec.search.as_ref().and_then(|s| s.pruner.as_ref()) else {
        return Ok(());
    };
    if p.min_epochs == 0 {
        return Err(Problem::at_key(
            "search.pruner.min_epochs",
            "must be at least 1".into(),
        ));
    }
    if p.reduction < 2 {
        return Err(Problem::at_key(
            "search.pruner.reduction",
            "must be at least 2".into(),
        ));
    }
    Ok(())
}

fn param(
    schema: &Schema,
    spec: &Spec,
    base: &Value,
    base_dir: &Path,
    key: &str,
    d: &Distribution,
    grid: bool,
) -> Result<Param, Problem> {
    let at = |sub: &[&str]| {
        let mut p = vec!["search".to_string(), "space".into(), key.to_string()];
        p.extend(sub.iter().filter(|s| !s.is_empty()).map(|s| s.to_string()));
        p
    };
    schema.check_axis(key).map_err(|(msg, suggestion)| {
        Problem::new(
            at(&[]),
            msg.replace("sweepable key", "searchable key")
                .replace("an axis", "a parameter"),
        )
        .suggest(suggestion)
    })?;
    if spec.sweep.contains_key(key) {
        return Err(Problem::new(
            at(&[]),
            format!("`{key}` is also a [sweep] axis; a key is either swept or searched"),
        ));
    }
    let path: Vec<String> = key.split('.').map(String::from).collect();
    let kind = kind(d).map_err(|(sub, msg)| Problem::new(at(&[sub]), msg))?;
    if grid
        && matches!(
            kind,
            ParamKind::Uniform { .. } | ParamKind::LogUniform { .. }
        )
    {
        return Err(Problem::new(
            at(&[]),
            "a grid search needs a finite parameter: use `choice` or `int`, or strategy \"random\", \"sobol\" or \"tpe\"".into(),
        ));
    }
    let integer_field = pointer(base, &path).is_some_and(|v| v.is_u64() || v.is_i64());
    if integer_field
        && matches!(
            kind,
            ParamKind::Uniform { .. } | ParamKind::LogUniform { .. }
        )
    {
        return Err(Problem::new(
            at(&[]),
            format!("`{key}` is a whole number; use int = [low, high] or choice = [...]"),
        ));
    }
    let kind = typed(kind, base, &path, key).map_err(|(sub, msg)| Problem::new(at(&[sub]), msg))?;
    for end in ends(&kind) {
        let mut json = base.clone();
        set(&mut json, &path, end.clone());
        check_point(json, base_dir)
            .map_err(|m| Problem::new(at(&[]), format!("{key} = {}: {m}", display(&end))))?;
    }
    let when = match &d.when {
        Some(_) if grid => {
            return Err(Problem::new(
                at(&["when"]),
                "a grid cannot skip values conditionally; use strategy \"random\", \"sobol\" or \"tpe\"".into(),
            ))
        }
        Some(map) => conditions(schema, base, map).map_err(|(msg, s)| Problem::new(at(&["when"]), msg).suggest(s))?,
        None => Vec::new(),
    };
    Ok(Param {
        key: key.to_string(),
        path,
        kind,
        when,
    })
}

/// The one distribution `d` names, or which key is wrong and why.
fn kind(d: &Distribution) -> Result<ParamKind, (&'static str, String)> {
    let named = [
        d.uniform.is_some(),
        d.loguniform.is_some(),
        d.int.is_some(),
        d.choice.is_some(),
    ];
    if named.iter().filter(|&&b| b).count() != 1 {
        return Err(("", "needs exactly one of uniform = [low, high], loguniform = [low, high], int = [low, high], choice = [...]".into()));
    }
    let ordered = |which: &'static str, [low, high]: [f64; 2]| {
        if !(low.is_finite() && high.is_finite()) {
            return Err((which, "bounds must be finite numbers".to_string()));
        }
        if low >= high {
            return Err((
                which,
                format!("bounds out of order: low {low} must be below high {high}"),
            ));
        }
        Ok((low, high))
    };
    if let Some(b) = d.uniform {
        let (low, high) = ordered("uniform", b)?;
        return Ok(ParamKind::Uniform { low, high });
    }
    if let Some(b) = d.loguniform {
        let (low, high) = ordered("loguniform", b)?;
        if low <= 0.0 {
            return Err((
                "loguniform",
                format!("low must be above 0 (a logarithm is taken), found {low}"),
            ));
        }
        return Ok(ParamKind::LogUniform { low, high });
    }
    if let Some([low, high]) = d.int {
        if low > high {
            return Err((
                "int",
                format!("bounds out of order: low {low} must not exceed high {high}"),
            ));
        }
        return Ok(ParamKind::Int { low, high });
    }
    let values = d.choice.as_deref().unwrap_or_default();
    if values.is_empty() {
        return Err(("choice", "needs at least one value".into()));
    }
    Ok(ParamKind::Choice(values.iter().map(to_json).collect()))
}

/// Choice values as the field's type (e.g. `64` for a whole number); a value
/// listed twice is refused.
fn typed(
    kind: ParamKind,
    base: &Value,
    path: &[String],
    key: &str,
) -> Result<ParamKind, (&'static str, String)> {
    let ParamKind::Choice(values) = kind else {
        return Ok(kind);
    };
    let mut out: Vec<Value> = Vec::with_capacity(values.len());
    for v in values {
        let field = field_value(base, path, v.clone())
            .map_err(|e| ("choice", format!("{key} = {}: {e}", display(&v))))?;
        if out.contains(&field) {
            return Err(("choice", format!("value {} is listed twice", display(&v))));
        }
        out.push(field);
    }
    Ok(ParamKind::Choice(out))
}

/// `value` put at `path` in `base`, read back as the typed config has it.
fn field_value(base: &Value, path: &[String], value: Value) -> Result<Value, String> {
    let mut json = base.clone();
    set(&mut json, path, value);
    let typed: TrialConfig = serde_json::from_value(json).map_err(|e| e.to_string())?;
    let typed = serde_json::to_value(typed).expect("trial configs serialize to JSON");
    Ok(pointer(&typed, path).cloned().unwrap_or(Value::Null))
}

/// The values a parameter's range is checked at: its ends, or every choice.
fn ends(kind: &ParamKind) -> Vec<Value> {
    match kind {
        ParamKind::Uniform { low, high } | ParamKind::LogUniform { low, high } => {
            vec![Value::from(*low), Value::from(*high)]
        }
        ParamKind::Int { low, high } => vec![Value::from(*low), Value::from(*high)],
        ParamKind::Choice(values) => values.clone(),
    }
}

fn check_point(json: Value, base_dir: &Path) -> Result<(), String> {
    let trial: TrialConfig = serde_json::from_value(json).map_err(|e| e.to_string())?;
    validate::trial(&trial, base_dir).map_err(|p| p.message)
}

fn conditions(
    schema: &Schema,
    base: &Value,
    map: &std::collections::BTreeMap<String, toml::Value>,
) -> Result<Vec<Condition>, (String, Option<String>)> {
    let mut out = Vec::new();
    for (key, raw) in map {
        schema.check_axis(key).map_err(|(_, s)| {
            let why = "a condition tests a dotted key of data, preprocess, model or train";
            (
                format!("`{key}` is not a key a condition can test: {why}"),
                s,
            )
        })?;
        let path: Vec<String> = key.split('.').map(String::from).collect();
        let value = field_value(base, &path, to_json(raw))
            .map_err(|e| (format!("`{key}` = {raw}: {e}"), None))?;
        out.push((path, value));
    }
    Ok(out)
}

/// `base` with `values[i]` set for every parameter `params[i]` that applies:
/// the unconditional ones first, then each conditional one whose `when` holds
/// in the result. `values` holds one value per parameter, in order.
///
/// # Errors
/// The configuration does not deserialize or validate (a value the field refuses).
pub fn apply(
    base: &TrialConfig,
    params: &[Param],
    values: &[Value],
    base_dir: &Path,
) -> Result<TrialConfig, String> {
    let mut json = serde_json::to_value(base).expect("trial configs serialize to JSON");
    for (p, v) in params.iter().zip(values).filter(|(p, _)| p.when.is_empty()) {
        set(&mut json, &p.path, v.clone());
    }
    let conditional: Vec<(&Param, &Value)> = params
        .iter()
        .zip(values)
        .filter(|(p, _)| !p.when.is_empty())
        .collect();
    let active: Vec<bool> = conditional
        .iter()
        .map(|(p, _)| p.active_in(&json))
        .collect();
    for ((p, v), on) in conditional.into_iter().zip(active) {
        if on {
            set(&mut json, &p.path, v.clone());
        }
    }
    let trial: TrialConfig = serde_json::from_value(json).map_err(|e| e.to_string())?;
    validate::trial(&trial, base_dir)
        .map_err(|p| format!("{}: {}", p.path.join("."), p.message))?;
    Ok(trial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::config::Optimizer;

    fn spec_with(space: &str) -> Spec {
        let text = format!("[search]\ntrials = 3\n[search.space]\n{space}\n");
        let table: toml::Table = toml::from_str(&text).unwrap();
        Spec {
            search: Some(table["search"].clone().try_into().unwrap()),
            ..Default::default()
        }
    }

    fn fixed(spec: &Spec) -> TrialConfig {
        let mut t = super::super::grid::fixed(spec);
        t.data.path = "data.csv".into();
        t
    }

    #[test]
    fn choice_values_take_the_field_type_and_conditions_apply() {
        let spec = spec_with(
            "\"model.hidden\" = { choice = [32, 64] }\n\
             \"train.momentum\" = { uniform = [0.8, 0.99], when = { \"train.optimizer\" = \"sgd\" } }\n\
             \"train.optimizer\" = { choice = [\"adam\", \"sgd\"] }",
        );
        let base = fixed(&spec);
        let params = resolve(&spec, &base, Path::new(".")).unwrap();
        let keys: Vec<&str> = params.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["model.hidden", "train.momentum", "train.optimizer"]);
        assert_eq!(
            params[0].kind,
            ParamKind::Choice(vec![Value::from(32), Value::from(64)])
        );
        let values = |opt: &str| vec![Value::from(64), Value::from(0.9), Value::from(opt)];
        let sgd = apply(&base, &params, &values("sgd"), Path::new(".")).unwrap();
        assert_eq!(
            (sgd.model.hidden, sgd.train.optimizer),
            (64, Optimizer::Sgd)
        );
        assert_eq!(sgd.train.momentum, 0.9);
        let adam = apply(&base, &params, &values("adam"), Path::new(".")).unwrap();
        assert_eq!(
            adam.train.momentum, base.train.momentum,
            "momentum applies to sgd only"
        );
    }

    #[test]
    fn problems_name_the_parameter() {
        let cases = [
            ("\"train.lr\" = { uniform = [0.2, 0.1] }", "out of order"),
            ("\"train.lr\" = { loguniform = [0.0, 0.1] }", "above 0"),
            (
                "\"model.layers\" = { uniform = [1.0, 3.0] }",
                "whole number",
            ),
            (
                "\"model.cell\" = { choice = [\"lstm\", \"lstm\"] }",
                "listed twice",
            ),
            ("\"model.cell\" = { choice = [\"lstn\"] }", "model.cell"),
            ("\"experiment.seeds\" = { int = [1, 2] }", "experiment"),
        ];
        for (space, expected) in cases {
            let spec = spec_with(space);
            let err = resolve(&spec, &fixed(&spec), Path::new(".")).unwrap_err();
            assert_eq!(err.path[..2], ["search", "space"], "{space}");
            assert!(err.message.contains(expected), "{space}: {}", err.message);
        }
    }
}
