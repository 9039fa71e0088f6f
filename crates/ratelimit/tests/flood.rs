//! A flood of 1,000,000 distinct source addresses against one table: the table never holds
//! more than `htable_max` entries, its memory stays within the stated bound, every refused
//! new key is counted, and keys already in the table keep their buckets.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use sekisho_ratelimit::{Config, Outcome, Rate, Table};

#[test]
fn million_sources_stay_within_htable_max() {
    let mut c = Config::new("flood", Rate::parse("2/hour").unwrap());
    c.burst = 2;
    c.fields.srcip = true;
    c.expire_ms = 3_600_000;
    c.max = 65_536;
    let mut t = Table::new(c);
    let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 25));
    // A legitimate sender known before the flood.
    let good = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let kg = t.key(good, 1, dst, 25);
    assert_eq!(t.check(0, kg, 60).outcome, Outcome::Under);
    let start = Instant::now();
    let n: u32 = 1_000_000;
    let (mut full, mut under) = (0u64, 0u64);
    for i in 0..n {
        // 1,000,000 distinct sources within one minute of packet time.
        let src = IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32 + i));
        let now = 1_000 + u64::from(i) * 60;
        match t.check(now, t.key(src, 1024, dst, 25), 60).outcome {
            Outcome::TableFull => full += 1,
            Outcome::Under => under += 1,
            Outcome::Over => panic!("a new source starts with a full bucket"),
        }
        assert!(t.len() <= 65_536);
    }
    let el = start.elapsed();
    let s = t.stats();
    assert_eq!(t.len(), 65_536);
    assert_eq!(under, 65_535);
    assert_eq!(full, u64::from(n) - 65_535);
    assert_eq!(s.table_full, full);
    assert_eq!(s.peak_entries, 65_536);
    assert!(
        t.memory_used() <= t.memory_bound(),
        "{} > {}",
        t.memory_used(),
        t.memory_bound()
    );
    // The stated bound for the default htable_max: under 11 MiB (131,072 slots of 81 bytes).
    assert!(t.memory_bound() <= 11 << 20, "{}", t.memory_bound());
    // The known sender still has its second token.
    assert_eq!(t.check(61_000_000, kg, 60).outcome, Outcome::Under);
    eprintln!(
        "flood: {n} sources, {} entries, {full} refused (table full), memory {} bytes (bound {}), {:.0} ns/lookup",
        t.len(),
        t.memory_used(),
        t.memory_bound(),
        el.as_nanos() as f64 / f64::from(n)
    );
}
