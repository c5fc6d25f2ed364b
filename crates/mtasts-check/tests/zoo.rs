//! The checker against the lab's zoo: for every domain, the verdict must equal the scenario's
//! `expect.sender` and the finding ids (warning and error level) must equal `expect.findings`.
//! The scenario file says, in its comments, what a correct checker concludes; this test reads
//! both and compares.

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use mtasts_check::{CheckConfig, Checker};
use mtasts_lab::{Scenario, World, WorldOptions};

fn zoo() -> (Scenario, World) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios/zoo.toml");
    let scenario = Scenario::from_file(&path).unwrap_or_else(|e| panic!("zoo: {e}"));
    let world = World::start(&scenario, WorldOptions::default()).expect("start the zoo");
    (scenario, world)
}

pub fn lab_config(world: &World) -> CheckConfig {
    CheckConfig {
        dns: Some(world.dns_addr()),
        dns_timeout: Duration::from_secs(3),
        ca_file: Some(world.ca_pem_path().to_path_buf()),
        https_port: world.https_port(),
        smtp_port: world.smtp_port(),
        connect_timeout: Duration::from_secs(5),
        fetch_timeout: Duration::from_secs(10),
        smtp_timeout: Duration::from_secs(10),
        ..CheckConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_zoo_domain_gets_the_expected_verdict_and_findings() {
    let (scenario, world) = zoo();
    let checker = Checker::new(lab_config(&world)).expect("checker");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let domains: Vec<String> = scenario.domains.keys().cloned().collect();
    let mut tasks = tokio::task::JoinSet::new();
    for d in &domains {
        let c = checker.clone();
        let d = d.clone();
        tasks.spawn(async move { (d.clone(), c.check(&d, now).await) });
    }
    let mut reports = std::collections::BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (d, rep) = r.expect("task");
        reports.insert(d, rep.expect("valid domain"));
    }
    let mut failures = Vec::new();
    let mut toml_hint = String::new();
    let mut compared = 0;
    for (d, spec) in &scenario.domains {
        let rep = &reports[d];
        let Some(expect) = &spec.expect else {
            continue;
        };
        compared += 1;
        let want_sender = serde_json::to_value(expect.sender)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        let got_sender = rep.verdict.outcome.as_str();
        let mut want_ids = expect.findings.clone();
        want_ids.sort();
        let got_ids = rep.problem_ids();
        toml_hint.push_str(&format!("{d}: sender={got_sender} findings={got_ids:?}\n"));
        for f in &rep.findings {
            assert!(
                mtasts_check::catalog::contains(f.code),
                "{d}: finding code {} is not in the catalogue (docs/checks.md)",
                f.code
            );
        }
        let missing_info: Vec<&String> = expect
            .info
            .iter()
            .filter(|id| !rep.findings.iter().any(|f| f.code == id.as_str()))
            .collect();
        if want_sender != got_sender || want_ids != got_ids || !missing_info.is_empty() {
            let mut msg = format!(
                "{d}\n  comment:  {}\n  checker:  {}\n  verdict:  want {want_sender}, got {got_sender}: {}\n  findings: want {want_ids:?}\n            got  {got_ids:?}\n  info missing: {missing_info:?}\n",
                spec.comment, expect.checker, rep.verdict.summary
            );
            for f in &rep.findings {
                msg.push_str(&format!(
                    "    {} {} [{}] {}\n",
                    f.severity,
                    f.code,
                    f.subject.as_deref().unwrap_or(""),
                    f.message
                ));
            }
            failures.push(msg);
        }
    }
    if std::env::var_os("MTASTS_ZOO_PRINT").is_some() {
        eprintln!("{toml_hint}");
    }
    world.shutdown();
    assert!(
        compared >= 80,
        "only {compared} zoo domains carry expectations"
    );
    assert!(
        failures.is_empty(),
        "{} of {} zoo domains differ from the scenario's expectations:\n\n{}",
        failures.len(),
        scenario.domains.len(),
        failures.join("\n")
    );
}
