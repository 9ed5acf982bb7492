//! Reading a labelled data file (any format [`super::read`] knows) into texts and
//! class ids: the row rules (empty texts and labels, lossy fields, `limit`,
//! `sample`) live here, the label rules in [`super::labels`].

use super::notes::ReadNotes;
use super::read::{self, Input, ReadOptions, Record};
use super::{labels, sample};
use crate::spec::{DataSection, OnBadRow, OnInvalidUtf8};
use anyhow::bail;
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
    /// Rows skipped (empty text or label, not sampled): see `Labels::notes`.
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
    let (labels, sampled) = scan(&input, data, |t| texts.push(t.to_string()))?;
    Ok(labels.into_table(texts, sampled))
}

/// Parse `bytes` (the content of a file named `path`, whose extension gives the
/// format; gzip-compressed when it ends in .gz).
pub fn parse(bytes: &[u8], path: &Path, data: &DataSection) -> anyhow::Result<Table> {
    let input = Input::Bytes {
        name: path.display().to_string(),
        bytes: bytes.into(),
    };
    let mut texts = Vec::new();
    let (labels, sampled) = scan(&input, data, |t| texts.push(t.to_string()))?;
    Ok(labels.into_table(texts, sampled))
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
    /// (`load::texts`) keep exactly these.
    pub kept: Vec<bool>,
    /// What reading noticed: skipped rows by reason, lossy fields, merges, dialect.
    pub notes: ReadNotes,
    /// The file's column (field) names, in order.
    pub columns: Vec<String>,
}

