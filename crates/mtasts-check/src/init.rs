//! `mtasts init`, sans-IO: from what the MX hosts really present, the policy file and the DNS
//! records that would be correct (RFC 8461 §3.1, §3.2, §4.1; RFC 8460 §3).
//!
//! Each MX host is covered by the certificate name that matches it: an exact name gives an
//! exact `mx:` line, a wildcard name `*.parent` gives the pattern `*.parent` (the same
//! one-label rule as §4.1). An MX whose certificate does not cover it still gets its own
//! `mx:` line, with a warning: fixing the certificate is then all that is left to do.

use mtasts_core::domain::to_a_label;
use mtasts_core::sts::mx::MxPattern;
use mtasts_core::sts::policy::{Mode, lint_policy};
use mtasts_core::tlsrpt::record::{ReportUri, parse_report_uri};
use serde::Serialize;

use crate::obs::{AddressLookup, CertVerdict, MxLookup, Observations};

/// What the owner asked for.
#[derive(Clone, Debug)]
pub struct InitRequest {
    /// The mode to publish; `None`: the live policy's mode, else `testing`.
    pub mode: Option<Mode>,
    /// max_age; `None`: the next step of the [`RAMP`] from the live policy.
    pub max_age: Option<u32>,
    /// The policy senders apply today (mode and max_age), when there is one.
    pub live: Option<(Mode, u32)>,
    /// The TLS-RPT destination; `None`: keep a valid published one, else
    /// `mailto:tlsrpt@<domain>`.
    pub rua: Option<String>,
    /// The current time (Unix seconds), for the id.
    pub now: i64,
}

/// One MX host and how the policy covers it.
#[derive(Clone, Debug, Serialize)]
pub struct MxCoverage {
    /// The MX host.
    pub host: String,
    /// The pattern that covers it.
    pub pattern: String,
    /// Why its certificate does not (yet) cover it, if it does not.
    pub problem: Option<String>,
}

/// The policy senders apply today.
#[derive(Clone, Debug, Serialize)]
pub struct LivePolicy {
    /// Its mode.
    pub mode: &'static str,
    /// Its max_age.
    pub max_age: u32,
}

/// The proposal.
#[derive(Clone, Debug, Serialize)]
pub struct Proposal {
    /// The domain (A-label).
    pub domain: String,
    /// The policy senders apply today, when there is one.
    pub live: Option<LivePolicy>,
    /// The mode proposed.
    pub mode: &'static str,
    /// The max_age proposed.
    pub max_age: u32,
    /// The policy file, to serve at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub policy: String,
    /// Zone-file lines to publish.
    pub zone: Vec<String>,
    /// How each MX is covered.
    pub mx: Vec<MxCoverage>,
    /// What to fix before `enforce`.
    pub warnings: Vec<String>,
}

/// Why no proposal can be made.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The domain accepts no mail or its MX cannot be found.
    #[error("{0}")]
    NoMx(String),
    /// The rua given is not a valid TLS-RPT URI.
    #[error("--rua {uri}: {reason}")]
    BadRua {
        /// What was given.
        uri: String,
        /// Why it is wrong.
        reason: String,
    },
}

/// The max_age ramp, in seconds, per mode: a policy new to a mode starts at the first step,
/// and each `init` over a live policy of the same mode proposes the next step up (never less
/// than the live max_age). Testing starts at a day, so that corrections reach senders
/// quickly, then a week; enforce at two weeks, then four, long enough for the cache to
/// protect (RFC 8461 §10.2) and short enough to recover from a mistake. `none` keeps a day:
/// it only tells senders to drop the policy.
pub const RAMP: [(Mode, &[u32]); 3] = [
    (Mode::Testing, &[86_400, 604_800]),
    (Mode::Enforce, &[1_209_600, 2_419_200]),
    (Mode::None, &[86_400]),
];

/// The first max_age of a mode's ramp.
pub fn default_max_age(mode: Mode) -> u32 {
    next_max_age(mode, None)
}

