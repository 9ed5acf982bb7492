//! The evidence a leaderboard states for each row: an interval for the ranked
//! metric and what a paired test against the best row says.

use crate::stats::{self, Arm, ConfusionMetric};
use crate::store::{Predictions, Store};
use anyhow::Result;

/// How a row's interval was computed (`lab compare --ci`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CiMethod {
    /// No interval.
    None,
    /// A t-interval over the row's seeds (a bootstrap over test rows where it has
    /// one seed).
    Seeds,
    /// A percentile bootstrap over test rows of the seed-averaged metric.
    Bootstrap,
}

/// What the paired test of a row against the best row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// The best row itself.
    Best,
    /// Cannot be told apart from the best at the chosen alpha (Holm-corrected).
    Indistinguishable,
    /// Different from the best at the chosen alpha (Holm-corrected).
    Different,
    /// No paired test: too few test rows, no predictions, a metric that is not
    /// a function of the confusion matrix, or another test split than the best
    /// (`Evidence::reason` says which).
    NotTested,
}

/// One row's evidence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    /// The interval's bounds (low, high) for the ranked metric, in its units;
    /// `None` when not computed.
    pub interval: Option<(f64, f64)>,
    /// How `interval` was computed.
    pub method: CiMethod,
    /// The interval's confidence level, in (0, 1).
    pub level: f64,
    /// p-value of the paired test against the best row (unadjusted).
    pub p_value: Option<f64>,
    /// `p_value` after Holm's correction across the rows compared with the best.
    pub p_adjusted: Option<f64>,
    /// The verdict.
    pub mark: Mark,
    /// Why a row other than the best was not tested; `None` when it was.
    pub reason: Option<String>,
}

/// How much evidence `lab compare` computes, and at what levels.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceOptions {
    /// The interval to show (`--ci`).
    pub ci: CiMethod,
    /// The interval's confidence level, in (0, 1).
    pub level: f64,
    /// Family-wise error rate of the paired tests against the best row.
    pub alpha: f64,
    /// Bootstrap resamples (intervals and paired tests).
    pub resamples: usize,
    /// Seed of the resampling stream: the same store gives the same numbers.
    pub seed: u64,
}

impl Default for EvidenceOptions {
    fn default() -> Self {
        Self {
            ci: CiMethod::Seeds,
            level: 0.95,
            alpha: 0.05,
            resamples: stats::bootstrap::DEFAULT_RESAMPLES,
            seed: 0,
        }
    }
}

/// One row's predictions on the ranked split, one per seed, when every seed
/// has them.
struct RowPredictions {
    seeds: Vec<Predictions>,
}

impl RowPredictions {
    fn load(store: &Store, trials: &[i64], split: &str) -> Result<Option<RowPredictions>> {
        let mut seeds = Vec::with_capacity(trials.len());
        for &id in trials {
            match store.predictions(id, split) {
                Ok(Some(p)) => seeds.push(p),
                Ok(None) => return Ok(None),
                // One damaged blob costs its row the test, not the leaderboard.
                Err(e) => {
                    tracing::warn!(
                        "{}: trial {id}: {split} predictions left out: {e:#}",
                        store.path().display()
                    );
                    return Ok(None);
                }
            }
        }
        let key = |p: &Predictions| (p.rows.clone(), p.hashes.clone(), p.truth.clone(), p.classes);
        let first = seeds.first().map(key);
        let same = seeds.iter().all(|p| Some(key(p)) == first);
        Ok((same && !seeds.is_empty()).then_some(RowPredictions { seeds }))
    }

    fn preds(&self) -> Vec<&[u16]> {
        self.seeds.iter().map(|p| p.predicted.as_slice()).collect()
    }

    fn truth(&self) -> &[u16] {
        &self.seeds[0].truth
    }

    fn classes(&self) -> usize {
        self.seeds[0].classes
    }
}

