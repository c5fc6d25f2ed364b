//! # mtasts-core
//!
//! The sans-IO core of mtasts: everything RFC 8461 (MTA-STS) and RFC 8460 (TLS-RPT) decide,
//! as pure functions of their inputs. No sockets, no files, no clock, no randomness: callers
//! pass in the TXT RRset they resolved, the HTTP response they received, the time it is now.
//!
//! - [`sts`]: the `_mta-sts` TXT record (§3.1), the policy file (§3.2), the policy fetch
//!   response rules (§3.3) and MX pattern matching (§4.1).
//! - [`tlsrpt`]: the `_smtp._tls` TXT record (RFC 8460 §3) and aggregate reports (§4, §5).
//! - [`domain`]: domain-name validation and A-label conversion shared by both.
//! - [`diag`]: the common [`Diagnostic`] shape of every error and warning.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acme;
pub mod catalogue;
pub mod dane;
pub mod diag;
pub mod dns;
pub mod domain;
pub mod interop;
pub mod json;
pub mod rfc;
pub mod rrset;
pub mod sts;
pub mod text;
pub mod tls;
pub mod tlsrpt;
pub(crate) mod txt;

pub use diag::{Catalogue, Diagnostic, Finding, Location, Severity};
pub use rfc::RfcRef;
