//! The judgement, sans-IO: from what the probes saw ([`Observations`]) and the time, every
//! finding, the policy a sender would apply, and the verdict — what a sender that honours
//! MTA-STS does with mail for the domain today — plus the next step of the rollout.
//!
//! No clock, socket or file is touched here; `now` is a parameter.

use mtasts_core::Diagnostic;
use mtasts_core::Severity;
use mtasts_core::sts::fetch::{
    FetchLimits, check_declared_length, check_media_type, check_received, check_status,
};
use mtasts_core::sts::policy::{CoverageFinding, Mode, Policy, coverage, lint_policy};
use mtasts_core::sts::record::{SelectError, StsRecord, is_sts_record, select_sts_record};
use mtasts_core::tlsrpt::record::{
    SelectError as RptSelectError, TlsRptRecord, is_tlsrpt_record, select_tlsrpt_record,
};
use serde::Serialize;

use crate::catalog;
use crate::obs::{
    AddressLookup, CertVerdict, FetchStage, MxLookup, Observations, PolicyFetch, SmtpProbe,
    SmtpStage, TlsSession, TxtLookup,
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

/// One finding of the checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckFinding {
    /// The stable id (see [`catalog::CATALOG`]).
    pub id: String,
    /// How bad it is here.
    pub severity: Severity,
    /// What it is about: a record, the policy URL, an MX address...
    pub subject: String,
    /// What is wrong, in one line, with the names, codes and dates involved.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// The rule.
    pub rule: String,
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
    pub findings: Vec<CheckFinding>,
    /// What the probes saw.
    pub observations: Observations,
}

