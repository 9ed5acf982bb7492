//! Metrics that are a function of the confusion matrix, recomputed on any
//! subset or resample of rows: what bootstraps and paired tests need.
//! Definitions match `train::metrics::evaluate` (scikit-learn's, zero_division=0).

/// A metric computed from a (k, k) confusion matrix (rows: true class,
/// columns: predicted class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfusionMetric {
    /// Fraction of rows predicted right.
    Accuracy,
    /// Unweighted mean over classes of precision, recall or F1.
    Macro(Score),
    /// Support-weighted mean over classes of precision, recall or F1.
    Weighted(Score),
    /// Precision, recall or F1 of one class (index).
    Class(Score, usize),
}

/// One per-class score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// tp / (tp + fp).
    Precision,
    /// tp / (tp + fn).
    Recall,
    /// 2tp / (2tp + fp + fn).
    F1,
}

impl ConfusionMetric {
    /// The metric named as `lab` records it (`accuracy`, `macro_f1`,
    /// `weighted_recall`, `f1.positive`, ...), with `classes` naming the class
    /// indices. `None` for a metric that is not a function of the confusion
    /// matrix (`loss`, `roc_auc`, `support.*`) or an unknown class.
    pub fn parse(name: &str, classes: &[String]) -> Option<ConfusionMetric> {
        let score = |s: &str| match s {
            "precision" => Some(Score::Precision),
            "recall" => Some(Score::Recall),
            "f1" => Some(Score::F1),
            _ => None,
        };
        if name == "accuracy" {
            return Some(ConfusionMetric::Accuracy);
        }
        if let Some(s) = name.strip_prefix("macro_") {
            return score(s).map(ConfusionMetric::Macro);
        }
        if let Some(s) = name.strip_prefix("weighted_") {
            return score(s).map(ConfusionMetric::Weighted);
        }
        let (s, class) = name.split_once('.')?;
        let c = classes.iter().position(|c| c == class)?;
        score(s).map(|s| ConfusionMetric::Class(s, c))
    }

    /// The metric of `confusion` (k, k); 0 for an empty matrix.
    pub fn of(&self, confusion: &Confusion) -> f64 {
        let k = confusion.k;
        let cell = |t: usize, p: usize| confusion.counts[t * k + p] as f64;
        let support = |c: usize| (0..k).map(|p| cell(c, p)).sum::<f64>();
        let class_score = |s: Score, c: usize| {
            let tp = cell(c, c);
            let predicted: f64 = (0..k).map(|t| cell(t, c)).sum();
            let (fp, fn_) = (predicted - tp, support(c) - tp);
            match s {
                Score::Precision => ratio(tp, tp + fp),
                Score::Recall => ratio(tp, tp + fn_),
                Score::F1 => ratio(2.0 * tp, 2.0 * tp + fp + fn_),
            }
        };
        match *self {
            ConfusionMetric::Accuracy => {
                ratio((0..k).map(|c| cell(c, c)).sum(), confusion.total as f64)
            }
            ConfusionMetric::Macro(s) => ratio((0..k).map(|c| class_score(s, c)).sum(), k as f64),
            ConfusionMetric::Weighted(s) => ratio(
                (0..k).map(|c| support(c) * class_score(s, c)).sum(),
                (0..k).map(support).sum(),
            ),
            ConfusionMetric::Class(s, c) if c < k => class_score(s, c),
            ConfusionMetric::Class(..) => 0.0,
        }
    }

    /// The metric of predictions `pred` against `truth` on the rows `rows`
    /// (indices into both, repeats allowed: a bootstrap resample), with `k`
    /// classes.
    pub fn on_rows(&self, truth: &[u16], pred: &[u16], k: usize, rows: &[u32]) -> f64 {
        let mut confusion = Confusion::new(k);
        for &i in rows {
            confusion.add(truth[i as usize], pred[i as usize]);
        }
        self.of(&confusion)
    }
}

/// A (k, k) confusion matrix of counts, row-major by true class. Rows whose
/// true or predicted class is ≥ k count in `total` only (against accuracy), as
/// in `train::metrics::evaluate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    /// Number of classes.
    pub k: usize,
    /// (k·k) counts.
    pub counts: Vec<u64>,
    /// Rows added.
    pub total: u64,
}

impl Confusion {
    /// An empty matrix of `k` classes.
    pub fn new(k: usize) -> Confusion {
        Confusion {
            k,
            counts: vec![0; k * k],
            total: 0,
        }
    }

    /// Count one row.
    pub fn add(&mut self, truth: u16, pred: u16) {
        let (t, p) = (truth as usize, pred as usize);
        if t < self.k && p < self.k {
            self.counts[t * self.k + p] += 1;
        }
        self.total += 1;
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::metrics::evaluate;

    #[test]
    fn every_confusion_metric_matches_what_training_records() {
        let classes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let truth: Vec<u16> = vec![0, 0, 1, 1, 2, 2, 2, 0, 1, 2];
        let pred: Vec<u16> = vec![0, 1, 1, 2, 2, 2, 0, 0, 1, 1];
        let probs: Vec<Vec<f32>> = pred
            .iter()
            .map(|&p| (0..3).map(|c| if c == p { 0.9 } else { 0.05 }).collect())
            .collect();
        let labels: Vec<u32> = truth.iter().map(|&t| t as u32).collect();
        let recorded = evaluate(&labels, &probs, &classes, None);
        let all: Vec<u32> = (0..truth.len() as u32).collect();
        let mut checked = 0;
        for (name, value) in &recorded.metrics {
            if let Some(m) = ConfusionMetric::parse(name, &classes) {
                let got = m.on_rows(&truth, &pred, 3, &all);
                assert!((got - value).abs() < 1e-12, "{name}: {got} vs {value}");
                checked += 1;
            }
        }
        // accuracy, 3 macro, 3 weighted, 3 per class × 3 classes
        assert_eq!(checked, 16);
        assert!(ConfusionMetric::parse("loss", &classes).is_none());
        assert!(ConfusionMetric::parse("support.a", &classes).is_none());
        assert!(ConfusionMetric::parse("f1.z", &classes).is_none());
    }

    #[test]
    fn resampled_rows_count_each_repeat() {
        let truth = [0u16, 1];
        let pred = [0u16, 0];
        let acc = ConfusionMetric::Accuracy;
        assert_eq!(acc.on_rows(&truth, &pred, 2, &[0, 0, 0, 1]), 0.75);
        assert_eq!(acc.on_rows(&truth, &pred, 2, &[]), 0.0);
    }
}
