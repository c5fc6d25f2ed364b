//! End-to-end suite: a real Postfix delivering through the lab (issue 6).
//!
//! Each test starts a [`Rig`]: a lab world from `lab/scenarios/e2e.toml` in a network namespace
//! of its own (`mtasts-lab up --netns`), one policy daemon inside it (`mtasts daemon` or
//! postfix-mta-sts-resolver), and a private Postfix instance inside it whose
//! `smtp_tls_policy_maps` points at that daemon. The test injects mail with `sendmail` and reads
//! its fate from the lab's MX logs and message stores (through the control API), Postfix's queue
//! (`postqueue -j`) and Postfix's log (`maillog_file`). Everything the rig started is stopped
//! when it is dropped, also when a test panics.
//!
//! Each outcome is recorded in `<target dir>/e2e/results.json`; once every scenario has a result
//! for both daemons from the same run, the comparison table is printed, and with
//! `MTASTS_E2E_WRITE_README=1` written into `README.md` and `docs/e2e.md` between the markers
//! `<!-- e2e:begin -->` and `<!-- e2e:end -->`. See `docs/e2e.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The lab scenario every rig runs, relative to the workspace root.
pub const SCENARIO_FILE: &str = "lab/scenarios/e2e.toml";
/// Where both daemons listen for Postfix, inside the namespace.
pub const SOCKETMAP_PORT: u16 = 8461;
/// Where `mtasts daemon` serves its metrics, inside the namespace.
pub const METRICS_PORT: u16 = 9461;
/// The lab's control API inside the namespace (`mtasts-lab up --netns` standard address).
pub const CONTROL: &str = "127.1.1.1:8053";
/// Envelope sender of every test message.
pub const SENDER: &str = "postmaster@sender.e2e.test";
/// Marker lines of the generated table in `README.md` and `docs/e2e.md`.
pub const MARK_BEGIN: &str = "<!-- e2e:begin -->";
/// See [`MARK_BEGIN`].
pub const MARK_END: &str = "<!-- e2e:end -->";

/// Which policy daemon Postfix asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// `mtasts daemon` (this project).
    Ours,
    /// postfix-mta-sts-resolver 1.5.1 (`mta-sts-daemon`), from `target/peer-venv`.
    Peer,
}

impl Daemon {
    /// Both, in table order.
    pub const ALL: [Daemon; 2] = [Daemon::Ours, Daemon::Peer];

    /// Short key used in results.json.
    pub fn key(self) -> &'static str {
        match self {
            Daemon::Ours => "ours",
            Daemon::Peer => "peer",
        }
    }

    /// Column heading.
    pub fn label(self) -> &'static str {
        match self {
            Daemon::Ours => "mtasts daemon",
            Daemon::Peer => "postfix-mta-sts-resolver 1.5.1",
        }
    }
}

/// One row of the comparison table.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    /// Stable id, also the results.json key prefix.
    pub id: &'static str,
    /// Row title.
    pub title: &'static str,
    /// What a correct sender does (the pass criterion, in words).
    pub expect: &'static str,
}

/// Every scenario of the suite, in table order.
pub const SCENARIOS: [ScenarioInfo; 11] = [
    ScenarioInfo {
        id: "good-enforce",
        title: "1. good-enforce",
        expect: "delivered over TLS 1.2+ to the policy's MX, certificate verified",
    },
    ScenarioInfo {
        id: "stripping-enforce",
        title: "2. STARTTLS stripping, enforce",
        expect: "deferred (TLS required), nothing in plaintext; delivered over TLS after STARTTLS is restored and the queue flushed",
    },
    ScenarioInfo {
        id: "mx-hijack",
        title: "3. MX hijack",
        expect: "deferred; the rogue MX never sees MAIL FROM",
    },
    ScenarioInfo {
        id: "cert-substitution",
        title: "4. certificate substitution (self-signed, wrong name, attacker's name)",
        expect: "deferred; nothing delivered",
    },
    ScenarioInfo {
        id: "cache-protects",
        title: "5. cached policy vs. TXT removed + policy host blocked + STARTTLS stripped",
        expect: "deferred, nothing in plaintext, while max_age runs",
    },
    ScenarioInfo {
        id: "testing-stripping",
        title: "6. testing mode under stripping",
        expect: "delivered (RFC 8461 §5), and the daemon shows that a testing policy applied",
    },
    ScenarioInfo {
        id: "control-no-policy",
        title: "7. control: the three attacks on domains without MTA-STS",
        expect: "every attack succeeds (plaintext, rogue MX, bad certificate)",
    },
    ScenarioInfo {
        id: "dane-ee-private-ca",
        title: "8. DANE-EE with a private CA, enforce MTA-STS too",
        expect: "delivered over TLS, authenticated by the 3 1 1 record (DANE wins, RFC 8461 §2)",
    },
    ScenarioInfo {
        id: "dane-mismatch",
        title: "9. DANE mismatch, certificate valid for MTA-STS",
        expect: "not delivered: the TLSA record does not match (DANE wins, RFC 8461 §2)",
    },
    ScenarioInfo {
        id: "dnssec-failure",
        title: "10. DNSSEC failure (bogus TLSA RRset) on a DANE domain",
        expect: "deferred; nothing delivered, neither in plaintext nor under MTA-STS (RFC 7672 §2.1.2)",
    },
    ScenarioInfo {
        id: "no-dnssec",
        title: "11. no DNSSEC (unsigned, non-matching TLSA records), enforce",
        expect: "MTA-STS applies as before: delivered over TLS, certificate verified",
    },
];

