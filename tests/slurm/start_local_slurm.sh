#!/usr/bin/env bash
# Start (installing and configuring first, if needed) a real one-node Slurm
# cluster on this machine, for the tests marked `slurm` and for CI.
#
#   sudo tests/slurm/start_local_slurm.sh      # idempotent; returns at once if already up
#   sudo tests/slurm/stop_local_slurm.sh
#
# Daemons (each started in the background here, its PID recorded under $RUN_DIR):
#   munged -> mariadbd (private, 127.0.0.1:3307) -> slurmdbd (:6819) -> slurmctld -> slurmd
# Why each setting: see tests/slurm/README.md and shared/notes/slurm.md.
#
# Environment knobs (all optional):
#   ASSAY_SLURM_CPUS      CPUs the node advertises (default 8, see "CPUs" below;
#                         "auto" = what `slurmd -C` detects)
#   ASSAY_SLURM_TIMEOUT   seconds to wait for each readiness step (default 60)
set -euo pipefail

T0=$(date +%s.%N)

CLUSTER=assay-test
PARTITION="batch"
NCPUS=${ASSAY_SLURM_CPUS:-8}
DEADLINE_S=${ASSAY_SLURM_TIMEOUT:-60}

CONF_DIR=/etc/slurm                      # Debian's compiled-in default: no SLURM_CONF needed
STATE_DIR=/var/lib/assay-slurm           # slurmctld state, slurmd spool, MariaDB datadir
RUN_DIR=/var/run/assay-slurm             # PID files of what this script started, sockets
LOG_DIR=/var/log/assay-slurm
DB_DIR=$STATE_DIR/mysql
DB_SOCK_DIR=$RUN_DIR/mysql               # must be writable by the mysql user
DB_SOCK=$DB_SOCK_DIR/mysqld.sock
DB_PORT=3307                             # not 3306: never collide with a system MariaDB
DBD_PORT=6819
FAKE_GPUS=(/dev/assay-fake-gpu0 /dev/assay-fake-gpu1)

PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

log() { echo "[start_local_slurm] $*"; }
die() { echo "[start_local_slurm] ERROR: $*" >&2; exit 1; }
elapsed() { echo "$(date +%s.%N) $T0" | awk '{printf "%.1f", $1 - $2}'; }

[[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, starts daemons)"
[[ $NCPUS =~ ^([1-9][0-9]*|auto)$ ]] || die "ASSAY_SLURM_CPUS must be a positive integer or 'auto', not '$NCPUS'"
[[ $DEADLINE_S =~ ^[1-9][0-9]*$ ]] || die "ASSAY_SLURM_TIMEOUT must be a positive integer, not '$DEADLINE_S'"

# ---------------------------------------------------------------------------
# Process helpers (shared logic with stop_local_slurm.sh: a PID file counts only
# if its process is alive, not a zombie, and runs the expected program, so a
# stale file left by a killed daemon or a reused PID is never trusted).
# ---------------------------------------------------------------------------
pid_alive() {  # pid_alive PID BINARY
    local pid=$1 bin=$2 state exe
    [[ -n $pid && -d /proc/$pid ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z && $state != X ]] || return 1   # an exited daemon lingers as a zombie ~1.5 s
    # Debian installs the Slurm daemons through alternatives (/usr/sbin/slurmctld ->
    # slurmctld-wlm): compare resolved paths. " (deleted)": binary upgraded meanwhile.
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ ${exe% (deleted)} == "$(readlink -f "$bin")" ]]
}
daemon_alive() {  # daemon_alive NAME BINARY
    local f=$RUN_DIR/$1.pid
    [[ -f $f ]] && pid_alive "$(cat "$f")" "$2"
}

# name -> the binary it runs
declare -A EXE=([munged]=/usr/sbin/munged [mariadb]=/usr/sbin/mariadbd [slurmdbd]=/usr/sbin/slurmdbd
                [slurmctld]=/usr/sbin/slurmctld [slurmd]=/usr/sbin/slurmd)
ORDER=(munged mariadb slurmdbd slurmctld slurmd)

