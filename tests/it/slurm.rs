//! `lab submit --slurm` against a real Slurm: tests/slurm/start.sh starts munge,
//! slurmctld and slurmd on loopback (a one-node cluster in a temporary
//! directory); experiments/quick.toml goes in as a job array, and once the
//! array is done its shards are merged and every trial must be in the store
//! exactly once. Needs root and Debian's slurm-wlm and munge (.ci/run installs
//! them): missing, the test fails under CI (CI set) and is skipped elsewhere.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Why this machine cannot run a Slurm node, if it cannot.
fn missing() -> Option<String> {
    let tools: Vec<&str> = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !tools.is_empty() {
        return Some(format!(
            "{} not installed (apt-get install -y slurm-wlm munge; .ci/run does this)",
            tools.join(", ")
        ));
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("slurmd must run as root".into());
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The daemons of tests/slurm/start.sh; stopped (by their pid files) on drop.
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let (ctld, slurmd) = (free_port(), free_port());
        let out = Command::new("bash")
            .arg(root().join("tests/slurm/start.sh"))
            .arg(dir)
            .args([ctld.to_string(), slurmd.to_string()])
            .output()
            .unwrap();
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf").display().to_string(),
        };
        assert!(
            out.status.success(),
            "tests/slurm/start.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        cmd
    }

    fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("tests/slurm/stop.sh"))
            .arg(&self.dir)
            .status();
    }
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn quick_sweep_as_a_slurm_array_lands_in_the_store_exactly_once() {
    if let Some(why) = missing() {
        if std::env::var_os("CI").is_some() {
            panic!("the Slurm test cannot run in CI: {why}");
        }
        eprintln!("skipping the Slurm test: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&tmp.path().join("slurm"));
    let lab = |args: &[&str]| {
        let mut cmd = cluster.cmd(env!("CARGO_BIN_EXE_lab"));
        cmd.args(args);
        cmd
    };
    let spec = root().join("experiments/quick.toml");
    let spec = spec.to_str().unwrap();
    let shards = tmp.path().join("shared/shards");
    let db = tmp.path().join("runs/lab.db");
    let submitted = Instant::now();
    let out = ok(lab(&[
        "--db",
        db.to_str().unwrap(),
        "submit",
        spec,
        "--slurm",
        "--shards",
        shards.to_str().unwrap(),
        "--max-parallel",
        "2",
        "--time",
        "00:30:00",
    ])
    .output()
    .unwrap());
    let job: u64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no job id in `{out}`"));
    // sbatch returns as soon as Slurm has the job; the tasks run on their own.
    eprintln!("job {job} submitted in {:?}", submitted.elapsed());

    // Wait until Slurm no longer lists the array.
    let start = Instant::now();
    loop {
        let queue = ok(cluster
            .cmd("squeue")
            .args(["-h", "-j", &job.to_string(), "-o", "%i %T"])
            .output()
            .unwrap());
        if queue.trim().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "the array did not finish in 15 minutes:\n{queue}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    let logs: Vec<_> = std::fs::read_dir(shards.join("logs")).unwrap().collect();
    let status = lab(&["status", "--shards", shards.to_str().unwrap()])
        .output()
        .unwrap();
    let status_text = String::from_utf8_lossy(&status.stderr).into_owned();
    assert!(
        status_text.contains(&format!("array {job} (quick): 4 tasks: 4 done")),
        "{status_text}\n{}\n{} task logs; {}",
        String::from_utf8_lossy(&status.stdout),
        logs.len(),
        cluster.logs()
    );

    // Shards keep a rollback journal, readable from other nodes.
    let shard = Connection::open(shards.join("shard-0/lab.db")).unwrap();
    let mode: String = shard
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(shard);

    let merge = || {
        ok(lab(&[
            "merge",
            shards.to_str().unwrap(),
            "--into",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap())
    };
    let merged = merge();
    assert!(merged.contains("4 trials added"), "{merged}");
    // Merging again adds nothing (checked below: every trial exactly once).
    merge();

    // Every trial of the grid, exactly once, done, with its epochs and metrics.
    let loaded = lab::spec::load(Path::new(spec), &[]).unwrap();
    let mut expected: Vec<String> = lab::spec::expand(&loaded)
        .unwrap()
        .iter()
        .map(lab::spec::config_hash)
        .collect();
    expected.sort();
    let conn = Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.config_hash, t.status,
                    (SELECT count(*) FROM epochs e WHERE e.trial_id = t.id),
                    (SELECT count(*) FROM metrics m WHERE m.trial_id = t.id AND m.split = 'test')
             FROM trials t ORDER BY t.config_hash",
        )
        .unwrap();
    let rows: Vec<(String, String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let hashes: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(hashes, expected, "every grid trial once");
    for (hash, status, epochs, metrics) in &rows {
        assert_eq!(status, "done", "{hash}");
        assert_eq!(*epochs, 4, "{hash}");
        assert!(*metrics > 0, "{hash}");
    }
    // The tasks ran on the Slurm node, each in its own shard.
    let workers: i64 = conn
        .query_row("SELECT count(DISTINCT worker) FROM trials", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(workers, 4);
    drop(cluster);
}
