//! `lab status [EXPERIMENT]`: trial counts and stale trials; `--shards DIR`: a
//! Slurm array's progress.

use super::args::Experiment;
use super::out;
use crate::report::{self, Format};
use crate::runner::slurm::{self, TaskRow};
use crate::runner::{self, DEFAULT_LEASE};
use crate::store::{Store, TrialLease};
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
            [c.pending, c.running, c.done, c.failed, c.pruned, stale],
        ));
    }
    out::line(render_counts(&counts, args.format))?;
    Ok(super::exit::OK)
}

/// Per experiment: pending, running, done, failed, pruned and stale trials.
/// JSON has numbers; the other formats a grid.
fn render_counts(counts: &[(&str, [usize; 6])], format: Format) -> String {
    const NAMES: [&str; 6] = ["pending", "running", "done", "failed", "pruned", "stale"];
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
    let status = slurm::shard_status(dir, lease)?;
    let header: Vec<String> = TaskRow::HEADER.map(String::from).to_vec();
    let rows: Vec<Vec<String>> = status.rows.iter().map(TaskRow::cells).collect();
    out::line(report::render_rows(&header, &rows, format))?;
    tracing::info!("{}", status.summary(dir));
    Ok(super::exit::OK)
}
