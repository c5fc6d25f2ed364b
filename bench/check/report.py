#!/usr/bin/env python3
"""Helpers of bench/check.sh: run and time a tool, read both tools' outputs, judge them
against the zoo's expectations, and render the Markdown results.

    report.py json-field FILE KEY            print one field of a JSON object
    report.py json-len FILE KEY              print the length of a field
    report.py run RAW.jsonl --tool T --label L --list F --stdout O --stderr E --timeout S -- CMD...
                                             run CMD, append wall time, CPU and peak RSS to RAW
    report.py render --runs RAW --meta META --domains D --expect E --dir RUN
                                             Markdown results on stdout, details in RUN/
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict


def norm(name):
    name = name.strip().rstrip(".")
    return ".".join(l.lower() if l.isascii() else l.encode("idna").decode("ascii").lower()
                    for l in name.split("."))


# ------------------------------------------------------------------ run
def cpu_ticks(pid):
    """User + system CPU of a process so far, in clock ticks (0 if it is gone)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    f = stat.rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def cmd_run(a):
    lab0 = cpu_ticks(a.lab_pid) if a.lab_pid else 0
    t0 = time.monotonic()
    with open(a.stdout, "wb") as out, open(a.stderr, "wb") as err:
        p = subprocess.Popen(a.argv, stdout=out, stderr=err, start_new_session=True)
        timed_out = False
        deadline = t0 + a.timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                timed_out = True
                os.killpg(p.pid, signal.SIGTERM)
                time.sleep(5)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
    wall = time.monotonic() - t0
    lab_cpu = (cpu_ticks(a.lab_pid) - lab0) / os.sysconf("SC_CLK_TCK") if a.lab_pid else None
    code = os.waitstatus_to_exitcode(status)
    n = sum(1 for l in open(a.list, encoding="utf-8") if l.strip())
    rec = {"tool": a.tool, "label": a.label, "list": a.list, "domains": n,
           "wall_s": round(wall, 3), "user_s": round(ru.ru_utime, 3),
           "sys_s": round(ru.ru_stime, 3), "maxrss_kb": ru.ru_maxrss, "exit": code,
           "lab_cpu_s": None if lab_cpu is None else round(lab_cpu, 2),
           "timed_out": timed_out, "stdout": a.stdout, "stderr": a.stderr}
    with open(a.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"  {a.label}: {wall:.1f} s wall, {ru.ru_utime + ru.ru_stime:.1f} s CPU, "
          f"peak RSS {ru.ru_maxrss / 1024:.0f} MiB, exit {code}"
          + (" (TIMED OUT)" if timed_out else ""), file=sys.stderr)


# ------------------------------------------------------------------ reading outputs
def read_ours(path):
    """{domain (A-label): record} from `mtasts check --format jsonl`."""
    out = {}
    bad = 0
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line:
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(r, dict) and "domain" in r:
            out[norm(r["domain"])] = r
    return out, bad


