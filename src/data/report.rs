//! The data report: what lab read from a data file and what preparing it made of it
//! (rows read, kept and skipped with reasons, label merges, lossy fields, the detected
//! dialect, classes per split, token lengths before `max_len`, vocabulary coverage).
//!
//! It is computed by the pipeline's passes as they run (no extra read), kept in the
//! cache entry with the dataset, printed by `lab data` and recorded with every trial.
//! Example rows ([`examples`]) are a short separate read, never stored.

use super::notes::ReadNotes;
use super::read::{self, ReadOptions, Record};
use super::{load, split_indices, Preprocessor, Vocab, UNK_ID};
use crate::spec::{DataSection, PreprocessSection};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One count per split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PerSplit<T> {
    /// The training split.
    pub train: T,
    /// The validation split.
    pub valid: T,
    /// The test split.
    pub test: T,
}

impl<T: Copy> PerSplit<T> {
    /// From `[train, valid, test]`.
    pub fn from_array(a: [T; 3]) -> PerSplit<T> {
        PerSplit {
            train: a[0],
            valid: a[1],
            test: a[2],
        }
    }

    /// As `[train, valid, test]`.
    pub fn to_array(self) -> [T; 3] {
        [self.train, self.valid, self.test]
    }
}

/// Data rows read, kept and skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Data rows read (after `data.limit`), skipped ones included.
    pub read: usize,
    /// Rows kept (read minus skipped): the rows of the three splits.
    pub kept: usize,
    /// Rows left out (the reasons are in `notes.skipped`).
    pub skipped: usize,
}

/// One class and its rows in each split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRows {
    /// The class name as stored.
    pub class: String,
    /// Its rows per split.
    pub rows: PerSplit<usize>,
}

/// Token counts per row (cleaned, stop words dropped) before the cut at `max_len`,
/// over every kept row: what `preprocess.max_len` is chosen from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lengths {
    /// Rows measured (every kept row).
    pub rows: usize,
    /// Median (nearest rank, as every percentile here).
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// The longest row.
    pub max: u64,
    /// The mean.
    pub mean: f64,
    /// `preprocess.max_len`.
    pub max_len: usize,
    /// Rows longer than `max_len` (their tail is cut), per split.
    pub truncated: PerSplit<usize>,
    /// Rows with no token left (encoded as one `<unk>`), per split.
    pub empty: PerSplit<usize>,
}

/// The vocabulary and how much of each split it covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VocabCoverage {
    /// Entries, `<pad>` and `<unk>` included.
    pub size: usize,
    /// Tokens as encoded (at most `max_len` a row; empty rows not counted), per split.
    pub tokens: PerSplit<usize>,
    /// Of those, tokens outside the vocabulary (encoded as `<unk>`).
    pub unknown: PerSplit<usize>,
    /// Share of `tokens` in the vocabulary (`None` for a split without tokens).
    pub coverage: PerSplit<Option<f64>>,
}

/// What lab read from a data file and what it made of it; the JSON of this is what
/// `lab data --format json` prints and what the store keeps per trial (`data_report`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataReport {
    /// The data file, as the spec's path resolves.
    pub file: String,
    /// Rows read, kept, skipped.
    pub rows: RowCounts,
    /// What reading noticed ([`ReadNotes`] as JSON: `detected`, `skipped` by reason,
    /// `lossy`, `merged`, and whatever else reading records).
    pub notes: serde_json::Value,
    /// Classes in their id order, with rows per split.
    pub classes: Vec<ClassRows>,
    /// Token counts per row before `max_len`.
    pub lengths: Lengths,
    /// Vocabulary size and coverage.
    pub vocab: VocabCoverage,
}

/// Lengths counted as the pipeline's second pass goes: a histogram (long rows apart,
/// so one huge row costs no memory).
#[derive(Debug, Clone, Default)]
pub(super) struct LengthCounts {
    /// `short[n]`: rows of exactly `n` tokens, for `n < SHORT`.
    short: Vec<u64>,
    /// Lengths of at least `SHORT` tokens, one entry a row.
    long: Vec<u64>,
    truncated: [usize; 3],
    empty: [usize; 3],
}

const SHORT: usize = 1 << 16;

impl LengthCounts {
    /// Count one row of split `s` with `n` tokens before the cut at `max_len`.
    #[inline]
    pub(super) fn add(&mut self, s: usize, n: usize, max_len: usize) {
        if n < SHORT {
            if self.short.len() <= n {
                self.short.resize(n + 1, 0);
            }
            self.short[n] += 1;
        } else {
            self.long.push(n as u64);
        }
        self.truncated[s] += usize::from(n > max_len);
        self.empty[s] += usize::from(n == 0);
    }

    /// Rows with no token, per split.
    pub(super) fn empty(&self) -> [usize; 3] {
        self.empty
    }

    fn summary(&self, max_len: usize) -> Lengths {
        let mut long = self.long.clone();
        long.sort_unstable();
        let rows = self.short.iter().sum::<u64>() as usize + long.len();
        let total: f64 = self
            .short
            .iter()
            .enumerate()
            .map(|(n, &c)| n as f64 * c as f64)
            .sum::<f64>()
            + long.iter().map(|&n| n as f64).sum::<f64>();
        // Nearest rank: the smallest length with at least ceil(p * rows) rows at or below.
        let rank = |p: f64| -> u64 {
            let want = ((p * rows as f64).ceil() as u64).max(1);
            let mut seen = 0u64;
            for (n, &c) in self.short.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return n as u64;
                }
            }
            let at = (want - seen).saturating_sub(1) as usize;
            long.get(at).or(long.last()).copied().unwrap_or(0)
        };
        Lengths {
            rows,
            p50: rank(0.5),
            p90: rank(0.9),
            p95: rank(0.95),
            p99: rank(0.99),
            max: rank(1.0),
            mean: if rows == 0 { 0.0 } else { total / rows as f64 },
            max_len,
            truncated: PerSplit::from_array(self.truncated),
            empty: PerSplit::from_array(self.empty),
        }
    }
}