impl Labels {
    /// The table of `texts` (one per row kept before sampling; `sampled` picks
    /// those a sample kept).
    fn into_table(self, mut texts: Vec<String>, sampled: Option<Vec<usize>>) -> Table {
        if let Some(rows) = sampled {
            texts = rows
                .iter()
                .map(|&i| std::mem::take(&mut texts[i]))
                .collect();
        }
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
    Ok(scan(&Input::Path(path.to_path_buf()), data, |_| {})?.0)
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

/// The texts (as read, before cleaning) of the given records of a data file:
/// `records` are record indices as `Split::origins` gives them, in any order;
/// the result has one entry per distinct record, `None` for one past the end
/// of the file. Reads the file once, up to the last record asked for.
///
/// # Errors
/// The file cannot be read (named), or a record before the last one asked for
/// is malformed.
pub fn record_texts(
    path: &Path,
    data: &DataSection,
    records: &[u32],
) -> anyhow::Result<std::collections::HashMap<u32, Option<String>>> {
    let mut wanted: Vec<u32> = records.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: std::collections::HashMap<u32, Option<String>> =
        wanted.iter().map(|&r| (r, None)).collect();
    let Some(&last) = wanted.last() else {
        return Ok(found);
    };
    let mut mask = vec![false; last as usize + 1];
    for &r in &wanted {
        mask[r as usize] = true;
    }
    let mut next = wanted.iter();
    texts(path, data, &mask, |text| {
        if let Some(r) = next.next() {
            found.insert(*r, Some(text));
        }
        true
    })?;
    Ok(found)
}

/// How many first records' physical lines a scan keeps, to name the first rows a
/// sample leaves out.
const LINES_KEPT: usize = 4096;

/// Read every data row (up to `data.limit`), check it, resolve its label to a class
/// (see [`labels`]), take `data.sample`, and pass each text kept before sampling to
/// `keep`. Also returns, when a sample was taken, which of those texts it kept.
fn scan(
    input: &Input,
    data: &DataSection,
    mut keep: impl FnMut(&str),
) -> anyhow::Result<(Labels, Option<Vec<usize>>)> {
    let opts = ReadOptions {
        label: true,
        all_fields: false,
    };
    let mut records = read::open(input, data, opts)?;
    let file = input.name();
    let columns = records.columns().to_vec();
    let mut notes = ReadNotes {
        detected: records.detected().clone(),
        ..Default::default()
    };
    let mut interner = labels::Interner::default();
    // Raw label ids while reading; class ids once resolved.
    let mut ids = Vec::new();
    let mut kept = Vec::new();
    let mut lines = Vec::new();
    let mut rec = Record::default();
    while data.limit.is_none_or(|n| kept.len() < n) {
        if !records.next_record(&mut rec)? {
            break;
        }
        if lines.len() < LINES_KEPT {
            lines.push(rec.line);
        }
        let Some(label) = row_label(&rec, data, &file, &mut notes)? else {
            kept.push(false);
            continue;
        };
        ids.push(interner.id(label, rec.line));
        kept.push(true);
        keep(&rec.text);
    }
    let resolved = labels::resolve(interner, data, &file)?;
    for id in ids.iter_mut() {
        *id = resolved.class_of[*id as usize];
    }
    notes.merged = resolved.merged;
    check_classes(&file, data, &resolved.classes, &notes, kept.len())?;
    let sampled = match data.sample {
        Some(s) => take_sample(
            s,
            data,
            &resolved.classes,
            &mut ids,
            &mut kept,
            &lines,
            &mut notes,
        ),
        None => None,
    };
    warn_notes(&file, data, &notes);
    let rows_skipped = notes.skipped.values().map(|t| t.count).sum();
    let labels = Labels {
        labels: ids,
        classes: resolved.classes,
        rows_read: kept.len(),
        rows_skipped,
        kept,
        notes,
        columns,
    };
    Ok((labels, sampled))
}

/// The trimmed label of a record that is kept; `None` for a row skipped (empty
/// text or label, counted in `notes`).
///
/// # Errors
/// A label with bytes invalid in the file's encoding (always: a class name never
/// holds U+FFFD); a lossy text under `data.on_invalid_utf8 = "error"`; an empty
/// text or label under `data.on_bad_row = "error"`. Each names file and line.
fn row_label<'r>(
    rec: &'r Record,
    data: &DataSection,
    file: &str,
    notes: &mut ReadNotes,
) -> anyhow::Result<Option<&'r str>> {
    let line = rec.line;
    if rec.joined {
        notes.joined.add(line);
    }
    if rec.label_lossy || rec.label.contains('\u{FFFD}') {
        bail!(
            "{file}, line {line}: the label in column {:?} (data.label) has bytes that are \
             not valid {} (or a U+FFFD replacement character); a class name is never \
             stored with replaced characters: fix the file or set data.encoding to its \
             encoding",
            data.label,
            notes.detected.encoding
        );
    }
    if rec.text_lossy {
        if data.on_invalid_utf8.unwrap_or_default() == OnInvalidUtf8::Error {
            bail!(
                "{file}, line {line}: invalid UTF-8 in column {:?} \
                 (data.on_invalid_utf8 = \"error\"; \"lossy\" replaces bad bytes)",
                data.text
            );
        }
        notes.lossy.add(line);
    }
    let skip = data.on_bad_row.unwrap_or_default() == OnBadRow::Skip;
    if rec.text.trim().is_empty() {
        if !skip {
            bail!(
                "{file}, line {line}: empty text in column {:?} \
                 (data.on_bad_row = \"error\"; \"skip\" skips and counts such rows)",
                data.text
            );
        }
        notes
            .skipped
            .entry(EMPTY_TEXT.into())
            .or_default()
            .add(line);
        return Ok(None);
    }
    let label = rec.label.trim();
    if labels::is_missing(label, data) {
        if !skip {
            let what = if label.is_empty() {
                "empty label".to_string()
            } else {
                format!("label {label:?}, a missing value,")
            };
            bail!(
                "{file}, line {line}: {what} in column {:?} (data.on_bad_row = \"error\"; \
                 \"skip\" skips and counts such rows{})",
                data.label,
                map_hint(label)
            );
        }
        notes
            .skipped
            .entry(EMPTY_LABEL.into())
            .or_default()
            .add(line);
        return Ok(None);
    }
    Ok(Some(label))
}

/// Reasons rows are skipped, as counted in `ReadNotes::skipped`.
const EMPTY_TEXT: &str = "empty text";
const EMPTY_LABEL: &str = "empty label";
const NOT_SAMPLED: &str = "not sampled";

/// How to keep a missing-value spelling as a class.
fn map_hint(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!("; to keep {label:?} as a class, map it in data.label_map")
    }
}

/// At least two classes; a `data.limit` that cut one class out of a sorted file
/// is said so.
fn check_classes(
    file: &str,
    data: &DataSection,
    classes: &[String],
    notes: &ReadNotes,
    read: usize,
) -> anyhow::Result<()> {
    if classes.len() >= 2 {
        return Ok(());
    }
    if read == 0 {
        bail!(
            "{file}: no data rows after the header; a data file needs rows of at least 2 classes"
        );
    }
    if let Some(limit) = data.limit.filter(|&n| n == read) {
        bail!(
            "{file}: the first {limit} row(s) (data.limit = {limit}) hold one class ({}) in \
             column {:?}: the file looks sorted by label. Use data.sample = {limit} for a \
             stratified random sample of that size instead",
            classes.join(", "),
            data.label
        );
    }
    let skipped: Vec<String> = notes
        .skipped
        .iter()
        .map(|(why, t)| format!("{} with {why} ({})", t.count, t.lines()))
        .collect();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped rows: {}", skipped.join(", "))
    };
    bail!(
        "{file}: found {} class(es) ({}) in column {:?}, need at least 2 to classify{skipped}",
        classes.len(),
        classes.join(", "),
        data.label
    )
}

