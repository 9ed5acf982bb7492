//! Why training stopped with an error.

use std::path::PathBuf;

/// An error a boxed source can carry: I/O, candle, the store's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can end `train` / `train_resumable` without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The training split has no rows (after balancing).
    #[error("no training rows: the training split (after balancing) is empty")]
    EmptyTrainingSet,
    /// A split to score has no rows: metrics over zero rows mean nothing, and are
    /// never recorded as zeros.
    #[error(
        "no rows in the {split} split: metrics over zero rows would be meaningless \
         (more rows or other data.split fractions give it some)"
    )]
    EmptySplit {
        /// "valid", "test", or "scored" (a split given to `Fit::validate`).
        split: &'static str,
    },
    /// The training loss of a batch was NaN or infinite (epochs and batches from 1).
    #[error("loss became {value} at epoch {epoch}, batch {batch}")]
    NonFinite {
        /// Epoch of the batch, from 1.
        epoch: usize,
        /// Batch within the epoch, from 1.
        batch: usize,
        /// The loss: NaN or ±infinity.
        value: f64,
    },
    /// A checkpoint (or what a checkpointer keeps beside it) could not be read,
    /// written or synced.
    #[error("{}: cannot {action}: {source}", path.display())]
    Checkpoint {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done, e.g. "read the checkpoint".
        action: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The checkpoint holds a different number of weights than the model.
    #[error("checkpoint has {found} weights, the model {expected}")]
    CheckpointMismatch {
        /// Weights in the checkpoint.
        found: usize,
        /// Weights of the model (`Trainable::vars`).
        expected: usize,
    },
    /// The pruner stopped the trial after `epoch` (not a failure: the trial is
    /// recorded as pruned, its epochs kept).
    #[error("{reason}")]
    Pruned {
        /// The last epoch trained, from 1.
        epoch: usize,
        /// The pruner's one-line reason, e.g. `pruned at epoch 2: 0.61 < median 0.68 ...`.
        reason: String,
    },
    /// A stop signal (SIGINT, SIGTERM) arrived: the epoch in progress was
    /// abandoned; the last checkpoint (if any) still holds the finished epochs.
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    /// A `Checkpoint` error about `path`.
    pub fn checkpoint(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        TrainError::Checkpoint {
            path: path.into(),
            action,
            source: source.into(),
        }
    }
}
