//! # mtasts-tlsrpt-receive
//!
//! Receiving TLS-RPT aggregate reports (RFC 8460): reading each input within explicit limits
//! ([`read`]), and rendering what a report says for people and as JSON ([`render`]). The
//! decisions about a report — what it is, what is wrong with it — are the core's
//! ([`mtasts_core::tlsrpt`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analyse;
pub mod dkim;
pub mod https;
pub mod imap;
pub mod ingest;
pub mod read;
pub mod render;
pub mod sources;
pub mod view;
