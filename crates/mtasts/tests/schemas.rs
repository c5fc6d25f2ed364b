//! `docs/json.md` lists every schema file under `schemas/`, and every file its table lists exists;
//! each file's name, `$id` and `schema` constant agree (`mtasts-<doc>.v<N>.json`,
//! `urn:mtasts:schema:<doc>:<N>`, `mtasts-<doc>/<N>`).

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeSet;

#[test]
fn every_schema_file_is_listed_in_docs_json_md_and_agrees_with_its_name() {
    let root = mtasts_test_support::workspace_root();
    let doc = std::fs::read_to_string(root.join("docs/json.md")).unwrap();
    let mut files = BTreeSet::new();
    for e in std::fs::read_dir(root.join("schemas")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(root.join("schemas").join(&name)).unwrap();
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let stem = name.trim_end_matches(".json");
        let (doc_name, version) = stem.rsplit_once(".v").unwrap();
        let short = doc_name.trim_start_matches("mtasts-");
        assert_eq!(
            schema["$id"],
            format!("urn:mtasts:schema:{short}:{version}"),
            "{name}"
        );
        if doc_name != "mtasts-defs" {
            let schema_name = format!("{doc_name}/{version}");
            assert!(
                text.contains(&format!("\"const\": \"{schema_name}\"")),
                "{name} does not fix `schema` to {schema_name}"
            );
            assert!(
                doc.contains(&format!("`{schema_name}`"))
                    && doc.contains(&format!("`schemas/{name}`")),
                "docs/json.md does not list {schema_name} with schemas/{name}"
            );
        }
        files.insert(name);
    }
    assert!(files.len() > 8, "{files:?}");
    // The table of documents (the prose also names placeholders and future versions).
    let table: String = doc
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    for (i, _) in table.match_indices("`schemas/") {
        let rest = &table[i + "`schemas/".len()..];
        let name = &rest[..rest.find('`').unwrap()];
        assert!(
            files.contains(name),
            "docs/json.md lists schemas/{name}, which does not exist"
        );
    }
}
