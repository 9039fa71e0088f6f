//! Property tests for TCP stream reassembly: a known byte stream is cut into segments that are
//! shuffled, duplicated, re-sent with overlaps, partly lost or made to conflict, and the
//! delivered bytes are checked against the original.

use proptest::prelude::*;
use sekisho_engine::reassembly::{
    EndReason, ReassemblyBudget, ReassemblyConfig, SegmentFlags, StreamChunk, StreamReassembler,
};

/// One segment to send: stream offsets `[from, to)` of the original stream, and flags.
#[derive(Debug, Clone)]
struct Seg {
    from: usize,
    to: usize,
    fin: bool,
}

/// What the sink saw, flattened.
#[derive(Debug, Default)]
struct Delivered {
    /// Byte at each stream position, `None` inside gaps.
    bytes: Vec<Option<u8>>,
    gaps: u64,
    end: Option<EndReason>,
    /// Chunk after End, or an offset that did not continue the previous chunk.
    misordered: bool,
}

impl Delivered {
    fn push(&mut self, c: StreamChunk<'_>) {
        if self.end.is_some() {
            self.misordered = true;
        }
        match c {
            StreamChunk::Data { offset, bytes } => {
                self.misordered |= offset != self.bytes.len() as u64;
                self.bytes.extend(bytes.iter().map(|&b| Some(b)));
            }
            StreamChunk::Gap { offset, len } => {
                self.misordered |= offset != self.bytes.len() as u64 || len == 0;
                self.gaps += 1;
                self.bytes.extend((0..len).map(|_| None));
            }
            StreamChunk::End(r) => self.end = Some(r),
        }
    }

    fn data(&self) -> Vec<u8> {
        self.bytes.iter().flatten().copied().collect()
    }
}

/// A tiny deterministic PRNG for shuffling (proptest shrinks the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Cuts `[0, len)` into consecutive segments at random points; the last carries FIN.
fn split(len: usize, rng: &mut Rng, max_seg: usize) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut at = 0;
    while at < len {
        let n = 1 + rng.below(max_seg.min(len - at));
        segs.push(Seg {
            from: at,
            to: at + n,
            fin: false,
        });
        at += n;
    }
    if let Some(last) = segs.last_mut() {
        last.fin = true;
    }
    segs
}

/// ISNs anywhere, with extra weight right before the 2^32 wrap.
fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 8192)..=u32::MAX]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..4096)
}