// ------------------------------------------------------------------------------------------
// Paths and prerequisites
// ------------------------------------------------------------------------------------------

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// The profile directory the running test executable was built into (`target/debug`).
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("cannot find the profile directory above {}", exe.display()))
}

/// `<target dir>/e2e/results.json`.
pub fn results_path() -> PathBuf {
    let target = profile_dir()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("e2e").join("results.json")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The programs a rig runs.
#[derive(Clone, Debug)]
pub struct Tools {
    /// `mtasts` (ours).
    pub mtasts: PathBuf,
    /// `mtasts-lab`.
    pub lab: PathBuf,
    /// `mta-sts-daemon` of the peer (only checked for [`Daemon::Peer`]).
    pub peer: PathBuf,
    /// `postfix`.
    pub postfix: PathBuf,
    /// `postqueue`.
    pub postqueue: PathBuf,
    /// `sendmail` (Postfix's).
    pub sendmail: PathBuf,
    /// `ip`.
    pub ip: PathBuf,
    /// `curl`.
    pub curl: PathBuf,
}

/// Finds everything a rig for `daemon` needs, or says what is missing.
pub fn tools(daemon: Daemon) -> Result<Tools, String> {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot read /proc/self: {e}"))?;
    if uid != 0 {
        return Err("not running as root (network namespaces and Postfix need root)".into());
    }
    let need = |name: &str, hint: &str| {
        find_in_path(name).ok_or_else(|| format!("`{name}` not found ({hint})"))
    };
    let ip = need("ip", "apt-get install iproute2")?;
    let curl = need("curl", "apt-get install curl")?;
    let postfix = need("postfix", "apt-get install postfix; .ci/run does it")?;
    let postqueue = need("postqueue", "apt-get install postfix")?;
    let sendmail = need("sendmail", "apt-get install postfix")?;
    let bins = match std::env::var_os("MTASTS_E2E_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => profile_dir()?,
    };
    let mtasts = bins.join("mtasts");
    let lab = bins.join("mtasts-lab");
    for b in [&mtasts, &lab] {
        if !b.is_file() {
            return Err(format!(
                "{} is missing: run `cargo build -p mtasts -p mtasts-lab` with the same profile \
                 first (`cargo test --workspace` builds it), or set MTASTS_E2E_BIN_DIR",
                b.display()
            ));
        }
    }
    let peer = match std::env::var_os("MTASTS_E2E_PEER") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/peer-venv/bin/mta-sts-daemon"),
    };
    if daemon == Daemon::Peer && !peer.is_file() {
        return Err(format!(
            "the peer is not installed at {} (python3 -m venv target/peer-venv && \
             target/peer-venv/bin/pip install postfix-mta-sts-resolver==1.5.1; .ci/run does it), \
             or set MTASTS_E2E_PEER",
            peer.display()
        ));
    }
    Ok(Tools {
        mtasts,
        lab,
        peer,
        postfix,
        postqueue,
        sendmail,
        ip,
        curl,
    })
}

/// Whether the suite runs under CI (`CI=true`), where a missing prerequisite is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

// ------------------------------------------------------------------------------------------
// Running commands with a time limit
// ------------------------------------------------------------------------------------------

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

/// Runs `cmd` with `stdin` as input, killing it after `limit`.
pub fn run(mut cmd: Command, stdin: &[u8], limit: Duration) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let input = stdin.to_vec();
    let mut pin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(p) = pin.as_mut() {
            let _ = p.write_all(&input);
        }
        drop(pin);
    });
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} did not finish within {limit:?}"));
            }
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}

// ------------------------------------------------------------------------------------------
// What the lab and Postfix report
// ------------------------------------------------------------------------------------------

/// TLS state of an SMTP session (lab control API).
#[derive(Clone, Debug, Deserialize)]
pub struct SessionTls {
    /// Negotiated version, e.g. `TLSv1.3`.
    pub version: String,
}

/// One SMTP session an MX saw (lab control API `/v1/smtp-sessions`).
#[derive(Clone, Debug, Deserialize)]
pub struct Session {
    /// Session id.
    pub id: u64,
    /// MX host name.
    pub host: String,
    /// Every command line received.
    pub commands: Vec<String>,
    /// TLS, if STARTTLS completed.
    pub tls: Option<SessionTls>,
    /// TLS handshake error, if any.
    pub tls_error: Option<String>,
    /// Messages accepted in this session.
    pub message_ids: Vec<u64>,
}

