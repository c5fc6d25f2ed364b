//! Inputs the fuzzers found (`fuzz/regressions/`, copied to `tests/data/fuzz/`), kept as
//! tests of what the parsers must answer (docs/fuzzing.md, "Findings"). The first two were
//! slow, not wrong: Punycode decoding is quadratic in a label's length, and a 60 KB `xn--`
//! label took seconds to refuse. The names are now refused on length before the IDNA
//! conversion; what these tests pin down is the answer (the speed is shown by the fuzzers'
//! `-timeout`, not asserted here). The third was wrong: a number with more digits than an
//! `f64` holds, in a member the reader does not know, read back as another number.

use mtasts_core::sts::policy::lint_policy;
use mtasts_core::tlsrpt::payload::parse_payload;
use mtasts_core::tlsrpt::report::{ReportLimits, parse_report};

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

/// The module documentation of `tlsrpt::report`: `parse_report(to_json(r)) == r`. The
/// fuzzer's input is a mailed report whose unknown member `po6licysummary` holds a
/// 102-digit number; read without correct rounding it became 3.3333333333333335e100, which
/// is written as such and read back as 3.333333333333334e100.
#[test]
fn rfc8460_s4_report_with_a_long_number_in_an_unknown_member_round_trips() {
    let input = include_bytes!("data/fuzz/report_payload-float-roundtrip.eml");
    let r = parse_payload(input, &ReportLimits::default()).expect("a report");
    let json = r.report.to_json().to_string();
    let again = parse_report(json.as_bytes(), &ReportLimits::default()).expect("its JSON");
    assert_eq!(again.report, r.report, "{json}");

    for number in [
        "3333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333331",
        "0.1000000000000000055511151231257827021181583404541015625",
        "2.2250738585072011e-308",
        "1e400",
        "123456789012345678901234567890",
    ] {
        let text = format!(
            r#"{{"organization-name":"o","date-range":{{"start-datetime":"2020-01-01T00:00:00Z","end-datetime":"2020-01-01T23:59:59Z"}},"contact-info":"a@b.example","report-id":"r","policies":[],"x-extra":{number}}}"#
        );
        let Ok(first) = parse_report(text.as_bytes(), &ReportLimits::default()) else {
            continue;
        };
        let json = first.report.to_json().to_string();
        let again = parse_report(json.as_bytes(), &ReportLimits::default()).expect("its JSON");
        assert_eq!(again.report, first.report, "{number}: {json}");
    }
}
