//! # mtasts-acme
//!
//! Certificates for the policy host `mta-sts.<domain>` through ACME (RFC 8555), validated by
//! HTTP-01 (RFC 8555 §8.3) or TLS-ALPN-01 (RFC 8737), with instant-acme speaking the protocol
//! over the workspace's one HTTPS stack ([`http`]). When to order, renew and retry, and when
//! expiry is an alarm, is decided by [`mtasts_core::acme`]; this crate does the I/O around it:
//!
//! - [`Acme`]: the manager. [`Acme::new`] loads the stored certificates (no network);
//!   [`Acme::ensure`] orders a certificate for one name when the core says so;
//!   [`Acme::run`] does that for every name until shut down; [`Acme::renew_now`] forces it.
//! - [`CertStore`] (a [`CertSource`]): the certificates being served, swapped on renewal.
//! - [`ChallengeStore`]: the HTTP-01 key authorizations and TLS-ALPN-01 certificates the
//!   server answers while a validation runs; [`AcmeResolver`] is the rustls resolver that
//!   serves both kinds of certificate.
//! - [`store::Storage`]: the account and certificates on disk (0600 files, atomic writes).
//!
//! See `docs/acme.md`.
#![forbid(unsafe_code)]

pub mod certs;
pub mod challenge;
pub mod http;
mod manager;
pub mod store;

pub use certs::{AcmeResolver, CertSource, CertStore};
pub use challenge::{ACME_TLS_ALPN, ChallengeSink, ChallengeStore, HTTP01_PREFIX};
pub use http::HttpLimits;
pub use manager::{Acme, CertStatus, ChallengeKind, Ensured, Settings};

/// What failed, and where.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// A setting is wrong.
    #[error("ACME settings: {0}")]
    Settings(String),
    /// A file or directory of the storage.
    #[error("ACME storage: cannot {what} {path}: {detail}")]
    Storage {
        /// What was being done.
        what: String,
        /// The path.
        path: String,
        /// Why it failed.
        detail: String,
    },
    /// The ACME account could not be created or loaded.
    #[error("ACME account at {directory}: {detail}")]
    Account {
        /// The directory URL.
        directory: String,
        /// Why.
        detail: String,
    },
    /// An order failed.
    #[error("ACME order for {name}: {step}: {detail}")]
    Order {
        /// The certificate's name.
        name: String,
        /// The step (`new order`, `authorization`, `challenge`, `validation`, `finalize`,
        /// `certificate`, `store`).
        step: &'static str,
        /// Why.
        detail: String,
    },
    /// A challenge could not be set up.
    #[error("ACME challenge for {name}: {detail}")]
    Challenge {
        /// The name.
        name: String,
        /// Why.
        detail: String,
    },
    /// A stored or issued certificate could not be used.
    #[error("ACME certificate for {name}: {detail}")]
    Certificate {
        /// The name.
        name: String,
        /// Why.
        detail: String,
    },
}

/// Whether `name` is a DNS name a certificate is ordered for: lower-case A-labels (letters,
/// digits, hyphens), dots between them, no wildcard, at most 253 octets. Such a name is also
/// a safe file name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Durations as whole seconds in configuration files.
pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_ordered_are_lower_case_a_labels_and_safe_file_names() {
        let cases = [
            ("mta-sts.example.com", true),
            ("mta-sts.xn--bcher-kva.example", true),
            ("MTA-STS.example.com", false),
            ("*.example.com", false),
            ("localhost", false),
            ("../etc.passwd", false),
            ("a..b", false),
            ("-a.example", false),
            ("a.example.", false),
            ("", false),
        ];
        for (name, want) in cases {
            assert_eq!(valid_name(name), want, "{name}");
        }
    }
}
