//! The watchdog of a private server started by a test: a small shell process that waits for
//! the test process to end (also by `kill -9`, when `Drop` never runs), then stops the server
//! and removes its directory, so no test leaves a server or a temporary tree behind.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// How the watchdog finds and stops the server.
pub struct Stop<'a> {
    /// A shell command printing the server's pid; `$2` is the server's directory.
    pub pid_of: &'a str,
    /// The first signal (`TERM`, `QUIT`, `KILL`); `KILL` follows after 10 s.
    pub signal: &'a str,
}

/// Starts the watchdog of the server `what` (for its process name and panic message) living in
/// `dir`.
pub fn spawn(what: &str, dir: &Path, stop: &Stop<'_>) -> Child {
    let script = format!(
        r#"
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            pid=$({pid_of})
            if [ -n "$pid" ]; then
                kill -{signal} "$pid" 2>/dev/null
                i=0
                while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
                kill -KILL "$pid" 2>/dev/null
            fi
            rm -rf "$2"
        "#,
        pid_of = stop.pid_of,
        signal = stop.signal,
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(format!("mtasts-{}-watchdog", what.to_lowercase()))
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {what} watchdog: {e}"))
}
