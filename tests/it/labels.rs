//! Headers, labels and subsets (issue 13, items 4-5): duplicated selected columns,
//! label variants (refused with the `label_map` that merges them, or merged under
//! `data.label_normalize`), empty and missing-value labels, lossy labels,
//! `data.sample` and `data.limit`, through the real binary and the library. The
//! splits that cannot be scored (item 6) are in `splits.rs`, with these helpers.

use lab::data::{self, Labels};
use lab::spec::{DataSection, LabelNormalize, OnBadRow, Sample};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// A temporary directory to run `lab` in, with its store at `lab.db`.
pub(crate) struct Dir(TempDir);

impl Dir {
    pub(crate) fn new() -> Dir {
        Dir(TempDir::new().unwrap())
    }

    /// A copy of the fixture folder `tests/fixtures/<name>`.
    pub(crate) fn fixture(name: &str) -> Dir {
        let dir = Dir::new();
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        dir
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("lab.db")
    }

    pub(crate) fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        std::fs::write(self.path().join(name), bytes).unwrap();
    }

    /// A spec training a tiny model for one epoch on `data`, plus `extra` [data] lines.
    pub(crate) fn spec(&self, data: &str, extra: &str) {
        self.write(
            "spec.toml",
            format!(
                "[experiment]\nname = \"labels\"\nseeds = [1]\n\n[data]\npath = \"{data}\"\n{extra}\n\n\
                 [preprocess]\nmin_freq = 1\nmax_len = 16\n\n\
                 [model]\nembedding_dim = 8\nhidden = 8\n\n[train]\nepochs = 1\nbatch_size = 16\n"
            ),
        );
    }

    pub(crate) fn lab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(self.path())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap()
    }

    /// Trials in the store by status (none when there is no store).
    pub(crate) fn trials(&self, status: &str) -> i64 {
        if !self.db().exists() {
            return 0;
        }
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        let (sql, args): (&str, Vec<&str>) = if status == "any" {
            ("SELECT count(*) FROM trials", vec![])
        } else {
            (
                "SELECT count(*) FROM trials WHERE status = ?1",
                vec![status],
            )
        };
        conn.query_row(sql, rusqlite::params_from_iter(args), |r| r.get(0))
            .unwrap()
    }

    /// The test metrics' names of the only done trial.
    fn test_metric_names(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT m.name FROM metrics m JOIN trials t ON t.id = m.trial_id \
                 WHERE t.status = 'done' AND m.split = 'test' ORDER BY m.name",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// Assert exit code 1 and every one of `parts` in stderr; returns stderr.
pub(crate) fn refused(out: &Output, parts: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    for part in parts {
        assert!(stderr.contains(part), "expected {part:?} in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

pub(crate) fn succeeds(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "stderr: {stderr}");
    stderr
}

/// `n` rows alternating two classes, texts naming their class.
fn two_classes(n: usize) -> String {
    let mut csv = String::from("text,label\n");
    for i in 0..n {
        let label = if i % 2 == 0 { "pos" } else { "neg" };
        csv += &format!("a {label} film number {i},{label}\n");
    }
    csv
}

/// `pos` rows first, then `neg` rows (a file sorted by label, as IMDb's is).
fn sorted(pos: usize, neg: usize) -> String {
    let mut csv = String::from("text,label\n");
    for (label, n) in [("pos", pos), ("neg", neg)] {
        for i in 0..n {
            csv += &format!("{label} review {i},{label}\n");
        }
    }
    csv
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

// ---------- headers ----------

#[test]
fn a_duplicated_selected_column_is_refused_naming_both_positions() {
    let dir = Dir::new();
    dir.write("d.csv", "text,label,text\na,x,b\nc,y,d\n");
    let e = err_text(data::load(&section("d.csv"), dir.path()).unwrap_err());
    for part in ["d.csv", "\"text\"", "data.text", "columns 1 and 3"] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    dir.write("l.csv", "label,id,text, label\nx,1,a,y\n");
    let e = err_text(data::load(&section("l.csv"), dir.path()).unwrap_err());
    for part in ["l.csv", "\"label\"", "data.label", "columns 1 and 4"] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    // Through the binary: exit 1, nothing recorded.
    dir.spec("d.csv", "");
    refused(
        &dir.lab(&["run", "spec.toml"]),
        &["d.csv", "columns 1 and 3"],
    );
    assert_eq!(dir.trials("any"), 0);
}

#[test]
fn a_duplicated_column_the_spec_does_not_select_is_fine() {
    let dir = Dir::new();
    let mut csv = String::from("id,text,id,label\n");
    for i in 0..30 {
        let label = if i % 2 == 0 { "pos" } else { "neg" };
        csv += &format!("{i},a {label} film,{i},{label}\n");
    }
    dir.write("d.csv", csv);
    let t = data::load(&section("d.csv"), dir.path()).unwrap();
    assert_eq!(t.texts.len(), 30);
}

// ---------- label variants ----------

#[test]
fn case_variants_fixture_is_refused_with_counts_and_the_label_map() {
    let dir = Dir::fixture("label-case-variants");
    let stderr = refused(
        &dir.lab(&["run", "spec.toml"]),
        &[
            "reviews.csv",
            "\"label\" (data.label)",
            "\"positive\" (40 row(s), first at line 2)",
            "\"Positive\" (20 row(s), first at line 82)",
            "\"POSITIVE\" (20 row(s), first at line 122)",
            "\"negative\" (60 row(s), first at line 3)",
            "\"Negative\" (20 row(s), first at line 83)",
            "data.label_normalize = \"case\"",
            "[data.label_map]",
            "\"Positive\" = \"positive\"",
            "\"POSITIVE\" = \"positive\"",
            "\"Negative\" = \"negative\"",
        ],
    );
    assert!(!stderr.contains("\"positive\" = "), "{stderr}");
    assert_eq!(dir.trials("any"), 0);
}

#[test]
fn the_printed_label_map_fixes_the_case_variants() {
    let dir = Dir::fixture("label-case-variants");
    let out = dir.lab(&["run", "spec.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The table as printed: its header and the `"variant" = "class"` lines after it.
    let map: Vec<&str> = stderr[stderr.find("[data.label_map]").unwrap()..]
        .lines()
        .take_while(|l| l.starts_with('[') || l.starts_with('"'))
        .collect();
    assert_eq!(map.len(), 4, "{map:?}");
    let spec = std::fs::read_to_string(dir.path().join("spec.toml")).unwrap();
    dir.write("spec.toml", format!("{spec}\n{}\n", map.join("\n")));
    let loaded = lab::spec::load(&dir.path().join("spec.toml"), &[]).unwrap();
    let d = lab::spec::expand(&loaded).unwrap().remove(0).data;
    let scan = data::scan_file(&dir.path().join("reviews.csv"), &d).unwrap();
    assert_eq!(scan.classes, ["negative", "positive"]);
    let rules: Vec<&str> = scan.notes.merged.iter().map(|m| m.rule.as_str()).collect();
    assert_eq!(rules, ["label_map", "label_map"]);
}

#[test]
fn case_variants_merge_under_label_normalize_and_are_printed_and_recorded() {
    let dir = Dir::fixture("label-case-variants");
    let out = dir.lab(&["run", "spec.toml", "--set", "data.label_normalize=case"]);
    let stderr = succeeds(&out);
    assert!(
        stderr.contains(
            "merged labels \"positive\" (40), \"Positive\" (20), \"POSITIVE\" (20) into class \"positive\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("data.label_normalize, case variants"),
        "{stderr}"
    );
    assert_eq!(dir.trials("done"), 1);
    let names = dir.test_metric_names();
    assert!(names.contains(&"f1.positive".to_string()), "{names:?}");
    assert!(names.contains(&"f1.negative".to_string()), "{names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("f1.")).count(), 2);

    // The library records the merge.
    let mut d = section("reviews.csv");
    d.label_normalize = Some(LabelNormalize::Case);
    let scan = data::scan_file(&dir.path().join("reviews.csv"), &d).unwrap();
    assert_eq!(scan.classes, ["negative", "positive"]);
    let pos = scan
        .notes
        .merged
        .iter()
        .find(|m| m.class == "positive")
        .unwrap();
    assert_eq!(pos.rule, "case");
    assert_eq!(
        pos.variants,
        [
            ("positive".to_string(), 40),
            ("Positive".to_string(), 20),
            ("POSITIVE".to_string(), 20)
        ]
    );
}

#[test]
fn numeric_variants_are_refused_or_merged_to_one_number() {
    let dir = Dir::new();
    let mut csv = String::from("text,label\n");
    for (i, l) in ["1", "1.0", "2", "2.00", "1", "2"]
        .iter()
        .cycle()
        .take(60)
        .enumerate()
    {
        csv += &format!("review {i},{l}\n");
    }
    dir.write("n.csv", csv);
    let e = err_text(data::load(&section("n.csv"), dir.path()).unwrap_err());
    for part in [
        "\"1.0\" (10 row(s), first at line 3)",
        "\"1.0\" = \"1\"",
        "\"2.00\" = \"2\"",
        "data.label_normalize = \"numeric\"",
    ] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    let mut d = section("n.csv");
    d.label_normalize = Some(LabelNormalize::Numeric);
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!(t.classes, ["1", "2"]);
    assert_eq!(t.labels.len(), 60);
    d.label_normalize = Some(LabelNormalize::Both);
    assert_eq!(data::load(&d, dir.path()).unwrap().classes, ["1", "2"]);
}

#[test]
fn label_map_applies_first_and_its_merges_are_recorded() {
    let dir = Dir::new();
    dir.write(
        "d.csv",
        "text,label\na,pos\nb,Positive\nc,neg\nd,neg\ne,pos\nf,neg\n",
    );
    let mut d = section("d.csv");
    d.label_map.insert("Positive".into(), "pos".into());
    let scan = data::scan_file(&dir.path().join("d.csv"), &d).unwrap();
    assert_eq!(scan.classes, ["neg", "pos"]);
    assert_eq!(scan.notes.merged.len(), 1);
    let m = &scan.notes.merged[0];
    assert_eq!((m.class.as_str(), m.rule.as_str()), ("pos", "label_map"));
    assert_eq!(
        m.variants,
        [("pos".to_string(), 2), ("Positive".to_string(), 1)]
    );
}

#[test]
fn a_label_map_key_no_label_spells_is_warned_about() {
    let dir = Dir::new();
    dir.write("d.csv", two_classes(40));
    dir.spec("d.csv", "label_map = { \"Postive\" = \"pos\" }");
    let out = dir.lab(&["data", "spec.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("data.label_map key(s) \"Postive\" match no label in column \"label\""),
        "{stderr}"
    );
}

#[test]
fn a_file_with_only_a_header_says_it_has_no_rows() {
    let dir = Dir::new();
    dir.write("d.csv", "text,label\n");
    let e = err_text(data::scan_file(&dir.path().join("d.csv"), &section("d.csv")).unwrap_err());
    assert!(e.contains("d.csv: no data rows after the header"), "{e}");
}

// ---------- empty, missing and lossy labels ----------

#[test]
fn empty_and_missing_labels_are_skipped_and_counted_or_refused() {
    let dir = Dir::new();
    let mut csv = two_classes(40);
    csv += "an empty one,\nwhite space,  \nnan one,nan\nNaN one,NaN\nnull one,NULL\nnone one,None\nna one,N/A\n";
    dir.write("d.csv", csv);
    dir.spec("d.csv", "");
    let stderr = succeeds(&dir.lab(&["run", "spec.toml"]));
    assert!(
        stderr.contains("skipped 7 row(s) with an empty or missing label in column \"label\" (lines 42, 43, 44, 45, 46, ...;"),
        "{stderr}"
    );
    let scan = data::scan_file(&dir.path().join("d.csv"), &section("d.csv")).unwrap();
    assert_eq!(scan.notes.skipped["empty label"].count, 7);
    assert_eq!(
        (scan.rows_read, scan.rows_skipped, scan.labels.len()),
        (47, 7, 40)
    );
    assert_eq!(scan.classes, ["neg", "pos"]);

    // data.on_bad_row = "error": the first one, by line.
    dir.spec("d.csv", "on_bad_row = \"error\"");
    refused(
        &dir.lab(&["run", "spec.toml"]),
        &[
            "d.csv, line 42",
            "empty label",
            "\"label\"",
            "data.on_bad_row",
        ],
    );
    let dir = Dir::new();
    dir.write("d.csv", two_classes(40) + "a text,None\n");
    let mut d = section("d.csv");
    d.on_bad_row = Some(OnBadRow::Error);
    let e = err_text(data::load(&d, dir.path()).unwrap_err());
    for part in [
        "d.csv, line 42",
        "\"None\"",
        "missing value",
        "data.label_map",
    ] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    // A label_map entry keeps a missing-value spelling as a class.
    d.label_map.insert("None".into(), "none".into());
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!(t.classes, ["neg", "none", "pos"]);
}

#[test]
fn a_lossy_label_is_an_error_whatever_on_invalid_utf8_says() {
    let dir = Dir::new();
    let mut bytes = two_classes(20).into_bytes();
    bytes.extend_from_slice(b"a fine film,pos\xff\n");
    dir.write("d.csv", &bytes);
    dir.spec("d.csv", "on_invalid_utf8 = \"lossy\"");
    refused(
        &dir.lab(&["run", "spec.toml"]),
        &[
            "d.csv, line 22",
            "\"label\" (data.label)",
            "not valid",
            "data.encoding",
        ],
    );
    assert_eq!(dir.trials("any"), 0);

    // A lossy text stays lossy, with the warning.
    let mut bytes = two_classes(20).into_bytes();
    bytes.extend_from_slice(b"a fine \xff film,pos\n");
    dir.write("t.csv", &bytes);
    let scan = data::scan_file(&dir.path().join("t.csv"), &section("t.csv")).unwrap();
    assert_eq!(scan.notes.lossy.first_lines, [22]);
    assert!(scan.classes.iter().all(|c| !c.contains('\u{fffd}')));
}

// ---------- subsets ----------

#[test]
fn sample_is_stratified_seeded_and_streamed_past_a_sorted_file() {
    let dir = Dir::new();
    dir.write("s.csv", sorted(700, 300));
    let mut d = section("s.csv");
    d.sample = Some(Sample::Rows(100));
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!(t.labels.len(), 100);
    let pos = t.classes.iter().position(|c| c == "pos").unwrap() as u32;
    assert_eq!(t.labels.iter().filter(|&&l| l == pos).count(), 70);
    // Texts stay with their labels.
    for (text, &l) in t.texts.iter().zip(&t.labels) {
        assert!(text.starts_with(&t.classes[l as usize]), "{text}");
    }
    // Deterministic for a seed, another with another seed.
    assert_eq!(data::load(&d, dir.path()).unwrap(), t);
    let mut other = d.clone();
    other.split.seed = 9;
    assert_ne!(data::load(&other, dir.path()).unwrap().texts, t.texts);

    // Rows not sampled are not kept, and counted (not as a problem).
    let scan: Labels = data::scan_file(&dir.path().join("s.csv"), &d).unwrap();
    assert_eq!(scan.kept.iter().filter(|&&k| k).count(), 100);
    assert_eq!(scan.notes.skipped["not sampled"].count, 900);
    assert_eq!(scan.notes.skipped["not sampled"].first_lines.len(), 5);
    assert_eq!((scan.rows_read, scan.rows_skipped), (1000, 900));

    // A fraction.
    d.sample = Some(Sample::Fraction(0.25));
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!(t.labels.len(), 250);

    // The pipeline keeps exactly the sampled rows.
    d.sample = Some(Sample::Rows(100));
    let pre = lab::spec::PreprocessSection::default();
    let ds = data::prepare(&d, &pre, dir.path(), None).unwrap();
    assert_eq!(ds.train.len() + ds.valid.len() + ds.test.len(), 100);
    assert_eq!((ds.rows_read, ds.rows_skipped), (1000, 900));
}

#[test]
fn limit_applies_before_sample() {
    let dir = Dir::new();
    let mut csv = two_classes(400);
    for i in 0..600 {
        csv += &format!(
            "later review {i},{}\n",
            if i % 2 == 0 { "pos" } else { "neg" }
        );
    }
    dir.write("d.csv", csv);
    let mut d = section("d.csv");
    d.limit = Some(400);
    d.sample = Some(Sample::Rows(50));
    let t = data::load(&d, dir.path()).unwrap();
    assert_eq!((t.rows_read, t.labels.len()), (400, 50));
    assert!(t.texts.iter().all(|x| x.starts_with("a ")), "{:?}", t.texts);
}

#[test]
fn limit_on_a_sorted_file_suggests_sample() {
    let dir = Dir::new();
    dir.write("s.csv", sorted(500, 500));
    dir.spec("s.csv", "limit = 100");
    refused(
        &dir.lab(&["run", "spec.toml"]),
        &[
            "s.csv",
            "first 100 row(s)",
            "one class (pos)",
            "looks sorted",
            "data.sample = 100",
        ],
    );
    assert_eq!(dir.trials("any"), 0);
    dir.spec("s.csv", "sample = 100");
    succeeds(&dir.lab(&["run", "spec.toml"]));
    assert_eq!(dir.trials("done"), 1);
}

#[test]
fn sample_and_label_normalize_values_are_checked() {
    let dir = Dir::new();
    dir.write("d.csv", two_classes(40));
    for (line, parts) in [
        ("sample = 0", vec!["spec.toml", "data.sample", "found 0"]),
        ("sample = 1.5", vec!["data.sample", "found 1.5"]),
        ("sample = -3", vec!["data.sample"]),
        ("label_normalize = \"upper\"", vec!["data.label_normalize"]),
    ] {
        dir.spec("d.csv", line);
        refused(&dir.lab(&["run", "spec.toml"]), &parts);
    }
    assert_eq!(dir.trials("any"), 0);
}

#[test]
fn the_shipped_imdb_file_is_sorted_limit_says_so_and_sample_is_balanced() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut d = section("data/imdb.csv.gz");
    d.limit = Some(1000);
    let e = err_text(data::load(&d, root).unwrap_err());
    assert!(
        e.contains("looks sorted") && e.contains("data.sample = 1000"),
        "{e}"
    );
    d.limit = None;
    d.sample = Some(Sample::Rows(1000));
    let scan = data::scan_file(&root.join("data/imdb.csv.gz"), &d).unwrap();
    assert_eq!(scan.labels.len(), 1000);
    assert_eq!(scan.labels.iter().filter(|&&l| l == 0).count(), 500);
    assert_eq!(scan.notes.skipped["not sampled"].count, 24_000);
}
