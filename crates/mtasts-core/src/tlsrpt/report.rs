//! TLS-RPT aggregate reports (RFC 8460 §4): the report model, a lenient parser that accepts
//! every variant seen in the wild, validation findings, and the normalised JSON form.
//!
//! Three layers:
//!
//! - the input: JSON bytes, read into a `serde_json::Value` (duplicate member names are noticed,
//!   not silently merged);
//! - the model ([`Report`] and the types it holds): typed enums for the policy and result types,
//!   datetimes as UTC instants, `Option` wherever the input may lack a field, and at every object
//!   level an `extra` map with the members the model does not know, kept verbatim;
//! - the wire form: serde structs with the RFC 8460 field names (private to this module), used by
//!   [`Report`]'s `Serialize` impl and [`Report::to_json`] to write the normalised report.
//!
//! Parsing is lenient: a report that a real sender would send parses, and everything unusual
//! about it comes back as a [`ReportFinding`]. Only JSON that cannot be a report at all (not JSON,
//! not an object, a count that is not an integer, a datetime that is not a datetime, ...) is a
//! [`ReportError`], which names the field.
//!
//! The normalised JSON uses the RFC names, writes `mx-host` as an array (the erratum 6241 form),
//! datetimes as RFC 3339 UTC (`2016-04-01T00:00:00Z`), leaves out what the input left out, and
//! writes back every unknown member. `parse_report(to_json(r)) == r` for every parsed report.

use crate::diag::{Diagnostic, Location, Severity};
use crate::rfc::RfcRef;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::fmt;

pub use super::result::ResultType;

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Resource limits for reading reports. Every reader in [`crate::tlsrpt`] takes one, so that a
/// hostile or broken sender cannot make the reader use unbounded memory.
///
/// The defaults suit a receiver of real reports: RFC 8460 §5.2 notes that receivers commonly cap
/// reports around 10 MB, and a day's report from a large sender compresses well below that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportLimits {
    /// Largest input accepted, in bytes, in whatever form it arrives (JSON, gzip or e-mail).
    /// Default: 10 MiB.
    pub max_input_bytes: usize,
    /// Largest report JSON accepted, in bytes: the output of gzip decompression is capped at this
    /// size *while* decompressing (a gzip bomb stops here), and JSON handed directly to
    /// [`parse_report`] may not be larger either. Default: 64 MiB.
    pub max_decompressed_bytes: usize,
    /// Most entries accepted in the `policies` array. Default: 10 000.
    pub max_policies: usize,
    /// Most `failure-details` entries accepted in the whole report (all policies together).
    /// Default: 100 000.
    pub max_failure_details: usize,
    /// Most JSON values (objects, arrays, strings, numbers...) the report may hold in all,
    /// known members and unknown ones alike. Each costs at most about 100 bytes in memory
    /// beside its text, so this bounds what reading a report can allocate, whatever its
    /// members hold: `{"x": [0,0,0,…]}` is refused here, not read into millions of values.
    /// Default: 1 000 000 (a report with 100 000 failure details of 9 members fits).
    pub max_json_values: usize,
}

impl ReportLimits {
    /// The default limits (see the field docs).
    pub const DEFAULT: ReportLimits = ReportLimits {
        max_input_bytes: 10 * 1024 * 1024,
        max_decompressed_bytes: 64 * 1024 * 1024,
        max_policies: 10_000,
        max_failure_details: 100_000,
        max_json_values: 1_000_000,
    };
}

impl Default for ReportLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

// ---------------------------------------------------------------------------------------------
// Enumerated values
// ---------------------------------------------------------------------------------------------

/// `policy-type` (RFC 8460 §4.4). Unknown values are kept verbatim in [`PolicyType::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyType {
    /// `tlsa`: a DANE policy.
    Tlsa,
    /// `sts`: an MTA-STS policy.
    Sts,
    /// `no-policy-found`: neither.
    NoPolicyFound,
    /// Any other value, as sent.
    Other(String),
}

impl PolicyType {
    /// Reads a `policy-type` value; anything but the three RFC values becomes `Other`.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "tlsa" => PolicyType::Tlsa,
            "sts" => PolicyType::Sts,
            "no-policy-found" => PolicyType::NoPolicyFound,
            other => PolicyType::Other(other.to_string()),
        }
    }

    /// The value as written in a report.
    pub fn as_str(&self) -> &str {
        match self {
            PolicyType::Tlsa => "tlsa",
            PolicyType::Sts => "sts",
            PolicyType::NoPolicyFound => "no-policy-found",
            PolicyType::Other(s) => s,
        }
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// A TLS-RPT aggregate report (RFC 8460 §4.4), normalised.
///
/// Fields the input lacked are `None`; members the model does not know (and known members whose
/// value was `null`) are kept in `extra` and written back by [`Report::to_json`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// `organization-name`.
    pub organization_name: Option<String>,
    /// `date-range`.
    pub date_range: Option<DateRange>,
    /// `contact-info`.
    pub contact_info: Option<String>,
    /// `report-id`.
    pub report_id: Option<String>,
    /// `policies`.
    pub policies: Vec<PolicyEntry>,
    /// Other members of the report object, verbatim.
    pub extra: Map<String, Value>,
}

/// `date-range`: the time frame of the report (RFC 8460 §4.1), as UTC instants.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DateRange {
    /// `start-datetime`.
    pub start: Option<DateTime<Utc>>,
    /// `end-datetime`.
    pub end: Option<DateTime<Utc>>,
    /// Other members, verbatim.
    pub extra: Map<String, Value>,
}

/// One entry of `policies`: a policy, its summary and its failure details.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyEntry {
    /// `policy`.
    pub policy: Option<Policy>,
    /// `summary`.
    pub summary: Option<Summary>,
    /// `failure-details`; `None` when absent, `Some(vec![])` when sent as `[]`.
    pub failure_details: Option<Vec<FailureDetail>>,
    /// Other members, verbatim.
    pub extra: Map<String, Value>,
}

/// `policy`: the policy the sender applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// `policy-type`.
    pub policy_type: Option<PolicyType>,
    /// `policy-string`: the policy, one entry per line (RFC 8460 §4.5).
    pub policy_string: Option<Vec<String>>,
    /// `policy-domain`.
    pub policy_domain: Option<String>,
    /// `mx-host`: the policy's MX patterns (an array, as in erratum 6241).
    pub mx_host: Option<Vec<String>>,
    /// Other members, verbatim.
    pub extra: Map<String, Value>,
}

/// `summary`: session counts (RFC 8460 §4.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// `total-successful-session-count`.
    pub total_successful: Option<u64>,
    /// `total-failure-session-count`.
    pub total_failure: Option<u64>,
    /// Other members, verbatim.
    pub extra: Map<String, Value>,
}

/// One `failure-details` entry (RFC 8460 §4.4).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailureDetail {
    /// `result-type`.
    pub result_type: Option<ResultType>,
    /// `sending-mta-ip`, as sent (not parsed, so that it is written back unchanged).
    pub sending_mta_ip: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `receiving-mx-helo`.
    pub receiving_mx_helo: Option<String>,
    /// `receiving-ip`, as sent.
    pub receiving_ip: Option<String>,
    /// `failed-session-count`.
    pub failed_session_count: Option<u64>,
    /// `additional-information` (read from `additional-info-uri` too).
    pub additional_information: Option<String>,
    /// `failure-reason-code` (read from the draft name `failure-error-code` too).
    pub failure_reason_code: Option<String>,
    /// Other members, verbatim.
    pub extra: Map<String, Value>,
}

impl Summary {
    /// Successful sessions; a missing count is 0.
    pub fn successful(&self) -> u64 {
        self.total_successful.unwrap_or(0)
    }

    /// Failed sessions; a missing count is 0.
    pub fn failed(&self) -> u64 {
        self.total_failure.unwrap_or(0)
    }
}

