//! Certificates of the policy host, and the hooks by which ACME plugs in.
//!
//! The server picks a certificate for each TLS handshake by the name the client asks for
//! (SNI), in this order:
//!
//! 1. a TLS-ALPN-01 validation (RFC 8737): the client offers only the ALPN protocol
//!    `acme-tls/1` ([`ACME_TLS_ALPN`]); it gets the challenge certificate for its SNI from
//!    [`AlpnChallenges`], or no certificate (the handshake fails) when there is none. The
//!    server closes such a connection right after the handshake (RFC 8737 §3).
//! 2. the certificates from PEM files ([`FileCerts`], the `[[certificates.files]]` of the
//!    configuration), by exact name, then by a `*.` wildcard one label up;
//! 3. the plugged-in [`CertSource`] (an ACME client), if any.
//!
//! HTTP-01 (RFC 8555 §8.3) is answered on the plain-HTTP listeners (`http_listen`) from
//! [`Http01Tokens`]: `GET /.well-known/acme-challenge/<token>` gives the key authorisation,
//! `text/plain`; any other request there is 404.
//!
//! An ACME client builds an [`AcmeHooks`], keeps clones of its maps (they are shared: an
//! insert is seen by the server at once), and hands it to [`crate::server::Server::start`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use rustls::sign::CertifiedKey;

/// The ALPN protocol of a TLS-ALPN-01 validation (RFC 8737 §6.2), the path prefix of HTTP-01
/// challenges (RFC 8555 §8.3), and somewhere certificates come from by server name (the hook
/// an ACME client implements; `mtasts_acme::CertStore` does): one definition, the ACME
/// crate's.
pub use mtasts_acme::{ACME_TLS_ALPN, CertSource, HTTP01_PREFIX};

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// HTTP-01 tokens and their key authorisations (RFC 8555 §8.3), shared between the ACME
/// client (which inserts and removes) and the server (which answers). Clones share the map.
#[derive(Clone, Debug, Default)]
pub struct Http01Tokens(Arc<RwLock<HashMap<String, String>>>);

impl Http01Tokens {
    /// Answers `GET /.well-known/acme-challenge/<token>` with `key_authorization`.
    pub fn insert(&self, token: &str, key_authorization: &str) {
        write(&self.0).insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Stops answering for `token`.
    pub fn remove(&self, token: &str) {
        write(&self.0).remove(token);
    }

    /// The key authorisation for `token`.
    pub fn get(&self, token: &str) -> Option<String> {
        read(&self.0).get(token).cloned()
    }
}

/// TLS-ALPN-01 challenge certificates by name (RFC 8737 §3: the self-signed certificate with
/// the `acmeIdentifier` extension), shared between the ACME client and the server. Clones
/// share the map.
#[derive(Clone, Debug, Default)]
pub struct AlpnChallenges(Arc<RwLock<HashMap<String, Arc<CertifiedKey>>>>);

impl AlpnChallenges {
    /// Presents `key` to `acme-tls/1` handshakes for `name` (lower case).
    pub fn insert(&self, name: &str, key: Arc<CertifiedKey>) {
        write(&self.0).insert(name.to_ascii_lowercase(), key);
    }

    /// Stops presenting a challenge certificate for `name`.
    pub fn remove(&self, name: &str) {
        write(&self.0).remove(&name.to_ascii_lowercase());
    }

    /// The challenge certificate for `name`.
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        read(&self.0).get(name).cloned()
    }
}

/// Everything an ACME client plugs into the server.
#[derive(Clone, Debug, Default)]
pub struct AcmeHooks {
    /// Certificates it obtained (asked after the configured files).
    pub certs: Option<Arc<dyn CertSource>>,
    /// HTTP-01 answers (served on `http_listen`).
    pub http01: Http01Tokens,
    /// TLS-ALPN-01 certificates (served on the HTTPS listeners).
    pub tls_alpn01: AlpnChallenges,
}

/// The ACME manager puts its challenges straight into the server's maps.
impl mtasts_acme::ChallengeSink for AcmeHooks {
    fn put_http01(&self, token: &str, key_authorization: &str) {
        self.http01.insert(token, key_authorization);
    }

    fn remove_http01(&self, token: &str) {
        self.http01.remove(token);
    }

    fn put_tls_alpn01(&self, name: &str, key: Arc<CertifiedKey>) {
        self.tls_alpn01.insert(name, key);
    }

    fn remove_tls_alpn01(&self, name: &str) {
        self.tls_alpn01.remove(name);
    }
}

