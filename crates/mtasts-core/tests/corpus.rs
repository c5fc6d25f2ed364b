//! Every real report in `tests/data/tlsrpt` (see its SOURCES.md) through the payload detector:
//! the counts in `expected.tsv`, and nothing dropped on the way to the normalised JSON.
// The core does no I/O; its tests read their fixtures.
#![allow(clippy::disallowed_methods)]

use mtasts_core::tlsrpt::payload::{self, PayloadKind, ReceivedReport};
use mtasts_core::tlsrpt::report::{ReportLimits, parse_report};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tlsrpt")
}

struct Row {
    file: String,
    policies: usize,
    total_successful: u64,
    total_failure: u64,
    result_types: BTreeSet<String>,
    failure_details_sum: u64,
    payload: String,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(data_dir().join("expected.tsv")).expect("expected.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    assert_eq!(
        &header[..7],
        [
            "file",
            "policies",
            "total_successful",
            "total_failure",
            "result_types",
            "failure_details_sum",
            "payload"
        ]
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let num = |i: usize| c[i].parse::<u64>().expect("a number");
            Row {
                file: c[0].to_string(),
                policies: num(1) as usize,
                total_successful: num(2),
                total_failure: num(3),
                result_types: if c[4] == "-" {
                    BTreeSet::new()
                } else {
                    c[4].split(',').map(str::to_string).collect()
                },
                failure_details_sum: num(5),
                payload: c[6].to_string(),
            }
        })
        .collect()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn received(file: &str) -> ReceivedReport {
    payload::parse_payload(&read(file), &ReportLimits::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_row_of_expected_tsv_matches() {
    let rows = rows();
    assert!(rows.len() >= 40, "only {} rows", rows.len());
    for row in &rows {
        let r = received(&row.file);
        let f = &row.file;
        assert_eq!(r.report.policies.len(), row.policies, "{f}: policies");
        assert_eq!(
            r.report.total_successful(),
            row.total_successful,
            "{f}: successful"
        );
        assert_eq!(r.report.total_failure(), row.total_failure, "{f}: failure");
        let types: BTreeSet<String> = r
            .report
            .result_types()
            .into_iter()
            .map(|t| t.as_str().to_string())
            .collect();
        assert_eq!(types, row.result_types, "{f}: result types");
        assert_eq!(
            r.report.failure_details_sum(),
            row.failure_details_sum,
            "{f}: failure details sum"
        );
        let kind = if row.payload.starts_with("eml:") {
            PayloadKind::Email
        } else if row.payload.starts_with("gzip") {
            PayloadKind::Gzip
        } else {
            PayloadKind::Json
        };
        assert_eq!(r.source.kind, kind, "{f}: payload kind");
        assert_eq!(r.source.gzip, row.payload.contains("gzip"), "{f}: gzip");
        if let Some(media) = row.payload.strip_prefix("eml:") {
            let media = media.split_whitespace().next().unwrap_or_default();
            let meta = r.source.email.as_ref().expect("e-mail metadata");
            assert_eq!(meta.content_type, media, "{f}: media type");
        }
        // A summary that disagrees with its details is a warning, never silent.
        let mismatch = r
            .report_findings
            .iter()
            .any(|x| mtasts_core::Diagnostic::code(x) == "tlsrpt.report.summary-mismatch");
        assert_eq!(
            mismatch,
            row.total_failure != row.failure_details_sum,
            "{f}: summary-mismatch finding"
        );
    }
}

/// The names the parser reads under their RFC name (documented aliases).
const ALIASES: [(&str, &str); 3] = [
    ("failure-error-code", "failure-reason-code"),
    ("additional-info-uri", "additional-information"),
    ("mx-host-pattern", "mx-host"),
];

fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let k = ALIASES
                    .iter()
                    .find(|(old, _)| old == k)
                    .map_or(k.as_str(), |(_, new)| new);
                out.insert(k.to_string());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn input_json(file: &str) -> Value {
    let limits = ReportLimits::default();
    let extracted = payload::extract(&read(file), &limits).expect("extract");
    serde_json::from_slice(&extracted.json).expect("json")
}

#[test]
fn nothing_is_dropped_on_the_way_to_normalised_json() {
    for row in rows() {
        let f = &row.file;
        let input = input_json(f);
        let output = received(f).report.to_json();
        let (mut want, mut have) = (BTreeSet::new(), BTreeSet::new());
        keys(&input, &mut want);
        keys(&output, &mut have);
        let dropped: Vec<_> = want.difference(&have).collect();
        assert!(dropped.is_empty(), "{f}: dropped {dropped:?}");
    }
}

#[test]
fn normalised_json_reads_back_to_the_same_report() {
    let limits = ReportLimits::default();
    for row in rows() {
        let f = &row.file;
        let r = received(f).report;
        let text = serde_json::to_vec(&r.to_json()).expect("serialise");
        let again = parse_report(&text, &limits).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(again.report, r, "{f}");
    }
}

/// RFC 8460's example report in the form erratum 6241 gives it: parse, normalise, and the
/// result is the input, member for member.
#[test]
fn rfc_example_in_erratum_form_survives_normalisation_unchanged() {
    for f in [
        "stalwartlabs__mail-auth/rpt01.json",
        "phi-ag__mta-sts-exporter/rfc-errata-6241.json",
        "cry-inc__dmarc-report-viewer/rfc-example.json",
    ] {
        let input: Value = serde_json::from_slice(&read(f)).expect("json");
        let r = received(f);
        assert_eq!(r.report.to_json(), input, "{f}");
        assert!(!r.has_errors(), "{f}: {:?}", r.findings());
    }
}

#[test]
fn email_metadata_is_read_and_compared_with_the_body() {
    let r = received("domainaware__parsedmarc/google.com_smtp_tls_report.eml");
    let meta = r.source.email.as_ref().expect("e-mail");
    assert_eq!(meta.tls_report_domain.as_deref(), Some("cardinalhealth.ca"));
    assert_eq!(meta.tls_report_submitter.as_deref(), Some("google.com"));
    assert_eq!(
        meta.filename.as_deref(),
        Some("google.com!cardinalhealth.ca!1725321600!1725407999!001.json.gz")
    );
    assert!(
        meta.subject.as_deref().is_some_and(
            |s| s.starts_with("Report Domain: cardinalhealth.ca Submitter: google.com")
        ),
        "{meta:?}"
    );
    // Headers, subject and filename all agree with this body.
    assert!(r.payload_findings.is_empty(), "{:?}", r.payload_findings);

    // The RFC's sample e-mail names example.net in its headers and company-y.example in the body.
    let r = received("stalwartlabs__mail-auth/rpt01.eml");
    let codes: Vec<&str> = r
        .payload_findings
        .iter()
        .map(mtasts_core::Diagnostic::code)
        .collect();
    assert!(codes.contains(&"tlsrpt.email.domain-mismatch"), "{codes:?}");
    assert!(
        codes.contains(&"tlsrpt.filename.policy-domain-mismatch"),
        "{codes:?}"
    );
}
