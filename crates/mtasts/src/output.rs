//! Rendering findings for people and for programs.

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
        "{place}: {}: {} [{}, {}]",
        f.severity, f.message, f.code, f.rfc
    )?;
    if !f.hint.is_empty() {
        writeln!(out, "    hint: {}", f.hint)?;
    }
    Ok(())
}

/// `2 errors, 1 warning`.
pub(crate) fn tally(findings: &[Finding]) -> String {
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let mut parts = vec![
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
    ];
    let infos = count(Severity::Info);
    if infos > 0 {
        parts.push(format!("{infos} info"));
    }
    parts.join(", ")
}

/// The exit status for a set of findings.
pub(crate) fn exit_for(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.severity == Severity::Error) {
        crate::EXIT_FINDINGS
    } else {
        crate::EXIT_OK
    }
}
