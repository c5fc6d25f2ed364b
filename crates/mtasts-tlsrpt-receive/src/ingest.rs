//! The one ingest pipeline every path goes through (files, mbox and Maildir messages, IMAP,
//! HTTPS POST): keep the raw bytes first, parse, authenticate a mailed report (DKIM, RFC 8460
//! §3), store the report once under its key, and quarantine what cannot be read or trusted.
//!
//! The input is judged first (parsed, its signatures verified), then kept in one transaction:
//! the raw bytes with the report or the quarantine entry, together or not at all. Nothing is
//! acknowledged to the source before that commit (the file stays, the IMAP message is not
//! moved, the HTTPS sender gets no 2xx), so a crash at any point loses nothing; the report is
//! keyed by (organization-name, report-id) (so a rerun after a crash, a second copy, or a
//! sender's retry is a duplicate), and a quarantine entry is idempotent per input and reason.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mtasts_core::Diagnostic;
use mtasts_core::tlsrpt::dkim::{self, DkimProblem, DkimRequirements};
use mtasts_core::tlsrpt::payload::{self, PayloadKind, ReceivedReport};
use mtasts_core::tlsrpt::report::ReportLimits;
use mtasts_net::dns::DnsLookup;
use mtasts_tlsrpt_store::{
    InputFate, InputOutcome, NewInput, NewReport, PutOutcome, QuarantineReason, RawInput, Store,
    StoreError, Trust, Via,
};
use serde::Serialize;

use crate::dkim::check_signatures;

/// What [`Ingester::judge`] decided about an input.
#[derive(Clone, Debug)]
pub enum Judged {
    /// Put it in quarantine, for this reason (too large, or not a report).
    Quarantine(QuarantineReason),
    /// A report, trusted this far.
    Report {
        /// The report.
        report: Box<mtasts_core::tlsrpt::report::Report>,
        /// Its trust.
        trust: Trust,
        /// The `d=` of the signature that verified it.
        dkim_domain: Option<String>,
        /// Why it is not trusted (it is quarantined for it unless a trusted copy is stored).
        untrusted: Option<QuarantineReason>,
    },
}

/// What became of one input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Arrival {
    /// A new report, stored.
    Stored {
        /// The report's id in the store.
        report: i64,
        /// How far it is trusted.
        trust: Trust,
    },
    /// A report already stored under the same key: nothing new.
    Duplicate {
        /// The stored report's id.
        report: i64,
    },
    /// Kept in quarantine: not a report, or a mailed report that is not authenticated.
    Quarantined {
        /// The quarantine entry.
        entry: i64,
        /// Why.
        reason: QuarantineReason,
        /// The report it holds, stored with trust `unverified`, when it parsed.
        report: Option<i64>,
    },
}

/// The counts of a run, printed as its closing line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Inputs read.
    pub read: u64,
    /// New reports stored.
    pub stored: u64,
    /// Reports already stored.
    pub duplicates: u64,
    /// Inputs put in quarantine.
    pub quarantined: u64,
}

impl Counts {
    /// Counts one arrival.
    pub fn add(&mut self, a: &Arrival) {
        self.read += 1;
        match a {
            Arrival::Stored { .. } => self.stored += 1,
            Arrival::Duplicate { .. } => self.duplicates += 1,
            Arrival::Quarantined { .. } => self.quarantined += 1,
        }
    }
}

impl fmt::Display for Counts {
    /// `41 read, 36 stored, 5 duplicates, 0 quarantined` (the form scripts read).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} read, {} stored, {} duplicate{}, {} quarantined",
            self.read,
            self.stored,
            self.duplicates,
            if self.duplicates == 1 { "" } else { "s" },
            self.quarantined
        )
    }
}

/// What the ingest pipeline needs.
#[derive(Clone)]
pub struct Ingester {
    store: Store,
    dns: Arc<dyn DnsLookup>,
    limits: ReportLimits,
    dkim: DkimRequirements,
}

impl fmt::Debug for Ingester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingester")
            .field("store", &self.store.target())
            .field("limits", &self.limits)
            .field("dkim", &self.dkim)
            .finish_non_exhaustive()
    }
}

