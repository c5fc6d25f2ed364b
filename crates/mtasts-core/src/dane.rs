//! DANE for SMTP (RFC 7672) as far as MTA-STS meets it, sans-IO.
//!
//! RFC 8461 §2: "senders who implement MTA-STS validation MUST NOT allow MTA-STS Policy
//! validation to override a failing DANE validation". This module decides, from DNS answers
//! the caller looked up and their DNSSEC status, what DANE says about a policy domain, and
//! what that leaves for MTA-STS:
//!
//! 1. [`Tlsa::usability`]: which TLSA records an SMTP client can use (RFC 7672 §3.1: DANE-TA(2)
//!    and DANE-EE(3); PKIX-TA(0) and PKIX-EE(1) are treated as unusable, §3.1.3; unknown
//!    selectors and matching types are unusable, RFC 6698 §4.1);
//! 2. the lookups, step by step ([`mx_hosts`], [`tlsa_names`]): the MX RRset (or the implicit
//!    MX), each host's addresses, and `_25._tcp.<host>` only under secure addresses (RFC 7672
//!    §2.2.2), the CNAME-expanded name first (§2.2.2, §2.2.3);
//! 3. [`assess`]: each host's outcome in the four cases of RFC 7672 §2.2 and the domain's
//!    [`Decision`], with how long it may be cached ([`Assessment::ttl`]: the records' TTLs and
//!    the negative TTLs of RFC 2308 §5);
//! 4. [`precedence`]: what that leaves for MTA-STS, which is what Postfix is told;
//! 5. [`authenticate`]: a presented certificate chain against a TLSA RRset (RFC 7672 §3.1,
//!    §3.2; RFC 6698 §2.1), for the checker. The TLS edge extracts each certificate's DER and
//!    SubjectPublicKeyInfo; the hashing and the decision are here.
//!
//! Trusting the AD flag is a decision too ([`ad_trusted`]): a stub resolver that cannot vouch
//! for the channel to its recursive resolver must not believe the AD bit (RFC 7672 §2.1.1,
//! quoting RFC 4035 §4.9.3).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};

use crate::dns::{DnsError, DnsErrorKind};

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

/// Certificate usage PKIX-TA(0) (RFC 7218 acronyms, as RFC 7672 §3.1 uses them).
pub const PKIX_TA: u8 = 0;
/// Certificate usage PKIX-EE(1).
pub const PKIX_EE: u8 = 1;
/// Certificate usage DANE-TA(2): a trust anchor of the server's chain.
pub const DANE_TA: u8 = 2;
/// Certificate usage DANE-EE(3): the server's own certificate or key.
pub const DANE_EE: u8 = 3;
/// Selector Cert(0): the whole certificate.
pub const SELECTOR_CERT: u8 = 0;
/// Selector SPKI(1): the SubjectPublicKeyInfo.
pub const SELECTOR_SPKI: u8 = 1;
/// Matching type Full(0): the selected data itself.
pub const MATCHING_FULL: u8 = 0;
/// Matching type SHA2-256(1).
pub const MATCHING_SHA256: u8 = 1;
/// Matching type SHA2-512(2).
pub const MATCHING_SHA512: u8 = 2;

/// Why an SMTP client cannot use a TLSA record ("unusable" in the sense of RFC 6698 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum Unusable {
    /// PKIX-TA(0) or PKIX-EE(1): "SMTP client treatment of TLSA RRs with certificate usages
    /// PKIX-TA(0) or PKIX-EE(1) is undefined. SMTP clients should generally treat such TLSA
    /// records as unusable." (RFC 7672 §3.1.3).
    PkixUsage {
        /// The usage.
        usage: u8,
    },
    /// A certificate usage RFC 6698 §2.1.1 does not define.
    UnknownUsage {
        /// The usage.
        usage: u8,
    },
    /// A selector RFC 6698 §2.1.2 does not define.
    UnknownSelector {
        /// The selector.
        selector: u8,
    },
    /// A matching type RFC 6698 §2.1.3 does not define.
    UnknownMatching {
        /// The matching type.
        matching: u8,
    },
    /// A SHA2-256 or SHA2-512 association that is not a digest of that length, which no
    /// certificate can ever match.
    DigestLength {
        /// The matching type.
        matching: u8,
        /// The digest length in bytes.
        expected: usize,
        /// The length published.
        found: usize,
    },
    /// No association data at all.
    NoData,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::PkixUsage { usage } => write!(
                f,
                "certificate usage {usage} ({}) is undefined for SMTP and treated as unusable",
                if *usage == PKIX_TA {
                    "PKIX-TA"
                } else {
                    "PKIX-EE"
                }
            ),
            Unusable::UnknownUsage { usage } => write!(f, "unknown certificate usage {usage}"),
            Unusable::UnknownSelector { selector } => write!(f, "unknown selector {selector}"),
            Unusable::UnknownMatching { matching } => {
                write!(f, "unknown matching type {matching}")
            }
            Unusable::DigestLength {
                matching,
                expected,
                found,
            } => write!(
                f,
                "matching type {matching} needs a {expected}-byte digest, the record has {found} bytes"
            ),
            Unusable::NoData => f.write_str("no certificate association data"),
        }
    }
}

