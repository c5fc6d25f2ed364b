//! `mtasts lint` through the real binary: exit codes, human and JSON output.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn mtasts(args: &[&str]) -> Output {
    mtasts_test_support::run(env!("CARGO_BIN_EXE_mtasts"), args, &[], None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const FIVE: [(usize, &str); 5] = [
    (2, "sts.policy.invalid-mode"),
    (4, "sts.policy.invalid-mx"),
    (5, "sts.policy.invalid-mx"),
    (6, "sts.policy.max-age-too-large"),
    (7, "sts.policy.unknown-key"),
];

#[test]
fn five_mistakes_reported_with_lines_and_hints_in_text() {
    let path = data("five-mistakes.txt");
    let o = mtasts(&["lint", "policy", path.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    for (line, code) in FIVE {
        let needle = format!("five-mistakes.txt:{line}: ");
        let found = text
            .lines()
            .find(|l| l.contains(&needle) && l.contains(code))
            .unwrap_or_else(|| panic!("no {code} on line {line} in:\n{text}"));
        assert!(found.contains("RFC 8461"), "{found}");
    }
    // Every finding is followed by its hint.
    let findings = text.lines().filter(|l| l.contains(" [sts.")).count();
    let hints = text
        .lines()
        .filter(|l| l.trim_start().starts_with("hint: "))
        .count();
    assert!(findings >= 5, "{text}");
    assert_eq!(findings, hints, "{text}");
    assert!(text.contains("did you mean \"mx\""), "{text}");
}

#[test]
fn five_mistakes_reported_with_lines_and_hints_in_json() {
    let path = data("five-mistakes.txt");
    let o = mtasts(&[
        "lint",
        "policy",
        "--json",
        path.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    mtasts_test_support::schema::assert_valid("mtasts-lint-policy/1", &o.stdout);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["valid"], false);
    let findings = v["findings"].as_array().expect("findings");
    for (line, code) in FIVE {
        let f = findings
            .iter()
            .find(|f| f["code"] == code && f["location"]["line"] == line)
            .unwrap_or_else(|| panic!("no {code} on line {line}: {v:#}"));
        assert!(!f["hint"].as_str().unwrap_or("").is_empty(), "{f}");
        assert!(
            f["rfc"].as_str().unwrap_or("").starts_with("RFC 8461 §"),
            "{f}"
        );
        assert!(["error", "warning"].contains(&f["severity"].as_str().unwrap_or("")));
    }
}

#[test]
fn valid_policy_exits_zero_and_reports_coverage() {
    let path = data("good.txt");
    let p = path.to_str().expect("utf-8 path");
    let o = mtasts(&[
        "lint",
        "policy",
        p,
        "--mx",
        "mail.example.com",
        "--mx",
        "mx1.example.net.",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("valid policy: mode enforce, max_age 604800"));
}

#[test]
fn uncovered_mx_is_an_error() {
    let path = data("good.txt");
    let p = path.to_str().expect("utf-8 path");
    let o = mtasts(&["lint", "policy", p, "--mx", "a.b.example.net", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    mtasts_test_support::schema::assert_valid("mtasts-lint-policy/1", &o.stdout);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let cov = v["coverage"].as_array().expect("coverage");
    assert!(
        cov.iter()
            .any(|f| f["code"] == "sts.coverage.mx-not-covered" && f["severity"] == "error"),
        "{v:#}"
    );
    assert!(
        cov.iter()
            .any(|f| f["code"] == "sts.coverage.unused-pattern"),
        "{v:#}"
    );
}

#[test]
fn policy_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["lint", "policy", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n")
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("<stdin>: valid policy: mode none"));
}

#[test]
fn missing_file_is_exit_2_with_the_path() {
    let o = mtasts(&["lint", "policy", "/nonexistent/policy.txt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/policy.txt"));
}

#[test]
fn oversize_policy_is_reported() {
    let dir = std::env::temp_dir().join(format!("mtasts-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("big.txt");
    let mut body = b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nx: ".to_vec();
    body.resize(70_000, b'a');
    std::fs::write(&path, &body).expect("write");
    let o = mtasts(&["lint", "policy", path.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("sts.fetch.body-too-large"),
        "{}",
        stdout(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_error_is_exit_2() {
    let o = mtasts(&["lint", "policy"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn record_valid_sts_and_tlsrpt() {
    let o = mtasts(&[
        "lint",
        "record",
        "v=STSv1; id=20250101T000000",
        "v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
    ]);
    // "20250101T000000" is valid: letters and digits.
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("valid MTA-STS record, id 20250101T000000"));
    assert!(stdout(&o).contains("reports to mailto:tlsrpt@example.com"));
}

#[test]
fn record_rrset_with_two_sts_records_is_invalid() {
    let o = mtasts(&["lint", "record", "--json", "v=STSv1; id=1", "v=STSv1; id=2"]);
    assert_eq!(o.status.code(), Some(1));
    mtasts_test_support::schema::assert_valid("mtasts-lint-record/1", &o.stdout);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["code"] == "sts.record.multiple")
    );
}

#[test]
fn record_zone_file_strings_are_joined() {
    let o = mtasts(&["lint", "record", "\"v=STSv1; \" \"id=12\" \"34;\""]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("id 1234"));
}

#[test]
fn record_wrong_case_version_is_explained() {
    let o = mtasts(&["lint", "record", "v=stsv1; id=1"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(
        text.contains("record.discarded") && text.contains("case-sensitive"),
        "{text}"
    );
    assert!(text.contains("sts.record.none"), "{text}");
}

/// The schemas are strict enough to catch drift: the checker's old finding keys, an epoch
/// time, a Rust enum's serde layout and a missing schema name are each rejected, while the
/// same documents in the convention's form pass.
#[test]
fn schemas_reject_documents_out_of_the_convention() {
    use mtasts_test_support::schema::{assert_invalid, assert_valid};
    let o = mtasts(&["lint", "record", "--json", "v=STSv1; id=1", "v=STSv1; id=2"]);
    let good = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_valid("mtasts-lint-record/1", &good);
    assert!(good.contains("\"code\""), "{good}");
    assert_invalid("mtasts-lint-record/1", good.replace("\"code\"", "\"id\""));
    assert_invalid("mtasts-lint-record/1", good.replace("\"hint\"", "\"fix\""));
    assert_invalid(
        "mtasts-lint-record/1",
        good.replace("\"error\"", "\"Error\""),
    );
    assert_invalid(
        "mtasts-lint-record/1",
        good.replace("\"schema\": \"mtasts-lint-record/1\",", ""),
    );
    let check = |checked_at: &str, extra: &str| {
        format!(
            r#"{{"schema": "mtasts-check/2", "checked_at": {checked_at}, "domains": [],
              "summary": {{"domains": 0, "invalid_input": 0, "input_error": null,
              "outcomes": {{}}, "categories": {{}}, "worst": null, "inconclusive": 0{extra}}}}}"#
        )
    };
    // `x` is not a summary field: the summary is closed.
    assert_invalid(
        "mtasts-check/2",
        check("\"2026-01-02T03:04:05Z\"", ", \"x\": 1"),
    );
    let ok = check("\"2026-01-02T03:04:05Z\"", "");
    assert_valid("mtasts-check/2", &ok);
    assert_invalid(
        "mtasts-check/2",
        ok.replace("\"2026-01-02T03:04:05Z\"", "1767323045"),
    );
}
