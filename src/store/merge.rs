//! Folding one lab database into another (`lab merge`): the shards that Slurm
//! array tasks write, into the main store. Experiments are matched by name and
//! trials by config hash, as `lab run` matches them; only finished trials
//! (done, failed, pruned) are merged, and a trial is only ever moved to a
//! better state (pending < failed < pruned < done), so merging twice adds
//! nothing, a done trial is never overwritten and a pruned one only by a done
//! one (a result beats a stopped run of the same config). A pruned trial
//! brings its epochs and its reason. Artifact files are copied beside the
//! target database.
//!
//! Tags and notes come along with their experiment or trial (of any state,
//! once the target has it): tags are united, and two different notes of one
//! target are joined into one and said in [`MergeSummary::notes`], never
//! dropped.
//!
//! A shard is untrusted input: an experiment name must be one `lab run` would
//! accept (it becomes a directory), an artifact path must stay inside the
//! shard's directory, a copied file must have the sha256 recorded for it,
//! and a tag must be one [`valid_tag`] accepts (a refused tag is named, the
//! rest merged). A trial (or experiment) that fails a check is refused and named in
//! [`MergeSummary::refused`]; the others are merged.

use super::notes::{insert_tag, upsert_note, valid_tag, Target};
use super::reads::resolve_inside;
use super::results::{insert_artifact, insert_confusion, insert_epoch, insert_metric};
use super::{ArtifactRow, Result, Store, TrialRow, TrialStatus};
use crate::files::{parent_dir, sha256_file, PendingFile};
use anyhow::{bail, Context};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What one merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// Experiments new to the target.
    pub experiments: usize,
    /// Trials new to the target.
    pub added: usize,
    /// Trials the target had in a worse state (pending, failed, or pruned
    /// where the shard's is done), now replaced.
    pub updated: usize,
    /// Trials the target already has as good (or has running): left alone.
    pub unchanged: usize,
    /// Trials pending or running in the shard: nothing to merge yet.
    pub unfinished: usize,
    /// Artifact files copied.
    pub files: usize,
    /// Tags of the shard's experiments and trials new to the target.
    pub tags_added: usize,
    /// Notes copied from the shard where the target had none (or had one the
    /// shard's contains: an earlier join).
    pub notes_copied: usize,
    /// Notes that differ between the shard and the target: both kept, joined
    /// into one, each named in `notes`.
    pub notes_joined: usize,
    /// Things the user should know (a spec that differs, a trial running in the target).
    pub notes: Vec<String>,
    /// Trials and experiments of the shard refused (bad names, paths or files),
    /// each naming the shard, the trial or experiment, the key and why.
    pub refused: Vec<String>,
}

/// How good a state is: a trial is only replaced by a better one.
fn rank(status: TrialStatus) -> u8 {
    match status {
        TrialStatus::Pending | TrialStatus::Running => 0,
        TrialStatus::Failed => 1,
        TrialStatus::Pruned => 2,
        TrialStatus::Done => 3,
    }
}

