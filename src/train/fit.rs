//! The epoch loop as small pieces: `Fit` holds the state of one training run
//! (optimizer, RNG streams, records, early stopping) over a `FitContext` (what
//! is trained on what); `resume` restores a checkpoint, `run_epoch` trains and
//! validates one epoch, `finish` keeps the chosen weights and scores valid and
//! test. `train` and `train_resumable` drive them.

use super::checkpoint::{Checkpoint, Checkpointer};
use super::early_stopping::{Monitor, Patience, StoppingPolicy};
use super::step::{infer, train_step, StepOptions};
use super::{
    metrics, optim, EpochRecord, Evaluation, Progress, TrainError, TrainOutcome, Trainable,
};
use crate::data::{self, Balanced, Dataset};
use crate::spec::{Mode, TrainSection};
use candle_core::{Device, Tensor, Var};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// What one training run trains on: the model, its data, the settings and the
/// seed. Borrowed for the run; nothing in it changes but the model's weights.
pub struct FitContext<'a, M: Trainable + ?Sized> {
    /// The model whose `Trainable::vars` are trained.
    pub model: &'a M,
    /// Train, valid and test splits and the class names.
    pub dataset: &'a Dataset,
    /// The training rows of an epoch (indices into `dataset.train`) and class weights.
    pub balanced: &'a Balanced,
    /// `[train]` of the trial's config.
    pub cfg: &'a TrainSection,
    /// Seeds the dropout and shuffle streams.
    pub seed: u64,
    /// Where the tensors live.
    pub device: &'a Device,
}

/// Train `ctx.model` on `ctx.dataset.train` (rows and class weights from
/// `ctx.balanced`), scoring every epoch on `dataset.valid`, then evaluate valid
/// and test with the kept weights.
///
/// Epochs and batches are numbered from 1. With `cfg.early_stopping` the weights of
/// the best epoch on its monitor are restored at the end; without it the best epoch
/// on valid.macro_f1 is only reported (`best_monitored_epoch`) and the LAST epoch's
/// weights are kept. The validation loss is the unweighted mean cross-entropy.
/// Dropout and the per-epoch shuffles are seeded from `seed`, so the same seed on
/// the CPU gives the same numbers.
///
/// # Errors
/// `TrainError::EmptyTrainingSet`, `TrainError::EmptySplit` (no valid or test rows
/// to score), `TrainError::NonFinite` (a NaN/infinite training loss), or a tensor error.
pub fn train<M: Trainable + ?Sized>(
    ctx: &FitContext<'_, M>,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome, TrainError> {
    train_resumable(ctx, progress, None)
}

/// `train`, saving a checkpoint after every epoch through `checkpointer` and, when
/// it holds one, continuing after that checkpoint's epoch (its epochs are not
/// reported again through `progress`). The outcome equals an uninterrupted run's.
///
/// # Errors
/// Those of `train`, and `TrainError::Checkpoint` / `CheckpointMismatch` when the
/// checkpoint cannot be read, applied or written.
pub fn train_resumable<M: Trainable + ?Sized>(
    ctx: &FitContext<'_, M>,
    progress: &mut dyn FnMut(Progress),
    checkpointer: Option<&mut dyn Checkpointer>,
) -> Result<TrainOutcome, TrainError> {
    train_prunable(ctx, progress, checkpointer, &mut |_| None)
}

/// `train_resumable`, asking `prune` after each epoch (once the epoch's
/// checkpoint is saved) whether the trial stops there; a reason ends training
/// with `TrainError::Pruned`, without scoring valid or test.
///
/// # Errors
/// Those of `train_resumable`, and `TrainError::Pruned`.
pub fn train_prunable<M: Trainable + ?Sized>(
    ctx: &FitContext<'_, M>,
    progress: &mut dyn FnMut(Progress),
    mut checkpointer: Option<&mut dyn Checkpointer>,
    prune: &mut dyn FnMut(&EpochRecord) -> Option<String>,
) -> Result<TrainOutcome, TrainError> {
    let mut fit = Fit::new(ctx)?;
    if let Some(c) = checkpointer
        .as_mut()
        .map(|c| c.load())
        .transpose()?
        .flatten()
    {
        fit.resume(c)?;
    }
    while fit.next_epoch().is_some() {
        let record = fit.run_epoch(progress)?;
        if let Some(c) = checkpointer.as_mut() {
            c.save(&fit.checkpoint()?)?;
        }
        if let Some(reason) = prune(&record) {
            return Err(TrainError::Pruned {
                epoch: record.epoch,
                reason,
            });
        }
    }
    fit.finish()
}

