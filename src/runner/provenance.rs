//! Where and how a trial ran, recorded with it (`trials.provenance`, JSON): the
//! lab build, the spec's git commit, the data file's sha256, the machine, and
//! the trial's wall and CPU time. Recorded when the trial starts (times null)
//! and again when it is recorded done. Nothing here fails a trial: a fact that
//! cannot be found (no git, not a repository, no `/proc/cpuinfo`) is null.
//!
//! The costly facts are found once per process: the CPU model and features,
//! the git state of each spec directory, and each data file's sha256 (hashed
//! again only when its size or modification time changes).

use crate::data;
use crate::spec::TrialConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime};

/// One trial's provenance, as recorded (JSON keys are the field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// This lab's version (`Cargo.toml`).
    pub lab_version: String,
    /// Whether this lab was built with the `cuda` feature.
    pub cuda: bool,
    /// The cargo features this lab was built with (`cuda`, `png`, `hf-download`).
    pub build_features: Vec<String>,
    /// CPU instruction-set extensions detected at run time (`avx2`, `fma`,
    /// `avx512f`, `neon`, ...), of those lab's kernels and candle can use.
    pub cpu_features: Vec<String>,
    /// The commit checked out in the spec file's git repository (40 hex digits,
    /// 64 in a SHA-256 repository); null outside a repository or without git.
    pub git_commit: Option<String>,
    /// Whether tracked files of that repository differ from the commit
    /// (untracked files are not counted); null when `git_commit` is.
    pub git_dirty: Option<bool>,
    /// The data file as read (its canonical path, or the `hf://` name).
    pub data_file: String,
    /// sha256 (hex) of the data file's bytes (an `hf://` dataset: of its Parquet
    /// files' bytes in reading order); null when it could not be read.
    pub data_sha256: Option<String>,
    /// The host name.
    pub host: String,
    /// The CPU model (`model name` of `/proc/cpuinfo`); null when not found.
    pub cpu_model: Option<String>,
    /// CPU compute threads this process uses.
    pub threads: usize,
    /// The device the trial trains on (`cpu`, `cuda:0`).
    pub device: String,
    /// The operating system (`linux`, `macos`, ...).
    pub os: String,
    /// The CPU architecture (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Seconds from the trial's start to its result being recorded (this
    /// attempt only: a resumed trial counts from its resumption); null until then.
    pub wall_seconds: Option<f64>,
    /// CPU seconds (user + system, every thread of the process) over the same
    /// span; null until then, and on systems without `getrusage`.
    pub cpu_seconds: Option<f64>,
}

impl Provenance {
    /// The facts of a trial about to run `config` (relative paths resolved
    /// against `base_dir`, the spec file's directory) on the device `device`
    /// (its recorded name); wall and CPU seconds are null.
    pub fn collect(config: &TrialConfig, base_dir: &Path, device: &str) -> Provenance {
        let path = data::data_path(&config.data, base_dir);
        let path = std::fs::canonicalize(&path)
            .or_else(|_| std::path::absolute(&path))
            .unwrap_or(path);
        let git = git_state(base_dir);
        Provenance {
            lab_version: env!("CARGO_PKG_VERSION").into(),
            cuda: cfg!(feature = "cuda"),
            build_features: build_features(),
            cpu_features: cpu_features().clone(),
            git_commit: git.commit,
            git_dirty: git.dirty,
            data_file: path.display().to_string(),
            data_sha256: data_sha256(&path),
            host: super::this_host().to_string(),
            cpu_model: cpu_model().clone(),
            threads: super::device::cpu_threads(),
            device: device.to_string(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            wall_seconds: None,
            cpu_seconds: None,
        }
    }

    /// These facts with the wall and CPU seconds `clock` has counted so far.
    pub fn finished(&self, clock: &Clock) -> Provenance {
        Provenance {
            wall_seconds: Some(clock.wall_seconds()),
            cpu_seconds: clock.cpu_seconds(),
            ..self.clone()
        }
    }

    /// As recorded: one JSON object.
    pub fn to_json(&self) -> String {
        // Strings, numbers and booleans always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A trial's wall clock and its process's CPU time, from when it was started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: Instant,
    cpu: Option<f64>,
}

impl Clock {
    /// Start counting now.
    pub fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: process_cpu_seconds(),
        }
    }

    /// Seconds since [`Clock::start`].
    pub fn wall_seconds(&self) -> f64 {
        self.wall.elapsed().as_secs_f64()
    }

    /// CPU seconds (user + system) the process used since [`Clock::start`];
    /// `None` where the system does not say.
    pub fn cpu_seconds(&self) -> Option<f64> {
        Some(process_cpu_seconds()? - self.cpu?)
    }
}

/// User + system CPU seconds of this process, every thread (`--jobs` runs
/// trials in separate processes, so one process runs one trial at a time).
fn process_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{getrusage, UsageWho};
        let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
        let seconds =
            |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1_000_000.0;
        Some(seconds(usage.user_time()) + seconds(usage.system_time()))
    }
    #[cfg(not(unix))]
    None
}

