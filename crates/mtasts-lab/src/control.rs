//! The control API: a small HTTP/1.1 JSON interface on loopback to read what the world saw and
//! to change it while it runs. `docs/lab.md` lists the endpoints.

use std::sync::Arc;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::http_util::{self, RequestHead};
use crate::limits;
use crate::mutation::Mutation;
use crate::scenario::normalize_name;
use crate::state::Shared;
use crate::world::WorldInfo;

/// Accept control connections until `stop` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    info: Arc<WorldInfo>,
    ca_pem: Arc<String>,
    stop: CancellationToken,
) {
    loop {
        let Some((stream, _)) = crate::accept::next_connection(&listener, &stop).await else {
            return;
        };
        let shared = shared.clone();
        let info = info.clone();
        let ca_pem = ca_pem.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                limits::HTTP_CONNECTION_LIMIT,
                handle(stream, &shared, &info, &ca_pem),
            )
            .await;
        });
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    applied: usize,
}

async fn json<S: AsyncWrite + Unpin, T: Serialize>(s: &mut S, status: u16, value: &T) {
    let body = serde_json::to_vec_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\": \"serialising the answer: {e}\"}}").into_bytes());
    let _ = http_util::simple_response(s, status, "application/json", &body).await;
}

async fn error<S: AsyncWrite + Unpin>(s: &mut S, status: u16, msg: impl Into<String>) {
    json(
        s,
        status,
        &ErrorBody {
            error: msg.into(),
            applied: 0,
        },
    )
    .await;
}

fn name_param(head: &RequestHead, key: &str) -> Result<Option<String>, String> {
    match head.query(key) {
        None => Ok(None),
        Some(v) => normalize_name(&v).map(Some),
    }
}

async fn handle(mut s: TcpStream, shared: &Shared, info: &WorldInfo, ca_pem: &str) {
    let head = match tokio::time::timeout(
        limits::HTTP_REQUEST_TIMEOUT,
        http_util::read_head(&mut s, limits::MAX_HTTP_HEAD),
    )
    .await
    {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return error(&mut s, 400, e.to_string()).await,
        Err(_) => return error(&mut s, 408, "request head timeout").await,
    };
    route(&mut s, head, shared, info, ca_pem).await;
}

async fn route<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    head: RequestHead,
    shared: &Shared,
    info: &WorldInfo,
    ca_pem: &str,
) {
    let filter = |key: &str| name_param(&head, key);
    match (head.method.as_str(), head.path()) {
        ("GET", "/v1/world") => json(s, 200, info).await,
        ("GET", "/v1/ca.pem") => {
            let _ = http_util::simple_response(s, 200, "application/x-pem-file", ca_pem.as_bytes())
                .await;
        }
        ("GET", "/v1/messages") => match filter("host") {
            Ok(h) => json(s, 200, &shared.messages(h.as_deref())).await,
            Err(e) => error(s, 400, e).await,
        },
        ("GET", "/v1/smtp-sessions") => match filter("host") {
            Ok(h) => json(s, 200, &shared.sessions(h.as_deref())).await,
            Err(e) => error(s, 400, e).await,
        },
        ("GET", "/v1/policy-fetches") => match filter("domain") {
            Ok(d) => json(s, 200, &shared.fetches(d.as_deref())).await,
            Err(e) => error(s, 400, e).await,
        },
        ("GET", "/v1/dns-queries") => match filter("name") {
            Ok(n) => json(s, 200, &shared.dns_queries(n.as_deref())).await,
            Err(e) => error(s, 400, e).await,
        },
        ("POST", "/v1/clear-logs") => {
            let _ = shared.apply(Mutation::ClearLogs);
            json(s, 200, &serde_json::json!({ "applied": 1 })).await;
        }
        ("POST", "/v1/mutate") => {
            let body = match tokio::time::timeout(
                limits::HTTP_REQUEST_TIMEOUT,
                http_util::read_body(s, &head, limits::MAX_CONTROL_BODY),
            )
            .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => return error(s, 400, e.to_string()).await,
                Err(_) => return error(s, 408, "request body timeout").await,
            };
            let mutations: Vec<Mutation> = match serde_json::from_slice::<serde_json::Value>(&body)
            {
                Ok(serde_json::Value::Array(items)) => {
                    match items
                        .into_iter()
                        .map(serde_json::from_value)
                        .collect::<Result<Vec<Mutation>, _>>()
                    {
                        Ok(m) => m,
                        Err(e) => return error(s, 400, format!("invalid mutation: {e}")).await,
                    }
                }
                Ok(v) => match serde_json::from_value(v) {
                    Ok(m) => vec![m],
                    Err(e) => return error(s, 400, format!("invalid mutation: {e}")).await,
                },
                Err(e) => return error(s, 400, format!("invalid JSON: {e}")).await,
            };
            let n = mutations.len();
            for (i, m) in mutations.into_iter().enumerate() {
                if let Err(e) = shared.apply(m) {
                    return json(
                        s,
                        400,
                        &ErrorBody {
                            error: e.to_string(),
                            applied: i,
                        },
                    )
                    .await;
                }
            }
            json(s, 200, &serde_json::json!({ "applied": n })).await;
        }
        (
            _,
            "/v1/world" | "/v1/messages" | "/v1/smtp-sessions" | "/v1/policy-fetches"
            | "/v1/dns-queries" | "/v1/mutate" | "/v1/clear-logs" | "/v1/ca.pem",
        ) => {
            error(s, 405, "method not allowed").await;
        }
        _ => error(s, 404, format!("no endpoint {}", head.path())).await,
    }
}
