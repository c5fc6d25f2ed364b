//! The checker's judgement, sans-IO and table-driven: each case starts from a correct enforce
//! deployment's observations, changes one thing, and states the verdict and finding ids a
//! correct checker reaches, with the rule's section beside it.

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mtasts_check::assess::{AddressResult, DaneReport};
use mtasts_check::assess::{AssessSettings, SenderOutcome, assess};
use mtasts_check::init::{InitRequest, propose};
use mtasts_check::obs::*;
use mtasts_core::Severity;
use mtasts_core::dane::{
    Decision, Evidence, HostAddresses, HostEvidence, Lookup, MxRecord, Precedence, Security,
};
use mtasts_core::dns::{DnsError, DnsErrorKind};
use mtasts_core::sts::fetch::TransportProblem;
use mtasts_core::sts::policy::Mode;
use rustls::pki_types::CertificateDer;

const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

fn cert(names: &[&str], not_after: i64) -> CertSummary {
    CertSummary {
        subject: format!("CN={}", names[0]),
        issuer: "CN=intermediate".into(),
        names: names.iter().map(|s| (*s).to_owned()).collect(),
        not_before: NOW - 30 * DAY,
        not_after,
    }
}

fn tls(host: &str, verdict: CertVerdict) -> TlsSession {
    TlsSession {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        verdict,
        chain: vec![cert(&[host], NOW + 60 * DAY)],
        // The leaf's DER is "leaf" and its SubjectPublicKeyInfo "abc", whose SHA-256 is the
        // FIPS 180-2 test vector SHA256_ABC; the issuer's SPKI is "".
        chain_der: vec![
            CertificateDer::from(b"leaf".to_vec()),
            CertificateDer::from(b"issuer".to_vec()),
        ],
        chain_spki: vec![b"abc".to_vec(), Vec::new()],
    }
}

fn ok(code: u16) -> Option<SmtpReply> {
    Some(SmtpReply {
        code,
        text: "ok".into(),
    })
}

fn probe(host: &str, last: u8) -> SmtpProbe {
    SmtpProbe {
        address: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), 25),
        greeting_millis: Some(5),
        extensions: vec!["STARTTLS".into()],
        starttls_offered: Some(true),
        tls: Some(tls(host, CertVerdict::Valid)),
        mail: ok(250),
        rcpt: ok(250),
        failure: None,
    }
}

fn host(name: &str, pref: u16, last: u8) -> MxHost {
    MxHost {
        name: name.into(),
        preference: pref,
        cname_target: None,
        addresses: AddressLookup::Found {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))],
        },
        smtp: vec![probe(name, last)],
    }
}

fn txt(s: &str) -> TxtLookup {
    TxtLookup::Found {
        records: vec![vec![s.as_bytes().to_vec()]],
        millis: 3,
    }
}

fn policy(body: &str) -> PolicyFetch {
    PolicyFetch {
        url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
        addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80))],
        address: None,
        tls: Some(tls("mta-sts.example.com", CertVerdict::Valid)),
        status: Some(200),
        location: None,
        content_type: Some("text/plain".into()),
        content_length: Some(body.len() as u64),
        body: body.as_bytes().to_vec(),
        body_bytes: body.len() as u64,
        millis: 10,
        failure: None,
    }
}

const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n";
const TESTING: &str = "version: STSv1\nmode: testing\nmx: mx1.example.com\nmax_age: 604800\n";

/// A correct enforce deployment.
fn good() -> Observations {
    Observations {
        domain: "example.com".into(),
        ascii: "example.com".into(),
        sts_txt: txt("v=STSv1; id=20250101;"),
        tlsrpt_txt: txt("v=TLSRPTv1; rua=mailto:tlsrpt@example.com"),
        rua_domains: vec![RuaDomain {
            uri: "mailto:tlsrpt@example.com".into(),
            domain: "example.com".into(),
            accepts_mail: Ok(()),
        }],
        mx: MxLookup::Found {
            records: vec![(10, "mx1.example.com".into())],
        },
        mx_authentic: false,
        policy_fetch: Some(policy(ENFORCE)),
        mx_hosts: vec![host("mx1.example.com", 10, 1)],
        dane: None,
    }
}

