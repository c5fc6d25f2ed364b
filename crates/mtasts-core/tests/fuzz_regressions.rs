//! Inputs the fuzzers found (`fuzz/regressions/`, copied to `tests/data/fuzz/`), kept as
//! tests of what the parsers must answer. Both were slow, not wrong: Punycode decoding is
//! quadratic in a label's length, and a 60 KB `xn--` label took seconds to refuse. The
//! names are now refused on length before the IDNA conversion; what these tests pin down is
//! the answer (the speed is shown by the fuzzers' `-timeout`, not asserted here).

use mtasts_core::sts::policy::lint_policy;
use mtasts_core::tlsrpt::payload::parse_payload;
use mtasts_core::tlsrpt::report::ReportLimits;

#[test]
fn rfc8461_s3_2_policy_with_huge_punycode_mx_labels_is_refused_per_line() {
    let input = include_bytes!("data/fuzz/sts_policy-idna-slow-mx.bin");
    let lint = lint_policy(input);
    assert!(lint.policy.is_none());
    assert!(
        lint.errors
            .iter()
            .any(|e| e.to_string().contains("more than 63")),
        "{:?}",
        lint.errors
            .iter()
            .map(ToString::to_string)
            .take(3)
            .collect::<Vec<_>>()
    );
}

#[test]
fn rfc8460_s4_4_report_with_huge_punycode_mx_host_still_parses() {
    let input = include_bytes!("data/fuzz/report_payload-idna-slow-mx-host.bin");
    let r = parse_payload(input, &ReportLimits::default()).expect("a report");
    assert_eq!(
        r.report.organization_name.as_deref(),
        Some("Company-X"),
        "the hostile host name is one field of a valid report"
    );
}
