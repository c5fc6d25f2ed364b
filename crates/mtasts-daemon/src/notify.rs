//! systemd's readiness protocol (`sd_notify(3)`): one datagram to `$NOTIFY_SOCKET`, which is
//! a path or, with a leading `@`, a Linux abstract socket.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `"READY=1"`) to the service manager. Returns `Ok(false)` when not run
/// by one (`$NOTIFY_SOCKET` unset or empty).
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let Some(target) = target.to_str().map(str::to_owned) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is not valid UTF-8",
        ));
    };
    notify_to(&target, state)
}

/// Sends `state` to the notification socket `target` (`/path` or `@abstract`).
pub fn notify_to(target: &str, state: &str) -> io::Result<bool> {
    if target.is_empty() {
        return Ok(false);
    }
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        send_abstract(&sock, name.as_bytes(), state)?;
    } else if target.starts_with('/') {
        sock.send_to(state.as_bytes(), target)?;
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NOTIFY_SOCKET {target:?} is neither a path nor an abstract socket"),
        ));
    }
    Ok(true)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(sock: &UnixDatagram, name: &[u8], state: &str) -> io::Result<()> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_sock: &UnixDatagram, _name: &[u8], _state: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist on Linux only",
    ))
}

/// `RELOADING=1` with the `MONOTONIC_USEC=` field that `Type=notify-reload` requires.
pub fn reloading_message() -> String {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let usec = ts.tv_sec() * 1_000_000 + ts.tv_nsec() / 1_000;
            format!("RELOADING=1\nMONOTONIC_USEC={usec}")
        }
        Err(_) => "RELOADING=1".to_owned(),
    }
}

/// Sends `state`, logging a failure instead of returning it.
pub(crate) fn notify_logged(state: &str) {
    match notify(state) {
        Ok(true) => tracing::debug!(state, "notified the service manager"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, state, "cannot notify the service manager"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let target = path.to_str().unwrap_or_else(|| panic!("path"));
        assert!(notify_to(target, "READY=1").unwrap_or_else(|e| panic!("{e}")));
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("mtasts-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let rx = UnixDatagram::bind_addr(&addr).unwrap_or_else(|e| panic!("{e}"));
        assert!(notify_to(&format!("@{name}"), "STOPPING=1").unwrap_or_else(|e| panic!("{e}")));
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn unset_or_relative() {
        assert!(!notify_to("", "READY=1").unwrap_or(true));
        assert!(notify_to("relative", "READY=1").is_err());
        assert!(reloading_message().starts_with("RELOADING=1"));
    }
}