impl DomainReport {
    /// The ids of the findings at warning level or worse, sorted and deduplicated.
    pub fn problem_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .map(|f| f.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

struct Findings(Vec<CheckFinding>);

impl Findings {
    fn push(&mut self, id: &str, severity: Severity, subject: &str, message: String) {
        let (fix, rule) = catalog::lookup(id)
            .map(|c| (c.fix.to_owned(), c.rule.to_owned()))
            .unwrap_or_default();
        self.0.push(CheckFinding {
            id: id.to_owned(),
            severity,
            subject: subject.to_owned(),
            message,
            fix,
            rule,
        });
    }

    /// Pushes the catalogue's default severity.
    fn add(&mut self, id: &str, subject: &str, message: String) {
        let sev = catalog::lookup(id).map_or(Severity::Error, |c| c.severity);
        self.push(id, sev, subject, message);
    }

    fn diag(&mut self, d: &(impl Diagnostic + ?Sized), subject: &str) {
        let loc = d.location().to_string();
        let subject = if loc == "whole input" {
            subject.to_owned()
        } else {
            format!("{subject}, {loc}")
        };
        let hint = d.hint();
        self.0.push(CheckFinding {
            id: d.code().to_owned(),
            severity: d.severity(),
            subject,
            message: d.to_string(),
            fix: if hint.is_empty() {
                catalog::lookup(d.code()).map_or(String::new(), |c| c.fix.to_owned())
            } else {
                hint
            },
            rule: d.rfc().to_string(),
        });
    }

    fn has(&self, id: &str) -> bool {
        self.0.iter().any(|f| f.id == id)
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

fn joined(record: &[Vec<u8>]) -> Vec<u8> {
    record.concat()
}

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Judges one domain's observations.
pub fn assess(obs: Observations, s: &AssessSettings) -> DomainReport {
    let mut f = Findings(Vec::new());
    let d = obs.ascii.clone();
    let sts_name = format!("_mta-sts.{d} TXT");
    let rpt_name = format!("_smtp._tls.{d} TXT");

    // ---- _mta-sts (RFC 8461 §3.1)
    let mut record: Option<StsRecord> = None;
    let mut record_published = false;
    let mut no_policy_why = String::new();
    match &obs.sts_txt {
        TxtLookup::Found { records, .. } => {
            record_published = records.iter().any(|r| is_sts_record(&joined(r)));
            match select_sts_record(records) {
                Ok(rec) => {
                    if let Some(text) = records.iter().map(|r| joined(r)).find(|t| is_sts_record(t))
                        && let Ok((_, warnings)) = StsRecord::parse_with_warnings(&text)
                    {
                        for w in &warnings {
                            f.diag(w, &sts_name);
                        }
                    }
                    record = Some(rec);
                }
                Err(SelectError::NoRecord) => {
                    no_policy_why = "no TXT record at _mta-sts begins with v=STSv1".into();
                    f.push(
                        "sts.record.none",
                        Severity::Warning,
                        &sts_name,
                        "no record begins with v=STSv1 (other TXT records are ignored)".into(),
                    );
                }
                Err(e) => {
                    no_policy_why = format!("the MTA-STS record is invalid: {e}");
                    f.diag(&e, &sts_name);
                }
            }
        }
        TxtLookup::NxDomain { .. } | TxtLookup::NoData { .. } => {
            no_policy_why = "no _mta-sts TXT record".into();
            let how = if matches!(obs.sts_txt, TxtLookup::NxDomain { .. }) {
                "NXDOMAIN"
            } else {
                "NODATA"
            };
            f.push(
                "sts.record.none",
                Severity::Warning,
                &sts_name,
                format!("no MTA-STS record ({how})"),
            );
        }
        TxtLookup::Failed { reason, .. } => {
            no_policy_why = "the _mta-sts lookup failed".into();
            f.add(
                "sts.record.lookup-failed",
                &sts_name,
                format!("the lookup failed: {reason}"),
            );
        }
    }
    if obs.sts_txt.millis() > s.slow_dns_millis {
        f.add(
            "dns.slow",
            &sts_name,
            format!("the answer took {} ms", obs.sts_txt.millis()),
        );
    }

    // ---- _smtp._tls (RFC 8460 §3)
    let mut tlsrpt: Option<TlsRptRecord> = None;
    match &obs.tlsrpt_txt {
        TxtLookup::Found { records, .. } => match select_tlsrpt_record(records) {
            Ok(rec) => {
                if let Some(text) = records
                    .iter()
                    .map(|r| joined(r))
                    .find(|t| is_tlsrpt_record(t))
                    && let Ok((_, warnings)) = TlsRptRecord::parse_with_warnings(&text)
                {
                    for w in &warnings {
                        f.diag(w, &rpt_name);
                    }
                }
                tlsrpt = Some(rec);
            }
            Err(RptSelectError::NoRecord) => f.push(
                "tlsrpt.record.none",
                Severity::Warning,
                &rpt_name,
                "no record begins with v=TLSRPTv1".into(),
            ),
            Err(e) => f.diag(&e, &rpt_name),
        },
        TxtLookup::NxDomain { .. } | TxtLookup::NoData { .. } => f.push(
            "tlsrpt.record.none",
            Severity::Warning,
            &rpt_name,
            "no TLS-RPT record: failures to reach your MX over TLS go unreported".into(),
        ),
        TxtLookup::Failed { reason, .. } => f.add(
            "tlsrpt.record.lookup-failed",
            &rpt_name,
            format!("the lookup failed: {reason}"),
        ),
    }
    for rua in &obs.rua_domains {
        if let Err(why) = &rua.accepts_mail {
            f.add(
                "tlsrpt.rua.no-mx",
                &format!("rua {}", rua.uri),
                format!("reports to {} cannot be delivered: {why}", rua.domain),
            );
        }
    }

    // ---- the policy fetch (RFC 8461 §3.3) and the policy (§3.2)
    let mut policy: Option<Policy> = None;
    let mut fetch_error: Option<String> = None;
    if let Some(fetch) = &obs.policy_fetch {
        let (p, err) = judge_fetch(fetch, s, &mut f);
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
    let mx_severity = if record_published && mode != Some(Mode::None) {
        Severity::Error
    } else {
        Severity::Warning
    };

    // ---- MX records and hosts
    match &obs.mx {
        MxLookup::Null => f.add(
            "mx.null",
            &format!("{d} MX"),
            "a null MX (0 .): the domain accepts no mail".into(),
        ),
        MxLookup::Implicit => f.add(
            "mx.implicit",
            &format!("{d} MX"),
            format!("no MX record: mail goes to {d}'s own address"),
        ),
        MxLookup::NxDomain => f.add(
            "mx.nxdomain",
            &format!("{d} MX"),
            format!("{d} does not exist"),
        ),
        MxLookup::NoData => f.add(
            "mx.none",
            &format!("{d} MX"),
            "no MX record and no address".into(),
        ),
        MxLookup::Failed { reason } => f.add(
            "mx.lookup-failed",
            &format!("{d} MX"),
            format!("the lookup failed: {reason}"),
        ),
        MxLookup::Found { .. } => {}
    }
    if obs.mx_authentic {
        f.add(
            "dnssec.signed",
            &format!("{d} MX"),
            "the answer carried the AD flag (DNSSEC-validated)".into(),
        );
    }
    for host in &obs.mx_hosts {
        let subject = format!("MX {}", host.name);
        match &host.addresses {
            AddressLookup::NxDomain => f.push(
                "mx.host-not-found",
                Severity::Error,
                &subject,
                format!("{} does not exist (NXDOMAIN)", host.name),
            ),
            AddressLookup::NoAddress => f.push(
                "mx.host-no-address",
                Severity::Error,
                &subject,
                format!("{} has no A or AAAA record", host.name),
            ),
            AddressLookup::Failed { reason } => f.push(
                "mx.host-lookup-failed",
                Severity::Error,
                &subject,
                format!("cannot resolve {}: {reason}", host.name),
            ),
            AddressLookup::Found { .. } => {}
        }
        if let Some(target) = &host.cname_target {
            f.add(
                "mx.cname",
                &subject,
                format!(
                    "{} is a CNAME to {target}; senders validate the certificate against {}",
                    host.name, host.name
                ),
            );
        }
        if !host.tlsa.is_empty() {
            f.add(
                "dane.tlsa",
                &subject,
                format!(
                    "{} TLSA record(s) at _25._tcp.{}{}",
                    host.tlsa.len(),
                    host.name,
                    if host.tlsa_authentic {
                        " (DNSSEC-validated)"
                    } else {
                        " (not DNSSEC-validated: DANE senders ignore them)"
                    }
                ),
            );
        }
        for probe in &host.smtp {
            judge_smtp(&host.name, probe, mx_severity, s, &mut f);
        }
    }

    // ---- coverage (RFC 8461 §4.1)
    let linted_policy = policy.as_ref();
    if let Some(p) = linted_policy
        && p.mode != Mode::None
        && !obs.mx_hosts.is_empty()
    {
        let names: Vec<&str> = obs.mx_hosts.iter().map(|h| h.name.as_str()).collect();
        for c in coverage(p, &names) {
            if matches!(c, CoverageFinding::Covered { .. }) {
                continue;
            }
            f.diag(&c, "policy");
        }
    }

    // A domain that accepts no mail needs neither MTA-STS nor TLS-RPT.
    if matches!(obs.mx, MxLookup::Null) {
        for x in &mut f.0 {
            if x.id == "sts.record.none" || x.id == "tlsrpt.record.none" {
                x.severity = Severity::Info;
            }
        }
    }
    let verdict_outcome = verdict(&obs, &state);
    let categories = categories(&obs, &state, &f);
    let next_step = if matches!(obs.mx, MxLookup::Null) && record.is_none() {
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
        observations: obs,
    }
}

/// Judges the fetch. Returns the policy (when the body parses) and, when a sender could not
/// use it, why.
fn judge_fetch(
    fetch: &PolicyFetch,
    s: &AssessSettings,
    f: &mut Findings,
) -> (Option<Policy>, Option<String>) {
    let url = fetch.url.as_str();
    let before = f.0.len();
    if let Some(tls) = &fetch.tls {
        judge_cert("sts.fetch", tls, Severity::Error, url, s, f);
    }
    let mut policy = None;
    let mut body_usable = false;
    if let Some(fail) = &fetch.failure {
        let (id, msg) = match fail.stage {
            FetchStage::Resolve => ("sts.fetch.host-not-found", fail.reason.clone()),
            FetchStage::Connect if fail.timeout => ("sts.fetch.timeout", fail.reason.clone()),
            FetchStage::Connect => ("sts.fetch.connect-failed", fail.reason.clone()),
            FetchStage::Handshake if fail.old_tls_only => (
                "sts.fetch.tls-version",
                format!(
                    "{} (the server speaks only TLS older than 1.2)",
                    fail.reason
                ),
            ),
            _ if fail.timeout => ("sts.fetch.timeout", fail.reason.clone()),
            FetchStage::Handshake => ("sts.fetch.tls-failed", fail.reason.clone()),
            FetchStage::Response => ("sts.fetch.no-response", fail.reason.clone()),
            FetchStage::Body => ("sts.fetch.incomplete-body", fail.reason.clone()),
        };
        f.add(id, url, msg);
    }
    if let Some(status) = fetch.status {
        match check_status(status, fetch.location.as_deref()) {
            Err(e) => f.diag(&e, url),
            Ok(()) => {
                body_usable = fetch.failure.is_none();
                if let Err(p) = check_media_type(fetch.content_type.as_deref()) {
                    let sev = if s.limits.require_text_plain {
                        Severity::Error
                    } else {
                        Severity::Warning
                    };
                    f.push("sts.fetch.media-type", sev, url, p.to_string());
                }
                let size = check_declared_length(fetch.content_length, &s.limits)
                    .and_then(|()| check_received(fetch.body_bytes, &s.limits));
                if let Err(e) = size {
                    f.diag(&e, url);
                    body_usable = false;
                }
            }
        }
    }
    if body_usable {
        let lint = lint_policy(&fetch.body);
        for e in &lint.errors {
            f.diag(e, "policy");
        }
        for w in &lint.warnings {
            f.diag(w, "policy");
        }
        policy = lint.policy;
    }
    let fetch_error = f.0[before..]
        .iter()
        .find(|x| x.severity == Severity::Error)
        .map(|x| x.message.clone());
    (policy, fetch_error)
}

fn judge_cert(
    prefix: &str,
    tls: &TlsSession,
    sev: Severity,
    subject: &str,
    s: &AssessSettings,
    f: &mut Findings,
) {
    let names = |c: &TlsSession| {
        c.chain
            .first()
            .map(|l| l.names.join(", "))
            .unwrap_or_default()
    };
    let (suffix, msg) = match &tls.verdict {
        CertVerdict::Valid => {
            if let Some(leaf) = tls.chain.first() {
                let days = (leaf.not_after - s.now) / 86_400;
                if leaf.not_after > s.now && days < s.expiry_warning_days {
                    f.push(
                        &format!("{prefix}.cert-expiring-soon"),
                        Severity::Warning,
                        subject,
                        format!(
                            "the certificate expires in {days} days ({})",
                            fmt_time(leaf.not_after)
                        ),
                    );
                }
            }
            return;
        }
        CertVerdict::Expired { not_after } => (
            "cert-expired",
            format!(
                "the certificate for {} expired on {} ({} days ago)",
                names(tls),
                fmt_time(*not_after),
                (s.now - not_after) / 86_400
            ),
        ),
        CertVerdict::NotYetValid { not_before } => (
            "cert-not-yet-valid",
            format!(
                "the certificate for {} is valid only from {}",
                names(tls),
                fmt_time(*not_before)
            ),
        ),
        CertVerdict::NameMismatch {
            expected,
            presented,
        } => (
            "cert-name-mismatch",
            format!(
                "the certificate names {} but not {expected}",
                if presented.is_empty() {
                    "nothing".to_owned()
                } else {
                    presented.join(", ")
                }
            ),
        ),
        CertVerdict::SelfSigned => (
            "cert-self-signed",
            format!("the certificate for {} is self-signed", names(tls)),
        ),
        CertVerdict::UntrustedCa { issuer } => (
            "cert-untrusted-ca",
            format!("the certificate chains to {issuer}, which is not a trusted root"),
        ),
        CertVerdict::ChainIncomplete { issuer } => (
            "cert-chain-incomplete",
            format!(
                "only the leaf certificate was sent; its issuer {issuer} is not a trusted root (missing intermediate?)"
            ),
        ),
        CertVerdict::Invalid { reason } => (
            "cert-invalid",
            format!("the certificate is not valid: {reason}"),
        ),
    };
    f.push(&format!("{prefix}.{suffix}"), sev, subject, msg);
}

fn judge_smtp(host: &str, p: &SmtpProbe, tls_sev: Severity, s: &AssessSettings, f: &mut Findings) {
    let subject = format!("MX {host} [{}]", p.address);
    if let Some(ms) = p.greeting_millis
        && ms > s.slow_greeting_millis
    {
        f.add(
            "smtp.greeting-slow",
            &subject,
            format!("the greeting took {ms} ms"),
        );
    }
    if p.starttls_offered == Some(false) {
        f.push(
            "smtp.starttls-missing",
            tls_sev,
            &subject,
            format!(
                "EHLO does not offer STARTTLS (offered: {})",
                if p.extensions.is_empty() {
                    "nothing".to_owned()
                } else {
                    p.extensions.join(" ")
                }
            ),
        );
    }
    if let Some(tls) = &p.tls {
        judge_cert("smtp", tls, tls_sev, &subject, s, f);
    }
    if let Some(fail) = &p.failure {
        let (id, sev) = match fail.stage {
            _ if fail.timeout => ("smtp.timeout", Severity::Error),
            SmtpStage::Connect => ("smtp.connect-failed", Severity::Error),
            SmtpStage::Greeting | SmtpStage::Ehlo | SmtpStage::EhloTls => {
                ("smtp.rejected", Severity::Error)
            }
            SmtpStage::Starttls => ("smtp.starttls-refused", tls_sev),
            SmtpStage::Handshake if fail.reason.contains("older than 1.2") => {
                ("smtp.tls-version", tls_sev)
            }
            SmtpStage::Handshake => ("smtp.tls-failed", tls_sev),
            SmtpStage::Mail => ("smtp.mail-rejected", Severity::Error),
            SmtpStage::Rcpt => ("smtp.rcpt-rejected", Severity::Error),
        };
        f.push(
            id,
            sev,
            &subject,
            format!("{}: {}", stage_name(fail.stage), fail.reason),
        );
    }
    if let Some(r) = &p.mail
        && r.code / 100 != 2
    {
        f.push(
            "smtp.mail-rejected",
            Severity::Error,
            &subject,
            format!("MAIL FROM:<> answered {r}"),
        );
    }
    if let Some(r) = &p.rcpt
        && r.code / 100 != 2
    {
        f.push(
            "smtp.rcpt-rejected",
            Severity::Error,
            &subject,
            format!("RCPT TO:<postmaster@...> answered {r}"),
        );
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
    /// The session reached the transaction, with or without TLS.
    Session {
        /// Whether TLS was used.
        tls: bool,
        /// `None` when the TLS session passes RFC 8461 §4.2 validation; otherwise why not.
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

fn attempt(p: &SmtpProbe) -> Attempt {
    if let Some(fail) = &p.failure
        && matches!(
            fail.stage,
            SmtpStage::Connect | SmtpStage::Greeting | SmtpStage::Ehlo
        )
    {
        return Attempt::Unreachable(format!("{}: {}", stage_name(fail.stage), fail.reason));
    }
    let invalid = if p.starttls_offered == Some(false) {
        Some("STARTTLS not offered".to_owned())
    } else if let Some(fail) = p
        .failure
        .as_ref()
        .filter(|x| matches!(x.stage, SmtpStage::Starttls | SmtpStage::Handshake))
    {
        Some(format!("{}: {}", stage_name(fail.stage), fail.reason))
    } else {
        match p.tls.as_ref().map(|t| &t.verdict) {
            Some(CertVerdict::Valid) => None,
            Some(v) => Some(format!("certificate {}", verdict_word(v))),
            None => Some("no TLS".to_owned()),
        }
    };
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
        invalid,
        txn,
    }
}

fn verdict_word(v: &CertVerdict) -> &'static str {
    match v {
        CertVerdict::Valid => "valid",
        CertVerdict::Expired { .. } => "expired",
        CertVerdict::NotYetValid { .. } => "not yet valid",
        CertVerdict::NameMismatch { .. } => "for another name",
        CertVerdict::SelfSigned => "self-signed",
        CertVerdict::UntrustedCa { .. } => "from an untrusted CA",
        CertVerdict::ChainIncomplete { .. } => "chain incomplete",
        CertVerdict::Invalid { .. } => "invalid",
    }
}

/// RFC 8461 §5 (and RFC 5321 §5.1) as a sender applies them, over the probes' results.
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
        MxLookup::Failed { reason } => {
            return (
                SenderOutcome::Defer,
                format!("the MX lookup fails ({reason}): senders retry later"),
            );
        }
        MxLookup::Found { .. } | MxLookup::Implicit => {}
    }
    let (mode, policy) = match state {
        PolicyState::Policy(p) => (Some(p.mode), Some(p)),
        _ => (None, None),
    };
    let covered = |h: &str| policy.is_some_and(|p| p.allows_mx(h));
    // Every address, in the order a sender tries them.
    let mut tried: Vec<(u16, &str, Attempt)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for host in &obs.mx_hosts {
        if mode == Some(Mode::Enforce) && !covered(&host.name) {
            skipped.push(format!("{} (not in the policy)", host.name));
            continue;
        }
        if host.smtp.is_empty() {
            skipped.push(format!("{} (no address)", host.name));
        }
        for p in &host.smtp {
            tried.push((host.preference, host.name.as_str(), attempt(p)));
        }
    }
    let requires_valid = mode == Some(Mode::Enforce);
    // The address that takes the message.
    let chosen = tried.iter().position(|(_, _, a)| match a {
        Attempt::Unreachable(_) => false,
        Attempt::Session { invalid, .. } => !requires_valid || invalid.is_none(),
    });
    let refusals: Vec<String> = tried
        .iter()
        .filter_map(|(_, h, a)| match a {
            Attempt::Unreachable(why) => Some(format!("{h} ({why})")),
            Attempt::Session {
                invalid: Some(why), ..
            } if requires_valid => Some(format!("{h} ({why})")),
            _ => None,
        })
        .chain(skipped.iter().cloned())
        .collect();
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
    // the same or more preferred hosts (a load-balanced pool fails intermittently).
    let failures: Vec<String> = tried
        .iter()
        .filter(|(p, _, _)| p <= pref)
        .filter_map(|(_, h, a)| match a {
            Attempt::Session {
                invalid: Some(why), ..
            } => Some(format!("{h}: {why}")),
            _ => None,
        })
        .chain(
            obs.mx_hosts
                .iter()
                .filter(|hst| mode == Some(Mode::Testing) && hst.preference <= *pref)
                .filter(|hst| !covered(&hst.name))
                .map(|hst| format!("{}: not in the policy", hst.name)),
        )
        .collect();
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
            if failures.is_empty() && chosen_invalid.is_none() && covered(host) {
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
            .any(|x| x.severity == Severity::Error && x.id.starts_with(prefix))
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
        .any(|x| x.id.starts_with("smtp.cert-") && x.severity >= Severity::Warning)
    {
        out.push("certificate-problem");
    }
    if f.0.iter().any(|x| {
        matches!(
            x.id.as_str(),
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
        return format!("fix the errors first, starting with {}: {}", e.id, e.fix);
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