impl Tlsa {
    /// The owner name of an MX host's TLSA records for SMTP: `_25._tcp.<host>` (RFC 7672 §2.2).
    pub fn smtp_name(host: &str) -> String {
        format!("_25._tcp.{}", host.trim_end_matches('.'))
    }

    /// Whether an SMTP client can use this record (RFC 7672 §3.1, RFC 6698 §4.1).
    pub fn usability(&self) -> Result<(), Unusable> {
        match self.usage {
            DANE_TA | DANE_EE => {}
            PKIX_TA | PKIX_EE => return Err(Unusable::PkixUsage { usage: self.usage }),
            usage => return Err(Unusable::UnknownUsage { usage }),
        }
        if !matches!(self.selector, SELECTOR_CERT | SELECTOR_SPKI) {
            return Err(Unusable::UnknownSelector {
                selector: self.selector,
            });
        }
        let expected = match self.matching {
            MATCHING_FULL => None,
            MATCHING_SHA256 => Some(32),
            MATCHING_SHA512 => Some(64),
            matching => return Err(Unusable::UnknownMatching { matching }),
        };
        if self.data.is_empty() {
            return Err(Unusable::NoData);
        }
        match expected {
            Some(expected) if self.data.len() != expected => Err(Unusable::DigestLength {
                matching: self.matching,
                expected,
                found: self.data.len(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether [`Tlsa::usability`] is `Ok`.
    pub fn is_usable(&self) -> bool {
        self.usability().is_ok()
    }

    /// The RFC 7218 name of the parameters, e.g. `DANE-EE SPKI SHA2-256`.
    pub fn mnemonic(&self) -> String {
        let usage = match self.usage {
            PKIX_TA => "PKIX-TA".to_owned(),
            PKIX_EE => "PKIX-EE".to_owned(),
            DANE_TA => "DANE-TA".to_owned(),
            DANE_EE => "DANE-EE".to_owned(),
            u => format!("usage-{u}"),
        };
        let selector = match self.selector {
            SELECTOR_CERT => "Cert".to_owned(),
            SELECTOR_SPKI => "SPKI".to_owned(),
            s => format!("selector-{s}"),
        };
        let matching = match self.matching {
            MATCHING_FULL => "Full".to_owned(),
            MATCHING_SHA256 => "SHA2-256".to_owned(),
            MATCHING_SHA512 => "SHA2-512".to_owned(),
            m => format!("matching-{m}"),
        };
        format!("{usage} {selector} {matching}")
    }

    /// Whether this record's association data matches `cert` (RFC 6698 §2.1.2, §2.1.3): the
    /// selected part (the whole certificate or its SubjectPublicKeyInfo), as is or hashed. An
    /// unusable record matches nothing.
    pub fn matches(&self, cert: &PresentedCert<'_>) -> bool {
        if !self.is_usable() {
            return false;
        }
        let selected = match self.selector {
            SELECTOR_CERT => cert.cert,
            _ => cert.spki,
        };
        match self.matching {
            MATCHING_FULL => selected == self.data.as_slice(),
            MATCHING_SHA256 => Sha256::digest(selected).as_slice() == self.data.as_slice(),
            _ => Sha512::digest(selected).as_slice() == self.data.as_slice(),
        }
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

impl std::str::FromStr for Tlsa {
    type Err = String;

    /// The presentation form, `usage selector matching-type hex` (the hex may be split by
    /// spaces, as in zone files).
    fn from_str(s: &str) -> Result<Tlsa, String> {
        let mut parts = s.split_whitespace();
        let mut number = |what: &str| -> Result<u8, String> {
            parts
                .next()
                .ok_or_else(|| format!("TLSA {s:?}: no {what}"))?
                .parse::<u8>()
                .map_err(|_| format!("TLSA {s:?}: the {what} is not a number from 0 to 255"))
        };
        let usage = number("certificate usage")?;
        let selector = number("selector")?;
        let matching = number("matching type")?;
        let hex: String = parts.collect();
        if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("TLSA {s:?}: the association data is not hex"));
        }
        let data = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("TLSA {s:?}: the association data is not hex"))?;
        Ok(Tlsa {
            usage,
            selector,
            matching,
            data,
        })
    }
}

impl Serialize for Tlsa {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ------------------------------------------------------------------------------------------
// Matching a presented chain (the checker)
// ------------------------------------------------------------------------------------------

/// One certificate of the chain a server presented, as the TLS edge extracted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentedCert<'a> {
    /// The certificate, DER.
    pub cert: &'a [u8],
    /// Its SubjectPublicKeyInfo, DER.
    pub spki: &'a [u8],
}

/// What one TLSA record made of a presented chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum RecordMatch {
    /// A DANE-EE(3) record matches the server's certificate (depth 0). Name checks and
    /// validity dates do not apply (RFC 7672 §3.1.1, §3.2.1).
    EndEntity,
    /// A DANE-TA(2) record matches the certificate at this depth of the chain (0 is the
    /// server's own), the trust anchor the server certificate must chain to, and the server
    /// certificate must name the host (RFC 7672 §3.1.2, §3.2.2).
    TrustAnchor {
        /// Depth in the chain as presented.
        depth: usize,
    },
    /// A usable record that matches nothing presented.
    NoMatch,
    /// An unusable record (RFC 7672 §3.1.3, RFC 6698 §4.1): never matched.
    Unusable {
        /// Why.
        why: Unusable,
    },
}

/// What a DANE sender makes of a presented chain (RFC 7672 §2.2, §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ChainVerdict {
    /// A usable record matched: the server is authenticated by DANE.
    Authenticated {
        /// The index of the first matching record in the RRset.
        record: usize,
        /// How it matched.
        how: RecordMatch,
    },
    /// Usable records, none matching (or a DANE-TA match whose server certificate does not
    /// name the host): "Messages MUST NOT be delivered via the SMTP server if authentication
    /// fails" (RFC 7672 §3.2).
    Failed,
    /// A non-empty RRset whose records are all unusable: TLS is required, but authentication
    /// is not (RFC 7672 §2.2).
    NoUsableRecords,
}

/// Whether a certificate's DNS names (its subjectAltName dNSNames, or its CN without any) name
/// `host`: exactly, or with a `*.` standing for the whole first label (RFC 7672 §3.2.3), the
/// name check DANE-TA(2) requires (§3.2.2).
pub fn names_host(names: &[String], host: &str) -> bool {
    names.iter().any(|n| {
        crate::sts::mx::MxPattern::parse(n.trim_end_matches('.')).is_ok_and(|p| p.matches(host))
    })
}

/// Every record of `records` against `chain` (leaf first), in the order published.
pub fn match_records(records: &[Tlsa], chain: &[PresentedCert<'_>]) -> Vec<RecordMatch> {
    records
        .iter()
        .map(|r| {
            if let Err(why) = r.usability() {
                return RecordMatch::Unusable { why };
            }
            match r.usage {
                DANE_EE => match chain.first() {
                    Some(leaf) if r.matches(leaf) => RecordMatch::EndEntity,
                    _ => RecordMatch::NoMatch,
                },
                _ => match chain.iter().position(|c| r.matches(c)) {
                    Some(depth) => RecordMatch::TrustAnchor { depth },
                    None => RecordMatch::NoMatch,
                },
            }
        })
        .collect()
}

/// The verdict of a DANE sender on `chain` under the secure TLSA RRset `records`;
/// `leaf_names_host` says whether the server certificate names one of the reference
/// identifiers (the MX host, and with a secure MX RRset the next-hop domain), which DANE-TA(2)
/// requires and DANE-EE(3) does not (RFC 7672 §3.2.1, §3.2.2).
pub fn authenticate(
    records: &[Tlsa],
    chain: &[PresentedCert<'_>],
    leaf_names_host: bool,
) -> ChainVerdict {
    let matches = match_records(records, chain);
    let found = matches.iter().enumerate().find(|(_, m)| match m {
        RecordMatch::EndEntity => true,
        RecordMatch::TrustAnchor { .. } => leaf_names_host,
        _ => false,
    });
    match found {
        Some((record, how)) => ChainVerdict::Authenticated {
            record,
            how: how.clone(),
        },
        None if records.iter().any(Tlsa::is_usable) => ChainVerdict::Failed,
        None => ChainVerdict::NoUsableRecords,
    }
}

// ------------------------------------------------------------------------------------------
// DNSSEC status of lookups
// ------------------------------------------------------------------------------------------

/// The DNSSEC validation status of an answer that did not fail (RFC 4035 §4.3, as RFC 7672
/// §2.1.1 uses it). "Bogus" and "indeterminate" answers are lookup failures
/// ([`Lookup::Failed`]): a validating resolver answers them with SERVFAIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// Validated: the resolver set the AD flag, and its AD flag is trusted.
    Secure,
    /// Not validated (unsigned zone, or an AD flag that is not trusted).
    Insecure,
}

impl Security {
    /// `Secure` when `authentic` (the AD flag of a trusted resolver).
    pub fn from_ad(authentic: bool) -> Security {
        if authentic {
            Security::Secure
        } else {
            Security::Insecure
        }
    }
}

/// What one DNS lookup ended in, as DANE reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Lookup<T> {
    /// Records of the type asked.
    Found {
        /// The records.
        records: T,
        /// Their DNSSEC status.
        security: Security,
        /// The smallest TTL of the answer (CNAMEs included), in seconds.
        ttl: u32,
    },
    /// No such records: NXDOMAIN or NODATA. "It is not an error when either 'secure' or
    /// 'insecure' non-existence is determined for the requested data" (RFC 7672 §2.1.1).
    Absent {
        /// NXDOMAIN (the name does not exist) rather than NODATA.
        nxdomain: bool,
        /// Whether the denial was validated.
        security: Security,
        /// The negative TTL (RFC 2308 §5), in seconds.
        ttl: u32,
    },
    /// The lookup failed: SERVFAIL (which includes "bogus" and "indeterminate" answers at a
    /// validating resolver), REFUSED, a timeout, a malformed answer (RFC 7672 §2.1.1).
    Failed {
        /// Why.
        error: DnsError,
    },
}

impl<T> Lookup<T> {
    /// The DNSSEC status, for answers that did not fail.
    pub fn security(&self) -> Option<Security> {
        match self {
            Lookup::Found { security, .. } | Lookup::Absent { security, .. } => Some(*security),
            Lookup::Failed { .. } => None,
        }
    }

    /// The TTL of the answer (records or denial); `None` for a failure.
    pub fn ttl(&self) -> Option<u32> {
        match self {
            Lookup::Found { ttl, .. } | Lookup::Absent { ttl, .. } => Some(*ttl),
            Lookup::Failed { .. } => None,
        }
    }

    /// The same lookup with its DNSSEC status forgotten: what an AD flag that is not trusted
    /// is worth.
    pub fn distrusted(self) -> Lookup<T> {
        match self {
            Lookup::Found { records, ttl, .. } => Lookup::Found {
                records,
                ttl,
                security: Security::Insecure,
            },
            Lookup::Absent { nxdomain, ttl, .. } => Lookup::Absent {
                nxdomain,
                ttl,
                security: Security::Insecure,
            },
            failed => failed,
        }
    }

    /// A failure of `kind` for `name`.
    pub fn failed(kind: DnsErrorKind, name: &str, detail: impl Into<String>) -> Lookup<T> {
        Lookup::Failed {
            error: DnsError::new(kind, name, detail),
        }
    }
}

/// Whether the AD flags of these upstream resolvers may be believed. A stub resolver has no
/// way to check an AD flag: "a security-aware stub resolver MUST NOT place any reliance on
/// signature validation allegedly performed on its behalf, except when the security-aware stub
/// resolver obtained the data in question from a trusted security-aware recursive name server
/// via a secure channel" (RFC 4035 §4.9.3, quoted by RFC 7672 §2.1.1). Here that means a
/// resolver on this host (loopback), or an operator's explicit `trust_remote` (a resolver
/// reached over IPsec, a private link…). No servers at all trust nothing.
pub fn ad_trusted(servers: &[SocketAddr], trust_remote: bool) -> bool {
    !servers.is_empty() && (trust_remote || servers.iter().all(|s| s.ip().is_loopback()))
}

// ------------------------------------------------------------------------------------------
// The lookups, step by step
// ------------------------------------------------------------------------------------------

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxRecord {
    /// Its preference.
    pub preference: u16,
    /// The exchange, lower case, no trailing dot (empty for the root of a null MX).
    pub exchange: String,
}

/// The addresses of an MX host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostAddresses {
    /// A (or, when there is none, AAAA) records.
    pub addresses: Vec<IpAddr>,
    /// The name the host's CNAME chain ends at, when it is an alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
}

/// Most MX hosts whose DANE status is looked up; beyond them a domain can only be
/// [`Decision::Opportunistic`], and Postfix decides for the others itself.
pub const MAX_MX_HOSTS: usize = 10;

/// The hosts whose TLSA records matter for `domain` given its MX lookup: the exchanges in
/// preference order (at most [`MAX_MX_HOSTS`]), or the domain itself when it has no MX record
/// (the implicit MX, RFC 5321 §5.1, RFC 7672 §2.2.2). None for a null MX (RFC 7505), a domain
/// that does not exist, or a failed lookup.
pub fn mx_hosts(domain: &str, mx: &Lookup<Vec<MxRecord>>) -> Vec<String> {
    match mx {
        Lookup::Found { records, .. } => {
            if records.iter().any(|r| r.exchange.is_empty()) {
                return Vec::new();
            }
            let mut hosts: Vec<String> = Vec::new();
            let mut sorted = records.clone();
            sorted.sort_by(|a, b| {
                a.preference
                    .cmp(&b.preference)
                    .then(a.exchange.cmp(&b.exchange))
            });
            for r in sorted {
                if !hosts.contains(&r.exchange) {
                    hosts.push(r.exchange);
                }
            }
            hosts.truncate(MAX_MX_HOSTS);
            hosts
        }
        Lookup::Absent {
            nxdomain: false, ..
        } => vec![domain.trim_end_matches('.').to_ascii_lowercase()],
        _ => Vec::new(),
    }
}

/// Where to look for `host`'s TLSA records, in order, given its address lookup: nowhere
/// unless the addresses are secure ("If address records are found, but the DNSSEC validation
/// status of the first query response is 'insecure' … the SMTP client SHOULD NOT proceed to
/// search for any associated TLSA records", RFC 7672 §2.2.2); for a securely CNAME'd host, the
/// fully expanded name first and then the initial name (§2.2.2 "Secure CNAME", §2.2.3). The
/// caller looks up each name until one answers other than [`Lookup::Absent`]. (A host whose
/// first CNAME is secure but whose addresses are not, §2.2.2 "Insecure CNAME", would need a
/// CNAME query of its own to be told apart; it is treated as insecure.)
pub fn tlsa_names(host: &str, addresses: &Lookup<HostAddresses>) -> Vec<String> {
    match addresses {
        Lookup::Found {
            records,
            security: Security::Secure,
            ..
        } => {
            let mut names = Vec::new();
            if let Some(c) = &records.canonical
                && !c.eq_ignore_ascii_case(host)
            {
                names.push(Tlsa::smtp_name(c));
            }
            names.push(Tlsa::smtp_name(host));
            names
        }
        _ => Vec::new(),
    }
}

/// What was looked up for one MX host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostEvidence {
    /// The host name, as in the MX record.
    pub host: String,
    /// Its address lookup.
    pub addresses: Lookup<HostAddresses>,
    /// Its TLSA lookups, in the order made (see [`tlsa_names`]).
    pub tlsa: Vec<(String, Lookup<Vec<Tlsa>>)>,
}

