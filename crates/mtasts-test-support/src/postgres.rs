//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, a server
//! listening on 127.0.0.1 at a free port (and a Unix socket in that directory) with trust
//! authentication and durability off (`fsync=off`: it is thrown away), stopped and removed on
//! drop.
//!
//! When PostgreSQL is not installed, [`PgCluster::start`] returns `None` after printing a
//! note, so a developer without it can still run the rest of the tests; under CI (the `CI`
//! environment variable is set) it panics instead, so a missing install step cannot hide.
//! `MTASTS_TEST_PG_BINDIR` may name the directory of `initdb`, `pg_ctl` and `psql` (if it
//! holds no `initdb`, PostgreSQL counts as missing); otherwise the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout) is used, then `pg_config --bindir`, then
//! `PATH`.
//!
//! `initdb` refuses to run as root: a test run as root runs the server as the `postgres` user
//! (or `nobody`) through `runuser`, and owns nothing else as that user.
//!
//! Every cluster has a watchdog: a small shell process that waits for the test process to end
//! and then stops the server and removes its directory. It is what stops
//! [`PgCluster::shared`]'s cluster (a static is never dropped), and what cleans up after a
//! test process that was killed.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster, with the superuser `postgres` and trust authentication.
pub struct PgCluster {
    bindir: PathBuf,
    /// The temporary directory: `data/`, `sock/`, `server.log`. Removed on drop.
    dir: Option<tempfile::TempDir>,
    port: u16,
    /// The user the server runs as, when the tests run as root.
    run_as: Option<String>,
    watchdog: Option<Child>,
    stopped: bool,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("port", &self.port)
            .field("dir", &self.dir.as_ref().map(tempfile::TempDir::path))
            .finish_non_exhaustive()
    }
}

impl PgCluster {
    /// Starts a cluster, or returns `None` (outside CI) when PostgreSQL is not installed.
    pub fn start() -> Option<PgCluster> {
        let Some(bindir) = find_bindir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is not installed, and CI is set: the PostgreSQL store tests must \
                 run in CI (install the Debian package postgresql, or set \
                 MTASTS_TEST_PG_BINDIR to the directory of initdb and pg_ctl)"
            );
            eprintln!(
                "note: PostgreSQL is not installed; skipping this PostgreSQL store test \
                 (apt-get install postgresql to run it)"
            );
            return None;
        };
        Some(PgCluster::start_with(bindir))
    }

    /// One cluster for the whole test process, started on first use (`None` as for
    /// [`PgCluster::start`]); its watchdog stops it when the process ends. Give each test its
    /// own database ([`PgCluster::create_database`]) so that tests can run in parallel.
    pub fn shared() -> Option<&'static PgCluster> {
        static SHARED: OnceLock<Option<PgCluster>> = OnceLock::new();
        SHARED.get_or_init(PgCluster::start).as_ref()
    }

    fn start_with(bindir: PathBuf) -> PgCluster {
        let run_as = if running_as_root() {
            Some(service_user())
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("mtasts-pg")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        std::fs::create_dir(dir.path().join("sock")).expect("the socket directory");
        if let Some(user) = &run_as {
            let out = Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(dir.path())
                .output()
                .unwrap_or_else(|e| panic!("chown: {e}"));
            assert!(out.status.success(), "chown -R {user}: {}", text(&out));
        }
        let mut cluster = PgCluster {
            bindir,
            dir: Some(dir),
            port: 0,
            run_as,
            watchdog: None,
            stopped: false,
        };
        cluster.initdb();
        cluster.watchdog = Some(cluster.spawn_watchdog());
        cluster.spawn_server();
        cluster
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or_else(|| Path::new("/nonexistent"), tempfile::TempDir::path)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as the superuser, over TCP.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (an SQL identifier: letters, digits and `_`).
    pub fn create_database(&self, name: &str) {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: use letters, digits and _"
        );
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// Runs `sql` with `psql` in database `db` as the superuser, and returns its output
    /// (unaligned, tuples only). Panics when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bindir.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(out.status.success(), "psql -c {sql:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let data = self.dir().join("data");
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// `bindir/name` as the server's user.
    fn command(&self, name: &str) -> Command {
        let program = self.bindir.join(name);
        let mut c = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(program);
                c
            }
            None => Command::new(program),
        };
        // A directory the server's user can enter (it may not enter the test's).
        c.current_dir(self.dir());
        c
    }

    fn initdb(&self) {
        let data = self.dir().join("data");
        let mut last = String::new();
        // C.UTF-8 where the C library has it, else plain C.
        for locale in ["--locale=C.UTF-8", "--locale=C"] {
            let out = self
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    locale,
                    "--no-sync",
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run initdb: {e}"));
            if out.status.success() {
                return;
            }
            last = text(&out);
            let _ = std::fs::remove_dir_all(&data);
        }
        panic!("initdb failed: {last}");
    }

    fn spawn_server(&mut self) {
        let data = self.dir().join("data");
        let sock = self.dir().join("sock");
        let log = self.dir().join("server.log");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                sock.display()
            );
            let out_path = self.dir().join("pg_ctl.out");
            let out_file =
                std::fs::File::create(&out_path).unwrap_or_else(|e| panic!("pg_ctl.out: {e}"));
            let err_file = out_file
                .try_clone()
                .unwrap_or_else(|e| panic!("pg_ctl.out: {e}"));
            let status = self
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "30", "-o", &options, "start"])
                .stdin(Stdio::null())
                .stdout(out_file)
                .stderr(err_file)
                .status()
                .unwrap_or_else(|e| panic!("cannot run pg_ctl: {e}"));
            if status.success() && self.wait_ready(port) {
                self.port = port;
                return;
            }
            last = format!(
                "{}\n--- server.log\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            // The port may have been taken between choosing and binding it: try another.
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        panic!("PostgreSQL did not start: {last}");
    }

    /// Whether `pg_isready` says the server accepts connections within 15 s.
    fn wait_ready(&self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let ready = Command::new(self.bindir.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// A shell that waits for this process to end, then stops the server (SIGQUIT: an
    /// immediate shutdown) and removes the directory.
    fn spawn_watchdog(&self) -> Child {
        let stop = crate::watchdog::Stop {
            pid_of: r#"head -n 1 "$2/data/postmaster.pid" 2>/dev/null"#,
            signal: "QUIT",
        };
        crate::watchdog::spawn("PostgreSQL", self.dir(), &stop)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `postgres` if that user exists, else `nobody`.
fn service_user() -> String {
    let exists = Command::new("id")
        .arg("-u")
        .arg("postgres")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists { "postgres" } else { "nobody" }.to_owned()
}

fn find_bindir() -> Option<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("MTASTS_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return has_initdb(&dir).then_some(dir);
    }
    // Debian: /usr/lib/postgresql/<major>/bin, the newest first.
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, d)| has_initdb(d))
        .collect();
    debian.sort();
    if let Some((_, d)) = debian.pop() {
        return Some(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&d) {
            return Some(d);
        }
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has_initdb(d))
}
