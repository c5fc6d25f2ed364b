//! RFC 8461 §3.1 and RFC 8460 §3: choosing the record from a TXT RRset.

use mtasts_core::Diagnostic;
use mtasts_core::sts::record::select_sts_record;
use mtasts_core::tlsrpt::record::select_tlsrpt_record;

/// Each record is a list of character-strings.
fn check_sts(rrset: &[&[&str]], expected: Result<&str, &str>) {
    let got = select_sts_record(rrset);
    match (&got, expected) {
        (Ok(r), Ok(id)) => assert_eq!(r.id, id),
        (Err(e), Err(code)) => assert_eq!(e.code(), code, "{e}"),
        _ => panic!("expected {expected:?}, got {got:?}"),
    }
}

fn check_rpt(rrset: &[&[&str]], expected: Result<usize, &str>) {
    let got = select_tlsrpt_record(rrset);
    match (&got, expected) {
        (Ok(r), Ok(n)) => assert_eq!(r.rua.len(), n),
        (Err(e), Err(code)) => assert_eq!(e.code(), code, "{e}"),
        _ => panic!("expected {expected:?}, got {got:?}"),
    }
}

cases! { check_sts;
    rfc8461_s3_1_empty_rrset_no_record: &[] => Err("sts.record.none");
    rfc8461_s3_1_single_record: &[&["v=STSv1; id=1"]] => Ok("1");
    rfc8461_s3_1_split_strings_joined_without_space: &[&["v=STSv1; id=12", "34"]] => Ok("1234");
    rfc8461_s3_1_split_inside_version_tag: &[&["v=ST", "Sv1; id=9"]] => Ok("9");
    rfc8461_s3_1_other_records_discarded: &[&["v=spf1 -all"], &["v=STSv1; id=1"], &["google-site-verification=x"]] => Ok("1");
    rfc8461_s3_1_two_sts_records_no_policy: &[&["v=STSv1; id=1"], &["v=STSv1; id=2"]] => Err("sts.record.multiple");
    rfc8461_s3_1_two_identical_records_still_two: &[&["v=STSv1; id=1"], &["v=STSv1; id=1"]] => Err("sts.record.multiple");
    rfc8461_s3_1_one_valid_one_invalid_is_two: &[&["v=STSv1; id=1"], &["v=STSv1; id=bad-id"]] => Err("sts.record.multiple");
    rfc8461_s3_1_only_other_kinds: &[&["v=spf1 -all"]] => Err("sts.record.none");
    rfc8461_s3_1_lowercase_version_discarded: &[&["v=stsv1; id=1"]] => Err("sts.record.none");
    rfc8461_s3_1_single_invalid_record: &[&["v=STSv1; id="]] => Err("sts.record.invalid-id");
    rfc8461_s3_1_wrong_case_discarded_leaves_valid: &[&["V=STSv1; id=1"], &["v=STSv1; id=2"]] => Ok("2");
}

cases! { check_rpt;
    rfc8460_s3_single_record: &[&["v=TLSRPTv1; rua=mailto:r@example.com"]] => Ok(1);
    rfc8460_s3_split_strings_joined: &[&["v=TLSRPTv1; rua=mailto:r@exa", "mple.com"]] => Ok(1);
    rfc8460_s3_two_records_rejected: &[&["v=TLSRPTv1; rua=mailto:a@example.com"], &["v=TLSRPTv1; rua=mailto:b@example.com"]] => Err("tlsrpt.record.multiple");
    rfc8460_s3_sts_record_discarded: &[&["v=STSv1; id=1"], &["v=TLSRPTv1; rua=https://r.example/"]] => Ok(1);
    rfc8460_s3_none: &[&["v=spf1 -all"]] => Err("tlsrpt.record.none");
}
