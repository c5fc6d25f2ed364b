//! The ingest pipeline against real parts: a lab world serving the DKIM keys over DNS,
//! report e-mails composed and signed by dkimpy (an independent signer), and an SQLite store.
//! RFC 8460 §3: a mailed report counts only with a valid DKIM signature of the reporting
//! domain, without `l=`.

use std::time::Duration;

use mtasts_core::tlsrpt::dkim::DkimRequirements;
use mtasts_core::tlsrpt::report::ReportLimits;
use mtasts_lab::{World, WorldOptions};
use mtasts_net::dns::{Dns, DnsSettings};
use mtasts_test_support::dkim::{Signer, Signing};
use mtasts_tlsrpt_receive::ingest::{Arrival, Delivery, Ingester, Retried};
use mtasts_tlsrpt_store::{Filter, Store, Trust, Via};

const SUBMITTER: &str = "good-enforce.test";

fn report(id: &str, successful: u64) -> Vec<u8> {
    format!(
        r#"{{"organization-name":"Good Enforce Inc.","date-range":{{"start-datetime":"2026-11-20T00:00:00Z","end-datetime":"2026-11-20T23:59:59Z"}},"contact-info":"tlsrpt@good-enforce.test","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.customer.test","max_age: 86400"],"policy-domain":"customer.test"}},"summary":{{"total-successful-session-count":{successful},"total-failure-session-count":0}}}}]}}"#
    )
    .into_bytes()
}

