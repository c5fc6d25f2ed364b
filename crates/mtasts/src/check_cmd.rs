//! `mtasts check`: the domain owner's end-to-end check, for one domain or a million.

use mtasts_core::json::document;
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use mtasts_check::bulk::{
    Checked, DEFAULT_MAX_LINE, InputItem, InputLines, Summary, from_arguments, run_all,
};
use mtasts_check::obs::IpFamily;
use mtasts_check::render::{Style, write_report, write_table};
use mtasts_check::{CheckConfig, Checker};
use mtasts_core::Severity;

pub(crate) use crate::EXIT_WARNINGS;

/// Where to look and how long to wait: shared by `check`, `init` and `demo`.
#[derive(Args, Clone, Debug)]
pub(crate) struct NetArgs {
    /// DNS server to ask, ADDRESS or ADDRESS:PORT (port 53 by default; default: the system's resolvers)
    #[arg(long, value_name = "ADDR[:PORT]", env = "MTASTS_DNS", value_parser = crate::output::dns_server)]
    pub dns: Option<SocketAddr>,
    /// Trust these CA certificates (PEM) instead of the platform's store
    #[arg(long, value_name = "FILE", env = "MTASTS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// SMTP port of the MX hosts (25 on the internet; for labs)
    #[arg(
        long,
        value_name = "PORT",
        env = "MTASTS_SMTP_PORT",
        default_value_t = 25
    )]
    pub smtp_port: u16,
    /// HTTPS port of the policy host (443 on the internet; for labs)
    #[arg(
        long,
        value_name = "PORT",
        env = "MTASTS_HTTPS_PORT",
        default_value_t = 443
    )]
    pub https_port: u16,
    /// Timeout of each DNS query, seconds (1 to 60)
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub dns_timeout: u64,
    /// TCP connect timeout, seconds (1 to 600)
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,
    /// Deadline of the whole policy fetch, seconds (1 to 600)
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub fetch_timeout: u64,
    /// Timeout of each SMTP reply and of the TLS handshake, seconds (1 to 600)
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub smtp_timeout: u64,
    /// Policy size limit in bytes (RFC 8461 §3.3 suggests 64 KiB; 1024 to 16777216)
    #[arg(long, value_name = "BYTES", default_value_t = 65536, value_parser = clap::value_parser!(u64).range(1024..=16_777_216))]
    pub max_body: u64,
    /// Accept a policy served with a media type other than text/plain (as a warning)
    #[arg(long)]
    pub lenient_media_type: bool,
    /// The name sent in EHLO
    #[arg(long, value_name = "NAME", default_value = "mtasts-check.invalid")]
    pub helo_name: String,
    /// Most simultaneous connections to one IP address (across all domains; 1 to 64)
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub per_address_connections: usize,
    /// Do not probe the MX hosts over SMTP (where outbound port 25 is blocked): the SMTP
    /// results are unknown and the verdict says so
    #[arg(long)]
    pub skip_smtp: bool,
    /// Connect only to IPv4 addresses (SMTP and HTTPS)
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Connect only to IPv6 addresses (SMTP and HTTPS)
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Warn when a certificate (MX or policy host) expires within DAYS days (0 to 365; 0: only
    /// expired certificates)
    #[arg(long, value_name = "DAYS", default_value_t = 21, value_parser = clap::value_parser!(u32).range(0..=365))]
    pub cert_expiry_warning: u32,
}

impl NetArgs {
    pub(crate) fn config(&self) -> CheckConfig {
        CheckConfig {
            dns: self.dns,
            dns_timeout: Duration::from_secs(self.dns_timeout),
            ca_file: self.ca_file.clone(),
            https_port: self.https_port,
            smtp_port: self.smtp_port,
            connect_timeout: Duration::from_secs(self.connect_timeout),
            fetch_timeout: Duration::from_secs(self.fetch_timeout),
            smtp_timeout: Duration::from_secs(self.smtp_timeout),
            max_body: self.max_body,
            require_text_plain: !self.lenient_media_type,
            helo_name: self.helo_name.clone(),
            per_address_connections: self.per_address_connections,
            skip_smtp: self.skip_smtp,
            family: match (self.ipv4, self.ipv6) {
                (true, _) => Some(IpFamily::Ipv4),
                (_, true) => Some(IpFamily::Ipv6),
                _ => None,
            },
            expiry_warning_days: self.cert_expiry_warning,
            ..CheckConfig::default()
        }
    }
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A report per domain for people
    Human,
    /// One JSON document: {"schema", "domains": [...], "summary"}
    Json,
    /// One JSON object per line and per domain (for many domains)
    Jsonl,
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// Domains to check
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Read domains from a file, one per line (`-`: standard input; `#` starts a comment)
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Same as --format json
    #[arg(long)]
    pub json: bool,
    /// Domains checked at once (1 to 4096)
    #[arg(long, short = 'j', value_name = "N", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub concurrency: usize,
    /// No progress bar (it is shown only on a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,
    /// Print every finding code as Markdown (docs/checks.md) and exit
    #[arg(long)]
    pub list_findings: bool,
    /// Longest input line accepted with --input, in bytes (a domain name is at most 253;
    /// 256 to 1048576)
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(256..=1_048_576))]
    pub max_line_bytes: usize,
    #[command(flatten)]
    pub net: NetArgs,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn runtime(err: &mut dyn Write) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            let _ = writeln!(err, "mtasts: cannot start the runtime: {e}");
            None
        }
    }
}

