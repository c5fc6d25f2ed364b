//! The one TLS client setup of mtasts: trust roots (a PEM file, a directory of them, or the
//! platform's store), rustls with the workspace's one crypto provider (ring) and the RFC 8461
//! §7.2 floor of TLS 1.2, and a verifier that either enforces (a sender: a bad certificate
//! aborts the handshake) or records what it saw (the checker: the verdict is kept and judged
//! later, so the policy or the SMTP session behind a bad certificate can still be reported).
//!
//! Errors of the TLS library become the core's [`CertVerdict`] and [`HandshakeFailure`] in one
//! exhaustive match, using the chain's shape to tell a self-signed leaf, an untrusted CA and a
//! missing intermediate apart (WebPKI reports all three as "unknown issuer").

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mtasts_core::tls::{CertVerdict, HandshakeFailure};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, PeerIncompatible, SignatureScheme,
};
use serde::Serialize;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Where trust comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustRoots {
    /// The platform's store (`rustls-native-certs`).
    #[default]
    Platform,
    /// The certificates of a PEM file, or of every `*.pem`/`*.crt` file of a directory.
    Path(PathBuf),
}

impl TrustRoots {
    /// `Path` for `Some`, `Platform` for `None` (the shape of every `--ca-file` option).
    pub fn from_option(path: Option<&Path>) -> TrustRoots {
        path.map_or(TrustRoots::Platform, |p| TrustRoots::Path(p.to_path_buf()))
    }
}

/// Why the trust roots could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    /// The file or directory could not be read.
    #[error("trust roots: cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A PEM block or certificate is malformed.
    #[error("trust roots: {path}: {message}")]
    Bad {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No certificate was found.
    #[error("trust roots: {0} holds no certificate")]
    Empty(String),
    /// The platform's store is empty or unreadable.
    #[error("trust roots: the platform trust store is empty or unreadable; give a CA file")]
    PlatformEmpty,
    /// rustls refused to build a verifier over them.
    #[error("trust roots: cannot build the verifier: {0}")]
    Verifier(String),
}

fn add_pem_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<usize, RootsError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| RootsError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut n = 0;
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: CertificateDer<'static> = cert.map_err(|e| RootsError::Bad {
            path: shown.clone(),
            message: format!("bad PEM: {e}"),
        })?;
        roots.add(cert).map_err(|e| RootsError::Bad {
            path: shown.clone(),
            message: format!("bad certificate: {e}"),
        })?;
        n += 1;
    }
    Ok(n)
}

/// Loads the trust roots.
pub fn load_roots(source: &TrustRoots) -> Result<Arc<rustls::RootCertStore>, RootsError> {
    let mut roots = rustls::RootCertStore::empty();
    match source {
        TrustRoots::Path(path) if path.is_dir() => {
            let shown = path.display().to_string();
            let entries = std::fs::read_dir(path).map_err(|source| RootsError::Read {
                path: shown.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
                .collect();
            files.sort();
            for f in files {
                add_pem_file(&mut roots, &f)?;
            }
            if roots.is_empty() {
                return Err(RootsError::Empty(shown));
            }
        }
        TrustRoots::Path(path) => {
            if add_pem_file(&mut roots, path)? == 0 {
                return Err(RootsError::Empty(path.display().to_string()));
            }
        }
        TrustRoots::Platform => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A platform store may hold certificates rustls cannot use; skip those.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(RootsError::PlatformEmpty);
            }
        }
    }
    Ok(Arc::new(roots))
}

/// What the recording verifier saw during one handshake.
#[derive(Debug, Default)]
pub struct Recorded {
    verdict: Option<Result<(), rustls::Error>>,
    chain: Vec<CertificateDer<'static>>,
}

/// The slot one handshake records into.
pub type Recorder = Arc<Mutex<Recorded>>;

