//! [`Sensor`]: the engine with detection plugged in, and its record queue.

use std::collections::VecDeque;
use std::sync::Arc;

use sekisho_detect::{Detector, Output, RuleSet};
use sekisho_engine::event::ExceptionRecord;
use sekisho_engine::records::{DropRecord, Record};
use sekisho_engine::{
    AppChunk, Engine, Event, ExceptionAction, ExceptionTarget, FlowRecord, Inspector, LinkType,
    PacketContext, Stats, Timestamp, Transmit, Verdict,
};

use crate::ratelimit::{RateLimitTables, RateLimiter};
use crate::settings::Settings;
use crate::verdicts::{Cause, Seen, VerdictCounters};

/// The engine's inspector: the rate limits, then detection when there are rules; nothing
/// otherwise (so a run without either does exactly the engine's work). The third field is
/// what, besides detection's drop records, dropped the packet being handled (for the
/// verdict counters).
struct Inspect(Option<Detector>, Option<RateLimiter>, Option<Cause>);

impl Inspector for Inspect {
    fn on_packet(&mut self, pkt: &PacketContext<'_>) -> Verdict {
        // Rate limits come first; detection still sees the packet (its state stays whole),
        // and the stricter verdict wins.
        let limited = match self.1.as_mut() {
            Some(r) => r.on_packet(pkt),
            None => Verdict::Accept,
        };
        if limited.is_drop() {
            self.2 = Some(Cause::RateLimit);
        }
        let v = self
            .0
            .as_mut()
            .map_or(Verdict::Accept, |d| d.on_packet(pkt));
        limited.and(v)
    }

    fn on_stream_data(&mut self, chunk: &AppChunk<'_>) -> Verdict {
        self.0
            .as_mut()
            .map_or(Verdict::Accept, |d| d.on_stream_data(chunk))
    }

    fn on_packet_end(&mut self, pkt: &PacketContext<'_>) -> Verdict {
        let v = self
            .0
            .as_mut()
            .map_or(Verdict::Accept, |d| d.on_packet_end(pkt));
        match self.1.as_mut() {
            Some(r) => {
                let limited = r.on_packet_end(pkt);
                if limited.is_drop() && self.2.is_none() {
                    self.2 = Some(Cause::RateLimit);
                }
                limited.and(v)
            }
            None => v,
        }
    }

    fn on_flow_drop(&mut self, pkt: &PacketContext<'_>) {
        let firewall = self
            .0
            .as_ref()
            .is_some_and(|d| d.firewall_dropped(pkt.flow_id));
        self.2 = Some(Cause::FlowDrop { firewall });
        if let Some(d) = self.0.as_mut() {
            d.on_flow_drop(pkt)
        }
    }

    fn on_exception(&mut self, target: ExceptionTarget, action: ExceptionAction) {
        if action.drops() {
            self.2 = Some(Cause::Exception(target));
        }
    }

    fn checkpoint(&mut self, pkt: &PacketContext<'_>) -> bool {
        self.0.as_mut().is_some_and(|d| d.checkpoint(pkt))
    }

    fn rollback(&mut self, flow_id: u64) {
        if let Some(d) = self.0.as_mut() {
            d.rollback(flow_id)
        }
    }

    fn take_exception(&mut self) -> Option<sekisho_engine::ExceptionTarget> {
        self.0.as_mut().and_then(|d| d.take_exception())
    }

    fn on_flow_end(&mut self, record: &mut FlowRecord) {
        if let Some(r) = self.1.as_mut() {
            r.on_flow_end(record.flow_id);
        }
        if let Some(d) = self.0.as_mut() {
            d.on_flow_end(record)
        }
    }

    /// Counted even without rules: a reload ([`Sensor::swap_rules`]) can add a detector to
    /// a table sized earlier.
    fn flow_state_bytes(&self) -> usize {
        sekisho_detect::FLOW_STATE_BYTES + crate::ratelimit::FLOW_STATE_BYTES
    }

    fn reserve_flows(&mut self, max_flows: usize) {
        if let Some(d) = self.0.as_mut() {
            d.reserve_flows(max_flows)
        }
    }
}

