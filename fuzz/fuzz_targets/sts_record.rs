#![no_main]
//! The `_mta-sts` TXT record parser and RRset selection must never panic.
use libfuzzer_sys::fuzz_target;
use mtasts_core::sts::record::{StsRecord, select_sts_record};

fuzz_target!(|data: &[u8]| {
    let _ = StsRecord::parse(data);
    // Split the input into records and strings at 0x00 / 0x01 to exercise joining.
    let rrset: Vec<Vec<&[u8]>> = data
        .split(|b| *b == 0)
        .map(|r| r.split(|b| *b == 1).collect())
        .collect();
    let _ = select_sts_record(&rrset);
});
