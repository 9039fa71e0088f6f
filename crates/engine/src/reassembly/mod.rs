//! TCP stream reassembly for one direction of a connection (sans-I/O).
//!
//! A [`StreamReassembler`] turns TCP segments, fed in capture order, into the byte stream the
//! sender wrote, delivered in order to a caller-supplied sink as [`StreamChunk`]s. It owns no
//! sockets, timers or global state: the caller passes every segment, the shared memory budget
//! ([`ReassemblyBudget`]) and a closure that receives the chunks.
//!
//! # Algorithm
//!
//! Sequence numbers are mapped to 64-bit *stream offsets*: offset 0 is the first data byte (the
//! byte after the SYN, or the first byte seen on a midstream pickup). The reassembler tracks one
//! point, `delivered`: every byte before it has been handed to the sink (as data or as a gap).
//! A segment `[start, end)` is classified against that point:
//!
//! * entirely before it: a **retransmission** (counted, dropped);
//! * straddling it: the old prefix is counted as retransmitted, the rest is handled as in order;
//! * starting at it: **in order**. Its bytes go to the sink straight from the caller's payload
//!   slice, without a copy; then any buffered segments that became contiguous are delivered and
//!   freed. This is the fast path: an in-order segment with nothing buffered costs one call of
//!   the sink;
//! * after it: **out of order**. The bytes not already buffered are copied into a
//!   `BTreeMap<offset, Vec<u8>>` of non-overlapping runs (a run that ends where the new bytes
//!   start is extended instead of adding a new entry) and wait there until the hole before them
//!   is filled.
//!
//! The buffer therefore only ever holds data that is not yet deliverable; nothing in-order waits
//! for a poll, so memory is released as early as possible.
//!
//! # Overlap policy: the first segment's bytes win
//!
//! When a segment overlaps bytes already received, the bytes that arrived **first** are kept
//! and the new ones are compared with them: equal bytes count as duplicates
//! ([`ReassemblyEvent::Overlap`]), differing bytes raise
//! [`ReassemblyEvent::OverlapDifferentData`] (Suricata's `reassembly_overlap_different_data`)
//! and are discarded. This holds against buffered (not yet delivered) data. A later segment
//! covering bytes that were already delivered is a retransmission
//! ([`ReassemblyEvent::Retransmission`]); its content is compared with the delivered bytes
//! only as far as [`ReassemblyConfig::retain_delivered`] keeps them (off by default, so that
//! in-order data is never copied).
//!
//! # Gaps instead of stalls
//!
//! A hole that is never filled would block the stream forever. The reassembler gives up on a
//! hole, delivers [`StreamChunk::Gap`] with its length and continues with the data after it,
//! when:
//! * the receiver acknowledged data past the hole ([`StreamReassembler::acked`]): the sender
//!   will not retransmit what the receiver already has, so the bytes were lost by the capture,
//!   not the network;
//! * the caller asks for it with [`StreamReassembler::force_gap`] (e.g. a timeout);
//! * the connection ends: [`StreamReassembler::close`] (flow end or timeout) or a RST segment
//!   flush everything buffered, with gaps for the holes (and a trailing gap up to the FIN if
//!   the FIN's position is known), then deliver [`StreamChunk::End`];
//! * a cap is hit (next section).
//!
//! A FIN alone does not force gaps: in a reordered capture the FIN may arrive before data that
//! is still on its way, and a retransmission may still fill the hole. The stream ends
//! ([`EndReason::Fin`]) when delivery reaches the FIN's position.
//!
//! # Caps and the policy when one is hit
//!
//! Buffered memory is accounted as the payload bytes of each buffered run plus
//! [`SEGMENT_OVERHEAD`] per run (the map node and vector header; allocator slack is not
//! counted). Two caps apply to every out-of-order segment before anything is copied:
//! [`ReassemblyConfig::max_buffered_bytes`] for this direction, and the shared
//! [`ReassemblyBudget`] for all directions of all flows the caller owns. If storing the
//! segment would exceed either, the reassembler raises [`ReassemblyEvent::BufferCapReached`],
//! stops waiting for the data missing before the segment: it delivers what it buffered before
//! the segment with a [`StreamChunk::Gap`] for every hole, then delivers the segment itself
//! in order. No received byte is dropped and the buffered memory of this direction is released;
//! what is lost is the missing data, which is reported as gaps. Segments more than
//! [`ReassemblyConfig::max_window`] bytes ahead of the delivery point are rejected
//! ([`ReassemblyEvent::SegmentBeyondWindow`]) so a single bogus sequence number cannot make
//! the stream jump arbitrarily far. The optional delivered-byte history
//! ([`ReassemblyConfig::retain_delivered`]) is bounded per direction by its own setting.
//!
//! The budget is a plain counter the caller owns and passes in by `&mut`; a reassembler must
//! give its share back through [`StreamReassembler::close`] or
//! [`StreamReassembler::discard`] before it is dropped, or the budget stays charged.
//!
//! # Sequence wrap-around
//!
//! Sequence numbers are 32-bit and wrap; offsets are 64-bit and do not. A segment's offset is
//! found from the signed 32-bit distance (`seq - seq_of(delivered)` as `i32`) to the delivery
//! point, so streams longer than 4 GiB and ISNs near `u32::MAX` need no special case. The
//! distance is unambiguous within ±2 GiB, which is why the window is capped at 1 GiB by
//! default (and must stay below 2 GiB).
//!
//! # SYN, FIN, RST
//!
//! * SYN consumes one sequence number: data on a SYN (TCP Fast Open) starts at `seq + 1` and is
//!   delivered like any other data.
//! * FIN marks the end of the stream at `seq + payload length`. The first FIN wins; data beyond
//!   it (already buffered or arriving later) is dropped with [`ReassemblyEvent::DataAfterFin`].
//! * RST ends the stream at once: buffered data is flushed with gaps and
//!   [`StreamChunk::End`]`(`[`EndReason::Rst`]`)` follows. Data carried by a RST is at most
//!   diagnostic text (RFC 1122 §4.2.2.12), not stream data, and is never delivered
//!   ([`ReassemblyEvent::RstWithData`]). The reassembler does not judge
//!   whether a RST is acceptable (in window, matching ACKs): the flow tracker decides that
//!   before calling [`StreamReassembler::insert`].
//!
//! # Events and statistics
//!
//! Every call returns an [`Outcome`] (byte counts and an [`EventSet`]); [`ReassemblyStats`]
//! accumulates them under Suricata's counter names (`tcp.reassembly_gap`, `tcp.overlap`,
//! `tcp.overlap_diff_data`, `stream.pkt_retransmission`, ...). Event names follow Suricata's
//! `stream-event:` names where Suricata has one ([`ReassemblyEvent::name`]).
//!
//! # Example
//!
//! ```
//! use sekisho_engine::reassembly::{
//!     ReassemblyBudget, ReassemblyConfig, SegmentFlags, StreamChunk, StreamReassembler,
//! };
//!
//! let mut budget = ReassemblyBudget::new(64 << 20); // shared by every flow
//! let mut client = StreamReassembler::new(4_000_000_000, ReassemblyConfig::default());
//! let mut app = Vec::new(); // what the app-layer parser would see
//! let mut feed = |r: &mut StreamReassembler, b: &mut ReassemblyBudget, seq, flags, data: &[u8]| {
//!     r.insert(seq, flags, data, b, |c| match c {
//!         StreamChunk::Data { bytes, .. } => app.extend_from_slice(bytes),
//!         StreamChunk::Gap { len, .. } => app.extend(std::iter::repeat(b'?').take(len as usize)),
//!         StreamChunk::End(_) => {}
//!     })
//! };
//! feed(&mut client, &mut budget, 4_000_000_000, SegmentFlags::SYN, b"");
//! feed(&mut client, &mut budget, 4_000_000_005, SegmentFlags::FIN, b" x\r\n"); // early
//! assert_eq!(budget.used(), 4 + sekisho_engine::reassembly::SEGMENT_OVERHEAD);
//! feed(&mut client, &mut budget, 4_000_000_001, SegmentFlags::NONE, b"HELO");
//! assert_eq!(app, b"HELO x\r\n");
//! assert_eq!(budget.used(), 0);
//! ```

