//! When to obtain, renew or retry a certificate obtained through ACME (RFC 8555), and when its
//! coming expiry is an alarm, as pure decisions.
//!
//! RFC 8555 says nothing about when to renew; the rule here is the one certificate authorities
//! recommend (Let's Encrypt: renew when a third of the lifetime is left), so that a failing
//! renewal has weeks of retries before the certificate the policy host serves expires (an
//! expired certificate on `mta-sts.<domain>` makes every policy fetch fail, RFC 8461 §3.3):
//!
//! 1. A certificate is **due** once a third ([`RenewalConfig::remaining_divisor`]) of its
//!    lifetime (`notAfter − notBefore`) is left, brought forward by a random `jitter` of up to
//!    [`RenewalConfig::jitter`] seconds (so that many certificates issued together do not all
//!    renew together), never before its `notBefore`.
//! 2. **Missing** (none stored, or the stored one unreadable): obtain one at once.
//! 3. After **failures**, the next attempt waits `retry_base · 2^(failures−1)`, at most
//!    [`RenewalConfig::retry_cap`], counted from the last failure; a success resets the count.
//! 4. The **expiry alarm** is raised when at most [`RenewalConfig::alarm_before`] (14 days) of
//!    validity are left, or the certificate has expired: by then renewal has failed for a long
//!    time (a 90-day certificate is due 30 days before expiry) and someone must look.
//!
//! The caller passes in the time (`now`, seconds since the Unix epoch) and the randomness
//! (`jitter`, seconds in `0..=cfg.jitter`); nothing here reads a clock.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch.
pub type UnixSeconds = u64;

/// The tunables of the renewal decision, each with its documented default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenewalConfig {
    /// Renew when `1 / remaining_divisor` of the lifetime is left (default 3: a third). Values
    /// below 2 are taken as 2 (renewal at half the lifetime at the latest).
    pub remaining_divisor: u64,
    /// The largest random amount, in seconds, a renewal is brought forward by (default 21 600,
    /// six hours).
    pub jitter: u64,
    /// The wait after the first failure, in seconds (default 300), doubled after each further
    /// failure.
    pub retry_base: u64,
    /// The longest wait between attempts after failures, in seconds (default 21 600, six
    /// hours).
    pub retry_cap: u64,
    /// The expiry alarm: raised when at most this many seconds of validity are left (default
    /// 1 209 600, 14 days).
    pub alarm_before: u64,
}

/// 14 days, in seconds: the default expiry alarm.
pub const DEFAULT_ALARM_BEFORE: u64 = 14 * 86_400;

impl Default for RenewalConfig {
    fn default() -> Self {
        RenewalConfig {
            remaining_divisor: 3,
            jitter: 6 * 3_600,
            retry_base: 300,
            retry_cap: 6 * 3_600,
            alarm_before: DEFAULT_ALARM_BEFORE,
        }
    }
}

/// The validity period of a stored certificate (its leaf's `notBefore` and `notAfter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    /// `notBefore`.
    pub not_before: UnixSeconds,
    /// `notAfter`.
    pub not_after: UnixSeconds,
}

impl Lifetime {
    /// The length of the validity period (0 when `notAfter` is not after `notBefore`).
    pub fn length(&self) -> u64 {
        self.not_after.saturating_sub(self.not_before)
    }
}

/// The failed attempts since the last success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    /// How many attempts failed in a row (0: none since the last success).
    pub count: u32,
    /// When the last one failed.
    pub last_at: UnixSeconds,
}

impl Failures {
    /// The count after one more failure at `now`.
    pub fn failed(self, now: UnixSeconds) -> Failures {
        Failures {
            count: self.count.saturating_add(1),
            last_at: now,
        }
    }
}

/// Why an attempt is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// No usable certificate is stored.
    Missing,
    /// The stored certificate has expired.
    Expired,
    /// The stored certificate is due for renewal (rule 1).
    Due,
}

/// What to do about one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Decision {
    /// Order a certificate now.
    Now {
        /// Why.
        reason: Reason,
    },
    /// Nothing to do before `at`; then decide again.
    Later {
        /// When to decide again.
        at: UnixSeconds,
        /// What will be wanted then, if nothing changes: `None` for a certificate not yet due
        /// (the wait is until it is), a reason while a failure's backoff holds an attempt back.
        reason: Option<Reason>,
    },
}

/// When `lifetime` becomes due for renewal (rule 1), with `jitter` seconds (clamped to
/// `0..=cfg.jitter`) taken off.
pub fn due_at(lifetime: &Lifetime, cfg: &RenewalConfig, jitter: u64) -> UnixSeconds {
    let divisor = cfg.remaining_divisor.max(2);
    let remaining = lifetime.length() / divisor;
    lifetime
        .not_after
        .saturating_sub(remaining)
        .saturating_sub(jitter.min(cfg.jitter))
        .max(lifetime.not_before)
}

