//! Report e-mails fetched over IMAP into the ingest pipeline, against real parts: a private
//! Dovecot (IMAPS and STARTTLS, a lab CA), report mails composed and signed by dkimpy, a lab
//! world serving the DKIM key, and an SQLite store. Small fake servers stand in only for
//! what Dovecot never does (no STARTTLS, a refused or spliced STARTTLS).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtasts_core::tlsrpt::dkim::DkimRequirements;
use mtasts_core::tlsrpt::payload;
use mtasts_core::tlsrpt::report::ReportLimits;
use mtasts_lab::{World, WorldOptions};
use mtasts_net::TrustRoots;
use mtasts_net::dns::{Dns, DnsSettings};
use mtasts_test_support::GUARD;
use mtasts_test_support::dkim::{Signer, Signing};
use mtasts_test_support::dovecot::{Dovecot, DovecotOptions};
use mtasts_tlsrpt_receive::imap::{ImapError, ImapIngester, ImapLimits, ImapSource};
use mtasts_tlsrpt_receive::ingest::{Counts, Ingester};
use mtasts_tlsrpt_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SUBMITTER: &str = "good-enforce.test";

struct Fixture {
    dovecot: Dovecot,
    world: World,
    signer: Signer,
    ingester: Ingester,
    _dir: tempfile::TempDir,
}

async fn fixture_with(options: DovecotOptions, limits: ReportLimits) -> Option<Fixture> {
    let signer = Signer::new(SUBMITTER, "tlsrpt")?;
    let dovecot = Dovecot::start_with(options)?;
    let world = World::start(
        &mtasts_test_support::scenario("minimal.toml"),
        WorldOptions::default(),
    )
    .expect("lab");
    world
        .set_txt(&signer.key_name(), &[&signer.key_record(true)])
        .expect("key record");
    let dns = Dns::new(&DnsSettings {
        servers: vec![world.dns_addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .expect("dns");
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("reports.db").display().to_string())
        .await
        .expect("store");
    let ingester = Ingester::new(store, dns.shared(), limits, DkimRequirements::default());
    Some(Fixture {
        dovecot,
        world,
        signer,
        ingester,
        _dir: dir,
    })
}

async fn fixture() -> Option<Fixture> {
    fixture_with(DovecotOptions::default(), ReportLimits::default()).await
}

fn report(id: &str) -> Vec<u8> {
    format!(
        r#"{{"organization-name":"Good Enforce Inc.","date-range":{{"start-datetime":"2026-11-20T00:00:00Z","end-datetime":"2026-11-20T23:59:59Z"}},"contact-info":"tlsrpt@good-enforce.test","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.customer.test","max_age: 86400"],"policy-domain":"customer.test"}},"summary":{{"total-successful-session-count":10,"total-failure-session-count":0}}}}]}}"#
    )
    .into_bytes()
}

impl Fixture {
    fn mail(&self, id: &str, signing: Signing) -> Vec<u8> {
        self.signer
            .report_mail(&report(id), "customer.test", SUBMITTER, id, signing)
    }

    fn source(&self, url: &str, move_to: Option<&str>) -> ImapSource {
        let mut s = ImapSource::new(url, &self.dovecot.password_file()).expect("source");
        s.roots = TrustRoots::Path(self.dovecot.ca_pem_path());
        s.move_to = move_to.map(str::to_owned);
        s.limits = ImapLimits {
            batch_size: 7,
            backoff_first: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            ..ImapLimits::default()
        };
        s
    }

    fn imap(&self, move_to: Option<&str>) -> ImapIngester {
        ImapIngester::new(
            self.source(&self.dovecot.imaps_url("INBOX"), move_to),
            self.ingester.clone(),
        )
        .expect("imap")
    }

    async fn reports(&self) -> u64 {
        self.ingester
            .store()
            .totals()
            .await
            .expect("totals")
            .reports
    }
}

fn counts(read: u64, stored: u64, duplicates: u64, quarantined: u64) -> Counts {
    Counts {
        read,
        stored,
        duplicates,
        quarantined,
    }
}

/// The report JSON of every corpus file (`expected.tsv`), with its key.
fn corpus() -> Vec<(String, Vec<u8>, (String, String))> {
    let dir = mtasts_test_support::report_corpus();
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let file = l.split('\t').next().expect("file").to_owned();
            let bytes = std::fs::read(dir.join(&file)).expect("corpus file");
            let json = payload::extract(&bytes, &ReportLimits::default())
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .json;
            let r = payload::parse_payload(&json, &ReportLimits::default())
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .report;
            let key = (
                r.organization_name.unwrap_or_default(),
                r.report_id.unwrap_or_default(),
            );
            (file, json, key)
        })
        .collect()
}

