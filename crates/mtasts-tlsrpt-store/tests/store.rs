//! The store's behaviour, the same suite against both backends: every test is an `async fn`
//! taking a [`Ctx`] (a freshly opened store, and how to reach its database), run by
//! [`both!`] once on SQLite (a file in a temporary directory) and once on PostgreSQL (its own
//! database in one throwaway cluster per test process, [`PgCluster::shared`]).

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use mtasts_core::tlsrpt::payload::parse_payload;
use mtasts_core::tlsrpt::report::{Report, ReportLimits, parse_report};
use mtasts_test_support::postgres::PgCluster;
use mtasts_tlsrpt_store::{
    Count, DaySummary, Filter, NewReport, OrgCount, PutOutcome, QuarantineReason, RawInput,
    ReportKey, SeenPolicy, Store, StoreError, Trust, Via,
};

// --- the harness -----------------------------------------------------------------------------

/// A store under test.
struct Ctx {
    url: String,
    store: Store,
    /// The SQLite file, or the PostgreSQL database's name.
    db: Db,
    _dir: Option<tempfile::TempDir>,
}

enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Ctx {
    async fn sqlite() -> Ctx {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.db");
        let url = format!("sqlite:{}", path.display());
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        Ctx {
            url,
            store,
            db: Db::Sqlite(path),
            _dir: Some(dir),
        }
    }

    /// `None` (after a note) when PostgreSQL is not installed and CI is not set.
    async fn postgres(test: &str) -> Option<Ctx> {
        let cluster = PgCluster::shared()?;
        let name = format!("t_{test}");
        cluster.create_database(&name);
        let url = cluster.url(&name);
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        Some(Ctx {
            url,
            store,
            db: Db::Postgres(name),
            _dir: None,
        })
    }

    /// Opens the same database again.
    async fn reopen(&self) -> Result<Store, StoreError> {
        Store::open(&self.url).await
    }

    /// Runs SQL on the database behind the store's back.
    fn exec(&self, sql: &str) {
        match &self.db {
            Db::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Db::Postgres(name) => {
                PgCluster::shared().unwrap().psql(name, sql);
            }
        }
    }
}

/// Runs `async fn $name(Ctx)` on both backends, as `$name::sqlite` and `$name::postgres`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Ctx::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(ctx) = super::Ctx::postgres(stringify!($name)).await {
                    super::$name(ctx).await;
                }
            }
        }
    )*};
}

both!(
    put_raw_dedupe,
    put_report_then_duplicate,
    report_without_key_is_keyed_by_raw_sha256,
    unknown_ids_are_not_found,
    trust_upgrade_and_set_trust,
    quarantine_is_idempotent_listed_and_released,
    corpus_summary_matches_expected,
    summary_breakdowns,
    summary_filters,
    history_rows,
    prune_removes_old_and_unreferenced,
    newer_schema_is_refused,
    reopening_keeps_everything,
    concurrent_puts_store_once,
    large_report_is_stored_whole,
    corrupt_rows_are_named,
    kill9_then_rerun_stores_each_report_once,
);

// --- helpers ---------------------------------------------------------------------------------

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn parse(json: &str) -> Report {
    parse_report(json.as_bytes(), &ReportLimits::default())
        .unwrap()
        .report
}

fn raw<'a>(bytes: &'a [u8], received_at: &str, via: Via, origin: &'a str) -> RawInput<'a> {
    RawInput {
        bytes,
        received_at: at(received_at),
        via,
        origin,
    }
}

/// Puts `json` as a raw input and its report with `trust`, received at `received_at`.
async fn put_json(
    s: &Store,
    json: &str,
    received_at: &str,
    trust: Trust,
    dkim: Option<&str>,
) -> (i64, PutOutcome) {
    let report = parse(json);
    // Mailed reports are the ones verified or not; the others are files.
    let via = match trust {
        Trust::Verified | Trust::Unverified => Via::Imap,
        Trust::Https => Via::Https,
        Trust::Operator => Via::File,
    };
    let raw_id = s
        .put_raw(&raw(json.as_bytes(), received_at, via, "test"))
        .await
        .unwrap();
    let outcome = s
        .put_report(&NewReport {
            raw_id,
            report: &report,
            via,
            trust,
            dkim_domain: dkim,
            received_at: at(received_at),
        })
        .await
        .unwrap();
    (raw_id, outcome)
}

fn stored_id(o: PutOutcome) -> i64 {
    match o {
        PutOutcome::Stored { id } => id,
        other => panic!("expected Stored, got {other:?}"),
    }
}

fn count(name: &str, count: u64) -> Count {
    Count {
        name: name.into(),
        count,
    }
}

fn everything() -> Filter {
    Filter {
        include_unverified: true,
        ..Filter::default()
    }
}

/// A report: `policies` is the JSON of the `policies` array.
fn report_json(org: &str, id: &str, start: &str, policies: &str) -> String {
    format!(
        r#"{{"organization-name": "{org}", "date-range": {{"start-datetime": "{start}T00:00:00Z",
           "end-datetime": "{start}T23:59:59Z"}}, "contact-info": "tlsrpt@{org}.example",
           "report-id": "{id}", "policies": {policies}}}"#
    )
}

/// One `sts` policy entry of `domain` with `mode`, the mx lines `mx`, the summary counts and
/// the failure details' JSON.
fn sts(domain: &str, mode: &str, mx: &[&str], ok: u64, failed: u64, details: &str) -> String {
    let mut lines = vec!["\"version: STSv1\"".to_owned(), format!("\"mode: {mode}\"")];
    lines.extend(mx.iter().map(|m| format!("\"mx: {m}\"")));
    lines.push("\"max_age: 86400\"".into());
    let hosts: Vec<String> = mx.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        r#"{{"policy": {{"policy-type": "sts", "policy-string": [{}], "policy-domain": "{domain}",
            "mx-host": [{}]}},
            "summary": {{"total-successful-session-count": {ok}, "total-failure-session-count": {failed}}},
            "failure-details": [{details}]}}"#,
        lines.join(", "),
        hosts.join(", ")
    )
}