fn build_features() -> Vec<String> {
    [
        ("cuda", cfg!(feature = "cuda")),
        ("png", cfg!(feature = "png")),
        ("hf-download", cfg!(feature = "hf-download")),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| name.to_string())
    .collect()
}

/// The CPU extensions detected at run time, found once per process.
fn cpu_features() -> &'static Vec<String> {
    static FOUND: OnceLock<Vec<String>> = OnceLock::new();
    FOUND.get_or_init(|| {
        #[allow(unused_mut)]
        let mut found: Vec<&str> = Vec::new();
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            macro_rules! probe {
                ($($f:tt),*) => {$(
                    if std::arch::is_x86_feature_detected!($f) { found.push($f); }
                )*};
            }
            probe!("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl");
        }
        #[cfg(target_arch = "aarch64")]
        {
            macro_rules! probe {
                ($($f:tt),*) => {$(
                    if std::arch::is_aarch64_feature_detected!($f) { found.push($f); }
                )*};
            }
            probe!("neon", "fp16", "dotprod", "sve");
        }
        found.into_iter().map(String::from).collect()
    })
}

/// `model name` of `/proc/cpuinfo` (its first processor), found once per process.
fn cpu_model() -> &'static Option<String> {
    static MODEL: OnceLock<Option<String>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        model_name(&text)
    })
}

/// The first `model name : ...` value of a `/proc/cpuinfo` text.
fn model_name(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A directory's git commit and whether its tracked files differ from it.
#[derive(Debug, Clone, Default, PartialEq)]
struct GitState {
    commit: Option<String>,
    dirty: Option<bool>,
}

/// The git state of `dir`'s repository, found once per directory per process.
fn git_state(dir: &Path) -> GitState {
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, GitState>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let key = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if let Some(state) = seen.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return state;
    }
    let commit = git(&key, &["rev-parse", "--verify", "--quiet", "HEAD"]).filter(|c| is_commit(c));
    let dirty = commit.as_ref().and_then(|_| {
        git(&key, &["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty())
    });
    let state = GitState { commit, dirty };
    if let Ok(mut m) = seen.lock() {
        m.insert(key, state.clone());
    }
    state
}

/// `git -C dir ARGS`' trimmed output when it succeeds; `None` when git is
/// missing or fails (not a repository, no commit yet, a repository git refuses).
/// The caller's `GIT_DIR`-style variables are not passed on: `dir` decides.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_TERMINAL_PROMPT", "0")
        // `status` would otherwise refresh (write) the index of the user's tree.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn is_commit(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// sha256 of the bytes of `path`'s source files in order, computed once per
/// process while their sizes and modification times stay the same.
fn data_sha256(path: &Path) -> Option<String> {
    type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;
    static SEEN: OnceLock<Mutex<HashMap<Stamp, String>>> = OnceLock::new();
    let files = data::read::source_files(path).ok()?;
    let stamp: Stamp = files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((f.clone(), meta.len(), meta.modified().ok()))
        })
        .collect::<Option<_>>()?;
    let seen = SEEN.get_or_init(Default::default);
    if let Some(hash) = seen.lock().ok().and_then(|m| m.get(&stamp).cloned()) {
        return Some(hash);
    }
    let mut hash = Sha256::new();
    for file in &files {
        let mut f = data::read::open_regular(file, "data file").ok()?;
        std::io::copy(&mut f, &mut hash).ok()?;
    }
    let hex = hex::encode(hash.finalize());
    if let Ok(mut m) = seen.lock() {
        m.insert(stamp, hex.clone());
    }
    Some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_model_is_the_first_model_name() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(
            model_name(text).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(model_name("processor : 0\nBogoMIPS : 50\n"), None);
        assert_eq!(model_name("model name :   \n"), None);
    }

    #[test]
    fn outside_a_repository_git_is_null_not_an_error() {
        let dir = tempfile::TempDir::new().unwrap();
        assert_eq!(git_state(dir.path()), GitState::default());
        assert_eq!(git_state(&dir.path().join("missing")), GitState::default());
        assert!(is_commit(&"a".repeat(40)) && is_commit(&"0".repeat(64)));
        assert!(!is_commit("HEAD") && !is_commit(&"A".repeat(40)));
    }

    #[test]
    fn the_data_hash_is_the_files_sha256_and_follows_changes() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            data_sha256(&path).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        std::fs::write(&path, b"abcd").unwrap();
        assert_eq!(
            data_sha256(&path).as_deref(),
            Some("88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")
        );
        assert_eq!(data_sha256(&dir.path().join("missing")), None);
    }

    #[test]
    fn a_clock_counts_wall_and_cpu_time() {
        let clock = Clock::start();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(clock.wall_seconds() > 0.0);
        #[cfg(unix)]
        assert!(clock.cpu_seconds().unwrap() >= 0.0);
    }
}
