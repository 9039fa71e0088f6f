//! The flow table: one entry per normalised 5-tuple (+ VLAN ids), TCP state, timeouts, caps.
//!
//! # Key and direction
//! [`FlowKey`] orders the two (address, port) endpoints so both directions of a conversation
//! find the same entry with one hash lookup. The client (to_server side) is the sender of the
//! first packet, except that a flow whose first packet is a TCP SYN/ACK is oriented from the
//! SYN/ACK's receiver (we missed the SYN). For tunnels (GENEVE, VXLAN, IP-in-IPv6) the inner
//! packet is what is tracked, and the tunnel depth is part of the key unless
//! [`crate::EngineConfig::recursion_tracking`] is off. ICMP flows use `type | code << 8` and
//! the counterpart type (echo request ↔ reply, ...) in place of ports, so a request and its
//! reply share a flow but two messages of one type in the same direction pair up only with
//! their own kind; the record's ports stay 0.
//!
//! # flow_id
//! As Suricata's `FlowGetId`: `((start_sec & 0xFFFF) << 48 | (start_usec & 0xFFFF) << 32 |
//! hash32) & 0x7_FFFF_FFFF_FFFF` where `hash32` is a seeded foldhash of the normalised key and
//! the flow's creation number in this engine ([`crate::EngineConfig::flow_id_seed`], default 0,
//! so the same input gives the same ids run to run; the creation number keeps two flows of one
//! tuple that start in the same microsecond apart). Below 2^51 so
//! JSON consumers using doubles keep it exact; a new flow on the same tuple gets a new id
//! because its start time differs.
//!
//! # Hashing
//! The table uses `foldhash` with a per-process random seed (fast, and an attacker cannot
//! precompute colliding tuples); the flow id uses the fixed-seed variant.
//!
//! # Timeouts
//! Each flow times out after the idle time of its protocol and state ([`FlowTimeouts`]),
//! measured from its last packet. Flows are kept in a least-recently-seen list; a timeout pass
//! walks it from the oldest and stops at the first flow idle for less than the smallest
//! configured timeout, so only candidates are visited.
//!
//! # Cap and policy when full
//! The table holds at most `max_flows` entries (`EngineConfig::max_flows`, else as many as
//! fit in `flow_memcap`, counting the slot array and hash map allocated at that cap, each
//! flow's boxed TCP session and the inspector's per-flow state:
//! [`FlowTable::cap_for`]). When a new flow arrives at a full table:
//! `flow.memcap` is counted, the table enters **emergency mode** (`flow.emerg_mode_entered`)
//! and a flow is **evicted** (ended with reason `forced`, `emergency: true`, counted in
//! `flow.mgr.flows_evicted_emergency`) to make room, so new traffic is always tracked: the
//! least recently seen flow that is not established (half-open, one-sided or closed) among
//! the [`EVICT_SCAN`] least recently seen, else the least recently seen flow
//! ([`FlowTable::eviction_victim`]; conntrack's early drop). A SYN flood therefore evicts its
//! own half-open flows and established sessions keep their state; only a table full of
//! established flows evicts one of them. In emergency mode the shorter `emergency_*` timeouts apply;
//! the mode ends (`flow.emerg_mode_over`) once a timeout pass brings the table below
//! `(100 - emergency_recovery_pct)%` of the cap. TCP reassembly buffers are not part of this
//! budget; they have their own (`EngineConfig::stream_memcap`).

mod record;

pub use record::{DirStats, FlowAction, FlowEndReason, FlowRecord, FlowState, TcpState};

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::app::{AppLayer, AppProto};
use crate::config::{FlowTimeouts, ProtoTimeouts};
use crate::decode::{tcp_flags, Packet, TcpInfo, Transport};
use crate::event::Direction;
use crate::reassembly::StreamReassembler;
use crate::time::Timestamp;

/// Normalised flow identity: the lower (address, port) endpoint first, plus proto and VLANs.
///
/// Stored as six machine words so hashing is six word writes and equality six word compares:
/// both run once per packet. Words 0-1 and 2-3 are the two addresses (IPv4 in the low 32 bits
/// of the first word), word 4 packs the ports, protocol and IP version, word 5 the VLAN ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    w: [u64; 6],
}

/// An address as two words (IPv4: the address in word 0, word 1 zero).
#[inline]
fn ip_words(ip: IpAddr) -> (u64, u64) {
    match ip {
        IpAddr::V4(a) => (u64::from(a.to_bits()), 0),
        IpAddr::V6(a) => {
            let v = a.to_bits();
            ((v >> 64) as u64, v as u64)
        }
    }
}

impl std::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for w in self.w {
            state.write_u64(w);
        }
    }
}