struct Fixture {
    world: World,
    signer: Signer,
    ingester: Ingester,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Option<Fixture> {
    let signer = Signer::new(SUBMITTER, "tlsrpt")?;
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
    let ingester = Ingester::new(
        store,
        dns.shared(),
        ReportLimits::default(),
        DkimRequirements::default(),
    );
    Some(Fixture {
        world,
        signer,
        ingester,
        _dir: dir,
    })
}

fn mail(f: &Fixture, id: &str, signing: Signing) -> Vec<u8> {
    f.signer
        .report_mail(&report(id, 10), "customer.test", SUBMITTER, id, signing)
}

async fn ingest(f: &Fixture, bytes: &[u8], origin: &str) -> Arrival {
    f.ingester
        .ingest(&Delivery {
            bytes,
            via: Via::File,
            origin,
            too_large: None,
            received_at: std::time::SystemTime::now().into(),
        })
        .await
        .expect("ingest")
}

fn reason(a: &Arrival) -> String {
    match a {
        Arrival::Quarantined { reason, .. } => reason.code.clone(),
        other => format!("{other:?}"),
    }
}

async fn counted_sessions(f: &Fixture, include_unverified: bool) -> u64 {
    f.ingester
        .store()
        .summary(&Filter {
            include_unverified,
            ..Filter::default()
        })
        .await
        .expect("summary")
        .iter()
        .map(|d| d.successful + d.failed)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s3_signed_report_verifies_and_counts_once() {
    let Some(f) = fixture().await else { return };
    let m = mail(&f, "r-1@good-enforce.test", Signing::Tlsrpt);
    let a = ingest(&f, &m, "one.eml").await;
    assert!(
        matches!(
            a,
            Arrival::Stored {
                trust: Trust::Verified,
                ..
            }
        ),
        "{a:?}"
    );
    assert_eq!(counted_sessions(&f, false).await, 10);
    // The same mail again, and the same report by another path: duplicates.
    assert!(matches!(
        ingest(&f, &m, "again.eml").await,
        Arrival::Duplicate { .. }
    ));
    let bare = report("r-1@good-enforce.test", 10);
    assert!(matches!(
        ingest(&f, &bare, "r.json").await,
        Arrival::Duplicate { .. }
    ));
    assert_eq!(counted_sessions(&f, false).await, 10);
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s3_changed_body_and_unsigned_are_quarantined_and_not_counted() {
    let Some(f) = fixture().await else { return };
    let good = mail(&f, "r-2@good-enforce.test", Signing::Tlsrpt);
    // One byte of the body changed: in the base64 of the attachment, after the headers.
    let mut tampered = good.clone();
    let body_at = tampered
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    let b64 = tampered[body_at..]
        .windows(5)
        .position(|w| w == b"H4sIA")
        .expect("gzip attachment")
        + body_at
        + 8;
    tampered[b64] = if tampered[b64] == b'A' { b'B' } else { b'A' };
    let a = ingest(&f, &tampered, "tampered.eml").await;
    assert_eq!(reason(&a), "dkim.fail", "{a:?}");
    let unsigned = mail(&f, "r-3@good-enforce.test", Signing::Unsigned);
    let a = ingest(&f, &unsigned, "unsigned.eml").await;
    assert_eq!(reason(&a), "dkim.none", "{a:?}");
    assert_eq!(
        counted_sessions(&f, false).await,
        0,
        "left out of the statistics"
    );
    assert_eq!(counted_sessions(&f, true).await, 20, "counted on request");
    let q = f.ingester.store().quarantined().await.expect("list");
    assert_eq!(q.len(), 2);
    assert!(q.iter().all(|e| e.report.is_some()), "{q:?}");
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s3_l_tag_is_quarantined() {
    let Some(f) = fixture().await else { return };
    let m = mail(&f, "r-4@good-enforce.test", Signing::WithLength);
    assert!(
        String::from_utf8_lossy(&m).contains(" l="),
        "dkimpy was asked for l="
    );
    let a = ingest(&f, &m, "l.eml").await;
    assert_eq!(reason(&a), "dkim.length-limit", "{a:?}");
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s3_key_lookup_failure_is_retried_after_dns_is_fixed() {
    let Some(f) = fixture().await else { return };
    let key = f.signer.key_name();
    f.world.remove_name(&key).expect("remove key");
    let m = mail(&f, "r-5@good-enforce.test", Signing::Tlsrpt);
    let a = ingest(&f, &m, "nokey.eml").await;
    assert_eq!(reason(&a), "dkim.fail", "{a:?}");
    let Arrival::Quarantined { entry, .. } = a else {
        unreachable!()
    };
    // Still no key: still quarantined.
    let r = f.ingester.retry(entry, false).await.expect("retry");
    assert!(matches!(r, Some(Retried::Still(_))), "{r:?}");
    f.world
        .set_txt(&key, &[&f.signer.key_record(true)])
        .expect("key back");
    let r = f.ingester.retry(entry, false).await.expect("retry");
    assert!(
        matches!(
            r,
            Some(Retried::Released {
                trust: Trust::Verified,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(
        f.ingester
            .store()
            .quarantined()
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(counted_sessions(&f, false).await, 10);
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s3_signature_of_another_domain_is_not_the_reporting_domain() {
    let Some(f) = fixture().await else { return };
    // Signed by good-enforce.test, but claiming google.com sent it.
    let m = f.signer.report_mail(
        &report("r-6@google.com", 10).replace_contact("google.com"),
        "customer.test",
        "google.com",
        "r-6@google.com",
        Signing::Tlsrpt,
    );
    let a = ingest(&f, &m, "forged.eml").await;
    assert_eq!(reason(&a), "dkim.not-reporting-domain", "{a:?}");
    f.world.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8460_s5_3_not_a_report_is_quarantined_with_the_input_kept() {
    let Some(f) = fixture().await else { return };
    let a = ingest(&f, b"hello, not a report", "junk.txt").await;
    let Arrival::Quarantined {
        entry,
        reason,
        report,
    } = &a
    else {
        panic!("{a:?}")
    };
    assert!(report.is_none());
    assert!(reason.message.starts_with("junk.txt: "), "{reason:?}");
    let (_, raw) = f
        .ingester
        .store()
        .quarantine_entry(*entry)
        .await
        .expect("entry")
        .expect("present");
    assert_eq!(raw, b"hello, not a report");
    f.world.shutdown();
}

trait ReplaceContact {
    fn replace_contact(self, domain: &str) -> Vec<u8>;
}

impl ReplaceContact for Vec<u8> {
    fn replace_contact(self, domain: &str) -> Vec<u8> {
        String::from_utf8(self)
            .expect("utf-8")
            .replace("tlsrpt@good-enforce.test", &format!("tlsrpt@{domain}"))
            .into_bytes()
    }
}
