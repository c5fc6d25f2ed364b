//! The Postfix socketmap protocol (`socketmap_table(5)`) as an MTA-STS policy map speaks it,
//! sans-IO: netstrings in and out, request parsing, lookup-key normalisation and the replies
//! `smtp_tls_policy_maps` understands.
//!
//! A request is one netstring whose payload is `"<map name> <key>"`; a reply is one netstring
//! whose payload is `OK <data>`, `NOTFOUND `, `TEMP <reason>`, `TIMEOUT <reason>` or
//! `PERM <reason>`. Postfix sends one request at a time on a persistent connection, but the
//! protocol allows several, and a server answers them in order.
//!
//! The MTA-STS reply for a policy in force is
//! `OK secure match=<p1>:<p2> servername=hostname`, where a `*.example.net` pattern (RFC 8461
//! §3.2, one label) is written `.example.net` because Postfix's `match=` has no one-label
//! wildcard. With TLSRPT attributes on (Postfix ≥ 3.10), the reply also carries
//! `policy_type=sts policy_domain=<domain> mx_host_pattern=<pattern as published> ...
//! { policy_string = <policy line> } ...`; Postfix ≥ 3.10.5 then checks the MX host name
//! against `mx_host_pattern` with the exact RFC 8461 §4.1 rule
//! (`smtp_tls_enforce_sts_mx_patterns`).
//!
//! <https://www.postfix.org/socketmap_table.5.html>,
//! <https://www.postfix.org/TLSRPT_README.html#mta-sts>, <https://cr.yp.to/proto/netstrings.txt>

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use mtasts_core::dane::{Decision, Precedence, precedence};
use mtasts_core::domain::{self, DomainError};
use mtasts_core::sts::apply::Enforcement;
use mtasts_core::sts::policy::Policy;

/// The default largest request payload accepted, in bytes. The longest key Postfix sends for
/// a TLS policy lookup is a bracketed 253-octet name with a port (about 270 bytes, more for
/// a name in UTF-8 U-labels), plus the map name; 1024 leaves room for both, as
/// postfix-mta-sts-resolver does, and bounds what one connection can make the server buffer.
pub const DEFAULT_MAX_REQUEST: usize = 1024;

/// Postfix's default limit on a socketmap reply payload, in bytes
/// (`DICT_SOCKMAP_DEF_MAX_REPLY`; `socketmap_max_reply_size` since Postfix 3.10). A longer
/// reply is a lookup error in Postfix.
pub const POSTFIX_MAX_REPLY: usize = 100_000;

/// Postfix logs at most this many bytes of a `TEMP` or `PERM` reason; longer reasons are cut.
pub const MAX_REASON: usize = 200;

/// The most digits a netstring length may have, whatever the limit (2^64 has 20).
const MAX_LENGTH_DIGITS: usize = 20;

/// What is wrong with the length prefix of a netstring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthProblem {
    /// No digit before the `:`.
    Empty,
    /// A byte that is neither a digit nor the `:` separator.
    NonDigit(u8),
    /// A length with a leading zero (`01:`), which the netstring definition forbids.
    LeadingZero,
}

/// Why a byte stream is not a sequence of netstrings. Every error is final: the stream has
/// lost its framing, and the connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetstringError {
    /// The length prefix is not a decimal number followed by `:`.
    BadLength(LengthProblem),
    /// The announced length is over the limit.
    TooLong {
        /// The length announced (or the part of it read so far, already over the limit).
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The payload is not followed by `,`.
    MissingComma {
        /// The byte found instead.
        found: u8,
    },
}

impl NetstringError {
    /// A short stable name, for logs and metrics: `bad-length`, `too-long`, `missing-comma`.
    pub fn kind(&self) -> &'static str {
        match self {
            NetstringError::BadLength(_) => "bad-length",
            NetstringError::TooLong { .. } => "too-long",
            NetstringError::MissingComma { .. } => "missing-comma",
        }
    }
}

impl fmt::Display for NetstringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetstringError::BadLength(LengthProblem::Empty) => {
                f.write_str("bad netstring length: no digits before ':'")
            }
            NetstringError::BadLength(LengthProblem::NonDigit(b)) => {
                write!(
                    f,
                    "bad netstring length: byte {:?} is not a digit",
                    char::from(*b)
                )
            }
            NetstringError::BadLength(LengthProblem::LeadingZero) => {
                f.write_str("bad netstring length: leading zero")
            }
            NetstringError::TooLong { len, max } => {
                // The decoder stops reading the length as soon as it passes the limit, so
                // `len` is only how the prefix begins, not the length announced.
                write!(
                    f,
                    "netstring length prefix beginning {len}… announces more than the limit of {max} bytes"
                )
            }
            NetstringError::MissingComma { found } => write!(
                f,
                "netstring not terminated by ',' (found {:?})",
                char::from(*found)
            ),
        }
    }
}

