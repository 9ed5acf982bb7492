//! Classify a data file's text field and write its records back in the same format
//! with the predictions added: `predicted_label` and one `p_<class>` per class. Used by
//! `lab predict --input` and by `POST /v1/predict/csv`.
//!
//! The file is read as training reads its data (the shared reader, `data::read`), in
//! the training data's dialect unless told otherwise. Precedence, per setting:
//! 1. an explicit flag or query parameter (`--delimiter`, `--quoting`, `--encoding`);
//! 2. the input's own extension: `.tsv`, `.csv`, `.jsonl`/`.ndjson`, `.json`, `.parquet`
//!    decide the format, and a delimited kind other than the training file's gets its
//!    own defaults (a `.tsv` is tab-separated even when training read a `;` CSV);
//! 3. the trial's `data` section: its delimiter and quoting when the input has the
//!    training file's extension or none lab knows; its encoding always (a byte-order
//!    mark still decides).

use super::TrainedModel;
use crate::data::notes;
use crate::data::read::{self, Input, ReadOptions, Record};
use crate::data::write::{Cell, Kind, Layout, TableWriter};
use crate::spec::{DataSection, Quoting};
use anyhow::{bail, Result};
use std::io::Write;

/// Dialect settings given explicitly (flags, query parameters); `None`: the default.
#[derive(Debug, Clone, Default)]
pub struct Dialect {
    /// The field delimiter, as `data.delimiter` takes it (`";"`, `"\t"`, `"tab"`).
    pub delimiter: Option<String>,
    /// Quote processing of delimited text.
    pub quoting: Option<Quoting>,
    /// The text encoding of an input without a byte-order mark (a WHATWG label).
    pub encoding: Option<String>,
}

/// A `--delimiter` / `?delimiter=` value as `data.delimiter` takes it: one ASCII
/// character, or `tab` / `\t` for a tab.
///
/// # Errors
/// Anything else, with what is expected.
pub fn parse_delimiter(value: &str) -> Result<String, String> {
    match value {
        "tab" | "\\t" | "\t" => Ok("\t".into()),
        d if d.len() == 1 && d.is_ascii() && !matches!(d, "\n" | "\r" | "\"") => Ok(d.into()),
        d => Err(format!(
            "the delimiter {d:?} is not one ASCII character other than a quote or line \
             break: use e.g. \",\", \";\", \"|\" or \"tab\""
        )),
    }
}

/// A `--quoting` / `?quoting=` value: `rfc4180` or `none`.
///
/// # Errors
/// Anything else, with what is expected.
pub fn parse_quoting(value: &str) -> Result<Quoting, String> {
    match value {
        "rfc4180" => Ok(Quoting::Rfc4180),
        "none" => Ok(Quoting::None),
        q => Err(format!(
            "quoting {q:?} is not \"rfc4180\" (quoted fields, CSV's default) or \"none\" \
             (a quote is text, one line one row: TSV's default)"
        )),
    }
}

/// What to read: the text column, the optional label column, the dialect.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The text column; the trial's `data.text` when `None`.
    pub column: Option<String>,
    /// The column of true labels (then the accuracy is counted).
    pub label_column: Option<String>,
    /// Explicit dialect settings.
    pub dialect: Dialect,
    /// How the user names the text column here (`--column`), for errors.
    pub column_hint: String,
    /// How the user gives a dialect setting here: `"--{}"` for the command line,
    /// `"?{}="` over HTTP; errors name the fix this way instead of a `data.*` key.
    pub setting_hint: &'static str,
    /// Bounds on rows and text lengths (none by default).
    pub limits: Limits,
}

/// `e` with the `data.*` dialect keys the shared reader names replaced by what the
/// user of `request` types (a flag or a query parameter).
fn in_request_terms(e: anyhow::Error, request: &Request) -> anyhow::Error {
    if e.is::<TooLarge>() {
        return e;
    }
    let mut text = format!("{e:#}");
    for key in ["encoding", "delimiter", "quoting"] {
        let ours = request.setting_hint.replace("{}", key);
        text = text.replace(&format!("data.{key}"), &ours);
    }
    anyhow::anyhow!(text)
}

