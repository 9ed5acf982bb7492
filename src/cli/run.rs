//! `lab run SPEC`: expand a spec's grid and train the trials not yet done.

use super::args::DeviceParser;
use super::out;
use super::progress::Progress;
use super::spec_args::SpecArgs;
use crate::report::{self, Format, LeaderboardOptions};
use crate::runner::race::{self, RaceOptions};
use crate::runner::{self, RunOptions, RunSummary};
use crate::spec;
use crate::store::{Store, TrialStatus};
use std::ffi::OsString;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    spec: SpecArgs,
    /// cpu, cuda, cuda:N or auto (overrides train.device).
    #[arg(long, value_parser = DeviceParser)]
    device: Option<String>,
    /// Print the expanded trials (in --format) and exit without training.
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
    /// Train N trials at once, in N processes sharing the store, the CPU
    /// threads (RAYON_NUM_THREADS, else the cores) divided among them.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    jobs: u64,
    /// Run only the grid's trial with this index (0-based, as `--dry-run` lists
    /// them): what each task of a Slurm array does.
    #[arg(long, value_name = "I")]
    trial_index: Option<usize>,
    /// Race seeds: after the spec's seeds, round by round one more seed for each
    /// configuration the paired test cannot yet tell from the best (and for the
    /// best), until each is told apart or has --max-seeds seeds.
    #[arg(long, conflicts_with = "trial_index")]
    race: bool,
    /// With --race: the most seeds a configuration gets, the spec's included (at
    /// least as many as experiment.seeds lists) [default: 8].
    #[arg(long, value_name = "N", requires = "race", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    max_seeds: Option<u64>,
    /// Metric the leaderboard ranks by, and --race decides by (as `lab compare
    /// --metric`); `valid.macro_f1` keeps the test rows out of the race.
    #[arg(long, default_value = "macro_f1")]
    metric: String,
    /// Format of the leaderboard printed at the end (and of --dry-run's list).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let loaded = args.spec.load_limited(args.max_trials)?;
    if let Some(device) = &args.device {
        runner::device::select(device)?;
    }
    let racing = args.race.then(|| RaceOptions {
        max_seeds: args
            .max_seeds
            .map_or(race::DEFAULT_MAX_SEEDS, |n| n as usize),
        metric: args.metric.clone(),
    });
    let mut opts = RunOptions::new(db.to_path_buf());
    opts.device = args.device.clone();
    opts.max_trials = args.max_trials;
    opts.retry_failed = args.retry_failed;
    opts.lease = std::time::Duration::from_secs(args.lease_secs.max(1));
    opts.trial_index = args.trial_index;
    if let Some(racing) = &racing {
        race::check(&loaded, &opts, racing)?;
    }
    if args.dry_run {
        if let Some(racing) = &racing {
            tracing::info!(
                "--race: these trials are round 0; later rounds add seeds (up to {} per configuration) as results come in",
                racing.max_seeds
            );
        }
        return dry_run(&loaded, args.format);
    }
    // Before the grid is recorded or a job started: a stop signal from here on
    // is handled, never a silent death.
    super::stop_on_signals()?;
    if args.jobs > 1 {
        if args.trial_index.is_some() {
            anyhow::bail!(
                "--jobs runs a grid's trials in parallel; --trial-index runs one: pass one of them"
            );
        }
        return run_jobs(&args, &loaded, &opts, db);
    }
    let mut progress = Progress::new();
    let result = match &racing {
        None => runner::run(&loaded, &opts, &mut |event| progress.on_event(event)),
        Some(racing) => run_race(&loaded, &opts, racing, &mut progress),
    };
    progress.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(err) => return super::stopped(err, &args.again(db)),
    };
    let code = if summary.failed > 0 {
        super::exit::TRIAL_FAILED
    } else {
        super::exit::OK
    };
    out::set_outcome(code);

    let store = Store::open(db)?;
    if let Some(experiment) = store.experiment_by_name(&loaded.spec.experiment.name)? {
        let boards = report::leaderboards(&store, &experiment, &args.board_options())?;
        out::line(report::render_boards(&boards, args.format))?;
    }
    // "done before" counts the pruned too: finished, never run again.
    let pruned = if summary.pruned > 0 {
        format!(", {} pruned", summary.pruned)
    } else {
        String::new()
    };
    tracing::info!(
        "{} trials: {} done before, {} run now, {} failed{pruned}",
        summary.total,
        summary.already_done,
        summary.ran,
        summary.failed
    );
    Ok(code)
}

/// `--race` in this process: the grid, then the rounds, each round's line and
/// warnings through the log (above the progress bars).
fn run_race(
    loaded: &spec::LoadedSpec,
    opts: &RunOptions,
    racing: &RaceOptions,
    progress: &mut Progress,
) -> anyhow::Result<RunSummary> {
    let summary = race::race(
        loaded,
        opts,
        racing,
        &mut |event| progress.on_event(event),
        &mut |round| {
            tracing::info!("{round}");
            for label in &round.too_few {
                tracing::warn!(
                    "warning: racing stops for {label}: no paired test against the best on `{}` (no per-example predictions, or too few rows)",
                    racing.metric
                );
            }
        },
    )?;
    tracing::info!(
        "race: {} rounds, {} trials added (at most {} seeds per configuration)",
        summary.rounds,
        summary.added,
        racing.max_seeds
    );
    Ok(summary.run)
}

