//! `mtasts serve promote DOMAIN testing|enforce` and `mtasts serve retire DOMAIN`: the core's
//! decisions ([`mtasts_core::sts::publish::promote`], [`retire`]) from the live check
//! (`mtasts_check`) and the received reports (`mtasts_tlsrpt_receive::analyse`), written where
//! the server reads them.
//!
//! Where: a promoted or retired policy is written to the domain's file in `policy_dir`
//! (`<domain>.txt`, atomically), and a retirement's dates to `<domain>.retirement.json`
//! beside it; a running server picks the file up at its next look (`reload_interval`) or at
//! SIGHUP. A domain whose policy is given inline in the configuration file is not rewritten:
//! move it to `policy_dir` first (the error says so).

use std::path::PathBuf;

use mtasts_core::sts::policy::Mode;
use mtasts_core::sts::publish::{self, Promotion, Reports, RetirePlan, Retirement, zone_line};
use mtasts_core::tlsrpt::readiness::Evidence;

use crate::config::Config;
use crate::policies::{self, Origin, Served};
use crate::server::unix_now;

/// What `promote` did.
#[derive(Debug)]
pub struct PromoteOutcome {
    /// The core's decision, with every gate.
    pub promotion: Promotion,
    /// The file written, when the promotion applies.
    pub written: Option<PathBuf>,
    /// The id of the policy served from now on, and the record to publish.
    pub record: Option<(String, String)>,
}

/// What `retire` did.
#[derive(Debug)]
pub struct RetireOutcome {
    /// The core's plan.
    pub plan: RetirePlan,
    /// The files written (policy, dates), empty when the domain was already retired.
    pub written: Vec<PathBuf>,
    /// The new id and the record to publish.
    pub record: (String, String),
}

fn served(config: &Config, domain: &str) -> Result<(Served, PathBuf), String> {
    let loaded = policies::load(config, &Default::default())?;
    if let Some(r) = loaded.refused.iter().find(|r| r.domain == domain) {
        return Err(r.to_string());
    }
    let s = loaded.served.get(domain).cloned().ok_or_else(|| {
        format!("{domain}: no policy is served for it (not in the configuration nor in policy_dir)")
    })?;
    match &s.origin {
        Origin::File(p) => {
            let p = p.clone();
            Ok((s, p))
        }
        Origin::Config => Err(format!(
            "{domain}: its policy is given in the configuration file, which is not rewritten; move it to policy_dir as {domain}.txt"
        )),
    }
}

fn retirement_file(policy_file: &std::path::Path, domain: &str) -> PathBuf {
    policy_file.with_file_name(format!("{domain}.retirement.json"))
}

/// Decides and, when it applies, writes the promotion of `domain` to `target`. The live
/// check runs with `check` (the lab's DNS and ports in tests); the readiness gate reads the
/// store of `reports.store`, when configured.
pub async fn promote(
    config: &Config,
    domain: &str,
    target: Mode,
    max_age: Option<u32>,
    force: bool,
    check: mtasts_check::CheckConfig,
) -> Result<PromoteOutcome, String> {
    let (current, file) = served(config, domain)?;
    let now = unix_now();
    let live = match mtasts_check::Checker::new(check) {
        Err(e) => Err(e.to_string()),
        Ok(c) => c
            .check(domain, now)
            .await
            .map(|r| r.live())
            .map_err(|e| e.to_string()),
    };
    let today = chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let thresholds = config.reports.readiness.thresholds();
    let evidence: Result<Option<Evidence>, String> = match &config.reports.store {
        None => Ok(None),
        Some(url) => match mtasts_tlsrpt_store::Store::open(url).await {
            Err(e) => Err(format!("reports.store {url}: {e}")),
            Ok(store) => {
                let filter = mtasts_tlsrpt_store::Filter {
                    domain: None,
                    since: Some(mtasts_tlsrpt_receive::analyse::default_since(
                        today,
                        &thresholds,
                    )),
                    until: Some(today),
                    include_unverified: false,
                };
                match store.history(domain, &filter).await {
                    Err(e) => Err(format!("reports.store {url}: {e}")),
                    Ok(h) => Ok(Some(mtasts_tlsrpt_receive::analyse::evidence(
                        h,
                        live.as_ref().ok().cloned(),
                        today,
                    ))),
                }
            }
        },
    };
    let reports = match &evidence {
        Ok(None) => Reports::NoStore,
        Ok(Some(ev)) => Reports::Evidence(ev, &thresholds),
        Err(why) => Reports::Unavailable(why),
    };
    let promotion = publish::promote(&publish::PromoteInput {
        current: &current.policy,
        target,
        max_age,
        live: live.as_ref().map_err(String::as_str),
        reports,
        force,
    });
    let mut out = PromoteOutcome {
        promotion,
        written: None,
        record: None,
    };
    if let Some(p) = out
        .promotion
        .policy
        .as_ref()
        .filter(|_| out.promotion.applies())
    {
        let new = Served::new(p.clone(), Origin::File(file.clone()));
        policies::write_atomically(&file, &new.text)?;
        // A promotion ends a retirement.
        let _ = std::fs::remove_file(retirement_file(&file, domain));
        out.written = Some(file);
        out.record = Some((
            new.id.clone(),
            zone_line(domain, &new.id, config.record_ttl),
        ));
    }
    Ok(out)
}

/// Plans and writes the retirement of `domain` (RFC 8461 §8.3): `mode: none` with a new id,
/// and the date from which the records can go.
pub fn retire(config: &Config, domain: &str) -> Result<RetireOutcome, String> {
    let (current, file) = served(config, domain)?;
    let dates = retirement_file(&file, domain);
    let existing: Option<Retirement> = match std::fs::read_to_string(&dates) {
        Ok(text) => {
            Some(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dates.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", dates.display())),
    };
    let plan = publish::retire(&current.policy, existing.as_ref(), unix_now());
    let new = Served::new(plan.policy.clone(), Origin::File(file.clone()));
    let mut written = Vec::new();
    if !plan.already {
        let json = serde_json::to_string_pretty(&plan.retirement).map_err(|e| e.to_string())?;
        policies::write_atomically(&dates, &json)?;
        policies::write_atomically(&file, &new.text)?;
        written = vec![file, dates];
    }
    Ok(RetireOutcome {
        record: (
            new.id.clone(),
            zone_line(domain, &new.id, config.record_ttl),
        ),
        plan,
        written,
    })
}
