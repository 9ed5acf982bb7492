//! `lab show TRIAL`: one trial (with what it was trained on: its data report), or
//! its most-attended words.

use super::out;
use crate::inference::attention::{most_attended, AttendedReview};
use crate::report::{self, Format};
use crate::store::Store;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Trial id (as listed by `lab compare`).
    trial: i64,
    /// Instead of the trial view: the most-attended words of N test reviews, the
    /// classes taken in turn (a model trained with pooling = "attention").
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3")]
    attention: Option<usize>,
    /// With --attention: how many words to list per review.
    #[arg(long, default_value_t = 8, requires = "attention")]
    words: usize,
    /// How to print the trial (CSV: each table after a `# title` line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    super::require_db(db)?;
    let store = Store::open(db)?;
    match args.attention {
        Some(n) => {
            let reviews = most_attended(&store, db, args.trial, n, args.words)?;
            out::line(render_attention(&reviews, args.format)?)?;
        }
        None => {
            let trial = report::render_trial(&store, args.trial, args.format)?;
            let data = store.data_report(args.trial)?;
            out::line(with_data(trial, data.as_deref(), args.format)?)?;
        }
    }
    Ok(super::exit::OK)
}

/// The trial's view and its data report: a `data_report` key in JSON (null when
/// none was recorded), a short "data" block otherwise.
fn with_data(trial: String, data: Option<&str>, format: Format) -> anyhow::Result<String> {
    let report: Option<serde_json::Value> =
        data.map(|text| serde_json::from_str(text).unwrap_or(serde_json::Value::Null));
    if format == Format::Json {
        let mut view: serde_json::Value = serde_json::from_str(&trial)?;
        if let Some(obj) = view.as_object_mut() {
            obj.insert("data_report".into(), report.unwrap_or_default());
        }
        return Ok(serde_json::to_string_pretty(&view)?);
    }
    let block = match &report {
        Some(r) => super::data::summary(r),
        None => "  not recorded (a trial that never started, or one run by an older lab)\n".into(),
    };
    let block = block.trim_end();
    Ok(match format {
        Format::Markdown => format!("{trial}\n\n## data\n\n```text\n{block}\n```"),
        Format::Csv => format!("{trial}\n\n# data\n{}", csv_block(block)),
        _ => format!("{trial}\n\ndata\n{block}"),
    })
}

/// The data block as `key,value` CSV rows.
fn csv_block(block: &str) -> String {
    let header = ["key".to_string(), "value".to_string()];
    let rows: Vec<Vec<String>> = block
        .lines()
        .map(|l| {
            let l = l.trim_start();
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            vec![k.to_string(), v.trim().to_string()]
        })
        .collect();
    report::render_rows(&header, &rows, Format::Csv)
}

fn render_attention(reviews: &[AttendedReview], format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(reviews)?);
    }
    let header: Vec<String> = [
        "test row",
        "label",
        "predicted",
        "tokens",
        "most-attended words",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = reviews
        .iter()
        .map(|r| {
            let words: Vec<String> = r.top.iter().map(|(w, a)| format!("{w} {a:.3}")).collect();
            vec![
                r.row.to_string(),
                r.label.clone(),
                format!("{} ({:.2})", r.predicted, r.probability),
                r.tokens.to_string(),
                words.join(", "),
            ]
        })
        .collect();
    Ok(report::render_rows(&header, &rows, format))
}