impl std::error::Error for NetstringError {}

/// An incremental netstring decoder: [`feed`](Decoder::feed) it the bytes as they arrive,
/// then take the complete netstrings out with [`next_frame`](Decoder::next_frame) or
/// [`next_request`](Decoder::next_request) until they return `Ok(None)`.
///
/// A length over the limit is rejected as soon as its digits show it, before the payload
/// arrives. After an error the decoder keeps returning that error.
#[derive(Clone, Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    error: Option<NetstringError>,
}

impl Decoder {
    /// A decoder accepting payloads of at most `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max,
            error: None,
        }
    }

    /// The payload limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Appends bytes received.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= 4096) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// How many received bytes are not yet consumed by a complete netstring.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether bytes of an incomplete netstring are waiting for more.
    pub fn is_partial(&self) -> bool {
        self.buffered() > 0
    }

    /// The next complete netstring's payload, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, NetstringError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match parse_frame(&self.buf[self.start..], self.max) {
            Ok(Some(frame)) => {
                let base = self.start;
                let payload =
                    self.buf[base + frame.payload.start..base + frame.payload.end].to_vec();
                self.start += frame.consumed;
                Ok(Some(payload))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The next complete request, `Ok(None)` when more bytes are needed.
    pub fn next_request(&mut self) -> Result<Option<Request>, NetstringError> {
        Ok(self.next_frame()?.map(|p| Request::parse(&p)))
    }
}

/// A complete netstring at the start of a buffer: where its payload is, and its whole length.
struct Frame {
    payload: std::ops::Range<usize>,
    consumed: usize,
}

/// Parses one netstring at the start of `buf`.
fn parse_frame(buf: &[u8], max: usize) -> Result<Option<Frame>, NetstringError> {
    let mut len: u64 = 0;
    let mut digits = 0usize;
    let mut colon = None;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b':' => {
                if digits == 0 {
                    return Err(NetstringError::BadLength(LengthProblem::Empty));
                }
                colon = Some(i);
                break;
            }
            b'0'..=b'9' => {
                if digits == 1 && len == 0 {
                    return Err(NetstringError::BadLength(LengthProblem::LeadingZero));
                }
                digits += 1;
                len = len.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                if len > max as u64 || digits > MAX_LENGTH_DIGITS {
                    return Err(NetstringError::TooLong { len, max });
                }
            }
            other => return Err(NetstringError::BadLength(LengthProblem::NonDigit(other))),
        }
    }
    let Some(colon) = colon else {
        return Ok(None);
    };
    // len <= max, so it fits in usize.
    let len = usize::try_from(len).map_err(|_| NetstringError::TooLong { len, max })?;
    let begin = colon + 1;
    let end = begin + len;
    match buf.get(end) {
        None => Ok(None),
        Some(b',') => Ok(Some(Frame {
            payload: begin..end,
            consumed: end + 1,
        })),
        Some(&found) => Err(NetstringError::MissingComma { found }),
    }
}

/// Appends `payload` as a netstring to `out`.
pub fn encode_into(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b',');
}

/// `payload` as a netstring.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    encode_into(&mut out, payload);
    out
}

/// One socketmap request: `"<map name> <key>"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The map name: the last `:`-separated part of `socketmap:inet:host:port:name`.
    pub map: String,
    /// The lookup key, as sent.
    pub key: String,
}

impl Request {
    /// Splits a payload at its first space. A payload with no space is a map name with an
    /// empty key. Bytes that are not UTF-8 are replaced (such a key is never a valid name).
    pub fn parse(payload: &[u8]) -> Request {
        let text = String::from_utf8_lossy(payload);
        let (map, key) = text.split_once(' ').unwrap_or((&text, ""));
        Request {
            map: map.to_owned(),
            key: key.to_owned(),
        }
    }
}

/// Why a key is answered without a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The key is empty.
    Empty,
    /// A parent-domain probe (`.example.com`): Postfix tries these after a `NOTFOUND` for a
    /// name; a parent's MTA-STS policy never applies to its subdomains (RFC 8461 §4.1 policy
    /// domains are exact), so these are never looked up.
    ParentProbe,
    /// An IP address (`[192.0.2.1]`, `[IPv6:2001:db8::1]`): MTA-STS applies to domains only.
    IpLiteral,
    /// Anything else that is not a domain name.
    Invalid(DomainError),
}

