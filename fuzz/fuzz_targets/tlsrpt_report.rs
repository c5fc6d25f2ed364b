#![no_main]
//! The TLS-RPT payload detector (JSON, gzip, e-mail) and report parser must never panic, and
//! whatever they read must read back unchanged from its normalised JSON.
use libfuzzer_sys::fuzz_target;
use mtasts_core::tlsrpt::payload::parse_payload;
use mtasts_core::tlsrpt::report::{ReportLimits, parse_report};

fuzz_target!(|data: &[u8]| {
    let limits = ReportLimits {
        max_input_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
        max_policies: 256,
        max_failure_details: 4096,
    };
    let _ = parse_report(data, &limits);
    if let Ok(received) = parse_payload(data, &limits) {
        let normalised = received.report.to_json().to_string();
        let again = parse_report(normalised.as_bytes(), &ReportLimits::default())
            .expect("normalised JSON must parse");
        assert_eq!(again.report, received.report, "round trip");
    }
});
