//! `lab show TRIAL`: one trial (with what it was trained on: its data report,
//! and where and how it ran: its provenance), its most-attended words, or its
//! most confidently wrong test texts.

use super::out;
use crate::inference::attention::{most_attended, AttendedReview};
use crate::inference::errors::{most_confidently_wrong, ConfidentErrors};
use crate::report::{self, Format};
use crate::store::Store;
use serde_json::Value;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Trial id (as listed by `lab compare`).
    trial: i64,
    /// Instead of the trial view: the most-attended words of N test reviews, the
    /// classes taken in turn (a model trained with pooling = "attention").
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3")]
    attention: Option<usize>,
    /// With --attention: how many words to list per review.
    #[arg(long, default_value_t = 8, requires = "attention")]
    words: usize,
    /// Instead of the trial view: the N test texts the trial got wrong with the
    /// highest probability on its prediction (from its recorded predictions).
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "10",
        conflicts_with = "attention"
    )]
    errors: Option<usize>,
    /// How to print the trial (CSV: each table after a `# title` line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    if let Some(n) = args.errors {
        let errors = most_confidently_wrong(&store, db, args.trial, n)?;
        out::line(render_errors(&errors, args.format)?)?;
        return Ok(super::exit::OK);
    }
    match args.attention {
        Some(n) => {
            let reviews = most_attended(&store, db, args.trial, n, args.words)?;
            out::line(render_attention(&reviews, args.format)?)?;
        }
        None => {
            let trial = report::render_trial(&store, args.trial, args.format)?;
            let blocks = [
                data_block(store.data_report(args.trial)?.as_deref()),
                provenance_block(
                    store.provenance(args.trial)?.as_deref(),
                    store.test_split(args.trial)?,
                ),
            ];
            out::line(with_blocks(trial, &blocks, args.format)?)?;
        }
    }
    Ok(super::exit::OK)
}

/// A short `key value` block after the trial's view, and what it adds to JSON.
struct Block {
    title: &'static str,
    /// Its lines, each `  key value`.
    text: String,
    /// The keys it adds to the JSON view.
    json: Vec<(&'static str, Value)>,
}

/// The stored JSON text as a value: null when absent, the text itself when it
/// is not JSON.
fn parsed(text: Option<&str>) -> Value {
    text.map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.into())))
        .unwrap_or_default()
}

/// The data report: a `data_report` key in JSON (null when none was recorded).
fn data_block(data: Option<&str>) -> Block {
    let report = parsed(data);
    let text = match &report {
        Value::Null => {
            "  not recorded (a trial that never started, or one run by an older lab)\n".into()
        }
        r => super::data::summary(r),
    };
    Block {
        title: "data",
        text,
        json: vec![("data_report", report)],
    }
}

/// The provenance keys in the order shown; keys a newer lab adds come after.
const PROVENANCE_ORDER: [&str; 17] = [
    "lab_version",
    "cuda",
    "build_features",
    "cpu_features",
    "git_commit",
    "git_dirty",
    "data_file",
    "data_sha256",
    "host",
    "cpu_model",
    "threads",
    "device",
    "os",
    "arch",
    "wall_seconds",
    "cpu_seconds",
    "test_split",
];

/// Where and how the trial ran, and the fingerprint of the test split it was
/// scored on: `provenance` and `test_split` keys in JSON (null when not recorded).
fn provenance_block(provenance: Option<&str>, test_split: Option<String>) -> Block {
    let provenance = parsed(provenance);
    let test_split = test_split.map(Value::String).unwrap_or_default();
    let text = match &provenance {
        Value::Object(fields) => {
            let mut fields = fields.clone();
            fields.insert("test_split".into(), test_split.clone());
            let known = PROVENANCE_ORDER.iter().map(|k| k.to_string());
            let others = fields
                .keys()
                .filter(|k| !PROVENANCE_ORDER.contains(&k.as_str()));
            let keys: Vec<String> = known.chain(others.cloned().collect::<Vec<_>>()).collect();
            keys.iter()
                .filter_map(|k| Some(format!("  {k:<14} {}\n", shown(fields.get(k)?))))
                .collect()
        }
        Value::Null => {
            "  not recorded (a trial that never started, or one run by an older lab)\n".into()
        }
        other => format!("  recorded, but not in a form this lab reads: {other}\n"),
    };
    Block {
        title: "provenance",
        text,
        json: vec![("provenance", provenance), ("test_split", test_split)],
    }
}

