//! Finding a trained trial's model through the store, describing it, and exporting
//! it to a directory that needs neither the database nor the spec's files.

use super::artifacts;
use super::verify;
use super::TrainedModel;
use crate::files::parent_dir;
use crate::report::{leaderboard, LeaderboardOptions};
use crate::spec::Stopwords;
use crate::store::{Store, TrialStatus};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What an exported directory says about its model (`model.json`) and what
/// `GET /v1/model` answers.
pub const INFO: &str = "model.json";
/// A word-list stopword file, copied into the export.
const STOPWORDS: &str = "stopwords.txt";
/// Where and how the trial ran, and its test split's fingerprint (see
/// [`Evidence`]); in exports written since schema version 6.
pub const PROVENANCE: &str = "provenance.json";
/// The trial's per-example predictions on a split, the store's blob as is
/// (`store::Predictions::encode`): `predictions-valid.labp`,
/// `predictions-test.labp`; in exports written since schema version 6.
pub fn predictions_file(split: &str) -> String {
    format!("predictions-{split}.labp")
}

/// The splits whose predictions an export carries.
const PREDICTION_SPLITS: [&str; 2] = ["valid", "test"];

/// The files every export holds, each listed in its `manifest.json`.
const EXPORTED: [&str; 4] = [
    artifacts::WEIGHTS,
    artifacts::VOCAB,
    artifacts::CONFIG,
    INFO,
];

/// A served or exported model's description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The experiment's name.
    pub experiment: String,
    /// The trial's id in the store it came from.
    pub trial: Option<i64>,
    /// The trial's resolved config.
    pub config: serde_json::Value,
    /// Test-split metrics by name.
    pub test_metrics: BTreeMap<String, f64>,
    /// Class names by label id.
    pub labels: Vec<String>,
}

/// The directory holding a done trial's model files.
///
/// # Errors
/// No such trial, a trial not done, or one without a weights artifact.
pub fn trial_dir(store: &Store, db: &Path, trial_id: i64) -> Result<PathBuf> {
    let trial = store
        .trial(trial_id)?
        .with_context(|| format!("no trial {trial_id} in {}", db.display()))?;
    if trial.status != TrialStatus::Done {
        bail!(
            "trial {trial_id} is {}, not done: it has no trained model",
            trial.status
        );
    }
    let weights = store
        .artifacts(trial_id)?
        .into_iter()
        .find(|a| a.kind == "weights")
        .with_context(|| format!("trial {trial_id} has no weights artifact"))?;
    let root = parent_dir(db);
    // Checked: a store from elsewhere may name any path.
    let path = store.artifact_file(trial_id, &weights)?;
    Ok(path.parent().map(Path::to_path_buf).unwrap_or(root))
}

/// The directory holding a done trial's model files, once its weights, vocabulary
/// and config have been checked against the sha256 the store recorded: what
/// `predict`, `serve`, `export` and `show` load from.
///
/// # Errors
/// As [`trial_dir`]; a file that changed since it was recorded (named with the hash
/// expected and found).
pub fn verified_trial_dir(store: &Store, db: &Path, trial_id: i64) -> Result<PathBuf> {
    let dir = trial_dir(store, db, trial_id)?;
    let whose = format!("the store {} for trial {trial_id}", db.display());
    verify::check_trial(&dir, &store.artifacts(trial_id)?, &whose)?;
    Ok(dir)
}

/// The best trial of an experiment by `metric` (the leaderboard's best
/// configuration, and its best seed).
///
/// # Errors
/// No such experiment, or none of its trials done.
pub fn best_trial(store: &Store, experiment: &str, metric: &str) -> Result<i64> {
    let exp = store.require_experiment(experiment)?;
    let opts = LeaderboardOptions {
        metric: metric.to_string(),
        ..Default::default()
    };
    let board = leaderboard(store, &exp, &opts)?;
    match board.rows.first() {
        Some(row) => Ok(row.best_trial),
        None => bail!("experiment `{experiment}` has no done trial yet"),
    }
}

/// What an export's `provenance.json` holds: where and how its trial ran and
/// which test split it was scored on, as the store recorded them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The trial's id in the store it came from.
    pub trial: i64,
    /// The fingerprint of the test split (`stats::fingerprint::test_split`);
    /// null for a trial recorded without one.
    pub test_split: Option<String>,
    /// The trial's provenance (the object `runner::provenance::Provenance`
    /// records); null for a trial recorded without one.
    pub provenance: serde_json::Value,
}

