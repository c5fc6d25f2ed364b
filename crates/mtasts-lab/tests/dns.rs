//! The lab DNS server, checked with `dig` and with hickory-resolver.

mod common;

use std::time::{Duration, Instant};

use common::{dig, dig_short, dig_status, start_inline, text};
use mtasts_lab::{DnsFault, DnsNameSpec};

const KNOBS: &str = r#"
[domains."knobs.test"]
comment = "every DNS knob"
sts_txt = ["v=STSv1; id=1;", ["v=STSv1; ", "id=2;"]]
tlsrpt_txt = ["v=TLSRPTv1; rua=mailto:r@knobs.test"]
mx = ["10 mx1.knobs.test", "20 mx2.knobs.test"]
[domains."knobs.test".dns.slow]
txt = ["slow"]
delay_ms = 600
[domains."knobs.test".dns.nx]
fault = "nxdomain"
[domains."knobs.test".dns.nodata]
txt = ["hidden"]
fault = "nodata"
[domains."knobs.test".dns.sf]
a = ["127.0.0.9"]
txt = ["hidden"]
fault = "servfail"
fault_types = ["TXT"]
[domains."knobs.test".dns.silent]
txt = ["never"]
fault = "timeout"
[domains."knobs.test".dns.c1]
cname = "c2.knobs.test."
[domains."knobs.test".dns.c2]
cname = "target.knobs.test."
[domains."knobs.test".dns.target]
txt = ["end of chain"]
a = ["127.0.0.7"]
[domains."knobs.test".dns."_25._tcp.mx1"]
tlsa = ["3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"]
dnssec_signed = true
[domains."knobs.test".dns.v6]
aaaa = ["::1"]
[domains."knobs.test".dns.long]
txt = ["""xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxyyyy"""]
"#;

#[test]
fn txt_rrsets_split_strings_and_mx() {
    let w = start_inline(KNOBS);
    let txt = dig_short(&w, &["TXT", "_mta-sts.knobs.test"]);
    assert!(txt.contains(&"\"v=STSv1; id=1;\"".to_owned()), "{txt:?}");
    assert!(
        txt.contains(&"\"v=STSv1; \" \"id=2;\"".to_owned()),
        "two character-strings in one record: {txt:?}"
    );
    assert_eq!(txt.len(), 2, "two records in one RRset: {txt:?}");
    let rpt = dig_short(&w, &["TXT", "_smtp._tls.knobs.test"]);
    assert_eq!(
        rpt,
        vec!["\"v=TLSRPTv1; rua=mailto:r@knobs.test\"".to_owned()]
    );
    let mut mx = dig_short(&w, &["MX", "knobs.test"]);
    mx.sort();
    assert_eq!(mx, vec!["10 mx1.knobs.test.", "20 mx2.knobs.test."]);
    // Each MX host gets its own loopback address, published as its A record.
    let a1 = dig_short(&w, &["A", "mx1.knobs.test"]);
    let a2 = dig_short(&w, &["A", "mx2.knobs.test"]);
    assert_eq!(a1, vec![w.host_addrs("mx1.knobs.test")[0].to_string()]);
    assert_ne!(a1, a2);
    // A string over 255 bytes is split into character-strings on the wire.
    let long = dig_short(&w, &["TXT", "long.knobs.test"]);
    assert_eq!(long.len(), 1);
    assert!(long[0].contains("\" \""), "split: {long:?}");
    assert!(long[0].ends_with("yyyy\""), "{long:?}");
    // TCP answers the same.
    let tcp = dig_short(&w, &["+tcp", "TXT", "_mta-sts.knobs.test"]);
    assert_eq!(tcp.len(), 2);
}

#[test]
fn negative_answers_and_faults() {
    let w = start_inline(KNOBS);
    assert_eq!(dig_status(&w, &["TXT", "nx.knobs.test"]), "NXDOMAIN");
    assert_eq!(dig_status(&w, &["TXT", "nothere.knobs.test"]), "NXDOMAIN");
    assert_eq!(dig_status(&w, &["TXT", "nodata.knobs.test"]), "NOERROR");
    assert!(dig_short(&w, &["TXT", "nodata.knobs.test"]).is_empty());
    // A name with only children (an empty non-terminal) is NODATA, not NXDOMAIN.
    assert_eq!(dig_status(&w, &["A", "_tcp.mx1.knobs.test"]), "NOERROR");
    // SERVFAIL for TXT only; A still answers.
    assert_eq!(dig_status(&w, &["TXT", "sf.knobs.test"]), "SERVFAIL");
    assert_eq!(dig_short(&w, &["A", "sf.knobs.test"]), vec!["127.0.0.9"]);
    // Names outside .test are refused: the lab never answers for the real internet.
    assert_eq!(dig_status(&w, &["A", "example.com"]), "REFUSED");
    // No answer at all.
    let o = dig(&w, &["+time=1", "TXT", "silent.knobs.test"]);
    let t = text(&o);
    assert!(t.contains("timed out"), "expected a timeout: {t}");
}

