//! The daemon's configuration file (TOML). Every field has a default, so an empty file is a
//! working configuration: TCP on `127.0.0.1:8461`, peer-compatible answers, the SQLite cache
//! at `/var/lib/mtasts/cache.sqlite3`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mtasts_postfix::socketmap::{DEFAULT_MAX_REQUEST, DaneMode, POSTFIX_MAX_REPLY, ZoneOptions};
use mtasts_resolver::ResolverConfig;
/// The one range check, shared with the resolver's and the policy host's configurations.
pub use mtasts_resolver::config::{check_ranges, secs};
use serde::Deserialize;

/// Why the configuration could not be used. The message names the file, the key and what is
/// wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration file: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, or a value has the wrong type or is invalid. toml's message
    /// gives the line, the column and the key.
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `<string>`).
        path: String,
        /// toml's message, with the line and a snippet.
        message: String,
    },
    /// Values that are each valid but do not go together.
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The message on one line, for logs: toml's multi-line snippet (line, caret, message)
    /// is joined with `" | "`, so one reload error is one log line.
    pub fn one_line(&self) -> String {
        self.to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "|")
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen for socketmap requests. Default: TCP `127.0.0.1:8461`.
    pub listen: Vec<Listener>,
    /// The largest request payload accepted, in bytes; a longer one closes the connection.
    pub max_request: usize,
    /// The largest reply payload sent, in bytes (Postfix's `socketmap_max_reply_size`).
    pub max_reply: usize,
    /// The most connections served at once; further ones wait (accepted but not read)
    /// until one closes.
    pub max_connections: usize,
    /// The most requests of one connection being answered at once (pipelining); the
    /// connection is not read further until the oldest is answered.
    pub max_pipeline: usize,
    /// Seconds a connection may stay idle (no request pending) before it is closed.
    pub idle_timeout: f64,
    /// Seconds from the first byte of a request to its last: a request not complete by then
    /// closes the connection (trickled bytes do not extend it).
    pub request_read_timeout: f64,
    /// Seconds one lookup may take; past it the answer is as for a transient DNS failure.
    /// Keep it under Postfix's socketmap I/O timeout (100 s).
    pub request_timeout: f64,
    /// Seconds to finish the requests in flight on SIGTERM/SIGINT before closing anyway.
    pub shutdown_timeout: f64,
    /// Seconds between two runs of the proactive refresher (RFC 8461 §10.2); 0 disables it.
    pub refresh_period: f64,
    /// The most policies one refresher run refreshes.
    pub refresh_batch: usize,
    /// Serve Prometheus metrics over HTTP at this address (`GET /metrics`). None: off.
    pub metrics: Option<SocketAddr>,
    /// Allow `metrics` on an address that is not loopback.
    pub metrics_allow_remote: bool,
    /// The admin channel (`mtasts daemon cache`): a Unix socket whose file permissions are its
    /// access control. None: off.
    pub admin: Option<AdminSocket>,
    /// The largest admin request accepted, in bytes (one line of JSON).
    pub admin_max_request: usize,
    /// Seconds an admin client has to send its request, and again to read the answer.
    pub admin_timeout: f64,
    /// Admin connections served at once; one more is answered `busy` and closed.
    pub admin_max_connections: usize,
    /// Logging.
    pub log: LogConfig,
    /// The answer options of every map name without a `[zones.NAME]` section.
    pub default_zone: ZoneOptions,
    /// Per map name (the last part of `socketmap:inet:host:port:NAME`): options that differ
    /// from `default_zone` (unset keys inherit from it).
    pub zones: BTreeMap<String, ZoneOverrides>,
    /// The resolver: DNS, fetch, cache, store, memory.
    pub resolver: ResolverConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![Listener::Tcp(SocketAddr::from(([127, 0, 0, 1], 8461)))],
            max_request: DEFAULT_MAX_REQUEST,
            max_reply: POSTFIX_MAX_REPLY,
            max_connections: 1024,
            max_pipeline: 128,
            idle_timeout: 30.0,
            request_read_timeout: 10.0,
            request_timeout: 90.0,
            shutdown_timeout: 20.0,
            refresh_period: 60.0,
            refresh_batch: 1000,
            metrics: None,
            metrics_allow_remote: false,
            admin: None,
            admin_max_request: 65_536,
            admin_timeout: 10.0,
            admin_max_connections: 8,
            log: LogConfig::default(),
            default_zone: ZoneOptions::default(),
            zones: BTreeMap::new(),
            resolver: ResolverConfig::default(),
        }
    }
}

