//! Engine configuration. Every default matches Suricata 8's `suricata.yaml` unless noted.

use serde::Serialize;

use crate::reassembly::ReassemblyConfig;

/// Idle timeouts of one protocol class, in seconds (Suricata's `flow-timeouts.<proto>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProtoTimeouts {
    /// Flow seen in one direction only (TCP: handshake not completed).
    pub new: u64,
    /// Both directions seen (TCP: established).
    pub established: u64,
    /// TCP closed (FIN/RST exchange done); unused for connectionless protocols.
    pub closed: u64,
    /// `new` while the flow table is in emergency mode.
    pub emergency_new: u64,
    /// `established` in emergency mode.
    pub emergency_established: u64,
    /// `closed` in emergency mode.
    pub emergency_closed: u64,
}

/// Per-protocol idle timeouts.
///
/// Defaults are Suricata's shipped `flow-timeouts` (seconds): default/other 30/300/0,
/// TCP 60/600/60, UDP 30/300, ICMP 30/300; emergency: default 10/100/0, TCP 5/100/10,
/// UDP and ICMP 10/100. (AWS Network Firewall instead documents a 350 s TCP idle timeout;
/// set `tcp.established` to 350 to mimic it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlowTimeouts {
    /// Protocols other than TCP/UDP/ICMP.
    pub default: ProtoTimeouts,
    /// TCP.
    pub tcp: ProtoTimeouts,
    /// UDP.
    pub udp: ProtoTimeouts,
    /// ICMPv4 and ICMPv6.
    pub icmp: ProtoTimeouts,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        let t = |new, established, closed, en, ee, ec| ProtoTimeouts {
            new,
            established,
            closed,
            emergency_new: en,
            emergency_established: ee,
            emergency_closed: ec,
        };
        FlowTimeouts {
            default: t(30, 300, 0, 10, 100, 0),
            tcp: t(60, 600, 60, 5, 100, 10),
            udp: t(30, 300, 0, 10, 100, 0),
            icmp: t(30, 300, 0, 10, 100, 0),
        }
    }
}

impl FlowTimeouts {
    /// The timeouts for an IP protocol number.
    pub fn for_proto(&self, proto: u8) -> &ProtoTimeouts {
        match proto {
            6 => &self.tcp,
            17 => &self.udp,
            1 | 58 => &self.icmp,
            _ => &self.default,
        }
    }

    /// The smallest timeout of any class/state (seconds): flows idle for less are never due.
    pub fn min_timeout(&self) -> u64 {
        [self.default, self.tcp, self.udp, self.icmp]
            .iter()
            .flat_map(|t| {
                [
                    t.new,
                    t.established,
                    t.closed,
                    t.emergency_new,
                    t.emergency_established,
                    t.emergency_closed,
                ]
            })
            .min()
            .unwrap_or(0)
    }
}

/// Limits of IPv4/IPv6 fragment reassembly (Suricata's `defrag` section, simplified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DefragConfig {
    /// Datagrams being reassembled at once (default 65535, Suricata's `defrag.trackers`).
    pub max_trackers: usize,
    /// Fragments held per datagram (default 256); more are ignored with `frag_ignored`.
    pub max_frags_per_datagram: usize,
    /// Fragment payload bytes held across all datagrams (default 32 MiB, Suricata's
    /// `defrag.memcap`).
    pub memcap: usize,
    /// Seconds an incomplete datagram is kept (default 60, Suricata's `defrag.timeout`).
    pub timeout_secs: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_trackers: 65535,
            max_frags_per_datagram: 256,
            memcap: 32 << 20,
            timeout_secs: 60,
        }
    }
}

/// Whether transport/IP checksums are verified (Suricata's `-k`/`checksum-validation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumMode {
    /// Verify: TCP segments with a bad checksum are counted in flows but ignored by TCP state
    /// tracking and reassembly (`tcp.invalid_checksum`), as Suricata does.
    #[default]
    Validate,
    /// Do not verify (`-k none`): needed for captures taken on the sending host with checksum
    /// offload (e.g. `tcpdump -i lo`).
    None,
}

