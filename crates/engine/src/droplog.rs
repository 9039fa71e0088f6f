//! How many records the engine writes about packets it drops by itself before any flow
//! exists (an undecodable packet inline, a fragment the full reassembler refused): such
//! packets need no handshake and no state, so an attacker can send them at line rate. Each
//! is counted; records are bounded to [`RECORDS_PER_SEC`] per second of packet time, so a
//! flood of garbage cannot turn into unbounded log volume while a handful of bad packets
//! (an attack's few crafted ones) is each logged.

use crate::time::Timestamp;

/// Records written per second of packet time, at most (decode errors and `defrag_memcap`
/// together).
pub const RECORDS_PER_SEC: u32 = 100;

/// Per-second budget of drop records.
#[derive(Debug, Default)]
pub(crate) struct DropLog {
    /// The second (packet time) the budget is for.
    second: u64,
    /// Records written in it.
    written: u32,
    /// Records not written because the budget was spent (all seconds together).
    pub suppressed: u64,
}

impl DropLog {
    /// Whether a record may be written for a drop at `ts` (spends the budget if so).
    pub fn admit(&mut self, ts: Timestamp) -> bool {
        let s = ts.secs();
        if s != self.second {
            self.second = s;
            self.written = 0;
        }
        if self.written < RECORDS_PER_SEC {
            self.written += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_budget_per_second_of_packet_time() {
        let mut log = DropLog::default();
        let t = Timestamp::from_secs_micros(1_000, 0);
        let admitted = (0..1000).filter(|_| log.admit(t)).count();
        assert_eq!(admitted, RECORDS_PER_SEC as usize);
        assert_eq!(log.suppressed, 1000 - u64::from(RECORDS_PER_SEC));
        // The next second has a fresh budget.
        assert!(log.admit(Timestamp::from_secs_micros(1_001, 0)));
    }
}
