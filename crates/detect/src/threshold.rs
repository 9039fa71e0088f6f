//! Rule thresholds (`threshold`, `detection_filter`, and threshold.config's `suppress` and
//! `rate_filter`): which matches produce an alert, and which act differently.
//!
//! Semantics per suricata-rules.md §9. Thresholds and suppressions only suppress the
//! *alert*: flowbits and drop/reject still apply to every matching packet. A `rate_filter`
//! changes the action itself while it is active.
//!
//! The table of counters is capped at [`MAX_ENTRIES`]; when it is full, the counter created
//! longest ago is evicted to make room (never the whole table: an attacker spraying source
//! addresses can then only push out the oldest counters, not reset every count at once).
//! An evicted counter starts a new window if its key comes back.

use std::collections::HashMap;
use std::net::IpAddr;

use sekisho_rules::{IpSet, RateAction, SuppressTrack, ThresholdKind, Track, UniqueOn};

/// Most (rule, tracked key) counters kept.
pub const MAX_ENTRIES: usize = 65_536;

/// A compiled `threshold` or `detection_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// What to do with the count.
    pub kind: Kind,
    /// What the counter is per.
    pub track: Track,
    /// `count N`.
    pub count: u32,
    /// `seconds T`, in microseconds.
    pub window_us: u64,
    /// `multiplier M` (backoff).
    pub multiplier: u32,
    /// `detection_filter ... unique_on`: count distinct ports, not matches.
    pub unique_on: Option<UniqueOn>,
}

/// Threshold kinds, `detection_filter` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `type limit`: the first N matches of each window alert.
    Limit,
    /// `type threshold`: every Nth match within a window alerts.
    Threshold,
    /// `type both`: one alert when the Nth match of a window happens.
    Both,
    /// `type backoff`: alerts at matches N, N·M, N·M², …
    Backoff,
    /// `detection_filter`: every match after the Nth in the window alerts.
    DetectionFilter,
}

impl Spec {
    /// From the rule keyword.
    pub fn threshold(
        kind: ThresholdKind,
        track: Track,
        count: u32,
        seconds: u32,
        mult: Option<u32>,
    ) -> Spec {
        Spec {
            kind: match kind {
                ThresholdKind::Limit => Kind::Limit,
                ThresholdKind::Threshold => Kind::Threshold,
                ThresholdKind::Both => Kind::Both,
                ThresholdKind::Backoff => Kind::Backoff,
            },
            track,
            count: count.max(1),
            window_us: u64::from(seconds) * 1_000_000,
            multiplier: mult.unwrap_or(1).max(2),
            unique_on: None,
        }
    }

    /// From `detection_filter` (`unique_on`: count distinct source or destination ports).
    pub fn detection_filter(
        track: Track,
        count: u32,
        seconds: u32,
        unique_on: Option<UniqueOn>,
    ) -> Spec {
        Spec {
            kind: Kind::DetectionFilter,
            track,
            count,
            window_us: u64::from(seconds) * 1_000_000,
            multiplier: 1,
            unique_on,
        }
    }
}

/// A threshold.config `suppress` line compiled for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppress {
    /// `None`: every alert of the rule; else the address compared and the set it must be in.
    pub by: Option<(SuppressTrack, IpSet)>,
}

impl Suppress {
    /// True when an alert for a packet from `src` to `dst` is suppressed.
    pub fn applies(&self, src: IpAddr, dst: IpAddr) -> bool {
        match &self.by {
            None => true,
            Some((SuppressTrack::Src, set)) => set.contains(src),
            Some((SuppressTrack::Dst, set)) => set.contains(dst),
            Some((SuppressTrack::Either, set)) => set.contains(src) || set.contains(dst),
        }
    }
}

/// A threshold.config `rate_filter` compiled for one rule: once more than `count` matches
/// happen within `window_us` of the first (per tracked key), the rule acts as `new_action`
/// for `timeout_us`, from the match that went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateFilter {
    /// What the counter is per.
    pub track: Track,
    /// Matches allowed per window before the new action applies.
    pub count: u32,
    /// Window, microseconds.
    pub window_us: u64,
    /// The action while active.
    pub new_action: RateAction,
    /// How long the new action stays, microseconds.
    pub timeout_us: u64,
}

/// Bit set on a rule's order to key its `rate_filter` counter apart from its threshold
/// counter in the one table (rule orders stay far below 2^31).
const RATE_KEY: u32 = 1 << 31;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum Key {
    None,
    Ip(IpAddr),
    Pair(IpAddr, IpAddr),
    Flow(u64),
}

