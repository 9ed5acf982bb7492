use crate::report::Format;
use crate::runner::artifacts::{Prediction, TrainedModel};
use crate::runner::{device, RunOptions};
use crate::store::{Store, TrialStatus};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The trained trial to predict with.
    #[arg(long)]
    trial: i64,
    /// Texts to classify.
    texts: Vec<String>,
    /// A CSV file of texts to classify instead.
    #[arg(long, conflicts_with = "texts")]
    input: Option<PathBuf>,
    /// Column of --input holding the text.
    #[arg(long, default_value = "text")]
    column: String,
    /// Column of --input holding true labels: each must be a class the model was
    /// trained on; the accuracy is printed.
    #[arg(long, requires = "input", value_name = "COLUMN")]
    label_column: Option<String>,
    /// Where to write --input with the prediction columns appended (stdout when omitted).
    #[arg(long, requires = "input")]
    output: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Format for texts given on the command line.
    #[arg(long, default_value = "table")]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    let trial = store
        .trial(args.trial)?
        .with_context(|| format!("no trial {} in {}", args.trial, db.display()))?;
    if trial.status != TrialStatus::Done {
        bail!(
            "trial {} is {}, not done: it has no trained model",
            args.trial,
            trial.status
        );
    }
    let weights = store
        .artifacts(args.trial)?
        .into_iter()
        .find(|a| a.kind == "weights")
        .with_context(|| format!("trial {} has no weights artifact", args.trial))?;
    let root = RunOptions::new(db.to_path_buf()).root();
    let dir = root.join(&weights.path);
    let dir = dir.parent().unwrap_or(&root);
    let model = TrainedModel::load(dir, &device::select(&args.device)?)?;

    match &args.input {
        Some(input) => predict_csv(
            &model,
            input,
            &args.column,
            args.label_column.as_deref(),
            args.output.as_deref(),
        ),
        None if args.texts.is_empty() => bail!("give texts to classify, or --input FILE.csv"),
        None => {
            let predictions = model.predict(&args.texts)?;
            print_predictions(&args.texts, &predictions, &model.classes, args.format)?;
            Ok(0)
        }
    }
}

fn print_predictions(
    texts: &[String],
    predictions: &[Prediction],
    classes: &[String],
    format: Format,
) -> Result<()> {
    if format == Format::Json {
        let rows: Vec<_> = texts
            .iter()
            .zip(predictions)
            .map(|(text, p)| {
                let probs: serde_json::Map<_, _> = p
                    .probabilities
                    .iter()
                    .map(|(c, v)| (c.clone(), serde_json::json!(v)))
                    .collect();
                serde_json::json!({"text": text, "label": p.label, "probabilities": probs})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut header = vec!["text".to_string(), "label".to_string()];
    header.extend(classes.iter().map(|c| format!("p({c})")));
    let rows: Vec<Vec<String>> = texts
        .iter()
        .zip(predictions)
        .map(|(text, p)| {
            let mut row = vec![shorten(text, 60), p.label.clone()];
            row.extend(p.probabilities.iter().map(|(_, v)| format!("{v:.4}")));
            row
        })
        .collect();
    println!("{}", crate::report::render_rows(&header, &rows, format));
    Ok(())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// Append `predicted_label` and one `p_<class>` column per class to every row.
fn predict_csv(
    model: &TrainedModel,
    input: &Path,
    column: &str,
    label_column: Option<&str>,
    output: Option<&Path>,
) -> Result<i32> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(input)
        .with_context(|| format!("cannot open {}", input.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header", input.display()))?
        .clone();
    let Some(text_index) = headers.iter().position(|h| h == column) else {
        bail!(
            "{}: no column `{column}` (columns: {}); choose one with --column",
            input.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let mut records = Vec::new();
    for (i, record) in reader.records().enumerate() {
        records
            .push(record.with_context(|| format!("{}: bad CSV row {}", input.display(), i + 2))?);
    }
    // True labels are checked before any prediction is written.
    let truth: Option<Vec<&str>> = match label_column {
        None => None,
        Some(name) => {
            let Some(index) = headers.iter().position(|h| h == name) else {
                bail!(
                    "{}: no column `{name}` (--label-column; columns: {})",
                    input.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                );
            };
            let mut labels = Vec::new();
            for (i, record) in records.iter().enumerate() {
                let label = record.get(index).unwrap_or("").trim();
                if !model.classes.iter().any(|c| c == label) {
                    bail!(
                        "{}, line {}: label {label:?} in column `{name}` was not seen at \
                         training time; the model knows: {}",
                        input.display(),
                        i + 2,
                        model.classes.join(", ")
                    );
                }
                labels.push(label);
            }
            Some(labels)
        }
    };
    let texts: Vec<String> = records
        .iter()
        .map(|r| r.get(text_index).unwrap_or("").to_string())
        .collect();
    let predictions = model.predict(&texts)?;

    let sink: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut writer = csv::Writer::from_writer(sink);
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
    if let Some(truth) = &truth {
        let right = truth
            .iter()
            .zip(&predictions)
            .filter(|(t, p)| **t == p.label)
            .count();
        eprintln!(
            "accuracy {:.4} ({right} of {} rows)",
            right as f64 / truth.len().max(1) as f64,
            truth.len()
        );
    }
    if let Some(path) = output {
        eprintln!(
            "wrote {} predictions to {}",
            predictions.len(),
            path.display()
        );
    }
    Ok(0)
}
