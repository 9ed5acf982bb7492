//! Leaderboards: done trials grouped by config keys, mean ± sample std over seeds.

use super::flatten::flatten_config;
use crate::store::{ExperimentRow, StatusCounts, Store, Target, TrialRow, TrialStatus};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The split a bare metric name refers to.
const DEFAULT_SPLIT: &str = "test";
const SPLITS: [&str; 3] = ["train", "valid", "test"];
/// Value shown for a key that a trial's config lacks.
const MISSING: &str = "-";

/// What to rank by and how to group.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderboardOptions {
    /// Metric to rank by: a name on the test split ("macro_f1", "accuracy",
    /// "f1.positive") or "split.name" ("valid.loss"). Names "loss" and "*_loss"
    /// rank lower first, everything else higher first.
    pub metric: String,
    /// Dotted config keys to group by; None: the keys whose values differ among
    /// the experiment's trials (seed excluded).
    pub group_by: Option<Vec<String>>,
    /// Keep only the best `top` groups (per test split).
    pub top: Option<usize>,
    /// Intervals and paired tests (`report::leaderboards`).
    pub evidence: super::evidence::EvidenceOptions,
    /// Rank rows scored on different test splits together (`--allow-mixed-splits`).
    pub allow_mixed_splits: bool,
    /// Rank only the trials carrying this tag, on themselves or on their
    /// experiment (`--tag`); None: every trial.
    pub tag: Option<String>,
    /// Further tags every ranked trial must carry as well (a repeated
    /// `--tag`: all of them).
    pub more_tags: Vec<String>,
}

impl LeaderboardOptions {
    /// Every tag a ranked trial must carry: `tag` then `more_tags`.
    pub fn tags(&self) -> Vec<&str> {
        self.tag
            .iter()
            .chain(&self.more_tags)
            .map(String::as_str)
            .collect()
    }
}

impl Default for LeaderboardOptions {
    fn default() -> Self {
        Self {
            metric: "macro_f1".into(),
            group_by: None,
            top: None,
            evidence: Default::default(),
            allow_mixed_splits: false,
            tag: None,
            more_tags: Vec::new(),
        }
    }
}

/// Mean and sample standard deviation (n − 1; 0 when n = 1) of one statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Arithmetic mean over the trials that had a value.
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1).
    pub std: f64,
    /// How many trials had a value.
    pub n: usize,
}

impl Summary {
    /// None for no values.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n == 1 {
            0.0
        } else {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        };
        Some(Summary { mean, std, n })
    }
}

/// One group of done trials sharing the values of the grouping keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderboardRow {
    /// Values of `Leaderboard::group_by`, in that order.
    pub group: Vec<String>,
    /// Done trials (seeds) in the group.
    pub n: usize,
    /// Aligned with `Leaderboard::columns`; None where no trial recorded it.
    pub stats: Vec<Option<Summary>>,
    /// The group's trial with the best ranking metric (lowest id on ties).
    pub best_trial: i64,
    /// The group's done trials, by id.
    pub trials: Vec<i64>,
    /// Interval and verdict against the best row; `None` until computed.
    pub evidence: Option<super::evidence::Evidence>,
    /// The test-split fingerprint the row's trials share (`report::leaderboards`
    /// never pools trials of different test splits in one row); `None` from
    /// `leaderboard`, or for trials recorded without one.
    pub test_split: Option<String>,
}

/// A ranked table of groups, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// The experiment's name.
    pub experiment: String,
    /// Split and name of the ranking metric.
    pub split: String,
    /// Metric name within `split` (e.g. `macro_f1`, `f1.positive`, `loss`).
    pub metric: String,
    /// Rank ascending (losses) instead of descending.
    pub lower_is_better: bool,
    /// Config keys that define a group (the swept keys unless `--group-by` says).
    pub group_by: Vec<String>,
    /// Statistic names; `columns[0]` is the ranking metric, then test accuracy
    /// and macro_f1 (unless one of them is the ranking metric). Names on the
    /// test split are bare, others are "split.name".
    pub columns: Vec<String>,
    /// One row per group, best first.
    pub rows: Vec<LeaderboardRow>,
    /// Groups before `top` was applied.
    pub groups: usize,
    /// All trials of the experiment by status (for the footer).
    pub counts: StatusCounts,
    /// The test-split fingerprint every row's trials share (`stats::fingerprint`);
    /// `None` before `report::leaderboards` grouped the rows, or when they were
    /// ranked together across splits or recorded by an older lab.
    pub test_split: Option<String>,
    /// Why these rows are ranked apart from the experiment's other rows (they
    /// were scored on other test rows), or the warning of a mixed ranking.
    pub split_note: Option<String>,
    /// The methods behind the rows' evidence, for the lines under the table.
    pub evidence_note: Option<String>,
    /// The tags every ranked trial carries (`LeaderboardOptions::tags`);
    /// empty when the trials were not filtered. `counts` then counts the
    /// tagged trials only.
    pub tags: Vec<String>,
}