fn detail(result: &str, ip: &str, mx: Option<&str>, n: u64, reason: Option<&str>) -> String {
    let mut s = format!(
        r#"{{"result-type": "{result}", "sending-mta-ip": "{ip}", "failed-session-count": {n}"#
    );
    if let Some(mx) = mx {
        s.push_str(&format!(r#", "receiving-mx-hostname": "{mx}""#));
    }
    if let Some(r) = reason {
        s.push_str(&format!(r#", "failure-reason-code": "{r}""#));
    }
    s.push('}');
    s
}

/// The hand-made reports (see `summary_breakdowns` for what they add up to).
struct HandMade {
    a: String,
    b: String,
    c: String,
    d: String,
    e: String,
    unverified: String,
}

fn hand_made() -> HandMade {
    let enforce_mx = ["mx1.example.com", "*.example.net"];
    let a = report_json(
        "Org A",
        "a-1",
        "2024-05-01",
        &format!(
            "[{}, {}]",
            sts(
                "Example.COM",
                "enforce",
                &enforce_mx,
                100,
                10,
                &[
                    detail(
                        "starttls-not-supported",
                        "192.0.2.1",
                        Some("mx1.example.com"),
                        6,
                        None
                    ),
                    detail(
                        "certificate-expired",
                        "192.0.2.2",
                        Some("mx1.example.com"),
                        3,
                        Some("X509_V_ERR_CERT_HAS_EXPIRED"),
                    ),
                    detail(
                        "certificate-expired",
                        "192.0.2.1",
                        Some("mx2.example.net"),
                        1,
                        None
                    ),
                ]
                .join(", ")
            ),
            r#"{"policy": {"policy-type": "tlsa", "policy-string": ["3 1 1 abcd"],
                "policy-domain": "example.com"},
                "summary": {"total-successful-session-count": 5, "total-failure-session-count": 2},
                "failure-details": [{"result-type": "dnssec-invalid", "sending-mta-ip": "192.0.2.3",
                  "failed-session-count": 2}]}"#
        ),
    );
    let b = report_json(
        "Org B",
        "b-1",
        "2024-05-01",
        &format!(
            "[{}]",
            sts(
                "example.com",
                "testing",
                &["mx1.example.com"],
                50,
                4,
                &detail(
                    "certificate-expired",
                    "198.51.100.1",
                    Some("mx1.example.com"),
                    4,
                    None
                )
            )
        ),
    );
    let c = report_json(
        "Org A",
        "a-2",
        "2024-05-02",
        &format!("[{}]", sts("example.com", "enforce", &enforce_mx, 7, 0, "")),
    );
    let d = report_json(
        "Org C",
        "c-1",
        "2024-05-01",
        r#"[{"policy": {"policy-type": "no-policy-found", "policy-domain": "other.example"},
            "summary": {"total-successful-session-count": 1, "total-failure-session-count": 1},
            "failure-details": [{"result-type": "sts-policy-fetch-error",
              "sending-mta-ip": "203.0.113.9", "failed-session-count": 1}]}]"#,
    );
    let e = report_json(
        "Org D",
        "d-1",
        "2024-05-01",
        &format!(
            "[{}]",
            sts("example.com", "enforce", &enforce_mx, 10, 0, "")
        ),
    );
    let unverified = report_json(
        "Org U",
        "u-1",
        "2024-05-01",
        &format!(
            "[{}]",
            sts("example.com", "none", &["mx9.example.com"], 1000, 0, "")
        ),
    );
    HandMade {
        a,
        b,
        c,
        d,
        e,
        unverified,
    }
}

/// Stores the hand-made reports, each received at noon of its day; returns their ids by name.
async fn put_hand_made(s: &Store) -> HashMap<&'static str, (i64, i64)> {
    let h = hand_made();
    let mut ids = HashMap::new();
    for (name, json, received, trust) in [
        ("a", &h.a, "2024-05-01T12:00:00Z", Trust::Operator),
        ("b", &h.b, "2024-05-01T12:00:00Z", Trust::Verified),
        ("c", &h.c, "2024-05-02T12:00:00Z", Trust::Https),
        ("d", &h.d, "2024-05-01T12:00:00Z", Trust::Operator),
        ("e", &h.e, "2024-05-01T12:00:00Z", Trust::Operator),
        (
            "u",
            &h.unverified,
            "2024-05-01T12:00:00Z",
            Trust::Unverified,
        ),
    ] {
        let (raw, o) = put_json(s, json, received, trust, None).await;
        ids.insert(name, (raw, stored_id(o)));
    }
    ids
}

// --- the tests -------------------------------------------------------------------------------

async fn put_raw_dedupe(ctx: Ctx) {
    let s = &ctx.store;
    let a = s
        .put_raw(&raw(b"one", "2024-01-01T00:00:00Z", Via::File, "a.json"))
        .await
        .unwrap();
    let again = s
        .put_raw(&raw(
            b"one",
            "2024-02-01T00:00:00Z",
            Via::Imap,
            "imap://x/INBOX;UID=3",
        ))
        .await
        .unwrap();
    let b = s
        .put_raw(&raw(
            b"two",
            "2024-01-01T00:00:00Z",
            Via::Https,
            "192.0.2.1",
        ))
        .await
        .unwrap();
    assert_eq!(a, again);
    assert_ne!(a, b);
    let t = s.totals().await.unwrap();
    assert_eq!((t.raw, t.reports, t.quarantined), (2, 0, 0));
}

async fn put_report_then_duplicate(ctx: Ctx) {
    let s = &ctx.store;
    let h = hand_made();
    let (_, first) = put_json(s, &h.a, "2024-05-02T01:00:00Z", Trust::Operator, None).await;
    let id = stored_id(first);
    // The same report from other bytes (another copy of the mail).
    let copy = format!("{} ", h.a);
    let (_, second) = put_json(s, &copy, "2024-05-02T02:00:00Z", Trust::Operator, None).await;
    assert_eq!(
        second,
        PutOutcome::Duplicate {
            id,
            upgraded: false,
            trust: Trust::Operator,
        }
    );
    let t = s.totals().await.unwrap();
    assert_eq!((t.raw, t.reports), (2, 1));
    assert_eq!(
        s.report_json(id).await.unwrap(),
        Some(parse(&h.a).to_json())
    );
    assert_eq!(s.report_json(id + 1000).await.unwrap(), None);
    // Stored once: one row per policy entry.
    let hist = s.history("example.com", &everything()).await.unwrap();
    assert_eq!(hist.sessions.len(), 2);
    assert_eq!(hist.failures.len(), 4);
    assert_eq!(
        s.schema_version().await.unwrap(),
        mtasts_tlsrpt_store::SCHEMA_VERSION
    );
}

