//! The SQLite store against real database files in temporary directories.
#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_core::sts::cache::{CacheEntry, CachedPolicy, FailedFetch, Negative, NegativeKind};
use mtasts_core::sts::policy::Policy;
use mtasts_resolver::store::{SqliteStore, Store, StoreError};

const NOW: u64 = 1_800_000_000;

fn policy_entry(now: u64) -> CacheEntry {
    let policy = Policy::parse(
        b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
    )
    .expect("the test policy parses");
    CacheEntry {
        policy: Some(CachedPolicy {
            policy,
            id: "20260101T000000".to_owned(),
            fetched_at: now,
        }),
        checked_at: now,
        refresh_at: now + 86_400,
        negative: None,
        failed_fetch: None,
    }
}

fn negative_entry(now: u64) -> CacheEntry {
    CacheEntry {
        checked_at: now,
        negative: Some(Negative {
            kind: NegativeKind::NoRecord,
            until: now + 300,
            reason: "NXDOMAIN for _mta-sts.example.org".to_owned(),
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
            reason: "the policy fetch for id abc failed: HTTP 404".to_owned(),
        }),
        failed_fetch: Some(FailedFetch {
            id: "abc".to_owned(),
            at: now,
            reason: "HTTP 404".to_owned(),
        }),
        ..CacheEntry::default()
    }
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("cache.sqlite3")
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path)
        .await
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("raw connection to the test database")
}

#[tokio::test]
async fn round_trip_of_policy_negative_and_failed_fetch_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A parent directory that does not exist is a configuration error naming it (issue 12:
    // it used to be created silently).
    let path = dir.path().join("var/lib/mtasts/cache.sqlite3");
    let err = match SqliteStore::open(&path).await {
        Ok(_) => panic!("a missing directory was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("var/lib/mtasts does not exist"), "{err}");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let store = open(&path).await;
    assert_eq!(store.backend(), "sqlite");
    assert_eq!(store.path(), path);

    let cases = [
        ("example.com", policy_entry(NOW)),
        ("example.org", negative_entry(NOW)),
        ("example.net", failed_fetch_entry(NOW)),
    ];
    for (domain, entry) in &cases {
        store
            .put(domain, entry, NOW + 1000)
            .await
            .expect("put succeeds");
    }
    for (domain, entry) in &cases {
        let got = store.get(domain, NOW).await.expect("get succeeds");
        assert_eq!(got.as_ref(), Some(entry), "{domain}");
    }
    assert_eq!(store.get("absent.example", NOW).await.expect("get"), None);

    // A put replaces the entry.
    let replaced = negative_entry(NOW + 5);
    store
        .put("example.com", &replaced, NOW + 2000)
        .await
        .expect("put");
    assert_eq!(
        store.get("example.com", NOW).await.expect("get"),
        Some(replaced)
    );
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn get_ignores_rows_that_are_useless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&db_path(&dir)).await;
    store
        .put("example.com", &policy_entry(NOW), NOW + 100)
        .await
        .expect("put");
    // Useful through the useless_after second itself, not after.
    assert!(
        store
            .get("example.com", NOW + 100)
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        store.get("example.com", NOW + 101).await.expect("get"),
        None
    );
    // Far-future times (beyond i64) do not break the store.
    store
        .put("forever.example", &policy_entry(NOW), u64::MAX)
        .await
        .expect("put with u64::MAX");
    assert!(
        store
            .get("forever.example", u64::MAX)
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test]
async fn load_skips_a_corrupt_row_and_leaves_it_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let store = open(&path).await;
    store
        .put("a.example", &policy_entry(NOW), NOW + 500)
        .await
        .expect("put");
    store
        .put("b.example", &negative_entry(NOW), NOW + 300)
        .await
        .expect("put");
    store
        .put("old.example", &negative_entry(NOW - 1000), NOW - 1)
        .await
        .expect("put");
    raw(&path)
        .execute(
            "INSERT INTO sts_cache (domain, entry, useless_after) VALUES (?1, ?2, ?3)",
            rusqlite::params!["garbage.example", "{not json", (NOW + 900) as i64],
        )
        .expect("insert garbage");

    let mut loaded = store.load(NOW, 100).await.expect("load");
    loaded.sort_by(|a, b| a.0.cmp(&b.0));
    let domains: Vec<&str> = loaded.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(domains, ["a.example", "b.example"]);
    assert_eq!(loaded[0].1, policy_entry(NOW));

    // get names the corrupt entry.
    match store.get("garbage.example", NOW).await {
        Err(StoreError::Corrupt { key, detail, .. }) => {
            assert_eq!(key, "garbage.example");
            assert!(detail.contains(&path.display().to_string()), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // The limit counts decoded entries; the longest-lived come first.
    let one = store.load(NOW, 1).await.expect("load");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, "a.example");
    assert!(store.load(NOW, 0).await.expect("load").is_empty());

    // Neither load nor get deleted the garbage row, nor does a purge of useful rows.
    assert_eq!(store.purge(NOW).await.expect("purge"), 1);
    let garbage: String = raw(&path)
        .query_row(
            "SELECT entry FROM sts_cache WHERE domain = 'garbage.example'",
            [],
            |r| r.get(0),
        )
        .expect("the garbage row is still there");
    assert_eq!(garbage, "{not json");
}

#[tokio::test]
async fn purge_deletes_only_useless_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let store = open(&path).await;
    for (i, useless_after) in [NOW - 10, NOW - 1, NOW, NOW + 1, NOW + 100]
        .iter()
        .enumerate()
    {
        store
            .put(
                &format!("d{i}.example"),
                &negative_entry(NOW),
                *useless_after,
            )
            .await
            .expect("put");
    }
    assert_eq!(store.purge(NOW).await.expect("purge"), 2);
    assert_eq!(store.purge(NOW).await.expect("second purge"), 0);
    let count: i64 = raw(&path)
        .query_row("SELECT count(*) FROM sts_cache", [], |r| r.get(0))
        .expect("count");
    assert_eq!(count, 3);
    assert!(store.get("d2.example", NOW).await.expect("get").is_some());
}

#[tokio::test]
async fn entries_survive_drop_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    {
        let store = open(&path).await;
        store
            .put("example.com", &policy_entry(NOW), NOW + 1000)
            .await
            .expect("put");
        store
            .put("example.org", &failed_fetch_entry(NOW), NOW + 300)
            .await
            .expect("put");
    }
    let store = open(&path).await;
    assert_eq!(
        store.get("example.com", NOW).await.expect("get"),
        Some(policy_entry(NOW))
    );
    assert_eq!(store.load(NOW, 10).await.expect("load").len(), 2);
    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, 1);
}

