//! The configuration file of `mtasts serve` (TOML). Every key has a default; every numeric key
//! has a range ([`RANGES`]), checked at load; unknown keys are errors. `contrib/mtasts-serve.toml`
//! sets every key to its default and `docs/serve.md` lists every range: tests keep the three
//! equal.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mtasts_core::tlsrpt::readiness::Thresholds;
use mtasts_daemon::config::LogConfig;
use mtasts_net::http_server::ServeLimits;
use mtasts_tlsrpt_receive::https::ReceiverLimits;
use serde::{Deserialize, Serialize};

/// Why the configuration could not be used: the daemon's error type, so both programs name
/// the file, the key and what is wrong the same way.
pub use mtasts_daemon::config::ConfigError;
pub(crate) use mtasts_daemon::config::secs;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTPS listeners (restart to change). Default: `0.0.0.0:443` and `[::]:443`.
    pub listen: Vec<SocketAddr>,
    /// Plain-HTTP listeners answering only ACME HTTP-01 challenges
    /// (`/.well-known/acme-challenge/<token>`; everything else is 404, never a redirect).
    /// Restart to change. Default: none.
    pub http_listen: Vec<SocketAddr>,
    /// A directory of policy files, one per domain, named `<domain>.txt` (the domain in lower
    /// case, as A-labels). `promote` and `retire` rewrite these files. Default: none.
    pub policy_dir: Option<PathBuf>,
    /// Seconds between two looks at the configuration file, the policy files and the
    /// certificate files (modification time, size, inode); a change reloads them. 0: only
    /// SIGHUP reloads.
    pub reload_interval: f64,
    /// The TTL written in the `_mta-sts` records printed for publishing, in seconds.
    pub record_ttl: u32,
    /// The largest policy file read, in bytes (RFC 8461 §3.3 lets senders refuse more than
    /// 64 KiB).
    pub max_policy_bytes: u64,
    /// Policies given in this file, by domain: `[domains."example.com"] policy = """…"""`.
    pub domains: BTreeMap<String, DomainConfig>,
    /// Connection and request limits of the HTTPS listeners (restart to change).
    pub limits: LimitsConfig,
    /// Certificates.
    pub certificates: CertificatesConfig,
    /// The DNS lookups of the published `_mta-sts` records.
    pub dns: DnsConfig,
    /// The admin listener (`/metrics`).
    pub admin: AdminConfig,
    /// TLS-RPT reports: the store `promote` reads, and the receiver.
    pub reports: ReportsConfig,
    /// Certificates through ACME (restart to change).
    pub acme: AcmeConfig,
    /// Logging. (Not serialised: the daemon's type; the example's keys test lists its two
    /// keys itself.)
    #[serde(skip_serializing)]
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 443)),
                SocketAddr::from(([0u16; 8], 443)),
            ],
            http_listen: Vec::new(),
            policy_dir: None,
            reload_interval: 5.0,
            record_ttl: 3600,
            max_policy_bytes: 65_536,
            domains: BTreeMap::new(),
            limits: LimitsConfig::default(),
            certificates: CertificatesConfig::default(),
            dns: DnsConfig::default(),
            admin: AdminConfig::default(),
            reports: ReportsConfig::default(),
            acme: AcmeConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// A policy given in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The policy file's text (RFC 8461 §3.2).
    pub policy: String,
}

/// [`ServeLimits`] in the file's units (seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// See [`ServeLimits::max_connections`].
    pub max_connections: usize,
    /// See [`ServeLimits::max_connections_per_client`].
    pub max_connections_per_client: usize,
    /// See [`ServeLimits::handshake_timeout`], seconds.
    pub handshake_timeout: f64,
    /// See [`ServeLimits::header_read_timeout`], seconds.
    pub header_read_timeout: f64,
    /// See [`ServeLimits::max_header_bytes`].
    pub max_header_bytes: usize,
    /// See [`ServeLimits::max_headers`].
    pub max_headers: usize,
    /// See [`ServeLimits::max_connection_age`], seconds.
    pub max_connection_age: f64,
    /// See [`ServeLimits::h2_max_concurrent_streams`].
    pub h2_max_concurrent_streams: u32,
    /// See [`ServeLimits::shutdown_grace`], seconds.
    pub shutdown_grace: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // A sender's request is one short line and a few headers: the heads allowed are far
        // smaller than a web server's.
        LimitsConfig {
            max_connections: 1024,
            max_connections_per_client: 32,
            handshake_timeout: 10.0,
            header_read_timeout: 10.0,
            max_header_bytes: 8192,
            max_headers: 32,
            max_connection_age: 300.0,
            h2_max_concurrent_streams: 16,
            shutdown_grace: 10.0,
        }
    }
}

