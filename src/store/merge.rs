//! Folding one lab database into another (`lab merge`): the shards that Slurm
//! array tasks write, into the main store. Experiments are matched by name and
//! trials by config hash, as `lab run` matches them; only finished trials
//! (done, failed) are merged, and a trial is only ever moved to a better state
//! (pending < failed < done), so merging twice adds nothing and a done trial is
//! never overwritten. Artifact files are copied beside the target database.

use super::results::{insert_artifact, insert_confusion, insert_epoch, insert_metric};
use super::{ArtifactRow, Result, Store, TrialRow, TrialStatus};
use crate::files::{parent_dir, sha256_file, PendingFile};
use anyhow::{bail, Context};
use rusqlite::{params, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};

/// What one merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// Experiments new to the target.
    pub experiments: usize,
    /// Trials new to the target.
    pub added: usize,
    /// Trials the target had in a worse state (pending, failed), now replaced.
    pub updated: usize,
    /// Trials the target already has as good (or has running): left alone.
    pub unchanged: usize,
    /// Trials pending or running in the shard: nothing to merge yet.
    pub unfinished: usize,
    /// Artifact files copied.
    pub files: usize,
    /// Things the user should know (a spec that differs, a trial running in the target).
    pub notes: Vec<String>,
}

fn rank(status: TrialStatus) -> u8 {
    match status {
        TrialStatus::Pending | TrialStatus::Running => 0,
        TrialStatus::Failed => 1,
        TrialStatus::Done => 2,
    }
}

impl Store {
    /// Merge `shard`'s experiments and finished trials into this store, one
    /// transaction per trial.
    pub fn merge_from(&self, shard: &Store) -> Result<MergeSummary> {
        let mut summary = MergeSummary::default();
        for experiment in shard.experiments()? {
            let (target_exp, created) = self.merge_experiment(
                &experiment.name,
                &experiment.spec_toml,
                &experiment.spec_hash,
                &experiment.created_at,
            )?;
            if created {
                summary.experiments += 1;
            } else if target_exp.1 != experiment.spec_hash {
                summary.notes.push(format!(
                    "experiment `{}`: {} ran a different spec text than the one recorded here \
                     (spec hash {} vs {}); its trials are matched by config hash",
                    experiment.name,
                    shard.path.display(),
                    &experiment.spec_hash[..12.min(experiment.spec_hash.len())],
                    &target_exp.1[..12.min(target_exp.1.len())]
                ));
            }
            for trial in shard.trials(experiment.id)? {
                if !matches!(trial.status, TrialStatus::Done | TrialStatus::Failed) {
                    summary.unfinished += 1;
                    continue;
                }
                self.merge_trial(shard, &trial, target_exp.0, &experiment.name, &mut summary)
                    .with_context(|| {
                        format!(
                            "cannot merge trial {} of {} into {}",
                            trial.id,
                            shard.path.display(),
                            self.path.display()
                        )
                    })?;
            }
        }
        Ok(summary)
    }

    /// The target experiment of that name as (id, spec hash), created from the
    /// shard's when missing; true when created.
    fn merge_experiment(
        &self,
        name: &str,
        spec_toml: &str,
        spec_hash: &str,
        created_at: &str,
    ) -> Result<((i64, String), bool)> {
        let tx = self.write()?;
        let inserted = tx.execute(
            "INSERT INTO experiments (name, spec_toml, spec_hash, created_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name) DO NOTHING",
            params![name, spec_toml, spec_hash, created_at],
        )?;
        let row = tx.query_row(
            "SELECT id, spec_hash FROM experiments WHERE name = ?1",
            [name],
            |r| Ok((r.get("id")?, r.get("spec_hash")?)),
        )?;
        tx.commit()?;
        Ok((row, inserted == 1))
    }

