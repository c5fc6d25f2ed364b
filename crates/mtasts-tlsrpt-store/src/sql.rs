//! Every statement the store runs, for both backends. SQLite and PostgreSQL share the text:
//! `$N` placeholders (SQLite numbers them by first appearance, and every statement here names
//! them in order), `INSERT … ON CONFLICT … RETURNING`, `CAST(SUM(…) AS BIGINT)` (PostgreSQL's
//! `SUM(BIGINT)` is `NUMERIC`), `GROUP BY` column positions. What differs is in [`Dialect`]:
//! the id and byte-string column types, how to tell whether the schema exists, and the lock
//! that serialises migrations (SQLite's `BEGIN IMMEDIATE` is taken by the backend).
//!
//! Times are `BIGINT` Unix seconds; days are `TEXT` `YYYY-MM-DD` (they sort as dates); lists
//! (policy-string lines, mx lines, mx-host patterns) are `TEXT` holding a JSON array of
//! strings, so that identical lists group together.

use crate::Filter;
use crate::value::{Param, day_text};

/// The SQL dialect of a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A migration's text with the dialect's column types: `{pk}` for an id that is never
    /// reused, `{blob}` for bytes.
    pub(crate) fn ddl(self, sql: &str) -> String {
        let (pk, blob) = match self {
            Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
            Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
        };
        sql.replace("{pk}", pk).replace("{blob}", blob)
    }

    /// A query whose one row and column counts the tables named `tlsrpt_schema` (0 or 1).
    pub(crate) fn schema_table_exists(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tlsrpt_schema'"
            }
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'tlsrpt_schema'"
            }
        }
    }

    /// What to run first in the migration transaction so that two processes opening a new
    /// database at once do not both create the schema. SQLite's `BEGIN IMMEDIATE` already
    /// holds the write lock; PostgreSQL takes a transaction-scoped advisory lock.
    pub(crate) fn migration_lock(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(8460846100)"),
        }
    }
}

/// The migrations, in order: `MIGRATIONS[n]` brings a database from version `n` to `n + 1`.
/// A released migration is never changed; a new schema is a new entry.
pub(crate) const MIGRATIONS: &[&str] = &[V1];

/// The schema version this code writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Where the version is kept (one row); created by the first migration run.
pub(crate) const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE tlsrpt_schema (version BIGINT NOT NULL)";
pub(crate) const SCHEMA_VERSIONS: &str = "SELECT version FROM tlsrpt_schema";
pub(crate) const CLEAR_SCHEMA_VERSION: &str = "DELETE FROM tlsrpt_schema";
pub(crate) const SET_SCHEMA_VERSION: &str = "INSERT INTO tlsrpt_schema (version) VALUES ($1)";

/// Version 1.
const V1: &str = "
-- Every input as received, once per content (sha256: lower-case hex).
CREATE TABLE tlsrpt_raw (
    id          {pk},
    sha256      TEXT NOT NULL UNIQUE,
    bytes       {blob} NOT NULL,
    size        BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    via         TEXT NOT NULL,
    origin      TEXT NOT NULL
);
CREATE INDEX tlsrpt_raw_received_at ON tlsrpt_raw (received_at);

