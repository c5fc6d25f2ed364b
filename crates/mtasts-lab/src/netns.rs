//! `mtasts-lab up --netns NAME`: run the world inside a new Linux network namespace.
//!
//! The parent creates the namespace (`ip netns add`, `ip link set lo up`) and
//! `/etc/netns/NAME/resolv.conf`, then re-executes itself under `ip netns exec NAME` with
//! `--inside` and the standard ports. A new namespace has nothing but its own loopback
//! interface, so nothing the world does can leave the machine. 127.0.0.0/8 is routed to `lo`
//! as a whole, so the world's addresses need no `ip addr add` (and adding them would make
//! Postfix treat the MX addresses as its own and refuse to deliver to them, "mail loops back
//! to myself"). On exit, SIGINT or SIGTERM the parent stops the child, deletes the namespace
//! and removes `/etc/netns/NAME`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mtasts_lab::{WorldInfo, limits};

use crate::UpArgs;

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The effective uid, from /proc (no libc needed).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Removes what the parent created, whatever way it exits.
struct Cleanup {
    name: String,
    etc_dir: PathBuf,
    state_dir: Option<PathBuf>,
    ready_file: Option<PathBuf>,
    child_pid: Option<u32>,
    netns_created: bool,
}

impl Cleanup {
    fn stop_child(&mut self) {
        let Some(pid) = self.child_pid.take() else {
            return;
        };
        let pid = pid.to_string();
        let _ = run("kill", &["-TERM", &pid]);
        let deadline = Instant::now() + limits::SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
            // A zombie still has /proc/PID; its status says so.
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"));
            if zombie {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = run("kill", &["-KILL", &pid]);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.stop_child();
        if self.netns_created {
            let _ = run("ip", &["netns", "del", &self.name]);
        }
        if self.netns_created {
            let _ = std::fs::remove_dir_all(&self.etc_dir);
        }
        if let Some(d) = &self.state_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some(f) = &self.ready_file {
            let _ = std::fs::remove_file(f);
        }
    }
}

pub(crate) fn run_parent(args: &UpArgs, name: &str) -> anyhow::Result<()> {
    if !valid_name(name) {
        bail!("--netns {name:?}: use 1-32 characters from A-Z a-z 0-9 . _ -");
    }
    if effective_uid() != Some(0) {
        bail!("--netns needs root (ip netns add); run as root or without --netns");
    }
    let etc_dir = PathBuf::from("/etc/netns").join(name);
    if Path::new("/run/netns").join(name).exists() {
        bail!("network namespace {name} already exists; delete it with: ip netns del {name}");
    }
    let opts = args.options(true);
    let block = opts.ip_block.unwrap_or_else(|| Ipv4Addr::new(127, 1, 1, 0));
    let dns_ip = {
        let o = block.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 1)
    };
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => {
            std::env::temp_dir().join(format!("mtasts-lab-netns-{name}-{}", std::process::id()))
        }
    };
    // Catch SIGINT/SIGTERM before creating anything, so that cleanup always runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut signals = {
        let _guard = rt.enter();
        crate::Signals::new()?
    };
    let mut cleanup = Cleanup {
        name: name.to_owned(),
        etc_dir: etc_dir.clone(),
        state_dir: args.state_dir.is_none().then(|| state_dir.clone()),
        ready_file: args.ready_file.clone(),
        child_pid: None,
        netns_created: false,
    };
    run("ip", &["netns", "add", name])?;
    cleanup.netns_created = true;
    run("ip", &["-n", name, "link", "set", "lo", "up"])?;
    std::fs::create_dir_all(&etc_dir).with_context(|| format!("creating {}", etc_dir.display()))?;
    let resolv = format!(
        "# written by mtasts-lab for namespace {name}; removed when it stops\nnameserver {dns_ip}\noptions timeout:2 attempts:2 trust-ad\n"
    );
    std::fs::write(etc_dir.join("resolv.conf"), resolv)
        .with_context(|| format!("writing {}/resolv.conf", etc_dir.display()))?;
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let child_ready = state_dir.join("child-ready.json");
    let _ = std::fs::remove_file(&child_ready);

    let exe = std::env::current_exe().context("finding this program's path")?;
    let mut cmd = tokio::process::Command::new("ip");
    cmd.args(["netns", "exec", name])
        .arg(&exe)
        .arg("up")
        .arg(&args.scenario)
        .arg("--inside")
        .arg("--netns")
        .arg(name)
        .arg("--ip-block")
        .arg(block.to_string())
        .arg("--dns-port")
        .arg(opts.dns_port.to_string())
        .arg("--https-port")
        .arg(opts.https_port.to_string())
        .arg("--smtp-port")
        .arg(opts.smtp_port.to_string())
        .arg("--control-port")
        .arg(opts.control_port.to_string())
        .arg("--state-dir")
        .arg(&state_dir)
        .arg("--ready-file")
        .arg(&child_ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if opts.no_control {
        cmd.arg("--no-control");
    }
    if let Some(m) = &opts.messages_dir {
        cmd.arg("--messages-dir").arg(m);
    }

    rt.block_on(async {
        let mut child = cmd.spawn().context("starting ip netns exec")?;
        cleanup.child_pid = child.id();
        // Wait for the child to report its addresses.
        let deadline = Instant::now() + limits::STARTUP_TIMEOUT;
        let info: WorldInfo = loop {
            if let Some(status) = child.try_wait().context("waiting for the world")? {
                bail!("the world inside namespace {name} exited early ({status})");
            }
            if let Ok(text) = std::fs::read(&child_ready)
                && let Ok(info) = serde_json::from_slice(&text)
            {
                break info;
            }
            if Instant::now() > deadline {
                bail!("the world inside namespace {name} did not start in time");
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(25)) => {}
                () = signals.recv() => bail!("interrupted while the world was starting"),
            }
        };
        crate::print_info(&info, Some(name));
        if let Some(path) = &args.ready_file {
            crate::write_ready_file(path, &info)?;
        }
        tokio::select! {
            () = signals.recv() => {},
            status = child.wait() => {
                cleanup.child_pid = None;
                let status = status.context("waiting for the world")?;
                bail!("the world inside namespace {name} stopped ({status})");
            }
        }
        Ok(())
    })?;
    drop(cleanup);
    Ok(())
}
