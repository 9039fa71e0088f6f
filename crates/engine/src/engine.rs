//! The engine: decode → flow → TCP state/reassembly → inspector, with queued events.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use crate::app::{AppBudgets, AppLayer, HoldBudget};
use crate::config::EngineConfig;
use crate::decode::{tcp_flags, Decoder, NoPacket, Packet, TcpInfo, Transport};
use crate::event::{
    AppAnomalyRecord, AppChunk, AppTxRecord, DecoderEventRecord, Direction, Event, ExceptionRecord,
    Inspector, PacketContext, PacketTuple, RejectTo, StreamEventRecord, Transmit, Verdict,
};
use crate::exception::{ExceptionAction, ExceptionTarget};
use crate::flow::{
    Flow, FlowAction, FlowEndReason, FlowKey, FlowTable, SessionBudget, TcpSession, TcpState,
};
use crate::link::LinkType;
use crate::reassembly::{
    Outcome, ReassemblyBudget, ReassemblyEvent, SegmentFlags, StreamChunk, StreamReassembler,
};
use crate::stats::Stats;
use crate::time::Timestamp;

/// How often (in packet time) [`Engine::handle_packet`] runs a timeout pass by itself.
const TIMEOUT_CHECK_INTERVAL_US: u64 = 1_000_000;

/// The sans-I/O packet engine.
///
/// Feed frames with [`Engine::handle_packet`] in capture order, call [`Engine::handle_timeout`]
/// when time passes without packets (live capture), [`Engine::finish`] at end of input, and
/// drain [`Engine::poll_event`] after each call. The engine never reads a clock, a file or a
/// socket. Payload goes synchronously to the [`Inspector`] `I` (default `()`: accept all).
pub struct Engine<I: Inspector = ()> {
    cfg: EngineConfig,
    decoder: Decoder,
    flows: FlowTable,
    stats: Stats,
    events: VecDeque<Event>,
    inspector: I,
    /// Packets to send (reject answers), oldest first.
    transmits: VecDeque<Transmit>,
    rejects_sent: u64,
    invalid_dropped: u64,
    /// Budget of records about packets dropped before any flow.
    drop_log: crate::droplog::DropLog,
    scratch: Vec<u8>,
    budget: ReassemblyBudget,
    /// TCP session memory, all flows together (`stream.memcap`).
    sessions: SessionBudget,
    /// App-layer budgets, all flows together: bytes held by detection
    /// (`app_layer.hold_memcap`) and parser state (`app_layer.memcap`).
    hold: AppBudgets,
    pkt_num: u64,
    next_timeout_check: Timestamp,
    dropped_events: u64,
}

impl Engine<()> {
    /// An engine without an inspector (flow tracking and statistics only).
    pub fn new(cfg: EngineConfig) -> Self {
        Engine::with_inspector(cfg, ())
    }
}

/// Everything a flow-level operation needs, borrowed apart from the engine.
struct Parts<'e, I> {
    flows: &'e mut FlowTable,
    cx: Cx<'e, I>,
}

/// Everything but the flow table, so a flow borrowed from the table can be worked on with
/// the rest of the engine.
struct Cx<'e, I> {
    cfg: &'e EngineConfig,
    stats: &'e mut Stats,
    events: &'e mut VecDeque<Event>,
    inspector: &'e mut I,
    budget: &'e mut ReassemblyBudget,
    sessions: &'e mut SessionBudget,
    hold: &'e AppBudgets,
    dropped_events: &'e mut u64,
}

impl<I: Inspector> Engine<I> {
    /// An engine calling `inspector` for every packet and stream chunk.
    pub fn with_inspector(cfg: EngineConfig, mut inspector: I) -> Self {
        let cap = cfg
            .max_flows
            .unwrap_or_else(|| FlowTable::cap_for(cfg.flow_memcap, inspector.flow_state_bytes()))
            .max(1);
        inspector.reserve_flows(cap);
        Engine {
            decoder: Decoder::new(&cfg),
            flows: FlowTable::new(cap, cfg.flow_id_seed),
            stats: Stats::default(),
            events: VecDeque::new(),
            inspector,
            transmits: VecDeque::new(),
            rejects_sent: 0,
            invalid_dropped: 0,
            drop_log: crate::droplog::DropLog::default(),
            scratch: Vec::new(),
            budget: ReassemblyBudget::new(cfg.reassembly_memcap),
            sessions: SessionBudget::new(
                cfg.stream_memcap,
                crate::flow::session_bytes(&cfg.reassembly),
            ),
            hold: AppBudgets {
                hold: HoldBudget::new(cfg.app_layer.hold_memcap),
                memcap: HoldBudget::new(cfg.app_layer.memcap),
            },
            pkt_num: 0,
            next_timeout_check: Timestamp(0),
            dropped_events: 0,
            cfg,
        }
    }

    /// Replaces the exception policies (a reload): they decide from the next packet on;
    /// what was already done to a flow stays done.
    pub fn set_exception_policies(&mut self, policies: crate::ExceptionPolicies) {
        self.cfg.exceptions = policies;
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The inspector.
    pub fn inspector(&self) -> &I {
        &self.inspector
    }

    /// The inspector, mutably.
    pub fn inspector_mut(&mut self) -> &mut I {
        &mut self.inspector
    }

    /// All counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Bytes charged to each global memory cap now (exact at any time; the `*.memuse`
    /// stats gauges are refreshed from it once per second of packet time and at the end).
    pub fn memuse(&self) -> MemUse {
        MemUse {
            stream: self.sessions.used(),
            stream_limit: self.cfg.stream_memcap,
            reassembly: self.budget.used(),
            reassembly_limit: self.budget.limit(),
            app_layer: self.hold.memcap.used(),
            app_layer_limit: self.cfg.app_layer.memcap,
            hold: self.hold.hold.used(),
            hold_limit: self.cfg.app_layer.hold_memcap,
        }
    }

    /// Copies [`Engine::memuse`] into the stats gauges.
    fn refresh_gauges(&mut self) {
        let m = self.memuse();
        self.stats.tcp.memuse = m.stream as u64;
        self.stats.tcp.reassembly_memuse = m.reassembly as u64;
        self.stats.app_mem.memuse = m.app_layer as u64;
        self.stats.app_mem.hold_memuse = m.hold as u64;
    }

    /// Flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Flow-table capacity (entries) derived from the configuration.
    pub fn flow_capacity(&self) -> usize {
        self.flows.cap
    }

    /// Decoder, stream and app-layer anomaly events discarded because the queue held
    /// `max_queued_events`.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// When a driver without packets (live capture, quiet link) should call
    /// [`Engine::handle_timeout`] next; `None` when nothing is tracked. Packet time drives
    /// timeouts by itself while packets flow.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        (self.flows.len() > 0 || self.decoder.defrag.in_progress() > 0)
            .then_some(self.next_timeout_check)
    }

