//! # mtasts-tlsrpt-store
//!
//! The received TLS-RPT reports (RFC 8460), kept safely: every input's raw bytes, each report
//! stored once under its key (organization-name, report-id), normalised into policies and
//! failure details so that the analyses are SQL, a quarantine for what could not be trusted or
//! read, and retention. One schema with versioned migrations and one query layer for two
//! backends: SQLite (one file, WAL; the default) and PostgreSQL (several receivers, one
//! database). mox's `tlsrptdb` is the model.
//!
//! What a report says and whether it can be trusted are decided elsewhere (the core parses,
//! `mtasts-tlsrpt-receive` verifies DKIM); this crate only keeps and queries.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod model;
mod ops;
mod postgres;
mod sql;
mod sqlite;
mod store;
mod value;

pub use error::{DbError, DecodeProblem, StoreError};
pub use model::*;
pub use store::{SCHEMA_VERSION, Store};

/// Where the store lives when `--db` (or `MTASTS_DB`) does not say:
/// `$XDG_DATA_HOME/mtasts/reports.db`, else `$HOME/.local/share/mtasts/reports.db`, else
/// (no home, as for a system service) `/var/lib/mtasts/reports.db`. The directory is created
/// on first use by the caller; [`Store::open`] itself never creates directories.
pub fn default_path() -> std::path::PathBuf {
    let non_empty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    if let Some(d) = non_empty("XDG_DATA_HOME") {
        return std::path::PathBuf::from(d).join("mtasts/reports.db");
    }
    if let Some(h) = non_empty("HOME") {
        return std::path::PathBuf::from(h).join(".local/share/mtasts/reports.db");
    }
    std::path::PathBuf::from("/var/lib/mtasts/reports.db")
}
