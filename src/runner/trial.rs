//! One claimed trial run to the end: trained under a heartbeat, its epochs,
//! checkpoints, artifacts and results recorded, a failure or panic recorded as
//! the trial's.

use super::liveness::{Heartbeat, LostLease};
use super::memo::DatasetMemo;
use super::propose::Pruning;
use super::provenance::{Clock, Provenance};
use super::{device, RunEvent, RunOptions};
use crate::data;
use crate::inference::artifacts;
use crate::model::Classifier;
use crate::spec::{self, TrialConfig};
use crate::store::{
    ConfusionRow, MetricRow, Owned, Predictions, Requeue, Reset, Scope, Store, TrialLease,
    TrialResult, TrialStatus,
};
use crate::train::{
    self, Checkpoint, Checkpointer, DirCheckpointer, FitContext, TrainError, TrainOutcome,
};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
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
    /// The search's pruner, asked after every epoch; `None` never prunes.
    pub(super) pruning: Option<&'a Pruning>,
}

/// How a trial that did not fail ended.
enum Ended {
    /// Trained to the end; its test accuracy.
    Done(f64),
    /// Stopped by the pruner, for this reason.
    Pruned(String),
}

/// How a trial `execute` ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Trained and recorded.
    Done,
    /// Stopped by the search's pruner and recorded as pruned.
    Pruned,
    /// Failed (recorded, unless another worker took the trial over).
    Failed,
}

/// Run a claimed trial under a heartbeat and record its result. A failure (an
/// error or a panic inside the trial) is recorded as the trial's, unless another
/// worker took the trial over. A stop signal puts the trial back to pending
/// (resumable) and returns `Err(Interrupted)`. Returns how the trial ended;
/// other errors are the store's.
pub(super) fn execute(
    store: &Store,
    job: &Job,
    opts: &RunOptions,
    datasets: &mut DatasetMemo,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<Outcome> {
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
        Ok(Ended::Pruned(reason)) => {
            on_event(RunEvent::TrialPruned {
                trial_id,
                label: job.label,
                reason: &reason,
            });
            Ok(Outcome::Pruned)
        }
        Ok(Ended::Done(test_accuracy)) => {
            on_event(RunEvent::TrialDone {
                trial_id,
                label: job.label,
                test_accuracy,
                seconds: started.elapsed().as_secs_f64(),
            });
            Ok(Outcome::Done)
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
            // A trial another worker took over is theirs to record: the
            // failure is written only while this worker still owns the trial.
            if !err.is::<LostLease>() {
                match store.while_owning(trial_id, &opts.worker, |o| o.fail(&message)) {
                    Err(e) if e.is::<LostLease>() => {}
                    other => other?,
                }
            }
            on_event(RunEvent::TrialFailed {
                trial_id,
                label: job.label,
                error: &message,
            });
            Ok(Outcome::Failed)
        }
    }
}

