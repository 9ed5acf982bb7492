//! `lab predict TRIAL TEXT...` / `--input FILE`: classify with a trained trial. A file
//! is read as training reads its data and written back in its own format
//! (`inference::annotate` has the dialect precedence).

use super::args::{DeviceParser, UsageError};
use super::out;
use crate::data::read::Input;
use crate::inference::annotate::{self, annotate, output_layout, Dialect, Request, Scanned};
use crate::inference::{export, Prediction, TrainedModel};
use crate::report::Format;
use crate::runner::device;
use crate::store::Store;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The trained trial (as `lab compare` lists it); with --model or --trial,
    /// the first text instead.
    #[arg(
        value_name = "TRIAL",
        required_unless_present_any = ["trial_flag", "model"]
    )]
    first: Option<String>,
    /// Texts to classify.
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,
    /// The trained trial (the same as the positional TRIAL).
    #[arg(long = "trial", value_name = "TRIAL")]
    trial_flag: Option<i64>,
    /// A directory written by `lab export` (no database needed).
    #[arg(long, value_name = "DIR", conflicts_with = "trial_flag")]
    model: Option<PathBuf>,
    /// A data file of texts to classify instead: CSV, TSV, JSON Lines, JSON or Parquet
    /// by extension (`.gz` too), read in the training data's dialect unless the flags
    /// below or the file's extension say otherwise.
    #[arg(long, value_name = "FILE", conflicts_with = "texts")]
    input: Option<PathBuf>,
    /// Column (field) of --input holding the text [default: the trial's data.text].
    #[arg(long, value_name = "COLUMN")]
    column: Option<String>,
    /// Field delimiter of --input: one character, or `tab` [default: .tsv a tab, .csv a
    /// comma, else the training data's].
    #[arg(long, requires = "input", value_parser = annotate::parse_delimiter)]
    delimiter: Option<String>,
    /// Quote processing of --input: rfc4180 or none [default: as the delimiter's
    /// default, or the training data's data.quoting].
    #[arg(long, requires = "input", value_parser = annotate::parse_quoting)]
    quoting: Option<crate::spec::Quoting>,
    /// Text encoding of --input when it has no byte-order mark (a WHATWG label such as
    /// utf-8, utf-16, windows-1252) [default: the training data's data.encoding, else UTF-8].
    /// The output is always UTF-8.
    #[arg(long, requires = "input", value_name = "LABEL")]
    encoding: Option<String>,
    /// Column of --input holding true labels: each must be a class the model was
    /// trained on; the accuracy is printed.
    #[arg(long, requires = "input", value_name = "COLUMN")]
    label_column: Option<String>,
    /// Where to write --input with the prediction columns appended (stdout when
    /// omitted), in the input's format unless this file's extension names another.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "out",
        value_name = "FILE",
        requires = "input"
    )]
    output: Option<PathBuf>,
    /// The device to run the model on.
    #[arg(long, default_value = "cpu", value_parser = DeviceParser)]
    device: String,
    /// Format for texts given on the command line.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Where the model comes from, and the texts, once the positionals are sorted
/// out: without --model or --trial the first positional is the trial.
fn model_and_texts(args: &mut Args) -> Result<(Option<i64>, Vec<String>)> {
    let mut texts = std::mem::take(&mut args.texts);
    if args.model.is_some() || args.trial_flag.is_some() {
        texts.splice(0..0, args.first.take());
        return Ok((args.trial_flag, texts));
    }
    let first = args.first.take().unwrap_or_default();
    let trial = first.parse::<i64>().map_err(|_| {
        UsageError(format!(
            "`{first}` is not a trial id: `lab predict TRIAL TEXT...` (or --model DIR TEXT...)"
        ))
    })?;
    Ok((Some(trial), texts))
}

