//! The live state of a world: the DNS zone, policy hosts, SMTP backends and logs, built from a
//! scenario and changed by [`Mutation`]s. The servers read it on every query/connection, so a
//! change applies to the next query or connection.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::LabError;
use crate::logs::Logs;
use crate::mutation::Mutation;
use crate::pki::{IssuedCert, Pki};
use crate::scenario::{
    self, AddrRef, BlockMode, DnsFault, DnsNameSpec, EffectiveBackend, HostSpec, MxSpec,
    PolicySpec, Scenario, TxtValue,
};

/// Records and knobs of one DNS name.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameEntry {
    pub(crate) txt: Vec<TxtValue>,
    pub(crate) a: Vec<Ipv4Addr>,
    pub(crate) aaaa: Vec<Ipv6Addr>,
    pub(crate) mx: Vec<MxSpec>,
    pub(crate) cname: Option<String>,
    pub(crate) tlsa: Vec<(u8, u8, u8, Vec<u8>)>,
    pub(crate) fault: Option<DnsFault>,
    pub(crate) fault_types: Vec<RecordType>,
    pub(crate) delay: Duration,
    pub(crate) dnssec_signed: bool,
    pub(crate) ttl: Option<u32>,
}

impl NameEntry {
    pub(crate) fn fault_for(&self, qtype: RecordType) -> Option<DnsFault> {
        match self.fault {
            None | Some(DnsFault::None) => None,
            Some(f) if self.fault_types.is_empty() || self.fault_types.contains(&qtype) => Some(f),
            Some(_) => None,
        }
    }
}

/// The DNS data of a world.
#[derive(Debug, Default)]
pub(crate) struct Zone {
    pub(crate) names: HashMap<String, NameEntry>,
    /// Scenario domains, for choosing the SOA owner of negative answers.
    pub(crate) apexes: Vec<String>,
    pub(crate) default_ttl: u32,
}

impl Zone {
    /// Whether `name` exists (has an entry or is an ancestor of one: an empty non-terminal).
    pub(crate) fn name_exists(&self, name: &str) -> bool {
        if self.names.contains_key(name) {
            return true;
        }
        let suffix = format!(".{name}");
        self.names.keys().any(|k| k.ends_with(&suffix))
    }

    /// The zone apex a name falls under: the longest scenario domain it is in, else `test`.
    pub(crate) fn apex_of(&self, name: &str) -> String {
        self.apexes
            .iter()
            .filter(|a| name == a.as_str() || name.ends_with(&format!(".{a}")))
            .max_by_key(|a| a.len())
            .cloned()
            .unwrap_or_else(|| "test".to_owned())
    }
}

/// A policy host `mta-sts.<domain>`.
#[derive(Debug, Clone)]
pub(crate) struct PolicyHost {
    pub(crate) domain: String,
    pub(crate) spec: PolicySpec,
    pub(crate) body: Arc<Vec<u8>>,
    pub(crate) cert: IssuedCert,
}

/// One SMTP backend (one address) of an MX host.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub(crate) host: String,
    pub(crate) settings: EffectiveBackend,
    pub(crate) cert: IssuedCert,
    pub(crate) tls: Arc<ServerConfig>,
}

/// An SMTP host and its backend addresses.
#[derive(Debug, Clone)]
pub(crate) struct HostEntry {
    pub(crate) domain: String,
    pub(crate) spec: HostSpec,
    pub(crate) addrs: Vec<Ipv4Addr>,
}

/// Where the world's services listen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addressing {
    pub(crate) https_ip: Ipv4Addr,
}

/// Everything the servers of one world share.
pub(crate) struct Shared {
    pub(crate) pki: Pki,
    pub(crate) addressing: Addressing,
    pub(crate) zone: RwLock<Zone>,
    pub(crate) policies: RwLock<HashMap<String, PolicyHost>>,
    pub(crate) hosts: RwLock<BTreeMap<String, HostEntry>>,
    pub(crate) backends: RwLock<HashMap<Ipv4Addr, Backend>>,
    pub(crate) logs: Mutex<Logs>,
    pub(crate) messages_dir: Option<PathBuf>,
    pub(crate) https_modern: Arc<ServerConfig>,
    pub(crate) https_tls12: Arc<ServerConfig>,
    pub(crate) https_tls13: Arc<ServerConfig>,
    pub(crate) resolver: Arc<SniResolver>,
}

// Poisoned locks only happen after a panic in another server task; the data is still usable
// (every writer leaves it consistent between statements), so recover it instead of panicking.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub(crate) fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Picks the policy host's certificate by SNI (RFC 8461 §3.3: SNI is sent).
#[derive(Debug)]
pub(crate) struct SniResolver {
    pub(crate) certs: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = client_hello.server_name()?.to_ascii_lowercase();
        read(&self.certs).get(&sni).cloned()
    }
}

