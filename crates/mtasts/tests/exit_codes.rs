//! The exit-status table (README "Exit status", every command's `--help`), checked code by
//! code for each command: 0 success, 1 problems found, 2 the job could not be done, 3
//! warnings only.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use mtasts_lab::{World, WorldOptions};
use mtasts_test_support::{lab_flags, output_text, report_corpus, scenario};

fn run(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    c.args(args).stdin(Stdio::null()).env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run mtasts")
}

#[track_caller]
fn expect(code: i32, args: &[&str]) {
    expect_env(code, args, &[]);
}

#[track_caller]
fn expect_env(code: i32, args: &[&str], env: &[(&str, &Path)]) {
    let o = run(args, env);
    assert_eq!(
        o.status.code(),
        Some(code),
        "mtasts {args:?}\n{}",
        output_text(&o)
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

#[test]
fn every_help_prints_the_table() {
    for args in [
        vec!["--help"],
        vec!["check", "--help"],
        vec!["lint", "policy", "--help"],
        vec!["report", "readiness", "--help"],
        vec!["resolve", "--help"],
        vec!["serve", "--help"],
        vec!["serve", "promote", "--help"],
        vec!["daemon", "cache", "list", "--help"],
        vec!["daemon", "cache", "forget", "--help"],
    ] {
        let o = run(&args, &[]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("Exit status: 0 success") && text.contains("3 warnings only"),
            "{args:?}: {text}"
        );
    }
}

#[test]
fn lint() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let valid = write(
        d,
        "ok.txt",
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
    );
    let warning = write(
        d,
        "warn.txt",
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 3600\n",
    );
    let error = write(d, "bad.txt", "version: STSv1\nmode: strict\n");
    expect(0, &["lint", "policy", &valid]);
    expect(3, &["lint", "policy", &warning]);
    expect(1, &["lint", "policy", &error]);
    expect(2, &["lint", "policy", "/nonexistent/policy.txt"]);
    expect(2, &["lint", "policy"]);
    expect(0, &["lint", "record", "v=STSv1; id=20240101"]);
    expect(3, &["lint", "record", "v=STSv1; id=1; ext=x"]);
    expect(1, &["lint", "record", "v=STSv1; id=2024-01-01"]);
}

#[test]
fn report_parse_and_ingest_and_readiness() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let good = report_corpus().join("domainaware__parsedmarc/smtp_tls.json");
    let good = good.display().to_string();
    let junk = write(d, "junk.json", "not json");
    expect(0, &["report", "parse", &good]);
    expect(1, &["report", "parse", &junk]);
    expect(2, &["report", "parse", "/nonexistent/r.json"]);
    let db = d.join("reports.db");
    let env = [("MTASTS_DB", db.as_path())];
    // Ingest: 0 whatever became of each input (the junk is quarantined), 2 when a path
    // cannot be read or the store cannot be opened.
    expect_env(0, &["report", "ingest", &good, &junk], &env);
    expect_env(2, &["report", "ingest", "/nonexistent/dir"], &env);
    expect_env(
        2,
        &["report", "summary"],
        &[("MTASTS_DB", Path::new("/nonexistent/dir/r.db"))],
    );
    expect_env(0, &["report", "summary"], &env);
    // Readiness: one report is far from enough.
    expect_env(
        1,
        &["report", "readiness", "example.com", "--offline"],
        &env,
    );
    expect_env(
        2,
        &[
            "report",
            "readiness",
            "example.com",
            "--offline",
            "--min-days",
            "0",
        ],
        &env,
    );
}

#[test]
fn check_and_resolve_against_the_lab() {
    let w = World::start(&scenario("minimal.toml"), WorldOptions::default()).expect("lab");
    let flags = lab_flags(&w);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let with = |args: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = args.to_vec();
        v.extend(flags.iter().copied());
        v
    };
    expect(0, &with(&["check", "good-enforce.test"]));
    expect(1, &with(&["check", "starttls-stripped.test"]));
    expect(2, &["check", "not a domain!"]);
    let dns = w.dns_addr().to_string();
    let ca = w.ca_pem_path().display().to_string();
    let port = w.https_port().to_string();
    let resolve = |d: &'static str| -> Vec<String> {
        vec![
            "resolve".into(),
            "--dns".into(),
            dns.clone(),
            "--ca-file".into(),
            ca.clone(),
            "--https-port".into(),
            port.clone(),
            d.into(),
        ]
    };
    for (code, domain) in [(0, "good-enforce.test"), (0, "no-policy.test")] {
        let args = resolve(domain);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        expect(code, &args);
    }
    expect(2, &["resolve", "--cache", "mysql://x", "good-enforce.test"]);
    w.shutdown();
}

