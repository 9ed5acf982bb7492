//! The text encoding of a delimited file: a byte-order mark decides; else
//! `data.encoding`; else UTF-8. UTF-8 passes through untouched, so the common path costs
//! nothing; any other encoding is transcoded to UTF-8 by `encoding_rs` before the csv
//! reader, and every malformed sequence is recorded (its offset in the file and where
//! its U+FFFD lands in the output), so a lossy field is flagged and located.

use anyhow::bail;
use encoding_rs::{DecoderResult, Encoding, UTF_8};
use std::collections::VecDeque;
use std::io::Read;

/// How many bytes are looked at to tell the encoding.
pub(super) const SNIFF_LEN: usize = 4096;

/// The encoding a WHATWG `label` names ("utf-8", "utf-16le", "windows-1252",
/// "latin1", ...; case and surrounding blanks do not matter, and "latin-1" or "utf_8"
/// are taken for "latin1" and "utf8"). `None` for an unknown label and for the
/// "replacement" encoding, which would decode every file to one U+FFFD.
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let enc = Encoding::for_label(label.trim().as_bytes()).or_else(|| {
        let squeezed: String = label
            .trim()
            .chars()
            .filter(|c| !"-_".contains(*c))
            .collect();
        Encoding::for_label(squeezed.as_bytes())
    })?;
    (enc != encoding_rs::REPLACEMENT).then_some(enc)
}

/// The encoding of a stream starting with `prefix` and the length of its byte-order
/// mark (0 when none). `label` is `data.encoding`, for a file without a BOM.
/// # Errors
/// An unknown `label`, or no label and `prefix` looks like UTF-16 without a BOM.
pub(super) fn sniff(
    prefix: &[u8],
    label: Option<&str>,
    file: &str,
) -> anyhow::Result<(&'static Encoding, usize)> {
    if let Some(found) = Encoding::for_bom(prefix) {
        return Ok(found);
    }
    if let Some(label) = label {
        return match encoding_for_label(label) {
            Some(enc) => Ok((enc, 0)),
            None => bail!("{file}: data.encoding = {label:?} is not an encoding label"),
        };
    }
    if let Some(name) = looks_utf16(prefix) {
        bail!(
            "{file}: looks like {name} without a byte-order mark (a NUL byte beside most \
             characters); set data.encoding = {:?} (or save it as UTF-8)",
            name.to_ascii_lowercase()
        );
    }
    Ok((UTF_8, 0))
}

/// "UTF-16LE" or "UTF-16BE" when most byte pairs of `prefix` have a NUL on one side
/// (ASCII text in UTF-16); text in a single-byte encoding has next to no NULs.
fn looks_utf16(prefix: &[u8]) -> Option<&'static str> {
    let pairs = prefix.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even, mut odd) = (0, 0);
    for pair in prefix.chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    if odd * 3 >= pairs * 2 && even * 10 < pairs {
        Some("UTF-16LE")
    } else if even * 3 >= pairs * 2 && odd * 10 < pairs {
        Some("UTF-16BE")
    } else {
        None
    }
}

/// A malformed byte sequence met while transcoding.
#[derive(Debug, Clone, Copy)]
pub(super) struct Malformed {
    /// Where its U+FFFD is in the UTF-8 output.
    pub(super) out: u64,
    /// Its offset in the (decompressed) file, byte-order mark counted.
    pub(super) at: u64,
}

/// Transcodes a stream in `encoding` (its BOM already skipped) to UTF-8, writing
/// U+FFFD for each malformed sequence and recording it in `malformed`.
pub(super) struct Transcoder {
    inner: Box<dyn Read + Send>,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    eof: bool,
    /// The decoder has seen the end (it must not be called again).
    finished: bool,
    /// Offset in the file of `input[in_start]`.
    in_offset: u64,
    out: Vec<u8>,
    out_start: usize,
    out_end: usize,
    /// Bytes handed out so far plus those waiting in `out`.
    out_offset: u64,
    /// Malformed sequences whose records have not been read yet.
    pub(super) malformed: VecDeque<Malformed>,
}

const BUF: usize = 1 << 16;

