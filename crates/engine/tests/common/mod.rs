//! Shared helpers: read a fixture pcap (pcap-parser) and run it through an engine.
#![allow(dead_code)]

use std::path::PathBuf;

use sekisho_engine::{
    AppChunk, Direction, Engine, EngineConfig, Event, FlowRecord, Inspector, LinkType, Timestamp,
    Verdict,
};

/// One captured frame.
#[derive(Clone)]
pub struct Frame {
    pub ts: Timestamp,
    pub data: Vec<u8>,
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Reads a classic pcap fixture: (link type, frames).
pub fn read_pcap(name: &str) -> (LinkType, Vec<Frame>) {
    let bytes = std::fs::read(fixture_path(name)).expect("fixture readable");
    let (_, cap) = pcap_parser::parse_pcap(&bytes).expect("valid pcap");
    let link = LinkType::from_linktype(cap.header.network.0 as u32).expect("supported link");
    let frames = cap
        .blocks
        .iter()
        .map(|b| Frame {
            ts: Timestamp::from_secs_micros(u64::from(b.ts_sec), u64::from(b.ts_usec)),
            data: b.data.to_vec(),
        })
        .collect();
    (link, frames)
}

/// Collects stream bytes per (flow, direction) and counts packets.
#[derive(Default)]
pub struct Collector {
    pub chunks: Vec<(u64, Direction, Vec<u8>, bool)>,
    pub packets: u64,
}

impl Collector {
    /// All bytes of one flow direction, concatenated.
    pub fn stream(&self, flow_id: u64, dir: Direction) -> Vec<u8> {
        self.chunks
            .iter()
            .filter(|c| c.0 == flow_id && c.1 == dir)
            .flat_map(|c| c.2.iter().copied())
            .collect()
    }
}

impl Inspector for Collector {
    fn on_packet(&mut self, _pkt: &sekisho_engine::PacketContext<'_>) -> Verdict {
        self.packets += 1;
        Verdict::Accept
    }
    fn on_stream_data(&mut self, c: &AppChunk<'_>) -> Verdict {
        self.chunks
            .push((c.flow_id, c.direction, c.data.to_vec(), c.gap));
        Verdict::Accept
    }
}

/// Output of a run.
pub struct Run {
    pub engine: Engine<Collector>,
    pub flows: Vec<FlowRecord>,
    pub events: Vec<Event>,
}

impl Run {
    pub fn flow_by_port(&self, port: u16) -> &FlowRecord {
        self.flows
            .iter()
            .find(|f| f.src_port == port || f.dst_port == port)
            .unwrap_or_else(|| panic!("no flow with port {port}: {:#?}", self.flows))
    }
}

/// Feeds frames, then `finish`, and collects every event.
pub fn run_frames(cfg: EngineConfig, link: LinkType, frames: &[Frame]) -> Run {
    let mut engine = Engine::with_inspector(cfg, Collector::default());
    let mut events = Vec::new();
    let mut last = Timestamp(0);
    for f in frames {
        engine.handle_packet(f.ts, link, &f.data);
        last = f.ts;
        while let Some(e) = engine.poll_event() {
            events.push(e);
        }
    }
    engine.finish(last);
    while let Some(e) = engine.poll_event() {
        events.push(e);
    }
    let flows = events
        .iter()
        .filter_map(|e| match e {
            Event::FlowEnd(r) => Some((**r).clone()),
            _ => None,
        })
        .collect();
    Run {
        engine,
        flows,
        events,
    }
}

pub fn run(cfg: EngineConfig, name: &str) -> Run {
    let (link, frames) = read_pcap(name);
    run_frames(cfg, link, &frames)
}

/// Config for captures taken on the sending host (checksum offload leaves them wrong).
pub fn no_csum() -> EngineConfig {
    EngineConfig {
        checksums: sekisho_engine::ChecksumMode::None,
        ..EngineConfig::default()
    }
}
