//! Wires spec, data, model, train and store: records an experiment's trials,
//! claims the ones not yet done, trains them on a device and records results.
//! A failing trial is recorded as failed and the sweep goes on.

pub mod annotate;
pub mod artifacts;
pub mod device;
pub mod export;

use crate::data::{self, Dataset};
use crate::model::Classifier;
use crate::spec::{self, LoadedSpec, TrialConfig};
use crate::store::{ConfusionRow, EpochRow, Store, TrialResult, TrialStatus};
use crate::train::{self, Progress, TrainOutcome};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Where results go and what runs them.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The SQLite file; artifacts and the dataset cache live beside it.
    pub db: PathBuf,
    /// Overrides `train.device` of every trial.
    pub device: Option<String>,
    /// Recorded with each claimed trial: `host:pid`.
    pub worker: String,
}

impl RunOptions {
    pub fn new(db: PathBuf) -> Self {
        Self {
            db,
            device: None,
            worker: worker_name(),
        }
    }

    /// The directory holding the database, artifacts and cache.
    pub fn root(&self) -> PathBuf {
        match self.db.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// `host:pid`, so a trial left running by a dead process can be recognised.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// What a sweep reports as it goes.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// `total` trials in the grid, `done` of them finished before this run.
    Planned {
        total: usize,
        done: usize,
    },
    TrialStart {
        trial_id: i64,
        label: &'a str,
    },
    Train(&'a Progress),
    TrialDone {
        trial_id: i64,
        label: &'a str,
        test_accuracy: f64,
        seconds: f64,
    },
    TrialFailed {
        trial_id: i64,
        label: &'a str,
        error: &'a str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub experiment_id: i64,
    pub total: usize,
    pub already_done: usize,
    pub ran: usize,
    pub failed: usize,
}

/// One grid point with its identity, as the runner records it.
struct PlannedTrial {
    config: TrialConfig,
    hash: String,
    label: String,
}

/// Expand the spec into labelled trials (what `--dry-run` prints).
pub fn plan(loaded: &LoadedSpec) -> Result<Vec<(String, String)>> {
    Ok(planned(loaded)?
        .into_iter()
        .map(|t| (t.hash, t.label))
        .collect())
}

fn planned(loaded: &LoadedSpec) -> Result<Vec<PlannedTrial>> {
    let axes: Vec<String> = loaded.spec.sweep.keys().cloned().collect();
    Ok(spec::expand(loaded)?
        .into_iter()
        .map(|config| PlannedTrial {
            hash: spec::config_hash(&config),
            label: spec::trial_label(&config, &axes),
            config,
        })
        .collect())
}

/// Run every trial of the spec that is not done yet.
pub fn run(
    loaded: &LoadedSpec,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<RunSummary> {
    let trials = planned(loaded)?;
    let store = Store::open(&opts.db)?;
    let name = &loaded.spec.experiment.name;
    let experiment_id =
        store.upsert_experiment(name, &loaded.source, &spec::spec_hash(&loaded.source))?;
    let rows: Vec<(String, String, u64)> = trials
        .iter()
        .map(|t| {
            Ok((
                serde_json::to_string(&t.config)?,
                t.hash.clone(),
                t.config.seed,
            ))
        })
        .collect::<Result<_>>()?;
    let ids = store.add_trials(experiment_id, &rows)?;
    // Trials this host left `running` when its process died go back to the queue.
    store.requeue_running_if(experiment_id, &|worker| !worker_alive(worker))?;

    let already_done = ids
        .iter()
        .map(|&id| store.trial(id))
        .collect::<Result<Vec<_>>>()?
        .iter()
        .filter(|t| matches!(t, Some(row) if row.status == TrialStatus::Done))
        .count();
    on_event(RunEvent::Planned {
        total: trials.len(),
        done: already_done,
    });

    let mut summary = RunSummary {
        experiment_id,
        total: trials.len(),
        already_done,
        ran: 0,
        failed: 0,
    };
    let mut datasets = DatasetMemo::default();
    let root = opts.root();
    for (trial, &trial_id) in trials.iter().zip(&ids) {
        let device_name = opts
            .device
            .clone()
            .unwrap_or_else(|| trial.config.train.device.clone());
        if store
            .claim_trial_id(trial_id, &opts.worker, &device_name)?
            .is_none()
        {
            continue; // done, failed, or taken by another process
        }
        on_event(RunEvent::TrialStart {
            trial_id,
            label: &trial.label,
        });
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run_trial(
                &store,
                trial_id,
                &trial.config,
                loaded,
                &device_name,
                &root,
                &mut datasets,
                on_event,
            )
        }))
        .unwrap_or_else(|panic| {
            Err(anyhow::anyhow!(
                "internal error (panic): {}",
                panic_message(&panic)
            ))
        });
        summary.ran += 1;
        match outcome {
            Ok(test_accuracy) => on_event(RunEvent::TrialDone {
                trial_id,
                label: &trial.label,
                test_accuracy,
                seconds: started.elapsed().as_secs_f64(),
            }),
            Err(err) => {
                summary.failed += 1;
                let message = format!("{err:#}");
                store.fail_trial(trial_id, &message)?;
                on_event(RunEvent::TrialFailed {
                    trial_id,
                    label: &trial.label,
                    error: &message,
                });
            }
        }
    }
    Ok(summary)
}

/// Datasets already prepared in this process, by cache key: a sweep over model
/// settings prepares its data once.
#[derive(Default)]
struct DatasetMemo(HashMap<String, Arc<Dataset>>);

impl DatasetMemo {
    fn get(
        &mut self,
        config: &TrialConfig,
        base_dir: &Path,
        cache_dir: &Path,
    ) -> Result<Arc<Dataset>> {
        let key = data::cache_key(&config.data, &config.preprocess, base_dir)?;
        if let Some(dataset) = self.0.get(&key) {
            return Ok(dataset.clone());
        }
        let dataset = Arc::new(data::prepare(
            &config.data,
            &config.preprocess,
            base_dir,
            Some(cache_dir),
        )?);
        self.0.insert(key, dataset.clone());
        Ok(dataset)
    }
}

/// Train one trial and record it; returns its test accuracy.
#[allow(clippy::too_many_arguments)]
fn run_trial(
    store: &Store,
    trial_id: i64,
    config: &TrialConfig,
    loaded: &LoadedSpec,
    device_name: &str,
    root: &Path,
    datasets: &mut DatasetMemo,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<f64> {
    let device = device::select(device_name)?;
    let dataset = datasets.get(config, &loaded.base_dir, &root.join("cache"))?;
    let balanced = data::balance(
        &dataset.train,
        dataset.classes.len(),
        config.preprocess.balance,
        config.seed,
    );
    let model = Classifier::new(
        &config.model,
        dataset.vocab.len(),
        dataset.classes.len(),
        config.seed,
        &device,
    )?;
    let started = Instant::now();
    let mut record_error = None;
    let outcome = train::train(
        &model,
        &dataset,
        &balanced,
        &config.train,
        config.seed,
        &device,
        &mut |progress| {
            if let Progress::EpochEnd(e) = &progress {
                let row = EpochRow {
                    epoch: e.epoch,
                    train_loss: e.train_loss,
                    valid_loss: e.valid_loss,
                    valid_accuracy: e.valid_accuracy,
                    valid_macro_f1: e.valid_macro_f1,
                    lr: e.lr,
                    seconds: e.seconds,
                    samples_per_second: e.samples_per_second,
                };
                if let Err(err) = store.record_epoch(trial_id, &row) {
                    record_error.get_or_insert(err);
                }
            }
            on_event(RunEvent::Train(&progress));
        },
    )?;
    if let Some(err) = record_error {
        return Err(err.context("cannot record an epoch"));
    }
    let dir = root.join(&config.experiment).join(trial_id.to_string());
    let artifacts = artifacts::save(
        &dir,
        root,
        &model,
        &dataset.vocab,
        &dataset.classes,
        config,
        &loaded.base_dir,
    )?;
    let result = trial_result(
        &outcome,
        &dataset.classes,
        started.elapsed().as_secs_f64(),
        artifacts,
    );
    store
        .finish_trial(trial_id, &result)
        .with_context(|| format!("cannot record trial {trial_id}"))?;
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
        metrics.extend(
            eval.metrics
                .iter()
                .map(|(n, v)| (split.to_string(), n.clone(), *v)),
        );
        confusion.push(ConfusionRow {
            split: split.into(),
            matrix: eval.confusion.clone(),
            labels: classes.to_vec(),
        });
    }
    metrics.push(("train".into(), "seconds".into(), seconds));
    metrics.push((
        "train".into(),
        "best_epoch".into(),
        outcome.best_epoch as f64,
    ));
    metrics.push(("train".into(), "epochs".into(), outcome.epochs.len() as f64));
    TrialResult {
        metrics,
        confusion,
        artifacts,
    }
}

/// Whether the process named by a `host:pid` worker is still running. Workers of
/// other hosts are assumed alive: only their own host can tell.
fn worker_alive(worker: &str) -> bool {
    let Some((host, pid)) = worker.rsplit_once(':') else {
        return true;
    };
    let this = worker_name();
    let this_host = this.rsplit_once(':').map(|(h, _)| h).unwrap_or_default();
    if host != this_host {
        return true;
    }
    pid.parse::<u32>()
        .map(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .unwrap_or(true)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