/// One input, as a path gives it.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The bytes (at most the input limit).
    pub bytes: &'a [u8],
    /// How it came.
    pub via: Via,
    /// Where from (a path, `path#N`, `imaps://…;UID=N`, a peer address).
    pub origin: &'a str,
    /// `Some(size)` when the input was larger than the limit and only its first bytes were
    /// kept.
    pub too_large: Option<u64>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// The reporting domain a mailed report claims: its `TLS-Report-Submitter` header (RFC 8460
/// §5.3), else the domain of its `contact-info`.
fn submitter(r: &ReceivedReport) -> Option<String> {
    let header = r
        .source
        .email
        .as_ref()
        .and_then(|e| e.tls_report_submitter.clone())
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty());
    header.or_else(|| {
        r.report
            .contact_info
            .as_deref()
            .and_then(|c| c.rsplit_once('@'))
            .map(|(_, d)| d.trim_end_matches('>').trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
    })
}

impl Ingester {
    /// An ingester storing into `store`, looking DKIM keys up with `dns`.
    pub fn new(
        store: Store,
        dns: Arc<dyn DnsLookup>,
        limits: ReportLimits,
        dkim: DkimRequirements,
    ) -> Ingester {
        Ingester {
            store,
            dns,
            limits,
            dkim,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The limits.
    pub fn limits(&self) -> &ReportLimits {
        &self.limits
    }

    /// Whether a mailed report is authenticated (RFC 8460 §3).
    pub async fn authenticate(
        &self,
        bytes: &[u8],
        r: &ReceivedReport,
    ) -> Result<dkim::Verified, DkimProblem> {
        let checks = check_signatures(bytes, self.dns.as_ref()).await;
        dkim::judge(&checks, submitter(r).as_deref(), self.dkim)
    }

    /// How far a parsed input is trusted, by its form and the path it came by.
    async fn trust(
        &self,
        d: &Delivery<'_>,
        r: &ReceivedReport,
    ) -> (Trust, Option<String>, Option<DkimProblem>) {
        if r.source.kind == PayloadKind::Email {
            return match self.authenticate(d.bytes, r).await {
                Ok(v) => (Trust::Verified, Some(v.domain), None),
                Err(p) => (Trust::Unverified, None, Some(p)),
            };
        }
        match d.via {
            Via::Https => (Trust::Https, None, None),
            Via::File => (Trust::Operator, None, None),
            // A mailbox holds e-mail; a bare JSON body in one was not mailed as RFC 8460 §3
            // requires, and cannot be authenticated.
            Via::Imap => (Trust::Unverified, None, Some(DkimProblem::NoSignature)),
        }
    }

    /// Takes one input through the pipeline: [`Ingester::judge`], then [`Ingester::keep`].
    pub async fn ingest(&self, d: &Delivery<'_>) -> Result<Arrival, StoreError> {
        let judged = self.judge(d).await;
        self.keep(d, &judged).await
    }

    /// Reads an input and decides what becomes of it, without storing anything: too large, not
    /// a report, or a report with its trust (a mailed report's DKIM signatures verified,
    /// RFC 8460 §3).
    pub async fn judge(&self, d: &Delivery<'_>) -> Judged {
        if let Some(size) = d.too_large {
            return Judged::Quarantine(QuarantineReason {
                code: "input.too-large".into(),
                message: format!(
                    "{}: {size} bytes is over the limit of {} bytes (--max-input-bytes); its first {} bytes are kept",
                    d.origin,
                    self.limits.max_input_bytes,
                    d.bytes.len()
                ),
            });
        }
        let parsed = match payload::parse_payload(d.bytes, &self.limits) {
            Ok(p) => p,
            Err(e) => {
                return Judged::Quarantine(QuarantineReason {
                    code: e.code().into(),
                    message: format!("{}: {e}", d.origin),
                });
            }
        };
        let (trust, dkim_domain, problem) = self.trust(d, &parsed).await;
        Judged::Report {
            report: Box::new(parsed.report),
            trust,
            dkim_domain,
            untrusted: problem.map(|p| QuarantineReason {
                code: p.code().into(),
                message: format!("{}: {p}", d.origin),
            }),
        }
    }

    /// Keeps an input and what [`Ingester::judge`] decided, in one transaction: the raw bytes
    /// and the report or quarantine entry are stored together or not at all, so a crash at
    /// any moment loses nothing that was acknowledged (the source keeps the input until then:
    /// the file stays, the IMAP message is not moved, the HTTPS sender gets no 2xx) and a
    /// rerun makes a duplicate.
    ///
    /// The input is queued for the store when this is called (see `Store::put_input`): calls
    /// made in order are stored in that order.
    pub fn keep(
        &self,
        d: &Delivery<'_>,
        judged: &Judged,
    ) -> impl std::future::Future<Output = Result<Arrival, StoreError>> + Send + use<> {
        let (fate, reason, trust) = match judged {
            Judged::Quarantine(reason) => (
                InputFate::Quarantine(reason.clone()),
                Some(reason.clone()),
                None,
            ),
            Judged::Report {
                report,
                trust,
                dkim_domain,
                untrusted,
            } => (
                InputFate::Report {
                    report,
                    trust: *trust,
                    dkim_domain: dkim_domain.as_deref(),
                    untrusted: untrusted.clone(),
                },
                untrusted.clone(),
                Some(*trust),
            ),
        };
        let stored = self.store.put_input(&NewInput {
            raw: RawInput {
                bytes: d.bytes,
                received_at: d.received_at,
                via: d.via,
                origin: d.origin,
            },
            fate,
        });
        async move {
            Ok(match stored.await? {
                InputOutcome::Report {
                    outcome: PutOutcome::Stored { id },
                    ..
                } => Arrival::Stored {
                    report: id,
                    // A report is stored only from `Judged::Report`, which has a trust.
                    trust: trust.unwrap_or(Trust::Unverified),
                },
                InputOutcome::Report {
                    outcome: PutOutcome::Duplicate { id, .. },
                    ..
                } => Arrival::Duplicate { report: id },
                InputOutcome::Quarantined { entry, report, .. } => Arrival::Quarantined {
                    entry,
                    // An entry is made only with a reason.
                    reason: reason.unwrap_or_else(|| QuarantineReason {
                        code: "internal".into(),
                        message: "quarantined without a reason".into(),
                    }),
                    report,
                },
            })
        }
    }

    /// Runs a quarantined input through the pipeline again (after a DNS fix, or with a newer
    /// parser). `trust` set: count it anyway, as the operator vouches for it. The entry is
    /// released when the input now parses and is trusted.
    pub async fn retry(&self, entry: i64, trust: bool) -> Result<Option<Retried>, StoreError> {
        let Some((e, bytes)) = self.store.quarantine_entry(entry).await? else {
            return Ok(None);
        };
        let parsed = match payload::parse_payload(&bytes, &self.limits) {
            Ok(p) => p,
            Err(err) => {
                return Ok(Some(Retried::Still(QuarantineReason {
                    code: err.code().into(),
                    message: format!("{}: {err}", e.origin),
                })));
            }
        };
        let d = Delivery {
            bytes: &bytes,
            via: e.via,
            origin: &e.origin,
            too_large: None,
            received_at: e.at,
        };
        let (mut t, mut domain, problem) = self.trust(&d, &parsed).await;
        if let Some(p) = &problem {
            if !trust {
                return Ok(Some(Retried::Still(QuarantineReason {
                    code: p.code().into(),
                    message: format!("{}: {p}", e.origin),
                })));
            }
            t = Trust::Operator;
            domain = None;
        }
        let put = self
            .store
            .put_report(&NewReport {
                raw_id: e.raw_id,
                report: &parsed.report,
                via: e.via,
                trust: t,
                dkim_domain: domain.as_deref(),
                received_at: e.at,
            })
            .await?;
        let id = match put {
            PutOutcome::Stored { id } | PutOutcome::Duplicate { id, .. } => id,
        };
        self.store.set_trust(id, t, domain.as_deref()).await?;
        self.store.release(entry).await?;
        Ok(Some(Retried::Released {
            report: id,
            trust: t,
        }))
    }
}

/// What a retry did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Retried {
    /// The input now counts; its entry is gone.
    Released {
        /// The report.
        report: i64,
        /// Its trust now.
        trust: Trust,
    },
    /// Still not usable, for this reason; the entry stays.
    Still(QuarantineReason),
}
