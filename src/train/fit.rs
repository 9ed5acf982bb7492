//! The epoch loop: shuffled batches, steps, validation, early stopping, final scores.

use super::checkpoint::{Checkpoint, Checkpointer};
use super::early_stopping::{Monitor, Patience, StoppingPolicy};
use super::step::{infer, train_step, StepOptions};
use super::{metrics, optim, EpochRecord, Progress, TrainError, TrainOutcome, Trainable};
use crate::data::{self, Balanced, Dataset};
use crate::spec::{Mode, TrainSection};
use candle_core::{Device, Tensor, Var};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Train `model` on `dataset.train` (rows and class weights from `balanced`), scoring
/// every epoch on `dataset.valid`, then evaluate valid and test with the kept weights.
///
/// Epochs and batches are numbered from 1. With `cfg.early_stopping` the weights of
/// the best epoch on its monitor are restored at the end; without it the best epoch
/// on valid.macro_f1 is only reported (`best_monitored_epoch`) and the LAST epoch's
/// weights are kept. The validation loss is the unweighted mean cross-entropy.
/// Dropout and the per-epoch shuffles are seeded from `seed`, so the same seed on
/// the CPU gives the same numbers. An empty training set or an unknown monitor is an
/// error; a NaN/infinite training loss stops with `TrainError::NonFinite`.
pub fn train<M: Trainable + ?Sized>(
    model: &M,
    dataset: &Dataset,
    balanced: &Balanced,
    cfg: &TrainSection,
    seed: u64,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome, TrainError> {
    train_resumable(model, dataset, balanced, cfg, seed, device, progress, None)
}

/// `train`, saving a checkpoint after every epoch through `checkpointer` and, when
/// it holds one, continuing after that checkpoint's epoch (its epochs are not
/// reported again through `progress`). The outcome equals an uninterrupted run's.
#[allow(clippy::too_many_arguments)]
pub fn train_resumable<M: Trainable + ?Sized>(
    model: &M,
    dataset: &Dataset,
    balanced: &Balanced,
    cfg: &TrainSection,
    seed: u64,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
    mut checkpointer: Option<&mut dyn Checkpointer>,
) -> Result<TrainOutcome, TrainError> {
    if balanced.indices.is_empty() {
        return Err(msg(
            "no training rows: the training split (after balancing) is empty",
        ));
    }
    let early_stopping = cfg.early_stopping.is_some();
    let mut policy = match &cfg.early_stopping {
        Some(es) => Patience::from_spec(es),
        None => Patience::new(Monitor::ValidMacroF1, Mode::Max, usize::MAX),
    };
    let vars = model.vars();
    let mut optimizer = optim::build(cfg, vars.clone());
    let opts = StepOptions {
        class_weights: match &balanced.class_weights {
            Some(w) => Some(Tensor::new(w.as_slice(), device)?),
            None => None,
        },
        grad_clip: cfg.grad_clip,
    };
    let batch_size = cfg.batch_size.max(1);
    let mut dropout = ChaCha8Rng::seed_from_u64(seed);
    // A separate stream so shuffles do not depend on how much dropout drew.
    let mut shuffles = ChaCha8Rng::seed_from_u64(seed);
    shuffles.set_stream(1);

    let mut records: Vec<EpochRecord> = Vec::new();
    let mut best_weights: Option<Vec<Tensor>> = None;
    let mut stopped_early = false;
    let mut first_epoch = 1;
    if let Some(c) = checkpointer
        .as_mut()
        .map(|c| c.load())
        .transpose()?
        .flatten()
    {
        if c.weights.len() != vars.len() {
            return Err(msg(format!(
                "checkpoint has {} weights, the model {}",
                c.weights.len(),
                vars.len()
            )));
        }
        for (var, w) in vars.iter().zip(&c.weights) {
            var.set(&w.to_device(device)?)?;
        }
        optimizer.load_state(c.optimizer)?;
        best_weights = match c.best_weights {
            Some(ws) => Some(
                ws.iter()
                    .map(|w| w.to_device(device))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        dropout.set_word_pos(c.dropout_pos);
        shuffles.set_word_pos(c.shuffle_pos);
        // Replaying the records rebuilds the early-stopping state.
        for record in &c.records {
            let verdict = policy.observe(record);
            stopped_early = early_stopping && verdict.stop;
        }
        records = c.records;
        first_epoch = c.epoch + 1;
    }
    for epoch in first_epoch..=cfg.epochs {
        if stopped_early {
            break;
        }
        let start = Instant::now();
        let batches = data::batches(
            &dataset.train,
            &balanced.indices,
            batch_size,
            cfg.bucket_by_length,
            Some(shuffles.next_u64()),
        );
        progress(Progress::EpochStart {
            epoch,
            epochs: cfg.epochs,
            batches: batches.len(),
        });
        let (mut loss_sum, mut samples) = (0.0, 0usize);
        for (i, batch) in batches.enumerate() {
            let loss = train_step(
                model,
                optimizer.as_mut(),
                &batch,
                &opts,
                &mut dropout,
                device,
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
        let (probs, valid_loss) = infer(model, &dataset.valid, batch_size, device)?;
        let valid = metrics::evaluate(
            &dataset.valid.labels,
            &probs,
            &dataset.classes,
            Some(valid_loss),
        );
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
            lr: optimizer.learning_rate(),
            seconds: start.elapsed().as_secs_f64(),
            samples_per_second,
        };
        progress(Progress::EpochEnd(record.clone()));
        let verdict = policy.observe(&record);
        records.push(record);
        if early_stopping && verdict.improved {
            best_weights = Some(snapshot(&vars)?);
        }
        stopped_early = early_stopping && verdict.stop;
        if let Some(c) = checkpointer.as_mut() {
            c.save(&Checkpoint {
                epoch,
                weights: snapshot(&vars)?,
                optimizer: optimizer.state()?,
                best_weights: best_weights.clone(),
                records: records.clone(),
                dropout_pos: dropout.get_word_pos(),
                shuffle_pos: shuffles.get_word_pos(),
            })?;
        }
    }

    let last_epoch = records.last().map_or(0, |r| r.epoch);
    let best_monitored_epoch = policy.best_epoch().unwrap_or(last_epoch);
    let best_epoch = match best_weights {
        Some(weights) if best_monitored_epoch != last_epoch => {
            for (var, w) in vars.iter().zip(&weights) {
                var.set(w)?;
            }
            best_monitored_epoch
        }
        _ => last_epoch,
    };
    let score = |split: &data::Split| -> Result<_, TrainError> {
        let (probs, loss) = infer(model, split, batch_size, device)?;
        Ok(metrics::evaluate(
            &split.labels,
            &probs,
            &dataset.classes,
            Some(loss),
        ))
    };
    Ok(TrainOutcome {
        valid: score(&dataset.valid)?,
        test: score(&dataset.test)?,
        epochs: records,
        best_epoch,
        best_monitored_epoch,
        stopped_early,
    })
}

fn msg(text: impl Into<String>) -> TrainError {
    TrainError::Candle(candle_core::Error::Msg(text.into()))
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
