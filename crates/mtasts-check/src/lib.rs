//! The domain owner's checker (`mtasts check`, `mtasts init`): everything a correct RFC 8461
//! sender would do for a domain, and everything an operator needs to know, as findings with
//! stable ids and a one-line verdict.
//!
//! - [`obs`]: what the probes saw (plain data);
//! - [`dns`], [`https`], [`smtp`], [`tls`]: the probes (hickory, hyper, rustls);
//! - [`assess`]: the judgement, sans-IO, from observations and the time;
//! - [`catalog`]: every finding id, with explanation and fix (`docs/checks.md`);
//! - [`run`]: one domain's probes in parallel, per-address connection limits;
//! - [`init`]: a policy and DNS records derived from what the MX hosts present.

pub mod assess;
pub mod catalog;
pub mod dns;
pub mod https;
pub mod init;
pub mod obs;
pub mod run;
pub mod smtp;
pub mod tls;

pub use assess::{AssessSettings, CheckFinding, DomainReport, SenderOutcome, Verdict, assess};
pub use run::{BadDomain, CheckConfig, Checker, SetupError};
