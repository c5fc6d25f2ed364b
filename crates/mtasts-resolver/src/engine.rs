//! The resolver: the in-memory layer, the store, coalescing, and background refresh around
//! the core's cache decisions ([`mtasts_core::sts::cache`]).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtasts_core::domain::to_a_label;
use mtasts_core::sts::cache::{
    Answer, CacheConfig, CacheEntry, FetchOutcome, Next, UnixSeconds, answer, on_discovery,
    on_fetch,
};
use serde::Serialize;
use tokio::sync::watch;

use crate::config::ResolverConfig;
use mtasts_net::dns::{Dns, DnsLookup, DnsSetupError};
use mtasts_net::tls::RootsError;

use crate::dane::{DaneCache, DaneCounters, DaneResolution, DaneStatus};
use crate::dns::{DiscoveryReport, discover};
use crate::fetch::{FetchReport, Fetcher};
use crate::resolution::{Outcome, Resolution, Source};
use crate::store::{self, Store, StoreError};

const SHARDS: usize = 64;

/// The source of "now", in seconds since the Unix epoch. Tests pass a controllable one.
pub type Clock = Arc<dyn Fn() -> UnixSeconds + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Why the resolver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// DNS client setup.
    #[error(transparent)]
    Dns(#[from] DnsSetupError),
    /// HTTPS client setup.
    #[error(transparent)]
    Fetch(#[from] RootsError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting is out of range.
    #[error("resolver: {0}")]
    Range(#[from] crate::config::RangeError),
}

/// Counters, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Lookups answered from memory.
    pub memory_hits: AtomicU64,
    /// Lookups answered from the store.
    pub store_hits: AtomicU64,
    /// Lookups that joined a resolution already in flight.
    pub coalesced: AtomicU64,
    /// TXT lookups made.
    pub dns_lookups: AtomicU64,
    /// TXT lookups that failed transiently.
    pub dns_failures: AtomicU64,
    /// Policy fetches made.
    pub fetches: AtomicU64,
    /// Policy fetches that failed.
    pub fetch_failures: AtomicU64,
    /// Background refreshes started.
    pub refreshes: AtomicU64,
    /// Store operations that failed.
    pub store_errors: AtomicU64,
    /// Entries dropped from memory to stay under capacity.
    pub evictions: AtomicU64,
    /// Times the store's backing file was found deleted or replaced and was recreated from
    /// memory.
    pub store_recreated: AtomicU64,
}

/// Everything one resolution did, for `mtasts resolve`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trace {
    /// The cache entry before, if any (memory or store).
    pub cached_before: Option<CacheEntry>,
    /// The TXT lookup, when one was made.
    pub discovery: Option<DiscoveryReport>,
    /// The fetch, when one was made.
    pub fetch: Option<FetchReport>,
    /// The cache entry after.
    pub cached_after: Option<CacheEntry>,
}

struct Inner {
    cfg: CacheConfig,
    capacity: usize,
    shards: Vec<RwLock<HashMap<String, Arc<CacheEntry>>>>,
    len: AtomicUsize,
    inflight: Mutex<HashMap<String, watch::Receiver<Option<Arc<CacheEntry>>>>>,
    dns: Arc<dyn DnsLookup>,
    fetcher: Fetcher,
    store: Arc<dyn Store>,
    clock: Clock,
    counters: Counters,
    dane: Arc<DaneCache>,
    /// Taken shared by every write of a round's result (memory and store) and of the store's
    /// write-back, exclusively by [`Resolver::forget`]: a forget happens between writes, never
    /// in the middle of one.
    write_gate: tokio::sync::RwLock<()>,
    /// The forgets made lately, shared with the DANE cache: a round (policy or DANE) that
    /// began before its domain was forgotten writes nothing back.
    forgets: Arc<ForgetLog>,
}

/// The forgets made lately: how many there have been, and for each domain forgotten in the
/// last [`FORGOTTEN_KEPT`] seconds (longer than any round lasts) the count once its forget was
/// recorded, and when. A round notes [`ForgetLog::began`] when it begins and, before writing
/// its result, asks [`ForgetLog::forgotten_since`]; [`Resolver::forget`] records a forget
/// before it removes anything, so a round either writes before the removal (and is removed)
/// or sees the forget (and writes nothing).
#[derive(Debug, Default)]
pub(crate) struct ForgetLog {
    count: AtomicU64,
    recent: Mutex<HashMap<String, (u64, UnixSeconds)>>,
}

