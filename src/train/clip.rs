//! Gradient clipping by global L2 norm, as `torch.nn.utils.clip_grad_norm_`.

use crate::kernels::embedding::SparseRows;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Result, Storage, Tensor, Var};

/// Scale the gradients of `vars` in `grads` so their global L2 norm is at most
/// `max_norm`; returns the norm before clipping. `max_norm <= 0` turns clipping off
/// (the norm is still returned). As torch, the scale is `max_norm / (norm + 1e-6)`
/// and is only applied when below 1.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    clip_grad_norm_with_rows(grads, vars, None, max_norm)
}

/// As [`clip_grad_norm`], with a parameter's row gradients (a sparse embedding)
/// counted in the norm and scaled with the rest.
pub fn clip_grad_norm_with_rows(
    grads: &mut GradStore,
    vars: &[Var],
    mut rows: Option<&mut SparseRows>,
    max_norm: f64,
) -> Result<f64> {
    // Summed on the device in f64 and read back once: one sync per step, and many
    // parameters lose no precision.
    let mut sum_sq: Option<Tensor> = None;
    let mut host_sum = 0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            if let Some(s) = host_sum_sq(g)? {
                host_sum += s;
                continue;
            }
            let sq = g.to_dtype(DType::F64)?.sqr()?.sum_all()?;
            sum_sq = Some(match sum_sq {
                Some(total) => (total + sq)?,
                None => sq,
            });
        }
    }
    let dense = host_sum
        + match sum_sq {
            Some(total) => total.to_scalar::<f64>()?,
            None => 0.0,
        };
    let norm = (dense + rows.as_ref().map_or(0.0, |r| r.sum_sq())).sqrt();
    if max_norm <= 0.0 {
        return Ok(norm);
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        if let Some(r) = rows.as_mut() {
            r.scale(coef);
        }
        for var in vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let scaled = g.affine(coef, 0.0)?;
                grads.insert(var.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

/// Σg² in f64 for a CPU f32 gradient, read in place on rayon's threads (the
/// embedding's gradient has millions of values; converting it to an f64 tensor
/// first cost several ms a step). `None` for other devices and dtypes.
fn host_sum_sq(g: &Tensor) -> Result<Option<f64>> {
    use rayon::prelude::*;
    if !g.device().is_cpu() || g.dtype() != DType::F32 || !g.is_contiguous() {
        return Ok(None);
    }
    let (storage, layout) = g.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(data)), Some((a, b))) =
        (&*storage, layout.contiguous_offsets())
    else {
        return Ok(None);
    };
    // Chunk sums collected in order and added in order: the same total whatever
    // the thread scheduling (resumed runs must repeat uninterrupted ones).
    let parts: Vec<f64> = data[a..b]
        .par_chunks(1 << 16)
        .map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
        .collect();
    Ok(Some(parts.iter().sum()))
}
