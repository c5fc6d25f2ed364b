//! The default store: one SQLite database file in WAL mode.
//!
//! The file holds one table, `sts_cache`, with a row per policy domain: the domain, the JSON of
//! its [`CacheEntry`], and the second after which the entry is useless. The schema version is
//! kept in `PRAGMA user_version` so later versions of mtasts can migrate the file; a file
//! written by a newer mtasts (a higher version) is refused rather than misread.
//!
//! Durability: WAL with `synchronous=NORMAL` makes every committed `put` survive the death of
//! the process (including `kill -9`); only a power loss or OS crash may lose the last few
//! commits, which for a cache only means refetching a policy.
//!
//! SQLite calls block, so each operation runs on tokio's blocking pool. Writes go through one
//! connection and reads through another, so a lookup never waits behind a write transaction
//! (WAL lets readers and the writer proceed at the same time).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use mtasts_core::sts::cache::{CacheEntry, UnixSeconds};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{Backing, Store, StoreError};

const BACKEND: &str = "sqlite";

/// The schema this code writes and understands.
const SCHEMA_VERSION: i64 = 1;

/// How long an operation waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema of version 1, created in one transaction.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS sts_cache (
    domain        TEXT PRIMARY KEY NOT NULL,
    entry         TEXT NOT NULL,
    useless_after INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sts_cache_useless_after ON sts_cache (useless_after);
";

/// The store for `type = "sqlite"`: a database file in WAL mode, created if missing in a
/// directory that must exist (a missing directory is a configuration error, not something to
/// create silently). A file that cannot be written is refused at start.
///
/// An entry stays readable through the second given as its `useless_after` and is ignored
/// from the next second on; [`Store::purge`] deletes such rows.
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The connections, replaced together when the file is recreated.
    conns: Mutex<Conns>,
}

