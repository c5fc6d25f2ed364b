//! The one DNS client of mtasts: hickory-resolver built from explicit settings, the lookups
//! MTA-STS, TLS-RPT and DANE need (TXT, MX, A/AAAA noting CNAMEs, TLSA), the AD flag, and one
//! classification of failures into the core's [`DnsErrorKind`]s.
//!
//! Callers hold a [`DnsLookup`] trait object, so that what they decide can be tested without
//! sockets ([`StaticDns`]) where the lab is not needed.
//!
//! hickory's answer cache is off: the caches that matter (the RFC 8461 §5.1 policy cache, the
//! DANE cache) are ours, and a cache below them would only hide record changes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfig, ResolverConfig as HickoryConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use mtasts_core::dane::{self, HostAddresses, Lookup, Security, Tlsa};
use mtasts_core::dns::{DnsError, DnsErrorKind, negative_ttl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest allowed per-query timeout, so that no configured value can overflow a deadline.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most attempts per query.
pub const MAX_ATTEMPTS: usize = 10;

/// How to ask: every limit explicit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// Upstream resolvers (`address:port`). Empty: the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// Time allowed for one query (at most [`MAX_TIMEOUT`]).
    pub timeout: Duration,
    /// Attempts per query before it counts as failed (1 to [`MAX_ATTEMPTS`]).
    pub attempts: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            servers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

/// Why the DNS client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    /// `/etc/resolv.conf` (or the platform's equivalent) could not be read.
    #[error("DNS: cannot read the system resolver configuration: {0}")]
    SystemConfig(String),
    /// A setting is out of range.
    #[error("DNS: {0}")]
    Setting(String),
    /// hickory refused the configuration.
    #[error("DNS: cannot build the resolver: {0}")]
    Build(String),
}

/// One answer: the records, the smallest TTL among them and how long the query took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<T> {
    /// The records.
    pub records: T,
    /// The smallest TTL of the answer's records, in seconds.
    pub ttl: u32,
    /// Milliseconds the lookup took.
    pub millis: u64,
    /// Whether the response carried the AD (authentic data) flag. hickory's resolver never
    /// asks for it, so this is true only for [`DnsLookup::authenticated`]-style queries and
    /// test doubles; see [`DnsLookup::authenticated`].
    pub authentic: bool,
}

/// One MX record: preference and exchange, the exchange in lower case without the trailing
/// dot (empty for the root, as in a null MX).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MxRecord {
    /// The preference.
    pub preference: u16,
    /// The host name.
    pub exchange: String,
}

/// The addresses of a name, and the name it is an alias of when a CNAME was followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addresses {
    /// A and AAAA records, in the order returned.
    pub addresses: Vec<IpAddr>,
    /// The CNAME target, when the name is an alias.
    pub cname: Option<String>,
}

/// A TXT RRset: each record's character-strings.
pub type TxtRrset = Vec<Vec<Vec<u8>>>;

/// The record types [`DnsLookup::authenticated`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryType {
    /// MX.
    Mx,
    /// TLSA.
    Tlsa,
    /// TXT.
    Txt,
}

impl QueryType {
    fn record_type(self) -> RecordType {
        match self {
            QueryType::Mx => RecordType::MX,
            QueryType::Tlsa => RecordType::TLSA,
            QueryType::Txt => RecordType::TXT,
        }
    }
}

/// The lookups mtasts makes. Names are given without the trailing dot.
#[async_trait]
pub trait DnsLookup: Send + Sync + std::fmt::Debug {
    /// The TXT RRset at `name`.
    async fn txt(&self, name: &str) -> Result<Answer<TxtRrset>, DnsError>;
    /// The MX RRset of `name`, sorted by preference then exchange, without duplicates.
    async fn mx(&self, name: &str) -> Result<Answer<Vec<MxRecord>>, DnsError>;
    /// The A and AAAA records of `name`.
    async fn addresses(&self, name: &str) -> Result<Answer<Addresses>, DnsError>;
    /// The TLSA RRset at `name` (e.g. `_25._tcp.mx.example.com`).
    async fn tlsa(&self, name: &str) -> Result<Answer<Vec<Tlsa>>, DnsError>;
    /// Whether the upstream resolver vouches for `name`/`qtype` with the AD flag. Any failure
    /// means "not shown to be authentic".
    async fn authenticated(&self, name: &str, qtype: QueryType) -> bool;

