//! One direction of an LSTM or GRU layer over a whole padded batch as one candle
//! custom op: the input projection, the recurrence, and backpropagation through
//! time by hand, so that no (T, B, G·H) tensor passes through candle's autograd.
//!
//! Inputs: `x` (T, B, I), `w` (G·H, I + H) = [W_ih | W_hh] and `b` (2·G·H) =
//! [b_ih ; b_hh] (the caller concatenates them; candle's autograd splits their
//! gradients back). Output: (T+1, B, H): rows 0..T are the step outputs (zero at
//! padded steps), row T is each sequence's final state. A padded step
//! (t >= length) neither changes a sequence's state nor receives a gradient, as in
//! PyTorch's packed sequences. Gate orders as PyTorch: i,f,g,o (LSTM) and r,z,n
//! (GRU). CPU and f32 only: other devices and dtypes get an error, and
//! `model::Classifier` uses the reference layers there instead.

use super::math::{sigmoid, tanh};
use super::matmul::{gemm, gemm_into, threads, View};
use super::packed::Packed;
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

/// The recurrent cell a kernel runs, which fixes the gate layout of the weights'
/// G·H rows: LSTM G = 4 (i, f, g, o), GRU G = 3 (r, z, n). The kernels' own type,
/// so they depend on no spec type; `model` converts `spec::Cell` into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Long short-term memory (Hochreiter & Schmidhuber 1997), PyTorch's `nn.LSTM`.
    Lstm,
    /// Gated recurrent unit (Cho et al. 2014), PyTorch's `nn.GRU`.
    Gru,
}
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Sizes: steps, batch rows, input width, hidden width.
#[derive(Clone, Copy)]
struct Dims {
    t: usize,
    b: usize,
    i: usize,
    h: usize,
}

/// What the backward pass needs from the forward one, indexed by time step.
struct Saved {
    /// Per (t, b): LSTM i,f,g,o,tanh(c) (5H); GRU r,z,n,h·W_hnᵀ+b_hn (4H).
    acts: Vec<f32>,
    /// (T, B, I + H): each row's input x and its state before step t, side by
    /// side, so that dW = d_gatesᵀ·[x | h_prev] is one product for the LSTM.
    xh: Vec<f32>,
    /// (T, B, H) cell before step t (LSTM only).
    c_prev: Vec<f32>,
}

/// Gradients of one sub-batch: x's rows, and its share of w and b.
struct Grads {
    d_x: Vec<f32>,
    d_w: Vec<f32>,
    d_b: Vec<f32>,
}

/// Where each step's projected input x·W_ihᵀ comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The layer's input x (T, B, I), projected by one product inside the op.
    X(&'a [f32]),
    /// Rows of a (V, G·H) table of projected embeddings, picked by time-major
    /// (T·B) token ids (inference only; see [`fused_recurrent_table`]).
    Table { table: &'a [f32], ids: &'a [u32] },
}

/// Views of W_ih and W_hh inside the row-major (G·H, I + H) `w`.
#[derive(Clone, Copy)]
struct Weights<'a> {
    w: &'a [f32],
    /// Input width I; each row is I + H long.
    i: usize,
    stride: usize,
}

impl<'a> Weights<'a> {
    fn new(w: &'a [f32], d: Dims) -> Self {
        Self {
            w,
            i: d.i,
            stride: d.i + d.h,
        }
    }
    /// W_ihᵀ as an (I × G·H) matrix.
    fn ih_t(self) -> View<'a> {
        View {
            data: self.w,
            rs: 1,
            cs: self.stride,
        }
    }
    /// W_ih as a (G·H × I) matrix.
    fn ih(self) -> View<'a> {
        View {
            data: self.w,
            rs: self.stride,
            cs: 1,
        }
    }
    /// W_hhᵀ as an (H × G·H) matrix.
    fn hh_t(self) -> View<'a> {
        View {
            data: &self.w[self.i..],
            rs: 1,
            cs: self.stride,
        }
    }
    /// W_hh as a (G·H × H) matrix.
    fn hh(self) -> View<'a> {
        View {
            data: &self.w[self.i..],
            rs: self.stride,
            cs: 1,
        }
    }
}

