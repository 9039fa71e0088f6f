//! Packet time as the engine sees it.

use serde::Serialize;

/// A point in time: microseconds since the Unix epoch (UTC).
///
/// Microseconds because that is what pcap (classic) records, what EVE prints (6 digits) and what
/// Suricata's `flow_id` mixes in; nanosecond captures are truncated by [`Timestamp::from_nanos`].
/// The engine never reads a clock: every timestamp comes from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// From whole seconds and microseconds (pcap's `ts_sec`/`ts_usec`); `usec` may exceed 10^6.
    pub fn from_secs_micros(secs: u64, usec: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000).saturating_add(usec))
    }

    /// From whole seconds and nanoseconds (nanosecond pcap); sub-microsecond digits are dropped.
    pub fn from_secs_nanos(secs: u64, nsec: u64) -> Self {
        Self::from_secs_micros(secs, nsec / 1000)
    }

    /// From nanoseconds since the epoch, truncated to microseconds.
    pub fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos / 1000)
    }

    /// From microseconds since the epoch.
    pub fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub fn secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// Microseconds within the second (0..1_000_000).
    pub fn subsec_micros(self) -> u32 {
        (self.0 % 1_000_000) as u32
    }

    /// This time plus `secs` seconds (saturating).
    pub fn add_secs(self, secs: u64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1_000_000)))
    }

    /// Microseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn micros_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