pub(crate) fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn https_config(
    resolver: Arc<SniResolver>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, LabError> {
    let mut c = ServerConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(versions)
        .map_err(|e| LabError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

pub(crate) fn smtp_tls_config(cert: &IssuedCert) -> Result<Arc<ServerConfig>, LabError> {
    let c = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| LabError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
            cert.certified.clone(),
        )));
    Ok(Arc::new(c))
}

/// The SMTP hosts a scenario needs, in a stable order: declared hosts, plus a default host for
/// every MX target that has neither a `hosts` nor a `dns` entry.
pub(crate) fn collect_hosts(scenario: &Scenario) -> BTreeMap<String, (String, HostSpec)> {
    let mut hosts = BTreeMap::new();
    for (domain, spec) in &scenario.domains {
        for (name, h) in &spec.hosts {
            hosts.insert(name.clone(), (domain.clone(), h.clone()));
        }
    }
    let has_dns: std::collections::HashSet<&String> = scenario
        .domains
        .values()
        .flat_map(|d| d.dns.keys())
        .collect();
    for (domain, spec) in &scenario.domains {
        let dns_mx = spec.dns.values().flat_map(|e| e.mx.iter().flatten());
        for mx in spec.mx.iter().chain(dns_mx) {
            if mx.is_null() || hosts.contains_key(&mx.exchange) || has_dns.contains(&mx.exchange) {
                continue;
            }
            if mx.exchange.ends_with(".test") {
                hosts.insert(mx.exchange.clone(), (domain.clone(), HostSpec::default()));
            }
        }
    }
    hosts
}

impl Shared {
    /// Build the state of a world. `host_addrs` gives each host its backend addresses.
    pub(crate) fn build(
        scenario: &Scenario,
        pki: Pki,
        addressing: Addressing,
        host_addrs: &BTreeMap<String, Vec<Ipv4Addr>>,
        messages_dir: Option<PathBuf>,
    ) -> Result<Shared, LabError> {
        let resolver = Arc::new(SniResolver {
            certs: RwLock::new(HashMap::new()),
        });
        let https_modern = https_config(
            resolver.clone(),
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )?;
        let https_tls12 = https_config(resolver.clone(), &[&rustls::version::TLS12])?;
        let https_tls13 = https_config(resolver.clone(), &[&rustls::version::TLS13])?;

        let shared = Shared {
            pki,
            addressing,
            zone: RwLock::new(Zone {
                default_ttl: scenario.default_ttl(),
                apexes: scenario.domains.keys().cloned().collect(),
                ..Zone::default()
            }),
            policies: RwLock::new(HashMap::new()),
            hosts: RwLock::new(BTreeMap::new()),
            backends: RwLock::new(HashMap::new()),
            logs: Mutex::new(Logs::default()),
            messages_dir,
            https_modern,
            https_tls12,
            https_tls13,
            resolver,
        };

        // SMTP hosts and their backends.
        for (name, (domain, spec)) in collect_hosts(scenario) {
            let addrs = host_addrs.get(&name).cloned().unwrap_or_default();
            shared.install_host(&name, &domain, spec, addrs)?;
        }
        // Policy hosts.
        for (domain, spec) in &scenario.domains {
            if let Some(policy) = &spec.policy {
                shared.install_policy(domain, policy.clone())?;
            }
        }
        // Generated records first, then every `dns` override.
        {
            let mut zone = write(&shared.zone);
            for (domain, spec) in &scenario.domains {
                if !spec.sts_txt.is_empty() {
                    zone.names
                        .entry(format!("_mta-sts.{domain}"))
                        .or_default()
                        .txt = spec.sts_txt.clone();
                }
                if !spec.tlsrpt_txt.is_empty() {
                    zone.names
                        .entry(format!("_smtp._tls.{domain}"))
                        .or_default()
                        .txt = spec.tlsrpt_txt.clone();
                }
                if !spec.mx.is_empty() {
                    zone.names.entry(domain.clone()).or_default().mx = spec.mx.clone();
                }
                if spec.policy.is_some() {
                    zone.names.entry(format!("mta-sts.{domain}")).or_default().a =
                        vec![addressing.https_ip];
                }
            }
            for (name, h) in read(&shared.hosts).iter() {
                zone.names.entry(name.clone()).or_default().a = h.addrs.clone();
            }
        }
        for spec in scenario.domains.values() {
            for (name, entry) in &spec.dns {
                shared.merge_dns(name, entry, true)?;
            }
        }
        Ok(shared)
    }

