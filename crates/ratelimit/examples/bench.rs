//! Per-packet cost of a rate-limit table, printed as ns per lookup (best of 5 runs):
//!
//! 1. hit: 10,000,000 packets over 4,096 live keys (4-tuple keys, as `mode: [srcip, srcport,
//!    dstip, dstport]`), 1 µs apart: refill + take, the common path;
//! 2. seed: the rule (per source, 2/hour burst 2) with 1,024 sources, most packets
//!    over the limit;
//! 3. full: 1,000,000 new sources against a full 65,536-entry table (the flood path).
//!
//! `cargo run --release -p sekisho-ratelimit --example bench`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use sekisho_ratelimit::{Config, KeyFields, Rate, Table};

fn best(mut f: impl FnMut() -> (u64, f64)) -> (u64, f64) {
    (0..5)
        .map(|_| f())
        .fold((0, f64::MAX), |a, b| if b.1 < a.1 { b } else { a })
}

fn main() {
    let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 25));
    let (n, ns) = best(|| {
        let mut c = Config::new("hit", Rate::parse("10000/s").unwrap());
        c.burst = 10_000;
        c.fields = KeyFields::parse_list("srcip,srcport,dstip,dstport").unwrap();
        let mut t = Table::new(c);
        let n = 10_000_000u64;
        let start = Instant::now();
        for i in 0..n {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a01_0000u32 + (i % 4096) as u32));
            let k = t.key(src, 40_000 + (i % 7) as u16, dst, 443);
            black_box(t.check(1_000_000 + i, k, 1500));
        }
        (n, start.elapsed().as_nanos() as f64 / n as f64)
    });
    println!("hit:  {n} packets over 4096 keys: {ns:.1} ns/packet");
    let (n, ns) = best(|| {
        let mut c = Config::new("seed", Rate::parse("2/h").unwrap());
        c.burst = 2;
        c.fields.srcip = true;
        let mut t = Table::new(c);
        let n = 10_000_000u64;
        let start = Instant::now();
        for i in 0..n {
            let src = IpAddr::V4(Ipv4Addr::from(0xcb00_7100u32 + (i % 1024) as u32));
            let k = t.key(src, 1, dst, 25);
            black_box(t.check(1_000_000 + i * 10, k, 60));
        }
        (n, start.elapsed().as_nanos() as f64 / n as f64)
    });
    println!("seed: {n} packets from 1024 sources (2/hour burst 2): {ns:.1} ns/packet");
    let (n, ns) = best(|| {
        let mut c = Config::new("full", Rate::parse("2/h").unwrap());
        c.fields.srcip = true;
        let mut t = Table::new(c);
        let n = 1_000_000u64;
        let start = Instant::now();
        for i in 0..n {
            let src = IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32 + i as u32));
            let k = t.key(src, 1, dst, 25);
            black_box(t.check(1_000_000 + i, k, 60));
        }
        (n, start.elapsed().as_nanos() as f64 / n as f64)
    });
    println!("full: {n} new sources against htable_max 65536: {ns:.1} ns/packet");
}
