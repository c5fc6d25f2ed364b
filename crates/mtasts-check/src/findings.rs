//! The checker's own findings: what a live deployment shows beyond what the core's parsers
//! and rules report (lookups, the policy host's transport, certificates, MX records, each MX
//! address's SMTP session). Each enum implements the core's [`Diagnostic`] (and
//! [`Catalogue`]), so check, lint and reports share one finding vocabulary and one rendered
//! [`mtasts_core::Finding`].
//!
//! Severity follows the stakes: an MX-side problem is an error once the domain publishes an
//! MTA-STS record (senders would enforce or report it) and a warning before ([`Stakes`]).

use std::fmt;

use mtasts_core::rfc::RfcRef;
use mtasts_core::sts::fetch::MediaTypeProblem;
use mtasts_core::tls::CertVerdict;
use mtasts_core::{Catalogue, Diagnostic, Location, Severity};

use crate::obs::SmtpReply;

/// Whether the domain has published MTA-STS, which decides how much an MX-side problem
/// matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stakes {
    /// An MTA-STS record is published (and its mode is not `none`): senders act on it.
    Published,
    /// Not yet: the problem matters once the domain moves to MTA-STS.
    NotPublished,
}

impl Stakes {
    fn severity(self) -> Severity {
        match self {
            Stakes::Published => Severity::Error,
            Stakes::NotPublished => Severity::Warning,
        }
    }

    fn context(self) -> &'static str {
        match self {
            Stakes::Published => "MTA-STS published",
            Stakes::NotPublished => "before MTA-STS is published",
        }
    }
}

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Why a TXT lookup found no record of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absence {
    /// The name does not exist.
    NxDomain,
    /// The name has no TXT record.
    NoData,
    /// TXT records, but none of this kind.
    NotOfThisKind,
}

/// The `_mta-sts` and `_smtp._tls` lookups, the reporting addresses, DNS latency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordFinding {
    /// No MTA-STS record.
    StsNone {
        /// The domain.
        domain: String,
        /// How it is absent.
        how: Absence,
        /// The domain accepts no mail (null MX), so it needs none.
        null_mx: bool,
    },
    /// The `_mta-sts` lookup failed.
    StsLookupFailed {
        /// The domain.
        domain: String,
        /// What failed.
        reason: String,
    },
    /// No TLS-RPT record.
    TlsRptNone {
        /// The domain.
        domain: String,
        /// How it is absent.
        how: Absence,
        /// The domain accepts no mail (null MX), so it needs none.
        null_mx: bool,
    },
    /// The `_smtp._tls` lookup failed.
    TlsRptLookupFailed {
        /// The domain.
        domain: String,
        /// What failed.
        reason: String,
    },
    /// A `mailto:` reporting address whose domain cannot receive mail.
    RuaNoMx {
        /// The URI.
        uri: String,
        /// Its domain.
        rua_domain: String,
        /// Why not.
        why: String,
    },
    /// A DNS answer took long.
    DnsSlow {
        /// The name.
        name: String,
        /// Milliseconds.
        millis: u64,
    },
}

impl fmt::Display for RecordFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordFinding::StsNone { how, .. } => match how {
                Absence::NxDomain => f.write_str("no MTA-STS record (NXDOMAIN)"),
                Absence::NoData => f.write_str("no MTA-STS record (NODATA)"),
                Absence::NotOfThisKind => {
                    f.write_str("no record begins with v=STSv1 (other TXT records are ignored)")
                }
            },
            RecordFinding::StsLookupFailed { reason, .. }
            | RecordFinding::TlsRptLookupFailed { reason, .. } => {
                write!(f, "the lookup failed: {}", reason)
            }
            RecordFinding::TlsRptNone { how, .. } => match how {
                Absence::NotOfThisKind => f.write_str("no record begins with v=TLSRPTv1"),
                _ => f.write_str(
                    "no TLS-RPT record: failures to reach your MX over TLS go unreported",
                ),
            },
            RecordFinding::RuaNoMx {
                rua_domain, why, ..
            } => write!(f, "reports to {rua_domain} cannot be delivered: {}", why),
            RecordFinding::DnsSlow { millis, .. } => write!(f, "the answer took {millis} ms"),
        }
    }
}

impl Diagnostic for RecordFinding {
    fn code(&self) -> &'static str {
        match self {
            RecordFinding::StsNone { .. } => "sts.record.none",
            RecordFinding::StsLookupFailed { .. } => "sts.record.lookup-failed",
            RecordFinding::TlsRptNone { .. } => "tlsrpt.record.none",
            RecordFinding::TlsRptLookupFailed { .. } => "tlsrpt.record.lookup-failed",
            RecordFinding::RuaNoMx { .. } => "tlsrpt.rua.no-mx",
            RecordFinding::DnsSlow { .. } => "dns.slow",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            RecordFinding::StsNone { null_mx: true, .. }
            | RecordFinding::TlsRptNone { null_mx: true, .. }
            | RecordFinding::DnsSlow { .. } => Severity::Info,
            RecordFinding::StsLookupFailed { .. } => Severity::Error,
            RecordFinding::StsNone { .. }
            | RecordFinding::TlsRptNone { .. }
            | RecordFinding::TlsRptLookupFailed { .. }
            | RecordFinding::RuaNoMx { .. } => Severity::Warning,
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            RecordFinding::StsNone { .. }
            | RecordFinding::StsLookupFailed { .. }
            | RecordFinding::DnsSlow { .. } => RfcRef::sts("3.1"),
            RecordFinding::TlsRptNone { .. } | RecordFinding::TlsRptLookupFailed { .. } => {
                RfcRef::tlsrpt("3")
            }
            RecordFinding::RuaNoMx { .. } => RfcRef::tlsrpt("5.3"),
        }
    }
    fn location(&self) -> Location {
        Location::Whole
    }
    fn hint(&self) -> String {
        match self {
            RecordFinding::StsNone { null_mx: true, .. }
            | RecordFinding::TlsRptNone { null_mx: true, .. } => {
                "nothing to do: a domain that accepts no mail needs no MTA-STS".into()
            }
            RecordFinding::StsNone { domain, .. } => format!(
                "publish a policy (mtasts init {domain}) and then \"v=STSv1; id=...;\" at _mta-sts.{domain}"
            ),
            RecordFinding::StsLookupFailed { domain, .. } => format!(
                "make the authoritative servers answer for _mta-sts.{domain} (check delegation, DNSSEC and CNAME loops)"
            ),
            RecordFinding::TlsRptNone { domain, .. } => format!(
                "publish \"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}\" at _smtp._tls.{domain} before moving to enforce"
            ),
            RecordFinding::TlsRptLookupFailed { domain, .. } => {
                format!("make the authoritative servers answer for _smtp._tls.{domain}")
            }
            RecordFinding::RuaNoMx { .. } => {
                "use an address whose domain has working MX records".into()
            }
            RecordFinding::DnsSlow { .. } => "check the authoritative servers' latency".into(),
        }
    }
}