/// The whole packet pipeline of one worker: decode, flows, TCP reassembly, the app layer,
/// detection and verdicts. Sans-I/O: see the crate docs for the calls.
///
/// Records come out in the order Suricata writes them: a packet's alerts and drops, then the
/// transactions, anomalies and flow ends it caused.
pub struct Sensor {
    engine: Engine<Inspect>,
    records: VecDeque<Record>,
    /// Latest packet time seen (flow records are logged no earlier than this).
    now: Timestamp,
    /// Collect `--explain` lines (exception policies are explained here).
    explain: bool,
    /// [`Sensor::finish`] was called and flows remain to be ended.
    finishing: bool,
    /// What the latest packet decided for the rest of its flow ([`Sensor::flow_decision`]).
    decision: Option<FlowDecision>,
    /// `ips.*` / `firewall.*` counters of every verdict given.
    verdicts: VerdictCounters,
}

/// A decision a packet made for every later packet of its flow, in both directions: what an
/// inline driver may hand to the kernel so the flow stops being queued (a conntrack mark,
/// `docs/inline.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowDecision {
    /// Later packets are accepted uninspected: a `pass` rule acting on the flow, or an
    /// exception policy `pass-flow` / `bypass`; and no rate limit needs to see them.
    Pass,
    /// Later packets are dropped uninspected (a flow drop, a reject of the flow).
    Drop,
}

/// Flows ended per step of [`Sensor::finish`].
pub const FINISH_BATCH: usize = 256;

impl Sensor {
    /// A sensor with `settings`, evaluating `rules` when given (the same `Arc` may serve
    /// any number of sensors on other threads).
    pub fn new(settings: &Settings, rules: Option<Arc<RuleSet>>) -> Sensor {
        Sensor::with_rate_limit_tables(settings, rules, None)
    }

    /// [`Sensor::new`] with rate-limit tables shared with other sensors: `tables` must come
    /// from [`RateLimitTables::new`] with the same `settings.rate_limits` (`None`: tables of
    /// its own). The workers of `sekisho run` share one set, so a limit holds across queues.
    pub fn with_rate_limit_tables(
        settings: &Settings,
        rules: Option<Arc<RuleSet>>,
        tables: Option<RateLimitTables>,
    ) -> Sensor {
        let detector = rules.map(|r| Detector::new(r, settings.detect_config()));
        Sensor {
            engine: Engine::with_inspector(
                settings.engine_config(),
                Inspect(
                    detector,
                    RateLimiter::new(&settings.rate_limits, settings.inline(), tables),
                    None,
                ),
            ),
            records: VecDeque::new(),
            now: Timestamp::default(),
            explain: settings.explain,
            finishing: false,
            decision: None,
            verdicts: VerdictCounters::default(),
        }
    }

    /// Processes one captured frame seen at `ts`; returns its verdict. Never panics:
    /// malformed input becomes anomaly records.
    pub fn handle_packet(&mut self, ts: Timestamp, link: LinkType, frame: &[u8]) -> Verdict {
        self.now = self.now.max(ts);
        let passed = self.flows_passed();
        self.decision = None;
        let (records_before, invalid_before) = (self.records.len(), self.engine.invalid_dropped());
        self.engine.inspector_mut().2 = None;
        let v = self.engine.handle_packet(ts, link, frame);
        self.collect();
        self.count_verdict(v, records_before, invalid_before);
        match v {
            Verdict::DropFlow | Verdict::Reject { flow: true, .. } => {
                self.decision = Some(FlowDecision::Drop)
            }
            Verdict::Accept if self.flows_passed() != passed => {
                // A pass rule acting on the flow matched this packet (the detector counts
                // each passed flow once, at the deciding packet).
                self.decision = Some(FlowDecision::Pass)
            }
            Verdict::Accept => {}
            _ => self.decision = None,
        }
        if self.decision == Some(FlowDecision::Pass)
            && self
                .engine
                .inspector()
                .1
                .as_ref()
                .is_some_and(RateLimiter::counts_every_packet)
        {
            // A rate limit counting packets, bytes or app events must keep seeing them.
            self.decision = None;
        }
        v
    }

    /// What the latest [`Sensor::handle_packet`] decided for the rest of its flow: `Pass`
    /// or `Drop` at the packet that decided (and, for `Drop`, every later packet the sensor
    /// still sees), `None` while the flow is still inspected. Inline drivers hand it to the
    /// kernel so that it stops queueing the flow.
    pub fn flow_decision(&self) -> Option<FlowDecision> {
        self.decision
    }

