//! RFC 7672 (DANE for SMTP) with RFC 8461 §2 (DANE and MTA-STS together): which TLSA records
//! are usable, each MX host's outcome, the domain's decision, and what is left for MTA-STS,
//! which is what Postfix is told.
//!
//! Each decision case is `(MX, hosts, MTA-STS enforce applies)`:
//!
//! - MX: `secure`, `insecure` (records with or without a trusted AD flag), `implicit` (a
//!   secure NODATA: the domain itself is the MX host), `implicit-insecure`, `nxdomain`,
//!   `null` (RFC 7505), `servfail`;
//! - each host `ADDRESSES/TLSA`: addresses `secure`, `insecure`, `none` (secure NXDOMAIN),
//!   `servfail`; TLSA `usable` (3 1 1), `ta` (2 1 1), `pkix` (1 1 1, RFC 7672 §3.1.3),
//!   `unknown` (3 1 9), `short` (3 1 1 with a 31-byte digest), `mixed` (1 1 1 and 3 1 1),
//!   `nodata` (secure denial), `nxdomain-insecure`, `insecure` (records without AD),
//!   `servfail`, `timeout`, `-` (not looked up);
//!
//! and the expectation is `<what Postfix is told>/<decision>`.

use mtasts_core::dane::{
    ChainVerdict, Evidence, HostAddresses, HostEvidence, Lookup, MxRecord, Precedence,
    PresentedCert, RecordMatch, Security, Tlsa, Unusable, assess, authenticate, match_records,
    mx_hosts, precedence, tlsa_names,
};
use mtasts_core::dns::DnsErrorKind;

const DOMAIN: &str = "example.com";

fn records(kind: &str) -> Vec<Tlsa> {
    let t = |s: &str| s.parse::<Tlsa>().expect("a TLSA record");
    let sha256 = "11".repeat(32);
    match kind {
        "usable" => vec![t(&format!("3 1 1 {sha256}"))],
        "ta" => vec![t(&format!("2 1 1 {sha256}"))],
        "pkix" => vec![t(&format!("1 1 1 {sha256}"))],
        "unknown" => vec![t(&format!("3 1 9 {sha256}"))],
        "short" => vec![t(&format!("3 1 1 {}", "11".repeat(31)))],
        "mixed" => vec![t(&format!("1 1 1 {sha256}")), t(&format!("3 1 1 {sha256}"))],
        other => panic!("no TLSA kind {other}"),
    }
}

fn tlsa_lookup(kind: &str, name: &str) -> Option<Lookup<Vec<Tlsa>>> {
    Some(match kind {
        "-" => return None,
        "nodata" => Lookup::Absent {
            nxdomain: false,
            security: Security::Secure,
            ttl: 600,
        },
        "nxdomain-insecure" => Lookup::Absent {
            nxdomain: true,
            security: Security::Insecure,
            ttl: 600,
        },
        "servfail" => Lookup::failed(DnsErrorKind::ServFail, name, "bogus"),
        "timeout" => Lookup::failed(DnsErrorKind::Timeout, name, ""),
        "insecure" => Lookup::Found {
            records: records("usable"),
            security: Security::Insecure,
            ttl: 600,
        },
        other => Lookup::Found {
            records: records(other),
            security: Security::Secure,
            ttl: 600,
        },
    })
}

fn host(spec: &str, name: &str) -> HostEvidence {
    let (addr, tlsa) = spec.split_once('/').expect("ADDRESSES/TLSA");
    let found = |security| Lookup::Found {
        records: HostAddresses {
            addresses: vec!["192.0.2.25".parse().expect("an address")],
            canonical: None,
        },
        security,
        ttl: 3600,
    };
    let addresses = match addr {
        "secure" => found(Security::Secure),
        "insecure" => found(Security::Insecure),
        "none" => Lookup::Absent {
            nxdomain: true,
            security: Security::Secure,
            ttl: 3600,
        },
        "servfail" => Lookup::failed(DnsErrorKind::ServFail, name, "bogus"),
        other => panic!("no address kind {other}"),
    };
    // The caller looks up TLSA only where the core says to (RFC 7672 §2.2.2).
    let names = tlsa_names(name, &addresses);
    let tlsa = names
        .into_iter()
        .filter_map(|n| tlsa_lookup(tlsa, &n).map(|l| (n, l)))
        .collect();
    HostEvidence {
        host: name.to_owned(),
        addresses,
        tlsa,
    }
}

