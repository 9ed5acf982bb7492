//! Data file formats besides delimited text: JSON Lines, JSON arrays, Parquet (any
//! codec, several row groups, string/integer/dictionary labels), gzip around each,
//! and `hf://` datasets from a Hugging Face cache the test builds. Each reads the same
//! rows as the equivalent clean CSV; each refusal names the file, the line and the key.

use crate::common::ok;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray};
use lab::data::read::{self, Input, ReadOptions, Record};
use lab::data::{self, Table};
use lab::spec::DataSection;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use tempfile::TempDir;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jsonl-input");

/// The fixture's rows: (text, label) of each line of reviews.jsonl.
fn fixture_rows() -> Vec<(String, String)> {
    let jsonl = std::fs::read_to_string(Path::new(FIXTURE).join("reviews.jsonl")).unwrap();
    jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["text"].as_str().unwrap().to_string(),
                v["label"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[(String, String)]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(["text", "label"]).unwrap();
    for (t, l) in rows {
        w.write_record([t, l]).unwrap();
    }
    w.flush().unwrap();
}

fn gzip(path: &Path, to: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&bytes).unwrap();
    gz.finish().unwrap();
}

fn section(path: &Path) -> DataSection {
    DataSection {
        path: path.to_path_buf(),
        ..DataSection::default()
    }
}

fn load(path: &Path) -> Table {
    data::load(&section(path), Path::new("/")).unwrap()
}

/// The error of loading `path` with `data` (altered by `f`), as text.
fn refusal(path: &Path, f: impl FnOnce(&mut DataSection)) -> String {
    let mut d = section(path);
    f(&mut d);
    format!("{:#}", data::load(&d, Path::new("/")).unwrap_err())
}

fn same_rows(a: &Table, b: &Table, what: &str) {
    assert_eq!(a.texts, b.texts, "{what}: texts");
    assert_eq!(a.labels, b.labels, "{what}: labels");
    assert_eq!(a.classes, b.classes, "{what}: classes");
    assert_eq!(a.rows_read, b.rows_read, "{what}: rows read");
}

#[test]
fn jsonl_json_ndjson_and_gzip_read_the_rows_of_the_equivalent_csv() {
    let dir = TempDir::new().unwrap();
    let rows = fixture_rows();
    assert_eq!(rows.len(), 80);
    let csv = dir.path().join("reviews.csv");
    write_csv(&csv, &rows);
    let want = load(&csv);
    assert_eq!(want.rows_read, 80);
    let jsonl = Path::new(FIXTURE).join("reviews.jsonl");
    let ndjson = dir.path().join("reviews.ndjson");
    std::fs::copy(&jsonl, &ndjson).unwrap();
    let gz = dir.path().join("reviews.jsonl.gz");
    gzip(&jsonl, &gz);
    let json_gz = dir.path().join("reviews.json.gz");
    gzip(&Path::new(FIXTURE).join("reviews.json"), &json_gz);
    // JSON Lines with CRLF line ends, blank lines, and a BOM.
    let crlf = dir.path().join("crlf.jsonl");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let body = text.replace('\n', "\r\n\r\n");
    std::fs::write(&crlf, format!("\u{feff}{body}")).unwrap();
    for path in [
        jsonl.clone(),
        Path::new(FIXTURE).join("reviews.json"),
        ndjson,
        gz,
        json_gz,
        crlf,
    ] {
        same_rows(&load(&path), &want, &path.display().to_string());
    }
}

