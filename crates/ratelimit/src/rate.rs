//! Rates as iptables spells them, and the kernel's integer credit arithmetic (revision 1).

use std::fmt;

/// Rate scale of hashlimit revision 1: the kernel receives seconds-per-packet × 10,000.
pub const SCALE: u64 = 10_000;
/// Credits a bucket gains per second in revision-1 scaling (HZ × CREDITS_PER_JIFFY = 32,000
/// for HZ 250 and HZ 1000).
pub const CREDITS_PER_SEC: u64 = 32_000;
/// Credits per jiffy, with jiffies of 1 ms (HZ 1000).
pub const CREDITS_PER_JIFFY: u64 = 32;
/// Credits per second of revisions 2 and 3 (HZ × CREDITS_PER_JIFFY = 2^37 × 1000); used to
/// read kernel lines printed with 64-bit scaling.
pub const CREDITS_PER_SEC_V2: u64 = 137_438_953_472_000;
/// Byte mode: credits one second of traffic is worth (HZ 1000 × 2^22, the kernel's
/// `CREDITS_PER_JIFFY_BYTES × HZ`); the bucket holds one second.
pub const BYTE_CREDITS_PER_SEC: u64 = 4_194_304_000;
/// Byte mode: credits per jiffy (2^22).
pub const BYTE_CREDITS_PER_JIFFY: u64 = 4_194_304;
/// Byte mode: packets are charged in chunks of 16 bytes (`XT_HASHLIMIT_BYTE_SHIFT`).
pub const BYTE_SHIFT: u32 = 4;

/// The time unit of a packet rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Per second.
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
}

impl Unit {
    /// Seconds in one unit.
    pub fn secs(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
        }
    }

    /// The unit's full name (`hour`), as iptables-save prints it.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
        }
    }

    /// The unit a case-insensitive prefix of `second`/`minute`/`hour`/`day` names (as iptables
    /// accepts: `s`, `sec`, `m`, `min`, `h`, `hour`, `d`).
    pub fn parse(word: &str) -> Option<Unit> {
        let w = word.to_ascii_lowercase();
        if w.is_empty() {
            return None;
        }
        [Unit::Second, Unit::Minute, Unit::Hour, Unit::Day]
            .into_iter()
            .find(|u| u.name().starts_with(&w))
    }
}

/// A rate limit's rate: packets per time unit, or bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rate {
    /// `N/unit`: on average N packets (or events) per unit.
    Packets {
        /// N (at least 1).
        n: u64,
        /// The unit.
        unit: Unit,
    },
    /// `N[k|m]b/s`: bytes per second (`k` = 1024, `m` = 1048576).
    Bytes {
        /// Bytes per second (at least 1).
        per_sec: u64,
    },
}

/// Why a rate, burst or mask spelling was refused; `hint` says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateError {
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: String,
}

impl RateError {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        RateError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.hint)
    }
}

impl std::error::Error for RateError {}

const RATE_HINT: &str = "write N/second, N/minute, N/hour or N/day (any prefix: 2/h, 100/sec), or bytes as 512kb/s, 1mb/s, 1000b/s";

/// Leading decimal digits of `s` as iptables' `atoll` reads them (`2.5` ⇒ 2); `None` without
/// digits or on overflow.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n = s[..end].parse::<u64>().ok()?;
    Some((n, &s[end..]))
}

