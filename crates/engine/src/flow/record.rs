//! The owned summary of a finished flow (what EVE `flow` and `netflow` records print).

use serde::Serialize;
use std::net::IpAddr;

use crate::time::Timestamp;

/// Flow state as EVE `flow.state` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    /// Only one side seen (or TCP handshake not completed).
    New,
    /// Both sides seen (TCP: handshake completed or picked up midstream).
    Established,
    /// TCP FIN/RST exchange seen.
    Closed,
}

impl FlowState {
    /// Suricata's name (EVE `flow.state`): `new`, `established`, `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Detailed TCP state (EVE `tcp.state`), Suricata's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpState {
    /// No packet processed by the state machine yet (e.g. only bad-checksum packets).
    None,
    /// Client SYN seen.
    SynSent,
    /// Server SYN/ACK seen.
    SynRecv,
    /// Three-way handshake done (or midstream pickup).
    Established,
    /// First FIN seen from the client.
    FinWait1,
    /// First FIN acknowledged.
    FinWait2,
    /// Both sides sent FIN at the same time.
    Closing,
    /// FIN from the server first.
    CloseWait,
    /// Second FIN after a close-wait.
    LastAck,
    /// Both FINs acknowledged (timed wait).
    TimeWait,
    /// Connection reset or fully closed.
    Closed,
}

impl TcpState {
    /// Suricata's name (EVE `tcp.state`): `syn_sent`, `established`, `fin_wait1`, `closed`...
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::Closing => "closing",
            TcpState::CloseWait => "close_wait",
            TcpState::LastAck => "last_ack",
            TcpState::TimeWait => "time_wait",
            TcpState::Closed => "closed",
        }
    }

    /// The coarse [`FlowState`] this TCP state maps to.
    pub fn flow_state(self) -> FlowState {
        match self {
            TcpState::None | TcpState::SynSent | TcpState::SynRecv => FlowState::New,
            TcpState::Established
            | TcpState::FinWait1
            | TcpState::FinWait2
            | TcpState::Closing
            | TcpState::CloseWait
            | TcpState::LastAck => FlowState::Established,
            TcpState::TimeWait | TcpState::Closed => FlowState::Closed,
        }
    }
}

/// Why a flow ended (EVE `flow.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowEndReason {
    /// Idle longer than its protocol/state timeout.
    Timeout,
    /// Evicted early because the flow table was full (see [`crate::flow`] policy).
    Forced,
    /// End of input ([`crate::Engine::finish`]).
    Shutdown,
    /// A new TCP SYN reused the tuple of a closed session.
    TcpReuse,
}

impl FlowEndReason {
    /// Suricata's name (EVE `flow.reason`): `timeout`, `forced`, `shutdown`, `tcp_reuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowEndReason::Timeout => "timeout",
            FlowEndReason::Forced => "forced",
            FlowEndReason::Shutdown => "shutdown",
            FlowEndReason::TcpReuse => "tcp_reuse",
        }
    }
}

/// Flow-level verdict set by detection (EVE `flow.action`); `None` until detection exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowAction {
    /// Flow dropped.
    Drop,
    /// Firewall `accept:flow`.
    Accept,
    /// `pass` verdict.
    Pass,
}

impl FlowAction {
    /// Suricata's name (EVE `flow.action`): `drop`, `accept`, `pass`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowAction::Drop => "drop",
            FlowAction::Accept => "accept",
            FlowAction::Pass => "pass",
        }
    }
}

/// Counters of one direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DirStats {
    /// Packets seen in this direction.
    pub pkts: u64,
    /// Bytes in this direction, counted as Suricata does: the whole captured frame length
    /// including the link header. For a flow inside a GENEVE tunnel: the inner packet from its
    /// link header on (Suricata's tunnel pseudo-packet); for a reassembled IP datagram: the
    /// IP header plus reassembled payload.
    pub bytes: u64,
    /// First packet in this direction (`None` if no packet).
    pub start: Option<Timestamp>,
    /// Last packet in this direction.
    pub end: Option<Timestamp>,
    /// Smallest IP TTL / hop limit seen (0 if no packet).
    pub min_ttl: u8,
    /// Largest IP TTL / hop limit seen.
    pub max_ttl: u8,
    /// OR of the TCP flags byte of every packet (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10
    /// URG=0x20 ECE=0x40 CWR=0x80).
    pub tcp_flags: u8,
    /// True if reassembly of this direction had a gap.
    pub gap: bool,
}

impl DirStats {
    pub(crate) fn update(&mut self, ts: Timestamp, bytes: u64, ttl: u8, tcp_flags: u8) {
        if self.pkts == 0 {
            self.start = Some(ts);
            self.min_ttl = ttl;
            self.max_ttl = ttl;
        } else {
            self.min_ttl = self.min_ttl.min(ttl);
            self.max_ttl = self.max_ttl.max(ttl);
        }
        self.pkts += 1;
        self.bytes += bytes;
        self.end = Some(ts);
        self.tcp_flags |= tcp_flags;
    }
}