async fn report_without_key_is_keyed_by_raw_sha256(ctx: Ctx) {
    let s = &ctx.store;
    let json = r#"{"organization-name": "No Id Inc.", "policies": [{"policy": {
        "policy-type": "sts", "policy-domain": "example.org", "policy-string": ["mode: enforce"]},
        "summary": {"total-successful-session-count": 3, "total-failure-session-count": 0}}]}"#;
    let (raw1, o1) = put_json(s, json, "2024-06-01T10:00:00Z", Trust::Operator, None).await;
    let id1 = stored_id(o1);
    let (raw2, o2) = put_json(s, json, "2024-06-01T11:00:00Z", Trust::Operator, None).await;
    assert_eq!(raw1, raw2);
    assert_eq!(
        o2,
        PutOutcome::Duplicate {
            id: id1,
            upgraded: false,
            trust: Trust::Operator,
        }
    );
    // Other bytes, no report-id: another key.
    let other = format!("{json}\n");
    let (_, o3) = put_json(s, &other, "2024-06-01T12:00:00Z", Trust::Operator, None).await;
    assert_ne!(stored_id(o3), id1);
    let key = ReportKey::for_report(&parse(json), json.as_bytes());
    assert!(key.organization.starts_with("sha256:"), "{key:?}");
    assert_eq!(key.organization.len(), "sha256:".len() + 64);
    assert_eq!(key.report_id, "");
    // No date-range: the day is the day received.
    let sum = s.summary(&Filter::default()).await.unwrap();
    assert_eq!(sum.len(), 1);
    assert_eq!(sum[0].day, day("2024-06-01"));
    assert_eq!((sum[0].reports, sum[0].successful), (2, 6));
}

async fn unknown_ids_are_not_found(ctx: Ctx) {
    let s = &ctx.store;
    let report = parse(&hand_made().a);
    let err = s
        .put_report(&NewReport {
            raw_id: 4242,
            report: &report,
            via: Via::File,
            trust: Trust::Operator,
            dkim_domain: None,
            received_at: at("2024-05-02T00:00:00Z"),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                table: "tlsrpt_raw",
                id: 4242,
                op: "put_report",
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(ctx.store.backend()), "{msg}");
    let err = s.set_trust(77, Trust::Verified, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                table: "tlsrpt_report",
                id: 77,
                ..
            }
        ),
        "{err}"
    );
    let reason = QuarantineReason {
        code: "dkim.none".into(),
        message: "no signature".into(),
    };
    let err = s.quarantine(999, &reason, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                table: "tlsrpt_raw",
                id: 999,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.totals().await.unwrap().reports, 0);
}

async fn trust_upgrade_and_set_trust(ctx: Ctx) {
    let s = &ctx.store;
    let h = hand_made();
    let (_, o) = put_json(s, &h.b, "2024-05-02T00:00:00Z", Trust::Unverified, None).await;
    let id = stored_id(o);
    let reports = |f: &Filter| {
        let s = s.clone();
        let f = f.clone();
        async move {
            s.summary(&f)
                .await
                .unwrap()
                .iter()
                .map(|d| d.reports)
                .sum::<u64>()
        }
    };
    assert_eq!(reports(&Filter::default()).await, 0);
    assert_eq!(reports(&everything()).await, 1);
    // A verified copy raises it.
    let copy = format!(" {}", h.b);
    let (_, o) = put_json(
        s,
        &copy,
        "2024-05-02T00:01:00Z",
        Trust::Verified,
        Some("org-b.example"),
    )
    .await;
    assert_eq!(
        o,
        PutOutcome::Duplicate {
            id,
            upgraded: true,
            trust: Trust::Verified,
        }
    );
    assert_eq!(reports(&Filter::default()).await, 1);
    // A copy trusted less leaves it.
    let copy2 = format!("  {}", h.b);
    let (_, o) = put_json(s, &copy2, "2024-05-02T00:02:00Z", Trust::Https, None).await;
    assert_eq!(
        o,
        PutOutcome::Duplicate {
            id,
            upgraded: false,
            trust: Trust::Verified,
        }
    );
    // Equal trust is no upgrade either.
    let copy3 = format!("   {}", h.b);
    let (_, o) = put_json(s, &copy3, "2024-05-02T00:03:00Z", Trust::Verified, None).await;
    assert_eq!(
        o,
        PutOutcome::Duplicate {
            id,
            upgraded: false,
            trust: Trust::Verified,
        }
    );
    s.set_trust(id, Trust::Unverified, None).await.unwrap();
    assert_eq!(reports(&Filter::default()).await, 0);
    s.set_trust(id, Trust::Verified, Some("org-b.example"))
        .await
        .unwrap();
    assert_eq!(reports(&Filter::default()).await, 1);
    assert_eq!(s.totals().await.unwrap().reports, 1);
}

async fn quarantine_is_idempotent_listed_and_released(ctx: Ctx) {
    let s = &ctx.store;
    let bytes = b"From: x\r\n\r\nnot a report";
    let raw_id = s
        .put_raw(&raw(
            bytes,
            "2024-05-03T00:00:00Z",
            Via::Imap,
            "imap://h/INBOX;UID=7",
        ))
        .await
        .unwrap();
    let fail = QuarantineReason {
        code: "dkim.fail".into(),
        message: "the signature did not verify".into(),
    };
    let q1 = s.quarantine(raw_id, &fail, None).await.unwrap();
    assert_eq!(s.quarantine(raw_id, &fail, None).await.unwrap(), q1);
    let not_json = QuarantineReason {
        code: "tlsrpt.report.not-json".into(),
        message: "not JSON".into(),
    };
    let q2 = s.quarantine(raw_id, &not_json, None).await.unwrap();
    assert_ne!(q1, q2);
    // The report, when known later, is recorded on the same entry.
    let (_, o) = put_json(
        s,
        &hand_made().d,
        "2024-05-03T00:00:00Z",
        Trust::Unverified,
        None,
    )
    .await;
    let report = stored_id(o);
    assert_eq!(s.quarantine(raw_id, &fail, Some(report)).await.unwrap(), q1);

    let list = s.quarantined().await.unwrap();
    assert_eq!(list.iter().map(|e| e.id).collect::<Vec<_>>(), vec![q1, q2]);
    let e = &list[0];
    assert_eq!(e.raw_id, raw_id);
    assert_eq!(e.via, Via::Imap);
    assert_eq!(e.origin, "imap://h/INBOX;UID=7");
    assert_eq!(e.reason, fail);
    assert_eq!(e.report, Some(report));
    assert_eq!(e.bytes, bytes.len() as u64);
    assert!(e.at.timestamp() > 1_700_000_000, "{}", e.at);
    assert_eq!(list[1].report, None);
    assert_eq!(list[1].reason, not_json);

    let (entry, got) = s.quarantine_entry(q2).await.unwrap().unwrap();
    assert_eq!(entry, list[1]);
    assert_eq!(got, bytes);
    assert!(s.quarantine_entry(q2 + 100).await.unwrap().is_none());

    assert!(s.release(q1).await.unwrap());
    assert!(!s.release(q1).await.unwrap());
    assert!(s.quarantine_entry(q1).await.unwrap().is_none());
    let list = s.quarantined().await.unwrap();
    assert_eq!(list.iter().map(|e| e.id).collect::<Vec<_>>(), vec![q2]);
    assert_eq!(s.totals().await.unwrap().quarantined, 1);
}

