//! Application layer: protocol detection per flow and the parsers behind it (sans-I/O state
//! machines fed with in-order reassembled stream bytes per direction; UDP: one datagram per
//! call).
//!
//! # Detection
//! The engine keeps one [`AppLayer`] per flow, created on the flow's first payload byte (TCP
//! after reassembly, UDP per datagram). Protocols are recognised by content
//! ([`detect::probe`]), each protocol by its own probe in its module, through the protocol
//! registry ([`registry::PROTOCOLS`], which describes the seam); with
//! [`AppLayerConfig::server_greeting_probe`] (Suricata 8) a server's greeting counts too
//! where the protocol allows it. Protocols with a parser get one once detected
//! ([`registry::Parser`]); for the others only the protocol is set.
//!
//! The rule, per direction and then for the flow:
//! * A direction is **pending** until its first bytes match a protocol (**matched**) or
//!   definitely match none (**no match**). A direction still pending after more than
//!   [`AppLayerConfig::max_detect_bytes`] counts as no match. A UDP datagram is judged
//!   alone: the first datagram of a direction decides it.
//! * The flow's protocol ([`AppLayer::proto`]) is that of the **first direction to match**;
//!   [`AppLayer::detected_at`] records that packet. A later match of a different protocol in
//!   the other direction only sets [`AppLayer::proto_dir`] of that direction (Suricata's
//!   `app_proto_ts`/`app_proto_tc`, e.g. a TLS ClientHello to a mail server: flow `tls`,
//!   to-client the mail protocol); a direction with no match takes the flow's protocol
//!   (its data goes to the flow's parser, as in Suricata).
//! * The flow becomes [`AppProto::Failed`] when both directions have had data and neither
//!   matched; when a direction with no match has carried more than
//!   [`AppLayerConfig::max_hold_bytes`] (default 64 KiB) while the protocol is still unknown
//!   (one side talks, the other stays silent or undecided: Suricata's one-sided bail-out,
//!   which waits for 100000 bytes); or on a reassembly gap before the protocol is known.
//!   So a client that has not spoken yet can still be detected after a long server
//!   greeting (suricata-verify `bug-6053` of the mail cases: a 5038-byte banner).
//! * Until then each TCP direction's bytes are held (at most `max_hold_bytes` each, the
//!   held amount is what the failure rule allows), so the parser sees the whole stream once
//!   detection succeeds: the other direction's held bytes first, then the detecting
//!   direction's. After detection every in-order chunk of both directions goes to the
//!   parser, gaps via [`registry::Parser::gap`].
//! * A parser may hand the flow to another protocol ([`registry::Feed::Upgrade`], e.g. a
//!   mail session's accepted STARTTLS): the flow becomes that protocol (both directions),
//!   [`AppLayer::proto_orig`] is the old one, and the old parser gets no more bytes.

pub mod detect;
mod hold;
pub mod registry;

pub use hold::HoldBudget;

/// The engine-wide budgets an [`AppLayer`] charges (cheap to clone: shared handles).
#[derive(Debug, Clone, Default)]
pub struct AppBudgets {
    /// Bytes held while protocols are unknown (`app-layer.hold-memcap`).
    pub hold: HoldBudget,
    /// Bytes of parser state (`app-layer.memcap`).
    pub memcap: HoldBudget,
}

// The registry's protocol modules and types, at `app::` (e.g. `app::AppProto`).
pub use registry::*;

use crate::config::{AppLayerConfig, ProtocolMode};
use crate::event::Direction;
use detect::{probe, Probe, PROBE_LEN};
use hold::{Charge, Held};

/// Detection state of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirStatus {
    Pending,
    NoMatch,
    Matched(AppProto),
}

#[derive(Debug, Clone)]
struct DirDetect {
    status: DirStatus,
    /// Payload bytes seen in this direction while its status was decided.
    bytes: u64,
    /// Before the flow's protocol is known: the direction's bytes (for the parser later).
    /// After: at most [`PROBE_LEN`] first bytes, only while the direction is pending.
    /// Charged to the engine's hold budget.
    held: Held,
}

impl DirDetect {
    fn new(budget: HoldBudget) -> Self {
        DirDetect {
            status: DirStatus::Pending,
            bytes: 0,
            held: Held::new(budget),
        }
    }
}