/// Everything the pipeline hands over to make a report.
pub(super) struct Parts<'a> {
    pub file: &'a Path,
    pub notes: &'a ReadNotes,
    pub rows_read: usize,
    pub rows_skipped: usize,
    pub classes: &'a [String],
    /// The class ids of train, valid and test.
    pub labels: [&'a [u32]; 3],
    pub lengths: &'a LengthCounts,
    pub max_len: usize,
    pub vocab_size: usize,
    /// Ids stored per split (empty rows' placeholder included).
    pub ids: [usize; 3],
    /// `<unk>` ids stored per split (empty rows' placeholder included).
    pub unknown: [usize; 3],
}

impl DataReport {
    /// The report from what the pipeline's passes counted.
    pub(super) fn new(p: &Parts) -> DataReport {
        let mut per_class = vec![[0usize; 3]; p.classes.len()];
        for (s, labels) in p.labels.iter().enumerate() {
            for &l in labels.iter() {
                if let Some(c) = per_class.get_mut(l as usize) {
                    c[s] += 1;
                }
            }
        }
        let empty = p.lengths.empty();
        let tokens: [usize; 3] = std::array::from_fn(|s| p.ids[s].saturating_sub(empty[s]));
        let unknown: [usize; 3] = std::array::from_fn(|s| p.unknown[s].saturating_sub(empty[s]));
        let coverage = std::array::from_fn(|s| {
            (tokens[s] > 0).then(|| 1.0 - unknown[s] as f64 / tokens[s] as f64)
        });
        DataReport {
            file: p.file.display().to_string(),
            rows: RowCounts {
                read: p.rows_read,
                kept: p.rows_read.saturating_sub(p.rows_skipped),
                skipped: p.rows_skipped,
            },
            notes: serde_json::to_value(p.notes).unwrap_or_default(),
            classes: p
                .classes
                .iter()
                .zip(per_class)
                .map(|(c, rows)| ClassRows {
                    class: c.clone(),
                    rows: PerSplit::from_array(rows),
                })
                .collect(),
            lengths: p.lengths.summary(p.max_len),
            vocab: VocabCoverage {
                size: p.vocab_size,
                tokens: PerSplit::from_array(tokens),
                unknown: PerSplit::from_array(unknown),
                coverage: PerSplit::from_array(coverage),
            },
        }
    }
}

/// One kept row as read and as cleaned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The physical line where the row starts.
    pub line: u64,
    /// Its class.
    pub class: String,
    /// "train", "valid" or "test".
    pub split: String,
    /// The text as read.
    pub text: String,
    /// The cleaned tokens (stop words dropped, stemmed), all of them.
    pub tokens: Vec<String>,
    /// How many of `tokens` are outside the vocabulary.
    pub unknown: usize,
}

/// The first `n` kept rows of the data file with their cleaned tokens: a read of the
/// labels (to know which rows are kept and their split) and of the first rows' texts.
/// Its warnings were said when the dataset was prepared, so they are not repeated.
///
/// # Errors
/// The file cannot be read (it changed since it was prepared), or the settings are bad.
pub fn examples(
    data: &DataSection,
    pre: &PreprocessSection,
    base_dir: &Path,
    vocab: &Vocab,
    n: usize,
) -> anyhow::Result<Vec<Example>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let path = load::data_path(data, base_dir);
    let quiet = tracing::subscriber::NoSubscriber::default();
    let labels = tracing::subscriber::with_default(quiet, || load::scan_file(&path, data))?;
    let [_, valid, test] = split_indices(&labels.labels, labels.classes.len(), &data.split)?;
    let mut split = vec!["train"; labels.labels.len()];
    for (name, rows) in [("valid", &valid), ("test", &test)] {
        for &i in rows.iter() {
            split[i] = name;
        }
    }
    let cleaner = Preprocessor::new(pre, base_dir)?;
    let encoder = vocab.encoder();
    let opts = ReadOptions {
        label: false,
        all_fields: false,
    };
    let mut records = read::open_path(&path, data, opts)?;
    let mut rec = Record::default();
    let (mut read, mut kept, mut out) = (0, 0, Vec::new());
    while out.len() < n && read < labels.kept.len() && records.next_record(&mut rec)? {
        read += 1;
        if !labels.kept[read - 1] {
            continue;
        }
        let tokens = cleaner.tokens(&rec.text);
        let unknown = tokens.iter().filter(|t| encoder.id(t) == UNK_ID).count();
        let class = labels.labels[kept] as usize;
        out.push(Example {
            line: rec.line,
            class: labels.classes.get(class).cloned().unwrap_or_default(),
            split: split[kept].to_string(),
            text: std::mem::take(&mut rec.text),
            tokens,
            unknown,
        });
        kept += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut c = LengthCounts::default();
        for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 100_000] {
            c.add(0, n, 5);
        }
        let l = c.summary(5);
        assert_eq!(l.rows, 10);
        assert_eq!(
            (l.p50, l.p90, l.p95, l.p99, l.max),
            (5, 9, 100_000, 100_000, 100_000)
        );
        assert_eq!(l.truncated.train, 5);
        assert!((l.mean - 100_045.0 / 10.0).abs() < 1e-9);
        let none = LengthCounts::default().summary(3);
        assert_eq!((none.rows, none.max), (0, 0));
    }
}