impl Args {
    /// The command that resumes this run: `lab run SPEC` with its `--set` flags.
    fn again(&self, db: &Path) -> String {
        let mut words = vec!["lab".to_string()];
        // Another store than the default is named, or the resume would miss it.
        if db != Path::new("runs/lab.db") {
            words.extend(["--db".to_string(), quote(&db.to_string_lossy())]);
        }
        words.extend(["run".into(), quote(&self.spec.spec.to_string_lossy())]);
        words.extend(self.spec.set_flags().iter().map(|w| quote(w)));
        words.extend(self.race_flags().iter().map(|w| quote(w)));
        words.join(" ")
    }

    /// `--race`, `--max-seeds` and `--metric` as given (none without `--race`):
    /// what a resumed run or a `--jobs` child needs to race the same way.
    fn race_flags(&self) -> Vec<String> {
        if !self.race {
            return Vec::new();
        }
        let mut flags = vec!["--race".to_string()];
        if let Some(n) = self.max_seeds {
            flags.extend(["--max-seeds".into(), n.to_string()]);
        }
        flags.extend(["--metric".into(), self.metric.clone()]);
        flags
    }

    /// The leaderboard printed at the end: ranked by `--metric`.
    fn board_options(&self) -> LeaderboardOptions {
        LeaderboardOptions {
            metric: self.metric.clone(),
            ..Default::default()
        }
    }
}

/// `word` as a shell reads it back: as it is when plain, else in single quotes.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `--dry-run`: the grid's trials with their index (what `--trial-index` takes),
/// hash prefix and swept values; a plain list for `table`, else a grid.
fn dry_run(loaded: &spec::LoadedSpec, format: Format) -> anyhow::Result<i32> {
    let trials = runner::plan(loaded)?;
    let name = &loaded.spec.experiment.name;
    let title = match &loaded.spec.search {
        Some(s) if s.strategy == spec::Strategy::Tpe => format!(
            "{name}: the random start of a TPE search of {} configurations: {} trials; TPE proposes the rest from their results",
            s.trials.unwrap_or(0),
            trials.len()
        ),
        Some(s) => format!("{name}: {} trials ({} search)", trials.len(), s.strategy.name()),
        None => format!("{name}: {} trials", trials.len()),
    };
    if format != Format::Table {
        tracing::info!("{title}");
        let header = ["index", "trial", "swept values"].map(String::from);
        let rows: Vec<Vec<String>> = trials
            .iter()
            .enumerate()
            .map(|(i, (hash, label))| vec![i.to_string(), hash[..12].to_string(), label.clone()])
            .collect();
        out::line(report::render_rows(&header, &rows, format))?;
        return Ok(super::exit::OK);
    }
    let mut text = format!("{title}\nindex  trial         swept values");
    for (i, (hash, label)) in trials.iter().enumerate() {
        text.push_str(&format!("\n{i:>5}  {}  {}", &hash[..12], label));
    }
    out::line(text)?;
    Ok(super::exit::OK)
}

/// `--jobs N`: record the grid once (bad input is refused here, once), then N
/// `lab run` processes share it through the store's atomic claims.
fn run_jobs(
    args: &Args,
    loaded: &spec::LoadedSpec,
    opts: &RunOptions,
    db: &Path,
) -> anyhow::Result<i32> {
    let before = runner::prepare(loaded, opts)?;
    let mut child: Vec<OsString> = super::log::child_flags();
    child.extend::<[OsString; 4]>([
        "--db".into(),
        db.into(),
        "run".into(),
        args.spec.spec.clone().into(),
    ]);
    child.extend(args.spec.set_flags().into_iter().map(OsString::from));
    child.extend(args.race_flags().into_iter().map(OsString::from));
    if let Some(device) = &args.device {
        child.extend(["--device".into(), device.into()]);
    }
    child.extend([
        "--max-trials".into(),
        args.max_trials.to_string().into(),
        "--lease-secs".into(),
        args.lease_secs.to_string().into(),
    ]);
    let jobs = args.jobs as usize;
    // A signal while the grid was recorded: start no job.
    let code = match crate::interrupt::requested() {
        Some(_) => super::exit::INTERRUPTED,
        None => super::jobs::spawn(jobs, runner::device::cpu_threads(), &child)?,
    };
    if let Some(signal) = crate::interrupt::requested() {
        // The jobs stopped and said so; the leaderboard would be partial.
        let stop = crate::interrupt::Interrupted { signal };
        return super::stopped(stop.into(), &args.again(db));
    }
    out::set_outcome(code);

    let store = Store::open(db)?;
    let grid: std::collections::HashSet<String> = runner::plan(loaded)?
        .into_iter()
        .map(|(hash, _)| hash)
        .collect();
    // A TPE search's trials are proposed as it goes: all of them count.
    let search = loaded.spec.search.is_some();
    let trials: Vec<_> = store
        .trials(before.experiment_id)?
        .into_iter()
        .filter(|t| search || grid.contains(&t.config_hash))
        .collect();
    let count = |status| trials.iter().filter(|t| t.status == status).count();
    if let Some(experiment) = store.experiment(before.experiment_id)? {
        let boards = report::leaderboards(&store, &experiment, &args.board_options())?;
        out::line(report::render_boards(&boards, args.format))?;
    }
    tracing::info!(
        "{} trials: {} done before, {} done now, {} failed{} ({jobs} jobs)",
        before.total,
        before.already_done,
        (count(TrialStatus::Done) + count(TrialStatus::Pruned)).saturating_sub(before.already_done),
        count(TrialStatus::Failed),
        match count(TrialStatus::Pruned) {
            0 => String::new(),
            n => format!(", {n} pruned"),
        }
    );
    Ok(code)
}
