//! `docs/migrating.md` stays true: its TOML example is a configuration the daemon loads, with
//! the meaning the guide gives it.
#![allow(missing_docs)]

use mtasts_daemon::{Config, Listener};

fn example() -> String {
    let doc = include_str!("../../../docs/migrating.md");
    let start = doc
        .find("```toml\n")
        .expect("a ```toml block in docs/migrating.md")
        + 8;
    let len = doc[start..]
        .find("```")
        .expect("the end of the ```toml block");
    doc[start..start + len].to_owned()
}

#[test]
fn migration_example_loads_with_the_meaning_the_guide_gives() {
    let c = Config::from_toml_str(&example(), "docs/migrating.md").expect("the example loads");
    assert!(
        matches!(c.listen.as_slice(), [Listener::Tcp(a)] if a.to_string() == "127.0.0.1:8461"),
        "listen: {:?}",
        c.listen
    );
    assert_eq!(c.shutdown_timeout, 20.0);
    assert!(!c.default_zone.strict_testing);
    assert!(!c.default_zone.tlsrpt);
    let zones = c.zone_table();
    let myzone = zones.zones.get("myzone").expect("zone myzone");
    assert!(myzone.tlsrpt, "myzone has tlsrpt = true");
    assert!(
        !myzone.strict_testing,
        "myzone inherits strict_testing = false"
    );
}
