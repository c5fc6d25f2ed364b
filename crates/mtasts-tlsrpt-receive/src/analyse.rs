//! From the store to the decisions: the rows the store gives for a domain become the core's
//! readiness evidence ([`mtasts_core::tlsrpt::readiness`]), and whole directories of inputs
//! are taken through the ingest pipeline in order, with progress.

use std::sync::Arc;

use chrono::NaiveDate;
use mtasts_core::tlsrpt::readiness::{
    self, Evidence, FailedSessions, Live, Readiness, Sessions, Thresholds,
};
use mtasts_tlsrpt_store::{DomainHistory, Filter, Store, StoreError, Via};

use crate::ingest::{Arrival, Counts, Delivery, Ingester};
use crate::sources::{SourceError, Sources};
use tokio::sync::Semaphore;

/// The core's evidence for `domain` from what the store holds.
pub fn evidence(history: DomainHistory, live: Option<Live>, today: NaiveDate) -> Evidence {
    Evidence {
        domain: history.domain,
        today: Some(today),
        sessions: history
            .sessions
            .into_iter()
            .map(|s| Sessions {
                day: s.day,
                organization: s.organization,
                report_id: s.report_id,
                policy_type: s.policy_type,
                mode: s.mode,
                successful: s.successful,
                failed: s.failed,
            })
            .collect(),
        failures: history
            .failures
            .into_iter()
            .map(|f| FailedSessions {
                day: f.day,
                organization: f.organization,
                report_id: f.report_id,
                policy_type: f.policy_type,
                mode: f.mode,
                result_type: f.result_type,
                sending_ip: f.sending_ip,
                receiving_mx: f.receiving_mx,
                reason: f.reason,
                sessions: f.sessions,
            })
            .collect(),
        live,
    }
}

/// How far back `readiness` looks by default: twice the days it needs, so that a gap in the
/// reports does not hide the testing period.
pub fn default_since(today: NaiveDate, t: &Thresholds) -> NaiveDate {
    let days = u64::from(t.min_days.max(t.regression_days)).saturating_mul(2);
    today
        .checked_sub_days(chrono::Days::new(days))
        .unwrap_or(NaiveDate::MIN)
}

/// The readiness of `domain` from the reports in `store` within `filter`, with the
/// live deployment when it was looked at.
pub async fn readiness_of(
    store: &Store,
    domain: &str,
    filter: &Filter,
    live: Option<Live>,
    today: NaiveDate,
    t: &Thresholds,
) -> Result<Readiness, StoreError> {
    let history = store.history(domain, filter).await?;
    Ok(readiness::assess(&evidence(history, live, today), t))
}

/// One step of a run over paths, for a progress display.
#[derive(Debug)]
pub enum Step<'a> {
    /// An input went through the pipeline.
    Done {
        /// Where it came from.
        origin: &'a str,
        /// Its size.
        bytes: usize,
        /// What became of it.
        arrival: &'a Arrival,
    },
    /// A path could not be read (the run goes on).
    Unreadable(&'a SourceError),
}

/// What a run over paths did.
#[derive(Debug, Default)]
pub struct PathsRun {
    /// The counts.
    pub counts: Counts,
    /// The paths that could not be read.
    pub unreadable: Vec<SourceError>,
}

/// How much [`ingest_paths`] takes through the pipeline at once: at most `inputs` inputs and,
/// together, at most `bytes` bytes of them (an input larger than that goes through alone).
/// While some are being stored, the next ones are read, parsed and their DKIM keys looked up,
/// on every worker thread; the store commits those that are ready together (the SQLite
/// store's group commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// Inputs at once, 1..=[`MAX_IN_FLIGHT`].
    pub inputs: usize,
    /// Bytes of input at once (the raw inputs; each is at most `max_input_bytes`).
    pub bytes: usize,
}

impl InFlight {
    /// 64 inputs, 64 MiB.
    pub const DEFAULT: InFlight = InFlight {
        inputs: 64,
        bytes: 64 * 1024 * 1024,
    };
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::DEFAULT
    }
}

/// An input read from a path, as the pipeline takes it.
fn delivery(
    input: &crate::sources::Input,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Delivery<'_> {
    Delivery {
        bytes: &input.bytes,
        via: Via::File,
        origin: &input.origin,
        too_large: input.too_large,
        received_at,
    }
}