-- One row per report key: (organization-name, report-id) as sent, or
-- ('sha256:' || the raw input's sha256, '') when either is missing. day: the UTC date of
-- date-range start (of receipt when absent); json: the normalised report.
CREATE TABLE tlsrpt_report (
    id                {pk},
    raw_id            BIGINT NOT NULL REFERENCES tlsrpt_raw (id),
    key_organization  TEXT NOT NULL,
    key_report_id     TEXT NOT NULL,
    organization_name TEXT,
    report_id         TEXT,
    day               TEXT NOT NULL,
    start_at          BIGINT,
    end_at            BIGINT,
    contact_info      TEXT,
    via               TEXT NOT NULL,
    trust             TEXT NOT NULL,
    dkim_domain       TEXT,
    received_at       BIGINT NOT NULL,
    json              TEXT NOT NULL,
    UNIQUE (key_organization, key_report_id)
);
CREATE INDEX tlsrpt_report_day ON tlsrpt_report (day);
CREATE INDEX tlsrpt_report_raw ON tlsrpt_report (raw_id);

-- One row per policies[] entry (idx: its position). day: the report's, so that
-- (policy_domain, day) is one index; policy_domain lower-cased; policy_string, mx (for sts,
-- the values of its mx lines) and mx_host: JSON arrays of strings; mode: for sts only;
-- successful, failed: the summary's counts (0 when absent).
CREATE TABLE tlsrpt_policy (
    id            {pk},
    report_ref    BIGINT NOT NULL REFERENCES tlsrpt_report (id),
    idx           BIGINT NOT NULL,
    day           TEXT NOT NULL,
    policy_type   TEXT,
    policy_domain TEXT,
    policy_string TEXT NOT NULL,
    mode          TEXT,
    mx            TEXT NOT NULL,
    mx_host       TEXT,
    successful    BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    UNIQUE (report_ref, idx)
);
CREATE INDEX tlsrpt_policy_domain_day ON tlsrpt_policy (policy_domain, day);
CREATE INDEX tlsrpt_policy_day ON tlsrpt_policy (day);

-- One row per failure-details[] entry of a policy (idx: its position), as sent.
CREATE TABLE tlsrpt_failure (
    id                     {pk},
    policy_ref             BIGINT NOT NULL REFERENCES tlsrpt_policy (id),
    report_ref             BIGINT NOT NULL REFERENCES tlsrpt_report (id),
    idx                    BIGINT NOT NULL,
    result_type            TEXT,
    sending_mta_ip         TEXT,
    receiving_mx_hostname  TEXT,
    receiving_mx_helo      TEXT,
    receiving_ip           TEXT,
    failed_session_count   BIGINT,
    failure_reason_code    TEXT,
    additional_information TEXT
);
CREATE INDEX tlsrpt_failure_policy ON tlsrpt_failure (policy_ref);
CREATE INDEX tlsrpt_failure_report ON tlsrpt_failure (report_ref);

-- Inputs that could not be trusted or read, once per (raw input, reason code).
CREATE TABLE tlsrpt_quarantine (
    id         {pk},
    raw_id     BIGINT NOT NULL REFERENCES tlsrpt_raw (id),
    code       TEXT NOT NULL,
    message    TEXT NOT NULL,
    report_ref BIGINT REFERENCES tlsrpt_report (id) ON DELETE SET NULL,
    at         BIGINT NOT NULL,
    UNIQUE (raw_id, code)
);
CREATE INDEX tlsrpt_quarantine_at ON tlsrpt_quarantine (at);
CREATE INDEX tlsrpt_quarantine_report ON tlsrpt_quarantine (report_ref);
";

// --- raw inputs ------------------------------------------------------------------------------

pub(crate) const INSERT_RAW: &str = "INSERT INTO tlsrpt_raw \
     (sha256, bytes, size, received_at, via, origin) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (sha256) DO NOTHING RETURNING id";
pub(crate) const RAW_BY_SHA256: &str = "SELECT id FROM tlsrpt_raw WHERE sha256 = $1";
pub(crate) const RAW_SHA256: &str = "SELECT id, sha256 FROM tlsrpt_raw WHERE id = $1";

// --- reports ---------------------------------------------------------------------------------

pub(crate) const INSERT_REPORT: &str = "INSERT INTO tlsrpt_report \
     (raw_id, key_organization, key_report_id, organization_name, report_id, day, start_at, \
      end_at, contact_info, via, trust, dkim_domain, received_at, json) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT (key_organization, key_report_id) DO NOTHING RETURNING id";
pub(crate) const REPORT_BY_KEY: &str = "SELECT id, trust FROM tlsrpt_report \
     WHERE key_organization = $1 AND key_report_id = $2";
pub(crate) const INSERT_POLICY: &str = "INSERT INTO tlsrpt_policy \
     (report_ref, idx, day, policy_type, policy_domain, policy_string, mode, mx, mx_host, \
      successful, failed) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
/// The columns of a failure detail, as [`insert_failures`] binds them.
const FAILURE_COLUMNS: [&str; 11] = [
    "policy_ref",
    "report_ref",
    "idx",
    "result_type",
    "sending_mta_ip",
    "receiving_mx_hostname",
    "receiving_mx_helo",
    "receiving_ip",
    "failed_session_count",
    "failure_reason_code",
    "additional_information",
];

/// The parameters of one failure detail.
pub(crate) const FAILURE_PARAMS: usize = FAILURE_COLUMNS.len();

/// Failure details per `INSERT` (a report may have 100 000): 200 × 11 parameters, well under
/// SQLite's limit (32 766) and PostgreSQL's (65 535).
pub(crate) const FAILURES_PER_INSERT: usize = 200;

/// An `INSERT` of `rows` failure details, their parameters in [`FAILURE_COLUMNS`] order.
/// [`insert_failures`] of [`FAILURES_PER_INSERT`] rows, built once.
pub(crate) fn insert_full_failures() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| insert_failures(FAILURES_PER_INSERT))
}

