//! Shared helpers: read a capture (through `sekisho-pcap`, the reader the drivers use) and
//! run it through an engine.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sekisho_pcap::{CaptureError, CaptureReader, OwnedPacket};

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

/// Every packet of a capture file, in file order, and the error that ended the file early
/// if one did. A record that cannot be read (a truncated or corrupt tail, such as the
/// oversized last record of suricata-verify's smtp-to-comma capture) ends the capture and
/// the packets before it count, as Suricata and tshark read such files. Errors only when
/// the file cannot be opened or is not a capture.
pub fn capture_packets(
    path: &Path,
) -> Result<(Vec<OwnedPacket>, Option<CaptureError>), CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let mut packets = Vec::new();
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => packets.push(OwnedPacket {
                ts: p.ts,
                link_type: p.link_type,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
                file: 0,
            }),
            Ok(None) => return Ok((packets, None)),
            Err(e) => return Ok((packets, Some(e))),
        }
    }
}

/// A capture's link type and frames, for feeding an engine; an error when the file cannot
/// be read or its link type is not one the engine decodes (or changes within the file).
pub fn capture_frames(path: &Path) -> Result<(LinkType, Vec<Frame>), String> {
    let (packets, _) = capture_packets(path).map_err(|e| e.to_string())?;
    // An empty capture: the link type does not matter, no frame is fed.
    let raw = packets.first().map_or(1, |p| p.link_type);
    if let Some(p) = packets.iter().find(|p| p.link_type != raw) {
        return Err(format!(
            "{}: link type changes from {raw} to {}",
            path.display(),
            p.link_type
        ));
    }
    let link = LinkType::from_linktype(raw)
        .ok_or_else(|| format!("{}: unsupported link type {raw}", path.display()))?;
    let frames = packets
        .into_iter()
        .map(|p| Frame {
            ts: Timestamp::from_secs_micros(p.ts.sec, u64::from(p.ts.usec())),
            data: p.data,
        })
        .collect();
    Ok((link, frames))
}

/// [`capture_frames`], panicking with the reason when the capture cannot be fed.
pub fn load_capture(path: &Path) -> (LinkType, Vec<Frame>) {
    capture_frames(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads a capture fixture of this crate (`tests/fixtures/NAME`): (link type, frames).
pub fn read_pcap(name: &str) -> (LinkType, Vec<Frame>) {
    load_capture(&fixture_path(name))
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
