//! The resolver's configuration: DNS upstream, HTTPS fetch limits, cache tunables, storage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mtasts_core::sts::cache::CacheConfig;
use serde::{Deserialize, Serialize};

use crate::dane::DaneConfig;
use crate::store::StoreConfig;

/// Everything the resolver needs. Every field has a default; a TOML file sets only what
/// differs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolverConfig {
    /// How `_mta-sts` TXT records and policy hosts are looked up.
    pub dns: DnsConfig,
    /// How policies are fetched.
    pub fetch: FetchConfig,
    /// The §5.1 cache tunables.
    pub cache: CacheConfig,
    /// Where the cache is kept.
    pub store: StoreConfig,
    /// The in-memory layer.
    pub memory: MemoryConfig,
    /// DANE discovery (RFC 7672): whose AD flags are believed, how long assessments live.
    pub dane: DaneConfig,
}

/// The accepted range of every numeric setting, as `(key, least, most)`. Enforced by
/// [`ResolverConfig::validate`] and listed in `docs/resolver.md` (a test keeps them equal).
pub const RANGES: &[(&str, f64, f64)] = &[
    ("dns.timeout", 0.1, 60.0),
    ("dns.attempts", 1.0, 10.0),
    ("fetch.connect_timeout", 0.1, 120.0),
    ("fetch.timeout", 0.1, 600.0),
    ("fetch.max_body", 1024.0, 16_777_216.0),
    ("fetch.port", 1.0, 65_535.0),
    ("cache.refresh_interval", 1.0, 31_557_600.0),
    ("cache.refresh_jitter", 0.0, 86_400.0),
    ("cache.negative_ttl", 1.0, 86_400.0),
    ("cache.transient_ttl", 1.0, 3_600.0),
    ("cache.fetch_retry_interval", 1.0, 86_400.0),
    ("memory.capacity", 1.0, 100_000_000.0),
    ("memory.preload", 0.0, 100_000_000.0),
    ("dane.min_ttl", 0.0, 86_400.0),
    ("dane.max_ttl", 1.0, 604_800.0),
    ("dane.failure_ttl", 1.0, 3_600.0),
];

/// A setting out of its range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("key `{key}`: {value} is out of range (from {least} to {most})")]
pub struct RangeError {
    /// The key, e.g. `fetch.max_body` (under `[resolver]` in the daemon's file).
    pub key: &'static str,
    /// The value given.
    pub value: f64,
    /// The least accepted.
    pub least: f64,
    /// The most accepted.
    pub most: f64,
}

/// The one range check of every configuration (the resolver's, the daemon's, the policy
/// host's): each key of `ranges` has its value (from `value_of`) within its bounds, finite.
pub fn check_ranges(
    ranges: &[(&'static str, f64, f64)],
    value_of: impl Fn(&str) -> f64,
) -> Result<(), RangeError> {
    for &(key, least, most) in ranges {
        let value = value_of(key);
        if !(value.is_finite() && value >= least && value <= most) {
            return Err(RangeError {
                key,
                value,
                least,
                most,
            });
        }
    }
    Ok(())
}

impl RangeError {
    /// The message without the key, for callers that name the key themselves.
    pub fn out_of_range(&self) -> String {
        format!(
            "{} is out of range (from {} to {})",
            self.value, self.least, self.most
        )
    }
}

impl ResolverConfig {
    /// Each numeric setting, by its key in [`RANGES`].
    fn value_of(&self, key: &str) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        match key {
            "dns.timeout" => self.dns.timeout,
            "dns.attempts" => self.dns.attempts as f64,
            "fetch.connect_timeout" => self.fetch.connect_timeout,
            "fetch.timeout" => self.fetch.timeout,
            "fetch.max_body" => self.fetch.max_body as f64,
            "fetch.port" => f64::from(self.fetch.port),
            "cache.refresh_interval" => self.cache.refresh_interval as f64,
            "cache.refresh_jitter" => self.cache.refresh_jitter as f64,
            "cache.negative_ttl" => self.cache.negative_ttl as f64,
            "cache.transient_ttl" => self.cache.transient_ttl as f64,
            "cache.fetch_retry_interval" => self.cache.fetch_retry_interval as f64,
            "memory.capacity" => self.memory.capacity as f64,
            "memory.preload" => self.memory.preload as f64,
            "dane.min_ttl" => self.dane.min_ttl as f64,
            "dane.max_ttl" => self.dane.max_ttl as f64,
            "dane.failure_ttl" => self.dane.failure_ttl as f64,
            _ => f64::NAN,
        }
    }

    /// Checks every numeric setting against its range ([`RANGES`]): values that parse but
    /// would make the resolver useless (a `max_body` of 0, no DNS attempt, a refresh period of
    /// a nanosecond) are refused at load, never discovered in production.
    pub fn validate(&self) -> Result<(), RangeError> {
        check_ranges(RANGES, |key| self.value_of(key))
    }

    /// Reads the `[resolver]` table of a daemon configuration file, or a file holding only
    /// the resolver's sections.
    pub fn load_section(path: &std::path::Path) -> Result<ResolverConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let table = match value.get("resolver") {
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => return Err(format!("{}: [resolver] must be a table", path.display())),
            None => value,
        };
        let cfg: ResolverConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| format!("{}: in [resolver]: {e}", path.display()))?;
        cfg.validate()
            .map_err(|e| format!("{}: in [resolver]: {e}", path.display()))?;
        Ok(cfg)
    }
}

