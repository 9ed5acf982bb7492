use lab::data::{self, Preprocessor, Split, Vocab, PAD_ID, UNK_ID};
use lab::spec::{Balance, DataSection, PreprocessSection, SplitSection, Stem};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn cfg(f: impl FnOnce(&mut PreprocessSection)) -> PreprocessSection {
    // Everything off, so each test switches on exactly what it checks.
    let mut c = PreprocessSection {
        lowercase: false,
        strip_html: false,
        remove_urls: false,
        remove_digits: false,
        remove_punctuation: false,
        stopwords: "none".into(),
        stem: Stem::None,
        min_freq: 1,
        max_vocab: 1000,
        max_len: 100,
        balance: Balance::None,
    };
    f(&mut c);
    c
}

fn toks(c: &PreprocessSection, text: &str) -> Vec<String> {
    Preprocessor::new(c, Path::new(".")).unwrap().tokens(text)
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn section(path: &str) -> DataSection {
    DataSection {
        path: path.into(),
        ..DataSection::default()
    }
}

fn err_text(e: anyhow::Error) -> String {
    format!("{e:#}")
}

// ---------- cleaning ----------

#[test]
fn strip_html_removes_tags_and_decodes_entities() {
    let c = cfg(|c| c.strip_html = true);
    assert_eq!(
        toks(&c, "Good<br /><br />film &amp; cast, it&#39;s <b>fine</b>"),
        ["Good", "film", "&", "cast", ",", "it", "'", "s", "fine"]
    );
    let off = cfg(|_| {});
    assert!(toks(&off, "a<br />b").contains(&"<".to_string()));
}

#[test]
fn strip_html_keeps_prose_angle_brackets_and_removes_only_markup() {
    let c = cfg(|c| {
        c.strip_html = true;
        c.remove_punctuation = true;
    });
    assert_eq!(
        toks(
            &c,
            "I <3 it. Part two > part one</i><!-- x -->, a < b &#x27;ok&#x27;"
        ),
        ["I", "3", "it", "Part", "two", "part", "one", "a", "b", "ok"]
    );
    assert_eq!(
        toks(&c, "<!DOCTYPE html><p class=x>Score: < 5 stars, > 3</p>"),
        ["Score", "5", "stars", "3"]
    );
    // The markup case: every review keeps its words; no `br` is left.
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/markup-lt-gt/reviews.csv");
    let mut reader = csv::Reader::from_path(&file).unwrap();
    let plain = cfg(|c| c.remove_punctuation = true);
    let (mut zephyr, mut marmot) = (false, false);
    for record in reader.records() {
        let record = record.unwrap();
        let text = &record[0];
        let tokens = toks(&c, text);
        assert!(!tokens.iter().any(|t| t == "br"), "{text:?} -> {tokens:?}");
        // Words outside tags all survive: as many as with the tags removed by hand.
        let by_hand = text.replace("<br />", " ");
        assert_eq!(tokens, toks(&plain, &by_hand), "{text:?}");
        zephyr |= tokens.iter().any(|t| t == "zephyr");
        marmot |= tokens.iter().any(|t| t == "marmot");
    }
    assert!(zephyr && marmot);
}

#[test]
fn remove_urls_drops_http_and_www_links() {
    let c = cfg(|c| {
        c.remove_urls = true;
        c.remove_punctuation = true;
    });
    assert_eq!(
        toks(
            &c,
            "see https://example.com/x?y=1 and www.imdb.com/title or http://a.b now"
        ),
        ["see", "and", "or", "now"]
    );
}

#[test]
fn lowercase_and_digits() {
    assert_eq!(
        toks(&cfg(|c| c.lowercase = true), "The MOVIE Ünd"),
        ["the", "movie", "ünd"]
    );
    assert_eq!(toks(&cfg(|_| {}), "The MOVIE"), ["The", "MOVIE"]);
    assert_eq!(
        toks(&cfg(|c| c.remove_digits = true), "top 10 of 1990s"),
        ["top", "of", "s"]
    );
    assert_eq!(toks(&cfg(|_| {}), "top 10"), ["top", "10"]);
}

#[test]
fn punctuation_removed_or_split_off() {
    let rm = cfg(|c| c.remove_punctuation = true);
    assert_eq!(
        toks(&rm, "Don't stop... great-film!!"),
        ["Dont", "stop", "great", "film"]
    );
    let keep = cfg(|_| {});
    assert_eq!(toks(&keep, "great-film!"), ["great", "-", "film", "!"]);
}

#[test]
fn steps_combine_in_documented_order() {
    let c = cfg(|c| {
        c.lowercase = true;
        c.strip_html = true;
        c.remove_urls = true;
        c.remove_punctuation = true;
    });
    // Entities decode before punctuation removal; URLs go before lowercasing matters.
    assert_eq!(
        toks(&c, "<p>Tom &amp; Jerry</p> at HTTP://X.COM rock"),
        ["tom", "jerry", "at", "rock"]
    );
}

// ---------- stopwords and stemming ----------

#[test]
fn english_stopwords() {
    assert_eq!(data::stopwords::ENGLISH.len(), 179);
    let c = cfg(|c| {
        c.lowercase = true;
        c.remove_punctuation = true;
        c.stopwords = "english".into();
    });
    assert_eq!(
        toks(&c, "This is not the movie I wanted, isn't it?"),
        ["movie", "wanted"]
    );
}

#[test]
fn stopwords_from_file_relative_to_base_dir() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "stop.txt",
        "# my list\nfilm\n  movie  \n\nthe # trailing\n",
    );
    let c = cfg(|c| c.stopwords = "stop.txt".into());
    let pre = Preprocessor::new(&c, dir.path()).unwrap();
    assert_eq!(pre.tokens("the film is a movie"), ["is", "a"]);

    let missing = cfg(|c| c.stopwords = "nope.txt".into());
    let e = err_text(Preprocessor::new(&missing, dir.path()).err().unwrap());
    assert!(e.contains("nope.txt"), "{e}");
}

