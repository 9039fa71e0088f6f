//! The recipient policy holds while the flow table is full of half-open flows: real SMTP
//! sessions (swaks and Postfix, captured in the lab) replayed inline with the recipient
//! allow list, each of their packets preceded by a burst of SYNs from distinct sources.
//!
//! - A burst smaller than the table: the session's flow is recently seen, so emergency
//!   eviction takes flood flows instead; every packet of the session gets exactly the
//!   verdict it gets without the flood (allowed mail passes, the disallowed RCPT is dropped).
//! - A burst larger than the table: the session's own state is evicted between two of its
//!   packets. It must not come back as a fresh flow that passes: the `flow_memcap`
//!   exception policy (drop-flow inline) drops it, so the disallowed recipient never
//!   reaches the server.

use std::sync::Arc;

use etherparse::PacketBuilder;
use sekisho_engine::{LinkType, Timestamp, Verdict};
use sekisho_pcap::MergedCaptures;
use sekisho_policy::Policy;
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

struct Frame {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
}

fn frames(name: &str) -> Option<Vec<Frame>> {
    let path = sekisho_testutil::require_fixture(format!("tests/fixtures/captures/smtp/{name}"))?;
    let mut caps = MergedCaptures::open(&[path]).expect("open capture");
    let mut out = Vec::new();
    caps.for_each(None, |p| {
        out.push(Frame {
            ts: Timestamp::from_secs_nanos(p.ts.sec, u64::from(p.ts.nsec)),
            link: LinkType::from_linktype(p.link_type).expect("supported link type"),
            data: p.data.to_vec(),
        })
    });
    assert!(caps.errors().is_empty(), "{:?}", caps.errors());
    Some(out)
}

fn syn(i: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4((0xc612_0000u32 + i).to_be_bytes(), [203, 0, 113, 25], 64)
        .tcp(40000, 25, 1, 65535)
        .syn()
        .write(&mut out, &[])
        .expect("frame");
    out
}

/// Replays `frames` inline with the strict recipient policy and a 4 MiB flow memcap,
/// `burst` flood SYNs before each frame; returns each real frame's verdict, the stats
/// counters and the drop records' reasons.
fn run(frames: &[Frame], burst: u32) -> (Vec<Verdict>, Vec<(&'static str, u64)>, Vec<String>) {
    let path = sekisho_testutil::repo_root().join("examples/smtp/recipients-strict.yaml");
    let (policy, _) = Policy::check_file(&path, &Default::default())
        .into_result()
        .unwrap_or_else(|d| panic!("policy invalid: {d:?}"));
    let mut settings = Settings::new(Mode::Inline);
    settings.apply_policy(&policy);
    settings.set("flow.memcap", "4mb").expect("memcap");
    let rules = Arc::new(RuleSet::from_policy(&policy, settings.compile_options()));
    let mut sensor = Sensor::new(&settings, Some(rules));
    let (mut verdicts, mut reasons, mut counters) = (Vec::new(), Vec::new(), Vec::new());
    let drain = |sensor: &mut Sensor, reasons: &mut Vec<String>, counters: &mut Vec<_>| {
        while let Some(r) = sensor.poll_record() {
            match r {
                Record::Drop(d) => reasons.push(d.reason.to_string()),
                Record::Stats { counters: c, .. } => *counters = c,
                _ => {}
            }
        }
    };
    let mut next = 0u32;
    for f in frames {
        for _ in 0..burst {
            sensor.handle_packet(f.ts, LinkType::Ethernet, &syn(next));
            next += 1;
        }
        verdicts.push(sensor.handle_packet(f.ts, f.link, &f.data));
        drain(&mut sensor, &mut reasons, &mut counters);
    }
    sensor.finish(frames.last().expect("frames").ts);
    drain(&mut sensor, &mut reasons, &mut counters);
    (verdicts, counters, reasons)
}

fn counter(counters: &[(&'static str, u64)], k: &str) -> u64 {
    counters
        .iter()
        .find(|(n, _)| *n == k)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {k}"))
}

/// Index of the first frame whose bytes contain `needle`.
fn frame_with(frames: &[Frame], needle: &[u8]) -> usize {
    frames
        .iter()
        .position(|f| f.data.windows(needle.len()).any(|w| w == needle))
        .unwrap_or_else(|| panic!("no frame carries {:?}", String::from_utf8_lossy(needle)))
}

#[test]
fn recipient_policy_holds_while_the_table_is_full_of_half_open_flows() {
    let cases: [(&str, Option<&[u8]>); 3] = [
        ("swaks-plain.pcap", None),
        (
            "swaks-plain-disallowed.pcap",
            Some(b"RCPT TO:<mallory@evil.example>"),
        ),
        (
            "postfix-two-rcpt.pcap",
            Some(b"RCPT TO:<mallory@evil.example>"),
        ),
    ];
    for (name, disallowed) in cases {
        let Some(frames) = frames(name) else {
            return;
        };
        let (quiet, ..) = run(&frames, 0);
        match disallowed {
            Some(rcpt) => assert!(quiet[frame_with(&frames, rcpt)].is_drop(), "{name}"),
            None => assert!(quiet.iter().all(|v| !v.is_drop()), "{name}: {quiet:?}"),
        }
        // Smaller bursts than the table: same verdicts, flood flows evicted instead.
        let (flooded, counters, _) = run(&frames, 600);
        assert!(
            counter(&counters, "flow.memcap") > 0,
            "{name}: table never full"
        );
        assert_eq!(flooded, quiet, "{name}: verdicts changed under the flood");
        // Bursts larger than the table: the session's state is evicted between packets.
        let (evicted, counters, reasons) = run(&frames, 2_000);
        let cap_hits = counter(&counters, "flow.memcap");
        assert!(cap_hits > 2_000, "{name}: {cap_hits}");
        if let Some(rcpt) = disallowed {
            let at = frame_with(&frames, rcpt);
            assert!(
                evicted[at].is_drop(),
                "{name}: disallowed RCPT passed: {evicted:?}"
            );
            assert!(
                reasons.iter().any(|r| r == "flow memcap"),
                "{name}: no flow-memcap drop: {reasons:?}"
            );
            assert!(
                counter(&counters, "flow.memcap_exception_policy.drop_flow") > 0,
                "{name}"
            );
        }
    }
}