impl Policy {
    /// The policy lines, with a TLSA policy-string sent as one JSON-encoded array per entry
    /// (Microsoft's form, `["[\"3 1 1 ...\",\"3 1 1 ...\"]"]`) decoded into its records.
    pub fn policy_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for line in self.policy_string.iter().flatten() {
            match decode_string_array(line) {
                Some(items) => out.extend(items),
                None => out.push(line.clone()),
            }
        }
        out
    }

    /// The `mode` of an MTA-STS policy, read from its `policy-string` (`mode: enforce`).
    pub fn sts_mode(&self) -> Option<&str> {
        self.policy_string.iter().flatten().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "mode").then(|| value.trim())
        })
    }
}

impl PolicyEntry {
    /// The sum of `failed-session-count` over the failure details (missing counts are 0).
    pub fn failure_details_sum(&self) -> u64 {
        self.failure_details
            .iter()
            .flatten()
            .map(|d| d.failed_session_count.unwrap_or(0))
            .fold(0u64, u64::saturating_add)
    }
}

impl Report {
    /// Successful sessions over all policies (missing counts are 0).
    pub fn total_successful(&self) -> u64 {
        self.summaries()
            .map(Summary::successful)
            .fold(0, u64::saturating_add)
    }

    /// Failed sessions over all policies, as the summaries say (missing counts are 0).
    pub fn total_failure(&self) -> u64 {
        self.summaries()
            .map(Summary::failed)
            .fold(0, u64::saturating_add)
    }

    /// The sum of `failed-session-count` over every failure detail of every policy.
    pub fn failure_details_sum(&self) -> u64 {
        self.policies
            .iter()
            .map(PolicyEntry::failure_details_sum)
            .fold(0, u64::saturating_add)
    }

    /// Every result type that appears in the report.
    pub fn result_types(&self) -> BTreeSet<&ResultType> {
        self.policies
            .iter()
            .flat_map(|p| p.failure_details.iter().flatten())
            .filter_map(|d| d.result_type.as_ref())
            .collect()
    }

    /// The policy domains named in the report, in order, without repeats.
    pub fn policy_domains(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for d in self
            .policies
            .iter()
            .filter_map(|p| p.policy.as_ref()?.policy_domain.as_deref())
        {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// The normalised JSON form (see the module documentation).
    pub fn to_json(&self) -> Value {
        // Serialising plain structs, strings, numbers and maps into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn summaries(&self) -> impl Iterator<Item = &Summary> {
        self.policies.iter().filter_map(|p| p.summary.as_ref())
    }
}

/// Formats a datetime the way the normalised report writes it: RFC 3339 in UTC with a `Z`
/// (`2016-04-01T00:00:00Z`), with fractional seconds only when there are some.
pub fn format_datetime(dt: &DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A string that holds a JSON array of strings, decoded.
fn decode_string_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

// ---------------------------------------------------------------------------------------------
// The wire form (writing)
// ---------------------------------------------------------------------------------------------

mod wire {
    //! The normalised report with the RFC 8460 field names, borrowing from the model.

    use serde::Serialize;
    use serde_json::{Map, Value};

    #[derive(Serialize)]
    pub(super) struct ReportJson<'a> {
        #[serde(rename = "organization-name", skip_serializing_if = "Option::is_none")]
        pub(super) organization_name: Option<&'a str>,
        #[serde(rename = "date-range", skip_serializing_if = "Option::is_none")]
        pub(super) date_range: Option<DateRangeJson<'a>>,
        #[serde(rename = "contact-info", skip_serializing_if = "Option::is_none")]
        pub(super) contact_info: Option<&'a str>,
        #[serde(rename = "report-id", skip_serializing_if = "Option::is_none")]
        pub(super) report_id: Option<&'a str>,
        pub(super) policies: Vec<PolicyEntryJson<'a>>,
        #[serde(flatten)]
        pub(super) extra: &'a Map<String, Value>,
    }

    #[derive(Serialize)]
    pub(super) struct DateRangeJson<'a> {
        #[serde(rename = "start-datetime", skip_serializing_if = "Option::is_none")]
        pub(super) start_datetime: Option<String>,
        #[serde(rename = "end-datetime", skip_serializing_if = "Option::is_none")]
        pub(super) end_datetime: Option<String>,
        #[serde(flatten)]
        pub(super) extra: &'a Map<String, Value>,
    }

    #[derive(Serialize)]
    pub(super) struct PolicyEntryJson<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) policy: Option<PolicyJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) summary: Option<SummaryJson<'a>>,
        #[serde(rename = "failure-details", skip_serializing_if = "Option::is_none")]
        pub(super) failure_details: Option<Vec<FailureDetailJson<'a>>>,
        #[serde(flatten)]
        pub(super) extra: &'a Map<String, Value>,
    }

    #[derive(Serialize)]
    pub(super) struct PolicyJson<'a> {
        #[serde(rename = "policy-type", skip_serializing_if = "Option::is_none")]
        pub(super) policy_type: Option<&'a str>,
        #[serde(rename = "policy-string", skip_serializing_if = "Option::is_none")]
        pub(super) policy_string: Option<&'a [String]>,
        #[serde(rename = "policy-domain", skip_serializing_if = "Option::is_none")]
        pub(super) policy_domain: Option<&'a str>,
        #[serde(rename = "mx-host", skip_serializing_if = "Option::is_none")]
        pub(super) mx_host: Option<&'a [String]>,
        #[serde(flatten)]
        pub(super) extra: &'a Map<String, Value>,
    }

    #[derive(Serialize)]
    pub(super) struct SummaryJson<'a> {
        #[serde(
            rename = "total-successful-session-count",
            skip_serializing_if = "Option::is_none"
        )]
        pub(super) total_successful: Option<u64>,
        #[serde(
            rename = "total-failure-session-count",
            skip_serializing_if = "Option::is_none"
        )]
        pub(super) total_failure: Option<u64>,
        #[serde(flatten)]
        pub(super) extra: &'a Map<String, Value>,
    }

    #[derive(Serialize)]
    pub(super) struct FailureDetailJson<'a> {
        #[serde(rename = "result-type", skip_serializing_if = "Option::is_none")]
        pub(super) result_type: Option<&'a str>,
        #[serde(rename = "sending-mta-ip", skip_serializing_if = "Option::is_none")]
        pub(super) sending_mta_ip: Option<&'a str>,
        #[serde(
            rename = "receiving-mx-hostname",
            skip_serializing_if = "Option::is_none"
        )]
        pub(super) receiving_mx_hostname: Option<&'a str>,
        #[serde(rename = "receiving-mx-helo", skip_serializing_if = "Option::is_none")]
        pub(super) receiving_mx_helo: Option<&'a str>,
        #[serde(rename = "receiving-ip", skip_serializing_if = "Option::is_none")]
        pub(super) receiving_ip: Option<&'a str>,
        #[serde(
            rename = "failed-session-count",
            skip_serializing_if = "Option::is_none"
        )]
        pub(super) failed_session_count: Option<u64>,
        #[serde(
            rename = "additional-information",
            skip_serializing_if = "Option::is_none"
        )]
        pub(super) additional_information: Option<&'a str>,
        #[serde(
            rename = "failure-reason-code",
            skip_serializing_if = "Option::is_none"
        )]
        pub(super) failure_reason_code: Option<&'a str>,
        #[serde(flatten)]
        pub(super) extra: &'a Map<String, Value>,
    }
}

impl Report {
    fn to_wire(&self) -> wire::ReportJson<'_> {
        wire::ReportJson {
            organization_name: self.organization_name.as_deref(),
            date_range: self.date_range.as_ref().map(|d| wire::DateRangeJson {
                start_datetime: d.start.as_ref().map(format_datetime),
                end_datetime: d.end.as_ref().map(format_datetime),
                extra: &d.extra,
            }),
            contact_info: self.contact_info.as_deref(),
            report_id: self.report_id.as_deref(),
            policies: self.policies.iter().map(PolicyEntry::to_wire).collect(),
            extra: &self.extra,
        }
    }
}

