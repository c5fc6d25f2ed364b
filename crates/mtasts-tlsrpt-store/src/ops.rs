//! The operations, written once for both backends against [`Conn`]: each [`Op`] runs inside
//! one transaction that the backend opens before and commits after (or rolls back on error);
//! on SQLite, a write runs under its own savepoint of a transaction it may share with the
//! writes queued beside it (group commit, see `sqlite`).
//!
//! [`Conn`]'s methods are `async` so that PostgreSQL's calls can wait on the network; the
//! SQLite backend runs the same code on its writer thread (writes) and tokio's blocking pool
//! (reads), where its calls complete without ever waiting (see `sqlite::drive`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use mtasts_core::tlsrpt::report::{PolicyType, Report};

use crate::error::DbError;
use crate::sql::{self, Dialect};
use crate::value::{Corrupt, Param, Reader, Row, day_text};
use crate::{
    Count, DaySummary, DomainHistory, FailureRow, Filter, InputOutcome, NewReport, OrgCount,
    Pruned, PutOutcome, QuarantineEntry, QuarantineReason, ReportKey, SeenPolicy, SessionRow,
    Totals, Trust, Via,
};

/// One connection inside a transaction.
pub(crate) trait Conn {
    fn dialect(&self) -> Dialect;
    /// Runs a statement and returns its rows.
    async fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, DbError>;
    /// Runs a statement and returns how many rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, DbError>;
    /// Runs several statements without parameters.
    async fn batch(&mut self, sql: &str) -> Result<(), DbError>;
}

/// What went wrong in an operation, before the backend names itself and its target.
#[derive(Debug)]
pub(crate) enum OpError {
    Db(DbError),
    Corrupt(Corrupt),
    NotFound {
        table: &'static str,
        id: i64,
    },
    SchemaTooNew {
        found: i64,
    },
    SchemaInvalid(String),
    /// Something that cannot happen did (named for the error message).
    Internal(&'static str),
}

impl From<DbError> for OpError {
    fn from(e: DbError) -> Self {
        OpError::Db(e)
    }
}

impl From<Corrupt> for OpError {
    fn from(e: Corrupt) -> Self {
        OpError::Corrupt(e)
    }
}

/// An operation: its name (in errors), whether it writes, and what it does in its transaction.
pub(crate) trait Op: Send + 'static {
    type Output: Send + 'static;
    const NAME: &'static str;
    const WRITE: bool;
    async fn run<C: Conn>(self, c: &mut C) -> Result<Self::Output, OpError>;
}

/// Session counts are stored capped at 2^40 (no sender reaches that in a day), so that the sums
/// of the analyses cannot overflow a `BIGINT`.
const MAX_COUNT: u64 = 1 << 40;

fn count_param(n: Option<u64>) -> Param {
    Param::Int(n.map(|n| n.min(MAX_COUNT) as i64))
}

/// The first row of a result.
fn first(rows: Vec<Row>) -> Option<Row> {
    rows.into_iter().next()
}

// --- schema ----------------------------------------------------------------------------------

/// Brings the schema to [`sql::SCHEMA_VERSION`], refusing a newer one.
pub(crate) struct Migrate;

impl Op for Migrate {
    type Output = ();
    const NAME: &'static str = "migrate";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<(), OpError> {
        let dialect = c.dialect();
        if let Some(lock) = dialect.migration_lock() {
            c.batch(lock).await?;
        }
        let version = current_version(c).await?;
        if version > sql::SCHEMA_VERSION {
            return Err(OpError::SchemaTooNew { found: version });
        }
        if version == sql::SCHEMA_VERSION {
            return Ok(());
        }
        if version == 0 && !schema_table_exists(c).await? {
            c.batch(sql::CREATE_SCHEMA_TABLE).await?;
        }
        for migration in sql::MIGRATIONS.iter().skip(version as usize) {
            c.batch(&dialect.ddl(migration)).await?;
        }
        c.execute(sql::CLEAR_SCHEMA_VERSION, &[]).await?;
        c.execute(sql::SET_SCHEMA_VERSION, &[Param::int(sql::SCHEMA_VERSION)])
            .await?;
        Ok(())
    }
}

