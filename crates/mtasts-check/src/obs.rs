//! What the probes saw, as plain data: the input of the pure [`crate::assess`] step and the
//! `observations` part of the JSON report. Nothing here judges; it only records.

use std::net::{IpAddr, SocketAddr};

use mtasts_core::dns::DnsErrorKind;
use serde::Serialize;

pub use mtasts_core::sts::fetch::FetchStage;
pub use mtasts_core::tls::{CertVerdict, HandshakeFailure};
pub use mtasts_net::https::{FetchFailure, IpFamily, PolicyFetch};
pub use mtasts_net::tls::{CertSummary, TlsSession};

/// Everything observed about one domain.
#[derive(Clone, Debug, Serialize)]
pub struct Observations {
    /// The domain as given on the command line.
    pub domain: String,
    /// Its A-label form, lower case (what was queried).
    pub ascii: String,
    /// `_mta-sts.<domain>` TXT (RFC 8461 §3.1).
    pub sts_txt: TxtLookup,
    /// `_smtp._tls.<domain>` TXT (RFC 8460 §3).
    pub tlsrpt_txt: TxtLookup,
    /// For each `mailto:` rua of the TLS-RPT record: its domain and whether it can receive mail.
    pub rua_domains: Vec<RuaDomain>,
    /// The domain's MX RRset.
    pub mx: MxLookup,
    /// Whether the answer to the MX query carried the AD (authentic data) flag.
    pub mx_authentic: bool,
    /// The policy fetch (RFC 8461 §3.3), when an MTA-STS record was published.
    pub policy_fetch: Option<PolicyFetch>,
    /// Each MX host, in preference order.
    pub mx_hosts: Vec<MxHost>,
    /// The DANE lookups (RFC 7672): the MX RRset, each host's addresses and TLSA records, each
    /// with the AD flag of the resolver; for a host whose addresses are not validated the TLSA
    /// records are looked up all the same, to report them. `None` when not looked up.
    pub dane: Option<mtasts_core::dane::Evidence>,
    /// What the checking side could do, to tell the domain's faults from its own.
    pub checking: Checking,
}

/// How the checking side probed: what it was told to leave out, and whether its resolver
/// answers at all (asked only when a lookup of the domain timed out or hit a network error).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Checking {
    /// The resolvers asked (empty: the system's).
    pub resolvers: Vec<SocketAddr>,
    /// Whether the resolver answered a query outside the domain (the root's TXT), asked only
    /// when a lookup of the domain got no answer; `None` when not asked.
    pub resolver_answers: Option<bool>,
    /// SMTP was not probed (`--skip-smtp`).
    pub smtp_skipped: bool,
    /// Only addresses of this family were probed (SMTP and HTTPS; `-4`, `-6`).
    pub family: Option<IpFamily>,
}

/// One TXT lookup.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum TxtLookup {
    /// Records were returned (possibly unrelated ones).
    Found {
        /// Each record's character-strings.
        #[serde(serialize_with = "ser_strings")]
        records: Vec<Vec<Vec<u8>>>,
        /// Milliseconds the lookup took.
        millis: u64,
    },
    /// NXDOMAIN: the name does not exist.
    NxDomain {
        /// Milliseconds the lookup took.
        millis: u64,
    },
    /// NOERROR with no TXT record (NODATA).
    NoData {
        /// Milliseconds the lookup took.
        millis: u64,
    },
    /// SERVFAIL, REFUSED, a timeout or a network error: nothing is known.
    Failed {
        /// What kind of failure.
        kind: DnsErrorKind,
        /// Why, for people.
        reason: String,
        /// Milliseconds the lookup took.
        millis: u64,
    },
}

impl TxtLookup {
    /// Milliseconds the lookup took.
    pub fn millis(&self) -> u64 {
        match self {
            TxtLookup::Found { millis, .. }
            | TxtLookup::NxDomain { millis }
            | TxtLookup::NoData { millis }
            | TxtLookup::Failed { millis, .. } => *millis,
        }
    }
}

fn ser_strings<S: serde::Serializer>(r: &[Vec<Vec<u8>>], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(r.len()))?;
    for rec in r {
        let strings: Vec<String> = rec
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        seq.serialize_element(&strings)?;
    }
    seq.end()
}

