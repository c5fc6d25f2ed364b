//! The program around the server: `mtasts serve` (signals, logging) and
//! `mtasts serve --check` (the configuration, the policies and the published records).

use std::path::Path;
use std::sync::Arc;

use mtasts_core::sts::publish::{PublishedId, published_id, zone_line};
use mtasts_net::DnsLookup;
use tokio::signal::unix::{SignalKind, signal};

use crate::certs::{AcmeHooks, FileCerts};
use crate::config::Config;
use crate::policies::{self, Refused};
use crate::server::Running;

/// Runs the server of `config_path` until SIGTERM or SIGINT; SIGHUP reloads (a failed reload
/// keeps the old state). `hooks` are the ACME client's (default: none).
pub async fn run(config_path: &Path, hooks: AcmeHooks) -> anyhow::Result<()> {
    let config = Config::load(config_path).map_err(|e| anyhow::anyhow!("{}", e.one_line()))?;
    mtasts_daemon::logging::init(&config.log)?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let running = Running::start(config, Some(config_path.to_owned()), hooks, None).await?;
    for a in &running.https_addrs {
        tracing::info!("policy host listening on {a} (HTTPS)");
    }
    for a in &running.http_addrs {
        tracing::info!("ACME HTTP-01 listening on {a} (plain HTTP)");
    }
    for a in &running.admin_addrs {
        tracing::info!("metrics on http://{a}/metrics");
    }
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let shared = Arc::clone(&running.shared);
                if let Ok(r) = shared.reload_and_check().await {
                    let _ = r;
                }
                if let Ok(c) = Config::load(config_path) {
                    let _ = mtasts_daemon::logging::set_level(&c.log.level);
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping: finishing the requests in progress");
    running.shutdown().await;
    Ok(())
}

/// One domain as `mtasts serve --check` sees it.
#[derive(Clone, Debug)]
pub struct DomainCheck {
    /// The domain.
    pub domain: String,
    /// The id of the policy that would be served.
    pub id: String,
    /// Its mode.
    pub mode: String,
    /// The record to publish, as a zone-file line.
    pub record: String,
    /// What the live `_mta-sts` record says.
    pub published: PublishedId,
}

/// What `mtasts serve --check` found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// The served domains.
    pub domains: Vec<DomainCheck>,
    /// The policies refused by the linter.
    pub refused: Vec<Refused>,
    /// Files of the policy directory skipped.
    pub skipped: Vec<String>,
}

impl CheckReport {
    /// Whether everything is in order: no refused policy, no drift, every record looked up.
    pub fn ok(&self) -> bool {
        self.refused.is_empty()
            && self
                .domains
                .iter()
                .all(|d| d.published == PublishedId::InSync)
    }
}

/// Loads the configuration's policies and certificates as the server would, and looks up
/// every domain's published record through `dns` (built from `[dns]` when `None`). Only what
/// stops the server from starting is an error.
pub async fn check(
    config: &Config,
    dns: Option<Arc<dyn DnsLookup>>,
) -> Result<CheckReport, String> {
    let loaded = policies::load(config, &Default::default())?;
    FileCerts::load(&config.certificates.files)?;
    let dns = match dns {
        Some(d) => d,
        None => mtasts_net::Dns::new(&config.dns.settings())
            .map_err(|e| e.to_string())?
            .shared(),
    };
    let mut out = CheckReport {
        refused: loaded.refused,
        skipped: loaded.skipped,
        ..CheckReport::default()
    };
    for (domain, s) in loaded.served {
        let name = format!("{}.{domain}", mtasts_core::sts::record::STS_LABEL);
        let published = match dns.txt(&name).await {
            Ok(a) => published_id(Ok(a.records.as_slice()), &s.id),
            Err(e) => published_id::<Vec<Vec<u8>>, Vec<u8>>(Err(&e), &s.id),
        };
        out.domains.push(DomainCheck {
            record: zone_line(&domain, &s.id, config.record_ttl),
            mode: s.policy.mode.to_string(),
            id: s.id,
            domain,
            published,
        });
    }
    Ok(out)
}
