//! Per-packet verdict counters: Suricata's `ips.*` counters and, when firewall rules are
//! loaded, its `firewall.*` ones.
//!
//! Every packet the sensor answers counts once: `ips.accepted`, `ips.blocked` (with one
//! `ips.drop_reason.*`) or `ips.rejected`. In firewall mode the firewall is a first stage and
//! threat detection a second one that only sees what the firewall accepted
//! (`../shared/reference/suricata-firewall-mode.md`): a packet the firewall drops counts in
//! `firewall.blocked` / `firewall.rejected` and its `firewall.drop_reason.*` only; any other
//! packet counts in `firewall.accepted` and then in `ips.*` by its final verdict. In monitor
//! mode every packet is accepted.
//!
//! The reason is what decided the drop, in this order: the packet could not be decoded
//! (`decode_error`); an exception policy (its target: `stream_midstream`, `flow_memcap`,
//! ...); the drop record detection wrote for the packet (`rules`,
//! `threshold_detection_filter`, the firewall's reasons); the flow was dropped earlier
//! (`flow_drop`); a rate limit (`rate_limit`, sekisho's).

use sekisho_engine::{ExceptionTarget, Verdict};

/// Why the inspector side saw the latest packet dropped (set while the engine runs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// An exception policy decided the packet.
    Exception(ExceptionTarget),
    /// The flow was dropped earlier (`firewall`: by a firewall rule or default policy).
    FlowDrop {
        /// The firewall dropped the flow (else threat detection or an exception policy).
        firewall: bool,
    },
    /// A rate limit dropped it.
    RateLimit,
}

/// `ips.drop_reason.*`, Suricata's names first, then sekisho's own.
const IPS_REASONS: [&str; 15] = [
    "ips.drop_reason.decode_error",
    "ips.drop_reason.defrag_error",
    "ips.drop_reason.defrag_memcap",
    "ips.drop_reason.flow_memcap",
    "ips.drop_reason.flow_drop",
    "ips.drop_reason.applayer_error",
    "ips.drop_reason.applayer_memcap",
    "ips.drop_reason.rules",
    "ips.drop_reason.threshold_detection_filter",
    "ips.drop_reason.stream_error",
    "ips.drop_reason.stream_memcap",
    "ips.drop_reason.stream_midstream",
    "ips.drop_reason.stream_reassembly",
    "ips.drop_reason.detect_limit",
    "ips.drop_reason.rate_limit",
];

/// `firewall.drop_reason.*`.
const FW_REASONS: [&str; 6] = [
    "firewall.drop_reason.rules",
    "firewall.drop_reason.default_packet_policy",
    "firewall.drop_reason.default_app_policy",
    "firewall.drop_reason.pre_flow_hook",
    "firewall.drop_reason.pre_stream_hook",
    "firewall.drop_reason.flow_drop",
];

/// A drop's reason: an index into [`IPS_REASONS`] or [`FW_REASONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Ips(usize),
    Firewall(usize),
}

/// Indices into [`IPS_REASONS`] (checked against the names by a test).
mod ips {
    pub const DECODE_ERROR: usize = 0;
    pub const DEFRAG_MEMCAP: usize = 2;
    pub const FLOW_MEMCAP: usize = 3;
    pub const FLOW_DROP: usize = 4;
    pub const APPLAYER_ERROR: usize = 5;
    pub const RULES: usize = 7;
    pub const THRESHOLD: usize = 8;
    pub const STREAM_ERROR: usize = 9;
    pub const STREAM_MEMCAP: usize = 10;
    pub const STREAM_MIDSTREAM: usize = 11;
    pub const STREAM_REASSEMBLY: usize = 12;
    pub const DETECT_LIMIT: usize = 13;
    pub const RATE_LIMIT: usize = 14;
}

impl Reason {
    fn of_exception(t: ExceptionTarget) -> Reason {
        Reason::Ips(match t {
            ExceptionTarget::AppLayerError => ips::APPLAYER_ERROR,
            ExceptionTarget::StreamMemcap => ips::STREAM_MEMCAP,
            ExceptionTarget::StreamMidstream => ips::STREAM_MIDSTREAM,
            ExceptionTarget::StreamReassemblyMemcap => ips::STREAM_REASSEMBLY,
            ExceptionTarget::FlowMemcap => ips::FLOW_MEMCAP,
            ExceptionTarget::DefragMemcap => ips::DEFRAG_MEMCAP,
            ExceptionTarget::StreamInvalid => ips::STREAM_ERROR,
            ExceptionTarget::DetectLimit => ips::DETECT_LIMIT,
        })
    }

