//! Reading a labelled CSV/TSV file (optionally gzip-compressed) into texts and class ids.

use crate::spec::{DataSection, OnBadRow, OnInvalidUtf8};
use anyhow::{bail, Context};
use std::borrow::Cow;
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

/// Read and parse the data file named by `data` (every text in memory: for big files
/// the pipeline streams through [`scan_file`] and `texts` instead).
pub fn load(data: &DataSection, base_dir: &Path) -> anyhow::Result<Table> {
    let path = data_path(data, base_dir);
    let mut texts = Vec::new();
    let labels = scan(open(&path)?, &path, data, |t| texts.push(t.into_owned()))?;
    Ok(labels.into_table(texts))
}

/// Parse `bytes` (the content of `path`, gzip-compressed when its name ends in .gz).
pub fn parse(bytes: &[u8], path: &Path, data: &DataSection) -> anyhow::Result<Table> {
    let input: Box<dyn Read + Send + '_> = if is_gz(path) {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut texts = Vec::new();
    let labels = scan(input, path, data, |t| texts.push(t.into_owned()))?;
    Ok(labels.into_table(texts))
}

fn is_gz(path: &Path) -> bool {
    path.to_string_lossy().to_ascii_lowercase().ends_with(".gz")
}

/// The file for streaming: buffered, gunzipped when its name ends in .gz.
fn open(path: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read data file {}", path.display()))?;
    let file = std::io::BufReader::with_capacity(1 << 16, file);
    Ok(if is_gz(path) {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
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

/// What a first pass over a data file finds: every kept row's class, the classes, counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// `labels[i]` indexes `classes`, one per kept row (rows with empty text are skipped).
    pub labels: Vec<u32>,
    /// Sorted class names (numerically when every name is a number).
    pub classes: Vec<String>,
    /// Data rows read (after `limit`), skipped ones included.
    pub rows_read: usize,
    /// Rows skipped because their text was empty or whitespace.
    pub rows_skipped: usize,
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
    scan(open(path)?, path, data, |_| {})
}

/// The texts of the kept rows of the file, in order, streamed to `f` until it returns
/// false; reads the `rows_read` data rows that [`scan_file`] read (it must have run
/// first: rows are skipped by the same rule, errors are not looked for again).
/// Returns the number of texts given to `f`.
pub fn texts(
    path: &Path,
    data: &DataSection,
    rows_read: usize,
    mut f: impl FnMut(String) -> bool,
) -> anyhow::Result<usize> {
    let mut rows = Rows::new(open(path)?, path, data)?;
    let mut kept = 0;
    while rows.rows_read < rows_read && rows.next()? {
        let text = String::from_utf8_lossy(&rows.record[rows.text_col]);
        if text.trim().is_empty() {
            continue;
        }
        kept += 1;
        if !f(text.into_owned()) {
            break;
        }
    }
    Ok(kept)
}

/// A data file's records after its header, with the text and label columns found.
struct Rows<R: Read> {
    reader: csv::Reader<QuoteTracker<R>>,
    file: String,
    gz: bool,
    text_col: usize,
    label_col: usize,
    record: csv::ByteRecord,
    rows_read: usize,
}

impl<R: Read> Rows<R> {
    fn new(input: R, path: &Path, data: &DataSection) -> anyhow::Result<Self> {
        let file = path.display().to_string();
        let delim = delimiter(data, path)?;
        let gz = is_gz(path);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(1 << 16)
            .from_reader(QuoteTracker::new(input, delim));
        let headers: Vec<String> = reader
            .byte_headers()
            .map_err(|e| row_error(&file, gz, e))?
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
        Ok(Rows {
            reader,
            file,
            gz,
            text_col,
            label_col,
            record: csv::ByteRecord::new(),
            rows_read: 0,
        })
    }

    /// Read the next record into `self.record`; false at the end of the file.
    fn next(&mut self) -> anyhow::Result<bool> {
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| row_error(&self.file, self.gz, e))?;
        self.rows_read += usize::from(more);
        Ok(more)
    }

    fn line(&self) -> u64 {
        self.record.position().map_or(0, |p| p.line())
    }
}

/// Read every data row (up to `data.limit`), check it, map its label and pass each kept
/// text to `keep`.
fn scan<R: Read>(
    input: R,
    path: &Path,
    data: &DataSection,
    mut keep: impl FnMut(Cow<str>),
) -> anyhow::Result<Labels> {
    let mut rows = Rows::new(input, path, data)?;
    let file = rows.file.clone();
    // Class ids in order of first appearance; renumbered in sorted order at the end.
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut labels = Vec::new();
    let mut rows_skipped = 0;
    let mut last_line = None;
    let mut at_end = false;
    let (mut bad_utf8, mut bad_utf8_rows) = (None, 0usize);
    while data.limit.is_none_or(|n| rows.rows_read < n) {
        if !rows.next()? {
            at_end = true;
            break;
        }
        let line = rows.line();
        last_line = Some(line);
        let record = &rows.record;
        for (col, key) in [(rows.text_col, &data.text), (rows.label_col, &data.label)] {
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
        let text = String::from_utf8_lossy(&record[rows.text_col]);
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
        let raw = String::from_utf8_lossy(&record[rows.label_col]);
        let raw = raw.trim();
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
        keep(text);
    }
    // The csv reader accepts a quote left open at the end of the file, swallowing the
    // rest of it into one field; only the last record read can be affected.
    if let Some(line) = last_line.filter(|_| at_end) {
        if rows.reader.get_ref().ends_in_quotes() {
            bail!("{file}, line {line}: unterminated quoted field (a \" is never closed)");
        }
    }

    if let Some(line) = bad_utf8 {
        tracing::warn!(
            "{file}: {bad_utf8_rows} field(s) with invalid UTF-8 (first at line {line}) \
             had bad bytes replaced; set data.on_invalid_utf8 = \"error\" to refuse them"
        );
    }
    if rows_skipped > 0 {
        tracing::warn!(
            "{file}: skipped {rows_skipped} row(s) with empty text \
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
    let sorted: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let renumber: Vec<u32> = names.iter().map(|n| sorted[n.as_str()]).collect();
    for l in labels.iter_mut() {
        *l = renumber[*l as usize];
    }
    Ok(Labels {
        labels,
        classes,
        rows_read: rows.rows_read,
        rows_skipped,
    })
}

/// Follows the quoting of every byte read through it, by the csv crate's rules (a quote
/// opens a quoted field only at the start of a field, and `""` inside one is an
/// escaped quote), so the end of the file can be checked for a quote never closed.
struct QuoteTracker<R> {
    inner: R,
    delim: u8,
    in_quotes: bool,
    /// Inside quotes, the last byte seen was a quote: it closes the field unless the
    /// next byte is another quote.
    pending_quote: bool,
    /// The byte before the next one (a newline at the start: a field starts there).
    prev: u8,
}

impl<R> QuoteTracker<R> {
    fn new(inner: R, delim: u8) -> Self {
        QuoteTracker {
            inner,
            delim,
            in_quotes: false,
            pending_quote: false,
            prev: b'\n',
        }
    }

    fn ends_in_quotes(&self) -> bool {
        self.in_quotes && !self.pending_quote
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if self.in_quotes {
                if self.pending_quote {
                    self.pending_quote = false;
                    if bytes[i] == b'"' {
                        i += 1; // an escaped quote
                    } else {
                        self.in_quotes = false;
                        self.prev = b'"';
                    }
                    continue;
                }
                match memchr::memchr(b'"', &bytes[i..]) {
                    None => i = bytes.len(),
                    Some(k) => {
                        let q = i + k;
                        match bytes.get(q + 1) {
                            None => {
                                self.pending_quote = true;
                                i = bytes.len();
                            }
                            Some(b'"') => i = q + 2, // an escaped quote
                            Some(_) => {
                                self.in_quotes = false;
                                self.prev = b'"';
                                i = q + 1;
                            }
                        }
                    }
                }
            } else {
                match memchr::memchr(b'"', &bytes[i..]) {
                    None => {
                        self.prev = bytes[bytes.len() - 1];
                        i = bytes.len();
                    }
                    Some(k) => {
                        let q = i + k;
                        let before = if q > 0 { bytes[q - 1] } else { self.prev };
                        if before == self.delim || before == b'\n' || before == b'\r' {
                            self.in_quotes = true;
                        }
                        self.prev = b'"';
                        i = q + 1;
                    }
                }
            }
        }
    }
}

impl<R: Read> Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }
}

fn row_error(file: &impl std::fmt::Display, gz: bool, e: csv::Error) -> anyhow::Error {
    let line = match e.kind() {
        csv::ErrorKind::Io(err) if gz => {
            return anyhow::anyhow!("{file}: not a valid gzip file ({err})")
        }
        csv::ErrorKind::Io(err) => return anyhow::anyhow!("{file}: cannot read ({err})"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-buffer rule the tracker streams: does `bytes` end inside quotes?
    fn reference(bytes: &[u8], delim: u8) -> bool {
        let (mut in_quotes, mut field_start, mut i) = (false, true, 0);
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

    #[test]
    fn quote_tracking_does_not_depend_on_read_sizes() {
        let cases: [&[u8]; 9] = [
            b"text,label\n\"a\",x\n",
            b"text,label\n\"open,x\n",
            b"text,label\n\"a \"\"quoted\"\" word\",x\n",
            b"text,label\n\"a \"\"",
            b"text,label\n\"a \"\"\"",
            b"text,label\na\"b,x\n\"c",
            b"text,label\n\"ab\"c,\"d\"\r\n\"",
            b"\"",
            b"text\tlabel\n\"x\ty\"\t\"z",
        ];
        for case in cases {
            let delim = if case.contains(&b'\t') { b'\t' } else { b',' };
            let want = reference(case, delim);
            for size in [1, 2, 3, 5, case.len()] {
                let mut t = QuoteTracker::new(&b""[..], delim);
                for chunk in case.chunks(size) {
                    t.feed(chunk);
                }
                assert_eq!(
                    t.ends_in_quotes(),
                    want,
                    "{:?} in reads of {size}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }
}
