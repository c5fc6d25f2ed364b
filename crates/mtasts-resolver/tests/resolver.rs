//! The resolver against the lab: real DNS, real HTTPS with the lab's CA, a controllable clock.
//! Each test starts its own world, so mutations never leak between tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mtasts_core::sts::policy::Mode;
use mtasts_lab::{BlockMode, Scenario, World, WorldOptions};
use mtasts_resolver::store::{MemoryStore, RedisStore, SqliteStore, Store};
use mtasts_resolver::{Clock, Outcome, Resolver, ResolverConfig, Source};

const SCENARIO: &str = r#"
[lab]
name = "resolver-tests"
description = "Domains for the resolver's integration tests."

[domains."enforce.test"]
comment = "A correct enforce policy, max_age one hour."
sts_txt = ["v=STSv1; id=1;"]
mx = ["10 mx1.enforce.test"]
[domains."enforce.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.enforce.test", "*.pool.enforce.test"]

[domains."slow.test"]
comment = "The policy host waits 400 ms before answering (for coalescing)."
sts_txt = ["v=STSv1; id=1;"]
[domains."slow.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.slow.test"]
delay_ms = 400

[domains."blocked.test"]
comment = "A record, but the policy host resets every connection."
sts_txt = ["v=STSv1; id=1;"]
[domains."blocked.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.blocked.test"]
block = "reset"

[domains."redirect.test"]
comment = "The policy URL redirects to a valid policy elsewhere: must not be followed."
sts_txt = ["v=STSv1; id=1;"]
[domains."redirect.test".policy]
redirect = "https://mta-sts.enforce.test/.well-known/mta-sts.txt"

[domains."big.test"]
comment = "A valid policy padded to 70000 bytes, chunked with no Content-Length."
sts_txt = ["v=STSv1; id=1;"]
[domains."big.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.big.test"]
oversize = { bytes = 70000, chunked = true }

[domains."html.test"]
comment = "A valid policy served as text/html."
sts_txt = ["v=STSv1; id=1;"]
[domains."html.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.html.test"]
content_type = "text/html"

[domains."wrongname.test"]
comment = "The policy host's certificate names another host."
sts_txt = ["v=STSv1; id=1;"]
[domains."wrongname.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.wrongname.test"]
cert = "wrong-name"

[domains."untrusted.test"]
comment = "The policy host's certificate chains to a root nobody trusts."
sts_txt = ["v=STSv1; id=1;"]
[domains."untrusted.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx1.untrusted.test"]
cert = "untrusted-ca"

[domains."servfail.test"]
comment = "The TXT lookup answers SERVFAIL."
[domains."servfail.test".dns."_mta-sts"]
fault = "servfail"

[domains."blackhole.test"]
comment = "The TXT lookup is never answered."
[domains."blackhole.test".dns."_mta-sts"]
fault = "timeout"

[domains."cname.test"]
comment = "_mta-sts is a CNAME to enforce.test's record (CNAMEs are followed, §3.1)."
[domains."cname.test".dns."_mta-sts"]
cname = "_mta-sts.enforce.test."
[domains."cname.test".policy]
mode = "testing"
max_age = 3600
mx = ["mx1.cname.test"]

[domains."bücher.test"]
comment = "An IDN policy domain."
sts_txt = ["v=STSv1; id=7;"]
[domains."bücher.test".policy]
mode = "enforce"
max_age = 3600
mx = ["mx.xn--bcher-kva.test"]

[domains."none.test"]
comment = "No MTA-STS at all."
mx = ["10 mx1.none.test"]
"#;

struct Lab {
    world: World,
    clock: Arc<AtomicU64>,
}

