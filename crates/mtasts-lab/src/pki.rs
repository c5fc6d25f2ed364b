//! The lab's test PKI: a trusted root CA, an intermediate CA under it, a second root that no
//! client trusts, and leaf certificates per host with the knobs of [`CertKind`].
//!
//! Normal chain: root → intermediate → leaf, served as `[leaf, intermediate]`.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use time::{Duration, OffsetDateTime};

use crate::error::LabError;
use crate::scenario::{CertKind, CertSpec};

/// A certificate (with its served chain and key) the lab issued for a host.
#[derive(Clone)]
pub struct IssuedCert {
    /// What was asked for.
    pub spec: CertSpec,
    /// The subject alternative names of the leaf.
    pub names: Vec<String>,
    /// The chain the server sends, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8 DER).
    pub key_pkcs8: Vec<u8>,
    /// The chain and key ready for rustls.
    pub certified: Arc<CertifiedKey>,
    /// The served chain as PEM.
    pub chain_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("spec", &self.spec)
            .field("names", &self.names)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

/// The lab PKI of one world.
pub struct Pki {
    root: Ca,
    intermediate: Ca,
    untrusted: Ca,
}

fn cert_err(name: &str, e: impl std::fmt::Display) -> LabError {
    LabError::Certificate {
        name: name.to_owned(),
        message: e.to_string(),
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "mtasts-lab");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, constraints: BasicConstraints) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(constraints);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    p.use_authority_key_identifier_extension = true;
    p
}

impl Pki {
    /// Create fresh CAs; `label` goes into their common names.
    pub fn new(label: &str) -> Result<Pki, LabError> {
        let root = Self::self_signed_ca(&format!("mtasts-lab root CA ({label})"))?;
        let untrusted = Self::self_signed_ca(&format!("mtasts-lab UNTRUSTED root CA ({label})"))?;
        let name = "intermediate CA";
        let key = KeyPair::generate().map_err(|e| cert_err(name, e))?;
        let params = ca_params(
            &format!("mtasts-lab intermediate CA ({label})"),
            BasicConstraints::Constrained(0),
        );
        let cert = params
            .signed_by(&key, &root.issuer)
            .map_err(|e| cert_err(name, e))?;
        let intermediate = Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        };
        Ok(Pki {
            root,
            intermediate,
            untrusted,
        })
    }

    fn self_signed_ca(cn: &str) -> Result<Ca, LabError> {
        let key = KeyPair::generate().map_err(|e| cert_err(cn, e))?;
        let params = ca_params(cn, BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).map_err(|e| cert_err(cn, e))?;
        Ok(Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The trusted root certificate (PEM) that clients should trust.
    pub fn root_pem(&self) -> &str {
        &self.root.pem
    }

    /// The trusted root certificate (DER).
    pub fn root_der(&self) -> &CertificateDer<'static> {
        &self.root.der
    }

    /// The root nobody trusts (PEM), for tests that want to show it is not enough.
    pub fn untrusted_root_pem(&self) -> &str {
        &self.untrusted.pem
    }

    /// The intermediate CA (PEM).
    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate.pem
    }

    /// Issue a certificate for `host` as `spec` says.
    pub fn issue(&self, host: &str, spec: &CertSpec) -> Result<IssuedCert, LabError> {
        let names = match &spec.names {
            Some(n) => n.clone(),
            None => match spec.kind {
                CertKind::WrongName => vec!["wrong-name.invalid".to_owned()],
                CertKind::Wildcard => {
                    let parent = host.split_once('.').map_or(host, |(_, p)| p);
                    vec![format!("*.{parent}")]
                }
                _ => vec![host.to_owned()],
            },
        };
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::new(names.clone()).map_err(|e| cert_err(host, e))?;
        params.distinguished_name = dn(names.first().map_or(host, String::as_str));
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = match spec.kind {
            CertKind::Expired => (now - Duration::days(400), now - Duration::days(30)),
            CertKind::NotYetValid => (now + Duration::days(30), now + Duration::days(400)),
            _ => (now - Duration::days(1), now + Duration::days(90)),
        };
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(|e| cert_err(host, e))?;
        let (leaf, mut chain_rest, chain_pems): (_, Vec<CertificateDer<'static>>, Vec<&str>) =
            match spec.kind {
                CertKind::SelfSigned => {
                    params.use_authority_key_identifier_extension = false;
                    let c = params.self_signed(&key).map_err(|e| cert_err(host, e))?;
                    (c, vec![], vec![])
                }
                CertKind::UntrustedCa => {
                    let c = params
                        .signed_by(&key, &self.untrusted.issuer)
                        .map_err(|e| cert_err(host, e))?;
                    (
                        c,
                        vec![self.untrusted.der.clone()],
                        vec![self.untrusted.pem.as_str()],
                    )
                }
                CertKind::MissingIntermediate => {
                    let c = params
                        .signed_by(&key, &self.intermediate.issuer)
                        .map_err(|e| cert_err(host, e))?;
                    (c, vec![], vec![])
                }
                _ => {
                    let c = params
                        .signed_by(&key, &self.intermediate.issuer)
                        .map_err(|e| cert_err(host, e))?;
                    (
                        c,
                        vec![self.intermediate.der.clone()],
                        vec![self.intermediate.pem.as_str()],
                    )
                }
            };
        let mut chain_pem = leaf.pem();
        for p in chain_pems {
            chain_pem.push_str(p);
        }
        let mut chain = vec![leaf.der().clone()];
        chain.append(&mut chain_rest);
        let key_pkcs8 = key.serialize_der();
        let signing = rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
            PrivatePkcs8KeyDer::from(key_pkcs8.clone()),
        ))
        .map_err(|e| cert_err(host, e))?;
        let certified = Arc::new(CertifiedKey::new(chain.clone(), signing));
        Ok(IssuedCert {
            spec: spec.clone(),
            names,
            chain,
            key_pkcs8,
            certified,
            chain_pem,
        })
    }
}
