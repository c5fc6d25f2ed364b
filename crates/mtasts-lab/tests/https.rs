//! The policy hosts, checked with curl and openssl s_client (and the zoo's domains).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{curl_policy, require_tool, run, start_file, start_inline, text};
use mtasts_lab::{BlockMode, CertKind, PolicySpec, World};

// curl exit codes.
const CURL_OK: i32 = 0;
const CURL_SSL_CONNECT: i32 = 35;
const CURL_PARTIAL: i32 = 18;
const CURL_TIMEOUT: i32 = 28;
const CURL_PEER_VERIFY: i32 = 60;
const CURL_RECV_ERROR: i32 = 56;

fn zoo() -> World {
    start_file("zoo.toml")
}

fn assert_cert_rejected(w: &World, domain: &str, needle: &str) {
    let (code, out) = curl_policy(w, domain, &[]);
    assert_eq!(code, CURL_PEER_VERIFY, "{domain}: {out}");
    assert!(
        out.to_ascii_lowercase().contains(needle),
        "{domain}: expected {needle:?} in: {out}"
    );
}

#[test]
fn good_policy_is_served_with_exact_headers() {
    let w = zoo();
    let (code, out) = curl_policy(&w, "good-enforce.test", &[]);
    assert_eq!(code, CURL_OK, "{out}");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Content-Type: text/plain\r\n"), "{out}");
    assert!(out.contains(
        "\r\n\r\nversion: STSv1\nmode: enforce\nmx: mx1.good-enforce.test\nmax_age: 604800\n"
    ));
    let (code, out) = curl_policy(&w, "policy-crlf.test", &[]);
    assert_eq!(code, CURL_OK, "{out}");
    assert!(out.contains("version: STSv1\r\nmode: enforce\r\n"), "{out}");
    let (_, out) = curl_policy(&w, "policy-content-type-charset.test", &[]);
    assert!(
        out.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{out}"
    );
    let fetches = w.policy_fetches_for("good-enforce.test");
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    let f = &fetches[0];
    assert_eq!(f.sni.as_deref(), Some("mta-sts.good-enforce.test"));
    assert_eq!(f.status, Some(200));
    assert_eq!(f.path.as_deref(), Some(mtasts_lab::POLICY_PATH));
    assert!(
        f.tls_version
            .as_deref()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{f:?}"
    );
    // Other paths are 404 on every policy host.
    require_tool("curl", "curl");
    let https = w.https_addr();
    let o = run(Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(w.ca_pem_path())
        .arg("--resolve")
        .arg(format!(
            "mta-sts.good-enforce.test:{}:{}",
            https.port(),
            https.ip()
        ))
        .arg(format!(
            "https://mta-sts.good-enforce.test:{}/index.html",
            https.port()
        )));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404", "{}", text(&o));
}

#[test]
fn http_faults() {
    let w = zoo();
    let (code, out) = curl_policy(&w, "policy-404.test", &[]);
    assert_eq!(code, CURL_OK);
    assert!(out.starts_with("HTTP/1.1 404 Not Found"), "{out}");
    let (_, out) = curl_policy(&w, "policy-500.test", &[]);
    assert!(out.starts_with("HTTP/1.1 500 "), "{out}");
    // Redirect: Location is sent; curl without -L does not follow.
    let (_, out) = curl_policy(&w, "redirecting-policy.test", &[]);
    assert!(out.starts_with("HTTP/1.1 301 Moved Permanently"), "{out}");
    assert!(
        out.contains("Location: https://mta-sts.good-enforce.test/.well-known/mta-sts.txt\r\n"),
        "{out}"
    );
    let (_, out) = curl_policy(&w, "policy-wrong-content-type.test", &[]);
    assert!(
        out.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{out}"
    );
    let (_, out) = curl_policy(&w, "policy-no-content-type.test", &[]);
    let head = out.split("\r\n\r\n").next().unwrap_or("");
    assert!(!head.to_ascii_lowercase().contains("content-type"), "{out}");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{out}");
    let (code, out) = curl_policy(&w, "policy-oversize.test", &["-o", "/dev/null", "-D", "-"]);
    assert_eq!(code, CURL_OK, "{out}");
    assert!(out.contains("Content-Length: 102400\r\n"), "{out}");
    let (code, out) = curl_policy(
        &w,
        "policy-oversize-chunked.test",
        &["-o", "/dev/null", "-D", "-", "-w", "%{size_download}"],
    );
    assert_eq!(code, CURL_OK, "{out}");
    assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
    assert!(!out.contains("Content-Length"), "{out}");
    assert!(out.ends_with("102400"), "{out}");
    let (code, out) = curl_policy(&w, "policy-closed-mid-body.test", &[]);
    assert_eq!(code, CURL_PARTIAL, "{out}");
    let mid = w.policy_fetches_for("policy-closed-mid-body.test");
    assert_eq!(mid[0].outcome, "closed-mid-body");
}

