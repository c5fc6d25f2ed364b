//! RFC 8461 §3.3, §5.1, §10.2: the sending MTA's policy cache.
//!
//! Each case is a timeline. At each step the simulated sender does exactly what the resolver
//! does: ask the cache ([`answer`]); if it cannot answer, or a refresh is due, look up the TXT
//! record (the step's `txt`), and fetch if told to (the step's `fetch`). The expected string
//! says what was applied and which I/O happened:
//! `<enforce|testing|none>#<id>` or `no-policy` or `transient`, then ` cache`, ` dns` or
//! ` dns+fetch`.

use mtasts_core::dns::{DnsError, DnsErrorKind};
use mtasts_core::sts::cache::{
    Answer, CacheConfig, CacheEntry, Discovery, FetchOutcome, Next, answer, next_refresh,
    on_discovery, on_fetch,
};
use mtasts_core::sts::fetch::FetchError;
use mtasts_core::sts::policy::Policy;

#[derive(Clone, Copy, Debug)]
enum Txt {
    /// One valid record with this id.
    Id(&'static str),
    /// NXDOMAIN / NODATA / no valid record.
    Gone,
    /// SERVFAIL / timeout.
    Fail,
    /// The step must not reach DNS.
    Never,
}

#[derive(Clone, Copy, Debug)]
enum Fetch {
    /// A valid policy: mode, max_age.
    Ok(&'static str, u32),
    /// The fetch fails.
    Err,
    /// The step must not fetch.
    Never,
}

type Step = (u64, Txt, Fetch, &'static str);

fn policy(mode: &str, max_age: u32) -> Policy {
    let mx = if mode == "none" {
        String::new()
    } else {
        "mx: mail.example.com\n".to_owned()
    };
    Policy::parse(format!("version: STSv1\nmode: {mode}\n{mx}max_age: {max_age}\n").as_bytes())
        .expect("test policy")
}

fn describe(entry: &CacheEntry, now: u64) -> String {
    match answer(entry, now) {
        Some(Answer::Policy { cached, .. }) => format!("{}#{}", cached.policy.mode, cached.id),
        Some(Answer::NoPolicy { .. }) => "no-policy".into(),
        Some(Answer::Transient { .. }) => "transient".into(),
        None => "undecided".into(),
    }
}

fn run(cfg: CacheConfig, steps: &[Step]) {
    let mut entry: Option<CacheEntry> = None;
    for (i, &(now, txt, fetch, expected)) in steps.iter().enumerate() {
        let cached = entry.as_ref().and_then(|e| answer(e, now));
        let needs_network = match cached {
            None => true,
            Some(Answer::Policy { refresh_due, .. }) => refresh_due,
            Some(_) => false,
        };
        let got = if !needs_network {
            let e = entry.as_ref().expect("entry");
            format!("{} cache", describe(e, now))
        } else {
            let discovery = match txt {
                Txt::Id(id) => Discovery::Record { id: id.into() },
                Txt::Gone => Discovery::from_lookup::<Vec<&[u8]>, &[u8]>(Err(&DnsError::new(
                    DnsErrorKind::NxDomain,
                    "_mta-sts.example.com",
                    "",
                ))),
                Txt::Fail => Discovery::from_lookup::<Vec<&[u8]>, &[u8]>(Err(&DnsError::new(
                    DnsErrorKind::ServFail,
                    "_mta-sts.example.com",
                    "",
                ))),
                Txt::Never => panic!("step {i} (t={now}) looked up DNS but must not"),
            };
            let (e, next) = on_discovery(entry.take(), now, discovery, &cfg, 0);
            let (e, io) = match next {
                Next::Done => (e, "dns"),
                Next::Fetch { id } => {
                    let outcome = match fetch {
                        Fetch::Ok(mode, max_age) => FetchOutcome::Fetched(policy(mode, max_age)),
                        Fetch::Err => FetchOutcome::Failed {
                            error: FetchError::Status { status: 500 }.into(),
                        },
                        Fetch::Never => panic!("step {i} (t={now}) fetched but must not"),
                    };
                    (on_fetch(e, now, &id, outcome, &cfg, 0), "dns+fetch")
                }
            };
            let s = format!("{} {io}", describe(&e, now));
            entry = Some(e);
            s
        };
        assert_eq!(got, expected, "step {i} at t={now}");
    }
}

/// Default tunables, but a refresh interval far away so only `max_age` (refresh at three
/// quarters of it) matters.
fn no_refresh() -> CacheConfig {
    CacheConfig {
        refresh_interval: u64::MAX / 4,
        ..CacheConfig::default()
    }
}

fn timeline(steps: &[Step], cfg: CacheConfig) {
    run(cfg, steps);
}

const N: Txt = Txt::Never;
const NF: Fetch = Fetch::Never;

cases! { timeline;
    // §3.3: a valid record and a valid policy: the policy applies.
    rfc8461_s3_3_first_fetch_applies:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 86400), "enforce#1 dns+fetch")] => no_refresh();
    // §5.1: a valid cached policy is applied with no I/O at all.
    rfc8461_s5_1_valid_cached_policy_needs_no_io:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 86400), "enforce#1 dns+fetch"),
          (1, N, NF, "enforce#1 cache"),
          (64_799, N, NF, "enforce#1 cache")] => no_refresh();
    // §5.1: valid while time-since-fetch has not exceeded max_age; one second more and it is
    // gone (here DNS fails, so nothing replaces it).
    rfc8461_s5_1_valid_until_exactly_max_age:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (1000, Txt::Fail, NF, "enforce#1 dns"),
          (1001, Txt::Fail, NF, "transient dns")] => no_refresh();
    // §5.1 with max_age 0: the policy applies to the delivery at hand only.
    rfc8461_s5_1_max_age_zero_applies_once:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 0), "enforce#1 dns+fetch"),
          (1, Txt::Id("1"), Fetch::Ok("enforce", 0), "enforce#1 dns+fetch")] => no_refresh();
    // §3.1/§5.1: an unchanged id refreshes the cached policy without a refetch, and max_age
    // counts again from the check.
    rfc8461_s5_1_unchanged_id_refreshes_without_refetch:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (750, Txt::Id("1"), NF, "enforce#1 dns"),
          (1499, N, NF, "enforce#1 cache")] => CacheConfig::default();
    // §3.1: a changed id means a changed policy: refetch.
    rfc8461_s3_1_changed_id_refetches:
        &[(0, Txt::Id("1"), Fetch::Ok("testing", 1000), "testing#1 dns+fetch"),
          (750, Txt::Id("2"), Fetch::Ok("enforce", 1000), "enforce#2 dns+fetch"),
          (1499, N, NF, "enforce#2 cache")] => CacheConfig::default();
    // §3.3/§5.1: a failed refetch keeps the cached policy until it expires.
    rfc8461_s5_1_failed_refetch_keeps_cached_policy:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (750, Txt::Id("2"), Fetch::Err, "enforce#1 dns+fetch"),
          (999, N, NF, "enforce#1 cache"),
          (1000, N, NF, "enforce#1 cache")] => CacheConfig::default();
    // §3.3: after a failure, no second fetch for the same id within five minutes; the expired
    // cached policy is not applied; after the interval the fetch is tried again.
    rfc8461_s3_3_retry_once_per_five_minutes_per_id:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (750, Txt::Id("2"), Fetch::Err, "enforce#1 dns+fetch"),
          (1001, Txt::Id("2"), NF, "no-policy dns"),
          (1049, N, NF, "no-policy cache"),
          (1050, Txt::Id("2"), Fetch::Ok("enforce", 1000), "enforce#2 dns+fetch")] => CacheConfig::default();
    // §3.3: a failed fetch and nothing cached: deliver as if there were no policy.
    rfc8461_s3_3_failed_fetch_without_cache_is_no_policy:
        &[(0, Txt::Id("1"), Fetch::Err, "no-policy dns+fetch"),
          (299, N, NF, "no-policy cache"),
          (300, Txt::Id("1"), Fetch::Ok("enforce", 86400), "enforce#1 dns+fetch")] => no_refresh();
    // §3.3: the retry limit is per id: a new id may be fetched at once (once the brief
    // negative answer has expired).
    rfc8461_s3_3_retry_limit_is_per_id:
        &[(0, Txt::Id("1"), Fetch::Err, "no-policy dns+fetch"),
          (5, Txt::Id("1"), NF, "no-policy dns"),
          (10, Txt::Id("2"), Fetch::Ok("enforce", 86400), "enforce#2 dns+fetch")]
        => CacheConfig { negative_ttl: 5, ..no_refresh() };
    // §5.1/§10.2: the record disappearing does not withdraw a valid cached policy.
    rfc8461_s5_1_txt_removed_policy_enforced_until_max_age:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (750, Txt::Gone, NF, "enforce#1 dns"),
          (1000, Txt::Gone, NF, "enforce#1 dns"),
          (1001, Txt::Gone, NF, "no-policy dns")] => CacheConfig { refresh_interval: 0, ..CacheConfig::default() };
    // §7/§10.2: a DNS failure never erases or downgrades a valid cached policy.
    rfc8461_s10_2_dns_failure_keeps_cached_policy:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (750, Txt::Fail, NF, "enforce#1 dns"),
          (1000, N, NF, "enforce#1 cache"),
          (1001, Txt::Fail, NF, "transient dns")] => CacheConfig { refresh_interval: 0, ..CacheConfig::default() };
    // §3.1: several records count as none; the cached policy stays.
    rfc8461_s3_1_invalid_rrset_keeps_cached_policy:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (750, Txt::Gone, NF, "enforce#1 dns")] => CacheConfig::default();
    // §3.1: no record: no policy, remembered briefly (negative_ttl).
    rfc8461_s3_1_no_record_cached_briefly:
        &[(0, Txt::Gone, NF, "no-policy dns"),
          (299, N, NF, "no-policy cache"),
          (300, Txt::Gone, NF, "no-policy dns")] => CacheConfig::default();
    // A transient DNS failure with nothing cached is remembered for transient_ttl only.
    rfc8461_s3_1_transient_failure_cached_briefly:
        &[(0, Txt::Fail, NF, "transient dns"),
          (29, N, NF, "transient cache"),
          (30, Txt::Id("1"), Fetch::Ok("enforce", 86400), "enforce#1 dns+fetch")] => CacheConfig::default();
    // §5.1: a valid cached policy wins over a remembered negative answer.
    rfc8461_s5_1_new_policy_replaces_negative_answer:
        &[(0, Txt::Gone, NF, "no-policy dns"),
          (300, Txt::Id("1"), Fetch::Ok("enforce", 86400), "enforce#1 dns+fetch"),
          (301, N, NF, "enforce#1 cache")] => no_refresh();
    // §5: mode none is cached like any policy (senders then act as if there were none).
    rfc8461_s5_mode_none_is_cached:
        &[(0, Txt::Id("1"), Fetch::Ok("none", 86400), "none#1 dns+fetch"),
          (10, N, NF, "none#1 cache")] => no_refresh();
    // §8.3: opting out: a new id announcing mode none replaces an enforce policy.
    rfc8461_s8_3_opt_out_with_mode_none:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 1000), "enforce#1 dns+fetch"),
          (750, Txt::Id("2"), Fetch::Ok("none", 1000), "none#2 dns+fetch")] => CacheConfig::default();
    // §10.2: proactive refresh is due after refresh_interval even with a long max_age.
    rfc8461_s10_2_proactive_refresh_after_interval:
        &[(0, Txt::Id("1"), Fetch::Ok("enforce", 31_557_600), "enforce#1 dns+fetch"),
          (86_399, N, NF, "enforce#1 cache"),
          (86_400, Txt::Id("1"), NF, "enforce#1 dns")] => CacheConfig::default();
}