/// Everything looked up for a policy domain's DANE status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The policy domain.
    pub domain: String,
    /// Its MX lookup.
    pub mx: Lookup<Vec<MxRecord>>,
    /// The hosts, in the order of [`mx_hosts`].
    pub hosts: Vec<HostEvidence>,
    /// MX hosts beyond [`MAX_MX_HOSTS`] that were not looked at.
    pub hosts_not_examined: usize,
}

// ------------------------------------------------------------------------------------------
// The decision
// ------------------------------------------------------------------------------------------

/// Why a host gets pre-DANE TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreDane {
    /// Its addresses are insecure, so its TLSA records are not looked up (RFC 7672 §2.2.2).
    InsecureAddresses,
    /// The TLSA RRset, or its denial, is insecure (RFC 7672 §2.2).
    InsecureTlsa,
    /// DNSSEC proves there are no TLSA records (RFC 7672 §2.2).
    NoTlsa,
}

impl fmt::Display for PreDane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PreDane::InsecureAddresses => "its addresses are not DNSSEC-validated",
            PreDane::InsecureTlsa => "its TLSA records (or their absence) are not DNSSEC-validated",
            PreDane::NoTlsa => "DNSSEC proves it has no TLSA records",
        })
    }
}

/// One MX host's outcome: the four cases of the TLSA search in RFC 7672 §2.2, and hosts that
/// have no address at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum HostOutcome {
    /// "A secure TLSA RRset with at least one usable record": the connection "MUST be made
    /// using authenticated and encrypted TLS".
    Usable,
    /// "A secure non-empty TLSA RRset where all the records are unusable": "A connection to
    /// the MTA MUST be made via TLS, but authentication is not required".
    AllUnusable,
    /// "An insecure TLSA RRset or DNSSEC validated proof-of-non-existent TLSA records": the
    /// connection "SHOULD be made using (pre-DANE) opportunistic TLS".
    PreDane {
        /// Which.
        why: PreDane,
    },
    /// "Any lookup error": "MUST result in falling back to the next SMTP server or delayed
    /// delivery" (§2.2, §2.1.2). An address lookup that failed counts too: the host's TLSA
    /// status is unknown.
    LookupError {
        /// What failed.
        error: DnsError,
    },
    /// The host has no address: it is no destination (§2.2.2: "If no address records are
    /// found, the destination is unreachable").
    NoAddress,
}