/// Sends the SYN, then `segs` (each a byte range of its source) in the given order, checking
/// the caps after every segment; `close` ends with [`StreamReassembler::close`].
fn run(
    isn: u32,
    segs: &[(Seg, &[u8])],
    config: ReassemblyConfig,
    budget: &mut ReassemblyBudget,
    close: bool,
) -> (Delivered, StreamReassembler, u64) {
    let mut conflicting = 0;
    let mut r = StreamReassembler::new(isn, config);
    let mut out = Delivered::default();
    r.insert(isn, SegmentFlags::SYN, b"", budget, |c| out.push(c));
    for (s, src) in segs {
        let seq = isn.wrapping_add(1).wrapping_add(s.from as u32);
        let flags = SegmentFlags {
            fin: s.fin,
            ..SegmentFlags::NONE
        };
        let o = r.insert(seq, flags, &src[s.from..s.to], budget, |c| out.push(c));
        conflicting += o.conflicting_bytes;
        assert!(r.buffered_memory() <= config.max_buffered_bytes);
        assert!(budget.used() <= budget.limit());
    }
    if close {
        r.close(budget, |c| out.push(c));
    }
    (out, r, conflicting)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Shuffled, duplicated and overlapping (identical) segments reassemble to the exact
    /// stream, with no gap, ending at the FIN, and no memory left charged.
    #[test]
    fn shuffled_duplicated_overlapping_segments_give_the_exact_stream(
        data in stream(),
        isn in isn(),
        seed in any::<u64>(),
        max_seg in 1usize..600,
        dups in 0usize..20,
        overlaps in 0usize..20,
    ) {
        let mut rng = Rng(seed | 1);
        let mut segs = split(data.len(), &mut rng, max_seg);
        for _ in 0..dups {
            let s = segs[rng.below(segs.len())].clone();
            segs.push(s);
        }
        for _ in 0..overlaps {
            // A re-send of an arbitrary range: crosses segment boundaries.
            let a = rng.below(data.len());
            let b = a + 1 + rng.below(data.len() - a);
            segs.push(Seg { from: a, to: b, fin: b == data.len() });
        }
        rng.shuffle(&mut segs);
        let segs: Vec<(Seg, &[u8])> = segs.into_iter().map(|s| (s, data.as_slice())).collect();
        let mut budget = ReassemblyBudget::unlimited();
        let (out, r, _) = run(isn, &segs, ReassemblyConfig::default(), &mut budget, false);
        prop_assert!(!out.misordered);
        prop_assert_eq!(out.gaps, 0);
        prop_assert_eq!(out.data(), data);
        prop_assert_eq!(out.end, Some(EndReason::Fin));
        prop_assert_eq!(r.stats().overlap_diff_data, 0);
        prop_assert_eq!(budget.used(), 0);
    }

    /// With segments lost and a close at the end, data plus gaps cover exactly the stream;
    /// every delivered byte is the original byte at its position; the gaps are exactly the
    /// positions no received segment covered.
    #[test]
    fn lost_segments_become_gaps_of_the_right_length_at_close(
        data in stream(),
        isn in isn(),
        seed in any::<u64>(),
        max_seg in 1usize..300,
        loss_per_mille in 0u64..700,
    ) {
        let mut rng = Rng(seed | 1);
        let all = split(data.len(), &mut rng, max_seg);
        let last = all.len() - 1;
        let mut kept: Vec<Seg> = all
            .into_iter()
            .enumerate()
            // The FIN segment is kept so the stream length is known.
            .filter(|(i, _)| *i == last || rng.next() % 1000 >= loss_per_mille)
            .map(|(_, s)| s)
            .collect();
        let mut covered = vec![false; data.len()];
        for s in &kept {
            covered[s.from..s.to].iter_mut().for_each(|c| *c = true);
        }
        rng.shuffle(&mut kept);
        let segs: Vec<(Seg, &[u8])> = kept.into_iter().map(|s| (s, data.as_slice())).collect();
        let mut budget = ReassemblyBudget::unlimited();
        let (out, _, _) = run(isn, &segs, ReassemblyConfig::default(), &mut budget, true);
        prop_assert!(!out.misordered);
        prop_assert_eq!(out.bytes.len(), data.len());
        for (i, b) in out.bytes.iter().enumerate() {
            match b {
                Some(b) => prop_assert!(covered[i] && *b == data[i], "byte {}", i),
                None => prop_assert!(!covered[i], "gap over received byte {}", i),
            }
        }
        prop_assert_eq!(out.end, Some(EndReason::Fin));
        prop_assert_eq!(budget.used(), 0);
    }

    /// With conflicting re-sends, the byte delivered at each position is the one from the
    /// first segment, in arrival order, that covered it.
    #[test]
    fn conflicting_overlaps_deliver_the_first_arrived_bytes(
        data in stream(),
        isn in isn(),
        seed in any::<u64>(),
        max_seg in 1usize..300,
        conflicts in 1usize..30,
        retain in prop_oneof![Just(0usize), Just(8192usize)],
    ) {
        let mut rng = Rng(seed | 1);
        // A second version of the stream: every byte differs.
        let evil: Vec<u8> = data.iter().map(|b| b ^ 0x5a).collect();
        let mut segs: Vec<(Seg, &[u8])> = split(data.len(), &mut rng, max_seg)
            .into_iter()
            .map(|s| (s, data.as_slice()))
            .collect();
        for _ in 0..conflicts {
            let a = rng.below(data.len());
            let b = a + 1 + rng.below((data.len() - a).min(max_seg));
            segs.push((Seg { from: a, to: b, fin: false }, evil.as_slice()));
        }
        rng.shuffle(&mut segs);
        // Model: first arrival wins at every position; every later byte that differs from it
        // is a conflict.
        let mut expect: Vec<Option<u8>> = vec![None; data.len()];
        let mut model_conflicts = 0u64;
        for (s, src) in &segs {
            for i in s.from..s.to {
                match expect[i] {
                    Some(first) => model_conflicts += u64::from(first != src[i]),
                    None => expect[i] = Some(src[i]),
                }
            }
        }
        let config = ReassemblyConfig { retain_delivered: retain, ..ReassemblyConfig::default() };
        let mut budget = ReassemblyBudget::unlimited();
        let (out, r, conflicting) = run(isn, &segs, config, &mut budget, true);
        prop_assert!(!out.misordered);
        prop_assert_eq!(out.gaps, 0);
        prop_assert_eq!(&out.bytes, &expect);
        if retain > data.len() {
            // Every first-arrived byte is buffered or retained: every conflict is seen once.
            prop_assert_eq!(conflicting, model_conflicts);
            prop_assert_eq!(r.stats().overlap_diff_data > 0, model_conflicts > 0);
        } else {
            // Conflicts with delivered, unretained bytes pass as retransmissions.
            prop_assert!(conflicting <= model_conflicts);
        }
    }

    /// Under a small per-direction cap and a small shared budget, the reassembler never holds
    /// more than allowed, never stalls (data plus gaps cover the whole stream at close) and
    /// never delivers a wrong byte.
    #[test]
    fn caps_are_never_exceeded_and_delivery_stays_correct(
        data in stream(),
        isn in isn(),
        seed in any::<u64>(),
        max_seg in 1usize..300,
        cap in 0usize..2048,
        global in 0usize..4096,
    ) {
        let mut rng = Rng(seed | 1);
        let mut segs = split(data.len(), &mut rng, max_seg);
        rng.shuffle(&mut segs);
        let segs: Vec<(Seg, &[u8])> = segs.into_iter().map(|s| (s, data.as_slice())).collect();
        let config = ReassemblyConfig { max_buffered_bytes: cap, ..ReassemblyConfig::default() };
        let mut budget = ReassemblyBudget::new(global);
        let (out, r, _) = run(isn, &segs, config, &mut budget, true);
        prop_assert!(!out.misordered);
        prop_assert_eq!(out.bytes.len(), data.len());
        for (i, b) in out.bytes.iter().enumerate() {
            if let Some(b) = b {
                prop_assert_eq!(*b, data[i], "byte {}", i);
            }
        }
        // Gaps appear only if something could not be buffered.
        if out.gaps > 0 {
            prop_assert!(r.stats().memcap > 0);
        }
        prop_assert_eq!(budget.used(), 0);
    }
}

