//! The fleet store: a Redis (or Valkey) server shared by several MTAs.
//!
//! Each policy domain is one string key, `<prefix><domain>`, holding the JSON of its
//! [`CacheEntry`], written with `SET … EXAT` so that Redis drops the key by itself once the
//! entry is useless; [`Store::purge`] therefore has nothing to do. Every MTA of the fleet that
//! uses the same server and prefix sees the others' entries.
//!
//! The connection is a [`ConnectionManager`]: when the server restarts or the connection
//! drops, it reconnects, and an operation that found the connection dropped is tried once more
//! on the new one.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mtasts_core::sts::cache::{CacheEntry, UnixSeconds};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError};

use super::{Store, StoreError};

const BACKEND: &str = "redis";

/// How many keys one `SCAN` step asks for, and the most keys one `MGET` reads.
const SCAN_BATCH: usize = 500;

/// The latest expiry written (9999-12-31T23:59:59Z): Redis refuses expiry times whose
/// milliseconds overflow, and no cache entry is useful for that long anyway.
const MAX_EXPIRE_AT: UnixSeconds = 253_402_300_799;

/// The store for `type = "redis"`.
///
/// An entry stays readable through the second given as its `useless_after`: the key expires
/// at the start of the next second (`EXAT useless_after + 1`), by the Redis server's clock.
/// Because Redis expires keys itself, `get` and `load` do not look at their `now` argument.
pub struct RedisStore {
    conn: ConnectionManager,
    /// The URL with any password replaced by `***`, for messages.
    target: String,
    /// The password from the URL, scrubbed from error details.
    secret: Option<String>,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.target)
            .field("key_prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://[user:password@]host[:port][/db]` or
    /// `unix:///path/to/socket[?db=N&pass=…]`; TLS is not supported) and checks that it
    /// answers `PING`. Keys are `key_prefix` followed by the policy domain.
    ///
    /// Fails with [`StoreError::Open`] naming the URL (without its password) when the URL is
    /// invalid or the server cannot be reached.
    pub async fn open(url: &str, key_prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Open {
            backend: BACKEND,
            target: redact_url(url),
            detail: scrub(&e, None),
        })?;
        let secret = client
            .get_connection_info()
            .redis_settings()
            .password()
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let target = match &secret {
            // Also catches a password the textual redaction missed (an unusual URL).
            Some(s) => redact_url(url).replace(s.as_str(), "***"),
            None => redact_url(url),
        };
        let open_error = |e: &RedisError| StoreError::Open {
            backend: BACKEND,
            target: target.clone(),
            detail: scrub(e, secret.as_deref()),
        };
        // Bounded waits: a lookup must not hang on an unreachable cache, and a reconnect gives
        // up after a few seconds (the next operation starts a new one).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(4)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| open_error(&e))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| open_error(&e))?;
        if pong != "PONG" {
            return Err(StoreError::Open {
                backend: BACKEND,
                target,
                detail: format!("PING answered {pong:?}, not PONG"),
            });
        }
        Ok(RedisStore {
            conn,
            target,
            secret,
            prefix: key_prefix.to_owned(),
        })
    }

    /// The key under which `domain` is stored.
    pub fn key(&self, domain: &str) -> String {
        format!("{}{domain}", self.prefix)
    }

    /// Runs `cmd`, once more if the connection turned out to be dropped (the manager is then
    /// reconnecting, and the second try waits for the new connection).
    async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        op: &'static str,
        key: &str,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        let result = match cmd.query_async(&mut conn).await {
            Err(e) if e.is_connection_dropped() => cmd.query_async(&mut conn).await,
            other => other,
        };
        result.map_err(|e| StoreError::Io {
            backend: BACKEND,
            op,
            key: key.to_owned(),
            detail: format!("{}: {}", self.target, scrub(&e, self.secret.as_deref())),
        })
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn get(&self, domain: &str, _now: UnixSeconds) -> Result<Option<CacheEntry>, StoreError> {
        let key = self.key(domain);
        let value: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key), "get", &key).await?;
        let Some(value) = value else {
            return Ok(None);
        };
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                backend: BACKEND,
                key,
                detail: format!("{}: {e}", self.target),
            })
    }

    async fn put(
        &self,
        domain: &str,
        entry: &CacheEntry,
        useless_after: UnixSeconds,
    ) -> Result<(), StoreError> {
        let key = self.key(domain);
        let expire_at = useless_after.saturating_add(1).min(MAX_EXPIRE_AT);
        if expire_at <= unix_now() {
            // Already useless: replacing what was there means removing it.
            let _: i64 = self
                .query(redis::cmd("DEL").arg(&key), "delete", &key)
                .await?;
            return Ok(());
        }
        let json = serde_json::to_vec(entry).map_err(|e| StoreError::Io {
            backend: BACKEND,
            op: "put",
            key: key.clone(),
            detail: format!("cannot encode the entry: {e}"),
        })?;
        let _: () = self
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(json)
                    .arg("EXAT")
                    .arg(expire_at),
                "put",
                &key,
            )
            .await?;
        Ok(())
    }

    async fn load(
        &self,
        _now: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<(String, CacheEntry)>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let pattern = format!("{}*", glob_escape(&self.prefix));
        // SCAN may return a key more than once.
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_BATCH),
                    "load",
                    &pattern,
                )
                .await?;
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| seen.insert(k.clone()))
                .collect();
            for batch in keys.chunks(SCAN_BATCH) {
                let values: Vec<Option<Vec<u8>>> = self
                    .query(redis::cmd("MGET").arg(batch), "load", &pattern)
                    .await?;
                for (key, value) in batch.iter().zip(values) {
                    // Expired between SCAN and MGET.
                    let Some(value) = value else { continue };
                    if let Some(pair) = self.decode(key, &value) {
                        out.push(pair);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(out);
            }
        }
    }

    async fn remove(&self, domain: &str) -> Result<bool, StoreError> {
        let key = self.key(domain);
        let n: i64 = self
            .query(redis::cmd("DEL").arg(&key), "remove", &key)
            .await?;
        Ok(n > 0)
    }

    async fn purge(&self, _now: UnixSeconds) -> Result<u64, StoreError> {
        // Keys carry their expiry; Redis drops them itself.
        Ok(0)
    }
}

