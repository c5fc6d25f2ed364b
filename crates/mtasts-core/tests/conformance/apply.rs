//! RFC 8461 §4 and §5: a policy applied to one delivery attempt, with the RFC 8460 §4.3
//! result type each failure is reported as.
//!
//! Each case: the policy's mode (or `-` for no policy), the MX host dialled, how STARTTLS went;
//! the expected decision is `deliver`, `report <result-type>[ (<reason>)]` or
//! `refuse <result-type>[ (<reason>)]`.

use mtasts_core::sts::apply::{Delivery, StarttlsOutcome, apply};
use mtasts_core::sts::policy::Policy;
use mtasts_core::tls::{CertVerdict, HandshakeFailure};

#[derive(Clone, Copy)]
enum Tls {
    Valid,
    NotOffered,
    Refused,
    Expired,
    NotYetValid,
    WrongName,
    SelfSigned,
    UntrustedCa,
    ChainIncomplete,
    OldVersion,
    Timeout,
}

fn check((mode, host, tls): (&str, &str, Tls), expected: &str) {
    let policy = (mode != "-").then(|| {
        Policy::parse(
            format!(
                "version: STSv1\nmode: {mode}\nmx: mx1.example.com\nmx: *.backup.example.com\nmax_age: 86400\n"
            )
            .as_bytes(),
        )
        .expect("policy")
    });
    let verdict = match tls {
        Tls::Valid => CertVerdict::Valid,
        Tls::Expired => CertVerdict::Expired { not_after: 0 },
        Tls::NotYetValid => CertVerdict::NotYetValid { not_before: 0 },
        Tls::WrongName => CertVerdict::NameMismatch {
            expected: host.into(),
            presented: vec!["rogue.attacker.test".into()],
        },
        Tls::SelfSigned => CertVerdict::SelfSigned,
        Tls::UntrustedCa => CertVerdict::UntrustedCa {
            issuer: "CN=Evil CA".into(),
        },
        Tls::ChainIncomplete => CertVerdict::ChainIncomplete {
            issuer: "CN=Intermediate".into(),
        },
        _ => CertVerdict::Valid,
    };
    let handshake = match tls {
        Tls::OldVersion => HandshakeFailure::VersionTooOld,
        _ => HandshakeFailure::Timeout,
    };
    let outcome = match tls {
        Tls::NotOffered => StarttlsOutcome::NotOffered,
        Tls::Refused => StarttlsOutcome::Refused,
        Tls::OldVersion | Tls::Timeout => StarttlsOutcome::HandshakeFailed(&handshake),
        _ => StarttlsOutcome::Established(&verdict),
    };
    let got = match apply(policy.as_ref(), host, outcome) {
        Delivery::Deliver => "deliver".to_owned(),
        Delivery::DeliverAndReport(f) => format!("report {f}"),
        Delivery::Refuse(f) => format!("refuse {f}"),
    };
    assert_eq!(got, expected);
}

cases! { check;
    rfc8461_s5_no_policy_delivers_whatever_tls: ("-", "mx.other.example", Tls::NotOffered) => "deliver";
    rfc8461_s4_enforce_valid_mx_delivers: ("enforce", "mx1.example.com", Tls::Valid) => "deliver";
    rfc8461_s4_1_enforce_wildcard_mx_delivers: ("enforce", "a.backup.example.com", Tls::Valid) => "deliver";
    rfc8461_s4_1_enforce_mx_not_in_policy_refused: ("enforce", "mx.attacker.test", Tls::Valid) => "refuse validation-failure (mx-not-in-policy)";
    rfc8461_s4_1_enforce_wildcard_two_labels_refused: ("enforce", "a.b.backup.example.com", Tls::Valid) => "refuse validation-failure (mx-not-in-policy)";
    rfc8461_s4_1_mx_checked_before_tls: ("enforce", "mx.attacker.test", Tls::NotOffered) => "refuse validation-failure (mx-not-in-policy)";
    rfc8461_s4_2_enforce_starttls_stripped_refused: ("enforce", "mx1.example.com", Tls::NotOffered) => "refuse starttls-not-supported";
    rfc8461_s4_2_enforce_starttls_refused_refused: ("enforce", "mx1.example.com", Tls::Refused) => "refuse starttls-not-supported (starttls-command-failed)";
    rfc8461_s4_2_enforce_expired_refused: ("enforce", "mx1.example.com", Tls::Expired) => "refuse certificate-expired";
    rfc8461_s4_2_enforce_not_yet_valid_refused: ("enforce", "mx1.example.com", Tls::NotYetValid) => "refuse validation-failure (certificate-not-yet-valid)";
    rfc8461_s4_2_enforce_wrong_name_refused: ("enforce", "mx1.example.com", Tls::WrongName) => "refuse certificate-host-mismatch";
    rfc8461_s4_2_enforce_self_signed_refused: ("enforce", "mx1.example.com", Tls::SelfSigned) => "refuse certificate-not-trusted (self-signed)";
    rfc8461_s4_2_enforce_untrusted_ca_refused: ("enforce", "mx1.example.com", Tls::UntrustedCa) => "refuse certificate-not-trusted (untrusted-ca)";
    rfc8461_s4_2_enforce_chain_incomplete_refused: ("enforce", "mx1.example.com", Tls::ChainIncomplete) => "refuse certificate-not-trusted (chain-incomplete)";
    rfc8461_s7_2_enforce_old_tls_refused: ("enforce", "mx1.example.com", Tls::OldVersion) => "refuse validation-failure (tls-version-too-old)";
    rfc8461_s4_2_enforce_handshake_timeout_refused: ("enforce", "mx1.example.com", Tls::Timeout) => "refuse validation-failure (io-timeout-during-handshake)";
    rfc8461_s5_testing_valid_delivers: ("testing", "mx1.example.com", Tls::Valid) => "deliver";
    rfc8461_s5_testing_stripped_delivers_and_reports: ("testing", "mx1.example.com", Tls::NotOffered) => "report starttls-not-supported";
    rfc8461_s5_testing_mx_not_in_policy_delivers_and_reports: ("testing", "mx.attacker.test", Tls::Valid) => "report validation-failure (mx-not-in-policy)";
    rfc8461_s5_testing_wrong_name_delivers_and_reports: ("testing", "mx1.example.com", Tls::WrongName) => "report certificate-host-mismatch";
    rfc8461_s5_none_is_as_no_policy: ("none", "mx.attacker.test", Tls::NotOffered) => "deliver";
}
