//! Cross-entropy on logits, optionally class-weighted as PyTorch's
//! `nn.CrossEntropyLoss(weight=w)`: Σ w_y·nll / Σ w_y.

use candle_core::{DType, Result, Tensor, D};

/// Per-row negative log-likelihood (batch,) of `labels` (u32, (batch,)) under `logits`
/// (batch, n_classes), computed through log-softmax for stability.
pub fn nll_per_row(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = log_probs.gather(&labels.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?;
    picked.squeeze(1)?.neg()
}

/// Mean cross-entropy (a scalar tensor). With `class_weights` (n_classes,) each row
/// counts `w[label]` and the sum is divided by the total weight of the batch.
pub fn cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    class_weights: Option<&Tensor>,
) -> Result<Tensor> {
    let nll = nll_per_row(logits, labels)?;
    match class_weights {
        None => nll.mean_all(),
        Some(w) => {
            let w = w
                .to_dtype(nll.dtype())?
                .index_select(&labels.to_dtype(DType::U32)?, 0)?;
            (nll * &w)?.sum_all()?.broadcast_div(&w.sum_all()?)
        }
    }
}
