//! One named hashlimit table: per-key token buckets, expiry, garbage collection, the cap on
//! entries, and the `/proc/net/ipt_hashlimit/NAME` lines.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::rate::{
    credits, Rate, RateError, BYTE_CREDITS_PER_JIFFY, BYTE_CREDITS_PER_SEC, BYTE_SHIFT,
    CREDITS_PER_JIFFY,
};

/// Default `burst` (iptables: 5).
pub const DEFAULT_BURST: u64 = 5;
/// Largest packet-mode burst of revision 1.
pub const MAX_BURST: u64 = 10_000;
/// Default `htable_max`: the kernel's default on a machine with more than 1 GiB of memory
/// (8 × 8192 buckets).
pub const DEFAULT_MAX: usize = 65_536;
/// Largest `htable_max` the kernel accepts.
pub const MAX_MAX: usize = 1_048_576;
/// Default garbage-collection interval in milliseconds.
pub const DEFAULT_GC_INTERVAL_MS: u64 = 1000;
/// Microseconds per jiffy: the model runs at HZ 1000.
const US_PER_JIFFY: u64 = 1000;
/// Jiffies per second.
const HZ: i64 = 1000;

/// Which packet fields form a table's key (`--hashlimit-mode`); none = one shared bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyFields {
    /// Source address (masked to `srcmask`).
    pub srcip: bool,
    /// Source port.
    pub srcport: bool,
    /// Destination address (masked to `dstmask`).
    pub dstip: bool,
    /// Destination port.
    pub dstport: bool,
}

impl KeyFields {
    /// The mode names, in iptables' order.
    pub const NAMES: [&'static str; 4] = ["srcip", "srcport", "dstip", "dstport"];

    /// Adds one field by its iptables name (`srcip`, `srcport`, `dstip`, `dstport`).
    pub fn add(&mut self, word: &str) -> Result<(), RateError> {
        match word.trim() {
            "srcip" => self.srcip = true,
            "srcport" => self.srcport = true,
            "dstip" => self.dstip = true,
            "dstport" => self.dstport = true,
            w => {
                return Err(RateError::new(
                    format!("unknown key field '{w}'"),
                    "use srcip, srcport, dstip or dstport (an empty list is one shared bucket)",
                ))
            }
        }
        Ok(())
    }

    /// Parses iptables' `srcip,dstport` (`|` also separates).
    pub fn parse_list(text: &str) -> Result<KeyFields, RateError> {
        let mut f = KeyFields::default();
        for w in text.split([',', '|']).filter(|w| !w.trim().is_empty()) {
            f.add(w)?;
        }
        Ok(f)
    }

    /// True when no field is selected (one bucket for all traffic).
    pub fn is_empty(&self) -> bool {
        !(self.srcip || self.srcport || self.dstip || self.dstport)
    }
}

impl fmt::Display for KeyFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = [self.srcip, self.srcport, self.dstip, self.dstport];
        let names: Vec<&str> = Self::NAMES
            .iter()
            .zip(on)
            .filter_map(|(n, o)| o.then_some(*n))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// What a table is configured with (the rule that creates it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Table name (`--hashlimit-name`).
    pub name: String,
    /// Average rate.
    pub rate: Rate,
    /// Bucket depth: packets (packet mode, 1–10000) or bytes (byte mode, at least one second
    /// of the rate).
    pub burst: u64,
    /// Whether `burst` was given (byte mode's default expiry depends on it).
    pub burst_given: bool,
    /// Key fields.
    pub fields: KeyFields,
    /// Source prefix length when keying on `srcip` (`None`: 32 / 128).
    pub srcmask: Option<u8>,
    /// Destination prefix length when keying on `dstip` (`None`: 32 / 128).
    pub dstmask: Option<u8>,
    /// Idle time after which an entry is removed, in ms.
    pub expire_ms: u64,
    /// Garbage-collection interval in ms.
    pub gc_interval_ms: u64,
    /// Cap on entries; a new key finding the table full is over the limit (see [`Outcome`]).
    pub max: usize,
}

