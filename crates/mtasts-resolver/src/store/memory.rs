//! No persistence: the resolver's in-memory layer is the whole cache.

use async_trait::async_trait;
use mtasts_core::sts::cache::{CacheEntry, UnixSeconds};

use super::{Store, StoreError};

/// The store for `type = "memory"`: keeps nothing, so the resolver's bounded in-memory layer
/// is the only copy and a restart starts cold.
#[derive(Debug, Default)]
pub struct MemoryStore;

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, _: &str, _: UnixSeconds) -> Result<Option<CacheEntry>, StoreError> {
        Ok(None)
    }

    async fn put(&self, _: &str, _: &CacheEntry, _: UnixSeconds) -> Result<(), StoreError> {
        Ok(())
    }

    async fn load(
        &self,
        _: UnixSeconds,
        _: usize,
    ) -> Result<Vec<(String, CacheEntry)>, StoreError> {
        Ok(Vec::new())
    }

    async fn remove(&self, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn purge(&self, _: UnixSeconds) -> Result<u64, StoreError> {
        Ok(0)
    }
}
