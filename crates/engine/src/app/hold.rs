//! The engine-wide budget for bytes held while flows' protocols are still unknown.
//!
//! Until a flow's protocol is detected, each TCP direction's bytes are kept for the parser
//! (at most [`crate::config::AppLayerConfig::max_hold_bytes`] per direction). Per flow that
//! is bounded, but a flood of flows that each send bytes no probe recognises (while the
//! other side stays silent) would hold `max_hold_bytes` times the flow cap. The budget caps
//! the sum ([`crate::config::AppLayerConfig::hold_memcap`]): every held buffer charges its
//! allocated capacity, and releases it when freed, taken by a parser or dropped (with its
//! flow), so the count is exact whatever path frees it. When a buffer cannot grow, that
//! flow's detection gives up: the flow becomes `failed` and the engine applies the
//! `app_layer_error` exception policy to it (inline, by default: the flow is dropped).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A handle on one engine's hold budget (cheap to clone; `unlimited` for a lone
/// [`super::AppLayer`] outside an engine).
#[derive(Debug, Clone, Default)]
pub struct HoldBudget(Option<Arc<Shared>>);

#[derive(Debug)]
struct Shared {
    used: AtomicUsize,
    cap: usize,
}

impl HoldBudget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        HoldBudget(Some(Arc::new(Shared {
            used: AtomicUsize::new(0),
            cap,
        })))
    }

    /// No limit (the count is not kept).
    pub fn unlimited() -> Self {
        HoldBudget(None)
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |s| s.used.load(Ordering::Relaxed))
    }

    /// Charges `n` bytes if they fit under the cap.
    pub(crate) fn try_charge(&self, n: usize) -> bool {
        let Some(s) = &self.0 else { return true };
        s.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= s.cap)
            })
            .is_ok()
    }

    /// Charges `n` bytes whatever the cap (a copy that already exists must be counted).
    pub(crate) fn charge(&self, n: usize) {
        if let Some(s) = &self.0 {
            s.used.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn release(&self, n: usize) {
        if let Some(s) = &self.0 {
            // Saturating: a release never exceeds its charge, but never wrap if it did.
            let _ = s
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                    Some(u.saturating_sub(n))
                });
        }
    }
}

/// What one flow's parsers keep, charged to the engine's app-layer memcap (a
/// [`HoldBudget`] of `app-layer.memcap` bytes): moved to the parsers' count after every
/// chunk they parse, released when dropped (with its flow); a copy (an inline snapshot)
/// charges its own bytes, so the count is exact whatever path frees it.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    budget: HoldBudget,
    bytes: usize,
}

impl Charge {
    pub(crate) fn new(budget: HoldBudget) -> Self {
        Charge { budget, bytes: 0 }
    }

    /// Moves the charge to `now` bytes: O(1). False (charge unchanged) when the growth
    /// does not fit under the cap.
    #[inline]
    pub(crate) fn set(&mut self, now: usize) -> bool {
        // The common case (a body segment, a chunk that kept nothing new): no atomic
        // read-modify-write on the shared budget.
        if now == self.bytes {
            return true;
        }
        if now > self.bytes {
            if !self.budget.try_charge(now - self.bytes) {
                return false;
            }
        } else {
            self.budget.release(self.bytes - now);
        }
        self.bytes = now;
        true
    }
}

impl Clone for Charge {
    fn clone(&self) -> Self {
        self.budget.charge(self.bytes);
        Charge {
            budget: self.budget.clone(),
            bytes: self.bytes,
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// A held byte buffer charged to a [`HoldBudget`] by its allocated capacity.
#[derive(Debug, Default)]
pub(crate) struct Held {
    buf: Vec<u8>,
    charged: usize,
    budget: HoldBudget,
}

impl Held {
    pub(crate) fn new(budget: HoldBudget) -> Self {
        Held {
            buf: Vec::new(),
            charged: 0,
            budget,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends `data`; false (nothing appended) when the budget cannot cover the growth.
    pub(crate) fn extend(&mut self, data: &[u8]) -> bool {
        let need = self.buf.len().saturating_add(data.len());
        if need > self.buf.capacity() {
            // Grown here, by doubling, so the charge is decided before allocating.
            let target = need.max(self.buf.capacity().saturating_mul(2)).max(64);
            if !self.budget.try_charge(target - self.charged) {
                return false;
            }
            self.buf.reserve_exact(target - self.buf.len());
            let actual = self.buf.capacity();
            self.budget.charge(actual.saturating_sub(target));
            self.charged = actual;
        }
        self.buf.extend_from_slice(data);
        true
    }

    /// The bytes, leaving the buffer empty and its charge released.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.budget.release(self.charged);
        self.charged = 0;
        std::mem::take(&mut self.buf)
    }

    /// Frees the buffer.
    pub(crate) fn free(&mut self) {
        drop(self.take());
    }

    /// Keeps the first `n` bytes in a buffer of just that size.
    pub(crate) fn keep_first(&mut self, n: usize) {
        self.buf.truncate(n);
        self.buf.shrink_to_fit();
        let now = self.buf.capacity();
        self.budget.release(self.charged.saturating_sub(now));
        self.charged = now;
    }
}

impl Clone for Held {
    fn clone(&self) -> Self {
        let buf = self.buf.clone();
        let charged = buf.capacity();
        self.budget.charge(charged);
        Held {
            buf,
            charged,
            budget: self.budget.clone(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_capacity_and_releases_on_every_path() {
        let b = HoldBudget::new(1000);
        let mut h = Held::new(b.clone());
        assert!(h.extend(&[1; 10]));
        assert_eq!(b.used(), 64);
        assert!(h.extend(&[2; 100]));
        assert_eq!(b.used(), 128);
        let copy = h.clone();
        assert_eq!(b.used(), 128 + copy.buf.capacity());
        drop(copy);
        assert_eq!(b.used(), 128);
        h.keep_first(16);
        assert_eq!(b.used(), h.buf.capacity());
        let v = h.take();
        assert_eq!(v.len(), 16);
        assert_eq!(b.used(), 0);
        assert!(h.extend(&[3; 5]));
        drop(h);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn refuses_growth_past_the_cap_and_keeps_what_it_has() {
        let b = HoldBudget::new(300);
        let mut a = Held::new(b.clone());
        let mut c = Held::new(b.clone());
        assert!(a.extend(&[1; 200]));
        assert_eq!(b.used(), 200);
        assert!(!c.extend(&[2; 150]), "200 + 150 > 300");
        assert!(c.is_empty());
        assert!(c.extend(&[2; 10]), "64 more fit");
        assert!(!a.extend(&[1; 1]), "doubling 200 would pass the cap");
        assert_eq!(a.len(), 200);
        a.free();
        assert_eq!(b.used(), 64);
    }
}
