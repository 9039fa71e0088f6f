//! Fuzz target: a rule from the input's first line, its payload keywords compiled per buffer
//! group with `PayloadMatcher::compile`, matched against the rest of the input.
//!
//! Inputs whose first line is not a rule are turned into one (`alert tcp any any -> any any
//! (LINE)`), so the fuzzer spends its time on option text rather than headers. Invariants:
//! no panic (compile errors are values); matching is deterministic and the scratch space is
//! reusable; a group that matches contains its fast pattern in the transformed buffer (what
//! the prefilter relies on: otherwise it would skip a rule that matches).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_detect::payload::{MatchScratch, PayloadMatcher};
use sekisho_rules::{parse_rule, RuleOption};

fn contains(hay: &[u8], needle: &[u8], nocase: bool) -> bool {
    needle.is_empty()
        || hay.windows(needle.len()).any(|w| {
            if nocase {
                w.eq_ignore_ascii_case(needle)
            } else {
                w == needle
            }
        })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (line, buf) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let rule = match parse_rule(line) {
        Ok(r) => r,
        Err(_) => match parse_rule(&format!("alert tcp any any -> any any ({line})")) {
            Ok(r) => r,
            Err(_) => return,
        },
    };
    // One group per sticky buffer, as the detection compiler splits them.
    let mut groups: Vec<Vec<&RuleOption>> = vec![Vec::new()];
    for o in &rule.options {
        match &o.node {
            RuleOption::Buffer(_) => groups.push(Vec::new()),
            n if PayloadMatcher::takes(n) => {
                if let Some(g) = groups.last_mut() {
                    g.push(n);
                }
            }
            _ => {}
        }
    }
    let mut scratch = MatchScratch::default();
    for g in groups.iter().filter(|g| !g.is_empty()) {
        let Ok(m) = PayloadMatcher::compile(g) else {
            continue;
        };
        let hit = m.matches(buf, &mut scratch);
        assert_eq!(hit, m.matches(buf, &mut scratch), "not deterministic");
        if hit {
            if let Some(fp) = m.fast_pattern() {
                let t = m.transformed(buf, &mut scratch);
                assert!(
                    contains(t, &fp.bytes, fp.nocase),
                    "matched without its fast pattern {fp:?}"
                );
            }
        }
        let _ = m.absent();
        let _ = m.is_empty();
    }
});