/// App-layer state of one flow: detected protocol(s) and the protocol's parser.
///
/// The engine feeds it ([`AppLayer::feed`], [`AppLayer::gap`]) before the inspector sees
/// the same bytes, so an [`crate::Inspector`] reads an up-to-date state through
/// [`crate::PacketContext::app`]. Memory: at most `2 * max_hold_bytes` held during
/// detection, then the parser's own bounds.
#[derive(Debug, Clone)]
pub struct AppLayer {
    l4: u8,
    client_port: u16,
    server_port: u16,
    proto: AppProto,
    orig: Option<AppProto>,
    dir_proto: [AppProto; 2],
    dirs: [DirDetect; 2],
    detected_at: Option<(Direction, u64)>,
    parser: Option<Parser>,
    /// The parser of the protocol before an upgrade (the plain-text protocol that
    /// negotiated STARTTLS): no longer fed,
    /// kept so its open transactions are still logged.
    prev: Option<Parser>,
    /// Detection gave up because the hold budget was spent (sticky).
    hold_exhausted: bool,
    /// What the parsers keep, charged to the app-layer memcap.
    mem: Charge,
    /// The parsers could not get room under the app-layer memcap: their state was freed
    /// and the flow parses no more (sticky).
    memcap_exhausted: bool,
    /// `memcap_exhausted` was not yet counted ([`AppLayer::take_memcap_hit`]).
    memcap_unreported: bool,
}

impl AppLayer {
    /// State for a flow of IP protocol `l4` (6 TCP, 17 UDP) between `client_port` and
    /// `server_port`, holding bytes without an engine-wide limit.
    pub fn new(l4: u8, client_port: u16, server_port: u16) -> Self {
        Self::with_budget(l4, client_port, server_port, HoldBudget::unlimited())
    }

    /// As [`AppLayer::new`], charging the bytes held during detection to `budget` (the
    /// engine's, shared by all its flows).
    pub fn with_budget(l4: u8, client_port: u16, server_port: u16, budget: HoldBudget) -> Self {
        Self::with_budgets(
            l4,
            client_port,
            server_port,
            &AppBudgets {
                hold: budget,
                memcap: HoldBudget::unlimited(),
            },
        )
    }

    /// As [`AppLayer::new`], charging held bytes to `budgets.hold` and the parsers'
    /// state to `budgets.memcap` (the engine's, shared by all its flows).
    pub fn with_budgets(l4: u8, client_port: u16, server_port: u16, budgets: &AppBudgets) -> Self {
        let budget = budgets.hold.clone();
        AppLayer {
            l4,
            client_port,
            server_port,
            proto: AppProto::Unknown,
            orig: None,
            dir_proto: [AppProto::Unknown; 2],
            dirs: [DirDetect::new(budget.clone()), DirDetect::new(budget)],
            detected_at: None,
            parser: None,
            prev: None,
            hold_exhausted: false,
            mem: Charge::new(budgets.memcap.clone()),
            memcap_exhausted: false,
            memcap_unreported: false,
        }
    }

    /// True when the flow's parsers could not get room under the engine's app-layer
    /// memcap ([`crate::config::AppLayerConfig::memcap`]): their state was freed and the
    /// flow's bytes are parsed no more, so rules on its buffers cannot be evaluated.
    pub fn memcap_exhausted(&self) -> bool {
        self.memcap_exhausted
    }

    /// True once, the first time after [`AppLayer::memcap_exhausted`] became true (so the
    /// engine counts each flow once).
    pub fn take_memcap_hit(&mut self) -> bool {
        std::mem::take(&mut self.memcap_unreported)
    }

    /// Charges what the parsers keep now to the app-layer memcap (O(1)); when the growth
    /// does not fit, frees the parsers' state instead: the flow fails closed.
    fn account(&mut self) {
        let now = self.parser.as_ref().map_or(0, Parser::mem_bytes)
            + self.prev.as_ref().map_or(0, Parser::mem_bytes);
        if !self.mem.set(now) {
            self.memcap_exhausted = true;
            self.memcap_unreported = true;
            self.parser = None;
            self.prev = None;
            self.mem.set(0);
        }
    }

    /// True when detection gave up because the engine's hold budget
    /// ([`crate::config::AppLayerConfig::hold_memcap`]) was spent: the flow is `failed`
    /// without its protocol having been judged, so rules for it cannot be evaluated.
    pub fn hold_exhausted(&self) -> bool {
        self.hold_exhausted
    }

    /// The flow's protocol: `Unknown` until detected, `Failed` when detection gave up, the
    /// new protocol after an upgrade (STARTTLS).
    pub fn proto(&self) -> AppProto {
        self.proto
    }

    /// The protocol before a protocol change (an upgrade such as STARTTLS), else `None`.
    pub fn proto_orig(&self) -> Option<AppProto> {
        self.orig
    }

    /// The protocol of one direction (Suricata's `app_proto_ts` / `app_proto_tc`).
    pub fn proto_dir(&self, dir: Direction) -> AppProto {
        self.dir_proto[dir.index()]
    }

    /// The flow's parser, once its protocol was detected and has one (kept after an
    /// upgrade, no longer fed).
    pub fn parser(&self) -> Option<&Parser> {
        self.parser.as_ref()
    }

