use crate::report::{self, Format};
use crate::runner::slurm::{self, TaskRow};
use crate::runner::{self, DEFAULT_LEASE};
use crate::store::Store;
use std::path::Path;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Experiment name; all experiments when omitted.
    experiment: Option<String>,
    /// Seconds without a heartbeat after which a running trial counts as stale.
    #[arg(long, default_value_t = DEFAULT_LEASE.as_secs())]
    lease_secs: u64,
    /// Progress of a Slurm array from its shard directory (`lab submit --shards`).
    #[arg(long, value_name = "DIR")]
    shards: Option<std::path::PathBuf>,
    /// Format of the per-task table (with --shards).
    #[arg(long, default_value = "table")]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let lease = Duration::from_secs(args.lease_secs.max(1));
    if let Some(dir) = &args.shards {
        return shards(dir, lease, args.format);
    }
    super::require_db(db)?;
    let store = Store::open(db)?;
    let experiments = match &args.experiment {
        Some(name) => vec![store.require_experiment(name)?],
        None => store.experiments()?,
    };
    println!(
        "{:<24} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "experiment", "pending", "running", "done", "failed", "stale"
    );
    let mut stale_lines = Vec::new();
    for experiment in &experiments {
        let counts = store.status_counts(experiment.id)?;
        let mut stale = 0;
        for (id, worker, beat) in store.running(experiment.id)? {
            if runner::is_stale(&worker, beat.as_deref(), lease) {
                stale += 1;
                stale_lines.push(format!(
                    "stale: {} trial {id}, worker {worker}, last heartbeat {} \
                     (`lab run SPEC` runs it again)",
                    experiment.name,
                    beat.as_deref().unwrap_or("never")
                ));
            }
        }
        println!(
            "{:<24} {:>7} {:>7} {:>7} {:>7} {:>7}",
            experiment.name, counts.pending, counts.running, counts.done, counts.failed, stale
        );
    }
    for line in stale_lines {
        println!("{line}");
    }
    Ok(0)
}

/// One line per array task, read from its shard (read-only), and the counts.
fn shards(dir: &Path, lease: Duration, format: Format) -> anyhow::Result<i32> {
    let status = slurm::shard_status(dir, lease)?;
    let header: Vec<String> = TaskRow::HEADER.map(String::from).to_vec();
    let rows: Vec<Vec<String>> = status.rows.iter().map(TaskRow::cells).collect();
    println!("{}", report::render_rows(&header, &rows, format));
    eprintln!("{}", status.summary(dir));
    Ok(0)
}
