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
    // The hardening keys the comments describe.
    assert_eq!(c.server.allow_clients.len(), 2);
    assert_eq!(c.server.user.as_deref(), Some("nobody"));
    assert_eq!(
        c.server.limits,
        sekisho_dnsfw::limits::LimitsConfig::default()
    );
}

#[test]
fn walled_garden_bypass_rules_do_not_allow_the_upstreams() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dns/walled-garden.yaml");
    let text = sekisho_dnsfw::bypass_rules(&p, sekisho_dnsfw::bypass::BypassAction::Alert)
        .unwrap_or_else(|d| panic!("{}", d.render()));
    let c = example("walled-garden.yaml");
    for up in &c.server.upstreams {
        let ip = up.ip().to_string();
        assert!(
            !text.lines().any(|l| !l.starts_with('#') && l.contains(&ip)),
            "upstream {ip} is allowed as a resolver:\n{text}"
        );
    }
    let first = text.lines().find(|l| !l.starts_with('#')).unwrap_or("");
    assert!(
        first.starts_with("alert udp [$HOME_NET,!$DNS_FIREWALL] any -> ![127.0.0.1] 53 "),
        "{first}"
    );
    assert!(text.contains("DNS over QUIC"), "{text}");
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
