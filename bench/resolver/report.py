#!/usr/bin/env python3
"""Helper of bench/resolver.sh: records each measured round as one JSON line, and turns the
rounds into medians, ratios and the Markdown results table.

    report.py record RAW.jsonl KEY=VALUE... [--load FILE] [--redis-csv FILE]
    report.py json-field FILE FIELD            # print one field of a JSON file
    report.py summary LOAD.json                # one line: rate, p50, p99, errors
    report.py render RAW.jsonl META.json       # print the Markdown results section

Only the standard library is used. Rounds numbered 0 are warm-ups and are left out of every
median.
"""

import csv
import json
import statistics
import sys


def parse_value(v):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def cmd_record(args):
    raw = args[0]
    row = {}
    i = 1
    while i < len(args):
        a = args[i]
        if a == "--load":
            with open(args[i + 1]) as f:
                j = json.load(f)
            row.update(
                rps=j["rps"],
                p50_ms=j["latency_ms"]["p50"],
                p90_ms=j["latency_ms"]["p90"],
                p99_ms=j["latency_ms"]["p99"],
                max_ms=j["latency_ms"]["max"],
                elapsed_s=j["elapsed_s"],
                answered=j["answered"],
                errors=j["errors"],
                first_bad_reply=j.get("first_bad_reply"),
                first_io_error=j.get("first_io_error"),
            )
            i += 2
        elif a == "--redis-csv":
            with open(args[i + 1]) as f:
                rows = [r for r in csv.DictReader(f) if r.get("test") == "GET"]
            if not rows:
                raise SystemExit(f"report.py: no GET line in {args[i + 1]}")
            r = rows[-1]
            row.update(
                rps=float(r["rps"]),
                p50_ms=float(r["p50_latency_ms"]),
                p99_ms=float(r["p99_latency_ms"]),
                max_ms=float(r["max_latency_ms"]),
                errors=0,
            )
            i += 2
        else:
            k, _, v = a.partition("=")
            row[k] = parse_value(v)
            i += 1
    with open(raw, "a") as f:
        f.write(json.dumps(row) + "\n")


def cmd_json_field(args):
    with open(args[0]) as f:
        v = json.load(f)
    for part in args[1].split("."):
        v = v[part]
    print(v)


def cmd_summary(args):
    with open(args[0]) as f:
        j = json.load(f)
    lat = j["latency_ms"]
    print(f"{j['rps']:.0f}/s p50 {lat['p50']:.3f} ms p99 {lat['p99']:.3f} ms errors {j['errors']}")


def load(raw):
    rows = []
    with open(raw) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def med(values):
    return statistics.median(values) if values else None


def fmt(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}×"


