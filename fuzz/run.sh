#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets, one after another, each for a bounded time.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; no TARGET means all of them. Environment:
#   FUZZ_RUNS=N     also stop each target after N executions (-runs=N), whichever comes first
#   FUZZ_NICE=N     niceness of the build and the fuzzers (default 19: the machine is shared)
#   FUZZ_ARGS=...   more libFuzzer options, appended as they are
#   FUZZ_SANITIZER=address|none   (default address) `none` runs 3-10x faster: the fuzzed crates
#                   have no unsafe code (#![forbid(unsafe_code)]), so what AddressSanitizer adds
#                   there is little; debug assertions and overflow checks stay on either way
#
# Seeds (fuzz/seeds/<target>/, committed) are copied into the working corpus
# (fuzz/corpus/<target>/, ignored by git), which grows from run to run. libFuzzer's output
# goes to fuzz/logs/<target>.log; crash, leak, timeout and out-of-memory inputs to
# fuzz/artifacts/<target>/. Prints per target: executions, exec/s, final cov/ft, corpus
# size and any new artifact; exits 1 if any target left one (or failed to run).
#
# Works on stable Rust: cargo-fuzz needs nightly flags (-Zsanitizer=address), which
# RUSTC_BOOTSTRAP=1 allows. Builds with debug assertions (-a), so overflow checks and
# debug_assert! are on as well as AddressSanitizer.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

secs="${1:-60}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [[ "$secs" -lt 1 ]]; then
    echo "usage: bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

all_targets=(sts_record sts_policy mx_pattern tlsrpt_record media_type tlsrpt_report
    tlsrpt_filename socketmap report_payload report_gzip)
if [[ $# -gt 0 ]]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

# Largest input per target: policies, records and socketmap streams up to 64 KiB (a policy
# body is at most 64 KiB, RFC 8461 §3.3), short strings 4 KiB, reports 1 MiB.
max_len() {
    case "$1" in
        mx_pattern | media_type | tlsrpt_filename) echo 4096 ;;
        tlsrpt_report | report_payload | report_gzip) echo 1048576 ;;
        *) echo 65536 ;;
    esac
}

nice_n="${FUZZ_NICE:-19}"
sanitizer="${FUZZ_SANITIZER:-address}"
case "$sanitizer" in
    address | none) ;;
    *) echo "FUZZ_SANITIZER must be address or none, not $sanitizer" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz" >&2
    nice -n "$nice_n" cargo install cargo-fuzz --locked -j1
fi

for t in "${targets[@]}"; do
    if [[ ! -f "fuzz_targets/$t.rs" ]]; then
        echo "unknown target: $t (have: ${all_targets[*]})" >&2
        exit 2
    fi
done

echo "== building ${targets[*]}" >&2
for t in "${targets[@]}"; do
    nice -n "$nice_n" cargo fuzz build -a -s "$sanitizer" "$t"
done

mkdir -p logs
summary="logs/summary-$(date -u +%Y%m%dT%H%M%SZ).tsv"
printf 'target\texecs\texec_per_s\tcov\tft\tcorpus_units/files\tseconds\tsanitizer\tresult\n' >"$summary"
failed=0

for t in "${targets[@]}"; do
    corpus="corpus/$t"
    artifacts="artifacts/$t"
    log="logs/$t.log"
    mkdir -p "$corpus" "$artifacts"
    if [[ -d "seeds/$t" ]]; then cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true; fi
    before="$(ls "$artifacts" | sort)"

    args=(-max_total_time="$secs" -rss_limit_mb=2048 -max_len="$(max_len "$t")" -timeout=30
        -print_final_stats=1)
    if [[ -n "${FUZZ_RUNS:-}" ]]; then args+=(-runs="$FUZZ_RUNS"); fi
    # shellcheck disable=SC2206 # FUZZ_ARGS is split on purpose
    if [[ -n "${FUZZ_ARGS:-}" ]]; then args+=(${FUZZ_ARGS}); fi

    echo "== $t: ${args[*]}" >&2
    start=$(date +%s)
    rc=0
    # The outer timeout only guards against a fuzzer that ignores its own time limit.
    timeout --signal=INT --kill-after=60 $((secs + 300)) \
        nice -n "$nice_n" cargo fuzz run -a -s "$sanitizer" "$t" "$corpus" -- "${args[@]}" >"$log" 2>&1 || rc=$?
    elapsed=$(($(date +%s) - start))

    execs="$(grep -o 'stat::number_of_executed_units:[[:space:]]*[0-9]*' "$log" | tail -1 | awk '{print $2}')"
    rate="$(grep -o 'stat::average_exec_per_sec:[[:space:]]*[0-9]*' "$log" | tail -1 | awk '{print $2}')"
    status="$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")"
    units="$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$status")"
    # libFuzzer's own corpus (units kept in memory) / files in the corpus directory.
    size="${units:-?}/$(ls "$corpus" | wc -l)"
    new="$(comm -13 <(echo "$before") <(ls "$artifacts" | sort) | grep -v '^$' || true)"

    if [[ -n "$new" ]]; then
        result="ARTIFACT: $(echo "$new" | sed "s|^|$artifacts/|" | tr '\n' ' ')"
        failed=1
    elif [[ "$rc" -ne 0 ]]; then
        result="FAILED (exit $rc, see $log)"
        failed=1
    else
        result="ok"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "$size" "$elapsed" "$sanitizer" "$result" >>"$summary"
    echo "== $t: execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=$size ${elapsed}s: $result" >&2
done

echo
column -t -s $'\t' "$summary" 2>/dev/null || cat "$summary"
exit "$failed"
