//! The `_smtp._tls` TXT record (RFC 8460 §3).
//!
//! ```text
//! tlsrpt-record  = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//! tlsrpt-version = %s"v=TLSRPTv1"
//! tlsrpt-rua     = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//! tlsrpt-uri     = URI   ; commas, "!" and ";" MUST be percent-encoded
//! ```
//!
//! <https://www.rfc-editor.org/rfc/rfc8460#section-3>

use crate::diag::{Diagnostic, Location, Severity};
use crate::domain::{self, DomainError};
use crate::rfc::RfcRef;
use crate::txt;
use std::fmt;

/// The version tag every TLS-RPT record begins with.
pub const TLSRPT_VERSION: &str = "v=TLSRPTv1";
/// The owner-name labels of the record.
pub const TLSRPT_LABEL: &str = "_smtp._tls";

const S3: RfcRef = RfcRef::tlsrpt("3");

/// Where aggregate reports are to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportUri {
    /// `mailto:` — reports are e-mailed (RFC 8460 §5.3).
    Mailto {
        /// The URI as published.
        uri: String,
        /// The decoded address.
        address: String,
        /// The address's domain, as an A-label.
        domain: String,
    },
    /// `https:` — reports are POSTed (RFC 8460 §5.4).
    Https {
        /// The URI as published.
        uri: String,
        /// The host, as an A-label (or an IP literal as written).
        host: String,
    },
    /// A well-formed URI with another scheme, which no sender will use.
    Other {
        /// The URI as published.
        uri: String,
        /// Its scheme, lower-cased.
        scheme: String,
    },
}

impl ReportUri {
    /// The URI as published.
    pub fn as_str(&self) -> &str {
        match self {
            ReportUri::Mailto { uri, .. }
            | ReportUri::Https { uri, .. }
            | ReportUri::Other { uri, .. } => uri,
        }
    }

    /// Whether a sender can deliver to it (mailto or https).
    pub fn is_supported(&self) -> bool {
        !matches!(self, ReportUri::Other { .. })
    }
}

/// A valid `_smtp._tls` TXT record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRptRecord {
    /// The report destinations, in order.
    pub rua: Vec<ReportUri>,
    /// Extension fields, which senders ignore.
    pub extensions: Vec<(String, String)>,
}

/// What is wrong with a `rua` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriProblem {
    /// Empty (e.g. `rua=mailto:a@b.example,,`).
    Empty,
    /// No `scheme:` prefix.
    NoScheme,
    /// A character that may not appear in a URI (RFC 3986), such as a space or a raw `!`.
    InvalidChar {
        /// The character.
        ch: char,
    },
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A mailto URI without a single `local@domain` address.
    BadMailto,
    /// An https URI without `//host`.
    MissingHost,
    /// The host or mail domain is not a valid domain name.
    BadDomain(DomainError),
}

impl fmt::Display for UriProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriProblem::Empty => f.write_str("the URI is empty"),
            UriProblem::NoScheme => f.write_str("the URI has no scheme (mailto: or https:)"),
            UriProblem::InvalidChar { ch: '!' } => {
                f.write_str("\"!\" must be percent-encoded as %21 (RFC 8460 §3)")
            }
            UriProblem::InvalidChar { ch } => write!(f, "character {ch:?} is not allowed in a URI"),
            UriProblem::BadPercentEncoding => {
                f.write_str("\"%\" is not followed by two hex digits")
            }
            UriProblem::BadMailto => f.write_str("a mailto: URI needs one address local@domain"),
            UriProblem::MissingHost => {
                f.write_str("an https: URI needs a host (https://host/path)")
            }
            UriProblem::BadDomain(e) => write!(f, "bad domain: {e}"),
        }
    }
}

