//! # mtasts-daemon
//!
//! The Postfix socketmap policy daemon of mtasts: Postfix asks it, through
//! `smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix`, which TLS policy applies to
//! a next-hop domain, and it answers from the RFC 8461 MTA-STS policy cache of
//! [`mtasts_resolver`]: `OK secure match=...` for a policy in force, `NOTFOUND ` otherwise.
//! The protocol itself is sans-IO in [`mtasts_postfix::socketmap`].
//!
//! - [`Config`]: the TOML configuration file.
//! - [`Daemon`]: listeners (TCP and Unix sockets), connections, reload and graceful shutdown.
//! - [`client`]: a socketmap client for a running daemon (`mtasts daemon query`).
//! - [`admin`]: the admin channel on a Unix socket (`mtasts daemon cache list|show|forget`).
//! - [`run`]: the whole program: configuration, logging, signals, systemd notification.
//!
//! See `docs/daemon.md` for operation.
#![forbid(unsafe_code)]

pub mod admin;
pub mod client;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod notify;
mod server;

use std::path::Path;

pub use config::{AdminSocket, Config, ConfigError, Listener, LogConfig, LogFormat, ZoneOverrides};
pub use server::{BoundAddr, Daemon, ReloadReport, ShutdownReport};

use tokio::signal::unix::{SignalKind, signal};

/// Runs the daemon with the configuration file at `config_path` until SIGTERM or SIGINT:
/// installs logging, starts serving, tells systemd `READY=1`, reloads on SIGHUP
/// (`RELOADING=1` … `READY=1`), and on a stop signal tells `STOPPING=1`, finishes the
/// requests in flight (up to `shutdown_timeout`) and returns `Ok(())`. A second stop signal
/// during shutdown returns at once.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    logging::init(&config.log)?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let daemon = Daemon::start(config).await?;
    notify::notify_logged("READY=1\nSTATUS=answering socketmap lookups");
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!(config = %config_path.display(), "SIGHUP: reloading the configuration");
                notify::notify_logged(&notify::reloading_message());
                // The error is logged by reload_from_file; the running configuration stays.
                let _ = daemon.reload_from_file(config_path);
                notify::notify_logged("READY=1\nSTATUS=answering socketmap lookups");
            }
            _ = term.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: shutting down");
                break;
            }
        }
    }
    notify::notify_logged("STOPPING=1");
    tokio::select! {
        _ = daemon.shutdown() => {}
        _ = term.recv() => tracing::warn!("second SIGTERM: exiting without waiting"),
        _ = int.recv() => tracing::warn!("second SIGINT: exiting without waiting"),
    }
    Ok(())
}
