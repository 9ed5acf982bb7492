//! One direction of one recurrent layer (LSTM or GRU) written with candle tensor ops,
//! with PyTorch's equations, weight layout and packed-sequence padding behaviour.
//!
//! This is the reference implementation: fused kernels are tested against it.

use crate::spec::Cell;
use candle_core::{bail, DType, Device, Result, Tensor};

impl From<Cell> for crate::kernels::Cell {
    fn from(cell: Cell) -> Self {
        match cell {
            Cell::Lstm => Self::Lstm,
            Cell::Gru => Self::Gru,
        }
    }
}

/// How the input projection x·W_ihᵀ is computed. Only the benchmark needs to pick;
/// the default is the fastest measured (see `tests/it/model.rs`, `bench_recurrent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Projection {
    /// One matmul over all steps, split into steps by a binary tree of `narrow`s,
    /// so the backward pass costs O(T log T) instead of O(T²).
    #[default]
    BatchedTree,
    /// One matmul over all steps, then one `narrow` per step (backward is O(T²)).
    BatchedNarrow,
    /// One matmul per step on that step's input.
    PerStep,
}

/// Whether a time step holds a true token for every, no, or some sequences.
/// Full and empty steps skip the masking arithmetic.
#[derive(Debug, Clone)]
pub enum StepMask {
    /// Every sequence has a true token at this step.
    All,
    /// Every sequence is padded at this step.
    Empty,
    /// (batch, 1): 1 where the step is a true token, 0 where it is padding.
    Some(Tensor),
}

/// Per-step masks for right-padded sequences of the given true lengths.
pub fn step_masks(
    lengths: &[usize],
    steps: usize,
    dtype: DType,
    device: &Device,
) -> Result<Vec<StepMask>> {
    (0..steps)
        .map(|t| {
            let active = lengths.iter().filter(|&&l| l > t).count();
            if active == lengths.len() {
                Ok(StepMask::All)
            } else if active == 0 {
                Ok(StepMask::Empty)
            } else {
                let m: Vec<f32> = lengths
                    .iter()
                    .map(|&l| if l > t { 1.0 } else { 0.0 })
                    .collect();
                let m = Tensor::from_vec(m, (lengths.len(), 1), device)?.to_dtype(dtype)?;
                Ok(StepMask::Some(m))
            }
        })
        .collect()
}

/// Splits (T, ...) into T tensors of shape (...). A binary tree of `narrow`s keeps
/// the backward pass O(T log T): each `narrow`'s gradient is padded to its parent's size.
pub fn split_steps(x: &Tensor) -> Result<Vec<Tensor>> {
    fn go(x: &Tensor, out: &mut Vec<Tensor>) -> Result<()> {
        let t = x.dim(0)?;
        if t == 1 {
            out.push(x.squeeze(0)?);
        } else if t > 1 {
            let half = t / 2;
            go(&x.narrow(0, 0, half)?, out)?;
            go(&x.narrow(0, half, t - half)?, out)?;
        }
        Ok(())
    }
    let mut out = Vec::with_capacity(x.dim(0)?);
    go(x, &mut out)?;
    Ok(out)
}

/// A layer's input: a whole (T, B, In) tensor or its T steps of (B, In).
#[derive(Debug, Clone)]
pub enum Input {
    /// The whole sequence batch, (T, B, In).
    Whole(Tensor),
    /// T tensors of (B, In), one per step.
    Steps(Vec<Tensor>),
}

impl Input {
    fn steps(&self) -> Result<Vec<Tensor>> {
        match self {
            Input::Whole(x) => split_steps(x),
            Input::Steps(s) => Ok(s.clone()),
        }
    }

    fn whole(&self) -> Result<Tensor> {
        match self {
            Input::Whole(x) => Ok(x.clone()),
            Input::Steps(s) => Tensor::stack(s, 0),
        }
    }

    fn len(&self) -> Result<usize> {
        match self {
            Input::Whole(x) => x.dim(0),
            Input::Steps(s) => Ok(s.len()),
        }
    }
}