impl HostOutcome {
    fn has_dane(&self) -> bool {
        matches!(self, HostOutcome::Usable | HostOutcome::AllUnusable)
    }
}

/// One host's outcome, with the records it rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostAssessment {
    /// The host.
    pub host: String,
    /// Its outcome.
    #[serde(flatten)]
    pub outcome: HostOutcome,
    /// The name whose TLSA RRset decided it, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlsa_name: Option<String>,
    /// That RRset, each record with why it is unusable, if it is.
    pub records: Vec<(Tlsa, Option<Unusable>)>,
}

/// What DANE says about a policy domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Every MX host (that has an address) has a secure TLSA RRset with a usable record, and
    /// the MX RRset is secure: DANE authentication is required for every host, nothing else
    /// is acceptable (RFC 7672 §2.2, §3.2; what §6 calls mandatory DANE TLS; Postfix
    /// `dane-only`). Hosts whose TLSA lookup failed are skipped by the sender (§2.1.2).
    Mandatory,
    /// Some hosts have secure TLSA records (usable or not), or the MX RRset is insecure: each
    /// host as its TLSA records say, pre-DANE TLS for the rest (RFC 7672 §2.2, §2.2.1;
    /// Postfix `dane`).
    Opportunistic {
        /// The MX RRset is insecure: "DANE TLS need not apply" (§2.2.1).
        insecure_mx: bool,
    },
    /// A lookup failed where DANE may apply and no host is known to have DANE: delivery must
    /// wait (RFC 7672 §2.1.2, §2.2), never fall back to pre-DANE TLS.
    Delay {
        /// What failed.
        reason: String,
        /// The MX RRset is insecure (§2.2.1).
        insecure_mx: bool,
    },
    /// DANE does not apply: no MX host has secure TLSA records (RFC 7672 §2.2: pre-DANE TLS),
    /// so MTA-STS applies as without DANE (RFC 8461 §2).
    NotApplicable {
        /// Why.
        reason: String,
    },
}

