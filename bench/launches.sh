#!/usr/bin/env bash
# Counts, on the CPU, the candle backend operations a training step (and an
# inference batch) of the reference layers makes: what the CUDA device runs, where
# each backend operation is one kernel launch (or one cuBLAS call, one memset).
#   bash bench/launches.sh [BENCH_STEP]
# BENCH_STEP: an unstripped bench_step (default: bench/cuda-build.sh's, else
# `cargo build --release --example bench_step`'s); a CPU build counts the same,
# since the reference layers make the same candle calls on every device.
# Runs BENCH_STEP under valgrind's callgrind with --kernel reference --device cpu at
# batch 4 (the count does not depend on the batch) and 8 and 16 time steps, counts
# the calls into candle's CPU backend (every BackendStorage method that computes:
# binary, unary, affine, matmul, copies, reductions, gathers...; CpuDevice::zeros_impl;
# custom ops such as candle-nn's sigmoid), and prints per time step and direction
# (the difference of the two runs / 8) and per step at 128 tokens (the bench shape).
# The optimizer is not in the counts: on the CPU it is the fused in-place Adam, on
# CUDA 14 tensor ops per parameter (src/train/optim.rs, tensor_adam). Needs valgrind;
# takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  for b in target/cuda-build/*/release/examples/bench_step target/release/examples/bench_step; do
    [ -x "$b" ] && { bin=$b; break; }
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "error: no bench_step (give its path)" >&2; exit 1; }
nm "$bin" 2>/dev/null | grep -q BackendStorage || { echo "error: $bin has no symbols (stripped?)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for mode in train infer; do
  for m in lstm gru bilstm lstm2; do
    [ "$mode" = train ] || [ "$m" = lstm ] || [ "$m" = gru ] || continue
    for t in 8 16; do
      RAYON_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$work/$mode-$m-$t.out" \
        "$bin" "$m" --kernel reference --device cpu --steps 1 --batch 4 --time "$t" --vocab 100 \
        "--$mode-only" >/dev/null 2>&1
    done
  done
done

python3 - "$work" <<'EOF'
import collections, os, re, sys

work = sys.argv[1]


def backend_ops(path):
    """Calls into candle's CPU backend recorded by callgrind (calls= lines per callee)."""
    names, counts, callee = {}, collections.Counter(), None
    for line in open(path):
        m = re.match(r"^(fn|cfn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, ident, name = m.groups()
            if name:
                names[ident] = name
            if kind == "cfn":
                callee = ident
            continue
        m = re.match(r"^calls=(\d+)", line)
        if m and callee:
            counts[names.get(callee, callee)] += int(m.group(1))

    def op(n):
        if "{{closure}}" in n:
            return False
        if "as candle_core::backend::BackendStorage>::" in n:
            return not n.endswith(("::dtype", "::device"))
        return "as candle_core::backend::BackendDevice>::zeros_impl" in n or re.search(
            r"as candle_core::custom_op::CustomOp\d>::cpu_fwd", n
        )

    return sum(v for k, v in counts.items() if op(k))


# bench_step runs 3 passes (--steps 1: 2 untimed, 1 timed).
print("model   pass   ops per time step (all directions and layers)   ops per step at 128 tokens (optimizer excluded)")
for name in sorted(os.listdir(work)):
    if not name.endswith("-8.out"):
        continue
    mode, model = name.split("-")[:2]
    a = backend_ops(os.path.join(work, name)) / 3
    b = backend_ops(os.path.join(work, name.replace("-8.out", "-16.out"))) / 3
    per = (b - a) / 8
    print(f"{model:7} {mode:6} {per:46.1f}   {a + per * 120:10.0f}")
EOF
