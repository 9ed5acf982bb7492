//! `lab compare [EXPERIMENT]`: leaderboards from the store, of every trial or
//! of the tagged ones (`--tag`).

use super::args::Experiment;
use crate::report::evidence::{CiMethod, EvidenceOptions};
use crate::report::{self, Format, LeaderboardOptions};
use crate::store::Store;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    experiment: Experiment,
    /// Test metric to rank by (accuracy, macro_f1, weighted_f1, loss, roc_auc, f1.<class>, ...).
    #[arg(long, default_value = "macro_f1")]
    metric: String,
    /// Group by these config keys instead of every swept key (repeatable, e.g. model.cell).
    #[arg(long = "group-by", value_name = "KEY")]
    group_by: Vec<String>,
    /// Show only the best N rows (N >= 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    top: Option<u64>,
    /// The interval shown for the ranked metric: t over seeds (a bootstrap over
    /// test rows where a row has one seed), a bootstrap over test rows, or none.
    #[arg(long, value_enum, default_value_t = CiMethod::Seeds)]
    ci: CiMethod,
    /// Family-wise error rate of the paired tests against the best row (Holm).
    #[arg(long, default_value_t = 0.05, value_parser = unit_interval)]
    alpha: f64,
    /// Bootstrap resamples for intervals and paired tests (>= 100).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    resamples: u64,
    /// Rank rows scored on different test splits together (a warning says so).
    #[arg(long)]
    allow_mixed_splits: bool,
    /// Rank only trials tagged TAG, on the trial or on its experiment
    /// (repeatable: all of them); without EXPERIMENT, the experiments with
    /// such trials.
    #[arg(long = "tag", value_name = "TAG", value_parser = tag)]
    tags: Vec<String>,
    /// How to print the leaderboard.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl Args {
    /// The experiment named, however it was spelled.
    #[cfg(test)]
    pub fn experiment(&self) -> Option<&str> {
        self.experiment.name()
    }
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    let opts = LeaderboardOptions {
        metric: args.metric,
        group_by: (!args.group_by.is_empty()).then_some(args.group_by),
        top: args.top.map(|n| n as usize),
        evidence: EvidenceOptions {
            ci: args.ci,
            alpha: args.alpha,
            resamples: args.resamples as usize,
            ..Default::default()
        },
        allow_mixed_splits: args.allow_mixed_splits,
        tag: args.tags.first().cloned(),
        more_tags: args.tags.iter().skip(1).cloned().collect(),
    };
    let output = match args.experiment.name() {
        Some(name) => {
            let experiment = store.require_experiment(name)?;
            report::render_boards(
                &report::leaderboards(&store, &experiment, &opts)?,
                args.format,
            )
        }
        None => report::render_all(&store, &opts, args.format)?,
    };
    super::out::line(output)?;
    Ok(super::exit::OK)
}

/// A tag as `store::valid_tag` accepts it, trimmed.
fn tag(s: &str) -> Result<String, String> {
    crate::store::valid_tag(s).map_err(|e| e.to_string())
}

/// A probability strictly between 0 and 1.
fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number strictly between 0 and 1")),
    }
}
