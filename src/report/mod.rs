//! Leaderboards and tables printed from the store (table, markdown, csv, json),
//! and the HTML report with SVG charts.
//! Reads the store only; knows nothing of training.

pub mod diff;
pub mod evidence;
mod flatten;
mod grid;
mod html;
mod leaderboard;
mod png;
mod render;
mod search;
mod splits;
pub(crate) mod svg;
mod trial;

pub use flatten::flatten_config;
pub use grid::grid as render_rows;
pub(crate) use html::{class_scores, leaderboard_table, row_label, wrong_texts, STYLE};
pub use html::{html_report, trial_chart, ClassDistribution, WrongTexts};
pub use leaderboard::{leaderboard, Leaderboard, LeaderboardOptions, LeaderboardRow, Summary};
pub use png::{png_support, svg_to_png};
pub use render::{render, render_all, render_boards};
pub(crate) use search::search_section;
pub use splits::leaderboards;
pub use trial::render_trial;

use std::fmt;
use std::str::FromStr;

/// How a table is printed (`--format`): the values `--help` and the shell
/// completions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Boxed text table for terminals.
    #[default]
    Table,
    /// GitHub-flavoured markdown table (`|` in cells escaped).
    #[value(alias = "md")]
    Markdown,
    /// CSV with a header row.
    Csv,
    /// JSON: an array of objects (keys from the header) unless a command says otherwise.
    Json,
}

impl Format {
    const CHOICES: &'static str = "table|markdown|csv|json";
}

impl FromStr for Format {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "markdown" | "md" => Ok(Format::Markdown),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => anyhow::bail!(
                "unknown format `{other}`; expected one of {}",
                Format::CHOICES
            ),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Markdown => "markdown",
            Format::Csv => "csv",
            Format::Json => "json",
        })
    }
}