#[test]
fn daemon_check() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = write(dir.path(), "bad.toml", "[listen]\nnonsense = 1\n");
    expect(2, &["daemon", "--check", "--config", &bad]);
    // The shipped example, with its SQLite store under the temp dir: /var/lib/mtasts exists
    // only once the package is installed.
    let example = mtasts_test_support::workspace_root().join("contrib/mtasts-daemon.toml");
    let text = std::fs::read_to_string(&example).expect("contrib/mtasts-daemon.toml");
    assert!(
        text.contains("/var/lib/mtasts/cache.sqlite3"),
        "the example's store path moved"
    );
    let here = dir.path().join("cache.sqlite3");
    let ok = write(
        dir.path(),
        "example.toml",
        &text.replace("/var/lib/mtasts/cache.sqlite3", &here.display().to_string()),
    );
    expect(0, &["daemon", "--check", "--config", &ok]);
    // A store whose directory does not exist: refused, as the daemon refuses to start.
    let missing = dir.path().join("no-such-dir/cache.sqlite3");
    let gone = write(
        dir.path(),
        "missing.toml",
        &text.replace(
            "/var/lib/mtasts/cache.sqlite3",
            &missing.display().to_string(),
        ),
    );
    expect(2, &["daemon", "--check", "--config", &gone]);
    assert!(
        !missing.parent().is_some_and(Path::exists),
        "--check created the directory"
    );
}

/// `daemon cache` without a daemon: 2 for every command, naming the socket; a usage error
/// is 2 too. (With a daemon, 0/1/2 per command: `daemon_cache_cli.rs`.)
#[test]
fn daemon_cache_without_a_daemon() {
    let dir = tempfile::tempdir().expect("dir");
    let sock = dir.path().join("admin.sock").display().to_string();
    expect(2, &["daemon", "cache", "list", "--admin", &sock]);
    expect(
        2,
        &["daemon", "cache", "show", "--admin", &sock, "example.com"],
    );
    expect(
        2,
        &["daemon", "cache", "forget", "--admin", &sock, "example.com"],
    );
    expect(2, &["daemon", "cache", "forget", "--admin", &sock]);
    expect(2, &["daemon", "cache", "show", "--admin", &sock]);
    // A configuration without `admin`: said, and 2.
    let cfg = write(dir.path(), "daemon.toml", "");
    let o = run(&["daemon", "cache", "list", "--config", &cfg], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no admin socket is configured"),
        "{}",
        output_text(&o)
    );
    // forget's help carries the downgrade warning.
    let o = run(&["daemon", "cache", "forget", "--help"], &[]);
    let help = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("downgrade") && help.contains("RFC 8461 §5.1, §10.2"),
        "{help}"
    );
}

#[test]
fn serve_check_promote_and_retire() {
    let w = World::start(&scenario("minimal.toml"), WorldOptions::default()).expect("lab");
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let bad = write(d, "bad.toml", "[limits]\nmax_headers = 2\n");
    expect(2, &["serve", "--check", "--config", &bad]);
    expect(
        2,
        &[
            "serve",
            "--check",
            "--config",
            &d.join("missing.toml").display().to_string(),
        ],
    );
    std::fs::create_dir_all(d.join("p")).expect("mkdir");
    let cfg = write(
        d,
        "serve.toml",
        &format!(
            "listen = [\"127.0.0.1:0\"]\npolicy_dir = \"{}\"\n[dns]\nservers = [\"{}\"]\n",
            d.join("p").display(),
            w.dns_addr()
        ),
    );
    // No domain: nothing out of sync.
    expect(0, &["serve", "--check", "--config", &cfg]);
    // A policy whose id is not the published one: 1.
    let policy = "version: STSv1\nmode: testing\nmx: mx1.good-enforce.test\nmax_age: 86400\n";
    write(&d.join("p"), "good-enforce.test.txt", policy);
    expect(1, &["serve", "--check", "--config", &cfg]);
    // An unknown domain to promote or retire: 2.
    expect(2, &["serve", "--config", &cfg, "retire", "nowhere.test"]);
    expect(
        2,
        &[
            "serve",
            "--config",
            &cfg,
            "promote",
            "nowhere.test",
            "enforce",
        ],
    );
    // Retire: 0.
    expect(
        0,
        &["serve", "--config", &cfg, "retire", "good-enforce.test"],
    );
    // From none, enforce is refused (the mode gate): 1.
    let mut args = vec![
        "serve",
        "--config",
        &cfg,
        "promote",
        "good-enforce.test",
        "enforce",
    ];
    let flags = lab_flags(&w);
    args.extend(flags.iter().map(String::as_str));
    expect(1, &args);
    w.shutdown();
}
