//! IPv4 and IPv6 fragment reassembly, bounded, failing closed.
//!
//! Policy: a datagram is reassembled once its last fragment has been seen and fragments cover
//! every byte. Fragments that contradict each other **discard the whole datagram**, so that no
//! reading of it reaches flows, streams or rules that the receiving host might read otherwise:
//! - an overlap whose bytes differ from the bytes already held (`frag_overlap`). RFC 5722
//!   requires this for IPv6; Linux does it for IPv4 too (it discards on *any* overlap except
//!   an exact duplicate). An overlap carrying the same bytes (a retransmission) is kept and
//!   still raises `frag_overlap`, as Suricata does for every overlap; an exact duplicate is
//!   not stored twice.
//! - a fragment lying beyond the datagram's end once the last fragment told it, a last
//!   fragment ending before data already held, or a second last fragment with a different
//!   end (`frag_ignored`; Linux `ip_frag_queue` discards the queue in the same three cases).
//!
//! A discarded datagram keeps an empty tracker until its timeout, so its later fragments are
//! dropped too (`frag_ignored`) instead of starting a new datagram that a partial set could
//! complete. Limits (see [`DefragConfig`]): at most `max_trackers` datagrams in progress,
//! `max_frags_per_datagram` fragments each, `memcap` bytes of fragment data in total, and
//! `timeout_secs` per datagram. A fragment over any limit is ignored (`frag_ignored`, and
//! `defrag.max_trackers_reached` / `defrag.memcap_exception` counted); one refused because
//! the tracker table or the byte budget is full is [`Reassembly::Full`], for the
//! `defrag_memcap` exception policy to decide; expired datagrams are
//! discarded by [`Defrag::expire`] (`defrag.mgr.tracker_timeout`).

use std::collections::HashMap;

use crate::config::DefragConfig;
use crate::decode::DecodeEvent;
use crate::stats::DefragStats;
use crate::time::Timestamp;

/// Identity of a datagram being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub v6: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub id: u32,
    /// IPv4 protocol (part of the RFC 791 identity); 0 for IPv6.
    pub proto: u8,
    pub vlan: [u16; 3],
}

struct Tracker {
    first_seen: Timestamp,
    /// (offset, data) in arrival order. Overlapping entries hold identical bytes (anything
    /// else discards the datagram), so their order does not matter.
    frags: Vec<(usize, Vec<u8>)>,
    /// Payload length, known once the last fragment arrived. Every entry of `frags` ends at
    /// or before it (a fragment beyond it discards the datagram).
    total: Option<usize>,
    /// Upper-layer protocol of the datagram (from the first fragment for IPv6).
    proto: Option<u8>,
    /// Bytes charged to the memcap for this datagram: [`TRACKER_COST`], and each stored
    /// fragment's bytes plus [`FRAGMENT_COST`].
    held: usize,
    /// The datagram was discarded: `frags` is empty and every later fragment is dropped.
    discarded: bool,
}

/// One fragment handed to [`Defrag::insert`].
pub(crate) struct Fragment<'a> {
    /// Byte offset of `data` within the datagram payload.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
    /// Upper-layer protocol, if this fragment tells it (IPv4: always; IPv6: offset 0 only).
    pub proto: Option<u8>,
    /// Fragment payload.
    pub data: &'a [u8],
}

/// What [`Defrag::insert`] did with a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reassembly {
    /// Stored; the datagram is not complete yet.
    Held,
    /// The datagram is complete: its payload is in the output buffer; the upper-layer
    /// protocol (the next header after the Fragment header for IPv6).
    Complete(u8),
    /// The fragment was not stored (a per-datagram limit, or it or its datagram is invalid);
    /// events say why. Nothing of it will ever be delivered.
    Dropped,
    /// The fragment was not stored because the reassembler is full: the tracker table
    /// (`max_trackers`) or the byte budget (`memcap`). Not the fragment's fault: the
    /// `defrag_memcap` exception policy decides what happens to it.
    Full,
}

/// What a datagram in progress costs besides its fragments' bytes, charged to `memcap`: its
/// table entry, times what the hash table reserves per entry (load factor 7/8, doubling
/// while it grows; while it rehashes the old table is alive beside the new one).
const TRACKER_COST: usize = (std::mem::size_of::<(FragKey, Tracker)>() + 1) * 5 / 2;

/// What one stored fragment costs besides its bytes: its entry in the datagram's list (which
/// doubles as it grows) and the allocator's header and rounding of its own buffer.
const FRAGMENT_COST: usize = std::mem::size_of::<(usize, Vec<u8>)>() * 2 + 32;

/// Fragment reassembly state.
pub(crate) struct Defrag {
    cfg: DefragConfig,
    trackers: HashMap<FragKey, Tracker, foldhash::fast::RandomState>,
    held: usize,
}

impl Defrag {
    pub fn new(cfg: DefragConfig) -> Self {
        Defrag {
            cfg,
            trackers: HashMap::default(),
            held: 0,
        }
    }

    /// Number of datagrams in progress (discarded ones until their timeout included).
    pub fn in_progress(&self) -> usize {
        self.trackers.len()
    }

