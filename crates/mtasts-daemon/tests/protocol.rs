//! The daemon as Postfix and an operator see it: pipelining, malformed input, limits, Unix
//! sockets, connection limits, idle and shutdown behaviour, reload and metrics, against a
//! lab world over real sockets.
#![allow(missing_docs)]

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Client, Harness, http_get, sample, start, wait_until};
use mtasts_daemon::{BoundAddr, Config, Daemon, Listener};
use mtasts_lab::Scenario;

const OK_GOOD: &str = "OK secure match=mail.good.test servername=hostname";

fn scenario() -> Scenario {
    Scenario::from_toml_str(
        r#"
        [lab]
        name = "daemon-protocol"

        [domains."good.test"]
        comment = "enforce, one mx"
        sts_txt = ["v=STSv1; id=1;"]
        [domains."good.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mail.good.test"]

        [domains."enf.test"]
        comment = "enforce, two mx patterns"
        sts_txt = ["v=STSv1; id=1;"]
        [domains."enf.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mail.enf.test", "*.mx.enf.test"]

        [domains."testing.test"]
        comment = "testing"
        sts_txt = ["v=STSv1; id=1;"]
        [domains."testing.test".policy]
        mode = "testing"
        max_age = 86400
        mx = ["mail.testing.test"]

        [domains."bücher.test"]
        comment = "IDN"
        sts_txt = ["v=STSv1; id=1;"]
        [domains."bücher.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mail.xn--bcher-kva.test"]

        [domains."slow.test"]
        comment = "the policy host waits 2 s before answering"
        sts_txt = ["v=STSv1; id=1;"]
        [domains."slow.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mail.slow.test"]
        delay_ms = 2000

        [domains."none.test"]
        comment = "no MTA-STS"
        "#,
        "<protocol scenario>",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn harness(tweak: impl FnOnce(&mut Config)) -> Harness {
    start(&scenario(), tweak).await
}

// ---------------------------------------------------------------------------------------
// Pipelining

/// Ten requests in one write get ten answers in request order, although the first one is the
/// slowest (answers are computed concurrently and written in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_ten_requests_in_one_write_answered_in_order() {
    let h = harness(|_| {}).await;
    let cases = [
        (
            "postfix",
            "slow.test",
            "OK secure match=mail.slow.test servername=hostname",
        ),
        ("postfix", "good.test", OK_GOOD),
        (
            "postfix",
            "enf.test",
            "OK secure match=mail.enf.test:.mx.enf.test servername=hostname",
        ),
        ("postfix", ".good.test", "NOTFOUND "),
        ("postfix", "[192.0.2.1]", "NOTFOUND "),
        ("postfix", "testing.test", "NOTFOUND "),
        (
            "strict",
            "testing.test",
            "OK secure match=mail.testing.test servername=hostname",
        ),
        ("nosni", "[good.test]:25", "OK secure match=mail.good.test"),
        ("postfix", "none.test", "NOTFOUND "),
        (
            "postfix",
            "bücher.test",
            "OK secure match=mail.xn--bcher-kva.test servername=hostname",
        ),
    ];
    let mut bytes = Vec::new();
    for (map, key, _) in cases {
        mtasts_postfix::socketmap::encode_into(&mut bytes, format!("{map} {key}").as_bytes());
    }
    let mut c = h.client().await;
    c.send_raw(&bytes).await;
    for (map, key, expected) in cases {
        assert_eq!(c.reply().await.as_deref(), Some(expected), "{map} {key}");
    }
    // The connection stays open for more.
    assert_eq!(c.request("postfix", "good.test").await, OK_GOOD);
}

/// A request split across many writes (one byte at a time) is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_split_byte_by_byte() {
    let h = harness(|_| {}).await;
    let mut c = h.client().await;
    for b in mtasts_postfix::socketmap::encode(b"postfix good.test") {
        c.send_raw(&[b]).await;
    }
    assert_eq!(c.reply().await.as_deref(), Some(OK_GOOD));
}

// ---------------------------------------------------------------------------------------
// Malformed input: no reply, connection closed (as the peer does), counted in metrics.

