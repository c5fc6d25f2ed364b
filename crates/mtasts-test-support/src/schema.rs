//! Every `--json` document checked against its JSON Schema file (`schemas/`, draft 2020-12,
//! `docs/json.md`) by an independent validator: Python's `jsonschema` 4.23.0 in the test venv
//! `target/test-venv` (`.ci/run` installs it beside dkimpy), so that what the schema says is
//! checked by code that is not ours.
//!
//! When the validator is missing, [`assert_valid`] prints a note and returns (outside CI), or
//! panics (under CI), as [`crate::dkim`] does.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The validator: loads every schema file under `schemas/` into one registry (so that
/// `$ref: "urn:mtasts:schema:finding:1"` resolves), checks the schema file itself, then the
/// document on stdin; prints each error and exits 1 when the document does not validate.
const SCRIPT: &str = r#"
import sys, json, pathlib
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
directory, name = pathlib.Path(sys.argv[1]), sys.argv[2]
resources = []
for f in sorted(directory.glob("*.json")):
    s = json.loads(f.read_text())
    Draft202012Validator.check_schema(s)
    resources.append((s["$id"], Resource.from_contents(s)))
registry = Registry().with_resources(resources)
schema = json.loads((directory / (name + ".json")).read_text())
doc = json.loads(sys.stdin.buffer.read())
errors = sorted(Draft202012Validator(schema, registry=registry).iter_errors(doc),
                key=lambda e: list(e.absolute_path))
for e in errors[:20]:
    print("/" + "/".join(str(p) for p in e.absolute_path) + ": " + e.message[:400])
sys.exit(1 if errors else 0)
"#;

fn venv_python() -> Option<PathBuf> {
    let p = crate::workspace_root().join("target/test-venv/bin/python3");
    let ok = Command::new(&p)
        .args(["-c", "import jsonschema, referencing"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

/// The schema file's name for a document's schema name: `mtasts-check/2` is
/// `schemas/mtasts-check.v2.json`.
pub fn file_stem(schema: &str) -> String {
    match schema.rsplit_once('/') {
        Some((doc, version)) => format!("{doc}.v{version}"),
        None => schema.to_owned(),
    }
}

/// Validates `doc` (one JSON document) against the schema named `schema` (`mtasts-check/2`);
/// `None` when the validator is not installed (outside CI), else the validator's errors.
pub fn validate(schema: &str, doc: &[u8]) -> Option<Result<(), String>> {
    let Some(python) = venv_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "jsonschema is not installed in target/test-venv, and CI is set: the schema tests \
             must run in CI (python3 -m venv target/test-venv && target/test-venv/bin/pip \
             install jsonschema==4.23.0; .ci/run does it)"
        );
        eprintln!(
            "note: jsonschema is not installed in target/test-venv; not validating a \
             {schema} document (.ci/run installs it)"
        );
        return None;
    };
    let mut child = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(crate::workspace_root().join("schemas"))
        .arg(file_stem(schema))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the validator");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(doc)
        .expect("write the document");
    let o = child.wait_with_output().expect("validator");
    Some(if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    })
}

/// Asserts that `doc` names `schema` first and validates against its schema file.
pub fn assert_valid(schema: &str, doc: impl AsRef<[u8]>) {
    let doc = doc.as_ref();
    let text = String::from_utf8_lossy(doc);
    let start = format!("\"schema\":\"{schema}\"");
    let compact: String = text
        .trim_start()
        .trim_start_matches('{')
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(start.len())
        .collect();
    assert_eq!(
        compact, start,
        "the document does not name {schema} first: {text}"
    );
    if let Some(Err(e)) = validate(schema, doc) {
        panic!("a {schema} document does not validate against its schema:\n{e}\n{text}");
    }
}

/// [`assert_valid`] for each line of JSON Lines output; returns how many lines there were.
pub fn assert_valid_lines(schema: &str, lines: impl AsRef<[u8]>) -> usize {
    let text = String::from_utf8_lossy(lines.as_ref()).into_owned();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert_valid(schema, line);
        n += 1;
    }
    n
}

/// Asserts that the schema rejects `doc` (the schemas are strict enough to catch drift);
/// skipped like [`assert_valid`] when the validator is missing.
pub fn assert_invalid(schema: &str, doc: impl AsRef<[u8]>) {
    if let Some(Ok(())) = validate(schema, doc.as_ref()) {
        panic!(
            "the {schema} schema accepts a wrong document: {}",
            String::from_utf8_lossy(doc.as_ref())
        );
    }
}
