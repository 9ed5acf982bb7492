//! `lab submit SPEC --slurm`: one Slurm array task per trial, submitted with
//! sbatch; returns as soon as Slurm has the job.

use super::args::DeviceParser;
use super::out;
use super::spec_args::SpecArgs;
use crate::runner;
use crate::runner::slurm::{self, SubmitOptions, Submitted};
use anyhow::bail;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    spec: SpecArgs,
    /// Submit to Slurm as a job array (the only scheduler lab submits to).
    #[arg(long)]
    slurm: bool,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Generic resources per task, e.g. gpu:1.
    #[arg(long)]
    gres: Option<String>,
    /// Time limit per task, HH:MM:SS or D-HH:MM:SS.
    #[arg(long)]
    time: Option<String>,
    /// At most N tasks at once (the array's %N).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_parallel: Option<u64>,
    /// CPUs per task; the task's compute threads follow.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    cpus_per_task: Option<u64>,
    /// Device for every trial (e.g. cuda:0 with --gres gpu:1: Slurm shows each
    /// task its own GPU as number 0).
    #[arg(long, value_parser = DeviceParser)]
    device: Option<String>,
    /// Shared directory for the shards and logs [default: <db dir>/shards/<experiment>].
    #[arg(long, value_name = "DIR")]
    shards: Option<PathBuf>,
    /// Refuse a grid of more trials than this.
    #[arg(long, default_value_t = runner::DEFAULT_MAX_TRIALS)]
    max_trials: usize,
    /// Print the sbatch script and submit nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    if !args.slurm {
        bail!("lab submit needs a scheduler: pass --slurm (the only one lab submits to)");
    }
    let opts = SubmitOptions {
        db: db.to_path_buf(),
        spec: args.spec.spec.clone(),
        overrides: args.spec.set.clone(),
        partition: args.partition,
        gres: args.gres,
        time: args.time,
        max_parallel: args.max_parallel.map(|n| n as usize),
        cpus_per_task: args.cpus_per_task.map(|n| n as usize),
        device: args.device,
        shards: args.shards,
        max_trials: args.max_trials,
        dry_run: args.dry_run,
    };
    tpe_note(&opts)?;
    match slurm::submit(&opts)? {
        Submitted::DryRun { script } => out::text(&script)?,
        Submitted::Array {
            job_id,
            tasks,
            script_path,
            shards,
        } => {
            out::line(&job_id)?;
            tracing::info!(
                "submitted job array {job_id}: {tasks} tasks, script {}\n\
                 progress: lab status --shards {}\n\
                 results:  lab merge {} --into {}",
                script_path.display(),
                shards.display(),
                shards.display(),
                db.display()
            );
        }
    }
    Ok(super::exit::OK)
}

/// A TPE search's array holds only its random start: say so, and how the
/// rest runs (docs/search.md, "Proposals are a function of the store").
fn tpe_note(opts: &SubmitOptions) -> anyhow::Result<()> {
    let loaded = crate::spec::load_limited(&opts.spec, &opts.overrides, opts.max_trials)?;
    if let Some(search) = loaded
        .spec
        .search
        .as_ref()
        .filter(|s| s.strategy == crate::spec::Strategy::Tpe)
    {
        tracing::warn!(
            "a TPE search proposes from results: this array runs its random start only (the first configurations of {}); \
             after `lab merge`, run `lab run {}` on the merged store to propose the rest",
            search.trials.unwrap_or(0),
            opts.spec.display()
        );
    }
    Ok(())
}
