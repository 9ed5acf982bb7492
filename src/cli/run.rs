use super::progress::Progress;
use crate::report::{self, Format, LeaderboardOptions};
use crate::runner::{self, RunOptions};
use crate::spec;
use crate::store::Store;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The experiment spec (TOML).
    spec: PathBuf,
    /// Override a spec value, e.g. `--set train.lr=0.01` or `--set "sweep.model.hidden=[64,128]"`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// cpu, cuda, cuda:N or auto (overrides train.device).
    #[arg(long)]
    device: Option<String>,
    /// Print the expanded trials and exit without training.
    #[arg(long)]
    dry_run: bool,
    /// Refuse a grid of more trials than this.
    #[arg(long, default_value_t = runner::DEFAULT_MAX_TRIALS)]
    max_trials: usize,
    /// Run the grid's failed trials again.
    #[arg(long)]
    retry_failed: bool,
    /// Seconds without a heartbeat after which another worker's running trial is
    /// taken to be abandoned and run again.
    #[arg(long, default_value_t = runner::DEFAULT_LEASE.as_secs())]
    lease_secs: u64,
    /// Format of the leaderboard printed at the end.
    #[arg(long, default_value = "table")]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let loaded = spec::load(&args.spec, &args.set)?;
    if let Some(device) = &args.device {
        runner::device::select(device)?;
    }
    if args.dry_run {
        let trials = runner::plan(&loaded)?;
        println!("{}: {} trials", loaded.spec.experiment.name, trials.len());
        for (i, (hash, label)) in trials.iter().enumerate() {
            println!("{:>4}  {}  {}", i + 1, &hash[..12], label);
        }
        return Ok(0);
    }
    let mut opts = RunOptions::new(db.to_path_buf());
    opts.device = args.device;
    opts.max_trials = args.max_trials;
    opts.retry_failed = args.retry_failed;
    opts.lease = std::time::Duration::from_secs(args.lease_secs.max(1));
    let mut progress = Progress::new();
    let summary = runner::run(&loaded, &opts, &mut |event| progress.on_event(event))?;
    progress.finish();

    let store = Store::open(db)?;
    if let Some(experiment) = store.experiment_by_name(&loaded.spec.experiment.name)? {
        let board = report::leaderboard(&store, &experiment, &LeaderboardOptions::default())?;
        println!("{}", report::render(&board, args.format));
    }
    eprintln!(
        "{} trials: {} done before, {} run now, {} failed",
        summary.total, summary.already_done, summary.ran, summary.failed
    );
    Ok(if summary.failed > 0 { 2 } else { 0 })
}
