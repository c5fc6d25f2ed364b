//! RFC 8461 §3.2/§3.3: the policy fetch response (status, media type, size).

use mtasts_core::Diagnostic;
use mtasts_core::sts::fetch::{
    FetchLimits, PolicyResponse, check_media_type, check_status, evaluate_response, policy_url,
};

const GOOD: &[u8] =
    b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400\r\n";

fn check_status_case(status: u16, expected: Result<(), &str>) {
    match (
        check_status(status, Some("https://elsewhere.example/")),
        expected,
    ) {
        (Ok(()), Ok(())) => {}
        (Err(e), Err(code)) => assert_eq!(e.code(), code, "status {status}: {e}"),
        (got, _) => panic!("status {status}: expected {expected:?}, got {got:?}"),
    }
}

fn check_media(ct: Option<&str>, ok: bool) {
    assert_eq!(check_media_type(ct).is_ok(), ok, "content-type {ct:?}");
}

/// `(content_length, body_len)` against the default 64 KiB limit.
fn check_size((declared, body_len): (Option<u64>, usize), expected: Result<(), &str>) {
    // The policy plus one long extension line (ignored by senders) to reach the size wanted.
    let mut body = GOOD.to_vec();
    if body_len > GOOD.len() + 3 {
        body.extend_from_slice(b"x: ");
        body.resize(body_len, b'a');
    }
    let resp = PolicyResponse {
        status: 200,
        location: None,
        content_type: Some("text/plain"),
        content_length: declared,
        body: &body,
    };
    let got = evaluate_response(&resp, &FetchLimits::default());
    match (&got, expected) {
        (Ok(_), Ok(())) => {}
        (Err(e), Err(code)) => assert_eq!(e.code(), code, "{e}"),
        _ => panic!("expected {expected:?}, got {got:?}"),
    }
}

cases! { check_status_case;
    rfc8461_s3_3_status_200_ok: 200 => Ok(());
    rfc8461_s3_3_status_201_rejected: 201 => Err("sts.fetch.status");
    rfc8461_s3_3_status_204_rejected: 204 => Err("sts.fetch.status");
    rfc8461_s3_3_status_203_rejected: 203 => Err("sts.fetch.status");
    rfc8461_s3_3_status_301_redirect_not_followed: 301 => Err("sts.fetch.redirect");
    rfc8461_s3_3_status_302_redirect_not_followed: 302 => Err("sts.fetch.redirect");
    rfc8461_s3_3_status_307_redirect_not_followed: 307 => Err("sts.fetch.redirect");
    rfc8461_s3_3_status_308_redirect_not_followed: 308 => Err("sts.fetch.redirect");
    rfc8461_s3_3_status_304_not_modified_rejected: 304 => Err("sts.fetch.redirect");
    rfc8461_s3_3_status_404_rejected: 404 => Err("sts.fetch.status");
    rfc8461_s3_3_status_500_rejected: 500 => Err("sts.fetch.status");
    rfc8461_s3_3_status_100_rejected: 100 => Err("sts.fetch.status");
}

cases! { check_media;
    rfc8461_s3_2_media_text_plain: Some("text/plain") => true;
    rfc8461_s3_2_media_text_plain_utf8: Some("text/plain; charset=utf-8") => true;
    rfc8461_s3_2_media_text_plain_us_ascii: Some("text/plain; charset=us-ascii") => true;
    rfc8461_s3_2_media_case_insensitive: Some("Text/Plain; Charset=UTF-8") => true;
    rfc8461_s3_2_media_quoted_charset: Some("text/plain; charset=\"utf-8\"") => true;
    rfc8461_s3_2_media_other_params_ignored: Some("text/plain; format=flowed; charset=utf-8") => true;
    rfc8461_s3_2_media_no_space_before_param: Some("text/plain;charset=utf-8") => true;
    rfc8461_s3_2_media_latin1_rejected: Some("text/plain; charset=iso-8859-1") => false;
    rfc8461_s3_2_media_text_html_rejected: Some("text/html") => false;
    rfc8461_s3_2_media_octet_stream_rejected: Some("application/octet-stream") => false;
    rfc8461_s3_2_media_missing_rejected: None => false;
    rfc8461_s3_2_media_empty_rejected: Some("") => false;
    rfc8461_s3_2_media_no_subtype_rejected: Some("text") => false;
    rfc8461_s3_2_media_text_plainx_rejected: Some("text/plainx") => false;
    rfc8461_s3_2_media_unterminated_quote_rejected: Some("text/plain; charset=\"utf-8") => false;
}

cases! { check_size;
    rfc8461_s3_3_body_at_64k_ok: (None, 65536) => Ok(());
    rfc8461_s3_3_body_over_64k_rejected: (None, 65537) => Err("sts.fetch.body-too-large");
    rfc8461_s3_3_declared_64k_ok: (Some(65536), 65536) => Ok(());
    rfc8461_s3_3_declared_over_64k_rejected: (Some(65537), 200) => Err("sts.fetch.body-too-large");
    rfc8461_s3_3_small_body_ok: (Some(69), 69) => Ok(());
}

#[test]
fn rfc8461_s3_3_redirect_reports_location() {
    let e = check_status(302, Some("https://www.example.com/mta-sts.txt")).expect_err("redirect");
    assert!(
        e.to_string()
            .contains("https://www.example.com/mta-sts.txt"),
        "{e}"
    );
}

#[test]
fn rfc8461_s3_2_wrong_media_type_tolerated_when_configured() {
    let resp = PolicyResponse {
        status: 200,
        location: None,
        content_type: Some("text/html"),
        content_length: None,
        body: GOOD,
    };
    let strict = FetchLimits::default();
    assert_eq!(
        evaluate_response(&resp, &strict)
            .map(|_| ())
            .map_err(|e| e.code()),
        Err("sts.fetch.media-type")
    );
    let lenient = FetchLimits {
        require_text_plain: false,
        ..FetchLimits::default()
    };
    let (_, warning) = evaluate_response(&resp, &lenient).expect("accepted");
    assert!(warning.is_some());
}

#[test]
fn rfc8461_s3_3_invalid_policy_body_is_a_fetch_failure() {
    let resp = PolicyResponse {
        status: 200,
        location: None,
        content_type: Some("text/plain"),
        content_length: None,
        body: b"<html>oops</html>",
    };
    let e = evaluate_response(&resp, &FetchLimits::default()).expect_err("invalid");
    assert_eq!(e.code(), "sts.policy.missing-colon");
}

#[test]
fn rfc8461_s3_2_policy_url_from_domain() {
    assert_eq!(
        policy_url("example.com."),
        "https://mta-sts.example.com/.well-known/mta-sts.txt"
    );
}
