#!/usr/bin/env bash
# bench/reports.sh: ingesting TLS-RPT reports, `mtasts report ingest` (ours, into SQLite) vs
# parsedmarc 11.1.0 (the peer), side by side, following /work/shared/benchmarks.md.
#
#   bash bench/reports.sh [--quick]        (from the repository root; root is not needed)
#
# 1. installs the peer into target/bench-venv-parsedmarc if missing (pip install
#    parsedmarc==11.1.0; PIP_FIND_LINKS is honoured) and dkimpy 1.1.8 into target/test-venv
#    if missing (as .ci/run does); builds mtasts and mtasts-lab (release; CARGO_TARGET_DIR is
#    honoured);
# 2. generates the workload once (bench/reports/gen-data.py, cached under
#    target/bench/reports-data/nN/ and redone only when the generator or the corpus changes):
#    the report files of crates/mtasts-core/tests/data/tlsrpt cycled to N reports with
#    distinct report-ids, as (a) a directory of N files (.json and .json.gz alternating) and
#    (b) one mbox of N report e-mails DKIM-signed by dkimpy, for N = 1,000 and 10,000;
# 3. starts a lab world on loopback (`mtasts-lab up`, no namespace) that serves the DKIM key
#    (SELECTOR._domainkey.reporter.test TXT, s=tlsrpt); ours is given it with --dns;
# 4. a warm-up (both tools over the 1,000 files), then ROUNDS rounds, each of: for N in
#    1,000 and 10,000, for the files and the mbox: ours into a fresh SQLite file, then
#    parsedmarc (--offline -s -o DIR); each run timed with wait4 (wall, user+sys CPU, peak
#    RSS) and checked (ours: read = stored = N, nothing quarantined, N rows in the store with
#    trust operator/verified; parsedmarc: N smtp_tls reports with N distinct ids, no error);
#    a failed check stops the script;
# 5. writes Markdown to target/bench/reports-results.md (every run in
#    target/bench/reports-run/runs.jsonl, outputs beside it) and prints it.
#
# Full run: 3 rounds after the warm-up (about 6 minutes once the data exist; generating them
# signs 10,000 e-mails with dkimpy, a few minutes more the first time).
# --quick: 1 round, no warm-up.
# Environment overrides: MTREPORTS_ROUNDS, MTREPORTS_SIZES (comma-separated, default
# 1000,10000; the largest is the throughput figure).
#
# Bounded: every run has a timeout, every wait a limit, and the script stops after MAX_TOTAL
# seconds. On exit (normal, error or Ctrl-C) the trap stops the lab.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
COMMAND="bash bench/reports.sh${*:+ $*}"

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "reports.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

# ---------------------------------------------------------------- parameters
MAX_TOTAL=2400          # hard stop for the whole script (s)
RUN_LIMIT=600           # hard stop for one run (s)
if [ "$QUICK" = 1 ]; then
  ROUNDS=${MTREPORTS_ROUNDS:-1}; WARMUP=0
else
  ROUNDS=${MTREPORTS_ROUNDS:-3}; WARMUP=1
fi
SIZES=${MTREPORTS_SIZES:-1000,10000}
IFS=, read -r -a SIZE_LIST <<< "$SIZES"
PEER_VERSION_WANTED=11.1.0
DKIMPY_VERSION=1.1.8
# rpt03.json is deliberately malformed (no policy-domain, an invalid policy-type): ours
# stores it with findings; parsedmarc refuses it, and an mbox holding it makes parsedmarc
# stop with a traceback. Both sides get the same reports, so it is left out.
EXCLUDE=stalwartlabs__mail-auth/rpt03.json

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$ROOT/target/bench
DATA=$BENCH/reports-data
RUN=$BENCH/reports-run
RAW=$RUN/runs.jsonl
RESULTS=$BENCH/reports-results.md
REPORT="python3 $ROOT/bench/reports/report.py"
VENV=$ROOT/target/bench-venv-parsedmarc
DKIM_VENV=$ROOT/target/test-venv
MTASTS=$TARGET/release/mtasts
LAB=$TARGET/release/mtasts-lab
CORPUS=$ROOT/crates/mtasts-core/tests/data/tlsrpt

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- cleanup
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$LAB_PID" 20; LAB_PID=""
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- peer, dkimpy, build
python3 -c 'import venv, ensurepip' 2>/dev/null \
  || die "python3-venv is missing (apt-get install python3-venv)"
