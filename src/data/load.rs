//! Reading a labelled data file (any format [`super::read`] knows) into texts and
//! class ids: the label rules (mapping, empty labels, skipped rows) live here.

use super::notes::ReadNotes;
use super::read::{self, Input, ReadOptions, Record};
use crate::spec::{DataSection, OnBadRow, OnInvalidUtf8};
use anyhow::bail;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The rows of a data file: raw texts with their class ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Raw (uncleaned) texts, one per kept row.
    pub texts: Vec<String>,
    /// `labels[i]` indexes `classes`.
    pub labels: Vec<u32>,
    /// Sorted class names (numerically when every name is a number).
    pub classes: Vec<String>,
    /// Data rows read (after `limit`), skipped ones included.
    pub rows_read: usize,
    /// Rows skipped because their text was empty or whitespace.
    pub rows_skipped: usize,
}

/// `data.path`, resolved against `base_dir` when relative (an `hf://` path is kept).
pub fn data_path(data: &DataSection, base_dir: &Path) -> PathBuf {
    if data.path.is_absolute() || read::hf::is_hf(&data.path) {
        data.path.clone()
    } else {
        base_dir.join(&data.path)
    }
}

/// Read and parse the data file named by `data` (every text in memory: for big files
/// the pipeline streams through [`scan_file`] and `texts` instead).
pub fn load(data: &DataSection, base_dir: &Path) -> anyhow::Result<Table> {
    let input = Input::Path(data_path(data, base_dir));
    let mut texts = Vec::new();
    let labels = scan(&input, data, |t| texts.push(t.to_string()))?;
    Ok(labels.into_table(texts))
}

/// Parse `bytes` (the content of a file named `path`, whose extension gives the
/// format; gzip-compressed when it ends in .gz).
pub fn parse(bytes: &[u8], path: &Path, data: &DataSection) -> anyhow::Result<Table> {
    let input = Input::Bytes {
        name: path.display().to_string(),
        bytes: bytes.into(),
    };
    let mut texts = Vec::new();
    let labels = scan(&input, data, |t| texts.push(t.to_string()))?;
    Ok(labels.into_table(texts))
}

/// What a first pass over a data file finds: every kept row's class, the classes, counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// `labels[i]` indexes `classes`, one per kept row.
    pub labels: Vec<u32>,
    /// Sorted class names (numerically when every name is a number).
    pub classes: Vec<String>,
    /// Data rows read (after `limit`), skipped ones included.
    pub rows_read: usize,
    /// Rows skipped (empty text, ...): the sum of `notes.skipped`.
    pub rows_skipped: usize,
    /// `kept[r]`: record `r` of the `rows_read` read is a kept row. Later passes
    /// ([`texts`]) keep exactly these.
    pub kept: Vec<bool>,
    /// What reading noticed: skipped rows by reason, lossy fields, merges, dialect.
    pub notes: ReadNotes,
}

impl Labels {
    fn into_table(self, texts: Vec<String>) -> Table {
        Table {
            texts,
            labels: self.labels,
            classes: self.classes,
            rows_read: self.rows_read,
            rows_skipped: self.rows_skipped,
        }
    }
}

/// Pass one of the pipeline: the labels of the file at `path`, streamed (texts are
/// checked, not kept). Every input error is reported here, naming file and line.
pub fn scan_file(path: &Path, data: &DataSection) -> anyhow::Result<Labels> {
    scan(&Input::Path(path.to_path_buf()), data, |_| {})
}

/// The texts of the kept rows of the file, in order, streamed to `f` until it returns
/// false: the records `kept` marks (`Labels::kept` of [`scan_file`], which must have
/// run first; errors are not looked for again). Returns the number of texts given to `f`.
pub fn texts(
    path: &Path,
    data: &DataSection,
    kept: &[bool],
    mut f: impl FnMut(String) -> bool,
) -> anyhow::Result<usize> {
    let opts = ReadOptions {
        label: false,
        all_fields: false,
    };
    let mut records = read::open_path(path, data, opts)?;
    let mut rec = Record::default();
    let (mut read, mut given) = (0, 0);
    while read < kept.len() && records.next_record(&mut rec)? {
        read += 1;
        if !kept[read - 1] {
            continue;
        }
        given += 1;
        if !f(std::mem::take(&mut rec.text)) {
            break;
        }
    }
    Ok(given)
}

