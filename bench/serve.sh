#!/usr/bin/env bash
# bench/serve.sh: the policy host `mtasts serve` vs Debian's nginx serving the same policy
# with the same certificate, driven by wrk over HTTPS (issue 15).
#
#   bash bench/serve.sh [--quick]        (from the repository root; root only to install)
#
# 1. installs nginx and wrk with apt-get if missing (as root); builds mtasts (release);
# 2. makes one ECDSA P-256 certificate (openssl) for mta-sts.bench.test and localhost, and
#    one policy file; writes both servers' configurations under target/bench/serve-run/;
# 3. starts `mtasts serve` on 127.0.0.1:18443 and nginx (worker_processes auto, access log
#    off) on 127.0.0.1:28443, both on loopback beside the load generator;
# 4. checks both answer the same policy body with 200 and text/plain;
# 5. for keep-alive and for a new connection per request (`Connection: close`), at 1, 64 and
#    256 connections: wrk against ours and nginx, alternating, ROUNDS rounds of DURATION s;
#    requests/s and p99 (wrk --latency), medians over the rounds;
# 6. prints the Markdown table and writes it to target/bench/serve-results.md.
#
# Both servers get what a 2-core host gives them: nginx `worker_processes auto` (one worker
# per core), ours tokio's multi-thread runtime (one worker per core). Ours has its per-client
# connection cap raised (`limits.max_connections_per_client`, default 32) since every wrk
# connection comes from 127.0.0.1; nginx has no such cap. nginx's `keepalive_requests` is
# raised from 1000 so that a keep-alive connection is not closed during a run (ours has no
# request count limit; its `max_connection_age` is 300 s). nginx gets ours's protocols,
# `ssl_protocols TLSv1.2 TLSv1.3` (1.22's default stops at TLS 1.2); everything else of TLS
# (session cache, tickets, ciphers) is each server's default.
#
# --quick: 1 round of 3 s per point. Full: 3 rounds of 10 s, one warm-up run per server.
# Environment overrides: MTBENCH_ROUNDS, MTBENCH_DURATION, MTBENCH_MTASTS (a binary to use
# instead of building; for trying the script, not for figures).
#
# Bounded: every wait has a time limit, every wrk run `timeout`, and the whole script aborts
# after MAX_TOTAL seconds. On exit (normal, error or Ctrl-C) the trap stops both servers.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
COMMAND="bash bench/serve.sh${*:+ $*}"

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "serve.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

# ---------------------------------------------------------------- parameters
OURS_PORT=18443
NGINX_PORT=28443
HOST=mta-sts.bench.test
CONNS=(1 64 256)
MAX_TOTAL=1800
if [ "$QUICK" = 1 ]; then
  ROUNDS=${MTBENCH_ROUNDS:-1}; DURATION=${MTBENCH_DURATION:-3}; WARMUP=0
else
  ROUNDS=${MTBENCH_ROUNDS:-3}; DURATION=${MTBENCH_DURATION:-10}; WARMUP=1
fi

BENCH=$ROOT/target/bench
RUN=$BENCH/serve-run
RESULTS=$BENCH/serve-results.md
MTASTS=${MTBENCH_MTASTS:-$ROOT/target/release/mtasts}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- cleanup
OURS_PID=""; NGINX_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$OURS_PID" 15; OURS_PID=""
  if [ -n "$NGINX_PID" ]; then
    # nginx daemon off: the master is our child; SIGQUIT is its graceful stop.
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    stop_pid "$NGINX_PID" 15; NGINX_PID=""
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- tools, build
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${need[*]}: install them (apt-get install -y ${need[*]}) or run as root"
  log "installing ${need[*]}"
  timeout 600 apt-get install -y "${need[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ -z "${MTBENCH_MTASTS:-}" ]; then
  log "building mtasts (release)"
  timeout 1800 cargo build --release --bin mtasts >&2
fi
budget

# ---------------------------------------------------------------- certificate, policy, configs
rm -rf "$RUN"; mkdir -p "$RUN/www/.well-known" "$RUN/nginx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST,DNS:localhost" \
  -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
POLICY=$'version: STSv1\nmode: enforce\nmx: mx1.bench.test\nmax_age: 604800\n'
# As ours serves it: the lines ended by CRLF (RFC 8461 §3.2).
printf '%s' "${POLICY//$'\n'/$'\r\n'}" > "$RUN/www/.well-known/mta-sts.txt"

cat > "$RUN/serve.toml" <<EOF
listen = ["127.0.0.1:$OURS_PORT"]
reload_interval = 0.0
[domains."bench.test"]
policy = """$POLICY"""
[limits]
max_connections = 4096
max_connections_per_client = 4096
[[certificates.files]]
chain = "$RUN/cert.pem"
key = "$RUN/key.pem"
[dns]
# The drift check asks nobody useful (the record does not exist): once, at start.
servers = ["127.0.0.1:9"]
timeout = 0.5
attempts = 1
check_interval = 0.0
[admin]
listen = []
[log]
level = "warn"
EOF

