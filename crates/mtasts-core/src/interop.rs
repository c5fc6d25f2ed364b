//! What deployed implementations do with inputs the ABNF of RFC 8461 §3.1/§3.2 and RFC 8460
//! §3 does not allow: which of mox, go-mtasts, postfix-tlspol, postfix-mta-sts-resolver,
//! chasquid, Stalwart and checkdmarc reject each case, as verified against their code
//! (`data/interop.tsv`: one row per case and implementation, with the file, commit and lines
//! that decide it; `docs/interop.md` is its readable form, and a test keeps the two equal).
//!
//! "Strict for owners, safe for senders": a policy or record that some deployed sender
//! rejects silently loses MTA-STS with that sender, so `lint` and `check` report it as an
//! error naming those senders, while our own resolver accepts what is safe to accept.

use std::sync::OnceLock;

/// The evidence table, as compiled in.
pub const EVIDENCE: &str = include_str!("../data/interop.tsv");

/// One row of the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The case id, e.g. `policy-blank-line`.
    pub case: &'static str,
    /// The implementation, e.g. `mox`.
    pub implementation: &'static str,
    /// `rejects`, `accepts`, `accepts-normalised` or `not-applicable`.
    pub verdict: &'static str,
    /// `owner/repo` on GitHub.
    pub repo: &'static str,
    /// The file that decides it.
    pub path: &'static str,
    /// The commit read.
    pub commit: &'static str,
    /// The line range.
    pub lines: &'static str,
}

/// Every row of the evidence.
pub fn verdicts() -> &'static [Verdict] {
    static ROWS: OnceLock<Vec<Verdict>> = OnceLock::new();
    ROWS.get_or_init(|| {
        EVIDENCE
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut c = l.split('\t');
                Some(Verdict {
                    case: c.next()?,
                    implementation: c.next()?,
                    verdict: c.next()?,
                    repo: c.next()?,
                    path: c.next()?,
                    commit: c.next()?,
                    lines: c.next()?,
                })
            })
            .collect()
    })
}

/// The implementations that reject `case`, senders before checkers, in table order.
pub fn rejected_by(case: &str) -> Vec<&'static str> {
    verdicts()
        .iter()
        .filter(|v| v.case == case && v.verdict == "rejects")
        .map(|v| v.implementation)
        .collect()
}

/// The clause `"mox, go-mtasts and postfix-tlspol reject"` (`"mox rejects"` for one), or
/// `None` when nobody surveyed rejects `case`.
pub fn rejected_by_text(case: &str) -> Option<String> {
    let names = rejected_by(case);
    match names.as_slice() {
        [] => None,
        [one] => Some(format!("{one} rejects")),
        [init @ .., last] => Some(format!("{} and {last} reject", init.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_read_and_names_the_rejecting_senders() {
        assert!(verdicts().len() >= 35, "{}", verdicts().len());
        assert_eq!(
            rejected_by_text("policy-blank-line").as_deref(),
            Some("mox, go-mtasts and postfix-tlspol reject")
        );
        assert_eq!(
            rejected_by_text("policy-mx-trailing-dot").as_deref(),
            Some("mox rejects")
        );
        assert_eq!(rejected_by_text("txt-trailing-whitespace-tlsrpt"), None);
        for v in verdicts() {
            assert_eq!(v.commit.len(), 40, "{v:?}");
        }
    }
}
