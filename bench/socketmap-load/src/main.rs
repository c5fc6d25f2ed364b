//! `socketmap-load`: a closed-loop load generator for the Postfix socketmap protocol
//! (socketmap_table(5)), used by `bench/resolver.sh` to compare policy daemons.
//!
//! Each of `--connections N` connections sends a request (`"<map> <domain>"` as a netstring),
//! waits for the reply, and sends the next one, as Postfix's `smtp` processes do
//! (`--pipeline 1`); a deeper pipeline keeps several requests outstanding per connection.
//! Two modes:
//!
//! - **load** (default): requests cycle through the domains (each connection starts at a
//!   different offset) for `--duration SECS` or until `--requests N` have been answered; the
//!   result is requests per second and the latency distribution.
//! - **cold** (`--cold`): every domain is asked exactly once, the domains handed out to the
//!   connections from one shared queue; the result is the wall time to answer them all.
//!
//! A reply not starting with `--expect-prefix` counts as an error, as do connection failures
//! and replies slower than `--timeout`. Latency is measured from just before a request is
//! written to just after its reply is read, with an HDR histogram (3 significant digits).

mod netstring;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The largest reply accepted (Postfix's default `socketmap_max_reply_size`).
const MAX_REPLY: usize = 100_000;
/// The longest a reply is quoted in the error summary.
const QUOTE_MAX: usize = 200;
/// Reconnection attempts per connection before it gives up.
const MAX_RECONNECTS: u32 = 100;
/// The longest any run may take, whatever the options say.
const HARD_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "socketmap-load",
    version,
    about = "Closed-loop load generator for the Postfix socketmap protocol",
    long_about = "Closed-loop load generator for the Postfix socketmap protocol.\n\n\
        Sends \"<map> <domain>\" netstrings over N connections, one outstanding request per \
        connection by default (as Postfix does), and reports requests/s, latency percentiles \
        and errors. --cold asks every domain exactly once and reports the wall time.\n\n\
        Exit status: 0 run completed (check the error count), 1 no request succeeded or the \
        server could not be reached, 2 usage error."
)]
struct Opts {
    /// TCP address of the socketmap server
    #[arg(
        long,
        value_name = "HOST:PORT",
        conflicts_with = "unix",
        required_unless_present = "unix"
    )]
    addr: Option<String>,
    /// UNIX socket of the socketmap server
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// Number of concurrent connections
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Run for this many seconds (load mode)
    #[arg(long, value_name = "SECS", conflicts_with = "requests")]
    duration: Option<f64>,
    /// Stop after this many answered requests in total (load mode)
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// The socketmap name sent before each domain
    #[arg(long, default_value = "postfix")]
    map: String,
    /// File with one domain per line (blank lines and `#` comments skipped)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "domain",
        required_unless_present = "domain"
    )]
    domains: Option<PathBuf>,
    /// A single domain to ask for
    #[arg(long, value_name = "D")]
    domain: Option<String>,
    /// Requests outstanding per connection (1 = wait for each reply, as Postfix does)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pipeline: u32,
    /// Count a reply that does not start with this as an error
    #[arg(long, value_name = "PREFIX")]
    expect_prefix: Option<String>,
    /// Ask every domain exactly once, spread over the connections; report the wall time
    #[arg(long, conflicts_with_all = ["duration", "requests"])]
    cold: bool,
    /// Seconds to wait for one reply before counting a timeout and reconnecting
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
    /// Upper bound on the whole run in seconds (requests and cold modes), at most 3600
    #[arg(long, value_name = "SECS", default_value_t = 900.0)]
    max_time: f64,
    /// Tokio worker threads (default: the number of CPUs)
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

/// Where to connect.
#[derive(Clone, Debug)]
enum Target {
    Tcp(String),
    Unix(PathBuf),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Tcp(a) => a.clone(),
            Target::Unix(p) => format!("unix:{}", p.display()),
        }
    }
}

/// How the connections share out the work.
#[derive(Debug)]
enum Plan {
    /// Until the deadline.
    Duration(Instant),
    /// Until this many requests have been sent in total (the counter is shared).
    Budget { total: u64, sent: AtomicU64 },
    /// Every domain once; the counter is the next index to hand out.
    Cold { next: AtomicUsize },
}

