//! What the store says, for people, as CSV and as JSON: `mtasts report summary`, `readiness`
//! and `quarantine`. Text that came from reports (organisation names, MX hosts, reasons) goes
//! through the core's escaping.

use std::io::{self, Write};

use mtasts_core::text::escape;
use mtasts_core::tlsrpt::readiness::{Attribution, Readiness, Status};
use mtasts_tlsrpt_store::{Count, DaySummary, QuarantineEntry};

fn pct(successful: u64, failed: u64) -> String {
    let total = successful.saturating_add(failed);
    if total == 0 {
        return "-".into();
    }
    // Truncated, so that 99.99% is never shown as 100%.
    let tenths = successful.saturating_mul(1000) / total;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

fn counts(list: &[Count], max: usize) -> String {
    let mut parts: Vec<String> = list
        .iter()
        .take(max)
        .map(|c| format!("{} {}", escape(&c.name), c.count))
        .collect();
    if list.len() > max {
        parts.push(format!("… {} more", list.len() - max));
    }
    parts.join(", ")
}

/// `mtasts report summary` for people: one block per domain and day.
pub fn summary_text(out: &mut dyn Write, days: &[DaySummary]) -> io::Result<()> {
    if days.is_empty() {
        return writeln!(out, "no reports in the store match");
    }
    let mut last_domain: Option<&str> = None;
    for d in days {
        if last_domain != Some(d.domain.as_str()) {
            if last_domain.is_some() {
                writeln!(out)?;
            }
            writeln!(out, "{}", escape(&d.domain))?;
            last_domain = Some(&d.domain);
        }
        writeln!(
            out,
            "  {}  {} session{}, {} successful ({}), {} failed, {} report{}",
            d.day,
            d.successful + d.failed,
            if d.successful + d.failed == 1 {
                ""
            } else {
                "s"
            },
            d.successful,
            pct(d.successful, d.failed),
            d.failed,
            d.reports,
            if d.reports == 1 { "" } else { "s" },
        )?;
        if !d.by_result_type.is_empty() {
            writeln!(out, "    failures:   {}", counts(&d.by_result_type, 6))?;
        }
        if !d.by_receiving_mx.is_empty() {
            writeln!(out, "    by MX:      {}", counts(&d.by_receiving_mx, 6))?;
        }
        if !d.by_sending_ip.is_empty() {
            writeln!(out, "    by IP:      {}", counts(&d.by_sending_ip, 6))?;
        }
        let orgs: Vec<String> = d
            .by_organization
            .iter()
            .take(6)
            .map(|o| {
                format!(
                    "{} {}/{}",
                    escape(&o.organization),
                    o.successful,
                    o.successful + o.failed
                )
            })
            .collect();
        if !orgs.is_empty() {
            writeln!(
                out,
                "    senders:    {}{}",
                orgs.join(", "),
                if d.by_organization.len() > 6 {
                    format!(", … {} more", d.by_organization.len() - 6)
                } else {
                    String::new()
                }
            )?;
        }
        for p in &d.policies {
            let mut line = escape(&p.policy_type).into_owned();
            if let Some(m) = &p.mode {
                line.push_str(&format!(" mode {}", escape(m)));
            }
            if !p.mx.is_empty() {
                let mx: Vec<String> = p.mx.iter().map(|m| escape(m).into_owned()).collect();
                line.push_str(&format!(" mx {}", mx.join(" ")));
            }
            let orgs: Vec<String> = p
                .organizations
                .iter()
                .map(|o| escape(o).into_owned())
                .collect();
            writeln!(out, "    policy:     {line} (seen by {})", orgs.join(", "))?;
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    // Values that begin with = + - @ are quoted with a leading ' so that spreadsheets do not
    // run them as formulas.
    let guarded = if s.starts_with(['=', '+', '-', '@']) && s != "-" {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// `mtasts report summary --csv`: one row per domain, day and breakdown value.
///
/// Columns: `domain,day,dimension,name,successful,failed`, where `dimension` is `total`,
/// `result-type`, `receiving-mx`, `sending-ip` or `organization` (failures only, except for
/// `total` and `organization`).
pub fn summary_csv(out: &mut dyn Write, days: &[DaySummary]) -> io::Result<()> {
    writeln!(out, "domain,day,dimension,name,successful,failed")?;
    for d in days {
        let dom = csv_field(&d.domain);
        writeln!(out, "{dom},{},total,,{},{}", d.day, d.successful, d.failed)?;
        for (dim, list) in [
            ("result-type", &d.by_result_type),
            ("receiving-mx", &d.by_receiving_mx),
            ("sending-ip", &d.by_sending_ip),
        ] {
            for c in list {
                writeln!(
                    out,
                    "{dom},{},{dim},{},,{}",
                    d.day,
                    csv_field(&c.name),
                    c.count
                )?;
            }
        }
        for o in &d.by_organization {
            writeln!(
                out,
                "{dom},{},organization,{},{},{}",
                d.day,
                csv_field(&o.organization),
                o.successful,
                o.failed
            )?;
        }
    }
    Ok(())
}

/// `mtasts report readiness` for people.
pub fn readiness_text(out: &mut dyn Write, r: &Readiness) -> io::Result<()> {
    writeln!(out, "{}: {}", escape(&r.domain), escape(&r.summary))?;
    writeln!(
        out,
        "  evidence: {} day{} of testing reports, {} session{}, {} reporting organisation{}",
        r.testing_days,
        if r.testing_days == 1 { "" } else { "s" },
        r.sessions,
        if r.sessions == 1 { "" } else { "s" },
        r.organizations,
        if r.organizations == 1 { "" } else { "s" },
    )?;
    for item in &r.items {
        let tag = match (item.blocking, &item.attribution) {
            (true, _) => "blocker",
            (false, Some(Attribution::PossibleAttack { .. })) => "attack?",
            (false, _) => "note",
        };
        writeln!(out)?;
        writeln!(out, "  {tag}: {} [{}]", escape(&item.message), item.code)?;
        if let Some(a) = &item.attribution {
            let who = match a {
                Attribution::Owner => "your configuration".to_owned(),
                Attribution::Sender { organization } => {
                    format!("one sender ({})", escape(organization))
                }
                Attribution::PossibleAttack { .. } => "a possible attack on the path".to_owned(),
            };
            writeln!(out, "    cause: {who}")?;
        }
        let e = &item.evidence;
        if let Some((a, b)) = e.days {
            writeln!(out, "    days: {a} to {b}")?;
        }
        for (label, list) in [
            ("reports", &e.report_ids),
            ("organisations", &e.organizations),
            ("MX", &e.mx_hosts),
            ("sending IPs", &e.sending_ips),
        ] {
            if !list.is_empty() {
                let items: Vec<String> = list.iter().map(|s| escape(s).into_owned()).collect();
                writeln!(out, "    {label}: {}", items.join(", "))?;
            }
        }
        writeln!(out, "    fix: {}", escape(&item.fix))?;
    }
    Ok(())
}

/// The exit status of `readiness`: 0 READY (or ENFORCED without regression), 1 otherwise.
pub fn readiness_ok(r: &Readiness) -> bool {
    matches!(
        r.status,
        Status::Ready | Status::Enforced { regressed: false }
    )
}

/// `mtasts report quarantine list` for people.
pub fn quarantine_text(out: &mut dyn Write, entries: &[QuarantineEntry]) -> io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "the quarantine is empty");
    }
    for e in entries {
        writeln!(
            out,
            "#{}  {}  {}  {} bytes  {}",
            e.id,
            e.at.format("%Y-%m-%d %H:%M:%SZ"),
            e.via.as_str(),
            e.bytes,
            escape(&e.origin)
        )?;
        writeln!(
            out,
            "    {} [{}]{}",
            escape(&e.reason.message),
            escape(&e.reason.code),
            if e.report.is_some() {
                " (the report is stored, left out of the statistics)"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}
