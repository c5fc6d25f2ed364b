//! `mtasts report parse` through the real binary, on the TLS-RPT corpus of mtasts-core:
//! exit codes, human output, and `--json` output for the RFC 8460 example.

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn corpus(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../mtasts-core/tests/data/tlsrpt")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn mtasts(args: &[&str]) -> Output {
    mtasts_test_support::run(env!("CARGO_BIN_EXE_mtasts"), args, &[], None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn rfc_example_in_erratum_form_prints_the_rfc_content_as_json() {
    for file in [
        "stalwartlabs__mail-auth/rpt01.json",
        "phi-ag__mta-sts-exporter/rfc-errata-6241.json",
    ] {
        let path = corpus(file);
        let o = mtasts(&["report", "parse", "--json", &path]);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        mtasts_test_support::schema::assert_valid("mtasts-report-parse/1", &o.stdout);
        let doc: Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
        let reports = doc["reports"].as_array().expect("reports array");
        assert_eq!(reports.len(), 1);
        let input: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(reports[0]["report"], input, "{file}");
        assert_eq!(reports[0]["file"], path.as_str());
        assert_eq!(reports[0]["source"]["kind"], "json");
    }
}

#[test]
fn every_corpus_file_parses_with_exit_zero() {
    let tsv = std::fs::read_to_string(corpus("expected.tsv")).expect("expected.tsv");
    let files: Vec<String> = tsv
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(corpus)
        .collect();
    assert!(files.len() >= 40);
    let mut args = vec!["report", "parse"];
    args.extend(files.iter().map(String::as_str));
    let o = mtasts(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("  organization: "))
            .count(),
        files.len(),
        "{text}"
    );
}

#[test]
fn email_report_is_summarised_with_its_headers_and_findings() {
    let o = mtasts(&["report", "parse", &corpus("mjl-__mox/microsoft.eml")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("organization: Microsoft Corporation"),
        "{text}"
    );
    assert!(text.contains("TLS-Report-Domain test.xmox.nl"), "{text}");
    assert!(
        text.contains("date range:   2023-01-10T00:00:00Z to 2023-01-10T23:59:59Z"),
        "{text}"
    );
    // Datetimes without a zone: a warning with its field, code, RFC section and a hint.
    let warning = text
        .lines()
        .find(|l| l.contains("tlsrpt.report.datetime-without-zone"))
        .unwrap_or_else(|| panic!("no zone warning in:\n{text}"));
    assert!(
        warning
            .trim_start()
            .starts_with("warning: field date-range.start-datetime: "),
        "{warning}"
    );
    assert!(warning.ends_with("RFC 8460 §4.1]"), "{warning}");
    assert!(text.contains("hint: "), "{text}");
}

#[test]
fn gzip_report_on_stdin() {
    let gz = std::fs::read(corpus("marcbradshaw__mail-tls-rpt/report.json.gz")).expect("read");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["report", "parse", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&gz)
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0));
    mtasts_test_support::schema::assert_valid("mtasts-report-parse/1", &o.stdout);
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(doc["reports"][0]["file"], "<stdin>");
    assert_eq!(doc["reports"][0]["source"]["kind"], "gzip");
    assert_eq!(
        doc["reports"][0]["report"]["policies"][0]["summary"]["total-successful-session-count"],
        343
    );
}

#[test]
fn missing_file_exits_two_and_names_the_file() {
    let o = mtasts(&["report", "parse", "/nonexistent/tlsrpt.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/tlsrpt.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_file_that_is_not_a_report_exits_one() {
    let o = mtasts(&["report", "parse", &corpus("SOURCES.md")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("SOURCES.md: not a report"), "{err}");
}

#[test]
fn one_bad_file_among_good_ones_sets_the_exit_code_but_the_rest_is_printed() {
    let good = corpus("domainaware__parsedmarc/mail.ru.json");
    let o = mtasts(&["report", "parse", "--json", &good, "/nonexistent/x.json"]);
    assert_eq!(o.status.code(), Some(2));
    mtasts_test_support::schema::assert_valid("mtasts-report-parse/1", &o.stdout);
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("json");
    let reports = doc["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 2);
    let codes: Vec<&str> = reports[0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"tlsrpt.report.summary-mismatch"),
        "{codes:?}"
    );
    assert!(reports[1]["error"].is_string());
}

/// Regression (issue 13): 65 KB of gzip holding `"x": [0,0,…]` made `report parse` take
/// 4.8 GB (7.1 GB with `--json`). Under a 1 GiB address-space limit it must finish with a
/// clear refusal, not abort on an allocation failure; and the hostile text is not "not a
/// report: not a report:".
#[test]
fn a_hostile_unknown_member_is_refused_within_bounded_memory() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bomb.json.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(b"{\"organization-name\": \"x\", \"x\": [0")
        .expect("gzip");
    for _ in 0..3_000_000 {
        gz.write_all(b",0,0,0,0,0,0,0,0,0,0").expect("gzip");
    }
    gz.write_all(b"], \"policies\": []}").expect("gzip");
    std::fs::write(&path, gz.finish().expect("gzip")).expect("write");
    for json in [false, true] {
        let mut args = vec![
            "-c".to_owned(),
            "ulimit -v 1048576 && exec \"$0\" \"$@\"".to_owned(),
            env!("CARGO_BIN_EXE_mtasts").to_owned(),
            "report".to_owned(),
            "parse".to_owned(),
        ];
        if json {
            args.push("--json".to_owned());
        }
        args.push(path.display().to_string());
        let o = std::process::Command::new("sh")
            .args(&args)
            .output()
            .expect("run sh");
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(1), "json={json}: {all}");
        assert!(
            all.contains("tlsrpt.report.too-many-values")
                && !all.contains("not a report: not a report"),
            "json={json}: {all}"
        );
        if json {
            mtasts_test_support::schema::assert_valid("mtasts-report-parse/1", &o.stdout);
        }
    }
}
