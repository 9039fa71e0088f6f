//! What the engine tells its caller: verdicts, queued events, and the inspection seam.

use serde::Serialize;
use std::net::IpAddr;

use crate::app::AppLayer;
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
    /// Drop the packet (and with `flow`, the rest of its flow) and answer it: a TCP RST, or
    /// an ICMP port unreachable for other transports, to whom `to` says (Suricata's
    /// `reject`/`rejectsrc`, `rejectdst`, `rejectboth`). Inline, the engine builds the
    /// packets and hands them out through [`crate::Engine::poll_transmit`].
    Reject {
        /// Who gets the reset or error.
        to: RejectTo,
        /// The rest of the flow is dropped too.
        flow: bool,
    },
}

/// Who a reject answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectTo {
    /// The sender of the offending packet (`reject`, `rejectsrc`).
    Sender,
    /// Its receiver (`rejectdst`).
    Receiver,
    /// Both (`rejectboth`).
    Both,
}

impl RejectTo {
    /// Both targets of `self` and `other` together.
    pub fn union(self, other: RejectTo) -> RejectTo {
        if self == other {
            self
        } else {
            RejectTo::Both
        }
    }

    /// The sender is answered.
    pub fn sender(self) -> bool {
        self != RejectTo::Receiver
    }

    /// The receiver is answered.
    pub fn receiver(self) -> bool {
        self != RejectTo::Sender
    }
}

impl Verdict {
    /// The stricter of two verdicts: a drop wins over accept, a flow-wide drop over a packet
    /// drop, and reject targets add up (a reject is a drop that also answers).
    #[inline]
    pub fn and(self, other: Verdict) -> Verdict {
        // The per-packet common case: nothing to combine.
        if other == Verdict::Accept {
            return self;
        }
        if self == Verdict::Accept {
            return other;
        }
        let flow = self.is_flow_drop() || other.is_flow_drop();
        let to = match (self.reject_to(), other.reject_to()) {
            (Some(a), Some(b)) => Some(a.union(b)),
            (a, b) => a.or(b),
        };
        match to {
            Some(to) => Verdict::Reject { to, flow },
            None if flow => Verdict::DropFlow,
            None if self.is_drop() || other.is_drop() => Verdict::Drop,
            None => Verdict::Accept,
        }
    }

    /// True for every verdict but [`Verdict::Accept`].
    #[inline]
    pub fn is_drop(self) -> bool {
        self != Verdict::Accept
    }

    /// True when the rest of the flow is dropped too ([`Verdict::DropFlow`] or a flow-wide
    /// reject).
    #[inline]
    pub fn is_flow_drop(self) -> bool {
        matches!(self, Verdict::DropFlow | Verdict::Reject { flow: true, .. })
    }

    /// Who a reject answers (`None` for the other verdicts).
    #[inline]
    pub fn reject_to(self) -> Option<RejectTo> {
        match self {
            Verdict::Reject { to, .. } => Some(to),
            _ => None,
        }
    }
}

/// A packet the engine wants sent (a reject's TCP reset or ICMP error), as a raw IP packet
/// without link-layer header; see [`crate::Engine::poll_transmit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Time of the packet that caused it.
    pub ts: Timestamp,
    /// Flow of that packet.
    pub flow_id: u64,
    /// The whole IPv4 or IPv6 packet, checksums filled in.
    pub packet: Vec<u8>,
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

pub use crate::app::AppTxData;

/// A finished app-layer transaction (the protocol's EVE record).
///
/// Queued when the parser completes the transaction in both directions (at the packet that
/// completed it), or at flow end for transactions still open then (`flow_end`; Suricata logs
/// those with `pkt_src: "stream (flow timeout)"` and no `pcap_cnt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTxRecord {
    /// Time of the packet that completed it (flow end: the flow-end time).
    pub ts: Timestamp,
    /// That packet's 1-based number (0 when `flow_end`).
    pub pkt_num: u64,
    /// Flow the transaction belongs to.
    pub flow_id: u64,
    /// The flow's addresses, client → server (transaction records use flow orientation).
    pub tuple: PacketTuple,
    /// The flow's VLAN ids, outermost first.
    pub vlan: Vec<u16>,
    /// Transaction id within the flow (0-based, as EVE `tx_id`).
    pub tx_id: u64,
    /// What the parser extracted.
    pub app: AppTxData,
    /// Logged because the flow ended with the transaction still open.
    pub flow_end: bool,
}