#[test]
fn nested_fields_and_number_and_boolean_labels() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nested.jsonl");
    let mut s = String::new();
    for i in 0..12 {
        let stars = ["4", "4.5", "1"][i % 3];
        let ok = if i % 2 == 0 { "true" } else { "false" };
        s.push_str(&format!(
            "{{\"id\": {i}, \"review\": {{\"body\": \"review \\\"{i}\\\" text\", \"stars\": {stars}}}, \"ok\": {ok}}}\n"
        ));
    }
    std::fs::write(&path, s).unwrap();
    let mut d = section(&path);
    d.text = "review.body".into();
    d.label = "review.stars".into();
    let t = data::load(&d, Path::new("/")).unwrap();
    assert_eq!(t.classes, ["1", "4", "4.5"], "numbers as written");
    assert_eq!(t.texts[0], "review \"0\" text");
    assert_eq!(t.labels[..3], [1, 2, 0]);
    d.label = "ok".into();
    let t = data::load(&d, Path::new("/")).unwrap();
    assert_eq!(t.classes, ["false", "true"]);
    assert_eq!(t.labels[..2], [1, 0]);
}

#[test]
fn json_refusals_name_file_line_and_key() {
    let dir = TempDir::new().unwrap();
    let w = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let good =
        "{\"text\": \"fine film\", \"label\": \"pos\"}\n{\"text\": \"dull\", \"label\": \"neg\"}\n";
    let cases = [
        (
            w("missing.jsonl", &format!("{good}\n{{\"body\": \"x\", \"label\": \"pos\"}}\n")),
            &["missing.jsonl, line 4", "no field \"text\" (data.text)", "body, label"][..],
        ),
        (
            w("number.jsonl", &format!("{good}{{\"text\": 5, \"label\": \"pos\"}}\n")),
            &["number.jsonl, line 3", "\"text\" (data.text) is a number, expected a string"],
        ),
        (
            w("nolabel.jsonl", &format!("{{\"text\": \"x\"}}\n{good}")),
            &["nolabel.jsonl, line 1", "no field \"label\" (data.label)"],
        ),
        (
            w("objlabel.jsonl", &format!("{good}{{\"text\": \"x\", \"label\": {{}}}}\n")),
            &["objlabel.jsonl, line 3", "(data.label) is an object"],
        ),
        (
            w("broken.jsonl", &format!("{good}{{\"text\": \"x\" \"label\": 1}}\n")),
            &["broken.jsonl, line 3, column 14", "not valid JSON"],
        ),
        (
            w("twice.jsonl", &format!("{{\"text\": \"a\", \"text\": \"b\", \"label\": 1}}\n{good}")),
            &["twice.jsonl, line 1", "key \"text\" appears twice"],
        ),
        (
            // The third object starts on line 10 of a pretty-printed array.
            w(
                "array.json",
                "[\n {\n  \"text\": \"a\",\n  \"label\": \"x\"\n },\n {\"text\": \"b\", \"label\": \"y\"},\n\n\n\n {\n  \"text\": \"c\"\n }\n]\n",
            ),
            &["array.json, line 10", "no field \"label\" (data.label)"],
        ),
        (
            w("elements.json", "[{\"text\": \"a\", \"label\": 1},\n 7]"),
            &["elements.json, line 2", "array element is a number, expected an object"],
        ),
        (
            w("bad.json", "[{\"text\": \"a\", \"label\": 1},\n {\"text\": }]"),
            &["bad.json, line 2, column 11", "not a valid JSON array"],
        ),
    ];
    for (path, wants) in cases {
        let err = refusal(&path, |_| {});
        for want in wants {
            assert!(
                err.contains(want),
                "{}: {err}\nwanted: {want}",
                path.display()
            );
        }
    }
    let nested = w(
        "nested.jsonl",
        "{\"review\": {\"title\": \"t\"}, \"label\": 1}\n",
    );
    let err = refusal(&nested, |d| d.text = "review.body".into());
    assert!(
        err.contains("nested.jsonl, line 1: no field \"review.body\" (data.text)"),
        "{err}"
    );
}

/// Every field of every record of `path`, read as `predict` reads its input.
fn all_fields(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let opts = ReadOptions {
        label: false,
        all_fields: true,
    };
    let mut r = read::open(&Input::Path(path.into()), &section(path), opts).unwrap();
    let mut rec = Record::default();
    let mut rows = Vec::new();
    while r.next_record(&mut rec).unwrap() {
        rows.push(rec.fields.clone());
    }
    (r.columns().to_vec(), rows)
}