/// `data.sample`: keep a stratified sample of the kept rows (`ids`, their classes),
/// marking the others not kept (`kept`) and counting them under "not sampled".
/// Returns the indices (among the rows kept before) of the rows it keeps; `None`
/// when it keeps them all.
fn take_sample(
    sample: crate::spec::Sample,
    data: &DataSection,
    classes: &[String],
    ids: &mut Vec<u32>,
    kept: &mut [bool],
    lines: &[u64],
    notes: &mut ReadNotes,
) -> Option<Vec<usize>> {
    let target = sample::target(sample, ids.len());
    let Some(rows) = sample::stratified(ids, classes.len(), target, data.split.seed) else {
        let asked = match sample {
            crate::spec::Sample::Rows(n) => n.to_string(),
            crate::spec::Sample::Fraction(f) => f.to_string(),
        };
        tracing::warn!(
            "data.sample = {asked} keeps all {} kept rows: no sample was taken",
            ids.len()
        );
        return None;
    };
    let tally = notes.skipped.entry(NOT_SAMPLED.into()).or_default();
    let (mut row, mut next) = (0usize, rows.iter().peekable());
    for (r, k) in kept.iter_mut().enumerate().filter(|(_, k)| **k) {
        if next.peek() == Some(&&row) {
            next.next();
        } else {
            *k = false;
            // Only lines with none missing before them: the first few, in order.
            match lines.get(r) {
                Some(&line) if tally.first_lines.len() == tally.count => tally.add(line),
                _ => tally.count += 1,
            }
        }
        row += 1;
    }
    *ids = rows.iter().map(|&i| ids[i]).collect();
    Some(rows)
}

/// Say once what reading left out or changed.
pub(super) fn warn_notes(file: &str, data: &DataSection, notes: &ReadNotes) {
    if notes.lossy.count > 0 {
        // Bytes invalid in UTF-8 often mean the file is in another encoding.
        let encoding = &notes.detected.encoding;
        let what = if encoding.eq_ignore_ascii_case("utf-8") {
            "invalid UTF-8".to_string()
        } else {
            format!("bytes invalid in {encoding}")
        };
        tracing::warn!(
            "{file}: {} row(s) with {what} (first at line {}) had bad bytes \
             replaced ({}); set data.encoding to the file's encoding, or \
             data.on_invalid_utf8 = \"error\" to refuse them",
            notes.lossy.count,
            notes.lossy.first_lines[0],
            notes.lossy.lines()
        );
    }
    if notes.joined.count > 0 {
        tracing::warn!(
            "{file}: {} record(s) with a quoted field that runs over lines looking like rows \
             of their own ({}): a stray quote may have joined rows; each was read as one \
             row (data.quoting = \"none\" reads quotes as text)",
            notes.joined.count,
            notes.joined.lines()
        );
    }
    if let Some(t) = notes.skipped.get(EMPTY_TEXT) {
        tracing::warn!(
            "{file}: skipped {} row(s) with empty text ({}; \
             data.on_bad_row = \"error\" to refuse them)",
            t.count,
            t.lines()
        );
    }
    if let Some(t) = notes.skipped.get(EMPTY_LABEL) {
        tracing::warn!(
            "{file}: skipped {} row(s) with an empty or missing label in column {:?} ({}; \
             read as missing: empty, {}; data.on_bad_row = \"error\" to refuse them)",
            t.count,
            data.label,
            t.lines(),
            labels::MISSING.join(", ")
        );
    }
    if let Some(t) = notes.skipped.get(NOT_SAMPLED) {
        tracing::info!(
            "{file}: data.sample left out {} row(s) (a stratified sample, data.split.seed = {})",
            t.count,
            data.split.seed
        );
    }
    for m in &notes.merged {
        let variants: Vec<String> = m
            .variants
            .iter()
            .map(|(v, n)| format!("{v:?} ({n})"))
            .collect();
        let line = format!(
            "{file}: merged labels {} into class {:?} ({})",
            variants.join(", "),
            m.class,
            if m.rule == "label_map" {
                "data.label_map".to_string()
            } else {
                format!("data.label_normalize, {} variants", m.rule)
            }
        );
        if m.rule == "label_map" {
            tracing::info!("{line}");
        } else {
            tracing::warn!("{line}");
        }
    }
}
