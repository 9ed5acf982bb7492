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

use super::{Prediction, TrainedModel};
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
}

/// `e` with the `data.*` dialect keys the shared reader names replaced by what the
/// user of `request` types (a flag or a query parameter).
fn in_request_terms(e: anyhow::Error, request: &Request) -> anyhow::Error {
    let mut text = format!("{e:#}");
    for key in ["encoding", "delimiter", "quoting"] {
        let ours = request.setting_hint.replace("{}", key);
        text = text.replace(&format!("data.{key}"), &ours);
    }
    anyhow::anyhow!(text)
}

/// What [`annotate`] found: the predictions in row order and, when a label column
/// was given, how many of them match it.
pub struct Annotated {
    /// One prediction per data row, in row order.
    pub predictions: Vec<Prediction>,
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

/// One record read, kept until the predictions are in.
struct Row {
    line: u64,
    fields: Vec<String>,
    text: String,
}

/// Read `input` (see [`reading_section`]), classify it and write it annotated to
/// `output`, laid out by `layout` (given what was read). With a label column, every
/// true label must be a class the model was trained on; they are checked before
/// anything is written.
///
/// # Errors
/// The input cannot be read (named with its physical line), lacks a column, holds an
/// unknown label; the model or the writing fails.
pub fn annotate<W: Write + Send>(
    model: &TrainedModel,
    input: &Input,
    request: &Request,
    layout: impl FnOnce(&read::Detected) -> Layout,
    output: W,
) -> Result<Annotated> {
    let data = reading_section(&model.config.data, input, request);
    let opts = ReadOptions {
        label: request.label_column.is_some(),
        all_fields: true,
    };
    let opened = read::open(input, &data, opts).map_err(|e| in_request_terms(e, request));
    let mut records = opened.map_err(|e| {
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
    })?;
    let (rows, correct, lossy) = read_rows(model, records.as_mut(), &input.name(), &data, opts)
        .map_err(|e| in_request_terms(e, request))?;
    // After the rows: a JSON reader may learn columns as it goes.
    let columns = records.columns().to_vec();
    let detected = records.detected().clone();
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
    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let predictions = model.predict(&texts)?;
    let mut writer = TableWriter::new(output, layout(&detected), out_columns)?;
    let mut cells = Vec::new();
    for (row, p) in rows.iter().zip(&predictions) {
        cells.clear();
        cells.extend(row.fields.iter().map(|f| Cell::Text(f)));
        // A reader that fills fewer fields than columns: keep the row's shape.
        cells.resize(columns.len(), Cell::Text(""));
        cells.push(Cell::Text(&p.label));
        cells.extend(p.probabilities.iter().map(|(_, v)| Cell::Number(*v)));
        writer.row(&cells, row.line)?;
    }
    writer.finish()?;
    let mut notes = Vec::new();
    if lossy.count > 0 {
        // Training warns about the same bytes; a prediction must not garble them quietly.
        notes.push(format!(
            "{}: {} row(s) had bytes invalid in {} replaced by U+FFFD ({}); give the \
             file's encoding with --encoding (serve: ?encoding=)",
            input.name(),
            lossy.count,
            detected.encoding,
            lossy.lines()
        ));
    }
    if !detected.encoding.eq_ignore_ascii_case("utf-8") && !detected.encoding.is_empty() {
        notes.push(format!(
            "{} was read as {}; the predictions are written as UTF-8",
            input.name(),
            detected.encoding
        ));
    }
    let scored = correct.as_ref().map_or(0, |t| t.iter().flatten().count());
    if let Some(truth) = &correct {
        let unscored = truth.len() - scored;
        if unscored > 0 {
            notes.push(format!(
                "{}: {unscored} row(s) with an empty text or an empty/missing label were \
                 predicted but not scored (training skips such rows)",
                input.name()
            ));
        }
    }
    let correct = correct.map(|truth| {
        truth
            .iter()
            .zip(&predictions)
            .filter(|(t, p)| t.as_deref() == Some(p.label.as_str()))
            .count()
    });
    Ok(Annotated {
        predictions,
        correct,
        scored,
        detected,
        notes,
    })
}

/// The records read: their rows, the true labels when a label column was given
/// (each one a class the model knows, else an error naming the physical line), and
/// the rows with bytes invalid in the encoding.
type Read = (
    Vec<Row>,
    Option<Vec<Option<String>>>,
    crate::data::notes::Tally,
);

/// Every record, the true labels and the lossy rows (see [`Read`]).
fn read_rows(
    model: &TrainedModel,
    records: &mut dyn read::Records,
    source: &str,
    data: &DataSection,
    opts: ReadOptions,
) -> Result<Read> {
    let mut rows = Vec::new();
    let mut truth = opts.label.then(Vec::new);
    let mut lossy = crate::data::notes::Tally::default();
    let mut rec = Record::default();
    while records.next_record(&mut rec)? {
        if rec.text_lossy || rec.label_lossy {
            lossy.add(rec.line);
        }
        if let Some(truth) = &mut truth {
            // Training's label rules: a missing label or an empty text is not scored;
            // label_map and label_normalize name the class.
            let rules = &model.config.data;
            let label = rec.label.trim();
            if crate::data::is_missing_label(label, rules) || rec.text.trim().is_empty() {
                truth.push(None);
                rows.push(Row {
                    line: rec.line,
                    fields: std::mem::take(&mut rec.fields),
                    text: std::mem::take(&mut rec.text),
                });
                continue;
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
            truth.push(Some(class.to_string()));
        }
        rows.push(Row {
            line: rec.line,
            fields: std::mem::take(&mut rec.fields),
            text: std::mem::take(&mut rec.text),
        });
    }
    Ok((rows, truth, lossy))
}
