//! `lab data SPEC`: what lab reads from a spec's data, before any training: rows read,
//! kept and skipped (with reasons and lines), merges, lossy fields, the detected
//! dialect, classes per split, token lengths, vocabulary coverage and example rows.
//! `lab prepare --show N` prints the same view; `lab show TRIAL` a short form of it.

use super::out;
use super::spec_args::SpecArgs;
use crate::data::report::{examples, Example};
use crate::data::{self, DataReport};
use crate::report::{render_rows, Format};
use crate::runner::RunOptions;
use crate::spec::{self, LoadedSpec, TrialConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    spec: SpecArgs,
    /// Example rows to show: the first N kept rows, cleaned tokens beside the raw text
    /// (0: none, and no extra read of the file).
    #[arg(long, value_name = "N", default_value_t = 5)]
    show: usize,
    /// How to print each dataset's report.
    #[arg(long, value_enum, default_value_t = DataFormat::Table)]
    format: DataFormat,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Read the file again even when the cache holds the dataset.
    #[arg(long)]
    rebuild: bool,
}

/// `lab data`'s output: a view for people, or one JSON object per dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum DataFormat {
    /// Lines and small tables per dataset.
    Table,
    /// One JSON object per line per dataset: `sweep`, `report` (as the store keeps
    /// it with each trial) and `examples`.
    Json,
}

/// Prepare (through the cache) each distinct dataset of the spec and print its report.
pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let loaded = args.spec.load()?;
    let cache = RunOptions::new(db.to_path_buf()).root().join("cache");
    let json = args.json || args.format == DataFormat::Json;
    for (sweep, trial) in distinct(&loaded)? {
        let warmed = data::warm_cache(
            &trial.data,
            &trial.preprocess,
            &loaded.base_dir,
            &cache,
            args.rebuild,
        )?;
        let examples = example_rows(&loaded, &trial, &cache, args.show)?;
        if json {
            out::line(view_json(&sweep, &warmed.report, &examples))?;
        } else {
            out::text(view_text(&sweep, &warmed.report, &examples))?;
        }
    }
    Ok(super::exit::OK)
}

/// The swept `data.*` / `preprocess.*` values that tell datasets apart.
pub(super) type Sweep = Vec<(String, String)>;

/// One trial config per distinct dataset of the spec's grid (trials differing only
/// in model/train settings or `balance` share one), with the swept values naming it.
///
/// # Errors
/// The grid does not expand, or a config does not serialise.
pub(super) fn distinct(loaded: &LoadedSpec) -> anyhow::Result<Vec<(Sweep, TrialConfig)>> {
    let axes: Vec<String> = loaded
        .spec
        .sweep
        .keys()
        .filter(|k| {
            k.starts_with("data.")
                || (k.starts_with("preprocess.") && k.as_str() != "preprocess.balance")
        })
        .cloned()
        .collect();
    let mut found = BTreeMap::new();
    for trial in spec::expand(loaded)? {
        let id = data::settings_id(&trial.data, &trial.preprocess, &loaded.base_dir)?;
        found
            .entry(id)
            .or_insert_with(|| (spec::swept_values(&trial, &axes), trial));
    }
    Ok(found.into_values().collect())
}

/// The first `n` kept rows of the trial's data, encoded with its dataset's vocabulary.
pub(super) fn example_rows(
    loaded: &LoadedSpec,
    trial: &TrialConfig,
    cache: &Path,
    n: usize,
) -> anyhow::Result<Vec<Example>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let (d, p, base) = (&trial.data, &trial.preprocess, &loaded.base_dir);
    let dataset = data::prepare(d, p, base, Some(cache))?;
    examples(d, p, base, &dataset.vocab, n)
}

/// One dataset as JSON: `{"sweep": {...}, "report": {...}, "examples": [...]}`.
pub(super) fn view_json(sweep: &Sweep, report: &DataReport, examples: &[Example]) -> Value {
    let sweep: serde_json::Map<String, Value> = sweep
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({"sweep": sweep, "report": report, "examples": examples})
}

