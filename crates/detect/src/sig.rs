//! One compiled rule ([`Sig`]) and the compiler from the rule AST.
//!
//! A rule compiles into a header test (protocol, addresses, ports with variables resolved,
//! direction), flow conditions (`flow`, `flowbits`, `app-layer-protocol`, `dsize`, `flags`)
//! and payload groups, one per buffer occurrence (see [`crate::payload::PayloadMatcher`]).
//! A rule using anything the engine cannot evaluate is not loaded; the compiler says which
//! keyword, once, so nothing is silently ignored.

use std::net::IpAddr;

use sekisho_engine::app::{AppProto, BufferId, TxRef};
use sekisho_rules::{
    ActionKind, ActionScope, AddressExpr, BitsCmd, Buffer, Direction as RuleDirection, Flow,
    FlowDir, FlowState, FlowStream, Flowbits, IpSet, PortExpr, PortSet, ProtoKind, Rule,
    RuleOption, SizeCmp, TcpFlags, Variables,
};

use crate::payload::{MatchScratch, PayloadMatcher};

/// Which buffer a payload group inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufKind {
    /// Packet payload; for TCP the stream bytes this packet released.
    Payload,
    /// A buffer an app-layer protocol fills from its transactions, by the id the protocol
    /// registry gave its keyword.
    App(BufferId),
}

impl BufKind {
    /// Number of kinds (for per-kind tables): the payload plus every registered buffer.
    pub fn count() -> usize {
        1 + BufferId::count()
    }

    /// Index into per-kind tables, `0..count()`.
    pub fn index(self) -> usize {
        match self {
            BufKind::Payload => 0,
            BufKind::App(b) => 1 + b.index(),
        }
    }

    /// The keyword that selects it (`pkt_data` for the payload).
    pub fn as_str(self) -> &'static str {
        match self {
            BufKind::Payload => "pkt_data",
            BufKind::App(b) => b.name(),
        }
    }

    /// True for the app-layer transaction buffers.
    pub fn is_app(self) -> bool {
        matches!(self, BufKind::App(_))
    }
}

/// A payload group: the keywords following one buffer selection.
pub struct Group {
    /// The buffer.
    pub kind: BufKind,
    /// The compiled keywords.
    pub matcher: PayloadMatcher,
    /// Short text of the group's first content, for `--explain`.
    pub label: String,
}

/// What the protocol field (and implied protocol of app buffers) requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoReq {
    /// `ip`: any packet.
    Any,
    /// A transport protocol number (6 TCP, 17 UDP); ICMP is [`ProtoReq::Icmp`].
    Transport(u8),
    /// `icmp`: ICMPv4 or ICMPv6.
    Icmp,
    /// An app-layer protocol: the flow's detected protocol must be this one.
    App(AppProto),
}

/// How a match applies to the flow (Suricata's signature types, suricata-rules.md §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigKind {
    /// Header only on ip/tcp/udp/icmp without flow keywords: evaluated on the first packet of
    /// each direction; its pass/drop applies to the flow.
    IpOnly,
    /// Packet keywords only (`dsize`, `flags`, `tcp-pkt`, `flow:no_stream`): applies to the packet.
    Packet,
    /// App-layer protocol in the header and no buffers: applies to the flow.
    App,
    /// Uses app transaction buffers: applies to the flow, alerts once per transaction.
    AppTx,
    /// Payload/stream content on a flow: applies to the flow (stream match).
    Stream,
    /// Protocol-detection-only: ip/tcp/udp header whose only condition is
    /// `app-layer-protocol` (with at most a `flow` direction): evaluated once per direction,
    /// when the protocol became known; applies to the flow (suricata-verify
    /// bug-4394-pdonly-drop).
    PdOnly,
}

impl SigKind {
    /// True when pass/drop of such a rule applies to the whole flow by default.
    pub fn flow_scoped(self) -> bool {
        self != SigKind::Packet
    }

    /// Name used by `--explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            SigKind::IpOnly => "ip-only",
            SigKind::Packet => "packet",
            SigKind::App => "app-layer",
            SigKind::AppTx => "app-tx",
            SigKind::Stream => "stream",
            SigKind::PdOnly => "protocol-detection-only",
        }
    }
}

/// `app-layer-protocol` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppProtoCond {
    /// `!proto`.
    pub negated: bool,
    /// The protocol; `Unknown` for `unknown`, `Failed` for `failed`.
    pub proto: AppProto,
}

