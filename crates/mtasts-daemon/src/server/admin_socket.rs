//! Serving the admin socket ([`crate::admin`]): one request per connection, its size bounded
//! by `admin_max_request` and its arrival by `admin_timeout`, the answer written within
//! `admin_timeout` again, at most `admin_max_connections` connections at once.
//!
//! What an entry means (its state, whether a refresh is due, what would be answered now) is
//! the core's decision ([`mtasts_core::sts::cache::answer`]); the replies are built by the same
//! function the socketmap answers use ([`super::sts_reply`]).

use std::sync::Arc;
use std::time::Duration;

use mtasts_core::json::rfc3339_u;
use mtasts_core::sts::cache::{Answer, CacheConfig, CacheEntry, UnixSeconds, answer};
use mtasts_postfix::socketmap::{DaneMode, dane_reply};
use mtasts_resolver::dane::{DaneEntry, DaneResolution, DaneStatus};
use mtasts_resolver::{
    CachedDomain, Outcome, Resolution, Resolver, Source, normalize, outcome_now,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Live, Shared, sts_reply};
use crate::admin::{
    AnswerNow, DaneSummary, EntryDetail, FORGET_SCHEMA, FailedFetchDetail, ForgetDocument,
    ForgetResult, LIST_SCHEMA, ListDocument, ListEntry, NegativeDetail, PolicyDetail, Request,
    SHOW_SCHEMA, ShowDocument, State, ZoneReply, encode, error_answer,
};

/// Accepts admin connections until `stop`, at most `max_connections` served at once (one
/// more is answered `busy`); each is served in a task of `tracker`, closed at
/// once on `abort`.
pub(super) async fn accept_loop(
    listener: UnixListener,
    max_connections: usize,
    shared: Arc<Shared>,
    stop: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = Arc::clone(&slots).try_acquire_owned().ok();
        let shared = Arc::clone(&shared);
        let abort = abort.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = connection(stream, shared, permit.is_some(), max_connections) => {}
                () = abort.cancelled() => {}
            }
            drop(permit);
        });
    }
}

/// Why no request could be read.
enum ReadError {
    TooLarge,
    Empty,
    Io(std::io::Error),
}

/// One line (without its `\n`; the whole input when it has none), at most `max` bytes.
async fn read_request<R: AsyncRead + Unpin>(rd: &mut R, max: usize) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::with_capacity(max.min(4096));
    let mut chunk = [0u8; 4096];
    loop {
        let n = rd.read(&mut chunk).await.map_err(ReadError::Io)?;
        let Some(read) = chunk.get(..n).filter(|r| !r.is_empty()) else {
            break;
        };
        let start = line.len();
        line.extend_from_slice(read);
        if let Some(i) = read.iter().position(|&b| b == b'\n') {
            line.truncate(start + i);
            break;
        }
        if line.len() > max {
            return Err(ReadError::TooLarge);
        }
    }
    if line.len() > max {
        return Err(ReadError::TooLarge);
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(ReadError::Empty);
    }
    Ok(line)
}