    /// True when [`Engine::poll_transmit`] has something (a cheap check for drivers).
    #[inline]
    pub fn has_transmit(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// True when [`Engine::poll_event`] has something.
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Reject answers built so far (TCP resets and ICMP errors handed to
    /// [`Engine::poll_transmit`]).
    pub fn rejects_sent(&self) -> u64 {
        self.rejects_sent
    }

    /// Next packet the engine wants sent (inline rejects: TCP resets, ICMP port
    /// unreachables), oldest first. Drain after every `handle_packet`, like events.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Builds the answers of a reject of `pkt`: TCP resets to its sender and/or receiver,
    /// else an ICMP port unreachable to its sender (non-TCP `rejectdst` answers nobody:
    /// the receiver never saw the datagram). Packets that must not be answered (resets,
    /// ICMP errors, broadcasts, later fragments) give none; see [`crate::emit`].
    fn queue_reject(&mut self, ts: Timestamp, pkt: &Packet<'_>, to: RejectTo) {
        let o = crate::emit::Offending::from_packet(pkt);
        let flow_id = self
            .flows
            .get(&FlowKey::from_packet(pkt, self.key_depth(pkt)))
            .and_then(|i| self.flows.flow(i))
            .map_or(0, |f| f.flow_id);
        let mut out = Vec::with_capacity(2);
        if o.tcp.is_some() {
            if to.sender() {
                out.extend(crate::emit::tcp_rst_to_sender(&o));
            }
            if to.receiver() {
                out.extend(crate::emit::tcp_rst_to_receiver(&o));
            }
        } else if to.sender() {
            out.extend(crate::emit::icmp_unreachable(&o));
        }
        for packet in out {
            self.rejects_sent += 1;
            self.transmits.push_back(Transmit {
                ts,
                flow_id,
                packet,
            });
        }
    }

    /// Next queued event, oldest first. Drain after every `handle_*`/`finish` call: flow-end
    /// and transaction events are never dropped (decoder, stream and app-layer anomalies are,
    /// beyond `max_queued_events`).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn parts(&mut self) -> Parts<'_, I> {
        Parts {
            flows: &mut self.flows,
            cx: Cx {
                cfg: &self.cfg,
                stats: &mut self.stats,
                events: &mut self.events,
                inspector: &mut self.inspector,
                budget: &mut self.budget,
                sessions: &mut self.sessions,
                hold: &self.hold,
                dropped_events: &mut self.dropped_events,
            },
        }
    }

    /// Processes one captured frame seen at `ts`. Never panics; malformed input raises
    /// decoder events. Returns the verdict (always Accept unless the inspector drops).
    pub fn handle_packet(&mut self, ts: Timestamp, link: LinkType, frame: &[u8]) -> Verdict {
        self.pkt_num += 1;
        let d = &mut self.stats.decoder;
        d.pkts += 1;
        d.bytes += frame.len() as u64;
        d.max_pkt_size = d.max_pkt_size.max(frame.len() as u64);
        if ts >= self.next_timeout_check {
            if self.next_timeout_check.0 != 0 {
                self.handle_timeout(ts);
            }
            self.next_timeout_check = Timestamp(ts.0.saturating_add(TIMEOUT_CHECK_INTERVAL_US));
        }
        self.decoder.events.clear();
        let mut scratch = std::mem::take(&mut self.scratch);
        let decoded = self
            .decoder
            .decode(&mut self.stats, ts, link, frame, &mut scratch);
        // Matching by reference lets `on_packet` read the packet where `decode` left it
        // instead of moving the whole `Packet` into a new local first.
        let verdict = match &decoded {
            Ok(pkt) => {
                let v = self.on_packet(ts, pkt);
                if self.cfg.inline {
                    if let Some(to) = v.reject_to() {
                        self.queue_reject(ts, pkt, to);
                    }
                }
                v
            }
            Err(e) => {
                self.queue_decoder_events(ts, None, &[], None);
                match *e {
                    NoPacket::Invalid => {
                        self.stats.decoder.invalid += 1;
                        // Inline, a packet the engine cannot decode is not forwarded: what
                        // it carries was never inspected (a malformed tunnel's inner packet,
                        // a fragment of a discarded datagram), and the log says so. A held
                        // fragment is forwarded: the receiver cannot complete its datagram
                        // without the last one, which carries the verdict of the whole.
                        if self.cfg.inline {
                            self.invalid_dropped += 1;
                            self.log_invalid_drop(ts);
                            return self.finish_invalid(scratch);
                        }
                    }
                    NoPacket::DefragFull => {
                        self.scratch = scratch;
                        return self.defrag_full(ts);
                    }
                    NoPacket::FragmentHeld | NoPacket::Ignored => {}
                }
                Verdict::Accept
            }
        };
        self.scratch = scratch;
        verdict
    }

    /// Puts the scratch buffer back after an undecodable packet was dropped inline.
    fn finish_invalid(&mut self, scratch: Vec<u8>) -> Verdict {
        self.scratch = scratch;
        Verdict::Drop
    }

    /// Packets dropped inline because they could not be decoded.
    pub fn invalid_dropped(&self) -> u64 {
        self.invalid_dropped
    }

    /// The head of a drop or exception record about the frame the decoder just failed on:
    /// its addresses as far as decoding got, no flow (`flow_id` 0).
    fn failed_head(&self, ts: Timestamp, t: &PacketTuple) -> crate::records::PacketHead {
        crate::records::PacketHead {
            ts,
            pkt_num: self.pkt_num,
            flow_id: 0,
            src_ip: t.src_ip,
            src_port: t.src_port,
            dst_ip: t.dst_ip,
            dst_port: t.dst_port,
            proto: t.proto,
            direction: Direction::ToServer,
            app_proto: None,
        }
    }

    /// Queues the `drop` record (reason `decode error`) of an undecodable packet dropped
    /// inline, within the drop-record budget ([`crate::droplog`]); a frame without a
    /// readable IP header has nothing to name and is only counted (its decoder anomaly
    /// record says what was wrong).
    #[cold]
    fn log_invalid_drop(&mut self, ts: Timestamp) {
        let Some(t) = self.decoder.failed.clone() else {
            return;
        };
        if !self.drop_log.admit(ts) {
            return;
        }
        let head = self.failed_head(ts, &t);
        self.events
            .push_back(Event::Drop(Box::new(crate::records::DropRecord {
                head,
                payload_len: 0,
                tcp_flags: 0,
                reason: "decode error",
                alert: None,
            })));
    }

    /// A fragment the full reassembler refused (tracker table or `defrag.memcap`): the
    /// `defrag_memcap` exception policy. Its datagram never completed, so there is no flow:
    /// as in Suricata the flow actions act on the packet (`drop-flow` and `auto` inline are
    /// `drop-packet`, `pass-flow` and `bypass` are `pass-packet`, and that is what is counted
    /// and recorded). Inline, `drop-packet` and `reject` drop the fragment (no answer is
    /// sent for a fragment); `pass-packet` and `ignore` forward it uninspected. Counted every
    /// time; recorded (a `drop` record when it drops) within the drop-record budget.
    #[cold]
    fn defrag_full(&mut self, ts: Timestamp) -> Verdict {
        let inline = self.cfg.inline;
        let target = ExceptionTarget::DefragMemcap;
        let action = match self.cfg.exceptions.resolve(target, inline) {
            ExceptionAction::DropFlow => ExceptionAction::DropPacket,
            ExceptionAction::PassFlow | ExceptionAction::Bypass => ExceptionAction::PassPacket,
            a => a,
        };
        self.stats.exception.add(target, action);
        if let Some(t) = self.decoder.failed.clone() {
            if self.drop_log.admit(ts) {
                let packet = self.failed_head(ts, &t);
                self.events
                    .push_back(Event::Exception(Box::new(ExceptionRecord {
                        packet,
                        tcp_flags: 0,
                        payload_len: 0,
                        target,
                        cause: target.cause(),
                        action,
                        inline,
                    })));
            }
        }
        if inline && action.drops() {
            self.inspector.on_exception(target, action);
            Verdict::Drop
        } else {
            Verdict::Accept
        }
    }

    fn queue_decoder_events(
        &mut self,
        ts: Timestamp,
        tuple: Option<PacketTuple>,
        vlan: &[u16],
        flow_id: Option<u64>,
    ) {
        for &event in &self.decoder.events {
            if self.events.len() >= self.cfg.max_queued_events {
                self.dropped_events += 1;
                continue;
            }
            self.events.push_back(Event::Decoder(DecoderEventRecord {
                ts,
                pkt_num: self.pkt_num,
                event,
                tuple: tuple.clone(),
                vlan: vlan.to_vec(),
                flow_id,
            }));
        }
    }

    fn on_packet(&mut self, ts: Timestamp, pkt: &Packet<'_>) -> Verdict {
        if let Some(q) = pkt.icmp_error {
            let key = FlowKey::new(q.src, q.src_port, q.dst, q.dst_port, q.proto, pkt.vlan)
                .at_depth(self.key_depth(pkt));
            if let Some(idx) = self.flows.get(&key) {
                return self.on_icmp_error(ts, pkt, idx, q.src, q.src_port);
            }
        }
        let key = FlowKey::from_packet(pkt, self.key_depth(pkt));
        let syn_only = matches!(pkt.transport, Transport::Tcp(t)
            if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN);
        let pkt_num = self.pkt_num;
        let mut p = self.parts();
        let mut lost_state = false;
        let idx = match p.flows.get(&key) {
            Some(idx) => {
                let reuse = syn_only
                    && pkt.checksum_ok
                    && p.flows.flow(idx).is_some_and(|f| {
                        f.tcp.as_ref().is_some_and(|t| {
                            matches!(t.state, TcpState::Closed | TcpState::TimeWait)
                        })
                    });
                if reuse {
                    p.cx.stats.flow.tcp_reuse += 1;
                    p.end_flow(idx, FlowEndReason::TcpReuse, ts);
                    p.new_flow(key, pkt, ts)
                } else {
                    idx
                }
            }
            None => {
                // A flow evicted earlier (table full) comes back without its state.
                lost_state = p.flows.take_evicted(&key);
                p.new_flow(key, pkt, ts)
            }
        };
        p.flows.touch(idx);
        let verdict = p.update_flow(idx, ts, pkt_num, pkt, lost_state);
        if !self.decoder.events.is_empty() {
            let flow_id = self.flows.flow(idx).map(|f| f.flow_id);
            let tuple = PacketTuple {
                src_ip: pkt.src,
                dst_ip: pkt.dst,
                src_port: pkt.src_port,
                dst_port: pkt.dst_port,
                proto: pkt.proto,
            };
            self.queue_decoder_events(ts, Some(tuple), pkt.vlans(), flow_id);
        }
        verdict
    }

    /// The tunnel depth that goes into the flow key (0 when recursion tracking is off).
    fn key_depth(&self, pkt: &Packet<'_>) -> u8 {
        if self.cfg.recursion_tracking {
            pkt.tunnel_depth
        } else {
            0
        }
    }

    /// Counts an ICMP destination-unreachable in the flow of the packet it quotes, in the
    /// direction opposite to that packet (Suricata links these errors to their flow).
    fn on_icmp_error(
        &mut self,
        ts: Timestamp,
        pkt: &Packet<'_>,
        idx: u32,
        quoted_src: std::net::IpAddr,
        quoted_sport: u16,
    ) -> Verdict {
        let pkt_num = self.pkt_num;
        self.flows.touch(idx);
        let Some(flow) = self.flows.flow_mut(idx) else {
            return Verdict::Accept;
        };
        let dir = flow.direction_of(quoted_src, quoted_sport).reverse();
        flow.dirs[dir.index()].update(ts, u64::from(pkt.flow_bytes), pkt.ttl, 0);
        flow.last = ts;
        if flow.tcp.is_none() && flow.dirs[0].pkts > 0 && flow.dirs[1].pkts > 0 {
            flow.established = true;
        }
        let ctx = PacketContext {
            app: flow.app.as_deref(),
            ..packet_context(flow, pkt, ts, pkt_num, dir, 0)
        };
        let flow_id = flow.flow_id;
        let verdict = self.inspector.on_packet(&ctx);
        let verdict = verdict.and(self.inspector.on_packet_end(&ctx));
        if self.cfg.inline && verdict.is_flow_drop() {
            flow.action = Some(FlowAction::Drop);
        }
        if !self.decoder.events.is_empty() {
            let tuple = PacketTuple {
                src_ip: pkt.src,
                dst_ip: pkt.dst,
                src_port: 0,
                dst_port: 0,
                proto: pkt.proto,
            };
            self.queue_decoder_events(ts, Some(tuple), pkt.vlans(), Some(flow_id));
        }
        verdict
    }

    /// Ends flows idle past their timeout at `now` and expires fragment trackers.
    /// `handle_packet` also does this once per second of packet time.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if now >= self.next_timeout_check {
            self.next_timeout_check = Timestamp(now.0.saturating_add(TIMEOUT_CHECK_INTERVAL_US));
        }
        self.decoder.defrag.expire(now, &mut self.stats.defrag);
        self.refresh_gauges();
        let mut p = self.parts();
        let min_us = p.min_timeout_secs().saturating_mul(1_000_000);
        let mut cur = p.flows.oldest();
        while let Some(idx) = cur {
            let next = p.flows.newer(idx);
            if p.flows.is_expired(idx, now, &p.cx.cfg.timeouts) {
                p.cx.stats.flow.end_timeout += 1;
                p.end_flow(idx, FlowEndReason::Timeout, now);
            } else if p
                .flows
                .flow(idx)
                .is_some_and(|f| now.micros_since(f.last) < min_us)
            {
                break;
            }
            cur = next;
        }
        if p.flows.emergency {
            let pct = 100usize.saturating_sub(usize::from(p.cx.cfg.emergency_recovery_pct));
            if p.flows.len() * 100 <= p.flows.cap * pct {
                p.flows.emergency = false;
                p.cx.stats.flow.emerg_mode_over += 1;
            }
        }
    }

    /// End of input: every remaining flow ends with reason `shutdown` (oldest first).
    pub fn finish(&mut self, now: Timestamp) {
        while !self.finish_some(now, usize::MAX) {}
    }

    /// End of input in steps: ends at most `max` of the remaining flows (oldest first) as
    /// [`Engine::finish`] does; true when none remain. A driver that drains the events
    /// between steps holds a bounded number of flow records at shutdown, not one per flow
    /// of a full table.
    pub fn finish_some(&mut self, now: Timestamp, max: usize) -> bool {
        let mut p = self.parts();
        let mut done = false;
        for _ in 0..max {
            let Some(idx) = p.flows.oldest() else {
                done = true;
                break;
            };
            p.cx.stats.flow.end_shutdown += 1;
            p.end_flow(idx, FlowEndReason::Shutdown, now);
        }
        let done = done || p.flows.oldest().is_none();
        self.refresh_gauges();
        done
    }
}