mod collect;
#[cfg(test)]
mod tests;

pub use collect::{CollectedStream, StreamCollector};

use std::collections::BTreeMap;

/// Bytes charged per buffered run on top of its payload, for the map node and vector header.
pub const SEGMENT_OVERHEAD: usize = 64;

/// Default for [`ReassemblyConfig::max_window`]: 1 GiB.
pub const DEFAULT_MAX_WINDOW: u32 = 1 << 30;

/// Largest accepted [`ReassemblyConfig::max_window`]: beyond 2^31 - 1 the signed sequence
/// distance becomes ambiguous.
pub const MAX_WINDOW_LIMIT: u32 = (1 << 31) - 1;

/// The TCP flags that matter to reassembly (a "TcpFlags-lite"); the flow tracker extracts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SegmentFlags {
    /// SYN: the segment's sequence number is the ISN; data starts one byte later.
    pub syn: bool,
    /// FIN: the stream ends after this segment's payload.
    pub fin: bool,
    /// RST: the connection is aborted; the payload is not stream data.
    pub rst: bool,
}

impl SegmentFlags {
    /// No flags: a plain data or ACK segment.
    pub const NONE: Self = Self {
        syn: false,
        fin: false,
        rst: false,
    };
    /// SYN only.
    pub const SYN: Self = Self {
        syn: true,
        fin: false,
        rst: false,
    };
    /// FIN only.
    pub const FIN: Self = Self {
        syn: false,
        fin: true,
        rst: false,
    };
    /// RST only.
    pub const RST: Self = Self {
        syn: false,
        fin: false,
        rst: true,
    };
}

/// Per-direction limits of a [`StreamReassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Cap on the accounted memory (payload + [`SEGMENT_OVERHEAD`] per run) this direction may
    /// hold for out-of-order data, in bytes. Reaching it turns the holes before the offending
    /// segment into gaps (see the module doc). `0` means never buffer: every hole becomes a gap
    /// as soon as later data arrives.
    pub max_buffered_bytes: usize,
    /// How far ahead of the delivery point, in bytes, a segment may start; segments further
    /// ahead are rejected with [`ReassemblyEvent::SegmentBeyondWindow`]. Clamped to
    /// [`MAX_WINDOW_LIMIT`].
    pub max_window: u32,
    /// How many of the most recently delivered bytes to keep, so that a retransmission
    /// carrying different bytes than were delivered raises
    /// [`ReassemblyEvent::OverlapDifferentData`] too. `0` (the default) keeps nothing and
    /// leaves the in-order path copy-free; otherwise delivered bytes are copied into a history
    /// of at most `2 * retain_delivered` bytes per direction (not charged to the budget).
    pub retain_delivered: usize,
}

