//! Packets the engine drops before any flow exists, inline, under floods:
//!
//! 1. Never-completing fragment streams (first fragments only, each from its own source)
//!    until the reassembler is full: every further fragment meets the `defrag_memcap`
//!    exception policy (drop-packet inline: there is no flow yet), counted
//!    (`defrag.memcap_exception_policy.drop_packet`), logged as `drop` records with reason
//!    `defrag memcap` within the budget of 100 per second of packet time, and peak memory
//!    stays bounded by `defrag.memcap` however much fragment data is offered.
//! 2. `defrag.memcap-policy=pass-packet` forwards them uninspected: counted, no drop.
//! 3. A flood of undecodable packets: each dropped and counted
//!    (`ips.drop_reason.decode_error`), drop records (`decode error`) bounded per second.
//!
//! One test per concern, in this file alone, so the peak-memory figure is this process's
//! (the cli crate: its test build shares the binary's dependencies).

use sekisho_engine::{LinkType, Timestamp, Verdict};
use sekisho_sensor::{Mode, Record, Sensor, Settings};

/// An Ethernet/IPv4/TCP frame from source `i` to 203.0.113.25:25 with `len` bytes of TCP
/// payload, IPv4 flags/fragment-offset field `frag` (0x2000: the first fragment of a
/// datagram that never completes) and a correct IPv4 header checksum.
fn frame(i: u32, len: usize, frag: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + 20 + len) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&(i as u16).to_be_bytes());
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[64, 6, 0, 0]);
    ip.extend_from_slice(&(0x0a00_0000u32 + i).to_be_bytes());
    ip.extend_from_slice(&[203, 0, 113, 25]);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    // TCP: 40000 -> 25, seq 1, ack 1, ACK, window 65535 (its checksum is never checked:
    // the datagram never completes).
    f.extend_from_slice(&[
        0x9c, 0x40, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff,
    ]);
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend(std::iter::repeat_n(b'x', len));
    f
}

