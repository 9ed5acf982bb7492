//! One direction of an LSTM or GRU layer over a whole padded batch as one candle
//! custom op: forward over all steps, and backpropagation through time by hand.
//!
//! Inputs: `xp` (T, B, G·H) = x·W_ihᵀ + b_ih for every step (one large product done
//! by the caller with ordinary candle ops, so autograd takes care of W_ih, b_ih and
//! x), `w_hh` (G·H, H) and `b_hh` (G·H). Output: (T+1, B, H): rows 0..T are the
//! step outputs (zero at padded steps), row T is each sequence's final state.
//! A padded step (t >= length) neither changes a sequence's state nor receives a
//! gradient, as in PyTorch's packed sequences. Gate orders as PyTorch: i,f,g,o
//! (LSTM) and r,z,n (GRU). CPU and f32 only: other devices and dtypes get an error,
//! and `model::Classifier` uses the reference layers there instead.

use super::math::{sigmoid, tanh};
use super::matmul::{gemm, threads, View};
use super::packed::Packed;
use crate::spec::Cell;
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// What the backward pass needs from the forward one, indexed by time step.
struct Saved {
    /// Per (t, b): LSTM i,f,g,o,tanh(c) (5H); GRU r,z,n,h·W_hnᵀ+b_hn (4H).
    acts: Vec<f32>,
    /// (T, B, H) state before step t.
    h_prev: Vec<f32>,
    /// (T, B, H) cell before step t (LSTM only).
    c_prev: Vec<f32>,
}

/// The custom op. `train` keeps the activations for `bwd`; without it the forward
/// pass stores nothing (inference).
pub struct FusedRecurrent {
    pub cell: Cell,
    pub reverse: bool,
    pub lengths: Vec<usize>,
    pub train: bool,
    /// One entry per sub-batch of `row_chunks`.
    saved: Mutex<Option<Vec<Saved>>>,
}

impl FusedRecurrent {
    pub fn new(cell: Cell, reverse: bool, lengths: Vec<usize>, train: bool) -> Self {
        Self {
            cell,
            reverse,
            lengths,
            train,
            saved: Mutex::new(None),
        }
    }

    fn per_row(&self) -> usize {
        match self.cell {
            Cell::Lstm => 5,
            Cell::Gru => 4,
        }
    }

