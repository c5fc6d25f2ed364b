//! The manager: one certificate per configured name, ordered, stored, loaded and renewed as
//! [`mtasts_core::acme::decide`] says.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use mtasts_core::acme::{
    Decision, Expiry, Failures, Lifetime, Reason, RenewalConfig, UnixSeconds, decide, expiry,
};
use mtasts_net::dns::DnsLookup;
use mtasts_net::tls::{TlsClient, TrustRoots, Verification};
use serde::{Deserialize, Serialize};

use crate::certs::{AcmeResolver, CertStore};
use crate::challenge::{ChallengeSink, ChallengeStore, tls_alpn01_certificate};
use crate::http::{AcmeHttp, HttpLimits};
use crate::store::Storage;
use crate::{AcmeError, valid_name};

/// The challenge type the ACME server is asked to validate with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeKind {
    /// HTTP-01 (RFC 8555 §8.3): the server must answer on port 80.
    #[serde(rename = "http-01")]
    Http01,
    /// TLS-ALPN-01 (RFC 8737): the server must answer on port 443.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// Everything the manager needs; every limit explicit, each with its documented default
/// (`docs/acme.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The ACME directory URL (`https://…`; e.g. Let's Encrypt's
    /// `https://acme-v02.api.letsencrypt.org/directory`).
    pub directory_url: String,
    /// Contact URIs for the account (`mailto:…`); may be empty.
    #[serde(default)]
    pub contact: Vec<String>,
    /// The names to obtain certificates for, one certificate each (`mta-sts.<domain>`).
    pub names: Vec<String>,
    /// The challenge type (default TLS-ALPN-01, which needs only port 443).
    #[serde(default = "default_challenge")]
    pub challenge: ChallengeKind,
    /// Where the account and certificates are kept.
    pub storage_dir: PathBuf,
    /// Trust roots for the ACME server's HTTPS (PEM file or directory); `None`: the
    /// platform's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The limits of each request to the ACME server.
    #[serde(default)]
    pub http: HttpLimits,
    /// How long an order may take to be validated, and then to be issued (each; default
    /// 120 s).
    #[serde(default = "default_order_timeout", with = "crate::secs")]
    pub order_timeout: Duration,
    /// The first wait when polling an order (default 1 s), doubled after each poll.
    #[serde(default = "default_poll_delay", with = "crate::secs")]
    pub poll_delay: Duration,
    /// The longest sleep of [`Acme::run`] between checks (default 3 600 s), so that the expiry
    /// alarm is logged again and a changed clock is noticed.
    #[serde(default = "default_check_interval", with = "crate::secs")]
    pub check_interval: Duration,
    /// When to renew and retry ([`mtasts_core::acme`]).
    #[serde(default)]
    pub renewal: RenewalConfig,
}

fn default_challenge() -> ChallengeKind {
    ChallengeKind::TlsAlpn01
}
fn default_order_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_poll_delay() -> Duration {
    Duration::from_secs(1)
}
fn default_check_interval() -> Duration {
    Duration::from_secs(3_600)
}