impl Config {
    /// A config with iptables' defaults for everything but the name and rate: burst 5 (byte
    /// mode: one second of the rate), one shared bucket, expire = the rate's unit, GC every
    /// second, at most [`DEFAULT_MAX`] entries.
    pub fn new(name: impl Into<String>, rate: Rate) -> Config {
        let burst = match rate {
            Rate::Packets { .. } => DEFAULT_BURST,
            Rate::Bytes { per_sec } => per_sec,
        };
        Config {
            name: name.into(),
            rate,
            burst,
            burst_given: false,
            fields: KeyFields::default(),
            srcmask: None,
            dstmask: None,
            expire_ms: rate.default_expire_ms(false),
            gc_interval_ms: DEFAULT_GC_INTERVAL_MS,
            max: DEFAULT_MAX,
        }
    }

    /// Checks the ranges iptables enforces.
    pub fn validate(&self) -> Result<(), RateError> {
        if self.name.is_empty()
            || self.name.len() > 254
            || self.name.starts_with('.')
            || self.name.contains(['/', '\\', '\0'])
        {
            // The name is also a file name (`DIR/ratelimit/NAME`).
            return Err(RateError::new(
                format!("bad table name '{}'", self.name),
                "1 to 254 characters, not starting with '.', no '/' or '\\'",
            ));
        }
        match self.rate {
            Rate::Packets { .. } if !(1..=MAX_BURST).contains(&self.burst) => {
                return Err(RateError::new(
                    format!("burst {} is out of range", self.burst),
                    "burst is 1 to 10000 packets",
                ))
            }
            Rate::Bytes { per_sec } if self.burst < per_sec => {
                return Err(RateError::new(
                    format!(
                        "burst {} bytes is less than one second of the rate",
                        self.burst
                    ),
                    format!("use at least {per_sec} bytes (the rate per second)"),
                ))
            }
            _ => {}
        }
        for (what, m) in [("srcmask", self.srcmask), ("dstmask", self.dstmask)] {
            if m.is_some_and(|m| m > 128) {
                return Err(RateError::new(
                    format!("{what} {} is out of range", m.unwrap_or(0)),
                    "a prefix length is 0 to 32 for IPv4 and 0 to 128 for IPv6",
                ));
            }
        }
        if self.expire_ms == 0 || self.gc_interval_ms == 0 {
            return Err(RateError::new(
                "htable_expire and gc interval must be at least 1 ms",
                "leave htable_expire_ms out for the default (the rate's unit)",
            ));
        }
        if self.max == 0 || self.max > MAX_MAX {
            return Err(RateError::new(
                format!("htable_max {} is out of range", self.max),
                "htable_max is 1 to 1048576 entries",
            ));
        }
        Ok(())
    }

    /// Credits one packet costs (byte mode: one 16-byte chunk).
    pub fn cost(&self) -> u64 {
        self.rate.cost()
    }

    /// Bucket size in credits (`credit_cap`); byte mode: the extra one-second refills the
    /// burst grants.
    pub fn credit_cap(&self) -> u64 {
        match self.rate {
            Rate::Packets { .. } => credits(self.rate.avg().saturating_mul(self.burst)),
            Rate::Bytes { per_sec } => (self.burst / per_sec.max(1)).saturating_sub(1),
        }
    }

    /// The key of a packet: the selected fields, addresses masked, the rest zero.
    pub fn key(&self, src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16) -> Key {
        let v6 = src.is_ipv6();
        Key {
            src: if self.fields.srcip {
                mask(src, self.srcmask)
            } else {
                zero(v6)
            },
            src_port: if self.fields.srcport { src_port } else { 0 },
            dst: if self.fields.dstip {
                mask(dst, self.dstmask)
            } else {
                zero(v6)
            },
            dst_port: if self.fields.dstport { dst_port } else { 0 },
        }
    }
}

fn zero(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// `ip` masked to `prefix` bits (`None` = the whole address; IPv4 prefixes over 32 = 32).
pub fn mask(ip: IpAddr, prefix: Option<u8>) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.unwrap_or(32).min(32));
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.unwrap_or(128).min(128));
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// A table key: masked addresses and selected ports; unselected fields are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Source address (masked), or `0.0.0.0` / `::`.
    pub src: IpAddr,
    /// Source port, or 0.
    pub src_port: u16,
    /// Destination address (masked), or `0.0.0.0` / `::`.
    pub dst: IpAddr,
    /// Destination port, or 0.
    pub dst_port: u16,
}

