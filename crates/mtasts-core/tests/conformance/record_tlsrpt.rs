//! RFC 8460 §3: the `_smtp._tls` TXT record.

use mtasts_core::Diagnostic;
use mtasts_core::tlsrpt::record::{ReportUri, TlsRptRecord, parse_report_uri};

/// `Ok(number of rua URIs)` or `Err(code)`.
fn check(txt: &str, expected: Result<usize, &str>) {
    let got = TlsRptRecord::parse(txt.as_bytes());
    match (&got, expected) {
        (Ok(r), Ok(n)) => assert_eq!(r.rua.len(), n, "record {txt:?}"),
        (Err(e), Err(code)) => assert_eq!(e.code(), code, "record {txt:?}: {e}"),
        _ => panic!("record {txt:?}: expected {expected:?}, got {got:?}"),
    }
}

cases! { check;
    rfc8460_s3_mailto: "v=TLSRPTv1; rua=mailto:reports@example.com" => Ok(1);
    rfc8460_s3_https: "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt" => Ok(1);
    rfc8460_s3_two_uris: "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/x" => Ok(2);
    rfc8460_s3_wsp_around_comma: "v=TLSRPTv1; rua=mailto:a@example.com , mailto:b@example.net" => Ok(2);
    rfc8460_s3_trailing_delimiter: "v=TLSRPTv1; rua=mailto:a@example.com;" => Ok(1);
    rfc8460_s3_no_space: "v=TLSRPTv1;rua=mailto:a@example.com" => Ok(1);
    rfc8460_s3_missing_rua: "v=TLSRPTv1;" => Err("tlsrpt.record.missing-rua");
    rfc8460_s3_version_only: "v=TLSRPTv1" => Err("tlsrpt.record.missing-rua");
    rfc8460_s3_rua_key_case_sensitive: "v=TLSRPTv1; RUA=mailto:a@example.com" => Err("tlsrpt.record.missing-rua");
    rfc8460_s3_duplicate_rua: "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com" => Err("tlsrpt.record.duplicate-rua");
    rfc8460_s3_empty_rua: "v=TLSRPTv1; rua=" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_empty_uri_in_list: "v=TLSRPTv1; rua=mailto:a@example.com,,mailto:b@example.com" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_raw_bang_rejected: "v=TLSRPTv1; rua=mailto:a!b@example.com" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_encoded_bang_ok: "v=TLSRPTv1; rua=mailto:a%21b@example.com" => Ok(1);
    rfc8460_s3_encoded_comma_ok: "v=TLSRPTv1; rua=mailto:a%2Cb@example.com" => Ok(1);
    rfc8460_s3_bad_percent_rejected: "v=TLSRPTv1; rua=mailto:a%2@example.com" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_space_in_uri_rejected: "v=TLSRPTv1; rua=mailto:a b@example.com" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_no_scheme_rejected: "v=TLSRPTv1; rua=reports@example.com" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_mailto_without_at_rejected: "v=TLSRPTv1; rua=mailto:example.com" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_mailto_bad_domain_rejected: "v=TLSRPTv1; rua=mailto:a@exa_mple.com" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_https_without_host_rejected: "v=TLSRPTv1; rua=https:/path" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_https_with_port_ok: "v=TLSRPTv1; rua=https://r.example.com:8443/x" => Ok(1);
    rfc8460_s3_https_bad_port_rejected: "v=TLSRPTv1; rua=https://r.example.com:99999/x" => Err("tlsrpt.record.invalid-uri");
    rfc8460_s3_scheme_case_insensitive: "v=TLSRPTv1; rua=MAILTO:a@example.com" => Ok(1);
    rfc8460_s3_only_unsupported_scheme: "v=TLSRPTv1; rua=ftp://r.example.com/" => Err("tlsrpt.record.no-supported-uri");
    rfc8460_s3_unsupported_next_to_supported: "v=TLSRPTv1; rua=ftp://r.example.com/,mailto:a@example.com" => Ok(2);
    rfc8460_s3_extension_ignored: "v=TLSRPTv1; rua=mailto:a@example.com; ext=1" => Ok(1);
    rfc8460_s3_extension_bad_value: "v=TLSRPTv1; rua=mailto:a@example.com; ext=a=b" => Err("tlsrpt.record.invalid-field-value");
    rfc8460_s3_version_case_sensitive: "v=tlsrptv1; rua=mailto:a@example.com" => Err("tlsrpt.record.not-tlsrpt");
    rfc8460_s3_version_must_be_first: "rua=mailto:a@example.com; v=TLSRPTv1" => Err("tlsrpt.record.not-tlsrpt");
    rfc8460_s3_missing_delimiter: "v=TLSRPTv1 rua=mailto:a@example.com" => Err("tlsrpt.record.missing-delimiter");
    rfc8460_s3_empty_field: "v=TLSRPTv1;; rua=mailto:a@example.com" => Err("tlsrpt.record.empty-field");
    rfc8460_s3_non_ascii: "v=TLSRPTv1; rua=mailto:a@b\u{fc}cher.example" => Err("tlsrpt.record.not-ascii");
}

#[test]
fn rfc8460_s3_uri_kinds_are_decoded() {
    match parse_report_uri("mailto:tls%2Dreports@Example.COM") {
        Ok(ReportUri::Mailto {
            address, domain, ..
        }) => {
            assert_eq!(address, "tls-reports@Example.COM");
            assert_eq!(domain, "example.com");
        }
        other => panic!("{other:?}"),
    }
    match parse_report_uri("https://user@Reports.Example.net:443/a?b#c") {
        Ok(ReportUri::Https { host, .. }) => assert_eq!(host, "reports.example.net"),
        other => panic!("{other:?}"),
    }
}