/// The max_age to propose for `mode`, from the live policy's mode and max_age ([`RAMP`]).
pub fn next_max_age(mode: Mode, live: Option<(Mode, u32)>) -> u32 {
    let steps: &[u32] = RAMP
        .iter()
        .find(|(m, _)| *m == mode)
        .map_or(&[86_400], |(_, s)| s);
    let first = steps.first().copied().unwrap_or(86_400);
    match live {
        Some((m, age)) if m == mode => steps
            .iter()
            .copied()
            .find(|s| *s > age)
            .unwrap_or(age.max(first)),
        _ => first,
    }
}

/// How protective a mode is, for telling a downgrade.
fn strength(m: Mode) -> u8 {
    match m {
        Mode::None => 0,
        Mode::Testing => 1,
        Mode::Enforce => 2,
    }
}

/// The record id for `now`: `YYYYMMDDhhmmss` (UTC), 14 digits (RFC 8461 §3.1 allows 1-32
/// alphanumerics).
pub fn id_for(now: i64) -> String {
    chrono::DateTime::from_timestamp(now, 0)
        .map_or_else(|| now.to_string(), |d| d.format("%Y%m%d%H%M%S").to_string())
}

/// The certificate name (exact or wildcard) that covers `host`, per RFC 6125 / §4.1 rules.
fn covering_name<'a>(host: &str, names: &'a [String]) -> Option<&'a str> {
    let host = host.to_ascii_lowercase();
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(&host))
        .or_else(|| {
            names
                .iter()
                .find(|n| MxPattern::parse(n).is_ok_and(|p| p.is_wildcard() && p.matches(&host)))
        })
        .map(String::as_str)
}

