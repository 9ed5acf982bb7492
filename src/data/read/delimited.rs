//! Delimited text (CSV, TSV, any one-byte delimiter) through the csv crate, in any
//! encoding (see [`super::decode`]), with or without quote processing, with an Excel
//! `sep=X` first line honoured, and every line number physical (see [`super::lines`]).

use super::lines::LineTracker;
use super::source::Source;
use super::{Detected, Input, ReadOptions, Record, Records};
use crate::spec::{DataSection, OnInvalidUtf8, Quoting};
use anyhow::bail;

/// A delimited file's records after its header, with the selected columns found.
pub(super) struct Delimited {
    reader: csv::Reader<Source>,
    input: Input,
    /// `data.encoding`, to open the input again.
    encoding_label: Option<String>,
    file: String,
    columns: Vec<String>,
    detected: Detected,
    text_col: usize,
    label_col: Option<usize>,
    keys: [String; 2],
    all_fields: bool,
    refuse_lossy: bool,
    record: csv::ByteRecord,
    done: bool,
}

impl Delimited {
    /// Open `input` in the dialect and encoding `data` gives or the file shows, and
    /// read its header.
    /// # Errors
    /// See [`super::open`]; each error names the file (and the line where there is one).
    pub(super) fn open(
        input: &Input,
        data: &DataSection,
        opts: ReadOptions,
    ) -> anyhow::Result<Self> {
        let file = input.name();
        let source = Source::open(input, data.encoding.as_deref(), &file)?;
        let delim = match (delimiter(data)?, source.sep) {
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) if input.stem_lower().ends_with(".tsv") => b'\t',
            (None, None) => b',',
        };
        let quoting = data.quoting.unwrap_or(if delim == b'\t' {
            Quoting::None
        } else {
            Quoting::Rfc4180
        });
        let detected = Detected {
            format: "csv".into(),
            delimiter: Some(delim as char),
            quoting: Some(
                if quoting == Quoting::None {
                    "none"
                } else {
                    "rfc4180"
                }
                .into(),
            ),
            encoding: source.encoding.name().into(),
            bom: source.bom,
            sep_line: source.sep.is_some(),
            gzip: input.is_gz(),
        };
        let source = source.track(quoting, delim);
        let reader = csv::ReaderBuilder::new()
            .delimiter(delim)
            .quoting(quoting == Quoting::Rfc4180)
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(1 << 16)
            .from_reader(source);
        let mut this = Delimited {
            reader,
            input: input.clone(),
            encoding_label: data.encoding.clone(),
            file,
            columns: Vec::new(),
            detected,
            text_col: 0,
            label_col: None,
            keys: [data.text.clone(), data.label.clone()],
            all_fields: opts.all_fields,
            refuse_lossy: data.on_invalid_utf8.unwrap_or_default() == OnInvalidUtf8::Error,
            record: csv::ByteRecord::new(),
            done: false,
        };
        this.read_header(data, opts, delim)?;
        Ok(this)
    }

    /// Read and check the header; find the selected columns.
    fn read_header(
        &mut self,
        data: &DataSection,
        opts: ReadOptions,
        delim: u8,
    ) -> anyhow::Result<()> {
        let headers = match self.reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(self.row_error(e)),
        };
        let line = self.reader.get_mut().lines.record_line(0);
        let end = self.reader.position().byte();
        let bad = self.reader.get_mut().malformed_before(0, end);
        let file = &self.file;
        let mut columns = Vec::with_capacity(headers.len());
        for (i, cell) in headers.iter().enumerate() {
            let name = String::from_utf8_lossy(cell);
            if name.contains('\0') {
                bail!(
                    "{file}, line {line}: header cell {} ({name:?}) has NUL bytes: the file looks \
                     UTF-16 read as {}; set data.encoding = \"utf-16le\" (or \"utf-16be\")",
                    i + 1,
                    self.detected.encoding
                );
            }
            if name.contains('\u{FFFD}') {
                bail!(
                    "{file}, line {line}: header cell {} ({name:?}) is not valid {}{}: the file \
                     is in another encoding; set data.encoding (e.g. \"windows-1252\", \"utf-16le\")",
                    i + 1,
                    self.detected.encoding,
                    bad.map(|at| format!(" (byte offset {at})")).unwrap_or_default()
                );
            }
            columns.push(name.trim_start_matches('\u{feff}').trim().to_string());
        }
        if columns.iter().all(|h| h.is_empty()) {
            bail!("{file}: empty file, expected a header row naming the columns");
        }
        let column = |name: &str, key: &str| match columns.iter().position(|h| h == name) {
            Some(i) => Ok(i),
            None => Err(missing_column(file, line, &columns, delim, name, key)),
        };
        self.text_col = column(&data.text, "data.text")?;
        if opts.label {
            self.label_col = Some(column(&data.label, "data.label")?);
        }
        self.columns = columns;
        Ok(())
    }

    /// The physical line of byte `offset` of the text stream, found by reading the
    /// input again (for errors only).
    fn line_of(&self, offset: u64) -> u64 {
        let again = Source::open(&self.input, self.encoding_label.as_deref(), &self.file);
        let Ok(mut source) = again else { return 0 };
        let mut lines = LineTracker::new(source.first_line);
        let (mut fed, mut buf) = (0u64, vec![0u8; 1 << 16]);
        while fed < offset {
            let Ok(n) = source.read_text(&mut buf) else {
                break;
            };
            if n == 0 {
                break;
            }
            let take = n.min((offset - fed) as usize);
            lines.feed(&buf[..take]);
            fed += take as u64;
        }
        lines.line()
    }

    fn row_error(&mut self, e: csv::Error) -> anyhow::Error {
        let file = &self.file;
        let gz = self.detected.gzip;
        if let Some(open) = self
            .reader
            .get_ref()
            .quotes
            .as_ref()
            .and_then(|q| q.runaway())
        {
            return anyhow::anyhow!(
                "{file}, line {}: a quoted field opens here and runs over more than {} lines \
                 (a \" never closed? data.quoting = \"none\" reads quotes as text)",
                self.line_of(open),
                super::lines::MAX_FIELD_LINES
            );
        }
        let at = match e.kind() {
            csv::ErrorKind::Io(err) if gz => {
                return anyhow::anyhow!("{file}: not a valid gzip file ({err})")
            }
            csv::ErrorKind::Io(err) => return anyhow::anyhow!("{file}: cannot read ({err})"),
            _ => e.position().map(|p| p.byte()),
        };
        let Some(at) = at else {
            return anyhow::anyhow!("{file}: {e}");
        };
        // A quote that swallowed lines leaves a record with too few fields: say so.
        if let Err(quote) = self.check_quotes(self.reader.get_ref().eof) {
            return quote;
        }
        let line = self.reader.get_mut().lines.record_line(at);
        match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => anyhow::anyhow!(
                "{file}, line {line}: expected {expected_len} fields like the header, found {len}{}",
                self.hint_quoting()
            ),
            _ => anyhow::anyhow!("{file}, line {line}: {e}"),
        }
    }

    /// For a ragged row: how the quoting setting may be the cause.
    fn hint_quoting(&self) -> &'static str {
        match self.detected.quoting.as_deref() {
            Some("none") => {
                " (quotes are read as text here, data.quoting = \"none\"; \
                 if the file quotes fields that hold the delimiter, set data.quoting = \"rfc4180\")"
            }
            _ => "",
        }
    }

    /// Whether a record whose fields span lines holds lines that look like rows of
    /// their own (as many delimiters as the header): the mark of a stray quote that
    /// closed cleanly and joined rows. Counted by the label scan, said once.
    fn looks_joined(&self, record: &csv::ByteRecord) -> bool {
        let Some(delim) = self.detected.delimiter else {
            return false;
        };
        let seps = self.columns.len().saturating_sub(1);
        if seps == 0 || self.reader.get_ref().quotes.is_none() {
            return false;
        }
        record.iter().any(|field| {
            let text = String::from_utf8_lossy(field).replace("\r\n", "\n");
            let lines: Vec<&str> = text.split(['\n', '\r']).collect();
            let n = lines.len() - 1; // the last piece is not a whole line
            lines[..n].iter().any(|l| l.matches(delim).count() == seps)
        })
    }

    /// Refuse a quote that swallowed lines (RFC 4180 quoting only).
    fn check_quotes(&self, at_end: bool) -> anyhow::Result<()> {
        let Some(quotes) = &self.reader.get_ref().quotes else {
            return Ok(());
        };
        let tail =
            " (a text that starts with a quote? data.quoting = \"none\" reads quotes as text)";
        if let Some(open) = quotes.stray() {
            bail!(
                "{}, line {}: a quoted field opens here, runs over line breaks and closes in \
                 the middle of a field: a stray \" joined lines{tail}",
                self.file,
                self.line_of(open)
            );
        }
        match quotes.open_quote() {
            Some(open) if at_end => bail!(
                "{}, line {}: unterminated quoted field (a \" opens here and is never closed){tail}",
                self.file,
                self.line_of(open)
            ),
            _ => Ok(()),
        }
    }

    /// Decode `field` into `out`: true when it had bytes invalid in the encoding
    /// (`bad`: the record had a malformed sequence, at this offset in the file).
    fn field(
        &self,
        field: &[u8],
        out: &mut String,
        bad: Option<u64>,
        col: usize,
        line: u64,
    ) -> anyhow::Result<bool> {
        out.clear();
        let (lossy, at) = match std::str::from_utf8(field) {
            Ok(s) => {
                out.push_str(s);
                let lossy = bad.is_some() && s.contains('\u{FFFD}');
                (lossy, bad.map(|at| format!("byte offset {at} in the file")))
            }
            Err(e) => {
                out.push_str(&String::from_utf8_lossy(field));
                (
                    true,
                    Some(format!("byte {} of the field", e.valid_up_to() + 1)),
                )
            }
        };
        if lossy && self.refuse_lossy {
            let key = self
                .keys
                .get(usize::from(Some(col) == self.label_col))
                .map_or("", String::as_str);
            bail!(
                "{}, line {line}: invalid {} in column {key:?}{} (data.on_invalid_utf8 = \"error\"; \
                 \"lossy\" replaces bad bytes)",
                self.file,
                self.detected.encoding,
                at.map(|at| format!(" at {at}")).unwrap_or_default()
            );
        }
        Ok(lossy)
    }
}