impl Catalogue for RecordFinding {
    fn context(&self) -> Option<&'static str> {
        match self {
            RecordFinding::StsNone { null_mx: true, .. }
            | RecordFinding::TlsRptNone { null_mx: true, .. } => Some("null MX"),
            _ => None,
        }
    }
    fn examples() -> Vec<Self> {
        let domain = "example.com".to_owned();
        vec![
            RecordFinding::StsNone {
                domain: domain.clone(),
                how: Absence::NxDomain,
                null_mx: false,
            },
            RecordFinding::StsNone {
                domain: domain.clone(),
                how: Absence::NxDomain,
                null_mx: true,
            },
            RecordFinding::StsLookupFailed {
                domain: domain.clone(),
                reason: "SERVFAIL".into(),
            },
            RecordFinding::TlsRptNone {
                domain: domain.clone(),
                how: Absence::NoData,
                null_mx: false,
            },
            RecordFinding::TlsRptNone {
                domain: domain.clone(),
                how: Absence::NoData,
                null_mx: true,
            },
            RecordFinding::TlsRptLookupFailed {
                domain,
                reason: "SERVFAIL".into(),
            },
            RecordFinding::RuaNoMx {
                uri: "mailto:tlsrpt@example.net".into(),
                rua_domain: "example.net".into(),
                why: "null MX".into(),
            },
            RecordFinding::DnsSlow {
                name: "_mta-sts.example.com".into(),
                millis: 1500,
            },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            RecordFinding::StsNone { null_mx: true, .. } => {
                "No MTA-STS record on a domain that accepts no mail (null MX): nothing to do."
            }
            RecordFinding::StsNone { .. } => {
                "No TXT record at _mta-sts.<domain> begins with v=STSv1: the domain has no MTA-STS."
            }
            RecordFinding::StsLookupFailed { .. } => {
                "The _mta-sts TXT lookup failed (SERVFAIL, timeout, refused): senders cannot discover a policy."
            }
            RecordFinding::TlsRptNone { null_mx: true, .. } => {
                "No TLS-RPT record on a domain that accepts no mail (null MX): nothing to do."
            }
            RecordFinding::TlsRptNone { .. } => {
                "No TLS-RPT record: nobody learns when senders fail to reach you over TLS."
            }
            RecordFinding::TlsRptLookupFailed { .. } => "The _smtp._tls TXT lookup failed.",
            RecordFinding::RuaNoMx { .. } => {
                "The domain of a mailto: rua cannot receive mail: reports are lost."
            }
            RecordFinding::DnsSlow { .. } => "A DNS answer took more than a second.",
        }
    }
}

/// The transport of the policy fetch (RFC 8461 §3.3): what stopped it before a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchFinding {
    /// `mta-sts.<domain>` does not resolve.
    HostNotFound {
        /// The domain.
        domain: String,
        /// Why.
        reason: String,
    },
    /// No connection on port 443.
    ConnectFailed {
        /// The domain.
        domain: String,
        /// Why.
        reason: String,
    },
    /// The policy host did not answer in time.
    Timeout {
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed.
    TlsFailed {
        /// The domain.
        domain: String,
        /// Why.
        reason: String,
    },
    /// Only TLS older than 1.2.
    TlsVersion {
        /// Why.
        reason: String,
    },
    /// Closed without an HTTP response.
    NoResponse {
        /// Why.
        reason: String,
    },
    /// Closed before the body was complete.
    IncompleteBody {
        /// Why.
        reason: String,
    },
    /// A media type other than text/plain, tolerated because the check was told to be
    /// lenient (most senders refuse it).
    MediaTypeTolerated {
        /// What is wrong.
        problem: MediaTypeProblem,
    },
}

impl fmt::Display for FetchFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchFinding::HostNotFound { reason, .. }
            | FetchFinding::ConnectFailed { reason, .. }
            | FetchFinding::Timeout { reason }
            | FetchFinding::TlsFailed { reason, .. }
            | FetchFinding::NoResponse { reason }
            | FetchFinding::IncompleteBody { reason } => f.write_str(reason),
            FetchFinding::TlsVersion { reason } => {
                write!(f, "{} (the server speaks only TLS older than 1.2)", reason)
            }
            FetchFinding::MediaTypeTolerated { problem } => {
                write!(f, "{problem}")
            }
        }
    }
}

impl Diagnostic for FetchFinding {
    fn code(&self) -> &'static str {
        match self {
            FetchFinding::HostNotFound { .. } => "sts.fetch.host-not-found",
            FetchFinding::ConnectFailed { .. } => "sts.fetch.connect-failed",
            FetchFinding::Timeout { .. } => "sts.fetch.timeout",
            FetchFinding::TlsFailed { .. } => "sts.fetch.tls-failed",
            FetchFinding::TlsVersion { .. } => "sts.fetch.tls-version",
            FetchFinding::NoResponse { .. } => "sts.fetch.no-response",
            FetchFinding::IncompleteBody { .. } => "sts.fetch.incomplete-body",
            FetchFinding::MediaTypeTolerated { .. } => "sts.fetch.media-type",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            FetchFinding::MediaTypeTolerated { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            FetchFinding::TlsVersion { .. } => RfcRef::sts("7.2"),
            FetchFinding::MediaTypeTolerated { .. } => RfcRef::sts("3.2"),
            _ => RfcRef::sts("3.3"),
        }
    }
    fn location(&self) -> Location {
        Location::Whole
    }
    fn hint(&self) -> String {
        match self {
            FetchFinding::HostNotFound { domain, .. } => format!(
                "publish A/AAAA (or a CNAME to your provider) for mta-sts.{domain}"
            ),
            FetchFinding::ConnectFailed { domain, .. } => format!(
                "serve HTTPS on port 443 of mta-sts.{domain} from every address it has"
            ),
            FetchFinding::Timeout { .. } => {
                "serve the small policy file directly and quickly; check firewalls and the web server".into()
            }
            FetchFinding::TlsFailed { domain, .. } => {
                format!("serve TLS 1.2 or 1.3 with SNI for mta-sts.{domain}")
            }
            FetchFinding::TlsVersion { .. } => "enable TLS 1.2 and 1.3 on the policy host".into(),
            FetchFinding::NoResponse { .. } | FetchFinding::IncompleteBody { .. } => {
                "check the web server and anything in front of it (proxies, CDNs)".into()
            }
            FetchFinding::MediaTypeTolerated { .. } => {
                "serve it with \"Content-Type: text/plain\" (charset utf-8 or none)".into()
            }
        }
    }
}

