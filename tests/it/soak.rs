//! The kill-and-resume soak test (issue 14): a sweep of 8 small trials is
//! interrupted at random moments by `kill -9` (and a few SIGTERMs) of a `lab run`,
//! a `lab run --jobs 2` or one of two concurrent `lab run`s, and resumed each time
//! by the next `lab run`. In the end the store must pass the checker of
//! `store_check` and hold the same numbers, bit for bit, as an uninterrupted run.
//!
//! Random but replayable: the seed is printed first (`LAB_SOAK_SEED=N` replays
//! it); `LAB_SOAK_KILLS` (default 20) and `LAB_SOAK_TERMS` (default 4) set how
//! many signals are sent. When the sweep finishes before they are all sent, it
//! is checked and started again in a fresh store.

use crate::crash::{fingerprint, run_cmd, Fingerprint};
use crate::store_check;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 2 cells x 4 seeds, 3 epochs each, small enough for a debug build.
const SETS: &[&str] = &[
    "experiment.seeds=[1,2,3,4]",
    "sweep.model.cell=[\"lstm\",\"gru\"]",
    "train.epochs=3",
    "data.limit=600",
    "model.hidden=16",
    "model.embedding_dim=16",
];
const TRIALS: usize = 8;
const NAME: &str = "soak";

/// Checkpoints and `.tmp` files left behind are fault 10 of issue 14, fixed
/// separately: until then they are printed, not failed on.
const CHECK_LEFTOVERS: bool = false;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a whole number")),
        Err(_) => default,
    }
}

/// `lab run` of the soak spec, one thread per process (the numbers compared bit
/// for bit must not depend on how threads split the work), in its own process
/// group so that a signal reaches `--jobs` children too.
fn soak_cmd(db: &Path, extra: &[&str], log: &Path) -> Command {
    let mut cmd = run_cmd(db, NAME, SETS);
    cmd.args(extra)
        .env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .process_group(0);
    cmd
}

/// The members of process group `pgid` that are not zombies (Linux `/proc`).
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ')'.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .collect()
}

/// One started `lab run` (a process group) and what happened to it.
struct Proc {
    child: Child,
    log: PathBuf,
    signalled: Option<&'static str>,
}

struct Soak {
    seed: u64,
    rng: ChaCha8Rng,
    dir: PathBuf,
    db: PathBuf,
    cycle: usize,
    round: usize,
    kills: u64,
    terms: u64,
    /// The longest wait before a signal: about two trials' time.
    max_delay_ms: u64,
    events: Vec<String>,
}

impl Soak {
    fn context(&self) -> String {
        format!(
            "soak seed {} (replay: LAB_SOAK_SEED={} cargo test --test it soak::), events:\n{}",
            self.seed,
            self.seed,
            self.events.join("\n")
        )
    }

    fn all_done(&self) -> bool {
        let Ok(conn) = rusqlite::Connection::open(&self.db) else {
            return false;
        };
        let done: rusqlite::Result<i64> = conn.query_row(
            "SELECT count(*) FROM trials WHERE status = 'done'",
            [],
            |r| r.get(0),
        );
        done.is_ok_and(|n| n as usize == TRIALS)
    }

    fn spawn(&mut self, extra: &[&str]) -> Proc {
        let log = self.dir.join(format!(
            "cycle{}-round{}-{}.log",
            self.cycle,
            self.round,
            self.events.len()
        ));
        let child = soak_cmd(&self.db, extra, &log).spawn().unwrap();
        Proc {
            child,
            log,
            signalled: None,
        }
    }

    /// A signal from what is left to send: SIGKILL or SIGTERM in proportion.
    fn draw_signal(&mut self) -> Option<Signal> {
        let left = self.kills + self.terms;
        if left == 0 {
            return None;
        }
        if self.rng.gen_range(0..left) < self.terms {
            Some(Signal::SIGTERM)
        } else {
            Some(Signal::SIGKILL)
        }
    }

    /// One round: start a `lab run` (or `--jobs 2`, or two of them), signal each
    /// at a random moment, wait for all of them.
    fn round(&mut self) {
        self.round += 1;
        let (mode, mut procs) = match self.rng.gen_range(0..4) {
            0 | 1 => ("run", vec![self.spawn(&[])]),
            2 => ("run --jobs 2", vec![self.spawn(&["--jobs", "2"])]),
            _ => ("two runs", vec![self.spawn(&[]), self.spawn(&[])]),
        };
        let start = Instant::now();
        let mut delays: Vec<u64> = (0..procs.len())
            .map(|_| self.rng.gen_range(0..=self.max_delay_ms))
            .collect();
        delays.sort_unstable();
        for (proc, delay) in procs.iter_mut().zip(delays) {
            let at = start + Duration::from_millis(delay);
            while Instant::now() < at && proc.child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let Some(signal) = self.draw_signal() else {
                break;
            };
            let what = if proc.child.try_wait().unwrap().is_some() {
                "had already exited".to_string()
            } else {
                killpg(Pid::from_raw(proc.child.id() as i32), signal).unwrap();
                match signal {
                    Signal::SIGTERM => self.terms -= 1,
                    _ => self.kills -= 1,
                }
                proc.signalled = Some(signal.as_str());
                format!("{signal}")
            };
            self.events.push(format!(
                "cycle {} round {} ({mode}): pid {} at {delay} ms: {what}",
                self.cycle,
                self.round,
                proc.child.id()
            ));
        }
        for proc in procs {
            self.wait(proc);
        }
    }

