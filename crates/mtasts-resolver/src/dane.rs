//! DANE discovery (RFC 7672) beside the MTA-STS policy: the MX RRset, each MX host's
//! addresses and its `_25._tcp` TLSA RRset with their DNSSEC status, collected by the
//! workspace's one DNS edge ([`mtasts_net::dns::dane_evidence`]) in the order and extent the
//! core says ([`mtasts_core::dane::mx_hosts`], [`mtasts_core::dane::tlsa_names`]), judged by
//! the core ([`mtasts_core::dane::assess`]).
//!
//! The AD flag is believed only when [`mtasts_core::dane::ad_trusted`] says so: every upstream
//! resolver on loopback, or `dane.trust_remote_ad`. Otherwise no lookup is made and DANE never
//! applies, so the answers are MTA-STS's exactly as without DANE.
//!
//! Assessments are cached apart from the MTA-STS policies, in memory only, for their DNS TTLs
//! (negative TTLs included, RFC 2308 §5) within `dane.min_ttl` and `dane.max_ttl`; failures
//! for `dane.failure_ttl`. They are DNS data with DNS lifetimes: persisting them would only
//! be a second DNS cache, and a restarted daemon looks them up again in a few round trips.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mtasts_core::dane::{self, Assessment, CacheLimits, Decision, Evidence, assess};
use mtasts_core::sts::cache::UnixSeconds;
use mtasts_net::dns::DnsLookup;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::engine::{Clock, ForgetLog};
use crate::resolution::Source;

/// The `[resolver.dane]` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaneConfig {
    /// Believe the AD flag of upstream resolvers that are not on loopback. Only for a
    /// validating resolver reached over a channel no one else can write to (IPsec, a private
    /// link): anyone who can forge its answers could otherwise turn MTA-STS off for a domain
    /// by forging TLSA records with AD set.
    pub trust_remote_ad: bool,
    /// The least time an assessment is cached, in seconds.
    pub min_ttl: u64,
    /// The most time an assessment is cached, in seconds.
    pub max_ttl: u64,
    /// How long a failed assessment (a DNSSEC failure: deliveries wait) is cached, in seconds.
    pub failure_ttl: u64,
}

impl Default for DaneConfig {
    fn default() -> Self {
        let l = CacheLimits::default();
        DaneConfig {
            trust_remote_ad: false,
            min_ttl: l.min_ttl,
            max_ttl: l.max_ttl,
            failure_ttl: l.failure_ttl,
        }
    }
}

impl DaneConfig {
    /// The cache limits as the core takes them.
    pub fn limits(&self) -> CacheLimits {
        CacheLimits {
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            failure_ttl: self.failure_ttl,
        }
    }
}

/// One cached assessment and what it rests on.
#[derive(Clone, Debug, Serialize)]
pub struct DaneEntry {
    /// What was looked up.
    pub evidence: Evidence,
    /// What the core made of it.
    pub assessment: Assessment,
    /// When it was looked up.
    pub checked_at: UnixSeconds,
    /// The first second it is no longer used.
    pub expires_at: UnixSeconds,
}