impl Settings {
    /// Settings with the defaults for everything but the directory, names and storage.
    pub fn new(directory_url: &str, names: &[&str], storage_dir: impl Into<PathBuf>) -> Settings {
        Settings {
            directory_url: directory_url.to_owned(),
            contact: Vec::new(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            challenge: default_challenge(),
            storage_dir: storage_dir.into(),
            ca_file: None,
            http: HttpLimits::default(),
            order_timeout: default_order_timeout(),
            poll_delay: default_poll_delay(),
            check_interval: default_check_interval(),
            renewal: RenewalConfig::default(),
        }
    }

    /// Refuses what cannot work, naming the setting.
    pub fn validate(&self) -> Result<(), AcmeError> {
        let bad = |s: String| Err(AcmeError::Settings(s));
        if !self.directory_url.starts_with("https://") {
            return bad(format!(
                "directory_url {:?}: must be an https:// URL",
                self.directory_url
            ));
        }
        if self.names.is_empty() {
            return bad("names: at least one name is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for n in &self.names {
            if !valid_name(n) {
                return bad(format!(
                    "names: {n:?} is not a lower-case DNS name in A-labels (no wildcard)"
                ));
            }
            if !seen.insert(n) {
                return bad(format!("names: {n} is listed twice"));
            }
        }
        let in_range = |what: &str, d: Duration, min: Duration, max: Duration| {
            if d < min || d > max {
                Err(AcmeError::Settings(format!(
                    "{what}: {} s is outside {}..={} s",
                    d.as_secs(),
                    min.as_secs(),
                    max.as_secs()
                )))
            } else {
                Ok(())
            }
        };
        let s = Duration::from_secs;
        in_range("order_timeout", self.order_timeout, s(5), s(3_600))?;
        in_range("poll_delay", self.poll_delay, s(0), s(60))?;
        in_range("check_interval", self.check_interval, s(1), s(86_400))?;
        in_range(
            "http.connect_timeout",
            self.http.connect_timeout,
            s(1),
            s(300),
        )?;
        in_range(
            "http.request_timeout",
            self.http.request_timeout,
            s(1),
            s(600),
        )?;
        if !(4_096..=64 * 1024 * 1024).contains(&self.http.max_response_bytes) {
            return bad(format!(
                "http.max_response_bytes: {} is outside 4096..=67108864",
                self.http.max_response_bytes
            ));
        }
        if self.renewal.retry_base == 0 || self.renewal.retry_cap < self.renewal.retry_base {
            return bad(
                "renewal: retry_base must be at least 1 s and retry_cap at least retry_base".into(),
            );
        }
        Ok(())
    }
}

/// What [`Acme::ensure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// Nothing: the stored certificate is not due, or a failure's backoff holds the next
    /// attempt back; decide again at `until`.
    Waiting {
        /// When to decide again.
        until: UnixSeconds,
        /// What is pending (`None`: nothing, the certificate is not due).
        reason: Option<Reason>,
    },
    /// A certificate was obtained, stored and is now served.
    Obtained {
        /// Why it was ordered.
        reason: Reason,
        /// Its `notAfter`.
        not_after: UnixSeconds,
    },
}

/// The state of one name, for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertStatus {
    /// The name.
    pub name: String,
    /// The served certificate's validity, if there is one.
    pub lifetime: Option<Lifetime>,
    /// Its expiry state (the alarm), if there is one.
    pub expiry: Option<Expiry>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// What the core decides now.
    pub next: Decision,
}

#[derive(Debug)]
struct NameState {
    lifetime: Option<Lifetime>,
    failures: Failures,
    jitter: u64,
    last_error: Option<String>,
}