impl Store {
    /// Merge `shard`'s experiments and finished (done, failed, pruned) trials
    /// into this store, one transaction per trial. A trial or experiment
    /// failing a check is refused (listed in [`MergeSummary::refused`]) and the
    /// rest merged.
    ///
    /// # Errors
    /// The shard cannot be read.
    pub fn merge_from(&self, shard: &Store) -> Result<MergeSummary> {
        let mut summary = MergeSummary::default();
        for experiment in shard.experiments()? {
            if let Err(why) = crate::spec::check_experiment_name(&experiment.name) {
                summary.refused.push(format!(
                    "{}: experiment {} (key `experiments.name`): {why}; none of its trials was merged",
                    shard.path.display(),
                    experiment.id
                ));
                continue;
            }
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
                    short(&experiment.spec_hash),
                    short(&target_exp.1)
                ));
            }
            let what = format!("experiment `{}`", experiment.name);
            let annotations = Annotations {
                tags: shard.tags(Target::Experiment(experiment.id))?,
                note: shard.note(Target::Experiment(experiment.id))?,
            };
            self.merge_annotations(
                shard,
                Target::Experiment(target_exp.0),
                &annotations,
                &what,
                &mut summary,
            )?;
            let trials = shard.trials(experiment.id)?;
            for trial in &trials {
                if rank(trial.status) == 0 {
                    summary.unfinished += 1;
                    continue;
                }
                let merged =
                    self.merge_trial(shard, trial, target_exp.0, &experiment.name, &mut summary);
                if let Err(err) = merged {
                    summary.refused.push(format!(
                        "{}: trial {} of `{}` not merged: {err:#}",
                        shard.path.display(),
                        trial.id,
                        experiment.name
                    ));
                }
            }
            self.merge_trial_annotations(
                shard,
                (experiment.id, target_exp.0),
                &experiment.name,
                &trials,
                &mut summary,
            )?;
        }
        Ok(summary)
    }

    /// Carry the tags and notes of the shard experiment's trials (`ids`: the
    /// shard's and the target's experiment id) to the target's trials of the
    /// same config hash, whatever their states; a trial the target does not
    /// have (unfinished or refused in the shard) brings them when it is merged.
    fn merge_trial_annotations(
        &self,
        shard: &Store,
        ids: (i64, i64),
        experiment: &str,
        trials: &[TrialRow],
        summary: &mut MergeSummary,
    ) -> Result<()> {
        let (mut tags, mut notes) = (shard.trial_tags(ids.0)?, shard.trial_notes(ids.0)?);
        if tags.is_empty() && notes.is_empty() {
            return Ok(());
        }
        for trial in trials {
            let annotations = Annotations {
                tags: tags.remove(&trial.id).unwrap_or_default(),
                note: notes.remove(&trial.id),
            };
            if annotations.tags.is_empty() && annotations.note.is_none() {
                continue;
            }
            let target: Option<i64> = self
                .conn
                .query_row(
                    "SELECT id FROM trials WHERE experiment_id = ?1 AND config_hash = ?2",
                    params![ids.1, trial.config_hash],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = target {
                let what = format!("trial {id} of `{experiment}`");
                self.merge_annotations(shard, Target::Trial(id), &annotations, &what, summary)?;
            }
        }
        Ok(())
    }

    /// Put a shard's tags and note on `to` (named `what` in messages), in one
    /// transaction: tags are united (a tag [`valid_tag`] refuses is named in
    /// `summary.refused` and left out); the note is copied where `to` has
    /// none, and where both have different notes they are joined, this
    /// store's first, and said in `summary.notes`: neither is lost. Merging
    /// again changes nothing (a note already part of ours is not joined twice).
    fn merge_annotations(
        &self,
        shard: &Store,
        to: Target,
        from: &Annotations,
        what: &str,
        summary: &mut MergeSummary,
    ) -> Result<()> {
        if from.tags.is_empty() && from.note.is_none() {
            return Ok(());
        }
        let tx = self.write()?;
        for tag in &from.tags {
            match valid_tag(tag) {
                Ok(tag) => summary.tags_added += usize::from(insert_tag(&tx, to, &tag)?),
                Err(why) => summary.refused.push(format!(
                    "{}: a tag of {what} (key `tags.tag`) not merged: {why:#}",
                    shard.path.display()
                )),
            }
        }
        if let Some(theirs) = from.note.as_deref().filter(|n| !n.trim().is_empty()) {
            let (column, id) = to.column();
            let ours: Option<String> = tx
                .query_row(
                    &format!("SELECT text FROM notes WHERE {column} = ?1"),
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            match ours {
                Some(ours) if ours.contains(theirs) => {}
                Some(ours) if !theirs.contains(&ours) => {
                    let joined = format!(
                        "{ours}\n\n--- merged from {} ---\n{theirs}",
                        shard.path.display()
                    );
                    upsert_note(&tx, to, &joined)?;
                    summary.notes_joined += 1;
                    summary.notes.push(format!(
                        "{what}: its note in {} differs from the one here; both are kept, \
                         joined into one note (this store's first)",
                        shard.path.display()
                    ));
                }
                _ => {
                    upsert_note(&tx, to, theirs)?;
                    summary.notes_copied += 1;
                }
            }
        }
        tx.commit()?;
        Ok(())
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
        check_config(trial, experiment)?;
        let tx = self.write()?;
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, status FROM trials WHERE experiment_id = ?1 AND config_hash = ?2",
                params![experiment_id, trial.config_hash],
                |r| Ok((r.get("id")?, r.get("status")?)),
            )
            .optional()?;
        // Counted once committed: a refused trial is neither added nor updated.
        let (target_id, added) = match existing {
            None => {
                let id = tx.query_row(
                    "INSERT INTO trials (experiment_id, config_json, config_hash, seed, status,
                                         device, worker, started_at, finished_at, error,
                                         search_number, pruned_reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
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
                        trial.error,
                        trial.search_number,
                        trial.pruned_reason
                    ],
                    |r| r.get("id"),
                )?;
                (id, true)
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
                // The target's search number stands; a grid trial here takes the shard's.
                tx.execute(
                    "UPDATE trials SET status = ?2, device = ?3, worker = ?4, started_at = ?5,
                         finished_at = ?6, error = ?7, heartbeat_at = NULL,
                         pruned_reason = ?8, search_number = COALESCE(search_number, ?9)
                     WHERE id = ?1",
                    params![
                        id,
                        trial.status.as_str(),
                        trial.device,
                        trial.worker,
                        trial.started_at,
                        trial.finished_at,
                        trial.error,
                        trial.pruned_reason,
                        trial.search_number
                    ],
                )?;
                for table in ["epochs", "metrics", "confusion", "artifacts", "predictions"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE trial_id = ?1"), [id])?;
                }
                (id, false)
            }
        };
        copy_results(&tx, shard, trial.id, target_id)?;
        tx.execute(
            "UPDATE trials SET data_report = ?2, test_split = ?3, provenance = ?4 WHERE id = ?1",
            params![
                target_id,
                shard.data_report(trial.id)?,
                shard.test_split(trial.id)?,
                shard.provenance(trial.id)?
            ],
        )?;
        let dir = parent_dir(&self.path)
            .join(experiment)
            .join(target_id.to_string());
        // Every file is copied and verified before any is put in place.
        let shard_root = parent_dir(&shard.path);
        let mut names = HashSet::new();
        let mut staged = Vec::new();
        for artifact in shard.artifacts(trial.id)? {
            let copy = stage_artifact(&artifact, &shard_root, &dir, &mut names);
            if copy.is_err() {
                // Only removed when empty: a directory this attempt created.
                let _ = std::fs::remove_dir(&dir);
            }
            staged.push((copy?, artifact));
        }
        // A checkpoint of an attempt made here is of no use once the trial is merged.
        let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
        for ((dst, pending), artifact) in staged {
            if let Some(tmp) = pending {
                let moved = format!(
                    "cannot rename {} to {}",
                    tmp.path().display(),
                    dst.display()
                );
                tmp.commit().context(moved)?;
                summary.files += 1;
            }
            let path = dst
                .strip_prefix(parent_dir(&self.path))
                .unwrap_or(&dst)
                .display()
                .to_string();
            insert_artifact(&tx, target_id, &ArtifactRow { path, ..artifact })?;
        }
        tx.commit()?;
        if added {
            summary.added += 1;
        } else {
            summary.updated += 1;
        }
        Ok(())
    }
}

