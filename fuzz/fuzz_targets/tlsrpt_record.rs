#![no_main]
//! The `_smtp._tls` TXT record parser, the `rua` URI parser and RRset selection must never
//! panic.
use libfuzzer_sys::fuzz_target;
use mtasts_core::Diagnostic;
use mtasts_core::tlsrpt::record::{
    TlsRptRecord, parse_report_uri, select_tlsrpt_record, select_tlsrpt_record_linted,
};

fuzz_target!(|data: &[u8]| {
    match TlsRptRecord::parse_with_warnings(data) {
        Ok((r, warnings)) => {
            let _ = r.to_string();
            for u in &r.rua {
                let _ = (u.as_str(), u.is_supported());
            }
            for w in &warnings {
                let _ = (w.to_string(), w.code(), w.hint());
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.code(), e.hint(), e.location());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for uri in text.split(',') {
            if let Err(e) = parse_report_uri(uri.trim()) {
                let _ = e.to_string();
            }
        }
    }
    // Split the input into records and strings at 0x00 / 0x01 to exercise joining.
    let rrset: Vec<Vec<&[u8]>> = data
        .split(|b| *b == 0)
        .map(|r| r.split(|b| *b == 1).collect())
        .collect();
    let selected = select_tlsrpt_record(&rrset);
    if let Err(e) = &selected {
        let _ = (e.to_string(), e.code(), e.hint());
    }
    let linted = select_tlsrpt_record_linted(&rrset);
    assert_eq!(linted.map(|(_, r, _)| r), selected, "linted and plain selection agree");
});
