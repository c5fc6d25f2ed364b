//! Read a TLS ClientHello off a connection, find its SNI, and hand the bytes back.
//!
//! The policy listener must know the server name before it decides how to answer: block the
//! connection, hand it to rustls, or hand it to OpenSSL for TLS 1.0/1.1. So it reads the
//! ClientHello itself and replays it to the chosen TLS stack through [`PrefixedStream`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::limits;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Read TLS records until one complete ClientHello handshake message is in hand. Returns the
/// raw bytes read (to replay) and the SNI host name, if the client sent one.
pub(crate) async fn read_client_hello<S: AsyncRead + Unpin>(
    s: &mut S,
) -> io::Result<(Vec<u8>, Option<String>)> {
    let mut raw = Vec::new();
    let mut handshake = Vec::new();
    loop {
        let mut header = [0u8; 5];
        s.read_exact(&mut header).await?;
        raw.extend_from_slice(&header);
        if header[0] != CONTENT_HANDSHAKE {
            return Err(invalid("not a TLS handshake record"));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || raw.len() + len > limits::MAX_CLIENT_HELLO {
            return Err(invalid("TLS record length out of range"));
        }
        let start = raw.len();
        raw.resize(start + len, 0);
        s.read_exact(&mut raw[start..]).await?;
        handshake.extend_from_slice(&raw[start..]);
        if handshake.len() >= 4 {
            if handshake[0] != HANDSHAKE_CLIENT_HELLO {
                return Err(invalid("first handshake message is not a ClientHello"));
            }
            let body_len = usize::from(handshake[1]) << 16
                | usize::from(handshake[2]) << 8
                | usize::from(handshake[3]);
            if body_len + 4 > limits::MAX_CLIENT_HELLO {
                return Err(invalid("ClientHello too large"));
            }
            if handshake.len() >= body_len + 4 {
                let sni = parse_sni(&handshake[4..4 + body_len])?;
                return Ok((raw, sni));
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(invalid("truncated ClientHello"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<usize> {
        Ok(usize::from(self.take(1)?[0]))
    }
    fn u16(&mut self) -> io::Result<usize> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
}

/// Find the host name in a ClientHello body (RFC 6066 §3).
fn parse_sni(body: &[u8]) -> io::Result<Option<String>> {
    let mut r = Reader { buf: body };
    r.take(2 + 32)?; // legacy_version, random
    let n = r.u8()?;
    r.take(n)?; // session id
    let n = r.u16()?;
    r.take(n)?; // cipher suites
    let n = r.u8()?;
    r.take(n)?; // compression methods
    if r.buf.is_empty() {
        return Ok(None); // no extensions (old clients)
    }
    let n = r.u16()?;
    let mut exts = Reader { buf: r.take(n)? };
    while !exts.buf.is_empty() {
        let ty = exts.u16()?;
        let n = exts.u16()?;
        let data = exts.take(n)?;
        if ty != usize::from(EXT_SERVER_NAME) {
            continue;
        }
        let mut list = Reader { buf: data };
        let n = list.u16()?;
        let mut names = Reader { buf: list.take(n)? };
        while !names.buf.is_empty() {
            let name_type = names.u8()?;
            let n = names.u16()?;
            let name = names.take(n)?;
            if name_type == 0 {
                let name = std::str::from_utf8(name)
                    .map_err(|_| invalid("SNI is not UTF-8"))?
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                return Ok(Some(name));
            }
        }
    }
    Ok(None)
}

/// A stream that first yields `prefix`, then reads from `inner`; writes go to `inner`.
pub(crate) struct PrefixedStream<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> PrefixedStream<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefixedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefixedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_with_sni(name: &str) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // one suite
        body.extend([1, 0]); // null compression
        let mut sni = Vec::new();
        let n = name.len() as u16;
        sni.extend((n + 3).to_be_bytes());
        sni.push(0);
        sni.extend(n.to_be_bytes());
        sni.extend(name.as_bytes());
        let mut ext = Vec::new();
        ext.extend(0u16.to_be_bytes());
        ext.extend((sni.len() as u16).to_be_bytes());
        ext.extend(sni);
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut hs = vec![1, 0];
        hs.extend((body.len() as u16).to_be_bytes());
        hs.extend(body);
        let mut rec = vec![22, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[tokio::test]
    async fn sni_is_found_and_bytes_are_kept() {
        let rec = hello_with_sni("MTA-STS.A.test");
        let mut cursor = &rec[..];
        let (raw, sni) = read_client_hello(&mut cursor).await.expect("parses");
        assert_eq!(raw, rec);
        assert_eq!(sni.as_deref(), Some("mta-sts.a.test"));
    }

    #[tokio::test]
    async fn garbage_is_rejected() {
        let mut cursor = &b"GET / HTTP/1.1\r\n\r\n"[..];
        assert!(read_client_hello(&mut cursor).await.is_err());
    }
}
