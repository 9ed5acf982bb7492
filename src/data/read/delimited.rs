//! Delimited text (CSV, TSV, any one-byte delimiter) through the csv crate.

use super::{Detected, Input, ReadOptions, Record, Records};
use crate::spec::DataSection;
use anyhow::{bail, Context};
use std::io::Read;

/// A delimited file's records after its header, with the selected columns found.
pub(super) struct Delimited {
    reader: csv::Reader<QuoteTracker<Box<dyn Read + Send>>>,
    file: String,
    gz: bool,
    columns: Vec<String>,
    detected: Detected,
    text_col: usize,
    label_col: Option<usize>,
    all_fields: bool,
    record: csv::ByteRecord,
    done: bool,
}

impl Delimited {
    pub(super) fn open(
        input: &Input,
        data: &DataSection,
        opts: ReadOptions,
    ) -> anyhow::Result<Self> {
        let file = input.name();
        let delim = delimiter(data, input)?;
        let gz = input.is_gz();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(1 << 16)
            .from_reader(QuoteTracker::new(input.open()?, delim));
        let columns: Vec<String> = reader
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
        if columns.iter().all(|h| h.is_empty()) {
            bail!("{file}: empty file, expected a header row naming the columns");
        }
        let column = |name: &str, key: &str| {
            columns.iter().position(|h| h == name).with_context(|| {
                format!(
                    "{file}: no column {name:?} ({key}); the header has columns: {}",
                    columns.join(", ")
                )
            })
        };
        let text_col = column(&data.text, "data.text")?;
        let label_col = if opts.label {
            Some(column(&data.label, "data.label")?)
        } else {
            None
        };
        let detected = Detected {
            format: "csv".into(),
            delimiter: Some(delim as char),
            quoting: Some("rfc4180".into()),
            encoding: "UTF-8".into(),
            bom: false,
            sep_line: false,
            gzip: gz,
        };
        Ok(Delimited {
            reader,
            file,
            gz,
            columns,
            detected,
            text_col,
            label_col,
            all_fields: opts.all_fields,
            record: csv::ByteRecord::new(),
            done: false,
        })
    }
}

impl Records for Delimited {
    fn next_record(&mut self, rec: &mut Record) -> anyhow::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let line = self.record.position().map_or(0, |p| p.line());
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| row_error(&self.file, self.gz, e))?;
        if !more {
            self.done = true;
            // The csv reader accepts a quote left open at the end of the file,
            // swallowing the rest of it into one field: only the last record.
            if self.reader.get_ref().ends_in_quotes() {
                bail!(
                    "{}, line {line}: unterminated quoted field (a \" is never closed)",
                    self.file
                );
            }
            return Ok(false);
        }
        rec.line = self.record.position().map_or(0, |p| p.line());
        rec.text_lossy = decode_into(&self.record[self.text_col], &mut rec.text);
        rec.label.clear();
        rec.label_lossy = false;
        if let Some(col) = self.label_col {
            rec.label_lossy = decode_into(&self.record[col], &mut rec.label);
        }
        rec.fields.clear();
        if self.all_fields {
            for field in self.record.iter() {
                rec.fields.push(String::from_utf8_lossy(field).into_owned());
            }
        }
        Ok(true)
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn detected(&self) -> &Detected {
        &self.detected
    }
}

/// Decode UTF-8 `bytes` into `out` (reused), replacing bad bytes; true when some were.
fn decode_into(bytes: &[u8], out: &mut String) -> bool {
    out.clear();
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            out.push_str(s);
            false
        }
        Err(_) => {
            out.push_str(&String::from_utf8_lossy(bytes));
            true
        }
    }
}

fn delimiter(data: &DataSection, input: &Input) -> anyhow::Result<u8> {
    match data.delimiter.as_deref() {
        Some("\\t") | Some("tab") => Ok(b'\t'),
        Some(d) if d.len() == 1 => Ok(d.as_bytes()[0]),
        Some(d) => bail!(
            "data.delimiter = {d:?} is not a single ASCII character (use e.g. \",\", \";\" or \"\\t\")"
        ),
        None => Ok(if input.stem_lower().ends_with(".tsv") {
            b'\t'
        } else {
            b','
        }),
    }
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
