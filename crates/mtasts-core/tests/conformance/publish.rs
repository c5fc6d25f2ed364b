//! The policy host's decisions (`sts::publish`): the id derived from the policy (RFC 8461
//! §3.1), the published id against the served one (§8.1), promotion (§5) and retirement
//! (§8.3).

use chrono::NaiveDate;
use mtasts_core::dns::{DnsError, DnsErrorKind};
use mtasts_core::sts::policy::{Mode, Policy};
use mtasts_core::sts::publish::{
    self, GateOutcome, PromoteDecision, PromoteInput, PublishedId, RETIRE_MAX_AGE, Reports,
    Retirement,
};
use mtasts_core::sts::record::StsRecord;
use mtasts_core::tlsrpt::readiness::{Evidence, Live, Sessions, Thresholds};

const BASE: &str =
    "version: STSv1\nmode: testing\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n";

fn policy(text: &str) -> Policy {
    Policy::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn id(text: &str) -> String {
    publish::policy_id(&policy(text))
}

// ---------------------------------------------------------------------------------------------
// §3.1: the id
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc8461_s3_1_policy_id_is_1_to_32_alphanumerics_and_a_valid_record() {
    let id = id(BASE);
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    let record = StsRecord::parse(publish::sts_record(&id).as_bytes()).expect("valid record");
    assert_eq!(record.id, id);
}

/// The derivation is part of the contract with every deployment: changing it would make
/// every served id differ from the one published. This pins it.
#[test]
fn rfc8461_s3_1_policy_id_derivation_is_pinned() {
    assert_eq!(
        id("version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n"),
        "a5963b31a082635c6ec668171482b14f"
    );
}

/// Files that parse to the same policy get the same id.
fn same_id(a: &str, b: &str) {
    assert_eq!(id(a), id(b), "{a:?} vs {b:?}");
}

cases! { same_id;
    rfc8461_s3_1_policy_id_stable_for_the_same_text: BASE => BASE;
    rfc8461_s3_1_policy_id_stable_across_line_endings: BASE => &BASE.replace('\n', "\r\n");
    rfc8461_s3_1_policy_id_stable_across_spacing_after_colon: BASE => &BASE.replace(": ", ":   ");
    rfc8461_s3_1_policy_id_stable_without_final_newline: BASE => BASE.trim_end();
    rfc8461_s3_1_policy_id_stable_with_mx_trailing_dot: BASE => &BASE.replace("mail.example.com", "mail.example.com.");
    rfc8461_s3_1_policy_id_stable_with_duplicate_mx: BASE => &format!("{BASE}mx: mail.example.com\n");
}

/// Any change a sender can see gives another id.
fn other_id(a: &str, b: &str) {
    assert_ne!(id(a), id(b), "{a:?} vs {b:?}");
}

cases! { other_id;
    rfc8461_s3_1_policy_id_changes_with_mode: BASE => &BASE.replace("testing", "enforce");
    rfc8461_s3_1_policy_id_changes_with_max_age: BASE => &BASE.replace("86400", "86401");
    rfc8461_s3_1_policy_id_changes_with_an_added_mx: BASE => &format!("{BASE}mx: backup.example.org\n");
    rfc8461_s3_1_policy_id_changes_with_a_removed_mx: BASE => &BASE.replace("mx: *.example.net\n", "");
    rfc8461_s3_1_policy_id_changes_with_mx_order: BASE => "version: STSv1\nmode: testing\nmx: *.example.net\nmx: mail.example.com\nmax_age: 86400\n";
    rfc8461_s3_1_policy_id_changes_with_an_extension: BASE => &format!("{BASE}ext: 1\n");
    rfc8461_s3_1_policy_id_changes_with_an_extension_value: &format!("{BASE}ext: 1\n") => &format!("{BASE}ext: 2\n");
}

#[test]
fn rfc8461_s3_1_zone_line_is_the_record_to_publish() {
    assert_eq!(
        publish::zone_line("example.com", "abc123", 3600),
        "_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id=abc123;\""
    );
}

// ---------------------------------------------------------------------------------------------
// §8.1: the published id
// ---------------------------------------------------------------------------------------------

fn published(answer: Result<Vec<Vec<&str>>, DnsErrorKind>, expected: PublishedId) {
    let served = "abc123";
    let err = answer
        .as_ref()
        .err()
        .map(|k| DnsError::new(*k, "_mta-sts.example.com", ""));
    let rrset: Vec<Vec<&[u8]>> = answer
        .as_ref()
        .map(|rs| {
            rs.iter()
                .map(|r| r.iter().map(|s| s.as_bytes()).collect())
                .collect()
        })
        .unwrap_or_default();
    let got = match &err {
        Some(e) => publish::published_id::<Vec<&[u8]>, &[u8]>(Err(e), served),
        None => publish::published_id(Ok(&rrset[..]), served),
    };
    match (&got, &expected) {
        (PublishedId::Invalid { .. }, PublishedId::Invalid { .. }) => {}
        (PublishedId::Unknown { kind: a, .. }, PublishedId::Unknown { kind: b, .. }) => {
            assert_eq!(a, b)
        }
        _ => assert_eq!(got, expected),
    }
    assert_eq!(got.is_drift(), expected.is_drift());
}

fn invalid() -> PublishedId {
    PublishedId::Invalid {
        reason: String::new(),
    }
}

cases! { published;
    rfc8461_s8_1_published_id_matching_is_in_sync: Ok(vec![vec!["v=STSv1; id=abc123;"]]) => PublishedId::InSync;
    rfc8461_s8_1_published_id_split_strings_are_joined: Ok(vec![vec!["v=STSv1; ", "id=abc123"]]) => PublishedId::InSync;
    rfc8461_s8_1_published_id_other_records_are_ignored: Ok(vec![vec!["google-site-verification=x"], vec!["v=STSv1; id=abc123"]]) => PublishedId::InSync;
    rfc8461_s8_1_published_id_other_id_is_stale: Ok(vec![vec!["v=STSv1; id=20240101"]]) => PublishedId::Stale { published: "20240101".into() };
    rfc8461_s8_1_published_id_compared_case_sensitively: Ok(vec![vec!["v=STSv1; id=ABC123"]]) => PublishedId::Stale { published: "ABC123".into() };
    rfc8461_s8_1_published_id_nxdomain_is_missing: Err(DnsErrorKind::NxDomain) => PublishedId::Missing;
    rfc8461_s8_1_published_id_nodata_is_missing: Err(DnsErrorKind::NoData) => PublishedId::Missing;
    rfc8461_s8_1_published_id_no_sts_record_is_missing: Ok(vec![vec!["v=spf1 -all"]]) => PublishedId::Missing;
    rfc8461_s8_1_published_id_two_records_are_invalid: Ok(vec![vec!["v=STSv1; id=abc123"], vec!["v=STSv1; id=2"]]) => invalid();
    rfc8461_s8_1_published_id_invalid_record_is_invalid: Ok(vec![vec!["v=STSv1; id=abc-123"]]) => invalid();
    rfc8461_s8_1_published_id_servfail_is_unknown_not_drift: Err(DnsErrorKind::ServFail) => PublishedId::Unknown { kind: DnsErrorKind::ServFail, detail: String::new() };
    rfc8461_s8_1_published_id_timeout_is_unknown_not_drift: Err(DnsErrorKind::Timeout) => PublishedId::Unknown { kind: DnsErrorKind::Timeout, detail: String::new() };
}

#[test]
fn rfc8461_s8_1_drift_message_names_the_id_to_publish() {
    let d = PublishedId::Stale {
        published: "old".into(),
    };
    let m = d.describe("new1");
    assert!(
        m.contains("old") && m.contains("id=new1") && m.contains("§8.1"),
        "{m}"
    );
}

// ---------------------------------------------------------------------------------------------
// §5: promotion
// ---------------------------------------------------------------------------------------------

fn clean() -> Live {
    Live {
        mode: Some("testing".into()),
        problems: vec![],
    }
}

fn failing() -> Live {
    Live {
        mode: Some("testing".into()),
        problems: vec![(
            "smtp.cert-expired".into(),
            "mx1.example.com".into(),
            "the certificate expired".into(),
        )],
    }
}

/// `days` days of clean testing reports from one organisation, 10 sessions a day.
fn evidence(days: u32) -> Evidence {
    let today = NaiveDate::from_ymd_opt(2026, 6, 30).expect("date");
    Evidence {
        domain: "example.com".into(),
        today: Some(today),
        sessions: (0..days)
            .map(|d| Sessions {
                day: today - chrono::Days::new(u64::from(d)),
                organization: "Google Inc.".into(),
                report_id: format!("r{d}"),
                policy_type: "sts".into(),
                mode: Some("testing".into()),
                successful: 10,
                failed: 0,
            })
            .collect(),
        failures: vec![],
        live: Some(clean()),
    }
}

fn input<'a>(
    current: &'a Policy,
    target: Mode,
    live: Result<&'a Live, &'a str>,
) -> PromoteInput<'a> {
    PromoteInput {
        current,
        target,
        max_age: None,
        live,
        reports: Reports::NoStore,
        force: false,
    }
}

