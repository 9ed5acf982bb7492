//! Command-line interface: one file per subcommand; each parses its arguments,
//! calls the library and prints. Results (tables, JSON, ids) go to stdout through
//! `out`, everything else to stderr through `tracing` (`log`).

mod args;
mod compare;
mod completions;
mod data;
mod diff;
mod export;
mod jobs;
mod log;
mod merge;
mod out;
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
mod ui;
mod worker;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// The exit codes of `lab`, as the top-level `--help` lists them.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Bad input: a spec, data file, database or argument value lab refused.
    pub const BAD_INPUT: i32 = 1;
    /// Usage: the command line does not parse (clap's code).
    pub const USAGE: i32 = 2;
    /// The command ran, but at least one trial failed.
    pub const TRIAL_FAILED: i32 = 3;
    /// Interrupted (Ctrl-C, SIGINT, or SIGTERM): 128 + 2, as shells report
    /// Ctrl-C. One code for both signals: either way the run stopped cleanly and
    /// the same command resumes it.
    pub const INTERRUPTED: i32 = 130;
}

const AFTER_HELP: &str = "\
Exit codes:
  0    ok
  1    bad input (a spec, data file, database or value lab refused)
  2    usage (the command line does not parse)
  3    a trial failed (the others ran; see `lab status`)
  130  interrupted (Ctrl-C, SIGINT or SIGTERM; run the command again to resume)

Environment:
  LAB_DB                 the store, as --db (the flag wins)
  LAB_<SECTION>__<KEY>   override a spec value, e.g. LAB_TRAIN__LR=0.01 (--set wins)
  LAB_KERNEL             `reference`: plain candle-op layers instead of the fused CPU kernels
  LAB_SQLITE_JOURNAL     `wal` (default) or `delete` (a store on a network file system)
  RAYON_NUM_THREADS      compute threads (default: the cores); --jobs divides them
  CANDLE_NUM_THREADS     candle's own pool; --jobs sets it with RAYON_NUM_THREADS
  RUST_LOG               log filter (e.g. lab=debug); wins over -q and -v

Results go to stdout (tables, JSON, ids); progress, warnings and notes to stderr,
each line timestamped when stderr is not a terminal.";

