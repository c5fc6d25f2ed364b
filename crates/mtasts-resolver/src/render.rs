//! Rendering one resolution for people (`mtasts resolve`) and as JSON: the decision, the
//! policy, the cache before and after, the TXT lookup and the fetch. Text from outside (TXT
//! records, HTTP headers, error messages) goes through the core's one escaping function.

use std::io::Write;

use mtasts_core::dane::{
    Decision, HostAddresses, HostOutcome, Lookup, MxRecord, Precedence, Security, Tlsa, precedence,
};
use mtasts_core::sts::cache::{CacheEntry, Discovery};
use mtasts_core::text::escape;

use crate::dane::{DaneResolution, DaneStatus};
use crate::engine::Trace;
use crate::resolution::{Outcome, Resolution};

/// The decision's name (`policy`, `no-policy`, `transient`, `invalid`) and what it means for
/// a sender, in words.
pub fn decision(res: &Resolution) -> (&'static str, String) {
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
    mtasts_core::json::rfc3339_u(secs)
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
        "trace": {
            "cached_before": trace.cached_before.as_ref().map(entry_json),
            "discovery": trace.discovery,
            "fetch": trace.fetch,
            "cached_after": trace.cached_after.as_ref().map(entry_json),
        },
    })
}

/// A cache entry as `resolve --json` shows it: the store's own serialisation keeps Unix
/// seconds, the output has RFC 3339 times like every other document (`docs/json.md`).
fn entry_json(e: &CacheEntry) -> serde_json::Value {
    serde_json::json!({
        "policy": e.policy.as_ref().map(|p| serde_json::json!({
            "id": p.id,
            "mode": p.policy.mode.as_str(),
            "max_age": p.policy.max_age,
            "fetched_at": ts(p.fetched_at),
            "expires_at": ts(p.expires_at()),
        })),
        "checked_at": ts(e.checked_at),
        "refresh_at": ts(e.refresh_at),
        "negative": e.negative.as_ref().map(|n| serde_json::json!({
            "kind": n.kind.as_str(),
            "until": ts(n.until),
            "reason": n.reason,
        })),
        "failed_fetch": e.failed_fetch.as_ref().map(|f| serde_json::json!({
            "id": f.id,
            "at": ts(f.at),
            "reason": f.reason,
        })),
    })
}

// ------------------------------------------------------------------------------------------
// DANE
// ------------------------------------------------------------------------------------------

fn security<T>(l: &Lookup<T>) -> &'static str {
    match l.security() {
        Some(Security::Secure) => "secure, AD",
        Some(Security::Insecure) => "insecure, no AD",
        None => "failed",
    }
}

fn lookup_line<T>(l: &Lookup<T>, records: impl FnOnce(&T) -> String) -> String {
    match l {
        Lookup::Found {
            records: r, ttl, ..
        } => {
            format!("{} ({}, TTL {ttl} s)", records(r), security(l))
        }
        Lookup::Absent { nxdomain, ttl, .. } => format!(
            "{} ({}, negative TTL {ttl} s)",
            if *nxdomain { "NXDOMAIN" } else { "NODATA" },
            security(l)
        ),
        // The error says "NAME lookup failed: …" itself.
        Lookup::Failed { error } => escape(&error.to_string()).into_owned(),
    }
}

/// Whether the resolution's MTA-STS answer refuses failures: a policy in mode `enforce`.
pub fn sts_enforced(res: &Resolution) -> bool {
    res.outcome
        .applicable()
        .is_some_and(|p| p.policy.mode == mtasts_core::sts::policy::Mode::Enforce)
}

/// What a sender doing both applies (RFC 8461 §2): the core's [`precedence`] of the DANE
/// decision over the MTA-STS resolution.
pub fn dane_precedence(res: &Resolution, dane: &DaneResolution) -> Precedence {
    precedence(&dane.decision(), sts_enforced(res))
}

fn precedence_text(p: &Precedence) -> String {
    match p {
        Precedence::DaneOnly => {
            "dane-only: DANE for every MX host, MTA-STS is not applied (RFC 8461 §2)".to_owned()
        }
        Precedence::Dane => {
            "dane: DANE where the TLSA records say so, MTA-STS is not applied (RFC 8461 §2)"
                .to_owned()
        }
        Precedence::TempFail { reason } => format!(
            "temporary failure: deliveries wait, no fallback to MTA-STS or opportunistic TLS ({})",
            escape(reason)
        ),
        Precedence::MtaSts => "MTA-STS applies, as without DANE".to_owned(),
    }
}

