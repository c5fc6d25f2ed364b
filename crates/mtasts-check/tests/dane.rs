//! The checker's DANE report against the lab: TLSA records the lab derives from the
//! certificates its MX hosts really present, matched against the chain each MX address
//! presents in a real STARTTLS handshake; DNSSEC status from the lab's AD flags.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use mtasts_check::assess::AddressResult;
use mtasts_check::{CheckConfig, Checker};
use mtasts_core::dane::{Decision, Precedence};
use mtasts_lab::{Scenario, World, WorldOptions};

const WORLD: &str = r#"
[domains."dane-ee.test"]
comment = "signed; a private-CA certificate and its 3 1 1 record; an enforce policy"
dnssec_signed = true
sts_txt = ["v=STSv1; id=1;"]
tlsrpt_txt = ["v=TLSRPTv1; rua=mailto:tlsrpt@dane-ee.test"]
mx = ["10 mx1.dane-ee.test"]
[domains."dane-ee.test".policy]
mode = "enforce"
max_age = 604800
mx = ["mx1.dane-ee.test"]
[domains."dane-ee.test".hosts.mx1]
cert = "untrusted-ca"
tlsa = ["3 1 1"]

[domains."dane-ta.test"]
comment = "signed; a DANE-TA record of the intermediate the MX serves"
dnssec_signed = true
mx = ["10 mx1.dane-ta.test"]
[domains."dane-ta.test".hosts.mx1]
tlsa = ["2 0 1"]

[domains."mismatch.test"]
comment = "signed; a valid certificate, but the 3 1 1 record matches none"
dnssec_signed = true
mx = ["10 mx1.mismatch.test"]
[domains."mismatch.test".hosts.mx1]
tlsa = ["3 1 1 mismatch"]

[domains."pool.test"]
comment = "signed; two backends, one presenting a certificate the records do not describe"
dnssec_signed = true
mx = ["10 mx1.pool.test"]
[domains."pool.test".hosts.mx1]
tlsa = ["3 1 1"]
backends = [{}, {}]

[domains."bogus.test"]
comment = "signed; the TLSA RRset is bogus"
dnssec_signed = true
mx = ["10 mx1.bogus.test"]
[domains."bogus.test".hosts.mx1]
tlsa = ["3 1 1"]
[domains."bogus.test".dns."_25._tcp.mx1"]
fault = "bogus"
fault_types = ["TLSA"]

[domains."unsigned.test"]
comment = "unsigned; TLSA records nobody can validate"
mx = ["10 mx1.unsigned.test"]
[domains."unsigned.test".hosts.mx1]
tlsa = ["3 1 1"]
"#;

fn config(w: &World) -> CheckConfig {
    CheckConfig {
        dns: Some(w.dns_addr()),
        dns_timeout: Duration::from_secs(3),
        ca_file: Some(w.ca_pem_path().to_path_buf()),
        https_port: w.https_port(),
        smtp_port: w.smtp_port(),
        connect_timeout: Duration::from_secs(5),
        fetch_timeout: Duration::from_secs(10),
        smtp_timeout: Duration::from_secs(10),
        ..CheckConfig::default()
    }
}

fn codes(r: &mtasts_check::assess::DomainReport) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = r
        .findings
        .iter()
        .filter(|f| f.code.starts_with("dane."))
        .map(|f| f.code)
        .collect();
    c.sort_unstable();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlsa_records_are_matched_against_the_presented_chains() {
    let scenario = Scenario::from_toml_str(WORLD, "<dane>").unwrap();
    let w = World::start(&scenario, WorldOptions::default()).unwrap();
    let checker = Checker::new(config(&w)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    // DANE-EE with a private CA: authenticated by the record; MTA-STS cannot validate it.
    let r = checker.check("dane-ee.test", now).await.unwrap();
    let d = r.dane.as_ref().unwrap();
    assert_eq!(d.decision, Decision::Mandatory);
    assert_eq!(d.applies, Precedence::DaneOnly);
    assert_eq!(codes(&r), vec!["dane.mandatory", "dane.match"]);
    assert!(matches!(
        &d.addresses[0].result,
        AddressResult::Authenticated { how, .. } if how == "DANE-EE SPKI SHA2-256"
    ));
    assert!(
        d.summary
            .starts_with("DANE senders deliver to mx1.dane-ee.test [")
    );
    assert!(
        r.problem_ids()
            .contains(&"smtp.cert-untrusted-ca".to_owned()),
        "{:?}",
        r.problem_ids()
    );

    // DANE-TA: the served intermediate is the trust anchor, and the leaf names the host.
    let r = checker.check("dane-ta.test", now).await.unwrap();
    let d = r.dane.as_ref().unwrap();
    assert!(
        matches!(
            &d.addresses[0].result,
            AddressResult::Authenticated { how, .. } if how == "DANE-TA Cert SHA2-256, trust anchor at depth 1"
        ),
        "{:?}",
        d.addresses
    );

    // A valid certificate that the record does not describe: DANE senders refuse it.
    let r = checker.check("mismatch.test", now).await.unwrap();
    assert_eq!(codes(&r), vec!["dane.mandatory", "dane.mismatch"]);
    assert!(
        r.dane
            .as_ref()
            .unwrap()
            .summary
            .starts_with("DANE senders defer mail")
    );

    // Each backend has its own certificate, and the lab publishes a record for each: both match.
    let r = checker.check("pool.test", now).await.unwrap();
    let d = r.dane.as_ref().unwrap();
    assert_eq!(d.addresses.len(), 2);
    assert!(
        d.addresses
            .iter()
            .all(|a| matches!(a.result, AddressResult::Authenticated { .. }))
    );

    // A bogus TLSA RRset: DANE senders defer.
    let r = checker.check("bogus.test", now).await.unwrap();
    assert_eq!(codes(&r), vec!["dane.lookup-failed"]);
    assert!(matches!(
        r.dane.as_ref().unwrap().applies,
        Precedence::TempFail { .. }
    ));

    // Unsigned: the records exist but mean nothing.
    let r = checker.check("unsigned.test", now).await.unwrap();
    assert_eq!(codes(&r), vec!["dane.tlsa-insecure"]);
    assert_eq!(r.dane.as_ref().unwrap().applies, Precedence::MtaSts);
    w.shutdown();
}