start_daemon() {  # start_daemon NAME [--chuid USER] -- BINARY ARGS...
    # start-stop-daemon --background closes our stdout/stderr in the daemon: a caller
    # that captures this script's output (pytest, CI) is not left waiting on a pipe
    # held open by a daemon. It also refuses to start a second copy of a live one.
    local name=$1; shift
    local chuid=()
    if [[ $1 == --chuid ]]; then chuid=(--chuid "$2"); shift 2; fi
    [[ $1 == -- ]] && shift
    local bin=$1; shift
    if daemon_alive "$name" "${EXE[$name]}"; then
        log "$name already running (pid $(cat "$RUN_DIR/$name.pid"))"
        return 0
    fi
    rm -f "$RUN_DIR/$name.pid"
    start-stop-daemon --start --quiet --background --make-pidfile \
        --pidfile "$RUN_DIR/$name.pid" --output "$LOG_DIR/$name.out" \
        "${chuid[@]}" --exec "$bin" -- "$@"
    log "started $name (pid $(cat "$RUN_DIR/$name.pid"))"
}

fail_with_logs() {  # fail_with_logs NAME MESSAGE: the daemon's own log (or its stderr), last lines
    local name=$1 msg=$2 f=$LOG_DIR/$1.log
    echo "[start_local_slurm] ERROR: $msg" >&2
    [[ -s $f ]] || f=$LOG_DIR/$name.out
    if [[ -s $f ]]; then echo "---- tail of $f ----" >&2; tail -n 20 "$f" >&2; fi
    exit 1
}

wait_for() {  # wait_for NAME WHAT CMD...: poll CMD until it succeeds; fail fast if NAME died
    local name=$1 what=$2; shift 2
    local end=$(( $(date +%s) + DEADLINE_S )) out
    until out=$("$@" 2>&1); do
        if ! daemon_alive "$name" "${EXE[$name]}"; then
            [[ -z $out ]] || echo "last output of '$*': $out" >&2
            fail_with_logs "$name" "$name died while waiting for $what"
        fi
        if (( $(date +%s) >= end )); then
            [[ -z $out ]] || echo "last output of '$*': $out" >&2
            fail_with_logs "$name" "timed out after ${DEADLINE_S}s waiting for $what"
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------
# 1. Packages (only when one is missing). policy-rc.d keeps the packages' init
#    scripts from starting system daemons (a MariaDB on 3306, munged, slurm*).
# ---------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if (( ${#missing[@]} )); then
    log "installing: ${missing[*]}"
    created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}" >"/tmp/assay-slurm-apt.log" 2>&1
    }
    # Package lists may be absent (fresh image) or stale: update once and retry.
    if ! apt_install; then
        log "apt-get install failed; running apt-get update and retrying"
        apt-get update -qq >>/tmp/assay-slurm-apt.log 2>&1 || true
        apt_install || { tail -n 30 /tmp/assay-slurm-apt.log >&2; die "apt-get install failed (log: /tmp/assay-slurm-apt.log)"; }
    fi
    if (( created_policy )); then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    log "packages installed in $(elapsed) s"
fi

# ---------------------------------------------------------------------------
# 2. Render the configuration (in memory first: compare before touching files).
# ---------------------------------------------------------------------------
HOST=$(hostname -s)   # slurmctld refuses a SlurmctldHost that is not its short hostname