impl<I: Inspector> Parts<'_, I> {
    fn min_timeout_secs(&self) -> u64 {
        let t = &self.cx.cfg.timeouts;
        let e = self.flows.emergency;
        [t.default, t.udp, t.icmp]
            .iter()
            .flat_map(|c| {
                if e {
                    [c.emergency_new, c.emergency_established]
                } else {
                    [c.new, c.established]
                }
            })
            .chain(if e {
                [
                    t.tcp.emergency_new,
                    t.tcp.emergency_established,
                    t.tcp.emergency_closed,
                ]
            } else {
                [t.tcp.new, t.tcp.established, t.tcp.closed]
            })
            .min()
            .unwrap_or(0)
    }

    fn new_flow(&mut self, key: FlowKey, pkt: &Packet<'_>, ts: Timestamp) -> u32 {
        if self.flows.len() >= self.flows.cap {
            self.cx.stats.flow.memcap += 1;
            if !self.flows.emergency {
                self.flows.emergency = true;
                self.cx.stats.flow.emerg_mode_entered += 1;
            }
            if let Some(old) = self.flows.eviction_victim() {
                self.cx.stats.flow.emerg_evicted += 1;
                self.flows.mark_evicted(old);
                self.end_flow(old, FlowEndReason::Forced, ts);
            }
        }
        let s = &mut self.cx.stats.flow;
        s.total += 1;
        match pkt.proto {
            6 => s.tcp += 1,
            17 => s.udp += 1,
            1 => s.icmpv4 += 1,
            58 => s.icmpv6 += 1,
            _ => {}
        }
        // A TCP flow's session is charged to `stream.memcap`; one that does not fit is not
        // created, and the flow's packets meet the `stream_memcap` policy (`update_flow`).
        let session = pkt.proto != 6 || self.cx.sessions.try_reserve();
        if !session {
            self.cx.stats.tcp.ssn_memcap_drop += 1;
        }
        let idx = self.flows.insert(key, pkt, ts, session);
        self.cx.stats.flow.active = self.flows.len() as u64;
        self.cx.stats.tcp.memuse = self.cx.sessions.used() as u64;
        idx
    }

    fn update_flow(
        &mut self,
        idx: u32,
        ts: Timestamp,
        pkt_num: u64,
        pkt: &Packet<'_>,
        lost_state: bool,
    ) -> Verdict {
        let inline = self.cx.cfg.inline;
        let Some(flow) = self.flows.flow_mut(idx) else {
            return Verdict::Accept;
        };
        let dir = flow.direction_of(pkt.src, pkt.src_port);
        let flags = match pkt.transport {
            Transport::Tcp(t) => t.flags,
            _ => 0,
        };
        flow.dirs[dir.index()].update(ts, u64::from(pkt.flow_bytes), pkt.ttl, flags);
        flow.last = ts;
        if flow.tcp.is_none() && flow.dirs[0].pkts > 0 && flow.dirs[1].pkts > 0 {
            flow.established = true;
        }
        let base = packet_context(flow, pkt, ts, pkt_num, dir, flags);
        if inline && flow.action == Some(FlowAction::Drop) {
            // Dropped uninspected; the inspector only hears of it (for drop logging).
            self.cx.inspector.on_flow_drop(&base);
            return Verdict::DropFlow;
        }
        if inline && flow.bypass {
            // An exception policy passed the rest of the flow.
            return Verdict::Accept;
        }
        // Where the engine already knows it cannot see what the rules need: a flow whose
        // state was evicted, a TCP flow without its handshake that is not picked up.
        let blind = if lost_state {
            Some(ExceptionTarget::FlowMemcap)
        } else if flow.ssn_refused && !self.cx.retry_session(flow, pkt) {
            Some(ExceptionTarget::StreamMemcap)
        } else if self.cx.midstream_refused(flow, pkt) {
            Some(ExceptionTarget::StreamMidstream)
        } else {
            None
        };
        if let Some(target) = blind {
            if let Some(v) = self.cx.apply_exception(flow, target, &base, pkt) {
                return v;
            }
        }
        // The packet verdict comes first so that, inline, a dropped packet never reaches the
        // receiver's stream or app layer.
        let mut verdict = self.cx.inspector.on_packet(&PacketContext {
            app: flow.app.as_deref(),
            ..base
        });
        let deliver = !inline || verdict == Verdict::Accept;
        // Inline, detection may still drop the packet after its bytes went through
        // reassembly and the app layer (a drop decided on the transaction the packet
        // completed). Such a packet never reached the receiver, so everything its bytes did
        // is undone afterwards and its retransmission is inspected afresh: keep a copy of
        // what delivery changes, when the inspector says a drop can still come.
        // A bare SYN, SYN-ACK or ACK is not undone (see `deliver_tcp`): only data, FIN
        // and RST.
        let carries = !pkt.payload.is_empty() || flags & (tcp_flags::FIN | tcp_flags::RST) != 0;
        let snapshot = (inline && deliver && carries && self.cx.inspector.checkpoint(&base))
            .then(|| Snapshot::take(flow));
        match pkt.transport {
            Transport::Tcp(info) if pkt.checksum_ok => {
                verdict = verdict.and(self.cx.deliver_tcp(flow, &info, pkt, dir, deliver, &base));
            }
            Transport::Icmp { icmp_type, code }
                if dir == Direction::ToClient && flow.icmp_response.is_none() =>
            {
                flow.icmp_response = Some((icmp_type, code));
            }
            Transport::Udp if deliver && !pkt.payload.is_empty() => {
                verdict = verdict.and(self.cx.deliver_udp(flow, pkt, dir, &base));
            }
            _ => {}
        }
        if flow.tcp.as_ref().is_some_and(|t| {
            !matches!(
                t.state,
                TcpState::None | TcpState::SynSent | TcpState::SynRecv | TcpState::Closed
            )
        }) {
            flow.established = true;
        }
        verdict = verdict.and(self.cx.inspector.on_packet_end(&PacketContext {
            established: flow.established,
            app: flow.app.as_deref(),
            ..base
        }));
        verdict = verdict.and(self.cx.unseen_exceptions(flow, carries, &base, pkt));
        if inline && verdict.is_flow_drop() {
            flow.action = Some(FlowAction::Drop);
        } else if let Some(s) = snapshot.filter(|_| verdict.is_drop()) {
            // Dropped after delivery: back to the state before this packet.
            s.restore(flow, self.cx.budget);
            self.cx.inspector.rollback(base.flow_id);
        }
        // After `on_packet_end`, so detection saw the transactions this packet completed.
        self.cx.queue_app_records(flow, ts, pkt_num, dir);
        verdict
    }

    fn end_flow(&mut self, idx: u32, reason: FlowEndReason, now: Timestamp) {
        let emergency = self.flows.emergency;
        let Some(mut flow) = self.flows.remove(idx) else {
            return;
        };
        if flow.tcp.is_some() {
            self.cx.sessions.release();
            self.cx.stats.tcp.memuse = self.cx.sessions.used() as u64;
        }
        self.flush_streams(&mut flow, now);
        let mut rec = flow.record(reason, emergency);
        self.cx.inspector.on_flow_end(&mut rec);
        self.cx.stats.flow.active = self.flows.len() as u64;
        // Transactions still open are logged at flow end, before the flow record, after
        // the anomalies the flushed data raised (oriented like the flow).
        let limit = (self.cx.cfg.max_queued_events, &mut *self.cx.dropped_events);
        queue_app_anomalies(
            self.cx.events,
            limit,
            &mut flow,
            now,
            0,
            Direction::ToServer,
        );
        // A flow dropped inline logs no transaction still open at its end, as Suricata
        // does (no end-of-flow pass runs for a dropped flow): the transaction the drop cut
        // short is named by the alert and drop records, and was never delivered
        // (suricata-verify ruletype-firewall-123..136: no transaction record for the blocked
        // message; threshold-config-rate-filter-drop-hostdst: none for a flow a rate filter
        // dropped).
        if flow.action != Some(FlowAction::Drop) {
            queue_app_txs(self.cx.events, self.cx.stats, &mut flow, now, 0, true);
        }
        self.cx.events.push_back(Event::FlowEnd(Box::new(rec)));
    }

    fn flush_streams(&mut self, flow: &mut Flow, now: Timestamp) {
        let flow_id = flow.flow_id;
        let Some(sess) = flow.tcp.as_mut() else {
            return;
        };
        for (d, dir) in [(0, Direction::ToServer), (1, Direction::ToClient)] {
            let Some(stream) = sess.streams[d].as_mut() else {
                continue;
            };
            let inspector = &mut *self.cx.inspector;
            let gap_seen = &mut flow.dirs[d].gap;
            let app = &mut flow.app;
            let app_cfg = &self.cx.cfg.app_layer;
            let hold = self.cx.hold;
            let (cport, sport) = (flow.client_port, flow.server_port);
            let mut gap = false;
            stream.close(self.cx.budget, |c| match c {
                StreamChunk::Data { bytes, .. } => {
                    if app_cfg.enabled {
                        app.get_or_insert_with(|| {
                            Box::new(AppLayer::with_budgets(6, cport, sport, hold))
                        })
                        .feed(app_cfg, dir, bytes, 0);
                    }
                    inspector.on_stream_data(&AppChunk {
                        ts: now,
                        flow_id,
                        direction: dir,
                        data: bytes,
                        gap,
                    });
                    gap = false;
                }
                StreamChunk::Gap { len, .. } => {
                    gap = true;
                    *gap_seen = true;
                    if app_cfg.enabled {
                        app.get_or_insert_with(|| {
                            Box::new(AppLayer::with_budgets(6, cport, sport, hold))
                        })
                        .gap(dir, len);
                    }
                }
                StreamChunk::End(_) => {}
            });
            self.cx.stats.stream.merge(stream.stats());
        }
    }
}

