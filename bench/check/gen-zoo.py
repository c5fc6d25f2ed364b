#!/usr/bin/env python3
"""Writes a lab scenario made of COPIES copies of the zoo (lab/scenarios/zoo.toml), for
bench/check.sh, plus the list of its domains and each domain's expectations.

    gen-zoo.py ZOO OUT.toml DOMAINS.txt EXPECT.json --copies N [--total M]

Copy k renames every zoo domain X.test to X-cKK.test, everywhere inside the copy: domain keys,
host names (mx1.X.test), policy mx patterns (also mixed-case ones), TXT contents
(rua=mailto:tlsrpt@X.test), CNAME targets (sts-provider.test, provider.test), the redirect
Location (mta-sts.good-enforce.test), certificate names (rogue-mx.attacker.test), and names
that are not zoo domains (mx1.mx-suffix-trick.test.evil.test becomes
mx1.mx-suffix-trick-cKK.test.evil-cKK.test). The IDN domain keeps its U-label key
(idn-bücher-cKK.test) and its A-label references are re-encoded for the new name.

SMTP hosts. A lab world gives each SMTP backend its own address in one /24, at most 245, and
the zoo has 82 of them, so 12 copies with hosts of their own do not fit. Copy 00 owns the
hosts (explicit or default ones); in every other copy each host name is an A record that points
at the owner's backends (`a = ["host:NAME"]`), and the owner's certificate lists every copy's
name of that host (or, for a wildcard certificate, every copy's wildcard; wrong-name
certificates stay wrong, substituted ones name only the attacker's hosts). Each copy therefore
sees the same verdicts as the zoo; the cost is that 12 or 13 domains share each SMTP address,
as customers of one mail provider do. The exception: hosts that delay their greeting
(mx-slow-greeting) keep a host of their own in every copy, since behind one shared address a
checker that limits its connections per address would wait for the copies in turn.

--total M keeps the first M domains: whole copies, then from the last copy only domains that
reference no other zoo domain (the correct ones first), so that the world stays consistent.
"""
import argparse
import json
import re
import sys
import tomllib

NAME_RE = re.compile(r"(?<![\w-])([\w-]+)\.(test)(?![\w-])", re.IGNORECASE)


def alabel(label):
    if label.isascii():
        return label.lower()
    return label.encode("idna").decode("ascii").lower()


def norm(name):
    """Absolute, lower-case A-label form of a name (no trailing dot)."""
    name = name.rstrip(".")
    return ".".join(alabel(l) for l in name.split("."))


def suffix_label(label, tag):
    """X -> X-cKK, keeping the case; an A-label is decoded, suffixed and encoded again."""
    if label.lower().startswith("xn--"):
        u = label.encode("ascii").decode("idna")
        return (u + "-" + tag).encode("idna").decode("ascii")
    return label + "-" + tag


def rename(s, tag):
    return NAME_RE.sub(lambda m: suffix_label(m.group(1), tag) + "." + m.group(2), s)


def rename_deep(v, tag):
    if isinstance(v, str):
        return rename(v, tag)
    if isinstance(v, list):
        return [rename_deep(x, tag) for x in v]
    if isinstance(v, dict):
        return {rename(k, tag): rename_deep(x, tag) for k, x in v.items()}
    return v


def resolve_key(key, domain):
    """The lab's rule for hosts/dns keys (docs/lab.md)."""
    d = norm(domain)
    if key == "@":
        return d
    if key.endswith("."):
        return norm(key)
    n = norm(key)
    if n == d or n.endswith("." + d):
        return n
    return n + "." + d


def mx_target(mx):
    parts = mx.split()
    return norm(parts[-1]) if parts[-1] != "." else None


def smtp_hosts(domains):
    """{host (absolute): (declaring domain key, hosts key or None)} as the lab builds them."""
    hosts = {}
    for d, spec in domains.items():
        for k in spec.get("hosts", {}):
            hosts[resolve_key(k, d)] = (d, k)
    controls = set()
    for d, spec in domains.items():
        for k, e in spec.get("dns", {}).items():
            if any(f in e for f in ("cname", "a", "fault")):
                controls.add(resolve_key(k, d))
    for d, spec in domains.items():
        mxs = list(spec.get("mx", []))
        for e in spec.get("dns", {}).values():
            mxs += e.get("mx", [])
        for m in mxs:
            t = mx_target(m)
            if t and (t == "test" or t.endswith(".test")) and t not in hosts and t not in controls:
                hosts[t] = (d, None)
    return hosts


