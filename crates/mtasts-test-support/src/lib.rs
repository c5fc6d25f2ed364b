//! # mtasts-test-support
//!
//! What the tests of several mtasts crates share, in one place (hickory's `test-support`
//! crate is the model): a socketmap client speaking real netstrings over real sockets, a
//! throwaway `redis-server`, a lab world's endpoints as `mtasts` flags, workspace paths, and
//! the guard against hangs. Never shipped (`publish = false`).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

pub mod dkim;
pub mod dovecot;
pub mod pebble;
pub mod postgres;
pub mod redis;
pub mod schema;
pub mod socketmap;
pub mod watchdog;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mtasts_lab::World;

/// How long a test waits for anything before it fails (a guard against hangs, not a timing
/// assertion).
pub const GUARD: Duration = Duration::from_secs(60);

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// `lab/scenarios/<name>`.
pub fn scenario_path(name: &str) -> PathBuf {
    workspace_root().join("lab/scenarios").join(name)
}

/// A lab scenario by file name, parsed.
pub fn scenario(name: &str) -> mtasts_lab::Scenario {
    let path = scenario_path(name);
    mtasts_lab::Scenario::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `tests/data/tlsrpt` of mtasts-core: the report corpus copied from `shared/corpus/tlsrpt`.
pub fn report_corpus() -> PathBuf {
    workspace_root().join("crates/mtasts-core/tests/data/tlsrpt")
}

/// A binary of the workspace (`mtasts`, `mtasts-lab`) built beside the running test binary
/// (`cargo test --workspace` builds them; `MTASTS_BIN_DIR` overrides the directory).
pub fn workspace_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("MTASTS_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."));
    profile.join(name)
}

/// The flags that point `mtasts check`, `init` and `resolve` at a lab world.
pub fn lab_flags(w: &World) -> Vec<String> {
    vec![
        "--dns".into(),
        w.dns_addr().to_string(),
        "--ca-file".into(),
        w.ca_pem_path().display().to_string(),
        "--https-port".into(),
        w.https_port().to_string(),
        "--smtp-port".into(),
        w.smtp_port().to_string(),
    ]
}

/// Polls `cond` until it holds (or [`GUARD`] passes, which fails the test).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a binary with `args` then `extra`, `NO_COLOR=1`, and `stdin` (or none), and waits
/// for it.
pub fn run(
    bin: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    extra: &[String],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = bin.as_ref();
    let mut child = Command::new(bin)
        .args(args)
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", Path::new(bin).display()));
    match stdin {
        Some(input) => {
            if let Some(mut pipe) = child.stdin.take() {
                pipe.write_all(input.as_bytes())
                    .unwrap_or_else(|e| panic!("write stdin: {e}"));
            }
        }
        None => drop(child.stdin.take()),
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"))
}

/// Standard output and standard error of a finished command, for failure messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