impl<I: Inspector> Cx<'_, I> {
    /// The exception policies for what delivery and detection of a packet found they could
    /// not see; returns their verdict (`Accept` when none applies or decides).
    fn unseen_exceptions(
        &mut self,
        flow: &mut Flow,
        carries: bool,
        base: &PacketContext<'_>,
        pkt: &Packet<'_>,
    ) -> Verdict {
        let mut verdict = Verdict::Accept;
        // What delivery and detection found they could not see: a parser that stopped, or
        // detection that gave up when the hold budget ran out (every later data packet of
        // its flow), a limit or truncated list on a rule that can drop.
        if flow
            .app
            .as_deref_mut()
            .is_some_and(AppLayer::take_memcap_hit)
        {
            self.stats.app_mem.memcap += 1;
        }
        let blind = flow.app.as_deref().filter(|_| carries).and_then(|a| {
            if a.hold_exhausted() {
                Some(ExceptionTarget::CAUSE_HOLD_MEMCAP)
            } else if a.memcap_exhausted() {
                Some(ExceptionTarget::CAUSE_APP_MEMCAP)
            } else if a.active_parser().is_some_and(|p| p.failed()) {
                Some(ExceptionTarget::AppLayerError.cause())
            } else {
                None
            }
        });
        if let Some(cause) = blind {
            let v = self
                .apply_exception_because(flow, ExceptionTarget::AppLayerError, cause, base, pkt)
                .unwrap_or(Verdict::Accept);
            verdict = verdict.and(v);
        }
        if let Some(target) = self.inspector.take_exception() {
            let v = self
                .apply_exception(flow, target, base, pkt)
                .unwrap_or(Verdict::Accept);
            verdict = verdict.and(v);
        }
        verdict
    }

    /// Queues the app-layer anomalies and transactions a packet in direction `dir` left
    /// on `flow`.
    fn queue_app_records(&mut self, flow: &mut Flow, ts: Timestamp, pkt_num: u64, dir: Direction) {
        // Only when a parser has something to hand out: most packets (ACKs, body segments)
        // complete nothing, and draining every parser on every packet cost ~10% of a
        // replay (callgrind on scripts/bench-replay.sh's capture).
        if flow.app.as_deref().is_some_and(AppLayer::has_output) {
            // IDS: Suricata parses this data when the peer acknowledges it and logs the
            // anomaly on that packet, i.e. the other way round; inline: on this packet.
            let logged_dir = if self.cfg.inline { dir } else { dir.reverse() };
            let limit = (self.cfg.max_queued_events, &mut *self.dropped_events);
            queue_app_anomalies(self.events, limit, flow, ts, pkt_num, logged_dir);
            queue_app_txs(self.events, self.stats, flow, ts, pkt_num, false);
        }
    }

    /// A flow refused its TCP session under `stream.memcap` tries again on a bare SYN (a
    /// client's retransmission after a `drop-packet`, as Suricata allocates a session per
    /// SYN); true when it got one. Not for a flow the policy already dropped.
    #[cold]
    fn retry_session(&mut self, flow: &mut Flow, pkt: &Packet<'_>) -> bool {
        let bare_syn = matches!(pkt.transport, Transport::Tcp(t)
            if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN);
        if !bare_syn || flow.action.is_some() || !self.sessions.try_reserve() {
            self.stats.tcp.ssn_memcap_drop += u64::from(bare_syn);
            return false;
        }
        flow.grant_session();
        self.stats.tcp.memuse = self.sessions.used() as u64;
        true
    }

    /// A TCP segment of a session whose handshake was not seen (no SYN, not a RST) while
    /// mid-stream pick-up is off: the session is not tracked and stream rules cannot see it.
    #[inline]
    fn midstream_refused(&self, flow: &Flow, pkt: &Packet<'_>) -> bool {
        if self.cfg.midstream || !pkt.checksum_ok {
            return false;
        }
        let Transport::Tcp(info) = pkt.transport else {
            return false;
        };
        // Only a bare SYN opens a session: a flow whose first packet is a SYN-ACK is
        // picked up mid-handshake, as in Suricata (suricata-verify bug-5825 cases).
        let bare_syn = info.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        !bare_syn
            && info.flags & tcp_flags::RST == 0
            && flow.tcp.as_ref().is_some_and(|t| t.state == TcpState::None)
    }

    /// Applies the exception policy of `target` to this packet of `flow`: counts it,
    /// records it on the flow (each target once) and as an event, and (inline) does what it
    /// says. Returns the packet's verdict when the policy decided it (drop, reject, pass:
    /// no inspection), `None` to go on (`ignore`, or monitor mode).
    #[cold]
    #[inline(never)]
    fn apply_exception(
        &mut self,
        flow: &mut Flow,
        target: ExceptionTarget,
        base: &PacketContext<'_>,
        pkt: &Packet<'_>,
    ) -> Option<Verdict> {
        self.apply_exception_because(flow, target, target.cause(), base, pkt)
    }

    /// [`Self::apply_exception`] with a more precise `cause` for the record than the
    /// target's own ([`ExceptionTarget::cause`]).
    fn apply_exception_because(
        &mut self,
        flow: &mut Flow,
        target: ExceptionTarget,
        cause: &'static str,
        base: &PacketContext<'_>,
        pkt: &Packet<'_>,
    ) -> Option<Verdict> {
        let inline = self.cfg.inline;
        let action = self.cfg.exceptions.resolve(target, inline);
        self.stats.exception.add(target, action);
        // Recorded once per flow and target (the first packet it fired on): bounded by the
        // flow table, so never subject to `max_queued_events`; later firings are counted.
        let first = !flow.exceptions.iter().any(|(t, _)| *t == target);
        if first {
            flow.exceptions.push((target, action));
            let tcp_flags = match pkt.transport {
                Transport::Tcp(t) => t.flags,
                _ => 0,
            };
            self.events
                .push_back(Event::Exception(Box::new(ExceptionRecord {
                    packet: crate::records::PacketHead {
                        ts: base.ts,
                        pkt_num: base.pkt_num,
                        flow_id: base.flow_id,
                        src_ip: base.src_ip,
                        src_port: base.src_port,
                        dst_ip: base.dst_ip,
                        dst_port: base.dst_port,
                        proto: base.proto,
                        direction: base.direction,
                        app_proto: flow
                            .app
                            .as_deref()
                            .map(AppLayer::proto)
                            .filter(|a| *a != crate::app::AppProto::Unknown),
                    },
                    tcp_flags,
                    payload_len: pkt.payload.len(),
                    target,
                    cause,
                    action,
                    inline,
                })));
        }
        if !inline {
            return None;
        }
        if !matches!(action, ExceptionAction::Ignore | ExceptionAction::Auto) {
            self.inspector.on_exception(target, action);
        }
        match action {
            ExceptionAction::DropFlow => {
                flow.action = Some(FlowAction::Drop);
                Some(Verdict::DropFlow)
            }
            ExceptionAction::DropPacket => Some(Verdict::Drop),
            ExceptionAction::Reject => {
                flow.action = Some(FlowAction::Drop);
                Some(Verdict::Reject {
                    to: RejectTo::Sender,
                    flow: true,
                })
            }
            ExceptionAction::PassFlow | ExceptionAction::Bypass => {
                flow.bypass = true;
                Some(Verdict::Accept)
            }
            ExceptionAction::PassPacket => Some(Verdict::Accept),
            ExceptionAction::Ignore | ExceptionAction::Auto => None,
        }
    }

    fn push_stream_event(
        &mut self,
        event: &'static str,
        ts: Timestamp,
        pkt_num: u64,
        flow_id: u64,
        direction: Direction,
    ) {
        if self.events.len() >= self.cfg.max_queued_events {
            *self.dropped_events += 1;
            return;
        }
        self.events.push_back(Event::Stream(StreamEventRecord {
            ts,
            pkt_num,
            event,
            flow_id,
            direction,
        }));
    }

    fn push_stream_events(
        &mut self,
        o: &Outcome,
        ts: Timestamp,
        pkt_num: u64,
        flow_id: u64,
        dir: Direction,
    ) {
        if o.events.is_empty() {
            return;
        }
        for e in o.events.iter() {
            if self.events.len() >= self.cfg.max_queued_events {
                *self.dropped_events += 1;
                continue;
            }
            self.events.push_back(Event::Stream(StreamEventRecord {
                ts,
                pkt_num,
                event: e.name(),
                flow_id,
                direction: dir,
            }));
        }
    }

    /// The TCP part of a packet: session state, reassembly, the app layer and the
    /// inspector's stream hook for every in-order chunk the segment released. `deliver`
    /// false (inline drop before delivery): nothing changes, the segment never arrived.
    fn deliver_tcp(
        &mut self,
        flow: &mut Flow,
        info: &TcpInfo,
        pkt: &Packet<'_>,
        dir: Direction,
        deliver: bool,
        base: &PacketContext<'_>,
    ) -> Verdict {
        self.count_tcp_flags(info.flags);
        // A dropped bare SYN, SYN-ACK or ACK still moves the state machine, as in Suricata,
        // whose stream engine runs before detection: live, the peer retransmits it; in a
        // replay the capture goes on as if it arrived, and a flow whose handshake packets a
        // packet rule dropped must not turn into a mid-stream pick-up. Dropped data, FIN and
        // RST never reach the session (the receiver did not get them).
        let control_only =
            pkt.payload.is_empty() && info.flags & (tcp_flags::FIN | tcp_flags::RST) == 0;
        if !(deliver || control_only) {
            return Verdict::Accept;
        }
        if let ControlFlow::Break(v) = self.track_tcp_session(flow, info, pkt, dir, base) {
            return v;
        }
        self.reassemble_segment(flow, info, pkt, dir, base)
    }

    /// Counts the handshake and reset flags of every TCP packet, delivered or not.
    #[inline]
    fn count_tcp_flags(&mut self, flags: u8) {
        let st = &mut self.stats.tcp;
        if flags & tcp_flags::SYN != 0 {
            if flags & tcp_flags::ACK != 0 {
                st.synack += 1;
            } else {
                st.syn += 1;
            }
        }
        if flags & tcp_flags::RST != 0 {
            st.rst += 1;
        }
    }

    /// Moves the flow's TCP session (state machine, timestamps, mid-stream pick-up) for a
    /// segment that reaches it. `Break` carries the packet's verdict when the segment goes
    /// no further: no session, a RST the receiver would ignore, data before the server
    /// answered, or a timestamp the receiver rejects.
    fn track_tcp_session(
        &mut self,
        flow: &mut Flow,
        info: &TcpInfo,
        pkt: &Packet<'_>,
        dir: Direction,
        base: &PacketContext<'_>,
    ) -> ControlFlow<Verdict> {
        let (ts, pkt_num, flow_id) = (base.ts, base.pkt_num, base.flow_id);
        let Some(sess) = flow.tcp.as_mut() else {
            return ControlFlow::Break(Verdict::Accept);
        };
        // RFC 5961: a receiver resets only on a RST at exactly the sequence number it
        // expects next (an in-window one only draws a challenge ACK). A RST that would not
        // reset the receiver must not end the streams here either, or the data that follows
        // would go uninspected: it changes nothing, and the stream_invalid policy applies.
        // Once both sides have closed, no data can follow a RST, so an inexact one hides
        // nothing: a closed socket answers a late retransmission with a RST whose sequence
        // number is the segment's ACK (RFC 9293 §3.10.7.1), routinely before the FIN it
        // already sent (real capture: tests/fixtures/captures/reorder/http-reorder.pcap).
        if info.flags & tcp_flags::RST != 0
            && !matches!(
                sess.state,
                TcpState::None | TcpState::Closed | TcpState::TimeWait
            )
            && sess.streams[dir.index()]
                .as_ref()
                .is_some_and(|s| info.seq != s.expected_seq())
        {
            self.push_stream_event("rst_invalid_seq", ts, pkt_num, flow_id, dir);
            return ControlFlow::Break(
                self.apply_exception(flow, ExceptionTarget::StreamInvalid, base, pkt)
                    .unwrap_or(Verdict::Accept),
            );
        }
        let was_none = sess.state == TcpState::None;
        let up = sess.update(dir, info, pkt.payload.len(), self.cfg.midstream, ts);
        let st = &mut self.stats.tcp;
        if was_none && sess.state != TcpState::None {
            st.sessions += 1;
        }
        if up.pickup {
            st.midstream_pickups += 1;
            flow.midstream = true;
        }
        // Data on a session whose server has not answered the SYN at all (no SYN from it,
        // no segment): no receiver accepts that into a stream, but two cooperating
        // endpoints can use it to carry what detection (and `flow:established` rules) never
        // sees, so the stream_invalid policy decides (Suricata IPS drops such invalid
        // packets too). Data on a SYN (TCP Fast Open) and after the server's SYN (a
        // simultaneous open, Fast Open replies) is left alone.
        let early_data = !pkt.payload.is_empty()
            && info.flags & tcp_flags::SYN == 0
            && sess.state == TcpState::SynSent
            && sess.streams[Direction::ToClient.index()].is_none();
        if early_data {
            if let Some(v) = self.apply_exception(flow, ExceptionTarget::StreamInvalid, base, pkt) {
                return ControlFlow::Break(v);
            }
        }
        if up.invalid_timestamp {
            // Ignored by the receiver's PAWS check, so not reassembled.
            self.stats.tcp.pkt_invalid_timestamp += 1;
            self.push_stream_event("pkt_invalid_timestamp", ts, pkt_num, flow_id, dir);
            // A segment that brings nothing new (a delayed pure ACK; the late original of a
            // segment whose retransmission was already delivered) is ordinary reordering:
            // the receiver drops it, and so nothing is hidden from inspection by ignoring it
            // (Linux accepts such "disordered ACKs" outright). New bytes failing PAWS are
            // what a forged high TSval earlier makes of every genuine segment: not passed
            // silently (stream_invalid).
            let end = info
                .seq
                .wrapping_add(pkt.payload.len() as u32)
                .wrapping_add(u32::from(info.flags & tcp_flags::FIN != 0));
            let brings_new = flow.tcp.as_ref().is_none_or(|t| {
                t.streams[dir.index()]
                    .as_ref()
                    .is_none_or(|s| (end.wrapping_sub(s.expected_seq()) as i32) > 0)
            });
            if !brings_new {
                return ControlFlow::Break(Verdict::Accept);
            }
            return ControlFlow::Break(
                self.apply_exception(flow, ExceptionTarget::StreamInvalid, base, pkt)
                    .unwrap_or(Verdict::Accept),
            );
        }
        ControlFlow::Continue(())
    }

    /// Puts a segment into its direction's reassembler and hands every in-order chunk it
    /// releases to the app layer and the inspector's stream hook; returns the verdict of
    /// the stream hook and of the stream exception policies the insertion triggered.
    fn reassemble_segment(
        &mut self,
        flow: &mut Flow,
        info: &TcpInfo,
        pkt: &Packet<'_>,
        dir: Direction,
        base: &PacketContext<'_>,
    ) -> Verdict {
        let (ts, pkt_num, flow_id) = (base.ts, base.pkt_num, base.flow_id);
        let d = dir.index();
        let Some(sess) = flow.tcp.as_mut() else {
            return Verdict::Accept;
        };
        // A pure ACK carries nothing for an existing stream.
        if !sess.reassemble
            || (pkt.payload.is_empty()
                && info.flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0
                && sess.streams[d].is_some())
        {
            return Verdict::Accept;
        }
        let syn = info.flags & tcp_flags::SYN != 0;
        // A plain match (not `get_or_insert_with`) keeps the common case, an existing
        // stream, free of a call per segment.
        let stream = match &mut sess.streams[d] {
            Some(s) => s,
            slot @ None => slot.insert(if syn {
                StreamReassembler::new(info.seq, self.cfg.reassembly)
            } else {
                StreamReassembler::midstream(info.seq, self.cfg.reassembly)
            }),
        };
        let seg = SegmentFlags {
            syn,
            fin: info.flags & tcp_flags::FIN != 0,
            rst: info.flags & tcp_flags::RST != 0,
        };
        let app_cfg = &self.cfg.app_layer;
        let hold = self.hold;
        let (cport, sport) = (flow.client_port, flow.server_port);
        let app = &mut flow.app;
        let inspector = &mut *self.inspector;
        let gap_seen = &mut flow.dirs[d].gap;
        let mut verdict = Verdict::Accept;
        let mut gap = false;
        let o = stream.insert(info.seq, seg, pkt.payload, self.budget, |c| match c {
            StreamChunk::Data { bytes, .. } => {
                if app_cfg.enabled {
                    app.get_or_insert_with(|| {
                        Box::new(AppLayer::with_budgets(6, cport, sport, hold))
                    })
                    .feed(app_cfg, dir, bytes, pkt_num);
                }
                let v = inspector.on_stream_data(&AppChunk {
                    ts,
                    flow_id,
                    direction: dir,
                    data: bytes,
                    gap,
                });
                gap = false;
                verdict = verdict.and(v);
            }
            StreamChunk::Gap { len, .. } => {
                gap = true;
                *gap_seen = true;
                if app_cfg.enabled {
                    app.get_or_insert_with(|| {
                        Box::new(AppLayer::with_budgets(6, cport, sport, hold))
                    })
                    .gap(dir, len);
                }
            }
            StreamChunk::End(_) => {}
        });
        // A RST ends the peer's stream too.
        if seg.rst {
            if let Some(other) = sess.streams[dir.reverse().index()].as_mut() {
                other.close(self.budget, |_| {});
            }
        }
        verdict.and(self.on_reassembly_events(flow, &o, dir, base, pkt))
    }

    /// Queues the stream events of a segment's insertion and applies the exception policy
    /// of those that mean bytes go uninspected; returns the verdict of those policies.
    fn on_reassembly_events(
        &mut self,
        flow: &mut Flow,
        o: &Outcome,
        dir: Direction,
        base: &PacketContext<'_>,
        pkt: &Packet<'_>,
    ) -> Verdict {
        // Counters live in each reassembler and are merged at flow end.
        if o.events.is_empty() {
            return Verdict::Accept;
        }
        self.push_stream_events(o, base.ts, base.pkt_num, base.flow_id, dir);
        let mut verdict = Verdict::Accept;
        // New bytes after the stream ended are never delivered nor inspected.
        if o.events.contains(ReassemblyEvent::DataAfterClose)
            || o.events.contains(ReassemblyEvent::DataAfterFin)
        {
            let v = self
                .apply_exception(flow, ExceptionTarget::StreamInvalid, base, pkt)
                .unwrap_or(Verdict::Accept);
            verdict = verdict.and(v);
        }
        // A cap turned holes into gaps: the bytes that belong there were never seen,
        // and when they arrive later they count as already delivered.
        if o.events.contains(ReassemblyEvent::BufferCapReached) {
            let v = self
                .apply_exception(flow, ExceptionTarget::StreamReassemblyMemcap, base, pkt)
                .unwrap_or(Verdict::Accept);
            verdict = verdict.and(v);
        }
        verdict
    }

    /// A UDP datagram's payload: the app layer, then the inspector's stream hook.
    #[inline]
    fn deliver_udp(
        &mut self,
        flow: &mut Flow,
        pkt: &Packet<'_>,
        dir: Direction,
        base: &PacketContext<'_>,
    ) -> Verdict {
        let app_cfg = &self.cfg.app_layer;
        if app_cfg.enabled {
            let (cport, sport) = (flow.client_port, flow.server_port);
            let hold = self.hold;
            flow.app
                .get_or_insert_with(|| Box::new(AppLayer::with_budgets(17, cport, sport, hold)))
                .feed(app_cfg, dir, pkt.payload, base.pkt_num);
        }
        self.inspector.on_stream_data(&AppChunk {
            ts: base.ts,
            flow_id: base.flow_id,
            direction: dir,
            data: pkt.payload,
            gap: false,
        })
    }
}

