//! The "safe to enforce" decision on seeded report histories: clean, too short, an MX the
//! owner must fix, one sender's problem, a possible attack, policy fetch failures, the live
//! deployment, and an enforced domain that regressed.

#![allow(missing_docs, clippy::unwrap_used)]

use chrono::NaiveDate;
use mtasts_core::tlsrpt::readiness::{
    Attribution, Evidence, FailedSessions, Live, Sessions, Status, Thresholds, assess,
};

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Days::new(u64::from(n))
}

/// `days` days of daily reports from Google and Microsoft under a testing policy.
fn clean(days: u32) -> Evidence {
    let mut ev = Evidence {
        domain: "example.com".into(),
        today: Some(day(days.saturating_sub(1))),
        ..Evidence::default()
    };
    for d in 0..days {
        for (org, n) in [("Google Inc.", 400), ("Microsoft Corporation", 120)] {
            ev.sessions.push(Sessions {
                day: day(d),
                organization: org.into(),
                report_id: format!("{org}-{d}"),
                policy_type: "sts".into(),
                mode: Some("testing".into()),
                successful: n,
                failed: 0,
            });
        }
    }
    ev.live = Some(Live {
        mode: Some("testing".into()),
        problems: vec![],
    });
    ev
}

fn fail(ev: &mut Evidence, d: u32, org: &str, result: &str, mx: &str, ip: &str, sessions: u64) {
    ev.failures.push(FailedSessions {
        day: day(d),
        organization: org.into(),
        report_id: format!("{org}-{d}"),
        policy_type: "sts".into(),
        mode: Some("testing".into()),
        result_type: result.into(),
        sending_ip: ip.into(),
        receiving_mx: mx.into(),
        reason: String::new(),
        sessions,
    });
}

#[test]
fn clean_for_fourteen_days_is_ready() {
    let r = assess(&clean(14), &Thresholds::default());
    assert_eq!(r.status, Status::Ready, "{r:#?}");
    assert_eq!(r.testing_days, 14);
    assert_eq!(r.organizations, 2);
    assert!(r.items.is_empty(), "{:#?}", r.items);
    assert!(r.summary.starts_with("READY"), "{}", r.summary);
}

#[test]
fn too_few_days_says_how_many_more() {
    let r = assess(&clean(5), &Thresholds::default());
    assert_eq!(r.status, Status::NotReady);
    let item = r
        .items
        .iter()
        .find(|i| i.code == "readiness.too-few-days")
        .unwrap();
    assert!(item.blocking);
    assert!(
        item.message.contains("5 days") && item.message.contains("9 more"),
        "{}",
        item.message
    );
    assert!(item.fix.contains("9 more days"), "{}", item.fix);
}

#[test]
fn a_large_sender_failing_host_mismatch_on_one_mx_is_not_ready_and_names_the_mx() {
    let mut ev = clean(14);
    for d in 0..14 {
        fail(
            &mut ev,
            d,
            "Google Inc.",
            "certificate-host-mismatch",
            "mx2.example.com",
            "209.85.220.41",
            40,
        );
    }
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::NotReady, "{r:#?}");
    let item = r
        .items
        .iter()
        .find(|i| i.code == "readiness.mx-failures")
        .unwrap();
    assert!(item.blocking);
    assert_eq!(item.attribution, Some(Attribution::Owner));
    assert!(
        item.message.contains("mx2.example.com")
            && item.message.contains("certificate-host-mismatch")
    );
    assert!(
        item.fix.contains("certificate that names mx2.example.com"),
        "{}",
        item.fix
    );
    assert_eq!(item.evidence.sessions, 14 * 40);
    assert_eq!(item.evidence.days, Some((day(0), day(13))));
    assert_eq!(item.evidence.organizations, vec!["Google Inc.".to_owned()]);
    assert!(!item.evidence.report_ids.is_empty());
}

