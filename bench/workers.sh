#!/usr/bin/env bash
# Queue benchmark: 12 trials of experiments/quick.toml (2 cells x 6 seeds) drained
# by one `lab worker` and then by two workers on one queue, one compute thread
# each (RAYON_NUM_THREADS=1). Prints both wall times and their ratio, and checks
# that every trial ran, and none twice.
#
#   bash bench/workers.sh              # ROUNDS=1 SEEDS="[1,2,3,4,5,6]" by default
#   ROUNDS=3 bash bench/workers.sh     # interleaved rounds, then the medians
#   LAB=path/to/lab bash bench/workers.sh   # use that binary instead of building
#
# Run by hand, not in CI. Two workers can only beat one when two cores are free:
# the figures depend on the machine's other load (printed at the end).
#
# Each worker is started in its own session (setsid), as cron or systemd start
# them: with the kernel's autogroup scheduling (sched_autogroup_enabled=1), the
# processes of one session share one CPU share, so on a busy machine two workers
# started from one shell get no more CPU than one.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-[1,2,3,4,5,6]}
ROUNDS=${ROUNDS:-1}
WORK=bench/.work/workers

mkdir -p "$WORK"
if [ -z "${LAB:-}" ]; then
  cargo build --release --quiet
  # A copy, so a shared target directory rebuilt meanwhile cannot change it.
  cp "${CARGO_TARGET_DIR:-target}/release/lab" "$WORK/lab"
  LAB="$WORK/lab"
fi
export RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1

# A fresh queue of the same 12 trials in its own database (the data cache is
# filled by `queue add`, before the clock starts).
fresh_queue() {
  rm -rf "$WORK/$1"
  "$LAB" --db "$WORK/$1/lab.db" queue add experiments/quick.toml \
    --set "experiment.seeds=$SEEDS" >/dev/null
}

# Every queued trial done, and started once in the workers' logs.
check() {
  local run=$1
  shift
  local done twice
  done=$("$LAB" --db "$WORK/$run/lab.db" queue list --all --format csv | grep -c ',done,' || true)
  twice=$(cat "$@" | grep -o 'trial [0-9]* ([0-9/]*) .* started' | awk '{ print $2 }' | sort | uniq -d | wc -l)
  echo "$run: $done trials done, $twice started twice" >&2
}

seconds() { date +%s.%N; }
times=()
for round in $(seq 1 "$ROUNDS"); do
  fresh_queue one
  t0=$(seconds)
  setsid --wait "$LAB" --db "$WORK/one/lab.db" worker 2>"$WORK/one.log"
  t1=$(seconds)
  check one "$WORK/one.log"

  fresh_queue two
  t2=$(seconds)
  setsid --wait "$LAB" --db "$WORK/two/lab.db" worker 2>"$WORK/two-a.log" &
  a=$!
  setsid --wait "$LAB" --db "$WORK/two/lab.db" worker 2>"$WORK/two-b.log" &
  b=$!
  wait "$a"
  wait "$b"
  t3=$(seconds)
  check two "$WORK/two-a.log" "$WORK/two-b.log"
  times+=("$t0 $t1 $t2 $t3")
  echo "round $round done; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

python3 - "${times[@]}" <<'PY'
import statistics, sys
ones, twos = [], []
for i, arg in enumerate(sys.argv[1:], 1):
    t0, t1, t2, t3 = map(float, arg.split())
    one, two = t1 - t0, t3 - t2
    ones.append(one)
    twos.append(two)
    print(f"round {i}: one worker {one:6.1f} s, two workers {two:6.1f} s, ratio two/one {two / one:.2f}")
one, two = statistics.median(ones), statistics.median(twos)
print(f"median: one worker {one:.1f} s, two workers {two:.1f} s, "
      f"ratio two/one {two / one:.2f} (speed-up {one / two:.2f}x)")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (nproc $(nproc)), sched_autogroup_enabled $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo '?')"
