//! `mtasts_daemon::run` as systemd runs it: in a process of its own (this test binary run
//! again), telling `READY=1`, `RELOADING=1`/`READY=1` on SIGHUP and `STOPPING=1` on
//! SIGTERM through `$NOTIFY_SOCKET`, and exiting 0.
#![allow(missing_docs)]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const CHILD_ENV: &str = "MTASTS_DAEMON_RUN_TEST_CONFIG";

/// Not a test on its own: the daemon process the test below starts. Without the variable it
/// does nothing.
#[test]
fn child_daemon_process() {
    let Some(config) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = rt.block_on(mtasts_daemon::run(Path::new(&config))) {
        panic!("run failed: {e:#}");
    }
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification from the daemon: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn ask(socket: &Path, payload: &str) -> Option<String> {
    mtasts_test_support::socketmap::ask_unix(socket, payload, Duration::from_secs(60))
}

#[test]
fn run_notifies_systemd_reloads_on_sighup_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap_or_else(|e| panic!("{e}"));
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap_or_else(|e| panic!("{e}"));
    let socket = dir.path().join("socketmap.sock");
    let config = dir.path().join("daemon.toml");
    let write_config = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "listen = [{{ unix = \"{}\", mode = \"0600\" }}]\n\
                 refresh_period = 0\n\
                 {extra}\n\
                 [log]\nlevel = \"warn\"\n\
                 [resolver.dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = 0.2\nattempts = 1\n\
                 [resolver.store]\ntype = \"memory\"\n",
                socket.display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    };
    write_config("");

    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(exe)
        .args(["child_daemon_process", "--exact", "--test-threads=1"])
        .env(CHILD_ENV, &config)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or_else(|e| panic!("{e}")));

    let ready = recv(&notify);
    assert!(ready.starts_with("READY=1"), "{ready:?}");
    assert_eq!(
        ask(&socket, "postfix .example.test").as_deref(),
        Some("NOTFOUND ")
    );
    // A DNS failure under temp_on_dns_failure, to see the reload take effect.
    assert_eq!(
        ask(&socket, "postfix [192.0.2.1]").as_deref(),
        Some("NOTFOUND ")
    );

    write_config("[default_zone]\ntemp_on_dns_failure = true\n");
    kill(pid, Signal::SIGHUP).unwrap_or_else(|e| panic!("{e}"));
    let reloading = recv(&notify);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert!(recv(&notify).starts_with("READY=1"));
    let temp = ask(&socket, "postfix unreachable.test");
    assert!(
        temp.as_deref().is_some_and(
            |t| t.starts_with("TEMP MTA-STS policy of unreachable.test unknown for now")
        ),
        "{temp:?}"
    );

    // A broken file is reported and the running configuration stays.
    std::fs::write(&config, "bogus = 1\n").unwrap_or_else(|e| panic!("{e}"));
    kill(pid, Signal::SIGHUP).unwrap_or_else(|e| panic!("{e}"));
    assert!(recv(&notify).starts_with("RELOADING=1"));
    assert!(recv(&notify).starts_with("READY=1"));
    assert!(ask(&socket, "postfix unreachable.test").is_some_and(|t| t.starts_with("TEMP ")));

    kill(pid, Signal::SIGTERM).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recv(&notify), "STOPPING=1");
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket file is removed at exit");
}
