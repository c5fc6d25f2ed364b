//! The admin channel of a running daemon (`mtasts daemon cache list|show|forget`): the
//! protocol, the documents it answers with, and a client.
//!
//! The channel is a Unix socket (`admin = { unix = "/run/mtasts/admin.sock" }`, off unless
//! configured); whoever may write the socket file may use it, so its mode, owner and group are
//! the access control. It is never served over TCP, and not on the metrics listener, which
//! has no authentication.
//!
//! One request per connection: the client sends one line of JSON (at most
//! `admin_max_request` bytes, within `admin_timeout` seconds of connecting), the daemon
//! answers with one JSON document and a newline, then closes the connection:
//!
//! ```text
//! {"op":"list"}                          -> mtasts-daemon-cache-list/1
//! {"op":"list","limit":100}              -> the first 100 domains, and the total
//! {"op":"show","domain":"example.com"}   -> mtasts-daemon-cache-show/1
//! {"op":"forget","domains":["a.example","b.example"]} -> mtasts-daemon-cache-forget/1
//! ```
//!
//! A request that cannot be served is answered with `mtasts-daemon-admin-error/1`:
//! `{"schema": …, "error": "bad-request", "message": "…"}`. The documents follow the
//! repository's JSON convention (`docs/json.md`): the schema name first, RFC 3339 times; their
//! schema files are under `schemas/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The schema of the answer to `list`.
pub const LIST_SCHEMA: &str = "mtasts-daemon-cache-list/1";
/// The schema of the answer to `show`.
pub const SHOW_SCHEMA: &str = "mtasts-daemon-cache-show/1";
/// The schema of the answer to `forget`.
pub const FORGET_SCHEMA: &str = "mtasts-daemon-cache-forget/1";
/// The schema of an error answer.
pub const ERROR_SCHEMA: &str = "mtasts-daemon-admin-error/1";

/// The largest answer the client reads, in bytes (a list of about a million domains).
pub const MAX_ANSWER: usize = 1 << 30;

/// One admin request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every cached domain, sorted.
    List {
        /// At most this many entries (the total is still given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// One domain's entry in full.
    Show {
        /// The policy domain.
        domain: String,
    },
    /// Remove these domains' entries from memory and from the store.
    Forget {
        /// The policy domains (at least one).
        domains: Vec<String>,
    },
}

/// What the cache holds for a domain, from the core's `answer` at the time of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// A valid policy (of any mode): it is applied.
    Policy,
    /// No `_mta-sts` record, or none valid: no policy, remembered for `negative_ttl`.
    NoRecord,
    /// A record, but its policy could not be fetched and nothing valid is cached.
    FetchFailed,
    /// DNS failed and nothing valid is cached: unknown for now.
    Transient,
    /// Nothing the cache can answer with any more: the next lookup goes to DNS.
    Expired,
}

impl State {
    /// The name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Policy => "policy",
            State::NoRecord => "no-record",
            State::FetchFailed => "fetch-failed",
            State::Transient => "transient",
            State::Expired => "expired",
        }
    }
}

/// `mtasts-daemon-cache-list/1` (the members after `schema`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDocument {
    /// The daemon's time of the answer.
    pub now: String,
    /// `sqlite`, `redis` or `memory`.
    pub store_backend: String,
    /// Why the store could not be read (the entries are then those in memory only).
    pub store_error: Option<String>,
    /// How many domains are cached.
    pub total: usize,
    /// Fewer entries than `total` were sent (`limit`).
    pub truncated: bool,
    /// Sorted by domain.
    pub entries: Vec<ListEntry>,
    /// The DANE assessments in memory, sorted by domain.
    pub dane: Vec<DaneSummary>,
}