fn check((mx, hosts, sts): (&str, &[&str], bool), expected: &str) {
    let names: Vec<String> = (1..=hosts.len())
        .map(|i| format!("mx{i}.{DOMAIN}"))
        .collect();
    let mx_records = Lookup::Found {
        records: names
            .iter()
            .map(|n| MxRecord {
                preference: 10,
                exchange: n.clone(),
            })
            .collect(),
        security: Security::Secure,
        ttl: 300,
    };
    let mx_lookup = match mx {
        "secure" => mx_records,
        "insecure" => mx_records.distrusted(),
        "implicit" | "implicit-insecure" => Lookup::Absent {
            nxdomain: false,
            security: if mx == "implicit" {
                Security::Secure
            } else {
                Security::Insecure
            },
            ttl: 300,
        },
        "nxdomain" => Lookup::Absent {
            nxdomain: true,
            security: Security::Secure,
            ttl: 300,
        },
        "null" => Lookup::Found {
            records: vec![MxRecord {
                preference: 0,
                exchange: String::new(),
            }],
            security: Security::Secure,
            ttl: 300,
        },
        "servfail" => Lookup::failed(DnsErrorKind::ServFail, DOMAIN, "bogus"),
        other => panic!("no MX kind {other}"),
    };
    let hosts_to_check = mx_hosts(DOMAIN, &mx_lookup);
    let evidence = Evidence {
        domain: DOMAIN.into(),
        hosts: hosts_to_check
            .iter()
            .zip(hosts.iter().copied().chain(std::iter::repeat("secure/-")))
            .map(|(name, spec)| host(spec, name))
            .collect(),
        mx: mx_lookup,
        hosts_not_examined: 0,
    };
    let assessment = assess(&evidence);
    let told = match precedence(&assessment.decision, sts) {
        Precedence::DaneOnly => "dane-only",
        Precedence::Dane => "dane",
        Precedence::TempFail { .. } => "temp",
        Precedence::MtaSts => "mta-sts",
    };
    assert_eq!(
        format!("{told}/{}", assessment.decision.kind()),
        expected,
        "{assessment:#?}"
    );
}

