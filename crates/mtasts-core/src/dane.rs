//! DANE for SMTP (RFC 7672) as far as MTA-STS meets it: the TLSA record (RFC 6698 §2.1) of an
//! MX host at `_25._tcp.<mx>`. RFC 8461 §2: where an MX host has usable TLSA records, a sender
//! that implements DANE uses DANE, not MTA-STS.

use std::fmt;

use serde::Serialize;

/// One TLSA record (RFC 6698 §2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tlsa {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 the full certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The certificate association data.
    pub data: Vec<u8>,
}

impl Tlsa {
    /// The owner name of an MX host's TLSA records for SMTP: `_25._tcp.<host>` (RFC 7672 §2.2).
    pub fn smtp_name(host: &str) -> String {
        format!("_25._tcp.{}", host.trim_end_matches('.'))
    }
}

impl fmt::Display for Tlsa {
    /// The presentation form, `3 1 1 <hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        for b in &self.data {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for Tlsa {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