impl PolicyEntry {
    fn to_wire(&self) -> wire::PolicyEntryJson<'_> {
        wire::PolicyEntryJson {
            policy: self.policy.as_ref().map(|p| wire::PolicyJson {
                policy_type: p.policy_type.as_ref().map(PolicyType::as_str),
                policy_string: p.policy_string.as_deref(),
                policy_domain: p.policy_domain.as_deref(),
                mx_host: p.mx_host.as_deref(),
                extra: &p.extra,
            }),
            summary: self.summary.as_ref().map(|s| wire::SummaryJson {
                total_successful: s.total_successful,
                total_failure: s.total_failure,
                extra: &s.extra,
            }),
            failure_details: self.failure_details.as_ref().map(|ds| {
                ds.iter()
                    .map(|d| wire::FailureDetailJson {
                        result_type: d.result_type.as_ref().map(ResultType::as_str),
                        sending_mta_ip: d.sending_mta_ip.as_deref(),
                        receiving_mx_hostname: d.receiving_mx_hostname.as_deref(),
                        receiving_mx_helo: d.receiving_mx_helo.as_deref(),
                        receiving_ip: d.receiving_ip.as_deref(),
                        failed_session_count: d.failed_session_count,
                        additional_information: d.additional_information.as_deref(),
                        failure_reason_code: d.failure_reason_code.as_deref(),
                        extra: &d.extra,
                    })
                    .collect()
            }),
            extra: &self.extra,
        }
    }
}

impl serde::Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and findings
// ---------------------------------------------------------------------------------------------

/// Why the input cannot be read as a report at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The JSON is larger than [`ReportLimits::max_decompressed_bytes`].
    #[error("the report JSON is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON (syntax error, truncated input, nesting too deep).
    #[error("not JSON: {message}")]
    NotJson {
        /// 1-based line of the error (0 if unknown).
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// A member has the wrong JSON type (the report is not an object, `policies` is not an
    /// array, a string field holds a number, ...).
    #[error("{}: expected {expected}, found {found}", shown(.field))]
    WrongType {
        /// Path of the member; empty for the report itself.
        field: String,
        /// What RFC 8460 §4.4 says it is.
        expected: &'static str,
        /// What the input has.
        found: &'static str,
    },
    /// A count is not a non-negative integer that fits in 64 bits.
    #[error("{field}: expected a non-negative integer, found {value}")]
    NotACount {
        /// Path of the count.
        field: String,
        /// The value, as JSON (shortened).
        value: String,
    },
    /// A datetime that is not an RFC 3339 date-time (with or without a zone).
    #[error("{field}: {value:?} is not an RFC 3339 date-time")]
    InvalidDateTime {
        /// Path of the datetime.
        field: String,
        /// The value (shortened).
        value: String,
    },
    /// The report has no `policies` member.
    #[error("policies: the report has no policies array")]
    MissingPolicies,
    /// More policies than [`ReportLimits::max_policies`].
    #[error("policies: {count} entries, more than the limit of {limit}")]
    TooManyPolicies {
        /// How many the report has.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// More failure details than [`ReportLimits::max_failure_details`].
    #[error("{field}: more than {limit} failure-details entries in the report")]
    TooManyFailureDetails {
        /// The `failure-details` array where the limit was passed.
        field: String,
        /// The limit.
        limit: usize,
    },
    /// More JSON values than [`ReportLimits::max_json_values`].
    #[error("{}: the report holds more than {limit} JSON values", shown(.field))]
    TooManyValues {
        /// Where the limit was passed.
        field: String,
        /// The limit.
        limit: usize,
    },
}

fn shown(field: &str) -> &str {
    if field.is_empty() {
        "the report"
    } else {
        field
    }
}

fn field_location(field: &str) -> Location {
    if field.is_empty() {
        Location::Whole
    } else {
        Location::Field {
            field: field.to_string(),
        }
    }
}

impl Diagnostic for ReportError {
    fn code(&self) -> &'static str {
        match self {
            ReportError::TooLarge { .. } => "tlsrpt.report.too-large",
            ReportError::NotJson { .. } => "tlsrpt.report.not-json",
            ReportError::WrongType { .. } => "tlsrpt.report.wrong-type",
            ReportError::NotACount { .. } => "tlsrpt.report.not-a-count",
            ReportError::InvalidDateTime { .. } => "tlsrpt.report.invalid-datetime",
            ReportError::MissingPolicies => "tlsrpt.report.missing-policies",
            ReportError::TooManyPolicies { .. } => "tlsrpt.report.too-many-policies",
            ReportError::TooManyFailureDetails { .. } => "tlsrpt.report.too-many-failure-details",
            ReportError::TooManyValues { .. } => "tlsrpt.report.too-many-values",
        }
    }

    fn severity(&self) -> Severity {
        Severity::Error
    }

    fn rfc(&self) -> RfcRef {
        match self {
            ReportError::TooLarge { .. } | ReportError::TooManyValues { .. } => {
                RfcRef::tlsrpt("5.2")
            }
            ReportError::NotJson { .. } => RfcRef::tlsrpt("4"),
            ReportError::InvalidDateTime { .. } => RfcRef::tlsrpt("4.1"),
            _ => RfcRef::tlsrpt("4.4"),
        }
    }

    fn location(&self) -> Location {
        match self {
            ReportError::TooLarge { .. } => Location::Whole,
            ReportError::NotJson { line, .. } if *line > 0 => Location::Line { line: *line },
            ReportError::NotJson { .. } => Location::Whole,
            ReportError::WrongType { field, .. }
            | ReportError::NotACount { field, .. }
            | ReportError::InvalidDateTime { field, .. }
            | ReportError::TooManyFailureDetails { field, .. }
            | ReportError::TooManyValues { field, .. } => field_location(field),
            ReportError::MissingPolicies | ReportError::TooManyPolicies { .. } => {
                field_location("policies")
            }
        }
    }

    fn hint(&self) -> String {
        match self {
            ReportError::TooLarge { limit, .. } => format!(
                "raise the limit above {limit} bytes (--max-decompressed-bytes) only if you trust the sender of such large reports"
            ),
            ReportError::NotJson { .. } => {
                "check that the file is a TLS-RPT report (JSON, gzip or an e-mail) and was not truncated".into()
            }
            ReportError::WrongType { expected, .. } => {
                format!("RFC 8460 §4.4 defines this member as {expected}; the sender's report is malformed")
            }
            ReportError::NotACount { .. } => {
                "counts are JSON integers (RFC 8460 §4.4); the sender's report is malformed".into()
            }
            ReportError::InvalidDateTime { .. } => {
                "datetimes are RFC 3339 date-times such as 2016-04-01T00:00:00Z".into()
            }
            ReportError::MissingPolicies => {
                "a report carries its results in a policies array; this JSON is not a TLS-RPT report".into()
            }
            ReportError::TooManyPolicies { .. } => {
                "raise the limit (--max-policies) only if you trust the sender".into()
            }
            ReportError::TooManyFailureDetails { .. } => {
                "raise the limit (--max-failure-details) only if you trust the sender".into()
            }
            ReportError::TooManyValues { .. } => {
                "raise the limit (--max-json-values) only if you trust the sender".into()
            }
        }
    }
}

/// How a field is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Absence {
    /// The member is not there.
    Missing,
    /// The member is there with the value `null` (kept in `extra`).
    Null,
    /// The member is an empty string.
    Empty,
}

impl fmt::Display for Absence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Absence::Missing => "missing",
            Absence::Null => "null",
            Absence::Empty => "empty",
        })
    }
}