impl Catalogue for FetchFinding {
    fn context(&self) -> Option<&'static str> {
        match self {
            FetchFinding::MediaTypeTolerated { .. } => Some("with --lenient-media-type"),
            _ => None,
        }
    }
    fn examples() -> Vec<Self> {
        let domain = "example.com".to_owned();
        let reason = "…".to_owned();
        vec![
            FetchFinding::HostNotFound {
                domain: domain.clone(),
                reason: reason.clone(),
            },
            FetchFinding::ConnectFailed {
                domain: domain.clone(),
                reason: reason.clone(),
            },
            FetchFinding::Timeout {
                reason: reason.clone(),
            },
            FetchFinding::TlsFailed {
                domain,
                reason: reason.clone(),
            },
            FetchFinding::TlsVersion {
                reason: reason.clone(),
            },
            FetchFinding::NoResponse {
                reason: reason.clone(),
            },
            FetchFinding::IncompleteBody { reason },
            FetchFinding::MediaTypeTolerated {
                problem: MediaTypeProblem::NotTextPlain {
                    essence: "text/html".into(),
                },
            },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            FetchFinding::HostNotFound { .. } => {
                "The policy host mta-sts.<domain> does not resolve: senders deliver without MTA-STS."
            }
            FetchFinding::ConnectFailed { .. } => "No connection to the policy host on port 443.",
            FetchFinding::Timeout { .. } => {
                "The policy host did not answer (or finish the body) in time."
            }
            FetchFinding::TlsFailed { .. } => {
                "The TLS handshake with the policy host failed (reset, alert)."
            }
            FetchFinding::TlsVersion { .. } => "The policy host speaks only TLS older than 1.2.",
            FetchFinding::NoResponse { .. } => {
                "The policy host closed the connection without an HTTP response."
            }
            FetchFinding::IncompleteBody { .. } => {
                "The connection closed before the body was complete."
            }
            FetchFinding::MediaTypeTolerated { .. } => {
                "The policy is not served as text/plain; tolerated by --lenient-media-type, refused by most senders."
            }
        }
    }
}

/// Which TLS server a certificate finding is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSide {
    /// The policy host `mta-sts.<domain>` (RFC 8461 §3.3).
    PolicyHost,
    /// An MX host (RFC 8461 §4.2).
    Mx {
        /// How much it matters.
        stakes: Stakes,
    },
}

impl CertSide {
    fn prefix(&self) -> &'static str {
        match self {
            CertSide::PolicyHost => "sts.fetch",
            CertSide::Mx { .. } => "smtp",
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            CertSide::PolicyHost => RfcRef::sts("3.3"),
            CertSide::Mx { .. } => RfcRef::sts("4.2"),
        }
    }
}

/// A certificate problem of the policy host or an MX host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertFinding {
    /// The certificate fails validation.
    Invalid {
        /// Which server.
        side: CertSide,
        /// The verdict (never `Valid`).
        verdict: CertVerdict,
        /// The names the certificate carries.
        names: Vec<String>,
        /// Now (Unix seconds), for "expired N days ago".
        now: i64,
    },
    /// Valid, but expiring soon.
    ExpiringSoon {
        /// Which server.
        side: CertSide,
        /// Whole days left.
        days: i64,
        /// When it expires (Unix seconds).
        not_after: i64,
    },
}

impl fmt::Display for CertFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertFinding::ExpiringSoon {
                days, not_after, ..
            } => write!(
                f,
                "the certificate expires in {days} days ({})",
                fmt_time(*not_after)
            ),
            CertFinding::Invalid {
                verdict,
                names,
                now,
                ..
            } => {
                let names = &names.join(", ").to_string();
                match verdict {
                    CertVerdict::Expired { not_after } => write!(
                        f,
                        "the certificate for {names} expired on {} ({} days ago)",
                        fmt_time(*not_after),
                        (now - not_after) / 86_400
                    ),
                    CertVerdict::NotYetValid { not_before } => write!(
                        f,
                        "the certificate for {names} is valid only from {}",
                        fmt_time(*not_before)
                    ),
                    CertVerdict::SelfSigned => {
                        write!(f, "the certificate for {names} is self-signed")
                    }
                    other => write!(f, "{other}"),
                }
            }
        }
    }
}

