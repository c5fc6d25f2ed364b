//! `mtasts check`: the domain owner's end-to-end check, for one domain or a million.

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use mtasts_check::assess::SenderOutcome;
use mtasts_check::obs::{AddressLookup, CertVerdict};
use mtasts_check::{CheckConfig, Checker, DomainReport};
use mtasts_core::Severity;

/// Exit status when the worst finding is a warning.
pub(crate) const EXIT_WARNINGS: u8 = 3;

/// Where to look and how long to wait: shared by `check`, `init` and `demo`.
#[derive(Args, Clone, Debug)]
pub(crate) struct NetArgs {
    /// DNS server to ask, ADDRESS:PORT (default: the system's resolvers)
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns: Option<SocketAddr>,
    /// Trust these CA certificates (PEM) instead of the platform's store
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// SMTP port of the MX hosts (25 on the internet; for labs)
    #[arg(long, value_name = "PORT", default_value_t = 25)]
    pub smtp_port: u16,
    /// HTTPS port of the policy host (443 on the internet; for labs)
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub https_port: u16,
    /// Timeout of each DNS query, seconds
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub dns_timeout: u64,
    /// TCP connect timeout, seconds
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Deadline of the whole policy fetch, seconds
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub fetch_timeout: u64,
    /// Timeout of each SMTP reply and of the TLS handshake, seconds
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub smtp_timeout: u64,
    /// Policy size limit in bytes (RFC 8461 §3.3 suggests 64 KiB)
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_body: u64,
    /// Accept a policy served with a media type other than text/plain (as a warning)
    #[arg(long)]
    pub lenient_media_type: bool,
    /// The name sent in EHLO
    #[arg(long, value_name = "NAME", default_value = "mtasts-check.invalid")]
    pub helo_name: String,
    /// Most simultaneous connections to one IP address (across all domains)
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub per_address_connections: usize,
}

