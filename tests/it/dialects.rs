//! Delimited files in every dialect and encoding read the same rows as the clean CSV
//! (through the library, `lab::data::parse`, and the real binary), refusals name the
//! file, the physical line and the key, and line numbers are physical whatever the
//! line endings. The fixtures are the input cases `tsv-stray-quotes` and `utf16-export`.

use lab::data::read::{self, Detected, Input, ReadOptions, Record};
use lab::data::Table;
use lab::spec::{DataSection, OnBadRow, OnInvalidUtf8, Quoting};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Texts with commas, semicolons, quotes (opening, inch marks, `\"`, never closed) and
/// letters outside ASCII that windows-1252 has; no tabs and no line breaks.
fn rows() -> Vec<(String, &'static str)> {
    let shapes = [
        "\"Dull\" is the kindest word, take {i}",
        "\"Honestly the weakest ending; take {i}",
        "The 5\" screen was sharp, café {i}",
        "Lovely cast, \\\"superb\\\" score, naïve {i} €",
        "plain words {i}",
    ];
    (0..30)
        .map(|i| {
            let text = shapes[i % shapes.len()].replace("{i}", &i.to_string());
            (text, if i % 3 == 0 { "neg" } else { "pos" })
        })
        .collect()
}

/// The rows as RFC 4180 text with `delim`, every field quoted, lines ended by `nl`.
fn quoted(delim: char, nl: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = format!("text{delim}label{nl}");
    for (text, label) in rows() {
        out += &format!("{}{delim}{}{nl}", q(&text), q(label));
    }
    out
}