impl Default for ReassemblyConfig {
    /// 8 MiB of out-of-order data per direction, 1 GiB window, no delivered-byte history.
    ///
    /// 8 MiB is above Linux's default maximum receive window (`tcp_rmem` max 6 MiB): after
    /// one lost segment a fast sender keeps sending up to a window's worth before the
    /// retransmission arrives, and the receiver buffers all of it, so must we. A smaller cap
    /// turned ordinary loss recovery into a gap and, inline, the drop-flow policy of
    /// `stream_reassembly_memcap`. The engine-wide budget (`stream.reassembly.memcap`) still
    /// bounds the total.
    fn default() -> Self {
        Self {
            max_buffered_bytes: 8 << 20,
            max_window: DEFAULT_MAX_WINDOW,
            retain_delivered: 0,
        }
    }
}

/// Memory budget shared by all reassemblers of an engine: caps the total buffered bytes.
///
/// The caller owns one and passes it by `&mut` to every call that may buffer or free data, so
/// the total across flows is capped without shared ownership. Charges use the same accounting
/// as [`ReassemblyConfig::max_buffered_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassemblyBudget {
    limit: usize,
    used: usize,
}

impl ReassemblyBudget {
    /// A budget of `limit` accounted bytes in total.
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }

    /// A budget that never runs out (tests, offline tools with their own limits).
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// The total limit in accounted bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A reassembler's holdings changed from `now` to `restored` accounted bytes outside
    /// its own calls (an inline packet's delivery undone: its copy from before came back).
    pub(crate) fn rebalance(&mut self, now: usize, restored: usize) {
        self.used = self.used.saturating_sub(now).saturating_add(restored);
    }

    /// Accounted bytes currently held by all reassemblers using this budget.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Accounted bytes still available.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }

    fn try_reserve(&mut self, n: usize) -> bool {
        if n <= self.available() {
            self.used += n;
            true
        } else {
            false
        }
    }

    fn release(&mut self, n: usize) {
        debug_assert!(n <= self.used, "budget released more than reserved");
        self.used = self.used.saturating_sub(n);
    }
}

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Delivery reached the FIN's position.
    Fin,
    /// A RST segment aborted the connection.
    Rst,
    /// The caller closed the stream ([`StreamReassembler::close`]): flow end, timeout.
    Closed,
}

/// A piece of the reassembled stream, handed to the sink in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamChunk<'a> {
    /// Stream bytes starting at stream offset `offset` (0 = first data byte).
    Data {
        /// Stream offset of `bytes[0]`.
        offset: u64,
        /// The bytes; borrowed from the caller's payload on the in-order path.
        bytes: &'a [u8],
    },
    /// `len` bytes starting at `offset` are missing and will never be delivered.
    Gap {
        /// Stream offset of the first missing byte.
        offset: u64,
        /// Number of missing bytes (at least 1).
        len: u64,
    },
    /// The stream is over; no chunk follows.
    End(EndReason),
}

/// Something noteworthy that happened while handling a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReassemblyEvent {
    /// The segment carried bytes that were already delivered.
    Retransmission = 0,
    /// The segment overlapped buffered bytes (with equal or different content).
    Overlap,
    /// The segment overlapped buffered bytes with different content; the first bytes were kept.
    OverlapDifferentData,
    /// The segment carried bytes before the start of the stream (before ISN + 1).
    SegmentBeforeBase,
    /// Missing data was given up on and reported as a [`StreamChunk::Gap`].
    Gap,
    /// The segment started more than [`ReassemblyConfig::max_window`] ahead and was dropped.
    SegmentBeyondWindow,
    /// Buffering the segment would have exceeded the per-direction cap or the global budget.
    BufferCapReached,
    /// The segment carried bytes after the FIN; they were dropped.
    DataAfterFin,
    /// The segment arrived after a RST or close and carried new bytes; they were dropped.
    DataAfterClose,
    /// A RST segment carried a payload (diagnostic text, not delivered).
    RstWithData,
}

impl ReassemblyEvent {
    /// Every event, in declaration order.
    pub const ALL: [ReassemblyEvent; 10] = [
        Self::Retransmission,
        Self::Overlap,
        Self::OverlapDifferentData,
        Self::SegmentBeforeBase,
        Self::Gap,
        Self::SegmentBeyondWindow,
        Self::BufferCapReached,
        Self::DataAfterFin,
        Self::DataAfterClose,
        Self::RstWithData,
    ];

    /// Event name as used by `stream-event:` rules and `stream.<name>` counters.
    ///
    /// Suricata's names where Suricata has the event (`pkt_retransmission`,
    /// `reassembly_overlap_different_data`, `reassembly_segment_before_base_seq`,
    /// `reassembly_seq_gap`); sekisho's own `reassembly_*` names otherwise
    /// ([`ReassemblyEvent::is_suricata`] tells which).
    pub fn name(self) -> &'static str {
        match self {
            Self::Retransmission => "pkt_retransmission",
            Self::Overlap => "reassembly_overlap",
            Self::OverlapDifferentData => "reassembly_overlap_different_data",
            Self::SegmentBeforeBase => "reassembly_segment_before_base_seq",
            Self::Gap => "reassembly_seq_gap",
            Self::SegmentBeyondWindow => "reassembly_segment_beyond_window",
            Self::BufferCapReached => "reassembly_memcap",
            Self::DataAfterFin => "reassembly_data_after_fin",
            Self::DataAfterClose => "reassembly_data_after_close",
            Self::RstWithData => "reassembly_rst_with_data",
        }
    }

    /// Whether [`ReassemblyEvent::name`] is a Suricata `stream-event` name.
    pub fn is_suricata(self) -> bool {
        matches!(
            self,
            Self::Retransmission | Self::OverlapDifferentData | Self::SegmentBeforeBase | Self::Gap
        )
    }
}