impl fmt::Display for Key {
    /// The kernel's form: `103.54.60.244:0->0.0.0.0:0`; IPv6 in `%pI6` form (eight groups of
    /// four hex digits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ip(f, self.src)?;
        write!(f, ":{}->", self.src_port)?;
        write_ip(f, self.dst)?;
        write!(f, ":{}", self.dst_port)
    }
}

fn write_ip(f: &mut fmt::Formatter<'_>, ip: IpAddr) -> fmt::Result {
    match ip {
        IpAddr::V4(a) => write!(f, "{a}"),
        IpAddr::V6(a) => {
            let s = a.segments();
            write!(
                f,
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
    }
}

/// One bucket.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Credits in the bucket.
    credit: u64,
    /// Packet mode: unused (the table's cap). Byte mode: one-second refills left.
    refills: u64,
    /// Jiffy of the last refill.
    prev: u64,
    /// Jiffy at which the entry becomes eligible for GC.
    expires: u64,
    /// The last packet was over the limit (so the next over-limit one is not news).
    over: bool,
}

/// What a lookup decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A token was there and was taken: within the rate.
    Under,
    /// No token: over the rate (nothing is taken).
    Over,
    /// A new key found the table full: no bucket exists for it, so the packet is treated as
    /// over the limit (the kernel drops it whatever the rule's target: "hot-drop").
    TableFull,
}

impl Outcome {
    /// True for [`Outcome::Over`] and [`Outcome::TableFull`].
    pub fn is_over(self) -> bool {
        !matches!(self, Outcome::Under)
    }
}

/// One lookup's result, with the bucket as it is after the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Under, over, or table full.
    pub outcome: Outcome,
    /// The packet's key.
    pub key: Key,
    /// The key had no entry (a new or re-created bucket, full).
    pub new_key: bool,
    /// Credits left after the packet (0 when the table was full).
    pub credit: u64,
    /// The key went over the limit with this packet (its previous packet was within it, or
    /// it is new): the moment worth logging. Always true for [`Outcome::TableFull`].
    pub first_over: bool,
}

/// Counters of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Packets that looked a key up.
    pub lookups: u64,
    /// Within the rate.
    pub under: u64,
    /// Over the rate.
    pub over: u64,
    /// Entries created.
    pub created: u64,
    /// Entries removed by garbage collection.
    pub expired: u64,
    /// New keys refused because the table held `htable_max` entries.
    pub table_full: u64,
    /// Most entries held at once.
    pub peak_entries: u64,
}

/// A named table of token buckets with hashlimit semantics. Time is the packets' own
/// (microseconds), counted in 1 ms jiffies as a HZ-1000 kernel does.
#[derive(Debug, Clone)]
pub struct Table {
    cfg: Config,
    cost: u64,
    cap: u64,
    // Seeded per process: the keys are attacker-chosen addresses.
    entries: HashMap<Key, Entry, foldhash::fast::RandomState>,
    /// Jiffy of the first lookup: GC ticks run at `origin + k × gc_interval`.
    origin: Option<u64>,
    /// Jiffy of the last GC tick that ran.
    last_gc: u64,
    stats: TableStats,
}

impl Table {
    /// An empty table. `cfg` should have passed [`Config::validate`]; out-of-range values are
    /// clamped here (a burst of at least 1, at most [`MAX_MAX`] entries).
    pub fn new(mut cfg: Config) -> Table {
        cfg.burst = cfg.burst.max(1);
        cfg.max = cfg.max.clamp(1, MAX_MAX);
        cfg.expire_ms = cfg.expire_ms.max(1);
        cfg.gc_interval_ms = cfg.gc_interval_ms.max(1);
        Table {
            cost: cfg.cost(),
            cap: cfg.credit_cap(),
            cfg,
            entries: HashMap::default(),
            origin: None,
            last_gc: 0,
            stats: TableStats::default(),
        }
    }