impl Rate {
    /// Parses an iptables rate: `2/h`, `2/hour`, `100/sec`, `7` (per second), `512kb/s`.
    ///
    /// As iptables: the amount is an integer (`2.5/h` reads as 2), 0 is an error, and a rate
    /// faster than 10,000 packets per second is refused ("Rate too fast"), because its
    /// seconds-per-packet × 10,000 would truncate to 0.
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let t = text.trim();
        let Some((n, rest)) = leading_int(t) else {
            return Err(RateError::new(
                format!("bad rate '{text}': expected a number first"),
                RATE_HINT,
            ));
        };
        let rest_l = rest.to_ascii_lowercase();
        // Byte rates: N b/s, N kb/s, N mb/s.
        for (suffix, mult) in [("kb/s", 1024u64), ("mb/s", 1_048_576), ("b/s", 1)] {
            if rest_l == suffix {
                let per_sec = n.checked_mul(mult).ok_or_else(|| {
                    RateError::new(format!("bad rate '{text}': too large"), RATE_HINT)
                })?;
                if per_sec == 0 || per_sec > u64::from(u32::MAX) {
                    return Err(RateError::new(
                        format!("bad rate '{text}': bytes per second must be 1 to 4294967295"),
                        RATE_HINT,
                    ));
                }
                return Ok(Rate::Bytes { per_sec });
            }
        }
        // Fractions are truncated like atoll does: skip `.digits`.
        let rest = match rest.strip_prefix('.') {
            Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
            None => rest,
        };
        let unit = if rest.is_empty() {
            Unit::Second
        } else if let Some(u) = rest.strip_prefix('/') {
            Unit::parse(u).ok_or_else(|| {
                RateError::new(format!("bad rate '{text}': unknown unit '/{u}'"), RATE_HINT)
            })?
        } else {
            return Err(RateError::new(
                format!("bad rate '{text}': unexpected '{rest}'"),
                RATE_HINT,
            ));
        };
        if n == 0 {
            return Err(RateError::new(
                format!("bad rate '{text}': the rate must be at least 1"),
                RATE_HINT,
            ));
        }
        let r = Rate::Packets { n, unit };
        if r.avg() == 0 {
            return Err(RateError::new(
                format!("bad rate '{text}': too fast (at most 10000/second)"),
                "hashlimit counts in 1/10000 s steps; use byte mode or a slower rate",
            ));
        }
        Ok(r)
    }

    /// Revision-1 `avg`: seconds per packet × [`SCALE`], truncated (0 for byte rates).
    pub fn avg(self) -> u64 {
        match self {
            Rate::Packets { n, unit } => SCALE * unit.secs() / n.max(1),
            Rate::Bytes { .. } => 0,
        }
    }

    /// Credits one packet costs: `avg × 32,000 / 10,000` (the exact formula of kernels up to
    /// 4.x; 5.10+ multiply by ⌊3.2⌋ = 3 instead, see `docs/rate-limits.md`). Byte mode: the
    /// cost of one 16-byte chunk.
    pub fn cost(self) -> u64 {
        match self {
            Rate::Packets { .. } => credits(self.avg()),
            Rate::Bytes { per_sec } => {
                let chunks = (per_sec >> BYTE_SHIFT).max(1);
                BYTE_CREDITS_PER_SEC / chunks
            }
        }
    }

    /// The default `htable_expire` in milliseconds: the rate's unit (byte mode: 15 s, or
    /// 60 s when a burst is given), as iptables.
    pub fn default_expire_ms(self, burst_given: bool) -> u64 {
        match self {
            Rate::Packets { unit, .. } => unit.secs() * 1000,
            Rate::Bytes { .. } if burst_given => 60_000,
            Rate::Bytes { .. } => 15_000,
        }
    }

    /// True for byte rates.
    pub fn is_bytes(self) -> bool {
        matches!(self, Rate::Bytes { .. })
    }
}

/// Revision-1 credits for a scaled time (`avg`, or `avg × burst`).
pub fn credits(avg: u64) -> u64 {
    avg.saturating_mul(CREDITS_PER_SEC) / SCALE
}

impl fmt::Display for Rate {
    /// The iptables-save spelling: `2/hour`, `100/sec`, `512kb/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rate::Packets { n, unit } => {
                let u = if unit == Unit::Second {
                    "sec"
                } else {
                    unit.name()
                };
                write!(f, "{n}/{u}")
            }
            Rate::Bytes { per_sec } if per_sec % 1_048_576 == 0 => {
                write!(f, "{}mb/s", per_sec / 1_048_576)
            }
            Rate::Bytes { per_sec } if per_sec % 1024 == 0 => write!(f, "{}kb/s", per_sec / 1024),
            Rate::Bytes { per_sec } => write!(f, "{per_sec}b/s"),
        }
    }
}

