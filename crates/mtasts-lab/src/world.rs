//! A running world: DNS, the policy-host listener, the SMTP backends and the control API,
//! started from a scenario on loopback, changed while it runs, stopped by `shutdown()` or Drop.
//!
//! The world owns its own Tokio runtime on a background thread, so it can be used from plain
//! `#[test]`s, from async tests, and from the binary alike.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::error::LabError;
use crate::limits;
use crate::logs::{DnsQueryLog, PolicyFetch, SmtpSession, StoredMessage};
use crate::mutation::Mutation;
use crate::pki::Pki;
use crate::scenario::{
    BlockMode, CertSpec, DnsNameSpec, HostSpec, PolicySpec, Scenario, StarttlsMode, TxtValue,
    normalize_name,
};
use crate::state::{Addressing, Shared, collect_hosts, read};

/// How and where to run a world.
#[derive(Debug, Clone, Default)]
pub struct WorldOptions {
    /// The /24 block `127.X.Y.0` to use; `None` picks a random one (retried on EADDRINUSE).
    /// DNS and the control API listen on `.1`, the policy hosts on `.2`, SMTP hosts from
    /// `.10` on.
    pub ip_block: Option<Ipv4Addr>,
    /// DNS port (UDP and TCP); 0 = random.
    pub dns_port: u16,
    /// Policy-host HTTPS port; 0 = random.
    pub https_port: u16,
    /// SMTP port shared by every MX address; 0 = random.
    pub smtp_port: u16,
    /// Control API port; 0 = random.
    pub control_port: u16,
    /// Do not start the control API.
    pub no_control: bool,
    /// Where `ca.pem` (and `untrusted-ca.pem`) are written; `None` = a fresh temporary
    /// directory removed at shutdown.
    pub state_dir: Option<PathBuf>,
    /// Also write every accepted message to this directory (`<id>.eml` and `<id>.json`).
    pub messages_dir: Option<PathBuf>,
}

impl WorldOptions {
    /// The layout used inside a network namespace: block `127.1.1.0`, DNS on 53, HTTPS on
    /// 443, SMTP on 25, control on 8053.
    pub fn standard_ports() -> Self {
        WorldOptions {
            ip_block: Some(Ipv4Addr::new(127, 1, 1, 0)),
            dns_port: 53,
            https_port: 443,
            smtp_port: 25,
            control_port: 8053,
            ..WorldOptions::default()
        }
    }
}

/// Where everything of a running world is, as printed by `mtasts-lab up` and served at
/// `GET /v1/world`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldInfo {
    /// The scenario name.
    pub name: String,
    /// DNS server (UDP and TCP).
    pub dns: SocketAddr,
    /// The shared policy-host HTTPS listener (every `mta-sts.*` A record points here).
    pub https: SocketAddr,
    /// The SMTP port of every MX address.
    pub smtp_port: u16,
    /// The control API, if started.
    pub control: Option<SocketAddr>,
    /// PEM file of the trusted root CA.
    pub ca_pem_path: PathBuf,
    /// SMTP hosts and their backend addresses.
    pub smtp_hosts: BTreeMap<String, Vec<Ipv4Addr>>,
    /// Policy domains that have a policy host.
    pub policy_domains: Vec<String>,
    /// All domains of the scenario.
    pub domains: Vec<String>,
}

/// A running simulated internet. Stops on [`World::shutdown`] or when dropped.
pub struct World {
    shared: Arc<Shared>,
    info: WorldInfo,
    ca_pem: String,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
    owned_state_dir: Option<PathBuf>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

struct Bound {
    block: Ipv4Addr,
    dns_udp: UdpSocket,
    dns_tcp: TcpListener,
    https: TcpListener,
    control: Option<TcpListener>,
    smtp: Vec<(Ipv4Addr, TcpListener)>,
    smtp_port: u16,
}

fn block_ip(block: Ipv4Addr, last: u8) -> Ipv4Addr {
    let o = block.octets();
    Ipv4Addr::new(o[0], o[1], o[2], last)
}

fn random_block() -> Ipv4Addr {
    // 127.0.0.0/16 is left alone (system resolvers live at 127.0.0.53 and such).
    Ipv4Addr::new(127, fastrand::u8(1..=254), fastrand::u8(..), 0)
}

fn in_use(e: &LabError) -> bool {
    matches!(e, LabError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse)
}

async fn bind_tcp(what: &'static str, addr: SocketAddrV4) -> Result<TcpListener, LabError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| LabError::Bind {
            what,
            addr: addr.to_string(),
            source,
        })
}