/// The custom op. `train` keeps the activations for `bwd`; without it the forward
/// pass stores nothing (inference).
pub struct FusedRecurrent {
    /// The cell, which fixes the gate count G.
    pub cell: Cell,
    /// Run from each sequence's last true token back to step 0 (a backward direction).
    pub reverse: bool,
    /// True length of each of the B sequences; steps at or past it are padding.
    pub lengths: Vec<usize>,
    /// Keep the activations for the backward pass.
    pub train: bool,
    /// Table mode: the first input is a (V, G·H) projection table and these are
    /// the batch's time-major token ids.
    table_ids: Option<Vec<u32>>,
    /// One entry per sub-batch of `row_chunks`.
    saved: Mutex<Option<Vec<Saved>>>,
}

impl FusedRecurrent {
    /// An op over batches whose sequences have `lengths` (B); in table mode only
    /// through [`fused_recurrent_table`].
    pub fn new(cell: Cell, reverse: bool, lengths: Vec<usize>, train: bool) -> Self {
        Self {
            cell,
            reverse,
            lengths,
            train,
            table_ids: None,
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

    /// `run_forward` on sub-batches in parallel, each writing its own rows of the
    /// (T+1, B, H) output; activations kept per sub-batch.
    fn forward_all(
        &self,
        src: Source,
        w: &[f32],
        b: &[f32],
        d: Dims,
        save: bool,
    ) -> (Vec<f32>, Vec<Saved>) {
        let chunks = self.row_chunks(d.b);
        // Zero-filled: padded steps' outputs stay zero.
        let mut out = vec![0f32; (d.t + 1) * d.b * d.h];
        let mut parts: Vec<Vec<&mut [f32]>> = chunks.iter().map(|_| Vec::new()).collect();
        for step in out.chunks_exact_mut(d.b * d.h) {
            let mut rest = step;
            for (rows, part) in chunks.iter().zip(parts.iter_mut()) {
                let (mine, tail) = rest.split_at_mut(rows.len() * d.h);
                part.push(mine);
                rest = tail;
            }
        }
        if chunks.len() == 1 {
            let saved = self.run_forward(src, w, b, d, &mut parts[0], save, threads());
            return (out, saved.into_iter().collect());
        }
        let saved: Vec<Option<Saved>> = chunks
            .par_iter()
            .zip(parts.into_par_iter())
            .map(|(rows, mut part)| {
                let sub = Dims { b: rows.len(), ..d };
                let mut run = |src| {
                    self.sub(rows)
                        .run_forward(src, w, b, sub, &mut part, save, 1)
                };
                match src {
                    Source::X(x) => run(Source::X(&gather(x, d.b, d.i, d.t, rows))),
                    Source::Table { table, ids } => run(Source::Table {
                        table,
                        ids: &gather(ids, d.b, 1, d.t, rows),
                    }),
                }
            })
            .collect();
        (out, saved.into_iter().flatten().collect())
    }

    /// `run_backward` on the same sub-batches as `forward_all`, merged.
    fn backward_all(&self, saved: &[Saved], grad: &[f32], w: &[f32], d: Dims) -> Grads {
        let chunks = self.row_chunks(d.b);
        if chunks.len() == 1 {
            return self.run_backward(&saved[0], grad, w, d, threads());
        }
        let parts: Vec<Grads> = chunks
            .par_iter()
            .zip(saved)
            .map(|(rows, s)| {
                let g = gather(grad, d.b, d.h, d.t + 1, rows);
                self.sub(rows)
                    .run_backward(s, &g, w, Dims { b: rows.len(), ..d }, 1)
            })
            .collect();
        let mut all = Grads {
            d_x: vec![0f32; d.t * d.b * d.i],
            d_w: vec![0f32; w.len()],
            d_b: vec![0f32; 2 * self.gates() * d.h],
        };
        for (rows, part) in chunks.iter().zip(parts) {
            scatter(&part.d_x, &mut all.d_x, d.b, d.i, d.t, rows);
            all.d_w.iter_mut().zip(part.d_w).for_each(|(a, v)| *a += v);
            all.d_b.iter_mut().zip(part.d_b).for_each(|(a, v)| *a += v);
        }
        all
    }

    /// Forward over all steps into `out`, the (B, H) block of each of the T+1
    /// output rows (zero-filled); returns the activations when `save`.
    /// `gemm_threads` splits the input projection.
    #[allow(clippy::too_many_arguments)]
    fn run_forward(
        &self,
        src: Source,
        w: &[f32],
        bias: &[f32],
        d: Dims,
        out: &mut [&mut [f32]],
        save: bool,
        gemm_threads: usize,
    ) -> Option<Saved> {
        let Dims { t: t_len, b, i, h } = d;
        let gh = self.gates() * h;
        let pr = self.per_row() * h;
        let (b_ih, b_hh) = bias.split_at(gh);
        let weights = Weights::new(w, d);
        // xp = x·W_ihᵀ for every step: one product over all of them (the gate
        // kernels add b_ih). A table already holds each token's projection.
        let mut xp = Vec::new();
        let x = match src {
            Source::X(x) => {
                xp = vec![0f32; t_len * b * gh];
                gemm(
                    &mut xp,
                    (t_len * b, gh, i),
                    View::rows(x, i),
                    weights.ih_t(),
                    false,
                    gemm_threads,
                );
                x
            }
            Source::Table { .. } => &[],
        };
        let projected = |row: usize| -> &[f32] {
            match src {
                Source::X(_) => &xp[row * gh..(row + 1) * gh],
                Source::Table { table, ids } => {
                    let id = ids[row] as usize;
                    &table[id * gh..(id + 1) * gh]
                }
            }
        };
        let mut state = vec![0f32; b * h];
        let mut cell = vec![0f32; b * h];
        let mut pre = vec![0f32; b * gh];
        let mut scratch = vec![0f32; pr];
        let mut saved = save.then(|| Saved {
            acts: vec![0f32; t_len * b * pr],
            xh: {
                let mut xh = vec![0f32; t_len * b * (i + h)];
                for (dst, src) in xh.chunks_exact_mut(i + h).zip(x.chunks_exact(i)) {
                    dst[..i].copy_from_slice(src);
                }
                xh
            },
            c_prev: if self.cell == Cell::Lstm {
                vec![0f32; t_len * b * h]
            } else {
                Vec::new()
            },
        });
        let w_t = Packed::new(weights.hh_t(), h, gh);
        let order: Vec<usize> = self.order(t_len).collect();
        for (step, &t) in order.iter().enumerate() {
            if !self.lengths.iter().any(|&l| l > t) {
                continue;
            }
            // Table rows are scattered over a table larger than the caches: each
            // row's next-step row is requested while this step's gates run, so it
            // arrives in time (without it the gate kernel waited on memory for half
            // its time; asking for all of them at once queued behind each other).
            let ahead = match src {
                Source::Table { table, ids } => order.get(step + 1).map(|&n| (table, ids, n)),
                Source::X(_) => None,
            };
            if let Some(s) = saved.as_mut() {
                let rows = s.xh[t * b * (i + h)..].chunks_exact_mut(i + h);
                for (dst, src) in rows.zip(state.chunks_exact(h)) {
                    dst[i..].copy_from_slice(src);
                }
                if self.cell == Cell::Lstm {
                    s.c_prev[t * b * h..(t + 1) * b * h].copy_from_slice(&cell);
                }
            }
            w_t.mul(&state, b, &mut pre);
            for (r, &len) in self.lengths.iter().enumerate() {
                if let Some((table, ids, next)) = ahead.filter(|&(_, _, next)| next < len) {
                    let id = ids[next * b + r] as usize;
                    prefetch(&table[id * gh..(id + 1) * gh]);
                }
                if t >= len {
                    continue;
                }
                let x = projected(t * b + r);
                let p = &pre[r * gh..(r + 1) * gh];
                let hs = &mut state[r * h..(r + 1) * h];
                let o = &mut out[t][r * h..(r + 1) * h];
                let acts = match saved.as_mut() {
                    Some(s) => &mut s.acts[(t * b + r) * pr..(t * b + r + 1) * pr],
                    None => &mut scratch[..],
                };
                match self.cell {
                    Cell::Lstm => {
                        let cs = &mut cell[r * h..(r + 1) * h];
                        dispatch!(lstm_fwd(x, p, b_ih, b_hh, hs, cs, o, acts))
                    }
                    Cell::Gru => dispatch!(gru_fwd(x, p, b_ih, b_hh, hs, o, acts)),
                }
            }
        }
        out[t_len].copy_from_slice(&state);
        saved
    }

    /// Backpropagation through time. `grad` is the gradient of the (T+1, B, H)
    /// output. Returns the gradients of x, w and b.
    fn run_backward(
        &self,
        saved: &Saved,
        grad: &[f32],
        w: &[f32],
        d: Dims,
        gemm_threads: usize,
    ) -> Grads {
        let Dims { t: t_len, b, i, h } = d;
        let g = self.gates();
        let gh = g * h;
        let pr = self.per_row() * h;
        let weights = Weights::new(w, d);
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
        let w_back = Packed::new(weights.hh(), gh, h);
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
                        let hp = &saved.xh[(t * b + r) * (i + h) + i..][..h];
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
        let rows = t_len * b;
        let stride = i + h;
        // Each weight gradient is one product over all steps and rows: dW_ih =
        // d_xpᵀ·x, dW_hh = d_ghᵀ·h_prev, side by side as in w; for the LSTM
        // (d_gh = d_xp) that is the single product d_xpᵀ·[x | h_prev].
        let mut d_w = vec![0f32; gh * stride];
        let xh = View::rows(&saved.xh, stride);
        match self.cell {
            Cell::Lstm => gemm(
                &mut d_w,
                (gh, stride, rows),
                View::transposed(&d_xp, gh),
                xh,
                false,
                gemm_threads,
            ),
            Cell::Gru => {
                let h_prev = View::rows(&saved.xh[i..], stride);
                gemm_into(
                    &mut d_w,
                    stride,
                    (gh, i, rows),
                    View::transposed(&d_xp, gh),
                    xh,
                    false,
                    gemm_threads,
                );
                gemm_into(
                    &mut d_w[i..],
                    stride,
                    (gh, h, rows),
                    View::transposed(d_gh, gh),
                    h_prev,
                    false,
                    gemm_threads,
                );
            }
        }
        // dx = d_xp·W_ih.
        let mut d_x = vec![0f32; rows * i];
        gemm(
            &mut d_x,
            (rows, i, gh),
            View::rows(&d_xp, gh),
            weights.ih(),
            false,
            gemm_threads,
        );
        let mut d_b = vec![0f32; 2 * gh];
        let (d_bi, d_bh) = d_b.split_at_mut(gh);
        for row in d_xp.chunks_exact(gh) {
            d_bi.iter_mut().zip(row).for_each(|(a, v)| *a += v);
        }
        match self.cell {
            Cell::Lstm => d_bh.copy_from_slice(d_bi),
            Cell::Gru => {
                for row in d_gh.chunks_exact(gh) {
                    d_bh.iter_mut().zip(row).for_each(|(a, v)| *a += v);
                }
            }
        }
        Grads { d_x, d_w, d_b }
    }
}

/// Hints the CPU to bring `data` into its caches (a no-op off x86_64).
#[inline]
fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(16) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
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
                #![allow(clippy::too_many_arguments)]
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
    versions!(lstm_fwd(x: &[f32], p: &[f32], bi: &[f32], b: &[f32], h: &mut [f32], c: &mut [f32], o: &mut [f32], acts: &mut [f32]));
    versions!(gru_fwd(x: &[f32], p: &[f32], bi: &[f32], b: &[f32], h: &mut [f32], o: &mut [f32], acts: &mut [f32]));
    versions!(lstm_bwd(dy: &[f32], acts: &[f32], c_prev: &[f32], dh: &mut [f32], dc: &mut [f32], dx: &mut [f32]));
    versions!(gru_bwd(dy: &[f32], acts: &[f32], h_prev: &[f32], dh: &mut [f32], dx: &mut [f32], dg: &mut [f32]));
}

/// One LSTM row: pre-activations x + p + bi + b → new h, c; output o = h; saves
/// i, f, g, o, tanh(c) into `acts` (5H).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_fwd(
    x: &[f32],
    p: &[f32],
    bi: &[f32],
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
    let (ci, cf, cg, co) = (
        &bi[..n],
        &bi[n..2 * n],
        &bi[2 * n..3 * n],
        &bi[3 * n..4 * n],
    );
    let (bi, bf, bg, bo) = (&b[..n], &b[n..2 * n], &b[2 * n..3 * n], &b[3 * n..4 * n]);
    for j in 0..n {
        let i = sigmoid(xi[j] + ci[j] + pi[j] + bi[j]);
        let f = sigmoid(xf[j] + cf[j] + pf[j] + bf[j]);
        let g = tanh(xg[j] + cg[j] + pg[j] + bg[j]);
        let og = sigmoid(xo[j] + co[j] + po[j] + bo[j]);
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

/// One GRU row: r, z from x + bi + p + b; n = tanh(x_n + bi_n + r·(p_n + b_n));
/// h ← n + z·(h − n).
/// Saves r, z, n, p_n + b_n into `acts` (4H).
#[inline(always)]
fn gru_fwd(
    x: &[f32],
    p: &[f32],
    bi: &[f32],
    b: &[f32],
    h: &mut [f32],
    o: &mut [f32],
    acts: &mut [f32],
) {
    let n = h.len();
    let o = &mut o[..n];
    let (ar, rest) = acts[..4 * n].split_at_mut(n);
    let (az, rest) = rest.split_at_mut(n);
    let (an, ahn) = rest.split_at_mut(n);
    let (xr, xz, xn) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n]);
    let (pr, pz, pn) = (&p[..n], &p[n..2 * n], &p[2 * n..3 * n]);
    let (cr, cz, cn) = (&bi[..n], &bi[n..2 * n], &bi[2 * n..3 * n]);
    let (br, bz, bn) = (&b[..n], &b[n..2 * n], &b[2 * n..3 * n]);
    for j in 0..n {
        let r = sigmoid(xr[j] + cr[j] + pr[j] + br[j]);
        let z = sigmoid(xz[j] + cz[j] + pz[j] + bz[j]);
        let hn = pn[j] + bn[j];
        let nn = tanh(xn[j] + cn[j] + r * hn);
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
        let first = contiguous_f32(s1, l1, "x")?;
        let w = contiguous_f32(s2, l2, "w")?;
        let b = contiguous_f32(s3, l3, "b")?;
        let d = self.check(l1, l2, l3)?;
        let src = match &self.table_ids {
            Some(ids) => Source::Table { table: first, ids },
            None => Source::X(first),
        };
        let (out, saved) = self.forward_all(src, w, b, d, self.train);
        if self.train {
            *self
                .saved
                .lock()
                .map_err(|_| candle_core::Error::Msg("poisoned".into()))? = Some(saved);
        }
        Ok((CpuStorage::F32(out), Shape::from((d.t + 1, d.b, d.h))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (t, batch, i) = x.dims3()?;
        let h = w.dim(1)? - i;
        let d = Dims { t, b: batch, i, h };
        let saved = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?
            .take();
        let grads = with_f32(x, |xv| {
            with_f32(w, |wv| {
                // Without saved activations (an op built with train = false),
                // recompute them.
                let saved = match saved {
                    Some(s) => s,
                    None => with_f32(b, |bv| self.forward_all(Source::X(xv), wv, bv, d, true).1)?,
                };
                with_f32(grad, |gv| self.backward_all(&saved, gv, wv, d))
            })?
        })??;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(grads.d_x, (t, batch, i), dev)?),
            Some(Tensor::from_vec(grads.d_w, w.shape(), dev)?),
            Some(Tensor::from_vec(grads.d_b, b.shape(), dev)?),
        ))
    }
}

