//! `mtasts daemon` through the real binary, logging at debug level from its worker threads:
//! a regression test for the CLI holding the stderr lock for the whole command, which froze
//! the daemon at its first log line from a worker.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mtasts_lab::{World, WorldOptions};

fn ask(socket: &Path, payload: &str) -> Option<String> {
    mtasts_test_support::socketmap::ask_unix(socket, payload, Duration::from_secs(20))
}

#[test]
fn daemon_answers_while_logging_at_debug_level() {
    let scenario = mtasts_test_support::scenario("minimal.toml");
    let w = World::start(&scenario, WorldOptions::default()).expect("world");
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("s.sock");
    let config = dir.path().join("daemon.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [{{ unix = \"{}\", mode = \"0600\" }}]\n\
             [log]\nlevel = \"debug\"\n\
             [resolver.dns]\nservers = [\"{}\"]\n\
             [resolver.fetch]\nca_file = \"{}\"\nport = {}\n\
             [resolver.store]\ntype = \"memory\"\n",
            socket.display(),
            w.dns_addr(),
            w.ca_pem_path().display(),
            w.https_port()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["daemon", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mtasts daemon");
    // Drain stderr so a full pipe can never be what blocks the daemon.
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    while !socket.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = ask(&socket, "postfix good-enforce.test");
    let again = ask(&socket, "postfix good-enforce.test");
    // `mtasts daemon query`, reaching the daemon through its configuration's first listener.
    let query = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["daemon", "query", "--config"])
        .arg(&config)
        .args(["good-enforce.test", "no-policy.test"])
        .output()
        .expect("run mtasts daemon query");
    // An endpoint where nothing listens: the daemon could not be asked (exit 2).
    let nobody = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["daemon", "query", "--connect"])
        .arg(format!("unix:{}", dir.path().join("nobody.sock").display()))
        .arg("good-enforce.test")
        .output()
        .expect("run mtasts daemon query");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let logs = logs.join().unwrap_or_default();
    assert!(
        reply.as_deref().is_some_and(|r| r.starts_with("OK secure")),
        "first reply {reply:?}; daemon log:\n{logs}"
    );
    assert_eq!(reply, again, "daemon log:\n{logs}");
    let printed = String::from_utf8_lossy(&query.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "daemon query printed {printed:?}");
    assert_eq!(
        lines[0],
        format!(
            "good-enforce.test\t{}",
            reply.as_deref().unwrap_or_default()
        ),
        "daemon query must print what Postfix gets"
    );
    assert_eq!(lines[1], "no-policy.test\tNOTFOUND ");
    // A NOTFOUND among the answers: exit 1, as `resolve` when no policy applies.
    assert_eq!(
        query.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&query.stderr)
    );
    assert_eq!(nobody.status.code(), Some(2));
    let said = String::from_utf8_lossy(&nobody.stderr);
    assert!(
        said.contains("cannot connect to the daemon at unix:") && said.contains("nobody.sock"),
        "stderr: {said}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the daemon did not exit 0 on SIGTERM ({status:?}); log:\n{logs}"
    );
    assert!(logs.contains("DEBUG") || logs.contains("debug"), "{logs}");
    w.shutdown();
}