/// Reads the schema version (0 for a database without the schema).
pub(crate) struct SchemaVersion;

impl Op for SchemaVersion {
    type Output = i64;
    const NAME: &'static str = "schema_version";
    const WRITE: bool = false;

    async fn run<C: Conn>(self, c: &mut C) -> Result<i64, OpError> {
        current_version(c).await
    }
}

async fn schema_table_exists<C: Conn>(c: &mut C) -> Result<bool, OpError> {
    let rows = c.query(c.dialect().schema_table_exists(), &[]).await?;
    let n = match first(rows) {
        Some(row) => Reader::aggregate(row, "tlsrpt_schema").int(0, "count")?,
        None => 0,
    };
    Ok(n > 0)
}

async fn current_version<C: Conn>(c: &mut C) -> Result<i64, OpError> {
    if !schema_table_exists(c).await? {
        return Ok(0);
    }
    let rows = c.query(sql::SCHEMA_VERSIONS, &[]).await?;
    let mut versions = Vec::new();
    for row in rows {
        versions.push(Reader::aggregate(row, "tlsrpt_schema").int(0, "version")?);
    }
    match versions.as_slice() {
        [] => Ok(0),
        [v] if *v >= 0 => Ok(*v),
        [v] => Err(OpError::SchemaInvalid(format!("version {v} is negative"))),
        many => Err(OpError::SchemaInvalid(format!(
            "tlsrpt_schema has {} rows, not one",
            many.len()
        ))),
    }
}

// --- raw inputs ------------------------------------------------------------------------------

/// Lower-case hex of the SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

pub(crate) struct PutRaw {
    pub(crate) sha256: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) received_at: i64,
    pub(crate) via: Via,
    pub(crate) origin: String,
}

impl Op for PutRaw {
    type Output = i64;
    const NAME: &'static str = "put_raw";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<i64, OpError> {
        let size = i64::try_from(self.bytes.len()).unwrap_or(i64::MAX);
        let inserted = c
            .query(
                sql::INSERT_RAW,
                &[
                    Param::text(self.sha256.clone()),
                    Param::Bytes(self.bytes),
                    Param::int(size),
                    Param::int(self.received_at),
                    Param::text(self.via.as_str()),
                    Param::text(self.origin),
                ],
            )
            .await?;
        let row = match first(inserted) {
            Some(row) => row,
            None => {
                let existing = c
                    .query(sql::RAW_BY_SHA256, &[Param::text(self.sha256)])
                    .await?;
                // The conflicting row was committed before this statement ran.
                first(existing).ok_or(OpError::Internal(
                    "tlsrpt_raw: the row that conflicted on sha256 is not there",
                ))?
            }
        };
        Ok(Reader::with_id(row, "tlsrpt_raw")?.id())
    }
}

// --- reports ---------------------------------------------------------------------------------

/// A report turned into the rows that store it.
pub(crate) struct PutReport {
    raw_id: i64,
    organization_name: Option<String>,
    report_id: Option<String>,
    day: String,
    start_at: Option<i64>,
    end_at: Option<i64>,
    contact_info: Option<String>,
    via: Via,
    trust: Trust,
    dkim_domain: Option<String>,
    received_at: i64,
    json: String,
    policies: Vec<PolicyRow>,
}

struct PolicyRow {
    policy_type: Option<String>,
    policy_domain: Option<String>,
    policy_string: String,
    mode: Option<String>,
    mx: String,
    mx_host: Option<String>,
    successful: Param,
    failed: Param,
    /// The parameters of each failure detail after `policy_ref`, `report_ref` and `idx`.
    details: Vec<[Param; sql::FAILURE_PARAMS - 3]>,
}

