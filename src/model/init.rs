//! PyTorch's default initialisation schemes, drawn from a seeded ChaCha8 stream so
//! that the same seed always gives the same weights (candle's own RNG cannot be seeded).

use candle_core::{Device, Result, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// U(-bound, bound) in F32: PyTorch's scheme for recurrent and linear layers.
pub fn uniform(rng: &mut ChaCha8Rng, dims: &[usize], bound: f64, device: &Device) -> Result<Var> {
    let n: usize = dims.iter().product();
    let b = bound as f32;
    let data: Vec<f32> = (0..n)
        .map(|_| if b > 0.0 { rng.gen_range(-b..b) } else { 0.0 })
        .collect();
    Var::from_vec(data, dims, device)
}

/// N(0, 1) in F32 (Box-Muller): PyTorch's scheme for embeddings.
pub fn normal(rng: &mut ChaCha8Rng, dims: &[usize], device: &Device) -> Result<Var> {
    let n: usize = dims.iter().product();
    let mut data = Vec::with_capacity(n + 1);
    while data.len() < n {
        // 1 - u keeps the logarithm's argument in (0, 1].
        let u1: f64 = 1.0 - rng.gen::<f64>();
        let u2: f64 = rng.gen::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        data.push((r * theta.cos()) as f32);
        data.push((r * theta.sin()) as f32);
    }
    data.truncate(n);
    Var::from_vec(data, dims, device)
}
