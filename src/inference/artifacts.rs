//! A trial's files under `runs/<experiment>/<trial>/`: weights (safetensors),
//! vocabulary with class names, and the resolved config. The runner writes them
//! ([`save`]); [`super::TrainedModel::load`] reads them back into a model ready
//! for prediction without the training data.

use crate::data::Vocab;
use crate::files::sha256_file;
use crate::model::Classifier;
use crate::spec::TrialConfig;
use crate::store::ArtifactRow;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The weights file (safetensors) in a trial or export directory.
pub const WEIGHTS: &str = "model.safetensors";
/// The vocabulary and class names (JSON) in a trial or export directory.
pub const VOCAB: &str = "vocab.json";
/// The resolved config and its base directory (JSON) in a trial or export directory.
pub const CONFIG: &str = "config.json";

/// What `vocab.json` holds: the tokens by id and the class names by label id.
#[derive(Serialize, Deserialize)]
pub(super) struct VocabFile {
    pub(super) classes: Vec<String>,
    pub(super) itos: Vec<String>,
}

/// What `config.json` holds: the trial's resolved config and the directory its
/// relative paths (data file, stopword list) were resolved against.
#[derive(Serialize, Deserialize)]
pub(super) struct ConfigFile {
    pub(super) base_dir: PathBuf,
    pub(super) config: TrialConfig,
}

/// Write a trained trial's files into `dir` and describe them for the store
/// (paths relative to `root`, the directory holding the database).
///
/// # Errors
/// A file that cannot be created or written.
pub fn save(
    dir: &Path,
    root: &Path,
    model: &Classifier,
    vocab: &Vocab,
    classes: &[String],
    config: &TrialConfig,
    base_dir: &Path,
) -> Result<Vec<ArtifactRow>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let weights = dir.join(WEIGHTS);
    model
        .save(&weights)
        .with_context(|| format!("cannot write {}", weights.display()))?;
    let vocab_file = VocabFile {
        classes: classes.to_vec(),
        itos: vocab.itos.clone(),
    };
    write_json(&dir.join(VOCAB), &vocab_file)?;
    // Absolute, so the files resolve from any working directory later.
    let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    let config_file = ConfigFile {
        base_dir,
        config: config.clone(),
    };
    write_json(&dir.join(CONFIG), &config_file)?;
    [
        ("weights", WEIGHTS),
        ("vocabulary", VOCAB),
        ("config", CONFIG),
    ]
    .into_iter()
    .map(|(kind, name)| {
        let path = dir.join(name);
        Ok(ArtifactRow {
            kind: kind.into(),
            path: relative_to(&path, root).display().to_string(),
            sha256: sha256_file(&path)?,
        })
    })
    .collect()
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid lab artifact", path.display()))
}

fn relative_to(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}
