//! The judgement, sans-IO: from what the probes saw ([`Observations`]) and the time, every
//! finding, the policy a sender would apply, and the verdict — what a sender that honours
//! MTA-STS does with mail for the domain today — plus the next step of the rollout.
//!
//! No clock, socket or file is touched here; `now` is a parameter. The RFC decisions are the
//! core's: the RRset rule ([`select_sts_record_linted`]), the fetch rules
//! ([`mtasts_core::sts::fetch`]), the policy ([`lint_policy`]), coverage ([`coverage`]) and
//! how a sender applies the policy to each MX attempt ([`apply`]).

use mtasts_core::dane::{
    self, ChainVerdict, Decision, HostAssessment, HostOutcome, Lookup, PreDane, Precedence,
    RecordMatch, authenticate, match_records, names_host, precedence,
};
use mtasts_core::sts::apply::{Delivery, StarttlsOutcome, apply};
use mtasts_core::sts::fetch::{
    FetchLimits, TransportProblem, check_declared_length, check_media_type, check_received,
    check_status,
};
use mtasts_core::sts::policy::{CoverageFinding, Mode, Policy, coverage, lint_policy};
use mtasts_core::sts::record::{SelectError, StsRecord, is_sts_record, select_sts_record_linted};
use mtasts_core::tls::HandshakeFailure;
use mtasts_core::tlsrpt::record::{
    SelectError as RptSelectError, TlsRptRecord, select_tlsrpt_record_linted,
};
use mtasts_core::{Diagnostic, Finding, Severity};
use serde::Serialize;

use crate::findings::{
    Absence, CertFinding, CertSide, DaneFinding, FetchFinding, MxFinding, RecordFinding,
    SmtpFinding, Stakes,
};
use crate::obs::{
    AddressLookup, FetchStage, MxLookup, Observations, PolicyFetch, SmtpProbe, SmtpStage,
    TlsSession, TxtLookup,
};

/// The knobs of the judgement.
#[derive(Clone, Copy, Debug)]
pub struct AssessSettings {
    /// The current time (Unix seconds), for certificate dates.
    pub now: i64,
    /// Warn when a certificate expires within this many days (21).
    pub expiry_warning_days: i64,
    /// A DNS answer slower than this is noted (1,000 ms).
    pub slow_dns_millis: u64,
    /// A greeting slower than this is noted (2,000 ms).
    pub slow_greeting_millis: u64,
    /// The §3.3 fetch limits, as senders apply them.
    pub limits: FetchLimits,
}

impl AssessSettings {
    /// The defaults at time `now`.
    pub fn at(now: i64) -> AssessSettings {
        AssessSettings {
            now,
            expiry_warning_days: 21,
            slow_dns_millis: 1000,
            slow_greeting_millis: 2000,
            limits: FetchLimits::default(),
        }
    }
}

/// What a sender that honours MTA-STS does with mail for the domain, with no cached policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderOutcome {
    /// A valid policy applies and the MX used passes validation: delivered over verified TLS.
    DeliverSecurely,
    /// Delivered, and a failure is reported through TLS-RPT (testing-mode failures, a policy
    /// that cannot be fetched, or some MX addresses failing).
    DeliverAndReport,
    /// Not delivered now: the message stays queued (enforce with no valid MX, or the MX
    /// answers with a temporary failure).
    Defer,
    /// No MTA-STS policy applies: opportunistic TLS, which an attacker can strip.
    NoPolicy,
    /// The domain accepts no mail (null MX, no MX, or a permanent rejection).
    Bounce,
}

impl SenderOutcome {
    /// The kebab-case name (as in the lab's scenario expectations).
    pub fn as_str(self) -> &'static str {
        match self {
            SenderOutcome::DeliverSecurely => "deliver-securely",
            SenderOutcome::DeliverAndReport => "deliver-and-report",
            SenderOutcome::Defer => "defer",
            SenderOutcome::NoPolicy => "no-policy",
            SenderOutcome::Bounce => "bounce",
        }
    }

    /// Every outcome, in the order of the summary table.
    pub const ALL: [SenderOutcome; 5] = [
        SenderOutcome::DeliverSecurely,
        SenderOutcome::DeliverAndReport,
        SenderOutcome::Defer,
        SenderOutcome::NoPolicy,
        SenderOutcome::Bounce,
    ];
}

/// The one-line conclusion for a domain.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// What a sender does.
    pub outcome: SenderOutcome,
    /// Why, in one line.
    pub summary: String,
    /// The next step of the rollout.
    pub next_step: String,
}

/// The policy as a sender would apply it.
#[derive(Clone, Debug, Serialize)]
pub struct PolicySummary {
    /// The record's id.
    pub id: String,
    /// The mode.
    pub mode: &'static str,
    /// max_age in seconds.
    pub max_age: u32,
    /// The mx patterns.
    pub mx: Vec<String>,
}

/// Everything `mtasts check` says about one domain.
#[derive(Clone, Debug, Serialize)]
pub struct DomainReport {
    /// The domain as given.
    pub domain: String,
    /// The one-line verdict.
    pub verdict: Verdict,
    /// The policy a sender applies, when there is one.
    pub policy: Option<PolicySummary>,
    /// Categories for the adoption and misconfiguration table.
    pub categories: Vec<&'static str>,
    /// The worst severity among the findings.
    pub worst: Option<Severity>,
    /// Every finding, in the order checked.
    pub findings: Vec<Finding>,
    /// What a DANE sender makes of the domain, when the DANE lookups were made.
    pub dane: Option<DaneReport>,
    /// What the probes saw.
    pub observations: Observations,
}

