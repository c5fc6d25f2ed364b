//! `mtasts demo`: the lab's zoo — every kind of MTA-STS deployment and mistake, one domain
//! each — started in process on loopback, and `mtasts check` run over all of it. Offline.
//!
//! The lab (a DNS server, HTTPS and SMTP hosts, a test CA, OpenSSL for old TLS versions) is a
//! test tool and does not ship in the program users install: the demo is built only with the
//! `demo` feature, which the README's command enables
//! (`cargo run --release -p mtasts --features demo -- demo`).

use std::io::Write;

use clap::Args;

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
    /// Only list the zoo's domains, with what each shows, and exit
    #[arg(long)]
    pub list: bool,
}

#[cfg(not(feature = "demo"))]
pub(crate) fn demo(_: DemoArgs, _: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let _ = writeln!(
        err,
        "mtasts demo: this build has no demo (the lab is a test tool and is not built into the \
         installed program); run it from a source checkout with \
         `cargo run --release -p mtasts --features demo -- demo`"
    );
    crate::EXIT_TROUBLE
}

#[cfg(feature = "demo")]
pub(crate) fn demo(a: DemoArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use std::io::IsTerminal;
    use std::time::Duration;

    use mtasts_check::bulk::{Checked, InputItem, Summary, run_all};
    use mtasts_check::render::{Style, write_report, write_short, write_table};
    use mtasts_check::{CheckConfig, Checker};
    use mtasts_lab::{Scenario, World, WorldOptions};

    use crate::check_cmd::{now, runtime};

    /// The zoo, built into the binary so the demo works from any directory.
    const ZOO: &str = include_str!("../../../lab/scenarios/zoo.toml");

    let scenario = match Scenario::from_toml_str(ZOO, "zoo.toml") {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "mtasts demo: the built-in zoo is invalid: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    if a.list {
        for (name, d) in &scenario.domains {
            let first = d.comment.split(". ").next().unwrap_or("");
            let _ = writeln!(out, "{name}  {}", mtasts_core::text::escape(first));
        }
        return crate::EXIT_OK;
    }
    if let Some(unknown) = a
        .domains
        .iter()
        .find(|d| !scenario.domains.contains_key(d.as_str()))
    {
        let stem = unknown.trim_end_matches(".test").to_ascii_lowercase();
        let near: Vec<&str> = scenario
            .domains
            .keys()
            .filter(|k| !stem.is_empty() && k.contains(stem.as_str()))
            .map(String::as_str)
            .take(5)
            .collect();
        let _ = writeln!(
            err,
            "mtasts demo: {} is not a domain of the zoo (lab/scenarios/zoo.toml, {} domains){}; `mtasts demo --list` prints their names",
            mtasts_core::text::escape(unknown),
            scenario.domains.len(),
            if near.is_empty() {
                String::new()
            } else {
                format!(" — did you mean {}?", near.join(", "))
            }
        );
        return crate::EXIT_TROUBLE;
    }
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
    let source = domains
        .into_iter()
        .map(|domain| InputItem::Domain {
            place: "zoo".into(),
            domain,
        })
        .collect::<Vec<_>>()
        .into_iter();
    rt.block_on(run_all(&checker, source, 128, now, |_, result| {
        summary.add(&result);
        let r = match result {
            Checked::Report(r) => r,
            Checked::BadInput(e) | Checked::InputEnded(e) => {
                let _ = writeln!(err, "mtasts demo: {e}");
                return;
            }
        };
        if a.json {
            // One line per domain, as `check --format jsonl` prints them.
            if let Ok(v) = serde_json::to_value(&r) {
                let line = mtasts_core::json::document(crate::check_cmd::SCHEMA_LINE, v);
                let _ = writeln!(out, "{line}");
            }
        } else if a.full {
            let _ = write_report(out, &r, style, now);
        } else {
            let comment = scenario
                .domains
                .get(&r.domain)
                .map(|s| s.comment.as_str())
                .unwrap_or("");
            let _ = write_short(out, &r, comment, style);
        }
    }));
    if !a.json {
        if summary.domains > 1 {
            let _ = write_table(out, &summary);
        }
        let _ = writeln!(
            out,
            "\nEvery finding code is explained in docs/checks.md; `mtasts demo --full DOMAIN` shows a \
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
