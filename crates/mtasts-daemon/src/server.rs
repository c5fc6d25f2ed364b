//! The socketmap server: listeners, one task per connection, pipelined requests answered
//! concurrently and written in order, reload and graceful shutdown.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mtasts_core::dane::Decision;
use mtasts_postfix::socketmap::{
    DaneMode, Decoder, LookupKey, PolicyReply, Reply, Request, Trimmed, ZoneOptions, classify_key,
    dane_reply, policy_reply, transient_reply,
};
use mtasts_resolver::{Outcome, Resolution, Resolver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError, Listener, UnixListenerConfig, ZoneTable, secs};
use crate::logging;
use crate::metrics::{self, Metrics};

mod admin_socket;

/// The settings a reload changes for the next request (zones, sizes) or the next connection
/// (timeouts, limits).
#[derive(Clone, Debug)]
struct Live {
    zones: ZoneTable,
    max_request: usize,
    max_reply: usize,
    max_pipeline: usize,
    idle_timeout: Duration,
    request_read_timeout: Duration,
    request_timeout: Duration,
    shutdown_timeout: Duration,
    admin_max_request: usize,
    admin_timeout: Duration,
}

impl Live {
    fn from_config(c: &Config) -> Live {
        Live {
            zones: c.zone_table(),
            max_request: c.max_request,
            max_reply: c.max_reply,
            max_pipeline: c.max_pipeline,
            idle_timeout: secs(c.idle_timeout),
            request_read_timeout: secs(c.request_read_timeout),
            request_timeout: secs(c.request_timeout),
            shutdown_timeout: secs(c.shutdown_timeout),
            admin_max_request: c.admin_max_request,
            admin_timeout: secs(c.admin_timeout),
        }
    }
}

struct Shared {
    resolver: Resolver,
    metrics: Arc<Metrics>,
    live: RwLock<Arc<Live>>,
    /// The configuration in force (restart-only keys keep their start-up values).
    config: Mutex<Config>,
    max_connections: usize,
    /// When "max_connections reached" was last logged (seconds since start), to log it at
    /// most every 10 seconds.
    last_limit_warning: AtomicU64,
    /// When the malformed-input warning was last logged (seconds since start).
    last_protocol_warning: AtomicU64,
    started: Instant,
    /// The open connections, for closing the one idle longest when the cap is reached.
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_conn: AtomicU64,
    /// Notified when a connection has answered everything it was asked (it can now be
    /// closed to make room for a waiting one).
    quiet: tokio::sync::Notify,
}

/// What the accept loop needs to know about an open connection.
struct ConnState {
    /// Milliseconds since start when the connection last became idle or began its current
    /// request (the longer ago, the better a candidate for eviction).
    quiet_since: AtomicU64,
    /// Requests read but not yet answered.
    pending: AtomicUsize,
    /// Cancelled to close the connection.
    close: CancellationToken,
}

impl Shared {
    fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Closes the open connection that has been quiet the longest and has nothing being
    /// answered (an idle client, or one trickling a request); false when every connection
    /// is waiting for an answer.
    fn evict_idlest(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        // A connection closed to make room has not released its slot yet: that slot is the
        // one the waiting client gets. Closing another would cost a client its connection for
        // nothing (a race seen when an answer's "now quiet" notice came after the eviction).
        if conns.values().any(|c| c.close.is_cancelled()) {
            return false;
        }
        // Quiet the longest; between equals, the oldest connection.
        let victim = conns
            .iter()
            .filter(|(_, c)| c.pending.load(Ordering::Relaxed) == 0 && !c.close.is_cancelled())
            .min_by_key(|(id, c)| (c.quiet_since.load(Ordering::Relaxed), **id));
        match victim {
            Some((_, c)) => {
                c.close.cancel();
                true
            }
            None => false,
        }
    }

