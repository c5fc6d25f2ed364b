//! The core's entries in the finding catalogue: one example of each diagnostic variant and
//! what it means. `docs/checks.md` is generated from these (through `mtasts-check`), so the
//! severity, section and fix documented are those the code emits. `meaning` is an exhaustive
//! match: a new variant does not compile until it is documented.

use crate::diag::Catalogue;
use crate::domain::DomainError;
use crate::rrset::Discarded;
use crate::sts::fetch::{FetchError, MediaTypeProblem};
use crate::sts::mx::MxPatternError;
use crate::sts::policy::{CoverageFinding, MaxAgeProblem, Mode, PolicyError, PolicyWarning};
use crate::sts::record::{RecordError, RecordWarning, SelectError};
use crate::tlsrpt::record::{
    RecordError as RptError, RecordWarning as RptWarning, SelectError as RptSelect, UriProblem,
};

impl Catalogue for RecordError {
    fn examples() -> Vec<Self> {
        vec![
            RecordError::NotStsRecord,
            RecordError::NotAscii { offset: 12 },
            RecordError::MissingDelimiter,
            RecordError::EmptyField { position: 2 },
            RecordError::FieldWithoutValue { field: "id".into() },
            RecordError::InvalidFieldName { name: "i d".into() },
            RecordError::InvalidFieldValue {
                name: "ext".into(),
                value: "a b".into(),
            },
            RecordError::MissingId,
            RecordError::DuplicateId,
            RecordError::InvalidId {
                value: "2025-01-01".into(),
            },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            RecordError::NotStsRecord => "The record does not begin with v=STSv1.",
            RecordError::NotAscii { .. } => "The record holds non-ASCII bytes.",
            RecordError::MissingDelimiter => "Fields are not separated by \";\".",
            RecordError::EmptyField { .. } => "An empty field (\";;\").",
            RecordError::FieldWithoutValue { .. } => "A field has no \"=\" and value.",
            RecordError::InvalidFieldName { .. } => "A field name is not valid.",
            RecordError::InvalidFieldValue { .. } => {
                "A field value holds characters the grammar forbids."
            }
            RecordError::MissingId => "The record has no id field.",
            RecordError::DuplicateId => "The id field appears twice.",
            RecordError::InvalidId { .. } => "The id is not 1 to 32 letters and digits.",
        }
    }
}

impl Catalogue for RecordWarning {
    fn examples() -> Vec<Self> {
        vec![
            RecordWarning::UnknownField { name: "ID".into() },
            RecordWarning::TrailingWhitespace,
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            RecordWarning::UnknownField { .. } => "An extension field senders ignore.",
            RecordWarning::TrailingWhitespace => {
                "The record ends in whitespace without a final \";\": outside the ABNF, and mox and postfix-tlspol reject the record."
            }
        }
    }
}

impl Catalogue for SelectError {
    fn context(&self) -> Option<&'static str> {
        matches!(self, SelectError::NoRecord).then_some("lint record")
    }
    fn examples() -> Vec<Self> {
        vec![
            SelectError::NoRecord,
            SelectError::MultipleRecords { count: 2 },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            SelectError::NoRecord => "No TXT record of the set begins with v=STSv1.",
            SelectError::MultipleRecords { .. } => {
                "More than one TXT record begins with v=STSv1: senders treat the domain as having no policy."
            }
            SelectError::Invalid { error, .. } => error.meaning(),
        }
    }
}

impl Catalogue for Discarded {
    fn examples() -> Vec<Self> {
        vec![Discarded {
            index: 0,
            wrong_case: true,
        }]
    }
    fn meaning(&self) -> &'static str {
        "A TXT record that is neither v=STSv1 nor v=TLSRPTv1: senders discard it before counting."
    }
}

