#![no_main]
//! MX pattern parsing and matching must never panic.
use libfuzzer_sys::fuzz_target;
use mtasts_core::sts::mx::MxPattern;

fuzz_target!(|data: &str| {
    let (pattern, host) = data.split_once('\n').unwrap_or((data, data));
    if let Ok(p) = MxPattern::parse(pattern) {
        let _ = p.matches(host);
    }
});
