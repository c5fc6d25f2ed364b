//! The TXT RRset rule for an owner checking records before publishing them (RFC 8461 §3.1,
//! RFC 8460 §3): every record of the set judged as a sender judges it, with each finding
//! located at its record, and the selection rule applied to each kind. Senders use the
//! selection functions directly ([`crate::sts::record::select_sts_record`],
//! [`crate::tlsrpt::record::select_tlsrpt_record`]); both go through the same code.

use std::fmt;

use crate::diag::{Diagnostic, Finding, Location, Severity};
use crate::rfc::RfcRef;
use crate::sts::record::{self as sts, StsRecord};
use crate::tlsrpt::record::{self as rpt, TlsRptRecord};
use crate::txt;

/// What one record of the set is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LintedRecord {
    /// Begins with `v=STSv1`.
    Sts(Result<StsRecord, sts::RecordError>),
    /// Begins with `v=TLSRPTv1`.
    TlsRpt(Result<TlsRptRecord, rpt::RecordError>),
    /// Neither: senders discard it before counting (§3.1).
    Discarded,
}

/// A record senders discard: worth a warning when it looks like a mistyped version tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discarded {
    /// Its index in the set.
    pub index: usize,
    /// Whether it begins with `v=stsv1` or `v=tlsrptv1` in another case.
    pub wrong_case: bool,
}

impl fmt::Display for Discarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("neither a v=STSv1 nor a v=TLSRPTv1 record: discarded")
    }
}

impl Diagnostic for Discarded {
    fn code(&self) -> &'static str {
        "record.discarded"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn rfc(&self) -> RfcRef {
        RfcRef::sts("3.1")
    }
    fn location(&self) -> Location {
        Location::Record { index: self.index }
    }
    fn hint(&self) -> String {
        if self.wrong_case {
            "the version tag is case-sensitive: \"v=STSv1\" or \"v=TLSRPTv1\"".into()
        } else {
            "senders discard it; remove it if it was meant as an MTA-STS or TLS-RPT record".into()
        }
    }
}

/// Everything learnt from a TXT RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsetLint {
    /// Each record: its joined text and what it is.
    pub records: Vec<(Vec<u8>, LintedRecord)>,
    /// Every finding, with the index of the record it belongs to (`None`: the set as a
    /// whole).
    pub findings: Vec<(Option<usize>, Finding)>,
}

impl RrsetLint {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings
            .iter()
            .any(|(_, f)| f.severity == Severity::Error)
    }
}

/// Judges every record of `rrset` (each a list of character-strings) and the set as a whole.
pub fn lint_rrset<R, S>(rrset: &[R]) -> RrsetLint
where
    R: AsRef<[S]>,
    S: AsRef<[u8]>,
{
    let mut findings = Vec::new();
    let mut records = Vec::new();
    for (i, r) in rrset.iter().enumerate() {
        let text = txt::join_strings(r.as_ref());
        let linted = if sts::is_sts_record(&text) {
            match StsRecord::parse_with_warnings(&text) {
                Ok((rec, warnings)) => {
                    findings.extend(
                        warnings
                            .iter()
                            .map(|w| (Some(i), Finding::from_diagnostic(w))),
                    );
                    LintedRecord::Sts(Ok(rec))
                }
                Err(e) => {
                    findings.push((Some(i), Finding::from_diagnostic(&e)));
                    LintedRecord::Sts(Err(e))
                }
            }
        } else if rpt::is_tlsrpt_record(&text) {
            match TlsRptRecord::parse_with_warnings(&text) {
                Ok((rec, warnings)) => {
                    findings.extend(
                        warnings
                            .iter()
                            .map(|w| (Some(i), Finding::from_diagnostic(w))),
                    );
                    LintedRecord::TlsRpt(Ok(rec))
                }
                Err(e) => {
                    findings.push((Some(i), Finding::from_diagnostic(&e)));
                    LintedRecord::TlsRpt(Err(e))
                }
            }
        } else {
            let lower = String::from_utf8_lossy(&text).to_ascii_lowercase();
            let d = Discarded {
                index: i,
                wrong_case: lower.starts_with("v=stsv1") || lower.starts_with("v=tlsrptv1"),
            };
            findings.push((Some(i), Finding::from_diagnostic(&d)));
            LintedRecord::Discarded
        };
        records.push((text, linted));
    }
    let count = |kind: fn(&LintedRecord) -> bool| records.iter().filter(|(_, r)| kind(r)).count();
    let sts_count = count(|r| matches!(r, LintedRecord::Sts(_)));
    let rpt_count = count(|r| matches!(r, LintedRecord::TlsRpt(_)));
    if sts_count > 1 {
        let e = sts::SelectError::MultipleRecords { count: sts_count };
        findings.push((None, Finding::from_diagnostic(&e)));
    }
    if rpt_count > 1 {
        let e = rpt::SelectError::MultipleRecords { count: rpt_count };
        findings.push((None, Finding::from_diagnostic(&e)));
    }
    if sts_count == 0 && rpt_count == 0 {
        findings.push((None, Finding::from_diagnostic(&sts::SelectError::NoRecord)));
    }
    RrsetLint { records, findings }
}