/// A set of [`ReassemblyEvent`]s (a bitset; no allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EventSet(u16);

impl EventSet {
    /// Adds `event`.
    pub fn insert(&mut self, event: ReassemblyEvent) {
        self.0 |= 1 << event as u8;
    }

    /// Whether `event` is in the set.
    pub fn contains(self, event: ReassemblyEvent) -> bool {
        self.0 & (1 << event as u8) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The events in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = ReassemblyEvent> {
        ReassemblyEvent::ALL
            .into_iter()
            .filter(move |e| self.contains(*e))
    }
}

/// What one call did: byte counts (all in stream bytes) and events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes handed to the sink as [`StreamChunk::Data`] during this call.
    pub delivered_bytes: u64,
    /// New out-of-order bytes copied into the buffer.
    pub buffered_bytes: u64,
    /// Bytes of the segment that were already delivered (retransmissions).
    pub retransmitted_bytes: u64,
    /// Bytes of the segment equal to buffered bytes at the same offsets.
    pub duplicate_bytes: u64,
    /// Bytes of the segment that differed from buffered bytes at the same offsets (discarded).
    pub conflicting_bytes: u64,
    /// Bytes dropped for other reasons: beyond the window, after FIN/close, before the stream
    /// start, RST payload.
    pub dropped_bytes: u64,
    /// Number of [`StreamChunk::Gap`]s emitted.
    pub gaps: u64,
    /// Total length of the emitted gaps.
    pub gap_bytes: u64,
    /// Events raised.
    pub events: EventSet,
}

/// Cumulative counters of one or more reassemblers, named after Suricata's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Calls that handled a segment.
    pub segments: u64,
    /// Bytes delivered as data.
    pub delivered_bytes: u64,
    /// `tcp.reassembly_gap`: gaps emitted.
    pub reassembly_gap: u64,
    /// Bytes reported as gaps.
    pub gap_bytes: u64,
    /// `tcp.overlap`: segments that overlapped buffered data.
    pub overlap: u64,
    /// `tcp.overlap_diff_data`: segments that overlapped buffered data with different bytes.
    pub overlap_diff_data: u64,
    /// `stream.pkt_retransmission`: segments carrying already-delivered bytes.
    pub pkt_retransmission: u64,
    /// `stream.reassembly_segment_before_base_seq`: segments with bytes before the stream start.
    pub segment_before_base_seq: u64,
    /// `tcp.reassembly_segment_beyond_window` (sekisho): segments rejected as too far ahead.
    pub segment_beyond_window: u64,
    /// `tcp.reassembly_memcap` (sekisho): times a cap turned holes into gaps.
    pub memcap: u64,
    /// `tcp.reassembly_data_after_end` (sekisho): segments with bytes after FIN, RST or close.
    pub data_after_end: u64,
}

impl ReassemblyStats {
    /// Adds one call's outcome.
    pub fn record(&mut self, o: &Outcome) {
        use ReassemblyEvent as E;
        let ev = o.events;
        let n = |e: E| u64::from(ev.contains(e));
        self.delivered_bytes += o.delivered_bytes;
        self.reassembly_gap += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.overlap += n(E::Overlap);
        self.overlap_diff_data += n(E::OverlapDifferentData);
        self.pkt_retransmission += n(E::Retransmission);
        self.segment_before_base_seq += n(E::SegmentBeforeBase);
        self.segment_beyond_window += n(E::SegmentBeyondWindow);
        self.memcap += n(E::BufferCapReached);
        self.data_after_end +=
            u64::from(ev.contains(E::DataAfterFin) || ev.contains(E::DataAfterClose));
    }

    /// Adds another set of counters (e.g. to sum the directions of all flows).
    pub fn merge(&mut self, other: &Self) {
        self.segments += other.segments;
        self.delivered_bytes += other.delivered_bytes;
        self.reassembly_gap += other.reassembly_gap;
        self.gap_bytes += other.gap_bytes;
        self.overlap += other.overlap;
        self.overlap_diff_data += other.overlap_diff_data;
        self.pkt_retransmission += other.pkt_retransmission;
        self.segment_before_base_seq += other.segment_before_base_seq;
        self.segment_beyond_window += other.segment_beyond_window;
        self.memcap += other.memcap;
        self.data_after_end += other.data_after_end;
    }

    /// The counters as `(stats name, value)` pairs for the `stats` record.
    pub fn counters(&self) -> [(&'static str, u64); 9] {
        [
            ("tcp.reassembly_gap", self.reassembly_gap),
            ("tcp.overlap", self.overlap),
            ("tcp.overlap_diff_data", self.overlap_diff_data),
            ("stream.pkt_retransmission", self.pkt_retransmission),
            (
                "stream.reassembly_segment_before_base_seq",
                self.segment_before_base_seq,
            ),
            (
                "tcp.reassembly_segment_beyond_window",
                self.segment_beyond_window,
            ),
            ("tcp.reassembly_memcap", self.memcap),
            ("tcp.reassembly_data_after_end", self.data_after_end),
            ("tcp.reassembly_gap_bytes", self.gap_bytes),
        ]
    }
}

/// Reassembles one direction of a TCP connection; see the module documentation.
#[derive(Debug, Clone)]
pub struct StreamReassembler {
    config: ReassemblyConfig,
    /// Sequence number of stream offset 0.
    base_seq: u32,
    /// Every offset below this has been delivered as data or gap.
    delivered: u64,
    /// Out-of-order runs keyed by start offset: non-empty, non-overlapping, all after
    /// `delivered`.
    buf: BTreeMap<u64, Vec<u8>>,
    /// Accounted memory of `buf` (also charged to the caller's budget).
    mem: usize,
    /// Stream offset of the FIN, once known.
    fin: Option<u64>,
    /// Set once [`StreamChunk::End`] was delivered.
    end: Option<EndReason>,
    stats: ReassemblyStats,
    /// The last delivered bytes (ending at `delivered`), when `retain_delivered` > 0.
    history: Vec<u8>,
}

impl StreamReassembler {
    /// A reassembler for a connection whose SYN carried sequence number `isn`.
    ///
    /// The first data byte is `isn + 1`, since the SYN consumes one sequence number.
    pub fn new(isn: u32, config: ReassemblyConfig) -> Self {
        Self::with_base(isn.wrapping_add(1), config)
    }