impl FlowKey {
    /// The key of a decoded packet at tunnel depth `depth` (its `tunnel_depth`, or 0 when
    /// recursion tracking is off).
    ///
    /// ICMP messages use `type | code << 8` as source "port" and the counterpart type
    /// (echo request ↔ reply, ...) as destination "port", so a request and its reply share a
    /// flow while a reply travelling the same way as an earlier request does not (as Suricata
    /// keys ICMP). The tunnel depth is part of the key: an inner packet never joins a flow of
    /// the outer layer (Suricata's `decoder.recursion-level.use-for-tracking`, on by default).
    #[inline]
    pub fn from_packet(p: &Packet<'_>, depth: u8) -> FlowKey {
        let (sp, dp) = match p.transport {
            Transport::Icmp { icmp_type, code } => (
                u16::from(icmp_type) | u16::from(code) << 8,
                u16::from(icmp_counterpart(icmp_type, p.proto == 58).unwrap_or(0)),
            ),
            _ => (p.src_port, p.dst_port),
        };
        Self::new(p.src, sp, p.dst, dp, p.proto, p.vlan).at_depth(depth)
    }

    /// The same key at tunnel depth `depth` (0 = outermost packet).
    #[inline]
    pub fn at_depth(mut self, depth: u8) -> FlowKey {
        self.w[4] |= u64::from(depth) << 48;
        self
    }

    /// The key of a tuple (either orientation gives the same key).
    #[inline]
    pub fn new(
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
        proto: u8,
        vlan: [u16; 3],
    ) -> FlowKey {
        let (s0, s1) = ip_words(src);
        let (d0, d1) = ip_words(dst);
        // Any total order works as long as both directions agree.
        let s = (s0, s1, src_port);
        let d = (d0, d1, dst_port);
        let (lo, hi) = if s <= d { (s, d) } else { (d, s) };
        FlowKey {
            w: [
                lo.0,
                lo.1,
                hi.0,
                hi.1,
                u64::from(lo.2)
                    | u64::from(hi.2) << 16
                    | u64::from(proto) << 32
                    | u64::from(src.is_ipv6()) << 40,
                u64::from(vlan[0]) | u64::from(vlan[1]) << 16 | u64::from(vlan[2]) << 32,
            ],
        }
    }
}

/// The ICMP type that answers `t` (and the reverse), if the message is one half of a
/// request/reply pair: echo, timestamp, information, address mask, router discovery; for
/// ICMPv6 echo, multicast listener query/report, router and neighbour discovery, node
/// information.
fn icmp_counterpart(t: u8, v6: bool) -> Option<u8> {
    let pairs: &[(u8, u8)] = if v6 {
        &[(128, 129), (130, 131), (133, 134), (135, 136), (139, 140)]
    } else {
        &[(8, 0), (13, 14), (15, 16), (17, 18), (10, 9)]
    };
    pairs.iter().find_map(|&(a, b)| {
        if t == a {
            Some(b)
        } else if t == b {
            Some(a)
        } else {
            None
        }
    })
}

/// Per-flow TCP tracking.
#[derive(Debug, Clone)]
pub(crate) struct TcpSession {
    pub state: TcpState,
    /// Sequence number one past each side's FIN (what the peer's ACK must reach).
    fin_end: [Option<u32>; 2],
    /// Reassemblers per direction, created from the SYN (or first segment on pickup).
    pub streams: [Option<StreamReassembler>; 2],
    /// Reassembly enabled for this session (false for midstream flows with midstream off).
    pub reassemble: bool,
    /// The SYN carried the timestamps option (RFC 7323).
    syn_ts: bool,
    /// Both SYN and SYN/ACK carried timestamps: segments are checked against PAWS.
    ts_negotiated: bool,
    /// Newest TSval each side sent, and when (packet time).
    last_ts: [Option<(u32, Timestamp)>; 2],
}

/// How long a TSval stays comparable (RFC 7323 §5.5: 24 days).
const PAWS_IDLE_US: u64 = 24 * 86_400 * 1_000_000;

/// A tracked flow.
#[derive(Debug)]
pub(crate) struct Flow {
    pub flow_id: u64,
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
    pub proto: u8,
    pub icmp: Option<(u8, u8)>,
    pub icmp_response: Option<(u8, u8)>,
    pub vlan: [u16; 3],
    pub vlan_count: u8,
    pub dirs: [DirStats; 2],
    pub start: Timestamp,
    pub last: Timestamp,
    pub tcp: Option<Box<TcpSession>>,
    pub midstream: bool,
    pub alerted: bool,
    pub action: Option<FlowAction>,
    /// App-layer state, created on the first payload byte (boxed: most flows have none).
    pub app: Option<Box<AppLayer>>,
    /// TCP handshake completed at some point (UDP/other: both directions seen).
    pub established: bool,
    /// Exception policies applied, each target once (at most one entry per target).
    pub exceptions: Vec<(crate::ExceptionTarget, crate::ExceptionAction)>,
    /// An exception policy passed the rest of the flow (`pass-flow`, `bypass`): later
    /// packets are accepted without inspection.
    pub bypass: bool,
    /// A TCP flow whose session could not be allocated under `stream.memcap`: it has no
    /// `tcp` session, and the `stream_memcap` exception policy applies to its packets.
    pub ssn_refused: bool,
}