/// The most inputs [`ingest_paths`] may take through the pipeline at once.
pub const MAX_IN_FLIGHT: usize = 1024;

/// Takes every input under `paths` (files, mbox files, Maildirs, directories) through the
/// pipeline, as many at once as `in_flight` allows (`inputs` clamped to
/// 1..=[`MAX_IN_FLIGHT`]). Memory is bounded by `in_flight.bytes` of raw inputs, plus the one
/// being read (at most `max_input_bytes`), plus what parsing takes on each worker thread (at
/// most `max_decompressed_bytes` and `max_json_values` per input).
/// Results, progress and counts come in the stable order of the inputs; `progress` is called
/// after each. A store error ends the run (what was stored so far stays stored; a rerun makes
/// it duplicates). Each input is still stored by its own transactions (savepoints of a shared
/// one in SQLite), so a crash at any moment leaves every report stored whole or not at all.
pub async fn ingest_paths(
    ingester: &Ingester,
    paths: &[std::path::PathBuf],
    in_flight: InFlight,
    mut progress: impl FnMut(Step<'_>),
) -> Result<PathsRun, StoreError> {
    use futures_util::stream::{self, StreamExt};

    let mut run = PathsRun::default();
    let max = ingester.limits().max_input_bytes;
    let mut unreadable = Vec::new();
    // The byte budget, in KiB (so that a budget of any size fits a semaphore's permits); an
    // input takes its size's worth (at least 1 KiB, at most the whole budget) until it is
    // stored.
    let budget_kib = u32::try_from(in_flight.bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let budget = Arc::new(Semaphore::new(budget_kib as usize));
    let n = in_flight.inputs.clamp(1, MAX_IN_FLIGHT);
    // Judging (parsing, DKIM verification) runs in a task per input, on every worker thread of
    // the runtime; the judged inputs come back in the order of the inputs and are queued for
    // the store in that order (so what becomes of two copies of one report does not depend on
    // timing), up to `n` waiting for their commit at once (committed together by SQLite).
    // The `then` step yields each input's task handle on purpose: `buffered` awaits them.
    #[allow(clippy::async_yields_async)]
    let judged = stream::iter(Sources::new(paths, max))
        .then(|item| {
            let ingester = ingester.clone();
            let budget = Arc::clone(&budget);
            async move {
                let size = item.as_ref().map_or(0, |i| i.bytes.len());
                let kib = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX);
                // The semaphore is never closed, so the permits always come.
                let permit = budget
                    .acquire_many_owned(kib.clamp(1, budget_kib))
                    .await
                    .ok();
                tokio::spawn(async move {
                    let input = item?;
                    let received_at = std::time::SystemTime::now().into();
                    let judged = ingester.judge(&delivery(&input, received_at)).await;
                    Ok((input, received_at, judged, permit))
                })
            }
        })
        .buffered(n);
    let kept = judged
        .map(|joined| {
            // A task ends by finishing, by panicking (a bug, carried on as it is), or cancelled
            // by the runtime shutting down (then there is no one left to tell: `None`).
            let queued = match joined {
                Ok(Ok((input, received_at, judged, permit))) => {
                    // Queued here, in the order of the inputs. The store has its own copy of
                    // the bytes now; the permit is held until they are committed.
                    let stored = ingester.keep(&delivery(&input, received_at), &judged);
                    Some(Ok((stored, input.origin, input.bytes.len(), permit)))
                }
                Ok(Err(e)) => Some(Err(e)),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => None,
            };
            async move {
                match queued? {
                    Ok((stored, origin, bytes, _permit)) => Some(Ok((origin, bytes, stored.await))),
                    Err(e) => Some(Err(e)),
                }
            }
        })
        .buffered(n);
    let mut results = std::pin::pin!(kept);
    while let Some(r) = results.next().await {
        let Some(r) = r else { break };
        match r {
            Ok((origin, bytes, arrival)) => {
                let arrival = arrival?;
                run.counts.add(&arrival);
                progress(Step::Done {
                    origin: &origin,
                    bytes,
                    arrival: &arrival,
                });
            }
            Err(e) => {
                progress(Step::Unreadable(&e));
                unreadable.push(e);
            }
        }
    }
    run.unreadable = unreadable;
    Ok(run)
}
