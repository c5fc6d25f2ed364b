//! Domain names as the standards use them: RFC 5321 `Domain` syntax, compared as lower-case
//! A-labels (RFC 8461 §3.2 "names as A-labels", §4.1 "compared as A-labels").

use std::fmt;
use std::net::IpAddr;

/// Longest DNS name in presentation form, without the trailing dot (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Longest raw label (in code points) given to the IDNA conversion: four times the longest
/// valid label, room for ignorable code points UTS 46 removes.
const IDNA_MAX_RAW_LABEL: usize = 4 * MAX_LABEL_LEN;

/// Longest raw name (in code points) given to the IDNA conversion.
const IDNA_MAX_RAW_NAME: usize = 4 * MAX_NAME_LEN;

/// Why a string is not a usable domain name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainError {
    /// The name is empty.
    Empty,
    /// An IP address where a host name is required.
    IpLiteral,
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// A label longer than 63 octets.
    LabelTooLong {
        /// The label.
        label: String,
    },
    /// The whole name is longer than 253 octets.
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// A character outside letters, digits and hyphen.
    InvalidChar {
        /// The offending character.
        ch: char,
    },
    /// A label begins or ends with a hyphen.
    HyphenAtLabelEdge {
        /// The label.
        label: String,
    },
    /// The top-level label is all digits, which no real TLD is (and which IPv4 addresses are).
    NumericTld,
    /// A `*` anywhere but as the whole left-most label of a pattern.
    MisplacedWildcard,
    /// A U-label that cannot be converted, or an `xn--` label that is not valid Punycode.
    InvalidIdn {
        /// The label or name that failed.
        name: String,
    },
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::Empty => f.write_str("the name is empty"),
            DomainError::IpLiteral => f.write_str("an IP address is not a host name"),
            DomainError::EmptyLabel => {
                f.write_str("the name has an empty label (\"..\" or a leading dot)")
            }
            DomainError::LabelTooLong { label } => {
                write!(
                    f,
                    "label \"{}\" is {} octets long, more than 63",
                    crate::text::excerpt(label, 80),
                    label.len()
                )
            }
            DomainError::NameTooLong { len } => {
                write!(f, "the name is {len} octets long, more than 253")
            }
            DomainError::InvalidChar { ch } => {
                write!(
                    f,
                    "character {ch:?} is not allowed in a host name (letters, digits, hyphen)"
                )
            }
            DomainError::HyphenAtLabelEdge { label } => {
                write!(f, "label \"{label}\" begins or ends with a hyphen")
            }
            DomainError::NumericTld => {
                f.write_str("the last label is all digits: this is not a host name")
            }
            DomainError::MisplacedWildcard => f.write_str(
                "\"*\" is only allowed as the whole left-most label, as in \"*.example.com\"",
            ),
            DomainError::InvalidIdn { name } => {
                write!(
                    f,
                    "\"{name}\" is not a valid internationalised name (bad U-label or Punycode)"
                )
            }
        }
    }
}

impl std::error::Error for DomainError {}

/// Whether the string needs IDNA processing: non-ASCII, or an ACE (`xn--`) label somewhere.
fn needs_idna(name: &str) -> bool {
    !name.is_ascii()
        || name
            .split('.')
            .any(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case("xn--"))
}

/// Checks RFC 5321 `Domain` syntax on an ASCII name (no trailing dot): labels of
/// letters, digits and hyphens, not starting or ending with a hyphen, within the lengths.
fn check_ldh(name: &str) -> Result<(), DomainError> {
    if name.is_empty() {
        return Err(DomainError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(DomainError::NameTooLong { len: name.len() });
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DomainError::LabelTooLong {
                label: label.to_string(),
            });
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(if ch == '*' {
                DomainError::MisplacedWildcard
            } else {
                DomainError::InvalidChar { ch }
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainError::HyphenAtLabelEdge {
                label: label.to_string(),
            });
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::NumericTld);
    }
    Ok(())
}

