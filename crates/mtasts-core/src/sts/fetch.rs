//! The rules for the policy fetch response (RFC 8461 §3.3), as pure functions of what the
//! HTTP client saw. The I/O edge performs the request (HTTPS with SNI, certificate valid for
//! `mta-sts.<domain>`, no redirects followed, no HTTP cache) and hands the response here.
//!
//! <https://www.rfc-editor.org/rfc/rfc8461#section-3.3>

use crate::diag::{Diagnostic, Location, Severity};
use crate::dns::DnsError;
use crate::rfc::RfcRef;
use crate::sts::policy::{Policy, PolicyError};
use crate::tls::{CertVerdict, HandshakeFailure};
use crate::tlsrpt::result::{Failure, ResultType};
use serde::Serialize;
use std::fmt;

/// The well-known path of the policy (§3.2).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// The label prepended to the policy domain to name the policy host (§3.2).
pub const POLICY_HOST_LABEL: &str = "mta-sts";
/// The body size limit the RFC suggests: 64 KiB (§3.3).
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024;

const S3_3: RfcRef = RfcRef::sts("3.3");

/// The policy host for a policy domain: `mta-sts.<domain>`.
pub fn policy_host(domain: &str) -> String {
    format!("{POLICY_HOST_LABEL}.{}", domain.trim_end_matches('.'))
}

/// The policy URL for a policy domain.
pub fn policy_url(domain: &str) -> String {
    policy_url_on_port(domain, 443)
}

/// The policy URL for a policy domain with the HTTPS port given (always 443 on the internet;
/// other ports are for labs), and the `Host` header value that goes with it.
pub fn policy_url_on_port(domain: &str, port: u16) -> String {
    format!("https://{}{POLICY_PATH}", policy_authority(domain, port))
}

/// `mta-sts.<domain>`, with `:port` unless the port is 443 (the `Host` header, RFC 9110 §7.2).
pub fn policy_authority(domain: &str, port: u16) -> String {
    if port == 443 {
        policy_host(domain)
    } else {
        format!("{}:{port}", policy_host(domain))
    }
}

/// Limits on the response, explicit and configurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// Largest body accepted, in bytes (default 64 KiB, §3.3).
    pub max_body: u64,
    /// Whether a media type other than `text/plain` (or none) makes the fetch fail. The RFC
    /// says SHOULD; almost every sender rejects anything else, so the default is true.
    pub require_text_plain: bool,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_body: DEFAULT_MAX_BODY,
            require_text_plain: true,
        }
    }
}

/// What is wrong with the Content-Type of the response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaTypeProblem {
    /// No Content-Type header.
    Missing,
    /// The header cannot be parsed as a media type.
    Malformed,
    /// A type other than `text/plain`.
    NotTextPlain {
        /// `type/subtype` as sent, lower-cased.
        essence: String,
    },
    /// A charset other than utf-8 or us-ascii.
    Charset {
        /// The charset as sent.
        charset: String,
    },
}

impl fmt::Display for MediaTypeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaTypeProblem::Missing => f.write_str("the response has no Content-Type"),
            MediaTypeProblem::Malformed => f.write_str("the Content-Type cannot be parsed"),
            MediaTypeProblem::NotTextPlain { essence } => {
                write!(f, "the media type is {essence}, not text/plain")
            }
            MediaTypeProblem::Charset { charset } => {
                write!(f, "the charset is {charset}, not utf-8 or us-ascii")
            }
        }
    }
}

