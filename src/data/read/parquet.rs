//! Apache Parquet files through the `parquet` crate's arrow reader, streamed in record
//! batches of [`BATCH_ROWS`] rows with only the selected columns decoded, so memory
//! stays bounded whatever the file's size.
//!
//! The text column must hold strings (or binary, decoded as UTF-8); the label column
//! may hold strings, integers, booleans, floats, or a dictionary (categorical) of
//! them. An integer label column that the file's Hugging Face metadata declares a
//! `ClassLabel` reads as its class names (`-1`, "no label", as an empty label). A null
//! reads as an empty field. `Record::line` is the 1-based row number (counted across
//! the files of an `hf://` dataset). A `.parquet.gz` is decompressed into memory
//! (Parquet needs random access); prefer Parquet's own compression.

use super::{hf, Detected, Input, ReadOptions, Record, Records};
use crate::spec::DataSection;
use anyhow::{anyhow, bail, Context};
use arrow_array::{cast::AsArray, types::*, Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;
use std::fmt::Write;
use std::io::Read;
use std::path::PathBuf;

/// Rows decoded at a time.
const BATCH_ROWS: usize = 8192;

/// One Parquet source.
enum Source {
    File(PathBuf),
    Bytes(String, bytes::Bytes),
}

/// The records of one or more Parquet files, read in order as one stream.
pub(super) struct Parquet {
    pending: std::vec::IntoIter<Source>,
    current: Option<Current>,
    want: Want,
    columns: Vec<String>,
    detected: Detected,
    /// Rows given so far, over all files.
    rows: u64,
}

/// What to read from each file.
struct Want {
    text: String,
    label: Option<String>,
    all_fields: bool,
}

/// The file being read.
struct Current {
    name: String,
    reader: ParquetRecordBatchReader,
    columns: Vec<String>,
    batch: Vec<ArrayRef>,
    batch_len: usize,
    /// The next row of `batch`.
    at: usize,
    /// Rows of this file given so far.
    rows: u64,
    text_at: usize,
    label_at: Option<usize>,
    /// The label column's class names (Hugging Face `ClassLabel`).
    names: Option<Vec<String>>,
}

impl Parquet {
    /// Open `input` (a `.parquet` file or bytes, or an `hf://` dataset's files) and
    /// check its first file's columns. Errors name the file and the column.
    pub(super) fn open(
        input: &Input,
        data: &DataSection,
        opts: ReadOptions,
    ) -> anyhow::Result<Self> {
        let want = Want {
            text: data.text.clone(),
            label: opts.label.then(|| data.label.clone()),
            all_fields: opts.all_fields,
        };
        let mut pending = sources(input)?.into_iter();
        let first = pending
            .next()
            .with_context(|| format!("{}: no Parquet files", input.name()))?;
        let current = open_source(first, &want)?;
        Ok(Parquet {
            pending,
            columns: current.columns.clone(),
            current: Some(current),
            want,
            detected: Detected {
                format: "parquet".into(),
                encoding: "UTF-8".into(),
                gzip: input.is_gz(),
                ..Default::default()
            },
            rows: 0,
        })
    }
}

/// The Parquet sources of `input`: its files for `hf://`, else the file or the bytes
/// (gunzipped into memory when `.gz`).
fn sources(input: &Input) -> anyhow::Result<Vec<Source>> {
    let name = input.name();
    if hf::is_hf(std::path::Path::new(&name)) {
        return Ok(hf::resolve(std::path::Path::new(&name))?
            .into_iter()
            .map(Source::File)
            .collect());
    }
    Ok(vec![match input {
        _ if input.is_gz() => {
            let mut bytes = Vec::new();
            input
                .open()?
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read data file {name}"))?;
            Source::Bytes(name, bytes.into())
        }
        Input::Path(p) => Source::File(p.clone()),
        Input::Bytes { bytes, .. } => Source::Bytes(name, bytes::Bytes::from_owner(bytes.clone())),
    }])
}

fn open_source(source: Source, want: &Want) -> anyhow::Result<Current> {
    match source {
        Source::File(path) => {
            let name = path.display().to_string();
            let file = super::open_regular(&path, "data file")?;
            open_reader(name, file, want)
        }
        Source::Bytes(name, bytes) => open_reader(name, bytes, want),
    }
}

/// Open one file's reader on the selected columns, checking their types.
fn open_reader<T: ChunkReader + 'static>(
    name: String,
    reader: T,
    want: &Want,
) -> anyhow::Result<Current> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader)
        .map_err(|e| anyhow!("{name}: not a readable Parquet file: {e}"))?;
    let schema = builder.schema().clone();
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let find = |col: &str, key: &str| {
        columns.iter().position(|c| c == col).with_context(|| {
            format!(
                "{name}: no column {col:?} ({key}); the file has columns: {}",
                columns.join(", ")
            )
        })
    };
    let type_of = |i: usize| schema.field(i).data_type().clone();
    let text = find(&want.text, "data.text")?;
    if kind(&type_of(text)) != Some(Kind::Text) {
        bail!(
            "{name}: column {:?} (data.text) holds {}, expected strings",
            want.text,
            type_of(text)
        );
    }
    let label = match &want.label {
        Some(col) => {
            let i = find(col, "data.label")?;
            if kind(&type_of(i)).is_none() {
                bail!(
                    "{name}: column {col:?} (data.label) holds {}, expected strings, \
                     integers, booleans or a dictionary (categorical) of them",
                    type_of(i)
                );
            }
            Some(i)
        }
        None => None,
    };
    if want.all_fields {
        if let Some(i) = (0..columns.len()).find(|&i| kind(&type_of(i)).is_none()) {
            bail!(
                "{name}: column {:?} holds {}, which cannot be written back as text \
                 (strings, numbers and booleans can)",
                columns[i],
                type_of(i)
            );
        }
    }
    let names = match (&want.label, label) {
        (Some(col), Some(i)) if kind(&type_of(i)) == Some(Kind::Integer) => {
            class_names(builder.metadata(), col)
        }
        _ => None,
    };
    // Projected columns come in file order; all of them with `all_fields`.
    let (mask, text_at, label_at) = if want.all_fields {
        (ProjectionMask::all(), text, label)
    } else {
        let mut roots = vec![text];
        roots.extend(label);
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let label_at = label.map(|l| usize::from(l > text));
        (mask, usize::from(label.is_some_and(|l| l < text)), label_at)
    };
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| anyhow!("{name}: cannot read the Parquet file: {e}"))?;
    Ok(Current {
        name,
        reader,
        columns,
        batch: Vec::new(),
        batch_len: 0,
        at: 0,
        rows: 0,
        text_at,
        label_at,
        names,
    })
}

