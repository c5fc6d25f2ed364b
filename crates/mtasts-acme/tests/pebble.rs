//! mtasts-acme against a real ACME server: a private Pebble
//! ([`mtasts_test_support::pebble`]) whose validation authority resolves names through a lab
//! world's DNS, so `mta-sts.acme.test` is the lab's policy-host address, where these tests run
//! the challenge listeners: the workspace's HTTP server ([`mtasts_net::http_server`]) in plain
//! HTTP for HTTP-01, and over TLS with [`mtasts_acme::AcmeResolver`] for TLS-ALPN-01 — the
//! same TLS listener then serves the issued certificate, which the tests read back over TLS,
//! verified against Pebble's root.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use mtasts_acme::{Acme, ChallengeKind, ChallengeStore, Ensured, Settings};
use mtasts_core::acme::Reason;
use mtasts_lab::{Scenario, World, WorldOptions};
use mtasts_net::dns::{Dns, DnsLookup, DnsSettings};
use mtasts_net::http_server::{HTTP_ALPN, HttpServer, ServeLimits, ServerStats};
use mtasts_test_support::pebble::Pebble;
use tokio::net::TcpListener;

const NAME: &str = "mta-sts.acme.test";

const WORLD: &str = r#"
[domains."acme.test"]
comment = "the policy domain whose policy host gets an ACME certificate"
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx1.acme.test"]
[domains."acme.test".policy]
mode = "enforce"
max_age = 86400
mx = ["mx1.acme.test"]
"#;

/// Aborts a server task when the test ends.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A lab world, Pebble, and the challenge listeners on the policy host's address.
struct Lab {
    world: World,
    pebble: Pebble,
    dns: Arc<dyn DnsLookup>,
    /// The TLS listener (TLS-ALPN-01 and the certificate served).
    tls_addr: SocketAddr,
    /// What the TLS listener serves, swapped per test to the manager's resolver.
    resolver: Arc<Swappable>,
    _servers: Vec<Task>,
}

/// A resolver the test can point at a manager after the listener started.
#[derive(Debug, Default)]
struct Swappable(std::sync::RwLock<Option<Arc<mtasts_acme::AcmeResolver>>>);

impl rustls::server::ResolvesServerCert for Swappable {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.read().unwrap().as_ref()?.resolve(hello)
    }
}

impl Lab {
    /// `None` when pebble is not installed (outside CI).
    async fn start() -> Option<Lab> {
        let scenario = Scenario::from_toml_str(WORLD, "<acme>").unwrap();
        let world = World::start(&scenario, WorldOptions::default()).unwrap();
        // The policy host's address: where mta-sts.acme.test resolves in the lab.
        let host = world.https_addr().ip();
        let http = TcpListener::bind((host, 0)).await.unwrap();
        let tls = TcpListener::bind((host, 0)).await.unwrap();
        let tls_addr = tls.local_addr().unwrap();
        let pebble = Pebble::start(
            world.dns_addr(),
            http.local_addr().unwrap().port(),
            tls_addr.port(),
        )?;
        let dns = Dns::new(&DnsSettings {
            servers: vec![world.dns_addr()],
            ..DnsSettings::default()
        })
        .unwrap()
        .shared();
        let resolver = Arc::new(Swappable::default());

        // HTTP-01: GET /.well-known/acme-challenge/TOKEN answers the key authorization.
        let current = Arc::clone(&resolver);
        let handler = move |req: hyper::Request<hyper::body::Incoming>, _conn| {
            let store: Option<Arc<ChallengeStore>> = current
                .0
                .read()
                .unwrap()
                .as_ref()
                .map(|r| Arc::clone(&r.challenges));
            async move {
                let answer = store.and_then(|s| s.http01_for_path(req.uri().path()));
                let (status, body) = match answer {
                    Some(ka) => (200, ka),
                    None => (404, "not found\n".to_owned()),
                };
                hyper::Response::builder()
                    .status(status)
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap()
            }
        };
        let http_server = HttpServer {
            name: "ACME HTTP-01 listener",
            tls: None,
            limits: ServeLimits::default(),
            stats: Arc::new(ServerStats::default()),
            handler: handler.clone(),
        };
        let mut alpn: Vec<&[u8]> = HTTP_ALPN.to_vec();
        alpn.push(mtasts_acme::ACME_TLS_ALPN);
        let tls_config = mtasts_net::tls::server_config_with_resolver(
            Arc::clone(&resolver) as Arc<dyn rustls::server::ResolvesServerCert>,
            &alpn,
        )
        .unwrap();
        let tls_server = HttpServer {
            name: "ACME TLS listener",
            tls: Some(tls_config),
            limits: ServeLimits::default(),
            stats: Arc::new(ServerStats::default()),
            handler,
        };
        let servers = vec![
            Task(tokio::spawn(async move {
                http_server
                    .serve(vec![http], std::future::pending())
                    .await
                    .unwrap();
            })),
            Task(tokio::spawn(async move {
                tls_server
                    .serve(vec![tls], std::future::pending())
                    .await
                    .unwrap();
            })),
        ];
        Some(Lab {
            world,
            pebble,
            dns,
            tls_addr,
            resolver,
            _servers: servers,
        })
    }

