//! The rate-limit stage: the policy's `rate_limits:` evaluated on every packet before
//! detection, each limit's buckets in a `sekisho_ratelimit::Table` (one per table name,
//! shared by the limits that name it). Semantics: `docs/rate-limits.md`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use sekisho_engine::records::{DropRecord, PacketHead, RateLimitEvent, RateLimitRecord, Record};
use sekisho_engine::{AppLayer, AppProto, Direction, PacketContext, RejectTo, Timestamp, Verdict};
use sekisho_policy::ratelimit::{Count, LimitAction, RateLimit};
use sekisho_ratelimit::{Key, Outcome, Table, TableStats};

/// Flows that saw a reply, at most this many (far above any flow table): past it the set is
/// cleared, which can only make later packets count as new (more limiting, never less).
const MAX_REPLIED: usize = 4_000_000;

/// Bytes of per-flow state this stage keeps, counted in the engine's `flow.memcap` (see
/// `Inspector::flow_state_bytes`): an entry of `replied` (a flow id at up to 16/7 buckets
/// per entry with its control byte) and one of `app_seen` with its boxed counts (one
/// counter per limit, four limits assumed).
pub(crate) const FLOW_STATE_BYTES: usize = (8 + 1) * 16 / 7 + (8 + 24 + 1) * 16 / 7 + 4 * 8 + 16;

/// Blocks of app-event limits: (limit index, key) → (until µs, a `blocked` record was
/// written for this block).
type Blocks = HashMap<(usize, Key), (u64, bool), foldhash::fast::RandomState>;

/// The rate-limit tables of a policy, one per table name, and the blocks of its app-event
/// limits: what the sensors of several workers share (`sekisho run` with several queues), so
/// that a limit holds across them. Cloning shares (an `Arc`).
///
/// Each table sits behind its own mutex, taken for one lookup (a hash lookup and a refill,
/// tens of nanoseconds), so workers contend only when they hit the same table at the same
/// moment; a table keeps its exact semantics (`htable_max`, expiry, GC) because it stays
/// one table. Time: each worker feeds its own packet times; an entry never refills backwards
/// (`Table::check`), so two workers' clocks a little apart cannot mint tokens.
#[derive(Clone)]
pub struct RateLimitTables(Arc<Shared>);

struct Shared {
    tables: Vec<Mutex<Table>>,
    /// Keys blocked by an app-event limit with `block_for`.
    blocked: Mutex<Blocks>,
}

/// The lock, whatever a panicking holder left (a table is consistent between calls).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One table's figures, for a driver's metrics.
#[derive(Debug, Clone)]
pub struct TableSummary {
    /// The table's name.
    pub name: String,
    /// Entries (keys) held now.
    pub entries: usize,
    /// Its counters: lookups, within and over the limit, refused by a full table, ...
    pub stats: TableStats,
}

impl RateLimitTables {
    /// The tables `limits` name, empty (`None` without limits). Sensors built with the same
    /// limits and a clone of this share them ([`crate::Sensor::with_rate_limit_tables`]).
    pub fn new(limits: &[RateLimit]) -> Option<RateLimitTables> {
        if limits.is_empty() {
            return None;
        }
        let mut tables: Vec<Table> = Vec::new();
        for l in limits {
            // Tables are shared by name; the first limit naming one sets it up (as iptables).
            if !tables.iter().any(|t| t.config().name == l.config.name) {
                tables.push(Table::new(l.config.clone()));
            }
        }
        Some(RateLimitTables(Arc::new(Shared {
            tables: tables.into_iter().map(Mutex::new).collect(),
            blocked: Mutex::new(HashMap::default()),
        })))
    }

    /// The tables in `/proc/net/ipt_hashlimit/NAME` form as of `now` (µs since the epoch of
    /// the packet times): (name, text), in policy order.
    pub fn proc_tables(&self, now: Timestamp) -> Vec<(String, String)> {
        self.0
            .tables
            .iter()
            .map(|t| {
                let t = lock(t);
                (t.config().name.clone(), t.proc_text(now.as_micros()))
            })
            .collect()
    }

