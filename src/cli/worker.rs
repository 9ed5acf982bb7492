//! `lab worker`: claim queued trials (any experiment) and run them.

use super::args::DeviceParser;
use super::progress::Progress;
use crate::runner::queue::{self, WorkerOptions};
use crate::runner::{self, RunOptions};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// cpu, cuda:N (one worker per GPU) or auto; by default each trial's train.device.
    #[arg(long, value_parser = DeviceParser)]
    device: Option<String>,
    /// Keep waiting for new trials when the queue is empty (poll with back-off).
    #[arg(long)]
    follow: bool,
    /// With --follow: the longest pause between polls of an empty queue.
    #[arg(long, default_value_t = 60)]
    poll_max_secs: u64,
    /// Seconds without a heartbeat after which another worker's running trial is
    /// taken to be abandoned and run again.
    #[arg(long, default_value_t = runner::DEFAULT_LEASE.as_secs())]
    lease_secs: u64,
    /// Run N workers (processes), the CPU threads divided among them.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    jobs: u64,
}

pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    if let Some(device) = &args.device {
        runner::device::select(device)?;
    }
    // A following worker may start before anything is queued: it waits.
    if !args.follow {
        super::require_db(db)?;
    }
    if args.jobs > 1 {
        let mut child: Vec<OsString> = super::log::child_flags();
        child.extend::<[OsString; 3]>(["--db".into(), db.into(), "worker".into()]);
        if let Some(device) = &args.device {
            child.extend(["--device".into(), device.into()]);
        }
        if args.follow {
            child.push("--follow".into());
        }
        child.extend([
            "--poll-max-secs".into(),
            args.poll_max_secs.to_string().into(),
            "--lease-secs".into(),
            args.lease_secs.to_string().into(),
        ]);
        super::stop_on_signals()?;
        let code = match crate::interrupt::requested() {
            Some(_) => super::exit::INTERRUPTED,
            None => super::jobs::spawn(args.jobs as usize, runner::device::cpu_threads(), &child)?,
        };
        if let Some(signal) = crate::interrupt::requested() {
            let stop = crate::interrupt::Interrupted { signal };
            return super::stopped(stop.into(), "lab worker");
        }
        return Ok(code);
    }
    let mut run = RunOptions::new(db.to_path_buf());
    run.device = args.device;
    run.lease = Duration::from_secs(args.lease_secs.max(1));
    let worker = run.worker.clone();
    let opts = WorkerOptions {
        run,
        follow: args.follow,
        poll_max: Duration::from_secs(args.poll_max_secs.max(1)),
    };
    tracing::info!(
        "worker {worker} on {}{}",
        opts.run.device.as_deref().unwrap_or("each trial's device"),
        if opts.follow {
            ", following the queue"
        } else {
            ""
        }
    );
    super::stop_on_signals()?;
    let mut progress = Progress::new();
    let stop = || crate::interrupt::requested().is_some();
    let result = queue::work(&opts, &stop, &mut |event| progress.on_event(event));
    progress.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(err) => return super::stopped(err, "lab worker"),
    };
    if let Some(signal) = crate::interrupt::requested() {
        // Stopped between trials (or while waiting for one): nothing to resume.
        let stop = crate::interrupt::Interrupted { signal };
        return super::stopped(stop.into(), "lab worker");
    }
    tracing::info!(
        "worker {worker}: {} trials run, {} failed; the queue has no pending trial",
        summary.ran,
        summary.failed
    );
    Ok(if summary.failed > 0 {
        super::exit::TRIAL_FAILED
    } else {
        super::exit::OK
    })
}
