#!/usr/bin/env bash
# bench/resolver.sh: our policy daemon (`mtasts daemon`) vs postfix-mta-sts-resolver 1.5.1 (the
# peer), side by side in one lab world, following /work/shared/benchmarks.md.
#
#   bash bench/resolver.sh [--quick]        (as root, from the repository root)
#
# 1. installs the peer into target/peer-venv if missing (plus uvloop, its optional speed-up);
#    builds mtasts, mtasts-lab and socketmap-load (release);
# 2. generates lab scenarios with N enforce policy domains d00001.bench.test ... (TXT record +
#    policy host with a valid certificate each) under target/bench/;
# 3. starts a world of max(COLD_N, MEM_N) domains in network namespace `mtbench`, runs the
#    daemons inside it, each on its own port (ours 127.0.0.1:8461, the peer 127.0.0.1:18461);
# 4. cold: each daemon freshly started, COLD_N distinct domains asked once over 64
#    connections (socketmap-load --cold), alternating ours/peer, rounds after a warm-up;
# 5. memory: each daemon freshly started, VmRSS at idle, then MEM_N policies cached, VmRSS
#    and VmHWM again: bytes per cached policy;
# 6. warm: with both caches full, socketmap-load at 1, 16 and 64 connections against ours and
#    the peer, and redis-benchmark -t get against redis-server 127.0.0.1:16379 (the
#    near-physical reference), alternating, rounds after a warm-up;
# 7. DANE cost (issue 16): the same daemon with `dane = "on"` (ours-dane, 127.0.0.1:8462)
#    in the cold and warm phases: every lookup then also asks for the MX RRset and addresses
#    with the AD flag (the bench domains are unsigned, so MTA-STS answers as before, which is
#    the case of almost every domain); ours (dane off) is the unchanged baseline;
# 8. prints the Markdown table and writes it to target/bench/resolver-results.md.
#
# --quick: 2 rounds, 2 s warm runs, one cold round each without warm-up, memory at 20,000.
# Environment overrides (for experiments): MTBENCH_ROUNDS, MTBENCH_DURATION, MTBENCH_COLD_N,
# MTBENCH_MEM_N, MTBENCH_COLD_ROUNDS, MTBENCH_NETNS, MTBENCH_AAAA=0 (no AAAA records),
# MTBENCH_DANE=0 (leave out ours-dane).
#
# Bounded: every wait has a time limit, every loop a count, every load run a duration or
# --max-time, and the whole script aborts after MAX_TOTAL seconds. On exit (normal, error or
# Ctrl-C) the trap stops the daemons, redis and the world and deletes the namespace.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
COMMAND="bash bench/resolver.sh${*:+ $*}"

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "resolver.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "resolver.sh: needs root (network namespaces); run with sudo" >&2
  exit 2
fi

# ---------------------------------------------------------------- parameters
NETNS=${MTBENCH_NETNS:-mtbench}
OURS_ADDR=127.0.0.1:8461
DANE_ADDR=127.0.0.1:8462
PEER_PORT=18461
PEER_ADDR=127.0.0.1:$PEER_PORT
REDIS_PORT=16379
CONCS=(1 16 64)
COLD_CONNS=64
MAX_TOTAL=2700          # hard stop for the whole script (s)
if [ "$QUICK" = 1 ]; then
  ROUNDS=${MTBENCH_ROUNDS:-2}; DURATION=${MTBENCH_DURATION:-2}
  COLD_N=${MTBENCH_COLD_N:-10000}; MEM_N=${MTBENCH_MEM_N:-20000}
  COLD_ROUNDS=${MTBENCH_COLD_ROUNDS:-1}; COLD_WARMUP=0
else
  ROUNDS=${MTBENCH_ROUNDS:-5}; DURATION=${MTBENCH_DURATION:-5}
  COLD_N=${MTBENCH_COLD_N:-10000}; MEM_N=${MTBENCH_MEM_N:-100000}
  COLD_ROUNDS=${MTBENCH_COLD_ROUNDS:-5}; COLD_WARMUP=1
fi
WORLD_N=$(( MEM_N > COLD_N ? MEM_N : COLD_N ))
PEER_CACHE_SIZE=$(( MEM_N * 2 > 200000 ? MEM_N * 2 : 200000 ))
AAAA_SUFFIX=-aaaa
[ "${MTBENCH_AAAA:-1}" = 0 ] && AAAA_SUFFIX=""