/// The wait after `failures` failed attempts (rule 3): 0 for none, else `retry_base ·
/// 2^(count−1)`, at most `retry_cap`.
pub fn backoff(failures: u32, cfg: &RenewalConfig) -> u64 {
    if failures == 0 {
        return 0;
    }
    let shift = (failures - 1).min(63);
    cfg.retry_base
        .saturating_mul(1u64 << shift)
        .min(cfg.retry_cap)
}

/// What to do about one certificate at `now`: `lifetime` is the stored certificate's (`None`
/// when there is none), `failures` the attempts that failed since the last success, `jitter`
/// a random number of seconds in `0..=cfg.jitter` chosen by the caller (keep it for the
/// certificate's lifetime, so that the due time does not move at each decision).
pub fn decide(
    now: UnixSeconds,
    lifetime: Option<&Lifetime>,
    failures: &Failures,
    cfg: &RenewalConfig,
    jitter: u64,
) -> Decision {
    let (wanted_at, reason) = match lifetime {
        None => (now, Reason::Missing),
        Some(l) if now >= l.not_after => (now, Reason::Expired),
        // `notAfter` not after `notBefore`: a broken certificate, replaced at once.
        Some(l) if l.length() == 0 => (now, Reason::Due),
        Some(l) => {
            let at = due_at(l, cfg, jitter);
            if now < at {
                return Decision::Later { at, reason: None };
            }
            (now, Reason::Due)
        }
    };
    let retry_at = if failures.count == 0 {
        0
    } else {
        failures
            .last_at
            .saturating_add(backoff(failures.count, cfg))
    };
    let at = wanted_at.max(retry_at);
    if at <= now {
        Decision::Now { reason }
    } else {
        Decision::Later {
            at,
            reason: Some(reason),
        }
    }
}

/// The expiry state of a certificate at `now` (rule 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Expiry {
    /// More than `alarm_before` left.
    Fine {
        /// Seconds of validity left.
        left: u64,
    },
    /// The alarm: at most `alarm_before` left.
    Soon {
        /// Seconds of validity left.
        left: u64,
    },
    /// Expired.
    Expired {
        /// Seconds since `notAfter`.
        ago: u64,
    },
}

impl Expiry {
    /// Whether the alarm is raised (soon or expired).
    pub fn alarm(&self) -> bool {
        !matches!(self, Expiry::Fine { .. })
    }
}

