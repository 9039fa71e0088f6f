//! Engine counters, named like Suricata's `stats` event keys.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::decode::DecodeEvent;
use crate::reassembly::ReassemblyStats;

/// Decoder counters (`decoder.*`). All values are packet counts except `bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames handed to the engine.
    pub pkts: u64,
    /// Sum of frame lengths (bytes, link header included).
    pub bytes: u64,
    /// Frames that could not be decoded far enough to be attributed to a flow.
    pub invalid: u64,
    /// Ethernet frames.
    pub ethernet: u64,
    /// Raw-IP frames.
    pub raw: u64,
    /// BSD loopback frames.
    pub null: u64,
    /// Linux cooked v1 frames.
    pub sll: u64,
    /// Linux cooked v2 frames.
    pub sll2: u64,
    /// IPv4 packets (outer and inner layers each count).
    pub ipv4: u64,
    /// IPv6 packets.
    pub ipv6: u64,
    /// TCP segments.
    pub tcp: u64,
    /// UDP datagrams.
    pub udp: u64,
    /// ICMPv4 messages.
    pub icmpv4: u64,
    /// ICMPv6 messages.
    pub icmpv6: u64,
    /// Frames with at least one VLAN tag.
    pub vlan: u64,
    /// Frames with two VLAN tags.
    pub vlan_qinq: u64,
    /// Frames with three VLAN tags.
    pub vlan_qinqinq: u64,
    /// GENEVE-encapsulated packets.
    pub geneve: u64,
    /// MPLS-labelled packets.
    pub mpls: u64,
    /// VXLAN-encapsulated packets.
    pub vxlan: u64,
    /// IPv4 carried in IPv6.
    pub ipv4_in_ipv6: u64,
    /// IPv6 carried in IPv6.
    pub ipv6_in_ipv6: u64,
    /// Frames whose ethertype is not handled.
    pub unknown_ethertype: u64,
    /// Packets dropped for nesting too deep.
    pub too_many_layers: u64,
    /// Largest frame seen (bytes).
    pub max_pkt_size: u64,
    /// Per-event counters, indexed by `DecodeEvent as usize`.
    pub event: [u64; DecodeEvent::COUNT],
}

impl Default for DecoderStats {
    fn default() -> Self {
        DecoderStats {
            pkts: 0,
            bytes: 0,
            invalid: 0,
            ethernet: 0,
            raw: 0,
            null: 0,
            sll: 0,
            sll2: 0,
            ipv4: 0,
            ipv6: 0,
            tcp: 0,
            udp: 0,
            icmpv4: 0,
            icmpv6: 0,
            vlan: 0,
            vlan_qinq: 0,
            vlan_qinqinq: 0,
            geneve: 0,
            mpls: 0,
            vxlan: 0,
            ipv4_in_ipv6: 0,
            ipv6_in_ipv6: 0,
            unknown_ethertype: 0,
            too_many_layers: 0,
            max_pkt_size: 0,
            event: [0; DecodeEvent::COUNT],
        }
    }
}

/// IP defragmentation counters (`defrag.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// IPv4 fragments received.
    pub ipv4_fragments: u64,
    /// IPv4 datagrams reassembled.
    pub ipv4_reassembled: u64,
    /// IPv6 fragments received.
    pub ipv6_fragments: u64,
    /// IPv6 datagrams reassembled.
    pub ipv6_reassembled: u64,
    /// Fragments refused because the tracker table was full.
    pub max_trackers_reached: u64,
    /// Fragments refused because the byte budget was exhausted.
    pub memcap_exception: u64,
    /// Incomplete datagrams discarded on timeout.
    pub tracker_timeout: u64,
}

/// Flow-table counters (`flow.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created.
    pub total: u64,
    /// TCP flows created.
    pub tcp: u64,
    /// UDP flows created.
    pub udp: u64,
    /// ICMPv4 flows created.
    pub icmpv4: u64,
    /// ICMPv6 flows created.
    pub icmpv6: u64,
    /// Flows currently in the table.
    pub active: u64,
    /// Times a new flow found the table at its cap.
    pub memcap: u64,
    /// Times emergency mode was entered.
    pub emerg_mode_entered: u64,
    /// Times emergency mode was left.
    pub emerg_mode_over: u64,
    /// Flows evicted early to make room (ended with reason `forced`).
    pub emerg_evicted: u64,
    /// Flows ended by timeout.
    pub end_timeout: u64,
    /// Flows ended at shutdown.
    pub end_shutdown: u64,
    /// TCP flows ended because a new SYN reused the tuple of a closed session.
    pub tcp_reuse: u64,
}