fn refresh_bounds((max_age, interval, jitter): (u32, u64, u64), _: ()) {
    let cfg = CacheConfig {
        refresh_interval: interval,
        refresh_jitter: jitter,
        ..CacheConfig::default()
    };
    for now in [0_u64, 1, 1_000_000] {
        let cached = mtasts_core::sts::cache::CachedPolicy {
            policy: policy("enforce", max_age),
            id: "1".into(),
            fetched_at: now,
        };
        for j in [0, 1, jitter / 2, jitter, u64::MAX] {
            let at = next_refresh(now, &cached, &cfg, j);
            assert!(at >= now, "refresh before now: {at} < {now}");
            assert!(at <= cached.expires_at(), "refresh after expiry");
            assert!(
                at <= now.saturating_add(interval),
                "refresh later than the interval"
            );
        }
    }
}

cases! { refresh_bounds;
    // §5.1: refresh before expiry; the jitter only brings it forward.
    rfc8461_s5_1_refresh_before_expiry_one_day: (86_400, 86_400, 3_600) => ();
    rfc8461_s5_1_refresh_before_expiry_one_year: (31_557_600, 86_400, 3_600) => ();
    rfc8461_s5_1_refresh_before_expiry_tiny_max_age: (1, 86_400, 3_600) => ();
    rfc8461_s5_1_refresh_before_expiry_zero_max_age: (0, 86_400, 3_600) => ();
    rfc8461_s5_1_refresh_with_huge_jitter: (86_400, 86_400, u64::MAX) => ();
}

