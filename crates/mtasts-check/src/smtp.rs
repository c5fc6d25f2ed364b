//! The SMTP probe of one MX address: greeting, EHLO, STARTTLS (RFC 3207), the TLS handshake
//! with SNI set to the MX host name (RFC 8461 §4.2), EHLO again, then `MAIL FROM:<>` and
//! `RCPT TO:<postmaster@domain>` (RFC 5321 §4.5.1: postmaster must be accepted), `RSET` and
//! `QUIT`. No message is ever sent. Every read has a timeout and a size limit.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use mtasts_core::tls::HandshakeFailure;
use mtasts_net::tls::{TlsClient, Verification, handshake_failure, session};

use crate::obs::{SmtpFailure, SmtpProbe, SmtpReply, SmtpStage};

/// Limits of one probe.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// The port (25; the lab may use another).
    pub port: u16,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of each command's reply (and of the greeting and the handshake).
    pub command_timeout: Duration,
    /// The name sent in EHLO.
    pub helo_name: String,
}

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; be generous).
const MAX_LINE: usize = 4096;
/// Most lines in one reply.
const MAX_LINES: usize = 200;

enum ReadError {
    Timeout,
    Io(String),
    Syntax(String),
}

impl ReadError {
    fn into_failure(self, stage: SmtpStage) -> SmtpFailure {
        match self {
            ReadError::Timeout => SmtpFailure {
                stage,
                reason: "no reply (timed out)".into(),
                reply: None,
                timeout: true,
                handshake: None,
            },
            ReadError::Io(e) => SmtpFailure {
                stage,
                reason: e,
                reply: None,
                timeout: false,
                handshake: None,
            },
            ReadError::Syntax(e) => SmtpFailure {
                stage,
                reason: e,
                reply: None,
                timeout: false,
                handshake: None,
            },
        }
    }
}

/// A reply and its lines (for EHLO keywords).
struct Reply {
    reply: SmtpReply,
    lines: Vec<String>,
}

async fn read_reply<S: AsyncRead + Unpin>(
    r: &mut BufReader<S>,
    wait: Duration,
) -> Result<Reply, ReadError> {
    let fut = async {
        let mut lines = Vec::new();
        let mut code: u16;
        loop {
            let mut line = Vec::new();
            let n = AsyncReadExt::take(&mut *r, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| ReadError::Io(e.to_string()))?;
            if n == 0 {
                return Err(ReadError::Io("the server closed the connection".into()));
            }
            if line.len() > MAX_LINE {
                return Err(ReadError::Syntax(format!(
                    "reply line longer than {MAX_LINE} bytes"
                )));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let bytes = text.as_bytes();
            if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
                return Err(ReadError::Syntax(format!("not an SMTP reply: {text:?}")));
            }
            code = text[..3].parse().unwrap_or(0);
            let more = bytes.get(3) == Some(&b'-');
            lines.push(text.get(4..).unwrap_or("").to_owned());
            if !more {
                break;
            }
            if lines.len() >= MAX_LINES {
                return Err(ReadError::Syntax(format!(
                    "reply longer than {MAX_LINES} lines"
                )));
            }
        }
        Ok(Reply {
            reply: SmtpReply {
                code,
                text: lines.join(" "),
            },
            lines,
        })
    };
    match timeout(wait, fut).await {
        Ok(r) => r,
        Err(_) => Err(ReadError::Timeout),
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    line: &str,
    wait: Duration,
) -> Result<Reply, ReadError> {
    let write = async {
        r.get_mut().write_all(line.as_bytes()).await?;
        r.get_mut().write_all(b"\r\n").await?;
        r.get_mut().flush().await
    };
    match timeout(wait, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ReadError::Io(e.to_string())),
        Err(_) => return Err(ReadError::Timeout),
    }
    read_reply(r, wait).await
}

fn rejected(stage: SmtpStage, reply: SmtpReply) -> SmtpFailure {
    SmtpFailure {
        stage,
        reason: format!("the server answered {reply}"),
        reply: Some(reply),
        timeout: false,
        handshake: None,
    }
}

/// Probes `addr` as the MX `host` of `domain` (A-labels).
pub async fn probe(
    tls: &TlsClient,
    host: &str,
    domain: &str,
    addr: SocketAddr,
    s: &SmtpSettings,
) -> SmtpProbe {
    let mut out = SmtpProbe {
        address: addr,
        greeting_millis: None,
        extensions: Vec::new(),
        starttls_offered: None,
        tls: None,
        mail: None,
        rcpt: None,
        failure: None,
    };
    if let Err(f) = run(tls, host, domain, addr, s, &mut out).await {
        out.failure = Some(f);
    }
    out
}

