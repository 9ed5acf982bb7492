//! `lab report` and `lab plot` files from a real store (the browser checks that
//! the charts render are in tests/it/browser.rs).

use crate::common::{lab, ok, trained};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[test]
fn report_writes_one_page_per_experiment_and_an_index() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&[
        "report",
        "--db",
        t.db.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    // The files written are news for stderr; stdout carries results only.
    assert!(ok(&out).is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("quick.html"));
    let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(index.contains("href=\"quick.html\""));
    let html = std::fs::read_to_string(dir.path().join("quick.html")).unwrap();
    for part in [
        "Leaderboard",
        "★ best",
        "Confusion matrix (test)",
        "Per class (test split)",
        "Rows per class",
        "[sweep]",
    ] {
        assert!(html.contains(part), "report lacks {part}");
    }
    // Ranking by loss marks a best row too, and a wrong metric is an error naming it.
    let out = lab(&[
        "report",
        "quick",
        "--metric",
        "nope",
        "--db",
        t.db.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("metric `nope`"));
    let out = lab(&[
        "report",
        "missing",
        "--db",
        t.db.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no experiment `missing`"));
}

#[test]
fn plot_writes_one_chart_as_svg() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let trial = t.trials[0].to_string();
    let db = t.db.to_str().unwrap();
    for (chart, mark, count) in [
        ("loss", "<polyline class=\"series\"", 2),
        ("metric", "<polyline class=\"series\"", 2),
        ("confusion", "<rect class=\"cell\"", 4),
    ] {
        let file = dir.path().join(format!("{chart}.svg"));
        ok(&lab(&[
            "plot",
            &trial,
            "--chart",
            chart,
            "--db",
            db,
            "--out",
            file.to_str().unwrap(),
        ]));
        let svg = std::fs::read_to_string(&file).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches(mark).count(), count, "{chart}");
    }
    // quick.toml trains 4 epochs: 4 points per loss line.
    let svg = std::fs::read_to_string(dir.path().join("loss.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 2 * 4);
    // PNG: a real image, twice the SVG's 520x300 size, not blank.
    let png = dir.path().join("loss.png");
    let out = lab(&["plot", &trial, "--db", db, "--out", png.to_str().unwrap()]);
    if cfg!(feature = "png") {
        ok(&out);
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), (1040, 600));
        assert!(
            bytes.len() > 5000,
            "a blank image compresses to almost nothing"
        );
    } else {
        // A build without the `png` feature says so, and writes nothing.
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("loss.png") && err.contains("without the `png` feature"),
            "{err}"
        );
        assert!(!png.exists());
    }
    let out = lab(&[
        "plot",
        &trial,
        "--db",
        db,
        "--out",
        dir.path().join("x.gif").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a .svg or .png"));
    let out = lab(&[
        "plot",
        &trial,
        "--chart",
        "pie",
        "--db",
        db,
        "--out",
        dir.path().join("x.svg").to_str().unwrap(),
    ]);
    // The charts are a closed set: clap refuses others (a usage error) and lists them.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'pie'"), "{stderr}");
    assert!(stderr.contains("loss, metric, confusion"), "{stderr}");
}

/// The parts of `text` between each `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    text.split(start)
        .skip(1)
        .map(|part| part.split(end).next().unwrap())
        .collect()
}

/// `lab report quick` of the store `db`, as HTML.
fn report_of(db: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = db.to_str().unwrap();
    let out = dir.path().to_str().unwrap();
    ok(&lab(&["report", "quick", "--db", db, "--out", out]));
    std::fs::read_to_string(dir.path().join("quick.html")).unwrap()
}

/// `lab compare quick --format json` of the store `db`.
fn compare_rows(db: &Path) -> Vec<Value> {
    let db = db.to_str().unwrap();
    let json = ok(&lab(&["compare", "quick", "--db", db, "--format", "json"]));
    serde_json::from_str(&json).unwrap()
}

/// A row's verdict as `lab compare`'s table words it, HTML-escaped, and its CSS class.
fn verdict(row: &Value) -> (String, &'static str) {
    let p = match row["p_adjusted"].as_f64() {
        Some(p) if p < 0.001 => " (p&lt;0.001)".to_string(),
        Some(p) => format!(" (p={p:.3})"),
        None => String::new(),
    };
    match row["vs_best"].as_str().unwrap() {
        "best" => ("best".into(), "best"),
        "indistinguishable" => (format!("≈ best{p}"), "indistinguishable"),
        "different" => (format!("worse{p}"), "different"),
        "not_tested" => ("n/a".into(), "too-few"),
        other => panic!("unknown verdict {other}"),
    }
}

/// The leaderboards' rows in the report, board after board, the header rows
/// left out; `boards` tables.
fn leaderboard_rows(html: &str, boards: usize) -> Vec<&str> {
    let tables = between(html, "<table class=\"leaderboard\">", "</table>");
    assert_eq!(tables.len(), boards, "one table per test split");
    tables.iter().flat_map(|t| t.split("<tr").skip(2)).collect()
}

/// The interval column and the verdict of each row are `lab compare`'s.
fn rows_state_compares_evidence(trs: &[&str], rows: &[Value]) {
    assert_eq!(trs.len(), rows.len());
    for (tr, row) in trs.iter().zip(rows) {
        let (lo, hi) = (
            row["ci_low"].as_f64().unwrap(),
            row["ci_high"].as_f64().unwrap(),
        );
        assert!(lo < hi, "{row}");
        assert!(
            tr.contains(&format!("<td class=\"ci\">[{lo:.4}, {hi:.4}]</td>")),
            "{tr}\n{row}"
        );
        let (words, class) = verdict(row);
        assert!(tr.starts_with(&format!(" class=\"{class}\">")), "{tr}");
        assert!(
            tr.contains(&format!("<td class=\"verdict\">{words}</td>")),
            "{tr}\n{row}"
        );
        assert!(
            tr.contains(&format!("<td>{}</td></tr>", row["best_trial"])),
            "{tr}"
        );
    }
}

/// The report's interval plots: `boards` of them.
fn interval_plots(html: &str, boards: usize) -> Vec<&str> {
    let plots: Vec<&str> = between(html, "<svg class=\"chart\"", "</svg>")
        .into_iter()
        .filter(|svg| svg.contains("per configuration</title>"))
        .collect();
    assert_eq!(plots.len(), boards, "one interval plot per board");
    plots
}

#[test]
fn report_states_the_evidence_compare_gives() {
    let t = trained();
    let html = report_of(&t.db);
    let rows = compare_rows(&t.db);
    assert!(rows.len() >= 2, "{rows:?}");
    rows_state_compares_evidence(&leaderboard_rows(&html, 1), &rows);
    assert!(!html.contains("<caption>"), "one test split: no split note");
    assert!(html.contains("<th class=\"ci\">95% CI</th><th class=\"k\">vs best</th>"));
    // The methods under the table.
    assert!(html.contains("<p class=\"evidence-note muted\">95% CI: Student t over seeds"));
    assert!(html.contains("paired bootstrap of the difference over 300 test rows"));

    // The interval plot: per row one whisker and one mean, best first, the
    // best row's interval shaded, a legend of the verdicts shown.
    let svg = interval_plots(&html, 1)[0];
    assert_eq!(svg.matches("<line class=\"whisker\"").count(), rows.len());
    assert_eq!(svg.matches("<circle class=\"mean\"").count(), rows.len());
    assert_eq!(svg.matches("<rect class=\"best-band\"").count(), 1);
    let mut at = 0;
    for row in &rows {
        let label = format!(
            ">model.cell = {}</text>",
            row["model.cell"].as_str().unwrap()
        );
        let found = svg[at..]
            .find(&label)
            .unwrap_or_else(|| panic!("{label} after {at}: {svg}"));
        at += found + label.len();
        let class = verdict(row).1;
        assert!(svg.contains(&format!("<g class=\"row {class}\">")), "{svg}");
    }
    let marks: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["vs_best"].as_str().unwrap())
        .collect();
    assert!(svg.contains(">best (shaded: its CI)</text>"));
    assert_eq!(
        svg.contains(">≈ best</text>"),
        marks.contains("indistinguishable")
    );
    assert_eq!(svg.contains(">worse</text>"), marks.contains("different"));
    wrong_texts_match_show(&html, &t.db, rows[0]["best_trial"].as_i64().unwrap());
}

