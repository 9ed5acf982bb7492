//! Reading a labelled CSV/TSV file (optionally gzip-compressed) into texts and class ids.

use crate::spec::{DataSection, OnBadRow, OnInvalidUtf8};
use anyhow::{bail, Context};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
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

/// `data.path`, resolved against `base_dir` when relative.
pub fn data_path(data: &DataSection, base_dir: &Path) -> PathBuf {
    if data.path.is_absolute() {
        data.path.clone()
    } else {
        base_dir.join(&data.path)
    }
}

/// The file's bytes as stored (still compressed for .gz): what the cache key hashes.
pub fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read data file {}", path.display()))
}

/// Read and parse the data file named by `data`.
pub fn load(data: &DataSection, base_dir: &Path) -> anyhow::Result<Table> {
    let path = data_path(data, base_dir);
    parse(&read_bytes(&path)?, &path, data)
}

fn is_gz(path: &Path) -> bool {
    path.to_string_lossy().to_ascii_lowercase().ends_with(".gz")
}

fn delimiter(data: &DataSection, path: &Path) -> anyhow::Result<u8> {
    match data.delimiter.as_deref() {
        Some("\\t") | Some("tab") => Ok(b'\t'),
        Some(d) if d.len() == 1 => Ok(d.as_bytes()[0]),
        Some(d) => bail!(
            "data.delimiter = {d:?} is not a single ASCII character (use e.g. \",\", \";\" or \"\\t\")"
        ),
        None => {
            let name = path.to_string_lossy().to_ascii_lowercase();
            let name = name.strip_suffix(".gz").unwrap_or(&name);
            Ok(if name.ends_with(".tsv") { b'\t' } else { b',' })
        }
    }
}

/// Parse `bytes` (the content of `path`, gzip-compressed when its name ends in .gz).
pub fn parse(bytes: &[u8], path: &Path, data: &DataSection) -> anyhow::Result<Table> {
    let file = path.display();
    let plain: Vec<u8>;
    let bytes = if is_gz(path) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .with_context(|| format!("{file}: not a valid gzip file"))?;
        plain = out;
        &plain[..]
    } else {
        bytes
    };
    let delim = delimiter(data, path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);

    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| row_error(&file, e))?
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        })
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        bail!("{file}: empty file, expected a header row naming the columns");
    }
    let column = |name: &str, key: &str| {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{file}: no column {name:?} ({key}); the header has columns: {}",
                headers.join(", ")
            )
        })
    };
    let text_col = column(&data.text, "data.text")?;
    let label_col = column(&data.label, "data.label")?;

    let mut texts = Vec::new();
    let mut names = Vec::new();
    let mut rows_read = 0;
    let mut rows_skipped = 0;
    let mut last_start: Option<(u64, u64)> = None;
    let (mut bad_utf8, mut bad_utf8_rows) = (None, 0usize);
    let mut record = csv::ByteRecord::new();
    while data.limit.is_none_or(|n| rows_read < n) {
        if !reader
            .read_byte_record(&mut record)
            .map_err(|e| row_error(&file, e))?
        {
            break;
        }
        let (line, start) = record
            .position()
            .map(|p| (p.line(), p.byte()))
            .unwrap_or((0, 0));
        last_start = Some((line, start));
        rows_read += 1;
        for (col, key) in [(text_col, &data.text), (label_col, &data.label)] {
            if std::str::from_utf8(&record[col]).is_err() {
                if data.on_invalid_utf8.unwrap_or_default() == OnInvalidUtf8::Error {
                    bail!(
                        "{file}, line {line}: invalid UTF-8 in column {key:?} \
                         (data.on_invalid_utf8 = \"error\"; \"lossy\" replaces bad bytes)"
                    );
                }
                bad_utf8.get_or_insert(line);
                bad_utf8_rows += 1;
            }
        }
        let text = String::from_utf8_lossy(&record[text_col]);
        if text.trim().is_empty() {
            if data.on_bad_row.unwrap_or_default() == OnBadRow::Error {
                bail!(
                    "{file}, line {line}: empty text in column {:?} \
                     (data.on_bad_row = \"error\"; \"skip\" skips and counts such rows)",
                    data.text
                );
            }
            rows_skipped += 1;
            continue;
        }
        let raw = String::from_utf8_lossy(&record[label_col]);
        let raw = raw.trim();
        if raw.is_empty() {
            bail!(
                "{file}, line {line}: empty label in column {:?}",
                data.label
            );
        }
        let name = data.label_map.get(raw).map_or(raw, String::as_str);
        texts.push(text.into_owned());
        names.push(name.to_string());
    }
    // The csv reader accepts a quote left open at the end of the file, swallowing the
    // rest of it into one field; only the last record read can be affected.
    if let Some((line, start)) = last_start {
        let at_end = reader.position().byte() as usize >= bytes.len();
        let rest = &bytes[(start as usize).min(bytes.len())..];
        if at_end && ends_inside_quotes(rest, delim) {
            bail!("{file}, line {line}: unterminated quoted field (a \" is never closed)");
        }
    }

    if let Some(line) = bad_utf8 {
        eprintln!(
            "warning: {file}: {bad_utf8_rows} field(s) with invalid UTF-8 (first at line {line}) \
             had bad bytes replaced; set data.on_invalid_utf8 = \"error\" to refuse them"
        );
    }
    if rows_skipped > 0 {
        eprintln!(
            "warning: {file}: skipped {rows_skipped} row(s) with empty text \
             (data.on_bad_row = \"error\" to refuse them)"
        );
    }
    let classes = sorted_classes(names.iter().map(String::as_str).collect());
    if classes.len() < 2 {
        bail!(
            "{file}: found {} class(es) ({}) in column {:?}, need at least 2 to classify",
            classes.len(),
            classes.join(", "),
            data.label
        );
    }
    let ids: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let labels = names.iter().map(|n| ids[n.as_str()]).collect();
    Ok(Table {
        texts,
        labels,
        classes,
        rows_read,
        rows_skipped,
    })
}

/// Whether `bytes` end inside a quoted field, by the csv crate's rules: a quote opens a
/// quoted field only at the start of a field, and `""` inside one is an escaped quote.
fn ends_inside_quotes(bytes: &[u8], delim: u8) -> bool {
    let mut in_quotes = false;
    let mut field_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else if b == b'"' && field_start {
            in_quotes = true;
        }
        field_start = !in_quotes && (b == delim || b == b'\n' || b == b'\r');
        i += 1;
    }
    in_quotes
}

fn row_error(file: &impl std::fmt::Display, e: csv::Error) -> anyhow::Error {
    let line = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos: Some(pos),
            expected_len,
            len,
        } => {
            return anyhow::anyhow!(
                "{file}, line {}: expected {expected_len} fields like the header, found {len}",
                pos.line()
            )
        }
        _ => e.position().map(|p| p.line()),
    };
    match line {
        Some(line) => anyhow::anyhow!("{file}, line {line}: {e}"),
        None => anyhow::anyhow!("{file}: {e}"),
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
