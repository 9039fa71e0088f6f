//! Micro benchmark of TCP reassembly throughput (ignored by default; run in release):
//!
//! ```text
//! cargo test --release -p sekisho-engine --test reassembly_bench -- --ignored --nocapture
//! ```
//!
//! Prints GB/s (10^9 bytes of stream per second, best of several runs) for in-order delivery
//! and for three out-of-order patterns. Each run checks that every byte was delivered in order.

use sekisho_engine::reassembly::{
    ReassemblyBudget, ReassemblyConfig, SegmentFlags, StreamChunk, StreamReassembler,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const STREAM_LEN: usize = 64 << 20;
const MSS: usize = 1448;
const RUNS: usize = 5;

/// Segment start offsets of a stream cut at MSS.
fn segments() -> Vec<usize> {
    (0..STREAM_LEN).step_by(MSS).collect()
}

/// Reorders `order` in windows of `w` segments with `f`.
fn windows(mut order: Vec<usize>, w: usize, f: impl Fn(&mut [usize])) -> Vec<usize> {
    order.chunks_mut(w).for_each(f);
    order
}

/// Feeds the segments in `order` once; returns the elapsed time.
fn feed(data: &[u8], order: &[usize], config: ReassemblyConfig) -> Duration {
    let isn = 0xfff0_0000u32; // wraps during the run
    let mut r = StreamReassembler::new(isn, config);
    let mut budget = ReassemblyBudget::unlimited();
    let mut next = 0u64;
    let t = Instant::now();
    for &off in order {
        let end = (off + MSS).min(data.len());
        let seq = isn.wrapping_add(1).wrapping_add(off as u32);
        r.insert(seq, SegmentFlags::NONE, &data[off..end], &mut budget, |c| {
            if let StreamChunk::Data { offset, bytes } = c {
                assert_eq!(offset, next);
                next += black_box(bytes).len() as u64;
            }
        });
    }
    let elapsed = t.elapsed();
    assert_eq!(next, data.len() as u64, "not everything was delivered");
    assert_eq!(budget.used(), 0);
    elapsed
}

fn report(name: &str, data: &[u8], order: &[usize]) {
    report_with(name, data, order, ReassemblyConfig::default());
}

fn report_with(name: &str, data: &[u8], order: &[usize], config: ReassemblyConfig) {
    let best = (0..RUNS)
        .map(|_| feed(data, order, config))
        .min()
        .unwrap_or_default();
    let gbps = data.len() as f64 / best.as_secs_f64() / 1e9;
    let mpps = order.len() as f64 / best.as_secs_f64() / 1e6;
    println!(
        "reassembly {name:<28} {gbps:7.2} GB/s  {mpps:7.2} Mseg/s  ({} MiB, MSS {MSS}, best of {RUNS})",
        data.len() >> 20
    );
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn reassembly_throughput() {
    // Deterministic, incompressible-ish content.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..STREAM_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let in_order = segments();
    report("in order", &data, &in_order);
    report_with(
        "in order, 64 KiB history",
        &data,
        &in_order,
        ReassemblyConfig {
            retain_delivered: 64 << 10,
            ..ReassemblyConfig::default()
        },
    );
    report(
        "pairs swapped",
        &data,
        &windows(in_order.clone(), 2, |w| w.reverse()),
    );
    report(
        "shuffled in windows of 32",
        &data,
        &windows(in_order.clone(), 32, |w| {
            // Fixed permutation: stride 7 over the window (7 is coprime with 32).
            if w.len() == 32 {
                let orig = w.to_vec();
                for (i, slot) in w.iter_mut().enumerate() {
                    *slot = orig[(i * 7) % 32];
                }
            }
        }),
    );
    report(
        "reversed in windows of 64",
        &data,
        &windows(in_order, 64, |w| w.reverse()),
    );
}
