//! RFC 8461 §3.2: the policy file.

use mtasts_core::Diagnostic;
use mtasts_core::sts::policy::{Policy, lint_policy};

fn summary(p: &Policy) -> String {
    let mx: Vec<String> = p.mx.iter().map(ToString::to_string).collect();
    format!("{} {} mx={}", p.mode, p.max_age, mx.join(","))
}

/// `Ok("mode max_age mx=a,b")` for a valid policy, `Err(code of the first error)` otherwise.
fn check(text: &str, expected: Result<&str, &str>) {
    let got = Policy::parse(text.as_bytes());
    match (&got, expected) {
        (Ok(p), Ok(s)) => assert_eq!(summary(p), s, "policy {text:?}"),
        (Err(e), Err(code)) => assert_eq!(e.code(), code, "policy {text:?}: {e}"),
        _ => panic!("policy {text:?}: expected {expected:?}, got {got:?}"),
    }
}

/// The policy is valid and the linter raises the given warning code.
fn check_warning(text: &str, code: &str) {
    let lint = lint_policy(text.as_bytes());
    assert!(
        lint.policy.is_some(),
        "policy {text:?} should be valid: {:?}",
        lint.errors
    );
    assert!(
        lint.warnings.iter().any(|w| w.code() == code),
        "policy {text:?}: expected warning {code}, got {:?}",
        lint.warnings
    );
}

/// The number of error-level findings the linter reports (all of them, not just the first).
fn check_error_count(text: &str, n: usize) {
    let lint = lint_policy(text.as_bytes());
    assert_eq!(lint.errors.len(), n, "policy {text:?}: {:?}", lint.errors);
}

const BASE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

