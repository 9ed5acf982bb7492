//! `lab ui` over HTTP: a real server on a loopback port, read by a real client
//! (ureq): the pages and the JSON API on a trained store, tags and notes
//! written and read back, the token, a shard directory shown read-only.

use crate::common::{copy_dir, trained, Server};
use serde_json::{json, Value};

/// Status and body of a request (4xx and 5xx included).
fn call(req: ureq::Request, body: Option<Value>) -> (u16, String) {
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match res {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn get(server: &Server, path: &str) -> (u16, String) {
    call(ureq::get(&server.url(path)), None)
}

fn get_json(server: &Server, path: &str) -> Value {
    let (status, body) = get(server, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A copy of the trained store (with its runs directory) that a test may write.
fn writable_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let src = t.db.parent().unwrap();
    copy_dir(src, dir.path());
    let db = dir.path().join(t.db.file_name().unwrap());
    (dir, db)
}

#[test]
fn the_api_and_pages_show_a_trained_store() {
    let t = trained();
    let server = Server::start(&["ui", "--db", t.db.to_str().unwrap()]);

    let list = get_json(&server, "/api/experiments");
    let quick = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "quick")
        .expect("the quick experiment is listed");
    assert_eq!(quick["done"], json!(t.trials.len()));
    assert_eq!(quick["running"], 0);
    let best = quick["best_trial"].as_i64().unwrap();
    assert!(t.trials.contains(&best));
    assert!(quick["best_macro_f1"].as_f64().unwrap() > 0.0);

    let board = get_json(&server, "/api/experiments/quick");
    assert_eq!(board["counts"]["done"], json!(t.trials.len()));
    let rows = board["leaderboard"].as_array().expect("leaderboard rows");
    assert_eq!(rows.len(), 2, "one row per cell: {board}");
    // Ranked by another metric when asked.
    let by_loss = get_json(&server, "/api/experiments/quick?metric=loss");
    assert!(by_loss["leaderboard"].to_string().contains("loss"));
    let (status, body) = get(&server, "/api/experiments/quick?metric=nonsense");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nonsense"), "{body}");

    let trials = get_json(&server, "/api/experiments/quick/trials?status=done");
    assert_eq!(trials.as_array().unwrap().len(), t.trials.len());
    assert!(trials[0]["config"]["model.cell"].is_string(), "{trials}");
    assert!(trials[0]["test"]["macro_f1"].is_number(), "{trials}");

    let trial = get_json(&server, &format!("/api/trials/{best}"));
    assert_eq!(trial["experiment"], "quick");
    assert_eq!(trial["epochs"].as_array().unwrap().len(), 4);
    assert!(trial["metrics"].as_array().unwrap().len() > 4);
    assert_eq!(trial["confusion"].as_array().unwrap().len(), 2);
    let artifact = trial["artifacts"][0]["url"].as_str().unwrap().to_string();
    let (status, bytes) = get(&server, &artifact);
    assert_eq!(status, 200);
    assert!(!bytes.is_empty());

    let (status, html) = get(&server, "/");
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/experiments/quick\""), "{html}");
    let (status, html) = get(&server, "/experiments/quick");
    assert_eq!(status, 200);
    assert!(html.contains("class=\"leaderboard\""));
    assert!(html.contains(&format!("href=\"/trials/{best}\"")));
    assert!(
        html.contains("<polyline class=\"trial\""),
        "parallel coordinates"
    );
    assert!(html.contains("Effect of model.cell"));
    assert!(
        html.contains("class=\"whisker\""),
        "two seeds per cell give an interval"
    );
    let (status, html) = get(&server, &format!("/trials/{best}"));
    assert_eq!(status, 200);
    assert!(html.contains(&format!("lab predict --db {} {best}", t.db.display())));
    assert!(html.contains("Confusion matrix (test)"));
    assert!(html.contains("model.cell"));
    let (status, html) = get(&server, &format!("/trials/{best}/errors"));
    assert_eq!(status, 200);
    assert!(html.contains("Most confidently wrong test texts"), "{html}");

    let (a, b) = (t.trials[0], t.trials[1]);
    let (status, html) = get(&server, &format!("/compare?a={a}&b={b}"));
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<th>A − B</th>"), "{html}");
    assert!(html.contains("class=\"contingency\""), "{html}");
    let (status, html) = get(
        &server,
        "/compare?experiment=quick&a=model.cell=lstm&b=model.cell=gru",
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("rows where A and B disagree"));

    // Not found is a 404 that says what was missing, JSON for the API.
    let (status, body) = get(&server, "/api/experiments/nope");
    assert_eq!(status, 404);
    assert!(body.contains("no experiment `nope`"), "{body}");
    let (status, body) = get(&server, "/trials/999999");
    assert_eq!(status, 404);
    assert!(body.contains("no trial 999999"), "{body}");
    let (status, _) = get(&server, "/compare?a=1&b=not%20a%20side");
    assert_eq!(status, 400);
}

