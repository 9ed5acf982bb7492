//! Physical lines and quotes of the text stream the csv reader parses, followed as the
//! bytes go by. The csv crate counts only `\n` (a CR-only file would be one line) and
//! reports where the previous record ended, not where a record starts after blank
//! lines; [`LineTracker`] gives the physical line of any record start instead.
//! [`QuoteTracker`] follows RFC 4180 quoting to catch quotes that swallow lines.

use std::collections::VecDeque;

/// Counts line breaks (`\n`, `\r\n` and a lone `\r` each end one line) and remembers
/// where each line's content starts, until a record start past it is asked for.
pub(super) struct LineTracker {
    /// Bytes fed so far.
    offset: u64,
    /// The physical line of the next byte.
    line: u64,
    /// The last byte fed (`\n` at the start: a line starts there).
    prev: u8,
    /// (offset, line) of the first non-break byte of each line not yet passed.
    starts: VecDeque<(u64, u64)>,
}

impl LineTracker {
    /// A tracker whose first byte is on physical line `first_line`.
    pub(super) fn new(first_line: u64) -> Self {
        LineTracker {
            offset: 0,
            line: first_line,
            prev: b'\n',
            starts: VecDeque::new(),
        }
    }

    /// The physical line of the next byte to be fed.
    pub(super) fn line(&self) -> u64 {
        self.line
    }

    /// Follow `bytes`, the next bytes of the stream.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => {
                    self.line += u64::from(self.prev != b'\r');
                    self.prev = b'\n';
                    i += 1;
                }
                b'\r' => {
                    self.line += 1;
                    self.prev = b'\r';
                    i += 1;
                }
                _ => {
                    if self.prev == b'\n' || self.prev == b'\r' {
                        self.starts.push_back((self.offset + i as u64, self.line));
                    }
                    // The byte at `i` is not a break, so a break found is past it.
                    match memchr::memchr2(b'\n', b'\r', &bytes[i..]) {
                        None => {
                            self.prev = bytes[bytes.len() - 1];
                            i = bytes.len();
                        }
                        Some(k) => {
                            self.prev = bytes[i + k - 1];
                            i += k;
                        }
                    }
                }
            }
        }
        self.offset += bytes.len() as u64;
    }

    /// The physical line of a record that starts at or after byte `at` (the csv
    /// reader's position after the previous record: blank lines may follow it).
    /// Positions asked for must not decrease.
    pub(super) fn record_line(&mut self, at: u64) -> u64 {
        while self.starts.front().is_some_and(|&(o, _)| o < at) {
            self.starts.pop_front();
        }
        self.starts.front().map_or(self.line, |&(_, line)| line)
    }
}

/// Follows the quoting of every byte read through it, by the csv crate's rules (a quote
/// opens a quoted field only at the start of a field, and `""` inside one is an
/// escaped quote), so a quote never closed, or one that swallows line breaks and then
/// closes in the middle of a field (a stray quote), is found with the offset it opened at.
pub(super) struct QuoteTracker {
    delim: u8,
    /// Bytes fed so far.
    offset: u64,
    in_quotes: bool,
    /// Inside quotes, the last byte seen was a quote: it closes the field unless the
    /// next byte is another quote.
    pending_quote: bool,
    /// The byte before the next one (a newline at the start: a field starts there).
    prev: u8,
    /// The offset of the quote that opened the current (or last) quoted field.
    open_at: u64,
    /// The current quoted field holds a line break.
    spanned: bool,
    /// The first quoted field that held a line break and closed before something
    /// other than a delimiter or a line end: the offset of its opening quote.
    stray: Option<u64>,
    /// Line breaks in the current quoted field.
    field_lines: u64,
    /// The opening quote of a field that ran over [`MAX_FIELD_LINES`] lines.
    runaway: Option<u64>,
}

/// More line breaks than this in one quoted field: a quote never closed, stopped before
/// the csv reader buffers the rest of a big file into one field.
pub(super) const MAX_FIELD_LINES: u64 = 10_000;

impl QuoteTracker {
    /// A tracker for fields separated by `delim`.
    pub(super) fn new(delim: u8) -> Self {
        QuoteTracker {
            delim,
            offset: 0,
            in_quotes: false,
            pending_quote: false,
            prev: b'\n',
            open_at: 0,
            spanned: false,
            stray: None,
            field_lines: 0,
            runaway: None,
        }
    }