impl RedisStore {
    /// The domain and entry of one scanned key, or `None` (with a warning) if either is
    /// unreadable. The key is left in place.
    fn decode(&self, key: &[u8], value: &[u8]) -> Option<(String, CacheEntry)> {
        let shown = String::from_utf8_lossy(key);
        let Some(domain) = key
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|d| std::str::from_utf8(d).ok())
        else {
            tracing::warn!(url = %self.target, key = %shown, "skipping a cache key that names no domain");
            return None;
        };
        match serde_json::from_slice::<CacheEntry>(value) {
            Ok(entry) => Some((domain.to_owned(), entry)),
            Err(e) => {
                tracing::warn!(
                    url = %self.target,
                    key = %shown,
                    error = %e,
                    "skipping an unreadable cache entry (left in place)"
                );
                None
            }
        }
    }
}

fn unix_now() -> UnixSeconds {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Escapes the glob characters of `s` for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The error's text with `secret` (the password) replaced by `***`.
fn scrub(e: &RedisError, secret: Option<&str>) -> String {
    let text = e.to_string();
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text,
    }
}

/// `url` with the password of its user-info part and any `pass`/`password` query parameter
/// replaced by `***`.
fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name == "pass" || name == "password" => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{glob_escape, redact_url};

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://user:s3cret@cache.example:6379/2"),
            "redis://user:***@cache.example:6379/2"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache.example"),
            "redis://:***@cache.example"
        );
        assert_eq!(
            redact_url("unix:///run/redis.sock?db=1&pass=s3cret"),
            "unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("redis://cache.example:6379"),
            "redis://cache.example:6379"
        );
        assert_eq!(
            redact_url("redis://user@cache.example"),
            "redis://user@cache.example"
        );
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("mtasts:sts:"), "mtasts:sts:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
