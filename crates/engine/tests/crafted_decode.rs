//! The crafted captures of tests/fixtures/captures/crafted (made by
//! scripts/captures/make-crafted-captures.sh) through the whole engine: the decoder fails
//! closed. Fragments that contradict each other deliver nothing, extension headers behind an
//! IPv6 Fragment header do not hide TCP/25, and a tunnel's malformed inner packet is an error,
//! never the outer UDP packet.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sekisho_engine::{
    AppChunk, DecodeEvent, Direction, Engine, EngineConfig, Event, FlowRecord, Inspector,
    PacketContext, Timestamp, Verdict,
};

const RCPT: &[u8] = b"RCPT TO:<b@yahoo.example>";

/// Collects what the engine delivers: packets (protocol, ports, payload) and stream bytes per
/// flow and direction.
#[derive(Default)]
struct Collect {
    packets: Vec<(u8, u16, u16, Vec<u8>)>,
    streams: BTreeMap<(u64, usize), Vec<u8>>,
}

impl Inspector for Collect {
    fn on_packet(&mut self, p: &PacketContext<'_>) -> Verdict {
        self.packets
            .push((p.proto, p.src_port, p.dst_port, p.payload.to_vec()));
        Verdict::Accept
    }

    fn on_stream_data(&mut self, chunk: &AppChunk<'_>) -> Verdict {
        self.streams
            .entry((chunk.flow_id, chunk.direction.index()))
            .or_default()
            .extend_from_slice(chunk.data);
        Verdict::Accept
    }
}

struct Replay {
    engine: Engine<Collect>,
    flows: Vec<FlowRecord>,
    events: Vec<DecodeEvent>,
}

impl Replay {
    /// Whether anything delivered (a packet payload or a stream) contains `needle`.
    fn delivered(&self, needle: &[u8]) -> bool {
        let c = self.engine.inspector();
        let has = |v: &[u8]| v.windows(needle.len()).any(|w| w == needle);
        c.packets.iter().any(|p| has(&p.3)) || c.streams.values().any(|s| has(s))
    }

    /// The client-to-server stream of the TCP/25 flow (which must exist).
    fn smtp_client_stream(&self) -> &[u8] {
        let f = self
            .flows
            .iter()
            .find(|f| f.proto == 6 && f.dst_port == 25)
            .unwrap_or_else(|| panic!("no TCP/25 flow: {:#?}", self.flows));
        self.engine
            .inspector()
            .streams
            .get(&(f.flow_id, Direction::ToServer.index()))
            .map_or(&[][..], Vec::as_slice)
    }
}

/// Replays one crafted capture (checksums validated, as by default) and collects the flows
/// and decoder events.
fn replay(name: &str) -> Replay {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/crafted")
        .join(name);
    let (link, frames) = common::load_capture(&path);
    let mut engine = Engine::with_inspector(EngineConfig::default(), Collect::default());
    let mut all = Vec::new();
    let mut last = Timestamp(0);
    for f in &frames {
        engine.handle_packet(f.ts, link, &f.data);
        last = f.ts;
        all.extend(std::iter::from_fn(|| engine.poll_event()));
    }
    engine.finish(last);
    all.extend(std::iter::from_fn(|| engine.poll_event()));
    let mut flows = Vec::new();
    let mut events = Vec::new();
    for e in all {
        match e {
            Event::FlowEnd(r) => flows.push(*r),
            Event::Decoder(d) => events.push(d.event),
            _ => {}
        }
    }
    Replay {
        engine,
        flows,
        events,
    }
}

