//! A throwaway Dovecot IMAP server for tests: its own configuration in a temporary directory
//! (nothing is read from `/etc/dovecot`), one user with a password file, a Maildir, an
//! IMAPS listener and an IMAP listener (STARTTLS; `LOGIN` only after it) on free ports of
//! 127.0.0.1, and a certificate for `localhost` and `127.0.0.1` issued by a fresh lab CA
//! ([`mtasts_lab::pki`]), so a client trusts exactly [`Dovecot::ca_pem_path`]. Stopped and
//! removed on drop.
//!
//! When Dovecot is not installed (Debian: `dovecot-imapd`), [`Dovecot::start`] returns `None`
//! after printing a note; under CI (the `CI` environment variable is set) it panics instead,
//! as [`crate::postgres`] does.
//!
//! `imap-login` refuses to run as root, so the whole server runs as one unprivileged user: as
//! `nobody` (through `runuser`) when the tests run as root, else as the user running them.
//! Mail is delivered by writing the message into the folder's Maildir (`tmp/`, then renamed
//! into `new/`), which works while the server is stopped too; Dovecot notices it at once
//! (IDLE checks at least every second here).
//!
//! Every server has a watchdog: a small shell process that waits for the test process to end
//! and then stops the server and removes its directory, for a test process that was killed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The mail user.
pub const USER: &str = "reports";

/// What to change in the server's configuration.
#[derive(Clone, Debug, Default)]
pub struct DovecotOptions {
    /// `imap_capability`: the capabilities announced after login (e.g. without `MOVE`, to
    /// drive a client's fallback). `None`: Dovecot's own list.
    pub capability: Option<String>,
    /// Every folder read-only for the user (the ACL plugin granting only lookup and read), as
    /// a shared mailbox can be.
    pub read_only: bool,
}

