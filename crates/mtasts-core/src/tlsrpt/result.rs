//! RFC 8460 §4.3 result types: what a sending MTA reports for each failed session, and the
//! `failure-reason-code` beside it. Every decision the core makes about a failed delivery or
//! policy fetch ([`crate::sts::apply`], [`crate::sts::fetch::PolicyFetchError`]) carries one,
//! so that what is decided is what is reported and counted.
//!
//! <https://www.rfc-editor.org/rfc/rfc8460#section-4.3>

use std::fmt;

/// `result-type` (RFC 8460 §4.3), in the RFC's order. Unknown values are kept verbatim in
/// [`ResultType::Other`] (the IANA registry can grow).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResultType {
    /// `starttls-not-supported` (§4.3.1).
    StarttlsNotSupported,
    /// `certificate-host-mismatch` (§4.3.1).
    CertificateHostMismatch,
    /// `certificate-expired` (§4.3.1).
    CertificateExpired,
    /// `certificate-not-trusted` (§4.3.1).
    CertificateNotTrusted,
    /// `validation-failure` (§4.3.1, §4.3.3).
    ValidationFailure,
    /// `tlsa-invalid` (§4.3.2.1).
    TlsaInvalid,
    /// `dnssec-invalid` (§4.3.2.1).
    DnssecInvalid,
    /// `dane-required` (§4.3.2.1).
    DaneRequired,
    /// `sts-policy-fetch-error` (§4.3.2.2).
    StsPolicyFetchError,
    /// `sts-policy-invalid` (§4.3.2.2).
    StsPolicyInvalid,
    /// `sts-webpki-invalid` (§4.3.2.2).
    StsWebpkiInvalid,
    /// Any other value, as sent.
    Other(String),
}

impl ResultType {
    /// The eleven result types RFC 8460 §4.3 defines, in its order.
    pub const KNOWN: [ResultType; 11] = [
        ResultType::StarttlsNotSupported,
        ResultType::CertificateHostMismatch,
        ResultType::CertificateExpired,
        ResultType::CertificateNotTrusted,
        ResultType::ValidationFailure,
        ResultType::TlsaInvalid,
        ResultType::DnssecInvalid,
        ResultType::DaneRequired,
        ResultType::StsPolicyFetchError,
        ResultType::StsPolicyInvalid,
        ResultType::StsWebpkiInvalid,
    ];

    /// Reads a `result-type` value; anything but the RFC values becomes `Other`.
    pub fn from_wire(s: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|k| k.as_str() == s)
            .cloned()
            .unwrap_or_else(|| ResultType::Other(s.to_string()))
    }

    /// The value as written in a report.
    pub fn as_str(&self) -> &str {
        match self {
            ResultType::StarttlsNotSupported => "starttls-not-supported",
            ResultType::CertificateHostMismatch => "certificate-host-mismatch",
            ResultType::CertificateExpired => "certificate-expired",
            ResultType::CertificateNotTrusted => "certificate-not-trusted",
            ResultType::ValidationFailure => "validation-failure",
            ResultType::TlsaInvalid => "tlsa-invalid",
            ResultType::DnssecInvalid => "dnssec-invalid",
            ResultType::DaneRequired => "dane-required",
            ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            ResultType::StsPolicyInvalid => "sts-policy-invalid",
            ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
            ResultType::Other(s) => s,
        }
    }

    /// The RFC 8460 section that defines it (`4.3` for unknown values).
    pub fn section(&self) -> &'static str {
        match self {
            ResultType::StarttlsNotSupported
            | ResultType::CertificateHostMismatch
            | ResultType::CertificateExpired
            | ResultType::CertificateNotTrusted
            | ResultType::ValidationFailure => "4.3.1",
            ResultType::TlsaInvalid | ResultType::DnssecInvalid | ResultType::DaneRequired => {
                "4.3.2.1"
            }
            ResultType::StsPolicyFetchError
            | ResultType::StsPolicyInvalid
            | ResultType::StsWebpkiInvalid => "4.3.2.2",
            ResultType::Other(_) => "4.3",
        }
    }

    /// Whether §4.3 asks the reporter to add a `failure-reason-code` to this result type
    /// (`certificate-not-trusted` and `validation-failure`: "SHOULD").
    pub fn wants_reason_code(&self) -> bool {
        matches!(
            self,
            ResultType::CertificateNotTrusted | ResultType::ValidationFailure
        )
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed session as TLS-RPT reports it: the result type and, where it helps, a
/// `failure-reason-code` (RFC 8460 §4.3: free text, "SHOULD" for `certificate-not-trusted`
/// and `validation-failure`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Failure {
    /// The `result-type`.
    pub result_type: ResultType,
    /// The `failure-reason-code`, a short stable token such as `mx-not-in-policy`.
    pub failure_reason_code: Option<&'static str>,
}

impl Failure {
    /// A failure of this type with no reason code.
    pub fn new(result_type: ResultType) -> Failure {
        Failure {
            result_type,
            failure_reason_code: None,
        }
    }

    /// A failure of this type with a reason code.
    pub fn with_reason(result_type: ResultType, code: &'static str) -> Failure {
        Failure {
            result_type,
            failure_reason_code: Some(code),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failure_reason_code {
            Some(code) => write!(f, "{} ({code})", self.result_type),
            None => write!(f, "{}", self.result_type),
        }
    }
}
