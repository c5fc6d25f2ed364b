//! A socketmap client for a running daemon: what `mtasts daemon query` uses, so trying the
//! daemon needs neither a Postfix `main.cf` (`postmap -q`) nor a hand-written netstring client.
//!
//! It speaks the protocol of Postfix's `socketmap_table(5)`: one netstring `NAME KEY` per
//! request, one netstring reply, several requests on one connection.

use std::path::PathBuf;
use std::time::Duration;

use mtasts_postfix::socketmap::{Decoder, encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::config::Listener;

/// The largest reply accepted: Postfix's own limit (`socketmap_max_reply_size`, 100000).
pub const MAX_REPLY: usize = 100_000;

/// Where the daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `HOST:PORT`.
    Tcp(String),
    /// A Unix socket.
    Unix(PathBuf),
}

impl Endpoint {
    /// `unix:PATH`, or a path starting with `/`, is a Unix socket; anything else `HOST:PORT`.
    pub fn parse(s: &str) -> Endpoint {
        if let Some(p) = s.strip_prefix("unix:") {
            Endpoint::Unix(PathBuf::from(p))
        } else if s.starts_with('/') {
            Endpoint::Unix(PathBuf::from(s))
        } else {
            Endpoint::Tcp(s.to_owned())
        }
    }

    /// The first listener of a configuration.
    pub fn of(listener: &Listener) -> Endpoint {
        match listener {
            Listener::Tcp(a) => Endpoint::Tcp(a.to_string()),
            Listener::Unix(u) => Endpoint::Unix(u.path.clone()),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Why a query got no answer. Each message names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The key cannot be sent: socketmap keys are one token.
    #[error("{key:?} cannot be asked: a socketmap key has no spaces or control characters")]
    BadKey {
        /// The key.
        key: String,
    },
    /// Connecting failed.
    #[error("cannot connect to the daemon at {endpoint}: {source}")]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        source: std::io::Error,
    },
    /// Writing or reading failed, or the daemon closed the connection.
    #[error("{endpoint}: {message}")]
    Exchange {
        /// Where.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// No reply within the timeout.
    #[error("{endpoint}: no reply to {key:?} within {seconds} s")]
    Timeout {
        /// Where.
        endpoint: String,
        /// The key asked.
        key: String,
        /// The timeout.
        seconds: f64,
    },
}

/// Ask the daemon at `endpoint` for each of `keys` in map `map`, on one connection, each reply
/// within `timeout`. Returns the replies as the daemon sent them (`OK …`, `NOTFOUND `,
/// `TEMP …`, `PERM …`), in the order of `keys`.
pub async fn query(
    endpoint: &Endpoint,
    map: &str,
    keys: &[String],
    timeout: Duration,
) -> Result<Vec<String>, QueryError> {
    for k in keys.iter().chain(std::iter::once(&map.to_owned())) {
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(QueryError::BadKey { key: k.clone() });
        }
    }
    let name = endpoint.to_string();
    let connect = |source| QueryError::Connect {
        endpoint: name.clone(),
        source,
    };
    match endpoint {
        Endpoint::Tcp(a) => {
            let s = tokio::time::timeout(timeout, TcpStream::connect(a.as_str()))
                .await
                .map_err(|_| {
                    connect(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connect timed out",
                    ))
                })?
                .map_err(connect)?;
            exchange(s, &name, map, keys, timeout).await
        }
        Endpoint::Unix(p) => {
            let s = tokio::time::timeout(timeout, UnixStream::connect(p))
                .await
                .map_err(|_| {
                    connect(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connect timed out",
                    ))
                })?
                .map_err(connect)?;
            exchange(s, &name, map, keys, timeout).await
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    endpoint: &str,
    map: &str,
    keys: &[String],
    timeout: Duration,
) -> Result<Vec<String>, QueryError> {
    let err = |message: String| QueryError::Exchange {
        endpoint: endpoint.to_owned(),
        message,
    };
    let mut decoder = Decoder::new(MAX_REPLY);
    let mut replies = Vec::with_capacity(keys.len());
    let mut buf = vec![0u8; 16 * 1024];
    for key in keys {
        s.write_all(&encode(format!("{map} {key}").as_bytes()))
            .await
            .map_err(|e| err(format!("sending {key:?}: {e}")))?;
        let reply = tokio::time::timeout(timeout, async {
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => return Ok(String::from_utf8_lossy(&frame).into_owned()),
                    Ok(None) => {}
                    Err(e) => return Err(err(format!("a malformed reply to {key:?}: {e}"))),
                }
                let n = s
                    .read(&mut buf)
                    .await
                    .map_err(|e| err(format!("reading the reply to {key:?}: {e}")))?;
                if n == 0 {
                    return Err(err(format!(
                        "the daemon closed the connection before replying to {key:?}"
                    )));
                }
                decoder.feed(&buf[..n]);
            }
        })
        .await
        .map_err(|_| QueryError::Timeout {
            endpoint: endpoint.to_owned(),
            key: key.clone(),
            seconds: timeout.as_secs_f64(),
        })??;
        replies.push(reply);
    }
    Ok(replies)
}
