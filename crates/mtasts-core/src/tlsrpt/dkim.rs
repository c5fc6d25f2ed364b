//! Whether a mailed report can be trusted (RFC 8460 §3): "Reports sent via SMTP MUST contain
//! a valid DomainKeys Identified Mail (DKIM) [RFC6376] signature by the reporting domain.
//! Reports lacking such a signature MUST be ignored by the recipient. DKIM signatures MUST
//! NOT use the "l=" attribute to limit the body length used in the signature. … The DKIM TXT
//! record SHOULD contain the appropriate service type declaration, "s=tlsrpt". If not
//! present, the receiving system MAY ignore reports lacking that service type."
//!
//! The cryptography is done at the edge (`mtasts-tlsrpt-receive`, with mail-auth); what each
//! signature's check returned comes here as [`SignatureCheck`]s, and [`judge`] decides:
//! verified by the reporting domain, or not, and why. The key record's service types are
//! read here too ([`key_services`]), as the verifier does not look at them.

use std::fmt;

use crate::diag::{Diagnostic, Location, Severity};
use crate::rfc::RfcRef;

const S3: RfcRef = RfcRef::tlsrpt("3");

/// The service types a DKIM key record declares (RFC 6376 §3.6.1, tag `s=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyServices {
    /// No `s=` tag, or `s=*`: every service, TLS-RPT included.
    All,
    /// `s=` names `tlsrpt` (RFC 8460 §3, the recommended declaration).
    Tlsrpt,
    /// `s=` names only other services (e.g. `email`): the key's owner did not declare it for
    /// TLS-RPT.
    Others(Vec<String>),
}

impl KeyServices {
    /// Whether the key is declared for TLS-RPT (`All` or `Tlsrpt`).
    pub fn covers_tlsrpt(&self) -> bool {
        !matches!(self, KeyServices::Others(_))
    }
}

/// Reads the `s=` tag of a DKIM key record (its character-strings joined). Tag names are
/// case-sensitive and values are a colon-separated list (RFC 6376 §3.6.1); unknown service
/// types are kept.
pub fn key_services(record: &[u8]) -> KeyServices {
    let text = String::from_utf8_lossy(record);
    for tag in text.split(';') {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        if name.trim() != "s" {
            continue;
        }
        let services: Vec<String> = value
            .split(':')
            .map(|s| s.split_whitespace().collect::<String>())
            .filter(|s| !s.is_empty())
            .collect();
        if services.iter().any(|s| s == "*") || services.is_empty() {
            return KeyServices::All;
        }
        if services.iter().any(|s| s.eq_ignore_ascii_case("tlsrpt")) {
            return KeyServices::Tlsrpt;
        }
        return KeyServices::Others(services);
    }
    KeyServices::All
}

/// What the verifier said of one signature (RFC 6376 §6.1 / RFC 8601 result names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureResult {
    /// The signature verifies.
    Pass,
    /// The signature does not verify (bad signature, body changed, key mismatch).
    Fail {
        /// Why, as the verifier said.
        reason: String,
    },
    /// The signature or its key can never verify (no key, revoked key, malformed tag).
    PermError {
        /// Why.
        reason: String,
    },
    /// The key could not be fetched now (timeout, SERVFAIL): worth retrying.
    TempError {
        /// Why.
        reason: String,
    },
}

/// One DKIM-Signature header field and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    /// `d=`, lower case, when the signature could be read.
    pub domain: Option<String>,
    /// `s=` (the selector), when the signature could be read.
    pub selector: Option<String>,
    /// The verifier's result.
    pub result: SignatureResult,
    /// Whether the signature has an `l=` tag (RFC 8460 §3: MUST NOT).
    pub length_limited: bool,
    /// The service types of the key, when its record was found.
    pub services: Option<KeyServices>,
}

/// What the receiver requires beyond a valid signature of the reporting domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DkimRequirements {
    /// Refuse keys not declared for TLS-RPT (`s=` without `tlsrpt` or `*`). RFC 8460 §3 allows
    /// it ("MAY ignore"), but the large reporters sign with their mail keys, so it is off by
    /// default.
    pub tlsrpt_service: bool,
}

