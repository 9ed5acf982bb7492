//! The record of one finished epoch: what the loop reports, the checkpoint keeps
//! and the store writes to its `epochs` table. A plain data type (no candle, no
//! SQLite) so that every side can share it.

/// One epoch's numbers, as `train` reports them through `Progress::EpochEnd`,
/// as a checkpoint keeps them and as `store::Store::record_epoch` stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training cross-entropy of the epoch (class-weighted when the
    /// balance asks for it), per sample.
    pub train_loss: f64,
    /// Unweighted mean cross-entropy on the validation split.
    pub valid_loss: f64,
    /// Validation accuracy in [0, 1].
    pub valid_accuracy: f64,
    /// Validation macro-averaged F1 in [0, 1].
    pub valid_macro_f1: f64,
    /// Learning rate the optimizer used.
    pub lr: f64,
    /// Wall time of the epoch (training and validation), in seconds.
    pub seconds: f64,
    /// Training throughput, in samples per second.
    pub samples_per_second: f64,
}

impl EpochRecord {
    /// How many numbers `to_array` gives.
    pub const FIELDS: usize = 8;

    /// The record as numbers in field order (the epoch as f64), how a checkpoint
    /// stores it.
    pub fn to_array(&self) -> [f64; Self::FIELDS] {
        [
            self.epoch as f64,
            self.train_loss,
            self.valid_loss,
            self.valid_accuracy,
            self.valid_macro_f1,
            self.lr,
            self.seconds,
            self.samples_per_second,
        ]
    }

    /// The inverse of `to_array`.
    pub fn from_array(r: [f64; Self::FIELDS]) -> Self {
        EpochRecord {
            epoch: r[0] as usize,
            train_loss: r[1],
            valid_loss: r[2],
            valid_accuracy: r[3],
            valid_macro_f1: r[4],
            lr: r[5],
            seconds: r[6],
            samples_per_second: r[7],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_form_round_trips() {
        let r = EpochRecord {
            epoch: 7,
            train_loss: 0.5,
            valid_loss: 0.25,
            valid_accuracy: 0.75,
            valid_macro_f1: 0.7,
            lr: 1e-3,
            seconds: 2.5,
            samples_per_second: 1000.0,
        };
        assert_eq!(EpochRecord::from_array(r.to_array()), r);
    }
}