fn json_list(items: &[String]) -> String {
    // Serialising strings cannot fail.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl PutReport {
    pub(crate) fn new(n: &NewReport<'_>) -> PutReport {
        let r: &Report = n.report;
        let start = r.date_range.as_ref().and_then(|d| d.start);
        let end = r.date_range.as_ref().and_then(|d| d.end);
        let day = start.unwrap_or(n.received_at).date_naive();
        let policies = r
            .policies
            .iter()
            .map(|e| {
                let p = e.policy.as_ref();
                let is_sts = p.and_then(|p| p.policy_type.as_ref()) == Some(&PolicyType::Sts);
                let lines = p.map(|p| p.policy_lines()).unwrap_or_default();
                let mx: Vec<String> = if is_sts {
                    lines
                        .iter()
                        .filter_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            (k.trim() == "mx").then(|| v.trim().to_owned())
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let details = e
                    .failure_details
                    .iter()
                    .flatten()
                    .map(|d| {
                        [
                            Param::opt_text(d.result_type.as_ref().map(|t| t.as_str())),
                            Param::opt_text(d.sending_mta_ip.as_deref()),
                            Param::opt_text(d.receiving_mx_hostname.as_deref()),
                            Param::opt_text(d.receiving_mx_helo.as_deref()),
                            Param::opt_text(d.receiving_ip.as_deref()),
                            count_param(d.failed_session_count),
                            Param::opt_text(d.failure_reason_code.as_deref()),
                            Param::opt_text(d.additional_information.as_deref()),
                        ]
                    })
                    .collect();
                let summary = e.summary.as_ref();
                PolicyRow {
                    policy_type: p
                        .and_then(|p| p.policy_type.as_ref())
                        .map(|t| t.as_str().to_owned()),
                    policy_domain: p
                        .and_then(|p| p.policy_domain.as_deref())
                        .map(str::to_ascii_lowercase),
                    policy_string: json_list(&lines),
                    mode: if is_sts {
                        p.and_then(|p| p.sts_mode()).map(str::to_owned)
                    } else {
                        None
                    },
                    mx: json_list(&mx),
                    mx_host: p.and_then(|p| p.mx_host.as_deref()).map(json_list),
                    successful: count_param(Some(summary.map_or(0, |s| s.successful()))),
                    failed: count_param(Some(summary.map_or(0, |s| s.failed()))),
                    details,
                }
            })
            .collect();
        PutReport {
            raw_id: n.raw_id,
            organization_name: r.organization_name.clone(),
            report_id: r.report_id.clone(),
            day: day_text(day),
            start_at: start.map(|t| t.timestamp()),
            end_at: end.map(|t| t.timestamp()),
            contact_info: r.contact_info.clone(),
            via: n.via,
            trust: n.trust,
            dkim_domain: n.dkim_domain.map(str::to_owned),
            received_at: n.received_at.timestamp(),
            json: serde_json::to_string(&r.to_json()).unwrap_or_else(|_| "null".into()),
            policies,
        }
    }
}

impl ReportKey {
    /// The key a report is stored under: its `organization-name` and `report-id` when it has
    /// both (non-empty), else `sha256:<hex of the raw input>` and an empty report id.
    pub fn for_report(report: &Report, raw: &[u8]) -> ReportKey {
        key_of(
            report.organization_name.as_deref(),
            report.report_id.as_deref(),
            || sha256_hex(raw),
        )
    }
}

fn key_of(
    organization: Option<&str>,
    report_id: Option<&str>,
    sha256: impl FnOnce() -> String,
) -> ReportKey {
    match (organization, report_id) {
        (Some(o), Some(r)) if !o.is_empty() && !r.is_empty() => ReportKey {
            organization: o.to_owned(),
            report_id: r.to_owned(),
        },
        _ => ReportKey {
            organization: format!("sha256:{}", sha256()),
            report_id: String::new(),
        },
    }
}

impl Op for PutReport {
    type Output = PutOutcome;
    const NAME: &'static str = "put_report";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<PutOutcome, OpError> {
        let raw = c.query(sql::RAW_SHA256, &[Param::int(self.raw_id)]).await?;
        let Some(raw) = first(raw) else {
            return Err(OpError::NotFound {
                table: "tlsrpt_raw",
                id: self.raw_id,
            });
        };
        let sha256 = Reader::with_id(raw, "tlsrpt_raw")?.text(1, "sha256")?;
        let key = key_of(
            self.organization_name.as_deref(),
            self.report_id.as_deref(),
            || sha256,
        );
        let inserted = c
            .query(
                sql::INSERT_REPORT,
                &[
                    Param::int(self.raw_id),
                    Param::text(key.organization.clone()),
                    Param::text(key.report_id.clone()),
                    Param::Text(self.organization_name),
                    Param::Text(self.report_id),
                    Param::text(self.day.clone()),
                    Param::Int(self.start_at),
                    Param::Int(self.end_at),
                    Param::Text(self.contact_info),
                    Param::text(self.via.as_str()),
                    Param::text(self.trust.as_str()),
                    Param::Text(self.dkim_domain.clone()),
                    Param::int(self.received_at),
                    Param::Text(Some(self.json)),
                ],
            )
            .await?;
        let Some(row) = first(inserted) else {
            return duplicate(c, &key, self.trust, self.dkim_domain).await;
        };
        let report = Reader::with_id(row, "tlsrpt_report")?.id();
        for (idx, p) in self.policies.into_iter().enumerate() {
            let row = c
                .query(
                    sql::INSERT_POLICY,
                    &[
                        Param::int(report),
                        Param::int(idx as i64),
                        Param::text(self.day.clone()),
                        Param::Text(p.policy_type),
                        Param::Text(p.policy_domain),
                        Param::text(p.policy_string),
                        Param::Text(p.mode),
                        Param::text(p.mx),
                        Param::Text(p.mx_host),
                        p.successful,
                        p.failed,
                    ],
                )
                .await?;
            let policy = match first(row) {
                Some(row) => Reader::with_id(row, "tlsrpt_policy")?.id(),
                None => {
                    return Err(OpError::Internal(
                        "tlsrpt_policy: INSERT … RETURNING id returned no row",
                    ));
                }
            };
            let mut params = Vec::new();
            let mut rows = 0;
            for (i, d) in p.details.into_iter().enumerate() {
                params.push(Param::int(policy));
                params.push(Param::int(report));
                params.push(Param::int(i as i64));
                params.extend(d);
                rows += 1;
                if rows == sql::FAILURES_PER_INSERT {
                    c.execute(sql::insert_full_failures(), &params).await?;
                    params.clear();
                    rows = 0;
                }
            }
            if rows > 0 {
                c.execute(&sql::insert_failures(rows), &params).await?;
            }
        }
        Ok(PutOutcome::Stored { id: report })
    }
}