impl Transcoder {
    /// Decode `inner` (which starts `skipped` bytes into the file) from `encoding`.
    pub(super) fn new(
        inner: Box<dyn Read + Send>,
        encoding: &'static Encoding,
        skipped: u64,
    ) -> Self {
        Transcoder {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; BUF],
            in_start: 0,
            in_end: 0,
            eof: false,
            finished: false,
            in_offset: skipped,
            out: vec![0; BUF],
            out_start: 0,
            out_end: 0,
            out_offset: 0,
            malformed: VecDeque::new(),
        }
    }

    /// Decode into the empty `out` buffer; leaves it empty only at the end.
    fn refill(&mut self) -> std::io::Result<()> {
        self.out_start = 0;
        self.out_end = 0;
        while !self.finished {
            if self.in_start == self.in_end && !self.eof {
                let n = self.inner.read(&mut self.input)?;
                self.eof = n == 0;
                (self.in_start, self.in_end) = (0, n);
            }
            // Three bytes are kept free for a U+FFFD.
            let room = self.out.len() - 3;
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.in_start..self.in_end],
                &mut self.out[self.out_end..room],
                self.eof,
            );
            self.in_start += read;
            self.in_offset += read as u64;
            self.out_end += written;
            match result {
                DecoderResult::InputEmpty if self.eof => self.finished = true,
                DecoderResult::InputEmpty if self.out_end > 0 => return Ok(()),
                DecoderResult::InputEmpty => {}
                DecoderResult::OutputFull => return Ok(()),
                DecoderResult::Malformed(bad, after) => {
                    let at = (self.in_offset).saturating_sub(u64::from(bad) + u64::from(after));
                    let out = self.out_offset + self.out_end as u64;
                    self.malformed.push_back(Malformed { out, at });
                    self.out[self.out_end..self.out_end + 3].copy_from_slice("\u{FFFD}".as_bytes());
                    self.out_end += 3;
                }
            }
        }
        Ok(())
    }
}

impl Read for Transcoder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.out_start == self.out_end {
            let before = self.out_offset;
            self.refill()?;
            self.out_offset = before + self.out_end as u64;
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.out[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcode(bytes: &[u8], enc: &'static Encoding) -> (String, Vec<(u64, u64)>) {
        let mut t = Transcoder::new(Box::new(std::io::Cursor::new(bytes.to_vec())), enc, 2);
        let mut out = String::new();
        t.read_to_string(&mut out).unwrap();
        (out, t.malformed.iter().map(|m| (m.out, m.at)).collect())
    }

    #[test]
    fn malformed_sequences_are_replaced_and_located() {
        // UTF-16LE "a", an unpaired low surrogate, "b"; the stream starts after a BOM.
        let (out, bad) = transcode(&[b'a', 0, 0x00, 0xDC, b'b', 0], encoding_rs::UTF_16LE);
        assert_eq!(out, "a\u{FFFD}b");
        assert_eq!(bad, [(1, 4)]);
        let (out, bad) = transcode(b"caf\xe9", encoding_rs::WINDOWS_1252);
        assert_eq!((out.as_str(), bad.len()), ("café", 0));
    }

    #[test]
    fn labels_and_utf16_sniffing() {
        assert_eq!(
            encoding_for_label("latin-1"),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert_eq!(encoding_for_label(" UTF-16 "), Some(encoding_rs::UTF_16LE));
        assert_eq!(encoding_for_label("replacement"), None);
        assert_eq!(encoding_for_label("klingon"), None);
        let le: Vec<u8> = "text\tlabel\n".bytes().flat_map(|b| [b, 0]).collect();
        let be: Vec<u8> = "text\tlabel\n".bytes().flat_map(|b| [0, b]).collect();
        assert_eq!(looks_utf16(&le), Some("UTF-16LE"));
        assert_eq!(looks_utf16(&be), Some("UTF-16BE"));
        assert_eq!(looks_utf16(b"text,label\n"), None);
        assert!(sniff(&le, None, "f").is_err());
        assert_eq!(
            sniff(&le, Some("utf-16le"), "f").unwrap().0,
            encoding_rs::UTF_16LE
        );
        assert_eq!(
            sniff(b"\xef\xbb\xbfx", Some("latin1"), "f").unwrap(),
            (UTF_8, 3)
        );
    }
}
