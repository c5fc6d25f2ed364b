//! The checker's DNS edge against the lab: the hand-made AD-flag query (RFC 6840 §5.7) that
//! hickory's resolver cannot make, CNAME detection, null and implicit MX.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use hickory_resolver::proto::rr::RecordType;
use mtasts_check::dns::Dns;
use mtasts_check::obs::{AddressLookup, MxLookup};
use mtasts_lab::{Scenario, World, WorldOptions};

const WORLD: &str = r#"
[domains."signed.test"]
comment = "a DNSSEC-signed zone"
mx = ["10 mx1.signed.test"]
[domains."signed.test".dns."@"]
dnssec_signed = true

[domains."plain.test"]
comment = "an unsigned zone"
mx = ["10 mx1.plain.test"]

[domains."nullmx.test"]
comment = "accepts no mail"
mx = ["0 ."]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_flag_query_and_mx_forms() {
    let scenario = Scenario::from_toml_str(WORLD, "<test>").unwrap();
    let w = World::start(&scenario, WorldOptions::default()).unwrap();
    let dns = Dns::new(Some(w.dns_addr()), Duration::from_secs(3)).unwrap();
    assert!(dns.authenticated("signed.test", RecordType::MX).await);
    assert!(!dns.authenticated("plain.test", RecordType::MX).await);
    // No server answering: false after the timeout, never an error.
    let silent = Dns::new(
        Some("127.0.0.1:9".parse().unwrap()),
        Duration::from_millis(300),
    )
    .unwrap();
    assert!(!silent.authenticated("signed.test", RecordType::MX).await);

    assert!(matches!(dns.mx("nullmx.test").await.0, MxLookup::Null));
    assert!(matches!(
        dns.mx("plain.test").await.0,
        MxLookup::Found { records } if records == vec![(10, "mx1.plain.test".to_owned())]
    ));
    assert!(matches!(
        dns.mx("nonexistent.test").await.0,
        MxLookup::NxDomain
    ));
    let (a, cname) = dns.addresses("mx1.plain.test").await;
    assert!(matches!(a, AddressLookup::Found { .. }));
    assert_eq!(cname, None);
    w.shutdown();
}
