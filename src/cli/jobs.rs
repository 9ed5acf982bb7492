//! `--jobs N` for `lab run` and `lab worker`: N child processes of this lab on
//! one store, the CPU threads divided among them. Processes rather than threads:
//! candle sizes its matrix products and lab's kernels split their batches by the
//! `RAYON_NUM_THREADS` of the process, which one process cannot set per trial,
//! and a trial that aborts the process (out of memory) takes only its own job
//! down. The store's atomic claims already let processes share a grid or a queue.

use super::exit;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

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
/// their stdout is dropped. Returns the worst exit status ([`worst`]).
///
/// # Errors
/// This lab's binary cannot be found or a job cannot be started.
pub fn spawn(jobs: usize, total_threads: usize, args: &[OsString]) -> Result<i32> {
    let exe = std::env::current_exe().context("cannot find the lab binary to start jobs")?;
    spawn_program(&exe, jobs, total_threads, args)
}

/// [`spawn`] with any program (tests start a shell that exits with a chosen code).
fn spawn_program(
    exe: &std::path::Path,
    jobs: usize,
    total_threads: usize,
    args: &[OsString],
) -> Result<i32> {
    let threads = split_threads(total_threads, jobs);
    if jobs > total_threads {
        tracing::info!(
            "note: --jobs {jobs} is more than the {total_threads} CPU threads: \
             each job gets 1 thread and they share the cores"
        );
    }
    tracing::info!(
        "{jobs} jobs, threads per job: {}",
        threads
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    tracing::debug!("jobs run {} {:?}", exe.display(), args);
    let mut children = Vec::new();
    for (i, n) in threads.iter().enumerate() {
        let mut command = Command::new(exe);
        // In a process group of their own, so that a terminal's Ctrl-C reaches
        // only this parent, which passes it on once (see `wait_all`); a second
        // signal to a job would end it at once.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .args(args)
            .env("RAYON_NUM_THREADS", n.to_string())
            .env("CANDLE_NUM_THREADS", n.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start job {}", i + 1))?;
        let stderr = child.stderr.take().context("job stderr")?;
        // The children log (timestamps included) themselves: relay their lines as they are.
        let relay = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(std::io::stderr(), "[job {}] {line}", i + 1);
            }
        });
        children.push((child, relay));
    }
    let statuses = wait_all(&mut children)?;
    let mut codes = Vec::new();
    for (i, ((_, relay), status)) in children.into_iter().zip(statuses).enumerate() {
        let _ = relay.join();
        let code = job_code(status);
        match code {
            exit::OK | exit::TRIAL_FAILED => {}
            exit::USAGE => tracing::error!(
                "job {} refused its command line ({status}): lab started it wrongly",
                i + 1
            ),
            exit::INTERRUPTED => tracing::warn!("job {} was interrupted ({status})", i + 1),
            _ => tracing::warn!("job {} failed ({status})", i + 1),
        }
        codes.push(code);
    }
    Ok(worst(&codes))
}

/// Wait for every job; the first SIGINT/SIGTERM this process receives is passed
/// on to each job still running, which abandons its epoch, puts its trial back
/// to pending and exits 130.
fn wait_all(children: &mut [(Child, JoinHandle<()>)]) -> Result<Vec<ExitStatus>> {
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut forwarded = false;
    loop {
        let signal = crate::interrupt::requested();
        for (i, (child, _)) in children.iter_mut().enumerate() {
            if statuses[i].is_some() {
                continue;
            }
            if let (Some(signal), false) = (signal, forwarded) {
                forward(child, signal);
            }
            statuses[i] = child.try_wait().with_context(|| format!("job {}", i + 1))?;
        }
        forwarded |= signal.is_some();
        if let Some(done) = statuses.iter().copied().collect::<Option<Vec<_>>>() {
            return Ok(done);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Send `signal` to a job (it may have just exited: nothing to do then).
fn forward(child: &Child, signal: i32) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        if let (Ok(signal), Ok(pid)) = (Signal::try_from(signal), i32::try_from(child.id())) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
    #[cfg(not(unix))]
    let _ = (child, signal);
}

/// A child's exit status as one of lab's codes: killed by SIGINT or SIGTERM
/// reads as interrupted; killed otherwise (out of memory, a crash in a trial) as a failed
/// trial, since the store marks its trial abandoned and a later run resumes it.
fn job_code(status: ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if matches!(status.signal(), Some(2 | 15)) {
            return exit::INTERRUPTED;
        }
    }
    status.code().unwrap_or(exit::TRIAL_FAILED)
}

/// The status of `--jobs` from its jobs' codes: interrupted if any was; else 1
/// if any job failed outright (bad input, or a usage error, which is lab's own
/// fault in starting it and never a failed trial); else 3 if any trial failed;
/// else 0.
fn worst(codes: &[i32]) -> i32 {
    if codes.contains(&exit::INTERRUPTED) {
        exit::INTERRUPTED
    } else if codes
        .iter()
        .any(|c| ![exit::OK, exit::TRIAL_FAILED].contains(c))
    {
        exit::BAD_INPUT
    } else if codes.contains(&exit::TRIAL_FAILED) {
        exit::TRIAL_FAILED
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_error_is_a_failed_job_not_a_failed_trial() {
        assert_eq!(worst(&[0, 0]), exit::OK);
        assert_eq!(worst(&[0, 3]), exit::TRIAL_FAILED);
        assert_eq!(worst(&[2, 0]), exit::BAD_INPUT);
        assert_eq!(worst(&[3, 2]), exit::BAD_INPUT);
        assert_eq!(worst(&[3, 1]), exit::BAD_INPUT);
        assert_eq!(worst(&[1, 130]), exit::INTERRUPTED);
        assert_eq!(worst(&[0, 101]), exit::BAD_INPUT);
    }

    /// Real child processes exiting with chosen codes, or killed by a signal.
    #[cfg(unix)]
    #[test]
    fn children_exit_codes_are_combined() {
        let sh = std::path::Path::new("/bin/sh");
        let run = |script: &str| {
            spawn_program(sh, 2, 2, &["-c".into(), script.into()]).expect("jobs start")
        };
        assert_eq!(run("exit 0"), exit::OK);
        assert_eq!(run("exit 3"), exit::TRIAL_FAILED);
        assert_eq!(run("exit 2"), exit::BAD_INPUT);
        assert_eq!(run("kill -INT $$"), exit::INTERRUPTED);
        assert_eq!(run("kill -TERM $$"), exit::INTERRUPTED);
        assert_eq!(run("kill -KILL $$"), exit::TRIAL_FAILED);
    }

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
