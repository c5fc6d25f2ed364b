//! `docs/architecture.md` stays true: every file its section table names exists, and every
//! section the code cites (an `RfcRef` literal in any crate's sources) appears in the table.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    mtasts_test_support::workspace_root()
}

/// The `(rfc, section)` pairs and paths of the table.
fn table() -> (BTreeSet<(u16, String)>, Vec<String>) {
    let text = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut sections = BTreeSet::new();
    let mut paths = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| RFC ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let cite = cells[1].trim_start_matches("RFC ");
        let (rfc, section) = cite.split_once(" §").unwrap_or((cite, ""));
        sections.insert((rfc.parse().unwrap(), section.to_owned()));
        if let Some(p) = cells.get(3) {
            paths.push(p.trim_matches('`').to_owned());
        }
    }
    (sections, paths)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `RfcRef::sts("x")`, `RfcRef::tlsrpt("x")` and `RfcRef::new(n, "x")` in `src/`.
fn cited() -> BTreeSet<(u16, String)> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root().join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (prefix, rfc) in [
            ("RfcRef::sts(\"", Some(8461)),
            ("RfcRef::tlsrpt(\"", Some(8460)),
        ] {
            for (i, _) in text.match_indices(prefix) {
                let rest = &text[i + prefix.len()..];
                let section = &rest[..rest.find('"').unwrap()];
                out.insert((rfc.unwrap(), section.to_owned()));
            }
        }
        for (i, _) in text.match_indices("RfcRef::new(") {
            let rest = &text[i + "RfcRef::new(".len()..];
            let Some((n, after)) = rest.split_once(',') else {
                continue;
            };
            let Ok(n) = n.trim().parse::<u16>() else {
                continue; // the definition itself
            };
            let after = after.trim_start();
            let after = after.strip_prefix('"').unwrap_or(after);
            let section = &after[..after.find('"').unwrap()];
            out.insert((n, section.to_owned()));
        }
    }
    out
}

#[test]
fn every_listed_path_exists() {
    let (_, paths) = table();
    assert!(paths.len() > 20, "the table was not read: {paths:?}");
    for p in paths {
        assert!(
            root().join(&p).is_file(),
            "docs/architecture.md names {p}, which does not exist"
        );
    }
}

#[test]
fn every_cited_section_is_in_the_table() {
    let (listed, _) = table();
    let missing: Vec<_> = cited().difference(&listed).cloned().collect();
    assert!(
        missing.is_empty(),
        "sections cited in the code but not in docs/architecture.md: {missing:?}"
    );
}
