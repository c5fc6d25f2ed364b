//! The domain owner's checker (`mtasts check`, `mtasts init`): everything a correct RFC 8461
//! sender would do for a domain, and everything an operator needs to know, as findings with
//! stable ids and a one-line verdict.
//!
//! - [`obs`]: what the probes saw (plain data);
//! - [`dns`], [`smtp`]: the probes (DNS, the policy fetch and TLS through `mtasts-net`; SMTP
//!   here);
//! - [`assess`]: the judgement, sans-IO, from observations and the time;
//! - [`findings`]: the checker's own findings, as the core's `Diagnostic`s;
//! - [`catalog`]: every finding code, generated from the diagnostic types (`docs/checks.md`);
//! - [`run`]: one domain's probes in parallel, per-address connection limits;
//! - [`bulk`]: many domains: the bounded input, the run in input order, the summary counts;
//! - [`render`]: the human report, the demo's block and the adoption table;
//! - [`init`]: a policy and DNS records derived from what the MX hosts present.

pub mod assess;
pub mod bulk;
pub mod catalog;
pub mod dns;
pub mod findings;
pub mod init;
pub mod obs;
pub mod render;
pub mod run;
pub mod smtp;

pub use assess::{AssessSettings, DomainReport, SenderOutcome, Verdict, assess};
pub use run::{BadDomain, CheckConfig, Checker, SetupError};