/// What a sender that does DANE (RFC 7672) makes of the domain, beside the MTA-STS verdict.
#[derive(Clone, Debug, Serialize)]
pub struct DaneReport {
    /// The core's decision for the domain.
    pub decision: Decision,
    /// What a sender doing both DANE and MTA-STS applies (RFC 8461 §2): what `mtasts daemon`
    /// tells Postfix in a zone with `dane = "on"`.
    pub applies: Precedence,
    /// Each MX host's outcome (RFC 7672 §2.2).
    pub hosts: Vec<HostAssessment>,
    /// Each probed address of a host with DNSSEC-validated TLSA records, against them.
    pub addresses: Vec<AddressDane>,
    /// What a DANE sender does, in one line.
    pub summary: String,
}

/// One MX address against its host's TLSA records.
#[derive(Clone, Debug, Serialize)]
pub struct AddressDane {
    /// The MX host.
    pub host: String,
    /// The address probed.
    pub address: std::net::SocketAddr,
    /// What a DANE sender makes of it.
    #[serde(flatten)]
    pub result: AddressResult,
}

/// What a DANE sender makes of one MX address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum AddressResult {
    /// Authenticated by a TLSA record: delivered.
    Authenticated {
        /// The record.
        record: String,
        /// How it matched.
        how: String,
    },
    /// TLS, no authentication needed (every record unusable): delivered.
    Encrypted,
    /// Refused: the certificate matches no usable record (RFC 7672 §3.2).
    Refused,
    /// Refused: no TLS session (RFC 7672 §2.2.3).
    NoTls {
        /// What happened instead.
        reason: String,
    },
}

impl DomainReport {
    /// What the readiness judgement needs from a live check: the mode published now, and the
    /// error-level findings (and expiring certificates) an owner must fix before enforcing.
    pub fn live(&self) -> mtasts_core::tlsrpt::readiness::Live {
        mtasts_core::tlsrpt::readiness::Live {
            mode: self.policy.as_ref().map(|p| p.mode.to_owned()),
            problems: self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error || f.code.contains("expir"))
                .map(|f| {
                    (
                        f.code.to_owned(),
                        f.subject.clone().unwrap_or_else(|| self.domain.clone()),
                        f.message.clone(),
                    )
                })
                .collect(),
        }
    }

    /// The codes of the findings at warning level or worse, sorted and deduplicated.
    pub fn problem_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .map(|f| f.code.to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    /// Adds `d` about `subject`; a located core finding (a line, a field) keeps its location.
    fn add(&mut self, d: &(impl Diagnostic + ?Sized), subject: &str) {
        self.0.push(Finding::from_diagnostic(d).about(subject));
    }

    fn has(&self, code: &str) -> bool {
        self.0.iter().any(|f| f.code == code)
    }
}

/// What the domain's MTA-STS state is for a sender.
enum PolicyState {
    /// No record, an invalid record, or the lookup failed.
    NoPolicy { why: String },
    /// A valid record, but the policy cannot be used.
    FetchFailed { why: String },
    /// A usable policy.
    Policy(Policy),
}