impl Skip {
    /// A short stable name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Skip::Empty => "empty",
            Skip::ParentProbe => "parent-probe",
            Skip::IpLiteral => "ip-literal",
            Skip::Invalid(_) => "invalid",
        }
    }
}

/// What a key asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupKey {
    /// Look up the policy of this domain (lower-case A-labels, no trailing dot).
    Domain(String),
    /// Answer `NOTFOUND ` without a lookup.
    Skip(Skip),
}

/// Normalises a lookup key of the forms Postfix sends for `smtp_tls_policy_maps`:
///
/// | key | result |
/// | --- | --- |
/// | `example.com`, `EXAMPLE.com.` | `example.com` |
/// | `[mx.example.com]`, `[mx.example.com]:587`, `mx.example.com:587`, `example.com:submission` | `mx.example.com` / `example.com` |
/// | `bücher.example` | `xn--bcher-kva.example` |
/// | `.example.com` | parent probe, not looked up |
/// | `[192.0.2.1]`, `192.0.2.1`, `[IPv6:2001:db8::1]`, `[2001:db8::1]:25` | IP literal, not looked up |
pub fn classify_key(key: &str) -> LookupKey {
    let k = key.trim();
    if k.is_empty() {
        return LookupKey::Skip(Skip::Empty);
    }
    if k.starts_with('.') {
        return LookupKey::Skip(Skip::ParentProbe);
    }
    let host = if let Some(rest) = k.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return LookupKey::Skip(Skip::Invalid(DomainError::InvalidChar { ch: '[' }));
        };
        if !(after.is_empty() || after.starts_with(':')) {
            return LookupKey::Skip(Skip::Invalid(DomainError::InvalidChar { ch: ']' }));
        }
        inside
    } else if is_ip(k) {
        return LookupKey::Skip(Skip::IpLiteral);
    } else {
        k.rsplit_once(':').map_or(k, |(host, _port)| host)
    };
    if is_ip(host) {
        return LookupKey::Skip(Skip::IpLiteral);
    }
    match domain::to_a_label(host) {
        Ok(d) => LookupKey::Domain(d),
        Err(DomainError::IpLiteral) => LookupKey::Skip(Skip::IpLiteral),
        Err(DomainError::Empty) => LookupKey::Skip(Skip::Empty),
        Err(e) => LookupKey::Skip(Skip::Invalid(e)),
    }
}

/// Whether `s` is an IP address, bare or with the `IPv6:` tag of an SMTP address literal
/// (any case: Postfix lower-cases keys).
fn is_ip(s: &str) -> bool {
    let s = match s.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => &s[5..],
        _ => s,
    };
    s.parse::<IpAddr>().is_ok()
}

/// How a map answers: the options of one socketmap name (a "zone", as
/// postfix-mta-sts-resolver calls them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneOptions {
    /// Answer `testing` policies like `enforce` ones. Off by default: RFC 8461 §5 says a
    /// `testing` policy must not make delivery fail, and Postfix cannot "try and report".
    pub strict_testing: bool,
    /// Add `servername=hostname` (send SNI). Needs Postfix ≥ 3.4; turn off for older ones.
    pub require_sni: bool,
    /// Add the TLSRPT attributes (`policy_type`, `policy_domain`, `policy_ttl`,
    /// `mx_host_pattern`, `policy_string`). Needs Postfix ≥ 3.10; with ≥ 3.10.5 they also make Postfix check
    /// MX names with the exact RFC 8461 §4.1 rule.
    pub tlsrpt: bool,
    /// Answer `TEMP` (Postfix defers the message) when a transient DNS failure leaves the
    /// policy unknown and nothing valid is cached. Off by default, like
    /// postfix-mta-sts-resolver, which answers `NOTFOUND ` (deliver as without MTA-STS).
    pub temp_on_dns_failure: bool,
    /// Give DANE precedence (RFC 8461 §2): look up the domain's TLSA records and answer
    /// `dane-only`, `dane` or `TEMP` where DANE applies ([`dane_reply`]). Needs Postfix with
    /// `smtp_dns_support_level = dnssec`, which then does DANE itself. Off by default.
    pub dane: DaneMode,
}

/// Whether a zone gives DANE precedence over MTA-STS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaneMode {
    /// MTA-STS only, as postfix-mta-sts-resolver answers.
    #[default]
    Off,
    /// DANE first (RFC 8461 §2).
    On,
}

