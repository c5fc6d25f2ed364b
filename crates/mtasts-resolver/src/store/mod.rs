//! Where cache entries outlive the process: SQLite (default), Redis for a fleet, or nothing.
//!
//! The resolver always keeps a bounded in-memory layer in front of the store; the store is the
//! persistent (or shared) copy. Entries are keyed by the policy domain in lower-case A-label
//! form without a trailing dot, and carry the second after which they are useless
//! ([`CacheEntry::useless_after`]) so stores can expire them.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use mtasts_core::sts::cache::{CacheEntry, UnixSeconds};
use serde::{Deserialize, Serialize};

mod memory;
mod redis;
mod sqlite;

pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use sqlite::SqliteStore;

/// A storage failure. The resolver logs it and carries on from memory; it never turns a
/// storage failure into a policy decision.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be opened or reached.
    #[error("{backend}: cannot open {target}: {detail}")]
    Open {
        /// "sqlite" or "redis".
        backend: &'static str,
        /// The path or URL.
        target: String,
        /// The underlying error.
        detail: String,
    },
    /// A read or write failed.
    #[error("{backend}: {op} failed for {key}: {detail}")]
    Io {
        /// "sqlite" or "redis".
        backend: &'static str,
        /// "get", "put", "delete", "load", "remove".
        op: &'static str,
        /// The domain or key.
        key: String,
        /// The underlying error.
        detail: String,
    },
    /// A stored entry could not be decoded (it is skipped, not deleted).
    #[error("{backend}: the stored entry for {key} is unreadable: {detail}")]
    Corrupt {
        /// "sqlite" or "redis".
        backend: &'static str,
        /// The domain or key.
        key: String,
        /// The decoding error.
        detail: String,
    },
}

/// A persistent or shared home for cache entries.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The backend's name, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// The entry for `domain`, if one is stored and not yet useless at `now`.
    async fn get(&self, domain: &str, now: UnixSeconds) -> Result<Option<CacheEntry>, StoreError>;

    /// Stores `entry` for `domain`, replacing what was there. `useless_after` is the second
    /// after which the entry may be dropped (a key TTL for Redis).
    async fn put(
        &self,
        domain: &str,
        entry: &CacheEntry,
        useless_after: UnixSeconds,
    ) -> Result<(), StoreError>;

    /// Up to `limit` entries still useful at `now`: to warm the memory layer at start-up,
    /// and to list the cache (`mtasts daemon cache list`). Entries that cannot be decoded are
    /// skipped with a warning, never deleted.
    async fn load(
        &self,
        now: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<(String, CacheEntry)>, StoreError>;

    /// Removes the entry of `domain` (`mtasts daemon cache forget`); whether one was stored,
    /// useful or not. Removing what is not there is not an error.
    async fn remove(&self, domain: &str) -> Result<bool, StoreError>;

    /// Drops entries useless at `now`; returns how many.
    async fn purge(&self, now: UnixSeconds) -> Result<u64, StoreError>;

    /// Whether the backing storage is still the one opened: a database file deleted or
    /// replaced under a running process is noticed here (on each refresher tick), recreated
    /// empty, and reported as [`Backing::Recreated`] so the caller writes its entries back.
    async fn check_backing(&self) -> Result<Backing, StoreError> {
        Ok(Backing::Unchanged)
    }
}

/// What [`Store::check_backing`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// The storage is the one opened.
    Unchanged,
    /// It had vanished or been replaced, and was recreated empty; why.
    Recreated(String),
}

/// Which store to use, as written in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// Nothing outlives the process.
    Memory,
    /// An SQLite database file (WAL mode), created if missing.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A Redis or Valkey server shared by a fleet of MTAs.
    Redis {
        /// `redis://host:port/db` or `unix:///path/to/socket`.
        url: String,
        /// Prefix of every key.
        #[serde(default = "default_redis_prefix")]
        key_prefix: String,
    },
}

fn default_redis_prefix() -> String {
    "mtasts:sts:".to_owned()
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Sqlite {
            path: PathBuf::from("/var/lib/mtasts/cache.sqlite3"),
        }
    }
}

impl StoreConfig {
    /// Reads the one-word form of the command line: `memory`, `sqlite:PATH`,
    /// `redis://HOST:PORT[/DB]` or `unix:///PATH`.
    pub fn from_spec(spec: &str) -> Result<StoreConfig, String> {
        match spec {
            "memory" => Ok(StoreConfig::Memory),
            s if s.starts_with("sqlite:") => Ok(StoreConfig::Sqlite {
                path: PathBuf::from(&s["sqlite:".len()..]),
            }),
            s if s.starts_with("redis://") || s.starts_with("unix://") => Ok(StoreConfig::Redis {
                url: s.to_owned(),
                key_prefix: default_redis_prefix(),
            }),
            other => Err(format!(
                "{other:?}: expected memory, sqlite:PATH or redis://HOST:PORT"
            )),
        }
    }
}

/// Opens the configured store.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config {
        StoreConfig::Memory => Arc::new(MemoryStore),
        StoreConfig::Sqlite { path } => Arc::new(SqliteStore::open(path).await?),
        StoreConfig::Redis { url, key_prefix } => {
            Arc::new(RedisStore::open(url, key_prefix).await?)
        }
    })
}