/// Application-layer protocol detection and parsing (Suricata's `app-layer` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AppLayerConfig {
    /// Detect protocols and run parsers (default true). When false no app-layer work is done
    /// at all: flows get no `app_proto` and no transactions are logged.
    pub enabled: bool,
    /// Also recognise a protocol from the server's greeting where the protocol's probe
    /// allows it (default true: Suricata 8's probing parsers, e.g. a mail server's banner on
    /// its well-known ports). False is Suricata 7 / AWS Network Firewall behaviour: only the
    /// client's first bytes identify a server-first protocol. See each protocol's module.
    pub server_greeting_probe: bool,
    /// Bytes per direction after which detection in that direction gives up (default 4096);
    /// see [`crate::app`] for the exact rule.
    pub max_detect_bytes: usize,
    /// Bytes of one direction held while the protocol is still unknown (default 65536):
    /// a direction that matched nothing waits for the other side up to this much, then the
    /// flow's protocol becomes `failed` (Suricata waits for 100000 bytes of reassembled
    /// stream; the held bytes are what the parser gets once the other side is detected).
    pub max_hold_bytes: usize,
    /// Bytes all flows together may hold while their protocols are unknown (default 64 MiB;
    /// `--set app-layer.hold-memcap=SIZE`). A flow whose held bytes would pass it gives up
    /// detection (`failed`), and the `app_layer_error` exception policy applies to it:
    /// inline, by default, it is dropped rather than passed uninspected.
    pub hold_memcap: usize,
    /// Bytes of parser state all flows together may keep (default 64 MiB;
    /// `--set app-layer.memcap=SIZE`): transactions with their recipient lists, header
    /// blocks and command records, command queues, line and record buffers. Each parser
    /// counts what it keeps; the flow's share is charged after every chunk it parses. A
    /// flow whose parser would pass the cap has its parser state freed (it parses no more,
    /// `app_layer.memcap` counts it) and the `app_layer_error` exception policy applies to
    /// it: inline, by default, it is dropped.
    pub memcap: usize,
    /// Protocols switched off or to detection only (`app-layer.protocols.<name>.enabled`,
    /// Suricata's key): bit [`crate::app::AppProto::index`] set in `off` = never probed, so
    /// never detected; in `detection_only` = detected (flows get the `app_proto`) but not
    /// parsed (no transactions, buffers or records). Every protocol is on by default.
    pub protocol_switches: ProtocolSwitches,
}

/// How each app-layer protocol takes part; see [`AppLayerConfig::protocol_switches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ProtocolSwitches {
    off: u32,
    detection_only: u32,
}

/// One protocol's `app-layer.protocols.<name>.enabled` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolMode {
    /// Detected and parsed (`yes`, the default).
    On,
    /// Detected, not parsed (`detection-only`).
    DetectionOnly,
    /// Neither (`no`).
    Off,
}

impl ProtocolSwitches {
    /// The mode of `proto` (`On` for `Unknown`/`Failed`, which are not protocols).
    pub fn mode(&self, proto: crate::app::AppProto) -> ProtocolMode {
        let Some(bit) = proto.index().map(|i| 1u32 << i) else {
            return ProtocolMode::On;
        };
        if self.off & bit != 0 {
            ProtocolMode::Off
        } else if self.detection_only & bit != 0 {
            ProtocolMode::DetectionOnly
        } else {
            ProtocolMode::On
        }
    }

    /// Sets the mode of `proto` (ignored for `Unknown`/`Failed`).
    pub fn set(&mut self, proto: crate::app::AppProto, mode: ProtocolMode) {
        let Some(bit) = proto.index().map(|i| 1u32 << i) else {
            return;
        };
        self.off &= !bit;
        self.detection_only &= !bit;
        match mode {
            ProtocolMode::On => {}
            ProtocolMode::DetectionOnly => self.detection_only |= bit,
            ProtocolMode::Off => self.off |= bit,
        }
    }
}

impl Default for AppLayerConfig {
    fn default() -> Self {
        AppLayerConfig {
            enabled: true,
            server_greeting_probe: true,
            max_detect_bytes: 4096,
            max_hold_bytes: 65536,
            hold_memcap: 64 << 20,
            protocol_switches: ProtocolSwitches::default(),
            memcap: 64 << 20,
        }
    }
}

