//! SIGINT and SIGTERM as a request to stop training cleanly.
//!
//! The commands that hold trials (`lab run`, `lab worker`, and the parent of
//! `--jobs`) call [`install`]. The first signal only sets a flag: training
//! checks it before each batch ([`requested`], one relaxed atomic load) and
//! abandons the epoch in progress; the runner puts the trial back to pending
//! with its recorded epochs and checkpoint, so the next run resumes it from the
//! last finished epoch with the same numbers. The handler resets itself
//! (`SA_RESETHAND`), so a second signal of the same kind ends the process at
//! once, as if no handler were installed.
//!
//! Other commands install nothing: Ctrl-C ends them at once, as usual.

use std::sync::atomic::{AtomicI32, Ordering};

/// The first stop signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// A run stopped by a signal before its work was done; the trial it held (if
/// any) was put back to pending and resumes on the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", signal_name(*.signal))]
pub struct Interrupted {
    /// The signal's number (2: SIGINT, 15: SIGTERM).
    pub signal: i32,
}

/// The signal asking this process to stop, if one arrived since [`install`].
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        signal => Some(signal),
    }
}

/// `Err(Interrupted)` once a stop signal has arrived.
///
/// # Errors
/// [`Interrupted`], naming the signal, when one arrived.
pub fn check() -> Result<(), Interrupted> {
    match requested() {
        None => Ok(()),
        Some(signal) => Err(Interrupted { signal }),
    }
}

/// "SIGINT", "SIGTERM", or "signal N".
pub fn signal_name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// Records the first stop signal. Only an atomic store: async-signal-safe.
#[cfg(unix)]
extern "C" fn on_signal(signal: std::ffi::c_int) {
    let _ = SIGNAL.compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed);
}

/// Handle SIGINT and SIGTERM for this process as described in the module
/// documentation (call once, before any trial is claimed).
///
/// # Errors
/// The handler cannot be installed (the system refused `sigaction`).
#[cfg(unix)]
pub fn install() -> std::io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        // Restart interrupted system calls (SQLite, sleeps, reads); the second
        // signal gets the default action (the process ends).
        SaFlags::SA_RESTART | SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Without Unix signals there is nothing to install: Ctrl-C ends the process,
/// and the stale-worker check resumes its trial later.
///
/// # Errors
/// None.
#[cfg(not(unix))]
pub fn install() -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named() {
        assert_eq!(signal_name(2), "SIGINT");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(1), "signal 1");
        assert_eq!(
            Interrupted { signal: 15 }.to_string(),
            "interrupted by SIGTERM"
        );
    }
}
