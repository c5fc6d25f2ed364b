//! `mtasts check`, `init` and `demo` through the real binary against the lab's zoo: output
//! formats, the input file, exit codes by worst severity, and the files `init` writes.

use std::process::Output;

use mtasts_lab::{World, WorldOptions};
use serde_json::Value;

fn zoo() -> World {
    World::start(
        &mtasts_test_support::scenario("zoo.toml"),
        WorldOptions::default(),
    )
    .expect("world")
}

fn lab_args(w: &World) -> Vec<String> {
    let mut flags = mtasts_test_support::lab_flags(w);
    flags.extend(["--fetch-timeout".into(), "5".into()]);
    flags
}

fn mtasts(args: &[&str], extra: &[String], stdin: Option<&str>) -> Output {
    mtasts_test_support::run(env!("CARGO_BIN_EXE_mtasts"), args, extra, stdin)
}

fn out(o: &Output) -> String {
    mtasts_test_support::output_text(o)
}

#[test]
fn check_outputs_and_exit_codes() {
    let w = zoo();
    let lab = lab_args(&w);

    // A clean enforce deployment: exit 0, the documented JSON schema.
    let o = mtasts(&["check", "--json", "good-enforce.test"], &lab, None);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    mtasts_test_support::schema::assert_valid("mtasts-check/2", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(doc["schema"], "mtasts-check/2");
    let d = &doc["domains"][0];
    assert_eq!(d["verdict"]["outcome"], "deliver-securely");
    assert_eq!(d["policy"]["mode"], "enforce");
    assert_eq!(d["findings"].as_array().map(Vec::len), Some(0));
    let smtp = &d["observations"]["mx_hosts"][0]["smtp"][0];
    assert_eq!(smtp["tls"]["verdict"]["result"], "valid");
    assert!(
        smtp["tls"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1."))
    );

    // An error: exit 1, and the human report names the finding, the host and the fix.
    let o = mtasts(&["check", "mx-hijack.test"], &lab, None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let t = out(&o);
    for needle in [
        "refuse delivery (defer)",
        "sts.coverage.mx-not-covered",
        "rogue-mx.attacker.test",
        "fix: ",
        "next ",
    ] {
        assert!(t.contains(needle), "{needle:?} missing in\n{t}");
    }
    assert!(!t.contains('\u{1b}'), "NO_COLOR must disable colour:\n{t}");

    // Warnings only: exit 3.
    let o = mtasts(&["check", "no-policy.test"], &lab, None);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));

    // Bulk from standard input, JSON lines, a bad line named by its line number; the real
    // error of starttls-stripped.test is not hidden by it: exit 1, both reported.
    let input = "good-enforce.test\n# a comment\n\nbad domain!\nstarttls-stripped.test\n";
    let o = mtasts(
        &["check", "--format", "jsonl", "--input", "-"],
        &lab,
        Some(input),
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    mtasts_test_support::schema::assert_valid_lines("mtasts-check-line/1", &o.stdout);
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3, "{}", out(&o));
    assert_eq!(lines[0]["domain"], "good-enforce.test");
    assert!(
        lines[1]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("stdin:4:") && e.contains("bad domain!")),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2]["verdict"]["outcome"], "defer");
    let table = String::from_utf8_lossy(&o.stderr);
    assert!(table.contains("2 domains checked"), "{table}");
    assert!(table.contains("MX STARTTLS problem"), "{table}");
    assert!(
        table.contains("1 input line was not a domain name"),
        "{table}"
    );

    // A bad line among clean domains: exit 2 (the job was not all done).
    let o = mtasts(
        &["check", "--input", "-"],
        &lab,
        Some("good-enforce.test\nbad domain!\n"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("stdin:2:"), "{}", out(&o));

    // No domain at all is a usage error.
    let o = mtasts(&["check"], &lab, None);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    w.shutdown();
}