cases! { check;
    rfc8461_s3_2_rfc_example: "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n" => Ok("enforce 604800 mx=mail.example.com,*.example.net,backupmx.example.com");
    rfc8461_s3_2_lf_line_endings: BASE => Ok("enforce 86400 mx=mail.example.com");
    rfc8461_s3_2_crlf_line_endings: "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400\r\n" => Ok("enforce 86400 mx=mail.example.com");
    rfc8461_s3_2_mixed_line_endings: "version: STSv1\r\nmode: enforce\nmx: mail.example.com\r\nmax_age: 86400" => Ok("enforce 86400 mx=mail.example.com");
    rfc8461_s3_2_no_final_newline: "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1" => Ok("testing 1 mx=a.example");
    rfc8461_s3_2_no_space_after_colon: "version:STSv1\nmode:enforce\nmx:a.example\nmax_age:86400\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_tabs_after_colon: "version:\tSTSv1\nmode:\tenforce\nmx:\ta.example\nmax_age:\t86400\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_trailing_wsp_after_value: "version: STSv1  \nmode: enforce\t\nmx: a.example \nmax_age: 86400 \n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_fields_in_any_order: "max_age: 86400\nmx: a.example\nmode: enforce\nversion: STSv1\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_mode_testing: "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\n" => Ok("testing 86400 mx=a.example");
    rfc8461_s3_2_mode_none_without_mx: "version: STSv1\nmode: none\nmax_age: 86400\n" => Ok("none 86400 mx=");
    rfc8461_s3_2_mode_none_with_mx: "version: STSv1\nmode: none\nmx: a.example\nmax_age: 86400\n" => Ok("none 86400 mx=a.example");
    rfc8461_s3_2_mode_case_sensitive: "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.invalid-mode");
    rfc8461_s3_2_mode_unknown: "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.invalid-mode");
    rfc8461_s3_2_mode_empty: "version: STSv1\nmode:\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.invalid-mode");
    rfc8461_s3_2_mode_missing: "version: STSv1\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.missing-mode");
    rfc8461_s3_2_mode_duplicate_first_wins: "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => Ok("testing 86400 mx=a.example");
    rfc8461_s3_2_mode_duplicate_invalid_second_ignored: "version: STSv1\nmode: enforce\nmode: bogus\nmx: a.example\nmax_age: 86400\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_version_case_sensitive: "version: stsv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.invalid-version");
    rfc8461_s3_2_version_2_rejected: "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.invalid-version");
    rfc8461_s3_2_version_missing: "mode: enforce\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.missing-version");
    rfc8461_s3_2_version_key_case_sensitive: "Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.missing-version");
    rfc8461_s3_2_version_duplicate_first_wins: "version: STSv1\nversion: STSv2\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_max_age_zero_ok: "version: STSv1\nmode: none\nmax_age: 0\n" => Ok("none 0 mx=");
    rfc8461_s3_2_max_age_at_limit_31557600: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557600\n" => Ok("enforce 31557600 mx=a.example");
    rfc8461_s3_2_max_age_over_limit_31557601: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n" => Err("sts.policy.max-age-too-large");
    rfc8461_s3_2_max_age_10_digits_leading_zeros_ok: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0000086400\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_max_age_11_digits_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000086400\n" => Err("sts.policy.invalid-max-age");
    rfc8461_s3_2_max_age_10_digits_too_large: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n" => Err("sts.policy.max-age-too-large");
    rfc8461_s3_2_max_age_negative_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n" => Err("sts.policy.invalid-max-age");
    rfc8461_s3_2_max_age_plus_sign_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: +86400\n" => Err("sts.policy.invalid-max-age");
    rfc8461_s3_2_max_age_with_unit_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1d\n" => Err("sts.policy.invalid-max-age");
    rfc8461_s3_2_max_age_decimal_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400.0\n" => Err("sts.policy.invalid-max-age");
    rfc8461_s3_2_max_age_empty_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age:\n" => Err("sts.policy.invalid-max-age");
    rfc8461_s3_2_max_age_space_inside_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86 400\n" => Err("sts.policy.invalid-max-age");
    rfc8461_s3_2_max_age_missing: "version: STSv1\nmode: enforce\nmx: a.example\n" => Err("sts.policy.missing-max-age");
    rfc8461_s3_2_max_age_duplicate_first_wins: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 600\nmax_age: 31557601\n" => Ok("enforce 600 mx=a.example");
    rfc8461_s3_2_mx_missing_in_enforce: "version: STSv1\nmode: enforce\nmax_age: 86400\n" => Err("sts.policy.missing-mx");
    rfc8461_s3_2_mx_missing_in_testing: "version: STSv1\nmode: testing\nmax_age: 86400\n" => Err("sts.policy.missing-mx");
    rfc8461_s3_2_mx_several_kept_in_order: "version: STSv1\nmode: enforce\nmx: b.example\nmx: a.example\nmx: *.c.example\nmax_age: 86400\n" => Ok("enforce 86400 mx=b.example,a.example,*.c.example");
    rfc8461_s3_2_mx_lowercased: "version: STSv1\nmode: enforce\nmx: MAIL.Example.COM\nmax_age: 86400\n" => Ok("enforce 86400 mx=mail.example.com");
    rfc8461_s3_2_mx_ulabel_converted: "version: STSv1\nmode: enforce\nmx: mail.b\u{fc}cher.example\nmax_age: 86400\n" => Ok("enforce 86400 mx=mail.xn--bcher-kva.example");
    rfc8461_s3_2_mx_alabel_kept: "version: STSv1\nmode: enforce\nmx: mail.xn--bcher-kva.example\nmax_age: 86400\n" => Ok("enforce 86400 mx=mail.xn--bcher-kva.example");
    rfc8461_s3_2_mx_invalid_punycode_rejected: "version: STSv1\nmode: enforce\nmx: mail.xn--zz.example\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_ipv4_literal_rejected: "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_ipv6_literal_rejected: "version: STSv1\nmode: enforce\nmx: [2001:db8::1]\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_empty_label_rejected: "version: STSv1\nmode: enforce\nmx: mail..example.com\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_leading_dot_rejected: "version: STSv1\nmode: enforce\nmx: .example.com\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_double_wildcard_rejected: "version: STSv1\nmode: enforce\nmx: *.*.example.com\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_inner_wildcard_rejected: "version: STSv1\nmode: enforce\nmx: a.*.example.com\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_partial_label_wildcard_rejected: "version: STSv1\nmode: enforce\nmx: mx*.example.com\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_bare_wildcard_rejected: "version: STSv1\nmode: enforce\nmx: *\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_wildcard_dot_only_rejected: "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_underscore_rejected: "version: STSv1\nmode: enforce\nmx: mail_1.example.com\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_label_63_ok: "version: STSv1\nmode: enforce\nmx: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\nmax_age: 86400\n" => Ok("enforce 86400 mx=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example");
    rfc8461_s3_2_mx_label_64_rejected: "version: STSv1\nmode: enforce\nmx: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_hyphen_edge_rejected: "version: STSv1\nmode: enforce\nmx: -mail.example.com\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_empty_value_rejected: "version: STSv1\nmode: enforce\nmx:\nmax_age: 86400\n" => Err("sts.policy.invalid-mx");
    rfc8461_s3_2_mx_trailing_dot_accepted: "version: STSv1\nmode: enforce\nmx: mail.example.com.\nmax_age: 86400\n" => Ok("enforce 86400 mx=mail.example.com");
    rfc8461_s3_2_unknown_key_ignored: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nfoo: bar baz\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_unknown_key_with_utf8_value: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nnote: caf\u{e9}\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_typo_nmx_is_unknown_then_missing_mx: "version: STSv1\nmode: enforce\nnmx: a.example\nmax_age: 86400\n" => Err("sts.policy.missing-mx");
    rfc8461_s3_2_line_without_colon: "version: STSv1\nmode: enforce\nmx a.example\nmax_age: 86400\n" => Err("sts.policy.missing-colon");
    rfc8461_s3_2_space_before_colon: "version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.whitespace-around-key");
    rfc8461_s3_2_leading_space_before_key: "version: STSv1\n mode: enforce\nmx: a.example\nmax_age: 86400\n" => Err("sts.policy.whitespace-around-key");
    rfc8461_s3_2_key_33_chars_rejected: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nabcdefghijklmnopqrstuvwxyz0123456: x\n" => Err("sts.policy.invalid-key");
    rfc8461_s3_2_key_32_chars_ok: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nabcdefghijklmnopqrstuvwxyz012345: x\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_control_char_in_value: "version: STSv1\nmode: enforce\nmx: a.exa\u{7}mple\nmax_age: 86400\n" => Err("sts.policy.control-character");
    rfc8461_s3_2_invalid_utf8_line: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nx: \u{fffd}\n" => Ok("enforce 86400 mx=a.example");
    rfc8461_s3_2_html_error_page: "<html><body>Not Found</body></html>" => Err("sts.policy.missing-colon");
    rfc8461_s3_2_empty_body: "" => Err("sts.policy.missing-version");
}

