//! The one policy fetch of mtasts (RFC 8461 §3.3), over hyper on tokio-rustls: resolve
//! `mta-sts.<domain>` through the caller's DNS, connect to the first address that accepts, TLS
//! with SNI (TLS 1.2 or later, §7.2), `GET /.well-known/mta-sts.txt` over HTTP/1.1 with no
//! redirect followed and no HTTP cache, the body read to the limit plus one byte, the whole
//! fetch under one deadline.
//!
//! Everything seen is recorded in a [`PolicyFetch`]; whether it yields a policy is the core's
//! decision ([`mtasts_core::sts::fetch::evaluate_response`], through [`PolicyFetch::outcome`]).
//! A sender fetches with [`Verification::Enforce`] (a bad certificate ends the fetch); the
//! checker with [`Verification::Record`], so it can also report on the policy behind it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use mtasts_core::sts::fetch::{
    FetchLimits, FetchStage, MediaTypeProblem, POLICY_PATH, PolicyFetchError, PolicyResponse,
    TransportProblem, evaluate_response, policy_authority, policy_host, policy_url_on_port,
};
use mtasts_core::sts::policy::Policy;
use mtasts_core::tls::HandshakeFailure;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use crate::dns::DnsLookup;
use crate::tls::{TlsClient, TlsSession, Verification, handshake_failure, session};

/// Longest fetch deadline accepted, so no configured value can overflow a deadline.
pub const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(600);

/// One IP address family, to restrict connections to (`mtasts check -4` / `-6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl IpFamily {
    /// Whether `ip` is of this family.
    pub fn admits(self, ip: &IpAddr) -> bool {
        match self {
            IpFamily::Ipv4 => ip.is_ipv4(),
            IpFamily::Ipv6 => ip.is_ipv6(),
        }
    }

    /// `IPv4` or `IPv6`.
    pub fn name(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "IPv4",
            IpFamily::Ipv6 => "IPv6",
        }
    }
}

/// How to fetch: every limit explicit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchSettings {
    /// The HTTPS port (443; other ports are for labs).
    pub port: u16,
    /// TCP connect timeout, per address.
    pub connect_timeout: Duration,
    /// The whole fetch's deadline (RFC 8461 §3.3 suggests about a minute at most).
    pub timeout: Duration,
    /// Body limit in bytes (§3.3: 64 KiB); the reader stops one byte past it.
    pub max_body: u64,
    /// Whether a bad certificate ends the fetch.
    pub verification: Verification,
    /// The User-Agent header.
    pub user_agent: &'static str,
    /// Connect only to addresses of this family (`None`: any). Every address is still
    /// recorded in [`PolicyFetch::addresses`].
    pub family: Option<IpFamily>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            port: 443,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body: mtasts_core::sts::fetch::DEFAULT_MAX_BODY,
            verification: Verification::Enforce,
            user_agent: concat!("mtasts/", env!("CARGO_PKG_VERSION")),
            family: None,
        }
    }
}

/// Where and why a fetch stopped before a complete response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchFailure {
    /// The step.
    pub stage: FetchStage,
    /// Why.
    pub problem: TransportProblem,
}

impl FetchFailure {
    /// As the core's error.
    pub fn to_error(&self) -> PolicyFetchError {
        PolicyFetchError::Transport {
            stage: self.stage,
            problem: self.problem.clone(),
        }
    }
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_error().fmt(f)
    }
}

/// Everything one fetch saw.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyFetch {
    /// The URL.
    pub url: String,
    /// The policy host's addresses (empty when it did not resolve).
    pub addresses: Vec<IpAddr>,
    /// The address connected to.
    pub address: Option<SocketAddr>,
    /// The TLS session (with a recording verifier, also after a bad certificate).
    pub tls: Option<TlsSession>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// The Location header.
    pub location: Option<String>,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// The Content-Length header, when numeric.
    pub content_length: Option<u64>,
    /// The body as received, at most the limit plus one byte.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Bytes received.
    pub body_bytes: u64,
    /// Milliseconds taken.
    pub millis: u64,
    /// Why the fetch stopped before a complete response, if it did.
    pub failure: Option<FetchFailure>,
}