/// The report's wrong-texts table of the best trial is `lab show TRIAL --errors 10`'s,
/// and its texts are the data file's, with their labels.
fn wrong_texts_match_show(html: &str, db: &Path, best: i64) {
    let db = db.to_str().unwrap();
    let shown = ok(&lab(&[
        "show",
        &best.to_string(),
        "--errors",
        "10",
        "--db",
        db,
        "--format",
        "json",
    ]));
    let shown: Value = serde_json::from_str(&shown).unwrap();
    let want = shown["rows"].as_array().unwrap();
    assert_eq!(
        want.len(),
        10,
        "quick.toml's trials get more than 10 test rows wrong"
    );
    let tables = between(html, "<table class=\"wrong\">", "</table>");
    assert_eq!(tables.len(), 1);
    let trs: Vec<Vec<&str>> = tables[0].split("<tr>").skip(2).map(cells).collect();
    let data = data_file_records();
    assert_eq!(trs.len(), want.len());
    for (cells, w) in trs.iter().zip(want) {
        let text = html_escape::decode_html_entities(cells[3]).into_owned();
        assert_eq!(cells[0], w["label"].as_str().unwrap());
        assert_eq!(cells[1], w["predicted"].as_str().unwrap());
        assert_eq!(
            cells[2],
            format!("{:.3}", w["probability"].as_f64().unwrap())
        );
        assert_eq!(text, w["text"].as_str().unwrap());
        assert_ne!(cells[0], cells[1], "a wrong prediction");
        assert!(
            data.contains(&(text.clone(), cells[0].to_string())),
            "{text:?} with label {} is not in data/rotten_tomatoes.csv",
            cells[0]
        );
    }
    assert!(html.contains(&format!("test texts trial {best} got wrong")));
}

