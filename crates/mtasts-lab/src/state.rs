//! The live state of a world: the DNS zone, policy hosts, SMTP backends and logs, built from a
//! scenario and changed by [`Mutation`]s. The servers read it on every query/connection, so a
//! change applies to the next query or connection.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// `Some`: the name's own AD setting; `None`: its zone's (`Zone::signed`).
    pub(crate) dnssec_signed: Option<bool>,
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
    /// Scenario domains whose zone is DNSSEC-signed (`dnssec_signed` on the domain).
    pub(crate) signed: HashSet<String>,
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

    /// Whether answers for `name` carry the AD flag: the name's own `dnssec_signed`, else
    /// whether its zone (the scenario domain it falls under) is signed.
    pub(crate) fn is_signed(&self, name: &str) -> bool {
        match self.names.get(name).and_then(|e| e.dnssec_signed) {
            Some(s) => s,
            None => self.signed.contains(&self.apex_of(name)),
        }
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
    /// Simulated round-trip time (`[lab] rtt_ms`).
    pub(crate) rtt: Duration,
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
    // Names whose addresses the author controls through a `dns` entry get no default host.
    let has_dns: std::collections::HashSet<&String> = scenario
        .domains
        .values()
        .flat_map(|d| d.dns.iter())
        .filter(|(_, e)| e.controls_addresses())
        .map(|(n, _)| n)
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
                signed: scenario
                    .domains
                    .iter()
                    .filter(|(_, d)| d.dnssec_signed)
                    .map(|(n, _)| n.clone())
                    .collect(),
                ..Zone::default()
            }),
            policies: RwLock::new(HashMap::new()),
            rtt: scenario.rtt(),
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
            shared.install_host(&name, &domain, spec, addrs, false)?;
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
        let names: Vec<String> = read(&shared.hosts).keys().cloned().collect();
        for name in names {
            shared.publish_tlsa(&name);
        }
        for spec in scenario.domains.values() {
            for (name, entry) in &spec.dns {
                shared.merge_dns(name, entry)?;
            }
        }
        Ok(shared)
    }
}

fn mutation_err(msg: impl Into<String>) -> LabError {
    LabError::Mutation(msg.into())
}

/// Normalise a name given to a mutation; like scenario names, it must be under `.test`.
fn norm(name: &str) -> Result<String, LabError> {
    let n = scenario::normalize_name(name).map_err(mutation_err)?;
    if n == "test" || n.ends_with(".test") {
        Ok(n)
    } else {
        Err(mutation_err(format!("{n}: names must be under .test")))
    }
}

impl Shared {
    fn resolve_addrs(&self, list: &[AddrRef]) -> Result<Vec<Ipv4Addr>, LabError> {
        let mut out = Vec::new();
        for a in list {
            match a {
                AddrRef::Literal(ip) => out.push(*ip),
                AddrRef::Https => out.push(self.addressing.https_ip),
                AddrRef::Host(h) => {
                    let hosts = read(&self.hosts);
                    let entry = hosts
                        .get(h)
                        .ok_or_else(|| mutation_err(format!("host:{h}: no such SMTP host")))?;
                    out.extend(entry.addrs.iter().copied());
                }
            }
        }
        Ok(out)
    }

    /// Apply a `dns` entry to a name: present fields replace, absent ones stay.
    pub(crate) fn merge_dns(&self, name: &str, spec: &DnsNameSpec) -> Result<(), LabError> {
        let spec = scenario::validate_dns_entry(spec.clone())
            .map_err(|(f, m)| mutation_err(format!("{name}: field {f}: {m}")))?;
        let a = match &spec.a {
            Some(list) => Some(self.resolve_addrs(list)?),
            None => None,
        };
        let tlsa = match &spec.tlsa {
            Some(list) => Some(
                list.iter()
                    .map(|t| scenario::parse_tlsa(t))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(mutation_err)?,
            ),
            None => None,
        };
        let fault_types = match &spec.fault_types {
            Some(list) => Some(
                list.iter()
                    .map(|t| scenario::parse_record_type(t))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(mutation_err)?,
            ),
            None => None,
        };
        let mut zone = write(&self.zone);
        let e = zone.names.entry(name.to_owned()).or_default();
        if let Some(txt) = spec.txt {
            e.txt = txt;
        }
        if let Some(a) = a {
            e.a = a;
        }
        if let Some(aaaa) = spec.aaaa {
            e.aaaa = aaaa;
        }
        if let Some(mx) = spec.mx {
            e.mx = mx;
        }
        if let Some(c) = spec.cname {
            e.cname = if c.is_empty() { None } else { Some(c) };
        }
        if let Some(t) = tlsa {
            e.tlsa = t;
        }
        if let Some(f) = spec.fault {
            e.fault = Some(f);
        }
        if let Some(t) = fault_types {
            e.fault_types = t;
        }
        if let Some(d) = spec.delay_ms {
            e.delay = Duration::from_millis(d);
        }
        if let Some(s) = spec.dnssec_signed {
            e.dnssec_signed = Some(s);
        }
        if spec.ttl.is_some() {
            e.ttl = spec.ttl;
        }
        Ok(())
    }