#[test]
fn ipv4_fragments_beyond_the_datagrams_end_deliver_nothing() {
    let r = replay("ipv4-frag-beyond-end.pcap");
    let s = r.engine.stats();
    assert_eq!(s.defrag.ipv4_fragments, 4);
    assert_eq!(s.defrag.ipv4_reassembled, 0, "no datagram delivered");
    assert!(
        r.events.contains(&DecodeEvent::Ipv4FragIgnored),
        "{:?}",
        r.events
    );
    assert_eq!(
        s.decoder.invalid, 1,
        "the last fragment discards the datagram"
    );
    assert!(!r.delivered(b"b@yahoo.example"));
    assert!(
        !r.delivered(b"XXXXXXXX"),
        "nor the fragments beyond the end"
    );
    // The rest of the session is there: the RCPT bytes are a hole in the client stream.
    let client = r.smtp_client_stream();
    assert!(client.starts_with(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"));
}

#[test]
fn ipv4_overlap_with_different_data_discards_the_datagram() {
    let r = replay("ipv4-frag-overlap-rcpt.pcap");
    let s = r.engine.stats();
    assert_eq!(s.defrag.ipv4_fragments, 3);
    assert_eq!(s.defrag.ipv4_reassembled, 0);
    assert!(
        r.events.contains(&DecodeEvent::Ipv4FragOverlap),
        "{:?}",
        r.events
    );
    // The second copy discards the datagram, the TCP header arriving last is dropped too.
    assert!(r.events.contains(&DecodeEvent::Ipv4FragIgnored));
    assert_eq!(s.decoder.invalid, 2);
    // Neither the recipient (second copy) nor the harmless first copy: the datagram is gone.
    assert!(!r.delivered(b"b@yahoo.example"));
    assert!(!r.delivered(b"NOOP"));
    let client = r.smtp_client_stream();
    assert!(client.starts_with(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"));
}

#[test]
fn ipv6_destination_options_behind_the_fragment_header_are_seen_through() {
    let r = replay("ipv6-frag-dstopts-smtp.pcap");
    let s = r.engine.stats();
    assert_eq!(s.defrag.ipv6_reassembled, 9, "every client packet");
    assert_eq!(s.decoder.invalid, 0);
    assert!(r.events.is_empty(), "{:?}", r.events);
    assert!(
        r.flows.iter().all(|f| f.proto == 6),
        "no flow of protocol 60: {:#?}",
        r.flows
    );
    assert_eq!(r.flows.len(), 1);
    let client = r.smtp_client_stream();
    assert!(
        client.windows(RCPT.len()).any(|w| w == RCPT),
        "{}",
        String::from_utf8_lossy(client)
    );
    assert!(client.ends_with(b"QUIT\r\n"));
}

/// The valid tunnelled session: only the inner TCP/25 flow, the recipient in its stream.
fn tunnelled_session(name: &str, port: u16) {
    let r = replay(name);
    assert_eq!(r.engine.stats().decoder.invalid, 0, "{name}");
    assert!(
        !r.flows.iter().any(|f| f.proto == 17 && f.dst_port == port),
        "{name}: no outer UDP flow: {:#?}",
        r.flows
    );
    assert_eq!(r.flows.len(), 1, "{name}");
    let client = r.smtp_client_stream();
    assert!(client.windows(RCPT.len()).any(|w| w == RCPT), "{name}");
}

/// The malformed inner packets: decode errors, no flow at all (the outer UDP packet does not
/// stand in for them).
fn malformed_inner(name: &str, port: u16) {
    let r = replay(name);
    assert!(
        !r.flows.iter().any(|f| f.proto == 17 && f.dst_port == port),
        "{name}: the outer UDP packet is not what the engine sees: {:#?}",
        r.flows
    );
    assert!(r.flows.is_empty(), "{name}: {:#?}", r.flows);
    assert!(r.engine.inspector().packets.is_empty(), "{name}");
    assert_eq!(r.engine.stats().decoder.invalid, 2, "{name}");
    assert!(r.events.contains(&DecodeEvent::Ipv4PktTooSmall), "{name}");
    assert!(r.events.contains(&DecodeEvent::Ipv4TruncPkt), "{name}");
    assert!(!r.delivered(b"b@yahoo.example"), "{name}");
}

#[test]
fn vxlan_inner_session_is_seen_and_a_malformed_inner_packet_is_an_error() {
    tunnelled_session("vxlan-smtp.pcap", 4789);
    malformed_inner("vxlan-malformed-inner.pcap", 4789);
}

#[test]
fn geneve_inner_session_is_seen_and_a_malformed_inner_packet_is_an_error() {
    tunnelled_session("geneve-smtp.pcap", 6081);
    malformed_inner("geneve-malformed-inner.pcap", 6081);
}
