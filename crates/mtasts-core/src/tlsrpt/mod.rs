//! RFC 8460 SMTP TLS Reporting: the `_smtp._tls` TXT record (§3) and aggregate reports
//! (§4), their delivery forms (§5: file names, gzip, e-mail).

pub mod dkim;
pub mod filename;
pub mod payload;
pub mod readiness;
pub mod record;
pub mod report;
pub mod result;
