#!/usr/bin/env bash
# bench/check.sh: our checker (`mtasts check`) vs checkdmarc (the peer) over the same 1,000 lab
# domains, both inside one lab world, following /work/shared/benchmarks.md.
#
#   bash bench/check.sh [--quick]        (as root, from the repository root)
#
# 1. installs the peer into target/check-venv if missing (checkdmarc, the latest pip installs);
#    builds mtasts and mtasts-lab (release; CARGO_TARGET_DIR is honoured);
# 2. generates the scenario (bench/check/gen-zoo.py): the zoo (lab/scenarios/zoo.toml, 83
#    domains, every MTA-STS/TLS-RPT failure class) repeated under distinct names X-cKK.test,
#    12 whole copies plus 4 correct domains of a 13th = exactly 1,000 domains, and checks it
#    with `mtasts-lab check`;
# 3. starts the world in network namespace `mtcheck` (DNS 127.1.1.1:53 through the
#    namespace's resolv.conf, HTTPS 443, SMTP 25, the lab CA in the state directory);
# 4. a warm-up (both tools over the 20 first domains), then ROUNDS rounds, each running
#    ours (defaults but --ca-file) and checkdmarc (--check-mx-tls: MX STARTTLS and
#    certificates, its defaults otherwise, trusting the lab CA through SSL_CERT_FILE /
#    REQUESTS_CA_BUNDLE) over the whole list; then ours with checkdmarc's timeouts
#    (--dns-timeout 2 --fetch-timeout 2 --smtp-timeout 5); then both over the domains
#    that make no client wait (the list less dns-slow, dns-timeout, policy-slow-headers,
#    policy-slow-body, policy-host-hang and mx-slow-greeting);
# 5. counts the domains with a complete report in each tool's output (and prints any
#    missing), compares every domain's outcome with the zoo's expectations, and writes
#    Markdown to target/bench/check-results.md (raw outputs in target/bench/check-run/).
#
# Full run: 3 rounds after the warm-up (checkdmarc takes minutes per round).
# --quick: 2 copies of the zoo (166 domains), 1 round, no warm-up.
# MTCHECK_RTT=N: the world simulates an N ms network round trip (`[lab] rtt_ms`, docs/lab.md:
# one RTT per DNS answer and SMTP reply, three before an HTTPS response), as clients meet on
# the internet and never on loopback; the runs over the prompt domains are left out,
# and the results go to target/bench/check-results-rttN.md.
# Environment overrides: MTCHECK_COPIES, MTCHECK_TOTAL, MTCHECK_ROUNDS, MTCHECK_NETNS,
# MTCHECK_PEER_VERSION (a pip version specifier, e.g. ==6.0.4).
#
# Bounded: every wait has a time limit, each tool run a `timeout`, and the whole script stops
# after MAX_TOTAL seconds. On exit (normal, error or Ctrl-C) the trap stops the tools and the
# world and deletes the namespace.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
COMMAND="bash bench/check.sh${*:+ $*}"

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "check.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "check.sh: needs root (network namespaces); run with sudo" >&2
  exit 2
fi

# ---------------------------------------------------------------- parameters
NETNS=${MTCHECK_NETNS:-mtcheck}
MAX_TOTAL=3600          # hard stop for the whole script (s)
RUN_LIMIT=2400          # hard stop for one tool run (s)
WARMUP_N=20
if [ "$QUICK" = 1 ]; then
  COPIES=${MTCHECK_COPIES:-2}; TOTAL=${MTCHECK_TOTAL:-0}; ROUNDS=${MTCHECK_ROUNDS:-1}; WARMUP=0
else
  COPIES=${MTCHECK_COPIES:-13}; TOTAL=${MTCHECK_TOTAL:-1000}; ROUNDS=${MTCHECK_ROUNDS:-3}; WARMUP=1