/// Something unusual about a report that was read anyway (RFC 8460 §4).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportFinding {
    /// The JSON starts with a UTF-8 byte order mark.
    #[error("the report starts with a byte order mark, which JSON text must not have")]
    ByteOrderMark,
    /// A member name appears twice in one object; the last value is kept.
    #[error(
        "member {key:?} appears more than once in the same object; only the last value is kept"
    )]
    DuplicateKey {
        /// Path of the member.
        field: String,
        /// Its name.
        key: String,
    },
    /// A member the RFC does not define; kept verbatim.
    #[error("unknown member {name:?}, kept as is")]
    UnknownField {
        /// Path of the member.
        field: String,
        /// Its name.
        name: String,
    },
    /// A field RFC 8460 §4.4 requires is missing, null or empty.
    #[error("required field is {absence}")]
    MissingRequired {
        /// Path of the field.
        field: String,
        /// How it is missing.
        absence: Absence,
    },
    /// `contact-info` is missing, null or empty.
    #[error("contact-info is {absence}: the report names no contact")]
    MissingContactInfo {
        /// Path of the field.
        field: String,
        /// How it is missing.
        absence: Absence,
    },
    /// `policy-domain` is missing, null or empty.
    #[error("policy-domain is {absence}: the report does not say which domain it is about")]
    MissingPolicyDomain {
        /// Path of the field.
        field: String,
        /// How it is missing.
        absence: Absence,
    },
    /// A session count is missing or null; it counts as 0.
    #[error("session count is {absence}; counted as 0")]
    MissingCount {
        /// Path of the count.
        field: String,
        /// How it is missing.
        absence: Absence,
    },
    /// `sending-mta-ip`, `receiving-ip` or `receiving-mx-hostname` is missing, null or empty
    /// (common: Microsoft and Mail.ru leave them out, Google has sent empty strings).
    #[error("session detail is {absence}")]
    MissingSessionDetail {
        /// Path of the field.
        field: String,
        /// How it is missing.
        absence: Absence,
    },
    /// An `sts` or `tlsa` policy without `policy-string`.
    #[error("no policy-string for a {policy_type} policy")]
    MissingPolicyString {
        /// Path of the policy.
        field: String,
        /// Its type.
        policy_type: String,
    },
    /// A `certificate-not-trusted` or `validation-failure` detail without `failure-reason-code`.
    #[error("result type {result_type} comes without a failure-reason-code")]
    MissingReasonCode {
        /// Path of the failure detail.
        field: String,
        /// Its result type.
        result_type: String,
    },
    /// A datetime without a time zone; read as UTC.
    #[error("datetime {value:?} has no time zone; read as UTC")]
    DateTimeWithoutZone {
        /// Path of the datetime.
        field: String,
        /// The value as sent.
        value: String,
    },
    /// A datetime with a zone other than UTC; converted to UTC.
    #[error("datetime {value:?} is not in UTC; read as {utc}")]
    DateTimeNotUtc {
        /// Path of the datetime.
        field: String,
        /// The value as sent.
        value: String,
        /// The same instant in UTC.
        utc: String,
    },
    /// `end-datetime` is before `start-datetime`.
    #[error("the date range ends ({end}) before it starts ({start})")]
    EndBeforeStart {
        /// `start-datetime`, normalised.
        start: String,
        /// `end-datetime`, normalised.
        end: String,
    },
    /// `total-failure-session-count` differs from the sum of `failed-session-count`.
    #[error("total-failure-session-count is {summary} but the failure details add up to {details}")]
    SummaryMismatch {
        /// Path of the summary count.
        field: String,
        /// `total-failure-session-count` (0 if missing).
        summary: u64,
        /// Sum of `failed-session-count` (0 without failure details).
        details: u128,
    },
    /// A `result-type` that RFC 8460 §4.3 does not define; kept verbatim.
    #[error("result type {value:?} is not one of RFC 8460's; kept as is")]
    UnknownResultType {
        /// Path of the field.
        field: String,
        /// The value.
        value: String,
    },
    /// A `policy-type` other than `tlsa`, `sts` and `no-policy-found`; kept verbatim.
    #[error("policy type {value:?} is not tlsa, sts or no-policy-found; kept as is")]
    UnknownPolicyType {
        /// Path of the field.
        field: String,
        /// The value.
        value: String,
    },
    /// `mx-host` is a string, as printed in RFC 8460; erratum 6241 makes it an array.
    #[error("mx-host is a string, not an array (RFC 8460 as printed); read as a one-entry array")]
    MxHostString {
        /// Path of the field.
        field: String,
    },
    /// An `mx-host` value with the `mx:` key of the policy file left in.
    #[error("mx-host value {value:?} still carries the policy file's \"mx:\" key; kept as is")]
    MxHostPrefix {
        /// Path of the value.
        field: String,
        /// The value.
        value: String,
    },
    /// A member under an old or non-RFC name, read as the RFC field.
    #[error("{old:?} is not the RFC 8460 name; read as {new:?}")]
    OldFieldName {
        /// Path of the member.
        field: String,
        /// The name used.
        old: &'static str,
        /// The RFC name.
        new: &'static str,
    },
    /// Both an old name and the RFC name are present; the old one is kept in `extra`.
    #[error("both {old:?} and {new:?} are present; {new:?} is used and {old:?} kept as is")]
    AliasConflict {
        /// Path of the old-named member.
        field: String,
        /// The old name.
        old: &'static str,
        /// The RFC name.
        new: &'static str,
    },
    /// `policy-string` is a single string, not an array; read as a one-line policy.
    #[error("policy-string is a single string, not an array; read as one line")]
    PolicyStringNotArray {
        /// Path of the field.
        field: String,
    },
    /// `policy-string` is a string holding a JSON-encoded array; decoded into the array.
    #[error("policy-string is a JSON-encoded array inside a string; decoded")]
    PolicyStringEncoded {
        /// Path of the field.
        field: String,
    },
    /// A `policy-string` entry that holds a whole JSON-encoded array (Microsoft's TLSA form);
    /// kept as is ([`Policy::policy_lines`] decodes it).
    #[error("policy-string entry holds a JSON-encoded array of records instead of one record")]
    PolicyStringEncodedEntry {
        /// Path of the entry.
        field: String,
    },
    /// A domain (or MX pattern) that is not a valid host name.
    #[error("{value:?} is not a valid domain name: {reason}")]
    InvalidDomain {
        /// Path of the field.
        field: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A domain given as U-labels; RFC 8460 §4.4 requires A-labels.
    #[error("{value:?} is not in A-label form (expected {a_label:?})")]
    DomainNotALabel {
        /// Path of the field.
        field: String,
        /// The value.
        value: String,
        /// Its A-label form.
        a_label: String,
    },
    /// An IP address field that does not hold an IP address.
    #[error("{value:?} is not an IP address")]
    InvalidIp {
        /// Path of the field.
        field: String,
        /// The value.
        value: String,
    },
    /// The `policies` array is empty.
    #[error("the report has no policies")]
    NoPolicies,
}

impl ReportFinding {
    fn field(&self) -> &str {
        match self {
            ReportFinding::ByteOrderMark | ReportFinding::NoPolicies => "",
            ReportFinding::EndBeforeStart { .. } => "date-range",
            ReportFinding::DuplicateKey { field, .. }
            | ReportFinding::UnknownField { field, .. }
            | ReportFinding::MissingRequired { field, .. }
            | ReportFinding::MissingContactInfo { field, .. }
            | ReportFinding::MissingPolicyDomain { field, .. }
            | ReportFinding::MissingCount { field, .. }
            | ReportFinding::MissingSessionDetail { field, .. }
            | ReportFinding::MissingPolicyString { field, .. }
            | ReportFinding::MissingReasonCode { field, .. }
            | ReportFinding::DateTimeWithoutZone { field, .. }
            | ReportFinding::DateTimeNotUtc { field, .. }
            | ReportFinding::SummaryMismatch { field, .. }
            | ReportFinding::UnknownResultType { field, .. }
            | ReportFinding::UnknownPolicyType { field, .. }
            | ReportFinding::MxHostString { field }
            | ReportFinding::MxHostPrefix { field, .. }
            | ReportFinding::OldFieldName { field, .. }
            | ReportFinding::AliasConflict { field, .. }
            | ReportFinding::PolicyStringNotArray { field }
            | ReportFinding::PolicyStringEncoded { field }
            | ReportFinding::PolicyStringEncodedEntry { field }
            | ReportFinding::InvalidDomain { field, .. }
            | ReportFinding::DomainNotALabel { field, .. }
            | ReportFinding::InvalidIp { field, .. } => field,
        }
    }
}