#[test]
fn snowball_stemming_after_stopwords() {
    let c = cfg(|c| {
        c.stem = Stem::Snowball;
        c.stopwords = "english".into();
    });
    // "doing" is a stop word; stemming it first ("do") would also match, so use "being" -> "be".
    assert_eq!(toks(&c, "running cats being"), ["run", "cat"]);
}

// ---------- lemmatisation ----------

#[test]
fn lemma_table_is_shipped_whole() {
    let (exceptions, index) = data::lemma::wordnet().sizes();
    // WordNet 3.0: 5,648 single-word irregular forms (5,637 distinct), 77,761 index words.
    assert!(exceptions > 5_500, "{exceptions}");
    assert!(index > 77_000, "{index}");
}

#[test]
fn lemmas_of_irregular_forms() {
    let l = data::lemma::wordnet();
    for (form, lemma) in [
        ("went", "go"),
        ("was", "be"),
        ("is", "be"),
        ("mice", "mouse"),
        ("children", "child"),
        ("feet", "foot"),
        ("better", "good"),
        ("best", "good"),
        ("worst", "bad"),
        ("ran", "run"),
        ("running", "run"),
        ("seen", "see"),
        ("happier", "happy"),
    ] {
        assert_eq!(l.lemma(form), lemma, "{form}");
    }
}

#[test]
fn lemmas_of_regular_forms() {
    let l = data::lemma::wordnet();
    for (form, lemma) in [
        ("movies", "movie"),
        ("films", "film"),
        ("stories", "story"),
        ("boxes", "box"),
        ("churches", "church"),
        ("watched", "watch"),
        ("played", "play"),
        ("loved", "love"),
        ("greater", "great"),
        // Base forms stay: nouns and verbs of the index, unknown words, adverbs.
        ("movie", "movie"),
        ("acting", "acting"),
        ("watching", "watching"),
        ("gas", "gas"),
        ("excellent", "excellent"),
        ("sometimes", "sometimes"),
        ("xyzzy", "xyzzy"),
    ] {
        assert_eq!(l.lemma(form), lemma, "{form}");
    }
}