/// Parses a byte amount as iptables does for a byte-mode burst: `1mb`, `512kb`, `1500b`, `1500`.
pub fn parse_bytes(text: &str) -> Result<u64, RateError> {
    let t = text.trim();
    let hint = "write bytes as 1500, 1500b, 512kb or 1mb";
    let (n, rest) =
        leading_int(t).ok_or_else(|| RateError::new(format!("bad byte amount '{text}'"), hint))?;
    let mult = match rest.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1024,
        "mb" => 1_048_576,
        _ => return Err(RateError::new(format!("bad byte amount '{text}'"), hint)),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| RateError::new(format!("bad byte amount '{text}'"), hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptables_spellings() {
        let h = Rate::Packets {
            n: 2,
            unit: Unit::Hour,
        };
        for s in ["2/h", "2/hour", "2/HOUR", "2/ho", "2.5/h"] {
            assert_eq!(Rate::parse(s), Ok(h), "{s}");
        }
        assert_eq!(
            Rate::parse("100/sec"),
            Ok(Rate::Packets {
                n: 100,
                unit: Unit::Second
            })
        );
        assert_eq!(
            Rate::parse("7"),
            Ok(Rate::Packets {
                n: 7,
                unit: Unit::Second
            })
        );
        assert_eq!(
            Rate::parse("6/m"),
            Ok(Rate::Packets {
                n: 6,
                unit: Unit::Minute
            })
        );
        assert_eq!(
            Rate::parse("3/d"),
            Ok(Rate::Packets {
                n: 3,
                unit: Unit::Day
            })
        );
        assert_eq!(
            Rate::parse("512kb/s"),
            Ok(Rate::Bytes {
                per_sec: 512 * 1024
            })
        );
        assert_eq!(Rate::parse("1mb/s"), Ok(Rate::Bytes { per_sec: 1_048_576 }));
        for bad in [
            "",
            "/h",
            "0/h",
            "2/secs",
            "2/",
            "2/fortnight",
            "2 per hour",
            "20000/s",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn revision_one_numbers_match_the_kernel() {
        // The seed rule: 2/h ⇒ avg 18,000,000 ⇒ cost 57,600,000 (1800 s × 32,000).
        let r = Rate::parse("2/h").unwrap();
        assert_eq!(r.avg(), 18_000_000);
        assert_eq!(r.cost(), 57_600_000);
        assert_eq!(credits(r.avg() * 2), 115_200_000);
        // 6/minute: avg 100,000 ⇒ 320,000 credits (10 s).
        let r = Rate::parse("6/minute").unwrap();
        assert_eq!(r.avg(), 100_000);
        assert_eq!(r.cost(), 320_000);
        // 10000/s is the fastest: avg 1 ⇒ 3 credits (3.2 truncated).
        assert_eq!(Rate::parse("10000/s").unwrap().cost(), 3);
        assert_eq!(Rate::parse("2/h").unwrap().to_string(), "2/hour");
        assert_eq!(Rate::parse("100/s").unwrap().to_string(), "100/sec");
        assert_eq!(Rate::parse("512kb/s").unwrap().to_string(), "512kb/s");
    }

    #[test]
    fn default_expire_is_the_unit() {
        assert_eq!(
            Rate::parse("2/h").unwrap().default_expire_ms(false),
            3_600_000
        );
        assert_eq!(
            Rate::parse("6/min").unwrap().default_expire_ms(true),
            60_000
        );
        assert_eq!(
            Rate::parse("1kb/s").unwrap().default_expire_ms(false),
            15_000
        );
        assert_eq!(parse_bytes("1mb"), Ok(1_048_576));
        assert!(parse_bytes("1gb").is_err());
    }
}
