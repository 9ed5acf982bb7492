//! Datasets and pretrained vectors prepared once per process, and the checks
//! of a spec's data made with them before anything is recorded.

use super::PlannedTrial;
use crate::data::{self, Dataset};
use crate::model::embeddings;
use crate::spec::{self, LoadedSpec, TrialConfig};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Bad data is the user's to fix: find it before anything is recorded.
pub(super) fn check_data(
    loaded: &LoadedSpec,
    trials: &[PlannedTrial],
    cache_dir: Option<&Path>,
) -> Result<DatasetMemo> {
    let mut datasets = DatasetMemo::default();
    for trial in trials {
        datasets
            .get(&trial.config, &loaded.base_dir, cache_dir)
            .with_context(|| {
                format!(
                    "{}: bad data for trial {} (nothing was recorded)",
                    loaded.path.display(),
                    trial.label
                )
            })?;
        check_embeddings(loaded, &trial.config, &mut datasets, cache_dir).with_context(|| {
            format!(
                "bad pretrained vectors for trial {} (nothing was recorded)",
                trial.label
            )
        })?;
    }
    Ok(datasets)
}

/// The pretrained vectors a trial names must fit its model: their dimension is
/// `model.embedding_dim`, and the file reads cleanly (read once per vocabulary
/// here, and kept for the trials).
fn check_embeddings(
    loaded: &LoadedSpec,
    config: &TrialConfig,
    memo: &mut DatasetMemo,
    cache_dir: Option<&Path>,
) -> Result<()> {
    let Some(e) = config.model.embeddings.as_ref().filter(|e| e.has_file()) else {
        return Ok(());
    };
    let base = &loaded.base_dir;
    let path = embeddings::vectors_path(e, base);
    let dim = embeddings::peek_dim(e, base)
        .map_err(|err| spec::key_error(loaded, "model.embeddings.path", format!("{err:#}")))?;
    if dim != config.model.embedding_dim {
        return Err(spec::key_error(
            loaded,
            "model.embedding_dim",
            format!(
                "is {}, but the vectors in {} have {dim} dimensions; set model.embedding_dim = {dim}",
                config.model.embedding_dim,
                path.display()
            ),
        )
        .into());
    }
    memo.vectors(config, base, cache_dir)
        .map_err(|err| spec::key_error(loaded, "model.embeddings.path", format!("{err:#}")))?;
    Ok(())
}

/// Datasets already prepared in this process, by their settings: a sweep over
/// model settings prepares (and hashes the data file for the cache key) once.
/// Likewise the pretrained vectors read for a dataset's vocabulary, and the
/// data fingerprints (cache keys) checkpoints are bound to.
#[derive(Default)]
pub(super) struct DatasetMemo(
    HashMap<String, Arc<Dataset>>,
    HashMap<String, Arc<embeddings::Found>>,
    HashMap<String, String>,
);

impl DatasetMemo {
    /// The vectors `config.model.embeddings` names, for the vocabulary of the
    /// trial's dataset; `None` without a vectors file.
    pub(super) fn vectors(
        &mut self,
        config: &TrialConfig,
        base_dir: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<Option<Arc<embeddings::Found>>> {
        let Some(e) = config.model.embeddings.as_ref().filter(|e| e.has_file()) else {
            return Ok(None);
        };
        let dataset = self.get(config, base_dir, cache_dir)?;
        let key = format!(
            "{}/{}",
            data::settings_id(&config.data, &config.preprocess, base_dir)?,
            serde_json::to_string(&(&e.path, e.format, &e.vocab))?
        );
        if let Some(found) = self.1.get(&key) {
            return Ok(Some(found.clone()));
        }
        let found = Arc::new(embeddings::read(
            e,
            base_dir,
            &dataset.vocab.itos,
            config.preprocess.lowercase,
        )?);
        self.1.insert(key, found.clone());
        Ok(Some(found))
    }

    /// The fingerprint of the data `config` trains on: the data cache's key (the
    /// data file's and stop-word list's bytes with the settings), computed once.
    pub(super) fn fingerprint(&mut self, config: &TrialConfig, base_dir: &Path) -> Result<String> {
        let id = data::settings_id(&config.data, &config.preprocess, base_dir)?;
        if let Some(key) = self.2.get(&id) {
            return Ok(key.clone());
        }
        let key = data::cache_key(&config.data, &config.preprocess, base_dir)?;
        self.2.insert(id, key.clone());
        Ok(key)
    }

    /// The dataset `config` trains on, prepared (through the cache in
    /// `cache_dir`, when given) on first use.
    pub(super) fn get(
        &mut self,
        config: &TrialConfig,
        base_dir: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<Arc<Dataset>> {
        let id = data::settings_id(&config.data, &config.preprocess, base_dir)?;
        if let Some(dataset) = self.0.get(&id) {
            return Ok(dataset.clone());
        }
        let dataset = Arc::new(match cache_dir {
            Some(dir) => {
                let key = data::cache_key(&config.data, &config.preprocess, base_dir)?;
                self.2.insert(id.clone(), key.clone());
                data::prepare_cached(&config.data, &config.preprocess, base_dir, dir, &key)?
            }
            None => data::prepare(&config.data, &config.preprocess, base_dir, None)?,
        });
        self.0.insert(id, dataset.clone());
        Ok(dataset)
    }
}
