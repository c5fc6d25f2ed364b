//! The HTTPS receiver of TLS-RPT reports (RFC 8460 §5.4): an [`axum::Router`] that takes a
//! report POSTed by a sending MTA through the one ingest pipeline ([`Ingester::ingest`]), and
//! [`serve`], which runs a router over TCP with TLS (HTTP/1.1, and h2 when the client offers
//! it by ALPN) within explicit limits.
//!
//! The router stores nothing itself. A 2xx answer is given only after the ingester returned:
//! the raw input and the report are then committed to the store, so a crash before the answer
//! makes the sender retry (RFC 8460 §5.5) and the retry is a duplicate (the report key).
//!
//! # What is accepted
//!
//! `POST` to each configured path (by default `/` and `/tlsrpt`, [`DEFAULT_PATHS`]) with a
//! `Content-Type` of `application/tlsrpt+gzip` or `application/tlsrpt+json` (RFC 8460 §5.4), or
//! one that real senders use instead: `application/json`, `application/gzip`,
//! `application/x-gzip`, `application/octet-stream`. A request without `Content-Type` is taken
//! as `application/octet-stream` (RFC 9110 §8.3). The media type only admits the request: what
//! the body is (JSON, gzip) is told from its bytes by the core ([`mtasts_core::tlsrpt::payload`]),
//! never from the label (sys4's tlsrpt-reporter, for one, posts `application/tlsrpt+gzip`
//! without `Content-Encoding`).
//!
//! `Content-Encoding: gzip` (or `x-gzip`) is undone within the limits. gzip of a JSON report
//! is byte for byte an `application/tlsrpt+gzip` body, so such a body is handed on as received
//! and the core inflates it, within [`ReportLimits::max_decompressed_bytes`]; a body whose
//! gzip layer holds something else (a gzip report gzipped again, an e-mail) is inflated here
//! first, to at most [`ReportLimits::max_input_bytes`], and handed on inflated. Either way no
//! more than the limit is ever inflated: a gzip bomb is refused without allocating what it
//! claims.
//!
//! # Answers
//!
//! | status | when | body `outcome` |
//! | --- | --- | --- |
//! | 201 Created | a new report, stored | `stored`, with `report` (its id) |
//! | 200 OK | a report already stored under the same key (a retry, a second copy) | `duplicate`, with `report` |
//! | 202 Accepted | the input parsed but is not trusted (an e-mail whose DKIM check failed): kept in quarantine with its report, for the operator; the sender need not retry | `quarantined`, with `entry`, `report`, `reason` |
//! | 400 Bad Request | the body is not a report (neither JSON nor gzip, or invalid report JSON): kept in quarantine for the operator, so a retry of the same bytes gets the same answer; or the body could not be read (a malformed chunk, the client gone): nothing kept | `quarantined`, with `entry`, `reason`, `message`; or `refused` |
//! | 405 Method Not Allowed | any method but `POST`; `Allow: POST` | `refused` |
//! | 408 Request Timeout | the body did not arrive within [`ReceiverLimits::request_timeout`] (a slow-loris client); the connection is closed | `refused` |
//! | 413 Content Too Large | the body is over [`ReceiverLimits::max_body_bytes`]: refused by its `Content-Length` before any of it is read, or as soon as what was read passes the limit (at most the limit plus one read buffer is read); nothing kept, the connection closed. Or it inflates past a limit: the core's [`ReportLimits::max_decompressed_bytes`] (kept in quarantine), or, for a `Content-Encoding` layer that is not gzip of JSON, [`ReportLimits::max_input_bytes`] (nothing kept) | `refused`, or `quarantined` |
//! | 415 Unsupported Media Type | a `Content-Type` or `Content-Encoding` other than the above (`Accept-Encoding: gzip` is sent for the latter) | `refused` |
//! | 503 Service Unavailable | the store failed or did not answer within [`ReceiverLimits::store_timeout`], or [`ReceiverLimits::max_concurrent_requests`] are in progress; with `Retry-After`, so the sender retries (RFC 8460 §5.5) | `unavailable` |
//!
//! Bodies are one line of JSON (`application/json`, `X-Content-Type-Options: nosniff`); any
//! text that came from the request (a parse error naming a field) is JSON-escaped and cut to
//! [`MAX_MESSAGE_CHARS`]. Each request to the receiver's paths gives one log line (`tracing`,
//! target `mtasts_tlsrpt_receive::https`): peer, method, path, status, outcome, bytes received,
//! and what went wrong, at `info` for 2xx, `warn` for 4xx and `error` for 5xx. What hyper refuses
//! before routing (a request head over [`ServeLimits::max_header_bytes`]: 431; a malformed
//! request: 400), TLS handshake failures and connection errors are logged at `debug`, per
//! connection.
//!
//! # TLS
//!
//! RFC 8460 §5.4 requires HTTPS. [`serve`] without a TLS configuration speaks plain HTTP/1.1,
//! meant only behind a reverse proxy that terminates TLS on the same host or network (the
//! peer then logged and recorded as the origin is the proxy: `X-Forwarded-For` is not
//! trusted).

