//! The words an attention-pooling model attends to most in test reviews
//! (`lab show TRIAL --attention N`).

use super::{export, TrainedModel};
use crate::data;
use crate::files::parent_dir;
use crate::spec::Pooling;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, D};
use serde::Serialize;
use std::path::Path;

/// One test review as the model saw it, with its most-attended tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttendedReview {
    /// Position in the trial's test split.
    pub row: usize,
    /// The review's true class.
    pub label: String,
    /// The class the model predicts.
    pub predicted: String,
    /// The predicted class's probability.
    pub probability: f32,
    /// Tokens the model read (after preprocessing and `max_len`).
    pub tokens: usize,
    /// The most-attended tokens with their weights, highest first; a token that
    /// occurs several times appears once, with its highest weight.
    pub top: Vec<(String, f32)>,
}

/// `n` row indices of `labels`: the first row of each class in turn, then the
/// second of each, and so on (a split is often ordered by class).
fn rows_by_class(labels: &[u32], classes: usize, n: usize) -> Vec<usize> {
    let mut by_class: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); classes];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(q) = by_class.get_mut(l as usize) {
            q.push_back(i);
        }
    }
    let mut out = Vec::new();
    while out.len() < n && by_class.iter().any(|q| !q.is_empty()) {
        for q in by_class.iter_mut() {
            if out.len() < n {
                out.extend(q.pop_front());
            }
        }
    }
    out
}

/// `reviews` rows of the trial's test split (the classes taken in turn) with their `words`
/// most-attended tokens. The trial must be done and use `pooling = "attention"`;
/// its data file is prepared again (from the cache beside the database).
pub fn most_attended(
    store: &Store,
    db: &Path,
    trial_id: i64,
    reviews: usize,
    words: usize,
) -> Result<Vec<AttendedReview>> {
    let dir = export::verified_trial_dir(store, db, trial_id)?;
    let device = Device::Cpu;
    let trained = TrainedModel::load(&dir, &device)?;
    let config = &trained.config;
    if config.model.pooling != Pooling::Attention {
        bail!(
            "trial {trial_id} uses model.pooling = {:?}; --attention needs a model trained with pooling = \"attention\"",
            format!("{:?}", config.model.pooling).to_lowercase()
        );
    }
    let cache = parent_dir(db).join("cache");
    let dataset = data::prepare(
        &config.data,
        &config.preprocess,
        &trained.base_dir,
        Some(&cache),
    )
    .with_context(|| format!("cannot prepare the data of trial {trial_id}"))?;
    if dataset.vocab != *trained.vocab() {
        bail!(
            "the data of trial {trial_id} ({}) no longer gives the vocabulary it was trained with: the file changed",
            data::data_path(&config.data, &trained.base_dir).display()
        );
    }
    let itos = &trained.vocab().itos;
    let model = trained.classifier();
    let mut out = Vec::new();
    for row in rows_by_class(&dataset.test.labels, trained.classes.len(), reviews) {
        let ids = dataset.test.row(row);
        let ids: &[u32] = &ids;
        let t = Tensor::from_slice(ids, (1, ids.len()), &device)?;
        let lengths = [ids.len()];
        let weights: Vec<f32> = model
            .attention_weights(&t, &lengths)?
            .context("the model has no attention parameters")?
            .flatten_all()?
            .to_vec1()?;
        let probs: Vec<f32> =
            candle_nn::ops::softmax(&model.forward_inference(&t, &lengths)?, D::Minus1)?
                .flatten_all()?
                .to_vec1()?;
        let best = (0..probs.len())
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(0);
        let mut by_token: Vec<(String, f32)> = Vec::new();
        for (&id, &w) in ids.iter().zip(&weights) {
            let token = itos.get(id as usize).cloned().unwrap_or_default();
            match by_token.iter_mut().find(|(t, _)| *t == token) {
                Some((_, best)) => *best = best.max(w),
                None => by_token.push((token, w)),
            }
        }
        by_token.sort_by(|a, b| b.1.total_cmp(&a.1));
        by_token.truncate(words);
        out.push(AttendedReview {
            row,
            label: trained.classes[dataset.test.labels[row] as usize].clone(),
            predicted: trained.classes[best].clone(),
            probability: probs[best],
            tokens: ids.len(),
            top: by_token,
        });
    }
    Ok(out)
}