/// Read every data row (up to `data.limit`), check it, map its label and pass each kept
/// text to `keep`.
fn scan(input: &Input, data: &DataSection, mut keep: impl FnMut(&str)) -> anyhow::Result<Labels> {
    let opts = ReadOptions {
        label: true,
        all_fields: false,
    };
    let mut records = read::open(input, data, opts)?;
    let file = input.name();
    let mut notes = ReadNotes {
        detected: records.detected().clone(),
        ..Default::default()
    };
    // Class ids in order of first appearance; renumbered in sorted order at the end.
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut labels = Vec::new();
    let mut kept = Vec::new();
    let mut rec = Record::default();
    while data.limit.is_none_or(|n| kept.len() < n) {
        if !records.next_record(&mut rec)? {
            break;
        }
        let line = rec.line;
        for (lossy, key) in [(rec.text_lossy, &data.text), (rec.label_lossy, &data.label)] {
            if lossy && data.on_invalid_utf8.unwrap_or_default() == OnInvalidUtf8::Error {
                bail!(
                    "{file}, line {line}: invalid UTF-8 in column {key:?} \
                     (data.on_invalid_utf8 = \"error\"; \"lossy\" replaces bad bytes)"
                );
            }
        }
        if rec.text_lossy || rec.label_lossy {
            notes.lossy.add(line);
        }
        if rec.text.trim().is_empty() {
            if data.on_bad_row.unwrap_or_default() == OnBadRow::Error {
                bail!(
                    "{file}, line {line}: empty text in column {:?} \
                     (data.on_bad_row = \"error\"; \"skip\" skips and counts such rows)",
                    data.text
                );
            }
            notes
                .skipped
                .entry("empty text".into())
                .or_default()
                .add(line);
            kept.push(false);
            continue;
        }
        let raw = rec.label.trim();
        if raw.is_empty() {
            bail!(
                "{file}, line {line}: empty label in column {:?}",
                data.label
            );
        }
        let name = data.label_map.get(raw).map_or(raw, String::as_str);
        let id = match ids.get(name) {
            Some(&id) => id,
            None => {
                let id = names.len() as u32;
                ids.insert(name.to_string(), id);
                names.push(name.to_string());
                id
            }
        };
        labels.push(id);
        kept.push(true);
        keep(&rec.text);
    }
    warn_notes(&file, &notes);
    let classes = sorted_classes(names.iter().map(String::as_str).collect());
    if classes.len() < 2 {
        bail!(
            "{file}: found {} class(es) ({}) in column {:?}, need at least 2 to classify",
            classes.len(),
            classes.join(", "),
            data.label
        );
    }
    let sorted: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let renumber: Vec<u32> = names.iter().map(|n| sorted[n.as_str()]).collect();
    for l in labels.iter_mut() {
        *l = renumber[*l as usize];
    }
    let rows_skipped = notes.skipped.values().map(|t| t.count).sum();
    Ok(Labels {
        labels,
        classes,
        rows_read: kept.len(),
        rows_skipped,
        kept,
        notes,
    })
}

/// Say once what reading left out or changed.
fn warn_notes(file: &str, notes: &ReadNotes) {
    if notes.lossy.count > 0 {
        tracing::warn!(
            "{file}: {} row(s) with invalid UTF-8 (first at line {}) had bad bytes \
             replaced ({}); set data.on_invalid_utf8 = \"error\" to refuse them",
            notes.lossy.count,
            notes.lossy.first_lines[0],
            notes.lossy.lines()
        );
    }
    if let Some(t) = notes.skipped.get("empty text") {
        tracing::warn!(
            "{file}: skipped {} row(s) with empty text ({}; \
             data.on_bad_row = \"error\" to refuse them)",
            t.count,
            t.lines()
        );
    }
}

/// Numbers sort as numbers ("2" < "10") when every class name is one; otherwise by string.
fn sorted_classes(names: BTreeSet<&str>) -> Vec<String> {
    // A BTreeSet iterates in string order already.
    let mut classes: Vec<String> = names.into_iter().map(str::to_string).collect();
    let numbers: Option<Vec<f64>> = classes.iter().map(|c| c.parse::<f64>().ok()).collect();
    if numbers.is_some() {
        classes.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    }
    classes
}