fi

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$ROOT/target/bench
RUN=$BENCH/check-run
RTT=${MTCHECK_RTT:-0}
RESULTS=$BENCH/check-results.md
[ "$RTT" != 0 ] && RESULTS=$BENCH/check-results-rtt$RTT.md
REPORT="python3 $ROOT/bench/check/report.py"
VENV=$ROOT/target/check-venv
MTASTS=$TARGET/release/mtasts
LAB=$TARGET/release/mtasts-lab
SCENARIO=$RUN/zoo-x$COPIES.toml
DOMAINS=$RUN/domains.txt
PROMPT=$RUN/domains-prompt.txt
EXPECT=$RUN/expect.json
STATE=$RUN/state
RAW=$RUN/runs.jsonl

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# The seconds a run may still take: RUN_LIMIT, or less when the script's budget runs out.
run_limit() { local left=$((MAX_TOTAL - SECONDS - 30)); echo $(( left < RUN_LIMIT ? left : RUN_LIMIT )); }

# ---------------------------------------------------------------- cleanup
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Anything this script started inside the namespace and that is still running (a tool run
  # interrupted by Ctrl-C or by its timeout).
  netns_cleanup "mtasts|checkdmarc|python*"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- tools, peer, build
need=()
command -v ip >/dev/null || need+=(iproute2)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/checkdmarc" ]; then
  log "installing the peer (checkdmarc${MTCHECK_PEER_VERSION:-}) into $VENV"
  python3 -m venv "$VENV"
  timeout 600 "$VENV/bin/pip" install -q "checkdmarc${MTCHECK_PEER_VERSION:-}"
fi
PEER_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("checkdmarc"))')
PY_VERSION=$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')

log "building mtasts and mtasts-lab (release) in $TARGET"
timeout 1800 cargo build --release -p mtasts -p mtasts-lab >&2
"$MTASTS" check --help >/dev/null 2>&1 || die "'$MTASTS check' does not exist in this build"
OURS_VERSION=$("$MTASTS" --version 2>/dev/null | head -1 || echo "mtasts (version unknown)")