    /// The MX RRset of `name` as DANE needs it: one query asking for the DNSSEC status (AD
    /// and DO set, RFC 6840 §5.7), answered with the records and their TTL, or the denial
    /// and its negative TTL (RFC 2308 §5), or the failure; the security is the AD flag as
    /// the upstream resolver set it (whether to believe it is the caller's decision,
    /// [`dane::ad_trusted`]).
    async fn mx_dnssec(&self, name: &str) -> Lookup<Vec<dane::MxRecord>>;
    /// The addresses of `name` as DANE needs them: A, then AAAA when there is no A record
    /// (RFC 7672 §2.2.2 judges "the first query response"), with the end of any CNAME chain.
    async fn addresses_dnssec(&self, name: &str) -> Lookup<HostAddresses>;
    /// The TLSA RRset at `name` as DANE needs it.
    async fn tlsa_dnssec(&self, name: &str) -> Lookup<Vec<Tlsa>>;
    /// The upstream resolvers asked (for deciding whether their AD flags are trusted).
    fn servers(&self) -> Vec<SocketAddr>;
    /// How many DNSSEC-status queries ([`DnsLookup::mx_dnssec`] and the others) were sent so
    /// far, retries and the TCP retry of a truncated answer included.
    fn dnssec_queries(&self) -> u64 {
        0
    }
}

/// Looks up everything DANE needs for `domain` (RFC 7672): the MX RRset, then for each host
/// (at once) its addresses and, where the core says ([`dane::tlsa_names`]), its TLSA RRsets,
/// each with its DNSSEC status as the upstream resolver gave it. The resolver and the checker
/// both collect their evidence here; the core judges it ([`dane::assess`]).
pub async fn dane_evidence(dns: &Arc<dyn DnsLookup>, domain: &str) -> dane::Evidence {
    let mx = dns.mx_dnssec(domain).await;
    let hosts = dane::mx_hosts(domain, &mx);
    let listed = match &mx {
        Lookup::Found { records, .. } => {
            let mut names: Vec<&str> = records.iter().map(|r| r.exchange.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        }
        _ => hosts.len(),
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let dns = Arc::clone(dns);
        let host = host.clone();
        set.spawn(async move { (i, dane_host(dns.as_ref(), &host).await) });
    }
    let mut found: Vec<Option<dane::HostEvidence>> = vec![None; hosts.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, h)) = joined
            && let Some(slot) = found.get_mut(i)
        {
            *slot = Some(h);
        }
    }
    let host_evidence = hosts
        .iter()
        .zip(found)
        .map(|(host, h)| {
            h.unwrap_or_else(|| dane::HostEvidence {
                host: host.clone(),
                addresses: Lookup::failed(DnsErrorKind::Other, host, "the lookup task failed"),
                tlsa: Vec::new(),
            })
        })
        .collect();
    dane::Evidence {
        domain: domain.to_owned(),
        mx,
        hosts: host_evidence,
        hosts_not_examined: listed.saturating_sub(hosts.len()),
    }
}

async fn dane_host(dns: &dyn DnsLookup, host: &str) -> dane::HostEvidence {
    let addresses = dns.addresses_dnssec(host).await;
    let mut tlsa = Vec::new();
    for name in dane::tlsa_names(host, &addresses) {
        let lookup = dns.tlsa_dnssec(&name).await;
        let decisive = !matches!(lookup, Lookup::Absent { .. });
        tlsa.push((name, lookup));
        if decisive {
            break;
        }
    }
    dane::HostEvidence {
        host: host.to_owned(),
        addresses,
        tlsa,
    }
}

