#![no_main]
//! The RFC 8460 §5.1 report filename parser must never panic, and what it accepts must format
//! back to a name that parses to the same value.
use libfuzzer_sys::fuzz_target;
use mtasts_core::tlsrpt::filename::ReportFilename;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = ReportFilename::parse(name) {
        assert_eq!(ReportFilename::parse(&parsed.to_string()), Ok(parsed));
    }
});