impl Diagnostic for CertFinding {
    fn code(&self) -> &'static str {
        let (side, suffix) = match self {
            CertFinding::ExpiringSoon { side, .. } => (side, "cert-expiring-soon"),
            CertFinding::Invalid { side, verdict, .. } => (
                side,
                match verdict {
                    CertVerdict::Valid => "cert-valid",
                    CertVerdict::Expired { .. } => "cert-expired",
                    CertVerdict::NotYetValid { .. } => "cert-not-yet-valid",
                    CertVerdict::NameMismatch { .. } => "cert-name-mismatch",
                    CertVerdict::SelfSigned => "cert-self-signed",
                    CertVerdict::UntrustedCa { .. } => "cert-untrusted-ca",
                    CertVerdict::ChainIncomplete { .. } => "cert-chain-incomplete",
                    CertVerdict::Invalid { .. } => "cert-invalid",
                },
            ),
        };
        match (side.prefix(), suffix) {
            ("sts.fetch", "cert-expiring-soon") => "sts.fetch.cert-expiring-soon",
            ("sts.fetch", "cert-expired") => "sts.fetch.cert-expired",
            ("sts.fetch", "cert-not-yet-valid") => "sts.fetch.cert-not-yet-valid",
            ("sts.fetch", "cert-name-mismatch") => "sts.fetch.cert-name-mismatch",
            ("sts.fetch", "cert-self-signed") => "sts.fetch.cert-self-signed",
            ("sts.fetch", "cert-untrusted-ca") => "sts.fetch.cert-untrusted-ca",
            ("sts.fetch", "cert-chain-incomplete") => "sts.fetch.cert-chain-incomplete",
            ("sts.fetch", _) => "sts.fetch.cert-invalid",
            (_, "cert-expiring-soon") => "smtp.cert-expiring-soon",
            (_, "cert-expired") => "smtp.cert-expired",
            (_, "cert-not-yet-valid") => "smtp.cert-not-yet-valid",
            (_, "cert-name-mismatch") => "smtp.cert-name-mismatch",
            (_, "cert-self-signed") => "smtp.cert-self-signed",
            (_, "cert-untrusted-ca") => "smtp.cert-untrusted-ca",
            (_, "cert-chain-incomplete") => "smtp.cert-chain-incomplete",
            _ => "smtp.cert-invalid",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            CertFinding::ExpiringSoon { .. } => Severity::Warning,
            CertFinding::Invalid {
                side: CertSide::PolicyHost,
                ..
            } => Severity::Error,
            CertFinding::Invalid {
                side: CertSide::Mx { stakes },
                ..
            } => stakes.severity(),
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            CertFinding::ExpiringSoon { side, .. } | CertFinding::Invalid { side, .. } => {
                side.rfc()
            }
        }
    }
    fn location(&self) -> Location {
        Location::Whole
    }
    fn hint(&self) -> String {
        let mx = matches!(
            self,
            CertFinding::Invalid {
                side: CertSide::Mx { .. },
                ..
            } | CertFinding::ExpiringSoon {
                side: CertSide::Mx { .. },
                ..
            }
        );
        match self {
            CertFinding::ExpiringSoon { .. } => {
                "renew it now; check that automatic renewal works".into()
            }
            CertFinding::Invalid { verdict, .. } => match verdict {
                CertVerdict::Valid => String::new(),
                CertVerdict::Expired { .. } => {
                    "renew the certificate (and automate renewal with an ACME client)".into()
                }
                CertVerdict::NotYetValid { .. } => {
                    "check the server clock and the certificate's dates".into()
                }
                CertVerdict::NameMismatch { expected, .. } => {
                    if mx {
                        format!(
                            "get a certificate naming {expected} (the host in the MX record) or a *. of its parent"
                        )
                    } else {
                        format!("get a certificate whose subjectAltName includes {expected}")
                    }
                }
                CertVerdict::SelfSigned | CertVerdict::UntrustedCa { .. } => {
                    "use a certificate from a public CA (e.g. Let's Encrypt)".into()
                }
                CertVerdict::ChainIncomplete { .. } => {
                    "serve the full chain (fullchain.pem), not only the leaf".into()
                }
                CertVerdict::Invalid { .. } => "serve a valid certificate from a public CA".into(),
            },
        }
    }
}

impl Catalogue for CertFinding {
    fn context(&self) -> Option<&'static str> {
        match self {
            CertFinding::Invalid {
                side: CertSide::Mx { stakes },
                ..
            } => Some(stakes.context()),
            _ => None,
        }
    }
    fn examples() -> Vec<Self> {
        let verdicts = [
            CertVerdict::Expired { not_after: 0 },
            CertVerdict::NotYetValid { not_before: 0 },
            CertVerdict::NameMismatch {
                expected: "mx1.example.com".into(),
                presented: vec!["other.example.net".into()],
            },
            CertVerdict::SelfSigned,
            CertVerdict::UntrustedCa {
                issuer: "CN=Private CA".into(),
            },
            CertVerdict::ChainIncomplete {
                issuer: "CN=Intermediate".into(),
            },
            CertVerdict::Invalid {
                reason: "BadSignature".into(),
            },
        ];
        let sides = [
            CertSide::PolicyHost,
            CertSide::Mx {
                stakes: Stakes::Published,
            },
            CertSide::Mx {
                stakes: Stakes::NotPublished,
            },
        ];
        let mut out = Vec::new();
        for side in sides {
            if side
                != (CertSide::Mx {
                    stakes: Stakes::NotPublished,
                })
            {
                out.push(CertFinding::ExpiringSoon {
                    side: side.clone(),
                    days: 10,
                    not_after: 0,
                });
            }
            for v in &verdicts {
                out.push(CertFinding::Invalid {
                    side: side.clone(),
                    verdict: v.clone(),
                    names: vec!["mx1.example.com".into()],
                    now: 0,
                });
            }
        }
        out
    }
    fn meaning(&self) -> &'static str {
        let host = match self {
            CertFinding::ExpiringSoon { side, .. } | CertFinding::Invalid { side, .. } => side,
        };
        let policy = *host == CertSide::PolicyHost;
        match (self, policy) {
            (CertFinding::ExpiringSoon { .. }, true) => {
                "The policy host's certificate expires soon (21 days by default)."
            }
            (CertFinding::ExpiringSoon { .. }, false) => {
                "The MX certificate expires soon (21 days by default)."
            }
            (CertFinding::Invalid { verdict, .. }, true) => match verdict {
                CertVerdict::Valid => "The policy host's certificate is valid.",
                CertVerdict::Expired { .. } => "The policy host's certificate has expired.",
                CertVerdict::NotYetValid { .. } => {
                    "The policy host's certificate is not valid yet."
                }
                CertVerdict::NameMismatch { .. } => {
                    "The policy host's certificate does not name mta-sts.<domain>."
                }
                CertVerdict::SelfSigned => "The policy host's certificate is self-signed.",
                CertVerdict::UntrustedCa { .. } => {
                    "The policy host's certificate chains to a CA senders do not trust."
                }
                CertVerdict::ChainIncomplete { .. } => {
                    "The policy host sends only its leaf certificate; the intermediate is missing."
                }
                CertVerdict::Invalid { .. } => {
                    "The policy host's certificate fails validation for another reason."
                }
            },
            (CertFinding::Invalid { verdict, .. }, false) => match verdict {
                CertVerdict::Valid => "The MX certificate is valid.",
                CertVerdict::Expired { .. } => "The MX certificate has expired.",
                CertVerdict::NotYetValid { .. } => "The MX certificate is not valid yet.",
                CertVerdict::NameMismatch { .. } => "The MX certificate does not name the MX host.",
                CertVerdict::SelfSigned => "The MX certificate is self-signed.",
                CertVerdict::UntrustedCa { .. } => {
                    "The MX certificate chains to a CA senders do not trust."
                }
                CertVerdict::ChainIncomplete { .. } => {
                    "The MX sends only its leaf certificate; the intermediate is missing."
                }
                CertVerdict::Invalid { .. } => {
                    "The MX certificate fails validation for another reason."
                }
            },
        }
    }
}

/// The MX RRset and each MX host's DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MxFinding {
    /// A null MX (RFC 7505).
    Null,
    /// No MX record: the implicit MX (RFC 5321 §5.1).
    Implicit {
        /// The domain.
        domain: String,
    },
    /// No MX and no address.
    None,
    /// The domain does not exist.
    NxDomain {
        /// The domain.
        domain: String,
    },
    /// The MX lookup failed.
    LookupFailed {
        /// Why.
        reason: String,
    },
    /// An MX host does not exist.
    HostNotFound {
        /// The host.
        host: String,
    },
    /// An MX host has no address.
    HostNoAddress {
        /// The host.
        host: String,
    },
    /// An MX host's address lookup failed.
    HostLookupFailed {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// An MX host is a CNAME.
    Cname {
        /// The host.
        host: String,
        /// Its target.
        target: String,
    },
    /// The MX answer carried the AD flag.
    DnssecSigned,
}