/// A row of `expected.tsv`.
struct Expected {
    file: String,
    successful: u64,
    failed: u64,
}

fn expected_rows() -> Vec<Expected> {
    let dir = mtasts_test_support::report_corpus();
    let text = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, ok, failed) = (col("file"), col("total_successful"), col("total_failure"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            Expected {
                file: cells[file].to_owned(),
                successful: cells[ok].parse().unwrap(),
                failed: cells[failed].parse().unwrap(),
            }
        })
        .collect()
}

/// Puts every corpus file (as an operator's file); returns how many were stored and
/// duplicates, and the expected rows of the stored ones with their reports.
async fn put_corpus(s: &Store) -> (usize, usize, Vec<(Expected, Report)>) {
    let dir = mtasts_test_support::report_corpus();
    let (mut stored, mut dups) = (0, 0);
    let mut kept = Vec::new();
    for row in expected_rows() {
        let bytes = std::fs::read(dir.join(&row.file)).unwrap();
        let parsed = parse_payload(&bytes, &ReportLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", row.file));
        let received = at("2026-06-01T00:00:00Z");
        let raw_id = s
            .put_raw(&RawInput {
                bytes: &bytes,
                received_at: received,
                via: Via::File,
                origin: &row.file,
            })
            .await
            .unwrap();
        let o = s
            .put_report(&NewReport {
                raw_id,
                report: &parsed.report,
                via: Via::File,
                trust: Trust::Operator,
                dkim_domain: None,
                received_at: received,
            })
            .await
            .unwrap();
        match o {
            PutOutcome::Stored { .. } => {
                stored += 1;
                kept.push((row, parsed.report));
            }
            PutOutcome::Duplicate { upgraded, .. } => {
                assert!(!upgraded, "{}", row.file);
                dups += 1;
            }
        }
    }
    (stored, dups, kept)
}

/// The number of corpus files, of distinct report keys among them.
const CORPUS_FILES: usize = 41;
const CORPUS_KEYS: usize = 26;

/// Checks the store holds the corpus exactly once: the summary's sessions per domain and day,
/// and the history's per report, equal `expected.tsv`.
async fn check_corpus(s: &Store) {
    let dir = mtasts_test_support::report_corpus();
    // The expected sessions per report key, and per (domain, day).
    let mut by_key: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut by_day: BTreeMap<(String, NaiveDate), (u64, u64)> = BTreeMap::new();
    for row in expected_rows() {
        let bytes = std::fs::read(dir.join(&row.file)).unwrap();
        let r = parse_payload(&bytes, &ReportLimits::default())
            .unwrap()
            .report;
        let key = (
            r.organization_name.clone().unwrap_or_default(),
            r.report_id.clone().unwrap_or_default(),
        );
        if by_key.contains_key(&key) {
            assert_eq!(by_key[&key], (row.successful, row.failed), "{}", row.file);
            continue;
        }
        by_key.insert(key, (row.successful, row.failed));
        let domains = r.policy_domains();
        assert!(
            domains.len() <= 1,
            "{}: one domain per corpus report",
            row.file
        );
        let domain = domains
            .first()
            .map_or("-".to_owned(), |d| d.to_ascii_lowercase());
        let d = r
            .date_range
            .as_ref()
            .and_then(|d| d.start)
            .unwrap()
            .date_naive();
        let e = by_day.entry((domain, d)).or_default();
        e.0 += row.successful;
        e.1 += row.failed;
    }
    assert_eq!(by_key.len(), CORPUS_KEYS);

    let summary = s.summary(&Filter::default()).await.unwrap();
    let got: BTreeMap<(String, NaiveDate), (u64, u64)> = summary
        .iter()
        .map(|d| ((d.domain.clone(), d.day), (d.successful, d.failed)))
        .collect();
    assert_eq!(got, by_day);
    assert_eq!(
        summary.iter().map(|d| d.reports).sum::<u64>() as usize,
        CORPUS_KEYS
    );

    let mut got_keys: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let domains: HashSet<&str> = summary.iter().map(|d| d.domain.as_str()).collect();
    for domain in domains {
        let h = s.history(domain, &Filter::default()).await.unwrap();
        for row in h.sessions {
            let e = got_keys
                .entry((row.organization, row.report_id))
                .or_default();
            e.0 += row.successful;
            e.1 += row.failed;
        }
    }
    assert_eq!(got_keys, by_key);
    let t = s.totals().await.unwrap();
    assert_eq!(
        (t.raw as usize, t.reports as usize),
        (CORPUS_FILES, CORPUS_KEYS)
    );
}

async fn corpus_summary_matches_expected(ctx: Ctx) {
    let s = &ctx.store;
    let (stored, dups, kept) = put_corpus(s).await;
    assert_eq!((stored, dups), (CORPUS_KEYS, CORPUS_FILES - CORPUS_KEYS));
    assert_eq!(kept.len(), CORPUS_KEYS);
    check_corpus(s).await;
    // The RFC 8460 example (sent by Company-X, copied in many places), in detail.
    let f = Filter {
        domain: Some("company-y.example".into()),
        ..Filter::default()
    };
    let sum = s.summary(&f).await.unwrap();
    assert_eq!(sum.len(), 1);
    let d = &sum[0];
    assert_eq!(
        (d.day, d.reports, d.successful, d.failed),
        (day("2016-04-01"), 1, 5326, 303)
    );
    assert_eq!(
        d.by_result_type,
        vec![
            count("starttls-not-supported", 200),
            count("certificate-expired", 100),
            count("validation-failure", 3)
        ]
    );
    assert_eq!(
        d.by_receiving_mx,
        vec![
            count("mx2.mail.company-y.example", 200),
            count("mx1.mail.company-y.example", 100),
            count("mx-backup.mail.company-y.example", 3)
        ]
    );
    assert_eq!(
        d.by_sending_ip,
        vec![
            count("2001:db8:abcd:0013::1", 200),
            count("2001:db8:abcd:0012::1", 100),
            count("198.51.100.62", 3)
        ]
    );
    assert_eq!(
        d.policies,
        vec![SeenPolicy {
            policy_type: "sts".into(),
            mode: Some("testing".into()),
            mx: vec!["*.mail.company-y.example".into()],
            organizations: vec!["Company-X".into()],
            reports: 1,
        }]
    );
    // A second ingest of the whole corpus stores nothing.
    let (stored, dups, _) = put_corpus(s).await;
    assert_eq!((stored, dups), (0, CORPUS_FILES));
    check_corpus(s).await;
}

async fn summary_breakdowns(ctx: Ctx) {
    let s = &ctx.store;
    put_hand_made(s).await;
    let sum = s.summary(&Filter::default()).await.unwrap();
    let keys: Vec<(&str, NaiveDate)> = sum.iter().map(|d| (d.domain.as_str(), d.day)).collect();
    assert_eq!(
        keys,
        vec![
            ("example.com", day("2024-05-01")),
            ("example.com", day("2024-05-02")),
            ("other.example", day("2024-05-01")),
        ]
    );
    let enforce = |orgs: &[&str], reports: u64| SeenPolicy {
        policy_type: "sts".into(),
        mode: Some("enforce".into()),
        mx: vec!["mx1.example.com".into(), "*.example.net".into()],
        organizations: orgs.iter().map(|o| (*o).to_owned()).collect(),
        reports,
    };
    assert_eq!(
        sum[0],
        DaySummary {
            domain: "example.com".into(),
            day: day("2024-05-01"),
            reports: 3,
            successful: 100 + 5 + 50 + 10,
            failed: 10 + 2 + 4,
            by_result_type: vec![
                count("certificate-expired", 8),
                count("starttls-not-supported", 6),
                count("dnssec-invalid", 2),
            ],
            by_receiving_mx: vec![
                count("mx1.example.com", 13),
                count("-", 2),
                count("mx2.example.net", 1),
            ],
            by_organization: vec![
                OrgCount {
                    organization: "Org A".into(),
                    successful: 105,
                    failed: 12
                },
                OrgCount {
                    organization: "Org B".into(),
                    successful: 50,
                    failed: 4
                },
                OrgCount {
                    organization: "Org D".into(),
                    successful: 10,
                    failed: 0
                },
            ],
            by_sending_ip: vec![
                count("192.0.2.1", 7),
                count("198.51.100.1", 4),
                count("192.0.2.2", 3),
                count("192.0.2.3", 2),
            ],
            policies: vec![
                enforce(&["Org A", "Org D"], 2),
                SeenPolicy {
                    policy_type: "sts".into(),
                    mode: Some("testing".into()),
                    mx: vec!["mx1.example.com".into()],
                    organizations: vec!["Org B".into()],
                    reports: 1,
                },
                SeenPolicy {
                    policy_type: "tlsa".into(),
                    mode: None,
                    mx: vec![],
                    organizations: vec!["Org A".into()],
                    reports: 1,
                },
            ],
        }
    );
    assert_eq!(
        sum[1],
        DaySummary {
            domain: "example.com".into(),
            day: day("2024-05-02"),
            reports: 1,
            successful: 7,
            failed: 0,
            by_organization: vec![OrgCount {
                organization: "Org A".into(),
                successful: 7,
                failed: 0
            }],
            policies: vec![enforce(&["Org A"], 1)],
            ..DaySummary::default()
        }
    );
    let other = &sum[2];
    assert_eq!((other.reports, other.successful, other.failed), (1, 1, 1));
    assert_eq!(
        other.by_result_type,
        vec![count("sts-policy-fetch-error", 1)]
    );
    assert_eq!(other.by_receiving_mx, vec![count("-", 1)]);
    assert_eq!(other.by_sending_ip, vec![count("203.0.113.9", 1)]);
    assert_eq!(other.policies.len(), 1);
    assert_eq!(other.policies[0].policy_type, "no-policy-found");
    assert_eq!(other.policies[0].mode, None);
}

async fn summary_filters(ctx: Ctx) {
    let s = &ctx.store;
    put_hand_made(s).await;
    let keys = |f: Filter| {
        let s = s.clone();
        async move {
            s.summary(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.domain, d.day.to_string(), d.reports, d.successful))
                .collect::<Vec<_>>()
        }
    };
    let row = |d: &str, dy: &str, r: u64, ok: u64| (d.to_owned(), dy.to_owned(), r, ok);
    assert_eq!(
        keys(Filter {
            domain: Some("EXAMPLE.com".into()),
            ..Filter::default()
        })
        .await,
        vec![
            row("example.com", "2024-05-01", 3, 165),
            row("example.com", "2024-05-02", 1, 7)
        ]
    );
    assert_eq!(
        keys(Filter {
            since: Some(day("2024-05-02")),
            ..Filter::default()
        })
        .await,
        vec![row("example.com", "2024-05-02", 1, 7)]
    );
    assert_eq!(
        keys(Filter {
            until: Some(day("2024-05-01")),
            ..Filter::default()
        })
        .await,
        vec![
            row("example.com", "2024-05-01", 3, 165),
            row("other.example", "2024-05-01", 1, 1)
        ]
    );
    // Inclusive at both ends.
    assert_eq!(
        keys(Filter {
            domain: Some("other.example".into()),
            since: Some(day("2024-05-01")),
            until: Some(day("2024-05-01")),
            include_unverified: false,
        })
        .await,
        vec![row("other.example", "2024-05-01", 1, 1)]
    );
    assert_eq!(
        keys(Filter {
            since: Some(day("2024-05-03")),
            ..Filter::default()
        })
        .await,
        vec![]
    );
    assert_eq!(
        keys(Filter {
            domain: Some("example.com".into()),
            until: Some(day("2024-05-01")),
            include_unverified: true,
            ..Filter::default()
        })
        .await,
        vec![row("example.com", "2024-05-01", 4, 1165)]
    );
}