impl NetArgs {
    pub(crate) fn config(&self) -> CheckConfig {
        CheckConfig {
            dns: self.dns,
            dns_timeout: Duration::from_secs(self.dns_timeout.max(1)),
            ca_file: self.ca_file.clone(),
            https_port: self.https_port,
            smtp_port: self.smtp_port,
            connect_timeout: Duration::from_secs(self.connect_timeout.max(1)),
            fetch_timeout: Duration::from_secs(self.fetch_timeout.max(1)),
            smtp_timeout: Duration::from_secs(self.smtp_timeout.max(1)),
            max_body: self.max_body,
            require_text_plain: !self.lenient_media_type,
            helo_name: self.helo_name.clone(),
            per_address_connections: self.per_address_connections.max(1),
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
    /// Domains checked at once
    #[arg(long, short = 'j', value_name = "N", default_value_t = 64)]
    pub concurrency: usize,
    /// No progress bar (it is shown only on a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,
    /// Print every finding id as Markdown (docs/checks.md) and exit
    #[arg(long)]
    pub list_findings: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Colours, only on a terminal and without NO_COLOR.
#[derive(Clone, Copy)]
pub(crate) struct Style {
    on: bool,
}

impl Style {
    pub(crate) fn detect(is_tty: bool) -> Style {
        Style {
            on: is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    fn paint(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn severity(self, s: Severity) -> String {
        let text = format!("{:<7}", s.to_string());
        match s {
            Severity::Error => self.paint("31", &text),
            Severity::Warning => self.paint("33", &text),
            Severity::Info => self.paint("2", &text),
        }
    }
    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

fn outcome_word(o: SenderOutcome) -> &'static str {
    match o {
        SenderOutcome::DeliverSecurely => "deliver securely",
        SenderOutcome::DeliverAndReport => "deliver and report",
        SenderOutcome::Defer => "refuse delivery (defer)",
        SenderOutcome::NoPolicy => "no policy (opportunistic TLS)",
        SenderOutcome::Bounce => "bounce",
    }
}

fn fmt_date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// The human report of one domain.
pub(crate) fn write_human(
    out: &mut dyn Write,
    r: &DomainReport,
    style: Style,
    now: i64,
) -> io::Result<()> {
    writeln!(
        out,
        "{}  {}",
        style.bold(&r.domain),
        style.bold(outcome_word(r.verdict.outcome))
    )?;
    writeln!(out, "  verdict  {}", r.verdict.summary)?;
    if let Some(p) = &r.policy {
        writeln!(
            out,
            "  policy   mode {}, max_age {}, mx {} (id {})",
            p.mode,
            p.max_age,
            p.mx.join(" "),
            p.id
        )?;
    }
    for h in &r.observations.mx_hosts {
        match &h.addresses {
            AddressLookup::Found { .. } => {}
            _ => writeln!(out, "  MX {:>3} {}  (no address)", h.preference, h.name)?,
        }
        for p in &h.smtp {
            let tls = match &p.tls {
                Some(t) => {
                    let leaf = t.chain.first();
                    let cert = match &t.verdict {
                        CertVerdict::Valid => format!(
                            "certificate valid until {} ({} days) for {}",
                            leaf.map_or_else(String::new, |l| fmt_date(l.not_after)),
                            leaf.map_or(0, |l| (l.not_after - now) / 86_400),
                            leaf.map_or_else(String::new, |l| l.names.join(", "))
                        ),
                        other => format!("certificate {}", verdict_text(other)),
                    };
                    format!("{} {}, {cert}", t.version, t.cipher)
                }
                None if p.starttls_offered == Some(false) => "no STARTTLS".to_owned(),
                None => match &p.failure {
                    Some(f) => f.reason.clone(),
                    None => "no TLS".to_owned(),
                },
            };
            writeln!(
                out,
                "  MX {:>3} {} [{}]  {tls}",
                h.preference, h.name, p.address
            )?;
        }
    }
    let shown: Vec<_> = r.findings.iter().collect();
    if shown.is_empty() {
        writeln!(out, "  findings none")?;
    }
    for f in shown {
        writeln!(
            out,
            "  {} {}  {}",
            style.severity(f.severity),
            f.id,
            f.subject
        )?;
        writeln!(out, "          {}", f.message)?;
        if f.severity > Severity::Info && !f.fix.is_empty() {
            writeln!(out, "          fix: {} [{}]", f.fix, f.rule)?;
        }
    }
    writeln!(out, "  next     {}", r.verdict.next_step)?;
    writeln!(out)
}

fn verdict_text(v: &CertVerdict) -> String {
    match v {
        CertVerdict::Valid => "valid".into(),
        CertVerdict::Expired { not_after } => format!("expired {}", fmt_date(*not_after)),
        CertVerdict::NotYetValid { not_before } => {
            format!("not valid before {}", fmt_date(*not_before))
        }
        CertVerdict::NameMismatch { presented, .. } => {
            format!("for {}", presented.join(", "))
        }
        CertVerdict::SelfSigned => "self-signed".into(),
        CertVerdict::UntrustedCa { .. } => "from an untrusted CA".into(),
        CertVerdict::ChainIncomplete { .. } => "chain incomplete".into(),
        CertVerdict::Invalid { reason } => format!("invalid ({reason})"),
    }
}

/// Counts for the final table.
#[derive(Default, serde::Serialize)]
pub(crate) struct Summary {
    pub domains: usize,
    pub invalid_input: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    pub categories: BTreeMap<&'static str, usize>,
    pub worst: Option<Severity>,
}

impl Summary {
    pub(crate) fn add(&mut self, r: &DomainReport) {
        self.domains += 1;
        *self.outcomes.entry(r.verdict.outcome.as_str()).or_default() += 1;
        for c in &r.categories {
            *self.categories.entry(c).or_default() += 1;
        }
        self.worst = self.worst.max(r.worst);
    }

    pub(crate) fn exit_code(&self) -> u8 {
        if self.invalid_input > 0 {
            return crate::EXIT_TROUBLE;
        }
        match self.worst {
            Some(Severity::Error) => crate::EXIT_FINDINGS,
            Some(Severity::Warning) => EXIT_WARNINGS,
            _ => crate::EXIT_OK,
        }
    }

    /// The adoption and misconfiguration table (the categories of published MTA-STS studies).
    pub(crate) fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        let n = self.domains.max(1);
        let pct = |k: usize| 100.0 * k as f64 / n as f64;
        writeln!(
            out,
            "{} domain{} checked",
            self.domains,
            if self.domains == 1 { "" } else { "s" }
        )?;
        if self.invalid_input > 0 {
            writeln!(
                out,
                "{} input lines were not domain names",
                self.invalid_input
            )?;
        }
        writeln!(
            out,
            "\n  {:<28} {:>8} {:>7}",
            "category", "domains", "share"
        )?;
        let rows: &[(&str, &str)] = &[
            ("enforce", "mode enforce"),
            ("testing", "mode testing"),
            ("none", "mode none"),
            ("no-policy", "no usable policy"),
            ("no-record", "  no MTA-STS record"),
            ("dns-failure", "  record lookup failed"),
            ("invalid-record", "  invalid record"),
            ("fetch-failure", "  policy fetch failure"),
            ("invalid-policy", "  invalid policy"),
            ("mx-not-covered", "MX not covered by policy"),
            ("certificate-problem", "MX certificate problem"),
            ("starttls-problem", "MX STARTTLS problem"),
            ("no-tlsrpt", "no valid TLS-RPT record"),
        ];
        for (key, label) in rows {
            let k = self.categories.get(key).copied().unwrap_or(0);
            writeln!(out, "  {label:<28} {k:>8} {:>6.1}%", pct(k))?;
        }
        writeln!(
            out,
            "\n  {:<28} {:>8} {:>7}",
            "a sender would", "domains", "share"
        )?;
        for o in [
            SenderOutcome::DeliverSecurely,
            SenderOutcome::DeliverAndReport,
            SenderOutcome::Defer,
            SenderOutcome::NoPolicy,
            SenderOutcome::Bounce,
        ] {
            let k = self.outcomes.get(o.as_str()).copied().unwrap_or(0);
            writeln!(out, "  {:<28} {k:>8} {:>6.1}%", o.as_str(), pct(k))?;
        }
        Ok(())
    }
}

/// Where domains come from: the command line, then the input file (read lazily).
fn domain_source(
    domains: Vec<String>,
    input: Option<PathBuf>,
) -> io::Result<Box<dyn Iterator<Item = (String, io::Result<String>)> + Send>> {
    let args = domains.into_iter().map(|d| ("argument".to_owned(), Ok(d)));
    let Some(path) = input else {
        return Ok(Box::new(args));
    };
    let (name, reader): (String, Box<dyn BufRead + Send>) = if path.as_os_str() == "-" {
        ("stdin".into(), Box::new(io::BufReader::new(io::stdin())))
    } else {
        let f = std::fs::File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        (path.display().to_string(), Box::new(io::BufReader::new(f)))
    };
    let lines = reader.lines().enumerate().filter_map(move |(i, line)| {
        let place = format!("{name}:{}", i + 1);
        match line {
            Err(e) => Some((place, Err(e))),
            Ok(l) => {
                let l = l.split('#').next().unwrap_or("").trim().to_owned();
                if l.is_empty() {
                    None
                } else {
                    Some((place, Ok(l)))
                }
            }
        }
    });
    Ok(Box::new(args.chain(lines)))
}

/// Runs the checks over `source` with `concurrency` in flight, handing results to `sink` in
/// input order.
pub(crate) async fn run_all(
    checker: &Checker,
    source: Box<dyn Iterator<Item = (String, io::Result<String>)> + Send>,
    concurrency: usize,
    now: i64,
    mut sink: impl FnMut(usize, String, Result<DomainReport, String>),
) {
    // Reading the input happens on a blocking thread; lines flow through a bounded channel.
    let (tx, rx) = tokio::sync::mpsc::channel::<(String, io::Result<String>)>(1024);
    let reader = tokio::task::spawn_blocking(move || {
        for item in source {
            if tx.blocking_send(item).is_err() {
                break;
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
            .enumerate()
            .map(|(i, (place, line))| {
                let checker = checker.clone();
                async move {
                    let result = match line {
                        Err(e) => Err(format!("{place}: cannot read: {e}")),
                        Ok(d) => match checker.check(&d, now).await {
                            Ok(r) => Ok(r),
                            Err(e) => Err(format!("{place}: {e}")),
                        },
                    };
                    (i, place, result)
                }
            })
            .buffer_unordered(concurrency.max(1));
    futures_util::pin_mut!(stream);
    let mut pending: BTreeMap<usize, (String, Result<DomainReport, String>)> = BTreeMap::new();
    let mut next = 0usize;
    while let Some((i, place, result)) = stream.next().await {
        pending.insert(i, (place, result));
        while let Some((place, result)) = pending.remove(&next) {
            sink(next, place, result);
            next += 1;
        }
    }
    for (i, (place, result)) in std::mem::take(&mut pending) {
        sink(i, place, result);
    }
    let _ = reader.await;
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

/// `mtasts check`.
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
    let source = match domain_source(a.domains, a.input) {
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
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos} domains checked  {per_sec}  {elapsed}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    });
    let now = now();
    let mut summary = Summary::default();
    let mut json_domains: Vec<serde_json::Value> = Vec::new();
    rt.block_on(run_all(
        &checker,
        source,
        a.concurrency,
        now,
        |_, _, result| {
            if let Some(pb) = &progress {
                pb.inc(1);
            }
            let report = match result {
                Ok(r) => r,
                Err(msg) => {
                    summary.invalid_input += 1;
                    let line = match format {
                        Format::Human => format!("mtasts check: {msg}"),
                        _ => serde_json::json!({ "error": msg }).to_string(),
                    };
                    match format {
                        Format::Json => json_domains.push(serde_json::json!({ "error": msg })),
                        Format::Jsonl => {
                            let _ = writeln!(out, "{line}");
                        }
                        Format::Human => {
                            let _ = writeln!(err, "{line}");
                        }
                    }
                    return;
                }
            };
            summary.add(&report);
            // A closed pipe (`mtasts check ... | head`) is not worth a message, as elsewhere.
            let _ = match format {
                Format::Human => {
                    if let Some(pb) = &progress {
                        pb.suspend(|| write_human(out, &report, style, now))
                    } else {
                        write_human(out, &report, style, now)
                    }
                }
                Format::Jsonl => serde_json::to_writer(&mut *out, &report)
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
            let doc = serde_json::json!({
                "schema": "mtasts-check/1",
                "checked_at": now,
                "domains": json_domains,
                "summary": summary,
            });
            let _ = serde_json::to_writer_pretty(&mut *out, &doc);
            let _ = writeln!(out);
        }
        Format::Jsonl if bulk => {
            let _ = summary.write_table(err);
        }
        Format::Human if bulk => {
            let _ = summary.write_table(out);
        }
        _ => {}
    }
    summary.exit_code()
}