impl Key {
    fn of(track: Track, s: Subject) -> Key {
        match track {
            Track::Src => Key::Ip(s.src),
            Track::Dst => Key::Ip(s.dst),
            // Suricata's ip pair is unordered: both directions of a conversation count
            // together (suricata-verify threshold-config-rate-filter-*-pair).
            Track::Both | Track::Pair => Key::Pair(s.src.min(s.dst), s.src.max(s.dst)),
            Track::Flow => Key::Flow(s.flow_id),
            Track::Rule | Track::Tx => Key::None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u64,
    count: u64,
    /// `both`: the alert of this window was given.
    fired: bool,
    /// `backoff`: next count that alerts.
    next: u64,
}

/// The counters of all thresholded rules.
#[derive(Default)]
pub struct Thresholds {
    table: HashMap<(u32, Key), Entry, foldhash::fast::RandomState>,
    /// Keys in creation order, for evicting the oldest when the table is full.
    order: std::collections::VecDeque<(u32, Key)>,
    /// `unique_on` counters: the distinct ports of the current window (at most count + 1:
    /// past that the filter alerts on every match anyway), beside the table entry.
    ports: HashMap<(u32, Key), Vec<u16>, foldhash::fast::RandomState>,
    /// Counters evicted so far.
    evicted: u64,
}

/// The packet facts a threshold is tracked by.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    /// Packet source.
    pub src: IpAddr,
    /// Packet destination.
    pub dst: IpAddr,
    /// Flow id.
    pub flow_id: u64,
    /// Packet source port (0 without ports).
    pub src_port: u16,
    /// Packet destination port (0 without ports).
    pub dst_port: u16,
    /// Packet time, microseconds.
    pub now_us: u64,
}

impl Thresholds {
    /// Counters evicted because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Counters held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no counter is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Counts a match of rule `order` under its `rate_filter` and says whether the filter's
    /// new action applies to this match (suricata-rules.md §9: active from the match that
    /// makes the count exceed `count` within the window, for `timeout` seconds; the count
    /// then starts over).
    pub fn rate_active(&mut self, order: u32, rf: &RateFilter, s: Subject) -> bool {
        let now = s.now_us;
        let e = self.entry(order | RATE_KEY, rf.track, s);
        // `fired`: the new action is active since `next` (microseconds).
        if e.fired {
            if now.saturating_sub(e.next) <= rf.timeout_us {
                return true;
            }
            *e = Entry {
                start: now,
                count: 1,
                fired: false,
                next: 0,
            };
            return false;
        }
        if e.count > 0 && now.saturating_sub(e.start) >= rf.window_us {
            e.start = now;
            e.count = 0;
        }
        if e.count == 0 {
            e.start = now;
        }
        e.count += 1;
        if e.count > u64::from(rf.count) {
            e.fired = true;
            e.next = now;
            true
        } else {
            false
        }
    }

    /// The counter of rule `order` for `track`'s key of `s`, created (zeroed) when new;
    /// evicts the oldest counter when the table is full.
    fn entry(&mut self, order: u32, track: Track, s: Subject) -> &mut Entry {
        let key = Key::of(track, s);
        self.make_room(order, key);
        self.table.entry((order, key)).or_insert(Entry {
            start: s.now_us,
            count: 0,
            fired: false,
            next: 0,
        })
    }

    fn make_room(&mut self, order: u32, key: Key) {
        if !self.table.contains_key(&(order, key)) {
            while self.table.len() >= MAX_ENTRIES {
                match self.order.pop_front() {
                    Some(old) => {
                        if self.table.remove(&old).is_some() {
                            self.evicted += 1;
                        }
                        self.ports.remove(&old);
                    }
                    None => break,
                }
            }
            self.order.push_back((order, key));
        }
    }