/// The class names of an integer `column` that the file's Hugging Face metadata
/// (`huggingface` key: `info.features.COLUMN` of `_type` `ClassLabel`) lists.
fn class_names(meta: &ParquetMetaData, column: &str) -> Option<Vec<String>> {
    let kv = meta.file_metadata().key_value_metadata()?;
    let json = kv.iter().find(|k| k.key == "huggingface")?.value.as_ref()?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let feature = v.pointer("/info/features")?.get(column)?;
    if feature.get("_type")?.as_str()? != "ClassLabel" {
        return None;
    }
    let names = feature.get("names")?.as_array()?;
    names.iter().map(|n| n.as_str().map(String::from)).collect()
}

/// What a column holds, for the types lab reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Other,
}

fn kind(t: &DataType) -> Option<Kind> {
    use DataType::*;
    Some(match t {
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView => Kind::Text,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Kind::Integer,
        Boolean | Float32 | Float64 => Kind::Other,
        Dictionary(_, values) => return kind(values),
        _ => return None,
    })
}

/// `a` with a dictionary column expanded to its values (so cells index directly).
fn plain(a: &ArrayRef) -> anyhow::Result<ArrayRef> {
    match a.as_any_dictionary_opt() {
        Some(dict) => Ok(arrow_select::take::take(
            dict.values().as_ref(),
            dict.keys(),
            None,
        )?),
        None => Ok(a.clone()),
    }
}

