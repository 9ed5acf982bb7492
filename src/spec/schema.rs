//! The valid keys of a spec, derived from the typed sections (so the two cannot
//! drift apart), and "did you mean" suggestions for keys that are not valid.

use super::config::{EarlyStopping, EmbeddingsSection, Mode, Monitor, Spec};
use super::values::nearest;
use super::Problem;
use serde_json::Value;

/// Tables whose keys are the user's own (raw labels), not schema keys.
const FREE_MAPS: &[&str] = &["data.label_map"];
/// Sections whose scalar fields may be sweep axes; `experiment` is not one.
const SWEEPABLE_SECTIONS: &[&str] = &["data", "preprocess", "model", "train"];

/// The tree of valid keys, with a sample value of the right type at each leaf.
pub(crate) struct Schema {
    root: Value,
}

impl Schema {
    pub(crate) fn new() -> Self {
        // Optional fields are filled in so that their keys appear in the tree.
        let mut full = Spec::default();
        full.data.delimiter = Some(",".into());
        full.data.limit = Some(1);
        full.data.on_bad_row = Some(Default::default());
        full.data.on_invalid_utf8 = Some(Default::default());
        full.data.quoting = Some(super::config::Quoting::Rfc4180);
        full.data.encoding = Some("utf-8".into());
        full.data.label_normalize = Some(super::config::LabelNormalize::Both);
        full.data.sample = Some(super::config::Sample::Rows(1));
        full.model.embeddings = Some(EmbeddingsSection {
            vocab: Some("words.txt".into()),
            ..Default::default()
        });
        // Serialised only when true.
        full.train.sparse_embedding = true;
        full.train.early_stopping = Some(EarlyStopping {
            monitor: Monitor::ValidLoss,
            mode: Mode::Min,
            patience: 1,
        });
        full.search = Some(super::config::SearchSection {
            strategy: Default::default(),
            trials: Some(1),
            objective: super::config::Objective {
                metric: Monitor::ValidMacroF1,
                mode: Some(Mode::Max),
            },
            seed: 0,
            startup_trials: Some(1),
            space: Default::default(),
            pruner: Some(super::config::PrunerSection {
                kind: super::config::PrunerKind::Asha,
                min_epochs: 1,
                reduction: 3,
                startup_trials: 5,
            }),
        });
        let root = serde_json::to_value(&full).expect("spec types serialize to JSON");
        Self { root }
    }

    /// The schema node at `path`; sweep axes and free maps have no children.
    pub(crate) fn node(&self, path: &[String]) -> Option<&Value> {
        let mut node = &self.root;
        for seg in path {
            node = node.as_object()?.get(seg)?;
        }
        Some(node)
    }

    /// Whether the value at `path` is a string, so that an unquoted override
    /// like `--set experiment.name=2024` stays text.
    pub(crate) fn is_string(&self, path: &[String]) -> bool {
        matches!(self.node(path), Some(Value::String(_)))
    }

    /// Dotted paths of every scalar field that may be a sweep axis.
    pub(crate) fn sweepable(&self) -> Vec<String> {
        let mut out = Vec::new();
        for section in SWEEPABLE_SECTIONS {
            if let Some(node) = self.root.get(section) {
                collect_scalars(node, section.to_string(), &mut out);
            }
        }
        out
    }