/// Configuration of an [`crate::Engine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Idle timeouts.
    pub timeouts: FlowTimeouts,
    /// Flow table memory budget in bytes (default 128 MiB, Suricata's `flow.memcap`). The
    /// entry cap is what fits in `flow_memcap` (`FlowTable::cap_for`); see [`crate::flow`] for the policy when full.
    pub flow_memcap: usize,
    /// Hard cap on flows regardless of memcap (default: none, i.e. derived from memcap only).
    pub max_flows: Option<usize>,
    /// Percent of the cap that must be free again before emergency mode ends (default 30,
    /// Suricata's `flow.emergency-recovery`).
    pub emergency_recovery_pct: u8,
    /// Track and reassemble TCP sessions that started before capture (no SYN seen); default
    /// false like Suricata's `stream.midstream`. When false such packets still update a flow
    /// (counted, logged) but the session is not reassembled.
    pub midstream: bool,
    /// Checksum verification.
    pub checksums: ChecksumMode,
    /// Per-direction TCP reassembly limits.
    pub reassembly: ReassemblyConfig,
    /// TCP session memory across all flows (default 64 MiB, Suricata's `stream.memcap`):
    /// each TCP flow's session state ([`crate::flow::session_bytes`]) is charged when the
    /// flow is created and released when it ends. A new session that does not fit is not
    /// created: the flow is tracked without TCP state, `tcp.ssn_memcap_drop` counts it and
    /// the `stream_memcap` exception policy applies to its packets (inline, by default,
    /// the flow is dropped). Out-of-order data is [`EngineConfig::reassembly_memcap`]'s.
    pub stream_memcap: usize,
    /// Total bytes of out-of-order TCP data buffered across all flows (default 64 MiB,
    /// Suricata's `stream.reassembly.memcap`); see [`crate::reassembly`] for what happens
    /// when it is reached.
    pub reassembly_memcap: usize,
    /// Fragment reassembly limits.
    pub defrag: DefragConfig,
    /// Decode GENEVE (UDP 6081) and track the inner packet's flow (default true).
    pub geneve: bool,
    /// UDP ports treated as GENEVE (default `[6081]`).
    pub geneve_ports: Vec<u16>,
    /// Decode VXLAN (UDP 4789) and track the inner packet's flow (default true, as Suricata's
    /// `decoder.vxlan.enabled`).
    pub vxlan: bool,
    /// UDP destination ports treated as VXLAN (default `[4789]`).
    pub vxlan_ports: Vec<u16>,
    /// Inline (IPS) mode: a packet the inspector drops is not handed to the TCP state machine,
    /// reassembly or app layer, and after [`crate::Verdict::DropFlow`] the rest of the flow is
    /// dropped uninspected. Default false (monitor: verdicts are reported, all is delivered).
    pub inline: bool,
    /// Make the tunnel depth part of the flow key (default true, Suricata's
    /// `decoder.recursion-level.use-for-tracking`): a tunnelled packet and an outer packet
    /// with the same addresses are then separate flows. When false they share one flow.
    pub recursion_tracking: bool,
    /// Seed mixed into `flow_id` hashes (default 0, so ids are reproducible run to run;
    /// Suricata uses a random seed per process).
    pub flow_id_seed: u64,
    /// Most decoder/stream events kept in the queue before new ones are dropped (counters
    /// still count them). Default 65536.
    pub max_queued_events: usize,
    /// App-layer protocol detection and parsers.
    pub app_layer: AppLayerConfig,
    /// What happens where the engine cannot see what the rules need (see
    /// [`crate::exception`]); default `auto` everywhere.
    pub exceptions: crate::ExceptionPolicies,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            timeouts: FlowTimeouts::default(),
            flow_memcap: 128 << 20,
            max_flows: None,
            emergency_recovery_pct: 30,
            midstream: false,
            checksums: ChecksumMode::Validate,
            reassembly: ReassemblyConfig::default(),
            stream_memcap: 64 << 20,
            reassembly_memcap: 64 << 20,
            defrag: DefragConfig::default(),
            geneve: true,
            geneve_ports: vec![6081],
            recursion_tracking: true,
            inline: false,
            vxlan: true,
            vxlan_ports: vec![4789],
            flow_id_seed: 0,
            max_queued_events: 65536,
            app_layer: AppLayerConfig::default(),
            exceptions: crate::ExceptionPolicies::default(),
        }
    }
}
