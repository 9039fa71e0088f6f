//! The policy's `rate_limits:` list: typed, validated, each limit's rule header resolved.
//! The token buckets themselves live in `sekisho-ratelimit`; semantics in
//! `docs/rate-limits.md`.

use std::net::IpAddr;
use std::ops::Range;

use sekisho_diag::yaml::YamlIndex;
use sekisho_diag::{Diagnostic, SourceFile};
use sekisho_ratelimit::{Config, KeyFields, Rate, RateError};
use sekisho_rules::{Direction, IpSet, PortSet, ProtoKind, Variables};
use serde_json::Value;

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Count {
    /// The packets of a flow that has not seen a reply yet (`--state NEW`): the first
    /// packet, and retransmissions of it.
    NewFlows,
    /// Every packet.
    Packets,
    /// Bytes (the rate is `N[k|m]b/s`).
    Bytes,
    /// An application event of the flow (an `sekisho_engine::app::APP_EVENTS` name:
    /// `smtp_auth_failure`, a 535 reply to AUTH; `smtp_rcpt_rejected`, a 550/551/553 reply
    /// to RCPT TO), counted for the flow's client.
    AppEvent(&'static str),
}

impl Count {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Count::NewFlows => "new_flows",
            Count::Packets => "packets",
            Count::Bytes => "bytes",
            Count::AppEvent(n) => n,
        }
    }
}

/// What traffic over a limit gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitAction {
    /// Dropped (inline).
    Drop,
    /// Dropped and answered (TCP RST / ICMP unreachable to the sender).
    Reject,
    /// Only logged.
    Alert,
}

impl LimitAction {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitAction::Drop => "drop",
            LimitAction::Reject => "reject",
            LimitAction::Alert => "alert",
        }
    }
}

/// One entry of `rate_limits:`, ready to run.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// The table: name, rate, burst, key fields, masks, expiry, cap.
    pub config: Config,
    /// The rule header as written (`tcp any any -> $HOME_NET 25`).
    pub header: String,
    /// What is counted.
    pub count: Count,
    /// What over-limit traffic gets.
    pub action: LimitAction,
    /// App-event limits: once a key goes over, every new flow from it gets `action` for
    /// this long (ms); `None`: only the flow whose event went over.
    pub block_for_ms: Option<u64>,
    /// Where the entry is (`policy.yaml:12`), for messages.
    pub origin: String,
    proto: HeaderProto,
    src: IpSet,
    src_port: PortSet,
    dst: IpSet,
    dst_port: PortSet,
    both_ways: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderProto {
    Any,
    Ip(u8),
    /// ICMP of either family.
    Icmp,
}

impl RateLimit {
    /// True when a packet with these addresses matches the limit's header (`<>` also
    /// matches the other way round).
    pub fn matches(
        &self,
        proto: u8,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
    ) -> bool {
        let p = match self.proto {
            HeaderProto::Any => true,
            HeaderProto::Ip(p) => p == proto,
            HeaderProto::Icmp => proto == 1 || proto == 58,
        };
        p && (self.one_way(src, src_port, dst, dst_port)
            || (self.both_ways && self.one_way(dst, dst_port, src, src_port)))
    }

    fn one_way(&self, src: IpAddr, sp: u16, dst: IpAddr, dp: u16) -> bool {
        self.src.contains(src)
            && self.dst.contains(dst)
            && self.src_port.contains(sp)
            && self.dst_port.contains(dp)
    }
}

/// The keys of one `rate_limits` entry, in documentation order.
pub const RATE_LIMIT_KEYS: &[&str] = &[
    "name",
    "match",
    "count",
    "rate",
    "burst",
    "mode",
    "srcmask",
    "dstmask",
    "htable_expire_ms",
    "htable_max",
    "htable_gcinterval_ms",
    "action",
    "block_for",
    "iptables",
];

