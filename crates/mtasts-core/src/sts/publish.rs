//! The policy host's side of RFC 8461, sans-IO: what `mtasts serve` decides.
//!
//! - [`policy_id`]: the `id` of a policy, derived from its content (§3.1: the id "MUST
//!   uniquely identify a given instance of a policy"), so that it changes with every change of
//!   the policy and never otherwise;
//! - [`sts_record`], [`zone_line`]: the exact `_mta-sts` TXT record to publish for it;
//! - [`published_id`]: the live record compared with the served policy: the mistake of §8.1
//!   (the policy changed, the TXT id not) leaves senders on their cached policy;
//! - [`promote`]: whether a domain may move to `testing` or `enforce`, from the live check
//!   and, when reports were received, the readiness judgement (§5: `testing` first);
//! - [`retire`]: opting out (§8.3): `mode: none` with a new id and a small `max_age`, served
//!   until every policy cached before can have expired.
//!
//! The clock is a parameter (`now`, Unix seconds); nothing here reads files or sockets.

use serde::{Deserialize, Serialize};

use crate::dns::{DnsError, DnsErrorKind};
use crate::rfc::RfcRef;
use crate::sts::policy::{Mode, Policy, SHORT_MAX_AGE};
use crate::sts::record::{MAX_ID_LEN, STS_LABEL, STS_VERSION, select_sts_record};
use crate::tlsrpt::readiness::{self, Evidence, Live, Readiness, Status, Thresholds};

/// RFC 8461 §3.1: the record and its `id`.
pub const S3_1: RfcRef = RfcRef::sts("3.1");
/// RFC 8461 §5: `testing` before `enforce`.
pub const S5: RfcRef = RfcRef::sts("5");
/// RFC 8461 §8.1: update the policy first, then the record's `id`.
pub const S8_1: RfcRef = RfcRef::sts("8.1");
/// RFC 8461 §8.3: removing MTA-STS.
pub const S8_3: RfcRef = RfcRef::sts("8.3");

/// The `max_age` of the `mode: none` policy served while a domain is retired: one day, the
/// "small max_age" of §8.3's example (or the policy's own, if that is smaller).
pub const RETIRE_MAX_AGE: u32 = SHORT_MAX_AGE;

// ---------------------------------------------------------------------------------------------
// The id (§3.1)
// ---------------------------------------------------------------------------------------------

/// The policy's `id` (RFC 8461 §3.1): the first 128 bits of the SHA-256 of its canonical text
/// ([`Policy::to_text`]), as 32 lower-case hexadecimal digits (within the ABNF's
/// `1*32(ALPHA / DIGIT)`).
///
/// Two files that parse to the same policy (LF or CRLF, spacing after the colon, a trailing
/// dot on an `mx`) get the same id; any change senders can see (mode, max_age, an mx pattern
/// or its order, an extension) gives another. An id therefore names one policy everywhere,
/// across restarts and machines, and going back to an earlier policy gives back its id, which
/// is correct: a sender refetches whenever the published id differs from the id of the policy
/// it cached.
pub fn policy_id(policy: &Policy) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(policy.to_text().as_bytes());
    let mut id = String::with_capacity(MAX_ID_LEN);
    for b in digest.iter().take(MAX_ID_LEN / 2) {
        id.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        id.push(char::from_digit(u32::from(b & 0x0f), 16).unwrap_or('0'));
    }
    id
}

/// The text of the `_mta-sts` TXT record for `id`: `v=STSv1; id=<id>;`.
pub fn sts_record(id: &str) -> String {
    format!("{STS_VERSION}; id={id};")
}

/// The record as a zone-file line: `_mta-sts.<domain>. <ttl> IN TXT "v=STSv1; id=<id>;"`.
pub fn zone_line(domain: &str, id: &str, ttl: u32) -> String {
    format!("{STS_LABEL}.{domain}. {ttl} IN TXT \"{}\"", sts_record(id))
}

// ---------------------------------------------------------------------------------------------
// The published id against the served one (§3.1, §8.1)
// ---------------------------------------------------------------------------------------------