/// One listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawListener")]
pub enum Listener {
    /// `{ tcp = "127.0.0.1:8461" }`.
    Tcp(SocketAddr),
    /// `{ unix = "/run/mtasts/socketmap.sock", mode = "0660", owner = "mtasts", group = "postfix" }`.
    Unix(UnixListenerConfig),
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(a) => write!(f, "tcp {a}"),
            Listener::Unix(u) => write!(f, "unix {}", u.path.display()),
        }
    }
}

/// A Unix socket listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixListenerConfig {
    /// The socket file. A stale one is removed at start-up; the file is removed at exit.
    pub path: PathBuf,
    /// Permission bits set on the socket file (Postfix must be able to write it).
    pub mode: Option<u32>,
    /// Owner (user name or numeric uid).
    pub owner: Option<String>,
    /// Group (group name or numeric gid).
    pub group: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    tcp: Option<SocketAddr>,
    unix: Option<PathBuf>,
    mode: Option<String>,
    owner: Option<String>,
    group: Option<String>,
}

impl TryFrom<RawListener> for Listener {
    type Error = String;

    fn try_from(raw: RawListener) -> Result<Listener, String> {
        match (raw.tcp, raw.unix) {
            (Some(addr), None) => {
                if raw.mode.is_some() || raw.owner.is_some() || raw.group.is_some() {
                    return Err(
                        "`mode`, `owner` and `group` apply to `unix` listeners only".to_owned()
                    );
                }
                Ok(Listener::Tcp(addr))
            }
            (None, Some(path)) => {
                if !path.is_absolute() {
                    return Err(format!(
                        "the unix socket path {:?} must be absolute",
                        path.display()
                    ));
                }
                let mode = raw.mode.as_deref().map(parse_mode).transpose()?;
                for (what, v) in [("owner", &raw.owner), ("group", &raw.group)] {
                    if v.as_deref().is_some_and(str::is_empty) {
                        return Err(format!("`{what}` is empty"));
                    }
                }
                Ok(Listener::Unix(UnixListenerConfig {
                    path,
                    mode,
                    owner: raw.owner,
                    group: raw.group,
                }))
            }
            (Some(_), Some(_)) => Err("a listener has either `tcp` or `unix`, not both".to_owned()),
            (None, None) => {
                Err("a listener needs `tcp = \"ADDRESS:PORT\"` or `unix = \"/PATH\"`".to_owned())
            }
        }
    }
}

/// Where `mtasts daemon cache` looks for the admin socket without `--admin` or `--config`,
/// and the path the example configuration and the documentation use: systemd's
/// `RuntimeDirectory=mtasts` of the shipped unit.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/mtasts/admin.sock";

/// The permission bits of the admin socket when `mode` is not given: the daemon's user only.
pub const DEFAULT_ADMIN_MODE: u32 = 0o600;

/// The admin socket: `admin = { unix = "/run/mtasts/admin.sock", mode = "0600" }`, with
/// `owner` and `group` as for a `unix` listener. A Unix socket only: whoever may write the
/// socket file may list and forget cache entries, so its permissions are the access control
/// (`mode` defaults to `"0600"`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Listener")]
pub struct AdminSocket(pub UnixListenerConfig);

impl TryFrom<Listener> for AdminSocket {
    type Error = String;

