//! The SQLite backend: one database file in WAL mode with `synchronous=NORMAL`, one writer
//! connection and one reader connection (WAL lets a read proceed while a write transaction is
//! open), each operation on tokio's blocking pool.
//!
//! Durability: every operation is one transaction, so `kill -9` at any moment leaves each
//! report stored whole or not at all; WAL with `synchronous=NORMAL` keeps every committed
//! transaction across the death of the process (only a power loss or OS crash may lose the last
//! commits, which a rerun of the ingest stores again, once).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, OpenFlags, TransactionBehavior};

use crate::error::{DbError, StoreError};
use crate::ops::{Conn, Migrate, Op, OpError};
use crate::sql::Dialect;
use crate::store::{op_error, open_error};
use crate::value::{Param, Row, Val};

pub(crate) const BACKEND: &str = "sqlite";

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Sqlite {
    target: String,
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl Sqlite {
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Opens (creating if needed) the file, in a directory that must exist, and migrates it.
    pub(crate) async fn open(path: PathBuf) -> Result<Sqlite, StoreError> {
        let target = path.display().to_string();
        let task_target = target.clone();
        match tokio::task::spawn_blocking(move || open_blocking(&path, task_target)).await {
            Ok(r) => r,
            Err(source) => Err(StoreError::Task {
                backend: BACKEND,
                op: "open",
                target,
                source,
            }),
        }
    }

    /// Runs `op` in one transaction on the writer (`O::WRITE`, `BEGIN IMMEDIATE`) or the
    /// reader connection, on the blocking pool.
    pub(crate) async fn run<O: Op>(&self, op: O) -> Result<O::Output, StoreError> {
        let conn = Arc::clone(if O::WRITE { &self.writer } else { &self.reader });
        let handle = tokio::task::spawn_blocking(move || {
            // A panic while the lock was held left no transaction open: rusqlite rolls back a
            // transaction it drops.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            run_in_transaction(&mut conn, op)
        });
        let result = match handle.await {
            Ok(r) => r,
            Err(source) => {
                return Err(StoreError::Task {
                    backend: BACKEND,
                    op: O::NAME,
                    target: self.target.clone(),
                    source,
                });
            }
        };
        result.map_err(|e| op_error(BACKEND, O::NAME, &self.target, e))
    }
}

fn run_in_transaction<O: Op>(conn: &mut Connection, op: O) -> Result<O::Output, OpError> {
    let behavior = if O::WRITE {
        TransactionBehavior::Immediate
    } else {
        TransactionBehavior::Deferred
    };
    let tx = conn
        .transaction_with_behavior(behavior)
        .map_err(DbError::from)?;
    let out = {
        let mut c = SqliteConn { conn: &tx };
        drive(op.run(&mut c))
    }?;
    tx.commit().map_err(DbError::from)?;
    Ok(out)
}

/// Runs a future whose every step completes at once (the operations awaiting only
/// [`SqliteConn`]'s methods, which never wait) to its end.
fn drive<T>(f: impl Future<Output = Result<T, OpError>>) -> Result<T, OpError> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(OpError::Internal(
            "an SQLite operation waited on something other than SQLite",
        )),
    }
}

fn open_blocking(path: &Path, target: String) -> Result<Sqlite, StoreError> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(StoreError::MissingDirectory {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    let open_err = |step: &'static str, e: rusqlite::Error| StoreError::Open {
        backend: BACKEND,
        target: target.clone(),
        step,
        source: DbError::Sqlite(e),
    };
    let mut writer = connect(path).map_err(|(step, e)| open_err(step, e))?;
    run_in_transaction(&mut writer, Migrate).map_err(|e| open_error(BACKEND, &target, e))?;
    let reader = connect(path).map_err(|(step, e)| open_err(step, e))?;
    Ok(Sqlite {
        target,
        writer: Arc::new(Mutex::new(writer)),
        reader: Arc::new(Mutex::new(reader)),
    })
}

/// One connection with the busy timeout, WAL, `synchronous=NORMAL` and foreign keys on.
fn connect(path: &Path) -> Result<Connection, (&'static str, rusqlite::Error)> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| ("open the file", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| ("set the busy timeout", e))?;
    // Also the first read of the file: a file that is not a database fails here.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        .map_err(|e| ("switch to WAL mode", e))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| ("set synchronous=NORMAL", e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| ("turn foreign keys on", e))?;
    // Room for every statement of the query layer, and the multi-row failure inserts of a few
    // sizes besides.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 64;

/// A connection in a transaction. Statements come from the connection's cache
/// (`prepare_cached`), so the few statements of an ingest are prepared once per connection,
/// not once per report.
struct SqliteConn<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteConn<'c> {
    fn statement(&mut self, sql: &str) -> Result<CachedStatement<'c>, rusqlite::Error> {
        self.conn.prepare_cached(sql)
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Int(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Param::Int(None) | Param::Text(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Param::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn val(v: ValueRef<'_>) -> Val {
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(_) => Val::Real,
        ValueRef::Text(t) => match String::from_utf8(t.to_vec()) {
            Ok(s) => Val::Text(s),
            Err(e) => Val::BadText(e),
        },
        ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
    }
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.statement(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(val(row.get_ref(i)?));
            }
            out.push(values);
        }
        Ok(out)
    }

    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, DbError> {
        let mut stmt = self.statement(sql)?;
        let n = stmt.execute(rusqlite::params_from_iter(params))?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.conn.execute_batch(sql)?)
    }
}
