//! `lab plot TRIAL --chart KIND -o FILE`: one chart of a trial as SVG or PNG.

use crate::report::{png_support, svg_to_png, trial_chart};
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The charts `lab plot` draws.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Chart {
    /// Train and valid loss by epoch.
    Loss,
    /// Valid macro F1 and accuracy by epoch.
    Metric,
    /// The test confusion matrix.
    Confusion,
}

impl Chart {
    fn name(self) -> &'static str {
        match self {
            Chart::Loss => "loss",
            Chart::Metric => "metric",
            Chart::Confusion => "confusion",
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The trial to plot (as `lab compare` lists it).
    trial: i64,
    /// Output file: .svg or .png.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "out",
        value_name = "FILE"
    )]
    output: PathBuf,
    /// Which chart to draw.
    #[arg(long, value_enum, default_value_t = Chart::Loss)]
    chart: Chart,
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "svg" && ext != "png" {
        bail!(
            "{}: expected a .svg or .png file name (got `.{ext}`)",
            args.output.display()
        );
    }
    if ext == "png" {
        png_support().with_context(|| format!("cannot write {}", args.output.display()))?;
    }
    super::require_db(db)?;
    let store = Store::open(db)?;
    let svg = trial_chart(&store, args.trial, args.chart.name())?;
    let bytes = if ext == "png" {
        svg_to_png(&svg, 2.0)?
    } else {
        svg.into_bytes()
    };
    std::fs::write(&args.output, bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    tracing::info!("wrote {}", args.output.display());
    Ok(super::exit::OK)
}