/// Write cell `row` of `a` into `out` (empty for null); true when bytes were not UTF-8.
fn cell(a: &dyn Array, row: usize, out: &mut String) -> bool {
    out.clear();
    if a.is_null(row) {
        return false;
    }
    let bytes = |b: &[u8], out: &mut String| match std::str::from_utf8(b) {
        Ok(s) => {
            out.push_str(s);
            false
        }
        Err(_) => {
            out.push_str(&String::from_utf8_lossy(b));
            true
        }
    };
    macro_rules! num {
        ($t:ty) => {{
            let _ = write!(out, "{}", a.as_primitive::<$t>().value(row));
        }};
    }
    match a.data_type() {
        DataType::Utf8 => out.push_str(a.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(a.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(a.as_string_view().value(row)),
        DataType::Binary => return bytes(a.as_binary::<i32>().value(row), out),
        DataType::LargeBinary => return bytes(a.as_binary::<i64>().value(row), out),
        DataType::BinaryView => return bytes(a.as_binary_view().value(row), out),
        DataType::Boolean => out.push_str(if a.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        DataType::Int8 => num!(Int8Type),
        DataType::Int16 => num!(Int16Type),
        DataType::Int32 => num!(Int32Type),
        DataType::Int64 => num!(Int64Type),
        DataType::UInt8 => num!(UInt8Type),
        DataType::UInt16 => num!(UInt16Type),
        DataType::UInt32 => num!(UInt32Type),
        DataType::UInt64 => num!(UInt64Type),
        DataType::Float32 => num!(Float32Type),
        DataType::Float64 => num!(Float64Type),
        // Other types were refused when the file was opened.
        _ => {}
    }
    false
}

impl Current {
    /// Load the next batch; false at the end of the file.
    fn next_batch(&mut self) -> anyhow::Result<bool> {
        let batch: RecordBatch = match self.reader.next() {
            None => return Ok(false),
            Some(b) => b.map_err(|e| {
                anyhow!(
                    "{}, row {}: cannot read the Parquet file: {e}",
                    self.name,
                    self.rows + 1
                )
            })?,
        };
        self.batch = batch
            .columns()
            .iter()
            .map(plain)
            .collect::<Result<_, _>>()?;
        self.batch_len = batch.num_rows();
        self.at = 0;
        Ok(true)
    }

    /// Fill `rec` from the current row (which exists).
    fn fill(&self, rec: &mut Record, all_fields: bool, line: u64) -> anyhow::Result<()> {
        let row = self.at;
        rec.line = line;
        rec.text_lossy = cell(self.batch[self.text_at].as_ref(), row, &mut rec.text);
        rec.label_lossy = false;
        rec.label.clear();
        if let Some(at) = self.label_at {
            rec.label_lossy = cell(self.batch[at].as_ref(), row, &mut rec.label);
            if let (Some(names), false) = (&self.names, rec.label.is_empty()) {
                let name = rec.label.parse::<i64>().ok().and_then(|v| match v {
                    -1 => Some(""),
                    v => usize::try_from(v)
                        .ok()
                        .and_then(|v| names.get(v))
                        .map(String::as_str),
                });
                let Some(name) = name else {
                    bail!(
                        "{}, row {}: label {} (data.label) is not one of the {} class \
                         names in the file's Hugging Face metadata",
                        self.name,
                        self.rows,
                        rec.label,
                        names.len()
                    );
                };
                rec.label.clear();
                rec.label.push_str(name);
            }
        }
        rec.fields.clear();
        if all_fields {
            for col in &self.batch {
                let mut field = String::new();
                cell(col.as_ref(), row, &mut field);
                rec.fields.push(field);
            }
        }
        Ok(())
    }
}

impl Parquet {
    /// Open the next file of the stream; with `all_fields` its columns must be the first's.
    fn open_next(&self, source: Source) -> anyhow::Result<Current> {
        let next = open_source(source, &self.want)?;
        if self.want.all_fields && next.columns != self.columns {
            bail!(
                "{}: columns {} differ from the first file's ({})",
                next.name,
                next.columns.join(", "),
                self.columns.join(", ")
            );
        }
        Ok(next)
    }
}

impl Records for Parquet {
    fn next_record(&mut self, rec: &mut Record) -> anyhow::Result<bool> {
        loop {
            let Some(cur) = &mut self.current else {
                return Ok(false);
            };
            if cur.at < cur.batch_len {
                self.rows += 1;
                cur.rows += 1;
                cur.fill(rec, self.want.all_fields, self.rows)?;
                cur.at += 1;
                return Ok(true);
            }
            if !cur.next_batch()? {
                self.current = match self.pending.next() {
                    Some(source) => Some(self.open_next(source)?),
                    None => None,
                };
            }
        }
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn detected(&self) -> &Detected {
        &self.detected
    }
}