    /// Wait for a process group to end; one not signalled must have succeeded.
    fn wait(&mut self, mut proc: Proc) {
        let pgid = proc.child.id();
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(status) = proc.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "lab run hangs; {}",
                self.context()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // Jobs of a --jobs run outlive their parent by a moment.
        while !group_members(pgid).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the jobs of pid {pgid} do not end; {}",
                self.context()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
        if proc.signalled.is_none() {
            assert!(
                status.success(),
                "an unsignalled lab run failed ({status}):\n{log}\n{}",
                self.context()
            );
        }
        assert!(
            !log.contains("panicked"),
            "lab run panicked:\n{log}\n{}",
            self.context()
        );
    }

    /// Finish the sweep uninterrupted, then check the store and its numbers.
    fn finish_cycle(&mut self, reference: &Fingerprint) {
        let log = self.dir.join(format!("cycle{}-final.log", self.cycle));
        let proc = Proc {
            child: soak_cmd(&self.db, &[], &log).spawn().unwrap(),
            log,
            signalled: None,
        };
        self.wait(proc);
        let found = store_check::violations(&self.db);
        assert!(
            found.is_empty(),
            "cycle {}: {found:#?}\n{}",
            self.cycle,
            self.context()
        );
        let leftovers = store_check::leftovers(&self.db);
        if CHECK_LEFTOVERS {
            assert!(leftovers.is_empty(), "{leftovers:#?}\n{}", self.context());
        } else if !leftovers.is_empty() {
            eprintln!("soak: leftovers (not yet failed on): {leftovers:#?}");
        }
        assert!(
            fingerprint(&self.db, NAME) == *reference,
            "cycle {}: the numbers differ from an uninterrupted run\n{}",
            self.cycle,
            self.context()
        );
    }

    fn next_cycle(&mut self) {
        self.cycle += 1;
        let store = self.dir.join(format!("cycle{}", self.cycle));
        std::fs::create_dir_all(&store).unwrap();
        self.db = store.join("lab.db");
    }
}

#[test]
fn random_kills_and_resumes_end_clean_and_as_an_uninterrupted_run() {
    let seed = env_number(
        "LAB_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            % 1_000_000_007,
    );
    let kills = env_number("LAB_SOAK_KILLS", 20);
    let terms = env_number("LAB_SOAK_TERMS", 4);
    eprintln!(
        "soak: seed {seed}, {kills} SIGKILLs, {terms} SIGTERMs (LAB_SOAK_SEED={seed} replays it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let began = Instant::now();

    // The uninterrupted run: its numbers, and its pace for the random delays.
    let reference_db = tmp.path().join("reference/lab.db");
    std::fs::create_dir_all(reference_db.parent().unwrap()).unwrap();
    let log = tmp.path().join("reference.log");
    let out = soak_cmd(&reference_db, &[], &log).status().unwrap();
    assert!(out.success(), "{}", std::fs::read_to_string(&log).unwrap());
    let took = began.elapsed();
    let reference = fingerprint(&reference_db, NAME);
    assert_eq!(reference.len(), TRIALS);
    store_check::assert_clean(&reference_db);

    let mut soak = Soak {
        seed,
        rng: ChaCha8Rng::seed_from_u64(seed),
        dir: tmp.path().to_path_buf(),
        db: PathBuf::new(),
        cycle: 0,
        round: 0,
        kills,
        terms,
        max_delay_ms: (took.as_millis() as u64 * 2 / TRIALS as u64).max(200),
        events: Vec::new(),
    };
    soak.next_cycle();
    while soak.kills + soak.terms > 0 {
        if soak.all_done() {
            soak.finish_cycle(&reference);
            soak.next_cycle();
        }
        soak.round();
    }
    soak.finish_cycle(&reference);
    eprintln!(
        "soak: seed {seed}: {} rounds in {} cycles, {:.1} s (the reference run {:.1} s)",
        soak.round,
        soak.cycle,
        began.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
}