/// The cells' contents of one table row.
fn cells(tr: &str) -> Vec<&str> {
    tr.split("</td>")
        .filter_map(|c| c.find("<td").map(|i| &c[i..]))
        .map(|c| &c[c.find('>').unwrap() + 1..])
        .collect()
}

/// (text, label) of every record of data/rotten_tomatoes.csv, read by the csv crate.
fn data_file_records() -> BTreeSet<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect()
}

/// A copy of the trained store, to change without disturbing other tests.
fn copy_of_store(dir: &Path) -> PathBuf {
    let copy = dir.join("lab.db");
    let conn = rusqlite::Connection::open(&trained().db).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    copy
}

#[test]
fn report_of_trials_without_predictions_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = copy_of_store(dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("DELETE FROM predictions", []).unwrap();
    drop(conn);
    let html = report_of(&db);
    let rows = compare_rows(&db);
    let best = rows[0]["best_trial"].as_i64().unwrap();
    // Intervals over seeds still; no paired test, so no verdict but the best.
    let trs = leaderboard_rows(&html, 1);
    assert_eq!(trs.len(), rows.len());
    for (i, tr) in trs.iter().enumerate() {
        let want = if i == 0 { "best" } else { "n/a" };
        assert!(
            tr.contains(&format!("<td class=\"verdict\">{want}</td>")),
            "{tr}"
        );
        assert_eq!(verdict(&rows[i]).0, want);
    }
    assert!(html.contains("vs best: no per-example predictions for the best row"));
    let svg = interval_plots(&html, 1)[0];
    assert_eq!(svg.matches("<line class=\"whisker\"").count(), rows.len());
    assert!(svg.contains(">n/a (not tested)</text>"), "{svg}");
    // A sentence instead of the wrong texts, and the rest of the report.
    assert!(!html.contains("<table class=\"wrong\">"));
    let sentence = between(&html, "<p class=\"no-errors\">", "</p>");
    assert_eq!(sentence.len(), 1, "{html}");
    assert!(
        sentence[0].starts_with(&format!("No wrong test texts to show for trial {best}: "))
            && sentence[0].contains("has no recorded test predictions"),
        "{}",
        sentence[0]
    );
    assert!(html.contains("Per class (test split)") && html.contains("[sweep]"));
}

