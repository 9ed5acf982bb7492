//! The spec argument and its `--set` overrides, shared by every command that
//! reads a spec (`run`, `prepare`, `queue add`, `submit`).

use crate::spec::{self, LoadedSpec, SpecError};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SpecArgs {
    /// The experiment spec (TOML).
    pub spec: PathBuf,
    /// Override a spec value, e.g. `--set train.lr=0.01` or `--set "sweep.model.hidden=[64,128]"`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl SpecArgs {
    /// The spec with its overrides applied.
    pub fn load(&self) -> Result<LoadedSpec, SpecError> {
        spec::load(&self.spec, &self.set)
    }

    /// The spec with its overrides applied, refusing a grid of more than
    /// `max_trials` trials (`--max-trials`) before it is expanded.
    pub fn load_limited(&self, max_trials: usize) -> Result<LoadedSpec, SpecError> {
        spec::load_limited(&self.spec, &self.set, max_trials)
    }

    /// The overrides again as `--set K=V` arguments, for a child `lab run`.
    pub fn set_flags(&self) -> Vec<String> {
        self.set
            .iter()
            .flat_map(|s| ["--set".to_string(), s.clone()])
            .collect()
    }
}