    /// Logs the malformed-input warning at most every 10 seconds (a hostile client must not
    /// flood the log); the count is in the metrics either way.
    fn protocol_warning_due(&self) -> bool {
        let now = self.started.elapsed().as_secs();
        let last = self.last_protocol_warning.load(Ordering::Relaxed);
        if last == u64::MAX || now >= last + 10 {
            self.last_protocol_warning.store(now, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// A bound listening address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundAddr {
    /// A TCP socket (with the real port when the configuration said 0).
    Tcp(SocketAddr),
    /// A Unix socket file.
    Unix(PathBuf),
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Keys whose new values are in force.
    pub applied: Vec<&'static str>,
    /// Keys that changed but need a restart; their old values stay in force.
    pub needs_restart: Vec<&'static str>,
}

/// What a shutdown did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every connection finished its requests within `shutdown_timeout`.
    pub clean: bool,
}

/// A running daemon.
pub struct Daemon {
    shared: Arc<Shared>,
    addrs: Vec<BoundAddr>,
    metrics_addr: Option<SocketAddr>,
    unix_paths: Vec<PathBuf>,
    stop_accepting: CancellationToken,
    stop_reading: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
    listener_tasks: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("addrs", &self.addrs)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

enum Acceptor {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Daemon {
    /// Builds the resolver from `config.resolver` and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Daemon> {
        let resolver = Resolver::new(&config.resolver)
            .await
            .context("cannot start the resolver")?;
        Daemon::start_with_resolver(config, resolver).await
    }

    /// Starts serving with a resolver built by the caller (`config.resolver` is then only
    /// used to tell a reload what changed).
    pub async fn start_with_resolver(config: Config, resolver: Resolver) -> anyhow::Result<Daemon> {
        config.validate("configuration")?;
        let mut acceptors = Vec::new();
        let mut addrs = Vec::new();
        let mut unix_paths = Vec::new();
        for l in &config.listen {
            let bound = match l {
                Listener::Tcp(addr) => TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on tcp {addr}"))
                    .and_then(|t| {
                        let a = t.local_addr()?;
                        Ok((Acceptor::Tcp(t), BoundAddr::Tcp(a)))
                    }),
                Listener::Unix(u) => bind_unix(u).map(|t| {
                    unix_paths.push(u.path.clone());
                    (Acceptor::Unix(t), BoundAddr::Unix(u.path.clone()))
                }),
            };
            match bound {
                Ok((acc, addr)) => {
                    acceptors.push(acc);
                    addrs.push(addr);
                }
                Err(e) => {
                    remove_sockets(&unix_paths);
                    return Err(e);
                }
            }
        }
        let admin_listener = match &config.admin {
            Some(a) => match bind_unix(&a.0) {
                Ok(l) => {
                    unix_paths.push(a.0.path.clone());
                    Some(l)
                }
                Err(e) => {
                    remove_sockets(&unix_paths);
                    return Err(e.context("cannot open the admin socket"));
                }
            },
            None => None,
        };
        let metrics_listener = match config.metrics {
            Some(addr) => match TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    remove_sockets(&unix_paths);
                    return Err(e).with_context(|| format!("cannot serve metrics on {addr}"));
                }
            },
            None => None,
        };
        let metrics_addr = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;

        let shared = Arc::new(Shared {
            resolver: resolver.clone(),
            metrics: Arc::new(Metrics::default()),
            live: RwLock::new(Arc::new(Live::from_config(&config))),
            max_connections: config.max_connections,
            last_limit_warning: AtomicU64::new(u64::MAX),
            last_protocol_warning: AtomicU64::new(u64::MAX),
            started: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            quiet: tokio::sync::Notify::new(),
            config: Mutex::new(config.clone()),
        });
        let stop_accepting = CancellationToken::new();
        let stop_reading = CancellationToken::new();
        let abort = CancellationToken::new();
        let tracker = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let mut listener_tasks = Vec::new();
        for acc in acceptors {
            listener_tasks.push(tokio::spawn(accept_loop(
                acc,
                shared.clone(),
                slots.clone(),
                stop_accepting.clone(),
                stop_reading.clone(),
                abort.clone(),
                tracker.clone(),
            )));
        }
        if let Some(l) = admin_listener {
            listener_tasks.push(tokio::spawn(admin_socket::accept_loop(
                l,
                config.admin_max_connections,
                shared.clone(),
                stop_accepting.clone(),
                abort.clone(),
                tracker.clone(),
            )));
        }
        let mut background = Vec::new();
        if let Some(l) = metrics_listener {
            background.push(tokio::spawn(metrics::serve(
                l,
                shared.metrics.clone(),
                resolver.clone(),
                stop_accepting.clone(),
            )));
        }
        if config.refresh_period > 0.0 {
            background
                .push(resolver.spawn_refresher(secs(config.refresh_period), config.refresh_batch));
        }
        for a in &addrs {
            match a {
                BoundAddr::Tcp(t) => tracing::info!(listen = %t, "listening on tcp"),
                BoundAddr::Unix(p) => tracing::info!(listen = %p.display(), "listening on unix"),
            }
        }
        if let Some(m) = metrics_addr {
            tracing::info!(metrics = %metrics::describe(m), "serving metrics");
        }
        if let Some(a) = &config.admin {
            tracing::info!(admin = %a.path().display(), "admin socket open (mtasts daemon cache)");
        }
        log_dane(&config, &resolver);
        tracing::info!(
            store = resolver.store_backend(),
            cached = resolver.len(),
            max_connections = config.max_connections,
            "mtasts daemon ready"
        );
        Ok(Daemon {
            shared,
            addrs,
            metrics_addr,
            unix_paths,
            stop_accepting,
            stop_reading,
            abort,
            tracker,
            listener_tasks,
            background,
        })
    }

    /// The addresses the daemon listens on, in configuration order.
    pub fn local_addrs(&self) -> &[BoundAddr] {
        &self.addrs
    }

    /// The first TCP address, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.addrs.iter().find_map(|a| match a {
            BoundAddr::Tcp(t) => Some(*t),
            BoundAddr::Unix(_) => None,
        })
    }

    /// The metrics address, when metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The admin socket, when it is on.
    pub fn admin_path(&self) -> Option<PathBuf> {
        let config = self.shared.config.lock().unwrap_or_else(|p| p.into_inner());
        config.admin.as_ref().map(|a| a.path().to_path_buf())
    }

    /// The resolver.
    pub fn resolver(&self) -> &Resolver {
        &self.shared.resolver
    }

    /// The daemon's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The metrics text, as `GET /metrics` serves it.
    pub fn render_metrics(&self) -> String {
        self.shared.metrics.render(&self.shared.resolver)
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> u64 {
        self.shared.metrics.in_flight.load(Ordering::Relaxed)
    }

    /// Open connections.
    pub fn connections(&self) -> u64 {
        self.shared.metrics.connections.load(Ordering::Relaxed)
    }

    /// Applies a new configuration: zones, the log level, request and reply sizes, the
    /// pipeline depth and the timeouts take effect at once (sizes and timeouts for new
    /// connections); listeners, `max_connections`, the admin socket and its
    /// `admin_max_connections`, metrics, the refresher, the log format
    /// and the resolver need a restart and are left unchanged (each is logged).
    ///
    /// The new configuration is checked first ([`Config::validate`]); an invalid one changes
    /// nothing.
    pub fn reload(&self, new: Config) -> Result<ReloadReport, ConfigError> {
        if let Err(e) = new.validate("new configuration") {
            self.shared
                .metrics
                .reloads_failed
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e.one_line(), "configuration not reloaded; the running one stays");
            return Err(e);
        }
        let mut current = self.shared.config.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = ReloadReport::default();
        let restart: [(&'static str, bool); 10] = [
            ("listen", new.listen != current.listen),
            ("admin", new.admin != current.admin),
            (
                "admin_max_connections",
                new.admin_max_connections != current.admin_max_connections,
            ),
            (
                "max_connections",
                new.max_connections != current.max_connections,
            ),
            ("metrics", new.metrics != current.metrics),
            (
                "metrics_allow_remote",
                new.metrics_allow_remote != current.metrics_allow_remote,
            ),
            (
                "refresh_period",
                new.refresh_period != current.refresh_period,
            ),
            ("refresh_batch", new.refresh_batch != current.refresh_batch),
            ("log.format", new.log.format != current.log.format),
            ("resolver", new.resolver != current.resolver),
        ];
        for (key, changed) in restart {
            if changed {
                tracing::warn!(
                    key,
                    "changed in the configuration file, but needs a restart: left unchanged"
                );
                report.needs_restart.push(key);
            }
        }
        let live: [(&'static str, bool); 8] = [
            ("default_zone", new.default_zone != current.default_zone),
            ("zones", new.zones != current.zones),
            ("log.level", new.log.level != current.log.level),
            ("max_request", new.max_request != current.max_request),
            ("max_reply", new.max_reply != current.max_reply),
            ("max_pipeline", new.max_pipeline != current.max_pipeline),
            (
                "timeouts",
                new.idle_timeout != current.idle_timeout
                    || new.request_read_timeout != current.request_read_timeout
                    || new.request_timeout != current.request_timeout
                    || new.shutdown_timeout != current.shutdown_timeout,
            ),
            (
                "admin limits",
                new.admin_max_request != current.admin_max_request
                    || new.admin_timeout != current.admin_timeout,
            ),
        ];
        for (key, changed) in live {
            if changed {
                report.applied.push(key);
            }
        }
        if new.log.level != current.log.level
            && let Err(e) = logging::set_level(&new.log.level)
        {
            tracing::warn!(error = %e, "cannot change the log level");
        }
        current.default_zone = new.default_zone;
        current.zones = new.zones;
        current.log.level = new.log.level;
        current.max_request = new.max_request;
        current.max_reply = new.max_reply;
        current.max_pipeline = new.max_pipeline;
        current.idle_timeout = new.idle_timeout;
        current.request_read_timeout = new.request_read_timeout;
        current.request_timeout = new.request_timeout;
        current.shutdown_timeout = new.shutdown_timeout;
        current.admin_max_request = new.admin_max_request;
        current.admin_timeout = new.admin_timeout;
        let live = Arc::new(Live::from_config(&current));
        *self.shared.live.write().unwrap_or_else(|p| p.into_inner()) = live;
        log_dane(&current, &self.shared.resolver);
        self.shared
            .metrics
            .reloads_ok
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            applied = ?report.applied,
            needs_restart = ?report.needs_restart,
            "configuration reloaded"
        );
        Ok(report)
    }

    /// Reads `path` and applies it as [`reload`](Self::reload) does. On an error the running
    /// configuration stays in force.
    pub fn reload_from_file(&self, path: &Path) -> Result<ReloadReport, ConfigError> {
        match Config::load(path) {
            Ok(c) => self.reload(c),
            Err(e) => {
                self.shared
                    .metrics
                    .reloads_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e.one_line(), "configuration not reloaded; the running one stays");
                Err(e)
            }
        }
    }

    /// Stops accepting connections, lets every connection finish the requests it has read
    /// (reading no more) for up to `shutdown_timeout`, then closes what is left.
    pub async fn shutdown(mut self) -> ShutdownReport {
        self.stop_accepting.cancel();
        for t in self.listener_tasks.drain(..) {
            let _ = t.await;
        }
        remove_sockets(&self.unix_paths);
        self.stop_reading.cancel();
        self.tracker.close();
        let timeout = self.shared.live().shutdown_timeout;
        let clean = tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok();
        if !clean {
            tracing::warn!(
                connections = self.connections(),
                "shutdown_timeout passed with requests unanswered: closing their connections"
            );
            self.abort.cancel();
            self.tracker.wait().await;
        }
        for t in self.background.drain(..) {
            t.abort();
        }
        tracing::info!(clean, "stopped");
        ShutdownReport { clean }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.listener_tasks.is_empty() {
            // Dropped without shutdown(): still leave no socket file behind.
            remove_sockets(&self.unix_paths);
        }
        self.stop_accepting.cancel();
        self.stop_reading.cancel();
        self.abort.cancel();
        for t in self.listener_tasks.iter().chain(self.background.iter()) {
            t.abort();
        }
    }
}

