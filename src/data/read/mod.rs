//! Reading a data file's records whatever its format: delimited text (CSV, TSV, any
//! delimiter, with or without quoting, in any encoding), JSON Lines, JSON arrays and
//! Parquet, gzip-compressed or not. Every format yields the same [`Record`]s, so
//! training, `prepare`, `predict --input` and `serve` read a file the same way.
//!
//! A reader reports what it detected (format, delimiter, quoting, encoding) in
//! [`Detected`]; every error it returns names the file and the physical line.

mod decode;
mod delimited;
pub mod hf;
mod json;
mod lines;
mod parquet;
mod source;

pub use decode::encoding_for_label;
pub use source::{check_regular, open_regular};

use crate::spec::DataSection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One record of a data file.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The text field, decoded (bad bytes replaced by U+FFFD when `text_lossy`).
    pub text: String,
    /// The label field, decoded; empty when the reader was opened without a label.
    pub label: String,
    /// The physical line (1-based, the header is line 1) where the record starts; for
    /// a format without lines (Parquet), the row number plus one.
    pub line: u64,
    /// The text field had bytes that are not valid in the file's encoding.
    pub text_lossy: bool,
    /// The label field had bytes that are not valid in the file's encoding.
    pub label_lossy: bool,
    /// A quoted field of this record spans lines that look like rows of their own (a
    /// stray quote may have joined rows); set by the delimited reader.
    pub joined: bool,
    /// Every field of the record in column order (see [`Records::columns`]), decoded;
    /// filled only when the reader was opened with [`ReadOptions::all_fields`].
    pub fields: Vec<String>,
}

/// What to read besides the text field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Read the label field (`data.label`); when false the file needs no label column.
    pub label: bool,
    /// Fill [`Record::fields`] with every field (for writing the records back).
    pub all_fields: bool,
}

/// How a file was read, as detected or configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detected {
    /// "csv" (any delimiter), "jsonl", "json" or "parquet".
    pub format: String,
    /// The field delimiter of a delimited file.
    pub delimiter: Option<char>,
    /// "rfc4180" or "none", for a delimited file.
    pub quoting: Option<String>,
    /// The text encoding (WHATWG name, e.g. "UTF-8", "UTF-16LE", "windows-1252").
    pub encoding: String,
    /// The file started with a byte-order mark.
    pub bom: bool,
    /// The delimiter came from an Excel `sep=X` first line (which was skipped).
    pub sep_line: bool,
    /// The file was gzip-compressed.
    pub gzip: bool,
}

/// Where the bytes come from: a file, or bytes already in memory (an upload) with a
/// name that gives the format by its extension and names the source in errors.
#[derive(Debug, Clone)]
pub enum Input {
    /// A file on disk.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes {
        /// Names the input in errors; its extension gives the format.
        name: String,
        /// The whole content.
        bytes: std::sync::Arc<[u8]>,
    },
}

impl Input {
    /// The name errors use for this input.
    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }

    /// The input's name, lowercased, without a `.gz` suffix (its format's extension).
    fn stem_lower(&self) -> String {
        let name = self.name().to_ascii_lowercase();
        name.strip_suffix(".gz").unwrap_or(&name).to_string()
    }

    /// The name ends in `.gz`.
    pub fn is_gz(&self) -> bool {
        self.name().to_ascii_lowercase().ends_with(".gz")
    }

    /// The raw bytes (still compressed when `.gz`), buffered.
    fn open_raw(&self) -> anyhow::Result<Box<dyn std::io::Read + Send>> {
        Ok(match self {
            Input::Path(p) => {
                let file = open_regular(p, "data file")?;
                Box::new(std::io::BufReader::with_capacity(1 << 16, file))
            }
            Input::Bytes { bytes, .. } => Box::new(std::io::Cursor::new(bytes.clone())),
        })
    }

    /// The bytes, gunzipped when the name ends in `.gz`.
    pub fn open(&self) -> anyhow::Result<Box<dyn std::io::Read + Send>> {
        let raw = self.open_raw()?;
        Ok(if self.is_gz() {
            Box::new(flate2::read::MultiGzDecoder::new(raw))
        } else {
            raw
        })
    }
}

