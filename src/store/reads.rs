//! Reads for compare, show, status and reports: experiments, trials, their
//! epochs, metrics, confusion matrices and artifacts. Nothing here writes.

use super::rows::{
    ArtifactRow, ConfusionRow, ExperimentRow, MetricRow, TrialLease, TrialMetric, TrialRow,
    EXPERIMENT_COLUMNS, TRIAL_COLUMNS, TRIAL_COLUMNS_V6,
};
use super::{EpochRecord, Result, StatusCounts, Store};
use anyhow::Context;
use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

impl Store {
    /// The columns `TrialRow::from_row` reads, as this database has them: a
    /// shard opened read-only may predate schema version 7.
    fn trial_columns(&self) -> Result<&'static str> {
        Ok(if self.has_version(7)? {
            TRIAL_COLUMNS
        } else {
            TRIAL_COLUMNS_V6
        })
    }

    /// How many of the experiment's trials are in each status, and the
    /// pruned ones by the epoch they were stopped at.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn status_counts(&self, experiment_id: i64) -> Result<StatusCounts> {
        let mut stmt = self.conn.prepare(
            "SELECT status, COUNT(*) AS n FROM trials WHERE experiment_id = ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map([experiment_id], |r| {
            Ok((r.get::<_, String>("status")?, r.get::<_, i64>("n")?))
        })?;
        let mut counts = StatusCounts::default();
        for row in rows {
            let (status, n) = row?;
            // A garbled status is said, not allowed to hide the other counts.
            match status.parse() {
                Ok(status) => counts.add(status, n as usize),
                Err(e) => tracing::warn!(
                    "{}: {n} trial(s) of experiment {experiment_id} left out of the counts: {e}",
                    self.path.display()
                ),
            }
        }
        if counts.pruned > 0 {
            counts.pruned_at = self.pruned_epochs(experiment_id)?;
        }
        Ok(counts)
    }

    /// The experiment's pruned trials by their last recorded epoch (0 when they
    /// have none): epoch → trials.
    fn pruned_epochs(&self, experiment_id: i64) -> Result<BTreeMap<usize, usize>> {
        let mut stmt = self.conn.prepare(
            "SELECT COALESCE((SELECT MAX(e.epoch) FROM epochs e WHERE e.trial_id = t.id), 0)
                        AS epoch,
                    COUNT(*) AS n
             FROM trials t WHERE t.experiment_id = ?1 AND t.status = 'pruned'
             GROUP BY epoch",
        )?;
        let rows = stmt.query_map([experiment_id], |r| {
            Ok((r.get::<_, i64>("epoch")?, r.get::<_, i64>("n")?))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (epoch, n) = row?;
            out.insert(epoch.max(0) as usize, n as usize);
        }
        Ok(out)
    }

    /// Every experiment, oldest first.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiments(&self) -> Result<Vec<ExperimentRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY id"
        ))?;
        let rows = stmt.query_map([], ExperimentRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The experiment of this name, if any.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentRow>> {
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE name = ?1");
        Ok(self
            .conn
            .query_row(&sql, [name], ExperimentRow::from_row)
            .optional()?)
    }

    /// The experiment named `name`, for commands that were given one.
    ///
    /// # Errors
    /// No experiment has that name ("no experiment `NAME` in DB"), or the query fails.
    pub fn require_experiment(&self, name: &str) -> Result<ExperimentRow> {
        self.experiment_by_name(name)?
            .with_context(|| format!("no experiment `{name}` in {}", self.path().display()))
    }

    /// The experiment with this id, if any.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiment(&self, experiment_id: i64) -> Result<Option<ExperimentRow>> {
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE id = ?1");
        Ok(self
            .conn
            .query_row(&sql, [experiment_id], ExperimentRow::from_row)
            .optional()?)
    }

    /// The experiment's trials in id order.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn trials(&self, experiment_id: i64) -> Result<Vec<TrialRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM trials WHERE experiment_id = ?1 ORDER BY id",
            self.trial_columns()?
        ))?;
        let rows = stmt.query_map([experiment_id], TrialRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The experiment's trials in id order, for reports: a row that does not
    /// read as a trial (an unknown status, a value of the wrong type) is left
    /// out with a warning naming the store and the trial, instead of failing
    /// the whole experiment.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn readable_trials(&self, experiment_id: i64) -> Result<Vec<TrialRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM trials WHERE experiment_id = ?1 ORDER BY id",
            self.trial_columns()?
        ))?;
        let rows = stmt.query_map([experiment_id], |r| {
            Ok((r.get::<_, i64>("id"), TrialRow::from_row(r)))
        })?;
        let mut out = Vec::new();
        for row in rows {
            match row? {
                (_, Ok(trial)) => out.push(trial),
                (id, Err(e)) => tracing::warn!(
                    "{}: trial {} left out: its row does not read as a trial: {e}",
                    self.path.display(),
                    id.map_or_else(|_| "?".to_string(), |id| id.to_string())
                ),
            }
        }
        Ok(out)
    }

    /// The trial with this id, if any.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn trial(&self, trial_id: i64) -> Result<Option<TrialRow>> {
        let sql = format!("SELECT {} FROM trials WHERE id = ?1", self.trial_columns()?);
        Ok(self
            .conn
            .query_row(&sql, [trial_id], TrialRow::from_row)
            .optional()?)
    }

    /// Running trials of the experiment with their leases, in id order.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn running(&self, experiment_id: i64) -> Result<Vec<TrialLease>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, worker, heartbeat_at FROM trials
             WHERE experiment_id = ?1 AND status = 'running' ORDER BY id",
        )?;
        let rows = stmt.query_map([experiment_id], TrialLease::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The trial's epochs in order.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn epochs(&self, trial_id: i64) -> Result<Vec<EpochRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT epoch, train_loss, valid_loss, valid_accuracy, valid_macro_f1, lr, seconds,
                    samples_per_second
             FROM epochs WHERE trial_id = ?1 ORDER BY epoch",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(EpochRecord {
                epoch: r.get::<_, i64>("epoch")? as usize,
                train_loss: r.get("train_loss")?,
                valid_loss: r.get("valid_loss")?,
                valid_accuracy: r.get("valid_accuracy")?,
                valid_macro_f1: r.get("valid_macro_f1")?,
                lr: r.get("lr")?,
                seconds: r.get("seconds")?,
                samples_per_second: r.get("samples_per_second")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The trial's metrics, ordered by split and name. A value that is not a
    /// finite number (text, NULL where NaN was written) is left out with a
    /// warning naming the trial and the metric: one garbled row must not hide
    /// the others.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn metrics(&self, trial_id: i64) -> Result<Vec<MetricRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT split, name, value FROM metrics WHERE trial_id = ?1 ORDER BY split, name",
        )?;
        let mut rows = stmt.query([trial_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (split, name): (String, String) = (r.get("split")?, r.get("name")?);
            if let Some(value) = self.number(trial_id, &split, &name, r.get_ref("value")?) {
                out.push(MetricRow { split, name, value });
            }
        }
        Ok(out)
    }

    /// One split's metrics of every done trial of the experiment, in one query,
    /// ordered by trial id then name; a garbled value is left out with a
    /// warning, as in [`Store::metrics`].
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiment_metrics(&self, experiment_id: i64, split: &str) -> Result<Vec<TrialMetric>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.trial_id, m.name, m.value
             FROM metrics m JOIN trials t ON t.id = m.trial_id
             WHERE t.experiment_id = ?1 AND t.status = 'done' AND m.split = ?2
             ORDER BY m.trial_id, m.name",
        )?;
        let mut rows = stmt.query(params![experiment_id, split])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (trial_id, name): (i64, String) = (r.get("trial_id")?, r.get("name")?);
            if let Some(value) = self.number(trial_id, split, &name, r.get_ref("value")?) {
                out.push(TrialMetric {
                    trial_id,
                    name,
                    value,
                });
            }
        }
        Ok(out)
    }

    /// A stored metric as a finite number, or a warning and `None`.
    fn number(&self, trial_id: i64, split: &str, name: &str, value: ValueRef) -> Option<f64> {
        let found = match value {
            ValueRef::Real(v) if v.is_finite() => return Some(v),
            ValueRef::Integer(v) => return Some(v as f64),
            ValueRef::Real(v) => format!("{v}"),
            ValueRef::Null => "NULL (a NaN is stored so)".into(),
            ValueRef::Text(t) => format!("the text {:?}", String::from_utf8_lossy(t)),
            ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
        };
        tracing::warn!(
            "{}: trial {trial_id}: metric {split}.{name} (key `metrics.value`) is {found}, \
             not a finite number; left out",
            self.path.display()
        );
        None
    }

    /// The trial's confusion matrices, ordered by split.
    ///
    /// # Errors
    /// The database cannot be read, or holds a malformed matrix.
    pub fn confusion(&self, trial_id: i64) -> Result<Vec<ConfusionRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT split, matrix_json, labels_json FROM confusion WHERE trial_id = ?1 ORDER BY split",
        )?;
        let mut rows = stmt.query([trial_id])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let split: String = row.get("split")?;
            let matrix: String = row.get("matrix_json")?;
            let labels: String = row.get("labels_json")?;
            let context =
                || format!("trial {trial_id}: malformed {split} confusion matrix in the store");
            out.push(ConfusionRow {
                matrix: serde_json::from_str(&matrix).with_context(context)?,
                labels: serde_json::from_str(&labels).with_context(context)?,
                split,
            });
        }
        Ok(out)
    }

    /// The trial's artifacts, ordered by kind.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn artifacts(&self, trial_id: i64) -> Result<Vec<ArtifactRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, path, sha256 FROM artifacts WHERE trial_id = ?1 ORDER BY kind",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(ArtifactRow {
                kind: r.get("kind")?,
                path: r.get("path")?,
                sha256: r.get("sha256")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The file an artifact row of `trial_id` names, beside this database. A
    /// store may come from elsewhere (a shard, a copy), so the recorded path is
    /// checked before anything is opened (`resolve_inside`).
    ///
    /// # Errors
    /// The path is absolute, climbs out with `..`, or leads outside the store's
    /// directory through a symbolic link; the message names the store, the
    /// trial and the key.
    pub fn artifact_file(&self, trial_id: i64, artifact: &ArtifactRow) -> Result<PathBuf> {
        resolve_inside(&crate::files::parent_dir(&self.path), &artifact.path).map_err(|why| {
            anyhow::anyhow!(
                "{}: trial {trial_id}: key `artifacts.path` of its {} artifact: {why}",
                self.path.display(),
                artifact.kind
            )
        })
    }
}

