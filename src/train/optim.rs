//! Optimizers with PyTorch's update rules, one struct per policy.
//!
//! Each keeps its per-parameter state as plain (detached) tensors and updates the
//! `Var`s in place, so no autograd graph grows across steps. A `Var` with no
//! gradient in the store is skipped, state included, as PyTorch skips `grad is None`.

use crate::spec::{Optimizer as OptimizerKind, TrainSection};
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// One optimisation policy: applies a step from the gradients of its `Var`s.
pub trait Optimizer {
    /// Update every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The (constant) learning rate, for the epoch records.
    fn learning_rate(&self) -> f64;
    /// Per-parameter state as named tensors ("m.3", "v.3", "step.3", "buf.3"), for
    /// checkpoints. Parameters that never had a gradient have no entries.
    fn state(&self) -> Result<Vec<(String, Tensor)>>;
    /// Restore what `state` returned (on a fresh optimizer over the same `Var`s).
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()>;
}

/// Split "m.3" into ("m", 3), checking the index against `n` parameters.
fn state_key(name: &str, n: usize) -> Result<(&str, usize)> {
    let parsed = name
        .split_once('.')
        .and_then(|(kind, i)| Some((kind, i.parse::<usize>().ok()?)));
    match parsed {
        Some((kind, i)) if i < n => Ok((kind, i)),
        _ => Err(candle_core::Error::Msg(format!(
            "optimizer state: bad entry {name:?} for {n} parameters"
        ))),
    }
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

/// Adam's moment state for one parameter.
struct Moments {
    m: Tensor,
    v: Tensor,
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

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (i, s) in self.state.iter().enumerate() {
            if let Some(s) = s {
                out.push((format!("m.{i}"), s.m.clone()));
                out.push((format!("v.{i}"), s.v.clone()));
                let step = Tensor::new(&[self.steps[i] as i64], s.m.device())?;
                out.push((format!("step.{i}"), step));
            }
        }
        Ok(out)
    }

    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let n = self.vars.len();
        let mut m: Vec<Option<Tensor>> = vec![None; n];
        let mut v: Vec<Option<Tensor>> = vec![None; n];
        for (name, t) in state {
            let device = self.vars[state_key(&name, n)?.1].device().clone();
            match state_key(&name, n)? {
                ("m", i) => m[i] = Some(t.to_device(&device)?),
                ("v", i) => v[i] = Some(t.to_device(&device)?),
                ("step", i) => self.steps[i] = t.flatten_all()?.to_vec1::<i64>()?[0] as i32,
                _ => {
                    return Err(candle_core::Error::Msg(format!(
                        "adam state: unknown {name:?}"
                    )))
                }
            }
        }
        for i in 0..n {
            self.state[i] = match (m[i].take(), v[i].take()) {
                (Some(m), Some(v)) => Some(Moments { m, v }),
                _ => None,
            };
        }
        Ok(())
    }

    /// One Adam step on parameter `i` with gradient `g` (already including any L2 term).
    fn update(&mut self, i: usize, g: &Tensor) -> Result<()> {
        let (b1, b2) = (Self::BETA1, Self::BETA2);
        let (m, v) = match &self.state[i] {
            Some(s) => (
                ((s.m.affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?),
                ((s.v.affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?),
            ),
            None => (g.affine(1.0 - b1, 0.0)?, g.sqr()?.affine(1.0 - b2, 0.0)?),
        };
        self.steps[i] += 1;
        let t = self.steps[i];
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        // As torch: denom = sqrt(v)/sqrt(bc2) + eps; θ -= (lr/bc1)·m/denom.
        let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), Self::EPS)?;
        let update = (m.affine(self.lr / bc1, 0.0)? / denom)?;
        let var = &self.vars[i];
        var.set(&(var.as_detached_tensor() - update)?)?;
        self.state[i] = Some(Moments { m, v });
        Ok(())
    }
}

/// Adam with L2 weight decay added to the gradient (`torch.optim.Adam`).
pub struct Adam {
    core: AdamCore,
    weight_decay: f64,
}

impl Adam {
    /// `weight_decay` is added to the gradient as `wd·θ` (L2).
    pub fn new(vars: Vec<Var>, lr: f64, weight_decay: f64) -> Self {
        Self {
            core: AdamCore::new(vars, lr),
            weight_decay,
        }
    }
}

impl Optimizer for Adam {
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        self.core.state()
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        self.core.load_state(state)
    }
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for i in 0..self.core.vars.len() {
            if let Some(g) = grad_with_l2(&self.core.vars[i], grads, self.weight_decay)? {
                self.core.update(i, &g)?;
            }
        }
        Ok(())
    }
    fn learning_rate(&self) -> f64 {
        self.core.lr
    }
}

/// Adam with decoupled weight decay θ ← θ(1 − lr·wd) before the step (`torch.optim.AdamW`).
pub struct AdamW {
    core: AdamCore,
    weight_decay: f64,
}

impl AdamW {
    /// `weight_decay` shrinks θ by `lr·wd·θ` before each step.
    pub fn new(vars: Vec<Var>, lr: f64, weight_decay: f64) -> Self {
        Self {
            core: AdamCore::new(vars, lr),
            weight_decay,
        }
    }
}

impl Optimizer for AdamW {
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        self.core.state()
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        self.core.load_state(state)
    }
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let shrink = 1.0 - self.core.lr * self.weight_decay;
        for i in 0..self.core.vars.len() {
            let Some(g) = grad_with_l2(&self.core.vars[i], grads, 0.0)? else {
                continue;
            };
            if self.weight_decay != 0.0 {
                let var = &self.core.vars[i];
                var.set(&var.as_detached_tensor().affine(shrink, 0.0)?)?;
            }
            self.core.update(i, &g)?;
        }
        Ok(())
    }
    fn learning_rate(&self) -> f64 {
        self.core.lr
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
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(self
            .buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| Some((format!("buf.{i}"), b.clone()?)))
            .collect())
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let n = self.vars.len();
        for (name, t) in state {
            match state_key(&name, n)? {
                ("buf", i) => self.buffers[i] = Some(t.to_device(self.vars[i].device())?),
                _ => {
                    return Err(candle_core::Error::Msg(format!(
                        "sgd state: unknown {name:?}"
                    )))
                }
            }
        }
        Ok(())
    }
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
}
