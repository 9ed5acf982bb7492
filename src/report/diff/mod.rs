//! `lab diff A B`: two trials or two configurations on the same test rows —
//! their metrics, the paired bootstrap of the difference, how their predictions
//! agree with the truth, and the rows where they disagree.

mod checks;
mod render;
mod side;
mod texts;

pub use render::render_diff;
pub use side::{resolve, Side};

use crate::stats::{self, Arm, ConfusionMetric, Contingency, PairedTest};
use crate::store::{ExperimentRow, Predictions, Store};
use anyhow::Result;
use serde::Serialize;

/// What `lab diff` computes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffOptions {
    /// A confusion-matrix metric on the test split (`macro_f1`, `accuracy`,
    /// `f1.<class>`, ...) or on the valid split (`valid.accuracy`).
    pub metric: String,
    /// Bootstrap resamples of the paired test.
    pub resamples: usize,
    /// How many disagreeing rows to list (the first ones, in split order).
    pub show: usize,
    /// Confidence level of the difference's interval, in (0, 1).
    pub level: f64,
    /// Seed of the resampling stream: the same store gives the same numbers.
    pub seed: u64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            metric: "macro_f1".into(),
            resamples: stats::bootstrap::DEFAULT_RESAMPLES,
            show: 10,
            level: 0.95,
            seed: 0,
        }
    }
}

/// One side as compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideSummary {
    /// The side as given: `trial 3`, or the configuration `model.cell=gru`.
    pub name: String,
    /// Its done trials (its seeds), in id order.
    pub trials: Vec<i64>,
    /// The metric averaged over its seeds, recomputed from the predictions.
    pub metric: f64,
    /// The metric of each trial, in `trials` order.
    pub seeds: Vec<f64>,
}

/// A row where A and B predict different classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    /// The row's record index in the data file (0 = first data record).
    pub row: u32,
    /// Its true class.
    pub truth: String,
    /// A's predicted class.
    pub a: String,
    /// A's probability of that class (seed-averaged for a configuration).
    pub a_probability: f32,
    /// B's predicted class.
    pub b: String,
    /// B's probability of that class (seed-averaged for a configuration).
    pub b_probability: f32,
    /// The text as read from the data file; `None` when it cannot be read back
    /// as it was scored (see `Diff::notes`).
    pub text: Option<String>,
}

/// What `lab diff A B` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// The metric as asked for (`macro_f1`, `valid.accuracy`).
    pub metric: String,
    /// The split compared: `test` or `valid`.
    pub split: String,
    /// Rows of the split (n), the same for both sides.
    pub rows: usize,
    /// Class names by class index.
    pub classes: Vec<String>,
    /// The test split's fingerprint, when recorded.
    pub test_split: Option<String>,
    /// Side A.
    pub a: SideSummary,
    /// Side B.
    pub b: SideSummary,
    /// `a.metric − b.metric`.
    pub difference: f64,
    /// Confidence level of `paired`'s interval, in (0, 1).
    pub level: f64,
    /// The paired bootstrap of the difference; `None` with fewer than
    /// `stats::MIN_TEST_ROWS` rows.
    pub paired: Option<PairedTest>,
    /// How A's and B's predictions agree with the truth, over all rows.
    pub contingency: Contingency,
    /// McNemar's exact p-value (accuracy), when both sides are single trials.
    pub mcnemar_p: Option<f64>,
    /// Whether a side pools seeds: its prediction (contingency table,
    /// disagreements) is then the argmax of its seed-averaged probabilities.
    pub pooled: bool,
    /// Rows where A and B predict different classes (all of them).
    pub disagreeing: usize,
    /// The first `DiffOptions::show` of them, in split order.
    pub disagreements: Vec<Disagreement>,
    /// How the numbers were computed, and what could not be shown.
    pub notes: Vec<String>,
}

/// One side's trials with their predictions on the compared split.
struct Loaded {
    summary: SideSummary,
    predictions: Vec<Predictions>,
}

