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
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(doc["schema"], "mtasts-check/1");
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

    // Bulk from standard input, JSON lines, a bad line named by its line number: exit 2.
    let input = "good-enforce.test\n# a comment\n\nbad domain!\nstarttls-stripped.test\n";
    let o = mtasts(
        &["check", "--format", "jsonl", "--input", "-"],
        &lab,
        Some(input),
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
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