use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, ALLOW, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap,
    HeaderValue, RETRY_AFTER,
};
use axum::http::{Extensions, StatusCode, Version};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use flate2::read::MultiGzDecoder;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use mtasts_core::sts::fetch::MediaType;
use mtasts_core::text::escape;
use mtasts_core::tlsrpt::payload::{self, PayloadKind};
use mtasts_core::tlsrpt::report::ReportLimits;
use mtasts_net::http_server::{self, ConnInfo, HttpServer, LimitError};
use mtasts_tlsrpt_store::Via;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::rustls;
use tower::ServiceExt;

use crate::ingest::{Arrival, Delivery, Ingester};

/// The paths [`router`] serves: `/` (what a `rua=https://reports.example/` names) and
/// `/tlsrpt`.
pub const DEFAULT_PATHS: [&str; 2] = ["/", "/tlsrpt"];

/// The media types admitted (the essence of `Content-Type`, lower-case); see the module
/// documentation.
pub const ACCEPTED_MEDIA_TYPES: [&str; 6] = [
    "application/tlsrpt+gzip",
    "application/tlsrpt+json",
    "application/json",
    "application/gzip",
    "application/x-gzip",
    "application/octet-stream",
];

/// The longest `message` of an answer, in characters (a parse error can name a field of the
/// input).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// How much of a gzip `Content-Encoding` layer is inflated to tell what it holds.
const PEEK_BYTES: u64 = 512;

/// The largest part of a body reserved in advance from its `Content-Length` (the rest grows
/// as bytes arrive, so a client that announces a large body and sends nothing holds little).
const PREALLOCATE_MAX: usize = 1024 * 1024;

const MILLISECOND: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// The limits of the router (per request). Each has a documented default and range, checked
/// by [`ReceiverLimits::validate`] (and by [`router`]).
///
/// Memory: at most [`max_concurrent_requests`](Self::max_concurrent_requests) bodies are held
/// at once, each at most [`max_body_bytes`](Self::max_body_bytes) plus one read buffer, and
/// while a report is parsed, its inflated JSON (at most the ingester's
/// [`ReportLimits::max_decompressed_bytes`], as a growing buffer up to twice that) and its
/// values (bounded by [`ReportLimits::max_json_values`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverLimits {
    /// The largest body accepted, in bytes, as received (compressed or not). Default: 10 MiB,
    /// the ingester's default [`ReportLimits::max_input_bytes`] (RFC 8460 §5.2 cites 10 MB as a
    /// limit receivers commonly impose). Range: 1 KiB to the ingester's `max_input_bytes` (a
    /// larger body the ingester would refuse anyway); [`ReceiverLimits::for_input`] sets it to
    /// that.
    pub max_body_bytes: usize,
    /// How long the body may take to arrive, from the end of the request head to its last
    /// byte; past it the answer is 408 and the connection is closed (a client trickling its
    /// body, slow-loris). The head itself is bounded by [`ServeLimits::header_read_timeout`].
    /// Default: 60 s (10 MiB at 175 KB/s). Range: 1 ms to 1 h.
    pub request_timeout: Duration,
    /// How long the ingester may take to store an input; past it the answer is 503 (the
    /// sender retries; whatever was committed makes the retry a duplicate). Default: 30 s.
    /// Range: 1 ms to 1 h.
    pub store_timeout: Duration,
    /// How many POSTs may be in progress at once (reading a body, or storing it); one more is
    /// answered 503 at once. Default: 8. Range: 1 to 1024.
    pub max_concurrent_requests: usize,
    /// The `Retry-After` of a 503, in seconds. Default: 60. Range: 1 to 86 400.
    pub retry_after_secs: u32,
}