impl Records for Delimited {
    fn next_record(&mut self, rec: &mut Record) -> anyhow::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let more = match self.reader.read_byte_record(&mut self.record) {
            Ok(more) => more,
            Err(e) => return Err(self.row_error(e)),
        };
        self.check_quotes(!more)?;
        if !more {
            self.done = true;
            return Ok(false);
        }
        let start = self.record.position().map_or(0, |p| p.byte());
        let end = self.reader.position().byte();
        let source = self.reader.get_mut();
        rec.line = source.lines.record_line(start);
        let bad = source.malformed_before(start, end);
        // Lines up to the next record's start; more than one: a field spans lines.
        let spans = source.lines.record_line(end) > rec.line + 1;
        let record = std::mem::take(&mut self.record);
        let result = self.fill(&record, rec, bad);
        rec.joined = spans && result.is_ok() && self.looks_joined(&record);
        self.record = record;
        result?;
        Ok(true)
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn detected(&self) -> &Detected {
        &self.detected
    }
}

impl Delimited {
    fn fill(
        &self,
        record: &csv::ByteRecord,
        rec: &mut Record,
        bad: Option<u64>,
    ) -> anyhow::Result<()> {
        rec.text_lossy = self.field(
            &record[self.text_col],
            &mut rec.text,
            bad,
            self.text_col,
            rec.line,
        )?;
        rec.label.clear();
        rec.label_lossy = false;
        if let Some(col) = self.label_col {
            rec.label_lossy = self.field(&record[col], &mut rec.label, bad, col, rec.line)?;
        }
        rec.fields.clear();
        if self.all_fields {
            for field in record.iter() {
                rec.fields.push(String::from_utf8_lossy(field).into_owned());
            }
        }
        Ok(())
    }
}

