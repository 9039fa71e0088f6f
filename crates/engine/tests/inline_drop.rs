//! Inline drop ordering on a real capture (curl against a local HTTP server, lo-http.pcap):
//! the inspector's packet verdict is decided before the payload reaches the stream, so inline
//! a dropped segment never shows up in the reassembled bytes; monitor mode delivers it.

mod common;

use common::*;
use sekisho_engine::{
    AppChunk, Direction, Engine, EngineConfig, Event, FlowAction, FlowRecord, Inspector,
    PacketContext, Timestamp, Verdict,
};

const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\n";

/// Answers `verdict` for the first `times` packets whose payload starts with `REQUEST`;
/// records stream bytes and which packets it was asked about.
struct Dropper {
    verdict: Verdict,
    times: usize,
    seen: Vec<(u64, u64)>,
    chunks: Vec<(u64, Direction, Vec<u8>, bool)>,
}

impl Dropper {
    fn new(verdict: Verdict, times: usize) -> Self {
        Dropper {
            verdict,
            times,
            seen: Vec::new(),
            chunks: Vec::new(),
        }
    }

    fn stream(&self, flow_id: u64, dir: Direction) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut gap = false;
        for c in self.chunks.iter().filter(|c| c.0 == flow_id && c.1 == dir) {
            out.extend_from_slice(&c.2);
            gap |= c.3;
        }
        (out, gap)
    }
}

impl Inspector for Dropper {
    fn on_packet(&mut self, p: &PacketContext<'_>) -> Verdict {
        self.seen.push((p.flow_id, p.pkt_num));
        if self.times > 0 && p.payload.starts_with(REQUEST) {
            self.times -= 1;
            return self.verdict;
        }
        Verdict::Accept
    }

    fn on_stream_data(&mut self, c: &AppChunk<'_>) -> Verdict {
        self.chunks
            .push((c.flow_id, c.direction, c.data.to_vec(), c.gap));
        Verdict::Accept
    }
}

struct Out {
    engine: Engine<Dropper>,
    flows: Vec<FlowRecord>,
    verdicts: Vec<Verdict>,
    /// Index (0-based, in the fed sequence) of the first request frame.
    request_at: usize,
}

