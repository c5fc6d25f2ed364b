//! References to the standards' sections, carried by every error and finding.

use std::fmt;

/// A section of an RFC, e.g. RFC 8461 §3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RfcRef {
    /// The RFC number.
    pub rfc: u16,
    /// The section, as printed in the RFC ("3.1", "4.3").
    pub section: &'static str,
}

impl RfcRef {
    /// RFC 8461 (MTA-STS), the given section.
    pub const fn sts(section: &'static str) -> Self {
        Self { rfc: 8461, section }
    }

    /// RFC 8460 (TLS-RPT), the given section.
    pub const fn tlsrpt(section: &'static str) -> Self {
        Self { rfc: 8460, section }
    }

    /// Any RFC; an empty `section` means the RFC as a whole.
    pub const fn new(rfc: u16, section: &'static str) -> Self {
        Self { rfc, section }
    }

    /// The RFC editor's URL of the section.
    pub fn url(&self) -> String {
        if self.section.is_empty() {
            format!("https://www.rfc-editor.org/rfc/rfc{}", self.rfc)
        } else {
            format!(
                "https://www.rfc-editor.org/rfc/rfc{}#section-{}",
                self.rfc, self.section
            )
        }
    }
}

impl fmt::Display for RfcRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.section.is_empty() {
            write!(f, "RFC {}", self.rfc)
        } else {
            write!(f, "RFC {} §{}", self.rfc, self.section)
        }
    }
}

impl serde::Serialize for RfcRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
