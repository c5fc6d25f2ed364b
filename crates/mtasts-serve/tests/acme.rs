//! `mtasts serve` with `[acme]` against a real ACME server: a private Pebble
//! ([`mtasts_test_support::pebble`]) whose validation authority resolves `mta-sts.acme.test`
//! through a lab world's DNS to the lab's policy-host address, where `mtasts serve` listens.
//! The server obtains its certificate through TLS-ALPN-01 on its own HTTPS listener, serves the
//! policy with it, and `mtasts check` (the library, pointed at the lab's DNS and at the
//! server's port) finds a valid policy fetch; a forced renewal is then served without a
//! restart, and a restart serves the stored certificate at once.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mtasts_check::{CheckConfig, Checker, SenderOutcome};
use mtasts_lab::{Scenario, World, WorldOptions};
use mtasts_serve::certs::AcmeHooks;
use mtasts_serve::config::{Config, DomainConfig};
use mtasts_serve::server::Running;
use mtasts_test_support::pebble::Pebble;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOMAIN: &str = "acme.test";
const NAME: &str = "mta-sts.acme.test";
const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx1.acme.test\nmax_age: 86400\n";

const WORLD: &str = r#"
[domains."acme.test"]
comment = "the policy domain whose policy host is mtasts serve, with an ACME certificate"
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx1.acme.test"]
[domains."acme.test".policy]
mode = "enforce"
max_age = 86400
mx = ["mx1.acme.test"]
"#;

/// A port free on `ip` now (the server binds it again with SO_REUSEADDR): Pebble must be told
/// the TLS-ALPN-01 port before the server, which needs Pebble's directory URL, starts.
fn free_port(ip: std::net::IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
}

fn config(world: &World, pebble: &Pebble, listen: SocketAddr, storage: &Path) -> Config {
    let mut c = Config {
        listen: vec![listen],
        reload_interval: 0.0,
        ..Config::default()
    };
    c.domains.insert(
        DOMAIN.to_owned(),
        DomainConfig {
            policy: POLICY.to_owned(),
        },
    );
    c.dns.servers = vec![world.dns_addr()];
    c.dns.check_interval = 0.0;
    c.admin.listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    c.acme.directory_url = Some(pebble.directory_url());
    c.acme.contact = vec!["mailto:postmaster@acme.test".to_owned()];
    c.acme.ca_file = Some(pebble.ca_pem_path());
    c.acme.storage_dir = storage.to_path_buf();
    c.acme.poll_delay = 0.2;
    c.validate("<test>").unwrap_or_else(|e| panic!("{e}"));
    c
}

