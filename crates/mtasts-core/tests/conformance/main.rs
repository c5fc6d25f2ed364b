//! The conformance suite: one named test per rule and boundary, each named for its RFC
//! section (`rfc8461_s3_1_...` is RFC 8461 §3.1). Table-driven through the `cases!` macro in
//! `support`, so every case is counted and reported by the test runner on its own.

#[macro_use]
mod support;

mod apply;
mod cache;
mod dane;
mod dkim;
mod fetch;
mod interop;
mod mx;
mod policy;
mod publish;
mod record_sts;
mod record_tlsrpt;
mod report;
mod select;