    /// Each table's entries and counters, in policy order.
    pub fn summaries(&self) -> Vec<TableSummary> {
        self.0
            .tables
            .iter()
            .map(|t| {
                let t = lock(t);
                TableSummary {
                    name: t.config().name.clone(),
                    entries: t.len(),
                    stats: t.stats(),
                }
            })
            .collect()
    }

    /// Index of table `name`.
    fn index(&self, name: &str) -> Option<usize> {
        self.0
            .tables
            .iter()
            .position(|t| lock(t).config().name == name)
    }
}

/// The stage: the limits in policy order and their tables.
pub(crate) struct RateLimiter {
    limits: Vec<(RateLimit, usize)>,
    shared: RateLimitTables,
    has_blocks: bool,
    /// Per table: second of packet time of the last `table_full` record.
    full_logged: Vec<Option<u64>>,
    /// Flows that have seen a packet from the server (`--state NEW` is over for them).
    replied: HashSet<u64, foldhash::fast::RandomState>,
    track_new: bool,
    inline: bool,
    records: Vec<Record>,
    /// App-event limits: per flow, the event counts already charged (one per limit, in
    /// `limits` order; 0 for packet limits).
    app_seen: HashMap<u64, Vec<u64>, foldhash::fast::RandomState>,
    has_app: bool,
}

/// Most blocked keys held at once (per stage); when full, the block ending soonest goes.
const MAX_BLOCKED: usize = 65_536;

impl RateLimiter {
    /// The stage for `limits` (none: `None`, so a policy without limits costs nothing), on
    /// `shared` tables built from the same limits, else on tables of its own.
    pub(crate) fn new(
        limits: &[RateLimit],
        inline: bool,
        shared: Option<RateLimitTables>,
    ) -> Option<RateLimiter> {
        let shared = match shared {
            Some(s) => s,
            None => RateLimitTables::new(limits)?,
        };
        if limits.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for l in limits {
            let idx = shared.index(&l.config.name)?;
            out.push((l.clone(), idx));
        }
        Some(RateLimiter {
            track_new: limits.iter().any(|l| l.count == Count::NewFlows),
            full_logged: vec![None; shared.0.tables.len()],
            has_blocks: limits.iter().any(|l| l.block_for_ms.is_some()),
            limits: out,
            shared,
            replied: HashSet::default(),
            inline,
            records: Vec::new(),
            app_seen: HashMap::default(),
            has_app: limits.iter().any(|l| matches!(l.count, Count::AppEvent(_))),
        })
    }

    /// True when a limit counts every packet, its bytes or app events: a flow passed by a
    /// rule must then still be seen (it cannot be bypassed in the kernel).
    pub(crate) fn counts_every_packet(&self) -> bool {
        self.limits.iter().any(|(l, _)| l.count != Count::NewFlows)
    }