/// The expiry state of a certificate valid until `not_after` (rule 4).
pub fn expiry(now: UnixSeconds, not_after: UnixSeconds, cfg: &RenewalConfig) -> Expiry {
    if now >= not_after {
        return Expiry::Expired {
            ago: now - not_after,
        };
    }
    let left = not_after - now;
    if left <= cfg.alarm_before {
        Expiry::Soon { left }
    } else {
        Expiry::Fine { left }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    /// A 90-day certificate issued at day 100.
    const ISSUED: u64 = 100 * DAY;
    const L90: Lifetime = Lifetime {
        not_before: ISSUED,
        not_after: ISSUED + 90 * DAY,
    };

    fn cfg() -> RenewalConfig {
        RenewalConfig::default()
    }

    fn none() -> Failures {
        Failures::default()
    }

    #[test]
    fn renewal_due_when_a_third_of_the_lifetime_remains() {
        // (now, jitter, expected)
        let cases = [
            (
                ISSUED,
                0,
                Decision::Later {
                    at: ISSUED + 60 * DAY,
                    reason: None,
                },
            ),
            (
                ISSUED + 60 * DAY - 1,
                0,
                Decision::Later {
                    at: ISSUED + 60 * DAY,
                    reason: None,
                },
            ),
            (
                ISSUED + 60 * DAY,
                0,
                Decision::Now {
                    reason: Reason::Due,
                },
            ),
            (
                ISSUED + 89 * DAY,
                0,
                Decision::Now {
                    reason: Reason::Due,
                },
            ),
        ];
        for (now, jitter, want) in cases {
            assert_eq!(
                decide(now, Some(&L90), &none(), &cfg(), jitter),
                want,
                "now {now}"
            );
        }
    }

    #[test]
    fn renewal_jitter_brings_the_due_time_forward_never_later_and_is_capped() {
        let c = cfg();
        let at0 = due_at(&L90, &c, 0);
        let cases = [
            (0, at0),
            (3_600, at0 - 3_600),
            (c.jitter, at0 - c.jitter),
            // Beyond the configured maximum: clamped to it.
            (c.jitter * 10, at0 - c.jitter),
        ];
        for (jitter, want) in cases {
            assert_eq!(due_at(&L90, &c, jitter), want, "jitter {jitter}");
        }
    }

    #[test]
    fn renewal_never_due_before_not_before_even_with_jitter() {
        // A one-hour certificate with six hours of jitter: due at notBefore, not before it.
        let short = Lifetime {
            not_before: ISSUED,
            not_after: ISSUED + 3_600,
        };
        assert_eq!(due_at(&short, &cfg(), cfg().jitter), ISSUED);
    }

    #[test]
    fn renewal_divisor_configurable_and_at_least_half() {
        let cases = [
            (3, ISSUED + 60 * DAY),
            (2, ISSUED + 45 * DAY),
            (1, ISSUED + 45 * DAY),
            (0, ISSUED + 45 * DAY),
            (10, ISSUED + 81 * DAY),
        ];
        for (divisor, want) in cases {
            let c = RenewalConfig {
                remaining_divisor: divisor,
                ..cfg()
            };
            assert_eq!(due_at(&L90, &c, 0), want, "divisor {divisor}");
        }
    }

    #[test]
    fn renewal_missing_certificate_obtained_at_once() {
        assert_eq!(
            decide(ISSUED, None, &none(), &cfg(), 0),
            Decision::Now {
                reason: Reason::Missing
            }
        );
    }

    #[test]
    fn renewal_expired_certificate_renewed_at_once() {
        assert_eq!(
            decide(L90.not_after, Some(&L90), &none(), &cfg(), 0),
            Decision::Now {
                reason: Reason::Expired
            }
        );
    }

    #[test]
    fn renewal_degenerate_lifetime_is_due_at_once() {
        // notAfter before notBefore: a broken certificate; due (or expired) now.
        let broken = Lifetime {
            not_before: ISSUED + DAY,
            not_after: ISSUED,
        };
        assert!(matches!(
            decide(ISSUED - DAY, Some(&broken), &none(), &cfg(), 0),
            Decision::Now { .. }
        ));
    }

    #[test]
    fn renewal_retry_backoff_doubles_after_each_failure_up_to_the_cap() {
        let c = cfg();
        let cases = [
            (0, 0),
            (1, 300),
            (2, 600),
            (3, 1_200),
            (6, 9_600),
            (7, 19_200),
            (8, 21_600),
            (40, 21_600),
            (u32::MAX, 21_600),
        ];
        for (failures, want) in cases {
            assert_eq!(backoff(failures, &c), want, "failures {failures}");
        }
    }

    #[test]
    fn renewal_retry_waits_for_the_backoff_after_a_failure() {
        let c = cfg();
        let due = ISSUED + 60 * DAY;
        let failed_at = due + 10;
        let cases = [
            // One failure: wait 300 s from it.
            (
                1,
                failed_at + 299,
                Decision::Later {
                    at: failed_at + 300,
                    reason: Some(Reason::Due),
                },
            ),
            (
                1,
                failed_at + 300,
                Decision::Now {
                    reason: Reason::Due,
                },
            ),
            // Three failures: 1 200 s.
            (
                3,
                failed_at + 600,
                Decision::Later {
                    at: failed_at + 1_200,
                    reason: Some(Reason::Due),
                },
            ),
            (
                3,
                failed_at + 1_200,
                Decision::Now {
                    reason: Reason::Due,
                },
            ),
        ];
        for (count, now, want) in cases {
            let f = Failures {
                count,
                last_at: failed_at,
            };
            assert_eq!(
                decide(now, Some(&L90), &f, &c, 0),
                want,
                "{count} failures, now {now}"
            );
        }
    }

    #[test]
    fn renewal_retry_backoff_also_holds_back_a_missing_certificate() {
        let f = Failures {
            count: 2,
            last_at: ISSUED,
        };
        assert_eq!(
            decide(ISSUED + 1, None, &f, &cfg(), 0),
            Decision::Later {
                at: ISSUED + 600,
                reason: Some(Reason::Missing)
            }
        );
    }

    #[test]
    fn renewal_a_success_resets_the_failure_count() {
        // After a success the caller starts from `Failures::default()`: a fresh certificate
        // is not due, whatever failed before.
        let fresh = Lifetime {
            not_before: ISSUED + 70 * DAY,
            not_after: ISSUED + 160 * DAY,
        };
        assert_eq!(
            decide(ISSUED + 70 * DAY, Some(&fresh), &none(), &cfg(), 0),
            Decision::Later {
                at: ISSUED + 130 * DAY,
                reason: None
            }
        );
        assert_eq!(
            none().failed(5).failed(9),
            Failures {
                count: 2,
                last_at: 9
            }
        );
    }

    #[test]
    fn expiry_alarm_within_14_days_of_not_after() {
        let c = cfg();
        let end = L90.not_after;
        let cases = [
            (end - 15 * DAY, Expiry::Fine { left: 15 * DAY }),
            (end - 14 * DAY - 1, Expiry::Fine { left: 14 * DAY + 1 }),
            (end - 14 * DAY, Expiry::Soon { left: 14 * DAY }),
            (end - 1, Expiry::Soon { left: 1 }),
            (end, Expiry::Expired { ago: 0 }),
            (end + DAY, Expiry::Expired { ago: DAY }),
        ];
        for (now, want) in cases {
            let got = expiry(now, end, &c);
            assert_eq!(got, want, "now {now}");
            assert_eq!(got.alarm(), !matches!(want, Expiry::Fine { .. }));
        }
    }

    #[test]
    fn expiry_alarm_comes_well_after_the_due_time_of_a_90_day_certificate() {
        // The alarm means renewal has been failing for about 16 days: due at 30 days left
        // (minus jitter), alarm at 14.
        let c = cfg();
        let due = due_at(&L90, &c, c.jitter);
        assert!(L90.not_after - due > c.alarm_before);
    }
}