/// One compiled rule.
pub struct Sig {
    /// Position in evaluation order (0 = evaluated first).
    pub order: u32,
    /// `gid`.
    pub gid: u64,
    /// `sid`.
    pub sid: u64,
    /// `rev`.
    pub rev: u64,
    /// `msg` (`""` when absent).
    pub msg: String,
    /// Alert category: the classtype name, `""` without one.
    pub category: String,
    /// Alert severity: `priority`, else 3.
    pub severity: u8,
    /// Primary action.
    pub action: ActionKind,
    /// Explicit scope, if written.
    pub scope: Option<ActionScope>,
    /// `noalert` / `flowbits:noalert`.
    pub noalert: bool,
    /// `alert` keyword (log a pass).
    pub force_alert: bool,
    /// Rule group name.
    pub group: String,
    /// 1-based line in its file.
    pub line: u32,
    /// Protocol requirement.
    pub proto: ProtoReq,
    /// Source addresses.
    pub src: IpSet,
    /// Destination addresses.
    pub dst: IpSet,
    /// Source ports (None = any or portless).
    pub sport: Option<PortSet>,
    /// Destination ports (None = any).
    pub dport: Option<PortSet>,
    /// `<>`: also match with source and destination swapped.
    pub bidir: bool,
    /// `flow` options.
    pub flow: Flow,
    /// `flowbits` conditions (isset/isnotset), names as bit ids, OR-ed inside one entry.
    pub bits_cond: Vec<(BitsCmd, Vec<u32>)>,
    /// `flowbits` actions (set/unset/toggle), run when the rule matches.
    pub bits_act: Vec<(BitsCmd, Vec<u32>)>,
    /// `app-layer-protocol` conditions.
    pub app_cond: Vec<AppProtoCond>,
    /// `dsize`.
    pub dsize: Option<SizeCmp>,
    /// `itype` / `icode`: (true for the type, false for the code, comparison). A packet
    /// that is not ICMP or ICMPv6 never matches.
    pub icmp: Vec<(bool, SizeCmp)>,
    /// `flags`.
    pub flags: Option<TcpFlags>,
    /// Payload groups in rule order.
    pub groups: Vec<Group>,
    /// Signature type.
    pub kind: SigKind,
    /// `threshold` / `detection_filter` (or a threshold.config `threshold` replacing it):
    /// which matches alert.
    pub threshold: Option<crate::threshold::Spec>,
    /// threshold.config `suppress` lines for this rule: matching alerts are not logged.
    pub suppress: Vec<crate::threshold::Suppress>,
    /// threshold.config `rate_filter` for this rule.
    pub rate_filter: Option<crate::threshold::RateFilter>,
    /// Conditions on the transaction's state rather than a buffer (`ssl_state`,
    /// `tls.version`, `ssl_version`); they make the rule an app-tx rule.
    pub tx_conds: Vec<TxCond>,
}

/// A condition on a transaction that is not a buffer match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxCond {
    /// `ssl_state`: true when one listed state holds (or, negated, does not): Suricata's
    /// `(flags & state) ^ mask`. States are cumulative here (Suricata: the states the
    /// current record set), which differs only for rules that alert more than once per
    /// transaction.
    State(Vec<(bool, String)>),
    /// `tls.version` / `ssl_version`: the session's version is one of these (negated: none
    /// of these).
    Version {
        /// `ssl_version:!…`: none of the versions.
        negated: bool,
        /// Versions as on the wire (`0x0303` = TLS 1.2).
        versions: Vec<u16>,
    },
    /// `urilen`: the length of a buffer (`http.uri`, or `http.uri.raw` with `,raw`).
    Len {
        /// The buffer measured.
        buf: BufferId,
        /// The comparison.
        cmp: SizeCmp,
    },
    /// An integer field of the transaction (`dns.opcode`, `dns.rcode`, `dns.rrtype`):
    /// true when one instance satisfies the comparison (Suricata's unsigned-integer
    /// keywords).
    Uint {
        /// The keyword, which is also the field's name on [`TxRef::uint`].
        keyword: &'static str,
        /// The protocol whose transactions carry the field.
        proto: AppProto,
        /// The comparison.
        cmp: SizeCmp,
        /// `!N-M`: outside the range (a negated range has no [`SizeCmp`] form).
        negated: bool,
    },
}

/// Reads a value written by name (`nxdomain`, `MX`).
type ByName = fn(&str) -> Option<u64>;

/// The integer keywords sekisho evaluates, with their value range and the names the
/// value may be written as.
const UINT_KEYWORDS: &[(&str, u64, ByName)] = &[
    ("dns.opcode", 15, |_| None),
    ("dns.rcode", 15, dns_rcode_code),
    ("dns.rrtype", 65535, dns_rrtype_code),
];

fn dns_rcode_code(name: &str) -> Option<u64> {
    Some(match name.to_ascii_lowercase().as_str() {
        "noerror" => 0,
        "formerr" => 1,
        "servfail" => 2,
        "nxdomain" => 3,
        "notimp" => 4,
        "refused" => 5,
        "yxdomain" => 6,
        "yxrrset" => 7,
        "nxrrset" => 8,
        "notauth" => 9,
        "notzone" => 10,
        _ => return None,
    })
}

fn dns_rrtype_code(name: &str) -> Option<u64> {
    Some(match name.to_ascii_lowercase().as_str() {
        "a" => 1,
        "ns" => 2,
        "cname" => 5,
        "soa" => 6,
        "null" => 10,
        "ptr" => 12,
        "hinfo" => 13,
        "mx" => 15,
        "txt" => 16,
        "aaaa" => 28,
        "srv" => 33,
        "naptr" => 35,
        "opt" => 41,
        "ds" => 43,
        "sshfp" => 44,
        "rrsig" => 46,
        "nsec" => 47,
        "dnskey" => 48,
        "nsec3" => 50,
        "tlsa" => 52,
        "svcb" => 64,
        "https" => 65,
        "any" => 255,
        "caa" => 257,
        _ => return None,
    })
}

