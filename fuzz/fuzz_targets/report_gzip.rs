#![no_main]
//! gzip-compressed reports (RFC 8460 §5.2): the input, gzip-compressed here with flate2 (in one
//! or two members), must decompress to itself, and read as the uncompressed JSON reads.
//!
//! - `payload::gunzip(gz, limit)` documents: all members decompressed, an error as soon as the
//!   output would exceed `limit` (so `Ok(input)` exactly when `input.len() <= limit`);
//! - `parse_payload(gz)` finds gzip from the content and reads the decompressed JSON, so its
//!   report and findings are those of `parse_report(input)`; and a report read round-trips
//!   through its normalised JSON.
//!
//! Input layout: byte 0 is the control byte (bits 0-3: compression level % 10, bits 4-6: where
//! to split the input into two members, in eighths, bit 7: two members); the rest is the
//! content. Truncated and bit-flipped gzip is fed too, to exercise corrupt-stream errors.
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use mtasts_core::tlsrpt::payload::{PayloadError, PayloadKind, gunzip, parse_payload};
use mtasts_core::tlsrpt::report::{ReportLimits, parse_report};

const LIMITS: ReportLimits = ReportLimits {
    max_input_bytes: 1 << 20,
    max_decompressed_bytes: 1 << 20,
    max_policies: 64,
    max_failure_details: 512,
    max_json_values: 20_000,
};

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(level));
    enc.write_all(bytes).expect("write to a Vec");
    enc.finish().expect("finish a Vec")
}

fuzz_target!(|data: &[u8]| {
    let [ctl, content @ ..] = data else {
        return;
    };
    let level = u32::from(ctl & 0x0f) % 10;
    let mut gz = if ctl & 0x80 != 0 {
        let at = content.len() * usize::from((ctl >> 4) & 7) / 8;
        let mut two = gzip(&content[..at], level);
        two.extend_from_slice(&gzip(&content[at..], level));
        two
    } else {
        gzip(content, level)
    };

    let n = content.len();
    assert_eq!(gunzip(&gz, n).as_deref(), Ok(content), "gunzip at the exact size");
    assert_eq!(gunzip(&gz, n + 1).as_deref(), Ok(content), "gunzip under the limit");
    if n > 0 {
        assert_eq!(
            gunzip(&gz, n - 1),
            Err(PayloadError::DecompressedTooLarge { limit: n - 1 }),
            "gunzip over the limit"
        );
    }

    let direct = parse_report(content, &LIMITS);
    match parse_payload(&gz, &LIMITS) {
        Ok(received) => {
            assert_eq!(received.source.kind, PayloadKind::Gzip);
            assert!(received.source.gzip);
            let direct = direct.expect("gzip payload read, its JSON did not");
            assert_eq!(direct.report, received.report);
            assert_eq!(direct.findings, received.report_findings);
            let normalised = received.report.to_json().to_string();
            let again = parse_report(normalised.as_bytes(), &ReportLimits::DEFAULT)
                .expect("normalised JSON must parse");
            assert_eq!(again.report, received.report, "round trip of {normalised}");
        }
        Err(e) => {
            if gz.len() <= LIMITS.max_input_bytes {
                assert!(direct.is_err(), "JSON read, its gzip did not: {e}");
            }
        }
    }

    // Corrupt streams: truncated, and one byte flipped (chosen by the content).
    let _ = gunzip(&gz[..gz.len() / 2], LIMITS.max_decompressed_bytes);
    if let Some(&b) = content.first() {
        let i = usize::from(b) * 7 % gz.len();
        gz[i] ^= 1 << (b % 8);
        let _ = gunzip(&gz, LIMITS.max_decompressed_bytes);
        let _ = parse_payload(&gz, &LIMITS);
    }
});
