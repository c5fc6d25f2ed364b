//! The MTA-STS policy file (RFC 8461 §3.2).
//!
//! ```text
//! sts-policy-record  = sts-policy-field *WSP *(sts-policy-term sts-policy-field *WSP)
//!                      [sts-policy-term]
//! sts-policy-term    = LF / CRLF
//! field-delim        = ":" *WSP
//! sts-policy-version = %s"version" field-delim %s"STSv1"
//! sts-policy-mode    = %s"mode" field-delim (%s"testing" / %s"enforce" / %s"none")
//! sts-policy-max-age = %s"max_age" field-delim 1*10DIGIT     ; at most 31557600
//! sts-policy-mx      = %s"mx" field-delim ["*."] Domain
//! sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! ```
//!
//! Two entry points: [`Policy::parse`] for a sending MTA (valid or not, first error), and
//! [`lint_policy`] for an operator (every error and warning, with line numbers and fixes).
//!
//! <https://www.rfc-editor.org/rfc/rfc8461#section-3.2>

use crate::diag::{Diagnostic, Finding, Location, Severity};
use crate::domain::{self, DomainError};
use crate::rfc::RfcRef;
use crate::sts::mx::{MxPattern, MxPatternError};
use crate::text::excerpt;
use crate::txt;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The largest `max_age` allowed: one year of 365.25 days, in seconds (§3.2).
pub const MAX_MAX_AGE: u32 = 31_557_600;
/// The most digits `max_age` may have (`1*10DIGIT`).
pub const MAX_AGE_DIGITS: usize = 10;
/// Below this `max_age` (one day) a policy protects little between fetches; the linter warns.
pub const SHORT_MAX_AGE: u32 = 86_400;
/// The only policy version (§3.2).
pub const POLICY_VERSION: &str = "STSv1";

const S3_2: RfcRef = RfcRef::sts("3.2");
/// The most characters of input a message quotes.
const QUOTE: usize = 80;

/// The policy mode (§5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse delivery to MX hosts that fail validation.
    Enforce,
    /// Deliver, but report failures (TLS-RPT).
    Testing,
    /// As if no policy were published.
    None,
}

impl Mode {
    /// The value as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }

    fn parse(value: &str) -> Option<Mode> {
        match value {
            "enforce" => Some(Mode::Enforce),
            "testing" => Some(Mode::Testing),
            "none" => Some(Mode::None),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The mode.
    pub mode: Mode,
    /// How long, in seconds, a sender may cache the policy (≤ [`MAX_MAX_AGE`]).
    pub max_age: u32,
    /// The allowed MX patterns, in order, without duplicates. Empty only in mode `none`.
    pub mx: Vec<MxPattern>,
    /// Unknown keys and their first values, in order (ignored by senders).
    pub extensions: Vec<(String, String)>,
}

impl Policy {
    /// Parses a policy as a sending MTA must: the first error makes it invalid.
    pub fn parse(text: &[u8]) -> Result<Policy, PolicyError> {
        let mut lint = lint_policy(text);
        match lint.policy.take() {
            Some(p) => Ok(p),
            None => Err(lint
                .errors
                .into_iter()
                .next()
                .unwrap_or(PolicyError::MissingVersion)),
        }
    }

    /// The first pattern that allows `host` (§4.1), if any.
    pub fn matching_pattern(&self, host: &str) -> Option<&MxPattern> {
        crate::sts::mx::find_match(&self.mx, host)
    }

    /// Whether `host` is allowed by the policy's patterns (§4.1).
    pub fn allows_mx(&self, host: &str) -> bool {
        self.matching_pattern(host).is_some()
    }

    /// The canonical text: CRLF-terminated lines, version first, then mode, mx, max_age and
    /// extensions. [`Policy::parse`] of the result gives back an equal policy.
    pub fn to_text(&self) -> String {
        let mut s = format!("version: {POLICY_VERSION}\r\nmode: {}\r\n", self.mode);
        for p in &self.mx {
            s.push_str(&format!("mx: {p}\r\n"));
        }
        s.push_str(&format!("max_age: {}\r\n", self.max_age));
        for (k, v) in &self.extensions {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s
    }
}

/// What is wrong with `max_age`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxAgeProblem {
    /// Not a plain run of decimal digits (signs, spaces, units...).
    NotDigits,
    /// More than 10 digits.
    TooManyDigits,
    /// Larger than 31557600.
    TooLarge,
}

/// Something that makes a policy invalid. Every variant says where.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The line is not valid UTF-8.
    NotUtf8 {
        /// 1-based line.
        line: usize,
    },
    /// The line has no `:`.
    MissingColon {
        /// 1-based line.
        line: usize,
        /// The line's text.
        text: String,
    },
    /// The key has whitespace before it or before the colon.
    WhitespaceAroundKey {
        /// 1-based line.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// The key is not `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
    InvalidKey {
        /// 1-based line.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// A value with control characters (other than the line ending).
    ControlCharacter {
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
    },
    /// `version` is not `STSv1`.
    InvalidVersion {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
    },
    /// `mode` is not `enforce`, `testing` or `none` (case-sensitive).
    InvalidMode {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
    },
    /// `max_age` is not 1 to 10 digits, or is over 31557600.
    InvalidMaxAge {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
        /// Which rule it breaks.
        problem: MaxAgeProblem,
    },
    /// An `mx` value is not `["*."] Domain`.
    InvalidMx {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
        /// What is wrong.
        error: MxPatternError,
    },
    /// No `version` line.
    MissingVersion,
    /// No `mode` line.
    MissingMode,
    /// No `max_age` line.
    MissingMaxAge,
    /// No `mx` line although the mode is not `none`.
    MissingMx {
        /// The mode.
        mode: Mode,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quoted input is cut: a hostile or broken file can hold a 16 MiB line.
        let q = |s: &str| excerpt(s, QUOTE).into_owned();
        match self {
            PolicyError::NotUtf8 { .. } => f.write_str("the line is not valid UTF-8"),
            PolicyError::MissingColon { text, .. } => {
                write!(f, "\"{}\" is not a \"key: value\" line", q(text))
            }
            PolicyError::WhitespaceAroundKey { key, .. } => {
                write!(f, "key \"{}\" has whitespace around it", q(key))
            }
            PolicyError::InvalidKey { key, .. } => {
                write!(f, "\"{}\" is not a valid key", q(key))
            }
            PolicyError::ControlCharacter { key, .. } => {
                write!(
                    f,
                    "the value of \"{}\" contains a control character",
                    q(key)
                )
            }
            PolicyError::InvalidVersion { value, .. } => {
                write!(f, "version \"{}\" is not \"STSv1\"", q(value))
            }
            PolicyError::InvalidMode { value, .. } => write!(
                f,
                "mode \"{}\" is not one of \"enforce\", \"testing\", \"none\"",
                q(value)
            ),
            PolicyError::InvalidMaxAge { value, problem, .. } => match problem {
                MaxAgeProblem::NotDigits => {
                    write!(
                        f,
                        "max_age \"{}\" is not a whole number of seconds",
                        q(value)
                    )
                }
                MaxAgeProblem::TooManyDigits => {
                    write!(f, "max_age \"{}\" has more than 10 digits", q(value))
                }
                MaxAgeProblem::TooLarge => {
                    write!(f, "max_age {} is more than 31557600 (one year)", q(value))
                }
            },
            PolicyError::InvalidMx { value, error, .. } => {
                write!(f, "mx \"{}\" is not a valid pattern: {error}", q(value))
            }
            PolicyError::MissingVersion => f.write_str("the policy has no \"version\" line"),
            PolicyError::MissingMode => f.write_str("the policy has no \"mode\" line"),
            PolicyError::MissingMaxAge => f.write_str("the policy has no \"max_age\" line"),
            PolicyError::MissingMx { mode } => {
                write!(f, "the policy has no \"mx\" line, required in mode {mode}")
            }
        }
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    /// The 1-based line, where the error belongs to one.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::NotUtf8 { line }
            | PolicyError::MissingColon { line, .. }
            | PolicyError::WhitespaceAroundKey { line, .. }
            | PolicyError::InvalidKey { line, .. }
            | PolicyError::ControlCharacter { line, .. }
            | PolicyError::InvalidVersion { line, .. }
            | PolicyError::InvalidMode { line, .. }
            | PolicyError::InvalidMaxAge { line, .. }
            | PolicyError::InvalidMx { line, .. } => Some(*line),
            PolicyError::MissingVersion
            | PolicyError::MissingMode
            | PolicyError::MissingMaxAge
            | PolicyError::MissingMx { .. } => None,
        }
    }
}

fn line_or_whole(line: Option<usize>) -> Location {
    match line {
        Some(line) => Location::Line { line },
        None => Location::Whole,
    }
}

impl Diagnostic for PolicyError {
    fn code(&self) -> &'static str {
        match self {
            PolicyError::NotUtf8 { .. } => "sts.policy.not-utf8",
            PolicyError::MissingColon { .. } => "sts.policy.missing-colon",
            PolicyError::WhitespaceAroundKey { .. } => "sts.policy.whitespace-around-key",
            PolicyError::InvalidKey { .. } => "sts.policy.invalid-key",
            PolicyError::ControlCharacter { .. } => "sts.policy.control-character",
            PolicyError::InvalidVersion { .. } => "sts.policy.invalid-version",
            PolicyError::InvalidMode { .. } => "sts.policy.invalid-mode",
            PolicyError::InvalidMaxAge {
                problem: MaxAgeProblem::TooLarge,
                ..
            } => "sts.policy.max-age-too-large",
            PolicyError::InvalidMaxAge { .. } => "sts.policy.invalid-max-age",
            PolicyError::InvalidMx { .. } => "sts.policy.invalid-mx",
            PolicyError::MissingVersion => "sts.policy.missing-version",
            PolicyError::MissingMode => "sts.policy.missing-mode",
            PolicyError::MissingMaxAge => "sts.policy.missing-max-age",
            PolicyError::MissingMx { .. } => "sts.policy.missing-mx",
        }
    }
    fn severity(&self) -> Severity {
        Severity::Error
    }
    fn rfc(&self) -> RfcRef {
        S3_2
    }
    fn location(&self) -> Location {
        line_or_whole(self.line())
    }
    fn hint(&self) -> String {
        match self {
            PolicyError::NotUtf8 { .. } => "save the file as UTF-8 (plain ASCII is best)".into(),
            PolicyError::MissingColon { .. } => {
                "every line is \"key: value\"; remove stray text or comments (the format has none)".into()
            }
            PolicyError::WhitespaceAroundKey { key, .. } => {
                format!("write \"{}: value\" starting at the first column, with no space before the colon", key.trim())
            }
            PolicyError::InvalidKey { .. } => {
                "keys are letters, digits, \"_\", \"-\", \".\" (version, mode, mx, max_age)".into()
            }
            PolicyError::ControlCharacter { .. } => {
                "remove tabs and other control characters inside the value".into()
            }
            PolicyError::InvalidVersion { .. } => "write \"version: STSv1\" (case-sensitive)".into(),
            PolicyError::InvalidMode { value, .. } => {
                let lower = value.to_ascii_lowercase();
                if Mode::parse(&lower).is_some() {
                    format!("values are case-sensitive: write \"mode: {lower}\"")
                } else {
                    "write \"mode: testing\" while rolling out, \"mode: enforce\" once reports are clean".into()
                }
            }
            PolicyError::InvalidMaxAge { problem, .. } => match problem {
                MaxAgeProblem::TooLarge => {
                    "use at most 31557600; 604800 (a week) to 1209600 is common in steady state".into()
                }
                _ => "write the number of seconds only, e.g. \"max_age: 604800\"".into(),
            },
            PolicyError::InvalidMx { error, .. } => match error {
                MxPatternError::Domain(DomainError::IpLiteral) => {
                    "mx takes host names as in your MX records, never IP addresses".into()
                }
                MxPatternError::MisplacedWildcard | MxPatternError::BareWildcard => {
                    "a wildcard covers one label only: \"*.example.com\"; list deeper hosts separately".into()
                }
                _ => "write the MX host name as in your MX record, e.g. \"mx: mx1.example.com\"".into(),
            },
            PolicyError::MissingVersion => "add \"version: STSv1\" as the first line".into(),
            PolicyError::MissingMode => "add \"mode: testing\" (or enforce, or none)".into(),
            PolicyError::MissingMaxAge => "add \"max_age: 86400\" while testing, a week or more once enforced".into(),
            PolicyError::MissingMx { .. } => {
                "add one \"mx:\" line per MX host (or \"*.\" pattern) your MX records name".into()
            }
        }
    }
}

/// Writes `what`, then the deployed senders that reject it (from [`crate::interop`]).
fn interop(f: &mut fmt::Formatter<'_>, what: &str, case: &str) -> fmt::Result {
    match crate::interop::rejected_by_text(case) {
        Some(who) => write!(
            f,
            "{what}; {who} the whole policy, so those senders apply no MTA-STS (docs/interop.md)"
        ),
        None => f.write_str(what),
    }
}

/// Something this parser accepts (a sending MTA may be lenient) but an operator should know
/// about: a risk or a mistake (warnings), or something some deployed senders reject (errors,
/// see [`Diagnostic::severity`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyWarning {
    /// An empty line (the ABNF has none; senders skip it).
    BlankLine {
        /// 1-based line.
        line: usize,
    },
    /// A key that is not version/mode/max_age/mx: ignored by senders.
    UnknownKey {
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
        /// The known key it is probably a typo of.
        suggestion: Option<&'static str>,
    },
    /// A second `version`, `mode` or `max_age`: only the first counts.
    DuplicateKey {
        /// 1-based line of the ignored occurrence.
        line: usize,
        /// The key.
        key: String,
        /// 1-based line of the one that counts.
        first_line: usize,
    },
    /// The same mx pattern twice.
    DuplicateMx {
        /// 1-based line of the repeat.
        line: usize,
        /// The pattern.
        pattern: String,
        /// 1-based line of the first.
        first_line: usize,
    },
    /// An mx value ending in `.`; accepted as if the dot were not there.
    MxTrailingDot {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
    },
    /// An mx value in U-labels; senders compare A-labels, so it was converted.
    MxNotALabel {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
        /// The A-label form.
        a_label: String,
    },
    /// `*.tld`: allows any host under a whole top-level domain.
    MxWildcardTooBroad {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
    },
    /// An extension key with an empty value (`comment:`): the ABNF requires at least one
    /// character (`sts-policy-ext-value = 1*(...)`).
    EmptyExtensionValue {
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
    },
    /// `max_age` under a day in mode testing or enforce.
    ShortMaxAge {
        /// 1-based line.
        line: usize,
        /// The value.
        max_age: u32,
    },
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyWarning::BlankLine { .. } => interop(
                f,
                "a blank line: the policy format has none (RFC 8461 §3.2 ABNF)",
                "policy-blank-line",
            ),
            PolicyWarning::UnknownKey {
                key,
                suggestion: Some(s),
                ..
            } => write!(
                f,
                "unknown key \"{key}\" is ignored (did you mean \"{s}\"?)"
            ),
            PolicyWarning::UnknownKey { key, .. } => {
                write!(f, "unknown key \"{key}\" is ignored by senders")
            }
            PolicyWarning::DuplicateKey {
                key, first_line, ..
            } => write!(
                f,
                "\"{key}\" appears again; only the first, on line {first_line}, counts"
            ),
            PolicyWarning::DuplicateMx {
                pattern,
                first_line,
                ..
            } => write!(f, "mx \"{pattern}\" repeats line {first_line}"),
            PolicyWarning::MxTrailingDot { value, .. } => interop(
                f,
                &format!(
                    "mx \"{}\" ends with a dot, which the RFC 5321 Domain syntax of RFC 8461 §3.2 does not allow",
                    excerpt(value, QUOTE)
                ),
                "policy-mx-trailing-dot",
            ),
            PolicyWarning::MxNotALabel { value, a_label, .. } => interop(
                f,
                &format!(
                    "mx \"{}\" is not in A-label form ({a_label}); RFC 8461 §3.2 requires A-labels",
                    excerpt(value, QUOTE)
                ),
                "policy-mx-u-label",
            ),
            PolicyWarning::EmptyExtensionValue { key, .. } => interop(
                f,
                &format!(
                    "\"{}:\" has an empty value; the ABNF requires at least one character (RFC 8461 §3.2)",
                    excerpt(key, QUOTE)
                ),
                "policy-empty-extension-value",
            ),
            PolicyWarning::MxWildcardTooBroad { value, .. } => {
                write!(
                    f,
                    "mx \"{value}\" allows any host of a whole top-level domain"
                )
            }
            PolicyWarning::ShortMaxAge { max_age, .. } => write!(
                f,
                "max_age {max_age} is under a day: senders refetch often and the cache protects little"
            ),
        }
    }
}

