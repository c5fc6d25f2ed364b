//! The declarative scenario format (TOML).
//!
//! A scenario is a set of mail domains under the reserved `.test` TLD. Each domain says what
//! the lab publishes for it in DNS (`_mta-sts` and `_smtp._tls` TXT records, MX records, any
//! other name through the `dns` table), how its policy host `mta-sts.<domain>` behaves, how
//! each of its SMTP hosts behaves, which certificate every host presents, and what a correct
//! sender and checker should conclude (`expect`). `docs/lab.md` documents every field.
//!
//! Parsing never panics: every problem is a [`ScenarioError`] naming the file, the domain and
//! the field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::ScenarioError;
use crate::limits;

/// A parsed and validated scenario. Domain, host and DNS names are normalised: lower case,
/// A-labels (IDNA), no trailing dot, and `hosts`/`dns` keys made absolute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario-wide settings.
    #[serde(default)]
    pub lab: LabSection,
    /// The mail domains, keyed by name (A-label form after parsing).
    #[serde(default)]
    pub domains: BTreeMap<String, DomainSpec>,
}

/// The `[lab]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSection {
    /// A short name for the scenario, printed by `mtasts-lab up`.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// TTL of every record, in seconds, unless a `dns` entry sets its own. Default 300.
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Simulated network round-trip time in milliseconds (default 0): every DNS answer waits
    /// one RTT, every SMTP reply (greeting included) one RTT, the STARTTLS handshake one
    /// more, and an HTTPS policy response three (TCP, TLS, request). Loopback has none of
    /// the latency a client meets on the internet; benchmarks set this to compare clients
    /// under it. At most 10,000.
    #[serde(default)]
    pub rtt_ms: Option<u64>,
}

/// One mail domain: `[domains."name.test"]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    /// What this domain demonstrates, for humans. Required.
    pub comment: String,
    /// The name as written in the file when it differs from the A-label key (IDN domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicode_name: Option<String>,
    /// TXT records at `_mta-sts.<domain>`; each is a string or a list of character-strings.
    #[serde(default)]
    pub sts_txt: Vec<TxtValue>,
    /// TXT records at `_smtp._tls.<domain>` (TLS-RPT).
    #[serde(default)]
    pub tlsrpt_txt: Vec<TxtValue>,
    /// MX records of the domain: `"10 mx1.example.test"`, `"mx1.example.test"` (preference
    /// 10) or `"0 ."` (null MX, RFC 7505).
    #[serde(default)]
    pub mx: Vec<MxSpec>,
    /// The policy host `mta-sts.<domain>`. Absent: no policy host (no A record, no cert).
    #[serde(default)]
    pub policy: Option<PolicySpec>,
    /// SMTP hosts, keyed by name relative to the domain (see [`resolve_relative_name`]).
    #[serde(default)]
    pub hosts: BTreeMap<String, HostSpec>,
    /// Extra records and DNS faults per name, keyed like `hosts`.
    #[serde(default)]
    pub dns: BTreeMap<String, DnsNameSpec>,
    /// The domain's zone is DNSSEC-signed: every answer for a name in it (records, NXDOMAIN
    /// and NODATA alike) carries the AD flag, as a validating resolver would set it, to a
    /// query that asks for it (AD or DO set, RFC 6840 §5.7). A name's own `dnssec_signed`
    /// overrides it (`false`: an unsigned delegation). Nothing is really signed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dnssec_signed: bool,
    /// What a correct sender and checker conclude about this domain.
    #[serde(default)]
    pub expect: Option<Expectations>,
}

/// Machine-readable expectations for a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// What an RFC 8461 sender does with mail for this domain (no cached policy).
    pub sender: SenderExpectation,
    /// A short conclusion a checker should reach.
    pub checker: String,
    /// Finding ids at warning or error level the checker reports, exactly (`mtasts check`).
    #[serde(default)]
    pub findings: Vec<String>,
    /// Info-level finding ids the checker must also report (a subset check: timing-based
    /// notes such as a slow greeting may appear elsewhere under load).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<String>,
}

/// What an RFC 8461 sender does with a message for the domain, with no cached policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderExpectation {
    /// A valid policy applies and an MX passes validation: deliver over validated TLS.
    DeliverSecurely,
    /// Deliver, and report a failure through TLS-RPT (testing mode failure, or a valid TXT
    /// record whose policy cannot be fetched or parsed, so delivery goes on without MTA-STS).
    DeliverAndReport,
    /// `enforce` and no MX passes: a temporary failure, the message stays queued.
    Defer,
    /// No MTA-STS policy applies (no record, an invalid or ambiguous record, mode `none`).
    NoPolicy,
    /// The domain accepts no mail (null MX, or every MX answers 5xx): the message bounces.
    Bounce,
}

/// A TXT record: one string, or several character-strings of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TxtValue {
    /// One string; longer than 255 bytes it is split into 255-byte character-strings.
    Single(String),
    /// Character-strings of one TXT record, exactly as given.
    Split(Vec<String>),
}

impl TxtValue {
    /// The character-strings of the record as they go on the wire.
    pub fn character_strings(&self) -> Vec<Vec<u8>> {
        match self {
            TxtValue::Single(s) => {
                let bytes = s.as_bytes();
                if bytes.is_empty() {
                    return vec![Vec::new()];
                }
                bytes.chunks(255).map(<[u8]>::to_vec).collect()
            }
            TxtValue::Split(parts) => parts.iter().map(|p| p.as_bytes().to_vec()).collect(),
        }
    }