/// Judges one domain's observations.
pub fn assess(obs: Observations, s: &AssessSettings) -> DomainReport {
    let mut f = Findings(Vec::new());
    let d = obs.ascii.clone();
    let null_mx = matches!(obs.mx, MxLookup::Null);
    let sts_name = format!("_mta-sts.{d} TXT");
    let rpt_name = format!("_smtp._tls.{d} TXT");

    // ---- _mta-sts (RFC 8461 §3.1)
    let mut record: Option<StsRecord> = None;
    let mut record_published = false;
    let mut no_policy_why = String::new();
    let sts_none = |how| RecordFinding::StsNone {
        domain: d.clone(),
        how,
        null_mx,
    };
    match &obs.sts_txt {
        TxtLookup::Found { records, .. } => {
            record_published = records.iter().any(|r| is_sts_record(&r.concat()));
            match select_sts_record_linted(records) {
                Ok((_, rec, warnings)) => {
                    for w in &warnings {
                        f.add(w, &sts_name);
                    }
                    record = Some(rec);
                }
                Err(SelectError::NoRecord) => {
                    no_policy_why = "no TXT record at _mta-sts begins with v=STSv1".into();
                    f.add(&sts_none(Absence::NotOfThisKind), &sts_name);
                }
                Err(e) => {
                    no_policy_why = format!("the MTA-STS record is invalid: {e}");
                    f.add(&e, &sts_name);
                }
            }
        }
        TxtLookup::NxDomain { .. } => {
            no_policy_why = "no _mta-sts TXT record".into();
            f.add(&sts_none(Absence::NxDomain), &sts_name);
        }
        TxtLookup::NoData { .. } => {
            no_policy_why = "no _mta-sts TXT record".into();
            f.add(&sts_none(Absence::NoData), &sts_name);
        }
        TxtLookup::Failed { reason, .. } => {
            no_policy_why = "the _mta-sts lookup failed".into();
            f.add(
                &RecordFinding::StsLookupFailed {
                    domain: d.clone(),
                    reason: reason.clone(),
                },
                &sts_name,
            );
        }
    }
    if obs.sts_txt.millis() > s.slow_dns_millis {
        f.add(
            &RecordFinding::DnsSlow {
                name: sts_name.clone(),
                millis: obs.sts_txt.millis(),
            },
            &sts_name,
        );
    }

    // ---- _smtp._tls (RFC 8460 §3)
    let mut tlsrpt: Option<TlsRptRecord> = None;
    let rpt_none = |how| RecordFinding::TlsRptNone {
        domain: d.clone(),
        how,
        null_mx,
    };
    match &obs.tlsrpt_txt {
        TxtLookup::Found { records, .. } => match select_tlsrpt_record_linted(records) {
            Ok((_, rec, warnings)) => {
                for w in &warnings {
                    f.add(w, &rpt_name);
                }
                tlsrpt = Some(rec);
            }
            Err(RptSelectError::NoRecord) => f.add(&rpt_none(Absence::NotOfThisKind), &rpt_name),
            Err(e) => f.add(&e, &rpt_name),
        },
        TxtLookup::NxDomain { .. } => f.add(&rpt_none(Absence::NxDomain), &rpt_name),
        TxtLookup::NoData { .. } => f.add(&rpt_none(Absence::NoData), &rpt_name),
        TxtLookup::Failed { reason, .. } => f.add(
            &RecordFinding::TlsRptLookupFailed {
                domain: d.clone(),
                reason: reason.clone(),
            },
            &rpt_name,
        ),
    }
    for rua in &obs.rua_domains {
        if let Err(why) = &rua.accepts_mail {
            f.add(
                &RecordFinding::RuaNoMx {
                    uri: rua.uri.clone(),
                    rua_domain: rua.domain.clone(),
                    why: why.clone(),
                },
                &format!("rua {}", rua.uri),
            );
        }
    }

    // ---- the policy fetch (RFC 8461 §3.3) and the policy (§3.2)
    let mut policy: Option<Policy> = None;
    let mut fetch_error: Option<String> = None;
    if let Some(fetch) = &obs.policy_fetch {
        let (p, err) = judge_fetch(&d, fetch, s, &mut f);
        policy = p;
        fetch_error = err;
    }
    let state = match (&record, &policy, &fetch_error) {
        (None, _, _) => PolicyState::NoPolicy {
            why: no_policy_why.clone(),
        },
        (Some(_), Some(p), None) => PolicyState::Policy(p.clone()),
        (Some(_), _, Some(e)) => PolicyState::FetchFailed { why: e.clone() },
        (Some(_), None, None) => PolicyState::FetchFailed {
            why: "the policy was not fetched".into(),
        },
    };
    let mode = match &state {
        PolicyState::Policy(p) => Some(p.mode),
        _ => None,
    };
    // MX-side problems are errors once the owner has published MTA-STS (and would be
    // reported or enforced), warnings before.
    let stakes = if record_published && mode != Some(Mode::None) {
        Stakes::Published
    } else {
        Stakes::NotPublished
    };

    // ---- MX records and hosts
    let mx_subject = format!("{d} MX");
    match &obs.mx {
        MxLookup::Null => f.add(&MxFinding::Null, &mx_subject),
        MxLookup::Implicit => f.add(&MxFinding::Implicit { domain: d.clone() }, &mx_subject),
        MxLookup::NxDomain => f.add(&MxFinding::NxDomain { domain: d.clone() }, &mx_subject),
        MxLookup::NoData => f.add(&MxFinding::None, &mx_subject),
        MxLookup::Failed { reason, .. } => f.add(
            &MxFinding::LookupFailed {
                reason: reason.clone(),
            },
            &mx_subject,
        ),
        MxLookup::Found { .. } => {}
    }
    if obs.mx_authentic {
        f.add(&MxFinding::DnssecSigned, &mx_subject);
    }
    for host in &obs.mx_hosts {
        let subject = format!("MX {}", host.name);
        let name = host.name.clone();
        match &host.addresses {
            AddressLookup::NxDomain => f.add(&MxFinding::HostNotFound { host: name }, &subject),
            AddressLookup::NoAddress => f.add(&MxFinding::HostNoAddress { host: name }, &subject),
            AddressLookup::Failed { reason, .. } => f.add(
                &MxFinding::HostLookupFailed {
                    host: name,
                    reason: reason.clone(),
                },
                &subject,
            ),
            AddressLookup::Found { .. } => {}
        }
        if let Some(target) = &host.cname_target {
            f.add(
                &MxFinding::Cname {
                    host: host.name.clone(),
                    target: target.clone(),
                },
                &subject,
            );
        }
        for probe in &host.smtp {
            judge_smtp(&host.name, &d, probe, stakes, s, &mut f);
        }
    }

    // ---- coverage (RFC 8461 §4.1)
    if let Some(p) = policy.as_ref()
        && p.mode != Mode::None
        && !obs.mx_hosts.is_empty()
    {
        let names: Vec<&str> = obs.mx_hosts.iter().map(|h| h.name.as_str()).collect();
        for c in coverage(p, &names) {
            if matches!(c, CoverageFinding::Covered { .. }) {
                continue;
            }
            f.add(&c, "policy");
        }
    }

    // ---- DANE (RFC 7672), and what it leaves for MTA-STS (RFC 8461 §2)
    let dane = judge_dane(&obs, mode == Some(Mode::Enforce), record_published, &mut f);

    let verdict_outcome = verdict(&obs, &state);
    let categories = categories(&obs, &state, &f);
    let next_step = if null_mx && record.is_none() {
        "nothing to do: a domain that accepts no mail needs no MTA-STS".to_owned()
    } else {
        next_step(&obs.domain, &state, record.is_some(), tlsrpt.is_some(), &f)
    };
    let worst = f.0.iter().map(|x| x.severity).max();
    let policy_summary = match (&state, &record) {
        (PolicyState::Policy(p), Some(r)) => Some(PolicySummary {
            id: r.id.clone(),
            mode: p.mode.as_str(),
            max_age: p.max_age,
            mx: p.mx.iter().map(ToString::to_string).collect(),
        }),
        _ => None,
    };
    DomainReport {
        domain: obs.domain.clone(),
        verdict: Verdict {
            outcome: verdict_outcome.0,
            summary: verdict_outcome.1,
            next_step,
        },
        policy: policy_summary,
        categories,
        worst,
        findings: f.0,
        dane,
        observations: obs,
    }
}