pub(crate) fn insert_failures(rows: usize) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "INSERT INTO tlsrpt_failure ({}) VALUES ",
        FAILURE_COLUMNS.join(", ")
    );
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..FAILURE_PARAMS {
            let sep = if c == 0 { "" } else { ", " };
            let _ = write!(s, "{sep}${}", r * FAILURE_PARAMS + c + 1);
        }
        s.push(')');
    }
    s
}
pub(crate) const SET_TRUST: &str =
    "UPDATE tlsrpt_report SET trust = $1, dkim_domain = $2 WHERE id = $3";
pub(crate) const REPORT_EXISTS: &str = "SELECT id FROM tlsrpt_report WHERE id = $1";
pub(crate) const REPORT_JSON: &str = "SELECT id, json FROM tlsrpt_report WHERE id = $1";

// --- quarantine ------------------------------------------------------------------------------

/// Idempotent per (raw input, code); a later call may fill in the report.
pub(crate) const QUARANTINE: &str = "INSERT INTO tlsrpt_quarantine \
     (raw_id, code, message, report_ref, at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (raw_id, code) DO UPDATE \
     SET report_ref = COALESCE(tlsrpt_quarantine.report_ref, excluded.report_ref) \
     RETURNING id";
const QUARANTINE_COLUMNS: &str = "SELECT q.id, q.raw_id, q.at, w.via, w.origin, q.code, \
     q.message, q.report_ref, w.size";
pub(crate) fn quarantined() -> String {
    format!(
        "{QUARANTINE_COLUMNS} FROM tlsrpt_quarantine q JOIN tlsrpt_raw w ON w.id = q.raw_id \
         ORDER BY q.at, q.id"
    )
}
pub(crate) fn quarantine_entry() -> String {
    format!(
        "{QUARANTINE_COLUMNS}, w.bytes FROM tlsrpt_quarantine q \
         JOIN tlsrpt_raw w ON w.id = q.raw_id WHERE q.id = $1"
    )
}
pub(crate) const RELEASE: &str = "DELETE FROM tlsrpt_quarantine WHERE id = $1";

// --- retention and totals ----------------------------------------------------------------------

/// Run in this order, in one transaction: `$1` is the first day kept.
pub(crate) const PRUNE_UNLINK_QUARANTINE: &str = "UPDATE tlsrpt_quarantine SET report_ref = NULL \
     WHERE report_ref IN (SELECT id FROM tlsrpt_report WHERE day < $1)";
pub(crate) const PRUNE_FAILURES: &str = "DELETE FROM tlsrpt_failure \
     WHERE report_ref IN (SELECT id FROM tlsrpt_report WHERE day < $1)";
pub(crate) const PRUNE_POLICIES: &str = "DELETE FROM tlsrpt_policy \
     WHERE report_ref IN (SELECT id FROM tlsrpt_report WHERE day < $1)";
pub(crate) const PRUNE_REPORTS: &str = "DELETE FROM tlsrpt_report WHERE day < $1";
/// `$1`: the first second kept.
pub(crate) const PRUNE_QUARANTINE: &str = "DELETE FROM tlsrpt_quarantine WHERE at < $1";
/// `$1`: the first second kept. A raw input received since then is kept even when nothing
/// references it yet: its report may be being stored right now.
pub(crate) const PRUNE_RAW: &str = "DELETE FROM tlsrpt_raw WHERE received_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM tlsrpt_report r WHERE r.raw_id = tlsrpt_raw.id) \
     AND NOT EXISTS (SELECT 1 FROM tlsrpt_quarantine q WHERE q.raw_id = tlsrpt_raw.id)";

pub(crate) const TOTALS: &str = "SELECT (SELECT COUNT(*) FROM tlsrpt_raw), \
     (SELECT COUNT(*) FROM tlsrpt_report), (SELECT COUNT(*) FROM tlsrpt_quarantine)";

// --- analyses --------------------------------------------------------------------------------

/// The policy domain as grouped and shown: a policy without one is `-`.
const DOMAIN: &str = "COALESCE(p.policy_domain, '-')";
const POLICIES: &str = "FROM tlsrpt_policy p JOIN tlsrpt_report r ON r.id = p.report_ref";
const FAILURES: &str = "FROM tlsrpt_failure d JOIN tlsrpt_policy p ON p.id = d.policy_ref \
     JOIN tlsrpt_report r ON r.id = p.report_ref";
const FAILED: &str = "CAST(SUM(COALESCE(d.failed_session_count, 0)) AS BIGINT)";

