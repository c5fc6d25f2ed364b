//! The sending MTA's policy cache (RFC 8461 §3.3, §5.1, §10.2) as pure decisions.
//!
//! A [`CacheEntry`] is everything a sender remembers about one policy domain. Three pure
//! functions move it forward; the caller does the I/O between them and passes in the time
//! (`now`, seconds since the Unix epoch) and the randomness (`jitter`):
//!
//! 1. [`answer`]: can the cache answer a lookup now, without any I/O? A valid cached policy
//!    is always applied (§3.3, §5.1), even when a refresh is due; the refresh then happens in
//!    the background.
//! 2. [`on_discovery`]: the `_mta-sts` TXT lookup finished. An unchanged `id` refreshes the
//!    cached policy without refetching it; a new `id` asks for a fetch, unless a fetch for that
//!    `id` failed less than [`CacheConfig::fetch_retry_interval`] ago (§3.3). A missing record
//!    or a DNS failure never erases a valid cached policy (§5.1, §10.2).
//! 3. [`on_fetch`]: the HTTPS fetch finished. A failure keeps the cached policy until it
//!    expires and remembers the failed `id` so it is not retried too often (§3.3).
//!
//! Time is whole seconds. A cached policy is valid while its age, counted from the fetch (or
//! the last confirmation of its unchanged `id`), has not exceeded `max_age` (§5.1:
//! "time-since-fetch has not exceeded its max_age").

use serde::{Deserialize, Serialize};

use crate::dns::DnsError;
use crate::sts::apply::Enforcement;
use crate::sts::fetch::PolicyFetchError;
use crate::sts::policy::Policy;
use crate::sts::record::{SelectError, select_sts_record};

/// Seconds since the Unix epoch.
pub type UnixSeconds = u64;

/// The tunables of the cache. Defaults follow RFC 8461's suggestions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How often a cached policy's TXT record is re-checked (§10.2 suggests daily).
    pub refresh_interval: u64,
    /// The largest random amount a refresh is brought forward by, so that entries cached at
    /// the same moment do not all refresh at the same moment.
    pub refresh_jitter: u64,
    /// How long a "no policy" answer (no record, invalid record, failed first fetch) is cached.
    pub negative_ttl: u64,
    /// How long a transient DNS failure without a cached policy is remembered before asking
    /// DNS again.
    pub transient_ttl: u64,
    /// The least time between two fetch attempts for the same policy `id` after a failure
    /// (§3.3: "no more than once per five minutes").
    pub fetch_retry_interval: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            refresh_interval: 86_400,
            refresh_jitter: 3_600,
            negative_ttl: 300,
            transient_ttl: 30,
            fetch_retry_interval: 300,
        }
    }
}

/// A policy as fetched, with the `id` of the TXT record that announced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPolicy {
    /// The policy.
    #[serde(with = "policy_text")]
    pub policy: Policy,
    /// The TXT record's `id` when the policy was fetched.
    pub id: String,
    /// When the policy was fetched, or last confirmed by an unchanged `id`.
    pub fetched_at: UnixSeconds,
}

impl CachedPolicy {
    /// The last second at which the policy is still valid.
    pub fn expires_at(&self) -> UnixSeconds {
        self.fetched_at
            .saturating_add(u64::from(self.policy.max_age))
    }

    /// §5.1: valid while "time-since-fetch has not exceeded its max_age".
    pub fn is_valid(&self, now: UnixSeconds) -> bool {
        now <= self.expires_at()
    }
}

/// Why the cache says there is no policy to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NegativeKind {
    /// No `_mta-sts` record, or none valid (§3.1): the domain has no policy.
    NoRecord,
    /// A record exists but its policy could not be fetched, and nothing valid is cached: the
    /// sender delivers as if the domain had no policy (§3.3).
    FetchFailed,
    /// DNS failed (SERVFAIL, timeout) and nothing valid is cached: whether a policy exists is
    /// unknown.
    Transient,
}

