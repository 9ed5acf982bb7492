//! Pooling of the top layer's outputs into one feature vector per sequence,
//! over true positions only.

use crate::spec::Pooling;
use candle_core::{bail, Result, Tensor};

/// `outputs` are the top layer's outputs, one (T, B, H) tensor per direction
/// (their concatenation is the (T, B, D) output), zero at padded steps; `last`
/// (B, D) is the concatenated final state. Mean and max work element by element,
/// so each direction is pooled on its own and the results joined: the (T, B, D)
/// concatenation is never built. An empty sequence (length 0) pools to zeros.
pub fn pool(kind: Pooling, outputs: &[Tensor], last: &Tensor, lengths: &[usize]) -> Result<Tensor> {
    if kind == Pooling::Last {
        return Ok(last.clone());
    }
    let parts = outputs
        .iter()
        .map(|o| pool_one(kind, o, lengths))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 1)
}

fn pool_one(kind: Pooling, outputs: &Tensor, lengths: &[usize]) -> Result<Tensor> {
    let (t, b, _) = outputs.dims3()?;
    let (dtype, device) = (outputs.dtype(), outputs.device());
    match kind {
        Pooling::Mean => {
            // Padded outputs are zero, so the sum covers true positions only.
            let inv: Vec<f32> = lengths.iter().map(|&l| 1.0 / l.max(1) as f32).collect();
            let inv = Tensor::from_vec(inv, (b, 1), device)?.to_dtype(dtype)?;
            outputs.sum(0)?.broadcast_mul(&inv)
        }
        Pooling::Max => {
            let offset = padding_offset(lengths, t, b)?;
            let offset = offset
                .reshape((t, b, 1))?
                .to_device(device)?
                .to_dtype(dtype)?;
            outputs.broadcast_add(&offset)?.max(0)
        }
        Pooling::Last => bail!("last-state pooling reads the final states"),
        Pooling::Attention => bail!("attention pooling needs its parameters: use `attend`"),
    }
}

/// The top layer's per-direction outputs joined along the feature axis (T, B, D).
pub fn join(outputs: &[Tensor]) -> Result<Tensor> {
    match outputs {
        [one] => Ok(one.clone()),
        parts => Tensor::cat(parts, 2),
    }
}

/// (T, B): 0 at true positions, -1e30 at padded ones, so they never win a max and
/// get zero weight in a softmax. Position 0 of an empty sequence stays eligible
/// (its output is zero), so it pools to zeros.
fn padding_offset(lengths: &[usize], t: usize, b: usize) -> Result<Tensor> {
    let mut offset = vec![0f32; t * b];
    for (i, &l) in lengths.iter().enumerate() {
        for s in l.max(1)..t {
            offset[s * b + i] = -1e30;
        }
    }
    Tensor::from_vec(offset, (t, b), &candle_core::Device::Cpu)
}

/// Additive attention weights (T, B) over `outputs` (T, B, D):
/// score_t = v · tanh(W h_t + b) with `w` (A, D), `b` (A), `v` (A); a softmax over
/// each sequence's true positions (padded positions get exactly zero weight).
pub fn attention_weights(
    outputs: &Tensor,
    w: &Tensor,
    b: &Tensor,
    v: &Tensor,
    lengths: &[usize],
) -> Result<Tensor> {
    let (t, batch, d) = outputs.dims3()?;
    let a = v.dim(0)?;
    let hidden = outputs
        .reshape((t * batch, d))?
        .matmul(&w.t()?)?
        .broadcast_add(b)?
        .tanh()?;
    let scores = hidden.matmul(&v.reshape((a, 1))?)?.reshape((t, batch))?;
    let offset = padding_offset(lengths, t, batch)?
        .to_device(outputs.device())?
        .to_dtype(outputs.dtype())?;
    candle_nn::ops::softmax(&(scores + offset)?, 0)
}

/// The weighted sum (B, D) of `outputs` (T, B, D) with `weights` (T, B).
pub fn attend(outputs: &Tensor, weights: &Tensor) -> Result<Tensor> {
    outputs.broadcast_mul(&weights.unsqueeze(2)?)?.sum(0)
}
