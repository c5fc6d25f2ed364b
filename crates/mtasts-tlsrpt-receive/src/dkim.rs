//! DKIM verification of mailed reports (RFC 8460 §3), at the edge: mail-auth does the
//! cryptography and canonicalisation; the keys come from mtasts' one DNS client
//! ([`mtasts_net::dns::DnsLookup`]), so `--dns` and the lab apply; what the results mean is
//! decided by the core ([`mtasts_core::tlsrpt::dkim::judge`]).
//!
//! mail-auth is given every key through its cache interface before it verifies, and its own
//! resolver has no name servers: it never makes a query of its own.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::DkimError;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use mtasts_core::dns::DnsErrorKind;
use mtasts_core::tlsrpt::dkim::{KeyServices, SignatureCheck, SignatureResult, key_services};
use mtasts_net::dns::DnsLookup;

/// The keys fetched for one message, by `selector._domainkey.domain.` (lower case).
#[derive(Default)]
struct Keys(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for Keys {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.get(name).cloned()
    }
    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.remove(name)
    }
    fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, value);
        }
    }
}

/// mail-auth's verifier, on a resolver without name servers (every key is in the cache).
fn authenticator() -> Option<&'static MessageAuthenticator> {
    static AUTH: OnceLock<Option<MessageAuthenticator>> = OnceLock::new();
    AUTH.get_or_init(|| {
        let mut opts = ResolverOpts::default();
        opts.attempts = 0;
        opts.cache_size = 0;
        MessageAuthenticator::new(ResolverConfig::from_name_servers(Vec::new()), opts).ok()
    })
    .as_ref()
}

/// The DKIM key at `name`, as mail-auth's cache holds it, and its service types.
async fn fetch_key(dns: &dyn DnsLookup, name: &str) -> (Txt, Option<KeyServices>) {
    match dns.txt(name).await {
        Ok(answer) => {
            // As a verifier does: the first record that is a key (RFC 6376 §3.6.2.2).
            for record in &answer.records {
                let text: Vec<u8> = record.concat();
                if let Ok(key) = DomainKey::parse(&text) {
                    return (Txt::DomainKey(Arc::new(key)), Some(key_services(&text)));
                }
            }
            (
                Txt::Error(mail_auth::Error::Dns(
                    mail_auth::DnsError::InvalidRecordType,
                )),
                None,
            )
        }
        Err(e) => {
            let err = match e.kind {
                DnsErrorKind::NxDomain => {
                    mail_auth::DnsError::RecordNotFound(ResponseCode::NXDomain)
                }
                DnsErrorKind::NoData => mail_auth::DnsError::RecordNotFound(ResponseCode::NoError),
                _ => mail_auth::DnsError::Resolver(e.to_string()),
            };
            (Txt::Error(mail_auth::Error::Dns(err)), None)
        }
    }
}

fn result_of(r: &DkimResult) -> (SignatureResult, bool) {
    let text = |e: &mail_auth::Error| e.to_string();
    match r {
        DkimResult::Pass => (SignatureResult::Pass, false),
        // mail-auth reports a signature with l= (strict parsing) as neutral.
        DkimResult::Neutral(mail_auth::Error::Dkim(DkimError::SignatureLength)) => (
            SignatureResult::PermError {
                reason: "the signature uses l=".into(),
            },
            true,
        ),
        DkimResult::Fail(e) | DkimResult::Neutral(e) => {
            (SignatureResult::Fail { reason: text(e) }, false)
        }
        DkimResult::PermError(e) => (SignatureResult::PermError { reason: text(e) }, false),
        DkimResult::TempError(e) => (SignatureResult::TempError { reason: text(e) }, false),
        DkimResult::None => (
            SignatureResult::PermError {
                reason: "no result".into(),
            },
            false,
        ),
    }
}

/// Checks every DKIM signature of `message`, fetching each key with `dns`. An empty list:
/// the message has no signature (or is not a message).
pub async fn check_signatures(message: &[u8], dns: &dyn DnsLookup) -> Vec<SignatureCheck> {
    let Some(msg) = AuthenticatedMessage::parse(message) else {
        return Vec::new();
    };
    let keys = Keys::default();
    let mut services: HashMap<String, Option<KeyServices>> = HashMap::new();
    for h in &msg.dkim_headers {
        let sig = &h.header;
        let name = format!("{}._domainkey.{}", sig.s, sig.d).to_ascii_lowercase();
        if services.contains_key(&name) {
            continue;
        }
        let (txt, svc) = fetch_key(dns, &name).await;
        keys.insert(
            format!("{name}.").into_boxed_str(),
            txt,
            std::time::Instant::now(),
        );
        services.insert(name, svc);
    }
    let Some(auth) = authenticator() else {
        return vec![SignatureCheck {
            domain: None,
            selector: None,
            result: SignatureResult::TempError {
                reason: "the DKIM verifier could not be set up".into(),
            },
            length_limited: false,
            services: None,
        }];
    };
    let outputs = auth
        .verify_dkim(Parameters::new(&msg).with_txt_cache(&keys))
        .await;
    outputs
        .iter()
        .map(|out| {
            let (result, length_limited) = result_of(out.result());
            let sig = out.signature();
            let domain = sig.map(|s| s.d.to_ascii_lowercase());
            let selector = sig.map(|s| s.s.clone());
            let services = match (&domain, &selector) {
                (Some(d), Some(s)) => services
                    .get(&format!("{s}._domainkey.{d}").to_ascii_lowercase())
                    .cloned()
                    .flatten(),
                _ => None,
            };
            SignatureCheck {
                domain,
                selector,
                result,
                length_limited: length_limited || sig.is_some_and(|s| s.l > 0),
                services,
            }
        })
        .collect()
}