/// The DANE part of the human report of one resolution: the decision, what a sender doing
/// both applies, and the evidence (each lookup with its AD flag and TTL, each TLSA record
/// with whether it is usable).
pub fn write_dane_text(
    out: &mut dyn Write,
    res: &Resolution,
    dane: &DaneResolution,
) -> std::io::Result<()> {
    let decision = dane.decision();
    let why = match &decision {
        Decision::Mandatory => {
            "mandatory: every MX host has DNSSEC-validated, usable TLSA records".to_owned()
        }
        Decision::Opportunistic { insecure_mx: false } => {
            "opportunistic: some MX hosts have DNSSEC-validated TLSA records".to_owned()
        }
        Decision::Opportunistic { insecure_mx: true } => {
            "opportunistic: TLSA records, but the MX RRset is not DNSSEC-validated (RFC 7672 §2.2.1)"
                .to_owned()
        }
        Decision::Delay { reason, .. } => format!("failure: {}", escape(reason)),
        Decision::NotApplicable { reason } => format!("does not apply: {}", escape(reason)),
    };
    writeln!(out, "  DANE          {why}")?;
    writeln!(
        out,
        "  applies       {}",
        precedence_text(&dane_precedence(res, dane))
    )?;
    let DaneStatus::Assessed(entry) = &dane.status else {
        return Ok(());
    };
    let e = &entry.evidence;
    writeln!(
        out,
        "  MX            {}",
        lookup_line(&e.mx, |r: &Vec<MxRecord>| {
            r.iter()
                .map(|m| format!("{} {}", m.preference, m.exchange))
                .collect::<Vec<_>>()
                .join(", ")
        })
    )?;
    for (h, a) in e.hosts.iter().zip(&entry.assessment.hosts) {
        writeln!(
            out,
            "  host          {}: {}",
            h.host,
            lookup_line(&h.addresses, |r: &HostAddresses| {
                let list: Vec<String> = r.addresses.iter().map(ToString::to_string).collect();
                match &r.canonical {
                    Some(c) => format!("{} (alias of {c})", list.join(" ")),
                    None => list.join(" "),
                }
            })
        )?;
        for (name, lookup) in &h.tlsa {
            writeln!(
                out,
                "    TLSA {name}  {}",
                lookup_line(lookup, |r: &Vec<Tlsa>| format!("{} record(s)", r.len()))
            )?;
        }
        for (record, unusable) in &a.records {
            match unusable {
                None => writeln!(out, "      {record}  usable ({})", record.mnemonic())?,
                Some(why) => writeln!(out, "      {record}  unusable: {why}")?,
            }
        }
        let outcome = match &a.outcome {
            HostOutcome::Usable => "authenticated TLS required (RFC 7672 §2.2)".to_owned(),
            HostOutcome::AllUnusable => {
                "TLS required, no authentication (RFC 7672 §2.2)".to_owned()
            }
            HostOutcome::PreDane { why } => format!("pre-DANE TLS: {why}"),
            HostOutcome::LookupError { error } => format!(
                "lookup error: this host is skipped (RFC 7672 §2.1.2): {}",
                escape(&error.to_string())
            ),
            HostOutcome::NoAddress => "no address: not a destination".to_owned(),
        };
        writeln!(out, "    outcome     {outcome}")?;
    }
    if e.hosts_not_examined > 0 {
        writeln!(
            out,
            "  not examined  {} more MX host(s)",
            e.hosts_not_examined
        )?;
    }
    writeln!(
        out,
        "  DANE cache    until {} ({})",
        ts(entry.expires_at),
        match dane.source {
            crate::resolution::Source::Network => "looked up now",
            _ => "memory",
        }
    )?;
    Ok(())
}

/// The DANE part of one resolution as JSON.
pub fn dane_json(res: &Resolution, dane: &DaneResolution) -> serde_json::Value {
    let (status, entry) = match &dane.status {
        DaneStatus::Assessed(e) => ("assessed", Some(e)),
        DaneStatus::Untrusted { .. } => ("untrusted", None),
        DaneStatus::Invalid { .. } => ("invalid", None),
    };
    serde_json::json!({
        "status": status,
        "decision": dane.decision(),
        "applies": dane_precedence(res, dane),
        "evidence": entry.map(|e| &e.evidence),
        "hosts": entry.map(|e| &e.assessment.hosts),
        "ttl": entry.and_then(|e| e.assessment.ttl),
        "expires_at": entry.map(|e| ts(e.expires_at)),
        "source": dane.source,
    })
}
