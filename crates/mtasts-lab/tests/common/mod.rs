//! Helpers shared by the integration tests: starting worlds, and running standard clients
//! (dig, curl, openssl) against them. A test that needs a tool fails with a clear message when
//! the tool is missing: CI installs them (`apt-get install -y dnsutils curl openssl`).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mtasts_lab::{Scenario, World, WorldOptions};

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../lab/scenarios")
        .join(name)
}

pub fn start_file(name: &str) -> World {
    let scenario = Scenario::from_file(&scenario_path(name))
        .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
    World::start(&scenario, WorldOptions::default())
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

pub fn start_inline(toml: &str) -> World {
    let scenario = Scenario::from_toml_str(toml, "<test>").unwrap_or_else(|e| panic!("{e}"));
    World::start(&scenario, WorldOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Panic with an install hint when a tool is missing (never skip silently).
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "this test needs `{tool}`: install it with `apt-get install -y {package}`"
    );
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `dig @dns -p port ARGS...` with short timeouts.
pub fn dig(world: &World, args: &[&str]) -> Output {
    require_tool("dig", "dnsutils");
    let dns = world.dns_addr();
    run(Command::new("dig")
        .arg(format!("@{}", dns.ip()))
        .arg("-p")
        .arg(dns.port().to_string())
        .args(["+time=2", "+tries=1"])
        .args(args))
}

/// `dig +short` output lines.
pub fn dig_short(world: &World, args: &[&str]) -> Vec<String> {
    let mut a = vec!["+short"];
    a.extend_from_slice(args);
    let o = dig(world, &a);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `status:` of a full dig answer.
pub fn dig_status(world: &World, args: &[&str]) -> String {
    let o = dig(world, args);
    let t = text(&o);
    t.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("<no status in: {t}>"))
}

/// curl the policy of `domain` through the lab's HTTPS listener, trusting the lab CA.
/// Returns the output of `curl -sS -i` plus `%{exitcode}`-style info in `exit`.
pub fn curl_policy(world: &World, domain: &str, extra: &[&str]) -> (i32, String) {
    require_tool("curl", "curl");
    let host = format!("mta-sts.{domain}");
    let https = world.https_addr();
    let url = format!("https://{host}:{}{}", https.port(), mtasts_lab::POLICY_PATH);
    let o = run(Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert"])
        .arg(world.ca_pem_path())
        .arg("--resolve")
        .arg(format!("{host}:{}:{}", https.port(), https.ip()))
        .args(extra)
        .arg(&url));
    (o.status.code().unwrap_or(-1), text(&o))
}

/// Run `openssl s_client -starttls smtp` against an MX host and feed it `input` lines.
pub fn openssl_starttls(world: &World, host: &str, extra: &[&str], input: &str) -> (i32, String) {
    require_tool("openssl", "openssl");
    let addr = world
        .smtp_addr(host)
        .unwrap_or_else(|| panic!("no SMTP host {host}"));
    let mut child = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-connect"])
        .arg(addr.to_string())
        .args(["-servername", host, "-CAfile"])
        .arg(world.ca_pem_path())
        .args(["-ign_eof", "-nocommands"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    (o.status.code().unwrap_or(-1), text(&o))
}

/// A tiny blocking SMTP client for plaintext sessions: returns every reply line.
pub struct Smtp {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl Smtp {
    pub fn connect(world: &World, host: &str) -> Smtp {
        let addr = world.smtp_addr(host).unwrap();
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Smtp {
            reader: std::io::BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// Read one (possibly multi-line) reply; empty string at EOF.
    pub fn reply(&mut self) -> String {
        use std::io::BufRead;
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> String {
        use std::io::Write;
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    pub fn raw(&mut self, data: &str) {
        use std::io::Write;
        self.writer.write_all(data.as_bytes()).unwrap();
    }
}