impl Diagnostic for ReportFinding {
    fn code(&self) -> &'static str {
        match self {
            ReportFinding::ByteOrderMark => "tlsrpt.report.byte-order-mark",
            ReportFinding::DuplicateKey { .. } => "tlsrpt.report.duplicate-member",
            ReportFinding::UnknownField { .. } => "tlsrpt.report.unknown-member",
            ReportFinding::MissingRequired { .. } => "tlsrpt.report.missing-required",
            ReportFinding::MissingContactInfo { .. } => "tlsrpt.report.missing-contact-info",
            ReportFinding::MissingPolicyDomain { .. } => "tlsrpt.report.missing-policy-domain",
            ReportFinding::MissingCount { .. } => "tlsrpt.report.missing-count",
            ReportFinding::MissingSessionDetail { .. } => "tlsrpt.report.missing-session-detail",
            ReportFinding::MissingPolicyString { .. } => "tlsrpt.report.missing-policy-string",
            ReportFinding::MissingReasonCode { .. } => "tlsrpt.report.missing-reason-code",
            ReportFinding::DateTimeWithoutZone { .. } => "tlsrpt.report.datetime-without-zone",
            ReportFinding::DateTimeNotUtc { .. } => "tlsrpt.report.datetime-not-utc",
            ReportFinding::EndBeforeStart { .. } => "tlsrpt.report.end-before-start",
            ReportFinding::SummaryMismatch { .. } => "tlsrpt.report.summary-mismatch",
            ReportFinding::UnknownResultType { .. } => "tlsrpt.report.unknown-result-type",
            ReportFinding::UnknownPolicyType { .. } => "tlsrpt.report.unknown-policy-type",
            ReportFinding::MxHostString { .. } => "tlsrpt.report.mx-host-string",
            ReportFinding::MxHostPrefix { .. } => "tlsrpt.report.mx-host-prefix",
            ReportFinding::OldFieldName { .. } => "tlsrpt.report.old-field-name",
            ReportFinding::AliasConflict { .. } => "tlsrpt.report.alias-conflict",
            ReportFinding::PolicyStringNotArray { .. } => "tlsrpt.report.policy-string-not-array",
            ReportFinding::PolicyStringEncoded { .. } => "tlsrpt.report.policy-string-encoded",
            ReportFinding::PolicyStringEncodedEntry { .. } => {
                "tlsrpt.report.policy-string-encoded-entry"
            }
            ReportFinding::InvalidDomain { .. } => "tlsrpt.report.invalid-domain",
            ReportFinding::DomainNotALabel { .. } => "tlsrpt.report.domain-not-a-label",
            ReportFinding::InvalidIp { .. } => "tlsrpt.report.invalid-ip",
            ReportFinding::NoPolicies => "tlsrpt.report.no-policies",
        }
    }

    fn severity(&self) -> Severity {
        match self {
            ReportFinding::DuplicateKey { .. }
            | ReportFinding::MissingRequired { .. }
            | ReportFinding::EndBeforeStart { .. } => Severity::Error,
            ReportFinding::ByteOrderMark
            | ReportFinding::UnknownField { .. }
            | ReportFinding::MissingSessionDetail { .. }
            | ReportFinding::MissingPolicyString { .. }
            | ReportFinding::MissingReasonCode { .. }
            | ReportFinding::UnknownResultType { .. }
            | ReportFinding::MxHostString { .. }
            | ReportFinding::PolicyStringEncodedEntry { .. } => Severity::Info,
            _ => Severity::Warning,
        }
    }

    fn rfc(&self) -> RfcRef {
        let section = match self {
            ReportFinding::ByteOrderMark | ReportFinding::DuplicateKey { .. } => "4",
            ReportFinding::DateTimeWithoutZone { .. }
            | ReportFinding::DateTimeNotUtc { .. }
            | ReportFinding::EndBeforeStart { .. } => "4.1",
            ReportFinding::UnknownResultType { .. } | ReportFinding::MissingReasonCode { .. } => {
                "4.3"
            }
            ReportFinding::PolicyStringNotArray { .. }
            | ReportFinding::PolicyStringEncoded { .. }
            | ReportFinding::PolicyStringEncodedEntry { .. }
            | ReportFinding::MissingPolicyString { .. } => "4.5",
            _ => "4.4",
        };
        RfcRef::tlsrpt(section)
    }

    fn location(&self) -> Location {
        field_location(self.field())
    }

    fn hint(&self) -> String {
        let s = match self {
            ReportFinding::ByteOrderMark => "nothing to do: the mark was skipped",
            ReportFinding::DuplicateKey { .. } => {
                "I-JSON (RFC 7493) forbids repeated member names; ask the sender to fix its report writer"
            }
            ReportFinding::UnknownField { .. } => {
                "nothing to do: the member is kept; check it is not a misspelt RFC 8460 name"
            }
            ReportFinding::MissingRequired { .. } => {
                "the sender's report lacks a field RFC 8460 §4.4 requires; tell the contact-info address"
            }
            ReportFinding::MissingContactInfo { .. } => {
                "nothing to fix on your side; reach the sender through its organisation instead"
            }
            ReportFinding::MissingPolicyDomain { .. } => {
                "the domain is usually in the filename, the TLS-Report-Domain header or the subject"
            }
            ReportFinding::MissingCount { .. } => {
                "the sender should always send both summary counts; 0 was assumed"
            }
            ReportFinding::MissingSessionDetail { .. } => {
                "nothing to do: some senders leave these out; the counts are still valid"
            }
            ReportFinding::MissingPolicyString { .. } => {
                "nothing to do: compare with the policy you publish to see what the sender applied"
            }
            ReportFinding::MissingReasonCode { .. } => {
                "RFC 8460 §4.3 asks for a failure-reason-code here; look for details in additional-information"
            }
            ReportFinding::DateTimeWithoutZone { .. } => {
                "nothing to do: read as UTC, which is what senders that omit the zone mean"
            }
            ReportFinding::DateTimeNotUtc { .. } => {
                "nothing to do: converted; RFC 8460 §4.1 reports cover UTC days"
            }
            ReportFinding::EndBeforeStart { .. } => {
                "the sender's date range is reversed; do not rely on the report's time frame"
            }
            ReportFinding::SummaryMismatch { .. } => {
                "some senders (Mail.ru) count this way, and failure types may overlap (RFC 8460 §4.4); use the summary for totals"
            }
            ReportFinding::UnknownResultType { .. } => {
                "check the IANA STARTTLS Validation Result Types registry for newer types"
            }
            ReportFinding::UnknownPolicyType { .. } => {
                "the sender's report is malformed: policy-type is tlsa, sts or no-policy-found"
            }
            ReportFinding::MxHostString { .. } => "nothing to do: read as a one-entry array",
            ReportFinding::MxHostPrefix { .. } => {
                "nothing to do on your side if your policy file is right; the sender copied the whole line"
            }
            ReportFinding::OldFieldName { .. } => {
                "nothing to do: the value is read under the RFC name"
            }
            ReportFinding::AliasConflict { .. } => "compare both values; the RFC-named one is used",
            ReportFinding::PolicyStringNotArray { .. }
            | ReportFinding::PolicyStringEncoded { .. } => {
                "nothing to do: RFC 8460 §4.5 defines policy-string as an array of lines"
            }
            ReportFinding::PolicyStringEncodedEntry { .. } => {
                "nothing to do: each TLSA record is still readable"
            }
            ReportFinding::InvalidDomain { .. } => {
                "check the policy you publish: this name cannot match a host"
            }
            ReportFinding::DomainNotALabel { .. } => {
                "RFC 8460 §4.4 wants A-labels (xn--...); the value is kept as sent"
            }
            ReportFinding::InvalidIp { .. } => "nothing to do: the value is kept as sent",
            ReportFinding::NoPolicies => {
                "a report with no policies says nothing; check the sender's reporting"
            }
        };
        s.to_string()
    }
}

/// A report read from JSON, with everything unusual about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedReport {
    /// The report.
    pub report: Report,
    /// The findings, in document order.
    pub findings: Vec<ReportFinding>,
}

