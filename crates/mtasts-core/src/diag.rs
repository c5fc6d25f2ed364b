//! The common shape of every problem the core can report.
//!
//! Parsers return narrow, typed errors (for a sending MTA: valid or not). A linter wants every
//! problem with a precise message, a stable code, a location and a fix; every error and
//! warning enum in the core implements [`Diagnostic`] so that front ends can render them all
//! the same way without knowing each enum.

use crate::rfc::RfcRef;
use serde::Serialize;
use std::fmt;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Info,
    /// Accepted by a conforming sender, but a mistake or a risk.
    Warning,
    /// Makes the record, policy or report invalid (or, for coverage, makes mail bounce).
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Where in the input a finding applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Location {
    /// A 1-based line of a text input (the policy file).
    Line {
        /// 1-based line number.
        line: usize,
    },
    /// A field of a TXT record, or of a JSON report (a JSON pointer-like path).
    Field {
        /// The field's name or path, e.g. `id` or `policies[0].summary`.
        field: String,
    },
    /// One record of a TXT RRset (0-based index).
    Record {
        /// 0-based index in the RRset as given.
        index: usize,
    },
    /// The input as a whole.
    Whole,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { line } => write!(f, "line {line}"),
            Location::Field { field } => write!(f, "field {field}"),
            Location::Record { index } => write!(f, "record #{}", index + 1),
            Location::Whole => f.write_str("whole input"),
        }
    }
}

/// Implemented by every error and warning type of the core.
pub trait Diagnostic: fmt::Display {
    /// A stable identifier, e.g. `sts.policy.max-age-too-large`. Never changes once released.
    fn code(&self) -> &'static str;
    /// How bad it is.
    fn severity(&self) -> Severity;
    /// The section of the standard that sets the rule.
    fn rfc(&self) -> RfcRef;
    /// Where it is.
    fn location(&self) -> Location;
    /// How to fix it, in one line.
    fn hint(&self) -> String;
}

/// A diagnostic kind listed in the finding catalogue (`docs/checks.md`), which is generated
/// from these examples so that what is documented is what is emitted.
pub trait Catalogue: Diagnostic + Sized {
    /// One value of each variant, with example data (`example.com`), and one more for each
    /// other severity a variant can take.
    fn examples() -> Vec<Self>;
    /// What the finding means, in one line, independent of the example's data.
    fn meaning(&self) -> &'static str;
    /// When this example's severity applies, where a code's severity depends on the
    /// situation (e.g. "before MTA-STS is published"); `None` when it always applies.
    fn context(&self) -> Option<&'static str> {
        None
    }
}

/// A rendered, self-contained finding: what front ends print and serialise, the same object
/// in every command's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (see [`Diagnostic::code`]).
    pub code: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What the finding is about when the input has several parts (a DNS name, the policy
    /// URL, an MX address); `None` when the input is one file or record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Where in that subject.
    pub location: Location,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// The rule's section.
    pub rfc: RfcRef,
}

impl Finding {
    /// Renders any diagnostic.
    pub fn from_diagnostic(d: &(impl Diagnostic + ?Sized)) -> Self {
        Finding {
            code: d.code(),
            severity: d.severity(),
            subject: None,
            location: d.location(),
            message: d.to_string(),
            hint: d.hint(),
            rfc: d.rfc(),
        }
    }

    /// The same finding, about `subject`.
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} [{}, {}]",
            self.severity, self.location, self.message, self.code, self.rfc
        )
    }
}

/// `2 errors, 1 warning` (and `, 3 info` when there are some).
pub fn tally(findings: &[Finding]) -> String {
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
