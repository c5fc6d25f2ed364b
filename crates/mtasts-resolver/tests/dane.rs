//! DANE discovery against the lab: real DNS answers with and without the AD flag, TLSA records
//! derived from the certificates the lab's MX hosts present, a bogus signed name, the cache
//! with its TTLs, and the rule that AD flags are believed only from loopback resolvers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mtasts_core::dane::{
    self, Decision, HostAddresses, HostOutcome, Lookup, Precedence, Security, Tlsa,
};
use mtasts_core::dns::DnsError;
use mtasts_lab::{Scenario, World, WorldOptions};
use mtasts_net::dns::{Addresses, Answer, Dns, DnsLookup, MxRecord, QueryType, TxtRrset};
use mtasts_resolver::render::dane_precedence;
use mtasts_resolver::store::MemoryStore;
use mtasts_resolver::{Clock, DaneStatus, Resolver, ResolverConfig, Source};

const SCENARIO: &str = r#"
[lab]
name = "resolver-dane-tests"

[domains."dane.test"]
comment = "Signed, one MX host with a private-CA certificate and a matching 3 1 1 record, and an enforce policy."
dnssec_signed = true
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx1.dane.test"]
[domains."dane.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.dane.test"]
[domains."dane.test".hosts.mx1]
cert = "untrusted-ca"
tlsa = ["3 1 1"]

[domains."half.test"]
comment = "Signed; mx1 has a DANE-TA record, mx2 has none (a proven absence)."
dnssec_signed = true
mx = ["10 mx1.half.test", "20 mx2.half.test"]
[domains."half.test".hosts.mx1]
tlsa = ["2 1 1"]

[domains."pkix.test"]
comment = "Signed; only a PKIX-EE record, which SMTP treats as unusable."
dnssec_signed = true
mx = ["10 mx1.pkix.test"]
[domains."pkix.test".hosts.mx1]
tlsa = ["1 1 1"]

[domains."bogus.test"]
comment = "Signed; the TLSA RRset of mx1 does not validate (a validating resolver answers SERVFAIL)."
dnssec_signed = true
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx1.bogus.test"]
[domains."bogus.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.bogus.test"]
[domains."bogus.test".hosts.mx1]
tlsa = ["3 1 1"]
[domains."bogus.test".dns."_25._tcp.mx1"]
fault = "bogus"
fault_types = ["TLSA"]

[domains."plain.test"]
comment = "No DNSSEC at all; TLSA records are published but not validated."
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx1.plain.test"]
[domains."plain.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.plain.test"]
[domains."plain.test".hosts.mx1]
tlsa = ["3 1 1"]

[domains."provider.test"]
comment = "A signed provider whose MX host has a usable record."
dnssec_signed = true
[domains."provider.test".hosts.mx]
tlsa = ["3 1 1"]

[domains."customer.test"]
comment = "An unsigned domain whose MX is the signed provider's host, with an enforce policy."
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx.provider.test"]
[domains."customer.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx.provider.test"]
"#;

struct Lab {
    world: World,
    clock: Arc<AtomicU64>,
}

fn lab() -> Lab {
    let scenario = Scenario::from_toml_str(SCENARIO, "dane.toml").expect("scenario");
    Lab {
        world: World::start(&scenario, WorldOptions::default()).expect("world"),
        clock: Arc::new(AtomicU64::new(1_800_000_000)),
    }
}

impl Lab {
    fn config(&self) -> ResolverConfig {
        let mut cfg = ResolverConfig::default();
        cfg.dns.servers = vec![self.world.dns_addr()];
        cfg.dns.timeout = 0.5;
        cfg.dns.attempts = 1;
        cfg.fetch.ca_file = Some(self.world.ca_pem_path().to_owned());
        cfg.fetch.port = self.world.https_port();
        cfg
    }

    fn clock(&self) -> Clock {
        let c = self.clock.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    }

    async fn resolver(&self) -> Resolver {
        Resolver::with_parts(&self.config(), Arc::new(MemoryStore), self.clock())
            .await
            .expect("resolver")
    }