impl LimitsConfig {
    /// As the server takes them.
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            handshake_timeout: secs(self.handshake_timeout),
            header_read_timeout: secs(self.header_read_timeout),
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            max_connection_age: secs(self.max_connection_age),
            h2_max_concurrent_streams: self.h2_max_concurrent_streams,
            shutdown_grace: secs(self.shutdown_grace),
        }
    }
}

/// Certificates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CertificatesConfig {
    /// Warn (log and metric) when a served certificate expires within this many days.
    pub expiry_warning_days: u32,
    /// Certificate chains and keys from PEM files: `[[certificates.files]]`. Each is served
    /// for every DNS name of its leaf (subjectAltName; a `*.example.com` name covers
    /// `mta-sts.example.com`), chosen by the name the client asks for (SNI).
    pub files: Vec<CertFiles>,
}

impl Default for CertificatesConfig {
    fn default() -> Self {
        CertificatesConfig {
            expiry_warning_days: 14,
            files: Vec::new(),
        }
    }
}

/// One certificate from files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    /// The chain, PEM, leaf first (a `fullchain.pem`).
    pub chain: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Certificates obtained through ACME (RFC 8555) by `mtasts-acme` (see `docs/acme.md`): one
/// certificate per name, stored under `storage_dir` and reused across restarts, renewed when a
/// third of its lifetime is left; its expiry is in the metrics and warned of as for files
/// (`certificates.expiry_warning_days`). Names resolve, and the ACME server is reached,
/// through `[dns]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// The ACME server's directory URL (`https://…`, e.g. Let's Encrypt's
    /// `https://acme-v02.api.letsencrypt.org/directory`). None: no ACME.
    pub directory_url: Option<String>,
    /// Contact URIs of the account (`mailto:…`).
    pub contact: Vec<String>,
    /// Where the account key and the certificates are kept (0600 files).
    pub storage_dir: PathBuf,
    /// `tls-alpn-01` (answered on `listen`, port 443) or `http-01` (answered on
    /// `http_listen`, port 80, which must then be set).
    pub challenge: mtasts_acme::ChallengeKind,
    /// The names to obtain certificates for. Empty: `mta-sts.<domain>` of every policy domain
    /// (at start) that no `[[certificates.files]]` certificate covers.
    pub names: Vec<String>,
    /// Trust roots (PEM file or directory) for the ACME server's HTTPS. None: the platform's.
    pub ca_file: Option<PathBuf>,
    /// Seconds an order may take to be validated, and then to be issued (each).
    pub order_timeout: f64,
    /// Seconds of the first wait when polling an order (doubled after each poll).
    pub poll_delay: f64,
    /// The longest sleep between two looks at every certificate, seconds.
    pub check_interval: f64,
    /// TCP connect timeout to the ACME server, seconds.
    pub connect_timeout: f64,
    /// The deadline of each request to the ACME server, seconds.
    pub request_timeout: f64,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        let s = mtasts_acme::Settings::new("https://acme.invalid/", &[], "/var/lib/mtasts/acme");
        AcmeConfig {
            directory_url: None,
            contact: Vec::new(),
            storage_dir: s.storage_dir,
            challenge: s.challenge,
            names: Vec::new(),
            ca_file: None,
            order_timeout: s.order_timeout.as_secs_f64(),
            poll_delay: s.poll_delay.as_secs_f64(),
            check_interval: s.check_interval.as_secs_f64(),
            connect_timeout: s.http.connect_timeout.as_secs_f64(),
            request_timeout: s.http.request_timeout.as_secs_f64(),
        }
    }
}

