//! The `_mta-sts` TXT record (RFC 8461 §3.1).
//!
//! ```text
//! sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//! sts-field       = sts-id / sts-extension
//! sts-version     = %s"v=STSv1"
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! ```
//!
//! <https://www.rfc-editor.org/rfc/rfc8461#section-3.1>

use crate::diag::{Diagnostic, Location, Severity};
use crate::rfc::RfcRef;
use crate::txt;
use std::fmt;

/// The version tag every MTA-STS record begins with.
pub const STS_VERSION: &str = "v=STSv1";
/// Longest policy id (RFC 8461 §3.1: `1*32(ALPHA / DIGIT)`).
pub const MAX_ID_LEN: usize = 32;
/// The owner-name label of the record.
pub const STS_LABEL: &str = "_mta-sts";

const S3_1: RfcRef = RfcRef::sts("3.1");

/// A valid `_mta-sts` TXT record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsRecord {
    /// The policy id: changes whenever the policy changes.
    pub id: String,
    /// Extension fields, in order, which RFC 8461 says to ignore.
    pub extensions: Vec<(String, String)>,
}

/// Why a TXT record is not a valid MTA-STS record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The record does not begin with `v=STSv1` (and so is not an MTA-STS record at all).
    NotStsRecord,
    /// A byte outside US-ASCII.
    NotAscii {
        /// 0-based byte offset in the joined record.
        offset: usize,
    },
    /// `v=STSv1` is not followed by `;`.
    MissingDelimiter,
    /// Two `;` with nothing between them.
    EmptyField {
        /// 1-based position of the empty field after the version.
        position: usize,
    },
    /// A field without `=`.
    FieldWithoutValue {
        /// The field text.
        field: String,
    },
    /// A field name outside the ABNF (`(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`).
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
    /// No `id=` field.
    MissingId,
    /// `id=` appears more than once, so the policy version is ambiguous.
    DuplicateId,
    /// The id is empty, longer than 32 characters, or has characters other than letters and
    /// digits.
    InvalidId {
        /// The value as published.
        value: String,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NotStsRecord => f.write_str("the record does not begin with \"v=STSv1\""),
            RecordError::NotAscii { offset } => {
                write!(f, "byte {offset} is not US-ASCII")
            }
            RecordError::MissingDelimiter => {
                f.write_str("\"v=STSv1\" must be followed by \";\" before the next field")
            }
            RecordError::EmptyField { position } => {
                write!(f, "field {position} is empty (two \";\" in a row)")
            }
            RecordError::FieldWithoutValue { field } => {
                write!(f, "field \"{field}\" has no \"=\"")
            }
            RecordError::InvalidFieldName { name } => {
                write!(f, "\"{name}\" is not a valid field name")
            }
            RecordError::InvalidFieldValue { name, value } => {
                write!(f, "field \"{name}\" has an invalid value \"{value}\"")
            }
            RecordError::MissingId => f.write_str("the record has no \"id=\" field"),
            RecordError::DuplicateId => f.write_str("\"id=\" appears more than once"),
            RecordError::InvalidId { value } => {
                if value.is_empty() {
                    f.write_str("the id is empty")
                } else if value.len() > MAX_ID_LEN {
                    write!(
                        f,
                        "the id \"{value}\" is {} characters long, more than 32",
                        value.len()
                    )
                } else {
                    write!(
                        f,
                        "the id \"{value}\" has characters other than letters and digits"
                    )
                }
            }
        }
    }
}

impl std::error::Error for RecordError {}

impl Diagnostic for RecordError {
    fn code(&self) -> &'static str {
        match self {
            RecordError::NotStsRecord => "sts.record.not-sts",
            RecordError::NotAscii { .. } => "sts.record.not-ascii",
            RecordError::MissingDelimiter => "sts.record.missing-delimiter",
            RecordError::EmptyField { .. } => "sts.record.empty-field",
            RecordError::FieldWithoutValue { .. } => "sts.record.field-without-value",
            RecordError::InvalidFieldName { .. } => "sts.record.invalid-field-name",
            RecordError::InvalidFieldValue { .. } => "sts.record.invalid-field-value",
            RecordError::MissingId => "sts.record.missing-id",
            RecordError::DuplicateId => "sts.record.duplicate-id",
            RecordError::InvalidId { .. } => "sts.record.invalid-id",
        }
    }
    fn severity(&self) -> Severity {
        Severity::Error
    }
    fn rfc(&self) -> RfcRef {
        S3_1
    }
    fn location(&self) -> Location {
        match self {
            RecordError::MissingId | RecordError::DuplicateId | RecordError::InvalidId { .. } => {
                Location::Field { field: "id".into() }
            }
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
            RecordError::NotStsRecord => "start the record with \"v=STSv1;\" exactly (case-sensitive)".into(),
            RecordError::NotAscii { .. } => "use only US-ASCII characters in the record".into(),
            RecordError::MissingDelimiter => "write \"v=STSv1; id=...\"".into(),
            RecordError::EmptyField { .. } => "remove the extra \";\"".into(),
            RecordError::FieldWithoutValue { .. } | RecordError::InvalidFieldName { .. } => {
                "fields are name=value pairs separated by \";\", e.g. \"v=STSv1; id=20240101T000000\"".into()
            }
            RecordError::InvalidFieldValue { .. } => {
                "extension values may not contain spaces, \";\" or \"=\"".into()
            }
            RecordError::MissingId => "add \"id=\" with 1 to 32 letters and digits, e.g. a timestamp like 20250101000000".into(),
            RecordError::DuplicateId => "keep exactly one \"id=\" field".into(),
            RecordError::InvalidId { .. } => {
                "use 1 to 32 letters and digits only (no dashes, dots or spaces), e.g. 20250101000000".into()
            }
        }
    }
}

/// Something allowed but worth knowing about a valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordWarning {
    /// An extension field, which senders ignore.
    UnknownField {
        /// Its name.
        name: String,
    },
    /// The record ends in whitespace without a final `;` (`"v=STSv1; id=1 "`): outside the
    /// ABNF, and some senders reject the record (an error for owners, see
    /// [`crate::interop`]).
    TrailingWhitespace,
}

impl fmt::Display for RecordWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordWarning::UnknownField { name } => {
                write!(f, "unknown field \"{name}\" is ignored by senders")
            }
            RecordWarning::TrailingWhitespace => {
                let what = "the record ends in whitespace without a final \";\", which the RFC 8461 §3.1 ABNF does not allow";
                match crate::interop::rejected_by_text("txt-trailing-whitespace-sts") {
                    Some(who) => write!(
                        f,
                        "{what}; {who} the record, so those senders apply no MTA-STS (docs/interop.md)"
                    ),
                    None => f.write_str(what),
                }
            }
        }
    }
}

impl Diagnostic for RecordWarning {
    fn code(&self) -> &'static str {
        match self {
            RecordWarning::UnknownField { .. } => "sts.record.unknown-field",
            RecordWarning::TrailingWhitespace => "sts.record.trailing-whitespace",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            RecordWarning::UnknownField { .. } => Severity::Warning,
            RecordWarning::TrailingWhitespace => Severity::Error,
        }
    }
    fn rfc(&self) -> RfcRef {
        S3_1
    }
    fn location(&self) -> Location {
        match self {
            RecordWarning::UnknownField { name } => Location::Field {
                field: name.clone(),
            },
            RecordWarning::TrailingWhitespace => Location::Whole,
        }
    }
    fn hint(&self) -> String {
        match self {
            RecordWarning::UnknownField { .. } => {
                "remove it unless you rely on an extension (field names are case-sensitive: \"id\", not \"ID\")".into()
            }
            RecordWarning::TrailingWhitespace => {
                "remove the trailing whitespace, or end the record with \";\"".into()
            }
        }
    }
}

/// Whether a TXT record (joined) is an MTA-STS record at all: begins with `v=STSv1` followed
/// by the delimiter. Records for which this is false are discarded before counting (§3.1).
pub fn is_sts_record(text: &[u8]) -> bool {
    txt::has_version(text, STS_VERSION)
}

impl StsRecord {
    /// Parses one record (its character-strings already joined).
    ///
    /// Returns [`RecordError::NotStsRecord`] for a record of another kind (the three-way
    /// distinction a sender needs for the §3.1 RRset rule).
    pub fn parse(text: &[u8]) -> Result<StsRecord, RecordError> {
        Self::parse_with_warnings(text).map(|(r, _)| r)
    }

    /// Parses one record, also returning what a linter should mention.
    pub fn parse_with_warnings(
        text: &[u8],
    ) -> Result<(StsRecord, Vec<RecordWarning>), RecordError> {
        if !is_sts_record(text) {
            return Err(RecordError::NotStsRecord);
        }
        let fields = txt::parse_record(text, STS_VERSION, "id").map_err(RecordError::from)?;
        let id = match fields.required.as_slice() {
            [] => return Err(RecordError::MissingId),
            [id] => *id,
            _ => return Err(RecordError::DuplicateId),
        };
        if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(RecordError::InvalidId {
                value: id.to_string(),
            });
        }
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
        let extensions = fields
            .extensions
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok((
            StsRecord {
                id: id.to_string(),
                extensions,
            },
            warnings,
        ))
    }
}

txt::impl_from_field_problem!(RecordError);

impl fmt::Display for StsRecord {
    /// The canonical form: `v=STSv1; id=...;` plus extensions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STS_VERSION}; id={};", self.id)?;
        for (k, v) in &self.extensions {
            write!(f, " {k}={v};")?;
        }
        Ok(())
    }
}

/// Why a TXT RRset yields no MTA-STS record (RFC 8461 §3.1). In every case the sender treats
/// the domain as having no policy (but keeps applying a cached one, §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectError {
    /// No record begins with `v=STSv1`.
    NoRecord,
    /// More than one record begins with `v=STSv1`.
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
            SelectError::NoRecord => f.write_str("no TXT record begins with \"v=STSv1\""),
            SelectError::MultipleRecords { count } => {
                write!(
                    f,
                    "{count} TXT records begin with \"v=STSv1\"; exactly one is allowed"
                )
            }
            SelectError::Invalid { error, .. } => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for SelectError {}

impl Diagnostic for SelectError {
    fn code(&self) -> &'static str {
        match self {
            SelectError::NoRecord => "sts.record.none",
            SelectError::MultipleRecords { .. } => "sts.record.multiple",
            SelectError::Invalid { error, .. } => error.code(),
        }
    }
    fn severity(&self) -> Severity {
        Severity::Error
    }
    fn rfc(&self) -> RfcRef {
        S3_1
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
                "publish one TXT record at _mta-sts.<domain>: \"v=STSv1; id=20250101000000;\""
                    .into()
            }
            SelectError::MultipleRecords { .. } => {
                "delete all but one v=STSv1 record: with several, senders ignore MTA-STS entirely"
                    .into()
            }
            SelectError::Invalid { error, .. } => error.hint(),
        }
    }
}

/// Applies the RFC 8461 §3.1 RRset rule: each TXT record's strings are joined; records not
/// beginning with `v=STSv1` are discarded; exactly one must remain, and it must be valid.
///
/// `rrset` is the TXT answer as resolved: one entry per record, each a list of
/// character-strings.
pub fn select_sts_record<R, S>(rrset: &[R]) -> Result<StsRecord, SelectError>
where
    R: AsRef<[S]>,
    S: AsRef<[u8]>,
{
    select_sts_record_linted(rrset).map(|(_, r, _)| r)
}

/// As [`select_sts_record`], also returning the selected record's index in the RRset and what
/// a linter should mention about it (one RRset rule for senders and for owners).
pub fn select_sts_record_linted<R, S>(
    rrset: &[R],
) -> Result<(usize, StsRecord, Vec<RecordWarning>), SelectError>
where
    R: AsRef<[S]>,
    S: AsRef<[u8]>,
{
    match txt::select_one(rrset, is_sts_record) {
        Err(txt::Count::None) => Err(SelectError::NoRecord),
        Err(txt::Count::Multiple(count)) => Err(SelectError::MultipleRecords { count }),
        Ok((index, text)) => StsRecord::parse_with_warnings(&text)
            .map(|(r, w)| (index, r, w))
            .map_err(|error| SelectError::Invalid { index, error }),
    }
}
