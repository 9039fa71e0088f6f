//! Exception policies: what the engine does where it cannot see what the rules need.
//!
//! A parser that gave up, a flow picked up mid-stream without its handshake, a flow whose
//! state was evicted, a stream that went invalid, a limit hit while evaluating a rule: in
//! each case detection would run blind, so a firewall must not simply pass. Suricata's model
//! (`exception-policy` and the per-area `*-policy` settings) is followed: each
//! [`ExceptionTarget`] has an [`ExceptionAction`]; `auto` is `drop-flow` inline and `ignore`
//! in monitor mode. Every trigger is counted (Suricata's `*_exception_policy.<action>`
//! counters), recorded on the flow (EVE `flow.exception_policy[{target, policy}]`) and, when
//! it drops, logged as a `drop` record with the trigger as reason.

use serde::Serialize;

/// Where the engine could not see what the rules need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionTarget {
    /// The flow's app-layer parser stopped (a malformed message it cannot resynchronise
    /// after).
    AppLayerError,
    /// The stream's memory budget was exhausted for a new session.
    StreamMemcap,
    /// A TCP flow seen without its handshake while mid-stream pick-up is off (or its state
    /// was lost).
    StreamMidstream,
    /// Reassembly could not hold data it needed (the stream memcap), so a range became a gap.
    StreamReassemblyMemcap,
    /// The flow's state was evicted from the full flow table and the flow came back.
    FlowMemcap,
    /// Fragment reassembly ran out of memory.
    DefragMemcap,
    /// A segment that would change the stream's state was not valid for it (sekisho's: an
    /// out-of-window RST or FIN, a PAWS failure, data after close).
    StreamInvalid,
    /// Detection hit a limit on a rule that can drop (a PCRE match limit, backtracking
    /// limit, a buffer list that was truncated): sekisho's.
    DetectLimit,
}

impl ExceptionTarget {
    /// Every target, in counter order.
    pub const ALL: [ExceptionTarget; 8] = [
        ExceptionTarget::AppLayerError,
        ExceptionTarget::StreamMemcap,
        ExceptionTarget::StreamMidstream,
        ExceptionTarget::StreamReassemblyMemcap,
        ExceptionTarget::FlowMemcap,
        ExceptionTarget::DefragMemcap,
        ExceptionTarget::StreamInvalid,
        ExceptionTarget::DetectLimit,
    ];

    /// `app_layer_error`'s cause when the hold budget ran out before detection ended.
    pub const CAUSE_HOLD_MEMCAP: &'static str =
        "app-layer.hold-memcap ran out before the flow's protocol was known";
    /// `app_layer_error`'s cause when the flow's parser could not grow under the memcap.
    pub const CAUSE_APP_MEMCAP: &'static str =
        "app-layer.memcap was reached: the flow's parser state was freed";