/// Parses a Suricata unsigned-integer value: `N`, `!N`, `<N`, `<=N`, `>N`, `>=N`, `N-M`
/// and `N<>M` (exclusive), `!N-M`; a number may be written by name where the keyword has
/// names (`dns.rcode:nxdomain`). `None` when not understood or above `max`.
fn parse_uint(value: &str, max: u64, by_name: ByName) -> Option<(SizeCmp, bool)> {
    let v = value.trim();
    let num = |x: &str| {
        let x = x.trim();
        x.parse::<u64>()
            .ok()
            .or_else(|| by_name(x))
            .filter(|n| *n <= max)
    };
    let (negated, v) = match v.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, v),
    };
    let range = v
        .split_once("<>")
        .or_else(|| v.split_once('-'))
        .filter(|(a, _)| !a.trim().is_empty());
    if let Some((a, b)) = range {
        let (a, b) = (num(a)?, num(b)?);
        if a >= b {
            return None;
        }
        return Some((SizeCmp::Between(a, b), negated));
    }
    let cmp = if let Some(x) = v.strip_prefix("<=") {
        SizeCmp::Le(num(x)?)
    } else if let Some(x) = v.strip_prefix(">=") {
        SizeCmp::Ge(num(x)?)
    } else if let Some(x) = v.strip_prefix('<') {
        SizeCmp::Lt(num(x)?)
    } else if let Some(x) = v.strip_prefix('>') {
        SizeCmp::Gt(num(x)?)
    } else if let Some(x) = v.strip_prefix('=') {
        SizeCmp::Eq(num(x)?)
    } else {
        SizeCmp::Eq(num(v)?)
    };
    match (negated, cmp) {
        (false, c) => Some((c, false)),
        (true, SizeCmp::Eq(n)) => Some((SizeCmp::Ne(n), false)),
        // `!<N` and the like are not Suricata syntax.
        (true, _) => None,
    }
}

/// The transaction condition an option the rule language leaves unmodelled stands for, when
/// detection evaluates it: `None` for a keyword detection does not evaluate, `Some(Err)` for
/// one it evaluates with a value it does not understand. The compiler and the coverage
/// report both ask this one function, so `sekisho check --coverage` counts as supported
/// exactly what loads.
pub fn tx_cond_option(name: &str, value: Option<&str>) -> Option<Result<TxCond, String>> {
    let v = value.unwrap_or_default();
    match name {
        "tls.version" | "ssl_version" => {
            Some(parse_version(name, v).ok_or_else(|| format!("{name} version not understood")))
        }
        "urilen" => Some(parse_urilen(v).ok_or_else(|| "urilen value not understood".into())),
        _ => {
            let &(keyword, max, by_name) = UINT_KEYWORDS.iter().find(|(k, _, _)| *k == name)?;
            let proto = keyword
                .split('.')
                .next()
                .and_then(AppProto::from_name)
                .unwrap_or(AppProto::Unknown);
            Some(
                parse_uint(v, max, by_name)
                    .map(|(cmp, negated)| TxCond::Uint {
                        keyword,
                        proto,
                        cmp,
                        negated,
                    })
                    .ok_or_else(|| {
                        format!(
                            "{name} value '{v}' not understood (a number up to {max}, `!N`, \
                             `<N`, `>=N`, `N-M`)"
                        )
                    }),
            )
        }
    }
}

/// The keywords of `rule` detection cannot evaluate: options the rule language leaves
/// unmodelled that [`tx_cond_option`] does not take, and buffers no protocol parser fills.
/// What `sekisho check --coverage` counts (other reasons a rule may not load, such as
/// buffers of two protocols, are the compiler's to report).
pub fn unevaluated_keywords(rule: &Rule) -> Vec<String> {
    let mut out: Vec<String> = rule
        .unsupported()
        .filter(|(n, v, _)| !evaluates_option(n, *v))
        .map(|(n, _, _)| n.to_string())
        .collect();
    out.extend(
        rule.buffers()
            .into_iter()
            .filter(|b| buf_kind(*b).is_none())
            .map(|b| b.as_str().to_string()),
    );
    out
}

/// True when detection evaluates the unmodelled option `name` with `value` (see
/// [`tx_cond_option`]); what `--coverage` counts as supported.
pub fn evaluates_option(name: &str, value: Option<&str>) -> bool {
    matches!(tx_cond_option(name, value), Some(Ok(_)))
}

impl TxCond {
    /// The keyword, for `--explain`.
    pub fn keyword(&self) -> &'static str {
        match self {
            TxCond::State(_) => "ssl_state",
            TxCond::Version { .. } => "tls.version",
            TxCond::Len { .. } => "urilen",
            TxCond::Uint { keyword, .. } => keyword,
        }
    }

    /// True when transaction `tx` satisfies the condition.
    pub fn holds(&self, tx: &TxRef<'_>) -> bool {
        match self {
            TxCond::State(states) => states
                .iter()
                .any(|(neg, name)| tx.state_flag(name).is_some_and(|v| v != *neg)),
            TxCond::Version { negated, versions } => match tx.version() {
                None => false,
                Some(v) => versions.contains(&v) != *negated,
            },
            TxCond::Len { buf, cmp } => tx
                .buffer(*buf, 0)
                .is_some_and(|b| size_matches(*cmp, b.len() as u64)),
            TxCond::Uint {
                keyword,
                cmp,
                negated,
                ..
            } => (0..)
                .map_while(|i| tx.uint(keyword, i))
                .any(|v| size_matches(*cmp, v) != *negated),
        }
    }
}