impl Decision {
    /// A short stable name, for logs and metrics: `mandatory`, `opportunistic`, `delay`,
    /// `not-applicable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Mandatory => "mandatory",
            Decision::Opportunistic { .. } => "opportunistic",
            Decision::Delay { .. } => "delay",
            Decision::NotApplicable { .. } => "not-applicable",
        }
    }
}

/// The decision and the per-host outcomes it rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// The DNSSEC status of the MX RRset (or of its denial), when the lookup did not fail.
    pub mx_security: Option<Security>,
    /// Each host's outcome.
    pub hosts: Vec<HostAssessment>,
    /// How long the assessment may be cached, in seconds: the smallest TTL of every answer it
    /// rests on, negative TTLs of denials included (RFC 2308 §5). `None` when a lookup failed:
    /// failures are not cached by TTL.
    pub ttl: Option<u32>,
}

fn host_outcome(h: &HostEvidence) -> HostAssessment {
    let mut out = HostAssessment {
        host: h.host.clone(),
        outcome: HostOutcome::NoAddress,
        tlsa_name: None,
        records: Vec::new(),
    };
    out.outcome = match &h.addresses {
        Lookup::Failed { error } => HostOutcome::LookupError {
            error: error.clone(),
        },
        // Securely or not, no address: no destination. A forged denial only takes a
        // destination away, which gains an attacker nothing over dropping packets.
        Lookup::Absent { .. } => HostOutcome::NoAddress,
        Lookup::Found {
            security: Security::Insecure,
            ..
        } => HostOutcome::PreDane {
            why: PreDane::InsecureAddresses,
        },
        Lookup::Found {
            security: Security::Secure,
            ..
        } => {
            // The first TLSA answer that is not a denial decides; with only denials, the
            // last one (the initial name's) does.
            let decisive = h
                .tlsa
                .iter()
                .find(|(_, l)| !matches!(l, Lookup::Absent { .. }))
                .or_else(|| h.tlsa.last());
            match decisive {
                None => HostOutcome::LookupError {
                    error: DnsError::new(
                        DnsErrorKind::Other,
                        Tlsa::smtp_name(&h.host),
                        "the TLSA records were not looked up",
                    ),
                },
                Some((name, lookup)) => {
                    out.tlsa_name = Some(name.clone());
                    match lookup {
                        Lookup::Failed { error } => HostOutcome::LookupError {
                            error: error.clone(),
                        },
                        Lookup::Absent {
                            security: Security::Secure,
                            ..
                        } => HostOutcome::PreDane {
                            why: PreDane::NoTlsa,
                        },
                        Lookup::Absent { .. } => HostOutcome::PreDane {
                            why: PreDane::InsecureTlsa,
                        },
                        Lookup::Found {
                            records, security, ..
                        } => {
                            out.records = records
                                .iter()
                                .map(|r| (r.clone(), r.usability().err()))
                                .collect();
                            match security {
                                Security::Insecure => HostOutcome::PreDane {
                                    why: PreDane::InsecureTlsa,
                                },
                                Security::Secure if records.iter().any(Tlsa::is_usable) => {
                                    HostOutcome::Usable
                                }
                                Security::Secure if records.is_empty() => HostOutcome::PreDane {
                                    why: PreDane::NoTlsa,
                                },
                                Security::Secure => HostOutcome::AllUnusable,
                            }
                        }
                    }
                }
            }
        }
    };
    out
}