    fn try_from(l: Listener) -> Result<AdminSocket, String> {
        match l {
            Listener::Unix(mut u) => {
                u.mode.get_or_insert(DEFAULT_ADMIN_MODE);
                Ok(AdminSocket(u))
            }
            Listener::Tcp(_) => Err(
                "the admin channel is a Unix socket only (`unix = \"/PATH\"`): its access \
                 control is the socket file's permissions"
                    .to_owned(),
            ),
        }
    }
}

impl AdminSocket {
    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }
}

/// Parses an octal permission string such as `"0660"` or `"660"`.
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let bad = || format!("mode {s:?} is not an octal permission such as \"0660\"");
    if digits.is_empty() || digits.len() > 4 {
        return Err(bad());
    }
    let m = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
    if m > 0o7777 {
        return Err(bad());
    }
    Ok(m)
}

/// Per-zone options: each unset key inherits from `default_zone`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneOverrides {
    /// See [`ZoneOptions::strict_testing`].
    pub strict_testing: Option<bool>,
    /// See [`ZoneOptions::require_sni`].
    pub require_sni: Option<bool>,
    /// See [`ZoneOptions::tlsrpt`].
    pub tlsrpt: Option<bool>,
    /// See [`ZoneOptions::temp_on_dns_failure`].
    pub temp_on_dns_failure: Option<bool>,
    /// See [`ZoneOptions::dane`].
    pub dane: Option<DaneMode>,
}

impl ZoneOverrides {
    /// These overrides applied on `base`.
    pub fn apply(&self, base: &ZoneOptions) -> ZoneOptions {
        ZoneOptions {
            strict_testing: self.strict_testing.unwrap_or(base.strict_testing),
            require_sni: self.require_sni.unwrap_or(base.require_sni),
            tlsrpt: self.tlsrpt.unwrap_or(base.tlsrpt),
            temp_on_dns_failure: self.temp_on_dns_failure.unwrap_or(base.temp_on_dns_failure),
            dane: self.dane.unwrap_or(base.dane),
        }
    }
}

impl From<ZoneOptions> for ZoneOverrides {
    fn from(o: ZoneOptions) -> Self {
        ZoneOverrides {
            strict_testing: Some(o.strict_testing),
            require_sni: Some(o.require_sni),
            tlsrpt: Some(o.tlsrpt),
            temp_on_dns_failure: Some(o.temp_on_dns_failure),
            dane: Some(o.dane),
        }
    }
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a `tracing` filter such as
    /// `"info,mtasts_resolver=debug"`. Changed live on SIGHUP.
    #[serde(deserialize_with = "de_level")]
    pub level: String,
    /// `text` or `json` (one JSON object a line). Needs a restart to change.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// The log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

fn de_level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    // A bare word is a target name to `tracing`, so "verbose" would silently log nothing:
    // bare words must be levels.
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in s.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains(['=', '['])
            && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive))
        {
            return Err(serde::de::Error::custom(format!(
                "invalid log level {directive:?}: use one of {}, or TARGET=LEVEL",
                LEVELS.join(", ")
            )));
        }
    }
    tracing_subscriber::EnvFilter::try_new(&s)
        .map_err(|e| serde::de::Error::custom(format!("invalid log level {s:?}: {e}")))?;
    Ok(s)
}

/// The accepted range of every numeric setting of the daemon's own table, as
/// `(key, least, most)` (the resolver's are [`mtasts_resolver::config::RANGES`]). Enforced at
/// load and listed in `docs/daemon.md`; a test keeps the two equal.
pub const RANGES: &[(&str, f64, f64)] = &[
    ("max_request", 16.0, 65_536.0),
    ("max_reply", 64.0, 10_000_000.0),
    ("max_connections", 1.0, 1_000_000.0),
    ("max_pipeline", 1.0, 10_000.0),
    ("idle_timeout", 0.1, 86_400.0),
    ("request_read_timeout", 0.1, 3_600.0),
    ("request_timeout", 0.1, 3_600.0),
    ("shutdown_timeout", 0.1, 3_600.0),
    ("refresh_period", 0.0, 86_400.0),
    ("refresh_batch", 1.0, 1_000_000.0),
    ("admin_max_request", 1_024.0, 16_777_216.0),
    ("admin_timeout", 0.1, 3_600.0),
    ("admin_max_connections", 1.0, 1_024.0),
];