/// A report that can be trusted: who signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// `d=` of the signature that verified.
    pub domain: String,
    /// Its selector.
    pub selector: String,
    /// Whether its key is declared for TLS-RPT.
    pub tlsrpt_service: bool,
}

/// Why a mailed report cannot be trusted: RFC 8460 §3 says to ignore it, so it is kept in
/// quarantine and left out of the statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DkimProblem {
    /// No DKIM-Signature header field.
    NoSignature,
    /// The only valid signatures use `l=`.
    LengthLimited {
        /// `d=` of one of them, when known.
        domain: Option<String>,
    },
    /// Valid signatures, but none by the reporting domain.
    NotReportingDomain {
        /// The domains that signed.
        signers: Vec<String>,
        /// The reporting domain (`TLS-Report-Submitter`).
        submitter: String,
    },
    /// The only valid signatures use keys declared for other services, and the receiver
    /// requires `s=tlsrpt`.
    KeyNotForTlsrpt {
        /// `d=` of the signature.
        domain: String,
        /// The services the key declares.
        services: Vec<String>,
    },
    /// The signature does not verify, or its key is missing or broken.
    Failed {
        /// `d=`, when known.
        domain: Option<String>,
        /// The verifier's reason.
        reason: String,
    },
    /// The key could not be fetched: the verification can be retried
    /// (`mtasts report quarantine retry`).
    Temporary {
        /// `d=`, when known.
        domain: Option<String>,
        /// The verifier's reason.
        reason: String,
    },
}

impl DkimProblem {
    /// Whether verifying again later may succeed (a DNS failure).
    pub fn retryable(&self) -> bool {
        matches!(self, DkimProblem::Temporary { .. })
    }

    /// How a problem ranks when several signatures fail differently: the one that says most
    /// about what to do is reported.
    fn rank(&self) -> u8 {
        match self {
            DkimProblem::NoSignature => 0,
            DkimProblem::Failed { .. } => 1,
            DkimProblem::LengthLimited { .. } => 2,
            DkimProblem::KeyNotForTlsrpt { .. } => 3,
            DkimProblem::NotReportingDomain { .. } => 4,
            DkimProblem::Temporary { .. } => 5,
        }
    }
}

fn by(domain: &Option<String>) -> String {
    domain
        .as_deref()
        .map(|d| format!(" by {d}"))
        .unwrap_or_default()
}

impl fmt::Display for DkimProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DkimProblem::NoSignature => f.write_str(
                "the report e-mail has no DKIM signature; RFC 8460 §3 says to ignore it",
            ),
            DkimProblem::LengthLimited { domain } => write!(
                f,
                "the DKIM signature{} limits the signed body with l=, which RFC 8460 §3 forbids",
                by(domain)
            ),
            DkimProblem::NotReportingDomain { signers, submitter } => write!(
                f,
                "signed by {}, not by the reporting domain {submitter} (TLS-Report-Submitter)",
                signers.join(", ")
            ),
            DkimProblem::KeyNotForTlsrpt { domain, services } => write!(
                f,
                "the DKIM key of {domain} is declared for s={} only, not s=tlsrpt",
                services.join(":")
            ),
            DkimProblem::Failed { domain, reason } => {
                write!(
                    f,
                    "the DKIM signature{} does not verify: {reason}",
                    by(domain)
                )
            }
            DkimProblem::Temporary { domain, reason } => write!(
                f,
                "the DKIM key{} could not be fetched: {reason}",
                by(domain)
                    .strip_prefix(" by ")
                    .map(|d| format!(" of {d}"))
                    .unwrap_or_default()
            ),
        }
    }
}

