//! PLACEHOLDER: being written (see the helper brief).
#![allow(missing_docs, clippy::unused_async)]

use async_trait::async_trait;
use mtasts_core::sts::cache::{CacheEntry, UnixSeconds};

use super::{Store, StoreError};

#[derive(Debug)]
pub struct RedisStore;

impl RedisStore {
    pub async fn open(_target: impl std::fmt::Debug, _prefix: &str) -> Result<Self, StoreError> {
        Err(StoreError::Open { backend: "redis", target: String::new(), detail: "not built yet".into() })
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str { "redis" }
    async fn get(&self, _: &str, _: UnixSeconds) -> Result<Option<CacheEntry>, StoreError> { Ok(None) }
    async fn put(&self, _: &str, _: &CacheEntry, _: UnixSeconds) -> Result<(), StoreError> { Ok(()) }
    async fn load(&self, _: UnixSeconds, _: usize) -> Result<Vec<(String, CacheEntry)>, StoreError> { Ok(Vec::new()) }
    async fn purge(&self, _: UnixSeconds) -> Result<u64, StoreError> { Ok(0) }
}
