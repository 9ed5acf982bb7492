//! The CUDA build made without a GPU (bench/cuda-build.sh → target/cuda/lab) and
//! the GPU box's check script (bench/gpu.sh, bench/gpu_report.py), tested on a
//! machine without a GPU:
//!
//! - target/cuda/lab starts without any CUDA library, refuses `--device cuda:0` with
//!   an error naming the device and the missing driver (exit 1, no panic), and
//!   trains on the CPU (`--device cpu`, and `auto` falling back). Skipped, saying
//!   why, when target/cuda/lab is not built (CI does not build it: about 20
//!   minutes) or when this machine has an NVIDIA driver.
//! - `bench/gpu.sh --dry-run` prints every command and names a missing file.
//! - bench/gpu_report.py turns a store and step outputs into the tables (needs python3).

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Why the CUDA binary test cannot run here, if it cannot.
fn cuda_binary_missing(bin: &Path) -> Option<String> {
    if !bin.is_file() {
        return Some(format!(
            "{} is not built (bash bench/cuda-build.sh builds it)",
            bin.display()
        ));
    }
    // With a driver the binary may well open the GPU: this test is for machines without.
    if Path::new("/proc/driver/nvidia/version").exists() {
        return Some("this machine has an NVIDIA driver".into());
    }
    None
}

fn run_cuda_lab(bin: &Path, db: &Path, device: &str) -> Output {
    Command::new(bin)
        .args(["run", "experiments/quick.toml", "--device", device, "--db"])
        .arg(db)
        .args(["--set", "experiment.seeds=[1]", "--set", "train.epochs=1"])
        .current_dir(root())
        .output()
        .expect("target/cuda/lab starts")
}

#[test]
fn the_cuda_binary_without_a_driver_refuses_the_gpu_and_trains_on_the_cpu() {
    let bin = root().join("target/cuda/lab");
    if let Some(why) = cuda_binary_missing(&bin) {
        eprintln!("skipping the CUDA binary test: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    let out = run_cuda_lab(&bin, &tmp.path().join("gpu.db"), "cuda:0");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("cuda:0"), "names the device: {stderr}");
    // No driver library at all, or (a container with the driver's libraries) no GPU.
    assert!(
        stderr.contains("no NVIDIA driver") || stderr.contains("cannot open CUDA device cuda:0"),
        "says what is missing: {stderr}"
    );

    for device in ["cpu", "auto"] {
        let db = tmp.path().join(format!("{device}.db"));
        let out = run_cuda_lab(&bin, &db, device);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "--device {device}:\n{stdout}\n{stderr}"
        );
        let conn = rusqlite::Connection::open(&db).unwrap();
        let devices: Vec<String> = conn
            // The device it ran on (trials.device keeps the one asked for: `auto`).
            .prepare(
                "SELECT json_extract(provenance, '$.device') FROM trials WHERE status = 'done'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // quick.toml: two cells, one seed here.
        assert_eq!(devices, ["cpu", "cpu"], "--device {device}");
    }
}

fn gpu_sh(args: &[&str], bin_dir: &Path, out_env: Option<&Path>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("bench/gpu.sh"))
        .args(args)
        .env("LAB_CUDA_DIR", bin_dir)
        .env_remove("OUT")
        .current_dir(root());
    if let Some(dir) = out_env {
        cmd.env("OUT", dir);
    }
    cmd.output().expect("bash runs")
}

/// A directory with (empty) stand-ins for the binaries bench/gpu.sh needs.
fn fake_binaries(dir: &Path, names: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in names {
        std::fs::write(bin.join(name), "").unwrap();
    }
    bin
}

#[test]
fn gpu_sh_dry_run_prints_every_command_and_names_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let bin = fake_binaries(tmp.path(), &["lab", "bench_step"]);

    let out = gpu_sh(&["--dry-run"], &bin, Some(&out_dir));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lab = bin.join("lab").display().to_string();
    let step = bin.join("bench_step").display().to_string();
    let mut expected = vec![
        format!("{lab} run experiments/quick.toml --device cuda:0"),
        format!("{lab} run experiments/quick.toml --device cpu"),
        format!("{lab} run experiments/bilstm.toml --device cuda:0"),
        "nvidia-smi --query-gpu".into(),
        format!("python3 bench/gpu_report.py {}", out_dir.display()),
    ];
    for m in ["lstm", "gru", "bilstm", "lstm2"] {
        expected.push(format!("{step} {m} --device cuda:0"));
        expected.push(format!("{step} {m} --device cpu"));
        expected.push(format!("bench/torch_step.py {m} --device cuda"));
    }
    for e in &expected {
        assert!(stdout.contains(e.as_str()), "missing `{e}` in:\n{stdout}");
    }
    assert!(stdout
        .lines()
        .any(|l| l.trim() == "[nvidia-smi, 15s] nvidia-smi"));
    assert!(!out_dir.exists(), "a dry run writes nothing");

    // `--out` wins over $OUT; a missing binary is named, and nothing runs.
    let bin2 = fake_binaries(&tmp.path().join("other"), &["lab"]);
    let out = gpu_sh(&["--out", "x", "--dry-run"], &bin2, Some(&out_dir));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("bench_step"), "{stderr}");
    assert!(!stderr.contains("/lab "), "only the missing file: {stderr}");
    assert!(stdout.is_empty(), "{stdout}");

    // Only the .xz copies (what is carried): unpacked into DIR/bin, and run from there.
    let packed = fake_binaries(&tmp.path().join("packed"), &["lab.xz", "bench_step.xz"]);
    let out = gpu_sh(&["--dry-run"], &packed, Some(&out_dir));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for name in ["lab", "bench_step"] {
        let unpacked = out_dir.join("bin").join(name).display().to_string();
        assert!(
            stdout.contains(&format!("{name}.xz -> {unpacked}")),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("{unpacked} ")), "{stdout}");
    }

    let out = gpu_sh(&["--dry-run"], &bin, None);
    assert_eq!(out.status.code(), Some(2), "no --out and no $OUT");
    assert!(text(&out).1.contains("--out DIR"));
}