fn remove_sockets(paths: &[PathBuf]) {
    for p in paths {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %p.display(), error = %e, "cannot remove the socket"),
        }
    }
}

/// The private directory a restricted socket is bound in (`.mtasts-` and 6 random
/// characters, beside the socket's path) and the socket's name there.
const PRIVATE_PREFIX: &str = ".mtasts-";
const PRIVATE_RANDOM: usize = 6;
const STAGED_NAME: &str = "s";

/// Binds a Unix socket: removes a stale socket file (never another kind of file, nor a
/// socket someone still listens on), then sets the mode and ownership.
fn bind_unix(cfg: &UnixListenerConfig) -> anyhow::Result<UnixListener> {
    let path = &cfg.path;
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!("{shown}: another process is listening on this socket");
            }
            std::fs::remove_file(path)
                .with_context(|| format!("{shown}: cannot remove the stale socket"))?;
            tracing::info!(path = %shown, "removed a stale socket");
        }
        Ok(_) => anyhow::bail!("{shown} exists and is not a socket: not removing it"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("{shown}: cannot inspect")),
    }
    let uid = cfg.owner.as_deref().map(user_id).transpose()?;
    let gid = cfg.group.as_deref().map(group_id).transpose()?;
    let restrict = |at: &Path| -> anyhow::Result<()> {
        if let Some(mode) = cfg.mode {
            std::fs::set_permissions(at, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("{shown}: cannot set mode {mode:04o}"))?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::chown(at, uid, gid)
                .with_context(|| format!("{shown}: cannot change the owner or group"))?;
        }
        Ok(())
    };
    // bind() creates the file with 0777 & !umask; were the mode set after it at the final
    // path, a process could connect in between (the access control of the admin socket and
    // of a socketmap socket is this mode). So the socket is bound in a fresh directory of
    // mode 0700 beside the path, given its mode and owner there, and renamed into place:
    // nobody else can reach it before it has them, whatever the umask.
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // parent/.mtasts-XXXXXX/s must fit sun_path (107 bytes and a NUL).
    let staged_len = parent.as_os_str().len()
        + 1
        + PRIVATE_PREFIX.len()
        + PRIVATE_RANDOM
        + 1
        + STAGED_NAME.len();
    let restricted = cfg.mode.is_some() || uid.is_some() || gid.is_some();
    if !restricted || staged_len > 107 {
        if restricted {
            // Too long for the detour: bound in place, its mode set just after (the window is
            // then the systemd unit's UMask=0007 to close).
            tracing::debug!(path = %shown, "path too long to bind in a private directory first");
        }
        let listener =
            UnixListener::bind(path).with_context(|| format!("cannot listen on unix {shown}"))?;
        if let Err(e) = restrict(path) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        return Ok(listener);
    }
    let private = tempfile::Builder::new()
        .prefix(PRIVATE_PREFIX)
        .rand_bytes(PRIVATE_RANDOM)
        .tempdir_in(parent)
        .with_context(|| {
            format!(
                "{shown}: cannot create a private directory in {} to bind in",
                parent.display()
            )
        })?;
    let staged = private.path().join(STAGED_NAME);
    debug_assert_eq!(staged.as_os_str().len(), staged_len);
    let listener =
        UnixListener::bind(&staged).with_context(|| format!("cannot listen on unix {shown}"))?;
    restrict(&staged)?;
    std::fs::rename(&staged, path)
        .with_context(|| format!("{shown}: cannot move the socket into place"))?;
    // A failure above removes `private` with the socket in it (on drop); now it is empty.
    let leftover = private.path().to_owned();
    if let Err(e) = private.close() {
        tracing::warn!(path = %leftover.display(), error = %e, "cannot remove the empty directory the socket was bound in");
    }
    Ok(listener)
}

