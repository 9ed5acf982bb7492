//! Trial configs as flat dotted keys, so that sweeps over nested sections can be
//! compared key by key.

use serde_json::Value;
use std::collections::BTreeMap;

/// Flatten a config JSON object to `dotted.path -> value text`. Objects recurse;
/// arrays and scalars are leaves. Strings are shown without quotes.
pub fn flatten_config(config: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(config, String::new(), &mut out);
    out
}

fn walk(value: &Value, prefix: String, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                walk(child, path, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix, s.clone());
        }
        other => {
            out.insert(prefix, other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_become_dotted_keys() {
        let v: Value = serde_json::json!({
            "seed": 13,
            "model": {"cell": "gru", "hidden": 128, "bidirectional": true},
            "train": {"lr": 0.001, "early_stopping": {"patience": 2}},
            "data": {"columns": ["a", "b"], "empty": {}}
        });
        let flat = flatten_config(&v);
        assert_eq!(flat["seed"], "13");
        assert_eq!(flat["model.cell"], "gru");
        assert_eq!(flat["model.bidirectional"], "true");
        assert_eq!(flat["train.lr"], "0.001");
        assert_eq!(flat["train.early_stopping.patience"], "2");
        assert_eq!(flat["data.columns"], "[\"a\",\"b\"]");
        assert_eq!(flat["data.empty"], "{}");
        assert_eq!(flat.len(), 8);
    }
}