/// Bytes charged to each of the engine's global memory caps ([`Engine::memuse`]), with
/// the caps: each `x` stays at or below `x_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemUse {
    /// TCP session state (`stream.memcap`).
    pub stream: usize,
    /// `stream.memcap`.
    pub stream_limit: usize,
    /// Out-of-order TCP data (`stream.reassembly.memcap`).
    pub reassembly: usize,
    /// `stream.reassembly.memcap`.
    pub reassembly_limit: usize,
    /// App-layer parser state (`app-layer.memcap`).
    pub app_layer: usize,
    /// `app-layer.memcap`.
    pub app_layer_limit: usize,
    /// Bytes held while protocols are unknown (`app-layer.hold-memcap`).
    pub hold: usize,
    /// `app-layer.hold-memcap`.
    pub hold_limit: usize,
}

/// What the inspector hears of a packet of `flow` in direction `dir` (`flags`: its TCP
/// flags), without app-layer state: each hook adds the state it sees.
fn packet_context<'p>(
    flow: &Flow,
    pkt: &Packet<'p>,
    ts: Timestamp,
    pkt_num: u64,
    dir: Direction,
    flags: u8,
) -> PacketContext<'p> {
    PacketContext {
        ts,
        pkt_num,
        flow_id: flow.flow_id,
        direction: dir,
        proto: pkt.proto,
        tcp_flags: flags,
        icmp: match pkt.transport {
            Transport::Icmp { icmp_type, code } => Some((icmp_type, code)),
            _ => None,
        },
        payload: pkt.payload,
        src_ip: pkt.src,
        dst_ip: pkt.dst,
        src_port: pkt.src_port,
        dst_port: pkt.dst_port,
        established: flow.established,
        first_in_direction: flow.dirs[dir.index()].pkts == 1,
        app: None,
        flow_pkts: flow.dirs[0].pkts + flow.dirs[1].pkts,
    }
}