impl Flow {
    /// Gives a flow refused a session earlier its session (the caller charged it).
    pub fn grant_session(&mut self) {
        self.tcp = Some(Box::new(TcpSession::new()));
        self.ssn_refused = false;
    }

    /// Direction of a packet from `src`/`sport`.
    pub fn direction_of(&self, src: IpAddr, sport: u16) -> Direction {
        if src == self.client_ip && sport == self.client_port {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    /// Coarse state.
    pub fn state(&self) -> FlowState {
        match &self.tcp {
            // TCP follows the session: a flow the state machine never took up (bad checksums,
            // midstream pickup off) stays `new`, as in Suricata where the stream engine owns it.
            Some(t) => t.state.flow_state(),
            None => {
                if self.dirs[0].pkts > 0 && self.dirs[1].pkts > 0 {
                    FlowState::Established
                } else {
                    FlowState::New
                }
            }
        }
    }

    fn timeout_secs(&self, t: &ProtoTimeouts, emergency: bool) -> u64 {
        match (self.state(), emergency) {
            (FlowState::New, false) => t.new,
            (FlowState::Established, false) => t.established,
            (FlowState::Closed, false) => t.closed,
            (FlowState::New, true) => t.emergency_new,
            (FlowState::Established, true) => t.emergency_established,
            (FlowState::Closed, true) => t.emergency_closed,
        }
    }

    /// The owned record (streams are closed by the engine before this).
    pub fn record(&self, reason: FlowEndReason, emergency: bool) -> FlowRecord {
        let app = self.app.as_deref().and_then(app_protos);
        FlowRecord {
            flow_id: self.flow_id,
            src_ip: self.client_ip,
            src_port: self.client_port,
            dst_ip: self.server_ip,
            dst_port: self.server_port,
            proto: self.proto,
            icmp: self.icmp,
            icmp_response: self.icmp_response,
            vlan: self.vlan[..self.vlan_count as usize].to_vec(),
            app_proto: app.map(|(p, ..)| p.to_string()),
            app_proto_ts: app.and_then(|(_, ts, ..)| ts),
            app_proto_tc: app.and_then(|(_, _, tc, _)| tc),
            app_proto_orig: app.and_then(|(.., o)| o),
            to_server: self.dirs[0],
            to_client: self.dirs[1],
            start: self.start,
            end: self.last,
            state: self.state(),
            tcp_state: self.tcp.as_ref().map(|t| t.state),
            reason,
            alerted: self.alerted,
            action: self.action,
            emergency,
            midstream: self.midstream,
            exception_policy: self.exceptions.clone(),
        }
    }
}

/// EVE's `app_proto`, and `app_proto_ts`/`_tc`/`_orig` only where they differ from it
/// (Suricata's rule; unknown ones are left out). `None` while the protocol is unknown.
type AppProtos = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

fn app_protos(a: &AppLayer) -> Option<AppProtos> {
    let p = a.proto();
    if p == AppProto::Unknown {
        return None;
    }
    let differ = |q: AppProto| (q != AppProto::Unknown && q != p).then(|| q.as_str());
    Some((
        p.as_str(),
        differ(a.proto_dir(Direction::ToServer)),
        differ(a.proto_dir(Direction::ToClient)),
        a.proto_orig().and_then(differ),
    ))
}

/// The outcome of a TCP state update for one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpUpdate {
    /// The session was just picked up midstream.
    pub pickup: bool,
    /// Timestamps were negotiated and the segment's TSval is older than the newest its sender
    /// used (PAWS, RFC 7323 §5): the segment was ignored (state unchanged; it must not reach
    /// the stream). Suricata's `stream.pkt_invalid_timestamp`.
    pub invalid_timestamp: bool,
}

/// Sequence comparison modulo 2^32: `a >= b`.
fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

impl TcpSession {
    /// Reassembly memory both directions hold (what they charge to the budget).
    pub fn buffered_memory(&self) -> usize {
        self.streams
            .iter()
            .flatten()
            .map(StreamReassembler::buffered_memory)
            .sum()
    }

    fn new() -> Self {
        TcpSession {
            state: TcpState::None,
            fin_end: [None, None],
            streams: [None, None],
            reassemble: false,
            syn_ts: false,
            ts_negotiated: false,
            last_ts: [None, None],
        }
    }

