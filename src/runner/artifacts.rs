//! A trial's files under `runs/<experiment>/<trial>/`: weights (safetensors),
//! vocabulary with class names, and the resolved config. Loading them back gives
//! a model ready for prediction without the training data.

use crate::data::{Encoder, Preprocessor, Vocab};
use crate::files::sha256_file;
use crate::model::Classifier;
use crate::spec::TrialConfig;
use crate::store::ArtifactRow;
use anyhow::{Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const WEIGHTS: &str = "model.safetensors";
pub const VOCAB: &str = "vocab.json";
pub const CONFIG: &str = "config.json";

/// What `vocab.json` holds: the tokens by id and the class names by label id.
#[derive(Serialize, Deserialize)]
struct VocabFile {
    classes: Vec<String>,
    itos: Vec<String>,
}

/// What `config.json` holds: the trial's resolved config and the directory its
/// relative paths (data file, stopword list) were resolved against.
#[derive(Serialize, Deserialize)]
struct ConfigFile {
    base_dir: PathBuf,
    config: TrialConfig,
}

/// Write a trained trial's files into `dir` and describe them for the store
/// (paths relative to `root`, the directory holding the database).
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

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
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

/// One text's prediction: the most probable class and every class's probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub label: String,
    pub probabilities: Vec<(String, f32)>,
}

/// A trained model loaded from a trial directory, ready to classify raw text.
pub struct TrainedModel {
    pub config: TrialConfig,
    pub classes: Vec<String>,
    /// The directory the config's relative paths (data, stopwords) resolve against.
    pub base_dir: PathBuf,
    vocab: Vocab,
    /// Built once: hashing the whole vocabulary per request was most of a
    /// batch-1 prediction's time.
    encoder: Encoder,
    preprocessor: Preprocessor,
    model: Classifier,
    device: Device,
}

impl TrainedModel {
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let vocab_file: VocabFile = read_json(&dir.join(VOCAB))?;
        let config_file: ConfigFile = read_json(&dir.join(CONFIG))?;
        let config = config_file.config;
        let vocab = Vocab {
            itos: vocab_file.itos,
        };
        // A relative base_dir is an export's (relative to the directory itself) or,
        // from trials recorded before base_dirs were stored absolute, the run's
        // working directory's.
        let raw = &config_file.base_dir;
        let base_dir = if raw.is_relative() && !dir.join(raw).is_dir() {
            raw.clone()
        } else {
            dir.join(raw)
        };
        let preprocessor = Preprocessor::new(&config.preprocess, &base_dir)?;
        let weights = dir.join(WEIGHTS);
        let model = Classifier::load(
            &config.model,
            vocab.len(),
            vocab_file.classes.len(),
            &weights,
            device,
        )
        .with_context(|| format!("cannot load weights {}", weights.display()))?;
        Ok(Self {
            config,
            classes: vocab_file.classes,
            base_dir,
            encoder: vocab.encoder(),
            vocab,
            preprocessor,
            model,
            device: device.clone(),
        })
    }

    /// The network itself.
    pub fn classifier(&self) -> &Classifier {
        &self.model
    }

    /// The vocabulary the model was trained with.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// Classify raw texts (cleaned and encoded exactly as in training).
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>> {
        let max_len = self.config.preprocess.max_len;
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.encoder.encode(&self.preprocessor.tokens(t), max_len))
            .collect();
        let probs = crate::train::predict_proba(&self.model, &ids, 64, &self.device)?;
        Ok(probs
            .into_iter()
            .map(|p| {
                let best = crate::train::metrics::argmax(&p);
                Prediction {
                    label: self.classes[best].clone(),
                    probabilities: self.classes.iter().cloned().zip(p).collect(),
                }
            })
            .collect())
    }
}
