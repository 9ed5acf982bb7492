#!/usr/bin/env bash
# lab's fused recurrent layers against PyTorch CPU, side by side, interleaved.
#   bench/compare.sh [--quick] [--rounds N] [--json FILE] [--threads N] [--no-e2e]
# Builds lab (release), installs CPU PyTorch from PyPI into bench/.venv if missing,
# runs LSTM, GRU, BiLSTM and 2-layer LSTM in both with the same shapes and thread
# count, round after round, and prints medians, ratios and GFLOP/s (bench/table.py).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 steps=10 json="" threads=2 e2e=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) rounds=2 steps=5 ;;
    --rounds) rounds="$2"; shift ;;
    --json) json="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --no-e2e) e2e=0 ;;
    *) echo "unknown option $1 (--quick, --rounds N, --json FILE, --threads N, --no-e2e)" >&2; exit 2 ;;
  esac
  shift
done

# NO_BUILD=1 uses the binaries already built (e.g. while other builds hold cargo's locks).
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --example bench_step --bin lab
target="${CARGO_TARGET_DIR:-target}/release"

venv=bench/.venv
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "installing PyTorch into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch numpy
fi

# The same thread count on both sides: candle reads RAYON_NUM_THREADS, torch
# set_num_threads (and OMP/MKL for its pools).
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
"$target/examples/bench_step" peak | sed 's/^/{"side": "peak", "data": /; s/$/}/' >>"$raw"
for r in $(seq 1 "$rounds"); do
  for m in lstm gru bilstm lstm2; do
    echo "round $r/$rounds: $m" >&2
    "$target/examples/bench_step" "$m" --steps "$steps" | sed 's/^/{"side": "lab", "data": /; s/$/}/' >>"$raw"
    "$venv/bin/python" bench/torch_step.py "$m" --steps "$steps" --threads "$threads" \
      | sed 's/^/{"side": "torch", "data": /; s/$/}/' >>"$raw"
  done
done

if [ "$e2e" = 1 ]; then
  # End to end: one epoch of experiments/bilstm.toml (seed 13) in a scratch store.
  dir=$(mktemp -d)
  start=$(date +%s.%N)
  "$target/lab" run experiments/bilstm.toml --db "$dir/lab.db" \
    --set "experiment.seeds=[13]" --set train.epochs=1 --format csv >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "{\"side\": \"e2e\", \"data\": {\"bilstm_epoch_s\": $(echo "$end - $start" | bc)}}" >>"$raw"
  rm -rf "$dir"
fi

python3 bench/table.py "$raw" "$threads" "$json"
