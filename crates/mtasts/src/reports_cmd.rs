//! `mtasts report ingest|quarantine|summary|readiness|prune`: the received reports, kept in a
//! store (SQLite by default, PostgreSQL with `--db postgres://…`). Arguments and printing
//! only; the pipeline, the store and the decisions are libraries.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use mtasts_core::text::escape;
use mtasts_core::tlsrpt::dkim::DkimRequirements;
use mtasts_core::tlsrpt::readiness::Thresholds;
use mtasts_net::dns::{Dns, DnsSettings};
use mtasts_tlsrpt_receive::analyse::{self, Step};
use mtasts_tlsrpt_receive::ingest::{Ingester, Retried};
use mtasts_tlsrpt_receive::view;
use mtasts_tlsrpt_store::{Filter, Store};
use serde_json::json;

use crate::check_cmd::{NetArgs, runtime};
use crate::report_cmd::LimitArgs;
use crate::{EXIT_FINDINGS, EXIT_OK, EXIT_TROUBLE};

/// Where the reports are kept.
#[derive(Args, Clone, Debug)]
pub(crate) struct DbArgs {
    /// The report store: a path or sqlite:PATH (SQLite), or postgres://USER@HOST/DB.
    /// Default: $XDG_DATA_HOME/mtasts/reports.db, else ~/.local/share/mtasts/reports.db,
    /// else /var/lib/mtasts/reports.db (created on first use)
    #[arg(long, value_name = "URL", env = "MTASTS_DB")]
    pub db: Option<String>,
}

