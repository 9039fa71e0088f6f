//! Multi-pattern prefilter: one Aho-Corasick pass per buffer finds the rules whose fast
//! pattern occurs, so a packet's cost grows with the patterns present, not with the rule
//! count. Rules without a fast pattern (header-only, negated contents only, pcre only) are
//! always candidates for their buffer kind.

use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use sekisho_engine::app::{AppProto, BufferId};

use crate::sig::{BufKind, ProtoReq, Sig, SigKind};

/// One automaton with the rules behind each pattern.
struct Automaton {
    ac: AhoCorasick,
    /// Pattern index → rule orders.
    rules: Vec<Vec<u32>>,
}

impl Automaton {
    fn build(map: HashMap<Vec<u8>, Vec<u32>>, nocase: bool) -> Option<Automaton> {
        if map.is_empty() {
            return None;
        }
        let mut pats: Vec<(Vec<u8>, Vec<u32>)> = map.into_iter().collect();
        pats.sort();
        // A DFA: one table lookup per byte. The contiguous NFA the builder picks by itself
        // for thousands of patterns cost ~87 instructions per payload byte with ET Open.
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(nocase)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(pats.iter().map(|(p, _)| p))
            .or_else(|_| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(nocase)
                    .match_kind(MatchKind::Standard)
                    .build(pats.iter().map(|(p, _)| p))
            })
            .ok()?;
        Some(Automaton {
            ac,
            rules: pats.into_iter().map(|(_, r)| r).collect(),
        })
    }

    fn scan(&self, hay: &[u8], seen: &mut [u64], out: &mut Vec<u32>) {
        for m in self.ac.find_overlapping_iter(hay) {
            let i = m.pattern().as_usize();
            let (w, b) = (i / 64, 1u64 << (i % 64));
            if seen[w] & b == 0 {
                seen[w] |= b;
                out.extend_from_slice(&self.rules[i]);
            }
        }
    }

    fn patterns(&self) -> usize {
        self.rules.len()
    }
}

/// Rules without a fast pattern, indexed by transport and destination port like Suricata's
/// rule groups, so a header-only rule for port 22 is not even looked at for a port-80 packet.
#[derive(Default)]
struct AlwaysIndex {
    /// Every such rule (for reports and benches).
    all: Vec<u32>,
    /// Per transport class (0 TCP, 1 UDP, 2 other): rules for any destination port.
    any: [Vec<u32>; 3],
    /// Per transport class: rules by destination port.
    by_port: [HashMap<u16, Vec<u32>>; 3],
    /// IP-only rules (reputation lists: hundreds of rules with thousands of addresses),
    /// candidates only on the first packet of each direction of a flow.
    ip_only: [Vec<u32>; 3],
    /// The IP-only rules of `ip_only` that one side's addresses can index (narrow ranges),
    /// by those addresses: a rule whose indexed side holds neither of the packet's
    /// addresses cannot fit its header (forward or, for `<>`, swapped), so it is no
    /// candidate. Suricata looks IP-only rules up by address (a radix tree) likewise.
    ip_index: [AddrIndex; 3],
    /// The IP-only rules whose both sides are wide (`any`, `$HOME_NET`): always candidates.
    ip_wide: [Vec<u32>; 3],
}

/// Address ranges of IP-only rules, for a point lookup.
#[derive(Default)]
struct AddrIndex {
    v4: RangeIndex<u32>,
    v6: RangeIndex<u128>,
}

/// Widest IPv4 range indexed (a /16); a side with a wider range is not indexed.
const MAX_V4_SPAN: u32 = (1 << 16) - 1;
/// Widest IPv6 range indexed (a /64).
const MAX_V6_SPAN: u128 = (1 << 64) - 1;

/// Inclusive ranges sorted by start, each at most `span` wide, with the rule behind each:
/// the ranges holding a point start within `span` below it, so a lookup walks back from
/// the point only that far (`max_end`, the running maximum of ends, stops it).
struct RangeIndex<T> {
    /// (start, end, rule order), by start.
    ranges: Vec<(T, T, u32)>,
    /// `max_end[i]`: the greatest end among `ranges[..=i]`.
    max_end: Vec<T>,
}

impl<T> Default for RangeIndex<T> {
    fn default() -> Self {
        RangeIndex {
            ranges: Vec::new(),
            max_end: Vec::new(),
        }
    }
}