    /// A reassembler picked up midstream: `first_seq` (the sequence number of the first segment
    /// seen) becomes stream offset 0; earlier bytes count as before the stream start.
    pub fn midstream(first_seq: u32, config: ReassemblyConfig) -> Self {
        Self::with_base(first_seq, config)
    }

    fn with_base(base_seq: u32, mut config: ReassemblyConfig) -> Self {
        config.max_window = config.max_window.min(MAX_WINDOW_LIMIT);
        Self {
            config,
            base_seq,
            delivered: 0,
            buf: BTreeMap::new(),
            mem: 0,
            fin: None,
            end: None,
            stats: ReassemblyStats::default(),
            history: Vec::new(),
        }
    }

    /// The configuration in force (with `max_window` clamped).
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Sequence number of stream offset 0.
    pub fn base_seq(&self) -> u32 {
        self.base_seq
    }

    /// Stream offset up to which everything was delivered (as data or gaps).
    pub fn delivered_offset(&self) -> u64 {
        self.delivered
    }

    /// Sequence number of the next byte to deliver (the receiver's `RCV.NXT` for data).
    pub fn next_seq(&self) -> u32 {
        self.seq_at(self.delivered)
    }

    /// Sequence number the sender uses next: [`Self::next_seq`], one further once its FIN
    /// was seen (a FIN takes a sequence number). Where a RST must land, and where new data
    /// would start.
    pub fn expected_seq(&self) -> u32 {
        self.next_seq()
            .wrapping_add(u32::from(self.fin_offset().is_some()))
    }

    /// Accounted bytes of buffered out-of-order data (payload + per-run overhead).
    pub fn buffered_memory(&self) -> usize {
        self.mem
    }

    /// Payload bytes currently buffered out of order.
    pub fn buffered_bytes(&self) -> u64 {
        self.buf.values().map(|v| v.len() as u64).sum()
    }

    /// Number of buffered runs.
    pub fn buffered_runs(&self) -> usize {
        self.buf.len()
    }

    /// Stream offset of the FIN, if one was seen.
    pub fn fin_offset(&self) -> Option<u64> {
        self.fin
    }

    /// Why the stream ended, once [`StreamChunk::End`] was delivered.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.end
    }