/// Feeds lo-http.pcap; with `retransmit`, the request frame is fed a second time right after
/// the original, as the sender's retransmission would arrive after a drop.
fn feed(inline: bool, verdict: Verdict, times: usize, retransmit: bool) -> Out {
    let (link, frames) = read_pcap("lo-http.pcap");
    let cfg = EngineConfig {
        inline,
        ..no_csum()
    };
    let mut engine = Engine::with_inspector(cfg, Dropper::new(verdict, times));
    let mut seq: Vec<&Frame> = Vec::new();
    let mut request_at = usize::MAX;
    for f in &frames {
        seq.push(f);
        // Ethernet + IPv4 + TCP with options: the request is the first frame carrying it.
        if request_at == usize::MAX && f.data.windows(REQUEST.len()).any(|w| w == REQUEST) {
            request_at = seq.len() - 1;
            if retransmit {
                seq.push(f);
            }
        }
    }
    assert_ne!(request_at, usize::MAX, "fixture has the HTTP request");
    let mut events = Vec::new();
    let mut verdicts = Vec::new();
    let mut last = Timestamp(0);
    for f in seq {
        verdicts.push(engine.handle_packet(f.ts, link, &f.data));
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
        .into_iter()
        .filter_map(|e| match e {
            Event::FlowEnd(r) => Some(*r),
            _ => None,
        })
        .collect();
    Out {
        engine,
        flows,
        verdicts,
        request_at,
    }
}

fn flow(out: &Out, port: u16) -> &FlowRecord {
    out.flows
        .iter()
        .find(|f| f.src_port == port)
        .expect("flow present")
}

#[test]
fn inline_dropped_segment_never_reaches_the_stream() {
    let out = feed(true, Verdict::Drop, 1, false);
    assert_eq!(out.verdicts[out.request_at], Verdict::Drop);
    let f = flow(&out, 48918);
    let (req, gap) = out
        .engine
        .inspector()
        .stream(f.flow_id, Direction::ToServer);
    assert!(
        !req.windows(REQUEST.len()).any(|w| w == REQUEST),
        "dropped request leaked into the stream: {req:?}"
    );
    // Nothing after the hole was delivered in order before close; the hole is reported.
    assert!(gap || f.to_server.gap, "the missing segment is a gap");
    // The server's side (already in the capture) is unaffected.
    let (resp, _) = out
        .engine
        .inspector()
        .stream(f.flow_id, Direction::ToClient);
    assert!(resp.starts_with(b"HTTP/1.0 200 OK"));
    // Only the packet was dropped, not the flow.
    assert_eq!(f.action, None);
    assert_eq!(out.verdicts.iter().filter(|v| v.is_drop()).count(), 1);
}

#[test]
fn monitor_mode_delivers_what_the_inspector_would_drop() {
    let out = feed(false, Verdict::Drop, 1, false);
    assert_eq!(out.verdicts[out.request_at], Verdict::Drop);
    let f = flow(&out, 48918);
    let (req, gap) = out
        .engine
        .inspector()
        .stream(f.flow_id, Direction::ToServer);
    assert!(req.starts_with(REQUEST), "{req:?}");
    assert!(!gap);
}

#[test]
fn inline_retransmission_after_drop_fills_the_stream_once() {
    let out = feed(true, Verdict::Drop, 1, true);
    assert_eq!(out.verdicts[out.request_at], Verdict::Drop);
    assert_eq!(out.verdicts[out.request_at + 1], Verdict::Accept);
    let f = flow(&out, 48918);
    let (req, gap) = out
        .engine
        .inspector()
        .stream(f.flow_id, Direction::ToServer);
    assert!(req.starts_with(REQUEST), "{req:?}");
    let n = req.windows(REQUEST.len()).filter(|w| *w == REQUEST).count();
    assert_eq!(n, 1, "retransmitted request delivered exactly once");
    assert!(!gap && !f.to_server.gap);
    // Same bytes as a run where nothing was dropped.
    let plain = feed(true, Verdict::Accept, 0, false);
    let pf = flow(&plain, 48918);
    assert_eq!(
        req,
        plain
            .engine
            .inspector()
            .stream(pf.flow_id, Direction::ToServer)
            .0
    );
}

#[test]
fn inline_flow_drop_drops_the_rest_of_the_flow_uninspected() {
    let out = feed(true, Verdict::DropFlow, 1, false);
    let f = flow(&out, 48918);
    assert_eq!(f.action, Some(FlowAction::Drop));
    let ins = out.engine.inspector();
    // The inspector saw the flow up to and including the request, nothing after it.
    let last_seen = ins
        .seen
        .iter()
        .filter(|s| s.0 == f.flow_id)
        .map(|s| s.1)
        .max()
        .expect("flow inspected");
    assert_eq!(last_seen, out.request_at as u64 + 1, "pkt_num is 1-based");
    // Every later packet of the flow was dropped: the response never reached the client side.
    let (resp, _) = ins.stream(f.flow_id, Direction::ToClient);
    assert!(resp.is_empty(), "{resp:?}");
    // Flow packets = inspected ones + the later ones dropped without inspection.
    let drops = out
        .verdicts
        .iter()
        .filter(|v| **v == Verdict::DropFlow)
        .count() as u64;
    let inspected = ins.seen.iter().filter(|s| s.0 == f.flow_id).count() as u64;
    assert!(drops > 1, "later packets of the flow were dropped too");
    assert_eq!(f.to_server.pkts + f.to_client.pkts, inspected + drops - 1);
    // Other flows are untouched.
    let other = flow(&out, 48934);
    assert_eq!(other.action, None);
    let (resp, _) = ins.stream(other.flow_id, Direction::ToClient);
    assert!(resp.starts_with(b"HTTP/1.0 404"));
}