impl PolicyWarning {
    /// The 1-based line.
    pub fn line(&self) -> usize {
        match self {
            PolicyWarning::BlankLine { line }
            | PolicyWarning::UnknownKey { line, .. }
            | PolicyWarning::DuplicateKey { line, .. }
            | PolicyWarning::DuplicateMx { line, .. }
            | PolicyWarning::MxTrailingDot { line, .. }
            | PolicyWarning::MxNotALabel { line, .. }
            | PolicyWarning::MxWildcardTooBroad { line, .. }
            | PolicyWarning::EmptyExtensionValue { line, .. }
            | PolicyWarning::ShortMaxAge { line, .. } => *line,
        }
    }
}

impl Diagnostic for PolicyWarning {
    fn code(&self) -> &'static str {
        match self {
            PolicyWarning::BlankLine { .. } => "sts.policy.blank-line",
            PolicyWarning::UnknownKey { .. } => "sts.policy.unknown-key",
            PolicyWarning::DuplicateKey { .. } => "sts.policy.duplicate-key",
            PolicyWarning::DuplicateMx { .. } => "sts.policy.duplicate-mx",
            PolicyWarning::MxTrailingDot { .. } => "sts.policy.mx-trailing-dot",
            PolicyWarning::MxNotALabel { .. } => "sts.policy.mx-not-a-label",
            PolicyWarning::MxWildcardTooBroad { .. } => "sts.policy.mx-wildcard-too-broad",
            PolicyWarning::EmptyExtensionValue { .. } => "sts.policy.empty-extension-value",
            PolicyWarning::ShortMaxAge { .. } => "sts.policy.short-max-age",
        }
    }
    /// Errors for what some deployed senders reject although this parser (a sender's, safe
    /// to be lenient) accepts it: an owner must not publish it.
    fn severity(&self) -> Severity {
        match self {
            PolicyWarning::BlankLine { .. }
            | PolicyWarning::MxTrailingDot { .. }
            | PolicyWarning::MxNotALabel { .. }
            | PolicyWarning::EmptyExtensionValue { .. } => Severity::Error,
            _ => Severity::Warning,
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            PolicyWarning::ShortMaxAge { .. } => RfcRef::sts("10.2"),
            PolicyWarning::MxWildcardTooBroad { .. } => RfcRef::sts("4.1"),
            _ => S3_2,
        }
    }
    fn location(&self) -> Location {
        Location::Line { line: self.line() }
    }
    fn hint(&self) -> String {
        match self {
            PolicyWarning::BlankLine { .. } => "remove the empty line".into(),
            PolicyWarning::UnknownKey {
                suggestion: Some(s),
                ..
            } => format!("keys are case-sensitive and spelled exactly: \"{s}:\""),
            PolicyWarning::UnknownKey { .. } => "remove it unless you rely on an extension".into(),
            PolicyWarning::DuplicateKey { .. } => "remove the repeated line".into(),
            PolicyWarning::DuplicateMx { .. } => "remove the repeated mx line".into(),
            PolicyWarning::MxTrailingDot { value, .. } => {
                format!("write \"mx: {}\"", value.trim_end_matches('.'))
            }
            PolicyWarning::MxNotALabel { a_label, .. } => format!("write \"mx: {a_label}\""),
            PolicyWarning::EmptyExtensionValue { key, .. } => {
                format!(
                    "remove the \"{}:\" line, or give it a value",
                    excerpt(key, QUOTE)
                )
            }
            PolicyWarning::MxWildcardTooBroad { .. } => {
                "name your own MX hosts or your provider's domain, e.g. \"*.mail.example.net\""
                    .into()
            }
            PolicyWarning::ShortMaxAge { .. } => {
                "use about 86400 while testing and 604800 or more once enforcing".into()
            }
        }
    }
}