cases! { check;
    // RFC 7672 §2.2: a secure TLSA RRset with a usable record: authenticated TLS, for every host.
    rfc7672_s2_2_usable_tlsa_gives_dane_only: ("secure", &["secure/usable"], false) => "dane-only/mandatory";
    rfc7672_s3_1_dane_ta_is_usable: ("secure", &["secure/ta"], false) => "dane-only/mandatory";
    rfc7672_s2_2_every_host_usable_gives_dane_only: ("secure", &["secure/usable", "secure/ta"], false) => "dane-only/mandatory";
    rfc7672_s2_2_implicit_mx_with_usable_tlsa_gives_dane_only: ("implicit", &["secure/usable"], false) => "dane-only/mandatory";
    // RFC 8461 §2: MTA-STS must not override DANE.
    rfc8461_s2_usable_tlsa_wins_over_enforce: ("secure", &["secure/usable"], true) => "dane-only/mandatory";
    rfc8461_s2_opportunistic_dane_wins_over_enforce: ("secure", &["secure/usable", "secure/nodata"], true) => "dane/opportunistic";
    // RFC 7672 §2.2, §3.1.3: secure records, all unusable: TLS without authentication.
    rfc7672_s3_1_3_pkix_usage_only_gives_dane: ("secure", &["secure/pkix"], false) => "dane/opportunistic";
    rfc7672_s3_1_unknown_matching_type_only_gives_dane: ("secure", &["secure/unknown"], false) => "dane/opportunistic";
    rfc7672_s2_2_wrong_digest_length_only_gives_dane: ("secure", &["secure/short"], false) => "dane/opportunistic";
    rfc7672_s2_2_one_usable_record_among_unusable_is_enough: ("secure", &["secure/mixed"], false) => "dane-only/mandatory";
    rfc8461_s2_all_unusable_still_wins_over_enforce: ("secure", &["secure/pkix"], true) => "dane/opportunistic";
    // RFC 7672 §2.2: insecure TLSA, or proof of non-existence: pre-DANE TLS, so MTA-STS applies.
    rfc7672_s2_2_secure_denial_of_tlsa_is_no_dane: ("secure", &["secure/nodata"], true) => "mta-sts/not-applicable";
    rfc7672_s2_2_insecure_tlsa_is_no_dane: ("secure", &["secure/insecure"], true) => "mta-sts/not-applicable";
    rfc7672_s2_2_insecure_tlsa_denial_is_no_dane: ("secure", &["secure/nxdomain-insecure"], true) => "mta-sts/not-applicable";
    rfc7672_s2_2_2_insecure_addresses_are_no_dane: ("secure", &["insecure/usable"], true) => "mta-sts/not-applicable";
    rfc8461_s2_no_dnssec_is_mta_sts_as_before: ("insecure", &["insecure/-"], true) => "mta-sts/not-applicable";
    rfc8461_s2_no_dnssec_and_no_sts_is_mta_sts_as_before: ("insecure", &["insecure/-", "insecure/-"], false) => "mta-sts/not-applicable";
    rfc7672_s2_2_2_no_mx_and_no_dnssec_is_no_dane: ("implicit-insecure", &["insecure/-"], false) => "mta-sts/not-applicable";
    rfc7505_null_mx_is_no_dane: ("null", &[], true) => "mta-sts/not-applicable";
    rfc7672_s2_2_2_nonexistent_domain_is_no_dane: ("nxdomain", &[], false) => "mta-sts/not-applicable";
    // Mixed MX sets: DANE per host, pre-DANE TLS for the others (RFC 7672 §2.2.1).
    rfc7672_s2_2_1_mixed_hosts_give_dane: ("secure", &["secure/usable", "insecure/-"], false) => "dane/opportunistic";
    rfc7672_s2_2_1_usable_and_unusable_hosts_give_dane: ("secure", &["secure/usable", "secure/pkix"], false) => "dane/opportunistic";
    rfc7672_s2_2_2_host_without_address_does_not_count: ("secure", &["secure/usable", "none/-"], false) => "dane-only/mandatory";
    // RFC 7672 §2.2.1: an insecure MX RRset: DANE need not apply; mandatory DANE must not be used.
    rfc7672_s2_2_1_insecure_mx_never_gives_dane_only: ("insecure", &["secure/usable"], false) => "dane/opportunistic";
    rfc7672_s2_2_1_insecure_mx_leaves_enforce_to_mta_sts: ("insecure", &["secure/usable"], true) => "mta-sts/opportunistic";
    rfc7672_s2_2_1_insecure_implicit_mx_gives_dane: ("implicit-insecure", &["secure/usable"], false) => "dane/opportunistic";
    // RFC 7672 §2.1.1, §2.1.2: bogus (SERVFAIL at a validating resolver) or indeterminate: delay.
    rfc7672_s2_1_2_mx_lookup_failure_delays: ("servfail", &[], true) => "temp/delay";
    rfc7672_s2_1_2_tlsa_servfail_delays_not_mta_sts: ("secure", &["secure/servfail"], true) => "temp/delay";
    rfc7672_s2_1_2_tlsa_servfail_delays_without_sts: ("secure", &["secure/servfail"], false) => "temp/delay";
    rfc7672_s2_1_1_tlsa_timeout_is_a_failure: ("secure", &["secure/timeout"], true) => "temp/delay";
    rfc7672_s2_1_2_address_servfail_delays: ("secure", &["servfail/-"], true) => "temp/delay";
    rfc7672_s2_1_2_failure_beside_pre_dane_host_delays: ("secure", &["secure/nodata", "secure/servfail"], true) => "temp/delay";
    rfc7672_s2_1_2_failed_host_is_skipped_beside_usable_one: ("secure", &["secure/usable", "secure/servfail"], true) => "dane-only/mandatory";
    rfc7672_s2_1_2_failed_host_is_skipped_beside_unusable_one: ("secure", &["secure/pkix", "secure/servfail"], false) => "dane/opportunistic";
    rfc7672_s2_2_1_failure_under_insecure_mx_leaves_enforce_to_mta_sts: ("insecure", &["secure/servfail"], true) => "mta-sts/delay";
    rfc7672_s2_2_1_failure_under_insecure_mx_without_sts_delays: ("insecure", &["secure/servfail"], false) => "temp/delay";
}

// ---- usability (RFC 7672 §3.1, RFC 6698 §4.1)

fn usability(record: &str, expected: &str) {
    let t: Tlsa = record.parse().expect("a TLSA record");
    let got = match t.usability() {
        Ok(()) => "usable".to_owned(),
        Err(Unusable::PkixUsage { .. }) => "pkix".to_owned(),
        Err(Unusable::UnknownUsage { .. }) => "unknown-usage".to_owned(),
        Err(Unusable::UnknownSelector { .. }) => "unknown-selector".to_owned(),
        Err(Unusable::UnknownMatching { .. }) => "unknown-matching".to_owned(),
        Err(Unusable::DigestLength { .. }) => "digest-length".to_owned(),
        Err(Unusable::NoData) => "no-data".to_owned(),
    };
    assert_eq!(got, expected, "{record}");
}

