#!/usr/bin/env bash
# A throw-away one-node SLURM cluster on this machine, for tests/test_slurm.py.
#
#   tests/slurm/cluster.sh start    install (if missing) + start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh stop     stop what `start` started, restore /etc/slurm/slurm.conf
#   tests/slurm/cluster.sh status   show daemons, sinfo, squeue
#
# Must run as root (it installs packages, writes /etc/slurm/slurm.conf and runs the
# daemons). Works non-interactively (CI=true, no stdin). Both `start` and `stop` are
# idempotent.
#
# Layout:
#   - one node (this host, on 127.0.0.1), one partition `debug` (Default=YES);
#   - no cgroups (proctrack/linuxproc, task/none), no accounting database
#     (accounting_storage/none: use `squeue` for job status, not `sacct`);
#   - fake GPUs: the node declares $GIFT_SLURM_GPUS GPUs as SLURM GRES (GresTypes=gpu, Gres=gpu:N, a
#     gres.conf whose File= lines name character devices made with mknod under $GIFT_SLURM_DIR/dev; no
#     GPU behind them), so --gpus, CUDA_VISIBLE_DEVICES and GPU binding are SLURM's own behaviour;
#   - all state, spool, logs and pid files under $GIFT_SLURM_DIR (default /var/tmp/gift-slurm);
#     not /tmp: on some machines /tmp is a small tmpfs that can be mounted over
#     while the daemons run, which hides their state and pid files;
#   - the config is installed at /etc/slurm/slurm.conf, because `srun` inside a job
#     only finds its configuration there (an exported SLURM_CONF is not enough);
#     an existing file is backed up and restored by `stop`.
#
# Environment knobs:
#   GIFT_SLURM_DIR        scratch directory              (default /var/tmp/gift-slurm)
#   GIFT_SLURM_PARTITION  partition name                 (default debug)
#   GIFT_SLURM_TIMEOUT    seconds to wait for node idle  (default 60)
#   GIFT_SLURM_GPUS       fake GPUs of the node          (default 4)
set -euo pipefail

SCRATCH="${GIFT_SLURM_DIR:-/var/tmp/gift-slurm}"
PARTITION="${GIFT_SLURM_PARTITION:-debug}"
TIMEOUT="${GIFT_SLURM_TIMEOUT:-60}"
GPUS="${GIFT_SLURM_GPUS:-4}"
ETC_CONF=/etc/slurm/slurm.conf
BACKUP="${ETC_CONF}.gift-backup"
ETC_GRES=/etc/slurm/gres.conf       # slurmd reads gres.conf beside the slurm.conf it was given
GRES_BACKUP="${ETC_GRES}.gift-backup"
MARKER="# gift-slurm test cluster (written by tests/slurm/cluster.sh)"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID="$SCRATCH/munged.pid"     # only written when *we* started munged
export DEBIAN_FRONTEND=noninteractive

log() { echo "[cluster.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, writes /etc/slurm)"
}

# pid_alive PIDFILE NAME: true if PIDFILE holds a live process whose comm is NAME.
pid_alive() {
    local f="$1" name="$2" pid comm
    [ -s "$f" ] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [ "$comm" = "$name" ]
}

# stop_pidfile PIDFILE NAME: TERM the process, wait up to 15 s, then KILL. Never by name.
stop_pidfile() {
    local f="$1" name="$2" pid i
    if ! pid_alive "$f" "$name"; then
        rm -f "$f"
        return 0
    fi
    pid="$(tr -dc '0-9' <"$f")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) still alive after 15 s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    command -v apt-get >/dev/null || die "slurm-wlm/munge missing and no apt-get to install them"
    log "installing slurm-wlm and munge with apt-get (non-interactive)"
    # Keep the packages' maintainer scripts from starting daemons with the stock
    # configuration (systemd or sysv): a policy-rc.d that says "no" (exit 101).
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    {
        apt-get update -q &&
        apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            slurm-wlm munge </dev/null
    } >&2 || rc=$?
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
    [ "$rc" -eq 0 ] || die "apt-get install slurm-wlm munge failed (rc=$rc)"
}