impl Default for ZoneOptions {
    fn default() -> Self {
        ZoneOptions {
            strict_testing: false,
            require_sni: true,
            tlsrpt: false,
            temp_on_dns_failure: false,
            dane: DaneMode::Off,
        }
    }
}

/// A socketmap reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `OK <data>`.
    Ok(String),
    /// `NOTFOUND ` (with the trailing space, the documented form).
    NotFound,
    /// `TEMP <reason>`: Postfix defers.
    Temp(String),
    /// `PERM <reason>`: a configuration error in Postfix.
    Perm(String),
}

impl Reply {
    /// The netstring payload.
    pub fn payload(&self) -> String {
        match self {
            Reply::Ok(data) => format!("OK {data}"),
            Reply::NotFound => "NOTFOUND ".to_owned(),
            Reply::Temp(reason) => format!("TEMP {reason}"),
            Reply::Perm(reason) => format!("PERM {reason}"),
        }
    }

    /// The whole netstring.
    pub fn encode(&self) -> Vec<u8> {
        encode(self.payload().as_bytes())
    }

    /// A short stable name, for logs and metrics: `ok`, `notfound`, `temp`, `perm`.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Ok(_) => "ok",
            Reply::NotFound => "notfound",
            Reply::Temp(_) => "temp",
            Reply::Perm(_) => "perm",
        }
    }

    /// A `TEMP` reply whose reason is made safe for Postfix: control characters become
    /// spaces, and it is cut to [`MAX_REASON`] bytes.
    pub fn temp(reason: &str) -> Reply {
        Reply::Temp(sanitize_reason(reason))
    }
}

fn sanitize_reason(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON));
    for ch in reason.chars() {
        let ch = if ch.is_control() { ' ' } else { ch };
        if out.len() + ch.len_utf8() > MAX_REASON {
            break;
        }
        out.push(ch);
    }
    out
}

/// What had to be left out of a reply to keep it within the size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trimmed {
    /// Nothing.
    Nothing,
    /// The `policy_string` attributes.
    PolicyStrings,
    /// Every TLSRPT attribute (even without `policy_string` the reply was too long).
    Tlsrpt,
    /// The reply cannot fit at all: the answer is `TEMP`.
    TooLarge,
}

/// A policy reply and what was left out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyReply {
    /// The reply.
    pub reply: Reply,
    /// What was left out to fit the limit.
    pub trimmed: Trimmed,
    /// Policy lines left out of the `policy_string` attributes because they contain `{` or
    /// `}`, which would break Postfix's `{ name = value }` syntax.
    pub skipped_lines: usize,
}

/// The reply for a valid policy of `domain` (lower-case A-labels) under `opts`, at most
/// `max_reply` bytes of payload ([`POSTFIX_MAX_REPLY`] unless Postfix was told otherwise).
///
/// - mode `none`, and `testing` unless `strict_testing`: `NOTFOUND ` (RFC 8461 §5);
/// - otherwise `OK secure match=...`, patterns in published order, `*.d` written `.d`;
/// - `servername=hostname` when `require_sni`;
/// - with `tlsrpt`, the attributes Postfix ≥ 3.10 takes (see the module documentation).
///
/// A reply over the limit first loses its `policy_string` attributes, then every TLSRPT
/// attribute; if even the bare `match=` list does not fit, the answer is `TEMP`: a policy
/// that cannot be expressed must not be applied half.
pub fn policy_reply(
    domain: &str,
    policy: &Policy,
    opts: &ZoneOptions,
    max_reply: usize,
) -> PolicyReply {
    // RFC 8461 §5: only a refusing mode may make Postfix refuse; Postfix cannot "deliver and
    // report", so testing is answered as no policy unless the zone asks otherwise.
    let applies = match policy.mode.enforcement() {
        Enforcement::Refuse => true,
        Enforcement::Report => opts.strict_testing,
        Enforcement::Ignore => false,
    };
    if !applies || policy.mx.is_empty() {
        return PolicyReply {
            reply: Reply::NotFound,
            trimmed: Trimmed::Nothing,
            skipped_lines: 0,
        };
    }
    let matches: Vec<String> = policy
        .mx
        .iter()
        .map(|p| {
            if p.is_wildcard() {
                format!(".{}", p.base())
            } else {
                p.base().to_owned()
            }
        })
        .collect();
    let mut base = format!("secure match={}", matches.join(":"));
    if opts.require_sni {
        base.push_str(" servername=hostname");
    }
    // "OK " + data.
    let fits = |data: &str| 3 + data.len() <= max_reply;
    if !opts.tlsrpt {
        return if fits(&base) {
            PolicyReply {
                reply: Reply::Ok(base),
                trimmed: Trimmed::Nothing,
                skipped_lines: 0,
            }
        } else {
            too_large(domain)
        };
    }
    // `policy_ttl`: the policy's max_age (RFC 8461 §3.2), as Postfix 3.10's own tests of
    // smtp_tls_policy pass it beside the other TLSRPT attributes.
    let mut attrs = format!(
        "{base} policy_type=sts policy_domain={domain} policy_ttl={}",
        policy.max_age
    );
    for p in &policy.mx {
        attrs.push_str(" mx_host_pattern=");
        attrs.push_str(&p.to_string());
    }
    let mut full = attrs.clone();
    let mut skipped_lines = 0;
    for line in policy.to_text().split("\r\n").filter(|l| !l.is_empty()) {
        if line.contains(['{', '}']) {
            skipped_lines += 1;
            continue;
        }
        full.push_str(" { policy_string = ");
        full.push_str(line);
        full.push_str(" }");
    }
    let (data, trimmed) = if fits(&full) {
        (full, Trimmed::Nothing)
    } else if fits(&attrs) {
        (attrs, Trimmed::PolicyStrings)
    } else if fits(&base) {
        (base, Trimmed::Tlsrpt)
    } else {
        return too_large(domain);
    };
    PolicyReply {
        reply: Reply::Ok(data),
        trimmed,
        skipped_lines,
    }
}