/// The leaf served for NAME at `addr`, verified against `roots`.
async fn served_leaf(addr: SocketAddr, roots: &Path) -> Vec<u8> {
    let client = mtasts_net::tls::TlsClient::from_roots(&mtasts_net::tls::TrustRoots::Path(
        roots.to_path_buf(),
    ))
    .unwrap();
    let (cfg, _) = client
        .config(mtasts_net::tls::Verification::Enforce, &[b"http/1.1"])
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio::time::timeout(
        mtasts_test_support::GUARD,
        tokio_rustls::TlsConnector::from(cfg).connect(ServerName::try_from(NAME).unwrap(), tcp),
    )
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("TLS to {NAME} at {addr}: {e}"));
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Waits (bounded) until the server's ACME manager has a certificate for NAME.
async fn wait_for_certificate(running: &Running, pebble: &Pebble) -> Vec<u8> {
    let acme = running.shared.acme().expect("[acme] is on");
    let deadline = tokio::time::Instant::now() + mtasts_test_support::GUARD;
    loop {
        if let Some(k) = acme.certs().get(NAME) {
            return k.cert[0].to_vec();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no certificate for {NAME}: {:?}\n--- pebble log\n{}",
            acme.status(0),
            pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics(addr: SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(mtasts_test_support::GUARD, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// `mtasts check acme.test` against the lab, with the policy host at the server's port.
async fn check(world: &World, roots: &Path, port: u16) -> mtasts_check::DomainReport {
    let checker = Checker::new(CheckConfig {
        dns: Some(world.dns_addr()),
        ca_file: Some(roots.to_path_buf()),
        https_port: port,
        smtp_port: world.smtp_port(),
        ..CheckConfig::default()
    })
    .unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    checker.check(DOMAIN, now).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_obtains_its_certificate_from_pebble_check_passes_and_a_forced_renewal_is_served_without_a_restart()
 {
    let scenario = Scenario::from_toml_str(WORLD, "<serve-acme>").unwrap();
    let world = World::start(&scenario, WorldOptions::default()).unwrap();
    // Where mta-sts.acme.test resolves in the lab; the server listens there.
    let host = world.https_addr().ip();
    let port = free_port(host);
    let Some(pebble) = Pebble::start(world.dns_addr(), free_port(host), port) else {
        eprintln!("pebble is not installed: skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Senders trust Pebble's issuer (the policy host) and the lab CA (the MX hosts).
    let roots = dir.path().join("roots.pem");
    std::fs::write(
        &roots,
        format!("{}{}", pebble.issuer_root_pem(), world.ca_pem()),
    )
    .unwrap();
    let storage = dir.path().join("acme");
    let listen = SocketAddr::new(host, port);
    let cfg = config(&world, &pebble, listen, &storage);

    let running = Running::start(cfg.clone(), None, AcmeHooks::default(), None)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert_eq!(running.https_addrs, vec![listen]);
    let issued = wait_for_certificate(&running, &pebble).await;
    assert_eq!(served_leaf(listen, &roots).await, issued);

    // mtasts check: the policy is fetched from the server, over the ACME certificate.
    let report = check(&world, &roots, port).await;
    let fetch = report.observations.policy_fetch.as_ref().unwrap();
    assert_eq!(fetch.address, Some(listen), "{fetch:?}");
    assert_eq!(fetch.status, Some(200), "{fetch:?}");
    assert_eq!(
        fetch.tls.as_ref().unwrap().chain_der[0].as_ref(),
        issued.as_slice()
    );
    let fetch_findings: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code.starts_with("sts.fetch") || f.code.starts_with("sts.policy"))
        .collect();
    assert!(fetch_findings.is_empty(), "{fetch_findings:?}");
    let policy = report.policy.as_ref().unwrap();
    assert_eq!(
        (policy.mode, policy.max_age, policy.mx.clone()),
        ("enforce", 86_400, vec!["mx1.acme.test".to_owned()])
    );
    assert_eq!(
        report.verdict.outcome,
        SenderOutcome::DeliverSecurely,
        "{:?}",
        report.findings
    );

    // The expiry metric and the ACME state, from the manager.
    let m = metrics(running.admin_addrs[0]).await;
    assert!(
        m.contains(&format!(
            "mtasts_serve_certificate_expiry_seconds{{name=\"{NAME}\"}} "
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "mtasts_serve_certificate_expiring{{name=\"{NAME}\"}} 0"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!("mtasts_serve_acme_failures{{name=\"{NAME}\"}} 0")),
        "{m}"
    );

    // A forced renewal: the same listeners, never restarted, serve the new certificate.
    let acme = Arc::clone(running.shared.acme().unwrap());
    match acme.renew_now(NAME).await {
        Ok(mtasts_acme::Ensured::Obtained { .. }) => {}
        other => panic!("{other:?}\n--- pebble log\n{}", pebble.log()),
    }
    let renewed = served_leaf(listen, &roots).await;
    assert_ne!(renewed, issued, "the renewed certificate is served");
    assert_eq!(
        acme.certs().get(NAME).unwrap().cert[0].as_ref(),
        renewed.as_slice()
    );
    let again = check(&world, &roots, port).await;
    let fetch = again.observations.policy_fetch.as_ref().unwrap();
    assert_eq!(
        fetch.tls.as_ref().unwrap().chain_der[0].as_ref(),
        renewed.as_slice()
    );
    assert_eq!(again.verdict.outcome, SenderOutcome::DeliverSecurely);
    assert_eq!(acme.accounts_created(), 1);
    drop(acme);
    running.shutdown().await;

    // A restart serves the stored certificate at once and orders nothing.
    let restarted = Running::start(cfg, None, AcmeHooks::default(), None)
        .await
        .unwrap_or_else(|e| panic!("restart: {e}"));
    let acme = restarted.shared.acme().unwrap();
    assert_eq!(
        acme.certs().get(NAME).unwrap().cert[0].as_ref(),
        renewed.as_slice()
    );
    assert_eq!(served_leaf(listen, &roots).await, renewed);
    assert_eq!(acme.accounts_created(), 0);
    restarted.shutdown().await;
}