/// Compare `a` with `b` on the split of `opts.metric`. Configurations are
/// matched against the done trials of `experiment`.
///
/// # Errors
/// A side that names no done trial (see [`resolve`]); a metric that is not a
/// confusion-matrix metric of the valid or test split; trials without recorded
/// predictions; sides scored on different test splits or rows; the store
/// cannot be read.
pub fn diff(
    store: &Store,
    a: &Side,
    b: &Side,
    experiment: Option<&ExperimentRow>,
    opts: &DiffOptions,
) -> Result<Diff> {
    let (split, name) = checks::parse_metric(&opts.metric)?;
    let (trials_a, trials_b) = (
        resolve(store, a, experiment)?,
        resolve(store, b, experiment)?,
    );
    let test_split = checks::same_test_split(store, (a, &trials_a), (b, &trials_b))?;
    let mut a = load(store, a, trials_a, &split)?;
    let mut b = load(store, b, trials_b, &split)?;
    checks::same_rows(&a, &b, &split)?;
    let classes = checks::labels(store, &a, &split)?;
    let metric = checks::confusion_metric(&name, &opts.metric, &classes)?;
    let truth = a.predictions[0].truth.clone();
    score(&mut a, &truth, metric);
    score(&mut b, &truth, metric);
    let paired = paired_test(&a, &b, &truth, metric, opts);
    let (pa, pb) = (combined(&a.predictions), combined(&b.predictions));
    let contingency = Contingency::of(&truth, &pa.0, &pb.0);
    let single = a.predictions.len() == 1 && b.predictions.len() == 1;
    let mut notes = vec![method_note(
        truth.len(),
        &split,
        &a,
        &b,
        paired.is_some(),
        opts,
    )];
    if !single {
        notes.push(
            "pooled seeds: a configuration's prediction in the contingency table and the \
             disagreements is the argmax of its seed-averaged probabilities (no McNemar test)"
                .into(),
        );
    }
    let (disagreements, hashes) =
        disagreeing_rows(&a.predictions[0], &pa, &pb, &classes, opts.show);
    let mut out = Diff {
        metric: opts.metric.trim().to_string(),
        split,
        rows: truth.len(),
        classes,
        test_split,
        difference: a.summary.metric - b.summary.metric,
        a: a.summary,
        b: b.summary,
        level: opts.level,
        paired,
        contingency,
        mcnemar_p: single.then(|| contingency.mcnemar()),
        pooled: !single,
        disagreeing: pa.0.iter().zip(&pb.0).filter(|(x, y)| x != y).count(),
        disagreements,
        notes,
    };
    fill_texts(store, &mut out, &hashes);
    Ok(out)
}

/// The predictions of a side's trials on `split`.
fn load(store: &Store, side: &Side, trials: Vec<i64>, split: &str) -> Result<Loaded> {
    let mut predictions = Vec::with_capacity(trials.len());
    for &id in &trials {
        match store.predictions(id, split)? {
            Some(p) => predictions.push(p),
            None => anyhow::bail!(
                "trial {id} has no {split} predictions recorded (trained by a lab older \
                 than schema version 6, which did not store them): lab diff cannot compare it"
            ),
        }
    }
    Ok(Loaded {
        summary: SideSummary {
            name: side.to_string(),
            trials,
            metric: 0.0,
            seeds: Vec::new(),
        },
        predictions,
    })
}

/// Fill a side's metric per seed and its seed average.
fn score(side: &mut Loaded, truth: &[u16], metric: ConfusionMetric) {
    let all: Vec<u32> = (0..truth.len() as u32).collect();
    let seeds: Vec<f64> = side
        .predictions
        .iter()
        .map(|p| metric.on_rows(truth, &p.predicted, p.classes, &all))
        .collect();
    side.summary.metric = seeds.iter().sum::<f64>() / seeds.len().max(1) as f64;
    side.summary.seeds = seeds;
}

/// The paired bootstrap of A − B over every seed of each side.
fn paired_test(
    a: &Loaded,
    b: &Loaded,
    truth: &[u16],
    metric: ConfusionMetric,
    opts: &DiffOptions,
) -> Option<PairedTest> {
    let (preds_a, preds_b) = (seed_preds(a), seed_preds(b));
    let arm = |preds| Arm { truth, preds };
    stats::paired_bootstrap(
        arm(&preds_a),
        arm(&preds_b),
        a.predictions[0].classes,
        metric,
        opts.level,
        opts.resamples,
        opts.seed,
    )
}

