//! Finding the report in the bytes it arrived as (RFC 8460 §5): plain JSON, gzip-compressed
//! JSON (`.json.gz`, §5.2), or an e-mail (§5.3).
//!
//! The kind is told from the content, never from a file name: gzip starts with `1f 8b`, JSON
//! with `{` (or `[`) after optional whitespace and byte order mark, anything else is read as an
//! e-mail. In an e-mail, the report is the first `application/tlsrpt+gzip` part, else the first
//! `application/tlsrpt+json` part, else the first `application/tlsrpt` part, else the first
//! attachment named `*.json` or `*.json.gz` whatever its media type; its content is again
//! sniffed for gzip.
//!
//! [`parse_payload`] goes on to read the report and compares the e-mail's metadata (the
//! `TLS-Report-Domain` and `TLS-Report-Submitter` headers, the subject, the attachment's §5.1
//! filename) with the report body. Disagreements are findings; the body wins (§5.6).
//!
//! Everything here is bounded by [`ReportLimits`]: the input size, and the size of the
//! decompressed JSON, which is capped while decompressing.

use crate::diag::{Diagnostic, Finding, Location, Severity};
use crate::rfc::RfcRef;
use crate::tlsrpt::filename::{self, FilenameError, FilenameMismatch, ReportFilename, same_domain};
use crate::tlsrpt::report::{
    ParsedReport, Report, ReportError, ReportFinding, ReportLimits, parse_report,
};
use flate2::read::MultiGzDecoder;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use serde::Serialize;
use std::borrow::Cow;
use std::io::Read;

/// The gzip magic number (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How deep to look into e-mails attached to e-mails (forwarded reports).
const MAX_NESTED_MESSAGES: usize = 3;

/// The form the input came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadKind {
    /// Plain JSON.
    Json,
    /// gzip-compressed JSON.
    Gzip,
    /// An e-mail carrying the report.
    Email,
}

/// Tells the kind of input from its first bytes.
pub fn detect(bytes: &[u8]) -> PayloadKind {
    if bytes.starts_with(&GZIP_MAGIC) {
        return PayloadKind::Gzip;
    }
    let rest = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match rest.trim_ascii_start().first() {
        Some(b'{' | b'[') => PayloadKind::Json,
        _ => PayloadKind::Email,
    }
}

/// What an e-mail said about the report it carried.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EmailMeta {
    /// The `TLS-Report-Domain` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_report_domain: Option<String>,
    /// The `TLS-Report-Submitter` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_report_submitter: Option<String>,
    /// The `Subject` header, unfolded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The report part's file name, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The report part's media type, e.g. `application/tlsrpt+gzip`.
    pub content_type: String,
}

/// Where a report came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Source {
    /// The outer form of the input.
    pub kind: PayloadKind,
    /// Whether the JSON was gzip-compressed (on its own or inside the e-mail).
    pub gzip: bool,
    /// The e-mail's metadata, for e-mail input.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailMeta>,
}

/// The report JSON found in the input, before it is parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// Where it came from.
    pub source: Source,
    /// The JSON bytes, decompressed.
    pub json: Vec<u8>,
    /// Findings about the envelope (media types, headers).
    pub findings: Vec<PayloadFinding>,
}

