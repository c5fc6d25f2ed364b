//! "Is it safe to move to `enforce`?" — the decision every deployment guide leaves to the
//! owner after "watch the TLS-RPT reports for a week or two" (RFC 8461 §5, RFC 8460 §4),
//! sans-IO: the reports received for a domain, what the live deployment shows, and the
//! thresholds go in; a verdict (READY, NOT READY, ENFORCED) comes out with each blocker, its
//! evidence (days, report ids, organisations, MX hosts, sending IPs) and its fix.
//!
//! Beyond counting, each group of failures (one result type at one receiving MX) is
//! attributed:
//!
//! - **the owner's configuration** — a property of the MX (a certificate for another name, an
//!   expired one), or failures every reporting organisation sees: fix it before enforcing, or
//!   senders will defer mail to that MX;
//! - **one sender's problem** — one organisation fails (an untrusted CA in its store, a
//!   validation quirk) while the others reach the MX without failing: enforcing defers that
//!   sender's mail, but the fix is theirs;
//! - **a possible attack on the path** — `starttls-not-supported` from a few sending IPs to an
//!   MX every other sender reaches over TLS: STARTTLS stripped between those IPs and the MX.
//!   Enforcing is what stops it (their mail is deferred, not sent in plaintext), so it does not
//!   block the verdict, but it is named.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use crate::tlsrpt::result::ResultType;

/// The thresholds. Defaults follow the deployment guides (two weeks in testing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    /// Days with reports under the current `testing` policy needed (14).
    pub min_days: u32,
    /// Sessions those reports must cover (50).
    pub min_sessions: u64,
    /// Distinct reporting organisations needed (1).
    pub min_organizations: usize,
    /// For an enforced domain: how many recent days are looked at for regressions (7).
    pub regression_days: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_days: 14,
            min_sessions: 50,
            min_organizations: 1,
            regression_days: 7,
        }
    }
}

/// The sessions of one report entry (one organisation's report for one day).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sessions {
    /// The day.
    pub day: NaiveDate,
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
    /// The policy type the sender applied (`sts`, `tlsa`, `no-policy-found`).
    pub policy_type: String,
    /// For `sts`: the mode it applied.
    pub mode: Option<String>,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// One failure detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedSessions {
    /// The day.
    pub day: NaiveDate,
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
    /// The policy type of the entry.
    pub policy_type: String,
    /// For `sts`: the mode.
    pub mode: Option<String>,
    /// `result-type`, as sent.
    pub result_type: String,
    /// `sending-mta-ip` (`-` when absent).
    pub sending_ip: String,
    /// `receiving-mx-hostname` (`-` when absent).
    pub receiving_mx: String,
    /// `failure-reason-code` (empty when absent).
    pub reason: String,
    /// `failed-session-count`.
    pub sessions: u64,
}

/// What the live deployment shows (from `mtasts check`), when it was looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// The mode of the policy published now (`None`: no usable policy).
    pub mode: Option<String>,
    /// Problems a domain owner must fix first: (code, subject, message), for findings at
    /// error level and expiring certificates.
    pub problems: Vec<(String, String, String)>,
}

/// Everything the decision is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The policy domain.
    pub domain: String,
    /// Today (the last day that may have reports).
    pub today: Option<NaiveDate>,
    /// Sessions per report entry.
    pub sessions: Vec<Sessions>,
    /// Failure details.
    pub failures: Vec<FailedSessions>,
    /// The live deployment, when checked.
    pub live: Option<Live>,
}

/// The verdict. In JSON `{"kind": "ready"}`, `{"kind": "not-ready"}` or
/// `{"kind": "enforced", "regressed": BOOL}` (`docs/json.md`: enumerations with data are
/// objects tagged by `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Status {
    /// Moving to `enforce` will not make senders defer mail that reaches you today.
    Ready,
    /// Something must be fixed or waited for first.
    NotReady,
    /// Already enforcing; `regressed` says whether recent reports show new blocking failures.
    Enforced {
        /// Recent reports show failures that block delivery under enforce.
        regressed: bool,
    },
}

/// Who a group of failures is down to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Attribution {
    /// The owner's configuration.
    Owner,
    /// One sender's problem.
    Sender {
        /// The organisation.
        organization: String,
    },
    /// STARTTLS possibly stripped on the path from these sending IPs.
    PossibleAttack {
        /// The sending IPs that saw no STARTTLS.
        sending_ips: Vec<String>,
    },
}

