#!/usr/bin/env bash
# Serving benchmark: `lab serve` against the seed projects' deployment (Flask
# under Gunicorn serving a same-size PyTorch LSTM, with lab's own weights), same
# machine, same run, same worker count. wrk sends batch-1 and batch-32 POST
# /v1/predict requests; the table gives requests/s and p50/p99 latency.
#
#   bash bench/serve.sh            # WORKERS=2 CONNECTIONS=8 DURATION=10 by default
#
# Needs wrk (apt-get install -y wrk) and python3; the PyTorch side is installed
# into bench/.venv from PyPI on the first run. Run by hand, not in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}
CONNECTIONS=${CONNECTIONS:-8}
DURATION=${DURATION:-10}
LAB_PORT=${LAB_PORT:-18080}
FLASK_PORT=${FLASK_PORT:-18081}
WORK=bench/.work

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
# NO_BUILD=1 uses the binaries already built (e.g. while other builds hold cargo's locks).
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet
mkdir -p "$WORK"
# A copy, so a shared target directory rebuilt meanwhile cannot change it.
cp "${CARGO_TARGET_DIR:-target}/release/lab" "$WORK/lab"
LAB="$WORK/lab"

# A unidirectional LSTM, embedding 100, hidden 128, last-state pooling, trained
# one epoch on the full Rotten Tomatoes data: what the seed notebooks deploy.
if [ ! -f "$WORK/model/model.json" ]; then
  rm -rf "$WORK/lab.db"* "$WORK/model" "$WORK/cache" "$WORK/serve_bench"
  "$LAB" run experiments/quick.toml --db "$WORK/lab.db" \
    --set experiment.name=serve_bench --set "experiment.seeds=[1]" \
    --set "sweep.model.cell=[\"lstm\"]" --set data.limit=1000000 \
    --set model.embedding_dim=100 --set model.hidden=128 --set model.pooling=last \
    --set preprocess.max_len=64 --set train.epochs=1 >/dev/null
  "$LAB" export 1 --db "$WORK/lab.db" --out "$WORK/model"
fi

if [ ! -x bench/.venv/bin/gunicorn ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet flask gunicorn torch safetensors
fi

# Request bodies: the first 1 and 32 reviews of the shipped data.
python3 - "$WORK" <<'PY'
import csv, json, sys
rows = [r["text"] for r in csv.DictReader(open("data/rotten_tomatoes.csv", encoding="utf-8"))]
for n in (1, 32):
    json.dump({"texts": rows[:n]}, open(f"{sys.argv[1]}/batch{n}.json", "w"))
PY

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_up() {
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0
    sleep 0.2
  done
  echo "server on port $1 did not start" >&2; exit 1
}

# One thread per worker on both sides: Gunicorn's sync workers run torch with
# one thread each; lab gets WORKERS tokio threads and WORKERS compute threads.
RAYON_NUM_THREADS=1 "$LAB" serve --model "$WORK/model" --addr "127.0.0.1:$LAB_PORT" \
  --workers "$WORKERS" 2>/dev/null &
PIDS+=($!)
MODEL_DIR="$PWD/$WORK/model" bench/.venv/bin/gunicorn --chdir bench -w "$WORKERS" \
  -b "127.0.0.1:$FLASK_PORT" --log-level warning flask_app:app &
PIDS+=($!)
wait_up "$LAB_PORT"
wait_up "$FLASK_PORT"

# Both servers must agree on what they answer before their speed means anything.
python3 - "$WORK" "$LAB_PORT" "$FLASK_PORT" <<'PY'
import json, sys, urllib.request
work, lab, flask = sys.argv[1:]
body = open(f"{work}/batch32.json", "rb").read()
def ask(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", body, {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["predictions"]
a, b = ask(lab), ask(flask)
same = sum(x["label"] == y["label"] for x, y in zip(a, b))
print(f"label agreement lab vs flask on 32 reviews: {same}/32")
PY

run() { # name port body
  BODY="$WORK/$3.json" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s bench/post.lua "http://127.0.0.1:$2/v1/predict" | grep '^RESULT' | sed "s/^RESULT/$1 $3/"
}
echo "workers=$WORKERS connections=$CONNECTIONS duration=${DURATION}s cores=$(nproc)"
RESULTS=$(
  for body in batch1 batch32; do
    run lab "$LAB_PORT" "$body"
    run flask+gunicorn+torch "$FLASK_PORT" "$body"
  done
)
echo "$RESULTS" | awk '
  { split($3, r, "="); split($4, p50, "="); split($5, p99, "="); split($7, e, "=");
    printf "%-22s %-8s %10s req/s  p50 %8s ms  p99 %8s ms  errors %s\n", $1, $2, r[2], p50[2], p99[2], e[2];
    rps[$1 " " $2] = r[2] }
  END { for (b in a) {} ;
    split("batch1 batch32", bs, " ");
    for (i = 1; i <= 2; i++) { l = rps["lab " bs[i]]; f = rps["flask+gunicorn+torch " bs[i]];
      if (f > 0) printf "%s: lab / flask = %.1fx requests per second\n", bs[i], l / f } }'