fn user_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => anyhow::bail!("no such user {name:?}"),
        Err(e) => anyhow::bail!("cannot look up user {name:?}: {e}"),
    }
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => anyhow::bail!("no such group {name:?}"),
        Err(e) => anyhow::bail!("cannot look up group {name:?}: {e}"),
    }
}

async fn accept_loop(
    acceptor: Acceptor,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    stop_accepting: CancellationToken,
    stop_reading: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = stop_accepting.cancelled() => return,
            a = accept(&acceptor) => a,
        };
        let (conn, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                shared
                    .metrics
                    .connections_waited
                    .fetch_add(1, Ordering::Relaxed);
                let now = shared.started.elapsed().as_secs();
                let last = shared.last_limit_warning.load(Ordering::Relaxed);
                if last == u64::MAX || now >= last + 10 {
                    shared.last_limit_warning.store(now, Ordering::Relaxed);
                    tracing::warn!(
                        max_connections = shared.max_connections,
                        %peer,
                        "max_connections are open: closing the connection idle longest, or \
                         waiting for one to close when every connection is answering"
                    );
                }
                if shared.evict_idlest() {
                    shared
                        .metrics
                        .connections_evicted
                        .fetch_add(1, Ordering::Relaxed);
                }
                // Wait for a slot; whenever a connection finishes answering (and so becomes a
                // candidate), try again to make room.
                loop {
                    tokio::select! {
                        () = stop_accepting.cancelled() => return,
                        p = slots.clone().acquire_owned() => match p {
                            Ok(p) => break p,
                            Err(_) => return,
                        },
                        () = shared.quiet.notified() => {
                            if shared.evict_idlest() {
                                shared
                                    .metrics
                                    .connections_evicted
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
        };
        let task_shared = shared.clone();
        let stop = stop_reading.clone();
        let abort = abort.clone();
        match conn {
            Conn::Tcp(s) => {
                tracker.spawn(connection(s, peer, task_shared, stop, abort, permit));
            }
            Conn::Unix(s) => {
                tracker.spawn(connection(s, peer, task_shared, stop, abort, permit));
            }
        }
    }
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(acceptor: &Acceptor) -> io::Result<(Conn, String)> {
    match acceptor {
        Acceptor::Tcp(l) => {
            let (s, a) = l.accept().await?;
            // Replies are written whole; do not let Nagle hold back the next one.
            let _ = s.set_nodelay(true);
            Ok((Conn::Tcp(s), a.to_string()))
        }
        Acceptor::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((Conn::Unix(s), "unix".to_owned()))
        }
    }
}

/// Removes a connection from the registry when dropped.
struct Registered<'a>(&'a Shared, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

/// Decrements a gauge when dropped.
struct GaugeGuard<'a>(&'a AtomicU64);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection<S>(
    stream: S,
    peer: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
    abort: CancellationToken,
    _permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let m = &shared.metrics;
    m.connections.fetch_add(1, Ordering::Relaxed);
    m.connections_total.fetch_add(1, Ordering::Relaxed);
    let _gauge = GaugeGuard(&m.connections);
    tracing::debug!(%peer, "connection opened");
    let live = shared.live();
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(live.max_pipeline);
    let state = Arc::new(ConnState {
        quiet_since: AtomicU64::new(shared.millis()),
        pending: AtomicUsize::new(0),
        close: CancellationToken::new(),
    });
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    shared
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, state.clone());
    let _registered = Registered(&shared, id);
    let writer_gone = CancellationToken::new();
    let reader = read_requests(rd, tx, &shared, &live, &peer, &state, &stop, &writer_gone);
    let writer = write_replies(wr, rx, &shared, &live, &peer, &state, &writer_gone);
    tokio::select! {
        _ = async { tokio::join!(reader, writer) } => {}
        () = abort.cancelled() => {
            tracing::debug!(%peer, "connection closed at the end of shutdown_timeout");
        }
    }
    tracing::debug!(%peer, "connection closed");
}