/// Parses `urilen`: `N`, `<N`, `>N`, `<=N`, `>=N`, `N<>M`, optionally `,raw` / `,norm`.
fn parse_urilen(value: &str) -> Option<TxCond> {
    let (v, raw) = match value.rsplit_once(',') {
        Some((v, m)) if m.trim() == "raw" => (v, true),
        Some((v, m)) if m.trim() == "norm" => (v, false),
        Some(_) => return None,
        None => (value, false),
    };
    let v = v.trim();
    let num = |x: &str| x.trim().parse::<u64>().ok();
    let cmp = if let Some((a, b)) = v.split_once("<>") {
        SizeCmp::Between(num(a)?, num(b)?)
    } else if let Some(x) = v.strip_prefix("<=") {
        SizeCmp::Le(num(x)?)
    } else if let Some(x) = v.strip_prefix(">=") {
        SizeCmp::Ge(num(x)?)
    } else if let Some(x) = v.strip_prefix('<') {
        SizeCmp::Lt(num(x)?)
    } else if let Some(x) = v.strip_prefix('>') {
        SizeCmp::Gt(num(x)?)
    } else if let Some(x) = v.strip_prefix('!') {
        SizeCmp::Ne(num(x)?)
    } else {
        SizeCmp::Eq(num(v)?)
    };
    let buf = BufferId::by_name(if raw { "http.uri.raw" } else { "http.uri" })?;
    Some(TxCond::Len { buf, cmp })
}

/// Parses `tls.version` (`1.2`, `1.3`, `0x0303`) and `ssl_version` (`tls1.2,!sslv3`...).
fn parse_version(name: &str, value: &str) -> Option<TxCond> {
    let one = |v: &str| -> Option<u16> {
        Some(match v.trim().to_ascii_lowercase().as_str() {
            "sslv2" => 0x0002,
            "sslv3" | "3.0" => 0x0300,
            "tls1.0" | "tls1" | "1.0" => 0x0301,
            "tls1.1" | "1.1" => 0x0302,
            "tls1.2" | "1.2" => 0x0303,
            "tls1.3" | "1.3" => 0x0304,
            h => u16::from_str_radix(h.strip_prefix("0x")?, 16).ok()?,
        })
    };
    if name == "tls.version" {
        return Some(TxCond::Version {
            negated: false,
            versions: vec![one(value)?],
        });
    }
    // ssl_version: a list; all entries negated or none (Suricata refuses mixing).
    let mut versions = Vec::new();
    let mut negs = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let (neg, v) = match part.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, part),
        };
        versions.push(one(v)?);
        negs.push(neg);
    }
    let negated = negs.first().copied().unwrap_or(false);
    if negs.iter().any(|n| *n != negated) {
        return None;
    }
    Some(TxCond::Version { negated, versions })
}

/// A rule that was not loaded, with the keyword responsible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLoaded {
    /// `gid`.
    pub gid: u64,
    /// `sid`.
    pub sid: u64,
    /// Rule group name.
    pub group: String,
    /// The keyword (or protocol) that cannot be modelled.
    pub keyword: String,
    /// Why.
    pub reason: String,
    /// The rule drops or rejects (or is a firewall-mode rule, whose table fails closed):
    /// leaving it out would let through what it was written to stop, so loading fails
    /// unless the user allows it (`--allow-unsupported`).
    pub blocks: bool,
}

/// Interns flowbit names to small ids.
#[derive(Default)]
pub struct BitNames {
    names: Vec<String>,
}

impl BitNames {
    /// The id of `name`, added when new.
    pub fn id(&mut self, name: &str) -> u32 {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.names.push(name.to_string());
                (self.names.len() - 1) as u32
            }
        }
    }

    /// The id of `name`, if some rule uses it.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }

    /// The name of bit `id`.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", |s| s.as_str())
    }

    /// Number of distinct bits.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no rule uses flowbits.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Who a `reject*` action answers (`None` for every other action).
pub fn reject_to(kind: ActionKind) -> Option<sekisho_engine::RejectTo> {
    use sekisho_engine::RejectTo;
    match kind {
        ActionKind::Reject | ActionKind::RejectSrc => Some(RejectTo::Sender),
        ActionKind::RejectDst => Some(RejectTo::Receiver),
        ActionKind::RejectBoth => Some(RejectTo::Both),
        _ => None,
    }
}

/// The inline verdict of a drop-family action (`drop`, `reject*`) on this packet, and with
/// `flow` on the rest of its flow.
pub fn drop_verdict(kind: ActionKind, flow: bool) -> sekisho_engine::Verdict {
    use sekisho_engine::Verdict;
    match reject_to(kind) {
        Some(to) => Verdict::Reject { to, flow },
        None if flow => Verdict::DropFlow,
        None => Verdict::Drop,
    }
}

/// Maps an app-layer protocol name to the engine's protocol, `None` when sekisho has no
/// detection for it (Suricata's aliases `ssl` and `http1` included).
pub fn app_proto_from_name(name: &str) -> Option<AppProto> {
    let name = match name {
        "ssl" => "tls",
        "http1" => "http",
        n => n,
    };
    AppProto::from_name(name)
}

