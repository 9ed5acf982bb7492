//! `lab submit SPEC --slurm`: one Slurm array task per trial, submitted with
//! sbatch; returns as soon as Slurm has the job.

use super::args::DeviceParser;
use super::out;
use super::spec_args::SpecArgs;
use crate::runner::slurm::{self, ArrayInfo, ArrayJob};
use crate::runner::{self, RunOptions};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

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
    if let Some(time) = &args.time {
        slurm::check_time(time)?;
    }
    for (flag, value) in [("--partition", &args.partition), ("--gres", &args.gres)] {
        if let Some(v) = value {
            slurm::check_word(flag, v)?;
        }
    }
    if let Some(device) = &args.device {
        slurm::check_word("--device", device)?;
    }
    let loaded = args.spec.load()?;
    let mut opts = RunOptions::new(db.to_path_buf());
    opts.max_trials = args.max_trials;
    // The same refusals as `lab run`, before anything is queued on the cluster.
    let tasks = runner::check(&loaded, &opts)?;
    let name = loaded.spec.experiment.name.clone();
    let shards = args
        .shards
        .clone()
        .unwrap_or_else(|| opts.root().join("shards").join(&name));
    let shards = std::path::absolute(&shards)
        .with_context(|| format!("cannot resolve {}", shards.display()))?;
    let spec_path = args
        .spec
        .spec
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.spec.spec.display()))?;
    let lab = std::env::current_exe().context("cannot find the lab binary")?;
    let mut run_args = vec![spec_path.display().to_string()];
    run_args.extend(args.spec.set_flags());
    if let Some(device) = &args.device {
        run_args.extend(["--device".to_string(), device.clone()]);
    }
    let job = ArrayJob {
        name: format!("lab-{name}"),
        tasks,
        max_parallel: args.max_parallel.map(|n| n as usize),
        partition: args.partition.clone(),
        gres: args.gres.clone(),
        time: args.time.clone(),
        cpus_per_task: args.cpus_per_task.map(|n| n as usize),
        shards: shards.clone(),
        lab,
        run_args,
    };
    let script = slurm::script(&job);
    if args.dry_run {
        out::text(&script)?;
        return Ok(super::exit::OK);
    }
    let sbatch = find_sbatch()?;
    std::fs::create_dir_all(shards.join("logs"))
        .with_context(|| format!("cannot create {}", shards.join("logs").display()))?;
    let script_path = shards.join(format!("{name}.sbatch"));
    std::fs::write(&script_path, &script)
        .with_context(|| format!("cannot write {}", script_path.display()))?;
    let out = Command::new(&sbatch)
        .arg("--parsable")
        .arg(&script_path)
        .output()
        .with_context(|| format!("cannot run {}", sbatch.display()))?;
    if !out.status.success() {
        bail!(
            "sbatch refused {}: {}",
            script_path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // --parsable prints `jobid` or `jobid;cluster`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job_id = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let info = ArrayInfo {
        job_id: job_id.clone(),
        experiment: name,
        tasks,
        spec: spec_path.display().to_string(),
        submitted_at: crate::store::now(),
    };
    let info_path = shards.join(slurm::ARRAY_INFO);
    std::fs::write(&info_path, serde_json::to_string_pretty(&info)?)
        .with_context(|| format!("cannot write {}", info_path.display()))?;
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
    Ok(super::exit::OK)
}

/// sbatch from PATH, or a clear refusal.
fn find_sbatch() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("sbatch"))
        .find(|p| p.is_file())
        .context(
            "sbatch was not found on PATH: `lab submit --slurm` needs Slurm's client tools \
             (run it where you submit jobs, e.g. a login node); `--dry-run` prints the script",
        )
}
