//! A trial's files under `runs/<experiment>/<trial>/`: weights (safetensors),
//! vocabulary with class names, and the resolved config. The runner writes them
//! ([`write_pending`], renamed into place while it owns the trial); [`super::TrainedModel::load`] reads them back into a model ready
//! for prediction without the training data.

use crate::data::Vocab;
use crate::files::{sha256_file, PendingFile};
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

/// A trial's files written under private temporary names in their directory,
/// with their rows for the store; [`Pending::commit`] renames them into place
/// (the runner does so only while it owns the trial, in the transaction that
/// records them), and dropped uncommitted they are removed.
pub struct Pending {
    files: Vec<PendingFile>,
    /// The files as the store records them: final paths (relative to the
    /// store's directory) and the sha256 of the bytes that will be there.
    pub rows: Vec<ArtifactRow>,
}

impl Pending {
    /// Rename every file into place.
    ///
    /// # Errors
    /// A file that cannot be synced or renamed (the message names it).
    pub fn commit(self) -> Result<()> {
        for file in self.files {
            let dest = file.dest().to_path_buf();
            file.commit()
                .with_context(|| format!("cannot put {} in place", dest.display()))?;
        }
        Ok(())
    }
}

/// Write a trained trial's files for `dir` under temporary names and describe
/// them for the store (paths relative to `root`, the directory holding the
/// database). Every file is written with the same mode (0644 on Unix).
///
/// # Errors
/// A file that cannot be created or written.
pub fn write_pending(
    dir: &Path,
    root: &Path,
    model: &Classifier,
    vocab: &Vocab,
    classes: &[String],
    config: &TrialConfig,
    base_dir: &Path,
) -> Result<Pending> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let weights = PendingFile::new(&dir.join(WEIGHTS));
    model
        .save(weights.path())
        .with_context(|| format!("cannot write {}", weights.path().display()))?;
    let vocab_file = VocabFile {
        classes: classes.to_vec(),
        itos: vocab.itos.clone(),
    };
    let vocab_json = write_json(&dir.join(VOCAB), &vocab_file)?;
    // Absolute, so the files resolve from any working directory later.
    let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    let config_file = ConfigFile {
        base_dir,
        config: config.clone(),
    };
    let config_json = write_json(&dir.join(CONFIG), &config_file)?;
    let files = vec![weights, vocab_json, config_json];
    let rows = ["weights", "vocabulary", "config"]
        .into_iter()
        .zip(&files)
        .map(|(kind, file)| {
            set_artifact_mode(file.path())?;
            Ok(ArtifactRow {
                kind: kind.into(),
                path: relative_to(file.dest(), root).display().to_string(),
                sha256: sha256_file(file.path())?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Pending { files, rows })
}

/// Every artifact gets the same mode, whatever wrote it (candle's safetensors
/// writer and `std::fs::write` need not agree).
fn set_artifact_mode(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write_json<T: Serialize>(dest: &Path, value: &T) -> Result<PendingFile> {
    let text = serde_json::to_string_pretty(value)?;
    let file = PendingFile::new(dest);
    std::fs::write(file.path(), text)
        .with_context(|| format!("cannot write {}", file.path().display()))?;
    Ok(file)
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