/// Why a fetched response yields no policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// A 3xx: redirects MUST NOT be followed.
    Redirect {
        /// The status code.
        status: u16,
        /// The Location header, if any.
        location: Option<String>,
    },
    /// Any status other than 200 and 3xx.
    Status {
        /// The status code.
        status: u16,
    },
    /// The media type is not acceptable.
    MediaType(MediaTypeProblem),
    /// The body (declared or received so far) is over the limit.
    BodyTooLarge {
        /// Bytes declared by Content-Length, or received when the limit was crossed.
        size: u64,
        /// Whether `size` was declared (Content-Length) rather than counted.
        declared: bool,
        /// The limit.
        limit: u64,
    },
    /// The body is not a valid policy.
    Policy(PolicyError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Redirect {
                status,
                location: Some(l),
            } => write!(
                f,
                "the policy URL redirects ({status}) to {l}; redirects must not be followed"
            ),
            FetchError::Redirect { status, .. } => {
                write!(
                    f,
                    "the policy URL redirects ({status}); redirects must not be followed"
                )
            }
            FetchError::Status { status } => write!(f, "HTTP status {status}, not 200"),
            FetchError::MediaType(p) => p.fmt(f),
            FetchError::BodyTooLarge {
                size,
                declared: true,
                limit,
            } => write!(f, "Content-Length {size} is over the {limit}-byte limit"),
            FetchError::BodyTooLarge { size, limit, .. } => {
                write!(
                    f,
                    "the body reached {size} bytes, over the {limit}-byte limit"
                )
            }
            FetchError::Policy(e) => write!(f, "invalid policy: {e}"),
        }
    }
}

impl std::error::Error for FetchError {}

impl Diagnostic for FetchError {
    fn code(&self) -> &'static str {
        match self {
            FetchError::Redirect { .. } => "sts.fetch.redirect",
            FetchError::Status { .. } => "sts.fetch.status",
            FetchError::MediaType(_) => "sts.fetch.media-type",
            FetchError::BodyTooLarge { .. } => "sts.fetch.body-too-large",
            FetchError::Policy(e) => e.code(),
        }
    }
    fn severity(&self) -> Severity {
        Severity::Error
    }
    fn rfc(&self) -> RfcRef {
        match self {
            FetchError::Policy(e) => e.rfc(),
            FetchError::MediaType(_) => RfcRef::sts("3.2"),
            _ => S3_3,
        }
    }
    fn location(&self) -> Location {
        match self {
            FetchError::Policy(e) => e.location(),
            _ => Location::Whole,
        }
    }
    fn hint(&self) -> String {
        match self {
            FetchError::Redirect { .. } => {
                "serve the policy directly at https://mta-sts.<domain>/.well-known/mta-sts.txt with status 200".into()
            }
            FetchError::Status { status: 404 } => {
                "publish the file at /.well-known/mta-sts.txt on the mta-sts host".into()
            }
            FetchError::Status { .. } => "make the policy URL answer 200".into(),
            FetchError::MediaType(_) => {
                "serve the file as \"Content-Type: text/plain\" (charset utf-8 or none)".into()
            }
            FetchError::BodyTooLarge { .. } => "a policy is a few hundred bytes: serve only the policy".into(),
            FetchError::Policy(e) => e.hint(),
        }
    }
}

/// §3.3: only 200 is a valid response; a 3xx is a redirect that MUST NOT be followed.
pub fn check_status(status: u16, location: Option<&str>) -> Result<(), FetchError> {
    match status {
        200 => Ok(()),
        300..=399 => Err(FetchError::Redirect {
            status,
            location: location.map(str::to_string),
        }),
        _ => Err(FetchError::Status { status }),
    }
}

/// A parsed `Content-Type` (RFC 9110 §8.3.1): lower-case type/subtype and parameters with
/// lower-case names, values unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lower-case.
    pub essence: String,
    /// Parameters in order.
    pub params: Vec<(String, String)>,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

