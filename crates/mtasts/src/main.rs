//! `mtasts`: take a mail domain from opportunistic to enforced TLS (RFC 8461 MTA-STS,
//! RFC 8460 TLS-RPT). This binary only parses arguments and dispatches to the libraries.
#![forbid(unsafe_code)]

mod check_cmd;
mod daemon_cache_cmd;
mod demo_cmd;
mod init_cmd;
mod lint_cmd;
mod output;
mod report_cmd;
mod reports_cmd;
mod resolve_cmd;
mod serve_cmd;

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: everything valid.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status: findings at error level.
pub(crate) const EXIT_FINDINGS: u8 = 1;
/// Exit status: the job could not be done (usage, unreadable input, the checking side's
/// network or store).
pub(crate) const EXIT_TROUBLE: u8 = 2;
/// Exit status: warnings only.
pub(crate) const EXIT_WARNINGS: u8 = 3;

/// The exit statuses, as every `--help` prints them (README "Exit status" is the same table).
const EXIT_HELP: &str = "Exit status: 0 success (valid, READY, answered); 1 problems found (findings at error level, NOT READY, DNS failed with nothing cached, a domain not in the daemon's cache; wins over 2 when both happen, and both are reported); 2 the job could not be done (usage, unreadable input or input line, the checking side's network: no SMTP connection at all, a silent resolver; the store; the daemon not reachable); 3 warnings only (check, lint).";

#[derive(Parser)]
#[command(
    name = "mtasts",
    version,
    about = "MTA-STS (RFC 8461) and TLS-RPT (RFC 8460): check, publish and enforce TLS for mail",
    long_about = "mtasts takes a mail domain from \"TLS is opportunistic\" to \"TLS is enforced\" and keeps it there.",
    subcommand_help_heading = "Commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check domains end to end: records, policy fetch, MX STARTTLS and certificates, coverage
    Check(check_cmd::CheckArgs),
    /// Write the policy and DNS records that fit what the MX hosts really present
    Init(init_cmd::InitArgs),
    /// Run `check` over the lab's zoo of deployments and mistakes, offline, in process
    Demo(demo_cmd::DemoArgs),
    /// Check a policy file or DNS TXT records before publishing them
    #[command(subcommand)]
    Lint(LintCommand),
    /// Receive, keep and analyse TLS-RPT aggregate reports (RFC 8460)
    #[command(subcommand)]
    Report(ReportCommand),
    /// Resolve a domain's MTA-STS policy and DANE status as a sending MTA would, and say why
    Resolve(ResolveArgs),
    /// Run the Postfix socketmap policy daemon (smtp_tls_policy_maps)
    Daemon(DaemonArgs),
    /// Serve the policy of every mta-sts.<domain> over HTTPS and keep the published id honest
    Serve(serve_cmd::ServeArgs),
    /// Write man pages or shell completions (for packagers)
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
}

#[derive(Subcommand)]
enum GenerateCommand {
    /// Write a man page per command into DIR (mtasts.1, mtasts-check.1, …)
    Man {
        /// The directory (must exist)
        dir: PathBuf,
    },
    /// Print the completion script for SHELL on standard output
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

/// Writes `mtasts.1` and one page per subcommand, named as `man` expects (`mtasts-report-ingest.1`).
fn write_man_pages(
    cmd: &clap::Command,
    dir: &std::path::Path,
    prefix: &str,
) -> std::io::Result<u32> {
    let name = if prefix.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{prefix}-{}", cmd.get_name())
    };
    let mut n = 0;
    if !cmd.is_hide_set() {
        let page = cmd.clone().name(name.clone());
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.1")), buf)?;
        n += 1;
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            n += write_man_pages(sub, dir, &name)?;
        }
    }
    Ok(n)
}

fn generate(g: GenerateCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut cmd = command();
    cmd.build();
    match g {
        GenerateCommand::Man { dir } => match write_man_pages(&cmd, &dir, "") {
            Ok(n) => {
                let _ = writeln!(out, "{n} man pages written to {}", dir.display());
                EXIT_OK
            }
            Err(e) => {
                let _ = writeln!(err, "mtasts generate man: {}: {e}", dir.display());
                EXIT_TROUBLE
            }
        },
        GenerateCommand::Completions { shell } => {
            // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "mtasts", &mut buf);
            match out.write_all(&buf) {
                Ok(()) => EXIT_OK,
                Err(_) => EXIT_TROUBLE,
            }
        }
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct DaemonArgs {
    /// The configuration file (TOML; see contrib/mtasts-daemon.toml)
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/mtasts/daemon.toml"
    )]
    config: PathBuf,
    /// Only check the configuration file, print what it sets up, and exit
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    action: Option<DaemonAction>,
}

#[derive(Subcommand)]
enum DaemonAction {
    /// Ask a running daemon, as Postfix does (socketmap), and print each reply
    Query(QueryArgs),
    /// List, show or forget the entries of a running daemon's cache (through its admin socket)
    #[command(subcommand)]
    Cache(daemon_cache_cmd::CacheCommand),
}