/// hickory-resolver with mtasts' settings.
#[derive(Clone, Debug)]
pub struct Dns {
    resolver: TokioResolver,
    /// The upstream servers, for the AD-flag queries hickory cannot make.
    upstream: Vec<SocketAddr>,
    timeout: Duration,
    attempts: usize,
    dnssec_queries: Arc<AtomicU64>,
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One classification of hickory's errors into the core's kinds.
pub fn classify(e: &NetError, name: &str) -> DnsError {
    let kind = match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => DnsErrorKind::NxDomain,
            ResponseCode::NoError => DnsErrorKind::NoData,
            ResponseCode::ServFail => DnsErrorKind::ServFail,
            ResponseCode::Refused => DnsErrorKind::Refused,
            _ => DnsErrorKind::Other,
        },
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::ServFail)) => {
            DnsErrorKind::ServFail
        }
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::Refused)) => {
            DnsErrorKind::Refused
        }
        NetError::Timeout => DnsErrorKind::Timeout,
        NetError::Io(_) | NetError::NoConnections => DnsErrorKind::Network,
        _ => DnsErrorKind::Other,
    };
    let detail = match kind {
        DnsErrorKind::NxDomain | DnsErrorKind::NoData => String::new(),
        _ => e.to_string(),
    };
    // hickory reports a query that timed out on every server as a generic error whose text
    // says so; keep the kind precise.
    let kind = if kind == DnsErrorKind::Other && detail.contains("timed out") {
        DnsErrorKind::Timeout
    } else {
        kind
    };
    DnsError::new(kind, name, detail)
}

fn min_ttl<'a>(records: impl Iterator<Item = &'a hickory_resolver::proto::rr::Record>) -> u32 {
    records.map(|r| r.ttl).min().unwrap_or(0)
}

