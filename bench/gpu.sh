#!/usr/bin/env bash
# The check of the CUDA build on a GPU box, in one call: the only thing run there.
#   bash bench/gpu.sh [--out DIR] [--dry-run]        (DIR defaults to $OUT)
# Needs, beside this repository's files: target/cuda/lab and target/cuda/bench_step
# (bash bench/cuda-build.sh, on any Linux machine), or their .xz copies (unpacked
# into DIR/bin), the NVIDIA driver (nvidia-smi),
# and python3 with PyTorch (its pip wheels also carry the cuBLAS and cuRAND that lab
# loads; a system CUDA toolkit works too). No Rust toolchain, no network.
#
# Steps, each under a time limit, all within GPU_CHECK_BUDGET seconds (default 360):
#   1. experiments/quick.toml on cuda:0 (the proof that the binary trains on the GPU)
#   2. the bench_step shapes of bench/compare.sh (LSTM, GRU, BiLSTM, 2-layer LSTM;
#      batch 64, 128 tokens) through lab on the GPU and through PyTorch with cuDNN
#   3. one epoch of experiments/bilstm.toml on cuda:0 (seconds, samples/s)
#   4. experiments/quick.toml on the CPU, to compare test accuracy and epoch seconds
#   5. the bench_step shapes through lab's fused CPU kernels on this machine
#   6. nvidia-smi
# A failed step is recorded and the next one runs. Everything lands in DIR: logs/,
# the stores (*.db), gpu.json and gpu.md (bench/gpu_report.py). Exit 0 when every
# step succeeded, 1 otherwise (gpu.md says which), 2 for a usage error.
# --dry-run prints every command instead of running it, after checking that every
# file it needs is here (exit 1 naming the missing ones); it runs on any machine.
# LAB_CUDA_DIR (default target/cuda) is where the binaries are; PYTHON the
# interpreter with torch (default python3).
set -uo pipefail

usage="usage: bash bench/gpu.sh [--out DIR] [--dry-run]"
out=${OUT:-} dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out)
      [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
      out=$2; shift ;;
    --dry-run) dry=1 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "unknown option $1; $usage" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$out" ]; then
  echo "error: no output directory: give --out DIR or set OUT" >&2
  exit 2
fi
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.." || exit 1

bin=${LAB_CUDA_DIR:-target/cuda}
python=${PYTHON:-python3}
steps_ms=10

# A binary, or its .xz copy to unpack into DIR/bin.
missing=() unpack=()
for name in lab bench_step; do
  if [ ! -f "$bin/$name" ]; then
    if [ -f "$bin/$name.xz" ]; then unpack+=("$name"); else missing+=("$bin/$name"); fi
  fi
