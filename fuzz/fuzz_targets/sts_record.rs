#![no_main]
//! The `_mta-sts` TXT record parser and RRset selection must never panic, and a record that
//! is not `v=STSv1` is reported as of another kind (`StsRecord::parse` documentation).
use libfuzzer_sys::fuzz_target;
use mtasts_core::Diagnostic;
use mtasts_core::sts::record::{
    RecordError, StsRecord, is_sts_record, select_sts_record, select_sts_record_linted,
};

fuzz_target!(|data: &[u8]| {
    match StsRecord::parse_with_warnings(data) {
        Ok((r, warnings)) => {
            let _ = r.to_string();
            for w in &warnings {
                let _ = (w.to_string(), w.code(), w.hint());
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.code(), e.hint(), e.location());
        }
    }
    if !is_sts_record(data) {
        assert_eq!(StsRecord::parse(data), Err(RecordError::NotStsRecord));
    }
    // Split the input into records and strings at 0x00 / 0x01 to exercise joining.
    let rrset: Vec<Vec<&[u8]>> = data
        .split(|b| *b == 0)
        .map(|r| r.split(|b| *b == 1).collect())
        .collect();
    let selected = select_sts_record(&rrset);
    if let Err(e) = &selected {
        let _ = (e.to_string(), e.code(), e.hint());
    }
    let linted = select_sts_record_linted(&rrset);
    assert_eq!(linted.map(|(_, r, _)| r), selected, "linted and plain selection agree");
});
