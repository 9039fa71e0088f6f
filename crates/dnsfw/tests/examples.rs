//! The example configs in `examples/dns/` load and mean what their comments say.

use std::path::Path;

use sekisho_dnsfw::config;
use sekisho_dnsfw::policy::Verdict;

fn example(name: &str) -> config::Config {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/dns")
        .join(name);
    config::load(&p).unwrap_or_else(|d| panic!("{}", d.render()))
}

#[test]
fn walled_garden_example() {
    let c = example("walled-garden.yaml");
    let p = &c.policy;
    assert_eq!(p.evaluate("gmail.com", 15).verdict, Verdict::Resolve);
    assert_eq!(
        p.evaluate("gmail-smtp-in.l.google.com", 1).verdict,
        Verdict::Resolve
    );
    assert_eq!(p.evaluate("yahoo.co.jp", 15).verdict, Verdict::Block);
    assert_eq!(c.server.upstreams.len(), 2);
}

#[test]
fn blocklist_example() {
    let c = example("blocklist.yaml");
    let p = &c.policy;
    assert_eq!(p.evaluate("x.malware.example", 1).verdict, Verdict::Block);
    assert_eq!(p.evaluate("malware.example", 1).verdict, Verdict::Block);
    assert_eq!(p.evaluate("pixel.example.com", 1).verdict, Verdict::Block);
    assert_eq!(p.evaluate("localhost", 1).verdict, Verdict::Resolve);
    assert_eq!(p.evaluate("mail.example.net", 15).verdict, Verdict::Alert);
    assert_eq!(p.evaluate("mail.example.net", 1).verdict, Verdict::Resolve);
}