/// The exit status of a run: 1 when any domain has an error-level finding (real errors are
/// never hidden: bad input lines and inconclusive checks are still reported, on standard
/// error and in the summary); else 2 when an input line was not a domain, the input ended
/// early, or a check was inconclusive because of the checking side (its resolver did not
/// answer, no SMTP connection succeeded); else 3 for warnings; else 0.
pub(crate) fn exit_code(s: &Summary) -> u8 {
    if s.worst == Some(Severity::Error) {
        return crate::EXIT_FINDINGS;
    }
    if s.invalid_input > 0 || s.input_error.is_some() || s.inconclusive > 0 {
        return crate::EXIT_TROUBLE;
    }
    match s.worst {
        Some(Severity::Warning) => EXIT_WARNINGS,
        _ => crate::EXIT_OK,
    }
}

/// The progress line: "1 domain checked", "3 of 83 domains checked, 2.5/s".
pub(crate) fn progress_text(done: usize, total: Option<usize>, secs: f64) -> String {
    let count = match total {
        Some(t) if t >= done => format!("{done} of {t}"),
        _ => done.to_string(),
    };
    let noun = match total {
        Some(t) if t >= done => t,
        _ => done,
    };
    let rate = if done == 0 || secs < 1.0 {
        String::new()
    } else {
        let r = done as f64 / secs;
        if r >= 10.0 {
            format!(", {r:.0}/s")
        } else if r >= 1.0 {
            format!(", {r:.1}/s")
        } else {
            format!(", {:.0} s each", secs / done as f64)
        }
    };
    format!(
        "{count} domain{} checked{rate}",
        if noun == 1 { "" } else { "s" }
    )
}

/// The domains an input file holds (lines with something before any `#`), counted before
/// the run for the progress line; `None` when it cannot be read.
fn count_domains(path: &std::path::Path) -> Option<usize> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).ok()?;
    let mut n = 0usize;
    for line in io::BufReader::new(f).split(b'\n') {
        let line = line.ok()?;
        let text = line.split(|b| *b == b'#').next().unwrap_or_default();
        if !text.trim_ascii().is_empty() {
            n += 1;
        }
    }
    Some(n)
}

/// Domains from the command line, then from the input file (read lazily).
fn domain_source(
    domains: Vec<String>,
    input: Option<PathBuf>,
    max_line: usize,
) -> io::Result<Box<dyn Iterator<Item = InputItem> + Send>> {
    let args = from_arguments(domains);
    let Some(path) = input else {
        return Ok(Box::new(args));
    };
    if path.as_os_str() == "-" {
        let lines = InputLines::new("stdin", io::BufReader::new(io::stdin()), max_line);
        return Ok(Box::new(args.chain(lines)));
    }
    let f = std::fs::File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let lines = InputLines::new(path.display().to_string(), io::BufReader::new(f), max_line);
    Ok(Box::new(args.chain(lines)))
}

/// `mtasts check`.
/// The schema of `--json` (`schemas/mtasts-check.v2.json`).
const SCHEMA: &str = "mtasts-check/2";
/// The schema of each line of `--format jsonl` (`schemas/mtasts-check-line.v1.json`).
pub(crate) const SCHEMA_LINE: &str = "mtasts-check-line/1";

