//! Property tests: the MTA-STS parsers never panic, and parse → print → parse round-trips.

use mtasts_core::sts::mx::MxPattern;
use mtasts_core::sts::policy::{Policy, lint_policy};
use mtasts_core::sts::record::{StsRecord, select_sts_record};
use mtasts_core::tlsrpt::record::TlsRptRecord;
use proptest::prelude::*;

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
        .prop_filter("an xn-- label must be valid Punycode", |l: &String| {
            !l.starts_with("xn--")
        })
}

fn domain() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..4), "[a-z]{2,6}")
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

fn pattern() -> impl Strategy<Value = String> {
    (any::<bool>(), domain()).prop_map(|(w, d)| if w { format!("*.{d}") } else { d })
}

fn policy_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["enforce", "testing", "none"]),
        0u32..=31_557_600,
        prop::collection::vec(pattern(), 1..5),
        any::<bool>(),
    )
        .prop_map(|(mode, age, mx, crlf)| {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut s = format!("version: STSv1{nl}mode: {mode}{nl}");
            for m in mx {
                s.push_str(&format!("mx: {m}{nl}"));
            }
            s.push_str(&format!("max_age: {age}{nl}"));
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn policy_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = lint_policy(&bytes);
        let _ = Policy::parse(&bytes);
    }

    #[test]
    fn policy_parser_never_panics_on_near_policies(text in "(version|mode|mx|max_age|x)[: \t]{0,3}[ -~\u{e9}\u{fc}*.]{0,30}(\r?\n(version|mode|mx|max_age)[: ]{0,2}[ -~*.]{0,30}){0,6}") {
        let _ = lint_policy(text.as_bytes());
    }

    #[test]
    fn policy_round_trips(text in policy_text()) {
        let p = Policy::parse(text.as_bytes()).expect("generated policies are valid");
        let again = Policy::parse(p.to_text().as_bytes()).expect("canonical text is valid");
        prop_assert_eq!(p, again);
    }

    #[test]
    fn record_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = StsRecord::parse(&bytes);
        let _ = TlsRptRecord::parse(&bytes);
        let _ = select_sts_record(&[vec![bytes.clone()], vec![bytes[..bytes.len() / 2].to_vec()]]);
    }

    #[test]
    fn record_parsers_never_panic_near_records(text in "v=(STSv1|TLSRPTv1)[ ;\t]{0,3}([a-z]{1,4}=[ -~]{0,20}[ ;]{0,2}){0,4}") {
        let _ = StsRecord::parse(text.as_bytes());
        let _ = TlsRptRecord::parse(text.as_bytes());
    }

    #[test]
    fn sts_record_round_trips(id in "[A-Za-z0-9]{1,32}", ext in prop::collection::vec(("[a-z][a-z0-9_.-]{0,8}", "[!-:<>-~]{1,10}"), 0..3)) {
        let mut text = format!("v=STSv1; id={id};");
        for (k, v) in &ext {
            if k != "id" {
                text.push_str(&format!(" {k}={v};"));
            }
        }
        let r = StsRecord::parse(text.as_bytes()).expect("generated record is valid");
        let again = StsRecord::parse(r.to_string().as_bytes()).expect("canonical record is valid");
        prop_assert_eq!(r, again);
    }

    #[test]
    fn tlsrpt_record_round_trips(dom in domain(), local in "[a-z0-9.+-]{1,10}", https in any::<bool>()) {
        let uri = if https { format!("https://{dom}/tlsrpt") } else { format!("mailto:{local}@{dom}") };
        let text = format!("v=TLSRPTv1; rua={uri}");
        let r = TlsRptRecord::parse(text.as_bytes()).expect("generated record is valid");
        let again = TlsRptRecord::parse(r.to_string().as_bytes()).expect("canonical record is valid");
        prop_assert_eq!(r, again);
    }

    #[test]
    fn mx_pattern_never_panics_and_round_trips(text in "[*.a-zA-Z0-9\u{fc}-]{0,40}") {
        if let Ok(p) = MxPattern::parse(&text) {
            let again = MxPattern::parse(&p.to_string()).expect("canonical pattern is valid");
            prop_assert_eq!(&p, &again);
            let _ = p.matches(&text);
        }
    }

    #[test]
    fn wildcard_matches_exactly_one_label(first in label(), second in label(), base in domain()) {
        let p = MxPattern::parse(&format!("*.{base}")).expect("valid");
        let one = format!("{first}.{base}");
        let two = format!("{first}.{second}.{base}");
        prop_assert!(p.matches(&one));
        prop_assert!(!p.matches(&base));
        prop_assert!(!p.matches(&two));
    }
}
