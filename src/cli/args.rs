//! Arguments that several subcommands share, so that they mean and read the same
//! everywhere: the experiment (`EXPERIMENT` or `-e NAME`), the device (its
//! values listed in `--help` and completions), and usage errors found after
//! parsing.

use clap::builder::{PossibleValue, TypedValueParser};
use std::ffi::OsStr;

/// An experiment named positionally (as before) or with `-e/--experiment`.
#[derive(clap::Args, Debug, Default)]
pub struct Experiment {
    /// Experiment name (the same as -e NAME); every experiment when omitted.
    #[arg(value_name = "EXPERIMENT", id = "experiment_name")]
    positional: Option<String>,
    /// Experiment name (the same as the positional EXPERIMENT).
    #[arg(
        short = 'e',
        long = "experiment",
        value_name = "EXPERIMENT",
        conflicts_with = "experiment_name"
    )]
    flag: Option<String>,
}

impl Experiment {
    /// The experiment named, however it was given.
    pub fn name(&self) -> Option<&str> {
        self.flag.as_deref().or(self.positional.as_deref())
    }
}

/// A command line that parsed but does not make sense (a trial id that is not a
/// number where only the position tells): exits with the usage code, 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `--device`: cpu, cuda, cuda:N or auto. The names are listed for `--help` and
/// completions; the value is checked where it is used (`runner::device::select`),
/// with the same message for a spec's `train.device`.
#[derive(Clone, Copy, Debug)]
pub struct DeviceParser;

impl TypedValueParser for DeviceParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            [
                PossibleValue::new("cpu").help("the CPU"),
                PossibleValue::new("cuda").help("the first GPU (cuda:N: GPU number N)"),
                PossibleValue::new("auto").help("the first GPU if there is one, else the CPU"),
            ]
            .into_iter(),
        ))
    }
}