impl<T: Copy + Ord> RangeIndex<T> {
    fn finish(&mut self) {
        self.ranges.sort_unstable();
        self.max_end.clear();
        let mut m: Option<T> = None;
        for r in &self.ranges {
            let e = m.map_or(r.1, |m| m.max(r.1));
            m = Some(e);
            self.max_end.push(e);
        }
    }

    /// Appends the rules of the ranges holding `a`.
    fn lookup(&self, a: T, out: &mut Vec<u32>) {
        let n = self.ranges.partition_point(|r| r.0 <= a);
        for i in (0..n).rev() {
            if self.max_end[i] < a {
                break;
            }
            if self.ranges[i].1 >= a {
                out.push(self.ranges[i].2);
            }
        }
    }
}

impl AddrIndex {
    /// Indexes `order` under `ranges` when all are narrow; false (nothing added) if not.
    fn add(&mut self, ranges: &[(IpAddr, IpAddr)], order: u32) -> bool {
        let narrow = ranges.iter().all(|r| match *r {
            (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(b) - u32::from(a) <= MAX_V4_SPAN,
            (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(b) - u128::from(a) <= MAX_V6_SPAN,
            _ => false,
        });
        if !narrow || ranges.is_empty() {
            return false;
        }
        for r in ranges {
            match *r {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    self.v4.ranges.push((u32::from(a), u32::from(b), order))
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    self.v6.ranges.push((u128::from(a), u128::from(b), order))
                }
                _ => {}
            }
        }
        true
    }

    fn lookup(&self, a: IpAddr, out: &mut Vec<u32>) {
        match a {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a), out),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), out),
        }
    }
}

/// Most destination ports a rule is indexed under; wider port sets go to `any`.
const MAX_INDEXED_PORTS: usize = 64;

impl AlwaysIndex {
    fn add(&mut self, s: &Sig) {
        self.all.push(s.order);
        let classes: &[usize] = match s.proto {
            ProtoReq::Transport(6) => &[0],
            ProtoReq::Transport(17) => &[1],
            ProtoReq::App(AppProto::Dns) => &[0, 1],
            ProtoReq::App(_) => &[0],
            ProtoReq::Any => &[0, 1, 2],
            ProtoReq::Transport(_) | ProtoReq::Icmp => &[2],
        };
        let ports: Option<Vec<u16>> = match (&s.dport, s.bidir) {
            (Some(set), false) => {
                let mut v = Vec::new();
                for &(a, b) in set.ranges() {
                    if v.len() + usize::from(b - a) + 1 > MAX_INDEXED_PORTS {
                        v.clear();
                        break;
                    }
                    v.extend(a..=b);
                }
                (!v.is_empty()).then_some(v)
            }
            _ => None,
        };
        // The narrower side of an IP-only rule (fewer ranges), if either can be indexed.
        let pairs = |set: &sekisho_rules::IpSet| -> Vec<(IpAddr, IpAddr)> {
            set.ranges().iter().map(|r| (r.start, r.end)).collect()
        };
        let (src, dst) = (pairs(&s.src), pairs(&s.dst));
        let sides = if src.len() <= dst.len() {
            [src, dst]
        } else {
            [dst, src]
        };
        for &c in classes {
            if s.kind == SigKind::IpOnly {
                self.ip_only[c].push(s.order);
                if !sides.iter().any(|r| self.ip_index[c].add(r, s.order)) {
                    self.ip_wide[c].push(s.order);
                }
                continue;
            }
            match &ports {
                Some(ps) => {
                    for &port in ps {
                        self.by_port[c].entry(port).or_default().push(s.order);
                    }
                }
                None => self.any[c].push(s.order),
            }
        }
    }

    fn finish(&mut self) {
        for ix in &mut self.ip_index {
            ix.v4.finish();
            ix.v6.finish();
        }
    }

    fn collect(
        &self,
        proto: u8,
        dst_port: u16,
        first_in_direction: bool,
        addrs: Option<(IpAddr, IpAddr)>,
        out: &mut Vec<u32>,
    ) {
        let c = match proto {
            6 => 0,
            17 => 1,
            _ => 2,
        };
        out.extend_from_slice(&self.any[c]);
        if first_in_direction {
            match addrs {
                Some((src, dst)) => {
                    out.extend_from_slice(&self.ip_wide[c]);
                    self.ip_index[c].lookup(src, out);
                    if dst != src {
                        self.ip_index[c].lookup(dst, out);
                    }
                }
                None => out.extend_from_slice(&self.ip_only[c]),
            }
        }
        if c < 2 {
            if let Some(v) = self.by_port[c].get(&dst_port) {
                out.extend_from_slice(v);
            }
        }
    }
}