#[test]
fn init_writes_a_policy_that_then_checks_clean() {
    let w = zoo();
    let lab = lab_args(&w);
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_s = dir.path().to_str().expect("utf-8").to_owned();
    let o = mtasts(
        &[
            "init",
            "mx-wildcard-cert.test",
            "--mode",
            "enforce",
            "--out",
            &dir_s,
        ],
        &lab,
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let policy =
        std::fs::read_to_string(dir.path().join(".well-known/mta-sts.txt")).expect("policy");
    assert_eq!(
        policy,
        "version: STSv1\nmode: enforce\nmx: *.mx-wildcard-cert.test\nmax_age: 1209600\n"
    );
    let zone = std::fs::read_to_string(dir.path().join("zone.txt")).expect("zone");
    assert!(zone.contains("_mta-sts.mx-wildcard-cert.test. 3600 IN TXT \"v=STSv1; id="));
    // The generated policy passes our own linter against the MX.
    let file = dir.path().join(".well-known/mta-sts.txt");
    let lint = mtasts(
        &["lint", "policy", file.to_str().expect("utf-8")],
        &["--mx".into(), "mx1.mx-wildcard-cert.test".into()],
        None,
    );
    assert_eq!(lint.status.code(), Some(0), "{}", out(&lint));

    // An MX whose certificate does not name it: covered, with a warning, exit 3.
    let o = mtasts(&["init", "mx-cname-cert-mismatch.test"], &lab, None);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(out(&o).contains("mx: mail.mx-cname-cert-mismatch.test"));
    assert!(out(&o).contains("warning: MX mail.mx-cname-cert-mismatch.test cannot be validated"));

    // A null MX: nothing to publish, exit 2 with the reason.
    let o = mtasts(&["init", "null-mx.test"], &lab, None);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("null MX"));
    w.shutdown();
}

