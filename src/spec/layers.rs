//! The layers of a spec above the built-in defaults (file, `LAB_` environment,
//! `--set` flags) and where each value came from, so errors can say where to look.

use super::locate::{line_of, Locator};
use super::schema::Schema;
use super::{Problem, SpecError};
use std::path::{Path, PathBuf};

/// Spec sections; a `LAB_` variable is taken only when its first segment names one.
const SECTIONS: &[&str] = &[
    "experiment",
    "data",
    "preprocess",
    "model",
    "train",
    "sweep",
];

/// One value set by an environment variable or a `--set` flag.
#[derive(Debug, Clone)]
pub(crate) struct Override {
    pub path: Vec<String>,
    /// How the user wrote it: the variable name or the flag.
    pub origin: String,
    pub value: toml::Value,
}

/// Everything above the defaults, in increasing precedence.
pub(crate) struct Layers {
    pub file: PathBuf,
    pub locator: Locator,
    pub file_table: toml::Table,
    pub env: Vec<Override>,
    pub set: Vec<Override>,
}

impl Layers {
    /// Only the file: enough to place errors found after loading.
    pub(crate) fn file_only(file: &Path, source: &str) -> Self {
        Self {
            file: file.to_path_buf(),
            locator: Locator::new(source),
            file_table: toml::from_str(source).unwrap_or_default(),
            env: Vec::new(),
            set: Vec::new(),
        }
    }

    /// Turns a problem into an error placed at the layer that set the value:
    /// the last `--set`, else the environment, else the file's line; a value
    /// nobody set is the built-in default.
    pub(crate) fn error(&self, problem: Problem) -> SpecError {
        let at = problem.at.as_ref().unwrap_or(&problem.path);
        let key = Some(problem.path.join("."));
        let mut line = None;
        let mut message = problem.message;
        let overridden = self
            .set
            .iter()
            .rev()
            .chain(self.env.iter().rev())
            .find(|o| related(&o.path, &problem.path));
        if let Some(o) = overridden {
            let what = if o.origin.starts_with("--set") {
                format!("`{}`", o.origin)
            } else {
                format!("environment variable `{}`", o.origin)
            };
            message = format!("{message} (set by {what})");
        } else if table_has(&self.file_table, &problem.path) {
            line = self.locator.line(at);
        } else {
            message = format!("{message} (the built-in default)");
        }
        SpecError {
            file: self.file.clone(),
            line,
            key,
            message,
            suggestion: problem.suggestion,
        }
    }
}

/// Reads and parses the spec file.
pub(crate) fn read_file(path: &Path) -> Result<(String, toml::Table), SpecError> {
    let err = |line, message| SpecError {
        file: path.to_path_buf(),
        line,
        key: None,
        message,
        suggestion: None,
    };
    let source = std::fs::read_to_string(path)
        .map_err(|e| err(None, format!("cannot read spec file: {e}")))?;
    let table = toml::from_str::<toml::Table>(&source).map_err(|e| {
        let line = e.span().map(|s| line_of(&source, s.start));
        err(line, format!("invalid TOML: {}", e.message().trim()))
    })?;
    Ok((source, table))
}

/// `LAB_<SECTION>__<KEY>[__<KEY>...]` variables, sorted by name so that the
/// result does not depend on the environment's order. A variable with `__`
/// whose section is unknown (`LAB_MODLE__HIDDEN`) is refused as the same typo in
/// the file is; other `LAB_` variables (`LAB_DB`, `LAB_KERNEL`) are not the spec's.
pub(crate) fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
    schema: &Schema,
    file: &Path,
) -> Result<Vec<Override>, SpecError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("LAB_"))
        .collect();
    vars.sort();
    let mut out = Vec::new();
    for (name, raw) in vars {
        let segs: Vec<String> = name["LAB_".len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if !SECTIONS.contains(&segs[0].as_str()) {
            if segs.len() > 1 {
                return Err(unknown_section(&name, &segs, file));
            }
            continue;
        }
        // Variable names cannot hold dots, so an axis is spelled LAB_SWEEP__MODEL__HIDDEN.
        let path = if segs[0] == "sweep" && segs.len() > 1 {
            vec!["sweep".to_string(), segs[1..].join(".")]
        } else {
            segs
        };
        let value = parse_value(&raw, schema.is_string(&path), path[0] == "sweep");
        out.push(Override {
            path,
            origin: name,
            value,
        });
    }
    Ok(out)
}

/// The error for `LAB_<SECTION>__...` naming no section, with the variable
/// spelled with the nearest section.
fn unknown_section(name: &str, segs: &[String], file: &Path) -> SpecError {
    let suggestion = super::values::nearest(&segs[0], SECTIONS.iter().copied()).map(|s| {
        let rest = name["LAB_".len()..].split_once("__").map_or("", |(_, r)| r);
        format!("LAB_{}__{rest}", s.to_ascii_uppercase())
    });
    SpecError {
        file: file.to_path_buf(),
        line: None,
        key: Some(segs.join(".")),
        message: format!(
            "environment variable `{name}`: unknown section `{}`; valid sections: {}",
            segs[0],
            SECTIONS.join(", ")
        ),
        suggestion,
    }
}

