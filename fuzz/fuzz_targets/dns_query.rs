//! Arbitrary bytes as a DNS query through parsing, policy evaluation (query name and, treating
//! the same bytes as the upstream answer, its CNAME/DNAME chain) and response construction.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sekisho_dnsfw::policy::Policy;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        let src = sekisho_diag::SourceFile::new(
            "fuzz.yaml",
            "upstreams: [127.0.0.1]\ndomain_lists:\n  allow: [gmail.com, \"*.google.com\"]\n  bad: [\"*.bad.example\", bad.example]\n  all: [\"*\"]\nrule_groups:\n  - name: g\n    priority: 1\n    rules:\n      - {name: a, priority: 1, domain_list: allow, action: allow}\n      - {name: o, priority: 2, domain_list: bad, action: block, block_response: override, override_domain: sink.example, override_ttl: 5}\n      - {name: mx, priority: 3, domain_list: all, action: alert, qtype: MX}\n      - {name: b, priority: 4, domain_list: all, action: block, block_response: nxdomain}\n",
        );
        match sekisho_dnsfw::config::parse(&src, std::path::Path::new(".")) {
            Ok(c) => c.policy,
            Err(d) => panic!("fuzz policy does not load: {}", d.render()),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(resp) = sekisho_dnsfw::query::exercise(policy(), data) {
        // Whatever we answer must itself be a parseable DNS message header.
        assert!(resp.len() >= 12);
    }
});
