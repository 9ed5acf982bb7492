//! What must hold before two sides are compared row by row: a confusion-matrix
//! metric of a split with predictions, one test split, the same rows and
//! classes.

use super::{Loaded, Side};
use crate::report::flatten_config;
use crate::stats::ConfusionMetric;
use crate::store::Store;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Splits whose per-example predictions the store keeps.
const SPLITS: [&str; 2] = ["valid", "test"];

/// `(split, name)` of a metric given as `name` (test) or `split.name`.
///
/// # Errors
/// An empty name, or the train split (no predictions are kept for it).
pub(super) fn parse_metric(metric: &str) -> Result<(String, String)> {
    let metric = metric.trim();
    if metric.is_empty() {
        bail!("the metric is empty; expected a name such as macro_f1, accuracy or valid.accuracy");
    }
    match metric.split_once('.') {
        Some(("train", _)) => bail!(
            "`{metric}`: per-example predictions are kept for the valid and test splits only, \
             not train"
        ),
        Some((split, name)) if SPLITS.contains(&split) && !name.is_empty() => {
            Ok((split.to_string(), name.to_string()))
        }
        _ => Ok(("test".to_string(), metric.to_string())),
    }
}

/// The metric `name` as a function of the confusion matrix over `classes`.
///
/// # Errors
/// An unknown class in `f1.<class>` (the classes are listed), or a metric that
/// is not a function of the confusion matrix (`loss`, `roc_auc`).
pub(super) fn confusion_metric(
    name: &str,
    given: &str,
    classes: &[String],
) -> Result<ConfusionMetric> {
    if let Some(m) = ConfusionMetric::parse(name, classes) {
        return Ok(m);
    }
    if let Some((score, class)) = name.split_once('.') {
        if matches!(score, "f1" | "precision" | "recall") {
            bail!(
                "`{given}`: no class `{class}`; the classes are {}",
                classes.join(", ")
            );
        }
    }
    bail!(
        "`{given}` is not a function of the confusion matrix: lab diff compares accuracy, \
         macro_f1, macro_precision, macro_recall, weighted_f1, weighted_precision, \
         weighted_recall or f1/precision/recall.<class>"
    )
}

/// The test-split fingerprint both sides were scored on (`None` when a trial
/// recorded none: older trials, checked row by row instead).
///
/// # Errors
/// A side's trials, or A and B, were scored on different test splits; the
/// message names the data and preprocessing keys that differ.
pub(super) fn same_test_split(
    store: &Store,
    a: (&Side, &[i64]),
    b: (&Side, &[i64]),
) -> Result<Option<String>> {
    let of = |trials: &[i64]| -> Result<Vec<(i64, Option<String>)>> {
        trials
            .iter()
            .map(|&id| Ok((id, store.test_split(id)?)))
            .collect()
    };
    let (fa, fb) = (of(a.1)?, of(b.1)?);
    if fa.iter().chain(&fb).any(|(_, f)| f.is_none()) {
        return Ok(None);
    }
    for (side, prints) in [(a.0, &fa), (b.0, &fb)] {
        if let Some(other) = prints.iter().find(|(_, f)| *f != prints[0].1) {
            let keys = differing_keys(store, prints[0].0, other.0)?;
            let narrow = match keys.first() {
                Some((k, v, _)) if matches!(side, Side::Config(_)) => {
                    format!("; narrow it, e.g. `{side},{k}={v}`")
                }
                _ => String::new(),
            };
            bail!(
                "the trials of `{side}` were scored on different test splits: trial {} on {} and \
                 trial {} on {}{}{narrow}",
                prints[0].0,
                short(&prints[0].1),
                other.0,
                short(&other.1),
                blame(&keys)
            );
        }
    }
    let (x, y) = (&fa[0], &fb[0]);
    if x.1 != y.1 {
        bail!(
            "A (`{}`) and B (`{}`) were scored on different test splits (trial {} on {}, trial {} \
             on {}){}: their predictions cannot be paired row by row",
            a.0,
            b.0,
            x.0,
            short(&x.1),
            y.0,
            short(&y.1),
            blame(&differing_keys(store, x.0, y.0)?)
        );
    }
    Ok(x.1.clone())
}

