//! Pretrained embeddings: the three file formats, case handling, the random rows'
//! scale, bad files, the spec keys, freezing, and a real `lab run` with GloVe.

use candle_core::{Device, Tensor};
use lab::model::embeddings::{self, Pretrained};
use lab::model::Classifier;
use lab::spec::{self, EmbeddingFormat, EmbeddingsSection, ModelSection, Pooling};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn itos(words: &[&str]) -> Vec<String> {
    ["<pad>", "<unk>"]
        .iter()
        .chain(words)
        .map(|s| s.to_string())
        .collect()
}

fn section(path: &Path, format: EmbeddingFormat) -> EmbeddingsSection {
    EmbeddingsSection {
        path: path.to_path_buf(),
        format,
        vocab: None,
        freeze: false,
    }
}

fn glove(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn load_text(path: &Path, words: &[&str], lowercase: bool, seed: u64) -> Pretrained {
    embeddings::load(
        &section(path, EmbeddingFormat::GloveText),
        Path::new("."),
        &itos(words),
        lowercase,
        seed,
    )
    .unwrap()
}

fn row(p: &Pretrained, i: usize) -> &[f32] {
    &p.matrix[i * p.dim..(i + 1) * p.dim]
}

fn load_err(e: &EmbeddingsSection, words: &[&str]) -> String {
    format!(
        "{:#}",
        embeddings::load(e, Path::new("."), &itos(words), true, 0).expect_err("an error")
    )
}

const SMALL: &str = "good 1 2 3\nbad -1 0.5 2\nmovie 0.25 0 -1.5\nother 9 9 9\n";

#[test]
fn glove_text_rows_hit_rate_and_random_scale() {
    let dir = tempfile::tempdir().unwrap();
    let path = glove(dir.path(), "v.txt", SMALL);
    let p = load_text(&path, &["good", "bad", "movie", "zzz"], true, 7);
    assert_eq!(p.dim, 3);
    assert_eq!(p.matrix.len(), 6 * 3);
    assert_eq!(row(&p, 0), [0.0, 0.0, 0.0], "<pad> is zero");
    assert_eq!(row(&p, 2), [1.0, 2.0, 3.0]);
    assert_eq!(row(&p, 3), [-1.0, 0.5, 2.0]);
    assert_eq!(row(&p, 4), [0.25, 0.0, -1.5]);
    assert_eq!((p.hits, p.words), (3, 4));
    assert!((p.hit_rate() - 0.75).abs() < 1e-12);
    // The scale is the population std of the 9 loaded values.
    let vals = [1.0, 2.0, 3.0, -1.0, 0.5, 2.0, 0.25, 0.0, -1.5f64];
    let mean = vals.iter().sum::<f64>() / 9.0;
    let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 9.0).sqrt();
    assert!((p.std - std).abs() < 1e-6, "{} vs {std}", p.std);
    // <unk> and the missing word are random, fixed by the seed.
    assert!(row(&p, 1).iter().any(|&v| v != 0.0));
    assert!(row(&p, 5).iter().any(|&v| v != 0.0));
    assert_eq!(
        p,
        load_text(&path, &["good", "bad", "movie", "zzz"], true, 7)
    );
    assert_ne!(
        row(&p, 5),
        row(
            &load_text(&path, &["good", "bad", "movie", "zzz"], true, 8),
            5
        )
    );

    // Over many missing words, the random rows have the loaded vectors' scale.
    let missing: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
    let mut words: Vec<&str> = vec!["good", "bad", "movie"];
    words.extend(missing.iter().map(String::as_str));
    let p = load_text(&path, &words, true, 1);
    let random: Vec<f64> = p.matrix[5 * 3..].iter().map(|&v| v as f64).collect();
    let m = random.iter().sum::<f64>() / random.len() as f64;
    let s = (random.iter().map(|v| (v - m).powi(2)).sum::<f64>() / random.len() as f64).sqrt();
    assert!(m.abs() < 0.1 * std, "mean {m}");
    assert!((s / std - 1.0).abs() < 0.05, "std {s} vs {std}");
}