#[allow(clippy::too_many_arguments)]
async fn read_requests<R: AsyncRead>(
    rd: R,
    tx: mpsc::Sender<Pending>,
    shared: &Arc<Shared>,
    live: &Live,
    peer: &str,
    state: &ConnState,
    stop: &CancellationToken,
    writer_gone: &CancellationToken,
) {
    let mut rd = std::pin::pin!(rd);
    let mut decoder = Decoder::new(live.max_request);
    let mut buf = vec![0u8; 4096];
    // When the request being read began: its deadline is not extended by trickled bytes.
    // With no request in progress, the connection is idle from the last reply written (or
    // from the start), which `state.quiet_since` records.
    let mut request_started: Option<tokio::time::Instant> = None;
    loop {
        let deadline = match request_started {
            Some(t) => t + live.request_read_timeout,
            // Answers are being computed: check again later (the writer's timeouts apply).
            None if state.pending.load(Ordering::Relaxed) > 0 => {
                tokio::time::Instant::now() + live.idle_timeout
            }
            None => {
                let quiet = Duration::from_millis(state.quiet_since.load(Ordering::Relaxed));
                tokio::time::Instant::from_std(shared.started + quiet) + live.idle_timeout
            }
        };
        let read = tokio::time::timeout_at(deadline, rd.read(&mut buf));
        let read = tokio::select! {
            biased;
            () = stop.cancelled() => {
                tracing::debug!(peer, "shutting down: reading no more requests");
                return;
            }
            () = writer_gone.cancelled() => return,
            () = state.close.cancelled() => {
                tracing::debug!(peer, "closed to make room at max_connections");
                return;
            }
            r = read => r,
        };
        let n = match read {
            Err(_) if request_started.is_some() => {
                shared
                    .metrics
                    .slow_request_closed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    peer,
                    "the request was not complete within request_read_timeout: closing"
                );
                return;
            }
            Err(_) => {
                let quiet_for = shared
                    .millis()
                    .saturating_sub(state.quiet_since.load(Ordering::Relaxed));
                if state.pending.load(Ordering::Relaxed) > 0
                    || Duration::from_millis(quiet_for) < live.idle_timeout
                {
                    // Answers pending, or a reply went out since the deadline was set.
                    continue;
                }
                shared.metrics.idle_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer, "idle_timeout: closing the connection");
                return;
            }
            Ok(Ok(0)) => {
                if decoder.is_partial() {
                    tracing::debug!(peer, "connection closed in the middle of a request");
                }
                return;
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(peer, error = %e, "read failed");
                return;
            }
        };
        if request_started.is_none() {
            request_started = Some(tokio::time::Instant::now());
            state.quiet_since.store(shared.millis(), Ordering::Relaxed);
        }
        decoder.feed(&buf[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some(payload)) => {
                    state.pending.fetch_add(1, Ordering::Relaxed);
                    // Most lookups are answered from memory without waiting: poll the answer
                    // once here and spawn a task only when it really has to wait (DNS, HTTPS,
                    // the store). A spawned future is simply polled again by its task.
                    let mut fut = Box::pin(answer(shared.clone(), payload));
                    let polled = {
                        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                        fut.as_mut().poll(&mut cx)
                    };
                    let item = match polled {
                        std::task::Poll::Ready(bytes) => Pending::Ready(bytes),
                        std::task::Poll::Pending => Pending::Task(tokio::spawn(fut)),
                    };
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.metrics.protocol_error(e.kind());
                    if shared.protocol_warning_due() {
                        tracing::warn!(
                            peer,
                            error = %e,
                            "malformed netstring: closing the connection without a reply \
                             (logged at most every 10 s; every one is counted in \
                             mtasts_socketmap_protocol_errors_total)"
                        );
                    }
                    return;
                }
            }
        }
        // A new request starts with the next byte, unless the decoder still holds part of
        // one (whose deadline stays).
        if !decoder.is_partial() {
            request_started = None;
            state.quiet_since.store(shared.millis(), Ordering::Relaxed);
        }
    }
}

