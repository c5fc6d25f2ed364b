//! The SQLite backend: one database file in WAL mode with `synchronous=NORMAL`, one writer
//! connection on its own thread and one reader connection (WAL lets a read proceed while a
//! write transaction is open) on tokio's blocking pool.
//!
//! **Group commit.** The writer thread takes every write operation queued when it is free (at
//! most [`MAX_GROUP`]) and runs them in one transaction, each under its own `SAVEPOINT`: an
//! operation that fails is rolled back alone and its caller told at once; the others are
//! answered after the one `COMMIT`, so no caller hears "stored" before its data is committed.
//! Nothing waits to form a group: a lone operation is committed at once, as before; under load
//! (an ingest with several inputs in flight, several HTTPS senders) one commit carries many
//! operations, which is where SQLite's time went (each commit appends the changed pages to the
//! WAL again, and the checkpoints `fsync` them). An operation whose caller stopped waiting
//! before the writer reached it (its future dropped: a receiver past its store timeout) is
//! not run.
//!
//! Durability: every operation is one transaction or one savepoint of a transaction, so
//! `kill -9` at any moment leaves each report stored whole or not at all; WAL with
//! `synchronous=NORMAL` keeps every committed transaction across the death of the process (only
//! a power loss or OS crash may lose the last commits, which a rerun of the ingest stores
//! again, once).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use crate::error::{DbError, StoreError};
use crate::ops::{Conn, Migrate, Op, OpError};
use crate::sql::Dialect;
use crate::store::{op_error, open_error};
use crate::value::{Param, Row, Val};

pub(crate) const BACKEND: &str = "sqlite";

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most write operations committed together (see the module documentation).
pub(crate) const MAX_GROUP: usize = 256;

pub(crate) struct Sqlite {
    target: String,
    writer: Writer,
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

    /// The write transactions committed so far, and the write operations they carried.
    pub(crate) fn write_groups(&self) -> (u64, u64) {
        let c = &self.writer.counts;
        (
            c.transactions.load(Ordering::SeqCst),
            c.operations.load(Ordering::SeqCst),
        )
    }

    /// Queues the write `op` now (so that the writer takes a caller's operations in the order
    /// of its calls); the future answers once it is committed.
    pub(crate) fn queue<O: Op>(
        &self,
        op: O,
    ) -> impl Future<Output = Result<O::Output, StoreError>> + Send + use<O> {
        let answer = self.writer.queue(op);
        let target = self.target.clone();
        async move {
            answer
                .await
                .map_err(|e| op_error(BACKEND, O::NAME, &target, e))
        }
    }

    /// Runs `op`: a write (`O::WRITE`) on the writer thread, committed with the others queued
    /// at the same moment; a read in one transaction of the reader connection, on the blocking
    /// pool.
    pub(crate) async fn run<O: Op>(&self, op: O) -> Result<O::Output, StoreError> {
        let result = if O::WRITE {
            self.writer.queue(op).await
        } else {
            let conn = Arc::clone(&self.reader);
            let handle = tokio::task::spawn_blocking(move || {
                // A panic while the lock was held left no transaction open: rusqlite rolls back
                // a transaction it drops.
                let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                run_in_transaction(&mut conn, op)
            });
            match handle.await {
                Ok(r) => r,
                Err(source) => {
                    return Err(StoreError::Task {
                        backend: BACKEND,
                        op: O::NAME,
                        target: self.target.clone(),
                        source,
                    });
                }
            }
        };
        result.map_err(|e| op_error(BACKEND, O::NAME, &self.target, e))
    }
}

/// The writer connection, owned by its thread; operations reach it through a channel.
struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<GroupCounts>,
}

/// What the writer thread has done so far.
#[derive(Default)]
struct GroupCounts {
    transactions: AtomicU64,
    operations: AtomicU64,
}

/// The thread stopped (it panicked): no write can be done any more.
const WRITER_GONE: OpError = OpError::Internal("the SQLite writer thread has stopped");

impl Writer {
    fn start(conn: Connection) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let counts = Arc::new(GroupCounts::default());
        let thread_counts = Arc::clone(&counts);
        let thread = std::thread::Builder::new()
            .name("mtasts-sqlite-writer".into())
            .spawn(move || writer_loop(conn, &queue, &thread_counts))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            counts,
        })
    }

    /// Queues `op` now; the future answers once it is committed (or failed).
    fn queue<O: Op>(
        &self,
        op: O,
    ) -> impl Future<Output = Result<O::Output, OpError>> + Send + use<O> {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(OpJob { op, reply });
        let sent = matches!(&self.jobs, Some(jobs) if jobs.send(job).is_ok());
        async move {
            if !sent {
                return Err(WRITER_GONE);
            }
            // A dropped sender: the thread died before answering (the transaction was rolled
            // back).
            answer.await.unwrap_or(Err(WRITER_GONE))
        }
    }
}