#[test]
fn gzip_and_word2vec_text_header_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let plain = glove(dir.path(), "v.txt", SMALL);
    let gz = dir.path().join("v.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(SMALL.as_bytes()).unwrap();
    enc.finish().unwrap();
    let header = glove(dir.path(), "w2v.txt", &format!("4 3\n{SMALL}"));
    let words = ["movie", "good", "nope"];
    let a = load_text(&plain, &words, true, 3);
    assert_eq!(a, load_text(&gz, &words, true, 3));
    assert_eq!(a, load_text(&header, &words, true, 3));
    for path in [&plain, &gz, &header] {
        let e = section(path, EmbeddingFormat::GloveText);
        assert_eq!(embeddings::peek_dim(&e, Path::new(".")).unwrap(), 3);
    }
    let wrong = glove(dir.path(), "w2v5.txt", &format!("5 3\n{SMALL}"));
    let err = load_err(&section(&wrong, EmbeddingFormat::GloveText), &words);
    assert!(err.contains("5 vectors") && err.contains("has 4"), "{err}");
}

#[test]
fn case_follows_the_preprocessing() {
    let dir = tempfile::tempdir().unwrap();
    // "Good" comes first, but the exact "good" wins for a lowercased vocabulary.
    let path = glove(
        dir.path(),
        "v.txt",
        "Good 9 9\ngood 1 1\nMovie 2 2\nfilm 3 3\nFILM 4 4\n",
    );
    let p = load_text(&path, &["good", "movie", "film"], true, 0);
    assert_eq!(row(&p, 2), [1.0, 1.0]);
    assert_eq!(row(&p, 3), [2.0, 2.0], "Movie lowercases to movie");
    assert_eq!(row(&p, 4), [3.0, 3.0]);
    assert_eq!(p.hits, 3);
    // Case kept: exact entry first, else the lowercase one; never another casing.
    let p = load_text(
        &path,
        &["Good", "good", "FILM", "Film", "MOVIE", "movie"],
        false,
        0,
    );
    assert_eq!(row(&p, 2), [9.0, 9.0], "exact Good");
    assert_eq!(row(&p, 3), [1.0, 1.0], "exact good");
    assert_eq!(row(&p, 4), [4.0, 4.0], "exact FILM");
    assert_eq!(row(&p, 5), [3.0, 3.0], "Film falls back to film");
    assert_ne!(row(&p, 6), [2.0, 2.0], "MOVIE does not take Movie");
    assert_ne!(row(&p, 7), [2.0, 2.0], "movie does not take Movie");
    assert_eq!(p.hits, 4);
}

