#![no_main]
//! The `_smtp._tls` TXT record parser must never panic.
use libfuzzer_sys::fuzz_target;
use mtasts_core::tlsrpt::record::TlsRptRecord;

fuzz_target!(|data: &[u8]| {
    let _ = TlsRptRecord::parse(data);
});
