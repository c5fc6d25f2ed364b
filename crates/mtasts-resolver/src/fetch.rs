//! The HTTPS policy fetch (RFC 8461 §3.3) as a sender makes it: the workspace's one fetch
//! ([`mtasts_net::https`]) with an enforcing verifier, judged by the core.

use mtasts_core::sts::cache::FetchOutcome;
use mtasts_core::sts::fetch::FetchLimits;
use mtasts_core::sts::policy::lint_policy;
use mtasts_core::{Diagnostic, Severity};
use mtasts_net::dns::DnsLookup;
use mtasts_net::https::{FetchSettings, fetch_policy};
use mtasts_net::tls::{RootsError, TlsClient, TrustRoots, Verification};
use serde::Serialize;

use crate::config::FetchConfig;

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
    /// What the policy has that some deployed senders reject although this resolver accepts
    /// it (a blank line, an mx with a trailing dot…): accepted, and noted here.
    pub accepted_despite: Vec<String>,
}

/// The HTTPS side of the resolver.
#[derive(Clone, Debug)]
pub struct Fetcher {
    tls: TlsClient,
    settings: FetchSettings,
    limits: FetchLimits,
}

impl Fetcher {
    /// A fetcher per `cfg`.
    pub fn new(cfg: &FetchConfig) -> Result<Fetcher, RootsError> {
        let tls = TlsClient::from_roots(&TrustRoots::from_option(cfg.ca_file.as_deref()))?;
        Ok(Fetcher {
            tls,
            settings: FetchSettings {
                port: cfg.port,
                connect_timeout: cfg.connect_timeout(),
                timeout: cfg.timeout(),
                max_body: cfg.max_body,
                verification: Verification::Enforce,
                ..FetchSettings::default()
            },
            limits: FetchLimits {
                max_body: cfg.max_body,
                require_text_plain: cfg.require_text_plain,
            },
        })
    }

    /// Fetches and validates the policy of `domain`, resolving its policy host through `dns`.
    pub async fn fetch(&self, dns: &dyn DnsLookup, domain: &str) -> (FetchOutcome, FetchReport) {
        let seen = fetch_policy(dns, &self.tls, domain, &self.settings).await;
        let mut accepted_despite = Vec::new();
        let (outcome, error, warning) = match seen.outcome(&self.limits) {
            Ok((policy, media)) => {
                accepted_despite = lint_policy(&seen.body)
                    .warnings
                    .iter()
                    .filter(|w| w.severity() == Severity::Error)
                    .map(|w| format!("{} ({})", w, w.code()))
                    .collect();
                (
                    FetchOutcome::Fetched(policy),
                    None,
                    media.map(|m| m.to_string()),
                )
            }
            Err(error) => {
                let text = error.to_string();
                (FetchOutcome::Failed { error }, Some(text), None)
            }
        };
        let report = FetchReport {
            url: seen.url,
            status: seen.status,
            content_type: seen.content_type,
            bytes: seen.body_bytes,
            millis: seen.millis,
            error,
            warning,
            accepted_despite,
        };
        (outcome, report)
    }
}