/// Why a TXT record is not a valid TLS-RPT record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The record does not begin with `v=TLSRPTv1` (not a TLS-RPT record at all).
    NotTlsRptRecord,
    /// A byte outside US-ASCII.
    NotAscii {
        /// 0-based byte offset.
        offset: usize,
    },
    /// `v=TLSRPTv1` is not followed by `;`.
    MissingDelimiter,
    /// Two `;` with nothing between them.
    EmptyField {
        /// 1-based position.
        position: usize,
    },
    /// A field without `=`.
    FieldWithoutValue {
        /// The field text.
        field: String,
    },
    /// A field name outside the ABNF.
    InvalidFieldName {
        /// The name.
        name: String,
    },
    /// An extension value with a space, `;`, `=` or a control character, or empty.
    InvalidFieldValue {
        /// The field's name.
        name: String,
        /// The value.
        value: String,
    },
    /// No `rua=` field.
    MissingRua,
    /// `rua=` appears more than once.
    DuplicateRua,
    /// A URI in `rua=` is malformed.
    InvalidUri {
        /// The URI text.
        uri: String,
        /// What is wrong.
        problem: UriProblem,
    },
    /// Every URI has a scheme other than mailto/https: no report can be delivered.
    NoSupportedUri,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NotTlsRptRecord => {
                f.write_str("the record does not begin with \"v=TLSRPTv1\"")
            }
            RecordError::NotAscii { offset } => write!(f, "byte {offset} is not US-ASCII"),
            RecordError::MissingDelimiter => {
                f.write_str("\"v=TLSRPTv1\" must be followed by \";\" before the next field")
            }
            RecordError::EmptyField { position } => {
                write!(f, "field {position} is empty (two \";\" in a row)")
            }
            RecordError::FieldWithoutValue { field } => write!(f, "field \"{field}\" has no \"=\""),
            RecordError::InvalidFieldName { name } => {
                write!(f, "\"{name}\" is not a valid field name")
            }
            RecordError::InvalidFieldValue { name, value } => {
                write!(f, "field \"{name}\" has an invalid value \"{value}\"")
            }
            RecordError::MissingRua => f.write_str("the record has no \"rua=\" field"),
            RecordError::DuplicateRua => f.write_str("\"rua=\" appears more than once"),
            RecordError::InvalidUri { uri, problem } => write!(f, "rua URI \"{uri}\": {problem}"),
            RecordError::NoSupportedUri => {
                f.write_str("no rua URI uses mailto: or https:, so no report can be sent")
            }
        }
    }
}

impl std::error::Error for RecordError {}

impl Diagnostic for RecordError {
    fn code(&self) -> &'static str {
        match self {
            RecordError::NotTlsRptRecord => "tlsrpt.record.not-tlsrpt",
            RecordError::NotAscii { .. } => "tlsrpt.record.not-ascii",
            RecordError::MissingDelimiter => "tlsrpt.record.missing-delimiter",
            RecordError::EmptyField { .. } => "tlsrpt.record.empty-field",
            RecordError::FieldWithoutValue { .. } => "tlsrpt.record.field-without-value",
            RecordError::InvalidFieldName { .. } => "tlsrpt.record.invalid-field-name",
            RecordError::InvalidFieldValue { .. } => "tlsrpt.record.invalid-field-value",
            RecordError::MissingRua => "tlsrpt.record.missing-rua",
            RecordError::DuplicateRua => "tlsrpt.record.duplicate-rua",
            RecordError::InvalidUri { .. } => "tlsrpt.record.invalid-uri",
            RecordError::NoSupportedUri => "tlsrpt.record.no-supported-uri",
        }
    }
    fn severity(&self) -> Severity {
        Severity::Error
    }
    fn rfc(&self) -> RfcRef {
        S3
    }
    fn location(&self) -> Location {
        match self {
            RecordError::MissingRua
            | RecordError::DuplicateRua
            | RecordError::InvalidUri { .. }
            | RecordError::NoSupportedUri => Location::Field {
                field: "rua".into(),
            },
            RecordError::FieldWithoutValue { field } => Location::Field {
                field: field.clone(),
            },
            RecordError::InvalidFieldName { name }
            | RecordError::InvalidFieldValue { name, .. } => Location::Field {
                field: name.clone(),
            },
            _ => Location::Whole,
        }
    }
    fn hint(&self) -> String {
        match self {
            RecordError::NotTlsRptRecord => "start the record with \"v=TLSRPTv1;\" exactly".into(),
            RecordError::NotAscii { .. } => "use only US-ASCII characters in the record".into(),
            RecordError::MissingDelimiter => "write \"v=TLSRPTv1; rua=mailto:...\"".into(),
            RecordError::EmptyField { .. } => "remove the extra \";\"".into(),
            RecordError::FieldWithoutValue { .. } | RecordError::InvalidFieldName { .. } => {
                "fields are name=value pairs separated by \";\"".into()
            }
            RecordError::InvalidFieldValue { .. } => {
                "extension values may not contain spaces, \";\" or \"=\"".into()
            }
            RecordError::MissingRua | RecordError::NoSupportedUri => {
                "add e.g. \"rua=mailto:tlsrpt@example.com\" (or an https:// endpoint)".into()
            }
            RecordError::DuplicateRua => {
                "put all destinations in one rua= field, separated by commas".into()
            }
            RecordError::InvalidUri { .. } => {
                "write mailto:user@domain or https://host/path, percent-encoding \",\", \"!\" and \";\"".into()
            }
        }
    }
}

