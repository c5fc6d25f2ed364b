//! The policy-host listener: one HTTPS address for every `mta-sts.<domain>`, the certificate
//! chosen by SNI, and a hand-written HTTP/1.1 responder whose faults are exact.
//!
//! TLS 1.2/1.3 use rustls (ring). TLS 1.0/1.1-only hosts use OpenSSL at security level 0,
//! because rustls cannot speak those versions.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::http_util::{self, reason};
use crate::limits;
use crate::logs::{PolicyFetch, now_ms};
use crate::pki::IssuedCert;
use crate::scenario::{BlockMode, TlsVersions};
use crate::state::{PolicyHost, Shared, lock};
use crate::tls_sniff::{PrefixedStream, read_client_hello};

/// The path every policy host serves (RFC 8461 §3.2).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// Accept connections until `stop` is cancelled.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let Some((stream, peer)) = crate::accept::next_connection(&listener, &stop).await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut fetch = PolicyFetch {
                at_ms: now_ms(),
                peer,
                sni: None,
                domain: None,
                tls_version: None,
                method: None,
                path: None,
                host_header: None,
                status: None,
                outcome: String::new(),
            };
            let r = tokio::time::timeout(
                limits::HTTP_CONNECTION_LIMIT,
                handle(stream, peer, &shared, &mut fetch),
            )
            .await;
            if r.is_err() {
                fetch.outcome = "connection time limit reached".to_owned();
            }
            // An empty outcome means the entry was logged already (hanging connections).
            if !fetch.outcome.is_empty() {
                lock(&shared.logs).push_fetch(fetch);
            }
        });
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

async fn handle(
    mut stream: TcpStream,
    _peer: SocketAddr,
    shared: &Shared,
    fetch: &mut PolicyFetch,
) {
    let hello =
        tokio::time::timeout(limits::CLIENT_HELLO_TIMEOUT, read_client_hello(&mut stream)).await;
    let (raw, sni) = match hello {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            fetch.outcome = format!("bad-client-hello: {e}");
            return;
        }
        Err(_) => {
            fetch.outcome = "client-hello-timeout".to_owned();
            return;
        }
    };
    fetch.sni = sni.clone();
    let policy = sni.as_deref().and_then(|s| shared.policy_for_sni(s));
    fetch.domain = policy.as_ref().map(|p| p.domain.clone());
    let block = sni
        .as_deref()
        .map_or(BlockMode::None, |s| shared.policy_block(s));
    match block {
        BlockMode::None => {}
        BlockMode::Reset => {
            fetch.outcome = "blocked:reset".to_owned();
            // Linger 0: closing sends a TCP RST instead of a FIN.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            return;
        }
        BlockMode::Hang => {
            // Log now: the connection may stay open for a long time.
            fetch.outcome = "blocked:hang".to_owned();
            lock(&shared.logs).push_fetch(fetch.clone());
            fetch.outcome.clear();
            // Hold the connection until the client gives up or the hang limit is reached.
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(limits::HANG_LIMIT, async {
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            })
            .await;
            return;
        }
    }
    let stream = PrefixedStream::new(raw, stream);
    let versions = policy.as_ref().map_or(TlsVersions::Modern, |p| p.spec.tls);
    if versions.is_legacy() {
        let Some(policy) = policy else {
            fetch.outcome = "no-policy-host".to_owned();
            return;
        };
        let ssl = match legacy_ssl(&policy.cert, versions) {
            Ok(ssl) => ssl,
            Err(e) => {
                fetch.outcome = format!("openssl-setup-error: {e}");
                return;
            }
        };
        let mut tls = match tokio_openssl::SslStream::new(ssl, stream) {
            Ok(s) => s,
            Err(e) => {
                fetch.outcome = format!("openssl-setup-error: {e}");
                return;
            }
        };
        match tokio::time::timeout(limits::TLS_HANDSHAKE_TIMEOUT, Pin::new(&mut tls).accept()).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                fetch.outcome = format!("tls-error: {e}");
                return;
            }
            Err(_) => {
                fetch.outcome = "tls-handshake-timeout".to_owned();
                return;
            }
        }
        fetch.tls_version = Some(tls.ssl().version_str().to_owned());
        serve_http(tls, Some(policy), fetch, shared.rtt).await;
        return;
    }
    let config = match versions {
        TlsVersions::Tls12 => shared.https_tls12.clone(),
        TlsVersions::Tls13 => shared.https_tls13.clone(),
        _ => shared.https_modern.clone(),
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls =
        match tokio::time::timeout(limits::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                fetch.outcome = format!("tls-error: {e}");
                return;
            }
            Err(_) => {
                fetch.outcome = "tls-handshake-timeout".to_owned();
                return;
            }
        };
    fetch.tls_version = tls.get_ref().1.protocol_version().map(version_name);
    serve_http(tls, policy, fetch, shared.rtt).await;
}

