"""The report of bench/gpu.sh: reads what its steps left in DIR and writes DIR/gpu.json
and DIR/gpu.md (markdown tables). Standard library only; a missing or failed step
leaves its rows empty ("-") and is listed, so the report is written whatever ran.
    python3 bench/gpu_report.py DIR

Test accuracy of experiments/quick.toml, CUDA against CPU, per cell: the mean over
seeds on each device, and whether they agree within noise. The GPU runs candle's
reference layers and its own random streams (dropout, shuffling draw alike, but
float sums differ), so runs differ as two seeds would; the check is
|difference| <= 3 * sqrt(2 * p * (1 - p) / (n * k)), p the mean accuracy, n the test
rows of one trial, k the seeds per device (binomial noise of two k-seed means).
"""
import json
import math
import os
import sqlite3
import sys

MODELS = ["lstm", "gru", "bilstm", "lstm2"]


def read_json_line(path):
    """The last JSON object printed in a file, or None."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if l.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def steps(out):
    """steps.jsonl: one record per step, by name."""
    recs = {}
    try:
        with open(os.path.join(out, "steps.jsonl"), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    recs[r["step"]] = r
    except OSError:
        pass
    return recs


def gpu_info(out):
    """nvidia-smi's CSV line: name, driver, memory, compute capability."""
    try:
        with open(os.path.join(out, "logs", "gpu-info.out"), encoding="utf-8") as f:
            rows = [l.strip() for l in f if l.strip()]
    except OSError:
        return None
    if len(rows) < 2:
        return None
    keys = ["name", "driver", "memory", "compute_cap"]
    return dict(zip(keys, [v.strip() for v in rows[1].split(",")]))


def trials(db):
    """The done trials of a store: cell, seed, test accuracy, test rows, mean epoch
    seconds and samples/s. [] when the store is missing or unreadable."""
    if not os.path.exists(db):
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = con.execute(
            "SELECT id, seed, config_json, device FROM trials WHERE status = 'done' ORDER BY id"
        ).fetchall()
        out = []
        for tid, seed, config, device in rows:
            cfg = json.loads(config)
            acc = con.execute(
                "SELECT value FROM metrics WHERE trial_id = ? AND split = 'test' AND name = 'accuracy'",
                (tid,),
            ).fetchone()
            conf = con.execute(
                "SELECT matrix_json FROM confusion WHERE trial_id = ? AND split = 'test'", (tid,)
            ).fetchone()
            ep = con.execute(
                "SELECT AVG(seconds), AVG(samples_per_second), COUNT(*) FROM epochs WHERE trial_id = ?",
                (tid,),
            ).fetchone()
            out.append({
                "trial": tid,
                "seed": seed,
                "cell": cfg.get("model", {}).get("cell"),
                "device": device,
                "test_accuracy": acc[0] if acc else None,
                "test_rows": sum(map(sum, json.loads(conf[0]))) if conf else None,
                "epoch_seconds": ep[0],
                "samples_per_second": ep[1],
                "epochs": ep[2],
            })
        con.close()
        return out
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return []


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def compare_quick(cuda, cpu):
    """Per cell: mean test accuracy and epoch seconds on each device, the noise bound
    and the verdict."""
    rows = []
    for cell in sorted({t["cell"] for t in cuda + cpu}):
        g = [t for t in cuda if t["cell"] == cell]
        c = [t for t in cpu if t["cell"] == cell]
        ga, ca = mean([t["test_accuracy"] for t in g]), mean([t["test_accuracy"] for t in c])
        row = {
            "cell": cell,
            "seeds_cuda": len(g),
            "seeds_cpu": len(c),
            "accuracy_cuda": ga,
            "accuracy_cpu": ca,
            "epoch_seconds_cuda": mean([t["epoch_seconds"] for t in g]),
            "epoch_seconds_cpu": mean([t["epoch_seconds"] for t in c]),
        }
        n = mean([t["test_rows"] for t in g + c])
        if ga is not None and ca is not None and n:
            p, k = (ga + ca) / 2, min(len(g), len(c))
            bound = 3 * math.sqrt(2 * p * (1 - p) / (n * k))
            row.update(difference=ga - ca, bound=bound, within_noise=abs(ga - ca) <= bound)
        rows.append(row)
    return rows


def fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/gpu_report.py DIR")
    out = sys.argv[1]
    recs = steps(out)
    env = {}
    try:
        with open(os.path.join(out, "env.txt"), encoding="utf-8") as f:
            env = dict(l.rstrip("\n").split(": ", 1) for l in f if ": " in l)
    except OSError:
        pass
    cuda, cpu = trials(os.path.join(out, "quick-cuda.db")), trials(os.path.join(out, "quick-cpu.db"))
    bilstm = trials(os.path.join(out, "bilstm-cuda.db"))
    step_rows = []
    for m in MODELS:
        lab_gpu = read_json_line(os.path.join(out, "logs", f"step-lab-cuda-{m}.out")) or {}
        torch_gpu = read_json_line(os.path.join(out, "logs", f"step-torch-cuda-{m}.out")) or {}
        lab_cpu = read_json_line(os.path.join(out, "logs", f"step-lab-cpu-{m}.out")) or {}
        step_rows.append({
            "model": m,
            "lab_cuda_train_ms": lab_gpu.get("train_ms"),
            "torch_cudnn_train_ms": torch_gpu.get("train_ms"),
            "train_ratio": ratio(lab_gpu.get("train_ms"), torch_gpu.get("train_ms")),
            "lab_cuda_infer_ms": lab_gpu.get("infer_ms"),
            "torch_cudnn_infer_ms": torch_gpu.get("infer_ms"),
            "infer_ratio": ratio(lab_gpu.get("infer_ms"), torch_gpu.get("infer_ms")),
            "lab_cpu_train_ms": lab_cpu.get("train_ms"),
            "lab_cpu_threads": lab_cpu.get("threads"),
            "torch": {k: torch_gpu.get(k) for k in ("torch", "cuda", "cudnn", "cudnn_enabled")}
            if torch_gpu else None,
        })
    quick = compare_quick(cuda, cpu)
    failed = sorted(n for n, r in recs.items() if r.get("rc") != 0)
    report = {
        "gpu": gpu_info(out),
        "env": env,
        "steps": recs,
        "failed_steps": failed,
        "quick": {"trials_cuda": cuda, "trials_cpu": cpu, "per_cell": quick},
        "bilstm_epoch_cuda": bilstm[0] if bilstm else None,
        "step": step_rows,
    }
    with open(os.path.join(out, "gpu.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)

    gpu = report["gpu"] or {}
    torch_info = next((r["torch"] for r in step_rows if r["torch"]), None) or {}
    md = [
        f"GPU check, {env.get('date', '?')}: {gpu.get('name', 'no GPU answered')} "
        f"(driver {gpu.get('driver', '?')}, compute capability {gpu.get('compute_cap', '?')}); "
        f"{env.get('lab', 'lab ?')} ({env.get('build', 'build unknown')}); PyTorch {torch_info.get('torch', '-')} "
        f"(CUDA {torch_info.get('cuda', '-')}, cuDNN {torch_info.get('cudnn', '-')}).",
        "",
        "experiments/quick.toml (test accuracy: mean over seeds; epoch: mean seconds):",
        "",
        "| cell | seeds GPU/CPU | accuracy GPU | accuracy CPU | difference | noise bound | within noise | epoch s GPU | epoch s CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in quick:
        md.append(
            f"| {r['cell']} | {r['seeds_cuda']}/{r['seeds_cpu']} | {fmt(r['accuracy_cuda'])} | "
            f"{fmt(r['accuracy_cpu'])} | {fmt(r.get('difference'))} | {fmt(r.get('bound'))} | "
            f"{fmt(r.get('within_noise'))} | {fmt(r['epoch_seconds_cuda'], 2)} | {fmt(r['epoch_seconds_cpu'], 2)} |"
        )
    if not quick:
        md.append("| - | no trial finished | | | | | | | |")
    b = report["bilstm_epoch_cuda"] or {}
    md += [
        "",
        f"experiments/bilstm.toml, one epoch on the GPU: {fmt(b.get('epoch_seconds'), 2)} s, "
        f"{fmt(b.get('samples_per_second'), 0)} samples/s.",
        "",
        "Training step (forward, loss, backward, Adam) and inference batch, batch 64 x 128 tokens, "
        "median ms; ratio = lab / PyTorch:",
        "",
        "| model | lab GPU train | PyTorch+cuDNN train | ratio | lab GPU infer | PyTorch+cuDNN infer | ratio | lab CPU train (threads) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in step_rows:
        md.append(
            f"| {r['model']} | {fmt(r['lab_cuda_train_ms'], 1)} | {fmt(r['torch_cudnn_train_ms'], 1)} | "
            f"{fmt(r['train_ratio'], 1)} | {fmt(r['lab_cuda_infer_ms'], 1)} | {fmt(r['torch_cudnn_infer_ms'], 1)} | "
            f"{fmt(r['infer_ratio'], 1)} | {fmt(r['lab_cpu_train_ms'], 1)} ({fmt(r['lab_cpu_threads'])}) |"
        )
    md += ["", "Failed or skipped steps: " + (", ".join(failed) if failed else "none") + "."]
    with open(os.path.join(out, "gpu.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
