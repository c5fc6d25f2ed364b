//! `mtasts report parse <FILE>...`: read TLS-RPT reports (JSON, gzip or e-mail, told apart by
//! content) and summarise them, or print them as normalised JSON.

use crate::output::tally;
use crate::{EXIT_FINDINGS, EXIT_OK, EXIT_TROUBLE};
use mtasts_core::tlsrpt::payload::{self, PayloadKind, ReceivedReport};
use mtasts_core::tlsrpt::report::{FailureDetail, PolicyEntry, ReportLimits, format_datetime};
use mtasts_core::{Finding, Severity};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// What became of one input.
enum Outcome {
    /// Read and parsed (possibly with error-level findings).
    Parsed(Box<ReceivedReport>),
    /// Read, but not a report.
    NotAReport(Finding),
    /// Not readable.
    Io(String),
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads at most `limit + 1` bytes, so that an oversize input is reported as such.
fn read_input(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin().lock().take(cap).read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(path)?.take(cap).read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// `No such file or directory (os error 2)` → `no such file or directory (os error 2)`.
fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn process(path: &Path, limits: &ReportLimits) -> Outcome {
    let bytes = match read_input(path, limits.max_input_bytes) {
        Ok(b) => b,
        Err(e) => return Outcome::Io(lowercase_first(&e.to_string())),
    };
    match payload::parse_payload(&bytes, limits) {
        Ok(mut r) => {
            // A file saved under its §5.1 name can be checked against its body too.
            if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && name.contains('!')
            {
                r.check_filename(name);
            }
            Outcome::Parsed(Box::new(r))
        }
        Err(e) => Outcome::NotAReport(Finding::from_diagnostic(&e)),
    }
}

/// `mtasts report parse <FILE>... [--json]`: 0 when every file is a report without
/// error-level findings, 1 when some report has error-level findings or a file is not a report,
/// 2 when a file cannot be read.
pub(crate) fn parse_reports(
    paths: &[PathBuf],
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let limits = ReportLimits::default();
    let mut code = EXIT_OK;
    let mut docs = Vec::new();
    let mut rendered = 0usize;
    let mut result: io::Result<()> = Ok(());
    for path in paths {
        let name = display_name(path);
        let outcome = process(path, &limits);
        let this = match &outcome {
            Outcome::Parsed(r) if r.has_errors() => EXIT_FINDINGS,
            Outcome::Parsed(_) => EXIT_OK,
            Outcome::NotAReport(_) => EXIT_FINDINGS,
            Outcome::Io(_) => EXIT_TROUBLE,
        };
        code = code.max(this);
        match &outcome {
            Outcome::Io(e) => {
                let _ = writeln!(err, "mtasts: reading {name}: {e}");
            }
            Outcome::NotAReport(f) => {
                let _ = writeln!(
                    err,
                    "mtasts: {name}: not a report: {} [{}, {}]",
                    f.message, f.code, f.rfc
                );
                if !json && !f.hint.is_empty() {
                    let _ = writeln!(err, "    hint: {}", f.hint);
                }
            }
            Outcome::Parsed(_) => {}
        }
        if json {
            docs.push(entry_json(&name, &outcome));
        } else if let Outcome::Parsed(r) = &outcome
            && result.is_ok()
        {
            result = render_text(out, &name, r, rendered == 0);
            rendered += 1;
        }
    }
    if json && result.is_ok() {
        let doc = json!({ "reports": docs });
        result = serde_json::to_writer_pretty(&mut *out, &doc)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out));
    }
    match result {
        Ok(()) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            let _ = writeln!(err, "mtasts: writing output: {e}");
            EXIT_TROUBLE
        }
    }
}

fn entry_json(name: &str, outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Parsed(r) => json!({
            "file": name,
            "source": r.source,
            "report": r.report.to_json(),
            "findings": r.findings(),
        }),
        Outcome::NotAReport(f) => json!({
            "file": name,
            "findings": [f],
        }),
        Outcome::Io(e) => json!({
            "file": name,
            "error": format!("reading {name}: {e}"),
        }),
    }
}

