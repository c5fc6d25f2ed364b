//! The Postfix socketmap protocol: netstrings, requests, key forms and replies, one named test
//! per case.
#![allow(missing_docs)]

use mtasts_core::dane::Decision;
use mtasts_core::domain::DomainError;
use mtasts_core::sts::policy::Policy;
use mtasts_postfix::socketmap::{
    DaneMode, Decoder, LengthProblem, LookupKey, NetstringError, POSTFIX_MAX_REPLY, PolicyReply,
    Reply, Request, Skip, Trimmed, ZoneOptions, classify_key, dane_reply, encode, policy_reply,
    transient_reply,
};

macro_rules! cases {
    ($check:path; $( $name:ident : $input:expr => $expected:expr ; )*) => {
        $(
            #[test]
            fn $name() {
                $check($input, $expected);
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------
// Netstrings

/// Feeds `input` one byte at a time (the hardest split) and collects every frame, or the
/// first error.
fn decode_all(input: &[u8], max: usize) -> Result<Vec<Vec<u8>>, NetstringError> {
    let mut d = Decoder::new(max);
    let mut frames = Vec::new();
    for b in input {
        d.feed(std::slice::from_ref(b));
        while let Some(f) = d.next_frame()? {
            frames.push(f);
        }
    }
    // The same input in one piece must give the same result.
    let mut whole = Decoder::new(max);
    whole.feed(input);
    let mut again = Vec::new();
    while let Some(f) = whole.next_frame()? {
        again.push(f);
    }
    assert_eq!(frames, again, "byte-wise and whole decoding differ");
    Ok(frames)
}

fn check_decode(input: (&[u8], usize), expected: Result<Vec<&[u8]>, NetstringError>) {
    let expected = expected.map(|v| v.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
    assert_eq!(decode_all(input.0, input.1), expected);
}

cases! { check_decode;
    netstring_one_request: (b"20:postfix example.com.,", 1024) => Ok(vec![b"postfix example.com.".as_slice()]);
    netstring_empty_payload: (b"0:,", 1024) => Ok(vec![b"".as_slice()]);
    netstring_three_pipelined: (b"1:a,2:bb,3:ccc,", 1024) => Ok(vec![b"a".as_slice(), b"bb", b"ccc"]);
    netstring_incomplete_length_waits: (b"12", 1024) => Ok(vec![]);
    netstring_incomplete_payload_waits: (b"5:abc", 1024) => Ok(vec![]);
    netstring_payload_may_hold_commas_and_colons: (b"7:a,b:c,d,", 1024) => Ok(vec![b"a,b:c,d".as_slice()]);
    netstring_exactly_at_limit: (b"4:abcd,", 4) => Ok(vec![b"abcd".as_slice()]);
    netstring_over_limit_rejected_from_digits: (b"5:", 4) => Err(NetstringError::TooLong { len: 5, max: 4 });
    netstring_over_limit_before_colon: (b"2000", 1024) => Err(NetstringError::TooLong { len: 2000, max: 1024 });
    netstring_huge_length: (b"99999999999999999999999999:", 1024) => Err(NetstringError::TooLong { len: 9999, max: 1024 });
    netstring_bad_terminator: (b"13:test good.loc!", 1024) => Err(NetstringError::MissingComma { found: b'!' });
    netstring_non_digit_length: (b"1a:x,", 1024) => Err(NetstringError::BadLength(LengthProblem::NonDigit(b'a')));
    netstring_space_before_length: (b" 1:x,", 1024) => Err(NetstringError::BadLength(LengthProblem::NonDigit(b' ')));
    netstring_no_length_digits: (b":x,", 1024) => Err(NetstringError::BadLength(LengthProblem::Empty));
    netstring_leading_zero: (b"01:x,", 1024) => Err(NetstringError::BadLength(LengthProblem::LeadingZero));
    netstring_good_then_bad: (b"1:a,x", 1024) => Err(NetstringError::BadLength(LengthProblem::NonDigit(b'x')));
    netstring_http_request_is_bad_length: (b"GET /metrics HTTP/1.1\r\n", 1024) => Err(NetstringError::BadLength(LengthProblem::NonDigit(b'G')));
}

#[test]
fn netstring_error_is_sticky() {
    let mut d = Decoder::new(10);
    d.feed(b"1:a!");
    let e = d.next_frame();
    assert_eq!(e, Err(NetstringError::MissingComma { found: b'!' }));
    d.feed(b"1:b,");
    assert_eq!(d.next_frame(), e);
}

#[test]
fn netstring_error_kinds() {
    assert_eq!(
        NetstringError::BadLength(LengthProblem::Empty).kind(),
        "bad-length"
    );
    assert_eq!(
        NetstringError::TooLong { len: 5, max: 4 }.kind(),
        "too-long"
    );
    assert_eq!(
        NetstringError::MissingComma { found: b'x' }.kind(),
        "missing-comma"
    );
}

#[test]
fn netstring_encode() {
    assert_eq!(encode(b"NOTFOUND "), b"9:NOTFOUND ,");
    assert_eq!(encode(b""), b"0:,");
    assert_eq!(Reply::NotFound.encode(), b"9:NOTFOUND ,");
}

#[test]
fn netstring_round_trip_of_many_sizes() {
    for n in [0usize, 1, 9, 10, 99, 100, 1023, 1024] {
        let payload = vec![b'x'; n];
        let mut d = Decoder::new(1024);
        d.feed(&encode(&payload));
        assert_eq!(d.next_frame(), Ok(Some(payload)), "size {n}");
        assert_eq!(d.buffered(), 0);
    }
}

// ---------------------------------------------------------------------------------------
// Requests

fn check_request(payload: &[u8], expected: (&str, &str)) {
    let r = Request::parse(payload);
    assert_eq!((r.map.as_str(), r.key.as_str()), expected);
}

cases! { check_request;
    request_map_and_key: b"postfix example.com" => ("postfix", "example.com");
    request_key_with_spaces_kept_after_first: b"postfix a b" => ("postfix", "a b");
    request_without_space_has_empty_key: b"postfix" => ("postfix", "");
    request_empty: b"" => ("", "");
    request_invalid_utf8_is_replaced: b"postfix \xffexample.com" => ("postfix", "\u{fffd}example.com");
}

#[test]
fn request_through_decoder() {
    let mut d = Decoder::new(1024);
    d.feed(b"19:tlsrpt [mx.test]:25,");
    assert_eq!(
        d.next_request(),
        Ok(Some(Request {
            map: "tlsrpt".into(),
            key: "[mx.test]:25".into()
        }))
    );
}

// ---------------------------------------------------------------------------------------
// Key forms Postfix sends (smtp_tls_policy.c: next-hop as written, then parent probes)

fn domain(d: &str) -> LookupKey {
    LookupKey::Domain(d.to_owned())
}

fn check_key(key: &str, expected: LookupKey) {
    assert_eq!(classify_key(key), expected, "key {key:?}");
}

cases! { check_key;
    key_domain: "example.com" => domain("example.com");
    key_domain_trailing_dot: "example.com." => domain("example.com");
    key_upper_case: "EXAMPLE.Com" => domain("example.com");
    key_bracketed_host_with_port: "[mx.example.com]:587" => domain("mx.example.com");
    key_bracketed_host: "[mx.example.com]" => domain("mx.example.com");
    key_bracketed_host_trailing_dot: "[mx.example.com.]:25" => domain("mx.example.com");
    key_host_with_port: "host.example:587" => domain("host.example");
    key_host_with_service_name: "example.com:submission" => domain("example.com");
    key_u_label: "bücher.example" => domain("xn--bcher-kva.example");
    key_u_label_upper_case: "BÜCHER.example" => domain("xn--bcher-kva.example");
    key_a_label_kept: "xn--bcher-kva.example" => domain("xn--bcher-kva.example");
    key_surrounding_whitespace: "  example.com " => domain("example.com");
    key_parent_probe: ".example.com" => LookupKey::Skip(Skip::ParentProbe);
    key_parent_probe_tld: ".com" => LookupKey::Skip(Skip::ParentProbe);
    key_ipv4_literal: "[192.0.2.1]" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv4_literal_with_port: "[192.0.2.1]:25" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv4_bare: "192.0.2.1" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv4_bare_with_port: "192.0.2.1:25" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv6_tagged_literal: "[IPv6:2001:db8::1]" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv6_tagged_literal_lower_case: "[ipv6:2001:db8::1]:25" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv6_untagged_with_port: "[2001:db8::1]:25" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv6_peer_refdata: "[a:bb:ccc::dddd]:123" => LookupKey::Skip(Skip::IpLiteral);
    key_ipv6_bare: "2001:db8::1" => LookupKey::Skip(Skip::IpLiteral);
    key_empty: "" => LookupKey::Skip(Skip::Empty);
    key_only_dot: "." => LookupKey::Skip(Skip::ParentProbe);
    key_empty_brackets: "[]" => LookupKey::Skip(Skip::Empty);
    key_unclosed_bracket: "[mx.example.com" => LookupKey::Skip(Skip::Invalid(DomainError::InvalidChar { ch: '[' }));
    key_junk_after_bracket: "[mx.example.com]x" => LookupKey::Skip(Skip::Invalid(DomainError::InvalidChar { ch: ']' }));
    key_underscore: "a_b.example" => LookupKey::Skip(Skip::Invalid(DomainError::InvalidChar { ch: '_' }));
    key_double_dot: "a..example" => LookupKey::Skip(Skip::Invalid(DomainError::EmptyLabel));
    key_numeric_tld: "1.2.3" => LookupKey::Skip(Skip::Invalid(DomainError::NumericTld));
}

// ---------------------------------------------------------------------------------------
// Replies

const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";
const TESTING: &str = "version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 86400\n";
const NONE: &str = "version: STSv1\nmode: none\nmax_age: 86400\n";

fn policy(text: &str) -> Policy {
    Policy::parse(text.as_bytes()).unwrap_or_else(|e| panic!("test policy: {e:?}"))
}

fn opts(strict_testing: bool, require_sni: bool, tlsrpt: bool) -> ZoneOptions {
    ZoneOptions {
        strict_testing,
        require_sni,
        tlsrpt,
        ..ZoneOptions::default()
    }
}

fn check_reply(input: (&str, ZoneOptions), expected: &str) {
    let r = policy_reply("example.com", &policy(input.0), &input.1, POSTFIX_MAX_REPLY);
    assert_eq!(r.reply.payload(), expected);
    assert_eq!(r.trimmed, Trimmed::Nothing);
}

const ENF_TLSRPT: &str = " policy_type=sts policy_domain=example.com policy_ttl=604800 mx_host_pattern=mail.example.com mx_host_pattern=*.example.net mx_host_pattern=backupmx.example.com { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = mx: mail.example.com } { policy_string = mx: *.example.net } { policy_string = mx: backupmx.example.com } { policy_string = max_age: 604800 }";

cases! { check_reply;
    reply_enforce_default: (ENFORCE, ZoneOptions::default())
        => "OK secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname";
    reply_enforce_no_sni: (ENFORCE, opts(false, false, false))
        => "OK secure match=mail.example.com:.example.net:backupmx.example.com";
    reply_enforce_strict_testing_same_as_default: (ENFORCE, opts(true, true, false))
        => "OK secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname";
    reply_enforce_tlsrpt: (ENFORCE, opts(false, true, true))
        => &format!("OK secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname{ENF_TLSRPT}");
    reply_enforce_tlsrpt_no_sni: (ENFORCE, opts(false, false, true))
        => &format!("OK secure match=mail.example.com:.example.net:backupmx.example.com{ENF_TLSRPT}");
    reply_testing_default_is_notfound: (TESTING, ZoneOptions::default()) => "NOTFOUND ";
    reply_testing_tlsrpt_without_strict_is_notfound: (TESTING, opts(false, true, true)) => "NOTFOUND ";
    reply_testing_strict: (TESTING, opts(true, true, false))
        => "OK secure match=mail.example.com servername=hostname";
    reply_testing_strict_no_sni: (TESTING, opts(true, false, false))
        => "OK secure match=mail.example.com";
    reply_testing_strict_tlsrpt: (TESTING, opts(true, true, true))
        => "OK secure match=mail.example.com servername=hostname policy_type=sts policy_domain=example.com policy_ttl=86400 mx_host_pattern=mail.example.com { policy_string = version: STSv1 } { policy_string = mode: testing } { policy_string = mx: mail.example.com } { policy_string = max_age: 86400 }";
    reply_none_default: (NONE, ZoneOptions::default()) => "NOTFOUND ";
    reply_none_strict_tlsrpt: (NONE, opts(true, true, true)) => "NOTFOUND ";
    reply_wildcard_only: ("version: STSv1\nmode: enforce\nmx: *.MX.Example.NET\nmax_age: 1\n", opts(false, true, true))
        => "OK secure match=.mx.example.net servername=hostname policy_type=sts policy_domain=example.com policy_ttl=1 mx_host_pattern=*.mx.example.net { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = mx: *.mx.example.net } { policy_string = max_age: 1 }";
    reply_keeps_published_order: ("version: STSv1\nmode: enforce\nmx: z.example\nmx: a.example\nmx: m.example\nmax_age: 1\n", opts(false, false, false))
        => "OK secure match=z.example:a.example:m.example";
    reply_duplicate_patterns_once: ("version: STSv1\nmode: enforce\nmx: a.example\nmx: A.example\nmax_age: 1\n", opts(false, false, false))
        => "OK secure match=a.example";
    reply_u_label_pattern_as_a_label: ("version: STSv1\nmode: enforce\nmx: mx.bücher.example\nmax_age: 1\n", opts(false, false, false))
        => "OK secure match=mx.xn--bcher-kva.example";
    reply_tlsrpt_extension_lines_included: ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nfoo: bar baz\n", opts(false, false, true))
        => "OK secure match=a.example policy_type=sts policy_domain=example.com policy_ttl=1 mx_host_pattern=a.example { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = mx: a.example } { policy_string = max_age: 1 } { policy_string = foo: bar baz }";
}

#[test]
fn reply_tlsrpt_skips_lines_with_braces() {
    let p = policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nx: {evil}\n");
    let r = policy_reply(
        "example.com",
        &p,
        &opts(false, false, true),
        POSTFIX_MAX_REPLY,
    );
    assert_eq!(r.skipped_lines, 1);
    assert!(!r.reply.payload().contains("evil"));
    assert!(
        r.reply
            .payload()
            .ends_with("{ policy_string = max_age: 1 }")
    );
}

/// A policy whose full TLSRPT reply is just over `limit` but whose reply without the
/// `policy_string` attributes is not.
#[test]
fn reply_over_limit_drops_policy_strings() {
    let p = policy(ENFORCE);
    let full = policy_reply(
        "example.com",
        &p,
        &opts(false, true, true),
        POSTFIX_MAX_REPLY,
    );
    let full_len = full.reply.payload().len();
    let r = policy_reply("example.com", &p, &opts(false, true, true), full_len - 1);
    assert_eq!(r.trimmed, Trimmed::PolicyStrings);
    assert_eq!(
        r.reply.payload(),
        "OK secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname policy_type=sts policy_domain=example.com policy_ttl=604800 mx_host_pattern=mail.example.com mx_host_pattern=*.example.net mx_host_pattern=backupmx.example.com"
    );
    // At exactly the limit nothing is dropped.
    let r = policy_reply("example.com", &p, &opts(false, true, true), full_len);
    assert_eq!(r.trimmed, Trimmed::Nothing);
}

#[test]
fn reply_over_limit_drops_tlsrpt_then_temp() {
    let p = policy(ENFORCE);
    let bare =
        "OK secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname";
    let r = policy_reply("example.com", &p, &opts(false, true, true), bare.len() + 10);
    assert_eq!(r.trimmed, Trimmed::Tlsrpt);
    assert_eq!(r.reply.payload(), bare);
    let r = policy_reply("example.com", &p, &opts(false, true, true), bare.len() - 1);
    assert_eq!(r.trimmed, Trimmed::TooLarge);
    assert_eq!(r.reply.kind(), "temp");
    let r = policy_reply("example.com", &p, &opts(false, true, false), bare.len() - 1);
    assert_eq!(r.trimmed, Trimmed::TooLarge);
}

/// The largest policy the fetch accepts (64 KiB of `mx:` lines) stays within Postfix's limit.
#[test]
fn reply_for_a_64k_policy_fits_postfix_limit() {
    let mut text = String::from("version: STSv1\nmode: enforce\nmax_age: 86400\n");
    let mut i = 0;
    while text.len() < 64 * 1024 - 40 {
        text.push_str(&format!("mx: m{i}.example\n"));
        i += 1;
    }
    let p = policy(&text);
    for o in [opts(false, true, true), opts(false, true, false)] {
        let r = policy_reply("example.com", &p, &o, POSTFIX_MAX_REPLY);
        assert!(r.reply.payload().len() <= POSTFIX_MAX_REPLY);
        assert_eq!(r.reply.kind(), "ok");
        if o.tlsrpt {
            assert_ne!(r.trimmed, Trimmed::Nothing, "this policy needs trimming");
        }
    }
}

#[test]
fn reply_transient_default_is_notfound() {
    assert_eq!(
        transient_reply("example.com", "SERVFAIL", &ZoneOptions::default()).payload(),
        "NOTFOUND "
    );
}

#[test]
fn reply_transient_temp_on_dns_failure() {
    let o = ZoneOptions {
        temp_on_dns_failure: true,
        ..ZoneOptions::default()
    };
    assert_eq!(
        transient_reply("example.com", "DNS lookup failed: timed out", &o).payload(),
        "TEMP MTA-STS policy of example.com unknown for now: DNS lookup failed: timed out"
    );
}

#[test]
fn reply_temp_reason_sanitised_and_cut() {
    let long = format!("line1\r\nline2 {}", "é".repeat(300));
    let Reply::Temp(reason) = Reply::temp(&long) else {
        panic!("not a TEMP reply")
    };
    assert!(reason.len() <= 200);
    assert!(reason.starts_with("line1  line2 é"));
    assert!(!reason.chars().any(char::is_control));
}

#[test]
fn reply_kinds_and_payloads() {
    assert_eq!(Reply::Ok("x".into()).payload(), "OK x");
    assert_eq!(Reply::NotFound.payload(), "NOTFOUND ");
    assert_eq!(Reply::Temp("r".into()).payload(), "TEMP r");
    assert_eq!(Reply::Perm("r".into()).payload(), "PERM r");
    assert_eq!(Reply::Perm("r".into()).kind(), "perm");
}

#[test]
fn zone_options_defaults_match_the_peer() {
    let o: ZoneOptions = serde_json::from_str("{}").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o, ZoneOptions::default());
    assert!(!o.strict_testing && o.require_sni && !o.tlsrpt && !o.temp_on_dns_failure);
    assert_eq!(o.dane, DaneMode::Off, "DANE is opt-in (docs/daemon.md)");
    let on: ZoneOptions =
        serde_json::from_str(r#"{"dane": "on"}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(on.dane, DaneMode::On);
}

// ---- DANE first (RFC 8461 §2, RFC 7672): what Postfix is told, with each MTA-STS reply.

fn dane_check((decision, sts): (&str, &str), expected: &str) {
    let decision = match decision {
        "mandatory" => Decision::Mandatory,
        "opportunistic" => Decision::Opportunistic { insecure_mx: false },
        "opportunistic-insecure-mx" => Decision::Opportunistic { insecure_mx: true },
        "delay" => Decision::Delay {
            reason: "the DNSSEC lookup of mx1.example.com: SERVFAIL".into(),
            insecure_mx: false,
        },
        "delay-insecure-mx" => Decision::Delay {
            reason: "the DNSSEC lookup of mx1.example.com: SERVFAIL".into(),
            insecure_mx: true,
        },
        "not-applicable" => Decision::NotApplicable {
            reason: "no MX host has DNSSEC-validated TLSA records".into(),
        },
        other => panic!("no decision {other}"),
    };
    let tlsrpt = opts(false, true, true);
    let sts_reply = match sts {
        "enforce" => policy_reply("example.com", &policy(ENFORCE), &tlsrpt, POSTFIX_MAX_REPLY),
        "testing" => policy_reply("example.com", &policy(TESTING), &tlsrpt, POSTFIX_MAX_REPLY),
        "temp" => PolicyReply {
            reply: transient_reply(
                "example.com",
                "SERVFAIL",
                &ZoneOptions {
                    temp_on_dns_failure: true,
                    ..ZoneOptions::default()
                },
            ),
            trimmed: Trimmed::Nothing,
            skipped_lines: 0,
        },
        other => panic!("no STS reply {other}"),
    };
    let got = dane_reply("example.com", &decision, sts_reply)
        .reply
        .payload();
    // The MTA-STS reply is shown by its start only.
    let got = if got.starts_with("OK secure ") {
        "OK secure …".to_owned()
    } else {
        got
    };
    assert_eq!(got, expected);
}

cases! { dane_check;
    rfc8461_s2_dane_only_without_tlsrpt_attributes: ("mandatory", "enforce") => "OK dane-only";
    rfc8461_s2_dane_without_tlsrpt_attributes: ("opportunistic", "enforce") => "OK dane";
    rfc7672_s2_2_dane_only_beside_testing: ("mandatory", "testing") => "OK dane-only";
    rfc7672_s2_2_dane_known_while_sts_unknown: ("mandatory", "temp") => "OK dane-only";
    rfc7672_s2_1_2_dnssec_failure_is_temp_not_secure: ("delay", "enforce") => "TEMP DANE status of example.com unknown for now: the DNSSEC lookup of mx1.example.com: SERVFAIL";
    rfc7672_s2_1_2_dnssec_failure_is_temp_not_notfound: ("delay", "testing") => "TEMP DANE status of example.com unknown for now: the DNSSEC lookup of mx1.example.com: SERVFAIL";
    rfc7672_s2_2_1_insecure_mx_leaves_enforce_to_sts: ("opportunistic-insecure-mx", "enforce") => "OK secure …";
    rfc7672_s2_2_1_insecure_mx_without_enforce_gives_dane: ("opportunistic-insecure-mx", "testing") => "OK dane";
    rfc7672_s2_2_1_failure_under_insecure_mx_leaves_enforce_to_sts: ("delay-insecure-mx", "enforce") => "OK secure …";
    rfc8461_s2_no_dane_is_the_sts_reply: ("not-applicable", "enforce") => "OK secure …";
    rfc8461_s2_no_dane_keeps_notfound: ("not-applicable", "testing") => "NOTFOUND ";
    rfc8461_s2_no_dane_keeps_temp: ("not-applicable", "temp") => "TEMP MTA-STS policy of example.com unknown for now: SERVFAIL";
}
