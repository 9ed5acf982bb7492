//! Wires spec, data, model, train and store: records an experiment's trials,
//! claims the ones not yet done, trains them on a device and records results.
//! A failing trial is recorded as failed and the sweep goes on.

pub mod annotate;
pub mod artifacts;
pub mod attention;
pub mod device;
pub mod export;
pub mod queue;
pub mod slurm;

use crate::data::{self, Dataset};
use crate::model::{embeddings, Classifier};
use crate::spec::{self, LoadedSpec, TrialConfig};
use crate::store::{ConfusionRow, EpochRow, Store, TrialResult, TrialStatus};
use crate::train::{self, Checkpoint, Checkpointer, DirCheckpointer, Progress, TrainOutcome};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where results go and what runs them.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The SQLite file; artifacts and the dataset cache live beside it.
    pub db: PathBuf,
    /// Overrides `train.device` of every trial.
    pub device: Option<String>,
    /// Recorded with each claimed trial: `host:pid`.
    pub worker: String,
    /// A running trial whose heartbeat is older than this is taken to be abandoned
    /// (its worker crashed, on any host) and is run again.
    pub lease: Duration,
    /// Refuse a grid larger than this.
    pub max_trials: usize,
    /// Run the grid's failed trials again.
    pub retry_failed: bool,
    /// Run only this trial of the grid (0-based, in `--dry-run` order): one
    /// Slurm array task per trial.
    pub trial_index: Option<usize>,
}

/// Default `RunOptions::lease`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);
/// Default `RunOptions::max_trials`.
pub const DEFAULT_MAX_TRIALS: usize = 1000;

impl RunOptions {
    pub fn new(db: PathBuf) -> Self {
        Self {
            db,
            device: None,
            worker: worker_name(),
            lease: DEFAULT_LEASE,
            max_trials: DEFAULT_MAX_TRIALS,
            retry_failed: false,
            trial_index: None,
        }
    }