/// Per buffer kind: case-sensitive and case-insensitive automata plus the always-list.
#[derive(Default)]
struct PerKind {
    exact: Option<Automaton>,
    nocase: Option<Automaton>,
    always: AlwaysIndex,
}

/// The prefilter over a compiled rule set. Immutable after [`Prefilter::build`]: the
/// per-scan state lives in a [`PrefilterScratch`] that each worker owns.
#[derive(Default)]
pub struct Prefilter {
    kinds: Vec<PerKind>,
    /// Per app protocol (by `AppProto::index`): its buffers that some rule's fast pattern
    /// or always-list names, so a packet visits only those.
    app_bufs: Vec<Vec<BufferId>>,
    /// By rule order: see [`Prefilter::settles`].
    settles: Vec<bool>,
    /// Words of the "pattern already reported" bitmap a scan needs.
    seen_words: usize,
}

/// One worker's scratch for [`Prefilter::scan`]: the "pattern already reported" bitmap,
/// sized on first use for the prefilter it scans with (so it survives a rule-set swap).
#[derive(Debug, Default, Clone)]
pub struct PrefilterScratch {
    seen: Vec<u64>,
}

/// Prefilter sizes, for the load report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefilterStats {
    /// Distinct patterns in all automata.
    pub patterns: usize,
    /// Rules evaluated on every packet of their kind (no fast pattern).
    pub always: usize,
}

impl Prefilter {
    /// Builds the prefilter for `sigs` (indexed by their `order`).
    pub fn build(sigs: &[Sig]) -> Prefilter {
        let mut exact: Vec<HashMap<Vec<u8>, Vec<u32>>> = vec![HashMap::new(); BufKind::count()];
        let mut nocase: Vec<HashMap<Vec<u8>, Vec<u32>>> = vec![HashMap::new(); BufKind::count()];
        let mut always: Vec<AlwaysIndex> = (0..BufKind::count())
            .map(|_| AlwaysIndex::default())
            .collect();
        for s in sigs {
            // The longest fast pattern of any group; a rule is a candidate when it occurs.
            // Groups with transforms are left out: their pattern is in the transformed buffer.
            let best = s
                .groups
                .iter()
                .filter(|g| !g.matcher.has_transforms())
                .filter_map(|g| g.matcher.fast_pattern().map(|fp| (g.kind, fp)))
                .max_by_key(|(_, fp)| fp.bytes.len());
            match best {
                Some((kind, fp)) => {
                    // One case-insensitive pass finds case-sensitive patterns too (a superset
                    // of their hits); the full matcher checks case afterwards. One scan per
                    // buffer instead of two.
                    let _ = &mut exact;
                    nocase[kind.index()]
                        .entry(fp.bytes.to_ascii_lowercase())
                        .or_default()
                        .push(s.order);
                }
                None => {
                    let kind = s.groups.first().map_or(BufKind::Payload, |g| g.kind);
                    always[kind.index()].add(s);
                }
            }
        }
        let mut kinds = Vec::with_capacity(BufKind::count());
        let mut max = 0;
        for ((e, n), mut a) in exact.into_iter().zip(nocase).zip(always) {
            a.finish();
            let k = PerKind {
                exact: Automaton::build(e, false),
                nocase: Automaton::build(n, true),
                always: a,
            };
            max = max
                .max(k.exact.as_ref().map_or(0, Automaton::patterns))
                .max(k.nocase.as_ref().map_or(0, Automaton::patterns));
            kinds.push(k);
        }
        let mut app_bufs: Vec<Vec<BufferId>> = Vec::new();
        for b in BufferId::all() {
            let Some(i) = b.proto().index() else { continue };
            let k = &kinds[BufKind::App(b).index()];
            if k.exact.is_some() || k.nocase.is_some() || !k.always.all.is_empty() {
                if app_bufs.len() <= i {
                    app_bufs.resize_with(i + 1, Vec::new);
                }
                app_bufs[i].push(b);
            }
        }
        // The buffers whose changes the transaction memo sees: those it scans, with a fast
        // pattern (an always-list buffer alone is not looked at).
        let followed = |b: BufferId| {
            let k = &kinds[BufKind::App(b).index()];
            k.exact.is_some() || k.nocase.is_some()
        };
        let mut settles = vec![false; sigs.iter().map(|s| s.order as usize + 1).max().unwrap_or(0)];
        for s in sigs {
            settles[s.order as usize] = s.kind == SigKind::AppTx
                && s.bits_cond.is_empty()
                && s.dsize.is_none()
                && s.flags.is_none()
                && s.tx_conds.is_empty()
                && !s.groups.is_empty()
                && s.groups
                    .iter()
                    .all(|g| matches!(g.kind, BufKind::App(b) if followed(b)));
        }
        Prefilter {
            kinds,
            app_bufs,
            settles,
            seen_words: max.div_ceil(64),
        }
    }

