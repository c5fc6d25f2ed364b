//! `mtasts-lab up --netns`: the world inside a network namespace, reached through the system
//! resolver by dig, curl and openssl run with `ip netns exec`. Needs root; skipped (with a
//! printed notice) otherwise.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{require_tool, run, scenario_path, text};
use mtasts_lab::WorldInfo;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Stops the lab and removes the namespace even when an assertion fails.
struct Guard {
    child: Option<Child>,
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.name));
    }
}

fn in_ns(name: &str, args: &[&str]) -> (bool, String) {
    let o = run(Command::new("ip").args(["netns", "exec", name]).args(args));
    (o.status.success(), text(&o))
}

#[test]
fn netns_mode_serves_programs_that_use_the_system_resolver() {
    if !is_root() {
        // CI runs as root and must exercise this mode; elsewhere it may be skipped.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the netns test is not running as root"
        );
        println!("SKIPPED netns test: it needs root (ip netns add)");
        return;
    }
    require_tool("ip", "iproute2");
    require_tool("dig", "dnsutils");
    require_tool("curl", "curl");
    require_tool("openssl", "openssl");
    let name = format!("mtlab-t{}", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready.json");
    let child = Command::new(env!("CARGO_BIN_EXE_mtasts-lab"))
        .arg("up")
        .arg(scenario_path("minimal.toml"))
        .args(["--netns", &name])
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mtasts-lab up --netns");
    let mut guard = Guard {
        child: Some(child),
        name: name.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        let exited = guard
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            let out = guard.child.take().and_then(|c| c.wait_with_output().ok());
            panic!("mtasts-lab up --netns exited early ({status}): {out:?}");
        }
        assert!(Instant::now() < deadline, "no ready file after 60 s");
        std::thread::sleep(Duration::from_millis(25));
    }
    let info: WorldInfo =
        serde_json::from_str(&std::fs::read_to_string(&ready).expect("ready")).expect("json");
    assert_eq!(info.dns.port(), 53);
    assert_eq!(info.https.port(), 443);
    assert_eq!(info.smtp_port, 25);
    let resolv = std::fs::read_to_string(format!("/etc/netns/{name}/resolv.conf"))
        .expect("resolv.conf for the namespace");
    assert!(
        resolv.contains(&format!("nameserver {}", info.dns.ip())),
        "{resolv}"
    );

    // dig with no @server: the namespace's resolv.conf leads to the lab DNS.
    let (ok, out) = in_ns(
        &name,
        &[
            "dig",
            "+short",
            "+time=2",
            "+tries=1",
            "TXT",
            "_mta-sts.good-enforce.test",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "\"v=STSv1; id=20240101T000000;\"");
    // curl on the standard port, name resolved by the system resolver.
    let ca = info.ca_pem_path.to_str().expect("utf-8 path");
    let (ok, out) = in_ns(
        &name,
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            ca,
            "https://mta-sts.good-enforce.test/.well-known/mta-sts.txt",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("mode: enforce\n"), "{out}");
    // SMTP on port 25 of the MX's own address.
    let (_, out) = in_ns(
        &name,
        &[
            "sh",
            "-c",
            &format!(
                "echo QUIT | openssl s_client -starttls smtp -connect mx1.good-enforce.test:25 -servername mx1.good-enforce.test -verify_hostname mx1.good-enforce.test -CAfile {ca}"
            ),
        ],
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // Nothing of the world is bound outside the namespace.
    let (_, out) = in_ns(&name, &["ip", "-o", "link"]);
    assert_eq!(out.lines().count(), 1, "only lo in the namespace: {out}");

    // SIGTERM: the parent stops the world and removes the namespace and its resolv.conf.
    let child = guard.child.take().expect("child");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("exit");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("netns      {name}")));
    let list = run(Command::new("ip").args(["netns", "list"]));
    assert!(
        !text(&list).contains(&name),
        "namespace still there: {}",
        text(&list)
    );
    assert!(!PathBuf::from("/etc/netns").join(&name).exists());
    assert!(!ready.exists());
}