/// A configuration file's text, or the error naming the file (the daemon's and the policy
/// host's files alike).
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// TOML into a configuration type, toml's message (line, column, key) kept; `origin` names
/// the text in errors.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

impl Config {
    #[allow(clippy::cast_precision_loss)]
    fn value_of(&self, key: &str) -> f64 {
        match key {
            "max_request" => self.max_request as f64,
            "max_reply" => self.max_reply as f64,
            "max_connections" => self.max_connections as f64,
            "max_pipeline" => self.max_pipeline as f64,
            "idle_timeout" => self.idle_timeout,
            "request_read_timeout" => self.request_read_timeout,
            "request_timeout" => self.request_timeout,
            "shutdown_timeout" => self.shutdown_timeout,
            "refresh_period" => self.refresh_period,
            "refresh_batch" => self.refresh_batch as f64,
            "admin_max_request" => self.admin_max_request as f64,
            "admin_timeout" => self.admin_timeout,
            "admin_max_connections" => self.admin_max_connections as f64,
            _ => f64::NAN,
        }
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_file(path)?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and checks a configuration; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_toml(text, origin)?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks what each value's type cannot: ranges and combinations.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        if self.listen.is_empty() {
            return Err(invalid(
                "listen",
                "at least one listener is needed".to_owned(),
            ));
        }
        for (i, a) in self.listen.iter().enumerate() {
            if self.listen[..i].contains(a) {
                return Err(invalid(
                    &format!("listen[{i}]"),
                    format!("{a} is listed twice"),
                ));
            }
        }
        if let Some(admin) = &self.admin
            && self
                .listen
                .iter()
                .any(|l| matches!(l, Listener::Unix(u) if u.path == admin.0.path))
        {
            return Err(invalid(
                "admin",
                format!(
                    "{} is also a socketmap listener: give the admin socket a path of its own",
                    admin.0.path.display()
                ),
            ));
        }
        if let Err(e) = check_ranges(RANGES, |key| self.value_of(key)) {
            return Err(invalid(e.key, e.out_of_range()));
        }
        // 0 turns the refresher off; anything else must leave it time to work.
        if self.refresh_period != 0.0 && self.refresh_period < 1.0 {
            return Err(invalid(
                "refresh_period",
                format!(
                    "{} is out of range (0 to turn it off, or from 1 to 86400)",
                    self.refresh_period
                ),
            ));
        }
        if let Err(e) = self.resolver.validate() {
            return Err(invalid(&format!("resolver.{}", e.key), e.out_of_range()));
        }
        if let Some(m) = self.metrics
            && !m.ip().is_loopback()
            && !self.metrics_allow_remote
        {
            return Err(invalid(
                "metrics",
                format!(
                    "{m} is not a loopback address; metrics are served without authentication, \
                     so set `metrics_allow_remote = true` to serve them there anyway"
                ),
            ));
        }
        Ok(())
    }

    /// The options of every map name, with inheritance applied.
    pub fn zone_table(&self) -> ZoneTable {
        ZoneTable {
            default: self.default_zone,
            zones: self
                .zones
                .iter()
                .map(|(k, v)| (k.clone(), v.apply(&self.default_zone)))
                .collect(),
        }
    }
}