/// Something allowed but worth knowing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordWarning {
    /// An extension field, which senders ignore.
    UnknownField {
        /// Its name.
        name: String,
    },
    /// A URI with a scheme senders do not use; the others still work.
    UnsupportedScheme {
        /// The URI.
        uri: String,
    },
    /// The record ends in whitespace without a final `;`: outside the RFC 8460 §3 ABNF. No
    /// surveyed implementation rejects it (docs/interop.md), so it is a warning.
    TrailingWhitespace,
}

impl fmt::Display for RecordWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordWarning::UnknownField { name } => {
                write!(f, "unknown field \"{name}\" is ignored by senders")
            }
            RecordWarning::UnsupportedScheme { uri } => {
                write!(
                    f,
                    "rua URI \"{uri}\" is neither mailto: nor https:; senders skip it"
                )
            }
            RecordWarning::TrailingWhitespace => match crate::interop::rejected_by_text(
                "txt-trailing-whitespace-tlsrpt",
            ) {
                Some(who) => write!(
                    f,
                    "the record ends in whitespace without a final \";\" (outside the RFC 8460 §3 ABNF); {who} it"
                ),
                None => f.write_str(
                    "the record ends in whitespace without a final \";\" (outside the RFC 8460 §3 ABNF); no surveyed sender rejects it",
                ),
            },
        }
    }
}

impl Diagnostic for RecordWarning {
    fn code(&self) -> &'static str {
        match self {
            RecordWarning::UnknownField { .. } => "tlsrpt.record.unknown-field",
            RecordWarning::UnsupportedScheme { .. } => "tlsrpt.record.unsupported-scheme",
            RecordWarning::TrailingWhitespace => "tlsrpt.record.trailing-whitespace",
        }
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn rfc(&self) -> RfcRef {
        S3
    }
    fn location(&self) -> Location {
        match self {
            RecordWarning::UnknownField { name } => Location::Field {
                field: name.clone(),
            },
            RecordWarning::UnsupportedScheme { .. } => Location::Field {
                field: "rua".into(),
            },
            RecordWarning::TrailingWhitespace => Location::Whole,
        }
    }
    fn hint(&self) -> String {
        match self {
            RecordWarning::UnknownField { .. } => {
                "remove it unless you rely on an extension".into()
            }
            RecordWarning::UnsupportedScheme { .. } => "use mailto: or https:".into(),
            RecordWarning::TrailingWhitespace => {
                "remove the trailing whitespace, or end the record with \";\"".into()
            }
        }
    }
}

/// Whether a joined TXT record is a TLS-RPT record at all.
pub fn is_tlsrpt_record(text: &[u8]) -> bool {
    txt::has_version(text, TLSRPT_VERSION)
}