/// A provenance value as shown: null as `-`, lists comma-separated, seconds
/// to two decimals.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

/// The trial's view and its blocks: their keys added to JSON, each as a
/// titled block otherwise.
fn with_blocks(trial: String, blocks: &[Block], format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        let mut view: Value = serde_json::from_str(&trial)?;
        if let Some(obj) = view.as_object_mut() {
            for (key, value) in blocks.iter().flat_map(|b| &b.json) {
                obj.insert(key.to_string(), value.clone());
            }
        }
        return Ok(serde_json::to_string_pretty(&view)?);
    }
    let mut out = trial;
    for b in blocks {
        let (title, text) = (b.title, b.text.trim_end());
        out.push_str(&match format {
            Format::Markdown => format!("\n\n## {title}\n\n```text\n{text}\n```"),
            Format::Csv => format!("\n\n# {title}\n{}", csv_block(text)),
            _ => format!("\n\n{title}\n{text}"),
        });
    }
    Ok(out)
}

/// The data block as `key,value` CSV rows.
fn csv_block(block: &str) -> String {
    let header = ["key".to_string(), "value".to_string()];
    let rows: Vec<Vec<String>> = block
        .lines()
        .map(|l| {
            let l = l.trim_start();
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            vec![k.to_string(), v.trim().to_string()]
        })
        .collect();
    report::render_rows(&header, &rows, Format::Csv)
}

fn render_attention(reviews: &[AttendedReview], format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(reviews)?);
    }
    let header: Vec<String> = [
        "test row",
        "label",
        "predicted",
        "tokens",
        "most-attended words",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = reviews
        .iter()
        .map(|r| {
            let words: Vec<String> = r.top.iter().map(|(w, a)| format!("{w} {a:.3}")).collect();
            vec![
                r.row.to_string(),
                r.label.clone(),
                format!("{} ({:.2})", r.predicted, r.probability),
                r.tokens.to_string(),
                words.join(", "),
            ]
        })
        .collect();
    Ok(report::render_rows(&header, &rows, format))
}

/// Table and markdown cells show this many characters of a text.
const TEXT_SHOWN: usize = 100;

/// A text on one line (line breaks and tabs as spaces), cut at `TEXT_SHOWN`
/// characters with an ellipsis.
fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(TEXT_SHOWN) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

/// The confidently wrong rows: the whole struct in JSON, full texts in CSV,
/// one-line texts cut at `TEXT_SHOWN` characters under a caption otherwise.
fn render_errors(errors: &ConfidentErrors, format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(errors)?);
    }
    let header: Vec<String> = ["data row", "label", "predicted", "probability", "text"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let short = format != Format::Csv;
    let rows: Vec<Vec<String>> = errors
        .rows
        .iter()
        .map(|r| {
            vec![
                r.data_row.to_string(),
                r.label.clone(),
                r.predicted.clone(),
                format!("{:.3}", r.probability),
                if short {
                    one_line(&r.text)
                } else {
                    r.text.clone()
                },
            ]
        })
        .collect();
    let table = report::render_rows(&header, &rows, format);
    if !short {
        return Ok(table);
    }
    Ok(format!(
        "trial {}: {} of {} test rows wrong; the {} most confident (data rows of {})\n\n{table}",
        errors.trial,
        errors.wrong,
        errors.test_rows,
        errors.rows.len(),
        errors.data_file
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_one_line() {
        assert_eq!(one_line("a\tb\nc"), "a b c");
        let long = "é".repeat(150);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), TEXT_SHOWN + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line(&"x".repeat(TEXT_SHOWN)), "x".repeat(TEXT_SHOWN));
    }

    #[test]
    fn provenance_shows_nulls_lists_and_seconds() {
        let block = provenance_block(
            Some(
                r#"{"lab_version":"0.1.0","git_commit":null,"cpu_features":["avx2","fma"],"wall_seconds":1.23456,"threads":4,"new_key":true}"#,
            ),
            Some("abc".into()),
        );
        let lines: Vec<&str> = block.text.lines().map(str::trim).collect();
        assert_eq!(
            lines,
            [
                "lab_version    0.1.0",
                "cpu_features   avx2, fma",
                "git_commit     -",
                "threads        4",
                "wall_seconds   1.23",
                "test_split     abc",
                "new_key        true",
            ]
        );
        assert!(provenance_block(None, None).text.contains("not recorded"));
    }
}
