#!/usr/bin/env python3
"""bench/reports/gen-data.py: the TLS-RPT workload of bench/reports.sh, from the corpus.

    gen-data.py --corpus DIR --out DIR --sizes 1000,10000 [--domain D] [--selector S]
               [--exclude FILE ...] [--jobs N]

Run with a Python that has dkimpy 1.1.8 (target/test-venv). For the largest size N it takes
the report files the corpus's expected.tsv lists (payload `json` or `gzip(json)`, less any
--exclude), and cycles through them to make N reports, each with its own `report-id`
(`<original>.bNNNNN`, rewritten in place in the JSON text; every other byte is kept), and
writes them:

  OUT/nN/files/rNNNNN-<name>.json or .json.gz   one report per file; every second one gzipped
                                                (mtime 0), the others plain JSON
  OUT/nN/reports.mbox                           N report e-mails (RFC 8460 §5.3, composed as
                                                crates/mtasts-test-support/src/dkim.rs does:
                                                multipart/report; report-type=tlsrpt, a text
                                                part, the report as an application/tlsrpt+gzip
                                                attachment, TLS-Report-Domain and
                                                TLS-Report-Submitter headers), each DKIM-signed
                                                by dkimpy (tlsrpt=True: no l=, relaxed/relaxed)
                                                for d=DOMAIN s=SELECTOR; mboxo, LF line ends

and for every smaller size M the first M of those (hard links, and an mbox of the first M
messages). Also OUT/key.pem (2048-bit RSA, made once with openssl), OUT/dkim-txt (the key
record, with s=tlsrpt), OUT/scenario.toml (a lab world serving that record at
SELECTOR._domainkey.DOMAIN), and OUT/nN/manifest.json last, which marks a size as complete:
a size whose manifest exists (and was written by the same generator inputs) is skipped.
"""

import argparse
import base64
import csv
import email.utils
import gzip
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

REPORT_ID = re.compile(rb'("report-id"\s*:\s*")((?:[^"\\]|\\.)*)(")')