/// The first fragment (MF set, offset 0) of a datagram from source `i`: it never completes.
fn first_fragment(i: u32, len: usize) -> Vec<u8> {
    frame(i, len, 0x2000)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What a run produced.
#[derive(Default)]
struct Out {
    dropped: u64,
    /// (pcap_cnt, src_ip, reason) of every drop record.
    drop_records: Vec<(u64, String, &'static str)>,
    counters: Vec<(&'static str, u64)>,
}

impl Out {
    fn counter(&self, k: &str) -> u64 {
        self.counters
            .iter()
            .find(|(n, _)| *n == k)
            .unwrap_or_else(|| panic!("no counter {k}"))
            .1
    }
}

/// Feeds `n` frames from `frame(i)`, 100 µs apart, to an inline sensor with `sets`.
fn run(sets: &[(&str, &str)], n: u32, frame: impl Fn(u32) -> Vec<u8>) -> Out {
    let mut settings = Settings::new(Mode::Inline);
    for (k, v) in sets {
        settings.set(k, v).expect("setting");
    }
    let mut sensor = Sensor::new(&settings, None);
    let mut out = Out::default();
    let t0 = 1_000_000_000_000u64;
    let drain = |sensor: &mut Sensor, out: &mut Out| {
        while let Some(r) = sensor.poll_record() {
            match r {
                Record::Drop(d) => {
                    out.drop_records
                        .push((d.head.pkt_num, d.head.src_ip.to_string(), d.reason))
                }
                Record::Stats { counters, .. } => out.counters = counters,
                _ => {}
            }
        }
    };
    for i in 0..n {
        let v = sensor.handle_packet(
            Timestamp(t0 + u64::from(i) * 100),
            LinkType::Ethernet,
            &frame(i),
        );
        if v == Verdict::Drop {
            out.dropped += 1;
        }
        drain(&mut sensor, &mut out);
    }
    sensor.finish(Timestamp(t0 + u64::from(n) * 100));
    drain(&mut sensor, &mut out);
    out
}

/// Seconds of packet time `n` frames 100 µs apart touch (the record budget is per second).
fn seconds(n: u32) -> u64 {
    u64::from(n) / 10_000 + 1
}

#[test]
fn a_full_reassembler_raises_defrag_memcap_and_memory_stays_bounded() {
    // 60,000 fragments of 1,000 bytes: 60 MB offered, 4 MiB may be held.
    const N: u32 = 60_000;
    let out = run(&[("defrag.memcap", "4mb")], N, |i| first_fragment(i, 1000));
    let held_max = (4u64 << 20) / 1020 + 1; // fragment payload = TCP header + 1,000 bytes
    let refused = out.counter("defrag.memcap_exception");
    assert!(refused >= u64::from(N) - held_max, "{refused}");
    assert_eq!(out.counter("defrag.max_trackers_reached"), 0);
    // The policy met every refused fragment: drop-packet (auto inline, no flow to drop).
    assert_eq!(
        out.counter("defrag.memcap_exception_policy.drop_packet"),
        refused
    );
    assert_eq!(out.counter("defrag.memcap_exception_policy.drop_flow"), 0);
    assert_eq!(
        out.dropped, refused,
        "each refused fragment dropped, no other"
    );
    // A drop record for the first refused fragment, then at most 100 per second.
    let first = u64::from(N) - refused + 1;
    assert_eq!(
        out.drop_records.first(),
        Some(&(first, Ipv4(first - 1).to_string(), "defrag memcap"))
    );
    assert!(out.drop_records.iter().all(|d| d.2 == "defrag memcap"));
    let max_records = 100 * seconds(N);
    assert!(
        out.drop_records.len() as u64 <= max_records && out.drop_records.len() >= 100,
        "{} records",
        out.drop_records.len()
    );
    // Bounded: 60 MB of fragment data offered, the memcap holds 4 MiB.
    let peak = peak_rss_kib();
    eprintln!(
        "defrag flood: {N} fragments, refused={refused}, drop records={}, peak_rss_kib={peak}",
        out.drop_records.len()
    );
    assert!(peak < 32 * 1024, "peak RSS {peak} KiB");
}

/// The dotted address of flood source `i`.
struct Ipv4(u64);

impl std::fmt::Display for Ipv4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = (0x0a00_0000u32 + self.0 as u32).to_be_bytes();
        write!(f, "{}.{}.{}.{}", b[0], b[1], b[2], b[3])
    }
}

#[test]
fn a_full_tracker_table_raises_defrag_memcap_too_and_pass_packet_forwards() {
    const N: u32 = 3_000;
    let out = run(
        &[
            ("defrag.trackers", "1000"),
            ("defrag.memcap-policy", "pass-packet"),
        ],
        N,
        |i| first_fragment(i, 100),
    );
    assert_eq!(out.counter("defrag.max_trackers_reached"), 2_000);
    assert_eq!(
        out.counter("defrag.memcap_exception_policy.pass_packet"),
        2_000
    );
    assert_eq!(out.counter("defrag.memcap_exception_policy.drop_packet"), 0);
    assert_eq!(out.dropped, 0);
    assert!(out.drop_records.is_empty());
    // pass-flow has no flow to pass: it is pass-packet.
    let out = run(
        &[
            ("defrag.trackers", "1000"),
            ("defrag.memcap-policy", "pass-flow"),
        ],
        N,
        |i| first_fragment(i, 100),
    );
    assert_eq!(
        out.counter("defrag.memcap_exception_policy.pass_packet"),
        2_000
    );
    assert_eq!(out.dropped, 0);
    // ignore: counted nowhere, forwarded.
    let out = run(
        &[
            ("defrag.trackers", "1000"),
            ("defrag.memcap-policy", "ignore"),
        ],
        N,
        |i| first_fragment(i, 100),
    );
    assert_eq!(out.counter("defrag.max_trackers_reached"), 2_000);
    assert_eq!(out.counter("defrag.memcap_exception_policy.drop_packet"), 0);
    assert_eq!(out.dropped, 0);
}

#[test]
fn a_flood_of_undecodable_packets_is_dropped_counted_and_logged_within_the_budget() {
    // IPv4 whose total length claims more than the frame holds (decoder.ipv4.trunc_pkt).
    const N: u32 = 25_000;
    let out = run(&[], N, |i| {
        let mut f = frame(i, 10, 0);
        f[14 + 2] = 0x05; // total length 1,300+ (the checksum no longer matters)
        f
    });
    assert_eq!(out.dropped, u64::from(N));
    assert_eq!(out.counter("ips.drop_reason.decode_error"), u64::from(N));
    assert_eq!(out.counter("decoder.invalid"), u64::from(N));
    // Packet time spans 2.5 s: seconds 0, 1 and 2 of the run each get 100 records.
    assert_eq!(out.drop_records.len() as u64, 100 * seconds(N));
    assert!(out.drop_records.iter().all(|d| d.2 == "decode error"));
    assert_eq!(
        out.drop_records[0],
        (1, "10.0.0.0".to_string(), "decode error")
    );
}
