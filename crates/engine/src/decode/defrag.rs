//! IPv4 and IPv6 fragment reassembly, bounded.
//!
//! Policy: a datagram is reassembled once its last fragment has been seen and fragments cover
//! every byte. Overlapping data is resolved **first-wins** (bytes that arrived first are kept;
//! a `frag_overlap` event is raised). Limits (see [`DefragConfig`]): at most `max_trackers`
//! datagrams in progress, `max_frags_per_datagram` fragments each, `memcap` bytes of fragment
//! data in total, and `timeout_secs` per datagram. A fragment over any limit is ignored
//! (`frag_ignored`, and `defrag.max_trackers_reached` / `defrag.memcap_exception` counted);
//! expired datagrams are discarded by [`Defrag::expire`] (`defrag.mgr.tracker_timeout`).

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
    /// (offset, data) in arrival order; earlier entries win on overlap.
    frags: Vec<(usize, Vec<u8>)>,
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
    /// Upper-layer protocol of the datagram (from the first fragment for IPv6).
    proto: Option<u8>,
    held: usize,
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

    /// Number of datagrams in progress.
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
    ) -> Option<u8> {
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
        let end = frag.offset + frag.data.len();
        if end > 65535 {
            events.push(ev_too_large);
            return None;
        }
        if !self.trackers.contains_key(&key) && self.trackers.len() >= self.cfg.max_trackers {
            stats.max_trackers_reached += 1;
            events.push(ev_ignored);
            return None;
        }
        if self.held + frag.data.len() > self.cfg.memcap {
            stats.memcap_exception += 1;
            events.push(ev_ignored);
            return None;
        }
        let t = self.trackers.entry(key).or_insert_with(|| Tracker {
            first_seen: now,
            frags: Vec::new(),
            total: None,
            proto: None,
            held: 0,
        });
        if t.frags.len() >= self.cfg.max_frags_per_datagram {
            events.push(ev_ignored);
            return None;
        }
        if !frag.more {
            match t.total {
                Some(total) if total != end => {
                    // A second, different "last" fragment: keep the first one's view.
                    events.push(ev_ignored);
                    return None;
                }
                _ => t.total = Some(end),
            }
        }
        if let Some(total) = t.total {
            if end > total {
                events.push(ev_ignored);
                return None;
            }
        }
        if t.proto.is_none() {
            t.proto = frag.proto;
        }
        if t.frags
            .iter()
            .any(|(o, d)| frag.offset < o + d.len() && *o < end)
        {
            events.push(ev_overlap);
        }
        t.frags.push((frag.offset, frag.data.to_vec()));
        t.held += frag.data.len();
        self.held += frag.data.len();

        let total = t.total?;
        // Coverage check over offsets sorted by start.
        let mut ranges: Vec<(usize, usize)> =
            t.frags.iter().map(|(o, d)| (*o, o + d.len())).collect();
        ranges.sort_unstable();
        let mut covered = 0usize;
        for (s, e) in ranges {
            if s > covered {
                return None;
            }
            covered = covered.max(e);
        }
        if covered < total {
            return None;
        }
        let proto = t.proto;
        let t = self.trackers.remove(&key)?;
        self.held -= t.held;
        out.clear();
        out.resize(total, 0);
        // Later arrivals first, so earlier data overwrites them: first-wins.
        for (o, d) in t.frags.iter().rev() {
            let n = d.len().min(total.saturating_sub(*o));
            out[*o..*o + n].copy_from_slice(&d[..n]);
        }
        if key.v6 {
            stats.ipv6_reassembled += 1;
        } else {
            stats.ipv4_reassembled += 1;
        }
        // IPv6 datagram whose first fragment never told the protocol cannot complete
        // (offset 0 always carries it), so `proto` is Some here in practice.
        proto
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
