//! The checker's DNS edge against the lab: the hand-made AD-flag query (RFC 6840 §5.7) that
//! hickory's resolver cannot make, CNAME detection, null and implicit MX.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use mtasts_check::dns as probe;
use mtasts_check::obs::{AddressLookup, MxLookup};
use mtasts_lab::{Scenario, World, WorldOptions};
use mtasts_net::dns::{Dns, DnsLookup, DnsSettings, QueryType};

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
    let settings = |server, timeout| DnsSettings {
        servers: vec![server],
        timeout,
        attempts: 2,
    };
    let dns = Dns::new(&settings(w.dns_addr(), Duration::from_secs(3))).unwrap();
    assert!(dns.authenticated("signed.test", QueryType::Mx).await);
    assert!(!dns.authenticated("plain.test", QueryType::Mx).await);
    // No server answering: false after the timeout, never an error.
    let silent = Dns::new(&settings(
        "127.0.0.1:9".parse().unwrap(),
        Duration::from_millis(300),
    ))
    .unwrap();
    assert!(!silent.authenticated("signed.test", QueryType::Mx).await);

    assert!(matches!(
        probe::mx(&dns, "nullmx.test").await.0,
        MxLookup::Null
    ));
    assert!(matches!(
        probe::mx(&dns, "plain.test").await.0,
        MxLookup::Found { records } if records == vec![(10, "mx1.plain.test".to_owned())]
    ));
    assert!(matches!(
        probe::mx(&dns, "nonexistent.test").await.0,
        MxLookup::NxDomain
    ));
    let (a, cname) = probe::addresses(&dns, "mx1.plain.test").await;
    assert!(matches!(a, AddressLookup::Found { .. }));
    assert_eq!(cname, None);
    w.shutdown();
}