pub fn execute(mut args: Args, db: &Path) -> Result<i32> {
    let (trial, texts) = model_and_texts(&mut args)?;
    if args.input.is_some() && !texts.is_empty() {
        return Err(UsageError("give texts or --input FILE.csv, not both".into()).into());
    }
    if args.input.is_none() && texts.is_empty() {
        return Err(UsageError("give texts to classify, or --input FILE.csv".into()).into());
    }
    let device = device::select(&args.device)?;
    let model = match (&args.model, trial) {
        (Some(dir), _) => export::load_exported(dir, &device)?.0,
        (None, Some(trial)) => {
            super::require_db(db)?;
            let store = Store::open(db)?;
            TrainedModel::load(&export::verified_trial_dir(&store, db, trial)?, &device)?
        }
        (None, None) => {
            return Err(UsageError("say which model: TRIAL or --model DIR".into()).into())
        }
    };

    match args.input.take() {
        Some(input) => {
            let request = Request {
                column: args.column.take(),
                label_column: args.label_column.take(),
                dialect: Dialect {
                    delimiter: args.delimiter.take(),
                    quoting: args.quoting,
                    encoding: args.encoding.take(),
                },
                column_hint: "--column".into(),
                setting_hint: "--{}",
                limits: annotate::Limits::default(),
            };
            predict_file(
                &model,
                &Input::Path(input),
                &request,
                args.output.as_deref(),
            )
        }
        None => {
            let predictions = model.predict(&texts)?;
            print_predictions(&texts, &predictions, &model.classes, args.format)?;
            Ok(super::exit::OK)
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
        out::line(serde_json::to_string_pretty(&rows)?)?;
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
    out::line(crate::report::render_rows(&header, &rows, format))?;
    Ok(())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// Append `predicted_label` and one `p_<class>` column (field) per class to every
/// record, writing the input's format (or the output file's, by its extension).
/// Rows are written as they are predicted, to a temporary file beside the output
/// that replaces it only once the annotation succeeded; an output that is not a
/// regular file (a device, a FIFO, a symlink) is written in place and never removed.
fn predict_file(
    model: &TrainedModel,
    input: &Input,
    request: &Request,
    output: Option<&Path>,
) -> Result<i32> {
    let name = output.map(|p| p.to_string_lossy().into_owned());
    let layout = |scanned: &Scanned| output_layout(name.as_deref(), input, &scanned.detected);
    let annotated = match output {
        Some(path) => {
            let mut file = LazyFile::new(path);
            // On an error the temporary file goes with `file`; the output is untouched.
            annotate(model, input, request, layout, &mut file)
                .and_then(|a| file.finish().map(|()| a))?
        }
        None => annotate(model, input, request, layout, out::Stdout)?,
    };
    for line in &annotated.notes {
        tracing::warn!("{line}");
    }
    if let Some(path) = output {
        tracing::info!("wrote {} predictions to {}", annotated.rows, path.display());
    }
    if let Some(correct) = annotated.correct {
        let total = annotated.scored;
        tracing::info!(
            "accuracy {:.4} ({correct} of {total} rows)",
            correct as f64 / total.max(1) as f64
        );
    }
    Ok(super::exit::OK)
}

/// The output file, opened at the first write (after the input was checked),
/// gzip-compressed when its name ends in `.gz`.
struct LazyFile<'a> {
    path: &'a Path,
    sink: Option<Box<dyn Write + Send>>,
    gz: Option<flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>>,
    /// Where a regular output is written until `finish` puts it in place.
    pending: Option<crate::files::PendingFile>,
}

impl<'a> LazyFile<'a> {
    fn new(path: &'a Path) -> Self {
        Self {
            path,
            sink: None,
            gz: None,
            pending: None,
        }
    }

    /// The open file, created on first use.
    fn file(&mut self) -> std::io::Result<&mut dyn Write> {
        if self.sink.is_none() && self.gz.is_none() {
            // Not ours to replace or remove: write into it as it is.
            let special = std::fs::symlink_metadata(self.path).is_ok_and(|m| !m.is_file());
            let target = if special {
                self.path.to_path_buf()
            } else {
                let pending = crate::files::PendingFile::new(self.path);
                let tmp = pending.path().to_path_buf();
                self.pending = Some(pending);
                tmp
            };
            let file = std::fs::File::create(&target).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot write {}: {e}", self.path.display()),
                )
            })?;
            let file = std::io::BufWriter::new(file);
            let gz = self
                .path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
            if gz {
                self.gz = Some(flate2::write::GzEncoder::new(
                    file,
                    flate2::Compression::default(),
                ));
            } else {
                self.sink = Some(Box::new(file));
            }
        }
        Ok(match (&mut self.gz, &mut self.sink) {
            (Some(gz), _) => gz as &mut dyn Write,
            (None, Some(sink)) => sink.as_mut() as &mut dyn Write,
            (None, None) => unreachable!("created above"),
        })
    }

    /// Flush and close (the gzip trailer); an input of no output still makes a file.
    fn finish(&mut self) -> Result<()> {
        let path = self.path.display();
        self.file()
            .with_context(|| format!("cannot write {path}"))?
            .flush()
            .with_context(|| format!("cannot write {path}"))?;
        if let Some(gz) = self.gz.take() {
            gz.finish()
                .and_then(|mut f| f.flush())
                .with_context(|| format!("cannot write {path}"))?;
        }
        if let Some(pending) = self.pending.take() {
            pending
                .commit()
                .with_context(|| format!("cannot write {path}"))?;
        }
        Ok(())
    }
}

impl Write for LazyFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file()?.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: Args,
    }

    fn sorted(argv: &[&str]) -> (Option<i64>, Vec<String>) {
        let argv = std::iter::once("predict").chain(argv.iter().copied());
        let mut args = Wrap::try_parse_from(argv).unwrap().args;
        model_and_texts(&mut args).unwrap()
    }

    #[test]
    fn the_first_positional_is_the_trial_unless_a_flag_names_the_model() {
        let texts = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(sorted(&["3", "a", "b"]), (Some(3), texts(&["a", "b"])));
        assert_eq!(
            sorted(&["--trial", "3", "a", "b"]),
            (Some(3), texts(&["a", "b"]))
        );
        assert_eq!(
            sorted(&["--model", "d", "7", "b"]),
            (None, texts(&["7", "b"]))
        );
        let argv = ["predict", "three", "a"];
        let mut args = Wrap::try_parse_from(argv).unwrap().args;
        let err = model_and_texts(&mut args).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
    }
}
