//! Where the dashboard reads from: one store, or a directory of Slurm shards
//! (`lab submit --shards`) merged into a private copy whenever a shard changes.

use super::failure::BadRequest;
use crate::store::Store;
use anyhow::{Context, Result};
use axum::http::StatusCode;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The dashboard's data.
pub enum Source {
    /// A store file (`--db`); tags and notes are written to it.
    Db(PathBuf),
    /// A shard directory, read-only: merged again when a shard's files change.
    Shards(ShardView),
}

/// A shard directory and its latest merged copy.
pub struct ShardView {
    dir: PathBuf,
    scratch: PathBuf,
    merged: Mutex<Option<(Vec<Signature>, PathBuf)>>,
}

/// A shard file's path, size and modification time (and its WAL's).
type Signature = (PathBuf, u64, Option<SystemTime>);

impl Source {
    /// A store: migrated once here (so tags and notes have their tables),
    /// then read through read-only connections.
    ///
    /// # Errors
    /// No database at `path`, or it cannot be opened or migrated.
    pub fn db(path: &Path) -> Result<Source> {
        if !path.is_file() {
            anyhow::bail!(
                "no database at {} (run `lab run SPEC` first, or say --db PATH)",
                path.display()
            );
        }
        Store::open(path)?;
        Ok(Source::Db(path.to_path_buf()))
    }

    /// A shard directory; its merged copies live in a private scratch directory.
    ///
    /// # Errors
    /// The directory holds no shard, or the scratch directory cannot be made.
    pub fn shards(dir: &Path) -> Result<Source> {
        let shards = crate::runner::slurm::find_shards(dir)?;
        if shards.is_empty() {
            anyhow::bail!(
                "{} holds no shard (shard-N/lab.db) yet: is it the directory `lab submit --shards` named?",
                dir.display()
            );
        }
        let scratch = std::env::temp_dir().join(format!("lab-ui-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        Ok(Source::Shards(ShardView {
            dir: dir.to_path_buf(),
            scratch,
            merged: Mutex::new(None),
        }))
    }

    /// A read connection.
    ///
    /// # Errors
    /// The store (or a shard) cannot be read.
    pub fn read(&self) -> Result<Store> {
        match self {
            Source::Db(path) => Store::open_read_only(path),
            Source::Shards(view) => Store::open_read_only(&view.current()?),
        }
    }

    /// A write connection (tags and notes only).
    ///
    /// # Errors
    /// A shard directory (read-only: merge it first), or the store cannot be opened.
    pub fn write(&self) -> Result<Store> {
        match self {
            Source::Db(path) => Store::open(path),
            Source::Shards(view) => Err(BadRequest(
                StatusCode::CONFLICT,
                format!(
                    "{} is a shard directory, shown read-only: `lab merge` it into a store to tag and annotate its trials",
                    view.dir.display()
                ),
            )
            .into()),
        }
    }
}

impl ShardView {
    /// The shard directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The merged copy, made again when any shard changed since the last one.
    fn current(&self) -> Result<PathBuf> {
        let signature = self.signature()?;
        let mut merged = self.merged.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, path)) = merged.as_ref() {
            if *seen == signature {
                return Ok(path.clone());
            }
        }
        let n = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self.scratch.join(format!("merged-{n}.db"));
        let store = Store::open(&path)?;
        for (task, shard) in crate::runner::slurm::find_shards(&self.dir)? {
            let shard = Store::open_read_only(&shard)
                .with_context(|| format!("shard {task} of {}", self.dir.display()))?;
            store.merge_from(&shard)?;
        }
        drop(store);
        if let Some((_, old)) = merged.replace((signature, path.clone())) {
            // Readers that still hold it keep their open file.
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", old.display()));
            }
        }
        Ok(path)
    }

    fn signature(&self) -> Result<Vec<Signature>> {
        let mut out = Vec::new();
        for (_, db) in crate::runner::slurm::find_shards(&self.dir)? {
            for suffix in ["", "-wal"] {
                let file = PathBuf::from(format!("{}{suffix}", db.display()));
                if let Ok(meta) = std::fs::metadata(&file) {
                    out.push((file, meta.len(), meta.modified().ok()));
                }
            }
        }
        Ok(out)
    }
}

impl Drop for ShardView {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
