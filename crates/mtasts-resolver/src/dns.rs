//! Policy discovery (RFC 8461 §3.1): the `_mta-sts` TXT lookup through the workspace's DNS
//! edge ([`mtasts_net::dns`]), concluded by the core ([`Discovery::from_lookup`]).

use mtasts_core::sts::cache::Discovery;
use mtasts_core::sts::record::{STS_LABEL, select_sts_record_linted};
use mtasts_core::text::escape_bytes;
use mtasts_core::{Diagnostic, Severity};
use mtasts_net::dns::DnsLookup;
use serde::Serialize;

/// What one `_mta-sts` TXT lookup saw and concluded.
#[derive(Clone, Debug, Serialize)]
pub struct DiscoveryReport {
    /// The name queried.
    pub name: String,
    /// The TXT strings, each record's character-strings joined (§3.1). Empty on failure.
    pub records: Vec<String>,
    /// The conclusion, as the cache decisions take it.
    #[serde(serialize_with = "ser_discovery")]
    pub discovery: Discovery,
    /// What the record has that some deployed senders reject although this resolver accepts
    /// it (trailing whitespace…): accepted, and noted here.
    pub accepted_despite: Vec<String>,
}

fn ser_discovery<S: serde::Serializer>(d: &Discovery, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("result", d.kind())?;
    match d {
        Discovery::Record { id } => m.serialize_entry("id", id)?,
        other => m.serialize_entry("reason", &other.to_string())?,
    }
    m.end()
}

/// Looks up `_mta-sts.<domain>` and applies the §3.1 rules.
pub async fn discover(dns: &dyn DnsLookup, domain: &str) -> DiscoveryReport {
    let name = format!("{STS_LABEL}.{domain}");
    let lookup = dns.txt(&name).await;
    let records = match &lookup {
        Ok(a) => a
            .records
            .iter()
            // For people: the record as one line, anything unprintable escaped.
            .map(|r| escape_bytes(&r.concat()).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    let discovery = Discovery::from_lookup(lookup.as_ref().map(|a| a.records.as_slice()));
    let accepted_despite = match &lookup {
        Ok(a) => select_sts_record_linted(&a.records)
            .map(|(_, _, warnings)| {
                warnings
                    .iter()
                    .filter(|w| w.severity() == Severity::Error)
                    .map(|w| format!("{} ({})", w, w.code()))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    DiscoveryReport {
        name,
        records,
        discovery,
        accepted_despite,
    }
}
