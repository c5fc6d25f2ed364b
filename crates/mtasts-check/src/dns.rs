//! The checker's DNS observations, through the workspace's one DNS edge
//! ([`mtasts_net::dns`]): the TXT, MX (null MX, implicit MX) and A/AAAA (noting CNAMEs)
//! lookups as [`crate::obs`] records, and the DANE evidence (MX, addresses, TLSA with their AD
//! flags).

use std::sync::Arc;

use mtasts_core::dane::{Evidence, Lookup, Tlsa};
use mtasts_core::dns::DnsErrorKind;
use mtasts_net::dns::{DnsLookup, dane_evidence};

use crate::obs::{AddressLookup, MxLookup, TxtLookup};

/// The TXT RRset at `name`.
pub async fn txt(dns: &dyn DnsLookup, name: &str) -> TxtLookup {
    let started = std::time::Instant::now();
    let millis = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match dns.txt(name).await {
        Ok(a) => TxtLookup::Found {
            records: a.records,
            millis: a.millis,
        },
        Err(e) => match e.kind {
            DnsErrorKind::NxDomain => TxtLookup::NxDomain { millis: millis() },
            DnsErrorKind::NoData => TxtLookup::NoData { millis: millis() },
            kind => TxtLookup::Failed {
                kind,
                reason: e.to_string(),
                millis: millis(),
            },
        },
    }
}

/// The MX RRset of `domain`, read as RFC 7505 (null MX) and RFC 5321 §5.1 (implicit MX) say,
/// and whether the answer carried the AD flag.
pub async fn mx(dns: &dyn DnsLookup, domain: &str) -> (MxLookup, bool) {
    match dns.mx(domain).await {
        Ok(a) => {
            let records: Vec<(u16, String)> = a
                .records
                .into_iter()
                .map(|r| (r.preference, r.exchange))
                .collect();
            // RFC 7505: a single "0 ." record is a null MX.
            if records.len() == 1 && records[0].1.is_empty() {
                return (MxLookup::Null, a.authentic);
            }
            (MxLookup::Found { records }, a.authentic)
        }
        Err(e) => match e.kind {
            DnsErrorKind::NxDomain => (MxLookup::NxDomain, false),
            DnsErrorKind::NoData => (implicit_mx(dns, domain).await, false),
            kind => (
                MxLookup::Failed {
                    kind,
                    reason: e.to_string(),
                },
                false,
            ),
        },
    }
}

async fn implicit_mx(dns: &dyn DnsLookup, domain: &str) -> MxLookup {
    match addresses(dns, domain).await.0 {
        AddressLookup::Found { .. } => MxLookup::Implicit,
        _ => MxLookup::NoData,
    }
}

/// The A and AAAA records of `host`, and the target name when it is a CNAME.
pub async fn addresses(dns: &dyn DnsLookup, host: &str) -> (AddressLookup, Option<String>) {
    match dns.addresses(host).await {
        Ok(a) => (
            AddressLookup::Found {
                addresses: a.records.addresses,
            },
            a.records.cname,
        ),
        Err(e) => match e.kind {
            DnsErrorKind::NxDomain => (AddressLookup::NxDomain, None),
            DnsErrorKind::NoData => (AddressLookup::NoAddress, None),
            kind => (
                AddressLookup::Failed {
                    kind,
                    reason: e.to_string(),
                },
                None,
            ),
        },
    }
}

/// The DANE evidence for `domain` as a sender collects it ([`dane_evidence`]), plus, for a
/// host whose addresses are not DNSSEC-validated (where a sender does not look), its TLSA
/// records all the same, so the owner learns that they are ignored.
pub async fn dane(dns: &Arc<dyn DnsLookup>, domain: &str) -> Evidence {
    let mut e = dane_evidence(dns, domain).await;
    for h in &mut e.hosts {
        if h.tlsa.is_empty() && matches!(h.addresses, Lookup::Found { .. }) {
            let name = Tlsa::smtp_name(&h.host);
            let lookup = dns.tlsa_dnssec(&name).await;
            if matches!(lookup, Lookup::Found { .. }) {
                h.tlsa.push((name, lookup));
            }
        }
    }
    e
}