/// One dataset for people: the read, the rows, the classes, lengths, vocabulary and
/// examples, ending in a blank line.
pub(super) fn view_text(sweep: &Sweep, r: &DataReport, examples: &[Example]) -> String {
    let mut out = r.file.clone();
    if !sweep.is_empty() {
        let values: Vec<String> = sweep.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("  ({})", values.join(" ")));
    }
    out.push('\n');
    for (key, value) in notes_lines(&r.notes, r) {
        out.push_str(&format!("  {key:<9} {value}\n"));
    }
    out.push_str(&classes_table(r));
    out.push('\n');
    let l = &r.lengths;
    let cut = l.truncated;
    out.push_str(&format!(
        "  lengths   tokens per row before max_len (cleaned, stop words dropped; {} rows): \
         p50 {}, p90 {}, p95 {}, p99 {}, max {}, mean {:.1}\n",
        l.rows, l.p50, l.p90, l.p95, l.p99, l.max, l.mean
    ));
    out.push_str(&format!(
        "  max_len   {} cuts {} row(s) (train {}, valid {}, test {})\n",
        l.max_len,
        cut.train + cut.valid + cut.test,
        cut.train,
        cut.valid,
        cut.test
    ));
    let v = &r.vocab;
    let pct = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{:.1}%", c * 100.0));
    out.push_str(&format!(
        "  vocab     {} entries; in the vocabulary: {} of train tokens, {} of valid, {} of test\n",
        v.size,
        pct(v.coverage.train),
        pct(v.coverage.valid),
        pct(v.coverage.test)
    ));
    if !examples.is_empty() {
        out.push_str(&examples_table(examples));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `(title, text)` lines for what reading noticed, rendered from the notes' JSON
/// whatever keys it has: the detected dialect, rows, and every tally, map of tallies
/// or list of merges under its own name.
pub(super) fn notes_lines(notes: &Value, r: &DataReport) -> Vec<(String, String)> {
    let mut lines = vec![("rows".to_string(), rows_text(r))];
    if let Some(d) = notes.get("detected") {
        lines.insert(0, ("read".into(), detected_text(d)));
    }
    let Some(obj) = notes.as_object() else {
        return lines;
    };
    for (key, value) in obj.iter().filter(|(k, _)| k.as_str() != "detected") {
        if let Some(t) = tally_text(value) {
            lines.push((key.clone(), t));
        } else if let Some(map) = value.as_object() {
            for (reason, t) in map {
                if let Some(t) = tally_text(t) {
                    lines.push((key.clone(), format!("{t}: {reason}")));
                }
            }
        } else if let Some(items) = value.as_array() {
            lines.extend(items.iter().map(|m| (key.clone(), merge_text(m))));
        } else if let Some(text) = value.as_str() {
            lines.push((key.clone(), text.to_string()));
        } else if !value.is_null() {
            lines.push((key.clone(), value.to_string()));
        }
    }
    lines
}

fn rows_text(r: &DataReport) -> String {
    format!(
        "{} read, {} kept, {} skipped",
        r.rows.read, r.rows.kept, r.rows.skipped
    )
}

/// "csv, delimiter ',', quoting rfc4180, UTF-8, BOM": strings as `key value` (format
/// and encoding bare), true flags by name, false flags and nulls left out.
pub(super) fn detected_text(d: &Value) -> String {
    let Some(obj) = d.as_object() else {
        return d.to_string();
    };
    // Format and encoding first, bare; then the rest in key order.
    let mut parts: Vec<String> = ["format", "encoding"]
        .iter()
        .filter_map(|k| obj.get(*k).and_then(Value::as_str).map(String::from))
        .collect();
    for (k, v) in obj {
        match v {
            Value::String(_) if k == "format" || k == "encoding" => {}
            Value::String(s) if k == "delimiter" => parts.push(format!("{k} {s:?}")),
            Value::String(s) => parts.push(format!("{k} {s}")),
            Value::Bool(true) => parts.push(k.replace('_', " ")),
            Value::Bool(false) | Value::Null => {}
            other => parts.push(format!("{k} {other}")),
        }
    }
    parts.join(", ")
}

/// A `Tally` (`{count, first_lines}`) with a count: "3 (lines 4, 9, 12)".
fn tally_text(v: &Value) -> Option<String> {
    let count = v.get("count")?.as_u64()?;
    let lines: Vec<String> = v
        .get("first_lines")?
        .as_array()?
        .iter()
        .map(Value::to_string)
        .collect();
    if count == 0 {
        return None;
    }
    let more = if count as usize > lines.len() {
        ", ..."
    } else {
        ""
    };
    let word = if count == 1 { "line" } else { "lines" };
    Some(format!("{count} ({word} {}{more})", lines.join(", ")))
}

/// A `LabelMerge`: "positive <- Positive (3), POSITIVE (1) [case]".
fn merge_text(m: &Value) -> String {
    let (Some(class), Some(variants)) = (m.get("class"), m.get("variants")) else {
        return m.to_string();
    };
    let variants: Vec<String> = variants
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| match (v.get(0), v.get(1)) {
            (Some(Value::String(raw)), Some(n)) => format!("{raw:?} ({n})"),
            _ => v.to_string(),
        })
        .collect();
    let rule = m.get("rule").and_then(Value::as_str).unwrap_or("?");
    let class = class
        .as_str()
        .map_or(class.to_string(), |c| format!("{c:?}"));
    format!("{class} <- {} [{rule}]", variants.join(", "))
}