/// Serves one admin connection; one not `admitted` (`max_connections` are being served
/// already) is answered `busy`.
async fn connection(
    stream: UnixStream,
    shared: Arc<Shared>,
    admitted: bool,
    max_connections: usize,
) {
    let uid = stream.peer_cred().ok().map(|c| c.uid());
    let live = shared.live();
    let (mut rd, mut wr) = stream.into_split();
    let answer = if !admitted {
        error_answer(
            "busy",
            format!("{max_connections} admin connections are being served; try again"),
        )
    } else {
        let read = tokio::time::timeout(
            live.admin_timeout,
            read_request(&mut rd, live.admin_max_request),
        )
        .await;
        match read {
            Err(_) => error_answer(
                "timeout",
                format!(
                    "the request was not complete within admin_timeout ({} s)",
                    live.admin_timeout.as_secs_f64()
                ),
            ),
            Ok(Err(ReadError::TooLarge)) => error_answer(
                "too-large",
                format!(
                    "the request is longer than admin_max_request ({} bytes)",
                    live.admin_max_request
                ),
            ),
            Ok(Err(ReadError::Empty)) => error_answer(
                "bad-request",
                "an empty request: send one line of JSON, such as {\"op\":\"list\"}",
            ),
            Ok(Err(ReadError::Io(e))) => {
                tracing::debug!(error = %e, "admin socket: reading the request failed");
                return;
            }
            Ok(Ok(line)) => {
                // In a task of its own: a client that goes away never leaves a forget half
                // done (memory forgotten, the store not yet).
                match tokio::spawn(handle(Arc::clone(&shared), line, uid)).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!(error = %e, "admin socket: answering failed");
                        error_answer("internal", format!("answering the request failed: {e}"))
                    }
                }
            }
        }
    };
    let write = async {
        wr.write_all(&answer).await?;
        wr.shutdown().await
    };
    match tokio::time::timeout(live.admin_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "admin socket: writing the answer failed"),
        Err(_) => tracing::debug!("admin socket: the client did not read its answer in time"),
    }
    // Closing with unread input would reset the connection (Linux), and a client still
    // reading the answer to a request refused early (too large) could lose it: read what is
    // left until the client closes, within admin_timeout.
    let drain = async {
        let mut scratch = [0u8; 4096];
        while matches!(rd.read(&mut scratch).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(live.admin_timeout, drain).await;
}

async fn handle(shared: Arc<Shared>, line: Vec<u8>, uid: Option<u32>) -> Vec<u8> {
    let request: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            return error_answer(
                "bad-request",
                format!(
                    "not an admin request: {e}; send one line of JSON: {{\"op\":\"list\"}}, \
                     {{\"op\":\"show\",\"domain\":\"D\"}} or {{\"op\":\"forget\",\"domains\":[\"D\"]}}"
                ),
            );
        }
    };
    tracing::debug!(uid = %who(uid), ?request, "admin request");
    let live = shared.live();
    let resolver = &shared.resolver;
    match request {
        Request::List { limit } => list(resolver, limit).await,
        Request::Show { domain } => show(resolver, &live, &domain).await,
        Request::Forget { domains } => forget(resolver, &domains, uid).await,
    }
}

/// The client's user id (from the socket's peer credentials), for the log.
fn who(uid: Option<u32>) -> String {
    uid.map_or_else(|| "unknown".to_owned(), |u| u.to_string())
}

fn ts(t: UnixSeconds) -> String {
    rfc3339_u(t)
}

/// The core's view of an entry at `now`.
fn state_of(entry: &CacheEntry, now: UnixSeconds) -> State {
    match answer(entry, now) {
        Some(Answer::Policy { .. }) => State::Policy,
        Some(Answer::NoPolicy { negative } | Answer::Transient { negative }) => {
            match negative.kind {
                mtasts_core::sts::cache::NegativeKind::NoRecord => State::NoRecord,
                mtasts_core::sts::cache::NegativeKind::FetchFailed => State::FetchFailed,
                mtasts_core::sts::cache::NegativeKind::Transient => State::Transient,
            }
        }
        None => State::Expired,
    }
}

fn refresh_due(entry: &CacheEntry, now: UnixSeconds) -> bool {
    matches!(
        answer(entry, now),
        Some(Answer::Policy {
            refresh_due: true,
            ..
        })
    )
}

fn list_entry(c: &CachedDomain, now: UnixSeconds, cfg: &CacheConfig) -> ListEntry {
    let e = &c.entry;
    let p = e.policy.as_ref();
    ListEntry {
        domain: c.domain.clone(),
        state: state_of(e, now),
        mode: p.map(|p| p.policy.mode.as_str().to_owned()),
        policy_id: p.map(|p| p.id.clone()),
        fetched_at: p.map(|p| ts(p.fetched_at)),
        expires_at: p.map(|p| ts(p.expires_at())),
        refresh_at: e.valid_policy(now).map(|_| ts(e.refresh_at)),
        refresh_due: refresh_due(e, now),
        checked_at: ts(e.checked_at),
        negative_until: e.negative.as_ref().map(|n| ts(n.until)),
        kept_until: ts(e.useless_after(cfg)),
        memory: c.in_memory,
        store: c.in_store,
    }
}

