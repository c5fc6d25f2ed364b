//! Rendering findings for people and for programs.

pub(crate) use mtasts_core::diag::tally;
use mtasts_core::text::escape;
use mtasts_core::{Finding, Location, Severity};
use std::io::{self, Write};

/// Writes one finding as `<source>:<line>: error: message [code, RFC]` plus a hint line.
pub(crate) fn write_finding(out: &mut dyn Write, source: &str, f: &Finding) -> io::Result<()> {
    let place = match &f.location {
        Location::Line { line } => format!("{source}:{line}"),
        Location::Whole | Location::Record { .. } => source.to_string(),
        other => format!("{source}: {other}"),
    };
    writeln!(
        out,
        "{}: {}: {} [{}, {}]",
        escape(&place),
        f.severity,
        escape(&f.message),
        f.code,
        f.rfc
    )?;
    if !f.hint.is_empty() {
        writeln!(out, "    hint: {}", escape(&f.hint))?;
    }
    Ok(())
}

/// The exit status for a set of findings: 1 with an error, 3 with warnings only, else 0.
pub(crate) fn exit_for(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.severity == Severity::Error) {
        crate::EXIT_FINDINGS
    } else if findings.iter().any(|f| f.severity == Severity::Warning) {
        crate::EXIT_WARNINGS
    } else {
        crate::EXIT_OK
    }
}

/// A DNS server as dig takes it: `ADDRESS` (port 53) or `ADDRESS:PORT`, IPv6 as `::1` or
/// `[::1]:PORT`.
pub(crate) fn dns_server(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an IP address or ADDRESS:PORT (a DNS server, e.g. 127.0.0.1 or 127.0.0.1:5353)"))
}
