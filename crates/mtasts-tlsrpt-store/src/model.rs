//! The types the store takes and gives. Times are UTC; days are `YYYY-MM-DD` of the report's
//! `date-range` start (UTC), the unit of every daily figure.

use chrono::{DateTime, NaiveDate, Utc};
use mtasts_core::tlsrpt::report::Report;
use serde::Serialize;

/// How an input reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// A file given to `mtasts report ingest` (JSON, gzip, one e-mail, or a message of an
    /// mbox file or a Maildir).
    File,
    /// A message fetched over IMAP.
    Imap,
    /// An HTTPS POST (RFC 8460 §5.4).
    Https,
}

impl Via {
    /// Every value.
    pub const ALL: [Via; 3] = [Via::File, Via::Imap, Via::Https];

    /// The name, as stored and serialised (`file`, `imap`, `https`).
    pub fn as_str(self) -> &'static str {
        match self {
            Via::File => "file",
            Via::Imap => "imap",
            Via::Https => "https",
        }
    }

    /// The value named `name` ([`Via::as_str`]).
    pub fn from_name(name: &str) -> Option<Via> {
        Via::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

/// How far a stored report can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// A mailed report whose DKIM signature did not verify, or that had none: RFC 8460 §3 says
    /// to ignore it; kept (in quarantine), left out of the statistics unless asked for.
    Unverified,
    /// Received over HTTPS, which RFC 8460 §5.4 does not authenticate.
    Https,
    /// A bare report file (JSON or gzip) given by the operator, who vouches for it.
    Operator,
    /// A mailed report with a valid DKIM signature of the reporting domain.
    Verified,
}

impl Trust {
    /// Every value, least trusted first.
    pub const ALL: [Trust; 4] = [
        Trust::Unverified,
        Trust::Https,
        Trust::Operator,
        Trust::Verified,
    ];

    /// The name, as stored and serialised (`unverified`, `https`, `operator`, `verified`).
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Unverified => "unverified",
            Trust::Https => "https",
            Trust::Operator => "operator",
            Trust::Verified => "verified",
        }
    }

    /// The value named `name` ([`Trust::as_str`]).
    pub fn from_name(name: &str) -> Option<Trust> {
        Trust::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// One input, as received, before anything else is done with it.
#[derive(Clone, Debug)]
pub struct RawInput<'a> {
    /// The bytes, exactly as received.
    pub bytes: &'a [u8],
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// How.
    pub via: Via,
    /// Where from: a path (with `#N` for the Nth message of an mbox), `imap://…/FOLDER;UID=N`,
    /// or the HTTPS peer's address.
    pub origin: &'a str,
}

/// A parsed report to store.
#[derive(Clone, Debug)]
pub struct NewReport<'a> {
    /// The raw input it came from ([`crate::Store::put_raw`]).
    pub raw_id: i64,
    /// The report.
    pub report: &'a Report,
    /// How it came, and how far it is trusted.
    pub via: Via,
    /// Trust.
    pub trust: Trust,
    /// The `d=` of the DKIM signature that verified, for mailed reports.
    pub dkim_domain: Option<&'a str>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// The key that makes a report unique: `organization-name` and `report-id` as sent (a report
/// lacking either is keyed by the SHA-256 of its raw input, in hex, prefixed `sha256:`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ReportKey {
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
}

/// What storing a report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PutOutcome {
    /// Stored for the first time.
    Stored {
        /// Its id.
        id: i64,
    },
    /// Already stored under the same key: nothing new, counted as a duplicate. When the new
    /// arrival is trusted more than the stored one (a verified copy of an unverified report),
    /// the stored report's trust is raised.
    Duplicate {
        /// The id of the stored report.
        id: i64,
        /// Whether its trust was raised.
        upgraded: bool,
        /// The stored report's trust now.
        trust: Trust,
    },
}

/// One input to keep with what became of it, stored in one transaction by
/// [`crate::Store::put_input`].
#[derive(Clone, Debug)]
pub struct NewInput<'a> {
    /// The raw input.
    pub raw: RawInput<'a>,
    /// What to do with it.
    pub fate: InputFate<'a>,
}

/// What to do with an input once its raw bytes are kept.
#[derive(Clone, Debug)]
pub enum InputFate<'a> {
    /// Put it in quarantine (it is not a report, or too large).
    Quarantine(QuarantineReason),
    /// Store its report; `untrusted`: the report is not authenticated, and is put in quarantine
    /// for this reason too unless a trusted copy of it is already stored.
    Report {
        /// The report.
        report: &'a Report,
        /// Trust.
        trust: Trust,
        /// The `d=` of the DKIM signature that verified, for mailed reports.
        dkim_domain: Option<&'a str>,
        /// Why it is not trusted, if it is not.
        untrusted: Option<QuarantineReason>,
    },
}

