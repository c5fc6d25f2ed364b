//! The HTTPS client instant-acme talks to the ACME server through: the workspace's one stack
//! (hyper over tokio-rustls with ring, the trust roots and TLS ≥ 1.2 floor of
//! [`mtasts_net::tls::TlsClient`], names resolved through the one DNS client
//! [`mtasts_net::dns::DnsLookup`]), one connection per request, every limit explicit
//! ([`HttpLimits`]). instant-acme's own client (hyper-rustls with the platform verifier) is
//! not built.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use mtasts_net::dns::DnsLookup;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

/// The limits of every request to the ACME server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// TCP connect timeout per address (default 10 s).
    #[serde(with = "crate::secs")]
    pub connect_timeout: Duration,
    /// The whole request's deadline: resolve, connect, handshake, response and body
    /// (default 30 s).
    #[serde(with = "crate::secs")]
    pub request_timeout: Duration,
    /// The largest response body accepted (default 1 MiB; a certificate chain is a few KiB).
    pub max_response_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// Why a request to the ACME server failed; the message names the URL and the step.
#[derive(Debug, thiserror::Error)]
#[error("ACME request {method} {url}: {step}: {detail}")]
pub struct RequestError {
    method: String,
    url: String,
    step: &'static str,
    detail: String,
}

/// The client (cheap to clone).
#[derive(Clone)]
pub(crate) struct AcmeHttp {
    dns: Arc<dyn DnsLookup>,
    tls: Arc<rustls::ClientConfig>,
    limits: HttpLimits,
    user_agent: &'static str,
}

impl AcmeHttp {
    pub(crate) fn new(
        dns: Arc<dyn DnsLookup>,
        tls: Arc<rustls::ClientConfig>,
        limits: HttpLimits,
    ) -> AcmeHttp {
        AcmeHttp {
            dns,
            tls,
            limits,
            user_agent: concat!("mtasts/", env!("CARGO_PKG_VERSION"), " (instant-acme)"),
        }
    }

    async fn send(
        &self,
        req: hyper::Request<BodyWrapper<Bytes>>,
    ) -> Result<BytesResponse, RequestError> {
        let method = req.method().to_string();
        let url = req.uri().to_string();
        let fail = |step: &'static str, detail: String| RequestError {
            method: method.clone(),
            url: url.clone(),
            step,
            detail,
        };
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        let timed_out = |step| fail(step, "timed out".to_owned());
        let uri = req.uri().clone();
        if uri.scheme_str() != Some("https") {
            return Err(fail("url", "only https:// URLs are used".to_owned()));
        }
        let host = uri
            .host()
            .ok_or_else(|| fail("url", "no host".to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match timeout_at(deadline, self.dns.addresses(&host)).await {
                Ok(Ok(answer)) => answer.records.addresses,
                Ok(Err(e)) => return Err(fail("resolve", e.to_string())),
                Err(_) => return Err(timed_out("resolve")),
            },
        };
        let mut stream = None;
        let mut last = format!("{host} has no address");
        for ip in addresses {
            let addr = SocketAddr::new(ip, port);
            let connect_deadline =
                deadline.min(tokio::time::Instant::now() + self.limits.connect_timeout);
            match timeout_at(connect_deadline, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: connection timed out"),
            }
        }
        let stream = stream.ok_or_else(|| fail("connect", last))?;
        let server_name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| fail("handshake", format!("{host} is not a valid server name")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        let tls = match timeout_at(deadline, connector.connect(server_name, stream)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return Err(fail("handshake", e.to_string())),
            Err(_) => return Err(timed_out("handshake")),
        };
        let (mut sender, conn) = match timeout_at(
            deadline,
            hyper::client::conn::http1::handshake(TokioIo::new(tls)),
        )
        .await
        {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(fail("request", e.to_string())),
            Err(_) => return Err(timed_out("request")),
        };
        let conn_task = AbortOnDrop(tokio::spawn(conn));
        // Origin form on the wire, with the Host header hyper's connection API does not add.
        let (mut parts, body) = req.into_parts();
        let origin = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<hyper::Uri>()
            .map_err(|e| fail("url", e.to_string()))?;
        parts.uri = origin;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| host.clone());
        let host_value = hyper::header::HeaderValue::from_str(&authority)
            .map_err(|e| fail("url", e.to_string()))?;
        parts.headers.insert(hyper::header::HOST, host_value);
        parts.headers.insert(
            hyper::header::USER_AGENT,
            hyper::header::HeaderValue::from_static(self.user_agent),
        );
        parts.headers.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        let req = hyper::Request::from_parts(parts, body);
        let response = match timeout_at(deadline, sender.send_request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(fail("response", e.to_string())),
            Err(_) => return Err(timed_out("response")),
        };
        let (parts, mut body) = response.into_parts();
        let cap = usize::try_from(self.limits.max_response_bytes).unwrap_or(usize::MAX);
        let mut data = Vec::new();
        loop {
            match timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(chunk) = frame.into_data() {
                        if data.len().saturating_add(chunk.len()) > cap {
                            return Err(fail(
                                "body",
                                format!("larger than {} bytes", self.limits.max_response_bytes),
                            ));
                        }
                        data.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(fail("body", e.to_string())),
                Err(_) => return Err(timed_out("body")),
            }
        }
        drop(conn_task);
        Ok(BytesResponse {
            parts,
            body: Box::new(Bytes::from(data)),
        })
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: hyper::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            this.send(req)
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))
        })
    }
}

/// Aborts the connection task when the request ends, however it ends.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
