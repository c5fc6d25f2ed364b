//! A socketmap client for tests: real netstrings (the codec of `mtasts-postfix`) over real
//! sockets, async (tokio) and blocking.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mtasts_postfix::socketmap::{Decoder, encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::GUARD;

/// An async socketmap client on one connection.
pub struct Client<S> {
    stream: S,
    decoder: Decoder,
}

impl Client<TcpStream> {
    /// Connects over TCP.
    pub async fn tcp(addr: SocketAddr) -> Client<TcpStream> {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::new(stream)
    }
}

impl Client<UnixStream> {
    /// Connects over a Unix socket.
    pub async fn unix(path: &Path) -> Client<UnixStream> {
        let stream = UnixStream::connect(path)
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        Client::new(stream)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// A client over `stream`.
    pub fn new(stream: S) -> Self {
        Client {
            stream,
            decoder: Decoder::new(1 << 20),
        }
    }

    /// Writes raw bytes (a partial or malformed netstring, for hostile-client tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
    }

    /// Writes raw bytes, returning the error instead of failing the test (the server may
    /// have closed the connection, as hostile-client tests expect).
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Sends the request `"<map> <key>"`.
    pub async fn send(&mut self, map: &str, key: &str) {
        self.send_raw(&encode(format!("{map} {key}").as_bytes()))
            .await;
    }

    /// The next reply payload, or `None` when the server closed the connection first.
    pub async fn reply(&mut self) -> Option<String> {
        self.reply_within(GUARD).await
    }

    /// As [`reply`](Self::reply), failing the test if nothing (reply or close) comes within
    /// `wait`.
    pub async fn reply_within(&mut self, wait: Duration) -> Option<String> {
        let mut buf = [0u8; 8192];
        loop {
            match self.decoder.next_frame() {
                Ok(Some(p)) => {
                    return Some(String::from_utf8(p).unwrap_or_else(|e| panic!("reply: {e}")));
                }
                Ok(None) => {}
                Err(e) => panic!("the server sent a malformed netstring: {e}"),
            }
            let n = tokio::time::timeout(wait, self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no reply and no close within {wait:?}"));
            match n {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.decoder.feed(&buf[..n]),
            }
        }
    }

    /// One request and its reply.
    pub async fn request(&mut self, map: &str, key: &str) -> String {
        self.send(map, key).await;
        self.reply().await.unwrap_or_else(|| {
            panic!("the server closed the connection instead of answering {map} {key}")
        })
    }

    /// Whether the server closes the connection without sending anything more.
    pub async fn closed_without_reply(&mut self) -> bool {
        self.reply().await.is_none()
    }
}

/// One blocking request on a fresh Unix-socket connection: the reply payload, or `None` when
/// the connection fails or closes first.
pub fn ask_unix(socket: &Path, payload: &str, wait: Duration) -> Option<String> {
    let s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    ask_blocking(s, payload)
}

/// One blocking request on a fresh TCP connection.
pub fn ask_tcp(addr: SocketAddr, payload: &str, wait: Duration) -> Option<String> {
    let s = std::net::TcpStream::connect_timeout(&addr, wait).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    ask_blocking(s, payload)
}

fn ask_blocking<S: Read + Write>(mut s: S, payload: &str) -> Option<String> {
    s.write_all(&encode(payload.as_bytes())).ok()?;
    let mut d = Decoder::new(1 << 20);
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(Some(f)) = d.next_frame() {
            return Some(String::from_utf8_lossy(&f).into_owned());
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => d.feed(&buf[..n]),
        }
    }
}