impl ParsedReport {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity() == Severity::Error)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading JSON, noticing repeated member names
// ---------------------------------------------------------------------------------------------

/// The path of the value being read, built lazily (only when a duplicate is found).
enum Seg<'a> {
    Root,
    Key(&'a Seg<'a>, &'a str),
    Index(&'a Seg<'a>, usize),
}

impl Seg<'_> {
    fn render(&self) -> String {
        match self {
            Seg::Root => String::new(),
            Seg::Key(parent, key) => child(&parent.render(), key),
            Seg::Index(parent, i) => index(&parent.render(), *i),
        }
    }
}

/// What reading one JSON document may still allocate, and where it ran out.
struct Budget {
    values_left: Cell<usize>,
    exhausted_at: RefCell<Option<String>>,
}

struct ValueSeed<'a> {
    seg: &'a Seg<'a>,
    dups: &'a RefCell<Vec<(String, String)>>,
    budget: &'a Budget,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        // Counted before the value is built, so no more than the budget is ever allocated.
        match self.budget.values_left.get().checked_sub(1) {
            Some(left) => self.budget.values_left.set(left),
            None => {
                *self.budget.exhausted_at.borrow_mut() = Some(self.seg.render());
                return Err(serde::de::Error::custom("too many JSON values"));
            }
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let seg = Seg::Index(self.seg, out.len());
            let seed = ValueSeed {
                seg: &seg,
                dups: self.dups,
                budget: self.budget,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let seg = Seg::Key(self.seg, &key);
            let value = map.next_value_seed(ValueSeed {
                seg: &seg,
                dups: self.dups,
                budget: self.budget,
            })?;
            if out.contains_key(&key) {
                self.dups.borrow_mut().push((seg.render(), key.clone()));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Reads JSON text into a value of at most `max_values` values; repeated member names are
/// returned as (path, name).
fn read_json(
    bytes: &[u8],
    max_values: usize,
) -> Result<(Value, Vec<(String, String)>), ReportError> {
    let dups = RefCell::new(Vec::new());
    let budget = Budget {
        values_left: Cell::new(max_values),
        exhausted_at: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = ValueSeed {
        seg: &Seg::Root,
        dups: &dups,
        budget: &budget,
    };
    let value = seed
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| match budget.exhausted_at.take() {
            Some(field) => ReportError::TooManyValues {
                field,
                limit: max_values,
            },
            None => ReportError::NotJson {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            },
        })?;
    Ok((value, dups.into_inner()))
}

// ---------------------------------------------------------------------------------------------
// The lenient reader
// ---------------------------------------------------------------------------------------------

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a report from JSON bytes (RFC 8460 §4.4), leniently: see the module documentation.
///
/// The JSON may not be larger than [`ReportLimits::max_decompressed_bytes`]; the policy and
/// failure-detail counts are checked against the other limits.
pub fn parse_report(json: &[u8], limits: &ReportLimits) -> Result<ParsedReport, ReportError> {
    if json.len() > limits.max_decompressed_bytes {
        return Err(ReportError::TooLarge {
            size: json.len(),
            limit: limits.max_decompressed_bytes,
        });
    }
    let mut findings = Vec::new();
    let body = match json.strip_prefix(UTF8_BOM) {
        Some(rest) => {
            findings.push(ReportFinding::ByteOrderMark);
            rest
        }
        None => json,
    };
    let (value, dups) = read_json(body, limits.max_json_values)?;
    findings.extend(
        dups.into_iter()
            .map(|(field, key)| ReportFinding::DuplicateKey { field, key }),
    );
    let mut reader = Reader {
        limits,
        findings,
        failure_details: 0,
    };
    let report = reader.report(&value)?;
    Ok(ParsedReport {
        report,
        findings: reader.findings,
    })
}

/// Reads a report from an already-parsed JSON value (the same rules as [`parse_report`], less
/// the byte-level ones: size, byte order mark, repeated member names).
pub fn parse_report_value(
    value: &Value,
    limits: &ReportLimits,
) -> Result<ParsedReport, ReportError> {
    let mut reader = Reader {
        limits,
        findings: Vec::new(),
        failure_details: 0,
    };
    let report = reader.report(value)?;
    Ok(ParsedReport {
        report,
        findings: reader.findings,
    })
}

fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Shortens a value for an error message.
fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

fn object<'v>(v: &'v Value, field: &str) -> Result<&'v Map<String, Value>, ReportError> {
    v.as_object().ok_or_else(|| ReportError::WrongType {
        field: field.to_string(),
        expected: "an object",
        found: json_type(v),
    })
}

fn array<'v>(v: &'v Value, field: &str) -> Result<&'v [Value], ReportError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| ReportError::WrongType {
            field: field.to_string(),
            expected: "an array",
            found: json_type(v),
        })
}

fn string(v: &Value, field: &str) -> Result<String, ReportError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| ReportError::WrongType {
            field: field.to_string(),
            expected: "a string",
            found: json_type(v),
        })
}

fn count(v: &Value, field: &str) -> Result<u64, ReportError> {
    v.as_u64().ok_or_else(|| ReportError::NotACount {
        field: field.to_string(),
        value: excerpt(&v.to_string()),
    })
}

/// How a member of `map` is absent, given that the model has no value for it.
fn absence(map: &Map<String, Value>, key: &str) -> Absence {
    match map.get(key) {
        Some(Value::Null) => Absence::Null,
        Some(_) => Absence::Empty,
        None => Absence::Missing,
    }
}

/// The absence of an optional string field: `None` when it has a non-empty value.
fn string_absence(value: Option<&str>, map: &Map<String, Value>, key: &str) -> Option<Absence> {
    match value {
        Some("") => Some(Absence::Empty),
        Some(_) => None,
        None => Some(absence(map, key)),
    }
}

struct Reader<'l> {
    limits: &'l ReportLimits,
    findings: Vec<ReportFinding>,
    failure_details: usize,
}

/// Splits an object into known members (handled by `known`) and the rest (kept in `extra`).
/// A known member whose value is `null` goes to `extra` too, so it is written back as it came.
fn split_members<'v>(
    map: &'v Map<String, Value>,
    known: &[&str],
    path: &str,
    findings: &mut Vec<ReportFinding>,
) -> (Vec<(&'v str, &'v Value)>, Map<String, Value>) {
    let mut members = Vec::new();
    let mut extra = Map::new();
    for (k, v) in map {
        if known.contains(&k.as_str()) {
            if v.is_null() {
                extra.insert(k.clone(), Value::Null);
            } else {
                members.push((k.as_str(), v));
            }
        } else {
            findings.push(ReportFinding::UnknownField {
                field: child(path, k),
                name: k.clone(),
            });
            extra.insert(k.clone(), v.clone());
        }
    }
    (members, extra)
}