    /// The directory holding the database, artifacts and cache.
    pub fn root(&self) -> PathBuf {
        crate::files::parent_dir(&self.db)
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

/// The grid's trials that this run covers: all of them, or the one `trial_index`
/// names; refused when empty or larger than `max_trials`.
fn select(loaded: &LoadedSpec, opts: &RunOptions) -> Result<Vec<PlannedTrial>> {
    let mut trials = planned(loaded)?;
    if trials.is_empty() {
        anyhow::bail!("{}: the grid has no trials", loaded.path.display());
    }
    if trials.len() > opts.max_trials {
        anyhow::bail!(
            "{}: the grid has {} trials, more than --max-trials {}; pass --max-trials {} to run them all",
            loaded.path.display(),
            trials.len(),
            opts.max_trials,
            trials.len()
        );
    }
    if let Some(index) = opts.trial_index {
        if index >= trials.len() {
            anyhow::bail!(
                "{}: --trial-index {index} is outside the grid: it has {} trials (indices 0 to {})",
                loaded.path.display(),
                trials.len(),
                trials.len() - 1
            );
        }
        trials = vec![trials.swap_remove(index)];
    }
    Ok(trials)
}

/// Number of trials in the grid after the same checks as `run` (size, data),
/// without recording anything: what `lab submit` does before submitting.
pub fn check(loaded: &LoadedSpec, opts: &RunOptions) -> Result<usize> {
    let trials = select(loaded, opts)?;
    check_data(loaded, &trials, None)?;
    Ok(trials.len())
}

/// Bad data is the user's to fix: find it before anything is recorded.
fn check_data(
    loaded: &LoadedSpec,
    trials: &[PlannedTrial],
    cache_dir: Option<&Path>,
) -> Result<DatasetMemo> {
    let mut datasets = DatasetMemo::default();
    for trial in trials {
        datasets
            .get(&trial.config, &loaded.base_dir, cache_dir)
            .with_context(|| {
                format!(
                    "{}: bad data for trial {} (nothing was recorded)",
                    loaded.path.display(),
                    trial.label
                )
            })?;
        check_embeddings(loaded, &trial.config, &mut datasets, cache_dir).with_context(|| {
            format!(
                "bad pretrained vectors for trial {} (nothing was recorded)",
                trial.label
            )
        })?;
    }
    Ok(datasets)
}

/// A spec's trials as recorded in the store.
struct Recorded {
    experiment_id: i64,
    trials: Vec<PlannedTrial>,
    /// The trials' ids, in the order of `trials`.
    ids: Vec<i64>,
    datasets: DatasetMemo,
    already_done: usize,
}

/// Expand the spec, check its data, record the experiment and its trials (new
/// ones pending), and put abandoned (and with `retry_failed`, failed) trials
/// back to pending.
/// The store is opened only once the input has passed.
fn record(loaded: &LoadedSpec, opts: &RunOptions) -> Result<(Store, Recorded)> {
    let trials = select(loaded, opts)?;
    let datasets = check_data(loaded, &trials, Some(&opts.root().join("cache")))?;
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
    // Trials whose worker died (this host) or stopped renewing its lease (any host)
    // go back to the queue; their checkpoints let them resume.
    store.requeue_stale(experiment_id, &|worker, beat| {
        is_stale(worker, beat, opts.lease)
    })?;
    if opts.retry_failed {
        store.requeue_failed(&ids)?;
    }
    let already_done = ids
        .iter()
        .map(|&id| store.trial(id))
        .collect::<Result<Vec<_>>>()?
        .iter()
        .filter(|t| matches!(t, Some(row) if row.status == TrialStatus::Done))
        .count();
    let recorded = Recorded {
        experiment_id,
        trials,
        ids,
        datasets,
        already_done,
    };
    Ok((store, recorded))
}

/// Record the spec's trials (as `run` does before training) without running any:
/// what `lab run --jobs N` does once before its N processes share the grid.
pub fn prepare(loaded: &LoadedSpec, opts: &RunOptions) -> Result<RunSummary> {
    let (_, recorded) = record(loaded, opts)?;
    Ok(RunSummary {
        experiment_id: recorded.experiment_id,
        total: recorded.trials.len(),
        already_done: recorded.already_done,
        ran: 0,
        failed: 0,
    })
}

/// Run every trial of the spec that is not done yet.
pub fn run(
    loaded: &LoadedSpec,
    opts: &RunOptions,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<RunSummary> {
    let (
        store,
        Recorded {
            experiment_id,
            trials,
            ids,
            mut datasets,
            already_done,
        },
    ) = record(loaded, opts)?;
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
    for (trial, &trial_id) in trials.iter().zip(&ids) {
        let device = opts
            .device
            .clone()
            .unwrap_or_else(|| trial.config.train.device.to_string());
        if store
            .claim_trial_id(trial_id, &opts.worker, &device)?
            .is_none()
        {
            continue; // done, failed, cancelled, or taken by another process
        }
        let job = Job {
            trial_id,
            config: &trial.config,
            label: &trial.label,
            base_dir: &loaded.base_dir,
            device: &device,
        };
        summary.ran += 1;
        if !execute(&store, &job, opts, &mut datasets, on_event)? {
            summary.failed += 1;
        }
    }
    Ok(summary)
}

/// A claimed trial and what it needs to run.
struct Job<'a> {
    trial_id: i64,
    config: &'a TrialConfig,
    label: &'a str,
    /// Where the spec's relative paths (data, stopword list) resolve.
    base_dir: &'a Path,
    device: &'a str,
}

/// Run a claimed trial under a heartbeat and record its result. A failure (an
/// error or a panic inside the trial) is recorded as the trial's, unless another
/// worker took the trial over. Returns whether the trial succeeded; errors are
/// the store's.
fn execute(
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

/// The pretrained vectors a trial names must fit its model: their dimension is
/// `model.embedding_dim`, and the file reads cleanly (read once per vocabulary
/// here, and kept for the trials).
fn check_embeddings(
    loaded: &LoadedSpec,
    config: &TrialConfig,
    memo: &mut DatasetMemo,
    cache_dir: Option<&Path>,
) -> Result<()> {
    let Some(e) = config.model.embeddings.as_ref().filter(|e| e.has_file()) else {
        return Ok(());
    };
    let base = &loaded.base_dir;
    let path = embeddings::vectors_path(e, base);
    let dim = embeddings::peek_dim(e, base)
        .map_err(|err| spec::key_error(loaded, "model.embeddings.path", format!("{err:#}")))?;
    if dim != config.model.embedding_dim {
        return Err(spec::key_error(
            loaded,
            "model.embedding_dim",
            format!(
                "is {}, but the vectors in {} have {dim} dimensions; set model.embedding_dim = {dim}",
                config.model.embedding_dim,
                path.display()
            ),
        )
        .into());
    }
    memo.vectors(config, base, cache_dir)
        .map_err(|err| spec::key_error(loaded, "model.embeddings.path", format!("{err:#}")))?;
    Ok(())
}

/// Datasets already prepared in this process, by their settings: a sweep over
/// model settings prepares (and hashes the data file for the cache key) once.
/// Likewise the pretrained vectors read for a dataset's vocabulary.
#[derive(Default)]
struct DatasetMemo(
    HashMap<String, Arc<Dataset>>,
    HashMap<String, Arc<embeddings::Found>>,
);

impl DatasetMemo {
    /// The vectors `config.model.embeddings` names, for the vocabulary of the
    /// trial's dataset; `None` without a vectors file.
    fn vectors(
        &mut self,
        config: &TrialConfig,
        base_dir: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<Option<Arc<embeddings::Found>>> {
        let Some(e) = config.model.embeddings.as_ref().filter(|e| e.has_file()) else {
            return Ok(None);
        };
        let dataset = self.get(config, base_dir, cache_dir)?;
        let key = format!(
            "{}/{}",
            data::settings_id(&config.data, &config.preprocess, base_dir)?,
            serde_json::to_string(&(&e.path, e.format, &e.vocab))?
        );
        if let Some(found) = self.1.get(&key) {
            return Ok(Some(found.clone()));
        }
        let found = Arc::new(embeddings::read(
            e,
            base_dir,
            &dataset.vocab.itos,
            config.preprocess.lowercase,
        )?);
        self.1.insert(key, found.clone());
        Ok(Some(found))
    }

    fn get(
        &mut self,
        config: &TrialConfig,
        base_dir: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<Arc<Dataset>> {
        let id = data::settings_id(&config.data, &config.preprocess, base_dir)?;
        if let Some(dataset) = self.0.get(&id) {
            return Ok(dataset.clone());
        }
        let dataset = Arc::new(match cache_dir {
            Some(dir) => {
                let key = data::cache_key(&config.data, &config.preprocess, base_dir)?;
                data::prepare_cached(&config.data, &config.preprocess, base_dir, dir, &key)?
            }
            None => data::prepare(&config.data, &config.preprocess, base_dir, None)?,
        });
        self.0.insert(id, dataset.clone());
        Ok(dataset)
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
    let outcome = train::train_resumable(
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
            .map(|(name, v)| ("train".to_string(), name.to_string(), v)),
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

/// Checkpoint files, and the store's epochs kept in step with them: on resume
/// the epochs after the checkpoint's (recorded, then lost in a crash) are dropped.
struct StoreCheckpointer<'a> {
    files: DirCheckpointer,
    store: &'a Store,
    trial_id: i64,
}

impl Checkpointer for StoreCheckpointer<'_> {
    fn load(&mut self) -> candle_core::Result<Option<Checkpoint>> {
        let checkpoint = self.files.load()?;
        let epoch = checkpoint.as_ref().map_or(0, |c| c.epoch);
        self.store
            .truncate_epochs(self.trial_id, epoch)
            .map_err(|e| candle_core::Error::Msg(format!("{e:#}")))?;
        Ok(checkpoint)
    }
    fn save(&mut self, checkpoint: &Checkpoint) -> candle_core::Result<()> {
        self.files.save(checkpoint)
    }
}

/// This worker's lease expired (it was stopped longer than the lease) and another
/// worker claimed the trial: its results are not recorded twice.
#[derive(Debug, thiserror::Error)]
#[error("trial {trial_id} was taken over by another worker after this one's lease expired; its results were not recorded")]
struct LostLease {
    trial_id: i64,
}

/// A thread renewing a running trial's lease through its own connection.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(db: &Path, trial_id: i64, worker: &str, every: Duration) -> Result<Heartbeat> {
        let store = Store::open(db)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let worker = worker.to_string();
        let every = every.max(Duration::from_millis(100));
        let thread = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= every {
                    last = Instant::now();
                    // A failed renewal is retried next time; the lease allows for it.
                    let _ = store.heartbeat(trial_id, &worker);
                }
            }
        });
        Ok(Heartbeat {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(self) {
        drop(self);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a running trial is abandoned: its worker process on this host is gone,
/// or its last heartbeat is older than `lease`.
pub fn is_stale(worker: &str, heartbeat_at: Option<&str>, lease: Duration) -> bool {
    if !worker_alive(worker) {
        return true;
    }
    let Some(beat) = heartbeat_at.and_then(|b| chrono::DateTime::parse_from_rfc3339(b).ok()) else {
        return false;
    };
    let age = chrono::Utc::now().signed_duration_since(beat);
    age.to_std().is_ok_and(|age| age > lease)
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