/// An anomaly raised by an app-layer parser (EVE `anomaly` with `type: applayer`,
/// `layer: proto_parser`), queued on the packet whose data raised it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppAnomalyRecord {
    /// Time of that packet.
    pub ts: Timestamp,
    /// Its 1-based number (0 when raised by data flushed at flow end).
    pub pkt_num: u64,
    /// Flow the parser belongs to.
    pub flow_id: u64,
    /// Addresses of the packet Suricata logs it on. In IDS mode Suricata parses a
    /// direction's data when the peer acknowledges it, so the record is oriented receiver →
    /// sender of the data; inline (and at flow end) it is the data's own direction.
    pub tuple: PacketTuple,
    /// The flow's VLAN ids, outermost first.
    pub vlan: Vec<u16>,
    /// Transaction the event was set on (EVE `tx_id`); `None` for parser-level events.
    pub tx_id: Option<u64>,
    /// Protocol name as in EVE `app_proto`.
    pub app_proto: &'static str,
    /// Event name as in EVE `anomaly.event`, e.g. `INVALID_REPLY`.
    pub event: &'static str,
}

/// An exception policy applied to a packet (see [`crate::exception`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRecord {
    /// The packet it was applied to.
    pub packet: crate::records::PacketHead,
    /// Its TCP flags (0 for other transports).
    pub tcp_flags: u8,
    /// Its payload length.
    pub payload_len: usize,
    /// What the engine could not see.
    pub target: crate::ExceptionTarget,
    /// Why, in words (for `--explain`): the target's own [`crate::ExceptionTarget::cause`]
    /// or a more precise one (which app-layer budget ran out).
    pub cause: &'static str,
    /// What was done (resolved: never `auto`); in monitor mode what inline would do.
    pub action: crate::ExceptionAction,
    /// Inline: the action took effect.
    pub inline: bool,
}

/// An event the caller collects with [`crate::Engine::poll_event`].
///
/// App-layer bytes are NOT queued here: they go to [`Inspector::on_stream_data`] as borrowed
/// slices while the packet is processed, so payloads are never copied into an event queue.
#[derive(Debug, Clone)]
pub enum Event {
    /// A flow ended (timeout, TCP close + timeout, eviction or shutdown).
    FlowEnd(Box<FlowRecord>),
    /// A decoder anomaly.
    Decoder(DecoderEventRecord),
    /// An exception policy was applied.
    Exception(Box<ExceptionRecord>),
    /// The engine dropped a packet by itself, before any flow (inline: a packet it could
    /// not decode, reason `decode error`). Rate-limited (see [`crate::droplog`]); every
    /// such drop is counted.
    Drop(Box<crate::records::DropRecord>),
    /// A stream anomaly.
    Stream(StreamEventRecord),
    /// An app-layer transaction finished (never dropped by `max_queued_events`; bounded by
    /// the parser's own transaction cap).
    AppTx(Box<AppTxRecord>),
    /// An app-layer parser raised an anomaly (dropped beyond `max_queued_events` like
    /// decoder and stream anomalies). Queued before the [`Event::AppTx`] of the same packet.
    AppAnomaly(Box<AppAnomalyRecord>),
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
    /// ICMP / ICMPv6 type and code of the packet (`None` for other protocols).
    pub icmp: Option<(u8, u8)>,
    /// Transport payload (after TCP/UDP/ICMP header; after reassembly of IP fragments).
    pub payload: &'a [u8],
    /// Source address as the packet travelled.
    pub src_ip: IpAddr,
    /// Destination address as the packet travelled.
    pub dst_ip: IpAddr,
    /// Source port as the packet travelled (0 without ports).
    pub src_port: u16,
    /// Destination port as the packet travelled (0 without ports).
    pub dst_port: u16,
    /// TCP: the three-way handshake completed (state established or any later state, also
    /// after a midstream pickup). Other protocols: packets were seen in both directions
    /// before or with this packet.
    pub established: bool,
    /// First packet of the flow in this packet's direction.
    pub first_in_direction: bool,
    /// The flow's app-layer state (`None` before any payload or with the app layer off). In
    /// [`Inspector::on_packet`] the state before this packet's data, in
    /// [`Inspector::on_packet_end`] after it.
    pub app: Option<&'a AppLayer>,
    /// Packets of the flow so far, this one included.
    pub flow_pkts: u64,
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
/// Per packet attributed to a flow the engine calls, in order: [`Inspector::on_packet`]
/// (before the payload is used), then for each in-order chunk the packet releases the app
/// layer ([`crate::app`]) and [`Inspector::on_stream_data`], then
/// [`Inspector::on_packet_end`] (TCP state, reassembly and app layer up to date). The
/// packet's verdict is `on_packet.and(stream verdicts).and(on_packet_end)`.
///
/// The default methods accept everything, so `()` is a valid inspector (the engine's default).
/// Rule matching implements this; app-layer state is read through [`PacketContext::app`].
pub trait Inspector {
    /// Called once per decoded packet that was attributed to a flow, after the flow's counters
    /// were updated and BEFORE its payload goes to the TCP state machine, reassembly, the app
    /// layer and [`Inspector::on_stream_data`]. In inline mode ([`crate::EngineConfig::inline`])
    /// a drop verdict here keeps the packet from the receiver's stream and app layer (it never
    /// reaches `on_stream_data`); in monitor mode everything is delivered regardless.
    fn on_packet(&mut self, _pkt: &PacketContext<'_>) -> Verdict {
        Verdict::Accept
    }

