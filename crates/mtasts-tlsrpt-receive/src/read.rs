//! Reading one input: a file (or standard input) read to at most the limit plus one byte, so
//! an oversize input is reported as such, then parsed by the core whatever its form (JSON,
//! gzip, an e-mail).

use std::io::{self, Read};
use std::path::Path;

use mtasts_core::Finding;
use mtasts_core::tlsrpt::payload::{self, ReceivedReport};
use mtasts_core::tlsrpt::report::ReportLimits;

/// What became of one input.
#[derive(Debug)]
pub enum Outcome {
    /// Read and parsed (possibly with error-level findings).
    Parsed(Box<ReceivedReport>),
    /// Read, but not a report.
    NotAReport(Finding),
    /// Not readable.
    Io(String),
}

/// How an input is named in messages: its path, or `<stdin>` for `-`.
pub fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads at most `limit + 1` bytes, so that an oversize input is reported as such.
pub fn read_input(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
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

/// Reads and parses one input; a file named as RFC 8460 §5.1 names reports is also checked
/// against the report's content.
pub fn process(path: &Path, limits: &ReportLimits) -> Outcome {
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