cat > "$RUN/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx/body;
  proxy_temp_path $RUN/nginx/proxy;
  fastcgi_temp_path $RUN/nginx/fastcgi;
  uwsgi_temp_path $RUN/nginx/uwsgi;
  scgi_temp_path $RUN/nginx/scgi;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    server_name $HOST localhost;
    # The protocols ours offers (nginx 1.22's default is TLSv1 to TLSv1.2).
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $RUN/cert.pem;
    ssl_certificate_key $RUN/key.pem;
    root $RUN/www;
    location = /.well-known/mta-sts.txt { types { } default_type text/plain; }
    location / { return 404; }
  }
}
EOF

# ---------------------------------------------------------------- servers
wait_port() { # PORT PID NAME: 10 s at most
  local port=$1 pid=$2 name=$3 i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || die "$name exited (see $RUN)"
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  die "$name is not listening on $port after 10 s"
}

"$MTASTS" serve --config "$RUN/serve.toml" > "$RUN/serve.log" 2>&1 &
OURS_PID=$!
wait_port "$OURS_PORT" "$OURS_PID" "mtasts serve"
"$NGINX" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -g 'daemon off;' > "$RUN/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
wait_port "$NGINX_PORT" "$NGINX_PID" nginx

for port in "$OURS_PORT" "$NGINX_PORT"; do
  got=$(curl -sS --max-time 10 --cacert "$RUN/cert.pem" -H "Host: $HOST" \
    -o "$RUN/body.$port" -w '%{http_code} %{content_type}' \
    "https://localhost:$port/.well-known/mta-sts.txt")
  case "$got" in
    "200 text/plain"*) ;;
    *) die "port $port answered $got" ;;
  esac
  cmp -s "$RUN/body.$port" "$RUN/www/.well-known/mta-sts.txt" || die "port $port: another body"
done
log "both servers answer the policy (200, text/plain, same body)"

# ---------------------------------------------------------------- load
RAW=$RUN/rounds.txt; : > "$RAW"
run_wrk() { # NAME PORT MODE CONNS ROUND
  local name=$1 port=$2 mode=$3 c=$4 round=$5 t out extra=()
  t=$(( c < 2 ? 1 : 2 ))
  [ "$mode" = close ] && extra=(-H "Connection: close")
  out="$RUN/wrk.$name.$mode.$c.$round.txt"
  timeout $((DURATION + 30)) wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 5s --latency \
    -H "Host: $HOST" "${extra[@]}" "https://localhost:$port/.well-known/mta-sts.txt" > "$out" 2>&1 \
    || die "wrk failed: $(cat "$out")"
  python3 - "$out" "$name" "$mode" "$c" "$round" >> "$RAW" <<'PY'
import re, sys
path, name, mode, c, rnd = sys.argv[1:]
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, err.groups())) if err else 0)
print(name, mode, c, rnd, rps, p99, errors)
PY
}

if [ "$WARMUP" = 1 ]; then
  log "warm-up"
  run_wrk ours "$OURS_PORT" keepalive 64 warmup
  run_wrk nginx "$NGINX_PORT" keepalive 64 warmup
fi
for mode in keepalive close; do
  for c in "${CONNS[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do
      budget
      log "$mode, $c connections, round $r/$ROUNDS"
      if (( r % 2 )); then
        run_wrk ours "$OURS_PORT" "$mode" "$c" "$r"; run_wrk nginx "$NGINX_PORT" "$mode" "$c" "$r"
      else
        run_wrk nginx "$NGINX_PORT" "$mode" "$c" "$r"; run_wrk ours "$OURS_PORT" "$mode" "$c" "$r"
      fi
    done
  done
done

# ---------------------------------------------------------------- report
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
WRK_VERSION=$( (wrk -v 2>&1 || true) | head -1 | awk "{print \$2}")
python3 - "$RAW" > "$RESULTS" <<PY
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, mode, c, rnd, rps, p99, errors = line.split()
    if rnd == "warmup":
        continue
    rows[(name, mode, int(c))].append((float(rps), float(p99), int(errors)))
def med(k, i):
    return statistics.median(v[i] for v in rows[k])
print("- command: \`$COMMAND\`")
print("- rounds: $ROUNDS per point of ${DURATION} s each (alternating ours and nginx); medians")
print("- nginx: $NGINX_VERSION (worker_processes auto, access_log off, keepalive_requests raised, ssl_protocols TLSv1.2 TLSv1.3)")
print("- wrk: $WRK_VERSION (threads: 1 at 1 connection, else 2), on the same host over loopback")
print("- ours: \`mtasts serve\` ($MTASTS), log level warn")
print("- certificate: one ECDSA P-256 self-signed certificate for both; both offer TLS 1.2 and 1.3;")
print("  session cache, tickets and ciphers are each server's defaults")
print()
print("| mode | connections | ours req/s | nginx req/s | ours/nginx | ours p99 | nginx p99 | errors (ours/nginx) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for mode, label in (("keepalive", "keep-alive"), ("close", "new connection per request")):
    for c in (1, 64, 256):
        o, n = ("ours", mode, c), ("nginx", mode, c)
        if not rows[o] or not rows[n]:
            continue
        ro, rn = med(o, 0), med(n, 0)
        eo, en = sum(v[2] for v in rows[o]), sum(v[2] for v in rows[n])
        print(f"| {label} | {c} | {ro:,.0f} | {rn:,.0f} | {ro / rn:.2f}× | {med(o, 1):.2f} ms | {med(n, 1):.2f} ms | {eo}/{en} |")
PY
cat "$RESULTS"
log "results in $RESULTS"