# Node line from the hardware, RealMemory lowered to 90%: a RealMemory above
# what slurmd detects drains the node ("Low RealMemory").
hw=$(slurmd -C 2>/dev/null | head -n 1)
[[ $hw == NodeName=* ]] || die "unexpected 'slurmd -C' output: $hw"
real_mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(( real_mem * 9 / 10 ))
if [[ $NCPUS == auto ]]; then
    node_hw=$(sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//' <<<"$hw")
    overrides=""
else
    # CPUs: the machine may have only 2 cores, but test jobs are tiny 1-CPU jobs and
    # several must run at once (parallel jobs, arrays with %N). Advertise NCPUS
    # cores; SlurmdParameters=config_overrides makes slurmd trust slurm.conf instead
    # of draining the node for having fewer CPUs than configured. Nothing is pinned
    # (task/none), so this only over-subscribes scheduling, not the hardware.
    node_hw="CPUs=$NCPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NCPUS ThreadsPerCore=1"
    overrides="SlurmdParameters=config_overrides"
fi

SLURM_CONF_TEXT="# Written by tests/slurm/start_local_slurm.sh: the assay one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$RUN_DIR/slurm-own/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurm-own/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
# No systemd, no cgroups on this machine.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# Cores and memory are consumable; without DefMemPerCPU a job with no --mem
# takes the whole node's memory and jobs run one at a time.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
$overrides
# An afterok job whose upstream failed is cancelled instead of PENDING forever.
DependencyParameters=kill_invalid_depend
# Fast scheduling, quick kills, finished jobs visible in squeue for 5 min.
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
KillWait=5
MinJobAge=300
InactiveLimit=0
# submitit reads job states with sacct: real accounting through slurmdbd.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
# Fake GPUs (character devices cloned from /dev/null) so --gpus/--gres requests are accepted.
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 $node_hw RealMemory=$mem Gres=gpu:${#FAKE_GPUS[@]} State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"

GRES_CONF_TEXT="# Written by tests/slurm/start_local_slurm.sh: fake GPUs, no NVML autodetection.
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/assay-fake-gpu[0-$(( ${#FAKE_GPUS[@]} - 1 ))]
"

# The DB password is random, made once, kept root-only.
mkdir -p "$STATE_DIR" "$RUN_DIR/slurm-own" "$LOG_DIR"
if [[ ! -s $STATE_DIR/dbpass ]]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE_DIR/dbpass")
fi
DB_PASS=$(cat "$STATE_DIR/dbpass")

SLURMDBD_CONF_TEXT="# Written by tests/slurm/start_local_slurm.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN_DIR/slurm-own/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
"

changed=0
conf_differs() { ! cmp -s "$1" <(printf '%s' "$2"); }
conf_differs "$CONF_DIR/slurm.conf" "$SLURM_CONF_TEXT" && changed=1
conf_differs "$CONF_DIR/gres.conf" "$GRES_CONF_TEXT" && changed=1
conf_differs "$CONF_DIR/slurmdbd.conf" "$SLURMDBD_CONF_TEXT" && changed=1

node_state() { sinfo -h -o %T 2>/dev/null | head -n 1; }
node_ready() {  # a usable node: idle, or busy with jobs (mixed/allocated)
    case $(node_state) in idle|mixed|allocated) return 0 ;; *) return 1 ;; esac
}
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

all_alive=1
for d in "${ORDER[@]}"; do daemon_alive "$d" "${EXE[$d]}" || all_alive=0; done

# ---------------------------------------------------------------------------
# 3. Already up with this configuration? Return at once.
# ---------------------------------------------------------------------------
if (( all_alive && !changed )) && ctld_up && node_ready; then
    log "already up: node $HOST is $(node_state) (checked in $(elapsed) s)"
    exit 0
fi

# A configuration change while daemons run: restart everything we started.
if (( changed )); then
    any_alive=0
    for d in "${ORDER[@]}"; do daemon_alive "$d" "${EXE[$d]}" && any_alive=1; done
    if (( any_alive )); then
        log "configuration changed: restarting the daemons"
        "$(dirname "$0")/stop_local_slurm.sh"
    fi
fi

# ---------------------------------------------------------------------------
# 4. Write files, directories, devices.
# ---------------------------------------------------------------------------
mkdir -p "$CONF_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
write_conf() {  # write_conf PATH MODE TEXT (atomic replace)
    printf '%s' "$3" >"$1.tmp"
    chmod "$2" "$1.tmp"
    chown root:root "$1.tmp"
    mv -f "$1.tmp" "$1"
}
write_conf "$CONF_DIR/slurm.conf" 644 "$SLURM_CONF_TEXT"
write_conf "$CONF_DIR/gres.conf" 644 "$GRES_CONF_TEXT"
# slurmdbd refuses a slurmdbd.conf not owned by SlurmUser (root here) with mode 600.
write_conf "$CONF_DIR/slurmdbd.conf" 600 "$SLURMDBD_CONF_TEXT"

# gres.conf needs character devices (a regular file is refused); c 1 3 = /dev/null.
for dev in "${FAKE_GPUS[@]}"; do
    if [[ ! -c $dev ]]; then rm -f "$dev"; mknod -m 666 "$dev" c 1 3; fi
done

# MUNGE: key created once (owned by munge, mode 400); /run/munge is not made for us.
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge

# MariaDB: private datadir, initialised once.
install -d -o mysql -g mysql -m 755 "$DB_SOCK_DIR"
if [[ ! -d $DB_DIR/mysql ]]; then
    log "initialising the MariaDB datadir $DB_DIR"
    rm -rf "$DB_DIR"
    install -d -o mysql -g mysql -m 750 "$DB_DIR"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" \
        --auth-root-authentication-method=socket --skip-test-db \
        >"$LOG_DIR/mariadb-install.log" 2>&1 \
        || { tail -n 30 "$LOG_DIR/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
fi

# ---------------------------------------------------------------------------
# 5. Start the daemons, each waited for before the next needs it.
# ---------------------------------------------------------------------------
start_daemon munged --chuid munge:munge -- /usr/sbin/munged --foreground
wait_for munged "munge" bash -c 'munge -n | unmunge'

# --no-defaults: ignore /etc/mysql (a system MariaDB's settings, port 3306).
start_daemon mariadb -- /usr/sbin/mariadbd --no-defaults --user=mysql \
    --datadir="$DB_DIR" --socket="$DB_SOCK" --port=$DB_PORT --bind-address=127.0.0.1 \
    --skip-name-resolve --pid-file="$DB_SOCK_DIR/mariadbd.pid" \
    --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 --skip-log-bin
wait_for mariadb "MariaDB on $DB_SOCK" mariadb-admin --no-defaults --socket="$DB_SOCK" ping

# The DB user slurmdbd logs in as (TCP from 127.0.0.1; 'localhost' covers the socket).
mariadb --no-defaults --socket="$DB_SOCK" -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'slurm'@'localhost';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

start_daemon slurmdbd -- /usr/sbin/slurmdbd -D
wait_for slurmdbd "slurmdbd on port $DBD_PORT" sacctmgr -n list cluster

# Register the cluster before slurmctld starts, so it connects to a known cluster.
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    log "registered cluster $CLUSTER in accounting"
fi

# -i: ignore unreadable state left by an abrupt kill instead of refusing to start.
start_daemon slurmctld -- /usr/sbin/slurmctld -D -i
wait_for slurmctld "scontrol ping" ctld_up

start_daemon slurmd -- /usr/sbin/slurmd -D
end=$(( $(date +%s) + DEADLINE_S ))
resumed=0
until node_ready; do
    daemon_alive slurmd "${EXE[slurmd]}" || fail_with_logs slurmd "slurmd died while waiting for the node"
    daemon_alive slurmctld "${EXE[slurmctld]}" || fail_with_logs slurmctld "slurmctld died while waiting for the node"
    state=$(node_state)
    # A node drained before an abrupt stop stays drained across restarts: resume it once.
    if [[ $state == drain* && $resumed -eq 0 ]]; then
        log "node is $state ($(sinfo -h -o %E)); resuming it"
        scontrol update nodename="$HOST" state=resume || true
        resumed=1
    fi
    if (( $(date +%s) >= end )); then
        echo "[start_local_slurm] node state: '$state', reason: $(sinfo -h -o %E 2>/dev/null)" >&2
        fail_with_logs slurmd "timed out after ${DEADLINE_S}s waiting for node $HOST to be idle"
    fi
    sleep 0.2
done

log "cluster $CLUSTER up: node $HOST is $(node_state), partition $PARTITION; started in $(elapsed) s"
