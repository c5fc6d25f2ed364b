//! A throwaway `redis-server` for tests: started as a child process listening only on a Unix
//! socket in a temporary directory, with persistence off, and killed on drop.
//!
//! When no `redis-server` is installed, [`RedisServer::start`] returns `None` after printing a
//! note, so a developer without Redis can still run the rest of the tests; under CI (the `CI`
//! environment variable is set) it panics instead, so a missing install step cannot hide.
//! `MTASTS_TEST_REDIS_SERVER` may name the binary (if it names no file, the server counts as
//! missing).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` child process.
pub struct RedisServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or returns `None` (outside CI) when `redis-server` is not installed.
    pub fn start() -> Option<RedisServer> {
        let Some(binary) = find_binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed, and CI is set: the Redis store tests must run \
                 in CI (install the Debian package redis-server, or set \
                 MTASTS_TEST_REDIS_SERVER to the binary)"
            );
            eprintln!(
                "note: redis-server is not installed; skipping this Redis store test \
                 (apt-get install redis-server to run it)"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("mtasts-redis")
            .tempdir()
            .expect("a temporary directory for redis-server");
        let socket = dir.path().join("redis.sock");
        let mut server = RedisServer {
            binary,
            dir,
            socket,
            child: None,
        };
        server.spawn();
        Some(server)
    }

    /// The URL of the server's Unix socket.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Kills the server (SIGKILL) and starts a new one on the same socket. The data is gone:
    /// persistence is off.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    fn spawn(&mut self) {
        let log = self.dir.path().join("redis.log");
        let child = Command::new(&self.binary)
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&self.socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--daemonize")
            .arg("no")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if ping(&self.socket) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "redis-server exited with {status} before answering PING; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on {} within 15 s; its log:\n{}",
                self.socket.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a server answers `PING` with `+PONG` on `socket`.
fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MTASTS_TEST_REDIS_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("redis-server"))
                .collect()
        })
        .unwrap_or_default();
    candidates.push(PathBuf::from("/usr/bin/redis-server"));
    candidates.push(PathBuf::from("/usr/sbin/redis-server"));
    candidates.into_iter().find(|p| p.is_file())
}