impl Session {
    /// Whether a `MAIL FROM` was received.
    pub fn saw_mail_from(&self) -> bool {
        self.commands
            .iter()
            .any(|c| c.len() >= 10 && c[..10].eq_ignore_ascii_case("MAIL FROM:"))
    }
}

/// A message an MX accepted (lab control API `/v1/messages`).
#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    /// Message id.
    pub id: u64,
    /// MX host name.
    pub host: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// Whether it came over TLS.
    pub tls: bool,
    /// TLS version.
    pub tls_version: Option<String>,
}

impl Message {
    /// "over TLSv1.3" or "in PLAINTEXT".
    pub fn how(&self) -> String {
        match (&self.tls, &self.tls_version) {
            (true, Some(v)) => format!("over {v}"),
            (true, None) => "over TLS".into(),
            (false, _) => "in PLAINTEXT".into(),
        }
    }
}

/// One DNS query the lab answered (`/v1/dns-queries`).
#[derive(Clone, Debug, Deserialize)]
pub struct DnsQuery {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Query name.
    pub name: String,
    /// Query type.
    pub qtype: String,
    /// Response code or `no-answer`.
    pub outcome: String,
}

/// A recipient in `postqueue -j` output.
#[derive(Clone, Debug, Deserialize)]
pub struct QueueRecipient {
    /// Address.
    pub address: String,
    /// Why delivery was deferred, once tried.
    #[serde(default)]
    pub delay_reason: Option<String>,
}

/// A message in Postfix's queue (`postqueue -j`).
#[derive(Clone, Debug, Deserialize)]
pub struct QueueEntry {
    /// `active`, `deferred`, `hold`, `incoming`, ….
    pub queue_name: String,
    /// Queue id.
    pub queue_id: String,
    /// Its recipients.
    pub recipients: Vec<QueueRecipient>,
}

/// What became of a message.
#[derive(Clone, Debug)]
pub enum Fate {
    /// The lab stored it (one entry per MX that accepted it).
    Delivered(Vec<Message>),
    /// Still queued in Postfix, tried at least once.
    Deferred {
        /// Postfix's `delay_reason`.
        reason: String,
        /// Queue name (`deferred` or `active`).
        queue: String,
    },
    /// Neither within the time limit.
    Unknown,
}