/// A reply in request order: already computed, or still being computed by a task.
enum Pending {
    Ready(Vec<u8>),
    Task(JoinHandle<Vec<u8>>),
}

async fn write_replies<W: AsyncWrite>(
    wr: W,
    mut rx: mpsc::Receiver<Pending>,
    shared: &Shared,
    live: &Live,
    peer: &str,
    state: &ConnState,
    writer_gone: &CancellationToken,
) {
    let mut wr = std::pin::pin!(wr);
    let mut out = Vec::with_capacity(512);
    let mut next = rx.recv().await;
    while let Some(item) = next.take() {
        let mut bytes = match item {
            Pending::Ready(b) => b,
            Pending::Task(task) => match task.await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(peer, error = %e, "answering a request failed: closing the connection");
                    break;
                }
            },
        };
        // Replies already computed behind this one go out in the same write.
        let mut written = 1;
        out.clear();
        out.append(&mut bytes);
        while out.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(Pending::Ready(mut b)) => {
                    out.append(&mut b);
                    written += 1;
                }
                Ok(task @ Pending::Task(_)) => {
                    next = Some(task);
                    break;
                }
                Err(_) => break,
            }
        }
        match tokio::time::timeout(live.idle_timeout, wr.write_all(&out)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(peer, error = %e, "write failed");
                break;
            }
            Err(_) => {
                tracing::debug!(peer, "the client does not read its replies: closing");
                break;
            }
        }
        let left = state
            .pending
            .fetch_sub(written, Ordering::Relaxed)
            .saturating_sub(written);
        state.quiet_since.store(shared.millis(), Ordering::Relaxed);
        if left == 0 {
            shared.quiet.notify_waiters();
        }
        if next.is_none() {
            next = rx.recv().await;
        }
    }
    writer_gone.cancel();
    let _ = wr.shutdown().await;
}

