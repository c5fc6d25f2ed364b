//! The HTTPS policy fetch (RFC 8461 §3.3): SNI and a certificate valid for
//! `mta-sts.<domain>`, no redirects, status 200 only, media type, the body cap enforced while
//! streaming, timeouts, no HTTP caching. The verdict on the response is the core's
//! [`evaluate_response`]; this module only moves bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mtasts_core::sts::cache::FetchOutcome;
use mtasts_core::sts::fetch::{FetchLimits, PolicyResponse, evaluate_response, policy_host};
use serde::Serialize;

use crate::config::FetchConfig;
use crate::dns::Dns;

/// Why the HTTPS client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("HTTPS: {0}")]
pub struct FetchSetupError(String);

/// What one fetch saw, for `mtasts resolve` and logs.
#[derive(Clone, Debug, Serialize)]
pub struct FetchReport {
    /// The URL fetched.
    pub url: String,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// Body bytes received (at most the limit plus one).
    pub bytes: u64,
    /// Milliseconds taken.
    pub millis: u64,
    /// `None` when the policy was valid; otherwise why not.
    pub error: Option<String>,
    /// A media-type problem tolerated because `require_text_plain` is off.
    pub warning: Option<String>,
}

/// The HTTPS side of the resolver.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    limits: FetchLimits,
    port: u16,
}

struct DnsAdapter(Dns);

impl reqwest::dns::Resolve for DnsAdapter {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dns = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = dns
                .addresses(&host)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The TLS client configuration for policy hosts: ring, TLS 1.2 or later (§7.2), trust from
/// `ca_file` or the platform's store.
pub fn tls_config(cfg: &FetchConfig) -> Result<rustls::ClientConfig, FetchSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                FetchSetupError(format!("cannot read ca_file {}: {e}", path.display()))
            })?;
            let mut n = 0;
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: rustls::pki_types::CertificateDer<'static> = cert.map_err(|e| {
                    FetchSetupError(format!("ca_file {}: bad PEM: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    FetchSetupError(format!("ca_file {}: bad certificate: {e}", path.display()))
                })?;
                n += 1;
            }
            if n == 0 {
                return Err(FetchSetupError(format!(
                    "ca_file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A platform store may hold certificates rustls cannot use; skip those.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(FetchSetupError(
                    "the platform trust store is empty or unreadable; set fetch.ca_file".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchSetupError(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Fetcher {
    /// A client per `cfg`, resolving policy hosts through `dns`.
    pub fn new(cfg: &FetchConfig, dns: Dns) -> Result<Fetcher, FetchSetupError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(cfg)?)
            // §3.3: redirects MUST NOT be followed.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.connect_timeout())
            .timeout(cfg.timeout())
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(0)
            .user_agent(concat!("mtasts/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(DnsAdapter(dns)))
            .build()
            .map_err(|e| FetchSetupError(format!("cannot build the HTTPS client: {e}")))?;
        Ok(Fetcher {
            client,
            limits: FetchLimits {
                max_body: cfg.max_body,
                require_text_plain: cfg.require_text_plain,
            },
            port: cfg.port,
        })
    }

    /// The policy URL for `domain` (with the lab port when it is not 443).
    pub fn url(&self, domain: &str) -> String {
        let host = policy_host(domain);
        if self.port == 443 {
            format!("https://{host}/.well-known/mta-sts.txt")
        } else {
            format!("https://{host}:{}/.well-known/mta-sts.txt", self.port)
        }
    }

    /// Fetches and validates the policy of `domain`.
    pub async fn fetch(&self, domain: &str) -> (FetchOutcome, FetchReport) {
        let url = self.url(domain);
        let started = Instant::now();
        let mut report = FetchReport {
            url: url.clone(),
            status: None,
            content_type: None,
            bytes: 0,
            millis: 0,
            error: None,
            warning: None,
        };
        let outcome = self.fetch_inner(&url, &mut report).await;
        report.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let FetchOutcome::Failed { reason } = &outcome {
            report.error = Some(reason.clone());
        }
        (outcome, report)
    }

    async fn fetch_inner(&self, url: &str, report: &mut FetchReport) -> FetchOutcome {
        let failed = |reason: String| FetchOutcome::Failed { reason };
        let resp = match self
            .client
            .get(url)
            .header(reqwest::header::CACHE_CONTROL, "no-cache")
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return failed(describe(&e)),
        };
        let status = resp.status().as_u16();
        report.status = Some(status);
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header(reqwest::header::LOCATION);
        let content_type = header(reqwest::header::CONTENT_TYPE);
        report.content_type.clone_from(&content_type);
        let content_length = header(reqwest::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
        let mut body = Vec::new();
        // Read only when the status and declared length allow it; stop one byte past the cap.
        let head = PolicyResponse {
            status,
            location: location.as_deref(),
            content_type: content_type.as_deref(),
            content_length,
            body: &[],
        };
        let head_ok = mtasts_core::sts::fetch::check_status(status, head.location).is_ok()
            && mtasts_core::sts::fetch::check_declared_length(content_length, &self.limits).is_ok();
        if head_ok {
            let mut resp = resp;
            let cap = usize::try_from(self.limits.max_body.saturating_add(1)).unwrap_or(usize::MAX);
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = cap.saturating_sub(body.len());
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if body.len() >= cap {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return failed(format!("reading the body: {}", describe(&e))),
                }
            }
        }
        report.bytes = body.len() as u64;
        let response = PolicyResponse {
            body: &body,
            ..head
        };
        match evaluate_response(&response, &self.limits) {
            Ok((policy, media)) => {
                report.warning = media.map(|m| m.to_string());
                FetchOutcome::Fetched(policy)
            }
            Err(e) => failed(e.to_string()),
        }
    }
}

/// A one-line description of a reqwest error, with its causes (TLS alerts, certificate
/// problems, timeouts).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}