/// A report already stored under `key`: raises its trust when the new copy is trusted more.
async fn duplicate<C: Conn>(
    c: &mut C,
    key: &ReportKey,
    trust: Trust,
    dkim_domain: Option<String>,
) -> Result<PutOutcome, OpError> {
    let rows = c
        .query(
            sql::REPORT_BY_KEY,
            &[
                Param::text(key.organization.clone()),
                Param::text(key.report_id.clone()),
            ],
        )
        .await?;
    let Some(row) = first(rows) else {
        return Err(OpError::Internal(
            "tlsrpt_report: the row that conflicted on the report key is not there",
        ));
    };
    let mut r = Reader::with_id(row, "tlsrpt_report")?;
    let stored = r.name(1, "trust", Trust::from_name)?;
    let id = r.id();
    let upgraded = trust > stored;
    if upgraded {
        c.execute(
            sql::SET_TRUST,
            &[
                Param::text(trust.as_str()),
                Param::Text(dkim_domain),
                Param::int(id),
            ],
        )
        .await?;
    }
    Ok(PutOutcome::Duplicate {
        id,
        upgraded,
        trust: trust.max(stored),
    })
}

pub(crate) struct SetTrust {
    pub(crate) report: i64,
    pub(crate) trust: Trust,
    pub(crate) dkim_domain: Option<String>,
}

