//! Experiment specs: TOML schema, layering (defaults < file < LAB_ env < --set),
//! validation with file/line/key, sweep expansion and the trial identity hash.

mod config;
pub use config::*;

use std::path::{Path, PathBuf};

/// A spec loaded from a file, with everything needed to expand and record it.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The file it came from.
    pub path: PathBuf,
    /// Directory that relative paths in the spec are resolved against.
    pub base_dir: PathBuf,
    /// The file's text as written (recorded in the store).
    pub source: String,
    /// The resolved spec after all layers.
    pub spec: Spec,
}

/// Load, layer and validate a spec. `overrides` are `--set key=value` strings.
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedSpec, SpecError> {
    let _ = (path, overrides);
    todo!("spec helper")
}

/// Expand the grid: cartesian product of the sweep axes (in key order) times the seeds.
pub fn expand(spec: &LoadedSpec) -> Result<Vec<TrialConfig>, SpecError> {
    let _ = spec;
    todo!("spec helper")
}

/// Stable identity of a trial: hex sha256 of its canonical JSON, device excluded.
pub fn config_hash(config: &TrialConfig) -> String {
    let _ = config;
    todo!("spec helper")
}

/// An error in a spec: where it is and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based line in the file, when the error can be placed there.
    pub line: Option<usize>,
    /// Dotted key path, e.g. "train.lr".
    pub key: Option<String>,
    pub message: String,
    /// For unknown keys: the nearest valid key.
    pub suggestion: Option<String>,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}
