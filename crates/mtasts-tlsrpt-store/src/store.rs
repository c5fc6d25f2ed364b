//! [`Store`]: the public face, which turns a URL into a backend and each call into an
//! operation of [`crate::ops`].

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::error::StoreError;
use crate::ops::{self, Op, OpError};
use crate::postgres::{self, Postgres};
use crate::sql;
use crate::sqlite::{self, Sqlite};
use crate::{
    DaySummary, DomainHistory, Filter, InputFate, InputOutcome, NewInput, NewReport, Pruned,
    PutOutcome, QuarantineEntry, QuarantineReason, RawInput, Totals, Trust, WriteGroups,
};

/// The store of received TLS-RPT reports: cheap to clone (the clones share the connections),
/// usable from any task.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Backend>,
}

enum Backend {
    Sqlite(Sqlite),
    Postgres(Box<Postgres>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("target", &self.target())
            .finish_non_exhaustive()
    }
}

/// What a store URL names.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    Sqlite(PathBuf),
    Postgres,
}

fn locate(url: &str) -> Result<Location, StoreError> {
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(Location::Postgres);
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::UnsupportedUrl { url: redact(url) });
    } else {
        url
    };
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl { url: redact(url) });
    }
    Ok(Location::Sqlite(PathBuf::from(path)))
}

/// The URL without its password (`postgres://user:secret@host/db` → `postgres://user@host/db`,
/// and any `password=` parameter left out).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let kept: Vec<&str> = q
            .split('&')
            .filter(|kv| !kv.to_ascii_lowercase().starts_with("password="))
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

/// An operation's error with the backend, the operation and the target named.
pub(crate) fn op_error(
    backend: &'static str,
    op: &'static str,
    target: &str,
    e: OpError,
) -> StoreError {
    let target = target.to_owned();
    match e {
        OpError::Db(source) => StoreError::Query {
            backend,
            op,
            target,
            source,
        },
        OpError::Corrupt(c) => StoreError::Corrupt {
            backend,
            op,
            target,
            table: c.table,
            id: c.id,
            column: c.column,
            problem: Box::new(c.problem),
        },
        OpError::NotFound { table, id } => StoreError::NotFound {
            backend,
            op,
            target,
            table,
            id,
        },
        OpError::SchemaTooNew { found } => StoreError::SchemaTooNew {
            backend,
            target,
            found,
            known: sql::SCHEMA_VERSION,
        },
        OpError::SchemaInvalid(detail) => StoreError::SchemaInvalid {
            backend,
            target,
            detail,
        },
        OpError::Internal(what) => StoreError::Internal {
            backend,
            op,
            target,
            what,
        },
    }
}

/// An error of the migration run when opening: a database error is an [`StoreError::Open`].
pub(crate) fn open_error(backend: &'static str, target: &str, e: OpError) -> StoreError {
    match e {
        OpError::Db(source) => StoreError::Open {
            backend,
            target: target.to_owned(),
            step: "create or migrate the schema",
            source,
        },
        other => op_error(backend, "open", target, other),
    }
}

/// The current Unix time in seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The schema version this code writes and understands ([`Store::schema_version`]).
pub const SCHEMA_VERSION: i64 = sql::SCHEMA_VERSION;