/// Builds the proposal from the observations.
pub fn propose(obs: &Observations, req: &InitRequest) -> Result<Proposal, InitError> {
    let d = &obs.ascii;
    match &obs.mx {
        MxLookup::Found { .. } | MxLookup::Implicit => {}
        MxLookup::Null => {
            return Err(InitError::NoMx(format!(
                "{d} has a null MX: it accepts no mail and needs no MTA-STS"
            )));
        }
        MxLookup::NxDomain => return Err(InitError::NoMx(format!("{d} does not exist"))),
        MxLookup::NoData => {
            return Err(InitError::NoMx(format!("{d} has no MX and no address")));
        }
        MxLookup::Failed { reason, .. } => {
            return Err(InitError::NoMx(format!(
                "the MX lookup of {d} failed: {reason}"
            )));
        }
    }
    let mut warnings = Vec::new();
    let mut coverage = Vec::new();
    let mut patterns: Vec<String> = Vec::new();
    for h in &obs.mx_hosts {
        let host = h.name.to_ascii_lowercase();
        let mut pattern = host.clone();
        let mut problem = None;
        if !matches!(h.addresses, AddressLookup::Found { .. }) {
            problem = Some("it has no address".to_owned());
        } else if h.smtp.is_empty() {
            problem = Some("it was not probed".to_owned());
        }
        for p in &h.smtp {
            let why = match (&p.tls, p.starttls_offered) {
                (_, Some(false)) => Some("it does not offer STARTTLS".to_owned()),
                (Some(t), _) => match &t.verdict {
                    CertVerdict::Valid => {
                        if let Some(name) =
                            t.chain.first().and_then(|l| covering_name(&host, &l.names))
                        {
                            pattern = name.to_ascii_lowercase();
                        }
                        None
                    }
                    CertVerdict::NameMismatch { presented, .. } => Some(format!(
                        "its certificate names {} but not {host}",
                        presented.join(", ")
                    )),
                    CertVerdict::Expired { .. } => Some("its certificate has expired".into()),
                    CertVerdict::NotYetValid { .. } => {
                        Some("its certificate is not valid yet".into())
                    }
                    CertVerdict::SelfSigned => Some("its certificate is self-signed".into()),
                    CertVerdict::UntrustedCa { .. } => {
                        Some("its certificate is from an untrusted CA".into())
                    }
                    CertVerdict::ChainIncomplete { .. } => {
                        Some("it does not send its intermediate certificate".into())
                    }
                    CertVerdict::Invalid { reason } => {
                        Some(format!("its certificate is invalid ({reason})"))
                    }
                },
                (None, _) => Some(match &p.failure {
                    Some(f) => format!("no TLS session: {}", f.reason),
                    None => "no TLS session".to_owned(),
                }),
            };
            if let Some(why) = why {
                problem = Some(format!("{why} (at {})", p.address));
                // The exact host, not a wildcard from another address's certificate.
                pattern = host.clone();
                break;
            }
        }
        if let Some(why) = &problem {
            warnings.push(format!(
                "MX {host} cannot be validated: {why}; under enforce, senders would refuse it — fix it before moving to enforce"
            ));
        }
        if !patterns.contains(&pattern) {
            patterns.push(pattern.clone());
        }
        coverage.push(MxCoverage {
            host,
            pattern,
            problem,
        });
    }
    if obs.mx_hosts.is_empty() {
        return Err(InitError::NoMx(format!(
            "no MX host of {d} could be probed"
        )));
    }
    let mode = req
        .mode
        .or(req.live.map(|(m, _)| m))
        .unwrap_or(Mode::Testing);
    if let Some((live, _)) = req.live
        && strength(mode) < strength(live)
    {
        warnings.insert(
            0,
            format!(
                "downgrade: {d} publishes mode {} today and this proposes mode {}: senders would stop {} — publish it only to back out on purpose",
                live.as_str(),
                mode.as_str(),
                if live == Mode::Enforce {
                    "refusing MX hosts that fail validation"
                } else {
                    "reporting MTA-STS failures"
                }
            ),
        );
    }
    let max_age = req.max_age.unwrap_or_else(|| next_max_age(mode, req.live));
    let mut policy = format!("version: STSv1\nmode: {}\n", mode.as_str());
    for p in &patterns {
        policy.push_str(&format!("mx: {p}\n"));
    }
    policy.push_str(&format!("max_age: {max_age}\n"));
    // Our own output must pass our own linter.
    let lint = lint_policy(policy.as_bytes());
    for e in &lint.errors {
        warnings.push(format!("the generated policy is invalid: {e}"));
    }
    let rua = match &req.rua {
        Some(uri) => {
            let parsed = parse_report_uri(uri).map_err(|e| InitError::BadRua {
                uri: uri.clone(),
                reason: e.to_string(),
            })?;
            if !parsed.is_supported() {
                return Err(InitError::BadRua {
                    uri: uri.clone(),
                    reason: "only mailto: and https: URIs receive reports".into(),
                });
            }
            parsed.as_str().to_owned()
        }
        None => published_rua(obs).unwrap_or_else(|| format!("mailto:tlsrpt@{d}")),
    };
    let id = id_for(req.now);
    let zone = vec![
        format!("_mta-sts.{d}. 3600 IN TXT \"v=STSv1; id={id};\""),
        format!("_smtp._tls.{d}. 3600 IN TXT \"v=TLSRPTv1; rua={rua}\""),
        format!(
            "; and mta-sts.{d}. (A/AAAA or CNAME) must serve the policy over HTTPS with a certificate for mta-sts.{d}"
        ),
    ];
    // The advice follows where the domain is: already enforcing, the MX problems are live.
    if req.live.is_some_and(|(m, _)| m == Mode::Enforce) {
        for w in &mut warnings {
            *w = w.replace(
                "under enforce, senders would refuse it — fix it before moving to enforce",
                "under enforce, senders refuse it — fix it now",
            );
        }
    }
    let live_enforce = req.live.is_some_and(|(m, _)| m == Mode::Enforce);
    if mode == Mode::Enforce && !live_enforce && warnings.iter().any(|w| w.starts_with("MX ")) {
        warnings.push(
            "mode enforce with MX problems bounces or delays mail: publish testing first".into(),
        );
    }
    Ok(Proposal {
        domain: to_a_label(d).unwrap_or_else(|_| d.clone()),
        live: req.live.map(|(m, age)| LivePolicy {
            mode: m.as_str(),
            max_age: age,
        }),
        mode: mode.as_str(),
        max_age,
        policy,
        zone,
        mx: coverage,
        warnings,
    })
}

fn published_rua(obs: &Observations) -> Option<String> {
    let crate::obs::TxtLookup::Found { records, .. } = &obs.tlsrpt_txt else {
        return None;
    };
    let rec = mtasts_core::tlsrpt::record::select_tlsrpt_record(records).ok()?;
    let uris: Vec<&str> = rec
        .rua
        .iter()
        .filter(|u| !matches!(u, ReportUri::Other { .. }))
        .map(ReportUri::as_str)
        .collect();
    (!uris.is_empty()).then(|| uris.join(","))
}