/// RFC 3986 characters: unreserved, reserved (gen-delims and sub-delims) and `%`.
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@$&'()*+=%".contains(c)
}

fn percent_decode(s: &str) -> Result<String, UriProblem> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(UriProblem::BadPercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UriProblem::BadPercentEncoding)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| UriProblem::BadPercentEncoding)?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriProblem::BadPercentEncoding)
}

/// Parses one `rua` URI.
pub fn parse_report_uri(uri: &str) -> Result<ReportUri, UriProblem> {
    if uri.is_empty() {
        return Err(UriProblem::Empty);
    }
    if let Some(ch) = uri.chars().find(|c| !is_uri_char(*c)) {
        return Err(UriProblem::InvalidChar { ch });
    }
    // Validates every percent-encoding once for the whole URI.
    percent_decode(uri)?;
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(UriProblem::NoScheme);
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(UriProblem::NoScheme);
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "mailto" => {
            // RFC 6068: to = addr-spec *("," addr-spec), then optional ?hfields.
            let to = rest.split('?').next().unwrap_or("");
            let address = percent_decode(to)?;
            let Some((local, dom)) = address.rsplit_once('@') else {
                return Err(UriProblem::BadMailto);
            };
            if local.is_empty() || dom.is_empty() {
                return Err(UriProblem::BadMailto);
            }
            let domain = domain::to_a_label(dom).map_err(UriProblem::BadDomain)?;
            Ok(ReportUri::Mailto {
                uri: uri.to_string(),
                address,
                domain,
            })
        }
        "https" => {
            let Some(after) = rest.strip_prefix("//") else {
                return Err(UriProblem::MissingHost);
            };
            let authority = after.split(['/', '?', '#']).next().unwrap_or("");
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = if hostport.starts_with('[') {
                // IPv6 literal: keep as written.
                match hostport.find(']') {
                    Some(end) => hostport[..=end].to_string(),
                    None => return Err(UriProblem::MissingHost),
                }
            } else {
                let (h, port) = match hostport.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (hostport, None),
                };
                if let Some(p) = port
                    && p.parse::<u16>().is_err()
                {
                    return Err(UriProblem::MissingHost);
                }
                if h.is_empty() {
                    return Err(UriProblem::MissingHost);
                }
                let h = percent_decode(h)?;
                if h.parse::<std::net::Ipv4Addr>().is_ok() {
                    h
                } else {
                    domain::to_a_label(&h).map_err(UriProblem::BadDomain)?
                }
            };
            Ok(ReportUri::Https {
                uri: uri.to_string(),
                host,
            })
        }
        _ => Ok(ReportUri::Other {
            uri: uri.to_string(),
            scheme,
        }),
    }
}

impl TlsRptRecord {
    /// Parses one record (its character-strings joined).
    pub fn parse(text: &[u8]) -> Result<TlsRptRecord, RecordError> {
        Self::parse_with_warnings(text).map(|(r, _)| r)
    }

    /// Parses one record, also returning what a linter should mention.
    pub fn parse_with_warnings(
        text: &[u8],
    ) -> Result<(TlsRptRecord, Vec<RecordWarning>), RecordError> {
        if !is_tlsrpt_record(text) {
            return Err(RecordError::NotTlsRptRecord);
        }
        let fields = txt::parse_record(text, TLSRPT_VERSION, "rua").map_err(RecordError::from)?;
        let value = match fields.required.as_slice() {
            [] => return Err(RecordError::MissingRua),
            [v] => *v,
            _ => return Err(RecordError::DuplicateRua),
        };
        let mut warnings: Vec<RecordWarning> = fields
            .extensions
            .iter()
            .map(|(name, _)| RecordWarning::UnknownField {
                name: name.to_string(),
            })
            .collect();
        if fields.trailing_whitespace {
            warnings.push(RecordWarning::TrailingWhitespace);
        }
        let mut rua = Vec::new();
        for part in value.split(',') {
            let part = part.trim_matches(txt::is_wsp);
            let parsed = parse_report_uri(part).map_err(|problem| RecordError::InvalidUri {
                uri: part.to_string(),
                problem,
            })?;
            if !parsed.is_supported() {
                warnings.push(RecordWarning::UnsupportedScheme {
                    uri: part.to_string(),
                });
            }
            rua.push(parsed);
        }
        if !rua.iter().any(ReportUri::is_supported) {
            return Err(RecordError::NoSupportedUri);
        }
        let extensions = fields
            .extensions
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok((TlsRptRecord { rua, extensions }, warnings))
    }
}

