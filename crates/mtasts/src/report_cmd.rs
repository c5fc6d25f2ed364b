//! `mtasts report parse <FILE>...`: read TLS-RPT reports (JSON, gzip or e-mail, told apart by
//! content) and summarise them, or print them as normalised JSON.

use crate::{EXIT_FINDINGS, EXIT_OK, EXIT_TROUBLE};
use mtasts_core::text::escape;
use mtasts_core::tlsrpt::report::ReportLimits;
use mtasts_tlsrpt_receive::read::{Outcome, display_name, process};
use mtasts_tlsrpt_receive::render::{entry_json, render_text};
use serde_json::json;
use std::io::{self, Write};
use std::path::PathBuf;

/// The limits of reading a report, as options (defaults: [`ReportLimits::DEFAULT`]).
#[derive(clap::Args, Clone, Copy, Debug)]
pub(crate) struct LimitArgs {
    /// Largest input accepted (JSON, gzip or e-mail), in bytes
    #[arg(long, value_name = "BYTES", default_value_t = ReportLimits::DEFAULT.max_input_bytes)]
    pub max_input_bytes: usize,
    /// Largest report JSON, in bytes; gzip is stopped while inflating past it
    #[arg(long, value_name = "BYTES", default_value_t = ReportLimits::DEFAULT.max_decompressed_bytes)]
    pub max_decompressed_bytes: usize,
    /// Most policies in one report
    #[arg(long, value_name = "N", default_value_t = ReportLimits::DEFAULT.max_policies)]
    pub max_policies: usize,
    /// Most failure details in one report
    #[arg(long, value_name = "N", default_value_t = ReportLimits::DEFAULT.max_failure_details)]
    pub max_failure_details: usize,
    /// Most JSON values in one report (bounds the memory a report can take)
    #[arg(long, value_name = "N", default_value_t = ReportLimits::DEFAULT.max_json_values)]
    pub max_json_values: usize,
}

impl LimitArgs {
    pub(crate) fn limits(&self) -> ReportLimits {
        ReportLimits {
            max_input_bytes: self.max_input_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_policies: self.max_policies,
            max_failure_details: self.max_failure_details,
            max_json_values: self.max_json_values,
        }
    }
}

/// `mtasts report parse <FILE>... [--json]`: 0 when every file is a report without
/// error-level findings, 1 when some report has error-level findings or a file is not a report,
/// 2 when a file cannot be read.
pub(crate) fn parse_reports(
    paths: &[PathBuf],
    json: bool,
    limits: &ReportLimits,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut code = EXIT_OK;
    let mut docs = Vec::new();
    let mut rendered = 0usize;
    let mut result: io::Result<()> = Ok(());
    let mut totals = Totals::default();
    for path in paths {
        let name = display_name(path);
        let outcome = process(path, limits);
        totals.add(&outcome);
        let this = match &outcome {
            Outcome::Parsed(r) if r.has_errors() => EXIT_FINDINGS,
            Outcome::Parsed(_) => EXIT_OK,
            Outcome::NotAReport(_) => EXIT_FINDINGS,
            Outcome::Io(_) => EXIT_TROUBLE,
        };
        code = code.max(this);
        match &outcome {
            Outcome::Io(e) => {
                let _ = writeln!(err, "mtasts: reading {}: {}", escape(&name), escape(e));
            }
            Outcome::NotAReport(f) => {
                let _ = writeln!(
                    err,
                    "mtasts: {}: not a report: {} [{}, {}]",
                    escape(&name),
                    escape(&f.message),
                    f.code,
                    f.rfc
                );
                if !json && !f.hint.is_empty() {
                    let _ = writeln!(err, "    hint: {}", escape(&f.hint));
                }
            }
            Outcome::Parsed(_) => {}
        }
        if json {
            docs.push(entry_json(&name, &outcome));
        } else if let Outcome::Parsed(r) = &outcome
            && result.is_ok()
        {
            result = render_text(out, &name, r, rendered == 0);
            rendered += 1;
        }
    }
    if !json && paths.len() > 1 && result.is_ok() {
        result = totals.write(out);
    }
    if json && result.is_ok() {
        let doc = mtasts_core::json::document("mtasts-report-parse/1", json!({ "reports": docs }));
        result = serde_json::to_writer_pretty(&mut *out, &doc)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out));
    }
    match result {
        Ok(()) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            let _ = writeln!(err, "mtasts: writing output: {e}");
            EXIT_TROUBLE
        }
    }
}

/// Counts over every file of one `report parse`, printed at the end when there is more than
/// one file.
#[derive(Default)]
struct Totals {
    files: usize,
    reports: usize,
    with_errors: usize,
    not_reports: usize,
    unreadable: usize,
    successful: u64,
    failed: u64,
}

