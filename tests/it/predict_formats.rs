//! `lab predict --input` and `POST /v1/predict/csv` read what training reads (issue 13,
//! item 9): a model trained on a TSV predicts TSV, `;`-separated CSV (with
//! --delimiter), multi-line CSV and files without a known extension, writes each back in
//! its own format, and names physical lines in errors. Also the markup case (item 7):
//! a real run keeps the words between prose `<` and `>` and drops `<br />`.
//! Fixtures: tests/fixtures/predict-formats and tests/fixtures/markup-lt-gt.

use crate::common::Server;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of a fixture folder in a fresh directory (runs go next to it).
fn copy_case(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn lab_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(dir)
        .args(["--db", "runs/lab.db"])
        .args(args)
        .output()
        .expect("lab runs")
}

fn stdout_of(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lab failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr_of_failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a failure: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The predict-formats case trained once (on train.tsv) for this module's tests.
fn trained() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = copy_case("predict-formats");
        stdout_of(&lab_in(dir.path(), &["run", "spec.toml"]));
        dir
    })
    .path()
}

fn predict(args: &[&str]) -> Output {
    let mut all = vec!["predict", "--trial", "1"];
    all.extend_from_slice(args);
    lab_in(trained(), &all)
}

/// Rows of delimited text (header first), read with the csv crate.
fn rows(text: &str, delimiter: u8, quoting: bool) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(quoting)
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

const HEADER: [&str; 5] = [
    "text",
    "label",
    "predicted_label",
    "p_negative",
    "p_positive",
];

fn check_annotated(rows: &[Vec<String>], n: usize) {
    assert_eq!(rows[0], HEADER);
    assert_eq!(rows.len(), n + 1, "{rows:?}");
    for row in &rows[1..] {
        assert_eq!(row.len(), 5, "{row:?}");
        assert!(
            ["negative", "positive"].contains(&row[2].as_str()),
            "{row:?}"
        );
        let p: f64 = row[3].parse::<f64>().unwrap() + row[4].parse::<f64>().unwrap();
        assert!((p - 1.0).abs() < 1e-4, "{row:?}");
    }
}

#[test]
fn a_tsv_is_predicted_and_written_back_as_tsv() {
    let out = stdout_of(&predict(&["--input", "new.tsv"]));
    let tsv = rows(&out, b'\t', false);
    check_annotated(&tsv, 12);
    let input = std::fs::read_to_string(trained().join("new.tsv")).unwrap();
    for (got, want) in tsv.iter().zip(rows(&input, b'\t', false)) {
        assert_eq!(
            got[..2],
            want[..],
            "the input's fields come back as they were"
        );
    }
    // --output o.tsv writes the same bytes.
    stdout_of(&predict(&["--input", "new.tsv", "--output", "o.tsv"]));
    assert_eq!(
        std::fs::read_to_string(trained().join("o.tsv")).unwrap(),
        out
    );
    // A name lab does not know as a format reads as the training data did (TSV).
    std::fs::copy(trained().join("new.tsv"), trained().join("new.txt")).unwrap();
    let txt = stdout_of(&predict(&["--input", "new.txt"]));
    assert_eq!(txt, out);
}

