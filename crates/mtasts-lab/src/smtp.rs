//! The SMTP servers (MX backends): greeting, EHLO, STARTTLS with the host's certificate,
//! MAIL/RCPT/DATA/RSET/NOOP/QUIT, and the knobs of [`StarttlsMode`] and [`ReplyFault`].
//! Every command line is logged and every accepted message stored.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::limits;
use crate::logs::{SmtpSession, StoredMessage, TlsInfo, now_ms};
use crate::scenario::{ReplyFault, SmtpStage, StarttlsMode};
use crate::state::{Backend, Shared, lock};

/// A fatal TLS alert record: handshake_failure (40).
const TLS_ALERT_HANDSHAKE_FAILURE: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

/// Accept connections for one backend address until `stop` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    local: Ipv4Addr,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let Some((stream, peer)) = crate::accept::next_connection(&listener, &stop).await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            session(stream, peer, local, shared).await;
        });
    }
}

enum End<S> {
    Done,
    StartTls(S),
}

struct Ctx {
    shared: Arc<Shared>,
    backend: Backend,
    local: Ipv4Addr,
    log: Arc<Mutex<SmtpSession>>,
    tls: Option<TlsInfo>,
    commands: usize,
}

impl Ctx {
    fn fault(&self, stage: SmtpStage) -> Option<&ReplyFault> {
        self.backend
            .settings
            .replies
            .iter()
            .find(|r| r.stage == stage)
    }
    fn banner(&self) -> String {
        self.backend
            .settings
            .banner
            .clone()
            .unwrap_or_else(|| self.backend.host.clone())
    }
}

fn fault_line(f: &ReplyFault) -> String {
    format!(
        "{} {}\r\n",
        f.code,
        f.text.as_deref().unwrap_or("lab-injected failure")
    )
}

async fn session(stream: TcpStream, peer: SocketAddr, local: Ipv4Addr, shared: Arc<Shared>) {
    let Some(backend) = shared.backend(local) else {
        return;
    };
    let log = {
        let mut logs = lock(&shared.logs);
        let id = logs.next_id();
        let s = Arc::new(Mutex::new(SmtpSession {
            id,
            host: backend.host.clone(),
            backend: IpAddr::V4(local),
            peer,
            started_ms: now_ms(),
            commands: Vec::new(),
            tls: None,
            tls_error: None,
            message_ids: Vec::new(),
            ended: false,
        }));
        logs.push_session(s.clone());
        s
    };
    let mut ctx = Ctx {
        shared,
        backend,
        local,
        log: log.clone(),
        tls: None,
        commands: 0,
    };
    run_session(stream, &mut ctx).await;
    lock(&log).ended = true;
}

async fn run_session(mut stream: TcpStream, ctx: &mut Ctx) {
    let delay = Duration::from_millis(ctx.backend.settings.greeting_delay_ms) + ctx.shared.rtt;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(f) = ctx.fault(SmtpStage::Connect) {
        let _ = stream.write_all(fault_line(f).as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    let greeting = format!("220 {} ESMTP mtasts-lab\r\n", ctx.banner());
    if stream.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let tcp = match command_loop(BufReader::new(stream), ctx, false).await {
        End::Done => return,
        End::StartTls(tcp) => tcp,
    };
    if !ctx.shared.rtt.is_zero() {
        tokio::time::sleep(ctx.shared.rtt).await;
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(ctx.backend.tls.clone());
    let tls = match tokio::time::timeout(limits::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            lock(&ctx.log).tls_error = Some(e.to_string());
            return;
        }
        Err(_) => {
            lock(&ctx.log).tls_error = Some("handshake timeout".to_owned());
            return;
        }
    };
    let conn = tls.get_ref().1;
    let info = TlsInfo {
        version: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        },
        sni: conn.server_name().map(str::to_owned),
    };
    lock(&ctx.log).tls = Some(info.clone());
    ctx.tls = Some(info);
    // RFC 3207 §4.2: after TLS the client starts over with EHLO; no new greeting.
    let _ = command_loop(BufReader::new(tls), ctx, true).await;
}

async fn reply<S: AsyncWrite + Unpin>(io: &mut S, text: &str) -> bool {
    io.write_all(text.as_bytes()).await.is_ok() && io.flush().await.is_ok()
}

/// Read one line (up to `limit` bytes, LF-terminated). `Ok(None)` at EOF.
async fn read_line<S: AsyncRead + Unpin>(
    io: &mut BufReader<S>,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = (&mut *io)
        .take(limit as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long",
        ));
    }
    Ok(Some(line))
}

fn angle_addr(arg: &str, keyword: &str) -> Option<String> {
    let rest = arg.get(..keyword.len())?;
    if !rest.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        return Some(inner[..end].to_owned());
    }
    rest.split_whitespace().next().map(str::to_owned)
}