    /// Checks a segment's TSval against the newest its sender used in order (the receiver's
    /// TS.Recent) and records it; false if the segment fails PAWS (older TSval within 24
    /// days, RFC 7323 §5.3).
    ///
    /// As RFC 7323 §4.3 says, only a segment at or before the next expected sequence number
    /// updates TS.Recent: a segment that arrives ahead of a hole (reordering, or a capture
    /// that missed one) carries a newer TSval than the segments that fill the hole, and those
    /// are valid. Recording it made every reordered download fail PAWS (a real capture:
    /// scripts/bench-replay.sh's, where inline replay dropped both 40 MiB downloads).
    fn check_timestamp(&mut self, d: usize, info: &TcpInfo, now: Timestamp) -> bool {
        let Some((tsval, _)) = info.timestamps else {
            return true;
        };
        if let Some((last, at)) = self.last_ts[d] {
            if (tsval.wrapping_sub(last) as i32) < 0 {
                if self.ts_negotiated && now.micros_since(at) < PAWS_IDLE_US {
                    return false;
                }
                return true;
            }
        }
        let in_order = self.streams[d]
            .as_ref()
            .is_none_or(|s| seq_ge(s.next_seq(), info.seq));
        if in_order {
            self.last_ts[d] = Some((tsval, now));
        }
        true
    }

    /// Advances the state machine for a segment in direction `dir` seen at `now`.
    pub fn update(
        &mut self,
        dir: Direction,
        info: &TcpInfo,
        payload_len: usize,
        midstream_ok: bool,
        now: Timestamp,
    ) -> TcpUpdate {
        use TcpState as S;
        let f = info.flags;
        let syn = f & tcp_flags::SYN != 0;
        let ack = f & tcp_flags::ACK != 0;
        let fin = f & tcp_flags::FIN != 0;
        let rst = f & tcp_flags::RST != 0;
        let mut out = TcpUpdate {
            pickup: false,
            invalid_timestamp: false,
        };
        let d = dir.index();
        let o = dir.reverse().index();
        if syn && !ack && self.state == S::None {
            self.syn_ts = info.timestamps.is_some();
        }
        if syn && ack && matches!(self.state, S::SynSent) {
            self.ts_negotiated = self.syn_ts && info.timestamps.is_some();
        }
        if !self.check_timestamp(d, info, now) {
            out.invalid_timestamp = true;
            return out;
        }
        if rst {
            if self.state != S::None {
                self.state = S::Closed;
            }
            return out;
        }
        if fin && self.fin_end[d].is_none() {
            // FIN consumes one sequence number after the payload (and SYN if both).
            let extra = u32::from(syn);
            self.fin_end[d] = Some(
                info.seq
                    .wrapping_add(payload_len as u32)
                    .wrapping_add(1 + extra),
            );
        }
        let peer_fin_acked = ack && self.fin_end[o].is_some_and(|e| seq_ge(info.ack, e));
        self.state = if self.state == S::None {
            let (state, pickup) = self.open(dir, syn, ack, fin, midstream_ok);
            out.pickup = pickup;
            state
        } else {
            self.advance(dir, syn, ack, fin, peer_fin_acked)
        };
        out
    }

    /// The state a session without state enters on a segment (not a RST) in direction
    /// `dir`, and whether that is a mid-stream pick-up. Marks the session for reassembly
    /// when it opens.
    fn open(
        &mut self,
        dir: Direction,
        syn: bool,
        ack: bool,
        fin: bool,
        midstream_ok: bool,
    ) -> (TcpState, bool) {
        use TcpState as S;
        if syn && !ack && dir == Direction::ToServer {
            self.reassemble = true;
            (S::SynSent, false)
        } else if syn && ack && midstream_ok {
            // The server's answer without the client's SYN: a mid-handshake pick-up,
            // only with mid-stream pick-up on (Suricata's rule too).
            self.reassemble = true;
            (S::SynRecv, true)
        } else if midstream_ok {
            self.reassemble = true;
            let state = if fin {
                if dir == Direction::ToServer {
                    S::FinWait1
                } else {
                    S::CloseWait
                }
            } else {
                S::Established
            };
            (state, true)
        } else {
            (S::None, false)
        }
    }