impl ForgetLog {
    /// What a round notes when it begins.
    pub(crate) fn began(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether `domain` was forgotten after a round that noted `began` began.
    pub(crate) fn forgotten_since(&self, domain: &str, began: u64) -> bool {
        if self.count.load(Ordering::SeqCst) == began {
            return false;
        }
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.get(domain).is_some_and(|&(at, _)| at > began)
    }

    fn record(&self, domain: &str, now: UnixSeconds) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let count = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        recent.retain(|_, &mut (_, when)| when.saturating_add(FORGOTTEN_KEPT) >= now);
        recent.insert(domain.to_owned(), (count, now));
    }
}

/// Seconds a forget is remembered to stop rounds begun before it from writing their result.
/// A round is bounded by its DNS and fetch timeouts (at most 60 s × 10 attempts a query, a
/// 120 s connect and a 600 s fetch), far less than this.
const FORGOTTEN_KEPT: UnixSeconds = 3 * 3_600;

/// The MTA-STS policy resolver. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("entries", &self.len())
            .field("store", &self.inner.store.backend())
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Builds a resolver from its configuration, opening the configured store and loading
    /// its entries into memory.
    pub async fn new(config: &ResolverConfig) -> Result<Resolver, ResolverError> {
        let store = store::open(&config.store).await?;
        Self::with_parts(config, store, system_clock()).await
    }

    /// Builds a resolver over a given store and clock.
    pub async fn with_parts(
        config: &ResolverConfig,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> Result<Resolver, ResolverError> {
        let dns = Dns::new(&config.dns.settings())?.shared();
        Self::with_dns(config, store, clock, dns).await
    }

    /// Builds a resolver over a given store, clock and DNS client (for tests without
    /// sockets, [`mtasts_net::StaticDns`]).
    pub async fn with_dns(
        config: &ResolverConfig,
        store: Arc<dyn Store>,
        clock: Clock,
        dns: Arc<dyn DnsLookup>,
    ) -> Result<Resolver, ResolverError> {
        config.validate()?;
        let fetcher = Fetcher::new(&config.fetch)?;
        let forgets = Arc::new(ForgetLog::default());
        let dane = Arc::new(DaneCache::new(
            config.dane,
            dns.as_ref(),
            config.memory.capacity,
            forgets.clone(),
        ));
        let inner = Inner {
            dane,
            cfg: config.cache,
            capacity: config.memory.capacity.max(1),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            len: AtomicUsize::new(0),
            inflight: Mutex::new(HashMap::new()),
            dns,
            fetcher,
            store,
            clock,
            counters: Counters::default(),
            write_gate: tokio::sync::RwLock::new(()),
            forgets,
        };
        let resolver = Resolver {
            inner: Arc::new(inner),
        };
        let now = resolver.now();
        let preload = config.memory.preload.min(config.memory.capacity);
        if preload > 0 {
            match resolver.inner.store.load(now, preload).await {
                Ok(entries) => {
                    for (domain, entry) in entries {
                        resolver.mem_put(&domain, Arc::new(entry));
                    }
                }
                Err(e) => {
                    resolver.count_store_error(&e);
                }
            }
        }
        Ok(resolver)
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The DANE counters.
    pub fn dane_counters(&self) -> &DaneCounters {
        &self.inner.dane.counters
    }

    /// How many DANE assessments are in memory.
    pub fn dane_cached(&self) -> usize {
        self.inner.dane.len()
    }

    /// How many DNSSEC-status DNS queries (DANE lookups) were sent so far.
    pub fn dane_queries(&self) -> u64 {
        self.inner.dns.dnssec_queries()
    }

    /// Whether DANE lookups are made at all: the upstream resolvers' AD flags are trusted
    /// ([`mtasts_core::dane::ad_trusted`]).
    pub fn dane_trusted(&self) -> bool {
        self.inner.dane.trusted()
    }

    /// The upstream resolvers DANE lookups go to.
    pub fn dns_servers(&self) -> &[std::net::SocketAddr] {
        self.inner.dane.servers()
    }

    /// The DANE status of `domain` (RFC 7672): from memory while its DNS TTLs last, else one
    /// round of DNSSEC lookups shared by concurrent callers. `refresh` skips memory.
    pub async fn resolve_dane(&self, domain: &str, refresh: bool) -> DaneResolution {
        match normalize(domain) {
            Ok(d) => {
                self.inner
                    .dane
                    .resolve(&self.inner.dns, &self.inner.clock, &d, refresh)
                    .await
            }
            Err(reason) => DaneResolution {
                domain: domain.to_owned(),
                status: DaneStatus::Invalid { reason },
                source: Source::Memory,
            },
        }
    }

    /// How many domains are in memory.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    /// Whether memory holds no domain.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache tunables in force.
    pub fn cache_config(&self) -> CacheConfig {
        self.inner.cfg
    }

    /// The store's backend name.
    pub fn store_backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    /// "Now" by the resolver's clock ([`Clock`]): what every cache decision is made at.
    pub fn now(&self) -> UnixSeconds {
        (self.inner.clock)()
    }

    fn jitter(&self) -> u64 {
        let max = self.inner.cfg.refresh_jitter;
        if max == 0 { 0 } else { fastrand::u64(0..max) }
    }

    fn shard(&self, domain: &str) -> &RwLock<HashMap<String, Arc<CacheEntry>>> {
        let mut h = DefaultHasher::new();
        domain.hash(&mut h);
        let i = usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0);
        &self.inner.shards[i]
    }

    fn mem_get(&self, domain: &str) -> Option<Arc<CacheEntry>> {
        let shard = self.shard(domain).read().unwrap_or_else(|p| p.into_inner());
        shard.get(domain).cloned()
    }

    fn mem_put(&self, domain: &str, entry: Arc<CacheEntry>) {
        let mut shard = self
            .shard(domain)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if shard.insert(domain.to_owned(), entry).is_none() {
            let len = self.inner.len.fetch_add(1, Ordering::Relaxed) + 1;
            if len > self.inner.capacity {
                // Over capacity: drop the entry of this shard that stops being useful first
                // (among a few), but never the one just written.
                let cfg = self.inner.cfg;
                let victim = shard
                    .iter()
                    .filter(|(k, _)| k.as_str() != domain)
                    .take(8)
                    .min_by_key(|(_, e)| e.useless_after(&cfg))
                    .map(|(k, _)| k.clone());
                if let Some(k) = victim {
                    shard.remove(&k);
                    self.inner.len.fetch_sub(1, Ordering::Relaxed);
                    self.inner
                        .counters
                        .evictions
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn count_store_error(&self, e: &StoreError) {
        self.inner
            .counters
            .store_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "cache store");
    }

    /// Resolves the policy of `domain` as a sending MTA must before delivering to it.
    ///
    /// A valid cached policy is answered from memory with no I/O; if its refresh is due, the
    /// refresh runs in the background. Concurrent resolutions of one domain share one DNS
    /// lookup and one fetch.
    pub async fn resolve(&self, domain: &str) -> Resolution {
        let domain = match normalize(domain) {
            Ok(d) => d,
            Err(reason) => {
                return Resolution {
                    domain: domain.to_owned(),
                    outcome: Outcome::Invalid { reason },
                    source: Source::Memory,
                };
            }
        };
        let now = self.now();
        if let Some(entry) = self.mem_get(&domain)
            && let Some(ans) = answer(&entry, now)
        {
            self.inner
                .counters
                .memory_hits
                .fetch_add(1, Ordering::Relaxed);
            if let Answer::Policy {
                refresh_due: true, ..
            } = ans
            {
                self.spawn_refresh(domain.clone());
            }
            let outcome = outcome_of(&entry, ans);
            return Resolution {
                domain,
                outcome,
                source: Source::Memory,
            };
        }
        self.resolve_slow(domain, false).await
    }

    /// Resolves with no coalescing and returns what was done, for `mtasts resolve`.
    /// `refresh` forces a TXT lookup even when the cache could answer.
    pub async fn resolve_traced(&self, domain: &str, refresh: bool) -> (Resolution, Trace) {
        let mut trace = Trace::default();
        let domain = match normalize(domain) {
            Ok(d) => d,
            Err(reason) => {
                let res = Resolution {
                    domain: domain.to_owned(),
                    outcome: Outcome::Invalid { reason },
                    source: Source::Memory,
                };
                return (res, trace);
            }
        };
        let (entry, source) = self.round(&domain, refresh, Some(&mut trace)).await;
        trace.cached_after = Some((*entry).clone());
        let outcome = decided(&entry, self.now());
        (
            Resolution {
                domain,
                outcome,
                source,
            },
            trace,
        )
    }

    async fn resolve_slow(&self, domain: String, refresh: bool) -> Resolution {
        let (entry, source) = self.coalesced(&domain, refresh).await;
        let outcome = decided(&entry, self.now());
        Resolution {
            domain,
            outcome,
            source,
        }
    }

    /// One round per domain at a time: the first caller does it in a task of its own (so a
    /// cancelled caller cannot abandon the others), the rest wait for its result.
    async fn coalesced(&self, domain: &str, refresh: bool) -> (Arc<CacheEntry>, Source) {
        let (tx, rx) = watch::channel(None);
        // Join a round in flight, or register ours, in one critical section.
        let leader = {
            let mut inflight = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match inflight.get(domain) {
                Some(existing) => Some(existing.clone()),
                None => {
                    inflight.insert(domain.to_owned(), rx);
                    None
                }
            }
        };
        if let Some(mut rx) = leader {
            self.inner
                .counters
                .coalesced
                .fetch_add(1, Ordering::Relaxed);
            if let Ok(v) = rx.wait_for(Option::is_some).await
                && let Some(entry) = v.clone()
            {
                return (entry, Source::Network);
            }
            // The leader vanished: do it ourselves.
            return self.round(domain, refresh, None).await;
        }
        let this = self.clone();
        let key = domain.to_owned();
        let task = tokio::spawn(async move {
            let result = this.round(&key, refresh, None).await;
            let _ = tx.send(Some(result.0.clone()));
            this.inner
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            result
        });
        match task.await {
            Ok(r) => r,
            Err(_) => {
                self.inner
                    .inflight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(domain);
                self.round(domain, refresh, None).await
            }
        }
    }

    /// Store, then DNS, then (if asked) HTTPS; writes the result to memory and the store.
    async fn round(
        &self,
        domain: &str,
        refresh: bool,
        mut trace: Option<&mut Trace>,
    ) -> (Arc<CacheEntry>, Source) {
        let began = self.inner.forgets.began();
        let now = self.now();
        let mut current = self.mem_get(domain).map(|e| (*e).clone());
        if current.as_ref().and_then(|e| answer(e, now)).is_none() || refresh {
            match self.inner.store.get(domain, now).await {
                Ok(Some(stored)) => {
                    if store_wins(current.as_ref(), &stored) {
                        current = Some(stored);
                    }
                }
                Ok(None) => {}
                Err(e) => self.count_store_error(&e),
            }
        }
        if let Some(t) = trace.as_deref_mut() {
            t.cached_before.clone_from(&current);
        }
        if !refresh
            && let Some(entry) = current.as_ref()
            && let Some(ans) = answer(entry, now)
            && !matches!(
                ans,
                Answer::Policy {
                    refresh_due: true,
                    ..
                }
            )
        {
            self.inner
                .counters
                .store_hits
                .fetch_add(1, Ordering::Relaxed);
            let entry = Arc::new(entry.clone());
            let _gate = self.inner.write_gate.read().await;
            if !self.inner.forgets.forgotten_since(domain, began) {
                self.mem_put(domain, entry.clone());
            }
            return (entry, Source::Store);
        }
        let cfg = self.inner.cfg;
        self.inner
            .counters
            .dns_lookups
            .fetch_add(1, Ordering::Relaxed);
        let report = discover(self.inner.dns.as_ref(), domain).await;
        if matches!(
            report.discovery,
            mtasts_core::sts::cache::Discovery::Transient { .. }
        ) {
            self.inner
                .counters
                .dns_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        let now = self.now();
        let (mut entry, next) =
            on_discovery(current, now, report.discovery.clone(), &cfg, self.jitter());
        tracing::debug!(domain, discovery = %report.discovery, "discovered");
        if let Some(t) = trace.as_deref_mut() {
            t.discovery = Some(report);
        }
        if let Next::Fetch { id } = next {
            self.inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
            let (outcome, fetch_report) = self
                .inner
                .fetcher
                .fetch(self.inner.dns.as_ref(), domain)
                .await;
            if let FetchOutcome::Failed { error } = &outcome {
                self.inner
                    .counters
                    .fetch_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(domain, id, reason = %error, "policy fetch failed");
            }
            if let Some(t) = trace {
                t.fetch = Some(fetch_report);
            }
            entry = on_fetch(entry, self.now(), &id, outcome, &cfg, self.jitter());
        }
        let entry = Arc::new(entry);
        let _gate = self.inner.write_gate.read().await;
        if self.inner.forgets.forgotten_since(domain, began) {
            // Forgotten while this round ran: its result answers the callers waiting for it,
            // but is not kept (it could be the very policy that was forgotten, kept by a
            // failed refresh).
            tracing::debug!(
                domain,
                "forgotten during the lookup: its result is not cached"
            );
            return (entry, Source::Network);
        }
        self.mem_put(domain, entry.clone());
        let useless_after = entry.useless_after(&cfg);
        if let Err(e) = self.inner.store.put(domain, &entry, useless_after).await {
            self.count_store_error(&e);
        }
        (entry, Source::Network)
    }

    fn spawn_refresh(&self, domain: String) {
        let in_flight = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&domain);
        if in_flight {
            return;
        }
        self.inner
            .counters
            .refreshes
            .fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            let _ = this.coalesced(&domain, true).await;
        });
    }

    /// Checks that the store's backing storage is the one opened; when it was deleted or
    /// replaced (and recreated empty), logs it, counts it and writes every entry held in
    /// memory back, so a restart finds the cache instead of nothing.
    pub async fn check_store(&self) {
        let why = match self.inner.store.check_backing().await {
            Ok(store::Backing::Unchanged) => return,
            Ok(store::Backing::Recreated(why)) => why,
            Err(e) => {
                self.count_store_error(&e);
                return;
            }
        };
        self.inner
            .counters
            .store_recreated
            .fetch_add(1, Ordering::Relaxed);
        let cfg = self.inner.cfg;
        let now = self.now();
        // No forget between reading memory and writing it back (it would be undone).
        let _gate = self.inner.write_gate.read().await;
        let entries: Vec<(String, Arc<CacheEntry>)> = self
            .inner
            .shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.read().unwrap_or_else(|p| p.into_inner());
                shard
                    .iter()
                    .filter(|(_, e)| e.useless_after(&cfg) >= now)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        tracing::error!(
            store = self.inner.store.backend(),
            reason = %why,
            entries = entries.len(),
            "the cache store was recreated; writing the entries held in memory back"
        );
        let mut written = 0usize;
        for (domain, entry) in &entries {
            match self
                .inner
                .store
                .put(domain, entry, entry.useless_after(&cfg))
                .await
            {
                Ok(()) => written += 1,
                Err(e) => self.count_store_error(&e),
            }
        }
        tracing::info!(written, "the cache store holds the entries in memory again");
    }

    /// Domains whose proactive refresh is due now (§5.1, §10.2), at most `limit`.
    pub fn due_for_refresh(&self, limit: usize) -> Vec<String> {
        let now = self.now();
        let mut due = Vec::new();
        for shard in &self.inner.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            for (domain, entry) in shard.iter() {
                if entry.valid_policy(now).is_some() && now >= entry.refresh_at {
                    due.push(domain.clone());
                    if due.len() >= limit {
                        return due;
                    }
                }
            }
        }
        due
    }

    /// Drops from memory what is no longer useful; returns how many.
    pub fn purge_memory(&self) -> usize {
        let now = self.now();
        let cfg = self.inner.cfg;
        let mut dropped = 0;
        for shard in &self.inner.shards {
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|_, e| e.useless_after(&cfg) >= now);
            dropped += before - shard.len();
        }
        self.inner.len.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }

    /// Runs proactive refresh forever: every `period`, refreshes up to `batch` due policies
    /// (each in the background, coalesced with lookups) and purges memory and store.
    pub fn spawn_refresher(&self, period: Duration, batch: usize) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.check_store().await;
                for domain in this.due_for_refresh(batch) {
                    this.spawn_refresh(domain);
                }
                this.purge_memory();
                this.inner.dane.purge(this.now());
                if let Err(e) = this.inner.store.purge(this.now()).await {
                    this.count_store_error(&e);
                }
            }
        })
    }
}

