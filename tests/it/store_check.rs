//! A reusable checker of a store's invariants, for the end of every crash and
//! soak test (issue 14): whatever was killed when, the store must still be a
//! consistent record. [`violations`] lists what is wrong (so a test can assert
//! that a specific fault is seen); [`assert_clean`] panics listing them.
//! [`leftovers`] (temporary files, checkpoints of done trials) is separate so a
//! test opts in. `store_check_self::` damages stores on purpose: each check fails.
#![allow(dead_code)]

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The kind of invariant a [`Violation`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// `PRAGMA integrity_check` is not `ok` (or the file cannot be read).
    Integrity,
    /// `PRAGMA foreign_key_check` lists rows.
    ForeignKey,
    /// An (experiment, config_hash) recorded more than once.
    DuplicateTrial,
    /// A done trial's epochs are not exactly 1..N (N its `train.epochs` metric),
    /// or an epoch row holds a non-finite number.
    Epochs,
    /// A done trial's valid/test metrics missing, or a metric not finite.
    Metrics,
    /// A done trial's confusion rows missing, malformed, or not summing to the
    /// split's size (or to its support metrics).
    Confusion,
    /// An artifact file missing or with another sha256 than recorded, or a done
    /// trial without weights.
    Artifacts,
    /// A trial left `running` by a worker of this host that is no longer alive.
    DeadWorker,
    /// A pending or failed trial with metrics, confusion rows or artifacts; a
    /// pruned trial with metrics, confusion rows or predictions, or without
    /// the reason it was pruned.
    StrayResults,
    /// A `.tmp` file, or a done trial's checkpoint directory, under the store's
    /// directory (only from [`leftovers`]).
    Leftover,
}

/// One broken invariant, with the trial (if any) and what was found.
#[derive(Clone, Debug)]
pub struct Violation {
    pub check: Check,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.check, self.message)
    }
}

/// Panics, listing every violation, unless the store at `db` is consistent
/// (every check but [`leftovers`]).
pub fn assert_clean(db: &Path) {
    let found = violations(db);
    assert!(found.is_empty(), "{}", describe(db, &found));
}

/// [`assert_clean`] plus [`leftovers`]: for tests once stray files are cleaned up.
pub fn assert_clean_with_files(db: &Path) {
    let mut found = violations(db);
    found.extend(leftovers(db));
    assert!(found.is_empty(), "{}", describe(db, &found));
}

/// Whether some violation of kind `check` is listed.
pub fn has(found: &[Violation], check: Check) -> bool {
    found.iter().any(|v| v.check == check)
}

fn describe(db: &Path, found: &[Violation]) -> String {
    let lines: Vec<String> = found.iter().map(|v| format!("  {v}")).collect();
    format!(
        "store {} has {} violation(s):\n{}",
        db.display(),
        found.len(),
        lines.join("\n")
    )
}

/// Everything wrong with the store at `db`, in the order checked; empty when clean.
/// Opens the file read-only; call it after every `lab` process has exited.
pub fn violations(db: &Path) -> Vec<Violation> {
    let mut out = Vec::new();
    let conn = match Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(conn) => conn,
        Err(e) => {
            push(&mut out, Check::Integrity, format!("cannot open: {e}"));
            return out;
        }
    };
    if let Err(e) = check_all(&conn, db, &mut out) {
        push(&mut out, Check::Integrity, format!("cannot read: {e}"));
    }
    out
}

fn push(out: &mut Vec<Violation>, check: Check, message: String) {
    out.push(Violation { check, message });
}

type Sql<T> = rusqlite::Result<T>;

fn check_all(conn: &Connection, db: &Path, out: &mut Vec<Violation>) -> Sql<()> {
    check_integrity(conn, out)?;
    check_duplicates(conn, out)?;
    let root = db.parent().unwrap_or(Path::new(".")).to_path_buf();
    for trial in trials(conn)? {
        match trial.status.as_str() {
            "done" => check_done(conn, &trial, out)?,
            "pending" | "failed" => {
                check_no_results(conn, &trial, &["metrics", "confusion", "artifacts"], out)?
            }
            "pruned" => check_pruned(conn, &trial, out)?,
            "running" => check_worker_alive(&trial, out),
            other => push(
                out,
                Check::Integrity,
                format!("{}: unknown status {other}", trial.name()),
            ),
        }
        check_artifact_files(conn, &trial, &root, out)?;
    }
    Ok(())
}

