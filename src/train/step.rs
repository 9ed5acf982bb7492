//! One optimisation step on one batch, and batched inference over a split.

use super::clip::clip_grad_norm_with_rows;
use super::loss::{cross_entropy, nll_per_row};
use super::optim::Optimizer;
use super::Trainable;
use crate::data::{self, Batch, Split};
use candle_core::{DType, Device, Result, Tensor, D};
use rand_chacha::ChaCha8Rng;

/// Settings every training step shares.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// One weight per class (n_classes,), for a weighted cross-entropy.
    pub class_weights: Option<Tensor>,
    /// Global gradient-norm limit; 0 turns clipping off.
    pub grad_clip: f64,
}

/// The batch's ids as a (batch, time) u32 tensor.
pub fn batch_ids(batch: &Batch, device: &Device) -> Result<Tensor> {
    Tensor::from_slice(&batch.ids, (batch.batch, batch.time), device)
}

/// Forward (with dropout from `dropout`), loss, backward, clip, optimizer step.
/// Returns the batch loss. A NaN or infinite loss is returned without touching the
/// weights, so the caller can report it with the weights as they were.
pub fn train_step<M: Trainable + ?Sized>(
    model: &M,
    optimizer: &mut dyn Optimizer,
    batch: &Batch,
    opts: &StepOptions,
    dropout: &mut ChaCha8Rng,
    device: &Device,
) -> Result<f64> {
    let ids = batch_ids(batch, device)?;
    let labels = Tensor::new(batch.labels.as_slice(), device)?;
    let logits = model.forward(&ids, &batch.lengths, Some(dropout))?;
    let loss = cross_entropy(&logits, &labels, opts.class_weights.as_ref())?;
    let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !value.is_finite() {
        return Ok(value);
    }
    let mut grads = loss.backward()?;
    let mut sparse = model.take_sparse_grad();
    if opts.grad_clip > 0.0 {
        let rows = sparse.as_mut().map(|(_, rows)| rows);
        clip_grad_norm_with_rows(&mut grads, &model.vars(), rows, opts.grad_clip)?;
    }
    optimizer.step(&grads)?;
    if let Some((var, rows)) = sparse {
        optimizer.step_rows(&var, &rows)?;
    }
    Ok(value)
}

/// Softmax probabilities for every row of `split`, in the split's order, and the
/// mean (unweighted) cross-entropy against its labels (0 for an empty split).
/// Rows are bucketed by length so little padding is computed.
pub fn infer<M: Trainable + ?Sized>(
    model: &M,
    split: &Split,
    batch_size: usize,
    device: &Device,
) -> Result<(Vec<Vec<f32>>, f64)> {
    let n = split.len();
    let mut probs = vec![Vec::new(); n];
    if n == 0 {
        return Ok((probs, 0.0));
    }
    let order: Vec<usize> = (0..n).collect();
    let mut nll_sum = 0.0;
    for batch in data::batches(split, &order, batch_size.max(1), true, None) {
        let ids = batch_ids(&batch, device)?;
        let logits = model.forward_inference(&ids, &batch.lengths)?.detach();
        let logits = logits.to_dtype(DType::F32)?;
        let labels = Tensor::new(batch.labels.as_slice(), device)?;
        nll_sum += nll_per_row(&logits, &labels)?
            .to_dtype(DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        let rows = candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
        for (&row, p) in batch.rows.iter().zip(rows) {
            if let Some(slot) = probs.get_mut(row) {
                *slot = p;
            }
        }
    }
    Ok((probs, nll_sum / n as f64))
}