/// What every connection shares.
struct Shared {
    target: Target,
    /// Pre-encoded request netstrings, one per domain.
    requests: Vec<Vec<u8>>,
    plan: Plan,
    expect_prefix: Option<Vec<u8>>,
    pipeline: usize,
    timeout: Duration,
    /// Nobody sends after this.
    hard_deadline: Instant,
}

impl Shared {
    /// The index of the next request connection `conn` should send, or None when it is done.
    fn next_request(&self, cursor: &mut usize) -> Option<usize> {
        if Instant::now() >= self.hard_deadline {
            return None;
        }
        match &self.plan {
            Plan::Duration(deadline) => {
                if Instant::now() >= *deadline {
                    return None;
                }
            }
            Plan::Budget { total, sent } => {
                if sent.fetch_add(1, Ordering::Relaxed) >= *total {
                    return None;
                }
            }
            Plan::Cold { next } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                return (i < self.requests.len()).then_some(i);
            }
        }
        let i = *cursor % self.requests.len();
        *cursor = cursor.wrapping_add(1);
        Some(i)
    }
}

/// The outcome of one connection (merged at the end).
struct ConnStats {
    latency: Histogram<u64>,
    ok: u64,
    bad_replies: u64,
    io_errors: u64,
    timeouts: u64,
    reconnects: u32,
    first_bad_reply: Option<String>,
    first_io_error: Option<String>,
}

impl ConnStats {
    fn new() -> anyhow::Result<Self> {
        Ok(ConnStats {
            latency: new_histogram()?,
            ok: 0,
            bad_replies: 0,
            io_errors: 0,
            timeouts: 0,
            reconnects: 0,
            first_bad_reply: None,
            first_io_error: None,
        })
    }

    fn merge(&mut self, other: ConnStats) -> anyhow::Result<()> {
        self.latency
            .add(&other.latency)
            .context("merging latency histograms")?;
        self.ok += other.ok;
        self.bad_replies += other.bad_replies;
        self.io_errors += other.io_errors;
        self.timeouts += other.timeouts;
        self.reconnects += other.reconnects;
        if self.first_bad_reply.is_none() {
            self.first_bad_reply = other.first_bad_reply;
        }
        if self.first_io_error.is_none() {
            self.first_io_error = other.first_io_error;
        }
        Ok(())
    }

    fn errors(&self) -> u64 {
        self.bad_replies + self.io_errors + self.timeouts
    }
}

/// Latencies in nanoseconds, 1 ns to 1 hour, 3 significant digits.
fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).context("creating a latency histogram")
}

fn quote(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTE_MAX)]);
    format!("{s:?}")
}

/// A connected socket of either kind.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn connect(target: &Target) -> std::io::Result<Stream> {
    match target {
        Target::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
        Target::Unix(p) => Ok(Stream::Unix(tokio::net::UnixStream::connect(p).await?)),
    }
}

/// Why a connection's session ended.
enum SessionEnd {
    /// No more work.
    Done,
    /// The connection failed; reconnect and go on.
    Failed,
}

/// Run requests on one established connection until the work runs out or it fails.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    shared: &Shared,
    cursor: &mut usize,
    stats: &mut ConnStats,
) -> SessionEnd {
    let mut io = BufReader::with_capacity(16 * 1024, stream);
    let mut reply = Vec::with_capacity(256);
    // Send times of the outstanding requests, oldest first.
    let mut outstanding: std::collections::VecDeque<Instant> =
        std::collections::VecDeque::with_capacity(shared.pipeline);
    let mut exhausted = false;
    loop {
        while !exhausted && outstanding.len() < shared.pipeline {
            match shared.next_request(cursor) {
                Some(i) => {
                    let sent = Instant::now();
                    if let Err(e) = io.write_all(&shared.requests[i]).await {
                        stats.io_errors += 1 + outstanding.len() as u64;
                        stats
                            .first_io_error
                            .get_or_insert_with(|| format!("write: {e}"));
                        return SessionEnd::Failed;
                    }
                    outstanding.push_back(sent);
                }
                None => exhausted = true,
            }
        }
        let Some(&sent) = outstanding.front() else {
            return SessionEnd::Done;
        };
        match tokio::time::timeout(
            shared.timeout,
            netstring::read(&mut io, &mut reply, MAX_REPLY),
        )
        .await
        {
            Ok(Ok(())) => {
                let nanos = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
                stats.latency.saturating_record(nanos.max(1));
                outstanding.pop_front();
                let good = shared
                    .expect_prefix
                    .as_deref()
                    .is_none_or(|p| reply.starts_with(p));
                if good {
                    stats.ok += 1;
                } else {
                    stats.bad_replies += 1;
                    stats.first_bad_reply.get_or_insert_with(|| quote(&reply));
                }
            }
            Ok(Err(e)) => {
                stats.io_errors += outstanding.len() as u64;
                stats.first_io_error.get_or_insert_with(|| e.to_string());
                return SessionEnd::Failed;
            }
            Err(_) => {
                stats.timeouts += 1;
                stats.io_errors += outstanding.len().saturating_sub(1) as u64;
                stats
                    .first_io_error
                    .get_or_insert_with(|| format!("no reply within {:?}", shared.timeout));
                return SessionEnd::Failed;
            }
        }
    }
}