/// The manager (hold it in an `Arc`).
pub struct Acme {
    settings: Settings,
    storage: Storage,
    http: AcmeHttp,
    certs: Arc<CertStore>,
    challenges: Arc<ChallengeStore>,
    sink: Arc<dyn ChallengeSink>,
    state: Mutex<HashMap<String, NameState>>,
    account: tokio::sync::Mutex<Option<Account>>,
    /// One order at a time.
    ordering: tokio::sync::Mutex<()>,
    orders: AtomicU64,
    accounts_created: AtomicU64,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("directory", &self.settings.directory_url)
            .field("names", &self.settings.names)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> UnixSeconds {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The validity of the leaf of `key`.
fn lifetime_of(name: &str, key: &rustls::sign::CertifiedKey) -> Result<Lifetime, AcmeError> {
    let leaf = key.cert.first().ok_or_else(|| AcmeError::Certificate {
        name: name.to_owned(),
        detail: "empty chain".into(),
    })?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| AcmeError::Certificate {
            name: name.to_owned(),
            detail: format!("unparsable leaf: {e}"),
        })?;
    let v = cert.validity();
    let secs = |t: i64| u64::try_from(t).unwrap_or(0);
    Ok(Lifetime {
        not_before: secs(v.not_before.timestamp()),
        not_after: secs(v.not_after.timestamp()),
    })
}

fn acme_detail(e: &instant_acme::Error) -> String {
    let mut s = match e {
        instant_acme::Error::Api(p) => {
            let mut s = format!(
                "{} {}",
                p.r#type.as_deref().unwrap_or("problem"),
                p.detail.as_deref().unwrap_or("")
            );
            for sub in &p.subproblems {
                s.push_str(&format!(
                    "; {}: {}",
                    sub.r#type.as_deref().unwrap_or("subproblem"),
                    sub.detail.as_deref().unwrap_or("")
                ));
            }
            s
        }
        other => other.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}

fn account_missing(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p)
        if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:accountDoesNotExist"))
}

impl Acme {
    /// The manager for `settings`, with names resolved through `dns`. Loads every stored
    /// certificate into [`Acme::certs`] (a stored certificate that cannot be used is logged
    /// and counts as missing); touches no network.
    pub fn new(settings: Settings, dns: Arc<dyn DnsLookup>) -> Result<Arc<Acme>, AcmeError> {
        Acme::build(settings, dns, None)
    }

    /// As [`Acme::new`], with the challenges put into `sink` (a server's own challenge maps)
    /// instead of [`Acme::challenges`], which then stays empty.
    pub fn with_challenge_sink(
        settings: Settings,
        dns: Arc<dyn DnsLookup>,
        sink: Arc<dyn ChallengeSink>,
    ) -> Result<Arc<Acme>, AcmeError> {
        Acme::build(settings, dns, Some(sink))
    }

    fn build(
        settings: Settings,
        dns: Arc<dyn DnsLookup>,
        sink: Option<Arc<dyn ChallengeSink>>,
    ) -> Result<Arc<Acme>, AcmeError> {
        settings.validate()?;
        let storage = Storage::open(&settings.storage_dir)?;
        let roots = TrustRoots::from_option(settings.ca_file.as_deref());
        let tls = TlsClient::from_roots(&roots)
            .and_then(|c| c.config(Verification::Enforce, &[b"http/1.1"]))
            .map(|(cfg, _)| cfg)
            .map_err(|e| AcmeError::Settings(format!("ca_file: {e}")))?;
        let http = AcmeHttp::new(dns, tls, settings.http);
        let certs = CertStore::new();
        let mut state = HashMap::new();
        for name in &settings.names {
            let path = storage.cert_path(name);
            let mut lifetime = None;
            if path.exists() {
                match mtasts_net::tls::certified_key(&path, &path)
                    .map_err(|e| AcmeError::Certificate {
                        name: name.clone(),
                        detail: e.to_string(),
                    })
                    .and_then(|k| lifetime_of(name, &k).map(|l| (k, l)))
                {
                    Ok((key, l)) => {
                        certs.put(std::slice::from_ref(name), key, l.not_after);
                        lifetime = Some(l);
                    }
                    Err(e) => tracing::warn!("{e}; a new certificate will be ordered"),
                }
            }
            state.insert(
                name.clone(),
                NameState {
                    lifetime,
                    failures: Failures::default(),
                    jitter: fastrand::u64(0..=settings.renewal.jitter),
                    last_error: None,
                },
            );
        }
        let challenges = ChallengeStore::new();
        let sink = sink.unwrap_or_else(|| Arc::clone(&challenges) as Arc<dyn ChallengeSink>);
        Ok(Arc::new(Acme {
            settings,
            storage,
            http,
            certs,
            challenges,
            sink,
            state: Mutex::new(state),
            account: tokio::sync::Mutex::new(None),
            ordering: tokio::sync::Mutex::new(()),
            orders: AtomicU64::new(0),
            accounts_created: AtomicU64::new(0),
        }))
    }

