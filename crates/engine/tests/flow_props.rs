//! Property tests of the flow table and TCP tracking: random interleavings of real frames
//! (tests/fixtures/ns-tcp.pcap) with rewritten client ports, TCP flags and times, through a
//! small table so eviction, timeouts and port reuse all happen.

mod common;

use common::*;
use proptest::prelude::*;
use sekisho_engine::{ChecksumMode, Engine, EngineConfig, Event, LinkType, Timestamp};

#[derive(Debug, Clone)]
struct Step {
    template: usize,
    port: u16,
    flags: Option<u8>,
    advance_ms: u32,
    timeout_call: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..12,
        0u16..5,
        prop::option::of(any::<u8>()),
        prop_oneof![0u32..50, 0u32..700_000],
        prop::bool::weighted(0.05),
    )
        .prop_map(|(template, port, flags, advance_ms, timeout_call)| Step {
            template,
            port: 40000 + port,
            flags,
            advance_ms,
            timeout_call,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_flow_ends_once_and_counts_add_up(
        steps in prop::collection::vec(step(), 1..120),
        cap in 1usize..6,
        midstream in any::<bool>(),
    ) {
        let (link, frames) = read_pcap("ns-tcp.pcap");
        assert_eq!(link, LinkType::Ethernet);
        let cfg = EngineConfig {
            checksums: ChecksumMode::None,
            max_flows: Some(cap),
            midstream,
            ..EngineConfig::default()
        };
        let mut e = Engine::with_inspector(cfg, Collector::default());
        let mut ts = frames[0].ts;
        let mut records = Vec::new();
        for s in &steps {
            let mut f = frames[s.template].data.clone();
            // Client port lives in the source field of client frames (src 10.99.0.1).
            let at = if f[29] == 1 { 34 } else { 36 };
            f[at..at + 2].copy_from_slice(&s.port.to_be_bytes());
            if let Some(fl) = s.flags {
                f[47] = fl;
            }
            ts = Timestamp(ts.0 + u64::from(s.advance_ms) * 1000);
            e.handle_packet(ts, link, &f);
            if s.timeout_call {
                e.handle_timeout(ts);
            }
            prop_assert!(e.active_flows() <= cap);
            while let Some(ev) = e.poll_event() {
                if let Event::FlowEnd(r) = ev {
                    records.push(r);
                }
            }
        }
        e.finish(ts);
        while let Some(ev) = e.poll_event() {
            if let Event::FlowEnd(r) = ev {
                records.push(r);
            }
        }
        prop_assert_eq!(e.active_flows(), 0);
        prop_assert_eq!(records.len() as u64, e.stats().flow.total);
        let pkts: u64 = records.iter().map(|r| r.to_server.pkts + r.to_client.pkts).sum();
        prop_assert_eq!(pkts, steps.len() as u64, "every packet counted in exactly one flow");
        let mut ids: Vec<u64> = records.iter().map(|r| r.flow_id).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), records.len(), "flow ids unique");
        for r in &records {
            prop_assert!(r.flow_id < 1 << 51);
            prop_assert!(r.start <= r.end);
            prop_assert!(r.to_server.pkts > 0 || r.to_client.pkts > 0);
            prop_assert!(r.to_server.min_ttl <= r.to_server.max_ttl);
            prop_assert_eq!(r.src_port == 8080, r.dst_port != 8080);
        }
    }
}
