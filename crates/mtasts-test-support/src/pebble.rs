//! A throwaway Pebble (Let's Encrypt's ACME test server, RFC 8555; Debian's `pebble`) for
//! tests: its own JSON configuration in a temporary directory, its ACME listener and its
//! management listener on free ports of 127.0.0.1, with a certificate for `127.0.0.1` and
//! `localhost` issued by a fresh lab CA ([`mtasts_lab::pki`]), so a client trusts exactly
//! [`Pebble::ca_pem_path`]. Its validation authority resolves names through the DNS server
//! given to [`Pebble::start`] (`-dnsserver`, the lab's) and connects to port
//! [`Pebble::http_port`] for HTTP-01 and [`Pebble::tls_port`] for TLS-ALPN-01, where the test
//! runs its challenge listeners. `PEBBLE_VA_NOSLEEP=1` removes its random validation delays.
//! Killed on drop; a watchdog kills it when the test process is killed.
//!
//! When pebble is not installed (Debian: `pebble`), [`Pebble::start`] returns `None` after
//! printing a note; under CI (the `CI` environment variable is set) it panics instead, as
//! [`crate::postgres`] does: CI installs it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// A running Pebble.
pub struct Pebble {
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    watchdog: Option<Child>,
    acme_port: u16,
    management_port: u16,
    http_port: u16,
    tls_port: u16,
}

impl std::fmt::Debug for Pebble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pebble")
            .field("acme", &self.acme_port)
            .field("http_port", &self.http_port)
            .field("tls_port", &self.tls_port)
            .finish_non_exhaustive()
    }
}

fn find_pebble() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("pebble"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

impl Pebble {
    /// Starts Pebble with its validation authority resolving through `dns` and connecting to
    /// `http_port` (HTTP-01) and `tls_port` (TLS-ALPN-01); `None` (outside CI) when pebble is
    /// not installed.
    pub fn start(dns: SocketAddr, http_port: u16, tls_port: u16) -> Option<Pebble> {
        let Some(bin) = find_pebble() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "pebble is not installed, and CI is set: the ACME tests must run in CI \
                 (install the Debian package pebble)"
            );
            eprintln!(
                "note: pebble is not installed; skipping this ACME test \
                 (apt-get install pebble to run it)"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("mtasts-pebble")
            .tempdir()
            .expect("a temporary directory for pebble");
        let pki = mtasts_lab::pki::Pki::new("pebble").expect("a lab CA");
        let cert = pki
            .issue(
                "localhost",
                &mtasts_lab::CertSpec {
                    kind: mtasts_lab::CertKind::Valid,
                    names: Some(vec!["localhost".into(), "127.0.0.1".into()]),
                },
            )
            .expect("pebble's listener certificate");
        let d = dir.path();
        std::fs::write(d.join("ca.pem"), pki.root_pem()).expect("ca.pem");
        std::fs::write(d.join("cert.pem"), &cert.chain_pem).expect("cert.pem");
        std::fs::write(d.join("key.pem"), pem("PRIVATE KEY", &cert.key_pkcs8)).expect("key.pem");
        let mut p = Pebble {
            dir: Some(dir),
            child: None,
            watchdog: None,
            acme_port: 0,
            management_port: 0,
            http_port,
            tls_port,
        };
        let mut last = String::new();
        for _ in 0..5 {
            p.acme_port = free_port();
            p.management_port = free_port();
            match p.launch(&bin, dns) {
                Ok(()) => {
                    p.watchdog = Some(p.spawn_watchdog());
                    return Some(p);
                }
                // A port may have been taken between choosing and binding it: try others.
                Err(e) => last = e,
            }
        }
        panic!("pebble did not start: {last}");
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or_else(|| Path::new("/nonexistent"), tempfile::TempDir::path)
    }

    fn launch(&mut self, bin: &Path, dns: SocketAddr) -> Result<(), String> {
        let d = self.dir().to_path_buf();
        let config = format!(
            r#"{{
  "pebble": {{
    "listenAddress": "127.0.0.1:{acme}",
    "managementListenAddress": "127.0.0.1:{mgmt}",
    "certificate": "{d}/cert.pem",
    "privateKey": "{d}/key.pem",
    "httpPort": {http},
    "tlsPort": {tls},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }}
}}
"#,
            acme = self.acme_port,
            mgmt = self.management_port,
            d = d.display(),
            http = self.http_port,
            tls = self.tls_port,
        );
        std::fs::write(d.join("pebble.json"), config).expect("pebble.json");
        let log = std::fs::File::create(d.join("pebble.log")).expect("pebble.log");
        let err = log.try_clone().expect("pebble.log");
        let mut child = Command::new(bin)
            .arg("-config")
            .arg(d.join("pebble.json"))
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Every order gets fresh authorizations, so each test really validates.
            .env("PEBBLE_AUTHZREUSE", "0")
            // No nonce is refused on purpose (the default rejects 5 %).
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .current_dir(&d)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.acme_port));
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("pebble exited ({status}): {}", self.log()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("pebble did not listen on {addr}: {}", self.log()))
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The CA certificate (PEM) that issued the listener's certificate: what the ACME
    /// client trusts.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir().join("ca.pem")
    }

    /// The port the validation authority connects to for HTTP-01.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The port the validation authority connects to for TLS-ALPN-01.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// Pebble's log (what it validated, and why a validation failed).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("pebble.log")).unwrap_or_default()
    }

    /// The root of the certificates Pebble issues (PEM), from its management interface
    /// (`/roots/0`, fetched with curl; Pebble makes a new root at each start).
    pub fn issuer_root_pem(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "20", "--cacert"])
            .arg(self.ca_pem_path())
            .arg(format!(
                "https://127.0.0.1:{}/roots/0",
                self.management_port
            ))
            .output()
            .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
        assert!(
            out.status.success(),
            "curl /roots/0: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A shell that waits for this process to end, then kills Pebble and removes the
    /// directory.
    fn spawn_watchdog(&self) -> Child {
        let pid = self.child.as_ref().map_or(0, Child::id);
        // No child (never 0: `kill 0` would signal the watchdog's whole process group).
        let pid_of = if pid == 0 {
            "true".to_owned()
        } else {
            format!("echo {pid}")
        };
        let stop = crate::watchdog::Stop {
            pid_of: &pid_of,
            signal: "KILL",
        };
        crate::watchdog::spawn("pebble", self.dir(), &stop)
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if dir.close().is_err() {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}