struct Ctx<'a> {
    src: &'a SourceFile,
    idx: &'a YamlIndex,
    at: String,
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn span(&self, key: &str) -> Option<Range<usize>> {
        self.idx
            .value(&format!("{}.{key}", self.at))
            .or_else(|| self.idx.value(&self.at))
    }

    fn error(&mut self, key: &str, msg: String, hint: &str) {
        self.error_at(self.span(key), msg, hint);
    }

    fn error_at(&mut self, span: Option<Range<usize>>, msg: String, hint: &str) {
        let d = Diagnostic::error(msg)
            .with_code("rate-limit")
            .with_hint(hint);
        self.diags.push(match span {
            Some(s) => d.at_span(self.src, s),
            None => d.in_file(self.src.name()),
        });
    }

    fn rate_error(&mut self, key: &str, e: RateError) {
        self.error(key, e.message, &e.hint);
    }

    /// A whole number at `key`.
    fn uint(&mut self, m: &serde_json::Map<String, Value>, key: &str, max: u64) -> Option<u64> {
        let v = m.get(key)?;
        match v.as_u64().filter(|n| *n <= max) {
            Some(n) => Some(n),
            None => {
                let hint = format!("write a whole number from 0 to {max}, without quotes or units");
                self.error(
                    key,
                    format!("{key} must be a whole number from 0 to {max}, not {v}"),
                    &hint,
                );
                None
            }
        }
    }

    fn string<'m>(&mut self, m: &'m serde_json::Map<String, Value>, key: &str) -> Option<&'m str> {
        let v = m.get(key)?;
        match v.as_str() {
            Some(s) => Some(s),
            None => {
                self.error(
                    key,
                    format!("{key} must be a string, not {v}"),
                    "quote the value",
                );
                None
            }
        }
    }
}

/// The part `at` of the string `text` whose YAML value sits at `value`: exact when the string
/// appears as written (one line, no escapes), else the whole value.
fn within(src: &SourceFile, value: Range<usize>, text: &str, at: Range<usize>) -> Range<usize> {
    let raw = src.text().get(value.clone()).unwrap_or("");
    match raw.find(text) {
        Some(off) => value.start + off + at.start..value.start + off + at.end,
        None => value,
    }
}

/// `90s`, `30m`, `1h`, `1d`, `500ms`, or a number of seconds, in ms (at least 1 ms).
fn parse_duration_ms(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return n.checked_mul(1000).filter(|ms| *ms > 0);
    }
    let s = v.as_str()?.trim();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..end].parse().ok()?;
    let mult = match s[end..].trim() {
        "" | "s" | "sec" => 1000,
        "ms" => 1,
        "m" | "min" => 60_000,
        "h" | "hour" => 3_600_000,
        "d" | "day" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|ms| *ms > 0)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Loads `rate_limits:` entries (raw YAML values) with located errors; `vars` resolves the
/// headers' variables.
pub(crate) fn load(
    raw: &[Value],
    src: &SourceFile,
    idx: &YamlIndex,
    vars: &Variables,
    diags: &mut Vec<Diagnostic>,
) -> Vec<RateLimit> {
    let mut out: Vec<RateLimit> = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let mut cx = Ctx {
            src,
            idx,
            at: format!("rate_limits[{i}]"),
            diags,
        };
        let Some(m) = v.as_object() else {
            let span = idx.value(&cx.at);
            cx.error_at(
                span,
                "a rate_limits entry must be a mapping".into(),
                "write '- name: ...' with match, rate and the other keys, or '- iptables: \"...\"'",
            );
            continue;
        };
        let line = idx.value(&cx.at).map(|s| src.location(s).line).unwrap_or(0);
        let origin = format!("{}:{line}", src.name());
        if let Some(rl) = entry(&mut cx, m, i, origin, vars) {
            if let Some(first) = out.iter().find(|o| o.config.name == rl.config.name) {
                if first.config != rl.config {
                    let span = cx.span("name").or_else(|| cx.span("iptables"));
                    cx.diags.push(
                        Diagnostic::warning(format!(
                            "rate limit table '{}' is already set up at {}: this entry shares its buckets, and the table keeps that entry's rate, burst, mode, masks and sizes",
                            rl.config.name, first.origin
                        ))
                        .with_code("rate-limit-shared")
                        .with_hint("give the entry its own name for its own buckets (as iptables: rules sharing a --hashlimit-name share the table made by the first)")
                        .at_span(src, span.unwrap_or(0..0)),
                    );
                }
            }
            out.push(rl);
        }
    }
    out
}