/// A 2-D .npy of `rows` x `cols` (`values` row-major), float32 or float64, stored
/// in C or Fortran order.
fn npy(path: &Path, rows: usize, cols: usize, values: &[f64], f64_: bool, fortran: bool) {
    let descr = if f64_ { "<f8" } else { "<f4" };
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    let mut push = |v: f64| {
        if f64_ {
            bytes.extend_from_slice(&v.to_le_bytes());
        } else {
            bytes.extend_from_slice(&(v as f32).to_le_bytes());
        }
    };
    if fortran {
        for j in 0..cols {
            for i in 0..rows {
                push(values[i * cols + j]);
            }
        }
    } else {
        values.iter().for_each(|&v| push(v));
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn npy_with_word_list_in_either_order_and_width() {
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("words.txt");
    std::fs::write(&words, "good\nbad\nmovie\nother\n").unwrap();
    let values = [
        1.0, 2.0, 3.0, -1.0, 0.5, 2.0, 0.25, 0.0, -1.5, 9.0, 9.0, 9.0,
    ];
    let text = load_text(
        &glove(dir.path(), "v.txt", SMALL),
        &["good", "bad", "movie", "zzz"],
        true,
        5,
    );
    for (f64_, fortran) in [(false, false), (false, true), (true, false), (true, true)] {
        let path = dir.path().join(format!("v{f64_}{fortran}.npy"));
        npy(&path, 4, 3, &values, f64_, fortran);
        let e = EmbeddingsSection {
            vocab: Some(words.clone()),
            ..section(&path, EmbeddingFormat::NpyVocab)
        };
        assert_eq!(embeddings::peek_dim(&e, Path::new(".")).unwrap(), 3);
        let p = embeddings::load(
            &e,
            Path::new("."),
            &itos(&["good", "bad", "movie", "zzz"]),
            true,
            5,
        )
        .unwrap();
        assert_eq!(p, text, "f64={f64_} fortran={fortran}");
    }
    // The word list must have one line per row; both files are named.
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "good\nbad\n").unwrap();
    let e = EmbeddingsSection {
        vocab: Some(short),
        ..section(
            &dir.path().join("vfalsefalse.npy"),
            EmbeddingFormat::NpyVocab,
        )
    };
    let err = load_err(&e, &["good"]);
    assert!(
        err.contains("short.txt has 2 lines") && err.contains("vfalsefalse.npy has 4 rows"),
        "{err}"
    );
    // A cut-off data section.
    let cut = dir.path().join("cut.npy");
    let full = std::fs::read(dir.path().join("vfalsefalse.npy")).unwrap();
    std::fs::write(&cut, &full[..full.len() - 4]).unwrap();
    let e = EmbeddingsSection {
        vocab: Some(words.clone()),
        ..section(&cut, EmbeddingFormat::NpyVocab)
    };
    let err = load_err(&e, &["good"]);
    assert!(
        err.contains("cut.npy") && err.contains("needs 48 bytes"),
        "{err}"
    );
    let not_npy = glove(dir.path(), "fake.npy", SMALL);
    let e = EmbeddingsSection {
        vocab: Some(words),
        ..section(&not_npy, EmbeddingFormat::NpyVocab)
    };
    assert!(load_err(&e, &["good"]).contains("not a .npy file"));
}

fn word2vec_bin(path: &Path, entries: &[(&str, &[f32])], newline: bool) {
    let dim = entries[0].1.len();
    let mut bytes = format!("{} {dim}\n", entries.len()).into_bytes();
    for (w, v) in entries {
        bytes.extend_from_slice(w.as_bytes());
        bytes.push(b' ');
        for x in *v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        if newline {
            bytes.push(b'\n');
        }
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn word2vec_binary_with_and_without_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let entries: [(&str, &[f32]); 4] = [
        ("good", &[1.0, 2.0, 3.0]),
        ("bad", &[-1.0, 0.5, 2.0]),
        ("movie", &[0.25, 0.0, -1.5]),
        ("other", &[9.0, 9.0, 9.0]),
    ];
    let words = ["good", "bad", "movie", "zzz"];
    let text = load_text(&glove(dir.path(), "v.txt", SMALL), &words, true, 2);
    for newline in [false, true] {
        let path = dir.path().join(format!("v{newline}.bin"));
        word2vec_bin(&path, &entries, newline);
        let e = section(&path, EmbeddingFormat::Word2vecBin);
        assert_eq!(embeddings::peek_dim(&e, Path::new(".")).unwrap(), 3);
        let p = embeddings::load(&e, Path::new("."), &itos(&words), true, 2).unwrap();
        assert_eq!(p, text, "newline={newline}");
    }
    let path = dir.path().join("cut.bin");
    word2vec_bin(&path, &entries, false);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let err = load_err(&section(&path, EmbeddingFormat::Word2vecBin), &words);
    assert!(
        err.contains("cut.bin") && err.contains("vector 4 of 4"),
        "{err}"
    );
    let text_file = glove(dir.path(), "t.bin", SMALL);
    let err = load_err(&section(&text_file, EmbeddingFormat::Word2vecBin), &words);
    assert!(
        err.contains("t.bin:1") && err.contains("count dim"),
        "{err}"
    );
}

#[test]
fn bad_text_files_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let words = ["good", "bad"];
    let ragged = glove(
        dir.path(),
        "ragged.txt",
        "good 1 2 3\nbad 1 2\nugly 1 2 3\n",
    );
    let err = load_err(&section(&ragged, EmbeddingFormat::GloveText), &words);
    assert!(
        err.contains("ragged.txt:2") && err.contains("expected a word and 3 values"),
        "{err}"
    );
    let nan = glove(dir.path(), "nan.txt", "good 1 2 3\nbad 1 x 3\n");
    let err = load_err(&section(&nan, EmbeddingFormat::GloveText), &words);
    assert!(
        err.contains("nan.txt:2") && err.contains("value 2 of `bad`"),
        "{err}"
    );
    let err = load_err(
        &section(&dir.path().join("missing.txt"), EmbeddingFormat::GloveText),
        &words,
    );
    assert!(
        err.contains("missing.txt") && err.contains("cannot read"),
        "{err}"
    );
    let none = glove(dir.path(), "none.txt", "other 1 2\nthing 3 4\n");
    let err = load_err(&section(&none, EmbeddingFormat::GloveText), &words);
    assert!(
        err.contains("none.txt") && err.contains("none of the vocabulary's 2 words"),
        "{err}"
    );
    let empty = glove(dir.path(), "empty.txt", "\n");
    let err = load_err(&section(&empty, EmbeddingFormat::GloveText), &words);
    assert!(err.contains("no vectors"), "{err}");
}

fn model_cfg(freeze: bool, path: &Path) -> ModelSection {
    ModelSection {
        embedding_dim: 3,
        hidden: 4,
        pooling: Pooling::Attention,
        embeddings: Some(EmbeddingsSection {
            freeze,
            ..section(path, EmbeddingFormat::GloveText)
        }),
        ..ModelSection::default()
    }
}

#[test]
fn a_frozen_embedding_gets_no_gradient_and_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = glove(dir.path(), "v.txt", SMALL);
    let words = itos(&["good", "bad", "movie", "zzz"]);
    let pretrained = embeddings::load(
        &section(&path, EmbeddingFormat::GloveText),
        Path::new("."),
        &words,
        true,
        1,
    )
    .unwrap();
    let ids = Tensor::new(&[[2u32, 3, 4], [5, 2, 0]], &Device::Cpu).unwrap();
    let lengths = [3, 2];
    for freeze in [true, false] {
        let model =
            Classifier::new(&model_cfg(freeze, &path), words.len(), 2, 3, &Device::Cpu).unwrap();
        model.set_embedding(&pretrained.matrix).unwrap();
        let embedding = model.named_vars()[0].1.clone();
        let before: Vec<f32> = embedding
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(before, pretrained.matrix);
        assert_eq!(model.embedding_frozen(), freeze);
        assert_eq!(
            model.trainable_vars().len() + usize::from(freeze),
            model.named_vars().len()
        );
        let mut opt = lab::train::optim::build(&Default::default(), model.trainable_vars());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..3 {
            let loss = model
                .forward(&ids, &lengths, Some(&mut rng))
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            assert_eq!(grads.get(embedding.as_tensor()).is_some(), !freeze);
            opt.step(&grads).unwrap();
        }
        let after: Vec<f32> = embedding
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        if freeze {
            assert_eq!(after, before, "a frozen embedding changed");
        } else {
            assert_ne!(after, before, "a trainable embedding did not change");
        }
    }
    // A matrix of the wrong size is refused.
    let model = Classifier::new(&model_cfg(true, &path), words.len(), 2, 3, &Device::Cpu).unwrap();
    assert!(model.set_embedding(&[0.0; 5]).is_err());
}

