//! A trained model loaded from a trial or export directory, ready to classify
//! raw text exactly as it was cleaned and encoded in training.

use super::artifacts::{read_json, ConfigFile, VocabFile, CONFIG, VOCAB, WEIGHTS};
use super::shapes;
use crate::data::{Encoder, Preprocessor, Vocab};
use crate::model::Classifier;
use crate::spec::{PreprocessSection, TrialConfig};
use anyhow::{Context, Result};
use candle_core::Device;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One text's prediction: the most probable class and every class's probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The most probable class's name.
    pub label: String,
    /// Every class with its probability (0 to 1, summing to 1), in class order.
    pub probabilities: Vec<(String, f32)>,
}

/// A trained model loaded from a trial directory, ready to classify raw text.
pub struct TrainedModel {
    /// The trial's resolved config (as trained).
    pub config: TrialConfig,
    /// Class names by label id.
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
    /// Load weights, vocabulary and config from a trial or export directory.
    ///
    /// # Errors
    /// A missing or malformed file (named in the error), a stopword list that
    /// cannot be read, or weights that do not fit the config.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let vocab_file: VocabFile = read_json(&dir.join(VOCAB))?;
        let config_file: ConfigFile = read_json(&dir.join(CONFIG))?;
        let config = config_file.config;
        let vocab = Vocab {
            itos: vocab_file.itos,
        };
        let base_dir = resolve_base_dir(dir, &config_file.base_dir);
        check_stopword_list(&config.preprocess, &base_dir, &dir.join(CONFIG))?;
        let preprocessor = Preprocessor::new(&config.preprocess, &base_dir)?;
        let weights = dir.join(WEIGHTS);
        // Before anything is allocated for the model: the config must fit the weights.
        let sizes = shapes::Sizes {
            vocab: vocab.len(),
            classes: vocab_file.classes.len(),
            config: &dir.join(CONFIG),
            vocab_file: &dir.join(VOCAB),
            weights: &weights,
        };
        shapes::check(&config.model, &sizes, &shapes::tensor_shapes(&weights)?)?;
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

    /// Classify raw texts (cleaned and encoded exactly as in training); one
    /// prediction per text, in order.
    ///
    /// # Errors
    /// The model's computation failing on the device.
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

/// A stopword list larger than this is refused (English's is 1 KB).
const MAX_STOPWORDS_BYTES: u64 = 64 << 20;

/// The config's stopword word-list, if it names one, is a regular file of bounded
/// size: a tampered config naming `/dev/zero` or a FIFO must not hang or exhaust
/// memory on load.
/// The directory a trial or export directory's `config.json` resolves relative
/// paths against, from its `base_dir`: an absolute one as it is; a relative one
/// is an export's (relative to `dir` itself) or, from trials recorded before
/// base_dirs were stored absolute, the run's working directory's.
pub(super) fn resolve_base_dir(dir: &Path, raw: &Path) -> PathBuf {
    if raw.is_relative() && !dir.join(raw).is_dir() {
        raw.to_path_buf()
    } else {
        dir.join(raw)
    }
}

fn check_stopword_list(pre: &PreprocessSection, base_dir: &Path, config: &Path) -> Result<()> {
    let Some(list) = pre.stopwords.file() else {
        return Ok(());
    };
    let path = base_dir.join(list);
    let meta = std::fs::metadata(&path).with_context(|| {
        format!(
            "{}: preprocess.stopwords names {}, which cannot be read",
            config.display(),
            path.display()
        )
    })?;
    if !meta.is_file() || meta.len() > MAX_STOPWORDS_BYTES {
        anyhow::bail!(
            "{}: preprocess.stopwords names {}, which is not a regular file of at most \
             {MAX_STOPWORDS_BYTES} bytes",
            config.display(),
            path.display()
        );
    }
    Ok(())
}