/// The state after the last step processed: for the forward direction the state
/// at each sequence's true end, for the reverse direction the state at position 0.
#[derive(Debug, Clone)]
pub struct LayerState {
    /// (batch, hidden)
    pub h: Tensor,
    /// (batch, hidden); LSTM only.
    pub c: Option<Tensor>,
}

/// One direction of a recurrent layer. Weights in PyTorch layout: `w_ih` (G·H, In),
/// `w_hh` (G·H, H), `b_ih` and `b_hh` (G·H), gate order i,f,g,o (LSTM) or r,z,n (GRU).
/// Works in whatever float dtype the weights have.
#[derive(Debug, Clone)]
pub struct RecurrentLayer {
    /// LSTM or GRU; fixes G (4 or 3).
    pub cell: Cell,
    /// H, the state width.
    pub hidden: usize,
    /// Run from each sequence's last true token back to position 0.
    pub reverse: bool,
    /// How x·W_ihᵀ is computed.
    pub projection: Projection,
    /// Input weights (G·H, In).
    pub w_ih: Tensor,
    /// Recurrent weights (G·H, H).
    pub w_hh: Tensor,
    /// Input bias (G·H).
    pub b_ih: Tensor,
    /// Recurrent bias (G·H).
    pub b_hh: Tensor,
}

/// Number of gates: 4 for LSTM, 3 for GRU.
pub fn gates(cell: Cell) -> usize {
    match cell {
        Cell::Lstm => 4,
        Cell::Gru => 3,
    }
}

impl RecurrentLayer {
    /// Checks the weight shapes against each other.
    pub fn new(
        cell: Cell,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        reverse: bool,
    ) -> Result<Self> {
        let g = gates(cell);
        let (gh, h) = w_hh.dims2()?;
        if gh != g * h {
            bail!(
                "w_hh has shape {:?}, expected ({}, {h})",
                w_hh.dims(),
                g * h
            );
        }
        let (gh_in, _) = w_ih.dims2()?;
        if gh_in != gh {
            bail!("w_ih has shape {:?}, expected ({gh}, input)", w_ih.dims());
        }
        for (name, b) in [("b_ih", &b_ih), ("b_hh", &b_hh)] {
            if b.dims() != [gh] {
                bail!("{name} has shape {:?}, expected ({gh})", b.dims());
            }
        }
        Ok(Self {
            cell,
            hidden: h,
            reverse,
            projection: Projection::default(),
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        })
    }

    /// The same layer on weights cut from the autograd graph (shared storage).
    pub fn detach(&self) -> Self {
        Self {
            w_ih: self.w_ih.detach(),
            w_hh: self.w_hh.detach(),
            b_ih: self.b_ih.detach(),
            b_hh: self.b_hh.detach(),
            ..self.clone()
        }
    }

    /// `x` is time-major (T, B, In); `lengths` (None: all T) are the true lengths.
    /// Returns outputs (T, B, H), zero at padded steps, and the final state.
    pub fn forward(&self, x: &Tensor, lengths: Option<&[usize]>) -> Result<(Tensor, LayerState)> {
        let (t, b, _) = x.dims3()?;
        let full;
        let lengths = match lengths {
            Some(l) => l,
            None => {
                full = vec![t; b];
                &full
            }
        };
        let masks = step_masks(lengths, t, x.dtype(), x.device())?;
        let (outs, state) = self.forward_input(&Input::Whole(x.clone()), &masks)?;
        Ok((Tensor::stack(&outs, 0)?, state))
    }