async fn closes_without_reply(bytes: &[u8]) {
    let h = harness(|_| {}).await;
    let mut c = h.client().await;
    c.send_raw(bytes).await;
    assert!(c.closed_without_reply().await, "{bytes:?}");
    let m = h.daemon().render_metrics();
    let errors: f64 = m
        .lines()
        .filter(|l| l.starts_with("mtasts_socketmap_protocol_errors_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(errors, 1.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bad_terminator_closes() {
    closes_without_reply(b"17:postfix good.test!").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_non_digit_length_closes() {
    closes_without_reply(b"1x:postfix good.test,").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_empty_length_closes() {
    closes_without_reply(b":postfix good.test,").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_leading_zero_closes() {
    closes_without_reply(b"017:postfix good.test,").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_request_closes() {
    closes_without_reply(b"GET /metrics HTTP/1.1\r\n\r\n").await;
}

/// Requests before the malformed one are still answered; then the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_after_good_request_answers_the_good_one_then_closes() {
    let h = harness(|_| {}).await;
    let mut c = h.client().await;
    c.send_raw(b"17:postfix good.test,XYZ").await;
    assert_eq!(c.reply().await.as_deref(), Some(OK_GOOD));
    assert!(c.closed_without_reply().await);
}

/// A length over max_request closes the connection before the payload is even sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_request_closes() {
    let h = harness(|_| {}).await;
    let mut c = h.client().await;
    c.send_raw(b"1025:").await;
    assert!(c.closed_without_reply().await);
    let m = h.daemon().render_metrics();
    assert_eq!(
        sample(
            &m,
            "mtasts_socketmap_protocol_errors_total{error=\"too-long\"}"
        ),
        Some(1.0),
        "{m}"
    );
}

/// A request of exactly max_request bytes is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_of_exactly_max_request_is_answered() {
    let h = harness(|c| c.max_request = 64).await;
    let key = "a".repeat(64 - "postfix ".len());
    let mut c = h.client().await;
    assert_eq!(c.request("postfix", &key).await, "NOTFOUND ");
    c.send_raw(&mtasts_postfix::socketmap::encode(&[b'a'; 65]))
        .await;
    assert!(c.closed_without_reply().await);
}

// ---------------------------------------------------------------------------------------
// Key forms (each also has its own test in mtasts-core's tests/socketmap.rs)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_form_over_one_connection() {
    let h = harness(|_| {}).await;
    let idn = "OK secure match=mail.xn--bcher-kva.test servername=hostname";
    let forms = [
        ("domain", "good.test", OK_GOOD),
        ("trailing dot", "good.test.", OK_GOOD),
        ("upper case", "GOOD.Test", OK_GOOD),
        ("bracketed host with port", "[good.test]:587", OK_GOOD),
        ("bracketed host", "[good.test]", OK_GOOD),
        ("host with port", "good.test:587", OK_GOOD),
        ("host with service name", "good.test:submission", OK_GOOD),
        ("parent probe", ".good.test", "NOTFOUND "),
        ("parent probe of a TLD", ".test", "NOTFOUND "),
        ("IPv4 literal", "[192.0.2.1]", "NOTFOUND "),
        ("IPv4 literal with port", "[192.0.2.1]:25", "NOTFOUND "),
        ("IPv6 literal", "[IPv6:2001:db8::1]", "NOTFOUND "),
        (
            "IPv6 literal, lower case tag",
            "[ipv6:2001:db8::1]",
            "NOTFOUND ",
        ),
        ("IPv6 literal with port", "[2001:db8::1]:25", "NOTFOUND "),
        ("U-label", "bücher.test", idn),
        ("U-label, upper case", "BÜCHER.test", idn),
        ("U-label, bracketed with port", "[bücher.test]:25", idn),
        ("A-label", "xn--bcher-kva.test", idn),
        ("invalid name", "a_b.test", "NOTFOUND "),
        ("empty key", "", "NOTFOUND "),
        ("no policy", "none.test", "NOTFOUND "),
    ];
    let mut c = h.client().await;
    for (form, key, expected) in forms {
        assert_eq!(c.request("postfix", key).await, expected, "{form}: {key:?}");
    }
    // Parent probes and IP literals are never looked up.
    let m = h.daemon().render_metrics();
    assert_eq!(
        sample(
            &m,
            "mtasts_socketmap_skipped_total{reason=\"parent-probe\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&m, "mtasts_socketmap_skipped_total{reason=\"ip-literal\"}"),
        Some(5.0)
    );
    assert!(
        !h.world
            .dns_queries()
            .iter()
            .any(|q| q.name.contains("192") || q.name.starts_with("_mta-sts.test")),
        "a skipped key was looked up"
    );
}

// ---------------------------------------------------------------------------------------
// Unix sockets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_with_mode_answers_and_is_removed_at_shutdown() {
    let mut h = harness(|_| {}).await;
    let meta = std::fs::metadata(&h.unix).unwrap_or_else(|e| panic!("{e}"));
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    assert!(
        h.daemon()
            .local_addrs()
            .contains(&BoundAddr::Unix(h.unix.clone()))
    );
    let mut c = Client::unix(&h.unix).await;
    assert_eq!(c.request("postfix", "good.test").await, OK_GOOD);
    drop(c);
    let daemon = h.daemon.take().unwrap_or_else(|| panic!("daemon"));
    assert!(daemon.shutdown().await.clean);
    assert!(!h.unix.exists(), "the socket file is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_stale_file_replaced_and_group_set() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("stale.sock");
    // A socket file left behind by a dead process.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}")));
    assert!(path.exists());
    let gid = std::fs::metadata(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .gid();
    let p = path.clone();
    let h = harness(move |c| {
        c.listen[1] = Listener::Unix(mtasts_daemon::config::UnixListenerConfig {
            path: p,
            mode: Some(0o600),
            owner: None,
            group: Some(gid.to_string()),
        });
    })
    .await;
    let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.gid(), gid);
    let mut c = Client::unix(&path).await;
    assert_eq!(c.request("postfix", "good.test").await, OK_GOOD);
    drop(h);
}

fn unix_only_config(path: std::path::PathBuf) -> Config {
    let mut c = Config {
        listen: vec![Listener::Unix(mtasts_daemon::config::UnixListenerConfig {
            path,
            mode: None,
            owner: None,
            group: None,
        })],
        refresh_period: 0.0,
        ..Config::default()
    };
    c.resolver.store = mtasts_resolver::store::StoreConfig::Memory;
    c
}

fn unix_config_with(path: std::path::PathBuf, mode: u32, group: Option<String>) -> Config {
    let mut c = unix_only_config(path.clone());
    c.listen[0] = Listener::Unix(mtasts_daemon::config::UnixListenerConfig {
        path,
        mode: Some(mode),
        owner: None,
        group,
    });
    c
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{e}"))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A socket with a mode is bound in a private directory and renamed into place with its mode
/// (no moment at the final path with the umask's mode); the directory does not stay, neither
/// after a start nor after a failed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_appears_with_its_mode_and_leaves_no_directory_behind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("policy.sock");
    let daemon = Daemon::start(unix_config_with(path.clone(), 0o620, None))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o620);
    assert_eq!(names_in(dir.path()), ["policy.sock"]);
    let mut c = Client::unix(&path).await;
    assert_eq!(c.request("postfix", "[192.0.2.1]").await, "NOTFOUND ");
    drop(c);
    assert!(daemon.shutdown().await.clean);
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );

    // A group that does not exist: refused, and nothing is left, neither socket nor directory.
    let c = unix_config_with(path.clone(), 0o660, Some("no-such-group-mtasts".into()));
    let err = Daemon::start(c).await.err().map(|e| format!("{e:#}"));
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("no such group \"no-such-group-mtasts\"")),
        "{err:?}"
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
}