impl Config {
    /// What `mtasts daemon --check` verifies beyond the file itself: the directory of an
    /// SQLite store exists (the daemon never creates it, and refuses to start without it).
    pub fn check_environment(&self, origin: &str) -> Result<(), ConfigError> {
        if let mtasts_resolver::store::StoreConfig::Sqlite { path } = &self.resolver.store {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(ConfigError::Invalid {
                    path: origin.to_owned(),
                    key: "resolver.store.path".to_owned(),
                    message: format!(
                        "the directory {} does not exist; create it (owned by the daemon's \
                         user), or let systemd's StateDirectory= create it",
                        dir.display()
                    ),
                });
            }
        }
        Ok(())
    }
    /// The map names whose zone gives DANE precedence (`dane = "on"`), `_default` for the
    /// default zone.
    pub fn dane_zones(&self) -> Vec<String> {
        let t = self.zone_table();
        let mut out: Vec<String> = Vec::new();
        if t.default.dane == DaneMode::On {
            out.push("_default".to_owned());
        }
        out.extend(
            t.zones
                .iter()
                .filter(|(_, o)| o.dane == DaneMode::On)
                .map(|(k, _)| k.clone()),
        );
        out
    }
}

/// Resolved zone options by map name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneTable {
    /// For map names without a section.
    pub default: ZoneOptions,
    /// Per configured map name.
    pub zones: BTreeMap<String, ZoneOptions>,
}