    /// The stream so far ends inside a quoted field: the offset of its opening quote.
    pub(super) fn open_quote(&self) -> Option<u64> {
        (self.in_quotes && !self.pending_quote).then_some(self.open_at)
    }

    /// The offset of the opening quote of the first multi-line quoted field whose
    /// closing quote is followed by more text in the same field.
    pub(super) fn stray(&self) -> Option<u64> {
        self.stray
    }

    /// A quoted field closed; `next` is the byte after its closing quote.
    fn close(&mut self, next: u8) {
        self.in_quotes = false;
        self.prev = b'"';
        let ends_field = next == self.delim || next == b'\n' || next == b'\r';
        if self.spanned && !ends_field && self.stray.is_none() {
            self.stray = Some(self.open_at);
        }
    }

    /// The opening quote of a quoted field that ran over [`MAX_FIELD_LINES`] lines.
    pub(super) fn runaway(&self) -> Option<u64> {
        self.runaway
    }

    /// Count the line breaks in quoted bytes (a `\r\n` split between reads counts twice:
    /// the limit is not that exact).
    fn scan_quoted(&mut self, quoted: &[u8]) {
        for i in memchr::memchr2_iter(b'\n', b'\r', quoted) {
            self.spanned = true;
            self.field_lines += u64::from(quoted[i] == b'\n' || quoted.get(i + 1) != Some(&b'\n'));
        }
        if self.field_lines > MAX_FIELD_LINES && self.runaway.is_none() {
            self.runaway = Some(self.open_at);
        }
    }

    /// Follow `bytes`, the next bytes of the stream.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if self.in_quotes {
                if self.pending_quote {
                    self.pending_quote = false;
                    if bytes[i] == b'"' {
                        i += 1; // an escaped quote
                    } else {
                        self.close(bytes[i]);
                    }
                    continue;
                }
                match memchr::memchr(b'"', &bytes[i..]) {
                    None => {
                        self.scan_quoted(&bytes[i..]);
                        i = bytes.len();
                    }
                    Some(k) => {
                        let q = i + k;
                        self.scan_quoted(&bytes[i..q]);
                        match bytes.get(q + 1) {
                            None => {
                                self.pending_quote = true;
                                i = bytes.len();
                            }
                            Some(b'"') => i = q + 2, // an escaped quote
                            Some(&next) => {
                                self.close(next);
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
                            self.spanned = false;
                            self.field_lines = 0;
                            self.open_at = self.offset + q as u64;
                        }
                        self.prev = b'"';
                        i = q + 1;
                    }
                }
            }
        }
        self.offset += bytes.len() as u64;
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
                let mut t = QuoteTracker::new(delim);
                for chunk in case.chunks(size) {
                    t.feed(chunk);
                }
                assert_eq!(
                    t.open_quote().is_some(),
                    want,
                    "{:?} in reads of {size}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    #[test]
    fn a_quote_that_swallows_lines_and_closes_mid_field_is_stray() {
        let stray: &[u8] = b"t,l\n\"open,a\nok,b\nx \"quoted\" y,c\n";
        let fine: &[u8] = b"t,l\n\"two\nlines\",a\n\"one\"x,b\n";
        for size in [1, 2, 7, 100] {
            let (mut s, mut f) = (QuoteTracker::new(b','), QuoteTracker::new(b','));
            stray.chunks(size).for_each(|c| s.feed(c));
            fine.chunks(size).for_each(|c| f.feed(c));
            assert_eq!(s.stray(), Some(4), "reads of {size}");
            assert_eq!(f.stray(), None, "reads of {size}");
        }
    }

    #[test]
    fn record_lines_count_every_line_ending() {
        // Records start at lines 1, 2, 3 (a two-line field), 6 (after a blank line), 7.
        for nl in ["\n", "\r\n", "\r"] {
            let text = format!("h,l{nl}a,b{nl}\"x{nl}y\",c{nl}{nl}d,e{nl}f,g{nl}");
            let bytes = text.as_bytes();
            let at = |s: &str| text.find(s).unwrap() as u64;
            for size in [1, 2, 3, 64] {
                let mut t = LineTracker::new(1);
                bytes.chunks(size).for_each(|c| t.feed(c));
                let lines: Vec<u64> = [0, at("a,b"), at("\"x"), at("d,e") - 1, at("f,g")]
                    .iter()
                    .map(|&o| t.record_line(o))
                    .collect();
                assert_eq!(lines, [1, 2, 3, 6, 7], "{nl:?} in reads of {size}");
                assert_eq!(t.line(), 8);
            }
        }
    }
}