/// Why no report JSON could be taken out of the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The input is larger than [`ReportLimits::max_input_bytes`].
    #[error("the input is larger than the limit of {limit} bytes")]
    InputTooLarge {
        /// Its size (a caller that reads at most `limit + 1` bytes passes that).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("the gzip data is corrupt: {reason}")]
    GzipCorrupt {
        /// The decompressor's description.
        reason: String,
    },
    /// The decompressed JSON would be larger than [`ReportLimits::max_decompressed_bytes`].
    #[error(
        "the gzip data decompresses to more than the limit of {limit} bytes (max_decompressed_bytes); inflating stopped there"
    )]
    DecompressedTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The input is neither JSON, gzip nor an e-mail message.
    #[error("neither JSON, gzip nor an e-mail message")]
    Unrecognised,
    /// The report part says `Content-Transfer-Encoding: base64` but is not valid base64.
    #[error("the report part of the e-mail is not valid base64")]
    BadBase64,
    /// An e-mail without a report part.
    #[error(
        "the e-mail has no report part (application/tlsrpt+gzip, application/tlsrpt+json, or a .json/.json.gz attachment)"
    )]
    NoReportPart,
    /// The JSON is not a report.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl Diagnostic for PayloadError {
    fn code(&self) -> &'static str {
        match self {
            PayloadError::InputTooLarge { .. } => "tlsrpt.payload.too-large",
            PayloadError::GzipCorrupt { .. } => "tlsrpt.payload.gzip-corrupt",
            PayloadError::DecompressedTooLarge { .. } => "tlsrpt.payload.decompressed-too-large",
            PayloadError::Unrecognised => "tlsrpt.payload.unrecognised",
            PayloadError::NoReportPart => "tlsrpt.payload.no-report-part",
            PayloadError::BadBase64 => "tlsrpt.payload.bad-base64",
            PayloadError::Report(e) => e.code(),
        }
    }

    fn severity(&self) -> Severity {
        Severity::Error
    }

    fn rfc(&self) -> RfcRef {
        match self {
            PayloadError::InputTooLarge { .. }
            | PayloadError::GzipCorrupt { .. }
            | PayloadError::DecompressedTooLarge { .. } => RfcRef::tlsrpt("5.2"),
            PayloadError::Unrecognised => RfcRef::tlsrpt("5"),
            PayloadError::NoReportPart | PayloadError::BadBase64 => RfcRef::tlsrpt("5.3"),
            PayloadError::Report(e) => e.rfc(),
        }
    }

    fn location(&self) -> Location {
        match self {
            PayloadError::Report(e) => e.location(),
            _ => Location::Whole,
        }
    }

    fn hint(&self) -> String {
        match self {
            PayloadError::InputTooLarge { .. } | PayloadError::DecompressedTooLarge { .. } => {
                "raise the limit only if you trust the sender of such large reports".into()
            }
            PayloadError::GzipCorrupt { .. } => {
                "the file was truncated or damaged on the way; ask the sender for the report again"
                    .into()
            }
            PayloadError::Unrecognised => {
                "give a report as .json, .json.gz or the e-mail (.eml) that carried it".into()
            }
            PayloadError::BadBase64 => {
                "the message was damaged on the way (or is not a report); ask the sender for the report again".into()
            }
            PayloadError::NoReportPart => {
                "check that this e-mail is a TLS-RPT report (multipart/report; report-type=\"tlsrpt\")"
                    .into()
            }
            PayloadError::Report(e) => e.hint(),
        }
    }
}