/// The state of one training run between epochs.
pub struct Fit<'c, 'a, M: Trainable + ?Sized> {
    ctx: &'c FitContext<'a, M>,
    vars: Vec<Var>,
    optimizer: Box<dyn optim::Optimizer>,
    opts: StepOptions,
    batch_size: usize,
    /// Whether `cfg.early_stopping` is set (else `policy` only reports the best epoch).
    early_stopping: bool,
    policy: Patience,
    dropout: ChaCha8Rng,
    /// A separate stream so shuffles do not depend on how much dropout drew.
    shuffles: ChaCha8Rng,
    /// The last finished epoch (0 before the first).
    epoch: usize,
    records: Vec<EpochRecord>,
    best_weights: Option<Vec<Tensor>>,
    stopped_early: bool,
}

impl<'c, 'a, M: Trainable + ?Sized> Fit<'c, 'a, M> {
    /// A fresh run before its first epoch: optimizer built, RNG streams seeded.
    ///
    /// # Errors
    /// `TrainError::EmptyTrainingSet` or a tensor error.
    pub fn new(ctx: &'c FitContext<'a, M>) -> Result<Self, TrainError> {
        if ctx.balanced.indices.is_empty() {
            return Err(TrainError::EmptyTrainingSet);
        }
        let cfg = ctx.cfg;
        let policy = match &cfg.early_stopping {
            Some(es) => Patience::from_spec(es),
            None => Patience::new(Monitor::ValidMacroF1, Mode::Max, usize::MAX),
        };
        let vars = ctx.model.vars();
        let optimizer = optim::build(cfg, vars.clone());
        let opts = StepOptions {
            class_weights: match &ctx.balanced.class_weights {
                Some(w) => Some(Tensor::new(w.as_slice(), ctx.device)?),
                None => None,
            },
            grad_clip: cfg.grad_clip,
        };
        let mut shuffles = ChaCha8Rng::seed_from_u64(ctx.seed);
        shuffles.set_stream(1);
        Ok(Fit {
            ctx,
            vars,
            optimizer,
            opts,
            batch_size: cfg.batch_size.max(1),
            early_stopping: cfg.early_stopping.is_some(),
            policy,
            dropout: ChaCha8Rng::seed_from_u64(ctx.seed),
            shuffles,
            epoch: 0,
            records: Vec::new(),
            best_weights: None,
            stopped_early: false,
        })
    }

    /// Continue from `c`: weights, optimizer state, best weights, RNG positions
    /// and records restored; the early-stopping state rebuilt from the records.
    ///
    /// # Errors
    /// `TrainError::CheckpointMismatch` when `c` is of another model; a tensor error.
    pub fn resume(&mut self, c: Checkpoint) -> Result<(), TrainError> {
        let device = self.ctx.device;
        if c.weights.len() != self.vars.len() {
            return Err(TrainError::CheckpointMismatch {
                found: c.weights.len(),
                expected: self.vars.len(),
            });
        }
        for (var, w) in self.vars.iter().zip(&c.weights) {
            var.set(&w.to_device(device)?)?;
        }
        self.optimizer.load_state(c.optimizer)?;
        self.best_weights = match c.best_weights {
            Some(ws) => Some(
                ws.iter()
                    .map(|w| w.to_device(device))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        self.dropout.set_word_pos(c.dropout_pos);
        self.shuffles.set_word_pos(c.shuffle_pos);
        for record in &c.records {
            let verdict = self.policy.observe(record);
            self.stopped_early = self.early_stopping && verdict.stop;
        }
        self.records = c.records;
        self.epoch = c.epoch;
        Ok(())
    }

    /// The epoch to run next, or `None` when the run is over (all epochs done
    /// or stopped early).
    pub fn next_epoch(&self) -> Option<usize> {
        let next = self.epoch + 1;
        (!self.stopped_early && next <= self.ctx.cfg.epochs).then_some(next)
    }

    /// Train the next epoch on shuffled batches, validate, and let early stopping
    /// judge it; returns its record (also sent as `Progress::EpochEnd`). Call it
    /// while `next_epoch` is `Some`.
    ///
    /// # Errors
    /// `TrainError::Interrupted` when a stop signal arrived (checked before each batch);
    /// `TrainError::NonFinite` when a batch's loss is NaN or infinite;
    /// `TrainError::EmptySplit` when valid has no rows; a tensor error.
    pub fn run_epoch(
        &mut self,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<EpochRecord, TrainError> {
        let ctx = self.ctx;
        let epoch = self.epoch + 1;
        let start = Instant::now();
        let batches = data::batches(
            &ctx.dataset.train,
            &ctx.balanced.indices,
            self.batch_size,
            ctx.cfg.bucket_by_length,
            Some(self.shuffles.next_u64()),
        );
        progress(Progress::EpochStart {
            epoch,
            epochs: ctx.cfg.epochs,
            batches: batches.len(),
        });
        let (mut loss_sum, mut samples) = (0.0, 0usize);
        for (i, batch) in batches.enumerate() {
            // A stop signal abandons the epoch: resuming reruns it from the last
            // checkpoint with the same numbers, sooner than finishing it would.
            crate::interrupt::check()?;
            let loss = train_step(
                ctx.model,
                self.optimizer.as_mut(),
                &batch,
                &self.opts,
                &mut self.dropout,
                ctx.device,
            )?;
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    epoch,
                    batch: i + 1,
                    value: loss,
                });
            }
            loss_sum += loss * batch.batch as f64;
            samples += batch.batch;
            progress(Progress::Batch {
                done: i + 1,
                loss: loss_sum / samples as f64,
                samples_per_second: per_second(samples, start),
            });
        }
        let samples_per_second = per_second(samples, start);
        let (valid, valid_loss, _) = self.score(&ctx.dataset.valid, "valid")?;
        let record = EpochRecord {
            epoch,
            train_loss: if samples == 0 {
                0.0
            } else {
                loss_sum / samples as f64
            },
            valid_loss,
            valid_accuracy: valid.get("accuracy").unwrap_or(0.0),
            valid_macro_f1: valid.get("macro_f1").unwrap_or(0.0),
            lr: self.optimizer.learning_rate(),
            seconds: start.elapsed().as_secs_f64(),
            samples_per_second,
        };
        progress(Progress::EpochEnd(record.clone()));
        let verdict = self.policy.observe(&record);
        self.records.push(record.clone());
        if self.early_stopping && verdict.improved {
            self.best_weights = Some(snapshot(&self.vars)?);
        }
        self.stopped_early = self.early_stopping && verdict.stop;
        self.epoch = epoch;
        Ok(record)
    }

