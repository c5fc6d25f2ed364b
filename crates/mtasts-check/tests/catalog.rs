//! docs/checks.md lists exactly the catalogue's findings, and ids are unique and well-formed.

#![allow(missing_docs)]

use std::collections::BTreeSet;

use mtasts_check::catalog::{CATALOG, markdown};

fn rows(text: &str) -> BTreeSet<String> {
    text.lines()
        // Finding rows: `| id | severity | meaning | fix | rule |` (escaped pipes aside).
        .filter(|l| l.starts_with("| `") && l.replace("\\|", "").matches('|').count() == 6)
        .map(str::to_owned)
        .collect()
}

#[test]
fn docs_checks_md_has_every_finding_and_no_other() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/checks.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let generated = rows(&markdown());
    let documented = rows(&doc);
    let missing: Vec<_> = generated.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&generated).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/checks.md is out of date (regenerate the tables with `mtasts check --list-findings`)\n\
         missing or changed: {missing:#?}\nstale: {stale:#?}"
    );
}

#[test]
fn ids_are_unique_and_dotted_kebab_case() {
    let mut seen = BTreeSet::new();
    for c in CATALOG {
        assert!(seen.insert(c.id), "duplicate id {}", c.id);
        assert!(
            c.id.split('.').count() >= 2
                && c.id.chars().all(|ch| ch.is_ascii_lowercase()
                    || ch.is_ascii_digit()
                    || ch == '.'
                    || ch == '-'),
            "bad id {}",
            c.id
        );
        assert!(!c.explanation.is_empty() && !c.fix.is_empty() && !c.rule.is_empty());
    }
}