    /// From the `reason` of a drop record detection wrote.
    fn of_record(reason: &str) -> Reason {
        match reason {
            "firewall rules" => Reason::Firewall(0),
            "firewall default packet policy" => Reason::Firewall(1),
            "firewall default app policy" => Reason::Firewall(2),
            "firewall flow drop" => Reason::Firewall(5),
            "threshold detection_filter" => Reason::Ips(ips::THRESHOLD),
            // `rules`, and the NFW default actions (rules in AWS's engine).
            _ => Reason::Ips(ips::RULES),
        }
    }
}

/// What the sensor knows about the packet just handled, besides its verdict.
pub(crate) struct Seen<'a> {
    /// The engine dropped it undecoded.
    pub invalid: bool,
    /// The inspector side's cause, if any.
    pub cause: Option<Cause>,
    /// Reasons of the drop records detection wrote for it, in order.
    pub record_reasons: &'a mut dyn Iterator<Item = &'static str>,
}

/// The counters (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct VerdictCounters {
    accepted: u64,
    blocked: u64,
    rejected: u64,
    reasons: [u64; IPS_REASONS.len()],
    fw_accepted: u64,
    fw_blocked: u64,
    fw_rejected: u64,
    fw_reasons: [u64; FW_REASONS.len()],
}

impl VerdictCounters {
    /// Counts one packet's verdict.
    pub(crate) fn count(&mut self, v: Verdict, mut seen: Seen<'_>) {
        if !v.is_drop() {
            self.fw_accepted += 1;
            self.accepted += 1;
            return;
        }
        let reason = if seen.invalid {
            Reason::Ips(ips::DECODE_ERROR)
        } else if let Some(Cause::Exception(t)) = seen.cause {
            Reason::of_exception(t)
        } else if let Some(r) = Iterator::find(&mut seen.record_reasons, |r| {
            !matches!(*r, "flow drop" | "firewall flow drop")
        }) {
            Reason::of_record(r)
        } else {
            match seen.cause {
                Some(Cause::FlowDrop { firewall: true }) => Reason::Firewall(5),
                Some(Cause::FlowDrop { firewall: false }) => Reason::Ips(ips::FLOW_DROP),
                Some(Cause::RateLimit) => Reason::Ips(ips::RATE_LIMIT),
                _ => Reason::Ips(ips::RULES),
            }
        };
        let reject = matches!(v, Verdict::Reject { .. });
        match reason {
            Reason::Firewall(i) => {
                self.fw_reasons[i] += 1;
                if reject {
                    self.fw_rejected += 1;
                } else {
                    self.fw_blocked += 1;
                }
            }
            Reason::Ips(i) => {
                self.fw_accepted += 1;
                self.reasons[i] += 1;
                if reject {
                    self.rejected += 1;
                } else {
                    self.blocked += 1;
                }
            }
        }
    }

    /// The counters by their dotted names; the `firewall.*` ones only when `firewall`.
    pub(crate) fn extend(&self, firewall: bool, out: &mut Vec<(&'static str, u64)>) {
        out.extend([
            ("ips.accepted", self.accepted),
            ("ips.blocked", self.blocked),
            ("ips.rejected", self.rejected),
            ("ips.replaced", 0),
        ]);
        out.extend(IPS_REASONS.iter().copied().zip(self.reasons));
        if firewall {
            out.extend([
                ("firewall.accepted", self.fw_accepted),
                ("firewall.blocked", self.fw_blocked),
                ("firewall.rejected", self.fw_rejected),
                // The alert queue is not bounded per packet: nothing is ever discarded.
                ("firewall.discarded_alerts", 0),
            ]);
            out.extend(FW_REASONS.iter().copied().zip(self.fw_reasons));
        }
    }
}

/// Every counter name [`VerdictCounters::extend`] can write (for the conformance runner).
pub fn verdict_counter_names() -> impl Iterator<Item = &'static str> {
    [
        "ips.accepted",
        "ips.blocked",
        "ips.rejected",
        "ips.replaced",
        "firewall.accepted",
        "firewall.blocked",
        "firewall.rejected",
        "firewall.discarded_alerts",
    ]
    .into_iter()
    .chain(IPS_REASONS)
    .chain(FW_REASONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(it: &'a mut dyn Iterator<Item = &'static str>, cause: Option<Cause>) -> Seen<'a> {
        Seen {
            invalid: false,
            cause,
            record_reasons: it,
        }
    }