/// Something unusual about the way a report was delivered (RFC 8460 §5).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadFinding {
    /// The e-mail is not `multipart/report`.
    #[error("the e-mail is {content_type}, not multipart/report")]
    NotMultipartReport {
        /// Its media type.
        content_type: String,
    },
    /// A `multipart/report` whose `report-type` is not `tlsrpt`.
    #[error("multipart/report has report-type {value:?}, not \"tlsrpt\"")]
    WrongReportType {
        /// The parameter's value (empty if absent).
        value: String,
    },
    /// The report part is `application/tlsrpt` without `+json` or `+gzip`.
    #[error(
        "the report part is application/tlsrpt; RFC 8460 registers application/tlsrpt+json and application/tlsrpt+gzip"
    )]
    BareTlsrptMediaType,
    /// The report was found only by its attachment name.
    #[error("the report part is {content_type}, found by its file name only")]
    NotTlsrptMediaType {
        /// Its media type.
        content_type: String,
    },
    /// The media type says gzip and the content is not, or the other way round.
    #[error("the report part is {content_type} but its content is {}", if *.gzip { "gzip" } else { "plain JSON" })]
    CompressionMismatch {
        /// The media type.
        content_type: String,
        /// Whether the content is gzip.
        gzip: bool,
    },
    /// More than one report part; only the first was read.
    #[error("the e-mail has {count} report parts; only the first was read")]
    MultipleReportParts {
        /// How many.
        count: usize,
    },
    /// A header that §5.3 requires is missing.
    #[error("the {name} header is missing")]
    MissingHeader {
        /// The header.
        name: &'static str,
    },
    /// The subject is not `Report Domain: ... Submitter: ... Report-ID: ...`.
    #[error(
        "the subject is not \"Report Domain: <domain> Submitter: <submitter> Report-ID: <id>\""
    )]
    SubjectNotStandard {
        /// The subject.
        subject: String,
    },
    /// A domain in the metadata is none of the report's policy domains.
    #[error("{source_name} names domain {value:?}, the report {body:?}")]
    DomainDisagrees {
        /// Which metadata: `TLS-Report-Domain`, `Subject`.
        source_name: &'static str,
        /// The metadata's domain.
        value: String,
        /// The report's policy domain (the first one).
        body: String,
    },
    /// The submitter named in the subject or the filename is not the `TLS-Report-Submitter`.
    #[error("{source_name} names submitter {value:?}, TLS-Report-Submitter {header:?}")]
    SubmitterDisagrees {
        /// Which metadata: `Subject`, `filename`.
        source_name: &'static str,
        /// Its submitter.
        value: String,
        /// The header's.
        header: String,
    },
    /// The attachment name is not a §5.1 filename.
    #[error("file name {name:?} is not an RFC 8460 report filename: {error}")]
    FilenameInvalid {
        /// The name.
        name: String,
        /// Why.
        error: FilenameError,
    },
    /// The filename's extension says gzip and the content is not, or the other way round.
    #[error("file name {name:?} says {}, the content is {}", if *.gzip { "plain JSON" } else { "gzip" }, if *.gzip { "gzip" } else { "plain JSON" })]
    FilenameExtensionMismatch {
        /// The name.
        name: String,
        /// Whether the content is gzip.
        gzip: bool,
    },
    /// The filename disagrees with the report.
    #[error(transparent)]
    Filename(FilenameMismatch),
}

