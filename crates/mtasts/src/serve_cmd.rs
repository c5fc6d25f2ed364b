//! `mtasts serve [--check]`, `mtasts serve promote DOMAIN MODE`, `mtasts serve retire DOMAIN`:
//! arguments in, `mtasts_serve` does the work, results printed.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use mtasts_core::sts::policy::Mode;
use mtasts_core::sts::publish::{GateOutcome, PromoteDecision};
use mtasts_core::text::escape;
use mtasts_serve::config::Config;

use crate::check_cmd::{NetArgs, runtime};
use crate::{EXIT_FINDINGS, EXIT_OK, EXIT_TROUBLE};

/// `mtasts serve`.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// The configuration file (TOML; see contrib/mtasts-serve.toml)
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/mtasts/serve.toml",
        global = true
    )]
    pub config: PathBuf,
    /// Check the configuration, the policies and the published _mta-sts records, print the
    /// records to publish, and exit (1 on drift or a refused policy)
    #[arg(long)]
    pub check: bool,
    #[command(subcommand)]
    pub action: Option<ServeAction>,
}

/// What `promote` may move to.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Target {
    /// mode: testing (always allowed)
    Testing,
    /// mode: enforce (after testing; the live check and the reports must pass)
    Enforce,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ServeAction {
    /// Move a domain's served policy to testing or enforce, if the live check and the
    /// reports allow it; print the new _mta-sts record
    Promote {
        /// The policy domain
        domain: String,
        /// The mode to move to
        mode: Target,
        /// Promote even when a gate fails
        #[arg(long)]
        force: bool,
        /// A new max_age, seconds (default: the current one)
        #[arg(long, value_name = "SECS")]
        max_age: Option<u32>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Opt a domain out (RFC 8461 §8.3): serve mode none under a new id, and say when the
    /// records can go
    Retire {
        /// The policy domain
        domain: String,
    },
}

fn fail(err: &mut dyn Write, what: &str, e: impl std::fmt::Display) -> u8 {
    let _ = writeln!(err, "mtasts serve{what}: {}", escape(&e.to_string()));
    EXIT_TROUBLE
}

fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Dispatches `mtasts serve …`: 0 success; 1 drift or a refused policy (`--check`), a
/// refused promotion; 2 the job could not be done.
pub(crate) fn serve(a: ServeArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if a.check && a.action.is_some() {
        return fail(err, "", "--check takes no subcommand");
    }
    let config = match Config::load(&a.config) {
        Ok(c) => c,
        Err(e) => return fail(err, "", e.one_line()),
    };
    let Some(rt) = runtime(err) else {
        return EXIT_TROUBLE;
    };
    match a.action {
        None if a.check => rt.block_on(check(&config, out, err)),
        None => match rt.block_on(mtasts_serve::run::run(&a.config, Default::default())) {
            Ok(()) => EXIT_OK,
            Err(e) => fail(err, "", format!("{e:#}")),
        },
        Some(ServeAction::Promote {
            domain,
            mode,
            force,
            max_age,
            net,
        }) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            let target = match mode {
                Target::Testing => Mode::Testing,
                Target::Enforce => Mode::Enforce,
            };
            let r = rt.block_on(mtasts_serve::manage::promote(
                &config,
                &domain,
                target,
                max_age,
                force,
                net.config(),
            ));
            match r {
                Err(e) => fail(err, " promote", e),
                Ok(o) => {
                    let p = &o.promotion;
                    for g in &p.gates {
                        let mark = match g.outcome {
                            GateOutcome::Passed => "passed",
                            GateOutcome::Failed => "FAILED",
                            GateOutcome::Skipped => "skipped",
                        };
                        let _ = writeln!(out, "{:<9} {:<7} {}", g.name, mark, escape(&g.summary));
                        for d in &g.details {
                            let _ = writeln!(out, "                  {}", escape(d));
                        }
                    }
                    match p.decision {
                        PromoteDecision::Unchanged => {
                            let _ = writeln!(out, "{domain}: already in that mode; nothing to do");
                            EXIT_OK
                        }
                        PromoteDecision::Refused => {
                            let _ = writeln!(
                                out,
                                "{domain}: refused; fix what failed, or give --force"
                            );
                            EXIT_FINDINGS
                        }
                        PromoteDecision::Promote | PromoteDecision::Forced => {
                            if let (Some(file), Some((id, line))) = (&o.written, &o.record) {
                                let _ = writeln!(
                                    out,
                                    "{domain}: {}promoted to {target}; written to {}\nnew id {id}; publish this record now (the policy first, then the record, RFC 8461 §8.1):\n{line}",
                                    if p.decision == PromoteDecision::Forced {
                                        "FORCED: "
                                    } else {
                                        ""
                                    },
                                    file.display()
                                );
                            }
                            EXIT_OK
                        }
                    }
                }
            }
        }
        Some(ServeAction::Retire { domain }) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            match mtasts_serve::manage::retire(&config, &domain) {
                Err(e) => fail(err, " retire", e),
                Ok(o) => {
                    let r = &o.plan.retirement;
                    let (id, line) = &o.record;
                    let _ = writeln!(
                        out,
                        "{domain}: {} mode: none (max_age {}) under the new id {id}.\npublish this record:\n{line}\nkeep serving it and the record until {} (the previous max_age of {} s after {}); then remove the _mta-sts record, then the policy host (RFC 8461 §8.3)",
                        if o.plan.already {
                            "already retired, serving"
                        } else {
                            "retired: serving"
                        },
                        o.plan.policy.max_age,
                        utc(r.remove_after),
                        r.previous_max_age,
                        utc(r.since),
                    );
                    EXIT_OK
                }
            }
        }
    }
}

async fn check(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let report = match mtasts_serve::run::check(config, None).await {
        Ok(r) => r,
        Err(e) => return fail(err, " --check", e),
    };
    for r in &report.refused {
        let _ = writeln!(out, "REFUSED {}", escape(&r.to_string()));
    }
    for s in &report.skipped {
        let _ = writeln!(out, "skipped {}", escape(s));
    }
    for d in &report.domains {
        let _ = writeln!(
            out,
            "{} (mode {}, id {}): {}\n  publish: {}",
            d.domain,
            d.mode,
            d.id,
            escape(&d.published.describe(&d.id)),
            d.record
        );
    }
    if report.ok() { EXIT_OK } else { EXIT_FINDINGS }
}