/// `"the P parser, which app-layer.protocols.P.enabled: no|detection-only turns off"` when
/// protocol `p` is not parsed under `switches`; `None` when it is. The reason text of every
/// rule left out for a switched-off protocol (rule buffers here, firewall hooks too).
pub(crate) fn parser_off(
    p: AppProto,
    switches: &sekisho_engine::ProtocolSwitches,
) -> Option<String> {
    use sekisho_engine::ProtocolMode;
    let how = match switches.mode(p) {
        ProtocolMode::On => return None,
        ProtocolMode::DetectionOnly => "detection-only",
        ProtocolMode::Off => "no",
    };
    let name = p.as_str();
    Some(format!(
        "the {name} parser, which app-layer.protocols.{name}.enabled: {how} turns off"
    ))
}

/// A compiled rule that needs an app-layer protocol the engine was told not to see or not to
/// parse (`app-layer.protocols.<name>.enabled: no` or `detection-only`): it would load and
/// never match, so it is reported as not loaded instead (and, if it drops or rejects, the load
/// fails unless `--allow-unsupported`). Suricata refuses such rules at load as well.
pub(crate) fn protocol_gap(
    sig: &Sig,
    rule: &Rule,
    group: &str,
    switches: &sekisho_engine::ProtocolSwitches,
) -> Option<NotLoaded> {
    // The protocol field (or `app-layer-protocol:P`): no flow is ever labelled P.
    let labelled = match sig.proto {
        ProtoReq::App(p) => Some(p),
        _ => None,
    }
    .into_iter()
    .chain(sig.app_cond.iter().filter(|c| !c.negated).map(|c| c.proto));
    for p in labelled {
        if switches.mode(p) == sekisho_engine::ProtocolMode::Off {
            let name = p.as_str();
            return Some(not_loaded(
                rule,
                group,
                name,
                format!("protocol {name} is disabled (app-layer.protocols.{name}.enabled: no)"),
            ));
        }
    }
    // A buffer or transaction field: only the protocol's parser fills it.
    let needs = sig
        .groups
        .iter()
        .filter_map(|g| match g.kind {
            BufKind::App(b) => Some((b.name(), b.proto())),
            BufKind::Payload => None,
        })
        .chain(sig.tx_conds.iter().map(|c| match c {
            TxCond::State(_) => ("ssl_state", AppProto::Tls),
            TxCond::Version { .. } => ("tls.version", AppProto::Tls),
            TxCond::Len { buf, .. } => ("urilen", buf.proto()),
            TxCond::Uint { keyword, proto, .. } => (*keyword, *proto),
        }));
    needs.into_iter().find_map(|(keyword, p)| {
        let off = parser_off(p, switches)?;
        Some(not_loaded(
            rule,
            group,
            keyword,
            format!("{keyword} is filled by {off}"),
        ))
    })
}

fn not_loaded(
    rule: &Rule,
    group: &str,
    keyword: impl Into<String>,
    reason: impl Into<String>,
) -> NotLoaded {
    NotLoaded {
        gid: rule.gid(),
        sid: rule.sid(),
        group: group.to_string(),
        keyword: keyword.into(),
        reason: reason.into(),
        blocks: !matches!(
            rule.action.kind(),
            ActionKind::Pass | ActionKind::Alert | ActionKind::Config
        ),
    }
}

fn buf_kind(b: Buffer) -> Option<BufKind> {
    match b {
        Buffer::PktData => Some(BufKind::Payload),
        // Every other buffer is whatever the protocol registry registered under its name.
        b => BufferId::by_name(b.as_str()).map(BufKind::App),
    }
}

fn label_of(opts: &[&RuleOption]) -> String {
    for o in opts {
        match o {
            RuleOption::Content(c) => {
                let text: String = c
                    .pattern
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() || b == b' ' {
                            (b as char).to_string()
                        } else {
                            format!("|{b:02X}|")
                        }
                    })
                    .collect();
                let neg = if c.negated { "!" } else { "" };
                let nocase = if c.nocase { " nocase" } else { "" };
                return format!("content:{neg}\"{text}\"{nocase}");
            }
            RuleOption::Pcre(_) => return "pcre".to_string(),
            _ => {}
        }
    }
    String::new()
}

fn resolve_addr(vars: &Variables, e: &AddressExpr) -> Result<IpSet, String> {
    vars.resolve_address(e).map_err(|e| e.to_string())
}

fn resolve_port(vars: &Variables, e: &PortExpr) -> Result<Option<PortSet>, String> {
    if *e == PortExpr::Any {
        return Ok(None);
    }
    vars.resolve_port(e).map(Some).map_err(|e| e.to_string())
}

