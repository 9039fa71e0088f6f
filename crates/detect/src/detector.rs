//! The detector: an engine [`Inspector`] that evaluates the compiled rules on every packet
//! after the app layer has seen the packet's data, and turns matches into verdicts.
//!
//! Order semantics (suricata-rules.md §11, aws-network-firewall.md §2):
//! - **Action order**: rules sorted pass → drop → reject → alert, then `priority`. A pass
//!   stops the packet; drops and alerts all log; the first drop decides the packet.
//! - **Strict order**: groups in order, rules in file order; the first pass/drop/reject
//!   match decides the packet, alerts before it still log. Default actions (NFW
//!   `aws:drop_established` …) apply to packets no rule decided.
//!
//! What a match does to the flow follows the rule's type ([`SigKind`]): pass/drop of IP-only,
//! app-layer, app-tx and stream rules applies to the whole flow ("a pass on a TCP flow
//! passes the rest of the flow": later packets are not inspected), packet rules only to the
//! packet; `:packet` / `:flow` scopes override. A protocol-detection-only rule (app protocol
//! in the header, no other keyword) is evaluated once per direction: on the first packet of
//! that direction after the protocol became known, as Suricata does.
//!
//! In monitor mode drop rules log like alerts (`allowed`) and nothing is dropped; `--explain`
//! still says what inline mode would do.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use sekisho_engine::app::{AppLayer, AppProto, AppTxData, BufferId, TxRef};
use sekisho_engine::ExceptionTarget;
use sekisho_engine::{Direction, FlowAction, FlowRecord, Inspector, PacketContext, Verdict};
use sekisho_rules::{
    ActionKind, ActionScope, BitsCmd, FlowDir, FlowState, FlowStream, RateAction, SizeCmp,
};

use crate::firewall::{FwFlow, FwVerdict};
use crate::output::{AlertInfo, AlertRecord, DropRecord, Output, PacketHead};
use crate::payload::MatchScratch;
use crate::prefilter::PrefilterScratch;
use crate::ruleset::RuleSet;
use crate::sig::{drop_verdict, flags_match, size_matches, BufKind, ProtoReq, Sig, SigKind};
use crate::txscan::TxScanMemo;

/// Bytes of already inspected stream data kept per TCP direction and inspected again in front
/// of the next packet's new bytes, so a content split over two segments is found (Suricata
/// inspects a raw stream window, not single segments). A match that the kept bytes alone
/// already give is not reported again.
pub const STREAM_WINDOW: usize = 256;

/// Bytes of detection state per flow the engine tracks, for the engine's `flow_memcap`
/// accounting: the boxed [`FlowDet`] with its allocator header, its two stream tails at
/// their cap ([`STREAM_WINDOW`] each, allocated), and its hash-map entry (key, box pointer
/// and control byte, at up to 16/7 buckets per entry, 3/2 of that while the map doubles).
/// Not part of it (known gap: bounded per flow, not counted in `flow.memcap`): flowbits and
/// transaction-match lists, which grow with what the rules set (at most
/// `MAX_TX_MATCHES` entries), and the prefilter memo of live transactions (at most
/// `txscan::MEMO_MAX_BYTES` plus its settled-miss lists).
pub const FLOW_STATE_BYTES: usize =
    std::mem::size_of::<FlowDet>() + 16 + 2 * (STREAM_WINDOW + 16) + (16 + 1) * 16 / 7 * 3 / 2;

/// Most per-flow transaction matches remembered (alert once per rule and transaction).
const MAX_TX_MATCHES: usize = 4096;

/// Suricata's default `stream.reassembly.depth`: content of a TCP direction beyond its first
/// MiB is not inspected.
pub const DEFAULT_STREAM_DEPTH: u64 = 1 << 20;

/// How detection runs.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Inline (IPS): drops take effect and `drop` records are written.
    pub inline: bool,
    /// Collect `--explain` lines.
    pub explain: bool,
    /// Bytes of each TCP direction whose payload is inspected (Suricata's
    /// `stream.reassembly.depth`, default 1 MiB; 0 = no limit). Header, flow and app-layer
    /// buffer rules keep being evaluated after it.
    pub stream_depth: u64,
    /// Suricata's drop-log option `flows: all`: a `drop` record for every packet of a
    /// dropped flow (`false`, `flows: start`: only the first of each direction).
    pub drop_flows_all: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            inline: false,
            explain: false,
            stream_depth: DEFAULT_STREAM_DEPTH,
            drop_flows_all: false,
        }
    }
}

/// Per-flow detection state (removed when the flow ends).
#[derive(Clone)]
struct FlowDet {
    /// 1-based number of the flow in this run (for `--explain`).
    seq: u64,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    /// Pass verdict: (packet, sid) that passed the flow.
    passed: Option<(u64, u64)>,
    /// Drop verdict: (packet, sid) that dropped the flow.
    dropped: Option<(u64, u64)>,
    /// Set flowbits (ids).
    bits: Vec<u32>,
    /// (rule order, tx id) pairs that already matched.
    tx_matched: Vec<(u32, u64)>,
    /// (rule order, tx id, n): the first n instances of the one list buffer the rule reads
    /// were evaluated and did not match, so the next packet starts at instance n (each
    /// recipient of a transaction is checked once, not once per packet). Same bounds as
    /// `tx_matched`; sorted by (rule order, tx id).
    tx_scanned: Vec<(u32, u64, u32)>,
    /// Prefilter progress per live transaction and buffer: the buffers a packet scans are
    /// only those that changed (see `txscan`).
    tx_memo: TxScanMemo,
    /// Protocol-detection-only rules were evaluated in this direction.
    pd_done: [bool; 2],
    alerted: bool,
    /// The app protocol was reported to `--explain`.
    proto_explained: bool,
    /// The "not inspected" note was given for this many packets.
    quiet_notes: u32,
    /// TCP payload bytes seen per direction, for the stream depth.
    payload_seen: [u64; 2],
    /// Firewall-mode state.
    fw: FwFlow,
    /// The direction has delivered reassembled stream bytes.
    stream_seen: [bool; 2],
    /// A drop record was written for this direction (Suricata's `drop: flows: start` logs
    /// the first dropped packet of each direction).
    drop_logged: [bool; 2],
    /// The last inspected stream bytes per direction (at most [`STREAM_WINDOW`]).
    tail: [Vec<u8>; 2],
}

/// The detection inspector. Build it with [`Detector::new`], hand it to
/// `Engine::with_inspector`, and drain [`Detector::poll_output`] (and
/// [`Detector::take_explain`]) after every packet.
pub struct Detector {
    /// The compiled rules, shared with every other worker; replaced whole by
    /// [`Detector::swap_rules`].
    rules: Arc<RuleSet>,
    /// This worker's prefilter bitmap (the rule set itself is immutable).
    pf_scratch: PrefilterScratch,
    cfg: DetectConfig,
    /// Per-flow state; entries live exactly as long as the engine's flow (removed in
    /// `on_flow_end`), so the engine's flow-table cap bounds this map too.
    /// Boxed: an entry is a pointer, so the per-packet take-out-and-put-back moves 8 bytes
    /// and a map sized for the flow cap stays small.
    flows: HashMap<u64, Box<FlowDet>, foldhash::fast::RandomState>,
    flow_seq: u64,
    out: VecDeque<Output>,
    explain: Vec<String>,
    scratch: MatchScratch,
    cand: Vec<u32>,
    /// Stream bytes released by the current packet (TCP), in its direction.
    stream: Vec<u8>,
    stream_flow: u64,
    /// The current packet's stream data followed a gap (the window restarts).
    stream_gap: bool,
    /// Scratch for tail + new bytes.
    window: Vec<u8>,
    /// `threshold` / `detection_filter` counters.
    thresholds: crate::threshold::Thresholds,
    /// The current packet's flow was established before this packet (NFW's default actions
    /// leave the packet that completes the handshake alone: it is connection setup).
    established_before: bool,
    /// Totals for the run summary.
    stats: DetectStats,
    /// Inline: the per-flow state before the packet being delivered (see
    /// [`Inspector::checkpoint`]).
    saved: Option<(u64, Box<FlowDet>)>,
    /// This packet: a rule that can drop could not see what it needs (a limit cut its
    /// evaluation short, or it reads a list that was truncated); the engine applies the
    /// `detect_limit` exception policy.
    exception: Option<ExceptionTarget>,
}

