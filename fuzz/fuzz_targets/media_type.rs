#![no_main]
//! The Content-Type parser must never panic.
use libfuzzer_sys::fuzz_target;
use mtasts_core::sts::fetch::{MediaType, check_media_type};

fuzz_target!(|data: &str| {
    let _ = MediaType::parse(data);
    let _ = check_media_type(Some(data));
});
