#![no_main]
//! The RFC 8460 §5.1 report filename parser must never panic, and what it accepts must format
//! back to a name that parses to the same value.
use libfuzzer_sys::fuzz_target;
use mtasts_core::Diagnostic;
use mtasts_core::tlsrpt::filename::ReportFilename;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    match ReportFilename::parse(name) {
        Ok(parsed) => {
            let _ = (parsed.validate(), parsed.begin_time(), parsed.end_time());
            let text = parsed.to_string();
            assert_eq!(ReportFilename::parse(&text), Ok(parsed), "round trip of {text:?}");
        }
        Err(e) => {
            let _ = (e.to_string(), e.code(), e.hint());
        }
    }
});