    /// The joined record text (how a resolver presents it to MTA-STS, RFC 8461 §3.1).
    pub fn joined(&self) -> String {
        match self {
            TxtValue::Single(s) => s.clone(),
            TxtValue::Split(parts) => parts.concat(),
        }
    }
}

/// An MX record: preference and exchange name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxSpec {
    /// MX preference.
    pub preference: u16,
    /// The exchange, normalised; `"."` for a null MX.
    pub exchange: String,
}

impl MxSpec {
    /// Is this the null MX (`0 .`, RFC 7505)?
    pub fn is_null(&self) -> bool {
        self.exchange == "."
    }

    fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let (preference, exchange) = match parts.as_slice() {
            [exchange] => (10, *exchange),
            [pref, exchange] => (
                pref.parse::<u16>()
                    .map_err(|_| format!("MX preference {pref:?} is not a number 0-65535"))?,
                *exchange,
            ),
            _ => {
                return Err(format!(
                    "MX {s:?}: expected \"PREFERENCE NAME\" or \"NAME\""
                ));
            }
        };
        let exchange = if exchange == "." {
            ".".to_owned()
        } else {
            normalize_name(exchange).map_err(|e| format!("MX {s:?}: {e}"))?
        };
        Ok(Self {
            preference,
            exchange,
        })
    }
}

impl fmt::Display for MxSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.preference, self.exchange)
    }
}

impl Serialize for MxSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MxSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MxSpec::parse(&s).map_err(de::Error::custom)
    }
}

/// An address in an `a` list: a loopback IPv4 literal, the HTTPS policy listener, or the
/// addresses of an SMTP host of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrRef {
    /// A literal address; only 127.0.0.0/8 is accepted so that nothing leaves the machine.
    Literal(Ipv4Addr),
    /// `"https"`: the address of the shared policy-host listener.
    Https,
    /// `"host:NAME"`: the addresses of the SMTP host NAME (all its backends).
    Host(String),
}

impl AddrRef {
    fn parse(s: &str) -> Result<Self, String> {
        if s == "https" {
            return Ok(AddrRef::Https);
        }
        if let Some(name) = s.strip_prefix("host:") {
            return Ok(AddrRef::Host(normalize_name(name)?));
        }
        let ip: Ipv4Addr = s
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 address, \"https\" or \"host:NAME\""))?;
        if !ip.is_loopback() {
            return Err(format!(
                "{ip} is not in 127.0.0.0/8: the lab only publishes loopback addresses"
            ));
        }
        Ok(AddrRef::Literal(ip))
    }
}

impl fmt::Display for AddrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrRef::Literal(ip) => write!(f, "{ip}"),
            AddrRef::Https => f.write_str("https"),
            AddrRef::Host(h) => write!(f, "host:{h}"),
        }
    }
}

impl Serialize for AddrRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddrRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AddrRef::parse(&s).map_err(de::Error::custom)
    }
}

/// A DNS fault injected at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsFault {
    /// No fault (used by mutations to clear one).
    None,
    /// NXDOMAIN: the name does not exist.
    Nxdomain,
    /// NOERROR with an empty answer.
    Nodata,
    /// SERVFAIL.
    Servfail,
    /// What a validating resolver answers for a name whose signatures do not validate
    /// ("bogus", RFC 4035 §5.5): SERVFAIL, no AD, with the Extended DNS Error "DNSSEC Bogus"
    /// (RFC 8914 §4.7).
    Bogus,
    /// REFUSED.
    Refused,
    /// No answer at all: the client times out.
    Timeout,
}

/// Records and behaviour of one DNS name (`[domains."d".dns."name"]`).
///
/// In a scenario, a record field replaces the records of that type generated from the domain
/// (`sts_txt`, `mx`, the policy host and SMTP host addresses). In a `set-dns` mutation, a
/// present field replaces that aspect of the name and an absent one leaves it unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsNameSpec {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// TXT records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txt: Option<Vec<TxtValue>>,
    /// A records: loopback literals, `"https"` or `"host:NAME"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<Vec<AddrRef>>,
    /// AAAA records (data only: only `::1` is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aaaa: Option<Vec<Ipv6Addr>>,
    /// MX records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mx: Option<Vec<MxSpec>>,
    /// A CNAME to this target (absolute). Other records at the name are then not served.
    /// In a mutation, `""` removes the CNAME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    /// TLSA records as `"usage selector matching-type hex"`, e.g. `"3 1 1 ab12..."`. They
    /// replace the records an SMTP host's `tlsa` knob derives for this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlsa: Option<Vec<String>>,
    /// A fault answered instead of the records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<DnsFault>,
    /// Record types the fault applies to (e.g. `["TXT"]`); empty or absent: all types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_types: Option<Vec<String>>,
    /// Delay before answering queries for this name, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Set the AD ("authentic data", DNSSEC-validated) flag on answers for this name (`true`)
    /// or never (`false`), whatever the domain's `dnssec_signed` says. Nothing is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec_signed: Option<bool>,
    /// TTL of the records at this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