// --- the spec keys ---

fn spec_file(dir: &Path, model: &str) -> PathBuf {
    let path = dir.join("spec.toml");
    std::fs::write(
        &path,
        format!(
            "[data]\npath = \"data.csv\"\n\n[model]\nembedding_dim = 3\n{model}\n[train]\nepochs = 1\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("data.csv"), "text,label\na,x\nb,y\n").unwrap();
    path
}

fn spec_err(dir: &Path, model: &str) -> spec::SpecError {
    spec::load(&spec_file(dir, model), &[]).expect_err("the spec should be refused")
}

#[test]
fn spec_keys_are_checked_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("v.txt"), SMALL).unwrap();
    std::fs::write(d.join("words.txt"), "good\n").unwrap();

    let ok = spec::load(
        &spec_file(
            d,
            "pooling = \"attention\"\nembeddings = { path = \"v.txt\", format = \"glove_text\", freeze = true }\n",
        ),
        &[],
    )
    .unwrap();
    let e = ok.spec.model.embeddings.as_ref().unwrap();
    assert!(e.freeze && e.has_file());
    assert_eq!(ok.spec.model.pooling, Pooling::Attention);

    let err = spec_err(d, "embeddings = { path = \"nope.txt\" }\n");
    assert_eq!(err.key.as_deref(), Some("model.embeddings.path"));
    assert_eq!(err.line, Some(6));
    assert!(err.to_string().contains("nope.txt does not exist"), "{err}");

    let err = spec_err(
        d,
        "embeddings = { path = \"v.txt\", format = \"npy+vocab\" }\n",
    );
    assert_eq!(err.key.as_deref(), Some("model.embeddings.vocab"));
    assert!(err.message.contains("needs the word list"), "{err}");

    let err = spec_err(
        d,
        "embeddings = { path = \"v.txt\", vocab = \"words.txt\" }\n",
    );
    assert_eq!(err.key.as_deref(), Some("model.embeddings.vocab"));

    let err = spec_err(d, "embeddings = { path = \"v.txt\", format = \"glove\" }\n");
    assert_eq!(err.key.as_deref(), Some("model.embeddings.format"));
    assert_eq!(err.suggestion.as_deref(), Some("glove_text"), "{err}");

    let err = spec_err(d, "embeddings = { path = \"v.txt\", frozen = true }\n");
    assert_eq!(err.key.as_deref(), Some("model.embeddings.frozen"));
    assert_eq!(err.suggestion.as_deref(), Some("model.embeddings.freeze"));

    let err = spec_err(d, "embeddings = { format = \"glove_text\" }\n");
    assert_eq!(err.key.as_deref(), Some("model.embeddings.path"));

    let err = spec_err(d, "pooling = \"atention\"\n");
    assert_eq!(err.suggestion.as_deref(), Some("attention"), "{err}");
}