    /// Publishes the TLSA records a host's `tlsa` knob derives from the certificates its
    /// backends present now, at `_25._tcp.<host>` (none when the knob is empty).
    pub(crate) fn publish_tlsa(&self, name: &str) {
        let Some(host) = read(&self.hosts).get(name).cloned() else {
            return;
        };
        let mut records: Vec<(u8, u8, u8, Vec<u8>)> = Vec::new();
        {
            let backends = read(&self.backends);
            for knob in &host.spec.tlsa {
                for addr in &host.addrs {
                    let Some(b) = backends.get(addr) else {
                        continue;
                    };
                    if let Some(data) = crate::dane::association(&b.cert.chain, knob) {
                        let r = (knob.usage, knob.selector, knob.matching, data);
                        if !records.contains(&r) {
                            records.push(r);
                        }
                    }
                }
            }
        }
        let owner = format!("_25._tcp.{name}");
        let mut zone = write(&self.zone);
        if records.is_empty() {
            if let Some(e) = zone.names.get_mut(&owner) {
                e.tlsa.clear();
            }
        } else {
            zone.names.entry(owner).or_default().tlsa = records;
        }
    }

    /// Install (or replace) an SMTP host. Certificates are re-issued only where the
    /// certificate spec changed.
    pub(crate) fn install_host(
        &self,
        name: &str,
        domain: &str,
        spec: HostSpec,
        addrs: Vec<Ipv4Addr>,
        force_new_certs: bool,
    ) -> Result<(), LabError> {
        if addrs.len() != spec.backend_count() {
            return Err(mutation_err(format!(
                "host {name} has {} backend address(es) but the spec wants {} backend(s)",
                addrs.len(),
                spec.backend_count()
            )));
        }
        let mut new_backends = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let settings = spec.effective_backend(i);
            let existing = read(&self.backends).get(addr).cloned();
            let (cert, tls) = match existing {
                Some(b) if !force_new_certs && b.cert.spec == settings.cert => (b.cert, b.tls),
                _ => {
                    let cert = self.pki.issue(name, &settings.cert)?;
                    let tls = smtp_tls_config(&cert)?;
                    (cert, tls)
                }
            };
            new_backends.push((
                *addr,
                Backend {
                    host: name.to_owned(),
                    settings,
                    cert,
                    tls,
                },
            ));
        }
        {
            let mut backends = write(&self.backends);
            for (addr, b) in new_backends {
                backends.insert(addr, b);
            }
        }
        write(&self.hosts).insert(
            name.to_owned(),
            HostEntry {
                domain: domain.to_owned(),
                spec,
                addrs,
            },
        );
        Ok(())
    }

    /// Install (or replace) the policy host of `domain`.
    pub(crate) fn install_policy(&self, domain: &str, spec: PolicySpec) -> Result<(), LabError> {
        self.install_policy_with(domain, spec, false)
    }

    fn install_policy_with(
        &self,
        domain: &str,
        spec: PolicySpec,
        force_new_cert: bool,
    ) -> Result<(), LabError> {
        let host = format!("mta-sts.{domain}");
        let existing = read(&self.policies).get(&host).map(|p| p.cert.clone());
        let cert = match existing {
            Some(c) if !force_new_cert && c.spec == spec.cert => c,
            _ => self.pki.issue(&host, &spec.cert)?,
        };
        write(&self.resolver.certs).insert(host.clone(), cert.certified.clone());
        let body = Arc::new(spec.render_body());
        write(&self.policies).insert(
            host,
            PolicyHost {
                domain: domain.to_owned(),
                spec,
                body,
                cert,
            },
        );
        Ok(())
    }

    /// The policy host a ClientHello's SNI selects.
    pub(crate) fn policy_for_sni(&self, sni: &str) -> Option<PolicyHost> {
        read(&self.policies).get(sni).cloned()
    }

    /// Apply one mutation.
    pub(crate) fn apply(&self, m: Mutation) -> Result<(), LabError> {
        match m {
            Mutation::SetDns { name, set } => {
                let name = norm(&name)?;
                self.merge_dns(&name, &set)
            }
            Mutation::RemoveName { name } => {
                let name = norm(&name)?;
                write(&self.zone)
                    .names
                    .remove(&name)
                    .map(|_| ())
                    .ok_or_else(|| mutation_err(format!("{name}: no such DNS name")))
            }
            Mutation::SetPolicy { domain, policy } => {
                let domain = norm(&domain)?;
                scenario::validate_policy(&policy)
                    .map_err(|(f, m)| mutation_err(format!("policy.{f}: {m}")))?;
                self.install_policy(&domain, policy)?;
                let mut zone = write(&self.zone);
                let https_ip = self.addressing.https_ip;
                let e = zone.names.entry(format!("mta-sts.{domain}")).or_default();
                if e.a.is_empty() && e.cname.is_none() {
                    e.a = vec![https_ip];
                }
                Ok(())
            }
            Mutation::RemovePolicy { domain } => {
                let domain = norm(&domain)?;
                let host = format!("mta-sts.{domain}");
                if write(&self.policies).remove(&host).is_none() {
                    return Err(mutation_err(format!("{domain}: no policy host")));
                }
                write(&self.resolver.certs).remove(&host);
                let mut zone = write(&self.zone);
                if let Some(e) = zone.names.get_mut(&host) {
                    e.a.clear();
                }
                Ok(())
            }
            Mutation::BlockPolicyHost { domain, block } => {
                let domain = norm(&domain)?;
                let host = format!("mta-sts.{domain}");
                let mut policies = write(&self.policies);
                let p = policies
                    .get_mut(&host)
                    .ok_or_else(|| mutation_err(format!("{domain}: no policy host")))?;
                p.spec.block = block;
                Ok(())
            }
            Mutation::SetHost { name, host } => {
                let name = norm(&name)?;
                scenario::validate_host(&host)
                    .map_err(|(f, m)| mutation_err(format!("host.{f}: {m}")))?;
                let entry = self.host_entry(&name)?;
                let derived = !host.tlsa.is_empty() || !entry.spec.tlsa.is_empty();
                self.install_host(&name, &entry.domain, host, entry.addrs, false)?;
                if derived {
                    self.publish_tlsa(&name);
                }
                Ok(())
            }
            Mutation::SetStarttls { name, mode } => {
                let name = norm(&name)?;
                let mut entry = self.host_entry(&name)?;
                entry.spec.starttls = mode;
                for b in &mut entry.spec.backends {
                    b.starttls = None;
                }
                self.install_host(&name, &entry.domain, entry.spec, entry.addrs, false)
            }
            Mutation::SetCert { name, cert } => {
                let name = norm(&name)?;
                let policy = self.policy_for_sni(&name);
                if let Some(mut p) = policy {
                    p.spec.cert = cert;
                    return self.install_policy_with(&p.domain, p.spec, true);
                }
                let mut entry = self.host_entry(&name)?;
                entry.spec.cert = cert;
                for b in &mut entry.spec.backends {
                    b.cert = None;
                }
                self.install_host(&name, &entry.domain, entry.spec, entry.addrs, true)
            }
            Mutation::ClearLogs => {
                lock(&self.logs).clear();
                Ok(())
            }
        }
    }

    fn host_entry(&self, name: &str) -> Result<HostEntry, LabError> {
        read(&self.hosts)
            .get(name)
            .cloned()
            .ok_or_else(|| mutation_err(format!("{name}: no such SMTP host")))
    }

    /// A backend's current settings.
    pub(crate) fn backend(&self, addr: Ipv4Addr) -> Option<Backend> {
        read(&self.backends).get(&addr).cloned()
    }

    /// Whether a policy host should be blocked.
    pub(crate) fn policy_block(&self, sni: &str) -> BlockMode {
        read(&self.policies)
            .get(sni)
            .map_or(BlockMode::None, |p| p.spec.block)
    }
}