fn outcome(p: &publish::Promotion, gate: &str) -> GateOutcome {
    p.gates
        .iter()
        .find(|g| g.name == gate)
        .map(|g| g.outcome)
        .unwrap_or_else(|| panic!("no gate {gate}: {:?}", p.gates))
}

#[test]
fn rfc8461_s5_promote_to_enforce_refused_when_the_check_fails() {
    let current = policy(BASE);
    let live = failing();
    let p = publish::promote(&input(&current, Mode::Enforce, Ok(&live)));
    assert_eq!(p.decision, PromoteDecision::Refused);
    assert_eq!(outcome(&p, "check"), GateOutcome::Failed);
    let check = p.gates.iter().find(|g| g.name == "check").expect("gate");
    assert!(check.details[0].contains("smtp.cert-expired"), "{check:?}");
    assert!(p.policy.is_none());
}

#[test]
fn rfc8461_s5_promote_to_enforce_when_the_check_passes_and_no_store() {
    let current = policy(BASE);
    let live = clean();
    let p = publish::promote(&input(&current, Mode::Enforce, Ok(&live)));
    assert_eq!(p.decision, PromoteDecision::Promote, "{:?}", p.gates);
    assert_eq!(outcome(&p, "readiness"), GateOutcome::Skipped);
    let new = p.policy.expect("policy");
    assert_eq!(new.mode, Mode::Enforce);
    assert_eq!(
        (new.mx.clone(), new.max_age),
        (current.mx.clone(), current.max_age)
    );
    assert_ne!(publish::policy_id(&new), publish::policy_id(&current));
}

