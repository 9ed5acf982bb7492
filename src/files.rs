//! Small file helpers the crate shares: replacing a file atomically and durably,
//! the sha256 of a file, and the directory a path lives in.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// A file being written under a temporary name beside its destination (the same
/// directory, so the final rename is atomic). `commit` moves it into place; dropped
/// without a commit, the temporary file is removed.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// A temporary name for `dest`: `.NAME.PID.NANOS.tmp` in `dest`'s directory,
    /// unique per process and call. Nothing is created yet.
    pub fn new(dest: &Path) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let tmp = parent_dir(dest).join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        Self {
            tmp,
            dest: dest.to_path_buf(),
            committed: false,
        }
    }

    /// Where to write the new contents.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The file this one replaces when committed.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes the written file to disk, renames it onto the destination and
    /// flushes the directory, so that after a crash the destination holds the old
    /// contents or the new ones, never a part.
    ///
    /// # Errors
    /// The temporary file cannot be opened, synced or renamed (it is then removed).
    pub fn commit(mut self) -> io::Result<()> {
        std::fs::File::open(&self.tmp)?.sync_all()?;
        std::fs::rename(&self.tmp, &self.dest)?;
        self.committed = true;
        // Not every platform can open or sync a directory; the rename is done either way.
        if let Ok(dir) = std::fs::File::open(parent_dir(&self.dest)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// The writer's pid of a temporary file named by [`PendingFile::new`]
/// (`.NAME.PID.NANOS.tmp`); `None` for any other name.
pub fn pending_writer(file_name: &str) -> Option<u32> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = inner.rsplitn(3, '.');
    let nanos = parts.next()?;
    let pid = parts.next()?;
    let name = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(nanos) && !name.is_empty()).then_some(())?;
    pid.parse().ok()
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Hex sha256 of a file's bytes, read in a stream (never whole into memory).
///
/// # Errors
/// The file cannot be opened or read; the message names it.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let cannot = || format!("cannot read {}", path.display());
    let mut file = std::fs::File::open(path).with_context(cannot)?;
    let mut hash = Sha256::new();
    io::copy(&mut file, &mut hash).with_context(cannot)?;
    Ok(hex::encode(hash.finalize()))
}

/// The directory `path` is in: its parent, or `.` for a bare file name.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let dir = tempfile::TempDir::new().unwrap();
        let dest = dir.path().join("a.bin");
        std::fs::write(&dest, b"old").unwrap();
        let pending = PendingFile::new(&dest);
        std::fs::write(pending.path(), b"new").unwrap();
        pending.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");

        let pending = PendingFile::new(&dest);
        std::fs::write(pending.path(), b"half").unwrap();
        let tmp = pending.path().to_path_buf();
        drop(pending);
        assert!(!tmp.exists(), "an uncommitted file is removed");
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn the_writer_of_a_temporary_file_is_read_from_its_name() {
        let pending = PendingFile::new(Path::new("dir/model.safetensors"));
        let name = pending.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(pending_writer(name), Some(std::process::id()));
        assert_eq!(pending_writer(".a.b.12.345.tmp"), Some(12));
        for other in [
            "model.safetensors",
            ".x.tmp",
            ".x.1.tmp",
            ".x.p.1.tmp",
            "..1.2.tmp",
        ] {
            assert_eq!(pending_writer(other), None, "{other}");
        }
    }

    #[test]
    fn commit_of_an_unwritten_file_fails() {
        let dir = tempfile::TempDir::new().unwrap();
        let pending = PendingFile::new(&dir.path().join("x"));
        assert!(pending.commit().is_err());
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn sha256_streams_and_names_a_missing_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let e = sha256_file(&dir.path().join("nope")).unwrap_err();
        assert!(format!("{e:#}").contains("nope"), "{e:#}");
    }

    #[test]
    fn parent_dir_of_a_bare_name_is_dot() {
        assert_eq!(parent_dir(Path::new("lab.db")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("runs/lab.db")), PathBuf::from("runs"));
        assert_eq!(parent_dir(Path::new("/lab.db")), PathBuf::from("/"));
    }
}
