//! What a DNS lookup can end in, in the terms the standards decide by.
//!
//! The I/O edge (`mtasts-net`) asks; this module only names the outcomes, so that the one rule
//! that matters everywhere lives once: NXDOMAIN and NODATA say the record does not exist
//! (RFC 8461 §3.1: the domain has no policy), while SERVFAIL, REFUSED, timeouts and network
//! errors say nothing about it (a transient failure that must never erase a cached policy,
//! §5.1, §10.2).

use std::fmt;

use serde::Serialize;

/// Why a lookup returned no records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsErrorKind {
    /// The name does not exist (RCODE 3).
    NxDomain,
    /// The name exists but has no record of the type asked (NOERROR, empty answer).
    NoData,
    /// The server failed (RCODE 2), which includes DNSSEC validation failures at a
    /// validating resolver.
    ServFail,
    /// The server refused to answer (RCODE 5).
    Refused,
    /// No answer in time.
    Timeout,
    /// The query could not be sent or the answer not read (no route, connection refused...).
    Network,
    /// Anything else: a malformed answer, another RCODE, a name that cannot be asked.
    Other,
}

impl DnsErrorKind {
    /// Whether the answer says that no such record exists (NXDOMAIN, NODATA), as opposed to
    /// a failure that says nothing about it.
    pub fn is_negative(self) -> bool {
        matches!(self, DnsErrorKind::NxDomain | DnsErrorKind::NoData)
    }

    /// A short stable name: `nxdomain`, `nodata`, `servfail`, `refused`, `timeout`,
    /// `network`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsErrorKind::NxDomain => "nxdomain",
            DnsErrorKind::NoData => "nodata",
            DnsErrorKind::ServFail => "servfail",
            DnsErrorKind::Refused => "refused",
            DnsErrorKind::Timeout => "timeout",
            DnsErrorKind::Network => "network",
            DnsErrorKind::Other => "other",
        }
    }
}

/// A lookup that returned no records, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsError {
    /// The kind.
    pub kind: DnsErrorKind,
    /// The name asked (presentation form, no trailing dot).
    pub name: String,
    /// What the client said, for people (empty when the kind says it all).
    pub detail: String,
}

impl DnsError {
    /// An error of `kind` for `name`.
    pub fn new(kind: DnsErrorKind, name: impl Into<String>, detail: impl Into<String>) -> Self {
        DnsError {
            kind,
            name: name.into(),
            detail: detail.into(),
        }
    }

    /// See [`DnsErrorKind::is_negative`].
    pub fn is_negative(&self) -> bool {
        self.kind.is_negative()
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DnsErrorKind::NxDomain => "does not exist (NXDOMAIN)",
            DnsErrorKind::NoData => "has no record of that type (NODATA)",
            DnsErrorKind::ServFail => "lookup failed: the server answered SERVFAIL",
            DnsErrorKind::Refused => "lookup failed: the server answered REFUSED",
            DnsErrorKind::Timeout => "lookup failed: no answer in time",
            DnsErrorKind::Network => "lookup failed",
            DnsErrorKind::Other => "lookup failed",
        };
        write!(f, "{} {what}", self.name)?;
        if !self.detail.is_empty() && !matches!(self.kind, DnsErrorKind::NxDomain) {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for DnsError {}

/// The TTL of a negative answer (NXDOMAIN or NODATA): the smaller of the TTL of the SOA
/// record in its authority section and that SOA's MINIMUM field (RFC 2308 §5). Without an SOA
/// the denial may not be cached at all (0).
pub fn negative_ttl(soa: Option<(u32, u32)>) -> u32 {
    soa.map_or(0, |(ttl, minimum)| ttl.min(minimum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_s3_1_only_nxdomain_and_nodata_are_negative() {
        for (k, negative) in [
            (DnsErrorKind::NxDomain, true),
            (DnsErrorKind::NoData, true),
            (DnsErrorKind::ServFail, false),
            (DnsErrorKind::Refused, false),
            (DnsErrorKind::Timeout, false),
            (DnsErrorKind::Network, false),
            (DnsErrorKind::Other, false),
        ] {
            assert_eq!(k.is_negative(), negative, "{k:?}");
        }
    }

    #[test]
    fn rfc2308_s5_negative_ttl_is_the_smaller_of_soa_ttl_and_minimum() {
        assert_eq!(negative_ttl(Some((3600, 300))), 300);
        assert_eq!(negative_ttl(Some((60, 300))), 60);
        assert_eq!(negative_ttl(None), 0);
    }

    #[test]
    fn display_names_the_name() {
        let e = DnsError::new(DnsErrorKind::ServFail, "_mta-sts.example.com", "");
        assert_eq!(
            e.to_string(),
            "_mta-sts.example.com lookup failed: the server answered SERVFAIL"
        );
    }
}
