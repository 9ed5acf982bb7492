//! Files a killed run can leave in an experiment's directory, removed on the
//! next run of that experiment: temporary files (`PendingFile` names) whose
//! writer process is gone, in the directory of a trial nobody runs, and the
//! checkpoint directory of a trial this store knows is done or pruned; and, in the
//! dataset cache, temporary files of a dead writer untouched for an hour.
//! Nothing of a trial this store does not know, and nothing of a running trial,
//! is touched.

use super::liveness::{this_host, worker_alive};
use crate::files::pending_writer;
use crate::store::{Store, TrialStatus};
use anyhow::Result;
use std::path::Path;
use std::time::Duration;

/// The cache may be shared by hosts whose pids mean nothing here: a temporary
/// file there is removed only when also untouched this long (a writer appends
/// to it continuously).
const CACHE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Clean up `root/<experiment>/<trial id>/` for the experiment's trials. Runs
/// under the store's write lock, so no trial is claimed (and no file of its
/// started) meanwhile. A file that cannot be removed is left for the next run.
///
/// # Errors
/// The store cannot be read or locked.
pub(super) fn clean(
    store: &Store,
    root: &Path,
    experiment: &str,
    experiment_id: i64,
) -> Result<()> {
    remove_dead_temp_files(&root.join("cache"), Some(CACHE_TEMP_AGE));
    let dir = root.join(experiment);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let trials: Vec<(i64, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    store.with_statuses_locked(experiment_id, |statuses| {
        for (id, trial_dir) in &trials {
            match statuses.get(id) {
                None | Some(TrialStatus::Running) => continue,
                Some(status) => {
                    let checkpoint = trial_dir.join("checkpoint");
                    remove_dead_temp_files(trial_dir, None);
                    remove_dead_temp_files(&checkpoint, None);
                    // Done and pruned trials never run again.
                    if matches!(status, TrialStatus::Done | TrialStatus::Pruned) {
                        let _ = std::fs::remove_dir_all(&checkpoint);
                    }
                }
            }
        }
        Ok(())
    })
}

/// Temporary files in `dir` whose writer (the pid in their name, this host) is
/// gone, and, given `min_age`, that were last modified at least that long ago.
fn remove_dead_temp_files(dir: &Path, min_age: Option<Duration>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(pending_writer) else {
            continue;
        };
        let old = || {
            min_age.is_none_or(|age| {
                let modified = entry.metadata().and_then(|m| m.modified());
                modified.is_ok_and(|t| t.elapsed().is_ok_and(|e| e >= age))
            })
        };
        if !worker_alive(&format!("{}:{pid}", this_host())) && old() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