impl Reader<'_> {
    fn push(&mut self, f: ReportFinding) {
        self.findings.push(f);
    }

    /// Reads an old-named member into its RFC field when the RFC name is absent; otherwise
    /// keeps it in `extra`. Returns the value to read, if any.
    fn alias<'v>(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        old: &'static str,
        new: &'static str,
        value: &'v Value,
        extra: &mut Map<String, Value>,
    ) -> Option<&'v Value> {
        let field = child(path, old);
        if map.contains_key(new) {
            self.push(ReportFinding::AliasConflict { field, old, new });
            extra.insert(old.to_string(), value.clone());
            None
        } else {
            self.push(ReportFinding::OldFieldName { field, old, new });
            Some(value)
        }
    }

    fn report(&mut self, v: &Value) -> Result<Report, ReportError> {
        let map = object(v, "")?;
        let (members, extra) = split_members(
            map,
            &[
                "organization-name",
                "date-range",
                "contact-info",
                "report-id",
                "policies",
            ],
            "",
            &mut self.findings,
        );
        let mut r = Report {
            extra,
            ..Report::default()
        };
        let mut policies = None;
        for (k, v) in members {
            match k {
                "organization-name" => r.organization_name = Some(string(v, k)?),
                "date-range" => r.date_range = Some(self.date_range(v, k)?),
                "contact-info" => r.contact_info = Some(string(v, k)?),
                "report-id" => r.report_id = Some(string(v, k)?),
                _ => policies = Some(v),
            }
        }
        for (key, value) in [
            ("organization-name", r.organization_name.as_deref()),
            ("report-id", r.report_id.as_deref()),
        ] {
            if let Some(absence) = string_absence(value, map, key) {
                self.push(ReportFinding::MissingRequired {
                    field: key.into(),
                    absence,
                });
            }
        }
        if r.date_range.is_none() {
            self.push(ReportFinding::MissingRequired {
                field: "date-range".into(),
                absence: absence(map, "date-range"),
            });
        }
        if let Some(absence) = string_absence(r.contact_info.as_deref(), map, "contact-info") {
            self.push(ReportFinding::MissingContactInfo {
                field: "contact-info".into(),
                absence,
            });
        }
        let policies = policies.ok_or(ReportError::MissingPolicies)?;
        let items = array(policies, "policies")?;
        if items.len() > self.limits.max_policies {
            return Err(ReportError::TooManyPolicies {
                count: items.len(),
                limit: self.limits.max_policies,
            });
        }
        if items.is_empty() {
            self.push(ReportFinding::NoPolicies);
        }
        for (i, item) in items.iter().enumerate() {
            let entry = self.policy_entry(item, &index("policies", i))?;
            r.policies.push(entry);
        }
        Ok(r)
    }

    fn date_range(&mut self, v: &Value, path: &str) -> Result<DateRange, ReportError> {
        let map = object(v, path)?;
        let (members, extra) = split_members(
            map,
            &["start-datetime", "end-datetime"],
            path,
            &mut self.findings,
        );
        let mut d = DateRange {
            extra,
            ..DateRange::default()
        };
        for (k, v) in members {
            let field = child(path, k);
            let t = self.datetime(v, &field)?;
            if k == "start-datetime" {
                d.start = Some(t);
            } else {
                d.end = Some(t);
            }
        }
        for (key, value) in [("start-datetime", d.start), ("end-datetime", d.end)] {
            if value.is_none() {
                self.push(ReportFinding::MissingRequired {
                    field: child(path, key),
                    absence: absence(map, key),
                });
            }
        }
        if let (Some(start), Some(end)) = (d.start, d.end)
            && end < start
        {
            self.push(ReportFinding::EndBeforeStart {
                start: format_datetime(&start),
                end: format_datetime(&end),
            });
        }
        Ok(d)
    }

    fn datetime(&mut self, v: &Value, field: &str) -> Result<DateTime<Utc>, ReportError> {
        let s = string(v, field)?;
        let t = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
            let utc = dt.with_timezone(&Utc);
            if dt.offset().local_minus_utc() != 0 {
                self.push(ReportFinding::DateTimeNotUtc {
                    field: field.to_string(),
                    value: s.clone(),
                    utc: format_datetime(&utc),
                });
            }
            return Ok(utc);
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
                self.push(ReportFinding::DateTimeWithoutZone {
                    field: field.to_string(),
                    value: s.clone(),
                });
                return Ok(naive.and_utc());
            }
        }
        Err(ReportError::InvalidDateTime {
            field: field.to_string(),
            value: excerpt(&s),
        })
    }

    fn policy_entry(&mut self, v: &Value, path: &str) -> Result<PolicyEntry, ReportError> {
        let map = object(v, path)?;
        let (members, extra) = split_members(
            map,
            &["policy", "summary", "failure-details"],
            path,
            &mut self.findings,
        );
        let mut e = PolicyEntry {
            extra,
            ..PolicyEntry::default()
        };
        for (k, v) in members {
            let field = child(path, k);
            match k {
                "policy" => e.policy = Some(self.policy(v, &field)?),
                "summary" => e.summary = Some(self.summary(v, &field)?),
                _ => {
                    let items = array(v, &field)?;
                    let mut details = Vec::with_capacity(items.len().min(1024));
                    for (i, item) in items.iter().enumerate() {
                        self.failure_details += 1;
                        if self.failure_details > self.limits.max_failure_details {
                            return Err(ReportError::TooManyFailureDetails {
                                field,
                                limit: self.limits.max_failure_details,
                            });
                        }
                        details.push(self.failure_detail(item, &index(&field, i))?);
                    }
                    e.failure_details = Some(details);
                }
            }
        }
        for key in ["policy", "summary"] {
            let missing = match key {
                "policy" => e.policy.is_none(),
                _ => e.summary.is_none(),
            };
            if missing {
                self.push(ReportFinding::MissingRequired {
                    field: child(path, key),
                    absence: absence(map, key),
                });
            }
        }
        if let Some(summary) = &e.summary {
            let reported = summary.failed();
            let details: u128 = e
                .failure_details
                .iter()
                .flatten()
                .map(|d| u128::from(d.failed_session_count.unwrap_or(0)))
                .sum();
            if u128::from(reported) != details {
                self.push(ReportFinding::SummaryMismatch {
                    field: child(&child(path, "summary"), "total-failure-session-count"),
                    summary: reported,
                    details,
                });
            }
        }
        Ok(e)
    }

    fn policy(&mut self, v: &Value, path: &str) -> Result<Policy, ReportError> {
        let map = object(v, path)?;
        let (members, mut extra) = split_members(
            map,
            &[
                "policy-type",
                "policy-string",
                "policy-domain",
                "mx-host",
                "mx-host-pattern",
            ],
            path,
            &mut self.findings,
        );
        let mut p = Policy::default();
        for (k, v) in members {
            let field = child(path, k);
            match k {
                "policy-type" => {
                    let s = string(v, &field)?;
                    let t = PolicyType::from_wire(&s);
                    if let PolicyType::Other(value) = &t {
                        self.push(ReportFinding::UnknownPolicyType {
                            field,
                            value: value.clone(),
                        });
                    }
                    p.policy_type = Some(t);
                }
                "policy-string" => p.policy_string = Some(self.policy_string(v, &field)?),
                "policy-domain" => {
                    let s = string(v, &field)?;
                    if !s.is_empty() {
                        self.check_domain(&field, &s, false);
                    }
                    p.policy_domain = Some(s);
                }
                "mx-host" => p.mx_host = Some(self.mx_host(v, &field)?),
                _ => {
                    if let Some(v) =
                        self.alias(map, path, "mx-host-pattern", "mx-host", v, &mut extra)
                    {
                        p.mx_host = Some(self.mx_host(v, &child(path, "mx-host-pattern"))?);
                    }
                }
            }
        }
        p.extra = extra;
        if p.policy_type.is_none() {
            self.push(ReportFinding::MissingRequired {
                field: child(path, "policy-type"),
                absence: absence(map, "policy-type"),
            });
        }
        if let Some(absence) = string_absence(p.policy_domain.as_deref(), map, "policy-domain") {
            self.push(ReportFinding::MissingPolicyDomain {
                field: child(path, "policy-domain"),
                absence,
            });
        }
        if let Some(t @ (PolicyType::Sts | PolicyType::Tlsa)) = &p.policy_type
            && p.policy_string.is_none()
        {
            self.push(ReportFinding::MissingPolicyString {
                field: child(path, "policy-string"),
                policy_type: t.to_string(),
            });
        }
        Ok(p)
    }

    fn policy_string(&mut self, v: &Value, field: &str) -> Result<Vec<String>, ReportError> {
        match v {
            Value::String(s) => match decode_string_array(s) {
                Some(items) => {
                    self.push(ReportFinding::PolicyStringEncoded {
                        field: field.to_string(),
                    });
                    Ok(items)
                }
                None => {
                    self.push(ReportFinding::PolicyStringNotArray {
                        field: field.to_string(),
                    });
                    Ok(vec![s.clone()])
                }
            },
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let f = index(field, i);
                    let s = string(item, &f)?;
                    if decode_string_array(&s).is_some() {
                        self.push(ReportFinding::PolicyStringEncodedEntry { field: f });
                    }
                    out.push(s);
                }
                Ok(out)
            }
            other => Err(ReportError::WrongType {
                field: field.to_string(),
                expected: "an array of strings",
                found: json_type(other),
            }),
        }
    }

    fn mx_host(&mut self, v: &Value, field: &str) -> Result<Vec<String>, ReportError> {
        let (values, paths): (Vec<String>, Vec<String>) = match v {
            Value::String(s) => {
                self.push(ReportFinding::MxHostString {
                    field: field.to_string(),
                });
                (vec![s.clone()], vec![field.to_string()])
            }
            Value::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                let mut paths = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let f = index(field, i);
                    values.push(string(item, &f)?);
                    paths.push(f);
                }
                (values, paths)
            }
            other => {
                return Err(ReportError::WrongType {
                    field: field.to_string(),
                    expected: "an array of strings",
                    found: json_type(other),
                });
            }
        };
        for (value, path) in values.iter().zip(paths) {
            let lower = value.trim_start().to_ascii_lowercase();
            if lower.starts_with("mx:") {
                self.push(ReportFinding::MxHostPrefix {
                    field: path,
                    value: value.clone(),
                });
            } else {
                self.check_domain(&path, value, true);
            }
        }
        Ok(values)
    }

    fn check_domain(&mut self, field: &str, value: &str, pattern: bool) {
        let name = if pattern {
            value.strip_prefix("*.").unwrap_or(value)
        } else {
            value
        };
        match crate::domain::to_a_label(name) {
            Err(e) => self.push(ReportFinding::InvalidDomain {
                field: field.to_string(),
                value: value.to_string(),
                reason: e.to_string(),
            }),
            Ok(a_label) if !name.is_ascii() => {
                let a_label = if name.len() == value.len() {
                    a_label
                } else {
                    format!("*.{a_label}")
                };
                self.push(ReportFinding::DomainNotALabel {
                    field: field.to_string(),
                    value: value.to_string(),
                    a_label,
                });
            }
            Ok(_) => {}
        }
    }

    fn summary(&mut self, v: &Value, path: &str) -> Result<Summary, ReportError> {
        let map = object(v, path)?;
        let (members, extra) = split_members(
            map,
            &[
                "total-successful-session-count",
                "total-failure-session-count",
            ],
            path,
            &mut self.findings,
        );
        let mut s = Summary {
            extra,
            ..Summary::default()
        };
        for (k, v) in members {
            let n = count(v, &child(path, k))?;
            if k == "total-successful-session-count" {
                s.total_successful = Some(n);
            } else {
                s.total_failure = Some(n);
            }
        }
        for (key, value) in [
            ("total-successful-session-count", s.total_successful),
            ("total-failure-session-count", s.total_failure),
        ] {
            if value.is_none() {
                self.push(ReportFinding::MissingCount {
                    field: child(path, key),
                    absence: absence(map, key),
                });
            }
        }
        Ok(s)
    }

    fn failure_detail(&mut self, v: &Value, path: &str) -> Result<FailureDetail, ReportError> {
        let map = object(v, path)?;
        let (members, mut extra) = split_members(
            map,
            &[
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
            ],
            path,
            &mut self.findings,
        );
        let mut d = FailureDetail::default();
        for (k, v) in members {
            let field = child(path, k);
            match k {
                "result-type" => {
                    let t = ResultType::from_wire(&string(v, &field)?);
                    if let ResultType::Other(value) = &t {
                        self.push(ReportFinding::UnknownResultType {
                            field,
                            value: value.clone(),
                        });
                    }
                    d.result_type = Some(t);
                }
                "sending-mta-ip" => d.sending_mta_ip = Some(self.ip(v, &field)?),
                "receiving-ip" => d.receiving_ip = Some(self.ip(v, &field)?),
                "receiving-mx-hostname" => d.receiving_mx_hostname = Some(string(v, &field)?),
                "receiving-mx-helo" => d.receiving_mx_helo = Some(string(v, &field)?),
                "failed-session-count" => d.failed_session_count = Some(count(v, &field)?),
                "additional-information" => d.additional_information = Some(string(v, &field)?),
                "failure-reason-code" => d.failure_reason_code = Some(string(v, &field)?),
                "additional-info-uri" => {
                    if let Some(v) = self.alias(
                        map,
                        path,
                        "additional-info-uri",
                        "additional-information",
                        v,
                        &mut extra,
                    ) {
                        d.additional_information = Some(string(v, &field)?);
                    }
                }
                _ => {
                    if let Some(v) = self.alias(
                        map,
                        path,
                        "failure-error-code",
                        "failure-reason-code",
                        v,
                        &mut extra,
                    ) {
                        d.failure_reason_code = Some(string(v, &field)?);
                    }
                }
            }
        }
        d.extra = extra;
        if d.result_type.is_none() {
            self.push(ReportFinding::MissingRequired {
                field: child(path, "result-type"),
                absence: absence(map, "result-type"),
            });
        }
        for (key, value) in [
            ("sending-mta-ip", d.sending_mta_ip.as_deref()),
            ("receiving-mx-hostname", d.receiving_mx_hostname.as_deref()),
            ("receiving-ip", d.receiving_ip.as_deref()),
        ] {
            if let Some(absence) = string_absence(value, map, key) {
                self.push(ReportFinding::MissingSessionDetail {
                    field: child(path, key),
                    absence,
                });
            }
        }
        if d.failed_session_count.is_none() {
            self.push(ReportFinding::MissingCount {
                field: child(path, "failed-session-count"),
                absence: absence(map, "failed-session-count"),
            });
        }
        if let Some(t) = &d.result_type
            && t.wants_reason_code()
            && d.failure_reason_code.as_deref().is_none_or(str::is_empty)
        {
            self.push(ReportFinding::MissingReasonCode {
                field: path.to_string(),
                result_type: t.to_string(),
            });
        }
        Ok(d)
    }

    fn ip(&mut self, v: &Value, field: &str) -> Result<String, ReportError> {
        let s = string(v, field)?;
        if !s.is_empty() && s.parse::<std::net::IpAddr>().is_err() {
            self.push(ReportFinding::InvalidIp {
                field: field.to_string(),
                value: s.clone(),
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_ERRATUM: &str = r#"{
      "organization-name": "Company-X",
      "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
      "contact-info": "sts-reporting@company-x.example",
      "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
      "policies": [{
        "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
                   "policy-domain": "company-y.example", "mx-host": ["*.mail.company-y.example"]},
        "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 3},
        "failure-details": [{"result-type": "validation-failure", "sending-mta-ip": "198.51.100.62",
          "receiving-ip": "203.0.113.58", "receiving-mx-hostname": "mx.company-y.example",
          "failed-session-count": 3, "failure-reason-code": "X509_V_ERR"}]
      }]
    }"#;

    fn parse(s: &str) -> ParsedReport {
        match parse_report(s.as_bytes(), &ReportLimits::default()) {
            Ok(p) => p,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    #[test]
    fn erratum_form_round_trips_exactly() {
        let p = parse(RFC_ERRATUM);
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        let input: Value = serde_json::from_str(RFC_ERRATUM).unwrap_or(Value::Null);
        assert_eq!(p.report.to_json(), input);
        assert_eq!(
            p.report.policies[0]
                .policy
                .as_ref()
                .and_then(Policy::sts_mode),
            Some("testing")
        );
    }

    #[test]
    fn duplicate_member_is_an_error_finding() {
        let p = parse(r#"{"report-id": "a", "report-id": "b", "policies": []}"#);
        assert_eq!(p.report.report_id.as_deref(), Some("b"));
        assert!(p.findings.contains(&ReportFinding::DuplicateKey {
            field: "report-id".into(),
            key: "report-id".into()
        }));
    }

    #[test]
    fn null_known_member_is_written_back() {
        let p = parse(r#"{"contact-info": null, "policies": []}"#);
        assert_eq!(p.report.contact_info, None);
        assert_eq!(p.report.to_json()["contact-info"], Value::Null);
        assert!(p.findings.contains(&ReportFinding::MissingContactInfo {
            field: "contact-info".into(),
            absence: Absence::Null
        }));
    }
}
