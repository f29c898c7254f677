#!/usr/bin/env bash
# Stop the one-node test cluster started by start_local_slurm.sh.
#
# Stops only the PIDs that script recorded under $RUN_DIR (never by name: other
# Slurm/MariaDB/MUNGE processes on the machine are left alone), and waits until
# each has exited. Jobs still running (their slurmstepd) are not touched; cancel
# them first (`scancel -u root`) if that matters. Safe to run when nothing runs.
#
# Environment knob: ASSAY_SLURM_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 30)
set -euo pipefail

T0=$(date +%s.%N)
RUN_DIR=/var/run/assay-slurm
STOP_TIMEOUT_S=${ASSAY_SLURM_STOP_TIMEOUT:-30}

log() { echo "[stop_local_slurm] $*"; }
elapsed() { echo "$(date +%s.%N) $T0" | awk '{printf "%.1f", $1 - $2}'; }

[[ $(id -u) -eq 0 ]] || { echo "[stop_local_slurm] ERROR: must run as root" >&2; exit 1; }

# Alive = exists, is not a zombie (an exited daemon can linger as one for ~1.5 s,
# which would make a naive `kill -0` wait forever), and still runs the program we
# started (a stale PID file after a reboot or an abrupt kill may name a reused PID).
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

declare -A EXE=([munged]=/usr/sbin/munged [mariadb]=/usr/sbin/mariadbd [slurmdbd]=/usr/sbin/slurmdbd
                [slurmctld]=/usr/sbin/slurmctld [slurmd]=/usr/sbin/slurmd)

stop_group() {  # stop_group NAME...: SIGTERM all, wait, SIGKILL what is left after the timeout
    local name pid pids=() names=()
    for name in "$@"; do
        local f=$RUN_DIR/$name.pid
        [[ -f $f ]] || continue
        pid=$(cat "$f")
        if pid_alive "$pid" "${EXE[$name]}"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid"); names+=("$name")
        else
            log "$name not running (stale pid file removed)"
            rm -f "$f"
        fi
    done
    local i end=$(( $(date +%s) + STOP_TIMEOUT_S )) killed=0
    for i in "${!pids[@]}"; do
        while pid_alive "${pids[$i]}" "${EXE[${names[$i]}]}"; do
            if (( $(date +%s) >= end )) && (( !killed )); then
                log "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for ${STOP_TIMEOUT_S}s: SIGKILL"
                kill -KILL "${pids[$i]}" 2>/dev/null || true
                killed=1
            fi
            sleep 0.1
        done
        killed=0
        rm -f "$RUN_DIR/${names[$i]}.pid"
        log "stopped ${names[$i]} (pid ${pids[$i]})"
    done
}

# Reverse start order: the Slurm daemons first (slurmctld may flush accounting
# records to slurmdbd as it exits), then slurmdbd, its database, and MUNGE last.
stop_group slurmd slurmctld
stop_group slurmdbd
stop_group mariadb
stop_group munged

log "stopped in $(elapsed) s"