/// Train one trial and record it; returns its test accuracy, or why the
/// pruner stopped it (recorded as pruned, its checkpoint removed). Every write of the
/// trial's state (provenance, data report, epochs, checkpoint file, artifacts,
/// result) is made while owning the trial: a worker that lost it stops at the
/// next epoch.
fn run_trial(
    store: &Store,
    job: &Job,
    root: &Path,
    datasets: &mut DatasetMemo,
    worker: &str,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<Ended> {
    let (trial_id, config) = (job.trial_id, job.config);
    let clock = Clock::start();
    let device = device::select(job.device)?;
    let provenance = Provenance::collect(config, job.base_dir, &device::label(&device));
    store.while_owning(trial_id, worker, |o| {
        o.record_provenance(&provenance.to_json())
    })?;
    let dataset = datasets.get(config, job.base_dir, Some(&root.join("cache")))?;
    if let Some(report) = &dataset.report {
        let json = serde_json::to_string(report.as_ref())?;
        store.while_owning(trial_id, worker, |o| o.record_data_report(&json))?;
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
    let dir = root.join(&config.experiment).join(trial_id.to_string());
    let identity = checkpoint_identity(store, job, datasets)?;
    let mut checkpoints = StoreCheckpointer {
        files: DirCheckpointer::new(dir.join("checkpoint")).bound_to(identity),
        store,
        trial_id,
        worker,
        found: None,
        error: None,
        resuming: false,
    };
    if let Some(reason) = checkpoints.prepare() {
        on_event(RunEvent::CheckpointDiscarded {
            trial_id,
            path: &checkpoints.files.path(),
            reason: &reason,
        });
    }
    let fit = FitContext {
        model: &model,
        dataset: &dataset,
        balanced: &balanced,
        cfg: &config.train,
        seed: config.seed,
        device: &device,
    };
    // The last epoch is paid for: a trial that reached it is kept and ranked.
    let mut prune = |record: &train::EpochRecord| {
        let last = record.epoch >= config.train.epochs;
        job.pruning
            .filter(|_| !last)
            .and_then(|p| p.decide(store, trial_id, record.epoch))
    };
    let trained = train::train_prunable(
        &fit,
        &mut |progress| on_event(RunEvent::Train(&progress)),
        Some(&mut checkpoints),
        &mut prune,
    );
    let outcome = match trained {
        Err(TrainError::Pruned { reason, .. }) => {
            store
                .while_owning(trial_id, worker, |o| {
                    o.prune(&reason)?;
                    o.record_provenance(&provenance.finished(&clock).to_json())
                })
                .with_context(|| format!("cannot record trial {trial_id} as pruned"))?;
            let _ = checkpoints.files.clear();
            return Ok(Ended::Pruned(reason));
        }
        other => other.map_err(|e| checkpoints.training_failed(e))?,
    };
    let artifacts = artifacts::write_pending(
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
        &dataset,
        started.elapsed().as_secs_f64(),
        artifacts.rows.clone(),
    );
    result.metrics.extend(
        extra_metrics
            .into_iter()
            .map(|(name, v)| metric("train", name, v)),
    );
    // Rows and files together: the recorded sha256s are those of the files
    // put in place, and only while this worker owns the trial.
    store
        .while_owning(trial_id, worker, |o| {
            o.finish(&outcome.epochs, &result)?;
            o.record_provenance(&provenance.finished(&clock).to_json())?;
            artifacts.commit()
        })
        .with_context(|| format!("cannot record trial {trial_id}"))?;
    // The trial is recorded: its checkpoint is no longer needed.
    let _ = checkpoints.files.clear();
    Ok(Ended::Done(
        outcome.test.get("accuracy").unwrap_or(f64::NAN),
    ))
}

/// What a trial's checkpoint is bound to: this store, the trial, its config and
/// its data. A checkpoint left by another store (deleted and recreated), another
/// trial or other data under the same path is never resumed.
fn checkpoint_identity(
    store: &Store,
    job: &Job,
    datasets: &mut DatasetMemo,
) -> Result<BTreeMap<String, String>> {
    Ok(BTreeMap::from([
        ("store".to_string(), store.store_id()?),
        ("trial".to_string(), job.trial_id.to_string()),
        ("config".to_string(), spec::config_hash(job.config)),
        (
            "data".to_string(),
            datasets.fingerprint(job.config, job.base_dir)?,
        ),
    ]))
}

fn trial_result(
    outcome: &TrainOutcome,
    dataset: &data::Dataset,
    seconds: f64,
    artifacts: Vec<crate::store::ArtifactRow>,
) -> TrialResult {
    let classes = &dataset.classes;
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
    let predictions = [
        ("valid", &dataset.valid, &outcome.valid_probs),
        ("test", &dataset.test, &outcome.test_probs),
    ]
    .into_iter()
    .filter_map(|(name, split, probs)| Some((name.to_string(), predictions(split, probs)?)))
    .collect();
    let test_split = dataset.test.origins().map(|(rows, hashes)| {
        crate::stats::fingerprint::test_split(classes, rows, hashes, &dataset.test.labels)
    });
    TrialResult {
        metrics,
        confusion,
        artifacts,
        predictions,
        test_split,
    }
}

/// A split's per-example predictions from its class probabilities (rows,
/// classes); `None` when the split does not know where its rows came from.
fn predictions(split: &data::Split, probs: &[Vec<f32>]) -> Option<Predictions> {
    let (rows, hashes) = split.origins()?;
    let classes = probs.first().map_or(0, |p| p.len());
    Some(Predictions {
        classes,
        rows: rows.to_vec(),
        hashes: hashes.to_vec(),
        truth: split.labels.iter().map(|&y| y as u16).collect(),
        predicted: probs
            .iter()
            .map(|p| train::metrics::argmax(p) as u16)
            .collect(),
        probs: probs.iter().flatten().copied().collect(),
    })
}

fn metric(split: &str, name: &str, value: f64) -> MetricRow {
    MetricRow {
        split: split.into(),
        name: name.into(),
        value,
    }
}

/// Checkpoint files, and the store's epochs kept in step with them, written
/// while owning the trial: an epoch's row is recorded, then its checkpoint
/// renamed into place, in one owning transaction (the checkpoint never runs
/// ahead of the store, and a failed write stops training). On resume the epochs
/// become exactly the checkpoint's own records (later ones dropped, its own
/// written back); without a checkpoint, none.
struct StoreCheckpointer<'a> {
    files: DirCheckpointer,
    store: &'a Store,
    trial_id: i64,
    worker: &'a str,
    /// The checkpoint `prepare` found usable.
    found: Option<Checkpoint>,
    /// The store's error that stopped training, whole (a `LostLease` stays one).
    error: Option<anyhow::Error>,
    /// A checkpoint was handed to the loop and no epoch has been saved since.
    resuming: bool,
}

impl StoreCheckpointer<'_> {
    /// Read the checkpoint; one that cannot be read, is damaged or belongs to
    /// another store, trial, config or data is removed (the trial restarts from
    /// epoch 1, never fails on it forever): returns why.
    fn prepare(&mut self) -> Option<String> {
        match self.files.load() {
            Ok(found) => {
                self.found = found;
                None
            }
            Err(e) => {
                let _ = std::fs::remove_file(self.files.path());
                Some(format!("{e}"))
            }
        }
    }

    /// The error training ended with, as the runner records it: the store's own
    /// (a lost lease among them) when it stopped training. A checkpoint that
    /// passed its checks but could not be resumed (e.g. a layout another lab
    /// wrote) is removed, so that the trial is not failed on it again.
    fn training_failed(&mut self, e: TrainError) -> anyhow::Error {
        if let Some(store_error) = self.error.take() {
            return store_error;
        }
        if !self.resuming {
            return e.into();
        }
        let path = self.files.path();
        let removed = self.store.while_owning(self.trial_id, self.worker, |_| {
            std::fs::remove_file(&path).map_err(anyhow::Error::from)
        });
        match removed {
            Ok(()) => anyhow::Error::from(e).context(format!(
                "cannot resume from the checkpoint {}: it was discarded, so the trial \
                 restarts from epoch 1 when retried (--retry-failed)",
                path.display()
            )),
            Err(_) => e.into(),
        }
    }

    /// `f` in an owning transaction; its error kept whole for the runner.
    fn owning(
        &mut self,
        action: &'static str,
        f: impl FnOnce(&Owned) -> anyhow::Result<()>,
    ) -> Result<(), TrainError> {
        self.store
            .while_owning(self.trial_id, self.worker, f)
            .map_err(|e| {
                let message = format!("{e:#}");
                self.error = Some(e);
                TrainError::checkpoint(self.store.path(), action, message)
            })
    }
}

impl Checkpointer for StoreCheckpointer<'_> {
    fn load(&mut self) -> Result<Option<Checkpoint>, TrainError> {
        let checkpoint = self.found.take();
        self.resuming = checkpoint.is_some();
        let records = checkpoint.as_ref().map_or(&[][..], |c| &c.records[..]);
        self.owning("make the epochs those of the checkpoint", |o| {
            o.set_epochs(records)
        })?;
        Ok(checkpoint)
    }
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), TrainError> {
        self.resuming = false;
        let pending = self.files.write_pending(checkpoint)?;
        let path = self.files.path();
        let saved = self.owning("record the epoch and replace the checkpoint", |o| {
            if let Some(record) = checkpoint.records.last() {
                o.record_epoch(record)?;
            }
            pending
                .commit()
                .with_context(|| format!("cannot replace the checkpoint {}", path.display()))
        });
        if saved.is_err() {
            // Leave no trace: the directory this save created, if still empty.
            let _ = std::fs::remove_dir(crate::files::parent_dir(&path));
        }
        saved
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