/// Why a probe of a DANE host did not get TLS, for people.
fn no_tls_reason(p: &SmtpProbe) -> String {
    if p.starttls_offered == Some(false) {
        return "STARTTLS is not offered".to_owned();
    }
    match &p.failure {
        Some(fail) => format!("{}: {}", stage_name(fail.stage), fail.reason),
        None => "no TLS session was established".to_owned(),
    }
}

/// The DANE judgement (RFC 7672) from the DANE evidence and each MX address's certificate:
/// the core decides the domain ([`dane::assess`]) and matches each chain
/// ([`authenticate`]); this adds the findings and the one-line summary.
fn judge_dane(
    obs: &Observations,
    sts_enforced: bool,
    sts_published: bool,
    f: &mut Findings,
) -> Option<DaneReport> {
    let e = obs.dane.as_ref()?;
    let a = dane::assess(e);
    let d = &obs.ascii;
    let dsubject = format!("{d} DANE");
    let mx_secure = a.mx_security == Some(dane::Security::Secure);
    if let Lookup::Failed { error } = &e.mx {
        f.add(
            &DaneFinding::LookupFailed {
                host: d.clone(),
                reason: error.to_string(),
            },
            &dsubject,
        );
    }
    let mut addresses = Vec::new();
    for (he, ha) in e.hosts.iter().zip(&a.hosts) {
        let subject = format!("MX {}", ha.host);
        let records: Vec<dane::Tlsa> = ha.records.iter().map(|(r, _)| r.clone()).collect();
        match &ha.outcome {
            HostOutcome::LookupError { error } => f.add(
                &DaneFinding::LookupFailed {
                    host: ha.host.clone(),
                    reason: error.to_string(),
                },
                &subject,
            ),
            HostOutcome::PreDane { why } => {
                let published = he.tlsa.iter().find_map(|(_, l)| match l {
                    Lookup::Found { records, .. } => Some(records.len()),
                    _ => None,
                });
                if let Some(count) = published {
                    f.add(
                        &DaneFinding::TlsaInsecure {
                            host: ha.host.clone(),
                            count,
                            addresses_secure: *why != PreDane::InsecureAddresses,
                        },
                        &subject,
                    );
                }
            }
            HostOutcome::Usable | HostOutcome::AllUnusable => {
                for (r, unusable) in &ha.records {
                    if let Some(why) = unusable {
                        f.add(
                            &DaneFinding::TlsaUnusable {
                                record: r.to_string(),
                                why: why.to_string(),
                            },
                            &subject,
                        );
                    }
                }
                if ha.outcome == HostOutcome::AllUnusable {
                    f.add(
                        &DaneFinding::NoUsableTlsa {
                            host: ha.host.clone(),
                        },
                        &subject,
                    );
                }
                let probes = obs
                    .mx_hosts
                    .iter()
                    .filter(|h| h.name == ha.host)
                    .flat_map(|h| h.smtp.iter());
                for p in probes {
                    let asubject = format!("MX {} [{}]", ha.host, p.address);
                    let result = match &p.tls {
                        None => {
                            let reason = no_tls_reason(p);
                            f.add(
                                &DaneFinding::TlsRequired {
                                    host: ha.host.clone(),
                                    reason: reason.clone(),
                                },
                                &asubject,
                            );
                            AddressResult::NoTls { reason }
                        }
                        Some(_) if ha.outcome == HostOutcome::AllUnusable => {
                            AddressResult::Encrypted
                        }
                        Some(t) => {
                            let chain = t.presented();
                            let names =
                                t.chain.first().map(|c| c.names.clone()).unwrap_or_default();
                            // DANE-TA(2) reference identifiers: the MX host, and with a secure
                            // MX RRset the next-hop domain (RFC 7672 §3.2.2).
                            let named = names_host(&names, &ha.host)
                                || (mx_secure && names_host(&names, d));
                            match authenticate(&records, &chain, named) {
                                ChainVerdict::Authenticated { record, how } => {
                                    let r = records
                                        .get(record)
                                        .map(ToString::to_string)
                                        .unwrap_or_default();
                                    let mnemonic = records
                                        .get(record)
                                        .map(dane::Tlsa::mnemonic)
                                        .unwrap_or_default();
                                    let how = match how {
                                        RecordMatch::TrustAnchor { depth } => {
                                            format!("{mnemonic}, trust anchor at depth {depth}")
                                        }
                                        _ => mnemonic,
                                    };
                                    f.add(
                                        &DaneFinding::Match {
                                            record: r.clone(),
                                            how: how.clone(),
                                        },
                                        &asubject,
                                    );
                                    AddressResult::Authenticated { record: r, how }
                                }
                                _ => {
                                    let ta_name_mismatch = match_records(&records, &chain)
                                        .iter()
                                        .any(|m| matches!(m, RecordMatch::TrustAnchor { .. }));
                                    f.add(
                                        &DaneFinding::Mismatch {
                                            host: ha.host.clone(),
                                            names,
                                            ta_name_mismatch,
                                        },
                                        &asubject,
                                    );
                                    AddressResult::Refused
                                }
                            }
                        }
                    };
                    addresses.push(AddressDane {
                        host: ha.host.clone(),
                        address: p.address,
                        result,
                    });
                }
            }
            HostOutcome::NoAddress => {}
        }
    }
    match &a.decision {
        Decision::Mandatory => f.add(
            &DaneFinding::Mandatory {
                domain: d.clone(),
                sts: sts_published,
            },
            &dsubject,
        ),
        Decision::Opportunistic { insecure_mx: true } => {
            f.add(&DaneFinding::InsecureMx { domain: d.clone() }, &dsubject);
        }
        Decision::Opportunistic { insecure_mx: false } => {
            let with: Vec<String> = a
                .hosts
                .iter()
                .filter(|h| matches!(h.outcome, HostOutcome::Usable | HostOutcome::AllUnusable))
                .map(|h| h.host.clone())
                .collect();
            let without: Vec<String> = a
                .hosts
                .iter()
                .filter(|h| matches!(h.outcome, HostOutcome::PreDane { .. }))
                .map(|h| h.host.clone())
                .collect();
            if !without.is_empty() {
                f.add(&DaneFinding::Partial { with, without }, &dsubject);
            }
        }
        Decision::Delay { .. } | Decision::NotApplicable { .. } => {}
    }
    let applies = precedence(&a.decision, sts_enforced);
    let summary = dane_summary(&a.decision, &applies, &addresses, &a.hosts);
    Some(DaneReport {
        decision: a.decision,
        applies,
        hosts: a.hosts,
        addresses,
        summary,
    })
}

