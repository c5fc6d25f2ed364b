//! The report filename (RFC 8460 §5.1):
//!
//! ```text
//! filename = sender "!" policy-domain "!" begin-timestamp "!" end-timestamp
//!            [ "!" unique-id ] "." extension
//! unique-id = 1*(ALPHA / DIGIT)
//! sender = domain
//! policy-domain = domain
//! begin-timestamp = 1*DIGIT   ; seconds since 1970-01-01T00:00:00Z
//! end-timestamp = 1*DIGIT
//! extension = "json" / "json.gz"
//! ```
//!
//! for example `mail.sender.example!example.com!1470013207!1470186007!001.json.gz`.
//! [`ReportFilename`] parses and formats it; [`check`] compares it with the report it names
//! (RFC 8460 §5.6: where they disagree, the report body wins).

use crate::diag::{Diagnostic, Location, Severity};
use crate::domain::{DomainError, to_a_label};
use crate::rfc::RfcRef;
use crate::tlsrpt::report::{Report, format_datetime};
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// The filename's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extension {
    /// `.json`: plain JSON.
    Json,
    /// `.json.gz`: gzip-compressed JSON.
    JsonGz,
}

impl Extension {
    /// The extension without the leading dot.
    pub fn as_str(self) -> &'static str {
        match self {
            Extension::Json => "json",
            Extension::JsonGz => "json.gz",
        }
    }

    /// Whether the extension says the content is gzip-compressed.
    pub fn is_gzip(self) -> bool {
        self == Extension::JsonGz
    }
}

/// A report filename, parsed (RFC 8460 §5.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportFilename {
    /// The sending MTA's domain, as written.
    pub sender: String,
    /// The policy domain, as written.
    pub policy_domain: String,
    /// Start of the report's time range, in seconds since the Unix epoch.
    pub begin: u64,
    /// End of the report's time range, in seconds since the Unix epoch.
    pub end: u64,
    /// The optional unique ID.
    pub unique_id: Option<String>,
    /// The extension.
    pub extension: Extension,
}

/// Why a string is not a §5.1 report filename.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilenameError {
    /// The name does not end in `.json` or `.json.gz`.
    #[error("{name:?} does not end in .json or .json.gz")]
    BadExtension {
        /// The name (shortened).
        name: String,
    },
    /// Not 4 or 5 `!`-separated fields before the extension.
    #[error("expected 4 or 5 fields separated by \"!\" before the extension, found {count}")]
    FieldCount {
        /// How many there are.
        count: usize,
    },
    /// The sender is not a domain name.
    #[error("sender {value:?} is not a domain name: {reason}")]
    InvalidSender {
        /// The field.
        value: String,
        /// Why.
        reason: DomainError,
    },
    /// The policy domain is not a domain name.
    #[error("policy-domain {value:?} is not a domain name: {reason}")]
    InvalidPolicyDomain {
        /// The field.
        value: String,
        /// Why.
        reason: DomainError,
    },
    /// A timestamp that is not 1*DIGIT or does not fit in 64 bits.
    #[error("{which} {value:?} is not a number of seconds")]
    InvalidTimestamp {
        /// `begin-timestamp` or `end-timestamp`.
        which: &'static str,
        /// The field.
        value: String,
    },
    /// The end timestamp is before the begin timestamp.
    #[error("end-timestamp {end} is before begin-timestamp {begin}")]
    EndBeforeBegin {
        /// Begin.
        begin: u64,
        /// End.
        end: u64,
    },
    /// A unique ID that is empty or not letters and digits.
    #[error("unique-id {value:?} is not letters and digits")]
    InvalidUniqueId {
        /// The field.
        value: String,
    },
}

impl Diagnostic for FilenameError {
    fn code(&self) -> &'static str {
        match self {
            FilenameError::BadExtension { .. } => "tlsrpt.filename.bad-extension",
            FilenameError::FieldCount { .. } => "tlsrpt.filename.field-count",
            FilenameError::InvalidSender { .. } => "tlsrpt.filename.invalid-sender",
            FilenameError::InvalidPolicyDomain { .. } => "tlsrpt.filename.invalid-policy-domain",
            FilenameError::InvalidTimestamp { .. } => "tlsrpt.filename.invalid-timestamp",
            FilenameError::EndBeforeBegin { .. } => "tlsrpt.filename.end-before-begin",
            FilenameError::InvalidUniqueId { .. } => "tlsrpt.filename.invalid-unique-id",
        }
    }

    fn severity(&self) -> Severity {
        Severity::Error
    }

    fn rfc(&self) -> RfcRef {
        RfcRef::tlsrpt("5.1")
    }

    fn location(&self) -> Location {
        let part = match self {
            FilenameError::BadExtension { .. } => "extension",
            FilenameError::FieldCount { .. } => "",
            FilenameError::InvalidSender { .. } => "sender",
            FilenameError::InvalidPolicyDomain { .. } => "policy-domain",
            FilenameError::InvalidTimestamp { which, .. } => which,
            FilenameError::EndBeforeBegin { .. } => "end-timestamp",
            FilenameError::InvalidUniqueId { .. } => "unique-id",
        };
        Location::Field {
            field: if part.is_empty() {
                "filename".into()
            } else {
                format!("filename.{part}")
            },
        }
    }

    fn hint(&self) -> String {
        "report filenames look like sender!policy-domain!begin!end[!unique-id].json[.gz], e.g. google.com!example.com!1725321600!1725407999!001.json.gz".into()
    }
}

