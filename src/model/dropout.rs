//! Inverted dropout with masks drawn from a seeded ChaCha8 stream, so a training run
//! is repeatable on the CPU.

use candle_core::{Result, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Zeroes each element with probability `rate` and scales the survivors by
/// 1/(1-rate), so the expected value is unchanged and inference needs no rescaling.
pub fn dropout(x: &Tensor, rate: f64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    if rate <= 0.0 {
        return Ok(x.clone());
    }
    if rate >= 1.0 {
        return x.zeros_like();
    }
    let keep = (1.0 - rate) as f32;
    let scale = 1.0 / keep;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.gen::<f32>() < keep { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}
