//! Files a killed run can leave in an experiment's directory, removed on the
//! next run of that experiment: temporary files (`PendingFile` names) whose
//! writer process is gone, in the directory of a trial nobody runs, and the
//! checkpoint directory of a trial this store knows is done. Nothing of a trial
//! this store does not know, and nothing of a running trial, is touched.

use super::liveness::{this_host, worker_alive};
use crate::files::pending_writer;
use crate::store::{Store, TrialStatus};
use anyhow::Result;
use std::path::Path;

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
                    remove_dead_temp_files(trial_dir);
                    remove_dead_temp_files(&checkpoint);
                    if *status == TrialStatus::Done {
                        let _ = std::fs::remove_dir_all(&checkpoint);
                    }
                }
            }
        }
        Ok(())
    })
}

/// Temporary files in `dir` whose writer (the pid in their name, this host) is gone.
fn remove_dead_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(pending_writer) else {
            continue;
        };
        if !worker_alive(&format!("{}:{pid}", this_host())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
