//! Training: optimizers, the epoch loop, early stopping, metrics and progress
//! reporting through a callback. Knows nothing of SQLite or the CLI.

pub mod checkpoint;
mod clip;
pub mod early_stopping;
mod error;
mod fit;
mod loss;
pub mod metrics;
pub mod optim;
mod record;
mod step;

pub use checkpoint::{Checkpoint, Checkpointer, DirCheckpointer};
pub use clip::{clip_grad_norm, clip_grad_norm_with_rows};
pub use early_stopping::{Monitor, Patience, StoppingPolicy, Verdict};
pub use error::{BoxError, TrainError};
pub use fit::{train, train_prunable, train_resumable, Fit, FitContext};
pub use loss::{cross_entropy, nll_per_row};
pub use metrics::evaluate;
pub use optim::Optimizer;
pub use record::EpochRecord;
pub use step::{batch_ids, train_step, StepOptions};

use crate::data::Split;
use crate::kernels::embedding::SparseRows;
use crate::model::Classifier;
use candle_core::{Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;

/// Metrics of one split. Names: accuracy, loss, macro_/weighted_ precision, recall,
/// f1; per class `precision.<class>`, `recall.<class>`, `f1.<class>`, `support.<class>`;
/// for two classes `roc_auc` and `average_precision` (`classes[1]` is positive).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// (name, value) in the order `metrics::evaluate` computes them.
    pub metrics: Vec<(String, f64)>,
    /// `confusion[true][predicted]`, counts; (classes, classes).
    pub confusion: Vec<Vec<u64>>,
}

impl Evaluation {
    /// The value of metric `name`, if computed.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// Progress events for bars or log lines.
#[derive(Debug, Clone)]
pub enum Progress {
    /// An epoch begins.
    EpochStart {
        /// Its number, from 1.
        epoch: usize,
        /// Epochs configured (`train.epochs`).
        epochs: usize,
        /// Batches it will run.
        batches: usize,
    },
    /// A training batch ended.
    Batch {
        /// Batches done in this epoch, from 1.
        done: usize,
        /// Mean training loss of the epoch so far, per sample.
        loss: f64,
        /// Training throughput of the epoch so far, in samples per second.
        samples_per_second: f64,
    },
    /// An epoch ended (trained and validated).
    EpochEnd(EpochRecord),
}

/// What a training run ends with.
#[derive(Debug)]
pub struct TrainOutcome {
    /// Every epoch's record, from epoch 1 (a resumed run's included).
    pub epochs: Vec<EpochRecord>,
    /// Epoch whose weights were kept (best on the monitor, or the last); 0 when
    /// no epoch ran.
    pub best_epoch: usize,
    /// Best epoch on the early-stopping monitor, or on valid.macro_f1 without early
    /// stopping (then only reported: the last weights are kept).
    pub best_monitored_epoch: usize,
    /// Early stopping ended the run before `train.epochs`.
    pub stopped_early: bool,
    /// Valid-split metrics with the kept weights.
    pub valid: Evaluation,
    /// Test-split metrics with the kept weights.
    pub test: Evaluation,
    /// Class probabilities (valid rows, classes) with the kept weights.
    pub valid_probs: Vec<Vec<f32>>,
    /// Class probabilities (test rows, classes) with the kept weights.
    pub test_probs: Vec<Vec<f32>>,
}

/// What the loop needs from a model, so it can train `model::Classifier` or any
/// small test model alike.
pub trait Trainable {
    /// Logits (batch, n_classes) for (batch, time) u32 `ids` padded with 0;
    /// `dropout` is `Some(rng)` when training.
    fn forward(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        dropout: Option<&mut ChaCha8Rng>,
    ) -> candle_core::Result<Tensor>;
    /// Logits without dropout and without autograd bookkeeping.
    fn forward_inference(&self, ids: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor>;
    /// The parameters the optimizer updates.
    fn vars(&self) -> Vec<Var>;
    /// A parameter whose gradient the last backward pass left as rows rather
    /// than in the gradient store (`train.sparse_embedding`), taken.
    fn take_sparse_grad(&self) -> Option<(Var, SparseRows)> {
        None
    }
}

impl Trainable for Classifier {
    fn forward(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        dropout: Option<&mut ChaCha8Rng>,
    ) -> candle_core::Result<Tensor> {
        Classifier::forward(self, ids, lengths, dropout)
    }
    fn forward_inference(&self, ids: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        Classifier::forward_inference(self, ids, lengths)
    }
    fn vars(&self) -> Vec<Var> {
        self.trainable_vars()
    }
    fn take_sparse_grad(&self) -> Option<(Var, SparseRows)> {
        self.take_sparse_embedding_grad()
    }
}

/// Class probabilities (n, n_classes) for already-encoded sequences, in input
/// order, batched by length, without autograd bookkeeping. Empty input gives an
/// empty result; a `batch_size` of 0 is treated as 1.
pub fn predict_proba<M: Trainable + ?Sized>(
    model: &M,
    ids: &[Vec<u32>],
    batch_size: usize,
    device: &Device,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let split = Split::from_rows(ids, vec![0; ids.len()]);
    Ok(step::infer(model, &split, batch_size, device)?.0)
}
