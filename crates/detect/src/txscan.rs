//! Per-transaction prefilter progress: which rules each buffer of a live transaction made
//! candidates, so a packet scans only the buffers that changed since the last packet of its
//! direction (Suricata keeps per-transaction inspection progress for the same reason).
//!
//! Without it every packet of a flow rescanned every buffer of every live transaction: a
//! 40 MB download re-ran the Aho-Corasick automata over its request and response headers
//! once per segment. With it the candidate set is exactly the same (the prefilter's hits
//! depend only on a buffer's bytes), but each byte is scanned once:
//!
//! - a **list buffer** (multi-instance) is append-only (registry invariant: an instance is
//!   complete when it appears and never changes), so a watermark of instances scanned is
//!   enough, the same idea as the per-rule `tx_scanned` watermark of rule evaluation;
//! - a **single buffer** may appear later or change (a second HELO, a response head after
//!   a `100 Continue`), so the bytes last scanned are kept and compared: equal bytes give
//!   the remembered hits, anything else is scanned again.
//!
//! The memo is a cache of what the bytes give. The inline checkpoint does not copy it: a
//! rollback restores a cold memo, as the app layer's rollback may take list instances back
//! that a watermark already counted. A rule-set swap clears it (its hits are rule orders
//! of the old set).

use sekisho_engine::app::{BufferId, TxRef};
use sekisho_engine::Direction;

use crate::prefilter::{Prefilter, PrefilterScratch};
use crate::sig::BufKind;

/// Most bytes one flow's memo keeps (copies of single buffers and hit lists); past it a
/// buffer is scanned on every packet again, as without the memo.
pub(crate) const MEMO_MAX_BYTES: usize = 64 * 1024;

/// What was scanned of one buffer of one transaction for one direction.
#[derive(Debug, Default)]
struct BufMemo {
    /// The entry holds a result.
    valid: bool,
    /// List buffers: instances scanned so far (`0..seen`).
    seen: u32,
    /// Single buffers: the bytes scanned (`None`: the buffer was absent).
    bytes: Option<Vec<u8>>,
    /// Rule orders whose fast pattern occurs in what was scanned, sorted, no duplicates.
    hits: Vec<u32>,
}

impl BufMemo {
    fn cost(&self) -> usize {
        self.bytes.as_ref().map_or(0, Vec::capacity) + self.hits.capacity() * 4
    }
}

/// One live transaction seen by packets of one direction (HTTP buffers depend on it).
#[derive(Debug)]
struct TxMemo {
    tx: u64,
    dir: Direction,
    /// By the buffer's position among its protocol's buffers ([`BufferId::local`]).
    bufs: Vec<BufMemo>,
}

/// One flow's prefilter progress over its live transactions.
#[derive(Debug, Default)]
pub(crate) struct TxScanMemo {
    txs: Vec<TxMemo>,
    /// Bytes held (bounded by [`MEMO_MAX_BYTES`]).
    bytes: usize,
}

impl Clone for TxScanMemo {
    /// A cold memo: it is a cache, and the inline checkpoint copies flow state per packet.
    fn clone(&self) -> Self {
        TxScanMemo::default()
    }
}

impl TxScanMemo {
    /// Forgets everything (the rule set changed: hits are rule orders).
    pub(crate) fn clear(&mut self) {
        self.txs.clear();
        self.bytes = 0;
    }

    /// Keeps only transactions still live.
    pub(crate) fn retain_live(&mut self, txs: &[TxRef<'_>]) {
        if self.txs.is_empty() {
            return;
        }
        let mut freed = 0;
        self.txs.retain(|m| {
            let live = txs.iter().any(|t| t.id() == m.tx);
            if !live {
                freed += m.bufs.iter().map(BufMemo::cost).sum::<usize>();
            }
            live
        });
        self.bytes = self.bytes.saturating_sub(freed);
    }

    /// Appends to `out` the rules whose fast pattern for buffer `k` occurs in transaction
    /// `t` as a packet of `dir` sees it: exactly what `Prefilter::scan` over every instance
    /// would give (up to order and duplicates), scanning only what changed since the last
    /// call for the same transaction, buffer and direction. Returns the instances scanned.
    pub(crate) fn candidates(
        &mut self,
        pf: &Prefilter,
        scratch: &mut PrefilterScratch,
        t: &TxRef<'_>,
        dir: Direction,
        k: BufferId,
        out: &mut Vec<u32>,
    ) -> u64 {
        let mut scanned = 0;
        let kind = BufKind::App(k);
        let local = k.local();
        let id = t.id();
        let ti = match self.txs.iter().position(|m| m.tx == id && m.dir == dir) {
            Some(i) => i,
            None => {
                self.txs.push(TxMemo {
                    tx: id,
                    dir,
                    bufs: Vec::new(),
                });
                self.txs.len() - 1
            }
        };
        let bufs = &mut self.txs[ti].bufs;
        if bufs.len() <= local {
            bufs.resize_with(local + 1, BufMemo::default);
        }
        let m = &mut bufs[local];
        let before = m.cost();
        if k.multi() {
            // Append-only: an instance past the watermark is new; fewer instances than the
            // watermark (never expected) starts over.
            if m.valid && m.seen > 0 && t.buffer(k, m.seen as usize - 1).is_none() {
                m.valid = false;
            }
            if !m.valid {
                m.valid = true;
                m.seen = 0;
                m.hits.clear();
            }
            let from = m.seen as usize;
            let n = (from..).take_while(|&n| t.buffer(k, n).is_some()).count();
            if n > 0 {
                let added = m.hits.len();
                pf.scan(
                    scratch,
                    kind,
                    (from..from + n).filter_map(|i| t.buffer(k, i)),
                    &mut m.hits,
                );
                if m.hits.len() > added {
                    m.hits.sort_unstable();
                    m.hits.dedup();
                }
                m.seen += n as u32;
                scanned = n as u64;
            }
        } else {
            let now = t.buffer(k, 0);
            let same = m.valid && m.bytes.as_deref() == now;
            if !same {
                m.valid = true;
                m.hits.clear();
                match now {
                    Some(b) => {
                        pf.scan(scratch, kind, std::iter::once(b), &mut m.hits);
                        scanned = 1;
                        m.hits.sort_unstable();
                        m.hits.dedup();
                        let v = m.bytes.get_or_insert_with(Vec::new);
                        v.clear();
                        v.extend_from_slice(b);
                    }
                    None => m.bytes = None,
                }
            }
        }
        out.extend_from_slice(&m.hits);
        // Invariant: `bytes` is the sum of every entry's cost.
        let after = m.cost();
        self.bytes = self.bytes.saturating_sub(before) + after;
        if self.bytes > MEMO_MAX_BYTES {
            // Over the cap: this buffer is not remembered (scanned again next time).
            self.bytes -= after.min(self.bytes);
            *m = BufMemo::default();
        }
        scanned
    }
}