/// Fill `board.rows[..].evidence` and `board.evidence_note`: each row's
/// interval (`opts.ci`) and the paired test of each row against the best
/// (`rows[0]`), Holm-corrected across the rows shown. The board's rows must
/// share one test split (see `report::leaderboards`).
///
/// A damaged predictions blob leaves its row untested, with a warning.
///
/// # Errors
/// The store cannot be read.
pub fn assess(store: &Store, board: &mut super::Leaderboard, opts: &EvidenceOptions) -> Result<()> {
    let metric = confusion_metric(store, board)?;
    let mut loaded = Vec::with_capacity(board.rows.len());
    if board.split != "train" {
        for row in &board.rows {
            loaded.push(RowPredictions::load(store, &row.trials, &board.split)?);
        }
    } else {
        loaded.resize_with(board.rows.len(), || None);
    }
    let tests = paired_tests(&loaded, metric, opts);
    let adjusted = holm_of(&tests);
    let range = metric_range(&board.metric, metric);
    let reasons = untested_reasons(board, &loaded, metric);
    for (i, row) in board.rows.iter_mut().enumerate() {
        let (interval, method) = interval(row, loaded[i].as_ref(), metric, opts);
        let interval = interval.map(|(lo, hi)| (lo.max(range.0), hi.min(range.1)));
        let p_value = tests[i].map(|t| t.p_value);
        let mark = match (i, adjusted[i]) {
            (0, _) => Mark::Best,
            (_, Some(p)) if p < opts.alpha => Mark::Different,
            (_, Some(_)) => Mark::Indistinguishable,
            (_, None) => Mark::NotTested,
        };
        row.evidence = Some(Evidence {
            interval,
            method,
            level: opts.level,
            p_value,
            p_adjusted: adjusted[i],
            mark,
            reason: if i == 0 || tests[i].is_some() {
                None
            } else {
                Some(reasons[i].clone())
            },
        });
    }
    let ran = tests.iter().flatten().count();
    board.evidence_note = Some(note(board, metric, &loaded, ran, opts));
    Ok(())
}

/// The range an interval is clipped to: [0, 1] for rates and scores, [0, ∞)
/// for losses and counts; a t interval over 2 seeds can reach far outside.
fn metric_range(name: &str, metric: Option<ConfusionMetric>) -> (f64, f64) {
    if metric.is_some() || name == "roc_auc" || name == "average_precision" {
        (0.0, 1.0)
    } else if name == "loss" || name.ends_with("_loss") || name.starts_with("support.") {
        (0.0, f64::INFINITY)
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    }
}

/// Why row i would get no paired test against row 0 (used where none ran).
fn untested_reasons(
    board: &super::Leaderboard,
    loaded: &[Option<RowPredictions>],
    metric: Option<ConfusionMetric>,
) -> Vec<String> {
    let best = loaded.first().and_then(|r| r.as_ref());
    board
        .rows
        .iter()
        .zip(loaded)
        .map(|(row, r)| {
            if metric.is_none() {
                format!("`{}` has no paired test (not a function of the confusion matrix)", board.metric)
            } else if row.test_split != board.rows[0].test_split {
                "scored on other test rows than the best".into()
            } else if let (Some(r), Some(b)) = (r, best) {
                if r.seeds[0].rows != b.seeds[0].rows || r.seeds[0].hashes != b.seeds[0].hashes {
                    "scored on other test rows than the best".into()
                } else {
                    format!("fewer than {} test rows", stats::MIN_TEST_ROWS)
                }
            } else {
                "no per-example predictions for this row or the best (a damaged blob, or an older lab)".into()
            }
        })
        .collect()
}

/// The ranked metric as a function of the confusion matrix, when it is one.
fn confusion_metric(store: &Store, board: &super::Leaderboard) -> Result<Option<ConfusionMetric>> {
    let Some(row) = board.rows.first() else {
        return Ok(None);
    };
    let labels = store
        .confusion(row.best_trial)?
        .into_iter()
        .find(|c| c.split == board.split)
        .map(|c| c.labels)
        .unwrap_or_default();
    Ok(ConfusionMetric::parse(&board.metric, &labels))
}

/// The paired bootstrap of every row against row 0 (None for row 0 and where
/// there is nothing to pair).
fn paired_tests(
    loaded: &[Option<RowPredictions>],
    metric: Option<ConfusionMetric>,
    opts: &EvidenceOptions,
) -> Vec<Option<stats::PairedTest>> {
    let (Some(metric), Some(Some(best))) = (metric, loaded.first()) else {
        return vec![None; loaded.len()];
    };
    let best_preds = best.preds();
    let best_arm = Arm {
        truth: best.truth(),
        preds: &best_preds,
    };
    let mut out = vec![None];
    for row in &loaded[1..] {
        out.push(row.as_ref().and_then(|r| {
            let preds = r.preds();
            let arm = Arm {
                truth: r.truth(),
                preds: &preds,
            };
            // Only rows scored on the very same test rows pair up.
            let (a, b) = (&r.seeds[0], &best.seeds[0]);
            if a.classes != b.classes || a.rows != b.rows || a.hashes != b.hashes {
                return None;
            }
            stats::paired_bootstrap(
                arm,
                best_arm,
                r.classes(),
                metric,
                opts.level,
                opts.resamples,
                opts.seed,
            )
        }));
    }
    out
}

