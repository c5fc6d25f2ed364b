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
    /// The policy mode
    #[arg(long, value_enum, default_value_t = InitMode::Testing)]
    pub mode: InitMode,
    /// Where TLS-RPT reports go (default: the published rua, else mailto:tlsrpt@DOMAIN)
    #[arg(long, value_name = "URI")]
    pub rua: Option<String>,
    /// max_age in seconds (default: 86400 for testing, 1209600 for enforce)
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<u32>,
    /// Also write DIR/.well-known/mta-sts.txt and DIR/zone.txt
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
    let req = InitRequest {
        mode: match a.mode {
            InitMode::Testing => Mode::Testing,
            InitMode::Enforce => Mode::Enforce,
            InitMode::None => Mode::None,
        },
        max_age: a.max_age,
        rua: a.rua.clone(),
        now: now(),
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
        let res = std::fs::create_dir_all(&wk)
            .and_then(|()| std::fs::write(wk.join("mta-sts.txt"), &p.policy))
            .and_then(|()| std::fs::write(dir.join("zone.txt"), p.zone.join("\n") + "\n"));
        if let Err(e) = res {
            let _ = writeln!(err, "mtasts init: writing to {}: {e}", dir.display());
            return crate::EXIT_TROUBLE;
        }
    }
    if a.json {
        let _ = serde_json::to_writer_pretty(&mut *out, &p);
        let _ = writeln!(out);
    } else {
        let _ = writeln!(
            out,
            "# https://mta-sts.{}/.well-known/mta-sts.txt (Content-Type: text/plain)",
            p.domain
        );
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