fn dane_summary(
    decision: &Decision,
    applies: &Precedence,
    addresses: &[AddressDane],
    hosts: &[HostAssessment],
) -> String {
    match decision {
        Decision::NotApplicable { reason } => {
            return format!("DANE does not apply ({reason}): MTA-STS decides alone");
        }
        Decision::Delay { reason, .. } => {
            let tail = if *applies == Precedence::MtaSts {
                "; the MX records are not DNSSEC-validated, so a sender doing MTA-STS too applies its enforce policy"
            } else {
                ""
            };
            return format!("DANE senders defer mail: {reason}{tail}");
        }
        _ => {}
    }
    let at = |a: &AddressDane| format!("{} [{}]", a.host, a.address.ip());
    let ok: Vec<String> = addresses
        .iter()
        .filter(|a| {
            matches!(
                a.result,
                AddressResult::Authenticated { .. } | AddressResult::Encrypted
            )
        })
        .map(at)
        .collect();
    let refused: Vec<String> = addresses
        .iter()
        .filter(|a| {
            matches!(
                a.result,
                AddressResult::Refused | AddressResult::NoTls { .. }
            )
        })
        .map(at)
        .collect();
    let pre_dane: Vec<&str> = hosts
        .iter()
        .filter(|h| matches!(h.outcome, HostOutcome::PreDane { .. }))
        .map(|h| h.host.as_str())
        .collect();
    let mut parts = Vec::new();
    if !ok.is_empty() {
        parts.push(format!(
            "deliver to {} over DANE-authenticated TLS",
            ok.join(", ")
        ));
    }
    if !refused.is_empty() {
        parts.push(format!("refuse {}", refused.join(", ")));
    }
    if !pre_dane.is_empty() {
        parts.push(format!(
            "use opportunistic TLS with {}",
            pre_dane.join(", ")
        ));
    }
    let mut s = if ok.is_empty() && pre_dane.is_empty() && !refused.is_empty() {
        format!("DANE senders defer mail: they {}", parts.join("; "))
    } else if parts.is_empty() {
        "DANE senders use the TLSA records of the MX hosts".to_owned()
    } else {
        format!("DANE senders {}", parts.join("; "))
    };
    if *applies == Precedence::MtaSts {
        s.push_str(
            " (the MX records are not DNSSEC-validated, so a sender doing MTA-STS too applies its enforce policy instead)",
        );
    }
    s
}

/// Judges the fetch. Returns the policy (when the body parses) and, when a sender could not
/// use it, why.
fn judge_fetch(
    domain: &str,
    fetch: &PolicyFetch,
    s: &AssessSettings,
    f: &mut Findings,
) -> (Option<Policy>, Option<String>) {
    let url = fetch.url.as_str();
    let before = f.0.len();
    if let Some(tls) = &fetch.tls {
        judge_cert(CertSide::PolicyHost, tls, url, s, f);
    }
    let mut policy = None;
    let mut body_usable = false;
    if let Some(fail) = &fetch.failure {
        let reason = fail.to_string();
        let d = domain.to_owned();
        let finding = match (&fail.problem, fail.stage) {
            (TransportProblem::Dns { .. }, _) | (_, FetchStage::Resolve) => {
                FetchFinding::HostNotFound { domain: d, reason }
            }
            (TransportProblem::Timeout, _)
            | (
                TransportProblem::Handshake {
                    failure: HandshakeFailure::Timeout,
                },
                _,
            ) => FetchFinding::Timeout { reason },
            (TransportProblem::Connect { .. }, _) => {
                FetchFinding::ConnectFailed { domain: d, reason }
            }
            (
                TransportProblem::Handshake {
                    failure: HandshakeFailure::VersionTooOld,
                },
                _,
            ) => FetchFinding::TlsVersion { reason },
            (TransportProblem::Handshake { .. }, _) => {
                FetchFinding::TlsFailed { domain: d, reason }
            }
            (TransportProblem::Http { .. }, FetchStage::Body) => {
                FetchFinding::IncompleteBody { reason }
            }
            (TransportProblem::Http { .. }, _) => FetchFinding::NoResponse { reason },
        };
        f.add(&finding, url);
    }
    if let Some(status) = fetch.status {
        match check_status(status, fetch.location.as_deref()) {
            Err(e) => f.add(&e, url),
            Ok(()) => {
                body_usable = fetch.failure.is_none();
                if let Err(problem) = check_media_type(fetch.content_type.as_deref()) {
                    if s.limits.require_text_plain {
                        f.add(
                            &mtasts_core::sts::fetch::FetchError::MediaType(problem),
                            url,
                        );
                    } else {
                        f.add(&FetchFinding::MediaTypeTolerated { problem }, url);
                    }
                }
                let size = check_declared_length(fetch.content_length, &s.limits)
                    .and_then(|()| check_received(fetch.body_bytes, &s.limits));
                if let Err(e) = size {
                    f.add(&e, url);
                    body_usable = false;
                }
            }
        }
    }
    let mut accepted_but_rejected_elsewhere = Vec::new();
    if body_usable {
        let lint = lint_policy(&fetch.body);
        for e in &lint.errors {
            f.add(e, "policy");
        }
        // What this policy has that some senders reject, although the policy is valid for
        // most (errors for the owner, not a reason to call the policy unusable).
        accepted_but_rejected_elsewhere = lint.warnings;
        policy = lint.policy;
    }
    let fetch_error = f.0[before..]
        .iter()
        .find(|x| x.severity == Severity::Error)
        .map(|x| x.message.clone());
    for w in &accepted_but_rejected_elsewhere {
        f.add(w, "policy");
    }
    (policy, fetch_error)
}

