//! Proof with a real sender: Postfix plus a policy daemon against the three attacks (issue 6),
//! and DANE first (issue 16, RFC 8461 §2): Postfix does DANE itself, and the daemon must not
//! override it.
//!
//! Every scenario runs twice, once with `mtasts daemon` (`*_ours`) and once with
//! postfix-mta-sts-resolver 1.5.1 (`*_peer`), each in a rig of its own (lab world in a fresh
//! network namespace, daemon, private Postfix; see `mtasts_e2e::Rig`). Ours must pass every
//! scenario; the peer's outcome is recorded for the comparison table, except for the control
//! scenario, which both must pass. Every verdict rests on what was observed: the lab's MX logs
//! and message stores, Postfix's queue and Postfix's log. See docs/e2e.md.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtasts_e2e::{Daemon, Fate, Message, Rig, record};

/// Longest wait for Postfix to deliver or defer one message.
const FATE: Duration = Duration::from_secs(45);

/// A scenario's verdict.
struct Check {
    pass: bool,
    observed: String,
}

fn check(pass: bool, observed: impl Into<String>) -> Result<Check, String> {
    Ok(Check {
        pass,
        observed: observed.into(),
    })
}

/// Runs `body` in a fresh rig, records its outcome, and fails the test when `mtasts daemon`
/// (or either daemon, for the control) does not behave as a correct sender must.
fn scenario(id: &str, daemon: Daemon, test: &str, body: fn(&Rig) -> Result<Check, String>) {
    let started = Instant::now();
    let Some(rig) = Rig::start_or_skip(daemon, test) else {
        return;
    };
    let verdict = match body(&rig) {
        Ok(c) => c,
        Err(e) => panic!("{test}: the suite itself failed: {e}\n{}", rig.evidence()),
    };
    record(
        id,
        daemon,
        verdict.pass,
        &verdict.observed,
        started.elapsed().as_secs_f64(),
    );
    let must_pass = daemon == Daemon::Ours || id == "control-no-policy";
    if !verdict.pass {
        let evidence = rig.evidence();
        assert!(
            !must_pass,
            "{test}: {} did not behave as RFC 8461 requires: {}\n{evidence}",
            daemon.label(),
            verdict.observed
        );
        eprintln!(
            "{test}: recorded as failing for {}: {}\n{evidence}",
            daemon.label(),
            verdict.observed
        );
    } else {
        eprintln!("{test}: pass: {}", verdict.observed);
    }
}

fn short(reason: &str) -> String {
    // "TLS is required, but was not offered by host mx1.x.test[127.1.1.17]" -> without the address.
    match reason.find('[') {
        Some(i) if reason.ends_with(']') => reason[..i].to_string(),
        _ => reason.to_string(),
    }
}

fn describe(fate: &Fate) -> String {
    match fate {
        Fate::Deferred { reason, .. } => format!("deferred ({})", short(reason)),
        other => other.describe(),
    }
}

