//! The one HTTP(S) server of mtasts, for everything it serves on a network: the policy host
//! (`mtasts serve`), the TLS-RPT report receiver (RFC 8460 §5.4) and the admin listener. It is
//! hyper under explicit limits, with no routing of its own: each request goes to the caller's
//! handler with what is known of its connection ([`ConnInfo`]).
//!
//! - TLS (optional) through tokio-rustls with the caller's [`rustls::ServerConfig`] (its ALPN
//!   list decides the protocols: a connection that negotiates `h2` speaks HTTP/2, one that
//!   negotiates nothing or `http/1.1` speaks HTTP/1.1, and one that negotiates anything else,
//!   such as `acme-tls/1` for an RFC 8737 TLS-ALPN-01 validation, is closed right after the
//!   handshake: RFC 8737 §3 sends no application data on it);
//! - every limit of [`ServeLimits`]: connections in all and per client address (a new one over
//!   either is closed at once), the handshake, the request head (time, size, header count),
//!   the connection's age (which also bounds an idle h2 connection), h2 streams;
//! - graceful shutdown: at the caller's signal no new connection is accepted, requests in
//!   progress get [`ServeLimits::shutdown_grace`] to finish, then every connection is closed;
//! - counters in [`ServerStats`], for metrics.
//!
//! What hyper refuses before the handler (a head over [`ServeLimits::max_header_bytes`] or
//! with more than [`ServeLimits::max_headers`] fields: 431; a malformed request: 400), TLS
//! handshake failures and connection errors are logged at `debug`, per connection.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How long the accept loop pauses after an accept error (out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How often, at most, refused connections are logged.
const REFUSED_LOG_INTERVAL: Duration = Duration::from_secs(10);

const MILLISECOND: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// The ALPN protocol names served over HTTP (`h2`, `http/1.1`), in order of preference: the
/// list to give a [`rustls::ServerConfig`] for this server.
pub const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// The limits of the server (per connection, and the number of connections). Each has a
/// documented default and range, checked by [`ServeLimits::validate`] (and by
/// [`HttpServer::serve`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// How many connections may be open at once (including those in the TLS handshake); one
    /// more is accepted and closed at once, without an answer, and logged at most every 10 s.
    /// Default: 256. Range: 1 to 65 536.
    pub max_connections: usize,
    /// How many of them may come from one client: one IPv4 address, or one IPv6 /64 (what one
    /// host usually holds). One more is closed at once, as above. Default: 64. Range: 1 to
    /// 65 536 (at most `max_connections` are open anyway).
    pub max_connections_per_client: usize,
    /// How long the TLS handshake may take. Default: 10 s. Range: 1 ms to 5 min.
    pub handshake_timeout: Duration,
    /// How long a request head (request line and headers) may take to arrive, counted from
    /// when the connection starts waiting for it (bytes trickled in do not extend it), so it
    /// is also how long an idle keep-alive connection stays open (HTTP/1.1; hyper's header
    /// read timeout). Default: 10 s. Range: 1 ms to 5 min.
    pub header_read_timeout: Duration,
    /// The largest request head, in bytes (HTTP/1.1: request line and headers, answered 431
    /// past it; h2: the header list). Default: 16 KiB. Range: 1 KiB to 256 KiB.
    pub max_header_bytes: usize,
    /// The most header fields of one HTTP/1.1 request (431 past it). Default: 64. Range: 8
    /// to 1024.
    pub max_headers: usize,
    /// How long a connection may live: then it is shut down gracefully (the request in
    /// progress finishes; h2 sends GOAWAY) and closed after [`shutdown_grace`](Self::shutdown_grace)
    /// at the latest. This also bounds an idle h2 connection, which has no idle timeout of its
    /// own. Default: 5 min. Range: 1 ms to 1 day.
    pub max_connection_age: Duration,
    /// The most streams (requests) in progress on one h2 connection. Default: 16. Range: 1
    /// to 1024.
    pub h2_max_concurrent_streams: u32,
    /// At shutdown (or at [`max_connection_age`](Self::max_connection_age)), how long
    /// requests in progress may take to finish before their connections are closed. Default:
    /// 10 s. Range: 0 to 5 min.
    pub shutdown_grace: Duration,
}

