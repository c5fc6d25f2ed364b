//! Policy discovery over DNS (RFC 8461 §3.1) through hickory-resolver.

use std::net::IpAddr;

use hickory_resolver::config::{NameServerConfig, ResolverConfig as HickoryConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use mtasts_core::sts::cache::Discovery;
use mtasts_core::sts::record::{STS_LABEL, select_sts_record};
use serde::Serialize;

use crate::config::DnsConfig;

/// What one `_mta-sts` TXT lookup saw and concluded.
#[derive(Clone, Debug, Serialize)]
pub struct DiscoveryReport {
    /// The name queried.
    pub name: String,
    /// The TXT strings, each record's character-strings joined (§3.1). Empty on failure.
    pub records: Vec<String>,
    /// The conclusion, as the cache decisions take it.
    #[serde(serialize_with = "ser_discovery")]
    pub discovery: Discovery,
}

fn ser_discovery<S: serde::Serializer>(d: &Discovery, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    match d {
        Discovery::Record { id } => {
            m.serialize_entry("result", "record")?;
            m.serialize_entry("id", id)?;
        }
        Discovery::NoRecord { reason } => {
            m.serialize_entry("result", "no-record")?;
            m.serialize_entry("reason", reason)?;
        }
        Discovery::Transient { reason } => {
            m.serialize_entry("result", "transient")?;
            m.serialize_entry("reason", reason)?;
        }
    }
    m.end()
}

/// Why the DNS client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("DNS: {0}")]
pub struct DnsSetupError(String);

/// The DNS side of the resolver.
#[derive(Clone, Debug)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// A client for the configured upstream servers, or the system's when none are given.
    pub fn new(cfg: &DnsConfig) -> Result<Dns, DnsSetupError> {
        let mut builder = if cfg.servers.is_empty() {
            Resolver::builder_tokio().map_err(|e| {
                DnsSetupError(format!(
                    "cannot read the system resolver configuration: {e}"
                ))
            })?
        } else {
            let servers = cfg
                .servers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            Resolver::builder_with_config(
                HickoryConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts = builder.options_mut();
        opts.timeout = cfg.timeout();
        opts.attempts = cfg.attempts.max(1);
        // The policy cache is ours: hickory's answer cache would only hide record changes.
        opts.cache_size = 0;
        opts.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsSetupError(format!("cannot build the resolver: {e}")))?;
        Ok(Dns { resolver })
    }

    /// Looks up `_mta-sts.<domain>` and applies the §3.1 selection rule.
    ///
    /// NXDOMAIN and NODATA mean "no record"; SERVFAIL, REFUSED, timeouts and network errors are
    /// transient and say nothing about whether a policy exists.
    pub async fn discover(&self, domain: &str) -> DiscoveryReport {
        let name = format!("{STS_LABEL}.{domain}.");
        match self.resolver.txt_lookup(name.as_str()).await {
            Ok(lookup) => {
                let records: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                let raw: Vec<&[Box<[u8]>]> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(&t.txt_data[..]),
                        _ => None,
                    })
                    .collect();
                let discovery = match select_sts_record(&raw) {
                    Ok(rec) => Discovery::Record { id: rec.id },
                    Err(e) => Discovery::NoRecord {
                        reason: e.to_string(),
                    },
                };
                DiscoveryReport {
                    name,
                    records,
                    discovery,
                }
            }
            Err(e) => DiscoveryReport {
                discovery: classify(&e),
                name,
                records: Vec::new(),
            },
        }
    }

    /// The addresses of `host` (A and AAAA), through the same upstream servers.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let fqdn = format!("{host}.");
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) if e.is_nx_domain() => Err(format!("{host} does not exist (NXDOMAIN)")),
            Err(e) if e.is_no_records_found() => Err(format!("{host} has no A or AAAA record")),
            Err(e) => Err(format!("cannot resolve {host}: {e}")),
        }
    }
}

fn classify(e: &NetError) -> Discovery {
    if let NetError::Dns(hickory_resolver::net::DnsError::NoRecordsFound(nr)) = e {
        match nr.response_code {
            ResponseCode::NXDomain => {
                return Discovery::NoRecord {
                    reason: "NXDOMAIN: no _mta-sts record".into(),
                };
            }
            ResponseCode::NoError => {
                return Discovery::NoRecord {
                    reason: "NODATA: no TXT record at _mta-sts".into(),
                };
            }
            _ => {}
        }
    }
    Discovery::Transient {
        reason: format!("DNS lookup failed: {e}"),
    }
}