/// Says at start (and reload) which zones give DANE precedence, and warns when they cannot,
/// because the resolver's AD flags are not trusted.
pub(crate) fn log_dane(config: &Config, resolver: &Resolver) {
    let zones = config.dane_zones();
    if zones.is_empty() {
        return;
    }
    let servers: Vec<String> = resolver
        .dns_servers()
        .iter()
        .map(ToString::to_string)
        .collect();
    if resolver.dane_trusted() {
        tracing::info!(
            zones = %zones.join(", "),
            resolvers = %servers.join(", "),
            "DANE first in these zones; Postfix must have smtp_dns_support_level = dnssec"
        );
    } else {
        tracing::warn!(
            zones = %zones.join(", "),
            resolvers = %servers.join(", "),
            "dane = \"on\" has no effect: the AD flag of a resolver that is not on loopback is not \
             trusted (set resolver.dane.trust_remote_ad = true only for a validating resolver \
             reached over a trusted channel)"
        );
    }
}

/// Answers one request payload with the whole reply netstring.
async fn answer(shared: Arc<Shared>, payload: Vec<u8>) -> Vec<u8> {
    let started = Instant::now();
    let m = &shared.metrics;
    m.in_flight.fetch_add(1, Ordering::Relaxed);
    let _in_flight = GaugeGuard(&m.in_flight);
    let live = shared.live();
    let req = Request::parse(&payload);
    let (map_label, opts) = live.zones.lookup(&req.map);
    let (reply, outcome, source) = match classify_key(&req.key) {
        LookupKey::Skip(skip) => {
            m.skipped(skip.kind());
            (Reply::NotFound, skip.kind(), "none")
        }
        LookupKey::Domain(domain) => {
            m.lookups.fetch_add(1, Ordering::Relaxed);
            let dane_on = opts.dane == DaneMode::On;
            let lookups = async {
                if dane_on {
                    // Both at once: the MTA-STS policy and the DANE status (RFC 8461 §2).
                    let (res, dane) = tokio::join!(
                        shared.resolver.resolve(&domain),
                        shared.resolver.resolve_dane(&domain, false)
                    );
                    (res, Some(dane))
                } else {
                    (shared.resolver.resolve(&domain).await, None)
                }
            };
            match tokio::time::timeout(live.request_timeout, lookups).await {
                Ok((res, dane)) => {
                    let kind = res.outcome.kind();
                    m.outcome(kind);
                    let mut reply = reply_for(&res, opts, live.max_reply, m);
                    if let Some(dane) = dane {
                        let decision = dane.decision();
                        m.dane(decision.kind());
                        if let Decision::Delay { reason, .. } = &decision {
                            tracing::info!(domain = %res.domain, reason, "DANE status unknown for now (DNSSEC failure)");
                        }
                        let sts = PolicyReply {
                            reply,
                            trimmed: Trimmed::Nothing,
                            skipped_lines: 0,
                        };
                        reply = dane_reply(&res.domain, &decision, sts).reply;
                    }
                    (reply, kind, source_name(&res))
                }
                Err(_) => {
                    m.outcome("timeout");
                    m.request_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(domain, "the lookup took longer than request_timeout");
                    let reply = if dane_on {
                        // The DANE status is unknown: never a downgrade (RFC 7672 §2.1.2).
                        m.dane("timeout");
                        Reply::temp(&format!(
                            "DANE status of {domain} unknown for now: the lookup took longer than request_timeout"
                        ))
                    } else {
                        transient_reply(
                            &domain,
                            "the lookup took longer than request_timeout",
                            opts,
                        )
                    };
                    (reply, "timeout", "network")
                }
            }
        }
    };
    m.reply(map_label, reply.kind());
    let elapsed = started.elapsed();
    m.observe(elapsed);
    let payload = reply.payload();
    tracing::debug!(
        map = %req.map,
        key = ?req.key,
        outcome,
        source,
        reply = %payload,
        elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        "answered"
    );
    mtasts_postfix::socketmap::encode(payload.as_bytes())
}