/// Whether a bad certificate aborts the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// A sender: the certificate must be valid for the name, or the handshake fails.
    Enforce,
    /// The checker: the verdict is recorded and the handshake goes on.
    Record,
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    slot: Recorder,
    enforce: bool,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        if let Ok(mut slot) = self.slot.lock() {
            slot.verdict = Some(verdict.clone());
            slot.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        match verdict {
            Err(e) if self.enforce => Err(e),
            // Recording: accepted only so the caller can look further; it judges the verdict.
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Builds client configurations sharing one WebPKI verifier.
#[derive(Clone, Debug)]
pub struct TlsClient {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl TlsClient {
    /// A client trusting `roots`.
    pub fn new(roots: Arc<rustls::RootCertStore>) -> Result<TlsClient, RootsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| RootsError::Verifier(e.to_string()))?;
        Ok(TlsClient { inner, provider })
    }

    /// Loads `source` and builds a client over it.
    pub fn from_roots(source: &TrustRoots) -> Result<TlsClient, RootsError> {
        TlsClient::new(load_roots(source)?)
    }

    /// A configuration for one connection: TLS 1.2 or 1.3 only (§7.2), the given ALPN
    /// protocols, and a verifier that records into a fresh slot (and enforces if asked).
    pub fn config(
        &self,
        verification: Verification,
        alpn: &[&[u8]],
    ) -> Result<(Arc<rustls::ClientConfig>, Recorder), RootsError> {
        let slot = Recorder::default();
        let mut cfg = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| RootsError::Verifier(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
                inner: self.inner.clone(),
                slot: slot.clone(),
                enforce: verification == Verification::Enforce,
            }))
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok((Arc::new(cfg), slot))
    }
}

/// The facts of one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS names (subjectAltName, or the CN when there is none).
    pub names: Vec<String>,
    /// Not valid before (Unix seconds; RFC 3339 in JSON).
    #[serde(serialize_with = "mtasts_core::json::time")]
    pub not_before: i64,
    /// Not valid after (Unix seconds; RFC 3339 in JSON).
    #[serde(serialize_with = "mtasts_core::json::time")]
    pub not_after: i64,
}

/// A completed TLS handshake.
#[derive(Clone, Debug, Serialize)]
pub struct TlsSession {
    /// The protocol version, e.g. `TLSv1.3`.
    pub version: String,
    /// The cipher suite.
    pub cipher: String,
    /// The certificate check against the trust roots and the expected name.
    pub verdict: CertVerdict,
    /// The chain as presented, leaf first.
    pub chain: Vec<CertSummary>,
    /// The chain as presented (DER), leaf first, for DANE matching.
    #[serde(skip)]
    pub chain_der: Vec<CertificateDer<'static>>,
    /// Each certificate's SubjectPublicKeyInfo (DER), in the order of `chain_der` (empty for
    /// one that does not parse), for DANE matching with selector SPKI(1).
    #[serde(skip)]
    pub chain_spki: Vec<Vec<u8>>,
}

impl TlsSession {
    /// The chain as the core's DANE matching takes it ([`mtasts_core::dane::authenticate`]).
    pub fn presented(&self) -> Vec<mtasts_core::dane::PresentedCert<'_>> {
        self.chain_der
            .iter()
            .zip(&self.chain_spki)
            .map(|(cert, spki)| mtasts_core::dane::PresentedCert {
                cert: cert.as_ref(),
                spki,
            })
            .collect()
    }
}

