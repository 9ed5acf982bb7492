//! Whether a trial's worker is still at it: the `host:pid` name a worker records
//! with each claim, the heartbeat thread renewing a running trial's lease, and
//! the check that finds trials abandoned by a crashed worker. Portable: a process
//! is probed with `kill(pid, 0)`, not through `/proc`.

use crate::store::Store;
use anyhow::Result;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `host:pid`, so a trial left running by a dead process can be recognised.
pub fn worker_name() -> String {
    format!("{}:{}", this_host(), std::process::id())
}

/// This machine's host name, as [`worker_name`] records it. Looked up once per
/// process: staleness checks call it for every running trial, inside the store's
/// write transaction.
pub fn this_host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        #[cfg(unix)]
        let host = nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().trim().to_string());
        #[cfg(not(unix))]
        let host: Option<String> = None;
        host.filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
}

/// This worker's lease expired (it was stopped longer than the lease) and another
/// worker claimed the trial: its results are not recorded twice. The store's
/// owning writes ([`Store::while_owning`]) fail with it.
pub(super) use crate::store::LostLease;

/// A thread renewing a running trial's lease through its own connection.
pub(super) struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub(super) fn start(
        db: &Path,
        trial_id: i64,
        worker: &str,
        every: Duration,
    ) -> Result<Heartbeat> {
        let store = Store::open(db)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let worker = worker.to_string();
        let every = every.max(Duration::from_millis(100));
        let thread = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= every {
                    last = Instant::now();
                    // A failed renewal is retried next time; the lease allows for it.
                    let _ = store.heartbeat(trial_id, &worker);
                }
            }
        });
        Ok(Heartbeat {
            stop,
            thread: Some(thread),
        })
    }

    pub(super) fn stop(self) {
        drop(self);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a running trial is abandoned: its worker process on this host is gone,
/// or its last heartbeat is older than `lease`.
pub fn is_stale(worker: &str, heartbeat_at: Option<&str>, lease: Duration) -> bool {
    if !worker_alive(worker) {
        return true;
    }
    let Some(beat) = heartbeat_at.and_then(|b| chrono::DateTime::parse_from_rfc3339(b).ok()) else {
        return false;
    };
    let age = chrono::Utc::now().signed_duration_since(beat);
    age.to_std().is_ok_and(|age| age > lease)
}

/// Whether the process named by a `host:pid` worker is still running. Workers of
/// other hosts are assumed alive: only their own host can tell (their lease
/// decides in [`is_stale`]).
pub(super) fn worker_alive(worker: &str) -> bool {
    let Some((host, pid)) = worker.rsplit_once(':') else {
        return true;
    };
    if host != this_host() {
        return true;
    }
    pid.parse::<u32>().map(process_alive).unwrap_or(true)
}

/// Whether process `pid` of this host exists: signal 0 probes it without
/// sending anything. EPERM means it exists under another user; anything but
/// "no such process" is taken as alive, so a trial is never requeued on doubt.
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    // 0 and values past i32 name no single process (0 is the process group).
    match i32::try_from(pid) {
        Ok(raw) if raw > 0 => !matches!(kill(Pid::from_raw(raw), None), Err(Errno::ESRCH)),
        _ => false,
    }
}

/// Without a portable probe, a worker's lease alone decides.
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}
