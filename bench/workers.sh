#!/usr/bin/env bash
# Queue benchmark: 12 trials of experiments/quick.toml (2 cells x 6 seeds) drained
# by one `lab worker` and then by two workers on one queue, one compute thread
# each (RAYON_NUM_THREADS=1). Prints both wall times and their ratio, and checks
# that no trial ran twice.
#
#   bash bench/workers.sh            # SEEDS="[1,2,3,4,5,6]" by default
#
# Run by hand, not in CI. The figures depend on the machine's other load.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-[1,2,3,4,5,6]}
WORK=bench/.work/workers

cargo build --release --quiet
mkdir -p "$WORK"
# A copy, so a shared target directory rebuilt meanwhile cannot change it.
cp "${CARGO_TARGET_DIR:-target}/release/lab" "$WORK/lab"
LAB="$WORK/lab"
export RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1

# A fresh queue of the same 12 trials in its own database (the data cache is
# filled by `queue add`, before the clock starts).
fresh_queue() {
  rm -rf "$WORK/$1"
  "$LAB" --db "$WORK/$1/lab.db" queue add experiments/quick.toml \
    --set "experiment.seeds=$SEEDS" >/dev/null
}

seconds() { date +%s.%N; }

fresh_queue one
t0=$(seconds)
"$LAB" --db "$WORK/one/lab.db" worker 2>"$WORK/one.log"
t1=$(seconds)

fresh_queue two
t2=$(seconds)
"$LAB" --db "$WORK/two/lab.db" worker 2>"$WORK/two-a.log" &
a=$!
"$LAB" --db "$WORK/two/lab.db" worker 2>"$WORK/two-b.log" &
b=$!
wait "$a"
wait "$b"
t3=$(seconds)

for run in one two; do
  done=$(sqlite3 "$WORK/$run/lab.db" "select count(*) from trials where status = 'done'" 2>/dev/null ||
    "$LAB" --db "$WORK/$run/lab.db" status | awk 'NR == 2 { print $4 }')
  echo "$run: $done trials done"
done
twice=$(cat "$WORK"/two-*.log | grep -o 'trial [0-9]* ([0-9/]*) .* started' | awk '{ print $2 }' | sort | uniq -d | wc -l)
echo "trials started twice with two workers: $twice"
python3 - "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:])
one, two = t1 - t0, t3 - t2
print(f"one worker:  {one:7.1f} s")
print(f"two workers: {two:7.1f} s")
print(f"ratio two/one: {two / one:.2f}  (speed-up {one / two:.2f}x)")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (nproc $(nproc))"