impl DbArgs {
    async fn open(&self) -> Result<Store, String> {
        let url = match &self.db {
            Some(u) => u.clone(),
            None => {
                let path = mtasts_tlsrpt_store::default_path();
                if let Some(dir) = path.parent()
                    && !dir.exists()
                {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                path.display().to_string()
            }
        };
        Store::open(&url).await.map_err(|e| e.to_string())
    }
}

/// How DKIM keys are looked up and what is required of them.
#[derive(Args, Clone, Debug)]
pub(crate) struct VerifyArgs {
    /// DNS server for the DKIM key lookups, ADDRESS or ADDRESS:PORT (port 53 by default; default: the system's resolvers)
    #[arg(long, value_name = "ADDR[:PORT]", env = "MTASTS_DNS", value_parser = crate::output::dns_server)]
    pub dns: Option<SocketAddr>,
    /// Timeout of each DNS query, seconds (1 to 60)
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub dns_timeout: u64,
    /// Refuse mailed reports signed with a DKIM key not declared for TLS-RPT (s=tlsrpt;
    /// RFC 8460 §3 allows ignoring them, but large reporters sign with their mail keys)
    #[arg(long)]
    pub require_tlsrpt_key: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl VerifyArgs {
    fn ingester(&self, store: Store) -> Result<Ingester, String> {
        let dns = Dns::new(&DnsSettings {
            servers: self.dns.into_iter().collect(),
            timeout: Duration::from_secs(self.dns_timeout),
            attempts: 2,
        })
        .map_err(|e| e.to_string())?;
        Ok(Ingester::new(
            store,
            dns.shared(),
            self.limits.limits(),
            DkimRequirements {
                tlsrpt_service: self.require_tlsrpt_key,
            },
        ))
    }
}

#[derive(Args, Debug)]
pub(crate) struct IngestArgs {
    /// Files (.json, .json.gz, .gz, .eml), mbox files, Maildir folders, or directories of
    /// these (read recursively)
    #[arg(value_name = "PATH", required_unless_present = "imap")]
    pub paths: Vec<PathBuf>,
    /// Fetch report mail over IMAP: imaps://USER@HOST[:PORT]/FOLDER, or imap://… (STARTTLS
    /// required; never a plaintext login)
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "paths",
        requires = "password_file"
    )]
    pub imap: Option<String>,
    /// The IMAP password, in a file (one trailing newline is ignored)
    #[arg(long, value_name = "FILE", requires = "imap")]
    pub password_file: Option<PathBuf>,
    /// Move processed messages to this folder (created if missing); without it they are
    /// flagged \Seen and $MtastsIngested so that the next run skips them
    #[arg(long, value_name = "FOLDER", requires = "imap")]
    pub move_to: Option<String>,
    /// Keep running: wait for new mail with IDLE, reconnect with backoff on failures, until
    /// SIGINT or SIGTERM
    #[arg(long, requires = "imap")]
    pub watch: bool,
    /// Trust these CA certificates (PEM) for the IMAP server instead of the platform's
    #[arg(long, value_name = "FILE", requires = "imap")]
    pub imap_ca_file: Option<PathBuf>,
    /// Print the counts as JSON
    #[arg(long)]
    pub json: bool,
    /// No progress bar (it is shown only on a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,
    /// Inputs taken through the pipeline at once (1-1024): while some are stored (committed
    /// together), the next are read, parsed and verified on every core
    #[arg(long, value_name = "N", default_value_t = analyse::InFlight::DEFAULT.inputs as u16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub in_flight: u16,
    /// Bytes of input in the pipeline at once, at most (bounds the memory they take; an input
    /// larger than this goes through alone)
    #[arg(long, value_name = "BYTES", default_value_t = analyse::InFlight::DEFAULT.bytes as u64, value_parser = clap::value_parser!(u64).range(1..=(1 << 40)))]
    pub in_flight_bytes: u64,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ReceiveArgs {
    /// Address to listen on, ADDRESS:PORT; repeatable (IPv4 and IPv6: `--listen 0.0.0.0:443
    /// --listen [::]:443`)
    #[arg(long, required = true, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// The certificate chain (PEM, leaf first)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP: only behind a reverse proxy that terminates TLS (RFC 8460 §5.4
    /// requires HTTPS)
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub plain_http: bool,
    /// The paths reports are POSTed to; repeatable (default: / and /tlsrpt)
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// Most connections open at once (1 to 65536)
    #[arg(long, value_name = "N", default_value_t = mtasts_tlsrpt_receive::https::ServeLimits::DEFAULT.max_connections, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub max_connections: usize,
    /// Most POSTs in progress at once; one more is answered 503 (1 to 1024)
    #[arg(long, value_name = "N", default_value_t = mtasts_tlsrpt_receive::https::ReceiverLimits::DEFAULT.max_concurrent_requests, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub max_concurrent_requests: usize,
    /// Seconds a request body may take to arrive (1 to 3600)
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Log level: error, warn, info, debug, trace, or a tracing filter
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum QuarantineCommand {
    /// List what is in quarantine, oldest first
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show one entry: why, and the input as received
    Show {
        /// The entry's number
        id: i64,
        /// Print JSON (the input as base64)
        #[arg(long)]
        json: bool,
        /// Write the input as received to standard output, nothing else
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Run entries through the pipeline again (after a DNS fix, or with a newer mtasts)
    Retry {
        /// The entries' numbers (default: every entry)
        ids: Vec<i64>,
        /// Count them even if they still cannot be authenticated (you vouch for them)
        #[arg(long)]
        trust: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        verify: VerifyArgs,
    },
}

#[derive(Args, Debug)]
pub(crate) struct SummaryArgs {
    /// Only this policy domain
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// From this day (YYYY-MM-DD, inclusive)
    #[arg(long, value_name = "DATE")]
    pub since: Option<NaiveDate>,
    /// Up to this day (YYYY-MM-DD, inclusive)
    #[arg(long, value_name = "DATE")]
    pub until: Option<NaiveDate>,
    /// Count reports that could not be authenticated too (they are in quarantine)
    #[arg(long)]
    pub include_unverified: bool,
    /// Print JSON
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV: domain,day,dimension,name,successful,failed
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ReadinessArgs {
    /// The policy domain
    pub domain: String,
    /// Days of reports under the testing policy needed (1 to 365)
    #[arg(long, value_name = "DAYS", default_value_t = Thresholds::default().min_days, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub min_days: u32,
    /// Sessions those reports must cover
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().min_sessions)]
    pub min_sessions: u64,
    /// Distinct reporting organisations needed (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().min_organizations, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub min_organizations: usize,
    /// For an enforced domain, the recent days looked at for regressions (1 to 365)
    #[arg(long, value_name = "DAYS", default_value_t = Thresholds::default().regression_days, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub regression_days: u32,
    /// Reports from this day on (default: twice the days needed, back from today)
    #[arg(long, value_name = "DATE")]
    pub since: Option<NaiveDate>,
    /// Judge as of this day (default: today, UTC)
    #[arg(long, value_name = "DATE")]
    pub today: Option<NaiveDate>,
    /// Count unauthenticated reports too
    #[arg(long)]
    pub include_unverified: bool,
    /// Do not look at the live deployment (no `mtasts check`); the mode is then taken from
    /// what the reports say senders saw
    #[arg(long)]
    pub offline: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub(crate) struct PruneArgs {
    /// Delete reports of days older than this many days, and quarantine entries as old
    /// (1 to 36500)
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub older_than: u32,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

fn today() -> NaiveDate {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()).date_naive()
}

fn fail(err: &mut dyn Write, what: &str, e: impl std::fmt::Display) -> u8 {
    let _ = writeln!(err, "mtasts report {what}: {}", escape(&e.to_string()));
    EXIT_TROUBLE
}

/// `mtasts report ingest PATH...`: 0 when every input was read (whatever became of it), 2
/// when a path could not be read or the store failed.
pub(crate) fn ingest(a: IngestArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return EXIT_TROUBLE;
    };
    rt.block_on(async {
        let store = match a.db.open().await {
            Ok(s) => s,
            Err(e) => return fail(err, "ingest", e),
        };
        let ingester = match a.verify.ingester(store) {
            Ok(i) => i,
            Err(e) => return fail(err, "ingest", e),
        };
        if let Some(url) = &a.imap {
            return ingest_imap(&a, url, ingester, out, err).await;
        }
        let bar = (!a.no_progress && std::io::stderr().is_terminal()).then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos} inputs, {binary_bytes} read ({per_sec}) {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        let mut unreadable = Vec::new();
        let result = analyse::ingest_paths(
            &ingester,
            &a.paths,
            analyse::InFlight {
                inputs: usize::from(a.in_flight),
                bytes: usize::try_from(a.in_flight_bytes).unwrap_or(usize::MAX),
            },
            |step| match step {
                Step::Done { bytes, origin, .. } => {
                    if let Some(pb) = &bar {
                        pb.inc(1);
                        pb.set_message(escape(origin).into_owned());
                        let _ = bytes;
                    }
                }
                Step::Unreadable(e) => unreadable.push(e.to_string()),
            },
        )
        .await;
        if let Some(pb) = &bar {
            pb.finish_and_clear();
        }
        for e in &unreadable {
            let _ = writeln!(err, "mtasts report ingest: cannot read {}", escape(e));
        }
        let run = match result {
            Ok(r) => r,
            Err(e) => return fail(err, "ingest", e),
        };
        let c = run.counts;
        let printed = if a.json {
            emit(
                out,
                "mtasts-report-ingest/1",
                json!({
                    "read": c.read,
                    "stored": c.stored,
                    "duplicates": c.duplicates,
                    "quarantined": c.quarantined,
                    "unreadable": unreadable,
                    "store": ingester.store().target(),
                }),
            )
        } else {
            writeln!(out, "{c}")
        };
        if printed.is_err() {
            return EXIT_TROUBLE;
        }
        if unreadable.is_empty() {
            EXIT_OK
        } else {
            EXIT_TROUBLE
        }
    })
}

/// `mtasts report receive --listen ADDR`: the RFC 8460 §5.4 HTTPS receiver alone, until
/// SIGINT or SIGTERM (exit 0), or 2 when it cannot start.
pub(crate) fn receive(a: ReceiveArgs, err: &mut dyn Write) -> u8 {
    use mtasts_tlsrpt_receive::https::{self, ReceiverLimits, ServeLimits};
    if a.tls_cert.is_none() && !a.plain_http {
        return fail(
            err,
            "receive",
            "give --tls-cert and --tls-key (or --plain-http behind a TLS-terminating proxy)",
        );
    }
    let Some(rt) = runtime(err) else {
        return EXIT_TROUBLE;
    };
    rt.block_on(async {
        if let Err(e) = mtasts_daemon::logging::init(&mtasts_daemon::config::LogConfig {
            level: a.log_level.clone(),
            ..Default::default()
        }) {
            return fail(err, "receive", format!("--log-level: {e}"));
        }
        let tls = match (&a.tls_cert, &a.tls_key) {
            (Some(c), Some(k)) => match mtasts_net::tls::server_config(c, k, &[b"h2", b"http/1.1"])
            {
                Ok(t) => Some(t),
                Err(e) => return fail(err, "receive", e),
            },
            _ => None,
        };
        let store = match a.db.open().await {
            Ok(s) => s,
            Err(e) => return fail(err, "receive", e),
        };
        let ingester = match a.verify.ingester(store) {
            Ok(i) => i,
            Err(e) => return fail(err, "receive", e),
        };
        let limits = ReceiverLimits {
            max_concurrent_requests: a.max_concurrent_requests,
            request_timeout: Duration::from_secs(a.request_timeout),
            ..ReceiverLimits::for_input(ingester.limits())
        };
        let paths: Vec<&str> = if a.paths.is_empty() {
            https::DEFAULT_PATHS.to_vec()
        } else {
            a.paths.iter().map(String::as_str).collect()
        };
        let router = match https::router_at(ingester, limits, &paths) {
            Ok(r) => r,
            Err(e) => return fail(err, "receive", e),
        };
        let serve_limits = ServeLimits {
            max_connections: a.max_connections,
            ..ServeLimits::DEFAULT
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut servers = tokio::task::JoinSet::new();
        for addr in &a.listen {
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => return fail(err, "receive", format!("cannot listen on {addr}: {e}")),
            };
            let _ = writeln!(
                err,
                "mtasts report receive: listening on {} ({}), paths {}",
                listener
                    .local_addr()
                    .map_or_else(|_| addr.to_string(), |a| a.to_string()),
                if tls.is_some() { "https" } else { "plain http" },
                paths.join(" ")
            );
            let mut stop = stop_rx.clone();
            servers.spawn(https::serve(
                listener,
                tls.clone(),
                router.clone(),
                serve_limits.clone(),
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            ));
        }
        let signals = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut t), Ok(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {}
                        _ = i.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = signals => {
                let _ = stop_tx.send(true);
            }
            Some(done) = servers.join_next() => {
                let _ = stop_tx.send(true);
                if let Ok(Err(e)) = done {
                    return fail(err, "receive", e);
                }
            }
        }
        while servers.join_next().await.is_some() {}
        EXIT_OK
    })
}

/// `mtasts report ingest --imap URL`: one pass, or `--watch` until a stop signal.
async fn ingest_imap(
    a: &IngestArgs,
    url: &str,
    ingester: Ingester,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    use mtasts_tlsrpt_receive::imap::{ImapIngester, ImapSource};
    let Some(password) = &a.password_file else {
        return fail(err, "ingest", "--imap needs --password-file");
    };
    let mut source = match ImapSource::new(url, password) {
        Ok(s) => s,
        Err(e) => return fail(err, "ingest", e),
    };
    source.move_to = a.move_to.clone();
    source.roots = mtasts_net::tls::TrustRoots::from_option(a.imap_ca_file.as_deref());
    let imap = match ImapIngester::new(source, ingester) {
        Ok(i) => i,
        Err(e) => return fail(err, "ingest", e),
    };
    let print = |out: &mut dyn Write, c: &mtasts_tlsrpt_receive::ingest::Counts| {
        if a.json {
            emit(
                out,
                "mtasts-report-ingest-imap/1",
                json!({
                    "read": c.read,
                    "stored": c.stored,
                    "duplicates": c.duplicates,
                    "quarantined": c.quarantined,
                    "imap": imap.source().url(),
                }),
            )
        } else {
            writeln!(out, "{c}")
        }
    };
    if !a.watch {
        return match imap.run_once().await {
            Ok(c) => {
                if print(out, &c).is_err() {
                    EXIT_TROUBLE
                } else {
                    EXIT_OK
                }
            }
            Err(e) => fail(err, "ingest", e),
        };
    }
    if let Err(e) = mtasts_daemon::logging::init(&mtasts_daemon::config::LogConfig::default()) {
        return fail(err, "ingest", e);
    }
    let stop = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    let json = a.json;
    let result = imap
        .watch(stop, |c| {
            if c.read > 0 {
                if json {
                    tracing::info!(
                        read = c.read,
                        stored = c.stored,
                        duplicates = c.duplicates,
                        quarantined = c.quarantined,
                        "IMAP pass"
                    );
                } else {
                    tracing::info!("IMAP pass: {c}");
                }
            }
        })
        .await;
    match result {
        Ok(total) => {
            if print(out, &total).is_err() {
                EXIT_TROUBLE
            } else {
                EXIT_OK
            }
        }
        Err(e) => fail(err, "ingest", e),
    }
}

/// `mtasts report quarantine …`.
pub(crate) fn quarantine(c: QuarantineCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return EXIT_TROUBLE;
    };
    rt.block_on(async {
        match c {
            QuarantineCommand::List { json, db } => {
                let store = match db.open().await {
                    Ok(s) => s,
                    Err(e) => return fail(err, "quarantine", e),
                };
                let entries = match store.quarantined().await {
                    Ok(e) => e,
                    Err(e) => return fail(err, "quarantine", e),
                };
                let r = if json {
                    emit(
                        out,
                        "mtasts-report-quarantine-list/1",
                        json!({ "quarantine": entries }),
                    )
                } else {
                    view::quarantine_text(out, &entries)
                };
                if r.is_err() { EXIT_TROUBLE } else { EXIT_OK }
            }
            QuarantineCommand::Show { id, json, raw, db } => {
                let store = match db.open().await {
                    Ok(s) => s,
                    Err(e) => return fail(err, "quarantine show", e),
                };
                let (entry, bytes) = match store.quarantine_entry(id).await {
                    Ok(Some(x)) => x,
                    Ok(None) => {
                        return fail(err, "quarantine show", format!("no entry #{id}"));
                    }
                    Err(e) => return fail(err, "quarantine show", e),
                };
                let r = if raw {
                    out.write_all(&bytes)
                } else if json {
                    emit(
                        out,
                        "mtasts-report-quarantine-show/1",
                        json!({ "entry": entry, "input_base64": BASE64_STANDARD.encode(&bytes) }),
                    )
                } else {
                    view::quarantine_text(out, std::slice::from_ref(&entry)).and_then(|()| {
                        writeln!(
                            out,
                            "--- input, {} bytes, as received (escaped)",
                            bytes.len()
                        )?;
                        writeln!(out, "{}", mtasts_core::text::escape_bytes(excerpt(&bytes)))
                    })
                };
                if r.is_err() { EXIT_TROUBLE } else { EXIT_OK }
            }
            QuarantineCommand::Retry {
                ids,
                trust,
                json,
                db,
                verify,
            } => {
                let store = match db.open().await {
                    Ok(s) => s,
                    Err(e) => return fail(err, "quarantine retry", e),
                };
                let ids = if ids.is_empty() {
                    match store.quarantined().await {
                        Ok(list) => list.into_iter().map(|e| e.id).collect(),
                        Err(e) => return fail(err, "quarantine retry", e),
                    }
                } else {
                    ids
                };
                let ingester = match verify.ingester(store) {
                    Ok(i) => i,
                    Err(e) => return fail(err, "quarantine retry", e),
                };
                let mut results = Vec::new();
                let (mut released, mut still) = (0u64, 0u64);
                for id in ids {
                    match ingester.retry(id, trust).await {
                        Ok(Some(r)) => {
                            match &r {
                                Retried::Released { .. } => released += 1,
                                Retried::Still(_) => still += 1,
                            }
                            results.push((id, r));
                        }
                        Ok(None) => {
                            let _ = writeln!(err, "mtasts report quarantine retry: no entry #{id}");
                        }
                        Err(e) => return fail(err, "quarantine retry", e),
                    }
                }
                let r = if json {
                    let list: Vec<_> = results
                        .iter()
                        .map(|(id, r)| json!({ "id": id, "result": r }))
                        .collect();
                    emit(
                        out,
                        "mtasts-report-quarantine-retry/1",
                        json!({ "released": released, "still": still, "entries": list }),
                    )
                } else {
                    let mut r = Ok(());
                    for (id, res) in &results {
                        r = r.and_then(|()| match res {
                            Retried::Released { report, trust } => writeln!(
                                out,
                                "#{id}: released, report {report} counts ({})",
                                trust.as_str()
                            ),
                            Retried::Still(reason) => writeln!(
                                out,
                                "#{id}: still quarantined: {} [{}]",
                                escape(&reason.message),
                                escape(&reason.code)
                            ),
                        });
                    }
                    r.and_then(|()| writeln!(out, "{released} released, {still} still quarantined"))
                };
                if r.is_err() { EXIT_TROUBLE } else { EXIT_OK }
            }
        }
    })
}