impl Fate {
    /// One line for the table.
    pub fn describe(&self) -> String {
        match self {
            Fate::Delivered(ms) => {
                let list: Vec<String> = ms
                    .iter()
                    .map(|m| format!("to {} {}", m.host, m.how()))
                    .collect();
                format!("delivered {}", list.join(", "))
            }
            Fate::Deferred { reason, .. } => format!("deferred ({reason})"),
            Fate::Unknown => "neither delivered nor deferred in time".into(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// The rig
// ------------------------------------------------------------------------------------------

static SEQ: AtomicUsize = AtomicUsize::new(0);

#[derive(Deserialize)]
struct Ready {
    ca_pem_path: PathBuf,
}

/// A lab world in its own namespace, one policy daemon and one Postfix, all stopped on drop.
pub struct Rig {
    /// The daemon Postfix asks.
    pub daemon: Daemon,
    tools: Tools,
    netns: String,
    root: PathBuf,
    dir: Option<tempfile::TempDir>,
    lab: Option<Child>,
    daemon_proc: Option<Child>,
    postfix_started: bool,
    ca: PathBuf,
    seq: AtomicUsize,
}

impl Rig {
    /// Starts a rig, or returns `None` (after saying why) when a prerequisite is missing and
    /// the suite is not under CI. Under CI a missing prerequisite panics; a failure to start
    /// panics always.
    pub fn start_or_skip(daemon: Daemon, test: &str) -> Option<Rig> {
        let tools = match tools(daemon) {
            Ok(t) => t,
            Err(why) => {
                assert!(
                    !in_ci(),
                    "{test}: cannot run the Postfix end-to-end suite under CI: {why}"
                );
                eprintln!("note: skipping {test}: {why}");
                return None;
            }
        };
        match Rig::start(daemon, tools) {
            Ok(r) => Some(r),
            Err(e) => panic!("{test}: the rig did not start: {e}"),
        }
    }

    fn start(daemon: Daemon, tools: Tools) -> Result<Rig, String> {
        remove_stale_namespaces(&tools);
        let dir = tempfile::Builder::new()
            .prefix("mtasts-e2e-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        // Postfix's unprivileged processes must traverse it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
        let netns = format!(
            "mte2e-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let mut rig = Rig {
            daemon,
            tools,
            netns,
            root: dir.path().to_path_buf(),
            dir: Some(dir),
            lab: None,
            daemon_proc: None,
            postfix_started: false,
            ca: PathBuf::new(),
            seq: AtomicUsize::new(0),
        };
        rig.start_lab()?;
        rig.start_daemon()?;
        rig.start_postfix()?;
        Ok(rig)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn log_file(&self, name: &str) -> Result<std::fs::File, String> {
        std::fs::File::create(self.path(name)).map_err(|e| format!("create {name}: {e}"))
    }

    fn start_lab(&mut self) -> Result<(), String> {
        let ready = self.path("ready.json");
        let state = self.path("lab");
        let log = self.log_file("lab.log")?;
        let log2 = log.try_clone().map_err(|e| format!("lab.log: {e}"))?;
        let child = Command::new(&self.tools.lab)
            .arg("up")
            .arg(workspace_root().join(SCENARIO_FILE))
            .args(["--netns", &self.netns, "--ready-file"])
            .arg(&ready)
            .arg("--state-dir")
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.tools.lab.display()))?;
        self.lab = Some(child);
        let got = wait_for(Duration::from_secs(90), || {
            if let Some(c) = self.lab.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                return Some(Err(format!("mtasts-lab exited ({st})")));
            }
            let text = std::fs::read_to_string(&ready).ok()?;
            serde_json::from_str::<Ready>(&text).ok().map(Ok)
        });
        match got {
            Some(Ok(r)) => {
                self.ca = r.ca_pem_path;
                Ok(())
            }
            Some(Err(e)) => Err(format!("{e}:\n{}", self.read("lab.log"))),
            None => Err(format!(
                "the lab was not ready within 90 s:\n{}",
                self.read("lab.log")
            )),
        }
    }

    fn ns(&self) -> Command {
        let mut c = Command::new(&self.tools.ip);
        c.args(["netns", "exec", &self.netns]);
        c
    }

    fn start_daemon(&mut self) -> Result<(), String> {
        let log = self.log_file("daemon.log")?;
        let log2 = log.try_clone().map_err(|e| format!("daemon.log: {e}"))?;
        let mut cmd = self.ns();
        match self.daemon {
            Daemon::Ours => {
                let config = self.path("ours.toml");
                std::fs::write(&config, ours_config(&self.ca))
                    .map_err(|e| format!("write ours.toml: {e}"))?;
                cmd.arg(&self.tools.mtasts)
                    .arg("daemon")
                    .arg("--config")
                    .arg(config);
            }
            Daemon::Peer => {
                let config = self.path("peer.yml");
                std::fs::write(&config, peer_config())
                    .map_err(|e| format!("write peer.yml: {e}"))?;
                cmd.arg(&self.tools.peer)
                    .arg("-c")
                    .arg(config)
                    .args(["-v", "debug"])
                    .env("SSL_CERT_FILE", &self.ca)
                    .env("REQUESTS_CA_BUNDLE", &self.ca);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start the daemon: {e}"))?;
        self.daemon_proc = Some(child);
        let up = wait_for(Duration::from_secs(60), || {
            if let Some(c) = self.daemon_proc.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                return Some(Err(format!("the daemon exited ({st})")));
            }
            let mut probe = self.ns();
            probe.args([
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/127.0.0.1/{SOCKETMAP_PORT}"),
            ]);
            match run(probe, b"", Duration::from_secs(5)) {
                Ok(o) if o.status.success() => Some(Ok(())),
                _ => None,
            }
        });
        match up {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("{e}:\n{}", self.read("daemon.log"))),
            None => Err(format!(
                "the daemon did not listen within 60 s:\n{}",
                self.read("daemon.log")
            )),
        }
    }

    fn pf_etc(&self) -> PathBuf {
        self.path("postfix/etc")
    }

    fn start_postfix(&mut self) -> Result<(), String> {
        let base = self.path("postfix");
        let etc = self.pf_etc();
        let spool = base.join("spool");
        for d in [&base, &etc, &spool] {
            std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("chmod {}: {e}", d.display()))?;
        }
        std::fs::write(etc.join("main.cf"), postfix_main_cf(&base, &self.ca))
            .map_err(|e| format!("write main.cf: {e}"))?;
        std::fs::write(etc.join("master.cf"), POSTFIX_MASTER_CF)
            .map_err(|e| format!("write master.cf: {e}"))?;
        let mut cmd = self.ns();
        cmd.arg(&self.tools.postfix)
            .arg("-c")
            .arg(&etc)
            .arg("start");
        let out = run(cmd, b"", Duration::from_secs(60))?;
        if !out.status.success() {
            return Err(format!(
                "postfix start failed ({}): {}{}\n{}",
                out.status,
                out.stdout,
                out.stderr,
                self.maillog()
            ));
        }
        self.postfix_started = true;
        Ok(())
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Postfix's log so far.
    pub fn maillog(&self) -> String {
        self.read("postfix/maillog")
    }

    /// The daemon's log so far.
    pub fn daemon_log(&self) -> String {
        self.read("daemon.log")
    }

    /// A fresh recipient address at `domain`, unique within the rig.
    pub fn recipient(&self, domain: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        format!("rcpt{n}-{}@{domain}", self.daemon.key())
    }

    /// Injects one message for `rcpt` with `sendmail`.
    pub fn send(&self, rcpt: &str) -> Result<(), String> {
        let mut cmd = self.ns();
        cmd.arg(&self.tools.sendmail)
            .arg("-C")
            .arg(self.pf_etc())
            .args(["-f", SENDER, "--", rcpt]);
        let body = format!(
            "From: <{SENDER}>\nTo: <{rcpt}>\nSubject: mtasts e2e test for {rcpt}\n\n\
             This message tests MTA-STS enforcement for {rcpt}.\n"
        );
        let out = run(cmd, body.as_bytes(), Duration::from_secs(30))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("sendmail failed ({}): {}", out.status, out.stderr))
        }
    }

    /// `postqueue -j`.
    pub fn queue(&self) -> Result<Vec<QueueEntry>, String> {
        let mut cmd = Command::new(&self.tools.postqueue);
        cmd.arg("-c").arg(self.pf_etc()).arg("-j");
        let out = run(cmd, b"", Duration::from_secs(30))?;
        if !out.status.success() {
            return Err(format!("postqueue -j failed: {}", out.stderr));
        }
        out.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("postqueue -j line {l:?}: {e}")))
            .collect()
    }

    /// `postqueue -f`: retry every queued message now.
    pub fn flush(&self) -> Result<(), String> {
        let mut cmd = self.ns();
        cmd.arg(&self.tools.postqueue)
            .arg("-c")
            .arg(self.pf_etc())
            .arg("-f");
        let out = run(cmd, b"", Duration::from_secs(30))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("postqueue -f failed: {}", out.stderr))
        }
    }

    fn curl(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = self.ns();
        cmd.arg(&self.tools.curl)
            .args(["-sS", "-f", "-m", "10"])
            .args(args);
        let out = run(cmd, b"", Duration::from_secs(20))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!(
                "curl {args:?} failed ({}): {}",
                out.status, out.stderr
            ))
        }
    }

    fn control_get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, String> {
        let body = self.curl(&[&format!("http://{CONTROL}{path}")])?;
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))
    }

    /// Applies lab mutations (a JSON list in the control API's form).
    pub fn mutate(&self, json: &str) -> Result<(), String> {
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            json,
            &format!("http://{CONTROL}/v1/mutate"),
        ])
        .map(|_| ())
    }

    /// Every SMTP session the lab's MX hosts saw.
    pub fn sessions(&self) -> Result<Vec<Session>, String> {
        self.control_get("/v1/smtp-sessions")
    }

    /// Sessions of one MX host.
    pub fn sessions_for(&self, host: &str) -> Result<Vec<Session>, String> {
        self.control_get(&format!("/v1/smtp-sessions?host={host}"))
    }

    /// Every message the lab's MX hosts accepted.
    pub fn messages(&self) -> Result<Vec<Message>, String> {
        self.control_get("/v1/messages")
    }

    /// Messages (at any MX) with `rcpt` among their recipients.
    pub fn messages_to(&self, rcpt: &str) -> Result<Vec<Message>, String> {
        Ok(self
            .messages()?
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .collect())
    }

    /// DNS queries for `name` the lab answered.
    pub fn dns_queries(&self, name: &str) -> Result<Vec<DnsQuery>, String> {
        self.control_get(&format!("/v1/dns-queries?name={name}"))
    }

    /// `mtasts daemon`'s Prometheus metrics.
    pub fn metrics(&self) -> Result<String, String> {
        self.curl(&[&format!("http://127.0.0.1:{METRICS_PORT}/metrics")])
    }

    /// Waits (up to `limit`) until `rcpt` is delivered somewhere or deferred by Postfix.
    pub fn wait_fate(&self, rcpt: &str, limit: Duration) -> Fate {
        wait_for(limit, || {
            if let Ok(ms) = self.messages_to(rcpt)
                && !ms.is_empty()
            {
                return Some(Fate::Delivered(ms));
            }
            let queue = self.queue().ok()?;
            queue.iter().find_map(|e| {
                e.recipients
                    .iter()
                    .find(|r| r.address.eq_ignore_ascii_case(rcpt))
                    .and_then(|r| r.delay_reason.clone())
                    .map(|reason| Fate::Deferred {
                        reason,
                        queue: e.queue_name.clone(),
                    })
            })
        })
        .unwrap_or(Fate::Unknown)
    }

    /// Waits (up to `limit`) until `rcpt` is delivered.
    pub fn wait_delivered(&self, rcpt: &str, limit: Duration) -> Option<Vec<Message>> {
        wait_for(limit, || {
            self.messages_to(rcpt).ok().filter(|m| !m.is_empty())
        })
    }

    /// Everything a reader needs when a scenario fails: Postfix's log and queue, what each
    /// lab MX saw and stored, the daemon's log.
    pub fn evidence(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "---- Postfix log (last 60 lines) ----\n{}",
            tail(&self.maillog(), 60)
        );
        match self.queue() {
            Ok(q) => {
                let _ = writeln!(s, "---- postqueue -j ({} messages) ----", q.len());
                for e in q {
                    for r in e.recipients {
                        let _ = writeln!(
                            s,
                            "{} [{}] {} reason: {}",
                            e.queue_id,
                            e.queue_name,
                            r.address,
                            r.delay_reason.as_deref().unwrap_or("-")
                        );
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(s, "---- postqueue -j failed: {e}");
            }
        }
        match self.sessions() {
            Ok(ss) => {
                let mut by_host: BTreeMap<String, Vec<Session>> = BTreeMap::new();
                for x in ss {
                    by_host.entry(x.host.clone()).or_default().push(x);
                }
                let _ = writeln!(s, "---- lab MX sessions ----");
                for (host, ss) in by_host {
                    let _ = writeln!(s, "{host}: {} session(s)", ss.len());
                    for x in ss.iter().rev().take(5) {
                        let _ = writeln!(
                            s,
                            "  #{} tls={} mail_from={} messages={:?} tls_error={} commands={:?}",
                            x.id,
                            x.tls.as_ref().map_or("no", |t| t.version.as_str()),
                            x.saw_mail_from(),
                            x.message_ids,
                            x.tls_error.as_deref().unwrap_or("-"),
                            x.commands
                        );
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(s, "---- lab sessions unavailable: {e}");
            }
        }
        match self.messages() {
            Ok(ms) => {
                let _ = writeln!(s, "---- lab MX message stores ({} messages) ----", ms.len());
                for m in ms {
                    let _ = writeln!(
                        s,
                        "  #{} at {} from {} to {:?} {}",
                        m.id,
                        m.host,
                        m.mail_from,
                        m.rcpt_to,
                        m.how()
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "---- lab messages unavailable: {e}");
            }
        }
        let _ = writeln!(
            s,
            "---- {} log (last 30 lines) ----\n{}",
            self.daemon.label(),
            tail(&self.daemon_log(), 30)
        );
        s
    }

    fn stop(&mut self) {
        if self.postfix_started {
            let mut cmd = self.ns();
            cmd.arg(&self.tools.postfix)
                .arg("-c")
                .arg(self.pf_etc())
                .arg("stop");
            let _ = run(cmd, b"", Duration::from_secs(30));
            self.postfix_started = false;
        }
        if let Some(mut c) = self.daemon_proc.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything still in the namespace was started by this rig (Postfix's children).
        let mut pids = Command::new(&self.tools.ip);
        pids.args(["netns", "pids", &self.netns]);
        let lab_child = self.lab.as_ref().map(Child::id);
        if let Ok(out) = run(pids, b"", Duration::from_secs(10)) {
            for pid in out.stdout.split_whitespace() {
                // The lab's own child (inside) is stopped by the lab's parent below.
                if pid.parse::<u32>().ok() == lab_child {
                    continue;
                }
                if is_lab_inside(pid) {
                    continue;
                }
                let mut k = Command::new("kill");
                k.args(["-KILL", pid]);
                let _ = run(k, b"", Duration::from_secs(5));
            }
        }
        if let Some(mut lab) = self.lab.take() {
            let mut term = Command::new("kill");
            term.args(["-TERM", &lab.id().to_string()]);
            let _ = run(term, b"", Duration::from_secs(5));
            let exited = wait_for(Duration::from_secs(15), || lab.try_wait().ok().flatten());
            if exited.is_none() {
                let _ = lab.kill();
                let _ = lab.wait();
            }
        }
        // The lab removes its namespace on SIGTERM; make sure of it.
        if Path::new("/run/netns").join(&self.netns).exists() {
            let mut del = Command::new(&self.tools.ip);
            del.args(["netns", "del", &self.netns]);
            let _ = run(del, b"", Duration::from_secs(10));
        }
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.netns));
    }

    /// Keeps the rig's directory (logs, Postfix queue) after the test, for a post-mortem.
    fn keep_dir_if_asked(&mut self) {
        if std::env::var_os("MTASTS_E2E_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("note: MTASTS_E2E_KEEP: kept {}", dir.keep().display());
        }
    }
}

fn is_lab_inside(pid: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("mtasts-lab") && c.contains("--inside")
        })
        .unwrap_or(false)
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop();
        self.keep_dir_if_asked();
    }
}