impl NegativeKind {
    /// The name used in serialised entries and output (`no-record`, `fetch-failed`,
    /// `transient`).
    pub fn as_str(self) -> &'static str {
        match self {
            NegativeKind::NoRecord => "no-record",
            NegativeKind::FetchFailed => "fetch-failed",
            NegativeKind::Transient => "transient",
        }
    }
}

/// A remembered "no policy" or "unknown" answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Negative {
    /// What kind of answer.
    pub kind: NegativeKind,
    /// The answer holds until (not including) this second.
    pub until: UnixSeconds,
    /// What went wrong, for logs and `mtasts resolve`.
    pub reason: String,
}

/// A failed fetch, remembered for the §3.3 retry limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFetch {
    /// The TXT `id` the fetch was for.
    pub id: String,
    /// When it failed.
    pub at: UnixSeconds,
    /// Why.
    pub reason: String,
}

/// Everything a sender remembers about one policy domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The last policy fetched, while it may still be useful.
    pub policy: Option<CachedPolicy>,
    /// When the TXT record was last looked up.
    pub checked_at: UnixSeconds,
    /// When the next proactive refresh is due (meaningful only with a policy).
    pub refresh_at: UnixSeconds,
    /// A remembered "no policy" or "unknown" answer.
    pub negative: Option<Negative>,
    /// The last failed fetch.
    pub failed_fetch: Option<FailedFetch>,
}

impl CacheEntry {
    /// The first second at which the entry holds nothing useful any more and may be dropped
    /// (the TTL for stores whose keys expire).
    pub fn useless_after(&self, cfg: &CacheConfig) -> UnixSeconds {
        let policy = self.policy.as_ref().map_or(0, CachedPolicy::expires_at);
        let negative = self.negative.as_ref().map_or(0, |n| n.until);
        let failed = self
            .failed_fetch
            .as_ref()
            .map_or(0, |f| f.at.saturating_add(cfg.fetch_retry_interval));
        policy.max(negative).max(failed)
    }

    /// The valid cached policy, if any.
    pub fn valid_policy(&self, now: UnixSeconds) -> Option<&CachedPolicy> {
        self.policy.as_ref().filter(|p| p.is_valid(now))
    }
}

/// What the cache can say about a lookup without any I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Apply this policy. `refresh_due` asks the caller to refresh it in the background.
    Policy {
        /// The valid cached policy.
        cached: &'a CachedPolicy,
        /// A proactive refresh is due (§5.1, §10.2).
        refresh_due: bool,
    },
    /// No policy applies.
    NoPolicy {
        /// Why.
        negative: &'a Negative,
    },
    /// Unknown for now: DNS failed and nothing valid is cached.
    Transient {
        /// Why.
        negative: &'a Negative,
    },
}

impl Answer<'_> {
    /// The policy to apply, if the answer is one and its mode is not `none` (§5: `none`
    /// behaves as if there were no policy).
    pub fn applicable_policy(&self) -> Option<&Policy> {
        match self {
            Answer::Policy { cached, .. }
                if cached.policy.mode.enforcement() != Enforcement::Ignore =>
            {
                Some(&cached.policy)
            }
            _ => None,
        }
    }
}

/// Step 1: the answer the cache gives now, or `None` when the TXT record must be looked up.
///
/// A valid cached policy wins over everything else, including a remembered negative answer
/// (§5.1: the cached policy MUST be applied).
pub fn answer(entry: &CacheEntry, now: UnixSeconds) -> Option<Answer<'_>> {
    if let Some(cached) = entry.valid_policy(now) {
        return Some(Answer::Policy {
            cached,
            refresh_due: now >= entry.refresh_at,
        });
    }
    let negative = entry.negative.as_ref().filter(|n| now < n.until)?;
    Some(match negative.kind {
        NegativeKind::Transient => Answer::Transient { negative },
        NegativeKind::NoRecord | NegativeKind::FetchFailed => Answer::NoPolicy { negative },
    })
}

/// What the `_mta-sts` TXT lookup found (§3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Discovery {
    /// Exactly one valid record, with this `id`.
    Record {
        /// The record's `id`.
        id: String,
    },
    /// No policy is announced.
    NoRecord {
        /// Why.
        reason: NoRecord,
    },
    /// SERVFAIL, timeout, or another failure that says nothing about the record.
    Transient {
        /// The lookup's error.
        error: DnsError,
    },
}

