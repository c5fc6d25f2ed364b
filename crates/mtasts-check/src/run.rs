//! Running checks: the probes for one domain in parallel (records, fetch, every MX address),
//! a per-address connection limit shared by all domains of a bulk run, then [`assess`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all as futures_join_all;
use mtasts_core::domain::to_a_label;
use mtasts_core::sts::fetch::FetchLimits;
use mtasts_core::sts::record::is_sts_record;
use mtasts_core::tlsrpt::record::{ReportUri, select_tlsrpt_record};
use mtasts_net::dns::{Dns, DnsLookup, DnsSettings, QueryType};
use mtasts_net::https::{FetchSettings, fetch_policy};
use mtasts_net::tls::{TlsClient, TrustRoots, Verification};
use tokio::sync::Semaphore;

use crate::assess::{AssessSettings, DomainReport, assess};
use crate::dns;
use crate::obs::{AddressLookup, MxHost, MxLookup, Observations, RuaDomain, TxtLookup};
use crate::smtp::{SmtpSettings, probe};

/// Everything the checker can be told. Every limit is explicit.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// The DNS server to ask (`None`: the system's resolvers).
    pub dns: Option<SocketAddr>,
    /// Timeout of each DNS query.
    pub dns_timeout: Duration,
    /// Trust roots (`None`: the platform's store).
    pub ca_file: Option<PathBuf>,
    /// The policy host's HTTPS port (443).
    pub https_port: u16,
    /// The MX hosts' SMTP port (25).
    pub smtp_port: u16,
    /// TCP connect timeout (HTTPS and SMTP).
    pub connect_timeout: Duration,
    /// The whole policy fetch's deadline.
    pub fetch_timeout: Duration,
    /// Timeout of each SMTP reply and of the TLS handshake.
    pub smtp_timeout: Duration,
    /// Policy body limit (RFC 8461 §3.3: 64 KiB).
    pub max_body: u64,
    /// Whether a media type other than text/plain fails the fetch, as for most senders.
    pub require_text_plain: bool,
    /// The EHLO name.
    pub helo_name: String,
    /// Most simultaneous connections to one IP address, across all domains of a run.
    pub per_address_connections: usize,
    /// Most MX hosts probed per domain.
    pub max_mx_hosts: usize,
    /// Most addresses probed per MX host.
    pub max_addresses_per_host: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            dns: None,
            dns_timeout: Duration::from_secs(5),
            ca_file: None,
            https_port: 443,
            smtp_port: 25,
            connect_timeout: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(30),
            smtp_timeout: Duration::from_secs(30),
            max_body: 64 * 1024,
            require_text_plain: true,
            helo_name: "mtasts-check.invalid".into(),
            per_address_connections: 2,
            max_mx_hosts: 10,
            max_addresses_per_host: 4,
        }
    }
}

