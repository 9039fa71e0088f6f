//! The recipient policy holds while the flow table is full of half-open flows: real SMTP
//! sessions (swaks and Postfix, captured in the lab) replayed inline with the recipient
//! allow list, each of their packets preceded by a burst of SYNs from distinct sources.
//!
//! - SYN bursts smaller than the table, or larger once the session's handshake completed:
//!   emergency eviction takes half-open flood flows (conntrack's early drop), never the
//!   established session, so every packet of the session gets exactly the verdict it gets
//!   without the flood (allowed mail passes, the disallowed RCPT is dropped by its rule).
//!   (A session still half-open looks like the flood and may be evicted with it; it then
//!   comes back stateless and is dropped, as below, and the client retries.)
//! - Bursts of completed handshakes larger than the table (a table full of established
//!   flows): the session's own state is evicted between two of its packets. It must not
//!   come back as a fresh flow that passes: the `flow_memcap` exception policy (drop-flow
//!   inline) drops it, so the disallowed recipient never reaches the server.

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

/// A completed three-way handshake from flood source `i`: an established flow.
fn handshake(i: u32) -> [Vec<u8>; 3] {
    let src = (0xc612_0000u32 + i).to_be_bytes();
    let dst = [203, 0, 113, 25];
    let mut syn_ack = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(dst, src, 64)
        .tcp(25, 40000, 500, 65535)
        .syn()
        .ack(2)
        .write(&mut syn_ack, &[])
        .expect("frame");
    let mut ack = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(40000, 25, 2, 65535)
        .ack(501)
        .write(&mut ack, &[])
        .expect("frame");
    [syn(i), syn_ack, ack]
}

/// What each flood burst is made of.
#[derive(Clone, Copy, PartialEq)]
enum Flood {
    /// Spoofed SYNs: half-open flows.
    Syn,
    /// Completed handshakes: established flows.
    Established,
}

/// Replays `frames` inline with the strict recipient policy and a 4 MiB flow memcap,
/// `burst` flood flows before each frame from frame `from` on; returns each real frame's verdict, the stats
/// counters and the drop records' reasons.
fn run(
    frames: &[Frame],
    burst: u32,
    flood: Flood,
    from: usize,
) -> (Vec<Verdict>, Vec<(&'static str, u64)>, Vec<String>) {
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
    for (i, f) in frames.iter().enumerate() {
        let burst = if i >= from { burst } else { 0 };
        for _ in 0..burst {
            match flood {
                Flood::Syn => {
                    sensor.handle_packet(f.ts, LinkType::Ethernet, &syn(next));
                }
                Flood::Established => {
                    for p in handshake(next) {
                        sensor.handle_packet(f.ts, LinkType::Ethernet, &p);
                    }
                }
            }
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
        let (quiet, ..) = run(&frames, 0, Flood::Syn, 0);
        match disallowed {
            Some(rcpt) => assert!(quiet[frame_with(&frames, rcpt)].is_drop(), "{name}"),
            None => assert!(quiet.iter().all(|v| !v.is_drop()), "{name}: {quiet:?}"),
        }
        // SYN bursts smaller and larger than the table: same verdicts, half-open flood
        // flows evicted instead of the established session.
        // The session's handshake is its first three frames.
        assert!(
            frames[2].data.len() < 80,
            "{name}: frame 3 is not the handshake's ACK"
        );
        for (burst, from) in [(600, 0), (2_000, 3)] {
            let (flooded, counters, reasons) = run(&frames, burst, Flood::Syn, from);
            assert!(
                counter(&counters, "flow.memcap") > 0,
                "{name}: table never full"
            );
            assert_eq!(
                flooded, quiet,
                "{name}: verdicts changed under a flood of {burst} SYNs per packet"
            );
            assert!(
                !reasons.iter().any(|r| r == "flow memcap"),
                "{name}: the session was evicted by half-open flows: {reasons:?}"
            );
        }
        // Established-flow bursts larger than the table: the session's state is evicted
        // between packets.
        let (evicted, counters, reasons) = run(&frames, 2_000, Flood::Established, 0);
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