/// The rows as tab-separated text with no quoting convention.
fn tsv(nl: &str) -> String {
    let mut out = format!("text\tlabel{nl}");
    for (text, label) in rows() {
        out += &format!("{text}\t{label}{nl}");
    }
    out
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let units = std::iter::once(0xFEFF).chain(text.encode_utf16());
    units
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn section(set: impl FnOnce(&mut DataSection)) -> DataSection {
    let mut data = DataSection::default();
    set(&mut data);
    data
}

fn parse(name: &str, bytes: &[u8], data: &DataSection) -> anyhow::Result<Table> {
    lab::data::parse(bytes, Path::new(name), data)
}

fn detected(name: &str, bytes: &[u8], data: &DataSection) -> Detected {
    let input = Input::Bytes {
        name: name.into(),
        bytes: bytes.into(),
    };
    read::open(&input, data, ReadOptions::default())
        .unwrap()
        .detected()
        .clone()
}

/// What reading a file should detect (not gzip-compressed).
fn how(delim: char, quoting: &str, encoding: &str, bom: bool, sep_line: bool) -> Detected {
    Detected {
        format: "csv".into(),
        delimiter: Some(delim),
        quoting: Some(quoting.into()),
        encoding: encoding.into(),
        bom,
        sep_line,
        gzip: false,
    }
}

#[test]
fn every_dialect_and_encoding_reads_the_clean_csv_rows() {
    let clean = parse("clean.csv", quoted(',', "\n").as_bytes(), &section(|_| {})).unwrap();
    assert_eq!(clean.rows_read, 30);
    let cp1252 = |s: &str| encoding_rs::WINDOWS_1252.encode(s).0.into_owned();
    let none = section(|_| {});
    let semi = section(|d| d.delimiter = Some(";".into()));
    let latin = section(|d| d.encoding = Some("latin-1".into()));
    let bom8 = [b"\xef\xbb\xbf".as_slice(), quoted(',', "\r\n").as_bytes()].concat();
    let csv = |delim: char| how(delim, "rfc4180", "UTF-8", false, false);
    let tab = how('\t', "none", "UTF-8", false, false);
    let cases: Vec<(&str, Vec<u8>, &DataSection, Detected)> = vec![
        ("stray.tsv", tsv("\n").into_bytes(), &none, tab.clone()),
        ("cr.tsv", tsv("\r").into_bytes(), &none, tab),
        (
            "crlf.csv",
            quoted(',', "\r\n").into_bytes(),
            &none,
            csv(','),
        ),
        ("semi.csv", quoted(';', "\n").into_bytes(), &semi, csv(';')),
        (
            "sep.csv",
            format!("sep=;\r\n{}", quoted(';', "\r\n")).into_bytes(),
            &none,
            how(';', "rfc4180", "UTF-8", false, true),
        ),
        (
            "sep.txt",
            format!("sep=\t\n{}", tsv("\n")).into_bytes(),
            &none,
            how('\t', "none", "UTF-8", false, true),
        ),
        (
            "bom.csv",
            bom8,
            &none,
            how(',', "rfc4180", "UTF-8", true, false),
        ),
        (
            "le.tsv",
            utf16(&tsv("\r\n"), false),
            &none,
            how('\t', "none", "UTF-16LE", true, false),
        ),
        (
            "be.csv",
            utf16(&quoted(',', "\n"), true),
            &none,
            how(',', "rfc4180", "UTF-16BE", true, false),
        ),
        (
            "latin.csv",
            cp1252(&quoted(',', "\n")),
            &latin,
            how(',', "rfc4180", "windows-1252", false, false),
        ),
    ];
    for (name, bytes, data, mut want) in cases {
        for gzip in [false, true] {
            let (name, bytes) = if gzip {
                (format!("{name}.gz"), gz(&bytes))
            } else {
                (name.to_string(), bytes.clone())
            };
            let table = parse(&name, &bytes, data).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(table, clean, "{name}");
            want.gzip = gzip;
            assert_eq!(detected(&name, &bytes, data), want, "{name}");
        }
    }
}

#[test]
fn data_quoting_overrides_the_default_either_way() {
    // A CSV read with quoting "none" keeps the quotes as text.
    let plain = "text,label\n\"a\" film,pos\nb film,neg\n";
    let none = section(|d| d.quoting = Some(Quoting::None));
    assert_eq!(
        parse("q.csv", plain.as_bytes(), &none).unwrap().texts[0],
        "\"a\" film"
    );
    // A TSV read with RFC 4180 quoting takes a quoted field over two lines.
    let quoted = "text\tlabel\n\"two\nlines\"\tpos\nb\tneg\n";
    let rfc = section(|d| d.quoting = Some(Quoting::Rfc4180));
    let table = parse("q.tsv", quoted.as_bytes(), &rfc).unwrap();
    assert_eq!(table.texts, ["two\nlines", "b"]);
}

/// A file with a three-line quoted field (lines 3-5) before a bad row on line 7.
fn with_bad_row(nl: &str, bad: &str) -> String {
    [
        "text,label",
        "a fine film,pos",
        "\"a field",
        "over three",
        "lines\",neg",
        "ok,pos",
        bad,
        "end,neg",
    ]
    .join(nl)
        + nl
}

#[test]
fn errors_and_records_name_the_physical_line_for_lf_crlf_and_cr() {
    for nl in ["\n", "\r\n", "\r"] {
        let strict = section(|d| d.on_bad_row = Some(OnBadRow::Error));
        let err = parse("d.csv", with_bad_row(nl, " ,pos").as_bytes(), &strict).unwrap_err();
        assert!(
            format!("{err:#}").contains("d.csv, line 7: empty text"),
            "{nl:?}: {err:#}"
        );
        let err = parse(
            "d.csv",
            with_bad_row(nl, "a,b,c").as_bytes(),
            &section(|_| {}),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("d.csv, line 7: expected 2 fields"),
            "{nl:?}: {err:#}"
        );
        let text = with_bad_row(nl, "fine,pos") + nl + "after a blank line,pos" + nl;
        let input = Input::Bytes {
            name: "d.csv".into(),
            bytes: text.as_bytes().into(),
        };
        let mut records = read::open(&input, &section(|_| {}), ReadOptions::default()).unwrap();
        let mut rec = Record::default();
        let mut lines = Vec::new();
        while records.next_record(&mut rec).unwrap() {
            lines.push(rec.line);
        }
        assert_eq!(lines, [2, 3, 6, 7, 8, 10], "{nl:?}");
    }
}

#[test]
fn quotes_that_never_close_or_swallow_lines_name_the_line_they_open_on() {
    let open = "text,label\na,pos\nb,neg\n\"never closed,pos\nc,neg\n";
    let err = parse("d.csv", open.as_bytes(), &section(|_| {})).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("d.csv, line 4: unterminated quoted field"),
        "{msg}"
    );
    assert!(msg.contains("data.quoting = \"none\""), "{msg}");
    // A quote that would swallow the rest of a big file is stopped after 10,000 lines.
    let mut runaway = String::from("text,label\na,pos\n\"opens,neg\n");
    runaway += &"b,pos\n".repeat(10_050);
    let err = parse("d.csv", runaway.as_bytes(), &section(|_| {})).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(
            "d.csv, line 3: a quoted field opens here and runs over more than 10000 lines"
        ),
        "{msg}"
    );
    let swallow = "text,label\n\"opens,pos\nb,neg\nthe 5\" screen,pos\nd,neg\n";
    let err = parse("d.csv", swallow.as_bytes(), &section(|_| {})).unwrap_err();
    assert!(
        format!("{err:#}").contains("d.csv, line 2: a quoted field opens here"),
        "{err:#}"
    );
}

