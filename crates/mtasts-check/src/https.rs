//! The policy fetch as the checker does it (RFC 8461 §3.3): resolve `mta-sts.<domain>`,
//! connect, TLS with SNI, `GET /.well-known/mta-sts.txt` over HTTP/1.1, no redirects, the body
//! read up to the limit plus one byte, everything under one deadline. Unlike a sender, the
//! checker carries on past a bad certificate so it can also report on the policy behind it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use mtasts_core::sts::fetch::policy_host;
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use crate::dns::Dns;
use crate::obs::{AddressLookup, FetchFailure, FetchStage, PolicyFetch};
use crate::tls::{TlsProber, is_old_tls_only, session};

/// Limits of one fetch.
#[derive(Clone, Copy, Debug)]
pub struct FetchSettings {
    /// The HTTPS port (443; the lab may use another).
    pub port: u16,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// The whole fetch's deadline.
    pub timeout: Duration,
    /// Body limit in bytes (RFC 8461 §3.3 suggests 64 KiB).
    pub max_body: u64,
}

fn fail(stage: FetchStage, reason: impl Into<String>, timeout: bool) -> FetchFailure {
    FetchFailure {
        stage,
        reason: reason.into(),
        timeout,
        old_tls_only: false,
    }
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
    dns: &Dns,
    tls: &TlsProber,
    domain: &str,
    s: &FetchSettings,
) -> PolicyFetch {
    let started = Instant::now();
    let host = policy_host(domain);
    let url = if s.port == 443 {
        format!("https://{host}/.well-known/mta-sts.txt")
    } else {
        format!("https://{host}:{}/.well-known/mta-sts.txt", s.port)
    };
    let (addresses, _) = dns.addresses(&host).await;
    let mut out = PolicyFetch {
        url,
        addresses,
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
    out.failure = fetch_into(&mut out, tls, &host, s).await.err();
    out.body_bytes = out.body.len() as u64;
    out.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    out
}

/// The fetch's steps; each records what it saw in `out` and stops at the first failure.
async fn fetch_into(
    out: &mut PolicyFetch,
    tls: &TlsProber,
    host: &str,
    s: &FetchSettings,
) -> Result<(), FetchFailure> {
    let deadline = tokio::time::Instant::now() + s.timeout;
    let ips = match &out.addresses {
        AddressLookup::Found { addresses } => addresses.clone(),
        AddressLookup::NxDomain => {
            return Err(fail(
                FetchStage::Resolve,
                format!("{host} does not exist (NXDOMAIN)"),
                false,
            ));
        }
        AddressLookup::NoAddress => {
            return Err(fail(
                FetchStage::Resolve,
                format!("{host} has no A or AAAA record"),
                false,
            ));
        }
        AddressLookup::Failed { reason } => {
            return Err(fail(
                FetchStage::Resolve,
                format!("cannot resolve {host}: {reason}"),
                false,
            ));
        }
    };
    // Connect to the first address that accepts, as an HTTP client would.
    let mut stream = None;
    let mut last_error = String::new();
    let mut timed_out = false;
    for ip in ips {
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
    let stream = stream.ok_or_else(|| fail(FetchStage::Connect, last_error, timed_out))?;
    let (cfg, slot) = tls
        .config(&[b"http/1.1"])
        .map_err(|e| fail(FetchStage::Handshake, e, false))?;
    let server_name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        fail(
            FetchStage::Handshake,
            format!("{host} is not a valid server name"),
            false,
        )
    })?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let tls_stream = match timeout_at(deadline, connector.connect(server_name, stream)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return Err(FetchFailure {
                stage: FetchStage::Handshake,
                reason: format!("TLS handshake failed: {e}"),
                timeout: false,
                old_tls_only: is_old_tls_only(&e),
            });
        }
        Err(_) => return Err(fail(FetchStage::Handshake, "TLS handshake timed out", true)),
    };
    out.tls = Some(session(tls_stream.get_ref().1, &slot, host));

    let (mut sender, conn) = match timeout_at(
        deadline,
        hyper::client::conn::http1::handshake(TokioIo::new(tls_stream)),
    )
    .await
    {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Err(fail(FetchStage::Response, format!("HTTP: {e}"), false)),
        Err(_) => return Err(fail(FetchStage::Response, "timed out", true)),
    };
    let _conn_task = AbortOnDrop(tokio::spawn(conn));
    let authority = if s.port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{}", s.port)
    };
    let request = hyper::Request::get("/.well-known/mta-sts.txt")
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("mtasts-check/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CACHE_CONTROL, "no-cache")
        .header(hyper::header::CONNECTION, "close")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| {
            fail(
                FetchStage::Response,
                format!("cannot build the request: {e}"),
                false,
            )
        })?;
    let response = match timeout_at(deadline, sender.send_request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(fail(FetchStage::Response, describe_hyper(&e), false)),
        Err(_) => {
            return Err(fail(
                FetchStage::Response,
                format!("no response within {} s", s.timeout.as_secs()),
                true,
            ));
        }
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
                let reason = match out.content_length {
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
                return Err(fail(FetchStage::Body, reason, false));
            }
            Err(_) => {
                return Err(fail(
                    FetchStage::Body,
                    format!(
                        "the body was still incomplete after {} s ({} bytes received)",
                        s.timeout.as_secs(),
                        out.body.len()
                    ),
                    true,
                ));
            }
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
