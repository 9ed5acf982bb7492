//! Optimizers with PyTorch's update rules, one struct per policy.
//!
//! Each keeps its per-parameter state as plain (detached) tensors and updates the
//! `Var`s in place, so no autograd graph grows across steps. A `Var` with no
//! gradient in the store is skipped, state included, as PyTorch skips `grad is None`.

use crate::kernels::adam::{adam_in_place, adam_update, AdamStep};
use crate::kernels::embedding::{update_rows, SparseRows};
use crate::spec::{Optimizer as OptimizerKind, TrainSection};
use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

/// One optimisation policy: applies a step from the gradients of its `Var`s.
pub trait Optimizer {
    /// Update every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The (constant) learning rate, for the epoch records.
    fn learning_rate(&self) -> f64;
    /// The per-parameter state as named tensors (e.g. "m.3", "v.3", "step.3").
    fn state(&self) -> Result<Vec<(String, Tensor)>>;
    /// Restores what `state` returned; parameters absent from it start afresh.
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()>;
    /// Update only the rows of `var` (a CPU f32 matrix) that `rows` names, with
    /// their gradients (`train.sparse_embedding`): the other rows, and their
    /// optimizer state, are left as they are.
    fn step_rows(&mut self, var: &Var, rows: &SparseRows) -> Result<()>;
}

/// The position of `var` among `vars`.
fn index_of(vars: &[Var], var: &Var) -> Result<usize> {
    vars.iter()
        .position(|v| v.as_tensor().id() == var.as_tensor().id())
        .ok_or_else(|| {
            candle_core::Error::Msg(
                "sparse update of a parameter the optimizer does not hold".into(),
            )
        })
}

/// The optimizer `cfg.optimizer` names, with `cfg.lr`, `cfg.weight_decay` and
/// (for SGD) `cfg.momentum`.
pub fn build(cfg: &TrainSection, vars: Vec<Var>) -> Box<dyn Optimizer> {
    match cfg.optimizer {
        OptimizerKind::Adam => Box::new(Adam::new(vars, cfg.lr, cfg.weight_decay)),
        OptimizerKind::Adamw => Box::new(AdamW::new(vars, cfg.lr, cfg.weight_decay)),
        OptimizerKind::Sgd => Box::new(Sgd::new(vars, cfg.lr, cfg.momentum, cfg.weight_decay)),
    }
}

/// The gradient of `var`, detached, with L2 weight decay `wd·θ` added (PyTorch's
/// `weight_decay` for Adam and SGD).
fn grad_with_l2(var: &Var, grads: &GradStore, weight_decay: f64) -> Result<Option<Tensor>> {
    let Some(g) = grads.get(var.as_tensor()) else {
        return Ok(None);
    };
    let g = g.detach();
    if weight_decay == 0.0 {
        return Ok(Some(g));
    }
    Ok(Some(
        (g + var.as_detached_tensor().affine(weight_decay, 0.0)?)?,
    ))
}

/// Adam's moment state for one parameter: host buffers updated in place by the fused
/// kernel on CPU f32 parameters, tensors elsewhere.
enum Moments {
    Host { m: Vec<f32>, v: Vec<f32> },
    Tensors { m: Tensor, v: Tensor },
}

/// Shared Adam core: betas (0.9, 0.999), eps 1e-8, bias correction.
struct AdamCore {
    vars: Vec<Var>,
    state: Vec<Option<Moments>>,
    steps: Vec<i32>,
    lr: f64,
}

impl AdamCore {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    fn new(vars: Vec<Var>, lr: f64) -> Self {
        let n = vars.len();
        Self {
            vars,
            state: (0..n).map(|_| None).collect(),
            steps: vec![0; n],
            lr,
        }
    }

    /// Advances parameter `i`'s step count and returns that step's settings.
    fn next_step(&mut self, i: usize, l2: f64, shrink: f64) -> AdamStep {
        self.steps[i] += 1;
        AdamStep {
            lr: self.lr,
            beta1: Self::BETA1,
            beta2: Self::BETA2,
            eps: Self::EPS,
            l2,
            shrink,
            step: self.steps[i],
        }
    }