/// Why a TXT lookup announces no policy (§3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoRecord {
    /// NXDOMAIN or NODATA at `_mta-sts.<domain>`.
    Absent(DnsError),
    /// Records came back, but the RRset rule found none valid: no `v=STSv1` record, several,
    /// or an invalid one.
    Select(SelectError),
}

impl std::fmt::Display for NoRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoRecord::Absent(e) => e.fmt(f),
            NoRecord::Select(e) => e.fmt(f),
        }
    }
}

impl Discovery {
    /// §3.1 over the lookup's outcome: the RRset rule on records, "no record" for NXDOMAIN and
    /// NODATA, and a transient failure for everything else.
    pub fn from_lookup<R, S>(lookup: Result<&[R], &DnsError>) -> Discovery
    where
        R: AsRef<[S]>,
        S: AsRef<[u8]>,
    {
        match lookup {
            Ok(rrset) => match select_sts_record(rrset) {
                Ok(rec) => Discovery::Record { id: rec.id },
                Err(e) => Discovery::NoRecord {
                    reason: NoRecord::Select(e),
                },
            },
            Err(e) if e.is_negative() => Discovery::NoRecord {
                reason: NoRecord::Absent(e.clone()),
            },
            Err(e) => Discovery::Transient { error: e.clone() },
        }
    }

    /// A short stable name: `record`, `no-record`, `transient`.
    pub fn kind(&self) -> &'static str {
        match self {
            Discovery::Record { .. } => "record",
            Discovery::NoRecord { .. } => "no-record",
            Discovery::Transient { .. } => "transient",
        }
    }
}

impl std::fmt::Display for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discovery::Record { id } => write!(f, "one valid record, id {id}"),
            Discovery::NoRecord { reason } => reason.fmt(f),
            Discovery::Transient { error } => error.fmt(f),
        }
    }
}

/// What the caller must do after [`on_discovery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing: [`answer`] on the returned entry gives the result.
    Done,
    /// Fetch the policy over HTTPS, then call [`on_fetch`] with this `id`.
    Fetch {
        /// The `id` the fetched policy will be stored under.
        id: String,
    },
}

/// Step 2: the TXT lookup finished.
///
/// `jitter` is a random number of seconds in `0..cfg.refresh_jitter`, chosen by the caller.
pub fn on_discovery(
    entry: Option<CacheEntry>,
    now: UnixSeconds,
    discovery: Discovery,
    cfg: &CacheConfig,
    jitter: u64,
) -> (CacheEntry, Next) {
    let mut entry = entry.unwrap_or_default();
    entry.checked_at = now;
    let has_valid = entry.valid_policy(now).is_some();
    match discovery {
        Discovery::Record { id } => {
            if let Some(cached) = entry.policy.as_mut().filter(|p| p.is_valid(now))
                && cached.id == id
            {
                // Unchanged id: the policy is unchanged, so it is confirmed without a refetch
                // and its max_age counts again from now.
                cached.fetched_at = now;
                entry.refresh_at = next_refresh(now, cached, cfg, jitter);
                entry.negative = None;
                entry.failed_fetch = None;
                return (entry, Next::Done);
            }
            let throttled = entry
                .failed_fetch
                .as_ref()
                .is_some_and(|f| f.id == id && now < f.at.saturating_add(cfg.fetch_retry_interval));
            if !throttled {
                return (entry, Next::Fetch { id });
            }
            // §3.3: a fetch for this id failed less than fetch_retry_interval ago.
            let retry_at = entry
                .failed_fetch
                .as_ref()
                .map_or(now, |f| f.at.saturating_add(cfg.fetch_retry_interval));
            if has_valid {
                entry.refresh_at = retry_at;
            } else {
                let reason = entry
                    .failed_fetch
                    .as_ref()
                    .map(|f| format!("the policy fetch for id {} failed: {}", f.id, f.reason))
                    .unwrap_or_default();
                entry.negative = Some(Negative {
                    kind: NegativeKind::FetchFailed,
                    until: retry_at
                        .min(now.saturating_add(cfg.negative_ttl))
                        .max(now + 1),
                    reason,
                });
            }
            (entry, Next::Done)
        }
        Discovery::NoRecord { reason } => {
            let reason = reason.to_string();
            if let Some(cached) = entry.valid_policy(now) {
                // §5.1/§10.2: a vanished record does not withdraw a valid cached policy; the
                // domain opts out by publishing mode none and waiting for caches to expire.
                entry.refresh_at = next_refresh(now, cached, cfg, jitter);
            } else {
                entry.policy = None;
                entry.negative = Some(Negative {
                    kind: NegativeKind::NoRecord,
                    until: now.saturating_add(cfg.negative_ttl.max(1)),
                    reason,
                });
            }
            (entry, Next::Done)
        }
        Discovery::Transient { error } => {
            let reason = error.to_string();
            if has_valid {
                entry.refresh_at = now.saturating_add(cfg.fetch_retry_interval);
            } else {
                entry.negative = Some(Negative {
                    kind: NegativeKind::Transient,
                    until: now.saturating_add(cfg.transient_ttl.max(1)),
                    reason,
                });
            }
            (entry, Next::Done)
        }
    }
}

