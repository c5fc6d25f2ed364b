//! From the store to the decisions: the rows the store gives for a domain become the core's
//! readiness evidence ([`mtasts_core::tlsrpt::readiness`]), and whole directories of inputs
//! are taken through the ingest pipeline in order, with progress.

use chrono::NaiveDate;
use mtasts_core::tlsrpt::readiness::{
    self, Evidence, FailedSessions, Live, Readiness, Sessions, Thresholds,
};
use mtasts_tlsrpt_store::{DomainHistory, Filter, Store, StoreError, Via};

use crate::ingest::{Arrival, Counts, Delivery, Ingester};
use crate::sources::{SourceError, Sources};

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

/// How many inputs [`ingest_paths`] takes through the pipeline at once by default.
pub const DEFAULT_IN_FLIGHT: usize = 4;

/// The most inputs [`ingest_paths`] may take through the pipeline at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// Takes every input under `paths` (files, mbox files, Maildirs, directories) through the
/// pipeline, up to `in_flight` at once (clamped to 1..=[`MAX_IN_FLIGHT`]): while one is being
/// stored, the next ones are parsed and their DKIM keys looked up. Memory is bounded by
/// `in_flight` inputs of at most `max_input_bytes` each (plus what reading one mbox needs).
/// Results, progress and counts come in the stable order of the inputs; `progress` is called
/// after each. A store error ends the run (what was stored so far stays stored; a rerun makes
/// it duplicates). Each input is still stored by its own transactions, so a crash at any
/// moment leaves every report stored whole or not at all.
pub async fn ingest_paths(
    ingester: &Ingester,
    paths: &[std::path::PathBuf],
    in_flight: usize,
    mut progress: impl FnMut(Step<'_>),
) -> Result<PathsRun, StoreError> {
    use futures_util::stream::{self, StreamExt};

    let mut run = PathsRun::default();
    let max = ingester.limits().max_input_bytes;
    let mut unreadable = Vec::new();
    let inputs = stream::iter(Sources::new(paths, max)).map(|item| async move {
        match item {
            Ok(input) => {
                let arrival = ingester
                    .ingest(&Delivery {
                        bytes: &input.bytes,
                        via: Via::File,
                        origin: &input.origin,
                        too_large: input.too_large,
                        received_at: std::time::SystemTime::now().into(),
                    })
                    .await;
                Ok((input.origin, input.bytes.len(), arrival))
            }
            Err(e) => Err(e),
        }
    });
    let mut results = inputs.buffered(in_flight.clamp(1, MAX_IN_FLIGHT));
    while let Some(r) = results.next().await {
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
