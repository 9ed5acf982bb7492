//! A model's files are checked against the sha256 recorded for them before they
//! are used: a trial's against the store's `artifacts` rows, an export's against
//! its own `manifest.json` (written by `lab export`). A changed byte is refused
//! naming the file, the hash expected and the hash found; nothing is predicted,
//! served or exported from it.

use super::artifacts::{CONFIG, VOCAB, WEIGHTS};
use crate::files::sha256_file;
use crate::store::ArtifactRow;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The file of an export directory listing every other file with its sha256.
pub const MANIFEST: &str = "manifest.json";

/// What `manifest.json` holds.
#[derive(Serialize, Deserialize)]
struct Manifest {
    /// File name (in the directory) -> hex sha256.
    sha256: BTreeMap<String, String>,
}

/// `path`'s sha256 is `expected`, else an error naming the file, `whose` record,
/// the hash expected and the hash found.
///
/// # Errors
/// The file cannot be read, or its hash differs.
pub fn check_file(path: &Path, expected: &str, whose: &str) -> Result<()> {
    let found = sha256_file(path)?;
    if !found.eq_ignore_ascii_case(expected.trim()) {
        bail!(
            "{}: its sha256 is {found}, but {whose} recorded {expected}: the file changed \
             after it was written; restore it (or train the trial again)",
            path.display()
        );
    }
    Ok(())
}

/// The weights, vocabulary and config files in `dir` (a trial's directory) match
/// the sha256 the store recorded for them (`artifacts`, of the trial named in `whose`).
///
/// # Errors
/// A kind without a recorded hash, or a file that does not match its record.
pub fn check_trial(dir: &Path, artifacts: &[ArtifactRow], whose: &str) -> Result<()> {
    for (kind, name) in [
        ("weights", WEIGHTS),
        ("vocabulary", VOCAB),
        ("config", CONFIG),
    ] {
        let row = artifacts
            .iter()
            .find(|a| a.kind == kind)
            .with_context(|| format!("{whose} recorded no {kind} artifact: cannot check {name}"))?;
        check_file(&dir.join(name), &row.sha256, &format!("{whose} ({kind})"))?;
    }
    Ok(())
}

/// Write `dir/manifest.json` with the sha256 of each of `names` (files in `dir`).
///
/// # Errors
/// A file that cannot be read, or the manifest that cannot be written.
pub fn write_manifest(dir: &Path, names: &[&str]) -> Result<()> {
    let mut sha256 = BTreeMap::new();
    for name in names {
        sha256.insert(name.to_string(), sha256_file(&dir.join(name))?);
    }
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&Manifest { sha256 })?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Every file `dir/manifest.json` lists matches its sha256, and it lists each of
/// `required` (and every one of `optional` that exists). An export without a
/// manifest (written by an older lab) is used with a warning.
///
/// # Errors
/// A malformed manifest, a listed name that is not a plain file name, a file
/// missing from it, or one that does not match.
pub fn check_export(dir: &Path, required: &[&str], optional: &[&str]) -> Result<()> {
    let path = dir.join(MANIFEST);
    if !path.exists() {
        tracing::warn!(
            "{} has no {MANIFEST} (exported by an older lab): its files cannot be checked; \
             export the trial again to add one",
            dir.display()
        );
        return Ok(());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid manifest ({{\"sha256\": {{FILE: HASH}}}})",
            path.display()
        )
    })?;
    let whose = path.display().to_string();
    for (name, hash) in &manifest.sha256 {
        let plain = Path::new(name)
            .file_name()
            .is_some_and(|f| f == name.as_str());
        if !plain {
            bail!("{whose}: {name:?} is not a file name in {}", dir.display());
        }
        check_file(&dir.join(name), hash, &whose)?;
    }
    let present: Vec<&str> = optional
        .iter()
        .copied()
        .filter(|name| dir.join(name).exists())
        .collect();
    for name in required.iter().copied().chain(present) {
        if !manifest.sha256.contains_key(name) {
            bail!("{whose} lists no sha256 for {name}: it cannot be checked");
        }
    }
    Ok(())
}
