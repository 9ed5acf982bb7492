//! `lab show TRIAL`: one trial, or its most-attended words.

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
        None => out::line(report::render_trial(&store, args.trial, args.format)?)?,
    }
    Ok(super::exit::OK)
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
