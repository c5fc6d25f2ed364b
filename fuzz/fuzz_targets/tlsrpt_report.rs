#![no_main]
//! The TLS-RPT payload detector (JSON, gzip, e-mail) and report parser must never panic, and
//! whatever they read must read back unchanged from its normalised JSON: the module
//! documentation of `tlsrpt::report` says `parse_report(to_json(r)) == r` for every parsed
//! report.
use libfuzzer_sys::fuzz_target;
use mtasts_core::tlsrpt::payload::parse_payload;
use mtasts_core::tlsrpt::report::{Report, ReportLimits, parse_report};

const LIMITS: ReportLimits = ReportLimits {
    max_input_bytes: 1 << 20,
    max_decompressed_bytes: 4 << 20,
    max_policies: 256,
    max_failure_details: 4096,
    max_json_values: 200_000,
};

fn round_trip(report: &Report) {
    let normalised = report.to_json().to_string();
    let again = parse_report(normalised.as_bytes(), &ReportLimits::DEFAULT)
        .expect("normalised JSON must parse");
    assert_eq!(&again.report, report, "round trip of {normalised}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_report(data, &LIMITS) {
        let _ = parsed.has_errors();
        round_trip(&parsed.report);
    }
    if let Ok(received) = parse_payload(data, &LIMITS) {
        round_trip(&received.report);
    }
});
