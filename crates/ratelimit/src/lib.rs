//! Rate limits with Linux `hashlimit` semantics, sans-I/O.
//!
//! A [`Table`] is one named hashlimit table: a token bucket per [`Key`] (any of source and
//! destination address masked to a prefix, source and destination port; no field = one
//! shared bucket), in revision-1 credits (32,000 per second, so costs and caps read exactly
//! like the kernel's: `2/h burst 2` costs 57,600,000 with a cap of 115,200,000). Time is the
//! packets' own timestamps in microseconds, counted in 1 ms jiffies; nothing here reads a
//! clock, so a replay of hours of capture decides as the live traffic was decided.
//!
//! - [`Rate::parse`]: iptables rate spellings (`2/h`, `2/hour`, `100/sec`, `512kb/s`);
//! - [`Table::check`]: one packet: create full, or renew expiry and refill; take a token if
//!   there is one ([`Outcome`]); GC ticks run as packet time passes; `htable_max` caps the
//!   entries (a new key finding the table full gets [`Outcome::TableFull`], counted);
//! - [`Table::proc_text`]: the `/proc/net/ipt_hashlimit/NAME` lines;
//! - [`explain()`]: a line (the kernel's or ours) in words;
//! - [`import`]: an iptables-save rule with `-m hashlimit` or `-m limit`.
//!
//! Semantics and every number: `docs/rate-limits.md`.

#![warn(missing_docs)]

mod explain;
mod iptables;
mod rate;
mod table;

pub use explain::{about, explain, meaning, Meaning, ProcLine, Scaling};
pub use iptables::{import, ImportAction, ImportError, Imported};
pub use rate::{
    credits, parse_bytes, Rate, RateError, Unit, BYTE_CREDITS_PER_SEC, CREDITS_PER_SEC,
    CREDITS_PER_SEC_V2, SCALE,
};
pub use table::{
    mask, Config, Decision, Key, KeyFields, Outcome, Table, TableStats, DEFAULT_BURST,
    DEFAULT_GC_INTERVAL_MS, DEFAULT_MAX, MAX_BURST, MAX_MAX,
};