async fn history_rows(ctx: Ctx) {
    let s = &ctx.store;
    put_hand_made(s).await;
    let h = s.history("Example.com", &Filter::default()).await.unwrap();
    assert_eq!(h.domain, "example.com");
    let sessions: Vec<String> = h
        .sessions
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {:?} {} {}",
                r.day, r.organization, r.report_id, r.policy_type, r.mode, r.successful, r.failed
            )
        })
        .collect();
    assert_eq!(
        sessions,
        vec![
            "2024-05-01 Org A a-1 sts Some(\"enforce\") 100 10",
            "2024-05-01 Org A a-1 tlsa None 5 2",
            "2024-05-01 Org B b-1 sts Some(\"testing\") 50 4",
            "2024-05-01 Org D d-1 sts Some(\"enforce\") 10 0",
            "2024-05-02 Org A a-2 sts Some(\"enforce\") 7 0",
        ]
    );
    let failures: Vec<String> = h
        .failures
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {:?} {} {} {} {} {:?} {}",
                f.day,
                f.organization,
                f.report_id,
                f.policy_type,
                f.mode,
                f.result_type,
                f.sending_ip,
                f.receiving_mx,
                f.receiving_ip,
                f.reason,
                f.sessions
            )
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            "2024-05-01 Org A a-1 sts Some(\"enforce\") starttls-not-supported 192.0.2.1 mx1.example.com - \"\" 6",
            "2024-05-01 Org A a-1 sts Some(\"enforce\") certificate-expired 192.0.2.2 mx1.example.com - \"X509_V_ERR_CERT_HAS_EXPIRED\" 3",
            "2024-05-01 Org A a-1 sts Some(\"enforce\") certificate-expired 192.0.2.1 mx2.example.net - \"\" 1",
            "2024-05-01 Org A a-1 tlsa None dnssec-invalid 192.0.2.3 - - \"\" 2",
            "2024-05-01 Org B b-1 sts Some(\"testing\") certificate-expired 198.51.100.1 mx1.example.com - \"\" 4",
        ]
    );
    // The filter's range, and its unverified switch; its domain is ignored.
    let f = Filter {
        domain: Some("other.example".into()),
        since: Some(day("2024-05-02")),
        ..Filter::default()
    };
    let h = s.history("example.com", &f).await.unwrap();
    assert_eq!(h.sessions.len(), 1);
    assert_eq!(h.sessions[0].report_id, "a-2");
    assert!(h.failures.is_empty());
    let h = s.history("example.com", &everything()).await.unwrap();
    assert_eq!(h.sessions.len(), 6);
    assert!(h.sessions.iter().any(|r| r.organization == "Org U"));
    assert!(
        s.history("nowhere.example", &everything())
            .await
            .unwrap()
            .sessions
            .is_empty()
    );
}

