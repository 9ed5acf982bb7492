//! `lab report` and `lab plot` files from a real store (the browser checks that
//! the charts render are in tests/it/browser.rs).

use crate::common::{lab, ok, trained};

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