write_conf() {
    local host cpus mem_kib mem_mib
    host="$(hostname -s 2>/dev/null || uname -n)"; host="${host%%.*}"
    cpus="$(nproc)"
    mem_kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    # Leave 10 % (at least 512 MiB) to the OS: slurmd drains a node that
    # reports less memory than its configured RealMemory.
    mem_mib=$(( mem_kib / 1024 ))
    local spare=$(( mem_mib / 10 )); [ "$spare" -lt 512 ] && spare=512
    mem_mib=$(( mem_mib - spare )); [ "$mem_mib" -lt 256 ] && mem_mib=256
    mkdir -p "$SCRATCH"/{state,spool,log,dev}
    # Fake GPUs: character devices with NVIDIA's major number (195); slurmd refuses plain files.
    local i
    for i in $(seq 0 $(( GPUS - 1 ))); do
        [ -c "$SCRATCH/dev/nvidia$i" ] || { rm -f "$SCRATCH/dev/nvidia$i"; mknod "$SCRATCH/dev/nvidia$i" c 195 "$i"; }
    done
    printf '%s\nName=gpu File=%s/dev/nvidia[0-%d]\n' "$MARKER" "$SCRATCH" $(( GPUS - 1 )) >"$SCRATCH/gres.conf"
    cat >"$SCRATCH/slurm.conf" <<EOF
$MARKER
ClusterName=gift
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
GresTypes=gpu
ReturnToService=2
# Finished jobs stay visible to squeue for 10 minutes: Snakemake's SLURM
# executor polls with squeue here (no accounting => no sacct).
MinJobAge=600
SchedulerType=sched/backfill
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/slurmctld.pid
SlurmdPidFile=$SCRATCH/slurmd.pid
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mib} Gres=gpu:${GPUS} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    mkdir -p /etc/slurm
    if [ -e "$ETC_CONF" ] && ! grep -qF "$MARKER" "$ETC_CONF"; then
        if [ -e "$BACKUP" ]; then
            die "$ETC_CONF is not ours and a backup $BACKUP already exists; refusing to overwrite either"
        fi
        log "backing up existing $ETC_CONF to $BACKUP"
        cp -p "$ETC_CONF" "$BACKUP"
    fi
    install -m 0644 "$SCRATCH/slurm.conf" "$ETC_CONF"
    if [ -e "$ETC_GRES" ] && ! grep -qF "$MARKER" "$ETC_GRES"; then
        [ -e "$GRES_BACKUP" ] && die "$ETC_GRES is not ours and a backup $GRES_BACKUP already exists"
        log "backing up existing $ETC_GRES to $GRES_BACKUP"
        cp -p "$ETC_GRES" "$GRES_BACKUP"
    fi
    install -m 0644 "$SCRATCH/gres.conf" "$ETC_GRES"
}

start_munge() {
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating munge key $MUNGE_KEY"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    if munge_works; then
        log "munged already running"
        return 0
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    log "starting munged"
    runuser -u munge -- munged --force
    local i
    for i in $(seq 1 50); do munge_works && break; sleep 0.2; done
    munge_works || die "munged does not answer (see /var/log/munge/munged.log)"
    # Remember that we own it, so `stop` ends it (and only it).
    if [ -s /run/munge/munged.pid ]; then
        cp /run/munge/munged.pid "$MUNGE_PID"
    else
        log "warning: no /run/munge/munged.pid; \`stop\` will leave munged running"
    fi
}

node_state() { sinfo -h -N -p "$PARTITION" -o '%t' 2>/dev/null | head -n1; }

wait_idle() {
    local t0 state=""
    t0=$(date +%s)
    while :; do
        state="$(node_state || true)"
        case "$state" in
            idle|mix|alloc) log "node is $state after $(( $(date +%s) - t0 )) s"; return 0 ;;
        esac
        if [ $(( $(date +%s) - t0 )) -ge "$TIMEOUT" ]; then
            log "node not idle after ${TIMEOUT} s (state: '${state}')"
            sinfo -N -l >&2 || true
            log "--- tail of slurmctld.log";  tail -n 30 "$SCRATCH/log/slurmctld.log" >&2 || true
            log "--- tail of slurmd.log";     tail -n 30 "$SCRATCH/log/slurmd.log" >&2 || true
            return 1
        fi
        sleep 0.5
    done
}

