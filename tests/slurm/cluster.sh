#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/test_slurm.py (and by hand):
#
#   tests/slurm/cluster.sh start DIR   # install slurmctld, slurmd, slurm-client and munge when
#                                      # missing (apt-get), then start munged, slurmctld and slurmd
#   export SLURM_CONF=DIR/slurm.conf   # what sbatch, squeue, srun and Snakemake's plugin read
#   export PATH=DIR/bin:$PATH          # srun inside a job (below)
#   tests/slurm/cluster.sh stop DIR    # cancel the jobs, stop the daemons, remove DIR
#
# Everything lives in DIR (config, munge key and socket, state, logs, pid files): nothing is
# written under /etc, and the cluster's own munged answers on DIR's socket only, beside any
# system-wide munge. The daemons run in the foreground (-D, -F) under setsid, without systemd:
# proctrack/linuxproc and task/none, so no cgroup is needed. No accounting (no slurmdbd):
# the SLURM executor plugin reads job states with squeue, which sees finished jobs for
# MinJobAge (600 s here). The node is this host: `slurmd -C` gives its CPUs and memory.
# DIR/bin/srun: srun with SLURM_CONF set. Inside a SLURM job, Snakemake's jobstep plugin
# (snakemake-executor-plugin-slurm-jobstep 0.6.1) runs each rule's command through srun with every
# SLURM_* variable but the job's ids removed, SLURM_CONF too, so srun looks for /etc/slurm/slurm.conf
# and fails ("srun: fatal: Could not establish a configuration source"; upstream issue
# snakemake-executor-plugin-slurm#164). A real cluster keeps its slurm.conf there or runs configless.
# Ports: SLURMCTLD_PORT and SLURMD_PORT (default 6817 and 6818). Runs as root (apt-get; slurmd
# runs jobs as the submitting user): `sudo tests/slurm/cluster.sh start DIR` otherwise.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ACTION=$1
DIR=$2
SBIN=/usr/sbin
DAEMONS=(slurmd slurmctld munged)   # stopped in this order

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 || [ -x $SBIN/slurmctld ] || missing+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || [ -x $SBIN/slurmd ] || missing+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
    command -v munged >/dev/null 2>&1 || [ -x $SBIN/munged ] || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return
    echo "cluster.sh: installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Wait up to $2 seconds for command $1 to succeed.
wait_for() {
    local i
    for ((i = 0; i < $2 * 4; i++)); do
        eval "$1" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

start_daemon() {  # name, then its command line: runs under setsid, stdout/stderr to DIR/log/NAME.out
    local name=$1
    shift
    SLURM_CONF="$DIR/slurm.conf" setsid "$@" >"$DIR/log/$name.out" 2>&1 </dev/null &
    echo $! >"$DIR/run/$name.pid"
}

fail() {
    echo "cluster.sh: $1" >&2
    local f
    for f in "$DIR"/log/*; do
        [ -s "$f" ] && { echo "--- $f (last lines)" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

start() {
    [ "$(id -u)" = 0 ] || { echo "cluster.sh: run as root (apt-get, slurmd): sudo $0 start $DIR" >&2; exit 1; }
    install_packages
    [ ! -e "$DIR/run" ] || { echo "cluster.sh: $DIR already holds a cluster (stop it first)" >&2; exit 1; }
    mkdir -p "$DIR"/{bin,munge,run,log,state/ctld,state/d}
    chmod 700 "$DIR" "$DIR/munge"
    DIR=$(cd "$DIR" && pwd)
    printf '#!/bin/sh\nexport SLURM_CONF=%q\nexec %q "$@"\n' "$DIR/slurm.conf" "$(command -v srun)" >"$DIR/bin/srun"
    chmod 755 "$DIR/bin/srun"

    # munge: a key of the cluster's own, its socket in DIR.
    dd if=/dev/urandom bs=1 count=1024 of="$DIR/munge/munge.key" status=none
    chmod 400 "$DIR/munge/munge.key"
    local socket=$DIR/munge/munge.socket
    start_daemon munged $SBIN/munged -F --force --key-file="$DIR/munge/munge.key" --socket="$socket" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    wait_for "munge -S '$socket' -n | unmunge -S '$socket'" 20 || fail "munged did not answer on $socket"

    # slurm.conf: this host as the one node, its CPUs and memory as slurmd measures them.
    local node host
    node=$($SBIN/slurmd -C | head -n 1)   # NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..
    host=${node%% *}
    host=${host#NodeName=}
    cat >"$DIR/slurm.conf" <<CONF
# Written by tests/slurm/cluster.sh: a one-node cluster on $host.
ClusterName=fmareport-test
SlurmctldHost=$host
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/d
SlurmctldPidFile=$DIR/run/slurmctld.daemon.pid
SlurmdPidFile=$DIR/run/slurmd.daemon.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

    start_daemon slurmctld $SBIN/slurmctld -D -i
    wait_for "SLURM_CONF='$DIR/slurm.conf' scontrol ping | grep -q UP" 30 || fail "slurmctld did not come up"
    start_daemon slurmd $SBIN/slurmd -D
    wait_for "SLURM_CONF='$DIR/slurm.conf' sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'" 60 ||
        fail "the node did not come up: $(SLURM_CONF="$DIR/slurm.conf" sinfo -N -l 2>&1)"
    echo "cluster.sh: SLURM up in $DIR ($node)" >&2
    SLURM_CONF="$DIR/slurm.conf" sinfo >&2
}

alive() { [ -f "$DIR/run/$1.pid" ] && kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null; }

# Our job steps: slurmstepd processes started by our slurmd carry its SLURM_CONF.
our_stepds() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
        tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$DIR/slurm.conf" && echo "${p#/proc/}"
    done
    return 0
}

stop() {
    [ -d "$DIR" ] || return 0
    DIR=$(cd "$DIR" && pwd)
    if alive slurmctld && [ -f "$DIR/slurm.conf" ]; then
        SLURM_CONF="$DIR/slurm.conf" scancel --user="$(id -un)" 2>/dev/null || true
        wait_for "[ -z \"\$(SLURM_CONF='$DIR/slurm.conf' squeue -h -t PD,R,CG -o %i)\" ]" 20 || true
    fi
    local name pid pids
    for name in "${DAEMONS[@]}"; do
        alive "$name" || continue
        pid=$(cat "$DIR/run/$name.pid")
        kill -TERM "$pid" 2>/dev/null || true
        wait_for "! kill -0 $pid" 15 || kill -KILL "$pid" 2>/dev/null || true
    done
    pids=$(our_stepds)
    if [ -n "$pids" ]; then
        echo "cluster.sh: killing job steps left running: $pids" >&2
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    rm -rf "$DIR"
}

status() {
    local name
    for name in "${DAEMONS[@]}"; do
        if alive "$name"; then echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"; else echo "$name: not running"; fi
    done
}

case $ACTION in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