    /// Called for in-order application bytes (TCP after reassembly, UDP per datagram), after
    /// the app layer was fed the same bytes.
    fn on_stream_data(&mut self, _chunk: &AppChunk<'_>) -> Verdict {
        Verdict::Accept
    }

    /// Called once per packet attributed to a flow (TCP, UDP, ICMP, other), after TCP state,
    /// reassembly, app-layer feeding and every `on_stream_data` of this packet; `pkt.app` is
    /// the state after this packet's data. Also called when `on_packet` dropped the packet
    /// inline (its data was then not delivered), so detection can still log. Inline, a
    /// [`Verdict::DropFlow`] here drops the rest of the flow like one from `on_packet`.
    /// Transactions the packet completed are still in the parser here; the engine queues
    /// their [`Event::AppTx`] after this call.
    fn on_packet_end(&mut self, _pkt: &PacketContext<'_>) -> Verdict {
        Verdict::Accept
    }

    /// Called (inline only) for a packet the engine drops without inspection because its flow
    /// was dropped earlier: no other hook runs for it. Lets detection log the drop (Suricata's
    /// `drop` records with reason `flow drop`).
    fn on_flow_drop(&mut self, _pkt: &PacketContext<'_>) {}

    /// Called (inline only) just before the packet's bytes are delivered to reassembly and
    /// the app layer, after [`Inspector::on_packet`] let it through. Return true when a drop
    /// of this packet may still come after delivery (from `on_stream_data` or
    /// `on_packet_end`) and keep what [`Inspector::rollback`] needs; the engine then keeps a
    /// copy of the flow's stream and app-layer state. False (the default): no drop after
    /// delivery is possible, nothing is copied.
    fn checkpoint(&mut self, _pkt: &PacketContext<'_>) -> bool {
        false
    }

    /// Called (inline only) when the packet of the last [`Inspector::checkpoint`] of this
    /// flow was dropped after delivery: the engine has put the flow's stream and app-layer
    /// state back as before the packet (it never reached the receiver, and its
    /// retransmission will be delivered and inspected afresh); forget what its bytes did to
    /// per-flow inspection state too.
    fn rollback(&mut self, _flow_id: u64) {}

    /// Called (inline only) when an exception policy decided this packet's verdict: a drop,
    /// reject or pass that no rule made. Lets the caller attribute the verdict (Suricata's
    /// `ips.drop_reason.*` counters).
    fn on_exception(&mut self, _target: crate::ExceptionTarget, _action: crate::ExceptionAction) {}

    /// Polled after [`Inspector::on_packet_end`]: detection could not see what a rule that
    /// can drop needs on this packet (a limit cut an evaluation short, a list it reads was
    /// truncated). The engine then applies that target's exception policy.
    fn take_exception(&mut self) -> Option<crate::ExceptionTarget> {
        None
    }

    /// Called just before a flow's [`Event::FlowEnd`] is queued (the engine has set the
    /// record's `app_proto*` fields); may set `alerted`/`action`/`app_proto` on the record.
    fn on_flow_end(&mut self, _record: &mut FlowRecord) {}

    /// Bytes of state the inspector keeps for every flow the engine tracks (its fixed part,
    /// with allocator and hash-map overhead), whether or not it exists yet: the engine counts
    /// them in `flow_memcap` when it sizes the flow table, so the cap bounds both.
    fn flow_state_bytes(&self) -> usize {
        0
    }

    /// Called once with the flow table's entry cap, so per-flow maps can be sized for it up
    /// front (no doubling and copying while a flood fills the table).
    fn reserve_flows(&mut self, _max_flows: usize) {}
}

impl Inspector for () {}
