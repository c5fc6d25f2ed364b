# bench/lib.sh: what every bench script shares, sourced by bench/*.sh (bash):
#   log, die, budget                 messages and the script's time budget (MAX_TOTAL)
#   stop_pid PID [GRACE], stop_pid_any PID
#   netns_claim NETNS                 refuse a namespace in use; remove a stale, empty one
#   lab_up SCENARIO READY LOGFILE [ARGS...]
#                                     start `mtasts-lab up` in $NETNS; wait for the ready
#                                     file (180 s at most); sets LAB_PID, NETNS_OURS=1 and
#                                     WORLD_START (seconds it took)
#   netns_cleanup "COMM_PATTERN"      stop leftovers whose comm matches the case pattern,
#                                     then the lab, then the namespace and /etc/netns/NAME
#   nsexec CMD...                     run a command inside $NETNS
# The caller sets NETNS, LAB (the mtasts-lab binary) and MAX_TOTAL before use.

log() { printf '[%4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }
budget() { [ "$SECONDS" -lt "$MAX_TOTAL" ] || die "over the ${MAX_TOTAL} s budget; stopping"; }
nsexec() { ip netns exec "$NETNS" "$@"; }

LAB_PID=""; NETNS_OURS=0; WORLD_START=""

stop_pid() { # PID [seconds]: SIGTERM, then SIGKILL after the grace period
  local pid=$1 grace=${2:-10} i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "pid $pid did not stop in ${grace} s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_pid_any() { # PID that is not our child: SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

netns_claim() { # NETNS
  local ns=$1
  ip netns list | grep -qw "^$ns" || return 0
  if [ -z "$(ip netns pids "$ns" 2>/dev/null)" ]; then
    log "removing a stale, empty namespace $ns"
    ip netns del "$ns"; rm -rf "/etc/netns/$ns"
  else
    die "namespace $ns exists and has processes (another run?); stop them or choose another name"
  fi
}

lab_up() { # SCENARIO READY LOGFILE [extra mtasts-lab up args...]
  local scen=$1 ready=$2 logfile=$3 i t0
  shift 3
  rm -f "$ready"
  t0=$(date +%s.%N)
  "$LAB" up "$scen" --netns "$NETNS" --ready-file "$ready" "$@" > "$logfile" 2>&1 &
  LAB_PID=$!
  NETNS_OURS=1
  for ((i = 0; i < 1800; i++)); do   # up to 180 s
    [ -s "$ready" ] && break
    kill -0 "$LAB_PID" 2>/dev/null || { cat "$logfile" >&2; die "mtasts-lab exited"; }
    sleep 0.1
  done
  [ -s "$ready" ] || die "the world was not ready within 180 s"
  WORLD_START=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
}

netns_cleanup() { # "COMM_PATTERN" (a case pattern such as "mtasts|python*")
  local pattern=$1 p comm
  if [ "$NETNS_OURS" = 1 ]; then
    for p in $(ip netns pids "$NETNS" 2>/dev/null); do
      [ "$p" = "$LAB_PID" ] && continue
      comm=$(cat "/proc/$p/comm" 2>/dev/null || true)
      # shellcheck disable=SC2254
      case "$comm" in
        $pattern) log "stopping leftover $comm (pid $p)"; stop_pid_any "$p" ;;
      esac
    done
  fi
  # The lab's parent deletes the namespace and /etc/netns/NAME itself on SIGTERM.
  stop_pid "$LAB_PID" 20; LAB_PID=""
  if [ "$NETNS_OURS" = 1 ] && ip netns list | grep -qw "^$NETNS"; then
    ip netns del "$NETNS" 2>/dev/null || true
  fi
  [ "$NETNS_OURS" = 1 ] && rm -rf "/etc/netns/$NETNS"
  return 0
}
