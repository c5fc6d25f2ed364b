//! The lab's DNSSEC and DANE knobs, checked with `dig` and `openssl`: a signed zone's answers
//! (records, NXDOMAIN, NODATA) carry AD only to queries asking for it (RFC 6840 §5.7), a bogus
//! name answers SERVFAIL with the Extended DNS Error "DNSSEC Bogus", and TLSA records derived
//! from the certificate a host really presents match what `openssl` computes from that
//! certificate.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{dig, require_tool, start_inline, text};
use mtasts_lab::{CertKind, CertSpec};

const SIGNED: &str = r#"
[domains."signed.test"]
comment = "a signed zone with DANE-EE, DANE-TA and mismatching records"
dnssec_signed = true
mx = ["10 mx1.signed.test", "20 mx2.signed.test", "30 mx3.signed.test"]
[domains."signed.test".hosts.mx1]
cert = "untrusted-ca"
tlsa = ["3 1 1", "3 0 2"]
[domains."signed.test".hosts.mx2]
tlsa = ["2 1 1"]
[domains."signed.test".hosts.mx3]
tlsa = ["3 1 1 mismatch"]
[domains."signed.test".dns."_25._tcp.bogus"]
tlsa = ["3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"]
fault = "bogus"
fault_types = ["TLSA"]
[domains."signed.test".dns.unsigned]
a = ["127.0.0.9"]
dnssec_signed = false

[domains."plain.test"]
comment = "an unsigned zone"
mx = ["10 mx1.plain.test"]
"#;

fn flags(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once("flags: ").map(|(_, f)| f.to_owned()))
        .unwrap_or_default()
}

fn ad(world: &mtasts_lab::World, args: &[&str]) -> (bool, String) {
    let t = text(&dig(world, args));
    (flags(&t).contains(" ad;"), t)
}

#[test]
fn rfc6840_s5_7_signed_zone_sets_ad_on_records_and_denials_when_asked() {
    let w = start_inline(SIGNED);
    // dig sets AD in its queries by default.
    for (args, what) in [
        (&["MX", "signed.test"][..], "records"),
        (&["A", "nothing.signed.test"][..], "NXDOMAIN"),
        (&["TXT", "mx1.signed.test"][..], "NODATA"),
        (&["TLSA", "_25._tcp.mx2.signed.test"][..], "TLSA records"),
        (
            &["TLSA", "_25._tcp.nohost.signed.test"][..],
            "TLSA NXDOMAIN",
        ),
    ] {
        let (set, t) = ad(&w, args);
        assert!(set, "{what}: AD expected: {t}");
    }
    let (set, t) = ad(&w, &["+noadflag", "MX", "signed.test"]);
    assert!(!set, "no AD without AD or DO in the query: {t}");
    let (set, t) = ad(&w, &["+noadflag", "+dnssec", "MX", "signed.test"]);
    assert!(set, "DO alone asks for AD: {t}");
    let (set, t) = ad(&w, &["A", "unsigned.signed.test"]);
    assert!(!set, "a name set dnssec_signed = false is insecure: {t}");
    let (set, t) = ad(&w, &["MX", "plain.test"]);
    assert!(!set, "unsigned zone: {t}");
    let (set, t) = ad(&w, &["A", "nothing.plain.test"]);
    assert!(!set, "unsigned NXDOMAIN: {t}");
    // The query log says what the query asked and whether the answer was authenticated.
    let q = w
        .dns_queries()
        .into_iter()
        .rfind(|q| q.name == "signed.test" && q.qtype == "MX")
        .expect("the MX queries are logged");
    assert!(q.dnssec_ok && q.authentic, "{q:?}");
}

#[test]
fn bogus_name_answers_servfail_with_the_dnssec_bogus_extended_error() {
    let w = start_inline(SIGNED);
    let t = text(&dig(&w, &["TLSA", "_25._tcp.bogus.signed.test"]));
    assert!(t.contains("status: SERVFAIL"), "{t}");
    assert!(!flags(&t).contains(" ad;"), "{t}");
    assert!(t.contains("EDE: 6 (DNSSEC Bogus)"), "{t}");
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl finishes");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pem_blocks(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(str::to_owned)
        .collect()
}

/// `openssl dgst` of one certificate's SPKI (`spki = true`) or DER.
fn digest(cert_pem: &str, spki: bool, alg: &str) -> String {
    let der = if spki {
        let pubkey = openssl(&["x509", "-pubkey", "-noout"], cert_pem.as_bytes());
        openssl(&["pkey", "-pubin", "-outform", "DER"], &pubkey)
    } else {
        openssl(&["x509", "-outform", "DER"], cert_pem.as_bytes())
    };
    let out = openssl(&["dgst", alg, "-r"], &der);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn tlsa(world: &mtasts_lab::World, host: &str) -> Vec<String> {
    let t = text(&dig(
        world,
        &["+short", "TLSA", &format!("_25._tcp.{host}")],
    ));
    // dig splits long hex into groups: join each record's data.
    t.lines()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            if parts.len() < 4 {
                return l.to_owned();
            }
            format!(
                "{} {} {} {}",
                parts[0],
                parts[1],
                parts[2],
                parts[3..].concat().to_ascii_lowercase()
            )
        })
        .collect()
}

#[test]
fn tlsa_knobs_derive_the_records_from_the_presented_certificate() {
    require_tool("openssl", "openssl");
    let w = start_inline(SIGNED);
    let chain1 = pem_blocks(&w.cert_chain_pem("mx1.signed.test").expect("mx1's chain"));
    let mut want = vec![
        format!("3 1 1 {}", digest(&chain1[0], true, "-sha256")),
        format!("3 0 2 {}", digest(&chain1[0], false, "-sha512")),
    ];
    let mut got = tlsa(&w, "mx1.signed.test");
    want.sort();
    got.sort();
    assert_eq!(got, want, "DANE-EE from the leaf mx1 presents");

    let chain2 = pem_blocks(&w.cert_chain_pem("mx2.signed.test").expect("mx2's chain"));
    assert_eq!(chain2.len(), 2, "leaf and intermediate are served");
    assert_eq!(
        tlsa(&w, "mx2.signed.test"),
        vec![format!("2 1 1 {}", digest(&chain2[1], true, "-sha256"))],
        "DANE-TA from the last certificate served"
    );

    let chain3 = pem_blocks(&w.cert_chain_pem("mx3.signed.test").expect("mx3's chain"));
    let right = digest(&chain3[0], true, "-sha256");
    let [published] = tlsa(&w, "mx3.signed.test").try_into().expect("one record");
    let data = published.trim_start_matches("3 1 1 ");
    assert_eq!(data.len(), right.len());
    let inverted: String = (0..right.len())
        .step_by(2)
        .map(|i| {
            let b = u8::from_str_radix(&right[i..i + 2], 16).expect("hex");
            format!("{:02x}", !b)
        })
        .collect();
    assert_eq!(data, inverted, "mismatch publishes the inverted digest");

    // A new certificate keeps the published records, as a forgotten TLSA update does.
    let before = tlsa(&w, "mx1.signed.test");
    w.set_cert("mx1.signed.test", CertSpec::from(CertKind::UntrustedCa))
        .expect("set-cert");
    let chain1b = pem_blocks(&w.cert_chain_pem("mx1.signed.test").expect("mx1's chain"));
    assert_ne!(chain1b[0], chain1[0], "a fresh certificate");
    assert_eq!(tlsa(&w, "mx1.signed.test"), before);
}