/// The DANE status of one policy domain.
#[derive(Clone, Debug)]
pub enum DaneStatus {
    /// The upstream resolvers' AD flags are not trusted: nothing was looked up, and DANE does
    /// not apply.
    Untrusted {
        /// The resolvers.
        servers: Vec<SocketAddr>,
    },
    /// Looked up and assessed.
    Assessed(Arc<DaneEntry>),
    /// The request is not a domain name.
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

/// The DANE status of a domain, and where it came from.
#[derive(Clone, Debug)]
pub struct DaneResolution {
    /// The policy domain (lower-case A-labels).
    pub domain: String,
    /// The status.
    pub status: DaneStatus,
    /// Memory, or the network.
    pub source: Source,
}

impl DaneResolution {
    /// The decision: [`Decision::NotApplicable`] when nothing could be trusted.
    pub fn decision(&self) -> Decision {
        match &self.status {
            DaneStatus::Assessed(e) => e.assessment.decision.clone(),
            DaneStatus::Untrusted { servers } => Decision::NotApplicable {
                reason: untrusted_reason(servers),
            },
            DaneStatus::Invalid { reason } => Decision::NotApplicable {
                reason: reason.clone(),
            },
        }
    }
}

fn untrusted_reason(servers: &[SocketAddr]) -> String {
    if servers.is_empty() {
        "no DNS resolver is configured whose AD flag could be trusted".to_owned()
    } else {
        let list: Vec<String> = servers.iter().map(ToString::to_string).collect();
        format!(
            "the AD flag of {} is not trusted (not loopback; see resolver.dane.trust_remote_ad)",
            list.join(", ")
        )
    }
}

pub use mtasts_net::dns::dane_evidence as discover;

const SHARDS: usize = 16;

type Inflight = Mutex<HashMap<String, watch::Receiver<Option<Arc<DaneEntry>>>>>;

/// Counters of the DANE side, for metrics.
#[derive(Debug, Default)]
pub struct DaneCounters {
    /// Lookups answered from memory.
    pub memory_hits: AtomicU64,
    /// Assessments made (each a round of DNS queries).
    pub lookups: AtomicU64,
    /// Lookups that joined one already in flight.
    pub coalesced: AtomicU64,
    /// Assessments that ended in a failure (deliveries wait).
    pub failures: AtomicU64,
    /// Entries dropped from memory to stay under capacity.
    pub evictions: AtomicU64,
}

/// The DANE cache and its lookups.
pub(crate) struct DaneCache {
    cfg: DaneConfig,
    trusted: bool,
    servers: Vec<SocketAddr>,
    capacity: usize,
    shards: Vec<RwLock<HashMap<String, Arc<DaneEntry>>>>,
    len: AtomicUsize,
    /// The resolver's forgets: an assessment begun before its domain was forgotten answers
    /// its callers but is not kept (checked under the shard lock that the removal takes).
    forgets: Arc<ForgetLog>,
    inflight: Inflight,
    pub(crate) counters: DaneCounters,
}

impl DaneCache {
    pub(crate) fn new(
        cfg: DaneConfig,
        dns: &dyn DnsLookup,
        capacity: usize,
        forgets: Arc<ForgetLog>,
    ) -> DaneCache {
        let servers = dns.servers();
        DaneCache {
            trusted: dane::ad_trusted(&servers, cfg.trust_remote_ad),
            servers,
            cfg,
            capacity: capacity.max(1),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            len: AtomicUsize::new(0),
            forgets,
            inflight: Mutex::new(HashMap::new()),
            counters: DaneCounters::default(),
        }
    }

    pub(crate) fn trusted(&self) -> bool {
        self.trusted
    }