# ---------------------------------------------------------------- scenario
mkdir -p "$RUN"
rm -rf "$RUN"/*.jsonl "$RUN"/*.json "$RUN"/*.log "$RUN"/*.err "$RUN"/*.out "$STATE"
log "generating $SCENARIO ($COPIES copies of the zoo$([ "$TOTAL" != 0 ] && echo ", first $TOTAL domains"))"
gen_args=(--copies "$COPIES" --rtt-ms "$RTT")
[ "$TOTAL" != 0 ] && gen_args+=(--total "$TOTAL")
python3 "$ROOT/bench/check/gen-zoo.py" "$ROOT/lab/scenarios/zoo.toml" "$SCENARIO" "$DOMAINS" \
  "$EXPECT" "${gen_args[@]}" --prompt-out "$PROMPT"
timeout 120 "$LAB" check "$SCENARIO" > "$RUN/scenario-check.log" 2>&1 \
  || { cat "$RUN/scenario-check.log" >&2; die "mtasts-lab check rejected $SCENARIO"; }
N_DOMAINS=$(grep -c . "$DOMAINS")
N_PROMPT=$(grep -c . "$PROMPT")
head -n "$WARMUP_N" "$DOMAINS" > "$RUN/domains-warmup.txt"
log "scenario valid: $N_DOMAINS domains"

# ---------------------------------------------------------------- the world
netns_claim "$NETNS"
READY=$RUN/world.json
mkdir -p "$STATE"
log "starting the world in netns $NETNS"
lab_up "$SCENARIO" "$READY" "$RUN/lab.log" --state-dir "$STATE"
CA=$($REPORT json-field "$READY" ca_pem_path)
SMTP_HOSTS=$($REPORT json-len "$READY" smtp_hosts)
log "world ready in $WORLD_START s: $($REPORT json-field "$READY" dns), $SMTP_HOSTS SMTP hosts, CA $CA"
# Sanity: the namespace's resolver is the lab's.
nsexec timeout 10 dig +short +time=2 +tries=1 TXT "_mta-sts.good-enforce-c00.test" | grep -q STSv1 \
  || die "the lab's DNS does not answer inside $NETNS (see $RUN/lab.log)"

# ---------------------------------------------------------------- the runs
# The lab's worker (the child the parent re-executed inside the namespace): its CPU time
# during each run is recorded, to show what the lab itself cost.
lab_pid() { local p; p=$(pgrep -P "$LAB_PID" -x mtasts-lab | head -1 || true); echo "${p:-0}"; }
# ours: defaults except --ca-file (standard ports inside the namespace; the system resolver is
# the lab's through /etc/netns/$NETNS/resolv.conf).
run_ours() { # LABEL LIST [extra flags...]
  local label=$1 list=$2; shift 2
  budget
  $REPORT run "$RAW" --tool ours --label "$label" --list "$list" --lab-pid "$(lab_pid)" \
    --stdout "$RUN/$label.jsonl" --stderr "$RUN/$label.err" --timeout "$(run_limit)" -- \
    ip netns exec "$NETNS" "$MTASTS" check --input "$list" --format jsonl --no-progress \
    --ca-file "$CA" "$@"
}
# checkdmarc: every check it has, MX STARTTLS/TLS included (--check-mx-tls); its own defaults
# otherwise (DNS timeout 2 s, 0 retries, HTTP 2 s, SMTP 5 s); the system resolver.
run_peer() { # LABEL LIST
  local label=$1 list=$2
  budget
  $REPORT run "$RAW" --tool peer --label "$label" --list "$list" --lab-pid "$(lab_pid)" \
    --stdout "$RUN/$label.json" --stderr "$RUN/$label.err" --timeout "$(run_limit)" -- \
    ip netns exec "$NETNS" env SSL_CERT_FILE="$CA" REQUESTS_CA_BUNDLE="$CA" \
    "$VENV/bin/checkdmarc" --check-mx-tls -f json "$list"
}

if [ "$WARMUP" = 1 ]; then
  log "warm-up: both tools over the first $WARMUP_N domains"
  run_ours warmup-ours "$RUN/domains-warmup.txt"
  run_peer warmup-peer "$RUN/domains-warmup.txt"
fi
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS: ours over $N_DOMAINS domains (defaults)"
  run_ours "ours-r$r" "$DOMAINS"
  log "round $r/$ROUNDS: checkdmarc $PEER_VERSION over $N_DOMAINS domains"
  run_peer "peer-r$r" "$DOMAINS"
  log "round $r/$ROUNDS: ours with checkdmarc's timeouts (DNS 2 s, fetch 2 s, SMTP 5 s)"
  run_ours "ours-short-r$r" "$DOMAINS" --dns-timeout 2 --fetch-timeout 2 --smtp-timeout 5
  [ "$RTT" != 0 ] && continue
  log "round $r/$ROUNDS: both over the $N_PROMPT domains that make nobody wait"
  run_ours "ours-prompt-r$r" "$PROMPT"
  run_peer "peer-prompt-r$r" "$PROMPT"
done

# ---------------------------------------------------------------- report
python3 - "$RUN/meta.json" <<EOF
import json, sys
meta = {
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "nproc": "$(nproc)",
    "cpu": "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/"/\\"/g')",
    "mem": "$(free -g | awk '/^Mem:/ { print $2 " GiB" }')",
    "kernel": "$(uname -r)",
    "command": "$COMMAND",
    "ours_version": "$OURS_VERSION",
    "rustc": "$(rustc --version)",
    "peer_version": "$PEER_VERSION",
    "python": "$PY_VERSION",
    "netns": "$NETNS",
    "domains": $N_DOMAINS,
    "prompt_domains": $N_PROMPT,
    "copies": $COPIES,
    "smtp_hosts": $SMTP_HOSTS,
    "world_start_s": $WORLD_START,
    "rounds": $ROUNDS,
    "rtt_ms": $RTT,
    "warmup": bool($WARMUP),
    "warmup_n": $WARMUP_N,
    "quick": bool($QUICK),
    "raw": "target/bench/check-run/",
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
$REPORT render --runs "$RAW" --meta "$RUN/meta.json" --domains "$DOMAINS" --expect "$EXPECT" \
  --dir "$RUN" > "$RESULTS"
echo
cat "$RESULTS"
echo
log "written to $RESULTS (outputs in $RUN); total ${SECONDS} s"
