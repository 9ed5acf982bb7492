//! The two ends of the trial queue: `enqueue` records a spec's trials and queues
//! them without running any (`lab queue add`); `work` claims queued trials of
//! any experiment, highest priority first, and runs them (`lab worker`).

use super::propose::Pruning;
use super::{execute, is_stale, record, DatasetMemo, Job, Outcome, RunEvent, RunOptions};
use crate::spec::{LoadedSpec, TrialConfig};
use crate::store::{QueueItem, Store};
use anyhow::{Context, Result};
use std::time::Duration;

/// What `enqueue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueSummary {
    /// The experiment's id in the store.
    pub experiment_id: i64,
    /// Trials in the grid.
    pub total: usize,
    /// Of them, done before.
    pub already_done: usize,
    /// Trials now waiting for a worker.
    pub pending: usize,
}

/// Check the spec and its data, record its trials and queue them with
/// `priority` (higher runs first). Trials already done stay done.
pub fn enqueue(loaded: &LoadedSpec, opts: &RunOptions, priority: i64) -> Result<EnqueueSummary> {
    if super::is_tpe(loaded) {
        anyhow::bail!(
            "{}: the queue holds fixed trials, but a TPE search proposes each configuration from the results before it; run it with `lab run {} --jobs N` (or one `lab run` per GPU with --device) on this store, or queue a random or sobol search",
            loaded.path.display(),
            loaded.path.display()
        );
    }
    let (store, recorded) = record(loaded, opts)?;
    // Workers may run from another directory: keep the absolute one.
    let base_dir = loaded
        .base_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve the directory of {}", loaded.path.display()))?;
    let base_dir = base_dir.to_str().with_context(|| {
        format!(
            "{}: lab needs the spec's directory to be valid UTF-8 to queue it",
            base_dir.display()
        )
    })?;
    let items: Vec<QueueItem> = recorded
        .ids
        .iter()
        .zip(&recorded.trials)
        .map(|(&trial_id, t)| QueueItem {
            trial_id,
            label: t.label.clone(),
        })
        .collect();
    let pending = store.enqueue(&items, priority, base_dir)?;
    Ok(EnqueueSummary {
        experiment_id: recorded.experiment_id,
        total: recorded.trials.len(),
        already_done: recorded.already_done,
        pending,
    })
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Database, device (`None`: each trial's `train.device`), worker name, lease.
    pub run: RunOptions,
    /// Keep polling an empty queue instead of returning.
    pub follow: bool,
    /// The longest pause between polls of an empty queue (the pause doubles from
    /// one second up to this).
    pub poll_max: Duration,
}

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkSummary {
    /// Trials this worker claimed and ran.
    pub ran: usize,
    /// Of those, the ones that failed.
    pub failed: usize,
}

/// Claim and run queued trials until none is pending (or, with `follow`, until
/// `stop` says so; it is asked between polls).
pub fn work(
    opts: &WorkerOptions,
    stop: &dyn Fn() -> bool,
    on_event: &mut dyn FnMut(RunEvent),
) -> Result<WorkSummary> {
    let run = &opts.run;
    let store = Store::open(&run.db)?;
    let mut datasets = DatasetMemo::default();
    let mut summary = WorkSummary::default();
    on_event(RunEvent::Planned {
        total: store.queued_pending()?,
        done: 0,
    });
    let first_pause = Duration::from_secs(1);
    let mut pause = first_pause;
    while !stop() {
        // Trials of crashed workers (this host) or expired leases (any host) go
        // back to pending and resume from their checkpoints.
        for experiment in store.queued_running_experiments()? {
            store.requeue_stale(experiment, &|worker, beat| {
                is_stale(worker, beat, run.lease)
            })?;
        }
        let Some(queued) = store.claim_queued(&run.worker, run.device.as_deref())? else {
            if !opts.follow {
                break;
            }
            // In short slices, so that `stop` (a signal) is seen within 0.1 s.
            let until = std::time::Instant::now() + pause;
            while !stop() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
            pause = (pause * 2).min(opts.poll_max.max(first_pause));
            continue;
        };
        pause = first_pause;
        summary.ran += 1;
        let trial = &queued.trial;
        let config = serde_json::from_str::<TrialConfig>(&trial.config_json);
        // The experiment's name becomes the trial's directory: checked as the spec's is.
        let config = config.map_err(|e| e.to_string()).and_then(|c| {
            crate::spec::check_experiment_name(&c.experiment)
                .map(|()| c)
                .map_err(|why| format!("key `experiment`: {why}"))
        });
        let config: TrialConfig = match config {
            Ok(config) => config,
            Err(err) => {
                let message = format!(
                    "the trial's config in the store is not one this lab can run \
                     (recorded by another version?): {err}"
                );
                store.while_owning(trial.id, &run.worker, |o| o.fail(&message))?;
                on_event(RunEvent::TrialFailed {
                    trial_id: trial.id,
                    label: &queued.label,
                    error: &message,
                });
                summary.failed += 1;
                continue;
            }
        };
        let device = trial.device.clone().unwrap_or_else(|| "cpu".into());
        // The pruner of the spec as it was queued.
        let pruning = store
            .experiment(trial.experiment_id)?
            .and_then(|e| Pruning::of_stored(&e.spec_toml, e.id));
        let job = Job {
            trial_id: trial.id,
            config: &config,
            label: &queued.label,
            base_dir: &queued.base_dir,
            device: &device,
            pruning: pruning.as_ref(),
        };
        if execute(&store, &job, run, &mut datasets, on_event)? == Outcome::Failed {
            summary.failed += 1;
        }
    }
    Ok(summary)
}