impl fmt::Display for MxFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MxFinding::Null => f.write_str("a null MX (0 .): the domain accepts no mail"),
            MxFinding::Implicit { domain } => {
                write!(f, "no MX record: mail goes to {domain}'s own address")
            }
            MxFinding::None => f.write_str("no MX record and no address"),
            MxFinding::NxDomain { domain } => write!(f, "{domain} does not exist"),
            MxFinding::LookupFailed { reason } => {
                write!(f, "the lookup failed: {}", reason)
            }
            MxFinding::HostNotFound { host } => write!(f, "{host} does not exist (NXDOMAIN)"),
            MxFinding::HostNoAddress { host } => write!(f, "{host} has no A or AAAA record"),
            MxFinding::HostLookupFailed { host, reason } => {
                write!(f, "cannot resolve {host}: {}", reason)
            }
            MxFinding::Cname { host, target } => write!(
                f,
                "{host} is a CNAME to {}; senders validate the certificate against {host}",
                target
            ),
            MxFinding::DnssecSigned => {
                f.write_str("the answer carried the AD flag (DNSSEC-validated)")
            }
        }
    }
}

impl Diagnostic for MxFinding {
    fn code(&self) -> &'static str {
        match self {
            MxFinding::Null => "mx.null",
            MxFinding::Implicit { .. } => "mx.implicit",
            MxFinding::None => "mx.none",
            MxFinding::NxDomain { .. } => "mx.nxdomain",
            MxFinding::LookupFailed { .. } => "mx.lookup-failed",
            MxFinding::HostNotFound { .. } => "mx.host-not-found",
            MxFinding::HostNoAddress { .. } => "mx.host-no-address",
            MxFinding::HostLookupFailed { .. } => "mx.host-lookup-failed",
            MxFinding::Cname { .. } => "mx.cname",
            MxFinding::DnssecSigned => "dnssec.signed",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            MxFinding::Null | MxFinding::DnssecSigned => Severity::Info,
            MxFinding::Implicit { .. } | MxFinding::Cname { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            MxFinding::Null => RfcRef::new(7505, ""),
            MxFinding::Cname { .. } => RfcRef::new(2181, "10.3"),
            MxFinding::DnssecSigned => RfcRef::sts("2"),
            _ => RfcRef::new(5321, "5.1"),
        }
    }
    fn location(&self) -> Location {
        Location::Whole
    }
    fn hint(&self) -> String {
        match self {
            MxFinding::Null => "nothing to do if the domain sends and receives no mail".into(),
            MxFinding::Implicit { .. } => "publish an explicit MX record".into(),
            MxFinding::None => "publish an MX record".into(),
            MxFinding::NxDomain { .. } => "check the domain's delegation".into(),
            MxFinding::LookupFailed { .. } => {
                "make the authoritative servers answer MX queries".into()
            }
            MxFinding::HostNotFound { host } | MxFinding::HostNoAddress { host } => {
                format!("fix the MX record or publish the A/AAAA records of {host}")
            }
            MxFinding::HostLookupFailed { host, .. } => {
                format!("make the authoritative servers answer for {host}")
            }
            MxFinding::Cname { host, .. } => format!(
                "point the MX record at the canonical host name, or make {host}'s certificate name {host}"
            ),
            MxFinding::DnssecSigned => "consider DANE (RFC 7672) beside MTA-STS".into(),
        }
    }
}

impl Catalogue for MxFinding {
    fn examples() -> Vec<Self> {
        let host = "mx1.example.com".to_owned();
        vec![
            MxFinding::Null,
            MxFinding::Implicit {
                domain: "example.com".into(),
            },
            MxFinding::None,
            MxFinding::NxDomain {
                domain: "example.com".into(),
            },
            MxFinding::LookupFailed {
                reason: "SERVFAIL".into(),
            },
            MxFinding::HostNotFound { host: host.clone() },
            MxFinding::HostNoAddress { host: host.clone() },
            MxFinding::HostLookupFailed {
                host: host.clone(),
                reason: "SERVFAIL".into(),
            },
            MxFinding::Cname {
                host: host.clone(),
                target: "mx.provider.example".into(),
            },
            MxFinding::DnssecSigned,
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            MxFinding::Null => "A null MX: the domain accepts no mail.",
            MxFinding::Implicit { .. } => {
                "No MX record: the domain's own address is used (implicit MX)."
            }
            MxFinding::None => {
                "No MX record and no address: mail to the domain cannot be delivered."
            }
            MxFinding::NxDomain { .. } => "The domain does not exist.",
            MxFinding::LookupFailed { .. } => "The MX lookup failed (SERVFAIL, timeout).",
            MxFinding::HostNotFound { .. } => "An MX host name does not resolve (NXDOMAIN).",
            MxFinding::HostNoAddress { .. } => "An MX host has no A or AAAA record.",
            MxFinding::HostLookupFailed { .. } => "An MX host's address lookup failed.",
            MxFinding::Cname { .. } => {
                "An MX host is an alias (CNAME); its certificate must still name the MX host itself."
            }
            MxFinding::DnssecSigned => {
                "The MX answer carried the AD flag: the zone is DNSSEC-signed and validated."
            }
        }
    }
}

/// One SMTP session with one MX address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtpFinding {
    /// No TCP connection.
    ConnectFailed {
        /// What happened.
        reason: String,
    },
    /// A step timed out.
    Timeout {
        /// What happened.
        reason: String,
    },
    /// A slow greeting.
    GreetingSlow {
        /// Milliseconds.
        millis: u64,
    },
    /// The greeting or EHLO was refused.
    Rejected {
        /// What happened.
        reason: String,
    },
    /// STARTTLS not offered.
    StarttlsMissing {
        /// The EHLO keywords offered.
        offered: Vec<String>,
        /// How much it matters.
        stakes: Stakes,
    },
    /// STARTTLS offered but refused.
    StarttlsRefused {
        /// What happened.
        reason: String,
        /// How much it matters.
        stakes: Stakes,
    },
    /// The TLS handshake failed.
    TlsFailed {
        /// What happened.
        reason: String,
        /// How much it matters.
        stakes: Stakes,
    },
    /// Only TLS older than 1.2.
    TlsVersion {
        /// What happened.
        reason: String,
        /// How much it matters.
        stakes: Stakes,
    },
    /// `MAIL FROM:<>` refused.
    MailRejected {
        /// What happened.
        reason: String,
    },
    /// `RCPT TO:<postmaster@domain>` refused.
    RcptRejected {
        /// The domain.
        domain: String,
        /// What happened.
        reason: String,
    },
}