/// Everything a linter learns from a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLint {
    /// The policy, if there is no error.
    pub policy: Option<Policy>,
    /// Every error, in line order (file-level ones last).
    pub errors: Vec<PolicyError>,
    /// Every warning, in line order.
    pub warnings: Vec<PolicyWarning>,
}

impl PolicyLint {
    /// Errors and warnings as rendered findings, by line (file-level ones last).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<(usize, Finding)> = self
            .errors
            .iter()
            .map(|e| (e.line().unwrap_or(usize::MAX), Finding::from_diagnostic(e)))
            .chain(
                self.warnings
                    .iter()
                    .map(|w| (w.line(), Finding::from_diagnostic(w))),
            )
            .collect();
        out.sort_by_key(|(l, _)| *l);
        out.into_iter().map(|(_, f)| f).collect()
    }
}

const KNOWN_KEYS: [&str; 4] = ["version", "mode", "max_age", "mx"];

/// A known key that `key` is probably a misspelling of: same letters in another case, `-`
/// for `_`, or one edit away.
fn suggest_key(key: &str) -> Option<&'static str> {
    let norm = key.to_ascii_lowercase().replace('-', "_");
    KNOWN_KEYS
        .iter()
        .find(|k| {
            **k == norm
                || edit_distance(k, &norm) <= 1
                || (norm.len() > 3 && edit_distance(k, &norm) <= 2)
        })
        .copied()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Splits the file into lines on LF, removing a CR before it. The empty piece after a final