fn judge_cert(
    side: CertSide,
    tls: &TlsSession,
    subject: &str,
    s: &AssessSettings,
    f: &mut Findings,
) {
    let leaf = tls.chain.first();
    if tls.verdict.is_valid() {
        if let Some(leaf) = leaf {
            let days = (leaf.not_after - s.now) / 86_400;
            if leaf.not_after > s.now && days < s.expiry_warning_days {
                f.add(
                    &CertFinding::ExpiringSoon {
                        side,
                        days,
                        not_after: leaf.not_after,
                    },
                    subject,
                );
            }
        }
        return;
    }
    f.add(
        &CertFinding::Invalid {
            side,
            verdict: tls.verdict.clone(),
            names: leaf.map(|l| l.names.clone()).unwrap_or_default(),
            now: s.now,
        },
        subject,
    );
}

fn judge_smtp(
    host: &str,
    domain: &str,
    p: &SmtpProbe,
    stakes: Stakes,
    s: &AssessSettings,
    f: &mut Findings,
) {
    let subject = format!("MX {host} [{}]", p.address);
    if let Some(millis) = p.greeting_millis
        && millis > s.slow_greeting_millis
    {
        f.add(&SmtpFinding::GreetingSlow { millis }, &subject);
    }
    if p.starttls_offered == Some(false) {
        f.add(
            &SmtpFinding::StarttlsMissing {
                offered: p.extensions.clone(),
                stakes,
            },
            &subject,
        );
    }
    if let Some(tls) = &p.tls {
        judge_cert(CertSide::Mx { stakes }, tls, &subject, s, f);
    }
    if let Some(fail) = &p.failure {
        let reason = format!("{}: {}", stage_name(fail.stage), fail.reason);
        let finding = match fail.stage {
            _ if fail.timeout => SmtpFinding::Timeout { reason },
            SmtpStage::Connect => SmtpFinding::ConnectFailed { reason },
            SmtpStage::Greeting | SmtpStage::Ehlo | SmtpStage::EhloTls => {
                SmtpFinding::Rejected { reason }
            }
            SmtpStage::Starttls => SmtpFinding::StarttlsRefused { reason, stakes },
            SmtpStage::Handshake
                if matches!(fail.handshake, Some(HandshakeFailure::VersionTooOld)) =>
            {
                SmtpFinding::TlsVersion { reason, stakes }
            }
            SmtpStage::Handshake => SmtpFinding::TlsFailed { reason, stakes },
            SmtpStage::Mail => SmtpFinding::MailRejected { reason },
            SmtpStage::Rcpt => SmtpFinding::RcptRejected {
                domain: domain.to_owned(),
                reason,
            },
        };
        f.add(&finding, &subject);
    }
    if let Some(r) = &p.mail
        && r.code / 100 != 2
    {
        f.add(&SmtpFinding::mail_reply(r), &subject);
    }
    if let Some(r) = &p.rcpt
        && r.code / 100 != 2
    {
        f.add(&SmtpFinding::rcpt_reply(domain, r), &subject);
    }
}

fn stage_name(s: SmtpStage) -> &'static str {
    match s {
        SmtpStage::Connect => "connect",
        SmtpStage::Greeting => "greeting",
        SmtpStage::Ehlo => "EHLO",
        SmtpStage::Starttls => "STARTTLS",
        SmtpStage::Handshake => "TLS handshake",
        SmtpStage::EhloTls => "EHLO after STARTTLS",
        SmtpStage::Mail => "MAIL FROM",
        SmtpStage::Rcpt => "RCPT TO",
    }
}

/// How one delivery attempt to one address would go.
enum Attempt {
    /// No SMTP session (connect, greeting or EHLO failed).
    Unreachable(String),
    /// The session reached STARTTLS (or its absence), judged by the core (RFC 8461 §4, §5).
    Session {
        /// Whether TLS was used.
        tls: bool,
        /// The core's decision for this MX under the policy.
        delivery: Delivery,
        /// Why the MX fails validation, for people (whatever the mode makes of it).
        invalid: Option<String>,
        /// The transaction's result.
        txn: Txn,
    },
}

enum Txn {
    Accepted,
    Temporary(String),
    Permanent(String),
}

/// What the probe of one address showed about STARTTLS, in the core's terms, and why it
/// fails validation, for people.
fn starttls(p: &SmtpProbe) -> (StarttlsOutcome<'_>, Option<String>) {
    if p.starttls_offered == Some(false) {
        return (
            StarttlsOutcome::NotOffered,
            Some("STARTTLS not offered".to_owned()),
        );
    }
    if let Some(fail) = p
        .failure
        .as_ref()
        .filter(|x| matches!(x.stage, SmtpStage::Starttls | SmtpStage::Handshake))
    {
        let why = Some(format!("{}: {}", stage_name(fail.stage), fail.reason));
        return match (&fail.stage, &fail.handshake) {
            (SmtpStage::Handshake, Some(h)) => (StarttlsOutcome::HandshakeFailed(h), why),
            (SmtpStage::Handshake, None) => {
                (StarttlsOutcome::HandshakeFailed(&HANDSHAKE_UNKNOWN), why)
            }
            _ => (StarttlsOutcome::Refused, why),
        };
    }
    match &p.tls {
        Some(t) if t.verdict.is_valid() => (StarttlsOutcome::Established(&t.verdict), None),
        Some(t) => (
            StarttlsOutcome::Established(&t.verdict),
            Some(format!("certificate {}", t.verdict.describe())),
        ),
        None => (StarttlsOutcome::NotOffered, Some("no TLS".to_owned())),
    }
}

