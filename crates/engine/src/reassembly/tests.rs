//! Unit tests: one per reassembly case named in the module documentation.

use super::*;

/// An owned copy of a delivered chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
enum C {
    D(u64, Vec<u8>),
    G(u64, u64),
    E(EndReason),
}

fn d(offset: u64, bytes: &[u8]) -> C {
    C::D(offset, bytes.to_vec())
}

/// A reassembler, its budget and everything it delivered so far.
struct H {
    r: StreamReassembler,
    b: ReassemblyBudget,
    got: Vec<C>,
}

impl H {
    fn new(isn: u32) -> Self {
        Self::with(StreamReassembler::new(isn, ReassemblyConfig::default()))
    }

    fn with(r: StreamReassembler) -> Self {
        Self {
            r,
            b: ReassemblyBudget::unlimited(),
            got: Vec::new(),
        }
    }

    fn seg(&mut self, seq: u32, flags: SegmentFlags, data: &[u8]) -> Outcome {
        let got = &mut self.got;
        self.r
            .insert(seq, flags, data, &mut self.b, |c| got.push(own(c)))
    }

    fn data(&mut self, seq: u32, data: &[u8]) -> Outcome {
        self.seg(seq, SegmentFlags::NONE, data)
    }

    fn force_gap(&mut self) -> Outcome {
        let got = &mut self.got;
        self.r.force_gap(&mut self.b, |c| got.push(own(c)))
    }

    fn close(&mut self) -> Outcome {
        let got = &mut self.got;
        self.r.close(&mut self.b, |c| got.push(own(c)))
    }

    fn take(&mut self) -> Vec<C> {
        std::mem::take(&mut self.got)
    }
}

fn own(c: StreamChunk<'_>) -> C {
    match c {
        StreamChunk::Data { offset, bytes } => C::D(offset, bytes.to_vec()),
        StreamChunk::Gap { offset, len } => C::G(offset, len),
        StreamChunk::End(r) => C::E(r),
    }
}

fn events(o: &Outcome) -> Vec<ReassemblyEvent> {
    o.events.iter().collect()
}

#[test]
fn in_order_segment_is_delivered_from_the_callers_slice() {
    let mut r = StreamReassembler::new(100, ReassemblyConfig::default());
    let mut b = ReassemblyBudget::unlimited();
    let payload = b"GET / HTTP/1.1\r\n".to_vec();
    let mut seen = Vec::new();
    let o = r.insert(101, SegmentFlags::NONE, &payload, &mut b, |c| {
        if let StreamChunk::Data { offset, bytes } = c {
            // Same address: the fast path hands out the payload itself, no copy.
            seen.push((offset, bytes.as_ptr(), bytes.len()));
        }
    });
    assert_eq!(seen, vec![(0, payload.as_ptr(), payload.len())]);
    assert_eq!(o.delivered_bytes, 16);
    assert_eq!(o.buffered_bytes, 0);
    assert!(o.events.is_empty());
    assert_eq!(r.buffered_memory(), 0);
    assert_eq!(r.next_seq(), 117);
}

#[test]
fn out_of_order_segments_wait_for_the_hole_then_flow_in_order() {
    let mut h = H::new(0);
    let o = h.data(6, b"world");
    assert_eq!(o.buffered_bytes, 5);
    assert!(h.take().is_empty());
    assert_eq!(h.r.buffered_memory(), 5 + SEGMENT_OVERHEAD);
    assert_eq!(h.b.used(), 5 + SEGMENT_OVERHEAD);
    h.data(11, b"!");
    // Adjacent to the buffered run: extends it instead of adding a run.
    assert_eq!(h.r.buffered_runs(), 1);
    let o = h.data(1, b"hello");
    assert_eq!(o.delivered_bytes, 11);
    assert_eq!(h.take(), vec![d(0, b"hello"), d(5, b"world!")]);
    assert_eq!(h.r.buffered_memory(), 0);
    assert_eq!(h.b.used(), 0);
}

