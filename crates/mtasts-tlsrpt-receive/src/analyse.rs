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

/// Takes every input under `paths` (files, mbox files, Maildirs, directories) through the
/// pipeline, one at a time, in a stable order, calling `progress` after each. A store error
/// ends the run (what was stored so far stays stored; a rerun makes it duplicates).
pub async fn ingest_paths(
    ingester: &Ingester,
    paths: &[std::path::PathBuf],
    mut progress: impl FnMut(Step<'_>),
) -> Result<PathsRun, StoreError> {
    let mut run = PathsRun::default();
    let max = ingester.limits().max_input_bytes;
    for item in Sources::new(paths, max) {
        let input = match item {
            Ok(i) => i,
            Err(e) => {
                progress(Step::Unreadable(&e));
                run.unreadable.push(e);
                continue;
            }
        };
        let arrival = ingester
            .ingest(&Delivery {
                bytes: &input.bytes,
                via: Via::File,
                origin: &input.origin,
                too_large: input.too_large,
                received_at: std::time::SystemTime::now().into(),
            })
            .await?;
        run.counts.add(&arrival);
        progress(Step::Done {
            origin: &input.origin,
            bytes: input.bytes.len(),
            arrival: &arrival,
        });
    }
    Ok(run)
}
