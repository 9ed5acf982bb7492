//! The UTF-8 text a delimited file's csv reader parses: the file's bytes (gunzipped)
//! after a byte-order mark, transcoded when not UTF-8 (see [`super::decode`]), after an
//! Excel `sep=X` first line, with physical lines (and quotes) followed as it is read.

use super::decode::{self, Transcoder};
use super::lines::{LineTracker, QuoteTracker};
use super::Input;
use crate::spec::Quoting;
use std::io::Read;
use std::path::Path;

/// Where the text comes from: the file's bytes after its byte-order mark, as UTF-8.
enum Text {
    Utf8(Box<dyn Read + Send>),
    Transcoded(Transcoder),
}

/// The UTF-8 text the csv reader parses, after an Excel `sep=X` line, with its lines
/// (and, for RFC 4180 quoting, its quotes) followed as it is read.
pub(super) struct Source {
    /// The first bytes of the text, read to look for a `sep=` line.
    head: Vec<u8>,
    head_pos: usize,
    text: Text,
    pub(super) encoding: &'static encoding_rs::Encoding,
    pub(super) bom: bool,
    /// The delimiter a `sep=` line gave.
    pub(super) sep: Option<u8>,
    /// The physical line of the text's first byte (2 after a `sep=` line).
    pub(super) first_line: u64,
    pub(super) lines: LineTracker,
    pub(super) quotes: Option<QuoteTracker>,
    /// The whole text has been read.
    pub(super) eof: bool,
}

impl Source {
    /// Open the text of `input`; `label` is `data.encoding`, `file` names it in errors.
    /// # Errors
    /// The input cannot be read (or is not gzip when named `.gz`), `label` is not an
    /// encoding, or the file looks like UTF-16 without a BOM and no label says so.
    pub(super) fn open(input: &Input, label: Option<&str>, file: &str) -> anyhow::Result<Source> {
        let gz = input.is_gz();
        let mut raw = input.open()?;
        let mut prefix = Vec::with_capacity(decode::SNIFF_LEN);
        (&mut raw)
            .take(decode::SNIFF_LEN as u64)
            .read_to_end(&mut prefix)
            .map_err(|e| read_error(file, gz, e))?;
        let (encoding, bom_len) = decode::sniff(&prefix, label, file)?;
        prefix.drain(..bom_len);
        let rest: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(prefix).chain(raw));
        let mut text = if encoding == encoding_rs::UTF_8 {
            Text::Utf8(rest)
        } else {
            Text::Transcoded(Transcoder::new(rest, encoding, bom_len as u64))
        };
        let mut head = Vec::with_capacity(8);
        let reader: &mut dyn Read = match &mut text {
            Text::Utf8(r) => r,
            Text::Transcoded(t) => t,
        };
        reader
            .take(8)
            .read_to_end(&mut head)
            .map_err(|e| read_error(file, gz, e))?;
        let (sep, head_pos) = sep_line(&head).map_or((None, 0), |(d, n)| (Some(d), n));
        let first_line = 1 + u64::from(sep.is_some());
        Ok(Source {
            head,
            head_pos,
            text,
            encoding,
            bom: bom_len > 0,
            sep,
            first_line,
            lines: LineTracker::new(first_line),
            quotes: None,
            eof: false,
        })
    }

    /// Follow quotes too when `quoting` is RFC 4180.
    pub(super) fn track(mut self, quoting: Quoting, delim: u8) -> Self {
        self.quotes = (quoting == Quoting::Rfc4180).then(|| QuoteTracker::new(delim));
        self
    }

    /// Read text without following it.
    pub(super) fn read_text(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.head_pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.head_pos);
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            return Ok(n);
        }
        match &mut self.text {
            Text::Utf8(r) => r.read(buf),
            Text::Transcoded(t) => t.read(buf),
        }
    }

    /// The file offset of the first malformed sequence whose U+FFFD lies in
    /// `start..end` of the text; those before `end` are forgotten.
    pub(super) fn malformed_before(&mut self, start: u64, end: u64) -> Option<u64> {
        let Text::Transcoded(t) = &mut self.text else {
            return None;
        };
        let mut first = None;
        while let Some(m) = t.malformed.front().copied().filter(|m| m.out < end) {
            t.malformed.pop_front();
            if m.out >= start && first.is_none() {
                first = Some(m.at);
            }
        }
        first
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.read_text(buf)?;
        self.eof |= n == 0 && !buf.is_empty();
        self.lines.feed(&buf[..n]);
        if let Some(q) = &mut self.quotes {
            q.feed(&buf[..n]);
            // Stop the csv reader from buffering the rest of the file into one field.
            if q.runaway().is_some() {
                return Err(std::io::Error::other("a quoted field runs on"));
            }
        }
        Ok(n)
    }
}

/// An Excel `sep=X` first line in `head`: the delimiter and the line's length.
fn sep_line(head: &[u8]) -> Option<(u8, usize)> {
    if head.len() < 5 || !head[..4].eq_ignore_ascii_case(b"sep=") {
        return None;
    }
    let d = head[4];
    if !d.is_ascii() || d == b'\n' || d == b'\r' {
        return None;
    }
    match &head[5..] {
        [] => Some((d, 5)),
        [b'\r', b'\n', ..] => Some((d, 7)),
        [b'\n' | b'\r', ..] => Some((d, 6)),
        _ => None,
    }
}

/// What `path` is when it exists but is not a regular file (through symbolic
/// links): a FIFO or a device would block or never end, a directory fails late.
///
/// # Errors
/// The kind of file found and that lab reads only regular files.
pub fn check_regular(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // Missing: the opener says so.
    };
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(format!(
        "{} is {kind}, not a regular file; lab reads only regular files",
        path.display()
    ))
}

/// Opens `path` for reading after checking it is a regular file (before the
/// open: opening a FIFO blocks until a writer comes). `what` names it in errors.
///
/// # Errors
/// Not a regular file, or the open fails; both name `what` and the path.
pub fn open_regular(path: &Path, what: &str) -> anyhow::Result<std::fs::File> {
    check_regular(path).map_err(|why| anyhow::anyhow!("{what}: {why}"))?;
    std::fs::File::open(path).map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot read {what} {}", path.display()))
    })
}

fn read_error(file: &str, gz: bool, e: std::io::Error) -> anyhow::Error {
    if gz {
        anyhow::anyhow!("{file}: not a valid gzip file ({e})")
    } else {
        anyhow::Error::new(e).context(format!("cannot read data file {file}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sep_lines() {
        assert_eq!(sep_line(b"sep=;\r\ntext"), Some((b';', 7)));
        assert_eq!(sep_line(b"SEP=|\ntext"), Some((b'|', 6)));
        assert_eq!(sep_line(b"sep=\t"), Some((b'\t', 5)));
        assert_eq!(sep_line(b"sep=;x\n"), None);
        assert_eq!(sep_line(b"separator"), None);
    }
}