done
for f in experiments/quick.toml experiments/bilstm.toml data/rotten_tomatoes.csv \
  bench/torch_step.py bench/gpu_report.py; do
  [ -f "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: missing file(s): ${missing[*]} (in $PWD)" >&2
  echo "  build the binaries with \`bash bench/cuda-build.sh\`, and carry target/cuda/ with the repository" >&2
  exit 1
fi
lab=$bin/lab step=$bin/bench_step
for name in "${unpack[@]}"; do
  if [ "$dry" = 1 ]; then
    echo "[unpack] python3 (lzma) $bin/$name.xz -> $out/bin/$name"
  else
    mkdir -p "$out/bin" &&
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$bin/$name.xz" "$out/bin/$name" && chmod +x "$out/bin/$name" ||
      { echo "error: cannot unpack $bin/$name.xz into $out/bin" >&2; exit 1; }
  fi
  if [ "$name" = lab ]; then lab=$out/bin/lab; else step=$out/bin/bench_step; fi
done

# The directories holding cuBLAS and cuRAND (the driver is on the loader's path
# already): PyTorch's pip wheels (site-packages/nvidia/*/lib, torch/lib), then a
# system toolkit. lab tries libcublas.so.13, then .12, ... (cudarc's names).
cuda_lib_dirs() {
  local roots=() sp
  for sp in $("$python" -c 'import site; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
    roots+=("$sp/nvidia" "$sp/torch/lib")
  done
  roots+=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu)
  find "${roots[@]}" -maxdepth 3 \( -name 'libcublas.so.*' -o -name 'libcurand.so.*' \) \
    -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -
}

start=$SECONDS
deadline=$((start + ${GPU_CHECK_BUDGET:-360}))
failed=0

# run NAME LIMIT CMD...: runs CMD with stdout to logs/NAME.out, stderr to
# logs/NAME.err, killed after LIMIT seconds (or at the deadline); one line of
# steps.jsonl records it. With --dry-run it only prints the command.
run() {
  local name=$1 limit=$2
  shift 2
  if [ "$dry" = 1 ]; then
    printf '[%s, %ss] ' "$name" "$limit"
    printf '%q ' "$@"
    printf '\n'
    return 0
  fi
  local left=$((deadline - SECONDS)) rc t0 t1
  [ "$limit" -le "$left" ] || limit=$left
  if [ "$limit" -lt 5 ]; then
    echo "skipped $name: the ${GPU_CHECK_BUDGET:-360}s budget is spent" >&2
    printf '{"step": "%s", "rc": null, "skipped": true}\n' "$name" >>"$out/steps.jsonl"
    failed=1
    return 0
  fi
  echo "== $name (at most ${limit}s): $*" >&2
  t0=$(date +%s.%N)
  timeout --kill-after=5 "$limit" "$@" >"$out/logs/$name.out" 2>"$out/logs/$name.err"
  rc=$?
  t1=$(date +%s.%N)
  [ "$rc" = 0 ] || { failed=1; echo "   $name failed (exit $rc): $(tail -c 300 "$out/logs/$name.err")" >&2; }
  printf '{"step": "%s", "rc": %d, "seconds": %s, "limit": %d}\n' "$name" "$rc" \
    "$(awk "BEGIN {print $t1 - $t0}")" "$limit" >>"$out/steps.jsonl"
}

if [ "$dry" = 1 ]; then
  echo "dry run: every file needed is here; the commands, in order (logs/NAME.out, .err in $out):"
  echo "[env] LD_LIBRARY_PATH gains the directories of libcublas.so.* and libcurand.so.* under $python's site-packages (nvidia/*/lib, torch/lib) and /usr/local/cuda"
else
  mkdir -p "$out/logs" || exit 1
  : >"$out/steps.jsonl"
  rm -f "$out"/quick-cuda.db* "$out"/quick-cpu.db* "$out"/bilstm-cuda.db*
  libs=$(cuda_lib_dirs)
  export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(hostname)"
    echo "cuda libraries: ${libs:-none found}"
    echo "lab: $("$lab" --version 2>&1)"
    echo "build: $(cat "$bin/build.txt" 2>/dev/null || echo unknown)"
    # The driver compiles the kernels' PTX (CUDA 13.0) only if it knows CUDA 13.0.
    echo "driver CUDA: $(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p') (the kernels need 13.0 or later)"
  } >"$out/env.txt"
  cat "$out/env.txt" >&2
fi

run gpu-info 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
run quick-cuda 150 "$lab" run experiments/quick.toml --device cuda:0 --db "$out/quick-cuda.db" --format json
for m in lstm gru bilstm lstm2; do
  run "step-lab-cuda-$m" 40 "$step" "$m" --device cuda:0 --steps "$steps_ms"
  run "step-torch-cuda-$m" 40 "$python" bench/torch_step.py "$m" --device cuda --steps "$steps_ms"
done
run bilstm-cuda 120 "$lab" run experiments/bilstm.toml --device cuda:0 --db "$out/bilstm-cuda.db" \
  --set "experiment.seeds=[13]" --set train.epochs=1 --format json
run quick-cpu 90 "$lab" run experiments/quick.toml --device cpu --db "$out/quick-cpu.db" --format json
for m in lstm gru bilstm lstm2; do
  run "step-lab-cpu-$m" 30 "$step" "$m" --device cpu --steps "$steps_ms"
done
# Last, so that it shows the memory the runs left in use, and runs even past the budget.
deadline=$((SECONDS + 20))
run nvidia-smi 15 nvidia-smi

if [ "$dry" = 1 ]; then
  printf '[report] '
  printf '%q ' python3 bench/gpu_report.py "$out"
  printf '\n'
  exit 0
fi
python3 bench/gpu_report.py "$out" || failed=1
echo "gpu.sh: $((SECONDS - start))s; results in $out/gpu.md and $out/gpu.json" >&2
exit "$failed"
