//! `lab diff A B`: two trials or configurations compared on the same test rows.

use super::args::UsageError;
use crate::report::diff::{diff, render_diff, DiffOptions, Side};
use crate::report::Format;
use crate::store::Store;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// A: a trial id, or a configuration KEY=VALUE[,KEY=VALUE...] over flattened
    /// config keys (e.g. model.cell=gru) whose done trials of -e are its seeds.
    #[arg(value_name = "A", value_parser = parse_side)]
    a: Side,
    /// B: a trial id or a configuration, as A.
    #[arg(value_name = "B", value_parser = parse_side)]
    b: Side,
    /// The experiment whose done trials a configuration is matched against.
    #[arg(short = 'e', long = "experiment", value_name = "EXPERIMENT")]
    experiment: Option<String>,
    /// Confusion-matrix metric to compare (accuracy, macro_f1, weighted_f1,
    /// f1.<class>, ...) on the test split, or valid.<metric>.
    #[arg(long, default_value = "macro_f1")]
    metric: String,
    /// Bootstrap resamples of the paired test (>= 100).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    resamples: u64,
    /// How many rows where A and B predict differently to list (the first ones).
    #[arg(long, value_name = "N", default_value_t = 10)]
    show: usize,
    /// How to print the comparison (CSV: each table after a `# title` line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let configs: Vec<String> = [&args.a, &args.b]
        .into_iter()
        .filter(|s| matches!(s, Side::Config(_)))
        .map(|s| format!("`{s}`"))
        .collect();
    if args.experiment.is_none() && !configs.is_empty() {
        return Err(UsageError(format!(
            "the configuration {} is matched against an experiment's trials: add -e NAME",
            configs.join(" and ")
        ))
        .into());
    }
    super::require_db(db)?;
    let store = Store::open(db)?;
    let experiment = match &args.experiment {
        Some(name) => Some(store.require_experiment(name)?),
        None => None,
    };
    let opts = DiffOptions {
        metric: args.metric,
        resamples: args.resamples as usize,
        show: args.show,
        ..Default::default()
    };
    let found = diff(&store, &args.a, &args.b, experiment.as_ref(), &opts)?;
    super::out::line(render_diff(&found, args.format)?)?;
    Ok(super::exit::OK)
}

fn parse_side(text: &str) -> Result<Side, String> {
    Side::parse(text).map_err(|e| e.to_string())
}