fn local_port(what: &'static str, r: std::io::Result<SocketAddr>) -> Result<u16, LabError> {
    r.map(|a| a.port()).map_err(|source| LabError::Bind {
        what,
        addr: "local address".to_owned(),
        source,
    })
}

async fn bind_once(
    block: Ipv4Addr,
    opts: &WorldOptions,
    smtp_count: usize,
) -> Result<Bound, LabError> {
    let dns_ip = block_ip(block, 1);
    let addr = SocketAddrV4::new(dns_ip, opts.dns_port);
    let dns_udp = UdpSocket::bind(addr)
        .await
        .map_err(|source| LabError::Bind {
            what: "dns/udp",
            addr: addr.to_string(),
            source,
        })?;
    let dns_port = local_port("dns/udp", dns_udp.local_addr())?;
    let dns_tcp = bind_tcp("dns/tcp", SocketAddrV4::new(dns_ip, dns_port)).await?;
    let https = bind_tcp(
        "https",
        SocketAddrV4::new(block_ip(block, 2), opts.https_port),
    )
    .await?;
    let control = if opts.no_control {
        None
    } else {
        Some(bind_tcp("control", SocketAddrV4::new(dns_ip, opts.control_port)).await?)
    };
    let mut smtp = Vec::new();
    let mut smtp_port = opts.smtp_port;
    for i in 0..smtp_count {
        let last = u8::try_from(10 + i).map_err(|_| LabError::Bind {
            what: "smtp",
            addr: format!("{block}/24"),
            source: std::io::Error::other("more than 245 SMTP backends do not fit in one /24"),
        })?;
        let ip = block_ip(block, last);
        let l = bind_tcp("smtp", SocketAddrV4::new(ip, smtp_port)).await?;
        if smtp_port == 0 {
            smtp_port = local_port("smtp", l.local_addr())?;
        }
        smtp.push((ip, l));
    }
    Ok(Bound {
        block,
        dns_udp,
        dns_tcp,
        https,
        control,
        smtp,
        smtp_port,
    })
}

