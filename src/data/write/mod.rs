//! Writing records back in the format they were read in (`lab predict --input`,
//! `POST /v1/predict/csv`): delimited text with the input's delimiter and quoting,
//! JSON Lines, a JSON array of objects, or Parquet (`parquet.rs`). Text always goes
//! out as UTF-8, whatever the input's encoding.

mod parquet;

use super::read::Detected;
use anyhow::{bail, Result};
use serde_json::{Number, Value};
use std::io::Write;

/// A data format as a file name's extension names it (a `.gz` suffix is looked through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.csv`: comma-separated, RFC 4180 quoting.
    Csv,
    /// `.tsv`: tab-separated.
    Tsv,
    /// `.jsonl` / `.ndjson`: one JSON object a line.
    JsonLines,
    /// `.json`: an array of objects.
    Json,
    /// `.parquet`.
    Parquet,
}

impl Kind {
    /// The format `name`'s extension names, if it names one.
    pub fn of_name(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
        let ext = std::path::Path::new(stem).extension()?.to_str()?;
        Some(match ext {
            "csv" => Kind::Csv,
            "tsv" | "tab" => Kind::Tsv,
            "jsonl" | "ndjson" => Kind::JsonLines,
            "json" => Kind::Json,
            "parquet" => Kind::Parquet,
            _ => return None,
        })
    }

    /// The kind a reader reported (`Detected::format`), tab-delimited text as TSV.
    pub fn of_detected(detected: &Detected) -> Kind {
        match detected.format.as_str() {
            "jsonl" => Kind::JsonLines,
            "json" => Kind::Json,
            "parquet" => Kind::Parquet,
            _ if detected.delimiter == Some('\t') => Kind::Tsv,
            _ => Kind::Csv,
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Csv => "csv",
            Kind::Tsv => "tsv",
            Kind::JsonLines => "jsonl",
            Kind::Json => "json",
            Kind::Parquet => "parquet",
        }
    }
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Delimited text. `quote`: RFC 4180 quoting where a field needs it; without it a
    /// field holding the delimiter or a line break cannot be written (an error).
    Delimited {
        /// The field delimiter (one ASCII byte).
        delimiter: u8,
        /// Quote fields that need it.
        quote: bool,
    },
    /// One JSON object a line.
    JsonLines,
    /// One JSON array of objects.
    Json,
    /// A Parquet file (snappy): text fields as strings, probabilities as floats.
    Parquet,
}

impl Layout {
    /// The layout for `kind`: the input's own delimiter and quoting (`detected`) when
    /// the input was read as delimited text of that kind, else the kind's defaults
    /// (CSV: comma, quoted; TSV: tab, unquoted).
    pub fn for_kind(kind: Kind, detected: &Detected) -> Layout {
        let same = detected.format == "csv" && Kind::of_detected(detected) == kind;
        let delimited = |delimiter: char, quote: bool| Layout::Delimited {
            delimiter: delimiter as u8,
            quote,
        };
        match kind {
            Kind::Csv | Kind::Tsv if same => {
                let delimiter = detected.delimiter.filter(char::is_ascii).unwrap_or(',');
                let quote = detected.quoting.as_deref() != Some("none");
                delimited(delimiter, quote)
            }
            Kind::Csv => delimited(',', true),
            Kind::Tsv => delimited('\t', false),
            Kind::JsonLines => Layout::JsonLines,
            Kind::Json => Layout::Json,
            Kind::Parquet => Layout::Parquet,
        }
    }

    /// The kind of file this layout writes.
    pub fn kind(self) -> Kind {
        match self {
            Layout::Delimited {
                delimiter: b'\t', ..
            } => Kind::Tsv,
            Layout::Delimited { .. } => Kind::Csv,
            Layout::JsonLines => Kind::JsonLines,
            Layout::Json => Kind::Json,
            Layout::Parquet => Kind::Parquet,
        }
    }