    /// The certificates served (swapped on renewal).
    pub fn certs(&self) -> Arc<CertStore> {
        Arc::clone(&self.certs)
    }

    /// The challenges in flight, for the HTTP-01 listener and the TLS resolver.
    pub fn challenges(&self) -> Arc<ChallengeStore> {
        Arc::clone(&self.challenges)
    }

    /// A rustls resolver serving [`Acme::certs`] and the TLS-ALPN-01 challenges.
    pub fn resolver(&self) -> Arc<AcmeResolver> {
        Arc::new(AcmeResolver {
            certs: self.certs(),
            challenges: self.challenges(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Orders placed by this manager (successful or not).
    pub fn orders_placed(&self) -> u64 {
        self.orders.load(Ordering::Relaxed)
    }

    /// ACME accounts this manager created (0 when the stored one was used).
    pub fn accounts_created(&self) -> u64 {
        self.accounts_created.load(Ordering::Relaxed)
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, HashMap<String, NameState>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of every name at `now`.
    pub fn status(&self, now: UnixSeconds) -> Vec<CertStatus> {
        let state = self.lock_state();
        self.settings
            .names
            .iter()
            .filter_map(|name| {
                let s = state.get(name)?;
                Some(CertStatus {
                    name: name.clone(),
                    lifetime: s.lifetime,
                    expiry: s
                        .lifetime
                        .map(|l| expiry(now, l.not_after, &self.settings.renewal)),
                    failures: s.failures.count,
                    last_error: s.last_error.clone(),
                    next: decide(
                        now,
                        s.lifetime.as_ref(),
                        &s.failures,
                        &self.settings.renewal,
                        s.jitter,
                    ),
                })
            })
            .collect()
    }

    fn unknown(&self, name: &str) -> AcmeError {
        AcmeError::Settings(format!("{name} is not one of the configured names"))
    }

    /// Obtains a certificate for `name` if the core decides one is wanted now (missing,
    /// expired or due, and no failure's backoff in the way); else says until when nothing is
    /// to be done.
    pub async fn ensure(&self, name: &str) -> Result<Ensured, AcmeError> {
        let now = unix_now();
        let decision = {
            let state = self.lock_state();
            let s = state.get(name).ok_or_else(|| self.unknown(name))?;
            decide(
                now,
                s.lifetime.as_ref(),
                &s.failures,
                &self.settings.renewal,
                s.jitter,
            )
        };
        match decision {
            Decision::Later { at, reason } => Ok(Ensured::Waiting { until: at, reason }),
            Decision::Now { reason } => self.obtain(name, reason).await,
        }
    }

    /// Obtains a new certificate for `name` now, whatever the core would decide (an operator's
    /// forced renewal), and serves it.
    pub async fn renew_now(&self, name: &str) -> Result<Ensured, AcmeError> {
        if !self.lock_state().contains_key(name) {
            return Err(self.unknown(name));
        }
        self.obtain(name, Reason::Due).await
    }

    async fn obtain(&self, name: &str, reason: Reason) -> Result<Ensured, AcmeError> {
        let _one = self.ordering.lock().await;
        tracing::info!(name, ?reason, "ACME: ordering a certificate");
        let result = self.order_and_store(name).await;
        let now = unix_now();
        let mut state = self.lock_state();
        let s = state.get_mut(name).ok_or_else(|| self.unknown(name))?;
        match result {
            Ok(lifetime) => {
                s.lifetime = Some(lifetime);
                s.failures = Failures::default();
                s.last_error = None;
                s.jitter = fastrand::u64(0..=self.settings.renewal.jitter);
                tracing::info!(
                    name,
                    not_after = lifetime.not_after,
                    "ACME: certificate obtained and served"
                );
                Ok(Ensured::Obtained {
                    reason,
                    not_after: lifetime.not_after,
                })
            }
            Err(e) => {
                s.failures = s.failures.failed(now);
                s.last_error = Some(e.to_string());
                tracing::warn!(name, failures = s.failures.count, "{e}");
                Err(e)
            }
        }
    }

    /// The account: the one in memory, else the stored one, else a new one (stored).
    async fn account(&self, fresh: bool) -> Result<Account, AcmeError> {
        let mut slot = self.account.lock().await;
        if !fresh && let Some(a) = slot.as_ref() {
            return Ok(a.clone());
        }
        let dir = &self.settings.directory_url;
        let failed = |detail: String| AcmeError::Account {
            directory: dir.clone(),
            detail,
        };
        let builder = || Account::builder_with_http(Box::new(self.http.clone()));
        if !fresh && let Some(bytes) = self.storage.read_account(dir)? {
            let path = self.storage.account_path(dir);
            let creds: AccountCredentials = serde_json::from_slice(&bytes)
                .map_err(|e| failed(format!("{}: {e}", path.display())))?;
            let account = builder()
                .from_credentials(creds)
                .await
                .map_err(|e| failed(format!("loading {}: {}", path.display(), acme_detail(&e))))?;
            *slot = Some(account.clone());
            return Ok(account);
        }
        let contact: Vec<&str> = self.settings.contact.iter().map(String::as_str).collect();
        let (account, creds) = builder()
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                dir.clone(),
                None,
            )
            .await
            .map_err(|e| failed(format!("creating the account: {}", acme_detail(&e))))?;
        let json = serde_json::to_vec_pretty(&creds)
            .map_err(|e| failed(format!("serializing the account: {e}")))?;
        self.storage.write_account(dir, &json)?;
        self.accounts_created.fetch_add(1, Ordering::Relaxed);
        tracing::info!(directory = %dir, id = account.id(), "ACME: account created");
        *slot = Some(account.clone());
        Ok(account)
    }

    /// One order for `name`: validated, finalized with a fresh key, the chain stored with the
    /// key and served.
    async fn order_and_store(&self, name: &str) -> Result<Lifetime, AcmeError> {
        let step = |step: &'static str| {
            move |detail: String| AcmeError::Order {
                name: name.to_owned(),
                step,
                detail,
            }
        };
        let ids = [Identifier::Dns(name.to_owned())];
        let new_order = NewOrder::new(&ids);
        let mut account = self.account(false).await?;
        self.orders.fetch_add(1, Ordering::Relaxed);
        let mut order = match account.new_order(&new_order).await {
            Ok(o) => o,
            // The server no longer knows the stored account (a test server restarted, an
            // account deactivated elsewhere): a new one, once.
            Err(e) if account_missing(&e) => {
                tracing::warn!(
                    name,
                    "ACME: the stored account is unknown to the server; creating a new one"
                );
                account = self.account(true).await?;
                account
                    .new_order(&new_order)
                    .await
                    .map_err(|e| step("new order")(acme_detail(&e)))?
            }
            Err(e) => return Err(step("new order")(acme_detail(&e))),
        };
        let mut http_tokens = Vec::new();
        let mut alpn_names = Vec::new();
        let result = async {
            let mut authorizations = order.authorizations();
            while let Some(a) = authorizations.next().await {
                let mut a = a.map_err(|e| step("authorization")(acme_detail(&e)))?;
                match a.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => return Err(step("authorization")(format!("status {other:?}"))),
                }
                let kind = match self.settings.challenge {
                    ChallengeKind::Http01 => ChallengeType::Http01,
                    ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
                };
                let mut challenge = a.challenge(kind.clone()).ok_or_else(|| {
                    step("challenge")(format!("the server offers no {kind:?} challenge"))
                })?;
                let key_authorization = challenge.key_authorization();
                match self.settings.challenge {
                    ChallengeKind::Http01 => {
                        self.sink
                            .put_http01(&challenge.token, key_authorization.as_str());
                        http_tokens.push(challenge.token.clone());
                    }
                    ChallengeKind::TlsAlpn01 => {
                        let ident = challenge.identifier().to_string();
                        let key =
                            tls_alpn01_certificate(&ident, key_authorization.digest().as_ref())?;
                        self.sink.put_tls_alpn01(&ident, key);
                        alpn_names.push(ident);
                    }
                }
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| step("challenge")(acme_detail(&e)))?;
            }
            let retry = RetryPolicy::new()
                .initial_delay(self.settings.poll_delay)
                .backoff(2.0)
                .timeout(self.settings.order_timeout);
            let status = order
                .poll_ready(&retry)
                .await
                .map_err(|e| step("validation")(acme_detail(&e)))?;
            if status != OrderStatus::Ready {
                let mut why = format!("the order is {status:?}");
                let mut authorizations = order.authorizations();
                while let Some(Ok(a)) = authorizations.next().await {
                    for c in &a.challenges {
                        if let Some(p) = &c.error {
                            why.push_str(&format!(
                                "; {:?}: {} {}",
                                c.r#type,
                                p.r#type.as_deref().unwrap_or(""),
                                p.detail.as_deref().unwrap_or("")
                            ));
                        }
                    }
                }
                return Err(step("validation")(why));
            }
            let key =
                rcgen::KeyPair::generate().map_err(|e| step("finalize")(format!("key: {e}")))?;
            let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
                .map_err(|e| step("finalize")(format!("CSR: {e}")))?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            let csr = params
                .serialize_request(&key)
                .map_err(|e| step("finalize")(format!("CSR: {e}")))?;
            order
                .finalize_csr(csr.der())
                .await
                .map_err(|e| step("finalize")(acme_detail(&e)))?;
            let chain = order
                .poll_certificate(&retry)
                .await
                .map_err(|e| step("certificate")(acme_detail(&e)))?;
            Ok((key.serialize_pem(), chain))
        }
        .await;
        for t in &http_tokens {
            self.sink.remove_http01(t);
        }
        for n in &alpn_names {
            self.sink.remove_tls_alpn01(n);
        }
        let (key_pem, chain_pem) = result?;
        self.storage.write_cert(name, &key_pem, &chain_pem)?;
        let path = self.storage.cert_path(name);
        let key = mtasts_net::tls::certified_key(&path, &path)
            .map_err(|e| step("store")(e.to_string()))?;
        let lifetime = lifetime_of(name, &key)?;
        self.certs.put(&[name.to_owned()], key, lifetime.not_after);
        Ok(lifetime)
    }

    /// Keeps every name's certificate obtained and renewed until `shutdown` resolves: decides
    /// for each name ([`Acme::ensure`]), logs the expiry alarm, and sleeps until the earliest
    /// next decision (at most [`Settings::check_interval`]).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let mut next = unix_now().saturating_add(self.settings.check_interval.as_secs());
            for name in self.settings.names.clone() {
                match self.ensure(&name).await {
                    Ok(Ensured::Waiting { until, .. }) => next = next.min(until),
                    Ok(Ensured::Obtained { .. }) => {}
                    // Logged in `obtain`; the backoff decides the retry.
                    Err(_) => {}
                }
            }
            let now = unix_now();
            for s in self.status(now) {
                if let Some(e) = s.expiry.filter(Expiry::alarm) {
                    tracing::warn!(
                        name = s.name,
                        expiry = ?e,
                        failures = s.failures,
                        last_error = s.last_error.as_deref().unwrap_or(""),
                        "ACME: the certificate expires within {} days or has expired",
                        self.settings.renewal.alarm_before / 86_400
                    );
                }
                if let Decision::Later { at, .. } = s.next {
                    next = next.min(at);
                }
            }
            let wait = Duration::from_secs(next.saturating_sub(now).max(1));
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
