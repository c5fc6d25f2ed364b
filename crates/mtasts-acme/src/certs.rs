//! The certificates being served, by name, swapped whole on renewal: a handshake after the
//! swap gets the new certificate, one in progress keeps the `Arc` it took, and nothing is
//! restarted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::challenge::{ACME_TLS_ALPN, ChallengeStore};

/// What a TLS server asks for a certificate: the one for an SNI name. `mtasts serve` asks one
/// such source (this crate's [`CertStore`]) after its certificates from files.
///
/// `certificate` is called during TLS handshakes, so it must not block: answer from memory
/// (swap in a renewed certificate and later handshakes get it, without a restart).
pub trait CertSource: Send + Sync + std::fmt::Debug {
    /// The certificate for `server_name` (lower case, no trailing dot), if there is one.
    fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>>;

    /// Each name served and the `notAfter` of its certificate (Unix seconds), for an expiry
    /// metric and warning. By default, none.
    fn expiries(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// The certificates obtained through ACME, by DNS name (every subjectAltName of a certificate
/// maps to it).
#[derive(Default)]
pub struct CertStore {
    by_name: RwLock<HashMap<String, (Arc<CertifiedKey>, u64)>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("names", &self.names())
            .finish()
    }
}

impl CertStore {
    /// An empty store.
    pub fn new() -> Arc<CertStore> {
        Arc::new(CertStore::default())
    }

    /// The certificate for `name`.
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .map(|(k, _)| Arc::clone(k))
    }

    /// Each name and the `notAfter` (Unix seconds) of its certificate, sorted by name: for
    /// the expiry metric.
    pub fn expiries(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, (_, not_after))| (n.clone(), *not_after))
            .collect();
        v.sort();
        v
    }

    /// The names that have a certificate, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Serves `key` (valid until `not_after`, Unix seconds) for each of `names` from now on
    /// (the swap).
    pub fn put(&self, names: &[String], key: Arc<CertifiedKey>, not_after: u64) {
        let mut map = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        for n in names {
            map.insert(n.to_ascii_lowercase(), (Arc::clone(&key), not_after));
        }
    }
}

impl CertSource for CertStore {
    fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        self.get(server_name)
    }

    fn expiries(&self) -> Vec<(String, u64)> {
        CertStore::expiries(self)
    }
}

/// A rustls certificate resolver for a server that obtains its certificates through ACME: a
/// handshake offering the ALPN protocol `acme-tls/1` is a TLS-ALPN-01 validation and gets the
/// challenge certificate for its SNI (RFC 8737 §3; none when no challenge is in flight, so
/// the handshake fails); any other gets the certificate of `certs` for its SNI. The server's
/// ALPN list must include [`ACME_TLS_ALPN`] for the validation to succeed.
#[derive(Debug, Clone)]
pub struct AcmeResolver {
    /// The certificates served.
    pub certs: Arc<dyn CertSource>,
    /// The challenges in flight.
    pub challenges: Arc<ChallengeStore>,
}

impl ResolvesServerCert for AcmeResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_owned();
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            self.challenges.tls_alpn01(&name)
        } else {
            self.certs.certificate(&name)
        }
    }
}