impl PolicyFetch {
    /// The response as the core judges it, when a complete one arrived.
    pub fn response(&self) -> Option<PolicyResponse<'_>> {
        if self.failure.is_some() {
            return None;
        }
        Some(PolicyResponse {
            status: self.status?,
            location: self.location.as_deref(),
            content_type: self.content_type.as_deref(),
            content_length: self.content_length,
            body: &self.body,
        })
    }

    /// The sender's verdict (§3.3): the policy, with a media-type problem tolerated when the
    /// limits allow it, or why there is none. A certificate that failed validation counts as
    /// a failed handshake, whether or not the verifier enforced it.
    pub fn outcome(
        &self,
        limits: &FetchLimits,
    ) -> Result<(Policy, Option<MediaTypeProblem>), PolicyFetchError> {
        if let Some(f) = &self.failure {
            return Err(f.to_error());
        }
        if let Some(tls) = &self.tls
            && !tls.verdict.is_valid()
        {
            return Err(PolicyFetchError::Transport {
                stage: FetchStage::Handshake,
                problem: tls.verdict.clone().into(),
            });
        }
        let resp = self.response().ok_or(PolicyFetchError::Transport {
            stage: FetchStage::Response,
            problem: TransportProblem::Http {
                detail: "no response".into(),
            },
        })?;
        Ok(evaluate_response(&resp, limits)?)
    }
}

fn fail(stage: FetchStage, problem: TransportProblem) -> FetchFailure {
    FetchFailure { stage, problem }
}

