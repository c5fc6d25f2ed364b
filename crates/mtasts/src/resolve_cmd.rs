//! `mtasts resolve`: one resolution as a sending MTA would do it, with the reasons.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mtasts_resolver::render::{dane_json, to_json, write_dane_text, write_text};
use mtasts_resolver::store::{self, StoreConfig};
use mtasts_resolver::{Outcome, Resolver, ResolverConfig, system_clock};

use mtasts_core::dane::Decision;

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
    pub(crate) dane: bool,
    pub(crate) json: bool,
}

fn build_config(o: &ResolveOptions) -> Result<ResolverConfig, String> {
    let mut cfg = match &o.config {
        Some(p) => ResolverConfig::load_section(p)?,
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
    if let Some(spec) = &o.cache {
        cfg.store = StoreConfig::from_spec(spec).map_err(|e| format!("--cache {e}"))?;
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
            let dane = if o.dane && !matches!(res.outcome, Outcome::Invalid { .. }) {
                Some(resolver.resolve_dane(domain, o.refresh).await)
            } else {
                None
            };
            if let Some(d) = &dane
                && matches!(d.decision(), Decision::Delay { .. })
            {
                // A DNSSEC failure: a sender waits, as for a DNS failure.
                worst = worst.max(EXIT_FINDINGS);
            }
            if o.json {
                let mut v = to_json(&res, &trace);
                if let (Some(d), Some(obj)) = (&dane, v.as_object_mut()) {
                    obj.insert("dane".to_owned(), dane_json(&res, d));
                }
                all.push(v);
            } else {
                let _ = write_text(out, &res, &trace, store.backend());
                if let Some(d) = &dane {
                    let _ = write_dane_text(out, &res, d);
                }
            }
        }
        if o.json {
            let v = mtasts_core::json::document(
                "mtasts-resolve/1",
                serde_json::json!({ "resolutions": all }),
            );
            let _ = serde_json::to_writer_pretty(&mut *out, &v);
            let _ = writeln!(out);
        }
        worst
    })
}