def references(spec_text_domains, d, spec):
    """Zoo domains (lower-case, A-label) that domain d's spec mentions."""
    text = json.dumps(spec, ensure_ascii=False)
    out = set()
    for m in NAME_RE.finditer(text):
        out.add(norm(m.group(0)))
    own = norm(d)
    return {r for r in out if r in spec_text_domains and r != own}


def waits(spec):
    """Whether a zoo domain makes a client wait for a delay or a timeout."""
    p = spec.get("policy", {})
    if p.get("delay_ms") or p.get("slow_body") or p.get("block") == "hang":
        return True
    for e in spec.get("dns", {}).values():
        if e.get("delay_ms") or e.get("fault") == "timeout":
            return True
    for h in spec.get("hosts", {}).values():
        if h.get("greeting_delay_ms") or any(b.get("greeting_delay_ms")
                                             for b in h.get("backends", [])):
            return True
    return False


# ------------------------------------------------------------------ TOML output
def tstr(s):
    return json.dumps(s, ensure_ascii=False)


def tval(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return tstr(v)
    if isinstance(v, list):
        return "[" + ", ".join(tval(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{tstr(k)} = {tval(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def emit_table(out, header, table):
    out.append(header)
    for k, v in table.items():
        out.append(f"{tstr(k)} = {tval(v)}")


def emit_domain(out, d, spec):
    out.append("")
    top = {k: v for k, v in spec.items() if k not in ("policy", "hosts", "dns", "expect")}
    emit_table(out, f"[domains.{tstr(d)}]", top)
    if "policy" in spec:
        emit_table(out, f"[domains.{tstr(d)}.policy]", spec["policy"])
    for sub in ("hosts", "dns"):
        for k, v in spec.get(sub, {}).items():
            emit_table(out, f"[domains.{tstr(d)}.{sub}.{tstr(k)}]", v)
    if "expect" in spec:
        emit_table(out, f"[domains.{tstr(d)}.expect]", spec["expect"])


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo")
    ap.add_argument("out")
    ap.add_argument("domains_out")
    ap.add_argument("expect_out")
    ap.add_argument("--copies", type=int, required=True)
    ap.add_argument("--total", type=int, default=0)
    ap.add_argument("--rtt-ms", type=int, default=0,
                    help="simulated network round trip of the world ([lab] rtt_ms)")
    ap.add_argument("--prompt-out", help="also write the domains that make no client wait "
                    "(no DNS delay or timeout, slow or hanging policy host, slow greeting)")
    a = ap.parse_args()

    with open(a.zoo, "rb") as f:
        zoo = tomllib.load(f)
    zd = zoo["domains"]
    n_zoo = len(zd)
    if a.copies < 1 or a.copies > 99:
        sys.exit("gen-zoo.py: --copies must be 1..99")
    total = a.total or a.copies * n_zoo
    if total > a.copies * n_zoo or total < (a.copies - 1) * n_zoo:
        sys.exit(f"gen-zoo.py: --total {total} needs {-(-total // n_zoo)} copies")
    zoo_names = {norm(d) for d in zd}

    # Domains of each copy: whole copies, then the self-contained ones of the last copy,
    # domains the zoo expects to be clean first.
    plan = []
    for c in range(a.copies):
        if (c + 1) * n_zoo <= total:
            plan.append(list(zd))
            continue
        want = total - c * n_zoo
        alone = [d for d in zd if not references(zoo_names, d, zd[d])]
        alone.sort(key=lambda d: (len(zd[d].get("expect", {}).get("findings", [])) > 0,
                                  list(zd).index(d)))
        if len(alone) < want:
            sys.exit(f"gen-zoo.py: only {len(alone)} self-contained zoo domains for the last copy")
        keep = set(alone[:want])
        plan.append([d for d in zd if d in keep])

    all_hosts = smtp_hosts(zd)

    def slow(h):
        d, k = all_hosts[h]
        spec = zd[d].get("hosts", {}).get(k, {}) if k else {}
        return bool(spec.get("greeting_delay_ms")) or any(
            b.get("greeting_delay_ms") for b in spec.get("backends", []))

    # Hosts that make a client wait keep their own backends in every copy: behind a shared
    # address a checker that limits its connections per address (as it should) would queue
    # the copies one after another, which measures the generator, not the checker.
    owner_hosts = {h: v for h, v in all_hosts.items() if not slow(h)}
    private = len(all_hosts) - len(owner_hosts)
    # Which copies use each host: those holding its declaring domain.
    copies_of = {d: [c for c in range(len(plan)) if d in plan[c]] for d in zd}
    tag = lambda c: f"c{c:02d}"

    out_domains = {}
    expect = {}
    expect_zoo = {}
    for c, names in enumerate(plan):
        t = tag(c)
        for d in names:
            spec = rename_deep(json.loads(json.dumps(zd[d])), t)
            nd = rename(d, t)
            if c == 0:
                # The owner copy: every host gets a certificate naming all its copies.
                for h, (hd, hkey) in owner_hosts.items():
                    if hd != d:
                        continue
                    copies = copies_of[hd]
                    hosts = spec.setdefault("hosts", {})
                    key = rename(hkey, t) if hkey is not None else rename(h, t) + "."
                    host = hosts.setdefault(key, {})
                    host_renamed = rename(h, t)

                    def widen(cert, zcert):
                        # zcert: the zoo's own (not renamed) certificate spec.
                        if zcert is None:
                            zcert = "valid"
                        if isinstance(zcert, str):
                            kind, names0 = zcert, None
                        else:
                            kind, names0 = zcert["kind"], zcert.get("names")
                        if names0 is not None:
                            # Substituted names: every copy's version of them.
                            names = [rename(n, tag(k)) for k in copies for n in names0]
                        elif kind == "wrong-name":
                            return cert if cert is not None else "wrong-name"
                        elif kind == "wildcard":
                            names = ["*." + rename(h, tag(k)).split(".", 1)[1] for k in copies]
                        else:
                            names = [rename(h, tag(k)) for k in copies]
                        return {"kind": kind, "names": list(dict.fromkeys(names))}

                    zhost = zd[hd].get("hosts", {}).get(hkey, {}) if hkey else {}
                    host["cert"] = widen(host.get("cert"), zhost.get("cert"))
                    for i, b in enumerate(host.get("backends", [])):
                        if "cert" in b:
                            b["cert"] = widen(b["cert"], zhost["backends"][i]["cert"])
                    if host_renamed != resolve_key(key, nd):
                        sys.exit(f"gen-zoo.py: host key {key} of {nd} is not {host_renamed}")
            else:
                hosts = spec.pop("hosts", {})
                for k, v in hosts.items():
                    if resolve_key(k, nd) not in {rename(h, t) for h in owner_hosts}:
                        spec.setdefault("hosts", {})[k] = v
                dns = spec.setdefault("dns", {})
                for h, (hd, _) in owner_hosts.items():
                    if hd != d:
                        continue
                    hk = rename(h, t)
                    target = "host:" + rename(h, tag(0))
                    for k, e in dns.items():
                        if resolve_key(k, nd) == hk:
                            e["a"] = [target]
                            break
                    else:
                        dns[hk + "."] = {"a": [target]}
                if not dns:
                    spec.pop("dns")
            out_domains[nd] = spec
            expect_zoo[nd] = d
            e = zd[d].get("expect", {})
            expect[nd] = {"zoo": d, "copy": c, "sender": e.get("sender"),
                          "checker": e.get("checker"), "findings": e.get("findings", [])}

    out = [
        f"# Generated by bench/check/gen-zoo.py from {a.zoo}: {len(out_domains)} domains,",
        f"# {len(plan)} copies of the zoo's {n_zoo} (X.test -> X-cKK.test); copy 00 owns the",
        "# SMTP hosts, the others point their host names at copy 00's backends.",
        "[lab]",
        f"name = {tstr(f'zoo-x{len(plan)}')}",
        f"description = {tstr(f'{len(out_domains)} domains: the zoo repeated for bench/check.sh')}",
    ]
    for k, v in zoo.get("lab", {}).items():
        if k not in ("name", "description", "rtt_ms"):
            out.append(f"{k} = {tval(v)}")
    if a.rtt_ms:
        out.append(f"rtt_ms = {a.rtt_ms}")
    for d, spec in out_domains.items():
        emit_domain(out, d, spec)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    with open(a.domains_out, "w", encoding="utf-8") as f:
        f.write("\n".join(out_domains) + "\n")
    if a.prompt_out:
        with open(a.prompt_out, "w", encoding="utf-8") as f:
            f.write("".join(d + "\n" for d in out_domains
                            if not waits(zd[expect_zoo[d]])))
    with open(a.expect_out, "w", encoding="utf-8") as f:
        json.dump({norm(d): v | {"input": d} for d, v in expect.items()}, f, indent=0,
                  ensure_ascii=False)
    n_backends = len(owner_hosts) + sum(
        1 for c in range(len(plan)) for h, (d, _) in all_hosts.items()
        if h not in owner_hosts and d in plan[c])
    print(f"gen-zoo.py: {len(out_domains)} domains in {len(plan)} copies, "
          f"{len(owner_hosts)} SMTP hosts shared by the copies, {private} of the zoo's hosts "
          f"private to each copy ({n_backends} SMTP hosts in all)", file=sys.stderr)


if __name__ == "__main__":
    main()