impl FusedRecurrent {
    fn check(&self, l1: &Layout, l2: &Layout, l3: &Layout) -> Result<Dims> {
        let (gh, wide) = l2.shape().dims2()?;
        let h = gh / self.gates();
        let b = self.lengths.len();
        let (t, i, fits) = match &self.table_ids {
            Some(ids) => {
                let (v, table_gh) = l1.shape().dims2()?;
                if let Some(id) = ids.iter().find(|&&id| id as usize >= v) {
                    bail!("fused recurrent: token id {id} outside a table of {v} rows");
                }
                if self.train {
                    bail!("fused recurrent: a projection table is for inference only");
                }
                let t = ids.len().checked_div(b).unwrap_or(0);
                (
                    t,
                    wide.saturating_sub(h),
                    table_gh == gh && ids.len() == t * b,
                )
            }
            None => {
                let (t, xb, i) = l1.shape().dims3()?;
                if xb != b {
                    bail!("fused recurrent: {b} lengths for a batch of {xb}");
                }
                (t, i, true)
            }
        };
        if !fits || gh != self.gates() * h || wide != i + h || l3.shape().dims() != [2 * gh] {
            bail!(
                "fused recurrent: input {:?}, w {:?}, b {:?} do not fit a {:?} layer",
                l1.shape(),
                l2.shape(),
                l3.shape(),
                self.cell
            );
        }
        Ok(Dims { t, b, i, h })
    }
}