#[derive(Args)]
struct QueryArgs {
    /// Keys to look up: policy domains, as Postfix asks for them
    #[arg(required = true, value_name = "KEY")]
    keys: Vec<String>,
    /// The daemon's configuration file: the daemon is reached at its first listener
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/mtasts/daemon.toml"
    )]
    config: PathBuf,
    /// Where the daemon listens, HOST:PORT or unix:PATH (instead of reading --config)
    #[arg(long, value_name = "ADDR")]
    connect: Option<String>,
    /// The map name (the last part of socketmap:inet:HOST:PORT:NAME in main.cf)
    #[arg(long, value_name = "NAME", default_value = "postfix")]
    map: String,
    /// Seconds to wait for the connection and for each reply (1-3600)
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

#[derive(Args)]
struct ResolveArgs {
    /// Policy domains (the recipient domain, or a smart host's domain)
    #[arg(required = true, value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Read the resolver settings from this file: the daemon's configuration (its
    /// [resolver] table) or a file of resolver sections only
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// DNS server to ask, ADDRESS or ADDRESS:PORT (port 53 by default); repeatable (default: the system's resolvers)
    #[arg(long, value_name = "ADDR[:PORT]", env = "MTASTS_DNS", value_delimiter = ',', value_parser = crate::output::dns_server)]
    dns: Vec<std::net::SocketAddr>,
    /// Trust these CA certificates (PEM) for policy hosts instead of the platform's
    #[arg(long, value_name = "FILE", env = "MTASTS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// HTTPS port of policy hosts (443 on the internet; for labs), as `check --https-port`
    #[arg(
        long = "https-port",
        alias = "port",
        value_name = "PORT",
        env = "MTASTS_HTTPS_PORT"
    )]
    port: Option<u16>,
    /// Cache to read and update: memory (default without --config), sqlite:PATH or
    /// redis://HOST:PORT
    #[arg(long, value_name = "CACHE")]
    cache: Option<String>,
    /// Look up the TXT record even when the cache could answer (a proactive refresh)
    #[arg(long)]
    refresh: bool,
    /// Do not look up the DANE status (TLSA records, RFC 7672)
    #[arg(long)]
    no_dane: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum LintCommand {
    /// Check an MTA-STS policy file (RFC 8461 §3.2): every error and warning, with line numbers
    Policy(LintPolicyArgs),
    /// Check `v=STSv1` / `v=TLSRPTv1` TXT records; several arguments form one RRset
    Record(LintRecordArgs),
}

#[derive(Args)]
struct LintPolicyArgs {
    /// The policy file, or `-` for standard input
    file: PathBuf,
    /// An MX host name to test against the policy's mx patterns (RFC 8461 §4.1); repeatable.
    /// An MX host no pattern covers is an error: under enforce, mail to it is refused
    #[arg(long = "mx", value_name = "HOST")]
    mx: Vec<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LintRecordArgs {
    /// The TXT record text, e.g. 'v=STSv1; id=20250101'. Zone-file form with quoted strings
    /// ('"v=STSv1; " "id=1"') is joined as DNS would
    #[arg(required = true, value_name = "TXT")]
    records: Vec<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Parse TLS-RPT reports (.json, .json.gz or an .eml message) and summarise them
    Parse(ReportParseArgs),
    /// Store reports from files, mbox files, Maildirs and directories, each once
    Ingest(reports_cmd::IngestArgs),
    /// Receive reports POSTed over HTTPS (RFC 8460 §5.4) and store them as they arrive
    Receive(reports_cmd::ReceiveArgs),
    /// What could not be read or authenticated: kept, listed, retried
    #[command(subcommand)]
    Quarantine(reports_cmd::QuarantineCommand),
    /// Sessions and failures per policy domain and day, from the stored reports
    Summary(reports_cmd::SummaryArgs),
    /// Is it safe to move the domain to mode: enforce? READY, NOT READY or ENFORCED
    Readiness(reports_cmd::ReadinessArgs),
    /// Delete stored reports and quarantine entries older than some days
    Prune(reports_cmd::PruneArgs),
}

#[derive(Args)]
struct ReportParseArgs {
    /// Report files, or `-` for standard input
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print the normalised reports as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: report_cmd::LimitArgs,
}

/// `mtasts daemon`: runs until SIGTERM/SIGINT (exit 0) or a startup failure (exit 2).
fn daemon(a: &DaemonArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match &a.action {
        Some(DaemonAction::Query(q)) => return daemon_query(q, out, err),
        Some(DaemonAction::Cache(c)) => return daemon_cache_cmd::cache(c, out, err),
        None => {}
    }
    if a.check {
        return match mtasts_daemon::Config::load(&a.config) {
            Ok(c) => {
                if let Err(e) = c.check_environment(&a.config.display().to_string()) {
                    let _ = writeln!(err, "mtasts daemon: {e}");
                    return EXIT_TROUBLE;
                }
                let _ = writeln!(out, "{}: valid", a.config.display());
                for l in &c.listen {
                    let _ = writeln!(out, "listen: {l}");
                }
                if let Some(a) = &c.admin {
                    let _ = writeln!(out, "admin: unix {}", a.path().display());
                }
                EXIT_OK
            }
            Err(e) => {
                let _ = writeln!(err, "mtasts daemon: {e}");
                EXIT_TROUBLE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "mtasts daemon: cannot start the runtime: {e}");
            return EXIT_TROUBLE;
        }
    };
    match rt.block_on(mtasts_daemon::run(&a.config)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(err, "mtasts daemon: {e:#}");
            EXIT_TROUBLE
        }
    }
}