impl ServeLimits {
    /// The defaults (see each field).
    pub const DEFAULT: ServeLimits = ServeLimits {
        max_connections: 256,
        max_connections_per_client: 64,
        handshake_timeout: Duration::from_secs(10),
        header_read_timeout: Duration::from_secs(10),
        max_header_bytes: 16 * 1024,
        max_headers: 64,
        max_connection_age: Duration::from_secs(300),
        h2_max_concurrent_streams: 16,
        shutdown_grace: Duration::from_secs(10),
    };

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), LimitError> {
        in_range(
            "max_connections",
            self.max_connections,
            1,
            65_536,
            "1 to 65536",
        )?;
        in_range(
            "max_connections_per_client",
            self.max_connections_per_client,
            1,
            65_536,
            "1 to 65536",
        )?;
        duration_in_range(
            "handshake_timeout",
            self.handshake_timeout,
            MILLISECOND,
            5 * MINUTE,
            "1 ms to 5 min",
        )?;
        duration_in_range(
            "header_read_timeout",
            self.header_read_timeout,
            MILLISECOND,
            5 * MINUTE,
            "1 ms to 5 min",
        )?;
        in_range(
            "max_header_bytes",
            self.max_header_bytes,
            1024,
            256 * 1024,
            "1024 to 262144",
        )?;
        in_range("max_headers", self.max_headers, 8, 1024, "8 to 1024")?;
        duration_in_range(
            "max_connection_age",
            self.max_connection_age,
            MILLISECOND,
            DAY,
            "1 ms to 1 day",
        )?;
        in_range(
            "h2_max_concurrent_streams",
            self.h2_max_concurrent_streams,
            1,
            1024,
            "1 to 1024",
        )?;
        duration_in_range(
            "shutdown_grace",
            self.shutdown_grace,
            Duration::ZERO,
            5 * MINUTE,
            "0 to 5 min",
        )
    }
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A limit outside its documented range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} = {value} is out of range ({range})")]
pub struct LimitError {
    /// The field of [`ServeLimits`].
    pub name: &'static str,
    /// Its value, as given.
    pub value: String,
    /// The range it must be in.
    pub range: &'static str,
}

/// `value` within `lo..=hi`, or the error naming the setting.
pub fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &'static str,
    value: T,
    lo: T,
    hi: T,
    range: &'static str,
) -> Result<(), LimitError> {
    if value < lo || value > hi {
        return Err(LimitError {
            name,
            value: value.to_string(),
            range,
        });
    }
    Ok(())
}