/// How the HTTPS fetch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A valid policy.
    Fetched(Policy),
    /// Anything else (TLS, HTTP status, media type, size, timeout, invalid policy).
    Failed {
        /// What went wrong.
        error: PolicyFetchError,
    },
}

/// Step 3: the fetch for `id` (from [`Next::Fetch`]) finished.
pub fn on_fetch(
    entry: CacheEntry,
    now: UnixSeconds,
    id: &str,
    outcome: FetchOutcome,
    cfg: &CacheConfig,
    jitter: u64,
) -> CacheEntry {
    let mut entry = entry;
    match outcome {
        FetchOutcome::Fetched(policy) => {
            let cached = CachedPolicy {
                policy,
                id: id.to_owned(),
                fetched_at: now,
            };
            entry.refresh_at = next_refresh(now, &cached, cfg, jitter);
            entry.policy = Some(cached);
            entry.negative = None;
            entry.failed_fetch = None;
        }
        FetchOutcome::Failed { error } => {
            let reason = error.to_string();
            let retry_at = now.saturating_add(cfg.fetch_retry_interval);
            if entry.valid_policy(now).is_some() {
                // §3.3/§5.1: keep applying the cached policy until it expires; try again
                // once the retry interval has passed.
                entry.refresh_at = retry_at;
            } else {
                entry.policy = None;
                entry.negative = Some(Negative {
                    kind: NegativeKind::FetchFailed,
                    until: now
                        .saturating_add(cfg.negative_ttl.min(cfg.fetch_retry_interval).max(1)),
                    reason: format!("the policy fetch for id {id} failed: {reason}"),
                });
            }
            entry.failed_fetch = Some(FailedFetch {
                id: id.to_owned(),
                at: now,
                reason,
            });
        }
    }
    entry
}

/// When the next proactive refresh of `cached` is due: after `refresh_interval`, but no later
/// than three quarters into its `max_age`, brought forward by up to `jitter` seconds (never
/// by more than half the wait).
pub fn next_refresh(
    now: UnixSeconds,
    cached: &CachedPolicy,
    cfg: &CacheConfig,
    jitter: u64,
) -> UnixSeconds {
    let by_interval = now.saturating_add(cfg.refresh_interval);
    let by_age = cached
        .fetched_at
        .saturating_add(u64::from(cached.policy.max_age) / 4 * 3);
    let due = by_interval.min(by_age).max(now);
    let wait = due - now;
    due - jitter.min(cfg.refresh_jitter).min(wait / 2)
}

/// Serde support: a [`Policy`] is stored as its canonical text.
mod policy_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::sts::policy::Policy;

    pub(super) fn serialize<S: Serializer>(policy: &Policy, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&policy.to_text())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
        let text = String::deserialize(d)?;
        Policy::parse(text.as_bytes()).map_err(D::Error::custom)
    }
}
