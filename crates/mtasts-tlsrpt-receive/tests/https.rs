//! The HTTPS receiver (RFC 8460 §5.4) against real parts: `serve` on a loopback socket, an
//! SQLite store in a temporary directory, hyper as the client (HTTP/1.1 and h2), curl as an
//! independent one, raw TCP for the hostile clients, and certificates from the lab's CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, Version};
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mtasts_core::tlsrpt::dkim::DkimRequirements;
use mtasts_core::tlsrpt::payload::parse_payload;
use mtasts_core::tlsrpt::report::ReportLimits;
use mtasts_lab::pki::Pki;
use mtasts_lab::scenario::CertSpec;
use mtasts_net::StaticDns;
use mtasts_net::tls::{ServerTlsError, TlsClient, TrustRoots, Verification, server_config};
use mtasts_tlsrpt_receive::https::{self, ConfigError, ReceiverLimits, ServeLimits};
use mtasts_tlsrpt_receive::ingest::{Delivery, Ingester};
use mtasts_tlsrpt_store::{Filter, Store, Via};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// A guard against a test hanging forever when the server misbehaves: the tests never
/// assert on how long anything took, only that it ended.
const HANG: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: still waiting after {HANG:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

struct Setup {
    receiver: ReceiverLimits,
    serve: ServeLimits,
    report: ReportLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    paths: Vec<&'static str>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            receiver: ReceiverLimits::default(),
            serve: ServeLimits::default(),
            report: ReportLimits::default(),
            tls: None,
            paths: https::DEFAULT_PATHS.to_vec(),
        }
    }
}

struct Server {
    addr: SocketAddr,
    ingester: Ingester,
    db: PathBuf,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ConfigError>>>,
}

async fn ingester_at(dir: &Path, limits: ReportLimits) -> (Ingester, PathBuf) {
    let db = dir.join("reports.db");
    let store = Store::open(&db.display().to_string()).await.expect("store");
    // HTTPS reports are bare JSON or gzip: no DKIM, so no DNS lookup.
    let dns: Arc<dyn mtasts_net::DnsLookup> = Arc::new(StaticDns::new());
    (
        Ingester::new(store, dns, limits, DkimRequirements::default()),
        db,
    )
}

