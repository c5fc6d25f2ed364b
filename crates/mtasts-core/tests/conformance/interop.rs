//! "Strict for owners, safe for senders": every input that a deployed sender rejects (the
//! evidence in `data/interop.tsv`, readable in `docs/interop.md`) is an error for `lint` and
//! `check`, naming those senders, while our own parsers — the resolver's — still accept what
//! is safe to accept. The tests are named for the RFC section whose ABNF the input breaks.

use mtasts_core::diag::{Finding, Severity};
use mtasts_core::interop;
use mtasts_core::rrset::lint_rrset;
use mtasts_core::sts::policy::{Policy, lint_policy};

const BASE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

/// The implementations of the survey that deliver mail (`checkdmarc` only checks).
fn senders_rejecting(case: &str) -> Vec<&'static str> {
    interop::rejected_by(case)
        .into_iter()
        .filter(|i| *i != "checkdmarc")
        .collect()
}

fn policy_findings(text: &str) -> Vec<Finding> {
    lint_policy(text.as_bytes()).findings()
}

fn record_findings(txt: &str) -> Vec<Finding> {
    lint_rrset(&[[txt.as_bytes()]])
        .findings
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// The finding `code` is raised at `severity`; when some sender rejects `case`, it is an error
/// and its message names each of them.
fn check(case: &str, findings: &[Finding], code: &str) {
    let senders = senders_rejecting(case);
    let f = findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("{case}: expected {code}, got {findings:?}"));
    if senders.is_empty() {
        assert_ne!(f.severity, Severity::Error, "{case}: no sender rejects it");
    } else {
        assert_eq!(f.severity, Severity::Error, "{case}: {senders:?} reject it");
        for s in senders {
            assert!(
                f.message.contains(s),
                "{case}: {s} not named in {:?}",
                f.message
            );
        }
    }
}

#[test]
fn rfc8461_s3_2_blank_line_is_an_error_yet_parsed() {
    let text = "version: STSv1\n\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";
    check(
        "policy-blank-line",
        &policy_findings(text),
        "sts.policy.blank-line",
    );
    assert!(
        Policy::parse(text.as_bytes()).is_ok(),
        "the resolver keeps the protection"
    );
}

#[test]
fn rfc8461_s3_2_empty_extension_value_is_an_error_yet_parsed() {
    let text = format!("{BASE}note:\n");
    check(
        "policy-empty-extension-value",
        &policy_findings(&text),
        "sts.policy.empty-extension-value",
    );
    assert!(Policy::parse(text.as_bytes()).is_ok());
}

#[test]
fn rfc8461_s3_2_mx_trailing_dot_is_an_error_yet_parsed() {
    let text = "version: STSv1\nmode: enforce\nmx: mail.example.com.\nmax_age: 86400\n";
    check(
        "policy-mx-trailing-dot",
        &policy_findings(text),
        "sts.policy.mx-trailing-dot",
    );
    let p = Policy::parse(text.as_bytes()).expect("accepted, normalised");
    assert!(p.allows_mx("mail.example.com"));
}

#[test]
fn rfc8461_s3_2_mx_u_label_is_an_error_yet_parsed() {
    let text = "version: STSv1\nmode: enforce\nmx: mail.b\u{fc}cher.example\nmax_age: 86400\n";
    check(
        "policy-mx-u-label",
        &policy_findings(text),
        "sts.policy.mx-not-a-label",
    );
    let p = Policy::parse(text.as_bytes()).expect("accepted, converted");
    assert!(p.allows_mx("mail.xn--bcher-kva.example"));
}

#[test]
fn rfc8461_s3_1_sts_record_trailing_whitespace_is_an_error_yet_parsed() {
    check(
        "txt-trailing-whitespace-sts",
        &record_findings("v=STSv1; id=1 "),
        "sts.record.trailing-whitespace",
    );
    assert!(mtasts_core::sts::record::StsRecord::parse(b"v=STSv1; id=1 ").is_ok());
    // With the final delimiter the ABNF allows trailing whitespace.
    assert!(
        record_findings("v=STSv1; id=1;  ").is_empty(),
        "{:?}",
        record_findings("v=STSv1; id=1;  ")
    );
}

#[test]
fn rfc8460_s3_tlsrpt_record_trailing_whitespace_is_a_warning() {
    check(
        "txt-trailing-whitespace-tlsrpt",
        &record_findings("v=TLSRPTv1; rua=mailto:tlsrpt@example.com "),
        "tlsrpt.record.trailing-whitespace",
    );
}

#[test]
fn rfc8461_s3_2_cases_every_sender_rejects_are_errors() {
    for (case, text, code) in [
        (
            "policy-mode-uppercase",
            "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 86400\n",
            "sts.policy.invalid-mode",
        ),
        (
            "policy-whitespace-before-colon",
            "version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 86400\n",
            "sts.policy.whitespace-around-key",
        ),
        (
            "policy-max-age-too-large",
            "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
            "sts.policy.max-age-too-large",
        ),
        (
            "policy-mx-ip-literal",
            "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmax_age: 86400\n",
            "sts.policy.invalid-mx",
        ),
    ] {
        let f = policy_findings(text);
        assert!(
            f.iter()
                .any(|f| f.code == code && f.severity == Severity::Error),
            "{case}: {f:?}"
        );
    }
}

#[test]
fn rfc8461_s3_1_cases_senders_reject_in_records_are_errors() {
    let long = "v=STSv1; id=abcdefghijklmnopqrstuvwxyz0123456";
    assert!(
        record_findings(long)
            .iter()
            .any(|f| f.code == "sts.record.invalid-id" && f.severity == Severity::Error)
    );
    let two = lint_rrset(&[[b"v=STSv1; id=1".as_slice()], [b"v=STSv1; id=2".as_slice()]]);
    assert!(
        two.has_errors(),
        "txt-multiple-sts-records: {:?}",
        two.findings
    );
}

#[test]
fn rfc8461_s3_2_duplicate_key_only_a_checker_rejects_so_a_warning() {
    assert!(senders_rejecting("policy-duplicate-key").is_empty());
    let text = "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 86400\n";
    let f = policy_findings(text);
    let dup = f
        .iter()
        .find(|f| f.code == "sts.policy.duplicate-key")
        .expect("raised");
    assert_eq!(dup.severity, Severity::Warning);
}

/// `docs/interop.md`'s summary table is the evidence table, cell for cell.
#[test]
fn docs_interop_summary_equals_the_evidence() {
    let doc = include_str!("../../../../docs/interop.md");
    let mut lines = doc.lines().skip_while(|l| !l.starts_with("| case |"));
    let header = lines.next().expect("the summary table's header");
    let implementations: Vec<&str> = header
        .split('|')
        .map(str::trim)
        .skip(2)
        .filter(|s| !s.is_empty())
        .collect();
    let rows = lines.skip(1).take_while(|l| l.starts_with("| "));
    let mut seen = 0;
    for line in rows {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), implementations.len() + 3, "{line}");
        let case = cells[1];
        for (i, implementation) in implementations.iter().enumerate() {
            let row = interop::verdicts()
                .iter()
                .find(|v| v.case == case && v.implementation == *implementation)
                .unwrap_or_else(|| {
                    panic!("{case}/{implementation} in the doc, not in the evidence")
                });
            assert_eq!(row.verdict, cells[i + 2], "{case}/{implementation}");
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        interop::verdicts().len(),
        "every row of the evidence is in the doc"
    );
}
