//! `mtasts daemon cache list|show|forget` through the real binary, against a real
//! `mtasts daemon` process with an SQLite store, filled from the lab by `mtasts daemon query`:
//! the text and `--json` forms (validated against their schema files), the exit statuses,
//! forgetting in memory and in the file (checked in the file, and after a restart), and the
//! socket's permissions as its access control.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mtasts_lab::{World, WorldOptions};
use mtasts_resolver::store::{SqliteStore, Store};
use mtasts_test_support::output_text;
use mtasts_test_support::schema::assert_valid;

fn mtasts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mtasts")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn code(o: &Output, want: i32, what: &str) {
    assert_eq!(o.status.code(), Some(want), "{what}\n{}", output_text(o));
}

/// A running `mtasts daemon` and its log.
struct Running {
    child: Child,
    log: std::thread::JoinHandle<String>,
}

fn start_daemon(config: &Path, admin: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["daemon", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mtasts daemon");
    let mut err = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    while !admin.exists() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "the daemon exited with {st}: {}",
                log.join().unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no admin socket at {}",
            admin.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Running { child, log }
}

impl Running {
    /// SIGTERM, then the exit status and the log.
    fn stop(mut self) -> (bool, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let ok = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (ok, self.log.join().unwrap_or_default())
    }
}

/// The cells of the `list` line of `domain`.
fn row(list: &str, domain: &str) -> Vec<String> {
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(domain))
        .unwrap_or_else(|| panic!("no line for {domain}:\n{list}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn stored(db: &Path, domain: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(db).await.expect("the SQLite file opens");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        store.get(domain, now).await.expect("get").is_some()
    })
}

