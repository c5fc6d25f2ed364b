//! DNS for the checker, through hickory: TXT, MX, A/AAAA (noting CNAMEs) and TLSA, with the
//! AD flag of each answer. The answer cache is off so that a re-check sees a fixed record.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig as HickoryConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use crate::obs::{AddressLookup, MxLookup, TxtLookup};

/// Why the DNS client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("DNS: {0}")]
pub struct DnsSetupError(String);

/// The checker's DNS client.
#[derive(Clone, Debug)]
pub struct Dns {
    resolver: TokioResolver,
    /// The first upstream server, for the AD-flag queries hickory cannot make.
    upstream: Option<SocketAddr>,
    timeout: Duration,
}

enum Failure {
    NxDomain,
    NoData,
    Other { reason: String, timeout: bool },
}

fn failure(e: &NetError) -> Failure {
    if let NetError::Dns(DnsError::NoRecordsFound(nr)) = e {
        match nr.response_code {
            ResponseCode::NXDomain => return Failure::NxDomain,
            ResponseCode::NoError => return Failure::NoData,
            _ => {}
        }
    }
    let text = e.to_string();
    let timeout = matches!(e, NetError::Timeout) || text.contains("timed out");
    Failure::Other {
        reason: text,
        timeout,
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Dns {
    /// A client for `server` (the lab, or a resolver of choice), or the system's resolvers.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Dns, DnsSetupError> {
        let upstream = server.or_else(|| {
            hickory_resolver::system_conf::read_system_conf()
                .ok()
                .and_then(|(c, _)| {
                    c.name_servers()
                        .first()
                        .map(|ns| SocketAddr::new(ns.ip, 53))
                })
        });
        let mut builder = match server {
            None => Resolver::builder_tokio().map_err(|e| {
                DnsSetupError(format!(
                    "cannot read the system resolver configuration: {e}"
                ))
            })?,
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                Resolver::builder_with_config(
                    HickoryConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.cache_size = 0;
        opts.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsSetupError(format!("cannot build the resolver: {e}")))?;
        Ok(Dns {
            resolver,
            upstream,
            timeout,
        })
    }

    /// Whether the upstream resolver vouches for `name`/`rtype` with the AD flag.
    ///
    /// A validating resolver sets AD only when the query asks for it (RFC 6840 §5.7), and
    /// hickory's resolver does not ask without its DNSSEC feature, so this one query is made
    /// by hand over UDP with AD set. Any failure means "not shown to be authentic".
    pub async fn authenticated(&self, name: &str, rtype: RecordType) -> bool {
        use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
        use hickory_resolver::proto::rr::Name;
        let Some(server) = self.upstream else {
            return false;
        };
        let Ok(qname) = Name::from_ascii(format!("{name}.")) else {
            return false;
        };
        let id = fastrand::u16(..);
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.metadata.authentic_data = true;
        msg.add_query(Query::query(qname, rtype));
        let Ok(bytes) = msg.to_vec() else {
            return false;
        };
        let bind: SocketAddr = if server.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let exchange = async {
            let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
            sock.connect(server).await.ok()?;
            sock.send(&bytes).await.ok()?;
            let mut buf = vec![0u8; 4096];
            loop {
                let n = sock.recv(&mut buf).await.ok()?;
                if let Ok(resp) = Message::from_vec(&buf[..n])
                    && resp.metadata.id == id
                {
                    return Some(
                        resp.metadata.authentic_data
                            && resp.metadata.response_code == ResponseCode::NoError,
                    );
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// The TXT RRset at `name`.
    pub async fn txt(&self, name: &str) -> TxtLookup {
        let started = Instant::now();
        let fqdn = format!("{name}.");
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let records: Vec<Vec<Vec<u8>>> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect()),
                        _ => None,
                    })
                    .collect();
                let millis = millis(started);
                if records.is_empty() {
                    TxtLookup::NoData { millis }
                } else {
                    TxtLookup::Found { records, millis }
                }
            }
            Err(e) => {
                let millis = millis(started);
                match failure(&e) {
                    Failure::NxDomain => TxtLookup::NxDomain { millis },
                    Failure::NoData => TxtLookup::NoData { millis },
                    Failure::Other { reason, timeout } => TxtLookup::Failed {
                        reason,
                        timeout,
                        millis,
                    },
                }
            }
        }
    }

    /// The MX RRset of `domain`, and whether the answer was authenticated (AD flag).
    pub async fn mx(&self, domain: &str) -> (MxLookup, bool) {
        let fqdn = format!("{domain}.");
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let authentic = lookup.message().metadata.authentic_data;
                let mut records: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((
                            mx.preference,
                            mx.exchange
                                .to_ascii()
                                .trim_end_matches('.')
                                .to_ascii_lowercase(),
                        )),
                        _ => None,
                    })
                    .collect();
                records.sort();
                records.dedup();
                // RFC 7505: a single "0 ." record is a null MX.
                if records.len() == 1 && records[0].1.is_empty() {
                    return (MxLookup::Null, authentic);
                }
                if records.is_empty() {
                    return (self.implicit_mx(domain).await, authentic);
                }
                (MxLookup::Found { records }, authentic)
            }
            Err(e) => match failure(&e) {
                Failure::NxDomain => (MxLookup::NxDomain, false),
                Failure::NoData => (self.implicit_mx(domain).await, false),
                Failure::Other { reason, .. } => (MxLookup::Failed { reason }, false),
            },
        }
    }

    async fn implicit_mx(&self, domain: &str) -> MxLookup {
        match self.addresses(domain).await.0 {
            AddressLookup::Found { .. } => MxLookup::Implicit,
            _ => MxLookup::NoData,
        }
    }

    /// The A and AAAA records of `host`, and the target name when it is a CNAME.
    pub async fn addresses(&self, host: &str) -> (AddressLookup, Option<String>) {
        let fqdn = format!("{host}.");
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => {
                let cname = lookup
                    .as_lookup()
                    .answers()
                    .iter()
                    .find_map(|r| match &r.data {
                        RData::CNAME(c) => Some(c.0.to_ascii().trim_end_matches('.').to_owned()),
                        _ => None,
                    });
                let addresses: Vec<_> = lookup.iter().collect();
                if addresses.is_empty() {
                    (AddressLookup::NoAddress, cname)
                } else {
                    (AddressLookup::Found { addresses }, cname)
                }
            }
            Err(e) => match failure(&e) {
                Failure::NxDomain => (AddressLookup::NxDomain, None),
                Failure::NoData => (AddressLookup::NoAddress, None),
                Failure::Other { reason, .. } => (AddressLookup::Failed { reason }, None),
            },
        }
    }

    /// `_25._tcp.<host>` TLSA records (RFC 7672) as presentation text, and the AD flag.
    pub async fn tlsa(&self, host: &str) -> (Vec<String>, bool) {
        let name = format!("_25._tcp.{host}.");
        match self.resolver.lookup(name.as_str(), RecordType::TLSA).await {
            Ok(lookup) => {
                let authentic = lookup.message().metadata.authentic_data;
                let records = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TLSA(t) => Some(t.to_string()),
                        _ => None,
                    })
                    .collect();
                (records, authentic)
            }
            Err(_) => (Vec::new(), false),
        }
    }
}
