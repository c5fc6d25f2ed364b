//! # mtasts-resolver
//!
//! The sending side of MTA-STS (RFC 8461) as a sending MTA needs it: discover the policy over
//! DNS, fetch it over HTTPS, and keep it in the §5.1 cache. Every decision is made by
//! [`mtasts_core::sts`]; this crate does the I/O around those decisions.
#![forbid(unsafe_code)]

pub mod config;
pub mod dane;
pub mod store;

pub use config::{DnsConfig, FetchConfig, MemoryConfig, ResolverConfig};
pub mod dns;
pub mod engine;
pub mod fetch;
pub mod render;
pub mod resolution;

pub use dane::{DaneConfig, DaneResolution, DaneStatus};
pub use engine::{
    CachedDomain, Clock, Forgotten, Inspection, Listing, Resolver, ResolverError, Trace, normalize,
    outcome_now, system_clock,
};
pub use resolution::{Outcome, Resolution, Source};