    /// One Adam step on parameter `i` with gradient `g`: `l2` adds `l2·θ` to the
    /// gradient, `shrink` multiplies θ first (AdamW).
    fn update(&mut self, i: usize, g: &Tensor, l2: f64, shrink: f64) -> Result<()> {
        let step = self.next_step(i, l2, shrink);
        let var = &self.vars[i];
        let theta = var.as_tensor();
        let fused = theta.device().is_cpu() && theta.dtype() == DType::F32;
        let n = theta.elem_count();
        let state = self.state[i].get_or_insert_with(|| {
            if fused {
                Moments::Host {
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                }
            } else {
                let z = theta.zeros_like().expect("zeros");
                Moments::Tensors { m: z.clone(), v: z }
            }
        });
        match state {
            Moments::Host { m, v } => adam_in_place(theta, &g.detach(), m, v, step),
            Moments::Tensors { m, v } => {
                let (nm, nv) = tensor_adam(var, g, m, v, &step)?;
                (*m, *v) = (nm, nv);
                Ok(())
            }
        }
    }

    /// Lazy Adam on the rows of parameter `i` that `rows` names: their moments and
    /// values get this step's update; the step count (bias correction) is the
    /// parameter's, advanced once per call.
    fn update_rows(&mut self, i: usize, rows: &SparseRows, l2: f64, shrink: f64) -> Result<()> {
        let theta = self.vars[i].as_tensor().clone();
        if !(theta.device().is_cpu() && theta.dtype() == DType::F32) {
            candle_core::bail!("sparse embedding updates need a CPU f32 parameter");
        }
        let step = self.next_step(i, l2, shrink);
        let n = theta.elem_count();
        let state = self.state[i].get_or_insert_with(|| Moments::Host {
            m: vec![0.0; n],
            v: vec![0.0; n],
        });
        let Moments::Host { m, v } = state else {
            candle_core::bail!("sparse embedding updates need host moments");
        };
        let d = rows.dim;
        update_rows(&theta, rows, &mut |theta, g, id| {
            let (m, v) = (&mut m[id * d..(id + 1) * d], &mut v[id * d..(id + 1) * d]);
            adam_update(theta, g, m, v, &step)
        })
    }

    /// Named state tensors: "m.i", "v.i", "step.i" for each parameter with state.
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (i, (s, var)) in self.state.iter().zip(&self.vars).enumerate() {
            let Some(s) = s else { continue };
            let (m, v) = match s {
                Moments::Host { m, v } => (
                    Tensor::from_slice(m, var.shape(), var.device())?,
                    Tensor::from_slice(v, var.shape(), var.device())?,
                ),
                Moments::Tensors { m, v } => (m.clone(), v.clone()),
            };
            out.push((format!("m.{i}"), m));
            out.push((format!("v.{i}"), v));
            let step = Tensor::new(&[self.steps[i] as f32], var.device())?;
            out.push((format!("step.{i}"), step));
        }
        Ok(out)
    }

    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let map: std::collections::HashMap<String, Tensor> = state.into_iter().collect();
        for i in 0..self.vars.len() {
            let (Some(m), Some(v), Some(step)) = (
                map.get(&format!("m.{i}")),
                map.get(&format!("v.{i}")),
                map.get(&format!("step.{i}")),
            ) else {
                self.state[i] = None;
                self.steps[i] = 0;
                continue;
            };
            let var = &self.vars[i];
            if m.dims() != var.dims() || v.dims() != var.dims() {
                candle_core::bail!(
                    "optimizer state for parameter {i} has shape {:?}, expected {:?}",
                    m.dims(),
                    var.dims()
                );
            }
            self.steps[i] = step.flatten_all()?.to_vec1::<f32>()?[0] as i32;
            let t = var.as_tensor();
            self.state[i] = Some(if t.device().is_cpu() && t.dtype() == DType::F32 {
                Moments::Host {
                    m: m.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    v: v.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                }
            } else {
                Moments::Tensors {
                    m: m.to_dtype(t.dtype())?.to_device(t.device())?,
                    v: v.to_dtype(t.dtype())?.to_device(t.device())?,
                }
            });
        }
        Ok(())
    }
}

/// The same update with candle tensor ops (non-CPU devices, other dtypes).
fn tensor_adam(
    var: &Var,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    s: &AdamStep,
) -> Result<(Tensor, Tensor)> {
    let (b1, b2) = (s.beta1, s.beta2);
    let theta = var.as_detached_tensor();
    let g = if s.l2 != 0.0 {
        (g.detach() + theta.affine(s.l2, 0.0)?)?
    } else {
        g.detach()
    };
    let m = (m.affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?;
    let v = (v.affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?;
    let bc1 = 1.0 - b1.powi(s.step);
    let bc2 = 1.0 - b2.powi(s.step);
    // As torch: denom = sqrt(v)/sqrt(bc2) + eps; θ -= (lr/bc1)·m/denom.
    let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), s.eps)?;
    let update = (m.affine(s.lr / bc1, 0.0)? / denom)?;
    var.set(&(theta.affine(s.shrink, 0.0)? - update)?)?;
    Ok((m, v))
}

