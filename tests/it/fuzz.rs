//! Property tests (bounded, so they run in CI in seconds): the spec parser and
//! validator and the CSV loader and cleaner never panic on any input, and valid
//! inputs round-trip.

use lab::spec::{self, Cell, PreprocessSection, Spec, Stem};
use proptest::prelude::*;
use std::path::Path;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const VALID: &str = r#"
[experiment]
name = "fuzz"
seeds = [1, 2]

[data]
path = "d.csv"
split = { train = 0.8, valid = 0.1, test = 0.1 }

[preprocess]
lowercase = true
stem = "snowball"
max_len = 32

[model]
cell = "gru"
hidden = 16
dropout = 0.2

[train]
epochs = 2
lr = 0.001
early_stopping = { monitor = "valid.loss", mode = "min", patience = 1 }

[sweep]
"model.cell" = ["lstm", "gru"]
"train.lr" = [0.001, 0.003]
"#;

fn load_text(dir: &Path, text: &[u8]) -> Result<spec::LoadedSpec, spec::SpecError> {
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    spec::load(&path, &[])
}

/// A mutation of the valid spec: bytes deleted, replaced or inserted.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = VALID.len();
    proptest::collection::vec((0..n, 0u8..3, any::<u8>()), 1..6).prop_map(|edits| {
        let mut bytes = VALID.as_bytes().to_vec();
        for (at, kind, byte) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match kind {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes[at] = byte,
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    })
}

/// TOML-looking lines built from the spec's own vocabulary.
fn tomlish() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "[experiment]",
        "[data]",
        "[model]",
        "[train]",
        "[sweep]",
        "[preprocess]",
        "name",
        "seeds",
        "hidden",
        "lr",
        "cell",
        "\"model.hidden\"",
        "\"train.lr\"",
        "epochs",
        "split",
        "early_stopping",
        "=",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\"gru\"",
        "-1",
        "0",
        "1e309",
        "nan",
        "true",
        "\n",
        "18446744073709551616",
    ]);
    proptest::collection::vec(keys, 0..40).prop_map(|parts| parts.join(" "))
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn spec_loader_never_panics_on_mutations(bytes in mutated()) {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(loaded) = load_text(dir.path(), &bytes) {
            // What loads also expands.
            spec::expand(&loaded).unwrap();
        }
    }

    #[test]
    fn spec_loader_never_panics_on_toml_soup(text in tomlish()) {
        let dir = tempfile::tempdir().unwrap();
        let _ = load_text(dir.path(), text.as_bytes());
    }

    #[test]
    fn valid_specs_round_trip(
        name in "[a-z][a-z0-9_-]{0,12}",
        seeds in proptest::collection::vec(0..i64::MAX as u64, 1..4), // TOML integers are i64
        hidden in 1usize..512,
        lr in 1e-6f64..1.0,
        gru in any::<bool>(),
        epochs in 1usize..50,
        axis in proptest::collection::btree_set(1i64..256, 1..4),
    ) {
        let mut s = Spec::default();
        s.experiment.name = name;
        s.experiment.seeds = seeds.clone();
        s.data.path = "d.csv".into();
        s.model.hidden = hidden;
        s.model.cell = if gru { Cell::Gru } else { Cell::Lstm };
        s.train.lr = lr;
        s.train.epochs = epochs;
        s.sweep.insert(
            "model.embedding_dim".into(),
            axis.iter().map(|&v| toml::Value::Integer(v)).collect(),
        );
        let text = toml::to_string(&s).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let loaded = load_text(dir.path(), text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(&loaded.spec, &s);
        let trials = spec::expand(&loaded).unwrap();
        prop_assert_eq!(trials.len(), axis.len() * seeds.len());
    }
}

fn data_section() -> spec::DataSection {
    spec::DataSection {
        path: "d.csv".into(),
        ..Default::default()
    }
}

fn all_cleaning() -> PreprocessSection {
    PreprocessSection {
        lowercase: true,
        strip_html: true,
        remove_urls: true,
        remove_digits: true,
        remove_punctuation: true,
        stopwords: "english".into(),
        stem: Stem::Snowball,
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn csv_loader_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400),
                               quotes in proptest::collection::vec(
                                   prop::sample::select(vec!["\"", ",", "\n", "\r\n", "a", "\"\"", " "]),
                                   0..40)) {
        let mut bytes = b"text,label\n".to_vec();
        bytes.extend(body);
        bytes.extend(quotes.concat().bytes());
        let _ = lab::data::parse(&bytes, Path::new("d.csv"), &data_section());
        let _ = lab::data::parse(&bytes, Path::new("d.csv.gz"), &data_section());
    }

    #[test]
    fn cleaner_never_panics(text in any::<String>(), html in "(<[a-z/ =\"]{0,12}>|&[a-z#0-9]{0,6};?|https?://[a-z./]{0,10}|[0-9]{1,4}|\\PC){0,30}") {
        let pre = lab::data::Preprocessor::new(&all_cleaning(), Path::new(".")).unwrap();
        let _ = pre.tokens(&text);
        let _ = pre.tokens(&html);
    }

    #[test]
    fn valid_csv_round_trips(rows in proptest::collection::vec(
        ("\\PC*[^\\s]\\PC*", prop::sample::select(vec!["pos", "neg", "3", "a b"])), 0..30)) {
        let mut rows = rows;
        rows.insert(0, ("first".into(), "pos"));
        rows.insert(1, ("second".into(), "neg"));
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["text", "label"]).unwrap();
        for (text, label) in &rows {
            writer.write_record([text.as_str(), label]).unwrap();
        }
        let bytes = writer.into_inner().unwrap();
        let table = lab::data::parse(&bytes, Path::new("d.csv"), &data_section())
            .unwrap_or_else(|e| panic!("{e:#}"));
        prop_assert_eq!(table.rows_read, rows.len());
        prop_assert_eq!(table.rows_skipped, 0);
        let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
        prop_assert_eq!(table.texts.iter().map(String::as_str).collect::<Vec<_>>(), texts);
        let labels: Vec<&str> = table.labels.iter().map(|&l| table.classes[l as usize].as_str()).collect();
        prop_assert_eq!(labels, rows.iter().map(|(_, l)| *l).collect::<Vec<_>>());
    }
}