def corpus_reports(corpus, exclude):
    out = []
    with open(os.path.join(corpus, "expected.tsv"), newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["payload"] not in ("json", "gzip(json)") or row["file"] in exclude:
                continue
            raw = open(os.path.join(corpus, row["file"]), "rb").read()
            if row["file"].endswith(".gz"):
                raw = gzip.decompress(raw)
            if len(REPORT_ID.findall(raw)) != 1:
                sys.exit("gen-data: %s: expected exactly one report-id" % row["file"])
            doc = json.loads(raw)
            domain = None
            for p in doc.get("policies") or []:
                d = (p.get("policy") or {}).get("policy-domain")
                if isinstance(d, str) and d:
                    domain = d
                    break
            slug = re.sub(r"[^A-Za-z0-9]+", "-", row["file"].rsplit(".json", 1)[0]).strip("-")
            out.append({"file": row["file"], "json": raw, "domain": domain or "example.test",
                        "slug": slug})
    if not out:
        sys.exit("gen-data: no report files in the corpus")
    return out


def with_id(raw, i):
    def sub(m):
        return m.group(1) + m.group(2) + (".b%05d" % i).encode() + m.group(3)
    return REPORT_ID.sub(sub, raw, count=1)


# ---------------------------------------------------------------- e-mails (worker processes)
_KEY = None
_ARGS = None


def _init(key_path, domain, selector):
    global _KEY, _ARGS
    _KEY = open(key_path, "rb").read()
    _ARGS = (domain, selector)


def compose(job):
    import dkim
    i, body, rdomain, rid = job
    domain, selector = _ARGS
    submitter = domain
    msg = MIMEMultipart("report", report_type="tlsrpt")
    msg["From"] = "tlsrpt-noreply@" + submitter
    msg["To"] = "tlsrpt@" + rdomain
    msg["Subject"] = "Report Domain: %s Submitter: %s Report-ID: <%s>" % (rdomain, submitter, rid)
    msg["Date"] = email.utils.formatdate(1700000000 + i)
    msg["Message-ID"] = "<%s.%d@%s>" % (re.sub(r"[^A-Za-z0-9.+-]", "_", rid), i, submitter)
    msg["TLS-Report-Domain"] = rdomain
    msg["TLS-Report-Submitter"] = submitter
    msg.attach(MIMEText("This is an aggregate TLS report from " + submitter + "\n"))
    name = "%s!%s!1700000000!1700086400!%s.json.gz" % (submitter, rdomain,
                                                      re.sub(r"[!/]", "_", rid))
    part = MIMEApplication(gzip.compress(body, mtime=0), "tlsrpt+gzip", name=name)
    part.add_header("Content-Disposition", "attachment", filename=name)
    msg.attach(part)
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    headers = [b"from", b"to", b"subject", b"date", b"message-id", b"tls-report-domain",
               b"tls-report-submitter"]
    sig = dkim.sign(raw, selector.encode(), domain.encode(), _KEY,
                    canonicalize=(b"relaxed", b"relaxed"), include_headers=headers, tlsrpt=True)
    signed = (sig + raw).replace(b"\r\n", b"\n")
    if b"\nFrom " in signed:
        sys.exit("gen-data: a message line starts with 'From '")
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(1700000000 + i))
    return b"From tlsrpt-noreply@%s %s\n" % (submitter.encode(), stamp.encode()) + signed + b"\n"


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", required=True, help="comma-separated, e.g. 1000,10000")
    ap.add_argument("--domain", default="reporter.test")
    ap.add_argument("--selector", default="tlsrpt")
    ap.add_argument("--exclude", action="append", default=[],
                    help="a corpus file (as named in expected.tsv) to leave out")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    sizes = sorted({int(s) for s in a.sizes.split(",")})
    n_max = sizes[-1]
    os.makedirs(a.out, exist_ok=True)

    reports = corpus_reports(a.corpus, set(a.exclude))
    fingerprint = hashlib.sha256()
    fingerprint.update(open(__file__, "rb").read())
    for r in reports:
        fingerprint.update(r["file"].encode() + b"\0" + r["json"])
    fingerprint.update(("%s %s" % (a.domain, a.selector)).encode())
    fingerprint = fingerprint.hexdigest()

    def complete(n):
        try:
            m = json.load(open(os.path.join(a.out, "n%d" % n, "manifest.json")))
        except (OSError, ValueError):
            return False
        return m.get("fingerprint") == fingerprint and m.get("n") == n

    if all(complete(n) for n in sizes):
        print("gen-data: %s: sizes %s already generated" % (a.out, a.sizes), file=sys.stderr)
        return

    key = os.path.join(a.out, "key.pem")
    if not os.path.exists(key):
        subprocess.run(["openssl", "genrsa", "-traditional", "-out", key, "2048"], check=True,
                       stderr=subprocess.DEVNULL)
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER", "-in", key],
                         check=True, capture_output=True).stdout
    txt = "v=DKIM1; k=rsa; s=tlsrpt; p=" + base64.b64encode(der).decode()
    open(os.path.join(a.out, "dkim-txt"), "w").write(txt + "\n")
    with open(os.path.join(a.out, "scenario.toml"), "w") as f:
        f.write('# Generated by bench/reports/gen-data.py: the DKIM key of the benchmark\'s report '
                'e-mails.\n[lab]\nname = "reports-bench"\n'
                'description = "The DKIM key that signs the report e-mails of bench/reports.sh."\n\n'
                '[domains."%s"]\ncomment = "The reporting domain: its DKIM key with s=tlsrpt."\n'
                '[domains."%s".dns."%s._domainkey"]\ntxt = [%s]\n'
                % (a.domain, a.domain, a.selector, json.dumps(txt)))

    # The largest size, in full.
    t0 = time.time()
    big = os.path.join(a.out, "n%d" % n_max)
    shutil.rmtree(big, ignore_errors=True)
    files = os.path.join(big, "files")
    os.makedirs(files)
    jobs, names, forms = [], [], {"json": 0, "json.gz": 0}
    for i in range(n_max):
        r = reports[i % len(reports)]
        body = with_id(r["json"], i)
        rid = REPORT_ID.search(body).group(2).decode("utf-8", "replace")
        if i % 2:
            name = "r%05d-%s.json.gz" % (i, r["slug"])
            data = gzip.compress(body, mtime=0)
            forms["json.gz"] += 1
        else:
            name = "r%05d-%s.json" % (i, r["slug"])
            data = body
            forms["json"] += 1
        with open(os.path.join(files, name), "wb") as f:
            f.write(data)
        names.append(name)
        jobs.append((i, body, r["domain"], rid))
    t_files = time.time() - t0
    offsets = []
    with open(os.path.join(big, "reports.mbox"), "wb") as mbox, \
            multiprocessing.Pool(a.jobs, _init, (key, a.domain, a.selector)) as pool:
        for k, m in enumerate(pool.imap(compose, jobs, chunksize=50)):
            offsets.append(mbox.tell())
            mbox.write(m)
            if (k + 1) % 2000 == 0:
                print("gen-data: %d/%d e-mails signed" % (k + 1, n_max), file=sys.stderr)
        offsets.append(mbox.tell())
    t_mail = time.time() - t0 - t_files

    def manifest(n, d):
        m = {"n": n, "fingerprint": fingerprint, "corpus_reports": [r["file"] for r in reports],
             "forms": {"json": (n + 1) // 2, "json.gz": n // 2},
             "dkim": {"domain": a.domain, "selector": a.selector, "key_bits": 2048,
                      "signer": "dkimpy"},
             "mbox_bytes": os.path.getsize(os.path.join(d, "reports.mbox")),
             "files_bytes": sum(os.path.getsize(os.path.join(d, "files", x))
                                for x in os.listdir(os.path.join(d, "files"))),
             "generated_in_s": round(time.time() - t0, 1)}
        json.dump(m, open(os.path.join(d, "manifest.json"), "w"), indent=1)

    manifest(n_max, big)
    # The smaller sizes: prefixes of the largest.
    for n in sizes[:-1]:
        d = os.path.join(a.out, "n%d" % n)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "files"))
        for name in names[:n]:
            os.link(os.path.join(files, name), os.path.join(d, "files", name))
        with open(os.path.join(big, "reports.mbox"), "rb") as src, \
                open(os.path.join(d, "reports.mbox"), "wb") as dst:
            dst.write(src.read(offsets[n]))
        manifest(n, d)
    print("gen-data: %d reports from %d corpus files: files in %.1f s, %d signed e-mails in "
          "%.1f s (%d jobs)" % (n_max, len(reports), t_files, n_max, t_mail, a.jobs),
          file=sys.stderr)


if __name__ == "__main__":
    main()
