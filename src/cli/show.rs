use crate::report::{self, Format};
use crate::store::Store;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Trial id (as listed by `lab compare`).
    trial: i64,
    #[arg(long, default_value = "table")]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    println!("{}", report::render_trial(&store, args.trial, args.format)?);
    Ok(0)
}
