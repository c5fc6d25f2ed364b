//! Memory per cached policy in the resolver's in-memory layer, measured as the growth of the
//! process's resident set when N typical entries are loaded (default 100,000).
//!
//! `cargo run --release -p mtasts-resolver --example footprint -- [N]`
//!
//! The entries come from a store that generates them, so no network is involved; the DNS
//! and HTTPS clients are built but never used.

use std::sync::Arc;

use async_trait::async_trait;
use mtasts_core::sts::cache::{CacheEntry, CachedPolicy, UnixSeconds};
use mtasts_core::sts::policy::Policy;
use mtasts_resolver::store::{Store, StoreError};
use mtasts_resolver::{Resolver, ResolverConfig};

#[derive(Debug)]
struct Generated(usize);

#[async_trait]
impl Store for Generated {
    fn backend(&self) -> &'static str {
        "generated"
    }
    async fn get(&self, _: &str, _: UnixSeconds) -> Result<Option<CacheEntry>, StoreError> {
        Ok(None)
    }
    async fn put(&self, _: &str, _: &CacheEntry, _: UnixSeconds) -> Result<(), StoreError> {
        Ok(())
    }
    async fn load(
        &self,
        now: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<(String, CacheEntry)>, StoreError> {
        let mut v = Vec::with_capacity(self.0.min(limit));
        for i in 0..self.0.min(limit) {
            let domain = format!("d{i:06}.bench.test");
            let text = format!(
                "version: STSv1\nmode: enforce\nmx: mx1.{domain}\nmx: *.mx.{domain}\nmax_age: 604800\n"
            );
            let policy = Policy::parse(text.as_bytes()).map_err(|e| StoreError::Corrupt {
                backend: "generated",
                key: domain.clone(),
                detail: e.to_string(),
            })?;
            let entry = CacheEntry {
                policy: Some(CachedPolicy {
                    policy,
                    id: "20261122T000000".into(),
                    fetched_at: now,
                }),
                checked_at: now,
                refresh_at: now + 86_400,
                negative: None,
                failed_fetch: None,
            };
            v.push((domain, entry));
        }
        Ok(v)
    }
    async fn remove(&self, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn purge(&self, _: UnixSeconds) -> Result<u64, StoreError> {
        Ok(0)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut cfg = ResolverConfig::default();
        cfg.dns.servers = vec!["127.0.0.1:53".parse()?];
        cfg.fetch.ca_file = None;
        cfg.memory.preload = n;
        cfg.memory.capacity = n;
        // An empty resolver first, so its fixed cost is not counted.
        let empty = Resolver::with_parts(
            &cfg,
            Arc::new(Generated(0)),
            mtasts_resolver::system_clock(),
        )
        .await?;
        let before = rss_kib();
        let full = Resolver::with_parts(
            &cfg,
            Arc::new(Generated(n)),
            mtasts_resolver::system_clock(),
        )
        .await?;
        let after = rss_kib();
        let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
        println!(
            "{n} cached policies: RSS {before} KiB -> {after} KiB, {per:.0} bytes per cached policy ({} in memory)",
            full.len()
        );
        drop(empty);
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
