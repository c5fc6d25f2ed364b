//! Errors of the lab.

use std::io;
use std::path::PathBuf;

/// A problem found in a scenario file: which file, which domain, which field, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {location}{message}")]
pub struct ScenarioError {
    /// The scenario file (or another label for in-memory text, e.g. `"<inline>"`).
    pub source_name: String,
    /// `domain "x.test": field "policy.mx": ` or empty when the problem is not tied to one.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl ScenarioError {
    pub(crate) fn new(
        source_name: &str,
        domain: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        let mut location = String::new();
        if let Some(domain) = domain {
            location.push_str(&format!("domain \"{domain}\": "));
        }
        if let Some(field) = field {
            location.push_str(&format!("field \"{field}\": "));
        }
        Self {
            source_name: source_name.to_owned(),
            location,
            message: message.into(),
        }
    }
}

/// Everything that can go wrong while starting, changing or stopping a world.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Binding a socket failed (after all retries when the address was chosen at random).
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        /// Which service (`"dns/udp"`, `"smtp"`, ...).
        what: &'static str,
        /// The address that was tried.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Creating or generating a certificate failed.
    #[error("certificate for {name}: {message}")]
    Certificate {
        /// The host the certificate was for.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// A mutation named a domain, host or record that the world does not have, or was invalid.
    #[error("mutation rejected: {0}")]
    Mutation(String),
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Reading or writing a file (the CA file, a stored message) failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Any other I/O failure while starting the world (runtime, thread).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The world's thread stopped before it reported its addresses, or did not report in time.
    #[error("world did not start: {0}")]
    Startup(String),
    /// A TLS configuration could not be built.
    #[error("tls configuration: {0}")]
    Tls(String),
}