/// A socket path that fits `sun_path` only without the detour through a private directory is
/// still bound, with its mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_at_a_path_near_the_length_limit_is_bound_with_its_mode() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let base = dir.path().as_os_str().len();
    // parent + "/a.sock" is 104 bytes; parent + "/.mtasts-XXXXXX/s" would be over 107.
    let parent = dir.path().join("d".repeat(96 - base));
    std::fs::create_dir(&parent).unwrap_or_else(|e| panic!("{e}"));
    let path = parent.join("a.sock");
    assert_eq!(path.as_os_str().len(), 104);
    let daemon = Daemon::start(unix_config_with(path.clone(), 0o600, None))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(names_in(&parent), ["a.sock"]);
    let mut c = Client::unix(&path).await;
    assert_eq!(c.request("postfix", "[192.0.2.1]").await, "NOTFOUND ");
    drop(c);
    assert!(daemon.shutdown().await.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_path_of_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("not-a-socket");
    std::fs::write(&path, b"keep me").unwrap_or_else(|e| panic!("{e}"));
    let c = unix_only_config(path.clone());
    let err = Daemon::start(c).await.err().map(|e| format!("{e:#}"));
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("is not a socket")),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).ok().as_deref(), Some(&b"keep me"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_in_use_is_refused() {
    let h = harness(|_| {}).await;
    let unix = h.unix.clone();
    let c = unix_only_config(unix.clone());
    let err = Daemon::start(c).await.err().map(|e| format!("{e:#}"));
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("another process is listening")),
        "{err:?}"
    );
    // The first daemon still answers there.
    let mut client = Client::unix(&unix).await;
    assert_eq!(client.request("postfix", "good.test").await, OK_GOOD);
}

