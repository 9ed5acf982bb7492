//! JSON Lines (`.jsonl`, `.ndjson`: one object a line, streamed) and JSON arrays of
//! objects (`.json`, read whole: name big files `.jsonl`).
//!
//! `data.text` and `data.label` name fields; a name that is not a top-level key is
//! looked up as a dotted path (`review.body` is `{"review": {"body": ...}}`). Values
//! are kept as written: a number label `4.50` is the class `4.50`, never re-printed.
//! `null` reads as an empty field (counted and skipped by the label rules like an empty
//! CSV cell); a missing field, or a text that is not a string, is an error.
//! With [`ReadOptions::all_fields`] the columns are the top-level keys in first-seen
//! order over the whole file (a JSON Lines file is scanned once more for them); a
//! record lacking a key has an empty field; strings are unescaped, numbers and
//! booleans kept as written, objects and arrays given as compact JSON text.

use super::{Detected, Input, ReadOptions, Record, Records};
use crate::spec::DataSection;
use anyhow::{bail, Context};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::io::{BufRead, Read};

/// A JSON Lines file or a JSON array, yielding one record per object.
pub(super) struct Json {
    source: Source,
    file: String,
    text_key: String,
    label_key: Option<String>,
    all_fields: bool,
    columns: Vec<String>,
    detected: Detected,
    /// The whole file was decoded lossily (a `.json` read as JSON Lines).
    lossy_file: bool,
}

/// Where the objects come from.
enum Source {
    /// One object a physical line.
    Lines(Lines),
    /// The whole array in memory: `items` are the objects' byte ranges in `text`.
    Array {
        text: String,
        items: Vec<(usize, usize)>,
        next: usize,
        lines: LineCounter,
        /// The file had bytes that are not UTF-8 (replaced by U+FFFD).
        lossy: bool,
    },
}

impl Json {
    /// Open a JSON Lines file: its first object gives the columns (all objects' keys
    /// with `opts.all_fields`).
    pub(super) fn open_lines(
        input: &Input,
        data: &DataSection,
        opts: ReadOptions,
    ) -> anyhow::Result<Self> {
        let file = input.name();
        let mut reader = std::io::BufReader::with_capacity(1 << 16, input.open()?);
        let bom = skip_bom(&mut reader, &file)?;
        let columns = if opts.all_fields {
            let mut scan = Lines::new(Box::new(std::io::BufReader::new(input.open()?)));
            skip_bom(&mut scan.inner, &file)?;
            keys_of_lines(&mut scan, &file, usize::MAX)?
        } else {
            let mut peek = Lines::new(Box::new(std::io::BufReader::new(input.open()?)));
            skip_bom(&mut peek.inner, &file)?;
            // A bad first line is reported by the first read, with its line number.
            keys_of_lines(&mut peek, &file, 1).unwrap_or_default()
        };
        let source = Source::Lines(Lines::new(Box::new(reader)));
        Ok(Self::new(source, input, data, opts, columns, "jsonl", bom))
    }

    /// Open a JSON array of objects, read whole. A `.json` file whose first character
    /// is `{` is JSON Lines (as many datasets name theirs) and read as such.
    pub(super) fn open_array(
        input: &Input,
        data: &DataSection,
        opts: ReadOptions,
    ) -> anyhow::Result<Self> {
        let file = input.name();
        let mut bytes = Vec::new();
        input
            .open()?
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read data file {file}"))?;
        let bom = bom_len(&bytes, &file)? > 0;
        let (text, lossy) = match String::from_utf8(bytes) {
            Ok(s) => (s, false),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
        };
        let body = &text[if bom { 3 } else { 0 }..];
        if body.trim_start().starts_with('{') {
            let lines = Lines::new(Box::new(std::io::Cursor::new(body.to_string())));
            let mut scan = Lines::new(Box::new(std::io::Cursor::new(body.to_string())));
            let limit = if opts.all_fields { usize::MAX } else { 1 };
            let columns = keys_of_lines(&mut scan, &file, limit).unwrap_or_default();
            let mut json = Self::new(
                Source::Lines(lines),
                input,
                data,
                opts,
                columns,
                "jsonl",
                bom,
            );
            json.lossy_file = lossy;
            return Ok(json);
        }
        let items = array_items(&text, &file)?;
        let limit = if opts.all_fields { items.len() } else { 1 };
        let mut columns = Vec::new();
        for &(start, end) in items.iter().take(limit) {
            if let Ok(obj) = serde_json::from_str::<Object>(&text[start..end]) {
                add_keys(&mut columns, &obj);
            }
        }
        let source = Source::Array {
            text,
            items,
            next: 0,
            lines: LineCounter::default(),
            lossy,
        };
        Ok(Self::new(source, input, data, opts, columns, "json", bom))
    }

