//! The classifier: embedding -> recurrent stack (LSTM/GRU, bidirectional, stacked,
//! padding-aware) -> pooling -> linear head. Save/load as safetensors.

pub mod dropout;
pub mod embeddings;
pub mod init;
mod npy;
pub mod pooling;
pub mod recurrent;
mod table;

pub use recurrent::{LayerState, Projection, RecurrentLayer};

use crate::kernels::embedding::{sparse_lookup, SparseRows, SparseSlot};
use crate::spec::{ModelSection, Pooling};
use candle_core::{bail, DType, Device, Error, Result, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recurrent::{gates, step_masks, Input};
use std::collections::HashMap;
use std::path::Path;
use table::ProjectionTables;

/// The weights of one direction of one recurrent layer.
struct Direction {
    w_ih: Var,
    w_hh: Var,
    b_ih: Var,
    b_hh: Var,
}

/// The parameters of additive attention pooling:
/// score_t = v · tanh(W h_t + b), with W (hidden, D), b (hidden), v (hidden).
struct Attention {
    w: Var,
    b: Var,
    v: Var,
}

/// Embedding, recurrent stack, pooling and linear head, with `Var` (F32) parameters.
pub struct Classifier {
    cfg: ModelSection,
    embedding: Var,
    /// layers[l][0] is forward, layers[l][1] (bidirectional only) is backward.
    layers: Vec<Vec<Direction>>,
    /// With `pooling = "attention"` only.
    attention: Option<Attention>,
    head_w: Var,
    head_b: Var,
    projection: Projection,
    kernel: Kernel,
    /// Set by [`Classifier::enable_sparse_embedding`]: where training lookups
    /// leave the embedding's row gradients.
    sparse: Option<SparseSlot>,
    /// The first layer's per-word input projections, for inference.
    tables: ProjectionTables,
}

/// What a fused recurrent layer reads.
enum LayerInput {
    /// The layer's input (T, B, I): embedded tokens or the previous layer's output.
    Embedded(Tensor),
    /// The first layer at inference: per-direction tables of projected embeddings
    /// and the batch's time-major token ids.
    Table(Vec<Tensor>, Vec<u32>),
}

/// Which implementation runs the recurrent layers. The fused kernels are the
/// default; on a non-CPU device or a non-f32 dtype the reference layers run instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// `kernels::fused_recurrent`: one custom op per direction (CPU, f32).
    #[default]
    Fused,
    /// `RecurrentLayer`: plain candle ops, the reference the kernels are tested against.
    Reference,
}

/// Parameters as tensors: tracked by autograd, or detached views (inference).
fn getter(detach: bool) -> impl Fn(&Var) -> Tensor {
    move |v: &Var| {
        if detach {
            v.as_detached_tensor()
        } else {
            v.as_tensor().clone()
        }
    }
}

fn input_device(input: &Input) -> &Device {
    match input {
        Input::Whole(x) => x.device(),
        Input::Steps(s) => s[0].device(),
    }
}

impl Kernel {
    /// `LAB_KERNEL=reference` selects the reference layers (for comparing runs);
    /// `fused`, empty or unset the fused kernels.
    ///
    /// # Errors
    /// Any other value: a typo must not silently pick the other layers.
    pub fn from_env() -> Result<Self> {
        const NAMES: [&str; 2] = ["reference", "fused"];
        match std::env::var("LAB_KERNEL") {
            Err(std::env::VarError::NotPresent) => Ok(Kernel::Fused),
            Ok(v) if v.is_empty() || v == "fused" => Ok(Kernel::Fused),
            Ok(v) if v == "reference" => Ok(Kernel::Reference),
            Ok(v) => {
                let hint = crate::spec::nearest(&v, NAMES)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                bail!(
                    "environment variable LAB_KERNEL={v:?}: expected `reference` or `fused`{hint}"
                )
            }
            Err(e) => {
                bail!("environment variable LAB_KERNEL: {e}; expected `reference` or `fused`")
            }
        }
    }
}

