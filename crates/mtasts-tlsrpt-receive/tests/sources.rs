//! Reading inputs from files, mbox files, Maildirs and directories, in bounded memory.

use std::path::PathBuf;

use mtasts_tlsrpt_receive::sources::{Input, InputKind, Sources};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtasts-sources-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn all(paths: &[PathBuf], max: usize) -> Vec<Input> {
    Sources::new(paths, max)
        .collect::<Result<Vec<_>, _>>()
        .expect("readable")
}

#[test]
fn mbox_yields_each_message_unquoting_from_lines() {
    let d = dir("mbox");
    let mbox = d.join("reports.mbox");
    std::fs::write(
        &mbox,
        "From a@example Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody 1\n>From the start\n\nFrom b@example Mon Jan  1 00:00:01 2024\nSubject: two\n\nbody 2\n>>From quoted twice\n",
    )
    .expect("write");
    let got = all(std::slice::from_ref(&mbox), 1 << 20);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        String::from_utf8_lossy(&got[0].bytes),
        "Subject: one\n\nbody 1\nFrom the start\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&got[1].bytes),
        "Subject: two\n\nbody 2\n>From quoted twice\n"
    );
    assert_eq!(got[0].origin, format!("{}#1", mbox.display()));
    assert_eq!(got[1].origin, format!("{}#2", mbox.display()));
    assert!(
        got.iter()
            .all(|i| i.kind == InputKind::Message && i.too_large.is_none())
    );
}

#[test]
fn an_oversize_mbox_message_is_flagged_and_the_next_still_read() {
    let d = dir("big");
    let mbox = d.join("big.mbox");
    let big = "x".repeat(5000);
    std::fs::write(
        &mbox,
        format!("From a\nSubject: big\n\n{big}\n\nFrom b\nSubject: small\n\nok\n"),
    )
    .expect("write");
    let got = all(&[mbox], 1000);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].bytes.len(), 1000, "kept only up to the limit");
    assert!(
        got[0].too_large.is_some_and(|n| n > 5000),
        "{:?}",
        got[0].too_large
    );
    assert_eq!(got[1].too_large, None);
    assert_eq!(
        String::from_utf8_lossy(&got[1].bytes),
        "Subject: small\n\nok\n"
    );
}

#[test]
fn maildir_and_nested_directories_in_name_order() {
    let d = dir("tree");
    let md = d.join("b-maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).expect("maildir");
    }
    std::fs::write(md.join("cur/1.host:2,S"), "Subject: seen\n\nx\n").expect("write");
    std::fs::write(md.join("new/2.host"), "Subject: new\n\ny\n").expect("write");
    std::fs::write(md.join("tmp/3.host"), "being delivered").expect("write");
    std::fs::write(d.join("a.json"), "{}").expect("write");
    std::fs::write(d.join("README.md"), "not a report").expect("write");
    std::fs::write(d.join(".hidden.json"), "{}").expect("write");
    std::fs::create_dir_all(d.join("c/d")).expect("nested");
    std::fs::write(d.join("c/d/e.json.gz"), [0x1f, 0x8b]).expect("write");
    let got = all(std::slice::from_ref(&d), 1 << 20);
    let names: Vec<String> = got
        .iter()
        .map(|i| {
            i.origin
                .trim_start_matches(&*d.display().to_string())
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "/a.json",
            "/b-maildir/cur/1.host:2,S",
            "/b-maildir/new/2.host",
            "/c/d/e.json.gz"
        ],
        "tmp/ is not read (a message there is still being delivered), nor README.md or a hidden file"
    );
    assert_eq!(got[0].kind, InputKind::File);
    assert_eq!(got[1].kind, InputKind::Message);
    assert_eq!(got[3].kind, InputKind::File);
}

#[test]
fn a_missing_path_is_an_error_naming_it_and_the_rest_is_read() {
    let d = dir("missing");
    std::fs::write(d.join("ok.json"), "{}").expect("write");
    let missing = d.join("nope.json");
    let got: Vec<_> = Sources::new(&[missing.clone(), d.join("ok.json")], 100).collect();
    assert_eq!(got.len(), 2);
    let err = got[0].as_ref().expect_err("missing");
    assert!(
        err.to_string().starts_with(&missing.display().to_string()),
        "{err}"
    );
    assert!(got[1].is_ok());
}
