"""Summarises bench/compare.sh's raw lines: medians over rounds, lab/PyTorch ratios,
GFLOP/s against the measured GEMM peak; optionally writes them as JSON."""
import json
import statistics
import sys

E, H, T, B = 100, 128, 128, 64
# (gates, directions, layers)
MODELS = {"lstm": (4, 1, 1), "gru": (3, 1, 1), "bilstm": (4, 2, 1), "lstm2": (4, 1, 2)}


def forward_flops(gates, dirs, layers):
    """Multiply-adds of the input projections and recurrences, times 2."""
    total, inp = 0, E
    for _ in range(layers):
        total += dirs * T * B * 2 * (inp * gates * H + H * gates * H)
        inp = H * dirs
    return total


def cpu():
    """The CPU's model and widest vector extension, so figures name their machine."""
    model, flags = "unknown CPU", set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    isa = next((f for f in ("avx512f", "avx2", "neon", "asimd") if f in flags), "no AVX2")
    return f"{model}, {isa}"


def main():
    raw, threads = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else ""
    rows = [json.loads(line) for line in open(raw) if line.strip()]
    peak = next(r["data"] for r in rows if r["side"] == "peak")
    result = {}
    machine = cpu()
    print(f"machine: {machine}")
    print(f"threads: {threads}; GEMM peak {peak['gemm_gflops']:.0f} GFLOP/s (1024^3, gemm crate); "
          f"per-step product 64x128x512: gemm crate {peak['step_gemm_crate_gflops']:.0f}, "
          f"lab packed kernel {peak['step_packed_gflops']:.0f} GFLOP/s")
    head = (f"{'model':8} {'lab train':>10} {'torch train':>12} {'ratio':>6} "
            f"{'lab infer':>10} {'torch infer':>12} {'ratio':>6} {'lab GFLOP/s':>12} {'of peak':>8}")
    print(head)
    for m, shape in MODELS.items():
        def med(side, key):
            v = [r["data"][key] for r in rows if r["side"] == side and r["data"].get("model") == m]
            return statistics.median(v) if v else float("nan")
        lt, tt = med("lab", "train_ms"), med("torch", "train_ms")
        li, ti = med("lab", "infer_ms"), med("torch", "infer_ms")
        gflops = 3 * forward_flops(*shape) / (lt / 1e3) / 1e9
        result[m] = {
            "train_ratio": lt / tt, "infer_ratio": li / ti,
            "lab_train_ms": lt, "torch_train_ms": tt,
            "lab_infer_ms": li, "torch_infer_ms": ti,
            "lab_train_gflops": gflops, "fraction_of_peak": gflops / peak["gemm_gflops"],
        }
        print(f"{m:8} {lt:10.1f} {tt:12.1f} {lt / tt:6.2f} {li:10.1f} {ti:12.1f} {li / ti:6.2f} "
              f"{gflops:12.1f} {gflops / peak['gemm_gflops']:8.0%}")
    e2e = [r["data"] for r in rows if r["side"] == "e2e"]
    if e2e:
        result["bilstm_epoch_s"] = e2e[0]["bilstm_epoch_s"]
        print(f"end to end: lab run experiments/bilstm.toml, 1 epoch, seed 13: "
              f"{e2e[0]['bilstm_epoch_s']:.1f} s (incl. data loading and evaluation)")
    result["gemm_peak_gflops"] = peak["gemm_gflops"]
    result["threads"] = int(threads)
    result["cpu"] = machine
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
