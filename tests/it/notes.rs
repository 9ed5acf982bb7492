//! Tags and notes (issue 17): stored on a real SQLite file, migrated into a
//! version-7 store without touching its rows, refused when malformed, gone
//! with their trial, carried by `lab merge` (two different notes both kept),
//! shown by `lab show` in every format and filtered on by `lab compare --tag`.

use lab::report::{leaderboard, render_all, Format, LeaderboardOptions};
use lab::store::{
    valid_tag, MetricRow, NewTrial, Store, Target, TrialResult, MAX_NOTE_BYTES, MIGRATIONS,
};
use rusqlite::Connection;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn lab(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("lab runs")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lab failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn result(f1: f64) -> TrialResult {
    let m = |name: &str, value: f64| MetricRow {
        split: "test".into(),
        name: name.into(),
        value,
    };
    TrialResult {
        metrics: vec![m("macro_f1", f1), m("accuracy", f1 + 0.05)],
        ..Default::default()
    }
}

/// Experiment `name` with one done trial per (cell, test macro F1) and a
/// pending one; returns (experiment id, done trial ids).
fn experiment(store: &Store, name: &str, cells: &[(&str, f64)]) -> (i64, Vec<i64>) {
    let exp = store.upsert_experiment(name, "", "h").unwrap();
    let mut ids = Vec::new();
    for (cell, f1) in cells {
        let config =
            serde_json::json!({"experiment": name, "seed": 1, "model": {"cell": cell}}).to_string();
        let trial = NewTrial {
            config_json: config.clone(),
            config_hash: format!("{name}-{cell}"),
            seed: 1,
            search_number: None,
        };
        let id = store.add_trials(exp, &[trial]).unwrap()[0];
        store.claim_trial_id(id, "w", "cpu").unwrap().unwrap();
        store.finish_trial(id, &result(*f1)).unwrap();
        ids.push(id);
    }
    let pending = NewTrial {
        config_json: serde_json::json!({"experiment": name, "seed": 2}).to_string(),
        config_hash: format!("{name}-pending"),
        seed: 2,
        search_number: None,
    };
    store.add_trials(exp, &[pending]).unwrap();
    (exp, ids)
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

// ---------------------------------------------------------------- the store

#[test]
fn tags_and_notes_round_trip_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    let (exp, trials) = {
        let store = Store::open(&path).unwrap();
        let (exp, ids) = experiment(&store, "e", &[("lstm", 0.6), ("gru", 0.7)]);
        let t = Target::Trial(ids[0]);
        assert!(store.add_tag(t, " paper ").unwrap());
        assert!(store.add_tag(t, "baseline").unwrap());
        assert!(!store.add_tag(t, "paper").unwrap(), "already there");
        assert!(store.add_tag(Target::Trial(ids[1]), "paper").unwrap());
        assert!(store.add_tag(Target::Experiment(exp), "paper").unwrap());
        store.set_note(t, "lr too high?\nsee run 3").unwrap();
        store
            .set_note(Target::Experiment(exp), "first try")
            .unwrap();
        store
            .set_note(Target::Experiment(exp), "second try")
            .unwrap();
        (exp, ids)
    };
    let store = Store::open(&path).unwrap();
    let t = Target::Trial(trials[0]);
    assert_eq!(store.tags(t).unwrap(), ["baseline", "paper"]);
    assert_eq!(store.tags(Target::Experiment(exp)).unwrap(), ["paper"]);
    assert_eq!(
        store.note(t).unwrap().as_deref(),
        Some("lr too high?\nsee run 3")
    );
    assert_eq!(
        store.note(Target::Experiment(exp)).unwrap().as_deref(),
        Some("second try")
    );
    // A trial's tags are not its experiment's, nor the other way round.
    assert!(store.note(Target::Trial(trials[1])).unwrap().is_none());
    let by_trial = store.trial_tags(exp).unwrap();
    assert_eq!(by_trial.len(), 2);
    assert_eq!(by_trial[&trials[0]], ["baseline", "paper"]);
    assert_eq!(by_trial[&trials[1]], ["paper"]);

    assert!(store.remove_tag(t, "paper").unwrap());
    assert!(!store.remove_tag(t, "paper").unwrap());
    assert_eq!(store.tags(t).unwrap(), ["baseline"]);
    store.set_note(t, " \n\t").unwrap();
    assert!(
        store.note(t).unwrap().is_none(),
        "blank text deletes the note"
    );
    store.set_note(t, "").unwrap();

    let conn = Connection::open(&path).unwrap();
    assert_eq!(count(&conn, "tags"), 3);
    assert_eq!(count(&conn, "notes"), 1);
}

#[test]
fn bad_tags_notes_and_targets_are_refused_with_what_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db")).unwrap();
    let (exp, ids) = experiment(&store, "e", &[("lstm", 0.6)]);
    let t = Target::Trial(ids[0]);
    for (tag, said) in [
        ("", "is empty"),
        ("   ", "is empty"),
        ("a,b", "holds a comma"),
        ("new\nline", "control character"),
        (&"x".repeat(65), "has 65 characters"),
    ] {
        let err = format!("{:#}", store.add_tag(t, tag).unwrap_err());
        assert!(err.contains(said), "{tag:?}: {err}");
        assert!(err.contains(&format!("{tag:?}")), "names the tag: {err}");
        assert!(
            err.contains("expected 1 to 64 characters without commas or control characters"),
            "{err}"
        );
    }
    assert_eq!(valid_tag(&"é".repeat(64)).unwrap(), "é".repeat(64));
    assert!(store.tags(t).unwrap().is_empty());

    let err = format!("{:#}", store.add_tag(Target::Trial(999), "x").unwrap_err());
    assert!(err.contains("no trial 999 in"), "{err}");
    let err = format!(
        "{:#}",
        store
            .set_note(Target::Experiment(exp + 7), "x")
            .unwrap_err()
    );
    assert!(
        err.contains(&format!("no experiment {} in", exp + 7)),
        "{err}"
    );

    let long = "n".repeat(MAX_NOTE_BYTES + 1);
    let err = format!("{:#}", store.set_note(t, &long).unwrap_err());
    assert!(
        err.contains("65537 bytes") && err.contains("64 KiB"),
        "{err}"
    );
    store.set_note(t, &long[1..]).unwrap();
    assert_eq!(store.note(t).unwrap().unwrap().len(), MAX_NOTE_BYTES);
}

