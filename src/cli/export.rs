use crate::inference::export;
use crate::store::Store;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The trained trial to export.
    trial: i64,
    /// Directory to write (created if missing).
    #[arg(long)]
    out: PathBuf,
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    let info = export::export(&store, db, args.trial, &args.out)?;
    let out = args.out.display();
    println!(
        "exported trial {} of {} ({} classes) to {out}; use it with `lab serve --model {out}` or `lab predict --model {out}`",
        args.trial,
        info.experiment,
        info.labels.len(),
    );
    Ok(0)
}