#[test]
fn all_fields_are_the_top_level_keys_in_first_seen_order() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(
        &path,
        "{\"text\": \"a\", \"n\": 4.50}\n{\"meta\": {\"x\": [1, 2]}, \"text\": \"b\\nc\", \"ok\": true, \"z\": null}\n",
    )
    .unwrap();
    let (columns, rows) = all_fields(&path);
    assert_eq!(columns, ["text", "n", "meta", "ok", "z"]);
    assert_eq!(rows[0], ["a", "4.50", "", "", ""]);
    assert_eq!(rows[1], ["b\nc", "", "{\"x\":[1,2]}", "true", ""]);
}

fn parquet_file(
    path: &Path,
    columns: Vec<(&str, ArrayRef)>,
    props: WriterProperties,
    meta: Option<KeyValue>,
) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    // Several writes, so a small row-group size yields several groups.
    for start in (0..batch.num_rows()).step_by(5) {
        let len = 5.min(batch.num_rows() - start);
        w.write(&batch.slice(start, len)).unwrap();
    }
    if let Some(kv) = meta {
        w.append_key_value_metadata(kv);
    }
    w.close().unwrap();
}

fn texts_of(rows: &[(String, String)]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.0)))
}

#[test]
fn parquet_string_integer_and_dictionary_labels_in_every_codec() {
    let dir = TempDir::new().unwrap();
    let rows = fixture_rows();
    let csv = dir.path().join("reviews.csv");
    write_csv(&csv, &rows);
    let want = load(&csv);
    let labels = || rows.iter().map(|r| r.1.as_str());
    let codecs = [
        Compression::SNAPPY,
        Compression::ZSTD(ZstdLevel::default()),
        Compression::GZIP(GzipLevel::default()),
        Compression::UNCOMPRESSED,
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        let props = WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(7))
            .build();
        let p = dir.path().join(format!("strings{i}.parquet"));
        let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows.len() as i64));
        let label: ArrayRef = Arc::new(StringArray::from_iter_values(labels()));
        parquet_file(
            &p,
            vec![("id", id), ("label", label), ("text", texts_of(&rows))],
            props,
            None,
        );
        same_rows(&load(&p), &want, &format!("{codec:?}"));
    }
    let props = || WriterProperties::builder().build();
    let dict: DictionaryArray<Int32Type> = labels().collect();
    let p = dir.path().join("dict.parquet");
    parquet_file(
        &p,
        vec![("text", texts_of(&rows)), ("label", Arc::new(dict))],
        props(),
        None,
    );
    same_rows(&load(&p), &want, "dictionary labels");
    let gz = dir.path().join("dict.parquet.gz");
    gzip(&p, &gz);
    same_rows(&load(&gz), &want, "parquet.gz");

    // Integer labels: the numbers are the classes, or the names a Hugging Face
    // ClassLabel lists in the file's metadata.
    let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(
        labels().map(|l| i64::from(l == "positive")),
    ));
    let p = dir.path().join("ints.parquet");
    parquet_file(
        &p,
        vec![("text", texts_of(&rows)), ("label", ints.clone())],
        props(),
        None,
    );
    let t = load(&p);
    assert_eq!(t.classes, ["0", "1"]);
    assert_eq!(t.labels, want.labels);
    let hf = r#"{"info": {"features": {"text": {"dtype": "string", "_type": "Value"},
        "label": {"names": ["negative", "positive"], "_type": "ClassLabel"}}}}"#;
    let meta = KeyValue::new("huggingface".into(), hf.to_string());
    let p = dir.path().join("classlabel.parquet");
    parquet_file(
        &p,
        vec![("text", texts_of(&rows)), ("label", ints)],
        props(),
        Some(meta),
    );
    same_rows(&load(&p), &want, "ClassLabel names");

    // Written back: every column, numbers as text.
    let (columns, fields) = all_fields(&dir.path().join("strings0.parquet"));
    assert_eq!(columns, ["id", "label", "text"]);
    assert_eq!(fields.len(), 80);
    assert_eq!(fields[79], ["79", &rows[79].1, &rows[79].0]);
}

