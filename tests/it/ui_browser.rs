//! `lab ui` in real headless Chromium: the experiment page follows a real
//! `lab run` (a new epoch appears on the chart without a reload), the
//! leaderboard sorts, a trial opens, a tag survives a reload; a screenshot of
//! each page is saved as a test artifact.

use crate::browser::{browser, js, screenshot, ONE_BROWSER};
use crate::common::{copy_dir, trained, Driver, Server};
use fantoccini::{Client, Locator};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wait up to `secs` until `script` returns true.
async fn wait(client: &Client, script: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while js(client, script).await != json!(true) {
        if Instant::now() > deadline {
            let page = js(
                client,
                "return location.href + ' ' + document.body.innerHTML.slice(0, 3000)",
            )
            .await;
            panic!("timed out after {secs} s waiting for: {script}\non the page {page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every chart on the page has a size and drawn marks.
const CHARTS_DRAWN: &str = "const charts = [...document.querySelectorAll('svg.chart')];
    return charts.length > 0 && charts.every(c => { const r = c.getBoundingClientRect();
      return r.width > 100 && r.height > 100 &&
        c.querySelectorAll('polyline, circle, rect.bar, rect.cell, line.whisker').length > 0; });";

/// Kills the child on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn experiment_exists(db: &Path) -> bool {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM trials WHERE status = 'running'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_experiment_page_follows_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml");
    // Long enough to watch: the test stops it once it has seen an epoch arrive.
    let _run = Running(
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(["run", spec.to_str().unwrap(), "--db", db.to_str().unwrap()])
            .args([
                "--set",
                "experiment.name=live",
                "--set",
                "train.epochs=2000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !experiment_exists(&db) {
        assert!(Instant::now() < deadline, "lab run did not start a trial");
        std::thread::sleep(Duration::from_millis(200));
    }
    let server = Server::start(&["ui", "--db", db.to_str().unwrap()]);
    let _one = ONE_BROWSER.lock().await;
    let driver = Driver::start();
    let client = browser(&driver).await;
    client.goto(&server.url("/experiments/live")).await.unwrap();
    js(&client, "window.samePage = true; return true").await;
    // The running trials' epochs as the chart last drew them.
    let epochs = "(() => { const r = document.querySelector('#live .running-curves'); return r ? Number(r.dataset.epochs) : 0; })()";
    wait(&client, &format!("return {epochs} >= 1"), 60).await;
    let first = js(&client, &format!("return {epochs}"))
        .await
        .as_u64()
        .unwrap();
    let points =
        "return [...document.querySelectorAll('#live .running-curves svg polyline.series')]
        .reduce((n, p) => n + p.getAttribute('points').trim().split(' ').length, 0)";
    let first_points = js(&client, points).await.as_u64().unwrap();
    assert!(first_points > 0, "the running trial's curve is drawn");
    let started = Instant::now();
    wait(&client, &format!("return {epochs} > {first}"), 60).await;
    let seen_after = started.elapsed();
    assert_eq!(
        js(&client, "return window.samePage === true").await,
        json!(true),
        "no reload"
    );
    let later_points = js(&client, points).await.as_u64().unwrap();
    assert!(
        later_points > first_points,
        "{later_points} > {first_points} points"
    );
    eprintln!(
        "a new epoch showed {:.1} s after the previous one was seen",
        seen_after.as_secs_f64()
    );
    assert!(
        js(&client, CHARTS_DRAWN).await == json!(true),
        "every chart drawn"
    );
    screenshot(&client, "ui-experiment-live.png").await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_sort_open_a_trial_and_keep_a_tag() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(t.db.parent().unwrap(), dir.path());
    let db = dir.path().join(t.db.file_name().unwrap());
    let server = Server::start(&["ui", "--db", db.to_str().unwrap()]);
    let _one = ONE_BROWSER.lock().await;
    let driver = Driver::start();
    let client = browser(&driver).await;

    client.goto(&server.url("/")).await.unwrap();
    assert!(
        js(
            &client,
            "return document.querySelector('table.experiments a').textContent === 'quick'"
        )
        .await
            == json!(true)
    );
    screenshot(&client, "ui-experiments.png").await;

    client
        .goto(&server.url("/experiments/quick"))
        .await
        .unwrap();
    assert!(
        js(&client, CHARTS_DRAWN).await == json!(true),
        "every chart drawn"
    );
    // Sort by the ranked metric (the column after `n`), twice: descending, then ascending.
    let values = "const t = document.querySelector('table.leaderboard');
        const col = [...t.rows[0].cells].findIndex(c => c.textContent === 'n') + 1;
        return [...t.rows].slice(1).map(r => parseFloat(r.cells[col].textContent))";
    let header = "const t = document.querySelector('table.leaderboard');
        const col = [...t.rows[0].cells].findIndex(c => c.textContent === 'n') + 1;
        t.rows[0].cells[col].click(); return true";
    js(&client, header).await;
    let down: Vec<f64> = serde_json::from_value(js(&client, values).await).unwrap();
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    js(&client, header).await;
    let up: Vec<f64> = serde_json::from_value(js(&client, values).await).unwrap();
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    assert_eq!(down.len(), 2);
    assert_ne!(down, up, "the order changed");
    screenshot(&client, "ui-experiment.png").await;

    // Open the best trial from the leaderboard.
    client
        .find(Locator::Css("table.leaderboard a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait(
        &client,
        "return location.pathname.startsWith('/trials/')",
        10,
    )
    .await;
    let id: i64 = js(&client, "return location.pathname.split('/')[2]")
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(t.trials.contains(&id));
    assert_eq!(
        js(&client, "return document.querySelector('h1').textContent").await,
        json!(format!("Trial {id}"))
    );
    wait(
        &client,
        "return !!document.querySelector('div.lazy[data-loaded]')",
        30,
    )
    .await;
    assert!(
        js(&client, CHARTS_DRAWN).await == json!(true),
        "every chart drawn"
    );
    assert!(
        js(
            &client,
            "return document.querySelector('table.wrong') !== null"
        )
        .await
            == json!(true)
    );

    // Tag it; the tag is there after a reload.
    client
        .find(Locator::Css("form.add-tag input"))
        .await
        .unwrap()
        .send_keys("keeper")
        .await
        .unwrap();
    client
        .find(Locator::Css("form.add-tag button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait(
        &client,
        "return !!document.querySelector('.tag[data-tag=keeper]')",
        10,
    )
    .await;
    client.refresh().await.unwrap();
    wait(
        &client,
        "return !!document.querySelector('.tag-list .tag[data-tag=keeper]')",
        10,
    )
    .await;
    screenshot(&client, "ui-trial.png").await;

    let other = t.trials.iter().find(|&&x| x != id).unwrap();
    client
        .goto(&server.url(&format!("/compare?a={id}&b={other}")))
        .await
        .unwrap();
    assert!(
        js(&client, CHARTS_DRAWN).await == json!(true),
        "every chart drawn"
    );
    screenshot(&client, "ui-compare.png").await;
    client.close().await.unwrap();
}