fn entry(
    cx: &mut Ctx<'_>,
    m: &serde_json::Map<String, Value>,
    i: usize,
    origin: String,
    vars: &Variables,
) -> Option<RateLimit> {
    let n_errors = cx.diags.len();
    for k in m.keys().filter(|k| !RATE_LIMIT_KEYS.contains(&k.as_str())) {
        let list = RATE_LIMIT_KEYS.join(", ");
        let hint = match sekisho_diag::suggest(k, RATE_LIMIT_KEYS.iter().copied()) {
            Some(s) => format!("did you mean '{s}'? expected one of: {list}"),
            None => format!("expected one of: {list}"),
        };
        let span = cx.idx.key(&format!("{}.{k}", cx.at));
        let d = Diagnostic::error(format!("unknown key '{k}' in {}", cx.at))
            .with_code("unknown-key")
            .with_hint(hint);
        cx.diags.push(match span {
            Some(s) => d.at_span(cx.src, s),
            None => d.in_file(cx.src.name()),
        });
    }
    let (config, header, count, action, block_for_ms) = if let Some(ipt) = m.get("iptables") {
        let Some(text) = ipt.as_str() else {
            cx.error(
                "iptables",
                "iptables must be a string".into(),
                "quote the iptables-save line",
            );
            return None;
        };
        if let Some(k) = m.keys().find(|k| *k != "iptables") {
            let span = cx.idx.key(&format!("{}.{k}", cx.at));
            cx.error_at(
                span,
                format!("'{k}' cannot be combined with iptables:"),
                "the iptables line sets everything; remove this key, or write the limit with name, match, rate, ... instead",
            );
            return None;
        }
        let fallback = format!("limit{i}");
        match sekisho_ratelimit::import(text, &fallback) {
            Ok(imp) => {
                for (w, at) in &imp.warnings {
                    let d = Diagnostic::warning(w.clone())
                        .with_code("rate-limit-import")
                        .with_hint("write the limit with 'action:' to choose what over-limit traffic gets, and silence this warning");
                    let span = cx
                        .span("iptables")
                        .map(|s| within(cx.src, s, text, at.clone()));
                    cx.diags.push(match span {
                        Some(s) => d.at_span(cx.src, s),
                        None => d.in_file(cx.src.name()),
                    });
                }
                let action = match imp.action {
                    sekisho_ratelimit::ImportAction::Drop => LimitAction::Drop,
                    sekisho_ratelimit::ImportAction::Reject => LimitAction::Reject,
                    sekisho_ratelimit::ImportAction::Alert => LimitAction::Alert,
                };
                let count = if imp.new_flows {
                    Count::NewFlows
                } else if imp.config.rate.is_bytes() {
                    Count::Bytes
                } else {
                    Count::Packets
                };
                (imp.config, imp.header, count, action, None)
            }
            Err(e) => {
                let span = cx
                    .span("iptables")
                    .map(|s| within(cx.src, s, text, e.span.clone()));
                cx.error_at(span, e.message, &e.hint);
                return None;
            }
        }
    } else {
        let name = match cx.string(m, "name") {
            Some(n) if valid_name(n) => n.to_string(),
            Some(n) => {
                cx.error(
                    "name",
                    format!("bad rate limit name '{n}'"),
                    "1 to 64 letters, digits, '_', '-' or '.' (it names the table file DIR/ratelimit/NAME)",
                );
                return None;
            }
            None => {
                if !m.contains_key("name") {
                    cx.error(
                        "name",
                        format!("missing key 'name' in {}", cx.at),
                        "add 'name: ...' (the table name), or use '- iptables: \"...\"'",
                    );
                }
                return None;
            }
        };
        let Some(header) = cx.string(m, "match").map(str::to_string) else {
            if !m.contains_key("match") {
                cx.error(
                    "match",
                    format!("missing key 'match' in {}", cx.at),
                    "add a rule header, e.g. match: \"tcp any any -> $HOME_NET 25\"",
                );
            }
            return None;
        };
        let count = match cx.string(m, "count") {
            None => Count::NewFlows,
            Some("new_flows") => Count::NewFlows,
            Some("packets") => Count::Packets,
            Some("bytes") => Count::Bytes,
            Some(c) => match sekisho_engine::app::APP_EVENTS.iter().find(|e| e.0 == c) {
                Some(e) => Count::AppEvent(e.0),
                None => {
                    let events: Vec<&str> = sekisho_engine::app::APP_EVENTS
                        .iter()
                        .map(|e| e.0)
                        .collect();
                    let hint = format!(
                        "count new_flows (first packets of flows, like --state NEW), packets, bytes, or an app event: {}",
                        events.join(", ")
                    );
                    cx.error("count", format!("unknown count '{c}'"), &hint);
                    Count::NewFlows
                }
            },
        };
        let rate_text = match m.get("rate") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(v) => {
                cx.error(
                    "rate",
                    format!("rate must be a string like 2/hour, not {v}"),
                    "write e.g. rate: 2/hour",
                );
                None
            }
            None => {
                cx.error(
                    "rate",
                    format!("missing key 'rate' in {}", cx.at),
                    "add e.g. 'rate: 2/hour' (iptables spellings: 2/h, 100/sec, 512kb/s)",
                );
                None
            }
        };
        let rate = match rate_text.as_deref().map(Rate::parse) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                cx.rate_error("rate", e);
                return None;
            }
            None => return None,
        };
        if matches!(count, Count::AppEvent(_)) && rate.is_bytes() {
            cx.error(
                "rate",
                format!("an app event limit counts events, not bytes: '{rate}'"),
                "write an event rate such as 1/hour or 5/minute",
            );
        } else if !matches!(count, Count::AppEvent(_)) && (count == Count::Bytes) != rate.is_bytes()
        {
            let (msg, hint) = if rate.is_bytes() {
                (
                    format!("rate '{rate}' is in bytes but count is {}", count.as_str()),
                    "use count: bytes with a byte rate, or a packet rate like 100/sec",
                )
            } else {
                (
                    format!("count: bytes needs a byte rate, not '{rate}'"),
                    "write the rate as 512kb/s, 1mb/s or 1000b/s",
                )
            };
            cx.error("rate", msg, hint);
        }
        let mut config = Config::new(name, rate);
        if let Some(b) = m.get("burst") {
            let burst = match (b, rate.is_bytes()) {
                (Value::Number(n), _) => n.as_u64(),
                (Value::String(s), true) => sekisho_ratelimit::parse_bytes(s).ok(),
                _ => None,
            };
            match burst {
                Some(b) => {
                    config.burst = b;
                    config.burst_given = true;
                    config.expire_ms = rate.default_expire_ms(true);
                }
                None => cx.error(
                    "burst",
                    format!("bad burst {b}"),
                    if rate.is_bytes() {
                        "a byte amount: 1mb, 512kb, 100000"
                    } else {
                        "a whole number of packets, 1 to 10000"
                    },
                ),
            }
        }
        match m.get("mode") {
            None => {}
            Some(Value::Array(items)) => {
                for (j, it) in items.iter().enumerate() {
                    let r = it
                        .as_str()
                        .ok_or_else(|| RateError {
                            message: format!("bad key field {it}"),
                            hint: "use srcip, srcport, dstip or dstport".into(),
                        })
                        .and_then(|w| config.fields.add(w));
                    if let Err(e) = r {
                        let span = cx
                            .idx
                            .value(&format!("{}.mode[{j}]", cx.at))
                            .or_else(|| cx.span("mode"));
                        cx.error_at(span, e.message, &e.hint);
                    }
                }
            }
            Some(Value::String(s)) => match KeyFields::parse_list(s) {
                Ok(f) => config.fields = f,
                Err(e) => cx.rate_error("mode", e),
            },
            Some(v) => cx.error(
                "mode",
                format!("mode must be a list, not {v}"),
                "write e.g. mode: [srcip] (an empty list is one bucket for all)",
            ),
        }
        config.srcmask = cx.uint(m, "srcmask", 128).map(|v| v as u8);
        config.dstmask = cx.uint(m, "dstmask", 128).map(|v| v as u8);
        if let Some(e) = cx.uint(m, "htable_expire_ms", u64::from(u32::MAX)) {
            config.expire_ms = e;
        }
        if let Some(n) = cx.uint(m, "htable_max", sekisho_ratelimit::MAX_MAX as u64) {
            config.max = n as usize;
        }
        if let Some(n) = cx.uint(m, "htable_gcinterval_ms", u64::from(u32::MAX)) {
            config.gc_interval_ms = n;
        }
        let action = match cx.string(m, "action") {
            None | Some("drop") => LimitAction::Drop,
            Some("reject") => LimitAction::Reject,
            Some("alert") => LimitAction::Alert,
            Some(a) => {
                cx.error(
                    "action",
                    format!("unknown action '{a}'"),
                    "what over-limit traffic gets: drop, reject or alert",
                );
                LimitAction::Drop
            }
        };
        let block_for_ms = match m.get("block_for") {
            None => None,
            Some(_) if !matches!(count, Count::AppEvent(_)) => {
                cx.error(
                    "block_for",
                    "block_for needs an app event count".into(),
                    "block_for applies to count: smtp_auth_failure or smtp_rcpt_rejected; a packet limit acts on over-limit packets only",
                );
                None
            }
            Some(v) => match parse_duration_ms(v) {
                Some(ms) => Some(ms),
                None => {
                    cx.error(
                        "block_for",
                        format!("bad duration {v}"),
                        "write a duration like 90s, 30m, 1h or 1d (a plain number is seconds)",
                    );
                    None
                }
            },
        };
        if let Err(e) = config.validate() {
            let key = if e.message.contains("burst") {
                "burst"
            } else if e.message.contains("mask") {
                if e.message.starts_with("dstmask") {
                    "dstmask"
                } else {
                    "srcmask"
                }
            } else if e.message.contains("htable_max") {
                "htable_max"
            } else if e.message.contains("expire") {
                "htable_expire_ms"
            } else {
                "name"
            };
            cx.rate_error(key, e);
        }
        (config, header, count, action, block_for_ms)
    };
    // The header.
    let key = if m.contains_key("iptables") {
        "iptables"
    } else {
        "match"
    };
    let rule = match sekisho_rules::parse_rule(&format!("alert {header} (sid:1;)")) {
        Ok(r) => r,
        Err(d) => {
            cx.error(
                key,
                format!("bad rule header '{header}': {}", d.message),
                "a Suricata rule header: PROTO SRC SPORT -> DST DPORT, e.g. \"tcp any any -> $HOME_NET 25\"",
            );
            return None;
        }
    };
    let proto = match &rule.protocol.kind {
        ProtoKind::Ip | ProtoKind::Ipv4 | ProtoKind::Ipv6 => HeaderProto::Any,
        ProtoKind::Tcp | ProtoKind::TcpPkt => HeaderProto::Ip(6),
        ProtoKind::Udp => HeaderProto::Ip(17),
        ProtoKind::Icmp | ProtoKind::Icmpv4 | ProtoKind::Icmpv6 => HeaderProto::Icmp,
        ProtoKind::Sctp => HeaderProto::Ip(132),
        // An app event is only ever raised on a flow of its protocol.
        ProtoKind::App(p)
            if matches!(count, Count::AppEvent(e) if sekisho_engine::app::APP_EVENTS
                .iter()
                .any(|x| x.0 == e && x.1.as_str() == p.as_str())) =>
        {
            HeaderProto::Ip(6)
        }
        k => {
            cx.error(
                key,
                format!("protocol '{}' cannot be rate limited by packets", k.as_str()),
                "use ip, tcp, udp or icmp with the service's ports (the app-layer protocol is not known at a flow's first packet)",
            );
            return None;
        }
    };
    if rule.protocol.hook.is_some() {
        cx.error(
            key,
            "a rate limit header has no hook".into(),
            "remove the ':hook' part",
        );
        return None;
    }
    let resolved = (
        vars.resolve_address(&rule.src),
        vars.resolve_port(&rule.src_port),
        vars.resolve_address(&rule.dst),
        vars.resolve_port(&rule.dst_port),
    );
    let (Ok(src), Ok(src_port), Ok(dst), Ok(dst_port)) = resolved else {
        let why = [
            resolved.0.as_ref().err(),
            resolved.1.as_ref().err(),
            resolved.2.as_ref().err(),
            resolved.3.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .map(|e| e.to_string())
        .next()
        .unwrap_or_default();
        cx.error(
            key,
            format!("rule header '{header}': {why}"),
            "define the variable under variables:, or write the addresses and ports",
        );
        return None;
    };
    if cx.diags[n_errors..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(RateLimit {
        config,
        header,
        count,
        action,
        block_for_ms,
        origin,
        proto,
        src,
        src_port,
        dst,
        dst_port,
        both_ways: rule.direction == Direction::Both,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LoadOptions, Policy};

    fn check(yaml: &str) -> crate::Checked {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("policy.yaml");
        std::fs::write(&p, yaml).unwrap();
        Policy::check_file(&p, &LoadOptions::default())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const ISSUE: &str = r#"variables:
  HOME_NET: [10.0.0.0/8]
rate_limits:
  - name: smtp_limit
    match: "tcp any any -> $HOME_NET 25"
    count: new_flows
    rate: 2/hour
    burst: 2
    mode: [srcip]
    srcmask: 32
    htable_expire_ms: 3600000
    htable_max: 65536
    action: drop
  - iptables: "-A INPUT -p tcp --dport 25 -m state --state NEW -m hashlimit --hashlimit-name smtp_limit2 --hashlimit 2/h --hashlimit-burst 2 --hashlimit-mode srcip --hashlimit-htable-expire 3600000 -j ACCEPT"
"#;

    #[test]
    fn the_issue_keys_load_typed() {
        let c = check(ISSUE);
        let errors: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let rl = &c.policy.rate_limits;
        assert_eq!(rl.len(), 2);
        let a = &rl[0];
        assert_eq!(a.config.name, "smtp_limit");
        assert_eq!(
            (a.config.cost(), a.config.credit_cap()),
            (57_600_000, 115_200_000)
        );
        assert_eq!(a.config.expire_ms, 3_600_000);
        assert_eq!(a.config.max, 65_536);
        assert_eq!(a.config.srcmask, Some(32));
        assert!(a.config.fields.srcip);
        assert_eq!((a.count, a.action), (Count::NewFlows, LimitAction::Drop));
        assert!(a.matches(6, ip("203.0.113.9"), 40000, ip("10.1.2.3"), 25));
        assert!(!a.matches(6, ip("203.0.113.9"), 40000, ip("192.168.1.1"), 25));
        assert!(!a.matches(17, ip("203.0.113.9"), 40000, ip("10.1.2.3"), 25));
        assert!(!a.matches(6, ip("203.0.113.9"), 40000, ip("10.1.2.3"), 587));
        let b = &rl[1];
        assert_eq!(b.config.cost(), a.config.cost());
        assert_eq!(b.config.credit_cap(), a.config.credit_cap());
        assert_eq!(b.header, "tcp any any -> any 25");
        assert_eq!((b.count, b.action), (Count::NewFlows, LimitAction::Drop));
        // The -j ACCEPT import is a warning, located on the iptables line.
        let w: Vec<_> = c
            .diagnostics
            .iter()
            .filter(|d| d.code.as_deref() == Some("rate-limit-import"))
            .collect();
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("-j ACCEPT"));
        let loc = w[0].location.as_ref().unwrap();
        assert_eq!((loc.line, loc.len), (14, 9), "underlines '-j ACCEPT'");
    }

    #[test]
    fn bad_values_are_located_with_hints() {
        let cases: &[(&str, &str, u32, u32, &str)] = &[
            ("rate: 2/fortnight", "unknown unit", 5, 11, "N/hour"),
            ("rate: 0/h", "at least 1", 5, 11, "N/hour"),
            ("burst: 0", "burst 0", 5, 12, "1 to 10000"),
            ("srcmask: 200", "srcmask", 5, 14, "0 to 128"),
            (
                "action: deny",
                "unknown action 'deny'",
                5,
                13,
                "drop, reject or alert",
            ),
            ("count: flows", "unknown count", 5, 12, "new_flows"),
            ("htable_max: 0", "htable_max 0", 5, 17, "1 to 1048576"),
            (
                "mode: [srcip, port]",
                "unknown key field 'port'",
                5,
                19,
                "srcport",
            ),
            ("rat: 2/h", "unknown key 'rat'", 5, 5, "did you mean 'rate'"),
        ];
        for (line, msg, l, col, hint) in cases {
            let yaml = format!(
                "rate_limits:\n  - name: t\n    match: \"tcp any any -> any 25\"\n    rate: 2/h\n    {line}\n"
            )
            .replace("    rate: 2/h\n    rat", "    rate: 2/h\n    rat");
            let yaml = if line.starts_with("rate:") {
                yaml.replacen("    rate: 2/h\n", "", 1).replacen(
                    &format!("    {line}\n"),
                    &format!("    x: 1\n    {line}\n"),
                    1,
                )
            } else {
                yaml
            };
            let c = check(&yaml);
            let d = c
                .diagnostics
                .iter()
                .find(|d| d.is_error() && d.message.contains(msg))
                .unwrap_or_else(|| panic!("{line}: no '{msg}' in {:?}", c.diagnostics));
            let loc = d.location.as_ref().expect("located");
            if !line.starts_with("rate:") {
                assert_eq!((loc.line, loc.column), (*l, *col), "{line}: {}", d.render());
            }
            assert!(
                d.hint.as_deref().unwrap_or("").contains(hint),
                "{line}: {}",
                d.render()
            );
            assert!(
                c.policy.rate_limits.is_empty(),
                "{line}: an invalid entry is not kept"
            );
        }
        // A bad header and an undefined variable.
        let c = check(
            "rate_limits:\n  - name: t\n    match: \"tcp any any -> any 99999\"\n    rate: 2/h\n",
        );
        assert!(c
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.message.contains("bad rule header")));
        let c = check(
            "rate_limits:\n  - name: t\n    match: \"tcp any any -> $NOPE 25\"\n    rate: 2/h\n",
        );
        let d = c.diagnostics.iter().find(|d| d.is_error()).unwrap();
        assert!(d.message.contains("NOPE"), "{}", d.render());
        assert_eq!(d.location.as_ref().unwrap().line, 3);
        let c = check(
            "rate_limits:\n  - name: t\n    match: \"smtp any any -> any 25\"\n    rate: 2/h\n",
        );
        assert!(c
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.message.contains("'smtp'")));
        // The iptables form points at the word in the line.
        let c = check("rate_limits:\n  - iptables: \"-A INPUT -m hashlimit --hashlimit-upto 2/fortnight --hashlimit-name a -j ACCEPT\"\n");
        let d = c.diagnostics.iter().find(|d| d.is_error()).unwrap();
        let loc = d.location.as_ref().unwrap();
        assert_eq!(
            (loc.line, loc.column, loc.len),
            (2, 55, 11),
            "{}",
            d.render()
        );
    }

    #[test]
    fn the_brute_force_guard_keys() {
        let c = check("variables:\n  HOME_NET: [10.0.0.0/8]\nrate_limits:\n  - name: smtp_auth_guard\n    match: \"smtp any any -> $HOME_NET [25,465,587]\"\n    count: smtp_auth_failure\n    rate: 1/hour\n    burst: 3\n    mode: [srcip]\n    block_for: 1h\n    action: drop\n");
        assert!(c.is_valid(), "{:?}", c.diagnostics);
        let g = &c.policy.rate_limits[0];
        assert_eq!(g.count, Count::AppEvent("smtp_auth_failure"));
        assert_eq!(g.block_for_ms, Some(3_600_000));
        assert!(g.matches(6, ip("198.51.100.9"), 40000, ip("10.0.0.25"), 587));
        assert!(!g.matches(6, ip("198.51.100.9"), 40000, ip("10.0.0.25"), 110));
        for (bad, msg) in [
            ("block_for: 1 fortnight", "bad duration"),
            ("rate: 1kb/s", "not bytes"),
        ] {
            let c = check(&format!("rate_limits:\n  - name: g\n    match: \"smtp any any -> any 25\"\n    count: smtp_rcpt_rejected\n    rate: 1/hour\n    {bad}\n").replacen("    rate: 1/hour\n    rate:", "    rate:", 1));
            assert!(
                c.diagnostics
                    .iter()
                    .any(|d| d.is_error() && d.message.contains(msg)),
                "{bad}: {:?}",
                c.diagnostics
            );
        }
        // block_for belongs to app-event limits; smtp headers to app-event counts.
        let c = check("rate_limits:\n  - name: g\n    match: \"tcp any any -> any 25\"\n    rate: 1/hour\n    block_for: 1h\n");
        assert!(c
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.message.contains("block_for needs")));
        let c = check("rate_limits:\n  - name: g\n    match: \"tls any any -> any 443\"\n    count: smtp_auth_failure\n    rate: 1/hour\n");
        assert!(!c.is_valid());
    }

    #[test]
    fn shared_names_warn_when_configs_differ() {
        let c = check("rate_limits:\n  - name: t\n    match: \"tcp any any -> any 25\"\n    rate: 2/h\n  - name: t\n    match: \"tcp any any -> any 587\"\n    rate: 3/h\n");
        assert!(c.is_valid());
        assert!(c
            .diagnostics
            .iter()
            .any(|d| d.code.as_deref() == Some("rate-limit-shared")));
        assert_eq!(c.policy.rate_limits.len(), 2);
    }
}
