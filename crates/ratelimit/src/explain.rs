//! Reading a `/proc/net/ipt_hashlimit/NAME` line (the kernel's or sekisho's) back into words.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::rate::{RateError, Unit, CREDITS_PER_SEC, CREDITS_PER_SEC_V2};

/// One parsed `/proc` line: `<secs> <src>:<sport>-><dst>:<dport> <credit> <cap> <cost>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcLine {
    /// Seconds until the entry may be garbage-collected.
    pub secs_to_expiry: i64,
    /// Source address of the key.
    pub src: IpAddr,
    /// Source port of the key.
    pub src_port: u16,
    /// Destination address of the key.
    pub dst: IpAddr,
    /// Destination port of the key.
    pub dst_port: u16,
    /// Credits in the bucket.
    pub credit: u64,
    /// Bucket size in credits.
    pub credit_cap: u64,
    /// Credits per packet.
    pub cost: u64,
}

const LINE_HINT: &str = "a line reads '<seconds> <srcip>:<srcport>-><dstip>:<dstport> <credit> <credit_cap> <cost>', e.g. '295 103.54.60.244:0->0.0.0.0:0 17688640 115200000 57600000'";

fn addr_port(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.rsplit_once(':')?;
    Some((a.parse().ok()?, p.parse().ok()?))
}

impl ProcLine {
    /// Parses one line; extra whitespace is fine, anything else is an error saying what a
    /// line looks like.
    pub fn parse(line: &str) -> Result<ProcLine, RateError> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = |what: &str| RateError::new(format!("not a hashlimit line: {what}"), LINE_HINT);
        let [secs, key, credit, cap, cost] = f[..] else {
            return Err(bad(&format!("expected 5 columns, found {}", f.len())));
        };
        let (src, dst) = key
            .split_once("->")
            .ok_or_else(|| bad(&format!("key '{key}' has no '->'")))?;
        let (src, src_port) =
            addr_port(src).ok_or_else(|| bad(&format!("bad source '{src}' (address:port)")))?;
        let (dst, dst_port) = addr_port(dst)
            .ok_or_else(|| bad(&format!("bad destination '{dst}' (address:port)")))?;
        let num = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| bad(&format!("{what} '{s}' is not a number")))
        };
        let l = ProcLine {
            secs_to_expiry: secs
                .parse()
                .map_err(|_| bad(&format!("seconds '{secs}' is not a number")))?,
            src,
            src_port,
            dst,
            dst_port,
            credit: num(credit, "credit")?,
            credit_cap: num(cap, "credit cap")?,
            cost: num(cost, "cost")?,
        };
        if l.cost == 0 {
            return Err(bad("cost is 0"));
        }
        Ok(l)
    }

    /// Tokens in the bucket (credit / cost).
    pub fn tokens(&self) -> f64 {
        self.credit as f64 / self.cost as f64
    }

    /// The burst (credit cap / cost).
    pub fn burst(&self) -> f64 {
        self.credit_cap as f64 / self.cost as f64
    }
}

/// How the credit numbers of a line were scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// Revision 1 with the exact formula: 32,000 credits per second (sekisho, kernels ≤ 4.x).
    Rev1,
    /// Revision 1 as kernels 5.10+ compute it: cost = avg × 3 (refill is still 32,000/s).
    Rev1Times3,
    /// Revisions 2/3: 64-bit, 2^37 × 1000 credits per second.
    Rev2,
}

/// What a line means, as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Meaning {
    /// The parsed line.
    pub line: ProcLine,
    /// The scaling the numbers fit.
    pub scaling: Scaling,
    /// Seconds per token as configured.
    pub secs_per_token: f64,
    /// The rate as `N/unit` when it is a whole number per some unit.
    pub rate: Option<(u64, Unit)>,
    /// Seconds without traffic until the bucket holds one token again (0: it holds one now).
    pub secs_to_under: f64,
}

fn whole_rate(secs_per_token: f64) -> Option<(u64, Unit)> {
    [Unit::Second, Unit::Minute, Unit::Hour, Unit::Day]
        .into_iter()
        .find_map(|u| {
            let n = u.secs() as f64 / secs_per_token;
            let r = n.round();
            (r >= 1.0 && (n - r).abs() <= 1e-6 * r.max(1.0)).then_some((r as u64, u))
        })
}

