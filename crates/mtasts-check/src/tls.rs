//! TLS for the probes: rustls (ring), TLS 1.2 or later (RFC 8461 §7.2), and a verifier that
//! records the verdict of the real WebPKI verifier instead of aborting, so that the checker can
//! report *what* is wrong with a certificate (and still see the policy or the SMTP session
//! behind it). Senders must refuse such a certificate; the checker judges that in `assess`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::obs::{CertSummary, CertVerdict, TlsSession};

/// Why the trust roots could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("trust roots: {0}")]
pub struct RootsError(String);

/// The trust roots: a PEM file, or the platform's store.
pub fn load_roots(ca_file: Option<&Path>) -> Result<Arc<rustls::RootCertStore>, RootsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| RootsError(format!("cannot read {}: {e}", path.display())))?;
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: CertificateDer<'static> =
                    cert.map_err(|e| RootsError(format!("{}: bad PEM: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| RootsError(format!("{}: bad certificate: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(RootsError(format!(
                    "{} holds no certificate",
                    path.display()
                )));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A platform store may hold certificates rustls cannot use; skip those.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(RootsError(
                    "the platform trust store is empty or unreadable; give --ca-file".into(),
                ));
            }
        }
    }
    Ok(Arc::new(roots))
}

/// Builds per-connection client configurations sharing one WebPKI verifier.
#[derive(Clone, Debug)]
pub struct TlsProber {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

/// What the recording verifier saw during one handshake.
#[derive(Debug, Default)]
pub struct Recorded {
    verdict: Option<Result<(), rustls::Error>>,
    chain: Vec<CertificateDer<'static>>,
}

/// The shared slot a handshake records into.
pub type Recorder = Arc<Mutex<Recorded>>;

#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    slot: Recorder,
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
            slot.verdict = Some(verdict);
            slot.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        // Accepted here only so the checker can look further; `assess` applies the verdict.
        Ok(ServerCertVerified::assertion())
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

impl TlsProber {
    /// A prober trusting `roots`.
    pub fn new(roots: Arc<rustls::RootCertStore>) -> Result<TlsProber, RootsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| RootsError(format!("cannot build the verifier: {e}")))?;
        Ok(TlsProber { inner, provider })
    }

    /// A client configuration whose verifier records into a fresh slot.
    pub fn config(&self, alpn: &[&[u8]]) -> Result<(Arc<rustls::ClientConfig>, Recorder), String> {
        let slot = Recorder::default();
        let mut cfg = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
                inner: self.inner.clone(),
                slot: slot.clone(),
            }))
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok((Arc::new(cfg), slot))
    }
}

/// The session facts after a completed handshake.
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
    let (verdict, chain) = match slot.lock() {
        Ok(rec) => (rec.verdict.clone(), rec.chain.clone()),
        Err(_) => (None, Vec::new()),
    };
    let summaries: Vec<CertSummary> = chain.iter().filter_map(|c| summarize(c)).collect();
    let verdict = match verdict {
        Some(Ok(())) => CertVerdict::Valid,
        Some(Err(e)) => classify(&e, &summaries, expected),
        None => CertVerdict::Invalid {
            reason: "no certificate was verified".into(),
        },
    };
    TlsSession {
        version,
        cipher,
        verdict,
        chain: summaries,
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

/// Turns a verifier error into what a domain owner can act on, using the chain's shape to
/// tell a self-signed leaf, an untrusted CA and a missing intermediate apart (WebPKI reports
/// all three as "unknown issuer").
fn classify(e: &rustls::Error, chain: &[CertSummary], expected: &str) -> CertVerdict {
    let leaf = chain.first();
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
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
        },
        other => CertVerdict::Invalid {
            reason: other.to_string(),
        },
    }
}

/// Whether a handshake error means the server only speaks TLS older than 1.2.
pub fn is_old_tls_only(e: &std::io::Error) -> bool {
    let text = e.to_string();
    text.contains("ProtocolVersion") || text.contains("protocol version")
}