#[test]
fn delay_cname_chain_tlsa_ad_and_aaaa() {
    let w = start_inline(KNOBS);
    let start = Instant::now();
    assert_eq!(dig_short(&w, &["TXT", "slow.knobs.test"]), vec!["\"slow\""]);
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "the answer came before the configured delay"
    );
    let chain = dig_short(&w, &["TXT", "c1.knobs.test"]);
    assert_eq!(
        chain,
        vec!["c2.knobs.test.", "target.knobs.test.", "\"end of chain\""]
    );
    let tlsa = dig(&w, &["TLSA", "_25._tcp.mx1.knobs.test"]);
    let t = text(&tlsa);
    assert!(t.contains("flags: qr aa rd ad;"), "AD flag: {t}");
    assert!(
        t.to_ascii_lowercase()
            .contains("3 1 1 00112233445566778899aabbccddeeff"),
        "{t}"
    );
    let plain = text(&dig(&w, &["TXT", "_mta-sts.knobs.test"]));
    assert!(!plain.contains(" ad;"), "AD only where configured: {plain}");
    assert_eq!(dig_short(&w, &["AAAA", "v6.knobs.test"]), vec!["::1"]);
}

#[test]
fn mutations_change_answers_and_queries_are_logged() {
    let w = start_inline(KNOBS);
    w.set_txt("_mta-sts.knobs.test", &["v=STSv1; id=3;"])
        .expect("set txt");
    assert_eq!(
        dig_short(&w, &["TXT", "_mta-sts.knobs.test"]),
        vec!["\"v=STSv1; id=3;\""]
    );
    w.set_dns(
        "_mta-sts.knobs.test",
        DnsNameSpec {
            fault: Some(DnsFault::Servfail),
            ..DnsNameSpec::default()
        },
    )
    .expect("fault");
    assert_eq!(dig_status(&w, &["TXT", "_mta-sts.knobs.test"]), "SERVFAIL");
    w.set_dns(
        "_mta-sts.knobs.test",
        DnsNameSpec {
            fault: Some(DnsFault::None),
            ..DnsNameSpec::default()
        },
    )
    .expect("clear fault");
    assert_eq!(dig_status(&w, &["TXT", "_mta-sts.knobs.test"]), "NOERROR");
    w.remove_name("_mta-sts.knobs.test").expect("remove");
    assert_eq!(dig_status(&w, &["TXT", "_mta-sts.knobs.test"]), "NXDOMAIN");
    assert!(
        w.remove_name("_mta-sts.knobs.test").is_err(),
        "already gone"
    );
    let err = w
        .set_dns(
            "x.knobs.test",
            DnsNameSpec {
                aaaa: Some(vec!["2001:db8::1".parse().expect("ip")]),
                ..DnsNameSpec::default()
            },
        )
        .expect_err("non-loopback AAAA");
    assert!(err.to_string().contains("aaaa"), "{err}");

    let log = w.dns_queries();
    assert!(
        log.iter().any(|q| q.name == "_mta-sts.knobs.test"
            && q.qtype == "TXT"
            && q.outcome == "ServFail"),
        "{log:?}"
    );
}

#[test]
fn hickory_resolver_reads_the_lab() {
    use hickory_resolver::Resolver;
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;

    let w = start_inline(KNOBS);
    let dns = w.dns_addr();
    let mut ns = NameServerConfig::udp_and_tcp(dns.ip());
    for c in &mut ns.connections {
        c.port = dns.port();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let resolver = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            TokioRuntimeProvider::default(),
        )
        .build()
        .expect("resolver");
        let txt = resolver
            .txt_lookup("_mta-sts.knobs.test.")
            .await
            .expect("TXT lookup");
        let mut joined: Vec<String> = txt
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                hickory_resolver::proto::rr::RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        joined.sort();
        assert_eq!(joined, vec!["v=STSv1; id=1;", "v=STSv1; id=2;"]);
        let mx = resolver.mx_lookup("knobs.test.").await.expect("MX lookup");
        assert_eq!(mx.answers().len(), 2);
    });
}

#[test]
fn simulated_rtt_delays_answers_and_smtp_replies() {
    // A lower bound only: the world must wait at least the configured round trips.
    let w = start_inline(
        r#"
[lab]
rtt_ms = 300

[domains."rtt.test"]
comment = "a domain behind a slow network"
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx1.rtt.test"]
"#,
    );
    let start = Instant::now();
    assert_eq!(
        dig_short(&w, &["TXT", "_mta-sts.rtt.test"]),
        vec!["\"v=STSv1; id=1;\""]
    );
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "the DNS answer came before one RTT"
    );
    let addr = w.smtp_addr("mx1.rtt.test").expect("mx1 address");
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    let n = std::io::Read::read(&mut s, &mut buf).expect("greeting");
    assert!(buf[..n].starts_with(b"220 "));
    std::io::Write::write_all(&mut s, b"NOOP\r\n").expect("write");
    let n = std::io::Read::read(&mut s, &mut buf).expect("reply");
    assert!(
        buf[..n].starts_with(b"250"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "greeting and reply came before two RTTs"
    );
    w.shutdown();
}
