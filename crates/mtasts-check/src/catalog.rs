//! Every finding id the checker can report, with its default severity, a one-line
//! explanation, the fix and the rule's section. `docs/checks.md` is generated from this table
//! (`mtasts check --list-findings`), and a test keeps the two equal.

use mtasts_core::Severity;

/// One kind of finding.
#[derive(Clone, Copy, Debug)]
pub struct Check {
    /// The stable id.
    pub id: &'static str,
    /// Its usual severity. MX-side problems are errors once a policy is published and
    /// warnings before; the report always carries the severity actually used.
    pub severity: Severity,
    /// What it means, in one line.
    pub explanation: &'static str,
    /// How to fix it, in one line.
    pub fix: &'static str,
    /// The rule's source.
    pub rule: &'static str,
}

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;
const I: Severity = Severity::Info;

macro_rules! checks {
    ($( $id:literal, $sev:expr, $rule:literal, $expl:literal, $fix:literal; )*) => {
        /// The catalogue, grouped by what is checked.
        pub const CATALOG: &[Check] = &[
            $( Check { id: $id, severity: $sev, rule: $rule, explanation: $expl, fix: $fix }, )*
        ];
    };
}

checks! {
    // ----- _mta-sts TXT record
    "sts.record.none", W, "RFC 8461 §3.1", "No TXT record at _mta-sts.<domain> begins with v=STSv1: the domain has no MTA-STS.", "Publish a policy (mtasts init) and then \"v=STSv1; id=...;\" at _mta-sts.<domain>.";
    "sts.record.lookup-failed", E, "RFC 8461 §3.1", "The _mta-sts TXT lookup failed (SERVFAIL, timeout, refused): senders cannot discover a policy.", "Make the authoritative servers answer for _mta-sts.<domain> (check delegation, DNSSEC and CNAME loops).";
    "sts.record.multiple", E, "RFC 8461 §3.1", "More than one TXT record begins with v=STSv1: senders treat the domain as having no policy.", "Delete all but one v=STSv1 record.";
    "sts.record.missing-id", E, "RFC 8461 §3.1", "The record has no id field.", "Add id=<1-32 letters or digits>, e.g. a timestamp.";
    "sts.record.invalid-id", E, "RFC 8461 §3.1", "The id is not 1 to 32 letters and digits.", "Use 1-32 characters from A-Z, a-z, 0-9, e.g. 20250101000000.";
    "sts.record.duplicate-id", E, "RFC 8461 §3.1", "The id field appears twice.", "Keep one id field.";
    "sts.record.missing-delimiter", E, "RFC 8461 §3.1", "Fields are not separated by \";\".", "Separate fields with \";\".";
    "sts.record.invalid-field-name", E, "RFC 8461 §3.1", "A field name is not valid.", "Field names are letters, digits, \"_\", \"-\" and \".\".";
    "sts.record.invalid-field-value", E, "RFC 8461 §3.1", "A field value holds characters the grammar forbids.", "Remove spaces, \";\" and \"=\" from field values.";
    "sts.record.field-without-value", E, "RFC 8461 §3.1", "A field has no \"=\" and value.", "Write fields as name=value.";
    "sts.record.empty-field", W, "RFC 8461 §3.1", "An empty field (\";;\").", "Remove the extra \";\".";
    "sts.record.not-ascii", E, "RFC 8461 §3.1", "The record holds non-ASCII bytes.", "Use ASCII only.";
    "sts.record.not-sts", E, "RFC 8461 §3.1", "The record does not begin with v=STSv1.", "Begin the record with \"v=STSv1;\".";
    "sts.record.unknown-field", I, "RFC 8461 §3.1", "An extension field senders ignore.", "Remove it unless you know who reads it.";
    // ----- policy fetch (RFC 8461 §3.3)
    "sts.fetch.host-not-found", E, "RFC 8461 §3.3", "The policy host mta-sts.<domain> does not resolve: senders deliver without MTA-STS.", "Publish A/AAAA (or a CNAME to your provider) for mta-sts.<domain>.";
    "sts.fetch.connect-failed", E, "RFC 8461 §3.3", "No connection to the policy host on port 443.", "Serve HTTPS on port 443 of mta-sts.<domain> from every address it has.";
    "sts.fetch.timeout", E, "RFC 8461 §3.3", "The policy host did not answer (or finish the body) in time.", "Serve the small policy file directly and quickly; check firewalls and the web server.";
    "sts.fetch.tls-failed", E, "RFC 8461 §3.3", "The TLS handshake with the policy host failed (reset, alert).", "Serve TLS 1.2 or 1.3 with SNI for mta-sts.<domain>.";
    "sts.fetch.tls-version", E, "RFC 8461 §7.2", "The policy host speaks only TLS older than 1.2.", "Enable TLS 1.2 and 1.3 on the policy host.";
    "sts.fetch.cert-expired", E, "RFC 8461 §3.3", "The policy host's certificate has expired.", "Renew the certificate (and automate renewal with an ACME client).";
    "sts.fetch.cert-expiring-soon", W, "RFC 8461 §3.3", "The policy host's certificate expires in under 21 days.", "Renew it now; check that automatic renewal works.";
    "sts.fetch.cert-not-yet-valid", E, "RFC 8461 §3.3", "The policy host's certificate is not valid yet.", "Check the server clock and the certificate's dates.";
    "sts.fetch.cert-name-mismatch", E, "RFC 8461 §3.3", "The policy host's certificate does not name mta-sts.<domain>.", "Get a certificate whose subjectAltName includes mta-sts.<domain>.";
    "sts.fetch.cert-self-signed", E, "RFC 8461 §3.3", "The policy host's certificate is self-signed.", "Use a certificate from a public CA (e.g. Let's Encrypt).";
    "sts.fetch.cert-untrusted-ca", E, "RFC 8461 §3.3", "The policy host's certificate chains to a CA senders do not trust.", "Use a certificate from a public CA.";
    "sts.fetch.cert-chain-incomplete", E, "RFC 8461 §3.3", "The policy host sends only its leaf certificate; the intermediate is missing.", "Serve the full chain (fullchain.pem), not only the leaf.";
    "sts.fetch.cert-invalid", E, "RFC 8461 §3.3", "The policy host's certificate fails validation for another reason.", "Serve a valid certificate for mta-sts.<domain> from a public CA.";
    "sts.fetch.no-response", E, "RFC 8461 §3.3", "The policy host closed the connection without an HTTP response.", "Check the web server and anything in front of it (proxies, CDNs).";
    "sts.fetch.redirect", E, "RFC 8461 §3.3", "The policy URL answers with a redirect, which senders must not follow.", "Serve the policy directly at https://mta-sts.<domain>/.well-known/mta-sts.txt with status 200.";
    "sts.fetch.status", E, "RFC 8461 §3.3", "The policy URL answers with a status other than 200.", "Publish the file at /.well-known/mta-sts.txt and make it answer 200.";
    "sts.fetch.media-type", E, "RFC 8461 §3.2", "The policy is not served as text/plain.", "Serve it with \"Content-Type: text/plain\" (charset utf-8 or none).";
    "sts.fetch.body-too-large", E, "RFC 8461 §3.3", "The policy is larger than the 64 KiB senders read.", "Serve only the policy: a few hundred bytes.";
    "sts.fetch.incomplete-body", E, "RFC 8461 §3.3", "The connection closed before the body was complete.", "Check the web server and anything in front of it (proxies, CDNs).";
    // ----- the policy (RFC 8461 §3.2)
    "sts.policy.missing-version", E, "RFC 8461 §3.2", "The policy has no version line.", "Begin the file with \"version: STSv1\".";
    "sts.policy.invalid-version", E, "RFC 8461 §3.2", "The version is not STSv1.", "Write \"version: STSv1\".";
    "sts.policy.missing-mode", E, "RFC 8461 §3.2", "The policy has no mode line.", "Add \"mode: testing\" (or enforce, or none).";
    "sts.policy.invalid-mode", E, "RFC 8461 §3.2", "The mode is not enforce, testing or none (values are case-sensitive).", "Write mode in lower case: enforce, testing or none.";
    "sts.policy.missing-max-age", E, "RFC 8461 §3.2", "The policy has no max_age line.", "Add \"max_age: 604800\" (one week) or more.";
    "sts.policy.invalid-max-age", E, "RFC 8461 §3.2", "max_age is not a plain number of seconds.", "Write max_age as digits only.";
    "sts.policy.max-age-too-large", E, "RFC 8461 §3.2", "max_age is over 31557600 (one year).", "Use at most 31557600.";
    "sts.policy.missing-mx", E, "RFC 8461 §3.2", "A testing or enforce policy lists no mx.", "Add one \"mx:\" line per MX host (or a *. pattern).";
    "sts.policy.invalid-mx", E, "RFC 8461 §3.2", "An mx value is not a host name or *.pattern.", "Write host names (A-labels) or \"*.\" followed by a parent domain.";
    "sts.policy.duplicate-key", E, "RFC 8461 §3.2", "version, mode or max_age appears twice.", "Keep one of each.";
    "sts.policy.missing-colon", E, "RFC 8461 §3.2", "A line has no \":\".", "Write lines as \"key: value\".";
    "sts.policy.invalid-key", E, "RFC 8461 §3.2", "A key holds characters the grammar forbids.", "Keys are letters, digits, \"_\", \"-\" and \".\".";
    "sts.policy.whitespace-around-key", E, "RFC 8461 §3.2", "Whitespace before a key or its colon.", "Write \"key: value\" with nothing before the key or the colon.";
    "sts.policy.control-character", E, "RFC 8461 §3.2", "A control character in the policy.", "Save the file as plain text.";
    "sts.policy.unknown-key", W, "RFC 8461 §3.2", "A key senders ignore (often a typo of mx or max_age).", "Check its spelling; remove it if unneeded.";
    "sts.policy.duplicate-mx", W, "RFC 8461 §3.2", "The same mx value twice.", "Remove the duplicate.";
    "sts.policy.blank-line", W, "RFC 8461 §3.2", "A blank line inside the policy.", "Remove blank lines.";
    "sts.policy.mx-trailing-dot", W, "RFC 8461 §3.2", "An mx value ends with a dot.", "Remove the trailing dot.";
    "sts.policy.mx-not-a-label", W, "RFC 8461 §3.2", "An mx value is a U-label (converted).", "Write the A-label (xn--...).";
    "sts.policy.mx-wildcard-too-broad", W, "RFC 8461 §4.1", "A wildcard that covers a public suffix or a whole provider.", "List your own MX hosts.";
    "sts.policy.short-max-age", W, "RFC 8461 §10.2", "max_age under a day in testing or enforce: the cache protects little.", "Use 604800 (one week) or more once the deployment is clean.";
    // ----- MX coverage (RFC 8461 §4.1)
    "sts.coverage.mx-not-covered", E, "RFC 8461 §4.1", "An MX host matches no mx pattern: under enforce, senders refuse to deliver to it.", "Add the host (or a *. pattern of its parent) to the policy and change the id.";
    "sts.coverage.unused-pattern", W, "RFC 8461 §4.1", "An mx pattern matches no MX host: stale, a typo, or the MX record was changed.", "Remove it, or fix the MX record if it was hijacked or mistyped.";
    "sts.coverage.invalid-host", E, "RFC 8461 §4.1", "An MX host name is not a valid host name.", "Fix the MX record.";
    // ----- MX records
    "mx.null", I, "RFC 7505", "A null MX: the domain accepts no mail.", "Nothing to do if the domain sends no and receives no mail.";
    "mx.implicit", W, "RFC 5321 §5.1", "No MX record: the domain's own address is used (implicit MX).", "Publish an explicit MX record.";
    "mx.none", E, "RFC 5321 §5.1", "No MX record and no address: mail to the domain cannot be delivered.", "Publish an MX record.";
    "mx.nxdomain", E, "RFC 5321 §5.1", "The domain does not exist.", "Check the domain's delegation.";
    "mx.lookup-failed", E, "RFC 5321 §5.1", "The MX lookup failed (SERVFAIL, timeout).", "Make the authoritative servers answer MX queries.";
    "mx.host-not-found", E, "RFC 5321 §5.1", "An MX host name does not resolve (NXDOMAIN).", "Fix the MX record or publish the host's A/AAAA records.";
    "mx.host-no-address", E, "RFC 5321 §5.1", "An MX host has no A or AAAA record.", "Publish the host's addresses.";
    "mx.host-lookup-failed", E, "RFC 5321 §5.1", "An MX host's address lookup failed.", "Make the authoritative servers answer for the host.";
    "mx.cname", W, "RFC 2181 §10.3", "An MX host is an alias (CNAME); its certificate must still name the MX host itself.", "Point the MX record at the canonical host name.";
    // ----- SMTP and STARTTLS on each MX address
    "smtp.connect-failed", E, "RFC 5321", "No SMTP connection to an MX address on port 25.", "Open port 25 on every MX address.";
    "smtp.timeout", E, "RFC 5321 §4.5.3.2", "An MX address did not answer in time.", "Check the SMTP server and firewalls.";
    "smtp.greeting-slow", I, "RFC 5321 §4.5.3.2", "The 220 greeting took more than 2 s.", "Nothing required; fast greetings help senders with short timeouts.";
    "smtp.rejected", E, "RFC 5321", "The MX refused the session (greeting or EHLO).", "Let the server greet and answer EHLO from any client.";
    "smtp.starttls-missing", E, "RFC 8461 §4.2", "The MX does not offer STARTTLS (or an attacker stripped it).", "Enable STARTTLS on the MX.";
    "smtp.starttls-refused", E, "RFC 3207", "The MX offers STARTTLS but refuses it.", "Fix the server's TLS configuration (certificate and key).";
    "smtp.tls-failed", E, "RFC 8461 §4.2", "The TLS handshake with the MX failed.", "Fix the server's TLS configuration; offer TLS 1.2 and 1.3.";
    "smtp.tls-version", E, "RFC 8461 §7.2", "The MX speaks only TLS older than 1.2.", "Enable TLS 1.2 and 1.3.";
    "smtp.cert-expired", E, "RFC 8461 §4.2", "The MX certificate has expired.", "Renew it (and automate renewal).";
    "smtp.cert-expiring-soon", W, "RFC 8461 §4.2", "The MX certificate expires in under 21 days.", "Renew it now; check automatic renewal.";
    "smtp.cert-not-yet-valid", E, "RFC 8461 §4.2", "The MX certificate is not valid yet.", "Check the server clock and the certificate's dates.";
    "smtp.cert-name-mismatch", E, "RFC 8461 §4.2", "The MX certificate does not name the MX host.", "Get a certificate naming the host in the MX record (or a *. of its parent).";
    "smtp.cert-self-signed", E, "RFC 8461 §4.2", "The MX certificate is self-signed.", "Use a certificate from a public CA.";
    "smtp.cert-untrusted-ca", E, "RFC 8461 §4.2", "The MX certificate chains to a CA senders do not trust.", "Use a certificate from a public CA.";
    "smtp.cert-chain-incomplete", E, "RFC 8461 §4.2", "The MX sends only its leaf certificate; the intermediate is missing.", "Configure the full chain on the MX.";
    "smtp.cert-invalid", E, "RFC 8461 §4.2", "The MX certificate fails validation for another reason.", "Serve a valid certificate from a public CA.";
    "smtp.mail-rejected", E, "RFC 5321 §4.5.1", "The MX did not accept MAIL FROM:<> (the null sender of bounces and reports).", "Accept the null reverse-path; it must be accepted (RFC 5321 §4.5.5).";
    "smtp.rcpt-rejected", E, "RFC 5321 §4.5.1", "The MX did not accept RCPT TO:<postmaster@domain>.", "Accept mail for postmaster; it is required (RFC 5321 §4.5.1).";
    // ----- TLS-RPT
    "tlsrpt.record.none", W, "RFC 8460 §3", "No TLS-RPT record: nobody learns when senders fail to reach you over TLS.", "Publish \"v=TLSRPTv1; rua=mailto:tlsrpt@<domain>\" at _smtp._tls.<domain> before moving to enforce.";
    "tlsrpt.record.lookup-failed", W, "RFC 8460 §3", "The _smtp._tls TXT lookup failed.", "Make the authoritative servers answer for _smtp._tls.<domain>.";
    "tlsrpt.record.multiple", E, "RFC 8460 §3", "More than one TLS-RPT record: senders send no reports.", "Keep one record; list several rua URIs in it, comma-separated.";
    "tlsrpt.record.missing-rua", E, "RFC 8460 §3", "The TLS-RPT record has no rua field.", "Add rua=mailto:... or rua=https://...";
    "tlsrpt.record.duplicate-rua", E, "RFC 8460 §3", "The rua field appears twice.", "Put all URIs in one rua field, comma-separated.";
    "tlsrpt.record.invalid-uri", E, "RFC 8460 §3", "A rua URI is malformed.", "Write mailto:address or https://host/path.";
    "tlsrpt.record.unsupported-scheme", W, "RFC 8460 §3", "A rua URI has a scheme other than mailto or https.", "Use mailto: or https:.";
    "tlsrpt.record.no-supported-uri", E, "RFC 8460 §3", "No rua URI is mailto or https: no report can be sent.", "Add a mailto: or https: URI.";
    "tlsrpt.record.missing-delimiter", E, "RFC 8460 §3", "Fields are not separated by \";\".", "Separate fields with \";\".";
    "tlsrpt.record.invalid-field-name", E, "RFC 8460 §3", "A field name is not valid.", "Fix the field name.";
    "tlsrpt.record.invalid-field-value", E, "RFC 8460 §3", "A field value holds forbidden characters.", "Fix the field value.";
    "tlsrpt.record.field-without-value", E, "RFC 8460 §3", "A field has no value.", "Write fields as name=value.";
    "tlsrpt.record.empty-field", W, "RFC 8460 §3", "An empty field (\";;\").", "Remove the extra \";\".";
    "tlsrpt.record.not-ascii", E, "RFC 8460 §3", "The record holds non-ASCII bytes.", "Use ASCII only.";
    "tlsrpt.record.not-tlsrpt", E, "RFC 8460 §3", "The record does not begin with v=TLSRPTv1.", "Begin it with \"v=TLSRPTv1;\".";
    "tlsrpt.record.unknown-field", I, "RFC 8460 §3", "An extension field.", "Remove it unless you know who reads it.";
    "tlsrpt.rua.no-mx", W, "RFC 8460 §5.3", "The domain of a mailto: rua cannot receive mail: reports are lost.", "Use an address whose domain has working MX records.";
    // ----- DNS, DNSSEC and DANE (informational)
    "dns.slow", I, "RFC 8461 §3.1", "A DNS answer took more than a second.", "Check the authoritative servers' latency.";
    "dnssec.signed", I, "RFC 8461 §2", "The MX answer carried the AD flag: the zone is DNSSEC-signed and validated.", "Consider DANE (RFC 7672) beside MTA-STS.";
    "dane.tlsa", I, "RFC 7672", "An MX host publishes TLSA records: DANE-capable senders use them instead of MTA-STS.", "Keep TLSA records in step with certificate rollovers.";
}

