//! Adam / AdamW as one pass over each parameter, updating the weights in place
//! (candle's tensor-op version allocates a dozen temporaries per parameter and step).

use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// Hyperparameters of one step. `l2` is added to the gradient as `l2·θ` (Adam's
/// weight decay); `shrink` multiplies θ before the step (AdamW's decoupled decay).
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// Learning rate α.
    pub lr: f64,
    /// Decay rate of the first moment (PyTorch's `betas[0]`).
    pub beta1: f64,
    /// Decay rate of the second moment (PyTorch's `betas[1]`).
    pub beta2: f64,
    /// Added to the denominator √v̂ + ε for numerical stability.
    pub eps: f64,
    /// L2 coefficient added to the gradient (Adam's `weight_decay`); 0 for none.
    pub l2: f64,
    /// Factor θ is multiplied by before the step: 1 − lr·weight_decay for AdamW, else 1.
    pub shrink: f64,
    /// 1-based step count for the bias corrections.
    pub step: i32,
}

/// θ, m, v updated in place from g, elementwise, with PyTorch's formulas:
/// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
/// θ ← θ − (lr/bc1)·m / (√v/√bc2 + eps).
/// Large parameters (the embedding) are split across rayon's threads; every
/// element gets the same arithmetic either way.
pub fn adam_update(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamStep) {
    const CHUNK: usize = 1 << 16;
    let n = theta.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    if n <= CHUNK {
        return adam_chunk(theta, g, m, v, s);
    }
    theta
        .par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((theta, g), m), v)| adam_chunk(theta, g, m, v, s));
}

fn adam_chunk(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamStep) {
    let n = theta.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let bc1 = 1.0 - s.beta1.powi(s.step);
    let bc2 = 1.0 - s.beta2.powi(s.step);
    let (b1, b2) = (s.beta1 as f32, s.beta2 as f32);
    let step = (s.lr / bc1) as f32;
    let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
    let (eps, l2, shrink) = (s.eps as f32, s.l2 as f32, s.shrink as f32);
    for i in 0..n {
        let p = theta[i] * shrink;
        let gi = g[i] + l2 * theta[i];
        let mi = b1 * m[i] + (1.0 - b1) * gi;
        let vi = b2 * v[i] + (1.0 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        theta[i] = p - step * mi / (vi.sqrt() * inv_sqrt_bc2 + eps);
    }
}

/// The update as a candle in-place op on θ with g as its second operand; the
/// moments live in host buffers owned by the optimizer.
struct InPlace<'a> {
    m: Mutex<&'a mut [f32]>,
    v: Mutex<&'a mut [f32]>,
    step: AdamStep,
}

impl InplaceOp2 for InPlace<'_> {
    fn name(&self) -> &'static str {
        "fused-adam"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(g)) = (s1, s2) else {
            bail!("fused adam: parameters and gradients must be f32");
        };
        let (Some((a1, b1)), Some((a2, b2))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            bail!("fused adam: parameter and gradient must be contiguous");
        };
        let mut m = self
            .m
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        let mut v = self
            .v
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        if b1 - a1 != b2 - a2 || m.len() != b1 - a1 {
            bail!("fused adam: parameter, gradient and moments differ in size");
        }
        adam_update(&mut theta[a1..b1], &g[a2..b2], &mut m, &mut v, &self.step);
        Ok(())
    }
}

/// Applies one step to the CPU f32 tensor `theta` in place (all views of its
/// storage, a `Var`'s included, see the new values).
pub fn adam_in_place(
    theta: &Tensor,
    g: &Tensor,
    m: &mut [f32],
    v: &mut [f32],
    step: AdamStep,
) -> Result<()> {
    let g = g.contiguous()?;
    let op = InPlace {
        m: Mutex::new(m),
        v: Mutex::new(v),
        step,
    };
    theta.inplace_op2(&g, &op)
}