/// The first bytes of a quarantined input, for the terminal.
fn excerpt(b: &[u8]) -> &[u8] {
    &b[..b.len().min(4096)]
}

/// `mtasts report summary`.
pub(crate) fn summary(a: SummaryArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return EXIT_TROUBLE;
    };
    rt.block_on(async {
        let store = match a.db.open().await {
            Ok(s) => s,
            Err(e) => return fail(err, "summary", e),
        };
        let filter = Filter {
            domain: a
                .domain
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase()),
            since: a.since,
            until: a.until,
            include_unverified: a.include_unverified,
        };
        let days = match store.summary(&filter).await {
            Ok(d) => d,
            Err(e) => return fail(err, "summary", e),
        };
        let r = if a.json {
            let (s, f) = days.iter().fold((0u64, 0u64), |(s, f), d| {
                (s.saturating_add(d.successful), f.saturating_add(d.failed))
            });
            emit(
                out,
                "mtasts-report-summary/1",
                json!({
                    "days": days,
                    "total": { "successful": s, "failed": f },
                    "include_unverified": a.include_unverified,
                }),
            )
        } else if a.csv {
            view::summary_csv(out, &days)
        } else {
            view::summary_text(out, &days)
        };
        if r.is_err() { EXIT_TROUBLE } else { EXIT_OK }
    })
}