// ---------------------------------------------------------------------------------------
// Limits

/// With max_connections open, a new connection is accepted and the open connection that has
/// been quiet the longest is closed to make room, so the new client is served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_closes_the_connection_idle_longest() {
    let h = harness(|c| {
        c.max_connections = 2;
        c.listen.truncate(1);
    })
    .await;
    let mut c1 = h.client().await;
    let mut c2 = h.client().await;
    assert_eq!(c1.request("postfix", "good.test").await, OK_GOOD);
    // The daemon marks a connection quiet just after writing its answer, in milliseconds; the
    // client may read the answer first. Without a pause c1's mark can land after c2's, and
    // then c2 is rightly the one quiet the longest. The pause orders the two; it is not a
    // timing assertion.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(c2.request("postfix", "good.test").await, OK_GOOD);
    let mut c3 = h.client().await;
    assert_eq!(c3.request("postfix", "good.test").await, OK_GOOD);
    // c1 was quiet the longest: it was closed; c2 is still served.
    assert!(c1.closed_without_reply().await, "c1 closed to make room");
    assert_eq!(c2.request("postfix", "good.test").await, OK_GOOD);
    let m = h.daemon().render_metrics();
    assert_eq!(sample(&m, "mtasts_connections_waited_total"), Some(1.0));
    assert_eq!(sample(&m, "mtasts_connections_evicted_total"), Some(1.0));
    assert_eq!(sample(&m, "mtasts_connections_total"), Some(3.0));
}