/// `data.delimiter` as a byte (validated at spec load; checked again for other callers).
fn delimiter(data: &DataSection) -> anyhow::Result<Option<u8>> {
    match data.delimiter.as_deref() {
        None => Ok(None),
        Some("\\t") | Some("tab") => Ok(Some(b'\t')),
        Some(d) if d.len() == 1 && !matches!(d, "\n" | "\r") => Ok(Some(d.as_bytes()[0])),
        Some(d) => bail!(
            "data.delimiter = {d:?} is not a single ASCII character (use e.g. \",\", \";\" or \"\\t\")"
        ),
    }
}

/// The error for a selected column the header lacks; a one-column header that
/// contains a likely delimiter says which delimiter to set.
fn missing_column(
    file: &str,
    line: u64,
    columns: &[String],
    delim: u8,
    name: &str,
    key: &str,
) -> anyhow::Error {
    if let [only] = columns {
        let count = |c: char| only.matches(c).count();
        let best = [';', '\t', '|', ',']
            .into_iter()
            .filter(|&c| c != delim as char)
            .max_by_key(|&c| count(c));
        if let Some(c) = best.filter(|&c| count(c) > 0) {
            let shown = if c == '\t' {
                "\\t".to_string()
            } else {
                c.to_string()
            };
            return anyhow::anyhow!(
                "{file}, line {line}: no column {name:?} ({key}): the header is one column, \
                 {only:?}, which looks {shown:?}-separated; set data.delimiter = \"{shown}\" \
                 (the delimiter read was {:?})",
                delim as char
            );
        }
    }
    anyhow::anyhow!(
        "{file}, line {line}: no column {name:?} ({key}); the header has columns: {}",
        columns.join(", ")
    )
}