impl Op for SetTrust {
    type Output = ();
    const NAME: &'static str = "set_trust";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<(), OpError> {
        let n = c
            .execute(
                sql::SET_TRUST,
                &[
                    Param::text(self.trust.as_str()),
                    Param::Text(self.dkim_domain),
                    Param::int(self.report),
                ],
            )
            .await?;
        if n == 0 {
            return Err(OpError::NotFound {
                table: "tlsrpt_report",
                id: self.report,
            });
        }
        Ok(())
    }
}

pub(crate) struct ReportJson {
    pub(crate) id: i64,
}

impl Op for ReportJson {
    type Output = Option<serde_json::Value>;
    const NAME: &'static str = "report_json";
    const WRITE: bool = false;

    async fn run<C: Conn>(self, c: &mut C) -> Result<Self::Output, OpError> {
        let rows = c.query(sql::REPORT_JSON, &[Param::int(self.id)]).await?;
        match first(rows) {
            None => Ok(None),
            Some(row) => Ok(Some(
                Reader::with_id(row, "tlsrpt_report")?.json(1, "json")?,
            )),
        }
    }
}

// --- one input, whole ------------------------------------------------------------------------

/// One input taken through the store in one transaction: its raw bytes kept, then either put
/// in quarantine, or its report stored (and put in quarantine with it when the report is not
/// trusted and no trusted copy is stored).
pub(crate) struct PutInput {
    pub(crate) raw: PutRaw,
    pub(crate) fate: Fate,
}

pub(crate) enum Fate {
    Quarantine {
        reason: QuarantineReason,
        at: i64,
    },
    Report {
        /// Its `raw_id` is set once the raw input is kept.
        report: Box<PutReport>,
        /// The reason to quarantine it for while no trusted copy is stored.
        untrusted: Option<QuarantineReason>,
        at: i64,
    },
}

impl Op for PutInput {
    type Output = InputOutcome;
    const NAME: &'static str = "put_input";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<InputOutcome, OpError> {
        let raw_id = self.raw.run(c).await?;
        // Unless its report is stored and counts: what to quarantine the input for, with the
        // report it holds.
        let (reason, report, at) = match self.fate {
            Fate::Quarantine { reason, at } => (reason, None, at),
            Fate::Report {
                mut report,
                untrusted,
                at,
            } => {
                report.raw_id = raw_id;
                let outcome = report.run(c).await?;
                let (id, stored_trust) = match &outcome {
                    PutOutcome::Stored { id } => (*id, None),
                    PutOutcome::Duplicate { id, trust, .. } => (*id, Some(*trust)),
                };
                // A copy that cannot be authenticated of a report already counted adds
                // nothing; one of a report still unverified keeps it in quarantine.
                let stored_unverified = stored_trust.is_none_or(|t| t == Trust::Unverified);
                match untrusted.filter(|_| stored_unverified) {
                    Some(reason) => (reason, Some(id), at),
                    None => return Ok(InputOutcome::Report { raw_id, outcome }),
                }
            }
        };
        let entry = Quarantine {
            raw_id,
            reason,
            report,
            at,
        }
        .run(c)
        .await?;
        Ok(InputOutcome::Quarantined {
            raw_id,
            entry,
            report,
        })
    }
}

// --- quarantine ------------------------------------------------------------------------------

pub(crate) struct Quarantine {
    pub(crate) raw_id: i64,
    pub(crate) reason: QuarantineReason,
    pub(crate) report: Option<i64>,
    pub(crate) at: i64,
}

impl Op for Quarantine {
    type Output = i64;
    const NAME: &'static str = "quarantine";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<i64, OpError> {
        let raw = c.query(sql::RAW_SHA256, &[Param::int(self.raw_id)]).await?;
        if raw.is_empty() {
            return Err(OpError::NotFound {
                table: "tlsrpt_raw",
                id: self.raw_id,
            });
        }
        if let Some(report) = self.report {
            let rows = c.query(sql::REPORT_EXISTS, &[Param::int(report)]).await?;
            if rows.is_empty() {
                return Err(OpError::NotFound {
                    table: "tlsrpt_report",
                    id: report,
                });
            }
        }
        let rows = c
            .query(
                sql::QUARANTINE,
                &[
                    Param::int(self.raw_id),
                    Param::text(self.reason.code),
                    Param::text(self.reason.message),
                    Param::Int(self.report),
                    Param::int(self.at),
                ],
            )
            .await?;
        match first(rows) {
            Some(row) => Ok(Reader::with_id(row, "tlsrpt_quarantine")?.id()),
            None => Err(OpError::Internal(
                "tlsrpt_quarantine: INSERT … RETURNING id returned no row",
            )),
        }
    }
}

