//! Classification metrics with scikit-learn's definitions.

use super::Evaluation;

/// Metrics for true `labels` and predicted class probabilities `probs` (one row per
/// label). The prediction is the first arg-max of a row. Per-class and macro
/// averages cover every class of `classes`, predicted or not; a zero denominator
/// gives 0 (sklearn's `zero_division=0`). `loss` is recorded as "loss" when given.
/// For two classes, `roc_auc` (rank-based, ties averaged; omitted when `labels` hold
/// only one class, where it is undefined) and `average_precision`
/// (Σ (R_n − R_{n−1}) P_n; 0 without positives) score `classes[1]` as positive.
/// Rows whose label or prediction falls outside `classes` only count against accuracy.
/// An empty input gives zeros.
pub fn evaluate(
    labels: &[u32],
    probs: &[Vec<f32>],
    classes: &[String],
    loss: Option<f64>,
) -> Evaluation {
    let k = classes.len();
    let n = labels.len().min(probs.len());
    let mut confusion = vec![vec![0u64; k]; k];
    let mut correct = 0usize;
    for (&y, row) in labels.iter().zip(probs) {
        let pred = argmax(row);
        if pred == y as usize {
            correct += 1;
        }
        if (y as usize) < k && pred < k {
            confusion[y as usize][pred] += 1;
        }
    }

    let mut metrics = vec![("accuracy".to_string(), ratio(correct as f64, n as f64))];
    if let Some(l) = loss {
        metrics.push(("loss".into(), l));
    }

    let per_class: Vec<ClassScores> = (0..k).map(|c| ClassScores::of(&confusion, c)).collect();
    let total_support: f64 = per_class.iter().map(|s| s.support).sum();
    let macro_avg = |f: Score| ratio(per_class.iter().map(f).sum(), k as f64);
    let weighted_avg = |f: Score| {
        ratio(
            per_class.iter().map(|s| s.support * f(s)).sum(),
            total_support,
        )
    };
    let fields: [(&str, Score); 3] = [
        ("precision", |s| s.precision),
        ("recall", |s| s.recall),
        ("f1", |s| s.f1),
    ];
    for (name, f) in fields {
        metrics.push((format!("macro_{name}"), macro_avg(f)));
    }
    for (name, f) in fields {
        metrics.push((format!("weighted_{name}"), weighted_avg(f)));
    }
    for (class, s) in classes.iter().zip(&per_class) {
        metrics.push((format!("precision.{class}"), s.precision));
        metrics.push((format!("recall.{class}"), s.recall));
        metrics.push((format!("f1.{class}"), s.f1));
        metrics.push((format!("support.{class}"), s.support));
    }

    if k == 2 {
        let positive: Vec<bool> = labels[..n].iter().map(|&y| y == 1).collect();
        let scores: Vec<f64> = probs[..n]
            .iter()
            .map(|r| r.get(1).copied().unwrap_or(0.0) as f64)
            .collect();
        if let Some(auc) = roc_auc(&positive, &scores) {
            metrics.push(("roc_auc".into(), auc));
        }
        metrics.push((
            "average_precision".into(),
            average_precision(&positive, &scores),
        ));
    }

    Evaluation { metrics, confusion }
}

/// Index of the first largest value of `row` (class probabilities or scores); NaN
/// never wins, and a row with no number (or no value) gives 0.
pub fn argmax(row: &[f32]) -> usize {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Picks one number out of a class's scores.
type Score = fn(&ClassScores) -> f64;

struct ClassScores {
    precision: f64,
    recall: f64,
    f1: f64,
    support: f64,
}

impl ClassScores {
    fn of(confusion: &[Vec<u64>], c: usize) -> Self {
        let tp = confusion[c][c] as f64;
        let support: f64 = confusion[c].iter().sum::<u64>() as f64;
        let predicted: f64 = confusion.iter().map(|row| row[c]).sum::<u64>() as f64;
        let (fp, fn_) = (predicted - tp, support - tp);
        Self {
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            // Equals 2PR/(P+R) where defined and is 0 exactly where sklearn says so.
            f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
            support,
        }
    }
}

/// Area under the ROC curve by the Mann–Whitney statistic with average ranks for
/// ties; `None` when either class is absent.
pub fn roc_auc(positive: &[bool], scores: &[f64]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 are shared by the tied group.
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += order[i..=j].iter().filter(|&&r| positive[r]).count() as f64 * avg_rank;
        i = j + 1;
    }
    Some((rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// sklearn's `average_precision_score`: Σ (R_n − R_{n−1}) P_n over the distinct
/// score thresholds, highest first; 0 when there is no positive.
pub fn average_precision(positive: &[bool], scores: &[f64]) -> f64 {
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    if n_pos == 0.0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut prev_recall, mut ap) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let threshold = scores[order[i]];
        while i < order.len() && scores[order[i]] == threshold {
            if positive[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        let recall = tp / n_pos;
        ap += (recall - prev_recall) * tp / (tp + fp);
        prev_recall = recall;
    }
    ap
}
