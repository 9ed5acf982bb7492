//! Real headless Chromium, driven through chromedriver: the `lab serve` page
//! (type a review, click Predict, read the label; upload a CSV, check the table
//! and charts) and the `lab report` HTML (every chart drawn; a screenshot is
//! saved as an artifact).

use crate::common::{artifacts_dir, lab, ok, trained, Driver, Server, REVIEWS_CSV};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::time::Duration;

/// One Chromium at a time: two starting together on a loaded 2-core machine made
/// chromedriver reset the second session's connection (CI, 2026-12-01).
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A new session, retried: chromedriver may accept the connection before it can
/// start Chromium, and then resets it.
pub(crate) async fn browser(driver: &Driver) -> Client {
    let mut last = None;
    for attempt in 0..5u64 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(driver.capabilities())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return client,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_secs(1 + 2 * attempt)).await;
    }
    panic!(
        "a Chromium session: {:?}",
        last.expect("at least one attempt")
    );
}

pub(crate) async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect(script)
}

/// Wait until `script` returns true.
pub(crate) async fn until(client: &Client, script: &str) {
    for _ in 0..100 {
        if js(client, script).await == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {script}");
}

/// A full-page screenshot under the artifacts directory.
pub(crate) async fn screenshot(client: &Client, name: &str) {
    let height = js(client, "return document.documentElement.scrollHeight").await;
    client
        .set_window_size(
            1300,
            height.as_u64().unwrap_or(3000).min(12000) as u32 + 150,
        )
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let shot = artifacts_dir().join(name);
    std::fs::write(&shot, png).unwrap();
    eprintln!("screenshot: {}", shot.display());
    client.set_window_size(1300, 900).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_predicts_a_review_and_a_csv() {
    let t = trained();
    let trial = t.trials[0].to_string();
    let server = Server::start(&["serve", "--db", t.db.to_str().unwrap(), "--trial", &trial]);
    let _one = ONE_BROWSER.lock().await;
    let driver = Driver::start();
    let client = browser(&driver).await;
    client.goto(&server.url("/")).await.unwrap();

    let review = "A gorgeous, moving film with superb acting";
    client
        .find(Locator::Id("text"))
        .await
        .unwrap()
        .send_keys(review)
        .await
        .unwrap();
    client
        .find(Locator::Id("predict"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &client,
        "return document.getElementById('label').textContent.length > 0",
    )
    .await;
    let label = client
        .find(Locator::Id("label"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The label the page shows is the API's label for the same text.
    let api: Value = ureq::post(&server.url("/v1/predict"))
        .send_json(json!({"texts": [review]}))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(label, api["predictions"][0]["label"].as_str().unwrap());
    let bars = js(&client, "return [...document.querySelectorAll('#bars .fill')].map(e => e.getBoundingClientRect().width)").await;
    let widths: Vec<f64> = bars
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(widths.len(), 2, "one probability bar per class");
    assert!(widths.iter().sum::<f64>() > 0.0);

    // Upload a CSV whose text column is `review`.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    std::fs::write(&csv, REVIEWS_CSV).unwrap();
    client
        .find(Locator::Id("csv-file"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    let column = client.find(Locator::Id("column")).await.unwrap();
    column.clear().await.unwrap();
    column.send_keys("review").await.unwrap();
    client
        .find(Locator::Id("upload"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &client,
        "return !document.getElementById('csv-result').hidden",
    )
    .await;
    let error = client
        .find(Locator::Id("csv-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(error, "");
    let table = js(&client, "return [...document.querySelectorAll('#table tr')].map(r => [...r.cells].map(c => c.textContent))").await;
    let rows = table.as_array().unwrap();
    assert_eq!(rows.len(), 5, "header and 4 rows: {table}");
    assert_eq!(
        rows[0],
        json!(["id", "review", "predicted_label", "p_fresh", "p_rotten"])
    );
    assert_eq!(rows[1][1], "A moving, beautifully acted film.");
    let mut counts = std::collections::BTreeMap::new();
    for row in &rows[1..] {
        *counts
            .entry(row[2].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    // The bar chart draws one bar per predicted label, with the counts as heights.
    let drawn = js(&client, "return [...document.querySelectorAll('#bar-chart svg rect.bar')].map(r => r.getBoundingClientRect().height)").await;
    let heights: Vec<f64> = drawn
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(heights.len(), counts.len());
    assert!(heights.iter().all(|h| *h > 0.0), "{heights:?}");
    let slices = js(&client, "return [...document.querySelectorAll('#pie-chart svg .slice')].map(s => s.getBoundingClientRect().width)").await;
    let slices = slices.as_array().unwrap();
    assert_eq!(slices.len(), counts.len());
    assert!(slices.iter().all(|w| w.as_f64().unwrap() > 0.0));
    let href = client
        .find(Locator::Id("download"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert!(href.unwrap_or_default().starts_with("blob:"));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_draws_every_chart() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    ok(&lab(&[
        "report",
        "quick",
        "--db",
        t.db.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]));
    let file = dir.path().join("quick.html");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(!html.contains("<script"), "the report needs no scripts");
    assert!(
        !html.contains("https://"),
        "the report loads nothing from the network"
    );

    let _one = ONE_BROWSER.lock().await;
    let driver = Driver::start();
    let client = browser(&driver).await;
    client
        .goto(&format!("file://{}", file.display()))
        .await
        .unwrap();
    let charts = js(
        &client,
        "return [...document.querySelectorAll('svg.chart')].map(s => {
            const box = s.getBoundingClientRect();
            const marks = s.querySelectorAll('polyline.series, rect.bar, rect.cell, line.whisker');
            const drawn = [...marks].filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
            return { title: s.querySelector('title').textContent, w: box.width, h: box.height, marks: drawn.length };
        })",
    )
    .await;
    let charts = charts.as_array().unwrap();
    // The interval plot, 2 configurations x (loss, valid metric), test and
    // valid confusion matrices, per-class scores, class distribution.
    assert_eq!(charts.len(), 1 + 2 * 2 + 2 + 1 + 1, "{charts:?}");
    for c in charts {
        assert!(
            c["w"].as_f64().unwrap() > 100.0 && c["h"].as_f64().unwrap() > 100.0,
            "{c}"
        );
        assert!(c["marks"].as_u64().unwrap() > 0, "nothing drawn in {c}");
    }
    // One line per seed and curve (2 seeds x train/valid) in each loss chart.
    let loss_lines = js(&client, "return [...document.querySelectorAll('svg.chart')].filter(s => s.querySelector('title').textContent.startsWith('Loss')).map(s => s.querySelectorAll('polyline.series').length)").await;
    assert_eq!(loss_lines, json!([4, 4]));
    let best = js(
        &client,
        "return document.querySelectorAll('table.leaderboard tr.best').length",
    )
    .await;
    assert_eq!(best, json!(1));
    let cells = js(&client, "return [...document.querySelectorAll('svg.chart')].filter(s => s.querySelector('title').textContent.includes('Confusion matrix (test)'))[0].querySelectorAll('rect.cell').length").await;
    assert_eq!(cells, json!(4));
    // The interval plot: a whisker wider than its dot and a dot per configuration.
    let whiskers = js(&client, "return [...[...document.querySelectorAll('svg.chart')].filter(s => s.querySelector('title').textContent.includes('per configuration'))[0].querySelectorAll('line.whisker, circle.mean')].map(m => m.getBoundingClientRect().width)").await;
    let widths: Vec<f64> = whiskers
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(widths.len(), 2 * 2, "{widths:?}");
    assert!(widths.iter().all(|w| *w > 0.0), "{widths:?}");
    assert!(
        widths.iter().any(|w| *w > 10.0),
        "a whisker spans its interval: {widths:?}"
    );

    // A full-page screenshot for people to look at.
    screenshot(&client, "report-quick.png").await;
    std::fs::copy(&file, artifacts_dir().join("report-quick.html")).unwrap();
    client.close().await.unwrap();
}