impl Drop for Writer {
    /// Lets the thread finish the group it is committing and close the connection (which
    /// checkpoints the WAL), so that the file is complete when the store is gone.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            // A panic of the thread was already answered to its callers as WRITER_GONE.
            let _ = t.join();
        }
    }
}

/// A write operation waiting for the writer thread.
trait Job: Send {
    /// Runs the operation on `conn`, inside the group's transaction. On success, returns what
    /// answers the caller once the commit is known; on failure, answers the caller at once.
    fn run(self: Box<Self>, conn: &Connection) -> Option<Answer>;
    /// Answers the caller with `e` without running the operation.
    fn fail(self: Box<Self>, e: OpError);
}

/// Answers a caller with the outcome of the group's commit.
type Answer = Box<dyn FnOnce(Result<(), OpError>) + Send>;

struct OpJob<O: Op> {
    op: O,
    reply: oneshot::Sender<Result<O::Output, OpError>>,
}

impl<O: Op> Job for OpJob<O> {
    fn run(self: Box<Self>, conn: &Connection) -> Option<Answer> {
        let OpJob { op, reply } = *self;
        // The caller gave up waiting (an HTTPS receiver past its store timeout answered 503,
        // and the sender will retry): do not store what was not acknowledged.
        if reply.is_closed() {
            return None;
        }
        let mut c = SqliteConn { conn };
        match drive(op.run(&mut c)) {
            Ok(out) => Some(Box::new(move |committed: Result<(), OpError>| {
                // The caller may have gone away (its task cancelled): nothing to tell.
                let _ = reply.send(committed.map(|()| out));
            })),
            Err(e) => {
                let _ = reply.send(Err(e));
                None
            }
        }
    }

    fn fail(self: Box<Self>, e: OpError) {
        let _ = self.reply.send(Err(e));
    }
}

fn writer_loop(mut conn: Connection, queue: &mpsc::Receiver<Box<dyn Job>>, counts: &GroupCounts) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // Counted before any caller is answered, so that a caller that has its answer sees
        // its operation counted.
        counts.transactions.fetch_add(1, Ordering::SeqCst);
        counts
            .operations
            .fetch_add(group.len() as u64, Ordering::SeqCst);
        commit_group(&mut conn, group);
    }
}

/// Runs a group of operations in one transaction, each under a savepoint, and answers each
/// caller: a failed operation at once (its savepoint rolled back), the others after the commit.
fn commit_group(conn: &mut Connection, group: Vec<Box<dyn Job>>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            for job in group {
                answer_unrun(job, shared_error(&e));
            }
            return;
        }
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    let mut broken: Option<rusqlite::Error> = None;
    let mut jobs = group.into_iter();
    for job in jobs.by_ref() {
        if let Err(e) = savepoint(&tx, "SAVEPOINT op") {
            answer_unrun(job, shared_error(&e));
            broken = Some(e);
            break;
        }
        let step = match job.run(&tx) {
            Some(answer) => {
                answers.push(answer);
                savepoint(&tx, "RELEASE op")
            }
            None => savepoint(&tx, "ROLLBACK TO op").and_then(|()| savepoint(&tx, "RELEASE op")),
        };
        if let Err(e) = step {
            broken = Some(e);
            break;
        }
    }
    // The transaction is in an unknown state: roll everything back (dropping `tx` does) and
    // fail every operation of the group, run or not; their callers see the error.
    if let Some(e) = broken {
        drop(tx);
        for answer in answers {
            answer(Err(OpError::Db(DbError::Sqlite(shared_error(&e)))));
        }
        for job in jobs {
            answer_unrun(job, shared_error(&e));
        }
        return;
    }
    match tx.commit() {
        Ok(()) => {
            for answer in answers {
                answer(Ok(()));
            }
        }
        Err(e) => {
            for answer in answers {
                answer(Err(OpError::Db(DbError::Sqlite(shared_error(&e)))));
            }
        }
    }
}

/// Tells the caller of a job that was not run that it failed with `e`.
fn answer_unrun(job: Box<dyn Job>, e: rusqlite::Error) {
    job.fail(OpError::Db(DbError::Sqlite(e)));
}

fn savepoint(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// A copy of `e` for each caller of a group (rusqlite's errors are not `Clone`): SQLite's own
/// failures keep their code and message, any other is described by its text.
fn shared_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
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
    let writer = Writer::start(writer).map_err(|e| StoreError::Open {
        backend: BACKEND,
        target: target.clone(),
        step: "start the writer thread",
        source: DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(e.to_string()),
        )),
    })?;
    Ok(Sqlite {
        target,
        writer,
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
    // Statement and savepoint journals (the pages an operation changes, kept to roll it back
    // alone within its group) in memory, not in temporary files: they hold at most the pages
    // one operation changes, and on disk they were most of the writes of an ingest.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|e| ("set temp_store=MEMORY", e))?;
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
