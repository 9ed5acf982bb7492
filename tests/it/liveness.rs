//! Whether a running trial's worker is alive, as `lab run`, `lab worker` and
//! `lab status` judge it: a `host:pid` of this host by probing the process, a
//! worker of another host by its lease alone.

use lab::runner::{is_stale, this_host, worker_name};
use std::process::Command;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(120);

fn ago(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::TimeDelta::try_seconds(seconds).unwrap()).to_rfc3339()
}

#[test]
fn this_process_is_alive_and_named_host_colon_pid() {
    let me = worker_name();
    assert_eq!(me, format!("{}:{}", this_host(), std::process::id()));
    assert!(!this_host().is_empty());
    assert!(!is_stale(&me, Some(&ago(0)), LEASE));
    assert!(!is_stale(&me, None, LEASE));
    // Alive, but silent for longer than the lease: stale all the same.
    assert!(is_stale(&me, Some(&ago(600)), LEASE));
}

#[test]
fn a_live_child_is_alive_and_a_reaped_one_is_not() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let worker = format!("{}:{}", this_host(), child.id());
    assert!(!is_stale(&worker, Some(&ago(0)), LEASE));
    child.kill().unwrap();
    child.wait().unwrap();
    // Gone: stale at once, whatever its last heartbeat says.
    assert!(is_stale(&worker, Some(&ago(0)), LEASE));
    assert!(is_stale(&worker, None, LEASE));
    // Pid 0 names no process (kill(0) would signal our own group).
    assert!(is_stale(&format!("{}:0", this_host()), None, LEASE));
}

#[test]
fn another_hosts_worker_is_judged_by_its_lease_only() {
    // A pid that does not exist here: were it judged as this host's, it would be dead.
    let worker = format!("not-{}:4194303", this_host());
    assert!(!is_stale(&worker, Some(&ago(0)), LEASE));
    assert!(!is_stale(&worker, None, LEASE));
    assert!(is_stale(&worker, Some(&ago(600)), LEASE));
    // A worker name without a pid is never taken for dead either.
    assert!(!is_stale("legacy-worker", Some(&ago(0)), LEASE));
}