/// Decodes a row of [`sql::quarantined`] (and the first columns of [`sql::quarantine_entry`]).
fn quarantine_entry(r: &mut Reader) -> Result<QuarantineEntry, Corrupt> {
    Ok(QuarantineEntry {
        id: r.id(),
        raw_id: r.int(1, "raw_id")?,
        at: r.time(2, "at")?,
        via: r.name(3, "tlsrpt_raw.via", Via::from_name)?,
        origin: r.text(4, "tlsrpt_raw.origin")?,
        reason: QuarantineReason {
            code: r.text(5, "code")?,
            message: r.text(6, "message")?,
        },
        report: r.opt_int(7, "report_ref")?,
        bytes: r.count(8, "tlsrpt_raw.size")?,
    })
}

pub(crate) struct Quarantined;

impl Op for Quarantined {
    type Output = Vec<QuarantineEntry>;
    const NAME: &'static str = "quarantined";
    const WRITE: bool = false;

    async fn run<C: Conn>(self, c: &mut C) -> Result<Self::Output, OpError> {
        let rows = c.query(&sql::quarantined(), &[]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut r = Reader::with_id(row, "tlsrpt_quarantine")?;
            out.push(quarantine_entry(&mut r)?);
        }
        Ok(out)
    }
}

pub(crate) struct QuarantineEntryOp {
    pub(crate) id: i64,
}

impl Op for QuarantineEntryOp {
    type Output = Option<(QuarantineEntry, Vec<u8>)>;
    const NAME: &'static str = "quarantine_entry";
    const WRITE: bool = false;

    async fn run<C: Conn>(self, c: &mut C) -> Result<Self::Output, OpError> {
        let rows = c
            .query(&sql::quarantine_entry(), &[Param::int(self.id)])
            .await?;
        let Some(row) = first(rows) else {
            return Ok(None);
        };
        let mut r = Reader::with_id(row, "tlsrpt_quarantine")?;
        let entry = quarantine_entry(&mut r)?;
        let bytes = r.bytes(9, "tlsrpt_raw.bytes")?;
        Ok(Some((entry, bytes)))
    }
}

pub(crate) struct Release {
    pub(crate) id: i64,
}

impl Op for Release {
    type Output = bool;
    const NAME: &'static str = "release";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<bool, OpError> {
        Ok(c.execute(sql::RELEASE, &[Param::int(self.id)]).await? > 0)
    }
}

// --- retention and totals --------------------------------------------------------------------

pub(crate) struct Prune {
    pub(crate) before: NaiveDate,
}

impl Op for Prune {
    type Output = Pruned;
    const NAME: &'static str = "prune";
    const WRITE: bool = true;

    async fn run<C: Conn>(self, c: &mut C) -> Result<Pruned, OpError> {
        let day = [Param::text(day_text(self.before))];
        let second = [Param::int(
            self.before
                .and_hms_opt(0, 0, 0)
                .map_or(i64::MIN, |t| t.and_utc().timestamp()),
        )];
        c.execute(sql::PRUNE_UNLINK_QUARANTINE, &day).await?;
        c.execute(sql::PRUNE_FAILURES, &day).await?;
        c.execute(sql::PRUNE_POLICIES, &day).await?;
        let reports = c.execute(sql::PRUNE_REPORTS, &day).await?;
        let quarantined = c.execute(sql::PRUNE_QUARANTINE, &second).await?;
        let raw = c.execute(sql::PRUNE_RAW, &second).await?;
        Ok(Pruned {
            reports,
            quarantined,
            raw,
        })
    }
}

