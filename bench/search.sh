#!/usr/bin/env bash
# Grid vs random + ASHA vs TPE + ASHA on one search space (bench/search.toml,
# 108 points on Rotten Tomatoes), same machine, sampler runs interleaved. The
# samplers get 54 configurations (half the grid) and ASHA's first rung at
# epoch 2 of 6 (reduction 3).
#   bench/search.sh [--seeds N] [--trials N] [--limit ROWS] [--epochs N]
# Prints, per run: total training seconds, the best validation macro-F1 and the
# test accuracy of that trial, and the training seconds spent until a trial
# within 0.005 of the grid's best validation macro-F1 was found; then the
# sampler medians against the grid (bench/search_table.py). Writes the stores
# and a JSON summary under ${OUT:-bench/out/search}.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=3 trials=54 limit="" epochs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift ;;
    --trials) trials="$2"; shift ;;
    --limit) limit="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    *) echo "unknown option $1 (--seeds N, --trials N, --limit ROWS, --epochs N)" >&2; exit 2 ;;
  esac
  shift
done

[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin lab
lab="${CARGO_TARGET_DIR:-target}/release/lab"
out="${OUT:-bench/out/search}"
mkdir -p "$out"
db="$out/search.db"
rm -f "$db" "$db-wal" "$db-shm"

common=()
[ -n "$limit" ] && common+=(--set "data.limit=$limit")
[ -n "$epochs" ] && common+=(--set "train.epochs=$epochs")

run() { # name, extra --set flags...
  local name="$1"; shift
  echo "== $name" >&2
  "$lab" --quiet --db "$db" run bench/search.toml --max-trials 1000 \
    --set "experiment.name=$name" "${common[@]}" "$@" >/dev/null
}

run grid
for s in $(seq 0 $((seeds - 1))); do
  for strategy in random tpe; do
    run "$strategy-asha-$s" --set "search.strategy=$strategy" --set "search.trials=$trials" \
      --set "search.seed=$s" --set search.pruner.kind=asha --set search.pruner.min_epochs=2
  done
done
python3 bench/search_table.py "$db" --json "$out/search.json"