/// Read-only views of the logs, shared by [`crate::World`] and the control API.
impl Shared {
    pub(crate) fn messages(&self, host: Option<&str>) -> Vec<crate::logs::StoredMessage> {
        lock(&self.logs)
            .messages
            .iter()
            .filter(|m| host.is_none_or(|h| m.host == h))
            .cloned()
            .collect()
    }

    pub(crate) fn sessions(&self, host: Option<&str>) -> Vec<crate::logs::SmtpSession> {
        let sessions: Vec<_> = lock(&self.logs).sessions.iter().cloned().collect();
        sessions
            .iter()
            .map(|s| lock(s).clone())
            .filter(|s| host.is_none_or(|h| s.host == h))
            .collect()
    }

    pub(crate) fn fetches(&self, domain: Option<&str>) -> Vec<crate::logs::PolicyFetch> {
        lock(&self.logs)
            .fetches
            .iter()
            .filter(|f| domain.is_none_or(|d| f.domain.as_deref() == Some(d)))
            .cloned()
            .collect()
    }

    pub(crate) fn dns_queries(&self, name: Option<&str>) -> Vec<crate::logs::DnsQueryLog> {
        lock(&self.logs)
            .dns
            .iter()
            .filter(|q| name.is_none_or(|n| q.name == n))
            .cloned()
            .collect()
    }
}
