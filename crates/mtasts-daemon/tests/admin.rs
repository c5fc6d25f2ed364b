//! The admin socket of a real daemon (`mtasts daemon cache`): lookups through the socketmap
//! listener fill the cache from the lab, then the admin channel lists, shows and forgets the
//! entries, in memory and in the SQLite file or the Redis server; bad input gets an error
//! answer; every answer is validated against its schema file.
#![allow(missing_docs)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Client, GUARD, config_for};
use mtasts_daemon::admin::{
    self, AdminError, ForgetDocument, ListDocument, Request, ShowDocument, State,
};
use mtasts_daemon::config::UnixListenerConfig;
use mtasts_daemon::{AdminSocket, Config, Daemon, ZoneOverrides};
use mtasts_lab::{World, WorldOptions};
use mtasts_postfix::socketmap::DaneMode;
use mtasts_resolver::store::{RedisStore, SqliteStore, Store, StoreConfig};
use mtasts_test_support::schema::assert_valid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn world() -> World {
    World::start(
        &mtasts_test_support::scenario("minimal.toml"),
        WorldOptions::default(),
    )
    .unwrap_or_else(|e| panic!("the lab world does not start: {e}"))
}

/// A daemon for `world` with its admin socket in `dir`, a `dane = "on"` zone, and `store`.
fn config(world: &World, dir: &Path, store: StoreConfig) -> Config {
    let mut c = config_for(world, dir);
    c.admin = Some(AdminSocket(UnixListenerConfig {
        path: dir.join("admin.sock"),
        mode: Some(0o600),
        owner: None,
        group: None,
    }));
    c.resolver.store = store;
    c.zones.insert(
        "dane".into(),
        ZoneOverrides {
            dane: Some(DaneMode::On),
            ..ZoneOverrides::default()
        },
    );
    c
}

async fn start(c: &Config) -> Daemon {
    Daemon::start(c.clone())
        .await
        .unwrap_or_else(|e| panic!("the daemon does not start: {e:#}"))
}

/// One raw exchange: the bytes sent, the bytes answered (until the daemon closes).
async fn raw(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    // The daemon may refuse before reading everything (too large): the answer still comes.
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no answer"));
    // A reset after the answer (the daemon closed with input unread) loses nothing.
    if let Err(e) = read {
        assert!(!out.is_empty(), "read: {e}");
    }
    out
}