/// What [`crate::Store::put_input`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputOutcome {
    /// The report was stored, or was already.
    Report {
        /// The raw input's id.
        raw_id: i64,
        /// The report's outcome.
        outcome: PutOutcome,
    },
    /// The input is in quarantine.
    Quarantined {
        /// The raw input's id.
        raw_id: i64,
        /// The quarantine entry.
        entry: i64,
        /// The report it holds, stored with trust `unverified`, when it parsed.
        report: Option<i64>,
    },
}

/// Why an input is in quarantine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantineReason {
    /// A stable code: a core diagnostic code (`tlsrpt.report.not-json`, …) or
    /// `dkim.none`, `dkim.fail`, `dkim.temperror`, `dkim.no-tlsrpt-service`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// A quarantined input, as listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuarantineEntry {
    /// Its id.
    pub id: i64,
    /// The raw input.
    pub raw_id: i64,
    /// When it was quarantined.
    pub at: DateTime<Utc>,
    /// How it came.
    pub via: Via,
    /// Where from.
    pub origin: String,
    /// Why.
    pub reason: QuarantineReason,
    /// The report it holds, when it parsed (an unverified mailed report is stored too, with
    /// trust `unverified`).
    pub report: Option<i64>,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Which reports an analysis covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this policy domain (A-label, lower case).
    pub domain: Option<String>,
    /// Only days from this one on.
    pub since: Option<NaiveDate>,
    /// Only days up to this one.
    pub until: Option<NaiveDate>,
    /// Count unverified reports too.
    pub include_unverified: bool,
}

/// One day of one policy domain, with every breakdown `mtasts report summary` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DaySummary {
    /// The policy domain.
    pub domain: String,
    /// The day.
    pub day: NaiveDate,
    /// Reports that cover it.
    pub reports: u64,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
    /// Failed sessions by result type.
    pub by_result_type: Vec<Count>,
    /// Failed sessions by receiving MX host name.
    pub by_receiving_mx: Vec<Count>,
    /// Sessions (successful, failed) by sending organisation.
    pub by_organization: Vec<OrgCount>,
    /// Failed sessions by sending IP.
    pub by_sending_ip: Vec<Count>,
    /// The policies the senders saw.
    pub policies: Vec<SeenPolicy>,
}

/// A name and a count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The name (`-` when the report did not say).
    pub name: String,
    /// The count.
    pub count: u64,
}

/// An organisation's sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrgCount {
    /// `organization-name`.
    pub organization: String,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// A policy as senders reported it (`policy-type`, and for `sts` the mode and mx lines of
/// its `policy-string`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeenPolicy {
    /// `sts`, `tlsa`, `no-policy-found`, ….
    pub policy_type: String,
    /// For `sts`: the `mode` line's value.
    pub mode: Option<String>,
    /// For `sts`: the `mx` lines' values.
    pub mx: Vec<String>,
    /// The organisations that reported it.
    pub organizations: Vec<String>,
    /// Reports that carried it.
    pub reports: u64,
}

/// One failure-detail row with where it came from, for the readiness judgement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureRow {
    /// The day.
    pub day: NaiveDate,
    /// The reporting organisation.
    pub organization: String,
    /// The report's `report-id`.
    pub report_id: String,
    /// The policy type of the entry (`sts`, `tlsa`, …) and, for `sts`, its mode.
    pub policy_type: String,
    /// For `sts`: the mode the sender applied.
    pub mode: Option<String>,
    /// `result-type`.
    pub result_type: String,
    /// `sending-mta-ip` (`-` when absent).
    pub sending_ip: String,
    /// `receiving-mx-hostname` (`-` when absent).
    pub receiving_mx: String,
    /// `receiving-ip` (`-` when absent).
    pub receiving_ip: String,
    /// `failure-reason-code` (empty when absent).
    pub reason: String,
    /// `failed-session-count`.
    pub sessions: u64,
}

/// The sessions of one organisation on one day for one domain, with the mode it applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    /// The day.
    pub day: NaiveDate,
    /// The reporting organisation.
    pub organization: String,
    /// The report's `report-id`.
    pub report_id: String,
    /// The policy type (`sts`, …).
    pub policy_type: String,
    /// For `sts`: the mode.
    pub mode: Option<String>,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// Everything the readiness judgement needs about one domain, straight from the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DomainHistory {
    /// The policy domain.
    pub domain: String,
    /// Sessions per report entry.
    pub sessions: Vec<SessionRow>,
    /// Every failure detail.
    pub failures: Vec<FailureRow>,
}

/// What a prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Reports.
    pub reports: u64,
    /// Quarantined inputs.
    pub quarantined: u64,
    /// Raw inputs no longer referenced.
    pub raw: u64,
}

/// How the SQLite writer grouped the write operations ([`crate::Store::write_groups`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriteGroups {
    /// Write transactions committed.
    pub transactions: u64,
    /// Write operations they carried.
    pub operations: u64,
}

/// How much the store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Raw inputs.
    pub raw: u64,
    /// Reports.
    pub reports: u64,
    /// Quarantined inputs.
    pub quarantined: u64,
}