/// The SubjectPublicKeyInfo (DER) of a DER certificate, or `None` when it does not parse.
pub fn spki(der: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    Some(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// The session facts after a completed handshake with `expected` as the server name.
pub fn session(conn: &rustls::ClientConnection, slot: &Recorder, expected: &str) -> TlsSession {
    let version = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .replace("TLSv1_", "TLSv1.");
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|c| c.suite().as_str())
        .unwrap_or("unknown")
        .to_owned();
    let (verdict, chain_der) = match slot.lock() {
        Ok(rec) => (rec.verdict.clone(), rec.chain.clone()),
        Err(_) => (None, Vec::new()),
    };
    let chain: Vec<CertSummary> = chain_der.iter().filter_map(summarize).collect();
    let verdict = match verdict {
        Some(Ok(())) => CertVerdict::Valid,
        Some(Err(e)) => cert_verdict(&e, &chain, expected),
        None => CertVerdict::Invalid {
            reason: "no certificate was verified".into(),
        },
    };
    let chain_spki = chain_der
        .iter()
        .map(|c| spki(c).unwrap_or_default())
        .collect();
    TlsSession {
        version,
        cipher,
        verdict,
        chain,
        chain_der,
        chain_spki,
    }
}

/// The facts of one DER certificate, or `None` when it does not parse.
pub fn summarize(der: &CertificateDer<'_>) -> Option<CertSummary> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push((*d).to_owned());
            }
        }
    }
    if names.is_empty()
        && let Some(cn) = cert.subject().iter_common_name().next()
        && let Ok(cn) = cn.as_str()
    {
        names.push(cn.to_owned());
    }
    Some(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// A verifier error as what a domain owner can act on.
pub fn cert_verdict(e: &rustls::Error, chain: &[CertSummary], expected: &str) -> CertVerdict {
    let leaf = chain.first();
    let rustls::Error::InvalidCertificate(ce) = e else {
        return CertVerdict::Invalid {
            reason: e.to_string(),
        };
    };
    match ce {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            CertVerdict::Expired {
                not_after: leaf.map_or(0, |l| l.not_after),
            }
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            CertVerdict::NotYetValid {
                not_before: leaf.map_or(0, |l| l.not_before),
            }
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            CertVerdict::NameMismatch {
                expected: expected.to_owned(),
                presented: leaf.map(|l| l.names.clone()).unwrap_or_default(),
            }
        }
        CertificateError::UnknownIssuer => match leaf {
            Some(l) if l.subject == l.issuer && chain.len() == 1 => CertVerdict::SelfSigned,
            Some(l) if chain.len() == 1 => CertVerdict::ChainIncomplete {
                issuer: l.issuer.clone(),
            },
            Some(_) => CertVerdict::UntrustedCa {
                issuer: chain
                    .last()
                    .map(|c| {
                        if c.subject == c.issuer {
                            c.subject.clone()
                        } else {
                            c.issuer.clone()
                        }
                    })
                    .unwrap_or_default(),
            },
            None => CertVerdict::Invalid {
                reason: "no certificate".into(),
            },
        },
        other => CertVerdict::Invalid {
            reason: format!("{other:?}"),
        },
    }
}

/// A failed handshake (the `io::Error` tokio-rustls returns) as the core's
/// [`HandshakeFailure`], using what the recorder saw for a certificate an enforcing verifier
/// refused. The TLS error is read from the `io::Error`'s inner value, never from its text.
pub fn handshake_failure(e: &std::io::Error, slot: &Recorder, expected: &str) -> HandshakeFailure {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(_)) => {
            let (verdict, chain) = match slot.lock() {
                Ok(rec) => (rec.verdict.clone(), rec.chain.clone()),
                Err(_) => (None, Vec::new()),
            };
            let summaries: Vec<CertSummary> = chain.iter().filter_map(summarize).collect();
            let verdict = match (verdict, tls) {
                (Some(Err(err)), _) => cert_verdict(&err, &summaries, expected),
                (_, Some(err)) => cert_verdict(err, &summaries, expected),
                _ => CertVerdict::Invalid {
                    reason: e.to_string(),
                },
            };
            HandshakeFailure::Certificate { verdict }
        }
        Some(
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
            | rustls::Error::PeerIncompatible(
                PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                | PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled,
            ),
        ) => HandshakeFailure::VersionTooOld,
        Some(other) => HandshakeFailure::Protocol {
            detail: other.to_string(),
        },
        None => HandshakeFailure::Io {
            detail: e.to_string(),
        },
    }
}

