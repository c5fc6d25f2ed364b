//! Property tests for TLS-RPT reports: the payload detector and the report parser never panic
//! (arbitrary bytes, arbitrary JSON, mutated corpus reports), parse → normalised JSON → parse
//! gives back the same report, and the §5.1 filename round-trips through format and parse.
// The core does no I/O; its tests read their fixtures.
#![allow(clippy::disallowed_methods)]

use flate2::Compression;
use flate2::write::GzEncoder;
use mtasts_core::Diagnostic;
use mtasts_core::tlsrpt::filename::{Extension, ReportFilename};
use mtasts_core::tlsrpt::payload::parse_payload;
use mtasts_core::tlsrpt::report::{Report, ReportLimits, parse_report, parse_report_value};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Small limits, so that generated inputs reach them too.
fn limits() -> ReportLimits {
    ReportLimits {
        max_input_bytes: 64 * 1024,
        max_decompressed_bytes: 256 * 1024,
        max_policies: 16,
        max_failure_details: 64,
        max_json_values: 100_000,
    }
}

/// Reading the normalised JSON of `r` gives `r` back, and normalising again changes nothing.
fn assert_round_trip(r: &Report) {
    let first = r.to_json();
    let bytes = serde_json::to_vec(&first).expect("serialise");
    let again = parse_report(&bytes, &ReportLimits::default()).expect("normalised JSON parses");
    assert_eq!(&again.report, r, "{first:#}");
    assert_eq!(again.report.to_json(), first);
}

/// Every JSON report in the corpus.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tlsrpt");
        let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
        tsv.lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next())
            .filter(|f| f.ends_with(".json"))
            .map(|f| std::fs::read(dir.join(f)).expect("corpus file"))
            .collect()
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

#[derive(Clone, Debug)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (
            any::<usize>(),
            prop::sample::select(b"{}[]\",:0-9 \\nule".to_vec())
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Replace(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x = b;
                }
            }
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i, n) => {
                let start = i % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
        }
    }
    bytes
}

const KEYS: &[&str] = &[
    "organization-name",
    "date-range",
    "start-datetime",
    "end-datetime",
    "contact-info",
    "report-id",
    "policies",
    "policy",
    "summary",
    "failure-details",
    "policy-type",
    "policy-string",
    "policy-domain",
    "mx-host",
    "mx-host-pattern",
    "total-successful-session-count",
    "total-failure-session-count",
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "failed-session-count",
    "additional-information",
    "additional-info-uri",
    "failure-reason-code",
    "failure-error-code",
];

const STRINGS: &[&str] = &[
    "",
    "sts",
    "tlsa",
    "no-policy-found",
    "certificate-expired",
    "validation-failure",
    "2016-04-01T00:00:00Z",
    "2024-03-26T00:00:00",
    "2016-04-01T02:00:00+02:00",
    "2016-04-01T00:00:00.123Z",
    "not a date",
    "example.com",
    "bücher.example",
    "*.mail.example.com",
    "mx: mx.example.com",
    "[\"3 1 1 AA\",\"3 1 1 BB\"]",
    "192.0.2.1",
    "2001:db8::1",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z-]{1,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The RFC 8460 example (erratum form), varied by a few edits drawn from the variants seen in
/// the wild, so that most generated reports parse and exercise the normalisation.
fn varied_report() -> impl Strategy<Value = Value> {
    let edit = (0usize..EDITS.len(), leaf());
    prop::collection::vec(edit, 0..8).prop_map(|edits| {
        let mut v = base();
        for (i, random) in edits {
            let (ptr, new) = &EDITS[i];
            let new = match new {
                Edit::Set(s) => Some(serde_json::from_str(s).expect("edit JSON")),
                Edit::Remove => None,
                Edit::Random => Some(random),
            };
            apply(&mut v, ptr, new);
        }
        v
    })
}

enum Edit {
    Set(&'static str),
    Remove,
    Random,
}

static EDITS: &[(&str, Edit)] = &[
    ("/contact-info", Edit::Set("null")),
    ("/contact-info", Edit::Remove),
    ("/organization-name", Edit::Remove),
    ("/report-id", Edit::Random),
    ("/x-extra", Edit::Random),
    (
        "/date-range/start-datetime",
        Edit::Set("\"2024-03-26T00:00:00\""),
    ),
    (
        "/date-range/end-datetime",
        Edit::Set("\"2016-04-02T01:00:00+01:00\""),
    ),
    (
        "/date-range/end-datetime",
        Edit::Set("\"2016-03-01T00:00:00Z\""),
    ),
    ("/date-range/x-extra", Edit::Random),
    (
        "/policies/0/policy/mx-host",
        Edit::Set("\"*.mail.company-y.example\""),
    ),
    (
        "/policies/0/policy/mx-host",
        Edit::Set("[\"mx: mx.company-y.example\"]"),
    ),
    ("/policies/0/policy/mx-host", Edit::Remove),
    (
        "/policies/0/policy/mx-host-pattern",
        Edit::Set("\"*.example.net\""),
    ),
    (
        "/policies/0/policy/policy-string",
        Edit::Set("\"[\\\"3 1 1 AA\\\"]\""),
    ),
    (
        "/policies/0/policy/policy-string",
        Edit::Set("[\"[\\\"3 1 1 AA\\\"]\"]"),
    ),
    (
        "/policies/0/policy/policy-type",
        Edit::Set("\"invalid-policy-type\""),
    ),
    ("/policies/0/policy/policy-domain", Edit::Remove),
    ("/policies/0/policy/policy-domain", Edit::Set("null")),
    ("/policies/0/policy/x-extra", Edit::Random),
    (
        "/policies/0/summary/total-failure-session-count",
        Edit::Remove,
    ),
    (
        "/policies/0/summary/total-failure-session-count",
        Edit::Set("1"),
    ),
    ("/policies/0/summary/x-extra", Edit::Random),
    ("/policies/0/failure-details", Edit::Remove),
    ("/policies/0/failure-details", Edit::Set("[]")),
    ("/policies/0/x-extra", Edit::Random),
    (
        "/policies/0/failure-details/0/sending-mta-ip",
        Edit::Set("\"\""),
    ),
    ("/policies/0/failure-details/0/sending-mta-ip", Edit::Remove),
    (
        "/policies/0/failure-details/0/receiving-mx-hostname",
        Edit::Remove,
    ),
    (
        "/policies/0/failure-details/0/result-type",
        Edit::Set("\"certificate-revoked\""),
    ),
    (
        "/policies/0/failure-details/0/failure-error-code",
        Edit::Set("\"X509\""),
    ),
    (
        "/policies/0/failure-details/0/failure-reason-code",
        Edit::Set("\"R\""),
    ),
    (
        "/policies/0/failure-details/0/additional-info-uri",
        Edit::Set("\"https://x\""),
    ),
    ("/policies/0/failure-details/0/x-extra", Edit::Random),
    ("/policies/0/failure-details/0/receiving-ip", Edit::Random),
];

fn base() -> Value {
    json!({
        "organization-name": "Company-X",
        "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
        "contact-info": "sts-reporting@company-x.example",
        "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
        "policies": [{
            "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
                       "policy-domain": "company-y.example", "mx-host": ["*.mail.company-y.example"]},
            "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
            "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "2001:db8:abcd:0012::1",
                "receiving-mx-hostname": "mx1.mail.company-y.example", "failed-session-count": 100}]
        }]
    })
}

