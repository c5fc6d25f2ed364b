//! `mtasts resolve`: one resolution as a sending MTA would do it, with the reasons.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mtasts_core::sts::cache::CacheEntry;
use mtasts_resolver::store::{self, StoreConfig};
use mtasts_resolver::{Outcome, Resolution, Resolver, ResolverConfig, Trace, system_clock};

use crate::{EXIT_FINDINGS, EXIT_OK, EXIT_TROUBLE};

/// Options of `mtasts resolve`.
pub(crate) struct ResolveOptions {
    pub(crate) domains: Vec<String>,
    pub(crate) config: Option<PathBuf>,
    pub(crate) dns: Vec<SocketAddr>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) port: Option<u16>,
    pub(crate) cache: Option<String>,
    pub(crate) refresh: bool,
    pub(crate) json: bool,
}

/// Reads the `[resolver]` table of a daemon configuration file (or a file holding only the
/// resolver's sections).
fn load_config(path: &Path) -> Result<ResolverConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let table = match value.get("resolver") {
        Some(toml::Value::Table(t)) => t.clone(),
        Some(_) => return Err(format!("{}: [resolver] must be a table", path.display())),
        None => value,
    };
    table
        .try_into()
        .map_err(|e: toml::de::Error| format!("{}: in [resolver]: {e}", path.display()))
}

fn build_config(o: &ResolveOptions) -> Result<ResolverConfig, String> {
    let mut cfg = match &o.config {
        Some(p) => load_config(p)?,
        None => ResolverConfig {
            store: StoreConfig::Memory,
            ..ResolverConfig::default()
        },
    };
    if !o.dns.is_empty() {
        cfg.dns.servers.clone_from(&o.dns);
    }
    if let Some(ca) = &o.ca_file {
        cfg.fetch.ca_file = Some(ca.clone());
    }
    if let Some(port) = o.port {
        cfg.fetch.port = port;
    }
    match o.cache.as_deref() {
        None => {}
        Some("memory") => cfg.store = StoreConfig::Memory,
        Some(s) if s.starts_with("sqlite:") => {
            cfg.store = StoreConfig::Sqlite {
                path: PathBuf::from(&s["sqlite:".len()..]),
            }
        }
        Some(s) if s.starts_with("redis://") || s.starts_with("unix://") => {
            cfg.store = StoreConfig::Redis {
                url: s.to_owned(),
                key_prefix: "mtasts:sts:".to_owned(),
            }
        }
        Some(other) => {
            return Err(format!(
                "--cache {other:?}: expected memory, sqlite:PATH or redis://HOST:PORT"
            ));
        }
    }
    // One resolution: nothing worth preloading.
    cfg.memory.preload = 0;
    Ok(cfg)
}

/// Runs `mtasts resolve`.
pub(crate) fn resolve(o: &ResolveOptions, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let cfg = match build_config(o) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "mtasts resolve: {e}");
            return EXIT_TROUBLE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "mtasts resolve: cannot start the runtime: {e}");
            return EXIT_TROUBLE;
        }
    };
    rt.block_on(async {
        let store = match store::open(&cfg.store).await {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(err, "mtasts resolve: {e}");
                return EXIT_TROUBLE;
            }
        };
        let resolver = match Resolver::with_parts(&cfg, Arc::clone(&store), system_clock()).await {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "mtasts resolve: {e}");
                return EXIT_TROUBLE;
            }
        };
        let mut worst = EXIT_OK;
        let mut all = Vec::new();
        for domain in &o.domains {
            let (res, trace) = resolver.resolve_traced(domain, o.refresh).await;
            worst = worst.max(match res.outcome {
                Outcome::Policy(_) | Outcome::NoPolicy { .. } => EXIT_OK,
                Outcome::Transient { .. } => EXIT_FINDINGS,
                Outcome::Invalid { .. } => EXIT_TROUBLE,
            });
            if o.json {
                all.push(to_json(&res, &trace));
            } else {
                let _ = write_text(out, &res, &trace, store.backend());
            }
        }
        if o.json {
            let v = if all.len() == 1 {
                all.remove(0)
            } else {
                serde_json::Value::Array(all)
            };
            let _ = serde_json::to_writer_pretty(&mut *out, &v);
            let _ = writeln!(out);
        }
        worst
    })
}

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

fn write_text(
    out: &mut dyn Write,
    res: &Resolution,
    trace: &Trace,
    backend: &str,
) -> std::io::Result<()> {
    let (_, what) = decision(res);
    writeln!(out, "{}: {what}", res.domain)?;
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
                writeln!(out, "  TXT {}  {r:?}", d.name.trim_end_matches('.'))?;
            }
            let conclusion = match &d.discovery {
                mtasts_core::sts::cache::Discovery::Record { id } => format!("record with id {id}"),
                mtasts_core::sts::cache::Discovery::NoRecord { reason } => {
                    format!("no record: {reason}")
                }
                mtasts_core::sts::cache::Discovery::Transient { reason } => {
                    format!("DNS failure: {reason}")
                }
            };
            writeln!(out, "  discovery     {conclusion}")?;
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
            Some(e) => writeln!(out, "  fetch result  failed: {e}")?,
            None => writeln!(out, "  fetch result  valid policy")?,
        }
        if let Some(w) = &f.warning {
            writeln!(out, "  warning       {w}")?;
        }
    }
    if let Some(e) = &trace.cached_after {
        writeln!(out, "  cache after   {}", describe_entry(e))?;
    }
    Ok(())
}

fn to_json(res: &Resolution, trace: &Trace) -> serde_json::Value {
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
