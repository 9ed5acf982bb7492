//! Classify a CSV's text column and append the predictions: `predicted_label`
//! and one `p_<class>` column per class. Used by `lab predict --input` and by
//! `POST /v1/predict/csv`.

use super::{Prediction, TrainedModel};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};

/// What `annotate_csv` found: the predictions in row order and, when a label
/// column was given, how many of them match it.
pub struct Annotated {
    /// One prediction per data row, in row order.
    pub predictions: Vec<Prediction>,
    /// Predictions equal to the label column's value (with a label column).
    pub correct: Option<usize>,
}

/// Read CSV from `input` (`source` names it in errors), write it annotated to
/// `output`. With `label_column`, every true label must be a class the model was
/// trained on; they are checked before anything is written.
pub fn annotate_csv<R: Read, W: Write>(
    model: &TrainedModel,
    input: R,
    source: &str,
    column: &str,
    label_column: Option<&str>,
    output: W,
) -> Result<Annotated> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = reader
        .headers()
        .with_context(|| format!("{source}: cannot read the CSV header"))?
        .clone();
    let Some(text_index) = headers.iter().position(|h| h == column) else {
        bail!(
            "{source}: no column `{column}` (columns: {}); choose the text column",
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let mut records = Vec::new();
    for (i, record) in reader.records().enumerate() {
        records.push(record.with_context(|| format!("{source}: bad CSV row at line {}", i + 2))?);
    }
    let truth = match label_column {
        Some(name) => Some(true_labels(model, &headers, &records, source, name)?),
        None => None,
    };
    let texts: Vec<String> = records
        .iter()
        .map(|r| r.get(text_index).unwrap_or("").to_string())
        .collect();
    let predictions = model.predict(&texts)?;

    let mut writer = csv::Writer::from_writer(output);
    let mut out_headers: Vec<String> = headers.iter().map(str::to_string).collect();
    out_headers.push("predicted_label".into());
    out_headers.extend(model.classes.iter().map(|c| format!("p_{c}")));
    writer.write_record(&out_headers)?;
    for (record, p) in records.iter().zip(&predictions) {
        let mut row: Vec<String> = record.iter().map(str::to_string).collect();
        row.push(p.label.clone());
        row.extend(p.probabilities.iter().map(|(_, v)| format!("{v:.6}")));
        writer.write_record(&row)?;
    }
    writer.flush()?;
    let correct = truth.map(|truth| {
        truth
            .iter()
            .zip(&predictions)
            .filter(|(t, p)| **t == p.label)
            .count()
    });
    Ok(Annotated {
        predictions,
        correct,
    })
}

/// The label column's values, refusing labels unseen at training time.
fn true_labels<'r>(
    model: &TrainedModel,
    headers: &csv::StringRecord,
    records: &'r [csv::StringRecord],
    source: &str,
    name: &str,
) -> Result<Vec<&'r str>> {
    let Some(index) = headers.iter().position(|h| h == name) else {
        bail!(
            "{source}: no column `{name}` (--label-column; columns: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let label = record.get(index).unwrap_or("").trim();
            if !model.classes.iter().any(|c| c == label) {
                bail!(
                    "{source}, line {}: label {label:?} in column `{name}` was not seen at \
                     training time; the model knows: {}",
                    i + 2,
                    model.classes.join(", ")
                );
            }
            Ok(label)
        })
        .collect()
}