fn entry_detail(e: &CacheEntry, now: UnixSeconds, cfg: &CacheConfig) -> EntryDetail {
    EntryDetail {
        policy: e.policy.as_ref().map(|p| PolicyDetail {
            id: p.id.clone(),
            mode: p.policy.mode.as_str().to_owned(),
            max_age: p.policy.max_age,
            mx: p.policy.mx.iter().map(ToString::to_string).collect(),
            fetched_at: ts(p.fetched_at),
            expires_at: ts(p.expires_at()),
            valid: p.is_valid(now),
            text: p.policy.to_text(),
        }),
        checked_at: ts(e.checked_at),
        refresh_at: e.valid_policy(now).map(|_| ts(e.refresh_at)),
        refresh_due: refresh_due(e, now),
        kept_until: ts(e.useless_after(cfg)),
        negative: e.negative.as_ref().map(|n| NegativeDetail {
            kind: n.kind.as_str().to_owned(),
            until: ts(n.until),
            reason: n.reason.clone(),
        }),
        failed_fetch: e.failed_fetch.as_ref().map(|f| FailedFetchDetail {
            id: f.id.clone(),
            at: ts(f.at),
            reason: f.reason.clone(),
        }),
    }
}

fn dane_summary(domain: &str, e: &DaneEntry) -> DaneSummary {
    DaneSummary {
        domain: domain.to_owned(),
        decision: e.assessment.decision.kind().to_owned(),
        checked_at: ts(e.checked_at),
        expires_at: ts(e.expires_at),
    }
}

async fn list(resolver: &Resolver, limit: Option<usize>) -> Vec<u8> {
    let now = resolver.now();
    let cfg = resolver.cache_config();
    let listing = resolver.entries().await;
    let total = listing.entries.len();
    let take = limit.unwrap_or(usize::MAX);
    let entries = listing
        .entries
        .iter()
        .take(take)
        .map(|c| list_entry(c, now, &cfg))
        .collect();
    let dane = resolver
        .dane_entries()
        .iter()
        .map(|(d, e)| dane_summary(d, e))
        .collect();
    encode(
        LIST_SCHEMA,
        &ListDocument {
            now: ts(now),
            store_backend: resolver.store_backend().to_owned(),
            store_error: listing.store_error.map(|e| e.to_string()),
            total,
            truncated: total > take,
            entries,
            dane,
        },
    )
}

/// What a lookup of `domain` would get now from the cache alone, in every zone.
fn answer_now(
    domain: &str,
    outcome: Option<Outcome>,
    dane: Option<&DaneEntry>,
    live: &Live,
    resolver: &Resolver,
) -> AnswerNow {
    let zones: Vec<(&str, &mtasts_postfix::socketmap::ZoneOptions)> =
        std::iter::once(("_default", &live.zones.default))
            .chain(live.zones.zones.iter().map(|(k, v)| (k.as_str(), v)))
            .collect();
    let Some(outcome) = outcome else {
        return AnswerNow {
            decision: "lookup".to_owned(),
            explanation: "the cache cannot answer: the next request looks the domain up (DNS, \
                          and the policy fetch when needed)"
                .to_owned(),
            replies: zones
                .iter()
                .map(|(map, _)| ZoneReply {
                    map: (*map).to_owned(),
                    reply: None,
                })
                .collect(),
        };
    };
    let res = Resolution {
        domain: domain.to_owned(),
        outcome,
        source: Source::Memory,
    };
    let (kind, explanation) = mtasts_resolver::render::decision(&res);
    // As `resolve_dane` answers without a lookup: untrusted resolvers mean DANE does not
    // apply; a trusted one needs the assessment in memory.
    let dane_decision = if resolver.dane_trusted() {
        dane.map(|e| e.assessment.decision.clone())
    } else {
        let untrusted = DaneResolution {
            domain: domain.to_owned(),
            status: DaneStatus::Untrusted {
                servers: resolver.dns_servers().to_vec(),
            },
            source: Source::Memory,
        };
        Some(untrusted.decision())
    };
    let replies = zones
        .iter()
        .map(|(map, opts)| {
            let sts = sts_reply(&res, opts, live.max_reply);
            let reply = if opts.dane == DaneMode::On {
                dane_decision
                    .as_ref()
                    .map(|d| dane_reply(domain, d, sts).reply)
            } else {
                Some(sts.reply)
            };
            ZoneReply {
                map: (*map).to_owned(),
                reply: reply.map(|r| r.payload()),
            }
        })
        .collect();
    AnswerNow {
        decision: kind.to_owned(),
        explanation,
        replies,
    }
}