/// One line of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The policy domain.
    pub domain: String,
    /// What the cache holds.
    pub state: State,
    /// The cached policy's mode, valid or not.
    pub mode: Option<String>,
    /// The cached policy's `id`.
    pub policy_id: Option<String>,
    /// When the policy was fetched or last confirmed by an unchanged `id`.
    pub fetched_at: Option<String>,
    /// The last second the policy is valid.
    pub expires_at: Option<String>,
    /// When the next proactive refresh is due (with a valid policy only).
    pub refresh_at: Option<String>,
    /// A refresh is due now.
    pub refresh_due: bool,
    /// When the TXT record was last looked up.
    pub checked_at: String,
    /// Until when a negative answer (`no-record`, `fetch-failed`, `transient`) holds.
    pub negative_until: Option<String>,
    /// The entry may be dropped after this second.
    pub kept_until: String,
    /// Held in memory.
    pub memory: bool,
    /// Held in the store.
    pub store: bool,
}

/// A DANE assessment in memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaneSummary {
    /// The policy domain.
    pub domain: String,
    /// `mandatory`, `opportunistic`, `delay` or `not-applicable`.
    pub decision: String,
    /// When it was looked up.
    pub checked_at: String,
    /// The first second it is no longer used.
    pub expires_at: String,
}

/// `mtasts-daemon-cache-show/1` (the members after `schema`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowDocument {
    /// The daemon's time of the answer.
    pub now: String,
    /// The policy domain (lower-case A-labels).
    pub domain: String,
    /// Whether anything is cached for it (in memory or in the store).
    pub found: bool,
    /// `sqlite`, `redis` or `memory`.
    pub store_backend: String,
    /// Why the store could not be read.
    pub store_error: Option<String>,
    /// Held in memory.
    pub memory: bool,
    /// Held in the store.
    pub store: bool,
    /// What the cache holds; null when nothing.
    pub state: Option<State>,
    /// The entry; null when nothing is cached.
    pub entry: Option<EntryDetail>,
    /// What a lookup would get now.
    pub answer: AnswerNow,
    /// The DANE assessment in memory, if any.
    pub dane: Option<DaneSummary>,
}

/// A cache entry in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDetail {
    /// The last policy fetched, valid or not.
    pub policy: Option<PolicyDetail>,
    /// When the TXT record was last looked up.
    pub checked_at: String,
    /// When the next proactive refresh is due (with a valid policy only).
    pub refresh_at: Option<String>,
    /// A refresh is due now.
    pub refresh_due: bool,
    /// The entry may be dropped after this second.
    pub kept_until: String,
    /// A remembered negative answer.
    pub negative: Option<NegativeDetail>,
    /// The last failed fetch.
    pub failed_fetch: Option<FailedFetchDetail>,
}

/// A cached policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDetail {
    /// The TXT record's `id` it was fetched under.
    pub id: String,
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// Seconds.
    pub max_age: u32,
    /// The `mx` patterns, in published order.
    pub mx: Vec<String>,
    /// When fetched, or last confirmed by an unchanged `id`.
    pub fetched_at: String,
    /// The last second it is valid.
    pub expires_at: String,
    /// Still valid now.
    pub valid: bool,
    /// The policy in canonical text.
    pub text: String,
}

/// A remembered negative answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegativeDetail {
    /// `no-record`, `fetch-failed` or `transient`.
    pub kind: String,
    /// It holds until (not including) this second.
    pub until: String,
    /// Why.
    pub reason: String,
}

/// The last failed fetch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFetchDetail {
    /// The `id` fetched.
    pub id: String,
    /// When it failed.
    pub at: String,
    /// Why.
    pub reason: String,
}

/// What a lookup of the domain would get now, from the cache alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerNow {
    /// `policy`, `no-policy`, `transient`, or `lookup` when the cache cannot answer and the
    /// daemon would look the domain up (DNS, and maybe HTTPS).
    pub decision: String,
    /// In words.
    pub explanation: String,
    /// The socketmap reply for each map name: `_default` (every map without a section) and
    /// each configured zone; null where a lookup would be needed first.
    pub replies: Vec<ZoneReply>,
}

/// The reply for one map name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneReply {
    /// The map name, or `_default`.
    pub map: String,
    /// The reply payload Postfix would get (`OK …`, `NOTFOUND `, `TEMP …`).
    pub reply: Option<String>,
}

/// `mtasts-daemon-cache-forget/1` (the members after `schema`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetDocument {
    /// The daemon's time of the answer.
    pub now: String,
    /// `sqlite`, `redis` or `memory`.
    pub store_backend: String,
    /// One per domain asked, in order (duplicates once).
    pub forgotten: Vec<ForgetResult>,
}