    /// The parser, mutably (the engine takes transactions, anomalies and counts from it).
    pub fn parser_mut(&mut self) -> Option<&mut Parser> {
        self.parser.as_mut()
    }

    /// Every parser the flow had, the one before an upgrade first: what the engine drains
    /// transactions, anomalies and counts from.
    pub fn parsers_mut(&mut self) -> [Option<&mut Parser>; 2] {
        [self.prev.as_mut(), self.parser.as_mut()]
    }

    /// True when one of the flow's parsers has transactions, anomalies or counts to hand
    /// out ([`Parser::has_output`]).
    pub fn has_output(&self) -> bool {
        self.prev
            .iter()
            .chain(self.parser.iter())
            .any(Parser::has_output)
    }

    /// The parser when it parses the flow's current protocol (what detection inspects).
    pub fn active_parser(&self) -> Option<&Parser> {
        self.parser.as_ref().filter(|p| p.proto() == self.proto)
    }

    /// Direction and packet number of the packet whose data made detection succeed.
    pub fn detected_at(&self) -> Option<(Direction, u64)> {
        self.detected_at
    }

    /// Feeds in-order bytes of `dir` (TCP: a reassembled chunk; UDP: one datagram) that
    /// packet `pkt_num` released.
    pub fn feed(&mut self, cfg: &AppLayerConfig, dir: Direction, data: &[u8], pkt_num: u64) {
        if data.is_empty() {
            return;
        }
        match self.proto {
            AppProto::Unknown => self.detect(cfg, dir, data, pkt_num),
            AppProto::Failed => {}
            _ => {
                self.probe_other(cfg, dir, data);
                self.parse(cfg, dir, data);
            }
        }
    }

    /// Reports `len` bytes of `dir` lost for good (reassembly gap).
    pub fn gap(&mut self, dir: Direction, len: u64) {
        let d = dir.index();
        match self.proto {
            // Suricata: a gap at the stream start ends detection unless the other side
            // already found the protocol.
            AppProto::Unknown => self.fail(),
            AppProto::Failed => {}
            p => {
                if self.dirs[d].status == DirStatus::Pending {
                    self.dirs[d].status = DirStatus::NoMatch;
                    self.dirs[d].held.free();
                    self.dir_proto[d] = p;
                }
                if let Some(parser) = self.parser.as_mut().filter(|q| q.proto() == p) {
                    parser.gap(dir, len);
                    self.account();
                }
            }
        }
    }

    fn is_tcp(&self) -> bool {
        self.l4 == 6
    }

    fn probe(&self, cfg: &AppLayerConfig, dir: Direction, data: &[u8]) -> Probe {
        probe(cfg, self.l4, dir, self.client_port, self.server_port, data)
    }

    /// Detection while the flow's protocol is unknown.
    fn detect(&mut self, cfg: &AppLayerConfig, dir: Direction, data: &[u8], pkt_num: u64) {
        let d = dir.index();
        let max = cfg.max_detect_bytes;
        let hold = cfg.max_hold_bytes.max(max);
        let tcp = self.is_tcp();
        // Fast path (the common case): a direction's first chunk matches by itself, so
        // nothing is copied.
        if self.dirs[d].status == DirStatus::Pending
            && self.dirs[d].held.is_empty()
            && max >= PROBE_LEN
        {
            if let Probe::Match(p) = self.probe(cfg, dir, data) {
                let st = &mut self.dirs[d];
                st.bytes = st.bytes.saturating_add(data.len() as u64);
                st.status = DirStatus::Matched(p);
                self.detected(cfg, p, dir, pkt_num, data);
                return;
            }
        }
        let st = &mut self.dirs[d];
        st.bytes = st.bytes.saturating_add(data.len() as u64);
        // TCP bytes are held for the parser (UDP protocols have none yet).
        let taken = if tcp {
            let n = hold.saturating_sub(st.held.len()).min(data.len());
            if !st.held.extend(&data[..n]) {
                self.hold_exhausted = true;
                self.fail();
                return;
            }
            n
        } else {
            0
        };
        let status = self.dirs[d].status;
        if status == DirStatus::Pending {
            let r = if tcp {
                self.probe(cfg, dir, self.dirs[d].held.as_slice())
            } else {
                self.probe(cfg, dir, data)
            };
            self.dirs[d].status = match r {
                Probe::Match(p) => DirStatus::Matched(p),
                Probe::NoMatch => DirStatus::NoMatch,
                Probe::NeedMore if !tcp || self.dirs[d].bytes > max as u64 => DirStatus::NoMatch,
                Probe::NeedMore => DirStatus::Pending,
            };
        }
        let st = &self.dirs[d];
        match st.status {
            DirStatus::Matched(p) => self.detected(cfg, p, dir, pkt_num, &data[taken..]),
            DirStatus::NoMatch
                if self.dirs[1 - d].status == DirStatus::NoMatch || st.bytes > hold as u64 =>
            {
                self.fail()
            }
            _ => {}
        }
    }