async fn prune_removes_old_and_unreferenced(ctx: Ctx) {
    let s = &ctx.store;
    let ids = put_hand_made(s).await;
    // Report A (2024-05-01) is also quarantined (as if its DKIM had failed).
    let (raw_a, report_a) = ids["a"];
    let reason = QuarantineReason {
        code: "dkim.fail".into(),
        message: "bad signature".into(),
    };
    let q = s.quarantine(raw_a, &reason, Some(report_a)).await.unwrap();
    // A raw input that nothing references, received long ago.
    s.put_raw(&raw(b"orphan", "2024-04-01T00:00:00Z", Via::File, "x"))
        .await
        .unwrap();
    let before = s.totals().await.unwrap();
    assert_eq!((before.raw, before.reports, before.quarantined), (7, 6, 1));

    let p = s.prune(day("2024-05-02")).await.unwrap();
    // a, b, d, e and the unverified one are of 2024-05-01; the quarantine entry is recent, so
    // it and A's raw input stay; the other raw inputs of 2024-05-01, and the orphan, go.
    assert_eq!((p.reports, p.quarantined, p.raw), (5, 0, 5));
    let t = s.totals().await.unwrap();
    assert_eq!((t.raw, t.reports, t.quarantined), (2, 1, 1));
    let (entry, bytes) = s.quarantine_entry(q).await.unwrap().unwrap();
    assert_eq!(entry.report, None);
    assert_eq!(bytes, hand_made().a.as_bytes());
    assert!(s.report_json(report_a).await.unwrap().is_none());
    assert!(s.report_json(ids["c"].1).await.unwrap().is_some());
    let sum = s.summary(&everything()).await.unwrap();
    assert_eq!(sum.len(), 1);
    assert_eq!(sum[0].day, day("2024-05-02"));
    assert!(
        s.history("example.com", &everything())
            .await
            .unwrap()
            .failures
            .is_empty()
    );

    // Nothing more to prune at the same date.
    let p = s.prune(day("2024-05-02")).await.unwrap();
    assert_eq!((p.reports, p.quarantined, p.raw), (0, 0, 0));

    // Tomorrow: everything goes.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tomorrow = DateTime::from_timestamp(now as i64 + 86_400, 0)
        .unwrap()
        .date_naive();
    let p = s.prune(tomorrow).await.unwrap();
    assert_eq!((p.reports, p.quarantined, p.raw), (1, 1, 2));
    let t = s.totals().await.unwrap();
    assert_eq!((t.raw, t.reports, t.quarantined), (0, 0, 0));
}

async fn newer_schema_is_refused(ctx: Ctx) {
    put_hand_made(&ctx.store).await;
    ctx.exec("UPDATE tlsrpt_schema SET version = 99");
    let err = ctx.reopen().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                known: 1,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("newer"), "{msg}");
    assert!(msg.contains(ctx.store.target()), "{msg}");
    // Put back, it opens again.
    ctx.exec("UPDATE tlsrpt_schema SET version = 1");
    let s = ctx.reopen().await.unwrap();
    assert_eq!(s.totals().await.unwrap().reports, 6);
}