/// What [`annotate`] found: how many rows it predicted and, when a label column
/// was given, how many of the predictions match it.
pub struct Annotated {
    /// Data rows predicted and written.
    pub rows: usize,
    /// Predictions equal to the label column's value (with a label column).
    pub correct: Option<usize>,
    /// Rows scored against the label column: those with a text and a label (training
    /// skips the others, so they are not counted either).
    pub scored: usize,
    /// How the input was read.
    pub detected: read::Detected,
    /// The input was not UTF-8 (the output is): a line for the user.
    pub notes: Vec<String>,
}

/// The `data` section that reads `input`: the training section `train`'s dialect
/// under the precedence in the module docs, with `request`'s columns.
pub fn reading_section(train: &DataSection, input: &Input, request: &Request) -> DataSection {
    let input_kind = Kind::of_name(&input.name());
    let train_kind = Kind::of_name(&train.path.to_string_lossy());
    let inherit = input_kind.is_none() || input_kind == train_kind;
    let over = &request.dialect;
    let delimiter = over.delimiter.clone().or_else(|| {
        if !inherit {
            None
        } else if train.delimiter.is_some() {
            train.delimiter.clone()
        } else if input_kind.is_none() && train_kind == Some(Kind::Tsv) {
            // A name without an extension reads as CSV unless told: say tab.
            Some("\t".into())
        } else {
            None
        }
    });
    DataSection {
        path: input.name().into(),
        text: request.column.clone().unwrap_or_else(|| train.text.clone()),
        label: request.label_column.clone().unwrap_or_default(),
        delimiter,
        quoting: over.quoting.or(if inherit { train.quoting } else { None }),
        encoding: over.encoding.clone().or_else(|| train.encoding.clone()),
        on_invalid_utf8: train.on_invalid_utf8,
        ..DataSection::default()
    }
}

/// The layout to write: `output_name`'s kind when its extension names one, else the
/// input's format and dialect.
pub fn output_layout(
    output_name: Option<&str>,
    input: &Input,
    detected: &read::Detected,
) -> Layout {
    let read_kind = Kind::of_detected(detected);
    let kind = output_name
        .and_then(Kind::of_name)
        .or_else(|| Kind::of_name(&input.name()).filter(|k| *k != read_kind))
        .unwrap_or(read_kind);
    Layout::for_kind(kind, detected)
}

/// Rows predicted (and written) together: the memory an annotation holds beyond
/// its input is one batch of rows and their predictions, whatever the file's size.
pub const BATCH_ROWS: usize = 256;

/// A request over one of [`Limits`]' bounds: the server answers 413 with this
/// message, which names the limit and the flag that sets it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

/// Bounds on one annotation (`lab serve` sets them; `lab predict` has none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Most data rows; more is a [`TooLarge`] error naming `--max-rows`.
    pub max_rows: Option<usize>,
    /// Longest text field in bytes; longer is a [`TooLarge`] error naming
    /// `--max-text-bytes` and the line.
    pub max_text_bytes: Option<usize>,
}

/// What the first pass over the input found, given to the `layout` callback of
/// [`annotate`] before anything is written.
pub struct Scanned {
    /// How the input was read.
    pub detected: read::Detected,
    /// Lines for the user about how it was read (bytes replaced, the encoding).
    pub notes: Vec<String>,
    /// Data rows.
    pub rows: usize,
}

/// One record read, kept until its batch's predictions are in.
struct Row {
    line: u64,
    fields: Vec<String>,
    text: String,
    /// The true class (with a label column; `None`: not scored).
    truth: Option<String>,
}