def cmd_render(args):
    rows = load(args[0])
    with open(args[1]) as f:
        meta = json.load(f)
    out = []
    w = out.append

    def sel(phase, target, **kw):
        return [
            r
            for r in rows
            if r.get("phase") == phase
            and r.get("target") == target
            and r.get("round", 1) != 0
            and all(r.get(k) == v for k, v in kw.items())
        ]

    def median_of(phase, target, field, **kw):
        return med([r[field] for r in sel(phase, target, **kw) if r.get(field) is not None])

    def err_sum(phase, target, **kw):
        return sum(int(r.get("errors", 0)) for r in sel(phase, target, **kw))

    def cpu_per(phase, target, field="cpu_s", **kw):
        """Median over rounds of CPU seconds per answered request, in microseconds."""
        vals = [r[field] / r["answered"] * 1e6 for r in sel(phase, target, **kw)
                if r.get(field) is not None and r.get("answered")]
        return med(vals)

    def n_rounds(phase, target, **kw):
        return len(sel(phase, target, **kw))

    w("## Resolver daemon: `mtasts daemon` vs postfix-mta-sts-resolver")
    w("")
    w(f"- date: {meta['date']}")
    w(f"- machine: `nproc` = {meta['nproc']}, {meta['cpu']}, {meta['mem']} RAM, kernel {meta['kernel']}")
    w(f"- command: `{meta['command']}`")
    w(f"- peer: postfix-mta-sts-resolver {meta['peer_version']} (Python {meta['python']}, "
      f"uvloop {meta['uvloop']}, internal cache `cache_size: {meta['peer_cache_size']}`)")
    w(f"- ours: `mtasts daemon` ({meta['ours_desc']})")
    w(f"- reference: {meta['redis_version']}, `redis-benchmark -t get` on loopback")
    worlds = "; ".join(f"{n:,} enforce policy domains (started in {t:.1f} s)" for n, t in meta["worlds"])
    w(f"- worlds: `mtasts-lab` in netns `{meta['netns']}`: {worlds}; everything (both daemons, "
      f"redis, the load generators) runs inside the namespace")
    w(f"- rounds: {meta['rounds']} per figure after one warm-up round, alternating ours, peer"
      f"{', redis' if meta['redis'] else ''}; warm runs {meta['duration']} s each; "
      f"the figures are medians")
    w("")

    conns = meta["concurrencies"]
    w("### Cached lookups (warm cache), one request outstanding per connection")
    w("")
    w("| connections | ours lookups/s | peer lookups/s | redis GET/s | ours/peer | ours/redis "
      "| ours p50 | peer p50 | redis p50 | ours p99 | peer p99 | redis p99 |")
    w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    warm = {}
    for c in conns:
        o = median_of("warm", "ours", "rps", conc=c)
        p = median_of("warm", "peer", "rps", conc=c)
        r = median_of("warm", "redis", "rps", conc=c)
        o50 = median_of("warm", "ours", "p50_ms", conc=c)
        p50 = median_of("warm", "peer", "p50_ms", conc=c)
        r50 = median_of("warm", "redis", "p50_ms", conc=c)
        o99 = median_of("warm", "ours", "p99_ms", conc=c)
        p99 = median_of("warm", "peer", "p99_ms", conc=c)
        r99 = median_of("warm", "redis", "p99_ms", conc=c)
        warm[c] = (o, p, r, o99)
        w(f"| {c} | {fmt(o)} | {fmt(p)} | {fmt(r)} | {ratio(o, p)} | {ratio(o, r)} "
          f"| {fmt(o50, 3, ' ms')} | {fmt(p50, 3, ' ms')} | {fmt(r50, 3, ' ms')} "
          f"| {fmt(o99, 3, ' ms')} | {fmt(p99, 3, ' ms')} | {fmt(r99, 3, ' ms')} |")
    w("")
    w("Daemon CPU time per cached lookup (user + system, from /proc/PID/stat; the load "
      "generator's CPU not included):")
    w("")
    w("| connections | ours | peer | ours/peer |")
    w("| ---: | ---: | ---: | ---: |")
    for c in conns:
        a, b = cpu_per("warm", "ours", conc=c), cpu_per("warm", "peer", conc=c)
        w(f"| {c} | {fmt(a, 1, ' µs')} | {fmt(b, 1, ' µs')} | {ratio(a, b)} |")
    w("")
    errs = {t: sum(err_sum("warm", t, conc=c) for c in conns) for t in ("ours", "peer")}
    w(f"Errors over the counted warm runs (replies not starting with `OK`, i/o, timeouts): "
      f"ours {errs['ours']}, peer {errs['peer']}.")
    w("")

    w(f"### Cold: {meta['cold_n']:,} distinct domains, empty cache, {meta['cold_conns']} connections")
    w("")
    oc = median_of("cold", "ours", "elapsed_s")
    pc = median_of("cold", "peer", "elapsed_s")
    w("| | ours | peer | peer/ours (speed-up) |")
    w("| --- | ---: | ---: | ---: |")
    w(f"| time to answer all (median of {n_rounds('cold', 'ours')}/{n_rounds('cold', 'peer')} rounds) "
      f"| {fmt(oc, 2, ' s')} | {fmt(pc, 2, ' s')} | {ratio(pc, oc, 1)} |")
    w(f"| domains per second | {fmt(meta['cold_n'] / oc if oc else None)} "
      f"| {fmt(meta['cold_n'] / pc if pc else None)} | |")
    w(f"| p99 of one cold lookup | {fmt(median_of('cold', 'ours', 'p99_ms'), 1, ' ms')} "
      f"| {fmt(median_of('cold', 'peer', 'p99_ms'), 1, ' ms')} | |")
    a, b = cpu_per("cold", "ours"), cpu_per("cold", "peer")
    w(f"| daemon CPU per cold lookup | {fmt(a / 1000 if a else None, 2, ' ms')} "
      f"| {fmt(b / 1000 if b else None, 2, ' ms')} | {ratio(b, a, 1)} |")
    a, b = cpu_per("cold", "ours", "lab_cpu_s"), cpu_per("cold", "peer", "lab_cpu_s")
    w(f"| lab (DNS + HTTPS) CPU per cold lookup | {fmt(a / 1000 if a else None, 2, ' ms')} "
      f"| {fmt(b / 1000 if b else None, 2, ' ms')} | |")
    w(f"| errors (all counted rounds) | {err_sum('cold', 'ours')} | {err_sum('cold', 'peer')} | |")
    w("")

    w(f"### Memory after caching {meta['mem_n']:,} policies")
    w("")
    mem = {}
    for t in ("ours", "peer"):
        rs = sel("memory", t)
        mem[t] = rs[-1] if rs else None
    w("| | ours | peer | ours/peer |")
    w("| --- | ---: | ---: | ---: |")

    def mfield(t, f):
        return mem[t][f] if mem[t] else None

    def per_policy(t):
        m = mem[t]
        if not m or m.get("ok", 0) == 0:
            return None
        return (m["rss_kb"] - m["idle_rss_kb"]) * 1024 / m["count"]

    for label, f in (("VmRSS at idle start", "idle_rss_kb"), ("VmRSS after caching", "rss_kb"),
                     ("VmHWM (peak)", "hwm_kb")):
        a, b = mfield("ours", f), mfield("peer", f)
        w(f"| {label} | {fmt(a / 1024 if a else None, 1, ' MiB')} "
          f"| {fmt(b / 1024 if b else None, 1, ' MiB')} | {ratio(a, b)} |")
    po, pp = per_policy("ours"), per_policy("peer")
    w(f"| bytes per cached policy ((RSS − idle RSS) / count) | {fmt(po, 0, ' B')} | {fmt(pp, 0, ' B')} "
      f"| {ratio(po, pp)} |")
    w(f"| time to cache them all (cold, {meta['cold_conns']} connections) "
      f"| {fmt(mfield('ours', 'fill_s'), 1, ' s')} | {fmt(mfield('peer', 'fill_s'), 1, ' s')} "
      f"| {ratio(mfield('peer', 'fill_s'), mfield('ours', 'fill_s'), 1)} faster |")
    w(f"| errors while caching | {fmt(mfield('ours', 'errors'))} | {fmt(mfield('peer', 'errors'))} | |")
    w("")

    if sel("cold", "ours-dane") or sel("warm", "ours-dane"):
        w("### DANE first: what `dane = \"on\"` costs (ours-dane vs ours, same build)")
        w("")
        w("The bench domains are unsigned, as almost every domain is: with DANE on, each "
          "lookup also asks for the MX RRset (and, where it is signed, addresses and TLSA) "
          "with the AD flag, finds no DNSSEC and answers MTA-STS exactly as with DANE off. "
          "The DANE assessment is cached apart (memory, DNS TTLs), so warm lookups pay one "
          "more map lookup.")
        w("")
        w("| measure | dane off (ours) | dane on (ours-dane) | on/off |")
        w("| --- | ---: | ---: | ---: |")
        a, b = median_of("cold", "ours", "elapsed_s"), median_of("cold", "ours-dane", "elapsed_s")
        w(f"| cold: time to answer {meta['cold_n']:,} domains | {fmt(a, 2, ' s')} | {fmt(b, 2, ' s')} | {ratio(b, a)} |")
        a, b = median_of("cold", "ours", "p99_ms"), median_of("cold", "ours-dane", "p99_ms")
        w(f"| cold: p99 of one lookup | {fmt(a, 1, ' ms')} | {fmt(b, 1, ' ms')} | {ratio(b, a)} |")
        a, b = cpu_per("cold", "ours"), cpu_per("cold", "ours-dane")
        w(f"| cold: daemon CPU per lookup | {fmt(a, 0, ' µs')} | {fmt(b, 0, ' µs')} | {ratio(b, a)} |")
        a, b = cpu_per("cold", "ours", "lab_cpu_s"), cpu_per("cold", "ours-dane", "lab_cpu_s")
        w(f"| cold: lab (DNS + HTTPS) CPU per lookup | {fmt(a, 0, ' µs')} | {fmt(b, 0, ' µs')} | {ratio(b, a)} |")
        for c in conns:
            a, b = median_of("warm", "ours", "rps", conc=c), median_of("warm", "ours-dane", "rps", conc=c)
            w(f"| warm, {c} connections: lookups/s | {fmt(a)} | {fmt(b)} | {ratio(b, a)} |")
            a, b = median_of("warm", "ours", "p99_ms", conc=c), median_of("warm", "ours-dane", "p99_ms", conc=c)
            w(f"| warm, {c} connections: p99 | {fmt(a, 3, ' ms')} | {fmt(b, 3, ' ms')} | {ratio(b, a)} |")
        e = err_sum("cold", "ours-dane") + sum(err_sum("warm", "ours-dane", conc=c) for c in conns)
        w(f"| errors (cold and warm) | | {e} | |")
        w("")

    w("### Targets")
    w("")
    w("| target | measured | met? |")
    w("| --- | --- | --- |")

    def verdict(ok):
        return "n/a" if ok is None else ("yes" if ok else "**no**")

    top = max(conns)
    o, p, r, _ = warm.get(top, (None, None, None, None))
    w(f"| cached lookups ≥ 20× the peer at {top} connections | {ratio(o, p)} "
      f"| {verdict(None if o is None or p is None else o >= 20 * p)} |")
    w(f"| cached lookups within 2× of redis GET at {top} connections | ours/redis {ratio(o, r)} "
      f"| {verdict(None if o is None or r is None else o * 2 >= r)} |")
    p99s = [(c, warm[c][3]) for c in conns if warm[c][3] is not None]
    w(f"| p99 under 1 ms | " + ", ".join(f"{c} conn: {v:.3f} ms" for c, v in p99s)
      + f" | {verdict(None if not p99s else all(v < 1.0 for _, v in p99s))} |")
    w(f"| {meta['cold_n']:,} cold domains ≥ 10× faster than the peer | {ratio(pc, oc, 1)} "
      f"| {verdict(None if oc is None or pc is None else pc >= 10 * oc)} |")
    w(f"| memory per cached policy under 1 KiB | {fmt(po, 0, ' B')} "
      f"| {verdict(None if po is None else po < 1024)} |")
    w("")
    if meta.get("notes"):
        w("Notes:")
        w("")
        for n in meta["notes"]:
            w(f"- {n}")
        w("")
    w(f"Every round's figures: `{meta['raw']}`.")
    print("\n".join(out))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        cmd_record(args)
    elif cmd == "json-field":
        cmd_json_field(args)
    elif cmd == "summary":
        cmd_summary(args)
    elif cmd == "render":
        cmd_render(args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
