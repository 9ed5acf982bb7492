//! `lab report [EXPERIMENT] -o DIR`: self-contained HTML reports with charts.

use super::args::Experiment;
use crate::inference::{errors::most_confidently_wrong, export};
use crate::report::{html_report, LeaderboardOptions};
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    experiment: Experiment,
    /// Directory for the HTML files (one `<experiment>.html` each, and index.html).
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "out",
        value_name = "DIR"
    )]
    output: PathBuf,
    /// Metric ranking the leaderboard.
    #[arg(long, default_value = "macro_f1")]
    metric: String,
}

/// Wrong test texts shown for the best trial.
const WRONG_TEXTS: usize = 10;

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    let experiments = match args.experiment.name() {
        Some(name) => vec![store.require_experiment(name)?],
        None => store.experiments()?,
    };
    if experiments.is_empty() {
        bail!("no experiments in {}", db.display());
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let opts = LeaderboardOptions {
        metric: args.metric.clone(),
        ..Default::default()
    };
    let mut index = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lab reports</title></head><body><h1>lab reports</h1><ul>",
    );
    let mut skipped = 0;
    for exp in &experiments {
        // The name becomes a file name in DIR: a store from elsewhere may hold any text.
        if let Err(why) = crate::spec::check_experiment_name(&exp.name) {
            tracing::warn!(
                "{}: experiment {} (key `experiments.name`): {why}; no report written for it",
                db.display(),
                exp.id
            );
            skipped += 1;
            continue;
        }
        let board = crate::report::leaderboard(&store, exp, &opts)?;
        // The class distribution needs the data file; the report goes on without it.
        let distribution = match board.rows.first() {
            Some(row) => match export::class_distribution(&store, db, row.best_trial) {
                Ok(d) => Some(d),
                Err(err) => {
                    tracing::warn!("{}: no class distribution: {err:#}", exp.name);
                    None
                }
            },
            None => None,
        };
        // The wrong texts need the data file and predictions; without them a sentence says why.
        let errors = board.rows.first().map(|row| {
            most_confidently_wrong(&store, db, row.best_trial, WRONG_TEXTS)
                .map_err(|err| format!("{err:#}"))
        });
        let html = html_report(&store, exp, &opts, distribution.as_ref(), errors.as_ref())?;
        let file = args.output.join(format!("{}.html", exp.name));
        std::fs::write(&file, html).with_context(|| format!("cannot write {}", file.display()))?;
        tracing::info!("wrote {}", file.display());
        index.push_str(&format!(
            "<li><a href=\"{}.html\">{}</a></li>",
            html_escape::encode_double_quoted_attribute(&exp.name),
            html_escape::encode_text(&exp.name)
        ));
    }
    index.push_str("</ul></body></html>");
    let file = args.output.join("index.html");
    std::fs::write(&file, index).with_context(|| format!("cannot write {}", file.display()))?;
    if skipped > 0 {
        return Ok(super::exit::BAD_INPUT);
    }
    Ok(super::exit::OK)
}