/// One arbitrary call on a reassembler.
#[derive(Debug, Clone)]
enum Op {
    /// A segment at `isn + delta` (or at an absolute `seq` when `absolute`).
    Insert {
        delta: i64,
        absolute: Option<u32>,
        syn: bool,
        fin: bool,
        rst: bool,
        len: usize,
        fill: u8,
    },
    ForceGap,
    Acked(i64),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            -300i64..3000,
            prop::option::weighted(0.1, any::<u32>()),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.02),
            0usize..400,
            any::<u8>(),
        )
            .prop_map(|(delta, absolute, syn, fin, rst, len, fill)| Op::Insert {
                delta,
                absolute,
                syn,
                fin,
                rst,
                len,
                fill,
            }),
        1 => Just(Op::ForceGap),
        1 => (-100i64..3000).prop_map(Op::Acked),
        1 => Just(Op::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Any sequence of calls with arbitrary sequence numbers, flags and lengths: no panic (the
    /// internal debug assertions are on in tests), chunks are contiguous from offset 0, End
    /// comes at most once and last, the per-direction cap and the budget are never exceeded,
    /// and the budget charge always equals what the reassembler holds.
    #[test]
    fn arbitrary_calls_keep_every_invariant(
        isn in isn(),
        ops in prop::collection::vec(op(), 1..60),
        cap in prop_oneof![Just(usize::MAX), 0usize..3000],
        global in prop_oneof![Just(usize::MAX), 0usize..3000],
        retain in prop_oneof![Just(0usize), 1usize..64],
    ) {
        let config = ReassemblyConfig {
            max_buffered_bytes: cap,
            retain_delivered: retain,
            ..ReassemblyConfig::default()
        };
        let mut r = StreamReassembler::new(isn, config);
        let mut budget = ReassemblyBudget::new(global);
        // Offsets only: a gap may be up to a window (1 GiB) long.
        let mut next = 0u64;
        let mut misordered = false;
        let mut ends = 0;
        for op in ops {
            let mut sink = |c: StreamChunk<'_>| {
                misordered |= ends > 0;
                match c {
                    StreamChunk::Data { offset, bytes } => {
                        misordered |= offset != next || bytes.is_empty();
                        next += bytes.len() as u64;
                    }
                    StreamChunk::Gap { offset, len } => {
                        misordered |= offset != next || len == 0;
                        next += len;
                    }
                    StreamChunk::End(_) => ends += 1,
                }
            };
            match op {
                Op::Insert { delta, absolute, syn, fin, rst, len, fill } => {
                    let seq = absolute.unwrap_or_else(|| isn.wrapping_add(delta as u32));
                    let payload = vec![fill; len];
                    r.insert(seq, SegmentFlags { syn, fin, rst }, &payload, &mut budget, &mut sink);
                }
                Op::ForceGap => {
                    r.force_gap(&mut budget, &mut sink);
                }
                Op::Acked(delta) => {
                    r.acked(isn.wrapping_add(delta as u32), &mut budget, &mut sink);
                }
                Op::Close => {
                    r.close(&mut budget, &mut sink);
                }
            }
            prop_assert!(!misordered);
            prop_assert!(ends <= 1);
            prop_assert!(r.buffered_memory() <= cap);
            prop_assert_eq!(budget.used(), r.buffered_memory());
            prop_assert_eq!(next, r.delivered_offset());
            prop_assert_eq!(r.end_reason().is_some(), ends == 1);
        }
        r.close(&mut budget, |_| {});
        prop_assert_eq!(budget.used(), 0);
        prop_assert!(r.end_reason().is_some());
    }
}
