//! `lab submit --slurm`: check the spec as `lab run` would, write the array's
//! sbatch script into the shard directory and hand it to sbatch, which returns
//! as soon as Slurm has the job.

use super::{check_time, check_word, script, ArrayInfo, ArrayJob, ARRAY_INFO};
use crate::runner::{self, RunOptions};
use crate::spec;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `lab submit` was asked: the spec and the array's Slurm settings.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// The store the shards are merged into later; the default shard directory
    /// is beside it.
    pub db: PathBuf,
    /// The spec file, as given.
    pub spec: PathBuf,
    /// `--set KEY=VALUE` overrides, applied here and passed on to every task.
    pub overrides: Vec<String>,
    /// Slurm partition.
    pub partition: Option<String>,
    /// Generic resources per task, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// Time limit per task: `HH:MM:SS` or `D-HH:MM:SS`.
    pub time: Option<String>,
    /// At most this many tasks at once (the array's `%N`).
    pub max_parallel: Option<usize>,
    /// CPUs per task.
    pub cpus_per_task: Option<usize>,
    /// Device for every trial, passed to `lab run --device`.
    pub device: Option<String>,
    /// Shard directory; `None`: `<db dir>/shards/<experiment>`.
    pub shards: Option<PathBuf>,
    /// Refuse a grid of more trials than this.
    pub max_trials: usize,
    /// Write nothing and submit nothing: only build the script.
    pub dry_run: bool,
}

/// What `submit` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// `dry_run`: the sbatch script, not submitted.
    DryRun {
        /// The sbatch script's text.
        script: String,
    },
    /// The job array Slurm accepted.
    Array {
        /// Slurm's job id.
        job_id: String,
        /// Array tasks: one per trial.
        tasks: usize,
        /// The script written into the shard directory.
        script_path: PathBuf,
        /// The shard directory (absolute).
        shards: PathBuf,
    },
}

/// Check the options and the spec (the same refusals as `lab run`, before
/// anything is queued on the cluster), then submit the grid as a job array and
/// leave its [`ArrayInfo`] in the shard directory.
///
/// # Errors
/// A malformed option (naming the flag), a bad spec or data, sbatch missing
/// from PATH or refusing the script, a file that cannot be written.
pub fn submit(opts: &SubmitOptions) -> Result<Submitted> {
    if let Some(time) = &opts.time {
        check_time(time)?;
    }
    for (flag, value) in [("--partition", &opts.partition), ("--gres", &opts.gres)] {
        if let Some(v) = value {
            check_word(flag, v)?;
        }
    }
    if let Some(device) = &opts.device {
        check_word("--device", device)?;
    }
    let loaded = spec::load_limited(&opts.spec, &opts.overrides, opts.max_trials)?;
    let mut run_opts = RunOptions::new(opts.db.clone());
    run_opts.max_trials = opts.max_trials;
    let tasks = runner::check(&loaded, &run_opts)?;
    let name = loaded.spec.experiment.name.clone();
    let shards = opts
        .shards
        .clone()
        .unwrap_or_else(|| run_opts.root().join("shards").join(&name));
    let shards = std::path::absolute(&shards)
        .with_context(|| format!("cannot resolve {}", shards.display()))?;
    let spec_path = opts
        .spec
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", opts.spec.display()))?;
    let lab = std::env::current_exe().context("cannot find the lab binary")?;
    let mut run_args = vec![spec_path.display().to_string()];
    run_args.extend(
        opts.overrides
            .iter()
            .flat_map(|s| ["--set".to_string(), s.clone()]),
    );
    if let Some(device) = &opts.device {
        run_args.extend(["--device".to_string(), device.clone()]);
    }
    // Each task counts the grid again: it must allow what was submitted.
    if opts.max_trials != spec::DEFAULT_MAX_TRIALS {
        run_args.extend(["--max-trials".to_string(), opts.max_trials.to_string()]);
    }
    let job = ArrayJob {
        name: format!("lab-{name}"),
        tasks,
        max_parallel: opts.max_parallel,
        partition: opts.partition.clone(),
        gres: opts.gres.clone(),
        time: opts.time.clone(),
        cpus_per_task: opts.cpus_per_task,
        shards: shards.clone(),
        lab,
        run_args,
    };
    let script = script(&job);
    if opts.dry_run {
        return Ok(Submitted::DryRun { script });
    }
    let sbatch = find_sbatch()?;
    std::fs::create_dir_all(shards.join("logs"))
        .with_context(|| format!("cannot create {}", shards.join("logs").display()))?;
    let script_path = shards.join(format!("{name}.sbatch"));
    std::fs::write(&script_path, &script)
        .with_context(|| format!("cannot write {}", script_path.display()))?;
    let job_id = sbatch_submit(&sbatch, &script_path)?;
    let info = ArrayInfo {
        job_id: job_id.clone(),
        experiment: name,
        tasks,
        spec: spec_path.display().to_string(),
        submitted_at: crate::store::now(),
    };
    let info_path = shards.join(ARRAY_INFO);
    std::fs::write(&info_path, serde_json::to_string_pretty(&info)?)
        .with_context(|| format!("cannot write {}", info_path.display()))?;
    Ok(Submitted::Array {
        job_id,
        tasks,
        script_path,
        shards,
    })
}

/// Run `sbatch --parsable SCRIPT`; the job id it prints.
fn sbatch_submit(sbatch: &Path, script_path: &Path) -> Result<String> {
    let out = Command::new(sbatch)
        .arg("--parsable")
        .arg(script_path)
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
    Ok(stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// sbatch from PATH, or a clear refusal.
fn find_sbatch() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("sbatch"))
        .find(|p| p.is_file())
        .context(
            "sbatch was not found on PATH: `lab submit --slurm` needs Slurm's client tools \
             (run it where you submit jobs, e.g. a login node); `--dry-run` prints the script",
        )
}