pub(crate) struct TotalsOp;

impl Op for TotalsOp {
    type Output = Totals;
    const NAME: &'static str = "totals";
    const WRITE: bool = false;

    async fn run<C: Conn>(self, c: &mut C) -> Result<Totals, OpError> {
        let rows = c.query(sql::TOTALS, &[]).await?;
        let Some(row) = first(rows) else {
            return Ok(Totals::default());
        };
        let mut r = Reader::aggregate(row, "tlsrpt_report");
        Ok(Totals {
            raw: r.count(0, "count(tlsrpt_raw)")?,
            reports: r.count(1, "count(tlsrpt_report)")?,
            quarantined: r.count(2, "count(tlsrpt_quarantine)")?,
        })
    }
}

// --- analyses --------------------------------------------------------------------------------

pub(crate) struct Summary {
    pub(crate) filter: Filter,
}

type DayKey = (String, NaiveDate);

/// Sorts a breakdown: count descending, then name.
fn sort_counts(v: &mut [Count]) {
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
}

impl Op for Summary {
    type Output = Vec<DaySummary>;
    const NAME: &'static str = "summary";
    const WRITE: bool = false;

    async fn run<C: Conn>(self, c: &mut C) -> Result<Vec<DaySummary>, OpError> {
        let w = sql::filter(&self.filter, None);
        let mut days: BTreeMap<DayKey, DaySummary> = BTreeMap::new();
        for row in c.query(&sql::summary_days(&w), &w.params).await? {
            let mut r = Reader::aggregate(row, "tlsrpt_policy");
            let domain = r.text(0, "policy_domain")?;
            let day = r.day(1, "day")?;
            let s = DaySummary {
                domain: domain.clone(),
                day,
                reports: r.count(2, "count(report)")?,
                successful: r.count(3, "sum(successful)")?,
                failed: r.count(4, "sum(failed)")?,
                ..DaySummary::default()
            };
            days.insert((domain, day), s);
        }
        for (expr, pick) in [
            (
                sql::BY_RESULT_TYPE,
                (|s: &mut DaySummary| &mut s.by_result_type)
                    as fn(&mut DaySummary) -> &mut Vec<Count>,
            ),
            (sql::BY_RECEIVING_MX, |s| &mut s.by_receiving_mx),
            (sql::BY_SENDING_IP, |s| &mut s.by_sending_ip),
        ] {
            let rows = c
                .query(&sql::summary_failures_by(&w, expr), &w.params)
                .await?;
            for row in rows {
                let mut r = Reader::aggregate(row, "tlsrpt_failure");
                let key = (r.text(0, "policy_domain")?, r.day(1, "day")?);
                let count = Count {
                    name: r.text(2, "name")?,
                    count: r.count(3, "sum(failed_session_count)")?,
                };
                if let Some(s) = days.get_mut(&key) {
                    pick(s).push(count);
                }
            }
        }
        for row in c.query(&sql::summary_organizations(&w), &w.params).await? {
            let mut r = Reader::aggregate(row, "tlsrpt_policy");
            let key = (r.text(0, "policy_domain")?, r.day(1, "day")?);
            let org = OrgCount {
                organization: r.text(2, "organization_name")?,
                successful: r.count(3, "sum(successful)")?,
                failed: r.count(4, "sum(failed)")?,
            };
            if let Some(s) = days.get_mut(&key) {
                s.by_organization.push(org);
            }
        }
        // (domain, day, policy type, mode, mx) → the policy seen.
        let mut seen: BTreeMap<(DayKey, String, Option<String>, String), SeenPolicy> =
            BTreeMap::new();
        for row in c.query(&sql::summary_policies(&w), &w.params).await? {
            let mut r = Reader::aggregate(row, "tlsrpt_policy");
            let key = (r.text(0, "policy_domain")?, r.day(1, "day")?);
            let policy_type = r.text(2, "policy_type")?;
            let mode = r.opt_text(3, "mode")?;
            let mx_text = r.text(4, "mx")?;
            let mx = serde_json::from_str::<Vec<String>>(&mx_text).map_err(|e| Corrupt {
                table: "tlsrpt_policy",
                id: None,
                column: "mx",
                problem: e.into(),
            })?;
            let organization = r.text(5, "organization_name")?;
            let reports = r.count(6, "count(report)")?;
            let entry = seen
                .entry((key, policy_type.clone(), mode.clone(), mx_text))
                .or_insert_with(|| SeenPolicy {
                    policy_type,
                    mode,
                    mx,
                    ..SeenPolicy::default()
                });
            // A report has one organisation: the counts per organisation add up.
            entry.reports += reports;
            entry.organizations.push(organization);
        }
        for ((key, ..), mut p) in seen {
            p.organizations.sort();
            p.organizations.dedup();
            if let Some(s) = days.get_mut(&key) {
                s.policies.push(p);
            }
        }
        let mut out: Vec<DaySummary> = days.into_values().collect();
        for s in &mut out {
            sort_counts(&mut s.by_result_type);
            sort_counts(&mut s.by_receiving_mx);
            sort_counts(&mut s.by_sending_ip);
            s.by_organization.sort_by(|a, b| {
                (b.successful + b.failed)
                    .cmp(&(a.successful + a.failed))
                    .then_with(|| a.organization.cmp(&b.organization))
            });
            s.policies.sort_by(|a, b| {
                b.reports
                    .cmp(&a.reports)
                    .then_with(|| a.policy_type.cmp(&b.policy_type))
                    .then_with(|| a.mode.cmp(&b.mode))
                    .then_with(|| a.mx.cmp(&b.mx))
            });
        }
        Ok(out)
    }
}