    fn settings(&self, challenge: ChallengeKind, storage: &std::path::Path) -> Settings {
        let mut s = Settings::new(&self.pebble.directory_url(), &[NAME], storage);
        s.challenge = challenge;
        s.contact = vec!["mailto:postmaster@acme.test".into()];
        s.ca_file = Some(self.pebble.ca_pem_path());
        s
    }

    /// A manager whose challenges and certificates the listeners serve.
    fn manager(&self, settings: Settings) -> Arc<Acme> {
        let acme = Acme::new(settings, Arc::clone(&self.dns)).unwrap();
        *self.resolver.0.write().unwrap() = Some(Arc::new(mtasts_acme::AcmeResolver {
            certs: acme.certs(),
            challenges: acme.challenges(),
        }));
        acme
    }

    /// A manager putting its challenges into a store the server owns (as `mtasts serve` does
    /// with its own maps, through [`mtasts_acme::ChallengeSink`]).
    fn manager_with_server_store(&self, settings: Settings) -> Arc<Acme> {
        let server_side = ChallengeStore::new();
        let acme = Acme::with_challenge_sink(
            settings,
            Arc::clone(&self.dns),
            Arc::clone(&server_side) as Arc<dyn mtasts_acme::ChallengeSink>,
        )
        .unwrap();
        *self.resolver.0.write().unwrap() = Some(Arc::new(mtasts_acme::AcmeResolver {
            certs: acme.certs(),
            challenges: server_side,
        }));
        acme
    }

    /// The leaf the TLS listener serves for NAME, verified against Pebble's root.
    async fn served_leaf(&self, root_pem: &std::path::Path) -> Vec<u8> {
        let client = mtasts_net::tls::TlsClient::from_roots(&mtasts_net::tls::TrustRoots::Path(
            root_pem.to_path_buf(),
        ))
        .unwrap();
        let (cfg, _) = client
            .config(mtasts_net::tls::Verification::Enforce, &[b"http/1.1"])
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(self.tls_addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(NAME).unwrap();
        let tls = tokio::time::timeout(
            mtasts_test_support::GUARD,
            tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
        )
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("TLS to {NAME} at {}: {e}", self.tls_addr));
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }
}

fn leaf_names(der: &[u8]) -> Vec<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().mode() & 0o777
}