/// What delivering one packet may change in its flow, kept (inline) so that a packet
/// dropped after delivery can be undone: the TCP session with both reassemblers and the app
/// layer with its parser. Cost: a copy of those per delivered packet, paid only inline and
/// only while the inspector can still drop after delivery ([`Inspector::checkpoint`]).
struct Snapshot {
    tcp: Option<Box<TcpSession>>,
    app: Option<Box<AppLayer>>,
    gap: [bool; 2],
    /// Reassembly memory the copies hold (charged to the budget again on restore).
    mem: usize,
}

impl Snapshot {
    fn take(flow: &Flow) -> Snapshot {
        Snapshot {
            tcp: flow.tcp.clone(),
            app: flow.app.clone(),
            gap: [flow.dirs[0].gap, flow.dirs[1].gap],
            mem: flow.tcp.as_deref().map_or(0, TcpSession::buffered_memory),
        }
    }

    /// Puts the flow back as it was before the packet; the reassembly budget follows the
    /// memory the buffers hold again.
    fn restore(self, flow: &mut Flow, budget: &mut ReassemblyBudget) {
        let now = flow.tcp.as_deref().map_or(0, TcpSession::buffered_memory);
        budget.rebalance(now, self.mem);
        flow.tcp = self.tcp;
        flow.app = self.app;
        flow.dirs[0].gap = self.gap[0];
        flow.dirs[1].gap = self.gap[1];
    }
}