#[test]
fn list_show_forget_against_a_running_daemon() {
    let w = World::start(
        &mtasts_test_support::scenario("minimal.toml"),
        WorldOptions::default(),
    )
    .expect("world");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let admin: PathBuf = d.join("admin.sock");
    let db = d.join("cache.sqlite3");
    let config = d.join("daemon.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [{{ unix = \"{}\", mode = \"0600\" }}]\n\
             admin = {{ unix = \"{}\" }}\n\
             refresh_period = 0\n\
             [zones.tlsrpt]\ntlsrpt = true\n\
             [resolver.dns]\nservers = [\"{}\"]\n\
             [resolver.fetch]\nca_file = \"{}\"\nport = {}\n\
             [resolver.store]\ntype = \"sqlite\"\npath = \"{}\"\n",
            d.join("socketmap.sock").display(),
            admin.display(),
            w.dns_addr(),
            w.ca_pem_path().display(),
            w.https_port(),
            db.display(),
        ),
    )
    .expect("config");
    let cfg = config.display().to_string();
    let sock = admin.display().to_string();
    let daemon = start_daemon(&config, &admin);
    assert_eq!(
        std::fs::metadata(&admin)
            .expect("socket")
            .permissions()
            .mode()
            & 0o777,
        0o600,
        "the admin socket is 0600 unless configured"
    );

    let q = mtasts(&[
        "daemon",
        "query",
        "--config",
        &cfg,
        "good-enforce.test",
        "no-policy.test",
    ]);
    code(&q, 1, "query: a NOTFOUND among the answers");
    let enforce_reply = stdout(&q)
        .lines()
        .next()
        .and_then(|l| l.split_once('\t'))
        .map(|(_, r)| r.to_owned())
        .unwrap_or_default();
    assert!(enforce_reply.starts_with("OK secure"), "{}", stdout(&q));

    // list, text: one line per domain, found through --config.
    let l = mtasts(&["daemon", "cache", "list", "--config", &cfg]);
    code(&l, 0, "list");
    let text = stdout(&l);
    assert!(text.starts_with("DOMAIN "), "{text}");
    let good = row(&text, "good-enforce.test");
    assert_eq!(
        &good[1..4],
        ["policy", "enforce", "20240101T000000"],
        "{text}"
    );
    assert_eq!(good[good.len() - 2..], ["memory,", "store"], "{text}");
    let none = row(&text, "no-policy.test");
    assert_eq!(&none[1..4], ["no-record", "-", "-"], "{text}");
    assert!(text.contains("2 domains cached (sqlite store)"), "{text}");
    // list --json, through --admin.
    let lj = mtasts(&["daemon", "cache", "list", "--admin", &sock, "--json"]);
    code(&lj, 0, "list --json");
    assert_valid("mtasts-daemon-cache-list/1", &lj.stdout);
    assert_eq!(json(&lj)["total"], 2);
    let l1 = mtasts(&["daemon", "cache", "list", "--admin", &sock, "--limit", "1"]);
    code(&l1, 0, "list --limit 1");
    assert!(
        stderr(&l1).contains("1 of 2 domains shown"),
        "{}",
        output_text(&l1)
    );

    // show: the entry, and exactly what the daemon answers.
    let s = mtasts(&[
        "daemon",
        "cache",
        "show",
        "--admin",
        &sock,
        "good-enforce.test",
    ]);
    code(&s, 0, "show");
    let text = stdout(&s);
    assert!(
        text.starts_with(
            "good-enforce.test: policy (mode enforce), held in memory and in the sqlite store"
        ),
        "{text}"
    );
    let default_reply = text
        .lines()
        .find(|l| l.trim_start().starts_with("reply") && l.contains("_default"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(default_reply.ends_with(&enforce_reply), "{text}");
    assert!(
        text.contains("policy_type=sts policy_domain=good-enforce.test"),
        "{text}"
    );
    for part in [
        "mx patterns   mx1.good-enforce.test",
        "max_age 604800 s",
        "policy text   version: STSv1",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let sj = mtasts(&[
        "daemon",
        "cache",
        "show",
        "--admin",
        &sock,
        "--json",
        "no-policy.test",
    ]);
    code(&sj, 0, "show --json");
    assert_valid("mtasts-daemon-cache-show/1", &sj.stdout);
    assert_eq!(json(&sj)["state"], "no-record");
    let missing = mtasts(&[
        "daemon",
        "cache",
        "show",
        "--admin",
        &sock,
        "starttls-stripped.test",
    ]);
    code(&missing, 1, "show of a domain not cached");
    assert!(
        stdout(&missing).contains("not cached"),
        "{}",
        output_text(&missing)
    );
    let mj = mtasts(&[
        "daemon",
        "cache",
        "show",
        "--admin",
        &sock,
        "--json",
        "starttls-stripped.test",
    ]);
    code(&mj, 1, "show --json of a domain not cached");
    assert_valid("mtasts-daemon-cache-show/1", &mj.stdout);

    // forget: gone from memory and from the file; the warning; a second time, nothing.
    assert!(stored(&db, "good-enforce.test"));
    let f = mtasts(&[
        "daemon",
        "cache",
        "forget",
        "--config",
        &cfg,
        "--json",
        "Good-Enforce.test",
    ]);
    code(&f, 0, "forget");
    assert_valid("mtasts-daemon-cache-forget/1", &f.stdout);
    let fj = json(&f);
    assert_eq!(fj["forgotten"][0]["existed"], true);
    assert_eq!(fj["forgotten"][0]["store"], true);
    assert!(
        stderr(&f).contains("warning: good-enforce.test had a valid cached policy")
            && stderr(&f).contains("RFC 8461 §10.2"),
        "{}",
        output_text(&f)
    );
    assert!(
        !stored(&db, "good-enforce.test"),
        "still in the SQLite file"
    );
    assert!(stored(&db, "no-policy.test"));
    let again = mtasts(&[
        "daemon",
        "cache",
        "forget",
        "--config",
        &cfg,
        "good-enforce.test",
    ]);
    code(&again, 1, "forget of what is not cached");
    assert_eq!(
        stdout(&again),
        "good-enforce.test: not cached, nothing to forget\n"
    );
    let bad = mtasts(&[
        "daemon",
        "cache",
        "forget",
        "--admin",
        &sock,
        "no-policy.test",
        "not a domain",
    ]);
    code(&bad, 2, "forget with a bad name");
    assert!(
        stderr(&bad).contains("refused the request (bad-request)")
            && stderr(&bad).contains("nothing was forgotten"),
        "{}",
        output_text(&bad)
    );
    assert!(
        stored(&db, "no-policy.test"),
        "a refused forget forgets nothing"
    );

    // The socket's permissions decide who may use it.
    let me = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    let as_other = |args: &[&str]| -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mtasts"));
        c.args(args).stdin(Stdio::null());
        if me == 0 {
            c.uid(65534).gid(65534);
        }
        c.output().expect("run mtasts as another user")
    };
    if me == 0 {
        // The directory lets anyone through; the socket's mode alone decides.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    } else {
        std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let denied = as_other(&["daemon", "cache", "list", "--admin", &sock]);
    code(&denied, 2, "list refused by the socket's permissions");
    let said = stderr(&denied);
    assert!(
        said.contains(&sock)
            && said.contains("Permission denied")
            && said.contains("its mode, owner and group"),
        "{said}"
    );
    if me == 0 {
        std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let allowed = as_other(&["daemon", "cache", "list", "--admin", &sock]);
        code(&allowed, 0, "list allowed by mode 0666");
    }
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // A restart on the same file: what was forgotten stays forgotten.
    let (ok, log) = daemon.stop();
    assert!(ok, "the daemon did not exit 0:\n{log}");
    assert!(
        log.contains("a cached policy was forgotten through the admin socket"),
        "{log}"
    );
    let gone = mtasts(&["daemon", "cache", "list", "--admin", &sock]);
    code(&gone, 2, "list without a daemon");
    assert!(
        stderr(&gone).contains(&format!("no admin socket at {sock}")),
        "{}",
        output_text(&gone)
    );
    let daemon = start_daemon(&config, &admin);
    let l = mtasts(&["daemon", "cache", "list", "--config", &cfg, "--json"]);
    code(&l, 0, "list after the restart");
    assert_valid("mtasts-daemon-cache-list/1", &l.stdout);
    let names: Vec<String> = json(&l)["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["domain"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["no-policy.test"]);
    let fetched = w.policy_fetches_for("good-enforce.test").len();
    assert!(fetched >= 1, "the first query fetched the policy");
    let q = mtasts(&["daemon", "query", "--config", &cfg, "good-enforce.test"]);
    code(&q, 0, "query after forget and restart");
    // The lab logs a fetch when its side of the connection ends: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.policy_fetches_for("good-enforce.test").len() <= fetched && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        w.policy_fetches_for("good-enforce.test").len(),
        fetched + 1,
        "fetched afresh"
    );
    let (ok, log) = daemon.stop();
    assert!(ok, "{log}");
    w.shutdown();
}