/// Rows `rows` of every step of a (steps, b, width) buffer, as (steps, rows, width).
fn gather<T: Copy>(src: &[T], b: usize, width: usize, steps: usize, rows: &Range<usize>) -> Vec<T> {
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

/// Runs `f` on a CPU f32 tensor's values in place (a copy only when the tensor is
/// not contiguous).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => Ok(f(contiguous_f32(s, layout, "tensor")?)),
        _ => bail!("fused recurrent: CPU tensors only"),
    }
}

/// Runs one direction over `x` (T, B, I) with PyTorch-layout weights `w_ih`
/// (G·H, I), `w_hh` (G·H, H), `b_ih`, `b_hh` (G·H). Returns (outputs (T, B, H),
/// final state (B, H)). `train` records the op for backpropagation; without it
/// nothing is kept for a backward pass.
#[allow(clippy::too_many_arguments)]
pub fn fused_recurrent(
    cell: Cell,
    reverse: bool,
    x: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
    lengths: &[usize],
    train: bool,
) -> Result<(Tensor, Tensor)> {
    let op = FusedRecurrent::new(cell, reverse, lengths.to_vec(), train);
    let x = x.contiguous()?;
    let w = Tensor::cat(&[w_ih, w_hh], 1)?;
    let b = Tensor::cat(&[b_ih, b_hh], 0)?;
    let out = if train {
        x.apply_op3_arc(&w, &b, Arc::new(Box::new(op)))?
    } else {
        x.apply_op3_no_bwd(&w, &b, &op)?
    };
    let t = x.dim(0)?;
    Ok((out.narrow(0, 0, t)?, out.get(t)?))
}

/// Inference for a first layer whose input is an embedding: `table` (V, G·H) holds
/// every word's projection E·W_ihᵀ (without b_ih), `ids` the batch's token ids
/// time-major (T·B). Same outputs as [`fused_recurrent`] on the embedded batch,
/// without the per-batch input product. Records nothing for backpropagation.
#[allow(clippy::too_many_arguments)]
pub fn fused_recurrent_table(
    cell: Cell,
    reverse: bool,
    table: &Tensor,
    ids: &[u32],
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
    lengths: &[usize],
) -> Result<(Tensor, Tensor)> {
    let mut op = FusedRecurrent::new(cell, reverse, lengths.to_vec(), false);
    op.table_ids = Some(ids.to_vec());
    let table = table.contiguous()?;
    let w = Tensor::cat(&[w_ih, w_hh], 1)?;
    let b = Tensor::cat(&[b_ih, b_hh], 0)?;
    let out = table.apply_op3_no_bwd(&w, &b, &op)?;
    let t = out.dim(0)? - 1;
    Ok((out.narrow(0, 0, t)?, out.get(t)?))
}
