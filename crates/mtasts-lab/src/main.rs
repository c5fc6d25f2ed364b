//! `mtasts-lab`: run a simulated internet from a scenario file.
//!
//! `mtasts-lab up zoo.toml` runs a world on loopback in the foreground and prints where
//! everything is; `--netns NAME` runs it inside a fresh Linux network namespace on the standard
//! ports (53, 443, 25) with `/etc/netns/NAME/resolv.conf` pointing at the lab DNS, so that
//! programs that only know the system resolver can be run with `ip netns exec NAME ...`.
//! `mtasts-lab check zoo.toml` validates a scenario.

#![forbid(unsafe_code)]

mod netns;

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mtasts_lab::{Scenario, World, WorldInfo, WorldOptions};

/// A hermetic simulated internet for MTA-STS / TLS-RPT tests: DNS, HTTPS policy hosts, SMTP
/// MX hosts and a test CA, all on loopback.
#[derive(Debug, Parser)]
#[command(name = "mtasts-lab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a world in the foreground until SIGINT/SIGTERM and print where everything is.
    Up(UpArgs),
    /// Validate a scenario file and print a summary of its domains and expectations.
    Check {
        /// The scenario file.
        scenario: PathBuf,
        /// Print the normalised scenario as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct UpArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Run inside a new network namespace of this name (needs root): DNS on 53, HTTPS on
    /// 443, SMTP on 25, and /etc/netns/NAME/resolv.conf pointing at the lab DNS.
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
    /// Write the world's addresses as JSON to this file once everything listens (removed on
    /// exit).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Directory for ca.pem and untrusted-ca.pem (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Also write every accepted message to this directory.
    #[arg(long, value_name = "DIR")]
    messages_dir: Option<PathBuf>,
    /// The /24 block 127.X.Y.0 to use (default: random; 127.1.1.0 with --netns).
    #[arg(long, value_name = "ADDR")]
    ip_block: Option<Ipv4Addr>,
    /// DNS port (default: random; 53 with --netns).
    #[arg(long)]
    dns_port: Option<u16>,
    /// Policy-host HTTPS port (default: random; 443 with --netns).
    #[arg(long)]
    https_port: Option<u16>,
    /// SMTP port of every MX address (default: random; 25 with --netns).
    #[arg(long)]
    smtp_port: Option<u16>,
    /// Control API port (default: random; 8053 with --netns).
    #[arg(long)]
    control_port: Option<u16>,
    /// Do not start the control API.
    #[arg(long)]
    no_control: bool,
    /// Internal: this process is the world inside the namespace.
    #[arg(long, hide = true)]
    inside: bool,
}

impl UpArgs {
    fn options(&self, standard: bool) -> WorldOptions {
        let base = if standard {
            WorldOptions::standard_ports()
        } else {
            WorldOptions::default()
        };
        WorldOptions {
            ip_block: self.ip_block.or(base.ip_block),
            dns_port: self.dns_port.unwrap_or(base.dns_port),
            https_port: self.https_port.unwrap_or(base.https_port),
            smtp_port: self.smtp_port.unwrap_or(base.smtp_port),
            control_port: self.control_port.unwrap_or(base.control_port),
            no_control: self.no_control,
            state_dir: self.state_dir.clone(),
            messages_dir: self.messages_dir.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up(args),
        Command::Check { scenario, json } => check(&scenario, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mtasts-lab: {e:#}");
            ExitCode::from(if e.is::<mtasts_lab::ScenarioError>() {
                2
            } else {
                1
            })
        }
    }
}

fn check(path: &Path, json: bool) -> anyhow::Result<()> {
    let scenario = Scenario::from_file(path)?;
    let mut text = String::new();
    if json {
        text = serde_json::to_string_pretty(&scenario)?;
        text.push('\n');
    } else {
        text.push_str(&format!(
            "{}: {} domains, {} with expectations\n",
            path.display(),
            scenario.domains.len(),
            scenario.expectations().count()
        ));
        for (name, spec) in &scenario.domains {
            let sender = spec
                .expect
                .as_ref()
                .and_then(|e| serde_json::to_value(e.sender).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "-".to_owned());
            let first = spec.comment.lines().next().unwrap_or("");
            text.push_str(&format!("  {name:<40} {sender:<20} {first}\n"));
        }
    }
    print_quietly(&text)
}

/// Print to stdout; a closed pipe (`| head`) is not an error.
fn print_quietly(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// Write `info` to `path` atomically (write a temporary file, then rename).
pub(crate) fn write_ready_file(path: &Path, info: &WorldInfo) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec_pretty(info)?;
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub(crate) fn print_info(info: &WorldInfo, netns: Option<&str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "mtasts-lab: world \"{}\" is up", info.name);
    let _ = writeln!(out, "  dns        {} (udp+tcp)", info.dns);
    let _ = writeln!(out, "  https      {} (every mta-sts.<domain>)", info.https);
    let _ = writeln!(
        out,
        "  smtp port  {} ({} hosts, each on its own address)",
        info.smtp_port,
        info.smtp_hosts.len()
    );
    match info.control {
        Some(c) => {
            let _ = writeln!(out, "  control    http://{c}/v1/world");
        }
        None => {
            let _ = writeln!(out, "  control    off");
        }
    }
    let _ = writeln!(out, "  ca         {}", info.ca_pem_path.display());
    let _ = writeln!(out, "  domains    {}", info.domains.len());
    // Ready to paste: `mtasts check`, `init`, `resolve` and `report` take these flags, or the
    // same settings from the environment.
    let _ = writeln!(
        out,
        "  flags      --dns {} --ca-file {} --https-port {} --smtp-port {}",
        info.dns,
        info.ca_pem_path.display(),
        info.https.port(),
        info.smtp_port
    );
    let _ = writeln!(
        out,
        "  env        export MTASTS_DNS={} MTASTS_CA_FILE={} MTASTS_HTTPS_PORT={} MTASTS_SMTP_PORT={}",
        info.dns,
        info.ca_pem_path.display(),
        info.https.port(),
        info.smtp_port
    );
    if let Some(ns) = netns {
        let _ = writeln!(
            out,
            "  netns      {ns} (run clients with: ip netns exec {ns} COMMAND)"
        );
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    // Validate first: a bad scenario must fail before anything is created.
    let scenario = Scenario::from_file(&args.scenario)?;
    if let Some(name) = args.netns.clone().filter(|_| !args.inside) {
        return netns::run_parent(&args, &name);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    // Catch SIGINT/SIGTERM before anything is created, so that cleanup always runs.
    let mut signals = {
        let _guard = rt.enter();
        Signals::new()?
    };
    let opts = args.options(args.inside);
    let world = World::start(&scenario, opts)
        .with_context(|| format!("starting {}", args.scenario.display()))?;
    if !args.inside {
        print_info(world.info(), None);
    }
    let written = match &args.ready_file {
        Some(path) => write_ready_file(path, world.info()),
        None => Ok(()),
    };
    if written.is_ok() {
        rt.block_on(signals.recv());
    }
    world.shutdown();
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// SIGINT and SIGTERM handlers (installed inside a Tokio runtime context).
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Wait for SIGINT or SIGTERM.
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
}
