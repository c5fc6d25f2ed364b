//! Shared by the daemon's integration tests: a lab world, a daemon pointed at it, and a
//! socketmap client speaking real netstrings over real sockets.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mtasts_daemon::config::UnixListenerConfig;
use mtasts_daemon::{Config, Daemon, Listener, ZoneOverrides};
use mtasts_lab::{Scenario, World, WorldOptions};
use mtasts_postfix::socketmap::ZoneOptions;
use mtasts_resolver::store::StoreConfig;
pub use mtasts_test_support::socketmap::Client;
#[allow(unused_imports)]
pub use mtasts_test_support::{GUARD, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The peer's reference scenario.
pub fn refdata_scenario() -> Scenario {
    mtasts_test_support::scenario("peer-refdata.toml")
}

/// A world, a daemon serving it on TCP 127.0.0.1:0 and a Unix socket, and the temporary
/// directory holding the socket.
pub struct Harness {
    pub world: World,
    pub daemon: Option<Daemon>,
    pub tcp: SocketAddr,
    pub unix: PathBuf,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn daemon(&self) -> &Daemon {
        self.daemon
            .as_ref()
            .unwrap_or_else(|| panic!("the daemon was shut down"))
    }

    pub async fn client(&self) -> Client<TcpStream> {
        Client::tcp(self.tcp).await
    }

    /// One request on a fresh connection.
    pub async fn ask(&self, map: &str, key: &str) -> String {
        let mut c = self.client().await;
        c.request(map, key).await
    }
}

/// The zones every test daemon has, as the peer's test configuration has `test2`.
pub fn test_zones(c: &mut Config) {
    let z = |o: ZoneOptions| ZoneOverrides::from(o);
    let d = ZoneOptions::default();
    c.zones.insert("test2".into(), ZoneOverrides::default());
    c.zones.insert(
        "strict".into(),
        z(ZoneOptions {
            strict_testing: true,
            ..d
        }),
    );
    c.zones.insert(
        "nosni".into(),
        z(ZoneOptions {
            require_sni: false,
            ..d
        }),
    );
    c.zones
        .insert("tlsrpt".into(), z(ZoneOptions { tlsrpt: true, ..d }));
    c.zones.insert(
        "temp".into(),
        z(ZoneOptions {
            temp_on_dns_failure: true,
            ..d
        }),
    );
}

/// The configuration of a test daemon for `world`.
pub fn config_for(world: &World, dir: &Path) -> Config {
    let mut c = Config {
        listen: vec![
            Listener::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
            Listener::Unix(UnixListenerConfig {
                path: dir.join("socketmap.sock"),
                mode: Some(0o660),
                owner: None,
                group: None,
            }),
        ],
        refresh_period: 0.0,
        metrics: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Config::default()
    };
    c.resolver.dns.servers = vec![world.dns_addr()];
    c.resolver.dns.timeout = 0.5;
    c.resolver.dns.attempts = 1;
    c.resolver.fetch.port = world.https_port();
    c.resolver.fetch.ca_file = Some(world.ca_pem_path().to_path_buf());
    c.resolver.fetch.connect_timeout = 5.0;
    c.resolver.fetch.timeout = 10.0;
    c.resolver.store = StoreConfig::Memory;
    test_zones(&mut c);
    c
}

/// Starts a world from `scenario` and a daemon for it; `tweak` adjusts the configuration.
pub async fn start(scenario: &Scenario, tweak: impl FnOnce(&mut Config)) -> Harness {
    let world = World::start(scenario, WorldOptions::default())
        .unwrap_or_else(|e| panic!("the lab world does not start: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut config = config_for(&world, dir.path());
    tweak(&mut config);
    let daemon = Daemon::start(config.clone())
        .await
        .unwrap_or_else(|e| panic!("the daemon does not start: {e:#}"));
    let tcp = daemon
        .tcp_addr()
        .unwrap_or_else(|| panic!("no tcp listener"));
    Harness {
        world,
        daemon: Some(daemon),
        tcp,
        unix: dir.path().join("socketmap.sock"),
        config,
        dir,
    }
}

/// `GET path` on the metrics listener: (status line, headers and body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("metrics did not answer"))
        .unwrap_or_else(|e| panic!("read: {e}"));
    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("utf-8: {e}"));
    let status = text.lines().next().unwrap_or("").to_owned();
    (status, text)
}

/// The value of the sample `series` (name with labels, exactly as rendered), if present.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (name, v) = l.rsplit_once(' ')?;
        (name == series).then(|| v.parse().ok()).flatten()
    })
}