struct Conns {
    /// Every write (put, purge) goes through this connection.
    writer: Arc<Mutex<Connection>>,
    /// Every read (get, load) goes through this one.
    reader: Arc<Mutex<Connection>>,
    /// The device and inode of the file opened, to notice it being deleted or replaced.
    identity: (u64, u64),
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and its parent directory, switches it
    /// to WAL mode and creates or checks the schema.
    ///
    /// Fails with [`StoreError::Open`] naming the file when the directory or file cannot be
    /// created, the file is not an SQLite database, or its schema is newer than this version
    /// of mtasts understands.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let target = path.display().to_string();
        let inner = tokio::task::spawn_blocking(move || open_blocking(path))
            .await
            .map_err(|e| open_error(&target, format!("the opening task failed: {e}")))??;
        Ok(SqliteStore {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the writer or reader connection on the blocking pool.
    async fn run<T, F>(
        &self,
        op: &'static str,
        key: String,
        write: bool,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let conn = {
            let conns = inner.conns.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(if write { &conns.writer } else { &conns.reader })
        };
        let handle = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the connection usable: every change is a
            // transaction that SQLite rolled back or committed.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn, &inner.path)
        });
        match handle.await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Io {
                backend: BACKEND,
                op,
                key,
                detail: format!(
                    "{}: the database task failed: {e}",
                    self.inner.path.display()
                ),
            }),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn get(&self, domain: &str, now: UnixSeconds) -> Result<Option<CacheEntry>, StoreError> {
        let key = domain.to_owned();
        self.run("get", key.clone(), false, move |conn, path| {
            let text: Option<String> = conn
                .prepare_cached(
                    "SELECT entry FROM sts_cache WHERE domain = ?1 AND useless_after >= ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![key, to_sql_time(now)], |row| row.get(0))
                        .optional()
                })
                .map_err(|e| io_error("get", &key, path, &e))?;
            let Some(text) = text else {
                return Ok(None);
            };
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    backend: BACKEND,
                    key: key.clone(),
                    detail: format!("{}: {e}", path.display()),
                })
        })
        .await
    }

    async fn put(
        &self,
        domain: &str,
        entry: &CacheEntry,
        useless_after: UnixSeconds,
    ) -> Result<(), StoreError> {
        let key = domain.to_owned();
        let json = serde_json::to_string(entry).map_err(|e| StoreError::Io {
            backend: BACKEND,
            op: "put",
            key: key.clone(),
            detail: format!("cannot encode the entry: {e}"),
        })?;
        self.run("put", key.clone(), true, move |conn, path| {
            conn.prepare_cached(
                "INSERT INTO sts_cache (domain, entry, useless_after) VALUES (?1, ?2, ?3)
                 ON CONFLICT (domain) DO UPDATE
                 SET entry = excluded.entry, useless_after = excluded.useless_after",
            )
            .and_then(|mut stmt| stmt.execute(params![key, json, to_sql_time(useless_after)]))
            .map(drop)
            .map_err(|e| io_error("put", &key, path, &e))
        })
        .await
    }

    async fn load(
        &self,
        now: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<(String, CacheEntry)>, StoreError> {
        let all = self.inner.path.display().to_string();
        self.run("load", all.clone(), false, move |conn, path| {
            let err = |e: rusqlite::Error| io_error("load", &all, path, &e);
            let mut out = Vec::new();
            if limit == 0 {
                return Ok(out);
            }
            // The longest-lived entries first, so a small limit keeps the most useful ones.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT domain, entry FROM sts_cache WHERE useless_after >= ?1
                     ORDER BY useless_after DESC",
                )
                .map_err(err)?;
            let mut rows = stmt.query(params![to_sql_time(now)]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let domain: String = match row.get(0) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(
                            file = %path.display(),
                            error = %e,
                            "skipping a cache row whose domain is unreadable"
                        );
                        continue;
                    }
                };
                let decoded = row
                    .get::<_, String>(1)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        serde_json::from_str::<CacheEntry>(&t).map_err(|e| e.to_string())
                    });
                match decoded {
                    Ok(entry) => {
                        out.push((domain, entry));
                        if out.len() >= limit {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(
                        file = %path.display(),
                        domain = %domain,
                        error = %e,
                        "skipping an unreadable cache entry (left in place)"
                    ),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn remove(&self, domain: &str) -> Result<bool, StoreError> {
        let key = domain.to_owned();
        self.run("remove", key.clone(), true, move |conn, path| {
            let n = conn
                .prepare_cached("DELETE FROM sts_cache WHERE domain = ?1")
                .and_then(|mut stmt| stmt.execute(params![key]))
                .map_err(|e| io_error("remove", &key, path, &e))?;
            Ok(n > 0)
        })
        .await
    }

    async fn purge(&self, now: UnixSeconds) -> Result<u64, StoreError> {
        let all = self.inner.path.display().to_string();
        self.run("delete", all.clone(), true, move |conn, path| {
            let n = conn
                .prepare_cached("DELETE FROM sts_cache WHERE useless_after < ?1")
                .and_then(|mut stmt| stmt.execute(params![to_sql_time(now)]))
                .map_err(|e| io_error("delete", &all, path, &e))?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn check_backing(&self) -> Result<Backing, StoreError> {
        let inner = Arc::clone(&self.inner);
        let target = inner.path.display().to_string();
        let checked = tokio::task::spawn_blocking(move || {
            let known = inner
                .conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .identity;
            let why = match identity(&inner.path) {
                Ok(id) if id == known => return Ok(Backing::Unchanged),
                Ok(_) => "the database file was replaced".to_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    "the database file was deleted".to_owned()
                }
                Err(e) => format!("the database file cannot be checked: {e}"),
            };
            let fresh = open_conns(&inner.path)?;
            *inner.conns.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
            Ok(Backing::Recreated(why))
        })
        .await;
        match checked {
            Ok(r) => r,
            Err(e) => Err(open_error(
                &target,
                format!("the checking task failed: {e}"),
            )),
        }
    }
}

/// Opens both connections and brings the schema to [`SCHEMA_VERSION`].
fn open_blocking(path: PathBuf) -> Result<Inner, StoreError> {
    let conns = open_conns(&path)?;
    Ok(Inner {
        path,
        conns: Mutex::new(conns),
    })
}

fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

fn open_conns(path: &Path) -> Result<Conns, StoreError> {
    let target = path.display().to_string();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(open_error(
            &target,
            format!(
                "the directory {} does not exist; create it (owned by the daemon's user), or \
                 let systemd's StateDirectory= create it",
                parent.display()
            ),
        ));
    }
    let mut writer = connect(path, &target)?;
    if writer.is_readonly(c"main").unwrap_or(true) {
        return Err(open_error(
            &target,
            "the file is read-only for this user: the cache could not be kept; fix its \
             owner or mode"
                .into(),
        ));
    }
    migrate(&mut writer, &target)?;
    let reader = connect(path, &target)?;
    let identity = identity(path)
        .map_err(|e| open_error(&target, format!("cannot stat the database file: {e}")))?;
    Ok(Conns {
        writer: Arc::new(Mutex::new(writer)),
        reader: Arc::new(Mutex::new(reader)),
        identity,
    })
}

/// One connection with the busy timeout, WAL and `synchronous=NORMAL`.
fn connect(path: &Path, target: &str) -> Result<Connection, StoreError> {
    let fail = |what: &str, e: rusqlite::Error| open_error(target, format!("{what}: {e}"));
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| fail("cannot open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| fail("cannot set the busy timeout", e))?;
    // Also the first read of the file: a file that is not a database fails here.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| fail("cannot switch to WAL mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            file = %target,
            journal_mode = %mode,
            "SQLite refused WAL mode; the cache works but writers block readers"
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| fail("cannot set synchronous=NORMAL", e))?;
    Ok(conn)
}

/// Creates the schema in a fresh file, and refuses a file from a newer mtasts.
fn migrate(conn: &mut Connection, target: &str) -> Result<(), StoreError> {
    let fail = |what: &str, e: rusqlite::Error| open_error(target, format!("{what}: {e}"));
    // IMMEDIATE: two processes opening a new file at once do not both create the schema.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| fail("cannot start the schema transaction", e))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| fail("cannot read the schema version", e))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_V1)
                .map_err(|e| fail("cannot create the cache table", e))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(|e| fail("cannot record the schema version", e))?;
        }
        SCHEMA_VERSION => {}
        newer if newer > SCHEMA_VERSION => {
            return Err(open_error(
                target,
                format!(
                    "the file has cache schema version {newer}, newer than version \
                     {SCHEMA_VERSION} that this mtasts understands (written by a newer \
                     mtasts?); use that version, or move the file aside to start a new cache"
                ),
            ));
        }
        other => {
            return Err(open_error(
                target,
                format!("the file has an invalid cache schema version {other}"),
            ));
        }
    }
    tx.commit().map_err(|e| fail("cannot commit the schema", e))
}

/// SQLite integers are signed: times past `i64::MAX` (never useless) are stored as that.
fn to_sql_time(t: UnixSeconds) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn open_error(target: &str, detail: String) -> StoreError {
    StoreError::Open {
        backend: BACKEND,
        target: target.to_owned(),
        detail,
    }
}

fn io_error(op: &'static str, key: &str, path: &Path, e: &rusqlite::Error) -> StoreError {
    StoreError::Io {
        backend: BACKEND,
        op,
        key: key.to_owned(),
        detail: format!("{}: {e}", path.display()),
    }
}