/// Aborts the HTTP connection task when the fetch ends, however it ends.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Fetches the policy of `domain` (A-label) and records everything seen.
pub async fn fetch_policy(
    dns: &dyn DnsLookup,
    tls: &TlsClient,
    domain: &str,
    s: &FetchSettings,
) -> PolicyFetch {
    let started = Instant::now();
    let mut out = PolicyFetch {
        url: policy_url_on_port(domain, s.port),
        addresses: Vec::new(),
        address: None,
        tls: None,
        status: None,
        location: None,
        content_type: None,
        content_length: None,
        body: Vec::new(),
        body_bytes: 0,
        millis: 0,
        failure: None,
    };
    let timeout = s.timeout.min(MAX_FETCH_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let host = policy_host(domain);
    out.failure = match timeout_at(deadline, dns.addresses(&host)).await {
        Ok(Ok(answer)) => {
            out.addresses = answer.records.addresses;
            fetch_into(&mut out, tls, domain, &host, s, deadline)
                .await
                .err()
        }
        Ok(Err(error)) => Some(fail(FetchStage::Resolve, TransportProblem::Dns { error })),
        Err(_) => Some(fail(FetchStage::Resolve, TransportProblem::Timeout)),
    };
    out.body_bytes = out.body.len() as u64;
    out.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    out
}

/// The fetch's steps; each records what it saw in `out` and stops at the first failure.
async fn fetch_into(
    out: &mut PolicyFetch,
    tls: &TlsClient,
    domain: &str,
    host: &str,
    s: &FetchSettings,
    deadline: tokio::time::Instant,
) -> Result<(), FetchFailure> {
    // Connect to the first address that accepts, as an HTTP client would.
    let mut stream = None;
    let mut last_error = String::new();
    let mut timed_out = false;
    let usable: Vec<IpAddr> = out
        .addresses
        .iter()
        .filter(|ip| s.family.is_none_or(|f| f.admits(ip)))
        .copied()
        .collect();
    if let (Some(f), true) = (s.family, usable.is_empty()) {
        last_error = format!("{host} has no {} address to connect to", f.name());
    }
    for ip in usable {
        let addr = SocketAddr::new(ip, s.port);
        let connect_deadline = deadline.min(tokio::time::Instant::now() + s.connect_timeout);
        match timeout_at(connect_deadline, TcpStream::connect(addr)).await {
            Ok(Ok(st)) => {
                out.address = Some(addr);
                stream = Some(st);
                break;
            }
            Ok(Err(e)) => last_error = format!("{addr}: {e}"),
            Err(_) => {
                timed_out = true;
                last_error = format!("{addr}: connection timed out");
            }
        }
    }
    let stream = stream.ok_or_else(|| {
        if timed_out {
            fail(FetchStage::Connect, TransportProblem::Timeout)
        } else {
            fail(
                FetchStage::Connect,
                TransportProblem::Connect { detail: last_error },
            )
        }
    })?;
    let handshake = |failure| {
        fail(
            FetchStage::Handshake,
            TransportProblem::Handshake { failure },
        )
    };
    let (cfg, slot) = tls.config(s.verification, &[b"http/1.1"]).map_err(|e| {
        handshake(HandshakeFailure::Protocol {
            detail: e.to_string(),
        })
    })?;
    let server_name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        handshake(HandshakeFailure::Protocol {
            detail: format!("{host} is not a valid server name"),
        })
    })?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let tls_stream = match timeout_at(deadline, connector.connect(server_name, stream)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(handshake(handshake_failure(&e, &slot, host))),
        Err(_) => return Err(handshake(HandshakeFailure::Timeout)),
    };
    out.tls = Some(session(tls_stream.get_ref().1, &slot, host));

    let http = |stage, detail: String| fail(stage, TransportProblem::Http { detail });
    let (mut sender, conn) = match timeout_at(
        deadline,
        hyper::client::conn::http1::handshake(TokioIo::new(tls_stream)),
    )
    .await
    {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Err(http(FetchStage::Response, describe_hyper(&e))),
        Err(_) => return Err(fail(FetchStage::Response, TransportProblem::Timeout)),
    };
    let _conn_task = AbortOnDrop(tokio::spawn(conn));
    let request = hyper::Request::get(POLICY_PATH)
        .header(hyper::header::HOST, policy_authority(domain, s.port))
        .header(hyper::header::USER_AGENT, s.user_agent)
        // §3.3: HTTP caching MUST NOT be used.
        .header(hyper::header::CACHE_CONTROL, "no-cache")
        .header(hyper::header::CONNECTION, "close")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| {
            http(
                FetchStage::Response,
                format!("cannot build the request: {e}"),
            )
        })?;
    let response = match timeout_at(deadline, sender.send_request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(http(FetchStage::Response, describe_hyper(&e))),
        Err(_) => return Err(fail(FetchStage::Response, TransportProblem::Timeout)),
    };
    let header = |name: hyper::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    out.status = Some(response.status().as_u16());
    out.location = header(hyper::header::LOCATION);
    out.content_type = header(hyper::header::CONTENT_TYPE);
    out.content_length = header(hyper::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    // §3.3: no body is read when the status or the declared length already fail the fetch.
    let limits = FetchLimits {
        max_body: s.max_body,
        require_text_plain: false,
    };
    if mtasts_core::sts::fetch::check_status(out.status.unwrap_or(0), out.location.as_deref())
        .and_then(|()| mtasts_core::sts::fetch::check_declared_length(out.content_length, &limits))
        .is_err()
    {
        return Ok(());
    }
    let cap = usize::try_from(s.max_body.saturating_add(1)).unwrap_or(usize::MAX);
    let mut body = response.into_body();
    loop {
        match timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let room = cap.saturating_sub(out.body.len());
                    out.body.extend_from_slice(&data[..data.len().min(room)]);
                    if out.body.len() >= cap {
                        return Ok(());
                    }
                }
            }
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => {
                let detail = match out.content_length {
                    Some(n) => format!(
                        "the connection closed after {} of the {n} bytes declared",
                        out.body.len()
                    ),
                    None => format!(
                        "the body broke off after {} bytes: {}",
                        out.body.len(),
                        describe_hyper(&e)
                    ),
                };
                return Err(http(FetchStage::Body, detail));
            }
            Err(_) => return Err(fail(FetchStage::Body, TransportProblem::Timeout)),
        }
    }
}

fn describe_hyper(e: &hyper::Error) -> String {
    let mut s = if e.is_incomplete_message() {
        "the connection closed before the message was complete".to_owned()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}
