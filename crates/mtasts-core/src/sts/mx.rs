//! MX host patterns and how they match (RFC 8461 §3.2 `sts-policy-mx-value`, §4.1).
//!
//! A pattern is a domain name, or `*.` followed by one: the wildcard stands for exactly one
//! whole left-most label. `*.example.com` matches `mail.example.com`, not `example.com` and
//! not `a.b.example.com`. Names are compared case-insensitively, as A-labels.
//!
//! <https://www.rfc-editor.org/rfc/rfc8461#section-4.1>

use crate::domain::{self, DomainError};
use std::fmt;

/// One `mx:` value of a policy, in canonical form (lower-case A-labels, no trailing dot).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxPattern {
    wildcard: bool,
    /// The name after `*.` for a wildcard, or the whole name.
    base: String,
}

/// Why an `mx:` value is not a valid pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MxPatternError {
    /// Empty value.
    Empty,
    /// `*` alone or `*.` with nothing after it.
    BareWildcard,
    /// A `*` that is not the whole left-most label (`a.*.example.com`, `mx*.example.com`,
    /// `*.*.example.com`).
    MisplacedWildcard,
    /// The name itself is invalid (IP literal, empty label, bad character, bad Punycode...).
    Domain(DomainError),
}

impl fmt::Display for MxPatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MxPatternError::Empty => f.write_str("the mx value is empty"),
            MxPatternError::BareWildcard => {
                f.write_str("a wildcard needs a domain after it, as in \"*.example.com\"")
            }
            MxPatternError::MisplacedWildcard => {
                f.write_str("\"*\" may only be the whole left-most label, as in \"*.example.com\"")
            }
            MxPatternError::Domain(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MxPatternError {}

impl MxPattern {
    /// Parses an `mx:` value. U-labels are converted to A-labels; a trailing dot is removed
    /// (see [`domain::to_a_label`]); everything else outside `["*."] Domain` is rejected.
    pub fn parse(value: &str) -> Result<MxPattern, MxPatternError> {
        if value.is_empty() {
            return Err(MxPatternError::Empty);
        }
        let (wildcard, rest) = match value.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        if value == "*" || (wildcard && (rest.is_empty() || rest == ".")) {
            return Err(MxPatternError::BareWildcard);
        }
        if rest.contains('*') {
            return Err(MxPatternError::MisplacedWildcard);
        }
        let base = domain::to_a_label(rest).map_err(MxPatternError::Domain)?;
        Ok(MxPattern { wildcard, base })
    }

    /// Whether this is a `*.` pattern.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The domain part (after `*.` for a wildcard), as an A-label.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether `host` (an MX host name as found in DNS: any case, U- or A-labels, with or
    /// without the trailing dot) matches this pattern (§4.1). An invalid host name never
    /// matches.
    pub fn matches(&self, host: &str) -> bool {
        match domain::to_a_label(host) {
            Ok(h) => self.matches_canonical(&h),
            Err(_) => false,
        }
    }

    /// As [`matches`](Self::matches), for a host already in canonical form (see
    /// [`domain::to_a_label`]).
    pub fn matches_canonical(&self, host: &str) -> bool {
        if !self.wildcard {
            return host == self.base;
        }
        // Exactly one non-empty label before ".base".
        match host.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest == self.base,
            None => false,
        }
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.base)
    }
}

/// The first pattern in `patterns` that `host` matches, if any.
pub fn find_match<'a>(patterns: &'a [MxPattern], host: &str) -> Option<&'a MxPattern> {
    let h = domain::to_a_label(host).ok()?;
    patterns.iter().find(|p| p.matches_canonical(&h))
}