fn secure(ms: &[Message], host: &str) -> bool {
    !ms.is_empty()
        && ms.iter().all(|m| {
            m.host == host
                && m.tls
                && matches!(m.tls_version.as_deref(), Some("TLSv1.2" | "TLSv1.3"))
        })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------------------
// 1. good-enforce
// ------------------------------------------------------------------------------------------

fn good_enforce(rig: &Rig) -> Result<Check, String> {
    let mx = "mx1.good-enforce.test";
    let rcpt = rig.recipient("good-enforce.test");
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let Fate::Delivered(ms) = &fate else {
        return check(false, describe(&fate));
    };
    // "Verified" (not "Trusted") means Postfix checked the name against the policy's match=:
    // the daemon's `secure` answer was applied, not the default `may`.
    let verified = rig
        .maillog()
        .contains(&format!("Verified TLS connection established to {mx}"));
    check(
        secure(ms, mx) && verified,
        format!(
            "{}; Postfix: {}",
            describe(&fate),
            if verified {
                "\"Verified TLS connection\""
            } else {
                "certificate NOT verified (opportunistic TLS only)"
            }
        ),
    )
}

// ------------------------------------------------------------------------------------------
// 2. STARTTLS stripping on an enforce domain, then restored
// ------------------------------------------------------------------------------------------

fn stripping_enforce(rig: &Rig) -> Result<Check, String> {
    let mx = "mx1.strip-enforce.test";
    let rcpt = rig.recipient("strip-enforce.test");
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let plaintext_mail_from = rig
        .sessions_for(mx)?
        .iter()
        .any(|s| s.tls.is_none() && s.saw_mail_from());
    let tls_required =
        matches!(&fate, Fate::Deferred { reason, .. } if reason.contains("TLS is required"));
    if !tls_required || plaintext_mail_from {
        return check(
            false,
            format!(
                "{}{}",
                describe(&fate),
                if plaintext_mail_from {
                    "; the MX saw MAIL FROM in plaintext"
                } else {
                    ""
                }
            ),
        );
    }
    // The attack stops: STARTTLS is offered again; a flush must deliver over TLS.
    rig.mutate(&format!(
        r#"[{{"op": "set-starttls", "name": "{mx}", "mode": "offer"}}]"#
    ))?;
    rig.flush()?;
    let after = rig.wait_delivered(&rcpt, FATE);
    let observed = format!(
        "{}; after STARTTLS restored + `postqueue -f`: {}",
        describe(&fate),
        after.as_ref().map_or_else(
            || "still not delivered".into(),
            |ms| Fate::Delivered(ms.clone()).describe()
        )
    );
    check(after.is_some_and(|ms| secure(&ms, mx)), observed)
}

// ------------------------------------------------------------------------------------------
// 3. MX hijack
// ------------------------------------------------------------------------------------------

fn mx_hijack(rig: &Rig) -> Result<Check, String> {
    let rogue = "rogue-mx.attacker.test";
    let rcpt = rig.recipient("hijack-enforce.test");
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let sessions = rig.sessions_for(rogue)?;
    let mail_from = sessions.iter().any(|s| s.saw_mail_from());
    let stored = !rig.messages_to(&rcpt)?.is_empty();
    // Postfix must have reached the rogue (the attack was live) and stopped before MAIL FROM.
    let pass =
        matches!(fate, Fate::Deferred { .. }) && !mail_from && !stored && !sessions.is_empty();
    check(
        pass,
        format!(
            "{}; rogue MX: {} connection(s), MAIL FROM {}",
            describe(&fate),
            sessions.len(),
            if mail_from { "SEEN" } else { "never" }
        ),
    )
}

// ------------------------------------------------------------------------------------------
// 4. Certificate substitution
// ------------------------------------------------------------------------------------------

fn cert_substitution(rig: &Rig) -> Result<Check, String> {
    let cases = [
        ("self-signed", "selfsigned-enforce.test"),
        ("wrong name", "wrongname-enforce.test"),
        ("attacker's name", "rogue-cert-enforce.test"),
    ];
    let mut sent = Vec::new();
    for (what, domain) in cases {
        let rcpt = rig.recipient(domain);
        rig.send(&rcpt)?;
        sent.push((what, domain, rcpt));
    }
    let mut pass = true;
    let mut parts = Vec::new();
    for (what, domain, rcpt) in sent {
        let fate = rig.wait_fate(&rcpt, FATE);
        // The MX must have completed a TLS handshake (the substituted certificate was seen).
        let tls_seen = rig
            .sessions_for(&format!("mx1.{domain}"))?
            .iter()
            .any(|s| s.tls.is_some());
        let ok = matches!(fate, Fate::Deferred { .. }) && tls_seen;
        pass &= ok;
        parts.push(format!("{what}: {}", describe(&fate)));
    }
    check(pass, parts.join("; "))
}

// ------------------------------------------------------------------------------------------
// 5. The cache protects
// ------------------------------------------------------------------------------------------

fn cache_protects(rig: &Rig) -> Result<Check, String> {
    let domain = "cache-enforce.test";
    let mx = "mx1.cache-enforce.test";
    let first = rig.recipient(domain);
    rig.send(&first)?;
    let fate1 = rig.wait_fate(&first, FATE);
    match &fate1 {
        Fate::Delivered(ms) if secure(ms, mx) => {}
        other => {
            return check(
                false,
                format!(
                    "the first message (which caches the policy) was not delivered securely: {}",
                    describe(other)
                ),
            );
        }
    }
    let attack_at = now_ms();
    rig.mutate(&format!(
        r#"[{{"op": "set-dns", "name": "_mta-sts.{domain}", "set": {{"txt": []}}}},
            {{"op": "block-policy-host", "domain": "{domain}", "block": "reset"}},
            {{"op": "set-starttls", "name": "{mx}", "mode": "strip"}}]"#
    ))?;
    // Both daemons are configured to re-check the record a second after caching it.
    std::thread::sleep(Duration::from_secs(3));
    let second = rig.recipient(domain);
    rig.send(&second)?;
    let fate2 = rig.wait_fate(&second, FATE);
    let plaintext_mail_from = rig
        .sessions_for(mx)?
        .iter()
        .any(|s| s.tls.is_none() && s.saw_mail_from());
    let rechecks = rig
        .dns_queries(&format!("_mta-sts.{domain}"))?
        .iter()
        .filter(|q| q.at_ms >= attack_at && q.qtype == "TXT")
        .count();
    let pass = matches!(&fate2, Fate::Deferred { reason, .. } if reason.contains("TLS is required"))
        && !plaintext_mail_from;
    check(
        pass,
        format!(
            "first message {}; after the attack: {}; the lab's DNS answered {rechecks} TXT quer{} for the removed record",
            fate1.describe().trim_start_matches("delivered "),
            describe(&fate2),
            if rechecks == 1 { "y" } else { "ies" }
        ),
    )
}