/// One cached domain as `mtasts daemon cache` shows it.
#[derive(Clone, Debug)]
pub struct CachedDomain {
    /// The policy domain (lower-case A-labels).
    pub domain: String,
    /// The entry a lookup would use now: the one in memory while it can answer, else the
    /// store's when it is at least as recent (as a lookup decides).
    pub entry: Arc<CacheEntry>,
    /// Held in the in-memory layer.
    pub in_memory: bool,
    /// Held in the store (still useful there).
    pub in_store: bool,
}

/// Every cached domain ([`Resolver::entries`]).
#[derive(Debug)]
pub struct Listing {
    /// Sorted by domain.
    pub entries: Vec<CachedDomain>,
    /// The store could not be read: `entries` are the in-memory ones only.
    pub store_error: Option<StoreError>,
}

/// One domain's entry ([`Resolver::entry`]).
#[derive(Debug)]
pub struct Inspection {
    /// The entry, if the domain is cached in memory or in the store.
    pub cached: Option<CachedDomain>,
    /// The DANE assessment still in use, if any.
    pub dane: Option<Arc<crate::dane::DaneEntry>>,
    /// The store could not be read: `cached` is from memory only.
    pub store_error: Option<StoreError>,
}

/// What [`Resolver::forget`] removed.
#[derive(Debug)]
pub struct Forgotten {
    /// The policy domain (lower-case A-labels).
    pub domain: String,
    /// An entry was in memory.
    pub memory: bool,
    /// An entry was in the store.
    pub store: bool,
    /// A DANE assessment was in memory.
    pub dane: bool,
    /// The store could not be changed: its entry (if any) is still there.
    pub store_error: Option<StoreError>,
}

