//! Gradient clipping by global L2 norm, as `torch.nn.utils.clip_grad_norm_`.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Var};

/// Scale the gradients of `vars` in `grads` so their global L2 norm is at most
/// `max_norm`; returns the norm before clipping. `max_norm <= 0` turns clipping off
/// (the norm is still returned). As torch, the scale is `max_norm / (norm + 1e-6)`
/// and is only applied when below 1.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut sum_sq = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            // One scalar per tensor; summed in f64 so many parameters lose no precision.
            sum_sq += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    let norm = sum_sq.sqrt();
    if max_norm <= 0.0 {
        return Ok(norm);
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for var in vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let scaled = g.affine(coef, 0.0)?;
                grads.insert(var.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}