#[test]
fn rfc8461_s5_promote_to_enforce_refused_when_the_check_cannot_run() {
    let current = policy(BASE);
    let p = publish::promote(&input(&current, Mode::Enforce, Err("DNS timeout")));
    assert_eq!(p.decision, PromoteDecision::Refused);
    assert_eq!(outcome(&p, "check"), GateOutcome::Failed);
}

#[test]
fn rfc8461_s5_promote_to_enforce_refused_when_reports_are_not_ready() {
    let current = policy(BASE);
    let live = clean();
    let ev = evidence(3);
    let t = Thresholds::default();
    let p = publish::promote(&PromoteInput {
        reports: Reports::Evidence(&ev, &t),
        ..input(&current, Mode::Enforce, Ok(&live))
    });
    assert_eq!(p.decision, PromoteDecision::Refused);
    assert_eq!(outcome(&p, "readiness"), GateOutcome::Failed);
    assert!(p.readiness.is_some());
}

#[test]
fn rfc8461_s5_promote_to_enforce_when_reports_are_ready() {
    let current = policy(BASE);
    let live = clean();
    let ev = evidence(20);
    let t = Thresholds::default();
    let p = publish::promote(&PromoteInput {
        reports: Reports::Evidence(&ev, &t),
        ..input(&current, Mode::Enforce, Ok(&live))
    });
    assert_eq!(p.decision, PromoteDecision::Promote, "{:?}", p.gates);
    assert_eq!(outcome(&p, "readiness"), GateOutcome::Passed);
}

#[test]
fn rfc8461_s5_promote_with_an_empty_store_skips_readiness() {
    let current = policy(BASE);
    let live = clean();
    let ev = evidence(0);
    let t = Thresholds::default();
    let p = publish::promote(&PromoteInput {
        reports: Reports::Evidence(&ev, &t),
        ..input(&current, Mode::Enforce, Ok(&live))
    });
    assert_eq!(p.decision, PromoteDecision::Promote);
    assert_eq!(outcome(&p, "readiness"), GateOutcome::Skipped);
}

#[test]
fn rfc8461_s5_promote_refused_when_the_store_cannot_be_read() {
    let current = policy(BASE);
    let live = clean();
    let p = publish::promote(&PromoteInput {
        reports: Reports::Unavailable("database is locked"),
        ..input(&current, Mode::Enforce, Ok(&live))
    });
    assert_eq!(p.decision, PromoteDecision::Refused);
    assert_eq!(outcome(&p, "readiness"), GateOutcome::Failed);
}