/// Two test splits (`data.split.seed`), each with two identical configurations
/// under different names (the same data in two files) and an untrainable one
/// of each (lr 1e-5).
const TWO_SPLITS: &str = r#"
[experiment]
name = "quick"
seeds = [1]

[data]
path = "a.csv"
limit = 3000

[preprocess]
min_freq = 2
max_len = 32

[model]
embedding_dim = 32
hidden = 32
pooling = "mean"

[train]
epochs = 4
batch_size = 32
lr = 5e-3

[sweep]
"data.path" = ["a.csv", "b.csv"]
"train.lr" = [5e-3, 1e-5]
"data.split.seed" = [0, 1]
"#;

#[test]
fn report_ranks_each_test_split_apart_with_its_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rotten_tomatoes.csv");
    std::fs::copy(&data, dir.path().join("a.csv")).unwrap();
    std::fs::copy(&data, dir.path().join("b.csv")).unwrap();
    let spec = dir.path().join("two.toml");
    std::fs::write(&spec, TWO_SPLITS).unwrap();
    let db = dir.path().join("lab.db");
    let (spec_arg, db_arg) = (spec.to_str().unwrap(), db.to_str().unwrap());
    ok(&lab(&["run", spec_arg, "--db", db_arg, "-q"]));
    let html = report_of(&db);
    let rows = compare_rows(&db);
    assert_eq!(rows.len(), 8);
    rows_state_compares_evidence(&leaderboard_rows(&html, 2), &rows);
    // Each board: its split note as the caption, the best, its twin, two worse.
    let captions = between(&html, "<caption>", "</caption>");
    assert_eq!(captions.len(), 2, "{html}");
    for (i, caption) in captions.iter().enumerate() {
        assert!(
            caption.starts_with(&format!("test split {} of 2 (", i + 1)),
            "{caption}"
        );
        assert!(caption.contains("data.split.seed = "), "{caption}");
    }
    assert!(html.contains("<p>2 test splits, each ranked on its own"));
    assert_eq!(html.matches("<p class=\"evidence-note muted\">").count(), 2);
    for (svg, board) in interval_plots(&html, 2).iter().zip(rows.chunks(4)) {
        let marks: Vec<&str> = board
            .iter()
            .map(|r| r["vs_best"].as_str().unwrap())
            .collect();
        assert_eq!(
            marks,
            ["best", "indistinguishable", "different", "different"],
            "{board:?}"
        );
        assert_eq!(svg.matches("<line class=\"whisker\"").count(), 4);
        assert_eq!(svg.matches("<g class=\"row different\">").count(), 2);
        assert_eq!(
            svg.matches("<g class=\"row indistinguishable\">").count(),
            1
        );
        // Worse rows: dashed whiskers and open dots, in the legend too.
        assert_eq!(
            svg.matches("stroke-dasharray=\"5 3\"").count(),
            2 + 1,
            "{svg}"
        );
        assert!(svg.contains(">≈ best</text>") && svg.contains(">worse</text>"));
    }
}