/// `--set key=value` flags; `sweep.<dotted key>` names one axis.
pub(crate) fn set_overrides(
    flags: &[String],
    schema: &Schema,
    file: &Path,
) -> Result<Vec<Override>, SpecError> {
    let mut out = Vec::new();
    for flag in flags {
        let err = |message: String| SpecError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: format!("in `--set {flag}`: {message}"),
            suggestion: None,
        };
        let (key, raw) = flag
            .split_once('=')
            .ok_or_else(|| err("expected key=value, e.g. train.lr=0.01".into()))?;
        let key = key.trim();
        let path: Vec<String> = match key.strip_prefix("sweep.") {
            Some(axis) => vec!["sweep".into(), axis.to_string()],
            None => key.split('.').map(String::from).collect(),
        };
        if path.iter().any(|s| s.is_empty()) {
            return Err(err(format!("`{key}` is not a dotted key like train.lr")));
        }
        let value = parse_value(raw.trim(), schema.is_string(&path), path[0] == "sweep");
        out.push(Override {
            path,
            origin: format!("--set {flag}"),
            value,
        });
    }
    Ok(out)
}

/// A table holding `overrides`, later ones winning.
pub(crate) fn to_table(overrides: &[Override]) -> toml::Table {
    let mut root = toml::Table::new();
    for o in overrides {
        let (last, parents) = o.path.split_last().expect("paths are never empty");
        let mut table = &mut root;
        for seg in parents {
            let entry = table
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            table = entry.as_table_mut().expect("just made a table");
        }
        table.insert(last.clone(), o.value.clone());
    }
    root
}

/// An override's text as a TOML value, falling back to the text itself.
/// Axes also accept bare words: `[lstm, gru]`.
fn parse_value(raw: &str, is_string: bool, is_axis: bool) -> toml::Value {
    if let Some(v) = parse_toml(raw) {
        if !is_string || v.is_str() {
            return v;
        }
    }
    if is_axis {
        if let Some(inner) = raw
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
        {
            let items = inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse_toml(s).unwrap_or_else(|| toml::Value::String(s.to_string())))
                .collect();
            return toml::Value::Array(items);
        }
    }
    toml::Value::String(raw.to_string())
}

fn parse_toml(raw: &str) -> Option<toml::Value> {
    let mut table: toml::Table = toml::from_str(&format!("v = {raw}")).ok()?;
    table.remove("v")
}

/// Whether one path is a prefix of the other: a value set at either affects both.
fn related(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Whether the file sets `path`, something inside it, or a plain value where a
/// table on the way to it was expected.
fn table_has(table: &toml::Table, path: &[String]) -> bool {
    let mut value: Option<&toml::Value> = None;
    let mut table = Some(table);
    for seg in path {
        let next = match (table, value) {
            (Some(t), _) => t.get(seg),
            (None, Some(toml::Value::Array(a))) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            (None, Some(_)) => return true,
            (None, None) => None,
        };
        match next {
            None => return false,
            Some(v) => {
                table = v.as_table();
                value = Some(v);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_values() {
        assert_eq!(parse_value("0.01", false, false), toml::Value::Float(0.01));
        assert_eq!(
            parse_value("gru", false, false),
            toml::Value::String("gru".into())
        );
        assert_eq!(
            parse_value("2024", true, false),
            toml::Value::String("2024".into())
        );
        assert_eq!(
            parse_value("[lstm, gru]", false, true),
            toml::Value::Array(vec!["lstm".into(), "gru".into()])
        );
        assert_eq!(
            parse_value("[64,128]", false, true),
            toml::Value::Array(vec![64.into(), 128.into()])
        );
    }

    #[test]
    fn env_takes_only_section_variables() {
        let env = [
            ("LAB_DB", "x"),
            ("LAB_TRAIN__LR", "0.5"),
            ("LAB_SWEEP__MODEL__HIDDEN", "[1,2]"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let o = env_overrides(env, &Schema::new(), Path::new("s.toml")).unwrap();
        let paths: Vec<String> = o.iter().map(|o| o.path.join("|")).collect();
        assert_eq!(paths, ["sweep|model.hidden", "train|lr"]);
    }

    #[test]
    fn env_section_typos_are_refused_with_the_variable_to_set() {
        let env = [("LAB_MODLE__HIDDEN".to_string(), "64".to_string())];
        let e = env_overrides(env, &Schema::new(), Path::new("s.toml")).unwrap_err();
        assert!(e.message.contains("LAB_MODLE__HIDDEN"), "{e}");
        assert!(e.message.contains("unknown section `modle`"), "{e}");
        assert_eq!(e.suggestion.as_deref(), Some("LAB_MODEL__HIDDEN"));
    }
}