    fn merge_trial(
        &self,
        shard: &Store,
        trial: &TrialRow,
        experiment_id: i64,
        experiment: &str,
        summary: &mut MergeSummary,
    ) -> Result<()> {
        let tx = self.write()?;
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, status FROM trials WHERE experiment_id = ?1 AND config_hash = ?2",
                params![experiment_id, trial.config_hash],
                |r| Ok((r.get("id")?, r.get("status")?)),
            )
            .optional()?;
        let target_id = match existing {
            None => {
                let id = tx.query_row(
                    "INSERT INTO trials (experiment_id, config_json, config_hash, seed, status,
                                         device, worker, started_at, finished_at, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                    params![
                        experiment_id,
                        trial.config_json,
                        trial.config_hash,
                        trial.seed as i64,
                        trial.status.as_str(),
                        trial.device,
                        trial.worker,
                        trial.started_at,
                        trial.finished_at,
                        trial.error
                    ],
                    |r| r.get("id"),
                )?;
                summary.added += 1;
                id
            }
            Some((id, status)) => {
                let status: TrialStatus = status.parse()?;
                if status == TrialStatus::Running {
                    summary.unchanged += 1;
                    summary.notes.push(format!(
                        "trial {id} of `{experiment}` is running here; {} was left alone",
                        trial.config_hash
                    ));
                    return Ok(());
                }
                if rank(trial.status) <= rank(status) {
                    summary.unchanged += 1;
                    return Ok(());
                }
                tx.execute(
                    "UPDATE trials SET status = ?2, device = ?3, worker = ?4, started_at = ?5,
                         finished_at = ?6, error = ?7, heartbeat_at = NULL
                     WHERE id = ?1",
                    params![
                        id,
                        trial.status.as_str(),
                        trial.device,
                        trial.worker,
                        trial.started_at,
                        trial.finished_at,
                        trial.error
                    ],
                )?;
                for table in ["epochs", "metrics", "confusion", "artifacts"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE trial_id = ?1"), [id])?;
                }
                summary.updated += 1;
                id
            }
        };
        copy_results(&tx, shard, trial.id, target_id)?;
        tx.execute(
            "UPDATE trials SET data_report = ?2 WHERE id = ?1",
            params![target_id, shard.data_report(trial.id)?],
        )?;
        let dir = parent_dir(&self.path)
            .join(experiment)
            .join(target_id.to_string());
        // A checkpoint of an attempt made here is of no use once the trial is merged.
        let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
        for artifact in shard.artifacts(trial.id)? {
            let path = copy_artifact(&artifact, &parent_dir(&shard.path), &dir, summary)?;
            let path = path
                .strip_prefix(parent_dir(&self.path))
                .unwrap_or(&path)
                .display()
                .to_string();
            insert_artifact(&tx, target_id, &ArtifactRow { path, ..artifact })?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// The shard trial's epochs, metrics and confusion matrices, under the target id.
fn copy_results(tx: &Transaction, shard: &Store, from: i64, to: i64) -> Result<()> {
    for e in shard.epochs(from)? {
        insert_epoch(tx, to, &e)?;
    }
    for m in shard.metrics(from)? {
        insert_metric(tx, to, &m)?;
    }
    for c in shard.confusion(from)? {
        insert_confusion(tx, to, &c)?;
    }
    Ok(())
}

/// Copy one artifact file from the shard into `dir` (through a temporary file,
/// so a copy cut short never looks finished), checking it is the file that was
/// recorded. Returns the new file's path.
fn copy_artifact(
    artifact: &ArtifactRow,
    shard_root: &Path,
    dir: &Path,
    summary: &mut MergeSummary,
) -> Result<PathBuf> {
    let src = shard_root.join(&artifact.path);
    let Some(name) = src.file_name() else {
        bail!("artifact `{}` has no file name", artifact.path);
    };
    let dst = dir.join(name);
    if dst.is_file() && sha256_file(&dst)? == artifact.sha256 {
        return Ok(dst);
    }
    let sha = sha256_file(&src).with_context(|| {
        format!(
            "the {} artifact of this trial is missing from the shard directory",
            artifact.kind
        )
    })?;
    if sha != artifact.sha256 {
        bail!(
            "{} changed since it was recorded (sha256 {} expected, {} found)",
            src.display(),
            artifact.sha256,
            sha
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = PendingFile::new(&dst);
    std::fs::copy(&src, tmp.path())
        .with_context(|| format!("cannot copy {} to {}", src.display(), tmp.path().display()))?;
    let moved = format!(
        "cannot rename {} to {}",
        tmp.path().display(),
        dst.display()
    );
    tmp.commit().context(moved)?;
    summary.files += 1;
    Ok(dst)
}