pub(crate) fn check(a: CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if a.list_findings {
        return match out.write_all(mtasts_check::catalog::markdown().as_bytes()) {
            Ok(()) => crate::EXIT_OK,
            Err(_) => crate::EXIT_TROUBLE,
        };
    }
    if a.domains.is_empty() && a.input.is_none() {
        let _ = writeln!(
            err,
            "mtasts check: give at least one DOMAIN or --input FILE (try --help)"
        );
        return crate::EXIT_TROUBLE;
    }
    let format = if a.json { Format::Json } else { a.format };
    let checker = match Checker::new(a.net.config()) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "mtasts check: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    let bulk = a.input.is_some() || a.domains.len() > 1;
    // How many domains there are, when that can be known before checking (not on stdin).
    let total = match &a.input {
        None => Some(a.domains.len()),
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => count_domains(p).map(|n| n + a.domains.len()),
    };
    let source = match domain_source(a.domains, a.input, a.max_line_bytes) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "mtasts check: {e}");
            return crate::EXIT_TROUBLE;
        }
    };
    let Some(rt) = runtime(err) else {
        return crate::EXIT_TROUBLE;
    };
    let style = Style::detect(io::stdout().is_terminal());
    let progress = (bulk && !a.no_progress && io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}  {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.set_message(progress_text(0, total, 0.0));
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    });
    let started = std::time::Instant::now();
    let mut done = 0usize;
    let now = now();
    let mut summary = Summary::default();
    let mut json_domains: Vec<serde_json::Value> = Vec::new();
    rt.block_on(run_all(
        &checker,
        source,
        a.concurrency,
        now,
        |_, result| {
            done += 1;
            if let Some(pb) = &progress {
                pb.set_message(progress_text(done, total, started.elapsed().as_secs_f64()));
            }
            summary.add(&result);
            let report = match result {
                Checked::Report(r) => r,
                Checked::BadInput(msg) | Checked::InputEnded(msg) => {
                    match format {
                        Format::Json => json_domains.push(serde_json::json!({ "error": msg })),
                        Format::Jsonl => {
                            let line = document(SCHEMA_LINE, serde_json::json!({ "error": msg }));
                            let _ = writeln!(out, "{line}");
                        }
                        Format::Human => {
                            let _ =
                                writeln!(err, "mtasts check: {}", mtasts_core::text::escape(&msg));
                        }
                    }
                    return;
                }
            };
            // A closed pipe (`mtasts check ... | head`) is not worth a message, as elsewhere.
            let _ = match format {
                Format::Human => {
                    if let Some(pb) = &progress {
                        pb.suspend(|| write_report(out, &report, style, now))
                    } else {
                        write_report(out, &report, style, now)
                    }
                }
                Format::Jsonl => serde_json::to_value(&report)
                    .map(|v| document(SCHEMA_LINE, v))
                    .and_then(|v| serde_json::to_writer(&mut *out, &v))
                    .map_err(io::Error::other)
                    .and_then(|()| writeln!(out)),
                Format::Json => {
                    match serde_json::to_value(&report) {
                        Ok(v) => json_domains.push(v),
                        Err(e) => {
                            let _ = writeln!(err, "mtasts check: {e}");
                        }
                    }
                    Ok(())
                }
            };
        },
    ));
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    match format {
        Format::Json => {
            let doc = document(
                SCHEMA,
                serde_json::json!({
                    "checked_at": mtasts_core::json::rfc3339(now),
                    "domains": json_domains,
                    "summary": summary,
                }),
            );
            let _ = serde_json::to_writer_pretty(&mut *out, &doc);
            let _ = writeln!(out);
        }
        Format::Jsonl if bulk => {
            let _ = write_table(err, &summary);
        }
        Format::Human if bulk => {
            let _ = write_table(out, &summary);
        }
        _ => {}
    }
    exit_code(&summary)
}

#[cfg(test)]
mod tests {
    use super::progress_text;

    #[test]
    fn progress_says_one_domain_the_total_and_a_sane_rate() {
        assert_eq!(progress_text(1, None, 0.5), "1 domain checked");
        assert_eq!(progress_text(1, Some(1), 0.5), "1 of 1 domain checked");
        assert_eq!(
            progress_text(3, Some(83), 2.0),
            "3 of 83 domains checked, 1.5/s"
        );
        assert_eq!(progress_text(500, None, 10.0), "500 domains checked, 50/s");
        assert_eq!(
            progress_text(2, Some(5), 600.0),
            "2 of 5 domains checked, 300 s each"
        );
        assert_eq!(progress_text(0, Some(2), 0.0), "0 of 2 domains checked");
    }
}