async fn command_loop<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: BufReader<S>,
    ctx: &mut Ctx,
    tls: bool,
) -> End<S> {
    let mut helo = false;
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    loop {
        let line = match tokio::time::timeout(
            limits::SMTP_COMMAND_TIMEOUT,
            read_line(&mut io, limits::SMTP_MAX_LINE),
        )
        .await
        {
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) => return End::Done,
            Ok(Err(_)) => {
                let _ = reply(&mut io, "500 5.5.2 Line too long\r\n").await;
                return End::Done;
            }
            Err(_) => {
                let _ = reply(&mut io, "421 4.4.2 Timeout, closing\r\n").await;
                return End::Done;
            }
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        ctx.commands += 1;
        if !ctx.shared.rtt.is_zero() {
            tokio::time::sleep(ctx.shared.rtt).await;
        }
        {
            let mut log = lock(&ctx.log);
            let mut logged: String = text.chars().take(512).collect();
            if logged.len() >= 4 && logged[..4].eq_ignore_ascii_case("AUTH") {
                logged = "AUTH <redacted>".to_owned();
            }
            log.commands.push(logged);
        }
        if ctx.commands > limits::SMTP_MAX_COMMANDS {
            let _ = reply(&mut io, "421 4.7.0 Too many commands, closing\r\n").await;
            return End::Done;
        }
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (text.to_ascii_uppercase(), ""),
        };
        let stage_fault = |stage| ctx.fault(stage).cloned();
        let ok = match verb.as_str() {
            "EHLO" | "HELO" => {
                if let Some(f) = stage_fault(SmtpStage::Ehlo) {
                    let ok = reply(&mut io, &fault_line(&f)).await;
                    if f.code == 421 {
                        return End::Done;
                    }
                    ok
                } else {
                    helo = true;
                    mail_from = None;
                    rcpts.clear();
                    if verb == "HELO" {
                        reply(&mut io, &format!("250 {}\r\n", ctx.banner())).await
                    } else {
                        let mut lines = vec![
                            format!("{} greets {}", ctx.banner(), arg),
                            "PIPELINING".to_owned(),
                            format!("SIZE {}", limits::SMTP_MAX_MESSAGE),
                            "8BITMIME".to_owned(),
                            "ENHANCEDSTATUSCODES".to_owned(),
                        ];
                        if !tls && ctx.backend.settings.starttls != StarttlsMode::Strip {
                            lines.push("STARTTLS".to_owned());
                        }
                        lines.push("SMTPUTF8".to_owned());
                        let last = lines.len() - 1;
                        let mut out = String::new();
                        for (i, l) in lines.iter().enumerate() {
                            let sep = if i == last { ' ' } else { '-' };
                            out.push_str(&format!("250{sep}{l}\r\n"));
                        }
                        reply(&mut io, &out).await
                    }
                }
            }
            "STARTTLS" => {
                if tls {
                    reply(&mut io, "503 5.5.1 TLS already active\r\n").await
                } else {
                    match ctx.backend.settings.starttls {
                        StarttlsMode::Strip => {
                            reply(&mut io, "502 5.5.1 Command not implemented\r\n").await
                        }
                        StarttlsMode::Refuse => {
                            reply(
                                &mut io,
                                "454 4.7.0 TLS not available due to temporary reason\r\n",
                            )
                            .await
                        }
                        StarttlsMode::HandshakeFailure => {
                            if reply(&mut io, "220 2.0.0 Ready to start TLS\r\n").await {
                                let mut buf = [0u8; 4096];
                                let _ = tokio::time::timeout(
                                    limits::TLS_HANDSHAKE_TIMEOUT,
                                    io.read(&mut buf),
                                )
                                .await;
                                let _ = io.write_all(&TLS_ALERT_HANDSHAKE_FAILURE).await;
                                let _ = io.flush().await;
                                let _ = io.shutdown().await;
                            }
                            lock(&ctx.log).tls_error =
                                Some("handshake failure injected by the lab".to_owned());
                            return End::Done;
                        }
                        StarttlsMode::Offer => {
                            if !reply(&mut io, "220 2.0.0 Ready to start TLS\r\n").await {
                                return End::Done;
                            }
                            // Anything the client pipelined after STARTTLS is discarded
                            // (RFC 3207 §5; the STARTTLS command-injection defence).
                            return End::StartTls(io.into_inner());
                        }
                    }
                }
            }
            "MAIL" => {
                if !helo {
                    reply(&mut io, "503 5.5.1 Send EHLO first\r\n").await
                } else if let Some(f) = stage_fault(SmtpStage::Mail) {
                    reply(&mut io, &fault_line(&f)).await
                } else if let Some(addr) = angle_addr(arg, "FROM:") {
                    mail_from = Some(addr);
                    rcpts.clear();
                    reply(&mut io, "250 2.1.0 Ok\r\n").await
                } else {
                    reply(&mut io, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n").await
                }
            }
            "RCPT" => {
                if mail_from.is_none() {
                    reply(&mut io, "503 5.5.1 Need MAIL first\r\n").await
                } else if let Some(f) = stage_fault(SmtpStage::Rcpt) {
                    reply(&mut io, &fault_line(&f)).await
                } else if let Some(addr) = angle_addr(arg, "TO:") {
                    rcpts.push(addr);
                    reply(&mut io, "250 2.1.5 Ok\r\n").await
                } else {
                    reply(&mut io, "501 5.5.4 Syntax: RCPT TO:<address>\r\n").await
                }
            }
            "DATA" => {
                if rcpts.is_empty() {
                    reply(&mut io, "503 5.5.1 Need RCPT first\r\n").await
                } else if let Some(f) = stage_fault(SmtpStage::Data) {
                    reply(&mut io, &fault_line(&f)).await
                } else {
                    if !reply(&mut io, "354 End data with <CR><LF>.<CR><LF>\r\n").await {
                        return End::Done;
                    }
                    let data =
                        match tokio::time::timeout(limits::SMTP_DATA_TIMEOUT, read_data(&mut io))
                            .await
                        {
                            Ok(Ok(Some(d))) => d,
                            Ok(Ok(None)) => {
                                let _ = reply(&mut io, "552 5.3.4 Message too big\r\n").await;
                                return End::Done;
                            }
                            Ok(Err(_)) => return End::Done,
                            Err(_) => {
                                let _ = reply(&mut io, "421 4.4.2 DATA timeout\r\n").await;
                                return End::Done;
                            }
                        };
                    let ok = if let Some(f) = stage_fault(SmtpStage::DataEnd) {
                        reply(&mut io, &fault_line(&f)).await
                    } else {
                        let from = mail_from.take().unwrap_or_default();
                        let id = store(ctx, from, std::mem::take(&mut rcpts), data).await;
                        reply(&mut io, &format!("250 2.0.0 Ok: queued as {id}\r\n")).await
                    };
                    mail_from = None;
                    rcpts.clear();
                    ok
                }
            }
            "RSET" => {
                mail_from = None;
                rcpts.clear();
                reply(&mut io, "250 2.0.0 Ok\r\n").await
            }
            "NOOP" => reply(&mut io, "250 2.0.0 Ok\r\n").await,
            "VRFY" => reply(&mut io, "252 2.0.0 Cannot VRFY user\r\n").await,
            "HELP" => reply(&mut io, "214 2.0.0 mtasts-lab SMTP\r\n").await,
            "QUIT" => {
                let _ = reply(&mut io, "221 2.0.0 Bye\r\n").await;
                let _ = io.shutdown().await;
                return End::Done;
            }
            _ => reply(&mut io, "500 5.5.2 Command not recognized\r\n").await,
        };
        if !ok {
            return End::Done;
        }
    }
}

