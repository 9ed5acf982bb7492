//! Wires spec, data, model, train and store: records an experiment's trials,
//! claims the ones not yet done, trains them on a device and records results.
//! A failing trial is recorded as failed and the sweep goes on.
//!
//! This file plans a spec's trials and records them; `trial` runs one claimed
//! trial, `memo` prepares datasets once per process, `provenance` says where
//! and how a trial ran, `liveness` tells
//! abandoned trials from running ones, [`queue`] and [`slurm`] spread trials
//! over workers and cluster nodes, and [`race`] adds seeds where the evidence
//! is not yet conclusive (`lab run --race`).

pub mod device;
mod leftovers;
mod liveness;
mod memo;
mod propose;
pub mod provenance;
pub mod queue;
pub mod race;
pub mod slurm;
mod trial;

pub use liveness::{is_stale, this_host, worker_name};
use memo::{check_data, DatasetMemo};
use trial::{execute, Job, Outcome};

use crate::spec::{self, LoadedSpec, Strategy, TrialConfig};
use crate::store::{NewTrial, Store, TrialRow, TrialStatus};
use crate::train::Progress;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
pub const DEFAULT_MAX_TRIALS: usize = spec::DEFAULT_MAX_TRIALS;

impl RunOptions {
    /// The defaults for the store `db`: this process as the worker, each trial's
    /// own device, [`DEFAULT_LEASE`], [`DEFAULT_MAX_TRIALS`], the whole grid.
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

/// What a sweep reports as it goes.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// `total` trials in the grid, `done` of them finished before this run.
    Planned {
        /// Trials in the grid (or the one `trial_index` names).
        total: usize,
        /// Of them, done before this run.
        done: usize,
    },
    /// A claimed trial starts training.
    TrialStart {
        /// The trial's id in the store.
        trial_id: i64,
        /// Its grid label (the swept values).
        label: &'a str,
    },
    /// Training progress of the running trial.
    Train(&'a Progress),
    /// A trial finished and was recorded.
    TrialDone {
        /// The trial's id in the store.
        trial_id: i64,
        /// Its grid label.
        label: &'a str,
        /// Accuracy on the test split (0 to 1).
        test_accuracy: f64,
        /// Wall time of the trial, in seconds.
        seconds: f64,
    },
    /// A trial's checkpoint was unusable (unreadable, damaged, or another store's,
    /// trial's, config's or data's) and was removed: the trial restarts from epoch 1.
    CheckpointDiscarded {
        /// The trial's id in the store.
        trial_id: i64,
        /// The checkpoint file.
        path: &'a Path,
        /// Why it was unusable.
        reason: &'a str,
    },
    /// A stop signal (SIGINT, SIGTERM) interrupted a trial: it is back to
    /// pending with its recorded epochs and checkpoint, for the next run to resume.
    TrialInterrupted {
        /// The trial's id in the store.
        trial_id: i64,
        /// Its grid label.
        label: &'a str,
    },
    /// The search's pruner stopped a trial after an epoch; it is recorded as
    /// pruned with its epochs.
    TrialPruned {
        /// The trial's id in the store.
        trial_id: i64,
        /// Its grid label.
        label: &'a str,
        /// The pruner's reason, e.g. `pruned at epoch 2: 0.61 < median 0.68 ...`.
        reason: &'a str,
    },
    /// A trial failed (its error is recorded, unless another worker took it over).
    TrialFailed {
        /// The trial's id in the store.
        trial_id: i64,
        /// Its grid label.
        label: &'a str,
        /// The error, with its causes.
        error: &'a str,
    },
}

/// What a sweep (or `prepare`) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The experiment's id in the store.
    pub experiment_id: i64,
    /// Trials in the grid (or the one `trial_index` names; for a TPE search,
    /// its whole budget).
    pub total: usize,
    /// Of them, finished (done or pruned) before this run.
    pub already_done: usize,
    /// Trials this run claimed and ran.
    pub ran: usize,
    /// Of those, the ones that failed.
    pub failed: usize,
    /// Of those, the ones the search's pruner stopped.
    pub pruned: usize,
}

/// One grid point with its identity, as the runner records it.
struct PlannedTrial {
    config: TrialConfig,
    hash: String,
    label: String,
    /// The search proposal it belongs to (`None` outside a search).
    number: Option<usize>,
}

impl PlannedTrial {
    /// The store row that records this trial.
    fn new_trial(&self) -> Result<NewTrial> {
        Ok(NewTrial {
            config_json: serde_json::to_string(&self.config)?,
            config_hash: self.hash.clone(),
            seed: self.config.seed,
            search_number: self.number.map(|n| n as i64),
        })
    }
}

/// Expand the spec into labelled trials (what `--dry-run` prints). A TPE
/// search lists its random start: the proposals that do not depend on results.
pub fn plan(loaded: &LoadedSpec) -> Result<Vec<(String, String)>> {
    Ok(planned(loaded)?
        .into_iter()
        .map(|t| (t.hash, t.label))
        .collect())
}

/// The spec's `[search]`, if any.
fn search_of(loaded: &LoadedSpec) -> Option<&crate::spec::SearchSection> {
    loaded.spec.search.as_ref()
}

/// Whether the spec is a TPE search, whose trials after the random start are
/// proposed as results come in.
fn is_tpe(loaded: &LoadedSpec) -> bool {
    search_of(loaded).is_some_and(|s| s.strategy == Strategy::Tpe)
}