    /// The state an open session moves to on a segment (not a RST) in direction `dir`;
    /// `peer_fin_acked`: the segment acknowledges the other side's FIN.
    fn advance(
        &self,
        dir: Direction,
        syn: bool,
        ack: bool,
        fin: bool,
        peer_fin_acked: bool,
    ) -> TcpState {
        use TcpState as S;
        let d = dir.index();
        let o = dir.reverse().index();
        match self.state {
            // Left only through `open` (`update` never calls this for it).
            S::None => S::None,
            S::SynSent => {
                if syn && ack && dir == Direction::ToClient {
                    S::SynRecv
                } else {
                    S::SynSent
                }
            }
            S::SynRecv => {
                if ack && !syn && dir == Direction::ToServer {
                    if fin {
                        S::FinWait1
                    } else {
                        S::Established
                    }
                } else {
                    S::SynRecv
                }
            }
            S::Established => {
                if fin {
                    if dir == Direction::ToServer {
                        S::FinWait1
                    } else {
                        S::CloseWait
                    }
                } else {
                    S::Established
                }
            }
            // The client closed first.
            S::FinWait1 => {
                if d == 1 && fin {
                    if peer_fin_acked {
                        S::TimeWait
                    } else {
                        S::Closing
                    }
                } else if d == 1 && peer_fin_acked {
                    S::FinWait2
                } else {
                    S::FinWait1
                }
            }
            // The server closed first: the client's FIN makes it LAST_ACK.
            S::CloseWait => {
                if d == 0 && fin {
                    S::LastAck
                } else {
                    S::CloseWait
                }
            }
            S::FinWait2 => {
                if fin && d == 1 {
                    S::TimeWait
                } else {
                    S::FinWait2
                }
            }
            S::Closing | S::LastAck => {
                if self.fin_end[o].is_some() && peer_fin_acked {
                    if self.state == S::LastAck {
                        S::Closed
                    } else {
                        S::TimeWait
                    }
                } else {
                    self.state
                }
            }
            S::TimeWait => {
                if ack && peer_fin_acked {
                    S::Closed
                } else {
                    S::TimeWait
                }
            }
            S::Closed => S::Closed,
        }
    }
}

const NIL: u32 = u32::MAX;

struct Slot {
    flow: Option<Flow>,
    key: FlowKey,
    prev: u32,
    next: u32,
}

/// Allocator overhead assumed per heap allocation (glibc: a 16-byte header, rounded up).
const ALLOC_OVERHEAD: usize = 16;

/// Bytes each flow owns outside the table's arrays, counted in `flow_memcap`: its boxed TCP
/// session (every TCP flow has one from its first packet; a SYN flood is the worst case).
/// Reassembly buffers are counted by `stream_memcap`, app-layer state by its own caps.
pub const FLOW_HEAP_BYTES: usize = std::mem::size_of::<TcpSession>() + ALLOC_OVERHEAD;

/// Bytes one TCP session takes, charged to `stream.memcap` ([`SessionBudget`]): its boxed
/// [`TcpSession`] (both directions' reassembler state is inline in it) with the
/// allocator's header, plus each direction's delivered-byte history when one is kept
/// (`retain_delivered`: up to twice that per direction). Out-of-order segment data is not
/// part of it: that is the reassembly budget's (`stream.reassembly.memcap`).
pub fn session_bytes(reassembly: &crate::reassembly::ReassemblyConfig) -> usize {
    let history = match reassembly.retain_delivered {
        0 => 0,
        n => n.saturating_mul(2).saturating_add(ALLOC_OVERHEAD),
    };
    (std::mem::size_of::<TcpSession>() + ALLOC_OVERHEAD).saturating_add(history.saturating_mul(2))
}

/// The engine's TCP session budget (Suricata's `stream.memcap`): every TCP flow's session
/// is charged [`session_bytes`] when it is created and released when its flow ends. A
/// session that does not fit is not created (the flow is [`Flow::ssn_refused`]).
#[derive(Debug, Clone)]
pub(crate) struct SessionBudget {
    limit: usize,
    used: usize,
    per_session: usize,
}

impl SessionBudget {
    pub fn new(limit: usize, per_session: usize) -> Self {
        SessionBudget {
            limit,
            used: 0,
            per_session,
        }
    }

    /// Charges one session if it fits under the limit.
    #[inline]
    pub fn try_reserve(&mut self) -> bool {
        match self.used.checked_add(self.per_session) {
            Some(t) if t <= self.limit => {
                self.used = t;
                true
            }
            _ => false,
        }
    }