/// What the live `_mta-sts` record says about the served policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum PublishedId {
    /// The one valid record names the served policy's id.
    InSync,
    /// The one valid record names another id: a sender that cached an earlier policy keeps
    /// applying it, because it refetches only when the id changes (§3.1, §8.1).
    Stale {
        /// The id published.
        published: String,
    },
    /// No `_mta-sts` record (NXDOMAIN, no data, or no record beginning with `v=STSv1`):
    /// senders do not look for the policy at all.
    Missing,
    /// The RRset is unusable (several `v=STSv1` records, or an invalid one): senders treat the
    /// domain as having no policy (§3.1).
    Invalid {
        /// Why, in one line.
        reason: String,
    },
    /// The lookup failed (SERVFAIL, timeout, network): the state is not known.
    Unknown {
        /// The failure's kind.
        kind: DnsErrorKind,
        /// What the resolver said.
        detail: String,
    },
}

impl PublishedId {
    /// Whether senders are not led to the served policy: the record names another id, is
    /// missing or unusable. ([`PublishedId::Unknown`] is not drift: nothing is known.)
    pub fn is_drift(&self) -> bool {
        matches!(
            self,
            PublishedId::Stale { .. } | PublishedId::Missing | PublishedId::Invalid { .. }
        )
    }

    /// A stable name of the state: `in-sync`, `stale`, `missing`, `invalid`, `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PublishedId::InSync => "in-sync",
            PublishedId::Stale { .. } => "stale",
            PublishedId::Missing => "missing",
            PublishedId::Invalid { .. } => "invalid",
            PublishedId::Unknown { .. } => "unknown",
        }
    }

    /// The state in one line, for the owner (`served_id` is the id to publish).
    pub fn describe(&self, served_id: &str) -> String {
        match self {
            PublishedId::InSync => format!("the published id is {served_id}, the served policy's"),
            PublishedId::Stale { published } => format!(
                "the published id is {published}, but the served policy's is {served_id}: \
                 senders that cached the earlier policy keep it until its max_age ends \
                 (RFC 8461 §8.1); publish the record with id={served_id}"
            ),
            PublishedId::Missing => format!(
                "no _mta-sts record is published: senders do not look for the policy; publish \
                 the record with id={served_id}"
            ),
            PublishedId::Invalid { reason } => format!(
                "the _mta-sts record cannot be used ({reason}): senders see no policy; publish \
                 one record with id={served_id}"
            ),
            PublishedId::Unknown { kind, detail } => {
                if detail.is_empty() {
                    format!(
                        "the _mta-sts record could not be looked up ({})",
                        kind.as_str()
                    )
                } else {
                    format!(
                        "the _mta-sts record could not be looked up ({}: {detail})",
                        kind.as_str()
                    )
                }
            }
        }
    }
}