#[test]
fn parquet_refusals_name_the_file_and_column() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("ints.parquet");
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..4));
    let label: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a", "b"]));
    parquet_file(
        &p,
        vec![("text", ids), ("label", label)],
        WriterProperties::builder().build(),
        None,
    );
    let err = refusal(&p, |_| {});
    assert!(
        err.contains("ints.parquet: column \"text\" (data.text) holds Int64, expected strings"),
        "{err}"
    );
    let err = refusal(&p, |d| {
        d.text = "label".into();
        d.label = "stars".into();
    });
    assert!(
        err.contains("no column \"stars\" (data.label); the file has columns: text, label"),
        "{err}"
    );
    let not = dir.path().join("not.parquet");
    std::fs::write(&not, "text,label\na,b\n").unwrap();
    let err = refusal(&not, |_| {});
    assert!(
        err.contains("not.parquet: not a readable Parquet file"),
        "{err}"
    );
}

fn lab(dir: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.arg("--db")
        .arg(dir.join("lab.db"))
        .args(args)
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("HF_HOME").output().expect("lab runs")
}

fn prepare_json(dir: &Path, env: &[(&str, &Path)], spec: &str) -> serde_json::Value {
    let out = ok(&lab(dir, env, &["prepare", spec, "--json"]));
    serde_json::from_str(out.lines().next().unwrap()).unwrap()
}

fn same_prepared(a: &serde_json::Value, b: &serde_json::Value) {
    for key in ["rows", "rows_read", "vocab", "split_rows", "split_tokens"] {
        assert_eq!(a[key], b[key], "{key}: {a} vs {b}");
    }
}

#[test]
fn prepare_reads_the_jsonl_and_json_fixtures_alike() {
    let dir = TempDir::new().unwrap();
    for f in [
        "reviews.jsonl",
        "reviews.json",
        "spec.toml",
        "spec_json.toml",
    ] {
        std::fs::copy(Path::new(FIXTURE).join(f), dir.path().join(f)).unwrap();
    }
    let a = prepare_json(dir.path(), &[], "spec.toml");
    let b = prepare_json(dir.path(), &[], "spec_json.toml");
    assert_eq!(a["rows"], 80, "{a}");
    same_prepared(&a, &b);
}

/// A Hugging Face cache holding dataset `o/reviews` at commit `c0ffee` (ref `main`):
/// the fixture's rows as two train files and a test file, with the label a ClassLabel.
fn hf_cache(dir: &Path) -> PathBuf {
    let cache = dir.join("hub");
    let repo = cache.join("datasets--o--reviews");
    let snap = repo.join("snapshots").join("c0ffee").join("data");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), "c0ffee").unwrap();
    let rows = fixture_rows();
    let hf = r#"{"info": {"features": {"label": {"names": ["negative", "positive"], "_type": "ClassLabel"}}}}"#;
    let parts = [
        ("train-00000-of-00002.parquet", &rows[..30]),
        ("train-00001-of-00002.parquet", &rows[30..60]),
        ("test-00000-of-00001.parquet", &rows[60..]),
    ];
    for (name, part) in parts {
        let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(
            part.iter().map(|r| i64::from(r.1 == "positive")),
        ));
        let meta = KeyValue::new("huggingface".into(), hf.to_string());
        let props = WriterProperties::builder().build();
        parquet_file(
            &snap.join(name),
            vec![("text", texts_of(part)), ("label", ints)],
            props,
            Some(meta),
        );
    }
    cache
}

