//! What one resolution decided, and how it got there.

use std::sync::Arc;

use mtasts_core::sts::apply::Enforcement;
use mtasts_core::sts::cache::{CacheEntry, CachedPolicy};
use mtasts_core::sts::policy::Mode;
use serde::Serialize;

/// The decision for one policy domain.
#[derive(Clone, Debug)]
pub struct Resolution {
    /// The policy domain, lower-case A-labels, no trailing dot.
    pub domain: String,
    /// The decision.
    pub outcome: Outcome,
    /// Where the decision came from.
    pub source: Source,
}

/// The decision.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A valid policy applies. Its mode may be `none` (which senders treat as no policy).
    Policy(Arc<CacheEntry>),
    /// No policy applies: the domain publishes none, or its policy could not be fetched and
    /// nothing valid is cached (RFC 8461 §3.3: deliver as if it had no policy).
    NoPolicy {
        /// Why.
        reason: String,
    },
    /// Unknown for now: DNS failed and nothing valid is cached.
    Transient {
        /// Why.
        reason: String,
    },
    /// The request itself is unusable (not a domain name).
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

impl Outcome {
    /// The valid cached policy, when the outcome is one.
    pub fn policy(&self) -> Option<&CachedPolicy> {
        match self {
            Outcome::Policy(entry) => entry.policy.as_ref(),
            _ => None,
        }
    }

    /// The policy to enforce or test: present and not in mode `none` (§5).
    pub fn applicable(&self) -> Option<&CachedPolicy> {
        self.policy()
            .filter(|p| p.policy.mode.enforcement() != Enforcement::Ignore)
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Policy(e) => match e.policy.as_ref().map(|p| p.policy.mode) {
                Some(Mode::Enforce) => "enforce",
                Some(Mode::Testing) => "testing",
                _ => "none",
            },
            Outcome::NoPolicy { .. } => "no-policy",
            Outcome::Transient { .. } => "transient",
            Outcome::Invalid { .. } => "invalid",
        }
    }
}

/// Where a decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The in-memory layer, with no I/O.
    Memory,
    /// The persistent or shared store, with no network I/O.
    Store,
    /// A DNS lookup (and possibly a fetch) made for this request or one it joined.
    Network,
}