impl MediaType {
    /// Parses a Content-Type header value; `None` if malformed.
    pub fn parse(value: &str) -> Option<MediaType> {
        let mut parts = value.splitn(2, ';');
        let essence = parts.next()?.trim();
        let (t, s) = essence.split_once('/')?;
        if t.is_empty()
            || s.is_empty()
            || !t.chars().all(is_token_char)
            || !s.chars().all(is_token_char)
        {
            return None;
        }
        let mut params = Vec::new();
        let mut rest = parts.next().unwrap_or("");
        loop {
            rest = rest.trim_start_matches([' ', '\t', ';']);
            if rest.is_empty() {
                break;
            }
            let (name, after) = rest.split_once('=')?;
            let name = name.trim();
            if name.is_empty() || !name.chars().all(is_token_char) {
                return None;
            }
            let (val, after) = if let Some(q) = after.strip_prefix('"') {
                // quoted-string with backslash escapes
                let mut out = String::new();
                let mut chars = q.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => out.push(chars.next()?.1),
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        c => out.push(c),
                    }
                }
                (out, &q[end?..])
            } else {
                let end = after.find(';').unwrap_or(after.len());
                let v = after[..end].trim();
                if v.is_empty() || !v.chars().all(is_token_char) {
                    return None;
                }
                (v.to_string(), &after[end..])
            };
            params.push((name.to_ascii_lowercase(), val));
            rest = after;
            let r = rest.trim_start_matches([' ', '\t']);
            if !(r.is_empty() || r.starts_with(';')) {
                return None;
            }
        }
        Some(MediaType {
            essence: format!("{}/{}", t.to_ascii_lowercase(), s.to_ascii_lowercase()),
            params,
        })
    }

    /// The value of a parameter (name compared case-insensitively).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// §3.2: the policy is `text/plain`; a charset, if given, is utf-8 or us-ascii; other
/// parameters are ignored.
pub fn check_media_type(content_type: Option<&str>) -> Result<(), MediaTypeProblem> {
    let ct = content_type.ok_or(MediaTypeProblem::Missing)?;
    let mt = MediaType::parse(ct).ok_or(MediaTypeProblem::Malformed)?;
    if mt.essence != "text/plain" {
        return Err(MediaTypeProblem::NotTextPlain {
            essence: mt.essence,
        });
    }
    if let Some(cs) = mt.param("charset")
        && !(cs.eq_ignore_ascii_case("utf-8") || cs.eq_ignore_ascii_case("us-ascii"))
    {
        return Err(MediaTypeProblem::Charset {
            charset: cs.to_string(),
        });
    }
    Ok(())
}

/// §3.3: checks a declared Content-Length before reading the body, so an oversize response
/// is refused without downloading it.
pub fn check_declared_length(
    content_length: Option<u64>,
    limits: &FetchLimits,
) -> Result<(), FetchError> {
    match content_length {
        Some(size) if size > limits.max_body => Err(FetchError::BodyTooLarge {
            size,
            declared: true,
            limit: limits.max_body,
        }),
        _ => Ok(()),
    }
}

/// §3.3: to be called as body bytes arrive (chunked or not): fails as soon as the count
/// crosses the limit, so the reader can stop.
pub fn check_received(received: u64, limits: &FetchLimits) -> Result<(), FetchError> {
    if received > limits.max_body {
        Err(FetchError::BodyTooLarge {
            size: received,
            declared: false,
            limit: limits.max_body,
        })
    } else {
        Ok(())
    }
}

/// What the HTTP client saw.
#[derive(Clone, Copy, Debug)]
pub struct PolicyResponse<'a> {
    /// The status code.
    pub status: u16,
    /// The Location header.
    pub location: Option<&'a str>,
    /// The Content-Type header.
    pub content_type: Option<&'a str>,
    /// The Content-Length header, if sent and numeric.
    pub content_length: Option<u64>,
    /// The body as received (the reader stops at the limit plus one byte).
    pub body: &'a [u8],
}

/// The whole §3.3 decision: status, media type, size, then the policy itself.
///
/// With `require_text_plain` off, a wrong media type is returned beside the policy instead
/// of failing the fetch.
pub fn evaluate_response(
    resp: &PolicyResponse<'_>,
    limits: &FetchLimits,
) -> Result<(Policy, Option<MediaTypeProblem>), FetchError> {
    check_status(resp.status, resp.location)?;
    let media = check_media_type(resp.content_type).err();
    if limits.require_text_plain
        && let Some(p) = media
    {
        return Err(FetchError::MediaType(p));
    }
    check_declared_length(resp.content_length, limits)?;
    check_received(resp.body.len() as u64, limits)?;
    let policy = Policy::parse(resp.body).map_err(FetchError::Policy)?;
    Ok((policy, media))
}