#[test]
fn the_schema_holds_one_target_per_row_and_deletes_cascade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.db");
    let store = Store::open(&path).unwrap();
    let (exp, ids) = experiment(&store, "e", &[("lstm", 0.6), ("gru", 0.7)]);
    for id in &ids {
        store.add_tag(Target::Trial(*id), "keep").unwrap();
        store.set_note(Target::Trial(*id), "a note").unwrap();
    }
    store.add_tag(Target::Experiment(exp), "keep").unwrap();
    store.set_note(Target::Experiment(exp), "a note").unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    for sql in [
        "INSERT INTO tags (tag, created_at) VALUES ('x', 't')",
        "INSERT INTO tags (experiment_id, trial_id, tag, created_at) VALUES (1, 1, 'x', 't')",
        "INSERT INTO notes (text, updated_at) VALUES ('x', 't')",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("CHECK"), "{sql}: {err}");
    }
    let err = conn
        .execute(
            "INSERT INTO notes (trial_id, text, updated_at) VALUES (?1, 'twice', 't')",
            [ids[0]],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("UNIQUE"), "{err}");

    conn.execute("DELETE FROM trials WHERE id = ?1", [ids[0]])
        .unwrap();
    assert_eq!(count(&conn, "tags"), 2, "the trial's tag went with it");
    assert_eq!(count(&conn, "notes"), 2);
    assert!(store.tags(Target::Trial(ids[0])).unwrap().is_empty());
    conn.execute("DELETE FROM experiments WHERE id = ?1", [exp])
        .unwrap();
    assert_eq!(count(&conn, "tags"), 0);
    assert_eq!(count(&conn, "notes"), 0);
}

