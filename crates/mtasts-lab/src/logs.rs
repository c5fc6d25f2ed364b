//! What the world saw: DNS queries, policy fetches, SMTP sessions and stored messages.
//!
//! All of it is readable through [`crate::World`] and the control API, so a test can assert
//! e.g. that a rogue MX never received `MAIL FROM`, or that a client fetched a policy once.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};

use crate::limits;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One DNS query the lab's server answered (or deliberately did not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsQueryLog {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Query name, lower case, no trailing dot.
    pub name: String,
    /// Query type (`"TXT"`, `"MX"`, ...).
    pub qtype: String,
    /// `"udp"` or `"tcp"`.
    pub protocol: String,
    /// Response code sent (`"NoError"`, `"NXDomain"`, ...) or `"no-answer"`.
    pub outcome: String,
    /// The query had the AD flag set (RFC 6840 §5.7).
    #[serde(default)]
    pub ad: bool,
    /// The query had EDNS with the DO bit set (RFC 3225).
    #[serde(default)]
    pub dnssec_ok: bool,
    /// The answer carried the AD flag.
    #[serde(default)]
    pub authentic: bool,
}

/// One connection to the policy-host listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFetch {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// SNI from the ClientHello.
    pub sni: Option<String>,
    /// The policy domain the SNI selected.
    pub domain: Option<String>,
    /// Negotiated TLS version (`"TLSv1.3"`, ...).
    pub tls_version: Option<String>,
    /// Request method.
    pub method: Option<String>,
    /// Request target.
    pub path: Option<String>,
    /// `Host` header.
    pub host_header: Option<String>,
    /// Status sent.
    pub status: Option<u16>,
    /// How the connection ended (`"served"`, `"blocked:reset"`, `"tls-error: ..."`...).
    pub outcome: String,
}

/// TLS details of an SMTP session after STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: String,
    /// SNI sent by the client, if any.
    pub sni: Option<String>,
}

/// One SMTP connection to an MX backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSession {
    /// Session id (unique in the world).
    pub id: u64,
    /// The MX host name.
    pub host: String,
    /// The backend address the client connected to.
    pub backend: IpAddr,
    /// The client's address.
    pub peer: SocketAddr,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Every command line received, in order (message content excluded).
    pub commands: Vec<String>,
    /// Set once STARTTLS completed.
    pub tls: Option<TlsInfo>,
    /// Why a STARTTLS handshake failed (or was failed on purpose), if it did.
    pub tls_error: Option<String>,
    /// Ids of the messages accepted in this session.
    pub message_ids: Vec<u64>,
    /// Whether the connection has ended.
    pub ended: bool,
}

impl SmtpSession {
    /// Whether the client sent `MAIL FROM` in this session.
    pub fn saw_mail_from(&self) -> bool {
        self.commands
            .iter()
            .any(|c| c.len() >= 10 && c[..10].eq_ignore_ascii_case("MAIL FROM:"))
    }
}

/// A message an MX accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Message id (unique in the world).
    pub id: u64,
    /// The MX host name.
    pub host: String,
    /// The backend address.
    pub backend: IpAddr,
    /// The session it arrived in.
    pub session_id: u64,
    /// Envelope sender (between the angle brackets).
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The message as received (dot-unstuffed, CRLF line ends).
    #[serde(serialize_with = "lossy_utf8", deserialize_with = "bytes_from_string")]
    pub data: Vec<u8>,
    /// Whether it arrived over TLS.
    pub tls: bool,
    /// Negotiated TLS version.
    pub tls_version: Option<String>,
    /// SNI the client sent in the STARTTLS handshake.
    pub sni: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub received_ms: u64,
}

fn lossy_utf8<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(data))
}

fn bytes_from_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    String::deserialize(d).map(String::into_bytes)
}

/// All logs of a world.
#[derive(Default)]
pub(crate) struct Logs {
    pub(crate) dns: VecDeque<DnsQueryLog>,
    pub(crate) fetches: VecDeque<PolicyFetch>,
    pub(crate) sessions: VecDeque<Arc<Mutex<SmtpSession>>>,
    pub(crate) messages: VecDeque<StoredMessage>,
    pub(crate) next_id: u64,
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, max: usize) {
    if q.len() >= max {
        q.pop_front();
    }
    q.push_back(item);
}

impl Logs {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
    pub(crate) fn push_dns(&mut self, q: DnsQueryLog) {
        push_bounded(&mut self.dns, q, limits::MAX_LOG_ENTRIES);
    }
    pub(crate) fn push_fetch(&mut self, f: PolicyFetch) {
        push_bounded(&mut self.fetches, f, limits::MAX_LOG_ENTRIES);
    }
    pub(crate) fn push_session(&mut self, s: Arc<Mutex<SmtpSession>>) {
        push_bounded(&mut self.sessions, s, limits::MAX_LOG_ENTRIES);
    }
    pub(crate) fn push_message(&mut self, m: StoredMessage) {
        push_bounded(&mut self.messages, m, limits::MAX_STORED_MESSAGES);
    }
    pub(crate) fn clear(&mut self) {
        self.dns.clear();
        self.fetches.clear();
        self.sessions.clear();
        self.messages.clear();
    }
}