    /// Every dotted key path in the schema, tables included.
    fn all_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(map) = self.root.as_object() {
            for (k, v) in map {
                collect_all(v, k.clone(), &mut out);
            }
        }
        out
    }

    /// Rejects the first key of `table` that the spec does not have.
    /// Type mismatches are left to deserialization, which names the expected type.
    pub(crate) fn check_keys(&self, table: &toml::Table) -> Result<(), Problem> {
        self.check_table(table, &mut Vec::new())
    }

    fn check_table(&self, table: &toml::Table, path: &mut Vec<String>) -> Result<(), Problem> {
        for (key, value) in table {
            path.push(key.clone());
            match self.node(path) {
                None => return Err(self.unknown_key(path)),
                Some(Value::Object(_)) if !is_opaque(path) => {
                    if let toml::Value::Table(t) = value {
                        self.check_table(t, path)?;
                    }
                }
                Some(_) => {}
            }
            path.pop();
        }
        Ok(())
    }

    fn unknown_key(&self, path: &[String]) -> Problem {
        let (parent, name) = path.split_at(path.len() - 1);
        let name = &name[0];
        let siblings: Vec<String> = self
            .node(parent)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let message = if parent.is_empty() {
            format!("unknown section; valid sections: {}", siblings.join(", "))
        } else {
            format!(
                "unknown key in [{}]; valid keys: {}",
                parent.join("."),
                siblings.join(", ")
            )
        };
        Problem::new(path.to_vec(), message).suggest(self.suggest_key(parent, name))
    }

    /// The key the user most likely meant: the same name in another table, else
    /// the nearest sibling, else the nearest key anywhere.
    fn suggest_key(&self, parent: &[String], name: &str) -> Option<String> {
        let all = self.all_paths();
        if let Some(p) = all.iter().find(|p| p.rsplit('.').next() == Some(name)) {
            return Some(p.clone());
        }
        let prefix = |k: &str| {
            if parent.is_empty() {
                k.to_string()
            } else {
                format!("{}.{k}", parent.join("."))
            }
        };
        if let Some(Value::Object(siblings)) = self.node(parent) {
            if let Some(k) = nearest(name, siblings.keys().map(String::as_str)) {
                return Some(prefix(k));
            }
        }
        let leaf = |p: &String| p.rsplit('.').next().unwrap_or(p).to_string();
        let leaves: Vec<(String, &String)> = all.iter().map(|p| (leaf(p), p)).collect();
        nearest(name, leaves.iter().map(|(l, _)| l.as_str()))
            .and_then(|best| leaves.iter().find(|(l, _)| l == best))
            .map(|(_, p)| (*p).clone())
    }

    /// Why `key` cannot be a sweep axis, if it cannot.
    pub(crate) fn check_axis(&self, key: &str) -> Result<(), (String, Option<String>)> {
        let sweepable = self.sweepable();
        if sweepable.iter().any(|k| k == key) {
            return Ok(());
        }
        let path: Vec<String> = key.split('.').map(String::from).collect();
        if path[0] == "experiment" {
            return Err((
                "experiment settings cannot be swept; list seeds in experiment.seeds".into(),
                None,
            ));
        }
        if let Some(Value::Object(_)) = self.node(&path) {
            let example = sweepable.iter().find(|k| k.starts_with(&format!("{key}.")));
            return Err((
                format!("`{key}` is a table, not a single value; sweep one of its fields"),
                example.cloned(),
            ));
        }
        let leaf = path.last().map(String::as_str).unwrap_or(key);
        let same_leaf = sweepable
            .iter()
            .find(|k| k.rsplit('.').next() == Some(leaf))
            .cloned();
        let suggestion = same_leaf
            .or_else(|| nearest(key, sweepable.iter().map(String::as_str)).map(String::from));
        Err((
            "not a sweepable key; an axis must be a dotted path to a field of data, preprocess, model or train".into(),
            suggestion,
        ))
    }
}

/// Tables whose contents the schema does not describe.
fn is_opaque(path: &[String]) -> bool {
    let dotted = path.join(".");
    FREE_MAPS.contains(&dotted.as_str()) || dotted == "sweep" || dotted == "search.space"
}

fn collect_scalars(node: &Value, path: String, out: &mut Vec<String>) {
    match node {
        Value::Object(map) if !FREE_MAPS.contains(&path.as_str()) => {
            for (k, v) in map {
                collect_scalars(v, format!("{path}.{k}"), out);
            }
        }
        Value::Object(_) | Value::Array(_) => {}
        _ => out.push(path),
    }
}

fn collect_all(node: &Value, path: String, out: &mut Vec<String>) {
    if let Value::Object(map) = node {
        if !FREE_MAPS.contains(&path.as_str()) {
            for (k, v) in map {
                collect_all(v, format!("{path}.{k}"), out);
            }
        }
    }
    out.push(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweepable_keys_are_scalar_fields_outside_experiment() {
        let s = Schema::new().sweepable();
        for k in [
            "model.cell",
            "train.lr",
            "preprocess.stopwords",
            "train.early_stopping.patience",
            "data.split.train",
            "data.limit",
        ] {
            assert!(s.contains(&k.to_string()), "{k} missing from {s:?}");
        }
        for k in [
            "experiment.seeds",
            "model",
            "data.label_map",
            "train.early_stopping",
        ] {
            assert!(!s.contains(&k.to_string()), "{k} should not be sweepable");
        }
    }

    #[test]
    fn suggestions() {
        let s = Schema::new();
        let p = |x: &str| x.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            s.suggest_key(&p("model"), "hiden").as_deref(),
            Some("model.hidden")
        );
        assert_eq!(s.suggest_key(&[], "modle").as_deref(), Some("model"));
        assert_eq!(
            s.suggest_key(&p("train"), "hidden").as_deref(),
            Some("model.hidden")
        );
        assert_eq!(s.suggest_key(&p("train"), "zzzzzz"), None);
    }
}