/// The sentence that states how the difference was tested.
fn method_note(
    n: usize,
    split: &str,
    a: &Loaded,
    b: &Loaded,
    tested: bool,
    opts: &DiffOptions,
) -> String {
    if !tested {
        return format!(
            "A − B: no paired test: too few {split} rows ({n} < {})",
            stats::MIN_TEST_ROWS
        );
    }
    let seeds = if a.predictions.len() > 1 || b.predictions.len() > 1 {
        ", each side's metric averaged over its seeds"
    } else {
        ""
    };
    format!(
        "A − B: paired bootstrap over the {n} {split} rows ({} resamples{seeds}), \
         {:.0}% percentile interval, two-sided p-value",
        opts.resamples,
        opts.level * 100.0
    )
}

/// Each seed's predicted classes, (seeds, n).
fn seed_preds(side: &Loaded) -> Vec<&[u16]> {
    side.predictions
        .iter()
        .map(|p| p.predicted.as_slice())
        .collect()
}

/// A side's prediction per row and that class's probability: the trial's own
/// for one seed, else the first argmax of the seed-averaged probabilities.
fn combined(seeds: &[Predictions]) -> (Vec<u16>, Vec<f32>) {
    if let [one] = seeds {
        let probs = (0..one.len())
            .map(|i| one.probs_of(i)[one.predicted[i] as usize])
            .collect();
        return (one.predicted.clone(), probs);
    }
    let (n, k) = (seeds[0].len(), seeds[0].classes);
    let mut classes = Vec::with_capacity(n);
    let mut probs = Vec::with_capacity(n);
    for i in 0..n {
        let mut mean = vec![0f32; k];
        for s in seeds {
            mean.iter_mut()
                .zip(s.probs_of(i))
                .for_each(|(m, p)| *m += p / seeds.len() as f32);
        }
        let best = (0..k).fold(0, |best, c| if mean[c] > mean[best] { c } else { best });
        classes.push(best as u16);
        probs.push(mean.get(best).copied().unwrap_or(0.0));
    }
    (classes, probs)
}

/// The first `show` rows where A's and B's predictions differ (texts not yet
/// read), with the row hashes their texts must have.
fn disagreeing_rows(
    first: &Predictions,
    a: &(Vec<u16>, Vec<f32>),
    b: &(Vec<u16>, Vec<f32>),
    classes: &[String],
    show: usize,
) -> (Vec<Disagreement>, Vec<u64>) {
    let name = |c: u16| {
        classes
            .get(c as usize)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    (0..first.len())
        .filter(|&i| a.0[i] != b.0[i])
        .take(show)
        .map(|i| {
            let d = Disagreement {
                row: first.rows[i],
                truth: name(first.truth[i]),
                a: name(a.0[i]),
                a_probability: a.1[i],
                b: name(b.0[i]),
                b_probability: b.1[i],
                text: None,
            };
            (d, first.hashes[i])
        })
        .unzip()
}

/// Read the shown disagreements' texts back from A's data file; what cannot be
/// read (or no longer has the hash it was scored with) is said in the notes.
fn fill_texts(store: &Store, out: &mut Diff, hashes: &[u64]) {
    if out.disagreements.is_empty() {
        return;
    }
    let records: Vec<u32> = out.disagreements.iter().map(|d| d.row).collect();
    match texts::texts(store, out.a.trials[0], &records, hashes) {
        Ok(found) => {
            for d in &mut out.disagreements {
                d.text = found.get(&d.row).cloned();
            }
            let missing = out
                .disagreements
                .iter()
                .filter(|d| d.text.is_none())
                .count();
            if missing > 0 {
                out.notes.push(format!(
                    "{missing} texts not shown: the data file no longer holds them as they \
                     were scored (it changed since)"
                ));
            }
        }
        Err(err) => out.notes.push(format!("texts not shown: {err:#}")),
    }
}