impl Forgotten {
    /// Whether anything was cached for the domain.
    pub fn existed(&self) -> bool {
        self.memory || self.store || self.dane
    }
}

/// Whether the store's entry replaces the one in memory, once memory cannot answer: the store
/// may be shared, and a fresher entry written by another MTA wins.
fn store_wins(memory: Option<&CacheEntry>, stored: &CacheEntry) -> bool {
    memory.is_none_or(|c| stored.checked_at >= c.checked_at)
}

/// Of the entry in memory and the one in the store, the one a lookup would use now (see
/// `round`): memory while it can answer, else the store's when it is at least as recent.
fn preferred(
    memory: Option<Arc<CacheEntry>>,
    stored: Option<CacheEntry>,
    now: UnixSeconds,
) -> Option<Arc<CacheEntry>> {
    match (memory, stored) {
        (Some(m), Some(s)) => {
            if answer(&m, now).is_none() && store_wins(Some(&m), &s) {
                Some(Arc::new(s))
            } else {
                Some(m)
            }
        }
        (Some(m), None) => Some(m),
        (None, s) => s.map(Arc::new),
    }
}

impl Resolver {
    /// Every domain cached in memory or in the store, sorted by domain, without any lookup
    /// and without touching the counters. Entries in memory that are no longer useful but
    /// not yet purged are included.
    pub async fn entries(&self) -> Listing {
        let now = self.now();
        let mut memory: HashMap<String, Arc<CacheEntry>> = HashMap::new();
        for shard in &self.inner.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            memory.extend(shard.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let (stored, store_error) = match self.inner.store.load(now, usize::MAX).await {
            Ok(v) => (v, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut stored: HashMap<String, CacheEntry> = stored.into_iter().collect();
        let mut domains: Vec<String> = memory.keys().chain(stored.keys()).cloned().collect();
        domains.sort_unstable();
        domains.dedup();
        let entries = domains
            .into_iter()
            .filter_map(|domain| {
                let m = memory.remove(&domain);
                let s = stored.remove(&domain);
                let (in_memory, in_store) = (m.is_some(), s.is_some());
                preferred(m, s, now).map(|entry| CachedDomain {
                    domain,
                    entry,
                    in_memory,
                    in_store,
                })
            })
            .collect();
        Listing {
            entries,
            store_error,
        }
    }

    /// The cached entry of `domain` (memory and store) and its DANE assessment, without any
    /// lookup and without touching the counters. `Err` when `domain` is not a domain name.
    pub async fn entry(&self, domain: &str) -> Result<Inspection, String> {
        let domain = normalize(domain)?;
        let now = self.now();
        let memory = self.mem_get(&domain);
        let (stored, store_error) = match self.inner.store.get(&domain, now).await {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e)),
        };
        let (in_memory, in_store) = (memory.is_some(), stored.is_some());
        let cached = preferred(memory, stored, now).map(|entry| CachedDomain {
            domain: domain.clone(),
            entry,
            in_memory,
            in_store,
        });
        Ok(Inspection {
            cached,
            dane: self.inner.dane.cached(&domain, now),
            store_error,
        })
    }

    /// The DANE assessments still in use, sorted by domain.
    pub fn dane_entries(&self) -> Vec<(String, Arc<crate::dane::DaneEntry>)> {
        let mut v = self.inner.dane.entries(self.now());
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Removes everything cached for `domain`: its entry in memory and in the store, and its
    /// DANE assessment, so that the next lookup starts afresh. `Err` when `domain` is not a
    /// domain name.
    ///
    /// This removes the protection a cached policy gives against a downgrade (RFC 8461 §5.1,
    /// §10.2): until the policy is fetched again, an attacker who blocks its discovery makes
    /// the domain look as if it had no policy. A lookup already in progress for the domain
    /// (policy or DANE) answers its callers when it ends, but does not cache its result.
    pub async fn forget(&self, domain: &str) -> Result<Forgotten, String> {
        let domain = normalize(domain)?;
        let _gate = self.inner.write_gate.write().await;
        self.inner.forgets.record(&domain, self.now());
        let memory = {
            let mut shard = self
                .shard(&domain)
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let removed = shard.remove(&domain).is_some();
            if removed {
                self.inner.len.fetch_sub(1, Ordering::Relaxed);
            }
            removed
        };
        let dane = self.inner.dane.remove(&domain);
        let (store, store_error) = match self.inner.store.remove(&domain).await {
            Ok(existed) => (existed, None),
            Err(e) => {
                self.count_store_error(&e);
                (false, Some(e))
            }
        };
        Ok(Forgotten {
            domain,
            memory,
            store,
            dane,
            store_error,
        })
    }
}

/// What a lookup of the domain of `entry` would decide at `now` from the cache alone (the
/// core's [`answer`]), or `None` when the cache cannot answer and a lookup would go to DNS.
pub fn outcome_now(entry: &Arc<CacheEntry>, now: UnixSeconds) -> Option<Outcome> {
    answer(entry, now).map(|ans| outcome_of(entry, ans))
}

/// The outcome of an entry just written by a round. A round always leaves an answer, unless
/// the clock jumped past a one-second negative answer in between.
fn decided(entry: &Arc<CacheEntry>, now: UnixSeconds) -> Outcome {
    match answer(entry, now) {
        Some(ans) => outcome_of(entry, ans),
        None => Outcome::Transient {
            reason: "the cache could not decide".into(),
        },
    }
}

fn outcome_of(entry: &Arc<CacheEntry>, ans: Answer<'_>) -> Outcome {
    match ans {
        Answer::Policy { .. } => Outcome::Policy(entry.clone()),
        Answer::NoPolicy { negative } => Outcome::NoPolicy {
            reason: negative.reason.clone(),
        },
        Answer::Transient { negative } => Outcome::Transient {
            reason: negative.reason.clone(),
        },
    }
}

/// The policy domain in canonical form: lower-case A-labels, no trailing dot.
pub fn normalize(domain: &str) -> Result<String, String> {
    to_a_label(domain.trim()).map_err(|e| format!("{domain:?} is not a domain name: {e}"))
}