/// A database as lab with schema version 7 left it: an experiment, a done
/// and a pruned trial with epochs, metrics and a queue row.
fn v7_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    for step in &MIGRATIONS[..7] {
        conn.execute_batch(step).unwrap();
    }
    conn.pragma_update(None, "user_version", 7).unwrap();
    conn.execute_batch(
        "INSERT INTO experiments VALUES (1, 'old', 'spec', 'hash', '2025-01-01T00:00:00Z');
         INSERT INTO trials (id, experiment_id, config_json, config_hash, seed, status,
                             search_number, pruned_reason) VALUES
           (1, 1, '{\"experiment\":\"old\",\"seed\":1}', 'h1', 1, 'done', NULL, NULL),
           (2, 1, '{\"experiment\":\"old\",\"seed\":2}', 'h2', 2, 'pruned', 4, 'slow');
         INSERT INTO epochs VALUES (1, 1, 0.7, 0.69, 0.5, 0.4, 0.005, 1.5, 900.0),
                                   (2, 1, 0.9, 0.9, 0.3, 0.2, 0.005, 1.0, 800.0);
         INSERT INTO metrics VALUES (1, 'test', 'macro_f1', 0.61);
         INSERT INTO queue VALUES (2, 0, 1, 'seed=2', '/data', 't0', NULL);",
    )
    .unwrap();
}

fn dump(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "experiments",
        "trials",
        "epochs",
        "metrics",
        "queue",
        "store_meta",
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let values: Vec<rusqlite::types::Value> =
                    (0..n).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                Ok(format!("{table}: {values:?}"))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

#[test]
fn a_v7_store_migrates_keeping_its_rows_and_a_v7_shard_reads_as_untagged() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("shard/lab.db");
    std::fs::create_dir_all(shard.parent().unwrap()).unwrap();
    v7_database(&shard);
    // Read-only, as `lab merge` reads shards: no tables, no tags, no migration.
    let read = Store::open_read_only(&shard).unwrap();
    assert!(read.tags(Target::Trial(1)).unwrap().is_empty());
    assert!(read.note(Target::Experiment(1)).unwrap().is_none());
    assert!(read.trial_tags(1).unwrap().is_empty());
    let target = Store::open(&dir.path().join("main/lab.db")).unwrap();
    let summary = target.merge_from(&read).unwrap();
    assert_eq!((summary.added, summary.tags_added), (2, 0), "{summary:?}");
    drop(read);

    let path = dir.path().join("old.db");
    v7_database(&path);
    let before = dump(&Connection::open(&path).unwrap());
    let store = Store::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 8);
    assert_eq!(dump(&conn), before, "a row changed");
    assert_eq!((count(&conn, "tags"), count(&conn, "notes")), (0, 0));
    // The old rows take tags and notes.
    assert!(store.add_tag(Target::Trial(2), "slow").unwrap());
    store.set_note(Target::Experiment(1), "from 2025").unwrap();
    assert_eq!(store.trial_tags(1).unwrap()[&2], ["slow"]);
    let broken: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(broken, 0);
}

// ---------------------------------------------------------------- merge

