//! Command-line interface: one file per subcommand; each parses its arguments,
//! calls the library and prints.

mod compare;
mod export;
mod jobs;
mod merge;
mod plot;
mod predict;
mod prepare;
mod progress;
mod queue;
mod report;
mod run;
mod serve;
mod show;
mod spec_args;
mod status;
mod submit;
mod worker;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "Declarative LSTM/GRU/BiLSTM text-classification experiments"
)]
struct Cli {
    /// The SQLite store; artifacts and the dataset cache go beside it.
    #[arg(long, global = true, default_value = "runs/lab.db")]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Expand a spec's grid and train every trial not yet done.
    Run(run::Args),
    /// Leaderboard of an experiment (or of every experiment).
    Compare(compare::Args),
    /// One trial: config, epochs, test metrics, confusion matrix.
    Show(show::Args),
    /// Classify texts with a trained trial.
    Predict(predict::Args),
    /// Clean, split and encode a spec's datasets into the cache; prints rows per second.
    Prepare(prepare::Args),
    /// Trial counts by status, and running trials whose worker is gone.
    Status(status::Args),
    /// Serve a trained model over HTTP: JSON and CSV API and a web page.
    Serve(serve::Args),
    /// Copy a trained trial into a directory usable without the database.
    Export(export::Args),
    /// Write a self-contained HTML report with charts.
    Report(report::Args),
    /// Write one chart of a trial as SVG.
    Plot(plot::Args),
    /// Queue a spec's trials for workers; list or cancel queued trials.
    Queue(queue::Args),
    /// Claim queued trials (any experiment) and run them.
    Worker(worker::Args),
    /// Submit a spec's grid to Slurm as a job array, one task per trial.
    Submit(submit::Args),
    /// Fold shard databases into one store (idempotent).
    Merge(merge::Args),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::execute(args, &cli.db),
        Command::Compare(args) => compare::execute(args, &cli.db),
        Command::Show(args) => show::execute(args, &cli.db),
        Command::Predict(args) => predict::execute(args, &cli.db),
        Command::Prepare(args) => prepare::execute(args, &cli.db),
        Command::Status(args) => status::execute(args, &cli.db),
        Command::Serve(args) => serve::execute(args, &cli.db),
        Command::Export(args) => export::execute(args, &cli.db),
        Command::Report(args) => report::execute(args, &cli.db),
        Command::Plot(args) => plot::execute(args, &cli.db),
        Command::Queue(args) => queue::execute(args, &cli.db),
        Command::Worker(args) => worker::execute(args, &cli.db),
        Command::Submit(args) => submit::execute(args, &cli.db),
        Command::Merge(args) => merge::execute(args, &cli.db),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

/// Refuse to create a database just to report that it is empty.
fn require_db(db: &std::path::Path) -> anyhow::Result<()> {
    if !db.exists() {
        anyhow::bail!(
            "no results database at {} (run `lab run SPEC` first, or pass --db PATH)",
            db.display()
        );
    }
    Ok(())
}