/// TCP session counters (`tcp.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// TCP sessions created.
    pub sessions: u64,
    /// SYN packets.
    pub syn: u64,
    /// SYN/ACK packets.
    pub synack: u64,
    /// RST packets.
    pub rst: u64,
    /// Sessions picked up without a handshake.
    pub midstream_pickups: u64,
    /// Segments with a bad checksum (ignored by the state machine and reassembly).
    pub invalid_checksum: u64,
    /// Segments failing the timestamp check (PAWS) of a session that negotiated timestamps;
    /// ignored by the state machine and reassembly (`stream.pkt_invalid_timestamp`).
    pub pkt_invalid_timestamp: u64,
    /// New TCP sessions refused because `stream.memcap` was reached (Suricata's
    /// `tcp.ssn_memcap_drop`): each flow created without its session, and each bare SYN
    /// of such a flow that still found no room.
    pub ssn_memcap_drop: u64,
    /// Bytes of TCP session state charged to `stream.memcap` now (a gauge, Suricata's
    /// `tcp.memuse`).
    pub memuse: u64,
    /// Bytes of out-of-order data charged to `stream.reassembly.memcap` now (a gauge,
    /// Suricata's `tcp.reassembly_memuse`).
    pub reassembly_memuse: u64,
}

/// App-layer memory (sekisho's: Suricata has no global app-layer cap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppMemStats {
    /// Bytes of parser state charged to `app-layer.memcap` now (a gauge).
    pub memuse: u64,
    /// Times a flow's parser could not get room under `app-layer.memcap` (each such flow
    /// once): its parser state was freed and the `app_layer_error` policy applied.
    pub memcap: u64,
    /// Bytes held by protocol detection under `app-layer.hold-memcap` now (a gauge).
    pub hold_memuse: u64,
}

/// Non-TCP checksum failures (sekisho-specific; Suricata only counts TCP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChecksumStats {
    /// IPv4 header checksum failures.
    pub ipv4: u64,
    /// UDP checksum failures.
    pub udp: u64,
    /// ICMPv4 checksum failures.
    pub icmpv4: u64,
    /// ICMPv6 checksum failures.
    pub icmpv6: u64,
}

/// App-layer counters (`app_layer.flow.<proto>`, `app_layer.tx.<proto>`): Suricata's
/// per-protocol names, one pair per protocol with a parser (flows counted at detection, so
/// a flow upgraded later still counts; transactions when the parser opens them).
pub type AppLayerStats = crate::app::AppCounters;

/// All engine counters. Serialises to the nested object Suricata's `stats` event holds
/// (`{"decoder":{"pkts":..,"event":{"ipv4":{"trunc_pkt":..}}},"flow":{..},..}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// `decoder.*`
    pub decoder: DecoderStats,
    /// `defrag.*`
    pub defrag: DefragStats,
    /// `flow.*`
    pub flow: FlowStats,
    /// `tcp.*`
    pub tcp: TcpStats,
    /// `checksum.*` (sekisho-specific)
    pub checksum: ChecksumStats,
    /// `app_layer.*`
    pub app_layer: AppLayerStats,
    /// `app_layer.memuse`, `app_layer.memcap`, `app_layer.hold_memuse`
    pub app_mem: AppMemStats,
    /// Exception-policy counters (`tcp.midstream_exception_policy.drop_flow`, ...).
    pub exception: crate::exception::ExceptionCounters,
    /// TCP reassembly counters (`tcp.reassembly_gap`, `tcp.overlap`, ...). Each flow's
    /// counters are added when the flow ends (they live in its reassemblers until then), so
    /// after [`crate::Engine::finish`] they cover every flow.
    pub stream: ReassemblyStats,
}