    /// Counters of everything this reassembler handled.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    fn seq_at(&self, offset: u64) -> u32 {
        // Truncation is the point: sequence numbers are offsets modulo 2^32.
        self.base_seq.wrapping_add(offset as u32)
    }

    /// Handles one segment of this direction and delivers whatever became in order to `sink`.
    ///
    /// `seq` is the segment's sequence number, `payload` its TCP payload. Chunks are delivered
    /// before the call returns, in stream order; the returned [`Outcome`] counts what happened.
    /// Never panics on any input.
    pub fn insert<F>(
        &mut self,
        seq: u32,
        flags: SegmentFlags,
        payload: &[u8],
        budget: &mut ReassemblyBudget,
        mut sink: F,
    ) -> Outcome
    where
        F: FnMut(StreamChunk<'_>),
    {
        let mut out = Outcome::default();
        self.insert_inner(seq, flags, payload, budget, &mut sink, &mut out);
        self.stats.segments += 1;
        self.stats.record(&out);
        out
    }

    fn insert_inner<F>(
        &mut self,
        seq: u32,
        flags: SegmentFlags,
        payload: &[u8],
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        let len = payload.len() as u64;
        if flags.rst {
            if len > 0 {
                out.dropped_bytes += len;
                out.events.insert(ReassemblyEvent::RstWithData);
            }
            if self.end.is_none() {
                self.finish(EndReason::Rst, budget, sink, out);
            }
            return;
        }
        if len == 0 && !flags.fin {
            // A pure ACK (or bare SYN) carries nothing for the stream, wherever it points.
            return;
        }
        let data_seq = if flags.syn { seq.wrapping_add(1) } else { seq };
        // Signed distance to the delivery point; unambiguous within ±2 GiB.
        let rel = i64::from(data_seq.wrapping_sub(self.next_seq()) as i32);
        if rel > i64::from(self.config.max_window) {
            out.dropped_bytes += len;
            out.events.insert(ReassemblyEvent::SegmentBeyondWindow);
            return;
        }
        let mut start = i128::from(self.delivered) + i128::from(rel);
        let end = start + i128::from(len);
        if flags.fin {
            self.note_fin(end, budget, out);
        }
        let mut data = payload;
        if let Some(limit) = self.limit() {
            let excess = (end - i128::from(limit)).clamp(0, i128::from(len));
            if excess > 0 {
                // `excess` <= len, so it fits in usize.
                let keep = data.len() - excess as usize;
                data = &data[..keep];
                out.dropped_bytes += excess as u64;
                out.events.insert(if self.fin.is_some() {
                    ReassemblyEvent::DataAfterFin
                } else {
                    ReassemblyEvent::DataAfterClose
                });
            }
        }
        if start < 0 && !data.is_empty() {
            let before = (-start).min(data.len() as i128);
            data = &data[before as usize..];
            start += before;
            out.dropped_bytes += before as u64;
            out.events.insert(ReassemblyEvent::SegmentBeforeBase);
        }
        if !data.is_empty() {
            // start >= 0 here: either it was, or the prefix before 0 was cut off.
            self.place(start as u64, data, budget, sink, out);
        }
        self.check_fin_reached(sink);
    }

    /// Gives up on the first hole: reports it as a gap and delivers the data after it.
    ///
    /// If nothing is buffered but the FIN's position is known, the hole up to the FIN becomes a
    /// gap and the stream ends. Does nothing when there is no hole to skip or the stream ended.
    pub fn force_gap<F>(&mut self, budget: &mut ReassemblyBudget, mut sink: F) -> Outcome
    where
        F: FnMut(StreamChunk<'_>),
    {
        let mut out = Outcome::default();
        if self.end.is_none() {
            if let Some(&first) = self.buf.keys().next() {
                self.gap_to(first, &mut sink, &mut out);
                self.drain_contiguous(budget, &mut sink, &mut out);
            } else if let Some(fin) = self.fin {
                self.gap_to(fin, &mut sink, &mut out);
            }
            self.check_fin_reached(&mut sink);
        }
        self.stats.record(&out);
        out
    }

    /// Tells the reassembler the receiver acknowledged every byte before sequence number
    /// `ack` (the ACK field of a segment in the *other* direction).
    ///
    /// Data up to `ack` will not be retransmitted, so holes before it are given up: buffered
    /// runs before `ack` are delivered with gaps for the holes (and a gap up to `ack` if data
    /// is missing right before it). ACKs at or behind the delivery point, and ACKs more than
    /// [`ReassemblyConfig::max_window`] ahead (bogus), change nothing. An ACK of the FIN
    /// (one past it) counts as acknowledging the data before the FIN.
    ///
    /// Only call this for captures in network order: if a capture was reordered so that an ACK
    /// precedes the data it acknowledges, that data becomes a gap.
    pub fn acked<F>(&mut self, ack: u32, budget: &mut ReassemblyBudget, mut sink: F) -> Outcome
    where
        F: FnMut(StreamChunk<'_>),
    {
        let mut out = Outcome::default();
        let rel = i64::from(ack.wrapping_sub(self.next_seq()) as i32);
        if self.end.is_none() && rel > 0 && rel <= i64::from(self.config.max_window) {
            // rel > 0, so the conversion is exact.
            let mut target = self.delivered + rel as u64;
            if let Some(fin) = self.fin {
                // The FIN takes a sequence number but no stream byte.
                target = target.min(fin);
            }
            self.flush_before(target, budget, &mut sink, &mut out);
            self.drain_contiguous(budget, &mut sink, &mut out);
            self.check_fin_reached(&mut sink);
        }
        self.stats.record(&out);
        out
    }

    /// Ends the stream (flow end, timeout): delivers all buffered data with gaps for the holes,
    /// a gap up to the FIN if its position is known, then [`StreamChunk::End`] with
    /// [`EndReason::Closed`] (or [`EndReason::Fin`] if delivery reaches a known FIN).
    ///
    /// Releases this direction's share of `budget`. Later segments with new bytes are dropped
    /// ([`ReassemblyEvent::DataAfterClose`]). Does nothing if the stream already ended.
    pub fn close<F>(&mut self, budget: &mut ReassemblyBudget, mut sink: F) -> Outcome
    where
        F: FnMut(StreamChunk<'_>),
    {
        let mut out = Outcome::default();
        if self.end.is_none() {
            self.finish(EndReason::Closed, budget, &mut sink, &mut out);
        }
        self.stats.record(&out);
        out
    }

    /// Drops all buffered data without delivering it and releases this direction's share of
    /// `budget` (e.g. when the flow is evicted). The stream counts as closed afterwards.
    pub fn discard(&mut self, budget: &mut ReassemblyBudget) {
        self.buf.clear();
        budget.release(self.mem);
        self.mem = 0;
        if self.end.is_none() {
            self.end = Some(EndReason::Closed);
        }
    }

    /// Offset past which no new byte is accepted: the FIN, or the delivery point once ended.
    fn limit(&self) -> Option<u64> {
        match (self.fin, self.end) {
            (Some(fin), _) => Some(fin),
            (None, Some(_)) => Some(self.delivered),
            (None, None) => None,
        }
    }

    fn note_fin(&mut self, end: i128, budget: &mut ReassemblyBudget, out: &mut Outcome) {
        if self.fin.is_some() || self.end.is_some() || end < i128::from(self.delivered) {
            // First FIN wins; a FIN behind delivered data cannot be honoured.
            return;
        }
        // end >= delivered >= 0 here.
        let fin = end as u64;
        self.fin = Some(fin);
        // Buffered bytes after the FIN arrived first, but the FIN says they are not part of
        // the stream: drop them.
        let after: Vec<u64> = self.buf.range(fin..).map(|(&k, _)| k).collect();
        let mut dropped = 0u64;
        for k in after {
            if let Some(v) = self.buf.remove(&k) {
                dropped += v.len() as u64;
                self.uncharge(v.len() + SEGMENT_OVERHEAD, budget);
            }
        }
        if let Some((&k, v)) = self.buf.range_mut(..fin).next_back() {
            let keep = (fin - k) as usize;
            if v.len() > keep {
                dropped += (v.len() - keep) as u64;
                let freed = v.len() - keep;
                v.truncate(keep);
                v.shrink_to_fit();
                self.uncharge(freed, budget);
            }
        }
        if dropped > 0 {
            out.dropped_bytes += dropped;
            out.events.insert(ReassemblyEvent::DataAfterFin);
        }
    }

    fn uncharge(&mut self, n: usize, budget: &mut ReassemblyBudget) {
        self.mem -= n;
        budget.release(n);
    }

    /// Places `data` at stream offset `start`: retransmission, in order, or buffered.
    fn place<F>(
        &mut self,
        start: u64,
        data: &[u8],
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        let end = start + data.len() as u64;
        if start < self.delivered {
            let old = (self.delivered - start).min(data.len() as u64) as usize;
            out.retransmitted_bytes += old as u64;
            out.events.insert(ReassemblyEvent::Retransmission);
            self.compare_history(start, &data[..old], out);
        }
        if end <= self.delivered {
            return;
        }
        let (start, data) = if start < self.delivered {
            // delivered - start < data.len() because end > delivered.
            (self.delivered, &data[(self.delivered - start) as usize..])
        } else {
            (start, data)
        };
        if start == self.delivered {
            self.deliver_in_order(start, data, true, budget, sink, out);
        } else {
            self.buffer(start, data, budget, sink, out);
        }
    }

    /// Delivers `data` (which starts exactly at the delivery point) interleaved with buffered
    /// runs that overlap it (those arrived first and win), then any runs that became contiguous.
    /// `compare` is false when the overlaps were already compared and counted.
    fn deliver_in_order<F>(
        &mut self,
        start: u64,
        data: &[u8],
        compare: bool,
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        debug_assert_eq!(start, self.delivered);
        let end = start + data.len() as u64;
        let mut cursor = start;
        while let Some((&k, _)) = self.buf.first_key_value() {
            if k >= end {
                break;
            }
            // Buffered runs never overlap each other, so k >= cursor.
            if cursor < k {
                let piece = &data[(cursor - start) as usize..(k - start) as usize];
                self.emit_data(cursor, piece, sink, out);
            }
            let Some(run) = self.buf.remove(&k) else {
                break;
            };
            let run_end = k + run.len() as u64;
            if compare {
                let overlap_end = run_end.min(end);
                let new = &data[(k - start) as usize..(overlap_end - start) as usize];
                compare_overlap(&run[..new.len()], new, out);
            }
            self.uncharge(run.len() + SEGMENT_OVERHEAD, budget);
            self.emit_data(k, &run, sink, out);
            cursor = run_end;
        }
        if cursor < end {
            self.emit_data(cursor, &data[(cursor - start) as usize..], sink, out);
        }
        self.drain_contiguous(budget, sink, out);
    }

    /// Delivers buffered runs that start at the delivery point, for as long as there are some.
    fn drain_contiguous<F>(
        &mut self,
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        while let Some(entry) = self.buf.first_entry() {
            if *entry.key() != self.delivered {
                break;
            }
            let (k, run) = entry.remove_entry();
            self.uncharge(run.len() + SEGMENT_OVERHEAD, budget);
            self.emit_data(k, &run, sink, out);
        }
    }

    /// Buffers the bytes of `data` (starting after the delivery point) that are not buffered
    /// yet, or applies the cap policy if they do not fit.
    fn buffer<F>(
        &mut self,
        start: u64,
        data: &[u8],
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        let end = start + data.len() as u64;
        // Pieces of [start, end) not covered by buffered runs: (from, to, extends_a_run).
        let mut pieces: Vec<(u64, u64, bool)> = Vec::new();
        let mut cursor = start;
        let mut at_run_end = false;
        if let Some((&k, run)) = self.buf.range(..start).next_back() {
            let run_end = k + run.len() as u64;
            if run_end > start {
                let overlap_end = run_end.min(end);
                let old = &run[(start - k) as usize..(overlap_end - k) as usize];
                compare_overlap(old, &data[..old.len()], out);
                cursor = overlap_end;
            }
            at_run_end = run_end >= start;
        }
        for (&k, run) in self.buf.range(start..end) {
            if cursor < k {
                pieces.push((cursor, k, at_run_end));
            }
            let run_end = k + run.len() as u64;
            let overlap_end = run_end.min(end);
            let new = &data[(k - start) as usize..(overlap_end - start) as usize];
            compare_overlap(&run[..new.len()], new, out);
            cursor = overlap_end;
            at_run_end = true;
        }
        if cursor < end {
            pieces.push((cursor, end, at_run_end));
        }
        if pieces.is_empty() {
            return;
        }
        let need: usize = pieces
            .iter()
            .map(|&(from, to, extends)| {
                (to - from) as usize + if extends { 0 } else { SEGMENT_OVERHEAD }
            })
            .sum();
        let fits = self.mem + need <= self.config.max_buffered_bytes && budget.try_reserve(need);
        if !fits {
            out.events.insert(ReassemblyEvent::BufferCapReached);
            self.flush_before(start, budget, sink, out);
            if self.delivered < end {
                let from = self.delivered;
                self.deliver_in_order(
                    from,
                    &data[(from - start) as usize..],
                    false,
                    budget,
                    sink,
                    out,
                );
            }
            return;
        }
        self.mem += need;
        for (from, to, extends) in pieces {
            let bytes = &data[(from - start) as usize..(to - start) as usize];
            out.buffered_bytes += bytes.len() as u64;
            let prev = if extends {
                self.buf
                    .range_mut(..from)
                    .next_back()
                    .filter(|(&k, run)| k + run.len() as u64 == from)
            } else {
                None
            };
            match prev {
                Some((_, run)) => run.extend_from_slice(bytes),
                None => {
                    // `extends` pieces always find their run (runs are only removed by
                    // delivery, which cannot happen here); if that ever changed, keep the
                    // accounting exact rather than under-count.
                    if extends {
                        self.mem += SEGMENT_OVERHEAD;
                        budget.used += SEGMENT_OVERHEAD;
                    }
                    self.buf.insert(from, bytes.to_vec());
                }
            }
        }
    }

    /// Delivers every buffered run that starts before `offset`, with a gap before each hole,
    /// then a gap up to `offset` if delivery is still short of it.
    fn flush_before<F>(
        &mut self,
        offset: u64,
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        self.flush_runs_before(offset, budget, sink, out);
        self.gap_to(offset, sink, out);
    }

    /// Delivers every buffered run that starts before `offset`, with a gap before each hole.
    fn flush_runs_before<F>(
        &mut self,
        offset: u64,
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        while let Some(entry) = self.buf.first_entry() {
            let k = *entry.key();
            if k >= offset {
                break;
            }
            let run = entry.remove();
            self.uncharge(run.len() + SEGMENT_OVERHEAD, budget);
            self.gap_to(k, sink, out);
            self.emit_data(k, &run, sink, out);
        }
    }

    /// Flushes everything, ends the stream with `reason` (or FIN if delivery reaches it).
    fn finish<F>(
        &mut self,
        reason: EndReason,
        budget: &mut ReassemblyBudget,
        sink: &mut F,
        out: &mut Outcome,
    ) where
        F: FnMut(StreamChunk<'_>),
    {
        self.flush_runs_before(u64::MAX, budget, sink, out);
        if let Some(fin) = self.fin {
            self.gap_to(fin, sink, out);
        }
        debug_assert!(self.buf.is_empty() && self.mem == 0);
        let reason = if self.fin == Some(self.delivered) {
            EndReason::Fin
        } else {
            reason
        };
        self.end = Some(reason);
        sink(StreamChunk::End(reason));
    }

    fn check_fin_reached<F>(&mut self, sink: &mut F)
    where
        F: FnMut(StreamChunk<'_>),
    {
        if self.end.is_none() && self.fin == Some(self.delivered) {
            debug_assert!(self.buf.is_empty());
            self.end = Some(EndReason::Fin);
            sink(StreamChunk::End(EndReason::Fin));
        }
    }

    /// Emits a gap from the delivery point to `offset` if `offset` is ahead of it.
    fn gap_to<F>(&mut self, offset: u64, sink: &mut F, out: &mut Outcome)
    where
        F: FnMut(StreamChunk<'_>),
    {
        if offset <= self.delivered {
            return;
        }
        let len = offset - self.delivered;
        sink(StreamChunk::Gap {
            offset: self.delivered,
            len,
        });
        out.gaps += 1;
        out.gap_bytes += len;
        out.events.insert(ReassemblyEvent::Gap);
        self.delivered = offset;
        // The history must end at `delivered`; bytes before a gap no longer do.
        self.history.clear();
    }

    /// Compares already-delivered bytes of a retransmission (`old`, at stream offset `start`)
    /// with the retained history, if any.
    fn compare_history(&self, start: u64, old: &[u8], out: &mut Outcome) {
        let hist_start = self.delivered - self.history.len() as u64;
        let end = start + old.len() as u64;
        let from = start.max(hist_start);
        if from >= end {
            return;
        }
        let h = &self.history[(from - hist_start) as usize..(end - hist_start) as usize];
        let n = &old[(from - start) as usize..];
        if h != n {
            let differing = h.iter().zip(n).filter(|(a, b)| a != b).count() as u64;
            out.conflicting_bytes += differing;
            out.events.insert(ReassemblyEvent::OverlapDifferentData);
        }
    }

    fn remember(&mut self, bytes: &[u8]) {
        let keep = self.config.retain_delivered;
        if keep == 0 {
            return;
        }
        if bytes.len() >= keep {
            self.history.clear();
            self.history.extend_from_slice(&bytes[bytes.len() - keep..]);
        } else {
            self.history.extend_from_slice(bytes);
            if self.history.len() > 2 * keep {
                // Amortised: trim back to `keep` only once the history doubled.
                let excess = self.history.len() - keep;
                self.history.drain(..excess);
            }
        }
    }

    fn emit_data<F>(&mut self, offset: u64, bytes: &[u8], sink: &mut F, out: &mut Outcome)
    where
        F: FnMut(StreamChunk<'_>),
    {
        debug_assert_eq!(offset, self.delivered);
        if bytes.is_empty() {
            return;
        }
        sink(StreamChunk::Data { offset, bytes });
        out.delivered_bytes += bytes.len() as u64;
        self.delivered = offset + bytes.len() as u64;
        self.remember(bytes);
    }
}

/// Compares bytes that arrived first (`old`) with a later segment's bytes at the same offsets.
fn compare_overlap(old: &[u8], new: &[u8], out: &mut Outcome) {
    if old.is_empty() {
        return;
    }
    out.events.insert(ReassemblyEvent::Overlap);
    if old == new {
        out.duplicate_bytes += new.len() as u64;
        return;
    }
    let differing = old.iter().zip(new).filter(|(a, b)| a != b).count() as u64;
    out.conflicting_bytes += differing;
    out.duplicate_bytes += new.len() as u64 - differing;
    out.events.insert(ReassemblyEvent::OverlapDifferentData);
}