/// Queues an [`Event::AppAnomaly`] per transaction event the flow's parser raised since
/// the last call, oriented as a packet travelling `logged_dir`. Beyond `limit.0` queued
/// events they are dropped and counted in `limit.1` like decoder and stream anomalies.
fn queue_app_anomalies(
    events: &mut VecDeque<Event>,
    limit: (usize, &mut u64),
    flow: &mut Flow,
    ts: Timestamp,
    pkt_num: u64,
    logged_dir: Direction,
) {
    let Some(app) = flow.app.as_deref_mut() else {
        return;
    };
    // Both parsers of an upgraded flow (the protocol that negotiated the upgrade, then TLS),
    // each under its own name.
    let mut raised = Vec::new();
    let mut names = Vec::new();
    for parser in app.parsers_mut().into_iter().flatten() {
        let before = raised.len();
        parser.take_anomalies(&mut raised);
        names.extend(std::iter::repeat_n(
            parser.proto().as_str(),
            raised.len() - before,
        ));
    }
    if raised.is_empty() {
        return;
    }
    let (max, dropped) = limit;
    let (client, server) = (
        (flow.client_ip, flow.client_port),
        (flow.server_ip, flow.server_port),
    );
    let ((src_ip, src_port), (dst_ip, dst_port)) = match logged_dir {
        Direction::ToServer => (client, server),
        Direction::ToClient => (server, client),
    };
    let vlan = &flow.vlan[..usize::from(flow.vlan_count)];
    for ((tx_id, event), app_proto) in raised.into_iter().zip(names) {
        if events.len() >= max {
            *dropped += 1;
            continue;
        }
        events.push_back(Event::AppAnomaly(Box::new(AppAnomalyRecord {
            ts,
            pkt_num,
            flow_id: flow.flow_id,
            tuple: PacketTuple {
                src_ip,
                dst_ip,
                src_port,
                dst_port,
                proto: flow.proto,
            },
            vlan: vlan.to_vec(),
            tx_id: Some(tx_id),
            app_proto,
            event,
        })));
    }
}