impl Totals {
    fn add(&mut self, o: &Outcome) {
        self.files += 1;
        match o {
            Outcome::Parsed(r) => {
                self.reports += 1;
                self.with_errors += usize::from(r.has_errors());
                for p in &r.report.policies {
                    if let Some(s) = &p.summary {
                        self.successful = self.successful.saturating_add(s.successful());
                        self.failed = self.failed.saturating_add(s.failed());
                    }
                }
            }
            Outcome::NotAReport(_) => self.not_reports += 1,
            Outcome::Io(_) => self.unreadable += 1,
        }
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(
            out,
            "\ntotal: {}: {} ({} with errors), {}, {}; sessions: {} successful, {} failed",
            plural(self.files, "file", "files"),
            plural(self.reports, "report", "reports"),
            self.with_errors,
            plural(self.not_reports, "not a report", "not reports"),
            plural(self.unreadable, "unreadable", "unreadable"),
            self.successful,
            self.failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::PathBuf;

    fn corpus(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../mtasts-core/tests/data/tlsrpt")
            .join(name)
    }

    fn run(paths: &[PathBuf], json: bool) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = parse_reports(paths, json, &ReportLimits::DEFAULT, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn clean_report_exits_zero_with_a_summary() {
        let (code, out, err) = run(&[corpus("stalwartlabs__mail-auth/rpt01.json")], false);
        assert_eq!(code, EXIT_OK, "{out}{err}");
        assert!(
            out.contains("organization: Company-X <sts-reporting@company-x.example>"),
            "{out}"
        );
        assert!(
            out.contains("date range:   2016-04-01T00:00:00Z to 2016-04-01T23:59:59Z"),
            "{out}"
        );
        assert!(
            out.contains("policy 1: sts company-y.example, mode testing"),
            "{out}"
        );
        assert!(
            out.contains("sessions: 5326 successful, 303 failed"),
            "{out}"
        );
        assert!(out.contains("certificate-expired: 100"), "{out}");
        assert!(
            out.contains("mx2.mail.company-y.example [203.0.113.56]"),
            "{out}"
        );
        assert!(err.is_empty(), "{err}");
    }

    #[test]
    fn warnings_are_printed_with_code_rfc_and_hint() {
        let (code, out, _) = run(&[corpus("domainaware__parsedmarc/mail.ru.json")], false);
        assert_eq!(code, EXIT_OK, "{out}");
        let line = out
            .lines()
            .find(|l| l.contains("tlsrpt.report.summary-mismatch"))
            .unwrap_or_default();
        assert!(
            line.trim_start()
                .starts_with("warning: field policies[0].summary.total-failure-session-count: "),
            "{out}"
        );
        assert!(line.ends_with(", RFC 8460 §4.4]"), "{line}");
        assert!(out.contains("hint: "), "{out}");
    }

    #[test]
    fn missing_file_exits_two_and_names_it() {
        let (code, _, err) = run(&[PathBuf::from("/nonexistent/report.json")], false);
        assert_eq!(code, EXIT_TROUBLE);
        assert!(err.contains("/nonexistent/report.json"), "{err}");
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn many_files_end_with_totals() {
        let (code, out, err) = run(
            &[
                corpus("stalwartlabs__mail-auth/rpt01.json"),
                corpus("SOURCES.md"),
                corpus("no-such-file.json"),
            ],
            false,
        );
        assert_eq!(code, EXIT_TROUBLE, "{out}{err}");
        assert!(
            out.contains("total: 3 files: 1 report (0 with errors), 1 not a report, 1 unreadable; sessions: 5326 successful, 303 failed"),
            "{out}"
        );
        // One file: no totals line.
        let (_, out, _) = run(&[corpus("stalwartlabs__mail-auth/rpt01.json")], false);
        assert!(!out.contains("total:"), "{out}");
    }

    #[test]
    fn not_a_report_exits_one() {
        let (code, _, err) = run(&[corpus("SOURCES.md")], false);
        assert_eq!(code, EXIT_FINDINGS);
        assert!(err.contains("SOURCES.md: not a report"), "{err}");
    }

    #[test]
    fn json_output_is_one_document() {
        let paths = [
            corpus("stalwartlabs__mail-auth/rpt02.eml"),
            PathBuf::from("/nonexistent/x.json"),
        ];
        let (code, out, _) = run(&paths, true);
        assert_eq!(code, EXIT_TROUBLE);
        let doc: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let reports = doc["reports"].as_array().cloned().unwrap_or_default();
        assert_eq!(reports.len(), 2, "{out}");
        assert_eq!(reports[0]["source"]["kind"], "email");
        assert_eq!(reports[0]["source"]["tls-report-domain"], "example.net");
        assert_eq!(
            reports[0]["report"]["report-id"],
            "2020-01-01T00:00:00Z_example.com"
        );
        assert!(
            reports[0]["findings"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        );
        assert!(reports[1]["error"].is_string(), "{out}");
    }
}