impl ZoneTable {
    /// The options for `map`, and the name to use for it in metrics: the map name when it is
    /// configured, `_default` otherwise (so clients cannot create metric series at will).
    pub fn lookup<'a>(&'a self, map: &str) -> (&'a str, &'a ZoneOptions) {
        match self.zones.get_key_value(map) {
            Some((k, v)) => (k.as_str(), v),
            None => ("_default", &self.default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(s, "test.toml")
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("").ok(), Some(Config::default()));
    }

    #[test]
    fn full_example() {
        let c = parse(
            r#"
            listen = [
              { tcp = "127.0.0.1:0" },
              { unix = "/run/mtasts/socketmap.sock", mode = "0660", group = "postfix" },
            ]
            max_request = 2048
            metrics = "127.0.0.1:9461"
            [log]
            level = "debug"
            format = "json"
            [default_zone]
            require_sni = false
            [zones.tlsrpt]
            tlsrpt = true
            [resolver.store]
            type = "memory"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.len(), 2);
        let Listener::Unix(u) = &c.listen[1] else {
            panic!("not unix")
        };
        assert_eq!(u.mode, Some(0o660));
        assert_eq!(u.group.as_deref(), Some("postfix"));
        let t = c.zone_table();
        let (name, o) = t.lookup("tlsrpt");
        assert_eq!(name, "tlsrpt");
        assert!(o.tlsrpt && !o.require_sni, "inherits require_sni");
        assert_eq!(t.lookup("postfix").0, "_default");
        assert_eq!(c.log.format, LogFormat::Json);
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(_) => panic!("accepted: {s}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_file_key_and_line() {
        let e = err("max_request = 1024\nmax_requests = 5\n");
        assert!(e.starts_with("test.toml: "), "{e}");
        assert!(e.contains("line 2") && e.contains("max_requests"), "{e}");
        let e = err("[default_zone]\nstrict_testing = \"yes\"\n");
        assert!(e.contains("line 2") && e.contains("strict_testing"), "{e}");
        let e = err("listen = [{ unix = \"/x.sock\", mode = \"0999\" }]\n");
        assert!(e.contains("line 1") && e.contains("0999"), "{e}");
        let e = err("listen = [{ tcp = \"127.0.0.1:1\", unix = \"/x\" }]\n");
        assert!(e.contains("not both"), "{e}");
        let e = err("listen = [{ unix = \"rel.sock\" }]\n");
        assert!(e.contains("absolute"), "{e}");
        let e = err("metrics = \"0.0.0.0:9461\"\n");
        assert!(e.contains("key `metrics`"), "{e}");
        let e = err("[log]\nlevel = \"verbose\"\n");
        assert!(e.contains("line 2") && e.contains("level"), "{e}");
        let e = err("[log]\nlevel = \"info,mtasts=loud\"\n");
        assert!(e.contains("line 2") && e.contains("level"), "{e}");
        let e = err("[zones.x]\ntlsrpt = true\nbogus = 1\n");
        assert!(e.contains("bogus"), "{e}");
        let e = err("[resolver.dns]\ntimeout = \"x\"\n");
        assert!(e.contains("timeout"), "{e}");
        let e = err("idle_timeout = 0\n");
        assert!(e.contains("key `idle_timeout`"), "{e}");
        let e = err("listen = []\n");
        assert!(e.contains("key `listen`"), "{e}");
    }

    /// contrib/mtasts-daemon.toml sets every option to its default.
    #[test]
    fn contrib_example_is_the_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/mtasts-daemon.toml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, Config::default());
    }

    #[test]
    fn admin_socket() {
        let c = parse("admin = { unix = \"/run/mtasts/admin.sock\" }\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let a = c.admin.unwrap_or_else(|| panic!("no admin socket"));
        assert_eq!(a.path(), Path::new(DEFAULT_ADMIN_SOCKET));
        assert_eq!(a.0.mode, Some(0o600), "0600 unless given");
        let c = parse("admin = { unix = \"/x/admin.sock\", mode = \"0660\", group = \"adm\" }\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let a = c.admin.unwrap_or_else(|| panic!("no admin socket"));
        assert_eq!((a.0.mode, a.0.group.as_deref()), (Some(0o660), Some("adm")));
        let e = err("admin = { tcp = \"127.0.0.1:1\" }\n");
        assert!(
            e.contains("line 1") && e.contains("Unix socket only"),
            "{e}"
        );
        let e = err("admin = { unix = \"rel.sock\" }\n");
        assert!(e.contains("absolute"), "{e}");
        let e = err("listen = [{ unix = \"/x/s.sock\" }]\nadmin = { unix = \"/x/s.sock\" }\n");
        assert!(
            e.contains("key `admin`") && e.contains("path of its own"),
            "{e}"
        );
        let e = err("admin_max_request = 10\n");
        assert!(e.contains("key `admin_max_request`"), "{e}");
        let e = err("admin_timeout = 0\n");
        assert!(e.contains("key `admin_timeout`"), "{e}");
    }

    #[test]
    fn remote_metrics_when_allowed() {
        assert!(parse("metrics = \"0.0.0.0:9461\"\nmetrics_allow_remote = true\n").is_ok());
        assert!(parse("metrics = \"[::1]:9461\"\n").is_ok());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("").is_err());
        assert!(parse_mode("8").is_err());
        assert!(parse_mode("17777").is_err());
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;

    /// docs/daemon.md gives every numeric key its enforced range.
    #[test]
    fn docs_list_the_ranges_enforced() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/daemon.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        for &(key, least, most) in RANGES {
            let range = if key == "refresh_period" {
                format!("0 (off), 1–{most}")
            } else {
                format!("{least}–{most}")
            };
            let found = doc.lines().any(|l| {
                l.starts_with(&format!("| `{key}` | ")) && l.contains(&format!(" | {range} | "))
            });
            assert!(
                found,
                "docs/daemon.md: no row for `{key}` with the range {range}"
            );
        }
    }

    /// Regression (issue 13): these passed `daemon --check` and made the daemon spin or answer
    /// NOTFOUND for every enforce domain.
    #[test]
    fn values_that_would_break_the_daemon_are_refused() {
        for (toml, key) in [
            ("refresh_period = 1e-9\n", "refresh_period"),
            (
                "[resolver.fetch]\nmax_body = 0\n",
                "resolver.fetch.max_body",
            ),
            ("[resolver.dns]\nattempts = 0\n", "resolver.dns.attempts"),
            ("max_pipeline = 0\n", "max_pipeline"),
            ("request_read_timeout = 0\n", "request_read_timeout"),
        ] {
            match Config::from_toml_str(toml, "t.toml") {
                Ok(_) => panic!("accepted: {toml}"),
                Err(e) => assert!(
                    e.to_string().contains(&format!("key `{key}`")),
                    "{toml}: {e}"
                ),
            }
        }
    }
}