/// Where `--help` lists the flags every subcommand takes.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "Declarative LSTM/GRU/BiLSTM text-classification experiments",
    after_help = AFTER_HELP
)]
struct Cli {
    /// The SQLite store; artifacts and the dataset cache go beside it.
    #[arg(
        long,
        global = true,
        env = "LAB_DB",
        default_value = "runs/lab.db",
        help_heading = GLOBAL
    )]
    db: PathBuf,
    /// Print only warnings and errors on stderr.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = GLOBAL
    )]
    quiet: bool,
    /// Print debug lines on stderr (-vv: trace, and other crates' debug lines).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Expand a spec's grid and train every trial not yet done.
    #[command(after_help = "Examples:\n  lab run experiments/quick.toml\n  \
        lab run experiments/quick.toml --set train.lr=0.01 -j 2\n  \
        lab run experiments/quick.toml --dry-run\n\n\
        Exit codes: 0 ok, 1 bad input, 2 usage, 3 a trial failed, 130 interrupted \
        (SIGINT/SIGTERM; run it again to resume) (`lab --help` lists them with the environment variables).")]
    Run(run::Args),
    /// Leaderboard of an experiment (or of every experiment).
    #[command(after_help = "Examples:\n  lab compare quick --top 5\n  \
        lab compare -e quick --group-by model.cell --format markdown")]
    Compare(compare::Args),
    /// Two trials or configurations on the same test rows: metrics, the paired
    /// bootstrap of the difference, the contingency table, the rows they disagree on.
    #[command(after_help = "Examples:\n  lab diff 3 4\n  \
        lab diff -e quick model.cell=lstm model.cell=gru --metric accuracy --show 20\n  \
        lab diff 3 4 --format json")]
    Diff(diff::Args),
    /// One trial: config, epochs, test metrics, confusion matrix.
    #[command(after_help = "Examples:\n  lab show 3\n  lab show 3 --format json\n  \
        lab show 3 --attention 5")]
    Show(show::Args),
    /// Classify texts with a trained trial.
    #[command(
        after_help = "Examples:\n  lab predict 3 \"a wonderful film\" \"dull\"\n  \
        lab predict --model exported/ --input reviews.csv -o annotated.csv"
    )]
    Predict(predict::Args),
    /// Clean, split and encode a spec's datasets into the cache; prints rows per second.
    #[command(after_help = "Examples:\n  lab prepare experiments/quick.toml\n  \
        lab prepare experiments/quick.toml --rebuild --format json")]
    Prepare(prepare::Args),
    /// What lab reads from a spec's data: rows kept and skipped, classes per split,
    /// dialect, token lengths, vocabulary coverage, example rows.
    #[command(after_help = "Examples:\n  lab data experiments/quick.toml\n  \
        lab data experiments/quick.toml --show 10\n  \
        lab data experiments/quick.toml --format json")]
    Data(data::Args),
    /// Trial counts by status, and running trials whose worker is gone.
    #[command(
        after_help = "Examples:\n  lab status\n  lab status quick --format json\n  \
        lab status --shards runs/shards/quick"
    )]
    Status(status::Args),
    /// Serve a trained model over HTTP: JSON and CSV API and a web page.
    #[command(after_help = "Examples:\n  lab serve 3\n  \
        lab serve -e quick --metric accuracy --addr 0.0.0.0:8080 --token SECRET\n  \
        lab serve --model exported/")]
    Serve(serve::Args),
    /// A live web dashboard over the store: experiments, leaderboards, curves,
    /// trials, comparisons, tags and notes.
    #[command(after_help = "Examples:\n  lab ui\n  \
        lab ui --db runs/lab.db --addr 127.0.0.1:8081\n  \
        lab ui --shards runs/shards/quick --token SECRET")]
    Ui(ui::Args),
    /// Copy a trained trial into a directory usable without the database.
    #[command(after_help = "Example:\n  lab export 3 -o exported/")]
    Export(export::Args),
    /// Write a self-contained HTML report with charts.
    #[command(after_help = "Example:\n  lab report quick -o reports/")]
    Report(report::Args),
    /// Write one chart of a trial as SVG or PNG.
    #[command(after_help = "Example:\n  lab plot 3 --chart confusion -o confusion.png")]
    Plot(plot::Args),
    /// Queue a spec's trials for workers; list or cancel queued trials.
    #[command(
        after_help = "Examples:\n  lab queue add experiments/quick.toml --priority 5\n  \
        lab queue list --all --format csv\n  lab queue cancel -e quick"
    )]
    Queue(queue::Args),
    /// Claim queued trials (any experiment) and run them.
    #[command(after_help = "Examples:\n  lab worker -j 4\n  lab worker --device cuda:1 --follow")]
    Worker(worker::Args),
    /// Submit a spec's grid to Slurm as a job array, one task per trial.
    #[command(after_help = "Example:\n  lab submit experiments/quick.toml --slurm \
        --partition gpu --gres gpu:1 --time 01:00:00 --device cuda:0")]
    Submit(submit::Args),
    /// Fold shard databases into one store (idempotent).
    #[command(after_help = "Example:\n  lab merge runs/shards/quick --into runs/lab.db")]
    Merge(merge::Args),
    /// Print a shell completion script to stdout.
    #[command(
        after_help = "Example:\n  lab completions bash > ~/.local/share/bash-completion/completions/lab"
    )]
    Completions(completions::Args),
    /// Print the manual page (roff) to stdout.
    #[command(after_help = "Example:\n  lab man > lab.1 && man ./lab.1")]
    Man,
}

/// Runs the command line; returns the process exit code (see [`exit`]).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version are "errors" that exit 0; the rest are usage errors (2).
            let _ = err.print();
            return err.exit_code();
        }
    };
    log::init(cli.quiet, cli.verbose);
    let db = &cli.db;
    tracing::debug!(
        "lab {} with the store {}",
        env!("CARGO_PKG_VERSION"),
        db.display()
    );
    // Checked up front: a typo in LAB_KERNEL must not silently pick other layers.
    if let Err(err) = crate::model::Kernel::from_env() {
        let _ = writeln!(std::io::stderr(), "error: {err:#}");
        return exit::BAD_INPUT;
    }
    let result = match cli.command {
        Command::Run(args) => run::execute(args, db),
        Command::Compare(args) => compare::execute(args, db),
        Command::Diff(args) => diff::execute(args, db),
        Command::Show(args) => show::execute(args, db),
        Command::Predict(args) => predict::execute(args, db),
        Command::Prepare(args) => prepare::execute(args, db),
        Command::Data(args) => data::execute(args, db),
        Command::Status(args) => status::execute(args, db),
        Command::Serve(args) => serve::execute(args, db),
        Command::Ui(args) => ui::execute(args, db),
        Command::Export(args) => export::execute(args, db),
        Command::Report(args) => report::execute(args, db),
        Command::Plot(args) => plot::execute(args, db),
        Command::Queue(args) => queue::execute(args, db),
        Command::Worker(args) => worker::execute(args, db),
        Command::Submit(args) => submit::execute(args, db),
        Command::Merge(args) => merge::execute(args, db),
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = match err.downcast_ref::<args::UsageError>() {
                Some(_) => exit::USAGE,
                None => exit::BAD_INPUT,
            };
            // Not through the logger: the error is the result, shown even with -q.
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            code
        }
    }
}