/// `value` within `lo..=hi`, or the error naming the setting.
pub fn duration_in_range(
    name: &'static str,
    value: Duration,
    lo: Duration,
    hi: Duration,
    range: &'static str,
) -> Result<(), LimitError> {
    if value < lo || value > hi {
        return Err(LimitError {
            name,
            value: format!("{value:?}"),
            range,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connections and counters
// ---------------------------------------------------------------------------------------------

/// What is known of a request's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's address the client connected to.
    pub local: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The name the client asked for in the TLS handshake (SNI), lower-case, when given.
    pub server_name: Option<String>,
    /// The protocol negotiated by ALPN, when any.
    pub alpn: Option<Vec<u8>>,
}

/// Counters of one server (every listener of one [`HttpServer::serve`]), for metrics.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted and served (not refused).
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub refused_max_connections: AtomicU64,
    /// Connections closed at once because their client held `max_connections_per_client`.
    pub refused_per_client: AtomicU64,
    /// TLS handshakes that failed (no certificate for the name, a protocol error, the client
    /// gone).
    pub handshake_failed: AtomicU64,
    /// TLS handshakes that took longer than `handshake_timeout`.
    pub handshake_timed_out: AtomicU64,
    /// Connections closed after a handshake that negotiated a protocol other than HTTP
    /// (`acme-tls/1`).
    pub non_http_alpn: AtomicU64,
    /// Connections shut down at `max_connection_age`.
    pub aged_out: AtomicU64,
}

impl ServerStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The value of a counter (a shorthand for `load(Relaxed)`).
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The key a client's connections are counted under: its IPv4 address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per client.
#[derive(Debug, Default)]
struct PerClient {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted for its client, until dropped.
struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
}

impl PerClient {
    fn take(table: &Arc<PerClient>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let key = client_key(ip);
        let mut counts = table.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: Arc::clone(table),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// An HTTP(S) server: what it is called in logs, its TLS configuration, limits, counters and
/// request handler. [`HttpServer::serve`] runs it.
///
/// The handler is called with each request and its connection's [`ConnInfo`], and answers it;
/// it never fails (an error is an answer, such as a 500).
pub struct HttpServer<H> {
    /// The server's name in log lines (e.g. `policy host`, `HTTPS receiver`).
    pub name: &'static str,
    /// TLS; `None` speaks plain HTTP/1.1 (for an admin listener on loopback, or behind a
    /// TLS-terminating proxy).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The limits.
    pub limits: ServeLimits,
    /// The counters.
    pub stats: Arc<ServerStats>,
    /// The request handler.
    pub handler: H,
}

/// What a handler is: `Fn(request, connection) -> future of the response`.
pub trait Handler<B>: Clone + Send + Sync + 'static {
    /// The future of the response.
    type Future: Future<Output = Response<B>> + Send + 'static;
    /// Answers one request.
    fn call(&self, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Self::Future;
}

impl<B, F, Fut> Handler<B> for F
where
    F: Fn(Request<Incoming>, Arc<ConnInfo>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
{
    type Future = Fut;
    fn call(&self, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Fut {
        self(req, conn)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<H> HttpServer<H> {
    /// Serves every listener until `shutdown` resolves, then shuts down gracefully: no new
    /// connection is accepted, requests in progress get [`ServeLimits::shutdown_grace`] to
    /// finish, then every connection is closed and `serve` returns. The limits are checked
    /// first (an out-of-range one is the error).
    pub async fn serve<B>(
        self,
        listeners: Vec<TcpListener>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), LimitError>
    where
        H: Handler<B>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        self.limits.validate()?;
        let HttpServer {
            name,
            tls,
            limits,
            stats,
            handler,
        } = self;
        let acceptor = tls.map(TlsAcceptor::from);
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let per_client = Arc::new(PerClient::default());
        let limits = Arc::new(limits);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        let mut shutdown = pin!(shutdown);
        let mut last_refused_log: Option<Instant> = None;
        // Which listener is polled first, rotated so that a busy one does not starve another.
        let mut first = 0usize;
        loop {
            let accept = std::future::poll_fn(|cx| {
                let n = listeners.len();
                for i in 0..n {
                    let l = &listeners[(first + i) % n];
                    if let Poll::Ready(r) = l.poll_accept(cx) {
                        return Poll::Ready(r.map(|(tcp, peer)| (tcp, peer, l.local_addr().ok())));
                    }
                }
                Poll::Pending
            });
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = accept => match accepted {
                    Ok((tcp, peer, local)) => {
                        first = first.wrapping_add(1);
                        let refused = match Arc::clone(&slots).try_acquire_owned() {
                            Err(_) => Some(("max_connections", &stats.refused_max_connections)),
                            Ok(slot) => match PerClient::take(&per_client, peer.ip(), limits.max_connections_per_client) {
                                None => Some(("max_connections_per_client", &stats.refused_per_client)),
                                Some(client) => {
                                    ServerStats::bump(&stats.accepted);
                                    stats.open.fetch_add(1, Ordering::Relaxed);
                                    let conn = connection(
                                        name,
                                        tcp,
                                        peer,
                                        local,
                                        acceptor.clone(),
                                        handler.clone(),
                                        Arc::clone(&limits),
                                        Arc::clone(&stats),
                                        stop_rx.clone(),
                                    );
                                    let stats = Arc::clone(&stats);
                                    conns.spawn(async move {
                                        conn.await;
                                        stats.open.fetch_sub(1, Ordering::Relaxed);
                                        drop(client);
                                        drop(slot);
                                    });
                                    None
                                }
                            },
                        };
                        if let Some((limit, counter)) = refused {
                            ServerStats::bump(counter);
                            if last_refused_log.is_none_or(|t| t.elapsed() >= REFUSED_LOG_INTERVAL) {
                                tracing::warn!(
                                    %peer,
                                    limit,
                                    refused_at_max_connections = ServerStats::get(&stats.refused_max_connections),
                                    refused_per_client = ServerStats::get(&stats.refused_per_client),
                                    "{name}: at {limit}; closing new connections"
                                );
                                last_refused_log = Some(Instant::now());
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "{name}: accept failed; pausing {} ms", ACCEPT_ERROR_PAUSE.as_millis());
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
            }
        }
        drop(listeners);
        // The receivers may all be gone already (no connection open): nothing to tell then.
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(limits.shutdown_grace + SECOND, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = conns.len(),
                "{name}: connections still open after the shutdown grace; closing them"
            );
            conns.shutdown().await;
        }
        Ok(())
    }
}

/// One connection: the TLS handshake, then HTTP/1.1 or h2 until it ends, the server stops, or
/// the connection is too old.
#[allow(clippy::too_many_arguments)]
async fn connection<H, B>(
    name: &'static str,
    tcp: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    acceptor: Option<TlsAcceptor>,
    handler: H,
    limits: Arc<ServeLimits>,
    stats: Arc<ServerStats>,
    stop: watch::Receiver<bool>,
) where
    H: Handler<B>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // Small answers go out at once.
    let _ = tcp.set_nodelay(true);
    let service = |info: Arc<ConnInfo>| {
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let answer = handler.call(req, Arc::clone(&info));
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        })
    };
    let result = match acceptor {
        None => {
            let info = Arc::new(ConnInfo {
                peer,
                local,
                tls: false,
                server_name: None,
                alpn: None,
            });
            http1(TokioIo::new(tcp), service(info), &limits, &stats, stop).await
        }
        Some(acceptor) => {
            let tls =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        ServerStats::bump(&stats.handshake_failed);
                        tracing::debug!(%peer, error = %e, "{name}: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        ServerStats::bump(&stats.handshake_timed_out);
                        tracing::debug!(%peer, "{name}: TLS handshake timed out");
                        return;
                    }
                };
            let session = tls.get_ref().1;
            let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
            let info = Arc::new(ConnInfo {
                peer,
                local,
                tls: true,
                server_name: session.server_name().map(str::to_ascii_lowercase),
                alpn: alpn.clone(),
            });
            match alpn.as_deref() {
                Some(b"h2") => http2(TokioIo::new(tls), service(info), &limits, &stats, stop).await,
                None | Some(b"http/1.1") => {
                    http1(TokioIo::new(tls), service(info), &limits, &stats, stop).await
                }
                Some(other) => {
                    // RFC 8737 §3: a TLS-ALPN-01 validation ends with the handshake.
                    ServerStats::bump(&stats.non_http_alpn);
                    tracing::debug!(%peer, alpn = %String::from_utf8_lossy(other), "{name}: not an HTTP protocol; closing after the handshake");
                    return;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "{name}: connection ended with an error");
    }
}

async fn http1<I, S>(
    io: I,
    service: S,
    limits: &ServeLimits,
    stats: &ServerStats,
    stop: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<BoxError>,
    S::Error: Into<BoxError>,
{
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    drive(
        b.serve_connection(io, service),
        |c| c.graceful_shutdown(),
        limits,
        stats,
        stop,
    )
    .await
}

async fn http2<I, S>(
    io: I,
    service: S,
    limits: &ServeLimits,
    stats: &ServerStats,
    stop: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<BoxError>,
    S::Error: Into<BoxError>,
{
    let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    drive(
        b.serve_connection(io, service),
        |c| c.graceful_shutdown(),
        limits,
        stats,
        stop,
    )
    .await
}

/// Runs a connection until it ends; at shutdown or at its maximum age, asks it to finish
/// gracefully, and drops it after the grace.
async fn drive<F>(
    conn: F,
    graceful: impl FnOnce(Pin<&mut F>),
    limits: &ServeLimits,
    stats: &ServerStats,
    mut stop: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    F: Future<Output = Result<(), hyper::Error>>,
{
    let mut conn = pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return r,
        // An error means the server is gone: stop too.
        _ = stop.wait_for(|s| *s) => {}
        () = tokio::time::sleep(limits.max_connection_age) => ServerStats::bump(&stats.aged_out),
    }
    graceful(conn.as_mut());
    // Past the grace, the connection is dropped (closed).
    tokio::time::timeout(limits.shutdown_grace, conn)
        .await
        .unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_address_or_ipv6_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(
            client_key(mapped),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
        let table = Arc::new(PerClient::default());
        let one = PerClient::take(&table, a, 2).expect("first");
        let _two = PerClient::take(&table, b, 2).expect("second");
        assert!(
            PerClient::take(&table, a, 2).is_none(),
            "a third from the same /64"
        );
        assert!(PerClient::take(&table, c, 2).is_some(), "another /64");
        drop(one);
        assert!(PerClient::take(&table, a, 2).is_some(), "a slot freed");
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(ServeLimits::default().validate(), Ok(()));
        let e = ServeLimits {
            max_connections_per_client: 0,
            ..ServeLimits::default()
        }
        .validate()
        .expect_err("zero");
        assert_eq!(e.name, "max_connections_per_client");
    }
}