/// When every open connection is waiting for an answer, a new one waits for a slot (nothing
/// being answered is ever cut off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_never_closes_a_connection_being_answered() {
    let h = harness(|c| {
        c.max_connections = 1;
        c.listen.truncate(1);
    })
    .await;
    let mut busy = h.client().await;
    busy.send("postfix", "slow.test").await;
    let d = h.daemon();
    wait_until("the slow request to be in flight", || d.in_flight() == 1).await;
    let mut late = h.client().await;
    late.send("postfix", "good.test").await;
    wait_until("the new connection to wait", || {
        d.metrics().connections_waited.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert_eq!(
        busy.reply().await.as_deref(),
        Some("OK secure match=mail.slow.test servername=hostname")
    );
    // Once busy is answered it is idle, so the waiting client gets its place.
    assert_eq!(late.reply().await.as_deref(), Some(OK_GOOD));
}

/// Regression (issue 13): each byte of a partial request used to reset idle_timeout, so one
/// byte every few seconds held a slot forever. The whole request now has
/// request_read_timeout, however its bytes trickle in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_is_closed_at_request_read_timeout() {
    let h = harness(|c| {
        c.request_read_timeout = 0.5;
        c.idle_timeout = 60.0;
    })
    .await;
    let mut c = h.client().await;
    // The trickle would take 2.2 s; the daemon closes the connection first (a write then
    // fails with a broken pipe, which ends the trickle).
    for b in b"1000:postfix good.test" {
        if c.try_send_raw(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        c.reply_within(Duration::from_secs(30)).await.is_none(),
        "closed, not answered"
    );
    assert!(
        h.daemon()
            .metrics()
            .slow_request_closed
            .load(Ordering::Relaxed)
            >= 1
    );
}

/// The hostile-client test (issue 13): while slow-loris clients (trickling partial requests)
/// and idle clients hold every one of max_connections, a normal lookup is answered: the
/// client quiet the longest is closed to make room. The test's bound is a guard against a
/// hang, not a timing assertion; the measured time is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_lookups_are_served_while_slow_and_idle_clients_hold_every_slot() {
    const SLOTS: usize = 64;
    let h = harness(|c| {
        c.max_connections = SLOTS;
        c.listen.truncate(1);
        // The defaults would close these clients within seconds; make them patient so that
        // only the eviction can serve the newcomer.
        c.request_read_timeout = 600.0;
        c.idle_timeout = 600.0;
    })
    .await;
    // Cache the answer first, so the lookup itself needs no network.
    assert_eq!(h.ask("postfix", "good.test").await, OK_GOOD);
    let (mut slow, mut idle) = (Vec::new(), Vec::new());
    for i in 0..SLOTS {
        let mut c = h.client().await;
        if i % 2 == 0 {
            c.send_raw(b"1000:postfix ").await;
            slow.push(c);
        } else {
            idle.push(c);
        }
    }
    let d = h.daemon();
    wait_until("every slot to be taken", || d.connections() == SLOTS as u64).await;
    // Keep the slow-loris half trickling while the normal clients arrive.
    let trickler = {
        let mut slow = std::mem::take(&mut slow);
        tokio::spawn(async move {
            for _ in 0..20 {
                for c in &mut slow {
                    // Evicted ones refuse the byte; the others keep trickling.
                    let _ = c.try_send_raw(b"x").await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            slow
        })
    };
    // Each normal client stays connected, so every round meets a full house again.
    let mut normal = Vec::new();
    for round in 0..5 {
        let started = std::time::Instant::now();
        let mut c = h.client().await;
        c.send("postfix", "good.test").await;
        let reply = c.reply_within(Duration::from_secs(10)).await;
        eprintln!("round {round}: answered in {:?}", started.elapsed());
        assert_eq!(reply.as_deref(), Some(OK_GOOD));
        normal.push(c);
    }
    let evicted = d.metrics().connections_evicted.load(Ordering::Relaxed);
    let waited = d.metrics().connections_waited.load(Ordering::Relaxed);
    assert!(
        evicted >= 5,
        "evicted {evicted}, waited {waited}, open {}",
        d.connections()
    );
    drop(trickler.await);
    drop(idle);
}

/// An idle connection is closed after idle_timeout; one with a request pending is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_idle_connections_only() {
    let h = harness(|c| c.idle_timeout = 0.3).await;
    let mut c = h.client().await;
    assert_eq!(c.request("postfix", "good.test").await, OK_GOOD);
    assert!(c.closed_without_reply().await, "closed when idle");
    assert!(h.daemon().metrics().idle_closed.load(Ordering::Relaxed) >= 1);
    // slow.test takes longer than idle_timeout, but its request is pending.
    let mut c = h.client().await;
    assert_eq!(
        c.request("postfix", "slow.test").await,
        "OK secure match=mail.slow.test servername=hostname"
    );
}

// ---------------------------------------------------------------------------------------
// Shutdown

/// Shutdown stops accepting, lets the request in flight finish and be written, then closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_completes_in_flight_requests() {
    let mut h = harness(|_| {}).await;
    let mut c = h.client().await;
    c.send("postfix", "slow.test").await;
    let daemon = h.daemon.take().unwrap_or_else(|| panic!("daemon"));
    wait_until("the request to be in flight", || daemon.in_flight() == 1).await;
    let stopping = tokio::spawn(daemon.shutdown());
    assert_eq!(
        c.reply().await.as_deref(),
        Some("OK secure match=mail.slow.test servername=hostname")
    );
    assert!(c.closed_without_reply().await, "closed after the answer");
    let report = stopping.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.clean);
    assert!(
        tokio::net::TcpStream::connect(h.tcp).await.is_err(),
        "no longer accepting"
    );
}