/// Why the checker could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// DNS.
    #[error(transparent)]
    Dns(#[from] mtasts_net::dns::DnsSetupError),
    /// Trust roots.
    #[error(transparent)]
    Roots(#[from] mtasts_net::tls::RootsError),
}

/// A domain that cannot be checked.
#[derive(Debug, thiserror::Error)]
#[error("{domain:?} is not a domain name: {reason}")]
pub struct BadDomain {
    /// The input.
    pub domain: String,
    /// Why.
    pub reason: String,
}

/// The checker: DNS, TLS and the shared per-address limits.
#[derive(Clone)]
pub struct Checker {
    cfg: Arc<CheckConfig>,
    dns: Arc<dyn DnsLookup>,
    tls: TlsClient,
    slots: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
}

impl Checker {
    /// A checker per `cfg`.
    pub fn new(cfg: CheckConfig) -> Result<Checker, SetupError> {
        let dns = Dns::new(&DnsSettings {
            servers: cfg.dns.into_iter().collect(),
            timeout: cfg.dns_timeout,
            attempts: 2,
        })?
        .shared();
        let tls = TlsClient::from_roots(&TrustRoots::from_option(cfg.ca_file.as_deref()))?;
        Ok(Checker {
            cfg: Arc::new(cfg),
            dns,
            tls,
            slots: Arc::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CheckConfig {
        &self.cfg
    }

    /// The DNS client (for `init`).
    pub fn dns(&self) -> &dyn DnsLookup {
        self.dns.as_ref()
    }

    /// The judgement settings at time `now`.
    pub fn settings(&self, now: i64) -> AssessSettings {
        AssessSettings {
            limits: FetchLimits {
                max_body: self.cfg.max_body,
                require_text_plain: self.cfg.require_text_plain,
            },
            ..AssessSettings::at(now)
        }
    }

    fn slot(&self, ip: IpAddr) -> Arc<Semaphore> {
        let mut map = match self.slots.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(ip)
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.per_address_connections.max(1))))
            .clone()
    }

    /// Checks `domain`; `now` (Unix seconds) dates the certificate checks.
    pub async fn check(&self, domain: &str, now: i64) -> Result<DomainReport, BadDomain> {
        let obs = self.observe(domain).await?;
        Ok(assess(obs, &self.settings(now)))
    }

    /// Runs every probe for `domain`.
    pub async fn observe(&self, domain: &str) -> Result<Observations, BadDomain> {
        let ascii = to_a_label(domain.trim()).map_err(|e| BadDomain {
            domain: domain.to_owned(),
            reason: e.to_string(),
        })?;
        let sts_name = format!("_mta-sts.{ascii}");
        let rpt_name = format!("_smtp._tls.{ascii}");
        let dns = self.dns.as_ref();
        let (sts_txt, tlsrpt_txt, (mx, mx_ad), mx_ad_asked, dane) = tokio::join!(
            dns::txt(dns, &sts_name),
            dns::txt(dns, &rpt_name),
            dns::mx(dns, &ascii),
            dns.authenticated(&ascii, QueryType::Mx),
            dns::dane(&self.dns, &ascii),
        );
        let mx_authentic = mx_ad || mx_ad_asked;
        let published = matches!(&sts_txt, TxtLookup::Found { records, .. }
            if records.iter().any(|r| is_sts_record(&r.concat())));
        let fetch = async {
            if published {
                let s = FetchSettings {
                    port: self.cfg.https_port,
                    connect_timeout: self.cfg.connect_timeout,
                    timeout: self.cfg.fetch_timeout,
                    max_body: self.cfg.max_body,
                    verification: Verification::Record,
                    user_agent: concat!("mtasts-check/", env!("CARGO_PKG_VERSION")),
                };
                Some(fetch_policy(dns, &self.tls, &ascii, &s).await)
            } else {
                None
            }
        };
        let hosts: Vec<(u16, String)> = match &mx {
            MxLookup::Found { records } => records
                .iter()
                .take(self.cfg.max_mx_hosts)
                .cloned()
                .collect(),
            MxLookup::Implicit => vec![(0, ascii.clone())],
            _ => Vec::new(),
        };
        let probes = futures_join_all(
            hosts
                .iter()
                .map(|(pref, name)| self.probe_host(*pref, name, &ascii)),
        );
        let rua = self.rua_domains(&tlsrpt_txt);
        let (policy_fetch, mx_hosts, rua_domains) = tokio::join!(fetch, probes, rua);
        Ok(Observations {
            domain: domain.trim().to_owned(),
            ascii,
            sts_txt,
            tlsrpt_txt,
            rua_domains,
            mx,
            mx_authentic,
            policy_fetch,
            mx_hosts,
            dane: Some(dane),
        })
    }

    async fn probe_host(&self, preference: u16, name: &str, domain: &str) -> MxHost {
        let dns = self.dns.as_ref();
        let (addresses, cname_target) = dns::addresses(dns, name).await;
        let ips: Vec<IpAddr> = match &addresses {
            AddressLookup::Found { addresses } => addresses
                .iter()
                .take(self.cfg.max_addresses_per_host)
                .copied()
                .collect(),
            _ => Vec::new(),
        };
        let settings = SmtpSettings {
            port: self.cfg.smtp_port,
            connect_timeout: self.cfg.connect_timeout,
            command_timeout: self.cfg.smtp_timeout,
            helo_name: self.cfg.helo_name.clone(),
        };
        let smtp = futures_join_all(ips.into_iter().map(|ip| {
            let settings = &settings;
            async move {
                let slot = self.slot(ip);
                // The semaphore is never closed, so acquiring only fails if it were.
                let _permit = slot.acquire_owned().await.ok();
                probe(
                    &self.tls,
                    name,
                    domain,
                    SocketAddr::new(ip, settings.port),
                    settings,
                )
                .await
            }
        }))
        .await;
        MxHost {
            name: name.to_owned(),
            preference,
            cname_target,
            addresses,
            smtp,
        }
    }

    async fn rua_domains(&self, tlsrpt: &TxtLookup) -> Vec<RuaDomain> {
        let TxtLookup::Found { records, .. } = tlsrpt else {
            return Vec::new();
        };
        let Ok(rec) = select_tlsrpt_record(records) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for uri in rec.rua {
            if let ReportUri::Mailto { uri, domain, .. } = uri {
                let accepts_mail = match dns::mx(self.dns.as_ref(), &domain).await.0 {
                    MxLookup::Found { .. } | MxLookup::Implicit => Ok(()),
                    MxLookup::Null => Err("null MX".to_owned()),
                    MxLookup::NxDomain => Err(format!("{domain} does not exist")),
                    MxLookup::NoData => Err("no MX and no address".to_owned()),
                    MxLookup::Failed { reason, .. } => Err(format!("MX lookup failed: {reason}")),
                };
                out.push(RuaDomain {
                    uri,
                    domain,
                    accepts_mail,
                });
            }
        }
        out
    }
}