/// Holm-adjusted p-values of the tests that ran, in row order.
fn holm_of(tests: &[Option<stats::PairedTest>]) -> Vec<Option<f64>> {
    let ran: Vec<f64> = tests.iter().flatten().map(|t| t.p_value).collect();
    let mut adjusted = stats::holm(&ran).into_iter();
    tests
        .iter()
        .map(|t| t.and_then(|_| adjusted.next()))
        .collect()
}

/// A row's interval and how it was computed: t over seeds where there are
/// two or more (`--ci seeds`), else the row bootstrap where predictions allow.
fn interval(
    row: &super::LeaderboardRow,
    loaded: Option<&RowPredictions>,
    metric: Option<ConfusionMetric>,
    opts: &EvidenceOptions,
) -> (Option<(f64, f64)>, CiMethod) {
    let seeds = row.stats[0].and_then(|s| stats::t_interval(s.mean, s.std, s.n, opts.level));
    if opts.ci == CiMethod::None {
        return (None, CiMethod::None);
    }
    if opts.ci == CiMethod::Seeds {
        if let Some(i) = seeds {
            return (Some((i.low, i.high)), CiMethod::Seeds);
        }
    }
    let boot = loaded.zip(metric).and_then(|(r, m)| {
        let preds = r.preds();
        let arm = Arm {
            truth: r.truth(),
            preds: &preds,
        };
        // The same resamples for every row: twins get the same interval.
        stats::bootstrap_interval(arm, r.classes(), m, opts.level, opts.resamples, opts.seed)
    });
    match (boot, seeds) {
        (Some(i), _) => (Some((i.low, i.high)), CiMethod::Bootstrap),
        // Asked for a bootstrap the metric or the store cannot give: seeds.
        (None, Some(i)) => (Some((i.low, i.high)), CiMethod::Seeds),
        (None, None) => (None, opts.ci),
    }
}

/// The sentence under the table that states the methods.
fn note(
    board: &super::Leaderboard,
    metric: Option<ConfusionMetric>,
    loaded: &[Option<RowPredictions>],
    ran: usize,
    opts: &EvidenceOptions,
) -> String {
    let pct = opts.level * 100.0;
    let used: Vec<CiMethod> = board
        .rows
        .iter()
        .filter_map(|r| {
            r.evidence
                .as_ref()
                .filter(|e| e.interval.is_some())
                .map(|e| e.method)
        })
        .collect();
    let (seeds, boot) = (
        used.contains(&CiMethod::Seeds),
        used.contains(&CiMethod::Bootstrap),
    );
    let t = "Student t over seeds";
    let b = format!(
        "a percentile bootstrap over {} rows of the seed-averaged metric ({} resamples)",
        board.split, opts.resamples
    );
    let ci = match (opts.ci, seeds, boot) {
        (CiMethod::None, ..) => "no interval (--ci none)".to_string(),
        (_, false, false) => {
            "no interval: one seed per row and no bootstrap for this metric".into()
        }
        (_, true, false) => format!("{pct:.0}% CI: {t}"),
        (_, false, true) => format!("{pct:.0}% CI: {b}"),
        (_, true, true) => format!("{pct:.0}% CI: {t} where a row has 2 or more, else {b}"),
    };
    let ci = if opts.ci == CiMethod::Bootstrap && seeds {
        format!(
            "{ci} (`{}` cannot be bootstrapped: seeds instead)",
            board.metric
        )
    } else {
        ci
    };
    let rows = loaded
        .first()
        .and_then(|r| r.as_ref())
        .map(|r| r.truth().len());
    let test = match (metric, rows) {
        _ if board.rows.len() < 2 => "one row: nothing to compare".to_string(),
        (None, _) => format!(
            "vs best: no paired test for `{}` (only confusion-matrix metrics such as accuracy, macro_f1, f1.<class>)",
            board.metric
        ),
        (Some(_), None) => "vs best: no per-example predictions for the best row (a damaged blob, or an older lab)".into(),
        (Some(_), Some(n)) if n < stats::MIN_TEST_ROWS => format!(
            "vs best: too few {} rows ({n} < {}) for a paired test",
            board.split,
            stats::MIN_TEST_ROWS
        ),
        (Some(_), Some(n)) => format!(
            "vs best: paired bootstrap of the difference over {n} {} rows (seeds averaged), {} resamples, Holm-corrected across {}, alpha {}; ≈ = cannot be told apart from the best",
            board.split,
            opts.resamples,
            plural(ran, "row tested", "rows tested"),
            opts.alpha
        ),
    };
    format!("{ci}\n{test}")
}

/// "1 row tested", "3 rows tested".
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