/// Detection counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Alert records.
    pub alerts: u64,
    /// Packets dropped by rules or default actions (inline).
    pub drops: u64,
    /// Flows passed by a rule.
    pub flows_passed: u64,
    /// Flows dropped by a rule.
    pub flows_dropped: u64,
    /// Rule evaluations after the prefilter.
    pub evaluated: u64,
    /// Instances of list buffers (recipients, ...) evaluated by app-transaction rules: with
    /// incremental matching each instance once per rule, however many packets follow.
    pub instances: u64,
    /// Transaction buffer instances the prefilter scanned: each version of a buffer once
    /// per transaction and direction, however many packets see it unchanged.
    pub buffer_scans: u64,
}

/// The payload buffers of one packet (see `Detector::buffers`).
struct Bufs<'b> {
    /// What stream rules inspect: the raw stream window (kept bytes + new), or the payload.
    stream: &'b [u8],
    /// Bytes at the start of `stream` kept from earlier packets.
    tail_len: usize,
    /// The stream bytes this packet released (or its payload), within the stream depth.
    payload: &'b [u8],
    /// The packet's own bytes, for packet rules.
    pkt: &'b [u8],
}

/// The evaluation state of one packet, shared by the steps of `Detector::inspect_flow`.
struct PacketEval {
    inline: bool,
    explain: bool,
    strict: bool,
    /// `--explain` prefix naming the packet and flow (empty when not explaining).
    ctx: String,
    /// `--explain` lines of this packet.
    lines: Vec<String>,
    verdict: Verdict,
    /// The first deciding action (pass, drop, reject), if any.
    decided: Option<ActionKind>,
}

/// True for the actions that drop (`drop`, `reject*`): a blind spot on such a rule is an
/// exception, on an alert rule only a missed alert.
fn can_drop(a: ActionKind) -> bool {
    !matches!(
        a,
        ActionKind::Pass | ActionKind::Alert | ActionKind::Accept | ActionKind::Config
    )
}