impl Catalogue for PolicyError {
    fn examples() -> Vec<Self> {
        vec![
            PolicyError::NotUtf8 { line: 2 },
            PolicyError::MissingColon {
                line: 2,
                text: "mode enforce".into(),
            },
            PolicyError::WhitespaceAroundKey {
                line: 2,
                key: "mode ".into(),
            },
            PolicyError::InvalidKey {
                line: 2,
                key: "m@de".into(),
            },
            PolicyError::ControlCharacter {
                line: 2,
                key: "mx".into(),
            },
            PolicyError::InvalidVersion {
                line: 1,
                value: "STSv2".into(),
            },
            PolicyError::InvalidMode {
                line: 2,
                value: "Enforce".into(),
            },
            PolicyError::InvalidMaxAge {
                line: 4,
                value: "1w".into(),
                problem: MaxAgeProblem::NotDigits,
            },
            PolicyError::InvalidMaxAge {
                line: 4,
                value: "31557601".into(),
                problem: MaxAgeProblem::TooLarge,
            },
            PolicyError::InvalidMx {
                line: 3,
                value: "192.0.2.1".into(),
                error: MxPatternError::Domain(DomainError::IpLiteral),
            },
            PolicyError::MissingVersion,
            PolicyError::MissingMode,
            PolicyError::MissingMaxAge,
            PolicyError::MissingMx {
                mode: Mode::Enforce,
            },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            PolicyError::NotUtf8 { .. } => "A line of the policy is not valid UTF-8.",
            PolicyError::MissingColon { .. } => "A line has no \":\".",
            PolicyError::WhitespaceAroundKey { .. } => "Whitespace before a key or its colon.",
            PolicyError::InvalidKey { .. } => "A key holds characters the grammar forbids.",
            PolicyError::ControlCharacter { .. } => "A control character in the policy.",
            PolicyError::InvalidVersion { .. } => "The version is not STSv1.",
            PolicyError::InvalidMode { .. } => {
                "The mode is not enforce, testing or none (values are case-sensitive)."
            }
            PolicyError::InvalidMaxAge {
                problem: MaxAgeProblem::TooLarge,
                ..
            } => "max_age is over 31557600 (one year).",
            PolicyError::InvalidMaxAge { .. } => "max_age is not a plain number of seconds.",
            PolicyError::InvalidMx { .. } => "An mx value is not a host name or *.pattern.",
            PolicyError::MissingVersion => "The policy has no version line.",
            PolicyError::MissingMode => "The policy has no mode line.",
            PolicyError::MissingMaxAge => "The policy has no max_age line.",
            PolicyError::MissingMx { .. } => "A testing or enforce policy lists no mx.",
        }
    }
}

impl Catalogue for PolicyWarning {
    fn examples() -> Vec<Self> {
        vec![
            PolicyWarning::BlankLine { line: 3 },
            PolicyWarning::UnknownKey {
                line: 3,
                key: "max-age".into(),
                suggestion: Some("max_age"),
            },
            PolicyWarning::DuplicateKey {
                line: 5,
                key: "mode".into(),
                first_line: 2,
            },
            PolicyWarning::DuplicateMx {
                line: 4,
                pattern: "mx1.example.com".into(),
                first_line: 3,
            },
            PolicyWarning::MxTrailingDot {
                line: 3,
                value: "mx1.example.com.".into(),
            },
            PolicyWarning::MxNotALabel {
                line: 3,
                value: "mx.bücher.example".into(),
                a_label: "mx.xn--bcher-kva.example".into(),
            },
            PolicyWarning::MxWildcardTooBroad {
                line: 3,
                value: "*.com".into(),
            },
            PolicyWarning::EmptyExtensionValue {
                line: 5,
                key: "comment".into(),
            },
            PolicyWarning::ShortMaxAge {
                line: 4,
                max_age: 3600,
            },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            PolicyWarning::BlankLine { .. } => {
                "A blank line inside the policy: outside the ABNF; mox, go-mtasts and postfix-tlspol reject the policy."
            }
            PolicyWarning::EmptyExtensionValue { .. } => {
                "An extension key with an empty value: outside the ABNF; mox and postfix-tlspol reject the policy."
            }
            PolicyWarning::UnknownKey { .. } => {
                "A key senders ignore (often a typo of mx or max_age)."
            }
            PolicyWarning::DuplicateKey { .. } => {
                "version, mode or max_age appears twice; only the first counts."
            }
            PolicyWarning::DuplicateMx { .. } => "The same mx value twice.",
            PolicyWarning::MxTrailingDot { .. } => {
                "An mx value ends with a dot: mox rejects the policy, Stalwart never matches it."
            }
            PolicyWarning::MxNotALabel { .. } => {
                "An mx value is a U-label: RFC 8461 wants A-labels; mox and postfix-tlspol reject the policy."
            }
            PolicyWarning::MxWildcardTooBroad { .. } => {
                "A wildcard that covers a whole top-level domain."
            }
            PolicyWarning::ShortMaxAge { .. } => {
                "max_age under a day in testing or enforce: the cache protects little."
            }
        }
    }
}