/// A running (or stopped, see [`Dovecot::stop`]) Dovecot.
pub struct Dovecot {
    dovecot: PathBuf,
    doveadm: PathBuf,
    /// The temporary directory: `dovecot.conf`, `run/`, `home/`, the certificate. Removed on
    /// drop.
    dir: Option<tempfile::TempDir>,
    imap_port: u16,
    imaps_port: u16,
    /// The user and group the server runs as, and `runuser` is needed to become them.
    owner: (String, String),
    via_runuser: bool,
    options: DovecotOptions,
    watchdog: Option<Child>,
    running: bool,
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("imaps", &self.imaps_port)
            .field("imap", &self.imap_port)
            .field("dir", &self.dir.as_ref().map(tempfile::TempDir::path))
            .finish_non_exhaustive()
    }
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path.into_iter()
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run id: {e}"));
    assert!(out.status.success(), "id {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Dovecot {
    /// Starts a server with Dovecot's defaults, or returns `None` (outside CI) when Dovecot is
    /// not installed.
    pub fn start() -> Option<Dovecot> {
        Dovecot::start_with(DovecotOptions::default())
    }

    /// Starts a server with `options`, or `None` as for [`Dovecot::start`].
    pub fn start_with(options: DovecotOptions) -> Option<Dovecot> {
        let (Some(dovecot), Some(doveadm)) = (find("dovecot"), find("doveadm")) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "Dovecot is not installed, and CI is set: the IMAP tests must run in CI \
                 (install the Debian package dovecot-imapd)"
            );
            eprintln!(
                "note: Dovecot is not installed; skipping this IMAP test \
                 (apt-get install dovecot-imapd to run it)"
            );
            return None;
        };
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let owner = if root {
            ("nobody".to_owned(), id(&["-gn", "nobody"]))
        } else {
            (id(&["-un"]), id(&["-gn"]))
        };
        let dir = tempfile::Builder::new()
            .prefix("mtasts-dovecot")
            .tempdir()
            .expect("a temporary directory for Dovecot");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the Dovecot directory");
        let mut d = Dovecot {
            dovecot,
            doveadm,
            dir: Some(dir),
            imap_port: 0,
            imaps_port: 0,
            owner,
            via_runuser: root,
            options,
            watchdog: None,
            running: false,
        };
        d.lay_out();
        d.watchdog = Some(d.spawn_watchdog());
        let mut last = String::new();
        for _ in 0..5 {
            d.imap_port = free_port();
            d.imaps_port = free_port();
            d.write_config();
            match d.launch() {
                Ok(()) => return Some(d),
                // A port may have been taken between choosing and binding it: try others.
                Err(e) => last = e,
            }
        }
        panic!("Dovecot did not start: {last}");
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or_else(|| Path::new("/nonexistent"), tempfile::TempDir::path)
    }

    fn conf(&self) -> PathBuf {
        self.dir().join("dovecot.conf")
    }

    fn home(&self) -> PathBuf {
        self.dir().join("home").join(USER)
    }

    /// The IMAPS (TLS from the first byte) listener.
    pub fn imaps_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.imaps_port))
    }

    /// The IMAP listener (STARTTLS, then `LOGIN`).
    pub fn imap_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.imap_port))
    }

    /// The mail user.
    pub fn user(&self) -> &str {
        USER
    }

    /// The user's password.
    pub fn password(&self) -> &str {
        "s3cret-imap"
    }

    /// A file holding the password and a newline.
    pub fn password_file(&self) -> PathBuf {
        self.dir().join("password")
    }

    /// The CA certificate (PEM) that issued the server's certificate.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir().join("ca.pem")
    }

    /// `imaps://reports@127.0.0.1:PORT/FOLDER`.
    pub fn imaps_url(&self, folder: &str) -> String {
        format!("imaps://{USER}@127.0.0.1:{}/{folder}", self.imaps_port)
    }

    /// `imap://reports@127.0.0.1:PORT/FOLDER`.
    pub fn imap_url(&self, folder: &str) -> String {
        format!("imap://{USER}@127.0.0.1:{}/{folder}", self.imap_port)
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("log/dovecot.log")).unwrap_or_default()
    }

    fn chown(&self, path: &Path) {
        if !self.via_runuser {
            return;
        }
        let out = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.owner.0, self.owner.1))
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("chown: {e}"));
        assert!(
            out.status.success(),
            "chown {}: {}",
            path.display(),
            text(&out)
        );
    }

    /// The directories, the password files, the certificate.
    fn lay_out(&self) {
        let d = self.dir();
        for sub in ["run", "state", "log"] {
            std::fs::create_dir_all(d.join(sub)).expect("a Dovecot directory");
        }
        std::fs::set_permissions(d.join("run"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod run");
        self.maildir("INBOX");
        std::fs::write(
            d.join("passwd"),
            format!(
                "{USER}:{{PLAIN}}{}::::{}\n",
                self.password(),
                self.home().display()
            ),
        )
        .expect("passwd");
        std::fs::write(self.password_file(), format!("{}\n", self.password()))
            .expect("password file");
        let pki = mtasts_lab::pki::Pki::new("dovecot").expect("a lab CA");
        let cert = pki
            .issue(
                "localhost",
                &mtasts_lab::CertSpec {
                    kind: mtasts_lab::CertKind::Valid,
                    names: Some(vec!["localhost".into(), "127.0.0.1".into()]),
                },
            )
            .expect("the server certificate");
        std::fs::write(self.ca_pem_path(), pki.root_pem()).expect("ca.pem");
        std::fs::write(d.join("cert.pem"), &cert.chain_pem).expect("cert.pem");
        std::fs::write(d.join("key.der"), &cert.key_pkcs8).expect("key.der");
        let out = Command::new("openssl")
            .args(["pkey", "-inform", "DER", "-outform", "PEM", "-in"])
            .arg(d.join("key.der"))
            .arg("-out")
            .arg(d.join("key.pem"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
        assert!(out.status.success(), "openssl pkey: {}", text(&out));
        for sub in ["run", "state", "log", "home"] {
            self.chown(&d.join(sub));
        }
        for f in ["key.pem", "cert.pem", "passwd"] {
            self.chown(&d.join(f));
        }
    }

    fn write_config(&self) {
        let d = self.dir().display().to_string();
        let (user, group) = &self.owner;
        let capability = self
            .options
            .capability
            .as_ref()
            .map(|c| format!("imap_capability = {c}\n"))
            .unwrap_or_default();
        let acl = if self.options.read_only {
            std::fs::write(self.dir().join("acl"), "* user=reports lr\n").expect("acl");
            format!("mail_plugins = $mail_plugins acl\nplugin {{\n  acl = vfile:{d}/acl\n}}\n")
        } else {
            String::new()
        };
        let conf = format!(
            r#"instance_name = mtasts-test-{port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_fsync = never
mailbox_idle_check_interval = 1 secs
{capability}{acl}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
  default_fields = uid={user} gid={group}
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
"#,
            port = self.imaps_port,
            imap = self.imap_port,
            imaps = self.imaps_port,
        );
        std::fs::write(self.conf(), conf).expect("dovecot.conf");
    }

    /// `program args` as the server's user.
    fn command(&self, program: &Path) -> Command {
        let mut c = if self.via_runuser {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(&self.owner.0).arg("--").arg(program);
            c
        } else {
            Command::new(program)
        };
        c.current_dir(self.dir()).stdin(Stdio::null());
        c
    }

    fn master_pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir().join("run/master.pid"))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
    }

    /// Starts the master (it daemonizes) and waits until both listeners accept.
    fn launch(&mut self) -> Result<(), String> {
        // Into a file, not a pipe: the daemonized master keeps its standard output and error
        // open, so reading a pipe to its end would wait for the server to stop.
        let out_path = self.dir().join("log/dovecot.out");
        let out = std::fs::File::create(&out_path).expect("dovecot.out");
        let err = out.try_clone().expect("dovecot.out");
        let status = self
            .command(&self.dovecot)
            .arg("-c")
            .arg(self.conf())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap_or_else(|e| panic!("cannot run dovecot: {e}"));
        if !status.success() {
            return Err(format!(
                "dovecot: {}\n--- log\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                self.log()
            ));
        }
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let up = [self.imaps_addr(), self.imap_addr()]
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).is_ok());
            if up {
                return Ok(());
            }
            if self
                .master_pid()
                .is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = self.log();
        self.stop();
        Err(format!("Dovecot did not listen: {log}"))
    }

    /// Stops the server (its master, then every process left of it, so open connections
    /// drop); the mail stays.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let Some(pid) = self.master_pid() else { return };
        // At once (it is thrown away): the master, then every process left of it, so that
        // open connections drop and nothing of the old server answers.
        let _ = Command::new("kill").arg("-KILL").arg(&pid).status();
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let deadline = Instant::now() + Duration::from_secs(15);
        while proc.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill_processes(|_| true);
        let _ = std::fs::remove_file(self.dir().join("run/master.pid"));
    }

    /// Starts the server again on the same ports, after [`Dovecot::stop`].
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("Dovecot did not restart: {e}"),
                // The ports may take a moment to be free again.
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Cuts every IMAP connection at once: kills this server's `imap` processes (SIGKILL, so
    /// the client sees the connection drop without a `BYE`); the server stays up.
    pub fn kick(&self) {
        let killed = self.kill_processes(|service| service == "imap");
        assert!(killed > 0, "no imap process of {} to kill", self.title());
    }

    /// `dovecot-mtasts-test-PORT`, how this server's processes name themselves.
    fn title(&self) -> String {
        format!("dovecot-mtasts-test-{}", self.imaps_port)
    }

    /// Kills (SIGKILL) this server's processes whose service (`imap`, `imap-login`, `auth`,
    /// …) `which` picks; how many.
    fn kill_processes(&self, which: impl Fn(&str) -> bool) -> usize {
        let prefix = format!("{}/", self.title());
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let first = String::from_utf8_lossy(first);
            let service = first
                .strip_prefix(&prefix)
                .map(|rest| rest.split(' ').next().unwrap_or_default());
            if service.is_some_and(&which) {
                let _ = Command::new("kill").arg("-KILL").arg(&pid).status();
                killed += 1;
            }
        }
        killed
    }

    /// The Maildir of `folder` (`INBOX`, or `.A.B` for `A/B`), created if missing.
    fn maildir(&self, folder: &str) -> PathBuf {
        let base = self.home().join("Maildir");
        let dir = if folder.eq_ignore_ascii_case("INBOX") {
            base
        } else {
            base.join(format!(".{}", folder.replace('/', ".")))
        };
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("a Maildir directory");
        }
        self.chown(&self.dir().join("home"));
        dir
    }

    /// Delivers `message` into `folder` (a new message, unseen).
    pub fn append(&self, folder: &str, message: &[u8]) {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = self.maildir(folder);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "{}.M{}P{}Q{}.mtasts-test",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = dir.join("tmp").join(&name);
        std::fs::write(&tmp, message).expect("write the message");
        self.chown(&tmp);
        std::fs::rename(&tmp, dir.join("new").join(&name)).expect("deliver the message");
    }

    /// How many messages `folder` holds, as Dovecot counts them (`doveadm mailbox status`);
    /// the server must be running.
    pub fn count(&self, folder: &str) -> usize {
        let out = self
            .command(&self.doveadm)
            .arg("-c")
            .arg(self.conf())
            .args(["mailbox", "status", "-u", USER, "messages", folder])
            .output()
            .unwrap_or_else(|e| panic!("cannot run doveadm: {e}"));
        assert!(
            out.status.success(),
            "doveadm mailbox status {folder}: {}",
            text(&out)
        );
        let s = String::from_utf8_lossy(&out.stdout);
        s.split_whitespace()
            .find_map(|w| w.strip_prefix("messages="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("doveadm mailbox status {folder}: {s}"))
    }

    /// A shell that waits for this process to end, then stops the server and removes the
    /// directory.
    fn spawn_watchdog(&self) -> Child {
        let stop = crate::watchdog::Stop {
            pid_of: r#"cat "$2/run/master.pid" 2>/dev/null"#,
            signal: "TERM",
        };
        crate::watchdog::spawn("Dovecot", self.dir(), &stop)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if dir.close().is_err() {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}
