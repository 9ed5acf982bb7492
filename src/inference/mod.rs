//! A trained model put to use: loaded from the store or from an export
//! directory, it predicts raw texts, annotates a CSV with its predictions and
//! shows the words an attention model attends to and the texts a trial got
//! most confidently wrong. `serve` and the `predict`,
//! `show`, `export` and `serve` commands go through here; the runner only writes
//! the files read here ([`artifacts::write_pending`]). Knows nothing of training or sweeps.

pub mod annotate;
pub mod artifacts;
pub mod attention;
pub mod errors;
pub mod export;
mod model;
pub mod shapes;
pub mod verify;

pub use model::{Prediction, TrainedModel};
