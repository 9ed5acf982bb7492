//! `lab completions SHELL` and `lab man`: generated from the clap definition, so
//! they list every subcommand, flag and closed set of values.

use super::out::Stdout;
use anyhow::{Context, Result};
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print the completion script for `args.shell` to stdout.
///
/// # Errors
/// stdout cannot be written (a full disk, a closed descriptor).
pub fn completions(args: Args) -> Result<i32> {
    let mut command = super::command();
    // clap_complete panics on a failed write: generate in memory, then write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "lab", &mut script);
    Stdout
        .write_all(&script)
        .and_then(|()| Stdout.flush())
        .context("cannot write the completion script to stdout")?;
    Ok(super::exit::OK)
}

/// Print the roff manual page to stdout.
pub fn man() -> Result<i32> {
    clap_mangen::Man::new(super::command()).render(&mut Stdout)?;
    Ok(super::exit::OK)
}