#[test]
fn lemma_stemming_runs_after_cleaning_and_stopwords() {
    let c = cfg(|c| {
        c.stem = Stem::Lemma;
        c.lowercase = true;
        c.remove_punctuation = true;
        c.stopwords = "english".into();
    });
    assert_eq!(
        toks(
            &c,
            "The mice WENT to the movies, and the children loved them!"
        ),
        ["mouse", "go", "movie", "child", "love"]
    );
}

// ---------- loading ----------

#[test]
fn label_map_merges_ratings_into_three_classes() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "r.csv",
        "text,label\na,1\nb,2\nc,3\nd,4\ne,5\nf,5\n",
    );
    let mut d = section("r.csv");
    d.label_map = BTreeMap::from(
        [
            ("1", "neg"),
            ("2", "neg"),
            ("3", "neu"),
            ("4", "pos"),
            ("5", "pos"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!(t.classes, ["neg", "neu", "pos"]);
    assert_eq!(t.labels, [0, 0, 1, 2, 2, 2]);
}

#[test]
fn numeric_labels_sort_numerically_and_unmapped_are_kept() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "n.csv", "label,text\n10,a\n2,b\n 1 ,c\n2,d\n");
    let t = data::load(&section("n.csv"), dir.path()).unwrap();
    assert_eq!(t.classes, ["1", "2", "10"]);
    assert_eq!(t.labels, [2, 1, 0, 1]);
    assert_eq!(t.texts, ["a", "b", "c", "d"]);
}

#[test]
fn limit_takes_first_rows() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "l.csv", "text,label\na,x\nb,y\nc,x\nd,y\n");
    let mut d = section("l.csv");
    d.limit = Some(3);
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!(t.texts, ["a", "b", "c"]);
    assert_eq!(t.rows_read, 3);
}

#[test]
fn tsv_and_gzip_are_read() {
    let dir = TempDir::new().unwrap();
    let content = "text\tlabel\nhello, world\tpos\n\"quoted\ttab\"\tneg\n";
    write(dir.path(), "d.tsv", content);
    // A TSV is read without quote processing unless data.quoting asks for RFC 4180.
    let mut d = section("d.tsv");
    d.quoting = Some(lab::spec::Quoting::Rfc4180);
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!(t.texts, ["hello, world", "quoted\ttab"]);
    assert_eq!(t.classes, ["neg", "pos"]);

    let f = std::fs::File::create(dir.path().join("d.tsv.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(content.as_bytes()).unwrap();
    gz.finish().unwrap();
    d.path = "d.tsv.gz".into();
    let tz = data::load(&d, dir.path()).unwrap();
    assert_eq!(tz, t);

    // An explicit delimiter wins over the extension.
    write(dir.path(), "semi.csv", "text;label\na,b;x\nc;y\n");
    let mut d = section("semi.csv");
    d.delimiter = Some(";".into());
    assert_eq!(data::load(&d, dir.path()).unwrap().texts, ["a,b", "c"]);
}

#[test]
fn invalid_utf8_is_read_lossily() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("u.csv"), b"text,label\ncaf\xe9,a\nok,b\n").unwrap();
    let t = data::load(&section("u.csv"), dir.path()).unwrap();
    assert_eq!(t.texts[0], "caf\u{fffd}");
}

#[test]
fn missing_column_names_file_and_columns() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "m.csv", "review,sentiment\na,x\n");
    let e = err_text(data::load(&section("m.csv"), dir.path()).unwrap_err());
    assert!(e.contains("m.csv"), "{e}");
    assert!(e.contains("\"text\""), "{e}");
    assert!(e.contains("review, sentiment"), "{e}");
}