    /// One packet: every limit whose header and count match it takes its turn, in order,
    /// until one finds it over the limit; that limit's action is the stage's verdict.
    pub(crate) fn on_packet(&mut self, pkt: &PacketContext<'_>) -> Verdict {
        let new_state =
            pkt.direction == Direction::ToServer && !self.replied.contains(&pkt.flow_id);
        if self.track_new && pkt.direction == Direction::ToClient {
            if self.replied.len() >= MAX_REPLIED {
                self.replied.clear();
            }
            self.replied.insert(pkt.flow_id);
        }
        let now = pkt.ts.as_micros();
        if new_state && self.has_blocks {
            if let Some(v) = self.blocked_flow(pkt, now) {
                return v;
            }
        }
        for (limit, ti) in &self.limits {
            let counted = match limit.count {
                Count::NewFlows => new_state,
                Count::Packets | Count::Bytes => true,
                Count::AppEvent(_) => false,
            };
            if !counted
                || !limit.matches(
                    pkt.proto,
                    pkt.src_ip,
                    pkt.src_port,
                    pkt.dst_ip,
                    pkt.dst_port,
                )
            {
                continue;
            }
            let Some(table) = self.shared.0.tables.get(*ti) else {
                continue;
            };
            let mut table = lock(table);
            let key = table.key(pkt.src_ip, pkt.src_port, pkt.dst_ip, pkt.dst_port);
            let d = table.check(now, key, wire_len(pkt));
            if !d.outcome.is_over() {
                continue;
            }
            let blocked = self.inline && limit.action != LimitAction::Alert;
            let log = match d.outcome {
                Outcome::TableFull => {
                    let sec = pkt.ts.secs();
                    let due = self.full_logged[*ti] != Some(sec);
                    self.full_logged[*ti] = Some(sec);
                    due
                }
                _ => d.first_over,
            };
            let head = head(pkt);
            if log {
                let cfg = table.config();
                self.records
                    .push(Record::RateLimit(Box::new(RateLimitRecord {
                        event: if d.outcome == Outcome::TableFull {
                            RateLimitEvent::TableFull
                        } else {
                            RateLimitEvent::OverLimit
                        },
                        ts: pkt.ts,
                        head: Some(head.clone()),
                        table: cfg.name.clone(),
                        key: d.key.to_string(),
                        rate: cfg.rate.to_string(),
                        burst: cfg.burst,
                        credit: d.credit,
                        cost: table.cost(),
                        action: limit.action.as_str(),
                        count: limit.count.as_str(),
                        blocked_until: None,
                        blocked,
                        counters: Vec::new(),
                    })));
            }
            if !blocked {
                // Alert (or monitor mode): logged, and the packet goes on to the other
                // limits and the rules.
                continue;
            }
            return deny(
                &mut self.records,
                head,
                pkt,
                limit.action,
                RejectTo::Sender,
                false,
            );
        }
        Verdict::Accept
    }

    /// A new flow from a key an app-event limit blocks: that limit's verdict.
    fn blocked_flow(&mut self, pkt: &PacketContext<'_>, now: u64) -> Option<Verdict> {
        for (li, (limit, ti)) in self.limits.iter().enumerate() {
            if limit.block_for_ms.is_none()
                || !limit.matches(
                    pkt.proto,
                    pkt.src_ip,
                    pkt.src_port,
                    pkt.dst_ip,
                    pkt.dst_port,
                )
            {
                continue;
            }
            let Some(table) = self.shared.0.tables.get(*ti) else {
                continue;
            };
            // Lock order everywhere: a table, then the blocks.
            let table = lock(table);
            let key = table.key(pkt.src_ip, pkt.src_port, pkt.dst_ip, pkt.dst_port);
            let mut blocks = lock(&self.shared.0.blocked);
            let Some(&(until, logged)) = blocks.get(&(li, key)) else {
                continue;
            };
            if until <= now {
                blocks.remove(&(li, key));
                continue;
            }
            let blocked = self.inline && limit.action != LimitAction::Alert;
            let head = head(pkt);
            if !logged {
                blocks.insert((li, key), (until, true));
                let cfg = table.config();
                self.records
                    .push(Record::RateLimit(Box::new(RateLimitRecord {
                        event: RateLimitEvent::Blocked,
                        ts: pkt.ts,
                        head: Some(head.clone()),
                        table: cfg.name.clone(),
                        key: key.to_string(),
                        rate: cfg.rate.to_string(),
                        burst: cfg.burst,
                        credit: table.peek(now, &key).map_or(0, |p| p.1),
                        cost: table.cost(),
                        action: limit.action.as_str(),
                        count: limit.count.as_str(),
                        blocked_until: Some(Timestamp::from_micros(until)),
                        blocked,
                        counters: Vec::new(),
                    })));
            }
            if !blocked {
                continue;
            }
            return Some(deny(
                &mut self.records,
                head,
                pkt,
                limit.action,
                RejectTo::Sender,
                true,
            ));
        }
        None
    }

