//! `lab status --shards DIR`: an array's progress read from its shard databases
//! (read-only, so it may run while the tasks write), one row per array task.

use super::{find_shards, ArrayInfo, ARRAY_INFO};
use crate::runner::is_stale;
use crate::store::{Store, TrialStatus};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

/// One array task as `lab status --shards` shows it (empty cells are unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The array task index.
    pub task: usize,
    /// The trial's status, `not started` (no shard yet) or `unreadable`.
    pub status: String,
    /// The trial's config hash, first 12 characters.
    pub trial: String,
    /// Epochs recorded so far.
    pub epochs: String,
    /// Test accuracy, 4 decimals, once done.
    pub test_accuracy: String,
    /// The error of a failed trial, why a pruned one was stopped, a stale
    /// worker, or why the shard is unreadable.
    pub note: String,
}

impl TaskRow {
    /// The column names, in the order of [`TaskRow::cells`].
    pub const HEADER: [&'static str; 6] =
        ["task", "status", "trial", "epochs", "test accuracy", "note"];

    /// The row's cells, in the order of [`TaskRow::HEADER`].
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.task.to_string(),
            self.status.clone(),
            self.trial.clone(),
            self.epochs.clone(),
            self.test_accuracy.clone(),
            self.note.clone(),
        ]
    }
}

/// Array tasks by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Tasks whose trial is pending.
    pub pending: usize,
    /// Tasks whose trial is running (stale ones included).
    pub running: usize,
    /// Tasks whose trial is done.
    pub done: usize,
    /// Tasks whose trial failed.
    pub failed: usize,
    /// Tasks whose trial was stopped early by a pruner.
    pub pruned: usize,
    /// Tasks with no shard database yet.
    pub not_started: usize,
}

/// An array's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardStatus {
    /// What `lab submit` left in the directory, when it did.
    pub info: Option<ArrayInfo>,
    /// Array tasks: from `info`, else one past the highest shard found.
    pub tasks: usize,
    /// One row per task, by task index.
    pub rows: Vec<TaskRow>,
    /// The rows by state (unreadable shards are counted nowhere).
    pub counts: TaskCounts,
}

impl ShardStatus {
    /// The summary line: `array JOB (EXPERIMENT): N tasks: d done, r running, ...`
    /// (pruned tasks only when there are some)
    /// (the directory stands in for the array without its description).
    pub fn summary(&self, dir: &Path) -> String {
        let title = match &self.info {
            Some(i) => format!("array {} ({})", i.job_id, i.experiment),
            None => dir.display().to_string(),
        };
        let c = &self.counts;
        let pruned = if c.pruned > 0 {
            format!(", {} pruned", c.pruned)
        } else {
            String::new()
        };
        format!(
            "{title}: {} tasks: {} done{pruned}, {} running, {} failed, {} pending, {} not started",
            self.tasks, c.done, c.running, c.failed, c.pending, c.not_started
        )
    }
}

/// Read every task's shard in `dir`; a running trial whose heartbeat is older
/// than `lease` is noted as stale. A shard that cannot be read (being created,
/// or written elsewhere) gives an `unreadable` row, not an error.
///
/// # Errors
/// `dir` cannot be listed, or its `array.json` is not lab's.
pub fn shard_status(dir: &Path, lease: Duration) -> Result<ShardStatus> {
    let info: Option<ArrayInfo> = match std::fs::read_to_string(dir.join(ARRAY_INFO)) {
        Ok(text) => Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not lab's array description",
                dir.join(ARRAY_INFO).display()
            )
        })?),
        Err(_) => None,
    };
    let found = find_shards(dir)?;
    let tasks = info
        .as_ref()
        .map(|i| i.tasks)
        .unwrap_or_else(|| found.last().map_or(0, |(t, _)| t + 1));
    let mut counts = TaskCounts::default();
    let mut rows = Vec::new();
    for task in 0..tasks {
        let empty = |status: &str, note: String| TaskRow {
            task,
            status: status.into(),
            trial: String::new(),
            epochs: String::new(),
            test_accuracy: String::new(),
            note,
        };
        let Some((_, file)) = found.iter().find(|(t, _)| *t == task) else {
            counts.not_started += 1;
            rows.push(empty("not started", String::new()));
            continue;
        };
        rows.push(match task_row(task, file, lease) {
            Ok((status, row)) => {
                *match status {
                    TrialStatus::Pending => &mut counts.pending,
                    TrialStatus::Running => &mut counts.running,
                    TrialStatus::Done => &mut counts.done,
                    TrialStatus::Failed => &mut counts.failed,
                    TrialStatus::Pruned => &mut counts.pruned,
                } += 1;
                row
            }
            // A shard being created or written elsewhere: say so, keep going.
            Err(err) => empty("unreadable", format!("{err:#}")),
        });
    }
    Ok(ShardStatus {
        info,
        tasks,
        rows,
        counts,
    })
}

/// A shard's trial (normally one) with its status, epochs so far, test
/// accuracy, and the error or stale worker.
fn task_row(task: usize, file: &Path, lease: Duration) -> Result<(TrialStatus, TaskRow)> {
    let store = Store::open_read_only(file)?;
    let mut row = None;
    for experiment in store.experiments()? {
        let running = store.running(experiment.id)?;
        for trial in store.trials(experiment.id)? {
            let epochs = store.epochs(trial.id)?.len();
            let accuracy = store
                .metrics(trial.id)?
                .into_iter()
                .find(|m| m.split == "test" && m.name == "accuracy")
                .map(|m| format!("{:.4}", m.value))
                .unwrap_or_default();
            let note = match trial.status {
                TrialStatus::Failed => trial.error.clone().unwrap_or_default(),
                TrialStatus::Pruned => trial.pruned_reason.clone().unwrap_or_default(),
                TrialStatus::Running => running
                    .iter()
                    .find(|t| t.id == trial.id)
                    .filter(|t| is_stale(&t.worker, t.heartbeat_at.as_deref(), lease))
                    .map(|t| {
                        format!(
                            "stale: worker {}, last heartbeat {} (resubmit to resume)",
                            t.worker,
                            t.heartbeat_at.as_deref().unwrap_or("never")
                        )
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            row = Some((
                trial.status,
                TaskRow {
                    task,
                    status: trial.status.to_string(),
                    trial: trial.config_hash[..12.min(trial.config_hash.len())].to_string(),
                    epochs: epochs.to_string(),
                    test_accuracy: accuracy,
                    note,
                },
            ));
        }
    }
    row.with_context(|| format!("{}: no trial recorded yet", file.display()))
}