static HANDSHAKE_UNKNOWN: HandshakeFailure = HandshakeFailure::Timeout;

fn attempt(p: &SmtpProbe, policy: Option<&Policy>, host: &str) -> Attempt {
    if let Some(fail) = &p.failure
        && matches!(
            fail.stage,
            SmtpStage::Connect | SmtpStage::Greeting | SmtpStage::Ehlo
        )
    {
        return Attempt::Unreachable(format!("{}: {}", stage_name(fail.stage), fail.reason));
    }
    let (outcome, mut invalid) = starttls(p);
    let delivery = apply(policy, host, outcome);
    if policy.is_some_and(|p| !p.allows_mx(host)) {
        invalid = Some("not in the policy".to_owned());
    }
    let txn = match (&p.mail, &p.rcpt, &p.failure) {
        (Some(m), _, _) if m.code / 100 == 4 => Txn::Temporary(format!("MAIL answered {m}")),
        (Some(m), _, _) if m.code / 100 == 5 => Txn::Permanent(format!("MAIL answered {m}")),
        (_, Some(r), _) if r.code / 100 == 4 => Txn::Temporary(format!("RCPT answered {r}")),
        (_, Some(r), _) if r.code / 100 == 5 => Txn::Permanent(format!("RCPT answered {r}")),
        (_, _, Some(fail))
            if matches!(
                fail.stage,
                SmtpStage::Mail | SmtpStage::Rcpt | SmtpStage::EhloTls
            ) =>
        {
            Txn::Temporary(format!("{}: {}", stage_name(fail.stage), fail.reason))
        }
        _ => Txn::Accepted,
    };
    Attempt::Session {
        tls: p.tls.is_some(),
        delivery,
        invalid,
        txn,
    }
}

/// RFC 8461 §5 (and RFC 5321 §5.1) as a sender applies them, over the probes' results: each
/// address in preference order is judged by the core ([`apply`]); the first one the sender
/// may use takes the message.
fn verdict(obs: &Observations, state: &PolicyState) -> (SenderOutcome, String) {
    match &obs.mx {
        MxLookup::Null => {
            return (
                SenderOutcome::Bounce,
                "null MX: the domain accepts no mail; senders bounce at once".into(),
            );
        }
        MxLookup::NxDomain => {
            return (
                SenderOutcome::Bounce,
                "the domain does not exist; senders bounce".into(),
            );
        }
        MxLookup::NoData => {
            return (
                SenderOutcome::Bounce,
                "no MX and no address: senders bounce".into(),
            );
        }
        MxLookup::Failed { reason, .. } => {
            return (
                SenderOutcome::Defer,
                format!("the MX lookup fails ({reason}): senders retry later"),
            );
        }
        MxLookup::Found { .. } | MxLookup::Implicit => {}
    }
    let policy = match state {
        PolicyState::Policy(p) => Some(p),
        _ => None,
    };
    let mode = policy.map(|p| p.mode);
    // Every address, in the order a sender tries them.
    let mut tried: Vec<(u16, &str, Attempt)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for host in &obs.mx_hosts {
        if host.smtp.is_empty() {
            skipped.push(format!("{} (no address)", host.name));
        }
        for p in &host.smtp {
            tried.push((
                host.preference,
                host.name.as_str(),
                attempt(p, policy, &host.name),
            ));
        }
    }
    let requires_valid = mode == Some(Mode::Enforce);
    // The address that takes the message.
    let chosen = tried.iter().position(|(_, _, a)| match a {
        Attempt::Unreachable(_) => false,
        Attempt::Session { delivery, .. } => delivery.delivers(),
    });
    let mut refusals: Vec<String> = Vec::new();
    for why in tried
        .iter()
        .filter_map(|(_, h, a)| match a {
            Attempt::Unreachable(why) => Some(format!("{h} ({why})")),
            Attempt::Session {
                delivery: Delivery::Refuse(_),
                invalid,
                ..
            } => Some(format!(
                "{h} ({})",
                invalid.as_deref().unwrap_or("fails validation")
            )),
            _ => None,
        })
        .chain(skipped.iter().cloned())
    {
        if !refusals.contains(&why) {
            refusals.push(why);
        }
    }
    let Some(ci) = chosen else {
        let why = if refusals.is_empty() {
            "no MX host has an address".to_owned()
        } else {
            refusals.join("; ")
        };
        return (
            SenderOutcome::Defer,
            if requires_valid {
                format!("enforce: senders refuse delivery to {why}; mail stays queued")
            } else {
                format!("no MX can be reached: {why}; mail stays queued")
            },
        );
    };
    let (pref, host, chosen_attempt) = &tried[ci];
    let Attempt::Session {
        tls,
        invalid: chosen_invalid,
        txn,
        ..
    } = chosen_attempt
    else {
        return (SenderOutcome::Defer, "no MX can be reached".into());
    };
    match txn {
        Txn::Temporary(why) => {
            return (
                SenderOutcome::Defer,
                format!("{host} answers with a temporary failure ({why}); senders retry later"),
            );
        }
        Txn::Permanent(why) => {
            return (
                SenderOutcome::Bounce,
                format!("{host} rejects the message ({why}); senders bounce it"),
            );
        }
        Txn::Accepted => {}
    }
    // Failures a sender may meet before or beside the address that works: other addresses of
    // the same or more preferred hosts (a load-balanced pool fails intermittently), each as
    // the core decided it (refused under enforce, delivered and reported under testing).
    let mut failures: Vec<String> = Vec::new();
    for why in tried
        .iter()
        .filter(|(p, _, _)| p <= pref)
        .filter_map(|(_, h, a)| match a {
            Attempt::Session {
                delivery,
                invalid: Some(why),
                ..
            } if delivery.failure().is_some() => Some(format!("{h}: {why}")),
            _ => None,
        })
    {
        if !failures.contains(&why) {
            failures.push(why);
        }
    }
    let how = if *tls { "over TLS" } else { "in plaintext" };
    match state {
        PolicyState::Policy(p) if p.mode == Mode::Enforce => {
            if failures.is_empty() {
                (
                    SenderOutcome::DeliverSecurely,
                    format!("enforce: senders deliver to {host} over validated TLS"),
                )
            } else {
                (
                    SenderOutcome::DeliverAndReport,
                    format!(
                        "enforce: senders deliver to {host} over validated TLS, but fail and report on {}",
                        failures.join("; ")
                    ),
                )
            }
        }
        PolicyState::Policy(p) if p.mode == Mode::Testing => {
            if failures.is_empty() && chosen_invalid.is_none() {
                (
                    SenderOutcome::DeliverSecurely,
                    format!(
                        "testing: senders deliver to {host} over validated TLS; nothing to report"
                    ),
                )
            } else {
                (
                    SenderOutcome::DeliverAndReport,
                    format!(
                        "testing: senders deliver to {host} {how} and report {}",
                        if failures.is_empty() {
                            chosen_invalid.clone().unwrap_or_default()
                        } else {
                            failures.join("; ")
                        }
                    ),
                )
            }
        }
        PolicyState::Policy(_) => (
            SenderOutcome::NoPolicy,
            format!(
                "mode none: senders ignore MTA-STS and deliver to {host} {how} (opportunistic)"
            ),
        ),
        PolicyState::FetchFailed { why } => (
            SenderOutcome::DeliverAndReport,
            format!(
                "the policy cannot be used ({why}): senders deliver to {host} {how} without MTA-STS and report the failure"
            ),
        ),
        PolicyState::NoPolicy { why } => (
            SenderOutcome::NoPolicy,
            format!(
                "no MTA-STS ({why}): senders deliver to {host} {how}, which an attacker can downgrade"
            ),
        ),
    }
}