    /// What the engine could not see, in words (`--explain`); `app_layer_error` has two more
    /// precise causes beside its own ([`Self::CAUSE_HOLD_MEMCAP`], [`Self::CAUSE_APP_MEMCAP`]).
    pub fn cause(self) -> &'static str {
        match self {
            ExceptionTarget::AppLayerError => "the flow's app-layer parser stopped",
            ExceptionTarget::StreamMemcap => "the stream memcap was reached",
            ExceptionTarget::StreamMidstream => {
                "TCP flow without its handshake and mid-stream pick-up is off"
            }
            ExceptionTarget::StreamReassemblyMemcap => "reassembly memory ran out",
            ExceptionTarget::FlowMemcap => "the flow's state was evicted (flow table full)",
            ExceptionTarget::DefragMemcap => "fragment reassembly memory ran out",
            ExceptionTarget::StreamInvalid => "a segment was not valid for the stream",
            ExceptionTarget::DetectLimit => {
                "a limit or a truncated list kept a rule that can drop from seeing the data"
            }
        }
    }

    /// The policy key (`app_layer_error`, `stream_midstream`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionTarget::AppLayerError => "app_layer_error",
            ExceptionTarget::StreamMemcap => "stream_memcap",
            ExceptionTarget::StreamMidstream => "stream_midstream",
            ExceptionTarget::StreamReassemblyMemcap => "stream_reassembly_memcap",
            ExceptionTarget::FlowMemcap => "flow_memcap",
            ExceptionTarget::DefragMemcap => "defrag_memcap",
            ExceptionTarget::StreamInvalid => "stream_invalid",
            ExceptionTarget::DetectLimit => "detect_limit",
        }
    }

    /// Parses a policy key.
    pub fn parse(word: &str) -> Option<ExceptionTarget> {
        Self::ALL.into_iter().find(|t| t.as_str() == word)
    }

    /// EVE `drop.reason` of a drop it caused (Suricata's strings where Suricata has one).
    pub fn drop_reason(self) -> &'static str {
        match self {
            ExceptionTarget::AppLayerError => "applayer error",
            ExceptionTarget::StreamMemcap => "stream memcap",
            ExceptionTarget::StreamMidstream => "stream midstream",
            ExceptionTarget::StreamReassemblyMemcap => "stream reassembly",
            ExceptionTarget::FlowMemcap => "flow memcap",
            ExceptionTarget::DefragMemcap => "defrag memcap",
            ExceptionTarget::StreamInvalid => "stream error",
            ExceptionTarget::DetectLimit => "detect limit",
        }
    }

    /// Prefix of its stats counters (Suricata's names where Suricata has them).
    fn counter_prefix(self) -> &'static str {
        match self {
            ExceptionTarget::AppLayerError => "app_layer.error.exception_policy",
            ExceptionTarget::StreamMemcap => "tcp.ssn_memcap_exception_policy",
            ExceptionTarget::StreamMidstream => "tcp.midstream_exception_policy",
            ExceptionTarget::StreamReassemblyMemcap => "tcp.reassembly_exception_policy",
            ExceptionTarget::FlowMemcap => "flow.memcap_exception_policy",
            ExceptionTarget::DefragMemcap => "defrag.memcap_exception_policy",
            ExceptionTarget::StreamInvalid => "tcp.invalid_exception_policy",
            ExceptionTarget::DetectLimit => "detect.limit_exception_policy",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What an exception does to the packet and its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ExceptionAction {
    /// Drop the packet and the rest of the flow (the inline default).
    #[serde(rename = "drop_flow")]
    DropFlow,
    /// Drop this packet only.
    #[serde(rename = "drop_packet")]
    DropPacket,
    /// Pass the rest of the flow without inspection.
    #[serde(rename = "pass_flow")]
    PassFlow,
    /// Pass this packet without inspection.
    #[serde(rename = "pass_packet")]
    PassPacket,
    /// Like `pass_flow` (sekisho has no kernel bypass in replay; the NFQUEUE driver may mark
    /// the flow for the kernel).
    #[serde(rename = "bypass")]
    Bypass,
    /// Drop the flow and answer (TCP RST, ICMP unreachable) so the client retries cleanly.
    #[serde(rename = "reject")]
    Reject,
    /// Go on as if nothing happened (the monitor-mode default).
    #[serde(rename = "ignore")]
    Ignore,
    /// `drop-flow` inline, `ignore` in monitor mode (Suricata's `auto`).
    #[serde(rename = "auto")]
    Auto,
}

impl ExceptionAction {
    /// The policy-file spellings, as Suricata writes them.
    pub const NAMES: &'static [&'static str] = &[
        "drop-flow",
        "drop-packet",
        "pass-flow",
        "pass-packet",
        "bypass",
        "reject",
        "ignore",
        "auto",
    ];

    /// Parses a policy-file spelling (`drop-flow`; `drop_flow` is accepted too).
    pub fn parse(word: &str) -> Option<ExceptionAction> {
        Some(match word.replace('_', "-").as_str() {
            "drop-flow" => ExceptionAction::DropFlow,
            "drop-packet" => ExceptionAction::DropPacket,
            "pass-flow" => ExceptionAction::PassFlow,
            "pass-packet" => ExceptionAction::PassPacket,
            "bypass" => ExceptionAction::Bypass,
            "reject" => ExceptionAction::Reject,
            "ignore" => ExceptionAction::Ignore,
            "auto" => ExceptionAction::Auto,
            _ => return None,
        })
    }

    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionAction::DropFlow => "drop-flow",
            ExceptionAction::DropPacket => "drop-packet",
            ExceptionAction::PassFlow => "pass-flow",
            ExceptionAction::PassPacket => "pass-packet",
            ExceptionAction::Bypass => "bypass",
            ExceptionAction::Reject => "reject",
            ExceptionAction::Ignore => "ignore",
            ExceptionAction::Auto => "auto",
        }
    }

    /// The counter / EVE spelling (`drop_flow`).
    pub fn counter_name(self) -> &'static str {
        match self {
            ExceptionAction::DropFlow => "drop_flow",
            ExceptionAction::DropPacket => "drop_packet",
            ExceptionAction::PassFlow => "pass_flow",
            ExceptionAction::PassPacket => "pass_packet",
            ExceptionAction::Bypass => "bypass",
            ExceptionAction::Reject => "reject",
            ExceptionAction::Ignore => "ignore",
            ExceptionAction::Auto => "auto",
        }
    }

    /// True when it drops the packet (inline).
    pub fn drops(self) -> bool {
        matches!(
            self,
            ExceptionAction::DropFlow | ExceptionAction::DropPacket | ExceptionAction::Reject
        )
    }

    /// Counter slots: every action but `auto` (always resolved first).
    const COUNTED: [ExceptionAction; 6] = [
        ExceptionAction::DropFlow,
        ExceptionAction::DropPacket,
        ExceptionAction::PassFlow,
        ExceptionAction::PassPacket,
        ExceptionAction::Bypass,
        ExceptionAction::Reject,
    ];
}