def read_peer(path):
    """{domain (A-label): result} from `checkdmarc -f json` (a list, or one object)."""
    try:
        data = json.load(open(path, encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return {}, 1
    if isinstance(data, dict):
        data = [data]
    return {norm(r["domain"]): r for r in data if isinstance(r, dict) and "domain" in r}, 0


def ours_complete(r):
    return isinstance(r.get("verdict"), dict) and "outcome" in r["verdict"] \
        and isinstance(r.get("findings"), list)


PEER_PARTS = ("mta_sts", "smtp_tls_reporting", "mx")


def peer_complete(r):
    return all(k in r for k in PEER_PARTS) and isinstance(r["mta_sts"], dict) \
        and "valid" in r["mta_sts"] and isinstance(r["smtp_tls_reporting"], dict)


def ours_ids(r, levels=("error", "warning")):
    ids = set()
    for f in r.get("findings", []):
        sev = f.get("severity") or f.get("level")
        if sev in levels:
            ids.add(f.get("id") or f.get("code"))
    return ids


def ours_summary(r):
    v = r.get("verdict", {})
    ids = sorted(ours_ids(r))
    return f"{v.get('outcome')}" + (f": {', '.join(ids)}" if ids else "")


def peer_view(r):
    """What checkdmarc concluded about MTA-STS, TLS-RPT and the MX hosts."""
    sts = r.get("mta_sts", {})
    rpt = r.get("smtp_tls_reporting", {})
    mx = r.get("mx", {}) if isinstance(r.get("mx"), dict) else {}
    hosts = mx.get("hosts", []) if isinstance(mx, dict) else []
    # Every lab address lacks a PTR record, so checkdmarc warns about each one: noise here.
    mxw = [w for w in (mx.get("warnings", []) if isinstance(mx, dict) else [])
           if "does not have any reverse DNS (PTR) records" not in w]
    if isinstance(mx, dict) and mx.get("error"):
        mxw.append("error: " + str(mx["error"]))
    return {
        "sts_valid": sts.get("valid"),
        "sts_mode": (sts.get("policy") or {}).get("mode"),
        "sts_error": sts.get("error"),
        "sts_warnings": sts.get("warnings", []),
        "rpt_valid": rpt.get("valid"),
        "rpt_error": rpt.get("error"),
        "mx_warnings": mxw,
        "starttls": [h.get("starttls") for h in hosts],
        "not_covered": any("is not included in the MTA-STS policy" in w for w in mxw),
        "tls_problem": any(h.get("addresses") and h.get("starttls") is False for h in hosts)
        or any(("SSL error" in w or "STARTTLS" in w or "certificate" in w.lower()) for w in mxw),
    }


def generic(s):
    """A copy's text with its copy tag removed, so that the copies' conclusions collapse."""
    return re.sub(r"-c\d\d(?=[.\s'\"]|$)", "", s)


def short(s, n=110):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def peer_summary(v):
    v = {k: (generic(x) if isinstance(x, str) else [generic(y) for y in x] if isinstance(x, list)
             and all(isinstance(y, str) for y in x) else x) for k, x in v.items()}
    parts = []
    if v["sts_valid"]:
        parts.append(f"MTA-STS valid ({v['sts_mode']})")
    else:
        parts.append(f"MTA-STS invalid: {short(v['sts_error'], 90)}")
    if v["sts_warnings"]:
        parts.append("warnings: " + short("; ".join(v["sts_warnings"]), 90))
    parts.append("TLS-RPT " + ("valid" if v["rpt_valid"] else f"invalid: {short(v['rpt_error'], 60)}"))
    if v["mx_warnings"]:
        parts.append("MX: " + short("; ".join(v["mx_warnings"]), 240))
    return "; ".join(parts)


# ------------------------------------------------------------------ judging against the zoo
STS_INVALID_PREFIXES = ("sts.record.", "sts.fetch.", "sts.policy.")
TLS_PREFIXES = ("smtp.cert-", "smtp.starttls-", "smtp.tls-")


def expected_classes(e):
    f = set(e["findings"])
    return {
        # the MTA-STS record + policy cannot be used as published (error-level classes)
        "sts_invalid": any(x.startswith(STS_INVALID_PREFIXES) for x in f)
        and not f <= {"sts.policy.unknown-key"},
        "not_covered": "sts.coverage.mx-not-covered" in f,
        "tls_problem": any(x.startswith(TLS_PREFIXES) for x in f),
        "rpt_invalid": any(x.startswith("tlsrpt.record.") for x in f),
    }


def judge_peer(e, v):
    """{class: (expected, peer said)} for the classes checkdmarc reports on."""
    x = expected_classes(e)
    said = {
        "sts_invalid": not v["sts_valid"],
        "not_covered": v["not_covered"],
        "tls_problem": v["tls_problem"],
        "rpt_invalid": not v["rpt_valid"],
    }
    # Only the MX of a domain whose policy checkdmarc accepted can be judged for coverage.
    return {k: (x[k], said[k]) for k in x}


def judge_ours(e, r):
    return set(e["findings"]) == ours_ids(r)


# ------------------------------------------------------------------ render
def fmt_s(s):
    return f"{s:,.1f} s" if s < 100 else f"{s:,.0f} s"


KINDS = [  # label prefix, description, list
    ("ours-r", "`mtasts check` (defaults)", "all"),
    ("peer-r", "checkdmarc --check-mx-tls", "all"),
    ("ours-short-r", "`mtasts check` with checkdmarc's timeouts", "all"),
    ("ours-prompt-r", "`mtasts check` (defaults)", "prompt"),
    ("peer-prompt-r", "checkdmarc --check-mx-tls", "prompt"),
]


def med(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def cmd_render(a):
    meta = json.load(open(a.meta))
    runs = [json.loads(l) for l in open(a.runs) if l.strip()]
    expect = json.load(open(a.expect, encoding="utf-8"))
    wanted = [norm(l) for l in open(a.domains, encoding="utf-8") if l.strip()]
    main = [r for r in runs if not r["label"].startswith("warmup")]
    out = []
    p = out.append

    # ---- completeness of each run, against its own input list
    complete = {}
    parsed = {}
    for r in runs:
        want = [norm(l) for l in open(r["list"], encoding="utf-8") if l.strip()]
        if r["tool"] == "ours":
            recs, bad = read_ours(r["stdout"])
            ok = {d for d, x in recs.items() if ours_complete(x)}
        else:
            recs, bad = read_peer(r["stdout"])
            ok = {d for d, x in recs.items() if peer_complete(x)}
        parsed[r["label"]] = recs
        missing = [d for d in want if d not in ok]
        extra = sorted(set(recs) - set(want))
        complete[r["label"]] = (len(set(want) & ok), missing, extra, bad)
        for d in missing:
            print(f"report.py: {r['label']}: no complete report for {d}", file=sys.stderr)

    def by(prefix):
        return [r for r in main if r["label"].startswith(prefix)
                and r["label"][len(prefix):].isdigit()]

    n = meta["domains"]
    p(f"Measured {meta['date']} on {meta['nproc']} cores ({meta['cpu']}, {meta['mem']}, "
      f"Linux {meta['kernel']}); {meta['ours_version']} built with {meta['rustc']}; "
      f"checkdmarc {meta['peer_version']} on Python {meta['python']}.")
    p("")
    p("```")
    p(meta["command"])
    p("```")
    p("")
    p(f"World: {n:,} domains ({meta['copies']} copies of the zoo), {meta['smtp_hosts']} SMTP "
      f"hosts, started in {meta['world_start_s']} s in network namespace `{meta['netns']}`. "
      + (f"Simulated network round trip: {meta['rtt_ms']} ms (`[lab] rtt_ms`). "
         if meta.get("rtt_ms") else "No simulated latency (loopback). ")
      + (f"Warm-up: both tools over the first {meta['warmup_n']} domains. "
         if meta["warmup"] else "No warm-up. ")
      + f"{meta['rounds']} round(s); in each, in this order: ours and checkdmarc over all "
      f"{n:,} domains, ours with checkdmarc's timeouts"
      + (" (no runs over the prompt domains under a simulated RTT)." if meta.get("rtt_ms") else
         f", then ours and checkdmarc over the {meta['prompt_domains']:,} domains that make no "
         "client wait."))
    p("")
    p("| run | domains | wall time | per domain | CPU (user+sys) | peak RSS | lab CPU | exit | complete reports |")
    p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for prefix, desc, _ in KINDS:
        for r in by(prefix):
            c = complete[r["label"]]
            p(f"| {desc} ({r['label']}) | {r['domains']:,} | {fmt_s(r['wall_s'])} | "
              f"{r['wall_s'] / r['domains'] * 1000:,.0f} ms | "
              f"{r['user_s'] + r['sys_s']:,.1f} s | {r['maxrss_kb'] / 1024:,.0f} MiB | "
              + (f"{r['lab_cpu_s']:,.1f} s" if r.get("lab_cpu_s") is not None else "n/a")
              + f" | {r['exit']}"
              f"{' (timed out)' if r['timed_out'] else ''} | {c[0]:,} / {r['domains']:,} |")
    p("")

    def ratio(num, den):
        a_, b_ = by(num), by(den)
        if not a_ or not b_:
            return None
        return med([r["wall_s"] for r in a_]) / med([r["wall_s"] for r in b_])

    def cpu_ratio(num, den):
        a_, b_ = by(num), by(den)
        if not a_ or not b_:
            return None
        return med([r["user_s"] + r["sys_s"] for r in a_]) / med([r["user_s"] + r["sys_s"] for r in b_])

    def per_round(num, den):
        a_, b_ = by(num), by(den)
        return ", ".join(f"{x['wall_s'] / y['wall_s']:,.1f}×" for x, y in zip(a_, b_))

    rows = [("all domains, each tool's default timeouts", "peer-r", "ours-r"),
            ("all domains, ours with checkdmarc's timeouts", "peer-r", "ours-short-r"),
            ("domains that make no client wait", "peer-prompt-r", "ours-prompt-r")]
    p("| checkdmarc / ours (target: ours ≥ 50× faster) | wall time, median | each round | CPU time, median |")
    p("| --- | ---: | ---: | ---: |")
    for name, num, den in rows:
        x = ratio(num, den)
        if x is not None:
            p(f"| {name} | **{x:,.1f}×** | {per_round(num, den)} | {cpu_ratio(num, den):,.1f}× |")
    p("")
    for label, (k, missing, extra, bad) in complete.items():
        if missing:
            p(f"- {label}: **{len(missing)} domain(s) without a complete report**: "
              + ", ".join(missing[:20]) + (" …" if len(missing) > 20 else ""))
        if extra:
            p(f"- {label}: {len(extra)} domain(s) not in the input list: " + ", ".join(extra[:10]))
        if bad:
            p(f"- {label}: {bad} unparseable line(s)/file(s)")
    if any(c[1] or c[2] or c[3] for c in complete.values()):
        p("")
    ours = by("ours-r")
    peer = by("peer-r")

    # ---- verdicts against the zoo
    details = []
    ours_rec = parsed.get(ours[0]["label"], {}) if ours else {}
    peer_rec = parsed.get(peer[0]["label"], {}) if peer else {}
    agree_ours = Counter()
    peer_cls = defaultdict(Counter)
    per_zoo = {}
    for d in wanted:
        e = expect[d]
        z = e["zoo"]
        row = per_zoo.setdefault(z, {"ours": Counter(), "peer": Counter(), "peer_said": Counter(),
                                     "ours_said": Counter(), "e": e})
        if d in ours_rec:
            ok = judge_ours(e, ours_rec[d])
            agree_ours[ok] += 1
            row["ours"][ok] += 1
            row["ours_said"][generic(ours_summary(ours_rec[d]))] += 1
        if d in peer_rec:
            v = peer_view(peer_rec[d])
            j = judge_peer(e, v)
            for k, (want, said) in j.items():
                peer_cls[k][(want, said)] += 1
            row["peer"][all(w == s for w, s in j.values())] += 1
            row["peer_said"][generic(peer_summary(v))] += 1
            for k, (want, said) in j.items():
                if want != said:
                    row.setdefault("peer_wrong", Counter())[(k, want)] += 1

    if ours_rec:
        p(f"Our findings equal the zoo's expected finding ids (warning and error level) on "
          f"{agree_ours[True]:,} of {sum(agree_ours.values()):,} domains.")
        p("")
    if peer_rec:
        names = {"sts_invalid": "MTA-STS record/policy unusable",
                 "not_covered": "an MX not covered by the policy",
                 "tls_problem": "MX STARTTLS/certificate problem",
                 "rpt_invalid": "TLS-RPT record missing/invalid"}
        p("checkdmarc against the zoo's expectations, per class (domains; a domain counts in "
          "every class):")
        p("")
        p("| class | expected and found | expected, missed | not expected, reported | agree |")
        p("| --- | ---: | ---: | ---: | ---: |")
        for k, c in peer_cls.items():
            tot = sum(c.values())
            p(f"| {names[k]} | {c[(True, True)]:,} | {c[(True, False)]:,} | {c[(False, True)]:,} | "
              f"{c[(True, True)] + c[(False, False)]:,} / {tot:,} |")
        p("")

    if peer_rec:
        wrong = [(z, row) for z, row in per_zoo.items() if row.get("peer_wrong")]
        if wrong:
            p("Where checkdmarc's conclusion differs from the zoo's expectation:")
            p("")
            for z, row in wrong:
                what = "; ".join(
                    ("missed: " if want else "reported, not expected: ") + names[k]
                    + f" ({c}/{sum(row['peer'].values())} copies)"
                    for (k, want), c in row["peer_wrong"].items())
                p(f"- {z} ({row['e']['checker']}): {what}. checkdmarc said: "
                  + "; ".join(f"{x}" for x in row["peer_said"]).replace("|", "/"))
            p("")
    details.append("# Per zoo domain: what each tool concluded (all copies)\n")
    details.append("| zoo domain | expected (zoo) | ours agrees | ours said | checkdmarc agrees | checkdmarc said |")
    details.append("| --- | --- | ---: | --- | ---: | --- |")
    for z, row in per_zoo.items():
        e = row["e"]
        said_o = "<br>".join(f"{k} (×{v})" if len(row["ours_said"]) > 1 else k
                             for k, v in row["ours_said"].most_common())
        said_p = "<br>".join(f"{k} (×{v})" if len(row["peer_said"]) > 1 else k
                             for k, v in row["peer_said"].most_common())
        details.append(
            f"| {z} | {e['checker']}; {', '.join(e['findings']) or 'no findings'} | "
            f"{row['ours'][True]}/{sum(row['ours'].values())} | {said_o.replace('|', '/')} | "
            f"{row['peer'][True]}/{sum(row['peer'].values())} | {said_p.replace('|', '/')} |")
    with open(os.path.join(a.dir, "verdicts.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(details) + "\n")

    tricky = ["mx-suffix-trick.test", "mx-wildcard-two-levels.test", "redirecting-policy.test",
              "mx-hijack.test", "policy-oversize.test", "policy-oversize-chunked.test",
              "policy-wrong-content-type.test", "policy-slow-headers.test",
              "policy-slow-body.test", "policy-host-hang.test", "dns-slow.test",
              "idn-bücher.test", "mx-cname-cert-mismatch.test", "lb-one-bad-backend.test"]
    if per_zoo:
        p("Tricky zoo domains (every copy concluded the same unless a count is shown; full "
          "table: `target/bench/check-run/verdicts.md`):")
        p("")
        p("| zoo domain | expected | ours | checkdmarc |")
        p("| --- | --- | --- | --- |")
        for z in tricky:
            row = per_zoo.get(z)
            if not row:
                continue
            e = row["e"]
            so = "<br>".join(f"{k} (×{v})" if len(row["ours_said"]) > 1 else k
                             for k, v in row["ours_said"].most_common()) or "n/a"
            sp = "<br>".join(f"{k} (×{v})" if len(row["peer_said"]) > 1 else k
                             for k, v in row["peer_said"].most_common()) or "n/a"
            p(f"| {z} | {e['checker']} | {so.replace('|', '/')} | {sp.replace('|', '/')} |")
        p("")
    print("\n".join(out))


# ------------------------------------------------------------------ main
def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "json-field":
        print(json.load(open(sys.argv[2]))[sys.argv[3]])
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "json-len":
        print(len(json.load(open(sys.argv[2]))[sys.argv[3]]))
        return
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("raw")
    for k in ("--tool", "--label", "--list", "--stdout", "--stderr"):
        r.add_argument(k, required=True)
    r.add_argument("--timeout", type=float, required=True)
    r.add_argument("--lab-pid", type=int, help="the lab world's process: its CPU time during the run is recorded")

    g = sub.add_parser("render")
    for k in ("--runs", "--meta", "--domains", "--expect", "--dir"):
        g.add_argument(k, required=True)
    args = sys.argv[1:]
    cmd = []
    if "--" in args:
        i = args.index("--")
        args, cmd = args[:i], args[i + 1:]
    a = ap.parse_args(args)
    if a.cmd == "run":
        if not cmd:
            ap.error("run: no command after --")
        a.argv = cmd
        cmd_run(a)
    else:
        cmd_render(a)


if __name__ == "__main__":
    main()