/// Compares the `_mta-sts` TXT answer (each record's character-strings) with `served_id`,
/// by the sender's RRset rule (§3.1, [`select_sts_record`]).
pub fn published_id<R, S>(answer: Result<&[R], &DnsError>, served_id: &str) -> PublishedId
where
    R: AsRef<[S]>,
    S: AsRef<[u8]>,
{
    let rrset = match answer {
        Ok(rrset) => rrset,
        Err(e) if e.is_negative() => return PublishedId::Missing,
        Err(e) => {
            return PublishedId::Unknown {
                kind: e.kind,
                detail: e.detail.clone(),
            };
        }
    };
    match select_sts_record(rrset) {
        Ok(r) if r.id == served_id => PublishedId::InSync,
        Ok(r) => PublishedId::Stale { published: r.id },
        Err(crate::sts::record::SelectError::NoRecord) => PublishedId::Missing,
        Err(e) => PublishedId::Invalid {
            reason: e.to_string(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Promotion (§5)
// ---------------------------------------------------------------------------------------------

/// What is known of the reports received for the domain.
#[derive(Clone, Copy, Debug)]
pub enum Reports<'a> {
    /// No report store is configured.
    NoStore,
    /// The store's evidence for the domain (possibly empty), and the thresholds to judge by.
    Evidence(&'a Evidence, &'a Thresholds),
    /// The store could not be read.
    Unavailable(&'a str),
}

/// Everything a promotion is decided from.
#[derive(Clone, Copy, Debug)]
pub struct PromoteInput<'a> {
    /// The policy served now.
    pub current: &'a Policy,
    /// The mode asked for: `testing` or `enforce`.
    pub target: Mode,
    /// A `max_age` for the promoted policy, when the owner gives one (else the current one).
    pub max_age: Option<u32>,
    /// The live check of the deployment (`mtasts check`), or why it could not be made.
    pub live: Result<&'a Live, &'a str>,
    /// The reports.
    pub reports: Reports<'a>,
    /// Promote even when a gate fails.
    pub force: bool,
}

/// How one precondition came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateOutcome {
    /// It holds.
    Passed,
    /// It does not: the promotion is refused (unless forced).
    Failed,
    /// It does not apply (no reports to judge, or not needed for the target mode).
    Skipped,
}

/// One precondition and what was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gate {
    /// `mode` (enforce comes after testing), `check` (the live check) or `readiness` (the
    /// reports).
    pub name: &'static str,
    /// How it came out.
    pub outcome: GateOutcome,
    /// Why, in one line.
    pub summary: String,
    /// The problems behind a failure, one line each.
    pub details: Vec<String>,
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromoteDecision {
    /// Every gate passed: serve the new policy.
    Promote,
    /// A gate failed, but `force` was given: serve the new policy anyway.
    Forced,
    /// A gate failed: keep the current policy.
    Refused,
    /// The policy is already in that mode (with that max_age): nothing to do.
    Unchanged,
}

/// What [`promote`] decided, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// The decision.
    pub decision: PromoteDecision,
    /// The policy to serve (for `Promote` and `Forced`).
    #[serde(skip)]
    pub policy: Option<Policy>,
    /// Each precondition, in order.
    pub gates: Vec<Gate>,
    /// The readiness judgement, when reports were judged.
    pub readiness: Option<Readiness>,
    /// The rule's section.
    #[serde(skip)]
    pub rfc: RfcRef,
}

impl Promotion {
    /// Whether the new policy is to be served.
    pub fn applies(&self) -> bool {
        matches!(
            self.decision,
            PromoteDecision::Promote | PromoteDecision::Forced
        )
    }
}

fn gate(
    name: &'static str,
    outcome: GateOutcome,
    summary: impl Into<String>,
    details: Vec<String>,
) -> Gate {
    Gate {
        name,
        outcome,
        summary: summary.into(),
        details,
    }
}

/// Decides whether the domain may move to `input.target`.
///
/// To `testing`: always (a testing policy changes no delivery; §5), from `none` or from
/// `enforce` (a step back while something is fixed).
///
/// To `enforce`, three gates, each of which must pass unless `force` is given:
///
/// 1. `mode`: the current policy is `testing` (§5: senders' reports under a testing policy
///    show what enforce would refuse; from `none` nothing was learnt);
/// 2. `check`: the live check found no error-level problem and no expiring certificate (an
///    MX that fails validation today is refused under enforce);
/// 3. `readiness`: when the report store holds reports for the domain, the readiness
///    judgement is READY; with no store, or no reports in it, this gate is skipped (and says
///    so).
pub fn promote(input: &PromoteInput<'_>) -> Promotion {
    let current = input.current;
    let max_age = input.max_age.unwrap_or(current.max_age);
    let mut promotion = Promotion {
        decision: PromoteDecision::Unchanged,
        policy: None,
        gates: Vec::new(),
        readiness: None,
        rfc: S5,
    };
    if input.target == Mode::None {
        promotion.decision = PromoteDecision::Refused;
        promotion.gates.push(gate(
            "mode",
            GateOutcome::Failed,
            "promote moves to testing or enforce; to opt out, retire the domain (RFC 8461 §8.3)",
            vec![],
        ));
        return promotion;
    }
    if current.mode == input.target && current.max_age == max_age {
        return promotion;
    }
    if input.target == Mode::Enforce {
        promotion.gates.push(if current.mode == Mode::Testing || current.mode == Mode::Enforce {
            gate(
                "mode",
                GateOutcome::Passed,
                format!("the current policy is {}", current.mode),
                vec![],
            )
        } else {
            gate(
                "mode",
                GateOutcome::Failed,
                "the current policy is none: serve testing first and read the reports (RFC 8461 §5)",
                vec![],
            )
        });
        promotion.gates.push(match input.live {
            Err(why) => gate(
                "check",
                GateOutcome::Failed,
                format!("the live check could not be made: {why}"),
                vec![],
            ),
            Ok(live) if live.problems.is_empty() => gate(
                "check",
                GateOutcome::Passed,
                "the live check found no error and no expiring certificate",
                vec![],
            ),
            Ok(live) => gate(
                "check",
                GateOutcome::Failed,
                format!(
                    "the live check found {} problem{} to fix first",
                    live.problems.len(),
                    if live.problems.len() == 1 { "" } else { "s" }
                ),
                live.problems
                    .iter()
                    .map(|(code, subject, message)| format!("{code} ({subject}): {message}"))
                    .collect(),
            ),
        });
        let readiness_gate = match input.reports {
            Reports::NoStore => gate(
                "readiness",
                GateOutcome::Skipped,
                "no report store is configured",
                vec![],
            ),
            Reports::Unavailable(why) => gate(
                "readiness",
                GateOutcome::Failed,
                format!("the report store could not be read: {why}"),
                vec![],
            ),
            Reports::Evidence(ev, _) if ev.sessions.is_empty() => gate(
                "readiness",
                GateOutcome::Skipped,
                format!("the report store holds no reports for {}", ev.domain),
                vec![],
            ),
            Reports::Evidence(ev, t) => {
                let r = readiness::assess(ev, t);
                let ok = matches!(
                    r.status,
                    Status::Ready | Status::Enforced { regressed: false }
                );
                let g = gate(
                    "readiness",
                    if ok {
                        GateOutcome::Passed
                    } else {
                        GateOutcome::Failed
                    },
                    r.summary.clone(),
                    r.items
                        .iter()
                        .filter(|i| i.blocking)
                        .map(|i| format!("{}: {}", i.code, i.message))
                        .collect(),
                );
                promotion.readiness = Some(r);
                g
            }
        };
        promotion.gates.push(readiness_gate);
    } else {
        promotion.gates.push(gate(
            "mode",
            GateOutcome::Passed,
            "a testing policy changes no delivery (RFC 8461 §5)",
            vec![],
        ));
    }
    let failed = promotion
        .gates
        .iter()
        .any(|g| g.outcome == GateOutcome::Failed);
    promotion.decision = match (failed, input.force) {
        (false, _) => PromoteDecision::Promote,
        (true, true) => PromoteDecision::Forced,
        (true, false) => PromoteDecision::Refused,
    };
    if promotion.applies() {
        promotion.policy = Some(Policy {
            mode: input.target,
            max_age,
            ..current.clone()
        });
    }
    promotion
}

// ---------------------------------------------------------------------------------------------
// Retirement (§8.3)
// ---------------------------------------------------------------------------------------------

/// A domain being retired: since when, and when its records can go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// When `mode: none` was first served (Unix seconds).
    pub since: i64,
    /// The `max_age` of the policy served before: a sender may have cached it that long.
    pub previous_max_age: u32,
    /// From when the `_mta-sts` record and the policy host can be removed (Unix seconds):
    /// `since + previous_max_age`, when every policy fetched before `since` has expired.
    pub remove_after: i64,
}

