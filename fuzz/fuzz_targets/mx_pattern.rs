#![no_main]
//! MX pattern parsing and matching must never panic. A parsed pattern is in canonical form and
//! reads back from its text as the same pattern (`Policy::to_text` writes patterns with
//! `Display` and documents that parsing its output gives back an equal policy), and
//! `find_match` agrees with `matches`.
use libfuzzer_sys::fuzz_target;
use mtasts_core::domain;
use mtasts_core::sts::mx::{MxPattern, find_match};

fuzz_target!(|data: &str| {
    let (pattern, host) = data.split_once('\n').unwrap_or((data, data));
    let _ = domain::to_a_label(host);
    match MxPattern::parse(pattern) {
        Ok(p) => {
            let text = p.to_string();
            assert_eq!(MxPattern::parse(&text).as_ref(), Ok(&p), "pattern {text:?}");
            let m = p.matches(host);
            let found = find_match(std::slice::from_ref(&p), host);
            assert_eq!(found.is_some(), m, "find_match and matches disagree on {host:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
