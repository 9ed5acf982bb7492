//! Training: optimizers, the epoch loop, early stopping, metrics and progress
//! reporting through a callback. Knows nothing of SQLite or the CLI.

use crate::data::{Balanced, Dataset};
use crate::model::Classifier;
use crate::spec::TrainSection;
use candle_core::Device;

/// One epoch's record.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_loss: f64,
    pub valid_accuracy: f64,
    pub valid_macro_f1: f64,
    pub lr: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
}

/// Metrics of one split. Names: accuracy, loss, macro_/weighted_ precision, recall,
/// f1; per class `precision.<class>`, `recall.<class>`, `f1.<class>`, `support.<class>`;
/// for two classes `roc_auc` and `average_precision` (classes[1] is positive).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub metrics: Vec<(String, f64)>,
    /// confusion[true][predicted]
    pub confusion: Vec<Vec<u64>>,
}

impl Evaluation {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// Progress events for bars or log lines.
#[derive(Debug, Clone)]
pub enum Progress {
    EpochStart { epoch: usize, epochs: usize, batches: usize },
    Batch { done: usize, loss: f64, samples_per_second: f64 },
    EpochEnd(EpochRecord),
}

#[derive(Debug)]
pub struct TrainOutcome {
    pub epochs: Vec<EpochRecord>,
    /// Epoch whose weights were kept (best on the monitor, or the last).
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub valid: Evaluation,
    pub test: Evaluation,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("loss became {value} at epoch {epoch}, batch {batch}")]
    NonFinite { epoch: usize, batch: usize, value: f64 },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Train `model` on `dataset.train` (rows and weights from `balanced`), pick the best
/// epoch on `dataset.valid`, evaluate on `dataset.test`.
pub fn train(
    model: &Classifier,
    dataset: &Dataset,
    balanced: &Balanced,
    cfg: &TrainSection,
    seed: u64,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome, TrainError> {
    let _ = (model, dataset, balanced, cfg, seed, device, progress);
    todo!("train helper")
}

/// Class probabilities (n, n_classes) for already-encoded sequences, batched,
/// without autograd bookkeeping.
pub fn predict_proba(
    model: &Classifier,
    ids: &[Vec<u32>],
    batch_size: usize,
    device: &Device,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let _ = (model, ids, batch_size, device);
    todo!("train helper")
}