impl Stats {
    /// Calls `f(dotted_key, value)` for every counter, in a stable order
    /// (e.g. `("decoder.pkts", 60)`, `("decoder.event.ipv4.trunc_pkt", 0)`).
    pub fn for_each(&self, mut f: impl FnMut(&'static str, u64)) {
        let d = &self.decoder;
        f("decoder.pkts", d.pkts);
        f("decoder.bytes", d.bytes);
        f("decoder.invalid", d.invalid);
        f("decoder.ethernet", d.ethernet);
        f("decoder.raw", d.raw);
        f("decoder.null", d.null);
        f("decoder.sll", d.sll);
        f("decoder.sll2", d.sll2);
        f("decoder.ipv4", d.ipv4);
        f("decoder.ipv6", d.ipv6);
        f("decoder.tcp", d.tcp);
        f("decoder.udp", d.udp);
        f("decoder.icmpv4", d.icmpv4);
        f("decoder.icmpv6", d.icmpv6);
        f("decoder.vlan", d.vlan);
        f("decoder.vlan_qinq", d.vlan_qinq);
        f("decoder.vlan_qinqinq", d.vlan_qinqinq);
        f("decoder.geneve", d.geneve);
        f("decoder.mpls", d.mpls);
        f("decoder.vxlan", d.vxlan);
        f("decoder.ipv4_in_ipv6", d.ipv4_in_ipv6);
        f("decoder.ipv6_in_ipv6", d.ipv6_in_ipv6);
        f("decoder.unknown_ethertype", d.unknown_ethertype);
        f("decoder.too_many_layers", d.too_many_layers);
        f(
            "decoder.avg_pkt_size",
            d.bytes.checked_div(d.pkts).unwrap_or(0),
        );
        f("decoder.max_pkt_size", d.max_pkt_size);
        for e in DecodeEvent::ALL {
            f(e.stats_key(), d.event[*e as usize]);
        }
        let g = &self.defrag;
        f("defrag.ipv4.fragments", g.ipv4_fragments);
        f("defrag.ipv4.reassembled", g.ipv4_reassembled);
        f("defrag.ipv6.fragments", g.ipv6_fragments);
        f("defrag.ipv6.reassembled", g.ipv6_reassembled);
        f("defrag.max_trackers_reached", g.max_trackers_reached);
        f("defrag.memcap_exception", g.memcap_exception);
        f("defrag.mgr.tracker_timeout", g.tracker_timeout);
        let l = &self.flow;
        f("flow.total", l.total);
        f("flow.active", l.active);
        f("flow.tcp", l.tcp);
        f("flow.udp", l.udp);
        f("flow.icmpv4", l.icmpv4);
        f("flow.icmpv6", l.icmpv6);
        f("flow.tcp_reuse", l.tcp_reuse);
        f("flow.memcap", l.memcap);
        f("flow.emerg_mode_entered", l.emerg_mode_entered);
        f("flow.emerg_mode_over", l.emerg_mode_over);
        f("flow.mgr.flows_evicted_emergency", l.emerg_evicted);
        f("flow.end.timeout", l.end_timeout);
        f("flow.end.shutdown", l.end_shutdown);
        let t = &self.tcp;
        f("tcp.sessions", t.sessions);
        f("tcp.syn", t.syn);
        f("tcp.synack", t.synack);
        f("tcp.rst", t.rst);
        f("tcp.midstream_pickups", t.midstream_pickups);
        f("tcp.invalid_checksum", t.invalid_checksum);
        f("tcp.ssn_memcap_drop", t.ssn_memcap_drop);
        f("tcp.memuse", t.memuse);
        f("tcp.reassembly_memuse", t.reassembly_memuse);
        f("stream.pkt_invalid_timestamp", t.pkt_invalid_timestamp);
        for (k, v) in self.stream.counters() {
            f(k, v);
        }
        self.app_layer.for_each(&mut f);
        f("app_layer.memuse", self.app_mem.memuse);
        f("app_layer.memcap", self.app_mem.memcap);
        f("app_layer.hold_memuse", self.app_mem.hold_memuse);
        self.exception.for_each(&mut f);
        let c = &self.checksum;
        f("checksum.ipv4", c.ipv4);
        f("checksum.udp", c.udp);
        f("checksum.icmpv4", c.icmpv4);
        f("checksum.icmpv6", c.icmpv6);
    }

    /// The value of one counter by its dotted key, `None` if no such counter.
    pub fn get(&self, key: &str) -> Option<u64> {
        let mut out = None;
        self.for_each(|k, v| {
            if k == key {
                out = Some(v);
            }
        });
        out
    }
}

/// Insertion-ordered tree of counters built from dotted keys, for serialisation.
enum Node {
    Leaf(u64),
    Map(Vec<(&'static str, Node)>),
}

impl Node {
    fn insert(&mut self, key: &'static str, value: u64) {
        let Node::Map(children) = self else { return };
        match key.split_once('.') {
            None => children.push((key, Node::Leaf(value))),
            Some((head, rest)) => {
                let idx = match children.iter().position(|(k, _)| *k == head) {
                    Some(i) => i,
                    None => {
                        children.push((head, Node::Map(Vec::new())));
                        children.len() - 1
                    }
                };
                children[idx].1.insert(rest, value);
            }
        }
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Leaf(v) => s.serialize_u64(*v),
            Node::Map(children) => {
                let mut m = s.serialize_map(Some(children.len()))?;
                for (k, v) in children {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut root = Node::Map(Vec::new());
        self.for_each(|k, v| root.insert(k, v));
        root.serialize(s)
    }
}