/// Decodes a line: which scaling fits, the rate, and when the key is under the limit again.
pub fn meaning(line: ProcLine) -> Meaning {
    let rev2 = line.cost > u64::from(u32::MAX) || line.credit_cap > u64::from(u32::MAX);
    let (scaling, spt, refill_cps) = if rev2 {
        (
            Scaling::Rev2,
            line.cost as f64 / CREDITS_PER_SEC_V2 as f64,
            CREDITS_PER_SEC_V2 as f64,
        )
    } else {
        let exact = line.cost as f64 / CREDITS_PER_SEC as f64;
        let times3 = line.cost as f64 / 30_000.0;
        if whole_rate(exact).is_none() && whole_rate(times3).is_some() {
            (Scaling::Rev1Times3, times3, CREDITS_PER_SEC as f64)
        } else {
            (Scaling::Rev1, exact, CREDITS_PER_SEC as f64)
        }
    };
    let secs_to_under = if line.credit >= line.cost {
        0.0
    } else {
        (line.cost - line.credit) as f64 / refill_cps
    };
    Meaning {
        rate: whole_rate(spt),
        secs_per_token: spt,
        scaling,
        secs_to_under,
        line,
    }
}

/// A duration as a person says it: `about 21 minutes`, `about 40 seconds`, `about 3 hours`.
pub fn about(secs: f64) -> String {
    let plural = |n: f64, w: &str| {
        let n = n.round() as u64;
        format!("about {n} {w}{}", if n == 1 { "" } else { "s" })
    };
    if secs < 90.0 {
        plural(secs.max(1.0), "second")
    } else if secs < 90.0 * 60.0 {
        plural(secs / 60.0, "minute")
    } else if secs < 48.0 * 3600.0 {
        plural(secs / 3600.0, "hour")
    } else {
        plural(secs / 86_400.0, "day")
    }
}

fn min_sec(secs: i64) -> String {
    let a = secs.unsigned_abs();
    if a >= 60 {
        format!("{} min {} s", a / 60, a % 60)
    } else {
        format!("{a} s")
    }
}

fn is_zero(ip: IpAddr) -> bool {
    ip.is_unspecified()
}

/// The whole explanation of a line, several lines of text (`sekisho ratelimit explain`).
pub fn explain(text: &str) -> Result<String, RateError> {
    let m = meaning(ProcLine::parse(text)?);
    let l = &m.line;
    let mut o = String::new();
    let _ = writeln!(o, "line:    {}", text.trim());
    // Key.
    let mut parts = Vec::new();
    if !is_zero(l.src) {
        parts.push(format!("source {}", l.src));
    }
    if l.src_port != 0 {
        parts.push(format!("source port {}", l.src_port));
    }
    if !is_zero(l.dst) {
        parts.push(format!("destination {}", l.dst));
    }
    if l.dst_port != 0 {
        parts.push(format!("destination port {}", l.dst_port));
    }
    if parts.is_empty() {
        let _ = writeln!(
            o,
            "key:     none: one bucket shared by all traffic of the rule (no --hashlimit-mode)"
        );
    } else {
        let _ = writeln!(
            o,
            "key:     {} (fields shown as 0.0.0.0 or :0 are not part of the key)",
            parts.join(", ")
        );
    }
    // Rate.
    let rate = match m.rate {
        Some((n, u)) => format!("{n}/{}", u.name()),
        None => format!("one token every {:.3} s", m.secs_per_token),
    };
    let scaling = match m.scaling {
        Scaling::Rev1 => "revision-1 scaling, 32000 credits per second".to_string(),
        Scaling::Rev1Times3 => "revision-1 numbers of a 5.10+ kernel (cost = avg x 3): it refills 32000 credits per second, so the effective rate is 6.7% higher than written".to_string(),
        Scaling::Rev2 => "revision-2/3 scaling, 137438953472000 credits per second".to_string(),
    };
    let _ = writeln!(
        o,
        "rate:    {rate} (one token every {} s; cost {} credits; {scaling})",
        trim_f(m.secs_per_token),
        l.cost
    );
    let _ = writeln!(
        o,
        "burst:   {} (credit cap {} = {} tokens)",
        trim_f(l.burst()),
        l.credit_cap,
        trim_f(l.burst())
    );
    let _ = writeln!(o, "tokens:  {:.2} (credit {})", l.tokens(), l.credit);
    if m.secs_to_under <= 0.0 {
        let _ = writeln!(
            o,
            "now:     under the limit: the next packet with this key is let through (with --hashlimit-above it does not match)"
        );
    } else {
        let _ = writeln!(
            o,
            "now:     over the limit: the next packet with this key is refused (with --hashlimit-above it matches)"
        );
        let _ = writeln!(
            o,
            "under:   under the limit again in {} ({:.0} s) without traffic from this key",
            about(m.secs_to_under),
            m.secs_to_under
        );
    }
    if l.secs_to_expiry > 0 {
        let _ = writeln!(
            o,
            "expires: in {} s ({}) if no packet with this key arrives; then the entry is removed and the next packet starts with a full bucket ({} tokens)",
            l.secs_to_expiry,
            min_sec(l.secs_to_expiry),
            trim_f(l.burst())
        );
        if (l.secs_to_expiry as f64) < m.secs_to_under {
            let _ = writeln!(
                o,
                "note:    the entry expires before its bucket refills: a packet after {} s finds a new, full bucket",
                l.secs_to_expiry
            );
        }
    } else {
        let _ = writeln!(
            o,
            "expires: expired {} s ago; removed at the next garbage collection (the next packet starts with a full bucket)",
            -l.secs_to_expiry
        );
    }
    Ok(o)
}