/// The smallest TTL of every answer in `e`, or `None` when any lookup failed.
fn evidence_ttl(e: &Evidence) -> Option<u32> {
    let mut ttl = e.mx.ttl()?;
    for h in &e.hosts {
        ttl = ttl.min(h.addresses.ttl()?);
        for (_, l) in &h.tlsa {
            ttl = ttl.min(l.ttl()?);
        }
    }
    Some(ttl)
}

/// What DANE says about the policy domain of `e`.
///
/// - The MX lookup failed: delay (RFC 7672 §2.1.2: "When a DNS lookup failure … prevents an
///   SMTP client from determining which SMTP server or servers it should connect to, message
///   delivery MUST be delayed").
/// - Each host: [`HostOutcome`].
/// - Every host with an address [`HostOutcome::Usable`] (hosts whose lookup failed aside,
///   which a DANE sender skips, §2.1.2), a secure MX RRset and every host examined:
///   [`Decision::Mandatory`].
/// - Some host with secure TLSA records: [`Decision::Opportunistic`]; the hosts whose lookup
///   failed are again the sender's to skip.
/// - A failed lookup and no host with secure TLSA records: [`Decision::Delay`]. Any answer
///   without DANE would let the host whose TLSA records are unknown receive the message,
///   which §2.1.2 forbids ("MUST NOT deliver the message via that server").
/// - Otherwise: [`Decision::NotApplicable`].
pub fn assess(e: &Evidence) -> Assessment {
    let mx_security = e.mx.security();
    let not_applicable = |reason: &str| Assessment {
        decision: Decision::NotApplicable {
            reason: reason.to_owned(),
        },
        mx_security,
        hosts: Vec::new(),
        ttl: e.mx.ttl(),
    };
    match &e.mx {
        Lookup::Failed { error } => {
            return Assessment {
                decision: Decision::Delay {
                    reason: format!("the MX lookup failed: {error}"),
                    insecure_mx: false,
                },
                mx_security,
                hosts: Vec::new(),
                ttl: None,
            };
        }
        Lookup::Absent { nxdomain: true, .. } => {
            return not_applicable(&format!("{} does not exist", e.domain));
        }
        Lookup::Found { records, .. } if records.iter().any(|r| r.exchange.is_empty()) => {
            return not_applicable("a null MX: the domain accepts no mail");
        }
        _ => {}
    }
    let insecure_mx = mx_security == Some(Security::Insecure);
    let hosts: Vec<HostAssessment> = e.hosts.iter().map(host_outcome).collect();
    let destinations: Vec<&HostAssessment> = hosts
        .iter()
        .filter(|h| h.outcome != HostOutcome::NoAddress)
        .collect();
    let any_dane = destinations.iter().any(|h| h.outcome.has_dane());
    let failure = destinations.iter().find_map(|h| match &h.outcome {
        HostOutcome::LookupError { error } => Some(format!("{}: {error}", h.host)),
        _ => None,
    });
    let every_usable = destinations.iter().all(|h| {
        matches!(
            h.outcome,
            HostOutcome::Usable | HostOutcome::LookupError { .. }
        )
    });
    let decision = if !any_dane {
        match failure {
            Some(reason) => Decision::Delay {
                reason: format!("the DNSSEC lookup of {reason}"),
                insecure_mx,
            },
            None => Decision::NotApplicable {
                reason: if destinations.is_empty() {
                    "no MX host has an address".to_owned()
                } else if insecure_mx
                    && destinations.iter().all(|h| {
                        h.outcome
                            == HostOutcome::PreDane {
                                why: PreDane::InsecureAddresses,
                            }
                    })
                {
                    "the domain's DNS is not DNSSEC-validated".to_owned()
                } else {
                    "no MX host has DNSSEC-validated TLSA records".to_owned()
                },
            },
        }
    } else if every_usable && !insecure_mx && e.hosts_not_examined == 0 {
        Decision::Mandatory
    } else {
        Decision::Opportunistic { insecure_mx }
    };
    let ttl = match decision {
        Decision::Delay { .. } => None,
        _ => evidence_ttl(e),
    };
    Assessment {
        decision,
        mx_security,
        hosts,
        ttl,
    }
}