impl Diagnostic for PayloadFinding {
    fn code(&self) -> &'static str {
        match self {
            PayloadFinding::NotMultipartReport { .. } => "tlsrpt.email.not-multipart-report",
            PayloadFinding::WrongReportType { .. } => "tlsrpt.email.wrong-report-type",
            PayloadFinding::BareTlsrptMediaType => "tlsrpt.email.bare-media-type",
            PayloadFinding::NotTlsrptMediaType { .. } => "tlsrpt.email.not-tlsrpt-media-type",
            PayloadFinding::CompressionMismatch { .. } => "tlsrpt.email.compression-mismatch",
            PayloadFinding::MultipleReportParts { .. } => "tlsrpt.email.multiple-report-parts",
            PayloadFinding::MissingHeader { .. } => "tlsrpt.email.missing-header",
            PayloadFinding::SubjectNotStandard { .. } => "tlsrpt.email.subject-not-standard",
            PayloadFinding::DomainDisagrees { .. } => "tlsrpt.email.domain-mismatch",
            PayloadFinding::SubmitterDisagrees { .. } => "tlsrpt.email.submitter-mismatch",
            PayloadFinding::FilenameInvalid { .. } => "tlsrpt.filename.invalid",
            PayloadFinding::FilenameExtensionMismatch { .. } => {
                "tlsrpt.filename.extension-mismatch"
            }
            PayloadFinding::Filename(m) => m.code(),
        }
    }

    fn severity(&self) -> Severity {
        match self {
            PayloadFinding::BareTlsrptMediaType | PayloadFinding::SubjectNotStandard { .. } => {
                Severity::Info
            }
            _ => Severity::Warning,
        }
    }

    fn rfc(&self) -> RfcRef {
        match self {
            PayloadFinding::DomainDisagrees { .. } | PayloadFinding::SubmitterDisagrees { .. } => {
                RfcRef::tlsrpt("5.6")
            }
            PayloadFinding::FilenameInvalid { .. }
            | PayloadFinding::FilenameExtensionMismatch { .. } => RfcRef::tlsrpt("5.1"),
            PayloadFinding::Filename(m) => m.rfc(),
            _ => RfcRef::tlsrpt("5.3"),
        }
    }

    fn location(&self) -> Location {
        let field = match self {
            PayloadFinding::NotMultipartReport { .. } | PayloadFinding::WrongReportType { .. } => {
                "Content-Type"
            }
            PayloadFinding::MissingHeader { name } => name,
            PayloadFinding::SubjectNotStandard { .. } => "Subject",
            PayloadFinding::DomainDisagrees { source_name, .. }
            | PayloadFinding::SubmitterDisagrees { source_name, .. } => source_name,
            PayloadFinding::FilenameInvalid { .. }
            | PayloadFinding::FilenameExtensionMismatch { .. } => "filename",
            PayloadFinding::Filename(m) => return m.location(),
            PayloadFinding::BareTlsrptMediaType
            | PayloadFinding::NotTlsrptMediaType { .. }
            | PayloadFinding::CompressionMismatch { .. }
            | PayloadFinding::MultipleReportParts { .. } => "report part",
        };
        Location::Field {
            field: field.to_string(),
        }
    }

    fn hint(&self) -> String {
        match self {
            PayloadFinding::DomainDisagrees { .. }
            | PayloadFinding::SubmitterDisagrees { .. }
            | PayloadFinding::FilenameExtensionMismatch { .. } => {
                "the report body wins (RFC 8460 §5.6); the sender's e-mail metadata is inconsistent"
                    .into()
            }
            PayloadFinding::Filename(m) => m.hint(),
            PayloadFinding::MultipleReportParts { .. } => {
                "read the other parts separately if they are reports too".into()
            }
            PayloadFinding::FilenameInvalid { error, .. } => error.hint(),
            _ => "nothing to fix on your side: the sender's e-mail does not follow RFC 8460 §5.3 exactly; the report was read anyway".into(),
        }
    }
}

/// A report read from its delivery form, with everything unusual about both.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedReport {
    /// Where it came from.
    pub source: Source,
    /// The report.
    pub report: Report,
    /// Findings about the report JSON.
    pub report_findings: Vec<ReportFinding>,
    /// Findings about the delivery: e-mail structure, headers, filename.
    pub payload_findings: Vec<PayloadFinding>,
}

impl ReceivedReport {
    /// All findings rendered: delivery first, then the report's.
    pub fn findings(&self) -> Vec<Finding> {
        self.payload_findings
            .iter()
            .map(Finding::from_diagnostic)
            .chain(self.report_findings.iter().map(Finding::from_diagnostic))
            .collect()
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.payload_findings
            .iter()
            .map(Diagnostic::severity)
            .chain(self.report_findings.iter().map(Diagnostic::severity))
            .any(|s| s == Severity::Error)
    }

    /// Compares a file name (e.g. the name of the file the report was read from) with the
    /// report, as for an e-mail attachment: a name that is not a §5.1 filename, an extension that
    /// disagrees with the compression, or fields that disagree with the body become findings.
    pub fn check_filename(&mut self, name: &str) {
        let findings = filename_findings(name, self.source.gzip, &self.report);
        self.payload_findings.extend(findings);
    }
}

