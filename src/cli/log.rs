//! Diagnostics (progress lines, "wrote …", warnings, notes) go through `tracing`
//! to stderr, never to stdout. `-q` keeps warnings and errors, `-v` adds debug
//! lines, `-vv` trace; `RUST_LOG` (an env-filter directive) wins over both. On a
//! terminal a line is the message alone, `warning: ` / `error: ` / `debug: `
//! before the other levels' messages; elsewhere (files, CI, pipes) the same line
//! follows a UTC timestamp. While progress bars are drawn, a log line clears
//! them, prints, and lets them redraw below it.

use indicatif::MultiProgress;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The progress bars being drawn, if any: log lines suspend them.
static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// `-q` and the count of `-v`, for the child processes of `--jobs`.
static VERBOSITY: OnceLock<(bool, u8)> = OnceLock::new();

/// Install the stderr logger for this process (once; later calls do nothing).
pub fn init(quiet: bool, verbose: u8) {
    let _ = VERBOSITY.set((quiet, verbose));
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::builder().parse_lossy(directives)
        }
        _ => EnvFilter::new(default_directives(quiet, verbose)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(Line {
            timestamps: !io::stderr().is_terminal(),
        })
        .with_writer(|| Stderr)
        .try_init();
}

/// Our own crate at the chosen level, everything else at warn unless verbose;
/// `lab serve`'s access lines (tower-http's trace layer) count as our own.
fn default_directives(quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn,lab=info,tower_http=info",
        (false, 1) => "info,lab=debug,tower_http=debug",
        (false, _) => "debug,lab=trace",
    }
}

/// `-q` / `-v` as given to this process, to pass on to the processes of `--jobs`.
pub fn child_flags() -> Vec<OsString> {
    match VERBOSITY.get() {
        Some((true, _)) => vec!["--quiet".into()],
        Some((false, n)) => (0..*n).map(|_| "--verbose".into()).collect(),
        None => Vec::new(),
    }
}

/// Whether `-q` was given: no progress bars either.
pub fn quiet() -> bool {
    matches!(VERBOSITY.get(), Some((true, _)))
}

/// Register the progress bars being drawn (`None` when they are gone), so that
/// log lines are printed above them instead of through them.
pub fn set_bars(bars: Option<MultiProgress>) {
    if let Ok(mut slot) = BARS.lock() {
        *slot = bars;
    }
}

/// stderr, with the bars (if any) cleared while a line is written. Write errors
/// are dropped: a closed stderr must not stop the work.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bars = BARS.lock().ok().and_then(|slot| slot.clone());
        let write = || {
            let _ = io::stderr().write_all(buf);
        };
        match bars {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// One line per event: `warning: message` on a terminal, `<UTC time> warning:
/// message` elsewhere (info lines carry no label).
struct Line {
    timestamps: bool,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.timestamps {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            write!(writer, "{now} ")?;
        }
        writer.write_str(match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        })?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::default_directives;

    #[test]
    fn quiet_keeps_warnings_and_verbose_adds_debug() {
        assert_eq!(default_directives(true, 2), "warn");
        assert_eq!(
            default_directives(false, 0),
            "warn,lab=info,tower_http=info"
        );
        assert_eq!(
            default_directives(false, 1),
            "info,lab=debug,tower_http=debug"
        );
        assert_eq!(default_directives(false, 3), "debug,lab=trace");
    }
}
