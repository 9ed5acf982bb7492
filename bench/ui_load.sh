#!/usr/bin/env bash
# lab ui's load test (issue 17's bar: with a 10,000-trial store, every page's
# p95 latency is under 300 ms). Generates a store (examples/ui_store.rs: one
# big experiment of N trials, mostly done, some pruned, failed, pending, a few
# running; two small experiments), starts `lab ui` on it on a loopback port,
# and times each page and JSON endpoint with sequential requests
# (bench/ui_load.py): URL, n, p50/p95/max ms, bytes.
#
#   bench/ui_load.sh [--trials N] [--requests N] [--budget-s S] [--store FILE] [--strict]
#
# Each URL gets 3 warm-up requests, then up to --requests (30) timed ones, fewer
# when they take over --budget-s (60) seconds together (at least 3).
# --store FILE: use that store, generating it first (and keeping it) when it
# does not exist; without it the store lives in a temporary directory.
# --strict: exit 1 when a p95 is over the bar (always: when a URL is not 2xx).
# Writes result.json, result.md and the server's log under
# ${OUT_DIR:-target/ui-load}. NO_BUILD=1 uses the binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."

trials=10000 requests=30 budget=60 store="" strict=()
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) trials="$2"; shift ;;
    --requests) requests="$2"; shift ;;
    --budget-s) budget="$2"; shift ;;
    --store) store="$2"; shift ;;
    --strict) strict=(--strict) ;;
    *) echo "unknown option $1 (--trials N, --requests N, --budget-s S, --store FILE, --strict)" >&2; exit 2 ;;
  esac
  shift
done

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
  "on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs || uname -m))"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin lab --example ui_store
target="${CARGO_TARGET_DIR:-target}/release"
out="${OUT_DIR:-target/ui-load}"
mkdir -p "$out"

work=$(mktemp -d)
ui_pid=""
cleanup() {
  [ -n "$ui_pid" ] && kill "$ui_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$store" ]; then
  store="$work/lab.db"
fi
if [ ! -f "$store" ]; then
  echo "+ ui_store $store --trials $trials"
  "$target/examples/ui_store" "$store" --trials "$trials"
fi

echo "+ lab ui --db $store --addr 127.0.0.1:0"
"$target/lab" ui --db "$store" --addr 127.0.0.1:0 2>"$work/ui.log" &
ui_pid=$!
base=""
for _ in $(seq 600); do
  base=$(grep -o 'http://[^ ]*' "$work/ui.log" | head -n1 || true)
  [ -n "$base" ] && break
  kill -0 "$ui_pid" 2>/dev/null || { echo "lab ui exited:" >&2; cat "$work/ui.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "lab ui did not say where it listens:" >&2; cat "$work/ui.log" >&2; exit 1; }

echo "+ bench/ui_load.py $base --requests $requests --budget-s $budget"
status=0
python3 bench/ui_load.py "$base" --requests "$requests" --budget-s "$budget" \
  --json "$out/result.json" --markdown "$out/result.md" ${strict[@]+"${strict[@]}"} || status=$?
cp "$work/ui.log" "$out/ui.log"
exit "$status"