#[test]
fn encoding_problems_are_named_with_line_and_offset() {
    // UTF-16 without a BOM and no data.encoding.
    let no_bom = &utf16(&tsv("\n"), false)[2..];
    let err = parse("u.tsv", no_bom, &section(|_| {})).unwrap_err();
    assert!(
        format!("{err:#}").contains("looks like UTF-16LE")
            && format!("{err:#}").contains("data.encoding = \"utf-16le\""),
        "{err:#}"
    );
    let table = parse(
        "u.tsv",
        no_bom,
        &section(|d| d.encoding = Some("utf-16le".into())),
    )
    .unwrap();
    assert_eq!(table.rows_read, 30);
    let as_utf8 = section(|d| d.encoding = Some("utf-8".into()));
    let err = format!("{:#}", parse("u.tsv", no_bom, &as_utf8).unwrap_err());
    assert!(
        err.contains("u.tsv, line 1: header cell 1") && err.contains("NUL bytes"),
        "{err}"
    );
    // A header in windows-1252 read as UTF-8: the encoding is named, not a missing column.
    let header = encoding_rs::WINDOWS_1252
        .encode("crítica,label\nbuena,pos\nmala,neg\n")
        .0;
    let data = section(|d| d.text = "crítica".into());
    let err = format!("{:#}", parse("h.csv", &header, &data).unwrap_err());
    assert!(
        err.contains("h.csv, line 1: header cell 1") && err.contains("data.encoding"),
        "{err}"
    );
    assert_eq!(
        parse(
            "h.csv",
            &header,
            &section(|d| {
                d.text = "crítica".into();
                d.encoding = Some("windows-1252".into())
            })
        )
        .unwrap()
        .rows_read,
        2
    );
    // An unpaired surrogate in a UTF-16 field: flagged lossy, or refused with its offset.
    let mut bytes = utf16("text,label\nok,pos\nx", false);
    bytes.extend_from_slice(&[0x00, 0xDC]);
    bytes.extend(utf16(",neg\n", false).into_iter().skip(2));
    let table = parse("s.csv", &bytes, &section(|_| {})).unwrap();
    assert_eq!(table.texts[1], "x\u{FFFD}");
    let strict = section(|d| d.on_invalid_utf8 = Some(OnInvalidUtf8::Error));
    let err = format!("{:#}", parse("s.csv", &bytes, &strict).unwrap_err());
    assert!(
        err.contains("s.csv, line 3: invalid UTF-16LE in column \"text\" at byte offset 40"),
        "{err}"
    );
    // Invalid UTF-8 names the byte within the field.
    let err = format!(
        "{:#}",
        parse("b.csv", b"text,label\nok,pos\ncaf\xe9,neg\n", &strict).unwrap_err()
    );
    assert!(
        err.contains("b.csv, line 3: invalid UTF-8 in column \"text\" at byte 4 of the field"),
        "{err}"
    );
}