/// DNS settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Upstream resolvers (`address:port`). Empty: the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// Time allowed for one query, in seconds (fractions allowed).
    pub timeout: f64,
    /// Attempts per query before it counts as a transient failure.
    pub attempts: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout: 5.0,
            attempts: 2,
        }
    }
}

impl DnsConfig {
    /// The per-query timeout.
    pub fn timeout(&self) -> Duration {
        secs(self.timeout)
    }

    /// As the DNS edge takes them.
    pub fn settings(&self) -> mtasts_net::DnsSettings {
        mtasts_net::DnsSettings {
            servers: self.servers.clone(),
            timeout: self.timeout(),
            attempts: self.attempts,
        }
    }
}

/// HTTPS policy fetch settings (RFC 8461 §3.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Trust anchors: a PEM file of CA certificates. None: the platform's trust store.
    pub ca_file: Option<PathBuf>,
    /// Time allowed to connect (TCP and TLS), in seconds.
    pub connect_timeout: f64,
    /// Time allowed for the whole fetch, in seconds (§3.3 suggests about a minute at most).
    pub timeout: f64,
    /// The largest policy body accepted, in bytes (§3.3: 64 KiB).
    pub max_body: u64,
    /// Reject a policy served with a media type other than `text/plain`.
    pub require_text_plain: bool,
    /// The TCP port of policy hosts. Always 443 on the internet; other values are for labs.
    pub port: u16,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            ca_file: None,
            connect_timeout: 10.0,
            timeout: 30.0,
            max_body: 64 * 1024,
            require_text_plain: true,
            port: 443,
        }
    }
}

impl FetchConfig {
    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        secs(self.connect_timeout)
    }
    /// The whole-fetch timeout.
    pub fn timeout(&self) -> Duration {
        secs(self.timeout)
    }
}

/// The in-memory layer in front of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// The most domains kept in memory; beyond it the least useful are dropped (they stay in
    /// the store).
    pub capacity: usize,
    /// How many stored entries are loaded into memory at start-up.
    pub preload: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            capacity: 1_000_000,
            preload: 1_000_000,
        }
    }
}

/// Seconds of a configuration value as a [`Duration`], the one conversion of every
/// configuration (the resolver's, the daemon's, the policy host's). Meant for values that
/// passed [`check_ranges`]; any other still converts without a panic: a value that is not a
/// finite number of seconds (negative, NaN) gives one second, and none gives more than a year.
pub fn secs(v: f64) -> Duration {
    const YEAR: f64 = 365.0 * 86_400.0;
    if v.is_finite() && v >= 0.0 {
        Duration::from_secs_f64(v.min(YEAR))
    } else {
        Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_converts_any_number_without_a_panic() {
        assert_eq!(secs(2.5), Duration::from_millis(2_500));
        assert_eq!(secs(0.0), Duration::ZERO);
        assert_eq!(secs(1e300), Duration::from_secs(365 * 86_400));
        assert_eq!(secs(f64::INFINITY), Duration::from_secs(1));
        assert_eq!(secs(f64::NAN), Duration::from_secs(1));
        assert_eq!(secs(-3.0), Duration::from_secs(1));
    }

    fn fmt(v: f64) -> String {
        format!("{v}")
    }

    /// docs/resolver.md lists exactly the ranges the code enforces.
    #[test]
    fn docs_list_the_ranges_enforced() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/resolver.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        for &(key, least, most) in RANGES {
            let row = format!("| `{key}` | {}–{} |", fmt(least), fmt(most));
            assert!(doc.contains(&row), "docs/resolver.md lacks the row {row}");
        }
    }

    #[test]
    fn the_defaults_are_in_range_and_bad_values_are_refused() {
        assert_eq!(ResolverConfig::default().validate(), Ok(()));
        let mut c = ResolverConfig::default();
        c.fetch.max_body = 0;
        assert_eq!(c.validate().map_err(|e| e.key), Err("fetch.max_body"));
        let mut c = ResolverConfig::default();
        c.dns.attempts = 0;
        assert_eq!(c.validate().map_err(|e| e.key), Err("dns.attempts"));
        let mut c = ResolverConfig::default();
        c.dns.timeout = f64::INFINITY;
        assert_eq!(c.validate().map_err(|e| e.key), Err("dns.timeout"));
    }
}
