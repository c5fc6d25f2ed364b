//! The Redis store against a real `redis-server` started for each test.
#![allow(missing_docs)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtasts_core::sts::cache::{CacheEntry, CachedPolicy, FailedFetch, Negative, NegativeKind};
use mtasts_core::sts::policy::Policy;
use mtasts_resolver::store::{RedisStore, Store, StoreError};
use mtasts_test_support::redis::RedisServer;

const PREFIX: &str = "mtasts:sts:";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

fn policy_entry(now: u64) -> CacheEntry {
    let policy = Policy::parse(
        b"version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmax_age: 86400\r\n",
    )
    .expect("the test policy parses");
    CacheEntry {
        policy: Some(CachedPolicy {
            policy,
            id: "id1".to_owned(),
            fetched_at: now,
        }),
        checked_at: now,
        refresh_at: now + 3600,
        negative: None,
        failed_fetch: None,
    }
}

fn negative_entry(now: u64) -> CacheEntry {
    CacheEntry {
        checked_at: now,
        negative: Some(Negative {
            kind: NegativeKind::Transient,
            until: now + 30,
            reason: "SERVFAIL".to_owned(),
        }),
        ..CacheEntry::default()
    }
}

fn failed_fetch_entry(now: u64) -> CacheEntry {
    CacheEntry {
        checked_at: now,
        negative: Some(Negative {
            kind: NegativeKind::FetchFailed,
            until: now + 300,
            reason: "the policy fetch for id x failed: timeout".to_owned(),
        }),
        failed_fetch: Some(FailedFetch {
            id: "x".to_owned(),
            at: now,
            reason: "timeout".to_owned(),
        }),
        ..CacheEntry::default()
    }
}

async fn open(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::open(&server.url(), prefix)
        .await
        .unwrap_or_else(|e| panic!("opening {}: {e}", server.url()))
}

/// A plain connection, to look at and tamper with keys behind the store's back.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("a valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection")
}

async fn raw_cmd<T: redis::FromRedisValue>(server: &RedisServer, cmd: &mut redis::Cmd) -> T {
    let mut conn = raw(server).await;
    cmd.query_async(&mut conn).await.expect("a raw command")
}

#[tokio::test]
async fn round_trip_of_policy_negative_and_failed_fetch_entries() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server, PREFIX).await;
    assert_eq!(store.backend(), "redis");
    let now = now();
    let cases = [
        ("example.com", policy_entry(now)),
        ("example.org", negative_entry(now)),
        ("example.net", failed_fetch_entry(now)),
    ];
    for (domain, entry) in &cases {
        store.put(domain, entry, now + 600).await.expect("put");
    }
    for (domain, entry) in &cases {
        assert_eq!(
            store.get(domain, now).await.expect("get").as_ref(),
            Some(entry),
            "{domain}"
        );
    }
    assert_eq!(store.get("absent.example", now).await.expect("get"), None);
    // The value is the entry's JSON under <prefix><domain>.
    let json: String = raw_cmd(&server, redis::cmd("GET").arg("mtasts:sts:example.com")).await;
    let decoded: CacheEntry = serde_json::from_str(&json).expect("the value is JSON");
    assert_eq!(decoded, policy_entry(now));
    assert_eq!(store.purge(now).await.expect("purge"), 0);
}

/// `mtasts daemon cache forget`: the key is deleted, whether one existed is told, and keys
/// of another prefix (another fleet) are left alone.
#[tokio::test]
async fn remove_deletes_the_key_and_says_whether_there_was_one() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server, PREFIX).await;
    let other = open(&server, "other:").await;
    let now = now();
    store
        .put("example.com", &policy_entry(now), now + 600)
        .await
        .expect("put");
    store
        .put("example.org", &negative_entry(now), now + 600)
        .await
        .expect("put");
    other
        .put("example.com", &policy_entry(now), now + 600)
        .await
        .expect("put");
    assert!(store.remove("example.com").await.expect("remove"));
    assert!(!store.remove("example.com").await.expect("remove again"));
    assert!(!store.remove("absent.example").await.expect("remove absent"));
    assert_eq!(store.get("example.com", now).await.expect("get"), None);
    let exists: i64 = raw_cmd(&server, redis::cmd("EXISTS").arg("mtasts:sts:example.com")).await;
    assert_eq!(exists, 0);
    assert!(other.get("example.com", now).await.expect("get").is_some());
    let left: Vec<String> = store
        .load(now, usize::MAX)
        .await
        .expect("load")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(left, ["example.org"]);
}