// ------------------------------------------------------------------------------------------
// 6. testing mode under stripping
// ------------------------------------------------------------------------------------------

fn testing_stripping(rig: &Rig) -> Result<Check, String> {
    let domain = "trial-strip.test";
    let mx = "mx1.trial-strip.test";
    let rcpt = rig.recipient(domain);
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let delivered = matches!(&fate, Fate::Delivered(ms) if ms.iter().all(|m| m.host == mx));
    let (visible, how) = match rig.daemon {
        Daemon::Ours => {
            let metrics = rig.metrics()?;
            let n = metrics
                .lines()
                .find_map(|l| {
                    l.strip_prefix("mtasts_socketmap_outcomes_total{outcome=\"testing\"} ")
                })
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            (
                n >= 1.0,
                format!("metrics: mtasts_socketmap_outcomes_total{{outcome=\"testing\"}} = {n}"),
            )
        }
        Daemon::Peer => {
            // The peer has no metrics; its debug log is all there is.
            let log = rig.daemon_log();
            let said = log
                .lines()
                .any(|l| l.contains(domain) && l.contains("'mode': 'testing'"));
            (
                said,
                if said {
                    "its debug log names the testing policy".to_string()
                } else {
                    "nothing in its (debug) log says a testing policy applied; no metrics"
                        .to_string()
                },
            )
        }
    };
    check(delivered && visible, format!("{}; {how}", describe(&fate)))
}

// ------------------------------------------------------------------------------------------
// 7. Control: the same attacks without MTA-STS succeed
// ------------------------------------------------------------------------------------------

fn control_no_policy(rig: &Rig) -> Result<Check, String> {
    let cases = [
        (
            "stripping",
            "ctl-strip.test",
            "mx1.ctl-strip.test",
            Some(false),
        ),
        (
            "MX hijack",
            "ctl-hijack.test",
            "rogue-mx.attacker.test",
            None,
        ),
        (
            "self-signed",
            "ctl-selfsigned.test",
            "mx1.ctl-selfsigned.test",
            Some(true),
        ),
    ];
    let mut sent = Vec::new();
    for (what, domain, host, tls) in cases {
        let rcpt = rig.recipient(domain);
        rig.send(&rcpt)?;
        sent.push((what, host, tls, rcpt));
    }
    let mut pass = true;
    let mut parts = Vec::new();
    for (what, host, tls, rcpt) in sent {
        let fate = rig.wait_fate(&rcpt, FATE);
        let ok = matches!(&fate, Fate::Delivered(ms)
            if ms.iter().all(|m| m.host == host && tls.is_none_or(|t| m.tls == t)));
        pass &= ok;
        parts.push(format!("{what}: {}", describe(&fate)));
    }
    check(pass, parts.join("; "))
}

// ------------------------------------------------------------------------------------------
// 8-11. DANE first
// ------------------------------------------------------------------------------------------

/// What our daemon decided, from its metrics (`mtasts_socketmap_dane_total{decision=…}`); the
/// peer does not look at DANE.
fn dane_decisions(rig: &Rig) -> String {
    if rig.daemon != Daemon::Ours {
        return String::new();
    }
    let metrics = rig.metrics().unwrap_or_default();
    let seen: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("mtasts_socketmap_dane_total{decision=\""))
        .filter_map(|l| l.split_once("\"} "))
        .filter(|(_, n)| n.trim().parse::<f64>().is_ok_and(|n| n >= 1.0))
        .map(|(d, _)| d.to_owned())
        .collect();
    format!("; daemon's DANE decision: {}", seen.join(", "))
}

fn verified(rig: &Rig, mx: &str) -> bool {
    rig.maillog()
        .contains(&format!("Verified TLS connection established to {mx}"))
}

fn dane_ee_private_ca(rig: &Rig) -> Result<Check, String> {
    let mx = "mx1.dane-ee.test";
    let rcpt = rig.recipient("dane-ee.test");
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let decisions = dane_decisions(rig);
    let Fate::Delivered(ms) = &fate else {
        return check(false, format!("{}{decisions}", describe(&fate)));
    };
    // "Verified": the certificate was authenticated, here by the TLSA record (no trusted CA
    // issued it).
    let verified = verified(rig, mx);
    check(
        secure(ms, mx) && verified,
        format!(
            "{}; Postfix: {}{decisions}",
            describe(&fate),
            if verified {
                "\"Verified TLS connection\" (DANE-EE)"
            } else {
                "certificate NOT verified"
            }
        ),
    )
}