/// What `forget` did for one domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetResult {
    /// The policy domain (lower-case A-labels).
    pub domain: String,
    /// Anything was cached (memory, store or DANE).
    pub existed: bool,
    /// Removed from memory.
    pub memory: bool,
    /// Removed from the store.
    pub store: bool,
    /// A DANE assessment was removed.
    pub dane: bool,
    /// What the cache held before; null when nothing.
    pub state: Option<State>,
    /// The mode of the policy that was cached.
    pub mode: Option<String>,
    /// The `id` of the policy that was cached.
    pub policy_id: Option<String>,
    /// The store could not be changed: its entry (if any) is still there.
    pub store_error: Option<String>,
}

impl ForgetResult {
    /// A valid policy was forgotten: its downgrade protection (RFC 8461 §10.2) is gone.
    pub fn forgot_a_policy(&self) -> bool {
        self.state == Some(State::Policy)
    }
}

/// `mtasts-daemon-admin-error/1` (the members after `schema`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDocument {
    /// `bad-request`, `too-large`, `timeout`, `busy` or `internal`.
    pub error: String,
    /// What is wrong.
    pub message: String,
}

/// A document as sent: `schema` first, then `body`'s members, one line.
pub fn encode(schema: &str, body: &impl Serialize) -> Vec<u8> {
    let value = match serde_json::to_value(body) {
        Ok(v) => v,
        Err(e) => serde_json::json!({"error": "internal", "message": e.to_string()}),
    };
    let doc = mtasts_core::json::document(schema, value);
    let mut out = serde_json::to_vec(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// An error answer.
pub fn error_answer(kind: &str, message: impl Into<String>) -> Vec<u8> {
    encode(
        ERROR_SCHEMA,
        &ErrorDocument {
            error: kind.to_owned(),
            message: message.into(),
        },
    )
}

/// Why the daemon could not be asked. Each message names the socket.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No daemon admin socket at the path.
    #[error(
        "no admin socket at {path}: {source} (is the daemon running, with `admin = {{ unix = \"{path}\" }}` in its configuration? docs/daemon.md, \"Inspecting the cache\")"
    )]
    Missing {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The socket's permissions refuse this user.
    #[error(
        "cannot connect to the admin socket {path}: {source} (its mode, owner and group decide who may use it: run as the daemon's user or root, or set `mode` and `group` of `admin`)"
    )]
    Denied {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting failed otherwise.
    #[error("cannot connect to the admin socket {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing or reading failed, or the answer is not a document.
    #[error("admin socket {path}: {message}")]
    Exchange {
        /// The socket.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// No answer within the timeout.
    #[error("admin socket {path}: no answer within {seconds} s")]
    Timeout {
        /// The socket.
        path: PathBuf,
        /// The timeout.
        seconds: f64,
    },
    /// The daemon answered with an error document.
    #[error("the daemon refused the request ({kind}): {message}")]
    Refused {
        /// `bad-request`, `too-large`, …
        kind: String,
        /// Its message.
        message: String,
    },
}

/// Sends `request` to the admin socket at `path` and returns the answer document (already
/// checked not to be an error document), the whole exchange within `timeout`.
pub async fn request(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<serde_json::Value, AdminError> {
    let mut line = serde_json::to_vec(request).map_err(|e| AdminError::Exchange {
        path: path.to_owned(),
        message: format!("cannot encode the request: {e}"),
    })?;
    line.push(b'\n');
    match tokio::time::timeout(timeout, exchange(path, &line)).await {
        Ok(r) => r,
        Err(_) => Err(AdminError::Timeout {
            path: path.to_owned(),
            seconds: timeout.as_secs_f64(),
        }),
    }
}

/// Sends raw bytes and reads the answer (for [`request`], and for tests of bad input).
pub async fn exchange(path: &Path, line: &[u8]) -> Result<serde_json::Value, AdminError> {
    let mut s = UnixStream::connect(path).await.map_err(|source| {
        let path = path.to_owned();
        match source.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                AdminError::Missing { path, source }
            }
            std::io::ErrorKind::PermissionDenied => AdminError::Denied { path, source },
            _ => AdminError::Connect { path, source },
        }
    })?;
    let exchange_error = |message: String| AdminError::Exchange {
        path: path.to_owned(),
        message,
    };
    // A request the daemon refuses early (too large) may fail to be written whole: its
    // answer is read all the same.
    let written = s.write_all(line).await;
    let _ = s.shutdown().await;
    let mut answer = Vec::new();
    let read = (&mut s)
        .take(u64::try_from(MAX_ANSWER).unwrap_or(u64::MAX))
        .read_to_end(&mut answer)
        .await;
    if answer.is_empty() {
        let why = match (written, read) {
            (Err(e), _) => format!("sending the request: {e}"),
            (_, Err(e)) => format!("reading the answer: {e}"),
            _ => "the daemon closed the connection without answering".to_owned(),
        };
        return Err(exchange_error(why));
    }
    let value: serde_json::Value = serde_json::from_slice(&answer)
        .map_err(|e| exchange_error(format!("the answer is not a JSON document: {e}")))?;
    if value.get("schema").and_then(|s| s.as_str()) == Some(ERROR_SCHEMA) {
        let doc: ErrorDocument = serde_json::from_value(value)
            .map_err(|e| exchange_error(format!("a malformed {ERROR_SCHEMA} document: {e}")))?;
        return Err(AdminError::Refused {
            kind: doc.error,
            message: doc.message,
        });
    }
    Ok(value)
}