#[test]
fn hf_datasets_are_read_from_the_local_cache() {
    let dir = TempDir::new().unwrap();
    let cache = hf_cache(dir.path());
    let spec = std::fs::read_to_string(Path::new(FIXTURE).join("spec.toml")).unwrap();
    let with = |path: &str| spec.replace("path = \"reviews.jsonl\"", &format!("path = {path:?}"));
    std::fs::write(dir.path().join("hf.toml"), with("hf://o/reviews")).unwrap();
    std::fs::write(
        dir.path().join("hf_main.toml"),
        with("hf://datasets/o/reviews@main/train"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hf_test.toml"),
        with("hf://o/reviews@c0ffee/data/test-*.parquet"),
    )
    .unwrap();
    let train = fixture_rows()[..60].to_vec();
    write_csv(&dir.path().join("train.csv"), &train);
    std::fs::write(dir.path().join("csv.toml"), with("train.csv")).unwrap();

    let env = [("HF_HUB_CACHE", cache.as_path())];
    let hf = prepare_json(dir.path(), &env, "hf.toml");
    assert_eq!(hf["data"], "hf://o/reviews", "{hf}");
    assert_eq!(hf["rows"], 60, "the two train files, as one stream: {hf}");
    same_prepared(&hf, &prepare_json(dir.path(), &[], "csv.toml"));
    same_prepared(&hf, &prepare_json(dir.path(), &env, "hf_main.toml"));
    assert_eq!(prepare_json(dir.path(), &env, "hf_test.toml")["rows"], 20);

    // The cache key follows the files: a changed file is a new dataset.
    let again = prepare_json(dir.path(), &env, "hf.toml");
    assert_eq!(again["cached"], true, "{again}");
    let first =
        cache.join("datasets--o--reviews/snapshots/c0ffee/data/train-00000-of-00002.parquet");
    let second =
        cache.join("datasets--o--reviews/snapshots/c0ffee/data/train-00001-of-00002.parquet");
    std::fs::copy(&second, &first).unwrap();
    let changed = prepare_json(dir.path(), &env, "hf.toml");
    assert_eq!(changed["cached"], false, "{changed}");
    assert_ne!(changed["key"], hf["key"]);

    // Not in the cache: the message names the cache searched.
    let elsewhere = dir.path().join("empty-cache");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = lab(
        dir.path(),
        &[("HF_HUB_CACHE", &elsewhere)],
        &["prepare", "hf.toml"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dataset o/reviews (revision main) is not in the Hugging Face cache"),
        "{err}"
    );
    assert!(err.contains(&elsewhere.display().to_string()), "{err}");
    // A split that is not there lists the files that are.
    std::fs::write(
        dir.path().join("hf_dev.toml"),
        with("hf://o/reviews/validation"),
    )
    .unwrap();
    let out = lab(dir.path(), &env, &["prepare", "hf_dev.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data/test-00000-of-00001.parquet"), "{err}");
}

#[test]
fn the_binary_refuses_bad_json_parquet_and_hf_paths_naming_file_line_and_key() {
    let dir = TempDir::new().unwrap();
    let spec = std::fs::read_to_string(Path::new(FIXTURE).join("spec.toml")).unwrap();
    let with = |path: &str| spec.replace("path = \"reviews.jsonl\"", &format!("path = {path:?}"));
    let refused = |name: &str, path: &str| {
        std::fs::write(dir.path().join(name), with(path)).unwrap();
        let out = lab(dir.path(), &[], &["prepare", name]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let good = "{\"text\": \"fine film\", \"label\": \"pos\"}\n";
    std::fs::write(
        dir.path().join("r.jsonl"),
        format!("{good}{good}{{\"label\": \"neg\"}}\n"),
    )
    .unwrap();
    let err = refused("j.toml", "r.jsonl");
    assert!(
        err.contains("r.jsonl, line 3: no field \"text\" (data.text)"),
        "{err}"
    );

    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..4));
    let label: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a", "b"]));
    let props = WriterProperties::builder().build();
    parquet_file(
        &dir.path().join("r.parquet"),
        vec![("text", ids), ("label", label)],
        props,
        None,
    );
    let err = refused("p.toml", "r.parquet");
    assert!(
        err.contains("r.parquet: column \"text\" (data.text) holds Int64"),
        "{err}"
    );

    let err = refused("h.toml", "hf://only-an-owner");
    assert!(
        err.contains("data.path") && err.contains("expected hf://OWNER/NAME"),
        "{err}"
    );
}