    /// Counts the verdict `v` of the packet just handled; `records_before` and
    /// `invalid_before` are the record queue length and the engine's undecodable-drop count
    /// before it.
    fn count_verdict(&mut self, v: Verdict, records_before: usize, invalid_before: u64) {
        let mut reasons = self
            .records
            .range(records_before..)
            .filter_map(|r| match r {
                Record::Drop(d) if v.is_drop() => Some(d.reason),
                _ => None,
            });
        self.verdicts.count(
            v,
            Seen {
                invalid: self.engine.invalid_dropped() != invalid_before,
                cause: self.engine.inspector().2,
                record_reasons: &mut reasons,
            },
        );
    }

    fn flows_passed(&self) -> u64 {
        self.engine
            .inspector()
            .0
            .as_ref()
            .map_or(0, |d| d.stats().flows_passed)
    }

    /// Time has passed without packets: ends idle flows as of `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        if let Some(r) = self.engine.inspector_mut().1.as_mut() {
            r.handle_timeout(now);
        }
        self.engine.handle_timeout(now);
        self.collect();
    }

    /// When [`Sensor::handle_timeout`] should be called next if no packet arrives.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.engine.poll_timeout()
    }

    /// End of input: every flow ends (`shutdown`), then the closing stats record.
    ///
    /// The flows end in batches of [`FINISH_BATCH`] as [`Sensor::poll_record`] drains
    /// their records, so a full flow table does not turn into one record per flow held at
    /// once; drain until `None` (the stats record comes last) before reading counters.
    pub fn finish(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        self.finishing = true;
        self.finish_step();
    }

    /// Ends the next batch of flows; after the last, the rate-limit summaries and the stats
    /// record.
    fn finish_step(&mut self) {
        let done = self.engine.finish_some(self.now, FINISH_BATCH);
        if done {
            let now = self.now;
            if let Some(r) = self.engine.inspector_mut().1.as_mut() {
                r.summaries(now);
            }
        }
        self.collect();
        if done {
            self.finishing = false;
            let mut counters = Vec::new();
            self.engine.stats().for_each(|k, v| counters.push((k, v)));
            if let Some(r) = self.engine.inspector().1.as_ref() {
                counters.extend(r.counters());
            }
            let firewall = self
                .engine
                .inspector()
                .0
                .as_ref()
                .is_some_and(|d| d.rules().firewall().is_some());
            self.verdicts.extend(firewall, &mut counters);
            self.records.push_back(Record::Stats {
                ts: self.now,
                counters,
            });
        }
    }

    /// The next record, oldest first. Drain after every `handle_*` / `finish` call.
    pub fn poll_record(&mut self) -> Option<Record> {
        while self.records.is_empty() && self.finishing {
            self.finish_step();
        }
        self.records.pop_front()
    }

    /// True when [`Sensor::poll_transmit`] has a packet (a cheap per-packet check).
    #[inline]
    pub fn has_transmit(&self) -> bool {
        self.engine.has_transmit()
    }

    /// The next packet to send (inline rejects), oldest first.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.engine.poll_transmit()
    }

    /// Replaces the rule set (a reload): flows, their app-layer state and their flowbits
    /// carry on; the new rules apply from the next packet. A sensor built without rules
    /// starts evaluating them.
    pub fn swap_rules(&mut self, rules: Arc<RuleSet>, settings: &Settings) {
        let slot = &mut self.engine.inspector_mut().0;
        match slot {
            Some(d) => d.swap_rules(rules),
            None => *slot = Some(Detector::new(rules, settings.detect_config())),
        }
    }

    /// Applies what of `settings` can change while running (a reload): the exception
    /// policies. Everything else is fixed when the sensor is built: the engine's sizes,
    /// caps and timeouts (`--set`), the engine profile and the rate limits (their tables
    /// keep their buckets).
    pub fn apply_live_settings(&mut self, settings: &Settings) {
        self.engine
            .set_exception_policies(settings.engine.exceptions);
    }

    /// The rules in use, if any.
    pub fn rules(&self) -> Option<&Arc<RuleSet>> {
        self.engine.inspector().0.as_ref().map(Detector::rules_arc)
    }

    /// Bytes charged to each of the engine's global memory caps now, with the caps
    /// (`stream.memcap`, `stream.reassembly.memcap`, `app-layer.memcap`,
    /// `app-layer.hold-memcap`): what a fuzz target or flood test asserts stays within them.
    pub fn memuse(&self) -> sekisho_engine::MemUse {
        self.engine.memuse()
    }

    /// Engine counters.
    pub fn stats(&self) -> &Stats {
        self.engine.stats()
    }

    /// Detection counters (all zero without rules).
    pub fn detect_stats(&self) -> sekisho_detect::DetectStats {
        self.engine
            .inspector()
            .0
            .as_ref()
            .map(Detector::stats)
            .unwrap_or_default()
    }

    /// The rate-limit tables in `/proc/net/ipt_hashlimit/NAME` form as of the latest packet
    /// time: `(name, text)` per table, in policy order (empty without `rate_limits:`).
    pub fn rate_limit_tables(&self) -> Vec<(String, String)> {
        self.engine
            .inspector()
            .1
            .as_ref()
            .map(|r| r.tables(self.now))
            .unwrap_or_default()
    }

    /// Reject answers built so far.
    pub fn rejects_sent(&self) -> u64 {
        self.engine.rejects_sent()
    }

    /// Flows tracked now.
    pub fn active_flows(&self) -> usize {
        self.engine.active_flows()
    }

    /// The most flows the table holds before it evicts: `flow.max-flows`, or what fits in
    /// `flow.memcap` counting each flow's real size. [`Sensor::active_flows`] never exceeds it.
    pub fn flow_capacity(&self) -> usize {
        self.engine.flow_capacity()
    }

    /// Moves detection's findings, then the engine's events, into the record queue.
    #[inline]
    fn collect(&mut self) {
        if self.engine.inspector().0.is_none()
            && !self.engine.has_events()
            && !self
                .engine
                .inspector()
                .1
                .as_ref()
                .is_some_and(RateLimiter::has_records)
        {
            return;
        }
        self.collect_slow();
    }

    fn collect_slow(&mut self) {
        if let Some(r) = self.engine.inspector_mut().1.as_mut() {
            self.records.extend(r.drain_records());
        }
        if let Some(d) = self.engine.inspector_mut().0.as_mut() {
            while let Some(o) = d.poll_output() {
                self.records.push_back(match o {
                    Output::Alert(a) => Record::Alert(a),
                    Output::Drop(x) => Record::Drop(x),
                });
            }
            for line in d.take_explain() {
                self.records.push_back(Record::Explain(line));
            }
        }
        let now = self.now;
        while let Some(ev) = self.engine.poll_event() {
            let rec = match ev {
                Event::FlowEnd(rec) => {
                    let log_ts = now.max(rec.end);
                    Record::Flow {
                        record: rec,
                        log_ts,
                    }
                }
                Event::Drop(d) => {
                    if self.explain {
                        self.records.push_back(Record::Explain(format!(
                            "pkt {}: drop: {} (the packet could not be decoded: nothing it \
                             carries was inspected)",
                            d.head.pkt_num, d.reason
                        )));
                    }
                    Record::Drop(d)
                }
                Event::Exception(x) => {
                    // A fragment refused by the full reassembler has no flow to decide for.
                    if x.inline
                        && x.target != ExceptionTarget::DefragMemcap
                        && matches!(
                            x.action,
                            sekisho_engine::ExceptionAction::PassFlow
                                | sekisho_engine::ExceptionAction::Bypass
                        )
                    {
                        // The engine passes the rest of this flow uninspected.
                        self.decision = Some(FlowDecision::Pass);
                    }
                    if self.explain {
                        self.records.push_back(Record::Explain(exception_line(&x)));
                    }
                    if x.inline && x.action.drops() {
                        Record::Drop(Box::new(DropRecord {
                            head: x.packet.clone(),
                            payload_len: x.payload_len,
                            tcp_flags: x.tcp_flags,
                            reason: x.target.drop_reason(),
                            alert: None,
                        }))
                    } else {
                        Record::Event(Event::Exception(x))
                    }
                }
                ev => Record::Event(ev),
            };
            self.records.push_back(rec);
        }
    }
}

/// The `--explain` line of an exception policy applied to a packet.
fn exception_line(x: &ExceptionRecord) -> String {
    let h = &x.packet;
    let why = x.cause;
    format!(
        "pkt {} flow {}: exception policy {}: {}{} ({why})",
        h.pkt_num,
        h.flow_id,
        x.target.as_str(),
        x.action.as_str(),
        if x.inline {
            ""
        } else {
            " (monitor mode: only logged)"
        }
    )
}

// One compiled rule set is shared by the sensors of every worker thread.
const _: () = {
    const fn send<T: Send>() {}
    send::<Sensor>();
};