#[test]
fn tags_and_notes_are_written_and_read_back() {
    let (_dir, db) = writable_copy();
    let server = Server::start(&["ui", "--db", db.to_str().unwrap()]);
    let trial = trained().trials[0];
    let tags = server.url(&format!("/api/trials/{trial}/tags"));
    let (status, body) = call(ureq::post(&tags), Some(json!({"tag": "baseline"})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["tags"],
        json!(["baseline"])
    );
    let (status, body) = call(ureq::post(&tags), Some(json!({"tag": "  "})));
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(ureq::post(&tags).set("Content-Type", "text/plain"), None);
    assert_eq!(status, 415, "{body}");
    let (status, body) = call(
        ureq::post(&server.url("/api/trials/999999/tags")),
        Some(json!({"tag": "x"})),
    );
    assert_eq!(status, 404, "{body}");
    let note = server.url(&format!("/api/trials/{trial}/note"));
    let (status, body) = call(
        ureq::put(&note),
        Some(json!({"note": "lr too high <b>?</b>"})),
    );
    assert_eq!(status, 200, "{body}");

    let api = get_json(&server, &format!("/api/trials/{trial}"));
    assert_eq!(api["tags"], json!(["baseline"]));
    assert_eq!(api["note"], "lr too high <b>?</b>");
    let (_, html) = get(&server, &format!("/trials/{trial}"));
    assert!(html.contains("data-tag=\"baseline\""));
    assert!(html.contains("lr too high &lt;b&gt;?&lt;/b&gt;"), "escaped");

    let exp = server.url("/api/experiments/quick/tags");
    let (status, _) = call(ureq::post(&exp), Some(json!({"tag": "paper"})));
    assert_eq!(status, 200);
    let list = get_json(&server, "/api/experiments");
    assert_eq!(list[0]["tags"], json!(["paper"]));
    let (status, body) = call(
        ureq::delete(&server.url(&format!("/api/trials/{trial}/tags/baseline"))),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get_json(&server, &format!("/api/trials/{trial}"))["tags"],
        json!([])
    );

    // `lab show` reads what the page wrote.
    let show = crate::common::lab(&["show", "--db", db.to_str().unwrap(), &trial.to_string()]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("lr too high"), "{text}");
}

#[test]
fn a_token_guards_every_route() {
    let t = trained();
    let server = Server::start(&["ui", "--db", t.db.to_str().unwrap(), "--token", "s3cret"]);
    let (status, body) = get(&server, "/api/experiments");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("token"));
    let (status, _) = call(
        ureq::get(&server.url("/api/experiments")).set("Authorization", "Bearer s3cret"),
        None,
    );
    assert_eq!(status, 200);
    let res = ureq::get(&server.url("/?token=s3cret")).call().unwrap();
    let cookie = res.header("set-cookie").unwrap().to_string();
    assert!(cookie.starts_with("lab_ui_token=s3cret"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let (status, _) = call(
        ureq::get(&server.url("/experiments/quick")).set("Cookie", &pair),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = call(ureq::get(&server.url("/?token=wrong")), None);
    assert_eq!(status, 401);
}

#[test]
fn a_shard_directory_is_shown_read_only() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    // A shard is a store with its runs directory (`lab merge` checks the files).
    let shard = dir.path().join("shard-0");
    copy_dir(t.db.parent().unwrap(), &shard);
    std::fs::rename(shard.join(t.db.file_name().unwrap()), shard.join("lab.db")).unwrap();
    for suffix in ["-wal", "-shm"] {
        let from = shard.join(format!(
            "{}{suffix}",
            t.db.file_name().unwrap().to_str().unwrap()
        ));
        if from.exists() {
            std::fs::rename(&from, shard.join(format!("lab.db{suffix}"))).unwrap();
        }
    }
    let server = Server::start(&["ui", "--shards", dir.path().to_str().unwrap()]);
    let list = get_json(&server, "/api/experiments");
    assert_eq!(list[0]["name"], "quick");
    assert_eq!(list[0]["done"], json!(t.trials.len()));
    let (status, body) = call(
        ureq::post(&server.url(&format!("/api/trials/{}/tags", t.trials[0]))),
        Some(json!({"tag": "x"})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("lab merge"), "{body}");
}

#[test]
fn a_missing_store_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let out = crate::common::lab(&["ui", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no database at") && err.contains("none.db"),
        "{err}"
    );
    assert!(!db.exists(), "nothing created");
}