impl DnsNameSpec {
    /// Whether this entry decides the name's addresses itself (`cname`, `a` or a `fault`), in
    /// which case an MX target with this name gets no default SMTP host.
    pub fn controls_addresses(&self) -> bool {
        self.cname.is_some() || self.a.is_some() || self.fault.is_some_and(|f| f != DnsFault::None)
    }
}

/// Which certificate a host presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertKind {
    /// Issued by the lab intermediate (root → intermediate → leaf), full chain served.
    Valid,
    /// Like `valid`, but expired a year ago.
    Expired,
    /// Like `valid`, but valid only from a year from now.
    NotYetValid,
    /// Like `valid`, but for `wrong-name.invalid` instead of the host name.
    WrongName,
    /// Like `valid`, but for `*.<parent of the host>`.
    Wildcard,
    /// A self-signed certificate for the host name.
    SelfSigned,
    /// Issued for the host name by a CA the lab does not publish as trusted.
    UntrustedCa,
    /// Issued by the lab intermediate, but only the leaf is served (no intermediate).
    MissingIntermediate,
}

/// A certificate choice: `"valid"` or `{ kind = "valid", names = ["other.test"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSpec {
    /// The kind.
    pub kind: CertKind,
    /// Subject alternative names replacing the default (the host name; for `wildcard`
    /// `*.<parent>`, for `wrong-name` `wrong-name.invalid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
}

impl Default for CertSpec {
    fn default() -> Self {
        CertSpec {
            kind: CertKind::Valid,
            names: None,
        }
    }
}