/// `mtasts report readiness DOMAIN`: 0 READY (or ENFORCED without regression), 1 NOT READY
/// or regressed, 2 trouble.
pub(crate) fn readiness(a: ReadinessArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return EXIT_TROUBLE;
    };
    rt.block_on(async {
        let domain = a.domain.trim_end_matches('.').to_ascii_lowercase();
        let store = match a.db.open().await {
            Ok(s) => s,
            Err(e) => return fail(err, "readiness", e),
        };
        let t = Thresholds {
            min_days: a.min_days,
            min_sessions: a.min_sessions,
            min_organizations: a.min_organizations,
            regression_days: a.regression_days,
        };
        let today = a.today.unwrap_or_else(today);
        let filter = Filter {
            domain: None,
            since: Some(a.since.unwrap_or_else(|| analyse::default_since(today, &t))),
            until: Some(today),
            include_unverified: a.include_unverified,
        };
        let live = if a.offline {
            None
        } else {
            let checker = match mtasts_check::Checker::new(a.net.config()) {
                Ok(c) => c,
                Err(e) => return fail(err, "readiness", e),
            };
            match checker.check(&domain, crate::check_cmd::now()).await {
                Ok(r) => Some(r.live()),
                Err(e) => return fail(err, "readiness", e),
            }
        };
        let r = match analyse::readiness_of(&store, &domain, &filter, live, today, &t).await {
            Ok(r) => r,
            Err(e) => return fail(err, "readiness", e),
        };
        let printed = if a.json {
            emit(
                out,
                "mtasts-report-readiness/1",
                json!({ "readiness": r, "thresholds": t }),
            )
        } else {
            view::readiness_text(out, &r)
        };
        if printed.is_err() {
            EXIT_TROUBLE
        } else if view::readiness_ok(&r) {
            EXIT_OK
        } else {
            EXIT_FINDINGS
        }
    })
}

/// `mtasts report prune --older-than DAYS`.
pub(crate) fn prune(a: PruneArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return EXIT_TROUBLE;
    };
    rt.block_on(async {
        let store = match a.db.open().await {
            Ok(s) => s,
            Err(e) => return fail(err, "prune", e),
        };
        let before = today()
            .checked_sub_days(chrono::Days::new(u64::from(a.older_than)))
            .unwrap_or(NaiveDate::MIN);
        let p = match store.prune(before).await {
            Ok(p) => p,
            Err(e) => return fail(err, "prune", e),
        };
        let r = if a.json {
            emit(
                out,
                "mtasts-report-prune/1",
                json!({ "before": before, "pruned": p }),
            )
        } else {
            writeln!(
                out,
                "pruned before {before}: {} reports, {} quarantine entries, {} raw inputs",
                p.reports, p.quarantined, p.raw
            )
        };
        if r.is_err() { EXIT_TROUBLE } else { EXIT_OK }
    })
}

/// One `--json` document on one line, its schema named first (`docs/json.md`).
fn emit(out: &mut dyn Write, schema: &str, body: serde_json::Value) -> std::io::Result<()> {
    writeln!(out, "{}", mtasts_core::json::document(schema, body))
}