/// Past shutdown_timeout, connections still waiting for an answer are closed without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_closes_unanswered_connections() {
    let mut h = harness(|c| c.shutdown_timeout = 0.2).await;
    let mut c = h.client().await;
    c.send("postfix", "slow.test").await;
    let daemon = h.daemon.take().unwrap_or_else(|| panic!("daemon"));
    wait_until("the request to be in flight", || daemon.in_flight() == 1).await;
    let report = daemon.shutdown().await;
    assert!(!report.clean);
    assert!(c.closed_without_reply().await);
}

// ---------------------------------------------------------------------------------------
// Reload

/// A reload (what SIGHUP does) switches strict_testing at once, on an open connection;
/// a changed listener is reported as needing a restart and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_switches_strict_testing_live() {
    let h = harness(|_| {}).await;
    let mut c = h.client().await;
    assert_eq!(c.request("postfix", "testing.test").await, "NOTFOUND ");
    let mut new = h.config.clone();
    new.default_zone.strict_testing = true;
    new.log.level = "debug".into();
    new.listen.truncate(1);
    let report = h.daemon().reload(new).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.applied.contains(&"default_zone"), "{report:?}");
    assert!(report.applied.contains(&"log.level"), "{report:?}");
    assert_eq!(report.needs_restart, vec!["listen"]);
    assert_eq!(
        c.request("postfix", "testing.test").await,
        "OK secure match=mail.testing.test servername=hostname"
    );
    // The unix listener is still there.
    let mut u = Client::unix(&h.unix).await;
    assert_eq!(
        u.request("postfix", "testing.test").await,
        "OK secure match=mail.testing.test servername=hostname"
    );
    // And back.
    let report = h
        .daemon()
        .reload(h.config.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.applied.contains(&"default_zone"), "{report:?}");
    assert_eq!(c.request("postfix", "testing.test").await, "NOTFOUND ");
}

/// reload_from_file: a broken file keeps the running configuration; a good one applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_from_file_keeps_running_config_on_error() {
    let h = harness(|_| {}).await;
    let file = h.dir.path().join("daemon.toml");
    std::fs::write(&file, "[zones.strict]\nstrict_testing = \"yes\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = h
        .daemon()
        .reload_from_file(&file)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("daemon.toml") && e.contains("line 2")),
        "{err:?}"
    );
    assert_eq!(
        h.ask("strict", "testing.test").await,
        "OK secure match=mail.testing.test servername=hostname",
        "the old zones stay"
    );
    std::fs::write(&file, "[zones.tlsrpt]\ntlsrpt = true\n").unwrap_or_else(|e| panic!("{e}"));
    let report = h
        .daemon()
        .reload_from_file(&file)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.applied.contains(&"zones"));
    assert!(report.needs_restart.contains(&"resolver"));
    assert!(report.needs_restart.contains(&"listen"));
    // `strict` is gone: it now falls back to the default zone.
    assert_eq!(h.ask("strict", "testing.test").await, "NOTFOUND ");
    assert!(
        h.ask("tlsrpt", "good.test")
            .await
            .contains("policy_type=sts")
    );
    // The resolver was not rebuilt: it still uses the lab.
    assert_eq!(
        h.ask("postfix", "enf.test").await,
        "OK secure match=mail.enf.test:.mx.enf.test servername=hostname"
    );
    let m = h.daemon().render_metrics();
    assert_eq!(
        sample(&m, "mtasts_config_reloads_total{result=\"error\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "mtasts_config_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );
}