async fn start(setup: Setup) -> Server {
    let dir = tempfile::tempdir().expect("dir");
    let (ingester, db) = ingester_at(dir.path(), setup.report).await;
    let router = https::router_at(ingester.clone(), setup.receiver, &setup.paths).expect("router");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(https::serve(
        listener,
        setup.tls,
        router,
        setup.serve,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        ingester,
        db,
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Server {
    fn store(&self) -> &Store {
        self.ingester.store()
    }

    async fn totals(&self) -> (u64, u64, u64) {
        let t = self.store().totals().await.expect("totals");
        (t.raw, t.reports, t.quarantined)
    }

    /// Stops the server and waits for `serve` to return.
    async fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            within("serve to return", t)
                .await
                .expect("serve task")
                .expect("serve");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// An answer as a client saw it.
#[derive(Debug)]
struct Reply {
    status: u16,
    version: Version,
    headers: HeaderMap,
    body: serde_json::Value,
    raw: Vec<u8>,
}

impl Reply {
    fn outcome(&self) -> &str {
        self.body["outcome"].as_str().unwrap_or("")
    }
}

async fn reply(resp: hyper::Response<hyper::body::Incoming>) -> Reply {
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let raw = resp
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes()
        .to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        version,
        headers,
        body,
        raw,
    }
}

fn request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> hyper::Request<Full<Bytes>> {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "reports.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(Bytes::from(body))).expect("request")
}

/// One request on a new plain HTTP/1.1 connection.
async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    within("an answer", async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let resp = sender
            .send_request(request(method, path, headers, body))
            .await
            .expect("response");
        reply(resp).await
    })
    .await
}

async fn post(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    send(
        addr,
        Method::POST,
        path,
        &[("content-type", content_type)],
        body,
    )
    .await
}

/// Reads from a raw connection until the end of a response head.
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match within("a response head", s.read(&mut byte)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => head.push(byte[0]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads whatever comes until the server closes the connection (end of file or reset).
async fn read_until_closed(s: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut buf = Vec::new();
    // An error (a reset after the answer) also means closed; what came before is in `buf`.
    let _ = within(
        "the server to close the connection",
        s.read_to_end(&mut buf),
    )
    .await;
    String::from_utf8_lossy(&buf).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

fn report(id: &str, successful: u64) -> Vec<u8> {
    format!(
        r#"{{"organization-name":"Sender Inc.","date-range":{{"start-datetime":"2026-11-20T00:00:00Z","end-datetime":"2026-11-20T23:59:59Z"}},"contact-info":"tlsrpt@sender.test","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.customer.test","max_age: 86400"],"policy-domain":"customer.test"}},"summary":{{"total-successful-session-count":{successful},"total-failure-session-count":0}}}}]}}"#
    )
    .into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// The JSON and gzip files of the corpus (its e-mails are not what a sender POSTs), in the
/// order of `expected.tsv`, with their media type.
fn corpus_files() -> Vec<(String, &'static str, Vec<u8>)> {
    let dir = mtasts_test_support::report_corpus();
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    tsv.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter_map(|f| {
            let ct = if f.ends_with(".json.gz") {
                "application/tlsrpt+gzip"
            } else if f.ends_with(".json") {
                "application/tlsrpt+json"
            } else {
                return None;
            };
            Some((
                f.to_owned(),
                ct,
                std::fs::read(dir.join(f)).expect("corpus file"),
            ))
        })
        .collect()
}

/// `expected.tsv`'s sessions (successful, failed) per file.
fn expected_sessions() -> std::collections::HashMap<String, (u64, u64)> {
    let dir = mtasts_test_support::report_corpus();
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (file, ok, failed) = (col("file"), col("total_successful"), col("total_failure"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            (
                cells[file].to_owned(),
                (
                    cells[ok].parse().expect("number"),
                    cells[failed].parse().expect("number"),
                ),
            )
        })
        .collect()
}

/// Per (domain, day): reports, successful, failed.
async fn summary(s: &Store) -> Vec<(String, chrono::NaiveDate, u64, u64, u64)> {
    s.summary(&Filter::default())
        .await
        .expect("summary")
        .into_iter()
        .map(|d| (d.domain, d.day, d.reports, d.successful, d.failed))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// RFC 8460 §5.4: what a sender POSTs is stored once, and answered 2xx only then
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s5_4_corpus_posted_is_stored_once_and_reposted_is_all_duplicates() {
    let mut server = start(Setup::default()).await;
    let files = corpus_files();
    assert_eq!(files.len(), 29, "the corpus's JSON and gzip files");
    let expected = expected_sessions();

    // The distinct reports among them (by the store's key), with expected.tsv's sessions.
    let mut keys = std::collections::HashMap::new();
    for (name, _, bytes) in &files {
        let r = parse_payload(bytes, &ReportLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .report;
        keys.entry((r.organization_name, r.report_id))
            .or_insert(expected[name]);
    }
    let (mut created, mut duplicates) = (0, 0);
    for (name, ct, bytes) in &files {
        let path = if created % 2 == 0 { "/" } else { "/tlsrpt" };
        let r = post(server.addr, path, ct, bytes.clone()).await;
        match (r.status, r.outcome()) {
            (201, "stored") => created += 1,
            (200, "duplicate") => duplicates += 1,
            _ => panic!("{name}: {r:?}"),
        }
        assert!(r.body["report"].as_i64().is_some(), "{name}: {r:?}");
        assert_eq!(
            r.headers["content-type"], "application/json",
            "{name}: {r:?}"
        );
    }
    assert_eq!(created, keys.len(), "one 201 per distinct report");
    assert_eq!(duplicates, files.len() - keys.len());

    // The sessions counted are expected.tsv's, once per distinct report.
    let got = summary(server.store()).await;
    let sum = |f: fn(&(String, chrono::NaiveDate, u64, u64, u64)) -> u64| -> u64 {
        got.iter().map(f).sum()
    };
    assert_eq!(sum(|d| d.2), keys.len() as u64);
    assert_eq!(sum(|d| d.3), keys.values().map(|v| v.0).sum::<u64>());
    assert_eq!(sum(|d| d.4), keys.values().map(|v| v.1).sum::<u64>());

    // And the same, day by day, as the same files ingested from disk.
    let dir = tempfile::tempdir().expect("dir");
    let (direct, _) = ingester_at(dir.path(), ReportLimits::default()).await;
    for (name, _, bytes) in &files {
        direct
            .ingest(&Delivery {
                bytes,
                via: Via::File,
                origin: name,
                too_large: None,
                received_at: std::time::SystemTime::now().into(),
            })
            .await
            .expect("ingest");
    }
    assert_eq!(got, summary(direct.store()).await);

    // Everything again: a sender's retries. All duplicates, nothing new.
    let before = server.totals().await;
    assert_eq!(before, (files.len() as u64, keys.len() as u64, 0));
    for (name, ct, bytes) in &files {
        let r = post(server.addr, "/tlsrpt", ct, bytes.clone()).await;
        assert_eq!((r.status, r.outcome()), (200, "duplicate"), "{name}: {r:?}");
    }
    assert_eq!(server.totals().await, before);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn content_encoding_gzip_and_the_media_types_senders_use_are_accepted() {
    let mut server = start(Setup::default()).await;
    let a = server.addr;

    // gzip Content-Encoding over JSON: the same report as the plain JSON.
    let json = report("ce-1@sender.test", 10);
    let r = send(
        a,
        Method::POST,
        "/",
        &[
            ("content-type", "application/tlsrpt+json"),
            ("content-encoding", "gzip"),
        ],
        gzip(&json),
    )
    .await;
    assert_eq!((r.status, r.outcome()), (201, "stored"), "{r:?}");
    let r = post(a, "/", "application/json", json).await;
    assert_eq!((r.status, r.outcome()), (200, "duplicate"), "{r:?}");

    // A gzip report gzipped again by Content-Encoding (x-gzip, an alias).
    let json = report("ce-2@sender.test", 20);
    let r = send(
        a,
        Method::POST,
        "/tlsrpt",
        &[
            ("content-type", "application/tlsrpt+gzip"),
            ("content-encoding", "x-gzip"),
        ],
        gzip(&gzip(&json)),
    )
    .await;
    assert_eq!((r.status, r.outcome()), (201, "stored"), "{r:?}");
    let r = post(a, "/tlsrpt", "application/gzip", gzip(&json)).await;
    assert_eq!((r.status, r.outcome()), (200, "duplicate"), "{r:?}");

    // Labels senders use: the content decides, not the label.
    let r = post(
        a,
        "/",
        "application/octet-stream",
        gzip(&report("ce-3@sender.test", 1)),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = post(
        a,
        "/",
        "Application/TLSRPT+GZIP; charset=binary",
        report("ce-4@sender.test", 1),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    // No Content-Type at all: application/octet-stream (RFC 9110 §8.3).
    let r = send(a, Method::POST, "/", &[], report("ce-5@sender.test", 1)).await;
    assert_eq!(r.status, 201, "{r:?}");

    let got = summary(server.store()).await;
    assert_eq!(got.iter().map(|d| d.3).sum::<u64>(), 10 + 20 + 1 + 1 + 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_media_types_codings_and_methods_are_refused_and_nothing_is_stored() {
    let mut server = start(Setup::default()).await;
    let a = server.addr;
    let body = report("refused@sender.test", 1);
    for ct in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "not a media type",
    ] {
        let r = post(a, "/", ct, body.clone()).await;
        assert_eq!((r.status, r.outcome()), (415, "refused"), "{ct}: {r:?}");
        let text = String::from_utf8_lossy(&r.raw);
        assert_eq!(text.lines().count(), 1, "one line: {text:?}");
        assert!(!text.contains(ct), "the input is not echoed: {text:?}");
    }
    for ce in ["br", "deflate", "gzip, gzip", "compress"] {
        let r = send(
            a,
            Method::POST,
            "/",
            &[
                ("content-type", "application/tlsrpt+json"),
                ("content-encoding", ce),
            ],
            body.clone(),
        )
        .await;
        assert_eq!(r.status, 415, "{ce}: {r:?}");
        assert_eq!(r.headers["accept-encoding"], "gzip", "{ce}: {r:?}");
    }
    for m in [Method::GET, Method::PUT, Method::HEAD, Method::DELETE] {
        let r = send(a, m.clone(), "/tlsrpt", &[], Vec::new()).await;
        assert_eq!(r.status, 405, "{m}: {r:?}");
        assert_eq!(r.headers["allow"], "POST", "{m}: {r:?}");
    }
    let r = post(a, "/elsewhere", "application/tlsrpt+json", body.clone()).await;
    assert_eq!(r.status, 404, "{r:?}");
    // A head over max_header_bytes (16 KiB).
    let big = "x".repeat(20 * 1024);
    let r = send(
        a,
        Method::POST,
        "/",
        &[("content-type", "application/tlsrpt+json"), ("x-big", &big)],
        body,
    )
    .await;
    assert_eq!(r.status, 431, "{r:?}");
    assert_eq!(server.totals().await, (0, 0, 0), "nothing stored");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn not_a_report_is_400_and_kept_in_quarantine_with_an_escaped_reason() {
    let mut server = start(Setup::default()).await;
    let r = post(
        server.addr,
        "/",
        "application/octet-stream",
        b"hello, not a report".to_vec(),
    )
    .await;
    assert_eq!((r.status, r.outcome()), (400, "quarantined"), "{r:?}");
    assert_eq!(r.body["reason"], "tlsrpt.payload.unrecognised", "{r:?}");
    let entry = r.body["entry"].as_i64().expect("entry");
    let (_, kept) = server
        .store()
        .quarantine_entry(entry)
        .await
        .expect("entry")
        .expect("kept");
    assert_eq!(kept, b"hello, not a report");

    // A report whose field holds markup and control characters: the reason names it, escaped.
    let hostile = br#"{"organization-name":"x","report-id":"y","policies":"<script>\u001b[2J"}"#;
    let r = post(server.addr, "/", "application/json", hostile.to_vec()).await;
    assert_eq!((r.status, r.outcome()), (400, "quarantined"), "{r:?}");
    let text = String::from_utf8_lossy(&r.raw);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(server.totals().await, (2, 0, 2));
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// The peak resident set of this process, in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: usize = 1024 * 1024;

/// gzip data inflating to 1 GiB of zeros, as 1024 gzip members of 1 MiB each (RFC 1952
/// §2.2: a gzip file is a series of members; every decoder here reads them all), streamed
/// from a 64 KiB buffer: never 1 GiB in memory. About 1 MiB.
fn bomb() -> Vec<u8> {
    use std::io::Write;
    let zeros = vec![0u8; 64 * 1024];
    let mut member = GzEncoder::new(Vec::new(), Compression::best());
    for _ in 0..16 {
        member.write_all(&zeros).expect("gzip");
    }
    let member = member.finish().expect("gzip");
    member.repeat((GIB / MIB as u64) as usize)
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s5_2_gzip_bomb_is_refused_in_bounded_memory() {
    let report_limits = ReportLimits {
        max_decompressed_bytes: 16 * MIB,
        ..ReportLimits::default()
    };
    let mut server = start(Setup {
        report: report_limits,
        ..Setup::default()
    })
    .await;
    let inner = bomb();
    assert!(inner.len() < 2 * MIB, "{} bytes", inner.len());
    let outer = gzip(&inner);
    assert!(outer.len() < 64 * 1024, "{} bytes", outer.len());
    let before = peak_rss();

    // As a gzip report: the core stops inflating at its limit; kept in quarantine.
    let r = post(server.addr, "/", "application/tlsrpt+gzip", inner.clone()).await;
    assert_eq!((r.status, r.outcome()), (413, "quarantined"), "{r:?}");
    assert_eq!(r.body["reason"], "tlsrpt.payload.decompressed-too-large");

    // The same gzipped again as Content-Encoding: a few KiB on the wire; the receiver inflates
    // the outer layer (1 MiB), the core stops at its limit.
    let r = send(
        server.addr,
        Method::POST,
        "/",
        &[
            ("content-type", "application/tlsrpt+gzip"),
            ("content-encoding", "gzip"),
        ],
        outer,
    )
    .await;
    assert_eq!((r.status, r.outcome()), (413, "quarantined"), "{r:?}");

    // The bomb itself as Content-Encoding: it inflates to zeros, not JSON, so the receiver
    // inflates it, and stops at the input limit (10 MiB); nothing kept.
    let r = send(
        server.addr,
        Method::POST,
        "/",
        &[
            ("content-type", "application/tlsrpt+json"),
            ("content-encoding", "gzip"),
        ],
        inner,
    )
    .await;
    assert_eq!((r.status, r.outcome()), (413, "refused"), "{r:?}");

    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 128 * MIB as u64,
        "peak RSS grew by {} MiB for a bomb of 1024 MiB",
        grown / MIB as u64
    );
    // The first two are the same input (the second's gzip layer undone): one raw input, one
    // quarantine entry.
    assert_eq!(server.totals().await, (1, 0, 1));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_limit_is_413_without_reading_it() {
    let limit = 64 * 1024;
    let mut server = start(Setup {
        receiver: ReceiverLimits {
            max_body_bytes: limit,
            ..ReceiverLimits::default()
        },
        ..Setup::default()
    })
    .await;

    // Said by Content-Length: refused before the body is sent.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: reports.test\r\nContent-Type: application/tlsrpt+gzip\r\n\
          Content-Length: 1000000000\r\n\r\n",
    )
    .await
    .expect("write");
    let answer = read_until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer:?}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer:?}"
    );

    // Chunked, no length: the receiver stops reading past the limit and closes; 64 MiB
    // cannot all be written (the socket buffers hold a few MiB).
    let s = TcpStream::connect(server.addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(
            b"POST /tlsrpt HTTP/1.1\r\nHost: reports.test\r\n\
              Content-Type: application/tlsrpt+json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await?;
        let chunk = [b' '; 16 * 1024];
        let mut sent = 0usize;
        while sent < 64 * MIB {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        wr.write_all(b"0\r\n\r\n").await?;
        Ok::<usize, std::io::Error>(sent)
    });
    let answer = read_until_closed(&mut rd).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer:?}");
    let written = within("the writer to stop", writer).await.expect("writer");
    assert!(written.is_err(), "the whole body was accepted: {written:?}");
    assert_eq!(server.totals().await, (0, 0, 0), "nothing stored");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_loris_body_and_head_are_cut_off() {
    let mut server = start(Setup {
        receiver: ReceiverLimits {
            request_timeout: Duration::from_millis(500),
            ..ReceiverLimits::default()
        },
        serve: ServeLimits {
            header_read_timeout: Duration::from_millis(500),
            ..ServeLimits::default()
        },
        ..Setup::default()
    })
    .await;

    // The head at once, then the body a byte at a time (a thousand bytes would take 100 s).
    let s = TcpStream::connect(server.addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        wr.write_all(
            b"POST / HTTP/1.1\r\nHost: reports.test\r\nContent-Type: application/tlsrpt+json\r\n\
              Content-Length: 1000\r\n\r\n",
        )
        .await?;
        for _ in 0..1000 {
            wr.write_all(b" ").await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<(), std::io::Error>(())
    });
    let answer = read_until_closed(&mut rd).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    trickle.abort();

    // The head itself trickled, a header line at a time: the connection is closed, no answer
    // but an error.
    let s = TcpStream::connect(server.addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        wr.write_all(b"POST / HTTP/1.1\r\n").await?;
        for i in 0..1000 {
            wr.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<(), std::io::Error>(())
    });
    let answer = read_until_closed(&mut rd).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408 "),
        "{answer:?}"
    );
    trickle.abort();
    assert_eq!(server.totals().await, (0, 0, 0));
    server.shutdown().await;
}

/// Sends a request head with `Expect: 100-continue` and waits for the 100: the handler is
/// then running (it asked for the body), holding its place among the concurrent requests.
async fn start_held_request(addr: SocketAddr, body_len: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!(
            "POST / HTTP/1.1\r\nHost: reports.test\r\nContent-Type: application/tlsrpt+json\r\n\
             Expect: 100-continue\r\nContent-Length: {body_len}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 100 "), "{head:?}");
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn over_max_concurrent_requests_is_503_with_retry_after() {
    let mut server = start(Setup {
        receiver: ReceiverLimits {
            max_concurrent_requests: 1,
            retry_after_secs: 7,
            ..ReceiverLimits::default()
        },
        ..Setup::default()
    })
    .await;
    let body = report("held@sender.test", 3);
    let mut held = start_held_request(server.addr, body.len()).await;
    let r = post(
        server.addr,
        "/",
        "application/tlsrpt+json",
        report("second@sender.test", 1),
    )
    .await;
    assert_eq!((r.status, r.outcome()), (503, "unavailable"), "{r:?}");
    assert_eq!(r.headers["retry-after"], "7");
    // The held request completes; then there is room again.
    held.write_all(&body).await.expect("body");
    let head = read_head(&mut held).await;
    assert!(head.starts_with("HTTP/1.1 201 "), "{head:?}");
    let r = post(
        server.addr,
        "/",
        "application/tlsrpt+json",
        report("second@sender.test", 1),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_max_connections_the_next_connection_is_closed() {
    let mut server = start(Setup {
        serve: ServeLimits {
            max_connections: 1,
            ..ServeLimits::default()
        },
        ..Setup::default()
    })
    .await;
    let body = report("conn@sender.test", 3);
    let mut first = start_held_request(server.addr, body.len()).await;
    // The second connection is accepted and closed at once: no answer.
    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    let _ = second
        .write_all(b"POST / HTTP/1.1\r\nHost: reports.test\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert_eq!(read_until_closed(&mut second).await, "");
    first.write_all(&body).await.expect("body");
    let head = read_head(&mut first).await;
    assert!(head.starts_with("HTTP/1.1 201 "), "{head:?}");
    drop(first);
    // Once the first is gone, its place is free again (when the server has seen it close:
    // retried until then).
    let mut served = None;
    for _ in 0..200 {
        let attempt = async {
            let tcp = TcpStream::connect(server.addr).await.ok()?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .ok()?;
            tokio::spawn(conn);
            let resp = sender
                .send_request(request(
                    Method::POST,
                    "/",
                    &[("content-type", "application/tlsrpt+json")],
                    body.clone(),
                ))
                .await
                .ok()?;
            Some(reply(resp).await)
        };
        if let Some(r) = within("an attempt", attempt).await {
            served = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = served.expect("a connection was served after the first closed");
    assert_eq!((r.status, r.outcome()), (200, "duplicate"), "{r:?}");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The store failing: 503, and the sender's retry is stored
// ---------------------------------------------------------------------------------------------

fn sqlite(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).expect("second connection");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn store_failure_is_503_and_the_retry_is_stored() {
    let mut server = start(Setup {
        receiver: ReceiverLimits {
            retry_after_secs: 30,
            ..ReceiverLimits::default()
        },
        ..Setup::default()
    })
    .await;
    let body = report("store-down@sender.test", 5);
    // The table of raw inputs taken away by someone else (a failed migration, a hand edit):
    // every statement of the ingest fails.
    let other = sqlite(&server.db);
    other
        .execute_batch("ALTER TABLE tlsrpt_raw RENAME TO tlsrpt_raw_away")
        .expect("rename");
    let r = post(server.addr, "/", "application/tlsrpt+json", body.clone()).await;
    assert_eq!((r.status, r.outcome()), (503, "unavailable"), "{r:?}");
    assert_eq!(r.headers["retry-after"], "30");
    let text = String::from_utf8_lossy(&r.raw);
    assert!(
        !text.contains(&server.dir.path().display().to_string()),
        "the store's path is not told to the sender: {text}"
    );
    other
        .execute_batch("ALTER TABLE tlsrpt_raw_away RENAME TO tlsrpt_raw")
        .expect("rename back");
    let r = post(server.addr, "/", "application/tlsrpt+json", body).await;
    assert_eq!((r.status, r.outcome()), (201, "stored"), "{r:?}");
    assert_eq!(server.totals().await, (1, 1, 0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_store_past_store_timeout_is_503_and_the_retry_is_stored() {
    let mut server = start(Setup {
        receiver: ReceiverLimits {
            store_timeout: Duration::from_millis(300),
            ..ReceiverLimits::default()
        },
        ..Setup::default()
    })
    .await;
    let body = report("store-locked@sender.test", 5);
    // Another process holds the write lock (a backup, a long prune).
    let other = sqlite(&server.db);
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let r = post(server.addr, "/", "application/tlsrpt+json", body.clone()).await;
    assert_eq!((r.status, r.outcome()), (503, "unavailable"), "{r:?}");
    assert!(r.headers.contains_key("retry-after"));
    // store_timeout, not the store's own lock wait (10 s), ended it.
    let error = r.body["error"].as_str().unwrap_or("");
    assert!(error.contains("did not answer in time"), "{r:?}");
    other.execute_batch("COMMIT").expect("unlock");
    let r = post(server.addr, "/", "application/tlsrpt+json", body).await;
    assert_eq!((r.status, r.outcome()), (201, "stored"), "{r:?}");
    assert_eq!(server.totals().await, (1, 1, 0));
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// A certificate for `reports.test` from the lab's CA, as PEM files; returns (chain, key,
/// CA, the CA nobody trusts).
fn lab_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let pki = Pki::new("https receiver").expect("pki");
    let cert = pki
        .issue("reports.test", &CertSpec::default())
        .expect("certificate");
    let key = rcgen::KeyPair::try_from(cert.key_pkcs8.as_slice()).expect("key");
    let paths = (
        dir.join("chain.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
        dir.join("untrusted-ca.pem"),
    );
    std::fs::write(&paths.0, &cert.chain_pem).expect("write");
    std::fs::write(&paths.1, key.serialize_pem()).expect("write");
    std::fs::write(&paths.2, pki.root_pem()).expect("write");
    std::fs::write(&paths.3, pki.untrusted_root_pem()).expect("write");
    paths
}

async fn tls_connect(
    addr: SocketAddr,
    ca: &Path,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let client = TlsClient::from_roots(&TrustRoots::Path(ca.to_path_buf())).expect("roots");
    let (cfg, _) = client
        .config(Verification::Enforce, alpn)
        .expect("client config");
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("reports.test").expect("name");
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_lab_certificate_over_h2_and_http1() {
    let certs = tempfile::tempdir().expect("dir");
    let (chain, key, ca, untrusted) = lab_certificate(certs.path());
    let tls = server_config(&chain, &key, &[b"h2", b"http/1.1"]).expect("server config");
    let mut server = start(Setup {
        tls: Some(tls),
        ..Setup::default()
    })
    .await;
    let gz = gzip(&report("tls@sender.test", 4));

    // h2, by ALPN.
    let stream = within("TLS", tls_connect(server.addr, &ca, &[b"h2"]))
        .await
        .expect("TLS handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let mut req = request(
        Method::POST,
        "https://reports.test/tlsrpt",
        &[("content-type", "application/tlsrpt+gzip")],
        gz.clone(),
    );
    req.headers_mut().remove("host");
    let r = reply(within("h2", sender.send_request(req)).await.expect("h2")).await;
    assert_eq!((r.status, r.outcome()), (201, "stored"), "{r:?}");
    assert_eq!(r.version, Version::HTTP_2);

    // HTTP/1.1 over TLS.
    let stream = within("TLS", tls_connect(server.addr, &ca, &[b"http/1.1"]))
        .await
        .expect("TLS handshake");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = request(
        Method::POST,
        "/",
        &[("content-type", "application/tlsrpt+gzip")],
        gz.clone(),
    );
    let r = reply(within("h1", sender.send_request(req)).await.expect("h1")).await;
    assert_eq!((r.status, r.outcome()), (200, "duplicate"), "{r:?}");
    assert_eq!(r.version, Version::HTTP_11);

    // A client that trusts another CA does not get through.
    let refused = within("TLS", tls_connect(server.addr, &untrusted, &[b"h2"])).await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");

    // curl (OpenSSL), an independent client, both protocols.
    let body = certs.path().join("report.json.gz");
    std::fs::write(&body, &gz).expect("write");
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let port = server.addr.port();
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("reports.test:{port}:127.0.0.1"))
            .arg(flag)
            .args([
                "-H",
                "Content-Type: application/tlsrpt+gzip",
                "--data-binary",
            ])
            .arg(format!("@{}", body.display()))
            .args(["-w", "\n%{http_code} %{http_version}"])
            .arg(format!("https://reports.test:{port}/tlsrpt"))
            .output();
        let out = match within("curl", out).await {
            Ok(o) => o,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() =>
            {
                eprintln!("curl not found: the curl half of this test is skipped");
                break;
            }
            Err(e) => panic!("curl: {e}"),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(r#""outcome":"duplicate""#), "{text}");
        assert!(text.ends_with(&format!("200 {version}")), "{text}");
    }
    assert_eq!(server.totals().await, (1, 1, 0));
    server.shutdown().await;
}

#[test]
fn server_config_names_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("dir");
    let (chain, key, ca, _) = lab_certificate(dir.path());
    let missing = dir.path().join("missing.pem");
    let e = server_config(&missing, &key, &[]).expect_err("missing chain");
    assert!(matches!(e, ServerTlsError::Read { .. }), "{e}");
    assert!(e.to_string().contains("missing.pem"), "{e}");
    // The key given as the chain, the chain as the key.
    let e = server_config(&key, &key, &[]).expect_err("no certificate");
    assert!(matches!(e, ServerTlsError::Chain { .. }), "{e}");
    let e = server_config(&chain, &chain, &[]).expect_err("no key");
    assert!(matches!(e, ServerTlsError::Key { .. }), "{e}");
    assert!(e.to_string().contains("chain.pem"), "{e}");
    // A key of another certificate.
    let other = tempfile::tempdir().expect("dir");
    let (_, other_key, _, _) = lab_certificate(other.path());
    let e = server_config(&chain, &other_key, &[]).expect_err("mismatch");
    assert!(matches!(e, ServerTlsError::Refused { .. }), "{e}");
    let _ = ca;
}

// ---------------------------------------------------------------------------------------------
// Mounting, settings, shutdown
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn router_at_custom_paths_merges_with_another_router() {
    let dir = tempfile::tempdir().expect("dir");
    let (ingester, _) = ingester_at(dir.path(), ReportLimits::default()).await;
    let receiver = https::router_at(ingester, ReceiverLimits::default(), &["/reports/tlsrpt"])
        .expect("router");
    let app = axum::Router::new()
        .route(
            "/.well-known/mta-sts.txt",
            axum::routing::get(|| async { "version: STSv1\r\n" }),
        )
        .merge(receiver);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(https::serve(
        listener,
        None,
        app,
        ServeLimits::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let r = post(
        addr,
        "/reports/tlsrpt",
        "application/tlsrpt+json",
        report("mounted@sender.test", 1),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = post(addr, "/", "application/tlsrpt+json", report("root@x", 1)).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = send(
        addr,
        Method::GET,
        "/.well-known/mta-sts.txt",
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.raw.as_slice()),
        (200, &b"version: STSv1\r\n"[..])
    );
    let _ = stop.send(());
    within("serve", task).await.expect("task").expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_out_of_range_are_refused_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let (ingester, _) = ingester_at(dir.path(), ReportLimits::default()).await;
    let e = https::router(
        ingester.clone(),
        ReceiverLimits {
            max_concurrent_requests: 0,
            ..ReceiverLimits::default()
        },
    )
    .expect_err("zero");
    assert!(e.to_string().contains("max_concurrent_requests = 0"), "{e}");
    let e = https::router(
        ingester.clone(),
        ReceiverLimits {
            max_body_bytes: ReportLimits::default().max_input_bytes + 1,
            ..ReceiverLimits::default()
        },
    )
    .expect_err("over the input limit");
    assert!(matches!(e, ConfigError::BodyOverInput { .. }), "{e}");
    for bad in ["tlsrpt", "/{id}", "/a//b", "/*rest", ""] {
        let e =
            https::router_at(ingester.clone(), ReceiverLimits::default(), &[bad]).expect_err(bad);
        assert!(matches!(e, ConfigError::Path { .. }), "{bad}: {e}");
    }
    let e =
        https::router_at(ingester.clone(), ReceiverLimits::default(), &[]).expect_err("no path");
    assert!(matches!(e, ConfigError::Path { .. }), "{e}");
    let e = https::router_at(ingester.clone(), ReceiverLimits::default(), &["/a", "/a"])
        .expect_err("twice");
    assert!(matches!(e, ConfigError::Path { .. }), "{e}");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let router = https::router(ingester, ReceiverLimits::default()).expect("router");
    let e = https::serve(
        listener,
        None,
        router,
        ServeLimits {
            header_read_timeout: Duration::ZERO,
            ..ServeLimits::default()
        },
        std::future::pending(),
    )
    .await
    .expect_err("zero timeout");
    assert!(e.to_string().contains("header_read_timeout"), "{e}");
    assert_eq!(
        ReceiverLimits::default().validate(&ReportLimits::default()),
        Ok(())
    );
    assert_eq!(ServeLimits::default().validate(), Ok(()));
    let small = ReportLimits {
        max_input_bytes: 4096,
        ..ReportLimits::default()
    };
    assert!(ReceiverLimits::default().validate(&small).is_err());
    assert_eq!(ReceiverLimits::for_input(&small).validate(&small), Ok(()));
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_finishes_the_request_in_progress() {
    let mut server = start(Setup::default()).await;
    let body = report("shutdown@sender.test", 2);
    let mut held = start_held_request(server.addr, body.len()).await;
    // Shut down while the handler waits for the body.
    let _ = server.stop.take().expect("stop").send(());
    held.write_all(&body).await.expect("body");
    let answer = read_until_closed(&mut held).await;
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer:?}");
    let task = server.task.take().expect("task");
    within("serve to return", task)
        .await
        .expect("task")
        .expect("serve");
    // The listener is gone.
    assert!(TcpStream::connect(server.addr).await.is_err());
    assert_eq!(server.totals().await, (1, 1, 0));
}

/// Where the log lines of this test binary go (one global subscriber, set by the one test
/// that reads them; the others' lines are told apart by path).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_log_line_per_request_with_peer_status_outcome_and_bytes() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .without_time()
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let mut server = start(Setup {
        paths: vec!["/logged"],
        ..Setup::default()
    })
    .await;
    let body = report("logged@sender.test", 1);
    let len = body.len();
    let r = post(server.addr, "/logged", "application/tlsrpt+json", body).await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = send(server.addr, Method::GET, "/logged", &[], Vec::new()).await;
    assert_eq!(r.status, 405, "{r:?}");
    let r = post(server.addr, "/logged", "text/plain", b"x".to_vec()).await;
    assert_eq!(r.status, 415, "{r:?}");
    server.shutdown().await;
    let text = String::from_utf8_lossy(
        &captured
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("path=/logged"))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, (level, status, outcome)) in lines.iter().zip([
        ("INFO", "status=201", "stored"),
        ("WARN", "status=405", "refused"),
        ("WARN", "status=415", "refused"),
    ]) {
        assert!(line.contains(level), "{line}");
        assert!(line.contains(status), "{line}");
        assert!(line.contains(outcome), "{line}");
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
    }
    assert!(lines[0].contains(&format!("bytes={len}")), "{}", lines[0]);
}