/// Deletes namespaces `mte2e-PID-N` left by a test process that no longer exists and that
/// hold no process (a run killed with SIGKILL cannot clean up after itself).
fn remove_stale_namespaces(tools: &Tools) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("mte2e-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let mut pids = Command::new(&tools.ip);
        pids.args(["netns", "pids", &name]);
        let empty = run(pids, b"", Duration::from_secs(10))
            .map(|o| o.status.success() && o.stdout.trim().is_empty())
            .unwrap_or(false);
        if empty {
            let mut del = Command::new(&tools.ip);
            del.args(["netns", "del", &name]);
            let _ = run(del, b"", Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&name));
        }
    }
}

// ------------------------------------------------------------------------------------------
// Configuration files
// ------------------------------------------------------------------------------------------

fn ours_config(ca: &Path) -> String {
    format!(
        r#"# mtasts daemon, written by the e2e suite (crates/mtasts-e2e)
listen = [{{ tcp = "127.0.0.1:{SOCKETMAP_PORT}" }}]
metrics = "127.0.0.1:{METRICS_PORT}"
shutdown_timeout = 2.0

[log]
level = "info"

# DANE first (RFC 8461 §2) in every zone: the first seven scenarios (no DNSSEC) show that it
# changes nothing without DNSSEC, the last four what it changes with it.
[default_zone]
dane = "on"

[resolver.dns]
servers = ["127.1.1.1:53"]

[resolver.fetch]
ca_file = "{ca}"

# Re-check the TXT record a second after caching (in the background), so that scenario 5
# meets the re-check path rather than a fresh cache.
[resolver.cache]
refresh_interval = 1
refresh_jitter = 0

[resolver.store]
type = "memory"
"#,
        ca = ca.display()
    )
}