async fn obtain(acme: &Acme, lab: &Lab) -> u64 {
    match acme.ensure(NAME).await {
        Ok(Ensured::Obtained { reason, not_after }) => {
            assert_eq!(reason, Reason::Missing);
            not_after
        }
        other => panic!("{other:?}\n--- pebble log\n{}", lab.pebble.log()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_obtains_a_certificate_and_a_restart_reuses_the_stored_account_and_certificate() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let storage = tempfile::tempdir().unwrap();
    let root = storage.path().join("pebble-root.pem");
    std::fs::write(&root, lab.pebble.issuer_root_pem()).unwrap();
    let dir = storage.path().join("acme");

    let acme = lab.manager(lab.settings(ChallengeKind::Http01, &dir));
    assert!(acme.certs().get(NAME).is_none(), "nothing stored yet");
    obtain(&acme, &lab).await;
    assert_eq!((acme.orders_placed(), acme.accounts_created()), (1, 1));
    assert!(
        acme.challenges().is_empty(),
        "challenges removed after the order"
    );
    let leaf = lab.served_leaf(&root).await;
    assert_eq!(leaf_names(&leaf), vec![format!("DNSName({NAME})")]);
    let account = acme.storage().account_path(&lab.pebble.directory_url());
    let cert = acme.storage().cert_path(NAME);
    assert_eq!((mode(&account), mode(&cert)), (0o600, 0o600));
    let account_bytes = std::fs::read(&account).unwrap();
    drop(acme);

    // A restart: the stored certificate is served at once, no order is placed while it is
    // valid and not due, and a renewal uses the stored account.
    let again = lab.manager(lab.settings(ChallengeKind::Http01, &dir));
    assert!(again.certs().get(NAME).is_some(), "loaded from disk");
    assert_eq!(lab.served_leaf(&root).await, leaf);
    match again.ensure(NAME).await.unwrap() {
        Ensured::Waiting { reason: None, .. } => {}
        other => panic!("a fresh stored certificate is not due: {other:?}"),
    }
    assert_eq!(again.orders_placed(), 0);
    match again.renew_now(NAME).await {
        Ok(Ensured::Obtained { .. }) => {}
        other => panic!("{other:?}\n--- pebble log\n{}", lab.pebble.log()),
    }
    assert_eq!((again.orders_placed(), again.accounts_created()), (1, 0));
    assert_eq!(std::fs::read(&account).unwrap(), account_bytes);
    assert_ne!(lab.served_leaf(&root).await, leaf);
    // Pebble validated through the lab: the challenge listener on the policy host's address.
    assert!(
        lab.world
            .dns_queries()
            .iter()
            .any(|q| q.name.trim_end_matches('.') == NAME)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_obtains_a_certificate_and_a_forced_renewal_is_served_without_a_restart() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let storage = tempfile::tempdir().unwrap();
    let root = storage.path().join("pebble-root.pem");
    std::fs::write(&root, lab.pebble.issuer_root_pem()).unwrap();
    let acme = lab.manager_with_server_store(
        lab.settings(ChallengeKind::TlsAlpn01, &storage.path().join("acme")),
    );
    let not_after = obtain(&acme, &lab).await;
    assert!(not_after > 0);
    let before = lab.served_leaf(&root).await;
    assert_eq!(leaf_names(&before), vec![format!("DNSName({NAME})")]);

    // Forced renewal: the same listener, never restarted, serves the new certificate.
    match acme.renew_now(NAME).await {
        Ok(Ensured::Obtained { .. }) => {}
        other => panic!("{other:?}\n--- pebble log\n{}", lab.pebble.log()),
    }
    let after = lab.served_leaf(&root).await;
    assert_ne!(after, before, "the renewed certificate is served");
    assert_eq!(
        acme.certs().get(NAME).unwrap().cert[0].as_ref(),
        after.as_slice()
    );
    assert_eq!(acme.accounts_created(), 1, "one account for both orders");
    assert!(
        acme.challenges().is_empty(),
        "the server's store was used, not this one"
    );
    assert_eq!(
        acme.certs().expiries(),
        vec![(
            NAME.to_owned(),
            acme.status(0)[0].lifetime.unwrap().not_after
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_validation_names_the_step_and_the_retry_waits_for_the_backoff() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let storage = tempfile::tempdir().unwrap();
    // A manager whose challenges nobody serves: Pebble's HTTP-01 request gets a 404.
    let acme = Acme::new(
        lab.settings(ChallengeKind::Http01, &storage.path().join("acme")),
        Arc::clone(&lab.dns),
    )
    .unwrap();
    let err = acme.ensure(NAME).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("ACME order for {NAME}: validation:")),
        "{err}"
    );
    assert!(acme.certs().get(NAME).is_none());
    let status = acme.status(0);
    assert_eq!(status[0].failures, 1);
    assert_eq!(status[0].last_error.as_deref(), Some(err.as_str()));
    // The next attempt waits for the backoff (300 s by default): nothing is ordered now.
    match acme.ensure(NAME).await.unwrap() {
        Ensured::Waiting {
            reason: Some(Reason::Missing),
            ..
        } => {}
        other => panic!("the backoff holds the retry back: {other:?}"),
    }
    assert_eq!(acme.orders_placed(), 1);
    assert!(!acme.storage().cert_path(NAME).exists());
}