async fn reopening_keeps_everything(ctx: Ctx) {
    let ids = put_hand_made(&ctx.store).await;
    let reason = QuarantineReason {
        code: "dkim.none".into(),
        message: "unsigned".into(),
    };
    ctx.store
        .quarantine(ids["u"].0, &reason, Some(ids["u"].1))
        .await
        .unwrap();
    let totals = ctx.store.totals().await.unwrap();
    let summary = ctx.store.summary(&everything()).await.unwrap();
    let quarantined = ctx.store.quarantined().await.unwrap();
    let json = ctx.store.report_json(ids["a"].1).await.unwrap();
    let target = ctx.store.target().to_owned();
    drop(ctx.store);
    let s = Store::open(&ctx.url).await.unwrap();
    assert_eq!(s.target(), target);
    assert_eq!(s.totals().await.unwrap(), totals);
    assert_eq!(s.summary(&everything()).await.unwrap(), summary);
    assert_eq!(s.quarantined().await.unwrap(), quarantined);
    assert_eq!(s.report_json(ids["a"].1).await.unwrap(), json);
    assert_eq!(s.schema_version().await.unwrap(), 1);
    // And it goes on storing once.
    let (_, o) = put_json(
        &s,
        &hand_made().a,
        "2024-05-09T00:00:00Z",
        Trust::Operator,
        None,
    )
    .await;
    assert!(
        matches!(o, PutOutcome::Duplicate { id, upgraded: false, .. } if id == ids["a"].1),
        "{o:?}"
    );
}

async fn concurrent_puts_store_once(ctx: Ctx) {
    // Two stores on one database (two processes), four tasks each, the same report.
    let other = ctx.reopen().await.unwrap();
    let json = hand_made().b;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            other.clone()
        };
        let copy = format!("{json}{}", " ".repeat(i));
        tasks.push(tokio::spawn(async move {
            put_json(&s, &copy, "2024-05-02T00:00:00Z", Trust::Operator, None)
                .await
                .1
        }));
    }
    let mut stored = 0;
    let mut ids = HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            PutOutcome::Stored { id } => {
                stored += 1;
                ids.insert(id);
            }
            PutOutcome::Duplicate { id, .. } => {
                ids.insert(id);
            }
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(ids.len(), 1);
    let t = ctx.store.totals().await.unwrap();
    assert_eq!((t.raw, t.reports), (8, 1));
}

async fn large_report_is_stored_whole(ctx: Ctx) {
    let s = &ctx.store;
    // More failure details than one INSERT takes (200), in the first policy of two.
    let many: Vec<String> = (0..450)
        .map(|i| {
            detail(
                "certificate-not-trusted",
                &format!("10.0.{}.{}", i / 256, i % 256),
                Some("mx.big.example"),
                i + 1,
                None,
            )
        })
        .collect();
    let few: Vec<String> = (0..3)
        .map(|i| detail("validation-failure", "192.0.2.9", None, 1000 + i, None))
        .collect();
    let total_many: u64 = (1..=450).sum();
    let json = report_json(
        "Big",
        "big-1",
        "2024-07-01",
        &format!(
            "[{}, {}]",
            sts(
                "big.example",
                "enforce",
                &["mx.big.example"],
                1,
                total_many,
                &many.join(", ")
            ),
            sts(
                "big.example",
                "testing",
                &["mx.big.example"],
                2,
                3003,
                &few.join(", ")
            )
        ),
    );
    let (_, o) = put_json(s, &json, "2024-07-02T00:00:00Z", Trust::Operator, None).await;
    stored_id(o);
    let h = s.history("big.example", &Filter::default()).await.unwrap();
    assert_eq!(h.sessions.len(), 2);
    assert_eq!(h.failures.len(), 453);
    for (i, f) in h.failures.iter().take(450).enumerate() {
        assert_eq!(f.sessions, i as u64 + 1);
        assert_eq!(f.sending_ip, format!("10.0.{}.{}", i / 256, i % 256));
        assert_eq!(f.mode.as_deref(), Some("enforce"));
    }
    let tail: Vec<(u64, Option<&str>)> = h.failures[450..]
        .iter()
        .map(|f| (f.sessions, f.mode.as_deref()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (1000, Some("testing")),
            (1001, Some("testing")),
            (1002, Some("testing"))
        ]
    );
    let sum = s.summary(&Filter::default()).await.unwrap();
    assert_eq!(sum.len(), 1);
    assert_eq!(sum[0].failed, total_many + 3003);
    assert_eq!(
        sum[0].by_result_type,
        vec![
            count("certificate-not-trusted", total_many),
            count("validation-failure", 3003)
        ]
    );
    assert_eq!(sum[0].by_sending_ip.len(), 451);
    assert_eq!(sum[0].by_sending_ip[0], count("192.0.2.9", 3003));
}

async fn corrupt_rows_are_named(ctx: Ctx) {
    let s = &ctx.store;
    let ids = put_hand_made(s).await;
    let (raw_a, a) = ids["a"];
    let reason = QuarantineReason {
        code: "dkim.none".into(),
        message: "unsigned".into(),
    };
    let q = s.quarantine(raw_a, &reason, None).await.unwrap();
    ctx.exec(&format!(
        "UPDATE tlsrpt_report SET json = 'not json', trust = 'bogus' WHERE id = {a}"
    ));
    ctx.exec(&format!(
        "UPDATE tlsrpt_raw SET via = 'pigeon' WHERE id = {raw_a}"
    ));
    ctx.exec(&format!(
        "UPDATE tlsrpt_policy SET day = '2024-13-45' WHERE report_ref = {}",
        ids["b"].1
    ));

    let err = s.report_json(a).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "tlsrpt_report", id: Some(id), column: "json", .. } if *id == a),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("tlsrpt_report row {a}")),
        "{err}"
    );
    // A copy of the report meets the stored trust, which does not decode.
    let copy = format!("{} ", hand_made().a);
    let report = parse(&copy);
    let raw_id = s
        .put_raw(&raw(
            copy.as_bytes(),
            "2024-05-02T00:00:00Z",
            Via::File,
            "x",
        ))
        .await
        .unwrap();
    let err = s
        .put_report(&NewReport {
            raw_id,
            report: &report,
            via: Via::File,
            trust: Trust::Operator,
            dkim_domain: None,
            received_at: at("2024-05-02T00:00:00Z"),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Corrupt {
                table: "tlsrpt_report",
                column: "trust",
                op: "put_report",
                ..
            }
        ),
        "{err}"
    );
    let err = s.quarantine_entry(q).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "tlsrpt_quarantine", id: Some(id), column: "tlsrpt_raw.via", .. } if *id == q),
        "{err}"
    );
    assert!(s.quarantined().await.is_err());
    let err = s.summary(&Filter::default()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { column: "day", .. }),
        "{err}"
    );
    let err = s
        .history("example.com", &Filter::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Corrupt {
                table: "tlsrpt_policy",
                id: Some(_),
                column: "day",
                ..
            }
        ),
        "{err}"
    );
    // What does not touch the damaged rows still works.
    assert!(s.report_json(ids["c"].1).await.unwrap().is_some());
    assert_eq!(s.totals().await.unwrap().reports, 6);
}