/// True when the rule reads an app buffer of which some live transaction holds a truncated
/// list (the rule may have missed the instance it was looking for).
fn reads_truncated(sig: &Sig, txs: &[TxRef<'_>]) -> bool {
    sig.groups.iter().any(|g| match g.kind {
        BufKind::App(b) => txs.iter().any(|t| t.truncated(b)),
        BufKind::Payload => false,
    })
}

/// Applies a matched rule's `flowbits` set/unset/toggle commands to the flow's bits.
fn apply_flowbits(bits: &mut Vec<u32>, sig: &Sig) {
    for (cmd, ids) in &sig.bits_act {
        for id in ids {
            let has = bits.contains(id);
            match cmd {
                BitsCmd::Set if !has => bits.push(*id),
                BitsCmd::Unset => bits.retain(|b| b != id),
                BitsCmd::Toggle if has => bits.retain(|b| b != id),
                BitsCmd::Toggle => bits.push(*id),
                _ => {}
            }
        }
    }
}

/// How a matched drop or reject rule denies: its action (the rule's, or a `rate_filter`'s
/// new action) and the drop record's reason.
#[derive(Clone, Copy)]
struct Deny {
    action: ActionKind,
    reason: &'static str,
}

/// Why a rule did not match (for `--explain`).
pub(crate) enum Miss {
    Proto(AppProto),
    Header,
    Flow(&'static str),
    Bits,
    AppProto,
    Dsize,
    /// `itype` / `icode` did not hold (or the packet is not ICMP).
    Icmp,
    Flags,
    IpOnlyLater,
    PdOnlyDone,
    Group(usize),
    TxDone,
    AlreadyMatched,
}

impl Detector {
    /// A detector over `rules` (a `RuleSet`, or an `Arc<RuleSet>` shared with other
    /// workers).
    pub fn new(rules: impl Into<Arc<RuleSet>>, cfg: DetectConfig) -> Detector {
        Detector {
            rules: rules.into(),
            pf_scratch: PrefilterScratch::default(),
            cfg,
            flows: HashMap::default(),
            flow_seq: 0,
            out: VecDeque::new(),
            explain: Vec::new(),
            scratch: MatchScratch::default(),
            cand: Vec::new(),
            stream: Vec::new(),
            stream_flow: u64::MAX,
            established_before: false,
            stream_gap: false,
            window: Vec::new(),
            thresholds: Default::default(),
            stats: DetectStats::default(),
            saved: None,
            exception: None,
        }
    }

    /// True when the firewall (a firewall rule or default policy) dropped the flow
    /// `flow_id`, as opposed to threat detection (for the `firewall.drop_reason.flow_drop`
    /// counter).
    pub fn firewall_dropped(&self, flow_id: u64) -> bool {
        self.flows.get(&flow_id).is_some_and(|st| st.fw.dropped())
    }

    /// The rules in use.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The shared handle of the rules in use.
    pub fn rules_arc(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Replaces the rule set (a reload). Flows keep their verdicts (passed or dropped flows
    /// stay so) and their flowbits, carried over by name; a bit the new rules never name is
    /// forgotten. Alert-once marks of transactions are carried over by signature id, so a
    /// transaction that already alerted on a rule present in both sets does not alert
    /// again. Takes effect from the next packet.
    pub fn swap_rules(&mut self, rules: Arc<RuleSet>) {
        let old = std::mem::replace(&mut self.rules, rules);
        let new = &self.rules;
        let bit_map: Vec<Option<u32>> = (0..old.bit_names().len() as u32)
            .map(|id| new.bit_names().find(old.bit_names().name(id)))
            .collect();
        let remap = |bits: &mut Vec<u32>| {
            let mapped: Vec<u32> = bits
                .iter()
                .filter_map(|&b| bit_map.get(b as usize).copied().flatten())
                .collect();
            *bits = mapped;
        };
        let by_sid: HashMap<(u64, u64), u32> = new
            .sigs()
            .iter()
            .map(|s| ((s.gid, s.sid), s.order))
            .collect();
        for st in self.flows.values_mut() {
            remap(&mut st.bits);
            st.tx_matched = st
                .tx_matched
                .iter()
                .filter_map(|&(order, tx)| {
                    let s = old.sig(order)?;
                    by_sid.get(&(s.gid, s.sid)).map(|&o| (o, tx))
                })
                .collect();
            // Rules may have changed: list buffers are scanned again from the start.
            st.tx_scanned.clear();
            st.tx_memo.clear();
            st.fw.carry_over(old.firewall(), new.firewall());
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectStats {
        self.stats
    }

    /// Next alert or drop record, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The `--explain` lines collected since the last call.
    pub fn take_explain(&mut self) -> Vec<String> {
        std::mem::take(&mut self.explain)
    }

    fn head(p: &PacketContext<'_>) -> PacketHead {
        PacketHead {
            ts: p.ts,
            pkt_num: p.pkt_num,
            flow_id: p.flow_id,
            src_ip: p.src_ip,
            src_port: p.src_port,
            dst_ip: p.dst_ip,
            dst_port: p.dst_port,
            proto: p.proto,
            direction: p.direction,
            app_proto: p
                .app
                .map(AppLayer::proto)
                .filter(|a| *a != AppProto::Unknown),
        }
    }
}

fn fmt_ep(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
        IpAddr::V4(_) => format!("{ip}:{port}"),
    }
}

fn dir_str(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

/// True when the match applies to the whole flow.
fn flow_scope(sig: &Sig) -> bool {
    match sig.scope {
        Some(ActionScope::Packet) => false,
        Some(ActionScope::Flow) => true,
        _ => sig.kind.flow_scoped(),
    }
}

impl Detector {
    fn ctx_line(&self, p: &PacketContext<'_>, st: &FlowDet) -> String {
        let app = p
            .app
            .map(AppLayer::proto)
            .filter(|a| *a != AppProto::Unknown)
            .map_or("app_proto unknown", AppProto::as_str);
        let (a, b) = match p.direction {
            Direction::ToServer => (st.client, st.server),
            Direction::ToClient => (st.server, st.client),
        };
        format!(
            "pkt {} flow {} ({} -> {}, {})",
            p.pkt_num,
            st.seq,
            fmt_ep(a.0, a.1),
            fmt_ep(b.0, b.1),
            app
        )
    }

    fn miss_text(sig: &Sig, m: &Miss) -> String {
        match m {
            Miss::Proto(AppProto::Unknown) => format!(
                "not evaluated: the flow's app_proto is not known yet (rule needs {})",
                proto_req_str(sig.proto)
            ),
            Miss::Proto(a) => format!(
                "not evaluated: app_proto is {} (rule needs {})",
                a.as_str(),
                proto_req_str(sig.proto)
            ),
            Miss::Header => "no match: addresses/ports".to_string(),
            Miss::Flow(w) => format!("no match: flow ({w})"),
            Miss::Bits => "no match: flowbits".to_string(),
            Miss::AppProto => "no match: app-layer-protocol".to_string(),
            Miss::Dsize => "no match: dsize".to_string(),
            Miss::Icmp => "no match: itype/icode".to_string(),
            Miss::Flags => "no match: flags".to_string(),
            Miss::IpOnlyLater => {
                "not evaluated: IP-only rule, evaluated on the first packet of each direction only"
                    .to_string()
            }
            Miss::PdOnlyDone => {
                "not evaluated: protocol-detection-only rule, already evaluated in this direction"
                    .to_string()
            }
            Miss::Group(i) => match sig.groups.get(*i) {
                Some(g) if g.label.is_empty() => format!("no match: {}", g.kind.as_str()),
                Some(g) => format!("no match: {} {}", g.kind.as_str(), g.label),
                None => "no match".to_string(),
            },
            Miss::TxDone => "no match: no transaction left to inspect".to_string(),
            Miss::AlreadyMatched => {
                "no new match: the stream bytes kept from earlier packets already matched"
                    .to_string()
            }
        }
    }

    fn alert_info(sig: &Sig, blocked: bool) -> AlertInfo {
        AlertInfo {
            blocked,
            gid: sig.gid,
            sid: sig.sid,
            rev: sig.rev,
            signature: sig.msg.clone(),
            category: sig.category.clone(),
            severity: sig.severity,
        }
    }

    fn inspect(&mut self, p: &PacketContext<'_>) -> Verdict {
        let inline = self.cfg.inline;
        let explain = self.cfg.explain;
        // Taken out and put back so the evaluation can borrow the rest of `self` freely.
        let mut st = match self.flows.remove(&p.flow_id) {
            Some(st) => st,
            None => {
                self.flow_seq += 1;
                Box::new(FlowDet::new(self.flow_seq, p))
            }
        };
        let v = self.inspect_flow(p, &mut st, inline, explain);
        self.flows.insert(p.flow_id, st);
        v
    }

    fn inspect_flow(
        &mut self,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        inline: bool,
        explain: bool,
    ) -> Verdict {
        let app = p.app.map_or(AppProto::Unknown, AppLayer::proto);
        if explain && !st.proto_explained && app != AppProto::Unknown {
            self.explain_proto(p, st, app);
        }
        if let Some(v) = self.settled(p, st, inline, explain) {
            return v;
        }
        // The rules as of this packet (a swap takes effect from the next one).
        let rules = Arc::clone(&self.rules);
        let stream = std::mem::take(&mut self.stream);
        let mut window = std::mem::take(&mut self.window);
        let bufs = self.buffers(p, st, &stream, &mut window, explain);
        // The live transactions of the flow's current protocol, when some rule reads them.
        let txs: Vec<TxRef<'_>> = p
            .app
            .and_then(AppLayer::active_parser)
            .filter(|_| rules.needs_app_tx())
            .map(|pr| pr.txs_for(p.direction))
            .unwrap_or_default();
        // Alert-once bookkeeping only for transactions still in the parser: bounded by live
        // transactions × rules.
        if !st.tx_matched.is_empty() {
            st.tx_matched
                .retain(|(_, id)| txs.iter().any(|t| t.id() == *id));
        }
        if !st.tx_scanned.is_empty() {
            st.tx_scanned
                .retain(|(_, id, _)| txs.iter().any(|t| t.id() == *id));
        }
        st.tx_memo.retain_live(&txs, p.direction);
        let cand = self.candidates(&rules, p, st, &bufs, &txs);
        let mut ev = PacketEval {
            inline,
            explain,
            strict: rules.strict(),
            ctx: if explain {
                self.ctx_line(p, st)
            } else {
                String::new()
            },
            lines: Vec::new(),
            verdict: Verdict::Accept,
            decided: None,
        };
        let pd_evaluated = self.evaluate(&rules, p, st, &cand, &bufs, &txs, &mut ev);
        if explain && !ev.lines.is_empty() {
            let line = format!(
                "{}: {} of {} rules passed the prefilter",
                ev.ctx,
                cand.len(),
                rules.sigs().len()
            );
            ev.lines.insert(0, line);
        }
        if pd_evaluated || app != AppProto::Unknown {
            st.pd_done[p.direction.index()] = true;
        }
        self.cand = cand;
        self.stream = stream;
        self.stream.clear();
        self.window = window;
        // NFW default actions: only what no rule decided, strict order only.
        if ev.decided.is_none() && ev.strict {
            self.apply_defaults(&rules, p, st, app, &mut ev);
        }
        self.explain.append(&mut ev.lines);
        if inline {
            ev.verdict
        } else {
            Verdict::Accept
        }
    }

    /// `--explain`: how the flow's app protocol was detected (once per flow).
    fn explain_proto(&mut self, p: &PacketContext<'_>, st: &mut FlowDet, app: AppProto) {
        st.proto_explained = true;
        let how = match p.app.and_then(AppLayer::detected_at) {
            Some((Direction::ToClient, n)) => match app.def().map(|d| d.greeting) {
                Some(g) if !g.is_empty() => {
                    format!("from the server's data in pkt {n} (e.g. {g})")
                }
                _ => format!("from the server's data in pkt {n}"),
            },
            Some((Direction::ToServer, n)) => {
                format!("from the client's data in pkt {n}")
            }
            None => "by the app layer".to_string(),
        };
        let line = format!(
            "{}: app_proto {} detected {how}",
            self.ctx_line(p, st),
            app.as_str()
        );
        self.explain.push(line);
    }

    /// The verdict when the packet needs no rule evaluation: firewall mode decided it (it
    /// runs first; only what it accepts goes on to threat detection, whose pass only skips
    /// TD, never the firewall), or the flow was passed or dropped earlier.
    fn settled(
        &mut self,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        inline: bool,
        explain: bool,
    ) -> Option<Verdict> {
        if let Some(v) = self.firewall_step(p, st, inline, explain) {
            return Some(v);
        }
        if let Some((at, sid)) = st.passed {
            if explain && (!p.payload.is_empty()) && st.quiet_notes < 64 {
                st.quiet_notes += 1;
                let line = format!(
                    "{}: not inspected: flow passed at pkt {at} by sid {sid}",
                    self.ctx_line(p, st)
                );
                self.explain.push(line);
            }
            return Some(Verdict::Accept);
        }
        if let Some((at, sid)) = st.dropped {
            // Monitor mode only (inline, the engine drops the flow before we are called).
            if explain && !p.payload.is_empty() && st.quiet_notes < 64 {
                st.quiet_notes += 1;
                let line = format!(
                    "{}: not inspected: flow dropped at pkt {at} by sid {sid} (monitor mode: delivered anyway)",
                    self.ctx_line(p, st)
                );
                self.explain.push(line);
            }
            return Some(if inline {
                Verdict::DropFlow
            } else {
                Verdict::Accept
            });
        }
        None
    }

    /// The payload buffers of this packet: the stream bytes it released (TCP; else its
    /// payload) within the stream depth, the raw stream window (kept bytes of the direction
    /// + the new bytes, built in `window`), and the packet's own bytes for packet rules.
    fn buffers<'b>(
        &mut self,
        p: &PacketContext<'b>,
        st: &mut FlowDet,
        stream: &'b [u8],
        window: &'b mut Vec<u8>,
        explain: bool,
    ) -> Bufs<'b> {
        // Once a TCP direction delivers reassembled bytes, stream rules see only what each
        // packet releases: a retransmission or an out-of-order segment adds nothing new.
        let released = self.stream_flow == p.flow_id && !stream.is_empty();
        let d = p.direction.index();
        if released {
            st.stream_seen[d] = true;
        }
        let mut payload: &[u8] = if released {
            stream
        } else if p.proto == 6 && st.stream_seen[d] {
            &[]
        } else {
            p.payload
        };
        // The packet's own bytes, for packet rules; none past the stream depth either
        // (Suricata stops payload inspection of the direction there).
        let mut pkt: &[u8] = p.payload;
        if p.proto == 6 && self.cfg.stream_depth > 0 {
            let before = st.payload_seen[d];
            st.payload_seen[d] = before.saturating_add(payload.len() as u64);
            if before >= self.cfg.stream_depth {
                payload = &[];
                pkt = &[];
            } else if st.payload_seen[d] > self.cfg.stream_depth {
                let keep = (self.cfg.stream_depth - before) as usize;
                payload = &payload[..keep.min(payload.len())];
                if explain {
                    let line = format!(
                        "{}: stream depth reached ({} bytes): later payload of this direction is not inspected",
                        self.ctx_line(p, st),
                        self.cfg.stream_depth
                    );
                    self.explain.push(line);
                }
            }
        }
        window.clear();
        let mut tail_len = 0;
        let use_window = p.proto == 6 && self.rules.needs_stream() && !payload.is_empty();
        if use_window {
            if self.stream_gap {
                st.tail[d].clear();
            }
            tail_len = st.tail[d].len();
            window.extend_from_slice(&st.tail[d]);
            window.extend_from_slice(payload);
            let keep = window.len().min(STREAM_WINDOW);
            st.tail[d].clear();
            st.tail[d].extend_from_slice(&window[window.len() - keep..]);
        }
        let window: &'b [u8] = window;
        Bufs {
            stream: if use_window { window } else { payload },
            tail_len,
            payload,
            pkt,
        }
    }

    /// Candidate rules, sorted: rules without a fast pattern that fit the packet, plus the
    /// prefilter's hits in the payload buffers and in every buffer instance of every live
    /// transaction (remembered per transaction: only what changed is scanned again).
    fn candidates(
        &mut self,
        rules: &RuleSet,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        bufs: &Bufs<'_>,
        txs: &[TxRef<'_>],
    ) -> Vec<u32> {
        let mut cand = std::mem::take(&mut self.cand);
        cand.clear();
        let pf = rules.prefilter();
        let pfs = &mut self.pf_scratch;
        // `--explain` counts the candidates: there every IP-only rule is one, as before the
        // address index.
        let addrs = (!self.cfg.explain).then_some((p.src_ip, p.dst_ip));
        pf.always_into(
            BufKind::Payload,
            p.proto,
            p.dst_port,
            p.first_in_direction,
            addrs,
            &mut cand,
        );
        if !bufs.stream.is_empty() {
            pf.scan(
                pfs,
                BufKind::Payload,
                std::iter::once(bufs.stream),
                &mut cand,
            );
        }
        if p.proto == 6 && !bufs.pkt.is_empty() && bufs.pkt != bufs.payload {
            // Packet rules see the packet's own bytes (out of order, retransmitted).
            pf.scan(pfs, BufKind::Payload, std::iter::once(bufs.pkt), &mut cand);
        }
        if let Some(first) = txs.first() {
            let proto = first.proto();
            for &k in pf.app_buffers(proto) {
                pf.always_into(
                    BufKind::App(k),
                    p.proto,
                    p.dst_port,
                    p.first_in_direction,
                    addrs,
                    &mut cand,
                );
                if !pf.has_patterns(BufKind::App(k)) {
                    continue;
                }
                for t in txs {
                    self.stats.buffer_scans +=
                        st.tx_memo.candidates(pf, pfs, t, p.direction, k, &mut cand);
                }
            }
        }
        cand.sort_unstable();
        cand.dedup();
        cand
    }

    /// Evaluates the candidates in order and applies what matched; returns whether an
    /// app-layer or protocol-detection-only rule was evaluated on the flow's protocol.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &mut self,
        rules: &RuleSet,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        cand: &[u32],
        bufs: &Bufs<'_>,
        txs: &[TxRef<'_>],
        ev: &mut PacketEval,
    ) -> bool {
        let app = p.app.map_or(AppProto::Unknown, AppLayer::proto);
        let mut pd_evaluated = false;
        // `flow:established` is decided on the state before this packet, as Suricata does:
        // the ACK completing the TCP handshake is not yet established (suricata-verify
        // like-ip-only-01); a UDP reply is, since the engine counts it before `on_packet`.
        let pe = PacketContext {
            established: self.established_before,
            ..*p
        };
        let mut waiting_for_proto: Vec<u64> = Vec::new();
        for &o in cand {
            let Some(sig) = rules.sig(o) else {
                continue;
            };
            // A rule that can drop is evaluated every time (a truncated list makes its miss
            // an exception), and `--explain` tells every miss.
            let settles = !ev.explain && !can_drop(sig.action) && rules.prefilter().settles(o);
            if settles && st.tx_memo.settled_miss(p.direction, pe.established, app, o) {
                continue;
            }
            self.stats.evaluated += 1;
            if sig.kind == SigKind::App {
                pd_evaluated |= matches!(sig.proto, ProtoReq::App(a) if a == app);
            }
            pd_evaluated |= sig.kind == SigKind::PdOnly && app != AppProto::Unknown;
            let es = EvalState {
                bits: &st.bits,
                tx_matched: &st.tx_matched,
                tx_scanned: Some(&st.tx_scanned),
                pd_done: st.pd_done[p.direction.index()],
            };
            let r = self.eval_sig(sig, &pe, es, bufs, txs);
            self.stats.instances += self.scratch.instances;
            self.scratch.instances = 0;
            for (order, id, n) in self.scratch.scanned.drain(..) {
                // Kept sorted by (rule order, tx id): `eval` looks entries up per rule and
                // transaction, and a DNS flow holds one per rule for each live message.
                match st
                    .tx_scanned
                    .binary_search_by(|e| (e.0, e.1).cmp(&(order, id)))
                {
                    Ok(k) => st.tx_scanned[k].2 = n,
                    Err(k) if st.tx_scanned.len() < MAX_TX_MATCHES => {
                        st.tx_scanned.insert(k, (order, id, n))
                    }
                    Err(_) => {}
                }
            }
            if settles && r.is_err() {
                st.tx_memo.note_miss(p.direction, o);
            }
            let limit_hit = self.scratch.take_limit_hit();
            if r.is_err() && can_drop(sig.action) && (limit_hit || reads_truncated(sig, txs)) {
                self.exception = Some(ExceptionTarget::DetectLimit);
                if ev.explain {
                    ev.lines.push(format!(
                        "{} sid {} {}: cannot see what it needs ({}): detect_limit exception policy",
                        ev.ctx,
                        sig.sid,
                        sig.action.as_str(),
                        if limit_hit {
                            "an inspection limit was hit"
                        } else {
                            "a list it reads was truncated"
                        }
                    ));
                }
            }
            let tx = match r {
                Ok(tx) => tx,
                Err(Miss::Proto(AppProto::Unknown)) => {
                    if ev.explain {
                        waiting_for_proto.push(sig.sid);
                    }
                    continue;
                }
                Err(m) => {
                    if ev.explain
                        && !matches!(m, Miss::Header | Miss::IpOnlyLater | Miss::PdOnlyDone)
                    {
                        ev.lines.push(format!(
                            "{} sid {} {}: {}",
                            ev.ctx,
                            sig.sid,
                            sig.action.as_str(),
                            Self::miss_text(sig, &m)
                        ));
                    }
                    continue;
                }
            };
            if self.on_match(sig, p, st, tx.and_then(|i| txs.get(i)), ev) {
                break;
            }
        }
        if !waiting_for_proto.is_empty() {
            let n = waiting_for_proto.len();
            let list: Vec<String> = waiting_for_proto
                .iter()
                .take(6)
                .map(|s| s.to_string())
                .collect();
            ev.lines.insert(
                0,
                format!(
                    "{}: app-layer rule{} not evaluated, the flow's app_proto is not known yet: sid {}{}",
                    ev.ctx,
                    if n == 1 { "" } else { "s" },
                    list.join(", "),
                    if n > 6 { format!(" and {} more", n - 6) } else { String::new() }
                ),
            );
        }
        pd_evaluated
    }

    /// One rule on this packet: packet rules look at the packet, stream rules at the window,
    /// and a match the kept bytes alone give was already reported on an earlier packet.
    fn eval_sig(
        &mut self,
        sig: &Sig,
        pe: &PacketContext<'_>,
        es: EvalState<'_>,
        bufs: &Bufs<'_>,
        txs: &[TxRef<'_>],
    ) -> Result<Option<usize>, Miss> {
        let buf = if sig.kind == SigKind::Packet || pe.proto != 6 {
            bufs.pkt
        } else {
            bufs.stream
        };
        let r = eval(sig, pe, es, buf, txs, &mut self.scratch);
        let tail = &bufs.stream[..bufs.tail_len];
        if r.is_ok()
            && bufs.tail_len > 0
            && sig.kind == SigKind::Stream
            && eval(sig, pe, es, tail, txs, &mut self.scratch).is_ok()
            && eval(
                sig,
                pe,
                es,
                &bufs.stream[bufs.tail_len..],
                txs,
                &mut self.scratch,
            )
            .is_err()
        {
            // The kept bytes alone already gave this match on an earlier packet and the
            // new bytes alone do not: not reported again.
            return Err(Miss::AlreadyMatched);
        }
        r
    }

    /// Applies a matched rule: flowbits, alert-once mark, then its action. Returns true when
    /// evaluation of this packet stops (a pass, or any decision in strict order).
    fn on_match(
        &mut self,
        sig: &Sig,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        tx: Option<&TxRef<'_>>,
        ev: &mut PacketEval,
    ) -> bool {
        apply_flowbits(&mut st.bits, sig);
        let tx_info = tx.map(|t| {
            if st.tx_matched.len() < MAX_TX_MATCHES {
                st.tx_matched.push((sig.order, t.id()));
            }
            (t.id(), t.log())
        });
        let mut note = tx_info
            .as_ref()
            .map(|(id, _)| format!(" (tx {id})"))
            .unwrap_or_default();
        if ev.explain {
            if let Some(t) = tx {
                self.instance_note(sig, t, &mut note);
            }
        }
        let subject = crate::threshold::Subject {
            src: p.src_ip,
            dst: p.dst_ip,
            flow_id: p.flow_id,
            src_port: p.src_port,
            dst_port: p.dst_port,
            now_us: p.ts.0,
        };
        // threshold.config `suppress`: the alert is not logged; the actions still apply.
        let suppressed = sig.suppress.iter().any(|s| s.applies(p.src_ip, p.dst_ip));
        // Thresholds only decide whether this match logs; its actions always apply.
        let logs = !sig.noalert
            && !suppressed
            && sig
                .threshold
                .as_ref()
                .is_none_or(|spec| self.thresholds.alert(sig.order, spec, subject));
        if ev.explain {
            if suppressed && !sig.noalert {
                note.push_str(" (suppressed by threshold.config: not logged)");
            } else if logs && sig.threshold.is_some() {
                note.push_str(" (threshold: logged)");
            } else if !logs && sig.threshold.is_some() && !sig.noalert {
                note.push_str(" (threshold: not logged)");
            }
        }
        // threshold.config `rate_filter`: while active, the rule acts as its new action.
        let rated = sig
            .rate_filter
            .as_ref()
            .filter(|rf| self.thresholds.rate_active(sig.order, rf, subject))
            .map(|rf| match rf.new_action {
                RateAction::Alert => ActionKind::Alert,
                RateAction::Drop => ActionKind::Drop,
                RateAction::Pass => ActionKind::Pass,
                RateAction::Reject => ActionKind::Reject,
            });
        if let (Some(a), true) = (rated, ev.explain) {
            note.push_str(&format!(" (rate_filter active: acts as {})", a.as_str()));
        }
        match rated.unwrap_or(sig.action) {
            ActionKind::Alert => {
                if logs {
                    st.alerted = true;
                    let info = Self::alert_info(sig, false);
                    push_alert(&mut self.out, &mut self.stats, p, info, tx_info);
                }
                if ev.explain {
                    ev.lines.push(format!(
                        "{} sid {} alert: matched{note}{}",
                        ev.ctx,
                        sig.sid,
                        if sig.noalert {
                            " (noalert: not logged)"
                        } else {
                            ""
                        }
                    ));
                }
                false
            }
            // A rate filter's `pass` passes without an alert.
            ActionKind::Pass => {
                self.on_pass(sig, p, st, tx_info, logs && rated.is_none(), &note, ev);
                true
            }
            action => {
                let how = Deny {
                    action,
                    reason: if rated.is_some() {
                        "threshold detection_filter"
                    } else {
                        "rules"
                    },
                };
                self.on_drop(sig, how, p, st, tx_info, logs, &note, ev);
                ev.strict
            }
        }
    }

    /// `--explain`: names the instance that satisfied each multi-buffer group of the rule
    /// (which recipient, which query name, ...).
    fn instance_note(&mut self, sig: &Sig, t: &TxRef<'_>, note: &mut String) {
        for g in &sig.groups {
            let BufKind::App(b) = g.kind else { continue };
            if !b.multi() {
                continue;
            }
            if let Some(r) = (0..)
                .map_while(|n| t.buffer(b, n))
                .find(|r| g.matcher.matches(r, &mut self.scratch))
            {
                note.push_str(&format!(" {} {}", b.name(), String::from_utf8_lossy(r)));
            }
        }
    }

    /// A matched pass rule: the packet, or (by its type or scope) the rest of the flow.
    #[allow(clippy::too_many_arguments)]
    fn on_pass(
        &mut self,
        sig: &Sig,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        tx_info: Option<(u64, AppTxData)>,
        logs: bool,
        note: &str,
        ev: &mut PacketEval,
    ) {
        if sig.force_alert && logs {
            st.alerted = true;
            let info = Self::alert_info(sig, false);
            push_alert(&mut self.out, &mut self.stats, p, info, tx_info);
        }
        let whole = flow_scope(sig);
        if whole {
            st.passed = Some((p.pkt_num, sig.sid));
            self.stats.flows_passed += 1;
        }
        if ev.explain {
            ev.lines.push(if whole {
                format!(
                    "{} sid {} pass: flow passed{note}; later packets of this flow are not inspected ({} rule{})",
                    ev.ctx,
                    sig.sid,
                    sig.kind.as_str(),
                    if sig.scope == Some(ActionScope::Flow) { ", pass:flow" } else { "" }
                )
            } else {
                format!(
                    "{} sid {} pass: packet passed{note} (pass:packet); later packets are inspected",
                    ev.ctx, sig.sid
                )
            });
        }
        ev.decided = Some(ActionKind::Pass);
    }

    /// A matched drop or reject rule: logs, then (inline) the verdict for the packet or the
    /// flow, and the drop record of the first deciding rule.
    #[allow(clippy::too_many_arguments)]
    fn on_drop(
        &mut self,
        sig: &Sig,
        how: Deny,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        tx_info: Option<(u64, AppTxData)>,
        logs: bool,
        note: &str,
        ev: &mut PacketEval,
    ) {
        let (inline, action) = (ev.inline, how.action);
        let whole = flow_scope(sig);
        if logs {
            st.alerted = true;
            let info = Self::alert_info(sig, inline);
            push_alert(&mut self.out, &mut self.stats, p, info, tx_info);
        }
        if inline {
            ev.verdict = ev.verdict.and(drop_verdict(action, whole));
            if ev.decided.is_none() {
                let info = Self::alert_info(sig, true);
                push_drop(&mut self.out, &mut self.stats, p, how.reason, Some(info));
                st.drop_logged[p.direction.index()] = true;
            }
            if whole && st.dropped.is_none() {
                st.dropped = Some((p.pkt_num, sig.sid));
                self.stats.flows_dropped += 1;
            }
        }
        if ev.explain {
            let what = match (inline, whole) {
                (true, true) => "flow dropped; later packets of this flow are dropped uninspected",
                (true, false) => "packet dropped",
                (false, true) => "would drop the flow inline (monitor mode: logged as allowed)",
                (false, false) => "would drop the packet inline (monitor mode: logged as allowed)",
            };
            let reject = match crate::sig::reject_to(action) {
                None => "",
                Some(sekisho_engine::RejectTo::Sender) => {
                    " (reject: a TCP RST / ICMP unreachable goes to the sender)"
                }
                Some(sekisho_engine::RejectTo::Receiver) => {
                    " (rejectdst: a TCP RST goes to the receiver)"
                }
                Some(sekisho_engine::RejectTo::Both) => {
                    " (rejectboth: TCP RSTs go to both sides; ICMP unreachable to the sender)"
                }
            };
            ev.lines.push(format!(
                "{} sid {} {}: {what}{note}{reject}",
                ev.ctx,
                sig.sid,
                action.as_str()
            ));
        }
        if ev.decided.is_none() {
            ev.decided = Some(action);
        }
    }

    /// NFW default actions (strict order), for a packet no rule decided.
    fn apply_defaults(
        &mut self,
        rules: &RuleSet,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        app: AppProto,
        ev: &mut PacketEval,
    ) {
        let ready = p
            .app
            .and_then(AppLayer::active_parser)
            .is_none_or(|pr| pr.client_ready());
        for &d in rules.defaults() {
            if !d.applies(p, app, self.established_before, ready) {
                continue;
            }
            if d.is_drop() {
                if ev.inline {
                    ev.verdict = ev.verdict.and(Verdict::Drop);
                    push_drop(&mut self.out, &mut self.stats, p, "default action", None);
                }
                if ev.explain {
                    ev.lines.push(format!(
                        "{} default action {}: {} (no rule decided; {}{})",
                        ev.ctx,
                        d.name(),
                        if ev.inline {
                            "packet dropped"
                        } else {
                            "would drop the packet inline"
                        },
                        if self.established_before {
                            "established, "
                        } else {
                            ""
                        },
                        dir_str(p.direction)
                    ));
                }
            } else {
                st.alerted = true;
                let info = AlertInfo {
                    blocked: false,
                    gid: 1,
                    sid: 0,
                    rev: 0,
                    signature: d.name().to_string(),
                    category: String::new(),
                    severity: 3,
                };
                push_alert(&mut self.out, &mut self.stats, p, info, None);
                if ev.explain {
                    ev.lines.push(format!(
                        "{} default action {}: alert (no rule decided)",
                        ev.ctx,
                        d.name()
                    ));
                }
            }
        }
    }
}

/// What rule evaluation needs from the flow's detection state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EvalState<'a> {
    /// Set flowbits.
    pub bits: &'a [u32],
    /// (rule order, tx id) pairs that already matched (alert once per tx).
    pub tx_matched: &'a [(u32, u64)],
    /// Incremental list matching: (rule order, tx id, instances already evaluated without a
    /// match), sorted by (rule order, tx id); `None` evaluates every instance and records
    /// nothing (firewall tables).
    pub tx_scanned: Option<&'a [(u32, u64, u32)]>,
    /// Protocol-detection-only rules were already evaluated in this packet's direction.
    pub pd_done: bool,
}

/// Evaluates one rule; `Ok(tx)` on a match (with the index into `txs` for app-tx rules).
pub(crate) fn eval(
    sig: &Sig,
    p: &PacketContext<'_>,
    st: EvalState<'_>,
    payload: &[u8],
    txs: &[TxRef<'_>],
    scratch: &mut MatchScratch,
) -> Result<Option<usize>, Miss> {
    let app = p.app.map_or(AppProto::Unknown, AppLayer::proto);
    // Transport and addresses first: a packet the header cannot match is not worth a word
    // in `--explain`, whatever the app protocol.
    match sig.proto {
        ProtoReq::Any => {}
        ProtoReq::Transport(t) => {
            if p.proto != t {
                return Err(Miss::Header);
            }
        }
        ProtoReq::Icmp => {
            if p.proto != 1 && p.proto != 58 {
                return Err(Miss::Header);
            }
        }
        ProtoReq::App(_) => {
            if p.proto != 6 && p.proto != 17 {
                return Err(Miss::Header);
            }
        }
    }
    if !sig.header_matches(p.src_ip, p.src_port, p.dst_ip, p.dst_port) {
        return Err(Miss::Header);
    }
    if let ProtoReq::App(want) = sig.proto {
        if app != want {
            return Err(Miss::Proto(app));
        }
    }
    if let Some(d) = sig.flow_dir() {
        let ok = matches!(
            (d, p.direction),
            (FlowDir::ToServer, Direction::ToServer) | (FlowDir::ToClient, Direction::ToClient)
        );
        if !ok {
            return Err(Miss::Flow("direction"));
        }
    }
    match sig.flow_state() {
        Some(FlowState::Established) if !p.established => {
            return Err(Miss::Flow("not established"))
        }
        Some(FlowState::NotEstablished) if p.established => return Err(Miss::Flow("established")),
        _ => {}
    }
    if sig.flow.stream == Some(FlowStream::OnlyStream) && p.proto != 6 {
        return Err(Miss::Flow("only_stream on a non-TCP packet"));
    }
    if sig.kind == SigKind::IpOnly && !p.first_in_direction {
        return Err(Miss::IpOnlyLater);
    }
    if sig.kind == SigKind::PdOnly
        && (st.pd_done || p.app.is_none_or(|a| a.proto() == AppProto::Unknown))
    {
        return Err(Miss::PdOnlyDone);
    }
    for (cmd, ids) in &sig.bits_cond {
        let any = ids.iter().any(|i| st.bits.contains(i));
        let ok = match cmd {
            BitsCmd::IsSet => any,
            // `isnotset,a|b`: true when one of them is not set.
            _ => ids.iter().any(|i| !st.bits.contains(i)),
        };
        if !ok {
            return Err(Miss::Bits);
        }
    }
    for c in &sig.app_cond {
        let ok = if c.negated {
            app != AppProto::Unknown && app != c.proto
        } else {
            app == c.proto
        };
        if !ok {
            return Err(Miss::AppProto);
        }
    }
    if let Some(d) = sig.dsize {
        // Suricata requires a payload for dsize forms that cannot be about an empty packet
        // (`!N`, `>N`, `>=N`, ranges, `=N` with N > 0): they never match a bare ACK
        // (suricata-verify test-dsize-values).
        let needs_payload = !matches!(d, SizeCmp::Lt(_) | SizeCmp::Le(_) | SizeCmp::Eq(0));
        if (needs_payload && p.payload.is_empty()) || !size_matches(d, p.payload.len() as u64) {
            return Err(Miss::Dsize);
        }
    }
    if let Some(f) = sig.flags {
        if p.proto != 6 || !flags_match(f, p.tcp_flags) {
            return Err(Miss::Flags);
        }
    }
    for &(is_type, c) in &sig.icmp {
        let ok = p
            .icmp
            .is_some_and(|(t, code)| size_matches(c, u64::from(if is_type { t } else { code })));
        if !ok {
            return Err(Miss::Icmp);
        }
    }
    if sig.kind == SigKind::AppTx {
        let mut last = Err(Miss::TxDone);
        let single = st
            .tx_scanned
            .and_then(|done| one_list_group(sig).map(|g| (g, done)));
        for (i, tx) in txs.iter().enumerate() {
            if st.tx_matched.contains(&(sig.order, tx.id())) {
                continue;
            }
            if let Some(((b, g), done)) = single {
                let from = done
                    .binary_search_by(|e| (e.0, e.1).cmp(&(sig.order, tx.id())))
                    .map_or(0, |k| done[k].2);
                match scan_instances(b, g, tx, from, scratch) {
                    Ok(()) => return Ok(Some(i)),
                    Err(seen) => {
                        if let Some(n) = seen.filter(|&n| n > from) {
                            scratch.scanned.push((sig.order, tx.id(), n));
                        }
                        last = Err(Miss::Group(0));
                    }
                }
                continue;
            }
            match sig.groups_match(payload, Some(tx), scratch) {
                Ok(()) => return Ok(Some(i)),
                Err(g) => last = Err(Miss::Group(g)),
            }
        }
        return last;
    }
    if sig.groups.iter().any(|g| g.kind == BufKind::Payload) && payload.is_empty() {
        return Err(Miss::Group(0));
    }
    sig.groups_match(payload, None, scratch)
        .map(|()| None)
        .map_err(Miss::Group)
}

/// The rule's only buffer group, when it reads a list buffer (one instance per recipient,
/// per query, ...): such a rule matches a transaction when one instance matches, and an
/// instance that did not match never will (instances are complete when added and never
/// change), so instances can be evaluated once each. With other groups beside it, a later
/// change elsewhere could make an earlier instance count, so those rules scan everything.
fn one_list_group(sig: &Sig) -> Option<(BufferId, &crate::sig::Group)> {
    // Transaction conditions (`dns.rcode`, `ssl_state`...) are checked by `groups_match`.
    if !sig.tx_conds.is_empty() {
        return None;
    }
    match sig.groups.as_slice() {
        [g] => match g.kind {
            BufKind::App(b) if b.multi() => Some((b, g)),
            _ => None,
        },
        _ => None,
    }
}

/// Evaluates instances `from..` of list buffer `b` of `tx`: `Ok` on a match; else
/// `Err(Some(n))`, all `n` instances now evaluated without a match, or `Err(None)` when
/// the result must not be remembered (a limit cut an evaluation short, so its "no match"
/// is not a verdict on the data).
fn scan_instances(
    b: BufferId,
    g: &crate::sig::Group,
    tx: &TxRef<'_>,
    from: u32,
    scratch: &mut MatchScratch,
) -> Result<(), Option<u32>> {
    if from == 0 && tx.buffer(b, 0).is_none() {
        // No instance at all: the group's meaning for an absent buffer (a negated match
        // holds), decided again each time since the first instance may still come.
        return if g.matcher.absent().is_some() {
            Ok(())
        } else {
            Err(None)
        };
    }
    let before = scratch.limit_hit();
    let mut n = from;
    while let Some(x) = tx.buffer(b, n as usize) {
        scratch.instances += 1;
        if g.matcher.matches(x, scratch) {
            return Ok(());
        }
        n += 1;
    }
    if scratch.limit_hit() && !before {
        return Err(None);
    }
    Err(Some(n))
}

impl Detector {
    /// The firewall tables for this packet: `Some(verdict)` when the packet is decided here
    /// (dropped, or TD skipped by a secondary pass), `None` to go on with TD.
    fn firewall_step(
        &mut self,
        p: &PacketContext<'_>,
        st: &mut FlowDet,
        inline: bool,
        explain: bool,
    ) -> Option<Verdict> {
        let fw = self.rules.firewall()?;
        let payload: &[u8] = if self.stream_flow == p.flow_id && !self.stream.is_empty() {
            &self.stream
        } else {
            p.payload
        };
        // `flow:established` on the state before the packet, as for threat detection: the
        // ACK completing the handshake is still connection setup (suricata-verify
        // ruletype-firewall-08 expects `flow:not_established` to accept all three).
        let pe = PacketContext {
            established: self.established_before,
            ..*p
        };
        let o = fw.evaluate(&pe, &mut st.fw, payload, &mut self.scratch);
        if explain && !o.explain.is_empty() {
            let ctx = self.ctx_line(p, st);
            for l in &o.explain {
                self.explain.push(format!("{ctx} firewall: {l}"));
            }
        }
        for a in &o.alerts {
            st.alerted = true;
            self.stats.alerts += 1;
            // An app-hook alert carries its transaction's protocol object, as Suricata's
            // firewall alerts do (the protocol's object and `tx_id`).
            let tx = a.tx_id.and_then(|id| {
                let parser = p.app.and_then(AppLayer::active_parser)?;
                parser
                    .txs()
                    .into_iter()
                    .find(|t| t.id() == id)
                    .map(|t| (id, t.log()))
            });
            self.out.push_back(Output::Alert(Box::new(AlertRecord {
                head: Detector::head(p),
                tx,
                alert: a.info.clone(),
                firewall: Some((a.hook.clone(), a.policy.clone())),
            })));
        }
        if o.verdict.is_drop() {
            let flow = o.verdict == FwVerdict::DropFlow;
            if flow && st.dropped.is_none() {
                st.dropped = Some((p.pkt_num, 0));
                self.stats.flows_dropped += 1;
            }
            if inline {
                let reason = o.drop_reason.unwrap_or("firewall rules");
                // The dropping rule's own alert (suricata-verify ruletype-firewall-27: an
                // accept:hook alert earlier in the same packet is not the drop's).
                let alert = o
                    .alerts
                    .iter()
                    .find(|a| Some(a.info.sid) == o.drop_sid)
                    .map(|a| a.info.clone());
                push_drop(&mut self.out, &mut self.stats, p, reason, alert);
                st.drop_logged[p.direction.index()] = true;
                return Some(match o.reject {
                    Some(to) => Verdict::Reject { to, flow },
                    None if flow => Verdict::DropFlow,
                    None => Verdict::Drop,
                });
            }
            return Some(Verdict::Accept);
        }
        if o.skip_td {
            return Some(Verdict::Accept);
        }
        None
    }
}

impl FlowDet {
    fn new(seq: u64, p: &PacketContext<'_>) -> FlowDet {
        let (client, server) = match p.direction {
            Direction::ToServer => ((p.src_ip, p.src_port), (p.dst_ip, p.dst_port)),
            Direction::ToClient => ((p.dst_ip, p.dst_port), (p.src_ip, p.src_port)),
        };
        FlowDet {
            seq,
            client,
            server,
            passed: None,
            dropped: None,
            bits: Vec::new(),
            tx_matched: Vec::new(),
            tx_scanned: Vec::new(),
            tx_memo: TxScanMemo::default(),
            pd_done: [false; 2],
            alerted: false,
            proto_explained: false,
            quiet_notes: 0,
            payload_seen: [0; 2],
            fw: FwFlow::default(),
            stream_seen: [false; 2],
            drop_logged: [false; 2],
            tail: [Vec::new(), Vec::new()],
        }
    }
}

fn push_alert(
    out: &mut VecDeque<Output>,
    stats: &mut DetectStats,
    p: &PacketContext<'_>,
    alert: AlertInfo,
    tx: Option<(u64, AppTxData)>,
) {
    stats.alerts += 1;
    out.push_back(Output::Alert(Box::new(AlertRecord {
        head: Detector::head(p),
        tx,
        alert,
        firewall: None,
    })));
}

fn push_drop(
    out: &mut VecDeque<Output>,
    stats: &mut DetectStats,
    p: &PacketContext<'_>,
    reason: &'static str,
    alert: Option<AlertInfo>,
) {
    stats.drops += 1;
    out.push_back(Output::Drop(Box::new(DropRecord {
        head: Detector::head(p),
        payload_len: p.payload.len(),
        tcp_flags: p.tcp_flags,
        reason,
        alert,
    })));
}

fn proto_req_str(p: ProtoReq) -> &'static str {
    match p {
        ProtoReq::Any => "ip",
        ProtoReq::Transport(6) => "tcp",
        ProtoReq::Transport(17) => "udp",
        ProtoReq::Transport(_) => "a transport protocol",
        ProtoReq::Icmp => "icmp",
        ProtoReq::App(a) => a.as_str(),
    }
}

impl Inspector for Detector {
    fn on_packet(&mut self, p: &PacketContext<'_>) -> Verdict {
        self.stream.clear();
        self.stream_gap = false;
        self.stream_flow = p.flow_id;
        self.established_before = p.established;
        Verdict::Accept
    }

    fn on_stream_data(&mut self, chunk: &sekisho_engine::AppChunk<'_>) -> Verdict {
        if chunk.flow_id == self.stream_flow && self.rules.needs_stream() {
            // Bounded: one packet releases at most what reassembly held for the flow.
            self.stream.extend_from_slice(chunk.data);
            self.stream_gap |= chunk.gap;
        }
        Verdict::Accept
    }

    fn on_packet_end(&mut self, p: &PacketContext<'_>) -> Verdict {
        if self.rules.is_empty() {
            return Verdict::Accept;
        }
        // A packet that completes the handshake is connection setup (not yet established)
        // only when it carries no data. Data on it (a client that sent its final ACK early,
        // out of order, and its first data segment completes the handshake here) is
        // established traffic: otherwise `flow:established` rules and the NFW established
        // defaults would never see it (found by the sensor fuzz target in fuzz/).
        if p.established && !p.payload.is_empty() {
            self.established_before = true;
        }
        self.inspect(p)
    }

    fn on_flow_drop(&mut self, p: &PacketContext<'_>) {
        let Some(st) = self.flows.get_mut(&p.flow_id) else {
            return;
        };
        let d = p.direction.index();
        if st.dropped.is_some() && (self.cfg.drop_flows_all || !st.drop_logged[d]) {
            st.drop_logged[d] = true;
            let reason = if st.fw.dropped() {
                "firewall flow drop"
            } else {
                "flow drop"
            };
            push_drop(&mut self.out, &mut self.stats, p, reason, None);
        }
    }

    /// Inline with rules that can drop: keeps the flow's detection state from before the
    /// packet, so a packet dropped after delivery leaves no trace in it (its retransmission
    /// then matches, and is dropped, again: alert-once marks, flowbits, the raw stream
    /// window and the stream depth count all come back).
    fn checkpoint(&mut self, p: &PacketContext<'_>) -> bool {
        if !self.cfg.inline || !self.rules.can_drop() {
            return false;
        }
        let st = match self.flows.get(&p.flow_id) {
            Some(st) => st.clone(),
            None => {
                self.flow_seq += 1;
                let st = Box::new(FlowDet::new(self.flow_seq, p));
                self.flows.insert(p.flow_id, st.clone());
                st
            }
        };
        self.saved = Some((p.flow_id, st));
        true
    }

    fn take_exception(&mut self) -> Option<ExceptionTarget> {
        self.exception.take()
    }

    fn rollback(&mut self, flow_id: u64) {
        let Some((id, mut before)) = self.saved.take() else {
            return;
        };
        if id != flow_id {
            return;
        }
        if let Some(now) = self.flows.get(&flow_id) {
            // What was logged stays logged; the explain bookkeeping is not flow state.
            before.alerted |= now.alerted;
            before.drop_logged = now.drop_logged;
            before.proto_explained = now.proto_explained;
            before.quiet_notes = now.quiet_notes;
        }
        // `before.tx_memo` is cold (a checkpoint does not copy the memo): the app layer was
        // rolled back too, and a list watermark past the restored instances would be wrong.
        self.flows.insert(flow_id, before);
    }

    fn flow_state_bytes(&self) -> usize {
        FLOW_STATE_BYTES
    }

    fn reserve_flows(&mut self, max_flows: usize) {
        // As the engine's map: sized like Suricata's `flow.prealloc` and doubling from there
        // (counted with its rehash peak in `FLOW_STATE_BYTES`).
        let _ = self.flows.try_reserve(max_flows.min(10_000));
    }

    fn on_flow_end(&mut self, record: &mut FlowRecord) {
        if let Some(st) = self.flows.remove(&record.flow_id) {
            record.alerted |= st.alerted;
            if st.dropped.is_some() && self.cfg.inline {
                record.action = Some(FlowAction::Drop);
            } else if st.fw.accepted() && record.action.is_none() {
                record.action = Some(FlowAction::Accept);
            } else if st.passed.is_some() && record.action.is_none() {
                record.action = Some(FlowAction::Pass);
            }
        }
    }
}
