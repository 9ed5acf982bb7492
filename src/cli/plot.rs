use crate::report::trial_chart;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The trial to plot.
    trial: i64,
    /// Output file (.svg).
    #[arg(long)]
    out: PathBuf,
    /// Which chart: loss, metric (valid F1 and accuracy) or confusion.
    #[arg(long, default_value = "loss")]
    chart: String,
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    let ext = args.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !ext.eq_ignore_ascii_case("svg") {
        bail!(
            "{}: only .svg output is supported (got `.{ext}`)",
            args.out.display()
        );
    }
    super::require_db(db)?;
    let store = Store::open(db)?;
    let svg = trial_chart(&store, args.trial, &args.chart)?;
    std::fs::write(&args.out, svg)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(0)
}
