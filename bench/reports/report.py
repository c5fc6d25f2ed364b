#!/usr/bin/env python3
"""Helpers of bench/reports.sh: run and time one ingest, check what it produced, and render
the Markdown results.

    report.py json-field FILE KEY       print one field of a JSON object
    report.py run RAW.jsonl --tool ours|peer --kind files|mbox --n N --round R --out DIR
                  [--db FILE] [--lab-pid PID] [--timeout S] -- CMD...
                                        run CMD (stdout/stderr into DIR), append to RAW: wall
                                        time, user/sys CPU and peak RSS (wait4), the lab's CPU
                                        during the run, and the verdict of the check below
    report.py render --runs RAW --meta META.json
                                        Markdown results on stdout

The check of a run: ours (`mtasts report ingest --json`) must print read = stored = N,
0 duplicates, 0 quarantined, nothing unreadable, and the SQLite file must then hold N reports,
every one with trust `operator` (files) or `verified` (mbox: DKIM passed). parsedmarc
(`-o DIR`) must exit 0, log no error, and write DIR/smtp_tls.json with N reports of N
distinct report ids.
"""
import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict


# ------------------------------------------------------------------ run
def cpu_ticks(pid):
    """User + system CPU of a process so far, in clock ticks (0 if it is gone)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    f = stat.rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def check_ours(a, stdout):
    try:
        c = json.loads(open(stdout).read())
    except (OSError, ValueError) as e:
        return False, f"no JSON counts on stdout ({e})", None
    got = {k: c.get(k) for k in ("read", "stored", "duplicates", "quarantined")}
    problems = []
    if got != {"read": a.n, "stored": a.n, "duplicates": 0, "quarantined": 0}:
        problems.append(f"counts {got}, expected read = stored = {a.n}")
    if c.get("unreadable"):
        problems.append(f"unreadable: {c['unreadable'][:3]}")
    trust = {}
    if a.db:
        try:
            db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
            trust = dict(db.execute("SELECT trust, count(*) FROM tlsrpt_report GROUP BY trust"))
            db.close()
        except sqlite3.Error as e:
            problems.append(f"cannot read {a.db}: {e}")
        want = "verified" if a.kind == "mbox" else "operator"
        if trust != {want: a.n}:
            problems.append(f"stored trust {trust}, expected {{{want!r}: {a.n}}}")
    return not problems, "; ".join(problems) or "ok", {"counts": got, "trust": trust}


def check_peer(a, code, stderr):
    problems = []
    if code != 0:
        problems.append(f"exit {code}")
    errors = [l.strip() for l in open(stderr, errors="replace") if "ERROR" in l or "Traceback" in l]
    if errors:
        problems.append(f"{len(errors)} error lines, first: {errors[0][:160]}")
    n = ids = None
    try:
        reports = json.load(open(os.path.join(a.out, "peer-out", "smtp_tls.json")))
        n = len(reports)
        ids = len({r.get("report_id") for r in reports})
    except (OSError, ValueError) as e:
        problems.append(f"no smtp_tls.json ({e})")
    if n is not None and (n != a.n or ids != a.n):
        problems.append(f"{n} smtp_tls reports with {ids} distinct ids, expected {a.n}")
    return not problems, "; ".join(problems) or "ok", {"smtp_tls_reports": n, "distinct_ids": ids}


def cmd_run(a):
    os.makedirs(a.out, exist_ok=True)
    stdout = os.path.join(a.out, "stdout")
    stderr = os.path.join(a.out, "stderr")
    lab0 = cpu_ticks(a.lab_pid) if a.lab_pid else 0
    timed_out = threading.Event()
    t0 = time.perf_counter()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        p = subprocess.Popen(a.argv, stdout=out, stderr=err, start_new_session=True)

        def kill():
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(a.timeout, kill)
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
    lab_cpu = (cpu_ticks(a.lab_pid) - lab0) / os.sysconf("SC_CLK_TCK") if a.lab_pid else None
    code = os.waitstatus_to_exitcode(status)
    if a.tool == "ours":
        ok, why, detail = check_ours(a, stdout)
        if code != 0:
            ok, why = False, f"exit {code}; {why}"
    else:
        ok, why, detail = check_peer(a, code, stderr)
    if timed_out.is_set():
        ok, why = False, "TIMED OUT"
    rec = {"tool": a.tool, "kind": a.kind, "n": a.n, "round": a.round,
           "wall_s": round(wall, 4), "user_s": round(ru.ru_utime, 3),
           "sys_s": round(ru.ru_stime, 3), "maxrss_kb": ru.ru_maxrss, "exit": code,
           "lab_cpu_s": None if lab_cpu is None else round(lab_cpu, 2),
           "ok": ok, "check": why, "detail": detail, "argv": a.argv, "dir": a.out}
    with open(a.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"  {a.tool:4} {a.kind:5} n={a.n:<6} r{a.round}: {wall:7.2f} s wall, "
          f"{a.n / wall:8.0f} reports/s, {ru.ru_utime + ru.ru_stime:6.2f} s CPU, "
          f"peak RSS {ru.ru_maxrss / 1024:6.1f} MiB, {'ok' if ok else 'CHECK FAILED: ' + why}",
          file=sys.stderr)
    return 0 if ok else 1


# ------------------------------------------------------------------ render
def fmt_int(x):
    return f"{x:,.0f}"


def fmt_s(x):
    return f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def fmt_mib(kb):
    return f"{kb / 1024:.1f} MiB"


def ratio(x):
    return f"{x:.1f}×" if x < 100 else f"{x:.0f}×"


def cmd_render(a):
    runs = [json.loads(l) for l in open(a.runs) if l.strip()]
    meta = json.load(open(a.meta))
    by = defaultdict(list)
    for r in runs:
        if r["round"] > 0:
            by[(r["tool"], r["kind"], r["n"])].append(r)
    sizes = sorted({k[2] for k in by})
    n_big = sizes[-1]

    def med(tool, kind, n, f):
        rs = by.get((tool, kind, n), [])
        return statistics.median(f(r) for r in rs) if rs else None

    wall = lambda r: r["wall_s"]
    cpu = lambda r: r["user_s"] + r["sys_s"]
    rss = lambda r: r["maxrss_kb"]
    rate = lambda r: r["n"] / r["wall_s"]
    L = []
    p = L.append
    p("# Reports: `mtasts report ingest` vs parsedmarc")
    p("")
    p(f"- date: {meta['date']}")
    p(f"- machine: `nproc` = {meta['nproc']}, {meta['cpu']}, {meta['mem']} RAM, kernel "
      f"{meta['kernel']}; load average at the start {meta['load']}")
    p(f"- command: `{meta['command']}`")
    p(f"- ours: {meta['ours_version']} ({meta['rustc']}), `mtasts report ingest --db "
      f"sqlite:FRESH.db --json --no-progress [--dns {meta['dns']}] PATH` (a new SQLite file "
      f"each run)")
    p(f"- peer: parsedmarc {meta['peer_version']} (Python {meta['python']}), `parsedmarc "
      f"--offline -s -o DIR PATH` (its defaults otherwise: one process; writes "
      f"DIR/smtp_tls.json and .csv)")
    p(f"- workload: the {meta['corpus_files']} report files of the corpus "
      f"(`crates/mtasts-core/tests/data/tlsrpt`, those in expected.tsv less "
      f"{meta['excluded']}) cycled to N reports with distinct report-ids "
      f"(bench/reports/gen-data.py): (a) a directory of N files, every second one gzipped; "
      f"(b) one mbox of N report e-mails (multipart/report, gzip attachment), DKIM-signed by "
      f"dkimpy {meta['dkimpy']} (rsa-sha256, 2048 bits, relaxed/relaxed); our side fetches the key of "
      f"each message from a lab world on loopback (`mtasts-lab up`, DNS {meta['dns']}); "
      f"{n_big:,} files = {meta['files_mib']:.1f} MiB, the mbox {meta['mbox_mib']:.1f} MiB")
    p(f"- rounds: {meta['rounds']} after {'a warm-up' if meta['warmup'] else 'no warm-up'}, "
      f"alternating ours/peer for each input; the figures are medians; every run checked "
      f"(ours: read = stored = N, no quarantine, N rows in the store with trust operator "
      f"(files) or verified (mbox); parsedmarc: N smtp_tls reports with N distinct ids, no error)")
    p("")
    bad = [r for r in runs if not r["ok"]]
    p(f"Runs checked: {len(runs) - len(bad)} of {len(runs)} correct."
      + ("" if not bad else " FAILED: " + "; ".join(
          f"{r['tool']} {r['kind']} n={r['n']} r{r['round']}: {r['check']}" for r in bad[:5])))
    p("")
    p(f"### Throughput, N = {n_big:,}")
    p("")
    p("| input | tool | wall time | reports/s | CPU (user+sys) | CPU per report | peak RSS | each round (wall) |")
    p("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for kind in ("files", "mbox"):
        for tool, name in (("ours", "`mtasts report ingest`"), ("peer", "parsedmarc")):
            rs = by.get((tool, kind, n_big), [])
            if not rs:
                continue
            w = med(tool, kind, n_big, wall)
            c = med(tool, kind, n_big, cpu)
            p(f"| {kind} | {name} | {fmt_s(w)} | {fmt_int(n_big / w)} | {fmt_s(c)} | "
              f"{c / n_big * 1e6:.0f} µs | {fmt_mib(med(tool, kind, n_big, rss))} | "
              + ", ".join(f"{r['wall_s']:.2f}" for r in rs) + " |")
    p("")
    p("| input | ours/peer rate (wall, median) | each round | peer/ours CPU | peer/ours peak RSS |")
    p("| --- | ---: | --- | ---: | ---: |")
    ratios = {}
    for kind in ("files", "mbox"):
        o = by.get(("ours", kind, n_big), [])
        q = by.get(("peer", kind, n_big), [])
        if not o or not q:
            continue
        each = [qq["wall_s"] / oo["wall_s"] for oo, qq in zip(o, q)]
        rr = med("peer", kind, n_big, wall) / med("ours", kind, n_big, wall)
        ratios[kind] = rr
        p(f"| {kind} | **{ratio(rr)}** | " + ", ".join(ratio(x) for x in each) + " | "
          f"{ratio(med('peer', kind, n_big, cpu) / med('ours', kind, n_big, cpu))} | "
          f"{ratio(med('peer', kind, n_big, rss) / med('ours', kind, n_big, rss))} |")
    p("")
    of = med("ours", "files", n_big, wall)
    om = med("ours", "mbox", n_big, wall)
    if of and om:
        lab = med("ours", "mbox", n_big, lambda r: r["lab_cpu_s"] or 0)
        p(f"Ours without DKIM (files) {fmt_int(n_big / of)} reports/s, with DKIM (mbox: MIME, "
          f"base64, gzip, one DNS query and one RSA-2048 verification per message) "
          f"{fmt_int(n_big / om)} reports/s: {(om - of) / n_big * 1e6:.0f} µs more per report "
          f"(CPU {med('ours', 'files', n_big, cpu) / n_big * 1e6:.0f} → "
          f"{med('ours', 'mbox', n_big, cpu) / n_big * 1e6:.0f} µs); the lab's DNS server "
          f"spent {lab:.2f} s of CPU answering the {n_big:,} key queries (median).")
        p("")
    p("### Memory against the number of reports")
    p("")
    head = " | ".join(f"peak RSS, N = {n:,}" for n in sizes)
    p(f"| input | tool | {head} | growth {sizes[0]:,} → {sizes[-1]:,} |")
    p("| --- | --- | " + " | ".join("---:" for _ in sizes) + " | ---: |")
    growth = {}
    for kind in ("files", "mbox"):
        for tool, name in (("ours", "`mtasts report ingest`"), ("peer", "parsedmarc")):
            v = [med(tool, kind, n, rss) for n in sizes]
            if None in v:
                continue
            growth[(tool, kind)] = (v[0], v[-1])
            p(f"| {kind} | {name} | " + " | ".join(fmt_mib(x) for x in v)
              + f" | {(v[-1] - v[0]) / 1024:+.1f} MiB ({v[-1] / v[0]:.2f}×) |")
    p("")
    p(f"### Throughput, N = {sizes[0]:,} (startup weighs more here)")
    p("")
    p("| input | ours wall | peer wall | ours reports/s | peer reports/s | ours/peer rate |")
    p("| --- | ---: | ---: | ---: | ---: | ---: |")
    n0 = sizes[0]
    for kind in ("files", "mbox"):
        o, q = med("ours", kind, n0, wall), med("peer", kind, n0, wall)
        if o and q:
            p(f"| {kind} | {fmt_s(o)} | {fmt_s(q)} | {fmt_int(n0 / o)} | {fmt_int(n0 / q)} | "
              f"{ratio(q / o)} |")
    p("")
    p("### Targets of issue 14")
    p("")
    p("| target | measured | met? |")
    p("| --- | --- | --- |")
    for kind in ("files", "mbox"):
        if kind in ratios:
            p(f"| ingest rate ≥ 50× parsedmarc's ({kind}, N = {n_big:,}) | "
              f"{ratio(ratios[kind])} | {'yes' if ratios[kind] >= 50 else '**no**'} |")
    for kind in ("files", "mbox"):
        if ("ours", kind) in growth:
            lo, hi = growth[("ours", kind)]
            flat = hi <= lo * 1.10 + 2048
            p(f"| memory does not grow with the number of reports ({kind}) | "
              f"{fmt_mib(lo)} at {sizes[0]:,}, {fmt_mib(hi)} at {sizes[-1]:,} | "
              f"{'yes' if flat else '**no**'} |")
    p("")
    p(f"Every run: `target/bench/reports-run/runs.jsonl` (outputs in target/bench/reports-run/).")
    print("\n".join(L))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("json-field")
    f.add_argument("file")
    f.add_argument("key")
    r = sub.add_parser("run")
    r.add_argument("raw")
    r.add_argument("--tool", choices=("ours", "peer"), required=True)
    r.add_argument("--kind", choices=("files", "mbox"), required=True)
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--db")
    r.add_argument("--lab-pid", type=int)
    r.add_argument("--timeout", type=float, default=600)
    r.add_argument("argv", nargs="+")
    d = sub.add_parser("render")
    d.add_argument("--runs", required=True)
    d.add_argument("--meta", required=True)
    a = ap.parse_args()
    if a.cmd == "json-field":
        v = json.load(open(a.file))
        for k in a.key.split("."):
            v = v[k]
        print(v)
        return 0
    if a.cmd == "run":
        return cmd_run(a)
    return cmd_render(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