    fn new(
        source: Source,
        input: &Input,
        data: &DataSection,
        opts: ReadOptions,
        columns: Vec<String>,
        format: &str,
        bom: bool,
    ) -> Self {
        Json {
            source,
            file: input.name(),
            text_key: data.text.clone(),
            label_key: opts.label.then(|| data.label.clone()),
            all_fields: opts.all_fields,
            columns,
            detected: Detected {
                format: format.into(),
                encoding: "UTF-8".into(),
                bom,
                gzip: input.is_gz(),
                ..Default::default()
            },
            lossy_file: false,
        }
    }

    /// The next object's text (lossily decoded when `lossy`) and its physical line.
    fn next_object(&mut self) -> anyhow::Result<Option<(String, u64, bool)>> {
        match &mut self.source {
            Source::Lines(lines) => loop {
                if !lines
                    .next()
                    .with_context(|| format!("cannot read data file {}", self.file))?
                {
                    return Ok(None);
                }
                if lines.buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let (text, lossy) = match std::str::from_utf8(&lines.buf) {
                    Ok(s) => (s.to_string(), false),
                    Err(_) => (String::from_utf8_lossy(&lines.buf).into_owned(), true),
                };
                return Ok(Some((text, lines.line, lossy)));
            },
            Source::Array {
                text,
                items,
                next,
                lines,
                lossy,
            } => {
                let Some(&(start, end)) = items.get(*next) else {
                    return Ok(None);
                };
                *next += 1;
                let line = lines.line_at(text, start);
                Ok(Some((text[start..end].to_string(), line, *lossy)))
            }
        }
    }
}

impl Records for Json {
    fn next_record(&mut self, rec: &mut Record) -> anyhow::Result<bool> {
        let Some((json, line, lossy)) = self.next_object()? else {
            return Ok(false);
        };
        let lossy = lossy || self.lossy_file;
        let file = &self.file;
        let obj = parse_object(&json).map_err(|e| anyhow::anyhow!("{file}, line {line}{e}"))?;
        rec.line = line;
        let at = |key: &str, what: &str| {
            lookup(&obj, key, what).map_err(|e| anyhow::anyhow!("{file}, line {line}: {e}"))
        };
        let text = at(&self.text_key, "data.text")?;
        set_text(text, &mut rec.text).map_err(|found| {
            anyhow::anyhow!(
                "{file}, line {line}: field {:?} (data.text) is {found}, expected a string",
                self.text_key
            )
        })?;
        rec.text_lossy = lossy && rec.text.contains('\u{fffd}');
        rec.label.clear();
        rec.label_lossy = false;
        if let Some(key) = &self.label_key {
            set_label(at(key, "data.label")?, &mut rec.label).map_err(|found| {
                anyhow::anyhow!(
                    "{file}, line {line}: field {key:?} (data.label) is {found}, \
                     expected a string, number or boolean"
                )
            })?;
            rec.label_lossy = lossy && rec.label.contains('\u{fffd}');
        }
        rec.fields.clear();
        if self.all_fields {
            for col in &self.columns {
                let mut field = String::new();
                if let Some((_, raw)) = obj.0.iter().find(|(k, _)| k == col) {
                    set_field(raw, &mut field);
                }
                rec.fields.push(field);
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

/// A JSON object's members in file order, values unparsed.
struct Object<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parse one object; the error is `, column N: what` (the caller names file and line).
fn parse_object(json: &str) -> Result<Object<'_>, String> {
    serde_json::from_str::<Object>(json).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
        format!(", column {}: not valid JSON: {msg}", e.column())
    })
}

/// The value at `key` (named `what` in errors): a top-level key, else a dotted path
/// into nested objects. Errors: missing, or a key given twice in one object.
fn lookup<'a>(obj: &Object<'a>, key: &str, what: &str) -> Result<&'a RawValue, String> {
    if let Some(raw) = member(obj, key)? {
        return Ok(raw);
    }
    let missing = || {
        let keys: Vec<&str> = obj.0.iter().map(|(k, _)| k.as_str()).collect();
        format!(
            "no field {key:?} ({what}); the object has keys: {}",
            keys.join(", ")
        )
    };
    let Some((head, rest)) = key.split_once('.') else {
        return Err(missing());
    };
    let mut raw = member(obj, head)?.ok_or_else(missing)?;
    for part in rest.split('.') {
        let nested: Object<'a> = serde_json::from_str(raw.get()).map_err(|_| missing())?;
        raw = member(&nested, part)?.ok_or_else(missing)?;
    }
    Ok(raw)
}

