//! The texts of test rows, read back from the data file a trial was trained on
//! (found through its `config.json`, as `lab show --attention` finds it) and
//! checked against the row hashes its predictions recorded.

use crate::data;
use crate::inference::{artifacts, export};
use crate::spec::TrialConfig;
use crate::store::Store;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// `records` (record indices, with the `hashes` recorded for them) mapped to
/// their texts as read from `trial_id`'s data file; a record whose text no
/// longer has its hash (the file changed) is left out.
///
/// # Errors
/// The trial has no model directory or config, or its data file cannot be read.
pub fn texts(
    store: &Store,
    trial_id: i64,
    records: &[u32],
    hashes: &[u64],
) -> Result<HashMap<u32, String>> {
    let (path, config) = data_file(store, trial_id)?;
    let found = data::record_texts(&path, &config.data, records)
        .with_context(|| format!("cannot read the texts of trial {trial_id}"))?;
    let mut out = HashMap::new();
    for (record, hash) in records.iter().zip(hashes) {
        if let Some(Some(text)) = found.get(record) {
            if data::row_hash(text) == *hash {
                out.insert(*record, text.clone());
            }
        }
    }
    Ok(out)
}

/// The data file of a done trial and its config, from the `config.json` beside
/// its weights.
fn data_file(store: &Store, trial_id: i64) -> Result<(PathBuf, TrialConfig)> {
    #[derive(Deserialize)]
    struct ConfigFile {
        base_dir: PathBuf,
        config: TrialConfig,
    }
    let dir = export::trial_dir(store, store.path(), trial_id)?;
    let path = dir.join(artifacts::CONFIG);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let file: ConfigFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid lab artifact", path.display()))?;
    // As `TrainedModel::load`: a relative base_dir that is not a directory
    // beside the config is the run's working directory's (older trials).
    let base_dir = if file.base_dir.is_relative() && !dir.join(&file.base_dir).is_dir() {
        file.base_dir
    } else {
        dir.join(&file.base_dir)
    };
    Ok((data::data_path(&file.config.data, &base_dir), file.config))
}