impl From<CertKind> for CertSpec {
    fn from(kind: CertKind) -> Self {
        CertSpec { kind, names: None }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertTable {
    kind: CertKind,
    #[serde(default)]
    names: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for CertSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CertSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a certificate kind (\"valid\", \"expired\", \"not-yet-valid\", \"wrong-name\", \
                     \"wildcard\", \"self-signed\", \"untrusted-ca\", \"missing-intermediate\") \
                     or a table { kind, names }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CertSpec, E> {
                let kind = CertKind::deserialize(s.into_deserializer())?;
                Ok(CertSpec { kind, names: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CertSpec, A::Error> {
                let t = CertTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(CertSpec {
                    kind: t.kind,
                    names: t.names,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// TLS versions offered by the policy host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3 (rustls).
    #[default]
    #[serde(rename = "modern")]
    Modern,
    /// TLS 1.2 only (rustls).
    #[serde(rename = "tls1.2")]
    Tls12,
    /// TLS 1.3 only (rustls).
    #[serde(rename = "tls1.3")]
    Tls13,
    /// TLS 1.0 only (OpenSSL, security level 0).
    #[serde(rename = "tls1.0")]
    Tls10,
    /// TLS 1.1 only (OpenSSL, security level 0).
    #[serde(rename = "tls1.1")]
    Tls11,
    /// TLS 1.0 and 1.1 (OpenSSL, security level 0).
    #[serde(rename = "tls1.0-1.1")]
    Tls10To11,
}

impl TlsVersions {
    /// Served by OpenSSL because rustls cannot speak these versions.
    pub fn is_legacy(self) -> bool {
        matches!(
            self,
            TlsVersions::Tls10 | TlsVersions::Tls11 | TlsVersions::Tls10To11
        )
    }
}

/// What the policy host does with a connection before TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockMode {
    /// Serve normally.
    #[default]
    None,
    /// Close the connection as soon as the ClientHello names this host.
    Reset,
    /// Read the ClientHello and never answer (bounded by the lab's hang limit).
    Hang,
}

/// Line endings of a generated policy body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineEnding {
    /// `\n`
    #[default]
    Lf,
    /// `\r\n`
    Crlf,
}

/// Trickle the body: `chunk_bytes` every `interval_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowBody {
    /// Bytes written per interval (at least 1).
    pub chunk_bytes: usize,
    /// Pause between chunks, in milliseconds.
    pub interval_ms: u64,
}

/// Pad the policy to `bytes` bytes with `pad: xxx` lines (unknown keys, so the policy stays
/// valid apart from its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oversize {
    /// Total body size.
    pub bytes: usize,
    /// Send with `Transfer-Encoding: chunked` and no `Content-Length`.
    #[serde(default)]
    pub chunked: bool,
}

/// The policy host `mta-sts.<domain>` and what it serves at `/.well-known/mta-sts.txt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// `version:` line; default `STSv1`; `""` leaves the line out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `mode:` line (free text, so invalid modes can be served); absent: no line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `max_age:` line; absent: no line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// `mx:` lines, verbatim.
    #[serde(default)]
    pub mx: Vec<String>,
    /// Lines appended verbatim after the generated ones.
    #[serde(default)]
    pub extra_lines: Vec<String>,
    /// Line endings of the generated body.
    #[serde(default)]
    pub line_ending: LineEnding,
    /// The body, verbatim; replaces every generated line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// HTTP status; default 200, or 301 when `redirect` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Content-Type`; default `text/plain`; `""` sends no Content-Type header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Extra response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `Location` header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// Delay after reading the request, before the status line, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// Trickle the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_body: Option<SlowBody>,
    /// Pad the body to a size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversize: Option<Oversize>,
    /// Send the body with chunked transfer encoding.
    #[serde(default)]
    pub chunked: bool,
    /// Declare the full `Content-Length`, send half the body, close the connection.
    #[serde(default)]
    pub close_mid_body: bool,
    /// TLS versions offered.
    #[serde(default)]
    pub tls: TlsVersions,
    /// Certificate presented for `mta-sts.<domain>`.
    #[serde(default)]
    pub cert: CertSpec,
    /// Refuse or stall connections before TLS.
    #[serde(default)]
    pub block: BlockMode,
}

impl PolicySpec {
    /// The response body the host serves, including `oversize` padding.
    pub fn render_body(&self) -> Vec<u8> {
        let eol = match self.line_ending {
            LineEnding::Lf => "\n",
            LineEnding::Crlf => "\r\n",
        };
        let mut body = match &self.body {
            Some(body) => body.clone(),
            None => {
                let mut lines = Vec::new();
                let version = self.version.clone().unwrap_or_else(|| "STSv1".to_owned());
                if !version.is_empty() {
                    lines.push(format!("version: {version}"));
                }
                if let Some(mode) = &self.mode {
                    lines.push(format!("mode: {mode}"));
                }
                for mx in &self.mx {
                    lines.push(format!("mx: {mx}"));
                }
                if let Some(max_age) = self.max_age {
                    lines.push(format!("max_age: {max_age}"));
                }
                lines.extend(self.extra_lines.iter().cloned());
                let mut s = lines.join(eol);
                s.push_str(eol);
                s
            }
        }
        .into_bytes();
        if let Some(over) = self.oversize {
            while body.len() < over.bytes {
                let room = over.bytes - body.len();
                // "pad: " + x's + eol, at most 1000 bytes per line.
                let overhead = 5 + eol.len();
                if room <= overhead {
                    body.extend(std::iter::repeat_n(b'\n', room));
                    break;
                }
                let xs = (room - overhead).min(1000);
                body.extend_from_slice(b"pad: ");
                body.extend(std::iter::repeat_n(b'x', xs));
                body.extend_from_slice(eol.as_bytes());
            }
        }
        body
    }

    /// The HTTP status served.
    pub fn effective_status(&self) -> u16 {
        match (self.status, &self.redirect) {
            (Some(s), _) => s,
            (None, Some(_)) => 301,
            (None, None) => 200,
        }
    }

    /// Chunked transfer encoding (explicit, or through `oversize.chunked`).
    pub fn is_chunked(&self) -> bool {
        self.chunked || self.oversize.is_some_and(|o| o.chunked)
    }
}

/// How an SMTP host treats STARTTLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StarttlsMode {
    /// Advertise STARTTLS and do the handshake.
    #[default]
    Offer,
    /// Do not advertise STARTTLS (the stripping attack); the command is answered with 502.
    Strip,
    /// Advertise it, answer the command with `454 4.7.0 TLS not available`.
    Refuse,
    /// Advertise it, answer 220, then fail the handshake with a fatal TLS alert.
    HandshakeFailure,
}

/// SMTP stages at which a host can answer with a chosen reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpStage {
    /// The greeting (the connection is closed after it).
    Connect,
    /// EHLO and HELO.
    Ehlo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA (before the message).
    Data,
    /// After the final `.` of the message (the message is not stored).
    DataEnd,
}

/// Answer `code text` at `stage` instead of the normal reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyFault {
    /// The stage.
    pub stage: SmtpStage,
    /// A 4xx or 5xx code.
    pub code: u16,
    /// Reply text; default "lab-injected failure".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One SMTP host (an MX target): `[domains."d".hosts."mx1"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The certificate presented after STARTTLS.
    #[serde(default)]
    pub cert: CertSpec,
    /// STARTTLS behaviour.
    #[serde(default)]
    pub starttls: StarttlsMode,
    /// Delay before the 220 greeting, in milliseconds.
    #[serde(default)]
    pub greeting_delay_ms: u64,
    /// Host name in the greeting and EHLO reply; default the host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// Injected replies.
    #[serde(default)]
    pub replies: Vec<ReplyFault>,
    /// A load-balanced pool: each backend gets its own address (all in the host's A RRset)
    /// and may override the host's settings. Absent: one backend.
    #[serde(default)]
    pub backends: Vec<BackendSpec>,
    /// TLSA records at `_25._tcp.<host>` derived from the certificates the host really
    /// presents (every backend's): `"3 1 1"` (DANE-EE, SHA-256 of the leaf's public key),
    /// `"2 1 1"` (DANE-TA, of the last certificate served), any `"usage selector matching"`
    /// with usage 0-3, selector 0-1, matching type 0-2, and `"… mismatch"` for data that
    /// matches no certificate (every bit inverted). Derived when the host is installed (at
    /// start, and by `set-host`); `set-cert` keeps them, as a forgotten TLSA update does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlsa: Vec<TlsaKnob>,
}

/// A TLSA record derived from a host's certificates: `"3 1 1"`, `"2 1 1 mismatch"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlsaKnob {
    /// Certificate usage (0-3): 1 and 3 take the leaf, 0 and 2 the last certificate served.
    pub usage: u8,
    /// Selector: 0 the certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 the data itself, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// Publish data that matches no certificate (the derived data with every bit inverted).
    pub mismatch: bool,
}