#[test]
fn malformed_rows_name_file_and_line() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "bad.csv", "text,label\na,x\nb,y,extra\nc,x\n");
    let e = err_text(data::load(&section("bad.csv"), dir.path()).unwrap_err());
    assert!(e.contains("bad.csv") && e.contains("line 3"), "{e}");

    write(
        dir.path(),
        "q.csv",
        "text,label\na,x\nb,y\n\"never closed,x\nd,y\n",
    );
    let e = err_text(data::load(&section("q.csv"), dir.path()).unwrap_err());
    assert!(e.contains("q.csv") && e.contains("line 4"), "{e}");

    // The quote opens in the last field, so the field count alone would not notice.
    write(dir.path(), "q2.csv", "text,label\na,x\nb,\"y\nc,x\n");
    let e = err_text(data::load(&section("q2.csv"), dir.path()).unwrap_err());
    assert!(e.contains("q2.csv") && e.contains("line 3"), "{e}");
}

#[test]
fn empty_text_skipped_and_empty_label_rejected() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "e.csv", "text,label\na,x\n   ,y\n,x\nb,y\n");
    let t = data::load(&section("e.csv"), dir.path()).unwrap();
    assert_eq!(t.texts, ["a", "b"]);
    assert_eq!((t.rows_read, t.rows_skipped), (4, 2));

    write(dir.path(), "el.csv", "text,label\na,x\nb, \n");
    let e = err_text(data::load(&section("el.csv"), dir.path()).unwrap_err());
    assert!(e.contains("el.csv") && e.contains("line 3"), "{e}");
}

#[test]
fn one_class_is_an_error_naming_the_file() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "one.csv", "text,label\na,x\nb,x\n");
    let e = err_text(data::load(&section("one.csv"), dir.path()).unwrap_err());
    assert!(e.contains("one.csv") && e.contains("at least 2"), "{e}");
}

// ---------- split ----------

#[test]
fn stratified_split_keeps_class_shares() {
    // 3 classes of very different sizes.
    let mut labels = vec![0u32; 500];
    labels.extend(vec![1u32; 130]);
    labels.extend(vec![2u32; 7]);
    let sc = SplitSection {
        train: 0.7,
        valid: 0.15,
        test: 0.15,
        stratify: true,
        seed: 5,
    };
    let [tr, va, te] = data::split_indices(&labels, 3, &sc).unwrap();
    let mut all: Vec<usize> = tr.iter().chain(&va).chain(&te).copied().collect();
    all.sort();
    assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
    for (part, frac) in [(&tr, 0.7), (&va, 0.15), (&te, 0.15)] {
        for k in 0..3u32 {
            let total = labels.iter().filter(|&&l| l == k).count() as f64;
            let n = part.iter().filter(|&&i| labels[i] == k).count() as f64;
            assert!(
                (n - total * frac).abs() <= 1.0,
                "class {k}: {n} vs {total}*{frac}"
            );
            assert!(n >= 1.0);
        }
    }
    // Same seed, same split; another seed, another split.
    assert_eq!(data::split_indices(&labels, 3, &sc).unwrap()[2], te);
    let other = SplitSection { seed: 6, ..sc };
    assert_ne!(data::split_indices(&labels, 3, &other).unwrap()[2], te);
}

#[test]
fn tiny_classes_still_reach_every_split() {
    let labels = [0, 0, 0, 1, 1, 1, 1];
    let [tr, va, te] = data::split_indices(&labels, 2, &SplitSection::default()).unwrap();
    for part in [&tr, &va, &te] {
        for k in 0..2 {
            assert!(part.iter().any(|&i| labels[i] == k));
        }
    }
}

// ---------- vocabulary and encoding ----------