do_start() {
    need_root
    local t0; t0=$(date +%s)
    install_packages
    mkdir -p "$SCRATCH"
    if pid_alive "$SCRATCH/slurmctld.pid" slurmctld && pid_alive "$SCRATCH/slurmd.pid" slurmd \
        && [ -e "$ETC_CONF" ] && grep -qF "$MARKER" "$ETC_CONF" && grep -q "Gres=gpu:${GPUS} " "$ETC_CONF"; then
        log "already running"
        wait_idle
        return
    fi
    stop_pidfile "$SCRATCH/slurmd.pid" slurmd            # daemons of another layout (e.g. without GPUs)
    stop_pidfile "$SCRATCH/slurmctld.pid" slurmctld
    write_conf
    start_munge
    if ! pid_alive "$SCRATCH/slurmctld.pid" slurmctld; then
        log "starting slurmctld"
        # -c: start from a clean state (no jobs or node states from a previous run).
        slurmctld -c -f "$ETC_CONF"
    fi
    if ! pid_alive "$SCRATCH/slurmd.pid" slurmd; then
        log "starting slurmd"
        slurmd -f "$ETC_CONF"
    fi
    wait_idle || die "cluster did not come up"
    log "started in $(( $(date +%s) - t0 )) s: partition '$PARTITION' with gpu:$GPUS on $(hostname -s 2>/dev/null || uname -n)"
}

do_stop() {
    need_root
    if pid_alive "$SCRATCH/slurmctld.pid" slurmctld; then
        # Cancel whatever is still queued or running on the test cluster, so no
        # job step outlives the daemons.
        if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
            log "cancelling remaining jobs"
            scancel --user="$(id -un)" 2>/dev/null || true
            local i
            for i in $(seq 1 50); do
                [ -z "$(squeue -h -t PD,R,CG -o %i 2>/dev/null)" ] && break
                sleep 0.2
            done
        fi
    fi
    stop_pidfile "$SCRATCH/slurmd.pid" slurmd
    stop_pidfile "$SCRATCH/slurmctld.pid" slurmctld
    stop_pidfile "$MUNGE_PID" munged
    if [ -e "$BACKUP" ] && { [ ! -e "$ETC_CONF" ] || grep -qF "$MARKER" "$ETC_CONF"; }; then
        log "restoring $ETC_CONF from $BACKUP"
        mv -f "$BACKUP" "$ETC_CONF"
    elif [ -e "$ETC_CONF" ] && grep -qF "$MARKER" "$ETC_CONF"; then
        rm -f "$ETC_CONF"
        rmdir /etc/slurm 2>/dev/null || true
    fi
    if [ -e "$GRES_BACKUP" ] && { [ ! -e "$ETC_GRES" ] || grep -qF "$MARKER" "$ETC_GRES"; }; then
        mv -f "$GRES_BACKUP" "$ETC_GRES"
    elif [ -e "$ETC_GRES" ] && grep -qF "$MARKER" "$ETC_GRES"; then
        rm -f "$ETC_GRES"
    fi
    rmdir /etc/slurm 2>/dev/null || true
    log "stopped"
}

do_status() {
    local rc=0 n
    for n in slurmctld slurmd; do
        if pid_alive "$SCRATCH/$n.pid" "$n"; then
            echo "$n: running (pid $(tr -dc '0-9' <"$SCRATCH/$n.pid"))"
        else
            echo "$n: not running"; rc=3
        fi
    done
    if munge_works; then echo "munged: running"; else echo "munged: not running"; rc=3; fi
    if [ "$rc" -eq 0 ]; then
        sinfo -o "%P %N %c %G %t" || true
        squeue || true
    fi
    return "$rc"
}

case "${1:-}" in
    start)  do_start ;;
    stop)   do_stop ;;
    status) do_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