impl ReceiverLimits {
    /// The defaults (see each field).
    pub const DEFAULT: ReceiverLimits = ReceiverLimits {
        max_body_bytes: ReportLimits::DEFAULT.max_input_bytes,
        request_timeout: Duration::from_secs(60),
        store_timeout: Duration::from_secs(30),
        max_concurrent_requests: 8,
        retry_after_secs: 60,
    };

    /// The defaults, with [`max_body_bytes`](Self::max_body_bytes) set to the ingester's
    /// `max_input_bytes` (what to use when that limit is configured).
    pub fn for_input(input: &ReportLimits) -> ReceiverLimits {
        ReceiverLimits {
            max_body_bytes: input.max_input_bytes,
            ..ReceiverLimits::DEFAULT
        }
    }

    /// Checks every field against its documented range; `input` is the ingester's limits
    /// (the body may not be larger than the ingester takes).
    pub fn validate(&self, input: &ReportLimits) -> Result<(), ConfigError> {
        if self.max_body_bytes > input.max_input_bytes {
            return Err(ConfigError::BodyOverInput {
                body: self.max_body_bytes,
                input: input.max_input_bytes,
            });
        }
        in_range(
            "max_body_bytes",
            self.max_body_bytes,
            1024,
            usize::MAX,
            "1024 to the ingester's max_input_bytes",
        )?;
        duration_in_range(
            "request_timeout",
            self.request_timeout,
            MILLISECOND,
            HOUR,
            "1 ms to 1 h",
        )?;
        duration_in_range(
            "store_timeout",
            self.store_timeout,
            MILLISECOND,
            HOUR,
            "1 ms to 1 h",
        )?;
        in_range(
            "max_concurrent_requests",
            self.max_concurrent_requests,
            1,
            1024,
            "1 to 1024",
        )?;
        in_range(
            "retry_after_secs",
            self.retry_after_secs,
            1,
            86_400,
            "1 to 86400",
        )
    }
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The limits of [`serve`]: the one server's ([`mtasts_net::http_server::ServeLimits`]).
pub use mtasts_net::http_server::ServeLimits;

/// A setting of the receiver that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit outside its documented range.
    #[error("HTTPS receiver: {name} = {value} is out of range ({range})")]
    OutOfRange {
        /// The field of [`ReceiverLimits`] or [`ServeLimits`].
        name: &'static str,
        /// Its value, as given.
        value: String,
        /// The range it must be in.
        range: &'static str,
    },
    /// [`ReceiverLimits::max_body_bytes`] over the ingester's input limit.
    #[error(
        "HTTPS receiver: max_body_bytes = {body} is over the ingester's max_input_bytes = \
         {input} (it would refuse such a body); lower max_body_bytes or raise max_input_bytes"
    )]
    BodyOverInput {
        /// `max_body_bytes`.
        body: usize,
        /// The ingester's `max_input_bytes`.
        input: usize,
    },
    /// A path the router cannot serve.
    #[error("HTTPS receiver: path {path:?}: {problem}")]
    Path {
        /// The path, as given.
        path: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl From<LimitError> for ConfigError {
    fn from(e: LimitError) -> Self {
        ConfigError::OutOfRange {
            name: e.name,
            value: e.value,
            range: e.range,
        }
    }
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &'static str,
    value: T,
    lo: T,
    hi: T,
    range: &'static str,
) -> Result<(), ConfigError> {
    Ok(http_server::in_range(name, value, lo, hi, range)?)
}

fn duration_in_range(
    name: &'static str,
    value: Duration,
    lo: Duration,
    hi: Duration,
    range: &'static str,
) -> Result<(), ConfigError> {
    Ok(http_server::duration_in_range(name, value, lo, hi, range)?)
}

/// A path is served as it is: `/` followed by unreserved characters and `/` (no captures, no
/// wildcards, nothing axum would read as a pattern).
fn check_path(path: &str) -> Result<(), ConfigError> {
    let bad = |problem| ConfigError::Path {
        path: path.to_owned(),
        problem,
    };
    if !path.starts_with('/') {
        return Err(bad("a path starts with /"));
    }
    if path.contains("//") {
        return Err(bad("a path has no empty segment (//)"));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~/".contains(c))
    {
        return Err(bad(
            "a path holds only letters, digits, '-', '.', '_', '~' and '/'",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The router
// ---------------------------------------------------------------------------------------------

struct Receiver {
    ingester: Ingester,
    limits: ReceiverLimits,
    permits: Semaphore,
}

/// The receiver at [`DEFAULT_PATHS`] (`POST /` and `POST /tlsrpt`). To serve it under a
/// prefix, nest it (`Router::nest("/reports", …)`) or use [`router_at`].
pub fn router(ingester: Ingester, limits: ReceiverLimits) -> Result<Router, ConfigError> {
    router_at(ingester, limits, &DEFAULT_PATHS)
}

/// The receiver at `paths` (each `POST`; any other method is 405). The router has no fallback
/// of its own (other paths are the embedding router's, 404 by default), so it can be merged
/// with another router (the policy server's `/.well-known/mta-sts.txt`).
pub fn router_at(
    ingester: Ingester,
    limits: ReceiverLimits,
    paths: &[&str],
) -> Result<Router, ConfigError> {
    limits.validate(ingester.limits())?;
    if paths.is_empty() {
        return Err(ConfigError::Path {
            path: String::new(),
            problem: "no path given",
        });
    }
    for (i, p) in paths.iter().enumerate() {
        check_path(p)?;
        if paths[..i].contains(p) {
            return Err(ConfigError::Path {
                path: (*p).to_owned(),
                problem: "given twice",
            });
        }
    }
    let state = Arc::new(Receiver {
        permits: Semaphore::new(limits.max_concurrent_requests),
        ingester,
        limits,
    });
    let mut r: Router<Arc<Receiver>> = Router::new();
    for p in paths {
        r = r.route(p, post(receive).fallback(method_not_allowed));
    }
    Ok(r.route_layer(middleware::from_fn(log_request))
        .with_state(state))
}

/// What the log line of a request says beside its status (a response extension, set by the
/// handlers and read by [`log_request`]).
#[derive(Clone, Debug)]
struct Logged {
    outcome: &'static str,
    bytes: usize,
    detail: String,
}

fn peer_of(ext: &Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

async fn log_request(req: Request, next: Next) -> Response {
    let peer = peer_of(req.extensions()).map_or_else(|| "-".to_owned(), |p| p.to_string());
    let method = escape(req.method().as_str()).into_owned();
    let path = escape(req.uri().path()).into_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let (outcome, bytes, detail) = match response.extensions().get::<Logged>() {
        Some(l) => (l.outcome, l.bytes, l.detail.as_str()),
        None => ("-", 0, ""),
    };
    match status {
        ..400 => {
            tracing::info!(%peer, %method, %path, status, outcome, bytes, detail, "TLS-RPT HTTPS request")
        }
        400..500 => {
            tracing::warn!(%peer, %method, %path, status, outcome, bytes, detail, "TLS-RPT HTTPS request")
        }
        _ => {
            tracing::error!(%peer, %method, %path, status, outcome, bytes, detail, "TLS-RPT HTTPS request")
        }
    }
    response
}

/// An answer: the status, a one-line JSON body, what to log.
struct Answer {
    status: StatusCode,
    body: serde_json::Value,
    headers: Vec<(axum::http::HeaderName, HeaderValue)>,
    close: bool,
    logged: Logged,
}

impl Answer {
    fn new(status: StatusCode, body: serde_json::Value, outcome: &'static str) -> Answer {
        Answer {
            status,
            body,
            headers: Vec::new(),
            close: false,
            logged: Logged {
                outcome,
                bytes: 0,
                detail: String::new(),
            },
        }
    }

    /// A refusal with a one-line reason.
    fn refused(status: StatusCode, error: &str) -> Answer {
        Answer::new(
            status,
            serde_json::json!({"outcome": "refused", "error": error}),
            "refused",
        )
        .detail(error)
    }

    fn unavailable(limits: &ReceiverLimits, error: &str) -> Answer {
        Answer::new(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "outcome": "unavailable",
                "error": error,
                "retry_after": limits.retry_after_secs,
            }),
            "unavailable",
        )
        .header(RETRY_AFTER, HeaderValue::from(limits.retry_after_secs))
    }

    fn header(mut self, name: axum::http::HeaderName, value: HeaderValue) -> Answer {
        self.headers.push((name, value));
        self
    }

    /// Closes the connection after the answer (the body was not read whole).
    fn close(mut self) -> Answer {
        self.close = true;
        self
    }

    fn bytes(mut self, n: usize) -> Answer {
        self.logged.bytes = n;
        self
    }

    fn detail(mut self, d: impl Into<String>) -> Answer {
        self.logged.detail = d.into();
        self
    }

    /// The response; `Connection: close` only for HTTP/1 (h2 forbids the header: there the
    /// stream is reset when its body was not read, and the connection stays).
    fn into_response(self, version: Version) -> Response {
        let mut text = self.body.to_string();
        text.push('\n');
        let mut r = Response::new(Body::from(text));
        *r.status_mut() = self.status;
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        for (k, v) in self.headers {
            h.insert(k, v);
        }
        if self.close && version < Version::HTTP_2 {
            h.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        r.extensions_mut().insert(self.logged);
        r
    }
}

async fn method_not_allowed(version: Version) -> Response {
    Answer::refused(
        StatusCode::METHOD_NOT_ALLOWED,
        "only POST is accepted here (RFC 8460 §5.4)",
    )
    .header(ALLOW, HeaderValue::from_static("POST"))
    .into_response(version)
}

/// Whether the request's `Content-Type` admits it (see the module documentation).
fn media_type_accepted(headers: &HeaderMap) -> Result<(), &'static str> {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        // RFC 9110 §8.3: without a Content-Type, the recipient may assume
        // application/octet-stream, which is accepted.
        return Ok(());
    };
    if values.next().is_some() {
        return Err("more than one Content-Type");
    }
    let essence = value
        .to_str()
        .ok()
        .and_then(MediaType::parse)
        .map(|m| m.essence)
        .ok_or("malformed Content-Type")?;
    if ACCEPTED_MEDIA_TYPES.contains(&essence.as_str()) {
        Ok(())
    } else {
        Err(
            "unsupported media type: send application/tlsrpt+gzip or application/tlsrpt+json \
             (RFC 8460 §5.4)",
        )
    }
}

/// The content coding of the body: `Ok(true)` for one gzip layer, `Ok(false)` for none.
fn gzip_coded(headers: &HeaderMap) -> Result<bool, &'static str> {
    let mut gzip = 0;
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| "malformed Content-Encoding")?;
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip += 1;
            } else if !coding.eq_ignore_ascii_case("identity") {
                return Err("unsupported Content-Encoding: only gzip is accepted");
            }
        }
    }
    match gzip {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err("more than one gzip Content-Encoding"),
    }
}