/// The first 12 hex digits of a fingerprint.
fn short(fingerprint: &Option<String>) -> String {
    let f = fingerprint.as_deref().unwrap_or("?");
    f.chars().take(12).collect()
}

/// The data and preprocessing keys whose values differ between two trials,
/// with each trial's value (`-` where it has none).
fn differing_keys(store: &Store, x: i64, y: i64) -> Result<Vec<(String, String, String)>> {
    let config = |id: i64| -> Result<BTreeMap<String, String>> {
        let trial = store.trial(id)?;
        let value = trial
            .and_then(|t| serde_json::from_str(&t.config_json).ok())
            .unwrap_or_default();
        Ok(flatten_config(&value))
    };
    let (cx, cy) = (config(x)?, config(y)?);
    let keys: BTreeSet<&String> = cx.keys().chain(cy.keys()).collect();
    let value = |c: &BTreeMap<String, String>, k: &str| c.get(k).cloned().unwrap_or("-".into());
    Ok(keys
        .into_iter()
        .filter(|k| k.starts_with("data.") || k.starts_with("preprocess."))
        .filter(|k| cx.get(*k) != cy.get(*k))
        .map(|k| (k.clone(), value(&cx, k), value(&cy, k)))
        .collect())
}

/// "; they differ in data.limit (3000 vs 2000)", else what is left to blame.
fn blame(keys: &[(String, String, String)]) -> String {
    if keys.is_empty() {
        return "; their data settings are the same: the data file changed between them".into();
    }
    let each: Vec<String> = keys
        .iter()
        .map(|(k, x, y)| format!("{k} ({x} vs {y})"))
        .collect();
    format!("; they differ in {}", each.join(", "))
}

/// Every trial of both sides must hold the same rows, truth and classes.
///
/// # Errors
/// Two trials scored on different rows of `split`, or with different classes.
pub(super) fn same_rows(a: &Loaded, b: &Loaded, split: &str) -> Result<()> {
    let all: Vec<(i64, &crate::store::Predictions)> = [a, b]
        .iter()
        .flat_map(|s| s.summary.trials.iter().copied().zip(&s.predictions))
        .collect();
    let (first_id, first) = all[0];
    for &(id, p) in &all[1..] {
        if p.classes != first.classes {
            bail!(
                "trial {first_id} has {} classes and trial {id} {}: they cannot be compared",
                first.classes,
                p.classes
            );
        }
        if p.rows != first.rows || p.hashes != first.hashes || p.truth != first.truth {
            bail!(
                "trials {first_id} and {id} were scored on different {split} rows ({} and {} \
                 rows): their predictions cannot be paired row by row",
                first.len(),
                p.len()
            );
        }
    }
    Ok(())
}

/// Class names by index, from the confusion matrix A's first trial recorded
/// for `split` (indices as names when none was).
///
/// # Errors
/// The store cannot be read.
pub(super) fn labels(store: &Store, a: &Loaded, split: &str) -> Result<Vec<String>> {
    let k = a.predictions[0].classes;
    let recorded = store
        .confusion(a.summary.trials[0])?
        .into_iter()
        .find(|c| c.split == split)
        .map(|c| c.labels)
        .filter(|l| l.len() == k);
    Ok(recorded.unwrap_or_else(|| (0..k).map(|c| c.to_string()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_their_split() {
        let p = |s: &str| parse_metric(s).unwrap();
        assert_eq!(p("macro_f1"), ("test".into(), "macro_f1".into()));
        assert_eq!(p("valid.accuracy"), ("valid".into(), "accuracy".into()));
        assert_eq!(p("f1.positive"), ("test".into(), "f1.positive".into()));
        assert!(parse_metric("train.accuracy").is_err());
        assert!(parse_metric(" ").is_err());
    }

    #[test]
    fn only_confusion_metrics_are_taken() {
        let classes = vec!["negative".to_string(), "positive".to_string()];
        assert!(confusion_metric("accuracy", "accuracy", &classes).is_ok());
        let err = confusion_metric("loss", "loss", &classes).unwrap_err();
        assert!(err
            .to_string()
            .contains("not a function of the confusion matrix"));
        let err = confusion_metric("f1.neutral", "f1.neutral", &classes).unwrap_err();
        assert!(err.to_string().contains("no class `neutral`"), "{err}");
        assert!(err.to_string().contains("negative, positive"), "{err}");
    }
}
