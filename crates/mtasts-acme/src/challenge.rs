//! The challenges in flight, for the server to answer while the ACME server validates:
//!
//! - HTTP-01 (RFC 8555 §8.3): `GET http://NAME/.well-known/acme-challenge/TOKEN` on port 80
//!   answers the key authorization, `text/plain` (or `application/octet-stream`); see
//!   [`ChallengeStore::http01_for_path`].
//! - TLS-ALPN-01 (RFC 8737 §3): a TLS handshake on port 443 with SNI `NAME` offering only the
//!   ALPN protocol `acme-tls/1` gets a self-signed certificate for `NAME` carrying the critical
//!   `acmeIdentifier` extension (the SHA-256 of the key authorization); the server negotiates
//!   `acme-tls/1` and sends no application data ([`mtasts_net::http_server`] closes such a
//!   connection after the handshake). See [`ChallengeStore::tls_alpn01`] and
//!   [`crate::AcmeResolver`].
//!
//! Entries live only while their order is validated, then are removed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::sign::CertifiedKey;

use crate::AcmeError;

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2), to add to the server's ALPN list.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The path prefix of HTTP-01 (RFC 8555 §8.3).
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The challenges in flight; shared (through `Arc`) by the ACME client and the server.
#[derive(Default)]
pub struct ChallengeStore {
    http01: RwLock<HashMap<String, String>>,
    tls_alpn01: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for ChallengeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeStore")
            .field("http01", &read(&self.http01).len())
            .field("tls_alpn01", &read(&self.tls_alpn01).len())
            .finish()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl ChallengeStore {
    /// An empty store.
    pub fn new() -> Arc<ChallengeStore> {
        Arc::new(ChallengeStore::default())
    }

    /// The key authorization of the HTTP-01 challenge `token`, if one is in flight.
    pub fn http01(&self, token: &str) -> Option<String> {
        read(&self.http01).get(token).cloned()
    }

    /// The HTTP-01 answer for a request path (`/.well-known/acme-challenge/TOKEN`): the key
    /// authorization, to send with status 200; `None` (answer 404) for any other path or an
    /// unknown token.
    pub fn http01_for_path(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        // RFC 8555 §8.1: tokens are base64url; nothing else is looked up.
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        self.http01(token)
    }

    /// The TLS-ALPN-01 certificate for `server_name` (SNI), if a challenge is in flight.
    pub fn tls_alpn01(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        read(&self.tls_alpn01)
            .get(&server_name.to_ascii_lowercase())
            .cloned()
    }

    /// How many challenges are in flight (both kinds).
    pub fn len(&self) -> usize {
        read(&self.http01).len() + read(&self.tls_alpn01).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the manager puts the challenges it answers while a validation runs, and removes
/// them afterwards: [`ChallengeStore`], or a server's own maps (`mtasts serve` implements it
/// for its ACME hooks; see [`crate::Acme::with_challenge_sink`]). Called from the ACME task,
/// never during a handshake.
pub trait ChallengeSink: Send + Sync + std::fmt::Debug {
    /// Answer `GET /.well-known/acme-challenge/<token>` with `key_authorization`.
    fn put_http01(&self, token: &str, key_authorization: &str);
    /// Stop answering for `token`.
    fn remove_http01(&self, token: &str);
    /// Present `key` to `acme-tls/1` handshakes for `name`.
    fn put_tls_alpn01(&self, name: &str, key: Arc<CertifiedKey>);
    /// Stop presenting a challenge certificate for `name`.
    fn remove_tls_alpn01(&self, name: &str);
}

impl ChallengeSink for ChallengeStore {
    fn put_http01(&self, token: &str, key_authorization: &str) {
        write(&self.http01).insert(token.to_owned(), key_authorization.to_owned());
    }

    fn remove_http01(&self, token: &str) {
        write(&self.http01).remove(token);
    }

    fn put_tls_alpn01(&self, name: &str, key: Arc<CertifiedKey>) {
        write(&self.tls_alpn01).insert(name.to_ascii_lowercase(), key);
    }

    fn remove_tls_alpn01(&self, name: &str) {
        write(&self.tls_alpn01).remove(&name.to_ascii_lowercase());
    }
}

/// The TLS-ALPN-01 challenge certificate for `name` (RFC 8737 §3): self-signed with a fresh
/// P-256 key, `name` its only subjectAltName, and the critical `acmeIdentifier` extension
/// holding `digest`, the SHA-256 of the key authorization.
pub fn tls_alpn01_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    let failed = |detail: String| AcmeError::Challenge {
        name: name.to_owned(),
        detail,
    };
    if digest.len() != 32 {
        return Err(failed(format!(
            "the key authorization digest has {} bytes, not 32",
            digest.len()
        )));
    }
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| failed(format!("certificate parameters: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let key = rcgen::KeyPair::generate().map_err(|e| failed(format!("key: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| failed(format!("self-signing: {e}")))?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let what = format!("TLS-ALPN-01 challenge certificate for {name}");
    // The unchecked loader: webpki refuses the critical acmeIdentifier extension.
    mtasts_net::tls::certified_key_unchecked(vec![cert.der().clone()], key_der, &what)
        .map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc8737_s3_challenge_certificate_has_the_name_and_a_critical_acme_identifier() {
        let digest = [7u8; 32];
        let ck = tls_alpn01_certificate("mta-sts.example.com", &digest).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(ck.cert[0].as_ref()).unwrap();
        let names: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, vec!["DNSName(mta-sts.example.com)".to_owned()]);
        // id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31, critical, an OCTET STRING of the digest.
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("the acmeIdentifier extension");
        assert!(ext.critical);
        let mut want = vec![0x04, 32];
        want.extend_from_slice(&digest);
        assert_eq!(ext.value, want.as_slice());
    }

    #[test]
    fn rfc8737_s3_digest_of_another_length_refused() {
        assert!(tls_alpn01_certificate("mta-sts.example.com", &[1u8; 20]).is_err());
    }

    #[test]
    fn rfc8555_s8_3_http01_answered_only_for_a_known_token_under_the_challenge_path() {
        let s = ChallengeStore::new();
        s.put_http01("tok-EN_1", "tok-EN_1.thumb");
        let cases = [
            (
                "/.well-known/acme-challenge/tok-EN_1",
                Some("tok-EN_1.thumb"),
            ),
            ("/.well-known/acme-challenge/other", None),
            ("/.well-known/acme-challenge/", None),
            ("/.well-known/acme-challenge/../tok-EN_1", None),
            ("/.well-known/acme-challenge/tok-EN_1/", None),
            ("/.well-known/mta-sts.txt", None),
        ];
        for (path, want) in cases {
            assert_eq!(s.http01_for_path(path).as_deref(), want, "{path}");
        }
        s.remove_http01("tok-EN_1");
        assert_eq!(
            s.http01_for_path("/.well-known/acme-challenge/tok-EN_1"),
            None
        );
        assert!(s.is_empty());
    }
}
