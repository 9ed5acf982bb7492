#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh DIR started, by the pids in their pid files.
set -uo pipefail

dir=${1:?usage: stop.sh DIR}
for name in slurmd slurmctld munged; do
  pidfile=$dir/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
done
exit 0