fn legacy_ssl(
    cert: &IssuedCert,
    versions: TlsVersions,
) -> Result<openssl::ssl::Ssl, openssl::error::ErrorStack> {
    use openssl::pkey::PKey;
    use openssl::ssl::{Ssl, SslContext, SslMethod, SslVersion};
    use openssl::x509::X509;
    let (min, max) = match versions {
        TlsVersions::Tls10 => (SslVersion::TLS1, SslVersion::TLS1),
        TlsVersions::Tls11 => (SslVersion::TLS1_1, SslVersion::TLS1_1),
        _ => (SslVersion::TLS1, SslVersion::TLS1_1),
    };
    let mut b = SslContext::builder(SslMethod::tls_server())?;
    // Security level 0 is what lets OpenSSL 3 speak TLS 1.0/1.1 (SHA-1 signatures) at all.
    b.set_security_level(0);
    b.set_cipher_list("DEFAULT:@SECLEVEL=0")?;
    b.set_min_proto_version(Some(min))?;
    b.set_max_proto_version(Some(max))?;
    let mut chain = cert.chain.iter();
    if let Some(leaf) = chain.next() {
        let leaf = X509::from_der(leaf)?;
        b.set_certificate(&leaf)?;
    }
    for c in chain {
        b.add_extra_chain_cert(X509::from_der(c)?)?;
    }
    let key = PKey::private_key_from_pkcs8(&cert.key_pkcs8)?;
    b.set_private_key(&key)?;
    b.check_private_key()?;
    Ssl::new(&b.build())
}

async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    policy: Option<PolicyHost>,
    fetch: &mut PolicyFetch,
    rtt: Duration,
) {
    let head = match tokio::time::timeout(
        limits::HTTP_REQUEST_TIMEOUT,
        http_util::read_head(&mut s, limits::MAX_HTTP_HEAD),
    )
    .await
    {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            fetch.outcome = format!("bad-request: {e}");
            return;
        }
        Err(_) => {
            fetch.outcome = "request-timeout".to_owned();
            return;
        }
    };
    fetch.method = Some(head.method.clone());
    fetch.path = Some(head.target.clone());
    fetch.host_header = head.header("host").map(str::to_owned);
    let Some(policy) = policy else {
        fetch.status = Some(421);
        fetch.outcome = "served".to_owned();
        let _ = http_util::simple_response(&mut s, 421, "text/plain", b"unknown host\n").await;
        return;
    };
    let is_head = head.method == "HEAD";
    if head.method != "GET" && !is_head {
        fetch.status = Some(405);
        fetch.outcome = "served".to_owned();
        let _ =
            http_util::simple_response(&mut s, 405, "text/plain", b"method not allowed\n").await;
        return;
    }
    if head.path() != POLICY_PATH {
        fetch.status = Some(404);
        fetch.outcome = "served".to_owned();
        let _ = http_util::simple_response(&mut s, 404, "text/plain", b"not found\n").await;
        return;
    }
    let spec = &policy.spec;
    // The simulated network: TCP, TLS and the request itself each cost a round trip.
    let delay = Duration::from_millis(spec.delay_ms) + rtt * 3;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = spec.effective_status();
    fetch.status = Some(status);
    let body: &[u8] = &policy.body;
    let chunked = spec.is_chunked();
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nServer: mtasts-lab\r\n",
        reason(status)
    );
    match spec.content_type.as_deref() {
        Some("") => {}
        Some(ct) => h.push_str(&format!("Content-Type: {ct}\r\n")),
        None => h.push_str("Content-Type: text/plain\r\n"),
    }
    if let Some(loc) = &spec.redirect {
        h.push_str(&format!("Location: {loc}\r\n"));
    }
    for (k, v) in &spec.headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        h.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        h.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    h.push_str("Connection: close\r\n\r\n");
    if s.write_all(h.as_bytes()).await.is_err() || s.flush().await.is_err() {
        fetch.outcome = "client-gone".to_owned();
        return;
    }
    if is_head {
        fetch.outcome = "served".to_owned();
        let _ = s.shutdown().await;
        return;
    }
    let to_send = if spec.close_mid_body {
        &body[..body.len() / 2]
    } else {
        body
    };
    let piece = spec.slow_body.map_or(16 * 1024, |sb| sb.chunk_bytes);
    let interval = spec
        .slow_body
        .map_or(Duration::ZERO, |sb| Duration::from_millis(sb.interval_ms));
    for (i, part) in to_send.chunks(piece.max(1)).enumerate() {
        if i > 0 && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        let r = if chunked {
            let mut framed = format!("{:x}\r\n", part.len()).into_bytes();
            framed.extend_from_slice(part);
            framed.extend_from_slice(b"\r\n");
            s.write_all(&framed).await
        } else {
            s.write_all(part).await
        };
        if r.is_err() || s.flush().await.is_err() {
            fetch.outcome = "client-gone".to_owned();
            return;
        }
    }
    if spec.close_mid_body {
        // Drop without a TLS close_notify: the client sees the connection end mid-body.
        fetch.outcome = "closed-mid-body".to_owned();
        return;
    }
    if chunked && s.write_all(b"0\r\n\r\n").await.is_err() {
        fetch.outcome = "client-gone".to_owned();
        return;
    }
    let _ = s.flush().await;
    let _ = s.shutdown().await;
    fetch.outcome = "served".to_owned();
}