impl AcmeConfig {
    /// The manager's settings for `names` (`None` when ACME is off); its expiry alarm is
    /// `expiry_warning_days` before the end.
    pub fn settings(
        &self,
        names: &[String],
        expiry_warning_days: u32,
    ) -> Option<mtasts_acme::Settings> {
        let url = self.directory_url.as_deref()?;
        let mut s = mtasts_acme::Settings::new(url, &[], self.storage_dir.clone());
        s.names = names.to_vec();
        s.contact.clone_from(&self.contact);
        s.challenge = self.challenge;
        s.ca_file.clone_from(&self.ca_file);
        s.order_timeout = secs(self.order_timeout);
        s.poll_delay = secs(self.poll_delay);
        s.check_interval = secs(self.check_interval);
        s.http.connect_timeout = secs(self.connect_timeout);
        s.http.request_timeout = secs(self.request_timeout);
        s.renewal.alarm_before = u64::from(expiry_warning_days) * 86_400;
        Some(s)
    }
}

/// The DNS lookups of the published records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Resolvers to ask (`address:port`). Empty: the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// Time allowed for one query, seconds.
    pub timeout: f64,
    /// Attempts per query.
    pub attempts: usize,
    /// Seconds between two looks at every domain's published `_mta-sts` record (besides at
    /// start and after each policy change), so that a warning clears once the record is
    /// updated. 0: only at start and after changes.
    pub check_interval: f64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout: 5.0,
            attempts: 2,
            check_interval: 300.0,
        }
    }
}

impl DnsConfig {
    /// As the DNS edge takes them.
    pub fn settings(&self) -> mtasts_net::DnsSettings {
        mtasts_net::DnsSettings {
            servers: self.servers.clone(),
            timeout: secs(self.timeout),
            attempts: self.attempts,
        }
    }
}

/// The admin listener: `GET /metrics` (Prometheus text format), plain HTTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Where (restart to change). Empty: no admin listener. Only loopback addresses unless
    /// `allow_remote`.
    pub listen: Vec<SocketAddr>,
    /// Allow a non-loopback `listen` (metrics have no authentication).
    pub allow_remote: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 9462))],
            allow_remote: false,
        }
    }
}

/// TLS-RPT reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// The report store (a path or `sqlite:PATH`, or `postgres://…`): what `promote` judges
    /// readiness from, and where the receiver stores. Default: none.
    pub store: Option<String>,
    /// Readiness thresholds for `promote`.
    pub readiness: ReadinessConfig,
    /// The HTTPS receiver of reports (RFC 8460 §5.4) on this server.
    pub receiver: ReceiverConfig,
}

/// The readiness thresholds ([`Thresholds`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadinessConfig {
    /// Days of reports under the testing policy needed.
    pub min_days: u32,
    /// Sessions those reports must cover.
    pub min_sessions: u64,
    /// Distinct reporting organisations needed.
    pub min_organizations: usize,
    /// For an enforced domain, the recent days looked at for regressions.
    pub regression_days: u32,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        let t = Thresholds::default();
        ReadinessConfig {
            min_days: t.min_days,
            min_sessions: t.min_sessions,
            min_organizations: t.min_organizations,
            regression_days: t.regression_days,
        }
    }
}

impl ReadinessConfig {
    /// As the core takes them.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            min_days: self.min_days,
            min_sessions: self.min_sessions,
            min_organizations: self.min_organizations,
            regression_days: self.regression_days,
        }
    }
}

/// The HTTPS receiver of reports (restart to change).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiverConfig {
    /// The host name reports are POSTed to (the `rua=https://HOST/PATH` of `_smtp._tls`); a
    /// certificate must cover it. None: no receiver. It may be a policy host's
    /// `mta-sts.<domain>`: its policy path stays the policy's.
    pub host: Option<String>,
    /// The paths reports are POSTed to.
    pub paths: Vec<String>,
    /// The largest report body, bytes.
    pub max_body_bytes: usize,
    /// Seconds a body may take to arrive.
    pub request_timeout: f64,
    /// Seconds the store may take.
    pub store_timeout: f64,
    /// Reports received at once.
    pub max_concurrent_requests: usize,
    /// The `Retry-After` of a 503, seconds.
    pub retry_after_secs: u32,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        let r = ReceiverLimits::DEFAULT;
        ReceiverConfig {
            host: None,
            paths: vec!["/tlsrpt".to_owned()],
            max_body_bytes: r.max_body_bytes,
            request_timeout: r.request_timeout.as_secs_f64(),
            store_timeout: r.store_timeout.as_secs_f64(),
            max_concurrent_requests: r.max_concurrent_requests,
            retry_after_secs: r.retry_after_secs,
        }
    }
}

