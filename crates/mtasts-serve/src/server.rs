//! The running policy host: listeners, the request handlers, the state swapped by reloads,
//! the id-drift checks and the metrics.
//!
//! The state ([`State`]: the configuration, the policies, the file certificates) sits behind
//! one `Arc`; a reload builds a new one and swaps it in, so requests in progress finish on the
//! state they started with and no connection is dropped. A reload that fails (the
//! configuration does not parse, a certificate does not load, the policy directory cannot be
//! read) keeps the old state and logs one line saying why; a single policy refused by the
//! linter keeps that domain's previous policy and logs the linter's findings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use mtasts_core::sts::fetch::POLICY_PATH;
use mtasts_core::sts::publish::{PublishedId, published_id, zone_line};
use mtasts_net::DnsLookup;
use mtasts_net::http_server::{ConnInfo, HTTP_ALPN, HttpServer, ServerStats};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::certs::{ACME_TLS_ALPN, AcmeHooks, FileCerts, HTTP01_PREFIX, Resolver};
use crate::config::{Config, secs};
use crate::metrics::Metrics;
use crate::policies::{self, Served};

/// What is served now.
#[derive(Debug)]
pub struct State {
    /// The configuration.
    pub config: Arc<Config>,
    /// The policies, by domain.
    pub policies: BTreeMap<String, Served>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Something else (the message names it).
    #[error("{0}")]
    Other(String),
}

/// The host names the policy host serves: `mta-sts.<domain>` of every policy (the names its
/// certificates must cover, for an ACME client to obtain).
pub fn policy_hosts(state: &State) -> Vec<String> {
    state
        .policies
        .keys()
        .map(|d| format!("mta-sts.{d}"))
        .collect()
}

/// The normalised host a request is for: the `Host` header (HTTP/1.1) or the URI's authority
/// (h2), lower case, without a port or a trailing dot.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            let h = req.headers().get(header::HOST)?.to_str().ok()?;
            let h = h.trim();
            // An IPv6 literal keeps its brackets; a port after it or after a name goes.
            let host = if let Some(rest) = h.strip_prefix('[') {
                let end = rest.find(']')?;
                &h[..end + 2]
            } else {
                h.split(':').next().unwrap_or(h)
            };
            Some(host.to_owned())
        })?;
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The shared parts of a running server.
pub struct Shared {
    state: RwLock<Arc<State>>,
    config_path: Option<PathBuf>,
    resolver: Arc<Resolver>,
    dns: Arc<dyn DnsLookup>,
    drift: Mutex<BTreeMap<String, (String, PublishedId)>>,
    /// The metrics.
    pub metrics: Metrics,
    /// The HTTPS server's counters.
    pub https_stats: Arc<ServerStats>,
    receiver: Option<ReceiverHandler>,
    acme: Option<Arc<mtasts_acme::Acme>>,
}

type ReceiverHandler = Arc<
    dyn Fn(Request<Incoming>, Arc<ConnInfo>) -> mtasts_tlsrpt_receive::https::RouterFuture
        + Send
        + Sync,
>;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    r
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What a reload changed.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Domains whose served id is new (added or changed).
    pub changed: Vec<String>,
    /// Domains no longer served.
    pub removed: Vec<String>,
}

impl Shared {
    /// The state served now.
    pub fn state(&self) -> Arc<State> {
        Arc::clone(&read(&self.state))
    }

    /// The id-drift state of each domain checked: (served id, what the live record says).
    pub fn drift(&self) -> BTreeMap<String, (String, PublishedId)> {
        lock(&self.drift).clone()
    }

    /// Builds the state from `config`, keeping each refused policy's previous one; logs the
    /// refusals. Only what makes the whole state unusable is an error.
    fn build(
        config: Config,
        previous: &BTreeMap<String, Served>,
    ) -> Result<(State, FileCerts), String> {
        let loaded = policies::load(&config, previous)?;
        for r in &loaded.refused {
            tracing::warn!("{r}");
        }
        for s in &loaded.skipped {
            tracing::warn!("policy_dir: skipped {s}");
        }
        let files = FileCerts::load(&config.certificates.files)?;
        Ok((
            State {
                config: Arc::new(config),
                policies: loaded.served,
            },
            files,
        ))
    }