/// line terminator is not a line.
fn lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pieces: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    if pieces.last().is_some_and(|l| l.is_empty()) {
        pieces.pop();
    }
    pieces
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Parses and checks a policy file, collecting every error and warning (§3.2).
pub fn lint_policy(text: &[u8]) -> PolicyLint {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut version: Option<usize> = None;
    let mut mode: Option<(usize, Option<Mode>)> = None;
    let mut max_age: Option<(usize, Option<u32>)> = None;
    let mut mx: Vec<(usize, MxPattern)> = Vec::new();
    // The first line of each pattern and each extension key: lookups stay O(1) per line, so a
    // hostile policy of many lines parses in linear time.
    let mut mx_lines: HashMap<MxPattern, usize> = HashMap::new();
    let mut extensions: Vec<(String, String)> = Vec::new();
    let mut extension_keys: HashSet<String> = HashSet::new();

    for (n, raw) in lines(text) {
        let Ok(line) = std::str::from_utf8(raw) else {
            errors.push(PolicyError::NotUtf8 { line: n });
            continue;
        };
        if line.trim_matches(txt::is_wsp).is_empty() {
            warnings.push(PolicyWarning::BlankLine { line: n });
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            errors.push(PolicyError::MissingColon {
                line: n,
                text: line.to_string(),
            });
            continue;
        };
        let trimmed_key = key.trim_matches(txt::is_wsp);
        if trimmed_key != key && txt::is_field_name(trimmed_key) {
            errors.push(PolicyError::WhitespaceAroundKey {
                line: n,
                key: key.to_string(),
            });
            continue;
        }
        if !txt::is_field_name(key) {
            errors.push(PolicyError::InvalidKey {
                line: n,
                key: key.to_string(),
            });
            continue;
        }
        // field-delim = ":" *WSP, and each field may be followed by *WSP.
        let value = value.trim_matches(txt::is_wsp);
        if value.chars().any(char::is_control) {
            errors.push(PolicyError::ControlCharacter {
                line: n,
                key: key.to_string(),
            });
            continue;
        }
        match key {
            "version" => {
                if let Some(first_line) = version {
                    warnings.push(PolicyWarning::DuplicateKey {
                        line: n,
                        key: key.into(),
                        first_line,
                    });
                    continue;
                }
                version = Some(n);
                if value != POLICY_VERSION {
                    errors.push(PolicyError::InvalidVersion {
                        line: n,
                        value: value.into(),
                    });
                }
            }
            "mode" => {
                if let Some((first_line, _)) = mode {
                    warnings.push(PolicyWarning::DuplicateKey {
                        line: n,
                        key: key.into(),
                        first_line,
                    });
                    continue;
                }
                let m = Mode::parse(value);
                if m.is_none() {
                    errors.push(PolicyError::InvalidMode {
                        line: n,
                        value: value.into(),
                    });
                }
                mode = Some((n, m));
            }
            "max_age" => {
                if let Some((first_line, _)) = max_age {
                    warnings.push(PolicyWarning::DuplicateKey {
                        line: n,
                        key: key.into(),
                        first_line,
                    });
                    continue;
                }
                let parsed = parse_max_age(value);
                if let Err(problem) = parsed {
                    errors.push(PolicyError::InvalidMaxAge {
                        line: n,
                        value: value.into(),
                        problem,
                    });
                }
                max_age = Some((n, parsed.ok()));
            }
            "mx" => match MxPattern::parse(value) {
                Ok(p) => {
                    let bare = value.strip_prefix("*.").unwrap_or(value);
                    if domain::has_trailing_dot(value) {
                        warnings.push(PolicyWarning::MxTrailingDot {
                            line: n,
                            value: value.into(),
                        });
                    } else if bare != p.base() && bare.to_ascii_lowercase() != p.base() {
                        warnings.push(PolicyWarning::MxNotALabel {
                            line: n,
                            value: value.into(),
                            a_label: p.to_string(),
                        });
                    }
                    if p.is_wildcard() && !p.base().contains('.') {
                        warnings.push(PolicyWarning::MxWildcardTooBroad {
                            line: n,
                            value: value.into(),
                        });
                    }
                    if let Some(first_line) = mx_lines.get(&p) {
                        warnings.push(PolicyWarning::DuplicateMx {
                            line: n,
                            pattern: p.to_string(),
                            first_line: *first_line,
                        });
                    } else {
                        mx_lines.insert(p.clone(), n);
                        mx.push((n, p));
                    }
                }
                Err(error) => errors.push(PolicyError::InvalidMx {
                    line: n,
                    value: value.into(),
                    error,
                }),
            },
            other => {
                if value.is_empty() {
                    warnings.push(PolicyWarning::EmptyExtensionValue {
                        line: n,
                        key: other.into(),
                    });
                } else {
                    warnings.push(PolicyWarning::UnknownKey {
                        line: n,
                        key: other.into(),
                        suggestion: suggest_key(other),
                    });
                }
                if extension_keys.insert(other.to_owned()) {
                    extensions.push((other.into(), value.into()));
                }
            }
        }
    }

    if version.is_none() {
        errors.push(PolicyError::MissingVersion);
    }
    if mode.is_none() {
        errors.push(PolicyError::MissingMode);
    }
    if max_age.is_none() {
        errors.push(PolicyError::MissingMaxAge);
    }
    if let Some((_, Some(m))) = mode {
        if m != Mode::None
            && mx.is_empty()
            && !errors
                .iter()
                .any(|e| matches!(e, PolicyError::InvalidMx { .. }))
        {
            errors.push(PolicyError::MissingMx { mode: m });
        }
        if let Some((line, Some(age))) = max_age
            && m != Mode::None
            && age < SHORT_MAX_AGE
        {
            warnings.push(PolicyWarning::ShortMaxAge { line, max_age: age });
        }
    }
    warnings.sort_by_key(PolicyWarning::line);

    let policy = match (errors.is_empty(), mode, max_age) {
        (true, Some((_, Some(mode))), Some((_, Some(max_age)))) => Some(Policy {
            mode,
            max_age,
            mx: mx.into_iter().map(|(_, p)| p).collect(),
            extensions,
        }),
        _ => None,
    };
    PolicyLint {
        policy,
        errors,
        warnings,
    }
}

