//! Slurm job arrays (`lab submit --slurm`): the sbatch script, written by a pure
//! function of its settings, and the layout of the shards the array tasks write.
//! Task `i` runs the grid's `i`-th trial (`lab run --trial-index i`) into its own
//! database `DIR/shard-<i>/lab.db`: one writer per SQLite file, which is what a
//! network file system can bear; its artifacts go beside it. [`submit`] hands
//! the array to sbatch; [`shard_status`] reads its progress back.

mod status;
mod submit;

pub use status::{shard_status, ShardStatus, TaskCounts, TaskRow};
pub use submit::{submit, SubmitOptions, Submitted};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything the sbatch script says.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayJob {
    /// The job name (`--job-name`).
    pub name: String,
    /// One array task per trial: indices 0 to tasks - 1.
    pub tasks: usize,
    /// At most this many tasks at once (`%N`).
    pub max_parallel: Option<usize>,
    /// Slurm partition.
    pub partition: Option<String>,
    /// Generic resources per task, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// `HH:MM:SS` or `D-HH:MM:SS`.
    pub time: Option<String>,
    /// CPUs per task; the task's compute threads follow.
    pub cpus_per_task: Option<usize>,
    /// The shared directory holding the shards and the task logs (absolute).
    pub shards: PathBuf,
    /// The lab binary the tasks run (absolute; it must be visible on the nodes).
    pub lab: PathBuf,
    /// `lab run` arguments: the spec (absolute) and its `--set`/`--device` flags.
    pub run_args: Vec<String>,
}

/// What `lab submit` leaves in the shard directory for `lab status --shards`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayInfo {
    /// Slurm's job id.
    pub job_id: String,
    /// The experiment's name.
    pub experiment: String,
    /// Array tasks: one per trial.
    pub tasks: usize,
    /// The spec file (absolute).
    pub spec: String,
    /// When it was submitted (RFC 3339, UTC).
    pub submitted_at: String,
}

/// The name of `ArrayInfo`'s file in the shard directory.
pub const ARRAY_INFO: &str = "array.json";

/// The database of array task `task`.
pub fn shard_db(shards: &Path, task: usize) -> PathBuf {
    shards.join(format!("shard-{task}")).join("lab.db")
}

/// The shard databases present in `dir`, by task index.
pub fn find_shards(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => bail!("cannot read shard directory {}: {err}", dir.display()),
    };
    let mut shards = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(task) = name
            .to_str()
            .and_then(|n| n.strip_prefix("shard-"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let db = entry.path().join("lab.db");
        if db.is_file() {
            shards.push((task, db));
        }
    }
    shards.sort();
    Ok(shards)
}

/// Slurm's `--time` in the forms lab accepts: `HH:MM:SS` or `D-HH:MM:SS`.
pub fn check_time(time: &str) -> Result<()> {
    let (days, clock) = match time.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, time),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = clock.split(':').collect();
    let ok = days.is_none_or(digits)
        && parts.len() == 3
        && parts.iter().all(|p| digits(p))
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts[1] < "60"
        && parts[2] < "60";
    if !ok {
        bail!("--time {time}: expected HH:MM:SS or D-HH:MM:SS (e.g. 02:00:00)");
    }
    Ok(())
}

/// A value that goes into an `#SBATCH` line as it is: one word, nothing a
/// shell or sbatch would read differently.
pub fn check_word(flag: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:,/=+%@".contains(c));
    if !ok {
        bail!("{flag} `{value}`: expected one word of letters, digits and -_.:,/=+%@");
    }
    Ok(())
}

