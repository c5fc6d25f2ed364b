//! `mtasts init`: the policy and DNS records that are correct for what the MX hosts present.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mtasts_check::Checker;
use mtasts_check::init::{InitRequest, propose};
use mtasts_core::sts::policy::Mode;

use crate::check_cmd::{NetArgs, now, runtime};

/// The modes `init` can write.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum InitMode {
    /// Report failures but deliver anyway (start here)
    Testing,
    /// Refuse delivery to MX hosts that fail validation
    Enforce,
    /// Opt out (published so that senders drop a cached policy)
    None,
}

#[derive(Args, Debug)]
pub(crate) struct InitArgs {
    /// The mail domain
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The policy mode (default: the live policy's mode, else testing; a downgrade from the
    /// live mode is warned about)
    #[arg(long, value_enum)]
    pub mode: Option<InitMode>,
    /// Where TLS-RPT reports go (default: the published rua, else mailto:tlsrpt@DOMAIN)
    #[arg(long, value_name = "URI")]
    pub rua: Option<String>,
    /// max_age in seconds (default: the next step of the ramp from the live policy: testing
    /// 86400 then 604800, enforce 1209600 then 2419200)
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<u32>,
    /// Also write DIR/.well-known/mta-sts.txt and DIR/zone.txt (existing files only with --force)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite the files of --out if they exist
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

pub(crate) fn init(a: InitArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let checker = match Checker::new(a.net.config()) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "mtasts init: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    let Some(rt) = runtime(err) else {
        return crate::EXIT_TROUBLE;
    };
    let obs = match rt.block_on(checker.observe(&a.domain)) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(err, "mtasts init: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    let now = now();
    // The live policy, as a sender applies it (the checker fetched it already).
    let report = mtasts_check::assess(obs.clone(), &checker.settings(now));
    let live = report.policy.as_ref().and_then(|p| {
        let mode = match p.mode {
            "enforce" => Mode::Enforce,
            "testing" => Mode::Testing,
            "none" => Mode::None,
            _ => return None,
        };
        Some((mode, p.max_age))
    });
    let req = InitRequest {
        mode: a.mode.map(|m| match m {
            InitMode::Testing => Mode::Testing,
            InitMode::Enforce => Mode::Enforce,
            InitMode::None => Mode::None,
        }),
        max_age: a.max_age,
        live,
        rua: a.rua.clone(),
        now,
    };
    let p = match propose(&obs, &req) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "mtasts init: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    if let Some(dir) = &a.out {
        let wk = dir.join(".well-known");
        let policy_file = wk.join("mta-sts.txt");
        let zone_file = dir.join("zone.txt");
        if !a.force {
            // Nothing is written unless neither file exists.
            for f in [&policy_file, &zone_file] {
                if f.symlink_metadata().is_ok() {
                    let _ = writeln!(
                        err,
                        "mtasts init: {} exists; nothing written (--force overwrites it)",
                        f.display()
                    );
                    return crate::EXIT_TROUBLE;
                }
            }
        }
        let res = std::fs::create_dir_all(&wk)
            .map_err(|e| (wk.clone(), e))
            .and_then(|()| {
                std::fs::write(&policy_file, &p.policy).map_err(|e| (policy_file.clone(), e))
            })
            .and_then(|()| {
                std::fs::write(&zone_file, p.zone.join("\n") + "\n")
                    .map_err(|e| (zone_file.clone(), e))
            });
        if let Err((path, e)) = res {
            let _ = writeln!(err, "mtasts init: writing {}: {e}", path.display());
            return crate::EXIT_TROUBLE;
        }
    }
    if a.json {
        let doc = serde_json::to_value(&p)
            .map(|v| mtasts_core::json::document("mtasts-init/1", v))
            .unwrap_or_default();
        let _ = serde_json::to_writer_pretty(&mut *out, &doc);
        let _ = writeln!(out);
    } else {
        let _ = writeln!(
            out,
            "# https://mta-sts.{}/.well-known/mta-sts.txt (Content-Type: text/plain)",
            p.domain
        );
        let _ = match &p.live {
            Some(l) => writeln!(
                out,
                "# live policy: mode {}, max_age {}; proposed: mode {}, max_age {} (the max_age ramp: docs/checks.md)",
                l.mode, l.max_age, p.mode, p.max_age
            ),
            None => writeln!(
                out,
                "# no live policy; proposed: mode {}, max_age {} (the max_age ramp: docs/checks.md)",
                p.mode, p.max_age
            ),
        };
        let _ = write!(out, "{}", p.policy);
        let _ = writeln!(out, "\n# DNS records");
        for z in &p.zone {
            let _ = writeln!(out, "{z}");
        }
        let _ = writeln!(out, "\n# MX coverage");
        for m in &p.mx {
            let _ = writeln!(
                out,
                "#   {} -> mx: {}{}",
                m.host,
                m.pattern,
                m.problem
                    .as_ref()
                    .map_or(String::new(), |w| format!("   (warning: {w})"))
            );
        }
        if let Some(dir) = &a.out {
            let _ = writeln!(out, "\n# written to {}", dir.display());
        }
    }
    for w in &p.warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    if p.warnings.is_empty() {
        crate::EXIT_OK
    } else {
        crate::check_cmd::EXIT_WARNINGS
    }
}