fn apply(v: &mut Value, ptr: &str, new: Option<Value>) {
    let Some((parent, key)) = ptr.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(m)) = v.pointer_mut(parent) {
        match new {
            Some(n) => {
                m.insert(key.to_string(), n);
            }
            None => {
                m.shift_remove(key);
            }
        }
    }
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?".prop_filter("no ACE prefix", |l: &String| {
        !l.starts_with("xn--") && !l.contains("--")
    })
}

fn domain() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..4), "[a-z]{2,6}")
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn payload_detector_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_payload(&bytes, &limits());
        let _ = parse_report(&bytes, &limits());
    }

    #[test]
    fn payload_detector_never_panics_on_framed_noise(
        prefix in prop::sample::select(vec![
            b"{".to_vec(), vec![0x1f, 0x8b], vec![0x1f, 0x8b, 0x08, 0x00],
            b"From: a@example.com\r\nContent-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec(),
            b"Subject: x\r\nContent-Type: application/tlsrpt+json\r\n\r\n".to_vec(),
        ]),
        rest in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let bytes = [prefix, rest].concat();
        let _ = parse_payload(&bytes, &limits());
    }

    #[test]
    fn report_parser_never_panics_on_strings(s in "\\PC{0,512}") {
        let _ = parse_report(s.as_bytes(), &limits());
    }

    #[test]
    fn arbitrary_json_never_panics_and_round_trips(v in value()) {
        let bytes = serde_json::to_vec(&v).expect("serialise");
        if let Ok(p) = parse_report(&bytes, &limits()) {
            assert_round_trip(&p.report);
        }
        let _ = parse_report_value(&v, &limits());
    }

    #[test]
    fn varied_reports_parse_and_round_trip(v in varied_report()) {
        let bytes = serde_json::to_vec(&v).expect("serialise");
        match parse_report(&bytes, &limits()) {
            Ok(p) => assert_round_trip(&p.report),
            // The edits only ever make a member the wrong type (a random value where a string,
            // count or datetime belongs), never something the reader cannot name.
            Err(e) => prop_assert!(
                matches!(
                    e.code(),
                    "tlsrpt.report.wrong-type"
                        | "tlsrpt.report.not-a-count"
                        | "tlsrpt.report.invalid-datetime"
                ),
                "{e}"
            ),
        }
    }

    #[test]
    fn mutated_corpus_never_panics_and_round_trips(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
        compress in any::<bool>(),
    ) {
        let corpus = corpus();
        let original = corpus[which.index(corpus.len())].clone();
        let mutated = mutate(original, &mutations);
        let input = if compress { gzip(&mutated) } else { mutated };
        if let Ok(r) = parse_payload(&input, &limits()) {
            assert_round_trip(&r.report);
        }
    }

    #[test]
    fn filename_format_then_parse_round_trips(
        sender in domain(),
        policy_domain in domain(),
        begin in any::<u64>(),
        span in any::<u64>(),
        id in proptest::option::of("[A-Za-z0-9]{1,20}"),
        gz in any::<bool>(),
    ) {
        let f = ReportFilename {
            sender,
            policy_domain,
            begin,
            end: begin.saturating_add(span),
            unique_id: id,
            extension: if gz { Extension::JsonGz } else { Extension::Json },
        };
        prop_assert_eq!(ReportFilename::parse(&f.to_string()), Ok(f));
    }

    #[test]
    fn filename_parser_never_panics(s in "\\PC{0,80}") {
        if let Ok(f) = ReportFilename::parse(&s) {
            prop_assert_eq!(ReportFilename::parse(&f.to_string()), Ok(f));
        }
    }
}

#[test]
fn corpus_reports_round_trip_plain_and_gzipped() {
    for bytes in corpus() {
        let plain = parse_payload(bytes, &ReportLimits::default()).expect("corpus parses");
        assert_round_trip(&plain.report);
        let gz = parse_payload(&gzip(bytes), &ReportLimits::default()).expect("gzip parses");
        assert_eq!(gz.report, plain.report);
    }
}
