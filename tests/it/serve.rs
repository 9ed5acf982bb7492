//! `lab serve` against a real server process on a loopback port, hit by a real
//! HTTP client: valid requests, malformed ones, oversize ones, missing tokens;
//! and `lab export` whose directory serves and predicts without the database;
//! a graceful stop on SIGTERM or Ctrl-C, and one access-log line per request.

use crate::common::{lab, ok, trained, Server, REVIEWS_CSV};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().build()
}

/// Status and JSON body, whatever the status.
fn post_json(url: &str, body: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = agent().post(url).set("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.send_string(body) {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().expect("a JSON error body")),
        Err(e) => panic!("{url}: {e}"),
    }
}

fn get(url: &str) -> (u16, String) {
    match agent().get(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

fn trial_server(extra: &[&str]) -> Server {
    let t = trained();
    let trial = t.trials[0].to_string();
    let mut args = vec!["serve", "--db", t.db.to_str().unwrap(), "--trial", &trial];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Labels and probabilities as `lab predict --format json` gives them.
fn cli_predictions(model_args: &[&str], texts: &[&str]) -> Vec<Value> {
    let mut args = vec!["predict"];
    args.extend_from_slice(model_args);
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(texts);
    let out: Value = serde_json::from_str(&ok(&lab(&args))).unwrap();
    out.as_array().unwrap().clone()
}

#[test]
fn predicts_a_batch_like_the_command_line() {
    let t = trained();
    let server = trial_server(&[]);
    let texts = ["a wonderful, touching film", "boring and predictable", ""];
    let (status, body) = post_json(
        &server.url("/v1/predict"),
        &json!({"texts": texts}).to_string(),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let preds = body["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    let trial = t.trials[0].to_string();
    let cli = cli_predictions(
        &["--db", t.db.to_str().unwrap(), "--trial", &trial],
        &texts[..2],
    );
    for (p, c) in preds.iter().zip(&cli) {
        assert_eq!(p["label"], c["label"]);
        let probs = p["probabilities"].as_object().unwrap();
        assert_eq!(probs.len(), 2);
        let sum: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        for (class, v) in probs {
            assert!(
                (v.as_f64().unwrap() - c["probabilities"][class].as_f64().unwrap()).abs() < 1e-5
            );
        }
        // The label is the most probable class.
        let best = probs
            .iter()
            .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
            .unwrap()
            .0;
        assert_eq!(p["label"], json!(best));
    }
    // The empty text gets a prediction too; an empty batch an empty answer.
    assert!(preds[2]["label"].is_string());
    let (status, body) = post_json(&server.url("/v1/predict"), r#"{"texts": []}"#, None);
    assert_eq!((status, body), (200, json!({"predictions": []})));
}

#[test]
fn describes_the_model_and_answers_health_checks() {
    let t = trained();
    let server = trial_server(&[]);
    let (status, body) = get(&server.url("/healthz"));
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );
    let (status, body) = get(&server.url("/v1/model"));
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["experiment"], "quick");
    assert_eq!(info["trial"], json!(t.trials[0]));
    assert_eq!(info["labels"], json!(["fresh", "rotten"]));
    assert_eq!(info["config"]["model"]["hidden"], json!(32));
    let acc = info["test_metrics"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.0 && acc <= 1.0);
    // The page is served and needs nothing from outside.
    let (status, page) = get(&server.url("/"));
    assert_eq!(status, 200);
    assert!(page.contains("id=\"predict\""));
    // Nothing is fetched from elsewhere (the SVG namespace is a name, not a fetch).
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "https://",
    ] {
        assert!(!page.contains(external), "the page loads {external}");
    }
    let (status, body) = get(&server.url("/nope"));
    assert_eq!(status, 404);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
}

#[test]
fn rejects_malformed_requests_with_a_json_error() {
    let server = trial_server(&[]);
    let url = server.url("/v1/predict");
    for body in [
        "{not json",
        r#"{"text": ["x"]}"#,
        r#"{"texts": "x"}"#,
        r#"{"texts": [1, 2]}"#,
        "",
    ] {
        let (status, err) = post_json(&url, body, None);
        assert_eq!(status, 400, "{body:?} gave {err}");
        let message = err["error"].as_str().unwrap();
        assert!(message.contains("texts"), "{message}");
    }
    // A CSV without the text column names the columns it has.
    let response = agent()
        .post(&server.url("/v1/predict/csv"))
        .set("Content-Type", "text/csv")
        .send_string("id,body\n1,hello\n");
    let Err(ureq::Error::Status(400, r)) = response else {
        panic!("expected 400")
    };
    let err: Value = r.into_json().unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("no column \"text\""),
        "{err}"
    );
}

#[test]
fn oversize_bodies_and_batches_get_413() {
    let server = trial_server(&["--max-body-bytes", "2000", "--max-batch", "4"]);
    let url = server.url("/v1/predict");
    let long = "x".repeat(3000);
    let (status, err) = post_json(&url, &json!({"texts": [long]}).to_string(), None);
    assert_eq!(status, 413, "{err}");
    assert!(err["error"].as_str().unwrap().contains("2000"));
    let (status, err) = post_json(&url, &json!({"texts": vec!["a"; 5]}).to_string(), None);
    assert_eq!(status, 413, "{err}");
    assert!(err["error"].as_str().unwrap().contains("at most 4"));
    let (status, _) = post_json(&url, &json!({"texts": vec!["a"; 4]}).to_string(), None);
    assert_eq!(status, 200);
    // The server is still up.
    assert_eq!(get(&server.url("/healthz")).0, 200);
}

#[test]
fn a_token_is_required_when_set() {
    let server = trial_server(&["--token", "s3cret"]);
    let url = server.url("/v1/predict");
    let body = r#"{"texts": ["fine"]}"#;
    let (status, err) = post_json(&url, body, None);
    assert_eq!(status, 401);
    assert!(err["error"].as_str().unwrap().contains("Bearer"));
    assert_eq!(post_json(&url, body, Some("wrong")).0, 401);
    // Same length, a prefix, an extension: all refused (the comparison is in
    // constant time, not a prefix match).
    for near in ["s3creT", "s3cre", "s3cret2", ""] {
        assert_eq!(post_json(&url, body, Some(near)).0, 401, "{near:?}");
    }
    assert_eq!(post_json(&url, body, Some("s3cret")).0, 200);
    assert_eq!(get(&server.url("/v1/model")).0, 401);
    // Health checks and the page stay open.
    assert_eq!(get(&server.url("/healthz")).0, 200);
    assert_eq!(get(&server.url("/")).0, 200);
}

fn annotated_rows(csv: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn annotates_csv_sent_raw_or_as_multipart() {
    let server = trial_server(&[]);
    // text/csv with the column named in the query.
    let raw = agent()
        .post(&server.url("/v1/predict/csv?column=review"))
        .set("Content-Type", "text/csv")
        .send_string(REVIEWS_CSV)
        .unwrap()
        .into_string()
        .unwrap();
    let mut reader = csv::Reader::from_reader(raw.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        ["id", "review", "predicted_label", "p_fresh", "p_rotten"]
    );
    let rows = annotated_rows(&raw);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][1], "A moving, beautifully acted film.");
    for row in &rows {
        assert!(["fresh", "rotten"].contains(&row[2].as_str()));
        let p: f64 = row[3].parse::<f64>().unwrap() + row[4].parse::<f64>().unwrap();
        assert!((p - 1.0).abs() < 1e-4);
    }

    // The same file as a browser form sends it.
    let boundary = "XlabBoundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.csv\"\r\nContent-Type: text/csv\r\n\r\n{REVIEWS_CSV}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"column\"\r\n\r\nreview\r\n--{boundary}--\r\n"
    );
    let form = agent()
        .post(&server.url("/v1/predict/csv"))
        .set(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .send_string(&body)
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(form, raw);
}

#[test]
fn export_serves_and_predicts_without_the_database() {
    let t = trained();
    let trial = t.trials[1].to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    ok(&lab(&[
        "export",
        &trial,
        "--db",
        t.db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    for file in [
        "model.safetensors",
        "vocab.json",
        "config.json",
        "model.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let texts = ["an instant classic", "a tedious mess"];
    let from_db = cli_predictions(&["--db", t.db.to_str().unwrap(), "--trial", &trial], &texts);
    // A copy elsewhere, with no database anywhere near it.
    let moved = dir.path().join("elsewhere");
    std::fs::rename(&out, &moved).unwrap();
    let missing_db = dir.path().join("no.db");
    let from_dir = cli_predictions(
        &[
            "--db",
            missing_db.to_str().unwrap(),
            "--model",
            moved.to_str().unwrap(),
        ],
        &texts,
    );
    assert_eq!(from_db, from_dir);

    let server = Server::start(&[
        "serve",
        "--db",
        missing_db.to_str().unwrap(),
        "--model",
        moved.to_str().unwrap(),
    ]);
    let (status, body) = post_json(
        &server.url("/v1/predict"),
        &json!({"texts": texts}).to_string(),
        None,
    );
    assert_eq!(status, 200);
    for (p, c) in body["predictions"].as_array().unwrap().iter().zip(&from_db) {
        assert_eq!(p["label"], c["label"]);
    }
    let (_, info) = get(&server.url("/v1/model"));
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["trial"], json!(t.trials[1]));
    assert_eq!(info["labels"], json!(["fresh", "rotten"]));
    assert!(
        !missing_db.exists(),
        "serving an export must not create a database"
    );
}

#[test]
fn serves_the_best_trial_and_refuses_bad_choices() {
    let t = trained();
    let db = t.db.to_str().unwrap();
    let server = Server::start(&[
        "serve", "--db", db, "--best", "quick", "--metric", "accuracy",
    ]);
    let (_, info) = get(&server.url("/v1/model"));
    let info: Value = serde_json::from_str(&info).unwrap();
    let conn = rusqlite::Connection::open(&t.db).unwrap();
    let best: f64 = conn
        .query_row(
            "SELECT max(value) FROM metrics WHERE split = 'test' AND name = 'accuracy'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The best configuration's best seed; its accuracy is the top one when the
    // best configuration also holds the best single trial, and never above it.
    let served = info["test_metrics"]["accuracy"].as_f64().unwrap();
    assert!(served <= best + 1e-12);
    let out = lab(&["serve", "--db", db, "--best", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no experiment `nope`"));
    let out = lab(&["serve", "--db", db, "--trial", "9999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trial 9999"));
    let out = lab(&["export", "9999", "--db", db, "--out", "/tmp/never"]);
    assert!(!out.status.success());
}

#[test]
fn export_inlines_a_stopword_list() {
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("words.txt");
    std::fs::write(&words, "# ours\nfilm\nmovie\n").unwrap();
    let db = dir.path().join("lab.db");
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.toml");
    let stop = format!("preprocess.stopwords={}", words.display());
    ok(&lab(&[
        "run",
        spec.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--set",
        &stop,
        "--set",
        "experiment.seeds=[1]",
        "--set",
        "sweep.model.cell=[\"gru\"]",
        "--set",
        "train.epochs=1",
    ]));
    let out = dir.path().join("export");
    ok(&lab(&[
        "export",
        "1",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let texts = ["a film", "a movie", "a film film movie of note"];
    let before = cli_predictions(&["--db", db.to_str().unwrap(), "--trial", "1"], &texts);
    std::fs::remove_file(&words).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("stopwords.txt")).unwrap(),
        "# ours\nfilm\nmovie\n"
    );
    let after = cli_predictions(&["--model", out.to_str().unwrap()], &texts);
    assert_eq!(before, after);
    // With only stop words, "a film" and "a movie" clean to the same tokens.
    assert_eq!(after[0]["probabilities"], after[1]["probabilities"]);
}

#[test]
fn concurrent_requests_batched_together_get_their_own_answers() {
    let server = trial_server(&["--workers", "2"]);
    let url = server.url("/v1/predict");
    let rows: Vec<String> = csv::Reader::from_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/rotten_tomatoes.csv"
    ))
    .unwrap()
    .records()
    .take(48)
    .map(|r| r.unwrap()[0].to_string())
    .collect();
    // Requests of 1 to 3 texts each, answered one by one first.
    let requests: Vec<Vec<String>> = rows
        .chunks(3)
        .flat_map(|c| [c[..1].to_vec(), c[1..].to_vec()])
        .collect();
    let alone: Vec<Value> = requests
        .iter()
        .map(|texts| post_json(&url, &json!({ "texts": texts }).to_string(), None).1)
        .collect();
    // Then all at once from many clients, several rounds, so the server coalesces them.
    std::thread::scope(|s| {
        for (texts, expected) in requests.iter().zip(&alone) {
            let url = &url;
            s.spawn(move || {
                for _ in 0..5 {
                    let (status, body) =
                        post_json(url, &json!({ "texts": texts }).to_string(), None);
                    assert_eq!(status, 200);
                    assert_eq!(body["predictions"].as_array().unwrap().len(), texts.len());
                    for (got, want) in body["predictions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .zip(expected["predictions"].as_array().unwrap())
                    {
                        assert_eq!(got["label"], want["label"]);
                        for (class, p) in want["probabilities"].as_object().unwrap() {
                            let q = got["probabilities"][class].as_f64().unwrap();
                            assert!(
                                (q - p.as_f64().unwrap()).abs() < 1e-4,
                                "{texts:?}: {q} vs {p}"
                            );
                        }
                    }
                }
            });
        }
    });
}

fn signal(server: &Server, signal: Signal) {
    kill(Pid::from_raw(server.pid() as i32), signal).unwrap();
}

/// The server's access-log lines for `method path`, once there is one (the line
/// is written as the response goes out, so it may trail the client a little).
fn access_lines(server: &Server, method: &str, path: &str) -> Vec<String> {
    let (method, path) = (format!("method={method}"), format!("path={path}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = server
            .log()
            .lines()
            .filter(|l| {
                let words: Vec<&str> = l.split([' ', '{', '}', ',']).collect();
                words.contains(&method.as_str()) && words.contains(&path.as_str())
            })
            .map(str::to_string)
            .collect();
        if !lines.is_empty() || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let mut server = trial_server(&[]);
    assert_eq!(get(&server.url("/healthz")).0, 200);
    // A request whose body is half sent when the signal comes: it is in flight.
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body =
        json!({"texts": ["a wonderful, touching film", "dull and far too long"]}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    write!(
        stream,
        "POST /v1/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&server, Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    // Still running for the request in flight, but no longer taking new ones.
    assert!(server.running(), "exited with a request in flight");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still accepting connections after SIGTERM"
    );
    stream.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json_body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let answer: Value = serde_json::from_str(json_body).unwrap();
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 2);
    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", server.log());
    // One access line per request, with its status and latency.
    let log = server.log();
    for (method, path) in [("GET", "/healthz"), ("POST", "/v1/predict")] {
        let lines = access_lines(&server, method, path);
        assert_eq!(lines.len(), 1, "{method} {path}:\n{log}");
        assert!(
            lines[0].contains("status=200") && lines[0].contains("latency_ms="),
            "{}",
            lines[0]
        );
    }
    assert!(log.contains("SIGTERM"), "{log}");
}

#[test]
fn ctrl_c_stops_an_idle_server_with_exit_0_and_logs_each_request() {
    let mut server = trial_server(&["--token", "s3cret"]);
    assert_eq!(get(&server.url("/v1/model")).0, 401);
    assert_eq!(get(&server.url("/nope")).0, 404);
    assert_eq!(get(&server.url("/healthz")).0, 200);
    for (path, status) in [("/v1/model", 401), ("/nope", 404), ("/healthz", 200)] {
        let lines = access_lines(&server, "GET", path);
        assert_eq!(lines.len(), 1, "{path}:\n{}", server.log());
        assert!(
            lines[0].contains(&format!("status={status}")),
            "{}",
            lines[0]
        );
    }
    signal(&server, Signal::SIGINT);
    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", server.log());
}