/// A trial's [`Evidence`] from the store (provenance text that is not JSON is
/// kept as a string).
///
/// # Errors
/// The database cannot be read.
pub fn evidence(store: &Store, trial_id: i64) -> Result<Evidence> {
    let provenance = store
        .provenance(trial_id)?
        .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
    Ok(Evidence {
        trial: trial_id,
        test_split: store.test_split(trial_id)?,
        provenance: provenance.unwrap_or_default(),
    })
}

/// Experiment, config, test metrics and labels of a trial, from the store.
pub fn model_info(store: &Store, trial_id: i64, labels: &[String]) -> Result<ModelInfo> {
    let trial = store
        .trial(trial_id)?
        .with_context(|| format!("no trial {trial_id}"))?;
    let experiment = store
        .experiment(trial.experiment_id)?
        .map(|e| e.name)
        .unwrap_or_default();
    let config = serde_json::from_str(&trial.config_json)
        .with_context(|| format!("trial {trial_id}: its stored config is not valid JSON"))?;
    let test_metrics = store
        .metrics(trial_id)?
        .into_iter()
        .filter(|m| m.split == "test")
        .map(|m| (m.name, m.value))
        .collect();
    Ok(ModelInfo {
        experiment,
        trial: Some(trial_id),
        config,
        test_metrics,
        labels: labels.to_vec(),
    })
}

/// A done trial's model and description, loaded through the store.
///
/// # Errors
/// As [`trial_dir`] and [`TrainedModel::load`].
pub fn load_trial(
    store: &Store,
    db: &Path,
    trial_id: i64,
    device: &Device,
) -> Result<(TrainedModel, ModelInfo)> {
    let dir = verified_trial_dir(store, db, trial_id)?;
    let model = TrainedModel::load(&dir, device)?;
    let info = model_info(store, trial_id, &model.classes)?;
    Ok((model, info))
}

/// An exported directory's model and description (no database needed), its files
/// checked against its `manifest.json` first.
///
/// # Errors
/// A missing or malformed `model.json`, a file that does not match the manifest,
/// or as [`TrainedModel::load`].
pub fn load_exported(dir: &Path, device: &Device) -> Result<(TrainedModel, ModelInfo)> {
    let info_path = dir.join(INFO);
    let text = std::fs::read_to_string(&info_path).with_context(|| {
        format!(
            "cannot read {} (is {} a directory written by `lab export`?)",
            info_path.display(),
            dir.display()
        )
    })?;
    let info: ModelInfo = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid model description", info_path.display()))?;
    let predictions = PREDICTION_SPLITS.map(predictions_file);
    let mut optional = vec![STOPWORDS, PROVENANCE];
    optional.extend(predictions.iter().map(String::as_str));
    verify::check_export(dir, &EXPORTED, &optional)?;
    check_self_contained(dir)?;
    let model = TrainedModel::load(dir, device)?;
    Ok((model, info))
}

/// An export reads nothing outside itself: its config's `base_dir` is empty and
/// a stopword word list is the `stopwords.txt` export copied in. A config edited
/// to name another file (`/etc/shadow`, `../x`) is refused, manifest or not.
fn check_self_contained(dir: &Path) -> Result<()> {
    let path = dir.join(artifacts::CONFIG);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let base_dir = config["base_dir"].as_str().unwrap_or("");
    if !base_dir.is_empty() {
        bail!(
            "{}: base_dir is {base_dir:?}, but an export's files are resolved inside it              (expected \"\", as `lab export` writes)",
            path.display()
        );
    }
    let stopwords = config["config"]["preprocess"]["stopwords"]
        .as_str()
        .map(Stopwords::from)
        .unwrap_or_default();
    match stopwords.file() {
        Some(list) if list != Path::new(STOPWORDS) => bail!(
            "{}: preprocess.stopwords names {}, but an export's word list is its own              `{STOPWORDS}`",
            path.display(),
            list.display()
        ),
        _ => Ok(()),
    }
}

