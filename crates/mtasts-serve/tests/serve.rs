//! `mtasts serve` over real sockets and real TLS: policies by SNI and Host, HTTP/1.1 and h2,
//! the refusals, reloads (policies and certificates), hostile clients, `/metrics`, and the
//! id drift against the lab's DNS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mtasts_core::sts::publish::PublishedId;
use mtasts_lab::pki::Pki;
use mtasts_lab::scenario::CertSpec;
use mtasts_serve::certs::AcmeHooks;
use mtasts_serve::config::Config;
use mtasts_serve::server::Running;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const POLICY_A: &str = "version: STSv1\nmode: testing\nmx: mx1.a.test\nmax_age: 86400\n";
const POLICY_B: &str = "version: STSv1\nmode: enforce\nmx: mx1.b.test\nmax_age: 604800\n";

struct Fixture {
    dir: tempfile::TempDir,
    pki: Pki,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
            pki: Pki::new("serve").expect("pki"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Issues a certificate for `names` and writes `<file>.pem` and `<file>.key`.
    fn cert(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let spec = CertSpec {
            names: Some(names.iter().map(|n| (*n).to_owned()).collect()),
            ..CertSpec::default()
        };
        let issued = self.pki.issue(names[0], &spec).expect("issue");
        let key = rcgen::KeyPair::try_from(issued.key_pkcs8.as_slice()).expect("key");
        let (chain, keyp) = (
            self.path(&format!("{file}.pem")),
            self.path(&format!("{file}.key")),
        );
        std::fs::write(&chain, &issued.chain_pem).expect("write chain");
        std::fs::write(&keyp, key.serialize_pem()).expect("write key");
        (chain, keyp)
    }

    fn policy_dir(&self) -> PathBuf {
        let d = self.path("policies");
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn connector(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.pki.root_der().clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }
}

/// A configuration on loopback ports chosen by the kernel, serving `policy_dir` with the
/// two certificates, no admin listener unless asked.
fn base_config(f: &Fixture) -> Config {
    let (ca, ka) = f.cert("a", &["mta-sts.a.test"]);
    let (cb, kb) = f.cert("b", &["mta-sts.b.test"]);
    let text = format!(
        r#"
listen = ["127.0.0.1:0"]
policy_dir = "{dir}"
reload_interval = 0
[[certificates.files]]
chain = "{ca}"
key = "{ka}"
[[certificates.files]]
chain = "{cb}"
key = "{kb}"
[admin]
listen = ["127.0.0.1:0"]
[dns]
servers = ["127.0.0.1:9"]
timeout = 0.2
attempts = 1
check_interval = 0
"#,
        dir = f.policy_dir().display(),
        ca = ca.display(),
        ka = ka.display(),
        cb = cb.display(),
        kb = kb.display(),
    );
    Config::from_toml_str(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

async fn start(config: Config) -> Running {
    Running::start(config, None, AcmeHooks::default(), None)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"))
}

/// Sends `request` over TLS to `addr` with SNI `sni`, reads the whole answer (the request
/// should say `Connection: close`).
async fn tls_exchange(f: &Fixture, addr: SocketAddr, sni: &str, request: &[u8]) -> String {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("name");
    let mut tls = f
        .connector(&[b"http/1.1"])
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("handshake with {sni}: {e}"));
    tls.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn get(f: &Fixture, addr: SocketAddr, host: &str, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let sni = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    tls_exchange(f, addr, &sni, req.as_bytes()).await
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {resp:?}"))
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn canonical(policy: &str) -> String {
    mtasts_core::sts::policy::Policy::parse(policy.as_bytes())
        .expect("policy")
        .to_text()
}

fn id_of(policy: &str) -> String {
    mtasts_core::sts::publish::policy_id(
        &mtasts_core::sts::policy::Policy::parse(policy.as_bytes()).expect("policy"),
    )
}

async fn metrics(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect admin");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_by_sni_and_host_only_get_and_head_of_the_policy_path() {
    let f = Fixture::new();
    std::fs::write(f.policy_dir().join("a.test.txt"), POLICY_A).expect("write");
    std::fs::write(f.policy_dir().join("b.test.txt"), POLICY_B).expect("write");
    let r = start(base_config(&f)).await;
    let addr = r.https_addrs[0];

    let a = get(&f, addr, "mta-sts.a.test", "/.well-known/mta-sts.txt").await;
    assert_eq!(status(&a), 200, "{a}");
    assert!(
        a.to_ascii_lowercase()
            .contains("content-type: text/plain\r\n"),
        "{a}"
    );
    assert_eq!(body(&a), canonical(POLICY_A));
    // The certificate of b by SNI, the policy of b by Host; the Host case-insensitive, its
    // port stripped.
    let b = get(&f, addr, "MTA-STS.B.test:443", "/.well-known/mta-sts.txt").await;
    assert_eq!(status(&b), 200, "{b}");
    assert_eq!(body(&b), canonical(POLICY_B));

    let head = tls_exchange(
        &f,
        addr,
        "mta-sts.a.test",
        b"HEAD /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(body(&head), "", "HEAD has no body");

    let post = tls_exchange(
        &f,
        addr,
        "mta-sts.a.test",
        b"POST /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&post), 405, "{post}");
    assert!(
        post.contains("allow: GET, HEAD") || post.contains("Allow: GET, HEAD"),
        "{post}"
    );

    for (host, path) in [
        ("mta-sts.a.test", "/"),
        ("mta-sts.a.test", "/.well-known/"),
        ("mta-sts.a.test", "/.well-known/mta-sts.txt/"),
        ("mta-sts.a.test", "/.well-known/a.test.txt"),
        ("mta-sts.c.test", "/.well-known/mta-sts.txt"),
        ("a.test", "/.well-known/mta-sts.txt"),
    ] {
        // SNI a (whose certificate exists), Host as given.
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let resp = tls_exchange(&f, addr, "mta-sts.a.test", req.as_bytes()).await;
        assert_eq!(status(&resp), 404, "{host}{path}: {resp}");
        assert!(
            !resp.contains("Location:") && !resp.contains("location:"),
            "{resp}"
        );
    }

    // No certificate for a name not configured: the handshake fails.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("mta-sts.c.test").expect("name");
    assert!(
        f.connector(&[b"http/1.1"])
            .connect(name, tcp)
            .await
            .is_err()
    );

    // HTTP/2 through ALPN.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("mta-sts.a.test").expect("name");
    let tls = f
        .connector(&[b"h2"])
        .connect(name, tcp)
        .await
        .expect("h2 handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("h2");
    tokio::spawn(conn);
    let req = hyper::Request::get("https://mta-sts.a.test/.well-known/mta-sts.txt")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .expect("request");
    let resp = send.send_request(req).await.expect("h2 response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    let m = metrics(r.admin_addrs[0]).await;
    assert!(
        m.contains("mtasts_serve_requests_total{domain=\"a.test\",status=\"200\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("mtasts_serve_certificate_expiry_seconds{name=\"mta-sts.b.test\"}"),
        "{m}"
    );
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_swap_policies_and_certificates_and_keep_the_old_on_failure() {
    let f = Fixture::new();
    let file = f.policy_dir().join("a.test.txt");
    std::fs::write(&file, POLICY_A).expect("write");
    let r = start(base_config(&f)).await;
    let addr = r.https_addrs[0];
    // A connection opened before the reload, kept open across it.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut before = f
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("mta-sts.a.test").expect("n"), tcp)
        .await
        .expect("handshake");

    let changed = POLICY_A.replace("86400", "172800");
    std::fs::write(&file, &changed).expect("write");
    let report = r.shared.reload().expect("reload");
    assert_eq!(report.changed, vec!["a.test".to_owned()]);
    let resp = get(&f, addr, "mta-sts.a.test", "/.well-known/mta-sts.txt").await;
    assert_eq!(body(&resp), canonical(&changed));

    // The connection opened before still works, and gets the new policy.
    before
        .write_all(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = before.read_to_end(&mut out).await;
    assert_eq!(body(&String::from_utf8_lossy(&out)), canonical(&changed));

    // An invalid policy is refused: the previous one stays served.
    std::fs::write(&file, "version: STSv1\nmode: enforcing\nmax_age: 86400\n").expect("write");
    let report = r.shared.reload().expect("the reload itself succeeds");
    assert!(report.changed.is_empty());
    let resp = get(&f, addr, "mta-sts.a.test", "/.well-known/mta-sts.txt").await;
    assert_eq!(body(&resp), canonical(&changed));

    // A certificate that does not load fails the reload: everything old stays.
    let (chain, _) = (f.path("a.pem"), ());
    let good_chain = std::fs::read(&chain).expect("read");
    std::fs::write(&chain, "not a certificate").expect("write");
    assert!(r.shared.reload().is_err());
    let resp = get(&f, addr, "mta-sts.a.test", "/.well-known/mta-sts.txt").await;
    assert_eq!(status(&resp), 200);
    assert_eq!(r.shared.metrics.reloads().1, 1);

    // A new certificate on disk is served after the reload, without a restart.
    std::fs::write(&chain, &good_chain).expect("write");
    f.cert("a", &["mta-sts.a.test", "renewed.a.test"]);
    r.shared.reload().expect("reload");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let tls = f
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("mta-sts.a.test").expect("n"), tcp)
        .await
        .expect("handshake");
    let leaf = &tls.get_ref().1.peer_certificates().expect("certs")[0];
    let names = mtasts_net::tls::summarize(leaf).expect("parse").names;
    assert!(names.contains(&"renewed.a.test".to_owned()), "{names:?}");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_directory_serves_only_domain_files_and_nothing_out_of_it() {
    let f = Fixture::new();
    let dir = f.policy_dir();
    let outside = f.path("outside.txt");
    std::fs::write(&outside, POLICY_B).expect("write");
    std::os::unix::fs::symlink(&outside, dir.join("b.test.txt")).expect("symlink");
    std::fs::write(dir.join("A.test.txt"), POLICY_A).expect("write");
    std::fs::write(dir.join("a.test.txt"), POLICY_A).expect("write");
    let loaded = mtasts_serve::policies::load(&base_config(&f), &Default::default()).expect("load");
    assert_eq!(loaded.served.keys().collect::<Vec<_>>(), vec!["a.test"]);
    assert!(
        loaded
            .skipped
            .iter()
            .any(|s| s.contains("b.test.txt") && s.contains("outside")),
        "{:?}",
        loaded.skipped
    );
    assert!(
        loaded.skipped.iter().any(|s| s.contains("A.test.txt")),
        "{:?}",
        loaded.skipped
    );
}

/// Reads until the server closes the connection (or the guard passes, which fails).
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let r = tokio::time::timeout(mtasts_test_support::GUARD, s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "the server kept a slow connection open");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_refused_while_a_normal_client_is_served() {
    let f = Fixture::new();
    std::fs::write(f.policy_dir().join("a.test.txt"), POLICY_A).expect("write");
    std::fs::write(f.path("passwd"), "root:x:0:0").expect("write");
    let mut config = base_config(&f);
    config.limits.header_read_timeout = 1.0;
    config.limits.handshake_timeout = 1.0;
    config.limits.max_header_bytes = 2048;
    config.limits.max_headers = 16;
    config.limits.max_connections_per_client = 8;
    let r = start(config).await;
    let addr = r.https_addrs[0];
    let normal = || async { get(&f, addr, "mta-sts.a.test", "/.well-known/mta-sts.txt").await };

    // Slow-loris: connections that never finish their handshake or their head, held open.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut slow = f
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("mta-sts.a.test").expect("n"), tcp)
        .await
        .expect("handshake");
    slow.write_all(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-")
        .await
        .expect("write");
    // Meanwhile a normal client is served.
    assert_eq!(status(&normal().await), 200);

    // Malformed requests: 400.
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /.well-known/mta-sts.txt HTTP/9.9\r\nHost: mta-sts.a.test\r\n\r\n",
        b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost mta-sts.a.test\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
    ] {
        let resp = tls_exchange(&f, addr, "mta-sts.a.test", bad).await;
        assert!(
            resp.is_empty() || status(&resp) == 400 || status(&resp) == 505,
            "{bad:?}: {resp}"
        );
        assert!(!resp.contains("version: STSv1"), "{resp}");
    }
    // Oversize head and too many headers: 431.
    let big = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.test\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(4096)
    );
    let resp = tls_exchange(&f, addr, "mta-sts.a.test", big.as_bytes()).await;
    assert_eq!(status(&resp), 431, "{resp}");
    let mut many =
        String::from("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.test\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let resp = tls_exchange(&f, addr, "mta-sts.a.test", many.as_bytes()).await;
    assert_eq!(status(&resp), 431, "{resp}");

    // Path traversal, plain and encoded: 404, never a file.
    for path in [
        "/.well-known/../etc/passwd",
        "/.well-known/%2e%2e/etc/passwd",
        "/.well-known/%2E%2E/%2E%2E/passwd",
        "/.well-known/mta-sts.txt/../../passwd",
        "/../passwd",
        "/.well-known/..%2fpasswd",
        "/policies/a.test.txt",
    ] {
        let resp = get(&f, addr, "mta-sts.a.test", path).await;
        assert!(
            status(&resp) == 404 || status(&resp) == 400,
            "{path}: {resp}"
        );
        assert!(
            !resp.contains("root:x") && !resp.contains("version: STSv1"),
            "{path}: {resp}"
        );
    }

    // The slow ones are cut off by the server (handshake and header timeouts)...
    closed_by_server(&mut silent).await;
    let tail = closed_by_server(&mut slow).await;
    assert!(!tail.contains("version: STSv1"), "{tail}");
    // ...and the per-client cap closes what is over it at once, while the server stays up.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut over = TcpStream::connect(addr).await.expect("connect");
    closed_by_server(&mut over).await;
    drop(held);
    mtasts_test_support::wait_until("the held connections to be released", || {
        mtasts_net::http_server::ServerStats::get(&r.shared.https_stats.open) == 0
    })
    .await;
    assert_eq!(status(&normal().await), 200);
    assert!(
        mtasts_net::http_server::ServerStats::get(&r.shared.https_stats.refused_per_client) >= 1
    );
    r.shutdown().await;
}

fn lab_config(f: &Fixture, dns: SocketAddr, dir: &Path) -> Config {
    let mut c = base_config(f);
    c.policy_dir = Some(dir.to_owned());
    c.dns.servers = vec![dns];
    c.dns.timeout = 5.0;
    c
}

/// RFC 8461 §3.1, §8.1: the drift warning fires when the policy changes but the published
/// record does not, and clears when the record is updated (the lab's DNS, changed live).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_drift_fires_on_a_policy_change_and_clears_when_the_txt_is_updated() {
    let w = tokio::task::spawn_blocking(|| {
        mtasts_lab::World::start(
            &mtasts_test_support::scenario("minimal.toml"),
            mtasts_lab::WorldOptions::default(),
        )
        .expect("world")
    })
    .await
    .expect("join");
    let f = Fixture::new();
    let domain = "good-enforce.test";
    let policy = "version: STSv1\nmode: enforce\nmx: mx1.good-enforce.test\nmax_age: 604800\n";
    let file = f.policy_dir().join(format!("{domain}.txt"));
    std::fs::write(&file, policy).expect("write");
    let sts = format!("_mta-sts.{domain}");
    let record = |id: &str| format!("v=STSv1; id={id};");
    w.set_txt(&sts, &[&record(&id_of(policy))]).expect("txt");
    let r = start(lab_config(&f, w.dns_addr(), &f.policy_dir())).await;
    let found = r.shared.check_drift(None).await;
    assert_eq!(found[domain].1, PublishedId::InSync, "{found:?}");

    // The policy changes; the TXT record does not.
    let changed = policy.replace("604800", "1209600");
    std::fs::write(&file, &changed).expect("write");
    r.shared.reload_and_check().await.expect("reload");
    let drift = r.shared.drift();
    assert_eq!(
        drift[domain].1,
        PublishedId::Stale {
            published: id_of(policy)
        }
    );
    assert_eq!(drift[domain].0, id_of(&changed));
    let m = metrics(r.admin_addrs[0]).await;
    assert!(
        m.contains(&format!(
            "mtasts_serve_id_drift{{domain=\"{domain}\",state=\"stale\"}} 1"
        )),
        "{m}"
    );
    // `mtasts serve --check` says so too.
    let cfg = lab_config(&f, w.dns_addr(), &f.policy_dir());
    let report = mtasts_serve::run::check(&cfg, None).await.expect("check");
    assert!(!report.ok());

    // The record is updated: the drift clears.
    w.set_txt(&sts, &[&record(&id_of(&changed))]).expect("txt");
    let found = r.shared.check_drift(None).await;
    assert_eq!(found[domain].1, PublishedId::InSync);
    let m = metrics(r.admin_addrs[0]).await;
    assert!(
        m.contains(&format!(
            "mtasts_serve_id_drift{{domain=\"{domain}\",state=\"in-sync\"}} 0"
        )),
        "{m}"
    );
    let report = mtasts_serve::run::check(&cfg, None).await.expect("check");
    assert!(report.ok(), "{report:?}");
    r.shutdown().await;
    tokio::task::spawn_blocking(move || w.shutdown())
        .await
        .expect("join");
}