#[test]
fn with_and_without_vectors_is_a_sweep_axis_and_old_trials_keep_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("v.txt"), SMALL).unwrap();
    let path = d.join("spec.toml");
    std::fs::write(
        &path,
        "[data]\npath = \"data.csv\"\n\n[model]\nembedding_dim = 3\nembeddings = { path = \"v.txt\" }\n\n[sweep]\n\"model.embeddings.path\" = [\"none\", \"v.txt\"]\n",
    )
    .unwrap();
    std::fs::write(d.join("data.csv"), "text,label\na,x\nb,y\n").unwrap();
    let loaded = spec::load(&path, &[]).unwrap();
    let trials = spec::expand(&loaded).unwrap();
    assert_eq!(trials.len(), 2);
    let has: Vec<bool> = trials
        .iter()
        .map(|t| t.model.embeddings.as_ref().unwrap().has_file())
        .collect();
    assert_eq!(has, [false, true]);

    // A trial without model.embeddings serialises as before the key existed.
    std::fs::write(&path, "[data]\npath = \"data.csv\"\n").unwrap();
    let plain = spec::expand(&spec::load(&path, &[]).unwrap()).unwrap();
    let json = serde_json::to_string(&plain[0]).unwrap();
    assert!(!json.contains("embeddings"), "{json}");
}

// --- the real binary ---