// ------------------------------------------------------------------------------------------
// DANE and MTA-STS together
// ------------------------------------------------------------------------------------------

/// What a sender that implements both does for the domain: what Postfix is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "apply", rename_all = "kebab-case")]
pub enum Precedence {
    /// DANE for every host, no fallback (Postfix `dane-only`); MTA-STS is not applied.
    DaneOnly,
    /// DANE where the TLSA records say so (Postfix `dane`); MTA-STS is not applied.
    Dane,
    /// A temporary failure: delivery waits, neither MTA-STS nor pre-DANE TLS takes over.
    TempFail {
        /// Why.
        reason: String,
    },
    /// MTA-STS applies exactly as without DANE.
    MtaSts,
}

/// RFC 8461 §2 with RFC 7672: `decision` for the domain, given whether an MTA-STS policy that
/// refuses failures (`enforce`) applies to it.
///
/// - Mandatory or opportunistic DANE with a secure MX RRset: DANE, whatever MTA-STS says
///   (RFC 8461 §2: "MUST NOT allow MTA-STS Policy validation to override a failing DANE
///   validation").
/// - A failure with a secure MX RRset: a temporary failure (RFC 7672 §2.1.2); never a
///   downgrade to MTA-STS or opportunistic TLS.
/// - An insecure MX RRset: "DANE TLS need not apply" (RFC 7672 §2.2.1), so DANE is only the
///   sender's choice there. An MTA-STS `enforce` policy then applies instead: it pins the MX
///   host names, which an unsigned MX RRset leaves open to forgery, where DANE cannot help
///   (a forged host without TLSA records gets pre-DANE TLS). Without one, DANE (or the
///   failure) stands, as with a secure MX RRset.
/// - No DANE: MTA-STS.
pub fn precedence(decision: &Decision, sts_enforced: bool) -> Precedence {
    match decision {
        Decision::Mandatory => Precedence::DaneOnly,
        Decision::Opportunistic { insecure_mx: true } if sts_enforced => Precedence::MtaSts,
        Decision::Opportunistic { .. } => Precedence::Dane,
        Decision::Delay {
            insecure_mx: true, ..
        } if sts_enforced => Precedence::MtaSts,
        Decision::Delay { reason, .. } => Precedence::TempFail {
            reason: reason.clone(),
        },
        Decision::NotApplicable { .. } => Precedence::MtaSts,
    }
}

