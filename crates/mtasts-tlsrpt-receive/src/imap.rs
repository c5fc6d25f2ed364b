//! Report e-mails fetched from an IMAP folder (RFC 3501) into the one ingest pipeline
//! ([`crate::ingest`]): one pass ([`ImapIngester::run_once`]), or a watch that waits with IDLE
//! (RFC 2177) and reconnects after failures ([`ImapIngester::watch`]).
//!
//! - **Always TLS.** `imaps://` is TLS from the first byte; `imap://` must offer and accept
//!   STARTTLS before anything else is said, and a server without it is refused (no plaintext
//!   login, ever). The certificate is checked by the project's one TLS client
//!   ([`mtasts_net::tls`]: ring, TLS 1.2 or later, the trust roots given).
//! - **Never lost, at worst a duplicate.** A message is marked processed only after
//!   [`Ingester::ingest`] returned `Ok` (its raw bytes and report durably stored, or
//!   quarantined). A crash or a lost connection before the mark leaves it unmarked: the next pass
//!   fetches it again and the store counts it as a duplicate.
//! - **Processed means:** moved to the `--move-to` folder (`UID MOVE` when the server has MOVE;
//!   else `UID COPY`, `\Deleted` and `UID EXPUNGE` when it has UIDPLUS; else `UID COPY` and the
//!   flags below, as a plain `EXPUNGE` would also remove other clients' deleted messages), or,
//!   without `--move-to`, flagged `\Seen` plus the keyword [`PROCESSED_KEYWORD`] when the
//!   folder's PERMANENTFLAGS allow new keywords. A pass searches for the messages not yet
//!   processed: `UNDELETED NOT KEYWORD $MtastsIngested`, or `UNDELETED UNSEEN` where keywords
//!   cannot be kept.
//! - **Bounded.** Every wait has a limit ([`ImapLimits`]); messages are taken in batches of
//!   [`ImapLimits::batch_size`] UIDs, their sizes (`RFC822.SIZE`) asked first; a message larger
//!   than the ingester's [`ReportLimits::max_input_bytes`](mtasts_core::tlsrpt::report::ReportLimits)
//!   is fetched only up to that many bytes (`BODY.PEEK[]<0.N>`) and quarantined as
//!   `input.too-large` with those first bytes kept. The bodies of a batch arrive as one
//!   stream and are ingested one at a time, so at most one message is held in memory (plus
//!   what the server sends ahead). A server that sends more than it was asked for is bounded
//!   by async-imap's own cap of 512 MiB for one response, and what it sent beyond the limit is
//!   not ingested (the message is quarantined as too large).
//!
//! Each message's origin in the store is its IMAP URL (RFC 5092), without the password:
//! `imaps://reports@imap.example.com:993/INBOX;UIDVALIDITY=1700000000/;UID=42`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{self, MailboxDatum, Response, ResponseCode, Status};
use async_imap::types::{Capability, Flag};
use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures_util::{FutureExt as _, StreamExt as _};
use mtasts_core::tls::HandshakeFailure;
use mtasts_net::tls::{RootsError, TlsClient, TrustRoots, Verification, handshake_failure};
use mtasts_tlsrpt_store::{StoreError, Via};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::ingest::{Counts, Delivery, Ingester};

/// The keyword a processed message gets (with `\Seen`) when it stays in its folder.
pub const PROCESSED_KEYWORD: &str = "$MtastsIngested";

/// The largest password file read: 4 KiB (a password is a line).
pub const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// The longest line a server may send before TLS (its greeting, `CAPABILITY`, the answer to
/// `STARTTLS`): 16 KiB.
pub const MAX_PLAINTEXT_LINE_BYTES: usize = 16 * 1024;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `imaps://`: TLS from the first byte (default port 993).
    Tls,
    /// `imap://`: STARTTLS, required, before anything else (default port 143).
    StartTls,
}

impl Security {
    fn scheme(self) -> &'static str {
        match self {
            Security::Tls => "imaps",
            Security::StartTls => "imap",
        }
    }
}

/// The limits of an IMAP session; every wait on the server has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImapLimits {
    /// Connecting: the TCP connection, STARTTLS, the TLS handshake and the greeting, together.
    /// Default 30 s; 1 s to 10 min.
    pub connect_timeout: Duration,
    /// The longest wait for the server's next response to a command (each message of a
    /// FETCH counts as one response, so a long batch does not run out). Default 120 s; 1 s to
    /// 1 h.
    pub command_timeout: Duration,
    /// UIDs per batch: their sizes are asked for together, their bodies fetched as one stream,
    /// and they are marked processed together after each was ingested. Default 100; 1 to
    /// 10 000.
    pub batch_size: usize,
    /// While watching, IDLE is ended and issued again (with a pass in between) after this long
    /// without new mail; RFC 2177 §3 asks clients to do so at least every 29 minutes. It also
    /// bounds how long a connection that died without a word (no FIN, no RST: a NAT that
    /// forgot it) goes unnoticed while idle: this, plus `command_timeout` for the `DONE`.
    /// Default 29 min; 1 s to 29 min.
    pub idle_reissue: Duration,
    /// The first wait before reconnecting after a failure; it doubles with each failure in a
    /// row, with jitter (a random wait between half and all of it). Default 1 s; 10 ms to
    /// `backoff_max`.
    pub backoff_first: Duration,
    /// The longest wait before reconnecting. Default 5 min; up to 1 h.
    pub backoff_max: Duration,
}

impl Default for ImapLimits {
    fn default() -> Self {
        ImapLimits {
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
            batch_size: 100,
            idle_reissue: Duration::from_secs(29 * 60),
            backoff_first: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5 * 60),
        }
    }
}