/// The clap definition of the whole command line (completions, man page, tests).
fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Handle SIGINT/SIGTERM as a request to stop cleanly ([`crate::interrupt`]):
/// for the commands that hold trials, from before they claim one.
fn stop_on_signals() -> anyhow::Result<()> {
    crate::interrupt::install()
        .map_err(|e| anyhow::anyhow!("cannot install the SIGINT/SIGTERM handler: {e}"))
}

/// A run that ended with `err`: a stop signal is exit 130 and says how to
/// resume (`again`, the command to run); any other error is returned.
fn stopped(err: anyhow::Error, again: &str) -> anyhow::Result<i32> {
    match err.downcast_ref::<crate::interrupt::Interrupted>() {
        Some(stop) => {
            tracing::warn!(
                "{stop}: stopped cleanly; run `{again}` again to resume \
                 (an interrupted trial continues after its last finished epoch)"
            );
            Ok(exit::INTERRUPTED)
        }
        None => Err(err),
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

#[cfg(test)]
mod tests {
    use super::{command, Cli, Command};
    use clap::Parser;

    fn parses(args: &[&str]) -> Cli {
        let argv = std::iter::once("lab").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn usage_error(args: &[&str]) {
        let argv = std::iter::once("lab").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(e) => assert_eq!(e.exit_code(), super::exit::USAGE, "{args:?}: {e}"),
        }
    }

    #[test]
    fn old_and_new_spellings_parse_alike() {
        for args in [
            ["serve", "3"].as_slice(),
            &["serve", "--trial", "3"],
            &["serve", "--best", "quick"],
            &["serve", "-e", "quick", "--metric", "accuracy"],
            &["serve", "--experiment", "quick"],
            &["predict", "3", "a text"],
            &["predict", "--trial", "3", "a text"],
            &["predict", "--model", "dir", "a text"],
            &["predict", "3", "--input", "x.csv", "--out", "y.csv"],
            &["predict", "3", "--input", "x.csv", "-o", "y.csv"],
            &["export", "3", "--out", "d"],
            &["export", "3", "--output", "d"],
            &["export", "3", "-o", "d"],
            &["plot", "3", "--out", "a.svg", "--chart", "confusion"],
            &["report", "quick", "--out", "d"],
            &["report", "-e", "quick", "-o", "d"],
            &["compare", "quick", "--format", "md"],
            &["compare", "-e", "quick"],
            &["status", "--experiment", "quick", "--format", "json"],
            &["queue", "cancel", "-e", "quick"],
            &["merge", "shards", "--into", "a.db"],
            &["merge", "shards", "-o", "a.db"],
            &["prepare", "spec.toml", "--json"],
            &["prepare", "spec.toml", "--format", "json"],
            &["prepare", "spec.toml", "--show", "3"],
            &["data", "spec.toml"],
            &["data", "spec.toml", "--show", "0", "--json"],
            &["data", "spec.toml", "--format", "json"],
            &["run", "spec.toml", "-j", "2", "--device", "cuda:1"],
            &["worker", "--jobs", "2", "--device", "auto"],
            &["-q", "status"],
            &["status", "-vv"],
        ] {
            parses(args);
        }
    }

    #[test]
    fn both_forms_name_the_same_thing() {
        let Command::Export(a) = parses(&["export", "3", "--out", "d"]).command else {
            panic!("not export");
        };
        let Command::Export(b) = parses(&["export", "3", "-o", "d"]).command else {
            panic!("not export");
        };
        assert_eq!(a.output(), b.output());
        let Command::Compare(a) = parses(&["compare", "quick"]).command else {
            panic!("not compare");
        };
        let Command::Compare(b) = parses(&["compare", "-e", "quick"]).command else {
            panic!("not compare");
        };
        assert_eq!(a.experiment(), Some("quick"));
        assert_eq!(b.experiment(), Some("quick"));
    }

    #[test]
    fn conflicting_or_unknown_forms_are_usage_errors() {
        for args in [
            ["serve", "3", "--trial", "4"].as_slice(),
            &["serve", "3", "-e", "quick"],
            &["compare", "quick", "-e", "other"],
            &["prepare", "spec.toml", "--json", "--format", "text"],
            &["data", "spec.toml", "--json", "--format", "table"],
            &["data", "spec.toml", "--show", "-1"],
            &["plot", "3", "-o", "a.svg", "--chart", "pie"],
            &["status", "--format", "yaml"],
            &["status", "-q", "-v"],
            &["run", "spec.toml", "--jobs", "0"],
            &["completions", "tcsh"],
        ] {
            usage_error(args);
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_argument_and_subcommand_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && path != " lab" {
                missing.push(path.clone());
            }
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if arg.get_help().is_none() && !builtin {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&command(), "", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn every_subcommand_has_an_example() {
        for sub in command().get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(after.contains("lab "), "{}: no example", sub.get_name());
        }
    }
}
