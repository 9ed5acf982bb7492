//! Gradient clipping by global L2 norm, as `torch.nn.utils.clip_grad_norm_`.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

/// Scale the gradients of `vars` in `grads` so their global L2 norm is at most
/// `max_norm`; returns the norm before clipping. `max_norm <= 0` turns clipping off
/// (the norm is still returned). As torch, the scale is `max_norm / (norm + 1e-6)`
/// and is only applied when below 1.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    // Summed on the device in f64 and read back once: one sync per step, and many
    // parameters lose no precision.
    let mut sum_sq: Option<Tensor> = None;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            let sq = g.to_dtype(DType::F64)?.sqr()?.sum_all()?;
            sum_sq = Some(match sum_sq {
                Some(total) => (total + sq)?,
                None => sq,
            });
        }
    }
    let norm = match sum_sq {
        Some(total) => total.to_scalar::<f64>()?.sqrt(),
        None => 0.0,
    };
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
