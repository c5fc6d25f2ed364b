//! RFC 8461 §3.1: the `_mta-sts` TXT record, one record at a time.

use mtasts_core::Diagnostic;
use mtasts_core::sts::record::StsRecord;

/// `Ok(id)` for a valid record, `Err(code)` otherwise.
fn check(txt: &str, expected: Result<&str, &str>) {
    let got = StsRecord::parse(txt.as_bytes());
    match (&got, expected) {
        (Ok(r), Ok(id)) => assert_eq!(r.id, id, "record {txt:?}"),
        (Err(e), Err(code)) => assert_eq!(e.code(), code, "record {txt:?}: {e}"),
        _ => panic!("record {txt:?}: expected {expected:?}, got {got:?}"),
    }
}

cases! { check;
    rfc8461_s3_1_minimal_record: "v=STSv1; id=1" => Ok("1");
    rfc8461_s3_1_trailing_delimiter_allowed: "v=STSv1; id=20160831085700Z;" => Ok("20160831085700Z");
    rfc8461_s3_1_no_space_after_delimiter: "v=STSv1;id=abc" => Ok("abc");
    rfc8461_s3_1_wsp_before_delimiter: "v=STSv1 ;id=abc" => Ok("abc");
    rfc8461_s3_1_tabs_around_delimiter: "v=STSv1\t;\tid=abc\t;" => Ok("abc");
    rfc8461_s3_1_trailing_wsp_after_last_delimiter: "v=STSv1; id=abc;  " => Ok("abc");
    rfc8461_s3_1_id_1_char_ok: "v=STSv1; id=a" => Ok("a");
    rfc8461_s3_1_id_32_chars_ok: "v=STSv1; id=abcdefghijklmnopqrstuvwxyz012345" => Ok("abcdefghijklmnopqrstuvwxyz012345");
    rfc8461_s3_1_id_33_chars_rejected: "v=STSv1; id=abcdefghijklmnopqrstuvwxyz0123456" => Err("sts.record.invalid-id");
    rfc8461_s3_1_id_empty_rejected: "v=STSv1; id=" => Err("sts.record.invalid-id");
    rfc8461_s3_1_id_with_dash_rejected: "v=STSv1; id=2024-01-01" => Err("sts.record.invalid-id");
    rfc8461_s3_1_id_with_dot_rejected: "v=STSv1; id=1.2" => Err("sts.record.invalid-id");
    rfc8461_s3_1_id_with_underscore_rejected: "v=STSv1; id=a_b" => Err("sts.record.invalid-id");
    rfc8461_s3_1_id_mixed_case_ok: "v=STSv1; id=AbC123" => Ok("AbC123");
    rfc8461_s3_1_id_space_inside_rejected: "v=STSv1; id=ab cd" => Err("sts.record.invalid-id");
    rfc8461_s3_1_id_missing: "v=STSv1;" => Err("sts.record.missing-id");
    rfc8461_s3_1_version_only: "v=STSv1" => Err("sts.record.missing-id");
    rfc8461_s3_1_id_key_case_sensitive: "v=STSv1; ID=123" => Err("sts.record.missing-id");
    rfc8461_s3_1_duplicate_id_rejected: "v=STSv1; id=1; id=2" => Err("sts.record.duplicate-id");
    rfc8461_s3_1_extension_ignored: "v=STSv1; id=1; foo=bar" => Ok("1");
    rfc8461_s3_1_extension_before_id: "v=STSv1; ext=1; id=2" => Ok("2");
    rfc8461_s3_1_extension_name_32_chars_ok: "v=STSv1; id=1; abcdefghijklmnopqrstuvwxyz012345=x" => Ok("1");
    rfc8461_s3_1_extension_name_33_chars_rejected: "v=STSv1; id=1; abcdefghijklmnopqrstuvwxyz0123456=x" => Err("sts.record.invalid-field-name");
    rfc8461_s3_1_extension_name_with_dot_dash_underscore: "v=STSv1; id=1; a.b-c_d=x" => Ok("1");
    rfc8461_s3_1_extension_name_leading_dash_rejected: "v=STSv1; id=1; -a=x" => Err("sts.record.invalid-field-name");
    rfc8461_s3_1_extension_empty_value_rejected: "v=STSv1; id=1; foo=" => Err("sts.record.invalid-field-value");
    rfc8461_s3_1_extension_value_with_equals_rejected: "v=STSv1; id=1; foo=a=b" => Err("sts.record.invalid-field-value");
    rfc8461_s3_1_extension_value_with_space_rejected: "v=STSv1; id=1; foo=a b" => Err("sts.record.invalid-field-value");
    rfc8461_s3_1_extension_value_punctuation_ok: "v=STSv1; id=1; foo=a:b<c>~!" => Ok("1");
    rfc8461_s3_1_field_without_equals_rejected: "v=STSv1; id=1; foo" => Err("sts.record.field-without-value");
    rfc8461_s3_1_empty_field_rejected: "v=STSv1;; id=1" => Err("sts.record.empty-field");
    rfc8461_s3_1_two_trailing_delimiters_rejected: "v=STSv1; id=1;;" => Err("sts.record.empty-field");
    rfc8461_s3_1_missing_delimiter_after_version: "v=STSv1 id=1" => Err("sts.record.missing-delimiter");
    rfc8461_s3_1_version_case_sensitive: "v=stsv1; id=1" => Err("sts.record.not-sts");
    rfc8461_s3_1_version_2_is_other_kind: "v=STSv2; id=1" => Err("sts.record.not-sts");
    rfc8461_s3_1_version_prefix_only: "v=STSv10; id=1" => Err("sts.record.not-sts");
    rfc8461_s3_1_version_must_come_first: "id=1; v=STSv1" => Err("sts.record.not-sts");
    rfc8461_s3_1_leading_space_not_sts: " v=STSv1; id=1" => Err("sts.record.not-sts");
    rfc8461_s3_1_spf_record_not_sts: "v=spf1 -all" => Err("sts.record.not-sts");
    rfc8461_s3_1_non_ascii_rejected: "v=STSv1; id=1; x=\u{e9}" => Err("sts.record.not-ascii");
    rfc8461_s3_1_space_around_equals_rejected: "v=STSv1; id = 1" => Err("sts.record.invalid-field-name");
    rfc8461_s3_1_id_value_with_semicolon_ends_field: "v=STSv1; id=ab;cd=1" => Ok("ab");
    rfc8461_s3_1_numeric_id: "v=STSv1; id=20250101000000" => Ok("20250101000000");
}

#[test]
fn rfc8461_s3_1_extensions_kept_in_order() {
    let r = StsRecord::parse(b"v=STSv1; a=1; id=x; b=2;").expect("valid");
    assert_eq!(
        r.extensions,
        vec![("a".into(), "1".into()), ("b".into(), "2".into())]
    );
    assert_eq!(r.to_string(), "v=STSv1; id=x; a=1; b=2;");
}