/// `mtasts daemon cache forget`: the row is deleted (useful or not), whether one existed is
/// told, and the deletion is in the file (another connection no longer sees it).
#[tokio::test]
async fn remove_deletes_the_row_and_says_whether_there_was_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let store = open(&path).await;
    store
        .put("example.com", &policy_entry(NOW), NOW + 1000)
        .await
        .expect("put");
    store
        .put("example.org", &negative_entry(NOW), NOW + 30)
        .await
        .expect("put");
    // Useless at NOW + 31, still a row: removing it says it was there.
    store
        .put("old.example", &negative_entry(NOW - 100), NOW - 70)
        .await
        .expect("put");
    assert!(store.remove("example.com").await.expect("remove"));
    assert!(!store.remove("example.com").await.expect("remove again"));
    assert!(!store.remove("absent.example").await.expect("remove absent"));
    assert!(store.remove("old.example").await.expect("remove useless"));
    assert_eq!(store.get("example.com", NOW).await.expect("get"), None);
    let rows: Vec<String> = raw(&path)
        .prepare("SELECT domain FROM sts_cache ORDER BY domain")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        })
        .expect("rows");
    assert_eq!(rows, ["example.org"]);
    drop(store);
    let store = open(&path).await;
    let left: Vec<String> = store
        .load(NOW, usize::MAX)
        .await
        .expect("load")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(left, ["example.org"]);
}