#[test]
fn one_sending_ip_without_starttls_where_others_succeed_is_a_possible_attack_not_a_blocker() {
    let mut ev = clean(14);
    for d in 10..14 {
        fail(
            &mut ev,
            d,
            "Microsoft Corporation",
            "starttls-not-supported",
            "mx1.example.com",
            "40.107.22.9",
            3,
        );
    }
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::Ready, "{r:#?}");
    let item = r
        .items
        .iter()
        .find(|i| i.code == "readiness.possible-attack")
        .unwrap();
    assert!(!item.blocking);
    assert_eq!(
        item.attribution,
        Some(Attribution::PossibleAttack {
            sending_ips: vec!["40.107.22.9".into()]
        })
    );
    assert!(item.message.contains("40.107.22.9") && item.message.contains("mx1.example.com"));
}

#[test]
fn one_senders_untrusted_ca_is_named_as_theirs() {
    let mut ev = clean(14);
    fail(
        &mut ev,
        3,
        "Microsoft Corporation",
        "certificate-not-trusted",
        "mx1.example.com",
        "40.107.22.9",
        7,
    );
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::Ready, "{r:#?}");
    let item = r
        .items
        .iter()
        .find(|i| i.code == "readiness.sender-failures")
        .unwrap();
    assert_eq!(
        item.attribution,
        Some(Attribution::Sender {
            organization: "Microsoft Corporation".into()
        })
    );
}

#[test]
fn starttls_missing_for_every_sender_is_the_owners() {
    let mut ev = clean(14);
    for (org, ip) in [
        ("Google Inc.", "209.85.220.41"),
        ("Microsoft Corporation", "40.107.22.9"),
    ] {
        fail(
            &mut ev,
            2,
            org,
            "starttls-not-supported",
            "mx3.example.com",
            ip,
            5,
        );
    }
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::NotReady, "{r:#?}");
    let item = r
        .items
        .iter()
        .find(|i| i.code == "readiness.mx-failures")
        .unwrap();
    assert_eq!(item.attribution, Some(Attribution::Owner));
    assert!(item.fix.contains("enable STARTTLS"), "{}", item.fix);
}

#[test]
fn policy_fetch_failures_block() {
    let mut ev = clean(14);
    fail(
        &mut ev,
        6,
        "Google Inc.",
        "sts-policy-fetch-error",
        "-",
        "-",
        12,
    );
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::NotReady);
    assert!(
        r.items
            .iter()
            .any(|i| i.code == "readiness.policy-fetch-failures" && i.blocking)
    );
}

#[test]
fn the_live_deployment_counts() {
    let mut ev = clean(14);
    ev.live = Some(Live {
        mode: Some("testing".into()),
        problems: vec![(
            "sts.coverage.mx-not-covered".into(),
            "policy".into(),
            "mx host mx9.example.com matches no mx pattern of the policy".into(),
        )],
    });
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::NotReady);
    assert!(r.items[0].message.contains("mx9.example.com"));
}

#[test]
fn an_enforced_domain_says_whether_it_regressed() {
    let mut ev = clean(20);
    ev.live = Some(Live {
        mode: Some("enforce".into()),
        problems: vec![],
    });
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::Enforced { regressed: false }, "{r:#?}");
    // A failure 10 days ago is outside the 7-day window; one yesterday regresses.
    fail(
        &mut ev,
        9,
        "Google Inc.",
        "certificate-expired",
        "mx1.example.com",
        "209.85.220.41",
        4,
    );
    assert_eq!(
        assess(&ev, &Thresholds::default()).status,
        Status::Enforced { regressed: false }
    );
    fail(
        &mut ev,
        18,
        "Google Inc.",
        "certificate-expired",
        "mx1.example.com",
        "209.85.220.41",
        4,
    );
    let r = assess(&ev, &Thresholds::default());
    assert_eq!(r.status, Status::Enforced { regressed: true }, "{r:#?}");
    assert!(r.summary.starts_with("ENFORCED, REGRESSED"));
}
