//! Fuzz target: arbitrary bytes as a sequence of frames through `Engine::handle_packet`, for
//! every link type. Input layout: byte 0 picks the link type; then records of
//! `[len_hi, len_lo, frame...]` so one input can build flows, fragments and TCP state across
//! several packets. Invariants: no panic, bounded memory (tiny caps), every flow ends exactly
//! once, counters agree with what was fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_engine::{
    ChecksumMode, DefragConfig, Engine, EngineConfig, Event, LinkType, Timestamp,
};

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
    LinkType::Loop,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let cfg = EngineConfig {
        // Fuzzed checksums are almost never right; validate on odd selectors only.
        checksums: if sel & 0x80 != 0 {
            ChecksumMode::Validate
        } else {
            ChecksumMode::None
        },
        midstream: sel & 0x40 != 0,
        max_flows: Some(16),
        defrag: DefragConfig {
            max_trackers: 8,
            max_frags_per_datagram: 8,
            memcap: 64 * 1024,
            timeout_secs: 5,
        },
        stream_memcap: 256 * 1024,
        reassembly_memcap: 256 * 1024,
        max_queued_events: 1024,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let mut ts = Timestamp::from_secs_micros(1_700_000_000, 0);
    let mut fed = 0u64;
    let mut ended = 0u64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let frame = &rest[..len.min(rest.len())];
        rest = &rest[frame.len()..];
        // Let time advance by the length's low bits (seconds), so timeouts fire too.
        ts = ts.add_secs(u64::from(len as u8 & 0x3f));
        engine.handle_packet(ts, link, frame);
        fed += 1;
        while let Some(ev) = engine.poll_event() {
            ended += u64::from(matches!(ev, Event::FlowEnd(_)));
        }
    }
    engine.finish(ts);
    while let Some(ev) = engine.poll_event() {
        ended += u64::from(matches!(ev, Event::FlowEnd(_)));
    }
    let s = engine.stats();
    assert_eq!(s.decoder.pkts, fed);
    assert_eq!(engine.active_flows(), 0);
    assert_eq!(ended, s.flow.total);
});
