//! # mtasts-net
//!
//! The one network edge every other mtasts crate uses, kept thin: it asks and records, and
//! the decisions stay in [`mtasts_core`].
//!
//! - [`dns`]: the DNS client (hickory-resolver) behind the [`dns::DnsLookup`] trait, with an
//!   in-memory double for tests, the AD flag, and one classification of failures into the
//!   core's kinds;
//! - [`tls`]: trust roots, the rustls client configuration (ring, TLS 1.2 or later), an
//!   enforcing or recording verifier, TLS errors as the core's certificate verdicts, and a
//!   server configuration from PEM files ([`tls::server_config`]) or with a certificate
//!   resolver ([`tls::server_config_with_resolver`]);
//! - [`https`]: the RFC 8461 §3.3 policy fetch over hyper;
//! - [`http_server`]: the one HTTP(S) server (hyper under explicit limits, h2 by ALPN,
//!   graceful shutdown) behind the policy host, the report receiver and admin listeners.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dns;
pub mod http_server;
pub mod https;
pub mod tls;

pub use dns::{Dns, DnsLookup, DnsSettings, StaticDns};
pub use https::{FetchSettings, IpFamily, PolicyFetch, fetch_policy};
pub use tls::{TlsClient, TrustRoots, Verification};