#[test]
fn merge_unites_tags_and_keeps_both_of_two_notes() {
    let dir = tempfile::tempdir().unwrap();
    let shard_path = dir.path().join("shard/lab.db");
    let main_path = dir.path().join("main/lab.db");
    let cells = [("lstm", 0.6), ("gru", 0.7)];
    {
        let shard = Store::open(&shard_path).unwrap();
        let (exp, ids) = experiment(&shard, "e", &cells);
        shard.add_tag(Target::Experiment(exp), "sweep-1").unwrap();
        shard.add_tag(Target::Trial(ids[0]), "paper").unwrap();
        shard.add_tag(Target::Trial(ids[0]), "shard-only").unwrap();
        shard.add_tag(Target::Trial(ids[1]), "paper").unwrap();
        shard
            .set_note(Target::Trial(ids[0]), "from the cluster")
            .unwrap();
        shard.set_note(Target::Trial(ids[1]), "same text").unwrap();
        shard.set_note(Target::Experiment(exp), "new here").unwrap();
        // A crafted shard: a tag lab would never write.
        Connection::open(&shard_path)
            .unwrap()
            .execute(
                "INSERT INTO tags (trial_id, tag, created_at) VALUES (?1, 'a,b', 't')",
                [ids[1]],
            )
            .unwrap();
    }
    let main = Store::open(&main_path).unwrap();
    let (exp, ids) = experiment(&main, "e", &cells);
    main.add_tag(Target::Trial(ids[0]), "paper").unwrap();
    main.set_note(Target::Trial(ids[0]), "from my laptop")
        .unwrap();
    main.set_note(Target::Trial(ids[1]), "same text").unwrap();

    let shard = Store::open_read_only(&shard_path).unwrap();
    let summary = main.merge_from(&shard).unwrap();
    assert_eq!(summary.unchanged, 2, "{summary:?}");
    // sweep-1, shard-only, paper on the second trial.
    assert_eq!(summary.tags_added, 3, "{summary:?}");
    assert_eq!((summary.notes_copied, summary.notes_joined), (1, 1));
    assert_eq!(summary.refused.len(), 1, "{summary:?}");
    assert!(
        summary.refused[0].contains("\"a,b\" holds a comma"),
        "{summary:?}"
    );
    let said = summary.notes.join("\n");
    assert!(
        said.contains(&format!("trial {} of `e`", ids[0])) && said.contains("both are kept"),
        "{said}"
    );

    assert_eq!(
        main.tags(Target::Trial(ids[0])).unwrap(),
        ["paper", "shard-only"]
    );
    assert_eq!(main.tags(Target::Trial(ids[1])).unwrap(), ["paper"]);
    assert_eq!(main.tags(Target::Experiment(exp)).unwrap(), ["sweep-1"]);
    let joined = main.note(Target::Trial(ids[0])).unwrap().unwrap();
    assert!(
        joined.starts_with("from my laptop\n\n--- merged from "),
        "{joined}"
    );
    assert!(joined.ends_with("---\nfrom the cluster"), "{joined}");
    assert!(
        joined.contains(&shard_path.display().to_string()),
        "{joined}"
    );
    assert_eq!(
        main.note(Target::Trial(ids[1])).unwrap().as_deref(),
        Some("same text")
    );
    assert_eq!(
        main.note(Target::Experiment(exp)).unwrap().as_deref(),
        Some("new here")
    );

    // Twice: nothing more, the joined note is not joined again.
    let again = main.merge_from(&shard).unwrap();
    assert_eq!(
        (again.tags_added, again.notes_copied, again.notes_joined),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(main.note(Target::Trial(ids[0])).unwrap().unwrap(), joined);

    // Through the command: the summary line says what was carried.
    let fresh = dir.path().join("fresh/lab.db");
    let out = lab(&fresh, &["merge", shard_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "the crafted tag is refused");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("; 4 tags added, 3 notes copied\n"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds a comma"), "{stderr}");
}

// ---------------------------------------------------------------- show

#[test]
fn show_prints_tags_and_the_note_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let store = Store::open(&db).unwrap();
    let (exp, ids) = experiment(&store, "e", &[("lstm", 0.6), ("gru", 0.7)]);
    let id = ids[0];
    store.add_tag(Target::Trial(id), "paper").unwrap();
    store.add_tag(Target::Trial(id), "baseline").unwrap();
    store.add_tag(Target::Experiment(exp), "sweep-1").unwrap();
    let note = "lr looks high\n```\ncode, with \"quotes\"\n```";
    store.set_note(Target::Trial(id), note).unwrap();
    let show = |format: &str| ok(&lab(&db, &["show", &id.to_string(), "--format", format]));

    let json: Value = serde_json::from_str(&show("json")).unwrap();
    assert_eq!(json["tags"], serde_json::json!(["baseline", "paper"]));
    assert_eq!(json["experiment_tags"], serde_json::json!(["sweep-1"]));
    assert_eq!(json["note"], note);
    assert_eq!(json["status"], "done", "the old keys stay");

    let table = show("table");
    assert!(table.contains("baseline, paper"), "{table}");
    assert!(table.contains("experiment tags"), "{table}");
    assert!(table.contains("sweep-1"), "{table}");
    assert!(table.contains(&format!("note\n{note}")), "{table}");
    assert!(
        table.find("config").unwrap() < table.find("note\n").unwrap(),
        "{table}"
    );

    let md = show("markdown");
    assert!(
        md.contains(&format!("## note\n\n````text\n{note}\n````")),
        "a fence longer than the note's: {md}"
    );

    let csv = show("csv");
    let block = csv.split("# note\n").nth(1).expect("a note block");
    let mut reader = csv::Reader::from_reader(block.as_bytes());
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(&first[0], note);

    // A trial with neither: JSON says so, the table has no such lines.
    let other = ok(&lab(
        &db,
        &["show", &ids[1].to_string(), "--format", "json"],
    ));
    let json: Value = serde_json::from_str(&other).unwrap();
    assert_eq!(json["tags"], serde_json::json!([]));
    assert_eq!(json["note"], Value::Null);
    let table = ok(&lab(&db, &["show", &ids[1].to_string()]));
    assert!(
        !table.contains("\nnote\n") && !table.contains("│ tags"),
        "{table}"
    );
}

// ---------------------------------------------------------------- compare

fn tagged(tags: &[&str]) -> LeaderboardOptions {
    LeaderboardOptions {
        tag: tags.first().map(|t| t.to_string()),
        more_tags: tags.iter().skip(1).map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn compare_ranks_only_tagged_trials() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let store = Store::open(&db).unwrap();
    let cells = [("lstm", 0.6), ("gru", 0.7), ("rnn", 0.8)];
    let (_, ids) = experiment(&store, "a", &cells);
    let (b, _) = experiment(&store, "b", &cells);
    experiment(&store, "c", &cells);
    store.add_tag(Target::Trial(ids[0]), "paper").unwrap();
    store.add_tag(Target::Trial(ids[1]), "paper").unwrap();
    store.add_tag(Target::Trial(ids[1]), "final").unwrap();
    store.add_tag(Target::Experiment(b), "paper").unwrap();

    let exp_a = store.experiment_by_name("a").unwrap().unwrap();
    let board = leaderboard(&store, &exp_a, &tagged(&["paper"])).unwrap();
    let best: Vec<i64> = board.rows.iter().map(|r| r.best_trial).collect();
    assert_eq!(best, [ids[1], ids[0]]);
    assert_eq!(board.counts.done, 2, "counts are of the tagged trials");
    assert_eq!(board.counts.pending, 0);
    assert_eq!(board.tags, ["paper"]);
    // Repeated: all of them.
    let board = leaderboard(&store, &exp_a, &tagged(&["paper", "final"])).unwrap();
    assert_eq!(board.rows.len(), 1);
    assert_eq!(board.rows[0].best_trial, ids[1]);
    // An experiment's tag is its trials'.
    let exp_b = store.experiment_by_name("b").unwrap().unwrap();
    let board = leaderboard(&store, &exp_b, &tagged(&["paper"])).unwrap();
    assert_eq!((board.rows.len(), board.counts.pending), (3, 1));
    let err = leaderboard(&store, &exp_b, &tagged(&["paper", "final"]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "no trial of experiment `b` is tagged `paper` and `final`, nor is the experiment"
    );

    // No experiment named: the experiments with the tag or tagged trials.
    let json: Value =
        serde_json::from_str(&render_all(&store, &tagged(&["paper"]), Format::Json).unwrap())
            .unwrap();
    let names: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(json["a"].as_array().unwrap().len(), 2);
    let table = render_all(&store, &tagged(&["final"]), Format::Table).unwrap();
    assert!(table.contains("experiment a") && !table.contains("experiment b"));
    assert!(
        table.contains("only trials tagged `final` (on the trial or its experiment)"),
        "{table}"
    );

    // Through the command.
    let out = ok(&lab(
        &db,
        &["compare", "a", "--tag", "paper", "--format", "json"],
    ));
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["best_trial"], ids[1]);
    let out = ok(&lab(
        &db,
        &[
            "compare", "--tag", "paper", "--tag", "final", "--format", "csv",
        ],
    ));
    assert!(
        out.contains("# experiment: a") && !out.contains("# experiment: b"),
        "{out}"
    );
    let out = lab(&db, &["compare", "--tag", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no experiment or trial in") && stderr.contains("tagged `nowhere`"),
        "{stderr}"
    );
    let out = lab(&db, &["compare", "c", "--tag", "paper"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no trial of experiment `c` is tagged"),
        "{out:?}"
    );
    let out = lab(&db, &["compare", "--tag", "a,b"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed tag is a usage error"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds a comma"),
        "{out:?}"
    );
    // Untagged output is unchanged by the feature.
    let all: Value =
        serde_json::from_str(&ok(&lab(&db, &["compare", "--format", "json"]))).unwrap();
    assert_eq!(all.as_object().unwrap().len(), 3);
}