fn is_unique_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn timestamp(which: &'static str, s: &str) -> Result<u64, FilenameError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FilenameError::InvalidTimestamp {
            which,
            value: s.to_string(),
        });
    }
    s.parse().map_err(|_| FilenameError::InvalidTimestamp {
        which,
        value: s.to_string(),
    })
}

/// Splits `suffix` off the end of `s`, comparing ASCII case-insensitively.
fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let (head, tail) = (s.get(..cut)?, s.get(cut..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

impl ReportFilename {
    /// Parses a filename (without any directory part). The extension is matched without regard
    /// to case; nothing else is normalised.
    pub fn parse(name: &str) -> Result<Self, FilenameError> {
        let (stem, extension) = if let Some(stem) = strip_suffix_ci(name, ".json.gz") {
            (stem, Extension::JsonGz)
        } else if let Some(stem) = strip_suffix_ci(name, ".json") {
            (stem, Extension::Json)
        } else {
            let short: String = name.chars().take(80).collect();
            return Err(FilenameError::BadExtension { name: short });
        };
        let fields: Vec<&str> = stem.split('!').collect();
        let (sender, policy_domain, begin, end, unique_id) = match fields.as_slice() {
            [s, p, b, e] => (*s, *p, *b, *e, None),
            [s, p, b, e, u] => (*s, *p, *b, *e, Some(*u)),
            other => return Err(FilenameError::FieldCount { count: other.len() }),
        };
        let f = ReportFilename {
            sender: sender.to_string(),
            policy_domain: policy_domain.to_string(),
            begin: timestamp("begin-timestamp", begin)?,
            end: timestamp("end-timestamp", end)?,
            unique_id: unique_id.map(str::to_string),
            extension,
        };
        f.validate()?;
        Ok(f)
    }

    /// Checks the fields against §5.1 (what [`ReportFilename::parse`] checks, for a value built
    /// by hand before it is formatted).
    pub fn validate(&self) -> Result<(), FilenameError> {
        if self.sender.contains('!') {
            return Err(FilenameError::InvalidSender {
                value: self.sender.clone(),
                reason: DomainError::InvalidChar { ch: '!' },
            });
        }
        to_a_label(&self.sender).map_err(|reason| FilenameError::InvalidSender {
            value: self.sender.clone(),
            reason,
        })?;
        if self.policy_domain.contains('!') {
            return Err(FilenameError::InvalidPolicyDomain {
                value: self.policy_domain.clone(),
                reason: DomainError::InvalidChar { ch: '!' },
            });
        }
        to_a_label(&self.policy_domain).map_err(|reason| FilenameError::InvalidPolicyDomain {
            value: self.policy_domain.clone(),
            reason,
        })?;
        if self.end < self.begin {
            return Err(FilenameError::EndBeforeBegin {
                begin: self.begin,
                end: self.end,
            });
        }
        if let Some(id) = &self.unique_id
            && !is_unique_id(id)
        {
            return Err(FilenameError::InvalidUniqueId { value: id.clone() });
        }
        Ok(())
    }

    /// The start of the time range, if it is a representable instant.
    pub fn begin_time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(i64::try_from(self.begin).ok()?, 0)
    }

    /// The end of the time range, if it is a representable instant.
    pub fn end_time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(i64::try_from(self.end).ok()?, 0)
    }
}

impl fmt::Display for ReportFilename {
    /// Formats the name as §5.1 writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}!{}!{}!{}",
            self.sender, self.policy_domain, self.begin, self.end
        )?;
        if let Some(id) = &self.unique_id {
            write!(f, "!{id}")?;
        }
        write!(f, ".{}", self.extension.as_str())
    }
}