fn lab(args: &[&str]) -> Output {
    lab_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn lab_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("lab runs")
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

/// A small GloVe run on Rotten Tomatoes, with the shipped trimmed vectors.
fn glove_spec(dir: &Path, embedding_dim: usize, vectors: &str, freeze: bool) -> PathBuf {
    let path = dir.join("glove.toml");
    // The data beside the spec, named relative to it.
    std::fs::copy(repo("data/rotten_tomatoes.csv"), dir.join("rt.csv")).unwrap();
    std::fs::write(
        &path,
        format!(
            r#"[experiment]
name = "glove_test"

[data]
path = "rt.csv"
limit = 600

[preprocess]
max_len = 24

[model]
embedding_dim = {embedding_dim}
hidden = 8
pooling = "attention"
embeddings = {{ path = "{vectors}", format = "glove_text", freeze = {freeze} }}

[train]
epochs = 1
batch_size = 32
"#,
        ),
    )
    .unwrap();
    path
}

fn metric(db: &Path, name: &str) -> f64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT value FROM metrics WHERE split = 'train' AND name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn lab_run_with_shipped_glove_records_the_hit_rate_and_keeps_frozen_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let vectors = repo("data/glove.6B.50d.trimmed.txt.gz");
    glove_spec(dir.path(), 50, &vectors, true);
    // A relative spec path: the trial's files must still resolve from elsewhere
    // (`lab show --attention` below runs in another directory).
    let out = lab_in(
        dir.path(),
        &["run", "glove.toml", "--db", db.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rate = metric(&db, "embedding_hit_rate");
    let hits = metric(&db, "embedding_hits");
    assert!(rate > 0.8 && rate <= 1.0, "hit rate {rate}");
    assert!(hits > 100.0, "hits {hits}");

    // Frozen: the saved embedding row of "good" is GloVe's vector, unchanged.
    let weights = dir.path().join("glove_test/1/model.safetensors");
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let emb: Vec<Vec<f32>> = tensors["embedding.weight"].to_vec2().unwrap();
    let vocab: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("glove_test/1/vocab.json")).unwrap(),
    )
    .unwrap();
    let itos: Vec<String> = serde_json::from_value(vocab["itos"].clone()).unwrap();
    let good = itos
        .iter()
        .position(|w| w == "good")
        .expect("good in vocab");
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&vectors).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let line = text.lines().find(|l| l.starts_with("good ")).unwrap();
    let want: Vec<f32> = line
        .split(' ')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(emb[good], want);
    assert!(emb[0].iter().all(|&v| v == 0.0), "<pad> row");

    // lab show --attention: the first test reviews' most-attended words.
    let out = lab(&[
        "show",
        "1",
        "--db",
        db.to_str().unwrap(),
        "--attention",
        "2",
        "--words",
        "3",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0]["label"], rows[1]["label"], "classes taken in turn");
    for r in &rows {
        let top = r["top"].as_array().unwrap();
        assert!(!top.is_empty() && top.len() <= 3, "{r}");
        let weights: Vec<f64> = top.iter().map(|p| p[1].as_f64().unwrap()).collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]), "{r}");
        assert!(weights.iter().sum::<f64>() <= 1.0 + 1e-5, "{r}");
        assert!(["fresh", "rotten"].contains(&r["label"].as_str().unwrap()));
    }
    let table = lab(&["show", "1", "--db", db.to_str().unwrap(), "--attention"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("most-attended words"), "{text}");
    // predict works unchanged on the trained model.
    let out = lab(&[
        "predict",
        "--trial",
        "1",
        "--db",
        db.to_str().unwrap(),
        "a wonderful film",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lab_run_refuses_a_dimension_mismatch_and_ragged_vectors_before_recording() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let vectors = repo("data/glove.6B.50d.trimmed.txt.gz");
    let spec = glove_spec(dir.path(), 32, &vectors, false);
    let out = lab(&["run", spec.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("glove.toml:12")
            && err.contains("model.embedding_dim")
            && err.contains("is 32")
            && err.contains("50 dimensions"),
        "{err}"
    );

    let ragged = dir.path().join("ragged.txt");
    std::fs::write(&ragged, "the 1 2 3\ngood 1 2\n").unwrap();
    let spec = glove_spec(dir.path(), 3, ragged.to_str().unwrap(), false);
    let out = lab(&["run", spec.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ragged.txt:2") && err.contains("model.embeddings.path"),
        "{err}"
    );
    // Nothing was recorded.
    let recorded = db.exists()
        && rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT count(*) FROM trials", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0)
            > 0;
    assert!(!recorded);
}