/// Where a blocker or note comes from, for the owner to look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Proof {
    /// First and last day seen.
    pub days: Option<(NaiveDate, NaiveDate)>,
    /// Report ids (at most 5).
    pub report_ids: Vec<String>,
    /// Reporting organisations.
    pub organizations: Vec<String>,
    /// Receiving MX hosts.
    pub mx_hosts: Vec<String>,
    /// Sending IPs (at most 10).
    pub sending_ips: Vec<String>,
    /// Failed sessions involved.
    pub sessions: u64,
}

/// One thing that stands between the domain and `enforce`, or that the owner should know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// A stable code, e.g. `readiness.too-few-days`, `readiness.mx-failures`.
    pub code: &'static str,
    /// Whether it blocks the move to enforce.
    pub blocking: bool,
    /// What it is, in one line.
    pub message: String,
    /// The evidence.
    pub evidence: Proof,
    /// Who it is down to, for failures.
    pub attribution: Option<Attribution>,
    /// What to do.
    #[serde(rename = "hint")]
    pub fix: String,
}

/// The decision, with its reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The policy domain.
    pub domain: String,
    /// The verdict.
    pub status: Status,
    /// The verdict in one line.
    pub summary: String,
    /// Days with reports under the current testing policy.
    pub testing_days: u32,
    /// Sessions those reports cover.
    pub sessions: u64,
    /// Distinct reporting organisations.
    pub organizations: usize,
    /// Blockers first, then notes.
    pub items: Vec<Item>,
}

/// Whether a result type makes an `enforce` sender refuse the MX (RFC 8460 §4.3.1, RFC 8461
/// §5), as opposed to a policy-fetch failure (§4.3.2.2: the sender then has no policy) or a
/// DANE result.
fn blocks_delivery(result_type: &str) -> bool {
    matches!(
        ResultType::from_wire(result_type),
        ResultType::StarttlsNotSupported
            | ResultType::CertificateHostMismatch
            | ResultType::CertificateExpired
            | ResultType::CertificateNotTrusted
            | ResultType::ValidationFailure
    )
}

fn is_fetch_failure(result_type: &str) -> bool {
    matches!(
        ResultType::from_wire(result_type),
        ResultType::StsPolicyFetchError
            | ResultType::StsPolicyInvalid
            | ResultType::StsWebpkiInvalid
    )
}

/// A property of the certificate the MX presents: the owner's, whoever reports it.
fn is_certificate_property(result_type: &str) -> bool {
    matches!(
        ResultType::from_wire(result_type),
        ResultType::CertificateHostMismatch | ResultType::CertificateExpired
    )
}

fn proof<'a>(rows: impl Iterator<Item = &'a FailedSessions>) -> Proof {
    let mut days: Option<(NaiveDate, NaiveDate)> = None;
    let mut reports = BTreeSet::new();
    let mut orgs = BTreeSet::new();
    let mut mx = BTreeSet::new();
    let mut ips = BTreeSet::new();
    let mut sessions = 0u64;
    for r in rows {
        days = Some(match days {
            None => (r.day, r.day),
            Some((a, b)) => (a.min(r.day), b.max(r.day)),
        });
        reports.insert(r.report_id.clone());
        orgs.insert(r.organization.clone());
        mx.insert(r.receiving_mx.clone());
        ips.insert(r.sending_ip.clone());
        sessions = sessions.saturating_add(r.sessions);
    }
    Proof {
        days,
        report_ids: reports.into_iter().take(5).collect(),
        organizations: orgs.into_iter().collect(),
        mx_hosts: mx.into_iter().collect(),
        sending_ips: ips.into_iter().take(10).collect(),
        sessions,
    }
}

fn testing(mode: Option<&str>) -> bool {
    mode == Some("testing")
}