    /// After the app layer saw the packet: app events the flow raised since the last packet
    /// are charged to its client's bucket; an event over the limit blocks the key
    /// (`block_for`) and the current flow gets the limit's action.
    pub(crate) fn on_packet_end(&mut self, pkt: &PacketContext<'_>) -> Verdict {
        if !self.has_app {
            return Verdict::Accept;
        }
        let Some(parser) = pkt.app.and_then(|a| a.parser()) else {
            return Verdict::Accept;
        };
        // The flow's client and server, whichever way this packet went.
        let (c_ip, c_port, s_ip, s_port) = match pkt.direction {
            Direction::ToServer => (pkt.src_ip, pkt.src_port, pkt.dst_ip, pkt.dst_port),
            Direction::ToClient => (pkt.dst_ip, pkt.dst_port, pkt.src_ip, pkt.src_port),
        };
        let now = pkt.ts.as_micros();
        let n = self.limits.len();
        if self.app_seen.len() >= MAX_REPLIED && !self.app_seen.contains_key(&pkt.flow_id) {
            // Far beyond any flow table; forgetting only re-reads counts from 0 (which can
            // only charge events again: more limiting, never less).
            self.app_seen.clear();
        }
        let seen = self
            .app_seen
            .entry(pkt.flow_id)
            .or_insert_with(|| vec![0; n]);
        let mut verdict = Verdict::Accept;
        for (li, (limit, ti)) in self.limits.iter().enumerate() {
            let Count::AppEvent(name) = limit.count else {
                continue;
            };
            let Some(total) = parser.event_count(name) else {
                continue;
            };
            let Some(prev) = seen.get_mut(li) else {
                continue;
            };
            if total <= *prev {
                continue;
            }
            let fresh = total - *prev;
            *prev = total;
            if !limit.matches(pkt.proto, c_ip, c_port, s_ip, s_port) {
                continue;
            }
            let Some(table) = self.shared.0.tables.get(*ti) else {
                continue;
            };
            let mut table = lock(table);
            let key = table.key(c_ip, c_port, s_ip, s_port);
            for _ in 0..fresh {
                let d = table.check(now, key, 0);
                if !d.outcome.is_over() {
                    continue;
                }
                let until = limit
                    .block_for_ms
                    .map(|ms| now.saturating_add(ms.saturating_mul(1000)));
                if let Some(u) = until {
                    let mut blocks = lock(&self.shared.0.blocked);
                    if blocks.len() >= MAX_BLOCKED && !blocks.contains_key(&(li, key)) {
                        // Full: the block that ends soonest makes room.
                        if let Some(k) = blocks.iter().min_by_key(|(_, v)| v.0).map(|(k, _)| *k) {
                            blocks.remove(&k);
                        }
                    }
                    blocks.insert((li, key), (u, false));
                }
                let blocked = self.inline && limit.action != LimitAction::Alert;
                let cfg = table.config();
                self.records
                    .push(Record::RateLimit(Box::new(RateLimitRecord {
                        event: if d.outcome == Outcome::TableFull {
                            RateLimitEvent::TableFull
                        } else {
                            RateLimitEvent::OverLimit
                        },
                        ts: pkt.ts,
                        head: Some(head(pkt)),
                        table: cfg.name.clone(),
                        key: d.key.to_string(),
                        rate: cfg.rate.to_string(),
                        burst: cfg.burst,
                        credit: d.credit,
                        cost: table.cost(),
                        action: limit.action.as_str(),
                        count: limit.count.as_str(),
                        blocked_until: until.map(Timestamp::from_micros),
                        blocked,
                        counters: Vec::new(),
                    })));
                if blocked {
                    // The current flow is reset both ways.
                    let v = deny(
                        &mut self.records,
                        head(pkt),
                        pkt,
                        limit.action,
                        RejectTo::Both,
                        true,
                    );
                    verdict = verdict.and(v);
                }
            }
        }
        verdict
    }

    /// A flow ended: forget whether it saw a reply and its app-event counts.
    pub(crate) fn on_flow_end(&mut self, flow_id: u64) {
        self.replied.remove(&flow_id);
        self.app_seen.remove(&flow_id);
    }