fn have_python() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn gpu_report_compares_the_devices_and_tabulates_the_steps() {
    if !have_python() {
        eprintln!("skipping the gpu_report.py test: no python3");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    // The same store as both devices: the accuracies agree exactly.
    let trained = common::trained();
    for name in ["quick-cuda.db", "quick-cpu.db"] {
        std::fs::copy(&trained.db, dir.join(name)).unwrap();
    }
    let write = |name: &str, body: &str| std::fs::write(dir.join(name), body).unwrap();
    write(
        "logs/gpu-info.out",
        "name, driver_version, memory.total [MiB], compute_cap\nNVIDIA H200, 580.95.05, 143771 MiB, 9.0\n",
    );
    write(
        "logs/step-lab-cuda-lstm.out",
        r#"{"model": "lstm", "device": "cuda:0", "kernel": "reference", "train_ms": 120.0, "infer_ms": 30.0, "threads": 16, "fwd_ms": 40.0, "bwd_ms": 70.0}"#,
    );
    write(
        "logs/step-torch-cuda-lstm.out",
        r#"{"model": "lstm", "device": "cuda", "train_ms": 4.0, "infer_ms": 1.5, "threads": 2, "torch": "2.9.0", "cuda": "12.8", "cudnn": 91002, "cudnn_enabled": true}"#,
    );
    write(
        "steps.jsonl",
        "{\"step\": \"quick-cuda\", \"rc\": 0, \"seconds\": 9.5, \"limit\": 150}\n\
         {\"step\": \"bilstm-cuda\", \"rc\": 124, \"seconds\": 120, \"limit\": 120}\n",
    );

    let out = Command::new("python3")
        .arg(root().join("bench/gpu_report.py"))
        .arg(dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let md = std::fs::read_to_string(dir.join("gpu.md")).unwrap();
    assert!(md.contains("NVIDIA H200 (driver 580.95.05"), "{md}");
    for cell in ["lstm", "gru"] {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {cell} | 2/2 |")))
            .unwrap_or_else(|| panic!("no quick row for {cell}:\n{md}"));
        assert!(
            row.contains("| 0.000 |") && row.contains("| yes |"),
            "{row}"
        );
    }
    assert!(
        md.contains("| lstm | 120.0 | 4.0 | 30.0 | 30.0 | 1.5 | 20.0 |"),
        "{md}"
    );
    assert!(md.contains("| gru | - | - | - |"), "{md}");
    assert!(md.contains("Failed or skipped steps: bilstm-cuda."), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("gpu.json")).unwrap()).unwrap();
    assert_eq!(json["quick"]["per_cell"].as_array().unwrap().len(), 2);
    assert_eq!(json["failed_steps"], serde_json::json!(["bilstm-cuda"]));
}
