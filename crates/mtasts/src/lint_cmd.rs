//! `mtasts lint policy` and `mtasts lint record`.

use crate::output::{exit_for, tally, write_finding};
use crate::{EXIT_OK, EXIT_TROUBLE};
use mtasts_core::rrset::{LintedRecord, lint_rrset};
use mtasts_core::sts::fetch::{self, FetchLimits};
use mtasts_core::sts::policy::{self, CoverageFinding, Policy};
use mtasts_core::tlsrpt::record::ReportUri;
use mtasts_core::{Finding, Location, Severity};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;

/// The most we read of a policy file: far above the 64 KiB senders accept, so an oversize
/// file is reported as such rather than cut silently.
const MAX_POLICY_FILE: u64 = 16 * 1024 * 1024;

fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_POLICY_FILE)
            .read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(path)?
            .take(MAX_POLICY_FILE)
            .read_to_end(&mut buf)?;
    }
    Ok(buf)
}

fn policy_json(p: &Policy) -> serde_json::Value {
    json!({
        "version": policy::POLICY_VERSION,
        "mode": p.mode,
        "max_age": p.max_age,
        "mx": p.mx.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "extensions": p.extensions.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    })
}

/// `mtasts lint policy <FILE|-> [--mx HOST]... [--json]`
pub(crate) fn lint_policy(
    path: &Path,
    mx: &[String],
    as_json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let text = match read_input(path) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "mtasts: reading {name}: {e}");
            return EXIT_TROUBLE;
        }
    };
    let lint = policy::lint_policy(&text);
    let mut findings = Vec::new();
    let limits = FetchLimits::default();
    if let Err(e) = fetch::check_received(text.len() as u64, &limits) {
        findings.push(Finding::from_diagnostic(&e));
    }
    findings.extend(lint.findings());
    let coverage: Vec<CoverageFinding> = match (&lint.policy, mx.is_empty()) {
        (Some(p), false) => policy::coverage(p, mx),
        _ => Vec::new(),
    };
    if lint.policy.is_none() && !mx.is_empty() {
        findings.push(Finding::from_diagnostic(&CoverageFinding::NotChecked));
    }
    let coverage_findings: Vec<Finding> = coverage.iter().map(Finding::from_diagnostic).collect();
    let mut all = findings.clone();
    all.extend(
        coverage_findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .cloned(),
    );
    let code = exit_for(&all);

    let result = if as_json {
        let doc = mtasts_core::json::document(
            "mtasts-lint-policy/1",
            json!({
                "file": name,
                "valid": lint.policy.is_some() && code == EXIT_OK,
                "policy": lint.policy.as_ref().map(policy_json),
                "findings": findings,
                "coverage": coverage_findings,
            }),
        );
        serde_json::to_writer_pretty(&mut *out, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        render_policy_text(
            out,
            &name,
            lint.policy.as_ref(),
            &findings,
            &coverage_findings,
        )
    };
    match result {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            let _ = writeln!(err, "mtasts: writing output: {e}");
            EXIT_TROUBLE
        }
    }
}

fn render_policy_text(
    out: &mut dyn Write,
    name: &str,
    policy: Option<&Policy>,
    findings: &[Finding],
    coverage: &[Finding],
) -> std::io::Result<()> {
    for f in findings {
        write_finding(out, name, f)?;
    }
    for f in coverage {
        match f.severity {
            Severity::Info => writeln!(out, "{name}: ok: {}", f.message)?,
            // The message names the host or pattern already.
            _ => write_finding(
                out,
                name,
                &Finding {
                    location: Location::Whole,
                    ..f.clone()
                },
            )?,
        }
    }
    let mut all: Vec<Finding> = findings.to_vec();
    all.extend(
        coverage
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .cloned(),
    );
    match policy {
        Some(p) => writeln!(
            out,
            "{name}: {} policy: mode {}, max_age {}, {} mx pattern{} ({})",
            if exit_for(&all) != crate::EXIT_FINDINGS {
                "valid"
            } else {
                "problems with"
            },
            p.mode,
            p.max_age,
            p.mx.len(),
            if p.mx.len() == 1 { "" } else { "s" },
            tally(&all)
        ),
        None => writeln!(out, "{name}: invalid policy ({})", tally(&all)),
    }
}

