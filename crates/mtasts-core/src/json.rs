//! The one convention of every `--json` output (`docs/json.md`): each document is a JSON
//! object whose first member is `"schema": "mtasts-<doc>/<version>"`, findings are the core's
//! [`crate::Finding`] object everywhere (`code`, `severity`, `subject`, `location`,
//! `message`, `hint`, `rfc`), times are RFC 3339 UTC strings (durations are numbers in
//! fields named `*_seconds` or `*_millis`), and no Rust type leaks its serde default layout
//! (enums are kebab-case strings or objects tagged by `result`/`kind`). The schema files are
//! under `schemas/` in the repository, one per document.

use serde::Serializer;
use serde_json::{Map, Value};

/// A document: `"schema": name` first, then the members of `body` (an object; anything else
/// goes under `"value"`).
pub fn document(schema: &str, body: Value) -> Value {
    let mut doc = Map::new();
    doc.insert("schema".to_owned(), Value::String(schema.to_owned()));
    match body {
        Value::Object(members) => {
            for (k, v) in members {
                if k != "schema" {
                    doc.insert(k, v);
                }
            }
        }
        other => {
            doc.insert("value".to_owned(), other);
        }
    }
    Value::Object(doc)
}

/// Unix seconds as RFC 3339 UTC (`2026-01-02T03:04:05Z`); a time out of chrono's range (not a
/// real certificate or cache time) as the number of seconds in a string, so the field stays
/// a string.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Unsigned Unix seconds as RFC 3339 UTC (see [`rfc3339`]).
pub fn rfc3339_u(secs: u64) -> String {
    i64::try_from(secs).map_or_else(|_| secs.to_string(), rfc3339)
}

/// `#[serde(serialize_with = "mtasts_core::json::time")]` for an `i64` of Unix seconds.
pub fn time<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*secs))
}

/// `#[serde(serialize_with = "mtasts_core::json::time_u")]` for a `u64` of Unix seconds.
pub fn time_u<S: Serializer>(secs: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_u(*secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_comes_first_and_times_are_rfc3339() {
        let d = document("mtasts-x/1", serde_json::json!({"a": 1, "schema": "no"}));
        let keys: Vec<&String> = d
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["schema", "a"]);
        assert_eq!(d["schema"], "mtasts-x/1");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_u(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_u(u64::MAX), u64::MAX.to_string());
    }
}