#[test]
fn a_one_column_header_with_a_delimiter_in_it_suggests_the_delimiter() {
    let semi = "id;score;text;label\n1;2;good;pos\n2;1;bad;neg\n";
    let err = format!(
        "{:#}",
        parse("s.csv", semi.as_bytes(), &section(|_| {})).unwrap_err()
    );
    assert!(
        err.contains("s.csv, line 1: no column \"text\" (data.text)")
            && err.contains("data.delimiter = \";\""),
        "{err}"
    );
    let tabs = "text\tlabel\ngood\tpos\n";
    let err = format!(
        "{:#}",
        parse("t.csv", tabs.as_bytes(), &section(|_| {})).unwrap_err()
    );
    assert!(err.contains("data.delimiter = \"\\t\""), "{err}");
}

// ---- the real binary -------------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn lab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .arg("--db")
        .arg(dir.join("lab.db"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("lab runs")
}

/// `lab prepare --json` on a fixture's spec: its report, or the failed output.
fn prepare(case: &str, set: &[&str]) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(case).join("spec.toml");
    let mut args = vec!["prepare", spec.to_str().unwrap(), "--json"];
    for s in set {
        args.extend(["--set", s]);
    }
    let out = lab(dir.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    if !out.status.success() {
        return Err(stderr);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(stdout.lines().next().unwrap()).unwrap())
}

#[test]
fn fixture_tsv_stray_quotes_reads_80_rows_or_names_the_opening_quote() {
    assert_eq!(prepare("tsv-stray-quotes", &[]).unwrap()["rows"], 80);
    // Forced RFC 4180 quoting: the quote opened on line 23 swallows lines.
    let err = prepare("tsv-stray-quotes", &["data.quoting=rfc4180"]).unwrap_err();
    assert!(
        err.contains("reviews.tsv, line 23: a quoted field opens here"),
        "{err}"
    );
}

#[test]
fn fixture_utf16_export_is_read_through_its_bom() {
    let report = prepare("utf16-export", &[]).unwrap();
    assert!(report["rows"].as_u64().unwrap() > 0, "{report}");
    let bytes = std::fs::read(fixture("utf16-export/reviews.tsv")).unwrap();
    let d = detected("reviews.tsv", &bytes, &section(|_| {}));
    assert_eq!(
        (d.encoding.as_str(), d.bom, d.delimiter),
        ("UTF-16LE", true, Some('\t'))
    );
    let table = parse("reviews.tsv", &bytes, &section(|_| {})).unwrap();
    assert!(table
        .texts
        .iter()
        .all(|t| !t.contains('\u{FFFD}') && !t.contains('\0')));
    assert_eq!(table.rows_read as u64, report["rows"].as_u64().unwrap());
}

#[test]
fn spec_refuses_unknown_encodings_and_bad_delimiters_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("tsv-stray-quotes/reviews.tsv"),
        dir.path().join("reviews.tsv"),
    )
    .unwrap();
    let spec = std::fs::read_to_string(fixture("tsv-stray-quotes/spec.toml")).unwrap();
    for (line, key, parts) in [
        (
            "encoding = \"klingon\"",
            "data.encoding",
            ["\"klingon\"", "windows-1252"],
        ),
        (
            "delimiter = \";;\"",
            "data.delimiter",
            ["\";;\"", "single character"],
        ),
        (
            "delimiter = '\"'",
            "data.delimiter",
            ["a quote cannot separate", "data.quoting"],
        ),
    ] {
        let text = spec.replace(
            "path = \"reviews.tsv\"",
            &format!("path = \"reviews.tsv\"\n{line}"),
        );
        std::fs::write(dir.path().join("spec.toml"), &text).unwrap();
        let out = lab(dir.path(), &["prepare", "spec.toml"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let at = text.lines().position(|l| l == line).unwrap() + 1;
        assert!(
            stderr.contains(&format!("spec.toml:{at}")) && stderr.contains(key),
            "{stderr}"
        );
        for part in parts {
            assert!(stderr.contains(part), "{part}: {stderr}");
        }
    }
}

#[test]
fn a_quote_that_joins_rows_and_closes_cleanly_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("text,label\n");
    for i in 0..40 {
        csv += &format!(
            "a {} film number {i},{}\n",
            ["fine", "dull"][i % 2],
            ["pos", "neg"][i % 2]
        );
        if i == 8 {
            // Lines 11-13 become one text: the inch mark closes the stray quote.
            csv += "\"Honestly the weakest,neg\na fine film,pos\nthe 5\",pos\n";
        }
    }
    std::fs::write(dir.path().join("d.csv"), csv).unwrap();
    let spec = std::fs::read_to_string(fixture("tsv-stray-quotes/spec.toml")).unwrap();
    std::fs::write(
        dir.path().join("spec.toml"),
        spec.replace("reviews.tsv", "d.csv"),
    )
    .unwrap();
    let out = lab(dir.path(), &["prepare", "spec.toml", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warning = "1 record(s) with a quoted field that runs over lines looking like rows \
                   of their own (line 11)";
    // Said once (not once per pass over the file), and counted in the data report.
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    let out = lab(dir.path(), &["data", "spec.toml", "--format", "json"]);
    assert!(out.status.success());
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let joined = &report["report"]["notes"]["joined"];
    assert_eq!(joined["count"], 1, "{report}");
    assert_eq!(joined["first_lines"][0], 11, "{report}");
}

/// The physical line of each record, or the error, of `text` read as `name`.
fn record_lines(name: &str, text: &[u8], data: &DataSection) -> Result<Vec<u64>, String> {
    let input = Input::Bytes {
        name: name.into(),
        bytes: text.into(),
    };
    let mut records =
        read::open(&input, data, ReadOptions::default()).map_err(|e| format!("{e:#}"))?;
    let mut rec = Record::default();
    let mut lines = Vec::new();
    while records
        .next_record(&mut rec)
        .map_err(|e| format!("{e:#}"))?
    {
        lines.push(rec.line);
    }
    Ok(lines)
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 300,
        failure_persistence: None,
        ..Default::default()
    })]

    /// Random pieces in every dialect and encoding: nothing panics, and LF, CRLF and
    /// CR files give the same records on the same lines (or the same error).
    #[test]
    fn any_input_in_any_dialect_never_panics_and_lines_agree(
        pieces in proptest::collection::vec(
            proptest::sample::select(vec!["\"", ",", ";", "\t", "NL", "NL", "a", "\"\"", " ", "é", "sep=;", "\0"]),
            0..60),
        raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60),
    ) {
        let shaped = |nl: &str| format!("text,label{nl}{}", pieces.concat().replace("NL", nl));
        let settings = [
            section(|_| {}),
            section(|d| d.quoting = Some(Quoting::None)),
            section(|d| d.encoding = Some("windows-1252".into())),
            section(|d| d.encoding = Some("utf-16be".into())),
        ];
        for data in &settings {
            let lf = record_lines("d.csv", shaped("\n").as_bytes(), data);
            for nl in ["\r\n", "\r"] {
                let other = record_lines("d.csv", shaped(nl).as_bytes(), data);
                // Messages differ only where a line ending is quoted inside them.
                proptest::prop_assert_eq!(lf.as_ref().ok(), other.as_ref().ok(), "{:?}", nl);
            }
            for name in ["d.tsv", "d.csv.gz", "d.csv"] {
                let _ = record_lines(name, &raw, data);
                let _ = record_lines(name, &utf16(&shaped("\n"), false), data);
            }
        }
    }
}