fn smtp0(o: &mut Observations) -> &mut SmtpProbe {
    &mut o.mx_hosts[0].smtp[0]
}

struct Case {
    name: &'static str,
    rule: &'static str,
    change: fn(&mut Observations),
    outcome: SenderOutcome,
    ids: &'static [&'static str],
}

macro_rules! cases {
    ($( $name:ident, $rule:literal, $change:expr, $outcome:ident, [$($id:literal),*]; )*) => {
        vec![$( Case {
            name: stringify!($name),
            rule: $rule,
            change: $change,
            outcome: SenderOutcome::$outcome,
            ids: &[$($id),*],
        }, )*]
    };
}

#[test]
fn judgement_table() {
    use SenderOutcome::*;
    let _ = (DeliverSecurely, DeliverAndReport, Defer, NoPolicy, Bounce);
    let table = cases![
        correct_enforce, "RFC 8461 §5", |_| {}, DeliverSecurely, [];
        no_record, "RFC 8461 §3.1", |o| { o.sts_txt = TxtLookup::NxDomain { millis: 1 }; o.policy_fetch = None; }, NoPolicy, ["sts.record.none"];
        unrelated_txt_only, "RFC 8461 §3.1", |o| { o.sts_txt = txt("v=spf1 -all"); o.policy_fetch = None; }, NoPolicy, ["sts.record.none"];
        two_records, "RFC 8461 §3.1", |o| { o.sts_txt = TxtLookup::Found { records: vec![vec![b"v=STSv1; id=1;".to_vec()], vec![b"v=STSv1; id=2;".to_vec()]], millis: 1 }; }, NoPolicy, ["sts.record.multiple"];
        record_lookup_servfail, "RFC 8461 §3.1", |o| { o.sts_txt = TxtLookup::Failed { kind: DnsErrorKind::ServFail, reason: "SERVFAIL".into(), millis: 1 }; o.policy_fetch = None; }, NoPolicy, ["sts.record.lookup-failed"];
        split_record_joined, "RFC 8461 §3.1", |o| { o.sts_txt = TxtLookup::Found { records: vec![vec![b"v=STSv1; ".to_vec(), b"id=20250101;".to_vec()]], millis: 1 }; }, DeliverSecurely, [];
        redirect, "RFC 8461 §3.3", |o| { let p = o.policy_fetch.as_mut().unwrap(); p.status = Some(301); p.location = Some("https://elsewhere/".into()); }, DeliverAndReport, ["sts.fetch.redirect"];
        status_404, "RFC 8461 §3.3", |o| { o.policy_fetch.as_mut().unwrap().status = Some(404); }, DeliverAndReport, ["sts.fetch.status"];
        text_html, "RFC 8461 §3.2", |o| { o.policy_fetch.as_mut().unwrap().content_type = Some("text/html".into()); }, DeliverAndReport, ["sts.fetch.media-type"];
        charset_param_ok, "RFC 8461 §3.2", |o| { o.policy_fetch.as_mut().unwrap().content_type = Some("text/plain; charset=utf-8".into()); }, DeliverSecurely, [];
        body_over_64k, "RFC 8461 §3.3", |o| { let p = o.policy_fetch.as_mut().unwrap(); p.content_length = None; p.body_bytes = 65_537; }, DeliverAndReport, ["sts.fetch.body-too-large"];
        policy_host_nxdomain, "RFC 8461 §3.3", |o| { let p = o.policy_fetch.as_mut().unwrap(); p.status = None; p.tls = None; p.failure = Some(FetchFailure { stage: FetchStage::Resolve, problem: TransportProblem::Dns { error: DnsError::new(DnsErrorKind::NxDomain, "mta-sts.example.com", "") } }); }, DeliverAndReport, ["sts.fetch.host-not-found"];
        policy_host_tls10, "RFC 8461 §7.2", |o| { let p = o.policy_fetch.as_mut().unwrap(); p.status = None; p.tls = None; p.failure = Some(FetchFailure { stage: FetchStage::Handshake, problem: TransportProblem::Handshake { failure: HandshakeFailure::VersionTooOld } }); }, DeliverAndReport, ["sts.fetch.tls-version"];
        policy_body_timeout, "RFC 8461 §3.3", |o| { let p = o.policy_fetch.as_mut().unwrap(); p.failure = Some(FetchFailure { stage: FetchStage::Body, problem: TransportProblem::Timeout }); }, DeliverAndReport, ["sts.fetch.timeout"];
        policy_cert_expired, "RFC 8461 §3.3", |o| { o.policy_fetch.as_mut().unwrap().tls = Some(tls("mta-sts.example.com", CertVerdict::Expired { not_after: NOW - DAY })); }, DeliverAndReport, ["sts.fetch.cert-expired"];
        policy_mode_capitalised, "RFC 8461 §3.2", |o| { let b = ENFORCE.replace("enforce", "Enforce"); o.policy_fetch = Some(policy(&b)); }, DeliverAndReport, ["sts.policy.invalid-mode"];
        max_age_over_a_year, "RFC 8461 §3.2", |o| { let b = ENFORCE.replace("604800", "31557601"); o.policy_fetch = Some(policy(&b)); }, DeliverAndReport, ["sts.policy.max-age-too-large"];
        mode_none, "RFC 8461 §5", |o| { let b = ENFORCE.replace("enforce", "none"); o.policy_fetch = Some(policy(&b)); }, NoPolicy, [];
        mx_not_covered, "RFC 8461 §4.1", |o| { o.mx_hosts = vec![host("mail.example.com", 10, 1)]; }, Defer, ["sts.coverage.mx-not-covered", "sts.coverage.unused-pattern"];
        wildcard_spans_one_label, "RFC 8461 §4.1", |o| { let b = ENFORCE.replace("mx1.example.com", "*.example.com"); o.policy_fetch = Some(policy(&b)); o.mx_hosts = vec![host("a.b.example.com", 10, 1)]; }, Defer, ["sts.coverage.mx-not-covered", "sts.coverage.unused-pattern"];
        wildcard_one_label_matches, "RFC 8461 §4.1", |o| { let b = ENFORCE.replace("mx1.example.com", "*.example.com"); o.policy_fetch = Some(policy(&b)); }, DeliverSecurely, [];
        backup_uncovered_primary_ok, "RFC 8461 §4.1", |o| { o.mx_hosts.push(host("backup.example.net", 20, 2)); }, DeliverSecurely, ["sts.coverage.mx-not-covered"];
        starttls_stripped_enforce, "RFC 8461 §4.2", |o| { let p = smtp0(o); p.starttls_offered = Some(false); p.tls = None; }, Defer, ["smtp.starttls-missing"];
        starttls_stripped_testing, "RFC 8461 §5", |o| { o.policy_fetch = Some(policy(TESTING)); let p = smtp0(o); p.starttls_offered = Some(false); p.tls = None; }, DeliverAndReport, ["smtp.starttls-missing"];
        cert_wrong_name_enforce, "RFC 8461 §4.2", |o| { smtp0(o).tls = Some(tls("rogue.example.net", CertVerdict::NameMismatch { expected: "mx1.example.com".into(), presented: vec!["rogue.example.net".into()] })); }, Defer, ["smtp.cert-name-mismatch"];
        cert_self_signed_testing, "RFC 8461 §5", |o| { o.policy_fetch = Some(policy(TESTING)); smtp0(o).tls = Some(tls("mx1.example.com", CertVerdict::SelfSigned)); }, DeliverAndReport, ["smtp.cert-self-signed"];
        one_bad_backend, "RFC 8461 §5", |o| { let mut bad = probe("mx1.example.com", 9); bad.tls = Some(tls("mx1.example.com", CertVerdict::Expired { not_after: NOW - DAY })); o.mx_hosts[0].smtp.push(bad); }, DeliverAndReport, ["smtp.cert-expired"];
        cert_expiring_in_10_days, "RFC 8461 §4.2", |o| { smtp0(o).tls.as_mut().unwrap().chain[0].not_after = NOW + 10 * DAY; }, DeliverSecurely, ["smtp.cert-expiring-soon"];
        mx_unreachable, "RFC 5321 §5.1", |o| { smtp0(o).failure = Some(SmtpFailure { stage: SmtpStage::Connect, reason: "refused".into(), reply: None, timeout: false, handshake: None }); smtp0(o).tls = None; smtp0(o).starttls_offered = None; }, Defer, ["smtp.connect-failed"];
        null_mx, "RFC 7505", |o| { o.mx = MxLookup::Null; o.mx_hosts.clear(); }, Bounce, [];
        mail_451, "RFC 5321 §4.2.1", |o| { smtp0(o).mail = ok(451); smtp0(o).rcpt = None; }, Defer, ["smtp.mail-rejected"];
        rcpt_550, "RFC 5321 §4.5.1", |o| { smtp0(o).rcpt = ok(550); }, Bounce, ["smtp.rcpt-rejected"];
        no_tlsrpt, "RFC 8460 §3", |o| { o.tlsrpt_txt = TxtLookup::NxDomain { millis: 1 }; o.rua_domains.clear(); }, DeliverSecurely, ["tlsrpt.record.none"];
        rua_domain_without_mx, "RFC 8460 §5.3", |o| { o.rua_domains[0].accepts_mail = Err("no MX".into()); }, DeliverSecurely, ["tlsrpt.rua.no-mx"];
        mx_is_cname, "RFC 2181 §10.3", |o| { o.mx_hosts[0].cname_target = Some("mx.provider.net".into()); }, DeliverSecurely, ["mx.cname"];
    ];
    let mut failures = Vec::new();
    for c in &table {
        let mut o = good();
        (c.change)(&mut o);
        let r = assess(o, &AssessSettings::at(NOW));
        let mut want: Vec<String> = c.ids.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        if r.verdict.outcome != c.outcome || r.problem_ids() != want {
            failures.push(format!(
                "{} ({}): want {:?} {:?}, got {:?} {:?}: {}",
                c.name,
                c.rule,
                c.outcome,
                want,
                r.verdict.outcome,
                r.problem_ids(),
                r.verdict.summary
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn severity_of_mx_problems_follows_publication() {
    // Before MTA-STS is published, MX problems are warnings; after, errors.
    let mut o = good();
    o.sts_txt = TxtLookup::NxDomain { millis: 1 };
    o.policy_fetch = None;
    smtp0(&mut o).tls = Some(tls("x", CertVerdict::SelfSigned));
    let r = assess(o, &AssessSettings::at(NOW));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "smtp.cert-self-signed")
        .unwrap();
    assert_eq!(f.severity, Severity::Warning);
    let mut o = good();
    smtp0(&mut o).tls = Some(tls("x", CertVerdict::SelfSigned));
    let r = assess(o, &AssessSettings::at(NOW));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "smtp.cert-self-signed")
        .unwrap();
    assert_eq!(f.severity, Severity::Error);
}

#[test]
fn lenient_media_type_is_a_warning_and_the_policy_applies() {
    let mut o = good();
    o.policy_fetch.as_mut().unwrap().content_type = Some("text/html".into());
    let mut s = AssessSettings::at(NOW);
    s.limits.require_text_plain = false;
    let r = assess(o, &s);
    assert_eq!(r.verdict.outcome, SenderOutcome::DeliverSecurely);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "sts.fetch.media-type")
        .unwrap();
    assert_eq!(f.severity, Severity::Warning);
}

#[test]
fn next_step_follows_the_rollout() {
    let step = |o: Observations| assess(o, &AssessSettings::at(NOW)).verdict.next_step;
    let mut o = good();
    o.sts_txt = TxtLookup::NxDomain { millis: 1 };
    o.tlsrpt_txt = TxtLookup::NxDomain { millis: 1 };
    o.rua_domains.clear();
    o.policy_fetch = None;
    assert!(step(o).starts_with("start with TLS-RPT"));
    let mut o = good();
    o.policy_fetch = Some(policy(TESTING));
    assert!(step(o).contains("switch to mode: enforce"));
    let mut o = good();
    o.policy_fetch = Some(policy(&ENFORCE.replace("604800", "86400")));
    assert!(step(o).contains("raise max_age"));
    let mut o = good();
    o.mx_hosts = vec![host("mail.example.com", 10, 1)];
    assert!(step(o).contains("sts.coverage.mx-not-covered"));
}

#[test]
fn init_covers_each_mx_by_the_certificate_name_that_matches_it() {
    let mut o = good();
    o.mx = MxLookup::Found {
        records: vec![
            (10, "mx1.example.com".into()),
            (20, "mx2.example.net".into()),
        ],
    };
    o.mx_hosts.push(host("mx2.example.net", 20, 2));
    // mx1 presents a wildcard certificate; mx2 one for another name.
    o.mx_hosts[0].smtp[0].tls.as_mut().unwrap().chain[0].names = vec!["*.example.com".into()];
    o.mx_hosts[1].smtp[0].tls = Some(tls(
        "other.example.org",
        CertVerdict::NameMismatch {
            expected: "mx2.example.net".into(),
            presented: vec!["other.example.org".into()],
        },
    ));
    let req = InitRequest {
        mode: Mode::Testing,
        max_age: None,
        rua: None,
        now: NOW,
    };
    let p = propose(&o, &req).unwrap();
    assert_eq!(
        p.policy,
        "version: STSv1\nmode: testing\nmx: *.example.com\nmx: mx2.example.net\nmax_age: 86400\n"
    );
    assert!(p.zone[0].starts_with("_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id=20"));
    assert!(p.zone[1].contains("rua=mailto:tlsrpt@example.com"));
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("mx2.example.net"));
    // The generated policy lints clean and covers every MX (RFC 8461 §3.2, §4.1).
    let lint = mtasts_core::sts::policy::lint_policy(p.policy.as_bytes());
    assert!(lint.errors.is_empty() && lint.warnings.is_empty());
    let pol = lint.policy.unwrap();
    assert!(pol.allows_mx("mx1.example.com") && pol.allows_mx("mx2.example.net"));

    let enforce = propose(
        &o,
        &InitRequest {
            mode: Mode::Enforce,
            rua: Some("https://reports.example.com/tlsrpt".into()),
            ..req.clone()
        },
    )
    .unwrap();
    assert!(enforce.policy.contains("max_age: 1209600"));
    assert!(enforce.zone[1].contains("rua=https://reports.example.com/tlsrpt"));
    assert!(
        enforce
            .warnings
            .iter()
            .any(|w| w.contains("publish testing first"))
    );
    assert!(
        propose(
            &o,
            &InitRequest {
                rua: Some("ftp://x".into()),
                ..req.clone()
            }
        )
        .is_err()
    );
    let mut null = good();
    null.mx = MxLookup::Null;
    assert!(propose(&null, &req).is_err());
}

// ---- DANE (RFC 7672, RFC 8461 §2): the DANE evidence added to the correct enforce deployment

const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn found<T>(records: T, secure: bool) -> Lookup<T> {
    Lookup::Found {
        records,
        security: Security::from_ad(secure),
        ttl: 300,
    }
}

/// DANE evidence for example.com: the MX RRset (secure or not) and, for each MX host of
/// `good()`, addresses (secure or not) and a TLSA lookup (`records`: presentation forms;
/// `None`: a SERVFAIL; `Some(&[])`: a secure NXDOMAIN).
fn evidence(mx_secure: bool, hosts: &[(&str, bool, Option<&[&str]>, bool)]) -> Evidence {
    Evidence {
        domain: "example.com".into(),
        mx: found(
            hosts
                .iter()
                .map(|(h, ..)| MxRecord {
                    preference: 10,
                    exchange: (*h).to_owned(),
                })
                .collect(),
            mx_secure,
        ),
        hosts: hosts
            .iter()
            .map(|(h, addr_secure, tlsa, tlsa_secure)| {
                let name = format!("_25._tcp.{h}");
                let lookup = match tlsa {
                    None => Lookup::failed(DnsErrorKind::ServFail, &name, "bogus"),
                    Some([]) => Lookup::Absent {
                        nxdomain: true,
                        security: Security::Secure,
                        ttl: 60,
                    },
                    Some(rs) => found(
                        rs.iter().map(|r| r.parse().unwrap()).collect(),
                        *tlsa_secure,
                    ),
                };
                HostEvidence {
                    host: (*h).to_owned(),
                    addresses: found(
                        HostAddresses {
                            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
                            canonical: None,
                        },
                        *addr_secure,
                    ),
                    tlsa: vec![(name, lookup)],
                }
            })
            .collect(),
        hosts_not_examined: 0,
    }
}

fn ee_abc() -> String {
    format!("3 1 1 {SHA256_ABC}")
}

#[test]
fn dane_judgement_table() {
    let ee = ee_abc();
    let ta = format!("2 1 1 {SHA256_EMPTY}");
    let wrong = format!("3 1 1 {SHA256_EMPTY}");
    let pkix = format!("1 1 1 {SHA256_ABC}");
    type Change = Box<dyn Fn(&mut Observations)>;
    let cases: Vec<(&str, &str, Change, &str, Vec<&str>)> = vec![
        (
            "dane_ee_match",
            "RFC 7672 §3.2.1",
            Box::new({
                let ee = ee.clone();
                move |o| {
                    o.dane = Some(evidence(
                        true,
                        &[("mx1.example.com", true, Some(&[ee.as_str()]), true)],
                    ))
                }
            }),
            "dane-only",
            vec![],
        ),
        (
            "dane_ta_match_names_the_host",
            "RFC 7672 §3.2.2",
            Box::new({
                let ta = ta.clone();
                move |o| {
                    o.dane = Some(evidence(
                        true,
                        &[("mx1.example.com", true, Some(&[ta.as_str()]), true)],
                    ))
                }
            }),
            "dane-only",
            vec![],
        ),
        (
            "dane_ta_match_wrong_name",
            "RFC 7672 §3.2.2",
            Box::new({
                let ta = ta.clone();
                move |o| {
                    o.dane = Some(evidence(
                        true,
                        &[("mx1.example.com", true, Some(&[ta.as_str()]), true)],
                    ));
                    smtp0(o).tls.as_mut().unwrap().chain[0].names =
                        vec!["other.example.net".into()];
                }
            }),
            "dane-only",
            vec!["dane.mismatch"],
        ),
        (
            "dane_mismatch",
            "RFC 7672 §3.2",
            Box::new({
                let wrong = wrong.clone();
                move |o| {
                    o.dane = Some(evidence(
                        true,
                        &[("mx1.example.com", true, Some(&[wrong.as_str()]), true)],
                    ))
                }
            }),
            "dane-only",
            vec!["dane.mismatch"],
        ),
        (
            "dane_without_starttls",
            "RFC 7672 §2.2.3",
            Box::new({
                let ee = ee.clone();
                move |o| {
                    o.dane = Some(evidence(
                        true,
                        &[("mx1.example.com", true, Some(&[ee.as_str()]), true)],
                    ));
                    let p = smtp0(o);
                    p.starttls_offered = Some(false);
                    p.tls = None;
                }
            }),
            "dane-only",
            vec!["dane.tls-required", "smtp.starttls-missing"],
        ),
        (
            "dane_all_unusable",
            "RFC 7672 §3.1.3",
            Box::new({
                let pkix = pkix.clone();
                move |o| {
                    o.dane = Some(evidence(
                        true,
                        &[("mx1.example.com", true, Some(&[pkix.as_str()]), true)],
                    ))
                }
            }),
            "dane",
            vec!["dane.no-usable-tlsa", "dane.tlsa-unusable"],
        ),
        (
            "dane_insecure_tlsa",
            "RFC 7672 §2.2",
            Box::new({
                let ee = ee.clone();
                move |o| {
                    o.dane = Some(evidence(
                        true,
                        &[("mx1.example.com", true, Some(&[ee.as_str()]), false)],
                    ))
                }
            }),
            "mta-sts",
            vec!["dane.tlsa-insecure"],
        ),
        (
            "dane_insecure_addresses",
            "RFC 7672 §2.2.2",
            Box::new({
                let ee = ee.clone();
                move |o| {
                    o.dane = Some(evidence(
                        false,
                        &[("mx1.example.com", false, Some(&[ee.as_str()]), false)],
                    ))
                }
            }),
            "mta-sts",
            vec!["dane.tlsa-insecure"],
        ),
        (
            "dane_secure_denial",
            "RFC 7672 §2.2",
            Box::new(|o| {
                o.dane = Some(evidence(
                    true,
                    &[("mx1.example.com", true, Some(&[]), true)],
                ))
            }),
            "mta-sts",
            vec![],
        ),
        (
            "dane_bogus_tlsa",
            "RFC 7672 §2.1.2",
            Box::new(|o| o.dane = Some(evidence(true, &[("mx1.example.com", true, None, true)]))),
            "temp",
            vec!["dane.lookup-failed"],
        ),
        (
            "dane_insecure_mx",
            "RFC 7672 §2.2.1",
            Box::new({
                let ee = ee.clone();
                move |o| {
                    o.dane = Some(evidence(
                        false,
                        &[("mx1.example.com", true, Some(&[ee.as_str()]), true)],
                    ))
                }
            }),
            "mta-sts",
            vec!["dane.insecure-mx"],
        ),
        (
            "dane_partial",
            "RFC 7672 §2.2.1",
            Box::new({
                let ee = ee.clone();
                move |o| {
                    o.mx_hosts.push(host("mx2.example.com", 20, 2));
                    o.dane = Some(evidence(
                        true,
                        &[
                            ("mx1.example.com", true, Some(&[ee.as_str()]), true),
                            ("mx2.example.com", true, Some(&[]), true),
                        ],
                    ));
                }
            }),
            "dane",
            vec!["dane.partial", "sts.coverage.mx-not-covered"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, rule, change, applies, ids) in &cases {
        let mut o = good();
        change(&mut o);
        let r = assess(o, &AssessSettings::at(NOW));
        let mut want: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        let dane: &DaneReport = r.dane.as_ref().unwrap();
        let got = match dane.applies {
            Precedence::DaneOnly => "dane-only",
            Precedence::Dane => "dane",
            Precedence::TempFail { .. } => "temp",
            Precedence::MtaSts => "mta-sts",
        };
        if got != *applies || r.problem_ids() != want {
            failures.push(format!(
                "{name} ({rule}): want {applies} {want:?}, got {got} {:?}: {}",
                r.problem_ids(),
                dane.summary
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dane_match_is_reported_per_address_with_what_a_dane_sender_does() {
    let mut o = good();
    o.dane = Some(evidence(
        true,
        &[("mx1.example.com", true, Some(&[ee_abc().as_str()]), true)],
    ));
    let r = assess(o, &AssessSettings::at(NOW));
    let dane = r.dane.as_ref().unwrap();
    assert_eq!(dane.decision, Decision::Mandatory);
    assert_eq!(
        dane.addresses[0].result,
        AddressResult::Authenticated {
            record: ee_abc(),
            how: "DANE-EE SPKI SHA2-256".into()
        }
    );
    assert_eq!(
        dane.summary,
        "DANE senders deliver to mx1.example.com [192.0.2.1] over DANE-authenticated TLS"
    );
    let m = r.findings.iter().find(|f| f.code == "dane.match").unwrap();
    assert_eq!(
        m.subject.as_deref(),
        Some("MX mx1.example.com [192.0.2.1:25]")
    );
    let mandatory = r
        .findings
        .iter()
        .find(|f| f.code == "dane.mandatory")
        .unwrap();
    assert!(
        mandatory
            .message
            .contains("do not apply the MTA-STS policy")
    );
    // Without DANE evidence there is no DANE report.
    assert!(assess(good(), &AssessSettings::at(NOW)).dane.is_none());
}