    /// Direction `dir` matched `p`: the flow is `p`; held bytes go to the parser, then `rest`
    /// (the part of the current chunk that was not held).
    fn detected(
        &mut self,
        cfg: &AppLayerConfig,
        p: AppProto,
        dir: Direction,
        pkt_num: u64,
        rest: &[u8],
    ) {
        let d = dir.index();
        let o = 1 - d;
        self.proto = p;
        self.detected_at = Some((dir, pkt_num));
        self.dir_proto[d] = p;
        if self.dirs[o].status == DirStatus::NoMatch {
            self.dir_proto[o] = p;
        }
        let other = self.dirs[o].held.take();
        let mine = self.dirs[d].held.take();
        let make = p
            .def()
            .and_then(|d| d.parser)
            .filter(|_| cfg.protocol_switches.mode(p) == ProtocolMode::On);
        self.parser = make.and_then(|make| make(cfg, self.l4));
        if self.parser.is_some() {
            let other_dir = dir.reverse();
            // The other side's bytes arrived before this chunk: they go first.
            self.parse(cfg, other_dir, &other);
            self.parse(cfg, dir, &mine);
            self.parse(cfg, dir, rest);
        }
        // A still-pending other direction keeps probing its first bytes for `proto_dir`.
        if self.dirs[o].status == DirStatus::Pending {
            let first = &other[..other.len().min(PROBE_LEN)];
            if self.dirs[o].held.extend(first) {
                self.dirs[o].held.keep_first(PROBE_LEN);
            }
        }
    }

    /// After detection: decides `proto_dir` of a direction that has not matched yet.
    fn probe_other(&mut self, cfg: &AppLayerConfig, dir: Direction, data: &[u8]) {
        let d = dir.index();
        if self.dirs[d].status != DirStatus::Pending {
            return;
        }
        let first = if self.dirs[d].held.is_empty() {
            self.probe(cfg, dir, data)
        } else {
            Probe::NeedMore
        };
        let r = if first != Probe::NeedMore {
            first
        } else if self.is_tcp() {
            let st = &mut self.dirs[d];
            let n = PROBE_LEN.saturating_sub(st.held.len()).min(data.len());
            // Refused by the budget: this direction's own protocol stays undecided.
            let kept = st.held.extend(&data[..n]);
            let r = self.probe(cfg, dir, self.dirs[d].held.as_slice());
            if !kept || r == Probe::NeedMore && self.dirs[d].held.len() >= PROBE_LEN {
                Probe::NoMatch
            } else {
                r
            }
        } else {
            match self.probe(cfg, dir, data) {
                Probe::NeedMore => Probe::NoMatch,
                r => r,
            }
        };
        let (status, p) = match r {
            Probe::NeedMore => return,
            Probe::Match(q) => (DirStatus::Matched(q), q),
            Probe::NoMatch => (DirStatus::NoMatch, self.proto),
        };
        self.dirs[d].status = status;
        self.dirs[d].held.free();
        self.dir_proto[d] = p;
    }

    /// Feeds the flow's parser and follows an upgrade to another protocol: the new
    /// protocol's parser takes the flow from the next bytes on (a STARTTLS the server
    /// accepted: the client's next bytes are its ClientHello), the old one is kept for
    /// logging. Bytes a client pipelined behind STARTTLS went to the old protocol's parser,
    /// which skips them (Suricata too), so a ClientHello sent before the server's answer is
    /// not parsed.
    fn parse(&mut self, cfg: &AppLayerConfig, dir: Direction, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let proto = self.proto;
        let Some(parser) = self.parser.as_mut().filter(|q| q.proto() == proto) else {
            return;
        };
        let feed = parser.feed(dir, data);
        if let Feed::Upgrade(to) = feed {
            self.orig = Some(proto);
            self.proto = to;
            self.dir_proto = [to; 2];
            for st in &mut self.dirs {
                st.status = DirStatus::Matched(to);
                st.held.free();
            }
            // One upgrade per flow: a parser made by an upgrade never upgrades again
            // (`prev` holds the first protocol's).
            if self.prev.is_none() {
                let make = to.def().and_then(|d| d.parser);
                if let Some(next) = make.and_then(|make| make(cfg, self.l4)) {
                    self.prev = self.parser.replace(next);
                }
            }
        }
        self.account();
    }

    fn fail(&mut self) {
        self.proto = AppProto::Failed;
        for (st, p) in self.dirs.iter_mut().zip(self.dir_proto.iter_mut()) {
            if st.bytes > 0 {
                *p = AppProto::Failed;
            }
            st.status = DirStatus::NoMatch;
            st.held.free();
        }
    }
}
