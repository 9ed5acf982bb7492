//! Identities: a trial's is the hash of its resolved config, a spec's the hash of its text.

use super::config::TrialConfig;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Stable identity of a trial: hex sha256 of its canonical JSON (keys sorted),
/// with `train.device` blanked so the same trial on another device is the same trial.
pub fn config_hash(config: &TrialConfig) -> String {
    let mut json = serde_json::to_value(config).expect("trial configs serialize to JSON");
    if let Some(train) = json.get_mut("train").and_then(Value::as_object_mut) {
        train.insert("device".into(), Value::String(String::new()));
    }
    let mut canonical = String::new();
    write_canonical(&json, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Hex sha256 of a spec file's text as written.
pub fn spec_hash(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

/// JSON with object keys sorted, whatever map type serde_json was built with.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