/// The exception policy of every target: a master value and per-target overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionPolicies {
    /// Applies to every target without its own value (Suricata's `exception-policy`,
    /// default `auto`).
    pub master: ExceptionAction,
    /// Per-target values, indexed like [`ExceptionTarget::ALL`].
    pub targets: [Option<ExceptionAction>; 8],
}

impl Default for ExceptionPolicies {
    fn default() -> Self {
        ExceptionPolicies {
            master: ExceptionAction::Auto,
            targets: [None; 8],
        }
    }
}

impl ExceptionPolicies {
    /// Sets one target's action.
    pub fn set(&mut self, target: ExceptionTarget, action: ExceptionAction) {
        self.targets[target.index()] = Some(action);
    }

    /// The action for `target`, with `auto` resolved for the mode (`drop-flow` inline,
    /// `ignore` in monitor mode). In monitor mode nothing is dropped or passed: any value
    /// is only counted and recorded as what inline would do.
    pub fn resolve(&self, target: ExceptionTarget, inline: bool) -> ExceptionAction {
        match self.targets[target.index()].unwrap_or(self.master) {
            ExceptionAction::Auto if inline => ExceptionAction::DropFlow,
            ExceptionAction::Auto => ExceptionAction::Ignore,
            a => a,
        }
    }
}

/// Exception-policy counters: per target, per action taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionCounters {
    counts: [[u64; 6]; 8],
}

impl ExceptionCounters {
    /// Counts one application of `action` for `target` (`ignore` is not counted, as in
    /// Suricata).
    pub fn add(&mut self, target: ExceptionTarget, action: ExceptionAction) {
        if let Some(i) = ExceptionAction::COUNTED.iter().position(|a| *a == action) {
            self.counts[target.index()][i] += 1;
        }
    }

    /// The count for one target and action.
    pub fn get(&self, target: ExceptionTarget, action: ExceptionAction) -> u64 {
        ExceptionAction::COUNTED
            .iter()
            .position(|a| *a == action)
            .map_or(0, |i| self.counts[target.index()][i])
    }

    /// Calls `f(key, value)` for every counter (`tcp.midstream_exception_policy.drop_flow`).
    pub fn for_each(&self, f: &mut impl FnMut(&'static str, u64)) {
        for t in ExceptionTarget::ALL {
            for (i, a) in ExceptionAction::COUNTED.iter().enumerate() {
                f(counter_key(t, *a), self.counts[t.index()][i]);
            }
        }
    }
}

/// `<prefix>.<action>` as a static string (the counter set is fixed, so the keys are built
/// once).
fn counter_key(t: ExceptionTarget, a: ExceptionAction) -> &'static str {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        ExceptionTarget::ALL
            .iter()
            .flat_map(|t| {
                ExceptionAction::COUNTED
                    .iter()
                    .map(move |a| format!("{}.{}", t.counter_prefix(), a.counter_name()))
            })
            .collect()
    });
    let i = ExceptionAction::COUNTED
        .iter()
        .position(|x| *x == a)
        .unwrap_or(0);
    keys.get(t.index() * 6 + i).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_drop_flow_inline_and_ignore_in_monitor_mode() {
        let mut p = ExceptionPolicies::default();
        let t = ExceptionTarget::StreamMidstream;
        assert_eq!(p.resolve(t, true), ExceptionAction::DropFlow);
        assert_eq!(p.resolve(t, false), ExceptionAction::Ignore);
        p.master = ExceptionAction::PassFlow;
        assert_eq!(p.resolve(t, true), ExceptionAction::PassFlow);
        p.set(t, ExceptionAction::Reject);
        assert_eq!(p.resolve(t, true), ExceptionAction::Reject);
        assert_eq!(
            p.resolve(ExceptionTarget::AppLayerError, true),
            ExceptionAction::PassFlow
        );
    }

    #[test]
    fn names_round_trip_and_counters_use_suricatas_keys() {
        for w in ExceptionAction::NAMES {
            assert_eq!(ExceptionAction::parse(w).map(|a| a.as_str()), Some(*w));
        }
        assert_eq!(
            ExceptionAction::parse("drop_flow"),
            Some(ExceptionAction::DropFlow)
        );
        assert_eq!(ExceptionAction::parse("drop"), None);
        for t in ExceptionTarget::ALL {
            assert_eq!(ExceptionTarget::parse(t.as_str()), Some(t));
        }
        let mut c = ExceptionCounters::default();
        c.add(ExceptionTarget::StreamMidstream, ExceptionAction::DropFlow);
        c.add(ExceptionTarget::StreamMidstream, ExceptionAction::Ignore);
        let mut seen = Vec::new();
        c.for_each(&mut |k, v| seen.push((k, v)));
        assert_eq!(seen.len(), 48);
        assert!(seen.contains(&("tcp.midstream_exception_policy.drop_flow", 1)));
        assert!(seen.contains(&("app_layer.error.exception_policy.reject", 0)));
    }
}