/// The environment variable that makes [`kill9_child`] ingest the corpus into the store it
/// names.
const KILL9_URL: &str = "MTASTS_STORE_TEST_KILL9_URL";

/// Run by [`kill9_then_rerun_stores_each_report_once`] in a child process: ingests the corpus
/// slowly until killed. Without the variable, does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_child() {
    let Some(url) = std::env::var_os(KILL9_URL) else {
        return;
    };
    let s = Store::open(url.to_str().unwrap()).await.unwrap();
    loop {
        let dir = mtasts_test_support::report_corpus();
        for row in expected_rows() {
            let bytes = std::fs::read(dir.join(&row.file)).unwrap();
            let parsed = parse_payload(&bytes, &ReportLimits::default()).unwrap();
            let received = at("2026-06-01T00:00:00Z");
            let raw_id = s
                .put_raw(&RawInput {
                    bytes: &bytes,
                    received_at: received,
                    via: Via::File,
                    origin: &row.file,
                })
                .await
                .unwrap();
            s.put_report(&NewReport {
                raw_id,
                report: &parsed.report,
                via: Via::File,
                trust: Trust::Operator,
                dkim_domain: None,
                received_at: received,
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
}

async fn kill9_then_rerun_stores_each_report_once(ctx: Ctx) {
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
        .env(KILL9_URL, &ctx.url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL) in the middle of the corpus.
    let deadline = std::time::Instant::now() + mtasts_test_support::GUARD;
    loop {
        let n = ctx.store.totals().await.unwrap().reports;
        if n >= 8 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child stored {n} reports"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (stored, dups, _) = put_corpus(&ctx.store).await;
    assert_eq!(stored + dups, CORPUS_FILES);
    // Every report once, each whole.
    check_corpus(&ctx.store).await;
}

// --- backend-specific ------------------------------------------------------------------------

/// The SQLite writer commits the operations queued together in one transaction, each under its
/// own savepoint: one that fails is rolled back alone, and every other is stored whole and
/// answered only after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_rolls_back_only_the_failing_operation() {
    let ctx = Ctx::sqlite().await;
    let Db::Sqlite(path) = &ctx.db else {
        unreachable!()
    };
    // A failure detail from 203.0.113.66 is refused half-way through its report's insert (the
    // report and its policy rows are already written by then).
    ctx.exec(
        "CREATE TRIGGER refuse_marker BEFORE INSERT ON tlsrpt_failure
         WHEN NEW.sending_mta_ip = '203.0.113.66'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
    );
    const N: usize = 60;
    const BAD: usize = 17;
    // Raw inputs first, one by one.
    let mut inputs = Vec::new();
    for i in 0..N {
        let ip = if i == BAD {
            "203.0.113.66"
        } else {
            "192.0.2.1"
        };
        let details = detail("certificate-expired", ip, None, 1, None);
        let policies = format!(
            "[{}]",
            sts(
                "example.com",
                "testing",
                &["mx.example.com"],
                5,
                1,
                &details
            )
        );
        let json = report_json("org", &format!("r{i}"), "2024-05-01", &policies);
        let raw_id = ctx
            .store
            .put_raw(&raw(
                json.as_bytes(),
                "2024-05-02T00:00:00Z",
                Via::File,
                "test",
            ))
            .await
            .unwrap();
        inputs.push((raw_id, json));
    }
    let before = ctx.store.write_groups().unwrap();
    // Another connection holds the write lock, so the reports queue up behind the writer's
    // first transaction and are committed together once it is released.
    let mut blocker = rusqlite::Connection::open(path).unwrap();
    let lock = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let mut tasks = Vec::new();
    for (raw_id, json) in inputs {
        let s = ctx.store.clone();
        tasks.push(tokio::spawn(async move {
            let report = parse(&json);
            s.put_report(&NewReport {
                raw_id,
                report: &report,
                via: Via::File,
                trust: Trust::Operator,
                dkim_domain: None,
                received_at: at("2024-05-02T00:00:00Z"),
            })
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.commit().unwrap();
    let mut stored = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(PutOutcome::Stored { .. }) => stored += 1,
            Ok(other) => panic!("report {i}: {other:?}"),
            Err(e) => {
                assert_eq!(i, BAD, "report {i}: {e}");
                let msg = e.to_string();
                assert!(msg.contains("refused by the test"), "{msg}");
                assert!(msg.contains("put_report"), "{msg}");
            }
        }
    }
    assert_eq!(stored, N - 1);
    let t = ctx.store.totals().await.unwrap();
    assert_eq!((t.raw, t.reports), (N as u64, N as u64 - 1));
    // Nothing of the refused report is left: not its report row, nor its policy.
    let conn = rusqlite::Connection::open(path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let refused = format!("SELECT COUNT(*) FROM tlsrpt_report WHERE report_id = 'r{BAD}'");
    assert_eq!(count(&refused), 0);
    assert_eq!(count("SELECT COUNT(*) FROM tlsrpt_policy"), N as i64 - 1);
    assert_eq!(count("SELECT COUNT(*) FROM tlsrpt_failure"), N as i64 - 1);
    // And the reports were committed in fewer transactions than operations.
    let after = ctx.store.write_groups().unwrap();
    let transactions = after.transactions - before.transactions;
    let operations = after.operations - before.operations;
    assert_eq!(operations, N as u64);
    assert!(
        transactions < operations,
        "{transactions} transactions for {operations} operations"
    );
}

#[tokio::test]
async fn sqlite_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let path = missing.join("reports.db");
    let err = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MissingDirectory { .. }), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn sqlite_bare_path_and_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.db");
    let s = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(s.backend(), "sqlite");
    assert_eq!(s.target(), path.display().to_string());
    // WAL mode is on.
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&format!("sqlite:{}", junk.display()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Open {
                backend: "sqlite",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("junk.db"), "{err}");
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    let err = Store::open("mysql://u:secret@h/db").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[tokio::test]
async fn postgres_connect_error_hides_the_password() {
    // Port 1 on the loopback: nothing listens.
    let err = Store::open("postgres://u:secret@127.0.0.1:1/db?connect_timeout=5")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Open {
                backend: "postgres",
                step: "connect",
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(!msg.contains("secret"), "{msg}");
    assert!(msg.contains("postgres://u@127.0.0.1:1/db"), "{msg}");
}