/// Decides. `ev.sessions` and `ev.failures` should cover the window to judge (the caller's
/// `--since`, by default the last `min_days` plus a margin).
pub fn assess(ev: &Evidence, t: &Thresholds) -> Readiness {
    let live_mode = ev.live.as_ref().and_then(|l| l.mode.clone());
    let enforced = live_mode.as_deref() == Some("enforce");
    let mut items = Vec::new();

    // The window judged: for an enforced domain, the last regression_days; otherwise every
    // day with reports of the testing policy.
    let last_day = ev
        .today
        .or_else(|| ev.sessions.iter().map(|s| s.day).max())
        .unwrap_or_default();
    let in_window =
        |day: NaiveDate| !enforced || (last_day - day).num_days() < i64::from(t.regression_days);
    let testing_rows: Vec<&Sessions> = ev
        .sessions
        .iter()
        .filter(|s| s.policy_type == "sts" && testing(s.mode.as_deref()))
        .collect();
    let testing_days: BTreeSet<NaiveDate> = testing_rows.iter().map(|s| s.day).collect();
    let sessions: u64 = testing_rows
        .iter()
        .map(|s| s.successful.saturating_add(s.failed))
        .sum();
    let orgs: BTreeSet<&str> = testing_rows
        .iter()
        .map(|s| s.organization.as_str())
        .collect();
    let n_days = u32::try_from(testing_days.len()).unwrap_or(u32::MAX);

    if !enforced {
        if n_days < t.min_days {
            let first = testing_days.iter().next().copied();
            items.push(Item {
                code: "readiness.too-few-days",
                blocking: true,
                message: format!(
                    "{n_days} day{} of reports under the testing policy; {} needed, {} more",
                    if n_days == 1 { "" } else { "s" },
                    t.min_days,
                    t.min_days - n_days
                ),
                evidence: Proof {
                    days: first.zip(testing_days.iter().next_back().copied()),
                    ..Proof::default()
                },
                attribution: None,
                fix: format!(
                    "keep mode: testing and keep ingesting reports for {} more day{}",
                    t.min_days - n_days,
                    if t.min_days - n_days == 1 { "" } else { "s" }
                ),
            });
        }
        if sessions < t.min_sessions {
            items.push(Item {
                code: "readiness.too-few-sessions",
                blocking: true,
                message: format!(
                    "the reports cover {sessions} session{} under the testing policy; at least {} are needed to judge",
                    if sessions == 1 { "" } else { "s" },
                    t.min_sessions
                ),
                evidence: Proof::default(),
                attribution: None,
                fix: "wait for more reports (larger senders report daily)".into(),
            });
        }
        if orgs.len() < t.min_organizations {
            items.push(Item {
                code: "readiness.too-few-organizations",
                blocking: true,
                message: format!(
                    "{} reporting organisation{}; at least {} needed",
                    orgs.len(),
                    if orgs.len() == 1 { "" } else { "s" },
                    t.min_organizations
                ),
                evidence: Proof::default(),
                attribution: None,
                fix: "wait for reports from more senders".into(),
            });
        }
    }

    // Failures, grouped by (result type, receiving MX), within the window.
    let failures: Vec<&FailedSessions> = ev
        .failures
        .iter()
        .filter(|f| f.policy_type == "sts" && in_window(f.day))
        .collect();
    let all_orgs: BTreeSet<&str> = ev
        .sessions
        .iter()
        .filter(|s| in_window(s.day))
        .map(|s| s.organization.as_str())
        .collect();
    let mut groups: BTreeMap<(&str, &str), Vec<&FailedSessions>> = BTreeMap::new();
    for f in &failures {
        groups
            .entry((f.result_type.as_str(), f.receiving_mx.as_str()))
            .or_default()
            .push(f);
    }
    for ((result_type, mx), rows) in &groups {
        let failing_orgs: BTreeSet<&str> = rows.iter().map(|f| f.organization.as_str()).collect();
        let others_fine = all_orgs.len() > failing_orgs.len();
        let evidence = proof(rows.iter().copied());
        if is_fetch_failure(result_type) {
            items.push(Item {
                code: "readiness.policy-fetch-failures",
                blocking: true,
                message: format!(
                    "{} session{} could not use your policy ({result_type}), reported by {}",
                    evidence.sessions,
                    if evidence.sessions == 1 { "" } else { "s" },
                    failing_orgs.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                evidence,
                attribution: Some(Attribution::Owner),
                fix: "make https://mta-sts.<domain>/.well-known/mta-sts.txt answer 200 with a valid policy over a valid certificate from every address (mtasts check shows why it fails)".into(),
            });
            continue;
        }
        if !blocks_delivery(result_type) {
            continue;
        }
        let attribution = if *result_type == "starttls-not-supported"
            && others_fine
            && evidence.sending_ips.len() <= 3
            && !evidence.sending_ips.iter().any(|ip| ip == "-")
        {
            Attribution::PossibleAttack {
                sending_ips: evidence.sending_ips.clone(),
            }
        } else if is_certificate_property(result_type) {
            Attribution::Owner
        } else if failing_orgs.len() == 1 && others_fine {
            Attribution::Sender {
                organization: failing_orgs.iter().next().copied().unwrap_or("").to_owned(),
            }
        } else {
            Attribution::Owner
        };
        let who = failing_orgs.iter().copied().collect::<Vec<_>>().join(", ");
        let (code, blocking, message, fix) = match &attribution {
            Attribution::Owner => (
                "readiness.mx-failures",
                true,
                format!(
                    "{} session{} to {mx} failed with {result_type} (reported by {who}); under enforce senders would refuse {mx}",
                    evidence.sessions,
                    if evidence.sessions == 1 { "" } else { "s" },
                ),
                fix_for(result_type, mx),
            ),
            Attribution::Sender { organization } => (
                "readiness.sender-failures",
                false,
                format!(
                    "only {organization} fails to {mx} ({result_type}, {} session{}) while the other senders reach it: under enforce {organization} would defer its mail to {mx}",
                    evidence.sessions,
                    if evidence.sessions == 1 { "" } else { "s" },
                ),
                format!(
                    "the problem is on {organization}'s side (its trust store or TLS client); tell its postmaster, or accept that its mail to {mx} waits"
                ),
            ),
            Attribution::PossibleAttack { sending_ips } => (
                "readiness.possible-attack",
                false,
                format!(
                    "{} session{} from {} to {mx} saw no STARTTLS while other senders reach {mx} over TLS: STARTTLS may be stripped on that path (an attacker, or a sender's middlebox)",
                    evidence.sessions,
                    if evidence.sessions == 1 { "" } else { "s" },
                    sending_ips.join(", ")
                ),
                "enforce is what stops this: those sessions will be deferred instead of delivered in plaintext; tell the sender's postmaster".into(),
            ),
        };
        items.push(Item {
            code,
            blocking,
            message,
            evidence,
            attribution: Some(attribution),
            fix,
        });
    }

    // What the live deployment shows.
    if let Some(live) = &ev.live {
        for (code, subject, message) in &live.problems {
            items.push(Item {
                code: "readiness.deployment",
                blocking: true,
                message: format!("{code}: {subject}: {message}"),
                evidence: Proof::default(),
                attribution: Some(Attribution::Owner),
                fix: format!("fix {code} (mtasts check {} explains it)", ev.domain),
            });
        }
        if !enforced && live.mode.is_none() {
            items.push(Item {
                code: "readiness.no-policy",
                blocking: true,
                message: "no usable MTA-STS policy is published now".into(),
                evidence: Proof::default(),
                attribution: Some(Attribution::Owner),
                fix: format!(
                    "publish a testing policy first: mtasts init {} --mode testing",
                    ev.domain
                ),
            });
        }
    }

    items.sort_by_key(|i| !i.blocking);
    let blockers = items.iter().filter(|i| i.blocking).count();
    let status = if enforced {
        Status::Enforced {
            regressed: blockers > 0,
        }
    } else if blockers == 0 {
        Status::Ready
    } else {
        Status::NotReady
    };
    let notes = items.len() - blockers;
    let summary = match status {
        Status::Ready => format!(
            "READY: {n_days} days of testing reports, {sessions} sessions from {} organisation{}, nothing that enforce would refuse{}",
            orgs.len(),
            if orgs.len() == 1 { "" } else { "s" },
            if notes > 0 {
                format!(" ({notes} note{} below)", if notes == 1 { "" } else { "s" })
            } else {
                String::new()
            }
        ),
        Status::NotReady => format!(
            "NOT READY: {blockers} blocker{} before mode: enforce",
            if blockers == 1 { "" } else { "s" }
        ),
        Status::Enforced { regressed: false } => format!(
            "ENFORCED: no blocking failure in the last {} days of reports",
            t.regression_days
        ),
        Status::Enforced { regressed: true } => format!(
            "ENFORCED, REGRESSED: {blockers} problem{} in the last {} days: senders are deferring mail",
            if blockers == 1 { "" } else { "s" },
            t.regression_days
        ),
    };
    Readiness {
        domain: ev.domain.clone(),
        status,
        summary,
        testing_days: n_days,
        sessions,
        organizations: orgs.len(),
        items,
    }
}

fn fix_for(result_type: &str, mx: &str) -> String {
    match ResultType::from_wire(result_type) {
        ResultType::CertificateHostMismatch => format!(
            "give {mx} a certificate that names {mx} (the host in the MX record), or a *. of its parent, on every address"
        ),
        ResultType::CertificateExpired => {
            format!("renew the certificate of {mx}, and automate the renewal")
        }
        ResultType::CertificateNotTrusted => {
            format!("serve a certificate from a public CA, with its full chain, on {mx}")
        }
        ResultType::StarttlsNotSupported => format!("enable STARTTLS on every address of {mx}"),
        _ => format!("fix TLS on {mx}: mtasts check shows what senders see"),
    }
}