fn filename_findings(name: &str, gzip: bool, report: &Report) -> Vec<PayloadFinding> {
    // A folded header can leave whitespace inside the name; no §5.1 character is whitespace.
    let compact: String = name.chars().filter(|c| !c.is_whitespace()).collect();
    match ReportFilename::parse(&compact) {
        Err(error) => vec![PayloadFinding::FilenameInvalid {
            name: name.to_string(),
            error,
        }],
        Ok(parsed) => {
            let mut out = Vec::new();
            if parsed.extension.is_gzip() != gzip {
                out.push(PayloadFinding::FilenameExtensionMismatch {
                    name: name.to_string(),
                    gzip,
                });
            }
            out.extend(
                filename::check(&parsed, report)
                    .into_iter()
                    .map(PayloadFinding::Filename),
            );
            out
        }
    }
}

/// Decompresses gzip data (all members), stopping with an error as soon as the output would
/// exceed `limit` bytes.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, PayloadError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| PayloadError::GzipCorrupt {
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(PayloadError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

/// Takes the report JSON out of the input (see the module documentation).
pub fn extract(bytes: &[u8], limits: &ReportLimits) -> Result<Extracted, PayloadError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(PayloadError::InputTooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    match detect(bytes) {
        PayloadKind::Gzip => Ok(Extracted {
            source: Source {
                kind: PayloadKind::Gzip,
                gzip: true,
                email: None,
            },
            json: gunzip(bytes, limits.max_decompressed_bytes)?,
            findings: Vec::new(),
        }),
        PayloadKind::Json => Ok(Extracted {
            source: Source {
                kind: PayloadKind::Json,
                gzip: false,
                email: None,
            },
            json: bytes.to_vec(),
            findings: Vec::new(),
        }),
        PayloadKind::Email => {
            if !starts_like_email(bytes) {
                return Err(PayloadError::Unrecognised);
            }
            let message = MessageParser::default()
                .parse(bytes)
                .filter(|m| !m.headers().is_empty())
                .ok_or(PayloadError::Unrecognised)?;
            extract_email(&message, limits, 0)
        }
    }
}

/// Whether the input begins as an e-mail does: with a header field (`Name:`, the name being
/// printable ASCII without a colon, RFC 5322 §2.2) or an mbox `From ` line.
fn starts_like_email(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"From ") {
        return true;
    }
    let name_len = bytes
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name_len > 0 && bytes.get(name_len) == Some(&b':')
}

/// How good a candidate for the report part is (lower is better).
fn rank(part: &MessagePart<'_>) -> Option<u8> {
    if part.is_multipart() || part.is_message() {
        return None;
    }
    if let Some(ct) = part.content_type()
        && ct.c_type.eq_ignore_ascii_case("application")
    {
        match ct
            .c_subtype
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("tlsrpt+gzip") => return Some(0),
            Some("tlsrpt+json") => return Some(1),
            Some("tlsrpt") => return Some(2),
            _ => {}
        }
    }
    let name = part.attachment_name()?.trim().to_ascii_lowercase();
    (name.ends_with(".json") || name.ends_with(".json.gz")).then_some(3)
}

fn media_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        },
        None => "text/plain".into(),
    }
}

/// A part's decoded content. mail-parser leaves a base64 part undecoded when the message ends
/// without its closing boundary (seen in the wild); such a part is decoded here.
/// A part that says base64 but is not valid base64 is refused as such, rather than read as
/// JSON and reported as "not JSON".
fn part_contents<'p>(part: &'p MessagePart<'_>) -> Result<Cow<'p, [u8]>, PayloadError> {
    let contents = part.contents();
    let says_base64 = part
        .content_transfer_encoding()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    if says_base64 && part.encoding != Encoding::Base64 {
        return match base64_decode(contents) {
            Some(decoded) => Ok(Cow::Owned(decoded)),
            None => Err(PayloadError::BadBase64),
        };
    }
    Ok(Cow::Borrowed(contents))
}

/// A header's value as text, found without regard to the case of its name.
fn header_text(message: &Message<'_>, name: &str) -> Option<String> {
    let header = message
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))?;
    let value = header.value();
    let text = value
        .as_text()
        .map(str::to_string)
        .or_else(|| value.as_text_list().map(|l| l.join(", ")))?;
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