BENCH=$ROOT/target/bench
RUN=$BENCH/resolver-run
RAW=$RUN/rounds.jsonl
RESULTS=$BENCH/resolver-results.md
REPORT="python3 $ROOT/bench/resolver/report.py"
VENV=$ROOT/target/peer-venv
LOAD=$ROOT/target/release/socketmap-load
MTASTS=$ROOT/target/release/mtasts
LAB=$ROOT/target/release/mtasts-lab

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- cleanup
OURS_PID=""; DANE_PID=""; PEER_PID=""; REDIS_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$OURS_PID" 25; OURS_PID=""
  stop_pid "$DANE_PID" 25; DANE_PID=""
  stop_pid "$PEER_PID" 25; PEER_PID=""
  stop_pid "$REDIS_PID" 5; REDIS_PID=""
  # Safety net: anything this script started inside the namespace and did not stop.
  netns_cleanup "mtasts|mta-sts-daemon|redis-server|socketmap-load|redis-benchmar*"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- tools, peer, build
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v ip >/dev/null || need+=(iproute2)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/mta-sts-daemon" ]; then
  log "installing the peer into $VENV"
  python3 -m venv "$VENV"
  timeout 600 "$VENV/bin/pip" install -q postfix-mta-sts-resolver==1.5.1
fi
# uvloop is the peer's documented optional speed-up: with it the peer runs at its best.
if ! "$VENV/bin/python" -c 'import uvloop' 2>/dev/null; then
  log "installing uvloop into $VENV (the peer uses it when present)"
  timeout 600 "$VENV/bin/pip" install -q uvloop
fi
PEER_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("postfix-mta-sts-resolver"))')
UVLOOP_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("uvloop"))')
PY_VERSION=$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')
[ "$PEER_VERSION" = 1.5.1 ] || log "warning: peer version is $PEER_VERSION, not 1.5.1"

log "building mtasts, mtasts-lab, socketmap-load (release)"
timeout 1800 cargo build --release --bin mtasts --bin mtasts-lab --bin socketmap-load >&2

OURS=1
if ! "$MTASTS" daemon --help >/dev/null 2>&1; then
  log "warning: '$MTASTS daemon' does not exist yet: measuring the peer alone"
  OURS=0
fi