#[test]
fn certificate_knobs() {
    let w = zoo();
    assert_cert_rejected(&w, "policy-host-expired-cert.test", "expired");
    assert_cert_rejected(&w, "policy-host-wrong-name.test", "subject name");
    assert_cert_rejected(&w, "policy-host-self-signed.test", "self-signed");
    assert_cert_rejected(
        &w,
        "policy-host-untrusted-ca.test",
        "self-signed certificate in certificate chain",
    );
    assert_cert_rejected(
        &w,
        "policy-host-missing-intermediate.test",
        "unable to get local issuer",
    );
    let (code, out) = curl_policy(&w, "policy-host-wildcard-cert.test", &[]);
    assert_eq!(code, CURL_OK, "wildcard covers mta-sts.<domain>: {out}");
    // openssl shows the full chain is served: leaf and intermediate.
    require_tool("openssl", "openssl");
    let https = w.https_addr();
    let o = run(Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(https.to_string())
        .args([
            "-servername",
            "mta-sts.good-enforce.test",
            "-showcerts",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(w.ca_pem_path()));
    let t = text(&o);
    assert_eq!(t.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{t}");
    assert!(t.contains("Verify return code: 0 (ok)"), "{t}");
    // The CA file is the trusted root; without it verification fails.
    let (code, _) = curl_policy(&w, "good-enforce.test", &["--cacert", "/dev/null"]);
    assert_ne!(code, CURL_OK);
}

#[test]
fn tls_version_knobs() {
    let w = zoo();
    // TLS 1.0 only: a modern client refuses to connect.
    let (code, out) = curl_policy(&w, "tls10-only-policy-host.test", &[]);
    assert_eq!(code, CURL_SSL_CONNECT, "{out}");
    // A client that allows TLS 1.0 at security level 0 gets through, over TLS 1.0.
    require_tool("openssl", "openssl");
    let https = w.https_addr();
    let o = run(Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(https.to_string())
        .args([
            "-servername",
            "mta-sts.tls10-only-policy-host.test",
            "-tls1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-CAfile",
        ])
        .arg(w.ca_pem_path()));
    let t = text(&o);
    assert!(
        t.contains("Protocol  : TLSv1\n") || t.contains("TLSv1, Cipher"),
        "{t}"
    );
    assert!(t.contains("Verify return code: 0 (ok)"), "{t}");
    let (code, _) = curl_policy(&w, "tls11-only-policy-host.test", &[]);
    assert_eq!(code, CURL_SSL_CONNECT);
    let (code, out) = curl_policy(&w, "tls13-only-policy-host.test", &["--tls-max", "1.2"]);
    assert_eq!(
        code, CURL_SSL_CONNECT,
        "TLS 1.3 only host refuses a TLS 1.2 client: {out}"
    );
    let (code, _) = curl_policy(&w, "tls13-only-policy-host.test", &[]);
    assert_eq!(code, CURL_OK);
    let f = w.policy_fetches_for("tls10-only-policy-host.test");
    assert!(
        f.iter().any(|f| f.tls_version.as_deref() == Some("TLSv1")),
        "{f:?}"
    );
}

#[test]
fn blocking_and_unknown_names() {
    let w = zoo();
    let (code, out) = curl_policy(&w, "policy-host-reset.test", &[]);
    assert!(
        code == CURL_SSL_CONNECT || code == CURL_RECV_ERROR,
        "reset: {code} {out}"
    );
    let start = Instant::now();
    let (code, out) = curl_policy(&w, "policy-host-hang.test", &["--max-time", "1"]);
    assert_eq!(code, CURL_TIMEOUT, "{out}");
    assert!(start.elapsed() >= Duration::from_millis(900));
    // A name the lab has no policy host for: TLS fails (no certificate for that SNI).
    let (code, out) = curl_policy(&w, "no-policy.test", &[]);
    assert_eq!(code, CURL_SSL_CONNECT, "{out}");
    let outcomes: Vec<String> = w.policy_fetches().into_iter().map(|f| f.outcome).collect();
    assert!(
        outcomes.iter().any(|o| o == "blocked:reset"),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|o| o == "blocked:hang"), "{outcomes:?}");
}

#[test]
fn slow_responses() {
    let w = start_inline(
        r#"
[domains."slow.test"]
comment = "slow headers and slow body"
[domains."slow.test".policy]
body = "version: STSv1\nmode: testing\nmax_age: 86400\nmx: *.slow.test\n"
delay_ms = 500
slow_body = { chunk_bytes = 20, interval_ms = 150 }
"#,
    );
    let start = Instant::now();
    let (code, out) = curl_policy(&w, "slow.test", &[]);
    assert_eq!(code, CURL_OK, "{out}");
    assert!(out.ends_with("mx: *.slow.test\n"), "{out}");
    // 500 ms before the headers, then the 60-byte body in 3 chunks with 2 pauses of 150 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn policy_mutations() {
    let w = start_file("minimal.toml");
    let (code, _) = curl_policy(&w, "no-policy.test", &[]);
    assert_eq!(code, CURL_SSL_CONNECT, "no policy host yet");
    // Publish a policy at runtime.
    w.set_policy(
        "no-policy.test",
        PolicySpec {
            mode: Some("testing".into()),
            max_age: Some(3600),
            mx: vec!["mx1.no-policy.test".into()],
            ..PolicySpec::default()
        },
    )
    .expect("set policy");
    let (code, out) = curl_policy(&w, "no-policy.test", &[]);
    assert_eq!(code, CURL_OK, "{out}");
    assert!(out.contains("mode: testing\n"), "{out}");
    assert_eq!(
        common::dig_short(&w, &["A", "mta-sts.no-policy.test"]),
        vec![w.https_addr().ip().to_string()],
        "publishing a policy adds the A record"
    );
    // Block it, unblock it, change its certificate, remove it.
    w.block_policy_host("no-policy.test", BlockMode::Reset)
        .expect("block");
    let (code, _) = curl_policy(&w, "no-policy.test", &[]);
    assert_ne!(code, CURL_OK);
    w.block_policy_host("no-policy.test", BlockMode::None)
        .expect("unblock");
    let (code, _) = curl_policy(&w, "no-policy.test", &[]);
    assert_eq!(code, CURL_OK);
    w.set_cert("mta-sts.no-policy.test", CertKind::Expired.into())
        .expect("cert");
    let (code, _) = curl_policy(&w, "no-policy.test", &[]);
    assert_eq!(code, CURL_PEER_VERIFY);
    w.remove_policy("no-policy.test").expect("remove");
    let (code, _) = curl_policy(&w, "no-policy.test", &[]);
    assert_eq!(code, CURL_SSL_CONNECT);
    assert!(w.remove_policy("no-policy.test").is_err());
    assert!(
        w.block_policy_host("nothere.test", BlockMode::Hang)
            .is_err()
    );
}