/// Converts a host name to its canonical comparison form: lower-case A-labels, with no
/// trailing dot. U-labels are converted (UTS 46, non-transitional); `xn--` labels must be
/// valid Punycode. IP addresses (bare or bracketed) are rejected.
///
/// A single trailing dot (the DNS root) is accepted and removed; use [`has_trailing_dot`] if
/// a caller wants to warn about it.
pub fn to_a_label(name: &str) -> Result<String, DomainError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(DomainError::Empty);
    }
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    let unbracketed = unbracketed.strip_prefix("IPv6:").unwrap_or(unbracketed);
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Err(DomainError::IpLiteral);
    }
    let ascii = if needs_idna(trimmed) {
        // A leading/embedded empty label or a stray character would be accepted by the
        // lenient UTS 46 mapping; check the label shape first on the raw input.
        if trimmed.split('.').any(str::is_empty) {
            return Err(DomainError::EmptyLabel);
        }
        // Punycode decoding is quadratic in the label's length: a hostile 60 KB `xn--` label
        // took seconds (found by fuzzing). No valid label is longer than 63 octets; UTS 46
        // may drop ignorable code points before that is checked, so only labels and names
        // far beyond any valid length are refused here, before the conversion.
        // UTS 46 never drops an ASCII character, so an all-ASCII label (an `xn--` one) over
        // 63 octets can be refused at once; others get the margin for ignorable code points.
        if let Some(label) = trimmed.split('.').find(|l| {
            if l.is_ascii() {
                l.len() > MAX_LABEL_LEN
            } else {
                l.chars().count() > IDNA_MAX_RAW_LABEL
            }
        }) {
            return Err(DomainError::LabelTooLong {
                label: label.to_string(),
            });
        }
        if trimmed.chars().count() > IDNA_MAX_RAW_NAME {
            return Err(DomainError::NameTooLong { len: trimmed.len() });
        }
        if trimmed.contains('*') {
            return Err(DomainError::MisplacedWildcard);
        }
        let ascii = idna::domain_to_ascii(trimmed).map_err(|_| DomainError::InvalidIdn {
            name: trimmed.to_string(),
        })?;
        // Every ACE label must round-trip: decode to Unicode without error.
        let (_, res) = idna::domain_to_unicode(&ascii);
        if res.is_err() {
            return Err(DomainError::InvalidIdn {
                name: trimmed.to_string(),
            });
        }
        ascii
    } else {
        trimmed.to_ascii_lowercase()
    };
    check_ldh(&ascii)?;
    Ok(ascii)
}

/// Whether the name ends with the root's dot (`example.com.`).
pub fn has_trailing_dot(name: &str) -> bool {
    name.ends_with('.') && name.len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(
            to_a_label("MAIL.Example.COM."),
            Ok("mail.example.com".into())
        );
        assert_eq!(
            to_a_label("Bücher.example"),
            Ok("xn--bcher-kva.example".into())
        );
        assert_eq!(
            to_a_label("xn--bcher-KVA.example"),
            Ok("xn--bcher-kva.example".into())
        );
        assert_eq!(to_a_label("ab--cd.example"), Ok("ab--cd.example".into()));
    }

    #[test]
    fn rejections() {
        assert_eq!(to_a_label("192.0.2.1"), Err(DomainError::IpLiteral));
        assert_eq!(to_a_label("[192.0.2.1]"), Err(DomainError::IpLiteral));
        assert_eq!(
            to_a_label("[IPv6:2001:db8::1]"),
            Err(DomainError::IpLiteral)
        );
        assert_eq!(to_a_label("a..b"), Err(DomainError::EmptyLabel));
        assert_eq!(to_a_label("a.b.123"), Err(DomainError::NumericTld));
        assert!(matches!(
            to_a_label("xn--zz.example"),
            Err(DomainError::InvalidIdn { .. })
        ));
        assert!(matches!(
            to_a_label("a_b.example"),
            Err(DomainError::InvalidChar { ch: '_' })
        ));
        assert_eq!(to_a_label("."), Err(DomainError::Empty));
        assert_eq!(to_a_label(""), Err(DomainError::Empty));
    }
}