async fn bind_all(opts: &WorldOptions, smtp_count: usize) -> Result<Bound, LabError> {
    let mut last_err = None;
    for _ in 0..limits::BIND_ATTEMPTS {
        let block = opts.ip_block.unwrap_or_else(random_block);
        match bind_once(block, opts, smtp_count).await {
            Ok(b) => return Ok(b),
            Err(e) if in_use(&e) => {
                let all_fixed = opts.ip_block.is_some()
                    && opts.dns_port != 0
                    && opts.https_port != 0
                    && (opts.control_port != 0 || opts.no_control);
                if all_fixed {
                    return Err(e);
                }
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| LabError::Startup("no bind attempt was made".to_owned())))
}

fn write_file(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(|source| LabError::File {
        path: path.to_owned(),
        source,
    })
}

struct Started {
    shared: Arc<Shared>,
    info: WorldInfo,
}

impl World {
    /// Read a scenario file and start its world with default options.
    pub fn from_file(path: &Path) -> Result<World, LabError> {
        let scenario = Scenario::from_file(path)?;
        World::start(&scenario, WorldOptions::default())
    }

    /// Start a world. Returns once every server is listening.
    pub fn start(scenario: &Scenario, opts: WorldOptions) -> Result<World, LabError> {
        let name = scenario
            .lab
            .name
            .clone()
            .unwrap_or_else(|| "world".to_owned());
        let (state_dir, owned_state_dir) = match &opts.state_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "mtasts-lab-{}-{:08x}",
                    std::process::id(),
                    fastrand::u32(..)
                ));
                (d.clone(), Some(d))
            }
        };
        std::fs::create_dir_all(&state_dir).map_err(|source| LabError::File {
            path: state_dir.clone(),
            source,
        })?;
        if let Some(dir) = &opts.messages_dir {
            std::fs::create_dir_all(dir).map_err(|source| LabError::File {
                path: dir.clone(),
                source,
            })?;
        }
        let pki = Pki::new(&format!("{name} {:08x}", fastrand::u32(..)))?;
        let ca_pem = pki.root_pem().to_owned();
        let ca_pem_path = state_dir.join("ca.pem");
        write_file(&ca_pem_path, &ca_pem)?;
        write_file(
            &state_dir.join("untrusted-ca.pem"),
            pki.untrusted_root_pem(),
        )?;

        let hosts = collect_hosts(scenario);
        let smtp_count: usize = hosts.values().map(|(_, h)| h.backend_count()).sum();
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel::<Result<Started, LabError>>();
        let scenario = scenario.clone();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mtasts-lab-world".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("mtasts-lab")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(source) => {
                        let _ = tx.send(Err(LabError::Io {
                            context: "starting the world's runtime",
                            source,
                        }));
                        return;
                    }
                };
                rt.block_on(run_world(
                    scenario,
                    opts,
                    pki,
                    hosts,
                    smtp_count,
                    name,
                    ca_pem_path,
                    tx,
                    thread_stop,
                ));
                rt.shutdown_timeout(limits::SHUTDOWN_TIMEOUT);
            })
            .map_err(|source| LabError::Io {
                context: "spawning the world thread",
                source,
            })?;
        let started = match rx.recv_timeout(limits::STARTUP_TIMEOUT) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let _ = thread.join();
                if let Some(d) = &owned_state_dir {
                    let _ = std::fs::remove_dir_all(d);
                }
                return Err(e);
            }
            Err(e) => {
                stop.cancel();
                if let Some(d) = &owned_state_dir {
                    let _ = std::fs::remove_dir_all(d);
                }
                return Err(LabError::Startup(e.to_string()));
            }
        };
        Ok(World {
            shared: started.shared,
            info: started.info,
            ca_pem,
            stop,
            thread: Some(thread),
            owned_state_dir,
        })
    }

    /// Where everything is.
    pub fn info(&self) -> &WorldInfo {
        &self.info
    }
    /// The DNS server's address (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.info.dns
    }
    /// The policy-host listener's address.
    pub fn https_addr(&self) -> SocketAddr {
        self.info.https
    }
    /// The policy-host listener's port.
    pub fn https_port(&self) -> u16 {
        self.info.https.port()
    }
    /// The SMTP port of every MX address.
    pub fn smtp_port(&self) -> u16 {
        self.info.smtp_port
    }
    /// The control API's address, if it runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.info.control
    }
    /// The trusted root CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
    /// The file holding [`World::ca_pem`].
    pub fn ca_pem_path(&self) -> &Path {
        &self.info.ca_pem_path
    }
    /// The trusted root CA certificate, DER.
    pub fn ca_der(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.shared.pki.root_der().clone()
    }
    /// The backend addresses of an SMTP host (empty if there is no such host).
    pub fn host_addrs(&self, host: &str) -> Vec<Ipv4Addr> {
        let Ok(host) = normalize_name(host) else {
            return vec![];
        };
        read(&self.shared.hosts)
            .get(&host)
            .map(|h| h.addrs.clone())
            .unwrap_or_default()
    }
    /// The SMTP address of an SMTP host's first backend.
    pub fn smtp_addr(&self, host: &str) -> Option<SocketAddr> {
        self.host_addrs(host)
            .first()
            .map(|ip| SocketAddr::from((*ip, self.info.smtp_port)))
    }
    /// The certificate chain (PEM) a host presents now: an SMTP host's first backend, or a
    /// policy host `mta-sts.<domain>`.
    pub fn cert_chain_pem(&self, host: &str) -> Option<String> {
        let host = normalize_name(host).ok()?;
        if let Some(p) = self.shared.policy_for_sni(&host) {
            return Some(p.cert.chain_pem);
        }
        let ip = *self.host_addrs(&host).first()?;
        self.shared.backend(ip).map(|b| b.cert.chain_pem)
    }

    /// Every stored message.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.shared.messages(None)
    }
    /// Messages an SMTP host accepted.
    pub fn messages_for(&self, host: &str) -> Vec<StoredMessage> {
        match normalize_name(host) {
            Ok(h) => self.shared.messages(Some(&h)),
            Err(_) => vec![],
        }
    }
    /// Every SMTP session so far.
    pub fn smtp_sessions(&self) -> Vec<SmtpSession> {
        self.shared.sessions(None)
    }
    /// The SMTP sessions of one host.
    pub fn smtp_sessions_for(&self, host: &str) -> Vec<SmtpSession> {
        match normalize_name(host) {
            Ok(h) => self.shared.sessions(Some(&h)),
            Err(_) => vec![],
        }
    }
    /// Whether any client ever sent `MAIL FROM` to this host.
    pub fn mail_from_seen(&self, host: &str) -> bool {
        self.smtp_sessions_for(host)
            .iter()
            .any(SmtpSession::saw_mail_from)
    }
    /// Every connection to the policy-host listener.
    pub fn policy_fetches(&self) -> Vec<PolicyFetch> {
        self.shared.fetches(None)
    }
    /// Connections for one policy domain.
    pub fn policy_fetches_for(&self, domain: &str) -> Vec<PolicyFetch> {
        match normalize_name(domain) {
            Ok(d) => self.shared.fetches(Some(&d)),
            Err(_) => vec![],
        }
    }
    /// Every DNS query answered (or ignored on purpose).
    pub fn dns_queries(&self) -> Vec<DnsQueryLog> {
        self.shared.dns_queries(None)
    }

    /// Apply one change.
    pub fn apply(&self, m: Mutation) -> Result<(), LabError> {
        self.shared.apply(m)
    }
    /// Change records or faults of a DNS name (present fields replace; see [`Mutation::SetDns`]).
    pub fn set_dns(&self, name: &str, set: DnsNameSpec) -> Result<(), LabError> {
        self.apply(Mutation::SetDns {
            name: name.to_owned(),
            set,
        })
    }
    /// Replace the TXT records of a name (`&[]` removes them).
    pub fn set_txt(&self, name: &str, records: &[&str]) -> Result<(), LabError> {
        self.set_dns(
            name,
            DnsNameSpec {
                txt: Some(
                    records
                        .iter()
                        .map(|r| TxtValue::Single((*r).to_owned()))
                        .collect(),
                ),
                ..DnsNameSpec::default()
            },
        )
    }
    /// Remove a name entirely (NXDOMAIN).
    pub fn remove_name(&self, name: &str) -> Result<(), LabError> {
        self.apply(Mutation::RemoveName {
            name: name.to_owned(),
        })
    }
    /// Publish or replace a domain's policy host.
    pub fn set_policy(&self, domain: &str, policy: PolicySpec) -> Result<(), LabError> {
        self.apply(Mutation::SetPolicy {
            domain: domain.to_owned(),
            policy,
        })
    }
    /// Remove a domain's policy host.
    pub fn remove_policy(&self, domain: &str) -> Result<(), LabError> {
        self.apply(Mutation::RemovePolicy {
            domain: domain.to_owned(),
        })
    }
    /// Make a policy host reset or stall connections, or serve again.
    pub fn block_policy_host(&self, domain: &str, block: BlockMode) -> Result<(), LabError> {
        self.apply(Mutation::BlockPolicyHost {
            domain: domain.to_owned(),
            block,
        })
    }
    /// Replace an SMTP host's behaviour.
    pub fn set_host(&self, name: &str, host: HostSpec) -> Result<(), LabError> {
        self.apply(Mutation::SetHost {
            name: name.to_owned(),
            host,
        })
    }
    /// Change an SMTP host's STARTTLS behaviour (e.g. strip it).
    pub fn set_starttls(&self, name: &str, mode: StarttlsMode) -> Result<(), LabError> {
        self.apply(Mutation::SetStarttls {
            name: name.to_owned(),
            mode,
        })
    }
    /// Issue a new certificate for an SMTP host or a policy host.
    pub fn set_cert(&self, name: &str, cert: CertSpec) -> Result<(), LabError> {
        self.apply(Mutation::SetCert {
            name: name.to_owned(),
            cert,
        })
    }
    /// Forget all logs and stored messages.
    pub fn clear_logs(&self) {
        let _ = self.apply(Mutation::ClearLogs);
    }

    /// Stop every server and wait for the world's thread to end.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(d) = self.owned_state_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_world(
    scenario: Scenario,
    opts: WorldOptions,
    pki: Pki,
    hosts: BTreeMap<String, (String, HostSpec)>,
    smtp_count: usize,
    name: String,
    ca_pem_path: PathBuf,
    tx: mpsc::Sender<Result<Started, LabError>>,
    stop: CancellationToken,
) {
    let bound = match bind_all(&opts, smtp_count).await {
        Ok(b) => b,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    // Hand the bound addresses to the hosts in a stable order.
    let mut host_addrs: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    let mut next = bound.smtp.iter().map(|(ip, _)| *ip);
    for (host, (_, spec)) in &hosts {
        let addrs: Vec<Ipv4Addr> = next.by_ref().take(spec.backend_count()).collect();
        host_addrs.insert(host.clone(), addrs);
    }
    let addressing = Addressing {
        https_ip: block_ip(bound.block, 2),
    };
    let shared = match Shared::build(
        &scenario,
        pki,
        addressing,
        &host_addrs,
        opts.messages_dir.clone(),
    ) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    let dns_addr = match bound.dns_udp.local_addr() {
        Ok(a) => a,
        Err(source) => {
            let _ = tx.send(Err(LabError::Io {
                context: "reading the DNS address",
                source,
            }));
            return;
        }
    };
    let https_addr = bound.https.local_addr();
    let control_addr = bound.control.as_ref().map(TcpListener::local_addr);
    let (https_addr, control_addr) = match (https_addr, control_addr.transpose()) {
        (Ok(h), Ok(c)) => (h, c),
        (Err(source), _) | (_, Err(source)) => {
            let _ = tx.send(Err(LabError::Io {
                context: "reading listener addresses",
                source,
            }));
            return;
        }
    };
    let info = WorldInfo {
        name,
        dns: dns_addr,
        https: https_addr,
        smtp_port: bound.smtp_port,
        control: control_addr,
        ca_pem_path,
        smtp_hosts: host_addrs,
        policy_domains: scenario
            .domains
            .iter()
            .filter(|(_, d)| d.policy.is_some())
            .map(|(n, _)| n.clone())
            .collect(),
        domains: scenario.domains.keys().cloned().collect(),
    };

    let mut dns = hickory_server::Server::new(crate::dns::LabDns {
        shared: shared.clone(),
    });
    dns.register_socket(bound.dns_udp);
    dns.register_listener(bound.dns_tcp, limits::DNS_TCP_IDLE, 32);
    tokio::spawn(crate::https::serve(
        bound.https,
        shared.clone(),
        stop.clone(),
    ));
    for (ip, l) in bound.smtp {
        tokio::spawn(crate::smtp::serve(l, ip, shared.clone(), stop.clone()));
    }
    if let Some(l) = bound.control {
        tokio::spawn(crate::control::serve(
            l,
            shared.clone(),
            Arc::new(info.clone()),
            Arc::new(shared.pki.root_pem().to_owned()),
            stop.clone(),
        ));
    }
    if tx.send(Ok(Started { shared, info })).is_err() {
        // The caller gave up waiting.
        return;
    }
    stop.cancelled().await;
    let _ = tokio::time::timeout(limits::SHUTDOWN_TIMEOUT, dns.shutdown_gracefully()).await;
}
