//! `mtasts serve`: the MTA-STS policy host (RFC 8461 §3.3) for many domains on the one HTTP
//! server of `mtasts-net`: the certificate by SNI ([`certs`]), the policy by `Host`, the id
//! derived from the policy and checked against the published `_mta-sts` record
//! ([`drift`]), `promote` and `retire` ([`manage`]), `/metrics` ([`metrics`]). Every RFC
//! decision is the core's (`mtasts_core::sts::publish`, `sts::policy`); this crate is an edge.

pub mod certs;
pub mod config;
pub mod manage;
pub mod metrics;
pub mod policies;
pub mod run;
pub mod server;
