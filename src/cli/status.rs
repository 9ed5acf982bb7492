//! `lab status [EXPERIMENT]`: trial counts and stale trials; `--shards DIR`: a
//! Slurm array's progress.

use super::args::Experiment;
use super::out;
use crate::report::{self, Format};
use crate::runner::slurm::{self, ArrayInfo};
use crate::runner::{self, DEFAULT_LEASE};
use crate::store::{Store, TrialLease, TrialStatus};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    experiment: Experiment,
    /// Seconds without a heartbeat after which a running trial counts as stale.
    #[arg(long, default_value_t = DEFAULT_LEASE.as_secs())]
    lease_secs: u64,
    /// Progress of a Slurm array from its shard directory (`lab submit --shards`).
    #[arg(long, value_name = "DIR")]
    shards: Option<std::path::PathBuf>,
    /// How to print the counts (or the per-task table, with --shards).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let lease = Duration::from_secs(args.lease_secs.max(1));
    if let Some(dir) = &args.shards {
        return shards(dir, lease, args.format);
    }
    super::require_db(db)?;
    let store = Store::open(db)?;
    let experiments = match args.experiment.name() {
        Some(name) => vec![store.require_experiment(name)?],
        None => store.experiments()?,
    };
    let mut counts = Vec::new();
    for experiment in &experiments {
        let c = store.status_counts(experiment.id)?;
        let mut stale = 0;
        for running in store.running(experiment.id)? {
            let TrialLease {
                id,
                worker,
                heartbeat_at: beat,
            } = running;
            if runner::is_stale(&worker, beat.as_deref(), lease) {
                stale += 1;
                tracing::warn!(
                    "stale: {} trial {id}, worker {worker}, last heartbeat {} \
                     (`lab run SPEC` runs it again)",
                    experiment.name,
                    beat.as_deref().unwrap_or("never")
                );
            }
        }
        counts.push((
            experiment.name.as_str(),
            [c.pending, c.running, c.done, c.failed, stale],
        ));
    }
    out::line(render_counts(&counts, args.format))?;
    Ok(super::exit::OK)
}

/// Per experiment: pending, running, done, failed and stale trials. JSON has
/// numbers; the other formats a grid.
fn render_counts(counts: &[(&str, [usize; 5])], format: Format) -> String {
    const NAMES: [&str; 5] = ["pending", "running", "done", "failed", "stale"];
    if format == Format::Json {
        let rows: Vec<serde_json::Value> = counts
            .iter()
            .map(|(name, n)| {
                let mut row = serde_json::Map::new();
                row.insert("experiment".into(), (*name).into());
                for (key, value) in NAMES.iter().zip(n) {
                    row.insert((*key).into(), (*value).into());
                }
                serde_json::Value::Object(row)
            })
            .collect();
        return serde_json::to_string_pretty(&rows).unwrap_or_default();
    }
    let header: Vec<String> = std::iter::once("experiment")
        .chain(NAMES)
        .map(String::from)
        .collect();
    let rows: Vec<Vec<String>> = counts
        .iter()
        .map(|(name, n)| {
            std::iter::once(name.to_string())
                .chain(n.iter().map(usize::to_string))
                .collect()
        })
        .collect();
    report::render_rows(&header, &rows, format)
}

/// One line per array task, read from its shard (read-only), and the counts.
fn shards(dir: &Path, lease: Duration, format: Format) -> anyhow::Result<i32> {
    let info: Option<ArrayInfo> = match std::fs::read_to_string(dir.join(slurm::ARRAY_INFO)) {
        Ok(text) => Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not lab's array description",
                dir.join(slurm::ARRAY_INFO).display()
            )
        })?),
        Err(_) => None,
    };
    let found = slurm::find_shards(dir)?;
    let tasks = info
        .as_ref()
        .map(|i| i.tasks)
        .unwrap_or_else(|| found.last().map_or(0, |(t, _)| t + 1));
    let mut counts = [0usize; 5]; // pending, running, done, failed, not started
    let mut rows = Vec::new();
    for task in 0..tasks {
        let Some((_, file)) = found.iter().find(|(t, _)| *t == task) else {
            counts[4] += 1;
            rows.push(vec![
                task.to_string(),
                "not started".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        };
        let row = match task_row(file, lease) {
            Ok((status, row)) => {
                counts[status] += 1;
                row
            }
            // A shard being created or written elsewhere: say so, keep going.
            Err(err) => vec![
                String::new(),
                "unreadable".into(),
                String::new(),
                String::new(),
                String::new(),
                format!("{err:#}"),
            ],
        };
        rows.push([vec![task.to_string()], row[1..].to_vec()].concat());
    }
    let header: Vec<String> = ["task", "status", "trial", "epochs", "test accuracy", "note"]
        .map(String::from)
        .to_vec();
    out::line(report::render_rows(&header, &rows, format))?;
    let title = match &info {
        Some(i) => format!("array {} ({})", i.job_id, i.experiment),
        None => dir.display().to_string(),
    };
    tracing::info!(
        "{title}: {tasks} tasks: {} done, {} running, {} failed, {} pending, {} not started",
        counts[2],
        counts[1],
        counts[3],
        counts[0],
        counts[4]
    );
    Ok(super::exit::OK)
}

/// A shard's (status index, table row): its trial (normally one), epochs so far,
/// test accuracy, and the error or stale worker.
fn task_row(file: &Path, lease: Duration) -> anyhow::Result<(usize, Vec<String>)> {
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
                TrialStatus::Running => running
                    .iter()
                    .find(|t| t.id == trial.id)
                    .filter(|t| runner::is_stale(&t.worker, t.heartbeat_at.as_deref(), lease))
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
            let index = match trial.status {
                TrialStatus::Pending => 0,
                TrialStatus::Running => 1,
                TrialStatus::Done => 2,
                TrialStatus::Failed => 3,
            };
            row = Some((
                index,
                vec![
                    String::new(),
                    trial.status.to_string(),
                    trial.config_hash[..12.min(trial.config_hash.len())].to_string(),
                    epochs.to_string(),
                    accuracy,
                    note,
                ],
            ));
        }
    }
    row.with_context(|| format!("{}: no trial recorded yet", file.display()))
}