/// `Content-Length`, when sent and numeric (hyper refuses a malformed one before this).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why a body could not be read.
enum BodyProblem {
    /// More than the limit arrived (after `read` bytes).
    TooLarge { read: usize },
    /// The body could not be read (the client went away, a malformed chunk).
    Read(String),
}

/// Reads the body, stopping as soon as it is over `limit` bytes (so at most the limit plus
/// one read buffer is read).
async fn read_body(
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, BodyProblem> {
    let reserve = declared
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(0)
        .min(limit)
        .min(PREALLOCATE_MAX);
    let mut buf = Vec::with_capacity(reserve);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyProblem::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len().saturating_add(data.len()) > limit {
            return Err(BodyProblem::TooLarge {
                read: buf.len().saturating_add(data.len()),
            });
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}

/// What to hand the ingester for a body with `Content-Encoding: gzip`.
#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    /// The body as received: gzip of JSON (the core inflates it within its limit), or not
    /// gzip at all (the coding is mislabelled; the core tells the content from its bytes), or
    /// a corrupt gzip stream (the core says so and keeps it).
    AsReceived,
    /// The inflated body (its gzip layer held gzip again, or an e-mail).
    Inflated(Vec<u8>),
    /// The gzip layer inflates to more than `limit` bytes.
    TooLarge,
}

/// Undoes a gzip content coding (see the module documentation), inflating at most `limit + 1`
/// bytes.
fn undo_gzip_coding(body: &[u8], limit: usize) -> Decoded {
    if payload::detect(body) != PayloadKind::Gzip {
        return Decoded::AsReceived;
    }
    let mut peek = Vec::new();
    if MultiGzDecoder::new(body)
        .take(PEEK_BYTES)
        .read_to_end(&mut peek)
        .is_err()
        || payload::detect(&peek) == PayloadKind::Json
    {
        return Decoded::AsReceived;
    }
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    if MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .is_err()
    {
        return Decoded::AsReceived;
    }
    if out.len() > limit {
        return Decoded::TooLarge;
    }
    Decoded::Inflated(out)
}

/// The quarantine reasons that mean "too large" (413) rather than "not a report" (400).
fn too_large_reason(code: &str) -> bool {
    matches!(
        code,
        "tlsrpt.payload.decompressed-too-large" | "tlsrpt.payload.too-large" | "input.too-large"
    )
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn arrival_answer(a: &Arrival, origin: &str) -> Answer {
    match a {
        Arrival::Stored { report, trust } => Answer::new(
            StatusCode::CREATED,
            serde_json::json!({"outcome": "stored", "report": report}),
            "stored",
        )
        .detail(format!("report {report}, trust {}", trust.as_str())),
        Arrival::Duplicate { report } => Answer::new(
            StatusCode::OK,
            serde_json::json!({"outcome": "duplicate", "report": report}),
            "duplicate",
        )
        .detail(format!("report {report}")),
        Arrival::Quarantined {
            entry,
            reason,
            report: Some(report),
        } => Answer::new(
            StatusCode::ACCEPTED,
            serde_json::json!({
                "outcome": "quarantined", "entry": entry, "report": report, "reason": reason.code,
            }),
            "quarantined",
        )
        .detail(format!("entry {entry}, report {report}: {}", reason.code)),
        Arrival::Quarantined {
            entry,
            reason,
            report: None,
        } => {
            let message = reason
                .message
                .strip_prefix(origin)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&reason.message);
            let status = if too_large_reason(&reason.code) {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            Answer::new(
                status,
                serde_json::json!({
                    "outcome": "quarantined", "entry": entry, "reason": reason.code,
                    "message": cut(message),
                }),
                "quarantined",
            )
            .detail(format!(
                "entry {entry}: {}: {}",
                reason.code,
                escape(&cut(message))
            ))
        }
    }
}

async fn receive(State(rx): State<Arc<Receiver>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let origin =
        peer_of(&parts.extensions).map_or_else(|| "unknown peer".to_owned(), |p| p.to_string());
    handle(&rx, &parts.headers, body, &origin)
        .await
        .into_response(parts.version)
}

async fn handle(rx: &Receiver, headers: &HeaderMap, body: Body, origin: &str) -> Answer {
    let limits = &rx.limits;
    if let Err(reason) = media_type_accepted(headers) {
        return Answer::refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason).close();
    }
    let gzip = match gzip_coded(headers) {
        Ok(g) => g,
        Err(reason) => {
            return Answer::refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason)
                .header(ACCEPT_ENCODING, HeaderValue::from_static("gzip"))
                .close();
        }
    };
    let declared = declared_length(headers);
    if let Some(size) = declared
        && size > limits.max_body_bytes as u64
    {
        return Answer::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the body ({size} bytes by Content-Length) is over the limit of {} bytes",
                limits.max_body_bytes
            ),
        )
        .close();
    }
    let Ok(_permit) = rx.permits.try_acquire() else {
        return Answer::unavailable(limits, "too many reports in progress; retry later")
            .detail(format!(
                "over max_concurrent_requests = {}",
                limits.max_concurrent_requests
            ))
            .close();
    };
    let bytes = match tokio::time::timeout(
        limits.request_timeout,
        read_body(body, limits.max_body_bytes, declared),
    )
    .await
    {
        Err(_) => {
            return Answer::refused(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {} ms",
                    limits.request_timeout.as_millis()
                ),
            )
            .close();
        }
        Ok(Err(BodyProblem::TooLarge { read })) => {
            return Answer::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the body is over the limit of {} bytes",
                    limits.max_body_bytes
                ),
            )
            .bytes(read)
            .close();
        }
        Ok(Err(BodyProblem::Read(e))) => {
            return Answer::refused(StatusCode::BAD_REQUEST, "the body could not be read")
                .detail(format!("the body could not be read: {}", escape(&e)))
                .close();
        }
        Ok(Ok(b)) => b,
    };
    let received = bytes.len();
    let input_limit = rx.ingester.limits().max_input_bytes;
    let bytes = if gzip {
        match undo_gzip_coding(&bytes, input_limit) {
            Decoded::AsReceived => bytes,
            Decoded::Inflated(inflated) => inflated,
            Decoded::TooLarge => {
                return Answer::refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "the body's gzip Content-Encoding inflates to more than {input_limit} bytes"
                    ),
                )
                .bytes(received);
            }
        }
    } else {
        bytes
    };
    let delivery = Delivery {
        bytes: &bytes,
        via: Via::Https,
        origin,
        too_large: None,
        received_at: std::time::SystemTime::now().into(),
    };
    match tokio::time::timeout(limits.store_timeout, rx.ingester.ingest(&delivery)).await {
        Ok(Ok(a)) => arrival_answer(&a, origin).bytes(received),
        Ok(Err(e)) => Answer::unavailable(limits, "the report store is unavailable; retry later")
            .bytes(received)
            .detail(e.to_string()),
        Err(_) => Answer::unavailable(
            limits,
            "the report store did not answer in time; retry later",
        )
        .bytes(received)
        .detail(format!(
            "the store did not answer within store_timeout = {} ms ({})",
            limits.store_timeout.as_millis(),
            rx.ingester.store().target()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down gracefully: no
/// new connection is accepted, requests in progress get [`ServeLimits::shutdown_grace`] to
/// finish, then every connection is closed and `serve` returns. This is the one server of
/// mtasts ([`mtasts_net::http_server`]) with the router as its handler.
///
/// With `tls`, each connection is TLS (its ALPN list decides the protocols: offer `h2` and
/// `http/1.1`, as [`mtasts_net::tls::server_config`] does with `[b"h2", b"http/1.1"]`); a
/// client that negotiates `h2` speaks HTTP/2, any other HTTP/1.1. Without `tls`, plain
/// HTTP/1.1, for use behind a TLS-terminating reverse proxy only (RFC 8460 §5.4 requires
/// HTTPS).
///
/// Each request carries the peer's address as [`ConnectInfo<SocketAddr>`] (what
/// `axum::serve` with connect info would give), so the router sees who sent it.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ConfigError> {
    HttpServer {
        name: "HTTPS receiver",
        tls,
        limits,
        stats: Arc::default(),
        handler: handler(router),
    }
    .serve(vec![listener], shutdown)
    .await?;
    Ok(())
}

/// The router as a handler of [`mtasts_net::http_server`]: each request gets its peer's
/// address as [`ConnectInfo<SocketAddr>`]. For a server that mounts the receiver beside other
/// things (the policy host), call it with the requests that are the receiver's.
pub fn handler(
    router: Router,
) -> impl Fn(hyper::Request<Incoming>, Arc<ConnInfo>) -> RouterFuture + Clone + Send + Sync + 'static
{
    move |mut req: hyper::Request<Incoming>, conn: Arc<ConnInfo>| {
        req.extensions_mut().insert(ConnectInfo(conn.peer));
        let router = router.clone();
        Box::pin(async move {
            match router.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }) as RouterFuture
    }
}

/// The future of [`handler`]'s answers.
pub type RouterFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn gzip_coding_is_undone_only_when_the_core_cannot() {
        let json = br#"{"organization-name": "x"}"#;
        // gzip of JSON: the core inflates it, within its own limit.
        assert_eq!(undo_gzip_coding(&gz(json), 1024), Decoded::AsReceived);
        // Not gzip at all (a mislabelled coding), or corrupt: handed on for the core to judge.
        assert_eq!(undo_gzip_coding(json, 1024), Decoded::AsReceived);
        let mut corrupt = gz(&gz(json));
        corrupt.truncate(12);
        assert_eq!(undo_gzip_coding(&corrupt, 1024), Decoded::AsReceived);
        // gzip of gzip: one layer undone.
        let inner = gz(json);
        assert_eq!(
            undo_gzip_coding(&gz(&inner), 1024),
            Decoded::Inflated(inner.clone())
        );
        // Inflating past the limit stops there.
        assert_eq!(
            undo_gzip_coding(&gz(&vec![0; 4096]), 1024),
            Decoded::TooLarge
        );
        assert_eq!(
            undo_gzip_coding(&gz(&vec![0; 1024]), 1024),
            Decoded::Inflated(vec![0; 1024])
        );
    }

    #[test]
    fn codings_and_media_types() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                    HeaderValue::from_str(v).expect("value"),
                );
            }
            h
        };
        assert_eq!(gzip_coded(&headers(&[])), Ok(false));
        assert_eq!(
            gzip_coded(&headers(&[("content-encoding", "identity")])),
            Ok(false)
        );
        assert_eq!(
            gzip_coded(&headers(&[("content-encoding", "GZIP")])),
            Ok(true)
        );
        assert!(
            gzip_coded(&headers(&[
                ("content-encoding", "gzip"),
                ("content-encoding", "gzip")
            ]))
            .is_err()
        );
        assert!(gzip_coded(&headers(&[("content-encoding", "gzip, br")])).is_err());
        assert_eq!(media_type_accepted(&headers(&[])), Ok(()));
        assert_eq!(
            media_type_accepted(&headers(&[(
                "content-type",
                "application/tlsrpt+json; charset=utf-8"
            )])),
            Ok(())
        );
        assert!(media_type_accepted(&headers(&[("content-type", "application/tlsrpt")])).is_err());
        assert!(
            media_type_accepted(&headers(&[
                ("content-type", "application/json"),
                ("content-type", "application/json")
            ]))
            .is_err()
        );
    }

    #[test]
    fn messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
        let c = cut(&long);
        assert_eq!(c.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(c.ends_with('…'));
        assert_eq!(cut("short"), "short");
    }
}