// ---------------------------------------------------------------------------------------
// Metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_counters_that_moved() {
    let h = harness(|_| {}).await;
    let addr = h
        .daemon()
        .metrics_addr()
        .unwrap_or_else(|| panic!("metrics are on"));
    let (status, before) = http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        before.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{before}"
    );
    assert_eq!(sample(&before, "mtasts_socketmap_lookups_total"), Some(0.0));

    let mut c = h.client().await;
    assert_eq!(c.request("postfix", "good.test").await, OK_GOOD);
    assert_eq!(c.request("postfix", "good.test").await, OK_GOOD);
    assert_eq!(c.request("postfix", ".good.test").await, "NOTFOUND ");
    assert_eq!(c.request("postfix", "none.test").await, "NOTFOUND ");
    assert_eq!(
        c.request("strict", "testing.test").await,
        "OK secure match=mail.testing.test servername=hostname"
    );

    let (_, m) = http_get(addr, "/metrics").await;
    let s = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("{series} missing:\n{m}"));
    assert_eq!(
        s("mtasts_socketmap_replies_total{map=\"_default\",reply=\"ok\"}"),
        2.0
    );
    assert_eq!(
        s("mtasts_socketmap_replies_total{map=\"_default\",reply=\"notfound\"}"),
        2.0
    );
    assert_eq!(
        s("mtasts_socketmap_replies_total{map=\"strict\",reply=\"ok\"}"),
        1.0
    );
    assert_eq!(s("mtasts_socketmap_lookups_total"), 4.0);
    assert_eq!(
        s("mtasts_socketmap_outcomes_total{outcome=\"enforce\"}"),
        2.0
    );
    assert_eq!(
        s("mtasts_socketmap_outcomes_total{outcome=\"testing\"}"),
        1.0
    );
    assert_eq!(
        s("mtasts_socketmap_outcomes_total{outcome=\"no-policy\"}"),
        1.0
    );
    assert_eq!(
        s("mtasts_socketmap_skipped_total{reason=\"parent-probe\"}"),
        1.0
    );
    assert_eq!(s("mtasts_socketmap_request_duration_seconds_count"), 5.0);
    assert_eq!(
        s("mtasts_socketmap_request_duration_seconds_bucket{le=\"+Inf\"}"),
        5.0
    );
    assert_eq!(s("mtasts_resolver_memory_hits_total"), 1.0);
    assert_eq!(s("mtasts_resolver_dns_lookups_total"), 3.0);
    assert_eq!(s("mtasts_resolver_fetches_total"), 2.0);
    assert_eq!(s("mtasts_resolver_fetch_failures_total"), 0.0);
    assert_eq!(s("mtasts_resolver_cached_domains"), 3.0);
    assert_eq!(s("mtasts_connections"), 1.0);
    assert_eq!(s("mtasts_socketmap_requests_in_flight"), 0.0);
    for name in [
        "mtasts_resolver_store_hits_total",
        "mtasts_resolver_coalesced_total",
        "mtasts_resolver_dns_failures_total",
        "mtasts_resolver_refreshes_total",
        "mtasts_resolver_store_errors_total",
        "mtasts_resolver_evictions_total",
        "mtasts_connections_total",
    ] {
        assert!(m.contains(&format!("# TYPE {name} ")), "{name} missing");
    }

    let (status, _) = http_get(addr, "/other").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http_get(addr, "/metrics?x=1").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

/// The policy strings of a TLSRPT reply are dropped, not the answer, when max_reply is small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_reply_trims_policy_strings() {
    let h = harness(|c| c.max_reply = 200).await;
    assert_eq!(
        h.ask("tlsrpt", "enf.test").await,
        "OK secure match=mail.enf.test:.mx.enf.test servername=hostname policy_type=sts policy_domain=enf.test policy_ttl=86400 mx_host_pattern=mail.enf.test mx_host_pattern=*.mx.enf.test"
    );
    let m = h.daemon().render_metrics();
    assert_eq!(
        sample(
            &m,
            "mtasts_socketmap_replies_trimmed_total{trimmed=\"policy-strings\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_of_one_domain_share_one_resolution() {
    let h = harness(|_| {}).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut c = h.client().await;
        c.send("postfix", "slow.test").await;
        clients.push(c);
    }
    for c in &mut clients {
        assert_eq!(
            c.reply().await.as_deref(),
            Some("OK secure match=mail.slow.test servername=hostname")
        );
    }
    assert_eq!(h.world.policy_fetches_for("slow.test").len(), 1);
}