    /// Reads the configuration file again (when there is one), the policies and the
    /// certificates, and swaps them in. On failure the old state stays, the failure is counted
    /// and logged in one line, and returned.
    pub fn reload(&self) -> Result<ReloadReport, String> {
        let old = self.state();
        let result = (|| {
            let config = match &self.config_path {
                Some(p) => Config::load(p).map_err(|e| e.one_line())?,
                None => (*old.config).clone(),
            };
            if config.restart_only() != old.config.restart_only() {
                tracing::warn!(
                    "reload: listeners, limits, the admin listener, the receiver and the log format change only at a restart; their old values stay"
                );
            }
            Self::build(config, &old.policies)
        })();
        match result {
            Err(why) => {
                self.metrics.reload(false);
                tracing::error!("reload failed, serving the previous state: {why}");
                Err(why)
            }
            Ok((state, files)) => {
                let mut report = ReloadReport::default();
                for (d, s) in &state.policies {
                    if old.policies.get(d).is_none_or(|o| o.id != s.id) {
                        report.changed.push(d.clone());
                    }
                }
                for d in old.policies.keys() {
                    if !state.policies.contains_key(d) {
                        report.removed.push(d.clone());
                    }
                }
                self.resolver.set_files(Arc::new(files));
                *self
                    .state
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(state);
                {
                    let mut drift = lock(&self.drift);
                    for d in &report.removed {
                        drift.remove(d);
                    }
                }
                self.metrics.reload(true);
                self.announce(&report.changed);
                self.warn_expiring();
                tracing::info!(
                    changed = report.changed.len(),
                    removed = report.removed.len(),
                    "reloaded"
                );
                Ok(report)
            }
        }
    }

    /// Logs the record to publish for each domain in `domains`.
    fn announce(&self, domains: &[String]) {
        let state = self.state();
        for d in domains {
            if let Some(s) = state.policies.get(d) {
                tracing::info!(
                    domain = %d,
                    id = %s.id,
                    mode = %s.policy.mode,
                    "serving the policy of {d}; publish: {}",
                    zone_line(d, &s.id, state.config.record_ttl)
                );
            }
        }
    }

    /// Logs each certificate within `expiry_warning_days` of its end.
    fn warn_expiring(&self) {
        let days = i64::from(self.state().config.certificates.expiry_warning_days);
        let now = unix_now();
        for (name, not_after) in self.expiries() {
            let left = not_after - now;
            if left < days * 86_400 {
                tracing::warn!(
                    name = %name,
                    seconds_left = left,
                    "the certificate for {name} expires in {} days",
                    left / 86_400
                );
            }
        }
    }

    /// The ACME manager, when `[acme]` is on.
    pub fn acme(&self) -> Option<&Arc<mtasts_acme::Acme>> {
        self.acme.as_ref()
    }

    /// Every certificate name served and its `notAfter`.
    pub fn expiries(&self) -> Vec<(String, i64)> {
        let files = self.resolver.files();
        let mut out: Vec<(String, i64)> = files
            .certs
            .iter()
            .flat_map(|c| c.names.iter().map(|n| (n.clone(), c.not_after)))
            .collect();
        if let Some(s) = self.resolver.source() {
            out.extend(
                s.expiries()
                    .into_iter()
                    .map(|(n, t)| (n, i64::try_from(t).unwrap_or(i64::MAX))),
            );
        }
        out
    }