/// Sends `request`, checks the answer against `schema` and decodes it.
async fn ask<T: admin::Document>(socket: &Path, request: &Request) -> T {
    let mut line = serde_json::to_vec(request).unwrap_or_else(|e| panic!("{e}"));
    line.push(b'\n');
    let answer = raw(socket, &line).await;
    assert_valid(T::SCHEMA, &answer);
    let v: serde_json::Value =
        serde_json::from_slice(&answer).unwrap_or_else(|e| panic!("not JSON: {e}"));
    admin::decode(socket, v).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends raw bytes and expects an error answer of `kind`; returns its message.
async fn refused(socket: &Path, bytes: &[u8], kind: &str) -> String {
    let answer = raw(socket, bytes).await;
    assert_valid(admin::ERROR_SCHEMA, &answer);
    let v: serde_json::Value =
        serde_json::from_slice(&answer).unwrap_or_else(|e| panic!("not JSON: {e}"));
    assert_eq!(v["error"], kind, "{v}");
    v["message"].as_str().unwrap_or_default().to_owned()
}

async fn lookup(daemon: &Daemon, map: &str, key: &str) -> String {
    let addr = daemon
        .tcp_addr()
        .unwrap_or_else(|| panic!("no tcp listener"));
    let mut c = Client::tcp(addr).await;
    c.request(map, key).await
}

fn list() -> Request {
    Request::List { limit: None }
}

fn show(d: &str) -> Request {
    Request::Show { domain: d.into() }
}

fn forget(ds: &[&str]) -> Request {
    Request::Forget {
        domains: ds.iter().map(|d| (*d).to_owned()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_forget_with_the_sqlite_store_and_a_restart() {
    let w = world();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("cache.sqlite3");
    let c = config(&w, dir.path(), StoreConfig::Sqlite { path: db.clone() });
    let socket: PathBuf = dir.path().join("admin.sock");
    let daemon = start(&c).await;
    assert_eq!(daemon.admin_path().as_deref(), Some(socket.as_path()));
    let mode = std::fs::metadata(&socket)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the socket's mode is the access control"
    );

    let enforce = lookup(&daemon, "postfix", "good-enforce.test").await;
    assert!(
        enforce.starts_with("OK secure match=mx1.good-enforce.test"),
        "{enforce}"
    );
    let tlsrpt = lookup(&daemon, "tlsrpt", "good-enforce.test").await;
    let dane = lookup(&daemon, "dane", "good-enforce.test").await;
    assert_eq!(
        lookup(&daemon, "postfix", "no-policy.test").await,
        "NOTFOUND "
    );
    let fetches = settled_fetches(&w, "good-enforce.test", 1).await;

    let l: ListDocument = ask(&socket, &list()).await;
    assert_eq!(l.store_backend, "sqlite");
    assert_eq!(
        (l.total, l.truncated, l.store_error.as_deref()),
        (2, false, None)
    );
    let rows: Vec<(&str, State, bool, bool)> = l
        .entries
        .iter()
        .map(|e| (e.domain.as_str(), e.state, e.memory, e.store))
        .collect();
    assert_eq!(
        rows,
        [
            ("good-enforce.test", State::Policy, true, true),
            ("no-policy.test", State::NoRecord, true, true),
        ]
    );
    let e = &l.entries[0];
    assert_eq!(e.mode.as_deref(), Some("enforce"));
    assert_eq!(e.policy_id.as_deref(), Some("20240101T000000"));
    assert!(e.fetched_at.is_some() && e.expires_at.is_some() && e.refresh_at.is_some());
    assert!(!e.refresh_due);
    assert!(l.entries[1].negative_until.is_some() && l.entries[1].mode.is_none());
    // The DANE assessment of the `dane` zone's lookup (the lab is not signed).
    assert_eq!(l.dane.len(), 1, "{:?}", l.dane);
    assert_eq!(
        (l.dane[0].domain.as_str(), l.dane[0].decision.as_str()),
        ("good-enforce.test", "not-applicable")
    );
    let one: ListDocument = ask(&socket, &Request::List { limit: Some(1) }).await;
    assert_eq!((one.total, one.truncated, one.entries.len()), (2, true, 1));

    // Show: the entry in full, and exactly the replies the socketmap listener gave.
    let s: ShowDocument = ask(&socket, &show("Good-Enforce.TEST.")).await;
    assert!(s.found && s.memory && s.store, "{s:?}");
    assert_eq!(s.domain, "good-enforce.test");
    assert_eq!(s.state, Some(State::Policy));
    let p = s
        .entry
        .as_ref()
        .and_then(|e| e.policy.as_ref())
        .unwrap_or_else(|| panic!("no policy: {s:?}"));
    assert_eq!(
        (p.mode.as_str(), p.max_age, p.valid),
        ("enforce", 604_800, true)
    );
    assert_eq!(p.mx, ["mx1.good-enforce.test"]);
    assert!(
        p.text.starts_with("version: STSv1\r\nmode: enforce\r\n"),
        "{}",
        p.text
    );
    assert_eq!(s.answer.decision, "policy");
    let reply = |map: &str| {
        s.answer
            .replies
            .iter()
            .find(|r| r.map == map)
            .and_then(|r| r.reply.clone())
            .unwrap_or_else(|| panic!("no reply for {map}: {:?}", s.answer))
    };
    assert_eq!(reply("_default"), enforce);
    assert_eq!(reply("tlsrpt"), tlsrpt);
    assert_eq!(reply("dane"), dane);
    assert_eq!(
        s.dane.as_ref().map(|d| d.decision.as_str()),
        Some("not-applicable")
    );
    let n: ShowDocument = ask(&socket, &show("no-policy.test")).await;
    assert_eq!(n.state, Some(State::NoRecord));
    assert_eq!(reply_of(&n, "_default"), Some("NOTFOUND ".to_owned()));
    let negative = n.entry.as_ref().and_then(|e| e.negative.as_ref());
    assert!(
        negative.is_some_and(|x| x.kind == "no-record" && x.reason.contains("NXDOMAIN")),
        "{n:?}"
    );
    let none: ShowDocument = ask(&socket, &show("starttls-stripped.test")).await;
    assert!(!none.found && none.state.is_none() && none.entry.is_none());
    assert_eq!(none.answer.decision, "lookup");
    assert!(none.answer.replies.iter().all(|r| r.reply.is_none()));
    // Inspecting looked nothing up.
    assert_eq!(w.policy_fetches_for("good-enforce.test").len(), fetches);

    // Forget: gone from memory, the file and the DANE cache; a second time, nothing.
    let f: ForgetDocument = ask(&socket, &forget(&["good-enforce.test"])).await;
    let r = &f.forgotten[0];
    assert!(r.existed && r.memory && r.store && r.dane, "{r:?}");
    assert!(r.forgot_a_policy());
    assert_eq!(r.policy_id.as_deref(), Some("20240101T000000"));
    assert!(r.store_error.is_none());
    let gone: ShowDocument = ask(&socket, &show("good-enforce.test")).await;
    assert!(!gone.found && gone.dane.is_none(), "{gone:?}");
    let reopened = SqliteStore::open(&db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = daemon.resolver().now();
    assert!(
        reopened
            .get("good-enforce.test", now)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none(),
        "still in the SQLite file"
    );
    assert!(
        reopened
            .get("no-policy.test", now)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_some()
    );
    let again: ForgetDocument = ask(&socket, &forget(&["good-enforce.test"])).await;
    let r = &again.forgotten[0];
    assert!(
        !r.existed && !r.memory && !r.store && !r.dane && r.state.is_none(),
        "{r:?}"
    );

    // A restart on the same file: what was forgotten stays forgotten.
    daemon.shutdown().await;
    assert!(!socket.exists(), "the admin socket is removed at exit");
    let daemon = start(&c).await;
    let l: ListDocument = ask(&socket, &list()).await;
    let names: Vec<&str> = l.entries.iter().map(|e| e.domain.as_str()).collect();
    assert_eq!(names, ["no-policy.test"]);
    // The next request fetches afresh.
    assert_eq!(
        lookup(&daemon, "postfix", "good-enforce.test").await,
        enforce
    );
    assert_eq!(
        settled_fetches(&w, "good-enforce.test", fetches + 1).await,
        fetches + 1
    );
    daemon.shutdown().await;
    w.shutdown();
}

/// The policy fetches the lab logged for `domain`, once at least `least` are logged (the lab
/// logs a connection when its side of it ends, which can be just after the client has its
/// answer), bounded by [`GUARD`].
async fn settled_fetches(w: &World, domain: &str, least: usize) -> usize {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let n = w.policy_fetches_for(domain).len();
        if n >= least || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reply_of(s: &ShowDocument, map: &str) -> Option<String> {
    s.answer
        .replies
        .iter()
        .find(|r| r.map == map)
        .and_then(|r| r.reply.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_removes_the_redis_key() {
    let Some(redis) = mtasts_test_support::redis::RedisServer::start() else {
        return;
    };
    let w = world();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let prefix = "admin-test:";
    let c = config(
        &w,
        dir.path(),
        StoreConfig::Redis {
            url: redis.url(),
            key_prefix: prefix.into(),
        },
    );
    let socket = dir.path().join("admin.sock");
    let daemon = start(&c).await;
    assert!(
        lookup(&daemon, "postfix", "good-enforce.test")
            .await
            .starts_with("OK secure")
    );
    assert_eq!(
        lookup(&daemon, "postfix", "no-policy.test").await,
        "NOTFOUND "
    );
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::open(&redis.url(), prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let now = daemon.resolver().now();
    assert!(
        store
            .get("good-enforce.test", now)
            .await
            .ok()
            .flatten()
            .is_some()
    );

    let l: ListDocument = ask(&socket, &list()).await;
    assert_eq!(l.store_backend, "redis");
    assert!(l.entries.iter().all(|e| e.memory && e.store), "{l:?}");
    assert_eq!(l.total, 2);
    let f: ForgetDocument = ask(&socket, &forget(&["good-enforce.test", "no-policy.test"])).await;
    assert!(
        f.forgotten.iter().all(|r| r.existed && r.memory && r.store),
        "{f:?}"
    );
    for d in ["good-enforce.test", "no-policy.test"] {
        assert!(
            store
                .get(d, now)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .is_none(),
            "{d} is still in Redis"
        );
    }
    let again: ForgetDocument = ask(&socket, &forget(&["good-enforce.test"])).await;
    assert!(!again.forgotten[0].existed);
    let l: ListDocument = ask(&socket, &list()).await;
    assert_eq!(l.total, 0);
    // Redis gone: the list says so and still gives memory.
    assert!(
        lookup(&daemon, "postfix", "good-enforce.test")
            .await
            .starts_with("OK secure")
    );
    drop(redis);
    let l: ListDocument = ask(&socket, &list()).await;
    assert!(l.store_error.is_some(), "{l:?}");
    assert_eq!(l.entries.len(), 1);
    assert!(l.entries[0].memory && !l.entries[0].store);
    daemon.shutdown().await;
    w.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_an_error_answer_and_the_daemon_carries_on() {
    let w = world();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut c = config(&w, dir.path(), StoreConfig::Memory);
    c.admin_max_request = 1024;
    c.admin_timeout = 1.0;
    c.admin_max_connections = 3;
    let socket = dir.path().join("admin.sock");
    let daemon = start(&c).await;
    for (bytes, what) in [
        (&b"garbage\n"[..], "expected value"),
        (b"{\"op\":\"lst\"}\n", "unknown variant `lst`"),
        (b"{\"op\":\"show\"}\n", "missing field `domain`"),
        (b"{\"op\":\"list\",\"limit\":-1}\n", "invalid value"),
        (b"{\"op\":\"list\",\"extra\":1}\n", "unknown field `extra`"),
        (b"\xff\xfe\n", "not an admin request"),
        (
            b"{\"op\":\"show\",\"domain\":\"not a domain\"}\n",
            "is not a domain name",
        ),
        (
            b"{\"op\":\"forget\",\"domains\":[]}\n",
            "at least one domain",
        ),
        (
            b"{\"op\":\"forget\",\"domains\":[\"good-enforce.test\",\"a b\"]}\n",
            "nothing was forgotten",
        ),
        (b"\n", "an empty request"),
        (b"", "an empty request"),
    ] {
        let m = refused(&socket, bytes, "bad-request").await;
        assert!(
            m.contains(what),
            "{:?}: {m}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Over admin_max_request, newline or not.
    let m = refused(&socket, &vec![b'x'; 5000], "too-large").await;
    assert!(m.contains("admin_max_request (1024 bytes)"), "{m}");
    let mut long = b"{\"op\":\"show\",\"domain\":\"".to_vec();
    long.extend(std::iter::repeat_n(b'a', 1100));
    long.extend(b"\"}\n");
    refused(&socket, &long, "too-large").await;
    // A request not complete within admin_timeout.
    let mut s = UnixStream::connect(&socket)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"{\"op\":")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no answer"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_valid(admin::ERROR_SCHEMA, &out);
    assert!(String::from_utf8_lossy(&out).contains("\"error\":\"timeout\""));
    // More than admin_max_connections at once: the one too many is told to try again. (A long
    // admin_timeout for connections opened from now on, so none of them gives up meanwhile.)
    // (The admin socket itself needs a restart; its limits are live.)
    let mut moved = c.clone();
    moved.admin = Some(AdminSocket(UnixListenerConfig {
        path: dir.path().join("elsewhere.sock"),
        mode: None,
        owner: None,
        group: None,
    }));
    let report = daemon
        .reload(moved)
        .unwrap_or_else(|e| panic!("reload: {e}"));
    assert_eq!(report.needs_restart, ["admin"], "{report:?}");
    let mut more = c.clone();
    more.admin_max_connections = 100;
    let report = daemon
        .reload(more)
        .unwrap_or_else(|e| panic!("reload: {e}"));
    assert_eq!(
        report.needs_restart,
        ["admin_max_connections"],
        "{report:?}"
    );
    assert_eq!(daemon.admin_path().as_deref(), Some(socket.as_path()));
    let mut longer = c.clone();
    longer.admin_timeout = 600.0;
    let report = daemon
        .reload(longer)
        .unwrap_or_else(|e| panic!("reload: {e}"));
    assert!(report.applied.contains(&"admin limits"), "{report:?}");
    drop(s);
    // Of admin_max_connections + 1 connections held open at once, at least one is answered `busy`
    // at once; the others wait for their request.
    let mut idle = Vec::new();
    for _ in 0..=c.admin_max_connections {
        let conn = UnixStream::connect(&socket)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        idle.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut out = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut out))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            out.truncate(n);
            (conn, out)
        }));
    }
    let mut busy = 0;
    let mut held = Vec::new();
    for t in idle {
        let (conn, out) = t.await.unwrap_or_else(|e| panic!("{e}"));
        if !out.is_empty() {
            assert_valid(admin::ERROR_SCHEMA, &out);
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("\"error\":\"busy\""), "{text}");
            assert!(
                text.contains("3 admin connections are being served"),
                "{text}"
            );
            busy += 1;
        }
        held.push(conn);
    }
    assert!(
        busy >= 1,
        "{} connections and none was told busy",
        held.len()
    );
    let idle = held;
    drop(idle);
    // Once they are closed, requests are served again; the daemon still answers Postfix.
    let served = async {
        loop {
            let answer = raw(&socket, b"{\"op\":\"list\"}\n").await;
            if !String::from_utf8_lossy(&answer).contains("\"error\":\"busy\"") {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let answer = tokio::time::timeout(GUARD, served)
        .await
        .unwrap_or_else(|_| panic!("still busy"));
    assert_valid(admin::LIST_SCHEMA, &answer);
    assert!(
        lookup(&daemon, "postfix", "good-enforce.test")
            .await
            .starts_with("OK secure")
    );
    // The client library: an error answer is an error, naming what the daemon said.
    match admin::request(&socket, &show("a b"), GUARD).await {
        Err(AdminError::Refused { kind, message }) => {
            assert_eq!(kind, "bad-request");
            assert!(message.contains("not a domain name"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    daemon.shutdown().await;
    // No daemon: the error names the socket.
    match admin::request(&socket, &list(), GUARD).await {
        Err(e @ AdminError::Missing { .. }) => {
            assert!(e.to_string().contains(&socket.display().to_string()), "{e}")
        }
        other => panic!("{other:?}"),
    }
    w.shutdown();
}
