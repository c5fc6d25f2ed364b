//! `/metrics` on the admin listener, in the Prometheus text format (version 0.0.4):
//!
//! - `mtasts_serve_requests_total{domain, status}`: requests answered, by policy domain
//!   (`unknown` for hosts not served, `receiver` for the TLS-RPT receiver, `acme-http-01`)
//!   and status code;
//! - `mtasts_serve_certificate_expiry_seconds{name}`: seconds until each served certificate
//!   name expires (negative once expired);
//! - `mtasts_serve_certificate_expiring{name}`: 1 within `certificates.expiry_warning_days`;
//! - `mtasts_serve_id_drift{domain, state}`: 1 when the published `_mta-sts` id does not lead
//!   senders to the served policy (`state`: `stale`, `missing`, `invalid`), else 0
//!   (`in-sync`, `unknown`);
//! - `mtasts_serve_acme_failures{name}`: failed ACME orders since the last success, per name
//!   (with `[acme]` only);
//! - `mtasts_serve_reloads_total{result}`: reloads, `ok` or `failed`;
//! - `mtasts_serve_connections_*`: the HTTPS server's counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mtasts_net::http_server::ServerStats;

use crate::server::{Shared, unix_now};

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

/// A label value, escaped (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one answer.
    pub fn request(&self, domain: &str, status: u16) {
        let mut m = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((domain.to_owned(), status)).or_insert(0) += 1;
    }

    /// Counts one reload.
    pub fn reload(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads so far: (ok, failed).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Requests answered for `domain` with `status`.
    pub fn requests(&self, domain: &str, status: u16) -> u64 {
        let m = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(&(domain.to_owned(), status)).copied().unwrap_or(0)
    }

    /// The whole exposition.
    pub fn render(&self, shared: &Shared) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP mtasts_serve_requests_total Requests answered, by policy domain and status.\n# TYPE mtasts_serve_requests_total counter"
        );
        {
            let m = self
                .requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((d, s), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "mtasts_serve_requests_total{{domain=\"{}\",status=\"{s}\"}} {n}",
                    label(d)
                );
            }
        }
        let warn_days = i64::from(shared.state().config.certificates.expiry_warning_days);
        let now = unix_now();
        let _ = writeln!(
            o,
            "# HELP mtasts_serve_certificate_expiry_seconds Seconds until the certificate served for the name expires.\n# TYPE mtasts_serve_certificate_expiry_seconds gauge"
        );
        let expiries = shared.expiries();
        for (name, not_after) in &expiries {
            let _ = writeln!(
                o,
                "mtasts_serve_certificate_expiry_seconds{{name=\"{}\"}} {}",
                label(name),
                not_after - now
            );
        }
        let _ = writeln!(
            o,
            "# HELP mtasts_serve_certificate_expiring 1 when the certificate expires within certificates.expiry_warning_days.\n# TYPE mtasts_serve_certificate_expiring gauge"
        );
        for (name, not_after) in &expiries {
            let _ = writeln!(
                o,
                "mtasts_serve_certificate_expiring{{name=\"{}\"}} {}",
                label(name),
                u8::from(not_after - now < warn_days * 86_400)
            );
        }
        if let Some(acme) = shared.acme() {
            let _ = writeln!(
                o,
                "# HELP mtasts_serve_acme_failures Failed ACME orders for the name since its last success.\n# TYPE mtasts_serve_acme_failures gauge"
            );
            for s in acme.status(u64::try_from(now).unwrap_or(0)) {
                let _ = writeln!(
                    o,
                    "mtasts_serve_acme_failures{{name=\"{}\"}} {}",
                    label(&s.name),
                    s.failures
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP mtasts_serve_id_drift 1 when the published _mta-sts id does not lead senders to the served policy (RFC 8461 §3.1, §8.1).\n# TYPE mtasts_serve_id_drift gauge"
        );
        for (domain, (_, state)) in shared.drift() {
            let _ = writeln!(
                o,
                "mtasts_serve_id_drift{{domain=\"{}\",state=\"{}\"}} {}",
                label(&domain),
                state.as_str(),
                u8::from(state.is_drift())
            );
        }
        let (ok, failed) = self.reloads();
        let _ = writeln!(
            o,
            "# HELP mtasts_serve_reloads_total Reloads of the configuration, policies and certificates.\n# TYPE mtasts_serve_reloads_total counter\nmtasts_serve_reloads_total{{result=\"ok\"}} {ok}\nmtasts_serve_reloads_total{{result=\"failed\"}} {failed}"
        );
        let s = &shared.https_stats;
        for (name, help, v) in [
            ("accepted_total", "HTTPS connections accepted.", &s.accepted),
            ("open", "HTTPS connections open.", &s.open),
            (
                "refused_total",
                "HTTPS connections refused at max_connections or max_connections_per_client.",
                &s.refused_max_connections,
            ),
            (
                "handshake_failed_total",
                "TLS handshakes failed or timed out.",
                &s.handshake_failed,
            ),
        ] {
            let mut value = ServerStats::get(v);
            if name == "refused_total" {
                value += ServerStats::get(&s.refused_per_client);
            }
            if name == "handshake_failed_total" {
                value += ServerStats::get(&s.handshake_timed_out);
            }
            let kind = if name == "open" { "gauge" } else { "counter" };
            let _ = writeln!(
                o,
                "# HELP mtasts_serve_connections_{name} {help}\n# TYPE mtasts_serve_connections_{name} {kind}\nmtasts_serve_connections_{name} {value}"
            );
        }
        o
    }
}
