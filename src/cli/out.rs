//! stdout carries results only (tables, JSON, ids), written through here so that
//! a closed pipe (`lab compare | head -1`) ends lab quietly with status 0, as
//! ripgrep does, instead of the panic of `println!`.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicI32, Ordering};

/// The status a closed stdout ends lab with: 0, unless the command already knows
/// a worse outcome (a failed trial), which a reader that stops early must not hide.
static ON_CLOSED_PIPE: AtomicI32 = AtomicI32::new(super::exit::OK);

/// Records the command's outcome so far (an exit code of [`super::exit`]), so
/// that a closed stdout from here on exits with it instead of 0.
pub fn set_outcome(code: i32) {
    ON_CLOSED_PIPE.store(code, Ordering::Relaxed);
}

/// Writes `text` and a newline to stdout.
///
/// # Errors
/// A write error other than a closed pipe (which exits the process with status 0,
/// or the outcome given to [`set_outcome`]).
pub fn line(text: impl Display) -> io::Result<()> {
    let mut out = Stdout;
    writeln!(out, "{text}")?;
    out.flush()
}

/// Writes `text` to stdout as it is (no newline added).
///
/// # Errors
/// A write error other than a closed pipe (which exits the process with status 0).
pub fn text(text: impl Display) -> io::Result<()> {
    let mut out = Stdout;
    write!(out, "{text}")?;
    out.flush()
}

/// stdout as a [`Write`] for code that streams (CSV annotation, completions, the
/// man page): a closed pipe exits the process with status 0.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        quiet_on_closed_pipe(io::stdout().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        quiet_on_closed_pipe(io::stdout().flush())
    }
}

/// The reader of our stdout is gone: nothing more can be delivered, and that is
/// the reader's choice, not an error.
fn quiet_on_closed_pipe<T>(result: io::Result<T>) -> io::Result<T> {
    if let Err(err) = &result {
        if err.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(ON_CLOSED_PIPE.load(Ordering::Relaxed));
        }
    }
    result
}