    /// Looks up the live `_mta-sts` record of each of `domains` (all served ones when `None`)
    /// and compares it with the served id; logs a warning on drift, records the state for the
    /// metrics, and returns it.
    pub async fn check_drift(
        &self,
        domains: Option<&[String]>,
    ) -> BTreeMap<String, (String, PublishedId)> {
        let state = self.state();
        let wanted: Vec<(String, String)> = state
            .policies
            .iter()
            .filter(|(d, _)| domains.is_none_or(|ds| ds.contains(d)))
            .map(|(d, s)| (d.clone(), s.id.clone()))
            .collect();
        let mut out = BTreeMap::new();
        for (domain, id) in wanted {
            let name = format!("{}.{domain}", mtasts_core::sts::record::STS_LABEL);
            let answer = self.dns.txt(&name).await;
            let found = match &answer {
                Ok(a) => published_id(Ok(a.records.as_slice()), &id),
                Err(e) => published_id::<Vec<Vec<u8>>, Vec<u8>>(Err(e), &id),
            };
            let line = found.describe(&id);
            if found.is_drift() {
                tracing::warn!(domain = %domain, state = found.as_str(), "id drift for {domain}: {line}");
            } else if let PublishedId::Unknown { .. } = found {
                tracing::warn!(domain = %domain, state = found.as_str(), "{domain}: {line}");
            } else {
                tracing::info!(domain = %domain, state = found.as_str(), "{domain}: {line}");
            }
            out.insert(domain, (id, found));
        }
        let mut drift = lock(&self.drift);
        for (d, v) in &out {
            drift.insert(d.clone(), v.clone());
        }
        out
    }

