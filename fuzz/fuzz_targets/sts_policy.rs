#![no_main]
//! The policy parser and linter must never panic, and a valid policy must round-trip.
use libfuzzer_sys::fuzz_target;
use mtasts_core::sts::policy::{Policy, lint_policy};

fuzz_target!(|data: &[u8]| {
    let lint = lint_policy(data);
    if let Some(p) = lint.policy {
        let again = Policy::parse(p.to_text().as_bytes()).expect("canonical text parses");
        assert_eq!(p, again);
    }
});