/// Read a DATA body up to the lone `.` line, dot-unstuffed. `Ok(None)` when too large.
async fn read_data<S: AsyncRead + Unpin>(
    io: &mut BufReader<S>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut too_big = false;
    loop {
        let Some(line) = read_line(io, 1024 * 1024).await? else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in DATA",
            ));
        };
        if line == b".\r\n" || line == b".\n" {
            return Ok(if too_big { None } else { Some(data) });
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + line.len() > limits::SMTP_MAX_MESSAGE {
            too_big = true;
            data.clear();
        }
        if !too_big {
            data.extend_from_slice(line);
        }
    }
}

async fn store(ctx: &Ctx, mail_from: String, rcpt_to: Vec<String>, data: Vec<u8>) -> u64 {
    let (id, msg) = {
        let mut logs = lock(&ctx.shared.logs);
        let id = logs.next_id();
        let msg = StoredMessage {
            id,
            host: ctx.backend.host.clone(),
            backend: IpAddr::V4(ctx.local),
            session_id: lock(&ctx.log).id,
            mail_from,
            rcpt_to,
            data,
            tls: ctx.tls.is_some(),
            tls_version: ctx.tls.as_ref().map(|t| t.version.clone()),
            sni: ctx.tls.as_ref().and_then(|t| t.sni.clone()),
            received_ms: now_ms(),
        };
        logs.push_message(msg.clone());
        (id, msg)
    };
    lock(&ctx.log).message_ids.push(id);
    if let Some(dir) = &ctx.shared.messages_dir {
        write_message_files(dir, &msg).await;
    }
    id
}

async fn write_message_files(dir: &Path, msg: &StoredMessage) {
    // Best effort: the in-memory store is the reference; a full disk must not stop the MX.
    let _ = tokio::fs::write(dir.join(format!("{}.eml", msg.id)), &msg.data).await;
    if let Ok(json) = serde_json::to_vec_pretty(msg) {
        let _ = tokio::fs::write(dir.join(format!("{}.json", msg.id)), json).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_addresses_are_parsed() {
        assert_eq!(
            angle_addr("FROM:<a@b.test> SIZE=10", "FROM:").as_deref(),
            Some("a@b.test")
        );
        assert_eq!(
            angle_addr("from: <a@b.test>", "FROM:").as_deref(),
            Some("a@b.test")
        );
        assert_eq!(angle_addr("FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(
            angle_addr("TO:x@y.test", "TO:").as_deref(),
            Some("x@y.test")
        );
        assert_eq!(angle_addr("FRM:<a>", "FROM:"), None);
    }
}
