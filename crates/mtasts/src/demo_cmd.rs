//! `mtasts demo`: the lab's zoo — every kind of MTA-STS deployment and mistake, one domain
//! each — started in process on loopback, and `mtasts check` run over all of it. Offline.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use mtasts_check::{CheckConfig, Checker};
use mtasts_core::Severity;
use mtasts_lab::{Scenario, World, WorldOptions};

use crate::check_cmd::{Style, Summary, now, run_all, runtime, write_human};

/// The zoo, built into the binary so the demo works from any directory.
const ZOO: &str = include_str!("../../../lab/scenarios/zoo.toml");

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Only these zoo domains (default: all)
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// The full report of every domain instead of one block each
    #[arg(long)]
    pub full: bool,
    /// Print JSON lines (one per domain)
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn demo(a: DemoArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let scenario = match Scenario::from_toml_str(ZOO, "zoo.toml") {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "mtasts demo: the built-in zoo is invalid: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    let world = match World::start(&scenario, WorldOptions::default()) {
        Ok(w) => w,
        Err(e) => {
            let _ = writeln!(err, "mtasts demo: cannot start the lab: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    let cfg = CheckConfig {
        dns: Some(world.dns_addr()),
        ca_file: Some(world.ca_pem_path().to_path_buf()),
        https_port: world.https_port(),
        smtp_port: world.smtp_port(),
        dns_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(3),
        fetch_timeout: Duration::from_secs(5),
        smtp_timeout: Duration::from_secs(8),
        ..CheckConfig::default()
    };
    let checker = match Checker::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "mtasts demo: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    let domains: Vec<String> = if a.domains.is_empty() {
        scenario.domains.keys().cloned().collect()
    } else {
        a.domains.clone()
    };
    if !a.json {
        let _ = writeln!(
            out,
            "mtasts demo: a simulated internet of {} mail domains (lab/scenarios/zoo.toml) on {}; \
             DNS {}, checking each as a domain owner would with `mtasts check`…\n",
            scenario.domains.len(),
            world.dns_addr().ip(),
            world.dns_addr()
        );
    }
    let Some(rt) = runtime(err) else {
        return crate::EXIT_TROUBLE;
    };
    let style = Style::detect(std::io::stdout().is_terminal());
    let now = now();
    let mut summary = Summary::default();
    let source = Box::new(
        domains
            .into_iter()
            .map(|d| ("zoo".to_owned(), Ok(d)))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    rt.block_on(run_all(&checker, source, 128, now, |_, _, result| {
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "mtasts demo: {e}");
                summary.invalid_input += 1;
                return;
            }
        };
        summary.add(&r);
        if a.json {
            let _ = serde_json::to_writer(&mut *out, &r);
            let _ = writeln!(out);
        } else if a.full {
            let _ = write_human(out, &r, style, now);
        } else {
            let comment = scenario
                .domains
                .get(&r.domain)
                .map(|s| s.comment.as_str())
                .unwrap_or("");
            let _ = writeln!(
                out,
                "{}  {}\n  {}\n  verdict  {}",
                style.bold(&r.domain),
                r.verdict.outcome.as_str(),
                comment,
                r.verdict.summary
            );
            for f in r.findings.iter().filter(|f| f.severity > Severity::Info) {
                let _ = writeln!(
                    out,
                    "  {:<7}  {}  {}",
                    f.severity.to_string(),
                    f.id,
                    f.message
                );
            }
            let _ = writeln!(out);
        }
    }));
    if !a.json {
        if summary.domains > 1 {
            let _ = summary.write_table(out);
        }
        let _ = writeln!(
            out,
            "\nEvery finding id is explained in docs/checks.md; `mtasts demo --full DOMAIN` shows a \
             complete report, `mtasts check DOMAIN` checks a real one."
        );
    }
    world.shutdown();
    if summary.invalid_input > 0 {
        crate::EXIT_TROUBLE
    } else {
        crate::EXIT_OK
    }
}