#[test]
fn exact_duplicate_of_delivered_data_is_a_retransmission() {
    let mut h = H::new(0);
    h.data(1, b"abcd");
    h.take();
    let o = h.data(1, b"abcd");
    assert!(h.take().is_empty());
    assert_eq!(o.retransmitted_bytes, 4);
    assert_eq!(events(&o), vec![ReassemblyEvent::Retransmission]);
    assert_eq!(h.r.stats().pkt_retransmission, 1);
}

#[test]
fn exact_duplicate_of_buffered_data_is_an_overlap_with_same_data() {
    let mut h = H::new(0);
    h.data(5, b"efgh");
    let o = h.data(5, b"efgh");
    assert_eq!(o.duplicate_bytes, 4);
    assert_eq!(o.buffered_bytes, 0);
    assert_eq!(events(&o), vec![ReassemblyEvent::Overlap]);
    assert_eq!(h.r.buffered_bytes(), 4);
    h.data(1, b"abcd");
    assert_eq!(h.take(), vec![d(0, b"abcd"), d(4, b"efgh")]);
    assert_eq!(h.r.stats().overlap, 1);
    assert_eq!(h.r.stats().overlap_diff_data, 0);
}

#[test]
fn partial_overlap_with_same_data_adds_only_the_new_bytes() {
    let mut h = H::new(0);
    h.data(5, b"efgh"); // offsets 4..8
    h.data(11, b"klm"); // offsets 10..13
    let o = h.data(7, b"ghijklmno"); // offsets 6..15
    assert_eq!(o.duplicate_bytes, 2 + 3);
    assert_eq!(o.buffered_bytes, 2 + 2);
    assert_eq!(o.conflicting_bytes, 0);
    h.data(1, b"abcd");
    let all: Vec<u8> = h
        .take()
        .into_iter()
        .flat_map(|c| match c {
            C::D(_, b) => b,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(all, b"abcdefghijklmno");
}

#[test]
fn conflicting_overlap_keeps_first_bytes_and_raises_event() {
    // Out-of-order first, then a conflicting out-of-order overlap.
    let mut h = H::new(0);
    h.data(5, b"GOOD");
    let o = h.data(3, b"xxEVIL"); // offsets 2..8, overlapping GOOD at 4..8
    assert!(o.events.contains(ReassemblyEvent::OverlapDifferentData));
    assert_eq!(o.conflicting_bytes, 4);
    assert_eq!(o.buffered_bytes, 2);
    h.data(1, b"ab");
    assert_eq!(h.take(), vec![d(0, b"ab"), d(2, b"xx"), d(4, b"GOOD")]);
    assert_eq!(h.r.stats().overlap_diff_data, 1);
    assert_eq!(
        ReassemblyEvent::OverlapDifferentData.name(),
        "reassembly_overlap_different_data"
    );
}

#[test]
fn in_order_segment_overlapping_buffered_data_defers_to_the_buffer() {
    let mut h = H::new(0);
    h.data(3, b"GO"); // offsets 2..4, arrived first
    let o = h.data(1, b"abEVxy"); // offsets 0..6 in order
    assert!(o.events.contains(ReassemblyEvent::OverlapDifferentData));
    assert_eq!(o.conflicting_bytes, 2);
    assert_eq!(h.take(), vec![d(0, b"ab"), d(2, b"GO"), d(4, b"xy")]);
    assert_eq!(h.b.used(), 0);
}

#[test]
fn retransmission_with_different_bytes_is_flagged_when_history_is_retained() {
    let evil_after_good = |retain: usize| {
        let cfg = ReassemblyConfig {
            retain_delivered: retain,
            ..ReassemblyConfig::default()
        };
        let mut h = H::with(StreamReassembler::new(1, cfg));
        h.data(2, b"GOOD");
        let o = h.data(2, b"EVIL");
        assert_eq!(h.take(), vec![d(0, b"GOOD")]);
        o
    };
    let o = evil_after_good(0);
    assert_eq!(events(&o), vec![ReassemblyEvent::Retransmission]);
    let o = evil_after_good(2);
    // Only the last two delivered bytes ("OD" vs "IL") are still known.
    assert!(o.events.contains(ReassemblyEvent::OverlapDifferentData));
    assert_eq!(o.conflicting_bytes, 2);
    let o = evil_after_good(64);
    assert_eq!(o.conflicting_bytes, 4);
    assert_eq!(o.retransmitted_bytes, 4);
}

#[test]
fn retained_history_is_bounded_and_forgotten_at_gaps() {
    let cfg = ReassemblyConfig {
        retain_delivered: 8,
        ..ReassemblyConfig::default()
    };
    let mut h = H::with(StreamReassembler::new(0, cfg));
    for i in 0..100u32 {
        h.data(1 + 3 * i, b"abc");
        assert!(h.r.history.len() <= 16);
    }
    // Same bytes: a plain retransmission.
    let o = h.data(1 + 3 * 99, b"abc");
    assert_eq!(events(&o), vec![ReassemblyEvent::Retransmission]);
    let o = h.data(1 + 3 * 99, b"xbc");
    assert_eq!(o.conflicting_bytes, 1);
    // After a gap the history restarts, so bytes before the gap are not compared.
    h.data(1000, b"z");
    h.force_gap();
    let o = h.data(1 + 3 * 99, b"xyz");
    assert_eq!(events(&o), vec![ReassemblyEvent::Retransmission]);
}

#[test]
fn segment_spanning_delivered_boundary_delivers_only_the_new_part() {
    let mut h = H::new(0);
    h.data(1, b"hello");
    h.take();
    let o = h.data(3, b"lloWOR");
    assert_eq!(o.retransmitted_bytes, 3);
    assert_eq!(o.delivered_bytes, 3);
    assert!(o.events.contains(ReassemblyEvent::Retransmission));
    assert_eq!(h.take(), vec![d(5, b"WOR")]);
}

#[test]
fn forced_gap_skips_the_hole_and_delivers_what_follows() {
    let mut h = H::new(0);
    h.data(1, b"ab");
    h.data(8, b"hi"); // offsets 7..9
    h.data(20, b"z"); // offset 19
    h.take();
    let o = h.force_gap();
    assert_eq!(h.take(), vec![C::G(2, 5), d(7, b"hi")]);
    assert_eq!((o.gaps, o.gap_bytes), (1, 5));
    assert!(o.events.contains(ReassemblyEvent::Gap));
    // The hole before offset 19 can still be filled.
    h.data(10, b"jklmnopqrs");
    assert_eq!(h.take(), vec![d(9, b"jklmnopqrs"), d(19, b"z")]);
    assert_eq!(h.r.stats().reassembly_gap, 1);
    // Nothing to skip: no gap.
    assert_eq!(h.force_gap(), Outcome::default());
    assert!(h.take().is_empty());
}

#[test]
fn ack_past_a_hole_turns_it_into_a_gap() {
    let mut h = H::new(0);
    h.data(1, b"ab"); // 0..2
    h.data(6, b"fg"); // 5..7
    h.data(12, b"lm"); // 11..13
    h.take();
    let ack = |h: &mut H, seq: u32| {
        let got = &mut h.got;
        h.r.acked(seq, &mut h.b, |c| got.push(own(c)))
    };
    // ACKs at or behind the delivery point, or absurdly far ahead, change nothing.
    assert_eq!(ack(&mut h, 3), Outcome::default());
    assert_eq!(ack(&mut h, 1), Outcome::default());
    assert_eq!(ack(&mut h, 3 + (3 << 29)), Outcome::default());
    assert!(h.take().is_empty());
    // ACK of offset 9 (seq 10): hole 2..5 given up, run 5..7 delivered, hole 7..9 too.
    let o = ack(&mut h, 10);
    assert_eq!(h.take(), vec![C::G(2, 3), d(5, b"fg"), C::G(7, 2)]);
    assert_eq!(o.gaps, 2);
    // The hole 9..11 may still be filled.
    h.data(10, b"jk");
    assert_eq!(h.take(), vec![d(9, b"jk"), d(11, b"lm")]);
    // ACK of a FIN at offset 20 (seq 22 = FIN + 1): gap up to the FIN, then End.
    h.seg(21, SegmentFlags::FIN, b"");
    ack(&mut h, 22);
    assert_eq!(h.take(), vec![C::G(13, 7), C::E(EndReason::Fin)]);
    assert_eq!(h.b.used(), 0);
}

#[test]
fn per_direction_cap_turns_holes_into_gaps_without_losing_received_bytes() {
    let cfg = ReassemblyConfig {
        max_buffered_bytes: 2 * (4 + SEGMENT_OVERHEAD),
        ..ReassemblyConfig::default()
    };
    let mut h = H::with(StreamReassembler::new(0, cfg));
    h.data(11, b"1111"); // offsets 10..14
    h.data(21, b"2222"); // offsets 20..24
    assert!(h.take().is_empty());
    let o = h.data(31, b"3333"); // would need a third run: cap
    assert!(o.events.contains(ReassemblyEvent::BufferCapReached));
    assert_eq!(
        h.take(),
        vec![
            C::G(0, 10),
            d(10, b"1111"),
            C::G(14, 6),
            d(20, b"2222"),
            C::G(24, 6),
            d(30, b"3333"),
        ]
    );
    assert_eq!(o.gaps, 3);
    assert_eq!(h.r.buffered_memory(), 0);
    assert_eq!(h.b.used(), 0);
    assert_eq!(h.r.stats().memcap, 1);
}

#[test]
fn cap_of_zero_means_no_buffering() {
    let cfg = ReassemblyConfig {
        max_buffered_bytes: 0,
        ..ReassemblyConfig::default()
    };
    let mut h = H::with(StreamReassembler::new(0, cfg));
    h.data(4, b"d");
    assert_eq!(h.take(), vec![C::G(0, 3), d(3, b"d")]);
    // The late bytes are now retransmissions of a gap: dropped, counted.
    let o = h.data(1, b"abc");
    assert_eq!(o.retransmitted_bytes, 3);
}

#[test]
fn global_budget_caps_the_total_across_reassemblers() {
    let mut budget = ReassemblyBudget::new(2 * (100 + SEGMENT_OVERHEAD));
    let mut a = StreamReassembler::new(0, ReassemblyConfig::default());
    let mut b = StreamReassembler::new(5000, ReassemblyConfig::default());
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    a.insert(11, SegmentFlags::NONE, &[1; 100], &mut budget, |c| {
        got_a.push(own(c))
    });
    a.insert(211, SegmentFlags::NONE, &[2; 100], &mut budget, |c| {
        got_a.push(own(c))
    });
    assert_eq!(budget.used(), budget.limit());
    assert!(got_a.is_empty());
    // b has nothing buffered but the budget is exhausted: its hole becomes a gap.
    let o = b.insert(5011, SegmentFlags::NONE, &[3; 10], &mut budget, |c| {
        got_b.push(own(c))
    });
    assert!(o.events.contains(ReassemblyEvent::BufferCapReached));
    assert_eq!(got_b, vec![C::G(0, 10), C::D(10, vec![3; 10])]);
    // a still holds its share until it releases it.
    assert_eq!(budget.used(), 2 * (100 + SEGMENT_OVERHEAD));
    a.close(&mut budget, |c| got_a.push(own(c)));
    assert_eq!(budget.used(), 0);
    assert_eq!(
        got_a,
        vec![
            C::G(0, 10),
            C::D(10, vec![1; 100]),
            C::G(110, 100),
            C::D(210, vec![2; 100]),
            C::E(EndReason::Closed),
        ]
    );
    b.discard(&mut budget);
    assert_eq!(budget.used(), 0);
}

#[test]
fn sequence_numbers_wrap_around_2_pow_32() {
    let isn = u32::MAX - 3;
    let base = isn.wrapping_add(1); // u32::MAX - 2 is offset 0
    let mut h = H::new(isn);
    let seq = |off: u32| base.wrapping_add(off);
    assert_eq!(seq(5), 2); // after the wrap
    h.data(seq(5), b"fghij");
    h.data(seq(2), b"cde"); // seq u32::MAX: the last byte before the wrap is 'c'
    assert!(h.take().is_empty());
    h.data(seq(0), b"ab");
    assert_eq!(h.take(), vec![d(0, b"ab"), d(2, b"cde"), d(5, b"fghij")]);
    assert_eq!(h.r.next_seq(), 7);
    // A retransmission from before the wrap is still recognised as old.
    let o = h.data(seq(0), b"ab");
    assert_eq!(o.retransmitted_bytes, 2);
    assert!(h.take().is_empty());
}

#[test]
fn offsets_keep_counting_past_4_gib_of_stream() {
    let mut r = StreamReassembler::new(7, ReassemblyConfig::default());
    let mut b = ReassemblyBudget::unlimited();
    let block = vec![0u8; 1 << 20];
    let mut seq = 8u32;
    let blocks = 4097u64; // just over 4 GiB
    for _ in 0..blocks {
        r.insert(seq, SegmentFlags::NONE, &block, &mut b, |_| {});
        seq = seq.wrapping_add(1 << 20);
    }
    assert_eq!(r.delivered_offset(), blocks << 20);
    // Out of order across the 2^32 sequence and offset multiples.
    let mut got = Vec::new();
    r.insert(
        seq.wrapping_add(3),
        SegmentFlags::NONE,
        b"de",
        &mut b,
        |c| got.push(own(c)),
    );
    r.insert(seq, SegmentFlags::NONE, b"abc", &mut b, |c| {
        got.push(own(c))
    });
    let base = blocks << 20;
    assert_eq!(got, vec![d(base, b"abc"), d(base + 3, b"de")]);
}

#[test]
fn data_on_syn_is_delivered_and_syn_consumes_one_sequence_number() {
    let mut h = H::new(1000);
    let o = h.seg(1000, SegmentFlags::SYN, b"fastopen");
    assert_eq!(o.delivered_bytes, 8);
    h.data(1009, b"-more");
    assert_eq!(h.take(), vec![d(0, b"fastopen"), d(8, b"-more")]);
    // A retransmitted SYN with its data is a retransmission, not new data.
    let o = h.seg(1000, SegmentFlags::SYN, b"fastopen");
    assert_eq!(o.retransmitted_bytes, 8);
    assert!(h.take().is_empty());
}

#[test]
fn fin_ends_the_stream_only_once_the_data_before_it_arrived() {
    let mut h = H::new(0);
    h.data(1, b"ab");
    // FIN with its own data, out of order: offsets 4..6, FIN at 6.
    let o = h.seg(5, SegmentFlags::FIN, b"ef");
    assert_eq!(o.buffered_bytes, 2);
    assert_eq!(h.r.fin_offset(), Some(6));
    assert_eq!(h.take(), vec![d(0, b"ab")]);
    assert_eq!(h.r.end_reason(), None);
    h.data(3, b"cd");
    assert_eq!(
        h.take(),
        vec![d(2, b"cd"), d(4, b"ef"), C::E(EndReason::Fin)]
    );
    assert_eq!(h.r.end_reason(), Some(EndReason::Fin));
    // Data after the FIN is dropped with an event; a retransmitted FIN is harmless.
    let o = h.data(7, b"late");
    assert_eq!(o.dropped_bytes, 4);
    assert!(o.events.contains(ReassemblyEvent::DataAfterFin));
    let o = h.seg(5, SegmentFlags::FIN, b"ef");
    assert_eq!(o.retransmitted_bytes, 2);
    assert!(h.take().is_empty());
}

#[test]
fn fin_drops_buffered_bytes_beyond_it_and_close_gaps_up_to_it() {
    let mut h = H::new(0);
    h.data(11, b"0123456789"); // offsets 10..20, arrived before the FIN
    let o = h.seg(15, SegmentFlags::FIN, b""); // FIN at offset 14
    assert_eq!(o.dropped_bytes, 6);
    assert!(o.events.contains(ReassemblyEvent::DataAfterFin));
    assert_eq!(h.r.buffered_bytes(), 4);
    assert_eq!(h.r.buffered_memory(), 4 + SEGMENT_OVERHEAD);
    assert_eq!(h.b.used(), 4 + SEGMENT_OVERHEAD);
    let o = h.close();
    assert_eq!(
        h.take(),
        vec![C::G(0, 10), d(10, b"0123"), C::E(EndReason::Fin)]
    );
    assert_eq!(o.gap_bytes, 10);
    assert_eq!(h.b.used(), 0);
}

#[test]
fn zero_length_fin_in_order_ends_immediately() {
    let mut h = H::new(0);
    h.data(1, b"xyz");
    h.seg(4, SegmentFlags::FIN, b"");
    assert_eq!(h.take(), vec![d(0, b"xyz"), C::E(EndReason::Fin)]);
    // Closing after the end does nothing.
    assert_eq!(h.close(), Outcome::default());
    assert!(h.take().is_empty());
}

#[test]
fn forced_gap_with_only_a_fin_pending_ends_the_stream() {
    let mut h = H::new(0);
    h.data(1, b"ab");
    h.seg(9, SegmentFlags::FIN, b"");
    h.take();
    h.force_gap();
    assert_eq!(h.take(), vec![C::G(2, 6), C::E(EndReason::Fin)]);
}

#[test]
fn rst_flushes_buffered_data_with_gaps_and_ends_the_stream() {
    let mut h = H::new(0);
    h.data(1, b"ab");
    h.data(6, b"fg"); // offsets 5..7
    h.take();
    let o = h.seg(8, SegmentFlags::RST, b"diagnostic");
    assert_eq!(
        h.take(),
        vec![C::G(2, 3), d(5, b"fg"), C::E(EndReason::Rst)]
    );
    assert_eq!(o.dropped_bytes, 10);
    assert!(o.events.contains(ReassemblyEvent::RstWithData));
    assert_eq!(h.b.used(), 0);
    // New data after the RST is dropped; old data is a retransmission.
    let o = h.data(8, b"new");
    assert_eq!(o.dropped_bytes, 3);
    assert!(o.events.contains(ReassemblyEvent::DataAfterClose));
    let o = h.data(1, b"ab");
    assert_eq!(o.retransmitted_bytes, 2);
    assert!(h.take().is_empty());
    // A second RST does not end the stream twice.
    h.seg(8, SegmentFlags::RST, b"");
    assert!(h.take().is_empty());
}

#[test]
fn midstream_pickup_starts_at_the_first_seen_segment() {
    let mut r = StreamReassembler::midstream(50_000, ReassemblyConfig::default());
    let mut b = ReassemblyBudget::unlimited();
    let mut got = Vec::new();
    r.insert(50_000, SegmentFlags::NONE, b"mid", &mut b, |c| {
        got.push(own(c))
    });
    // Bytes before the pickup point are before the stream start.
    let o = r.insert(49_998, SegmentFlags::NONE, b"..mid!", &mut b, |c| {
        got.push(own(c))
    });
    assert_eq!(got, vec![d(0, b"mid"), d(3, b"!")]);
    assert!(o.events.contains(ReassemblyEvent::Retransmission));
    let o = r.insert(49_990, SegmentFlags::NONE, b"old", &mut b, |c| {
        got.push(own(c))
    });
    assert!(o.events.contains(ReassemblyEvent::SegmentBeforeBase));
    assert_eq!(o.dropped_bytes, 3);
    // Both segments reached before the pickup point.
    assert_eq!(r.stats().segment_before_base_seq, 2);
}

#[test]
fn zero_length_segments_do_nothing() {
    let mut h = H::new(0);
    h.data(1, b"a");
    h.take();
    for seq in [0, 1, 2, 3, 1 << 31, u32::MAX] {
        let o = h.data(seq, b"");
        assert!(o.events.is_empty(), "seq {seq}: {o:?}");
        assert_eq!(o, Outcome::default());
    }
    assert!(h.take().is_empty());
    assert_eq!(h.r.delivered_offset(), 1);
}

#[test]
fn very_large_sequence_jumps_are_rejected_or_buffered_never_misread() {
    let mut h = H::new(0);
    h.data(1, b"a");
    h.take();
    // 1.5 GiB ahead: beyond the 1 GiB window.
    let o = h.data(1 + (3 << 29), b"far");
    assert_eq!(events(&o), vec![ReassemblyEvent::SegmentBeyondWindow]);
    assert_eq!(o.dropped_bytes, 3);
    // 3 GiB "ahead" is 1 GiB behind modulo 2^32: before the stream start.
    let o = h.data(1u32.wrapping_add(3 << 30), b"behind");
    assert!(o.events.contains(ReassemblyEvent::SegmentBeforeBase));
    // 512 MiB ahead: inside the window, buffered; closing reports the hole as one gap.
    let o = h.data(2 + (1 << 29), b"ok");
    assert_eq!(o.buffered_bytes, 2);
    h.close();
    assert_eq!(
        h.take(),
        vec![
            C::G(1, 1 << 29),
            d(1 + (1 << 29), b"ok"),
            C::E(EndReason::Closed)
        ]
    );
    assert_eq!(h.r.stats().segment_beyond_window, 1);
}

#[test]
fn window_is_clamped_below_2_gib() {
    let cfg = ReassemblyConfig {
        max_window: u32::MAX,
        ..ReassemblyConfig::default()
    };
    let r = StreamReassembler::new(0, cfg);
    assert_eq!(r.config().max_window, MAX_WINDOW_LIMIT);
}

#[test]
fn close_delivers_remaining_runs_in_order_with_gaps() {
    let mut h = H::new(0);
    h.data(31, b"c"); // reverse order: three runs
    h.data(21, b"b");
    h.data(11, b"a");
    assert_eq!(h.r.buffered_runs(), 3);
    let o = h.close();
    assert_eq!(
        h.take(),
        vec![
            C::G(0, 10),
            d(10, b"a"),
            C::G(11, 9),
            d(20, b"b"),
            C::G(21, 9),
            d(30, b"c"),
            C::E(EndReason::Closed)
        ]
    );
    assert_eq!(o.gaps, 3);
    let o = h.data(40, b"x");
    assert!(o.events.contains(ReassemblyEvent::DataAfterClose));
}

#[test]
fn stats_counters_use_suricata_names() {
    let mut h = H::new(0);
    h.data(5, b"GOOD");
    h.data(5, b"EVIL");
    h.data(1, b"abcd");
    h.data(1, b"abcd");
    h.data(20, b"x");
    h.close();
    let c = h.r.stats().counters();
    let get = |name: &str| c.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    assert_eq!(get("tcp.overlap"), Some(1));
    assert_eq!(get("tcp.overlap_diff_data"), Some(1));
    assert_eq!(get("stream.pkt_retransmission"), Some(1));
    assert_eq!(get("tcp.reassembly_gap"), Some(1));
    let mut total = ReassemblyStats::default();
    total.merge(h.r.stats());
    total.merge(h.r.stats());
    assert_eq!(total.overlap_diff_data, 2);
    assert_eq!(total.segments, 2 * h.r.stats().segments);
}

#[test]
fn collector_fills_gaps_at_the_right_offsets() {
    let mut c = StreamCollector::new(ReassemblyConfig::default());
    c.push(9, SegmentFlags::SYN, b"");
    c.push(10, SegmentFlags::NONE, b"ab");
    c.push(15, SegmentFlags::NONE, b"fg");
    let s = c.finish();
    assert_eq!(s.data, b"abfg");
    assert_eq!(s.gaps, vec![(2, 3)]);
    assert_eq!(s.end, Some(EndReason::Closed));
    assert_eq!(s.with_gaps_filled(b'?'), b"ab???fg");
}