impl Retirement {
    /// Whether the records can be removed at `now`.
    pub fn removable(&self, now: i64) -> bool {
        now >= self.remove_after
    }
}

/// What [`retire`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetirePlan {
    /// The policy to serve: `mode: none`, the same mx lines and extensions, `max_age` at most
    /// [`RETIRE_MAX_AGE`]; its id differs from the current one's.
    pub policy: Policy,
    /// The dates.
    pub retirement: Retirement,
    /// The domain was already being retired: nothing changes (the dates are kept, not reset).
    pub already: bool,
    /// The rule's section.
    pub rfc: RfcRef,
}

/// Plans the opt-out of RFC 8461 §8.3: serve a new policy with `mode: none` and a small
/// `max_age` (so that a sender that fetched it soon forgets it), under a new id (publish it,
/// so that senders refetch), and keep serving it until `remove_after`: the time of the switch
/// plus the `max_age` of the policy served until then, when the last policy any sender can
/// have cached before the switch has expired. Then the TXT record and the policy host can go.
///
/// `existing` is the retirement already under way, if any: retiring again keeps its dates.
pub fn retire(current: &Policy, existing: Option<&Retirement>, now: i64) -> RetirePlan {
    if let Some(r) = existing
        && current.mode == Mode::None
    {
        return RetirePlan {
            policy: current.clone(),
            retirement: *r,
            already: true,
            rfc: S8_3,
        };
    }
    let policy = Policy {
        mode: Mode::None,
        max_age: current.max_age.min(RETIRE_MAX_AGE),
        ..current.clone()
    };
    RetirePlan {
        policy,
        retirement: Retirement {
            since: now,
            previous_max_age: current.max_age,
            remove_after: now.saturating_add(i64::from(current.max_age)),
        },
        already: false,
        rfc: S8_3,
    }
}