/// The steps of a policy fetch, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FetchStage {
    /// Resolving the policy host.
    Resolve,
    /// The TCP connection.
    Connect,
    /// The TLS handshake.
    Handshake,
    /// Sending the request and waiting for the response head.
    Response,
    /// Reading the body.
    Body,
}

impl FetchStage {
    /// The step's name for people.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchStage::Resolve => "resolving the policy host",
            FetchStage::Connect => "connecting",
            FetchStage::Handshake => "the TLS handshake",
            FetchStage::Response => "waiting for the response",
            FetchStage::Body => "reading the body",
        }
    }
}

/// Why the HTTPS exchange did not produce a complete response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TransportProblem {
    /// The policy host does not resolve, or its lookup failed.
    Dns {
        /// The lookup's error.
        error: DnsError,
    },
    /// No address accepted the connection.
    Connect {
        /// What the last attempt said.
        detail: String,
    },
    /// The TLS handshake failed (for an enforcing client, also on a bad certificate).
    Handshake {
        /// Why.
        failure: HandshakeFailure,
    },
    /// The server broke the HTTP exchange: closed without a response, sent a malformed one,
    /// or closed before the body was complete.
    Http {
        /// What happened.
        detail: String,
    },
    /// The step did not finish before the fetch's deadline.
    Timeout,
}

impl fmt::Display for TransportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportProblem::Dns { error } => error.fmt(f),
            TransportProblem::Connect { detail } | TransportProblem::Http { detail } => {
                f.write_str(detail)
            }
            TransportProblem::Handshake { failure } => failure.fmt(f),
            TransportProblem::Timeout => f.write_str("timed out"),
        }
    }
}

/// Why a policy fetch yielded no policy, from the first DNS query to the last byte: what the
/// cache remembers (§3.3 retry limit) and what TLS-RPT reports (RFC 8460 §4.3.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyFetchError {
    /// The exchange did not complete.
    Transport {
        /// The step that failed.
        stage: FetchStage,
        /// Why.
        problem: TransportProblem,
    },
    /// A complete response that yields no valid policy (status, media type, size, syntax).
    Response(FetchError),
}

impl PolicyFetchError {
    /// How a sending MTA reports it (RFC 8460 §4.3.2.2): `sts-webpki-invalid` for the policy
    /// host's certificate, `sts-policy-invalid` for a policy that does not parse, and
    /// `sts-policy-fetch-error` for everything else.
    pub fn failure(&self) -> Failure {
        match self {
            PolicyFetchError::Transport {
                problem:
                    TransportProblem::Handshake {
                        failure: HandshakeFailure::Certificate { .. },
                    },
                ..
            } => Failure::new(ResultType::StsWebpkiInvalid),
            PolicyFetchError::Response(FetchError::Policy(_)) => {
                Failure::new(ResultType::StsPolicyInvalid)
            }
            PolicyFetchError::Transport { .. } | PolicyFetchError::Response(_) => {
                Failure::new(ResultType::StsPolicyFetchError)
            }
        }
    }

    /// Whether the deadline was reached.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            PolicyFetchError::Transport {
                problem: TransportProblem::Timeout
                    | TransportProblem::Handshake {
                        failure: HandshakeFailure::Timeout
                    },
                ..
            }
        )
    }
}

impl fmt::Display for PolicyFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyFetchError::Transport {
                stage,
                problem: TransportProblem::Timeout,
            } => write!(f, "timed out while {}", stage.as_str()),
            PolicyFetchError::Transport { problem, .. } => problem.fmt(f),
            PolicyFetchError::Response(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PolicyFetchError {}

impl From<FetchError> for PolicyFetchError {
    fn from(e: FetchError) -> Self {
        PolicyFetchError::Response(e)
    }
}

/// A certificate verdict as a failed handshake of an enforcing client.
impl From<CertVerdict> for TransportProblem {
    fn from(verdict: CertVerdict) -> Self {
        TransportProblem::Handshake {
            failure: HandshakeFailure::Certificate { verdict },
        }
    }
}