fn docs(texts: &[&str]) -> Vec<Vec<String>> {
    texts
        .iter()
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn vocab_min_freq_max_vocab_and_order() {
    let d = docs(&["b a a c", "a b d", "c e"]);
    let v = Vocab::build(d.iter().map(Vec::as_slice), 2, 100);
    assert_eq!(v.itos, ["<pad>", "<unk>", "a", "b", "c"]);
    let v = Vocab::build(d.iter().map(Vec::as_slice), 1, 4);
    assert_eq!(v.itos, ["<pad>", "<unk>", "a", "b"]);
}

#[test]
fn encode_truncates_maps_unknown_and_is_never_empty() {
    let v = Vocab {
        itos: ["<pad>", "<unk>", "good", "bad"].map(String::from).to_vec(),
    };
    let t = docs(&["good zzz bad good bad"]).remove(0);
    assert_eq!(v.encode(&t, 3), [2, UNK_ID, 3]);
    assert_eq!(v.encode(&t, 100).len(), 5);
    assert_eq!(v.encode(&[], 10), [UNK_ID]);
    let pre = Preprocessor::new(&cfg(|c| c.lowercase = true), Path::new(".")).unwrap();
    assert_eq!(v.encode_text(&pre, "GOOD Bad", 10), [2, 3]);
}

/// 40 rows, two classes; `onlyone` appears in exactly one row.
fn corpus(dir: &Path) -> PathBuf {
    let mut s = String::from("text,label\n");
    for i in 0..40 {
        let (word, label) = if i % 4 == 0 {
            ("bad", "neg")
        } else {
            ("good", "pos")
        };
        let extra = if i == 17 { " onlyone" } else { "" };
        s.push_str(&format!(
            "\"{word} movie {}{extra}\",{label}\n",
            "so ".repeat(i % 7)
        ));
    }
    write(dir, "c.csv", &s)
}

#[test]
fn prepare_builds_vocab_from_train_only() {
    let dir = TempDir::new().unwrap();
    corpus(dir.path());
    let d = section("c.csv");
    let pre = cfg(|c| c.min_freq = 1);
    let ds = data::prepare(&d, &pre, dir.path(), None).unwrap();
    assert_eq!(ds.classes, ["neg", "pos"]);
    assert_eq!(ds.train.len() + ds.valid.len() + ds.test.len(), 40);
    assert_eq!((ds.train.len(), ds.valid.len(), ds.test.len()), (32, 4, 4));
    // With the default seed, `onlyone` is in the vocabulary exactly when row 17 is in train.
    let [tr, _, _] =
        data::split_indices(&data::load(&d, dir.path()).unwrap().labels, 2, &d.split).unwrap();
    let in_train = tr.contains(&17);
    assert_eq!(ds.vocab.itos.contains(&"onlyone".to_string()), in_train);

    // Force `onlyone` out of train with a seed that puts row 17 elsewhere.
    let mut d2 = d.clone();
    let labels = data::load(&d, dir.path()).unwrap().labels;
    d2.split.seed = (0..100)
        .find(|&s| {
            let sc = SplitSection {
                seed: s,
                ..d.split.clone()
            };
            data::split_indices(&labels, 2, &sc).unwrap()[2].contains(&17)
        })
        .unwrap();
    let ds2 = data::prepare(&d2, &pre, dir.path(), None).unwrap();
    assert!(!ds2.vocab.itos.contains(&"onlyone".to_string()));
    // Row 17 is "good movie so so so onlyone": the only row with an unknown word.
    let row = ds2.test.rows().find(|ids| ids.contains(&UNK_ID));
    assert_eq!(row.as_ref().map(|r| r.len()), Some(6), "{:?}", ds2.test);
    assert_eq!(row.and_then(|r| r.last().copied()), Some(UNK_ID));
}

#[test]
fn prepare_truncates_to_max_len() {
    let dir = TempDir::new().unwrap();
    corpus(dir.path());
    let pre = cfg(|c| c.max_len = 3);
    let ds = data::prepare(&section("c.csv"), &pre, dir.path(), None).unwrap();
    let all: Vec<Vec<u32>> = [&ds.train, &ds.valid, &ds.test]
        .iter()
        .flat_map(|s| s.rows().map(|r| r.to_vec()))
        .collect();
    let all = all.iter();
    assert!(all.clone().all(|ids| (1..=3).contains(&ids.len())));
    assert!(all.clone().any(|ids| ids.len() == 3));
    // The first tokens are kept: every row starts with good/bad then movie.
    let movie = ds.vocab.itos.iter().position(|t| t == "movie").unwrap() as u32;
    assert!(all.into_iter().all(|ids| ids[1] == movie));
}

// ---------- balancing ----------

fn split_with(labels: &[u32]) -> Split {
    let rows: Vec<Vec<u32>> = labels.iter().map(|_| vec![2]).collect();
    Split::from_rows(&rows, labels.to_vec())
}

fn counts(split: &Split, idx: &[usize], n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for &i in idx {
        c[split.labels[i] as usize] += 1;
    }
    c
}

#[test]
fn balancing_gives_promised_counts() {
    let mut labels = vec![0u32; 10];
    labels.extend([1; 4]);
    labels.extend([2; 2]);
    let s = split_with(&labels);

    let none = data::balance(&s, 3, Balance::None, 1);
    assert_eq!(none.indices, (0..16).collect::<Vec<_>>());
    assert!(none.class_weights.is_none());

    let up = data::balance(&s, 3, Balance::Upsample, 1);
    assert_eq!(counts(&s, &up.indices, 3), [10, 10, 10]);
    let set: HashSet<usize> = up.indices.iter().copied().collect();
    assert_eq!(set.len(), 16, "every original row is kept");
    assert_eq!(
        up.indices,
        data::balance(&s, 3, Balance::Upsample, 1).indices
    );

    let down = data::balance(&s, 3, Balance::Downsample, 1);
    assert_eq!(counts(&s, &down.indices, 3), [2, 2, 2]);
    let set: HashSet<usize> = down.indices.iter().copied().collect();
    assert_eq!(set.len(), 6, "without replacement");
    assert_ne!(
        down.indices,
        data::balance(&s, 3, Balance::Downsample, 2).indices
    );

    let w = data::balance(&s, 3, Balance::ClassWeights, 1);
    assert_eq!(w.indices.len(), 16);
    let cw = w.class_weights.unwrap();
    for (k, n) in [10.0f32, 4.0, 2.0].iter().enumerate() {
        assert!((cw[k] - 16.0 / (3.0 * n)).abs() < 1e-6);
    }
}

#[test]
fn balancing_never_touches_valid_or_test() {
    let dir = TempDir::new().unwrap();
    corpus(dir.path());
    let pre = cfg(|c| c.balance = Balance::Upsample);
    let ds = data::prepare(&section("c.csv"), &pre, dir.path(), None).unwrap();
    let before = ds.clone();
    let b = data::balance(&ds.train, 2, pre.balance, 3);
    assert_eq!(ds, before);
    // neg is 1/4 of the rows: upsampling only grows the training index list.
    let c = counts(&ds.train, &b.indices, 2);
    assert_eq!(c[0], c[1]);
    assert!(b.indices.iter().all(|&i| i < ds.train.len()));
}

// ---------- batching ----------

fn varied() -> Split {
    let rows: Vec<Vec<u32>> = (0..23).map(|i| vec![2; 1 + (i * 7) % 11]).collect();
    Split::from_rows(&rows, (0..23).map(|i| (i % 2) as u32).collect())
}

#[test]
fn batches_pad_to_their_own_longest() {
    let s = varied();
    let order: Vec<usize> = (0..23).collect();
    let bs: Vec<_> = data::batches(&s, &order, 5, false, None).collect();
    assert_eq!(bs.len(), 5);
    assert_eq!(bs[4].batch, 3);
    for b in &bs {
        let longest = b.rows.iter().map(|&r| s.row_len(r)).max().unwrap();
        assert_eq!(b.time, longest);
        assert_eq!(b.ids.len(), b.batch * b.time);
        for (r, &row) in b.rows.iter().enumerate() {
            let line = &b.ids[r * b.time..(r + 1) * b.time];
            assert_eq!(&line[..b.lengths[r]], &s.row(row)[..]);
            assert!(line[b.lengths[r]..].iter().all(|&x| x == PAD_ID));
            assert_eq!(b.labels[r], s.labels[row]);
        }
    }
    assert_eq!(bs[0].rows, [0, 1, 2, 3, 4]);
}

#[test]
fn bucketing_keeps_every_row_once_and_groups_lengths() {
    let s = varied();
    let order: Vec<usize> = (0..23).collect();
    for seed in [None, Some(9)] {
        let bs: Vec<_> = data::batches(&s, &order, 4, true, seed).collect();
        let mut rows: Vec<usize> = bs.iter().flat_map(|b| b.rows.clone()).collect();
        rows.sort();
        assert_eq!(rows, order);
        let padded: usize = bs.iter().map(|b| b.batch * b.time).sum();
        let unbucketed: usize = data::batches(&s, &order, 4, false, None)
            .map(|b| b.batch * b.time)
            .sum();
        assert!(padded < unbucketed, "{padded} vs {unbucketed}");
    }
    // Without a seed: sorted by length, for evaluation.
    let eval: Vec<_> = data::batches(&s, &order, 4, true, None).collect();
    let times: Vec<usize> = eval.iter().map(|b| b.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // With a seed: deterministic, and shuffled differently by another seed.
    let batches = |seed| data::batches(&s, &order, 4, true, Some(seed)).collect::<Vec<_>>();
    let a = batches(9);
    assert_eq!(a, batches(9));
    assert_ne!(a, batches(10));
}

// ---------- cache ----------

#[test]
fn cache_is_read_back_and_keyed_by_content() {
    let dir = TempDir::new().unwrap();
    let data_file = corpus(dir.path());
    let cache_dir = dir.path().join("cache");
    let d = section("c.csv");
    let pre = cfg(|_| {});
    let key = data::cache_key(&d, &pre, dir.path()).unwrap();
    assert_eq!(key.len(), 64);

    let ds = data::prepare(&d, &pre, dir.path(), Some(&cache_dir)).unwrap();
    let file = data::cache::cache_path(&cache_dir, &key);
    assert_eq!(data::cache::read(&file).unwrap(), ds);

    // Prove the second prepare reads the file: plant a marker in it.
    let mut marked = ds.clone();
    marked.rows_skipped = 999;
    data::cache::write(&file, &marked).unwrap();
    let again = data::prepare(&d, &pre, dir.path(), Some(&cache_dir)).unwrap();
    assert_eq!(again.rows_skipped, 999);

    // A corrupt file is ignored and rebuilt.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    assert!(data::cache::read(&file).is_err());
    assert_eq!(
        data::prepare(&d, &pre, dir.path(), Some(&cache_dir)).unwrap(),
        ds
    );
    assert_eq!(data::cache::read(&file).unwrap(), ds);
    std::fs::write(&file, b"junk").unwrap();
    assert_eq!(
        data::prepare(&d, &pre, dir.path(), Some(&cache_dir)).unwrap(),
        ds
    );

    // Balance is per trial: not part of the key. Other settings are.
    let balanced = cfg(|c| c.balance = Balance::Downsample);
    assert_eq!(data::cache_key(&d, &balanced, dir.path()).unwrap(), key);
    let longer = cfg(|c| c.max_len = 7);
    assert_ne!(data::cache_key(&d, &longer, dir.path()).unwrap(), key);

    // One changed byte of data changes the key.
    let mut content = std::fs::read(&data_file).unwrap();
    let last = content.len() - 2;
    content[last] = b'x';
    std::fs::write(&data_file, &content).unwrap();
    assert_ne!(data::cache_key(&d, &pre, dir.path()).unwrap(), key);

    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().collect();
    assert_eq!(names.len(), 1);
}

// ---------- the streaming pipeline against the in-memory algorithm ----------

/// The dataset as the pipeline computed it before it streamed: every text tokenised in
/// memory, split, vocabulary from train, encoded.
fn reference(d: &DataSection, pre: &PreprocessSection, base: &Path) -> data::Dataset {
    let table = data::load(d, base).unwrap();
    let p = Preprocessor::new(pre, base).unwrap();
    let tokens: Vec<Vec<String>> = table.texts.iter().map(|t| p.tokens(t)).collect();
    let [tr, va, te] = data::split_indices(&table.labels, table.classes.len(), &d.split).unwrap();
    let vocab = Vocab::build(
        tr.iter().map(|&i| tokens[i].as_slice()),
        pre.min_freq,
        pre.max_vocab,
    );
    let enc = vocab.encoder();
    let split = |rows: &[usize]| {
        let ids: Vec<Vec<u32>> = rows
            .iter()
            .map(|&i| enc.encode(&tokens[i], pre.max_len))
            .collect();
        Split::from_rows(&ids, rows.iter().map(|&i| table.labels[i]).collect())
    };
    let (train, valid, test) = (split(&tr), split(&va), split(&te));
    data::Dataset {
        classes: table.classes.clone(),
        vocab: vocab.clone(),
        train,
        valid,
        test,
        rows_read: table.rows_read,
        rows_skipped: table.rows_skipped,
        report: None,
    }
}

#[test]
fn shipped_datasets_prepare_as_before_in_memory_and_mapped() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let cache = TempDir::new().unwrap();
    let defaults = PreprocessSection::default();
    let cases = [
        ("rotten_tomatoes.csv", defaults.clone()),
        (
            "amazon_ratings.csv",
            PreprocessSection {
                stopwords: "english".into(),
                stem: Stem::Lemma,
                min_freq: 1,
                ..defaults.clone()
            },
        ),
        // 25,000 rows: several chunks of the streaming passes.
        (
            "imdb.csv.gz",
            PreprocessSection {
                stopwords: "english".into(),
                stem: Stem::Snowball,
                max_len: 256,
                ..defaults.clone()
            },
        ),
    ];
    for (file, pre) in cases {
        let d = section(file);
        let want = reference(&d, &pre, &shipped);
        let in_memory = data::prepare(&d, &pre, &shipped, None).unwrap();
        assert_eq!(in_memory, want, "{file} in memory");
        let mapped = data::prepare(&d, &pre, &shipped, Some(cache.path())).unwrap();
        assert_eq!(mapped, want, "{file} through the cache");
        assert!(
            mapped.train.is_mapped() && mapped.test.is_mapped(),
            "{file}"
        );
        assert_eq!(
            mapped.train.id_width(),
            2,
            "{file}: a 20,000-word vocabulary fits u16"
        );
        let again = data::prepare(&d, &pre, &shipped, Some(cache.path())).unwrap();
        assert_eq!(again, want, "{file} read back");
    }
}

#[test]
fn batches_from_a_mapped_split_equal_batches_from_memory() {
    let dir = TempDir::new().unwrap();
    corpus(dir.path());
    let d = section("c.csv");
    let pre = cfg(|c| c.min_freq = 1);
    let memory = data::prepare(&d, &pre, dir.path(), None).unwrap();
    let mapped = data::prepare(&d, &pre, dir.path(), Some(&dir.path().join("cache"))).unwrap();
    assert!(mapped.train.is_mapped() && !memory.train.is_mapped());
    let order: Vec<usize> = (0..memory.train.len()).collect();
    for (bucket, seed) in [(false, None), (true, None), (true, Some(3))] {
        let a: Vec<_> = data::batches(&memory.train, &order, 5, bucket, seed).collect();
        let b: Vec<_> = data::batches(&mapped.train, &order, 5, bucket, seed).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), order.len().div_ceil(5));
    }
}

#[test]
fn ids_are_u32_when_the_vocabulary_outgrows_u16() {
    let dir = TempDir::new().unwrap();
    // 90,000 distinct words (72,000 of them in the training split), in two classes.
    let mut s = String::from("text,label\n");
    for i in 0..90_000 {
        s.push_str(&format!(
            "w{i} w{i} x{},{}\n",
            i % 7,
            if i % 2 == 0 { "a" } else { "b" }
        ));
    }
    write(dir.path(), "wide.csv", &s);
    let d = section("wide.csv");
    let pre = cfg(|c| {
        c.min_freq = 1;
        c.max_vocab = 200_000;
    });
    let want = reference(&d, &pre, dir.path());
    assert!(want.vocab.len() > 65_536, "{}", want.vocab.len());
    let mapped = data::prepare(&d, &pre, dir.path(), Some(&dir.path().join("cache"))).unwrap();
    assert_eq!(mapped.train.id_width(), 4);
    assert_eq!(mapped, want);
}