impl SmtpFinding {
    /// `MAIL FROM:<>` answered with an error.
    pub fn mail_reply(r: &SmtpReply) -> SmtpFinding {
        SmtpFinding::MailRejected {
            reason: format!("MAIL FROM:<> answered {r}"),
        }
    }

    /// `RCPT TO:<postmaster@domain>` answered with an error.
    pub fn rcpt_reply(domain: &str, r: &SmtpReply) -> SmtpFinding {
        SmtpFinding::RcptRejected {
            domain: domain.to_owned(),
            reason: format!("RCPT TO:<postmaster@{domain}> answered {r}"),
        }
    }
}

impl fmt::Display for SmtpFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpFinding::ConnectFailed { reason }
            | SmtpFinding::Timeout { reason }
            | SmtpFinding::Rejected { reason }
            | SmtpFinding::StarttlsRefused { reason, .. }
            | SmtpFinding::TlsFailed { reason, .. }
            | SmtpFinding::TlsVersion { reason, .. }
            | SmtpFinding::MailRejected { reason }
            | SmtpFinding::RcptRejected { reason, .. } => f.write_str(reason),
            SmtpFinding::GreetingSlow { millis } => write!(f, "the greeting took {millis} ms"),
            SmtpFinding::StarttlsMissing { offered, .. } => write!(
                f,
                "EHLO does not offer STARTTLS (offered: {})",
                if offered.is_empty() {
                    "nothing".to_owned()
                } else {
                    offered.join(" ")
                }
            ),
        }
    }
}

impl Diagnostic for SmtpFinding {
    fn code(&self) -> &'static str {
        match self {
            SmtpFinding::ConnectFailed { .. } => "smtp.connect-failed",
            SmtpFinding::Timeout { .. } => "smtp.timeout",
            SmtpFinding::GreetingSlow { .. } => "smtp.greeting-slow",
            SmtpFinding::Rejected { .. } => "smtp.rejected",
            SmtpFinding::StarttlsMissing { .. } => "smtp.starttls-missing",
            SmtpFinding::StarttlsRefused { .. } => "smtp.starttls-refused",
            SmtpFinding::TlsFailed { .. } => "smtp.tls-failed",
            SmtpFinding::TlsVersion { .. } => "smtp.tls-version",
            SmtpFinding::MailRejected { .. } => "smtp.mail-rejected",
            SmtpFinding::RcptRejected { .. } => "smtp.rcpt-rejected",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            SmtpFinding::GreetingSlow { .. } => Severity::Info,
            SmtpFinding::StarttlsMissing { stakes, .. }
            | SmtpFinding::StarttlsRefused { stakes, .. }
            | SmtpFinding::TlsFailed { stakes, .. }
            | SmtpFinding::TlsVersion { stakes, .. } => stakes.severity(),
            _ => Severity::Error,
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            SmtpFinding::ConnectFailed { .. } | SmtpFinding::Rejected { .. } => {
                RfcRef::new(5321, "")
            }
            SmtpFinding::Timeout { .. } | SmtpFinding::GreetingSlow { .. } => {
                RfcRef::new(5321, "4.5.3.2")
            }
            SmtpFinding::StarttlsMissing { .. } | SmtpFinding::TlsFailed { .. } => {
                RfcRef::sts("4.2")
            }
            SmtpFinding::StarttlsRefused { .. } => RfcRef::new(3207, ""),
            SmtpFinding::TlsVersion { .. } => RfcRef::sts("7.2"),
            SmtpFinding::MailRejected { .. } | SmtpFinding::RcptRejected { .. } => {
                RfcRef::new(5321, "4.5.1")
            }
        }
    }
    fn location(&self) -> Location {
        Location::Whole
    }
    fn hint(&self) -> String {
        match self {
            SmtpFinding::ConnectFailed { .. } => "open port 25 on every MX address".into(),
            SmtpFinding::Timeout { .. } => "check the SMTP server and firewalls".into(),
            SmtpFinding::GreetingSlow { .. } => {
                "nothing required; fast greetings help senders with short timeouts".into()
            }
            SmtpFinding::Rejected { .. } => {
                "let the server greet and answer EHLO from any client".into()
            }
            SmtpFinding::StarttlsMissing { .. } => "enable STARTTLS on the MX".into(),
            SmtpFinding::StarttlsRefused { .. } => {
                "fix the server's TLS configuration (certificate and key)".into()
            }
            SmtpFinding::TlsFailed { .. } => {
                "fix the server's TLS configuration; offer TLS 1.2 and 1.3".into()
            }
            SmtpFinding::TlsVersion { .. } => "enable TLS 1.2 and 1.3".into(),
            SmtpFinding::MailRejected { .. } => {
                "accept the null reverse-path; it must be accepted (RFC 5321 §4.5.5)".into()
            }
            SmtpFinding::RcptRejected { domain, .. } => {
                format!("accept mail for postmaster@{domain}; it is required (RFC 5321 §4.5.1)")
            }
        }
    }
}

impl Catalogue for SmtpFinding {
    fn context(&self) -> Option<&'static str> {
        match self {
            SmtpFinding::StarttlsMissing { stakes, .. }
            | SmtpFinding::StarttlsRefused { stakes, .. }
            | SmtpFinding::TlsFailed { stakes, .. }
            | SmtpFinding::TlsVersion { stakes, .. } => Some(stakes.context()),
            _ => None,
        }
    }
    fn examples() -> Vec<Self> {
        let reason = "…".to_owned();
        let mut out = vec![
            SmtpFinding::ConnectFailed {
                reason: reason.clone(),
            },
            SmtpFinding::Timeout {
                reason: reason.clone(),
            },
            SmtpFinding::GreetingSlow { millis: 2500 },
            SmtpFinding::Rejected {
                reason: reason.clone(),
            },
            SmtpFinding::MailRejected {
                reason: reason.clone(),
            },
            SmtpFinding::RcptRejected {
                domain: "example.com".into(),
                reason: reason.clone(),
            },
        ];
        for stakes in [Stakes::Published, Stakes::NotPublished] {
            out.extend([
                SmtpFinding::StarttlsMissing {
                    offered: vec!["PIPELINING".into()],
                    stakes,
                },
                SmtpFinding::StarttlsRefused {
                    reason: reason.clone(),
                    stakes,
                },
                SmtpFinding::TlsFailed {
                    reason: reason.clone(),
                    stakes,
                },
                SmtpFinding::TlsVersion {
                    reason: reason.clone(),
                    stakes,
                },
            ]);
        }
        out
    }
    fn meaning(&self) -> &'static str {
        match self {
            SmtpFinding::ConnectFailed { .. } => "No SMTP connection to an MX address on port 25.",
            SmtpFinding::Timeout { .. } => "An MX address did not answer in time.",
            SmtpFinding::GreetingSlow { .. } => "The 220 greeting took more than 2 s.",
            SmtpFinding::Rejected { .. } => "The MX refused the session (greeting or EHLO).",
            SmtpFinding::StarttlsMissing { .. } => {
                "The MX does not offer STARTTLS (or an attacker stripped it)."
            }
            SmtpFinding::StarttlsRefused { .. } => "The MX offers STARTTLS but refuses it.",
            SmtpFinding::TlsFailed { .. } => "The TLS handshake with the MX failed.",
            SmtpFinding::TlsVersion { .. } => "The MX speaks only TLS older than 1.2.",
            SmtpFinding::MailRejected { .. } => {
                "The MX did not accept MAIL FROM:<> (the null sender of bounces and reports)."
            }
            SmtpFinding::RcptRejected { .. } => {
                "The MX did not accept RCPT TO:<postmaster@domain>."
            }
        }
    }
}

