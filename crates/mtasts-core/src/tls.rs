//! What a TLS handshake showed, in the terms RFC 8461 decides by: the certificate verdict for
//! the expected name (§3.3 for the policy host, §4.2 for an MX host: a DNS-ID matching the
//! name, a chain to a trusted root, unexpired) and why a handshake did not complete (§7.2:
//! TLS 1.2 or later).
//!
//! The I/O edge (`mtasts-net`) turns the TLS library's errors into these values, with one
//! exhaustive match and no string sniffing; the core maps them to RFC 8460 result types.

use std::fmt;

use serde::Serialize;

use crate::tlsrpt::result::{Failure, ResultType};

/// The result of validating a certificate chain for a name (RFC 6125 matching, a chain to a
/// trusted root, within its validity period).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum CertVerdict {
    /// Valid for the name.
    Valid,
    /// Expired.
    Expired {
        /// When it expired (Unix seconds; RFC 3339 in JSON).
        #[serde(serialize_with = "crate::json::time")]
        not_after: i64,
    },
    /// Not valid yet.
    NotYetValid {
        /// When it becomes valid (Unix seconds; RFC 3339 in JSON).
        #[serde(serialize_with = "crate::json::time")]
        not_before: i64,
    },
    /// Chains to a trusted root but does not carry the name.
    NameMismatch {
        /// The name expected.
        expected: String,
        /// The names the certificate carries.
        presented: Vec<String>,
    },
    /// A self-signed leaf.
    SelfSigned,
    /// The chain ends at a CA that is not trusted.
    UntrustedCa {
        /// The untrusted issuer.
        issuer: String,
    },
    /// The server sent no intermediate and the leaf's issuer is not a trusted root.
    ChainIncomplete {
        /// The leaf's issuer, which the server should have sent.
        issuer: String,
    },
    /// Another problem (bad signature, unsupported algorithm, revoked...).
    Invalid {
        /// What the verifier said.
        reason: String,
    },
}

impl CertVerdict {
    /// Whether the certificate passes.
    pub fn is_valid(&self) -> bool {
        matches!(self, CertVerdict::Valid)
    }

    /// A short description, e.g. `expired`, `for another name`.
    pub fn describe(&self) -> &'static str {
        match self {
            CertVerdict::Valid => "valid",
            CertVerdict::Expired { .. } => "expired",
            CertVerdict::NotYetValid { .. } => "not yet valid",
            CertVerdict::NameMismatch { .. } => "for another name",
            CertVerdict::SelfSigned => "self-signed",
            CertVerdict::UntrustedCa { .. } => "from an untrusted CA",
            CertVerdict::ChainIncomplete { .. } => "chain incomplete",
            CertVerdict::Invalid { .. } => "invalid",
        }
    }

    /// How a sending MTA reports an MX certificate with this verdict (RFC 8460 §4.3.1), or
    /// `None` for a valid one.
    pub fn failure(&self) -> Option<Failure> {
        Some(match self {
            CertVerdict::Valid => return None,
            CertVerdict::Expired { .. } => Failure::new(ResultType::CertificateExpired),
            // §4.3.1 has no "not yet valid": a general validation failure, with the reason.
            CertVerdict::NotYetValid { .. } => {
                Failure::with_reason(ResultType::ValidationFailure, "certificate-not-yet-valid")
            }
            CertVerdict::NameMismatch { .. } => Failure::new(ResultType::CertificateHostMismatch),
            CertVerdict::SelfSigned => {
                Failure::with_reason(ResultType::CertificateNotTrusted, "self-signed")
            }
            CertVerdict::UntrustedCa { .. } => {
                Failure::with_reason(ResultType::CertificateNotTrusted, "untrusted-ca")
            }
            CertVerdict::ChainIncomplete { .. } => {
                Failure::with_reason(ResultType::CertificateNotTrusted, "chain-incomplete")
            }
            CertVerdict::Invalid { .. } => {
                Failure::with_reason(ResultType::CertificateNotTrusted, "invalid-certificate")
            }
        })
    }
}

impl fmt::Display for CertVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertVerdict::NameMismatch {
                expected,
                presented,
            } => write!(
                f,
                "the certificate names {} but not {expected}",
                if presented.is_empty() {
                    "nothing".to_owned()
                } else {
                    presented.join(", ")
                }
            ),
            CertVerdict::UntrustedCa { issuer } => {
                write!(
                    f,
                    "the certificate chains to {issuer}, which is not trusted"
                )
            }
            CertVerdict::ChainIncomplete { issuer } => write!(
                f,
                "only the leaf certificate was sent; its issuer {issuer} is not a trusted root"
            ),
            CertVerdict::Invalid { reason } => write!(f, "the certificate is invalid: {reason}"),
            other => write!(f, "the certificate is {}", other.describe()),
        }
    }
}

/// Why a TLS handshake did not complete (apart from the certificate, see [`CertVerdict`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HandshakeFailure {
    /// The server speaks only TLS older than 1.2, which RFC 8461 §7.2 forbids.
    VersionTooOld,
    /// The certificate did not validate and the client aborted (an enforcing client).
    Certificate {
        /// The verdict.
        verdict: CertVerdict,
    },
    /// The server sent a fatal alert, or another protocol error.
    Protocol {
        /// What the TLS library said.
        detail: String,
    },
    /// The connection closed or failed during the handshake.
    Io {
        /// What happened.
        detail: String,
    },
    /// No handshake in time.
    Timeout,
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeFailure::VersionTooOld => {
                f.write_str("TLS handshake failed: the server speaks only TLS older than 1.2")
            }
            HandshakeFailure::Certificate { verdict } => write!(f, "{verdict}"),
            HandshakeFailure::Protocol { detail } | HandshakeFailure::Io { detail } => {
                write!(f, "TLS handshake failed: {detail}")
            }
            HandshakeFailure::Timeout => f.write_str("TLS handshake timed out"),
        }
    }
}

impl HandshakeFailure {
    /// How a sending MTA reports it for an MX host (RFC 8460 §4.3.1).
    pub fn failure(&self) -> Failure {
        match self {
            HandshakeFailure::Certificate { verdict } => verdict
                .failure()
                .unwrap_or_else(|| Failure::new(ResultType::ValidationFailure)),
            HandshakeFailure::VersionTooOld => {
                Failure::with_reason(ResultType::ValidationFailure, "tls-version-too-old")
            }
            HandshakeFailure::Protocol { .. } => {
                Failure::with_reason(ResultType::ValidationFailure, "tls-handshake-failed")
            }
            HandshakeFailure::Io { .. } => Failure::with_reason(
                ResultType::ValidationFailure,
                "connection-closed-during-handshake",
            ),
            HandshakeFailure::Timeout => {
                Failure::with_reason(ResultType::ValidationFailure, "io-timeout-during-handshake")
            }
        }
    }
}