    /// The table's configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Credits per packet (column 5 of a `/proc` line).
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Credit cap (column 4 of a `/proc` line).
    pub fn credit_cap(&self) -> u64 {
        self.cap
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// An upper bound of the table's memory in bytes at `htable_max` entries: the hash map's
    /// slots (key, entry, one control byte) at the capacity it grows to for that many
    /// entries.
    pub fn memory_bound(&self) -> usize {
        let slot = std::mem::size_of::<(Key, Entry)>() + 1;
        // hashbrown keeps at most 7/8 of its buckets full and sizes buckets in powers of two.
        let buckets = (self.cfg.max * 8 / 7 + 1).next_power_of_two();
        buckets * slot
    }

    /// Memory the table holds now, in bytes (by its current capacity).
    pub fn memory_used(&self) -> usize {
        let slot = std::mem::size_of::<(Key, Entry)>() + 1;
        let cap = self.entries.capacity();
        // capacity() is 7/8 of the buckets.
        (cap * 8 / 7).max(1).next_power_of_two() * slot
    }

    /// The key of a packet under this table's mode and masks.
    pub fn key(&self, src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16) -> Key {
        self.cfg.key(src, src_port, dst, dst_port)
    }

    /// One packet (or event) with `key` at `now_us`; `len` is its length in bytes (byte mode
    /// only). Runs the garbage-collection ticks due first, then the kernel's steps: create a
    /// full bucket for a new key (or refuse it when the table is full), otherwise renew the
    /// expiry and refill; then take one packet's cost if the bucket holds it.
    pub fn check(&mut self, now_us: u64, key: Key, len: u32) -> Decision {
        let now = now_us / US_PER_JIFFY;
        self.gc_due(now);
        self.stats.lookups += 1;
        let expire = self.cfg.expire_ms;
        let (cost, cap, bytes) = (self.cost, self.cap, self.cfg.rate.is_bytes());
        // One hash lookup on the common path (a known key).
        let (outcome, credit, first_over, new_key) = if let Some(e) = self.entries.get_mut(&key) {
            e.expires = now + expire;
            refill(e, now, cap, bytes);
            let (o, c, f) = take(e, cost, bytes, len);
            (o, c, f, false)
        } else {
            if self.entries.len() >= self.cfg.max {
                self.stats.table_full += 1;
                return Decision {
                    outcome: Outcome::TableFull,
                    key,
                    new_key: true,
                    credit: 0,
                    first_over: true,
                };
            }
            self.stats.created += 1;
            let (credit, refills) = if bytes {
                (BYTE_CREDITS_PER_SEC, cap)
            } else {
                (cap, 0)
            };
            let e = self.entries.entry(key).or_insert(Entry {
                credit,
                refills,
                prev: now,
                expires: now + expire,
                over: false,
            });
            let (o, c, f) = take(e, cost, bytes, len);
            self.stats.peak_entries = self.stats.peak_entries.max(self.entries.len() as u64);
            (o, c, f, true)
        };
        if outcome == Outcome::Under {
            self.stats.under += 1;
        } else {
            self.stats.over += 1;
        }
        Decision {
            outcome,
            key,
            new_key,
            credit,
            first_over,
        }
    }

    /// Time has passed without lookups: runs the GC ticks due by `now_us`.
    pub fn handle_timeout(&mut self, now_us: u64) {
        self.gc_due(now_us / US_PER_JIFFY);
    }

    /// Runs the GC tick the kernel's timer would have run last before `now`: every entry that
    /// expired by that tick goes. (A packet after a quiet spell thus finds what the timer had
    /// already removed, and an expired entry the timer has not reached yet is reused.)
    fn gc_due(&mut self, now: u64) {
        let origin = *self.origin.get_or_insert(now);
        let iv = self.cfg.gc_interval_ms;
        let tick = origin + now.saturating_sub(origin) / iv * iv;
        if tick <= self.last_gc {
            return;
        }
        self.last_gc = tick;
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires > tick);
        self.stats.expired += (before - self.entries.len()) as u64;
        // Give memory back after a flood (keep room for 4× what is left).
        if self.entries.capacity() > 1024 && self.entries.len() * 8 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 4);
        }
    }

    /// The bucket of `key` as of `now_us` (refilled, not changed): `(seconds to expiry,
    /// credit)`.
    pub fn peek(&self, now_us: u64, key: &Key) -> Option<(i64, u64)> {
        let now = now_us / US_PER_JIFFY;
        let mut e = *self.entries.get(key)?;
        refill(&mut e, now, self.cap, self.cfg.rate.is_bytes());
        Some((secs_to(e.expires, now), e.credit))
    }

    /// The `/proc/net/ipt_hashlimit/NAME` text as of `now_us`: one line per entry, each
    /// refilled to `now_us` first as the kernel does when the file is read. Lines are sorted
    /// by key (the kernel prints hash order).
    pub fn proc_text(&self, now_us: u64) -> String {
        let now = now_us / US_PER_JIFFY;
        let mut keys: Vec<(&Key, &Entry)> = self.entries.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        let bytes = self.cfg.rate.is_bytes();
        let mut out = String::new();
        for (k, e) in keys {
            let mut e = *e;
            refill(&mut e, now, self.cap, bytes);
            let cap = if bytes { e.refills } else { self.cap };
            let _ = writeln!(
                out,
                "{} {} {} {} {}",
                secs_to(e.expires, now),
                k,
                e.credit,
                cap,
                self.cost
            );
        }
        out
    }
}

