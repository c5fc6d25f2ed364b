//! Applying a policy to a delivery attempt (RFC 8461 §4, §5), as one pure decision that the
//! checker's verdict, the resolver and the Postfix daemon all use.
//!
//! - §4.1: the MX host must match one of the policy's `mx` patterns;
//! - §4.2: the MX must offer STARTTLS, and its certificate must be valid for the MX host name
//!   (the name from the MX record), chain to a trusted root and be unexpired;
//! - §5: what the mode makes of a failure: `enforce` refuses the MX (a temporary failure, the
//!   message stays queued), `testing` delivers and reports, `none` behaves as if there were no
//!   policy.
//!
//! Every failure carries its RFC 8460 §4.3 result type, so the decision and the TLS-RPT count
//! cannot disagree.

use crate::sts::policy::{Mode, Policy};
use crate::tls::{CertVerdict, HandshakeFailure};
use crate::tlsrpt::result::{Failure, ResultType};

/// What a mode makes of a validation failure (RFC 8461 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// `enforce`: do not deliver to an MX that fails validation; treat it as a temporary
    /// failure.
    Refuse,
    /// `testing`: deliver anyway, and report the failure (TLS-RPT).
    Report,
    /// `none`: as if there were no policy.
    Ignore,
}

impl Mode {
    /// What this mode makes of a validation failure (§5).
    pub fn enforcement(self) -> Enforcement {
        match self {
            Mode::Enforce => Enforcement::Refuse,
            Mode::Testing => Enforcement::Report,
            Mode::None => Enforcement::Ignore,
        }
    }
}

/// How STARTTLS went on one connection to an MX host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StarttlsOutcome<'a> {
    /// The EHLO reply did not offer STARTTLS (or an attacker removed it).
    NotOffered,
    /// STARTTLS was offered but the command was answered with an error.
    Refused,
    /// The TLS handshake did not complete.
    HandshakeFailed(&'a HandshakeFailure),
    /// TLS is up; the certificate's verdict for the MX host name.
    Established(&'a CertVerdict),
}

/// §4.1: whether `mx_host` (as in the MX record) is allowed by the policy's patterns.
pub fn check_mx_host(policy: &Policy, mx_host: &str) -> Result<(), Failure> {
    if policy.allows_mx(mx_host) {
        Ok(())
    } else {
        // RFC 8460 §4.3.1 has no type of its own for it: a general validation failure.
        Err(Failure::with_reason(
            ResultType::ValidationFailure,
            "mx-not-in-policy",
        ))
    }
}

/// §4.2: whether the connection's TLS is acceptable.
pub fn check_tls(tls: StarttlsOutcome<'_>) -> Result<(), Failure> {
    match tls {
        StarttlsOutcome::NotOffered => Err(Failure::new(ResultType::StarttlsNotSupported)),
        StarttlsOutcome::Refused => Err(Failure::with_reason(
            ResultType::StarttlsNotSupported,
            "starttls-command-failed",
        )),
        StarttlsOutcome::HandshakeFailed(h) => Err(h.failure()),
        StarttlsOutcome::Established(v) => v.failure().map_or(Ok(()), Err),
    }
}

/// §4: both checks, the MX host first.
pub fn validate(policy: &Policy, mx_host: &str, tls: StarttlsOutcome<'_>) -> Result<(), Failure> {
    check_mx_host(policy, mx_host)?;
    check_tls(tls)
}

/// What a sender does with one MX attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Deliver; nothing to report.
    Deliver,
    /// Deliver, and report this failure (mode `testing`).
    DeliverAndReport(Failure),
    /// Do not deliver to this MX (mode `enforce`); the message stays queued for another MX
    /// or a later try, and the failure is reported.
    Refuse(Failure),
}

impl Delivery {
    /// Whether the message goes to this MX.
    pub fn delivers(&self) -> bool {
        !matches!(self, Delivery::Refuse(_))
    }

    /// The failure to report, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Delivery::Deliver => None,
            Delivery::DeliverAndReport(f) | Delivery::Refuse(f) => Some(f),
        }
    }
}

/// §5: the decision for one attempt under `policy` (`None`: the domain has no policy, so the
/// sender delivers with whatever TLS it got, opportunistically).
pub fn apply(policy: Option<&Policy>, mx_host: &str, tls: StarttlsOutcome<'_>) -> Delivery {
    let Some(policy) = policy else {
        return Delivery::Deliver;
    };
    match (policy.mode.enforcement(), validate(policy, mx_host, tls)) {
        (Enforcement::Ignore, _) | (_, Ok(())) => Delivery::Deliver,
        (Enforcement::Report, Err(f)) => Delivery::DeliverAndReport(f),
        (Enforcement::Refuse, Err(f)) => Delivery::Refuse(f),
    }
}
