//! `lab queue add|list|cancel`: trials stored as pending for `lab worker`.

use super::out;
use super::spec_args::SpecArgs;
use crate::report::{self, Format};
use crate::runner::{self, RunOptions};
use crate::store::Store;
use serde_json::json;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(clap::Subcommand)]
enum QueueCommand {
    /// Check a spec and its data, record its trials and queue them without running.
    Add(AddArgs),
    /// The queue in the order workers take it.
    List(ListArgs),
    /// Cancel queued trials: pending ones are never claimed; running ones finish.
    Cancel(CancelArgs),
}

#[derive(clap::Args)]
struct AddArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Higher runs first; equal priorities run in the order they were queued.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i64,
    /// Refuse a grid of more trials than this.
    #[arg(long, default_value_t = runner::DEFAULT_MAX_TRIALS)]
    max_trials: usize,
    /// Queue the grid's failed trials again.
    #[arg(long)]
    retry_failed: bool,
}

#[derive(clap::Args)]
struct ListArgs {
    /// Also list finished (done, failed, pruned) trials.
    #[arg(long)]
    all: bool,
    /// How to print the queue.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true))]
struct CancelArgs {
    /// Trial ids (as `lab queue list` shows them).
    #[arg(group = "what")]
    trials: Vec<i64>,
    /// Every queued trial of this experiment.
    #[arg(short = 'e', long, value_name = "EXPERIMENT", group = "what")]
    experiment: Option<String>,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    match args.command {
        QueueCommand::Add(a) => add(a, db),
        QueueCommand::List(a) => list(a, db),
        QueueCommand::Cancel(a) => cancel(a, db),
    }
}

fn add(args: AddArgs, db: &Path) -> anyhow::Result<i32> {
    let loaded = args.spec.load_limited(args.max_trials)?;
    let mut opts = RunOptions::new(db.to_path_buf());
    opts.max_trials = args.max_trials;
    opts.retry_failed = args.retry_failed;
    let summary = runner::queue::enqueue(&loaded, &opts, args.priority)?;
    out::line(format_args!(
        "{}: {} trials, {} already done, {} pending in the queue (priority {})",
        loaded.spec.experiment.name,
        summary.total,
        summary.already_done,
        summary.pending,
        args.priority
    ))?;
    Ok(super::exit::OK)
}

fn list(args: ListArgs, db: &Path) -> anyhow::Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    let entries = store.queue(args.all)?;
    if args.format == Format::Json {
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "trial": e.trial_id, "experiment": e.experiment, "label": e.label,
                    "priority": e.priority, "state": e.state, "worker": e.worker,
                    "device": e.device, "queued_at": e.enqueued_at,
                })
            })
            .collect();
        out::line(serde_json::to_string_pretty(&rows)?)?;
        return Ok(super::exit::OK);
    }
    if entries.is_empty() && matches!(args.format, Format::Table | Format::Markdown) {
        out::line("the queue is empty")?;
        return Ok(super::exit::OK);
    }
    let header: Vec<String> = [
        "trial",
        "experiment",
        "trial label",
        "priority",
        "state",
        "worker",
        "device",
        "queued at",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = entries
        .into_iter()
        .map(|e| {
            vec![
                e.trial_id.to_string(),
                e.experiment,
                e.label,
                e.priority.to_string(),
                e.state,
                e.worker.unwrap_or_default(),
                e.device.unwrap_or_default(),
                e.enqueued_at,
            ]
        })
        .collect();
    out::line(report::render_rows(&header, &rows, args.format))?;
    Ok(super::exit::OK)
}

fn cancel(args: CancelArgs, db: &Path) -> anyhow::Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    let mut ids = args.trials;
    if let Some(name) = &args.experiment {
        let experiment = store.require_experiment(name)?;
        ids.extend(store.queued_trials_of(experiment.id)?);
    }
    let done = store.cancel(&ids)?;
    out::line(format_args!(
        "cancelled {} pending trials; {} running (left to finish, not run again if their worker dies); \
         {} already finished or cancelled",
        done.cancelled.len(),
        done.running.len(),
        done.unchanged.len()
    ))?;
    Ok(super::exit::OK)
}