/// Every trial of the grid, or of a grid, random or Sobol search (each
/// proposal on every grid point, seeds innermost); for TPE, its random start.
fn planned(loaded: &LoadedSpec) -> Result<Vec<PlannedTrial>> {
    let grid = spec::expand(loaded)?;
    let axes = label_axes(loaded);
    let Some(search) = search_of(loaded) else {
        return Ok(grid
            .into_iter()
            .map(|config| PlannedTrial {
                hash: spec::config_hash(&config),
                label: spec::trial_label(&config, &axes),
                config,
                number: None,
            })
            .collect());
    };
    let params = spec::search_space(loaded)?;
    let (strategy, count) = match search.strategy {
        Strategy::Tpe => (Strategy::Random, propose::startup(search)),
        s => (s, search.trials.unwrap_or(0)),
    };
    let proposals = crate::search::sample::fixed(&params, strategy, search.seed, count)
        .map_err(|e| spec::key_error(loaded, "search.strategy", e))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for proposal in &proposals {
        for t in propose::expand_proposal(loaded, &grid, &params, proposal, &axes)? {
            if seen.insert(t.hash.clone()) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Trials a run covers: those planned, or for TPE its whole budget.
fn total(loaded: &LoadedSpec, planned: usize) -> usize {
    if is_tpe(loaded) {
        spec::trial_count(&loaded.spec).unwrap_or(planned)
    } else {
        planned
    }
}

/// The keys a trial's label shows: the sweep axes, then the searched keys.
fn label_axes(loaded: &LoadedSpec) -> Vec<String> {
    let mut axes: Vec<String> = loaded.spec.sweep.keys().cloned().collect();
    if let Some(search) = search_of(loaded) {
        axes.extend(search.space.keys().cloned());
    }
    axes
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
    let rows: Vec<NewTrial> = trials
        .iter()
        .map(PlannedTrial::new_trial)
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
    leftovers::clean(&store, &opts.root(), name, experiment_id)?;
    let finished = |t: &Option<TrialRow>| matches!(t, Some(row) if matches!(row.status, TrialStatus::Done | TrialStatus::Pruned));
    let already_done = if is_tpe(loaded) {
        // Proposed as it went: every finished trial of the search counts.
        let counts = store.status_counts(experiment_id)?;
        counts.done + counts.pruned
    } else {
        ids.iter()
            .map(|&id| store.trial(id))
            .collect::<Result<Vec<_>>>()?
            .iter()
            .filter(|t| finished(t))
            .count()
    };
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
        pruned: 0,
    })
}

/// Run every trial of the spec that is not done yet.
///
/// # Errors
/// The spec's grid or data is refused, the store cannot be read or written, or
/// a stop signal arrived ([`crate::interrupt::Interrupted`]; the trial it
/// interrupted is back to pending).
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
    let total = total(loaded, trials.len());
    on_event(RunEvent::Planned {
        total,
        done: already_done,
    });

    let mut summary = RunSummary {
        experiment_id,
        total,
        already_done,
        ran: 0,
        failed: 0,
        pruned: 0,
    };
    let mut runs = Runs {
        store: &store,
        loaded,
        opts,
        datasets: &mut datasets,
        summary: &mut summary,
        pruning: propose::Pruning::of(loaded, experiment_id),
    };
    runs.each(&trials, &ids, on_event)?;
    if is_tpe(loaded) && opts.trial_index.is_none() {
        runs.search(experiment_id, on_event)?;
    }
    Ok(summary)
}

/// What running claimed trials needs, and the counts it keeps.
struct Runs<'a> {
    store: &'a Store,
    loaded: &'a LoadedSpec,
    opts: &'a RunOptions,
    datasets: &'a mut DatasetMemo,
    summary: &'a mut RunSummary,
    /// The search's pruner, if the spec has one.
    pruning: Option<propose::Pruning>,
}

impl Runs<'_> {
    /// Count a trial `execute` ran.
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Done => {}
            Outcome::Pruned => self.summary.pruned += 1,
            Outcome::Failed => self.summary.failed += 1,
        }
    }

    /// Claim each of `trials` (ids in `ids`, same order) that is still pending
    /// and run it; a trial done, failed, cancelled or taken by another process
    /// is skipped. Returns how many this call claimed.
    ///
    /// # Errors
    /// A stop signal (checked before each claim), or the store's errors.
    fn each(
        &mut self,
        trials: &[PlannedTrial],
        ids: &[i64],
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<usize> {
        let mut claimed = 0;
        for (trial, &trial_id) in trials.iter().zip(ids) {
            // After a stop signal no further trial is claimed.
            crate::interrupt::check()?;
            let device = self
                .opts
                .device
                .clone()
                .unwrap_or_else(|| trial.config.train.device.to_string());
            if self
                .store
                .claim_trial_id(trial_id, &self.opts.worker, &device)?
                .is_none()
            {
                continue; // done, failed, cancelled, or taken by another process
            }
            let job = Job {
                trial_id,
                config: &trial.config,
                label: &trial.label,
                base_dir: &self.loaded.base_dir,
                device: &device,
                pruning: self.pruning.as_ref(),
            };
            claimed += 1;
            self.summary.ran += 1;
            let outcome = execute(self.store, &job, self.opts, self.datasets, on_event)?;
            self.count(outcome);
        }
        Ok(claimed)
    }
}
