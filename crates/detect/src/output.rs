//! What detection reports: alerts and drops, as typed records for the log writer.

use std::net::IpAddr;

use sekisho_engine::app::AppProto;
use sekisho_engine::app::AppTxData;
use sekisho_engine::{Direction, Timestamp};

/// The rule facts an alert carries (EVE `alert{…}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertInfo {
    /// `"allowed"` or `"blocked"`: blocked when the rule dropped/rejected the packet inline.
    pub blocked: bool,
    /// `gid`.
    pub gid: u64,
    /// `sid`.
    pub sid: u64,
    /// `rev`.
    pub rev: u64,
    /// `msg`.
    pub signature: String,
    /// Classtype name (`""` without one).
    pub category: String,
    /// Priority (default 3).
    pub severity: u8,
}

/// Addresses of the packet an alert or drop is about (packet orientation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketHead {
    /// Packet time.
    pub ts: Timestamp,
    /// 1-based packet number (EVE `pcap_cnt`).
    pub pkt_num: u64,
    /// Flow id.
    pub flow_id: u64,
    /// Source address.
    pub src_ip: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// Direction within the flow.
    pub direction: Direction,
    /// The flow's app-layer protocol at this packet (`None` while unknown).
    pub app_proto: Option<AppProto>,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// The packet.
    pub head: PacketHead,
    /// Transaction the match was on (app-tx rules), with its protocol's log data.
    pub tx: Option<(u64, AppTxData)>,
    /// The rule.
    pub alert: AlertInfo,
    /// Firewall-mode alerts: (`firewall.hook`, `firewall.policy`); EVE adds `alert.engine: "fw"`.
    pub firewall: Option<(String, String)>,
}

/// One dropped packet (inline mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropRecord {
    /// The packet.
    pub head: PacketHead,
    /// Transport payload length of the packet.
    pub payload_len: usize,
    /// TCP flags of the packet (0 for non-TCP).
    pub tcp_flags: u8,
    /// Suricata's drop reason: `rules`, `flow drop`, or `default action` for NFW defaults.
    pub reason: &'static str,
    /// The dropping rule, when a rule dropped it (EVE `drop` with `alerts: yes`).
    pub alert: Option<AlertInfo>,
}

/// An output of detection, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An alert record.
    Alert(Box<AlertRecord>),
    /// A drop record.
    Drop(Box<DropRecord>),
}