    /// Metrics of `split` with the current weights, its mean loss included
    /// (`loss`), without dropout or autograd bookkeeping.
    ///
    /// # Errors
    /// `TrainError::EmptySplit` when `split` has no rows; a tensor error.
    pub fn validate(&self, split: &data::Split) -> Result<Evaluation, TrainError> {
        Ok(self.score(split, "scored")?.0)
    }

    /// `validate`, and the mean loss and the class probabilities (rows,
    /// classes) apart; `name` names the split in the error.
    fn score(
        &self,
        split: &data::Split,
        name: &'static str,
    ) -> Result<(Evaluation, f64, Vec<Vec<f32>>), TrainError> {
        // The guard where metrics are computed: never a 0.0 over zero rows.
        if split.is_empty() {
            return Err(TrainError::EmptySplit { split: name });
        }
        let ctx = self.ctx;
        let (probs, loss) = infer(ctx.model, split, self.batch_size, ctx.device)?;
        let evaluation = metrics::evaluate(&split.labels, &probs, &ctx.dataset.classes, Some(loss));
        Ok((evaluation, loss, probs))
    }

    /// The state after the last finished epoch, for a `Checkpointer`.
    ///
    /// # Errors
    /// A tensor error copying the weights.
    pub fn checkpoint(&self) -> Result<Checkpoint, TrainError> {
        Ok(Checkpoint {
            epoch: self.epoch,
            weights: snapshot(&self.vars)?,
            optimizer: self.optimizer.state()?,
            best_weights: self.best_weights.clone(),
            records: self.records.clone(),
            dropout_pos: self.dropout.get_word_pos(),
            shuffle_pos: self.shuffles.get_word_pos(),
        })
    }

    /// End the run: restore the best epoch's weights (early stopping), then score
    /// valid and test with the kept weights.
    ///
    /// # Errors
    /// `TrainError::EmptySplit` when valid or test has no rows; a tensor error.
    pub fn finish(self) -> Result<TrainOutcome, TrainError> {
        let last_epoch = self.records.last().map_or(0, |r| r.epoch);
        let best_monitored_epoch = self.policy.best_epoch().unwrap_or(last_epoch);
        let best_epoch = match &self.best_weights {
            Some(weights) if best_monitored_epoch != last_epoch => {
                for (var, w) in self.vars.iter().zip(weights) {
                    var.set(w)?;
                }
                best_monitored_epoch
            }
            _ => last_epoch,
        };
        let (valid, _, valid_probs) = self.score(&self.ctx.dataset.valid, "valid")?;
        let (test, _, test_probs) = self.score(&self.ctx.dataset.test, "test")?;
        Ok(TrainOutcome {
            valid,
            test,
            valid_probs,
            test_probs,
            epochs: self.records,
            best_epoch,
            best_monitored_epoch,
            stopped_early: self.stopped_early,
        })
    }
}

fn per_second(samples: usize, start: Instant) -> f64 {
    let secs = start.elapsed().as_secs_f64();
    if secs > 0.0 {
        samples as f64 / secs
    } else {
        0.0
    }
}

/// Deep copies of the current weights (not views that later steps would change).
fn snapshot(vars: &[Var]) -> candle_core::Result<Vec<Tensor>> {
    vars.iter().map(|v| v.as_detached_tensor().copy()).collect()
}
