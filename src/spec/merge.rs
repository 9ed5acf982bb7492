//! Figment layering: defaults < file < environment < `--set`, extracted into a
//! typed `Spec`; figment's type errors become problems with key paths.

use super::config::Spec;
use super::layers::{to_table, Layers};
use super::values::{nearest, problem_at};
use super::{Problem, SpecError};
use figment::error::Kind;
use figment::providers::Serialized;
use figment::Figment;

/// The spec after all layers, or the first type error.
pub(crate) fn merge(layers: &Layers) -> Result<Spec, SpecError> {
    let figment = Figment::from(Serialized::defaults(Spec::default()))
        .merge(Serialized::defaults(&layers.file_table))
        .merge(Serialized::defaults(to_table(&layers.env)))
        .merge(Serialized::defaults(to_table(&layers.set)));
    figment.extract::<Spec>().map_err(|e| {
        // A typed value's error carries only its message: parse it again for the suggestion.
        let raw = figment.find_value(&e.path.join(".")).ok();
        let typed = raw.and_then(|v| problem_at(&e.path, v.as_str()?));
        layers.error(typed.unwrap_or_else(|| problem(e)))
    })
}

fn problem(e: figment::Error) -> Problem {
    let mut path = e.path.clone();
    let mut suggestion = None;
    let message = match &e.kind {
        Kind::InvalidType(actual, expected) => {
            format!("expected {}, found {actual}", friendly(expected))
        }
        Kind::InvalidValue(actual, expected) => {
            format!("invalid value {actual}, expected {}", friendly(expected))
        }
        Kind::UnknownVariant(value, expected) => {
            suggestion = nearest(value, expected.iter().copied()).map(String::from);
            format!(
                "unknown value `{value}`; expected one of: {}",
                expected.join(", ")
            )
        }
        Kind::MissingField(field) => format!("missing key `{field}`"),
        Kind::UnknownField(field, expected) => {
            path.push(field.clone());
            suggestion = nearest(field, expected.iter().copied()).map(String::from);
            format!("unknown key; valid keys: {}", expected.join(", "))
        }
        other => other.to_string(),
    };
    Problem::new(path, message).suggest(suggestion)
}

/// serde's names for expected types, in the spec's vocabulary.
fn friendly(expected: &str) -> String {
    match expected {
        "f64" | "f32" => "a number".into(),
        "usize" | "u64" | "u32" => "a whole number >= 0".into(),
        "a sequence" => "a list".into(),
        "a boolean" => "true or false".into(),
        other if other.starts_with("struct ") || other.starts_with("a map") => "a table".into(),
        other => other.into(),
    }
}
