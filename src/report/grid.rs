//! One header plus rows of text, printed as a boxed table, markdown, CSV or JSON.

use super::Format;
use serde_json::{Map, Value};
use tabled::builder::Builder;
use tabled::settings::Style;

/// Print `header` and `rows` in `format`. JSON is an array with one object per
/// row, keyed by the header's names, every value the cell's text (a row shorter
/// than the header leaves its last keys out; cells past the header are dropped).
pub fn grid(header: &[String], rows: &[Vec<String>], format: Format) -> String {
    match format {
        Format::Table | Format::Markdown => boxed(header, rows, format == Format::Markdown),
        Format::Csv => csv_text(header, rows),
        Format::Json => json_text(header, rows),
    }
}

fn boxed(header: &[String], rows: &[Vec<String>], markdown: bool) -> String {
    let mut builder = Builder::default();
    let cell = |s: &String| {
        if markdown {
            s.replace('|', "\\|")
        } else {
            s.clone()
        }
    };
    builder.push_record(header.iter().map(cell));
    for row in rows {
        builder.push_record(row.iter().map(cell));
    }
    let mut table = builder.build();
    if markdown {
        table.with(Style::markdown());
    } else {
        table.with(Style::rounded());
    }
    table.to_string()
}

fn csv_text(header: &[String], rows: &[Vec<String>]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(header);
    for row in rows {
        let _ = writer.write_record(row);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

fn json_text(header: &[String], rows: &[Vec<String>]) -> String {
    let objects: Vec<Value> = rows
        .iter()
        .map(|row| {
            let object: Map<String, Value> = header
                .iter()
                .zip(row)
                .map(|(key, cell)| (key.clone(), Value::String(cell.clone())))
                .collect();
            Value::Object(object)
        })
        .collect();
    // Strings and objects always serialise.
    serde_json::to_string_pretty(&Value::Array(objects)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<String>, Vec<Vec<String>>) {
        let header = vec!["task".to_string(), "note".to_string()];
        let rows = vec![
            vec!["0".to_string(), "a, \"quoted\" | note".to_string()],
            vec!["1".to_string(), String::new()],
        ];
        (header, rows)
    }

    #[test]
    fn json_is_an_array_of_objects_keyed_by_the_header() {
        let (header, rows) = sample();
        let value: Value = serde_json::from_str(&grid(&header, &rows, Format::Json)).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"task": "0", "note": "a, \"quoted\" | note"},
                {"task": "1", "note": ""},
            ])
        );
    }

    #[test]
    fn csv_quotes_and_markdown_escapes() {
        let (header, rows) = sample();
        let csv = grid(&header, &rows, Format::Csv);
        assert_eq!(csv, "task,note\n0,\"a, \"\"quoted\"\" | note\"\n1,");
        let md = grid(&header, &rows, Format::Markdown);
        assert!(md.contains("a, \"quoted\" \\| note"), "{md}");
    }
}