/// A `WHERE` clause over `p` (policies) and `r` (reports) and its parameters, numbered from
/// `$1` in order.
#[derive(Debug, Default)]
pub(crate) struct Where {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
}

/// The `WHERE` clause of a filter; `domain` overrides the filter's. The domain `-` selects the
/// policies that name none.
pub(crate) fn filter(f: &Filter, domain: Option<&str>) -> Where {
    let mut conds: Vec<String> = Vec::new();
    let mut params = Vec::new();
    let mut bind = |conds: &mut Vec<String>, cond: &str, p: Param| {
        params.push(p);
        conds.push(cond.replace("?", &format!("${}", params.len())));
    };
    match domain.or(f.domain.as_deref()) {
        Some("-") => conds.push("p.policy_domain IS NULL".into()),
        Some(d) => bind(
            &mut conds,
            "p.policy_domain = ?",
            Param::text(d.to_ascii_lowercase()),
        ),
        None => {}
    }
    if let Some(since) = f.since {
        bind(&mut conds, "p.day >= ?", Param::text(day_text(since)));
    }
    if let Some(until) = f.until {
        bind(&mut conds, "p.day <= ?", Param::text(day_text(until)));
    }
    if !f.include_unverified {
        conds.push("r.trust <> 'unverified'".into());
    }
    let sql = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    Where { sql, params }
}

/// Per (domain, day): reports, successful, failed.
pub(crate) fn summary_days(w: &Where) -> String {
    format!(
        "SELECT {DOMAIN}, p.day, COUNT(DISTINCT r.id), CAST(SUM(p.successful) AS BIGINT), \
         CAST(SUM(p.failed) AS BIGINT) {POLICIES} {} GROUP BY 1, 2",
        w.sql
    )
}

/// Per (domain, day, name): failed sessions, from the failure details; `name` is a column
/// expression over `d`.
pub(crate) fn summary_failures_by(w: &Where, name: &str) -> String {
    format!(
        "SELECT {DOMAIN}, p.day, {name}, {FAILED} {FAILURES} {} GROUP BY 1, 2, 3",
        w.sql
    )
}

pub(crate) const BY_RESULT_TYPE: &str = "COALESCE(d.result_type, '-')";
pub(crate) const BY_RECEIVING_MX: &str = "COALESCE(NULLIF(d.receiving_mx_hostname, ''), '-')";
pub(crate) const BY_SENDING_IP: &str = "COALESCE(NULLIF(d.sending_mta_ip, ''), '-')";

/// Per (domain, day, organisation): successful, failed.
pub(crate) fn summary_organizations(w: &Where) -> String {
    format!(
        "SELECT {DOMAIN}, p.day, COALESCE(r.organization_name, '-'), \
         CAST(SUM(p.successful) AS BIGINT), CAST(SUM(p.failed) AS BIGINT) {POLICIES} {} \
         GROUP BY 1, 2, 3",
        w.sql
    )
}

/// Per (domain, day, policy type, mode, mx, organisation): reports.
pub(crate) fn summary_policies(w: &Where) -> String {
    format!(
        "SELECT {DOMAIN}, p.day, COALESCE(p.policy_type, '-'), p.mode, p.mx, \
         COALESCE(r.organization_name, '-'), COUNT(DISTINCT r.id) {POLICIES} {} \
         GROUP BY 1, 2, 3, 4, 5, 6",
        w.sql
    )
}

/// One row per policy entry.
pub(crate) fn history_sessions(w: &Where) -> String {
    format!(
        "SELECT p.id, p.day, COALESCE(r.organization_name, '-'), COALESCE(r.report_id, '-'), \
         COALESCE(p.policy_type, '-'), p.mode, p.successful, p.failed {POLICIES} {} \
         ORDER BY p.day, r.id, p.idx",
        w.sql
    )
}

/// One row per failure detail.
pub(crate) fn history_failures(w: &Where) -> String {
    format!(
        "SELECT d.id, p.day, COALESCE(r.organization_name, '-'), COALESCE(r.report_id, '-'), \
         COALESCE(p.policy_type, '-'), p.mode, {BY_RESULT_TYPE}, {BY_SENDING_IP}, \
         {BY_RECEIVING_MX}, COALESCE(NULLIF(d.receiving_ip, ''), '-'), \
         COALESCE(d.failure_reason_code, ''), COALESCE(d.failed_session_count, 0) {FAILURES} {} \
         ORDER BY p.day, r.id, p.idx, d.idx",
        w.sql
    )
}
