//! `mtasts resolve` through the real binary against the lab's minimal world: the decision,
//! the reasons, the JSON shape, the cache option and the exit codes.

use std::process::{Command, Output};

use mtasts_lab::{World, WorldOptions};
use serde_json::Value;

fn world() -> World {
    World::start(
        &mtasts_test_support::scenario("minimal.toml"),
        WorldOptions::default(),
    )
    .expect("world")
}

fn resolve(w: &World, extra: &[&str]) -> Output {
    let dns = w.dns_addr().to_string();
    let port = w.https_port().to_string();
    let ca = w.ca_pem_path().to_str().expect("utf-8 path").to_owned();
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args([
            "resolve",
            "--dns",
            &dns,
            "--https-port",
            &port,
            "--ca-file",
            &ca,
        ])
        .args(extra)
        .output()
        .expect("run mtasts")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn enforce_policy_is_explained() {
    let w = world();
    let o = resolve(&w, &["good-enforce.test"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    for needle in [
        "good-enforce.test: enforce",
        "mx patterns   mx1.good-enforce.test",
        "\"v=STSv1; id=20240101T000000;\"",
        "record with id 20240101T000000",
        "HTTP 200, text/plain",
        "fetch result  valid policy",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

#[test]
fn json_output_and_no_policy() {
    let w = world();
    let o = resolve(&w, &["--json", "good-enforce.test", "no-policy.test"]);
    assert_eq!(o.status.code(), Some(0));
    mtasts_test_support::schema::assert_valid("mtasts-resolve/1", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("json");
    let v = &doc["resolutions"];
    assert_eq!(v[0]["decision"], "policy");
    assert_eq!(v[0]["mode"], "enforce");
    assert_eq!(v[0]["policy"]["mx"][0], "mx1.good-enforce.test");
    assert_eq!(v[0]["trace"]["fetch"]["status"], 200);
    assert_eq!(v[1]["decision"], "no-policy");
    assert_eq!(
        v[1]["trace"]["discovery"]["discovery"]["result"],
        "no-record"
    );
}

#[test]
fn sqlite_cache_answers_the_second_run_without_network() {
    let w = world();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = format!("sqlite:{}", dir.path().join("c.sqlite3").display());
    let first = resolve(&w, &["--cache", &cache, "good-enforce.test"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let second = resolve(&w, &["--cache", &cache, "good-enforce.test"]);
    let t = text(&second);
    assert!(t.contains("not needed: the cache answered"), "{t}");
    assert!(t.contains("cache before  policy id 20240101T000000"), "{t}");
    assert_eq!(w.policy_fetches_for("good-enforce.test").len(), 1);
}

#[test]
fn bad_input_is_a_clear_error() {
    let w = world();
    let o = resolve(&w, &["not a domain"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("is not a domain name"), "{}", text(&o));
    let o = resolve(&w, &["--cache", "mysql:x", "good-enforce.test"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("--cache \"mysql:x\""), "{err}");
}

fn dane_world() -> World {
    let scenario = mtasts_lab::Scenario::from_toml_str(
        r#"
        [domains."dane.test"]
        comment = "signed, a usable 3 1 1 record for the private-CA MX, and an enforce policy"
        dnssec_signed = true
        sts_txt = ["v=STSv1; id=1;"]
        mx = ["10 mx1.dane.test"]
        [domains."dane.test".policy]
        mode = "enforce"
        max_age = 86400
        mx = ["mx1.dane.test"]
        [domains."dane.test".hosts.mx1]
        cert = "untrusted-ca"
        tlsa = ["3 1 1", "1 1 1"]

        [domains."bogus.test"]
        comment = "signed, the TLSA RRset is bogus"
        dnssec_signed = true
        mx = ["10 mx1.bogus.test"]
        [domains."bogus.test".hosts.mx1]
        tlsa = ["3 1 1"]
        [domains."bogus.test".dns."_25._tcp.mx1"]
        fault = "bogus"
        fault_types = ["TLSA"]
        "#,
        "<resolve dane>",
    )
    .expect("scenario");
    World::start(&scenario, WorldOptions::default()).expect("world")
}

#[test]
fn dane_decision_and_evidence_are_shown() {
    let w = dane_world();
    let o = resolve(&w, &["dane.test"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    for needle in [
        "dane.test: enforce",
        "  DANE          mandatory: every MX host has DNSSEC-validated, usable TLSA records",
        "  applies       dane-only: DANE for every MX host, MTA-STS is not applied (RFC 8461 §2)",
        "  MX            10 mx1.dane.test (secure, AD, TTL 300 s)",
        "  host          mx1.dane.test: 127.",
        "    TLSA _25._tcp.mx1.dane.test  2 record(s) (secure, AD, TTL 300 s)",
        "  usable (DANE-EE SPKI SHA2-256)",
        "  unusable: certificate usage 1 (PKIX-EE) is undefined for SMTP and treated as unusable",
        "    outcome     authenticated TLS required (RFC 7672 §2.2)",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
    let o = resolve(&w, &["--json", "dane.test"]);
    mtasts_test_support::schema::assert_valid("mtasts-resolve/1", &o.stdout);
    let doc: Value = serde_json::from_slice(&o.stdout).expect("json");
    let v = &doc["resolutions"][0];
    assert_eq!(v["dane"]["decision"]["decision"], "mandatory");
    assert_eq!(v["dane"]["applies"]["apply"], "dane-only");
    assert_eq!(v["dane"]["evidence"]["mx"]["security"], "secure");
    let o = resolve(&w, &["--no-dane", "dane.test"]);
    assert!(!text(&o).contains("DANE"), "{}", text(&o));
}

#[test]
fn dnssec_failure_is_a_temporary_failure_with_exit_1() {
    let w = dane_world();
    let o = resolve(&w, &["bogus.test"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("applies       temporary failure: deliveries wait, no fallback to MTA-STS or opportunistic TLS"),
        "{t}"
    );
    assert!(t.contains("lookup error: this host is skipped"), "{t}");
}
