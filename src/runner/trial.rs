//! One claimed trial run to the end: trained under a heartbeat, its epochs,
//! checkpoints, artifacts and results recorded, a failure or panic recorded as
//! the trial's.

use super::liveness::{Heartbeat, LostLease};
use super::memo::DatasetMemo;
use super::{device, RunEvent, RunOptions};
use crate::data;
use crate::inference::artifacts;
use crate::model::Classifier;
use crate::spec::TrialConfig;
use crate::store::{
    ConfusionRow, MetricRow, Requeue, Reset, Scope, Store, TrialLease, TrialResult, TrialStatus,
};
use crate::train::{
    self, Checkpoint, Checkpointer, DirCheckpointer, FitContext, Progress, TrainError, TrainOutcome,
};
use anyhow::{Context, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

/// A claimed trial and what it needs to run.
pub(super) struct Job<'a> {
    pub(super) trial_id: i64,
    pub(super) config: &'a TrialConfig,
    pub(super) label: &'a str,
    /// Where the spec's relative paths (data, stopword list) resolve.
    pub(super) base_dir: &'a Path,
    pub(super) device: &'a str,
}

/// Run a claimed trial under a heartbeat and record its result. A failure (an
/// error or a panic inside the trial) is recorded as the trial's, unless another
/// worker took the trial over. A stop signal puts the trial back to pending
/// (resumable) and returns `Err(Interrupted)`. Returns whether the trial
/// succeeded; other errors are the store's.
pub(super) fn execute(
    store: &Store,
    job: &Job,
    opts: &RunOptions,
    datasets: &mut DatasetMemo,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<bool> {
    let trial_id = job.trial_id;
    on_event(RunEvent::TrialStart {
        trial_id,
        label: job.label,
    });
    let started = Instant::now();
    let beat = Heartbeat::start(&opts.db, trial_id, &opts.worker, opts.lease / 4)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_trial(store, job, &opts.root(), datasets, &opts.worker, on_event)
    }))
    .unwrap_or_else(|panic| {
        Err(anyhow::anyhow!(
            "internal error (panic): {}",
            panic_message(&panic)
        ))
    });
    beat.stop();
    match outcome {
        Ok(test_accuracy) => {
            on_event(RunEvent::TrialDone {
                trial_id,
                label: job.label,
                test_accuracy,
                seconds: started.elapsed().as_secs_f64(),
            });
            Ok(true)
        }
        Err(err) => {
            // A stop signal is not the trial's failure: back to pending with its
            // epochs and checkpoint (if still ours), and the next run resumes it.
            if let Some(TrainError::Interrupted(stop)) = err.downcast_ref::<TrainError>() {
                let stop = *stop;
                let ours = |lease: &TrialLease| lease.worker == opts.worker;
                if let Err(e) = store.requeue(&Requeue {
                    scope: Scope::Trials(&[trial_id]),
                    from: &[TrialStatus::Running],
                    only: Some(&ours),
                    reset: Reset::Resume,
                }) {
                    tracing::warn!(
                        "trial {trial_id}: cannot put it back to pending ({e:#}); \
                         the next run finds its worker gone and resumes it"
                    );
                }
                on_event(RunEvent::TrialInterrupted {
                    trial_id,
                    label: job.label,
                });
                return Err(stop.into());
            }
            let message = format!("{err:#}");
            // A trial another worker took over is theirs to record.
            if !err.is::<LostLease>() {
                store.fail_trial(trial_id, &message)?;
            }
            on_event(RunEvent::TrialFailed {
                trial_id,
                label: job.label,
                error: &message,
            });
            Ok(false)
        }
    }
}