/// Adam (`torch.optim.Adam`: weight decay added to the gradient as L2) and, built
/// by `AdamW::new`, Adam with decoupled weight decay (`torch.optim.AdamW`: θ is
/// shrunk by lr·wd·θ before the step). One type, since only the decay differs.
pub struct Adam {
    core: AdamCore,
    /// L2 coefficient added to the gradient (Adam).
    l2: f64,
    /// Decoupled weight decay (AdamW).
    decoupled: f64,
}

impl Adam {
    /// `weight_decay` is added to the gradient as `wd·θ` (L2).
    pub fn new(vars: Vec<Var>, lr: f64, weight_decay: f64) -> Self {
        Self {
            core: AdamCore::new(vars, lr),
            l2: weight_decay,
            decoupled: 0.0,
        }
    }

    /// AdamW's factor on θ before each update (1 for plain Adam).
    fn shrink(&self) -> f64 {
        1.0 - self.core.lr * self.decoupled
    }
}

/// Builds the decoupled-weight-decay variant of [`Adam`].
pub struct AdamW;

impl AdamW {
    /// `weight_decay` shrinks θ by `lr·wd·θ` before each step.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(vars: Vec<Var>, lr: f64, weight_decay: f64) -> Adam {
        Adam {
            core: AdamCore::new(vars, lr),
            l2: 0.0,
            decoupled: weight_decay,
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let shrink = self.shrink();
        for i in 0..self.core.vars.len() {
            if let Some(g) = grads.get(self.core.vars[i].as_tensor()) {
                let g = g.clone();
                self.core.update(i, &g, self.l2, shrink)?;
            }
        }
        Ok(())
    }
    fn learning_rate(&self) -> f64 {
        self.core.lr
    }
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        self.core.state()
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        self.core.load_state(state)
    }
    fn step_rows(&mut self, var: &Var, rows: &SparseRows) -> Result<()> {
        let i = index_of(&self.core.vars, var)?;
        self.core.update_rows(i, rows, self.l2, self.shrink())
    }
}

/// SGD with momentum (no dampening, no Nesterov) and L2 weight decay (`torch.optim.SGD`):
/// buf ← μ·buf + g (buf ← g on the first step); θ ← θ − lr·buf.
pub struct Sgd {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    /// `momentum` 0 is plain SGD; `weight_decay` is L2 on the gradient.
    pub fn new(vars: Vec<Var>, lr: f64, momentum: f64, weight_decay: f64) -> Self {
        let buffers = vars.iter().map(|_| None).collect();
        Self {
            vars,
            buffers,
            lr,
            momentum,
            weight_decay,
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (var, buffer) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(g) = grad_with_l2(var, grads, self.weight_decay)? else {
                continue;
            };
            let direction = if self.momentum == 0.0 {
                g
            } else {
                let buf = match buffer.take() {
                    Some(b) => (b.affine(self.momentum, 0.0)? + g)?,
                    None => g,
                };
                *buffer = Some(buf.clone());
                buf
            };
            var.set(&(var.as_detached_tensor() - direction.affine(self.lr, 0.0)?)?)?;
        }
        Ok(())
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(self
            .buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (format!("buf.{i}"), b.clone())))
            .collect())
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let mut map: std::collections::HashMap<String, Tensor> = state.into_iter().collect();
        for (i, (b, var)) in self.buffers.iter_mut().zip(&self.vars).enumerate() {
            *b = match map.remove(&format!("buf.{i}")) {
                Some(t) if t.dims() == var.dims() => Some(t.to_dtype(var.dtype())?),
                Some(t) => candle_core::bail!(
                    "optimizer state buf.{i} has shape {:?}, expected {:?}",
                    t.dims(),
                    var.dims()
                ),
                None => None,
            };
        }
        Ok(())
    }
    /// Plain SGD on the rows (momentum is refused by the spec's validation: a
    /// lazy momentum buffer would not be SGD's).
    fn step_rows(&mut self, var: &Var, rows: &SparseRows) -> Result<()> {
        index_of(&self.vars, var)?;
        if self.momentum != 0.0 {
            candle_core::bail!("sparse embedding updates with SGD need momentum 0");
        }
        let (lr, wd) = (self.lr as f32, self.weight_decay as f32);
        update_rows(var.as_tensor(), rows, &mut |theta, g, _| {
            for (t, g) in theta.iter_mut().zip(g) {
                *t -= lr * (g + wd * *t);
            }
        })
    }
}
