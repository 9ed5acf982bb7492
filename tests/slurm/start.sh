#!/usr/bin/env bash
# A real single-node Slurm cluster on loopback, entirely inside one directory:
# its own munge key and socket, slurm.conf, state, spool, logs and pid files.
# Needs root and Debian's slurm-wlm and munge packages.
#
#   tests/slurm/start.sh DIR [CTLD_PORT SLURMD_PORT]   # prints `export SLURM_CONF=DIR/slurm.conf`
#   tests/slurm/stop.sh DIR
#
# Clients (sbatch, squeue, sinfo) find the cluster through SLURM_CONF.
set -euo pipefail

dir=${1:?usage: start.sh DIR [CTLD_PORT SLURMD_PORT]}
ctld_port=${2:-6817}
slurmd_port=${3:-6818}

for tool in munged slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || {
    echo "start.sh: $tool is not installed (apt-get install -y slurm-wlm munge)" >&2
    exit 3
  }
done

mkdir -p "$dir"/state "$dir"/spool
dir=$(cd "$dir" && pwd)
# munged insists that every directory on the socket's path is searchable by all.
chmod 755 "$dir"

# munge: a fresh key in the directory, the daemon on a socket of its own.
if [[ ! -f $dir/munge.key ]]; then
  head -c 1024 /dev/urandom >"$dir/munge.key"
  chmod 400 "$dir/munge.key"
fi
munged --key-file="$dir/munge.key" --socket="$dir/munge.sock" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"

host=$(hostname -s)
cpus=$(nproc)
# Leave the node a little below the machine's memory so slurmd accepts it.
mem_mib=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)

cat >"$dir/slurm.conf" <<EOF
ClusterName=labtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# Ready when the node is idle (or mixed/allocated: jobs may already run).
for _ in $(seq 1 120); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)
  case $state in
    idle* | mix* | alloc*)
      echo "export SLURM_CONF=$SLURM_CONF"
      exit 0
      ;;
  esac
  sleep 0.5
done
echo "start.sh: the node did not become idle within 60 s (state: ${state:-none}); logs in $dir" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
exit 1
