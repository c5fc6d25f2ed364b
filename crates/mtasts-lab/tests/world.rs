//! Worlds as a whole: the zoo, parallel worlds, the control API, scenario errors, the binary.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Smtp, curl_policy, dig_short, dig_status, scenario_path, start_file};
use mtasts_lab::{Scenario, SenderExpectation, World, WorldInfo, WorldOptions};

fn dig_short_at(dns: SocketAddr, args: &[&str]) -> Vec<String> {
    common::require_tool("dig", "dnsutils");
    let o = common::run(
        Command::new("dig")
            .arg(format!("@{}", dns.ip()))
            .args([
                "-p",
                &dns.port().to_string(),
                "+short",
                "+time=2",
                "+tries=1",
            ])
            .args(args),
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A minimal HTTP/1.1 client for the control API: returns (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn zoo_world_starts_and_covers_the_checklist() {
    let scenario = Scenario::from_file(&scenario_path("zoo.toml")).expect("zoo parses");
    let start = Instant::now();
    let w = World::start(&scenario, WorldOptions::default()).expect("zoo starts");
    println!(
        "zoo world with {} domains and {} SMTP hosts started in {:?}",
        w.info().domains.len(),
        w.info().smtp_hosts.len(),
        start.elapsed()
    );
    assert!(scenario.domains.len() >= 40);
    for (name, d) in &scenario.domains {
        assert!(d.expect.is_some(), "{name} has no expectations");
        assert!(!d.comment.is_empty());
    }
    for required in [
        "good-enforce.test",
        "good-testing.test",
        "redirecting-policy.test",
        "mx-not-covered.test",
        "expired-mx-cert.test",
        "starttls-stripped.test",
        "policy-404.test",
        "policy-wrong-content-type.test",
        "policy-oversize.test",
        "two-sts-records.test",
        "txt-split-strings.test",
        "no-policy.test",
        "max-age-too-large.test",
        "policy-host-expired-cert.test",
        "policy-host-wrong-name.test",
        "mx-wildcard-two-levels.test",
        "null-mx.test",
        "dns-servfail.test",
        "dns-timeout.test",
        "cname-to-policy.test",
        "tls10-only-policy-host.test",
        "mx-self-signed.test",
        "mx-untrusted-ca.test",
        "mx-missing-intermediate.test",
        "starttls-454.test",
        "lb-one-bad-backend.test",
        "tlsrpt-only.test",
        "mx-hijack.test",
        "cert-substitution.test",
        "xn--idn-bcher-u9a.test",
    ] {
        assert!(
            scenario.domains.contains_key(required),
            "zoo lacks {required}"
        );
    }
    let senders: Vec<SenderExpectation> = scenario.expectations().map(|(_, e)| e.sender).collect();
    for s in [
        SenderExpectation::DeliverSecurely,
        SenderExpectation::DeliverAndReport,
        SenderExpectation::Defer,
        SenderExpectation::NoPolicy,
        SenderExpectation::Bounce,
    ] {
        assert!(senders.contains(&s), "no zoo domain expects {s:?}");
    }
    // Every MX of every domain resolves to a lab SMTP host, except where a domain says the
    // MX must not resolve.
    for (name, d) in &scenario.domains {
        for mx in d.mx.iter().filter(|m| !m.is_null()) {
            if name == "mx-nxdomain.test" {
                assert_eq!(dig_status(&w, &["A", &mx.exchange]), "NXDOMAIN");
                continue;
            }
            let a = dig_short(&w, &["A", &mx.exchange]);
            assert!(!a.is_empty(), "{name}: MX {} does not resolve", mx.exchange);
        }
    }
    // The attack domains: the hijacked MX points at the attacker's host.
    assert_eq!(
        dig_short(&w, &["MX", "mx-hijack.test"]),
        vec!["10 rogue-mx.attacker.test."]
    );
    let (code, out) = curl_policy(&w, "xn--idn-bcher-u9a.test", &[]);
    assert_eq!(code, 0, "the IDN domain's policy is served: {out}");
}

#[test]
fn two_worlds_run_at_once() {
    let a = std::thread::spawn(|| start_file("minimal.toml"));
    let b = std::thread::spawn(|| start_file("minimal.toml"));
    let a = a.join().expect("world a");
    let b = b.join().expect("world b");
    assert_ne!(a.dns_addr(), b.dns_addr());
    assert_ne!(
        a.smtp_addr("mx1.good-enforce.test"),
        b.smtp_addr("mx1.good-enforce.test")
    );
    assert_ne!(a.ca_pem(), b.ca_pem(), "each world has its own CA");
    // Each DNS answers with its own world's addresses.
    let a_mx = dig_short(&a, &["A", "mx1.good-enforce.test"]);
    let b_mx = dig_short(&b, &["A", "mx1.good-enforce.test"]);
    assert_eq!(
        a_mx,
        vec![a.host_addrs("mx1.good-enforce.test")[0].to_string()]
    );
    assert_eq!(
        b_mx,
        vec![b.host_addrs("mx1.good-enforce.test")[0].to_string()]
    );
    // A change in one world does not touch the other.
    a.set_starttls("mx1.good-enforce.test", mtasts_lab::StarttlsMode::Strip)
        .expect("strip");
    let ehlo = |w: &World| {
        let mut c = Smtp::connect(w, "mx1.good-enforce.test");
        c.reply();
        c.cmd("EHLO client.test")
    };
    assert!(!ehlo(&a).contains("STARTTLS"));
    assert!(ehlo(&b).contains("STARTTLS"));
    // A policy certificate of world a is not trusted by world b's CA.
    let (code, _) = curl_policy(
        &b,
        "good-enforce.test",
        &["--cacert", a.ca_pem_path().to_str().expect("utf-8")],
    );
    assert_eq!(code, 60);
    b.shutdown();
    assert!(!dig_short(&a, &["TXT", "_mta-sts.good-enforce.test"]).is_empty());
}

#[test]
fn control_api_reads_and_mutates() {
    let w = start_file("minimal.toml");
    let control = w.control_addr().expect("control API");
    let (status, body) = http(control, "GET", "/v1/world", "");
    assert_eq!(status, 200);
    let info: WorldInfo = serde_json::from_str(&body).expect("world info");
    assert_eq!(&info, w.info());
    let (status, body) = http(control, "GET", "/v1/ca.pem", "");
    assert_eq!(status, 200);
    assert_eq!(body, w.ca_pem());

    // The cache scenario: publish, let a client fetch, then strip STARTTLS, delete the TXT
    // record and block the policy host in one request.
    let (code, _) = curl_policy(&w, "good-enforce.test", &[]);
    assert_eq!(code, 0);
    let (status, body) = http(
        control,
        "POST",
        "/v1/mutate",
        r#"[
            {"op": "set-starttls", "name": "mx1.good-enforce.test", "mode": "strip"},
            {"op": "set-dns", "name": "_mta-sts.good-enforce.test", "set": {"txt": []}},
            {"op": "block-policy-host", "domain": "good-enforce.test", "block": "reset"}
        ]"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"applied\": 3"), "{body}");
    assert!(dig_short(&w, &["TXT", "_mta-sts.good-enforce.test"]).is_empty());
    let (code, _) = curl_policy(&w, "good-enforce.test", &[]);
    assert_ne!(code, 0);
    let mut c = Smtp::connect(&w, "mx1.good-enforce.test");
    c.reply();
    assert!(!c.cmd("EHLO client.test").contains("STARTTLS"));

    // A bad mutation is refused with a reason; earlier ones in the list stay applied.
    let (status, body) = http(
        control,
        "POST",
        "/v1/mutate",
        r#"[{"op": "clear-logs"}, {"op": "set-starttls", "name": "nope.test", "mode": "strip"}]"#,
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("nope.test") && body.contains("\"applied\": 1"),
        "{body}"
    );
    let (status, body) = http(control, "POST", "/v1/mutate", r#"{"op": "explode"}"#);
    assert_eq!(status, 400);
    assert!(body.contains("explode"), "{body}");

    // Logs: sessions and messages, filtered by host.
    let mut c = Smtp::connect(&w, "mx1.no-policy.test");
    c.reply();
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<a@b.test>");
    c.cmd("RCPT TO:<c@no-policy.test>");
    c.cmd("DATA");
    c.cmd("hi\r\n.");
    let (status, body) = http(control, "GET", "/v1/messages?host=mx1.no-policy.test", "");
    assert_eq!(status, 200);
    let msgs: Vec<mtasts_lab::StoredMessage> = serde_json::from_str(&body).expect("messages");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data, b"hi\r\n");
    let (_, body) = http(
        control,
        "GET",
        "/v1/smtp-sessions?host=mx1.good-enforce.test",
        "",
    );
    let sessions: Vec<mtasts_lab::SmtpSession> = serde_json::from_str(&body).expect("sessions");
    assert!(sessions.iter().all(|s| !s.saw_mail_from()));
    let (status, _) = http(
        control,
        "GET",
        "/v1/dns-queries?name=_mta-sts.good-enforce.test",
        "",
    );
    assert_eq!(status, 200);
    let (status, _) = http(control, "GET", "/v1/nothing", "");
    assert_eq!(status, 404);
    let (status, _) = http(control, "DELETE", "/v1/world", "");
    assert_eq!(status, 405);
}

#[test]
fn scenario_errors_name_file_domain_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[domains.\"a.test\"]\ncomment = \"x\"\n[domains.\"a.test\".hosts.mx1]\nreplies = [{ stage = \"rcpt\", code = 250 }]\n",
    )
    .expect("write");
    let err = Scenario::from_file(&path).expect_err("invalid");
    let msg = err.to_string();
    assert!(msg.contains("bad.toml"), "{msg}");
    assert!(msg.contains("domain \"a.test\""), "{msg}");
    assert!(msg.contains("field \"hosts.mx1.replies[0].code\""), "{msg}");

    let bin = env!("CARGO_BIN_EXE_mtasts-lab");
    let o = Command::new(bin)
        .arg("check")
        .arg(&path)
        .output()
        .expect("run check");
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("hosts.mx1.replies[0].code"),
        "{stderr}"
    );

    let o = Command::new(bin)
        .args(["up", "/nonexistent/scenario.toml"])
        .output()
        .expect("run up");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/scenario.toml"));

    let o = Command::new(bin)
        .arg("check")
        .arg(scenario_path("zoo.toml"))
        .output()
        .expect("check zoo");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("with expectations"));
}

#[test]
fn dropping_a_world_removes_its_files() {
    let w = start_file("minimal.toml");
    let ca = w.ca_pem_path().to_owned();
    assert!(ca.exists());
    let dir = ca.parent().expect("state dir").to_owned();
    drop(w);
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn binary_up_prints_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts-lab"))
        .arg("up")
        .arg(scenario_path("minimal.toml"))
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "no ready file");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "mtasts-lab up exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let info: WorldInfo =
        serde_json::from_str(&std::fs::read_to_string(&ready).expect("read")).expect("json");
    assert!(info.ca_pem_path.exists());
    assert_eq!(
        dig_short_at(info.dns, &["TXT", "_mta-sts.good-enforce.test"]),
        vec!["\"v=STSv1; id=20240101T000000;\""]
    );
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("exit");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "ready"), "{stdout}");
    assert!(stdout.contains(&info.dns.to_string()), "{stdout}");
    assert!(!ready.exists(), "ready file removed on exit");
    assert!(!info.ca_pem_path.exists(), "state removed on exit");
}