/// Joins zone-file style quoted strings (`"v=STSv1; " "id=1"`) as DNS would; other text is
/// taken as one string.
fn txt_strings(arg: &str) -> Vec<Vec<u8>> {
    let t = arg.trim();
    if !t.starts_with('"') {
        return vec![arg.as_bytes().to_vec()];
    }
    let mut out = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut bytes = t.bytes();
    while let Some(b) = bytes.next() {
        match (&mut cur, b) {
            (None, b'"') => cur = Some(Vec::new()),
            (None, _) => {}
            (Some(s), b'\\') => {
                if let Some(n) = bytes.next() {
                    s.push(n);
                }
            }
            (Some(_), b'"') => {
                if let Some(s) = cur.take() {
                    out.push(s);
                }
            }
            (Some(s), b) => s.push(b),
        }
    }
    if let Some(s) = cur {
        out.push(s);
    }
    out
}

/// `mtasts lint record <TXT>... [--json]`
pub(crate) fn lint_record(
    args: &[String],
    as_json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let rrset: Vec<Vec<Vec<u8>>> = args.iter().map(|a| txt_strings(a)).collect();
    // One RRset rule for owners and senders (RFC 8461 §3.1, RFC 8460 §3), in the core.
    let lint = lint_rrset(&rrset);
    let findings = lint.findings.clone();
    let mut records = Vec::new();
    let mut human = Vec::new();
    for (i, (text, linted)) in lint.records.iter().enumerate() {
        let text = String::from_utf8_lossy(text).to_string();
        match linted {
            LintedRecord::Sts(Ok(r)) => {
                human.push(format!(
                    "record #{}: valid MTA-STS record, id {}",
                    i + 1,
                    r.id
                ));
                records.push(
                    json!({"index": i, "kind": "sts", "text": text, "valid": true,
                    "id": r.id, "canonical": r.to_string()}),
                );
            }
            LintedRecord::Sts(Err(_)) => {
                records.push(json!({"index": i, "kind": "sts", "text": text, "valid": false}));
            }
            LintedRecord::TlsRpt(Ok(r)) => {
                let rua: Vec<&str> = r.rua.iter().map(ReportUri::as_str).collect();
                human.push(format!(
                    "record #{}: valid TLS-RPT record, reports to {}",
                    i + 1,
                    rua.join(", ")
                ));
                records.push(
                    json!({"index": i, "kind": "tlsrpt", "text": text, "valid": true,
                    "rua": rua, "canonical": r.to_string()}),
                );
            }
            LintedRecord::TlsRpt(Err(_)) => {
                records.push(json!({"index": i, "kind": "tlsrpt", "text": text, "valid": false}));
            }
            LintedRecord::Discarded => {
                records.push(json!({"index": i, "kind": "other", "text": text, "valid": false}));
            }
        }
    }
    let flat: Vec<Finding> = findings.iter().map(|(_, f)| f.clone()).collect();
    let code = exit_for(&flat);
    let result = if as_json {
        let listed: Vec<serde_json::Value> = findings
            .iter()
            .map(|(i, f)| {
                let mut v = json!(f);
                if let (Some(i), Some(obj)) = (i, v.as_object_mut()) {
                    obj.insert("record".into(), json!(i));
                }
                v
            })
            .collect();
        let doc = mtasts_core::json::document(
            "mtasts-lint-record/1",
            json!({"valid": code == EXIT_OK, "records": records, "findings": listed}),
        );
        serde_json::to_writer_pretty(&mut *out, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        (|| {
            for (i, f) in &findings {
                let source = match i {
                    Some(i) => format!("record #{}", i + 1),
                    None => "rrset".to_string(),
                };
                write_finding(out, &source, f)?;
            }
            for h in &human {
                writeln!(out, "{h}")?;
            }
            writeln!(
                out,
                "{} ({})",
                if code == EXIT_OK { "valid" } else { "invalid" },
                tally(&flat)
            )
        })()
    };
    match result {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            let _ = writeln!(err, "mtasts: writing output: {e}");
            EXIT_TROUBLE
        }
    }
}