    /// Counts a match of rule `order` and says whether it alerts.
    pub fn alert(&mut self, order: u32, spec: &Spec, s: Subject) -> bool {
        let key = Key::of(spec.track, s);
        self.make_room(order, key);
        let e = self.table.entry((order, key)).or_insert(Entry {
            start: s.now_us,
            count: 0,
            fired: false,
            next: u64::from(spec.count),
        });
        let n = u64::from(spec.count);
        let expired = spec.window_us > 0 && s.now_us.saturating_sub(e.start) >= spec.window_us;
        match spec.kind {
            Kind::Limit => {
                if expired {
                    *e = Entry {
                        start: s.now_us,
                        count: 0,
                        fired: false,
                        next: n,
                    };
                }
                e.count += 1;
                e.count <= n
            }
            Kind::Threshold => {
                if expired {
                    *e = Entry {
                        start: s.now_us,
                        count: 0,
                        fired: false,
                        next: n,
                    };
                }
                e.count += 1;
                if e.count >= n {
                    e.count = 0;
                    e.start = s.now_us;
                    true
                } else {
                    false
                }
            }
            Kind::Both => {
                if expired {
                    *e = Entry {
                        start: s.now_us,
                        count: 0,
                        fired: false,
                        next: n,
                    };
                }
                e.count += 1;
                if e.count >= n && !e.fired {
                    e.fired = true;
                    true
                } else {
                    false
                }
            }
            Kind::Backoff => {
                e.count += 1;
                if e.count == e.next {
                    e.next = e.next.saturating_mul(u64::from(spec.multiplier));
                    true
                } else {
                    false
                }
            }
            Kind::DetectionFilter => {
                if expired {
                    *e = Entry {
                        start: s.now_us,
                        count: 0,
                        fired: false,
                        next: n,
                    };
                }
                let Some(u) = spec.unique_on else {
                    e.count += 1;
                    return e.count > n;
                };
                let port = match u {
                    UniqueOn::SrcPort => s.src_port,
                    UniqueOn::DstPort => s.dst_port,
                };
                let seen = self.ports.entry((order, key)).or_default();
                if expired {
                    seen.clear();
                }
                if !seen.contains(&port) && seen.len() as u64 <= n {
                    seen.push(port);
                }
                seen.len() as u64 > n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subj(t: u64) -> Subject {
        Subject {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            flow_id: 1,
            src_port: 40000,
            dst_port: 25,
            now_us: t * 1_000_000,
        }
    }

    fn run(spec: Spec, times: &[u64]) -> Vec<bool> {
        let mut t = Thresholds::default();
        times.iter().map(|&x| t.alert(0, &spec, subj(x))).collect()
    }

    #[test]
    fn limit_threshold_both_backoff_detection_filter() {
        let limit = Spec::threshold(ThresholdKind::Limit, Track::Src, 2, 60, None);
        assert_eq!(
            run(limit, &[0, 1, 2, 61, 62, 63]),
            [true, true, false, true, true, false]
        );
        let thr = Spec::threshold(ThresholdKind::Threshold, Track::Src, 3, 60, None);
        assert_eq!(
            run(thr, &[0, 1, 2, 3, 4, 5]),
            [false, false, true, false, false, true]
        );
        let both = Spec::threshold(ThresholdKind::Both, Track::Src, 2, 60, None);
        assert_eq!(
            run(both, &[0, 1, 2, 70, 71]),
            [false, true, false, false, true]
        );
        let back = Spec::threshold(ThresholdKind::Backoff, Track::Flow, 1, 0, Some(10));
        let got = run(back, &(0..101).collect::<Vec<_>>());
        let fired: Vec<usize> = got
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(fired, [1, 10, 100]);
        let df = Spec::detection_filter(Track::Src, 2, 60, None);
        assert_eq!(
            run(df, &[0, 1, 2, 3, 61, 62]),
            [false, false, true, true, false, false]
        );
    }

    /// `unique_on dst_port`: a port scan (many ports) alerts once more than N distinct
    /// ports were hit in the window; the same port hit again and again never does.
    #[test]
    fn detection_filter_unique_on_counts_distinct_ports() {
        let df = Spec::detection_filter(Track::Src, 3, 60, Some(UniqueOn::DstPort));
        let mut t = Thresholds::default();
        let at = |port: u16, secs: u64| Subject {
            dst_port: port,
            ..subj(secs)
        };
        let same: Vec<bool> = (0..10).map(|i| t.alert(0, &df, at(25, i))).collect();
        assert!(same.iter().all(|b| !b), "one port hit 10 times: {same:?}");
        let mut t = Thresholds::default();
        let scan: Vec<bool> = [21, 22, 23, 22, 25, 80, 21]
            .iter()
            .map(|&p| t.alert(0, &df, at(p, 1)))
            .collect();
        assert_eq!(scan, [false, false, false, false, true, true, true]);
        // A new window starts over.
        assert!(!t.alert(0, &df, at(443, 70)));
    }

    /// An attacker spraying source addresses fills the table; the victim's counter created
    /// last survives (only the oldest counters are evicted, the table is never cleared), so
    /// a `limit` already reached for it stays reached.
    #[test]
    fn a_full_table_evicts_the_oldest_counters_never_all() {
        let limit = Spec::threshold(ThresholdKind::Limit, Track::Src, 1, 3600, None);
        let mut t = Thresholds::default();
        let at = |src: IpAddr| Subject {
            src,
            dst: IpAddr::from([10, 0, 0, 2]),
            flow_id: 1,
            src_port: 40000,
            dst_port: 25,
            now_us: 1_000_000,
        };
        let spray = |i: u32| IpAddr::from(i.to_be_bytes());
        // The table fills up with sprayed sources...
        for i in 0..(MAX_ENTRIES as u32 - 1) {
            assert!(t.alert(0, &limit, at(spray(0x0b00_0000 + i))));
        }
        let victim = IpAddr::from([10, 0, 0, 1]);
        assert!(t.alert(0, &limit, at(victim)), "first match alerts");
        assert!(!t.alert(0, &limit, at(victim)), "limit 1 reached");
        // ...then 1,000 more sources: each evicts one of the oldest, not the whole table.
        for i in 0..1000u32 {
            t.alert(0, &limit, at(spray(0x0c00_0000 + i)));
        }
        assert_eq!(t.len(), MAX_ENTRIES);
        assert_eq!(t.evicted(), 1000);
        assert!(
            !t.alert(0, &limit, at(victim)),
            "the victim's count survived"
        );
    }
}
