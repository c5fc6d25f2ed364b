//! `mtasts report ingest|summary|quarantine|readiness|prune` end to end: the real binary, an
//! SQLite store in a temporary directory, a lab world answering the DKIM key lookups (so no
//! test waits on the system's resolvers), and the report corpus.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mtasts_lab::{World, WorldOptions};
use mtasts_test_support::{output_text, report_corpus, scenario};
use serde_json::Value;

fn mtasts(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(args)
        .env("MTASTS_DB", db)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run mtasts")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The JSON document `o` printed, validated against the schema file it names
/// (`docs/json.md`): every `--json` output of these tests is checked.
fn json(o: &Output) -> Value {
    let v: Value =
        serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", output_text(o)));
    let name = v["schema"]
        .as_str()
        .unwrap_or_else(|| panic!("no schema name: {v}"));
    mtasts_test_support::schema::assert_valid(name, &o.stdout);
    v
}

fn lab() -> World {
    World::start(&scenario("minimal.toml"), WorldOptions::default()).expect("lab")
}

/// The sessions `expected.tsv` gives, per distinct report (organisation, report id, as
/// `report parse` reads them): the corpus holds some reports twice (the same report as JSON
/// and inside an e-mail, or copied by two projects).
fn expected_sessions() -> (u64, u64, usize) {
    let tsv = std::fs::read_to_string(report_corpus().join("expected.tsv")).expect("tsv");
    let mut rows = Vec::new();
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let n = |i: usize| cols.get(i).and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
        rows.push((cols[0].to_owned(), n(2), n(3)));
    }
    let files: Vec<String> = rows
        .iter()
        .map(|(f, _, _)| report_corpus().join(f).display().to_string())
        .collect();
    let mut args = vec!["report", "parse", "--json"];
    args.extend(files.iter().map(String::as_str));
    let o = mtasts(Path::new("/nonexistent/unused.db"), &args);
    let doc = json(&o);
    let parsed = doc["reports"].as_array().expect("reports");
    assert_eq!(parsed.len(), rows.len());
    let mut seen = BTreeMap::new();
    for ((file, ok, failed), p) in rows.iter().zip(parsed) {
        let r = &p["report"];
        let key = (
            r["organization-name"].as_str().unwrap_or("").to_owned(),
            r["report-id"].as_str().unwrap_or(file).to_owned(),
        );
        seen.insert(key, (*ok, *failed));
    }
    let (s, f) = seen.values().fold((0, 0), |(a, b), (s, f)| (a + s, b + f));
    (s, f, seen.len())
}

