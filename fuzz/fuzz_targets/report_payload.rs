#![no_main]
//! Reading a TLS-RPT report from its delivery form (`tlsrpt::payload::parse_payload`: plain
//! JSON, gzip, or an e-mail with the report in a base64 or gzip part, nested messages
//! included) must never panic under small limits, and:
//!
//! - a report read must read back unchanged from its normalised JSON (`tlsrpt::report`:
//!   `parse_report(to_json(r)) == r` for every parsed report);
//! - input detected as JSON reads as `parse_report` reads it (the kind is told from the
//!   content, and JSON is the report itself).
use libfuzzer_sys::fuzz_target;
use mtasts_core::Diagnostic;
use mtasts_core::tlsrpt::payload::{PayloadKind, detect, extract, parse_payload};
use mtasts_core::tlsrpt::report::{ReportLimits, parse_report};

const LIMITS: ReportLimits = ReportLimits {
    max_input_bytes: 1 << 20,
    max_decompressed_bytes: 1 << 20,
    max_policies: 64,
    max_failure_details: 512,
    max_json_values: 20_000,
};

fuzz_target!(|data: &[u8]| {
    let kind = detect(data);
    if let Ok(x) = extract(data, &LIMITS) {
        assert_eq!(x.source.kind, kind, "extract and detect disagree");
    }
    match parse_payload(data, &LIMITS) {
        Ok(mut received) => {
            let normalised = received.report.to_json().to_string();
            let again = parse_report(normalised.as_bytes(), &ReportLimits::DEFAULT)
                .expect("normalised JSON must parse");
            assert_eq!(again.report, received.report, "round trip of {normalised}");
            if kind == PayloadKind::Json {
                let direct = parse_report(data, &LIMITS).expect("JSON payload parses as JSON");
                assert_eq!(direct.report, received.report);
                assert_eq!(direct.findings, received.report_findings);
            }
            // A file name taken from the input: the first line.
            let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
            let name = String::from_utf8_lossy(&line[..line.len().min(300)]).into_owned();
            received.check_filename(&name);
            for f in received.findings() {
                let _ = f;
            }
            let _ = received.has_errors();
        }
        Err(e) => {
            let _ = (e.to_string(), e.code(), e.hint(), e.location());
            if kind == PayloadKind::Json && data.len() <= LIMITS.max_input_bytes {
                assert!(parse_report(data, &LIMITS).is_err(), "JSON payload failed, JSON parsed");
            }
        }
    }
});