impl Dns {
    /// A client for the configured upstream servers, or the system's when none are given.
    pub fn new(s: &DnsSettings) -> Result<Dns, DnsSetupError> {
        if s.timeout.is_zero() || s.timeout > MAX_TIMEOUT {
            return Err(DnsSetupError::Setting(format!(
                "the query timeout must be above 0 and at most {} s",
                MAX_TIMEOUT.as_secs()
            )));
        }
        if !(1..=MAX_ATTEMPTS).contains(&s.attempts) {
            return Err(DnsSetupError::Setting(format!(
                "attempts must be 1 to {MAX_ATTEMPTS}"
            )));
        }
        let (mut builder, upstream) = if s.servers.is_empty() {
            let upstream = hickory_resolver::system_conf::read_system_conf()
                .map(|(c, _)| {
                    c.name_servers()
                        .iter()
                        .map(|ns| SocketAddr::new(ns.ip, 53))
                        .collect()
                })
                .unwrap_or_default();
            let builder = Resolver::builder_tokio()
                .map_err(|e| DnsSetupError::SystemConfig(e.to_string()))?;
            (builder, upstream)
        } else {
            let servers = s
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
            let builder = Resolver::builder_with_config(
                HickoryConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            );
            (builder, s.servers.clone())
        };
        let opts = builder.options_mut();
        opts.timeout = s.timeout;
        opts.attempts = s.attempts;
        opts.cache_size = 0;
        opts.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsSetupError::Build(e.to_string()))?;
        Ok(Dns {
            resolver,
            upstream,
            timeout: s.timeout,
            attempts: s.attempts,
            dnssec_queries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// This client as the trait object callers hold.
    pub fn shared(self) -> Arc<dyn DnsLookup> {
        Arc::new(self)
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

impl Dns {
    /// One lookup of `rtype` at `name`, keeping the records `pick` extracts; an answer with
    /// none of them is NODATA.
    async fn records<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<Vec<T>>, DnsError> {
        let started = Instant::now();
        let lookup = self
            .resolver
            .lookup(fqdn(name).as_str(), rtype)
            .await
            .map_err(|e| classify(&e, name))?;
        let records: Vec<T> = lookup
            .answers()
            .iter()
            .filter_map(|r| pick(&r.data))
            .collect();
        if records.is_empty() {
            return Err(DnsError::new(DnsErrorKind::NoData, name, ""));
        }
        Ok(Answer {
            ttl: min_ttl(lookup.answers().iter()),
            records,
            millis: millis(started),
            authentic: lookup.message().metadata.authentic_data,
        })
    }
}

#[async_trait]
impl DnsLookup for Dns {
    async fn txt(&self, name: &str) -> Result<Answer<TxtRrset>, DnsError> {
        self.records(name, RecordType::TXT, |d| match d {
            RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .await
    }

    async fn mx(&self, name: &str) -> Result<Answer<Vec<MxRecord>>, DnsError> {
        let mut answer = self
            .records(name, RecordType::MX, |d| match d {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    exchange: mx
                        .exchange
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                }),
                _ => None,
            })
            .await?;
        answer.records.sort();
        answer.records.dedup();
        Ok(answer)
    }

    async fn addresses(&self, name: &str) -> Result<Answer<Addresses>, DnsError> {
        let started = Instant::now();
        let lookup = self
            .resolver
            .lookup_ip(fqdn(name).as_str())
            .await
            .map_err(|e| classify(&e, name))?;
        let answers = lookup.as_lookup().answers();
        let cname = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_ascii().trim_end_matches('.').to_owned()),
            _ => None,
        });
        let addresses: Vec<IpAddr> = lookup.iter().collect();
        if addresses.is_empty() {
            return Err(DnsError::new(DnsErrorKind::NoData, name, ""));
        }
        Ok(Answer {
            ttl: min_ttl(answers.iter()),
            records: Addresses { addresses, cname },
            millis: millis(started),
            authentic: lookup.as_lookup().message().metadata.authentic_data,
        })
    }

    async fn tlsa(&self, name: &str) -> Result<Answer<Vec<Tlsa>>, DnsError> {
        self.records(name, RecordType::TLSA, |d| match d {
            RData::TLSA(t) => Some(Tlsa {
                usage: u8::from(t.cert_usage),
                selector: u8::from(t.selector),
                matching: u8::from(t.matching),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .await
    }

    /// A validating resolver sets AD only when the query asks for it (RFC 6840 §5.7), and
    /// hickory's resolver does not ask without its DNSSEC feature, so this query is made by
    /// hand over UDP with AD set, to each upstream server in turn until one answers.
    async fn authenticated(&self, name: &str, qtype: QueryType) -> bool {
        let Ok(qname) = Name::from_ascii(fqdn(name)) else {
            return false;
        };
        for server in &self.upstream {
            if let Some(ad) = ad_query(*server, &qname, qtype.record_type(), self.timeout).await {
                return ad;
            }
        }
        false
    }

    async fn mx_dnssec(&self, name: &str) -> Lookup<Vec<dane::MxRecord>> {
        self.dnssec_lookup(name, RecordType::MX, |d| match d {
            RData::MX(mx) => Some(dane::MxRecord {
                preference: mx.preference,
                exchange: mx
                    .exchange
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            }),
            _ => None,
        })
        .await
        .0
    }

    async fn addresses_dnssec(&self, name: &str) -> Lookup<HostAddresses> {
        let mut last = None;
        for (rtype, v6) in [(RecordType::A, false), (RecordType::AAAA, true)] {
            let (lookup, canonical) = self
                .dnssec_lookup(name, rtype, |d| match d {
                    RData::A(a) if !v6 => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) if v6 => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .await;
            let lookup = match lookup {
                Lookup::Found {
                    records,
                    security,
                    ttl,
                } => {
                    return Lookup::Found {
                        records: HostAddresses {
                            addresses: records,
                            canonical,
                        },
                        security,
                        ttl,
                    };
                }
                Lookup::Absent {
                    nxdomain,
                    security,
                    ttl,
                } => Lookup::Absent {
                    nxdomain,
                    security,
                    ttl,
                },
                Lookup::Failed { error } => return Lookup::Failed { error },
            };
            // NXDOMAIN holds for every type: no need to ask for AAAA.
            let nx = matches!(lookup, Lookup::Absent { nxdomain: true, .. });
            last = Some(lookup);
            if nx {
                break;
            }
        }
        last.unwrap_or_else(|| Lookup::failed(DnsErrorKind::Other, name, "no query made"))
    }

    async fn tlsa_dnssec(&self, name: &str) -> Lookup<Vec<Tlsa>> {
        self.dnssec_lookup(name, RecordType::TLSA, |d| match d {
            RData::TLSA(t) => Some(Tlsa {
                usage: u8::from(t.cert_usage),
                selector: u8::from(t.selector),
                matching: u8::from(t.matching),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .await
        .0
    }

    fn servers(&self) -> Vec<SocketAddr> {
        self.upstream.clone()
    }

    fn dnssec_queries(&self) -> u64 {
        self.dnssec_queries.load(Ordering::Relaxed)
    }
}

/// The largest UDP answer asked for (the DNS flag day 2020 size); a larger one comes over TCP.
const EDNS_PAYLOAD: u16 = 1232;

/// Why one exchange with one server gave no usable answer.
enum ExchangeError {
    Timeout,
    Network(String),
}

impl Dns {
    /// One DNSSEC-status lookup of `rtype` at `name`: the records `pick` keeps, their smallest
    /// TTL (CNAMEs included) and the AD flag, or the denial with its negative TTL, or the
    /// failure; and the end of the CNAME chain, if any.
    async fn dnssec_lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> (Lookup<Vec<T>>, Option<String>) {
        let msg = match self.dnssec_exchange(name, rtype).await {
            Ok(m) => m,
            Err(error) => return (Lookup::Failed { error }, None),
        };
        let security = Security::from_ad(msg.metadata.authentic_data);
        let canonical = msg.answers.iter().rev().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        });
        let records: Vec<T> = msg.answers.iter().filter_map(|r| pick(&r.data)).collect();
        if msg.metadata.response_code == ResponseCode::NoError && !records.is_empty() {
            let ttl = msg.answers.iter().map(|r| r.ttl).min().unwrap_or(0);
            return (
                Lookup::Found {
                    records,
                    security,
                    ttl,
                },
                canonical,
            );
        }
        let soa = msg.authorities.iter().find_map(|r: &Record| match &r.data {
            RData::SOA(soa) => Some((r.ttl, soa.minimum)),
            _ => None,
        });
        (
            Lookup::Absent {
                nxdomain: msg.metadata.response_code == ResponseCode::NXDomain,
                security,
                ttl: negative_ttl(soa),
            },
            canonical,
        )
    }

    /// The query made by hand, since hickory's resolver neither asks for the AD flag nor
    /// keeps it on denials: RD, AD and EDNS DO set, to each upstream server in turn, each
    /// `attempts` times while it does not answer; over TCP when the UDP answer is truncated.
    /// NOERROR and NXDOMAIN are answers; SERVFAIL (how a validating resolver answers bogus
    /// data), REFUSED and other codes are failures, after every server was asked.
    async fn dnssec_exchange(&self, name: &str, rtype: RecordType) -> Result<Message, DnsError> {
        let qname = Name::from_ascii(fqdn(name))
            .map_err(|e| DnsError::new(DnsErrorKind::Other, name, e.to_string()))?;
        let mut last = DnsError::new(DnsErrorKind::Network, name, "no DNS server configured");
        let mut answered = vec![false; self.upstream.len()];
        for _ in 0..self.attempts.max(1) {
            for (i, server) in self.upstream.iter().enumerate() {
                if answered[i] {
                    continue;
                }
                self.dnssec_queries.fetch_add(1, Ordering::Relaxed);
                match exchange(*server, &qname, rtype, self.timeout, &self.dnssec_queries).await {
                    Ok(msg) => {
                        answered[i] = true;
                        let kind = match msg.metadata.response_code {
                            ResponseCode::NoError | ResponseCode::NXDomain => return Ok(msg),
                            ResponseCode::ServFail => DnsErrorKind::ServFail,
                            ResponseCode::Refused => DnsErrorKind::Refused,
                            _ => DnsErrorKind::Other,
                        };
                        last = DnsError::new(
                            kind,
                            name,
                            // The kind already says what it answered.
                            format!("asked {server}"),
                        );
                    }
                    Err(ExchangeError::Timeout) => {
                        last = DnsError::new(
                            DnsErrorKind::Timeout,
                            name,
                            format!("{server} did not answer in time"),
                        );
                    }
                    Err(ExchangeError::Network(e)) => {
                        last = DnsError::new(DnsErrorKind::Network, name, format!("{server}: {e}"));
                    }
                }
            }
            if answered.iter().all(|a| *a) {
                break;
            }
        }
        Err(last)
    }
}

/// The query message: RD and AD set, EDNS with DO set.
fn dnssec_query(id: u16, qname: &Name, rtype: RecordType) -> Result<Vec<u8>, ExchangeError> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.metadata.authentic_data = true;
    msg.add_query(Query::query(qname.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD).set_dnssec_ok(true);
    msg.set_edns(edns);
    msg.to_vec()
        .map_err(|e| ExchangeError::Network(format!("cannot encode the query: {e}")))
}

fn answers_query(resp: &Message, id: u16, qname: &Name, rtype: RecordType) -> bool {
    resp.metadata.id == id
        && resp.metadata.message_type == MessageType::Response
        && resp
            .queries
            .first()
            .is_some_and(|q| q.query_type() == rtype && q.name() == qname)
}

/// One exchange with `server`: UDP, then TCP when the answer is truncated.
async fn exchange(
    server: SocketAddr,
    qname: &Name,
    rtype: RecordType,
    timeout: Duration,
    queries: &AtomicU64,
) -> Result<Message, ExchangeError> {
    let id = fastrand::u16(..);
    let bytes = dnssec_query(id, qname, rtype)?;
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let udp = async {
        let sock = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| ExchangeError::Network(e.to_string()))?;
        sock.connect(server)
            .await
            .map_err(|e| ExchangeError::Network(e.to_string()))?;
        sock.send(&bytes)
            .await
            .map_err(|e| ExchangeError::Network(e.to_string()))?;
        let mut buf = vec![0u8; usize::from(EDNS_PAYLOAD).max(4096)];
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| ExchangeError::Network(e.to_string()))?;
            // Anything else on the socket (a stray or forged datagram) is ignored.
            if let Ok(resp) = Message::from_vec(&buf[..n])
                && answers_query(&resp, id, qname, rtype)
            {
                return Ok(resp);
            }
        }
    };
    let resp = tokio::time::timeout(timeout, udp)
        .await
        .map_err(|_| ExchangeError::Timeout)??;
    if !resp.metadata.truncation {
        return Ok(resp);
    }
    queries.fetch_add(1, Ordering::Relaxed);
    let id = fastrand::u16(..);
    let bytes = dnssec_query(id, qname, rtype)?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| ExchangeError::Network("the query is too long".into()))?;
    let tcp = async {
        let mut stream = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|e| ExchangeError::Network(e.to_string()))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream
            .write_all(&framed)
            .await
            .map_err(|e| ExchangeError::Network(e.to_string()))?;
        let mut prefix = [0u8; 2];
        stream
            .read_exact(&mut prefix)
            .await
            .map_err(|e| ExchangeError::Network(e.to_string()))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| ExchangeError::Network(e.to_string()))?;
        match Message::from_vec(&buf) {
            Ok(resp) if answers_query(&resp, id, qname, rtype) => Ok(resp),
            Ok(_) => Err(ExchangeError::Network(
                "the TCP answer is for another query".into(),
            )),
            Err(e) => Err(ExchangeError::Network(format!("malformed answer: {e}"))),
        }
    };
    tokio::time::timeout(timeout, tcp)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}

/// One query with RD and AD set; `Some(ad)` when the server answered NOERROR or NXDOMAIN,
/// `None` when it did not answer usably.
async fn ad_query(
    server: SocketAddr,
    qname: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Option<bool> {
    let id = fastrand::u16(..);
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.metadata.authentic_data = true;
    msg.add_query(Query::query(qname.clone(), rtype));
    let bytes = msg.to_vec().ok()?;
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
                return match resp.metadata.response_code {
                    ResponseCode::NoError | ResponseCode::NXDomain => {
                        Some(resp.metadata.authentic_data)
                    }
                    _ => None,
                };
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// An in-memory [`DnsLookup`] for tests that need no sockets (mox's `MockResolver`): names
/// to records, names that fail, and names the "resolver" vouches for with AD.
#[derive(Debug, Default)]
pub struct StaticDns {
    inner: Mutex<StaticZone>,
}

#[derive(Debug, Default)]
struct StaticZone {
    txt: HashMap<String, TxtRrset>,
    mx: HashMap<String, Vec<MxRecord>>,
    addresses: HashMap<String, Addresses>,
    tlsa: HashMap<String, Vec<Tlsa>>,
    fail: HashMap<String, DnsErrorKind>,
    authentic: Vec<String>,
}

impl StaticDns {
    /// An empty zone: every name is NXDOMAIN.
    pub fn new() -> StaticDns {
        StaticDns::default()
    }

    fn zone(&self) -> std::sync::MutexGuard<'_, StaticZone> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the TXT RRset of `name` (each record one character-string).
    pub fn set_txt(&self, name: &str, records: &[&str]) -> &Self {
        let rrset = records
            .iter()
            .map(|r| vec![r.as_bytes().to_vec()])
            .collect();
        self.zone().txt.insert(name.to_ascii_lowercase(), rrset);
        self
    }

    /// Sets the MX RRset of `name`.
    pub fn set_mx(&self, name: &str, records: &[(u16, &str)]) -> &Self {
        let mut rrset: Vec<MxRecord> = records
            .iter()
            .map(|(p, e)| MxRecord {
                preference: *p,
                exchange: e.trim_end_matches('.').to_ascii_lowercase(),
            })
            .collect();
        rrset.sort();
        self.zone().mx.insert(name.to_ascii_lowercase(), rrset);
        self
    }

    /// Sets the addresses of `name`.
    pub fn set_addresses(&self, name: &str, addresses: &[IpAddr]) -> &Self {
        self.zone().addresses.insert(
            name.to_ascii_lowercase(),
            Addresses {
                addresses: addresses.to_vec(),
                cname: None,
            },
        );
        self
    }

    /// Sets the TLSA RRset at `name`.
    pub fn set_tlsa(&self, name: &str, records: Vec<Tlsa>) -> &Self {
        self.zone().tlsa.insert(name.to_ascii_lowercase(), records);
        self
    }

    /// Makes every lookup of `name` fail with `kind` (e.g. SERVFAIL).
    pub fn fail(&self, name: &str, kind: DnsErrorKind) -> &Self {
        self.zone().fail.insert(name.to_ascii_lowercase(), kind);
        self
    }

    /// Marks answers for `name` as authenticated (AD).
    pub fn authentic(&self, name: &str) -> &Self {
        self.zone().authentic.push(name.to_ascii_lowercase());
        self
    }

    fn answer<T: Clone>(
        &self,
        name: &str,
        pick: impl Fn(&StaticZone) -> Option<&T>,
    ) -> Result<Answer<T>, DnsError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let zone = self.zone();
        if let Some(kind) = zone.fail.get(&key) {
            return Err(DnsError::new(*kind, name, "configured to fail"));
        }
        let exists = zone.txt.contains_key(&key)
            || zone.mx.contains_key(&key)
            || zone.addresses.contains_key(&key)
            || zone.tlsa.contains_key(&key);
        match pick(&zone) {
            Some(records) => Ok(Answer {
                records: records.clone(),
                ttl: 300,
                millis: 0,
                authentic: zone.authentic.contains(&key),
            }),
            None if exists => Err(DnsError::new(DnsErrorKind::NoData, name, "")),
            None => Err(DnsError::new(DnsErrorKind::NxDomain, name, "")),
        }
    }
}

#[async_trait]
impl DnsLookup for StaticDns {
    async fn txt(&self, name: &str) -> Result<Answer<TxtRrset>, DnsError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.answer(name, |z| z.txt.get(&key))
    }
    async fn mx(&self, name: &str) -> Result<Answer<Vec<MxRecord>>, DnsError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.answer(name, |z| z.mx.get(&key))
    }
    async fn addresses(&self, name: &str) -> Result<Answer<Addresses>, DnsError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.answer(name, |z| z.addresses.get(&key))
    }
    async fn tlsa(&self, name: &str) -> Result<Answer<Vec<Tlsa>>, DnsError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.answer(name, |z| z.tlsa.get(&key))
    }
    async fn authenticated(&self, name: &str, _qtype: QueryType) -> bool {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.zone().authentic.contains(&key)
    }

    async fn mx_dnssec(&self, name: &str) -> Lookup<Vec<dane::MxRecord>> {
        let records = self.mx(name).await.map(|a| Answer {
            records: a
                .records
                .into_iter()
                .map(|r| dane::MxRecord {
                    preference: r.preference,
                    exchange: r.exchange,
                })
                .collect(),
            ttl: a.ttl,
            millis: a.millis,
            authentic: a.authentic,
        });
        self.lookup_of(name, records)
    }

    async fn addresses_dnssec(&self, name: &str) -> Lookup<HostAddresses> {
        let records = self.addresses(name).await.map(|a| Answer {
            records: HostAddresses {
                addresses: a.records.addresses,
                canonical: a.records.cname,
            },
            ttl: a.ttl,
            millis: a.millis,
            authentic: a.authentic,
        });
        self.lookup_of(name, records)
    }

    async fn tlsa_dnssec(&self, name: &str) -> Lookup<Vec<Tlsa>> {
        let records = self.tlsa(name).await;
        self.lookup_of(name, records)
    }

    fn servers(&self) -> Vec<SocketAddr> {
        vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 53))]
    }
}