    fn get(c: &VerdictCounters, fw: bool, name: &str) -> u64 {
        let mut v = Vec::new();
        c.extend(fw, &mut v);
        v.iter()
            .find(|(k, _)| *k == name)
            .map_or(u64::MAX, |(_, n)| *n)
    }

    #[test]
    fn every_reason_index_names_its_counter() {
        for (i, n) in [
            (ips::DECODE_ERROR, "decode_error"),
            (ips::DEFRAG_MEMCAP, "defrag_memcap"),
            (ips::FLOW_MEMCAP, "flow_memcap"),
            (ips::FLOW_DROP, "flow_drop"),
            (ips::APPLAYER_ERROR, "applayer_error"),
            (ips::RULES, "rules"),
            (ips::THRESHOLD, "threshold_detection_filter"),
            (ips::STREAM_ERROR, "stream_error"),
            (ips::STREAM_MEMCAP, "stream_memcap"),
            (ips::STREAM_MIDSTREAM, "stream_midstream"),
            (ips::STREAM_REASSEMBLY, "stream_reassembly"),
            (ips::DETECT_LIMIT, "detect_limit"),
            (ips::RATE_LIMIT, "rate_limit"),
        ] {
            assert_eq!(IPS_REASONS[i], format!("ips.drop_reason.{n}"));
        }
    }

    #[test]
    fn a_firewall_drop_counts_only_on_the_firewall_side() {
        let mut c = VerdictCounters::default();
        c.count(Verdict::Accept, seen(&mut std::iter::empty(), None));
        c.count(
            Verdict::DropFlow,
            seen(&mut ["firewall default packet policy"].into_iter(), None),
        );
        c.count(
            Verdict::DropFlow,
            seen(
                &mut std::iter::empty(),
                Some(Cause::FlowDrop { firewall: true }),
            ),
        );
        c.count(Verdict::Drop, seen(&mut ["rules"].into_iter(), None));
        assert_eq!(get(&c, true, "firewall.accepted"), 2);
        assert_eq!(get(&c, true, "firewall.blocked"), 2);
        assert_eq!(
            get(&c, true, "firewall.drop_reason.default_packet_policy"),
            1
        );
        assert_eq!(get(&c, true, "firewall.drop_reason.flow_drop"), 1);
        assert_eq!(get(&c, true, "ips.accepted"), 1);
        assert_eq!(get(&c, true, "ips.blocked"), 1);
        assert_eq!(get(&c, true, "ips.drop_reason.rules"), 1);
        // Without firewall rules the firewall counters are not written.
        assert_eq!(get(&c, false, "firewall.accepted"), u64::MAX);
    }

    #[test]
    fn an_exception_outranks_the_drop_record_and_decode_errors_outrank_both() {
        let mut c = VerdictCounters::default();
        c.count(
            Verdict::DropFlow,
            seen(
                &mut ["stream midstream"].into_iter(),
                Some(Cause::Exception(ExceptionTarget::StreamMidstream)),
            ),
        );
        c.count(
            Verdict::Drop,
            Seen {
                invalid: true,
                cause: None,
                record_reasons: &mut std::iter::empty(),
            },
        );
        c.count(
            Verdict::Reject {
                to: sekisho_engine::RejectTo::Sender,
                flow: false,
            },
            seen(&mut ["rules"].into_iter(), None),
        );
        assert_eq!(get(&c, false, "ips.drop_reason.stream_midstream"), 1);
        assert_eq!(get(&c, false, "ips.drop_reason.decode_error"), 1);
        assert_eq!(get(&c, false, "ips.drop_reason.rules"), 1);
        assert_eq!(get(&c, false, "ips.blocked"), 2);
        assert_eq!(get(&c, false, "ips.rejected"), 1);
    }
}