async fn show(resolver: &Resolver, live: &Live, domain: &str) -> Vec<u8> {
    let domain = match normalize(domain) {
        Ok(d) => d,
        Err(reason) => return error_answer("bad-request", reason),
    };
    let now = resolver.now();
    let cfg = resolver.cache_config();
    let inspection = match resolver.entry(&domain).await {
        Ok(i) => i,
        Err(reason) => return error_answer("bad-request", reason),
    };
    let cached = inspection.cached.as_ref();
    let entry = cached.map(|c| &c.entry);
    let answer = answer_now(
        &domain,
        entry.and_then(|e| outcome_now(e, now)),
        inspection.dane.as_deref(),
        live,
        resolver,
    );
    encode(
        SHOW_SCHEMA,
        &ShowDocument {
            now: ts(now),
            found: cached.is_some(),
            store_backend: resolver.store_backend().to_owned(),
            store_error: inspection.store_error.as_ref().map(ToString::to_string),
            memory: cached.is_some_and(|c| c.in_memory),
            store: cached.is_some_and(|c| c.in_store),
            state: entry.map(|e| state_of(e, now)),
            entry: entry.map(|e| entry_detail(e, now, &cfg)),
            answer,
            dane: inspection.dane.as_deref().map(|e| dane_summary(&domain, e)),
            domain,
        },
    )
}

async fn forget(resolver: &Resolver, domains: &[String], uid: Option<u32>) -> Vec<u8> {
    if domains.is_empty() {
        return error_answer("bad-request", "forget needs at least one domain");
    }
    // Every name is checked before anything is forgotten.
    let mut names: Vec<String> = Vec::with_capacity(domains.len());
    for d in domains {
        match normalize(d) {
            Ok(n) => {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            Err(reason) => {
                return error_answer("bad-request", format!("{reason}; nothing was forgotten"));
            }
        }
    }
    let now = resolver.now();
    let mut forgotten = Vec::with_capacity(names.len());
    for domain in names {
        // What was there, for the report (a read: it changes nothing).
        let before = resolver.entry(&domain).await.ok();
        let cached = before.as_ref().and_then(|i| i.cached.as_ref());
        let state = cached.map(|c| state_of(&c.entry, now));
        let policy = cached.and_then(|c| c.entry.policy.as_ref());
        let f = match resolver.forget(&domain).await {
            Ok(f) => f,
            Err(reason) => return error_answer("bad-request", reason),
        };
        let existed = f.existed() || cached.is_some();
        if state == Some(State::Policy) {
            tracing::warn!(
                domain = %f.domain,
                uid = %who(uid),
                "a cached policy was forgotten through the admin socket: until it is fetched \
                 again, nothing protects the domain against a downgrade (RFC 8461 §10.2)"
            );
        } else {
            tracing::info!(domain = %f.domain, uid = %who(uid), existed, "forgotten through the admin socket");
        }
        if let Some(e) = &f.store_error {
            tracing::warn!(domain = %f.domain, error = %e, "forget: the store entry could not be removed");
        }
        forgotten.push(ForgetResult {
            existed,
            memory: f.memory,
            store: f.store,
            dane: f.dane,
            state,
            mode: policy.map(|p| p.policy.mode.as_str().to_owned()),
            policy_id: policy.map(|p| p.id.clone()),
            store_error: f.store_error.as_ref().map(ToString::to_string),
            domain: f.domain,
        });
    }
    encode(
        FORGET_SCHEMA,
        &ForgetDocument {
            now: ts(now),
            store_backend: resolver.store_backend().to_owned(),
            forgotten,
        },
    )
}
