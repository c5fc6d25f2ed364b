//! # mtasts-lab: a hermetic simulated internet on loopback
//!
//! Everything mtasts deals with, reproduced on this machine so that no test, benchmark or
//! demo touches the real internet: an authoritative DNS server (hickory-server), HTTPS policy
//! hosts `mta-sts.<domain>` behind one SNI-routed listener, SMTP MX hosts with STARTTLS, a
//! test PKI with good and bad certificates, and the faults and attacks in between (STARTTLS
//! stripping, MX hijack, certificate substitution, policy-fetch failures, DNS failures).
//!
//! A world is described by a [`Scenario`] (TOML, see `docs/lab.md`), started with
//! [`World::start`], inspected through its logs, changed while it runs with [`Mutation`]s (or
//! the loopback control API), and stopped with [`World::shutdown`] or by dropping it.
//!
//! ```no_run
//! use mtasts_lab::{Scenario, World, WorldOptions};
//!
//! let scenario = Scenario::from_toml_str(r#"
//!     [domains."good.test"]
//!     comment = "enforce, one valid MX"
//!     sts_txt = ["v=STSv1; id=1;"]
//!     mx = ["10 mx1.good.test"]
//!     [domains."good.test".policy]
//!     mode = "enforce"
//!     max_age = 86400
//!     mx = ["mx1.good.test"]
//! "#, "<inline>")?;
//! let world = World::start(&scenario, WorldOptions::default())?;
//! println!("dns {} https {} smtp port {} ca {}",
//!     world.dns_addr(), world.https_addr(), world.smtp_port(), world.ca_pem_path().display());
//! world.set_starttls("mx1.good.test", mtasts_lab::StarttlsMode::Strip)?;
//! world.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Addressing: each world takes a random block `127.X.Y.0/24` (retrying on EADDRINUSE), so
//! several worlds can run at once. DNS and control listen on `.1`, the policy hosts on `.2`,
//! and every MX backend gets its own address from `.10` on, all on one SMTP port.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod control;
mod dane;
mod dns;
pub mod error;
mod http_util;
mod https;
pub mod limits;
pub mod logs;
pub mod mutation;
pub mod pki;
pub mod scenario;
mod smtp;
mod state;
mod tls_sniff;
mod world;

pub use error::{LabError, ScenarioError};
pub use https::POLICY_PATH;
pub use logs::{DnsQueryLog, PolicyFetch, SmtpSession, StoredMessage, TlsInfo};
pub use mutation::Mutation;
pub use scenario::{
    BackendSpec, BlockMode, CertKind, CertSpec, DnsFault, DnsNameSpec, Expectations, HostSpec,
    PolicySpec, ReplyFault, Scenario, SenderExpectation, SmtpStage, StarttlsMode, TlsVersions,
    TxtValue,
};
pub use world::{World, WorldInfo, WorldOptions};