fn lab() -> Lab {
    let scenario = Scenario::from_toml_str(SCENARIO, "resolver-tests").expect("scenario");
    let world = World::start(&scenario, WorldOptions::default()).expect("world");
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    Lab {
        world,
        clock: Arc::new(AtomicU64::new(start)),
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
        cfg.fetch.timeout = 5.0;
        cfg.cache.refresh_jitter = 0;
        cfg
    }

    fn clock(&self) -> Clock {
        let c = self.clock.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    }

    fn advance(&self, secs: u64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    async fn resolver_with(&self, store: Arc<dyn Store>) -> Resolver {
        Resolver::with_parts(&self.config(), store, self.clock())
            .await
            .expect("resolver")
    }

    async fn resolver(&self) -> Resolver {
        self.resolver_with(Arc::new(MemoryStore)).await
    }

    /// Connections the policy host logged for `domain`. The lab logs a connection when its
    /// server side finishes, which can be just after the client has its answer: wait (bounded)
    /// for the log to settle first.
    fn fetches(&self, domain: &str) -> usize {
        let mut last = usize::MAX;
        for _ in 0..40 {
            let n = self.world.policy_fetches_for(domain).len();
            if n == last {
                return n;
            }
            last = n;
            std::thread::sleep(Duration::from_millis(50));
        }
        last
    }

    fn txt_queries(&self, domain: &str) -> usize {
        let name = format!("_mta-sts.{domain}");
        self.world
            .dns_queries()
            .iter()
            .filter(|q| q.name == name && q.qtype == "TXT")
            .count()
    }
}

fn mode(o: &Outcome) -> Option<Mode> {
    o.policy().map(|p| p.policy.mode)
}

fn id(o: &Outcome) -> Option<String> {
    o.policy().map(|p| p.id.clone())
}

fn reason(o: &Outcome) -> String {
    match o {
        Outcome::NoPolicy { reason }
        | Outcome::Transient { reason }
        | Outcome::Invalid { reason } => reason.clone(),
        Outcome::Policy(_) => String::new(),
    }
}

/// Waits (bounded) for a background refresh to finish.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_policy_is_fetched_once_then_served_from_memory() {
    let lab = lab();
    let r = lab.resolver().await;
    let first = r.resolve("enforce.test").await;
    assert_eq!(mode(&first.outcome), Some(Mode::Enforce));
    assert_eq!(first.source, Source::Network);
    let p = first.outcome.policy().expect("policy");
    let mx: Vec<String> = p.policy.mx.iter().map(ToString::to_string).collect();
    assert_eq!(mx, ["mx1.enforce.test", "*.pool.enforce.test"]);
    for key in ["enforce.test", "ENFORCE.test", "enforce.test."] {
        let again = r.resolve(key).await;
        assert_eq!(again.source, Source::Memory, "{key}");
        assert_eq!(mode(&again.outcome), Some(Mode::Enforce));
    }
    assert_eq!(lab.fetches("enforce.test"), 1);
    assert_eq!(lab.txt_queries("enforce.test"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_is_no_policy_and_cached_briefly() {
    let lab = lab();
    let r = lab.resolver().await;
    let a = r.resolve("none.test").await;
    assert!(matches!(a.outcome, Outcome::NoPolicy { .. }), "{a:?}");
    assert!(reason(&a.outcome).contains("NXDOMAIN"), "{a:?}");
    let b = r.resolve("none.test").await;
    assert_eq!(b.source, Source::Memory);
    assert_eq!(lab.txt_queries("none.test"), 1);
    lab.advance(300);
    let _ = r.resolve("none.test").await;
    assert_eq!(
        lab.txt_queries("none.test"),
        2,
        "negative answer expires after negative_ttl"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_id_refreshes_without_refetch() {
    let lab = lab();
    let r = lab.resolver().await;
    let first = r.resolve("enforce.test").await;
    let fetched_at = first.outcome.policy().expect("policy").fetched_at;
    // Three quarters into max_age (3600 s) a refresh is due: the cached policy is answered
    // at once and the TXT record is checked in the background.
    lab.advance(2700);
    let during = r.resolve("enforce.test").await;
    assert_eq!(during.source, Source::Memory);
    assert_eq!(mode(&during.outcome), Some(Mode::Enforce));
    wait_until("the background TXT check", || {
        lab.txt_queries("enforce.test") == 2
    })
    .await;
    let mut refreshed = false;
    for _ in 0..200 {
        let now = r.resolve("enforce.test").await;
        if now
            .outcome
            .policy()
            .is_some_and(|p| p.fetched_at > fetched_at)
        {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refreshed, "the refresh confirmed the policy");
    assert_eq!(
        lab.fetches("enforce.test"),
        1,
        "an unchanged id must not refetch"
    );
    // max_age now counts from the refresh: still valid past the original expiry.
    lab.advance(1000);
    let later = r.resolve("enforce.test").await;
    assert_eq!(mode(&later.outcome), Some(Mode::Enforce));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_id_refetches() {
    let lab = lab();
    let r = lab.resolver().await;
    assert_eq!(
        id(&r.resolve("enforce.test").await.outcome).as_deref(),
        Some("1")
    );
    lab.world
        .set_txt("_mta-sts.enforce.test", &["v=STSv1; id=2;"])
        .expect("set txt");
    lab.world
        .set_policy(
            "enforce.test",
            toml_policy("mode = \"testing\"\nmax_age = 3600\nmx = [\"mx1.enforce.test\"]"),
        )
        .expect("set policy");
    // Past expiry the next lookup resolves in the foreground.
    lab.advance(3601);
    let after = r.resolve("enforce.test").await;
    assert_eq!(id(&after.outcome).as_deref(), Some("2"));
    assert_eq!(mode(&after.outcome), Some(Mode::Testing));
    assert_eq!(lab.fetches("enforce.test"), 2);
}

fn toml_policy(body: &str) -> mtasts_lab::PolicySpec {
    toml::from_str(body).expect("policy spec")
}

fn toml_dns(body: &str) -> mtasts_lab::DnsNameSpec {
    toml::from_str(body).expect("dns spec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_refetch_keeps_cached_policy_until_max_age() {
    let lab = lab();
    let r = lab.resolver().await;
    assert_eq!(
        mode(&r.resolve("enforce.test").await.outcome),
        Some(Mode::Enforce)
    );
    lab.world
        .set_txt("_mta-sts.enforce.test", &["v=STSv1; id=2;"])
        .expect("set txt");
    lab.world
        .block_policy_host("enforce.test", BlockMode::Reset)
        .expect("block");
    lab.advance(2700);
    let _ = r.resolve("enforce.test").await; // starts the background refresh
    wait_until("the failed refetch", || {
        r.counters().fetch_failures.load(Ordering::SeqCst) == 1
    })
    .await;
    let still = r.resolve("enforce.test").await;
    assert_eq!(id(&still.outcome).as_deref(), Some("1"), "{still:?}");
    assert_eq!(mode(&still.outcome), Some(Mode::Enforce));
    // Within five minutes of the failure the failed id is not fetched again (§3.3).
    lab.advance(200);
    assert_eq!(
        id(&r.resolve("enforce.test").await.outcome).as_deref(),
        Some("1")
    );
    assert_eq!(r.counters().fetches.load(Ordering::SeqCst), 2);
    // At expiry (3600 s after the first fetch) it is still applied, and the retry, now
    // allowed, runs in the background and fails again.
    lab.advance(700);
    assert_eq!(
        mode(&r.resolve("enforce.test").await.outcome),
        Some(Mode::Enforce)
    );
    wait_until("the second failed refetch", || {
        r.counters().fetch_failures.load(Ordering::SeqCst) == 2
    })
    .await;
    // One second later it is gone: deliver as if there were no policy (§3.3), without a
    // fourth fetch so soon after the third.
    lab.advance(1);
    let gone = r.resolve("enforce.test").await;
    assert!(matches!(gone.outcome, Outcome::NoPolicy { .. }), "{gone:?}");
    assert_eq!(r.counters().fetches.load(Ordering::SeqCst), 3);
    assert_eq!(
        lab.fetches("enforce.test"),
        3,
        "every attempt reached the policy host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fetch_without_cache_is_no_policy() {
    let lab = lab();
    let r = lab.resolver().await;
    let a = r.resolve("blocked.test").await;
    assert!(matches!(a.outcome, Outcome::NoPolicy { .. }), "{a:?}");
    assert!(reason(&a.outcome).contains("fetch"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txt_removed_policy_still_enforced_until_max_age() {
    let lab = lab();
    let r = lab.resolver().await;
    assert_eq!(
        mode(&r.resolve("enforce.test").await.outcome),
        Some(Mode::Enforce)
    );
    lab.world
        .set_txt("_mta-sts.enforce.test", &[])
        .expect("remove txt");
    lab.world
        .remove_policy("enforce.test")
        .expect("remove policy");
    lab.advance(3600);
    let (res, trace) = r.resolve_traced("enforce.test", true).await;
    assert_eq!(mode(&res.outcome), Some(Mode::Enforce));
    let discovery = serde_json::to_string(&trace.discovery).expect("json");
    assert!(discovery.contains("no-record"), "{discovery}");
    lab.advance(1);
    let gone = r.resolve("enforce.test").await;
    assert!(matches!(gone.outcome, Outcome::NoPolicy { .. }), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure_is_transient_and_never_erases_a_cached_policy() {
    let lab = lab();
    let r = lab.resolver().await;
    for d in ["servfail.test", "blackhole.test"] {
        let a = r.resolve(d).await;
        assert!(matches!(a.outcome, Outcome::Transient { .. }), "{d}: {a:?}");
    }
    assert_eq!(
        mode(&r.resolve("enforce.test").await.outcome),
        Some(Mode::Enforce)
    );
    lab.world
        .set_dns("_mta-sts.enforce.test", toml_dns("fault = \"servfail\""))
        .expect("servfail");
    lab.advance(3600);
    let (res, _) = r.resolve_traced("enforce.test", true).await;
    assert_eq!(mode(&res.outcome), Some(Mode::Enforce), "{res:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lookups_are_coalesced_into_one_fetch() {
    let lab = lab();
    let r = lab.resolver().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move { r.resolve("slow.test").await }));
    }
    for t in tasks {
        let res = t.await.expect("task");
        assert_eq!(mode(&res.outcome), Some(Mode::Enforce), "{res:?}");
    }
    assert_eq!(lab.fetches("slow.test"), 1);
    assert_eq!(lab.txt_queries("slow.test"), 1);
    assert!(r.counters().coalesced.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_rules_of_section_3_3() {
    let lab = lab();
    let r = lab.resolver().await;
    let cases = [
        ("redirect.test", "redirect"),
        ("big.test", "limit"),
        ("html.test", "text/html"),
        ("wrongname.test", "certificate"),
        ("untrusted.test", "certificate"),
    ];
    for (domain, needle) in cases {
        let (res, trace) = r.resolve_traced(domain, false).await;
        assert!(
            matches!(res.outcome, Outcome::NoPolicy { .. }),
            "{domain}: {res:?}"
        );
        let err = trace
            .fetch
            .as_ref()
            .and_then(|f| f.error.clone())
            .unwrap_or_default();
        assert!(
            err.to_lowercase().contains(needle),
            "{domain}: expected {needle:?} in {err:?}"
        );
    }
    // The redirect target was never fetched.
    assert_eq!(lab.fetches("enforce.test"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_is_followed_and_idn_is_converted() {
    let lab = lab();
    let r = lab.resolver().await;
    let c = r.resolve("cname.test").await;
    assert_eq!(mode(&c.outcome), Some(Mode::Testing), "{c:?}");
    assert_eq!(id(&c.outcome).as_deref(), Some("1"));
    let i = r.resolve("BÜCHER.test").await;
    assert_eq!(i.domain, "xn--bcher-kva.test");
    assert_eq!(mode(&i.outcome), Some(Mode::Enforce), "{i:?}");
    let bad = r.resolve("not a domain").await;
    assert!(matches!(bad.outcome, Outcome::Invalid { .. }), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cache_survives_restart() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.sqlite3");
    {
        let store = SqliteStore::open(&path).await.expect("sqlite");
        let r = lab.resolver_with(Arc::new(store)).await;
        assert_eq!(
            mode(&r.resolve("enforce.test").await.outcome),
            Some(Mode::Enforce)
        );
        assert!(matches!(
            r.resolve("none.test").await.outcome,
            Outcome::NoPolicy { .. }
        ));
    }
    // The attacker now controls the network: no record, no policy host.
    lab.world
        .set_txt("_mta-sts.enforce.test", &[])
        .expect("remove txt");
    lab.world
        .block_policy_host("enforce.test", BlockMode::Reset)
        .expect("block");
    let store = SqliteStore::open(&path).await.expect("reopen");
    let r = lab.resolver_with(Arc::new(store)).await;
    assert_eq!(r.len(), 2, "both entries preloaded");
    let after = r.resolve("enforce.test").await;
    assert_eq!(after.source, Source::Memory);
    assert_eq!(mode(&after.outcome), Some(Mode::Enforce));
    assert_eq!(lab.txt_queries("enforce.test"), 1);
    assert_eq!(lab.fetches("enforce.test"), 1);
}

/// Regression (issue 13): the SQLite file deleted under a running resolver went unnoticed,
/// and after a restart the cache was empty (under the cache attack, NOTFOUND instead of the
/// cached enforce policy). The check of the file's identity notices it, recreates the file and
/// writes the entries held in memory back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_sqlite_cache_is_recreated_from_memory() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.sqlite3");
    {
        let store = SqliteStore::open(&path).await.expect("sqlite");
        let r = lab.resolver_with(Arc::new(store)).await;
        assert_eq!(
            mode(&r.resolve("enforce.test").await.outcome),
            Some(Mode::Enforce)
        );
        for f in ["cache.sqlite3", "cache.sqlite3-wal", "cache.sqlite3-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        r.check_store().await;
        assert_eq!(r.counters().store_recreated.load(Ordering::Relaxed), 1);
        assert!(path.is_file(), "the file was recreated");
        // A second check finds the new file and does nothing.
        r.check_store().await;
        assert_eq!(r.counters().store_recreated.load(Ordering::Relaxed), 1);
    }
    // The attacker now controls the network; a restarted resolver still has the policy.
    lab.world
        .set_txt("_mta-sts.enforce.test", &[])
        .expect("remove txt");
    lab.world
        .block_policy_host("enforce.test", BlockMode::Reset)
        .expect("block");
    let store = SqliteStore::open(&path).await.expect("reopen");
    let r = lab.resolver_with(Arc::new(store)).await;
    let after = r.resolve("enforce.test").await;
    assert_eq!(mode(&after.outcome), Some(Mode::Enforce), "{after:?}");
    assert_eq!(lab.txt_queries("enforce.test"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_shares_one_redis_cache() {
    let Some(redis) = mtasts_test_support::redis::RedisServer::start() else {
        return;
    };
    let lab = lab();
    let mta = |prefix: &'static str| {
        let url = redis.url();
        async move { Arc::new(RedisStore::open(&url, prefix).await.expect("redis")) as Arc<dyn Store> }
    };
    let first = lab.resolver_with(mta("fleet:").await).await;
    assert_eq!(
        mode(&first.resolve("enforce.test").await.outcome),
        Some(Mode::Enforce)
    );
    assert!(matches!(
        first.resolve("none.test").await.outcome,
        Outcome::NoPolicy { .. }
    ));
    // A second MTA, started later, finds both answers in Redis: no DNS, no fetch.
    let second = lab.resolver_with(mta("fleet:").await).await;
    let got = second.resolve("enforce.test").await;
    assert_eq!(mode(&got.outcome), Some(Mode::Enforce));
    assert!(matches!(
        second.resolve("none.test").await.outcome,
        Outcome::NoPolicy { .. }
    ));
    assert_eq!(lab.fetches("enforce.test"), 1);
    assert_eq!(lab.txt_queries("enforce.test"), 1);
    assert_eq!(lab.txt_queries("none.test"), 1);
    // A third MTA under another prefix shares nothing.
    let other = lab.resolver_with(mta("other:").await).await;
    let _ = other.resolve("enforce.test").await;
    assert_eq!(lab.fetches("enforce.test"), 2);
}

/// `mtasts daemon cache`: the entries are listed from memory and the store without any lookup,
/// an entry is shown as a lookup would use it (clock included), and forgetting removes it from
/// memory and from the file, so the next lookup starts afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_listed_shown_and_forgotten_in_memory_and_the_store() {
    use mtasts_core::sts::cache::{Answer, answer};
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).await.expect("sqlite"));
    let r = lab.resolver_with(store.clone()).await;
    assert_eq!(
        mode(&r.resolve("enforce.test").await.outcome),
        Some(Mode::Enforce)
    );
    assert!(matches!(
        r.resolve("none.test").await.outcome,
        Outcome::NoPolicy { .. }
    ));
    let queries = lab.txt_queries("enforce.test");
    let listing = r.entries().await;
    assert!(listing.store_error.is_none(), "{listing:?}");
    let names: Vec<(&str, bool, bool)> = listing
        .entries
        .iter()
        .map(|c| (c.domain.as_str(), c.in_memory, c.in_store))
        .collect();
    assert_eq!(
        names,
        [("enforce.test", true, true), ("none.test", true, true)]
    );
    // Inspecting is no lookup and no hit.
    let hits = r.counters().memory_hits.load(Ordering::Relaxed);
    let shown = r.entry("ENFORCE.test.").await.expect("a domain");
    let cached = shown.cached.expect("cached");
    assert_eq!(cached.domain, "enforce.test");
    assert!(matches!(
        answer(&cached.entry, r.now()),
        Some(Answer::Policy {
            refresh_due: false,
            ..
        })
    ));
    let now = mtasts_resolver::outcome_now(&cached.entry, r.now()).expect("an answer");
    assert_eq!(mode(&now), Some(Mode::Enforce));
    // Past max_age (one hour) the cache cannot answer any more: a lookup would be made.
    assert!(mtasts_resolver::outcome_now(&cached.entry, r.now() + 3601).is_none());
    assert_eq!(r.counters().memory_hits.load(Ordering::Relaxed), hits);
    assert_eq!(lab.txt_queries("enforce.test"), queries);
    assert!(r.entry("not a domain").await.is_err());
    assert!(r.forget("not a domain").await.is_err());

    // A second resolver on the same file without preloading: the entry is in its store only.
    let mut cfg = lab.config();
    cfg.memory.preload = 0;
    let cold = Resolver::with_parts(&cfg, store.clone(), lab.clock())
        .await
        .expect("resolver");
    let c = cold.entry("enforce.test").await.expect("a domain").cached;
    assert!(
        c.as_ref().is_some_and(|c| !c.in_memory && c.in_store),
        "{c:?}"
    );
    assert_eq!(cold.entries().await.entries.len(), 2);

    let f = r.forget("enforce.test").await.expect("a domain");
    assert!(f.memory && f.store && f.existed(), "{f:?}");
    assert!(f.store_error.is_none());
    let again = r.forget("enforce.test").await.expect("a domain");
    assert!(!again.existed(), "{again:?}");
    assert!(
        r.entry("enforce.test")
            .await
            .expect("a domain")
            .cached
            .is_none()
    );
    let left: Vec<String> = r
        .entries()
        .await
        .entries
        .into_iter()
        .map(|c| c.domain)
        .collect();
    assert_eq!(left, ["none.test"]);
    assert_eq!(r.len(), 1);
    // Gone from the file too: a fresh store over it does not have it.
    let reopened = SqliteStore::open(&path).await.expect("reopen");
    assert!(
        reopened
            .get("enforce.test", r.now())
            .await
            .expect("get")
            .is_none()
    );
    // The next lookup starts afresh: DNS and the fetch again.
    let fetched = lab.fetches("enforce.test");
    let next = r.resolve("enforce.test").await;
    assert_eq!(next.source, Source::Network);
    assert_eq!(mode(&next.outcome), Some(Mode::Enforce));
    assert_eq!(lab.txt_queries("enforce.test"), queries + 1);
    assert_eq!(lab.fetches("enforce.test"), fetched + 1);
}

/// A lookup in flight when its domain is forgotten answers its caller, but caches nothing:
/// neither in memory nor in the store (a failed refresh would otherwise write the forgotten
/// policy straight back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_in_flight_during_a_forget_does_not_cache_its_result() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).await.expect("sqlite"));
    let r = lab.resolver_with(store.clone()).await;
    let lookup = tokio::spawn({
        let r = r.clone();
        async move { r.resolve("slow.test").await }
    });
    // The fetch has begun once it is counted; the policy host takes 400 ms to answer.
    let began = tokio::time::timeout(Duration::from_secs(10), async {
        while r.counters().fetches.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(began.is_ok(), "the fetch never began");
    let f = r.forget("slow.test").await.expect("a domain");
    assert!(!f.existed(), "nothing was cached yet: {f:?}");
    let done = lookup.await.expect("the lookup");
    assert_eq!(done.source, Source::Network);
    assert_eq!(mode(&done.outcome), Some(Mode::Enforce));
    assert!(
        r.entry("slow.test")
            .await
            .expect("a domain")
            .cached
            .is_none(),
        "the result of the lookup in flight was cached"
    );
    assert_eq!(r.len(), 0);
    let reopened = SqliteStore::open(&path).await.expect("reopen");
    assert!(
        reopened
            .get("slow.test", r.now())
            .await
            .expect("get")
            .is_none(),
        "the result of the lookup in flight was stored"
    );
    // A lookup begun after the forget is cached as usual.
    let next = r.resolve("slow.test").await;
    assert_eq!(next.source, Source::Network);
    assert!(
        r.entry("slow.test")
            .await
            .expect("a domain")
            .cached
            .is_some()
    );
    assert!(
        reopened
            .get("slow.test", r.now())
            .await
            .expect("get")
            .is_some()
    );
}
