//! RFC 8461 §4.1: matching MX host names against policy patterns.

use mtasts_core::sts::mx::MxPattern;

/// `(pattern, host)` → whether it matches.
fn check((pattern, host): (&str, &str), expected: bool) {
    let p = MxPattern::parse(pattern).unwrap_or_else(|e| panic!("pattern {pattern:?}: {e}"));
    assert_eq!(
        p.matches(host),
        expected,
        "pattern {pattern:?} host {host:?}"
    );
}

cases! { check;
    rfc8461_s4_1_exact_match: ("mail.example.com", "mail.example.com") => true;
    rfc8461_s4_1_exact_other_host: ("mail.example.com", "mx.example.com") => false;
    rfc8461_s4_1_exact_does_not_match_subdomain: ("example.com", "mail.example.com") => false;
    rfc8461_s4_1_exact_does_not_match_parent: ("mail.example.com", "example.com") => false;
    rfc8461_s4_1_case_insensitive_host: ("mail.example.com", "MAIL.EXAMPLE.COM") => true;
    rfc8461_s4_1_case_insensitive_pattern: ("MAIL.Example.com", "mail.example.com") => true;
    rfc8461_s4_1_trailing_dot_on_host: ("mail.example.com", "mail.example.com.") => true;
    rfc8461_s4_1_trailing_dot_on_pattern: ("mail.example.com.", "mail.example.com") => true;
    rfc8461_s4_1_wildcard_one_label: ("*.example.com", "mail.example.com") => true;
    rfc8461_s4_1_wildcard_not_apex: ("*.example.com", "example.com") => false;
    rfc8461_s4_1_wildcard_not_two_labels: ("*.example.com", "a.b.example.com") => false;
    rfc8461_s4_1_wildcard_case_insensitive: ("*.Example.COM", "MX1.example.com") => true;
    rfc8461_s4_1_wildcard_trailing_dot_host: ("*.example.com", "mx1.example.com.") => true;
    rfc8461_s4_1_wildcard_not_suffix_of_label: ("*.example.com", "mail.badexample.com") => false;
    rfc8461_s4_1_exact_not_suffix_of_other_domain: ("mail.example.com", "mail.example.com.evil.net") => false;
    rfc8461_s4_1_wildcard_not_suffix_of_other_domain: ("*.example.com", "mail.example.com.evil.net") => false;
    rfc8461_s4_1_wildcard_empty_leftmost_label: ("*.example.com", ".example.com") => false;
    rfc8461_s4_1_wildcard_deeper_base: ("*.mail.example.com", "mx1.mail.example.com") => true;
    rfc8461_s4_1_wildcard_deeper_base_not_parent_level: ("*.mail.example.com", "mx1.example.com") => false;
    rfc8461_s4_1_idn_ulabel_host_alabel_pattern: ("mail.xn--bcher-kva.example", "mail.b\u{fc}cher.example") => true;
    rfc8461_s4_1_idn_alabel_host_ulabel_pattern: ("mail.b\u{fc}cher.example", "mail.xn--bcher-kva.example") => true;
    rfc8461_s4_1_idn_wildcard: ("*.b\u{fc}cher.example", "mx.xn--bcher-kva.example") => true;
    rfc8461_s4_1_idn_uppercase_ulabel: ("mail.b\u{fc}cher.example", "MAIL.B\u{dc}CHER.EXAMPLE") => true;
    rfc8461_s4_1_idn_different_name: ("mail.b\u{fc}cher.example", "mail.bucher.example") => false;
    rfc8461_s4_1_ip_host_never_matches: ("mail.example.com", "192.0.2.1") => false;
    rfc8461_s4_1_invalid_host_never_matches: ("*.example.com", "a..example.com") => false;
    rfc8461_s4_1_empty_host_never_matches: ("mail.example.com", "") => false;
    rfc8461_s4_1_wildcard_matches_numeric_label: ("*.example.com", "10.example.com") => true;
    rfc8461_s4_1_wildcard_matches_hyphenated_label: ("*.example.com", "mx-1.example.com") => true;
    rfc8461_s4_1_host_with_wildcard_is_not_a_host: ("*.example.com", "*.example.com") => false;
    rfc8461_s4_1_single_label_exact: ("localhost", "localhost") => true;
}

#[test]
fn rfc8461_s4_1_first_matching_pattern_is_reported() {
    use mtasts_core::sts::mx::find_match;
    let pats: Vec<MxPattern> = ["mx.example.com", "*.example.com"]
        .iter()
        .map(|p| MxPattern::parse(p).expect("valid"))
        .collect();
    assert_eq!(
        find_match(&pats, "a.example.com").map(ToString::to_string),
        Some("*.example.com".to_string())
    );
    assert_eq!(
        find_match(&pats, "mx.example.com").map(ToString::to_string),
        Some("mx.example.com".to_string())
    );
    assert_eq!(find_match(&pats, "example.org"), None);
}