#[tokio::test]
async fn keys_expire_when_the_entry_becomes_useless() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server, PREFIX).await;
    let now = now();
    let useless_after = now + 3600;
    store
        .put("example.com", &policy_entry(now), useless_after)
        .await
        .expect("put");
    let key = "mtasts:sts:example.com";
    // Readable through the useless_after second: the key expires at the next one.
    let expire_time: i64 = raw_cmd(&server, redis::cmd("EXPIRETIME").arg(key)).await;
    assert_eq!(expire_time, i64::try_from(useless_after + 1).expect("fits"));
    let ttl: i64 = raw_cmd(&server, redis::cmd("TTL").arg(key)).await;
    assert!((3595..=3601).contains(&ttl), "TTL {ttl}");

    // A put replaces the expiry too.
    store
        .put("example.com", &policy_entry(now), now + 60)
        .await
        .expect("put");
    let ttl: i64 = raw_cmd(&server, redis::cmd("TTL").arg(key)).await;
    assert!((55..=61).contains(&ttl), "TTL {ttl}");

    // An entry that is already useless is not written, and replaces (removes) the old one.
    store
        .put("example.com", &policy_entry(now), now - 10)
        .await
        .expect("put of a useless entry");
    let exists: i64 = raw_cmd(&server, redis::cmd("EXISTS").arg(key)).await;
    assert_eq!(exists, 0);
    assert_eq!(store.get("example.com", now).await.expect("get"), None);

    // Redis really drops the key once it is useless.
    store
        .put("short.example", &negative_entry(now), now)
        .await
        .expect("put");
    let deadline = Instant::now() + Duration::from_secs(5);
    while store
        .get("short.example", now)
        .await
        .expect("get")
        .is_some()
    {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn load_returns_at_most_limit_entries_of_its_prefix() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server, PREFIX).await;
    let now = now();
    for i in 0..1200 {
        store
            .put(&format!("d{i}.example"), &negative_entry(now), now + 600)
            .await
            .expect("put");
    }
    // Keys of another prefix, and one whose prefix differs only by a glob character.
    let other = open(&server, "other:").await;
    other
        .put("x.example", &negative_entry(now), now + 600)
        .await
        .expect("put");
    let _: () = raw_cmd(&server, redis::cmd("SET").arg("mtasts:stsX").arg("{}")).await;

    let all = store.load(now, usize::MAX).await.expect("load");
    assert_eq!(all.len(), 1200);
    let mut domains: Vec<&str> = all.iter().map(|(d, _)| d.as_str()).collect();
    domains.sort_unstable();
    domains.dedup();
    assert_eq!(domains.len(), 1200, "no duplicates");
    assert!(
        domains
            .iter()
            .all(|d| d.starts_with('d') && d.ends_with(".example"))
    );
    assert!(all.iter().all(|(_, e)| *e == negative_entry(now)));

    assert_eq!(store.load(now, 7).await.expect("load").len(), 7);
    assert_eq!(store.load(now, 600).await.expect("load").len(), 600);
    assert!(store.load(now, 0).await.expect("load").is_empty());
    assert_eq!(other.load(now, 10).await.expect("load").len(), 1);

    // A prefix with glob characters matches itself only.
    let globby = open(&server, "g*[").await;
    globby
        .put("y.example", &negative_entry(now), now + 600)
        .await
        .expect("put");
    let _: () = raw_cmd(&server, redis::cmd("SET").arg("gX[z.example").arg("{}")).await;
    let loaded = globby.load(now, 10).await.expect("load");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0, "y.example");
}