/// `1*10DIGIT`, at most 31557600 (§3.2).
pub fn parse_max_age(value: &str) -> Result<u32, MaxAgeProblem> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MaxAgeProblem::NotDigits);
    }
    if value.len() > MAX_AGE_DIGITS {
        return Err(MaxAgeProblem::TooManyDigits);
    }
    // 10 digits fit in u64.
    let v: u64 = value.parse().map_err(|_| MaxAgeProblem::NotDigits)?;
    if v > u64::from(MAX_MAX_AGE) {
        return Err(MaxAgeProblem::TooLarge);
    }
    u32::try_from(v).map_err(|_| MaxAgeProblem::TooLarge)
}

/// The result of testing MX host names against a policy (what `lint policy --mx` reports).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoverageFinding {
    /// The host matches a pattern.
    Covered {
        /// The host as given.
        host: String,
        /// The pattern that allows it.
        pattern: String,
    },
    /// No pattern matches the host: under `enforce`, mail to it is refused (§4.1, §5).
    NotCovered {
        /// The host as given.
        host: String,
    },
    /// The name given is not a host name at all.
    InvalidHost {
        /// The text given.
        host: String,
        /// Why.
        error: DomainError,
    },
    /// A pattern no given host matches: stale, or a typo.
    UnusedPattern {
        /// The pattern.
        pattern: String,
    },
    /// Hosts were given, but the policy is invalid, so coverage was not checked.
    NotChecked,
}