#[test]
fn rfc8461_s5_promote_from_none_straight_to_enforce_refused() {
    let current = policy(&BASE.replace("testing", "none"));
    let live = clean();
    let p = publish::promote(&input(&current, Mode::Enforce, Ok(&live)));
    assert_eq!(p.decision, PromoteDecision::Refused);
    assert_eq!(outcome(&p, "mode"), GateOutcome::Failed);
}

#[test]
fn rfc8461_s5_promote_forced_despite_failed_gates_reports_them() {
    let current = policy(BASE);
    let live = failing();
    let p = publish::promote(&PromoteInput {
        force: true,
        ..input(&current, Mode::Enforce, Ok(&live))
    });
    assert_eq!(p.decision, PromoteDecision::Forced);
    assert_eq!(outcome(&p, "check"), GateOutcome::Failed);
    assert_eq!(p.policy.map(|p| p.mode), Some(Mode::Enforce));
}

#[test]
fn rfc8461_s5_promote_to_testing_needs_no_check() {
    let current = policy(&BASE.replace("testing", "none"));
    let live = failing();
    let p = publish::promote(&input(&current, Mode::Testing, Ok(&live)));
    assert_eq!(p.decision, PromoteDecision::Promote);
    assert!(p.gates.iter().all(|g| g.outcome != GateOutcome::Failed));
    assert_eq!(p.policy.map(|p| p.mode), Some(Mode::Testing));
}

#[test]
fn rfc8461_s5_promote_to_the_current_mode_is_unchanged() {
    let current = policy(BASE);
    let live = clean();
    let p = publish::promote(&input(&current, Mode::Testing, Ok(&live)));
    assert_eq!(p.decision, PromoteDecision::Unchanged);
    assert!(p.policy.is_none());
}

#[test]
fn rfc8461_s5_promote_with_a_new_max_age() {
    let current = policy(BASE);
    let live = clean();
    let p = publish::promote(&PromoteInput {
        max_age: Some(1_209_600),
        ..input(&current, Mode::Enforce, Ok(&live))
    });
    assert_eq!(p.policy.map(|p| p.max_age), Some(1_209_600));
}

#[test]
fn rfc8461_s8_3_promote_to_none_is_refused_in_favour_of_retire() {
    let current = policy(BASE);
    let live = clean();
    let p = publish::promote(&input(&current, Mode::None, Ok(&live)));
    assert_eq!(p.decision, PromoteDecision::Refused);
    assert!(p.gates[0].summary.contains("retire"), "{:?}", p.gates);
}

// ---------------------------------------------------------------------------------------------
// §8.3: retirement
// ---------------------------------------------------------------------------------------------

const NOW: i64 = 1_780_000_000;

#[test]
fn rfc8461_s8_3_retire_serves_none_under_a_new_id() {
    let current = policy(
        &BASE
            .replace("testing", "enforce")
            .replace("86400", "604800"),
    );
    let plan = publish::retire(&current, None, NOW);
    assert!(!plan.already);
    assert_eq!(plan.policy.mode, Mode::None);
    assert_eq!(plan.policy.mx, current.mx, "the mx lines stay");
    assert_ne!(
        publish::policy_id(&plan.policy),
        publish::policy_id(&current)
    );
}

#[test]
fn rfc8461_s8_3_retire_uses_a_small_max_age() {
    let current = policy(&BASE.replace("86400", "1209600"));
    let plan = publish::retire(&current, None, NOW);
    assert_eq!(plan.policy.max_age, RETIRE_MAX_AGE);
    let short = policy(&BASE.replace("86400", "3600"));
    assert_eq!(publish::retire(&short, None, NOW).policy.max_age, 3600);
}

#[test]
fn rfc8461_s8_3_records_removable_after_the_previous_max_age() {
    let current = policy(&BASE.replace("86400", "1209600"));
    let plan = publish::retire(&current, None, NOW);
    assert_eq!(
        plan.retirement,
        Retirement {
            since: NOW,
            previous_max_age: 1_209_600,
            remove_after: NOW + 1_209_600,
        }
    );
    assert!(!plan.retirement.removable(NOW + 1_209_599));
    assert!(plan.retirement.removable(NOW + 1_209_600));
}

#[test]
fn rfc8461_s8_3_retiring_again_keeps_the_dates() {
    let current = policy(&BASE.replace("86400", "1209600"));
    let first = publish::retire(&current, None, NOW);
    let again = publish::retire(&first.policy, Some(&first.retirement), NOW + 5000);
    assert!(again.already);
    assert_eq!(again.retirement, first.retirement);
    assert_eq!(again.policy, first.policy);
}