impl Catalogue for FetchError {
    fn examples() -> Vec<Self> {
        vec![
            FetchError::Redirect {
                status: 301,
                location: Some("https://www.example.com/".into()),
            },
            FetchError::Status { status: 404 },
            FetchError::MediaType(MediaTypeProblem::NotTextPlain {
                essence: "text/html".into(),
            }),
            FetchError::BodyTooLarge {
                size: 70_000,
                declared: true,
                limit: 65_536,
            },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            FetchError::Redirect { .. } => {
                "The policy URL answers with a redirect, which senders must not follow."
            }
            FetchError::Status { .. } => "The policy URL answers with a status other than 200.",
            FetchError::MediaType(_) => "The policy is not served as text/plain.",
            FetchError::BodyTooLarge { .. } => "The policy is larger than the 64 KiB senders read.",
            FetchError::Policy(e) => e.meaning(),
        }
    }
}

impl Catalogue for CoverageFinding {
    fn examples() -> Vec<Self> {
        vec![
            CoverageFinding::NotCovered {
                host: "mx2.example.com".into(),
            },
            CoverageFinding::InvalidHost {
                host: "mx_1.example.com".into(),
                error: DomainError::InvalidChar { ch: '_' },
            },
            CoverageFinding::UnusedPattern {
                pattern: "mx-old.example.com".into(),
            },
            CoverageFinding::NotChecked,
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            CoverageFinding::Covered { .. } => "An MX host matches an mx pattern.",
            CoverageFinding::NotCovered { .. } => {
                "An MX host matches no mx pattern: under enforce, senders refuse to deliver to it."
            }
            CoverageFinding::InvalidHost { .. } => "An MX host name is not a valid host name.",
            CoverageFinding::UnusedPattern { .. } => {
                "An mx pattern matches no MX host: stale, a typo, or the MX record was changed."
            }
            CoverageFinding::NotChecked => {
                "Coverage was not checked because the policy is invalid (lint policy --mx)."
            }
        }
    }
}

impl Catalogue for RptError {
    fn examples() -> Vec<Self> {
        vec![
            RptError::NotTlsRptRecord,
            RptError::NotAscii { offset: 20 },
            RptError::MissingDelimiter,
            RptError::EmptyField { position: 2 },
            RptError::FieldWithoutValue {
                field: "rua".into(),
            },
            RptError::InvalidFieldName { name: "r a".into() },
            RptError::InvalidFieldValue {
                name: "ext".into(),
                value: "a b".into(),
            },
            RptError::MissingRua,
            RptError::DuplicateRua,
            RptError::InvalidUri {
                uri: "mailto:tls rpt@example.com".into(),
                problem: UriProblem::InvalidChar { ch: ' ' },
            },
            RptError::NoSupportedUri,
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            RptError::NotTlsRptRecord => "The record does not begin with v=TLSRPTv1.",
            RptError::NotAscii { .. } => "The record holds non-ASCII bytes.",
            RptError::MissingDelimiter => "Fields are not separated by \";\".",
            RptError::EmptyField { .. } => "An empty field (\";;\").",
            RptError::FieldWithoutValue { .. } => "A field has no value.",
            RptError::InvalidFieldName { .. } => "A field name is not valid.",
            RptError::InvalidFieldValue { .. } => "A field value holds forbidden characters.",
            RptError::MissingRua => "The TLS-RPT record has no rua field.",
            RptError::DuplicateRua => "The rua field appears twice.",
            RptError::InvalidUri { .. } => "A rua URI is malformed.",
            RptError::NoSupportedUri => "No rua URI is mailto or https: no report can be sent.",
        }
    }
}

impl Catalogue for RptWarning {
    fn examples() -> Vec<Self> {
        vec![
            RptWarning::UnknownField { name: "ruf".into() },
            RptWarning::UnsupportedScheme {
                uri: "ftp://example.com/".into(),
            },
            RptWarning::TrailingWhitespace,
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            RptWarning::UnknownField { .. } => "An extension field senders ignore.",
            RptWarning::UnsupportedScheme { .. } => {
                "A rua URI has a scheme other than mailto or https."
            }
            RptWarning::TrailingWhitespace => {
                "The record ends in whitespace without a final \";\": outside the ABNF (no surveyed sender rejects it)."
            }
        }
    }
}

impl Catalogue for RptSelect {
    fn context(&self) -> Option<&'static str> {
        matches!(self, RptSelect::NoRecord).then_some("lint record")
    }
    fn examples() -> Vec<Self> {
        vec![RptSelect::NoRecord, RptSelect::MultipleRecords { count: 2 }]
    }
    fn meaning(&self) -> &'static str {
        match self {
            RptSelect::NoRecord => "No TXT record of the set begins with v=TLSRPTv1.",
            RptSelect::MultipleRecords { .. } => {
                "More than one TLS-RPT record: senders send no reports."
            }
            RptSelect::Invalid { error, .. } => error.meaning(),
        }
    }
}