/// A document the daemon answers with, and its schema name.
pub trait Document: serde::de::DeserializeOwned {
    /// The schema name (`mtasts-daemon-cache-list/1`).
    const SCHEMA: &'static str;
}

impl Document for ListDocument {
    const SCHEMA: &'static str = LIST_SCHEMA;
}

impl Document for ShowDocument {
    const SCHEMA: &'static str = SHOW_SCHEMA;
}

impl Document for ForgetDocument {
    const SCHEMA: &'static str = FORGET_SCHEMA;
}

/// The body of an answer (from `path`) that must be a `T`.
pub fn decode<T: Document>(path: &Path, value: serde_json::Value) -> Result<T, AdminError> {
    let schema = T::SCHEMA;
    let got = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if got != schema {
        return Err(AdminError::Exchange {
            path: path.to_owned(),
            message: format!("expected a {schema} document, got {got:?}"),
        });
    }
    serde_json::from_value(value).map_err(|e| AdminError::Exchange {
        path: path.to_owned(),
        message: format!("a malformed {schema} document: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        let ok =
            |s: &str| serde_json::from_str::<Request>(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok(r#"{"op":"list"}"#), Request::List { limit: None });
        assert_eq!(
            ok(r#"{"op":"list","limit":3}"#),
            Request::List { limit: Some(3) }
        );
        assert_eq!(
            ok(r#"{"op":"show","domain":"a.example"}"#),
            Request::Show {
                domain: "a.example".into()
            }
        );
        assert_eq!(
            ok(r#"{"domains":["a.example"],"op":"forget"}"#),
            Request::Forget {
                domains: vec!["a.example".into()]
            }
        );
        for bad in [
            r#"{"op":"lst"}"#,
            r#"{"op":"list","limit":-1}"#,
            r#"{"op":"show"}"#,
            r#"{"op":"show","domain":"a","x":1}"#,
            r#"{"op":"forget","domains":"a.example"}"#,
            r#"{"domain":"a"}"#,
            "[]",
            "",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
        // What the client sends is what the daemon reads.
        let r = Request::List { limit: None };
        assert_eq!(
            serde_json::to_string(&r).unwrap_or_default(),
            r#"{"op":"list"}"#
        );
    }

    #[test]
    fn error_answers_name_their_schema_first() {
        let a = error_answer("bad-request", "no");
        let text = String::from_utf8_lossy(&a);
        assert!(
            text.starts_with(r#"{"schema":"mtasts-daemon-admin-error/1","error":"bad-request""#),
            "{text}"
        );
        assert!(text.ends_with('\n'));
    }
}
