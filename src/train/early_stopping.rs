//! Early stopping as a small trait with one policy per implementation.

use super::EpochRecord;
use crate::spec::{EarlyStopping, Mode};

/// What a policy concluded from one more epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// This epoch is the best so far (its weights are worth keeping).
    pub improved: bool,
    /// Training should end after this epoch.
    pub stop: bool,
}

/// Decides after each epoch whether it improved and whether to stop.
pub trait StoppingPolicy {
    /// Judge one finished epoch.
    fn observe(&mut self, record: &EpochRecord) -> Verdict;
    /// The best epoch seen so far (its `EpochRecord::epoch`).
    fn best_epoch(&self) -> Option<usize>;
}

/// Which validation number an epoch is judged on (the spec's type, named there).
pub use crate::spec::Monitor;

// The spec knows nothing of training, so reading the number is done here.
impl Monitor {
    /// The monitored number of `record`.
    pub fn value(self, record: &EpochRecord) -> f64 {
        match self {
            Self::ValidLoss => record.valid_loss,
            Self::ValidAccuracy => record.valid_accuracy,
            Self::ValidMacroF1 => record.valid_macro_f1,
        }
    }
}

/// Stop after `patience` consecutive epochs without a strictly better monitor value
/// (patience 0 stops at the first epoch that does not improve). A NaN value never
/// improves.
#[derive(Debug, Clone)]
pub struct Patience {
    monitor: Monitor,
    mode: Mode,
    patience: usize,
    best: Option<(usize, f64)>,
    waited: usize,
}

impl Patience {
    /// `patience` epochs without strict improvement end the run.
    pub fn new(monitor: Monitor, mode: Mode, patience: usize) -> Self {
        Self {
            monitor,
            mode,
            patience,
            best: None,
            waited: 0,
        }
    }

    /// From the spec's `[train.early_stopping]`.
    pub fn from_spec(cfg: &EarlyStopping) -> Self {
        Self::new(cfg.monitor, cfg.mode, cfg.patience)
    }

    fn better(&self, value: f64, best: f64) -> bool {
        match self.mode {
            Mode::Min => value < best,
            Mode::Max => value > best,
        }
    }
}

impl StoppingPolicy for Patience {
    fn observe(&mut self, record: &EpochRecord) -> Verdict {
        let value = self.monitor.value(record);
        let improved = !value.is_nan()
            && match self.best {
                None => true,
                Some((_, best)) => self.better(value, best),
            };
        if improved {
            self.best = Some((record.epoch, value));
            self.waited = 0;
        } else {
            self.waited += 1;
        }
        Verdict {
            improved,
            stop: !improved && self.waited >= self.patience.max(1),
        }
    }

    fn best_epoch(&self) -> Option<usize> {
        self.best.map(|(epoch, _)| epoch)
    }
}