    /// Queries the lab answered for names under `domain` (and `_25._tcp` names of its hosts).
    fn queries_for(&self, suffix: &str) -> Vec<mtasts_lab::DnsQueryLog> {
        self.world
            .dns_queries()
            .into_iter()
            .filter(|q| q.name == suffix || q.name.ends_with(&format!(".{suffix}")))
            .collect()
    }
}

fn entry(res: &mtasts_resolver::DaneResolution) -> Arc<mtasts_resolver::dane::DaneEntry> {
    match &res.status {
        DaneStatus::Assessed(e) => e.clone(),
        other => panic!("not assessed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc7672_s2_2_usable_record_from_a_private_ca_is_mandatory_dane_over_enforce() {
    let lab = lab();
    let r = lab.resolver().await;
    let dane = r.resolve_dane("dane.test", false).await;
    let e = entry(&dane);
    assert_eq!(e.assessment.decision, Decision::Mandatory, "{e:#?}");
    assert_eq!(e.assessment.mx_security, Some(Security::Secure));
    // The record is the one the lab derived from mx1's certificate, and it is secure.
    let (name, lookup) = &e.evidence.hosts[0].tlsa[0];
    assert_eq!(name, "_25._tcp.mx1.dane.test");
    let Lookup::Found {
        records,
        security: Security::Secure,
        ttl,
    } = lookup
    else {
        panic!("{lookup:?}")
    };
    assert_eq!(*ttl, 300, "the lab's default TTL");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].mnemonic(), "DANE-EE SPKI SHA2-256");
    // RFC 8461 §2: with an enforce policy too, DANE is what applies.
    let sts = r.resolve("dane.test").await;
    assert!(sts.outcome.applicable().is_some(), "the enforce policy");
    assert_eq!(dane_precedence(&sts, &dane), Precedence::DaneOnly);
    // Every DANE query (not the MTA-STS record or policy host lookups) asked for the DNSSEC
    // status (AD and DO, RFC 6840 §5.7) and got AD.
    let qs: Vec<_> = lab
        .queries_for("dane.test")
        .into_iter()
        .filter(|q| !q.name.starts_with("mta-sts.") && !q.name.starts_with("_mta-sts."))
        .collect();
    assert_eq!(qs.len(), 3, "MX, A and TLSA: {qs:?}");
    assert!(!qs.is_empty());
    for q in &qs {
        assert!(q.ad && q.dnssec_ok && q.authentic, "{q:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc7672_s2_2_1_per_host_outcomes_give_opportunistic_dane() {
    let lab = lab();
    let r = lab.resolver().await;
    let e = entry(&r.resolve_dane("half.test", false).await);
    assert_eq!(
        e.assessment.decision,
        Decision::Opportunistic { insecure_mx: false }
    );
    let outcomes: Vec<&HostOutcome> = e.assessment.hosts.iter().map(|h| &h.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            &HostOutcome::Usable,
            &HostOutcome::PreDane {
                why: dane::PreDane::NoTlsa
            }
        ]
    );
    // RFC 2308 §5: the proven absence of mx2's TLSA records lives for the SOA's negative TTL
    // (the lab's SOA: TTL 60, MINIMUM 60), shorter than the records' 300 s.
    assert_eq!(e.assessment.ttl, Some(60));
    let e = entry(&r.resolve_dane("pkix.test", false).await);
    assert_eq!(
        e.assessment.decision,
        Decision::Opportunistic { insecure_mx: false }
    );
    assert!(matches!(
        e.assessment.hosts[0].records[0].1,
        Some(dane::Unusable::PkixUsage { usage: 1 })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc7672_s2_1_2_bogus_tlsa_is_a_temporary_failure_not_mta_sts() {
    let lab = lab();
    let r = lab.resolver().await;
    let dane = r.resolve_dane("bogus.test", false).await;
    let e = entry(&dane);
    assert!(
        matches!(&e.assessment.decision, Decision::Delay { insecure_mx: false, reason } if reason.contains("SERVFAIL")),
        "{:?}",
        e.assessment.decision
    );
    let sts = r.resolve("bogus.test").await;
    assert!(sts.outcome.applicable().is_some(), "the enforce policy");
    assert!(matches!(
        dane_precedence(&sts, &dane),
        Precedence::TempFail { .. }
    ));
    // Failures are kept for failure_ttl (30 s), then looked up again.
    assert_eq!(e.expires_at - e.checked_at, 30);
    assert_eq!(r.dane_counters().failures.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc8461_s2_no_dnssec_leaves_mta_sts_and_costs_two_queries() {
    let lab = lab();
    let r = lab.resolver().await;
    let before = r.dane_queries();
    let dane = r.resolve_dane("plain.test", false).await;
    let e = entry(&dane);
    assert!(
        matches!(e.assessment.decision, Decision::NotApplicable { .. }),
        "{:?}",
        e.assessment.decision
    );
    // MX and A, no TLSA lookup under insecure addresses (RFC 7672 §2.2.2).
    assert_eq!(r.dane_queries() - before, 2);
    assert!(e.evidence.hosts[0].tlsa.is_empty());
    let tlsa_queries = lab
        .queries_for("plain.test")
        .iter()
        .filter(|q| q.qtype == "TLSA")
        .count();
    assert_eq!(tlsa_queries, 0);
    let sts = r.resolve("plain.test").await;
    assert_eq!(dane_precedence(&sts, &dane), Precedence::MtaSts);
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc7672_s2_2_1_insecure_mx_to_a_signed_provider_leaves_enforce_to_mta_sts() {
    let lab = lab();
    let r = lab.resolver().await;
    let dane = r.resolve_dane("customer.test", false).await;
    let e = entry(&dane);
    assert_eq!(
        e.assessment.decision,
        Decision::Opportunistic { insecure_mx: true }
    );
    let sts = r.resolve("customer.test").await;
    assert_eq!(dane_precedence(&sts, &dane), Precedence::MtaSts);
}

#[tokio::test(flavor = "multi_thread")]
async fn assessments_are_cached_for_their_ttl_and_coalesced() {
    let lab = lab();
    let r = lab.resolver().await;
    let (a, b) = tokio::join!(
        r.resolve_dane("dane.test", false),
        r.resolve_dane("dane.test", false)
    );
    assert_eq!(entry(&a).checked_at, entry(&b).checked_at);
    assert_eq!(r.dane_counters().lookups.load(Ordering::Relaxed), 1);
    let queries = r.dane_queries();
    // Within the TTL (min(MX 300, A 300, TLSA 300) = 300 s): memory, no query.
    lab.clock.fetch_add(299, Ordering::SeqCst);
    let c = r.resolve_dane("dane.test", false).await;
    assert_eq!(c.source, Source::Memory);
    assert_eq!(r.dane_queries(), queries);
    lab.clock.fetch_add(1, Ordering::SeqCst);
    let d = r.resolve_dane("dane.test", false).await;
    assert_eq!(d.source, Source::Network);
    assert!(r.dane_queries() > queries);
}

/// The real DNS client, tapped: its DANE lookups are counted; `remote` makes it report a
/// non-loopback upstream (what a resolver configured with a remote server sees); `held`
/// makes each TLSA lookup say it has begun and wait until the test lets it go.
#[derive(Debug)]
struct Tapped {
    inner: Dns,
    calls: AtomicU64,
    remote: bool,
    held: bool,
    tlsa_begun: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

impl Tapped {
    fn new(cfg: &ResolverConfig, remote: bool, held: bool) -> Arc<Tapped> {
        Arc::new(Tapped {
            inner: Dns::new(&cfg.dns.settings()).expect("dns"),
            calls: AtomicU64::new(0),
            remote,
            held,
            tlsa_begun: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        })
    }
}

#[async_trait]
impl DnsLookup for Tapped {
    async fn txt(&self, name: &str) -> Result<Answer<TxtRrset>, DnsError> {
        self.inner.txt(name).await
    }
    async fn mx(&self, name: &str) -> Result<Answer<Vec<MxRecord>>, DnsError> {
        self.inner.mx(name).await
    }
    async fn addresses(&self, name: &str) -> Result<Answer<Addresses>, DnsError> {
        self.inner.addresses(name).await
    }
    async fn tlsa(&self, name: &str) -> Result<Answer<Vec<Tlsa>>, DnsError> {
        self.inner.tlsa(name).await
    }
    async fn authenticated(&self, name: &str, qtype: QueryType) -> bool {
        self.inner.authenticated(name, qtype).await
    }
    async fn mx_dnssec(&self, name: &str) -> Lookup<Vec<dane::MxRecord>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.mx_dnssec(name).await
    }
    async fn addresses_dnssec(&self, name: &str) -> Lookup<HostAddresses> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.addresses_dnssec(name).await
    }
    async fn tlsa_dnssec(&self, name: &str) -> Lookup<Vec<Tlsa>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.held {
            self.tlsa_begun.notify_one();
            if let Ok(permit) = self.release.acquire().await {
                permit.forget();
            }
        }
        self.inner.tlsa_dnssec(name).await
    }
    fn servers(&self) -> Vec<SocketAddr> {
        if self.remote {
            vec!["192.0.2.53:53".parse().expect("an address")]
        } else {
            self.inner.servers()
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc4035_s4_9_3_remote_ad_is_not_trusted_unless_configured() {
    let lab = lab();
    for trust in [false, true] {
        let mut cfg = lab.config();
        cfg.dane.trust_remote_ad = trust;
        let remote = Tapped::new(&cfg, true, false);
        let r = Resolver::with_dns(&cfg, Arc::new(MemoryStore), lab.clock(), remote.clone())
            .await
            .expect("resolver");
        let dane = r.resolve_dane("dane.test", false).await;
        if trust {
            assert_eq!(dane.decision(), Decision::Mandatory);
            assert!(remote.calls.load(Ordering::SeqCst) >= 3);
        } else {
            assert!(
                matches!(&dane.status, DaneStatus::Untrusted { .. }),
                "{dane:?}"
            );
            assert!(
                matches!(dane.decision(), Decision::NotApplicable { reason } if reason.contains("192.0.2.53:53")),
            );
            assert_eq!(remote.calls.load(Ordering::SeqCst), 0, "no lookup at all");
        }
    }
}

/// An assessment in flight when its domain is forgotten answers its caller, but is not
/// cached: the next request looks it up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assessment_in_flight_during_a_forget_is_not_cached() {
    let lab = lab();
    let cfg = lab.config();
    let held = Tapped::new(&cfg, false, true);
    let r = Resolver::with_dns(&cfg, Arc::new(MemoryStore), lab.clock(), held.clone())
        .await
        .expect("resolver");
    assert!(r.dane_trusted(), "a loopback resolver");
    let lookup = tokio::spawn({
        let r = r.clone();
        async move { r.resolve_dane("dane.test", false).await }
    });
    let begun = tokio::time::timeout(Duration::from_secs(10), held.tlsa_begun.notified()).await;
    assert!(begun.is_ok(), "the TLSA lookup never began");
    let f = r.forget("dane.test").await.expect("a domain");
    assert!(!f.dane, "nothing was cached yet: {f:?}");
    held.release.add_permits(1);
    let done = lookup.await.expect("the lookup");
    assert_eq!(done.source, Source::Network);
    assert_eq!(
        done.decision(),
        Decision::Mandatory,
        "its caller is answered"
    );
    let shown = r.entry("dane.test").await.expect("a domain");
    assert!(shown.dane.is_none(), "the assessment in flight was cached");
    assert_eq!(r.dane_cached(), 0);

    // One begun after the forget is cached as usual.
    held.release.add_permits(1);
    let next = r.resolve_dane("dane.test", false).await;
    assert_eq!(next.source, Source::Network);
    assert_eq!(next.decision(), Decision::Mandatory);
    assert!(r.entry("dane.test").await.expect("a domain").dane.is_some());
    assert_eq!(r.dane_cached(), 1);
    held.release.add_permits(1);
    let again = r.resolve_dane("dane.test", false).await;
    assert_eq!(again.source, Source::Memory);
    assert_eq!(r.dane_counters().lookups.load(Ordering::Relaxed), 2);
}