/// `mtasts daemon query`: 0 when every key got an `OK` reply, 1 when some got `NOTFOUND`,
/// `TEMP` or `PERM` (each printed), 2 when the daemon could not be asked.
fn daemon_query(q: &QueryArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use mtasts_daemon::client::{Endpoint, query};
    let endpoint = match &q.connect {
        Some(c) => Endpoint::parse(c),
        None => match mtasts_daemon::Config::load(&q.config) {
            Ok(c) => match c.listen.first() {
                Some(l) => Endpoint::of(l),
                None => {
                    let _ = writeln!(
                        err,
                        "mtasts daemon query: {} has no listener; give --connect",
                        q.config.display()
                    );
                    return EXIT_TROUBLE;
                }
            },
            Err(e) => {
                let _ = writeln!(err, "mtasts daemon query: {e} (or give --connect ADDR)");
                return EXIT_TROUBLE;
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "mtasts daemon query: cannot start the runtime: {e}");
            return EXIT_TROUBLE;
        }
    };
    let timeout = std::time::Duration::from_secs(q.timeout);
    match rt.block_on(query(&endpoint, &q.map, &q.keys, timeout)) {
        Ok(replies) => {
            let mut code = EXIT_OK;
            for (k, r) in q.keys.iter().zip(&replies) {
                let _ = writeln!(out, "{k}\t{}", mtasts_core::text::escape(r));
                if !r.starts_with("OK ") {
                    code = EXIT_FINDINGS;
                }
            }
            code
        }
        Err(e) => {
            let _ = writeln!(err, "mtasts daemon query: {e}");
            EXIT_TROUBLE
        }
    }
}

/// The command line, with the exit-status table under every command's `--help`.
fn command() -> clap::Command {
    fn with_exit_help(c: clap::Command) -> clap::Command {
        c.after_help(EXIT_HELP).mut_subcommands(with_exit_help)
    }
    with_exit_help(<Cli as clap::CommandFactory>::command())
}

fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_TROUBLE
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Not locked: the daemon's log lines are written to stderr from worker threads, and a lock
    // held here for the whole command would block the first of them forever.
    let mut err = std::io::stderr();
    let code = match cli.command {
        Command::Lint(LintCommand::Policy(a)) => {
            lint_cmd::lint_policy(&a.file, &a.mx, a.json, &mut out, &mut err)
        }
        Command::Lint(LintCommand::Record(a)) => {
            lint_cmd::lint_record(&a.records, a.json, &mut out, &mut err)
        }
        Command::Report(ReportCommand::Parse(a)) => {
            report_cmd::parse_reports(&a.files, a.json, &a.limits.limits(), &mut out, &mut err)
        }
        Command::Report(ReportCommand::Ingest(a)) => reports_cmd::ingest(a, &mut out, &mut err),
        Command::Report(ReportCommand::Receive(a)) => reports_cmd::receive(a, &mut err),
        Command::Report(ReportCommand::Quarantine(c)) => {
            reports_cmd::quarantine(c, &mut out, &mut err)
        }
        Command::Report(ReportCommand::Summary(a)) => reports_cmd::summary(a, &mut out, &mut err),
        Command::Report(ReportCommand::Readiness(a)) => {
            reports_cmd::readiness(a, &mut out, &mut err)
        }
        Command::Report(ReportCommand::Prune(a)) => reports_cmd::prune(a, &mut out, &mut err),
        Command::Daemon(a) => daemon(&a, &mut out, &mut err),
        Command::Serve(a) => serve_cmd::serve(a, &mut out, &mut err),
        Command::Generate(g) => generate(g, &mut out, &mut err),
        Command::Check(a) => check_cmd::check(a, &mut out, &mut err),
        Command::Init(a) => init_cmd::init(a, &mut out, &mut err),
        Command::Demo(a) => demo_cmd::demo(a, &mut out, &mut err),
        Command::Resolve(a) => resolve_cmd::resolve(
            &resolve_cmd::ResolveOptions {
                domains: a.domains,
                config: a.config,
                dns: a.dns,
                ca_file: a.ca_file,
                port: a.port,
                cache: a.cache,
                refresh: a.refresh,
                dane: !a.no_dane,
                json: a.json,
            },
            &mut out,
            &mut err,
        ),
    };
    // A closed pipe (`mtasts ... | head`) is not an error worth a message.
    let _ = out.flush();
    ExitCode::from(code)
}
