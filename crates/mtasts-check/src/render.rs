//! Rendering check reports for people, as a library (ripgrep's `printer` is the model): the
//! report of one domain, the short block of the demo, and the adoption table of a bulk run.
//!
//! Everything that came from outside (DNS records, SMTP replies, certificate names, HTTP
//! headers) is printed through [`escape`], so a hostile record or banner cannot move the
//! cursor, clear the screen or forge a line. JSON output is not rendered here and stays exact.

use std::io::{self, Write};

use mtasts_core::Severity;
use mtasts_core::text::escape;

use crate::assess::{DomainReport, SenderOutcome};
use crate::bulk::Summary;
use crate::obs::{AddressLookup, CertVerdict};

/// Colours, only on a terminal and without `NO_COLOR`.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    on: bool,
}

impl Style {
    /// Colours when writing to a terminal and `NO_COLOR` is unset or empty.
    pub fn detect(is_tty: bool) -> Style {
        Style {
            on: is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// No colours.
    pub fn plain() -> Style {
        Style { on: false }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn severity(self, s: Severity) -> String {
        let text = format!("{:<7}", s.to_string());
        match s {
            Severity::Error => self.paint("31", &text),
            Severity::Warning => self.paint("33", &text),
            Severity::Info => self.paint("2", &text),
        }
    }

    /// Bold text.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// The verdict in words.
pub fn outcome_word(o: SenderOutcome) -> &'static str {
    match o {
        SenderOutcome::DeliverSecurely => "deliver securely",
        SenderOutcome::DeliverAndReport => "deliver and report",
        SenderOutcome::Defer => "refuse delivery (defer)",
        SenderOutcome::NoPolicy => "no policy (opportunistic TLS)",
        SenderOutcome::Bounce => "bounce",
    }
}

fn fmt_date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

fn verdict_text(v: &CertVerdict) -> String {
    match v {
        CertVerdict::Valid => "valid".into(),
        CertVerdict::Expired { not_after } => format!("expired {}", fmt_date(*not_after)),
        CertVerdict::NotYetValid { not_before } => {
            format!("not valid before {}", fmt_date(*not_before))
        }
        CertVerdict::NameMismatch { presented, .. } => {
            format!("for {}", presented.join(", "))
        }
        CertVerdict::SelfSigned => "self-signed".into(),
        CertVerdict::UntrustedCa { .. } => "from an untrusted CA".into(),
        CertVerdict::ChainIncomplete { .. } => "chain incomplete".into(),
        CertVerdict::Invalid { reason } => format!("invalid ({reason})"),
    }
}

/// The full human report of one domain.
pub fn write_report(
    out: &mut dyn Write,
    r: &DomainReport,
    style: Style,
    now: i64,
) -> io::Result<()> {
    writeln!(
        out,
        "{}  {}",
        style.bold(&escape(&r.domain)),
        style.bold(outcome_word(r.verdict.outcome))
    )?;
    writeln!(out, "  verdict  {}", escape(&r.verdict.summary))?;
    if let Some(p) = &r.policy {
        writeln!(
            out,
            "  policy   mode {}, max_age {}, mx {} (id {})",
            p.mode,
            p.max_age,
            escape(&p.mx.join(" ")),
            escape(&p.id)
        )?;
    }
    if let Some(d) = &r.dane
        && !matches!(
            d.decision,
            mtasts_core::dane::Decision::NotApplicable { .. }
        )
    {
        writeln!(out, "  dane     {}", escape(&d.summary))?;
    }
    for h in &r.observations.mx_hosts {
        match &h.addresses {
            AddressLookup::Found { .. } => {}
            _ => writeln!(
                out,
                "  MX {:>3} {}  (no address)",
                h.preference,
                escape(&h.name)
            )?,
        }
        for p in &h.smtp {
            let tls = match &p.tls {
                Some(t) => {
                    let leaf = t.chain.first();
                    let cert = match &t.verdict {
                        CertVerdict::Valid => format!(
                            "certificate valid until {} ({} days) for {}",
                            leaf.map_or_else(String::new, |l| fmt_date(l.not_after)),
                            leaf.map_or(0, |l| (l.not_after - now) / 86_400),
                            leaf.map_or_else(String::new, |l| l.names.join(", "))
                        ),
                        other => format!("certificate {}", verdict_text(other)),
                    };
                    format!("{} {}, {cert}", t.version, t.cipher)
                }
                None if p.starttls_offered == Some(false) => "no STARTTLS".to_owned(),
                None => match &p.failure {
                    Some(f) => f.reason.clone(),
                    None => "no TLS".to_owned(),
                },
            };
            writeln!(
                out,
                "  MX {:>3} {} [{}]  {}",
                h.preference,
                escape(&h.name),
                p.address,
                escape(&tls)
            )?;
        }
    }
    if r.findings.is_empty() {
        writeln!(out, "  findings none")?;
    }
    for f in &r.findings {
        writeln!(
            out,
            "  {} {}  {}",
            style.severity(f.severity),
            f.code,
            escape(f.subject.as_deref().unwrap_or(""))
        )?;
        writeln!(out, "          {}", escape(&f.message))?;
        if f.severity > Severity::Info && !f.hint.is_empty() {
            writeln!(out, "          fix: {} [{}]", escape(&f.hint), f.rfc)?;
        }
    }
    writeln!(out, "  next     {}", escape(&r.verdict.next_step))?;
    writeln!(out)
}

/// The demo's block for one domain: the verdict, the scenario's comment, and the findings at
/// warning level or worse.
pub fn write_short(
    out: &mut dyn Write,
    r: &DomainReport,
    comment: &str,
    style: Style,
) -> io::Result<()> {
    writeln!(
        out,
        "{}  {}\n  {}\n  verdict  {}",
        style.bold(&escape(&r.domain)),
        r.verdict.outcome.as_str(),
        escape(comment),
        escape(&r.verdict.summary)
    )?;
    for f in r.findings.iter().filter(|f| f.severity > Severity::Info) {
        writeln!(
            out,
            "  {:<7}  {}  {}",
            f.severity.to_string(),
            f.code,
            escape(&f.message)
        )?;
    }
    writeln!(out)
}

/// The adoption and misconfiguration table (the categories of published MTA-STS studies).
pub fn write_table(out: &mut dyn Write, s: &Summary) -> io::Result<()> {
    let n = s.domains.max(1);
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    writeln!(
        out,
        "{} domain{} checked",
        s.domains,
        if s.domains == 1 { "" } else { "s" }
    )?;
    if s.invalid_input > 0 {
        writeln!(
            out,
            "{} input line{} not a domain name",
            s.invalid_input,
            if s.invalid_input == 1 {
                " was"
            } else {
                "s were"
            }
        )?;
    }
    if let Some(e) = &s.input_error {
        writeln!(out, "the input ended early: {}", escape(e))?;
    }
    writeln!(
        out,
        "\n  {:<28} {:>8} {:>7}",
        "category", "domains", "share"
    )?;
    let rows: &[(&str, &str)] = &[
        ("enforce", "mode enforce"),
        ("testing", "mode testing"),
        ("none", "mode none"),
        ("no-policy", "no usable policy"),
        ("no-record", "  no MTA-STS record"),
        ("dns-failure", "  record lookup failed"),
        ("invalid-record", "  invalid record"),
        ("fetch-failure", "  policy fetch failure"),
        ("invalid-policy", "  invalid policy"),
        ("mx-not-covered", "MX not covered by policy"),
        ("certificate-problem", "MX certificate problem"),
        ("starttls-problem", "MX STARTTLS problem"),
        ("no-tlsrpt", "no valid TLS-RPT record"),
    ];
    for (key, label) in rows {
        let k = s.categories.get(key).copied().unwrap_or(0);
        writeln!(out, "  {label:<28} {k:>8} {:>6.1}%", pct(k))?;
    }
    writeln!(
        out,
        "\n  {:<28} {:>8} {:>7}",
        "a sender would", "domains", "share"
    )?;
    for o in SenderOutcome::ALL {
        let k = s.outcomes.get(o.as_str()).copied().unwrap_or(0);
        writeln!(out, "  {:<28} {k:>8} {:>6.1}%", o.as_str(), pct(k))?;
    }
    Ok(())
}
