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
//!   a `100 Continue`), so the length and a keyed hash (SipHash with this process's random
//!   keys, so a sender cannot aim for a collision) of the bytes last scanned are kept and
//!   compared: the same digest gives the remembered hits, anything else is scanned again.
//!   A digest instead of a copy keeps the memo small: a flow's memo is per-flow state that
//!   its table's memcap does not count, so it stays within [`MEMO_MAX_BYTES`].
//!
//! The memo is a cache of what the bytes give. The inline checkpoint does not copy it: a
//! rollback restores a cold memo, as the app layer's rollback may take list instances back
//! that a watermark already counted. A rule-set swap clears it (its hits are rule orders
//! of the old set).

use sekisho_engine::app::{AppProto, BufferId, TxRef};
use sekisho_engine::Direction;

use crate::prefilter::{Prefilter, PrefilterScratch};
use crate::sig::BufKind;

/// Most bytes one flow's memo keeps (its hit lists and entries); past it a buffer is
/// scanned on every packet again, as without the memo.
pub(crate) const MEMO_MAX_BYTES: usize = 16 * 1024;

/// The keyed hash of single buffers' bytes: one set of random keys per process.
fn digest(b: &[u8]) -> (usize, u64) {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    (b.len(), KEYS.get_or_init(Default::default).hash_one(b))
}

/// What was scanned of one buffer of one transaction for one direction.
#[derive(Debug, Default)]
struct BufMemo {
    /// The entry holds a result.
    valid: bool,
    /// List buffers: instances scanned so far (`0..seen`).
    seen: u32,
    /// Single buffers: length and keyed hash of the bytes scanned (`None`: the buffer was
    /// absent).
    digest: Option<(usize, u64)>,
    /// Rule orders whose fast pattern occurs in what was scanned, sorted, no duplicates.
    hits: Vec<u32>,
}

impl BufMemo {
    fn cost(&self) -> usize {
        std::mem::size_of::<BufMemo>() + self.hits.capacity() * 4
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

/// Most rules remembered as settled misses per direction (4 KiB each).
const MAX_MISSES: usize = 1024;

/// App-transaction rules that did not match, per direction, while nothing they read changed.
#[derive(Debug, Default)]
struct Misses {
    /// The generation of the direction they were evaluated at.
    gen: u64,
    /// `flow:established` as those evaluations saw it.
    established: bool,
    /// The flow's app protocol then.
    app: Option<AppProto>,
    /// Rule orders, sorted.
    orders: Vec<u32>,
}

/// One flow's prefilter progress over its live transactions.
#[derive(Debug, Default)]
pub(crate) struct TxScanMemo {
    txs: Vec<TxMemo>,
    /// Bytes held (bounded by [`MEMO_MAX_BYTES`]).
    bytes: usize,
    /// Per direction: bumped whenever what the transactions show a packet of that direction
    /// changed in a buffer the memo follows (every buffer [`Prefilter::app_buffers`] names),
    /// or a transaction came or went.
    gen: [u64; 2],
    /// Per direction: see [`TxScanMemo::settled_miss`].
    misses: [Misses; 2],
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
        self.bump_all();
        for m in &mut self.misses {
            m.orders.clear();
        }
    }

    fn bump_all(&mut self) {
        for g in &mut self.gen {
            *g += 1;
        }
    }

    /// True when rule `order` was evaluated on an earlier packet of `dir` without a match
    /// and nothing it can read changed since: no transaction came or went, no followed
    /// buffer changed, `flow:established` and the app protocol are the same. Only for rules
    /// whose result depends on nothing else (`Prefilter::settles`): then it misses again.
    /// Starts a new set when the context changed.
    pub(crate) fn settled_miss(
        &mut self,
        dir: Direction,
        established: bool,
        app: AppProto,
        order: u32,
    ) -> bool {
        let d = dir.index();
        let m = &mut self.misses[d];
        if m.gen != self.gen[d] || m.established != established || m.app != Some(app) {
            m.gen = self.gen[d];
            m.established = established;
            m.app = Some(app);
            m.orders.clear();
            return false;
        }
        m.orders.binary_search(&order).is_ok()
    }

    /// Rule `order` missed on this packet of `dir` (after [`TxScanMemo::settled_miss`]
    /// said it was not settled).
    pub(crate) fn note_miss(&mut self, dir: Direction, order: u32) {
        let m = &mut self.misses[dir.index()];
        if let Err(k) = m.orders.binary_search(&order) {
            if m.orders.len() < MAX_MISSES {
                m.orders.insert(k, order);
            }
        }
    }

    /// Keeps only transactions still live, and starts an entry for each transaction a
    /// packet of `dir` sees for the first time (either bumps the generations).
    pub(crate) fn retain_live(&mut self, txs: &[TxRef<'_>], dir: Direction) {
        for t in txs {
            let id = t.id();
            if !self.txs.iter().any(|m| m.tx == id && m.dir == dir) {
                self.gen[dir.index()] += 1;
                self.txs.push(TxMemo {
                    tx: id,
                    dir,
                    bufs: Vec::new(),
                });
            }
        }
        if self.txs.is_empty() {
            return;
        }
        let mut freed = 0;
        let before = self.txs.len();
        self.txs.retain(|m| {
            let live = txs.iter().any(|t| t.id() == m.tx);
            if !live {
                freed += m.bufs.iter().map(BufMemo::cost).sum::<usize>();
            }
            live
        });
        if freed > 0 || self.txs.len() < before {
            self.bump_all();
        }
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
                self.gen[dir.index()] += 1;
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
        let mut changed = false;
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
                changed = true;
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
                changed = true;
            }
        } else {
            let now = t.buffer(k, 0);
            let d = now.map(digest);
            let same = m.valid && m.digest == d;
            if !same {
                changed = true;
                m.valid = true;
                m.hits.clear();
                match now {
                    Some(b) => {
                        pf.scan(scratch, kind, std::iter::once(b), &mut m.hits);
                        scanned = 1;
                        m.hits.sort_unstable();
                        m.hits.dedup();
                        m.digest = d;
                    }
                    None => m.digest = None,
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
            changed = true;
        }
        if changed {
            self.gen[dir.index()] += 1;
        }
        scanned
    }
}