/// The member `key` of `obj`, refusing a key given twice.
fn member<'a>(obj: &Object<'a>, key: &str) -> Result<Option<&'a RawValue>, String> {
    let mut found = obj.0.iter().filter(|(k, _)| k == key).map(|(_, v)| *v);
    let first = found.next();
    if first.is_some() && found.next().is_some() {
        return Err(format!("key {key:?} appears twice in the object"));
    }
    Ok(first)
}

/// What kind of JSON value `raw` is, in words.
fn kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Unescape the JSON string `raw` into `out`.
fn unescape(raw: &str, out: &mut String) {
    out.clear();
    if !raw.contains('\\') && raw.len() >= 2 {
        out.push_str(&raw[1..raw.len() - 1]);
    } else if let Ok(s) = serde_json::from_str::<String>(raw) {
        out.push_str(&s);
    }
}

/// A text: a string, or null (empty). Err: the kind found instead.
fn set_text(raw: &RawValue, out: &mut String) -> Result<(), &'static str> {
    out.clear();
    match kind(raw) {
        "null" => Ok(()),
        "a string" => {
            unescape(raw.get(), out);
            Ok(())
        }
        other => Err(other),
    }
}

/// A label: a string, a number or boolean as written, or null (empty).
fn set_label(raw: &RawValue, out: &mut String) -> Result<(), &'static str> {
    out.clear();
    match kind(raw) {
        "null" => Ok(()),
        "a string" => {
            unescape(raw.get(), out);
            Ok(())
        }
        "a number" | "a boolean" => {
            out.push_str(raw.get().trim());
            Ok(())
        }
        other => Err(other),
    }
}

/// Any field, for writing back: strings unescaped, objects/arrays as compact JSON.
fn set_field(raw: &RawValue, out: &mut String) {
    out.clear();
    match kind(raw) {
        "null" => {}
        "a string" => unescape(raw.get(), out),
        "an object" | "an array" => match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(v) => out.push_str(&v.to_string()),
            Err(_) => out.push_str(raw.get()),
        },
        _ => out.push_str(raw.get().trim()),
    }
}

/// Append `obj`'s keys not yet in `columns`.
fn add_keys(columns: &mut Vec<String>, obj: &Object) {
    for (k, _) in &obj.0 {
        if !columns.contains(k) {
            columns.push(k.clone());
        }
    }
}

/// The keys of the first `limit` objects of a JSON Lines stream, in first-seen order.
fn keys_of_lines(lines: &mut Lines, file: &str, limit: usize) -> anyhow::Result<Vec<String>> {
    let mut columns = Vec::new();
    let mut seen = 0;
    while seen < limit
        && lines
            .next()
            .with_context(|| format!("cannot read data file {file}"))?
    {
        if lines.buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        seen += 1;
        let text = String::from_utf8_lossy(&lines.buf);
        let obj =
            parse_object(&text).map_err(|e| anyhow::anyhow!("{file}, line {}{e}", lines.line))?;
        add_keys(&mut columns, &obj);
    }
    Ok(columns)
}

/// The byte ranges of the objects of a JSON array (`text` is the whole file).
fn array_items(text: &str, file: &str) -> anyhow::Result<Vec<(usize, usize)>> {
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
        let line = LineCounter::default().line_at(text, serde_offset(text, e.line(), e.column()));
        let msg = e.to_string();
        let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
        anyhow::anyhow!(
            "{file}, line {line}, column {}: not a valid JSON array of objects: {msg}",
            e.column()
        )
    })?;
    let base = text.as_ptr() as usize;
    let mut ranges = Vec::with_capacity(items.len());
    let mut lines = LineCounter::default();
    for raw in items {
        let start = raw.get().as_ptr() as usize - base;
        if kind(raw) != "an object" {
            bail!(
                "{file}, line {}: array element is {}, expected an object",
                lines.line_at(text, start),
                kind(raw)
            );
        }
        ranges.push((start, start + raw.get().len()));
    }
    Ok(ranges)
}

/// The byte offset of serde_json's (line, column), which count `\n` only.
fn serde_offset(text: &str, line: usize, column: usize) -> usize {
    let start = if line <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', text.as_bytes())
            .nth(line - 2)
            .map_or(text.len(), |i| i + 1)
    };
    (start + column.saturating_sub(1)).min(text.len())
}