impl FromStr for ReportFilename {
    type Err = FilenameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A way in which a filename disagrees with the report it carries (RFC 8460 §5.6: the body
/// wins; these are warnings about the metadata).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilenameMismatch {
    /// The filename's policy domain is not a policy domain of the report.
    #[error("filename names policy domain {filename:?}, the report {body:?}")]
    PolicyDomain {
        /// The filename's.
        filename: String,
        /// The report's (the first one).
        body: String,
    },
    /// The filename's begin-timestamp is not the report's start-datetime.
    #[error("filename begins at {filename} ({filename_time}), the report at {body}")]
    Begin {
        /// The filename's timestamp.
        filename: u64,
        /// It, as a datetime (or `out of range`).
        filename_time: String,
        /// The report's start-datetime.
        body: String,
    },
    /// The filename's end-timestamp is not the report's end-datetime (one second of difference
    /// is allowed: `23:59:59` and the next day's `00:00:00` both close a day).
    #[error("filename ends at {filename} ({filename_time}), the report at {body}")]
    End {
        /// The filename's timestamp.
        filename: u64,
        /// It, as a datetime (or `out of range`).
        filename_time: String,
        /// The report's end-datetime.
        body: String,
    },
}

impl Diagnostic for FilenameMismatch {
    fn code(&self) -> &'static str {
        match self {
            FilenameMismatch::PolicyDomain { .. } => "tlsrpt.filename.policy-domain-mismatch",
            FilenameMismatch::Begin { .. } => "tlsrpt.filename.begin-mismatch",
            FilenameMismatch::End { .. } => "tlsrpt.filename.end-mismatch",
        }
    }

    fn severity(&self) -> Severity {
        Severity::Warning
    }

    fn rfc(&self) -> RfcRef {
        RfcRef::tlsrpt("5.6")
    }

    fn location(&self) -> Location {
        let part = match self {
            FilenameMismatch::PolicyDomain { .. } => "policy-domain",
            FilenameMismatch::Begin { .. } => "begin-timestamp",
            FilenameMismatch::End { .. } => "end-timestamp",
        };
        Location::Field {
            field: format!("filename.{part}"),
        }
    }

    fn hint(&self) -> String {
        "the report body wins (RFC 8460 §5.6); file the report by its content, not its name".into()
    }
}

/// Compares a domain as the standards do: A-labels, without case, without a trailing dot.
pub(crate) fn same_domain(a: &str, b: &str) -> bool {
    match (to_a_label(a), to_a_label(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a
            .trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.')),
    }
}

fn describe(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "out of range".to_string(), |t| format_datetime(&t))
}

/// Compares a filename with the report it carries: the policy domain (it must be one of the
/// report's), the begin timestamp (equal to `start-datetime`) and the end timestamp (equal to
/// `end-datetime`, give or take one second). Fields the report lacks are not compared.
pub fn check(filename: &ReportFilename, report: &Report) -> Vec<FilenameMismatch> {
    let mut out = Vec::new();
    let domains = report.policy_domains();
    if let Some(first) = domains.first()
        && !domains
            .iter()
            .any(|d| same_domain(d, &filename.policy_domain))
    {
        out.push(FilenameMismatch::PolicyDomain {
            filename: filename.policy_domain.clone(),
            body: (*first).to_string(),
        });
    }
    let range = report.date_range.as_ref();
    if let Some(start) = range.and_then(|r| r.start)
        && i128::from(start.timestamp()) != i128::from(filename.begin)
    {
        out.push(FilenameMismatch::Begin {
            filename: filename.begin,
            filename_time: describe(filename.begin_time()),
            body: format_datetime(&start),
        });
    }
    if let Some(end) = range.and_then(|r| r.end)
        && (i128::from(end.timestamp()) - i128::from(filename.end)).abs() > 1
    {
        out.push(FilenameMismatch::End {
            filename: filename.end,
            filename_time: describe(filename.end_time()),
            body: format_datetime(&end),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_parses_and_formats() {
        let name = "mail.sender.example!example.com!1470013207!1470186007!001.json.gz";
        let f = ReportFilename::parse(name);
        assert_eq!(
            f,
            Ok(ReportFilename {
                sender: "mail.sender.example".into(),
                policy_domain: "example.com".into(),
                begin: 1470013207,
                end: 1470186007,
                unique_id: Some("001".into()),
                extension: Extension::JsonGz,
            })
        );
        assert_eq!(f.map(|f| f.to_string()).as_deref(), Ok(name));
    }

    #[test]
    fn rejections() {
        assert!(matches!(
            ReportFilename::parse("a.example!b.example!1!2.xml"),
            Err(FilenameError::BadExtension { .. })
        ));
        assert_eq!(
            ReportFilename::parse("a.example!b.example!1.json"),
            Err(FilenameError::FieldCount { count: 3 })
        );
        assert_eq!(
            ReportFilename::parse("a.example!b.example!2!1.json"),
            Err(FilenameError::EndBeforeBegin { begin: 2, end: 1 })
        );
        assert!(matches!(
            ReportFilename::parse("a.example!b.example!1!2!x-y.json"),
            Err(FilenameError::InvalidUniqueId { .. })
        ));
    }
}