/// Read `input` (see [`reading_section`]), classify it and write it annotated to
/// `output`, laid out by `layout` (given what the first pass found).
///
/// Two passes: the first reads every record and checks it (its shape, its true
/// label when a label column was given, `request.limits`) holding nothing per row, so
/// a bad row is refused before anything is written; the second predicts and writes
/// [`BATCH_ROWS`] rows at a time. Memory stays one batch whatever the input's size
/// (Parquet output, written whole at the end, excepted).
///
/// # Errors
/// The input cannot be read (named with its physical line), lacks a column, holds an
/// unknown label, is over a limit ([`TooLarge`]); the model or the writing fails.
pub fn annotate<W: Write + Send>(
    model: &TrainedModel,
    input: &Input,
    request: &Request,
    layout: impl FnOnce(&Scanned) -> Layout,
    output: W,
) -> Result<Annotated> {
    let data = reading_section(&model.config.data, input, request);
    let opts = ReadOptions {
        label: request.label_column.is_some(),
        all_fields: true,
    };
    let mut records = open(model, input, &data, request, opts)?;
    let (rows, lossy) = scan(model, records.as_mut(), &input.name(), &data, request, opts)
        .map_err(|e| in_request_terms(e, request))?;
    // After the rows: a JSON reader may learn columns as it goes.
    let columns = records.columns().to_vec();
    let detected = records.detected().clone();
    drop(records);
    let mut out_columns = columns.clone();
    out_columns.push("predicted_label".into());
    out_columns.extend(model.classes.iter().map(|c| format!("p_{c}")));
    if let Some(taken) = out_columns[columns.len()..]
        .iter()
        .find(|c| columns.contains(c))
    {
        bail!(
            "{}: already has a column `{taken}`, which the predictions would add again (a \
             file annotated before?); remove the prediction columns first",
            input.name()
        );
    }
    let scanned = Scanned {
        notes: reading_notes(&input.name(), &lossy, &detected),
        detected,
        rows,
    };
    let mut writer = TableWriter::new(output, layout(&scanned), out_columns)?;
    let mut records = open(model, input, &data, request, opts)?;
    let mut tally = Tally::default();
    let mut batch = Vec::with_capacity(BATCH_ROWS.min(rows));
    let mut rec = Record::default();
    loop {
        let more = records
            .next_record(&mut rec)
            .map_err(|e| in_request_terms(e, request))?;
        if more {
            let truth = if opts.label {
                truth_of(model, &rec, &input.name(), &data)?
            } else {
                None
            };
            batch.push(Row {
                line: rec.line,
                fields: std::mem::take(&mut rec.fields),
                text: std::mem::take(&mut rec.text),
                truth,
            });
        }
        if batch.len() == BATCH_ROWS || (!more && !batch.is_empty()) {
            write_batch(model, &mut writer, &batch, columns.len(), &mut tally)?;
            batch.clear();
        }
        if !more {
            break;
        }
    }
    writer.finish()?;
    let mut notes = scanned.notes;
    if opts.label && tally.unscored > 0 {
        notes.push(format!(
            "{}: {} row(s) with an empty text or an empty/missing label were predicted \
             but not scored (training skips such rows)",
            input.name(),
            tally.unscored
        ));
    }
    Ok(Annotated {
        rows: tally.rows,
        correct: opts.label.then_some(tally.correct),
        scored: tally.scored,
        detected: scanned.detected,
        notes,
    })
}

/// Counts kept while writing.
#[derive(Default)]
struct Tally {
    rows: usize,
    scored: usize,
    correct: usize,
    unscored: usize,
}

/// Predict one batch of rows and write them with their prediction columns.
fn write_batch<W: Write + Send>(
    model: &TrainedModel,
    writer: &mut TableWriter<W>,
    batch: &[Row],
    n_columns: usize,
    tally: &mut Tally,
) -> Result<()> {
    let texts: Vec<String> = batch.iter().map(|r| r.text.clone()).collect();
    let predictions = model.predict(&texts)?;
    let mut cells = Vec::new();
    for (row, p) in batch.iter().zip(&predictions) {
        cells.clear();
        cells.extend(row.fields.iter().map(|f| Cell::Text(f)));
        // A reader that fills fewer fields than columns: keep the row's shape.
        cells.resize(n_columns, Cell::Text(""));
        cells.push(Cell::Text(&p.label));
        cells.extend(p.probabilities.iter().map(|(_, v)| Cell::Number(*v)));
        writer.row(&cells, row.line)?;
        tally.rows += 1;
        match &row.truth {
            Some(t) => {
                tally.scored += 1;
                tally.correct += usize::from(*t == p.label);
            }
            None => tally.unscored += 1,
        }
    }
    Ok(())
}

