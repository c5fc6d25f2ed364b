//! RFC 8460 §3: reports by mail must carry a valid DKIM signature of the reporting domain,
//! without `l=`; the key should declare `s=tlsrpt`.

use mtasts_core::Diagnostic;
use mtasts_core::tlsrpt::dkim::{
    DkimRequirements, KeyServices, SignatureCheck, SignatureResult, judge, key_services, signs_for,
};

fn pass(domain: &str) -> SignatureCheck {
    SignatureCheck {
        domain: Some(domain.into()),
        selector: Some("tlsrpt".into()),
        result: SignatureResult::Pass,
        length_limited: false,
        services: Some(KeyServices::Tlsrpt),
    }
}

fn code(checks: &[SignatureCheck], submitter: Option<&str>, req: DkimRequirements) -> String {
    match judge(checks, submitter, req) {
        Ok(v) => format!("verified {}", v.domain),
        Err(p) => p.code().to_string(),
    }
}

const LAX: DkimRequirements = DkimRequirements {
    tlsrpt_service: false,
};
const STRICT: DkimRequirements = DkimRequirements {
    tlsrpt_service: true,
};

#[test]
fn rfc8460_s3_valid_signature_of_the_reporting_domain_verifies() {
    assert_eq!(
        code(&[pass("google.com")], Some("google.com"), LAX),
        "verified google.com"
    );
}

#[test]
fn rfc8460_s3_no_signature_is_ignored() {
    assert_eq!(code(&[], Some("google.com"), LAX), "dkim.none");
}

#[test]
fn rfc8460_s3_failing_signature_is_ignored() {
    let mut c = pass("google.com");
    c.result = SignatureResult::Fail {
        reason: "body hash mismatch".into(),
    };
    assert_eq!(code(&[c], Some("google.com"), LAX), "dkim.fail");
}

#[test]
fn rfc8460_s3_l_tag_is_refused() {
    let mut c = pass("google.com");
    c.length_limited = true;
    assert_eq!(code(&[c], Some("google.com"), LAX), "dkim.length-limit");
}

#[test]
fn rfc8460_s3_signature_by_another_domain_is_not_the_reporting_domain() {
    assert_eq!(
        code(&[pass("attacker.example")], Some("google.com"), LAX),
        "dkim.not-reporting-domain"
    );
    // A second, aligned signature makes it count.
    assert_eq!(
        code(
            &[pass("esp.example"), pass("google.com")],
            Some("google.com"),
            LAX
        ),
        "verified google.com"
    );
}

#[test]
fn rfc8460_s3_parent_and_subdomain_of_the_submitter_sign_for_it() {
    assert!(signs_for("example.com", "mail.example.com"));
    assert!(signs_for("mail.example.com", "example.com"));
    assert!(signs_for("Google.COM.", "google.com"));
    assert!(!signs_for("le.com", "example.com"));
    assert!(!signs_for("example.com.evil", "example.com"));
}

#[test]
fn rfc8460_s3_temporary_failure_outranks_a_permanent_one_so_it_is_retried() {
    let mut a = pass("google.com");
    a.result = SignatureResult::PermError {
        reason: "no key".into(),
    };
    let mut b = pass("google.com");
    b.result = SignatureResult::TempError {
        reason: "timeout".into(),
    };
    let p = judge(&[a, b], Some("google.com"), LAX).expect_err("no pass");
    assert_eq!(p.code(), "dkim.temperror");
    assert!(p.retryable());
}

#[test]
fn rfc8460_s3_key_service_type_tlsrpt_is_read() {
    assert_eq!(
        key_services(b"v=DKIM1; k=rsa; s=tlsrpt; p=AAAA"),
        KeyServices::Tlsrpt
    );
    assert_eq!(
        key_services(b"v=DKIM1; s=email:tlsrpt; p=AAAA"),
        KeyServices::Tlsrpt
    );
    assert_eq!(key_services(b"v=DKIM1; p=AAAA"), KeyServices::All);
    assert_eq!(key_services(b"v=DKIM1; s=*; p=AAAA"), KeyServices::All);
    assert_eq!(
        key_services(b"v=DKIM1; s = email ; p=AAAA"),
        KeyServices::Others(vec!["email".into()])
    );
}

#[test]
fn rfc8460_s3_key_without_tlsrpt_service_may_be_ignored_when_required() {
    let mut c = pass("microsoft.com");
    c.services = Some(KeyServices::Others(vec!["email".into()]));
    assert_eq!(
        code(std::slice::from_ref(&c), Some("microsoft.com"), LAX),
        "verified microsoft.com"
    );
    assert_eq!(
        code(&[c], Some("microsoft.com"), STRICT),
        "dkim.no-tlsrpt-service"
    );
}