#[test]
fn rfc8461_s3_2_invalid_utf8_bytes_rejected_with_line() {
    let mut text = b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nx: ".to_vec();
    text.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let e = Policy::parse(&text).expect_err("invalid UTF-8");
    assert_eq!(e.code(), "sts.policy.not-utf8");
    assert_eq!(e.line(), Some(5));
}

cases! { check_warning;
    rfc8461_s3_2_warns_unknown_key: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nfoo: bar\n" => "sts.policy.unknown-key";
    rfc8461_s3_2_warns_duplicate_mode: "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => "sts.policy.duplicate-key";
    rfc8461_s3_2_warns_duplicate_mx: "version: STSv1\nmode: enforce\nmx: a.example\nmx: A.example\nmax_age: 86400\n" => "sts.policy.duplicate-mx";
    rfc8461_s3_2_warns_blank_line: "version: STSv1\n\nmode: enforce\nmx: a.example\nmax_age: 86400\n" => "sts.policy.blank-line";
    rfc8461_s3_2_warns_trailing_dot_mx: "version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 86400\n" => "sts.policy.mx-trailing-dot";
    rfc8461_s3_2_warns_ulabel_mx: "version: STSv1\nmode: enforce\nmx: b\u{fc}cher.example\nmax_age: 86400\n" => "sts.policy.mx-not-a-label";
    rfc8461_s4_1_warns_wildcard_tld: "version: STSv1\nmode: enforce\nmx: *.com\nmax_age: 86400\n" => "sts.policy.mx-wildcard-too-broad";
    rfc8461_s10_2_warns_short_max_age: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86399\n" => "sts.policy.short-max-age";
}

#[test]
fn rfc8461_s10_2_one_day_is_not_short() {
    let lint = lint_policy(BASE.as_bytes());
    assert!(lint.warnings.is_empty(), "{:?}", lint.warnings);
}

#[test]
fn rfc8461_s3_2_mixed_case_key_suggests_the_right_one() {
    let lint = lint_policy(
        b"version: STSv1\nMode: enforce\nmode: testing\nmx: a.example\nmax_age: 86400\n",
    );
    let w = lint
        .warnings
        .iter()
        .find(|w| w.code() == "sts.policy.unknown-key")
        .expect("unknown key warning");
    assert!(w.to_string().contains("did you mean \"mode\""), "{w}");
}

cases! { check_error_count;
    rfc8461_s3_2_linter_reports_every_error: "version: STSv2\nmode: Enforce\nmx: 192.0.2.1\nmx: *.*.example\nmax_age: 31557601\n" => 5;
    rfc8461_s3_2_linter_reports_missing_fields_together: "foo: bar\n" => 3;
    rfc8461_s3_2_linter_valid_has_no_errors: BASE => 0;
}

#[test]
fn rfc8461_s3_2_canonical_text_round_trips() {
    let p =
        Policy::parse(b"mx: *.Example.net\nmax_age: 5\nmode: testing\nversion: STSv1\next: 1\n")
            .expect("valid");
    let text = p.to_text();
    assert!(text.starts_with("version: STSv1\r\n"));
    assert_eq!(Policy::parse(text.as_bytes()), Ok(p));
}