impl ImapLimits {
    /// Checks every limit against its documented range.
    pub fn validate(&self) -> Result<(), ImapConfigError> {
        fn range(
            name: &'static str,
            v: Duration,
            lo: Duration,
            hi: Duration,
        ) -> Result<(), ImapConfigError> {
            if v < lo || v > hi {
                return Err(ImapConfigError::Limit {
                    name,
                    message: format!(
                        "{} is outside {} to {}",
                        show_duration(v),
                        show_duration(lo),
                        show_duration(hi)
                    ),
                });
            }
            Ok(())
        }
        let s = Duration::from_secs;
        range("connect timeout", self.connect_timeout, s(1), s(600))?;
        range("command timeout", self.command_timeout, s(1), s(3600))?;
        range("IDLE re-issue", self.idle_reissue, s(1), s(29 * 60))?;
        range(
            "backoff max",
            self.backoff_max,
            Duration::from_millis(10),
            s(3600),
        )?;
        range(
            "first backoff",
            self.backoff_first,
            Duration::from_millis(10),
            self.backoff_max,
        )?;
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(ImapConfigError::Limit {
                name: "batch size",
                message: format!("{} is outside 1 to 10000", self.batch_size),
            });
        }
        Ok(())
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Where the reports are: the mailbox, how to log in, what to do with a processed message.
#[derive(Clone)]
pub struct ImapSource {
    /// `imaps://` or `imap://` with STARTTLS.
    pub security: Security,
    /// The user to log in as.
    pub user: String,
    /// The server's name (checked against its certificate) or IP address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The folder holding the reports (UTF-8; sent in IMAP's modified UTF-7).
    pub folder: String,
    password: String,
    /// Where processed messages go (`--move-to`); created when missing. `None`: they stay,
    /// flagged.
    pub move_to: Option<String>,
    /// Whom to trust for the server's certificate.
    pub roots: TrustRoots,
    /// The limits.
    pub limits: ImapLimits,
}

impl fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSource")
            .field("url", &self.url())
            .field("move_to", &self.move_to)
            .field("roots", &self.roots)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot work: caught before any connection.
#[derive(Debug, thiserror::Error)]
pub enum ImapConfigError {
    /// The URL is not `imaps://USER@HOST[:PORT]/FOLDER` or `imap://…`.
    #[error("IMAP URL {url:?}: {message}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The password file cannot be read or holds no usable password.
    #[error("IMAP password file {path}: {message}")]
    Password {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The `--move-to` folder is unusable.
    #[error("--move-to {folder:?}: {message}")]
    MoveTo {
        /// The folder.
        folder: String,
        /// What is wrong.
        message: String,
    },
    /// A limit is outside its range.
    #[error("IMAP {name}: {message}")]
    Limit {
        /// Which limit.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The trust roots cannot be loaded.
    #[error(transparent)]
    Roots(#[from] RootsError),
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes all but RFC 5092's `achar` (and `extra`).
fn percent_encode(s: &str, extra: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let plain =
            b.is_ascii_alphanumeric() || b"-._~!$'()*+,&=".contains(&b) || extra.contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text the IMAP commands can carry as a quoted string: no CR, LF or NUL.
fn check_line(what: &str, s: &str) -> Result<(), String> {
    if s.contains(['\r', '\n', '\0']) {
        return Err(format!("{what} contains a line break or NUL"));
    }
    Ok(())
}

impl ImapSource {
    /// Parses `imaps://USER@HOST[:PORT]/FOLDER` (or `imap://…`, which must STARTTLS) and reads
    /// the password from `password_file` (one trailing newline dropped). Percent-escapes are
    /// decoded in the user and the folder; an empty folder is `INBOX`.
    pub fn new(url: &str, password_file: &Path) -> Result<ImapSource, ImapConfigError> {
        let shown = password_file.display().to_string();
        let bad = |message: String| ImapConfigError::Password {
            path: shown.clone(),
            message,
        };
        use std::io::Read as _;
        let mut bytes = Vec::new();
        std::fs::File::open(password_file)
            .and_then(|f| f.take(MAX_PASSWORD_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| bad(format!("cannot read it: {e}")))?;
        if bytes.len() as u64 > MAX_PASSWORD_FILE_BYTES {
            return Err(bad(format!(
                "larger than {MAX_PASSWORD_FILE_BYTES} bytes; is it the right file?"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let password = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        ImapSource::with_password(url, password).map_err(|e| match e {
            ImapConfigError::Password { message, .. } => bad(message),
            other => other,
        })
    }

    /// As [`ImapSource::new`], with the password given.
    pub fn with_password(url: &str, password: &str) -> Result<ImapSource, ImapConfigError> {
        let bad = |message: &str| ImapConfigError::Url {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        if password.is_empty() {
            return Err(ImapConfigError::Password {
                path: String::new(),
                message: "the password is empty".into(),
            });
        }
        check_line("the password", password).map_err(|message| ImapConfigError::Password {
            path: String::new(),
            message,
        })?;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not a URL: expected imaps://USER@HOST[:PORT]/FOLDER"))?;
        let security = if scheme.eq_ignore_ascii_case("imaps") {
            Security::Tls
        } else if scheme.eq_ignore_ascii_case("imap") {
            Security::StartTls
        } else {
            return Err(bad(
                "the scheme must be imaps:// (TLS) or imap:// (STARTTLS)",
            ));
        };
        if rest.contains(['?', '#']) {
            return Err(bad(
                "a mailbox URL takes no query or fragment (encode ? and # as %3F and %23)",
            ));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("no user: expected USER@HOST"))?;
        if userinfo.contains(';') {
            return Err(bad(
                ";AUTH= and other user parameters are not supported (LOGIN is used)",
            ));
        }
        if userinfo.contains(':') {
            return Err(bad(
                "a password in the URL is refused: give it in the password file",
            ));
        }
        let user = percent_decode(userinfo).ok_or_else(|| bad("bad percent-escape in the user"))?;
        if user.is_empty() {
            return Err(bad("the user is empty"));
        }
        check_line("the user", &user).map_err(|m| bad(&m))?;
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in the host"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
            };
            (h.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if ServerName::try_from(host.as_str()).is_err() {
            return Err(bad("the host is neither a DNS name nor an IP address"));
        }
        let port = match port {
            None => match security {
                Security::Tls => 993,
                Security::StartTls => 143,
            },
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
        };
        if path.contains(';') {
            return Err(bad(
                "a folder URL takes no ;parameters (encode ; in a folder name as %3B)",
            ));
        }
        let folder = percent_decode(path).ok_or_else(|| bad("bad percent-escape in the folder"))?;
        let folder = if folder.is_empty() {
            "INBOX".to_owned()
        } else {
            folder
        };
        check_line("the folder", &folder).map_err(|m| bad(&m))?;
        Ok(ImapSource {
            security,
            user,
            host,
            port,
            folder,
            password: password.to_owned(),
            move_to: None,
            roots: TrustRoots::Platform,
            limits: ImapLimits::default(),
        })
    }

    /// `imaps://USER@HOST:PORT` (the server, for messages; no password).
    pub fn server(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{}://{}@{host}:{}",
            self.security.scheme(),
            percent_encode(&self.user, b""),
            self.port
        )
    }

    /// The folder's URL (RFC 5092), without the password.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server(), percent_encode(&self.folder, b":@/"))
    }

    /// One message's URL: `…/FOLDER;UIDVALIDITY=V/;UID=N` (RFC 5092).
    pub fn message_url(&self, uid_validity: u32, uid: u32) -> String {
        format!("{};UIDVALIDITY={uid_validity}/;UID={uid}", self.url())
    }
}

/// Why a pass or a watch stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The TCP connection failed.
    #[error("{server}: cannot connect: {source}")]
    Connect {
        /// `imaps://user@host:port`.
        server: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("{server}: no answer {what} within {limit}", limit = show_duration(*limit))]
    Timeout {
        /// The server.
        server: String,
        /// What was waited for.
        what: String,
        /// The limit that ran out.
        limit: Duration,
    },
    /// The TLS handshake failed (the certificate, the version, or the connection).
    #[error("{server}: {failure}")]
    Tls {
        /// The server.
        server: String,
        /// What failed.
        failure: HandshakeFailure,
    },
    /// An `imap://` server that does not offer or refuses STARTTLS: nothing is sent in the
    /// clear.
    #[error(
        "{server}: {message}; refusing to log in without TLS (use imaps:// if the server has TLS on its own port, usually 993)"
    )]
    NoStartTls {
        /// The server.
        server: String,
        /// What the server did.
        message: String,
    },
    /// The server refused the login (a `NO` or `BAD` to `LOGIN`).
    #[error(
        "{server}: the server refused the login as {user:?}: {message} (check the user and the password file)"
    )]
    LoginRefused {
        /// The server.
        server: String,
        /// The user.
        user: String,
        /// What the server said.
        message: String,
    },
    /// The folder cannot be selected.
    #[error("{server}: cannot select the folder {folder:?}: {message}")]
    Folder {
        /// The server.
        server: String,
        /// The folder.
        folder: String,
        /// What the server said.
        message: String,
    },
    /// The `--move-to` folder does not exist and cannot be created.
    #[error("{server}: cannot create the --move-to folder {folder:?}: {message}")]
    MoveTo {
        /// The server.
        server: String,
        /// The folder.
        folder: String,
        /// What the server said.
        message: String,
    },
    /// Processed messages did not keep their mark (`\\Seen`, the keyword): a read-only folder,
    /// or a server that does not store flags. They were ingested; every pass would read them
    /// again.
    #[error(
        "{server}: the folder {folder:?} did not keep the processed mark on UIDs {uids} (is it read-only for this user?); they were ingested, but every pass would read them again"
    )]
    NotMarked {
        /// The server.
        server: String,
        /// The folder.
        folder: String,
        /// The UIDs, as an IMAP set.
        uids: String,
    },
    /// Watching needs IDLE, which the server does not offer.
    #[error(
        "{server}: the server does not offer IDLE (RFC 2177), which watching needs; run single passes from a timer instead"
    )]
    NoIdle {
        /// The server.
        server: String,
    },
    /// A command failed, the server said something unexpected, or the connection was lost.
    #[error("{server}: {during}: {message}")]
    Imap {
        /// The server.
        server: String,
        /// What was being done.
        during: String,
        /// What went wrong.
        message: String,
    },
    /// The store failed on a message (it stays unmarked, and is fetched again).
    #[error("{origin}: cannot store it: {source}")]
    Store {
        /// The message's URL.
        origin: String,
        /// The store's error.
        source: StoreError,
    },
}

impl ImapError {
    /// Whether a watch stops on it (the configuration or the account is wrong, and retrying
    /// cannot help) rather than reconnecting.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ImapError::NoStartTls { .. }
                | ImapError::LoginRefused { .. }
                | ImapError::Folder { .. }
                | ImapError::MoveTo { .. }
                | ImapError::NotMarked { .. }
                | ImapError::NoIdle { .. }
        )
    }
}