/// Takes one packet's cost from `e` if it holds it: `(outcome, credit left, first over)`.
/// Byte mode charges 16-byte chunks (at most one second's worth) and spends one of the
/// burst's refills when the bucket is short.
fn take(e: &mut Entry, cost: u64, bytes: bool, len: u32) -> (Outcome, u64, bool) {
    let charge = if bytes {
        let chunks = u64::from(len >> BYTE_SHIFT) + 1;
        let c = chunks.saturating_mul(cost).min(BYTE_CREDITS_PER_SEC);
        if e.credit < c && e.refills > 0 {
            e.refills -= 1;
            e.credit = BYTE_CREDITS_PER_SEC;
        }
        c
    } else {
        cost
    };
    let outcome = if e.credit >= charge {
        e.credit -= charge;
        Outcome::Under
    } else {
        Outcome::Over
    };
    let first_over = outcome == Outcome::Over && !e.over;
    e.over = outcome == Outcome::Over;
    (outcome, e.credit, first_over)
}

/// `(expires − now) / HZ`, truncated toward zero like the kernel's signed division.
fn secs_to(expires: u64, now: u64) -> i64 {
    let d = i64::try_from(expires).unwrap_or(i64::MAX) - i64::try_from(now).unwrap_or(i64::MAX);
    d / HZ
}