/// Physical line numbers of increasing offsets (a line ends in `\n`, `\r\n` or `\r`).
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, text: &str, offset: usize) -> u64 {
        let bytes = text.as_bytes();
        for (i, &b) in bytes[self.offset..offset].iter().enumerate() {
            let at = self.offset + i;
            if b == b'\n' || (b == b'\r' && bytes.get(at + 1) != Some(&b'\n')) {
                self.line += 1;
            }
        }
        self.offset = offset;
        self.line + 1
    }
}

/// Physical lines of a byte stream, ending in `\n`, `\r\n` or `\r` (JSON strings
/// cannot hold a raw line break, so every one ends a line).
struct Lines {
    inner: Box<dyn BufRead + Send>,
    /// The current line, without its end.
    buf: Vec<u8>,
    /// Its 1-based number.
    line: u64,
    /// The last line ended in `\r`: a `\n` next belongs to it.
    after_cr: bool,
}

impl Lines {
    fn new(inner: Box<dyn BufRead + Send>) -> Self {
        Lines {
            inner,
            buf: Vec::new(),
            line: 0,
            after_cr: false,
        }
    }

    /// Read the next line into `buf`; false at the end.
    fn next(&mut self) -> std::io::Result<bool> {
        self.buf.clear();
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                self.line += 1;
                return Ok(true);
            }
            if std::mem::take(&mut self.after_cr) && avail[0] == b'\n' {
                self.inner.consume(1);
                continue;
            }
            match memchr::memchr2(b'\n', b'\r', avail) {
                Some(i) => {
                    self.buf.extend_from_slice(&avail[..i]);
                    self.after_cr = avail[i] == b'\r';
                    self.inner.consume(i + 1);
                    self.line += 1;
                    return Ok(true);
                }
                None => {
                    let n = avail.len();
                    self.buf.extend_from_slice(avail);
                    self.inner.consume(n);
                }
            }
        }
    }
}

/// Skip a UTF-8 byte-order mark at the start of `reader`; true when there was one.
fn skip_bom(reader: &mut dyn BufRead, file: &str) -> anyhow::Result<bool> {
    let head = reader
        .fill_buf()
        .with_context(|| format!("cannot read data file {file}"))?;
    let n = bom_len(head, file)?;
    reader.consume(n);
    Ok(n > 0)
}

/// The length of a UTF-8 BOM at the start of `head`. Errors: a UTF-16 BOM (JSON is UTF-8).
fn bom_len(head: &[u8], file: &str) -> anyhow::Result<usize> {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        bail!(
            "{file}, line 1: the file is UTF-16 (it starts with a UTF-16 byte-order mark); \
             JSON data files must be UTF-8: save it as UTF-8"
        );
    }
    Ok(if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(bytes: &[u8]) -> Vec<(u64, String)> {
        let mut l = Lines::new(Box::new(std::io::Cursor::new(bytes.to_vec())));
        let mut out = Vec::new();
        while l.next().unwrap() {
            out.push((l.line, String::from_utf8(l.buf.clone()).unwrap()));
        }
        out
    }

    #[test]
    fn lines_end_in_lf_crlf_or_cr() {
        let want = vec![
            (1, "a".to_string()),
            (2, "b".into()),
            (3, "".into()),
            (4, "c".into()),
        ];
        assert_eq!(lines_of(b"a\nb\n\nc\n"), want);
        assert_eq!(lines_of(b"a\r\nb\r\n\r\nc"), want);
        assert_eq!(lines_of(b"a\rb\r\rc\r"), want);
    }

    #[test]
    fn dotted_paths_and_numbers_as_written() {
        let obj: Object =
            serde_json::from_str(r#"{"a.b": 1, "r": {"body": "x\"y", "n": 4.50}}"#).unwrap();
        assert_eq!(lookup(&obj, "a.b", "k").unwrap().get(), "1");
        let mut s = String::new();
        set_text(lookup(&obj, "r.body", "k").unwrap(), &mut s).unwrap();
        assert_eq!(s, "x\"y");
        set_label(lookup(&obj, "r.n", "k").unwrap(), &mut s).unwrap();
        assert_eq!(s, "4.50");
        let e = lookup(&obj, "r.none", "data.text").unwrap_err();
        assert!(e.contains("no field \"r.none\" (data.text)"), "{e}");
        assert!(lookup(&obj, "zz", "k").is_err());
    }

    #[test]
    fn line_counter_counts_every_line_end() {
        let text = "a\r\nb\rc\nd";
        let mut c = LineCounter::default();
        assert_eq!(c.line_at(text, 0), 1);
        assert_eq!(c.line_at(text, 3), 2);
        assert_eq!(c.line_at(text, 5), 3);
        assert_eq!(c.line_at(text, 7), 4);
    }
}