fn classes_table(r: &DataReport) -> String {
    let header: Vec<String> = ["class", "train", "valid", "test", "all"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<String>> = r
        .classes
        .iter()
        .map(|c| {
            let [a, b, t] = c.rows.to_array();
            [
                c.class.clone(),
                a.to_string(),
                b.to_string(),
                t.to_string(),
                (a + b + t).to_string(),
            ]
            .to_vec()
        })
        .collect();
    render_rows(&header, &rows, Format::Table)
}

fn examples_table(examples: &[Example]) -> String {
    let header: Vec<String> = ["line", "class", "split", "text", "tokens (cleaned)"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<String>> = examples
        .iter()
        .map(|e| {
            let unknown = if e.unknown > 0 {
                format!(", {} unknown", e.unknown)
            } else {
                String::new()
            };
            vec![
                e.line.to_string(),
                e.class.clone(),
                e.split.clone(),
                clip(&e.text, 60),
                format!(
                    "{} ({}{unknown})",
                    clip(&e.tokens.join(" "), 60),
                    e.tokens.len()
                ),
            ]
        })
        .collect();
    render_rows(&header, &rows, Format::Table)
}

/// `text` on one line, at most `n` characters (an ellipsis where cut).
fn clip(text: &str, n: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= n {
        return one_line;
    }
    let cut: String = one_line.chars().take(n.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// `lab show`'s short form of a stored report: file, read, rows, reasons, merges,
/// classes per split.
pub(super) fn summary(report: &Value) -> String {
    let Ok(r) = serde_json::from_value::<DataReport>(report.clone()) else {
        return format!("  recorded, but not in a form this lab reads: {report}\n");
    };
    let mut out = format!("  file      {}\n", r.file);
    for (key, value) in notes_lines(&r.notes, &r) {
        out.push_str(&format!("  {key:<9} {value}\n"));
    }
    let classes: Vec<String> = r
        .classes
        .iter()
        .map(|c| {
            format!(
                "{} {}/{}/{}",
                c.class, c.rows.train, c.rows.valid, c.rows.test
            )
        })
        .collect();
    out.push_str(&format!(
        "  classes   {} (train/valid/test rows)\n",
        classes.join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_render_whatever_reading_recorded() {
        let notes = json!({
            "detected": {"format": "csv", "encoding": "UTF-16LE", "bom": true,
                         "gzip": false, "delimiter": "\t", "quoting": null},
            "skipped": {"empty label": {"count": 7, "first_lines": [2, 3, 4, 5, 6]}},
            "lossy": {"count": 1, "first_lines": [9]},
            "merged": [{"class": "positive", "variants": [["Positive", 3], ["POSITIVE", 1]],
                        "rule": "case"}],
            "sampled": {"count": 0, "first_lines": []},
            "sorted_hint": "the file looks sorted",
        });
        let r = DataReport::default();
        let lines: Vec<String> = notes_lines(&notes, &r)
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        assert_eq!(
            lines,
            [
                "read: csv, UTF-16LE, bom, delimiter \"\\t\"",
                "rows: 0 read, 0 kept, 0 skipped",
                "lossy: 1 (line 9)",
                "merged: \"positive\" <- \"Positive\" (3), \"POSITIVE\" (1) [case]",
                "skipped: 7 (lines 2, 3, 4, 5, 6, ...): empty label",
                "sorted_hint: the file looks sorted",
            ]
        );
    }

    #[test]
    fn clip_keeps_one_line_and_marks_the_cut() {
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abcdefgh", 5), "abcd…");
    }
}