impl ReceiverConfig {
    /// As the receiver takes them.
    pub fn limits(&self) -> ReceiverLimits {
        ReceiverLimits {
            max_body_bytes: self.max_body_bytes,
            request_timeout: secs(self.request_timeout),
            store_timeout: secs(self.store_timeout),
            max_concurrent_requests: self.max_concurrent_requests,
            retry_after_secs: self.retry_after_secs,
        }
    }
}

/// The accepted range of every numeric key, as `(key, least, most)`. Enforced at load and
/// listed in `docs/serve.md`; tests keep the two equal, and those under `limits.` and
/// `reports.receiver.` equal to the ranges the server and the receiver enforce themselves.
pub const RANGES: &[(&str, f64, f64)] = &[
    ("reload_interval", 0.0, 86_400.0),
    ("record_ttl", 60.0, 604_800.0),
    ("max_policy_bytes", 1024.0, 1_048_576.0),
    ("limits.max_connections", 1.0, 65_536.0),
    ("limits.max_connections_per_client", 1.0, 65_536.0),
    ("limits.handshake_timeout", 0.001, 300.0),
    ("limits.header_read_timeout", 0.001, 300.0),
    ("limits.max_header_bytes", 1024.0, 262_144.0),
    ("limits.max_headers", 8.0, 1024.0),
    ("limits.max_connection_age", 0.001, 86_400.0),
    ("limits.h2_max_concurrent_streams", 1.0, 1024.0),
    ("limits.shutdown_grace", 0.0, 300.0),
    ("certificates.expiry_warning_days", 1.0, 365.0),
    ("dns.timeout", 0.1, 60.0),
    ("dns.attempts", 1.0, 10.0),
    ("dns.check_interval", 0.0, 86_400.0),
    ("reports.readiness.min_days", 1.0, 365.0),
    ("reports.readiness.min_sessions", 0.0, 1e12),
    ("reports.readiness.min_organizations", 1.0, 1000.0),
    ("reports.readiness.regression_days", 1.0, 365.0),
    ("reports.receiver.max_body_bytes", 1024.0, 10_485_760.0),
    ("reports.receiver.request_timeout", 0.001, 3600.0),
    ("reports.receiver.store_timeout", 0.001, 3600.0),
    ("reports.receiver.max_concurrent_requests", 1.0, 1024.0),
    ("reports.receiver.retry_after_secs", 1.0, 86_400.0),
    ("acme.order_timeout", 5.0, 3600.0),
    ("acme.poll_delay", 0.0, 60.0),
    ("acme.check_interval", 1.0, 86_400.0),
    ("acme.connect_timeout", 1.0, 300.0),
    ("acme.request_timeout", 1.0, 600.0),
];

