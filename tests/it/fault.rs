//! Syscall-level fault injection for the tests that need a failure nothing else
//! can cause (a full disk on the WAL, a write refused mid-checkpoint): the real
//! `lab` binary run under `strace -f -e inject=...` (Debian package `strace`;
//! `.ci/run` installs it). Where strace cannot ptrace (some containers forbid
//! it), [`strace_inject`] says so and returns `None`: the test skips.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `cmd` run under strace so that the `when`th call (strace's syntax: `3`,
/// `3+`, `2..4`...) of `syscall` (one name, or strace's `%file`-style class)
/// in it or any child fails with `errno` (`ENOSPC`, `EIO`, `EINTR`...). The
/// program, arguments, environment and working directory are copied; set
/// stdio on the result. `None` (with a message on stderr) only where ptrace is
/// not permitted; panics when strace is not installed.
///
/// ```ignore
/// let Some(mut cmd) = fault::strace_inject(&lab_cmd, "fsync", "EIO", "2") else { return };
/// ```
pub fn strace_inject(cmd: &Command, syscall: &str, errno: &str, when: &str) -> Option<Command> {
    wrap(cmd, None, syscall, errno, when)
}

/// [`strace_inject`] counting and failing only the calls on `path` (strace
/// `-P`: calls naming the path or using a descriptor open on it), e.g. the
/// `lab.db-wal` file's `write`s.
pub fn strace_inject_on(
    cmd: &Command,
    path: &Path,
    syscall: &str,
    errno: &str,
    when: &str,
) -> Option<Command> {
    wrap(cmd, Some(path), syscall, errno, when)
}

fn wrap(
    cmd: &Command,
    path: Option<&Path>,
    syscall: &str,
    errno: &str,
    when: &str,
) -> Option<Command> {
    if let Err(why) = can_ptrace() {
        eprintln!(
            "SKIPPED: strace cannot trace here ({why}); the fault-injection test did not run"
        );
        return None;
    }
    let mut out = Command::new("strace");
    // -qq: no attach/exit notes; -o /dev/null: the trace itself is not wanted,
    // so the program's stderr is its own.
    out.args(["-f", "-qq", "-o", "/dev/null"]);
    if let Some(path) = path {
        out.arg("-P").arg(path);
    }
    out.arg("-e")
        .arg(format!("inject={syscall}:error={errno}:when={when}"));
    out.arg("--").arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => out.env(key, value),
            None => out.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        out.current_dir(dir);
    }
    Some(out)
}

/// Ok when `strace` can trace a child here; the reason otherwise. Panics when
/// strace is missing: that is a setup error, not a container's limit.
pub fn can_ptrace() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let out = Command::new("strace")
                .args([
                    "-f",
                    "-qq",
                    "-o",
                    "/dev/null",
                    "-e",
                    "inject=getpid:error=EPERM:when=1",
                    "true",
                ])
                .stdin(Stdio::null())
                .output();
            let out = match out {
                Ok(out) => out,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "strace is not installed: the fault-injection tests need it \
                     (apt-get install -y strace; .ci/run does this)"
                ),
                Err(e) => return Err(format!("cannot start strace: {e}")),
            };
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
            }
        })
        .clone()
}

#[test]
fn an_injected_error_reaches_the_program_and_only_the_named_call() {
    let mut sh = Command::new("sh");
    sh.args(["-c", "echo a; echo b; echo c"]);
    let Some(mut cmd) = strace_inject(&sh, "write", "ENOSPC", "2") else {
        return;
    };
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nc\n");
    // The shell reports the failed write (dash says "I/O error" whatever the errno).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error"), "{stderr}");
}

#[test]
fn an_injection_on_one_path_leaves_other_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut sh = Command::new("sh");
    sh.args(["-c", "echo 1 > a; echo 2 > b; echo 3 >> a"])
        .current_dir(dir.path());
    let Some(mut cmd) = strace_inject_on(&sh, &b, "write", "EIO", "1+") else {
        return;
    };
    cmd.stderr(Stdio::null()).status().unwrap();
    assert_eq!(std::fs::read_to_string(a).unwrap(), "1\n3\n");
    assert_eq!(std::fs::read_to_string(b).unwrap(), "");
}