/// DANE (RFC 7672): what a sender that validates DNSSEC makes of the domain's TLSA records, and
/// each MX address's certificate against them. DANE senders act on these whether or not the
/// domain publishes MTA-STS, and give DANE precedence where both apply (RFC 8461 §2), so the
/// severities do not depend on [`Stakes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaneFinding {
    /// Every MX host has DNSSEC-validated, usable TLSA records under a secure MX RRset.
    Mandatory {
        /// The domain.
        domain: String,
        /// Whether an MTA-STS policy is published too.
        sts: bool,
    },
    /// Some MX hosts have secure TLSA records, others none.
    Partial {
        /// The hosts with secure TLSA records.
        with: Vec<String>,
        /// The hosts without.
        without: Vec<String>,
    },
    /// TLSA records, but the MX RRset is not DNSSEC-validated.
    InsecureMx {
        /// The domain.
        domain: String,
    },
    /// A DNSSEC lookup failed (SERVFAIL, bogus, timeout).
    LookupFailed {
        /// The MX host, or the domain for its MX lookup.
        host: String,
        /// What failed.
        reason: String,
    },
    /// TLSA records DANE senders ignore: not DNSSEC-validated, or under addresses that are not.
    TlsaInsecure {
        /// The MX host.
        host: String,
        /// How many records.
        count: usize,
        /// The host's addresses are validated (so the TLSA answer itself is not).
        addresses_secure: bool,
    },
    /// A secure TLSA record an SMTP client cannot use.
    TlsaUnusable {
        /// The record.
        record: String,
        /// Why.
        why: String,
    },
    /// Every secure TLSA record of a host is unusable.
    NoUsableTlsa {
        /// The MX host.
        host: String,
    },
    /// The certificate presented matches a usable TLSA record.
    Match {
        /// The record.
        record: String,
        /// How (`DANE-EE`, or `DANE-TA` at a depth).
        how: String,
    },
    /// No usable TLSA record matches the certificate presented.
    Mismatch {
        /// The MX host.
        host: String,
        /// The leaf's names.
        names: Vec<String>,
        /// A DANE-TA(2) record matched a certificate of the chain, but the server certificate
        /// names neither the MX host nor the domain.
        ta_name_mismatch: bool,
    },
    /// A host with secure TLSA records, reached without TLS.
    TlsRequired {
        /// The MX host.
        host: String,
        /// What happened instead.
        reason: String,
    },
}

impl fmt::Display for DaneFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaneFinding::Mandatory { domain, sts } => write!(
                f,
                "every MX host of {domain} has DNSSEC-validated, usable TLSA records: DANE senders authenticate each by them{}",
                if *sts {
                    " and do not apply the MTA-STS policy"
                } else {
                    ""
                }
            ),
            DaneFinding::Partial { with, without } => write!(
                f,
                "DANE for {} only: DANE senders use pre-DANE opportunistic TLS with {}",
                with.join(", "),
                without.join(", ")
            ),
            DaneFinding::InsecureMx { domain } => write!(
                f,
                "the MX records of {domain} are not DNSSEC-validated, so DANE need not apply: senders may use the MX hosts' TLSA records but cannot require them"
            ),
            DaneFinding::LookupFailed { host, reason } => write!(
                f,
                "the DNSSEC lookup for {host} failed ({reason}): DANE senders treat it as unreachable, and defer mail when no other MX host can be used"
            ),
            DaneFinding::TlsaInsecure {
                host,
                count,
                addresses_secure,
            } => write!(
                f,
                "{count} TLSA record(s) at _25._tcp.{host}, but {}: DANE senders ignore them",
                if *addresses_secure {
                    "they are not DNSSEC-validated"
                } else {
                    "the host's addresses are not DNSSEC-validated"
                }
            ),
            DaneFinding::TlsaUnusable { record, why } => {
                write!(f, "TLSA record {record} is unusable: {why}")
            }
            DaneFinding::NoUsableTlsa { host } => write!(
                f,
                "every TLSA record of {host} is unusable: DANE senders require TLS but cannot authenticate the server"
            ),
            DaneFinding::Match { record, how } => {
                write!(f, "the certificate matches TLSA record {record} ({how})")
            }
            DaneFinding::Mismatch {
                host,
                names,
                ta_name_mismatch,
            } => {
                if *ta_name_mismatch {
                    write!(
                        f,
                        "a DANE-TA record matches the chain, but the certificate names {}, not {host}: DANE senders refuse this MX",
                        names.join(", ")
                    )
                } else {
                    write!(
                        f,
                        "no usable TLSA record of {host} matches the certificate presented: DANE senders refuse this MX"
                    )
                }
            }
            DaneFinding::TlsRequired { host, reason } => write!(
                f,
                "{host} publishes DNSSEC-validated TLSA records, but {reason}: DANE senders deliver to it only over TLS"
            ),
        }
    }
}