    /// Sizes for the load report.
    pub fn stats(&self) -> PrefilterStats {
        let mut st = PrefilterStats::default();
        for k in &self.kinds {
            st.patterns += k.exact.as_ref().map_or(0, Automaton::patterns)
                + k.nocase.as_ref().map_or(0, Automaton::patterns);
            st.always += k.always.all.len();
        }
        st
    }

    /// The buffers of `proto` that some rule's fast pattern or always-list names (the
    /// others give no candidates), in id order.
    pub fn app_buffers(&self, proto: AppProto) -> &[BufferId] {
        proto
            .index()
            .and_then(|i| self.app_bufs.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// True when rule `order`'s result on a packet depends only on the flow and direction,
    /// `flow:established`, the app protocol and live transaction buffers that hold some
    /// rule's fast pattern (those the transaction memo scans, so it sees them change): an
    /// app-transaction rule with no flowbits, `dsize`, `flags`, transaction state conditions
    /// or payload groups. Unless one of those changed, a miss stays a miss.
    pub fn settles(&self, order: u32) -> bool {
        self.settles.get(order as usize).copied().unwrap_or(false)
    }

    /// True when some rule has its fast pattern in `kind` (else [`Prefilter::scan`] of it
    /// finds nothing).
    pub fn has_patterns(&self, kind: BufKind) -> bool {
        self.kinds
            .get(kind.index())
            .is_some_and(|k| k.exact.is_some() || k.nocase.is_some())
    }

    /// Rules without a fast pattern whose first buffer is `kind`.
    pub fn always(&self, kind: BufKind) -> &[u32] {
        self.kinds.get(kind.index()).map_or(&[], |k| &k.always.all)
    }

    /// Appends the rules without a fast pattern whose first buffer is `kind` and whose
    /// transport and destination port can fit a packet of `proto` to `dst_port` (IP-only
    /// rules only on the first packet of a direction). With `addrs` (the packet's source
    /// and destination), IP-only rules whose addresses cannot fit them are left out; without,
    /// every IP-only rule is a candidate (`--explain` counts candidates as before the
    /// index).
    pub fn always_into(
        &self,
        kind: BufKind,
        proto: u8,
        dst_port: u16,
        first_in_direction: bool,
        addrs: Option<(IpAddr, IpAddr)>,
        out: &mut Vec<u32>,
    ) {
        // Most buffer kinds have no such rule: no port lookup for them.
        if let Some(k) = self
            .kinds
            .get(kind.index())
            .filter(|k| !k.always.all.is_empty())
        {
            k.always
                .collect(proto, dst_port, first_in_direction, addrs, out);
        }
    }

    /// Appends to `out` the rules whose fast pattern for `kind` occurs in any of `bufs`.
    pub fn scan<'b>(
        &self,
        scratch: &mut PrefilterScratch,
        kind: BufKind,
        bufs: impl Iterator<Item = &'b [u8]> + Clone,
        out: &mut Vec<u32>,
    ) {
        let Some(k) = self.kinds.get(kind.index()) else {
            return;
        };
        if scratch.seen.len() < self.seen_words {
            scratch.seen.resize(self.seen_words, 0);
        }
        for a in [&k.exact, &k.nocase].into_iter().flatten() {
            scratch.seen.iter_mut().for_each(|w| *w = 0);
            for b in bufs.clone() {
                a.scan(b, &mut scratch.seen, out);
            }
        }
    }
}
