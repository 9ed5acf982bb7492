use crate::report::{png_support, svg_to_png, trial_chart};
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The trial to plot.
    trial: i64,
    /// Output file: .svg or .png.
    #[arg(long)]
    out: PathBuf,
    /// Which chart: loss, metric (valid F1 and accuracy) or confusion.
    #[arg(long, default_value = "loss")]
    chart: String,
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    let ext = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "svg" && ext != "png" {
        bail!(
            "{}: expected a .svg or .png file name (got `.{ext}`)",
            args.out.display()
        );
    }
    if ext == "png" {
        png_support().with_context(|| format!("cannot write {}", args.out.display()))?;
    }
    super::require_db(db)?;
    let store = Store::open(db)?;
    let svg = trial_chart(&store, args.trial, &args.chart)?;
    let bytes = if ext == "png" {
        svg_to_png(&svg, 2.0)?
    } else {
        svg.into_bytes()
    };
    std::fs::write(&args.out, bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(0)
}