    /// Adds a fragment. On completion writes the payload into `out` and returns the
    /// upper-layer protocol. Events go to `events`.
    pub fn insert(
        &mut self,
        key: FragKey,
        frag: Fragment<'_>,
        now: Timestamp,
        stats: &mut DefragStats,
        events: &mut Vec<DecodeEvent>,
        out: &mut Vec<u8>,
    ) -> Reassembly {
        let (ev_too_large, ev_overlap, ev_ignored) = if key.v6 {
            (
                DecodeEvent::Ipv6FragPktTooLarge,
                DecodeEvent::Ipv6FragOverlap,
                DecodeEvent::Ipv6FragIgnored,
            )
        } else {
            (
                DecodeEvent::Ipv4FragPktTooLarge,
                DecodeEvent::Ipv4FragOverlap,
                DecodeEvent::Ipv4FragIgnored,
            )
        };
        let start = frag.offset;
        let end = start.saturating_add(frag.data.len());
        if end > 65535 {
            events.push(ev_too_large);
            return Reassembly::Dropped;
        }
        if !self.trackers.contains_key(&key) && self.trackers.len() >= self.cfg.max_trackers {
            stats.max_trackers_reached += 1;
            events.push(ev_ignored);
            return Reassembly::Full;
        }
        // The memcap counts what reassembly really takes: the fragment's bytes and its
        // bookkeeping, and a new datagram's table entry (a flood of tiny never-completing
        // fragments is mostly bookkeeping).
        let new_tracker = if self.trackers.contains_key(&key) {
            0
        } else {
            TRACKER_COST
        };
        if self.held + new_tracker + frag.data.len() + FRAGMENT_COST > self.cfg.memcap {
            stats.memcap_exception += 1;
            events.push(ev_ignored);
            return Reassembly::Full;
        }
        let held = &mut self.held;
        let t = self.trackers.entry(key).or_insert_with(|| {
            *held += TRACKER_COST;
            Tracker {
                first_seen: now,
                frags: Vec::new(),
                total: None,
                proto: None,
                held: TRACKER_COST,
                discarded: false,
            }
        });
        if t.discarded {
            events.push(ev_ignored);
            return Reassembly::Dropped;
        }
        // Lengths that contradict each other: the datagram has no single reading.
        let contradicts = match (frag.more, t.total) {
            (false, Some(total)) => total != end,
            (false, None) => t.frags.iter().any(|(o, d)| o + d.len() > end),
            (true, Some(total)) => end > total,
            (true, None) => false,
        };
        if contradicts {
            events.push(ev_ignored);
            Self::discard(t, &mut self.held);
            return Reassembly::Dropped;
        }
        // Overlaps must repeat the bytes already held.
        let mut overlap = false;
        let mut duplicate = false;
        for (o, d) in &t.frags {
            let (o, e) = (*o, o + d.len());
            if start >= e || o >= end {
                continue;
            }
            overlap = true;
            let (lo, hi) = (start.max(o), end.min(e));
            if frag.data.get(lo - start..hi - start) != d.get(lo - o..hi - o) {
                events.push(ev_overlap);
                Self::discard(t, &mut self.held);
                return Reassembly::Dropped;
            }
            duplicate |= o == start && e == end;
        }
        if overlap {
            events.push(ev_overlap);
        }
        if !frag.more {
            t.total = Some(end);
        }
        if t.proto.is_none() {
            t.proto = frag.proto;
        }
        if !duplicate {
            if t.frags.len() >= self.cfg.max_frags_per_datagram {
                events.push(ev_ignored);
                return Reassembly::Dropped;
            }
            t.frags.push((start, frag.data.to_vec()));
            t.held += frag.data.len() + FRAGMENT_COST;
            self.held += frag.data.len() + FRAGMENT_COST;
        }

        let Some(total) = t.total else {
            return Reassembly::Held;
        };
        // Coverage check over offsets sorted by start.
        let mut ranges: Vec<(usize, usize)> =
            t.frags.iter().map(|(o, d)| (*o, o + d.len())).collect();
        ranges.sort_unstable();
        let mut covered = 0usize;
        for (s, e) in ranges {
            if s > covered {
                return Reassembly::Held;
            }
            covered = covered.max(e);
        }
        if covered < total {
            return Reassembly::Held;
        }
        let Some(t) = self.trackers.remove(&key) else {
            return Reassembly::Held;
        };
        self.held -= t.held;
        out.clear();
        out.resize(total, 0);
        for (o, d) in &t.frags {
            // Every fragment ends within `total` (checked on insert); `get_mut` keeps a
            // broken invariant from ever becoming a panic.
            if let Some(dst) = out.get_mut(*o..o + d.len()) {
                dst.copy_from_slice(d);
            }
        }
        if key.v6 {
            stats.ipv6_reassembled += 1;
        } else {
            stats.ipv4_reassembled += 1;
        }
        // An IPv6 datagram's offset-0 fragment always tells the protocol; one that did not
        // (it cannot complete without offset 0) is dropped rather than guessed.
        match t.proto {
            Some(p) => Reassembly::Complete(p),
            None => {
                events.push(ev_ignored);
                Reassembly::Dropped
            }
        }
    }

    /// Frees a datagram's fragments and marks it discarded until its timeout (its table entry
    /// stays charged until then).
    fn discard(t: &mut Tracker, held: &mut usize) {
        *held -= t.held - TRACKER_COST;
        t.held = TRACKER_COST;
        t.frags = Vec::new();
        t.discarded = true;
    }

    /// Discards datagrams older than the timeout; returns how many.
    pub fn expire(&mut self, now: Timestamp, stats: &mut DefragStats) -> usize {
        let timeout = self.cfg.timeout_secs;
        let mut freed = 0;
        let before = self.trackers.len();
        self.trackers.retain(|_, t| {
            let keep = now.micros_since(t.first_seen) < timeout * 1_000_000;
            if !keep {
                freed += t.held;
            }
            keep
        });
        self.held -= freed;
        let n = before - self.trackers.len();
        stats.tracker_timeout += n as u64;
        n
    }
}