impl StaticDns {
    /// An answer of the zone as a DANE lookup: denials carry the name's AD mark too.
    fn lookup_of<T>(&self, name: &str, answer: Result<Answer<T>, DnsError>) -> Lookup<T> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let authentic = self.zone().authentic.contains(&key);
        match answer {
            Ok(a) => Lookup::Found {
                records: a.records,
                security: Security::from_ad(a.authentic),
                ttl: a.ttl,
            },
            Err(e) if e.is_negative() => Lookup::Absent {
                nxdomain: e.kind == DnsErrorKind::NxDomain,
                security: Security::from_ad(authentic),
                ttl: 300,
            },
            Err(error) => Lookup::Failed { error },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_dns_answers_fails_and_says_nxdomain_or_nodata() {
        let dns = StaticDns::new();
        dns.set_txt("_mta-sts.example.com", &["v=STSv1; id=1;"])
            .set_mx("example.com", &[(10, "MX1.example.com.")])
            .fail("_mta-sts.broken.example", DnsErrorKind::ServFail);
        let txt = dns.txt("_mta-sts.example.com").await;
        assert_eq!(txt.map(|a| a.records.len()), Ok(1));
        let mx = dns.mx("example.com").await.map(|a| a.records);
        assert_eq!(
            mx,
            Ok(vec![MxRecord {
                preference: 10,
                exchange: "mx1.example.com".into()
            }])
        );
        let nodata = dns.txt("example.com").await.map(|_| ());
        assert_eq!(nodata.map_err(|e| e.kind), Err(DnsErrorKind::NoData));
        let nx = dns.txt("nothing.example").await.map(|_| ());
        assert_eq!(nx.map_err(|e| e.kind), Err(DnsErrorKind::NxDomain));
        let fail = dns.txt("_mta-sts.broken.example").await.map(|_| ());
        assert_eq!(fail.map_err(|e| e.kind), Err(DnsErrorKind::ServFail));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let huge = DnsSettings {
            timeout: Duration::from_secs(u64::MAX),
            ..DnsSettings::default()
        };
        assert!(matches!(Dns::new(&huge), Err(DnsSetupError::Setting(_))));
        let none = DnsSettings {
            attempts: 0,
            ..DnsSettings::default()
        };
        assert!(matches!(Dns::new(&none), Err(DnsSetupError::Setting(_))));
    }
}