    /// The HTTP content type of what this layout writes.
    pub fn content_type(self) -> &'static str {
        match self.kind() {
            Kind::Tsv => "text/tab-separated-values; charset=utf-8",
            Kind::JsonLines => "application/x-ndjson",
            Kind::Json => "application/json",
            Kind::Parquet => "application/vnd.apache.parquet",
            Kind::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// One value of a row to write.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// Text, written as it is (a JSON string in JSON).
    Text(&'a str),
    /// A probability: six decimals in text, a number in JSON.
    Number(f32),
}

/// Writes rows under fixed column names in one [`Layout`].
pub struct TableWriter<W: Write + Send> {
    layout: Layout,
    columns: Vec<String>,
    csv: Option<csv::Writer<W>>,
    json: Option<W>,
    parquet: Option<(W, parquet::Columns)>,
    rows: usize,
}

impl<W: Write + Send> TableWriter<W> {
    /// Start writing (a delimited file's header goes out now).
    ///
    /// # Errors
    /// Writing fails, or a column name cannot be written unquoted.
    pub fn new(out: W, layout: Layout, columns: Vec<String>) -> Result<Self> {
        let mut writer = TableWriter {
            layout,
            columns,
            csv: None,
            json: None,
            parquet: None,
            rows: 0,
        };
        match layout {
            Layout::Delimited { delimiter, quote } => {
                let mut csv = csv::WriterBuilder::new()
                    .delimiter(delimiter)
                    .quote_style(if quote {
                        csv::QuoteStyle::Necessary
                    } else {
                        csv::QuoteStyle::Never
                    })
                    .from_writer(out);
                if !quote {
                    for name in &writer.columns {
                        check_unquoted(name, delimiter, "the header", name)?;
                    }
                }
                csv.write_record(&writer.columns)?;
                writer.csv = Some(csv);
            }
            Layout::JsonLines => writer.json = Some(out),
            Layout::Parquet => writer.parquet = Some((out, parquet::Columns::default())),
            Layout::Json => {
                let mut out = out;
                out.write_all(b"[")?;
                writer.json = Some(out);
            }
        }
        Ok(writer)
    }

    /// Write one row, its cells in column order; `line` (the input's physical line)
    /// names the row in errors.
    ///
    /// # Errors
    /// Writing fails, or (unquoted delimited output) a value holds the delimiter or a
    /// line break.
    pub fn row(&mut self, cells: &[Cell<'_>], line: u64) -> Result<()> {
        self.rows += 1;
        if let Some(csv) = &mut self.csv {
            let Layout::Delimited { delimiter, quote } = self.layout else {
                unreachable!("a csv writer is only made for delimited layouts")
            };
            let mut texts = Vec::with_capacity(cells.len());
            for (cell, column) in cells.iter().zip(&self.columns) {
                let text = match cell {
                    Cell::Text(t) => (*t).to_string(),
                    Cell::Number(v) => format!("{v:.6}"),
                };
                if !quote {
                    check_unquoted(&text, delimiter, &format!("line {line}"), column)?;
                }
                texts.push(text);
            }
            csv.write_record(&texts)?;
            return Ok(());
        }
        if let Some((_, columns)) = &mut self.parquet {
            columns.push(cells);
            return Ok(());
        }
        let out = self.json.as_mut().expect("a JSON layout has its writer");
        if self.layout == Layout::Json {
            out.write_all(if self.rows == 1 { b"\n" } else { b",\n" })?;
        }
        // Written by hand so the keys keep the columns' order.
        out.write_all(b"{")?;
        for (i, (cell, column)) in cells.iter().zip(&self.columns).enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, column)?;
            out.write_all(b":")?;
            let value = match cell {
                Cell::Text(t) => match json_literal(t) {
                    Some(raw) => {
                        out.write_all(raw.as_bytes())?;
                        continue;
                    }
                    None => Value::String((*t).to_string()),
                },
                Cell::Number(v) => Number::from_f64((f64::from(*v) * 1e6).round() / 1e6)
                    .map_or(Value::Null, Value::Number),
            };
            serde_json::to_writer(&mut *out, &value)?;
        }
        out.write_all(b"}")?;
        if self.layout == Layout::JsonLines {
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Finish (a JSON array's closing bracket) and flush.
    ///
    /// # Errors
    /// Writing fails.
    pub fn finish(mut self) -> Result<()> {
        if let Some(mut csv) = self.csv.take() {
            csv.flush()?;
        }
        if let Some((out, columns)) = self.parquet.take() {
            columns.write(&self.columns, out)?;
        }
        if let Some(mut out) = self.json.take() {
            if self.layout == Layout::Json {
                out.write_all(if self.rows == 0 { b"]\n" } else { b"\n]\n" })?;
            }
            out.flush()?;
        }
        Ok(())
    }
}

/// A field that reads as a JSON number, boolean, object or array, exactly as that
/// value writes itself (so `1`, `true`, `{"a":1}`, not `007` or ` 1`): written as JSON,
/// not as a string, since the readers give every field as text (a JSON input's `1`
/// and `"1"` alike).
fn json_literal(text: &str) -> Option<&str> {
    let first = *text.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b't' | b'f' | b'{' | b'[')) {
        return None;
    }
    let value: Value = serde_json::from_str(text).ok()?;
    let canonical = serde_json::to_string(&value).ok()?;
    (!value.is_string() && !value.is_null() && canonical == text).then_some(text)
}

/// Without quoting, a value holding the delimiter or a line break would shift or split
/// the row: refuse it, naming where.
fn check_unquoted(value: &str, delimiter: u8, at: &str, column: &str) -> Result<()> {
    if value
        .bytes()
        .any(|b| b == delimiter || b == b'\n' || b == b'\r')
    {
        bail!(
            "{at}, column `{column}`: the value holds the delimiter or a line break, which \
             unquoted output (quoting \"none\", the TSV default) cannot write; write CSV \
             instead (an output file ending in .csv) or pass --quoting rfc4180"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(layout: Layout, rows: &[&[Cell<'_>]]) -> Result<String> {
        let mut out = Vec::new();
        let mut w = TableWriter::new(&mut out, layout, vec!["text".into(), "p_a".into()])?;
        for (i, row) in rows.iter().enumerate() {
            w.row(row, i as u64 + 2)?;
        }
        w.finish()?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn each_layout_writes_its_format() {
        let rows: [&[Cell]; 2] = [
            &[Cell::Text("a, \"b\""), Cell::Number(0.25)],
            &[Cell::Text("c"), Cell::Number(0.5)],
        ];
        let csv = Layout::Delimited {
            delimiter: b';',
            quote: true,
        };
        assert_eq!(
            written(csv, &rows).unwrap(),
            "text;p_a\n\"a, \"\"b\"\"\";0.250000\nc;0.500000\n"
        );
        let tsv = Layout::Delimited {
            delimiter: b'\t',
            quote: false,
        };
        assert_eq!(
            written(tsv, &rows).unwrap(),
            "text\tp_a\na, \"b\"\t0.250000\nc\t0.500000\n"
        );
        assert_eq!(
            written(Layout::JsonLines, &rows).unwrap(),
            "{\"text\":\"a, \\\"b\\\"\",\"p_a\":0.25}\n{\"text\":\"c\",\"p_a\":0.5}\n"
        );
        let json: Value = serde_json::from_str(&written(Layout::Json, &rows).unwrap()).unwrap();
        assert_eq!(json[1], serde_json::json!({"text": "c", "p_a": 0.5}));
        assert_eq!(written(Layout::Json, &[]).unwrap(), "[]\n");
        let typed: [&[Cell]; 1] = [&[Cell::Text("{\"a\":[1,true]}"), Cell::Text("3")]];
        assert_eq!(
            written(Layout::JsonLines, &typed).unwrap(),
            "{\"text\":{\"a\":[1,true]},\"p_a\":3}\n"
        );
        for text in ["007", " 1", "1.", "true!", "[1, 2]", "x"] {
            assert!(json_literal(text).is_none(), "{text}");
        }
        let err = written(tsv, &[&[Cell::Text("a\tb"), Cell::Number(0.0)]]).unwrap_err();
        assert!(err.to_string().contains("line 2, column `text`"), "{err}");
    }

    #[test]
    fn kinds_come_from_extensions_and_layouts_from_what_was_read() {
        assert_eq!(Kind::of_name("x/New.TSV.gz"), Some(Kind::Tsv));
        assert_eq!(Kind::of_name("a.ndjson"), Some(Kind::JsonLines));
        assert_eq!(Kind::of_name("upload"), None);
        assert_eq!(Kind::of_name("notes.txt"), None);
        let semicolon = Detected {
            format: "csv".into(),
            delimiter: Some(';'),
            quoting: Some("rfc4180".into()),
            ..Detected::default()
        };
        assert_eq!(
            Layout::for_kind(Kind::Csv, &semicolon),
            Layout::Delimited {
                delimiter: b';',
                quote: true
            }
        );
        assert_eq!(
            Layout::for_kind(Kind::Tsv, &semicolon),
            Layout::Delimited {
                delimiter: b'\t',
                quote: false
            }
        );
        assert_eq!(Layout::for_kind(Kind::Parquet, &semicolon), Layout::Parquet);
    }
}