fn source_name(res: &Resolution) -> &'static str {
    match res.source {
        mtasts_resolver::Source::Memory => "memory",
        mtasts_resolver::Source::Store => "store",
        mtasts_resolver::Source::Network => "network",
    }
}

/// The MTA-STS reply to `res` in a zone with `opts`, without logging or counting: what
/// [`answer`] sends (before DANE), and what the admin channel says it would send.
pub(crate) fn sts_reply(res: &Resolution, opts: &ZoneOptions, max_reply: usize) -> PolicyReply {
    let plain = |reply| PolicyReply {
        reply,
        trimmed: Trimmed::Nothing,
        skipped_lines: 0,
    };
    match &res.outcome {
        Outcome::Policy(_) => match res.outcome.applicable() {
            Some(cached) => policy_reply(&res.domain, &cached.policy, opts, max_reply),
            None => plain(Reply::NotFound),
        },
        Outcome::NoPolicy { .. } | Outcome::Invalid { .. } => plain(Reply::NotFound),
        Outcome::Transient { reason } => plain(transient_reply(&res.domain, reason, opts)),
    }
}

fn reply_for(res: &Resolution, opts: &ZoneOptions, max_reply: usize, m: &Metrics) -> Reply {
    let pr = sts_reply(res, opts, max_reply);
    if pr.skipped_lines > 0 {
        tracing::info!(
            domain = %res.domain,
            lines = pr.skipped_lines,
            "policy lines with '{{' or '}}' left out of the policy_string attributes"
        );
    }
    let what = match pr.trimmed {
        Trimmed::Nothing => None,
        Trimmed::PolicyStrings => Some("policy-strings"),
        Trimmed::Tlsrpt => Some("tlsrpt"),
        Trimmed::TooLarge => Some("too-large"),
    };
    if let Some(what) = what {
        m.trimmed(what);
        tracing::warn!(
            domain = %res.domain,
            trimmed = what,
            max_reply,
            "the policy reply was too long for max_reply and was cut"
        );
    }
    if let Outcome::Transient { reason } = &res.outcome {
        tracing::info!(domain = %res.domain, reason, "policy unknown for now (DNS failure)");
    }
    pr.reply
}