#[test]
fn rfc8461_s5_1_entry_survives_serialisation() {
    let (e, next) = on_discovery(
        None,
        100,
        Discovery::Record { id: "abc".into() },
        &CacheConfig::default(),
        7,
    );
    assert_eq!(next, Next::Fetch { id: "abc".into() });
    let e = on_fetch(
        e,
        100,
        "abc",
        FetchOutcome::Fetched(policy("testing", 604_800)),
        &CacheConfig::default(),
        7,
    );
    let json = serde_json::to_string(&e).expect("serialise");
    let back: CacheEntry = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, e);
}

#[test]
fn rfc8461_s5_1_useless_after_covers_policy_and_retry() {
    let cfg = CacheConfig::default();
    let (e, _) = on_discovery(None, 0, Discovery::Record { id: "1".into() }, &cfg, 0);
    let e = on_fetch(
        e,
        0,
        "1",
        FetchOutcome::Fetched(policy("enforce", 1000)),
        &cfg,
        0,
    );
    assert_eq!(e.useless_after(&cfg), 1000);
    let (e, _) = on_discovery(Some(e), 900, Discovery::Record { id: "2".into() }, &cfg, 0);
    let e = on_fetch(
        e,
        900,
        "2",
        FetchOutcome::Failed {
            error: FetchError::Status { status: 500 }.into(),
        },
        &cfg,
        0,
    );
    // The failed fetch must be remembered past the policy's expiry, for the retry limit.
    assert_eq!(e.useless_after(&cfg), 1200);
}