pub(crate) struct History {
    pub(crate) domain: String,
    pub(crate) filter: Filter,
}

impl Op for History {
    type Output = DomainHistory;
    const NAME: &'static str = "history";
    const WRITE: bool = false;

    async fn run<C: Conn>(self, c: &mut C) -> Result<DomainHistory, OpError> {
        let domain = self.domain.to_ascii_lowercase();
        let w = sql::filter(&self.filter, Some(&domain));
        let mut sessions = Vec::new();
        for row in c.query(&sql::history_sessions(&w), &w.params).await? {
            let mut r = Reader::with_id(row, "tlsrpt_policy")?;
            sessions.push(SessionRow {
                day: r.day(1, "day")?,
                organization: r.text(2, "organization_name")?,
                report_id: r.text(3, "report_id")?,
                policy_type: r.text(4, "policy_type")?,
                mode: r.opt_text(5, "mode")?,
                successful: r.count(6, "successful")?,
                failed: r.count(7, "failed")?,
            });
        }
        let mut failures = Vec::new();
        for row in c.query(&sql::history_failures(&w), &w.params).await? {
            let mut r = Reader::with_id(row, "tlsrpt_failure")?;
            failures.push(FailureRow {
                day: r.day(1, "day")?,
                organization: r.text(2, "organization_name")?,
                report_id: r.text(3, "report_id")?,
                policy_type: r.text(4, "policy_type")?,
                mode: r.opt_text(5, "mode")?,
                result_type: r.text(6, "result_type")?,
                sending_ip: r.text(7, "sending_mta_ip")?,
                receiving_mx: r.text(8, "receiving_mx_hostname")?,
                receiving_ip: r.text(9, "receiving_ip")?,
                reason: r.text(10, "failure_reason_code")?,
                sessions: r.count(11, "failed_session_count")?,
            });
        }
        // The database's collation may not be byte order; sort here so both backends agree
        // (stable: the entries of one report keep their order).
        sessions.sort_by(|a, b| {
            (a.day, &a.organization, &a.report_id).cmp(&(b.day, &b.organization, &b.report_id))
        });
        failures.sort_by(|a, b| {
            (a.day, &a.organization, &a.report_id).cmp(&(b.day, &b.organization, &b.report_id))
        });
        Ok(DomainHistory {
            domain,
            sessions,
            failures,
        })
    }
}
