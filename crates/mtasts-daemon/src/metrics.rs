//! Prometheus metrics: counters kept with atomics, rendered in the text exposition format
//! 0.0.4, served by a minimal HTTP/1.1 responder (`GET /metrics` only).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mtasts_resolver::Resolver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Upper bounds of the request latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// The daemon's own counters (the resolver keeps its own; both are rendered together).
#[derive(Debug, Default)]
pub struct Metrics {
    /// (map, reply kind) → count.
    replies: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Requests whose key was looked up.
    pub lookups: AtomicU64,
    /// Resolver outcome → count.
    outcomes: Mutex<BTreeMap<&'static str, u64>>,
    /// Skip reason → count.
    skipped: Mutex<BTreeMap<&'static str, u64>>,
    /// DANE decision → count (lookups in zones with `dane = "on"`).
    dane: Mutex<BTreeMap<&'static str, u64>>,
    /// Netstring error kind → count.
    protocol_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// What was trimmed from a reply → count.
    trimmed: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests being answered now.
    pub in_flight: AtomicU64,
    /// Lookups that hit `request_timeout`.
    pub request_timeouts: AtomicU64,
    /// Open connections.
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections that had to wait because `max_connections` were open.
    pub connections_waited: AtomicU64,
    /// Connections closed for being idle.
    pub idle_closed: AtomicU64,
    /// Connections closed because a request was not complete within `request_read_timeout`.
    pub slow_request_closed: AtomicU64,
    /// Idle connections closed to make room for a new one at `max_connections`.
    pub connections_evicted: AtomicU64,
    /// Configuration reloads that were applied.
    pub reloads_ok: AtomicU64,
    /// Configuration reloads that failed (the old configuration stays).
    pub reloads_failed: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum of latencies in microseconds.
    latency_sum_us: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key).or_insert(0) += 1;
}

impl Metrics {
    /// Counts one reply of `kind` on map `map` (a configured map name or `_default`).
    pub fn reply(&self, map: &str, kind: &'static str) {
        let mut m = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(&(map.to_owned(), kind)) {
            Some(v) => *v += 1,
            None => {
                m.insert((map.to_owned(), kind), 1);
            }
        }
    }

    /// Counts one resolver outcome.
    pub fn outcome(&self, kind: &'static str) {
        bump(&self.outcomes, kind);
    }

    /// Counts one key answered without a lookup.
    pub fn dane(&self, decision: &'static str) {
        bump(&self.dane, decision);
    }

    /// Counts a key answered without a lookup.
    pub fn skipped(&self, reason: &'static str) {
        bump(&self.skipped, reason);
    }

    /// Counts one malformed netstring.
    pub fn protocol_error(&self, kind: &'static str) {
        bump(&self.protocol_errors, kind);
    }

    /// Counts one reply trimmed to fit the size limit.
    pub fn trimmed(&self, what: &'static str) {
        bump(&self.trimmed, what);
    }

    /// Records one request's latency.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if s <= *le {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The count of replies of `kind` on `map`, for tests and logs.
    pub fn replies_of(&self, map: &str, kind: &str) -> u64 {
        let m = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .filter(|((k, r), _)| k == map && *r == kind)
            .map(|(_, v)| *v)
            .sum()
    }