fn peer_config() -> String {
    format!(
        r#"# postfix-mta-sts-resolver, written by the e2e suite (crates/mtasts-e2e)
host: 127.0.0.1
port: {SOCKETMAP_PORT}
shutdown_timeout: 2
# Re-check the TXT record a second after caching, so that scenario 5 meets the re-check path
# rather than a fresh cache (default 60 s).
cache_grace: 1
cache:
  type: internal
  options:
    cache_size: 1000
default_zone:
  strict_testing: false
  timeout: 4
  require_sni: true
proactive_policy_fetching:
  enabled: false
"#
    )
}

fn postfix_main_cf(base: &Path, ca: &Path) -> String {
    let b = base.display();
    format!(
        r#"# A private Postfix instance, written by the e2e suite (crates/mtasts-e2e)
compatibility_level = 3.6
config_directory = {b}/etc
queue_directory = {b}/spool
data_directory = {b}/data
maillog_file = {b}/maillog
maillog_file_prefixes = {b}
syslog_name = postfix-e2e
myhostname = sender.e2e.test
mydomain = e2e.test
myorigin = sender.e2e.test
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
biff = no
smtputf8_enable = no
delay_warning_time = 0
# Retry quickly: tests never wait for a real backoff.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
# The policy daemon decides per destination; where it has no answer (NOTFOUND), Postfix
# does DANE itself and falls back to opportunistic TLS without DNSSEC. DANE needs the AD flag
# of DNS answers: smtp_dns_support_level = dnssec (Postfix sets RES_TRUSTAD itself since 3.6;
# the namespace's resolv.conf also says trust-ad for other glibc users). The lab refuses ".",
# so the start-up DNSSEC probe (ns:.) would only log a false warning: it is off.
smtp_dns_support_level = dnssec
dnssec_probe =
smtp_tls_security_level = dane
smtp_tls_CAfile = {ca}
smtp_tls_loglevel = 1
smtp_tls_policy_maps = socketmap:inet:127.0.0.1:{SOCKETMAP_PORT}:postfix
"#,
        ca = ca.display()
    )
}

