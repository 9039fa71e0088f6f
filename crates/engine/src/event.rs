//! What the engine tells its caller: verdicts, queued events, and the inspection seam.

use serde::Serialize;
use std::net::IpAddr;

use crate::decode::DecodeEvent;
use crate::flow::FlowRecord;
use crate::time::Timestamp;

/// What to do with a packet. Without detection the engine always answers [`Verdict::Accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Let the packet through.
    #[default]
    Accept,
    /// Drop the packet (IPS/firewall mode).
    Drop,
    /// Drop the packet and every later packet of its flow (inline mode: the flow's action
    /// becomes [`crate::FlowAction::Drop`] and later packets are dropped uninspected).
    DropFlow,
}

impl Verdict {
    /// The stricter of two verdicts (DropFlow, then Drop, win over Accept).
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::DropFlow, _) | (_, Verdict::DropFlow) => Verdict::DropFlow,
            (Verdict::Drop, _) | (_, Verdict::Drop) => Verdict::Drop,
            _ => Verdict::Accept,
        }
    }

    /// True for [`Verdict::Drop`] and [`Verdict::DropFlow`].
    pub fn is_drop(self) -> bool {
        self != Verdict::Accept
    }
}

/// Direction of a packet within its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the client (sender of the SYN, else of the first packet) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    /// The other direction.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    /// `0` for to_server, `1` for to_client (index into per-direction arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Addresses of the packet a per-packet event is about, oriented as the packet travelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketTuple {
    /// Source address.
    pub src_ip: IpAddr,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Source port (0 for protocols without ports).
    pub src_port: u16,
    /// Destination port (0 for protocols without ports).
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub proto: u8,
}

/// A decoder anomaly on one packet (EVE `anomaly` with `type: decode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecoderEventRecord {
    /// Time of the packet.
    pub ts: Timestamp,
    /// 1-based number of the packet since the engine started (EVE `pcap_cnt` when replaying).
    pub pkt_num: u64,
    /// Which anomaly.
    pub event: DecodeEvent,
    /// Addresses, when the decoder got far enough to know them.
    pub tuple: Option<PacketTuple>,
    /// VLAN ids on the packet (outermost first).
    pub vlan: Vec<u16>,
    /// The flow the packet was attributed to, if it got that far.
    pub flow_id: Option<u64>,
}

/// A stream (TCP reassembly/state) anomaly on one packet (EVE `anomaly` with `type: stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamEventRecord {
    /// Time of the packet.
    pub ts: Timestamp,
    /// 1-based packet number.
    pub pkt_num: u64,
    /// Suricata-style event name without the `stream.` prefix, e.g. `pkt_invalid_ack`.
    pub event: &'static str,
    /// Flow the event belongs to.
    pub flow_id: u64,
    /// Direction of the packet that raised it.
    pub direction: Direction,
}

/// An event the caller collects with [`crate::Engine::poll_event`].
///
/// App-layer bytes are NOT queued here: they go to [`Inspector::on_stream_data`] as borrowed
/// slices while the packet is processed, so payloads are never copied into an event queue.
#[derive(Debug, Clone, Serialize)]
pub enum Event {
    /// A flow ended (timeout, TCP close + timeout, eviction or shutdown).
    FlowEnd(Box<FlowRecord>),
    /// A decoder anomaly.
    Decoder(DecoderEventRecord),
    /// A stream anomaly.
    Stream(StreamEventRecord),
}

/// Per-packet facts handed to an [`Inspector`] (borrowed from the engine's buffers).
#[derive(Debug, Clone, Copy)]
pub struct PacketContext<'a> {
    /// Time of the packet.
    pub ts: Timestamp,
    /// 1-based packet number.
    pub pkt_num: u64,
    /// Flow the packet belongs to.
    pub flow_id: u64,
    /// Direction within the flow.
    pub direction: Direction,
    /// IP protocol number.
    pub proto: u8,
    /// TCP flags of the packet (0 for non-TCP).
    pub tcp_flags: u8,
    /// Transport payload (after TCP/UDP/ICMP header; after reassembly of IP fragments).
    pub payload: &'a [u8],
}

/// Stream data handed to an [`Inspector`]: in-order application bytes of one direction.
#[derive(Debug, Clone, Copy)]
pub struct AppChunk<'a> {
    /// Time of the packet that released these bytes.
    pub ts: Timestamp,
    /// Flow the bytes belong to.
    pub flow_id: u64,
    /// Which side sent them.
    pub direction: Direction,
    /// In-order bytes (for UDP: one datagram's payload).
    pub data: &'a [u8],
    /// True when bytes are missing before `data` (a gap the reassembler could not fill).
    pub gap: bool,
}

/// The detection seam: called synchronously by the engine, may drop.
///
/// The default methods accept everything, so `()` is a valid inspector (the engine's default).
/// Later layers (app-layer parsers, rule matching) implement this; the engine itself never
/// interprets payload.
pub trait Inspector {
    /// Called once per decoded packet that was attributed to a flow, after the flow's counters
    /// were updated and BEFORE its payload goes to the TCP state machine, reassembly and
    /// [`Inspector::on_stream_data`]. In inline mode ([`crate::EngineConfig::inline`]) a drop
    /// verdict here keeps the packet from the receiver's stream (it never reaches
    /// `on_stream_data`); in monitor mode everything is delivered regardless.
    fn on_packet(&mut self, _pkt: &PacketContext<'_>) -> Verdict {
        Verdict::Accept
    }

    /// Called for in-order application bytes (TCP after reassembly, UDP per datagram).
    fn on_stream_data(&mut self, _chunk: &AppChunk<'_>) -> Verdict {
        Verdict::Accept
    }

    /// Called just before a flow's [`Event::FlowEnd`] is queued; may set `alerted`/`action`/
    /// `app_proto` on the record.
    fn on_flow_end(&mut self, _record: &mut FlowRecord) {}
}

impl Inspector for () {}
