//! docs/checks.md lists exactly the catalogue's findings, and ids are unique and well-formed.

#![allow(missing_docs)]

use std::collections::BTreeSet;

use mtasts_check::catalog::{entries, markdown};

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
    let mut doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // MTASTS_WRITE_DOCS=1 rewrites the tables under "# The findings" from the code.
    if std::env::var_os("MTASTS_WRITE_DOCS").is_some() {
        let generated = markdown();
        let tables = &generated[generated.find("\n## `").unwrap_or(0)..];
        let head = doc.find("# The findings\n").map_or(doc.len(), |i| i);
        doc = format!("{}# The findings\n{tables}", &doc[..head]);
        std::fs::write(path, &doc).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
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
fn codes_are_dotted_kebab_case_and_each_row_is_documented() {
    let mut seen = BTreeSet::new();
    for e in entries() {
        assert!(
            seen.insert((e.code, e.severity)),
            "{} listed twice at {}",
            e.code,
            e.severity
        );
        assert!(
            e.code.split('.').count() >= 2
                && e.code.chars().all(|ch| ch.is_ascii_lowercase()
                    || ch.is_ascii_digit()
                    || ch == '.'
                    || ch == '-'),
            "bad code {}",
            e.code
        );
        assert!(!e.meaning.is_empty() && !e.hint.is_empty(), "{}", e.code);
    }
}

/// A code whose severity depends on the situation says in which situation each applies.
#[test]
fn a_code_with_several_severities_names_their_contexts() {
    let all = entries();
    for e in &all {
        let same: Vec<_> = all.iter().filter(|x| x.code == e.code).collect();
        if same.len() > 1 {
            let contexts = same.iter().filter(|x| x.context.is_some()).count();
            assert!(
                contexts + 1 >= same.len(),
                "{}: {} severities but only {contexts} with a context",
                e.code,
                same.len()
            );
        }
    }
}
