//! `mtasts serve promote`, `retire` and `--check` through the real binary against the lab:
//! promote refuses on a domain whose live check fails and succeeds on one that passes;
//! retire serves `mode: none` under a fresh id and says when the records can go.

use std::path::Path;

use mtasts_lab::{World, WorldOptions};
use mtasts_test_support::{lab_flags, output_text, run, scenario};

fn mtasts(args: &[&str], extra: &[String]) -> std::process::Output {
    run(env!("CARGO_BIN_EXE_mtasts"), args, extra, None)
}

fn config(dir: &Path, dns: std::net::SocketAddr) -> String {
    let p = dir.join("serve.toml");
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    std::fs::write(
        &p,
        format!(
            "listen = [\"127.0.0.1:0\"]\npolicy_dir = \"{}\"\n[dns]\nservers = [\"{dns}\"]\n",
            dir.join("policies").display()
        ),
    )
    .expect("write");
    p.display().to_string()
}

fn testing_policy(mx: &str) -> String {
    format!("version: STSv1\nmode: testing\nmx: {mx}\nmax_age: 604800\n")
}

#[test]
fn promote_needs_a_passing_check_and_retire_serves_mode_none() {
    let w = World::start(&scenario("zoo.toml"), WorldOptions::default()).expect("world");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), w.dns_addr());
    let policies = dir.path().join("policies");
    let lab = lab_flags(&w);

    // mx-hijack.test: the live check finds errors, so enforce is refused (exit 1) and the
    // file is unchanged.
    let bad = policies.join("mx-hijack.test.txt");
    std::fs::write(&bad, testing_policy("mx1.mx-hijack.test")).expect("write");
    let o = mtasts(
        &[
            "serve",
            "--config",
            &cfg,
            "promote",
            "mx-hijack.test",
            "enforce",
        ],
        &lab,
    );
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    let t = output_text(&o);
    assert!(
        t.contains("check") && t.contains("FAILED") && t.contains("refused"),
        "{t}"
    );
    assert!(
        std::fs::read_to_string(&bad)
            .expect("read")
            .contains("mode: testing")
    );
    // --force promotes anyway, and says so.
    let o = mtasts(
        &[
            "serve",
            "--config",
            &cfg,
            "promote",
            "mx-hijack.test",
            "enforce",
            "--force",
        ],
        &lab,
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert!(output_text(&o).contains("FORCED"), "{}", output_text(&o));

    // good-testing.test passes the check: promoted, the new record printed.
    let good = policies.join("good-testing.test.txt");
    std::fs::write(&good, testing_policy("mx1.good-testing.test")).expect("write");
    let o = mtasts(
        &[
            "serve",
            "--config",
            &cfg,
            "promote",
            "good-testing.test",
            "enforce",
        ],
        &lab,
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let text = std::fs::read_to_string(&good).expect("read");
    assert!(text.contains("mode: enforce"), "{text}");
    let policy = mtasts_core::sts::policy::Policy::parse(text.as_bytes()).expect("policy");
    let id = mtasts_core::sts::publish::policy_id(&policy);
    let t = output_text(&o);
    assert!(
        t.contains(&format!(
            "_mta-sts.good-testing.test. 3600 IN TXT \"v=STSv1; id={id};\""
        )),
        "{t}"
    );

    // retire: mode none, a fresh id, and the date the records can go.
    let o = mtasts(
        &["serve", "--config", &cfg, "retire", "good-testing.test"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let retired = std::fs::read_to_string(&good).expect("read");
    assert!(retired.contains("mode: none"), "{retired}");
    let new_id = mtasts_core::sts::publish::policy_id(
        &mtasts_core::sts::policy::Policy::parse(retired.as_bytes()).expect("policy"),
    );
    assert_ne!(new_id, id);
    let t = output_text(&o);
    assert!(
        t.contains(&new_id) && t.contains("keep serving it and the record until"),
        "{t}"
    );
    assert!(policies.join("good-testing.test.retirement.json").exists());

    // --check: the lab publishes other ids than ours: drift, exit 1; once the lab's record
    // names our id for every domain, exit 0.
    let o = mtasts(&["serve", "--config", &cfg, "--check"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    for (domain, file) in [("good-testing.test", &good), ("mx-hijack.test", &bad)] {
        let p = mtasts_core::sts::policy::Policy::parse(&std::fs::read(file).expect("read"))
            .expect("policy");
        let id = mtasts_core::sts::publish::policy_id(&p);
        w.set_txt(
            &format!("_mta-sts.{domain}"),
            &[&format!("v=STSv1; id={id};")],
        )
        .expect("txt");
    }
    let o = mtasts(&["serve", "--config", &cfg, "--check"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    w.shutdown();
}