impl Store {
    /// Opens the store at `url`: `sqlite:PATH`, a bare path (SQLite), or `postgres://…` /
    /// `postgresql://…` (no TLS: a local or trusted server).
    ///
    /// Creates the schema or migrates it: the versioned migrations are applied in order in one
    /// transaction; a database with a newer version than this code knows is refused
    /// ([`StoreError::SchemaTooNew`]). An SQLite file is created when missing, in a directory
    /// that must exist ([`StoreError::MissingDirectory`]), and put in WAL mode.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let backend = match locate(url)? {
            Location::Sqlite(path) => Backend::Sqlite(Sqlite::open(path).await?),
            Location::Postgres => {
                Backend::Postgres(Box::new(Postgres::open(url, redact(url)).await?))
            }
        };
        Ok(Store {
            inner: Arc::new(backend),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &*self.inner {
            Backend::Sqlite(_) => sqlite::BACKEND,
            Backend::Postgres(_) => postgres::BACKEND,
        }
    }

    /// The SQLite file, or the PostgreSQL URL without its password.
    pub fn target(&self) -> &str {
        match &*self.inner {
            Backend::Sqlite(s) => s.target(),
            Backend::Postgres(p) => p.target(),
        }
    }

    async fn run<O: Op>(&self, op: O) -> Result<O::Output, StoreError> {
        match &*self.inner {
            Backend::Sqlite(s) => s.run(op).await,
            Backend::Postgres(p) => p.run(op).await,
        }
    }

    /// The database's schema version ([`SCHEMA_VERSION`] once opened).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.run(ops::SchemaVersion).await
    }

    /// Keeps the raw bytes of an input once: keyed by their SHA-256, so a second put of the
    /// same bytes returns the id of the first (whatever its time, via and origin).
    pub async fn put_raw(&self, raw: &RawInput<'_>) -> Result<i64, StoreError> {
        self.run(ops::PutRaw {
            sha256: ops::sha256_hex(raw.bytes),
            bytes: raw.bytes.to_vec(),
            received_at: raw.received_at.timestamp(),
            via: raw.via,
            origin: raw.origin.to_owned(),
        })
        .await
    }

    /// Stores a report once, under its [`crate::ReportKey`], in one transaction: the report
    /// (with its normalised JSON), its policies and every failure detail. The day of the
    /// report is the UTC date of its `date-range` start, or of its receipt when it has none.
    ///
    /// A report already stored under the same key is [`PutOutcome::Duplicate`] (nothing is
    /// stored twice); when the new copy is trusted more, the stored report's trust (and DKIM
    /// domain) is raised to the new one's.
    pub async fn put_report(&self, r: &NewReport<'_>) -> Result<PutOutcome, StoreError> {
        self.run(ops::PutReport::new(r)).await
    }

    /// Keeps one input and what became of it in one transaction ([`InputFate`]): the raw
    /// bytes (as [`Store::put_raw`]), then the quarantine entry (as [`Store::quarantine`]) or
    /// the report (as [`Store::put_report`], with its quarantine entry when it is not trusted
    /// and no trusted copy of it is stored).
    ///
    /// The operation is queued when this is called, not when the future is first polled: the
    /// inputs of one caller are stored in the order of its calls (on SQLite, where one writer
    /// takes them in turn), so that what becomes of two copies of one report does not depend
    /// on timing.
    pub fn put_input(
        &self,
        input: &NewInput<'_>,
    ) -> impl Future<Output = Result<InputOutcome, StoreError>> + Send + use<> {
        let raw = &input.raw;
        let at = unix_now();
        let fate = match &input.fate {
            InputFate::Quarantine(reason) => ops::Fate::Quarantine {
                reason: reason.clone(),
                at,
            },
            InputFate::Report {
                report,
                trust,
                dkim_domain,
                untrusted,
            } => ops::Fate::Report {
                report: Box::new(ops::PutReport::new(&NewReport {
                    raw_id: 0,
                    report,
                    via: raw.via,
                    trust: *trust,
                    dkim_domain: *dkim_domain,
                    received_at: raw.received_at,
                })),
                untrusted: untrusted.clone(),
                at,
            },
        };
        let op = ops::PutInput {
            raw: ops::PutRaw {
                sha256: ops::sha256_hex(raw.bytes),
                bytes: raw.bytes.to_vec(),
                received_at: raw.received_at.timestamp(),
                via: raw.via,
                origin: raw.origin.to_owned(),
            },
            fate,
        };
        // Queued now on SQLite; on PostgreSQL (one transaction per operation, on its own
        // connection) it starts when the future is first polled.
        let queued = match &*self.inner {
            Backend::Sqlite(s) => Ok(s.queue(op)),
            Backend::Postgres(_) => Err(op),
        };
        let store = self.clone();
        async move {
            match queued {
                Ok(answer) => answer.await,
                Err(op) => store.run(op).await,
            }
        }
    }

    /// Puts a raw input in quarantine for `reason`, with the report it holds if it parsed.
    /// Idempotent per (raw input, reason code): the same input quarantined twice for the same
    /// reason is one entry, whose id is returned (a report given the second time is recorded
    /// if the first time had none).
    pub async fn quarantine(
        &self,
        raw_id: i64,
        reason: &QuarantineReason,
        report: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.run(ops::Quarantine {
            raw_id,
            reason: reason.clone(),
            report,
            at: unix_now(),
        })
        .await
    }

    /// The quarantine, oldest first.
    pub async fn quarantined(&self) -> Result<Vec<QuarantineEntry>, StoreError> {
        self.run(ops::Quarantined).await
    }

    /// One quarantine entry with the raw bytes of its input.
    pub async fn quarantine_entry(
        &self,
        id: i64,
    ) -> Result<Option<(QuarantineEntry, Vec<u8>)>, StoreError> {
        self.run(ops::QuarantineEntryOp { id }).await
    }

    /// Removes a quarantine entry (after a successful retry); `false` if there was none. The
    /// raw input stays until [`Store::prune`] finds it unreferenced.
    pub async fn release(&self, id: i64) -> Result<bool, StoreError> {
        self.run(ops::Release { id }).await
    }

    /// Sets a stored report's trust and DKIM domain (a retry that verified it).
    pub async fn set_trust(
        &self,
        report: i64,
        trust: Trust,
        dkim_domain: Option<&str>,
    ) -> Result<(), StoreError> {
        self.run(ops::SetTrust {
            report,
            trust,
            dkim_domain: dkim_domain.map(str::to_owned),
        })
        .await
    }

    /// Per policy domain and day, the sessions and every breakdown of [`DaySummary`], computed
    /// by the database (`GROUP BY`) over the reports the filter selects (unverified reports only
    /// with `include_unverified`). Ordered by domain then day; each breakdown by count
    /// descending, then name. Policies that name no domain are under the domain `-` (which
    /// [`Filter::domain`] can select).
    pub async fn summary(&self, f: &Filter) -> Result<Vec<DaySummary>, StoreError> {
        self.run(ops::Summary { filter: f.clone() }).await
    }

    /// Every session row (one per policy entry) and failure row of `domain` in the filter's
    /// range (the filter's own domain is ignored), by day, organisation and report.
    pub async fn history(&self, domain: &str, f: &Filter) -> Result<DomainHistory, StoreError> {
        self.run(ops::History {
            domain: domain.to_owned(),
            filter: f.clone(),
        })
        .await
    }

    /// Deletes the reports whose day is before `before` (with their policies and failure
    /// details), the quarantine entries made before that day (UTC), and the raw inputs
    /// received before it that nothing references any more, in one transaction.
    pub async fn prune(&self, before: NaiveDate) -> Result<Pruned, StoreError> {
        self.run(ops::Prune { before }).await
    }

    /// How much the store holds.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        self.run(ops::TotalsOp).await
    }

    /// SQLite only: the write transactions committed by this store so far and the write
    /// operations they carried (more operations than transactions: group commit at work, see
    /// the module `sqlite`). `None` for PostgreSQL, where each operation is its own
    /// transaction.
    pub fn write_groups(&self) -> Option<WriteGroups> {
        match &*self.inner {
            Backend::Sqlite(s) => {
                let (transactions, operations) = s.write_groups();
                Some(WriteGroups {
                    transactions,
                    operations,
                })
            }
            Backend::Postgres(_) => None,
        }
    }

    /// The normalised JSON (`Report::to_json`) of a stored report.
    pub async fn report_json(&self, id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        self.run(ops::ReportJson { id }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store and its futures can cross threads (the PostgreSQL futures are `Send` through
    /// the generic operations).
    #[allow(dead_code)]
    fn send_and_sync(s: &Store, r: &NewReport<'_>, raw: &RawInput<'_>) {
        fn is_send<T: Send>(_: &T) {}
        fn is_send_sync<T: Send + Sync + Clone + 'static>() {}
        is_send_sync::<Store>();
        is_send(&s.put_raw(raw));
        is_send(&s.put_report(r));
        is_send(&s.summary(&Filter::default()));
        is_send(&s.history("x", &Filter::default()));
        is_send(&s.quarantine_entry(1));
        is_send(&s.prune(NaiveDate::MIN));
        is_send(&Store::open("x"));
    }

    #[test]
    fn urls() {
        assert_eq!(
            locate("sqlite:/var/lib/x.db").ok(),
            Some(Location::Sqlite("/var/lib/x.db".into()))
        );
        assert_eq!(
            locate("sqlite:///var/lib/x.db").ok(),
            Some(Location::Sqlite("/var/lib/x.db".into()))
        );
        assert_eq!(
            locate("reports.db").ok(),
            Some(Location::Sqlite("reports.db".into()))
        );
        assert_eq!(locate("postgres://h/db").ok(), Some(Location::Postgres));
        assert_eq!(locate("PostgreSQL://h/db").ok(), Some(Location::Postgres));
        assert!(matches!(
            locate("mysql://u:pw@h/db"),
            Err(StoreError::UnsupportedUrl { url }) if url == "mysql://u@h/db"
        ));
        assert!(locate("sqlite:").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?sslmode=disable&password=x"),
            "postgres://u@h:5432/db?sslmode=disable"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("postgresql://u@h"), "postgresql://u@h");
        assert_eq!(redact("postgres://u:p@h?password=x"), "postgres://u@h");
    }
}
