//! Experiment specs: TOML schema, layering (defaults < file < LAB_ env < --set),
//! validation with file/line/key, sweep expansion and the trial identity hash.

mod config;
mod grid;
mod hash;
mod layers;
mod locate;
mod merge;
mod schema;
mod search;
mod validate;
mod values;

pub use config::*;
pub use hash::{config_hash, spec_hash};
pub use search::{apply, recorded_search, Param, ParamKind};
pub use validate::{check_experiment_name, MAX_NAME_LEN};
pub use values::{nearest, ValueError};

/// The largest grid a spec may expand to unless told otherwise (`--max-trials`).
pub const DEFAULT_MAX_TRIALS: usize = 1000;

use layers::Layers;
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

/// Load, layer and validate a spec. `overrides` are `--set key=value` strings;
/// `LAB_<SECTION>__<KEY>` variables come from the process environment.
/// A grid of more than [`DEFAULT_MAX_TRIALS`] trials is refused.
///
/// # Errors
/// The spec cannot be read, parsed, layered or validated, or its grid is too large.
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedSpec, SpecError> {
    load_limited(path, overrides, DEFAULT_MAX_TRIALS)
}

/// `load`, refusing a grid of more than `max_trials` trials (`--max-trials`)
/// before expanding it.
///
/// # Errors
/// As [`load`].
pub fn load_limited(
    path: &Path,
    overrides: &[String],
    max_trials: usize,
) -> Result<LoadedSpec, SpecError> {
    // Variables that are not valid UTF-8 cannot be ours; skipping them avoids a panic.
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    load_with_env_limited(path, overrides, env, max_trials)
}

/// `load` with the environment given explicitly, so tests need not touch the
/// process's. Layers: defaults < file < `LAB_` variables < `overrides`. Every
/// grid point is validated, so a spec that loads also expands.
///
/// # Errors
/// As [`load`].
pub fn load_with_env(
    path: &Path,
    overrides: &[String],
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LoadedSpec, SpecError> {
    load_with_env_limited(path, overrides, env, DEFAULT_MAX_TRIALS)
}

/// `load_with_env` refusing a grid of more than `max_trials` trials.
///
/// # Errors
/// As [`load`].
pub fn load_with_env_limited(
    path: &Path,
    overrides: &[String],
    env: impl IntoIterator<Item = (String, String)>,
    max_trials: usize,
) -> Result<LoadedSpec, SpecError> {
    let schema = schema::Schema::new();
    let (source, file_table) = layers::read_file(path)?;
    let layers = Layers {
        file: path.to_path_buf(),
        locator: locate::Locator::new(&source),
        file_table,
        env: layers::env_overrides(env, &schema, path)?,
        set: layers::set_overrides(overrides, &schema, path)?,
    };
    let env_table = layers::to_table(&layers.env);
    let set_table = layers::to_table(&layers.set);
    for table in [&layers.file_table, &env_table, &set_table] {
        schema.check_keys(table).map_err(|p| layers.error(p))?;
    }
    let spec = merge::merge(&layers)?;
    // Counted from the axes' lengths: a huge grid is refused before it is built.
    grid::check_size(&spec, max_trials).map_err(|p| layers.error(p))?;
    let base_dir = crate::files::parent_dir(path);
    grid::trials(&spec, &base_dir, &layers)?;
    search::resolve(&spec, &grid::fixed(&spec), &base_dir).map_err(|p| layers.error(p))?;
    Ok(LoadedSpec {
        path: path.to_path_buf(),
        base_dir,
        source,
        spec,
    })
}

/// Expand the grid: cartesian product of the sweep axes times the seeds.
/// Axes go in key order, the first key varying slowest; seeds are innermost.
pub fn expand(spec: &LoadedSpec) -> Result<Vec<TrialConfig>, SpecError> {
    let layers = Layers::file_only(&spec.path, &spec.source);
    grid::trials(&spec.spec, &spec.base_dir, &layers)
}

/// How many trials the spec runs in all: grid points times search
/// configurations times seeds; `None` on overflow.
pub fn trial_count(spec: &Spec) -> Option<usize> {
    grid::size(spec)
}

/// The parameters of the spec's `[search]`, checked and typed (empty without one).
///
/// # Errors
/// As [`load`] for the `[search]` section.
pub fn search_space(spec: &LoadedSpec) -> Result<Vec<Param>, SpecError> {
    let layers = Layers::file_only(&spec.path, &spec.source);
    search::resolve(&spec.spec, &grid::fixed(&spec.spec), &spec.base_dir)
        .map_err(|p| layers.error(p))
}

/// An error about `key` (a dotted path such as `model.embedding_dim`) found after
/// loading, e.g. when a file the spec names is read: placed at the key's line in the
/// spec file, or at its sweep axis when one sets it.
pub fn key_error(spec: &LoadedSpec, key: &str, message: impl Into<String>) -> SpecError {
    let layers = Layers::file_only(&spec.path, &spec.source);
    let problem = if spec.spec.sweep.contains_key(key) {
        Problem::new(vec!["sweep".into(), key.into()], message.into())
    } else {
        Problem::at_key(key, message.into())
    };
    layers.error(problem)
}

/// `(dotted key, value)` for each of `axes` (the sweep keys), values written as
/// on the command line: `("model.cell", "gru")`, `("train.lr", "0.003")`.
pub fn swept_values(trial: &TrialConfig, axes: &[String]) -> Vec<(String, String)> {
    grid::swept_values(trial, axes)
}

/// A short name for a trial: its swept values and seed, e.g.
/// `model.cell=gru train.lr=0.003 seed=13`.
pub fn trial_label(trial: &TrialConfig, axes: &[String]) -> String {
    let mut parts: Vec<String> = swept_values(trial, axes)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    parts.push(format!("seed={}", trial.seed));
    parts.join(" ")
}

/// What is wrong and at which key, before it is placed in a file or flag.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    /// The key the error names.
    pub path: Vec<String>,
    /// Where to look for its line when that differs (an element of an axis).
    pub at: Option<Vec<String>>,
    pub message: String,
    pub suggestion: Option<String>,
}

impl Problem {
    pub(crate) fn new(path: Vec<String>, message: String) -> Self {
        Self {
            path,
            at: None,
            message,
            suggestion: None,
        }
    }

    /// A problem at a dotted key of the fixed configuration.
    pub(crate) fn at_key(key: &str, message: String) -> Self {
        Self::new(key.split('.').map(String::from).collect(), message)
    }

    pub(crate) fn suggest(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }

    pub(crate) fn locate(mut self, at: Vec<String>) -> Self {
        self.at = Some(at);
        self
    }
}

/// An error in a spec: where it is and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    /// The spec file.
    pub file: PathBuf,
    /// 1-based line in the file, when the error can be placed there.
    pub line: Option<usize>,
    /// Dotted key path, e.g. "train.lr".
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    /// For unknown keys: the nearest valid key; for unknown values: the nearest valid value.
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