impl Diagnostic for DkimProblem {
    fn code(&self) -> &'static str {
        match self {
            DkimProblem::NoSignature => "dkim.none",
            DkimProblem::LengthLimited { .. } => "dkim.length-limit",
            DkimProblem::NotReportingDomain { .. } => "dkim.not-reporting-domain",
            DkimProblem::KeyNotForTlsrpt { .. } => "dkim.no-tlsrpt-service",
            DkimProblem::Failed { .. } => "dkim.fail",
            DkimProblem::Temporary { .. } => "dkim.temperror",
        }
    }
    fn severity(&self) -> Severity {
        Severity::Error
    }
    fn rfc(&self) -> RfcRef {
        S3
    }
    fn location(&self) -> Location {
        Location::Whole
    }
    fn hint(&self) -> String {
        match self {
            DkimProblem::Temporary { .. } => {
                "check DNS, then run `mtasts report quarantine retry`".into()
            }
            DkimProblem::NotReportingDomain { .. } => {
                "if you trust this sender anyway, `mtasts report quarantine retry --trust ID` counts it".into()
            }
            _ => "a report that cannot be authenticated is kept in quarantine and left out of the statistics (see it with --include-unverified)".into(),
        }
    }
}

/// Whether `signer` is the reporting domain `submitter`, a parent of it or a subdomain of it
/// (`google.com` signs for `google.com`; `example.com` for `mail.example.com`).
pub fn signs_for(signer: &str, submitter: &str) -> bool {
    let s = signer.trim_end_matches('.').to_ascii_lowercase();
    let r = submitter.trim_end_matches('.').to_ascii_lowercase();
    !s.is_empty()
        && (s == r
            || r.strip_suffix(&s).is_some_and(|p| p.ends_with('.'))
            || s.strip_suffix(&r).is_some_and(|p| p.ends_with('.')))
}

/// Decides whether a mailed report is signed by its reporting domain (RFC 8460 §3).
///
/// `submitter` is the reporting domain: the `TLS-Report-Submitter` header field (RFC 8460
/// §5.3 requires it; it must match the domain of `contact-info`), or, without it, the domain
/// of `contact-info`. When neither is known any valid signature is accepted.
pub fn judge(
    checks: &[SignatureCheck],
    submitter: Option<&str>,
    req: DkimRequirements,
) -> Result<Verified, DkimProblem> {
    let mut worst: Option<DkimProblem> = None;
    let mut note = |p: DkimProblem| {
        if worst.as_ref().is_none_or(|w| p.rank() > w.rank()) {
            worst = Some(p);
        }
    };
    let mut signers = Vec::new();
    for c in checks {
        // RFC 8460 §3: "DKIM signatures MUST NOT use the "l=" attribute", whatever the
        // verifier made of them.
        if c.length_limited {
            note(DkimProblem::LengthLimited {
                domain: c.domain.clone(),
            });
            continue;
        }
        match &c.result {
            SignatureResult::Pass => {}
            SignatureResult::Fail { reason } | SignatureResult::PermError { reason } => {
                note(DkimProblem::Failed {
                    domain: c.domain.clone(),
                    reason: reason.clone(),
                });
                continue;
            }
            SignatureResult::TempError { reason } => {
                note(DkimProblem::Temporary {
                    domain: c.domain.clone(),
                    reason: reason.clone(),
                });
                continue;
            }
        }
        let (Some(domain), Some(selector)) = (&c.domain, &c.selector) else {
            continue;
        };
        if let Some(sub) = submitter
            && !signs_for(domain, sub)
        {
            signers.push(domain.clone());
            note(DkimProblem::NotReportingDomain {
                signers: signers.clone(),
                submitter: sub.to_string(),
            });
            continue;
        }
        let services = c.services.clone().unwrap_or(KeyServices::All);
        if req.tlsrpt_service
            && let KeyServices::Others(list) = &services
        {
            note(DkimProblem::KeyNotForTlsrpt {
                domain: domain.clone(),
                services: list.clone(),
            });
            continue;
        }
        return Ok(Verified {
            domain: domain.clone(),
            selector: selector.clone(),
            tlsrpt_service: services.covers_tlsrpt(),
        });
    }
    Err(worst.unwrap_or(DkimProblem::NoSignature))
}