impl TlsaKnob {
    /// Parses `"U S M"` or `"U S M mismatch"`.
    pub fn parse(s: &str) -> Result<TlsaKnob, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let (nums, mismatch) = match parts.as_slice() {
            [u, sel, m] => ([*u, *sel, *m], false),
            [u, sel, m, "mismatch"] => ([*u, *sel, *m], true),
            _ => {
                return Err(format!(
                    "TLSA knob {s:?}: expected \"usage selector matching-type\", optionally followed by \"mismatch\""
                ));
            }
        };
        let num = |x: &str, max: u8, what: &str| {
            x.parse::<u8>()
                .ok()
                .filter(|v| *v <= max)
                .ok_or_else(|| format!("TLSA knob {s:?}: the {what} must be 0 to {max}"))
        };
        Ok(TlsaKnob {
            usage: num(nums[0], 3, "usage")?,
            selector: num(nums[1], 1, "selector")?,
            matching: num(nums[2], 2, "matching type")?,
            mismatch,
        })
    }
}

impl fmt::Display for TlsaKnob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.usage, self.selector, self.matching)?;
        if self.mismatch {
            f.write_str(" mismatch")?;
        }
        Ok(())
    }
}

impl Serialize for TlsaKnob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TlsaKnob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TlsaKnob::parse(&s).map_err(de::Error::custom)
    }
}

/// Overrides for one backend of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// Certificate override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertSpec>,
    /// STARTTLS override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<StarttlsMode>,
    /// Greeting delay override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting_delay_ms: Option<u64>,
    /// Replies override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<Vec<ReplyFault>>,
}

/// The settings one SMTP backend runs with (host settings with backend overrides applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveBackend {
    /// Certificate.
    pub cert: CertSpec,
    /// STARTTLS behaviour.
    pub starttls: StarttlsMode,
    /// Greeting delay in milliseconds.
    pub greeting_delay_ms: u64,
    /// Banner name.
    pub banner: Option<String>,
    /// Injected replies.
    pub replies: Vec<ReplyFault>,
}

impl HostSpec {
    /// Number of backends (at least one).
    pub fn backend_count(&self) -> usize {
        self.backends.len().max(1)
    }

    /// The effective settings of backend `i`.
    pub fn effective_backend(&self, i: usize) -> EffectiveBackend {
        let b = self.backends.get(i).cloned().unwrap_or_default();
        EffectiveBackend {
            cert: b.cert.unwrap_or_else(|| self.cert.clone()),
            starttls: b.starttls.unwrap_or(self.starttls),
            greeting_delay_ms: b.greeting_delay_ms.unwrap_or(self.greeting_delay_ms),
            banner: self.banner.clone(),
            replies: b.replies.unwrap_or_else(|| self.replies.clone()),
        }
    }
}

/// Normalise a DNS name: strip one trailing dot, lower-case ASCII, IDNA A-labels for
/// non-ASCII input; labels of 1-63 characters from `a-z 0-9 - _`; at most 253 characters.
pub fn normalize_name(input: &str) -> Result<String, String> {
    let trimmed = input.strip_suffix('.').unwrap_or(input);
    if trimmed.is_empty() {
        return Err(format!("{input:?} is not a host name"));
    }
    let ascii = if trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(trimmed).map_err(|e| format!("{input:?} is not a valid IDN: {e}"))?
    };
    if ascii.len() > 253 {
        return Err(format!("{input:?} is longer than 253 characters"));
    }
    for label in ascii.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "{input:?} has an empty label or one longer than 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{input:?}: label {label:?} has characters other than a-z, 0-9, '-', '_'"
            ));
        }
    }
    Ok(ascii)
}

/// Resolve a `hosts`/`dns` key of `domain`: `"@"` is the domain itself; a key ending in `.`
/// is absolute; a key equal to the domain or ending in `.<domain>` is taken as it is;
/// anything else is relative (`"mx1"` → `mx1.<domain>`).
pub fn resolve_relative_name(key: &str, domain: &str) -> Result<String, String> {
    if key == "@" {
        return Ok(domain.to_owned());
    }
    if key.ends_with('.') {
        return normalize_name(key);
    }
    let n = normalize_name(key)?;
    if n == domain || n.ends_with(&format!(".{domain}")) {
        Ok(n)
    } else {
        normalize_name(&format!("{n}.{domain}"))
    }
}