/// Why a server's certificate chain and key could not be loaded ([`server_config`]).
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    /// A file could not be read.
    #[error("TLS server: cannot read {what} {path}: {source}")]
    Read {
        /// `certificate chain` or `private key`.
        what: &'static str,
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_PEM_FILE_BYTES`].
    #[error("TLS server: {what} {path} is larger than {limit} bytes; is it the right file?")]
    TooLarge {
        /// `certificate chain` or `private key`.
        what: &'static str,
        /// The path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The certificate file holds a malformed PEM block, or no certificate.
    #[error("TLS server: certificate chain {path}: {message}")]
    Chain {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key file holds no usable private key (PKCS#8, PKCS#1 or SEC1, in PEM).
    #[error("TLS server: private key {path}: {message}")]
    Key {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (a key of an unsupported type, or a key that does not belong to
    /// the leaf certificate).
    #[error("TLS server: certificate {chain} with key {key}: {message}")]
    Refused {
        /// The certificate chain's path.
        chain: String,
        /// The key's path.
        key: String,
        /// rustls's reason.
        message: String,
    },
}

/// The largest certificate-chain or key file [`server_config`] reads: 1 MiB (a chain of a few
/// certificates is a few KiB).
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

fn read_pem_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ServerTlsError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let read_err = |source| ServerTlsError::Read {
        what,
        path: shown.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(ServerTlsError::TooLarge {
            what,
            path: shown,
            limit: MAX_PEM_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// The certificate chain (leaf first) and private key of PEM files, read within
/// [`MAX_PEM_FILE_BYTES`] each.
pub fn read_chain_and_key(
    chain_path: &Path,
    key_path: &Path,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    ServerTlsError,
> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;

    let chain_shown = chain_path.display().to_string();
    let key_shown = key_path.display().to_string();
    let pem = read_pem_file("certificate chain", chain_path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerTlsError::Chain {
            path: chain_shown.clone(),
            message: format!("bad PEM: {e}"),
        })?;
    if chain.is_empty() {
        return Err(ServerTlsError::Chain {
            path: chain_shown,
            message: "no CERTIFICATE block".to_owned(),
        });
    }
    let pem = read_pem_file("private key", key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| ServerTlsError::Key {
        path: key_shown.clone(),
        message: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block".to_owned()
            }
            other => format!("bad PEM: {other}"),
        },
    })?;
    Ok((chain, key))
}

/// A certificate chain and its key from PEM files, ready to be served (for a certificate
/// resolver that picks one by name, [`server_config_with_resolver`]): the key is loaded with
/// ring and must belong to the leaf.
pub fn certified_key(
    chain_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::sign::CertifiedKey>, ServerTlsError> {
    let (chain, key) = read_chain_and_key(chain_path, key_path)?;
    certified_key_from_der(
        chain,
        key,
        &chain_path.display().to_string(),
        &key_path.display().to_string(),
    )
}

/// A certificate chain (leaf first) and its key, already in DER, ready to be served: the key
/// is loaded with ring and must belong to the leaf. `chain_name` and `key_name` say in an
/// error where they came from (paths, or e.g. `TLS-ALPN-01 challenge for NAME`).
pub fn certified_key_from_der(
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    chain_name: &str,
    key_name: &str,
) -> Result<Arc<rustls::sign::CertifiedKey>, ServerTlsError> {
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map(Arc::new)
        .map_err(|e| ServerTlsError::Refused {
            chain: chain_name.to_owned(),
            key: key_name.to_owned(),
            message: e.to_string(),
        })
}

/// Like [`certified_key_from_der`], without the check that the key belongs to the leaf: that
/// check parses the leaf with webpki, which refuses a certificate with a critical extension
/// it does not know, such as the `acmeIdentifier` of an RFC 8737 TLS-ALPN-01 challenge
/// certificate. Only for a certificate the caller has just made with this key.
pub fn certified_key_unchecked(
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    name: &str,
) -> Result<Arc<rustls::sign::CertifiedKey>, ServerTlsError> {
    let provider = rustls::crypto::ring::default_provider();
    let signing =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| ServerTlsError::Refused {
                chain: name.to_owned(),
                key: name.to_owned(),
                message: e.to_string(),
            })?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(chain, signing)))
}

/// What every mtasts TLS server configuration starts from: rustls with ring, TLS 1.2 and 1.3
/// only (the same floor as every client, RFC 8461 §7.2), no client certificates.
fn server_builder() -> Result<
    rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>,
    rustls::Error,
> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth())
}

/// A TLS server configuration whose certificate is chosen for each handshake by `resolver`
/// (by SNI, as `mtasts serve` does, so certificates can change while it runs); otherwise as
/// [`server_config`].
pub fn server_config_with_resolver(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, ServerTlsError> {
    let mut cfg = server_builder()
        .map_err(|e| ServerTlsError::Refused {
            chain: String::new(),
            key: String::new(),
            message: e.to_string(),
        })?
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A TLS server configuration from PEM files: the certificate chain (leaf first, then the
/// intermediates) and its private key; rustls with ring, TLS 1.2 and 1.3 only (the same floor
/// as every client, RFC 8461 §7.2), no client certificates, and the given ALPN protocols in
/// order of preference (`[b"h2", b"http/1.1"]` for a server speaking both; empty for none).
pub fn server_config(
    chain_path: &Path,
    key_path: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, ServerTlsError> {
    let (chain, key) = read_chain_and_key(chain_path, key_path)?;
    let refused = |e: rustls::Error| ServerTlsError::Refused {
        chain: chain_path.display().to_string(),
        key: key_path.display().to_string(),
        message: e.to_string(),
    };
    let mut cfg = server_builder()
        .map_err(refused)?
        .with_single_cert(chain, key)
        .map_err(refused)?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}