    /// Time passed without packets: garbage-collection ticks.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp) {
        for t in &self.shared.0.tables {
            lock(t).handle_timeout(now.as_micros());
        }
    }

    /// True when records are waiting.
    pub(crate) fn has_records(&self) -> bool {
        !self.records.is_empty()
    }

    /// The records found since the last call, oldest first.
    pub(crate) fn drain_records(&mut self) -> std::vec::Drain<'_, Record> {
        self.records.drain(..)
    }

    /// The tables in `/proc/net/ipt_hashlimit/NAME` form as of `now`: (name, text).
    pub(crate) fn tables(&self, now: Timestamp) -> Vec<(String, String)> {
        self.shared.proc_tables(now)
    }

    /// Counters over all tables, for the stats record.
    pub(crate) fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut s = TableStats::default();
        let mut entries = 0u64;
        for t in &self.shared.0.tables {
            let t = lock(t);
            let x = t.stats();
            s.lookups += x.lookups;
            s.under += x.under;
            s.over += x.over;
            s.table_full += x.table_full;
            s.created += x.created;
            s.expired += x.expired;
            entries += t.len() as u64;
        }
        vec![
            ("ratelimit.lookups", s.lookups),
            ("ratelimit.under", s.under),
            ("ratelimit.over", s.over),
            ("ratelimit.table_full", s.table_full),
            ("ratelimit.created", s.created),
            ("ratelimit.expired", s.expired),
            ("ratelimit.entries", entries),
        ]
    }

    /// One summary record per table (end of input).
    pub(crate) fn summaries(&mut self, now: Timestamp) {
        for t in &self.shared.0.tables {
            let t = lock(t);
            let s = t.stats();
            let cfg = t.config();
            let action = self
                .limits
                .iter()
                .find(|(l, _)| l.config.name == cfg.name)
                .map_or("drop", |(l, _)| l.action.as_str());
            let count = self
                .limits
                .iter()
                .find(|(l, _)| l.config.name == cfg.name)
                .map_or("new_flows", |(l, _)| l.count.as_str());
            self.records
                .push(Record::RateLimit(Box::new(RateLimitRecord {
                    event: RateLimitEvent::Summary,
                    ts: now,
                    head: None,
                    table: cfg.name.clone(),
                    key: String::new(),
                    rate: cfg.rate.to_string(),
                    burst: cfg.burst,
                    credit: 0,
                    cost: t.cost(),
                    action,
                    count,
                    blocked_until: None,
                    blocked: false,
                    counters: vec![
                        ("lookups", s.lookups),
                        ("under", s.under),
                        ("over", s.over),
                        ("table_full", s.table_full),
                        ("created", s.created),
                        ("expired", s.expired),
                        ("entries", t.len() as u64),
                        ("peak_entries", s.peak_entries),
                    ],
                })));
        }
    }
}

/// The packet's length as the kernel's byte mode counts it (the IP packet): the payload
/// plus the IP and transport headers without options (options are not visible here).
fn wire_len(pkt: &PacketContext<'_>) -> u32 {
    let ip = if pkt.src_ip.is_ipv4() { 20 } else { 40 };
    let l4 = match pkt.proto {
        6 => 20,
        17 | 1 | 58 => 8,
        _ => 0,
    };
    u32::try_from(pkt.payload.len())
        .unwrap_or(u32::MAX)
        .saturating_add(ip + l4)
}

/// Logs the drop record of a packet a limit stops and returns the limit's verdict: for
/// `reject` a reset to `to`, else a drop of the packet, or of its flow with `flow`.
fn deny(
    records: &mut Vec<Record>,
    head: PacketHead,
    pkt: &PacketContext<'_>,
    action: LimitAction,
    to: RejectTo,
    flow: bool,
) -> Verdict {
    records.push(Record::Drop(Box::new(DropRecord {
        head,
        payload_len: pkt.payload.len(),
        tcp_flags: pkt.tcp_flags,
        reason: "rate limit",
        alert: None,
    })));
    match action {
        LimitAction::Reject => Verdict::Reject { to, flow },
        _ if flow => Verdict::DropFlow,
        _ => Verdict::Drop,
    }
}

fn head(pkt: &PacketContext<'_>) -> PacketHead {
    PacketHead {
        ts: pkt.ts,
        pkt_num: pkt.pkt_num,
        flow_id: pkt.flow_id,
        src_ip: pkt.src_ip,
        src_port: pkt.src_port,
        dst_ip: pkt.dst_ip,
        dst_port: pkt.dst_port,
        proto: pkt.proto,
        direction: pkt.direction,
        app_proto: pkt
            .app
            .map(AppLayer::proto)
            .filter(|a| *a != AppProto::Unknown),
    }
}