    /// Renders every metric, the resolver's included, in the text exposition format 0.0.4.
    pub fn render(&self, resolver: &Resolver) -> String {
        let mut out = String::with_capacity(8192);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        header(
            &mut out,
            "mtasts_build_info",
            "gauge",
            "Always 1; the version is a label.",
        );
        let _ = writeln!(
            out,
            "mtasts_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        header(
            &mut out,
            "mtasts_socketmap_replies_total",
            "counter",
            "Socketmap replies by map name and reply kind (ok, notfound, temp).",
        );
        {
            let m = self.replies.lock().unwrap_or_else(|p| p.into_inner());
            for ((map, kind), v) in m.iter() {
                let _ = writeln!(
                    out,
                    "mtasts_socketmap_replies_total{{map=\"{}\",reply=\"{kind}\"}} {v}",
                    escape_label(map)
                );
            }
        }
        header(
            &mut out,
            "mtasts_socketmap_lookups_total",
            "counter",
            "Requests whose key was looked up in the resolver.",
        );
        let _ = writeln!(
            out,
            "mtasts_socketmap_lookups_total {}",
            load(&self.lookups)
        );
        labelled(
            &mut out,
            "mtasts_socketmap_outcomes_total",
            "Lookups by resolver outcome (enforce, testing, none, no-policy, transient, invalid, timeout).",
            "outcome",
            &self.outcomes,
        );
        labelled(
            &mut out,
            "mtasts_socketmap_dane_total",
            "Lookups in zones with dane = \"on\" by DANE decision (mandatory, opportunistic, delay, not-applicable, timeout).",
            "decision",
            &self.dane,
        );
        labelled(
            &mut out,
            "mtasts_socketmap_skipped_total",
            "Keys answered NOTFOUND without a lookup (parent-probe, ip-literal, empty, invalid).",
            "reason",
            &self.skipped,
        );
        labelled(
            &mut out,
            "mtasts_socketmap_protocol_errors_total",
            "Malformed netstrings; each closed its connection.",
            "error",
            &self.protocol_errors,
        );
        labelled(
            &mut out,
            "mtasts_socketmap_replies_trimmed_total",
            "Replies cut to fit max_reply (policy-strings, tlsrpt, too-large).",
            "trimmed",
            &self.trimmed,
        );
        simple(
            &mut out,
            "mtasts_socketmap_request_timeouts_total",
            "counter",
            "Lookups that took longer than request_timeout.",
            load(&self.request_timeouts),
        );
        simple(
            &mut out,
            "mtasts_socketmap_requests_in_flight",
            "gauge",
            "Requests being answered now.",
            load(&self.in_flight),
        );
        header(
            &mut out,
            "mtasts_socketmap_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its reply being ready.",
        );
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "mtasts_socketmap_request_duration_seconds_bucket{{le=\"{le}\"}} {}",
                load(&self.latency_buckets[i])
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "mtasts_socketmap_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "mtasts_socketmap_request_duration_seconds_sum {}",
            load(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "mtasts_socketmap_request_duration_seconds_count {count}"
        );

        simple(
            &mut out,
            "mtasts_connections",
            "gauge",
            "Open socketmap connections.",
            load(&self.connections),
        );
        simple(
            &mut out,
            "mtasts_connections_total",
            "counter",
            "Socketmap connections accepted.",
            load(&self.connections_total),
        );
        simple(
            &mut out,
            "mtasts_connections_waited_total",
            "counter",
            "Connections that waited because max_connections were open.",
            load(&self.connections_waited),
        );
        simple(
            &mut out,
            "mtasts_connections_idle_closed_total",
            "counter",
            "Connections closed after idle_timeout.",
            load(&self.idle_closed),
        );
        simple(
            &mut out,
            "mtasts_connections_slow_request_closed_total",
            "counter",
            "Connections closed because a request was not complete within request_read_timeout.",
            load(&self.slow_request_closed),
        );
        simple(
            &mut out,
            "mtasts_connections_evicted_total",
            "counter",
            "Idle connections closed to serve a new one when max_connections were open.",
            load(&self.connections_evicted),
        );
        header(
            &mut out,
            "mtasts_config_reloads_total",
            "counter",
            "Configuration reloads (SIGHUP) by result.",
        );
        let _ = writeln!(
            out,
            "mtasts_config_reloads_total{{result=\"ok\"}} {}",
            load(&self.reloads_ok)
        );
        let _ = writeln!(
            out,
            "mtasts_config_reloads_total{{result=\"error\"}} {}",
            load(&self.reloads_failed)
        );

        let c = resolver.counters();
        for (name, help, v) in [
            (
                "mtasts_resolver_memory_hits_total",
                "Lookups answered from memory.",
                &c.memory_hits,
            ),
            (
                "mtasts_resolver_store_hits_total",
                "Lookups answered from the store.",
                &c.store_hits,
            ),
            (
                "mtasts_resolver_coalesced_total",
                "Lookups that joined a resolution already in flight.",
                &c.coalesced,
            ),
            (
                "mtasts_resolver_dns_lookups_total",
                "_mta-sts TXT lookups made.",
                &c.dns_lookups,
            ),
            (
                "mtasts_resolver_dns_failures_total",
                "_mta-sts TXT lookups that failed transiently.",
                &c.dns_failures,
            ),
            (
                "mtasts_resolver_fetches_total",
                "Policy fetches made.",
                &c.fetches,
            ),
            (
                "mtasts_resolver_fetch_failures_total",
                "Policy fetches that failed.",
                &c.fetch_failures,
            ),
            (
                "mtasts_resolver_refreshes_total",
                "Background refreshes started.",
                &c.refreshes,
            ),
            (
                "mtasts_resolver_store_errors_total",
                "Cache store operations that failed.",
                &c.store_errors,
            ),
            (
                "mtasts_resolver_evictions_total",
                "Entries dropped from memory to stay under capacity.",
                &c.evictions,
            ),
            (
                "mtasts_resolver_store_recreated_total",
                "Times the cache store's file was found deleted or replaced and recreated from memory.",
                &c.store_recreated,
            ),
        ] {
            simple(&mut out, name, "counter", help, load(v));
        }
        simple(
            &mut out,
            "mtasts_resolver_cached_domains",
            "gauge",
            "Domains in the in-memory cache.",
            resolver.len() as u64,
        );
        let d = resolver.dane_counters();
        for (name, help, v) in [
            (
                "mtasts_resolver_dane_memory_hits_total",
                "DANE lookups answered from memory.",
                &d.memory_hits,
            ),
            (
                "mtasts_resolver_dane_lookups_total",
                "DANE assessments made (each a round of DNSSEC-status queries).",
                &d.lookups,
            ),
            (
                "mtasts_resolver_dane_coalesced_total",
                "DANE lookups that joined one already in flight.",
                &d.coalesced,
            ),
            (
                "mtasts_resolver_dane_failures_total",
                "DANE assessments that ended in a DNSSEC failure (deliveries wait).",
                &d.failures,
            ),
            (
                "mtasts_resolver_dane_evictions_total",
                "DANE assessments dropped from memory to stay under capacity.",
                &d.evictions,
            ),
        ] {
            simple(&mut out, name, "counter", help, load(v));
        }
        simple(
            &mut out,
            "mtasts_resolver_dane_queries_total",
            "counter",
            "DNSSEC-status DNS queries sent for DANE (MX, A/AAAA, TLSA; retries included).",
            resolver.dane_queries(),
        );
        simple(
            &mut out,
            "mtasts_resolver_dane_cached_domains",
            "gauge",
            "DANE assessments in memory.",
            resolver.dane_cached() as u64,
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn simple(out: &mut String, name: &str, kind: &str, help: &str, v: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {v}");
}

fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    map: &Mutex<BTreeMap<&'static str, u64>>,
) {
    header(out, name, "counter", help);
    let m = map.lock().unwrap_or_else(|p| p.into_inner());
    for (k, v) in m.iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

const MAX_HEAD: usize = 8192;
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HTTP_CONNECTIONS: usize = 16;

/// Serves `GET /metrics` on `listener` until `stop` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    resolver: Resolver,
    stop: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics: too many connections, closing");
            continue;
        };
        let metrics = metrics.clone();
        let resolver = resolver.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) =
                tokio::time::timeout(HTTP_TIMEOUT, respond(stream, &metrics, &resolver)).await
            {
                tracing::debug!(%peer, error = %e, "metrics: request timed out");
            }
        });
    }
}

async fn respond(mut stream: TcpStream, metrics: &Metrics, resolver: &Resolver) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            let _ =
                write_response(&mut stream, "431 Request Header Fields Too Large", "", "").await;
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let result = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = metrics.render(resolver);
            write_response_to(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
                method == "GET",
            )
            .await
        }
        (_, "/metrics") => write_response(&mut stream, "405 Method Not Allowed", "", "").await,
        _ => {
            write_response(
                &mut stream,
                "404 Not Found",
                "text/plain; charset=utf-8",
                "only /metrics is served here\n",
            )
            .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "metrics: write failed");
    }
}

async fn write_response(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    write_response_to(stream, status, content_type, body, true).await
}

async fn write_response_to(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    send_body: bool,
) -> std::io::Result<()> {
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        resp.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if status.starts_with("405") {
        resp.push_str("Allow: GET, HEAD\r\n");
    }
    resp.push_str("\r\n");
    stream.write_all(resp.as_bytes()).await?;
    if send_body {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

/// The address the metrics listener is bound to, for logs.
pub(crate) fn describe(addr: SocketAddr) -> String {
    format!("http://{addr}/metrics")
}