#[tokio::test]
async fn a_corrupt_value_is_reported_and_left_in_place() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server, PREFIX).await;
    let now = now();
    store
        .put("good.example", &policy_entry(now), now + 600)
        .await
        .expect("put");
    let key = "mtasts:sts:bad.example";
    let _: () = raw_cmd(&server, redis::cmd("SET").arg(key).arg("{not json")).await;

    match store.get("bad.example", now).await {
        Err(StoreError::Corrupt {
            backend,
            key: k,
            detail,
        }) => {
            assert_eq!(backend, "redis");
            assert_eq!(k, key);
            assert!(detail.contains(&server.url()), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let loaded = store
        .load(now, 10)
        .await
        .expect("load skips the corrupt value");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0, "good.example");

    let value: String = raw_cmd(&server, redis::cmd("GET").arg(key)).await;
    assert_eq!(value, "{not json", "the corrupt value is still there");
}

#[tokio::test]
async fn two_mtas_see_each_others_writes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = open(&server, PREFIX).await;
    let b = open(&server, PREFIX).await;
    let now = now();
    a.put("example.com", &policy_entry(now), now + 600)
        .await
        .expect("put on A");
    assert_eq!(
        b.get("example.com", now).await.expect("get on B"),
        Some(policy_entry(now))
    );
    b.put("example.com", &negative_entry(now), now + 600)
        .await
        .expect("put on B");
    assert_eq!(
        a.get("example.com", now).await.expect("get on A"),
        Some(negative_entry(now))
    );
    assert_eq!(b.load(now, 10).await.expect("load on B").len(), 1);
    // Another prefix is another cache.
    let c = open(&server, "fleet2:").await;
    assert_eq!(c.get("example.com", now).await.expect("get on C"), None);
}

#[tokio::test]
async fn the_store_recovers_after_the_server_restarts() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = open(&server, PREFIX).await;
    let now = now();
    store
        .put("before.example", &policy_entry(now), now + 600)
        .await
        .expect("put before the restart");

    server.stop();
    let down = store.get("before.example", now).await;
    match down {
        Err(StoreError::Io {
            backend: "redis",
            op: "get",
            key,
            detail,
        }) => {
            assert_eq!(key, "mtasts:sts:before.example");
            assert!(detail.contains(&server.url()), "{detail}");
        }
        other => panic!("expected an I/O error while the server is down, got {other:?}"),
    }

    server.restart();
    // The same store works again without being reopened (the data is gone: no persistence).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store
            .put("after.example", &negative_entry(now), now + 600)
            .await
        {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "no recovery after restart: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(
        store
            .get("after.example", now)
            .await
            .expect("get after the restart"),
        Some(negative_entry(now))
    );
    assert_eq!(store.get("before.example", now).await.expect("get"), None);
}

#[tokio::test]
async fn a_restart_between_operations_is_invisible() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = open(&server, PREFIX).await;
    let now = now();
    store
        .put("a.example", &policy_entry(now), now + 600)
        .await
        .expect("put");
    server.restart();
    // The first operation finds the old connection dropped and retries on a new one.
    store
        .put("b.example", &policy_entry(now), now + 600)
        .await
        .expect("put right after a restart");
    assert!(store.get("b.example", now).await.expect("get").is_some());
}

#[tokio::test]
async fn open_failures_name_the_url_without_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nothing.sock");
    let url = format!("unix://{}?pass=hunter2", socket.display());
    let err = RedisStore::open(&url, PREFIX)
        .await
        .expect_err("nothing listens there");
    let message = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Open {
                backend: "redis",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(message.contains(&socket.display().to_string()), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("pass=***"), "{message}");

    let err = RedisStore::open("redis://mta:hunter2@127.0.0.1:1/0", PREFIX)
        .await
        .expect_err("nothing listens on port 1");
    let message = err.to_string();
    assert!(
        message.contains("redis://mta:***@127.0.0.1:1/0"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");

    let err = RedisStore::open("not a url", PREFIX)
        .await
        .expect_err("not a URL");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}