txt::impl_from_field_problem!(RecordError);

impl fmt::Display for TlsRptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TLSRPT_VERSION}; rua=")?;
        for (i, u) in self.rua.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(u.as_str())?;
        }
        f.write_str(";")?;
        for (k, v) in &self.extensions {
            write!(f, " {k}={v};")?;
        }
        Ok(())
    }
}

/// Why a TXT RRset yields no TLS-RPT record (RFC 8460 §3: same selection rule as MTA-STS).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectError {
    /// No record begins with `v=TLSRPTv1`.
    NoRecord,
    /// More than one does.
    MultipleRecords {
        /// How many.
        count: usize,
    },
    /// The one record is invalid.
    Invalid {
        /// Its index in the RRset as given.
        index: usize,
        /// What is wrong with it.
        error: RecordError,
    },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::NoRecord => f.write_str("no TXT record begins with \"v=TLSRPTv1\""),
            SelectError::MultipleRecords { count } => write!(
                f,
                "{count} TXT records begin with \"v=TLSRPTv1\"; exactly one is allowed"
            ),
            SelectError::Invalid { error, .. } => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for SelectError {}

impl Diagnostic for SelectError {
    fn code(&self) -> &'static str {
        match self {
            SelectError::NoRecord => "tlsrpt.record.none",
            SelectError::MultipleRecords { .. } => "tlsrpt.record.multiple",
            SelectError::Invalid { error, .. } => error.code(),
        }
    }
    fn severity(&self) -> Severity {
        Severity::Error
    }
    fn rfc(&self) -> RfcRef {
        S3
    }
    fn location(&self) -> Location {
        match self {
            SelectError::Invalid { index, error } => match error.location() {
                Location::Whole => Location::Record { index: *index },
                other => other,
            },
            _ => Location::Whole,
        }
    }
    fn hint(&self) -> String {
        match self {
            SelectError::NoRecord => {
                "publish at _smtp._tls.<domain>: \"v=TLSRPTv1; rua=mailto:tlsrpt@<domain>\"".into()
            }
            SelectError::MultipleRecords { .. } => {
                "merge them into one record with several rua URIs separated by commas".into()
            }
            SelectError::Invalid { error, .. } => error.hint(),
        }
    }
}

/// Applies the RFC 8460 §3 RRset rule (as RFC 8461 §3.1).
pub fn select_tlsrpt_record<R, S>(rrset: &[R]) -> Result<TlsRptRecord, SelectError>
where
    R: AsRef<[S]>,
    S: AsRef<[u8]>,
{
    select_tlsrpt_record_linted(rrset).map(|(_, r, _)| r)
}

/// As [`select_tlsrpt_record`], also returning the selected record's index in the RRset and
/// what a linter should mention about it.
pub fn select_tlsrpt_record_linted<R, S>(
    rrset: &[R],
) -> Result<(usize, TlsRptRecord, Vec<RecordWarning>), SelectError>
where
    R: AsRef<[S]>,
    S: AsRef<[u8]>,
{
    match txt::select_one(rrset, is_tlsrpt_record) {
        Err(txt::Count::None) => Err(SelectError::NoRecord),
        Err(txt::Count::Multiple(count)) => Err(SelectError::MultipleRecords { count }),
        Ok((index, text)) => TlsRptRecord::parse_with_warnings(&text)
            .map(|(r, w)| (index, r, w))
            .map_err(|error| SelectError::Invalid { index, error }),
    }
}