fn is_test_name(name: &str) -> bool {
    name == "test" || name.ends_with(".test")
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::new(&name, None, None, format!("cannot read: {e}")))?;
        Scenario::from_toml_str(&text, &name)
    }

    /// Parse and validate scenario text; `source_name` names it in errors.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Scenario, ScenarioError> {
        let raw: Scenario = toml::from_str(text)
            .map_err(|e| ScenarioError::new(source_name, None, None, e.to_string().trim_end()))?;
        raw.validated(source_name)
    }

    /// The names of the domains (A-labels).
    pub fn domain_names(&self) -> impl Iterator<Item = &str> {
        self.domains.keys().map(String::as_str)
    }

    /// The expectations of every domain that has them.
    pub fn expectations(&self) -> impl Iterator<Item = (&str, &Expectations)> {
        self.domains
            .iter()
            .filter_map(|(d, s)| s.expect.as_ref().map(|e| (d.as_str(), e)))
    }

    /// The record TTL in effect when a name sets none.
    pub fn default_ttl(&self) -> u32 {
        self.lab.ttl.unwrap_or(300)
    }

    /// The simulated round-trip time (`[lab] rtt_ms`, capped at 10 s).
    pub fn rtt(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lab.rtt_ms.unwrap_or(0).min(10_000))
    }

    /// Normalise names and check every rule the type system cannot express.
    fn validated(self, src: &str) -> Result<Scenario, ScenarioError> {
        let mut domains = BTreeMap::new();
        let mut host_owner: BTreeMap<String, String> = BTreeMap::new();
        let mut dns_owner: BTreeMap<String, String> = BTreeMap::new();
        for (key, mut spec) in self.domains {
            let err =
                |field: Option<&str>, msg: String| ScenarioError::new(src, Some(&key), field, msg);
            let name = normalize_name(&key).map_err(|e| err(None, e))?;
            if !is_test_name(&name) {
                return Err(err(
                    None,
                    "domains must be under the reserved .test TLD".to_owned(),
                ));
            }
            if name != key {
                spec.unicode_name.get_or_insert_with(|| key.clone());
            }
            if spec.comment.trim().is_empty() {
                return Err(err(
                    Some("comment"),
                    "every domain needs a comment saying what it demonstrates".to_owned(),
                ));
            }
            if let Some(policy) = &spec.policy {
                validate_policy(policy).map_err(|(f, m)| err(Some(&format!("policy.{f}")), m))?;
            }
            let mut hosts = BTreeMap::new();
            for (hkey, host) in std::mem::take(&mut spec.hosts) {
                let field = format!("hosts.{hkey}");
                let hname =
                    resolve_relative_name(&hkey, &name).map_err(|e| err(Some(&field), e))?;
                if !is_test_name(&hname) {
                    return Err(err(Some(&field), "hosts must be under .test".to_owned()));
                }
                validate_host(&host).map_err(|(f, m)| err(Some(&format!("{field}.{f}")), m))?;
                if let Some(other) = host_owner.insert(hname.clone(), name.clone()) {
                    return Err(err(
                        Some(&field),
                        format!("host {hname} is already defined by domain {other}"),
                    ));
                }
                hosts.insert(hname, host);
            }
            spec.hosts = hosts;
            let mut dns = BTreeMap::new();
            for (dkey, entry) in std::mem::take(&mut spec.dns) {
                let field = format!("dns.{dkey}");
                let dname =
                    resolve_relative_name(&dkey, &name).map_err(|e| err(Some(&field), e))?;
                if !is_test_name(&dname) {
                    return Err(err(Some(&field), "names must be under .test".to_owned()));
                }
                let entry = validate_dns_entry(entry)
                    .map_err(|(f, m)| err(Some(&format!("{field}.{f}")), m))?;
                if let Some(other) = dns_owner.insert(dname.clone(), name.clone()) {
                    return Err(err(
                        Some(&field),
                        format!("name {dname} already has a dns entry in domain {other}"),
                    ));
                }
                dns.insert(dname, entry);
            }
            spec.dns = dns;
            for (i, mx) in spec.mx.iter().enumerate() {
                if mx.is_null() && spec.mx.len() > 1 {
                    return Err(err(
                        Some(&format!("mx[{i}]")),
                        "a null MX (\".\") must be the only MX record".to_owned(),
                    ));
                }
            }
            if domains.insert(name.clone(), spec).is_some() {
                return Err(err(
                    None,
                    format!("two domains normalise to the same name {name}"),
                ));
            }
        }
        // References between domains: host:NAME addresses must name a defined host.
        for (dname, spec) in &domains {
            for (name, entry) in &spec.dns {
                for a in entry.a.iter().flatten() {
                    if let AddrRef::Host(h) = a {
                        let auto = domains.values().any(|d| {
                            d.mx.iter()
                                .chain(d.dns.values().flat_map(|e| e.mx.iter().flatten()))
                                .any(|m| &m.exchange == h)
                        }) && !domains
                            .values()
                            .any(|d| d.dns.get(h).is_some_and(DnsNameSpec::controls_addresses));
                        let defined = host_owner.contains_key(h) || auto;
                        if !defined {
                            return Err(ScenarioError::new(
                                src,
                                Some(dname),
                                Some(&format!("dns.{name}.a")),
                                format!("host:{h} names no SMTP host of the scenario"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(Scenario {
            lab: self.lab,
            domains,
        })
    }
}

pub(crate) fn validate_policy(p: &PolicySpec) -> Result<(), (String, String)> {
    let bad = |f: &str, m: String| Err((f.to_owned(), m));
    if let Some(s) = p.status
        && !(100..=599).contains(&s)
    {
        return bad("status", format!("{s} is not an HTTP status (100-599)"));
    }
    if p.delay_ms > limits::MAX_CONFIGURED_DELAY.as_millis() as u64 {
        return bad(
            "delay_ms",
            format!(
                "at most {} ms",
                limits::MAX_CONFIGURED_DELAY.as_millis() as u64
            ),
        );
    }
    if let Some(slow) = p.slow_body {
        if slow.chunk_bytes == 0 {
            return bad("slow_body.chunk_bytes", "must be at least 1".to_owned());
        }
        if slow.interval_ms > limits::MAX_CONFIGURED_DELAY.as_millis() as u64 {
            return bad("slow_body.interval_ms", "too long".to_owned());
        }
    }
    if let Some(o) = p.oversize
        && o.bytes > limits::MAX_POLICY_BODY
    {
        return bad(
            "oversize.bytes",
            format!("at most {} bytes", limits::MAX_POLICY_BODY),
        );
    }
    if p.body.is_some()
        && (p.mode.is_some()
            || p.max_age.is_some()
            || !p.mx.is_empty()
            || p.version.is_some()
            || !p.extra_lines.is_empty())
    {
        return bad(
            "body",
            "a verbatim body excludes version/mode/max_age/mx/extra_lines".to_owned(),
        );
    }
    for (k, v) in &p.headers {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return bad(&format!("headers.{k}"), "not a header name".to_owned());
        }
        if v.contains(['\r', '\n']) {
            return bad(
                &format!("headers.{k}"),
                "value contains a line break".to_owned(),
            );
        }
    }
    if let Some(ct) = &p.content_type
        && ct.contains(['\r', '\n'])
    {
        return bad("content_type", "contains a line break".to_owned());
    }
    if let Some(r) = &p.redirect
        && r.contains(['\r', '\n'])
    {
        return bad("redirect", "contains a line break".to_owned());
    }
    validate_cert(&p.cert).map_err(|m| ("cert".to_owned(), m))?;
    Ok(())
}

fn validate_cert(c: &CertSpec) -> Result<(), String> {
    if let Some(names) = &c.names {
        if names.is_empty() {
            return Err("names must not be empty".to_owned());
        }
        for n in names {
            let plain = n.strip_prefix("*.").unwrap_or(n);
            normalize_name(plain)?;
        }
    }
    Ok(())
}

fn validate_replies(replies: &[ReplyFault], field: &str) -> Result<(), (String, String)> {
    for (i, r) in replies.iter().enumerate() {
        if !(400..=599).contains(&r.code) {
            return Err((
                format!("{field}[{i}].code"),
                format!("{} is not a 4xx or 5xx reply code", r.code),
            ));
        }
        if r.text.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) {
            return Err((
                format!("{field}[{i}].text"),
                "contains a line break".to_owned(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate_host(h: &HostSpec) -> Result<(), (String, String)> {
    validate_cert(&h.cert).map_err(|m| ("cert".to_owned(), m))?;
    if h.greeting_delay_ms > limits::MAX_CONFIGURED_DELAY.as_millis() as u64 {
        return Err(("greeting_delay_ms".to_owned(), "too long".to_owned()));
    }
    if h.banner
        .as_deref()
        .is_some_and(|b| b.contains(['\r', '\n']))
    {
        return Err(("banner".to_owned(), "contains a line break".to_owned()));
    }
    validate_replies(&h.replies, "replies")?;
    if h.backends.len() > limits::MAX_BACKENDS_PER_HOST {
        return Err((
            "backends".to_owned(),
            format!("at most {} backends", limits::MAX_BACKENDS_PER_HOST),
        ));
    }
    for (i, b) in h.backends.iter().enumerate() {
        if let Some(c) = &b.cert {
            validate_cert(c).map_err(|m| (format!("backends[{i}].cert"), m))?;
        }
        if let Some(r) = &b.replies {
            validate_replies(r, &format!("backends[{i}].replies"))?;
        }
        if b.greeting_delay_ms
            .is_some_and(|d| d > limits::MAX_CONFIGURED_DELAY.as_millis() as u64)
        {
            return Err((
                format!("backends[{i}].greeting_delay_ms"),
                "too long".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Check and normalise one `dns` entry (also used for `set-dns` mutations).
pub(crate) fn validate_dns_entry(mut e: DnsNameSpec) -> Result<DnsNameSpec, (String, String)> {
    if let Some(target) = &e.cname
        && !target.is_empty()
    {
        e.cname = Some(normalize_name(target).map_err(|m| ("cname".to_owned(), m))?);
    }
    for ip in e.aaaa.iter().flatten() {
        if !ip.is_loopback() {
            return Err((
                "aaaa".to_owned(),
                format!("{ip} is not ::1: the lab only publishes loopback addresses"),
            ));
        }
    }
    for t in e.tlsa.iter().flatten() {
        parse_tlsa(t).map_err(|m| ("tlsa".to_owned(), m))?;
    }
    for t in e.fault_types.iter().flatten() {
        parse_record_type(t).map_err(|m| ("fault_types".to_owned(), m))?;
    }
    if e.delay_ms
        .is_some_and(|d| d > limits::MAX_CONFIGURED_DELAY.as_millis() as u64)
    {
        return Err(("delay_ms".to_owned(), "too long".to_owned()));
    }
    Ok(e)
}

/// Record types the lab serves (and accepts in `fault_types`).
pub(crate) fn parse_record_type(s: &str) -> Result<hickory_proto::rr::RecordType, String> {
    use hickory_proto::rr::RecordType;
    match s.to_ascii_uppercase().as_str() {
        "A" => Ok(RecordType::A),
        "AAAA" => Ok(RecordType::AAAA),
        "CNAME" => Ok(RecordType::CNAME),
        "MX" => Ok(RecordType::MX),
        "TXT" => Ok(RecordType::TXT),
        "TLSA" => Ok(RecordType::TLSA),
        "SOA" => Ok(RecordType::SOA),
        "NS" => Ok(RecordType::NS),
        other => Err(format!(
            "record type {other:?} is not one of A, AAAA, CNAME, MX, TXT, TLSA, SOA, NS"
        )),
    }
}

/// A parsed TLSA record: usage, selector, matching type, association data.
pub(crate) fn parse_tlsa(s: &str) -> Result<(u8, u8, u8, Vec<u8>), String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [u, sel, m, hex] = parts.as_slice() else {
        return Err(format!(
            "TLSA {s:?}: expected \"usage selector matching-type hex\""
        ));
    };
    let num = |x: &str| {
        x.parse::<u8>()
            .map_err(|_| format!("TLSA {s:?}: {x:?} is not a number 0-255"))
    };
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("TLSA {s:?}: association data is not hex"));
    }
    let data = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| format!("TLSA {s:?}: association data is not hex"))?;
    Ok((num(u)?, num(sel)?, num(m)?, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "t.toml";

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_str(text, SRC)
    }

    #[test]
    fn relative_names_resolve() {
        assert_eq!(
            resolve_relative_name("mx1", "a.test").as_deref(),
            Ok("mx1.a.test")
        );
        assert_eq!(
            resolve_relative_name("@", "a.test").as_deref(),
            Ok("a.test")
        );
        assert_eq!(
            resolve_relative_name("mx1.a.test", "a.test").as_deref(),
            Ok("mx1.a.test")
        );
        assert_eq!(
            resolve_relative_name("mx.b.test.", "a.test").as_deref(),
            Ok("mx.b.test")
        );
        assert_eq!(
            resolve_relative_name("_mta-sts", "a.test").as_deref(),
            Ok("_mta-sts.a.test")
        );
    }

    #[test]
    fn idn_domains_become_a_labels() {
        let s = parse("[domains.\"bücher.test\"]\ncomment = \"idn\"\n").expect("valid");
        let (name, spec) = s.domains.iter().next().expect("one domain");
        assert_eq!(name, "xn--bcher-kva.test");
        assert_eq!(spec.unicode_name.as_deref(), Some("bücher.test"));
    }

    #[test]
    fn errors_name_file_domain_and_field() {
        let e = parse(
            "[domains.\"a.test\"]\ncomment = \"x\"\n[domains.\"a.test\".policy]\nstatus = 999\n",
        )
        .expect_err("invalid status");
        let text = e.to_string();
        assert!(
            text.starts_with("t.toml: domain \"a.test\": field \"policy.status\""),
            "{text}"
        );

        let e = parse("[domains.\"a.test\"]\ncomment = \"x\"\nmx = [\"ten mx.a.test\"]\n")
            .expect_err("bad mx");
        assert!(e.to_string().contains("MX preference"), "{e}");

        let e = parse("[domains.\"a.example\"]\ncomment = \"x\"\n").expect_err("not .test");
        assert!(e.to_string().contains(".test"), "{e}");

        let e = parse("[domains.\"a.test\"]\ncomment = \"x\"\nbogus = 1\n").expect_err("unknown");
        assert!(e.to_string().contains("bogus"), "{e}");

        let e = parse(
            "[domains.\"a.test\"]\ncomment = \"x\"\n[domains.\"a.test\".dns.www]\na = [\"10.0.0.1\"]\n",
        )
        .expect_err("non-loopback");
        assert!(
            e.to_string().contains("field \"dns.www\"") || e.to_string().contains("127.0.0.0/8"),
            "{e}"
        );

        let e = parse("[domains.\"a.test\"]\ncomment = \"\"\n").expect_err("empty comment");
        assert!(e.to_string().contains("field \"comment\""), "{e}");
    }

    #[test]
    fn cert_spec_accepts_string_or_table() {
        let s = parse(
            "[domains.\"a.test\"]\ncomment = \"x\"\n[domains.\"a.test\".hosts.mx1]\ncert = \"expired\"\n[domains.\"a.test\".hosts.mx2]\ncert = { kind = \"valid\", names = [\"other.test\"] }\n",
        )
        .expect("valid");
        let d = &s.domains["a.test"];
        assert_eq!(d.hosts["mx1.a.test"].cert.kind, CertKind::Expired);
        assert_eq!(
            d.hosts["mx2.a.test"].cert.names.as_deref(),
            Some(&["other.test".to_owned()][..])
        );
        let e = parse("[domains.\"a.test\"]\ncomment = \"x\"\n[domains.\"a.test\".hosts.mx1]\ncert = \"expird\"\n")
            .expect_err("typo");
        assert!(e.to_string().contains("expird"), "{e}");
    }

    #[test]
    fn policy_body_is_generated_and_padded() {
        let p = PolicySpec {
            mode: Some("enforce".into()),
            max_age: Some(86400),
            mx: vec!["mx1.a.test".into()],
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8_lossy(&p.render_body()),
            "version: STSv1\nmode: enforce\nmx: mx1.a.test\nmax_age: 86400\n"
        );
        let big = PolicySpec {
            oversize: Some(Oversize {
                bytes: 70_000,
                chunked: false,
            }),
            ..p
        };
        assert_eq!(big.render_body().len(), 70_000);
    }

    #[test]
    fn long_txt_strings_are_split() {
        let t = TxtValue::Single("x".repeat(300));
        let parts = t.character_strings();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 255);
        assert_eq!(
            TxtValue::Split(vec!["v=STSv1; ".into(), "id=1;".into()]).joined(),
            "v=STSv1; id=1;"
        );
    }
}