#[test]
fn the_corpus_ingests_once_and_its_summary_gives_the_expected_sessions() {
    let w = lab();
    let dns = w.dns_addr().to_string();
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("reports.db");
    let corpus = report_corpus().display().to_string();
    let o = mtasts(&db, &["report", "ingest", "--dns", &dns, "--json", &corpus]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let first = json(&o);
    let read = first["read"].as_u64().expect("read");
    let (stored, dups, quar) = (
        first["stored"].as_u64().expect("stored"),
        first["duplicates"].as_u64().expect("duplicates"),
        first["quarantined"].as_u64().expect("quarantined"),
    );
    assert_eq!(stored + dups + quar, read, "{first}");
    let (_, _, distinct) = expected_sessions();
    // Each distinct report is stored once: as trusted, or (a mailed report that cannot be
    // authenticated) in quarantine; every input is one of the three.
    assert!(
        stored <= distinct as u64 && stored + quar >= distinct as u64,
        "{first}"
    );
    // The e-mails of the corpus are real reporters' mail: their signatures cannot verify
    // here (expired, or keys not in the lab), so they wait in quarantine and count only
    // with --include-unverified.
    let o = mtasts(
        &db,
        &["report", "summary", "--json", "--include-unverified"],
    );
    let total = &json(&o)["total"];
    let (s, f, _) = expected_sessions();
    assert_eq!(
        (total["successful"].as_u64(), total["failed"].as_u64()),
        (Some(s), Some(f)),
        "{total}"
    );
    let o = mtasts(&db, &["report", "quarantine", "list", "--json"]);
    let q = json(&o);
    let entries = q["quarantine"].as_array().expect("list");
    assert_eq!(entries.len() as u64, quar);
    assert!(
        entries.iter().all(|e| e["reason"]["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("dkim."))),
        "only mailed reports are in quarantine: {q}"
    );

    let first_entry = entries[0]["id"].as_i64().expect("id").to_string();
    let o = mtasts(
        &db,
        &["report", "quarantine", "show", &first_entry, "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert_eq!(json(&o)["entry"], entries[0]);
    let o = mtasts(
        &db,
        &[
            "report",
            "quarantine",
            "retry",
            &first_entry,
            "--dns",
            &dns,
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let retried = json(&o);
    assert_eq!(retried["still"], 1, "{retried}");

    // Everything again: nothing new.
    let o = mtasts(&db, &["report", "ingest", "--dns", &dns, &corpus]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let line = stdout(&o);
    assert!(
        line.starts_with(&format!("{read} read, 0 stored, ")),
        "{line}"
    );
    w.shutdown();
}

/// One input at a time, the default pipeline (many inputs at once, committed together) and a
/// byte budget smaller than any input (each goes through alone) store the same reports.
#[test]
fn ingest_stores_the_same_whatever_goes_through_at_once() {
    let w = lab();
    let dns = w.dns_addr().to_string();
    let dir = tempfile::tempdir().expect("dir");
    let corpus = report_corpus().display().to_string();
    let mut seen = Vec::new();
    for (name, extra) in [
        ("one", &["--in-flight", "1"][..]),
        ("default", &[][..]),
        (
            "bytes",
            &["--in-flight", "1024", "--in-flight-bytes", "1"][..],
        ),
    ] {
        let db = dir.path().join(format!("{name}.db"));
        let mut args = vec!["report", "ingest", "--dns", &dns, "--json"];
        args.extend_from_slice(extra);
        args.push(&corpus);
        let o = mtasts(&db, &args);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", output_text(&o));
        let mut counts = json(&o);
        counts["store"] = Value::Null;
        let o = mtasts(
            &db,
            &["report", "summary", "--json", "--include-unverified"],
        );
        assert_eq!(o.status.code(), Some(0), "{name}: {}", output_text(&o));
        seen.push((name, counts, json(&o)));
    }
    assert!(
        seen[0].1["stored"].as_u64().is_some_and(|n| n > 0),
        "{:?}",
        seen[0]
    );
    for (name, counts, summary) in &seen[1..] {
        assert_eq!(counts, &seen[0].1, "{name}");
        assert_eq!(summary, &seen[0].2, "{name}");
    }
    let o = mtasts(
        &dir.path().join("x.db"),
        &["report", "ingest", "--in-flight", "0", &corpus],
    );
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("--in-flight"),
        "{}",
        output_text(&o)
    );
    w.shutdown();
}

fn report_json(org: &str, id: &str, day: &str, domain: &str, ok: u64, failures: &str) -> String {
    let failed: u64 = if failures.is_empty() {
        0
    } else {
        failures
            .split("\"failed-session-count\":")
            .skip(1)
            .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .filter_map(|n| n.parse::<u64>().ok())
            .sum()
    };
    format!(
        r#"{{"organization-name":"{org}","date-range":{{"start-datetime":"{day}T00:00:00Z","end-datetime":"{day}T23:59:59Z"}},"contact-info":"tlsrpt@{org}","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.{domain}","mx: mx2.{domain}","max_age: 86400"],"policy-domain":"{domain}"}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{failed}}}{failures}}}]}}"#
    )
}

fn write_history(dir: &Path, days: u32, mismatch_on_mx2: bool) -> PathBuf {
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).expect("dir");
    for d in 0..days {
        let day = format!("2026-11-{:02}", 30 - d);
        for org in ["google.com", "microsoft.com", "yahoo.com"] {
            let failures = if mismatch_on_mx2 && org == "google.com" {
                r#","failure-details":[{"result-type":"certificate-host-mismatch","sending-mta-ip":"209.85.220.41","receiving-mx-hostname":"mx2.customer.test","failed-session-count":40}]"#
            } else {
                ""
            };
            let text = report_json(
                org,
                &format!("{org}-{day}"),
                &day,
                "customer.test",
                100,
                failures,
            );
            std::fs::write(reports.join(format!("{org}-{day}.json")), text).expect("write");
        }
    }
    reports
}

fn readiness(db: &Path) -> (Option<i32>, Value) {
    let o = mtasts(
        db,
        &[
            "report",
            "readiness",
            "customer.test",
            "--offline",
            "--today",
            "2026-11-30",
            "--json",
        ],
    );
    let v = json(&o);
    // The schema is closed: the old name of a member does not pass.
    let text = serde_json::to_string(&v).expect("json");
    if text.contains("\"hint\"") {
        mtasts_test_support::schema::assert_invalid(
            "mtasts-report-readiness/1",
            text.replace("\"hint\"", "\"fix\""),
        );
    }
    (o.status.code(), v)
}

#[test]
fn readiness_on_seeded_histories() {
    // Clean for 14 days: READY.
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("clean.db");
    let reports = write_history(dir.path(), 14, false);
    let o = mtasts(&db, &["report", "ingest", &reports.display().to_string()]);
    assert_eq!(
        stdout(&o).trim(),
        "42 read, 42 stored, 0 duplicates, 0 quarantined"
    );
    let (code, r) = readiness(&db);
    assert_eq!(r["readiness"]["status"]["kind"], "ready", "{r}");
    assert_eq!(code, Some(0));
    let o = mtasts(
        &db,
        &[
            "report",
            "readiness",
            "customer.test",
            "--offline",
            "--today",
            "2026-11-30",
        ],
    );
    assert!(
        stdout(&o).starts_with("customer.test: READY: 14 days"),
        "{}",
        stdout(&o)
    );

    // Too few days: NOT READY, and how many more.
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("short.db");
    let reports = write_history(dir.path(), 5, false);
    mtasts(&db, &["report", "ingest", &reports.display().to_string()]);
    let (code, r) = readiness(&db);
    assert_eq!(r["readiness"]["status"]["kind"], "not-ready", "{r}");
    assert_eq!(code, Some(1));
    let items = r["readiness"]["items"].as_array().expect("items");
    let days = items
        .iter()
        .find(|i| i["code"] == "readiness.too-few-days")
        .expect("too few days");
    assert!(
        days["message"]
            .as_str()
            .is_some_and(|m| m.contains("9 more")),
        "{days}"
    );

    // A large sender failing certificate-host-mismatch on one MX: NOT READY, names the MX
    // and the fix.
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("mismatch.db");
    let reports = write_history(dir.path(), 14, true);
    mtasts(&db, &["report", "ingest", &reports.display().to_string()]);
    let (code, r) = readiness(&db);
    assert_eq!(r["readiness"]["status"]["kind"], "not-ready", "{r}");
    assert_eq!(code, Some(1));
    let items = r["readiness"]["items"].as_array().expect("items");
    let mx = items
        .iter()
        .find(|i| i["code"] == "readiness.mx-failures")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(mx["evidence"]["mx_hosts"][0], "mx2.customer.test");
    assert_eq!(mx["attribution"]["kind"], "owner");
    assert!(
        mx["hint"]
            .as_str()
            .is_some_and(|f| f.contains("mx2.customer.test")),
        "{mx}"
    );
}

#[test]
fn kill_9_during_a_large_ingest_then_a_rerun_stores_every_report_exactly_once() {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().expect("dir");
    let reports = dir.path().join("many");
    std::fs::create_dir_all(&reports).expect("dir");
    for i in 0..N {
        // One report per domain, so that the summary counts reports one by one.
        let text = report_json(
            "bulk.example",
            &format!("r{i}"),
            "2026-11-20",
            &format!("d{i}.example"),
            1,
            "",
        );
        std::fs::write(reports.join(format!("{i:05}.json")), text).expect("write");
    }
    let db = dir.path().join("reports.db");
    let path = reports.display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["report", "ingest", &path])
        .env("MTASTS_DB", &db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once part of the work is stored: the WAL file grows as reports are committed.
    let wal = dir.path().join("reports.db-wal");
    let deadline = std::time::Instant::now() + mtasts_test_support::GUARD;
    while std::fs::metadata(&wal).map_or(0, |m| m.len()) < 2_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ingest made no progress"
        );
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = child.try_wait().expect("wait").is_none();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let o = mtasts(&db, &["report", "ingest", "--json", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let rerun = json(&o);
    assert_eq!(rerun["read"], N as u64);
    assert_eq!(
        rerun["stored"].as_u64().unwrap_or(0) + rerun["duplicates"].as_u64().unwrap_or(0),
        N as u64,
        "{rerun}"
    );
    if killed {
        assert!(
            rerun["duplicates"].as_u64().unwrap_or(0) > 0,
            "killed after some were stored"
        );
    }
    let o = mtasts(&db, &["report", "summary", "--json"]);
    let s = json(&o);
    let days = s["days"].as_array().expect("days");
    let domains: BTreeSet<&str> = days.iter().filter_map(|d| d["domain"].as_str()).collect();
    assert_eq!(domains.len(), N);
    assert!(days.iter().all(|d| d["reports"] == 1), "each report once");
    assert_eq!(s["total"]["successful"], N as u64);
}

#[test]
fn a_gzip_bomb_is_refused_within_bounded_memory_and_kept_in_quarantine() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let dir = tempfile::tempdir().expect("dir");
    let bomb = dir.path().join("bomb.json.gz");
    // 1 GiB of spaces after an opening brace: about 1 MiB of gzip.
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(b"{").expect("gzip");
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..1024 {
        gz.write_all(&chunk).expect("gzip");
    }
    let bytes = gz.finish().expect("gzip");
    assert!(bytes.len() < 2 << 20, "{}", bytes.len());
    std::fs::write(&bomb, &bytes).expect("write");
    let db = dir.path().join("reports.db");
    // Under a 512 MiB address-space limit: inflating it whole would abort.
    let o = Command::new("sh")
        .args([
            "-c",
            "ulimit -v 524288 && exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_mtasts"),
            "report",
            "ingest",
            &bomb.display().to_string(),
        ])
        .env("MTASTS_DB", &db)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert_eq!(
        stdout(&o).trim(),
        "1 read, 0 stored, 0 duplicates, 1 quarantined"
    );
    let o = mtasts(&db, &["report", "quarantine", "list"]);
    let text = stdout(&o);
    assert!(
        text.contains("bomb.json.gz") && text.contains("limit"),
        "the refusal names the input and the limit: {text}"
    );
    let o = mtasts(&db, &["report", "quarantine", "show", "1", "--raw"]);
    assert_eq!(o.stdout, bytes, "the input is kept as received");
}

#[test]
fn prune_removes_old_reports() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("reports.db");
    let reports = dir.path().join("r");
    std::fs::create_dir_all(&reports).expect("dir");
    let today = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()).date_naive();
    for age in [40u64, 20, 0] {
        let day = today - chrono::Days::new(age);
        let text = report_json(
            "a.example",
            &format!("r{age}"),
            &day.to_string(),
            "p.example",
            1,
            "",
        );
        std::fs::write(reports.join(format!("{age}.json")), text).expect("write");
    }
    mtasts(&db, &["report", "ingest", &reports.display().to_string()]);
    let o = mtasts(&db, &["report", "prune", "--older-than", "30", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert_eq!(json(&o)["pruned"]["reports"], 1);
    let o = mtasts(&db, &["report", "summary", "--json"]);
    assert_eq!(json(&o)["days"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_missing_store_directory_is_a_clear_error() {
    let o = mtasts(
        Path::new("/nonexistent/dir/reports.db"),
        &["report", "summary"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/dir"), "{err}");
}

/// Starts `mtasts report receive` and returns it with the port it listens on (read from its
/// first line on standard error).
fn start_receiver(db: &Path, extra: &[&str]) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["report", "receive", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("MTASTS_DB", db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let first = lines.next().expect("a line").expect("read");
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let port = first
        .split("listening on 127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    (child, port)
}

fn curl(args: &[&str]) -> (String, String) {
    let o = Command::new("curl")
        .args(["-sS", "-o", "/dev/stderr", "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn report_receive_stores_posted_reports_over_https_once() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=reports.test",
            "-addext",
            "subjectAltName=DNS:reports.test",
        ])
        .args(["-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success());
    let db = dir.path().join("reports.db");
    let (mut child, port) = start_receiver(
        &db,
        &[
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
    );
    let url = format!("https://reports.test:{port}/tlsrpt");
    let resolve = format!("reports.test:{port}:127.0.0.1");
    let body = format!(
        "@{}",
        report_corpus()
            .join("marcbradshaw__mail-tls-rpt/report.json.gz")
            .display()
    );
    let cacert = cert.display().to_string();
    let post = || {
        curl(&[
            "--cacert",
            &cacert,
            "--resolve",
            &resolve,
            "-H",
            "Content-Type: application/tlsrpt+gzip",
            "--data-binary",
            &body,
            &url,
        ])
    };
    let (code, answer) = post();
    assert_eq!(code, "201", "{answer}");
    let (code, answer) = post();
    assert_eq!(code, "200", "the retry is a duplicate: {answer}");
    let (code, _) = curl(&["--cacert", &cacert, "--resolve", &resolve, &url]);
    assert_eq!(code, "405", "GET is not how reports arrive");
    let _ = child.kill();
    let _ = child.wait();
    let o = mtasts(&db, &["report", "summary", "--json"]);
    let s = json(&o);
    assert!(s["total"]["successful"].as_u64().unwrap_or(0) > 0, "{s}");
}

#[test]
fn report_receive_refuses_to_start_without_tls_unless_told() {
    let dir = tempfile::tempdir().expect("dir");
    let o = mtasts(
        &dir.path().join("r.db"),
        &["report", "receive", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--plain-http"),
        "{}",
        output_text(&o)
    );
    let (mut child, port) = start_receiver(&dir.path().join("p.db"), &["--plain-http"]);
    let body = format!(
        "@{}",
        report_corpus()
            .join("domainaware__parsedmarc/smtp_tls.json")
            .display()
    );
    let (code, answer) = curl(&[
        "-H",
        "Content-Type: application/tlsrpt+json",
        "--data-binary",
        &body,
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(code, "201", "{answer}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn report_ingest_over_imap_verifies_moves_and_skips_what_it_has_seen() {
    use mtasts_test_support::dkim::{Signer, Signing};
    use mtasts_test_support::dovecot::Dovecot;
    let Some(signer) = Signer::new("reporter.test", "tlsrpt") else {
        return;
    };
    let Some(imap) = Dovecot::start() else {
        return;
    };
    let w = lab();
    w.set_txt(&signer.key_name(), &[&signer.key_record(true)])
        .expect("key");
    for (i, signing) in [Signing::Tlsrpt, Signing::Tlsrpt, Signing::Unsigned]
        .into_iter()
        .enumerate()
    {
        let id = format!("imap-{i}@reporter.test");
        let json = report_json("reporter.test", &id, "2026-11-20", "customer.test", 5, "");
        let mail = signer.report_mail(
            json.as_bytes(),
            "customer.test",
            "reporter.test",
            &id,
            signing,
        );
        imap.append("INBOX", &mail);
    }
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("reports.db");
    let url = imap.imaps_url("INBOX");
    let pw = imap.password_file().display().to_string();
    let ca = imap.ca_pem_path().display().to_string();
    let dns = w.dns_addr().to_string();
    let args = [
        "report",
        "ingest",
        "--imap",
        &url,
        "--password-file",
        &pw,
        "--imap-ca-file",
        &ca,
        "--move-to",
        "Processed",
        "--dns",
        &dns,
    ];
    let o = mtasts(&db, &args);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert_eq!(
        stdout(&o).trim(),
        "3 read, 2 stored, 0 duplicates, 1 quarantined"
    );
    assert_eq!(imap.count("INBOX"), 0);
    assert_eq!(imap.count("Processed"), 3);
    let mut again = args.to_vec();
    again.push("--json");
    let o = mtasts(&db, &again);
    let counts = json(&o);
    assert_eq!(
        (counts["read"].as_u64(), counts["stored"].as_u64()),
        (Some(0), Some(0)),
        "{counts}"
    );
    let o = mtasts(&db, &["report", "summary", "--json"]);
    assert_eq!(
        json(&o)["total"]["successful"],
        10,
        "the two verified reports"
    );
    // A wrong password is a clear error, exit 2.
    let bad = dir.path().join("bad-password");
    std::fs::write(&bad, "wrong\n").expect("write");
    let bad = bad.display().to_string();
    let o = mtasts(
        &db,
        &[
            "report",
            "ingest",
            "--imap",
            &url,
            "--password-file",
            &bad,
            "--imap-ca-file",
            &ca,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    w.shutdown();
}