/// Everything known about a flow when it ends, oriented client (src) → server (dst).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    /// 51-bit flow id, equal on every event of the flow (see [`crate::flow`] for the layout).
    pub flow_id: u64,
    /// Client address.
    pub src_ip: IpAddr,
    /// Client port (0 for ICMP and other port-less protocols).
    pub src_port: u16,
    /// Server address.
    pub dst_ip: IpAddr,
    /// Server port (0 for ICMP and other port-less protocols).
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub proto: u8,
    /// ICMP type and code of the first packet (ICMP/ICMPv6 flows only; EVE `icmp_type`,
    /// `icmp_code`).
    pub icmp: Option<(u8, u8)>,
    /// ICMP type and code of the first server-to-client packet (EVE `response_icmp_type`,
    /// `response_icmp_code`).
    pub icmp_response: Option<(u8, u8)>,
    /// VLAN ids (outermost first), empty if untagged.
    pub vlan: Vec<u16>,
    /// Application protocol (EVE `app_proto`): set by the engine from the app layer when
    /// the flow ends (`None` if unknown, e.g. no payload); detection may override it.
    pub app_proto: Option<String>,
    /// EVE `app_proto_ts`: the to-server protocol, only when it differs from `app_proto`.
    pub app_proto_ts: Option<&'static str>,
    /// EVE `app_proto_tc`: the to-client protocol, only when it differs from `app_proto`.
    pub app_proto_tc: Option<&'static str>,
    /// EVE `app_proto_orig`: the protocol before a change (e.g. the mail protocol after STARTTLS), only when
    /// it differs from `app_proto`.
    pub app_proto_orig: Option<&'static str>,
    /// Client-to-server counters.
    pub to_server: DirStats,
    /// Server-to-client counters.
    pub to_client: DirStats,
    /// Time of the first packet.
    pub start: Timestamp,
    /// Time of the last packet.
    pub end: Timestamp,
    /// Coarse state (EVE `flow.state`).
    pub state: FlowState,
    /// TCP state (EVE `tcp.state`), `None` for non-TCP flows.
    pub tcp_state: Option<TcpState>,
    /// Why the flow ended.
    pub reason: FlowEndReason,
    /// True if any alert fired on the flow (set by detection).
    pub alerted: bool,
    /// Flow-level action, if detection set one.
    pub action: Option<FlowAction>,
    /// True if the flow ended while the table was in emergency mode (EVE `flow.emergency`).
    pub emergency: bool,
    /// True if the flow was picked up without seeing its TCP handshake.
    pub midstream: bool,
    /// Exception policies applied to the flow, each target once, in order (EVE
    /// `flow.exception_policy[{target, policy}]`).
    pub exception_policy: Vec<(crate::ExceptionTarget, crate::ExceptionAction)>,
}

impl FlowRecord {
    /// 4 or 6.
    pub fn ip_version(&self) -> u8 {
        if self.src_ip.is_ipv4() {
            4
        } else {
            6
        }
    }

    /// OR of both directions' TCP flags.
    pub fn tcp_flags(&self) -> u8 {
        self.to_server.tcp_flags | self.to_client.tcp_flags
    }

    /// EVE `flow.age`: whole seconds between first and last packet (end_sec - start_sec).
    pub fn age_secs(&self) -> u64 {
        self.end.secs().saturating_sub(self.start.secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `as_str` names and the serde names are the same strings (both are EVE's), so a
    /// record serialised with serde and one written by the log crate cannot disagree.
    #[test]
    fn as_str_matches_serde_names() {
        fn serde_name(v: impl Serialize) -> String {
            match serde_json::to_value(v) {
                Ok(serde_json::Value::String(s)) => s,
                other => panic!("not a string: {other:?}"),
            }
        }
        for s in [FlowState::New, FlowState::Established, FlowState::Closed] {
            assert_eq!(s.as_str(), serde_name(s));
        }
        for s in [
            TcpState::None,
            TcpState::SynSent,
            TcpState::SynRecv,
            TcpState::Established,
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::Closing,
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::TimeWait,
            TcpState::Closed,
        ] {
            assert_eq!(s.as_str(), serde_name(s));
        }
        for r in [
            FlowEndReason::Timeout,
            FlowEndReason::Forced,
            FlowEndReason::Shutdown,
            FlowEndReason::TcpReuse,
        ] {
            assert_eq!(r.as_str(), serde_name(r));
        }
        for a in [FlowAction::Drop, FlowAction::Accept, FlowAction::Pass] {
            assert_eq!(a.as_str(), serde_name(a));
        }
    }
}
