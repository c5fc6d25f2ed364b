//! DANE first (RFC 8461 §2, RFC 7672) through the real daemon, against a lab world with
//! signed zones and TLSA records derived from the MX hosts' certificates: the socketmap
//! answers per zone, with and without TLSRPT attributes, and the metrics.
#![allow(missing_docs)]

mod common;

use common::{http_get, sample, start};
use mtasts_lab::Scenario;
use mtasts_postfix::socketmap::{DaneMode, ZoneOptions};

fn scenario() -> Scenario {
    Scenario::from_toml_str(
        r#"
        [lab]
        name = "daemon-dane"

        [domains."dane.test"]
        comment = "signed, usable 3 1 1 for the private-CA MX, and an enforce policy"
        dnssec_signed = true
        sts_txt = ["v=STSv1; id=1;"]
        mx = ["10 mx1.dane.test"]
        [domains."dane.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mx1.dane.test"]
        [domains."dane.test".hosts.mx1]
        cert = "untrusted-ca"
        tlsa = ["3 1 1"]

        [domains."partial.test"]
        comment = "signed, mx1 with DANE-TA, mx2 with a proven absence of TLSA records"
        dnssec_signed = true
        sts_txt = ["v=STSv1; id=1;"]
        mx = ["10 mx1.partial.test", "20 mx2.partial.test"]
        [domains."partial.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["*.partial.test"]
        [domains."partial.test".hosts.mx1]
        tlsa = ["2 1 1"]

        [domains."bogus.test"]
        comment = "signed, the TLSA RRset is bogus"
        dnssec_signed = true
        sts_txt = ["v=STSv1; id=1;"]
        mx = ["10 mx1.bogus.test"]
        [domains."bogus.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mx1.bogus.test"]
        [domains."bogus.test".hosts.mx1]
        tlsa = ["3 1 1"]
        [domains."bogus.test".dns."_25._tcp.mx1"]
        fault = "bogus"
        fault_types = ["TLSA"]

        [domains."plain.test"]
        comment = "no DNSSEC, an enforce policy"
        sts_txt = ["v=STSv1; id=1;"]
        mx = ["10 mx1.plain.test"]
        [domains."plain.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mx1.plain.test"]

        [domains."nosts.test"]
        comment = "signed, usable TLSA, no MTA-STS"
        dnssec_signed = true
        mx = ["10 mx1.nosts.test"]
        [domains."nosts.test".hosts.mx1]
        tlsa = ["3 1 1"]
        "#,
        "<dane scenario>",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

const SECURE_DANE: &str = "OK secure match=mx1.dane.test servername=hostname";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8461_s2_dane_zone_answers_dane_first_and_off_zone_as_before() {
    let h = start(&scenario(), |c| {
        let dane = |tlsrpt| {
            mtasts_daemon::ZoneOverrides::from(ZoneOptions {
                dane: DaneMode::On,
                tlsrpt,
                ..ZoneOptions::default()
            })
        };
        c.zones.insert("dane".into(), dane(false));
        c.zones.insert("dane-tlsrpt".into(), dane(true));
    })
    .await;
    for (map, key, want) in [
        // DANE off (the default): the MTA-STS answer, as postfix-mta-sts-resolver gives.
        ("postfix", "dane.test", SECURE_DANE),
        // RFC 8461 §2: usable TLSA records for every MX host: dane-only, whatever MTA-STS says.
        ("dane", "dane.test", "OK dane-only"),
        ("dane", "nosts.test", "OK dane-only"),
        // DANE for some hosts only: dane (Postfix gives the others pre-DANE TLS).
        ("dane", "partial.test", "OK dane"),
        // A DNSSEC failure: TEMP, never the MTA-STS answer (RFC 7672 §2.1.2).
        (
            "dane",
            "bogus.test",
            "TEMP DANE status of bogus.test unknown for now: the DNSSEC lookup of mx1.bogus.test: _25._tcp.mx1.bogus.test lookup failed: the server answered SERVFAIL",
        ),
        // No DNSSEC: MTA-STS exactly as before.
        (
            "dane",
            "plain.test",
            "OK secure match=mx1.plain.test servername=hostname",
        ),
        ("dane", "none.test", "NOTFOUND "),
        // Postfix reports DANE to TLSRPT itself: no policy_type beside a DANE level.
        ("dane-tlsrpt", "dane.test", "OK dane-only"),
    ] {
        let got = h.ask(map, key).await;
        let got = match got.split_once(": asked 127.") {
            // The SERVFAIL detail names the lab's address, which changes every run.
            Some((head, _)) => head.to_owned(),
            None => got,
        };
        assert_eq!(got, want, "{map} {key}");
    }
    // STS replies in a DANE zone with TLSRPT still carry the attributes.
    let plain = h.ask("dane-tlsrpt", "plain.test").await;
    assert!(
        plain.starts_with("OK secure match=mx1.plain.test servername=hostname policy_type=sts "),
        "{plain}"
    );
    let addr = h
        .daemon()
        .metrics_addr()
        .unwrap_or_else(|| panic!("metrics"));
    let (_, metrics) = http_get(addr, "/metrics").await;
    for (series, at_least) in [
        ("mtasts_socketmap_dane_total{decision=\"mandatory\"}", 3.0),
        (
            "mtasts_socketmap_dane_total{decision=\"opportunistic\"}",
            1.0,
        ),
        ("mtasts_socketmap_dane_total{decision=\"delay\"}", 1.0),
        (
            "mtasts_socketmap_dane_total{decision=\"not-applicable\"}",
            2.0,
        ),
        ("mtasts_resolver_dane_lookups_total", 6.0),
    ] {
        let v = sample(&metrics, series).unwrap_or(0.0);
        assert!(v >= at_least, "{series} = {v}\n{metrics}");
    }
    // dane.test was asked twice in DANE zones: the second came from memory.
    assert!(sample(&metrics, "mtasts_resolver_dane_memory_hits_total").unwrap_or(0.0) >= 1.0);
    // MX, A, TLSA for each of dane, nosts, bogus (3 each); MX, A, A, TLSA, TLSA for partial
    // (5); MX and A for plain (2); MX (NXDOMAIN) for none (1).
    assert_eq!(
        sample(&metrics, "mtasts_resolver_dane_queries_total"),
        Some(17.0),
        "{metrics}"
    );
}