#[tokio::test]
async fn a_newer_schema_version_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    drop(open(&path).await);
    raw(&path)
        .pragma_update(None, "user_version", 7)
        .expect("set user_version");
    let err = SqliteStore::open(&path)
        .await
        .expect_err("a newer schema must be refused");
    let message = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Open {
                backend: "sqlite",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("schema version 7"), "{message}");
    assert!(message.contains("newer"), "{message}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    std::fs::write(&path, vec![b'x'; 4096]).expect("write junk");
    let err = SqliteStore::open(&path)
        .await
        .expect_err("junk must be refused");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_from_many_tasks() {
    const TASKS: usize = 32;
    const PER_TASK: usize = 25;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let store = Arc::new(open(&path).await);
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let domain = format!("t{t}-d{i}.example");
                store
                    .put(&domain, &policy_entry(NOW), NOW + 1000)
                    .await
                    .expect("concurrent put");
                assert!(store.get(&domain, NOW).await.expect("get").is_some());
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let loaded = store.load(NOW, usize::MAX).await.expect("load");
    assert_eq!(loaded.len(), TASKS * PER_TASK);
    // A second process-level handle on the same file sees everything too.
    let other = open(&path).await;
    assert_eq!(
        other.load(NOW, usize::MAX).await.expect("load").len(),
        TASKS * PER_TASK
    );
}

/// Selects the child role of [`committed_puts_survive_kill_9`] and names its database.
const CHILD_ENV: &str = "MTASTS_TEST_SQLITE_KILL9_CHILD_DB";
const CHILD_TEST: &str = "kill_9_child_process";
const READY_AFTER: usize = 200;

/// The child of [`committed_puts_survive_kill_9`]: does nothing unless started by it. Puts
/// entries, printing `PUT <domain>` after each put returns, prints `READY` after the first
/// [`READY_AFTER`], then keeps putting until it is killed.
#[test]
fn kill_9_child_process() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("child runtime");
    rt.block_on(async move {
        let store = open(Path::new(&path)).await;
        let started = Instant::now();
        for i in 0.. {
            let domain = format!("d{i}.example");
            store
                .put(&domain, &policy_entry(NOW + i), NOW + 1000)
                .await
                .expect("child put");
            println!("PUT {domain}");
            if i + 1 == READY_AFTER as u64 {
                println!("READY");
            }
            // Never outlive a parent that failed to kill us.
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "child not killed"
            );
        }
    });
}

#[tokio::test]
async fn committed_puts_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child test process");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acknowledged = Vec::new();
    let mut ready = false;
    for line in lines.by_ref() {
        let line = line.expect("read child output");
        // libtest may print "test <name> ... " in front of the first line.
        if let Some((_, domain)) = line.split_once("PUT ") {
            acknowledged.push(domain.to_owned());
        } else if line.ends_with("READY") {
            ready = true;
            break;
        }
    }
    assert!(ready, "the child exited before READY");
    // Let it write a little more, then kill it in the middle of its puts.
    tokio::time::sleep(Duration::from_millis(50)).await;
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child died by SIGKILL: {status:?}"
        );
    }
    // Everything it printed before dying was acknowledged after its put returned.
    for line in lines {
        if let Some((_, domain)) = line.expect("read child output").split_once("PUT ") {
            acknowledged.push(domain.to_owned());
        }
    }
    assert!(acknowledged.len() >= READY_AFTER);
    eprintln!(
        "the child acknowledged {} puts before kill -9",
        acknowledged.len()
    );

    // The child never closed its connections: its commits are still in the write-ahead log.
    let wal = dir.path().join("cache.sqlite3-wal");
    assert!(
        wal.exists(),
        "{} should be left behind by kill -9",
        wal.display()
    );
    let store = open(&path).await;
    for domain in &acknowledged {
        let i: u64 = domain
            .strip_prefix('d')
            .and_then(|d| d.strip_suffix(".example"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected child output {domain:?}"));
        let got = store
            .get(domain, NOW)
            .await
            .expect("get after kill -9")
            .unwrap_or_else(|| panic!("{domain} was acknowledged but is gone after kill -9"));
        assert_eq!(got, policy_entry(NOW + i), "{domain}");
    }
    let loaded = store.load(NOW, usize::MAX).await.expect("load");
    assert!(loaded.len() >= acknowledged.len());
}

const READONLY_CHILD: &str = "MTASTS_SQLITE_READONLY_CHILD";

/// Not a test on its own: the unprivileged process the test below runs (this test binary
/// again, as `nobody`). Without the variable it does nothing.
#[tokio::test]
async fn child_opens_a_read_only_file() {
    let Some(path) = std::env::var_os(READONLY_CHILD) else {
        return;
    };
    match SqliteStore::open(std::path::Path::new(&path)).await {
        Ok(_) => println!("OPENED"),
        Err(e) => println!("REFUSED {e}"),
    }
}

/// Regression (issue 13): a read-only database file in a writable directory used to be
/// opened, and every write then failed with a warning. It is refused at start. Root bypasses
/// file modes, so the open is made by an unprivileged child process (`runuser -u nobody`).
#[tokio::test]
async fn a_read_only_database_file_is_refused_at_start() {
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.sqlite3");
    drop(open(&path).await);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod dir");
    for f in ["cache.sqlite3", "cache.sqlite3-wal", "cache.sqlite3-shm"] {
        let p = dir.path().join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        }
    }
    let exe = std::env::current_exe().expect("exe");
    let mut cmd = if uid.ok() == Some(0) {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(&exe);
        c
    } else {
        std::process::Command::new(&exe)
    };
    let out = cmd
        .args(["--exact", "child_opens_a_read_only_file", "--nocapture"])
        .env(READONLY_CHILD, &path)
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("REFUSED") && text.contains("read-only"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
