//! One side of `lab diff`: a trial id, or a configuration (a filter over the
//! flattened config keys of an experiment's done trials), resolved to the done
//! trials whose predictions it pools.

use crate::report::flatten_config;
use crate::store::{ExperimentRow, Store, TrialStatus};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What a side of `lab diff` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// One trial, by id.
    Trial(i64),
    /// The done trials of an experiment whose flattened config (see
    /// `report::flatten_config`) has every `(key, value)`: a configuration's
    /// seeds.
    Config(Vec<(String, String)>),
}

impl Side {
    /// Parse `3` (a trial id) or `key=value[,key=value…]` (a configuration).
    ///
    /// # Errors
    /// Neither an integer nor a list of `key=value` pairs with non-empty keys
    /// and values, or a key given twice.
    pub fn parse(text: &str) -> Result<Side> {
        let text = text.trim();
        if let Ok(id) = text.parse::<i64>() {
            return Ok(Side::Trial(id));
        }
        if !text.contains('=') {
            bail!(
                "`{text}` is neither a trial id nor a configuration KEY=VALUE[,KEY=VALUE...] \
                 (e.g. model.cell=gru)"
            );
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in text.split(',') {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() || value.is_empty() {
                bail!("`{part}` in `{text}` is not KEY=VALUE (e.g. model.cell=gru)");
            }
            if pairs.iter().any(|(k, _)| k == key) {
                bail!("`{key}` is given twice in `{text}`");
            }
            pairs.push((key.to_string(), value.to_string()));
        }
        Ok(Side::Config(pairs))
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Side::Trial(id) => write!(f, "trial {id}"),
            Side::Config(pairs) => {
                let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                f.write_str(&text.join(","))
            }
        }
    }
}

/// The done trials a side names, in id order (one for a trial id).
///
/// # Errors
/// An unknown or unfinished trial; a configuration without an experiment, with
/// a key no trial has (the nearest is suggested), or that matches no done trial.
pub fn resolve(store: &Store, side: &Side, experiment: Option<&ExperimentRow>) -> Result<Vec<i64>> {
    match side {
        Side::Trial(id) => {
            let trial = store
                .trial(*id)?
                .with_context(|| format!("no trial {id} in {}", store.path().display()))?;
            if trial.status != TrialStatus::Done {
                bail!(
                    "trial {id} is {}, not done: it has no predictions to compare",
                    trial.status
                );
            }
            Ok(vec![*id])
        }
        Side::Config(pairs) => {
            let Some(experiment) = experiment else {
                bail!("the configuration `{side}` needs an experiment: add -e NAME");
            };
            matching(store, experiment, pairs, side)
        }
    }
}

/// The done trials of `experiment` whose config has every pair.
fn matching(
    store: &Store,
    experiment: &ExperimentRow,
    pairs: &[(String, String)],
    side: &Side,
) -> Result<Vec<i64>> {
    let trials: Vec<(i64, TrialStatus, BTreeMap<String, String>)> = store
        .readable_trials(experiment.id)?
        .into_iter()
        .filter_map(|t| {
            let value = serde_json::from_str(&t.config_json).ok()?;
            Some((t.id, t.status, flatten_config(&value)))
        })
        .collect();
    let name = &experiment.name;
    for (key, value) in pairs {
        check_pair(&trials, name, key, value)?;
    }
    let matches: Vec<&(i64, TrialStatus, _)> = trials
        .iter()
        .filter(|(_, _, config)| {
            pairs
                .iter()
                .all(|(k, v)| config.get(k).is_some_and(|c| same_value(c, v)))
        })
        .collect();
    let done: Vec<i64> = matches
        .iter()
        .filter(|(_, status, _)| *status == TrialStatus::Done)
        .map(|(id, _, _)| *id)
        .collect();
    if matches.is_empty() {
        bail!(
            "no trial of experiment `{name}` has {side}: each pair holds for some trial, not all together"
        );
    }
    if done.is_empty() {
        let which: Vec<String> = matches
            .iter()
            .map(|(id, status, _)| format!("{id} ({status})"))
            .collect();
        bail!(
            "`{side}` matches trials {} of experiment `{name}`, none done",
            which.join(", ")
        );
    }
    Ok(done)
}

/// One `key=value` must name a key the experiment's trials have and a value
/// one of them has.
fn check_pair(
    trials: &[(i64, TrialStatus, BTreeMap<String, String>)],
    experiment: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    let keys: BTreeSet<&str> = trials
        .iter()
        .flat_map(|(_, _, c)| c.keys().map(String::as_str))
        .collect();
    if !keys.contains(key) {
        let hint = crate::spec::nearest(key, keys.iter().copied())
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        bail!("unknown key `{key}`: no trial of experiment `{experiment}` has it{hint}");
    }
    let values: BTreeSet<&str> = trials
        .iter()
        .filter_map(|(_, _, c)| c.get(key).map(String::as_str))
        .collect();
    if !values.iter().any(|v| same_value(v, value)) {
        let hint = crate::spec::nearest(value, values.iter().copied())
            .map(|v| format!("; did you mean `{key}={v}`?"))
            .unwrap_or_default();
        let all: Vec<&str> = values.into_iter().collect();
        bail!(
            "no trial of experiment `{experiment}` has {key}={value} (its values: {}){hint}",
            all.join(", ")
        );
    }
    Ok(())
}

/// Whether a config value (as flattened) is the value asked for: the same
/// text, or the same number (`0.005` and `5e-3`).
fn same_value(config: &str, asked: &str) -> bool {
    if config == asked {
        return true;
    }
    match (config.parse::<f64>(), asked.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_parse_as_ids_or_filters() {
        assert_eq!(Side::parse("3").unwrap(), Side::Trial(3));
        assert_eq!(
            Side::parse("model.cell=gru, model.layers=2").unwrap(),
            Side::Config(vec![
                ("model.cell".into(), "gru".into()),
                ("model.layers".into(), "2".into())
            ])
        );
        assert_eq!(
            Side::parse("model.cell=gru,model.layers=2")
                .unwrap()
                .to_string(),
            "model.cell=gru,model.layers=2"
        );
        for bad in ["gru", "model.cell=", "=gru", "a=1,,b=2", "a=1,a=2", ""] {
            assert!(Side::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_match_by_value() {
        assert!(same_value("0.005", "5e-3"));
        assert!(same_value("gru", "gru"));
        assert!(!same_value("gru", "lstm"));
        assert!(!same_value("2", "3"));
    }
}