/// Train one trial and record it; returns its test accuracy.
fn run_trial(
    store: &Store,
    job: &Job,
    root: &Path,
    datasets: &mut DatasetMemo,
    worker: &str,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<f64> {
    let (trial_id, config) = (job.trial_id, job.config);
    let device = device::select(job.device)?;
    let dataset = datasets.get(config, job.base_dir, Some(&root.join("cache")))?;
    if let Some(report) = &dataset.report {
        store.record_data_report(trial_id, &serde_json::to_string(report.as_ref())?)?;
    }
    let balanced = data::balance(
        &dataset.train,
        dataset.classes.len(),
        config.preprocess.balance,
        config.seed,
    );
    let mut model = Classifier::new(
        &config.model,
        dataset.vocab.len(),
        dataset.classes.len(),
        config.seed,
        &device,
    )?;
    if config.train.sparse_embedding {
        model.enable_sparse_embedding();
    }
    let mut extra_metrics = Vec::new();
    if let Some(found) = datasets.vectors(config, job.base_dir, Some(&root.join("cache")))? {
        let pretrained = found.build(config.seed);
        model.set_embedding(&pretrained.matrix)?;
        extra_metrics.push(("embedding_hit_rate", pretrained.hit_rate()));
        extra_metrics.push(("embedding_hits", pretrained.hits as f64));
    }
    let started = Instant::now();
    let mut record_error = None;
    let dir = root.join(&config.experiment).join(trial_id.to_string());
    let mut checkpoints = StoreCheckpointer {
        files: DirCheckpointer::new(dir.join("checkpoint")),
        store,
        trial_id,
    };
    let fit = FitContext {
        model: &model,
        dataset: &dataset,
        balanced: &balanced,
        cfg: &config.train,
        seed: config.seed,
        device: &device,
    };
    let outcome = train::train_resumable(
        &fit,
        &mut |progress| {
            if let Progress::EpochEnd(e) = &progress {
                if let Err(err) = store.record_epoch(trial_id, e) {
                    record_error.get_or_insert(err);
                }
            }
            on_event(RunEvent::Train(&progress));
        },
        Some(&mut checkpoints),
    )?;
    if let Some(err) = record_error {
        return Err(err.context("cannot record an epoch"));
    }
    let artifacts = artifacts::save(
        &dir,
        root,
        &model,
        &dataset.vocab,
        &dataset.classes,
        config,
        job.base_dir,
    )?;
    let mut result = trial_result(
        &outcome,
        &dataset.classes,
        started.elapsed().as_secs_f64(),
        artifacts,
    );
    result.metrics.extend(
        extra_metrics
            .into_iter()
            .map(|(name, v)| metric("train", name, v)),
    );
    if !store.heartbeat(trial_id, worker)? {
        return Err(LostLease { trial_id }.into());
    }
    store
        .finish_trial(trial_id, &result)
        .with_context(|| format!("cannot record trial {trial_id}"))?;
    // The trial is recorded: its checkpoint is no longer needed.
    let _ = checkpoints.files.clear();
    Ok(outcome.test.get("accuracy").unwrap_or(f64::NAN))
}

fn trial_result(
    outcome: &TrainOutcome,
    classes: &[String],
    seconds: f64,
    artifacts: Vec<crate::store::ArtifactRow>,
) -> TrialResult {
    let mut metrics = Vec::new();
    let mut confusion = Vec::new();
    for (split, eval) in [("valid", &outcome.valid), ("test", &outcome.test)] {
        metrics.extend(eval.metrics.iter().map(|(n, v)| metric(split, n, *v)));
        confusion.push(ConfusionRow {
            split: split.into(),
            matrix: eval.confusion.clone(),
            labels: classes.to_vec(),
        });
    }
    metrics.push(metric("train", "seconds", seconds));
    metrics.push(metric("train", "best_epoch", outcome.best_epoch as f64));
    metrics.push(metric("train", "epochs", outcome.epochs.len() as f64));
    TrialResult {
        metrics,
        confusion,
        artifacts,
    }
}

fn metric(split: &str, name: &str, value: f64) -> MetricRow {
    MetricRow {
        split: split.into(),
        name: name.into(),
        value,
    }
}

/// Checkpoint files, and the store's epochs kept in step with them: on resume
/// the epochs after the checkpoint's (recorded, then lost in a crash) are dropped.
struct StoreCheckpointer<'a> {
    files: DirCheckpointer,
    store: &'a Store,
    trial_id: i64,
}

impl Checkpointer for StoreCheckpointer<'_> {
    fn load(&mut self) -> Result<Option<Checkpoint>, TrainError> {
        let checkpoint = self.files.load()?;
        let epoch = checkpoint.as_ref().map_or(0, |c| c.epoch);
        self.store
            .truncate_epochs(self.trial_id, epoch)
            .map_err(|e| {
                let action = "drop the epochs after the checkpoint";
                TrainError::checkpoint(self.store.path(), action, format!("{e:#}"))
            })?;
        Ok(checkpoint)
    }
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), TrainError> {
        self.files.save(checkpoint)
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
