//! `--jobs N` for `lab run` and `lab worker`: N child processes of this lab on
//! one store, the CPU threads divided among them. Processes rather than threads:
//! candle sizes its matrix products and lab's kernels split their batches by the
//! `RAYON_NUM_THREADS` of the process, which one process cannot set per trial,
//! and a trial that aborts the process (out of memory) takes only its own job
//! down. The store's atomic claims already let processes share a grid or a queue.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Threads for each of `jobs` processes out of `total`, as even as possible;
/// every job gets at least one.
pub fn split_threads(total: usize, jobs: usize) -> Vec<usize> {
    let jobs = jobs.max(1);
    (0..jobs)
        .map(|i| (total / jobs + usize::from(i < total % jobs)).max(1))
        .collect()
}

/// Run this lab with `args` in `jobs` child processes, each with its share of
/// `total_threads`. Their stderr goes to ours, each line prefixed `[job i]`;
/// their stdout is dropped. Returns the worst exit status: 1 if any job failed
/// outright, else 2 if any had a failed trial (or was killed), else 0.
pub fn spawn(jobs: usize, total_threads: usize, args: &[OsString]) -> Result<i32> {
    let threads = split_threads(total_threads, jobs);
    if jobs > total_threads {
        eprintln!(
            "note: --jobs {jobs} is more than the {total_threads} CPU threads: \
             each job gets 1 thread and they share the cores"
        );
    }
    eprintln!(
        "{jobs} jobs, threads per job: {}",
        threads
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let exe = std::env::current_exe().context("cannot find the lab binary to start jobs")?;
    let mut children = Vec::new();
    for (i, n) in threads.iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(args)
            .env("RAYON_NUM_THREADS", n.to_string())
            .env("CANDLE_NUM_THREADS", n.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start job {}", i + 1))?;
        let stderr = child.stderr.take().context("job stderr")?;
        let relay = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[job {}] {line}", i + 1);
            }
        });
        children.push((child, relay));
    }
    let mut worst = 0;
    for (i, (mut child, relay)) in children.into_iter().enumerate() {
        let status = child.wait().with_context(|| format!("job {}", i + 1))?;
        let _ = relay.join();
        let code = match status.code() {
            Some(code) => code,
            None => {
                eprintln!("job {} was killed ({status})", i + 1);
                2
            }
        };
        worst = match (worst, code) {
            (1, _) | (_, 1) => 1,
            (0, 0) => 0,
            _ => 2,
        };
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::split_threads;

    #[test]
    fn threads_are_shared_out_evenly_and_never_zero() {
        assert_eq!(split_threads(8, 2), vec![4, 4]);
        assert_eq!(split_threads(5, 2), vec![3, 2]);
        assert_eq!(split_threads(2, 2), vec![1, 1]);
        assert_eq!(split_threads(2, 3), vec![1, 1, 1]);
        assert_eq!(split_threads(16, 1), vec![16]);
        assert_eq!(split_threads(7, 3).iter().sum::<usize>(), 7);
    }
}