const D32: &str = "0000000000000000000000000000000000000000000000000000000000000000";

cases! { usability;
    rfc7672_s3_1_1_dane_ee_spki_sha256_usable: &format!("3 1 1 {D32}") => "usable";
    rfc7672_s3_1_1_dane_ee_cert_sha256_usable: &format!("3 0 1 {D32}") => "usable";
    rfc7672_s3_1_1_dane_ee_sha512_usable: &format!("3 1 2 {D32}{D32}") => "usable";
    rfc7672_s3_1_1_dane_ee_full_data_usable: "3 1 0 3059301306072a8648ce3d0201" => "usable";
    rfc7672_s3_1_2_dane_ta_usable: &format!("2 1 1 {D32}") => "usable";
    rfc7672_s3_1_2_dane_ta_cert_usable: &format!("2 0 1 {D32}") => "usable";
    rfc7672_s3_1_3_pkix_ta_unusable: &format!("0 1 1 {D32}") => "pkix";
    rfc7672_s3_1_3_pkix_ee_unusable: &format!("1 1 1 {D32}") => "pkix";
    rfc6698_s4_1_reserved_usage_unusable: &format!("4 1 1 {D32}") => "unknown-usage";
    rfc6698_s4_1_private_usage_unusable: &format!("255 1 1 {D32}") => "unknown-usage";
    rfc6698_s4_1_reserved_selector_unusable: &format!("3 2 1 {D32}") => "unknown-selector";
    rfc6698_s4_1_reserved_matching_unusable: &format!("3 1 3 {D32}") => "unknown-matching";
    rfc6698_s4_1_private_matching_unusable: &format!("3 1 255 {D32}") => "unknown-matching";
    rfc6698_s2_1_3_sha256_of_wrong_length_unusable: &format!("3 1 1 {D32}00") => "digest-length";
    rfc6698_s2_1_3_sha512_of_wrong_length_unusable: &format!("3 1 2 {D32}") => "digest-length";
    rfc6698_s2_1_3_empty_data_unusable: "3 1 0" => "no-data";
}

// ---- matching a presented chain (RFC 6698 §2.1, RFC 7672 §3.1, §3.2)
//
// Known digests (FIPS 180-2 test vectors), so that the expectations do not come from the
// code under test: SHA-256("abc"), SHA-512("abc"), SHA-256("").

const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const SHA512_ABC: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                          2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A two-certificate chain: the leaf's SPKI is "abc", its whole DER "leaf-cert"; the issuer's
/// SPKI is "" and its DER "abc".
fn chain() -> [PresentedCert<'static>; 2] {
    [
        PresentedCert {
            cert: b"leaf-cert",
            spki: b"abc",
        },
        PresentedCert {
            cert: b"abc",
            spki: b"",
        },
    ]
}

fn matching((records, leaf_names_host): (&[&str], bool), expected: &str) {
    let records: Vec<Tlsa> = records
        .iter()
        .map(|r| r.parse().expect("a TLSA record"))
        .collect();
    let per_record: Vec<String> = match_records(&records, &chain())
        .iter()
        .map(|m| match m {
            RecordMatch::EndEntity => "ee".to_owned(),
            RecordMatch::TrustAnchor { depth } => format!("ta@{depth}"),
            RecordMatch::NoMatch => "no-match".to_owned(),
            RecordMatch::Unusable { .. } => "unusable".to_owned(),
        })
        .collect();
    let verdict = match authenticate(&records, &chain(), leaf_names_host) {
        ChainVerdict::Authenticated { record, .. } => format!("authenticated by #{record}"),
        ChainVerdict::Failed => "failed".to_owned(),
        ChainVerdict::NoUsableRecords => "no usable records".to_owned(),
    };
    assert_eq!(format!("{}; {verdict}", per_record.join(",")), expected);
}