/// `2` for 2.0, `2.5` for 2.5, three decimals at most.
fn trim_f(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "295 103.54.60.244:0->0.0.0.0:0 17688640 115200000 57600000";

    #[test]
    fn the_seed_line() {
        let m = meaning(ProcLine::parse(SEED).unwrap());
        assert_eq!(m.rate, Some((2, Unit::Hour)));
        assert_eq!(m.scaling, Scaling::Rev1);
        assert_eq!(m.line.burst(), 2.0);
        assert!((m.line.tokens() - 0.3071).abs() < 1e-3);
        // (57,600,000 − 17,688,640) / 32,000 = 1247.23 s.
        assert!((m.secs_to_under - 1247.23).abs() < 0.01);
        let text = explain(SEED).unwrap();
        for want in [
            "2/hour",
            "burst:   2 ",
            "tokens:  0.31",
            "under the limit again in about 21 minutes",
            "in 295 s (4 min 55 s)",
            "source 103.54.60.244",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
    }

    #[test]
    fn other_scalings_and_ipv6() {
        // 6/minute burst 3 as a revision-3 kernel prints it (avg 10^7 × ⌊2^37·1000/10^6⌋).
        let cost = 10_000_000u64 * 137_438_953;
        let line = format!("59 10.0.0.1:0->0.0.0.0:0 {} {} {cost}", cost / 2, cost * 3);
        let m = meaning(ProcLine::parse(&line).unwrap());
        assert_eq!(m.scaling, Scaling::Rev2);
        assert_eq!(m.rate, Some((6, Unit::Minute)));
        assert!((m.secs_to_under - 5.0).abs() < 0.01);
        // 2/h on a 5.10+ kernel with revision 1: 18,000,000 × 3.
        let m = meaning(ProcLine::parse("10 1.2.3.4:0->0.0.0.0:0 0 108000000 54000000").unwrap());
        assert_eq!(
            (m.scaling, m.rate),
            (Scaling::Rev1Times3, Some((2, Unit::Hour)))
        );
        let l = ProcLine::parse(
            "3 2001:0db8:0000:0000:0000:0000:0000:0000:0->0000:0000:0000:0000:0000:0000:0000:0000:25 320000 960000 320000",
        )
        .unwrap();
        assert_eq!(l.src, "2001:db8::".parse::<IpAddr>().unwrap());
        assert_eq!(l.dst_port, 25);
        assert!(explain("295 1.2.3.4->x 1 2 3").is_err());
        assert!(explain("295 1.2.3.4:0->0.0.0.0:0 1 2 0").is_err());
        assert!(explain("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(about(1247.0), "about 21 minutes");
        assert_eq!(about(5.0), "about 5 seconds");
        assert_eq!(about(7200.0), "about 2 hours");
        assert_eq!(about(0.2), "about 1 second");
    }
}