    fn gates(&self) -> usize {
        match self.cell {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    /// Steps in processing order.
    fn order(&self, t: usize) -> Box<dyn Iterator<Item = usize>> {
        if self.reverse {
            Box::new((0..t).rev())
        } else {
            Box::new(0..t)
        }
    }

    /// Rows of the batch per worker: each sequence's recurrence depends only on its
    /// own state, so sub-batches run on separate threads with no synchronisation.
    fn row_chunks(&self, b: usize) -> Vec<Range<usize>> {
        let n = threads().min(b / 8).max(1);
        (0..n).map(|i| i * b / n..(i + 1) * b / n).collect()
    }

    fn sub(&self, rows: &Range<usize>) -> Self {
        Self::new(
            self.cell,
            self.reverse,
            self.lengths[rows.clone()].to_vec(),
            self.train,
        )
    }

    /// `run_forward` on sub-batches in parallel; outputs merged, activations kept
    /// per sub-batch.
    fn forward_all(
        &self,
        xp: &[f32],
        w_hh: &[f32],
        b_hh: &[f32],
        (t, b, h): (usize, usize, usize),
        save: bool,
    ) -> (Vec<f32>, Vec<Saved>) {
        let gh = self.gates() * h;
        let chunks = self.row_chunks(b);
        if chunks.len() == 1 {
            let (out, saved) = self.run_forward(xp, w_hh, b_hh, (t, b, h), save);
            return (out, saved.into_iter().collect());
        }
        let parts: Vec<(Vec<f32>, Option<Saved>)> = chunks
            .par_iter()
            .map(|rows| {
                let x = gather(xp, b, gh, t, rows);
                self.sub(rows)
                    .run_forward(&x, w_hh, b_hh, (t, rows.len(), h), save)
            })
            .collect();
        let mut out = vec![0f32; (t + 1) * b * h];
        let mut saved = Vec::new();
        for (rows, (o, s)) in chunks.iter().zip(parts) {
            scatter(&o, &mut out, b, h, t + 1, rows);
            saved.extend(s);
        }
        (out, saved)
    }

    /// `run_backward` on the same sub-batches as `forward_all`, merged.
    fn backward_all(
        &self,
        saved: &[Saved],
        grad: &[f32],
        w_hh: &[f32],
        (t, b, h): (usize, usize, usize),
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let gh = self.gates() * h;
        let chunks = self.row_chunks(b);
        if chunks.len() == 1 {
            return self.run_backward(&saved[0], grad, w_hh, (t, b, h), threads());
        }
        let parts: Vec<_> = chunks
            .par_iter()
            .zip(saved)
            .map(|(rows, s)| {
                let g = gather(grad, b, h, t + 1, rows);
                self.sub(rows)
                    .run_backward(s, &g, w_hh, (t, rows.len(), h), 1)
            })
            .collect();
        let mut d_xp = vec![0f32; t * b * gh];
        let mut d_w = vec![0f32; gh * h];
        let mut d_b = vec![0f32; gh];
        for (rows, (dx, dw, db)) in chunks.iter().zip(parts) {
            scatter(&dx, &mut d_xp, b, gh, t, rows);
            d_w.iter_mut().zip(dw).for_each(|(a, v)| *a += v);
            d_b.iter_mut().zip(db).for_each(|(a, v)| *a += v);
        }
        (d_xp, d_w, d_b)
    }

    /// Forward over all steps; returns (T+1, B, H) and, when `save`, the activations.
    fn run_forward(
        &self,
        xp: &[f32],
        w_hh: &[f32],
        b_hh: &[f32],
        (t_len, b, h): (usize, usize, usize),
        save: bool,
    ) -> (Vec<f32>, Option<Saved>) {
        let gh = self.gates() * h;
        let pr = self.per_row() * h;
        let mut out = vec![0f32; (t_len + 1) * b * h];
        let mut state = vec![0f32; b * h];
        let mut cell = vec![0f32; b * h];
        let mut pre = vec![0f32; b * gh];
        let mut scratch = vec![0f32; pr];
        let mut saved = save.then(|| Saved {
            acts: vec![0f32; t_len * b * pr],
            h_prev: vec![0f32; t_len * b * h],
            c_prev: if self.cell == Cell::Lstm {
                vec![0f32; t_len * b * h]
            } else {
                Vec::new()
            },
        });
        let w_t = Packed::new(View::transposed(w_hh, h), h, gh);
        for t in self.order(t_len) {
            if !self.lengths.iter().any(|&l| l > t) {
                continue;
            }
            if let Some(s) = saved.as_mut() {
                s.h_prev[t * b * h..(t + 1) * b * h].copy_from_slice(&state);
                if self.cell == Cell::Lstm {
                    s.c_prev[t * b * h..(t + 1) * b * h].copy_from_slice(&cell);
                }
            }
            w_t.mul(&state, b, &mut pre);
            for (r, &len) in self.lengths.iter().enumerate() {
                if t >= len {
                    continue;
                }
                let x = &xp[(t * b + r) * gh..(t * b + r + 1) * gh];
                let p = &pre[r * gh..(r + 1) * gh];
                let hs = &mut state[r * h..(r + 1) * h];
                let o = &mut out[(t * b + r) * h..(t * b + r + 1) * h];
                let acts = match saved.as_mut() {
                    Some(s) => &mut s.acts[(t * b + r) * pr..(t * b + r + 1) * pr],
                    None => &mut scratch[..],
                };
                match self.cell {
                    Cell::Lstm => {
                        let cs = &mut cell[r * h..(r + 1) * h];
                        dispatch!(lstm_fwd(x, p, b_hh, hs, cs, o, acts))
                    }
                    Cell::Gru => dispatch!(gru_fwd(x, p, b_hh, hs, o, acts)),
                }
            }
        }
        out[t_len * b * h..].copy_from_slice(&state);
        (out, saved)
    }

    /// Backpropagation through time. `grad` is the gradient of the (T+1, B, H)
    /// output. Returns the gradients of xp, w_hh and b_hh.
    fn run_backward(
        &self,
        saved: &Saved,
        grad: &[f32],
        w_hh: &[f32],
        (t_len, b, h): (usize, usize, usize),
        gemm_threads: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let g = self.gates();
        let gh = g * h;
        let pr = self.per_row() * h;
        let mut d_xp = vec![0f32; t_len * b * gh];
        // GRU's recurrent-side gate gradients differ from the input side in the n gate.
        let mut d_gh_all = match self.cell {
            Cell::Lstm => Vec::new(),
            Cell::Gru => vec![0f32; t_len * b * gh],
        };
        // Gradient reaching the state after the last step: the final-state output.
        let mut dh = grad[t_len * b * h..].to_vec();
        let mut dc = vec![0f32; b * h];
        let mut dh_rec = vec![0f32; b * h];
        let w_back = Packed::new(View::rows(w_hh, h), gh, h);
        let order: Vec<usize> = self.order(t_len).collect();
        for &t in order.iter().rev() {
            if !self.lengths.iter().any(|&l| l > t) {
                continue;
            }
            for (r, &len) in self.lengths.iter().enumerate() {
                if t >= len {
                    continue;
                }
                let dy = &grad[(t * b + r) * h..(t * b + r + 1) * h];
                let acts = &saved.acts[(t * b + r) * pr..(t * b + r + 1) * pr];
                let dhr = &mut dh[r * h..(r + 1) * h];
                let dx = &mut d_xp[(t * b + r) * gh..(t * b + r + 1) * gh];
                match self.cell {
                    Cell::Lstm => {
                        let cp = &saved.c_prev[(t * b + r) * h..(t * b + r + 1) * h];
                        let dcr = &mut dc[r * h..(r + 1) * h];
                        dispatch!(lstm_bwd(dy, acts, cp, dhr, dcr, dx))
                    }
                    Cell::Gru => {
                        let hp = &saved.h_prev[(t * b + r) * h..(t * b + r + 1) * h];
                        let dg = &mut d_gh_all[(t * b + r) * gh..(t * b + r + 1) * gh];
                        dispatch!(gru_bwd(dy, acts, hp, dhr, dx, dg))
                    }
                }
            }
            // dh_prev = d(pre-activations)·W_hh for the active rows; padded rows pass
            // their gradient through unchanged (their d rows are zero).
            let d_step = match self.cell {
                Cell::Lstm => &d_xp[t * b * gh..(t + 1) * b * gh],
                Cell::Gru => &d_gh_all[t * b * gh..(t + 1) * b * gh],
            };
            w_back.mul(d_step, b, &mut dh_rec);
            for (r, &len) in self.lengths.iter().enumerate() {
                if t < len {
                    let (dst, src) = (&mut dh[r * h..(r + 1) * h], &dh_rec[r * h..(r + 1) * h]);
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
        }
        let d_gh = match self.cell {
            Cell::Lstm => &d_xp,
            Cell::Gru => &d_gh_all,
        };
        // dW_hh = Σ_t d_ghᵀ·h_prev as one product over all steps and rows.
        let mut d_w = vec![0f32; gh * h];
        gemm(
            &mut d_w,
            (gh, h, t_len * b),
            View::transposed(d_gh, gh),
            View::rows(&saved.h_prev, h),
            false,
            gemm_threads,
        );
        let mut d_b = vec![0f32; gh];
        for row in d_gh.chunks_exact(gh) {
            for (d, s) in d_b.iter_mut().zip(row) {
                *d += s;
            }
        }
        (d_xp, d_w, d_b)
    }
}

/// Runs a gate kernel with AVX-512 or AVX2+FMA code when the CPU has it.
macro_rules! dispatch {
    ($f:ident($($a:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was detected at run time.
                unsafe { simd::$f::avx512($($a),*) }
            } else if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the features were detected at run time.
                unsafe { simd::$f::avx2($($a),*) }
            } else {
                $f($($a),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $f($($a),*)
        }
    }};
}
use dispatch;

/// The same gate kernels compiled for wider vector units.
#[cfg(target_arch = "x86_64")]
mod simd {
    macro_rules! versions {
        ($name:ident($($a:ident: $t:ty),*)) => {
            pub mod $name {
                #[target_feature(enable = "avx512f,avx2,fma")]
                pub unsafe fn avx512($($a: $t),*) {
                    super::super::$name($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                pub unsafe fn avx2($($a: $t),*) {
                    super::super::$name($($a),*)
                }
            }
        };
    }
    versions!(lstm_fwd(x: &[f32], p: &[f32], b: &[f32], h: &mut [f32], c: &mut [f32], o: &mut [f32], acts: &mut [f32]));
    versions!(gru_fwd(x: &[f32], p: &[f32], b: &[f32], h: &mut [f32], o: &mut [f32], acts: &mut [f32]));
    versions!(lstm_bwd(dy: &[f32], acts: &[f32], c_prev: &[f32], dh: &mut [f32], dc: &mut [f32], dx: &mut [f32]));
    versions!(gru_bwd(dy: &[f32], acts: &[f32], h_prev: &[f32], dh: &mut [f32], dx: &mut [f32], dg: &mut [f32]));
}

/// One LSTM row: pre-activations x + p + b → new h, c; output o = h; saves
/// i, f, g, o, tanh(c) into `acts` (5H).
#[inline(always)]
fn lstm_fwd(
    x: &[f32],
    p: &[f32],
    b: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    o: &mut [f32],
    acts: &mut [f32],
) {
    let n = h.len();
    let (c, o) = (&mut c[..n], &mut o[..n]);
    let (ai, rest) = acts[..5 * n].split_at_mut(n);
    let (af, rest) = rest.split_at_mut(n);
    let (ag, rest) = rest.split_at_mut(n);
    let (ao, at) = rest.split_at_mut(n);
    let (xi, xf, xg, xo) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n], &x[3 * n..4 * n]);
    let (pi, pf, pg, po) = (&p[..n], &p[n..2 * n], &p[2 * n..3 * n], &p[3 * n..4 * n]);
    let (bi, bf, bg, bo) = (&b[..n], &b[n..2 * n], &b[2 * n..3 * n], &b[3 * n..4 * n]);
    for j in 0..n {
        let i = sigmoid(xi[j] + pi[j] + bi[j]);
        let f = sigmoid(xf[j] + pf[j] + bf[j]);
        let g = tanh(xg[j] + pg[j] + bg[j]);
        let og = sigmoid(xo[j] + po[j] + bo[j]);
        let cn = f * c[j] + i * g;
        let tc = tanh(cn);
        c[j] = cn;
        h[j] = og * tc;
        o[j] = og * tc;
        ai[j] = i;
        af[j] = f;
        ag[j] = g;
        ao[j] = og;
        at[j] = tc;
    }
}

/// One GRU row: r, z from x + p + b; n = tanh(x_n + r·(p_n + b_n)); h ← n + z·(h − n).
/// Saves r, z, n, p_n + b_n into `acts` (4H).
#[inline(always)]
fn gru_fwd(x: &[f32], p: &[f32], b: &[f32], h: &mut [f32], o: &mut [f32], acts: &mut [f32]) {
    let n = h.len();
    let o = &mut o[..n];
    let (ar, rest) = acts[..4 * n].split_at_mut(n);
    let (az, rest) = rest.split_at_mut(n);
    let (an, ahn) = rest.split_at_mut(n);
    let (xr, xz, xn) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n]);
    let (pr, pz, pn) = (&p[..n], &p[n..2 * n], &p[2 * n..3 * n]);
    let (br, bz, bn) = (&b[..n], &b[n..2 * n], &b[2 * n..3 * n]);
    for j in 0..n {
        let r = sigmoid(xr[j] + pr[j] + br[j]);
        let z = sigmoid(xz[j] + pz[j] + bz[j]);
        let hn = pn[j] + bn[j];
        let nn = tanh(xn[j] + r * hn);
        let hv = nn + z * (h[j] - nn);
        h[j] = hv;
        o[j] = hv;
        ar[j] = r;
        az[j] = z;
        an[j] = nn;
        ahn[j] = hn;
    }
}

/// One LSTM row backward. `dh` holds the gradient reaching the new h (from later
/// steps) and `dc` the new c's; `dy` adds the output's. Writes the pre-activation
/// gradients to `dx` (4H), leaves in `dc` the gradient of the previous c, and zeroes
/// `dh` (the caller adds the recurrent product).
#[inline(always)]
fn lstm_bwd(
    dy: &[f32],
    acts: &[f32],
    c_prev: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    dx: &mut [f32],
) {
    let n = dh.len();
    let (dy, c_prev, dc) = (&dy[..n], &c_prev[..n], &mut dc[..n]);
    let (ai, af, ag, ao, at) = (
        &acts[..n],
        &acts[n..2 * n],
        &acts[2 * n..3 * n],
        &acts[3 * n..4 * n],
        &acts[4 * n..5 * n],
    );
    let (di, rest) = dx[..4 * n].split_at_mut(n);
    let (df, rest) = rest.split_at_mut(n);
    let (dg, do_) = rest.split_at_mut(n);
    for j in 0..n {
        let dht = dh[j] + dy[j];
        let (i, f, g, o, tc) = (ai[j], af[j], ag[j], ao[j], at[j]);
        let dct = dc[j] + dht * o * (1.0 - tc * tc);
        di[j] = dct * g * i * (1.0 - i);
        df[j] = dct * c_prev[j] * f * (1.0 - f);
        dg[j] = dct * i * (1.0 - g * g);
        do_[j] = dht * tc * o * (1.0 - o);
        dc[j] = dct * f;
        dh[j] = 0.0;
    }
}

/// One GRU row backward: writes the input-side pre-activation gradients to `dx` and
/// the recurrent-side ones (n gate scaled by r) to `dg`, and leaves in `dh` the
/// direct part z·dh of the previous state's gradient.
#[inline(always)]
fn gru_bwd(
    dy: &[f32],
    acts: &[f32],
    h_prev: &[f32],
    dh: &mut [f32],
    dx: &mut [f32],
    dg: &mut [f32],
) {
    let n = dh.len();
    let (dy, h_prev) = (&dy[..n], &h_prev[..n]);
    let (ar, az, an, ahn) = (
        &acts[..n],
        &acts[n..2 * n],
        &acts[2 * n..3 * n],
        &acts[3 * n..4 * n],
    );
    let (dxr, rest) = dx[..3 * n].split_at_mut(n);
    let (dxz, dxn) = rest.split_at_mut(n);
    let (dgr, rest) = dg[..3 * n].split_at_mut(n);
    let (dgz, dgn) = rest.split_at_mut(n);
    for j in 0..n {
        let dht = dh[j] + dy[j];
        let (r, z, nn, hn) = (ar[j], az[j], an[j], ahn[j]);
        let dan = dht * (1.0 - z) * (1.0 - nn * nn);
        let dar = dan * hn * r * (1.0 - r);
        let daz = dht * (h_prev[j] - nn) * z * (1.0 - z);
        dxr[j] = dar;
        dxz[j] = daz;
        dxn[j] = dan;
        dgr[j] = dar;
        dgz[j] = daz;
        dgn[j] = dan * r;
        dh[j] = dht * z;
    }
}

impl CustomOp3 for FusedRecurrent {
    fn name(&self) -> &'static str {
        "fused-recurrent"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xp = contiguous_f32(s1, l1, "xp")?;
        let w_hh = contiguous_f32(s2, l2, "w_hh")?;
        let b_hh = contiguous_f32(s3, l3, "b_hh")?;
        let dims = self.check(l1, l2, l3)?;
        let (out, saved) = self.forward_all(xp, w_hh, b_hh, dims, self.train);
        if self.train {
            *self
                .saved
                .lock()
                .map_err(|_| candle_core::Error::Msg("poisoned".into()))? = Some(saved);
        }
        let (t, b, h) = dims;
        Ok((CpuStorage::F32(out), Shape::from((t + 1, b, h))))
    }

    fn bwd(
        &self,
        xp: &Tensor,
        w_hh: &Tensor,
        b_hh: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (t, b, gh) = xp.dims3()?;
        let h = w_hh.dim(1)?;
        let dims = (t, b, h);
        let w = w_hh.flatten_all()?.to_vec1::<f32>()?;
        let saved = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?
            .take();
        // Without saved activations (an op built with train = false), recompute them.
        let saved = match saved {
            Some(s) => s,
            None => {
                let x = xp.flatten_all()?.to_vec1::<f32>()?;
                let bh = b_hh.to_vec1::<f32>()?;
                self.forward_all(&x, &w, &bh, dims, true).1
            }
        };
        let grad = grad.flatten_all()?.to_vec1::<f32>()?;
        let (d_xp, d_w, d_b) = self.backward_all(&saved, &grad, &w, dims);
        let dev = xp.device();
        Ok((
            Some(Tensor::from_vec(d_xp, (t, b, gh), dev)?),
            Some(Tensor::from_vec(d_w, (gh, h), dev)?),
            Some(Tensor::from_vec(d_b, gh, dev)?),
        ))
    }
}

impl FusedRecurrent {
    fn check(&self, l1: &Layout, l2: &Layout, l3: &Layout) -> Result<(usize, usize, usize)> {
        let (t, b, gh) = l1.shape().dims3()?;
        let (gh2, h) = l2.shape().dims2()?;
        if gh != self.gates() * h || gh2 != gh || l3.shape().dims() != [gh] {
            bail!(
                "fused recurrent: xp {:?}, w_hh {:?}, b_hh {:?} do not fit a {:?} layer",
                l1.shape(),
                l2.shape(),
                l3.shape(),
                self.cell
            );
        }
        if self.lengths.len() != b {
            bail!(
                "fused recurrent: {} lengths for a batch of {b}",
                self.lengths.len()
            );
        }
        Ok((t, b, h))
    }
}

/// Rows `rows` of every step of a (steps, b, width) buffer, as (steps, rows, width).
fn gather(src: &[f32], b: usize, width: usize, steps: usize, rows: &Range<usize>) -> Vec<f32> {
    let mut out = Vec::with_capacity(steps * rows.len() * width);
    for t in 0..steps {
        out.extend_from_slice(&src[(t * b + rows.start) * width..(t * b + rows.end) * width]);
    }
    out
}

/// The inverse of `gather`.
fn scatter(
    src: &[f32],
    dst: &mut [f32],
    b: usize,
    width: usize,
    steps: usize,
    rows: &Range<usize>,
) {
    let n = rows.len() * width;
    for t in 0..steps {
        dst[(t * b + rows.start) * width..][..n].copy_from_slice(&src[t * n..][..n]);
    }
}

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, name: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("fused recurrent: {name} must be f32, got {:?}", s.dtype());
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("fused recurrent: {name} must be contiguous"),
    }
}

/// Runs one direction: `xp` (T, B, G·H) projected inputs, weights `w_hh`, `b_hh`.
/// Returns (outputs (T, B, H), final state (B, H)). `train` records the op for
/// backpropagation; without it nothing is kept for a backward pass.
pub fn fused_recurrent(
    cell: Cell,
    reverse: bool,
    xp: &Tensor,
    w_hh: &Tensor,
    b_hh: &Tensor,
    lengths: &[usize],
    train: bool,
) -> Result<(Tensor, Tensor)> {
    let op = FusedRecurrent::new(cell, reverse, lengths.to_vec(), train);
    let (xp, w_hh, b_hh) = (xp.contiguous()?, w_hh.contiguous()?, b_hh.contiguous()?);
    let out = if train {
        xp.apply_op3_arc(&w_hh, &b_hh, Arc::new(Box::new(op)))?
    } else {
        xp.apply_op3_no_bwd(&w_hh, &b_hh, &op)?
    };
    let t = xp.dim(0)?;
    Ok((out.narrow(0, 0, t)?, out.get(t)?))
}
