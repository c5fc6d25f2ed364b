#![no_main]
//! The policy parser and linter must never panic, and a valid policy must round-trip:
//! `Policy::to_text` documents that `Policy::parse` of its result gives back an equal policy.
use libfuzzer_sys::fuzz_target;
use mtasts_core::sts::policy::{Policy, lint_policy};

fuzz_target!(|data: &[u8]| {
    let lint = lint_policy(data);
    let _ = lint.findings();
    if let Some(p) = lint.policy {
        let text = p.to_text();
        let again = Policy::parse(text.as_bytes()).expect("canonical text parses");
        assert_eq!(p, again, "round trip of {text:?}");
        for m in &p.mx {
            let _ = p.allows_mx(m.base());
        }
    }
});