/// A stream of records.
pub trait Records: Send {
    /// Read the next record into `rec` (its buffers are reused); false at the end.
    /// Errors name the file and the physical line.
    fn next_record(&mut self, rec: &mut Record) -> anyhow::Result<bool>;

    /// The column (field) names, in order.
    fn columns(&self) -> &[String];

    /// How the input is being read.
    fn detected(&self) -> &Detected;
}

/// The file format by extension (a `.gz` suffix is looked through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Delimited text: CSV, TSV and the like.
    Delimited,
    /// JSON Lines (`.jsonl`, `.ndjson`): one object a line.
    Jsonl,
    /// A JSON array of objects (`.json`); one starting with `{` is read as JSON Lines.
    Json,
    /// Apache Parquet (`.parquet`), and `hf://` datasets (Parquet files).
    Parquet,
}

impl Format {
    /// The format of `input`, by its name's extension; anything unknown is delimited.
    pub fn of(input: &Input) -> Format {
        let stem = input.stem_lower();
        let ext = |e: &str| stem.ends_with(e);
        if hf::is_hf(Path::new(&input.name())) || ext(".parquet") || ext(".pq") {
            Format::Parquet
        } else if ext(".jsonl") || ext(".ndjson") {
            Format::Jsonl
        } else if ext(".json") {
            Format::Json
        } else {
            Format::Delimited
        }
    }
}

/// The files whose bytes are the data of `path`: the file itself, or for an `hf://`
/// path the dataset's Parquet files in the local Hugging Face cache, in reading order.
/// Errors: an `hf://` path that is malformed or not in the cache.
pub fn source_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if hf::is_hf(path) {
        hf::resolve(path)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Open `input` for reading the `data.text` field (and `data.label` when
/// `opts.label`), in the dialect, encoding and format `data` and the name give.
///
/// # Errors
/// The file cannot be read, its header lacks a selected column or names it twice,
/// or the settings do not fit the file; each names the file.
pub fn open(
    input: &Input,
    data: &DataSection,
    opts: ReadOptions,
) -> anyhow::Result<Box<dyn Records>> {
    let records = open_format(input, data, opts)?;
    selected_once(&input.name(), records.columns(), data, opts)?;
    Ok(records)
}

/// A column the spec selects (`data.text`, and `data.label` when read) must be named
/// once in the header: which of two columns of one name is meant cannot be guessed.
fn selected_once(
    file: &str,
    columns: &[String],
    data: &DataSection,
    opts: ReadOptions,
) -> anyhow::Result<()> {
    let mut selected = vec![("data.text", &data.text)];
    if opts.label {
        selected.push(("data.label", &data.label));
    }
    for (key, name) in selected {
        let at: Vec<String> = (1..=columns.len())
            .filter(|&i| columns[i - 1] == *name)
            .map(|i| i.to_string())
            .collect();
        if at.len() > 1 {
            anyhow::bail!(
                "{file}: the header names column {name:?} ({key}) {} times, as columns {} \
                 (counting from 1); rename all but one so {key} selects one column",
                at.len(),
                at.join(" and ")
            );
        }
    }
    Ok(())
}

/// [`open`] without the header check: the reader of `input`'s format.
fn open_format(
    input: &Input,
    data: &DataSection,
    opts: ReadOptions,
) -> anyhow::Result<Box<dyn Records>> {
    match Format::of(input) {
        Format::Delimited => Ok(Box::new(delimited::Delimited::open(input, data, opts)?)),
        Format::Jsonl => Ok(Box::new(json::Json::open_lines(input, data, opts)?)),
        Format::Json => Ok(Box::new(json::Json::open_array(input, data, opts)?)),
        Format::Parquet => Ok(Box::new(parquet::Parquet::open(input, data, opts)?)),
    }
}

/// [`open`] on a file path.
pub fn open_path(
    path: &Path,
    data: &DataSection,
    opts: ReadOptions,
) -> anyhow::Result<Box<dyn Records>> {
    open(&Input::Path(path.to_path_buf()), data, opts)
}
