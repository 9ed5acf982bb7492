//! What reading a data file noticed: rows skipped and why, fields decoded lossily,
//! labels merged, and how the file was read. Counted once, said once (in the run's
//! output) and kept with the trial (its data report).

use super::read::Detected;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many first line numbers a [`Tally`] keeps.
const FIRST_LINES: usize = 5;

/// Rows counted under one reason, with the physical lines of the first few.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// How many rows.
    pub count: usize,
    /// The physical lines (1-based, header counted) of the first few.
    pub first_lines: Vec<u64>,
}

impl Tally {
    /// Count a row at physical line `line`.
    pub fn add(&mut self, line: u64) {
        self.count += 1;
        if self.first_lines.len() < FIRST_LINES {
            self.first_lines.push(line);
        }
    }

    /// "lines 3, 9, 40, ...": where the first few are.
    pub fn lines(&self) -> String {
        let lines: Vec<String> = self.first_lines.iter().map(u64::to_string).collect();
        let more = if self.count > self.first_lines.len() {
            ", ..."
        } else {
            ""
        };
        let word = if self.count == 1 { "line" } else { "lines" };
        format!("{word} {}{more}", lines.join(", "))
    }
}

/// Raw labels merged into one class, and by what rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMerge {
    /// The class they became.
    pub class: String,
    /// Each raw label (as written in the file, trimmed) with its row count.
    pub variants: Vec<(String, usize)>,
    /// "label_map", "case", "numeric" or "both".
    pub rule: String,
}

/// Everything reading a data file noticed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadNotes {
    /// How the file was read (format, delimiter, quoting, encoding).
    pub detected: Detected,
    /// Rows left out, by reason (e.g. "empty text", "empty label").
    pub skipped: BTreeMap<String, Tally>,
    /// Rows with a field that had bytes invalid in the file's encoding.
    pub lossy: Tally,
    /// Labels merged into one class.
    pub merged: Vec<LabelMerge>,
    /// Records with a multi-line quoted field whose lines look like rows of their own
    /// (a stray quote may have joined rows): read as one row each, counted and said.
    pub joined: Tally,
}