fn check_integrity(conn: &Connection, out: &mut Vec<Violation>) -> Sql<()> {
    let rows = strings(conn, "PRAGMA integrity_check", [])?;
    if rows != ["ok"] {
        push(out, Check::Integrity, rows.join("; "));
    }
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let broken = stmt.query_map([], |r| {
        Ok(format!(
            "{} rowid {:?} refers to a missing {} row",
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    for row in broken {
        push(out, Check::ForeignKey, row?);
    }
    Ok(())
}

fn check_duplicates(conn: &Connection, out: &mut Vec<Violation>) -> Sql<()> {
    let mut stmt = conn.prepare(
        "SELECT experiment_id, config_hash, group_concat(id) FROM trials \
         GROUP BY experiment_id, config_hash HAVING count(*) > 1",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "experiment {} config {} recorded as trials {}",
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    for row in rows {
        push(out, Check::DuplicateTrial, row?);
    }
    Ok(())
}

/// The columns of a trial the checks need.
struct Trial {
    id: i64,
    experiment: String,
    status: String,
    worker: Option<String>,
    data_report: Option<String>,
}

impl Trial {
    fn name(&self) -> String {
        format!("{} trial {}", self.experiment, self.id)
    }
}

fn trials(conn: &Connection) -> Sql<Vec<Trial>> {
    let mut stmt = conn.prepare(
        "SELECT t.id, e.name, t.status, t.worker, t.data_report FROM trials t \
         LEFT JOIN experiments e ON e.id = t.experiment_id ORDER BY t.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Trial {
            id: r.get(0)?,
            experiment: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            status: r.get(2)?,
            worker: r.get(3)?,
            data_report: r.get(4)?,
        })
    })?;
    rows.collect()
}

fn strings<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> Sql<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The trial's metrics by (split, name).
fn metrics(conn: &Connection, trial: i64) -> Sql<BTreeMap<(String, String), f64>> {
    let mut stmt = conn.prepare("SELECT split, name, value FROM metrics WHERE trial_id = ?1")?;
    let rows = stmt.query_map([trial], |r| {
        Ok(((r.get(0)?, r.get(1)?), r.get::<_, Option<f64>>(2)?))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (key, value) = row?;
        out.insert(key, value.unwrap_or(f64::NAN));
    }
    Ok(out)
}

/// The metrics every done trial records for each scored split.
const REQUIRED: &[&str] = &["accuracy", "loss", "macro_f1"];

fn check_done(conn: &Connection, trial: &Trial, out: &mut Vec<Violation>) -> Sql<()> {
    let metrics = metrics(conn, trial.id)?;
    for ((split, name), value) in &metrics {
        if !value.is_finite() {
            let msg = format!("{}: metric {split}.{name} = {value}", trial.name());
            push(out, Check::Metrics, msg);
        }
    }
    for split in ["valid", "test"] {
        for name in REQUIRED {
            if !metrics.contains_key(&(split.to_string(), name.to_string())) {
                let msg = format!("{}: no {split}.{name} metric", trial.name());
                push(out, Check::Metrics, msg);
            }
        }
    }
    check_epochs(conn, trial, &metrics, out)?;
    check_confusion(conn, trial, &metrics, out)?;
    let kinds = strings(
        conn,
        "SELECT kind FROM artifacts WHERE trial_id = ?1",
        [trial.id],
    )?;
    if !kinds.iter().any(|k| k == "weights") {
        let msg = format!("{}: done without a weights artifact", trial.name());
        push(out, Check::Artifacts, msg);
    }
    Ok(())
}

fn check_epochs(
    conn: &Connection,
    trial: &Trial,
    metrics: &BTreeMap<(String, String), f64>,
    out: &mut Vec<Violation>,
) -> Sql<()> {
    let mut stmt = conn.prepare(
        "SELECT epoch, train_loss, valid_loss, valid_accuracy, valid_macro_f1, lr \
         FROM epochs WHERE trial_id = ?1 ORDER BY epoch",
    )?;
    let rows = stmt.query_map([trial.id], |r| {
        let values: Vec<Option<f64>> = (1..=5).map(|i| r.get(i)).collect::<Sql<_>>()?;
        Ok((r.get::<_, i64>(0)?, values))
    })?;
    let mut epochs = Vec::new();
    for row in rows {
        let (epoch, values) = row?;
        if values.iter().any(|v| !v.is_some_and(f64::is_finite)) {
            let msg = format!("{}: epoch {epoch} has {values:?}", trial.name());
            push(out, Check::Epochs, msg);
        }
        epochs.push(epoch);
    }
    let key = ("train".to_string(), "epochs".to_string());
    let Some(&n) = metrics.get(&key) else {
        let msg = format!("{}: no train.epochs metric", trial.name());
        push(out, Check::Epochs, msg);
        return Ok(());
    };
    let expected: Vec<i64> = (1..=n as i64).collect();
    if n.fract() != 0.0 || n < 1.0 || epochs != expected {
        let msg = format!(
            "{}: epochs {epochs:?}, expected 1..={n} (train.epochs)",
            trial.name()
        );
        push(out, Check::Epochs, msg);
    }
    Ok(())
}

/// Rows per class of `split` in the trial's data report (None without one).
fn split_size(report: Option<&str>, split: &str) -> Option<u64> {
    let report: serde_json::Value = serde_json::from_str(report?).ok()?;
    let classes = report.get("classes")?.as_array()?;
    classes
        .iter()
        .map(|c| c.get("rows")?.get(split)?.as_u64())
        .sum()
}

fn check_confusion(
    conn: &Connection,
    trial: &Trial,
    metrics: &BTreeMap<(String, String), f64>,
    out: &mut Vec<Violation>,
) -> Sql<()> {
    let mut labels_seen: Option<String> = None;
    for split in ["valid", "test"] {
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT matrix_json, labels_json FROM confusion WHERE trial_id = ?1 AND split = ?2",
                rusqlite::params![trial.id, split],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let name = format!("{} {split}", trial.name());
        let Some((matrix, labels_json)) = row else {
            push(out, Check::Confusion, format!("{name}: no confusion row"));
            continue;
        };
        if let Some(seen) = &labels_seen {
            if *seen != labels_json {
                let msg = format!("{name}: labels {labels_json} differ from valid's {seen}");
                push(out, Check::Confusion, msg);
            }
        }
        labels_seen = Some(labels_json.clone());
        let parsed = serde_json::from_str::<Vec<Vec<u64>>>(&matrix)
            .ok()
            .zip(serde_json::from_str::<Vec<String>>(&labels_json).ok());
        let Some((matrix, labels)) = parsed else {
            let msg = format!("{name}: malformed matrix {matrix} or labels {labels_json}");
            push(out, Check::Confusion, msg);
            continue;
        };
        for problem in confusion_problems(&matrix, &labels, split, metrics, trial) {
            push(out, Check::Confusion, format!("{name}: {problem}"));
        }
    }
    Ok(())
}

/// What is wrong with one split's matrix: its shape, its total against the
/// data report's split size, its rows against the support metrics, its
/// diagonal against the accuracy metric.
fn confusion_problems(
    matrix: &[Vec<u64>],
    labels: &[String],
    split: &str,
    metrics: &BTreeMap<(String, String), f64>,
    trial: &Trial,
) -> Vec<String> {
    let mut problems = Vec::new();
    if matrix.len() != labels.len() || matrix.iter().any(|r| r.len() != labels.len()) {
        problems.push(format!("not {n}x{n} for {n} labels", n = labels.len()));
        return problems;
    }
    let total: u64 = matrix.iter().flatten().sum();
    if let Some(size) = split_size(trial.data_report.as_deref(), split) {
        if total != size {
            problems.push(format!("counts sum to {total}, the split has {size} rows"));
        }
    }
    for (label, row) in labels.iter().zip(matrix) {
        let key = (split.to_string(), format!("support.{label}"));
        let sum: u64 = row.iter().sum();
        if let Some(&support) = metrics.get(&key) {
            if support != sum as f64 {
                problems.push(format!("row {label} sums to {sum}, support {support}"));
            }
        }
    }
    let key = (split.to_string(), "accuracy".to_string());
    if let (Some(&accuracy), true) = (metrics.get(&key), total > 0) {
        let diagonal: u64 = (0..matrix.len()).map(|i| matrix[i][i]).sum();
        if (diagonal as f64 / total as f64 - accuracy).abs() > 1e-9 {
            problems.push(format!(
                "diagonal {diagonal}/{total} but accuracy {accuracy}"
            ));
        }
    }
    problems
}

fn check_no_results(
    conn: &Connection,
    trial: &Trial,
    tables: &[&str],
    out: &mut Vec<Violation>,
) -> Sql<()> {
    for table in tables {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE trial_id = ?1"),
            [trial.id],
            |r| r.get(0),
        )?;
        if n > 0 {
            let msg = format!("{} is {} with {n} {table} rows", trial.name(), trial.status);
            push(out, Check::StrayResults, msg);
        }
    }
    Ok(())
}

/// A pruned trial keeps its epochs and artifacts, has no result rows, and
/// says why it was pruned.
fn check_pruned(conn: &Connection, trial: &Trial, out: &mut Vec<Violation>) -> Sql<()> {
    check_no_results(conn, trial, &["metrics", "confusion", "predictions"], out)?;
    let reason: Option<String> = conn.query_row(
        "SELECT pruned_reason FROM trials WHERE id = ?1",
        [trial.id],
        |r| r.get(0),
    )?;
    if reason.is_none_or(|r| r.is_empty()) {
        let msg = format!("{} is pruned without a pruned_reason", trial.name());
        push(out, Check::StrayResults, msg);
    }
    Ok(())
}

/// `kill(pid, 0)`: whether a process with this id exists (ours to signal or not).
pub fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn check_worker_alive(trial: &Trial, out: &mut Vec<Violation>) {
    let worker = trial.worker.as_deref().unwrap_or("");
    let Some((host, pid)) = worker.rsplit_once(':') else {
        return;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return;
    };
    if host == lab::runner::this_host() && pid > 0 && !pid_alive(pid) {
        let msg = format!(
            "{} is running, but its worker {worker} is dead",
            trial.name()
        );
        push(out, Check::DeadWorker, msg);
    }
}

/// Artifact paths resolve as lab resolves them: relative to the store's directory.
fn check_artifact_files(
    conn: &Connection,
    trial: &Trial,
    root: &Path,
    out: &mut Vec<Violation>,
) -> Sql<()> {
    let mut stmt = conn.prepare("SELECT kind, path, sha256 FROM artifacts WHERE trial_id = ?1")?;
    let rows = stmt.query_map([trial.id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (kind, path, sha) = row?;
        let file = root.join(&path);
        let problem = match lab::files::sha256_file(&file) {
            Err(e) => format!("cannot read {}: {e:#}", file.display()),
            Ok(actual) if actual != sha => {
                format!("{} has sha256 {actual}, recorded {sha}", file.display())
            }
            Ok(_) => continue,
        };
        push(
            out,
            Check::Artifacts,
            format!("{} {kind}: {problem}", trial.name()),
        );
    }
    Ok(())
}

/// Files no finished run should leave under the store's directory: `*.tmp`
/// anywhere, and the checkpoint directory of a done trial (next to its weights,
/// or at `<experiment>/<trial id>/checkpoint`).
pub fn leftovers(db: &Path) -> Vec<Violation> {
    let root = db.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut out = Vec::new();
    for file in walk(&root) {
        if file.extension().is_some_and(|e| e == "tmp") {
            let msg = format!("temporary file left behind: {}", file.display());
            push(&mut out, Check::Leftover, msg);
        }
    }
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return out;
    };
    let dirs = done_trial_dirs(&conn, &root).unwrap_or_default();
    for (trial, dirs) in dirs {
        for dir in dirs {
            let checkpoint = dir.join("checkpoint");
            if checkpoint.exists() {
                let msg = format!(
                    "{trial} is done, its checkpoint {} remains",
                    checkpoint.display()
                );
                push(&mut out, Check::Leftover, msg);
            }
        }
    }
    out
}

/// Each done trial's possible directories: where its weights are and
/// `<experiment>/<trial id>`.
fn done_trial_dirs(conn: &Connection, root: &Path) -> Sql<HashMap<String, Vec<PathBuf>>> {
    let mut stmt = conn.prepare(
        "SELECT t.id, e.name, a.path FROM trials t JOIN experiments e ON e.id = t.experiment_id \
         LEFT JOIN artifacts a ON a.trial_id = t.id AND a.kind = 'weights' \
         WHERE t.status = 'done'",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, experiment, weights) = row?;
        let mut dirs = vec![root.join(&experiment).join(id.to_string())];
        if let Some(dir) = weights.and_then(|w| root.join(w).parent().map(Path::to_path_buf)) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        out.insert(format!("{experiment} trial {id}"), dirs);
    }
    Ok(out)
}

/// Every file under `dir`, recursively (symbolic links not followed).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(entry.path()),
                Ok(_) => files.push(entry.path()),
                Err(_) => {}
            }
        }
    }
    files
}