/// Every corpus report as a dkimpy-signed mail (signed on a few threads: one Python each).
fn corpus_mails(f: &Fixture) -> Vec<Vec<u8>> {
    let reports = corpus();
    let chunks: Vec<_> = reports.chunks(reports.len().div_ceil(4)).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(|| {
                    chunk
                        .iter()
                        .map(|(_, json, (_, id))| {
                            let id = if id.is_empty() { "no-id" } else { id.as_str() };
                            f.signer.report_mail(
                                json,
                                "customer.test",
                                SUBMITTER,
                                id,
                                Signing::Tlsrpt,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_corpus_is_ingested_verified_moved_and_then_only_duplicates() {
    let Some(f) = fixture().await else { return };
    let reports = corpus();
    let keys: std::collections::HashSet<_> = reports.iter().map(|(_, _, k)| k.clone()).collect();
    let n = reports.len() as u64;
    let distinct = keys.len() as u64;
    assert!(
        distinct < n,
        "the corpus holds the same report more than once"
    );
    let mails = corpus_mails(&f);
    for m in &mails {
        f.dovecot.append("INBOX", m);
    }
    assert_eq!(f.dovecot.count("INBOX"), mails.len());
    let imap = f.imap(Some("Processed"));
    let c = imap.run_once().await.expect("first pass");
    assert_eq!(c, counts(n, distinct, n - distinct, 0), "{c}");
    // Verified, every one: a mailed report that is not is quarantined.
    let q = f.ingester.store().quarantined().await.expect("quarantine");
    assert!(q.is_empty(), "{q:?}");
    assert_eq!(f.reports().await, distinct);
    assert_eq!(f.dovecot.count("INBOX"), 0, "moved away");
    assert_eq!(f.dovecot.count("Processed"), mails.len());
    // Nothing left to read.
    assert_eq!(
        imap.run_once().await.expect("second pass"),
        counts(0, 0, 0, 0)
    );
    // The same mails again: the store knows every report.
    for m in &mails {
        f.dovecot.append("INBOX", m);
    }
    let c = imap.run_once().await.expect("third pass");
    assert_eq!(c, counts(n, 0, n, 0), "{c}");
    assert_eq!(f.dovecot.count("Processed"), 2 * mails.len());
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_move_to_processed_mail_is_flagged_and_not_read_again() {
    let Some(f) = fixture().await else { return };
    for id in ["f-1@good-enforce.test", "f-2@good-enforce.test"] {
        f.dovecot.append("INBOX", &f.mail(id, Signing::Tlsrpt));
    }
    let imap = f.imap(None);
    assert_eq!(imap.run_once().await.expect("pass"), counts(2, 2, 0, 0));
    // A new connection: the flags were stored on the server, not in the session.
    assert_eq!(imap.run_once().await.expect("pass"), counts(0, 0, 0, 0));
    assert_eq!(f.dovecot.count("INBOX"), 2, "left where they were");
    f.dovecot
        .append("INBOX", &f.mail("f-3@good-enforce.test", Signing::Tlsrpt));
    assert_eq!(imap.run_once().await.expect("pass"), counts(1, 1, 0, 0));
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_mail_is_quarantined_marked_and_named_by_its_imap_url() {
    let Some(f) = fixture().await else { return };
    f.dovecot
        .append("INBOX", &f.mail("u-1@good-enforce.test", Signing::Unsigned));
    let imap = f.imap(None);
    assert_eq!(imap.run_once().await.expect("pass"), counts(1, 0, 0, 1));
    let q = f.ingester.store().quarantined().await.expect("quarantine");
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].reason.code, "dkim.none", "{q:?}");
    // RFC 5092: imaps://user@host:port/folder;UIDVALIDITY=v/;UID=n, and no password.
    let origin = &q[0].origin;
    let prefix = format!(
        "{}/INBOX;UIDVALIDITY=",
        f.dovecot.imaps_url("").trim_end_matches('/')
    );
    assert!(origin.starts_with(&prefix), "{origin}");
    assert!(origin.ends_with("/;UID=1"), "{origin}");
    assert!(!origin.contains(f.dovecot.password()), "{origin}");
    assert_eq!(imap.run_once().await.expect("pass"), counts(0, 0, 0, 0));
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_message_is_quarantined_with_its_first_bytes() {
    let limits = ReportLimits {
        max_input_bytes: 6000,
        ..ReportLimits::default()
    };
    let Some(f) = fixture_with(DovecotOptions::default(), limits).await else {
        return;
    };
    let small = f.mail("s-1@good-enforce.test", Signing::Tlsrpt);
    assert!(small.len() < 6000, "{}", small.len());
    let mut big = b"From: someone@example.test\r\nSubject: large\r\n\r\n".to_vec();
    for i in 0..400 {
        big.extend_from_slice(
            format!("line {i:04} of a message far over the limit\r\n").as_bytes(),
        );
    }
    assert!(big.len() > 6000);
    f.dovecot.append("INBOX", &big);
    f.dovecot.append("INBOX", &small);
    let imap = f.imap(Some("Processed"));
    assert_eq!(imap.run_once().await.expect("pass"), counts(2, 1, 0, 1));
    let q = f.ingester.store().quarantined().await.expect("quarantine");
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].reason.code, "input.too-large", "{q:?}");
    assert!(
        q[0].reason
            .message
            .contains(&format!("{} bytes", big.len())),
        "{q:?}"
    );
    let (_, kept) = f
        .ingester
        .store()
        .quarantine_entry(q[0].id)
        .await
        .expect("entry")
        .expect("present");
    assert_eq!(kept, big[..6000], "its first bytes, exactly");
    assert_eq!(f.dovecot.count("INBOX"), 0, "both processed");
    f.world.shutdown();
}

type Passes = Arc<Mutex<Vec<Counts>>>;

/// Waits (with the guard, not as a timing assertion) until the watch has reported passes that
/// stored `n` reports, and the store holds them.
async fn until_stored(f: &Fixture, passes: &Passes, n: u64) {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let reported: u64 = passes.lock().expect("lock").iter().map(|c| c.stored).sum();
        if reported >= n && f.reports().await >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {n} reports; Dovecot's log:\n{}",
            f.dovecot.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watching_ingests_new_mail_and_reconnects_after_the_server_restarts() {
    let Some(mut f) = fixture().await else { return };
    let mails: Vec<Vec<u8>> = (0..4)
        .map(|i| f.mail(&format!("w-{i}@good-enforce.test"), Signing::Tlsrpt))
        .collect();
    f.dovecot.append("INBOX", &mails[0]);
    let imap = f.imap(Some("Processed"));
    let passes = Passes::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let seen = passes.clone();
    let task = tokio::spawn(async move {
        imap.watch(
            async move {
                let _ = stopped.await;
            },
            move |c: &Counts| seen.lock().expect("lock").push(*c),
        )
        .await
    });
    // The mail already there, then one that arrives while the watch is idle.
    until_stored(&f, &passes, 1).await;
    f.dovecot.append("INBOX", &mails[1]);
    until_stored(&f, &passes, 2).await;
    // The server goes away; mail arrives meanwhile; the server comes back on the same ports.
    tokio::task::block_in_place(|| f.dovecot.stop());
    f.dovecot.append("INBOX", &mails[2]);
    tokio::task::block_in_place(|| f.dovecot.restart());
    until_stored(&f, &passes, 3).await;
    // Its connections are cut, without a word.
    f.dovecot.kick();
    f.dovecot.append("INBOX", &mails[3]);
    until_stored(&f, &passes, 4).await;
    stop.send(()).expect("the watch is running");
    let total = tokio::time::timeout(GUARD, task)
        .await
        .expect("the watch ends when asked")
        .expect("joined")
        .expect("no error");
    assert_eq!(total, counts(4, 4, 0, 0), "{total}");
    let per_pass = passes.lock().expect("lock").clone();
    assert_eq!(
        per_pass.iter().map(|c| c.read).sum::<u64>(),
        4,
        "{per_pass:?}"
    );
    assert_eq!(f.dovecot.count("INBOX"), 0);
    assert_eq!(f.dovecot.count("Processed"), 4);
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn imap_url_uses_starttls_and_a_wrong_ca_is_refused() {
    let Some(f) = fixture().await else { return };
    f.dovecot
        .append("INBOX", &f.mail("t-1@good-enforce.test", Signing::Tlsrpt));
    // Dovecot's log says how each login was secured: ", TLS" (STARTTLS here), not
    // "secured" (a plaintext login it trusts because it came from the same host).
    let imap = ImapIngester::new(
        f.source(&f.dovecot.imap_url("INBOX"), None),
        f.ingester.clone(),
    )
    .expect("imap");
    assert_eq!(imap.run_once().await.expect("pass"), counts(1, 1, 0, 0));
    let log = f.dovecot.log();
    let login = log
        .lines()
        .rfind(|l| l.contains("Login: user=<reports>"))
        .unwrap_or_else(|| panic!("no login in the log:\n{log}"));
    assert!(login.contains(", TLS"), "{login}");
    // A CA that did not issue the server's certificate.
    let mut other = f.source(&f.dovecot.imaps_url("INBOX"), None);
    let other_ca = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(
        other_ca.path(),
        mtasts_lab::pki::Pki::new("other").expect("pki").root_pem(),
    )
    .expect("write");
    other.roots = TrustRoots::Path(other_ca.path().to_path_buf());
    let e = ImapIngester::new(other, f.ingester.clone())
        .expect("imap")
        .run_once()
        .await
        .expect_err("untrusted");
    assert!(matches!(e, ImapError::Tls { .. }), "{e}");
    assert!(
        !e.is_fatal(),
        "a certificate can be fixed on the server: {e}"
    );
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_a_clear_error_and_ends_a_watch() {
    let Some(f) = fixture().await else { return };
    let dir = tempfile::tempdir().expect("dir");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "not-the-password\n").expect("write");
    let mut source = ImapSource::new(&f.dovecot.imaps_url("INBOX"), &pw).expect("source");
    source.roots = TrustRoots::Path(f.dovecot.ca_pem_path());
    let imap = ImapIngester::new(source, f.ingester.clone()).expect("imap");
    let e = imap.run_once().await.expect_err("refused");
    let text = e.to_string();
    assert!(matches!(e, ImapError::LoginRefused { .. }), "{text}");
    assert!(e.is_fatal());
    assert!(text.contains("\"reports\""), "names the user: {text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", f.dovecot.imaps_addr().port())),
        "names the server: {text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
    // A watch does not retry it: it returns (a retry loop would not).
    let r = tokio::time::timeout(GUARD, imap.watch(std::future::pending(), |_| {}))
        .await
        .expect("the watch gives up at once");
    assert!(matches!(r, Err(ImapError::LoginRefused { .. })), "{r:?}");
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_move_the_fallbacks_still_take_processed_mail_out_of_the_search() {
    // Dovecot announcing no MOVE (and, in the second server, no UIDPLUS either): COPY, then
    // \Deleted and UID EXPUNGE (INBOX empties), or only the flags (the copies stay in INBOX,
    // out of the search), where MOVE would have emptied INBOX in both.
    for (caps, left_in_inbox) in [
        ("IMAP4rev1 LITERAL+ IDLE UIDPLUS", 0),
        ("IMAP4rev1 LITERAL+ IDLE", 2),
    ] {
        let options = DovecotOptions {
            capability: Some(caps.into()),
            ..DovecotOptions::default()
        };
        let Some(f) = fixture_with(options, ReportLimits::default()).await else {
            return;
        };
        for id in ["m-1@good-enforce.test", "m-2@good-enforce.test"] {
            f.dovecot.append("INBOX", &f.mail(id, Signing::Tlsrpt));
        }
        let imap = f.imap(Some("Archive/TLSRPT"));
        assert_eq!(
            imap.run_once().await.expect("pass"),
            counts(2, 2, 0, 0),
            "{caps}"
        );
        assert_eq!(
            imap.run_once().await.expect("pass"),
            counts(0, 0, 0, 0),
            "{caps}"
        );
        assert_eq!(f.dovecot.count("Archive/TLSRPT"), 2, "{caps}");
        assert_eq!(f.dovecot.count("INBOX"), left_in_inbox, "{caps}");
        f.world.shutdown();
    }
}

/// A fake `imap://` server: sends `script[0]`, then answers the n-th command line with
/// `script[n]`; returns what it received.
async fn fake_server(script: Vec<&'static str>) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut got = Vec::new();
        s.write_all(script[0].as_bytes()).await.expect("greeting");
        for answer in &script[1..] {
            let mut line = Vec::new();
            loop {
                let mut b = [0u8; 1];
                if s.read(&mut b).await.unwrap_or(0) == 0 {
                    return String::from_utf8_lossy(&got).into_owned();
                }
                line.push(b[0]);
                if line.ends_with(b"\r\n") {
                    break;
                }
            }
            got.extend_from_slice(&line);
            s.write_all(answer.as_bytes()).await.expect("answer");
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        got.extend_from_slice(&rest);
        String::from_utf8_lossy(&got).into_owned()
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imap_server_without_starttls_is_refused_before_any_login() {
    let Some(f) = fixture().await else { return };
    let cases: Vec<(Vec<&'static str>, &str)> = vec![
        // STARTTLS missing from the greeting's capabilities.
        (
            vec!["* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n"],
            "does not offer STARTTLS",
        ),
        // Asked for, and still missing.
        (
            vec![
                "* OK fake ready\r\n",
                "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nm1 OK done\r\n",
            ],
            "does not offer STARTTLS",
        ),
        // Offered, then refused.
        (
            vec![
                "* OK [CAPABILITY IMAP4rev1 STARTTLS] fake ready\r\n",
                "m2 NO not today\r\n",
            ],
            "refused STARTTLS: not today",
        ),
        // Already logged in, in the clear.
        (vec!["* PREAUTH hello\r\n"], "PREAUTH"),
    ];
    for (script, expected) in cases {
        let (port, server) = fake_server(script.clone()).await;
        let url = format!("imap://reports@127.0.0.1:{port}/INBOX");
        let imap = ImapIngester::new(f.source(&url, None), f.ingester.clone()).expect("imap");
        let e = imap.run_once().await.expect_err("refused");
        assert!(matches!(e, ImapError::NoStartTls { .. }), "{script:?}: {e}");
        assert!(e.is_fatal());
        let text = e.to_string();
        assert!(text.contains(expected), "{script:?}: {text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        let got = tokio::time::timeout(GUARD, server)
            .await
            .expect("server ends")
            .expect("joined");
        assert!(!got.contains("LOGIN") && !got.contains("s3cret"), "{got}");
    }
    // Bytes spliced in after the STARTTLS answer, before the handshake.
    let (port, server) = fake_server(vec![
        "* OK [CAPABILITY IMAP4rev1 STARTTLS] fake ready\r\n",
        "m2 OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n",
    ])
    .await;
    let url = format!("imap://reports@127.0.0.1:{port}/INBOX");
    let imap = ImapIngester::new(f.source(&url, None), f.ingester.clone()).expect("imap");
    let e = imap.run_once().await.expect_err("refused");
    assert!(e.to_string().contains("injection"), "{e}");
    let got = tokio::time::timeout(GUARD, server)
        .await
        .expect("server ends")
        .expect("joined");
    assert!(!got.contains("LOGIN"), "{got}");
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mark_that_does_not_hold_is_a_clear_error_not_an_endless_reread() {
    let options = DovecotOptions {
        read_only: true,
        ..DovecotOptions::default()
    };
    let Some(f) = fixture_with(options, ReportLimits::default()).await else {
        return;
    };
    f.dovecot
        .append("INBOX", &f.mail("ro-1@good-enforce.test", Signing::Tlsrpt));
    let e = f.imap(None).run_once().await.expect_err("read-only");
    assert!(matches!(e, ImapError::NotMarked { .. }), "{e}");
    assert!(e.is_fatal());
    let text = e.to_string();
    assert!(
        text.contains("\"INBOX\"") && text.contains("UIDs 1"),
        "{text}"
    );
    // Ingested all the same: marking comes after storing.
    assert_eq!(f.reports().await, 1);
    f.world.shutdown();
}