/// A shutdown signal, polled at safe points.
struct Stop<'a> {
    fut: Option<Pin<&'a mut (dyn Future<Output = ()> + Send + 'a)>>,
    fired: bool,
}

impl Stop<'_> {
    fn never() -> Stop<'static> {
        Stop {
            fut: None,
            fired: false,
        }
    }

    /// Whether the signal has come (without waiting).
    fn requested(&mut self) -> bool {
        if !self.fired
            && let Some(f) = self.fut.as_mut()
            && f.as_mut().now_or_never().is_some()
        {
            self.fired = true;
        }
        self.fired
    }

    /// Waits for the signal (forever, for none).
    async fn wait(&mut self) {
        if self.fired {
            return;
        }
        match self.fut.as_mut() {
            Some(f) => {
                f.as_mut().await;
                self.fired = true;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// The stream under the IMAP session.
type Stream = tokio_rustls::client::TlsStream<TcpStream>;

/// What the server offers, learned once per connection.
#[derive(Clone, Copy, Debug)]
struct Offers {
    moves: bool,
    uidplus: bool,
    idle: bool,
    /// The folder keeps [`PROCESSED_KEYWORD`].
    keyword: bool,
    uid_validity: u32,
}

/// Takes the report e-mails of one IMAP folder through an [`Ingester`].
#[derive(Clone)]
pub struct ImapIngester {
    source: ImapSource,
    tls: TlsClient,
    ingester: Ingester,
    folder_wire: String,
    move_to_wire: Option<String>,
}

impl fmt::Debug for ImapIngester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapIngester")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What ended an IDLE.
enum Wake {
    NewMail,
    Reissue,
    Stop,
    Lost(String),
}

impl ImapIngester {
    /// Checks the configuration (limits, `--move-to`) and loads the trust roots.
    pub fn new(source: ImapSource, ingester: Ingester) -> Result<ImapIngester, ImapConfigError> {
        source.limits.validate()?;
        if let Some(dest) = &source.move_to {
            let bad = |message: &str| ImapConfigError::MoveTo {
                folder: dest.clone(),
                message: message.to_owned(),
            };
            if dest.is_empty() {
                return Err(bad("empty"));
            }
            check_line("the folder name", dest).map_err(|m| bad(&m))?;
            if dest == &source.folder
                || (dest.eq_ignore_ascii_case("INBOX")
                    && source.folder.eq_ignore_ascii_case("INBOX"))
            {
                return Err(bad("it is the folder the reports are read from"));
            }
        }
        let tls = TlsClient::from_roots(&source.roots)?;
        Ok(ImapIngester {
            folder_wire: modified_utf7(&source.folder),
            move_to_wire: source.move_to.as_deref().map(modified_utf7),
            source,
            tls,
            ingester,
        })
    }

    /// The source.
    pub fn source(&self) -> &ImapSource {
        &self.source
    }

    /// One pass: connect, log in, select the folder, ingest every message not yet processed,
    /// mark each, log out.
    pub async fn run_once(&self) -> Result<Counts, ImapError> {
        let (mut session, offers) = self.open().await?;
        let counts = self.pass(&mut session, &offers, &mut Stop::never()).await?;
        self.logout(&mut session).await;
        Ok(counts)
    }

    /// Watches the folder until `shutdown` completes: a pass, then IDLE until new mail (or
    /// [`ImapLimits::idle_reissue`]), a pass, and so on. `on_pass` gets the counts of each pass.
    /// A connection that fails (network, TLS, a server error, the store) is logged as a
    /// warning and opened again after a backoff ([`ImapLimits::backoff_first`] doubling to
    /// [`ImapLimits::backoff_max`], with jitter); only the errors of
    /// [`ImapError::is_fatal`] (a refused login, a missing folder, no STARTTLS or IDLE) end
    /// it. `shutdown` is honoured between batches, while idle and while waiting to reconnect;
    /// returns the counts of all passes.
    pub async fn watch<F>(
        &self,
        shutdown: F,
        mut on_pass: impl FnMut(&Counts) + Send,
    ) -> Result<Counts, ImapError>
    where
        F: Future<Output = ()> + Send,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stop = Stop {
            fut: Some(shutdown.as_mut()),
            fired: false,
        };
        let mut total = Counts::default();
        let limits = self.source.limits;
        let mut backoff = limits.backoff_first;
        loop {
            if stop.requested() {
                return Ok(total);
            }
            let result = self
                .session(&mut stop, &mut total, &mut on_pass, &mut backoff)
                .await;
            match result {
                Ok(()) => return Ok(total),
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    let delay = jittered(backoff);
                    tracing::warn!(
                        server = %self.source.server(),
                        error = %e,
                        retry_in_ms = delay.as_millis() as u64,
                        "IMAP: the connection failed; connecting again after a pause"
                    );
                    backoff = (backoff * 2).min(limits.backoff_max);
                    tokio::select! {
                        () = stop.wait() => return Ok(total),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One connection of a watch: `Ok` when asked to stop.
    async fn session(
        &self,
        stop: &mut Stop<'_>,
        total: &mut Counts,
        on_pass: &mut (impl FnMut(&Counts) + Send),
        backoff: &mut Duration,
    ) -> Result<(), ImapError> {
        let opened = tokio::select! {
            () = stop.wait() => return Ok(()),
            r = self.open() => r,
        };
        let (mut session, offers) = opened?;
        if !offers.idle {
            return Err(ImapError::NoIdle {
                server: self.source.server(),
            });
        }
        let limits = self.source.limits;
        loop {
            let counts = self.pass(&mut session, &offers, stop).await?;
            *backoff = limits.backoff_first;
            *total = add(*total, counts);
            on_pass(&counts);
            tracing::info!(server = %self.source.url(), "IMAP pass: {counts}");
            if stop.requested() {
                self.logout(&mut session).await;
                return Ok(());
            }
            // New mail that arrived during the pass was announced then, not again in IDLE.
            if drain_exists(&mut session) {
                continue;
            }
            let mut idle = session.idle();
            self.within(limits.command_timeout, "to IDLE", idle.init())
                .await?
                .map_err(|e| self.imap_err("IDLE", e))?;
            let deadline = Instant::now() + limits.idle_reissue;
            let wake = loop {
                let (wait, _interrupt) = idle.wait_with_timeout(limits.idle_reissue);
                let event = tokio::select! {
                    () = stop.wait() => Some(Wake::Stop),
                    r = tokio::time::timeout_at(deadline, wait) => match r {
                        Err(_) | Ok(Ok(IdleResponse::Timeout)) => Some(Wake::Reissue),
                        // The stop source is alive, so this is the end of the stream.
                        Ok(Ok(IdleResponse::ManualInterrupt)) => {
                            Some(Wake::Lost("the connection closed while idle".into()))
                        }
                        Ok(Ok(IdleResponse::NewData(d))) => match d.parsed() {
                            Response::MailboxData(MailboxDatum::Exists(_)) => Some(Wake::NewMail),
                            Response::Data { status: Status::Bye, outcome } => Some(Wake::Lost(format!(
                                "the server said BYE: {}",
                                outcome.information.as_deref().unwrap_or("")
                            ))),
                            // Flag changes, expunges, RECENT: keep idling.
                            _ => None,
                        },
                        Ok(Err(e)) => Some(Wake::Lost(e.to_string())),
                    },
                };
                if let Some(w) = event {
                    break w;
                }
            };
            match wake {
                Wake::Lost(message) => {
                    return Err(ImapError::Imap {
                        server: self.source.server(),
                        during: "IDLE".into(),
                        message,
                    });
                }
                Wake::Stop => {
                    if let Ok(Ok(mut s)) = self
                        .within(limits.command_timeout, "to DONE", idle.done())
                        .await
                    {
                        self.logout(&mut s).await;
                    }
                    return Ok(());
                }
                Wake::NewMail | Wake::Reissue => {
                    session = self
                        .within(limits.command_timeout, "to DONE", idle.done())
                        .await?
                        .map_err(|e| self.imap_err("ending IDLE", e))?;
                }
            }
        }
    }

    async fn within<T>(
        &self,
        limit: Duration,
        what: &str,
        fut: impl Future<Output = T>,
    ) -> Result<T, ImapError> {
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| ImapError::Timeout {
                server: self.source.server(),
                what: what.to_owned(),
                limit,
            })
    }

    fn imap_err(&self, during: &str, e: async_imap::error::Error) -> ImapError {
        ImapError::Imap {
            server: self.source.server(),
            during: during.to_owned(),
            message: e.to_string(),
        }
    }

    fn protocol(&self, during: &str, message: String) -> ImapError {
        ImapError::Imap {
            server: self.source.server(),
            during: during.to_owned(),
            message,
        }
    }

    async fn logout(&self, session: &mut Session<Stream>) {
        let _ = self
            .within(
                self.source.limits.command_timeout,
                "to LOGOUT",
                session.logout(),
            )
            .await;
    }

    /// Connects, secures, logs in, learns the capabilities, makes sure the `--move-to` folder
    /// exists, and selects the folder.
    async fn open(&self) -> Result<(Session<Stream>, Offers), ImapError> {
        let src = &self.source;
        let limits = src.limits;
        let deadline = Instant::now() + limits.connect_timeout;
        let server = src.server();
        let timeout = |what: &str| ImapError::Timeout {
            server: server.clone(),
            what: what.to_owned(),
            limit: limits.connect_timeout,
        };
        let tcp =
            tokio::time::timeout_at(deadline, TcpStream::connect((src.host.as_str(), src.port)))
                .await
                .map_err(|_| timeout("to connect"))?
                .map_err(|source| ImapError::Connect {
                    server: server.clone(),
                    source,
                })?;
        let _ = tcp.set_nodelay(true);
        let tcp = match src.security {
            Security::Tls => tcp,
            Security::StartTls => tokio::time::timeout_at(deadline, self.starttls(tcp))
                .await
                .map_err(|_| timeout("before TLS (greeting, CAPABILITY, STARTTLS)"))??,
        };
        let (config, slot) = self
            .tls
            .config(Verification::Enforce, &[])
            .map_err(|e| self.protocol("setting up TLS", e.to_string()))?;
        let name = ServerName::try_from(src.host.clone())
            .map_err(|e| self.protocol("setting up TLS", e.to_string()))?;
        let tls = tokio::time::timeout_at(deadline, TlsConnector::from(config).connect(name, tcp))
            .await
            .map_err(|_| timeout("to the TLS handshake"))?
            .map_err(|e| ImapError::Tls {
                server: server.clone(),
                failure: handshake_failure(&e, &slot, &src.host),
            })?;
        let mut client = Client::new(tls);
        if src.security == Security::Tls {
            let greeting = tokio::time::timeout_at(deadline, client.read_response())
                .await
                .map_err(|_| timeout("with a greeting"))?
                .map_err(|e| self.protocol("reading the greeting", e.to_string()))?
                .ok_or_else(|| {
                    self.protocol("reading the greeting", "the connection closed".into())
                })?;
            match greeting.parsed() {
                Response::Data {
                    status: Status::Ok, ..
                } => {}
                other => {
                    return Err(self.protocol(
                        "reading the greeting",
                        format!("expected OK, got {}", describe(other)),
                    ));
                }
            }
        }
        let login = self
            .within(
                limits.command_timeout,
                "to LOGIN",
                client.login(&src.user, &src.password),
            )
            .await?;
        let mut session = match login {
            Ok(s) => s,
            Err((async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m), _)) => {
                return Err(ImapError::LoginRefused {
                    server,
                    user: src.user.clone(),
                    message: m,
                });
            }
            Err((e, _)) => return Err(self.imap_err("LOGIN", e)),
        };
        let caps = self
            .within(
                limits.command_timeout,
                "to CAPABILITY",
                session.capabilities(),
            )
            .await?
            .map_err(|e| self.imap_err("CAPABILITY", e))?;
        let has = |name: &str| {
            caps.iter()
                .any(|c| matches!(c, Capability::Atom(a) if a.eq_ignore_ascii_case(name)))
        };
        let (moves, uidplus, idle) = (has("MOVE"), has("UIDPLUS"), has("IDLE"));
        if let (Some(dest), Some(wire)) = (&src.move_to, &self.move_to_wire) {
            self.ensure_folder(&mut session, dest, wire).await?;
        }
        let mailbox = self
            .within(
                limits.command_timeout,
                "to SELECT",
                session.select(&self.folder_wire),
            )
            .await?
            .map_err(|e| match e {
                async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m) => {
                    ImapError::Folder {
                        server: server.clone(),
                        folder: src.folder.clone(),
                        message: m,
                    }
                }
                other => self.imap_err("SELECT", other),
            })?;
        let uid_validity = mailbox.uid_validity.ok_or_else(|| {
            self.protocol(
                "SELECT",
                format!(
                    "no UIDVALIDITY for {:?}: cannot name its messages",
                    src.folder
                ),
            )
        })?;
        let keyword = mailbox.permanent_flags.iter().any(|f| match f {
            Flag::MayCreate => true,
            Flag::Custom(k) => k.eq_ignore_ascii_case(PROCESSED_KEYWORD),
            _ => false,
        });
        drain_exists(&mut session);
        Ok((
            session,
            Offers {
                moves,
                uidplus,
                idle,
                keyword,
                uid_validity,
            },
        ))
    }

    /// The plaintext part of `imap://`: the greeting, the capabilities, `STARTTLS` and its
    /// `OK`; nothing else may follow before the handshake.
    async fn starttls(&self, mut tcp: TcpStream) -> Result<TcpStream, ImapError> {
        let mut buf = Vec::new();
        let during = "before TLS";
        let line = read_line(&mut tcp, &mut buf)
            .await
            .map_err(|m| self.protocol(during, m))?;
        let mut starttls = None;
        match parse_line(&line).map_err(|m| self.protocol(during, m))? {
            Response::Data {
                status: Status::Ok,
                outcome,
            } => {
                if let Some(ResponseCode::Capabilities(c)) = &outcome.code {
                    starttls = Some(offers_starttls(c));
                }
            }
            Response::Data {
                status: Status::PreAuth,
                ..
            } => {
                return Err(ImapError::NoStartTls {
                    server: self.source.server(),
                    message: "the server greets with PREAUTH (already logged in, in the clear), so STARTTLS is impossible".into(),
                });
            }
            other => {
                return Err(self.protocol(
                    "reading the greeting",
                    format!("expected OK, got {}", describe(&other)),
                ));
            }
        }
        let starttls = match starttls {
            Some(s) => s,
            None => {
                let mut found = false;
                self.plain_command(&mut tcp, &mut buf, "m1", "CAPABILITY", |r| {
                    if let Response::Capabilities(c) = r {
                        found |= offers_starttls(c);
                    }
                })
                .await?;
                found
            }
        };
        if !starttls {
            return Err(ImapError::NoStartTls {
                server: self.source.server(),
                message: "the server does not offer STARTTLS".into(),
            });
        }
        let done = self
            .plain_command(&mut tcp, &mut buf, "m2", "STARTTLS", |_| {})
            .await?;
        if let Some(message) = done {
            return Err(ImapError::NoStartTls {
                server: self.source.server(),
                message: format!("the server refused STARTTLS: {message}"),
            });
        }
        if !buf.is_empty() {
            return Err(self.protocol(
                during,
                "the server sent more after accepting STARTTLS, before the TLS handshake (refused: it could be an injection)".into(),
            ));
        }
        Ok(tcp)
    }

    /// Sends `tag command` in the clear and reads up to its tagged answer, handing each
    /// untagged response to `each`: `Ok(None)` for OK, `Ok(Some(text))` for NO or BAD.
    async fn plain_command(
        &self,
        tcp: &mut TcpStream,
        buf: &mut Vec<u8>,
        tag: &str,
        command: &str,
        mut each: impl FnMut(&Response<'_>),
    ) -> Result<Option<String>, ImapError> {
        let during = format!("{command} (before TLS)");
        tcp.write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .map_err(|e| self.protocol(&during, e.to_string()))?;
        loop {
            let line = read_line(tcp, buf)
                .await
                .map_err(|m| self.protocol(&during, m))?;
            let r = parse_line(&line).map_err(|m| self.protocol(&during, m))?;
            match &r {
                Response::Done {
                    tag: t,
                    status,
                    outcome,
                } if t.0 == tag => {
                    return Ok(match status {
                        Status::Ok => None,
                        _ => Some(outcome.information.as_deref().unwrap_or("").to_owned()),
                    });
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(self.protocol(
                        &during,
                        format!(
                            "the server said BYE: {}",
                            outcome.information.as_deref().unwrap_or("")
                        ),
                    ));
                }
                other => each(other),
            }
        }
    }

    /// Creates the `--move-to` folder unless it exists.
    async fn ensure_folder(
        &self,
        session: &mut Session<Stream>,
        folder: &str,
        wire: &str,
    ) -> Result<(), ImapError> {
        let limit = self.source.limits.command_timeout;
        let mut exists = false;
        {
            let pattern = quote(wire);
            let mut names = self
                .within(limit, "to LIST", session.list(Some(""), Some(&pattern)))
                .await?
                .map_err(|e| self.imap_err("LIST", e))?;
            while let Some(n) = self.within(limit, "to LIST", names.next()).await? {
                let n = n.map_err(|e| self.imap_err("LIST", e))?;
                exists |= n.name() == wire;
            }
        }
        if exists {
            return Ok(());
        }
        self.within(limit, "to CREATE", session.create(wire))
            .await?
            .map_err(|e| ImapError::MoveTo {
                server: self.source.server(),
                folder: folder.to_owned(),
                message: e.to_string(),
            })?;
        tracing::info!(server = %self.source.server(), folder, "IMAP: created the --move-to folder");
        Ok(())
    }

    /// Every message not yet processed, batch by batch.
    async fn pass(
        &self,
        session: &mut Session<Stream>,
        offers: &Offers,
        stop: &mut Stop<'_>,
    ) -> Result<Counts, ImapError> {
        let limit = self.source.limits.command_timeout;
        let query = if offers.keyword {
            format!("UNDELETED NOT KEYWORD {PROCESSED_KEYWORD}")
        } else {
            "UNDELETED UNSEEN".to_owned()
        };
        let mut uids: Vec<u32> = self
            .within(limit, "to UID SEARCH", session.uid_search(&query))
            .await?
            .map_err(|e| self.imap_err("UID SEARCH", e))?
            .into_iter()
            .collect();
        uids.sort_unstable();
        let mut counts = Counts::default();
        let max = self.ingester.limits().max_input_bytes;
        for batch in uids.chunks(self.source.limits.batch_size) {
            if stop.requested() {
                break;
            }
            let sizes = self.sizes(session, batch).await?;
            // Those still there; one without a size (a server that leaves RFC822.SIZE out) is
            // fetched whole and measured.
            let (large, small): (Vec<u32>, Vec<u32>) = batch
                .iter()
                .filter(|u| sizes.contains_key(u))
                .partition(|u| {
                    sizes
                        .get(u)
                        .copied()
                        .flatten()
                        .is_some_and(|s| s as usize > max)
                });
            let sizes: HashMap<u32, u32> = sizes
                .into_iter()
                .filter_map(|(u, s)| Some((u, s?)))
                .collect();
            let mut done = Vec::with_capacity(batch.len());
            if !small.is_empty() {
                self.fetch_ingest(session, offers, &small, None, &mut counts, &mut done)
                    .await?;
            }
            if !large.is_empty() {
                self.fetch_ingest(
                    session,
                    offers,
                    &large,
                    Some(&sizes),
                    &mut counts,
                    &mut done,
                )
                .await?;
            }
            self.mark(session, offers, &done).await?;
        }
        Ok(counts)
    }

    /// `RFC822.SIZE` of each UID of `batch` still there (`None`: the server left it out).
    async fn sizes(
        &self,
        session: &mut Session<Stream>,
        batch: &[u32],
    ) -> Result<HashMap<u32, Option<u32>>, ImapError> {
        let limit = self.source.limits.command_timeout;
        let wanted: HashSet<u32> = batch.iter().copied().collect();
        let mut sizes = HashMap::with_capacity(batch.len());
        let mut items = self
            .within(
                limit,
                "to UID FETCH RFC822.SIZE",
                session.uid_fetch(uid_set(batch), "(UID RFC822.SIZE)"),
            )
            .await?
            .map_err(|e| self.imap_err("UID FETCH RFC822.SIZE", e))?;
        while let Some(item) = self
            .within(limit, "to UID FETCH RFC822.SIZE", items.next())
            .await?
        {
            let item = item.map_err(|e| self.imap_err("UID FETCH RFC822.SIZE", e))?;
            if let Some(uid) = item.uid
                && wanted.contains(&uid)
            {
                // An unsolicited FETCH (a flag change) for the same UID has no size.
                let entry = sizes.entry(uid).or_insert(None);
                if item.size.is_some() {
                    *entry = item.size;
                }
            }
        }
        Ok(sizes)
    }

    /// Fetches the bodies of `uids` (whole, or the first `max_input_bytes` of each when
    /// `large` gives their sizes) and ingests each as it arrives.
    async fn fetch_ingest(
        &self,
        session: &mut Session<Stream>,
        offers: &Offers,
        uids: &[u32],
        large: Option<&HashMap<u32, u32>>,
        counts: &mut Counts,
        done: &mut Vec<u32>,
    ) -> Result<(), ImapError> {
        let limit = self.source.limits.command_timeout;
        let max = self.ingester.limits().max_input_bytes;
        let query = match large {
            None => "(UID INTERNALDATE BODY.PEEK[])".to_owned(),
            Some(_) => format!("(UID INTERNALDATE BODY.PEEK[]<0.{max}>)"),
        };
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let mut seen = HashSet::with_capacity(uids.len());
        let mut items = self
            .within(
                limit,
                "to UID FETCH",
                session.uid_fetch(uid_set(uids), &query),
            )
            .await?
            .map_err(|e| self.imap_err("UID FETCH", e))?;
        while let Some(item) = self.within(limit, "to UID FETCH", items.next()).await? {
            let item = item.map_err(|e| self.imap_err("UID FETCH", e))?;
            let Some(uid) = item.uid else { continue };
            let Some(body) = item.body() else { continue };
            if !wanted.contains(&uid) || !seen.insert(uid) {
                continue;
            }
            // A server that sends more than asked for (or than RFC822.SIZE said): too large.
            let (bytes, too_large) = match large.and_then(|l| l.get(&uid)) {
                Some(size) => (
                    &body[..body.len().min(max)],
                    Some(u64::from(*size).max(body.len() as u64)),
                ),
                None if body.len() > max => (&body[..max], Some(body.len() as u64)),
                None => (body, None),
            };
            let origin = self.source.message_url(offers.uid_validity, uid);
            let received_at: DateTime<Utc> = item.internal_date().map_or_else(
                || DateTime::<Utc>::from(std::time::SystemTime::now()),
                |d| d.with_timezone(&Utc),
            );
            let arrival = self
                .ingester
                .ingest(&Delivery {
                    bytes,
                    via: Via::Imap,
                    origin: &origin,
                    too_large,
                    received_at,
                })
                .await
                .map_err(|source| ImapError::Store {
                    origin: origin.clone(),
                    source,
                })?;
            tracing::debug!(origin, ?arrival, "IMAP: ingested");
            counts.add(&arrival);
            done.push(uid);
        }
        Ok(())
    }

    /// Marks `uids` processed (they were all ingested).
    async fn mark(
        &self,
        session: &mut Session<Stream>,
        offers: &Offers,
        uids: &[u32],
    ) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let limit = self.source.limits.command_timeout;
        let set = uid_set(uids);
        let flags = if offers.keyword {
            format!("\\Seen {PROCESSED_KEYWORD}")
        } else {
            "\\Seen".to_owned()
        };
        match (&self.move_to_wire, offers.moves, offers.uidplus) {
            (Some(dest), true, _) => {
                self.store(session, offers, uids, &flags).await?;
                self.within(limit, "to UID MOVE", session.uid_mv(&set, dest))
                    .await?
                    .map_err(|e| self.imap_err("UID MOVE", e))?;
            }
            (Some(dest), false, uidplus) => {
                self.within(limit, "to UID COPY", session.uid_copy(&set, dest))
                    .await?
                    .map_err(|e| self.imap_err("UID COPY", e))?;
                if uidplus {
                    self.store(session, offers, uids, &format!("\\Deleted {flags}"))
                        .await?;
                    let gone = self
                        .within(limit, "to UID EXPUNGE", session.uid_expunge(&set))
                        .await?
                        .map_err(|e| self.imap_err("UID EXPUNGE", e))?;
                    let mut gone = std::pin::pin!(gone);
                    while let Some(r) = self.within(limit, "to UID EXPUNGE", gone.next()).await? {
                        r.map_err(|e| self.imap_err("UID EXPUNGE", e))?;
                    }
                } else {
                    self.store(session, offers, uids, &flags).await?;
                }
            }
            (None, ..) => self.store(session, offers, uids, &flags).await?,
        }
        Ok(())
    }

    /// Adds `flags` to `uids`, then reads the flags back: each message still there must now have
    /// `\\Seen` (and [`PROCESSED_KEYWORD`] where the folder keeps it), or the mark did not
    /// hold (a read-only folder) and every later pass would read the messages again.
    async fn store(
        &self,
        session: &mut Session<Stream>,
        offers: &Offers,
        uids: &[u32],
        flags: &str,
    ) -> Result<(), ImapError> {
        let limit = self.source.limits.command_timeout;
        let set = uid_set(uids);
        {
            let mut updates = self
                .within(
                    limit,
                    "to UID STORE",
                    session.uid_store(&set, format!("+FLAGS.SILENT ({flags})")),
                )
                .await?
                .map_err(|e| self.imap_err("UID STORE", e))?;
            while let Some(r) = self.within(limit, "to UID STORE", updates.next()).await? {
                r.map_err(|e| self.imap_err("UID STORE", e))?;
            }
        }
        let mut unmarked = HashSet::new();
        let mut items = self
            .within(
                limit,
                "to UID FETCH FLAGS",
                session.uid_fetch(&set, "(UID FLAGS)"),
            )
            .await?
            .map_err(|e| self.imap_err("UID FETCH FLAGS", e))?;
        while let Some(item) = self
            .within(limit, "to UID FETCH FLAGS", items.next())
            .await?
        {
            let item = item.map_err(|e| self.imap_err("UID FETCH FLAGS", e))?;
            let Some(uid) = item.uid else { continue };
            let (mut seen, mut keyword) = (false, !offers.keyword);
            for f in item.flags() {
                match f {
                    Flag::Seen => seen = true,
                    Flag::Custom(k) if k.eq_ignore_ascii_case(PROCESSED_KEYWORD) => keyword = true,
                    _ => {}
                }
            }
            if !(seen && keyword) {
                unmarked.insert(uid);
            }
        }
        // A message gone meanwhile (another client expunged it) will not be read again.
        let missing: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| unmarked.contains(u))
            .collect();
        if !missing.is_empty() {
            return Err(ImapError::NotMarked {
                server: self.source.server(),
                folder: self.source.folder.clone(),
                uids: uid_set(&missing),
            });
        }
        Ok(())
    }
}

fn add(a: Counts, b: Counts) -> Counts {
    Counts {
        read: a.read + b.read,
        stored: a.stored + b.stored,
        duplicates: a.duplicates + b.duplicates,
        quarantined: a.quarantined + b.quarantined,
    }
}

/// Between half and all of `d`.
fn jittered(d: Duration) -> Duration {
    let half = d / 2;
    let span = u64::try_from((d - half).as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(fastrand::u64(0..=span))
}

/// Empties the unsolicited responses; whether one of them announced new mail.
fn drain_exists(session: &mut Session<Stream>) -> bool {
    let mut exists = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        exists |= matches!(r, async_imap::types::UnsolicitedResponse::Exists(_));
    }
    exists
}

fn offers_starttls(caps: &[imap_proto::Capability<'_>]) -> bool {
    caps.iter()
        .any(|c| matches!(c, imap_proto::Capability::Atom(a) if a.eq_ignore_ascii_case("STARTTLS")))
}

/// A response for an error message: its kind, not its text.
fn describe(r: &Response<'_>) -> String {
    match r {
        Response::Data { status, outcome } => format!(
            "{status:?} {}",
            outcome.information.as_deref().unwrap_or("")
        ),
        Response::Done { status, .. } => format!("a tagged {status:?}"),
        _ => "another response".to_owned(),
    }
}

/// Reads one CRLF-terminated line (at most [`MAX_PLAINTEXT_LINE_BYTES`]) from `tcp`, keeping
/// what follows it in `buf`.
async fn read_line(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let rest = buf.split_off(end + 2);
            return Ok(std::mem::replace(buf, rest));
        }
        if buf.len() > MAX_PLAINTEXT_LINE_BYTES {
            return Err(format!(
                "a line longer than {MAX_PLAINTEXT_LINE_BYTES} bytes before TLS"
            ));
        }
        let mut chunk = [0u8; 2048];
        let n = tcp.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_line(line: &[u8]) -> Result<Response<'_>, String> {
    match Response::parse(line) {
        Ok(([], r)) => Ok(r),
        _ => Err(format!(
            "cannot read the server's line {:?}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        )),
    }
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `1:3,5,7:9` for sorted UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A mailbox name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): printable ASCII as it is (`&`
/// as `&-`), anything else as `&` + modified base64 of UTF-16 + `-`.
pub fn modified_utf7(name: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    fn flush(out: &mut String, units: &mut Vec<u16>) {
        if units.is_empty() {
            return;
        }
        let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out.push('-');
        units.clear();
    }
    let mut out = String::with_capacity(name.len());
    let mut units = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut units);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut b = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut b));
        }
    }
    flush(&mut out, &mut units);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(url: &str) -> Result<ImapSource, ImapConfigError> {
        ImapSource::with_password(url, "secret")
    }

    #[test]
    fn urls_parse_with_defaults_and_escapes() {
        let s = src("imaps://reports%40example.com@imap.example.com/TLS%20Reports").expect("url");
        assert_eq!(s.security, Security::Tls);
        assert_eq!(s.user, "reports@example.com");
        assert_eq!(s.host, "imap.example.com");
        assert_eq!(s.port, 993);
        assert_eq!(s.folder, "TLS Reports");
        assert_eq!(
            s.message_url(7, 42),
            "imaps://reports%40example.com@imap.example.com:993/TLS%20Reports;UIDVALIDITY=7/;UID=42"
        );
        let s = src("imap://u@[::1]:1143").expect("url");
        assert_eq!(
            (s.security, s.host.as_str(), s.port, s.folder.as_str()),
            (Security::StartTls, "::1", 1143, "INBOX")
        );
        assert_eq!(s.server(), "imap://u@[::1]:1143");
        // An unescaped @ in the user: the last one separates the host.
        assert_eq!(
            src("imaps://a@b.example@h.example/x").expect("url").user,
            "a@b.example"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, part) in [
            ("https://u@h/INBOX", "scheme"),
            ("imaps://h/INBOX", "no user"),
            ("imaps://u:pw@h/INBOX", "password in the URL"),
            ("imaps://u;AUTH=*@h/INBOX", "AUTH="),
            ("imaps://u@h:0/INBOX", "port"),
            ("imaps://u@h:99999/INBOX", "port"),
            ("imaps://u@/INBOX", "host is empty"),
            ("imaps://u@h/INBOX;UIDVALIDITY=1", ";parameters"),
            ("imaps://u@h/INBOX?x", "query"),
            ("imaps://u@h/%zz", "percent-escape"),
            ("imaps://u@h/a%0Db", "line break"),
            ("imaps://u@a..b/INBOX", "neither a DNS name"),
        ] {
            let e = src(url).expect_err(url).to_string();
            assert!(e.contains(part), "{url}: {e}");
            assert!(e.contains(url), "{url}: the message names the URL: {e}");
        }
        let e = ImapSource::with_password("imaps://u@h/", "a\nb")
            .expect_err("newline")
            .to_string();
        assert!(e.contains("line break"), "{e}");
    }

    #[test]
    fn password_file_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret \n").expect("write");
        let s = ImapSource::new("imaps://u@h/", &p).expect("source");
        assert_eq!(s.password, "s3cret ");
        std::fs::write(&p, "s3cret\n\n").expect("write");
        let e = ImapSource::new("imaps://u@h/", &p)
            .expect_err("two lines")
            .to_string();
        assert!(
            e.contains(&p.display().to_string()) && e.contains("line break"),
            "{e}"
        );
        std::fs::write(&p, "\n").expect("write");
        let e = ImapSource::new("imaps://u@h/", &p)
            .expect_err("empty")
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let e = ImapSource::new("imaps://u@h/", &dir.path().join("missing"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("missing") && e.contains("cannot read"), "{e}");
        // The password is never shown.
        std::fs::write(&p, "s3cret").expect("write");
        let s = ImapSource::new("imaps://u@h/", &p).expect("source");
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn limits_are_checked() {
        assert!(ImapLimits::default().validate().is_ok());
        let bad = ImapLimits {
            idle_reissue: Duration::from_secs(30 * 60),
            ..ImapLimits::default()
        };
        let e = bad.validate().expect_err("30 min").to_string();
        assert!(e.contains("IDLE re-issue") && e.contains("1800 s"), "{e}");
        let bad = ImapLimits {
            batch_size: 0,
            ..ImapLimits::default()
        };
        assert!(
            bad.validate()
                .expect_err("0")
                .to_string()
                .contains("batch size")
        );
        let bad = ImapLimits {
            backoff_first: Duration::from_secs(10 * 60),
            ..ImapLimits::default()
        };
        assert!(
            bad.validate()
                .expect_err("first > max")
                .to_string()
                .contains("first backoff")
        );
    }

    #[test]
    fn uid_sets_are_ranges() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 7, 8, 3]), "1:3,5,7:9");
        assert_eq!(uid_set(&[4]), "4");
    }

    #[test]
    fn rfc3501_s5_1_3_mailbox_names_in_modified_utf7() {
        // The examples of RFC 3501 §5.1.3.
        assert_eq!(
            modified_utf7("~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(modified_utf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(modified_utf7("A&B"), "A&-B");
        assert_eq!(modified_utf7("INBOX"), "INBOX");
    }

    #[test]
    fn jitter_stays_within_half_and_all() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(8));
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
                "{d:?}"
            );
        }
    }
}