/// Write weights, vocabulary, config (with relative paths resolved into the
/// directory itself), `model.json`, `provenance.json` ([`Evidence`]), the
/// recorded predictions ([`predictions_file`]) and
/// `manifest.json` (every file's sha256) into
/// `out`, from a trial whose files match the store's record.
///
/// # Errors
/// As [`trial_dir`]; a file that cannot be copied or written; an export that
/// does not load back.
pub fn export(store: &Store, db: &Path, trial_id: i64, out: &Path) -> Result<ModelInfo> {
    let src = verified_trial_dir(store, db, trial_id)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for name in [artifacts::WEIGHTS, artifacts::VOCAB] {
        std::fs::copy(src.join(name), out.join(name)).with_context(|| {
            format!(
                "cannot copy {} to {}",
                src.join(name).display(),
                out.display()
            )
        })?;
    }
    let config_path = src.join(artifacts::CONFIG);
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let mut config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", config_path.display()))?;
    let base_dir = PathBuf::from(config["base_dir"].as_str().unwrap_or("."));
    let stopwords = config["config"]["preprocess"]["stopwords"]
        .as_str()
        .map(Stopwords::from)
        .unwrap_or_default();
    if let Some(list) = stopwords.file() {
        // A word-list file: inline it so the export does not depend on base_dir.
        let list = base_dir.join(list);
        std::fs::copy(&list, out.join(STOPWORDS))
            .with_context(|| format!("cannot copy the stopword list {}", list.display()))?;
        config["config"]["preprocess"]["stopwords"] = STOPWORDS.into();
    }
    // Empty: relative paths resolve against the export directory itself.
    config["base_dir"] = "".into();
    std::fs::write(
        out.join(artifacts::CONFIG),
        serde_json::to_string_pretty(&config)?,
    )?;
    let model = TrainedModel::load(out, &Device::Cpu)
        .with_context(|| format!("the export in {} does not load back", out.display()))?;
    let info = model_info(store, trial_id, &model.classes)?;
    std::fs::write(out.join(INFO), serde_json::to_string_pretty(&info)?)?;
    let evidence = serde_json::to_string_pretty(&evidence(store, trial_id)?)?;
    std::fs::write(out.join(PROVENANCE), evidence)?;
    // The copies must still be what the store recorded; then the manifest vouches
    // for every file of the export.
    verify::check_trial(&src, &store.artifacts(trial_id)?, "the store")?;
    let written = write_predictions(store, trial_id, out)?;
    let mut names = EXPORTED.to_vec();
    names.push(PROVENANCE);
    names.extend(written.iter().map(String::as_str));
    if out.join(STOPWORDS).exists() {
        names.push(STOPWORDS);
    }
    verify::write_manifest(out, &names)?;
    Ok(info)
}

/// Write the trial's recorded predictions (valid, test) into `out`; returns the
/// file names written (none for a trial recorded without them).
fn write_predictions(store: &Store, trial_id: i64, out: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for split in PREDICTION_SPLITS {
        if let Some(p) = store.predictions(trial_id, split)? {
            let name = predictions_file(split);
            std::fs::write(out.join(&name), p.encode()?)
                .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
            written.push(name);
        }
    }
    Ok(written)
}

/// The predictions an export carries for `split`, `None` when it has none.
///
/// # Errors
/// The file cannot be read or is not a predictions blob.
pub fn exported_predictions(dir: &Path, split: &str) -> Result<Option<crate::store::Predictions>> {
    let path = dir.join(predictions_file(split));
    if !path.exists() {
        return Ok(None);
    }
    let blob = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let p = crate::store::Predictions::decode(&blob)
        .with_context(|| format!("{} is not a predictions file", path.display()))?;
    Ok(Some(p))
}

/// Rows per class in the train, valid and test splits a trial was trained on
/// (prepared again from its data file, through the dataset cache).
pub fn class_distribution(
    store: &Store,
    db: &Path,
    trial_id: i64,
) -> Result<crate::report::ClassDistribution> {
    let dir = trial_dir(store, db, trial_id)?;
    let path = dir.join(artifacts::CONFIG);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    #[derive(Deserialize)]
    struct ConfigFile {
        base_dir: PathBuf,
        config: crate::spec::TrialConfig,
    }
    let file: ConfigFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid lab artifact", path.display()))?;
    let cache = parent_dir(db).join("cache");
    let ds = crate::data::prepare(
        &file.config.data,
        &file.config.preprocess,
        &file.base_dir,
        Some(&cache),
    )?;
    let count = |labels: &[u32]| {
        let mut c = vec![0u64; ds.classes.len()];
        for &l in labels {
            c[l as usize] += 1;
        }
        c
    };
    Ok(crate::report::ClassDistribution {
        classes: ds.classes.clone(),
        splits: vec![
            ("train".into(), count(&ds.train.labels)),
            ("valid".into(), count(&ds.valid.labels)),
            ("test".into(), count(&ds.test.labels)),
        ],
    })
}