/// One connection's life: connect, run sessions, reconnect after failures (bounded).
async fn connection(shared: Arc<Shared>, id: usize, stream: Stream) -> anyhow::Result<ConnStats> {
    let mut stats = ConnStats::new()?;
    // Each connection starts at its own offset so that they do not all ask the same domain.
    let mut cursor = start_spread(id, shared.requests.len());
    let mut stream = Some(stream);
    loop {
        let s = match stream.take() {
            Some(s) => s,
            None => {
                if stats.reconnects >= MAX_RECONNECTS || Instant::now() >= shared.hard_deadline {
                    return Ok(stats);
                }
                stats.reconnects += 1;
                match connect(&shared.target).await {
                    Ok(s) => s,
                    Err(e) => {
                        stats.io_errors += 1;
                        stats
                            .first_io_error
                            .get_or_insert_with(|| format!("reconnect: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
        };
        let end = match s {
            Stream::Tcp(t) => session(t, &shared, &mut cursor, &mut stats).await,
            Stream::Unix(u) => session(u, &shared, &mut cursor, &mut stats).await,
        };
        if let SessionEnd::Done = end {
            return Ok(stats);
        }
    }
}

/// The starting offset of connection `id` in a list of `n` domains (golden-ratio spread, so
/// any number of connections start far apart).
fn start_spread(id: usize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let frac = (id as f64 * 0.618_033_988_749_895).fract();
    ((frac * n as f64) as usize).min(n - 1)
}

fn load_domains(opts: &Opts) -> anyhow::Result<Vec<String>> {
    if let Some(d) = &opts.domain {
        return Ok(vec![d.clone()]);
    }
    let Some(path) = &opts.domains else {
        bail!("give --domains FILE or --domain D");
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let list: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        bail!("{} lists no domains", path.display());
    }
    Ok(list)
}

/// The summary of a run.
struct Report {
    mode: &'static str,
    target: String,
    map: String,
    connections: u32,
    pipeline: u32,
    domains: usize,
    elapsed: Duration,
    stats: ConnStats,
}

impl Report {
    fn answered(&self) -> u64 {
        self.stats.ok + self.stats.bad_replies
    }

    fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.answered() as f64 / secs
        } else {
            0.0
        }
    }

    fn pct_ms(&self, q: f64) -> f64 {
        if self.stats.latency.is_empty() {
            return 0.0;
        }
        self.stats.latency.value_at_quantile(q) as f64 / 1e6
    }

    fn max_ms(&self) -> f64 {
        self.stats.latency.max() as f64 / 1e6
    }

    fn mean_ms(&self) -> f64 {
        self.stats.latency.mean() / 1e6
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": self.mode,
            "target": self.target,
            "map": self.map,
            "connections": self.connections,
            "pipeline": self.pipeline,
            "domains": self.domains,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "answered": self.answered(),
            "ok": self.stats.ok,
            "errors": self.stats.errors(),
            "bad_replies": self.stats.bad_replies,
            "io_errors": self.stats.io_errors,
            "timeouts": self.stats.timeouts,
            "reconnects": self.stats.reconnects,
            "rps": self.rps(),
            "latency_ms": {
                "p50": self.pct_ms(0.50),
                "p90": self.pct_ms(0.90),
                "p99": self.pct_ms(0.99),
                "max": self.max_ms(),
                "mean": self.mean_ms(),
            },
            "first_bad_reply": self.stats.first_bad_reply,
            "first_io_error": self.stats.first_io_error,
        })
    }

    fn text(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "socketmap-load: {} map={} mode={} connections={} pipeline={} domains={}\n",
            self.target, self.map, self.mode, self.connections, self.pipeline, self.domains
        );
        out.push_str(&format!(
            "  answered  {} in {:.3} s ({:.1} req/s)\n",
            self.answered(),
            self.elapsed.as_secs_f64(),
            self.rps()
        ));
        out.push_str(&format!(
            "  latency   p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  mean {:.3} ms\n",
            self.pct_ms(0.50),
            self.pct_ms(0.90),
            self.pct_ms(0.99),
            self.max_ms(),
            self.mean_ms()
        ));
        out.push_str(&format!(
            "  errors    {} (bad reply {}, i/o {}, timeout {}; reconnects {})\n",
            s.errors(),
            s.bad_replies,
            s.io_errors,
            s.timeouts,
            s.reconnects
        ));
        if let Some(r) = &s.first_bad_reply {
            out.push_str(&format!("  first bad reply: {r}\n"));
        }
        if let Some(e) = &s.first_io_error {
            out.push_str(&format!("  first i/o error: {e}\n"));
        }
        out
    }
}