fn too_large(domain: &str) -> PolicyReply {
    PolicyReply {
        reply: Reply::temp(&format!(
            "the MTA-STS policy of {domain} is too large for a socketmap reply"
        )),
        trimmed: Trimmed::TooLarge,
        skipped_lines: 0,
    }
}

/// The reply when DNS failed transiently for `domain` and nothing valid is cached: `TEMP`
/// with a reason when `temp_on_dns_failure`, else `NOTFOUND `.
pub fn transient_reply(domain: &str, reason: &str, opts: &ZoneOptions) -> Reply {
    if opts.temp_on_dns_failure {
        Reply::temp(&format!(
            "MTA-STS policy of {domain} unknown for now: {reason}"
        ))
    } else {
        Reply::NotFound
    }
}

/// The reply once DANE is taken into account (RFC 8461 §2 with RFC 7672): `sts` is the MTA-STS
/// reply [`policy_reply`] or [`transient_reply`] gave, `decision` what DANE says.
///
/// - DANE for every host: `OK dane-only`; DANE per host: `OK dane`. Postfix then looks up the
///   TLSA records itself and authenticates the server by them (it needs
///   `smtp_dns_support_level = dnssec`), and reports to TLSRPT as `policy-type tlsa` itself,
///   so no TLSRPT attribute is added: Postfix rejects `policy_type` and the rest beside a
///   non-STS level ("It is an error to specify these attributes for a non-STS policy",
///   TLSRPT_README), and an STS description would misdescribe what is enforced.
/// - A DNSSEC failure: `TEMP`, so Postfix defers; never a downgrade to MTA-STS or to
///   opportunistic TLS.
/// - Otherwise the MTA-STS reply, unchanged. Whether MTA-STS refuses failures (which decides
///   an insecure MX RRset, see [`precedence`]) is read from it: an `OK` reply is `secure`.
pub fn dane_reply(domain: &str, decision: &Decision, sts: PolicyReply) -> PolicyReply {
    let sts_enforced = matches!(sts.reply, Reply::Ok(_));
    let plain = |reply| PolicyReply {
        reply,
        trimmed: Trimmed::Nothing,
        skipped_lines: 0,
    };
    match precedence(decision, sts_enforced) {
        Precedence::DaneOnly => plain(Reply::Ok("dane-only".to_owned())),
        Precedence::Dane => plain(Reply::Ok("dane".to_owned())),
        Precedence::TempFail { reason } => plain(Reply::temp(&format!(
            "DANE status of {domain} unknown for now: {reason}"
        ))),
        Precedence::MtaSts => sts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_split_across_feeds() {
        let mut d = Decoder::new(100);
        d.feed(b"1");
        assert_eq!(d.next_frame(), Ok(None));
        d.feed(b"1:postfix ");
        assert_eq!(d.next_frame(), Ok(None));
        d.feed(b"a.b,3:x");
        assert_eq!(d.next_frame(), Ok(Some(b"postfix a.b".to_vec())));
        assert_eq!(d.next_frame(), Ok(None));
        assert!(d.is_partial());
        d.feed(b"yz,");
        assert_eq!(d.next_frame(), Ok(Some(b"xyz".to_vec())));
        assert!(!d.is_partial());
    }
}