    /// Runs over `input` with precomputed `masks` (one per step). Returns one (B, H)
    /// output per step and the final state.
    pub fn forward_input(
        &self,
        input: &Input,
        masks: &[StepMask],
    ) -> Result<(Vec<Tensor>, LayerState)> {
        let steps = input.len()?;
        if masks.len() != steps {
            bail!("{} masks for {steps} steps", masks.len());
        }
        let proj = self.project(input)?;
        let b = proj.first().map(|p| p.dim(0)).transpose()?.unwrap_or(0);
        let (dtype, device) = (self.w_hh.dtype(), self.w_hh.device());
        let zeros = Tensor::zeros((b, self.hidden), dtype, device)?;
        let mut h = zeros.clone();
        let mut c = zeros.clone();
        let w_hh_t = self.w_hh.t()?;
        let mut outs = vec![zeros.clone(); steps];
        let order: Vec<usize> = if self.reverse {
            (0..steps).rev().collect()
        } else {
            (0..steps).collect()
        };
        for t in order {
            let mask = match &masks[t] {
                StepMask::Empty => continue,
                StepMask::All => None,
                StepMask::Some(m) => Some(m),
            };
            let (h_new, c_new) = match self.cell {
                Cell::Lstm => self.lstm_step(&proj[t], &h, &c, &w_hh_t)?,
                Cell::Gru => (self.gru_step(&proj[t], &h, &w_hh_t)?, c.clone()),
            };
            match mask {
                None => {
                    outs[t] = h_new.clone();
                    h = h_new;
                    c = c_new;
                }
                Some(m) => {
                    // A padded step keeps the old state and outputs zero.
                    outs[t] = h_new.broadcast_mul(m)?;
                    h = (&h + (h_new - &h)?.broadcast_mul(m)?)?;
                    if self.cell == Cell::Lstm {
                        c = (&c + (c_new - &c)?.broadcast_mul(m)?)?;
                    }
                }
            }
        }
        let c = (self.cell == Cell::Lstm).then_some(c);
        Ok((outs, LayerState { h, c }))
    }

    /// x·W_ihᵀ + bias for every step. LSTM folds both biases in here; GRU only b_ih,
    /// because its b_hn sits inside r * (h·W_hnᵀ + b_hn).
    fn project(&self, input: &Input) -> Result<Vec<Tensor>> {
        let bias = match self.cell {
            Cell::Lstm => (&self.b_ih + &self.b_hh)?,
            Cell::Gru => self.b_ih.clone(),
        };
        let w_t = self.w_ih.t()?;
        match self.projection {
            Projection::PerStep => input
                .steps()?
                .iter()
                .map(|x| x.matmul(&w_t)?.broadcast_add(&bias))
                .collect(),
            Projection::BatchedTree | Projection::BatchedNarrow => {
                let x = input.whole()?;
                let (t, b, i) = x.dims3()?;
                let p = x
                    .reshape((t * b, i))?
                    .matmul(&w_t)?
                    .broadcast_add(&bias)?
                    .reshape((t, b, ()))?;
                if self.projection == Projection::BatchedTree {
                    split_steps(&p)
                } else {
                    (0..t).map(|s| p.get(s)).collect()
                }
            }
        }
    }

    fn lstm_step(
        &self,
        xp: &Tensor,
        h: &Tensor,
        c: &Tensor,
        w_hh_t: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let hd = self.hidden;
        let gates = (xp + h.matmul(w_hh_t)?)?;
        let sig = candle_nn::ops::sigmoid(&gates)?;
        let i = sig.narrow(1, 0, hd)?;
        let f = sig.narrow(1, hd, hd)?;
        let g = gates.narrow(1, 2 * hd, hd)?.tanh()?;
        let o = sig.narrow(1, 3 * hd, hd)?;
        let c_new = ((f * c)? + (i * g)?)?;
        let h_new = (o * c_new.tanh()?)?;
        Ok((h_new, c_new))
    }

    fn gru_step(&self, xp: &Tensor, h: &Tensor, w_hh_t: &Tensor) -> Result<Tensor> {
        let hd = self.hidden;
        let gh = h.matmul(w_hh_t)?.broadcast_add(&self.b_hh)?;
        let rz = candle_nn::ops::sigmoid(&(xp.narrow(1, 0, 2 * hd)? + gh.narrow(1, 0, 2 * hd)?)?)?;
        let r = rz.narrow(1, 0, hd)?;
        let z = rz.narrow(1, hd, hd)?;
        let n = (xp.narrow(1, 2 * hd, hd)? + (r * gh.narrow(1, 2 * hd, hd)?)?)?.tanh()?;
        // (1 - z) * n + z * h, with one multiply fewer.
        &n + (z * (h - &n)?)?
    }
}