#[test]
fn a_semicolon_csv_is_read_with_delimiter_and_written_with_it() {
    let tsv = rows(&stdout_of(&predict(&["--input", "new.tsv"])), b'\t', false);
    let out = stdout_of(&predict(&[
        "--input",
        "new_semicolon.csv",
        "--delimiter",
        ";",
    ]));
    assert!(out.starts_with("text;label;predicted_label;p_negative;p_positive\n"));
    let semi = rows(&out, b';', true);
    check_annotated(&semi, 12);
    // The same reviews: the same predictions.
    assert_eq!(semi, tsv);
    std::fs::write(trained().join("o_again.csv"), &out).unwrap();
    // Without the flag the `;` header is one column: an error that names the file.
    let err = stderr_of_failure(&predict(&["--input", "new_semicolon.csv"]));
    assert!(err.contains("new_semicolon.csv"), "{err}");
    assert!(err.contains("--column"), "{err}");
    // An annotated file cannot be annotated again: its prediction columns would repeat.
    let err = stderr_of_failure(&predict(&["--input", "o_again.csv", "--delimiter", ";"]));
    assert!(
        err.contains("already has a column `predicted_label`"),
        "{err}"
    );
    // A bad flag value is a usage error.
    let out = predict(&["--input", "new.tsv", "--delimiter", ";;"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn multiline_csv_rows_are_predicted_and_errors_name_the_physical_line() {
    let out = stdout_of(&predict(&["--input", "new_multiline.csv"]));
    let csv = rows(&out, b',', true);
    assert_eq!(csv[0], HEADER);
    assert_eq!(
        csv.len(),
        14,
        "13 reviews, four of them on three lines each"
    );
    assert!(csv[1][0].ends_with("Second line of the review.\nThird line."));
    // The unknown label is on physical line 22 (record 14).
    let err = stderr_of_failure(&predict(&[
        "--input",
        "new_multiline.csv",
        "--label-column",
        "label",
    ]));
    assert!(err.contains("new_multiline.csv, line 22"), "{err}");
    assert!(err.contains("\"neutral\""), "{err}");
    assert!(!err.contains("line 14"), "{err}");
}

#[test]
fn the_output_file_extension_can_ask_for_json_lines_or_json() {
    let tsv = rows(&stdout_of(&predict(&["--input", "new.tsv"])), b'\t', false);
    stdout_of(&predict(&["--input", "new.tsv", "--output", "o.jsonl"]));
    let jsonl = std::fs::read_to_string(trained().join("o.jsonl")).unwrap();
    let objects: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 12);
    for (object, row) in objects.iter().zip(&tsv[1..]) {
        assert_eq!(object["text"], row[0].as_str());
        assert_eq!(object["predicted_label"], row[2].as_str());
        let p = object["p_positive"]
            .as_f64()
            .expect("probabilities are numbers");
        assert!((p - row[4].parse::<f64>().unwrap()).abs() < 1e-6);
    }
    // Compressed in, compressed out.
    let tsv_bytes = std::fs::read(trained().join("new.tsv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tsv_bytes).unwrap();
    std::fs::write(trained().join("new.tsv.gz"), gz.finish().unwrap()).unwrap();
    stdout_of(&predict(&[
        "--input",
        "new.tsv.gz",
        "--output",
        "o.jsonl.gz",
    ]));
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(
            std::fs::File::open(trained().join("o.jsonl.gz")).unwrap(),
        ),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, jsonl);
    stdout_of(&predict(&["--input", "new.tsv", "--output", "o.json"]));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(trained().join("o.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap(), &objects);
}

/// new.tsv's (text, label) rows.
fn new_rows() -> Vec<(String, String)> {
    let input = std::fs::read_to_string(trained().join("new.tsv")).unwrap();
    rows(&input, b'\t', false)[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

#[test]
fn json_lines_and_json_inputs_come_back_in_their_format() {
    let tsv = rows(&stdout_of(&predict(&["--input", "new.tsv"])), b'\t', false);
    // Numbers stay numbers: an `id` field beside the text and label.
    let mut jsonl = String::new();
    for (i, (text, label)) in new_rows().iter().enumerate() {
        let object = serde_json::json!({"id": i + 1, "text": text, "label": label});
        jsonl.push_str(&format!("{object}\n"));
    }
    std::fs::write(trained().join("new.jsonl"), &jsonl).unwrap();
    let out = stdout_of(&predict(&["--input", "new.jsonl"]));
    let objects: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 12);
    for (i, (object, row)) in objects.iter().zip(&tsv[1..]).enumerate() {
        assert_eq!(object["id"], serde_json::json!(i + 1));
        assert_eq!(object["text"], row[0].as_str());
        assert_eq!(object["predicted_label"], row[2].as_str());
        assert!(object["p_negative"].is_number());
    }
    let array: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::write(
        trained().join("new.json"),
        serde_json::to_string_pretty(&array).unwrap(),
    )
    .unwrap();
    let out: Value = serde_json::from_str(&stdout_of(&predict(&["--input", "new.json"]))).unwrap();
    assert_eq!(out.as_array().unwrap(), &objects);
}

#[test]
fn a_parquet_input_is_written_back_as_parquet() {
    use arrow_array::{cast::AsArray, types::Float32Type, ArrayRef, RecordBatch, StringArray};
    let tsv = rows(&stdout_of(&predict(&["--input", "new.tsv"])), b'\t', false);
    let (texts, labels): (Vec<String>, Vec<String>) = new_rows().into_iter().unzip();
    let batch = RecordBatch::try_from_iter([
        (
            "text",
            std::sync::Arc::new(StringArray::from(texts)) as ArrayRef,
        ),
        (
            "label",
            std::sync::Arc::new(StringArray::from(labels)) as ArrayRef,
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(trained().join("new.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    stdout_of(&predict(&[
        "--input",
        "new.parquet",
        "--output",
        "o.parquet",
    ]));
    let file = std::fs::File::open(trained().join("o.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let batch = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, HEADER);
    assert_eq!(batch.num_rows(), 12);
    let predicted = batch.column(2).as_string::<i32>();
    let p_positive = batch.column(4).as_primitive::<Float32Type>();
    for (i, row) in tsv[1..].iter().enumerate() {
        assert_eq!(batch.column(0).as_string::<i32>().value(i), row[0]);
        assert_eq!(predicted.value(i), row[2]);
        assert!((f64::from(p_positive.value(i)) - row[4].parse::<f64>().unwrap()).abs() < 1e-6);
    }
}

#[test]
fn training_on_a_semicolon_csv_makes_semicolon_the_default() {
    let dir = copy_case("predict-formats");
    let semi = std::fs::read_to_string(dir.path().join("new_semicolon.csv")).unwrap();
    let train = std::fs::read_to_string(dir.path().join("train.tsv")).unwrap();
    std::fs::write(dir.path().join("train.csv"), train.replace('\t', ";")).unwrap();
    let spec = std::fs::read_to_string(dir.path().join("spec.toml")).unwrap();
    let spec = spec.replace(
        "path = \"train.tsv\"",
        "path = \"train.csv\"\ndelimiter = \";\"",
    );
    std::fs::write(dir.path().join("spec.toml"), spec).unwrap();
    stdout_of(&lab_in(dir.path(), &["run", "spec.toml"]));
    let out = stdout_of(&lab_in(
        dir.path(),
        &["predict", "1", "--input", "new_semicolon.csv"],
    ));
    check_annotated(&rows(&out, b';', true), semi.lines().count() - 1);
    // A .tsv input is still a TSV: its extension beats the training delimiter.
    let out = stdout_of(&lab_in(dir.path(), &["predict", "1", "--input", "new.tsv"]));
    check_annotated(&rows(&out, b'\t', false), 12);
}

fn post(server: &Server, path: &str, content_type: &str, body: &[u8]) -> (u16, String, String) {
    let response = ureq::AgentBuilder::new()
        .build()
        .post(&server.url(path))
        .set("Content-Type", content_type)
        .send_bytes(body);
    let r = match response {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    let status = r.status();
    let kind = r.header("Content-Type").unwrap_or("").to_string();
    (status, kind, r.into_string().unwrap())
}

#[test]
fn serve_reads_uploads_in_the_training_dialect_or_the_one_asked_for() {
    let dir = trained();
    let db = dir.join("runs/lab.db");
    let server = Server::start(&["serve", "--db", db.to_str().unwrap(), "--trial", "1"]);
    let cli = stdout_of(&predict(&["--input", "new.tsv"]));
    let tsv = std::fs::read(dir.join("new.tsv")).unwrap();
    // A raw body without a type of its own is read as the training data (TSV).
    let (status, kind, body) = post(&server, "/v1/predict/csv", "application/octet-stream", &tsv);
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("text/tab-separated-values"), "{kind}");
    assert_eq!(body, cli);
    let (status, _, body) = post(
        &server,
        "/v1/predict/csv",
        "text/tab-separated-values",
        &tsv,
    );
    assert_eq!((status, body.as_str()), (200, cli.as_str()));
    // A `;` CSV with ?delimiter=; comes back `;`-separated.
    let semi = std::fs::read(dir.join("new_semicolon.csv")).unwrap();
    let (status, kind, body) = post(&server, "/v1/predict/csv?delimiter=;", "text/csv", &semi);
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert_eq!(rows(&body, b';', true), rows(&cli, b'\t', false));
    // The same as a form upload, the delimiter as a part, the name from the file name.
    let boundary = "XlabBoundary";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"new_semicolon.csv\"\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&semi);
    form.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"delimiter\"\r\n\r\n;\r\n--{boundary}--\r\n")
            .as_bytes(),
    );
    let (status, _, form_body) = post(
        &server,
        "/v1/predict/csv",
        &format!("multipart/form-data; boundary={boundary}"),
        &form,
    );
    assert_eq!((status, form_body.as_str()), (200, body.as_str()));
    // Errors name the upload and the physical line; bad parameters are 400s.
    let multiline = std::fs::read(dir.join("new_multiline.csv")).unwrap();
    let broken = [&multiline[..], b"\"never closed,positive\n"].concat();
    let (status, _, body) = post(&server, "/v1/predict/csv", "text/csv", &broken);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("upload.csv, line 23"), "{body}");
    let (status, _, body) = post(&server, "/v1/predict/csv?delimiter=ab", "text/csv", &semi);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("delimiter"), "{body}");
}

#[test]
fn markup_goes_and_prose_angle_brackets_stay_in_a_real_run() {
    let dir = copy_case("markup-lt-gt");
    stdout_of(&lab_in(dir.path(), &["run", "spec.toml"]));
    let vocab = find(dir.path(), "vocab.json").expect("the trial's vocab.json");
    let vocab: Value = serde_json::from_str(&std::fs::read_to_string(vocab).unwrap()).unwrap();
    let words: Vec<&str> = vocab["itos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    for kept in ["zephyr", "marmot", "stars", "quokka"] {
        assert!(words.contains(&kept), "{kept} lost: {words:?}");
    }
    assert!(!words.contains(&"br"), "<br /> left `br` in the vocabulary");
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

#[test]
fn a_file_in_another_encoding_is_never_garbled_quietly() {
    // windows-1252 bytes: "caf\xe9" is not UTF-8.
    let mut bytes = b"text\tlabel\n".to_vec();
    for i in 0..4 {
        bytes.extend_from_slice(format!("a caf\u{e9} review {i}\tpositive\n").as_bytes());
    }
    let latin: Vec<u8> = String::from_utf8(bytes.clone())
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    std::fs::write(trained().join("latin.tsv"), &latin).unwrap();
    let out = predict(&["--input", "latin.tsv"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .contains("4 row(s) had bytes invalid in UTF-8 replaced by U+FFFD (lines 2, 3, 4, 5)")
            && stderr.contains("--encoding"),
        "{stderr}"
    );
    // With the encoding given, the text is read right and nothing is said.
    let out = predict(&["--input", "latin.tsv", "--encoding", "windows-1252"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("U+FFFD"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("a café review 0\tpositive"));
}

#[test]
fn label_column_follows_the_label_rules_training_used() {
    let dir = copy_case("predict-formats");
    let run = lab_in(
        dir.path(),
        &["run", "spec.toml", "--set", "data.label_normalize=case"],
    );
    stdout_of(&run);
    let input = "text\tlabel\n\
                 a gorgeous clever film\tPOSITIVE\n\
                 dull flat forgettable\tNegative\n\
                 no label here\tnan\n\
                 \tpositive\n";
    std::fs::write(dir.path().join("truth.tsv"), input).unwrap();
    let out = lab_in(
        dir.path(),
        &[
            "predict",
            "1",
            "--input",
            "truth.tsv",
            "--label-column",
            "label",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Case variants are the trained classes; the missing label and the empty text
    // are predicted but not scored, as training skips them.
    assert!(stderr.contains("of 2 rows)"), "{stderr}");
    assert!(
        stderr.contains("2 row(s) with an empty text or an empty/missing label"),
        "{stderr}"
    );
    assert_eq!(rows(&stdout_of(&out), b'\t', false).len(), 5);
    // Without label_normalize in the trial, a case variant is refused, naming its line.
    std::fs::write(trained().join("truth.tsv"), input).unwrap();
    let out = predict(&["--input", "truth.tsv", "--label-column", "label"]);
    let stderr = stderr_of_failure(&out);
    assert!(stderr.contains("line 2: label \"POSITIVE\""), "{stderr}");
}

#[test]
fn reading_errors_name_the_flag_or_query_parameter_not_the_spec_key() {
    // UTF-16LE without a byte-order mark: the reader asks for the encoding to be given.
    let text = "text\tlabel\na fine film\tpositive\n";
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    std::fs::write(trained().join("u16.tsv"), &bytes).unwrap();
    let stderr = stderr_of_failure(&predict(&["--input", "u16.tsv"]));
    assert!(stderr.contains("--encoding"), "{stderr}");
    assert!(!stderr.contains("data.encoding"), "{stderr}");
    let out = predict(&["--input", "u16.tsv", "--encoding", "utf-16le"]);
    assert!(stdout_of(&out).contains("a fine film\tpositive\t"));
}
