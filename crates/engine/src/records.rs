//! Everything the sensor reports, as typed records for the log writers: the engine's events,
//! detection's alerts and drops, `--explain` lines and the closing statistics. The log
//! writers depend on these types only, not on detection.

use std::net::IpAddr;

use crate::app::{AppProto, AppTxData};
use crate::event::{Direction, Event};
use crate::time::Timestamp;

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

/// What a rate-limit record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitEvent {
    /// A key went over its limit (the first over-limit packet after being within it; later
    /// over-limit packets of the same run are counted, not logged again).
    OverLimit,
    /// A new key found the table at `htable_max` entries (logged at most once per second of
    /// packet time per table; every one is counted).
    TableFull,
    /// End of input: one summary per table.
    Summary,
    /// A new flow from a key blocked by an app-event limit (`block_for`): logged once per
    /// key and block.
    Blocked,
}

/// A rate limit's finding (EVE `ratelimit`): whom it limited, in which table, and the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRecord {
    /// What happened.
    pub event: RateLimitEvent,
    /// Record time (the packet's, or the end of input for a summary).
    pub ts: Timestamp,
    /// The packet (none for a summary).
    pub head: Option<PacketHead>,
    /// Table name.
    pub table: String,
    /// The key as `/proc/net/ipt_hashlimit` prints it (empty for a summary).
    pub key: String,
    /// The rate in iptables spelling (`2/hour`).
    pub rate: String,
    /// The burst.
    pub burst: u64,
    /// Credits in the bucket after the packet; tokens = credit / cost.
    pub credit: u64,
    /// Credits one packet costs.
    pub cost: u64,
    /// What over-limit traffic gets (`drop`, `reject`, `alert`).
    pub action: &'static str,
    /// What the limit counts (`new_flows`, `packets`, `bytes`, or an app-layer event from
    /// the protocol registry's `APP_EVENTS`).
    pub count: &'static str,
    /// App-event limits with `block_for`: until when the key's new flows get `action`.
    pub blocked_until: Option<Timestamp>,
    /// True when the packet was dropped or rejected (inline, action drop/reject).
    pub blocked: bool,
    /// Summary counters by name (`lookups`, `under`, `over`, `table_full`, `created`,
    /// `expired`, `entries`, `peak_entries`); empty for per-packet events.
    pub counters: Vec<(&'static str, u64)>,
}

/// One record of the sensor, in the order it happened.
#[derive(Debug, Clone)]
pub enum Record {
    /// An alert (rule match that logs).
    Alert(Box<AlertRecord>),
    /// A dropped packet (inline).
    Drop(Box<DropRecord>),
    /// A flow ended.
    Flow {
        /// The flow's record.
        record: Box<crate::flow::FlowRecord>,
        /// When to log it: the latest packet time seen, or the flow's end if later.
        log_ts: Timestamp,
    },
    /// Another engine event: a finished transaction, an anomaly (never
    /// [`Event::FlowEnd`], which comes as [`Record::Flow`]).
    Event(Event),
    /// One `--explain` line (only when explaining).
    Explain(String),
    /// A rate limit's finding.
    RateLimit(Box<RateLimitRecord>),
    /// The closing statistics at end of input: every counter by its dotted key.
    Stats {
        /// Packet time of the end of input.
        ts: Timestamp,
        /// Counters in their stable order.
        counters: Vec<(&'static str, u64)>,
    },
}