impl fmt::Display for CoverageFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoverageFinding::Covered { host, pattern } => {
                write!(f, "mx host {host} is covered by \"{pattern}\"")
            }
            CoverageFinding::NotCovered { host } => {
                write!(f, "mx host {host} matches no mx pattern of the policy")
            }
            CoverageFinding::InvalidHost { host, error } => {
                write!(f, "\"{host}\" is not a valid host name: {error}")
            }
            CoverageFinding::UnusedPattern { pattern } => {
                write!(
                    f,
                    "pattern \"{pattern}\" matches none of the given mx hosts"
                )
            }
            CoverageFinding::NotChecked => {
                f.write_str("mx coverage not checked: the policy is invalid")
            }
        }
    }
}

impl Diagnostic for CoverageFinding {
    fn code(&self) -> &'static str {
        match self {
            CoverageFinding::Covered { .. } => "sts.coverage.covered",
            CoverageFinding::NotCovered { .. } => "sts.coverage.mx-not-covered",
            CoverageFinding::InvalidHost { .. } => "sts.coverage.invalid-host",
            CoverageFinding::UnusedPattern { .. } => "sts.coverage.unused-pattern",
            CoverageFinding::NotChecked => "sts.coverage.not-checked",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            CoverageFinding::Covered { .. } | CoverageFinding::NotChecked => Severity::Info,
            CoverageFinding::NotCovered { .. } | CoverageFinding::InvalidHost { .. } => {
                Severity::Error
            }
            CoverageFinding::UnusedPattern { .. } => Severity::Warning,
        }
    }
    fn rfc(&self) -> RfcRef {
        RfcRef::sts("4.1")
    }
    fn location(&self) -> Location {
        match self {
            CoverageFinding::Covered { host, .. }
            | CoverageFinding::NotCovered { host }
            | CoverageFinding::InvalidHost { host, .. } => Location::Field {
                field: format!("mx host {host}"),
            },
            CoverageFinding::UnusedPattern { pattern } => Location::Field {
                field: format!("mx pattern {pattern}"),
            },
            CoverageFinding::NotChecked => Location::Whole,
        }
    }
    fn hint(&self) -> String {
        match self {
            CoverageFinding::Covered { .. } => String::new(),
            CoverageFinding::NotCovered { host } => format!(
                "add \"mx: {host}\" (or a \"*.\" pattern for its parent) before moving to enforce"
            ),
            CoverageFinding::InvalidHost { .. } => {
                "give the MX host name from your MX record".into()
            }
            CoverageFinding::UnusedPattern { .. } => {
                "remove it if no MX uses it any more; check its spelling otherwise".into()
            }
            CoverageFinding::NotChecked => "fix the errors above, then run again with --mx".into(),
        }
    }
}

/// Tests each host against the policy's patterns (§4.1), and reports patterns no host uses.
pub fn coverage<S: AsRef<str>>(policy: &Policy, hosts: &[S]) -> Vec<CoverageFinding> {
    let mut out = Vec::new();
    let mut used = vec![false; policy.mx.len()];
    for host in hosts {
        let host = host.as_ref();
        match domain::to_a_label(host) {
            Err(error) => out.push(CoverageFinding::InvalidHost {
                host: host.into(),
                error,
            }),
            Ok(canon) => match policy.mx.iter().position(|p| p.matches_canonical(&canon)) {
                Some(i) => {
                    used[i] = true;
                    out.push(CoverageFinding::Covered {
                        host: host.into(),
                        pattern: policy.mx[i].to_string(),
                    });
                }
                None => out.push(CoverageFinding::NotCovered { host: host.into() }),
            },
        }
    }
    for (p, used) in policy.mx.iter().zip(used) {
        if !used {
            out.push(CoverageFinding::UnusedPattern {
                pattern: p.to_string(),
            });
        }
    }
    out
}
