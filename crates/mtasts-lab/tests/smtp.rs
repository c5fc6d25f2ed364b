//! The SMTP hosts, checked with `openssl s_client -starttls smtp`, a plain TCP client and a
//! rustls client.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Smtp, openssl_starttls, require_tool, start_file, start_inline, text};
use mtasts_lab::{
    CertKind, HostSpec, ReplyFault, Scenario, SmtpStage, StarttlsMode, World, WorldOptions,
};

const MESSAGE: &str = "EHLO client.test\r\nMAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@good-enforce.test>\r\nDATA\r\nSubject: lab\r\n\r\nhello\r\n..a line that started with a dot\r\n.\r\nQUIT\r\n";

#[test]
fn delivery_over_starttls_is_stored() {
    let w = start_file("zoo.toml");
    let (_, out) = openssl_starttls(
        &w,
        "mx1.good-enforce.test",
        &["-verify_return_error"],
        MESSAGE,
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
    let msgs = w.messages_for("mx1.good-enforce.test");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert!(m.tls);
    assert_eq!(m.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(m.sni.as_deref(), Some("mx1.good-enforce.test"));
    assert_eq!(m.mail_from, "alice@sender.test");
    assert_eq!(m.rcpt_to, vec!["bob@good-enforce.test"]);
    assert_eq!(
        String::from_utf8_lossy(&m.data),
        "Subject: lab\r\n\r\nhello\r\n.a line that started with a dot\r\n"
    );
    let sessions = w.smtp_sessions_for("mx1.good-enforce.test");
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert!(s.commands.iter().any(|c| c == "STARTTLS"), "{s:?}");
    assert!(
        s.commands
            .iter()
            .any(|c| c == "MAIL FROM:<alice@sender.test>"),
        "{s:?}"
    );
    assert_eq!(s.message_ids, vec![m.id]);
    assert!(w.mail_from_seen("mx1.good-enforce.test"));
    assert!(w.messages_for("mx1.good-testing.test").is_empty());
}

#[test]
fn starttls_knobs() {
    let w = start_file("zoo.toml");
    // Stripped: not advertised, and the command is not recognised.
    let mut c = Smtp::connect(&w, "mx1.starttls-stripped.test");
    assert!(c.reply().starts_with("220 "));
    let ehlo = c.cmd("EHLO client.test");
    assert!(ehlo.starts_with("250-"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(c.cmd("STARTTLS").starts_with("502 "));
    let (code, out) = openssl_starttls(&w, "mx1.starttls-stripped.test", &[], "QUIT\r\n");
    assert_ne!(code, 0);
    assert!(
        out.contains("STARTTLS"),
        "openssl notices the missing STARTTLS: {out}"
    );
    // Refused with 454.
    let mut c = Smtp::connect(&w, "mx1.starttls-454.test");
    c.reply();
    assert!(c.cmd("EHLO client.test").contains("250-STARTTLS"));
    assert!(c.cmd("STARTTLS").starts_with("454 4.7.0"));
    // Handshake failure: 220, then a fatal alert.
    let (code, out) = openssl_starttls(&w, "mx1.starttls-handshake-failure.test", &[], "QUIT\r\n");
    assert_ne!(code, 0);
    assert!(out.contains("handshake failure"), "{out}");
    let s = w.smtp_sessions_for("mx1.starttls-handshake-failure.test");
    assert!(s[0].tls_error.is_some(), "{s:?}");
}

fn verify(w: &World, host: &str, addr: Option<SocketAddr>) -> String {
    require_tool("openssl", "openssl");
    let addr = addr.or_else(|| w.smtp_addr(host)).expect("address");
    let mut child = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-connect"])
        .arg(addr.to_string())
        .args(["-servername", host, "-verify_hostname", host, "-CAfile"])
        .arg(w.ca_pem_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    drop(child.stdin.take());
    let o = child.wait_with_output().expect("openssl output");
    text(&o)
}

#[test]
fn certificate_knobs() {
    let w = start_file("zoo.toml");
    for (host, expected) in [
        ("mx1.good-enforce.test", "Verify return code: 0 (ok)"),
        ("mx1.mx-wildcard-cert.test", "Verify return code: 0 (ok)"),
        ("mx1.expired-mx-cert.test", "certificate has expired"),
        ("mx1.mx-not-yet-valid.test", "certificate is not yet valid"),
        ("mx1.mx-wrong-name.test", "hostname mismatch"),
        ("mx1.mx-self-signed.test", "self-signed certificate"),
        (
            "mx1.mx-untrusted-ca.test",
            "self-signed certificate in certificate chain",
        ),
        (
            "mx1.mx-missing-intermediate.test",
            "unable to get local issuer certificate",
        ),
        ("mx1.cert-substitution.test", "hostname mismatch"),
        ("rogue-mx.attacker.test", "Verify return code: 0 (ok)"),
    ] {
        let out = verify(&w, host, None);
        assert!(
            out.contains(expected),
            "{host}: expected {expected:?} in:\n{out}"
        );
    }
    // The load-balanced pool: one backend is fine, the other expired.
    let addrs = w.host_addrs("mx1.lb-one-bad-backend.test");
    assert_eq!(addrs.len(), 2);
    let port = w.smtp_port();
    let a = verify(
        &w,
        "mx1.lb-one-bad-backend.test",
        Some(SocketAddr::from((addrs[0], port))),
    );
    let b = verify(
        &w,
        "mx1.lb-one-bad-backend.test",
        Some(SocketAddr::from((addrs[1], port))),
    );
    assert!(a.contains("Verify return code: 0 (ok)"), "{a}");
    assert!(b.contains("certificate has expired"), "{b}");
}

#[test]
fn rogue_mx_sees_no_mail_from_and_plaintext_is_marked() {
    let w = start_file("zoo.toml");
    let mut c = Smtp::connect(&w, "rogue-mx.attacker.test");
    c.reply();
    c.cmd("EHLO client.test");
    c.cmd("QUIT");
    assert_eq!(w.smtp_sessions_for("rogue-mx.attacker.test").len(), 1);
    assert!(!w.mail_from_seen("rogue-mx.attacker.test"));
    // A plaintext delivery is stored and marked as such.
    let mut c = Smtp::connect(&w, "mx1.no-policy.test");
    c.reply();
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<a@b.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<c@no-policy.test>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("body\r\n.").starts_with("250 2.0.0 Ok"));
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(c.cmd("BOGUS").starts_with("500"));
    assert!(c.cmd("QUIT").starts_with("221"));
    let m = w.messages_for("mx1.no-policy.test");
    assert_eq!(m.len(), 1);
    assert!(!m[0].tls);
    assert_eq!(m[0].tls_version, None);
    assert!(w.mail_from_seen("mx1.no-policy.test"));
    assert!(!w.mail_from_seen("rogue-mx.attacker.test"));
}

#[test]
fn reply_faults_and_greeting_delay() {
    let w = start_file("zoo.toml");
    let mut c = Smtp::connect(&w, "mx1.smtp-mail-451.test");
    c.reply();
    c.cmd("EHLO client.test");
    assert_eq!(
        c.cmd("MAIL FROM:<a@b.test>"),
        "451 4.3.0 try again later\r\n"
    );
    let mut c = Smtp::connect(&w, "mx1.smtp-rcpt-550.test");
    c.reply();
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<a@b.test>");
    assert_eq!(
        c.cmd("RCPT TO:<x@smtp-rcpt-550.test>"),
        "550 5.1.1 no such user\r\n"
    );

    let w = start_inline(
        r#"
[domains."faults.test"]
comment = "SMTP faults"
mx = ["10 slow.faults.test", "20 rude.faults.test", "30 picky.faults.test"]
[domains."faults.test".hosts.slow]
greeting_delay_ms = 400
[domains."faults.test".hosts.rude]
replies = [{ stage = "connect", code = 554, text = "5.7.1 go away" }]
[domains."faults.test".hosts.picky]
replies = [{ stage = "data-end", code = 452 }, { stage = "ehlo", code = 421, text = "4.3.2 busy" }]
"#,
    );
    let start = Instant::now();
    let mut c = Smtp::connect(&w, "slow.faults.test");
    assert!(c.reply().starts_with("220 slow.faults.test"));
    assert!(start.elapsed() >= Duration::from_millis(400));
    let mut c = Smtp::connect(&w, "rude.faults.test");
    assert_eq!(c.reply(), "554 5.7.1 go away\r\n");
    assert_eq!(
        c.reply(),
        "",
        "the connection is closed after the greeting fault"
    );
    let mut c = Smtp::connect(&w, "picky.faults.test");
    c.reply();
    assert_eq!(c.cmd("EHLO client.test"), "421 4.3.2 busy\r\n");
    assert!(w.messages().is_empty());
}

#[test]
fn rustls_client_validates_and_sends_sni() {
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let w = start_file("zoo.toml");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(w.ca_der()).expect("root");
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handshake = |host: &'static str| {
        let addr = w.smtp_addr(host).expect("addr");
        let config = config.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut io = BufReader::new(tcp);
            let mut line = String::new();
            io.read_line(&mut line).await.expect("greeting");
            io.get_mut()
                .write_all(b"EHLO rust.test\r\n")
                .await
                .expect("ehlo");
            loop {
                line.clear();
                io.read_line(&mut line).await.expect("ehlo reply");
                if line.as_bytes().get(3) == Some(&b' ') {
                    break;
                }
            }
            io.get_mut()
                .write_all(b"STARTTLS\r\n")
                .await
                .expect("starttls");
            line.clear();
            io.read_line(&mut line).await.expect("220");
            assert!(line.starts_with("220"), "{line}");
            let name = ServerName::try_from(host).expect("name");
            tokio_rustls::TlsConnector::from(config)
                .connect(name, io.into_inner())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    rt.block_on(async {
        handshake("mx1.good-enforce.test")
            .await
            .expect("valid certificate");
        let err = handshake("mx1.mx-self-signed.test")
            .await
            .expect_err("self-signed");
        assert!(err.contains("UnknownIssuer"), "{err}");
        let err = handshake("mx1.expired-mx-cert.test")
            .await
            .expect_err("expired");
        assert!(err.to_ascii_lowercase().contains("expired"), "{err}");
        let err = handshake("mx1.mx-wrong-name.test")
            .await
            .expect_err("wrong name");
        let err = err.to_ascii_lowercase().replace(' ', "");
        assert!(err.contains("notvalidforname"), "{err}");
    });
    let s = w.smtp_sessions_for("mx1.good-enforce.test");
    assert_eq!(
        s[0].tls.as_ref().and_then(|t| t.sni.as_deref()),
        Some("mx1.good-enforce.test")
    );
}

#[test]
fn runtime_changes_to_hosts() {
    let w = start_file("minimal.toml");
    let host = "mx1.good-enforce.test";
    let ehlo = |w: &World| {
        let mut c = Smtp::connect(w, host);
        c.reply();
        c.cmd("EHLO client.test")
    };
    assert!(ehlo(&w).contains("STARTTLS"));
    w.set_starttls(host, StarttlsMode::Strip).expect("strip");
    assert!(!ehlo(&w).contains("STARTTLS"));
    w.set_starttls(host, StarttlsMode::Offer).expect("offer");
    assert!(ehlo(&w).contains("STARTTLS"));
    w.set_cert(host, CertKind::SelfSigned.into()).expect("cert");
    assert!(verify(&w, host, None).contains("self-signed certificate"));
    w.set_host(
        host,
        HostSpec {
            replies: vec![ReplyFault {
                stage: SmtpStage::Ehlo,
                code: 554,
                text: None,
            }],
            ..HostSpec::default()
        },
    )
    .expect("set host");
    assert_eq!(ehlo(&w), "554 lab-injected failure\r\n");
    let err = w
        .set_host(
            host,
            HostSpec {
                backends: vec![Default::default(), Default::default()],
                ..HostSpec::default()
            },
        )
        .expect_err("backend count is fixed");
    assert!(err.to_string().contains("backend"), "{err}");
    assert!(w.set_starttls("nothere.test", StarttlsMode::Strip).is_err());
}

#[test]
fn messages_are_also_written_to_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario::from_file(&common::scenario_path("minimal.toml")).expect("scenario");
    let w = World::start(
        &scenario,
        WorldOptions {
            messages_dir: Some(dir.path().to_owned()),
            ..WorldOptions::default()
        },
    )
    .expect("world");
    let mut c = Smtp::connect(&w, "mx1.no-policy.test");
    c.reply();
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<a@b.test>");
    c.cmd("RCPT TO:<c@no-policy.test>");
    c.cmd("DATA");
    assert!(c.cmd("Subject: saved\r\n\r\nbody\r\n.").starts_with("250"));
    let id = w.messages()[0].id;
    let eml = std::fs::read_to_string(dir.path().join(format!("{id}.eml"))).expect("eml");
    assert_eq!(eml, "Subject: saved\r\n\r\nbody\r\n");
    let meta = std::fs::read_to_string(dir.path().join(format!("{id}.json"))).expect("json");
    assert!(meta.contains("\"mail_from\": \"a@b.test\""), "{meta}");
}