/// The catalogue entry of `id`.
pub fn lookup(id: &str) -> Option<&'static Check> {
    CATALOG.iter().find(|c| c.id == id)
}

/// `docs/checks.md`: every finding, as Markdown.
pub fn markdown() -> String {
    let mut s = String::from(
        "# The checks of `mtasts check`\n\n\
         The finding tables below are generated by `mtasts check --list-findings` from \
         `crates/mtasts-check/src/catalog.rs`; a test keeps them equal to it.\n\n\
         Every finding has a stable id, a severity, a one-line explanation and a fix. MX-side \
         findings (`smtp.*`, `mx.*`) are errors once the domain publishes an MTA-STS record and \
         warnings before. The human report and the JSON carry the severity actually used.\n\n\
         Exit status of `mtasts check` (worst finding over all domains): 0 info or nothing, \
         1 an error, 3 warnings but no error; 2 means the check itself could not run (bad \
         arguments, unreadable input, no trust roots), as for every `mtasts` command.\n\n",
    );
    let mut group = "";
    for c in CATALOG {
        let g = c.id.rsplit_once('.').map_or(c.id, |(g, _)| g);
        if g != group {
            group = g;
            s.push_str(&format!(
                "\n## `{g}.*`\n\n| id | severity | meaning | fix | rule |\n|---|---|---|---|---|\n"
            ));
        }
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            c.id,
            c.severity,
            c.explanation.replace('|', "\\|"),
            c.fix.replace('|', "\\|"),
            c.rule
        ));
    }
    s
}
