//! What a report says, for people (`mtasts report parse`) and as JSON. Text from the report
//! (organisation names, reason codes, host names) is printed through the core's escaping, so a
//! hostile report cannot rewrite the terminal.

use std::collections::BTreeMap;
use std::io::{self, Write};

use mtasts_core::Severity;
use mtasts_core::diag::tally;
use mtasts_core::text::escape;
use mtasts_core::tlsrpt::payload::{PayloadKind, ReceivedReport};
use mtasts_core::tlsrpt::report::{FailureDetail, PolicyEntry, format_datetime};
use serde_json::{Value, json};

use crate::read::Outcome;

/// One input as JSON: its source, the normalised report and the findings, or why not.
pub fn entry_json(name: &str, outcome: &Outcome) -> Value {
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

/// One report for people; `first` leaves out the blank line before it.
pub fn render_text(
    out: &mut dyn Write,
    name: &str,
    r: &ReceivedReport,
    first: bool,
) -> io::Result<()> {
    if !first {
        writeln!(out)?;
    }
    let rep = &r.report;
    writeln!(out, "{}", escape(name))?;
    let org = or_dash(rep.organization_name.as_deref());
    match rep.contact_info.as_deref() {
        Some(c) if !c.is_empty() => {
            writeln!(out, "  organization: {} <{}>", escape(org), escape(c))?
        }
        _ => writeln!(out, "  organization: {}", escape(org))?,
    }
    writeln!(
        out,
        "  report-id:    {}",
        escape(or_dash(rep.report_id.as_deref()))
    )?;
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
    writeln!(out, "  source:       {}", escape(&source_line(r)))?;
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
            writeln!(out, "    {}", escape(&f.to_string()))?;
            if !f.hint.is_empty() {
                writeln!(out, "      hint: {}", escape(&f.hint))?;
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
    writeln!(out, "{}", escape(&head))?;
    if let Some(mx) = policy.and_then(|p| p.mx_host.as_ref())
        && !mx.is_empty()
    {
        writeln!(out, "    mx-host:  {}", escape(&mx.join(", ")))?;
    }
    if let Some(p) = policy
        && p.policy_type.as_ref().is_some_and(|t| t.as_str() == "tlsa")
    {
        for line in p.policy_lines() {
            writeln!(out, "    tlsa:     {}", escape(&line))?;
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
        writeln!(out, "      {}: {total}", escape(kind))?;
        for (who, n) in receivers {
            writeln!(out, "        {n:>8}  {}", escape(who))?;
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