/// No `smtpd` listener (mail is injected with `sendmail`) and no chroot (a chroot would copy the
/// host's resolv.conf instead of the namespace's).
const POSTFIX_MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

// ------------------------------------------------------------------------------------------
// Results and the comparison table
// ------------------------------------------------------------------------------------------

/// One scenario's outcome with one daemon.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Scenario id.
    pub scenario: String,
    /// `ours` or `peer`.
    pub daemon: String,
    /// Whether the daemon behaved as a correct sender must.
    pub pass: bool,
    /// What was observed, in one line.
    pub observed: String,
    /// The test process that produced it.
    pub run: String,
    /// Wall time of the test, seconds.
    pub seconds: f64,
}

/// `results.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Postfix version used.
    pub postfix: String,
    /// By `scenario/daemon`.
    pub entries: BTreeMap<String, Record>,
}

fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("{}-{secs}", std::process::id())
    })
}

fn postfix_version() -> String {
    let Some(postconf) = find_in_path("postconf") else {
        return "unknown".into();
    };
    let mut cmd = Command::new(postconf);
    cmd.args(["-d", "-h", "mail_version"]);
    run(cmd, b"", Duration::from_secs(10))
        .map(|o| o.stdout.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Records one outcome in results.json; when every scenario has an outcome for both daemons
/// from this run, prints the table and (with `MTASTS_E2E_WRITE_README=1`) writes it into the
/// README and docs/e2e.md.
pub fn record(scenario: &str, daemon: Daemon, pass: bool, observed: &str, seconds: f64) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = results_path();
    let mut results: Results = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    results.postfix = postfix_version();
    results.entries.insert(
        format!("{scenario}/{}", daemon.key()),
        Record {
            scenario: scenario.into(),
            daemon: daemon.key().into(),
            pass,
            observed: observed.into(),
            run: run_id().into(),
            seconds,
        },
    );
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match serde_json::to_string_pretty(&results) {
        Ok(text) => {
            if let Err(e) = std::fs::write(&path, text + "\n") {
                eprintln!("warning: cannot write {}: {e}", path.display());
            }
        }
        Err(e) => eprintln!("warning: cannot serialise the results: {e}"),
    }
    let complete = SCENARIOS.iter().all(|s| {
        Daemon::ALL.iter().all(|d| {
            results
                .entries
                .get(&format!("{}/{}", s.id, d.key()))
                .is_some_and(|r| r.run == run_id())
        })
    });
    if !complete {
        return;
    }
    let table = render_table(&results);
    eprintln!("\n{table}");
    if std::env::var("MTASTS_E2E_WRITE_README").is_ok_and(|v| v == "1") {
        let root = workspace_root();
        for file in ["README.md", "docs/e2e.md"] {
            let p = root.join(file);
            match write_between_markers(&p, &table) {
                Ok(()) => eprintln!("wrote the e2e table into {}", p.display()),
                Err(e) => eprintln!("warning: {e}"),
            }
        }
    }
}

/// The Markdown comparison table.
pub fn render_table(results: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| scenario | a correct sender | {} | {} |",
        Daemon::Ours.label(),
        Daemon::Peer.label()
    );
    let _ = writeln!(s, "| --- | --- | --- | --- |");
    let mut passed = [0usize; 2];
    for sc in SCENARIOS {
        let mut cells = Vec::new();
        for (i, d) in Daemon::ALL.iter().enumerate() {
            let cell = match results.entries.get(&format!("{}/{}", sc.id, d.key())) {
                Some(r) => {
                    if r.pass {
                        passed[i] += 1;
                    }
                    format!(
                        "{}: {}",
                        if r.pass { "**pass**" } else { "**FAIL**" },
                        r.observed.replace('|', "\\|")
                    )
                }
                None => "not run".into(),
            };
            cells.push(cell);
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            sc.title, sc.expect, cells[0], cells[1]
        );
    }
    let _ = writeln!(
        s,
        "| **total** | | **{}/{}** | **{}/{}** |",
        passed[0],
        SCENARIOS.len(),
        passed[1],
        SCENARIOS.len()
    );
    let _ = writeln!(
        s,
        "\nProduced by `MTASTS_E2E_WRITE_README=1 cargo test -p mtasts-e2e --test postfix` \
         (as root) with Postfix {}; the raw outcomes are in `target/e2e/results.json`.",
        results.postfix
    );
    s
}

