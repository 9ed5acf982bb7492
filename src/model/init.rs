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

/// N(0, 1) in F32, shape `dims`: PyTorch's scheme for embeddings. Each
/// [`standard_normal_pair`] fills two consecutive values.
pub fn normal(rng: &mut ChaCha8Rng, dims: &[usize], device: &Device) -> Result<Var> {
    let n: usize = dims.iter().product();
    let mut data = Vec::with_capacity(n + 1);
    while data.len() < n {
        let (a, b) = standard_normal_pair(rng);
        data.push(a as f32);
        data.push(b as f32);
    }
    data.truncate(n);
    Var::from_vec(data, dims, device)
}

/// Two independent N(0, 1) draws from two uniforms (Box-Muller): `(r cos θ, r sin θ)`.
/// The sequence of `rng` calls and the float operations are part of a seed's
/// weights: changing either changes every trial's initial model.
pub fn standard_normal_pair(rng: &mut ChaCha8Rng) -> (f64, f64) {
    // 1 - u keeps the logarithm's argument in (0, 1].
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let theta = 2.0 * std::f64::consts::PI * u2;
    (r * theta.cos(), r * theta.sin())
}

#[cfg(test)]
mod tests {
    //! A seed's draws are pinned, bit for bit, to the two Box-Muller formulas that
    //! `normal` and the embeddings' random rows used before they shared
    //! [`standard_normal_pair`].
    use super::*;
    use crate::model::embeddings;
    use crate::spec::{EmbeddingFormat, EmbeddingsSection};
    use rand::SeedableRng;
    use std::f64::consts::PI;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn normal_draws_cosine_and_sine_of_each_pair() {
        // An odd count: the last pair's sine is drawn and dropped.
        let dims = [7, 5];
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let var = normal(&mut rng, &dims, &Device::Cpu).unwrap();
        let got = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut reference = ChaCha8Rng::seed_from_u64(13);
        let mut want = Vec::new();
        while want.len() < 35 {
            let u1: f64 = 1.0 - reference.gen::<f64>();
            let u2: f64 = reference.gen::<f64>();
            let r = (-2.0 * u1.ln()).sqrt();
            let theta = 2.0 * PI * u2;
            want.push((r * theta.cos()) as f32);
            want.push((r * theta.sin()) as f32);
        }
        want.truncate(35);
        assert_eq!(bits(&got), bits(&want));
        // The stream is left where it was: later layers draw the same weights.
        assert_eq!(rng.gen::<u64>(), reference.gen::<u64>());
    }

    #[test]
    fn embedding_random_rows_draw_one_cosine_per_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        std::fs::write(&path, "good 1 2 3\nbad -1 0.5 2\n").unwrap();
        let itos: Vec<String> = ["<pad>", "<unk>", "good", "x", "bad", "y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let e = EmbeddingsSection {
            path,
            format: EmbeddingFormat::GloveText,
            vocab: None,
            freeze: false,
        };
        let p = embeddings::load(&e, dir.path(), &itos, true, 21).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        rng.set_stream(2);
        let mut want = p.matrix.clone();
        for row in [1, 3, 5] {
            for v in &mut want[row * 3..(row + 1) * 3] {
                let u1: f64 = 1.0 - rng.gen::<f64>();
                let u2: f64 = rng.gen::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos();
                *v = (z * p.std) as f32;
            }
        }
        assert_eq!(bits(&p.matrix), bits(&want));
        assert_ne!(p.matrix[3..6], [0.0; 3]);
    }
}