fn secs_option(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0) {
        bail!("--{name} must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(v).min(HARD_TIME_LIMIT))
}

async fn run(opts: Opts) -> anyhow::Result<Report> {
    let target = match (&opts.addr, &opts.unix) {
        (Some(a), None) => Target::Tcp(a.clone()),
        (None, Some(p)) => Target::Unix(p.clone()),
        _ => bail!("give exactly one of --addr and --unix"),
    };
    let domains = load_domains(&opts)?;
    let requests: Vec<Vec<u8>> = domains
        .iter()
        .map(|d| netstring::encode(format!("{} {d}", opts.map).as_bytes()))
        .collect();
    let timeout = secs_option("timeout", opts.timeout)?;
    let max_time = secs_option("max-time", opts.max_time)?;

    // Connect everyone before the clock starts.
    let mut streams = Vec::with_capacity(opts.connections as usize);
    for i in 0..opts.connections {
        let s = tokio::time::timeout(timeout, connect(&target))
            .await
            .map_err(|_| anyhow::anyhow!("connection {i} to {} timed out", target.describe()))?
            .with_context(|| format!("connecting to {}", target.describe()))?;
        streams.push(s);
    }

    // Everyone is connected: the clock starts now, and deadlines are relative to it.
    let start = Instant::now();
    let (mode, plan, hard_deadline) = if opts.cold {
        let plan = Plan::Cold {
            next: AtomicUsize::new(0),
        };
        ("cold", plan, start + max_time)
    } else if let Some(total) = opts.requests {
        let plan = Plan::Budget {
            total,
            sent: AtomicU64::new(0),
        };
        ("requests", plan, start + max_time)
    } else {
        let d = secs_option("duration", opts.duration.unwrap_or(10.0))?;
        ("duration", Plan::Duration(start + d), start + d + timeout)
    };
    let shared = Arc::new(Shared {
        target: target.clone(),
        requests,
        plan,
        expect_prefix: opts.expect_prefix.as_ref().map(|p| p.as_bytes().to_vec()),
        pipeline: opts.pipeline as usize,
        timeout,
        hard_deadline,
    });
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| tokio::spawn(connection(shared.clone(), i, s)))
        .collect();
    let mut total = ConnStats::new()?;
    for t in tasks {
        let stats = t.await.context("a connection task panicked")??;
        total.merge(stats)?;
    }
    let elapsed = start.elapsed();
    Ok(Report {
        mode,
        target: target.describe(),
        map: opts.map.clone(),
        connections: opts.connections,
        pipeline: opts.pipeline,
        domains: domains.len(),
        elapsed,
        stats: total,
    })
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = opts.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("socketmap-load: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = opts.json;
    match rt.block_on(run(opts)) {
        Ok(report) => {
            if json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            if report.answered() == 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("socketmap-load: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_stays_in_range() {
        for n in [1usize, 2, 7, 10_000] {
            for id in 0..200 {
                assert!(start_spread(id, n) < n);
            }
        }
        assert_eq!(start_spread(3, 0), 0);
    }

    #[test]
    fn read_error_displays() {
        assert!(netstring::ReadError::Closed.to_string().contains("closed"));
    }
}
