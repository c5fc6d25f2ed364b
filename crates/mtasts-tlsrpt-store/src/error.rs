//! What can go wrong, each variant naming the backend (`sqlite`, `postgres`), the operation
//! and the target (the SQLite file, or the PostgreSQL URL without its password).

use std::path::PathBuf;

/// An error of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL given to [`crate::Store::open`] names no backend this crate has.
    #[error(
        "unsupported store URL {url:?}: use sqlite:PATH, a bare path (SQLite), or \
         postgres://USER@HOST/DB"
    )]
    UnsupportedUrl {
        /// The URL, without its password.
        url: String,
    },

    /// A `postgres://` URL that does not parse.
    #[error("postgres store {url}: invalid URL: {source}")]
    InvalidUrl {
        /// The URL, without its password.
        url: String,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The directory of the SQLite file does not exist (it is not created silently: a missing
    /// directory is a configuration error).
    #[error(
        "sqlite store {}: the directory {} does not exist; create it (owned by the user that \
         runs mtasts)",
        path.display(),
        dir.display()
    )]
    MissingDirectory {
        /// The database file.
        path: PathBuf,
        /// Its directory, which does not exist.
        dir: PathBuf,
    },

    /// The database could not be opened or connected to, or its schema not created.
    #[error("{backend} store {target}: cannot open: {step}: {source}")]
    Open {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The file or URL.
        target: String,
        /// What was being done (`connect`, `set WAL mode`, `migrate to version 1`, …).
        step: &'static str,
        /// The database's error.
        #[source]
        source: DbError,
    },

    /// The database was written by a newer version of mtasts (its schema version is higher
    /// than any this code knows); it is refused rather than misread.
    #[error(
        "{backend} store {target}: the database has schema version {found}, newer than \
         version {known} that this mtasts understands (written by a newer mtasts?); use that \
         version, or another database"
    )]
    SchemaTooNew {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The file or URL.
        target: String,
        /// The version found.
        found: i64,
        /// The newest version this code knows.
        known: i64,
    },

    /// The database's schema version is not one this code ever wrote (negative, or several
    /// rows in the version table).
    #[error("{backend} store {target}: invalid schema version record: {detail}")]
    SchemaInvalid {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The file or URL.
        target: String,
        /// What is wrong with it.
        detail: String,
    },

    /// A statement of an operation failed.
    #[error("{backend} store {target}: {op}: {source}")]
    Query {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The operation (`put_report`, `summary`, …).
        op: &'static str,
        /// The file or URL.
        target: String,
        /// The database's error.
        #[source]
        source: DbError,
    },

    /// A row read from the database does not decode: a column holds a value this code never
    /// writes (the database was changed by hand, or is damaged).
    #[error(
        "{backend} store {target}: {op}: {table} {} column {column} does not decode: {problem}",
        id.map_or_else(|| "(aggregate row)".to_owned(), |id| format!("row {id}"))
    )]
    Corrupt {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The operation.
        op: &'static str,
        /// The file or URL.
        target: String,
        /// The table.
        table: &'static str,
        /// The row's id (`None` for a row computed by `GROUP BY`).
        id: Option<i64>,
        /// The column.
        column: &'static str,
        /// What is wrong with its value.
        #[source]
        problem: Box<DecodeProblem>,
    },

    /// An operation names a row that does not exist (`put_report` with an unknown raw input,
    /// `set_trust` of an unknown report).
    #[error("{backend} store {target}: {op}: there is no {table} row {id}")]
    NotFound {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The operation.
        op: &'static str,
        /// The file or URL.
        target: String,
        /// The table.
        table: &'static str,
        /// The id asked for.
        id: i64,
    },

    /// Something that cannot happen did: a bug of this crate, or a database that does not
    /// keep its promises.
    #[error("{backend} store {target}: {op}: internal error: {what}")]
    Internal {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The operation.
        op: &'static str,
        /// The file or URL.
        target: String,
        /// What happened.
        what: &'static str,
    },

    /// The blocking task that ran an SQLite operation panicked or was cancelled.
    #[error("{backend} store {target}: {op}: the database task failed: {source}")]
    Task {
        /// `sqlite`.
        backend: &'static str,
        /// The operation.
        op: &'static str,
        /// The file.
        target: String,
        /// The task's failure.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// An error of a database driver.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// From SQLite (rusqlite).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// From PostgreSQL (tokio-postgres).
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
}

/// Why a value read from the database does not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeProblem {
    /// The column holds another type than expected (or NULL where a value must be).
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the column should hold.
        expected: &'static str,
        /// What it holds.
        found: &'static str,
    },
    /// The row has fewer columns than the query selects (a code error).
    #[error("the row has no column {0}")]
    MissingColumn(usize),
    /// A count or size that is negative.
    #[error("{0} is negative")]
    Negative(i64),
    /// A Unix time out of chrono's range.
    #[error("{0} is not a valid Unix time")]
    BadTime(i64),
    /// A day that is not `YYYY-MM-DD`.
    #[error("{value:?} is not a YYYY-MM-DD day: {source}")]
    BadDay {
        /// The text.
        value: String,
        /// Why.
        #[source]
        source: chrono::ParseError,
    },
    /// A `via` or `trust` that is none of the known names.
    #[error("{0:?} is none of the known values")]
    UnknownName(String),
    /// A JSON column that does not parse.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Text that is not UTF-8 (SQLite does not check).
    #[error("text is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}
