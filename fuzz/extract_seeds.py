#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/seeds/<target>/ from the project's own cases.

    python3 fuzz/extract_seeds.py

Sources (read only):
- crates/mtasts-core/tests/conformance/*.rs: the literal inputs of the table-driven cases;
- crates/mtasts-postfix/tests/socketmap.rs: the netstring, request and key cases;
- lab/scenarios/*.toml: TXT records, policies (raw `body`, or rendered from mode/max_age/mx),
  Content-Types and MX names;
- crates/mtasts-core/tests/data/tlsrpt/: a handful of small .json and .eml reports.

Each seed is one file named after its source (`<file>-<case>`), so a rerun gives the same
names; the directories are wiped and rewritten. Seeds are text (UTF-8), except that socketmap
seeds start with the two control bytes of the target's input layout.
"""

import re
import shutil
import sys
import tomllib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
CONF = ROOT / "crates/mtasts-core/tests/conformance"
POSTFIX_TESTS = ROOT / "crates/mtasts-postfix/tests/socketmap.rs"
LAB = ROOT / "lab/scenarios"
TLSRPT_DATA = ROOT / "crates/mtasts-core/tests/data/tlsrpt"
SEEDS = FUZZ / "seeds"

TARGETS = [
    "sts_record", "sts_policy", "mx_pattern", "tlsrpt_record", "media_type",
    "tlsrpt_report", "tlsrpt_filename", "socketmap", "report_payload", "report_gzip",
]

# ----------------------------------------------------------------------------------------------
# A small reader of Rust literals and of `cases! { check; name: input => expected; ... }` blocks.

ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def read_literal(src, i):
    """Reads the Rust string literal at src[i:] ("..", b"..", r#".."#, br".."); returns
    (bytes, next index), or None if there is none there."""
    m = re.compile(r'(b?)(r(#*))?"').match(src, i)
    if not m:
        return None
    is_bytes, raw, hashes = m.group(1) == "b", m.group(2) is not None, m.group(3) or ""
    j = m.end()
    if raw:
        end = src.index('"' + hashes, j)
        text = src[j:end]
        return text.encode("utf-8"), end + 1 + len(hashes)
    out = bytearray()
    while True:
        c = src[j]
        if c == '"':
            return bytes(out), j + 1
        if c == "\\":
            e = src[j + 1]
            if e in ESCAPES:
                out += ESCAPES[e].encode()
                j += 2
            elif e == "x":
                v = int(src[j + 2:j + 4], 16)
                out += bytes([v]) if is_bytes else chr(v).encode()
                j += 4
            elif e == "u":
                end = src.index("}", j)
                out += chr(int(src[j + 3:end], 16)).encode("utf-8")
                j = end + 1
            elif e == "\n":  # line continuation: skip the newline and leading whitespace
                j += 2
                while src[j] in " \t\n":
                    j += 1
            else:
                raise ValueError(f"escape \\{e}")
        else:
            out += c.encode("utf-8")
            j += 1


def consts(src):
    """`const NAME: &str = "...";` definitions."""
    out = {}
    for m in re.finditer(r'const (\w+): &(?:str|\[u8\]) = ', src):
        lit = read_literal(src, m.end())
        if lit:
            out[m.group(1)] = lit[0]
    return out


def case_blocks(src, macro="cases!"):
    """Yields (check fn, [(case name, input expression text)]) for every macro block."""
    for m in re.finditer(re.escape(macro) + r"\s*\{\s*([\w:]+);", src):
        i, depth, cases = m.end(), 1, []
        body_start = i
        # Find the end of the block, skipping literals.
        while depth:
            lit = read_literal(src, i) if src[i] in 'br"' and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")) else None
            if lit:
                i = lit[1]
                continue
            if src[i] == "{":
                depth += 1
            elif src[i] == "}":
                depth -= 1
            i += 1
        body = src[body_start:i - 1]
        yield m.group(1), split_cases(body)


def split_cases(body):
    cases, i = [], 0
    name_re = re.compile(r"\s*(\w+)\s*:\s*")
    while True:
        m = name_re.match(body, i)
        if not m:
            break
        j = m.end()
        start = j
        # The input expression runs to the top-level `=>`; the case to the top-level `;`.
        arrow = None
        depth = 0
        while True:
            c = body[j]
            lit = read_literal(body, j) if c in 'br"' and not (body[j - 1].isalnum() or body[j - 1] == "_") else None
            if lit:
                j = lit[1]
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif depth == 0 and body.startswith("=>", j) and arrow is None:
                arrow = j
            elif depth == 0 and c == ";":
                break
            j += 1
        cases.append((m.group(1), body[start:arrow]))
        i = j + 1
    return cases


def literals(expr, names=None):
    """Every string literal in an expression, in order; known const names count too."""
    out, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c in 'br"' and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
            lit = read_literal(expr, i)
            if lit:
                out.append(lit[0])
                i = lit[1]
                continue
        if names and (c.isalpha() or c == "_"):
            m = re.compile(r"\w+").match(expr, i)
            if m.group(0) in names:
                out.append(names[m.group(0)])
            i = m.end()
            continue
        i += 1
    return out


def rrset(expr):
    """`&[&["a", "b"], &["c"]]` as the sts_record/tlsrpt_record input layout: records joined
    with 0x00, character-strings with 0x01."""
    records = [literals(g) for g in re.findall(r'&\[([^\[\]]*)\]', expr)]
    return b"\x00".join(b"\x01".join(r) for r in records if True)


def netstring(payload):
    return str(len(payload)).encode() + b":" + payload + b","


# ----------------------------------------------------------------------------------------------

seeds = {t: {} for t in TARGETS}


def add(target, name, data):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    seeds[target][name] = data


def from_conformance():
    for path in sorted(CONF.glob("*.rs")):
        src = path.read_text()
        names = consts(src)
        stem = path.stem
        for macro in ("cases!", "tlsrpt_cases!"):
            for check, cases in case_blocks(src, macro):
                for case, expr in cases:
                    lits = literals(expr, names)
                    key = f"{stem}-{case}"
                    if stem == "policy" and lits:
                        add("sts_policy", key, lits[0])
                    elif stem == "mx" and len(lits) == 2:
                        add("mx_pattern", key, lits[0] + b"\n" + lits[1])
                    elif stem == "record_sts" and lits:
                        add("sts_record", key, lits[0])
                    elif stem == "record_tlsrpt" and lits:
                        add("tlsrpt_record", key, lits[0])
                    elif stem == "select":
                        target = "sts_record" if check == "check_sts" else "tlsrpt_record"
                        add(target, key, rrset(expr))
                    elif stem == "fetch" and check == "check_media" and lits:
                        add("media_type", key, lits[0])
                    elif stem == "report" and check == "check_name" and lits:
                        add("tlsrpt_filename", key, lits[0])
        # A few literals outside the tables: report filenames and raw report inputs.
        if stem == "report":
            for m in re.finditer(r'"[A-Za-z0-9.-]+![^"]*"', src):
                lit = read_literal(src, m.start())[0]
                add("tlsrpt_filename", f"report-literal-{lit.decode()}", lit)


def from_postfix():
    src = POSTFIX_TESTS.read_text()
    for check, cases in case_blocks(src):
        for case, expr in cases:
            lits = literals(expr)
            key = f"postfix-{case}"
            if check == "check_decode" and lits:
                m = re.search(r",\s*(\d+)\s*\)\s*$", expr)
                limit = min(int(m.group(1)), 255) if m else 255
                # Whole, and in 3-byte chunks.
                add("socketmap", key, bytes([limit, 0]) + lits[0])
                add("socketmap", key + "-chunked", bytes([limit, 1, 2]) + lits[0])
            elif check.startswith("check_request") and lits:
                add("socketmap", key, bytes([255, 0]) + netstring(lits[0]))
            elif check.startswith("check_key") and lits:
                add("socketmap", key, bytes([255, 0]) + netstring(b"postfix " + lits[0]))
    for name, text in consts(src).items():
        add("sts_policy", f"postfix-{name}", text)
    # Pipelined requests of the daemon's map names.
    add("socketmap", "pipelined", bytes([255, 2, 0, 5])
        + netstring(b"postfix example.com") + netstring(b"tlsrpt [mx.example.com]:25")
        + netstring(b"postfix .example.com"))


def render_policy(p):
    """A lab policy as the lab serves it: a raw `body`, or the fields in order."""
    if "body" in p:
        return p["body"].encode()
    eol = "\r\n" if p.get("line_ending") == "crlf" else "\n"
    lines = [f"version: {p.get('version', 'STSv1')}"]
    if "mode" in p:
        lines.append(f"mode: {p['mode']}")
    lines += [f"mx: {m}" for m in p.get("mx", [])]
    if "max_age" in p:
        lines.append(f"max_age: {p['max_age']}")
    lines += list(p.get("extra_lines", []))
    return (eol.join(lines) + eol).encode()


def from_lab():
    for path in sorted(LAB.glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        for domain, d in doc.get("domains", {}).items():
            key = f"lab-{path.stem}-{domain}"
            for field, target in (("sts_txt", "sts_record"), ("tlsrpt_txt", "tlsrpt_record")):
                # A record is a string, or a list of character-strings.
                records = [[r] if isinstance(r, str) else r for r in d.get(field, [])]
                for i, strings in enumerate(records):
                    add(target, f"{key}-{i}", "".join(strings).encode())
                if records:
                    add(target, f"{key}-rrset", b"\x00".join(
                        b"\x01".join(s.encode() for s in strings) for strings in records))
            p = d.get("policy")
            if isinstance(p, dict):
                add("sts_policy", key, render_policy(p))
                if "content_type" in p:
                    add("media_type", key, p["content_type"].encode())
                for i, m in enumerate(p.get("mx", [])):
                    # Each pattern against each of the domain's MX host names.
                    for j, mx in enumerate(d.get("mx", [])):
                        host = mx.split()[-1]
                        add("mx_pattern", f"{key}-{i}-{j}", f"{m}\n{host}".encode())
            for i, mx in enumerate(d.get("mx", [])):
                host = mx.split()[-1]
                add("socketmap", f"{key}-{i}",
                    bytes([255, 0]) + netstring(f"postfix [{host}]:25".encode()))
            add("socketmap", key, bytes([255, 0]) + netstring(f"postfix {domain}".encode()))


# Small report files: plain JSON and e-mails (text only; the target report_gzip compresses
# its input itself, so its seeds are the JSON ones).
REPORT_FILES = [
    "marcbradshaw__mail-tls-rpt/report.json",
    "cry-inc__dmarc-report-viewer/no-policy.json",
    "cry-inc__dmarc-report-viewer/no_ip_and_mx.json",
    "phi-ag__mta-sts-exporter/google.json",
    "phi-ag__mta-sts-exporter/rfc-errata-6241.json",
    "stalwartlabs__mail-auth/rpt02.json",
    "domainaware__parsedmarc/empty_failure_detail_fields.json",
    "domainaware__parsedmarc/smtp_tls.json",
    "robalexdev__tlsrpt-be/test.eml",
    "stalwartlabs__mail-auth/rpt01.eml",
    "stalwartlabs__mail-auth/rpt02.eml",
    "domainaware__parsedmarc/google.com_smtp_tls_report.eml",
    "mjl-__mox/example.eml",
    "isseis__tlsrpt-digest/tlsrpt_failure.eml",
    "marcbradshaw__mail-tls-rpt/email.eml",
]


def from_reports():
    for rel in REPORT_FILES:
        data = (TLSRPT_DATA / rel).read_bytes()
        assert len(data) < 100_000, rel
        name = rel.replace("/", "-")
        add("tlsrpt_report", name, data)
        add("report_payload", name, data)
        if rel.endswith(".json"):
            # Control byte 0x06: level 6, one member.
            add("report_gzip", name, b"\x06" + data)
            add("report_gzip", name + "-2members", b"\xc6" + data)
    # Report filenames seen in the data set.
    for line in (TLSRPT_DATA / "expected.tsv").read_text().splitlines():
        for field in line.split("\t"):
            base = field.rsplit("/", 1)[-1]
            if base.count("!") >= 3:
                add("tlsrpt_filename", f"data-{base}", base.encode())


def main():
    from_conformance()
    from_postfix()
    from_lab()
    from_reports()
    for target, files in seeds.items():
        d = SEEDS / target
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in sorted(files.items()):
            (d / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
