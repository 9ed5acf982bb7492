//! The classifier: embedding -> recurrent stack (LSTM/GRU, bidirectional, stacked,
//! padding-aware) -> pooling -> linear head. Save/load as safetensors.

use crate::spec::ModelSection;
use candle_core::{Device, Result, Tensor, Var};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

pub struct Classifier;

impl Classifier {
    /// Weights initialised from `seed` (PyTorch's schemes), so a CPU run is repeatable.
    pub fn new(
        cfg: &ModelSection,
        vocab_size: usize,
        n_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let _ = (cfg, vocab_size, n_classes, seed, device);
        todo!("model helper")
    }

    /// Logits (batch, n_classes). `ids` is (batch, time) u32 padded with 0;
    /// `lengths` are the true lengths. `dropout` is `Some(rng)` when training.
    pub fn forward(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        dropout: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let _ = (ids, lengths, dropout);
        todo!("model helper")
    }

    /// Trainable parameters with stable names (the safetensors keys).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        todo!("model helper")
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let _ = path;
        todo!("model helper")
    }

    pub fn load(
        cfg: &ModelSection,
        vocab_size: usize,
        n_classes: usize,
        path: &Path,
        device: &Device,
    ) -> Result<Self> {
        let _ = (cfg, vocab_size, n_classes, path, device);
        todo!("model helper")
    }
}