impl Diagnostic for DaneFinding {
    fn code(&self) -> &'static str {
        match self {
            DaneFinding::Mandatory { .. } => "dane.mandatory",
            DaneFinding::Partial { .. } => "dane.partial",
            DaneFinding::InsecureMx { .. } => "dane.insecure-mx",
            DaneFinding::LookupFailed { .. } => "dane.lookup-failed",
            DaneFinding::TlsaInsecure { .. } => "dane.tlsa-insecure",
            DaneFinding::TlsaUnusable { .. } => "dane.tlsa-unusable",
            DaneFinding::NoUsableTlsa { .. } => "dane.no-usable-tlsa",
            DaneFinding::Match { .. } => "dane.match",
            DaneFinding::Mismatch { .. } => "dane.mismatch",
            DaneFinding::TlsRequired { .. } => "dane.tls-required",
        }
    }
    fn severity(&self) -> Severity {
        match self {
            DaneFinding::Mandatory { .. } | DaneFinding::Match { .. } => Severity::Info,
            DaneFinding::Partial { .. }
            | DaneFinding::InsecureMx { .. }
            | DaneFinding::TlsaInsecure { .. }
            | DaneFinding::TlsaUnusable { .. }
            | DaneFinding::NoUsableTlsa { .. } => Severity::Warning,
            DaneFinding::LookupFailed { .. }
            | DaneFinding::Mismatch { .. }
            | DaneFinding::TlsRequired { .. } => Severity::Error,
        }
    }
    fn rfc(&self) -> RfcRef {
        match self {
            DaneFinding::Mandatory { .. } => RfcRef::sts("2"),
            DaneFinding::Partial { .. } | DaneFinding::InsecureMx { .. } => {
                RfcRef::new(7672, "2.2.1")
            }
            DaneFinding::LookupFailed { .. } => RfcRef::new(7672, "2.1.2"),
            DaneFinding::TlsaInsecure { .. } => RfcRef::new(7672, "2.2.2"),
            DaneFinding::TlsaUnusable { .. } => RfcRef::new(7672, "3.1"),
            DaneFinding::NoUsableTlsa { .. } => RfcRef::new(7672, "2.2"),
            DaneFinding::Match { .. } | DaneFinding::Mismatch { .. } => RfcRef::new(7672, "3.2"),
            DaneFinding::TlsRequired { .. } => RfcRef::new(7672, "2.2.3"),
        }
    }
    fn location(&self) -> Location {
        Location::Whole
    }
    fn hint(&self) -> String {
        match self {
            DaneFinding::Mandatory { .. } => {
                "publish a TLSA record for the next key before every key rollover (RFC 7672 §4)"
                    .into()
            }
            DaneFinding::Partial { without, .. } => format!(
                "publish TLSA records for {} too, or for no MX host",
                without.join(", ")
            ),
            DaneFinding::InsecureMx { domain } => {
                format!("sign the zone of {domain} with DNSSEC, or rely on MTA-STS alone for it")
            }
            DaneFinding::LookupFailed { host, .. } => format!(
                "fix the DNSSEC signatures or the name servers answering for {host} (a validating resolver answers SERVFAIL for bogus data)"
            ),
            DaneFinding::TlsaInsecure { host, .. } => {
                format!("sign the zone of {host} with DNSSEC, or remove the TLSA records")
            }
            DaneFinding::TlsaUnusable { .. } => {
                "publish DANE-EE(3) SPKI(1) SHA2-256(1) (\"3 1 1\") records instead".into()
            }
            DaneFinding::NoUsableTlsa { host } => {
                format!("publish a \"3 1 1\" record for the key {host} presents")
            }
            DaneFinding::Match { .. } => "nothing to do".into(),
            DaneFinding::Mismatch { host, .. } => format!(
                "publish a TLSA record matching the certificate {host} presents (e.g. \"3 1 1\" of its public key), or present the certificate the records describe"
            ),
            DaneFinding::TlsRequired { host, .. } => {
                format!("offer STARTTLS on {host}, or remove its TLSA records")
            }
        }
    }
}

impl Catalogue for DaneFinding {
    fn examples() -> Vec<Self> {
        let host = "mx1.example.com".to_owned();
        let record = "3 1 1 0000000000000000000000000000000000000000000000000000000000000000";
        vec![
            DaneFinding::Mandatory {
                domain: "example.com".into(),
                sts: true,
            },
            DaneFinding::Partial {
                with: vec![host.clone()],
                without: vec!["mx2.example.com".into()],
            },
            DaneFinding::InsecureMx {
                domain: "example.com".into(),
            },
            DaneFinding::LookupFailed {
                host: host.clone(),
                reason: "SERVFAIL".into(),
            },
            DaneFinding::TlsaInsecure {
                host: host.clone(),
                count: 1,
                addresses_secure: true,
            },
            DaneFinding::TlsaUnusable {
                record: format!("1{}", &record[1..]),
                why: "certificate usage 1 (PKIX-EE) is undefined for SMTP and treated as unusable"
                    .into(),
            },
            DaneFinding::NoUsableTlsa { host: host.clone() },
            DaneFinding::Match {
                record: record.into(),
                how: "DANE-EE SPKI SHA2-256".into(),
            },
            DaneFinding::Mismatch {
                host: host.clone(),
                names: vec![host.clone()],
                ta_name_mismatch: false,
            },
            DaneFinding::TlsRequired {
                host,
                reason: "STARTTLS is not offered".into(),
            },
        ]
    }
    fn meaning(&self) -> &'static str {
        match self {
            DaneFinding::Mandatory { .. } => {
                "Every MX host has usable DNSSEC-validated TLSA records: DANE senders require DANE, and DANE takes precedence over MTA-STS."
            }
            DaneFinding::Partial { .. } => {
                "Only some MX hosts have DNSSEC-validated TLSA records; the others get opportunistic TLS from DANE senders."
            }
            DaneFinding::InsecureMx { .. } => {
                "TLSA records exist, but the MX records are not DNSSEC-validated, so DANE cannot be required for the domain."
            }
            DaneFinding::LookupFailed { .. } => {
                "A DNSSEC lookup (MX, address or TLSA) failed: DANE senders skip the host, or defer."
            }
            DaneFinding::TlsaInsecure { .. } => {
                "TLSA records that are not DNSSEC-validated: senders ignore them."
            }
            DaneFinding::TlsaUnusable { .. } => {
                "A TLSA record SMTP clients cannot use (PKIX usages, unknown parameters, a digest of the wrong length)."
            }
            DaneFinding::NoUsableTlsa { .. } => {
                "Every TLSA record of an MX host is unusable: TLS is required, without authentication."
            }
            DaneFinding::Match { .. } => {
                "An MX address's certificate matches one of its usable TLSA records."
            }
            DaneFinding::Mismatch { .. } => {
                "No usable TLSA record matches an MX address's certificate: DANE senders refuse it."
            }
            DaneFinding::TlsRequired { .. } => {
                "An MX host with DNSSEC-validated TLSA records was reached without TLS: DANE senders refuse to deliver in plaintext."
            }
        }
    }
}