/// A `mailto:` reporting address's domain and its MX.
#[derive(Clone, Debug, Serialize)]
pub struct RuaDomain {
    /// The URI as published.
    pub uri: String,
    /// The domain after `@`.
    pub domain: String,
    /// Whether mail can be delivered there (an MX, or an address as implicit MX); in JSON
    /// `{"result": "yes"}` or `{"result": "no", "reason": …}`.
    #[serde(serialize_with = "ser_accepts")]
    pub accepts_mail: Result<(), String>,
}

fn ser_accepts<S: serde::Serializer>(r: &Result<(), String>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    match r {
        Ok(()) => m.serialize_entry("result", "yes")?,
        Err(reason) => {
            m.serialize_entry("result", "no")?;
            m.serialize_entry("reason", reason)?;
        }
    }
    m.end()
}

/// The MX lookup.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum MxLookup {
    /// MX records (sorted by preference, then name).
    Found {
        /// (preference, host) pairs, host without the trailing dot.
        records: Vec<(u16, String)>,
    },
    /// A null MX (RFC 7505): `0 .`.
    Null,
    /// No MX record: the domain's own address is the implicit MX (RFC 5321 §5.1).
    Implicit,
    /// The domain does not exist.
    NxDomain,
    /// No MX and no address: mail cannot be delivered.
    NoData,
    /// The lookup failed.
    Failed {
        /// What kind of failure.
        kind: DnsErrorKind,
        /// Why, for people.
        reason: String,
    },
}

/// One MX host and what was seen on each of its addresses.
#[derive(Clone, Debug, Serialize)]
pub struct MxHost {
    /// The host name, as in the MX record.
    pub name: String,
    /// Its preference (0 for an implicit MX).
    pub preference: u16,
    /// The name the MX host is an alias of, when its address lookup went through a CNAME.
    pub cname_target: Option<String>,
    /// Its addresses.
    pub addresses: AddressLookup,
    /// The SMTP probe of each address.
    pub smtp: Vec<SmtpProbe>,
}

/// An A/AAAA lookup.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum AddressLookup {
    /// The addresses.
    Found {
        /// Each address.
        addresses: Vec<IpAddr>,
    },
    /// NXDOMAIN.
    NxDomain,
    /// The name exists but has no A or AAAA record.
    NoAddress,
    /// The lookup failed.
    Failed {
        /// What kind of failure.
        kind: DnsErrorKind,
        /// Why, for people.
        reason: String,
    },
}

/// The steps of an SMTP probe, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpStage {
    /// The TCP connection.
    Connect,
    /// The 220 greeting.
    Greeting,
    /// EHLO.
    Ehlo,
    /// The STARTTLS command.
    Starttls,
    /// The TLS handshake.
    Handshake,
    /// EHLO again, inside TLS.
    EhloTls,
    /// `MAIL FROM:<>`.
    Mail,
    /// `RCPT TO:<postmaster@domain>`.
    Rcpt,
}

/// An SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SmtpReply {
    /// The three-digit code.
    pub code: u16,
    /// The text, lines joined by a space.
    pub text: String,
}

impl std::fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Where and why an SMTP probe stopped early.
#[derive(Clone, Debug, Serialize)]
pub struct SmtpFailure {
    /// The step that failed.
    pub stage: SmtpStage,
    /// What happened.
    pub reason: String,
    /// The server's reply, when it answered with an error code.
    pub reply: Option<SmtpReply>,
    /// Whether the step timed out.
    pub timeout: bool,
    /// Why the TLS handshake failed, at the handshake stage.
    pub handshake: Option<HandshakeFailure>,
}

/// One SMTP probe of one address: connect, EHLO, STARTTLS, handshake, EHLO, `MAIL FROM:<>`,
/// `RCPT TO:<postmaster@domain>`, `RSET`, `QUIT`. No message is ever sent.
#[derive(Clone, Debug, Serialize)]
pub struct SmtpProbe {
    /// The address and port.
    pub address: SocketAddr,
    /// Milliseconds from connect to the 220 greeting.
    pub greeting_millis: Option<u64>,
    /// The EHLO keywords before TLS (upper case).
    pub extensions: Vec<String>,
    /// Whether STARTTLS was advertised (`None` when EHLO was not reached).
    pub starttls_offered: Option<bool>,
    /// The TLS session, when the handshake completed.
    pub tls: Option<TlsSession>,
    /// The reply to `MAIL FROM:<>`.
    pub mail: Option<SmtpReply>,
    /// The reply to `RCPT TO:<postmaster@domain>`.
    pub rcpt: Option<SmtpReply>,
    /// Why the probe stopped early, if it did.
    pub failure: Option<SmtpFailure>,
}