cases! { matching;
    rfc7672_s3_2_1_dane_ee_spki_sha256_matches_leaf: (&[format!("3 1 1 {SHA256_ABC}").as_str()], false) => "ee; authenticated by #0";
    rfc7672_s3_1_1_dane_ee_spki_sha512_matches_leaf: (&[format!("3 1 2 {SHA512_ABC}").as_str()], false) => "ee; authenticated by #0";
    rfc7672_s3_1_1_dane_ee_spki_full_matches_leaf: (&["3 1 0 616263"], false) => "ee; authenticated by #0";
    rfc7672_s3_1_1_dane_ee_cert_full_matches_leaf: (&["3 0 0 6c6561662d63657274"], false) => "ee; authenticated by #0";
    rfc7672_s3_1_1_dane_ee_cert_sha256_of_leaf_spki_does_not_match: (&[format!("3 0 1 {SHA256_ABC}").as_str()], false) => "no-match; failed";
    rfc7672_s3_1_1_dane_ee_does_not_match_the_issuer: (&[format!("3 1 1 {SHA256_EMPTY}").as_str()], false) => "no-match; failed";
    rfc7672_s3_1_2_dane_ta_spki_matches_issuer: (&[format!("2 1 1 {SHA256_EMPTY}").as_str()], true) => "ta@1; authenticated by #0";
    rfc7672_s3_1_2_dane_ta_cert_matches_issuer: (&[format!("2 0 1 {SHA256_ABC}").as_str()], true) => "ta@1; authenticated by #0";
    rfc7672_s3_2_2_dane_ta_needs_the_host_name: (&[format!("2 1 1 {SHA256_EMPTY}").as_str()], false) => "ta@1; failed";
    rfc7672_s3_2_any_matching_record_authenticates: (&[format!("3 1 1 {SHA256_EMPTY}").as_str(), format!("2 1 1 {SHA256_ABC}").as_str()], true) => "no-match,ta@0; authenticated by #1";
    rfc7672_s3_2_no_usable_record_matches: (&[format!("3 1 1 {D32}").as_str()], true) => "no-match; failed";
    rfc7672_s3_1_3_pkix_records_never_match: (&[format!("1 1 1 {SHA256_ABC}").as_str()], true) => "unusable; no usable records";
    rfc7672_s3_2_later_record_matches: (&[format!("1 1 1 {SHA256_ABC}").as_str(), format!("3 1 1 {SHA256_ABC}").as_str()], false) => "unusable,ee; authenticated by #1";
}

// ---- the steps (RFC 7672 §2.2.2, §2.2.3)

#[test]
fn rfc7672_s2_2_2_cname_expanded_name_first() {
    let addresses = Lookup::Found {
        records: HostAddresses {
            addresses: vec!["192.0.2.25".parse().expect("an address")],
            canonical: Some("mx.provider.example".into()),
        },
        security: Security::Secure,
        ttl: 60,
    };
    assert_eq!(
        tlsa_names("mx.example.com", &addresses),
        vec![
            "_25._tcp.mx.provider.example".to_owned(),
            "_25._tcp.mx.example.com".to_owned()
        ]
    );
    assert!(tlsa_names("mx.example.com", &addresses.distrusted()).is_empty());
}

#[test]
fn rfc7672_s2_2_2_mx_hosts_in_preference_order_implicit_and_null() {
    let mx = |records: &[(u16, &str)]| Lookup::Found {
        records: records
            .iter()
            .map(|(p, e)| MxRecord {
                preference: *p,
                exchange: (*e).to_owned(),
            })
            .collect(),
        security: Security::Secure,
        ttl: 60,
    };
    assert_eq!(
        mx_hosts(DOMAIN, &mx(&[(20, "b.example"), (10, "a.example")])),
        vec!["a.example", "b.example"]
    );
    assert!(mx_hosts(DOMAIN, &mx(&[(0, "")])).is_empty());
    let implicit = Lookup::Absent {
        nxdomain: false,
        security: Security::Insecure,
        ttl: 60,
    };
    assert_eq!(mx_hosts(DOMAIN, &implicit), vec![DOMAIN]);
}

/// RFC 2308 §5 and the records' TTLs: the assessment lives as long as its shortest answer.
#[test]
fn rfc2308_s5_assessment_ttl_is_the_smallest_answer_ttl() {
    let evidence = Evidence {
        domain: DOMAIN.into(),
        mx: Lookup::Found {
            records: vec![MxRecord {
                preference: 10,
                exchange: "mx1.example.com".into(),
            }],
            security: Security::Secure,
            ttl: 3600,
        },
        hosts: vec![host("secure/nodata", "mx1.example.com")],
        hosts_not_examined: 0,
    };
    let a = assess(&evidence);
    // The negative TTL of the TLSA denial (600) is smaller than the MX (3600) and the
    // address (3600) TTLs.
    assert_eq!(a.ttl, Some(600));
    let limits = mtasts_core::dane::CacheLimits {
        min_ttl: 60,
        max_ttl: 300,
        failure_ttl: 30,
    };
    assert_eq!(a.cache_for(&limits), 300);
    let failed = Evidence {
        hosts: vec![host("secure/servfail", "mx1.example.com")],
        ..evidence
    };
    let a = assess(&failed);
    assert_eq!(a.ttl, None);
    assert_eq!(a.cache_for(&limits), 30);
}
