//! CPU kernels behind the model and the optimizer: the fused recurrent layer (one
//! candle custom op per direction, forward and backpropagation through time), the
//! small matrix products it runs at every step, vectorised gate math, the fused
//! in-place Adam update, and the embedding lookup with row-wise gradients. Knows
//! nothing of specs, data or storage.

pub mod adam;
pub mod embedding;
pub mod math;
pub mod matmul;
pub mod packed;
pub mod recurrent;

pub use recurrent::{fused_recurrent, fused_recurrent_table, Cell, FusedRecurrent};
