//! Rendering one resolution for people (`mtasts resolve`) and as JSON: the decision, the
//! policy, the cache before and after, the TXT lookup and the fetch. Text from outside (TXT
//! records, HTTP headers, error messages) goes through the core's one escaping function.

use std::io::Write;

use mtasts_core::sts::cache::{CacheEntry, Discovery};
use mtasts_core::text::escape;

use crate::engine::Trace;
use crate::resolution::{Outcome, Resolution};

fn decision(res: &Resolution) -> (&'static str, String) {
    match &res.outcome {
        Outcome::Policy(_) => {
            let p = res.outcome.policy();
            let mode = p.map_or("none", |p| p.policy.mode.as_str());
            let what = match mode {
                "enforce" => "enforce: deliver only over validated TLS to a matching MX",
                "testing" => "testing: deliver, and report failures (TLS-RPT)",
                _ => "none: deliver as if the domain had no policy",
            };
            ("policy", what.to_owned())
        }
        Outcome::NoPolicy { reason } => ("no-policy", format!("no policy applies: {reason}")),
        Outcome::Transient { reason } => (
            "transient",
            format!("unknown for now (temporary failure): {reason}"),
        ),
        Outcome::Invalid { reason } => ("invalid", reason.clone()),
    }
}

fn ts(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || secs.to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

fn describe_entry(e: &CacheEntry) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &e.policy {
        parts.push(format!(
            "policy id {} ({}, fetched {}, valid until {}, refresh due {})",
            p.id,
            p.policy.mode,
            ts(p.fetched_at),
            ts(p.expires_at()),
            ts(e.refresh_at)
        ));
    }
    if let Some(n) = &e.negative {
        parts.push(format!("{} until {}", n.kind.as_str(), ts(n.until)));
    }
    if let Some(f) = &e.failed_fetch {
        parts.push(format!("fetch of id {} failed at {}", f.id, ts(f.at)));
    }
    if parts.is_empty() {
        "empty".to_owned()
    } else {
        parts.join("; ")
    }
}

/// The human report of one resolution; `backend` names the cache store.
pub fn write_text(
    out: &mut dyn Write,
    res: &Resolution,
    trace: &Trace,
    backend: &str,
) -> std::io::Result<()> {
    let (_, what) = decision(res);
    writeln!(out, "{}: {}", escape(&res.domain), escape(&what))?;
    if let Some(p) = res.outcome.policy() {
        let mx: Vec<String> = p.policy.mx.iter().map(ToString::to_string).collect();
        if !mx.is_empty() {
            writeln!(out, "  mx patterns   {}", mx.join(", "))?;
        }
        writeln!(
            out,
            "  policy        id {}, max_age {} s, valid until {}",
            p.id,
            p.policy.max_age,
            ts(p.expires_at())
        )?;
    }
    match &trace.cached_before {
        Some(e) => writeln!(out, "  cache before  {} ({backend})", describe_entry(e))?,
        None => writeln!(out, "  cache before  nothing ({backend})")?,
    }
    match &trace.discovery {
        Some(d) => {
            if d.records.is_empty() {
                writeln!(out, "  TXT {}  (no records)", d.name.trim_end_matches('.'))?;
            }
            for r in &d.records {
                // Already escaped by discovery (the record as received, one line).
                writeln!(out, "  TXT {}  \"{r}\"", d.name.trim_end_matches('.'))?;
            }
            let conclusion = match &d.discovery {
                Discovery::Record { id } => format!("record with id {id}"),
                Discovery::NoRecord { reason } => {
                    format!("no record: {}", escape(&reason.to_string()))
                }
                Discovery::Transient { error } => {
                    format!("DNS failure: {}", escape(&error.to_string()))
                }
            };
            writeln!(out, "  discovery     {conclusion}")?;
            for note in &d.accepted_despite {
                writeln!(out, "  accepted      {}", escape(note))?;
            }
        }
        None => writeln!(out, "  discovery     not needed: the cache answered")?,
    }
    if let Some(f) = &trace.fetch {
        let status = f
            .status
            .map_or_else(|| "no response".to_owned(), |s| format!("HTTP {s}"));
        let ct = f.content_type.as_deref().unwrap_or("no Content-Type");
        writeln!(
            out,
            "  fetch         {} → {status}, {ct}, {} bytes, {} ms",
            f.url, f.bytes, f.millis
        )?;
        match &f.error {
            Some(e) => writeln!(out, "  fetch result  failed: {}", escape(e))?,
            None => writeln!(out, "  fetch result  valid policy")?,
        }
        if let Some(w) = &f.warning {
            writeln!(out, "  warning       {}", escape(w))?;
        }
        for note in &f.accepted_despite {
            writeln!(out, "  accepted      {}", escape(note))?;
        }
    }
    if let Some(e) = &trace.cached_after {
        writeln!(out, "  cache after   {}", describe_entry(e))?;
    }
    Ok(())
}

/// One resolution as JSON.
pub fn to_json(res: &Resolution, trace: &Trace) -> serde_json::Value {
    let (kind, what) = decision(res);
    serde_json::json!({
        "domain": res.domain,
        "decision": kind,
        "mode": res.outcome.policy().map(|p| p.policy.mode.as_str()),
        "explanation": what,
        "policy": res.outcome.policy().map(|p| serde_json::json!({
            "id": p.id,
            "mode": p.policy.mode.as_str(),
            "max_age": p.policy.max_age,
            "mx": p.policy.mx.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "fetched_at": ts(p.fetched_at),
            "expires_at": ts(p.expires_at()),
            "text": p.policy.to_text(),
        })),
        "source": res.source,
        "trace": trace,
    })
}