    /// Answers one request on an HTTPS listener.
    async fn https(self: Arc<Self>, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Response<Body> {
        let state = self.state();
        let host = request_host(&req);
        let path = req.uri().path();
        // The receiver's host and paths are its own (RFC 8460 §5.4).
        if let (Some(receiver), Some(rhost), Some(h)) =
            (&self.receiver, &state.config.reports.receiver.host, &host)
            && h == rhost
            && state
                .config
                .reports
                .receiver
                .paths
                .iter()
                .any(|p| p == path)
        {
            let r = receiver(req, conn).await;
            self.metrics.request("receiver", r.status().as_u16());
            return r;
        }
        let domain = host
            .as_deref()
            .and_then(|h| h.strip_prefix("mta-sts."))
            .filter(|d| state.policies.contains_key(*d));
        let Some(domain) = domain else {
            self.metrics.request("unknown", 404);
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        let response = if path != POLICY_PATH {
            text(StatusCode::NOT_FOUND, "not found\n")
        } else if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            r
        } else if let Some(s) = state.policies.get(domain) {
            let mut r = Response::new(if req.method() == Method::HEAD {
                Body::empty()
            } else {
                Body::from(s.text.clone())
            });
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain"),
            );
            h.insert(
                header::CONTENT_LENGTH,
                header::HeaderValue::from(s.text.len()),
            );
            h.insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-cache"),
            );
            r
        } else {
            text(StatusCode::NOT_FOUND, "not found\n")
        };
        self.metrics.request(domain, response.status().as_u16());
        response
    }

    /// Answers one request on a plain-HTTP listener: HTTP-01 challenges only.
    fn http01(&self, req: &Request<Incoming>, hooks: &AcmeHooks) -> Response<Body> {
        let token = req.uri().path().strip_prefix(HTTP01_PREFIX);
        let answer = match token {
            Some(t)
                if !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && (req.method() == Method::GET || req.method() == Method::HEAD) =>
            {
                hooks.http01.get(t)
            }
            _ => None,
        };
        match answer {
            Some(a) => {
                self.metrics.request("acme-http-01", 200);
                let mut r = Response::new(Body::from(a));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain"),
                );
                r
            }
            None => {
                self.metrics.request("acme-http-01", 404);
                text(StatusCode::NOT_FOUND, "not found\n")
            }
        }
    }

    /// Answers one request on the admin listener.
    fn admin(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.uri().path() != "/metrics" {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        }
        let body = self.metrics.render(self);
        let mut r = Response::new(Body::from(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        r
    }
}

/// A running server: its addresses, its shared state, and how to stop it.
#[derive(Debug)]
pub struct Running {
    /// The shared state (reload, drift, metrics).
    pub shared: Arc<Shared>,
    /// The HTTPS listeners' addresses (as bound: port 0 is resolved).
    pub https_addrs: Vec<SocketAddr>,
    /// The plain-HTTP (HTTP-01) listeners' addresses.
    pub http_addrs: Vec<SocketAddr>,
    /// The admin listener's addresses.
    pub admin_addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

async fn bind(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, StartError> {
    let mut out = Vec::new();
    for addr in addrs {
        let err = |source| StartError::Listen {
            addr: *addr,
            source,
        };
        let domain = if addr.is_ipv6() {
            socket2::Domain::IPV6
        } else {
            socket2::Domain::IPV4
        };
        let sock =
            socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
                .map_err(err)?;
        if addr.is_ipv6() {
            // `[::]:443` for IPv6 only, so that `0.0.0.0:443` can be bound beside it whatever
            // `net.ipv6.bindv6only` says.
            sock.set_only_v6(true).map_err(err)?;
        }
        sock.set_reuse_address(true).map_err(err)?;
        sock.set_nonblocking(true).map_err(err)?;
        sock.bind(&(*addr).into()).map_err(err)?;
        sock.listen(1024).map_err(err)?;
        out.push(TcpListener::from_std(sock.into()).map_err(err)?);
    }
    Ok(out)
}

impl Running {
    /// Loads `config` (read from `config_path` again at each reload, when given), binds every
    /// listener, logs the record to publish for each domain, and starts serving; the first
    /// id-drift check runs in the background. `dns` is the one DNS edge the drift checks ask
    /// (built from `[dns]` when `None`).
    pub async fn start(
        config: Config,
        config_path: Option<PathBuf>,
        hooks: AcmeHooks,
        dns: Option<Arc<dyn DnsLookup>>,
    ) -> Result<Running, StartError> {
        let (state, files) = Shared::build(config, &BTreeMap::new()).map_err(StartError::Other)?;
        let config = Arc::clone(&state.config);
        let dns = match dns {
            Some(d) => d,
            None => mtasts_net::Dns::new(&config.dns.settings())
                .map_err(|e| StartError::Other(e.to_string()))?
                .shared(),
        };
        let receiver = match &config.reports.receiver.host {
            None => None,
            Some(_) => {
                let url = config.reports.store.clone().unwrap_or_default();
                let store = mtasts_tlsrpt_store::Store::open(&url)
                    .await
                    .map_err(|e| StartError::Other(format!("reports.store {url}: {e}")))?;
                let ingester = mtasts_tlsrpt_receive::ingest::Ingester::new(
                    store,
                    Arc::clone(&dns),
                    mtasts_core::tlsrpt::report::ReportLimits::DEFAULT,
                    Default::default(),
                );
                let paths: Vec<&str> = config
                    .reports
                    .receiver
                    .paths
                    .iter()
                    .map(String::as_str)
                    .collect();
                let router = mtasts_tlsrpt_receive::https::router_at(
                    ingester,
                    config.reports.receiver.limits(),
                    &paths,
                )
                .map_err(|e| StartError::Other(format!("reports.receiver: {e}")))?;
                let h = mtasts_tlsrpt_receive::https::handler(router);
                Some(Arc::new(h) as ReceiverHandler)
            }
        };
        let mut hooks = hooks;
        let acme = match hooks.certs {
            // A caller's own source wins.
            Some(_) => None,
            None => start_acme(&config, &state, &files, &dns, &hooks)?,
        };
        if let Some(a) = &acme {
            hooks.certs = Some(a.certs() as Arc<dyn crate::certs::CertSource>);
        }
        let resolver = Arc::new(Resolver::new(Arc::new(files), hooks.clone()));
        let mut alpn: Vec<&[u8]> = HTTP_ALPN.to_vec();
        alpn.push(ACME_TLS_ALPN);
        let tls = mtasts_net::tls::server_config_with_resolver(
            Arc::clone(&resolver) as Arc<dyn rustls::server::ResolvesServerCert>,
            &alpn,
        )
        .map_err(|e| StartError::Other(e.to_string()))?;
        let https_l = bind(&config.listen).await?;
        let http_l = bind(&config.http_listen).await?;
        let admin_l = bind(&config.admin.listen).await?;
        let addrs = |ls: &[TcpListener]| -> Vec<SocketAddr> {
            ls.iter().filter_map(|l| l.local_addr().ok()).collect()
        };
        let (https_addrs, http_addrs, admin_addrs) =
            (addrs(&https_l), addrs(&http_l), addrs(&admin_l));
        let shared = Arc::new(Shared {
            state: RwLock::new(Arc::new(state)),
            config_path,
            resolver,
            dns,
            drift: Mutex::new(BTreeMap::new()),
            metrics: Metrics::default(),
            https_stats: Arc::default(),
            receiver,
            acme: acme.clone(),
        });
        let domains: Vec<String> = shared.state().policies.keys().cloned().collect();
        shared.announce(&domains);
        shared.warn_expiring();
        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let limits = config.limits.serve_limits();
        let mut tasks = tokio::task::JoinSet::new();
        {
            let s = Arc::clone(&shared);
            let server = HttpServer {
                name: "policy host",
                tls: Some(tls),
                limits: limits.clone(),
                stats: Arc::clone(&shared.https_stats),
                handler: move |req, conn| Arc::clone(&s).https(req, conn),
            };
            let rx = stop_rx.clone();
            tasks.spawn(async move {
                if let Err(e) = server.serve(https_l, stopped(rx)).await {
                    tracing::error!("policy host: {e}");
                }
            });
        }
        if !http_l.is_empty() {
            let s = Arc::clone(&shared);
            let hooks = hooks.clone();
            let server = HttpServer {
                name: "ACME HTTP-01",
                tls: None,
                limits: limits.clone(),
                stats: Arc::default(),
                handler: move |req: Request<Incoming>, _conn| {
                    let r = s.http01(&req, &hooks);
                    async move { r }
                },
            };
            let rx = stop_rx.clone();
            tasks.spawn(async move {
                if let Err(e) = server.serve(http_l, stopped(rx)).await {
                    tracing::error!("ACME HTTP-01: {e}");
                }
            });
        }
        if !admin_l.is_empty() {
            let s = Arc::clone(&shared);
            let server = HttpServer {
                name: "admin",
                tls: None,
                limits,
                stats: Arc::default(),
                handler: move |req: Request<Incoming>, _conn| {
                    let r = s.admin(&req);
                    async move { r }
                },
            };
            let rx = stop_rx.clone();
            tasks.spawn(async move {
                if let Err(e) = server.serve(admin_l, stopped(rx)).await {
                    tracing::error!("admin: {e}");
                }
            });
        }
        // Certificates obtained and renewed until shutdown.
        if let Some(acme) = acme {
            let rx = stop_rx.clone();
            tasks.spawn(acme.run(stopped(rx)));
        }
        // The first drift check, then one every `dns.check_interval`.
        {
            let s = Arc::clone(&shared);
            let mut rx = stop_rx.clone();
            tasks.spawn(async move {
                loop {
                    s.check_drift(None).await;
                    let every = s.state().config.dns.check_interval;
                    if every <= 0.0 {
                        let _ = rx.wait_for(|v| *v).await;
                        return;
                    }
                    tokio::select! {
                        _ = rx.wait_for(|v| *v) => return,
                        () = tokio::time::sleep(secs(every)) => {}
                    }
                }
            });
        }
        // Reloads when a watched file changes.
        {
            let s = Arc::clone(&shared);
            let mut rx = stop_rx;
            tasks.spawn(async move {
                let mut seen = fingerprint(&s.state().config, s.config_path.as_deref());
                loop {
                    let every = s.state().config.reload_interval;
                    if every <= 0.0 {
                        let _ = rx.wait_for(|v| *v).await;
                        return;
                    }
                    tokio::select! {
                        _ = rx.wait_for(|v| *v) => return,
                        () = tokio::time::sleep(secs(every)) => {}
                    }
                    let now = fingerprint(&s.state().config, s.config_path.as_deref());
                    if now != seen {
                        tracing::info!("a watched file changed: reloading");
                        let _ = s.reload_and_check().await;
                        seen = fingerprint(&s.state().config, s.config_path.as_deref());
                    }
                }
            });
        }
        Ok(Running {
            shared,
            https_addrs,
            http_addrs,
            admin_addrs,
            stop,
            tasks,
        })
    }

    /// Stops accepting, lets requests in progress finish (`limits.shutdown_grace`), and
    /// returns when every listener is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The ACME manager of `[acme]`, when it is on and has names: `acme.names`, or
/// `mta-sts.<domain>` of each policy domain no file certificate covers. Loads the stored
/// certificates (no network); the orders are [`mtasts_acme::Acme::run`]'s.
fn start_acme(
    config: &Config,
    state: &State,
    files: &FileCerts,
    dns: &Arc<dyn DnsLookup>,
    hooks: &AcmeHooks,
) -> Result<Option<Arc<mtasts_acme::Acme>>, StartError> {
    let names: Vec<String> = if config.acme.names.is_empty() {
        policy_hosts(state)
            .into_iter()
            .filter(|n| !files.covers(n))
            .collect()
    } else {
        config.acme.names.clone()
    };
    let Some(settings) = config
        .acme
        .settings(&names, config.certificates.expiry_warning_days)
    else {
        return Ok(None);
    };
    if names.is_empty() {
        tracing::info!("ACME: every policy host has a certificate from files; nothing to order");
        return Ok(None);
    }
    let acme = mtasts_acme::Acme::with_challenge_sink(
        settings,
        Arc::clone(dns),
        Arc::new(hooks.clone()) as Arc<dyn mtasts_acme::ChallengeSink>,
    )
    .map_err(|e| StartError::Other(format!("[acme]: {e}")))?;
    for n in &names {
        let have = if acme.certs().get(n).is_some() {
            "a stored certificate"
        } else {
            "none yet"
        };
        tracing::info!(name = %n, "ACME: certificate for {n} ({have})");
    }
    Ok(Some(acme))
}

impl Shared {
    /// Reloads, then checks the published record of each domain whose id changed.
    pub async fn reload_and_check(&self) -> Result<ReloadReport, String> {
        let report = self.reload()?;
        if !report.changed.is_empty() {
            self.check_drift(Some(&report.changed)).await;
        }
        Ok(report)
    }
}

/// A file's modification time, length and inode.
type FileStamp = (SystemTime, u64, u64);

/// What a change of the watched files is seen by: each file's modification time, length and
/// inode (the configuration file, the policy directory and its entries, the certificate
/// files).
fn fingerprint(config: &Config, config_path: Option<&Path>) -> Vec<(PathBuf, Option<FileStamp>)> {
    use std::os::unix::fs::MetadataExt;
    let stat = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            (
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                m.ino(),
            )
        })
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(p) = config_path {
        paths.push(p.to_owned());
    }
    for f in &config.certificates.files {
        paths.push(f.chain.clone());
        paths.push(f.key.clone());
    }
    if let Some(dir) = &config.policy_dir {
        paths.push(dir.clone());
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            paths.extend(entries);
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let s = stat(&p);
            (p, s)
        })
        .collect()
}

/// How long to wait at most for the drift check of `mtasts serve --check` (per domain it is
/// the DNS timeout times the attempts).
pub const CHECK_GUARD: Duration = Duration::from_secs(120);
