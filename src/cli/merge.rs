//! `lab merge SHARDS... --into DB`: fold shard databases (a Slurm array's, or any
//! other lab store) into one; merging twice adds nothing.

use crate::runner::slurm;
use crate::store::{MergeSummary, Store};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Shard databases, or directories of shards (`DIR/shard-<i>/lab.db`, as
    /// `lab submit` lays them out) or holding a `lab.db`.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The database to merge into [default: --db].
    #[arg(short = 'o', long, visible_alias = "output", value_name = "DB")]
    into: Option<PathBuf>,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let into = args.into.unwrap_or_else(|| db.to_path_buf());
    let mut files = Vec::new();
    for shard in &args.shards {
        files.extend(shard_files(shard)?);
    }
    let target = Store::open(&into)?;
    let target_path = into
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", into.display()))?;
    let mut total = MergeSummary::default();
    // One bad shard (or trial) is reported and the others are merged.
    let mut refused = Vec::new();
    let mut merged = 0;
    for file in &files {
        let s = match merge_one(&target, &target_path, file) {
            Ok(s) => s,
            Err(err) => {
                refused.push(format!("{}: not merged: {err:#}", file.display()));
                super::out::set_outcome(super::exit::BAD_INPUT);
                continue;
            }
        };
        merged += 1;
        super::out::line(format_args!(
            "{}: {} added, {} updated, {} unchanged, {} unfinished, {} refused{}",
            file.display(),
            s.added,
            s.updated,
            s.unchanged,
            s.unfinished,
            s.refused.len(),
            annotations(&s)
        ))?;
        for note in &s.notes {
            tracing::info!("note: {note}");
        }
        if !s.refused.is_empty() {
            super::out::set_outcome(super::exit::BAD_INPUT);
            refused.extend(s.refused.iter().cloned());
        }
        total.experiments += s.experiments;
        total.added += s.added;
        total.updated += s.updated;
        total.unchanged += s.unchanged;
        total.unfinished += s.unfinished;
        total.files += s.files;
        total.tags_added += s.tags_added;
        total.notes_copied += s.notes_copied;
        total.notes_joined += s.notes_joined;
    }
    super::out::line(format_args!(
        "merged {merged} of {} shards into {}: {} trials added, {} updated, {} unchanged, {} unfinished \
         (pending or running in their shard: merge again later); {} new experiments, {} files copied{}",
        files.len(),
        into.display(),
        total.added,
        total.updated,
        total.unchanged,
        total.unfinished,
        total.experiments,
        total.files,
        annotations(&total)
    ))?;
    if refused.is_empty() {
        return Ok(super::exit::OK);
    }
    for why in &refused {
        tracing::error!("{why}");
    }
    tracing::error!(
        "{} refused (listed above): the rest was merged; fix or remove those and merge again",
        refused.len()
    );
    Ok(super::exit::BAD_INPUT)
}

/// "; 3 tags added, 1 note copied, 1 note joined to this store's (both
/// kept)" when a merge carried tags or notes, else nothing (the line reads as
/// before).
fn annotations(s: &MergeSummary) -> String {
    if s.tags_added + s.notes_copied + s.notes_joined == 0 {
        return String::new();
    }
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let joined = match s.notes_joined {
        0 => String::new(),
        n => format!(", {} joined to this store's (both kept)", plural(n, "note")),
    };
    format!(
        "; {} added, {} copied{joined}",
        plural(s.tags_added, "tag"),
        plural(s.notes_copied, "note")
    )
}

/// Merge one shard database into `target`, unless it is the target itself.
fn merge_one(target: &Store, target_path: &Path, file: &Path) -> anyhow::Result<MergeSummary> {
    if file.canonicalize().ok().as_deref() == Some(target_path) {
        bail!("it is the database being merged into");
    }
    let shard = Store::open_read_only(file)?;
    target.merge_from(&shard)
}

/// The databases an argument names: a file, a directory with a `lab.db`, or a
/// directory of `shard-<i>/lab.db`.
fn shard_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        bail!("{}: no such shard database or directory", path.display());
    }
    if path.join("lab.db").is_file() {
        return Ok(vec![path.join("lab.db")]);
    }
    let shards: Vec<PathBuf> = slurm::find_shards(path)?
        .into_iter()
        .map(|(_, db)| db)
        .collect();
    if shards.is_empty() {
        bail!(
            "{}: no shard databases in it (expected shard-<i>/lab.db or lab.db)",
            path.display()
        );
    }
    Ok(shards)
}