/// The kernel's refill: credits for the jiffies since the last refill, up to the cap. Time
/// going backwards (merged captures) refills nothing and keeps `prev`.
fn refill(e: &mut Entry, now: u64, cap: u64, bytes: bool) {
    if now <= e.prev {
        return;
    }
    let delta = now - e.prev;
    e.prev = now;
    let (per_jiffy, cap) = if bytes {
        (BYTE_CREDITS_PER_JIFFY, BYTE_CREDITS_PER_SEC)
    } else {
        (CREDITS_PER_JIFFY, cap)
    };
    e.credit = e
        .credit
        .saturating_add(delta.saturating_mul(per_jiffy))
        .min(cap);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn seed() -> Table {
        let mut c = Config::new("smtp_limit", Rate::parse("2/h").unwrap());
        c.burst = 2;
        c.fields.srcip = true;
        c.expire_ms = 3_600_000;
        Table::new(c)
    }

    const S: u64 = 1_000_000;

    #[test]
    fn seed_rule_numbers_and_bucket() {
        let mut t = seed();
        assert_eq!((t.cost(), t.credit_cap()), (57_600_000, 115_200_000));
        let k = t.key(ip("103.54.60.244"), 40000, ip("10.0.0.1"), 25);
        assert_eq!(k.to_string(), "103.54.60.244:0->0.0.0.0:0");
        let t0 = 1_000 * S;
        // A new key starts full: two back-to-back, the third is over.
        assert_eq!(t.check(t0, k, 60).outcome, Outcome::Under);
        assert_eq!(t.check(t0, k, 60).outcome, Outcome::Under);
        let d = t.check(t0, k, 60);
        assert_eq!(
            (d.outcome, d.credit, d.first_over),
            (Outcome::Over, 0, true)
        );
        assert!(!t.check(t0, k, 60).first_over, "still over: not news");
        // Over-limit packets take nothing: 1799 s later still under one token...
        assert_eq!(t.check(t0 + 1799 * S, k, 60).outcome, Outcome::Over);
        // ... and at 1800 s exactly one token has accrued (1800 × 32,000 = cost).
        assert_eq!(t.check(t0 + 1800 * S, k, 60).outcome, Outcome::Under);
        // 552.77 s of refill later: credit 17,688,640 (0.307 tokens), as in the seed line.
        let now = t0 + 1800 * S + 552_770_000;
        assert_eq!(t.peek(now, &k), Some((3047, 17_688_640)));
        assert_eq!(
            t.proc_text(now),
            "3047 103.54.60.244:0->0.0.0.0:0 17688640 115200000 57600000\n"
        );
    }

    #[test]
    fn expiry_is_refreshed_by_every_packet_and_gc_recreates_full() {
        let mut c = Config::new("t", Rate::parse("6/minute").unwrap());
        c.burst = 3;
        c.fields.srcip = true;
        c.expire_ms = 10_000;
        let mut t = Table::new(c);
        let k = t.key(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2);
        let t0 = 50 * S;
        for _ in 0..3 {
            assert_eq!(t.check(t0, k, 0).outcome, Outcome::Under);
        }
        // Over-limit packets every 5 s keep the entry alive (and accrue 0.5 token each).
        let mut now = t0;
        for _ in 0..4 {
            now += 5 * S;
            t.check(now, k, 0);
        }
        assert_eq!(t.len(), 1);
        assert_eq!(t.stats().expired, 0);
        // Idle past expiry (GC runs on its 1 s ticks): the entry goes; the next packet
        // recreates it with a full bucket (3 in a row again).
        now += 11 * S;
        t.handle_timeout(now);
        assert_eq!(t.len(), 0);
        assert_eq!(t.stats().expired, 1);
        for _ in 0..3 {
            let d = t.check(now, k, 0);
            assert_eq!(d.outcome, Outcome::Under);
        }
        assert_eq!(t.check(now, k, 0).outcome, Outcome::Over);
        assert_eq!(t.stats().created, 2);
    }

    #[test]
    fn expired_entry_not_yet_collected_is_reused() {
        let mut c = Config::new("t", Rate::parse("1/minute").unwrap());
        c.burst = 1;
        c.expire_ms = 1500;
        c.gc_interval_ms = 10_000;
        let mut t = Table::new(c);
        let k = t.key(ip("10.0.0.1"), 0, ip("10.0.0.2"), 0);
        assert_eq!(t.check(0, k, 0).outcome, Outcome::Under);
        // 2 s later the entry has expired but the GC tick (10 s) has not come: reused, empty.
        assert_eq!(t.check(2 * S, k, 0).outcome, Outcome::Over);
        // After the tick at 10 s that found it expired (renewed to 3.5 s): recreated full.
        assert_eq!(t.check(10 * S, k, 0).outcome, Outcome::Under);
    }

    #[test]
    fn keys_masks_and_shared_bucket() {
        let mut c = Config::new("t", Rate::parse("1/s").unwrap());
        c.fields = KeyFields::parse_list("srcip,dstport").unwrap();
        c.srcmask = Some(24);
        let t = Table::new(c.clone());
        assert_eq!(
            t.key(ip("192.0.2.77"), 5, ip("198.51.100.1"), 25)
                .to_string(),
            "192.0.2.0:0->0.0.0.0:25"
        );
        c.srcmask = Some(48);
        let t = Table::new(c.clone());
        assert_eq!(
            t.key(ip("2001:db8:1:2::5"), 5, ip("2001:db8::1"), 587)
                .to_string(),
            "2001:0db8:0001:0000:0000:0000:0000:0000:0->0000:0000:0000:0000:0000:0000:0000:0000:587"
        );
        c.fields = KeyFields::parse_list("srcip|srcport|dstip|dstport").unwrap();
        c.srcmask = Some(128);
        c.dstmask = Some(0);
        let t = Table::new(c.clone());
        assert_eq!(
            t.key(ip("2001:db8::5"), 5, ip("2001:db8::1"), 587).src,
            ip("2001:db8::5")
        );
        assert_eq!(
            t.key(ip("2001:db8::5"), 5, ip("2001:db8::1"), 587).dst,
            ip("::")
        );
        c.fields = KeyFields::default();
        let t = Table::new(c);
        assert_eq!(
            t.key(ip("1.2.3.4"), 5, ip("5.6.7.8"), 6),
            t.key(ip("9.9.9.9"), 7, ip("8.8.8.8"), 8)
        );
        assert!(KeyFields::parse_list("srcip,foo").is_err());
        assert_eq!(
            KeyFields::parse_list("dstport,srcip").unwrap().to_string(),
            "srcip,dstport"
        );
    }

    #[test]
    fn full_table_refuses_new_keys_and_counts_them() {
        let mut c = Config::new("t", Rate::parse("1/s").unwrap());
        c.fields.srcip = true;
        c.max = 2;
        let mut t = Table::new(c);
        let k = |s: &str| Key {
            src: ip(s),
            src_port: 0,
            dst: ip("0.0.0.0"),
            dst_port: 0,
        };
        assert_eq!(t.check(0, k("10.0.0.1"), 0).outcome, Outcome::Under);
        assert_eq!(t.check(0, k("10.0.0.2"), 0).outcome, Outcome::Under);
        assert_eq!(t.check(0, k("10.0.0.3"), 0).outcome, Outcome::TableFull);
        // Known keys carry on.
        assert_eq!(t.check(S / 2, k("10.0.0.1"), 0).outcome, Outcome::Under);
        assert_eq!(t.stats().table_full, 1);
        assert_eq!(t.len(), 2);
        // Once entries expire (1 s default for /second) there is room again.
        assert_eq!(t.check(10 * S, k("10.0.0.3"), 0).outcome, Outcome::Under);
    }

    #[test]
    fn byte_mode_charges_16_byte_chunks_and_holds_one_second() {
        let mut c = Config::new("b", Rate::parse("1kb/s").unwrap());
        c.burst = 2048;
        c.validate().unwrap();
        let mut t = Table::new(c);
        assert_eq!(t.credit_cap(), 1); // one extra one-second refill
        let k = t.key(ip("10.0.0.1"), 0, ip("10.0.0.2"), 0);
        // 64 chunks per second; a 1023-byte packet is 64 chunks = the whole second.
        assert_eq!(t.check(0, k, 1023).outcome, Outcome::Under);
        // The burst refill grants a second second at once.
        assert_eq!(t.check(0, k, 1023).outcome, Outcome::Under);
        assert_eq!(t.check(0, k, 15).outcome, Outcome::Over);
        // Half a second later: 32 chunks.
        assert_eq!(t.check(500_000, k, 511).outcome, Outcome::Under);
        assert_eq!(t.check(500_000, k, 0).outcome, Outcome::Over);
    }

    #[test]
    fn config_ranges() {
        let mut c = Config::new("t", Rate::parse("2/h").unwrap());
        assert!(c.validate().is_ok());
        c.burst = 0;
        assert!(c.validate().is_err());
        c.burst = 10_001;
        assert!(c.validate().is_err());
        c.burst = 5;
        c.srcmask = Some(129);
        assert!(c.validate().is_err());
        c.srcmask = None;
        c.max = 0;
        assert!(c.validate().is_err());
        c.max = 5;
        c.expire_ms = 0;
        assert!(c.validate().is_err());
        let mut b = Config::new("t", Rate::parse("1kb/s").unwrap());
        b.burst = 100;
        assert!(b.validate().is_err());
    }
}
