//! Pooling of the top layer's outputs into one feature vector per sequence,
//! over true positions only.

use crate::spec::Pooling;
use candle_core::{Result, Tensor};

/// `outputs` (T, B, D) are zero at padded steps; `last` (B, D) is the concatenated
/// final state. An empty sequence (length 0) pools to zeros.
pub fn pool(kind: Pooling, outputs: &Tensor, last: &Tensor, lengths: &[usize]) -> Result<Tensor> {
    let (t, b, _) = outputs.dims3()?;
    let (dtype, device) = (outputs.dtype(), outputs.device());
    match kind {
        Pooling::Last => Ok(last.clone()),
        Pooling::Mean => {
            // Padded outputs are zero, so the sum covers true positions only.
            let inv: Vec<f32> = lengths.iter().map(|&l| 1.0 / l.max(1) as f32).collect();
            let inv = Tensor::from_vec(inv, (b, 1), device)?.to_dtype(dtype)?;
            outputs.sum(0)?.broadcast_mul(&inv)
        }
        Pooling::Max => {
            // Padded steps get a huge negative offset so they never win; position 0 of
            // an empty sequence stays eligible (its output is zero) to pool to zeros.
            let mut offset = vec![0f32; t * b];
            for (i, &l) in lengths.iter().enumerate() {
                for s in l.max(1)..t {
                    offset[s * b + i] = -1e30;
                }
            }
            let offset = Tensor::from_vec(offset, (t, b, 1), device)?.to_dtype(dtype)?;
            outputs.broadcast_add(&offset)?.max(0)
        }
    }
}