    pub(crate) fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn shard(&self, domain: &str) -> &RwLock<HashMap<String, Arc<DaneEntry>>> {
        let mut h = DefaultHasher::new();
        domain.hash(&mut h);
        let i = usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    fn get(&self, domain: &str, now: UnixSeconds) -> Option<Arc<DaneEntry>> {
        let shard = self.shard(domain).read().unwrap_or_else(|p| p.into_inner());
        shard.get(domain).filter(|e| now < e.expires_at).cloned()
    }

    /// Caches `entry`, unless `domain` was forgotten since the round that made it began
    /// ([`ForgetLog::began`]).
    fn put(&self, domain: &str, entry: Arc<DaneEntry>, now: UnixSeconds, began: u64) {
        let mut shard = self
            .shard(domain)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if self.forgets.forgotten_since(domain, began) {
            tracing::debug!(
                domain,
                "forgotten during the DANE lookup: its result is not cached"
            );
            return;
        }
        if shard.insert(domain.to_owned(), entry).is_none() {
            let len = self.len.fetch_add(1, Ordering::Relaxed) + 1;
            if len > self.capacity {
                // Over capacity: drop an expired entry of this shard, else the one that
                // expires first among a few, never the one just written.
                let victim = shard
                    .iter()
                    .filter(|(k, _)| k.as_str() != domain)
                    .take(8)
                    .min_by_key(|(_, e)| if e.expires_at <= now { 0 } else { e.expires_at })
                    .map(|(k, _)| k.clone());
                if let Some(k) = victim {
                    shard.remove(&k);
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The assessment of `domain` still in use at `now`, without any lookup.
    pub(crate) fn cached(&self, domain: &str, now: UnixSeconds) -> Option<Arc<DaneEntry>> {
        self.get(domain, now)
    }

    /// Every assessment still in use at `now`, in no particular order.
    pub(crate) fn entries(&self, now: UnixSeconds) -> Vec<(String, Arc<DaneEntry>)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            out.extend(
                shard
                    .iter()
                    .filter(|(_, e)| now < e.expires_at)
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        out
    }

    /// Drops the assessment of `domain`; whether there was one (expired or not).
    pub(crate) fn remove(&self, domain: &str) -> bool {
        let mut shard = self
            .shard(domain)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let removed = shard.remove(domain).is_some();
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Drops expired entries; returns how many.
    pub(crate) fn purge(&self, now: UnixSeconds) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|_, e| now < e.expires_at);
            dropped += before - shard.len();
        }
        self.len.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }

    /// The DANE status of `domain` (normalised): memory, or one round of lookups shared by
    /// every concurrent caller (`fresh` skips memory and coalescing, for `mtasts resolve
    /// --refresh`).
    pub(crate) async fn resolve(
        self: &Arc<Self>,
        dns: &Arc<dyn DnsLookup>,
        clock: &Clock,
        domain: &str,
        fresh: bool,
    ) -> DaneResolution {
        if !self.trusted {
            return DaneResolution {
                domain: domain.to_owned(),
                status: DaneStatus::Untrusted {
                    servers: self.servers.clone(),
                },
                source: Source::Memory,
            };
        }
        if !fresh && let Some(e) = self.get(domain, clock()) {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return DaneResolution {
                domain: domain.to_owned(),
                status: DaneStatus::Assessed(e),
                source: Source::Memory,
            };
        }
        let entry = if fresh {
            self.round(dns, clock, domain).await
        } else {
            self.coalesced(dns, clock, domain).await
        };
        DaneResolution {
            domain: domain.to_owned(),
            status: DaneStatus::Assessed(entry),
            source: Source::Network,
        }
    }

    async fn coalesced(
        self: &Arc<Self>,
        dns: &Arc<dyn DnsLookup>,
        clock: &Clock,
        domain: &str,
    ) -> Arc<DaneEntry> {
        let (tx, rx) = watch::channel(None);
        let joined = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(domain) {
                Some(existing) => Some(existing.clone()),
                None => {
                    inflight.insert(domain.to_owned(), rx);
                    None
                }
            }
        };
        if let Some(mut rx) = joined {
            self.counters.coalesced.fetch_add(1, Ordering::Relaxed);
            if let Ok(v) = rx.wait_for(Option::is_some).await
                && let Some(entry) = v.clone()
            {
                return entry;
            }
            return self.round(dns, clock, domain).await;
        }
        // The round runs in a task of its own, so a caller that goes away (a request
        // timeout) does not abandon the callers that joined it.
        let this = Arc::clone(self);
        let dns2 = Arc::clone(dns);
        let clock2 = Arc::clone(clock);
        let key = domain.to_owned();
        let task = tokio::spawn(async move {
            let entry = this.round(&dns2, &clock2, &key).await;
            let _ = tx.send(Some(entry.clone()));
            this.inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            entry
        });
        match task.await {
            Ok(e) => e,
            Err(_) => {
                self.inflight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(domain);
                self.round(dns, clock, domain).await
            }
        }
    }

    async fn round(&self, dns: &Arc<dyn DnsLookup>, clock: &Clock, domain: &str) -> Arc<DaneEntry> {
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let began = self.forgets.began();
        let evidence = discover(dns, domain).await;
        let assessment = assess(&evidence);
        if matches!(assessment.decision, Decision::Delay { .. }) {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        let now = clock();
        let expires_at = now.saturating_add(assessment.cache_for(&self.cfg.limits()));
        tracing::debug!(
            domain,
            decision = assessment.decision.kind(),
            ttl = expires_at - now,
            "DANE assessed"
        );
        let entry = Arc::new(DaneEntry {
            evidence,
            assessment,
            checked_at: now,
            expires_at,
        });
        self.put(domain, entry.clone(), now, began);
        entry
    }
}
