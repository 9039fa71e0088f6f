//! An in-memory collector of one reassembled direction, for tests and offline tools.

use super::{
    EndReason, Outcome, ReassemblyBudget, ReassemblyConfig, ReassemblyStats, SegmentFlags,
    StreamChunk, StreamReassembler,
};

/// Reassembles one direction of a TCP connection into memory.
///
/// Feed it the direction's segments in capture order with [`StreamCollector::push`], then call
/// [`StreamCollector::finish`]. The reassembler is created on the first segment: from its
/// sequence number as ISN if it has SYN, midstream otherwise (so a capture that starts
/// mid-connection must deliver that direction's lowest sequence number first, or the bytes
/// before it count as before the stream start). It uses its own unlimited
/// [`ReassemblyBudget`]; the per-direction cap of the given config still applies.
///
/// This is the helper for capture-replay tests: reassemble each direction of a clean capture
/// and of a reordered/duplicated/overlapped one, and compare [`CollectedStream::data`] and
/// [`CollectedStream::gaps`].
///
/// ```
/// use sekisho_engine::reassembly::{ReassemblyConfig, SegmentFlags, StreamCollector};
///
/// let mut c = StreamCollector::new(ReassemblyConfig::default());
/// c.push(1000, SegmentFlags::SYN, b"");
/// c.push(1006, SegmentFlags::NONE, b"world"); // out of order
/// c.push(1001, SegmentFlags::NONE, b"hello");
/// c.push(1001, SegmentFlags::NONE, b"hello"); // retransmission
/// let s = c.finish();
/// assert_eq!(s.data, b"helloworld");
/// assert!(s.gaps.is_empty());
/// ```
#[derive(Debug)]
pub struct StreamCollector {
    config: ReassemblyConfig,
    budget: ReassemblyBudget,
    reasm: Option<StreamReassembler>,
    out: CollectedStream,
}

/// The result of [`StreamCollector::finish`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectedStream {
    /// Delivered bytes, concatenated in stream order (gaps are not filled in).
    pub data: Vec<u8>,
    /// Gaps as `(stream offset, length)`, in stream order.
    pub gaps: Vec<(u64, u64)>,
    /// How the stream ended (`None` only if no segment was pushed).
    pub end: Option<EndReason>,
    /// Counters of the reassembler.
    pub stats: ReassemblyStats,
}

impl CollectedStream {
    /// The stream with every gap filled with `fill` bytes, so offsets line up with the
    /// original stream.
    pub fn with_gaps_filled(&self, fill: u8) -> Vec<u8> {
        let total = self.data.len() as u64 + self.gaps.iter().map(|g| g.1).sum::<u64>();
        let mut v = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut data = self.data.as_slice();
        for &(offset, len) in &self.gaps {
            let before = offset.saturating_sub(v.len() as u64) as usize;
            let (head, rest) = data.split_at(before.min(data.len()));
            v.extend_from_slice(head);
            data = rest;
            v.resize(v.len().saturating_add(len as usize), fill);
        }
        v.extend_from_slice(data);
        v
    }
}

impl StreamCollector {
    /// A collector whose reassembler will use `config`.
    pub fn new(config: ReassemblyConfig) -> Self {
        Self {
            config,
            budget: ReassemblyBudget::unlimited(),
            reasm: None,
            out: CollectedStream::default(),
        }
    }

    /// Handles one segment of the direction (see [`StreamReassembler::insert`]).
    pub fn push(&mut self, seq: u32, flags: SegmentFlags, payload: &[u8]) -> Outcome {
        let config = self.config;
        let reasm = self.reasm.get_or_insert_with(|| {
            if flags.syn {
                StreamReassembler::new(seq, config)
            } else {
                StreamReassembler::midstream(seq, config)
            }
        });
        let out = &mut self.out;
        reasm.insert(seq, flags, payload, &mut self.budget, |c| record(out, c))
    }

    /// Gives up on the first hole (see [`StreamReassembler::force_gap`]).
    pub fn force_gap(&mut self) -> Outcome {
        let out = &mut self.out;
        match &mut self.reasm {
            Some(r) => r.force_gap(&mut self.budget, |c| record(out, c)),
            None => Outcome::default(),
        }
    }

    /// Closes the stream (flushing buffered data with gaps) and returns what was delivered.
    pub fn finish(mut self) -> CollectedStream {
        if let Some(r) = &mut self.reasm {
            let out = &mut self.out;
            r.close(&mut self.budget, |c| record(out, c));
            self.out.stats = *r.stats();
        }
        self.out
    }
}

fn record(out: &mut CollectedStream, chunk: StreamChunk<'_>) {
    match chunk {
        StreamChunk::Data { bytes, .. } => out.data.extend_from_slice(bytes),
        StreamChunk::Gap { offset, len } => out.gaps.push((offset, len)),
        StreamChunk::End(reason) => out.end = Some(reason),
    }
}