/// Quote for a POSIX shell.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The sbatch script of an array job.
pub fn script(job: &ArrayJob) -> String {
    let shards = job.shards.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name={}\n", job.name);
    let throttle = job
        .max_parallel
        .map(|n| format!("%{n}"))
        .unwrap_or_default();
    s += &format!(
        "#SBATCH --array=0-{}{throttle}\n",
        job.tasks.saturating_sub(1)
    );
    s += &format!("#SBATCH --output={shards}/logs/%A_%a.out\n");
    for (flag, value) in [
        ("partition", &job.partition),
        ("gres", &job.gres),
        ("time", &job.time),
    ] {
        if let Some(v) = value {
            s += &format!("#SBATCH --{flag}={v}\n");
        }
    }
    if let Some(n) = job.cpus_per_task {
        s += &format!("#SBATCH --cpus-per-task={n}\n");
    }
    s += "\n# Written by `lab submit`. Array task i trains the grid's i-th trial into its\n";
    s += "# own database; collect them with `lab merge DIR --into runs/lab.db`.\n";
    s += "set -euo pipefail\n";
    s += "# As many compute threads as CPUs given to the task.\n";
    s += "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n";
    s += "export CANDLE_NUM_THREADS=\"$RAYON_NUM_THREADS\"\n";
    s += "# A rollback journal: the shard may be read from another node (lab status --shards).\n";
    s += "export LAB_SQLITE_JOURNAL=delete\n";
    s += &format!("shards={}\n", quote(&shards));
    let args: Vec<String> = job.run_args.iter().map(|a| quote(a)).collect();
    s += &format!(
        "exec {} --db \"$shards/shard-$SLURM_ARRAY_TASK_ID/lab.db\" run {} --trial-index \"$SLURM_ARRAY_TASK_ID\"\n",
        quote(&job.lab.display().to_string()),
        args.join(" ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ArrayJob {
        ArrayJob {
            name: "lab-quick".into(),
            tasks: 12,
            max_parallel: Some(4),
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            time: Some("02:00:00".into()),
            cpus_per_task: Some(8),
            shards: "/shared/runs/shards/quick".into(),
            lab: "/home/me/bin/lab".into(),
            run_args: vec![
                "/home/me/experiments/quick.toml".into(),
                "--set".into(),
                "sweep.model.hidden=[64, 128]".into(),
                "--device".into(),
                "cuda:0".into(),
            ],
        }
    }

    #[test]
    fn script_has_one_task_per_trial_the_throttle_and_every_option() {
        let s = script(&job());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "#!/bin/bash");
        for expected in [
            "#SBATCH --job-name=lab-quick",
            "#SBATCH --array=0-11%4",
            "#SBATCH --output=/shared/runs/shards/quick/logs/%A_%a.out",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --time=02:00:00",
            "#SBATCH --cpus-per-task=8",
            "export LAB_SQLITE_JOURNAL=delete",
            "shards=/shared/runs/shards/quick",
            "exec /home/me/bin/lab --db \"$shards/shard-$SLURM_ARRAY_TASK_ID/lab.db\" run \
             /home/me/experiments/quick.toml --set 'sweep.model.hidden=[64, 128]' \
             --device cuda:0 --trial-index \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(lines.contains(&expected), "missing `{expected}` in:\n{s}");
        }
        // Every #SBATCH line comes before the first command, as sbatch requires.
        let last_directive = lines
            .iter()
            .rposition(|l| l.starts_with("#SBATCH"))
            .unwrap();
        let first_command = lines.iter().position(|l| l.starts_with("set ")).unwrap();
        assert!(last_directive < first_command);
    }

    #[test]
    fn options_left_out_leave_no_directive() {
        let mut j = job();
        j.max_parallel = None;
        j.partition = None;
        j.gres = None;
        j.time = None;
        j.cpus_per_task = None;
        j.tasks = 1;
        let s = script(&j);
        assert!(s.contains("#SBATCH --array=0-0\n"), "{s}");
        for absent in ["--partition", "--gres", "--time", "--cpus-per-task", "%4"] {
            assert!(!s.contains(absent), "{absent} in:\n{s}");
        }
    }

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quote("plain/path.toml"), "plain/path.toml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn time_and_words_are_checked() {
        for ok in ["02:00:00", "100:05:09", "1-12:00:00"] {
            check_time(ok).unwrap();
        }
        for bad in ["2h", "02:00", "02:60:00", "1-2-03:00:00", "x-01:00:00", ""] {
            let err = check_time(bad).unwrap_err().to_string();
            assert!(err.contains("HH:MM:SS"), "{bad}: {err}");
        }
        check_word("--gres", "gpu:a100:2").unwrap();
        let err = check_word("--partition", "gpu\n#SBATCH --x").unwrap_err();
        assert!(err.to_string().contains("--partition"), "{err}");
    }

    #[test]
    fn shards_are_found_by_task_index() {
        let dir = tempfile::tempdir().unwrap();
        for task in [10, 2, 0] {
            let db = shard_db(dir.path(), task);
            std::fs::create_dir_all(db.parent().unwrap()).unwrap();
            std::fs::write(&db, b"").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("shard-7")).unwrap(); // not started: no db
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let found: Vec<usize> = find_shards(dir.path())
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(found, vec![0, 2, 10]);
    }
}