fn or_dash(s: Option<&str>) -> &str {
    match s {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

fn render_text(out: &mut dyn Write, name: &str, r: &ReceivedReport, first: bool) -> io::Result<()> {
    if !first {
        writeln!(out)?;
    }
    let rep = &r.report;
    writeln!(out, "{name}")?;
    let org = or_dash(rep.organization_name.as_deref());
    match rep.contact_info.as_deref() {
        Some(c) if !c.is_empty() => writeln!(out, "  organization: {org} <{c}>")?,
        _ => writeln!(out, "  organization: {org}")?,
    }
    writeln!(out, "  report-id:    {}", or_dash(rep.report_id.as_deref()))?;
    let when = |t: Option<String>| t.unwrap_or_else(|| "?".into());
    match &rep.date_range {
        Some(d) => writeln!(
            out,
            "  date range:   {} to {}",
            when(d.start.as_ref().map(format_datetime)),
            when(d.end.as_ref().map(format_datetime))
        )?,
        None => writeln!(out, "  date range:   -")?,
    }
    writeln!(out, "  source:       {}", source_line(r))?;
    for (i, p) in rep.policies.iter().enumerate() {
        render_policy(out, i, p)?;
    }
    let mut findings = r.findings();
    if !findings.is_empty() {
        writeln!(out, "  findings ({}):", tally(&findings))?;
        // Worst first; repeated notes of one kind are shown once, with a count.
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &findings {
            if f.severity == Severity::Info {
                let n = shown.entry(f.code).or_default();
                *n += 1;
                if *n > 1 {
                    continue;
                }
            }
            writeln!(out, "    {f}")?;
            if !f.hint.is_empty() {
                writeln!(out, "      hint: {}", f.hint)?;
            }
        }
        for (code, n) in shown.iter().filter(|(_, n)| **n > 1) {
            writeln!(out, "    ({} more like {code})", n - 1)?;
        }
    }
    Ok(())
}

fn source_line(r: &ReceivedReport) -> String {
    let s = &r.source;
    match (&s.kind, &s.email) {
        (PayloadKind::Email, Some(m)) => {
            let mut line = format!("e-mail, {}", m.content_type);
            if s.gzip && !m.content_type.ends_with("gzip") {
                line.push_str(" (gzip)");
            }
            if let Some(d) = &m.tls_report_domain {
                line.push_str(&format!(", TLS-Report-Domain {d}"));
            }
            if let Some(d) = &m.tls_report_submitter {
                line.push_str(&format!(", TLS-Report-Submitter {d}"));
            }
            if let Some(f) = &m.filename {
                line.push_str(&format!(", file {f}"));
            }
            line
        }
        (PayloadKind::Gzip, _) => "gzip-compressed JSON".into(),
        _ => "JSON".into(),
    }
}

fn render_policy(out: &mut dyn Write, i: usize, p: &PolicyEntry) -> io::Result<()> {
    let policy = p.policy.as_ref();
    let kind = policy
        .and_then(|p| p.policy_type.as_ref())
        .map_or("?", |t| t.as_str());
    let domain = or_dash(policy.and_then(|p| p.policy_domain.as_deref()));
    let mut head = format!("  policy {}: {kind} {domain}", i + 1);
    if let Some(mode) = policy.and_then(|p| p.sts_mode()) {
        head.push_str(&format!(", mode {mode}"));
    }
    writeln!(out, "{head}")?;
    if let Some(mx) = policy.and_then(|p| p.mx_host.as_ref())
        && !mx.is_empty()
    {
        writeln!(out, "    mx-host:  {}", mx.join(", "))?;
    }
    if let Some(p) = policy
        && p.policy_type.as_ref().is_some_and(|t| t.as_str() == "tlsa")
    {
        for line in p.policy_lines() {
            writeln!(out, "    tlsa:     {line}")?;
        }
    }
    match &p.summary {
        Some(s) => writeln!(
            out,
            "    sessions: {} successful, {} failed",
            s.successful(),
            s.failed()
        )?,
        None => writeln!(out, "    sessions: no summary")?,
    }
    let details = p.failure_details.as_deref().unwrap_or_default();
    if details.is_empty() {
        return Ok(());
    }
    // Group by result type; within a type, by receiving MX, IP and reason.
    let mut groups: BTreeMap<&str, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
    for d in details {
        let kind = d
            .result_type
            .as_ref()
            .map_or("(no result-type)", |t| t.as_str());
        let n = d.failed_session_count.unwrap_or(0);
        let g = groups.entry(kind).or_default();
        g.0 = g.0.saturating_add(n);
        let e = g.1.entry(receiver(d)).or_default();
        *e = e.saturating_add(n);
    }
    writeln!(out, "    failures:")?;
    for (kind, (total, receivers)) in &groups {
        writeln!(out, "      {kind}: {total}")?;
        for (who, n) in receivers {
            writeln!(out, "        {n:>8}  {who}")?;
        }
    }
    Ok(())
}

fn receiver(d: &FailureDetail) -> String {
    let mx = d.receiving_mx_hostname.as_deref().filter(|s| !s.is_empty());
    let ip = d.receiving_ip.as_deref().filter(|s| !s.is_empty());
    let mut who = match (mx, ip) {
        (Some(mx), Some(ip)) => format!("{mx} [{ip}]"),
        (Some(mx), None) => mx.to_string(),
        (None, Some(ip)) => format!("[{ip}]"),
        (None, None) => "(receiving MX not given)".to_string(),
    };
    if let Some(reason) = d.failure_reason_code.as_deref().filter(|r| !r.is_empty()) {
        who.push_str(&format!(", reason: {reason}"));
    }
    who
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../mtasts-core/tests/data/tlsrpt")
            .join(name)
    }

    fn run(paths: &[PathBuf], json: bool) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = parse_reports(paths, json, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn clean_report_exits_zero_with_a_summary() {
        let (code, out, err) = run(&[corpus("stalwartlabs__mail-auth/rpt01.json")], false);
        assert_eq!(code, EXIT_OK, "{out}{err}");
        assert!(
            out.contains("organization: Company-X <sts-reporting@company-x.example>"),
            "{out}"
        );
        assert!(
            out.contains("date range:   2016-04-01T00:00:00Z to 2016-04-01T23:59:59Z"),
            "{out}"
        );
        assert!(
            out.contains("policy 1: sts company-y.example, mode testing"),
            "{out}"
        );
        assert!(
            out.contains("sessions: 5326 successful, 303 failed"),
            "{out}"
        );
        assert!(out.contains("certificate-expired: 100"), "{out}");
        assert!(
            out.contains("mx2.mail.company-y.example [203.0.113.56]"),
            "{out}"
        );
        assert!(err.is_empty(), "{err}");
    }

    #[test]
    fn warnings_are_printed_with_code_rfc_and_hint() {
        let (code, out, _) = run(&[corpus("domainaware__parsedmarc/mail.ru.json")], false);
        assert_eq!(code, EXIT_OK, "{out}");
        let line = out
            .lines()
            .find(|l| l.contains("tlsrpt.report.summary-mismatch"))
            .unwrap_or_default();
        assert!(
            line.trim_start()
                .starts_with("warning: field policies[0].summary.total-failure-session-count: "),
            "{out}"
        );
        assert!(line.ends_with(", RFC 8460 §4.4]"), "{line}");
        assert!(out.contains("hint: "), "{out}");
    }

    #[test]
    fn missing_file_exits_two_and_names_it() {
        let (code, _, err) = run(&[PathBuf::from("/nonexistent/report.json")], false);
        assert_eq!(code, EXIT_TROUBLE);
        assert!(err.contains("/nonexistent/report.json"), "{err}");
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn not_a_report_exits_one() {
        let (code, _, err) = run(&[corpus("SOURCES.md")], false);
        assert_eq!(code, EXIT_FINDINGS);
        assert!(err.contains("SOURCES.md: not a report"), "{err}");
    }

    #[test]
    fn json_output_is_one_document() {
        let paths = [
            corpus("stalwartlabs__mail-auth/rpt02.eml"),
            PathBuf::from("/nonexistent/x.json"),
        ];
        let (code, out, _) = run(&paths, true);
        assert_eq!(code, EXIT_TROUBLE);
        let doc: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let reports = doc["reports"].as_array().cloned().unwrap_or_default();
        assert_eq!(reports.len(), 2, "{out}");
        assert_eq!(reports[0]["source"]["kind"], "email");
        assert_eq!(reports[0]["source"]["tls-report-domain"], "example.net");
        assert_eq!(
            reports[0]["report"]["report-id"],
            "2020-01-01T00:00:00Z_example.com"
        );
        assert!(
            reports[0]["findings"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        );
        assert!(reports[1]["error"].is_string(), "{out}");
    }
}