/// How long DANE assessments are cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheLimits {
    /// The least time an assessment is kept, in seconds, whatever its records' TTLs.
    pub min_ttl: u64,
    /// The most time an assessment is kept, in seconds.
    pub max_ttl: u64,
    /// How long a failed assessment (a [`Decision::Delay`]) is kept before the lookups are
    /// made again.
    pub failure_ttl: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            min_ttl: 60,
            max_ttl: 86_400,
            failure_ttl: 30,
        }
    }
}

impl Assessment {
    /// How many seconds this assessment may be cached under `limits`: its TTL between
    /// `min_ttl` and `max_ttl`, or `failure_ttl` for a failure.
    pub fn cache_for(&self, limits: &CacheLimits) -> u64 {
        match self.ttl {
            Some(ttl) => u64::from(ttl).clamp(limits.min_ttl, limits.max_ttl.max(limits.min_ttl)),
            None => limits.failure_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentation_form_round_trips() {
        let t: Tlsa = "3 1 1 00ff 10".parse().expect("parses");
        assert_eq!(t.to_string(), "3 1 1 00ff10");
        assert!("3 1".parse::<Tlsa>().is_err());
        assert!("3 1 1 0g".parse::<Tlsa>().is_err());
        assert!("300 1 1 00".parse::<Tlsa>().is_err());
    }

    #[test]
    fn rfc7672_s3_2_3_name_checks_allow_one_wildcard_label() {
        let names = vec!["*.example.com".to_owned(), "mx.example.net".to_owned()];
        assert!(names_host(&names, "mx1.example.com"));
        assert!(names_host(&names, "MX.example.net."));
        assert!(!names_host(&names, "a.b.example.com"));
        assert!(!names_host(&names, "example.com"));
    }

    #[test]
    fn rfc4035_s4_9_3_only_loopback_ad_is_trusted_by_default() {
        let lo: SocketAddr = "127.0.0.53:53".parse().expect("addr");
        let lo6: SocketAddr = "[::1]:53".parse().expect("addr");
        let remote: SocketAddr = "192.0.2.1:53".parse().expect("addr");
        assert!(ad_trusted(&[lo, lo6], false));
        assert!(!ad_trusted(&[lo, remote], false));
        assert!(ad_trusted(&[remote], true));
        assert!(!ad_trusted(&[], true));
    }
}
