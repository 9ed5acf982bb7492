use crate::inference::annotate::annotate_csv;
use crate::inference::{export, Prediction, TrainedModel};
use crate::report::Format;
use crate::runner::device;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The trained trial to predict with.
    #[arg(long, required_unless_present = "model")]
    trial: Option<i64>,
    /// A directory written by `lab export` (no database needed).
    #[arg(long, conflicts_with = "trial")]
    model: Option<PathBuf>,
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
    let device = device::select(&args.device)?;
    let model = match (&args.model, args.trial) {
        (Some(dir), _) => export::load_exported(dir, &device)?.0,
        (None, Some(trial)) => {
            super::require_db(db)?;
            let store = Store::open(db)?;
            TrainedModel::load(&export::trial_dir(&store, db, trial)?, &device)?
        }
        (None, None) => bail!("say which model: --trial ID or --model DIR"),
    };

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
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let source = input.display().to_string();
    let annotated = match output {
        Some(path) => {
            // Labels are checked before the output file is created.
            let mut buffer = Vec::new();
            let annotated = annotate_csv(model, file, &source, column, label_column, &mut buffer)?;
            std::fs::write(path, buffer)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {} predictions to {}",
                annotated.predictions.len(),
                path.display()
            );
            annotated
        }
        None => annotate_csv(
            model,
            file,
            &source,
            column,
            label_column,
            std::io::stdout(),
        )?,
    };
    if let Some(correct) = annotated.correct {
        let total = annotated.predictions.len();
        eprintln!(
            "accuracy {:.4} ({correct} of {total} rows)",
            correct as f64 / total.max(1) as f64
        );
    }
    Ok(0)
}
