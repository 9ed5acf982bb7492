//! A trial's most confidently wrong test texts (`lab show TRIAL --errors N`),
//! from the per-example predictions the store recorded for it: no model is run,
//! the texts are read back from the trial's data file by record index and
//! checked against the row hashes recorded with the predictions.

use super::artifacts::{read_json, ConfigFile, VocabFile, CONFIG, VOCAB};
use super::export::verified_trial_dir;
use super::model::resolve_base_dir;
use crate::data;
use crate::store::{Predictions, Store, TrialStatus};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// One test row the trial got wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrongPrediction {
    /// The row's record index in the data file (0 = its first data record,
    /// counted before any row is skipped or sampled).
    pub data_row: u32,
    /// The true class's name.
    pub label: String,
    /// The predicted class's name.
    pub predicted: String,
    /// The predicted class's probability (0 to 1; stored as f16, three
    /// significant digits).
    pub probability: f32,
    /// The text as read from the data file (before cleaning).
    pub text: String,
}

/// The most confidently wrong test rows of one trial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfidentErrors {
    /// The trial.
    pub trial: i64,
    /// The data file the texts were read from.
    pub data_file: String,
    /// Rows in the trial's test split.
    pub test_rows: usize,
    /// How many of them it got wrong.
    pub wrong: usize,
    /// At most the `n` asked for: the wrong rows by the predicted class's
    /// probability, highest first (ties by data row).
    pub rows: Vec<WrongPrediction>,
}

/// The `n` test rows trial `trial_id` got wrong with the highest probability
/// on its (wrong) prediction, with their texts from the trial's data file
/// (found through its `config.json`, as `lab show --attention` finds it).
///
/// # Errors
/// No such trial; a trial without recorded test predictions (not done, or
/// recorded by an older lab); model files that changed since they were
/// recorded; a data file that cannot be read or no longer holds the texts the
/// trial was scored on.
pub fn most_confidently_wrong(
    store: &Store,
    db: &Path,
    trial_id: i64,
    n: usize,
) -> Result<ConfidentErrors> {
    let predictions = test_predictions(store, db, trial_id)?;
    let dir = verified_trial_dir(store, db, trial_id)?;
    let config: ConfigFile = read_json(&dir.join(CONFIG))?;
    let classes = read_json::<VocabFile>(&dir.join(VOCAB))?.classes;
    if classes.len() != predictions.classes {
        bail!(
            "trial {trial_id}: its predictions have {} classes, its {VOCAB} {}",
            predictions.classes,
            classes.len()
        );
    }
    let base_dir = resolve_base_dir(&dir, &config.base_dir);
    let path = data::data_path(&config.config.data, &base_dir);
    let chosen = confidently_wrong(&predictions, n);
    let records: Vec<u32> = chosen.iter().map(|&i| predictions.rows[i]).collect();
    let texts = data::record_texts(&path, &config.config.data, &records)
        .with_context(|| format!("cannot read the test texts of trial {trial_id}"))?;
    let mut rows = Vec::with_capacity(chosen.len());
    for i in chosen {
        let record = predictions.rows[i];
        let text = texts.get(&record).cloned().flatten();
        let Some(text) = text.filter(|t| data::row_hash(t) == predictions.hashes[i]) else {
            bail!(
                "{}: data row {record} is not the text trial {trial_id} was scored on: \
                 the file changed since the trial ran",
                path.display()
            );
        };
        let (truth, predicted) = (predictions.truth[i], predictions.predicted[i]);
        rows.push(WrongPrediction {
            data_row: record,
            label: classes[truth as usize].clone(),
            predicted: classes[predicted as usize].clone(),
            probability: predictions.probs_of(i)[predicted as usize],
            text,
        });
    }
    Ok(ConfidentErrors {
        trial: trial_id,
        data_file: std::fs::canonicalize(&path)
            .unwrap_or(path)
            .display()
            .to_string(),
        test_rows: predictions.len(),
        wrong: wrong_rows(&predictions).count(),
        rows,
    })
}

/// The trial's recorded test predictions, or an error saying why there are none.
fn test_predictions(store: &Store, db: &Path, trial_id: i64) -> Result<Predictions> {
    let trial = store
        .trial(trial_id)?
        .with_context(|| format!("no trial {trial_id} in {}", db.display()))?;
    if trial.status != TrialStatus::Done {
        bail!(
            "trial {trial_id} is {}, not done: it has no test predictions yet",
            trial.status
        );
    }
    store.predictions(trial_id, "test")?.with_context(|| {
        format!(
            "trial {trial_id} has no recorded test predictions: it was recorded by a lab \
             older than per-example predictions (store schema version 6); \
             a trial run by this lab has them"
        )
    })
}

/// Indices of the rows whose prediction is wrong.
fn wrong_rows(p: &Predictions) -> impl Iterator<Item = usize> + '_ {
    (0..p.len()).filter(|&i| p.truth[i] != p.predicted[i])
}

/// Indices of at most `n` wrong rows, by the predicted class's probability,
/// highest first; ties by record index.
fn confidently_wrong(p: &Predictions, n: usize) -> Vec<usize> {
    let confidence = |i: usize| p.probs_of(i)[p.predicted[i] as usize];
    let mut wrong: Vec<usize> = wrong_rows(p).collect();
    wrong.sort_by(|&a, &b| {
        confidence(b)
            .total_cmp(&confidence(a))
            .then(p.rows[a].cmp(&p.rows[b]))
    });
    wrong.truncate(n);
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_confident_wrong_rows_come_first() {
        // Rows: right, wrong at 0.7, wrong at 0.9, wrong at 0.7 (later record).
        let p = Predictions {
            classes: 2,
            rows: vec![10, 11, 12, 3],
            hashes: vec![0; 4],
            truth: vec![0, 0, 1, 1],
            predicted: vec![0, 1, 0, 0],
            probs: vec![0.99, 0.01, 0.3, 0.7, 0.9, 0.1, 0.7, 0.3],
        };
        assert_eq!(confidently_wrong(&p, 5), [2, 3, 1]);
        assert_eq!(confidently_wrong(&p, 1), [2]);
        assert!(confidently_wrong(&p, 0).is_empty());
        assert_eq!(wrong_rows(&p).count(), 3);
    }
}