if [ ! -x "$VENV/bin/parsedmarc" ]; then
  log "installing the peer (parsedmarc==$PEER_VERSION_WANTED) into $VENV (a few minutes)"
  python3 -m venv "$VENV"
  timeout 900 "$VENV/bin/pip" install -q "parsedmarc==$PEER_VERSION_WANTED"
fi
PEER_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("parsedmarc"))')
PY_VERSION=$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')
[ "$PEER_VERSION" = "$PEER_VERSION_WANTED" ] || log "warning: parsedmarc is $PEER_VERSION, not $PEER_VERSION_WANTED"
if ! "$DKIM_VENV/bin/python3" -c 'import dkim' 2>/dev/null; then
  log "installing dkimpy==$DKIMPY_VERSION into $DKIM_VENV (the signer of the report e-mails)"
  python3 -m venv "$DKIM_VENV"
  timeout 600 "$DKIM_VENV/bin/pip" install -q "dkimpy==$DKIMPY_VERSION"
fi
DKIMPY=$("$DKIM_VENV/bin/python3" -c 'import importlib.metadata as m; print(m.version("dkimpy"))')

log "building mtasts and mtasts-lab (release) in $TARGET"
timeout 1800 cargo build --release -p mtasts -p mtasts-lab >&2
"$MTASTS" report ingest --help >/dev/null 2>&1 || die "'$MTASTS report ingest' does not exist in this build"
OURS_VERSION=$("$MTASTS" --version 2>/dev/null | head -1 || echo "mtasts (version unknown)")

# ---------------------------------------------------------------- data
budget
log "workload: N = $SIZES under $DATA (generated once; cached)"
timeout 1800 "$DKIM_VENV/bin/python3" "$ROOT/bench/reports/gen-data.py" --corpus "$CORPUS" \
  --out "$DATA" --sizes "$SIZES" --exclude "$EXCLUDE" >&2
N_BIG=${SIZE_LIST[-1]}
for n in "${SIZE_LIST[@]}"; do
  [ -s "$DATA/n$n/manifest.json" ] || die "no data for N = $n"
  [ "$(find "$DATA/n$n/files" -type f | wc -l)" = "$n" ] || die "$DATA/n$n/files does not hold $n files"
done