fn categories(obs: &Observations, state: &PolicyState, f: &Findings) -> Vec<&'static str> {
    let mut out = Vec::new();
    let errs = |prefix: &str| {
        f.0.iter()
            .any(|x| x.severity == Severity::Error && x.code.starts_with(prefix))
    };
    match &obs.sts_txt {
        TxtLookup::Failed { .. } => out.push("dns-failure"),
        _ if f.has("sts.record.none") => out.push("no-record"),
        _ if errs("sts.record.") => out.push("invalid-record"),
        _ => {}
    }
    if errs("sts.fetch.") {
        out.push("fetch-failure");
    }
    if errs("sts.policy.") {
        out.push("invalid-policy");
    }
    if f.has("sts.coverage.mx-not-covered") {
        out.push("mx-not-covered");
    }
    if f.0
        .iter()
        .any(|x| x.code.starts_with("smtp.cert-") && x.severity >= Severity::Warning)
    {
        out.push("certificate-problem");
    }
    if f.0.iter().any(|x| {
        matches!(
            x.code,
            "smtp.starttls-missing"
                | "smtp.starttls-refused"
                | "smtp.tls-failed"
                | "smtp.tls-version"
        )
    }) {
        out.push("starttls-problem");
    }
    if !matches!(obs.tlsrpt_txt, TxtLookup::Found { .. }) || errs("tlsrpt.record.") {
        out.push("no-tlsrpt");
    }
    match state {
        PolicyState::Policy(p) => out.push(match p.mode {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }),
        _ => out.push("no-policy"),
    }
    out
}

fn next_step(
    domain: &str,
    state: &PolicyState,
    has_record: bool,
    has_tlsrpt: bool,
    f: &Findings,
) -> String {
    if let Some(e) = f.0.iter().find(|x| x.severity == Severity::Error) {
        return format!("fix the errors first, starting with {}: {}", e.code, e.hint);
    }
    match state {
        PolicyState::NoPolicy { .. } if !has_record => {
            if has_tlsrpt {
                format!(
                    "publish a policy in testing mode: mtasts init {domain} --mode testing, then watch the TLS-RPT reports"
                )
            } else {
                format!(
                    "start with TLS-RPT (_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}\"), then a testing policy: mtasts init {domain} --mode testing"
                )
            }
        }
        PolicyState::Policy(p) if p.mode == Mode::None => {
            "mode none opts out; when ready, publish mode testing with a new id".into()
        }
        PolicyState::Policy(_) if !has_tlsrpt => {
            "publish a TLS-RPT record so that failures are reported to you".into()
        }
        PolicyState::Policy(p) if p.mode == Mode::Testing => {
            "clean: after a few weeks of clean TLS-RPT reports, switch to mode: enforce (and change the id)".into()
        }
        PolicyState::Policy(p) if p.max_age < 604_800 => format!(
            "clean: raise max_age from {} to at least 604800 (one week; up to 31557600) so the cache protects senders longer",
            p.max_age
        ),
        PolicyState::Policy(_) => {
            "nothing to do: keep the mx lines and certificates in step with your MX hosts".into()
        }
        _ => "re-run mtasts check after fixing the warnings".into(),
    }
}