impl Classifier {
    /// Weights initialised from `seed` (PyTorch's schemes), so a CPU run is repeatable.
    pub fn new(
        cfg: &ModelSection,
        vocab_size: usize,
        n_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        if cfg.layers == 0 || cfg.hidden == 0 || cfg.embedding_dim == 0 {
            bail!(
                "model needs layers, hidden and embedding_dim >= 1 (got {}, {}, {})",
                cfg.layers,
                cfg.hidden,
                cfg.embedding_dim
            );
        }
        if vocab_size == 0 || n_classes == 0 {
            bail!("model needs vocab_size and n_classes >= 1 (got {vocab_size}, {n_classes})");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let emb = init::normal(&mut rng, &[vocab_size, cfg.embedding_dim], device)?;
        // Row 0 is <pad>: zero, as PyTorch's padding_idx leaves it.
        let emb = Var::from_tensor(&Tensor::cat(
            &[
                emb.zeros_like()?.narrow(0, 0, 1)?,
                emb.narrow(0, 1, vocab_size - 1)?,
            ],
            0,
        )?)?;
        let h = cfg.hidden;
        let g = gates(cfg.cell);
        let bound = 1.0 / (h as f64).sqrt();
        let dirs = if cfg.bidirectional { 2 } else { 1 };
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let input = if l == 0 { cfg.embedding_dim } else { h * dirs };
            let mut layer = Vec::with_capacity(dirs);
            for _ in 0..dirs {
                layer.push(Direction {
                    w_ih: init::uniform(&mut rng, &[g * h, input], bound, device)?,
                    w_hh: init::uniform(&mut rng, &[g * h, h], bound, device)?,
                    b_ih: init::uniform(&mut rng, &[g * h], bound, device)?,
                    b_hh: init::uniform(&mut rng, &[g * h], bound, device)?,
                });
            }
            layers.push(layer);
        }
        let pooled = h * dirs;
        let bound = 1.0 / (pooled as f64).sqrt();
        let head_w = init::uniform(&mut rng, &[n_classes, pooled], bound, device)?;
        let head_b = init::uniform(&mut rng, &[n_classes], bound, device)?;
        // Drawn last, so the other weights do not depend on the pooling.
        let attention = if cfg.pooling == Pooling::Attention {
            let a_bound = 1.0 / (h as f64).sqrt();
            Some(Attention {
                w: init::uniform(&mut rng, &[h, pooled], bound, device)?,
                b: init::uniform(&mut rng, &[h], bound, device)?,
                v: init::uniform(&mut rng, &[h], a_bound, device)?,
            })
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            embedding: emb,
            layers,
            attention,
            head_w,
            head_b,
            projection: Projection::default(),
            kernel: Kernel::from_env()?,
            sparse: None,
            tables: ProjectionTables::default(),
        })
    }

    /// Training forward passes on the CPU (f32) compute no dense gradient for the
    /// embedding; its rows' gradients wait in a slot for
    /// [`Classifier::take_sparse_embedding_grad`] (`train.sparse_embedding`).
    /// Elsewhere the embedding keeps its dense gradient.
    pub fn enable_sparse_embedding(&mut self) {
        self.sparse = Some(SparseSlot::default());
    }

    /// The embedding and its row gradients from the last backward pass of a
    /// sparse-embedding model, taken (the slot is emptied).
    pub fn take_sparse_embedding_grad(&self) -> Option<(Var, SparseRows)> {
        let rows = self.sparse.as_ref()?.lock().ok()?.take()?;
        Some((self.embedding.clone(), rows))
    }

    /// The configuration the model was built for.
    pub fn config(&self) -> &ModelSection {
        &self.cfg
    }

    /// Whether the embedding is fixed (`model.embeddings.freeze`): it then gets no
    /// gradient and is not among [`Classifier::trainable_vars`].
    pub fn embedding_frozen(&self) -> bool {
        self.cfg.embeddings.as_ref().is_some_and(|e| e.freeze)
    }

    /// Replaces the embedding matrix with `matrix` (vocabulary size × embedding_dim,
    /// row-major), e.g. [`embeddings::Pretrained::matrix`].
    pub fn set_embedding(&self, matrix: &[f32]) -> Result<()> {
        let (v, e) = self.embedding.dims2()?;
        if matrix.len() != v * e {
            bail!(
                "an embedding of {} values for a {v} x {e} matrix",
                matrix.len()
            );
        }
        let t = Tensor::from_slice(matrix, (v, e), self.embedding.device())?;
        self.embedding.set(&t.to_dtype(self.embedding.dtype())?)
    }

    /// Chooses how recurrent layers compute their input projection (benchmarks only;
    /// every choice gives the same result).
    pub fn set_projection(&mut self, projection: Projection) {
        self.projection = projection;
    }

    /// Chooses the fused kernels or the reference layers (same results within float
    /// rounding).
    pub fn set_kernel(&mut self, kernel: Kernel) {
        self.kernel = kernel;
    }

    /// The recurrent implementation in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Logits (batch, n_classes). `ids` is (batch, time) u32 padded with 0;
    /// `lengths` are the true lengths. `dropout` is `Some(rng)` when training.
    pub fn forward(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        dropout: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        self.run(ids, lengths, dropout, false)
    }

    /// Logits without dropout and without building an autograd graph (the weights are
    /// used through detached views), for evaluation and serving.
    pub fn forward_inference(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        self.run(ids, lengths, None, true)
    }

    fn run(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        mut rng: Option<&mut ChaCha8Rng>,
        detach: bool,
    ) -> Result<Tensor> {
        let get = getter(detach);
        let rate = self.cfg.dropout;
        let mut maybe_dropout = |x: &Tensor| match rng.as_deref_mut() {
            Some(r) => dropout::dropout(x, rate, r),
            None => Ok(x.clone()),
        };
        let (outputs, last) = self.encode(ids, lengths, &get, !detach, &mut maybe_dropout)?;
        let pooled = match &self.attention {
            Some(a) => {
                let outputs = pooling::join(&outputs)?;
                let weights = pooling::attention_weights(
                    &outputs,
                    &get(&a.w),
                    &get(&a.b),
                    &get(&a.v),
                    lengths,
                )?;
                pooling::attend(&outputs, &weights)?
            }
            None => pooling::pool(self.cfg.pooling, &outputs, &last, lengths)?,
        };
        let pooled = maybe_dropout(&pooled)?;
        pooled
            .matmul(&get(&self.head_w).t()?)?
            .broadcast_add(&get(&self.head_b))
    }

    /// The attention weights (batch, time) of every position, without dropout and
    /// without autograd: zero at padded positions, each row summing to 1. `None`
    /// unless `pooling = "attention"`.
    pub fn attention_weights(&self, ids: &Tensor, lengths: &[usize]) -> Result<Option<Tensor>> {
        let Some(a) = &self.attention else {
            return Ok(None);
        };
        let get = getter(true);
        let (outputs, _) = self.encode(ids, lengths, &get, false, &mut |x| Ok(x.clone()))?;
        let outputs = pooling::join(&outputs)?;
        let w = pooling::attention_weights(&outputs, &get(&a.w), &get(&a.b), &get(&a.v), lengths)?;
        Ok(Some(w.t()?.contiguous()?))
    }

    /// Embedding, dropout and the recurrent stack: (the top layer's outputs, one
    /// (T, B, H) per direction, and the concatenated final states (B, D)). A batch
    /// of zero steps runs one padding step.
    fn encode(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        get: &dyn Fn(&Var) -> Tensor,
        train: bool,
        dropout: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    ) -> Result<(Vec<Tensor>, Tensor)> {
        let (b, t) = ids.dims2()?;
        if lengths.len() != b {
            bail!("{} lengths for a batch of {b} sequences", lengths.len());
        }
        if let Some(l) = lengths.iter().find(|&&l| l > t) {
            bail!("length {l} exceeds the batch's {t} time steps");
        }
        // A batch of empty texts still needs one (padding) step to run through.
        let ids = if t == 0 {
            Tensor::zeros((b, 1), DType::U32, ids.device())?
        } else {
            ids.clone()
        };
        let t = t.max(1);
        // A frozen embedding is used detached: it gets no gradient at all.
        let emb = if self.embedding_frozen() {
            self.embedding.as_detached_tensor()
        } else {
            get(&self.embedding)
        };
        let flat = ids.t()?.contiguous()?.flatten_all()?;
        let fused = self.kernel == Kernel::Fused
            && ids.device().is_cpu()
            && self.embedding.dtype() == DType::F32;
        // Inference on a large batch: the first layer reads its input projection
        // from a per-word table (`table.rs`) and the embedding lookup is skipped.
        if fused && !train && t * b >= table::MIN_TOKENS {
            let w_ih: Vec<Tensor> = self.layers[0]
                .iter()
                .map(|w| w.w_ih.as_detached_tensor())
                .collect();
            let embedding = self.embedding.as_detached_tensor();
            if let Some(tables) = self.tables.get(&embedding, &w_ih)? {
                let input = LayerInput::Table(tables, flat.to_vec1::<u32>()?);
                return self.fused_stack(input, lengths, get, train, dropout);
            }
        }
        let sparse = self.sparse.as_ref().filter(|_| {
            train
                && !self.embedding_frozen()
                && ids.device().is_cpu()
                && self.embedding.dtype() == DType::F32
        });
        let x = match sparse {
            Some(slot) => {
                // Rows left by a pass whose step never ran must not leak into this one.
                if let Ok(mut s) = slot.lock() {
                    *s = None;
                }
                sparse_lookup(&emb, flat.to_vec1::<u32>()?, slot)?
            }
            None => emb.index_select(&flat, 0)?,
        }
        .reshape((t, b, ()))?;
        let x = dropout(&x)?;
        if fused {
            self.fused_stack(LayerInput::Embedded(x), lengths, get, train, dropout)
        } else {
            self.reference_stack(x, lengths, get, dropout)
        }
    }

    /// The recurrent stack with the fused kernels: one custom op per layer and
    /// direction (input projection and recurrence). Returns what `encode` does.
    fn fused_stack(
        &self,
        mut input: LayerInput,
        lengths: &[usize],
        get: &dyn Fn(&Var) -> Tensor,
        train: bool,
        dropout: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    ) -> Result<(Vec<Tensor>, Tensor)> {
        for (l, layer) in self.layers.iter().enumerate() {
            let mut outs = Vec::with_capacity(layer.len());
            let mut finals = Vec::with_capacity(layer.len());
            for (d, w) in layer.iter().enumerate() {
                let (o, last) = match &input {
                    LayerInput::Table(tables, ids) => crate::kernels::fused_recurrent_table(
                        self.cfg.cell.into(),
                        d == 1,
                        &tables[d],
                        ids,
                        &get(&w.w_ih),
                        &get(&w.w_hh),
                        &get(&w.b_ih),
                        &get(&w.b_hh),
                        lengths,
                    )?,
                    LayerInput::Embedded(x) => crate::kernels::fused_recurrent(
                        self.cfg.cell.into(),
                        d == 1,
                        x,
                        &get(&w.w_ih),
                        &get(&w.w_hh),
                        &get(&w.b_ih),
                        &get(&w.b_hh),
                        lengths,
                        train,
                    )?,
                };
                outs.push(o);
                finals.push(last);
            }
            if l + 1 == self.layers.len() {
                return Ok((outs, Tensor::cat(&finals, 1)?));
            }
            input = LayerInput::Embedded(dropout(&pooling::join(&outs)?)?);
        }
        bail!("model has no layers")
    }

    /// The recurrent stack with the reference layers (`RecurrentLayer`).
    fn reference_stack(
        &self,
        x: Tensor,
        lengths: &[usize],
        get: &dyn Fn(&Var) -> Tensor,
        dropout: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    ) -> Result<(Vec<Tensor>, Tensor)> {
        let t = x.dim(0)?;
        let mut input = Input::Whole(x);
        let masks = step_masks(lengths, t, DType::F32, input_device(&input))?;
        let mut outputs = None;
        let mut finals = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let mut outs = Vec::with_capacity(layer.len());
            finals.clear();
            for (d, w) in layer.iter().enumerate() {
                let mut rl = RecurrentLayer::new(
                    self.cfg.cell,
                    get(&w.w_ih),
                    get(&w.w_hh),
                    get(&w.b_ih),
                    get(&w.b_hh),
                    d == 1,
                )?;
                rl.projection = self.projection;
                let (o, state) = rl.forward_input(&input, &masks)?;
                outs.push(Tensor::stack(&o, 0)?);
                finals.push(state.h);
            }
            let out = Tensor::cat(&outs, 2)?;
            if l + 1 < self.layers.len() {
                input = Input::Whole(dropout(&out)?);
            } else {
                outputs = Some(out);
            }
        }
        let outputs = outputs.ok_or_else(|| Error::Msg("model has no layers".into()))?;
        Ok((vec![outputs], Tensor::cat(&finals, 1)?))
    }

    /// The parameters the optimizer updates: every one of [`Classifier::named_vars`]
    /// but a frozen embedding.
    pub fn trainable_vars(&self) -> Vec<Var> {
        let frozen = self.embedding_frozen();
        self.named_vars()
            .into_iter()
            .filter(|(name, _)| !(frozen && name == "embedding.weight"))
            .map(|(_, v)| v)
            .collect()
    }

    /// Every parameter with a stable name (the safetensors keys):
    /// `embedding.weight`, `rnn.{layer}.{fwd|bwd}.{w_ih|w_hh|b_ih|b_hh}`,
    /// with attention pooling `attention.{weight|bias|v}`, `head.weight`, `head.bias`.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut vars = vec![("embedding.weight".to_string(), self.embedding.clone())];
        for (l, layer) in self.layers.iter().enumerate() {
            for (d, w) in layer.iter().enumerate() {
                let dir = if d == 0 { "fwd" } else { "bwd" };
                for (name, v) in [
                    ("w_ih", &w.w_ih),
                    ("w_hh", &w.w_hh),
                    ("b_ih", &w.b_ih),
                    ("b_hh", &w.b_hh),
                ] {
                    vars.push((format!("rnn.{l}.{dir}.{name}"), v.clone()));
                }
            }
        }
        if let Some(a) = &self.attention {
            vars.push(("attention.weight".to_string(), a.w.clone()));
            vars.push(("attention.bias".to_string(), a.b.clone()));
            vars.push(("attention.v".to_string(), a.v.clone()));
        }
        vars.push(("head.weight".to_string(), self.head_w.clone()));
        vars.push(("head.bias".to_string(), self.head_b.clone()));
        vars
    }

    /// Writes every parameter to `path` as safetensors, keyed by `named_vars` names.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: HashMap<String, Tensor> = self
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_detached_tensor()))
            .collect();
        candle_core::safetensors::save(&tensors, path)
            .map_err(|e| Error::Msg(format!("writing weights to {}: {e}", path.display())))
    }

    /// Rebuilds the model for `cfg` and takes every parameter from the safetensors file
    /// at `path`. Fails naming the tensor when one is missing, extra or mis-shaped.
    pub fn load(
        cfg: &ModelSection,
        vocab_size: usize,
        n_classes: usize,
        path: &Path,
        device: &Device,
    ) -> Result<Self> {
        let model = Self::new(cfg, vocab_size, n_classes, 0, device)?;
        let mut tensors = candle_core::safetensors::load(path, device)
            .map_err(|e| Error::Msg(format!("reading weights from {}: {e}", path.display())))?;
        for (name, var) in model.named_vars() {
            let t = tensors.remove(&name).ok_or_else(|| {
                Error::Msg(format!(
                    "weights file {} has no tensor `{name}` (does the model config match?)",
                    path.display()
                ))
            })?;
            if t.dims() != var.dims() {
                bail!(
                    "tensor `{name}` in {} has shape {:?}, expected {:?} for this model config",
                    path.display(),
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_dtype(var.dtype())?)?;
        }
        let mut extra: Vec<_> = tensors.into_keys().collect();
        if !extra.is_empty() {
            extra.sort();
            bail!(
                "weights file {} has tensors this model config lacks: {}",
                path.display(),
                extra.join(", ")
            );
        }
        Ok(model)
    }
}