fn column_name(split: &str, name: &str) -> String {
    if split == DEFAULT_SPLIT {
        name.to_string()
    } else {
        format!("{split}.{name}")
    }
}

fn parse_metric(metric: &str) -> Result<(String, String)> {
    let metric = metric.trim();
    if metric.is_empty() {
        bail!("the leaderboard metric is empty; expected a name such as macro_f1 or valid.loss");
    }
    Ok(match metric.split_once('.') {
        Some((split, name)) if SPLITS.contains(&split) && !name.is_empty() => {
            (split.to_string(), name.to_string())
        }
        _ => (DEFAULT_SPLIT.to_string(), metric.to_string()),
    })
}

/// Build the leaderboard of one experiment from its done trials.
pub fn leaderboard(
    store: &Store,
    experiment: &ExperimentRow,
    opts: &LeaderboardOptions,
) -> Result<Leaderboard> {
    leaderboard_by_split(store, experiment, opts, None)
}

/// As [`leaderboard`]; with `split_of` (trial id -> test-split fingerprint), two
/// trials of one configuration on different test splits are two rows.
pub(super) fn leaderboard_by_split(
    store: &Store,
    experiment: &ExperimentRow,
    opts: &LeaderboardOptions,
    split_of: Option<&HashMap<i64, String>>,
) -> Result<Leaderboard> {
    let (split, metric) = parse_metric(&opts.metric)?;
    let lower_is_better = metric == "loss" || metric.ends_with("_loss");
    let mut trials = store.readable_trials(experiment.id)?;
    let tags = opts.tags();
    // None: every trial (none filtered, or the experiment has every tag).
    let keep = if tags.is_empty() {
        None
    } else {
        tagged_trials(store, experiment, &tags)?
    };
    if let Some(keep) = &keep {
        if keep.is_empty() {
            bail!(
                "no trial of experiment `{}` is tagged {}, nor is the experiment",
                experiment.name,
                tag_list(&tags)
            );
        }
        trials.retain(|t| keep.contains(&t.id));
    }
    let mut configs = Vec::with_capacity(trials.len());
    // One garbled row is skipped with a warning, not the whole experiment.
    trials.retain(|t| match serde_json::from_str::<serde_json::Value>(&t.config_json) {
        Ok(value) => {
            configs.push(flatten_config(&value));
            true
        }
        Err(e) => {
            tracing::warn!(
                "{}: trial {} of `{}` left out: its config (key `trials.config_json`) is not valid JSON: {e}",
                store.path().display(),
                t.id,
                experiment.name
            );
            false
        }
    });
    let group_by = match &opts.group_by {
        Some(keys) => {
            check_keys(keys, &configs)?;
            keys.clone()
        }
        None => differing_keys(&configs),
    };

    // (split, name) of each column, ranking metric first.
    let mut wanted = vec![(split.clone(), metric.clone())];
    for name in ["accuracy", "macro_f1"] {
        if !(split == DEFAULT_SPLIT && metric == name) {
            wanted.push((DEFAULT_SPLIT.to_string(), name.to_string()));
        }
    }
    let mut values: HashMap<(String, String, i64), f64> = HashMap::new();
    let splits: BTreeSet<&String> = wanted.iter().map(|(s, _)| s).collect();
    let mut recorded = BTreeSet::new();
    for s in splits {
        for m in store.experiment_metrics(experiment.id, s)? {
            if *s == split {
                recorded.insert(m.name.clone());
            }
            values.insert((s.clone(), m.name, m.trial_id), m.value);
        }
    }

    let mut groups: BTreeMap<(Vec<String>, Option<String>), Vec<i64>> = BTreeMap::new();
    for (t, config) in trials.iter().zip(&configs) {
        if t.status != TrialStatus::Done {
            continue;
        }
        let key = group_by
            .iter()
            .map(|k| config.get(k).cloned().unwrap_or_else(|| MISSING.into()))
            .collect();
        let split = split_of.and_then(|m| m.get(&t.id).cloned());
        groups.entry((key, split)).or_default().push(t.id);
    }
    if !groups.is_empty() && !recorded.contains(&metric) {
        bail!(
            "metric `{}` is not recorded for any done trial of experiment `{}` on the {split} split; recorded: {}",
            opts.metric,
            experiment.name,
            recorded.into_iter().collect::<Vec<_>>().join(", ")
        );
    }

    let mut rows: Vec<LeaderboardRow> = groups
        .into_iter()
        .map(|((group, test_split), ids)| {
            let stats = wanted
                .iter()
                .map(|(s, name)| {
                    let vals: Vec<f64> = ids
                        .iter()
                        .filter_map(|id| values.get(&(s.clone(), name.clone(), *id)).copied())
                        .collect();
                    Summary::of(&vals)
                })
                .collect();
            let score = |id: &i64| values.get(&(split.clone(), metric.clone(), *id)).copied();
            let best_trial = ids
                .iter()
                .copied()
                .min_by(|a, b| rank(score(a), score(b), lower_is_better).then(a.cmp(b)))
                .unwrap_or_default();
            LeaderboardRow {
                group,
                n: ids.len(),
                stats,
                best_trial,
                trials: ids,
                evidence: None,
                test_split,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        let mean = |r: &LeaderboardRow| r.stats[0].map(|s| s.mean);
        rank(mean(a), mean(b), lower_is_better).then(a.best_trial.cmp(&b.best_trial))
    });
    let total = rows.len();
    if let Some(top) = opts.top {
        rows.truncate(top);
    }
    Ok(Leaderboard {
        experiment: experiment.name.clone(),
        columns: wanted.iter().map(|(s, n)| column_name(s, n)).collect(),
        split,
        metric,
        lower_is_better,
        group_by,
        rows,
        groups: total,
        counts: if keep.is_some() {
            counts_of(store, &trials)?
        } else {
            store.status_counts(experiment.id)?
        },
        test_split: None,
        split_note: None,
        evidence_note: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    })
}

/// The ids of the experiment's trials that carry every one of `tags`, on
/// themselves or on the experiment; `None` when the experiment has every tag
/// (all its trials do). At most two queries.
///
/// # Errors
/// The store cannot be read.
pub(super) fn tagged_trials(
    store: &Store,
    experiment: &ExperimentRow,
    tags: &[&str],
) -> Result<Option<BTreeSet<i64>>> {
    let own = store.tags(Target::Experiment(experiment.id))?;
    let missing: Vec<&str> = tags
        .iter()
        .copied()
        .filter(|t| !own.iter().any(|o| o == t))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let of_trials = store.trial_tags(experiment.id)?;
    Ok(Some(
        of_trials
            .into_iter()
            .filter(|(_, have)| missing.iter().all(|t| have.iter().any(|h| h == t)))
            .map(|(id, _)| id)
            .collect(),
    ))
}

/// Tags for a message: "`a`", "`a` and `b`", "`a`, `b` and `c`".
pub(super) fn tag_list(tags: &[&str]) -> String {
    let quoted: Vec<String> = tags.iter().map(|t| format!("`{t}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Status counts of these trials; pruned ones by their last recorded epoch.
fn counts_of(store: &Store, trials: &[TrialRow]) -> Result<StatusCounts> {
    let mut counts = StatusCounts::default();
    for t in trials {
        counts.add(t.status, 1);
        if t.status == TrialStatus::Pruned {
            let epoch = store.epochs(t.id)?.last().map_or(0, |e| e.epoch);
            *counts.pruned_at.entry(epoch).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Better values first; missing values last.
fn rank(a: Option<f64>, b: Option<f64>, lower_is_better: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Some(a), Some(b)) if lower_is_better => a.total_cmp(&b),
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => Equal,
    }
}

/// Keys (seed excluded) whose value differs between trials; a missing key counts
/// as a value of its own.
fn differing_keys(configs: &[BTreeMap<String, String>]) -> Vec<String> {
    let all: BTreeSet<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    all.into_iter()
        .filter(|k| k.as_str() != "seed")
        .filter(|k| {
            let seen: BTreeSet<Option<&String>> = configs.iter().map(|c| c.get(*k)).collect();
            seen.len() > 1
        })
        .cloned()
        .collect()
}

fn check_keys(keys: &[String], configs: &[BTreeMap<String, String>]) -> Result<()> {
    if configs.is_empty() {
        return Ok(());
    }
    let all: BTreeSet<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    for key in keys {
        if !all.contains(key) {
            match crate::spec::nearest(key, all.iter().map(|k| k.as_str())) {
                Some(n) => bail!("group_by key `{key}` is not a config key (did you mean `{n}`?)"),
                None => bail!("group_by key `{key}` is not a config key"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_sample_std() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.mean, 2.5);
        assert!((s.std - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert_eq!(Summary::of(&[0.7]).unwrap().std, 0.0);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn metric_names_pick_their_split() {
        assert_eq!(
            parse_metric("macro_f1").unwrap(),
            ("test".into(), "macro_f1".into())
        );
        assert_eq!(
            parse_metric("valid.loss").unwrap(),
            ("valid".into(), "loss".into())
        );
        assert_eq!(
            parse_metric("f1.positive").unwrap(),
            ("test".into(), "f1.positive".into())
        );
        assert!(parse_metric(" ").is_err());
    }
}
