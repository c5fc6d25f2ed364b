#![no_main]
//! The Content-Type parser must never panic.
use libfuzzer_sys::fuzz_target;
use mtasts_core::sts::fetch::{MediaType, check_media_type};

fuzz_target!(|data: &str| {
    if let Some(m) = MediaType::parse(data) {
        let _ = m.param("charset");
    }
    if let Err(e) = check_media_type(Some(data)) {
        let _ = e.to_string();
    }
});