/// `rel` (a path read from a store) resolved against `root`: it must be a
/// relative path of plain names that stays inside `root` after normalisation
/// and, where it exists, after following symbolic links.
///
/// # Errors
/// What is wrong with the path, quoting it.
pub fn resolve_inside(root: &Path, rel: &str) -> std::result::Result<PathBuf, String> {
    let quoted = format!("{rel:?}");
    if rel.is_empty() {
        return Err("the path is empty".into());
    }
    if rel.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!("{quoted} holds a control character or a backslash"));
    }
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "{quoted} climbs out of the store's directory with `..`"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{quoted} is absolute; a store records its files relative to its directory"
                ))
            }
        }
    }
    let joined = root.join(rel);
    if std::fs::symlink_metadata(&joined).is_err() {
        // Missing: nothing to follow; the caller says the file is gone.
        return Ok(joined);
    }
    let real = joined
        .canonicalize()
        .map_err(|e| format!("{quoted}: cannot resolve {}: {e}", joined.display()))?;
    let real_root = root
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
    if !real.starts_with(&real_root) {
        return Err(format!(
            "{quoted} leads outside {} through a symbolic link (to {})",
            root.display(),
            real.display()
        ));
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::resolve_inside;

    #[test]
    fn artifact_paths_stay_inside_their_root() {
        let dir = tempfile::TempDir::new().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("exp/1")).unwrap();
        std::fs::write(root.join("exp/1/model.safetensors"), b"w").unwrap();
        assert!(resolve_inside(root, "exp/1/model.safetensors").is_ok());
        assert!(resolve_inside(root, "exp/2/missing").is_ok());
        for bad in ["/etc/hostname", "../x", "exp/../../x", "", "a\0b", "a\\b"] {
            assert!(resolve_inside(root, bad).is_err(), "{bad:?}");
        }
        std::os::unix::fs::symlink("/etc", root.join("exp/out")).unwrap();
        let e = resolve_inside(root, "exp/out/hostname").unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
