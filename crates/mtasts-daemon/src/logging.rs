//! Structured logs with `tracing`: text or JSON lines on standard error (journald keeps
//! them), with a filter that a reload can change.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{LogConfig, LogFormat};

static HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber. Only the first call in a process installs one; later
/// calls (as in tests) only change the level.
pub fn init(cfg: &LogConfig) -> anyhow::Result<()> {
    if HANDLE.get().is_some() {
        return set_level(&cfg.level);
    }
    let filter = EnvFilter::try_new(effective_filter(&cfg.level))?;
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match cfg.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    match installed {
        Ok(()) => {
            let _ = HANDLE.set(handle);
            Ok(())
        }
        // Another subscriber is already installed (a test harness, an embedding program):
        // keep it.
        Err(e) => {
            tracing::debug!(error = %e, "a tracing subscriber is already installed");
            Ok(())
        }
    }
}

/// Changes the log filter of the subscriber installed by [`init`]. Does nothing when
/// [`init`] did not install one.
pub fn set_level(level: &str) -> anyhow::Result<()> {
    if let Some(h) = HANDLE.get() {
        let filter = EnvFilter::try_new(effective_filter(level))?;
        h.reload(filter)?;
    }
    Ok(())
}

/// The `tracing` filter for a configured level. A bare `debug` or `trace` applies to mtasts'
/// own crates; the libraries under them (DNS, HTTP, TLS) stay at `info`, or their debug
/// output would drown the daemon's. Anything else (`info`, `"debug,hickory_resolver=trace"`)
/// is used as written.
pub fn effective_filter(level: &str) -> String {
    let l = level.trim();
    if l.eq_ignore_ascii_case("debug") || l.eq_ignore_ascii_case("trace") {
        let l = l.to_ascii_lowercase();
        format!("info,mtasts_daemon={l},mtasts_resolver={l},mtasts_core={l}")
    } else {
        l.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_debug_is_for_mtasts_only() {
        assert_eq!(
            effective_filter("debug"),
            "info,mtasts_daemon=debug,mtasts_resolver=debug,mtasts_core=debug"
        );
        assert_eq!(effective_filter("warn"), "warn");
        assert_eq!(
            effective_filter("debug,hickory_resolver=trace"),
            "debug,hickory_resolver=trace"
        );
        assert!(EnvFilter::try_new(effective_filter("TRACE")).is_ok());
    }
}