# ---------------------------------------------------------------- the lab (DKIM key over DNS)
mkdir -p "$RUN"
rm -rf "${RUN:?}"/*
timeout 60 "$LAB" check "$DATA/scenario.toml" > "$RUN/scenario-check.log" 2>&1 \
  || { cat "$RUN/scenario-check.log" >&2; die "mtasts-lab check rejected $DATA/scenario.toml"; }
READY=$RUN/world.json
log "starting the lab world (loopback) that serves the DKIM key"
"$LAB" up "$DATA/scenario.toml" --ready-file "$READY" --no-control > "$RUN/lab.log" 2>&1 &
LAB_PID=$!
for ((i = 0; i < 600; i++)); do
  [ -s "$READY" ] && break
  kill -0 "$LAB_PID" 2>/dev/null || { cat "$RUN/lab.log" >&2; die "mtasts-lab exited"; }
  sleep 0.1
done
[ -s "$READY" ] || die "the lab was not ready within 60 s"
DNS=$($REPORT json-field "$READY" dns)
log "lab ready: DNS $DNS"

# Sanity: the first message of the smallest mbox is stored as verified.
head_mbox=$RUN/sanity.mbox
awk 'NR > 1 && /^From / { exit } { print }' "$DATA/n${SIZE_LIST[0]}/reports.mbox" > "$head_mbox"
sanity=$(timeout 60 "$MTASTS" report ingest --db "sqlite:$RUN/sanity.db" --dns "$DNS" --json \
  --no-progress "$head_mbox")
case "$sanity" in
  *'"stored":1'*'"quarantined":0'* | *'"quarantined":0'*'"stored":1'*) ;;
  *) die "a signed message was not stored as verified: $sanity (see mtasts report quarantine list --db sqlite:$RUN/sanity.db)" ;;
esac

# ---------------------------------------------------------------- the runs
run_limit() { local left=$((MAX_TOTAL - SECONDS - 30)); echo $(( left < RUN_LIMIT ? left : RUN_LIMIT )); }
input_of() { # KIND N
  if [ "$1" = files ]; then echo "$DATA/n$2/files"; else echo "$DATA/n$2/reports.mbox"; fi
}
run_ours() { # ROUND KIND N
  local r=$1 kind=$2 n=$3 dir db
  budget
  dir=$RUN/ours-$kind-n$n-r$r
  mkdir -p "$dir"
  db=$dir/reports.db
  rm -f "$db" "$db-wal" "$db-shm"
  $REPORT run "$RAW" --tool ours --kind "$kind" --n "$n" --round "$r" --out "$dir" --db "$db" \
    --lab-pid "$LAB_PID" --timeout "$(run_limit)" -- \
    "$MTASTS" report ingest --db "sqlite:$db" --dns "$DNS" --json --no-progress \
    "$(input_of "$kind" "$n")" || die "ours: the check failed (see $dir)"
}
run_peer() { # ROUND KIND N
  local r=$1 kind=$2 n=$3 dir
  budget
  dir=$RUN/peer-$kind-n$n-r$r
  rm -rf "$dir"; mkdir -p "$dir"
  $REPORT run "$RAW" --tool peer --kind "$kind" --n "$n" --round "$r" --out "$dir" \
    --lab-pid "$LAB_PID" --timeout "$(run_limit)" -- \
    "$VENV/bin/parsedmarc" --offline -s -o "$dir/peer-out" "$(input_of "$kind" "$n")" \
    || die "parsedmarc: the check failed (see $dir)"
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$WARMUP" = 1 ]; then
  log "warm-up: both tools over the ${SIZE_LIST[0]} files and the ${SIZE_LIST[0]}-message mbox"
  for kind in files mbox; do
    run_ours 0 "$kind" "${SIZE_LIST[0]}"
    run_peer 0 "$kind" "${SIZE_LIST[0]}"
  done
fi
for ((r = 1; r <= ROUNDS; r++)); do
  for n in "${SIZE_LIST[@]}"; do
    for kind in files mbox; do
      log "round $r/$ROUNDS: $kind, N = $n"
      run_ours "$r" "$kind" "$n"
      run_peer "$r" "$kind" "$n"
    done
  done
done

# ---------------------------------------------------------------- report
python3 - "$RUN/meta.json" "$DATA/n$N_BIG/manifest.json" <<EOF
import json, sys
m = json.load(open(sys.argv[2]))
meta = {
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "nproc": "$(nproc)",
    "cpu": "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/"/\\"/g')",
    "mem": "$(free -g | awk '/^Mem:/ { print $2 " GiB" }')",
    "kernel": "$(uname -r)",
    "load": "$LOAD",
    "command": "$COMMAND",
    "ours_version": "$OURS_VERSION",
    "rustc": "$(rustc --version)",
    "peer_version": "$PEER_VERSION",
    "python": "$PY_VERSION",
    "dkimpy": "$DKIMPY",
    "dns": "$DNS",
    "rounds": $ROUNDS,
    "warmup": bool($WARMUP),
    "quick": bool($QUICK),
    "corpus_files": len(m["corpus_reports"]),
    "excluded": "$EXCLUDE",
    "files_mib": m["files_bytes"] / 2**20,
    "mbox_mib": m["mbox_bytes"] / 2**20,
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
$REPORT render --runs "$RAW" --meta "$RUN/meta.json" > "$RESULTS"
echo
cat "$RESULTS"
echo
log "written to $RESULTS (every run in $RAW); total ${SECONDS} s"