impl Config {
    #[allow(clippy::cast_precision_loss)]
    fn value_of(&self, key: &str) -> f64 {
        let l = &self.limits;
        let r = &self.reports.receiver;
        let t = &self.reports.readiness;
        match key {
            "reload_interval" => self.reload_interval,
            "record_ttl" => f64::from(self.record_ttl),
            "max_policy_bytes" => self.max_policy_bytes as f64,
            "limits.max_connections" => l.max_connections as f64,
            "limits.max_connections_per_client" => l.max_connections_per_client as f64,
            "limits.handshake_timeout" => l.handshake_timeout,
            "limits.header_read_timeout" => l.header_read_timeout,
            "limits.max_header_bytes" => l.max_header_bytes as f64,
            "limits.max_headers" => l.max_headers as f64,
            "limits.max_connection_age" => l.max_connection_age,
            "limits.h2_max_concurrent_streams" => f64::from(l.h2_max_concurrent_streams),
            "limits.shutdown_grace" => l.shutdown_grace,
            "certificates.expiry_warning_days" => f64::from(self.certificates.expiry_warning_days),
            "dns.timeout" => self.dns.timeout,
            "dns.attempts" => self.dns.attempts as f64,
            "dns.check_interval" => self.dns.check_interval,
            "reports.readiness.min_days" => f64::from(t.min_days),
            "reports.readiness.min_sessions" => t.min_sessions as f64,
            "reports.readiness.min_organizations" => t.min_organizations as f64,
            "reports.readiness.regression_days" => f64::from(t.regression_days),
            "reports.receiver.max_body_bytes" => r.max_body_bytes as f64,
            "reports.receiver.request_timeout" => r.request_timeout,
            "reports.receiver.store_timeout" => r.store_timeout,
            "reports.receiver.max_concurrent_requests" => r.max_concurrent_requests as f64,
            "reports.receiver.retry_after_secs" => f64::from(r.retry_after_secs),
            "acme.order_timeout" => self.acme.order_timeout,
            "acme.poll_delay" => self.acme.poll_delay,
            "acme.check_interval" => self.acme.check_interval,
            "acme.connect_timeout" => self.acme.connect_timeout,
            "acme.request_timeout" => self.acme.request_timeout,
            _ => f64::NAN,
        }
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = mtasts_daemon::config::read_file(path)?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and checks a configuration; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = mtasts_daemon::config::parse_toml(text, origin)?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks what each value's type cannot: ranges, names and combinations.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        if let Err(e) = mtasts_daemon::config::check_ranges(RANGES, |key| self.value_of(key)) {
            return Err(invalid(e.key, e.out_of_range()));
        }
        if self.listen.is_empty() {
            return Err(invalid(
                "listen",
                "at least one listener is needed".to_owned(),
            ));
        }
        for (key, list) in [
            ("listen", &self.listen),
            ("http_listen", &self.http_listen),
            ("admin.listen", &self.admin.listen),
        ] {
            for (i, a) in list.iter().enumerate() {
                // Port 0 (the kernel picks one) never collides.
                if a.port() != 0 && list[..i].contains(a) {
                    return Err(invalid(key, format!("{a} is listed twice")));
                }
            }
        }
        if let Some(a) = self
            .http_listen
            .iter()
            .find(|a| a.port() != 0 && self.listen.contains(a))
        {
            return Err(invalid(
                "http_listen",
                format!("{a} is also an HTTPS listener"),
            ));
        }
        if let Some(a) =
            self.admin.listen.iter().find(|a| {
                a.port() != 0 && (self.listen.contains(a) || self.http_listen.contains(a))
            })
        {
            return Err(invalid(
                "admin.listen",
                format!("{a} is also an HTTPS or HTTP listener"),
            ));
        }
        if !self.admin.allow_remote
            && let Some(a) = self.admin.listen.iter().find(|a| !a.ip().is_loopback())
        {
            return Err(invalid(
                "admin.listen",
                format!(
                    "{a} is not a loopback address; metrics are served without authentication, \
                     so set `admin.allow_remote = true` to serve them there anyway"
                ),
            ));
        }
        for (name, d) in &self.domains {
            let key = format!("domains.{name}");
            match mtasts_core::domain::to_a_label(name) {
                Ok(a) if a == *name => {}
                Ok(a) => {
                    return Err(invalid(
                        &key,
                        format!("write the domain as {a:?} (lower case, A-labels)"),
                    ));
                }
                Err(e) => return Err(invalid(&key, format!("not a domain name: {e}"))),
            }
            if d.policy.len() as u64 > self.max_policy_bytes {
                return Err(invalid(
                    &format!("{key}.policy"),
                    format!(
                        "{} bytes, over max_policy_bytes = {}",
                        d.policy.len(),
                        self.max_policy_bytes
                    ),
                ));
            }
        }
        if let Some(dir) = &self.policy_dir
            && dir.as_os_str().is_empty()
        {
            return Err(invalid("policy_dir", "is empty".to_owned()));
        }
        if self.reports.store.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("reports.store", "is empty".to_owned()));
        }
        if let Some(host) = &self.reports.receiver.host {
            match mtasts_core::domain::to_a_label(host) {
                Ok(a) if a == *host => {}
                _ => {
                    return Err(invalid(
                        "reports.receiver.host",
                        format!("{host:?} is not a host name in lower case and A-labels"),
                    ));
                }
            }
            if self.reports.store.is_none() {
                return Err(invalid(
                    "reports.receiver.host",
                    "the receiver needs `reports.store`, where it keeps the reports".to_owned(),
                ));
            }
            if self.reports.receiver.paths.is_empty() {
                return Err(invalid(
                    "reports.receiver.paths",
                    "at least one path is needed".to_owned(),
                ));
            }
            if self
                .reports
                .receiver
                .paths
                .iter()
                .any(|p| p == mtasts_core::sts::fetch::POLICY_PATH)
            {
                return Err(invalid(
                    "reports.receiver.paths",
                    format!(
                        "{} is the policy's path",
                        mtasts_core::sts::fetch::POLICY_PATH
                    ),
                ));
            }
        }
        if let Some(url) = &self.acme.directory_url {
            if !url.starts_with("https://") {
                return Err(invalid(
                    "acme.directory_url",
                    format!("{url:?} is not an https:// URL"),
                ));
            }
            if self.acme.challenge == mtasts_acme::ChallengeKind::Http01
                && self.http_listen.is_empty()
            {
                return Err(invalid(
                    "acme.challenge",
                    "http-01 is answered on `http_listen`, which is empty".to_owned(),
                ));
            }
            if let Some(n) = self.acme.names.iter().find(|n| !mtasts_acme::valid_name(n)) {
                return Err(invalid(
                    "acme.names",
                    format!("{n:?} is not a lower-case DNS name in A-labels (no wildcard)"),
                ));
            }
            if self.acme.storage_dir.as_os_str().is_empty() {
                return Err(invalid("acme.storage_dir", "is empty".to_owned()));
            }
        }
        if let Err(e) = self.limits.serve_limits().validate() {
            return Err(invalid(&format!("limits.{}", e.name), e.to_string()));
        }
        if let Err(e) = self
            .reports
            .receiver
            .limits()
            .validate(&mtasts_core::tlsrpt::report::ReportLimits::DEFAULT)
        {
            return Err(invalid("reports.receiver", e.to_string()));
        }
        Ok(())
    }

    /// The settings that only a restart changes, for a reload to say they were not applied.
    pub fn restart_only(&self) -> impl PartialEq + std::fmt::Debug + '_ {
        (
            &self.listen,
            &self.http_listen,
            &self.limits,
            &self.admin,
            &self.reports.receiver,
            &self.reports.store,
            &self.acme,
            &self.log.format,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(s, "serve.toml")
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(_) => panic!("accepted: {s}"),
            Err(e) => e.to_string(),
        }
    }

    fn contrib() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/mtasts-serve.toml")
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("").ok(), Some(Config::default()));
    }

    /// contrib/mtasts-serve.toml sets every key to its default.
    #[test]
    fn contrib_example_is_the_default() {
        let c = Config::load(&contrib()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, Config::default());
    }

    /// Every key of the code, with each optional part present.
    fn every_key() -> Config {
        let mut c = Config {
            policy_dir: Some("/etc/mtasts/policies".into()),
            ..Config::default()
        };
        c.domains.insert(
            "example.com".into(),
            DomainConfig {
                policy: "version: STSv1\n".into(),
            },
        );
        c.certificates.files.push(CertFiles {
            chain: "c.pem".into(),
            key: "k.pem".into(),
        });
        c.http_listen.push(SocketAddr::from(([0, 0, 0, 0], 80)));
        c.dns.servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        c.reports.store = Some("x".into());
        c.reports.receiver.host = Some("x".into());
        c.acme.directory_url = Some("https://acme.example/directory".into());
        c.acme.ca_file = Some("ca.pem".into());
        c
    }

    fn keys_of(prefix: &str, v: &toml::Value, out: &mut BTreeSet<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let k = if prefix == "domains" { "*" } else { k.as_str() };
                    let key = if prefix.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    match v {
                        toml::Value::Table(_) => keys_of(&key, v, out),
                        toml::Value::Array(a) if a.first().is_some_and(toml::Value::is_table) => {
                            for item in a {
                                keys_of(&format!("{key}[]"), item, out);
                            }
                        }
                        _ => {
                            out.insert(key);
                        }
                    }
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }

    /// The keys the example file shows, set or commented out (`# key = …` under a `[table]`
    /// or `# [table]` header).
    fn keys_of_example(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut table = String::new();
        for line in text.lines() {
            let l = line.trim_start_matches('#').trim_start();
            if l.starts_with("[[") && l.ends_with("]]") {
                table = format!("{}[]", &l[2..l.len() - 2]);
            } else if l.starts_with('[') && l.ends_with(']') {
                table = l[1..l.len() - 1].to_owned();
                if let Some(rest) = table.strip_prefix("domains.") {
                    let _ = rest;
                    table = "domains.*".to_owned();
                }
            } else if let Some((k, _)) = l.split_once(" = ")
                && !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                out.insert(if table.is_empty() {
                    k.to_owned()
                } else {
                    format!("{table}.{k}")
                });
            }
        }
        out
    }

    /// The example documents exactly the keys the code reads.
    #[test]
    fn contrib_example_shows_every_key_and_no_other() {
        let value = toml::Value::try_from(every_key()).unwrap_or_else(|e| panic!("{e}"));
        let mut code = BTreeSet::new();
        keys_of("", &value, &mut code);
        code.insert("log.level".to_owned());
        code.insert("log.format".to_owned());
        let text = std::fs::read_to_string(contrib()).unwrap_or_else(|e| panic!("{e}"));
        let example = keys_of_example(&text);
        assert!(code.len() > 30, "the keys were not read: {code:?}");
        let missing: Vec<_> = code.difference(&example).collect();
        let unknown: Vec<_> = example.difference(&code).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "contrib/mtasts-serve.toml: keys of the code not shown: {missing:?}; keys shown the code does not read: {unknown:?}"
        );
    }

    /// Each value the example shows for a key with a default is that default.
    #[test]
    fn contrib_example_shows_the_defaults() {
        let defaults = toml::Value::try_from(Config::default()).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(contrib()).unwrap_or_else(|e| panic!("{e}"));
        let mut table: Vec<String> = Vec::new();
        let mut compared = 0;
        for line in text.lines() {
            let l = line.trim_start_matches('#').trim_start();
            if l.starts_with('[') && l.ends_with(']') {
                table = l
                    .trim_matches(|c| c == '[' || c == ']')
                    .split('.')
                    .map(str::to_owned)
                    .collect();
                continue;
            }
            let Some((k, v)) = l.split_once(" = ") else {
                continue;
            };
            let mut node = Some(&defaults);
            for part in table.iter().chain(std::iter::once(&k.to_owned())) {
                node = node.and_then(|n| n.get(part.as_str()));
            }
            let Some(default) = node else { continue };
            let shown: toml::Value = toml::from_str::<toml::Table>(&format!("x = {v}"))
                .unwrap_or_else(|e| panic!("{line}: {e}"))
                .remove("x")
                .unwrap_or_else(|| panic!("{line}"));
            assert_eq!(&shown, default, "contrib/mtasts-serve.toml: {line}");
            compared += 1;
        }
        assert!(compared > 30, "only {compared} defaults compared");
        let log = LogConfig::default();
        assert!(text.contains(&format!("# level = \"{}\"", log.level)));
    }

    /// The small configuration in docs/serve.md loads, with the meaning the text gives it.
    #[test]
    fn docs_small_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/serve.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let start = doc.find("```toml\n").map(|i| i + 8);
        let block = start.and_then(|s| doc[s..].find("```").map(|n| &doc[s..s + n]));
        let Some(block) = block else {
            panic!("docs/serve.md has no ```toml block");
        };
        let c = Config::from_toml_str(block, "docs/serve.md").expect("the example loads");
        assert_eq!(c.listen.len(), 1);
        assert_eq!(c.certificates.files.len(), 1);
        assert!(c.admin.listen.is_empty());
        assert!(c.policy_dir.is_some());
    }

    /// docs/serve.md gives every numeric key its enforced range.
    #[test]
    fn docs_list_the_ranges_enforced() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/serve.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        for &(key, least, most) in RANGES {
            let range = format!("{least}–{most}");
            let found = doc.lines().any(|l| {
                l.starts_with(&format!("| `{key}` | ")) && l.contains(&format!(" | {range} | "))
            });
            assert!(
                found,
                "docs/serve.md: no row for `{key}` with the range {range}"
            );
            assert!(
                Config::default().value_of(key).is_finite(),
                "RANGES names {key}, which value_of does not know"
            );
        }
    }

    /// The ranges of `limits.*` are the server's own: the least and most pass its check, and
    /// just outside them fails it (so the two cannot drift apart).
    #[test]
    fn limit_ranges_are_the_servers() {
        let step = |least: f64| {
            if least.fract() != 0.0 || least < 1.0 {
                0.0005
            } else {
                1.0
            }
        };
        for &(key, least, most) in RANGES {
            let Some(field) = key.strip_prefix("limits.") else {
                continue;
            };
            let with = |v: f64| {
                let text =
                    if key.contains("timeout") || key.contains("age") || key.contains("grace") {
                        format!("[limits]\n{field} = {v:?}\n")
                    } else {
                        format!("[limits]\n{field} = {}\n", v as u64)
                    };
                toml::from_str::<Config>(&text)
                    .unwrap_or_else(|e| panic!("{text}: {e}"))
                    .limits
                    .serve_limits()
                    .validate()
            };
            assert_eq!(with(least), Ok(()), "{key} = {least}");
            assert_eq!(with(most), Ok(()), "{key} = {most}");
            if least - step(least) >= 0.0 {
                assert!(with(least - step(least)).is_err(), "{key} below {least}");
            }
            assert!(
                with(most + step(most).max(1.0)).is_err(),
                "{key} above {most}"
            );
        }
    }

    #[test]
    fn errors_name_file_key_and_line() {
        let e = err("listen = []\n");
        assert!(e.contains("key `listen`"), "{e}");
        let e = err("lisen = [\"127.0.0.1:443\"]\n");
        assert!(e.contains("lisen") && e.contains("line 1"), "{e}");
        let e = err("[limits]\nmax_headers = 2\n");
        assert!(e.contains("key `limits.max_headers`"), "{e}");
        let e = err("[admin]\nlisten = [\"0.0.0.0:9462\"]\n");
        assert!(e.contains("key `admin.listen`"), "{e}");
        let e = err("[domains.\"Example.COM\"]\npolicy = \"x\"\n");
        assert!(e.contains("\"example.com\""), "{e}");
        let e = err("[domains.\"a..b\"]\npolicy = \"x\"\n");
        assert!(e.contains("not a domain name"), "{e}");
        let e = err("[reports.receiver]\nhost = \"reports.example.com\"\n");
        assert!(e.contains("reports.store"), "{e}");
        let e = err(
            "[reports]\nstore = \"/x.db\"\n[reports.receiver]\nhost = \"r.example.com\"\npaths = [\"/.well-known/mta-sts.txt\"]\n",
        );
        assert!(e.contains("policy's path"), "{e}");
        let e = err("[dns]\ntimeout = 0\n");
        assert!(e.contains("key `dns.timeout`"), "{e}");
        let e = err("[[certificates.files]]\nchain = \"c.pem\"\n");
        assert!(e.contains("key"), "{e}");
        let e = err("[acme]\ndirectory_url = \"http://acme.example/dir\"\n");
        assert!(e.contains("key `acme.directory_url`"), "{e}");
        let e = err("[acme]\ndirectory_url = \"https://a.example/dir\"\nchallenge = \"http-01\"\n");
        assert!(
            e.contains("key `acme.challenge`") && e.contains("http_listen"),
            "{e}"
        );
        let e =
            err("[acme]\ndirectory_url = \"https://a.example/dir\"\nnames = [\"*.example.com\"]\n");
        assert!(e.contains("key `acme.names`"), "{e}");
        let e = err("[acme]\norder_timeout = 1\n");
        assert!(e.contains("key `acme.order_timeout`"), "{e}");
    }

    /// The ranges of `acme.*` are the ACME manager's own: the least and most pass its check.
    #[test]
    fn acme_ranges_are_the_managers() {
        for &(key, least, most) in RANGES {
            let Some(field) = key.strip_prefix("acme.") else {
                continue;
            };
            for v in [least, most] {
                let text =
                    format!("[acme]\ndirectory_url = \"https://a.example/d\"\n{field} = {v:?}\n");
                let c = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                let s = c.acme.settings(&["mta-sts.example.com".to_owned()], 14);
                let s = s.unwrap_or_else(|| panic!("{text}: no settings"));
                assert!(s.validate().is_ok(), "{key} = {v}: {:?}", s.validate());
            }
        }
    }
}