fn dane_mismatch(rig: &Rig) -> Result<Check, String> {
    let mx = "mx1.dane-mismatch.test";
    let rcpt = rig.recipient("dane-mismatch.test");
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let sessions = rig.sessions_for(mx)?;
    let mail_from = sessions.iter().any(|s| s.saw_mail_from());
    let tls_seen = sessions.iter().any(|s| s.tls.is_some());
    let stored = !rig.messages_to(&rcpt)?.is_empty();
    let pass = matches!(fate, Fate::Deferred { .. }) && !mail_from && !stored && tls_seen;
    check(
        pass,
        format!(
            "{}{}{}",
            describe(&fate),
            if matches!(fate, Fate::Delivered(_)) {
                " (MTA-STS's `secure` overrode the failing DANE validation)"
            } else {
                ""
            },
            dane_decisions(rig)
        ),
    )
}

fn dnssec_failure(rig: &Rig) -> Result<Check, String> {
    let mx = "mx1.dane-bogus.test";
    let rcpt = rig.recipient("dane-bogus.test");
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let mail_from = rig.sessions_for(mx)?.iter().any(|s| s.saw_mail_from());
    let stored = !rig.messages_to(&rcpt)?.is_empty();
    // The failure was live: the lab answered the TLSA query with SERVFAIL.
    let servfails = rig
        .dns_queries(&format!("_25._tcp.{mx}"))?
        .iter()
        .filter(|q| q.qtype == "TLSA" && q.outcome == "ServFail")
        .count();
    let pass = matches!(fate, Fate::Deferred { .. }) && !mail_from && !stored && servfails > 0;
    check(
        pass,
        format!(
            "{}; the lab answered {servfails} TLSA quer{} with SERVFAIL{}",
            describe(&fate),
            if servfails == 1 { "y" } else { "ies" },
            dane_decisions(rig)
        ),
    )
}

fn no_dnssec(rig: &Rig) -> Result<Check, String> {
    let mx = "mx1.nodnssec-enforce.test";
    let rcpt = rig.recipient("nodnssec-enforce.test");
    rig.send(&rcpt)?;
    let fate = rig.wait_fate(&rcpt, FATE);
    let decisions = dane_decisions(rig);
    let Fate::Delivered(ms) = &fate else {
        return check(false, format!("{}{decisions}", describe(&fate)));
    };
    let verified = verified(rig, mx);
    check(
        secure(ms, mx) && verified,
        format!(
            "{}; Postfix: {}{decisions}",
            describe(&fate),
            if verified {
                "\"Verified TLS connection\""
            } else {
                "certificate NOT verified (opportunistic TLS only)"
            }
        ),
    )
}

// ------------------------------------------------------------------------------------------
// The tests: each scenario with each daemon
// ------------------------------------------------------------------------------------------

macro_rules! scenario_tests {
    ($($id:literal, $body:ident => $ours:ident, $peer:ident;)*) => {$(
        #[test]
        fn $ours() {
            scenario($id, Daemon::Ours, stringify!($ours), $body);
        }
        #[test]
        fn $peer() {
            scenario($id, Daemon::Peer, stringify!($peer), $body);
        }
    )*};
}

scenario_tests! {
    "good-enforce", good_enforce => s1_good_enforce_ours, s1_good_enforce_peer;
    "stripping-enforce", stripping_enforce => s2_stripping_enforce_ours, s2_stripping_enforce_peer;
    "mx-hijack", mx_hijack => s3_mx_hijack_ours, s3_mx_hijack_peer;
    "cert-substitution", cert_substitution => s4_cert_substitution_ours, s4_cert_substitution_peer;
    "cache-protects", cache_protects => s5_cache_protects_ours, s5_cache_protects_peer;
    "testing-stripping", testing_stripping => s6_testing_stripping_ours, s6_testing_stripping_peer;
    "control-no-policy", control_no_policy => s7_control_no_policy_ours, s7_control_no_policy_peer;
    "dane-ee-private-ca", dane_ee_private_ca => s8_dane_ee_private_ca_ours, s8_dane_ee_private_ca_peer;
    "dane-mismatch", dane_mismatch => s9_dane_mismatch_ours, s9_dane_mismatch_peer;
    "dnssec-failure", dnssec_failure => s10_dnssec_failure_ours, s10_dnssec_failure_peer;
    "no-dnssec", no_dnssec => s11_no_dnssec_ours, s11_no_dnssec_peer;
}
