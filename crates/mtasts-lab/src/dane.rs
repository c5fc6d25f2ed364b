//! TLSA records derived from the certificates an SMTP host really presents (the `tlsa` knob
//! of a host), computed here and not by `mtasts-core`, so that the lab stays an independent
//! oracle for the code it tests.

use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256, Sha512};

use crate::scenario::TlsaKnob;

/// The association data of `knob` for a served chain (leaf first): usage 1 and 3 select the
/// leaf, 0 and 2 the last certificate served (the trust anchor the server presents); selector
/// 1 its SubjectPublicKeyInfo, 0 the whole certificate; matching type 1 SHA-256, 2 SHA-512,
/// 0 the data itself. `mismatch` inverts every bit. `None` when the chain is empty or the
/// certificate does not parse.
pub(crate) fn association(chain: &[CertificateDer<'_>], knob: &TlsaKnob) -> Option<Vec<u8>> {
    let cert = match knob.usage {
        1 | 3 => chain.first()?,
        _ => chain.last()?,
    };
    let selected: Vec<u8> = match knob.selector {
        0 => cert.as_ref().to_vec(),
        _ => {
            let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
            parsed.tbs_certificate.subject_pki.raw.to_vec()
        }
    };
    let mut data = match knob.matching {
        0 => selected,
        1 => Sha256::digest(&selected).to_vec(),
        _ => Sha512::digest(&selected).to_vec(),
    };
    if knob.mismatch {
        for b in &mut data {
            *b = !*b;
        }
    }
    Some(data)
}