async fn run(
    tls: &TlsClient,
    host: &str,
    domain: &str,
    addr: SocketAddr,
    s: &SmtpSettings,
    out: &mut SmtpProbe,
) -> Result<(), SmtpFailure> {
    let started = Instant::now();
    let stream = match timeout(s.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(st)) => st,
        Ok(Err(e)) => {
            return Err(SmtpFailure {
                stage: SmtpStage::Connect,
                reason: format!("cannot connect to {addr}: {e}"),
                reply: None,
                timeout: false,
                handshake: None,
            });
        }
        Err(_) => {
            return Err(SmtpFailure {
                stage: SmtpStage::Connect,
                reason: format!("connecting to {addr} timed out"),
                reply: None,
                timeout: true,
                handshake: None,
            });
        }
    };
    let mut r = BufReader::new(stream);
    let greeting = read_reply(&mut r, s.command_timeout)
        .await
        .map_err(|e| e.into_failure(SmtpStage::Greeting))?;
    out.greeting_millis = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    if greeting.reply.code != 220 {
        return Err(rejected(SmtpStage::Greeting, greeting.reply));
    }
    let ehlo = command(&mut r, &format!("EHLO {}", s.helo_name), s.command_timeout)
        .await
        .map_err(|e| e.into_failure(SmtpStage::Ehlo))?;
    if ehlo.reply.code != 250 {
        return Err(rejected(SmtpStage::Ehlo, ehlo.reply));
    }
    out.extensions = ehlo
        .lines
        .iter()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_ascii_uppercase)
        .collect();
    let offered = out.extensions.iter().any(|k| k == "STARTTLS");
    out.starttls_offered = Some(offered);
    if !offered {
        // Go on in plaintext: a sender without a policy would, and the transaction replies
        // still say whether mail would be accepted.
        return transaction(&mut r, domain, s, out).await;
    }
    let reply = command(&mut r, "STARTTLS", s.command_timeout)
        .await
        .map_err(|e| e.into_failure(SmtpStage::Starttls))?;
    if reply.reply.code != 220 {
        return Err(rejected(SmtpStage::Starttls, reply.reply));
    }
    // Anything the server sent after its 220 is discarded (RFC 3207 §4.2 injection defence).
    let stream = r.into_inner();
    let (cfg, slot) = tls
        .config(Verification::Record, &[])
        .map_err(|e| SmtpFailure {
            stage: SmtpStage::Handshake,
            reason: e.to_string(),
            reply: None,
            timeout: false,
            handshake: None,
        })?;
    let server_name =
        rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| SmtpFailure {
            stage: SmtpStage::Handshake,
            reason: format!("{host} is not a valid server name"),
            reply: None,
            timeout: false,
            handshake: None,
        })?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let tls_stream = match timeout(s.command_timeout, connector.connect(server_name, stream)).await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            let failure = handshake_failure(&e, &slot, host);
            return Err(SmtpFailure {
                stage: SmtpStage::Handshake,
                reason: failure.to_string(),
                reply: None,
                timeout: false,
                handshake: Some(failure),
            });
        }
        Err(_) => {
            return Err(SmtpFailure {
                stage: SmtpStage::Handshake,
                reason: HandshakeFailure::Timeout.to_string(),
                reply: None,
                timeout: true,
                handshake: Some(HandshakeFailure::Timeout),
            });
        }
    };
    out.tls = Some(session(tls_stream.get_ref().1, &slot, host));
    let mut r = BufReader::new(tls_stream);
    let ehlo = command(&mut r, &format!("EHLO {}", s.helo_name), s.command_timeout)
        .await
        .map_err(|e| e.into_failure(SmtpStage::EhloTls))?;
    if ehlo.reply.code != 250 {
        return Err(rejected(SmtpStage::EhloTls, ehlo.reply));
    }
    transaction(&mut r, domain, s, out).await
}

async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    domain: &str,
    s: &SmtpSettings,
    out: &mut SmtpProbe,
) -> Result<(), SmtpFailure> {
    let mail = command(r, "MAIL FROM:<>", s.command_timeout)
        .await
        .map_err(|e| e.into_failure(SmtpStage::Mail))?;
    out.mail = Some(mail.reply.clone());
    if mail.reply.code / 100 == 2 {
        let rcpt = command(
            r,
            &format!("RCPT TO:<postmaster@{domain}>"),
            s.command_timeout,
        )
        .await
        .map_err(|e| e.into_failure(SmtpStage::Rcpt))?;
        out.rcpt = Some(rcpt.reply);
        let _ = command(r, "RSET", s.command_timeout).await;
    }
    let _ = command(r, "QUIT", s.command_timeout).await;
    Ok(())
}