/// One certificate loaded from files.
#[derive(Clone, Debug)]
pub struct LoadedCert {
    /// The chain file.
    pub chain: String,
    /// The names of its leaf (subjectAltName DNS names, lower case).
    pub names: Vec<String>,
    /// The leaf's `notAfter`, Unix seconds.
    pub not_after: i64,
    /// The key and chain.
    pub key: Arc<CertifiedKey>,
}

/// The certificates from PEM files, by name.
#[derive(Clone, Debug, Default)]
pub struct FileCerts {
    /// Each certificate, in configuration order.
    pub certs: Vec<LoadedCert>,
    by_name: HashMap<String, usize>,
}

impl FileCerts {
    /// Loads every chain and key (through the one TLS loader of `mtasts-net`); the first
    /// error names the file.
    pub fn load(files: &[crate::config::CertFiles]) -> Result<FileCerts, String> {
        let mut out = FileCerts::default();
        for f in files {
            let key =
                mtasts_net::tls::certified_key(&f.chain, &f.key).map_err(|e| e.to_string())?;
            let leaf = key
                .cert
                .first()
                .ok_or_else(|| format!("{}: no certificate in the chain", f.chain.display()))?;
            let summary = mtasts_net::tls::summarize(leaf).ok_or_else(|| {
                format!("{}: the leaf certificate does not parse", f.chain.display())
            })?;
            let names: Vec<String> = summary
                .names
                .iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            if names.is_empty() {
                return Err(format!(
                    "{}: the leaf certificate names no DNS name",
                    f.chain.display()
                ));
            }
            let i = out.certs.len();
            for n in &names {
                // The first file naming a name serves it.
                out.by_name.entry(n.clone()).or_insert(i);
            }
            out.certs.push(LoadedCert {
                chain: f.chain.display().to_string(),
                names,
                not_after: summary.not_after,
                key,
            });
        }
        Ok(out)
    }

    /// The certificate for `sni`: exact, then `*.` + the parent.
    pub fn get(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let i = self.by_name.get(sni).or_else(|| {
            let (_, parent) = sni.split_once('.')?;
            self.by_name.get(&format!("*.{parent}"))
        })?;
        self.certs.get(*i).map(|c| Arc::clone(&c.key))
    }

    /// Whether some certificate covers `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The server's certificate resolver: the order of the module's documentation. The file
/// certificates are swapped by a reload ([`Resolver::set_files`]); handshakes in progress
/// keep the ones they started with.
#[derive(Debug)]
pub struct Resolver {
    files: RwLock<Arc<FileCerts>>,
    hooks: AcmeHooks,
}

impl Resolver {
    /// A resolver over `files` and the ACME hooks.
    pub fn new(files: Arc<FileCerts>, hooks: AcmeHooks) -> Resolver {
        Resolver {
            files: RwLock::new(files),
            hooks,
        }
    }

    /// Serves `files` from the next handshake on.
    pub fn set_files(&self, files: Arc<FileCerts>) {
        *write(&self.files) = files;
    }

    /// The file certificates served now.
    pub fn files(&self) -> Arc<FileCerts> {
        Arc::clone(&read(&self.files))
    }

    /// The plugged-in source, if any.
    pub fn source(&self) -> Option<&Arc<dyn CertSource>> {
        self.hooks.certs.as_ref()
    }

    /// The certificate for a handshake asking for `sni` with the ALPN protocols `alpn`.
    pub fn pick(&self, sni: Option<&str>, alpn: &[&[u8]]) -> Option<Arc<CertifiedKey>> {
        let sni = sni?.trim_end_matches('.').to_ascii_lowercase();
        if alpn.contains(&ACME_TLS_ALPN) {
            // RFC 8737 §3: only the challenge certificate answers an `acme-tls/1` handshake.
            return self.hooks.tls_alpn01.get(&sni);
        }
        read(&self.files)
            .get(&sni)
            .or_else(|| self.hooks.certs.as_ref()?.certificate(&sni))
    }
}

impl rustls::server::ResolvesServerCert for Resolver {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let alpn: Vec<&[u8]> = hello.alpn().map(|a| a.collect()).unwrap_or_default();
        self.pick(hello.server_name(), &alpn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_maps_are_shared_by_clones() {
        let t = Http01Tokens::default();
        let server_side = t.clone();
        t.insert("tok", "tok.thumb");
        assert_eq!(server_side.get("tok").as_deref(), Some("tok.thumb"));
        t.remove("tok");
        assert_eq!(server_side.get("tok"), None);
    }
}