    /// Releases one session's charge.
    #[inline]
    pub fn release(&mut self) {
        self.used = self.used.saturating_sub(self.per_session);
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used
    }
}

/// Memory of the table itself that does not scale with its cap: the evicted-flow memory
/// ([`EVICTED_MEMORY`] key hashes in a set and a queue, at the set's worst load).
const TABLE_FIXED_BYTES: usize = EVICTED_MEMORY * (8 * 16 / 7 + 1) + EVICTED_MEMORY * 8;

/// Least recently seen flows a full table looks through for one that is not established
/// before it evicts an established one ([`FlowTable::eviction_victim`]); bounds the cost
/// per new flow.
pub const EVICT_SCAN: usize = 64;

/// Largest table whose slot array is reserved at its cap up front (address space only:
/// slots are written in order, so untouched pages cost nothing).
const MAX_PREALLOC: usize = 1 << 24;

/// Flows the hash map is sized for at start, like Suricata's `flow.prealloc` (10000); it
/// doubles from there up to the cap. Small and dense, so lookups stay in cache.
const MAP_PREALLOC: usize = 10_000;

/// Buckets hashbrown allocates for `n` entries (its growth rule: 7/8 load, powers of two).
fn map_buckets(n: usize) -> usize {
    if n < 4 {
        4
    } else if n < 8 {
        8
    } else {
        n.saturating_mul(8).div_ceil(7).next_power_of_two()
    }
}

/// The table's arrays are allocated at their cap once (see [`FlowTable::new`]), so this is
/// what a full table takes: the slots, the hash map's buckets with their control bytes,
/// the free list, each flow's own heap and the inspector's per-flow state.
fn table_bytes(n: usize, inspector_bytes: usize) -> usize {
    let per_flow = std::mem::size_of::<Slot>() + 4 + FLOW_HEAP_BYTES + inspector_bytes;
    // The map grows by doubling as flows arrive (a table sized for the cap up front spreads
    // a small capture's flows over megabytes: a cache miss per lookup); while it rehashes
    // the old half-size table is alive beside the new one, hence 3/2.
    let map = map_buckets(n)
        .saturating_mul(std::mem::size_of::<(FlowKey, u32)>() + 1)
        .saturating_mul(3)
        / 2;
    n.saturating_mul(per_flow)
        .saturating_add(map)
        .saturating_add(TABLE_FIXED_BYTES)
}

/// The flow table; see the module documentation for the policies.
pub(crate) struct FlowTable {
    map: HashMap<FlowKey, u32, foldhash::fast::RandomState>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    pub cap: usize,
    pub emergency: bool,
    id_hasher: foldhash::fast::FixedState,
    /// Flows created so far (mixed into flow ids).
    created: u64,
    /// Key hashes of flows evicted while still active (table full), so a flow that comes
    /// back is known to have lost its state (the `flow_memcap` exception policy). At most
    /// [`EVICTED_MEMORY`] are remembered, oldest forgotten first.
    evicted: std::collections::HashSet<u64, foldhash::fast::RandomState>,
    evicted_order: std::collections::VecDeque<u64>,
}

/// Evicted flows remembered for the `flow_memcap` exception policy (about 1.5 MiB at most);
/// one evicted longer ago comes back as a plain mid-stream flow (`stream_midstream`).
pub const EVICTED_MEMORY: usize = 65_536;

impl FlowTable {
    /// The most flows that fit in `memcap` bytes, counting everything a full table takes
    /// ([`table_bytes`]) with `inspector_bytes` of inspection state per flow.
    pub fn cap_for(memcap: usize, inspector_bytes: usize) -> usize {
        // The bucket count steps in powers of two, so search rather than divide.
        let (mut lo, mut hi) = (0usize, memcap / std::mem::size_of::<Slot>() + 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if table_bytes(mid, inspector_bytes) <= memcap {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    pub fn new(cap: usize, seed: u64) -> Self {
        // The slot array is reserved at the cap once, so it never doubles (and copies) while
        // a flood fills it; untouched pages cost no resident memory. The hash map starts at
        // `MAP_PREALLOC` and doubles: `cap_for` counts its rehash peak.
        // A reservation the allocator refuses (a `max_flows` far beyond memory) is skipped:
        // the table then grows on demand, as before.
        // Beyond `MAX_PREALLOC` flows (an explicit `max_flows`), too: writing the control
        // bytes alone would cost resident memory the table may never need.
        let cap = cap.max(1);
        let mut map = HashMap::with_hasher(Default::default());
        let mut slots = Vec::new();
        let mut free = Vec::new();
        if cap <= MAX_PREALLOC {
            let _ = map.try_reserve(cap.min(MAP_PREALLOC));
            let _ = slots.try_reserve_exact(cap);
            let _ = free.try_reserve_exact(cap);
        }
        FlowTable {
            map,
            slots,
            free,
            head: NIL,
            tail: NIL,
            cap,
            emergency: false,
            id_hasher: foldhash::fast::FixedState::with_seed(seed),
            evicted: Default::default(),
            evicted_order: Default::default(),
            created: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Looks a key up (one hash lookup).
    pub fn get(&self, key: &FlowKey) -> Option<u32> {
        self.map.get(key).copied()
    }

    pub fn flow(&self, idx: u32) -> Option<&Flow> {
        self.slots.get(idx as usize).and_then(|s| s.flow.as_ref())
    }

    pub fn flow_mut(&mut self, idx: u32) -> Option<&mut Flow> {
        self.slots
            .get_mut(idx as usize)
            .and_then(|s| s.flow.as_mut())
    }

    /// The least recently seen flow.
    pub fn oldest(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The flow seen just after `idx` in recency order.
    pub fn newer(&self, idx: u32) -> Option<u32> {
        let n = self.slots.get(idx as usize)?.next;
        (n != NIL).then_some(n)
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn push_back(&mut self, idx: u32) {
        {
            let s = &mut self.slots[idx as usize];
            s.prev = self.tail;
            s.next = NIL;
        }
        if self.tail != NIL {
            self.slots[self.tail as usize].next = idx;
        } else {
            self.head = idx;
        }
        self.tail = idx;
    }

    /// Marks a flow most recently seen.
    pub fn touch(&mut self, idx: u32) {
        if self.tail != idx {
            self.unlink(idx);
            self.push_back(idx);
        }
    }

    /// Flow id for a key, start time and the flow's creation number (so two flows of one
    /// tuple created in the same microsecond, e.g. after an eviction, still differ).
    pub fn flow_id(&self, key: &FlowKey, start: Timestamp, seq: u64) -> u64 {
        let h = self.id_hasher.hash_one((key, seq)) as u32;
        let sec = start.secs() & 0xffff;
        let usec = u64::from(start.subsec_micros()) & 0xffff;
        ((sec << 48) | (usec << 32) | u64::from(h)) & 0x7_ffff_ffff_ffff
    }

    /// Inserts a new flow for a packet; the caller made room (len < cap). A TCP flow gets
    /// its session when `session` is true (the caller charged it to the stream memcap),
    /// else it is marked [`Flow::ssn_refused`].
    pub fn insert(&mut self, key: FlowKey, p: &Packet<'_>, ts: Timestamp, session: bool) -> u32 {
        let mut client = (p.src, p.src_port);
        let mut server = (p.dst, p.dst_port);
        let mut tcp = None;
        let mut ssn_refused = false;
        let mut icmp = None;
        match p.transport {
            Transport::Tcp(info) => {
                let synack = tcp_flags::SYN | tcp_flags::ACK;
                let syn = info.flags & synack;
                // A SYN/ACK comes from the server. A flow seen without its handshake (picked
                // up mid-stream) is oriented by its ports: a packet from a well-known port to
                // an ephemeral one comes from the server (a capture that starts with the
                // server's banner must not make the server the client, or its rules for
                // client data would never look at the real client).
                let from_server_port = p.src_port < 1024 && p.dst_port >= 1024;
                let no_syn = info.flags & tcp_flags::SYN == 0;
                if syn == synack || (no_syn && from_server_port) {
                    std::mem::swap(&mut client, &mut server);
                }
                if session {
                    tcp = Some(Box::new(TcpSession::new()));
                } else {
                    ssn_refused = true;
                }
            }
            Transport::Icmp { icmp_type, code } => icmp = Some((icmp_type, code)),
            Transport::Udp | Transport::Other => {}
        }
        let flow = Flow {
            flow_id: self.flow_id(&key, ts, self.created),
            client_ip: client.0,
            client_port: client.1,
            server_ip: server.0,
            server_port: server.1,
            proto: p.proto,
            icmp,
            icmp_response: None,
            vlan: p.vlan,
            vlan_count: p.vlan_count,
            dirs: [DirStats::default(); 2],
            start: ts,
            last: ts,
            tcp,
            midstream: false,
            alerted: false,
            action: None,
            app: None,
            established: false,
            exceptions: Vec::new(),
            bypass: false,
            ssn_refused,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.flow = Some(flow);
                s.key = key;
                i
            }
            None => {
                self.slots.push(Slot {
                    flow: Some(flow),
                    key,
                    prev: NIL,
                    next: NIL,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.push_back(idx);
        self.map.insert(key, idx);
        self.created += 1;
        idx
    }

    /// Removes a flow, returning it.
    /// Remembers that the flow at `idx` is being evicted (its state is lost).
    pub fn mark_evicted(&mut self, idx: u32) {
        let Some(slot) = self.slots.get(idx as usize) else {
            return;
        };
        let h = self.id_hasher.hash_one(slot.key);
        if self.evicted.insert(h) {
            self.evicted_order.push_back(h);
            if self.evicted_order.len() > EVICTED_MEMORY {
                if let Some(old) = self.evicted_order.pop_front() {
                    self.evicted.remove(&old);
                }
            }
        }
    }

    /// True (once) when a flow with `key` was evicted earlier: it comes back without state.
    pub fn take_evicted(&mut self, key: &FlowKey) -> bool {
        if self.evicted.is_empty() {
            return false;
        }
        self.evicted.remove(&self.id_hasher.hash_one(key))
    }

    pub fn remove(&mut self, idx: u32) -> Option<Flow> {
        let flow = self.slots.get_mut(idx as usize)?.flow.take()?;
        let key = self.slots[idx as usize].key;
        self.unlink(idx);
        self.map.remove(&key);
        self.free.push(idx);
        Some(flow)
    }

    /// The flow to evict when the table is full: the least recently seen flow that is not
    /// established (half-open, one-sided or closed) among the [`EVICT_SCAN`] least recently
    /// seen, else the least recently seen. Like conntrack's early drop of unassured
    /// entries: a flood of spoofed SYNs pushes out its own half-open flows, not the
    /// established sessions whose state the policy depends on (an evicted session comes
    /// back stateless and is dropped by the `flow_memcap` exception policy inline).
    pub fn eviction_victim(&self) -> Option<u32> {
        let oldest = self.oldest()?;
        let mut cur = Some(oldest);
        for _ in 0..EVICT_SCAN {
            let Some(idx) = cur else { break };
            if self
                .flow(idx)
                .is_some_and(|f| f.state() != FlowState::Established)
            {
                return Some(idx);
            }
            cur = self.newer(idx);
        }
        Some(oldest)
    }

    /// True if the flow at `idx` is idle past its timeout at `now`.
    pub fn is_expired(&self, idx: u32, now: Timestamp, timeouts: &FlowTimeouts) -> bool {
        match self.flow(idx) {
            Some(f) => {
                let t = f.timeout_secs(timeouts.for_proto(f.proto), self.emergency);
                now.micros_since(f.last) >= t.saturating_mul(1_000_000)
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpInfo;
    use Direction::{ToClient as C, ToServer as S};

    fn seg(flags: u8, seq: u32, ack: u32) -> TcpInfo {
        TcpInfo {
            seq,
            ack,
            flags,
            ..TcpInfo::default()
        }
    }

    const SYN: u8 = tcp_flags::SYN;
    const ACK: u8 = tcp_flags::ACK;
    const FIN: u8 = tcp_flags::FIN | tcp_flags::ACK;
    const RST: u8 = tcp_flags::RST;

    fn run(steps: &[(Direction, TcpInfo, usize)], midstream: bool) -> Vec<TcpState> {
        let mut s = TcpSession::new();
        steps
            .iter()
            .map(|(d, i, len)| {
                s.update(*d, i, *len, midstream, Timestamp(0));
                s.state
            })
            .collect()
    }

    #[test]
    fn handshake_and_client_close() {
        let states = run(
            &[
                (S, seg(SYN, 100, 0), 0),
                (C, seg(SYN | ACK, 500, 101), 0),
                (S, seg(ACK, 101, 501), 0),
                (S, seg(ACK, 101, 501), 10),
                (S, seg(FIN, 111, 501), 0),
                (C, seg(ACK, 501, 112), 0),
                (C, seg(FIN, 501, 112), 0),
                (S, seg(ACK, 112, 502), 0),
            ],
            false,
        );
        use TcpState::*;
        assert_eq!(
            states,
            [
                SynSent,
                SynRecv,
                Established,
                Established,
                FinWait1,
                FinWait2,
                TimeWait,
                Closed
            ]
        );
    }

    #[test]
    fn server_closes_first_and_simultaneous_close() {
        use TcpState::*;
        let hs = [
            (S, seg(SYN, 100, 0), 0),
            (C, seg(SYN | ACK, 500, 101), 0),
            (S, seg(ACK, 101, 501), 0),
        ];
        let mut steps = hs.to_vec();
        steps.extend([
            (C, seg(FIN, 501, 101), 0),
            (S, seg(ACK, 101, 502), 0),
            (S, seg(FIN, 101, 502), 0),
            (C, seg(ACK, 502, 102), 0),
        ]);
        let st = run(&steps, false);
        assert_eq!(st[3..], [CloseWait, CloseWait, LastAck, Closed]);
        // Both FINs cross, then both ACKs.
        let mut steps = hs.to_vec();
        steps.extend([
            (S, seg(FIN, 101, 501), 0),
            (C, seg(FIN, 501, 101), 0),
            (S, seg(ACK, 102, 502), 0),
        ]);
        let st = run(&steps, false);
        assert_eq!(st[3..], [FinWait1, Closing, TimeWait]);
    }

    #[test]
    fn rst_closes_and_midstream_needs_config() {
        use TcpState::*;
        let st = run(
            &[(S, seg(SYN, 1, 0), 0), (C, seg(RST | ACK, 0, 2), 0)],
            false,
        );
        assert_eq!(st, [SynSent, Closed]);
        let data = [(S, seg(ACK, 1000, 5000), 100), (C, seg(ACK, 5000, 1100), 0)];
        assert_eq!(run(&data, false), [None, None]);
        assert_eq!(run(&data, true), [Established, Established]);
    }
}