/// The records of `input`, with a missing column named in request terms.
fn open(
    model: &TrainedModel,
    input: &Input,
    data: &DataSection,
    request: &Request,
    opts: ReadOptions,
) -> Result<Box<dyn read::Records>> {
    let opened = read::open(input, data, opts).map_err(|e| in_request_terms(e, request));
    opened.map_err(|e| {
        if format!("{e:#}").contains("no column") {
            anyhow::anyhow!(
                "{e:#}; the text column is chosen with {} (the model was trained on column \
                 {:?}), the label column with --label-column",
                request.column_hint,
                model.config.data.text
            )
        } else {
            e
        }
    })
}

/// How the input was read, for the user: bytes replaced, an encoding other than UTF-8.
fn reading_notes(name: &str, lossy: &notes::Tally, detected: &read::Detected) -> Vec<String> {
    let mut notes = Vec::new();
    if lossy.count > 0 {
        // Training warns about the same bytes; a prediction must not garble them quietly.
        notes.push(format!(
            "{name}: {} row(s) had bytes invalid in {} replaced by U+FFFD ({}); give the \
             file's encoding with --encoding (serve: ?encoding=)",
            lossy.count,
            detected.encoding,
            lossy.lines()
        ));
    }
    if !detected.encoding.eq_ignore_ascii_case("utf-8") && !detected.encoding.is_empty() {
        notes.push(format!(
            "{name} was read as {}; the predictions are written as UTF-8",
            detected.encoding
        ));
    }
    notes
}

/// The first pass: every record read and checked (true labels, `request.limits`),
/// nothing kept but the row count and the rows with bytes invalid in the encoding.
fn scan(
    model: &TrainedModel,
    records: &mut dyn read::Records,
    source: &str,
    data: &DataSection,
    request: &Request,
    opts: ReadOptions,
) -> Result<(usize, notes::Tally)> {
    let limits = request.limits;
    let mut rows = 0usize;
    let mut lossy = notes::Tally::default();
    let mut rec = Record::default();
    while records.next_record(&mut rec)? {
        rows += 1;
        if let Some(max) = limits.max_rows.filter(|&max| rows > max) {
            return Err(TooLarge(format!(
                "{source}: more than {max} data rows in one request (the limit, \
                 --max-rows {max}); split the file"
            ))
            .into());
        }
        if let Some(max) = limits.max_text_bytes.filter(|&max| rec.text.len() > max) {
            return Err(TooLarge(format!(
                "{source}, line {}: a text of {} bytes in column `{}`; at most {max} \
                 (the limit, --max-text-bytes {max})",
                rec.line,
                rec.text.len(),
                data.text
            ))
            .into());
        }
        if rec.text_lossy || rec.label_lossy {
            lossy.add(rec.line);
        }
        if opts.label {
            truth_of(model, &rec, source, data)?;
        }
    }
    Ok((rows, lossy))
}

/// A record's true class by training's label rules (`None`: a missing label or an
/// empty text, predicted but not scored; label_map and label_normalize name the class).
///
/// # Errors
/// A label that is no class the model knows, named with its physical line.
fn truth_of(
    model: &TrainedModel,
    rec: &Record,
    source: &str,
    data: &DataSection,
) -> Result<Option<String>> {
    let rules = &model.config.data;
    let label = rec.label.trim();
    if crate::data::is_missing_label(label, rules) || rec.text.trim().is_empty() {
        return Ok(None);
    }
    let Some(class) = crate::data::class_of(label, &model.classes, rules) else {
        let hint = if rec.label_lossy {
            " (its bytes are not valid in the encoding it was read in: give the \
             file's encoding with --encoding)"
        } else {
            ""
        };
        bail!(
            "{source}, line {}: label {label:?} in column `{}` was not seen at \
             training time{hint}; the model knows: {}",
            rec.line,
            data.label,
            model.classes.join(", ")
        );
    };
    Ok(Some(class.to_string()))
}