fn extract_email(
    message: &Message<'_>,
    limits: &ReportLimits,
    depth: usize,
) -> Result<Extracted, PayloadError> {
    let mut candidates: Vec<(u8, &MessagePart<'_>)> = message
        .parts
        .iter()
        .filter_map(|p| rank(p).map(|r| (r, p)))
        .collect();
    candidates.sort_by_key(|(r, _)| *r);
    let Some(&(rank, part)) = candidates.first() else {
        if depth < MAX_NESTED_MESSAGES {
            for part in &message.parts {
                if let PartType::Message(inner) = &part.body
                    && let Ok(found) = extract_email(inner, limits, depth + 1)
                {
                    return Ok(found);
                }
            }
        }
        return Err(PayloadError::NoReportPart);
    };

    let mut findings = Vec::new();
    let root_type = message.root_part().content_type();
    let is_report = root_type.is_some_and(|ct| {
        ct.c_type.eq_ignore_ascii_case("multipart")
            && ct
                .c_subtype
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    if !is_report {
        findings.push(PayloadFinding::NotMultipartReport {
            content_type: media_type(message.root_part()),
        });
    } else {
        let report_type = root_type
            .and_then(|ct| ct.attribute("report-type"))
            .unwrap_or("");
        if !report_type.eq_ignore_ascii_case("tlsrpt") {
            findings.push(PayloadFinding::WrongReportType {
                value: report_type.to_string(),
            });
        }
    }
    if candidates.len() > 1 {
        findings.push(PayloadFinding::MultipleReportParts {
            count: candidates.len(),
        });
    }

    let content_type = media_type(part);
    let contents = part_contents(part)?;
    let contents = contents.as_ref();
    let gzip = contents.starts_with(&GZIP_MAGIC);
    match rank {
        0 | 1 if gzip != (rank == 0) => findings.push(PayloadFinding::CompressionMismatch {
            content_type: content_type.clone(),
            gzip,
        }),
        2 => findings.push(PayloadFinding::BareTlsrptMediaType),
        3 => findings.push(PayloadFinding::NotTlsrptMediaType {
            content_type: content_type.clone(),
        }),
        _ => {}
    }
    let json = if gzip {
        gunzip(contents, limits.max_decompressed_bytes)?
    } else {
        contents.to_vec()
    };

    let meta = EmailMeta {
        tls_report_domain: header_text(message, "TLS-Report-Domain"),
        tls_report_submitter: header_text(message, "TLS-Report-Submitter"),
        subject: message
            .subject()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
        filename: part.attachment_name().map(str::to_string),
        content_type,
    };
    for (name, value) in [
        ("TLS-Report-Domain", &meta.tls_report_domain),
        ("TLS-Report-Submitter", &meta.tls_report_submitter),
    ] {
        if value.is_none() {
            findings.push(PayloadFinding::MissingHeader { name });
        }
    }
    Ok(Extracted {
        source: Source {
            kind: PayloadKind::Email,
            gzip,
            email: Some(meta),
        },
        json,
        findings,
    })
}

/// The parts of a §5.3 subject: `Report Domain: <d> Submitter: <s> Report-ID: <id>`.
struct Subject<'a> {
    domain: &'a str,
    submitter: &'a str,
}

fn parse_subject(subject: &str) -> Option<Subject<'_>> {
    let words: Vec<&str> = subject.split_whitespace().collect();
    match words.as_slice() {
        [
            report,
            domain_label,
            domain,
            submitter_label,
            submitter,
            id_label,
            _id,
            ..,
        ] if report.eq_ignore_ascii_case("report")
            && domain_label.eq_ignore_ascii_case("domain:")
            && submitter_label.eq_ignore_ascii_case("submitter:")
            && id_label.eq_ignore_ascii_case("report-id:") =>
        {
            Some(Subject { domain, submitter })
        }
        _ => None,
    }
}

/// Compares the e-mail's metadata with the report body (§5.6: the body wins).
fn email_findings(meta: &EmailMeta, gzip: bool, report: &Report) -> Vec<PayloadFinding> {
    let mut out = Vec::new();
    let domains = report.policy_domains();
    let disagrees = |value: &str| {
        domains
            .first()
            .filter(|_| !domains.iter().any(|d| same_domain(d, value)))
            .map(|first| (*first).to_string())
    };
    if let Some(header) = &meta.tls_report_domain
        && let Some(body) = disagrees(header)
    {
        out.push(PayloadFinding::DomainDisagrees {
            source_name: "TLS-Report-Domain",
            value: header.clone(),
            body,
        });
    }
    if let Some(subject) = &meta.subject {
        match parse_subject(subject) {
            None => out.push(PayloadFinding::SubjectNotStandard {
                subject: subject.clone(),
            }),
            Some(parts) => {
                if let Some(body) = disagrees(parts.domain) {
                    out.push(PayloadFinding::DomainDisagrees {
                        source_name: "Subject",
                        value: parts.domain.to_string(),
                        body,
                    });
                }
                if let Some(header) = &meta.tls_report_submitter
                    && !same_domain(parts.submitter, header)
                {
                    out.push(PayloadFinding::SubmitterDisagrees {
                        source_name: "Subject",
                        value: parts.submitter.to_string(),
                        header: header.clone(),
                    });
                }
            }
        }
    }
    if let Some(name) = &meta.filename {
        out.extend(filename_findings(name, gzip, report));
        let compact: String = name.chars().filter(|c| !c.is_whitespace()).collect();
        if let (Ok(parsed), Some(header)) = (
            ReportFilename::parse(&compact),
            meta.tls_report_submitter.as_ref(),
        ) && !same_domain(&parsed.sender, header)
        {
            out.push(PayloadFinding::SubmitterDisagrees {
                source_name: "filename",
                value: parsed.sender,
                header: header.clone(),
            });
        }
    }
    out
}

/// Reads a report from its delivery form: detects the kind, extracts and decompresses the JSON,
/// parses it, and compares any e-mail metadata with the body.
pub fn parse_payload(bytes: &[u8], limits: &ReportLimits) -> Result<ReceivedReport, PayloadError> {
    let Extracted {
        source,
        json,
        mut findings,
    } = extract(bytes, limits)?;
    let ParsedReport {
        report,
        findings: report_findings,
    } = parse_report(&json, limits)?;
    if let Some(meta) = &source.email {
        findings.extend(email_findings(meta, source.gzip, &report));
    }
    Ok(ReceivedReport {
        source,
        report,
        report_findings,
        payload_findings: findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_content() {
        assert_eq!(detect(b"\x1f\x8b\x08\x00"), PayloadKind::Gzip);
        assert_eq!(detect(b"\xEF\xBB\xBF \r\n {}"), PayloadKind::Json);
        assert_eq!(detect(b"From: a@example.com\r\n"), PayloadKind::Email);
        assert_eq!(detect(b""), PayloadKind::Email);
    }

    #[test]
    fn gunzip_caps_output() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        let wrote = enc.write_all(&[b' '; 1000]);
        assert!(wrote.is_ok());
        let gz = enc.finish().unwrap_or_default();
        assert_eq!(gunzip(&gz, 1000).map(|v| v.len()), Ok(1000));
        assert_eq!(
            gunzip(&gz, 999),
            Err(PayloadError::DecompressedTooLarge { limit: 999 })
        );
    }

    #[test]
    fn subject_parts() {
        let s = parse_subject(
            "Report Domain: example.net Submitter: mail.sender.example.com Report-ID: <a@b>",
        );
        assert_eq!(
            s.map(|s| (s.domain, s.submitter)),
            Some(("example.net", "mail.sender.example.com"))
        );
        assert!(parse_subject("TLS report for example.net").is_none());
    }
}