/// Queues an [`Event::AppTx`] per transaction the flow's parser completed (`at_end`:
/// every transaction still live, the flow is ending). Never subject to
/// `max_queued_events`: the parser's transaction cap bounds them. Also adds the parser's
/// new flow/transaction counts to `app_layer.*`.
fn queue_app_txs(
    events: &mut VecDeque<Event>,
    stats: &mut Stats,
    flow: &mut Flow,
    ts: Timestamp,
    pkt_num: u64,
    at_end: bool,
) {
    let Some(layer) = flow.app.as_deref_mut() else {
        return;
    };
    let mut done = Vec::new();
    // Both parsers of an upgraded flow (the protocol that negotiated the upgrade, then TLS),
    // the older one's first.
    for parser in layer.parsers_mut().into_iter().flatten() {
        stats.app_layer.add(parser.proto(), parser.take_counts());
        done.extend(parser.take_txs(at_end));
    }
    for (tx_id, app) in done {
        events.push_back(Event::AppTx(Box::new(AppTxRecord {
            ts,
            pkt_num,
            flow_id: flow.flow_id,
            tuple: PacketTuple {
                src_ip: flow.client_ip,
                dst_ip: flow.server_ip,
                src_port: flow.client_port,
                dst_port: flow.server_port,
                proto: flow.proto,
            },
            vlan: flow.vlan[..usize::from(flow.vlan_count)].to_vec(),
            tx_id,
            app,
            flow_end: at_end,
        })));
    }
}

#[allow(dead_code)]
fn _assert_event_names(e: ReassemblyEvent) -> &'static str {
    e.name()
}
