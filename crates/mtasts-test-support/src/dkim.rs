//! Report e-mails signed by an independent DKIM signer: dkimpy 1.1.8 (PyPI) in the test venv
//! `target/test-venv` (`.ci/run` installs it), so that what our verifier accepts is what
//! another implementation signed, not what our own code produced.
//!
//! The e-mail itself is composed by Python's standard library (`email.mime`), as RFC 8460
//! §5.3 describes it: `multipart/report; report-type=tlsrpt`, a text part, and the report as
//! an `application/tlsrpt+gzip` attachment named as §5.1 names reports, with the
//! `TLS-Report-Domain` and `TLS-Report-Submitter` header fields.
//!
//! When the venv is missing, [`Signer::new`] returns `None` after printing a note (outside
//! CI), or panics (under CI), as [`crate::postgres`] does.

use std::io::Write;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How the message is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// `tlsrpt=True`: the RFC 8460 §3 way (no `l=`).
    Tlsrpt,
    /// With an `l=` tag (RFC 8460 §3 forbids it).
    WithLength,
    /// Not signed at all.
    Unsigned,
}

/// A DKIM key pair and the signer.
#[derive(Debug)]
pub struct Signer {
    python: PathBuf,
    key: PathBuf,
    public_b64: String,
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    _dir: tempfile::TempDir,
}

/// The Python that composes and signs; arguments: key file, selector, domain, signing mode,
/// report domain, submitter, report id, gzip (0/1). The report JSON comes on stdin; the
/// message goes to stdout.
const SCRIPT: &str = r#"
import sys, gzip, email.utils
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.mime.application import MIMEApplication
import dkim
key, selector, domain, mode, rdomain, submitter, rid, gz = sys.argv[1:9]
body = sys.stdin.buffer.read()
msg = MIMEMultipart("report", report_type="tlsrpt")
msg["From"] = "tlsrpt-noreply@" + submitter
msg["To"] = "tlsrpt@" + rdomain
msg["Subject"] = "Report Domain: %s Submitter: %s Report-ID: <%s>" % (rdomain, submitter, rid)
msg["Date"] = email.utils.formatdate(1700000000)
msg["Message-ID"] = "<%s@%s>" % (rid.replace("@", "."), submitter)
msg["TLS-Report-Domain"] = rdomain
msg["TLS-Report-Submitter"] = submitter
msg.attach(MIMEText("This is an aggregate TLS report from " + submitter + "\n"))
name = "%s!%s!1700000000!1700086400!%s.json" % (submitter, rdomain, rid.replace("!", "_"))
if gz == "1":
    part = MIMEApplication(gzip.compress(body, mtime=0), "tlsrpt+gzip", name=name + ".gz")
    part.add_header("Content-Disposition", "attachment", filename=name + ".gz")
else:
    part = MIMEApplication(body, "tlsrpt+json", name=name)
    part.add_header("Content-Disposition", "attachment", filename=name)
msg.attach(part)
raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
if mode == "unsigned":
    sys.stdout.buffer.write(raw)
    sys.exit(0)
headers = [b"from", b"to", b"subject", b"date", b"message-id", b"tls-report-domain", b"tls-report-submitter"]
sig = dkim.sign(raw, selector.encode(), domain.encode(), open(key, "rb").read(),
                canonicalize=(b"relaxed", b"relaxed"), include_headers=headers,
                length=(mode == "length"), tlsrpt=(mode == "tlsrpt"))
sys.stdout.buffer.write(sig + raw)
"#;

fn venv_python() -> Option<PathBuf> {
    let p = crate::workspace_root().join("target/test-venv/bin/python3");
    let ok = Command::new(&p)
        .args(["-c", "import dkim"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

impl Signer {
    /// A new 2048-bit RSA key for `selector._domainkey.domain`, or `None` (outside CI) when
    /// dkimpy is not installed.
    pub fn new(domain: &str, selector: &str) -> Option<Signer> {
        let Some(python) = venv_python() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "dkimpy is not installed in target/test-venv, and CI is set: the DKIM tests \
                 must run in CI (python3 -m venv target/test-venv && target/test-venv/bin/pip \
                 install dkimpy==1.1.8; .ci/run does it)"
            );
            eprintln!(
                "note: dkimpy is not installed in target/test-venv; skipping a DKIM test \
                 (.ci/run installs it)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key.pem");
        let ok = Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(ok.success(), "openssl genrsa failed");
        let der = Command::new("openssl")
            .args(["rsa", "-pubout", "-outform", "DER", "-in"])
            .arg(&key)
            .stderr(Stdio::null())
            .output()
            .expect("openssl rsa");
        assert!(der.status.success(), "openssl rsa -pubout failed");
        Some(Signer {
            python,
            key,
            public_b64: BASE64_STANDARD.encode(&der.stdout),
            domain: domain.to_owned(),
            selector: selector.to_owned(),
            _dir: dir,
        })
    }

    /// The DNS name of the key record.
    pub fn key_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The key record, declaring `s=tlsrpt` when `tlsrpt` (RFC 8460 §3).
    pub fn key_record(&self, tlsrpt: bool) -> String {
        format!(
            "v=DKIM1; k=rsa;{} p={}",
            if tlsrpt { " s=tlsrpt;" } else { "" },
            self.public_b64
        )
    }

    /// A report e-mail for `report_json` (sent by `submitter` about `report_domain`), signed
    /// by this key as `signing` says.
    pub fn report_mail(
        &self,
        report_json: &[u8],
        report_domain: &str,
        submitter: &str,
        report_id: &str,
        signing: Signing,
    ) -> Vec<u8> {
        let mode = match signing {
            Signing::Tlsrpt => "tlsrpt",
            Signing::WithLength => "length",
            Signing::Unsigned => "unsigned",
        };
        let mut child = Command::new(&self.python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(&self.key)
            .args([
                self.selector.as_str(),
                self.domain.as_str(),
                mode,
                report_domain,
                submitter,
                report_id,
                "1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(report_json)
            .expect("write");
        let out = child.wait_with_output().expect("python");
        assert!(
            out.status.success(),
            "dkimpy signing failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The key file (PKCS#1 PEM).
    pub fn key_path(&self) -> &Path {
        &self.key
    }
}