#[test]
fn demo_json_is_one_check_line_per_domain() {
    let o = mtasts(
        &["demo", "--json", "good-enforce.test", "null-mx.test"],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(
        mtasts_test_support::schema::assert_valid_lines("mtasts-check-line/1", &o.stdout),
        2,
        "{}",
        out(&o)
    );
}

#[test]
fn demo_runs_offline_over_the_built_in_zoo() {
    let o = mtasts(
        &[
            "demo",
            "good-enforce.test",
            "starttls-stripped.test",
            "null-mx.test",
        ],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let t = out(&o);
    for needle in [
        "good-enforce.test  deliver-securely",
        "starttls-stripped.test  defer",
        "smtp.starttls-missing",
        "null-mx.test  bounce",
        "3 domains checked",
    ] {
        assert!(t.contains(needle), "{needle:?} missing in\n{t}");
    }
}

/// The lab's flags with `flag` given `value` instead.
fn with_flag(lab: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut v = lab.to_vec();
    match v.iter().position(|x| x == flag) {
        Some(i) => v[i + 1] = value.to_owned(),
        None => v.extend([flag.to_owned(), value.to_owned()]),
    }
    v
}

/// A TCP port on loopback that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Blame only what is the domain's fault (issue 12.5): with no SMTP connection at all, or a
/// resolver that does not answer, `check` says the problem may be on the checking side,
/// reports those results as unknown and exits 2, with no domain error.
#[test]
fn the_checking_side_is_not_the_domains_fault() {
    let w = zoo();
    let lab = lab_args(&w);

    // Port 25 "blocked": every MX connection refused.
    let port = closed_port().to_string();
    let o = mtasts(
        &["check", "good-enforce.test"],
        &with_flag(&lab, "--smtp-port", &port),
        None,
    );
    let t = out(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    for needle in ["check.smtp-unreachable", "checking side", "unknown"] {
        assert!(t.contains(needle), "{needle:?} missing in\n{t}");
    }
    for wrong in [
        "refuse delivery",
        "open port 25",
        "smtp.connect-failed",
        "\n  error ",
    ] {
        assert!(!t.contains(wrong), "{wrong:?} in\n{t}");
    }
    let o = mtasts(
        &["check", "--json", "good-enforce.test"],
        &with_flag(&lab, "--smtp-port", &port),
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    mtasts_test_support::schema::assert_valid("mtasts-check/2", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(doc["domains"][0]["verdict"]["outcome"], "unknown");
    assert_eq!(doc["domains"][0]["inconclusive"], true);
    assert_eq!(doc["summary"]["inconclusive"], 1);
    assert!(doc["domains"][0]["worst"] != "error");

    // A real error elsewhere is still reported, and wins: exit 1.
    let o = mtasts(
        &["check", "policy-invalid-mode.test"],
        &with_flag(&lab, "--smtp-port", &port),
        None,
    );
    assert!(out(&o).contains("sts.policy.invalid-mode"), "{}", out(&o));
    assert!(out(&o).contains("check.smtp-unreachable"), "{}", out(&o));
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));

    // A resolver that does not answer.
    let o = mtasts(
        &["check", "good-enforce.test", "--dns-timeout", "1"],
        &with_flag(&lab, "--dns", "127.0.0.1:9"),
        None,
    );
    let t = out(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    for needle in ["check.resolver-silent", "checking side", "127.0.0.1:9"] {
        assert!(t.contains(needle), "{needle:?} missing in\n{t}");
    }
    for wrong in [
        "authoritative servers",
        "lookup-failed",
        "\n  error ",
        "\n  warning ",
    ] {
        assert!(!t.contains(wrong), "{wrong:?} in\n{t}");
    }

    // The zoo's own DNS failures stay the domain's (the resolver answers for the root).
    let o = mtasts(&["check", "dns-servfail.test"], &lab, None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("sts.record.lookup-failed"), "{}", out(&o));
    w.shutdown();
}

/// `--skip-smtp`, `-4`/`-6` and `--cert-expiry-warning`.
#[test]
fn skip_smtp_address_family_and_expiry_threshold() {
    let w = zoo();
    let lab = lab_args(&w);

    // No SMTP probes: no smtp observations, the verdict says so, the exit follows the rest.
    let o = mtasts(
        &["check", "--json", "--skip-smtp", "good-enforce.test"],
        &lab,
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    mtasts_test_support::schema::assert_valid("mtasts-check/2", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let d = &doc["domains"][0];
    assert_eq!(d["verdict"]["outcome"], "unknown");
    assert!(
        d["verdict"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("--skip-smtp")),
        "{}",
        d["verdict"]
    );
    assert_eq!(
        d["observations"]["mx_hosts"][0]["smtp"],
        serde_json::json!([])
    );
    assert_eq!(d["policy"]["mode"], "enforce");
    // Without it, the same domain is probed.
    let o = mtasts(&["check", "--json", "good-enforce.test"], &lab, None);
    mtasts_test_support::schema::assert_valid("mtasts-check/2", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(
        doc["domains"][0]["observations"]["mx_hosts"][0]["smtp"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // The lab is IPv4: -4 probes it as usual, -6 finds nothing to probe (unknown, exit 2).
    let o = mtasts(&["check", "--json", "-4", "good-enforce.test"], &lab, None);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    mtasts_test_support::schema::assert_valid("mtasts-check/2", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(doc["domains"][0]["verdict"]["outcome"], "deliver-securely");
    assert_eq!(
        doc["domains"][0]["observations"]["checking"]["family"],
        "ipv4"
    );
    let o = mtasts(&["check", "-6", "good-enforce.test"], &lab, None);
    let t = out(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("check.no-address-of-family"), "{t}");
    assert!(t.contains("no IPv6 address"), "{t}");
    let o = mtasts(&["check", "-4", "-6", "good-enforce.test"], &lab, None);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));

    // The lab's certificates are valid for about 90 days: warned of under a 100-day
    // threshold, not under the default 21 days.
    let o = mtasts(
        &["check", "--cert-expiry-warning", "100", "good-enforce.test"],
        &lab,
        None,
    );
    let t = out(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("smtp.cert-expiring-soon"), "{t}");
    assert!(t.contains("sts.fetch.cert-expiring-soon"), "{t}");
    let o = mtasts(&["check", "good-enforce.test"], &lab, None);
    assert!(!out(&o).contains("expiring-soon"), "{}", out(&o));
    // Out of range: a usage error.
    let o = mtasts(
        &["check", "--cert-expiry-warning", "400", "good-enforce.test"],
        &lab,
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("--cert-expiry-warning"), "{}", out(&o));
    w.shutdown();
}

/// Advice that knows where the domain is (issue 12.6): `init` over an enforcing domain keeps
/// enforce and ramps max_age, a downgrade is warned about, `--out` does not overwrite without
/// `--force`; `check` of an enforcing domain does not say "before moving to enforce".
#[test]
fn advice_follows_the_live_policy() {
    let w = zoo();
    let lab = lab_args(&w);

    // The same proposal as JSON, against its schema.
    let o = mtasts(&["init", "--json", "good-enforce.test"], &lab, None);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    mtasts_test_support::schema::assert_valid("mtasts-init/1", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(doc["live"]["mode"], "enforce");
    assert_eq!(doc["max_age"], 1_209_600);

    // good-enforce.test publishes mode enforce, max_age 604800.
    let o = mtasts(&["init", "good-enforce.test"], &lab, None);
    let t = out(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("mode: enforce\n"), "{t}");
    assert!(t.contains("max_age: 1209600\n"), "{t}");
    assert!(
        t.contains("# live policy: mode enforce, max_age 604800"),
        "{t}"
    );
    // Asking for testing there is a downgrade: proposed, with a warning, exit 3.
    let o = mtasts(
        &["init", "good-enforce.test", "--mode", "testing"],
        &lab,
        None,
    );
    let t = out(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("mode: testing\n"), "{t}");
    assert!(
        t.contains("warning: downgrade: good-enforce.test publishes mode enforce today"),
        "{t}"
    );
    // No live policy: testing, a day.
    let o = mtasts(&["init", "no-policy.test"], &lab, None);
    let t = out(&o);
    assert!(
        t.contains("mode: testing\n") && t.contains("max_age: 86400\n"),
        "{t}"
    );
    assert!(t.contains("# no live policy"), "{t}");

    // --out: a second run refuses to overwrite and names the file; --force overwrites.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    let o = mtasts(&["init", "good-enforce.test", "--out", &d], &lab, None);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let policy = dir.path().join(".well-known/mta-sts.txt");
    std::fs::write(&policy, "mine\n").expect("write");
    let o = mtasts(&["init", "good-enforce.test", "--out", &d], &lab, None);
    let t = out(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("mta-sts.txt exists") && t.contains("--force"),
        "{t}"
    );
    assert_eq!(std::fs::read_to_string(&policy).expect("read"), "mine\n");
    let o = mtasts(
        &["init", "good-enforce.test", "--out", &d, "--force"],
        &lab,
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        std::fs::read_to_string(&policy)
            .expect("read")
            .starts_with("version: STSv1\nmode: enforce\n")
    );

    // check of an enforcing domain with an uncovered MX: the fix is for now, not "before".
    let o = mtasts(&["check", "mx-partially-covered.test"], &lab, None);
    let t = out(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("sts.coverage.mx-not-covered"), "{t}");
    assert!(!t.contains("before moving to enforce"), "{t}");
    assert!(t.contains("; the policy is in enforce: do it now"), "{t}");
    // A redirect's fix names the domain, not <domain>.
    let o = mtasts(&["check", "redirecting-policy.test"], &lab, None);
    let t = out(&o);
    assert!(t.contains("sts.fetch.redirect"), "{t}");
    assert!(!t.contains("<domain>"), "{t}");
    assert!(
        t.contains("https://mta-sts.redirecting-policy.test/"),
        "{t}"
    );
    w.shutdown();
}

#[test]
fn demo_names_what_is_not_in_the_zoo() {
    let o = mtasts(&["demo", "--full", "no-such-domain.test"], &[], None);
    let t = out(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("no-such-domain.test is not a domain of the zoo"),
        "{t}"
    );
    assert!(t.contains("mtasts demo --list"), "{t}");
    let o = mtasts(&["demo", "--list"], &[], None);
    let t = out(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("good-enforce.test  "), "{t}");
    assert!(t.lines().count() > 50, "{t}");
}
