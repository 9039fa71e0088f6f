//! Arbitrary bytes as a DNS query through parsing, policy evaluation (query name and, treating
//! the same bytes as the upstream answer, its CNAME/DNAME chain) and response construction;
//! then the same bytes, as query and as upstream answer, through the query-log line (the log
//! thread decodes what the upstream sent, so a panic there would stop logging).
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
    use sekisho_dnsfw::querylog::{format_line, Identity, LogEvent, Transport};
    let ev = LogEvent::new(
        std::time::UNIX_EPOCH,
        ([10, 0, 0, 1], 5353).into(),
        Transport::Udp,
        data,
        data,
        None,
    );
    let id = Identity {
        account_id: "1".into(),
        region: "r".into(),
        vpc_id: "v".into(),
        resolver_endpoint: "e".into(),
    };
    // Every line is a JSON object with the fields a query-log reader requires.
    let v = format_line(&ev, &id);
    assert!(v["query_name"].is_string() && v["rcode"].is_string(), "{v}");
});
