//! `lab export TRIAL -o DIR`: a trained trial as a directory usable without the store.

use crate::inference::export;
use crate::store::Store;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The trained trial to export (as `lab compare` lists it).
    trial: i64,
    /// Directory to write (created if missing).
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "out",
        value_name = "DIR"
    )]
    output: PathBuf,
}

impl Args {
    /// The directory to write, however it was spelled.
    #[cfg(test)]
    pub fn output(&self) -> &Path {
        &self.output
    }
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    let info = export::export(&store, db, args.trial, &args.output)?;
    let out = args.output.display();
    tracing::info!(
        "exported trial {} of {} ({} classes) to {out}; use it with `lab serve --model {out}` or `lab predict --model {out}`",
        args.trial,
        info.experiment,
        info.labels.len(),
    );
    Ok(super::exit::OK)
}
