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

/// The exit status for a set of findings.
pub(crate) fn exit_for(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.severity == Severity::Error) {
        crate::EXIT_FINDINGS
    } else {
        crate::EXIT_OK
    }
}