fn write_between_markers(path: &Path, table: &str) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let (Some(b), Some(e)) = (text.find(MARK_BEGIN), text.find(MARK_END)) else {
        return Err(format!(
            "{} has no {MARK_BEGIN} … {MARK_END} markers",
            path.display()
        ));
    };
    if e < b {
        return Err(format!("{}: the markers are out of order", path.display()));
    }
    let new = format!("{}{MARK_BEGIN}\n{table}{}", &text[..b], &text[e..]);
    if new != text {
        std::fs::write(path, new).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(pass_peer: bool) -> Results {
        let mut r = Results {
            postfix: "3.7.11".into(),
            entries: BTreeMap::new(),
        };
        for s in SCENARIOS {
            for d in Daemon::ALL {
                r.entries.insert(
                    format!("{}/{}", s.id, d.key()),
                    Record {
                        scenario: s.id.into(),
                        daemon: d.key().into(),
                        pass: d == Daemon::Ours || pass_peer,
                        observed: "deferred (a|b)".into(),
                        run: "1-2".into(),
                        seconds: 1.0,
                    },
                );
            }
        }
        r
    }

    #[test]
    fn table_has_a_row_per_scenario_and_counts_passes() {
        let t = render_table(&results(false));
        assert_eq!(
            t.lines().filter(|l| l.starts_with("| ")).count(),
            2 + 11 + 1
        );
        assert!(t.contains("| **total** | | **11/11** | **0/11** |"), "{t}");
        assert!(
            t.contains("**FAIL**: deferred (a\\|b)"),
            "pipes are escaped: {t}"
        );
    }

    #[test]
    fn markers_are_replaced_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let p = dir.path().join("README.md");
        std::fs::write(&p, format!("head\n{MARK_BEGIN}\nold\n{MARK_END}\ntail\n")).expect("write");
        write_between_markers(&p, "new table\n").expect("markers found");
        let text = std::fs::read_to_string(&p).expect("read");
        assert_eq!(
            text,
            format!("head\n{MARK_BEGIN}\nnew table\n{MARK_END}\ntail\n")
        );
        std::fs::write(&p, "no markers").expect("write");
        assert!(write_between_markers(&p, "x").is_err());
    }
}