/// Compiles one rule at evaluation position `order`. `Err` names what cannot be modelled.
pub fn compile_rule(
    rule: &Rule,
    group: &str,
    vars: &Variables,
    order: u32,
    bits: &mut BitNames,
) -> Result<Sig, NotLoaded> {
    let nl = |k: &str, r: &str| not_loaded(rule, group, k, r);
    let action = rule.action.kind();
    match action {
        ActionKind::Accept | ActionKind::Config => {
            return Err(nl(
                action.as_str(),
                "firewall-mode actions are not evaluated by this engine yet",
            ))
        }
        _ => {}
    }
    if rule.protocol.hook.is_some() {
        return Err(nl(
            "hook",
            "explicit protocol hooks (firewall mode) are not evaluated yet",
        ));
    }
    if rule.direction == RuleDirection::Transactional {
        return Err(nl("=>", "transactional rules are not evaluated yet"));
    }
    let mut proto = match &rule.protocol.kind {
        ProtoKind::Ip | ProtoKind::Ipv4 | ProtoKind::Ipv6 | ProtoKind::Pkthdr => ProtoReq::Any,
        ProtoKind::Tcp | ProtoKind::TcpPkt | ProtoKind::TcpStream => ProtoReq::Transport(6),
        ProtoKind::Udp => ProtoReq::Transport(17),
        ProtoKind::Icmp | ProtoKind::Icmpv4 | ProtoKind::Icmpv6 => ProtoReq::Icmp,
        ProtoKind::App(name) => match app_proto_from_name(name) {
            Some(p) if p != AppProto::Failed && p != AppProto::Unknown => ProtoReq::App(p),
            _ => {
                return Err(nl(
                    name,
                    "no protocol detection for this app-layer protocol yet",
                ))
            }
        },
        other => {
            return Err(nl(other.as_str(), "protocol not evaluated by this engine"));
        }
    };
    let src = resolve_addr(vars, &rule.src).map_err(|r| nl("source address", &r))?;
    let dst = resolve_addr(vars, &rule.dst).map_err(|r| nl("destination address", &r))?;
    let sport = resolve_port(vars, &rule.src_port).map_err(|r| nl("source port", &r))?;
    let dport = resolve_port(vars, &rule.dst_port).map_err(|r| nl("destination port", &r))?;

    let mut flow = Flow::default();
    let mut bits_cond = Vec::new();
    let mut bits_act = Vec::new();
    let mut app_cond = Vec::new();
    let mut dsize = None;
    let mut icmp = Vec::new();
    let mut flags = None;
    let mut force_alert = false;
    let mut threshold = None;
    let mut tx_conds: Vec<TxCond> = Vec::new();
    // Legacy content modifiers (`content:"x"; http_uri;`): the group of each buffer.
    let mut legacy_groups: Vec<(Buffer, usize)> = Vec::new();
    // Payload groups: (buffer, options). Keywords before any sticky buffer go to the payload.
    let mut raw_groups: Vec<(BufKind, Vec<&RuleOption>)> = Vec::new();
    let mut current: Option<usize> = None;
    // `current` is a legacy-modifier group: relative keywords (isdataat, pcre /R, byte_*)
    // bind to its last content, a plain content goes back to the payload (`payload_group`).
    let mut cur_legacy = false;
    let mut payload_group: Option<usize> = None;
    for o in &rule.options {
        let opt = &o.node;
        match opt {
            RuleOption::Msg(_)
            | RuleOption::Sid(_)
            | RuleOption::Rev(_)
            | RuleOption::Gid(_)
            | RuleOption::Classtype(_)
            | RuleOption::Priority(_)
            | RuleOption::Reference { .. }
            | RuleOption::Metadata(_)
            | RuleOption::Target(_)
            | RuleOption::Requires(_)
            | RuleOption::NoAlert => {}
            RuleOption::Alert => force_alert = true,
            RuleOption::Flow(f) => {
                if f.frag.is_some() {
                    return Err(nl("flow", "only_frag/no_frag are not evaluated"));
                }
                flow = *f;
            }
            RuleOption::Flowbits(Flowbits::NoAlert) => {}
            RuleOption::Flowbits(Flowbits::Cmd(cmd, names)) => {
                let ids = names.iter().map(|n| bits.id(n)).collect();
                match cmd {
                    BitsCmd::IsSet | BitsCmd::IsNotSet => bits_cond.push((*cmd, ids)),
                    _ => bits_act.push((*cmd, ids)),
                }
            }
            RuleOption::AppLayerProtocol(a) => {
                if let Some(m) = a.mode.as_deref() {
                    if m != "direction" && m != "either" && m != "final" {
                        return Err(nl(
                            "app-layer-protocol",
                            &format!("mode '{m}' is not evaluated"),
                        ));
                    }
                }
                let p = app_proto_from_name(&a.proto).ok_or_else(|| {
                    nl(
                        "app-layer-protocol",
                        &format!("no protocol detection for '{}' yet", a.proto),
                    )
                })?;
                app_cond.push(AppProtoCond {
                    negated: a.negated,
                    proto: p,
                });
            }
            RuleOption::Dsize(d) => dsize = Some(*d),
            RuleOption::Itype(c) => icmp.push((true, *c)),
            RuleOption::Icode(c) => icmp.push((false, *c)),
            RuleOption::Threshold(t) => {
                threshold = Some(crate::threshold::Spec::threshold(
                    t.kind,
                    t.track,
                    t.count,
                    t.seconds,
                    t.multiplier,
                ))
            }
            RuleOption::DetectionFilter(d) => {
                threshold = Some(crate::threshold::Spec::detection_filter(
                    d.track,
                    d.count,
                    d.seconds,
                    d.unique_on,
                ))
            }
            RuleOption::Flags(f) => flags = Some(*f),
            RuleOption::Buffer(b) => {
                let kind = buf_kind(*b)
                    .ok_or_else(|| nl(b.as_str(), "no parser fills this buffer yet"))?;
                raw_groups.push((kind, Vec::new()));
                current = Some(raw_groups.len() - 1);
                cur_legacy = false;
            }
            RuleOption::SslState(states) => tx_conds.push(TxCond::State(states.clone())),
            RuleOption::Unsupported { name, value }
                if tx_cond_option(name, value.as_deref()).is_some() =>
            {
                match tx_cond_option(name, value.as_deref()) {
                    Some(Ok(c)) => tx_conds.push(c),
                    Some(Err(why)) => return Err(nl(name, &why)),
                    None => {}
                }
            }
            RuleOption::Content(c) if c.buffer.is_some() => {
                // A legacy modifier moves this content (and what follows it up to the next
                // content or sticky buffer) into that buffer's group, as Suricata does.
                let b = c.buffer.unwrap_or(Buffer::PktData);
                let kind = buf_kind(b).ok_or_else(|| {
                    nl(
                        b.legacy_modifier().unwrap_or(b.as_str()),
                        "no parser fills this buffer yet",
                    )
                })?;
                let idx = match legacy_groups.iter().find(|(lb, _)| *lb == b) {
                    Some(&(_, i)) => i,
                    None => {
                        raw_groups.push((kind, Vec::new()));
                        let i = raw_groups.len() - 1;
                        legacy_groups.push((b, i));
                        i
                    }
                };
                raw_groups[idx].1.push(opt);
                if !cur_legacy {
                    payload_group = current.filter(|&i| raw_groups[i].0 == BufKind::Payload);
                }
                current = Some(idx);
                cur_legacy = true;
            }
            o if PayloadMatcher::takes(o) => {
                if cur_legacy && matches!(o, RuleOption::Content(_)) {
                    current = payload_group;
                    cur_legacy = false;
                }
                let idx = match current {
                    Some(i) => i,
                    None => {
                        raw_groups.push((BufKind::Payload, Vec::new()));
                        let i = raw_groups.len() - 1;
                        current = Some(i);
                        i
                    }
                };
                raw_groups[idx].1.push(o);
            }
            other => {
                return Err(nl(
                    other.keyword(),
                    "keyword not evaluated by this engine yet",
                ));
            }
        }
    }
    let mut groups = Vec::with_capacity(raw_groups.len());
    for (kind, opts) in &raw_groups {
        let matcher = PayloadMatcher::compile(opts).map_err(|u| nl(&u.keyword, &u.reason))?;
        groups.push(Group {
            kind: *kind,
            label: label_of(opts),
            matcher,
        });
    }
    // App buffers imply their protocol; buffers of two protocols cannot both match.
    let mut tx_proto: Option<(AppProto, &'static str)> = None;
    for g in &groups {
        if let BufKind::App(b) = g.kind {
            match tx_proto {
                Some((p, first)) if p != b.proto() => {
                    return Err(nl(
                        b.name(),
                        &format!("buffers of two protocols ({first} and {})", b.name()),
                    ));
                }
                _ => tx_proto = Some((b.proto(), b.name())),
            }
        }
    }
    for c in &tx_conds {
        let want = match c {
            TxCond::Len { buf, .. } => buf.proto(),
            TxCond::Uint { proto, .. } => *proto,
            _ => AppProto::from_name("tls").unwrap_or(AppProto::Unknown),
        };
        match tx_proto {
            Some((p, first)) if p != want => {
                return Err(nl(
                    c.keyword(),
                    &format!("{} on a rule reading {first}", c.keyword()),
                ));
            }
            _ => tx_proto = Some((want, c.keyword())),
        }
    }
    let has_tx = tx_proto.is_some();
    if let Some((want, name)) = tx_proto {
        match proto {
            ProtoReq::App(p) if p == want => {}
            ProtoReq::Any | ProtoReq::Transport(6) => proto = ProtoReq::App(want),
            _ => {
                return Err(nl(
                    name,
                    &format!("{} buffers on a rule for another protocol", want.as_str()),
                ))
            }
        }
    }
    let has_payload = groups.iter().any(|g| g.kind == BufKind::Payload);
    let packet_only = matches!(rule.protocol.kind, ProtoKind::TcpPkt)
        || flow.stream == Some(FlowStream::NoStream);
    let kind = if has_tx {
        SigKind::AppTx
    } else if !app_cond.is_empty()
        && !has_payload
        && dsize.is_none()
        && icmp.is_empty()
        && flags.is_none()
        && bits_cond.is_empty()
        && flow.state.is_none()
        && flow.stream.is_none()
        && matches!(proto, ProtoReq::Any | ProtoReq::Transport(_))
    {
        SigKind::PdOnly
    } else if dsize.is_some() || flags.is_some() || !icmp.is_empty() {
        // Packet keywords make it a packet rule even with an app protocol in the header
        // (suricata-verify bug-5578: `drop http … dsize:0` drops packets, not the flow).
        SigKind::Packet
    } else if matches!(proto, ProtoReq::App(_)) && !has_payload {
        SigKind::App
    } else if has_payload {
        if packet_only || !matches!(proto, ProtoReq::Transport(6) | ProtoReq::App(_)) {
            SigKind::Packet
        } else {
            SigKind::Stream
        }
    } else if dsize.is_some()
        || flags.is_some()
        || !icmp.is_empty()
        || packet_only
        || flow != Flow::default()
        || !bits_cond.is_empty()
        || !app_cond.is_empty()
        || dst_has_negation(&rule.dst)
    {
        SigKind::Packet
    } else {
        SigKind::IpOnly
    };
    Ok(Sig {
        order,
        gid: rule.gid(),
        sid: rule.sid(),
        rev: rule.rev(),
        msg: rule.msg().unwrap_or("").to_string(),
        category: rule.classtype().unwrap_or("").to_string(),
        severity: rule.priority().unwrap_or(3),
        action,
        scope: rule.action.scope(),
        noalert: rule.is_noalert(),
        force_alert,
        group: group.to_string(),
        line: rule.line,
        proto,
        src,
        dst,
        sport,
        dport,
        bidir: rule.direction == RuleDirection::Both,
        flow,
        bits_cond,
        bits_act,
        app_cond,
        dsize,
        icmp,
        flags,
        groups,
        kind,
        threshold,
        suppress: Vec::new(),
        rate_filter: None,
        tx_conds,
    })
}

/// NFW: an IP-only-looking rule whose destination has a negation is a normal protocol rule.
/// (`flowbits:set` keeps a rule IP-only, as in Suricata: ET's TOR/CIArmy reputation rules.)
fn dst_has_negation(e: &AddressExpr) -> bool {
    match e {
        AddressExpr::Not(_) => true,
        AddressExpr::List(items) => items.iter().any(dst_has_negation),
        _ => false,
    }
}

/// Compares `v` with a `dsize`/`bsize` operator.
pub fn size_matches(cmp: SizeCmp, v: u64) -> bool {
    match cmp {
        SizeCmp::Eq(n) => v == n,
        SizeCmp::Ne(n) => v != n,
        SizeCmp::Lt(n) => v < n,
        SizeCmp::Gt(n) => v > n,
        SizeCmp::Le(n) => v <= n,
        SizeCmp::Ge(n) => v >= n,
        SizeCmp::Between(a, b) => v > a && v < b,
    }
}

/// Suricata's `flags` test on a packet's TCP flags.
pub fn flags_match(f: TcpFlags, pkt: u8) -> bool {
    let pkt = pkt & !f.ignore;
    match f.modifier {
        Some('+') => pkt & f.flags == f.flags,
        Some('*') => pkt & f.flags != 0,
        Some('!') => pkt & f.flags == 0,
        _ => pkt == f.flags,
    }
}

impl Sig {
    /// True when the packet's addresses and ports fit the header in rule direction
    /// (or, for `<>`, swapped).
    pub fn header_matches(&self, src: IpAddr, sp: u16, dst: IpAddr, dp: u16) -> bool {
        let fwd = |s: IpAddr, sp: u16, d: IpAddr, dp: u16| {
            self.src.contains(s)
                && self.dst.contains(d)
                && self.sport.as_ref().is_none_or(|p| p.contains(sp))
                && self.dport.as_ref().is_none_or(|p| p.contains(dp))
        };
        fwd(src, sp, dst, dp) || (self.bidir && fwd(dst, dp, src, sp))
    }

    /// The `flow:` direction requirement, if any.
    pub fn flow_dir(&self) -> Option<FlowDir> {
        self.flow.dir
    }

    /// `flow:established` / `not_established`.
    pub fn flow_state(&self) -> Option<FlowState> {
        self.flow.state
    }

    /// True when every group matches: the payload groups on `payload`, the app buffer
    /// groups on transaction `tx` (a multi-buffer group matches when one instance does; a
    /// missing buffer matches only `absent`). `Err(i)`: group `i` did not match.
    pub fn groups_match(
        &self,
        payload: &[u8],
        tx: Option<&TxRef<'_>>,
        scratch: &mut MatchScratch,
    ) -> Result<(), usize> {
        if let Some(t) = tx {
            if !self.tx_conds.iter().all(|c| c.holds(t)) {
                return Err(self.groups.len());
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            let ok = match g.kind {
                BufKind::Payload => g.matcher.matches(payload, scratch),
                BufKind::App(b) => match tx.and_then(|t| t.buffer(b, 0)) {
                    None => g.matcher.absent().is_some(),
                    Some(first) => {
                        g.matcher.matches(first, scratch)
                            || (b.multi()
                                && tx.is_some_and(|t| {
                                    (1..)
                                        .map_while(|n| t.buffer(b, n))
                                        .any(|x| g.matcher.matches(x, scratch))
                                }))
                    }
                },
            };
            if !ok {
                return Err(i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The parser's list of raw keywords the engine evaluates (which silences its "not
    /// modelled" warning) is exactly what [`super::tx_cond_option`] takes.
    #[test]
    fn evaluated_from_value_list_matches_tx_cond_option() {
        for name in sekisho_rules::known_keywords() {
            let takes = super::tx_cond_option(name, Some("1")).is_some();
            let listed = sekisho_rules::EVALUATED_FROM_VALUE.contains(&name);
            assert_eq!(takes, listed, "{name}");
        }
    }
}
