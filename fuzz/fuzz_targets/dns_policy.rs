//! Arbitrary names and types through domain-list insertion and policy evaluation, including
//! redirection chains: no panic, and a name always matches a list it was inserted into.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_dnsfw::domains::{normalise, DomainSet};
use sekisho_dnsfw::policy::{
    Action, BlockResponse, DomainList, Mode, Policy, Redirection, Rule, RuleGroup, Verdict,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let entry = parts.next().unwrap_or("");
    let qname = parts.next().unwrap_or("");
    let chain: Vec<&str> = parts.take(8).collect();
    let qtype = data.first().map(|b| u16::from(*b)).unwrap_or(1);

    let mut set = DomainSet::new();
    let inserted = set.insert(entry).is_ok();
    // Also the list-file parser on the whole input.
    let _ = DomainSet::new().extend_from_text(&text);
    if inserted && !entry.starts_with('*') {
        assert!(
            set.matches(&normalise(entry)),
            "exact entry must match itself"
        );
    }
    let mut p = Policy {
        lists: vec![DomainList {
            name: "l".into(),
            id: "l".into(),
            set,
        }],
        groups: vec![RuleGroup {
            name: "g".into(),
            id: "g".into(),
            priority: 1,
            rules: vec![Rule {
                name: "r".into(),
                priority: 1,
                list: 0,
                action: Action::Block(BlockResponse::NoData),
                qtype: qtype.is_multiple_of(3).then_some(qtype),
                redirection: if qtype.is_multiple_of(2) {
                    Redirection::Trust
                } else {
                    Redirection::Inspect
                },
            }],
        }],
        mode: if qtype.is_multiple_of(5) {
            Mode::Alert
        } else {
            Mode::Enforce
        },
    };
    p.sort();
    let d = p.evaluate(qname, qtype);
    let r = p.evaluate_response(qname, qtype, &chain);
    // Inspecting a chain can only make things stricter than the query name alone.
    if d.verdict == Verdict::Block {
        assert_eq!(r.verdict, Verdict::Block);
    }
});