/// A shard target's tags and note.
struct Annotations {
    tags: Vec<String>,
    note: Option<String>,
}

/// The first 12 characters of a hash, for messages.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A shard trial's config must be JSON naming the experiment it is filed under.
fn check_config(trial: &TrialRow, experiment: &str) -> Result<()> {
    let config: serde_json::Value =
        serde_json::from_str(&trial.config_json).context("key `trials.config_json` is not JSON")?;
    match config.get("experiment") {
        None => Ok(()),
        Some(serde_json::Value::String(name)) if name == experiment => Ok(()),
        Some(other) => {
            bail!("key `trials.config_json`: its experiment is {other}, not `{experiment}`")
        }
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
    for split in shard.prediction_splits(from)? {
        if let Some(p) = shard.predictions(from, &split)? {
            super::predictions::insert(tx, to, &split, &p)?;
        }
    }
    Ok(())
}

/// Copy one artifact file from the shard to a temporary file beside its place
/// in `dir` and check the copy against the recorded sha256. Returns the file's
/// place and the copy to move there (none when an identical file is there).
fn stage_artifact(
    artifact: &ArtifactRow,
    shard_root: &Path,
    dir: &Path,
    names: &mut HashSet<PathBuf>,
) -> Result<(PathBuf, Option<PendingFile>)> {
    let kind = &artifact.kind;
    let src = resolve_inside(shard_root, &artifact.path)
        .map_err(|why| anyhow::anyhow!("key `artifacts.path` of its {kind} artifact: {why}"))?;
    let Some(name) = src.file_name() else {
        bail!(
            "key `artifacts.path` of its {kind} artifact: {:?} has no file name",
            artifact.path
        );
    };
    if !names.insert(PathBuf::from(name)) {
        bail!("key `artifacts.path`: two of its artifacts are named {name:?}");
    }
    let dst = dir.join(name);
    if dst.is_file() && sha256_file(&dst)? == artifact.sha256 {
        return Ok((dst, None));
    }
    let meta = std::fs::metadata(&src).with_context(|| {
        format!(
            "its {kind} artifact {} is missing from the shard directory",
            src.display()
        )
    })?;
    if !meta.is_file() {
        bail!(
            "its {kind} artifact {} is not a regular file",
            src.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = PendingFile::new(&dst);
    std::fs::copy(&src, tmp.path())
        .with_context(|| format!("cannot copy {} to {}", src.display(), tmp.path().display()))?;
    // The copy is what is checked: the bytes that will be used here.
    let sha = sha256_file(tmp.path())?;
    if sha != artifact.sha256 {
        bail!(
            "its {kind} artifact {} changed since it was recorded \
             (key `artifacts.sha256`: {} expected, {sha} found)",
            src.display(),
            artifact.sha256
        );
    }
    Ok((dst, Some(tmp)))
}
