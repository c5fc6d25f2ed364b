//! The resolver's configuration: DNS upstream, HTTPS fetch limits, cache tunables, storage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mtasts_core::sts::cache::CacheConfig;
use serde::{Deserialize, Serialize};

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
}

impl ResolverConfig {
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
        table
            .try_into()
            .map_err(|e: toml::de::Error| format!("{}: in [resolver]: {e}", path.display()))
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

fn secs(v: f64) -> Duration {
    if v.is_finite() && v > 0.0 {
        Duration::from_secs_f64(v.min(86_400.0))
    } else {
        Duration::from_secs(1)
    }
}