# ---------------------------------------------------------------- scenario and domain lists
mkdir -p "$RUN"
rm -f "$RAW" "$RUN"/*.json "$RUN"/*.csv "$RUN"/*.log
scenario_for() { # N: the scenario file with N policy domains, generated if missing or stale
  local f=$BENCH/resolver-world-$1$AAAA_SUFFIX.toml
  if [ ! -s "$f" ] || [ "$ROOT/bench/resolver/gen-scenario.sh" -nt "$f" ]; then
    log "generating $f ($1 domains)"
    bash "$ROOT/bench/resolver/gen-scenario.sh" "$1" "$f" "${AAAA_SUFFIX#-}" >&2
  fi
  echo "$f"
}
seq -f 'd%05g.bench.test' 1 "$COLD_N" > "$RUN/domains-cold.txt"
seq -f 'd%05g.bench.test' 1 "$MEM_N" > "$RUN/domains-mem.txt"
# The warm runs cycle through the cold set (cached by the memory phase, which covers it).
cp "$RUN/domains-cold.txt" "$RUN/domains-warm.txt"

# ---------------------------------------------------------------- the world
# One world of max(COLD_N, MEM_N) domains for every phase. Every mta-sts.<domain> also has
# AAAA ::1 (MTBENCH_AAAA=0 turns it off): both daemons ask for AAAA, and the lab answers a
# negative (NODATA) answer in time proportional to the number of domains in the world
# (Zone::apex_of scans them all for the SOA), which would make the lab, not the daemons, the
# bottleneck of the cold and memory phases. Nothing listens on [::1]:443, so a client that
# tries it first is refused at once and connects to 127.1.1.2.
netns_claim "$NETNS"
declare -A WORLD_STARTED
WORLD_SEQ=0
world_up() { # N
  local n=$1 scen
  scen=$(scenario_for "$n")
  WORLD_SEQ=$((WORLD_SEQ + 1))
  READY=$RUN/world-$WORLD_SEQ.json
  log "starting a world of $n domains in netns $NETNS"
  lab_up "$scen" "$READY" "$RUN/lab-$WORLD_SEQ.log"
  WORLD_STARTED[$n]=$WORLD_START
  CA=$($REPORT json-field "$READY" ca_pem_path)
  DNS=$($REPORT json-field "$READY" dns)
  HTTPS=$($REPORT json-field "$READY" https)
  log "world ready in ${WORLD_STARTED[$n]} s: dns $DNS, https $HTTPS"
  # The lab's state dir goes away with the world: keep a copy of its CA for the daemons.
  cp "$CA" "$RUN/lab-ca.pem"
  CA=$RUN/lab-ca.pem
  write_configs
}

# ---------------------------------------------------------------- daemon configs
write_configs() {
cat > "$RUN/peer.yml" <<EOF
# postfix-mta-sts-resolver $PEER_VERSION, written by bench/resolver.sh
host: 127.0.0.1
port: $PEER_PORT
reuse_port: true
shutdown_timeout: 5
# Keep cached entries fresh for the whole run: no refresh during the warm measurements.
cache_grace: 31536000
cache:
  type: internal
  options:
    cache_size: $PEER_CACHE_SIZE
default_zone:
  strict_testing: false
  timeout: 4
  require_sni: true
proactive_policy_fetching:
  enabled: false
EOF

cat > "$RUN/ours.toml" <<EOF
# mtasts daemon, written by bench/resolver.sh
listen = [{ tcp = "$OURS_ADDR" }]
shutdown_timeout = 5.0

[log]
level = "warn"

[resolver.dns]
servers = ["$DNS"]

[resolver.fetch]
ca_file = "$CA"
port = ${HTTPS##*:}

[resolver.store]
type = "memory"

[resolver.memory]
capacity = $PEER_CACHE_SIZE
EOF
  # ours-dane: the same, on its own port, with DANE first in the default zone.
  sed -e "s|$OURS_ADDR|$DANE_ADDR|" "$RUN/ours.toml" > "$RUN/ours-dane.toml"
  printf '\n[default_zone]\ndane = "on"\n' >> "$RUN/ours-dane.toml"
  # The warm runs measure the daemon's own cost with DANE assessments cached: keep them for an
  # hour (the default floor is 60 s, and the lab's negative answers carry no SOA, so without
  # this most assessments would have expired by the warm phase and every warm lookup would
  # ask the lab's DNS again; the cold rows show that cost).
  printf '\n[resolver.dane]\nmin_ttl = 3600\n' >> "$RUN/ours-dane.toml"
}

wait_port() { # PORT PID NAME: wait (up to 60 s) until something accepts on 127.0.0.1:PORT
  local port=$1 pid=$2 name=$3 i
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || die "$name exited at start-up (see $RUN/$name-*.log)"
    if nsexec timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "$name did not listen on port $port within 60 s"
}

port_free() { # PORT: nothing may listen there yet (a leftover would share it via SO_REUSEPORT)
  if nsexec timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; then
    die "something already listens on 127.0.0.1:$1 in $NETNS"
  fi
}

START_SEQ=0
start_ours() {
  START_SEQ=$((START_SEQ + 1))
  port_free "${OURS_ADDR##*:}"
  # Not through the nsexec function: backgrounding a function forks a subshell, and $! would
  # be that subshell rather than the daemon.
  ip netns exec "$NETNS" "$MTASTS" daemon --config "$RUN/ours.toml" > "$RUN/ours-$START_SEQ.log" 2>&1 &
  OURS_PID=$!
  wait_port "${OURS_ADDR##*:}" "$OURS_PID" ours
}
start_peer() {
  START_SEQ=$((START_SEQ + 1))
  port_free "$PEER_PORT"
  ip netns exec "$NETNS" env SSL_CERT_FILE="$CA" REQUESTS_CA_BUNDLE="$CA" \
    "$VENV/bin/mta-sts-daemon" -c "$RUN/peer.yml" -v warn > "$RUN/peer-$START_SEQ.log" 2>&1 &
  PEER_PID=$!
  wait_port "$PEER_PORT" "$PEER_PID" peer
}
start_ours_dane() {
  START_SEQ=$((START_SEQ + 1))
  port_free "${DANE_ADDR##*:}"
  ip netns exec "$NETNS" "$MTASTS" daemon --config "$RUN/ours-dane.toml" > "$RUN/ours-dane-$START_SEQ.log" 2>&1 &
  DANE_PID=$!
  wait_port "${DANE_ADDR##*:}" "$DANE_PID" ours-dane
}
stop_ours() { stop_pid "$OURS_PID" 25; OURS_PID=""; }
stop_ours_dane() { stop_pid "$DANE_PID" 25; DANE_PID=""; }
stop_peer() { stop_pid "$PEER_PID" 25; PEER_PID=""; }
start() { case "$1" in ours) start_ours ;; ours-dane) start_ours_dane ;; *) start_peer ;; esac; }
stop() { case "$1" in ours) stop_ours ;; ours-dane) stop_ours_dane ;; *) stop_peer ;; esac; }
addr_of() { case "$1" in ours) echo "$OURS_ADDR" ;; ours-dane) echo "$DANE_ADDR" ;; *) echo "$PEER_ADDR" ;; esac; }
pid_of() { case "$1" in ours) echo "$OURS_PID" ;; ours-dane) echo "$DANE_PID" ;; *) echo "$PEER_PID" ;; esac; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # PID: user + system CPU time so far, in clock ticks (0 if gone)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  # Fields after the ")" that closes the command name: utime and stime are the 12th and 13th.
  echo "${stat##*) }" | awk '{ print $12 + $13 }'
}
lab_pid() { pgrep -P "$LAB_PID" -x mtasts-lab | head -1; }
cpu_s() { # TICKS_BEFORE TICKS_AFTER
  python3 -c "print(round(($2 - $1) / $CLK_TCK, 3))"
}

TARGETS=(peer)
[ "$OURS" = 1 ] && TARGETS=(ours peer)
# The cold and warm phases also measure ours-dane; the memory phase compares ours and the peer.
ALL_TARGETS=("${TARGETS[@]}")
[ "$OURS" = 1 ] && [ "${MTBENCH_DANE:-1}" != 0 ] && ALL_TARGETS=(ours ours-dane peer)

world_up "$WORLD_N"
# Sanity: one lookup through each daemon must give an OK policy answer.
for t in "${ALL_TARGETS[@]}"; do
  start "$t"
  addr=$(addr_of "$t")
  nsexec timeout 60 "$LOAD" --addr "$addr" --domain d00001.bench.test --requests 1 \
    --expect-prefix OK --timeout 20 --json > "$RUN/sanity-$t.json" || true
  [ "$($REPORT json-field "$RUN/sanity-$t.json" ok 2>/dev/null)" = 1 ] \
    || die "$t did not answer OK for d00001.bench.test: $(cat "$RUN/sanity-$t.json" 2>/dev/null)"
  log "$t answers: $(nsexec python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"25:postfix d00001.bench.test,")
print(s.recv(300).decode(errors="replace"))' "${addr##*:}")"
  stop "$t"
done

# ---------------------------------------------------------------- cold
cold_round() { # ROUND
  local r=$1 t
  for t in "${ALL_TARGETS[@]}"; do
    budget
    start "$t"
    local pid lpid d0 d1 l0 l1
    pid=$(pid_of "$t"); lpid=$(lab_pid)
    d0=$(cpu_ticks "$pid"); l0=$(cpu_ticks "$lpid")
    nsexec timeout 900 "$LOAD" --addr "$(addr_of "$t")" --domains "$RUN/domains-cold.txt" --cold \
      -c "$COLD_CONNS" --expect-prefix OK --timeout 30 --max-time 850 --json \
      > "$RUN/cold-$t-$r.json" || die "socketmap-load failed against $t (cold round $r)"
    d1=$(cpu_ticks "$pid"); l1=$(cpu_ticks "$lpid")
    $REPORT record "$RAW" phase=cold target="$t" round="$r" --load "$RUN/cold-$t-$r.json" \
      cpu_s="$(cpu_s "$d0" "$d1")" lab_cpu_s="$(cpu_s "$l0" "$l1")"
    log "cold round $r $t: $($REPORT json-field "$RUN/cold-$t-$r.json" elapsed_s) s, errors $($REPORT json-field "$RUN/cold-$t-$r.json" errors)"
    stop "$t"
  done
}
log "cold: $COLD_N domains, $COLD_CONNS connections, $COLD_ROUNDS rounds$([ $COLD_WARMUP = 1 ] && echo ' after a warm-up')"
[ "$COLD_WARMUP" = 1 ] && cold_round 0
for ((r = 1; r <= COLD_ROUNDS; r++)); do cold_round "$r"; done

# ---------------------------------------------------------------- memory
for t in "${TARGETS[@]}"; do
  budget
  start "$t"
  sleep 2
  pid=$(pid_of "$t")
  idle=$(status_kb "$pid" VmRSS)
  lpid=$(lab_pid); d0=$(cpu_ticks "$pid"); l0=$(cpu_ticks "$lpid")
  nsexec timeout 1800 "$LOAD" --addr "$(addr_of "$t")" --domains "$RUN/domains-mem.txt" --cold \
    -c "$COLD_CONNS" --expect-prefix OK --timeout 30 --max-time 1700 --json \
    > "$RUN/memory-$t.json" || die "socketmap-load failed against $t (memory fill)"
  d1=$(cpu_ticks "$pid"); l1=$(cpu_ticks "$lpid")
  sleep 2
  rss=$(status_kb "$pid" VmRSS); hwm=$(status_kb "$pid" VmHWM)
  $REPORT record "$RAW" phase=memory target="$t" count="$MEM_N" idle_rss_kb="$idle" rss_kb="$rss" \
    hwm_kb="$hwm" fill_s="$($REPORT json-field "$RUN/memory-$t.json" elapsed_s)" \
    ok="$($REPORT json-field "$RUN/memory-$t.json" ok)" \
    errors="$($REPORT json-field "$RUN/memory-$t.json" errors)" \
    cpu_s="$(cpu_s "$d0" "$d1")" lab_cpu_s="$(cpu_s "$l0" "$l1")"
  log "memory $t: idle ${idle} kB, after $MEM_N policies ${rss} kB (peak ${hwm} kB)"
  # The daemon stays up: its cache is now warm for the throughput runs.
done

# ---------------------------------------------------------------- warm throughput
REDIS=0
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  port_free "$REDIS_PORT"
  ip netns exec "$NETNS" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --protected-mode no > "$RUN/redis.log" 2>&1 &
  REDIS_PID=$!
  wait_port "$REDIS_PORT" "$REDIS_PID" redis
  # One key with a value the size of a policy answer; redis-benchmark -t get reads it.
  nsexec redis-cli -p "$REDIS_PORT" set 'key:__rand_int__' \
    'OK secure match=mx1.d00001.bench.test:.mx.d00001.bench.test servername=hostname' >/dev/null
  REDIS=1
  REDIS_VERSION=$(redis-server --version | awk '{print $1, $2, $3}')
fi

if [ "${#ALL_TARGETS[@]}" -gt "${#TARGETS[@]}" ]; then
  # ours-dane joins the warm runs with its cache (policies and DANE assessments) filled.
  budget
  start ours-dane
  nsexec timeout 900 "$LOAD" --addr "$DANE_ADDR" --domains "$RUN/domains-warm.txt" --cold \
    -c "$COLD_CONNS" --expect-prefix OK --timeout 30 --max-time 850 --json \
    > "$RUN/fill-ours-dane.json" || die "socketmap-load failed against ours-dane (cache fill)"
fi

declare -A REDIS_N
for c in "${CONCS[@]}"; do
  for ((r = 0; r <= ROUNDS; r++)); do
    for t in "${ALL_TARGETS[@]}"; do
      budget
      f=$RUN/warm-$t-c$c-r$r.json
      pid=$(pid_of "$t"); d0=$(cpu_ticks "$pid")
      nsexec timeout $((DURATION + 120)) "$LOAD" --addr "$(addr_of "$t")" \
        --domains "$RUN/domains-warm.txt" -c "$c" --duration "$DURATION" --expect-prefix OK \
        --timeout 30 --json > "$f" || die "socketmap-load failed against $t ($c connections)"
      d1=$(cpu_ticks "$pid")
      $REPORT record "$RAW" phase=warm target="$t" conc="$c" round="$r" --load "$f" \
        cpu_s="$(cpu_s "$d0" "$d1")"
      log "warm c=$c round $r $t: $($REPORT summary "$f")"
    done
    if [ "$REDIS" = 1 ]; then
      budget
      # -n sized from the warm-up round so that each run lasts about DURATION seconds.
      n=${REDIS_N[$c]:-$((c == 1 ? 20000 : 100000))}
      f=$RUN/warm-redis-c$c-r$r.csv
      nsexec timeout $((DURATION * 10 + 60)) redis-benchmark -p "$REDIS_PORT" -t get -c "$c" \
        -n "$n" --csv > "$f" 2>/dev/null || die "redis-benchmark failed ($c connections)"
      $REPORT record "$RAW" phase=warm target=redis conc="$c" round="$r" n="$n" --redis-csv "$f"
      if [ "$r" = 0 ]; then
        rps=$(awk -F'"' '$2 == "GET" { print int($4) }' "$f")
        REDIS_N[$c]=$(( rps * DURATION > 10000 ? rps * DURATION : 10000 ))
      fi
      log "warm c=$c round $r redis: $(awk -F'"' '$2 == "GET" { print $4 "/s p50 " $10 " ms p99 " $14 " ms" }' "$f")"
    fi
  done
done

# ---------------------------------------------------------------- report
OURS_DESC="store memory, memory capacity $PEER_CACHE_SIZE, tokio multi-thread"
[ "$OURS" = 1 ] || OURS_DESC="NOT AVAILABLE in this build: the columns for ours are n/a"
python3 - "$RUN/meta.json" <<EOF
import json, sys
notes = [
    "Shared 2-core machine: the daemons, the lab world (DNS + HTTPS) and the load generators "
    "all compete for the same CPUs, so absolute figures are noisy; the ratios come from "
    "alternating rounds in the same run.",
    "Load generators: socketmap-load (bench/socketmap-load, tokio, closed loop, one request "
    "outstanding per connection, as Postfix's smtp processes) for both daemons; "
    "redis-benchmark (single-threaded C) for redis, so ours/redis also compares two clients.",
    "Warm runs cycle through the $COLD_N domains of the cold set, all cached; the peer's "
    "cache_grace is a year so it does not refresh during the run.",
    "Cold: $COLD_CONNS connections, like a busy Postfix (default_process_limit 100); each "
    "lookup is a TXT query, A and AAAA queries and an HTTPS fetch (TLS 1.3, ECDSA P-256) from the lab.",
    "Memory: VmRSS from /proc/PID/status; the idle figure is taken 2 s after the daemon "
    "listens, before any lookup.",
    "Latency under a closed loop: with N connections each waiting for its reply, mean "
    "latency = N / throughput (Little's law), so at 64 connections on 2 shared cores the p99 "
    "measures queueing as much as the daemon; the 1- and 16-connection rows show the "
    "per-lookup cost.",
    "The lab's DNS server spends time proportional to the number of domains in the world on "
    "every negative answer (Zone::apex_of), and both daemons ask for the AAAA of "
    "mta-sts.<domain>: " + ("every policy host therefore also has AAAA ::1 (refused at once "
    "in the namespace, so clients go on to 127.1.1.2), which keeps the lab's cost per lookup "
    "flat; the lab CPU row shows what the lab itself cost per lookup." if ${#AAAA_SUFFIX} else
    "this run used MTBENCH_AAAA=0, so each lookup costs the lab time proportional to the "
    "world's size; see the lab CPU row."),
]
meta = {
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "nproc": "$(nproc)",
    "cpu": "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/"/\\"/g')",
    "mem": "$(free -g | awk '/^Mem:/ { print $2 " GiB" }')",
    "kernel": "$(uname -r)",
    "command": "$COMMAND",
    "peer_version": "$PEER_VERSION",
    "python": "$PY_VERSION",
    "uvloop": "$UVLOOP_VERSION",
    "peer_cache_size": $PEER_CACHE_SIZE,
    "ours_desc": "$OURS_DESC",
    "redis": bool($REDIS),
    "redis_version": "${REDIS_VERSION:-redis: not installed}",
    "netns": "$NETNS",
    "worlds": [[$WORLD_N, ${WORLD_STARTED[$WORLD_N]}]],
    "aaaa": bool(${#AAAA_SUFFIX}),
    "rounds": $ROUNDS,
    "duration": $DURATION,
    "concurrencies": [$(IFS=,; echo "${CONCS[*]}")],
    "cold_n": $COLD_N,
    "cold_conns": $COLD_CONNS,
    "cold_rounds": $COLD_ROUNDS,
    "mem_n": $MEM_N,
    "raw": "target/bench/resolver-run/rounds.jsonl",
    "notes": notes,
}
if $QUICK:
    notes.insert(0, "--quick run: $ROUNDS rounds of $DURATION s, $COLD_ROUNDS cold round(s) "
                    "without warm-up, memory at $MEM_N policies; use the full run for figures "
                    "to publish.")
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
$REPORT render "$RAW" "$RUN/meta.json" > "$RESULTS"
echo
cat "$RESULTS"
echo
log "written to $RESULTS (every round in $RAW); total ${SECONDS} s"
