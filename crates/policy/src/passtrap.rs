//! The pass trap (`sekisho check` warning `pass-trap`): a flow-wide `pass` for an app-layer
//! protocol that blinds other rules to the rest of the flow.
//!
//! A `pass` whose rule type is flow-scoped (app-layer or app-tx rule, no `:packet` scope)
//! passes the whole flow at its first match: no rule inspects any later packet of the flow,
//! in either direction, whatever its place in the rule order (Suricata reference §11). The
//! report behind issue 4 is the canonical case: `pass smtp $HOME_NET any -> any 25` placed
//! *last* in strict order still matched the EHLO packet (the first packet where NFW's
//! Suricata 7 knows the flow is SMTP), so the alert rules *before* it never saw RCPT TO,
//! DATA or QUIT.
//!
//! # The condition
//!
//! Each rule gets a *stage*: how far into a flow of the protocol it needs to look before it
//! can match. 0 is the first packet on which the protocol is known (and, for client-first
//! protocols, the first request: TLS ClientHello, HTTP request, DNS query); later numbers are
//! later messages (SMTP: 1 EHLO, 2 MAIL FROM, 3 RCPT TO, 4 the message; TLS 1 certificates;
//! HTTP 1 response; DNS 1 answer). A rule with raw payload keywords (`content`/`pcre`/`byte_*`
//! on the stream, `dsize`, flowbit conditions, an unmodelled sticky buffer...) has an unknown
//! stage: it may need any packet.
//!
//! A flow-wide pass `P` blinds another rule `R` when their headers overlap (in either
//! orientation, because a flow pass covers both directions; unresolvable or `any` parts
//! overlap everything), `R` inspects the same protocol's flows (same app protocol, one of its
//! buffers, `app-layer-protocol`, or raw payload keywords on the protocol's transport), and:
//!
//! * `P` has a known stage `s` and `R` a known stage `t > s`: `P` passes the flow before the
//!   part `R` looks at arrives, wherever `R` sits in the order;
//! * `P` has a known stage and `R` an unknown one: `R` may need a later packet (the blog's
//!   `content:"RCPT"` rules, which sit *before* the pass);
//! * `P` has an unknown stage (it matches payload we cannot place) and `R` comes after it in
//!   evaluation order: on the packet `P` matches and on every later one `R` is not evaluated.
//!
//! Not a trap: `R` at the same known stage as `P` (`pass tls (tls.sni; ...)` before
//! `drop tls (ssl_state:client_hello)` is the allow-list idiom: both decide on one message),
//! `R` at an earlier stage, and a pass with an unknown stage placed after every rule of its
//! protocol. Passes in generated groups (domain lists) are not reported: the user cannot move
//! them.
//!
//! # The IP-only pass (warning `ip-only-pass`)
//!
//! A `pass` on `ip`/`tcp`/`udp`/`icmp` with nothing but the header (no `flow`, `flowbits`,
//! payload, `dsize`, `flags` or app-layer keyword; only `msg`, `sid` and other metadata) whose
//! destination has no negation is an IP-only rule (NFW reference §6): it is evaluated on the
//! first packet of each direction (for TCP the SYN and the SYN-ACK) and, being flow-scoped,
//! passes the whole flow there. Every rule that inspects payload or the app layer of a flow
//! the pass covers is then shadowed: the rules after it never see a packet of the flow, and for
//! TCP the rules before it never see a data packet either. (For UDP and ICMP the first packet
//! of each direction carries data, so rules before the pass still see it: not reported.) The
//! report's `tcp` variant is the canonical case.

use sekisho_diag::Diagnostic;
use sekisho_rules::{
    ActionKind, ActionScope, AddressExpr, BitsCmd, Buffer, Flowbits, IpSet, PortExpr, PortSet,
    ProtoKind, Rule, RuleOption, Variables,
};

use crate::{EngineProfile, Policy, RuleGroup, RuleOrder};

/// How far into a flow of its protocol a rule must look before it can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The n-th message of the protocol (0 = the packet the protocol is detected on).
    Known(u8),
    /// Raw payload or state the analysis cannot place: possibly any packet.
    Unknown,
}

impl Stage {
    fn max(self, o: Stage) -> Stage {
        match (self, o) {
            (Stage::Known(a), Stage::Known(b)) => Stage::Known(a.max(b)),
            _ => Stage::Unknown,
        }
    }
}

/// One finding: the pass rule (by its position in evaluation order) and the sids it blinds.
pub(crate) struct Trap {
    /// Index into [`Policy::evaluation_order`].
    pub(crate) pass: usize,
    /// The pass rule's sid.
    pub(crate) sid: u64,
    /// The app protocol whose flows it passes.
    pub(crate) proto: String,
    /// sids of the blinded rules, in evaluation order.
    pub(crate) blinded: Vec<u64>,
}

/// Finds every pass trap of `policy` (see the module documentation for the condition).
pub(crate) fn find(policy: &Policy) -> Vec<Trap> {
    let gv = GroupVars::new(policy);
    let order = policy.evaluation_order();
    let headers: Vec<Header> = order
        .iter()
        .map(|(g, r)| Header::of(r, &gv.of(policy, g)))
        .collect();
    let mut out = Vec::new();
    for (pi, (pg, p)) in order.iter().enumerate() {
        if !is_flow_pass(p) || is_generated(pg) {
            continue;
        }
        let Some(proto) = app_proto(p) else { continue };
        let ps = stage(p, &proto);
        let mut blinded = Vec::new();
        for (ri, (_, r)) in order.iter().enumerate() {
            if ri == pi || !headers[pi].overlaps(&headers[ri]) {
                continue;
            }
            let Some(rs) = inspects(r, &proto) else {
                continue;
            };
            let hit = match (ps, rs) {
                (Stage::Known(s), Stage::Known(t)) => t > s,
                (Stage::Known(_), Stage::Unknown) => true,
                (Stage::Unknown, _) => ri > pi,
            };
            if hit {
                blinded.push(r.sid());
            }
        }
        if !blinded.is_empty() {
            out.push(Trap {
                pass: pi,
                sid: p.sid(),
                proto,
                blinded,
            });
        }
    }
    out
}

/// The warning for `trap` (without location).
pub(crate) fn diagnostic(policy: &Policy, trap: &Trap) -> Diagnostic {
    let (label, list) = sid_list(&trap.blinded);
    let first = match (trap.proto.as_str(), policy.engine_profile) {
        ("smtp", EngineProfile::AwsNfw) => {
            "for SMTP that is the EHLO packet under aws-nfw, so RCPT TO, DATA and QUIT are never inspected, neither by the rules after it nor by those before it"
        }
        ("smtp", EngineProfile::Suricata8) => {
            "for SMTP that is the first packet after the 220 banner under suricata-8, so EHLO, RCPT TO, DATA and QUIT are never inspected, neither by the rules after it nor by those before it"
        }
        _ => "no later packet of the flow, in either direction, is inspected by any rule",
    };
    let order = match policy.rule_order {
        RuleOrder::Action => {
            "; under rule_order: action every pass rule is evaluated before all drop, reject and alert rules, wherever it is written"
        }
        RuleOrder::Strict => "",
    };
    Diagnostic::warning(format!(
        "this pass (sid {}) keeps {label} {list} from seeing the rest of the {} flow: a pass on a TCP flow passes the whole flow at its first match; {first}{order}",
        trap.sid, trap.proto
    ))
    .with_code("pass-trap")
    .with_hint(
        "put the rules that must see later commands before it and make them drop/reject, or scope it with pass:packet (suricata-8), see docs/smtp-recipient-policy.md",
    )
}

/// Every pass-rule finding of `policy`, as (index into [`Policy::evaluation_order`],
/// warning without location), in evaluation order of the pass rules.
/// Each group's variables, built once (building them parses every definition, which per rule
/// made checking ET Open's 24k rules spend most of its time here).
struct GroupVars<'p> {
    groups: Vec<(&'p RuleGroup, Variables)>,
}

impl<'p> GroupVars<'p> {
    fn new(policy: &'p Policy) -> Self {
        GroupVars {
            groups: policy
                .rule_groups
                .iter()
                .chain(policy.firewall_rules.iter())
                .map(|g| (g, policy.variables_for(g)))
                .collect(),
        }
    }

    fn of(&self, policy: &Policy, g: &RuleGroup) -> std::borrow::Cow<'_, Variables> {
        match self.groups.iter().find(|(x, _)| std::ptr::eq(*x, g)) {
            Some((_, v)) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(policy.variables_for(g)),
        }
    }
}

pub(crate) fn findings(policy: &Policy) -> Vec<(usize, Diagnostic)> {
    let mut out: Vec<(usize, Diagnostic)> = find(policy)
        .iter()
        .map(|t| (t.pass, diagnostic(policy, t)))
        .collect();
    out.extend(
        find_ip_only(policy)
            .iter()
            .map(|t| (t.pass, ip_only_diagnostic(policy, t))),
    );
    out.sort_by_key(|(i, _)| *i);
    out
}

/// One IP-only pass that shadows other rules.
pub(crate) struct IpOnlyPass {
    /// Index into [`Policy::evaluation_order`].
    pub(crate) pass: usize,
    /// The pass rule's sid.
    pub(crate) sid: u64,
    /// The pass rule's protocol as written (`tcp`, `ip`...).
    pub(crate) proto: String,
    /// sids of the shadowed rules, in evaluation order.
    pub(crate) shadowed: Vec<u64>,
}

/// Transport bits, for "can one flow match both rules".
const TCP: u8 = 1;
const UDP: u8 = 2;
const ICMP: u8 = 4;
const OTHER: u8 = 8;
const ALL: u8 = TCP | UDP | ICMP | OTHER;

/// Finds every IP-only pass that shadows payload or app-layer rules (module documentation).
pub(crate) fn find_ip_only(policy: &Policy) -> Vec<IpOnlyPass> {
    let gv = GroupVars::new(policy);
    let order = policy.evaluation_order();
    let passes: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, (g, r))| {
            !is_generated(g) && is_flow_pass(r) && is_ip_only_pass(r, &gv.of(policy, g))
        })
        .map(|(i, _)| i)
        .collect();
    if passes.is_empty() {
        return Vec::new();
    }
    // Only the rules that inspect payload or the app layer can be shadowed.
    let inspecting: Vec<(usize, Header, u8)> = order
        .iter()
        .enumerate()
        .filter(|(_, (_, r))| app_proto(r).is_some() || raw_payload(r))
        .map(|(i, (g, r))| (i, Header::of(r, &gv.of(policy, g)), transports(r)))
        .collect();
    let mut out = Vec::new();
    for pi in passes {
        let (pg, p) = order[pi];
        let ph = Header::of(p, &gv.of(policy, pg));
        let pt = transports(p);
        let shadowed: Vec<u64> = inspecting
            .iter()
            .filter(|(ri, rh, rt)| {
                let common = pt & rt;
                // Before the pass only TCP flows are lost: their first packets carry no data.
                *ri != pi && common != 0 && (*ri > pi || common & TCP != 0) && ph.overlaps(rh)
            })
            .map(|(ri, _, _)| order[*ri].1.sid())
            .collect();
        if !shadowed.is_empty() {
            out.push(IpOnlyPass {
                pass: pi,
                sid: p.sid(),
                proto: p.protocol.kind.as_str().to_string(),
                shadowed,
            });
        }
    }
    out
}

/// The warning for an IP-only pass (without location).
pub(crate) fn ip_only_diagnostic(policy: &Policy, t: &IpOnlyPass) -> Diagnostic {
    let (label, list) = sid_list(&t.shadowed);
    let see = if t.shadowed.len() == 1 { "sees" } else { "see" };
    let first = match t.proto.as_str() {
        "tcp" => "the SYN and the SYN-ACK",
        _ => "the first packet of each direction",
    };
    let before = match t.proto.as_str() {
        "udp" | "icmp" => "",
        "tcp" => ", and those before it only ever see the handshake",
        _ => ", and for TCP flows those before it only ever see the handshake",
    };
    let order = match policy.rule_order {
        RuleOrder::Action => {
            "; under rule_order: action every pass rule is evaluated before all drop, reject and alert rules, wherever it is written"
        }
        RuleOrder::Strict => "",
    };
    Diagnostic::warning(format!(
        "this pass (sid {}) is an IP-only rule, so {label} {list} never {see} the payload of the flows it covers: a {} rule with only a header is evaluated on the first packet of each direction ({first}) and passes the whole flow there; the rules after it never see a packet of the flow{before}{order}",
        t.sid, t.proto
    ))
    .with_code("ip-only-pass")
    .with_hint(
        "make the pass decide on the traffic: add flow:established plus content or app-layer conditions (e.g. pass smtp ... with smtp.* keywords), or scope it with pass:packet (suricata-8), see docs/smtp-recipient-policy.md",
    )
}

/// A flow-scoped `pass` that NFW's Suricata treats as IP-only (NFW reference §6): `ip`, `tcp`,
/// `udp` or `icmp` without a hook, only metadata options, no negation in the destination.
fn is_ip_only_pass(r: &Rule, vars: &Variables) -> bool {
    is_flow_pass(r)
        && r.protocol.hook.is_none()
        && matches!(
            r.protocol.kind,
            ProtoKind::Ip | ProtoKind::Tcp | ProtoKind::Udp | ProtoKind::Icmp
        )
        && r.options.iter().all(|o| {
            matches!(
                o.node,
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
                    | RuleOption::NoAlert
                    | RuleOption::Alert
                    | RuleOption::Threshold(_)
            )
        })
        && !negated(&r.dst, vars, 0)
}

/// True if the address, variables expanded, contains a negation anywhere.
fn negated(e: &AddressExpr, vars: &Variables, depth: u8) -> bool {
    // Variable loops are reported by the loader; stop rather than recurse forever.
    if depth > 16 {
        return false;
    }
    match e {
        AddressExpr::Not(_) => true,
        AddressExpr::List(items) => items.iter().any(|i| negated(i, vars, depth + 1)),
        AddressExpr::Var(name) => vars
            .address(name)
            .is_some_and(|v| negated(v, vars, depth + 1)),
        AddressExpr::Any | AddressExpr::Ip(_) | AddressExpr::Cidr(..) | AddressExpr::Range(..) => {
            false
        }
    }
}

/// The transports a rule's traffic can use (bits [`TCP`], [`UDP`], [`ICMP`], [`OTHER`]).
fn transports(r: &Rule) -> u8 {
    let base = match &r.protocol.kind {
        ProtoKind::Tcp | ProtoKind::TcpPkt | ProtoKind::TcpStream => TCP,
        ProtoKind::Udp => UDP,
        ProtoKind::Icmp | ProtoKind::Icmpv4 | ProtoKind::Icmpv6 => ICMP,
        ProtoKind::Sctp | ProtoKind::Igmp => OTHER,
        ProtoKind::Arp | ProtoKind::Ether => 0,
        ProtoKind::Ip
        | ProtoKind::Ipv4
        | ProtoKind::Ipv6
        | ProtoKind::Pkthdr
        | ProtoKind::App(_) => ALL,
    };
    match app_proto(r) {
        Some(p) => {
            let mut app = 0;
            if over_tcp(&p) {
                app |= TCP;
            }
            if over_udp(&p) {
                app |= UDP;
            }
            base & app
        }
        None => base,
    }
}

/// "sid N" / "sids A, B, C, D, E and N more".
fn sid_list(sids: &[u64]) -> (&'static str, String) {
    const SHOWN: usize = 5;
    let shown: Vec<String> = sids.iter().take(SHOWN).map(u64::to_string).collect();
    let mut list = shown.join(", ");
    if sids.len() > SHOWN {
        list.push_str(&format!(" and {} more", sids.len() - SHOWN));
    }
    (if sids.len() == 1 { "sid" } else { "sids" }, list)
}

fn is_generated(g: &RuleGroup) -> bool {
    g.generated_text.is_some()
}

/// A `pass` whose effect covers the flow: no `:packet` (or firewall) scope.
fn is_flow_pass(r: &Rule) -> bool {
    r.action.kind() == ActionKind::Pass
        && matches!(r.action.scope(), None | Some(ActionScope::Flow))
}

/// The app protocol a rule is about: its header protocol, else the protocol of its first
/// app buffer, else a positive `app-layer-protocol`.
fn app_proto(r: &Rule) -> Option<String> {
    if let ProtoKind::App(p) = &r.protocol.kind {
        return Some(normalize(p));
    }
    if let Some(p) = r
        .buffers()
        .into_iter()
        .filter(|b| *b != Buffer::FileData)
        .find_map(Buffer::implied_protocol)
    {
        return Some(p.to_string());
    }
    r.options.iter().find_map(|o| match &o.node {
        RuleOption::AppLayerProtocol(a)
            if !a.negated && !matches!(a.proto.as_str(), "failed" | "unknown") =>
        {
            Some(normalize(&a.proto))
        }
        _ => None,
    })
}

fn normalize(p: &str) -> String {
    match p {
        "http1" | "http2" => "http".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// If `r` inspects flows of `proto`, the stage it needs.
fn inspects(r: &Rule, proto: &str) -> Option<Stage> {
    if let Some(p) = app_proto(r) {
        return (p == proto).then(|| stage(r, proto));
    }
    // A transport-level rule sees the protocol's flows only through raw payload keywords.
    let transport = match &r.protocol.kind {
        ProtoKind::Tcp | ProtoKind::TcpPkt | ProtoKind::TcpStream => over_tcp(proto),
        ProtoKind::Udp => over_udp(proto),
        ProtoKind::Ip => true,
        _ => false,
    };
    (transport && raw_payload(r)).then_some(Stage::Unknown)
}

fn over_udp(p: &str) -> bool {
    matches!(
        p,
        "dns" | "dhcp" | "ntp" | "snmp" | "tftp" | "sip" | "quic" | "ike" | "krb5" | "nfs" | "mdns"
    )
}

fn over_tcp(p: &str) -> bool {
    !matches!(
        p,
        "dhcp" | "ntp" | "snmp" | "tftp" | "quic" | "ike" | "mdns"
    )
}

/// True if the rule has payload keywords on the raw packet/stream.
fn raw_payload(r: &Rule) -> bool {
    let mut sticky: Option<Buffer> = None;
    for o in &r.options {
        match &o.node {
            RuleOption::Buffer(b) | RuleOption::BufferDir { buffer: b, .. } => {
                sticky = (*b != Buffer::PktData).then_some(*b);
            }
            RuleOption::Content(c) if c.buffer.or(sticky).is_none() => return true,
            RuleOption::Pcre(p) if p.buffer.or(sticky).is_none() => return true,
            RuleOption::IsDataAt(_)
            | RuleOption::ByteTest(_)
            | RuleOption::ByteJump(_)
            | RuleOption::ByteExtract(_)
            | RuleOption::ByteMath(_)
                if sticky.is_none() =>
            {
                return true
            }
            RuleOption::Dsize(_) => return true,
            _ => {}
        }
    }
    false
}

/// The stage `r` needs within a flow of `proto` (module documentation).
fn stage(r: &Rule, proto: &str) -> Stage {
    let mut st = Stage::Known(0);
    let mut sticky: Option<Buffer> = None;
    let at = |b: Option<Buffer>| b.map_or(Stage::Unknown, |b| buffer_stage(b, proto));
    for o in &r.options {
        let here = match &o.node {
            RuleOption::Buffer(b) | RuleOption::BufferDir { buffer: b, .. } => {
                sticky = (*b != Buffer::PktData).then_some(*b);
                at(sticky)
            }
            RuleOption::Content(c) => at(c.buffer.or(sticky)),
            RuleOption::Pcre(p) => at(p.buffer.or(sticky)),
            RuleOption::IsDataAt(_)
            | RuleOption::ByteTest(_)
            | RuleOption::ByteJump(_)
            | RuleOption::ByteExtract(_)
            | RuleOption::ByteMath(_)
            | RuleOption::Bsize(_) => at(sticky),
            RuleOption::SslState(states) => {
                if states.iter().all(|(neg, s)| !neg && s == "client_hello") {
                    Stage::Known(0)
                } else {
                    Stage::Unknown
                }
            }
            RuleOption::Flowbits(Flowbits::Cmd(BitsCmd::IsSet | BitsCmd::IsNotSet, _))
            | RuleOption::Xbits(_)
            | RuleOption::Dsize(_)
            | RuleOption::Flags(_)
            | RuleOption::AppLayerEvent(_)
            | RuleOption::Absent { .. } => Stage::Unknown,
            // Most value-less keywords sekisho does not model are sticky buffers.
            RuleOption::Unsupported { value: None, .. } => {
                sticky = None;
                Stage::Unknown
            }
            _ => Stage::Known(0),
        };
        st = st.max(here);
    }
    st
}

/// Where in a flow of `proto` the buffer's data arrives.
fn buffer_stage(b: Buffer, proto: &str) -> Stage {
    use Buffer::*;
    Stage::Known(match b {
        SmtpHelo => 1,
        SmtpMailFrom => 2,
        SmtpRcptTo => 3,
        EmailFrom | EmailTo | EmailCc | EmailSubject | EmailDate => 4,
        FileData if proto == "smtp" => 4,
        FileData if proto == "http" => 1,
        TlsSni => 0,
        TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCertFingerprint | TlsSubjectAltName => {
            1
        }
        HttpStatCode | HttpStatMsg | HttpResponseBody | HttpServer | HttpLocation
        | HttpResponseLine => 1,
        DnsQuery | DnsQueriesRrname => 0,
        DnsAnswersRrname | DnsAuthoritiesRrname | DnsAdditionalsRrname | DnsResponseRrname => 1,
        PktData | FileData => return Stage::Unknown,
        _ => 0,
    })
}

/// A rule's header as resolved sets, for the overlap test.
struct Header {
    src: IpSet,
    sp: PortSet,
    dst: IpSet,
    dp: PortSet,
}

impl Header {
    fn of(r: &Rule, vars: &Variables) -> Header {
        let addr = |e: &AddressExpr| vars.resolve_address(e).unwrap_or_else(|_| IpSet::any());
        let port = |e: &PortExpr| vars.resolve_port(e).unwrap_or_else(|_| PortSet::any());
        Header {
            src: addr(&r.src),
            sp: port(&r.src_port),
            dst: addr(&r.dst),
            dp: port(&r.dst_port),
        }
    }

    /// Whether one flow can carry packets matching both headers, in either orientation.
    fn overlaps(&self, o: &Header) -> bool {
        let same = self.src.intersects(&o.src)
            && self.sp.intersects(&o.sp)
            && self.dst.intersects(&o.dst)
            && self.dp.intersects(&o.dp);
        let reversed = self.src.intersects(&o.dst)
            && self.sp.intersects(&o.dp)
            && self.dst.intersects(&o.src)
            && self.dp.intersects(&o.sp);
        same || reversed
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{LoadOptions, Policy};

    /// `sekisho check` diagnostics (code, message) for `rules` under a policy with `settings`.
    fn check(settings: &str, rules: &str) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.rules"), rules).unwrap();
        let p = dir.path().join("p.yaml");
        std::fs::write(
            &p,
            format!("{settings}\nvariables:\n  HOME_NET: [10.0.0.0/24]\nrule_groups:\n  - {{name: g, rules: r.rules}}\n"),
        )
        .unwrap();
        Policy::check_file(Path::new(&p), &LoadOptions::default())
            .diagnostics
            .into_iter()
            .map(|d| (d.code.unwrap_or_default(), d.message))
            .collect()
    }

    fn traps(settings: &str, rules: &str) -> Vec<String> {
        check(settings, rules)
            .into_iter()
            .filter(|(c, _)| c == "pass-trap")
            .map(|(_, m)| m)
            .collect()
    }

    const STRICT: &str =
        "engine_profile: aws-nfw\nrule_order: strict\ndefault_actions: [drop_established]";

    #[test]
    fn a_content_less_smtp_pass_blinds_raw_rules_before_it() {
        let t = traps(
            STRICT,
            "alert smtp $HOME_NET any -> any 25 (content:\"RCPT\"; nocase; sid:1;)\n\
             alert smtp $HOME_NET any -> any 25 (sid:2;)\n\
             pass smtp $HOME_NET any -> any 25 (sid:3;)\n",
        );
        assert_eq!(t.len(), 1, "{t:?}");
        // sid 2 matches on the same first packet as the pass: not blinded.
        assert!(
            t[0].starts_with("this pass (sid 3) keeps sid 1 from seeing the rest of the smtp flow"),
            "{}",
            t[0]
        );
        assert!(t[0].contains("EHLO packet under aws-nfw"), "{}", t[0]);
    }

    #[test]
    fn later_envelope_buffers_are_blinded_but_same_message_allow_lists_are_not() {
        let s8 = "rule_order: strict";
        let t = traps(
            s8,
            "pass smtp $HOME_NET any -> any 25 (smtp.helo; content:\"relay\"; sid:1;)\n\
             drop smtp $HOME_NET any -> any 25 (smtp.rcpt_to; content:\"@evil\"; sid:2;)\n",
        );
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].contains("keeps sid 2 "), "{}", t[0]);
        // The TLS allow-list idiom: pass and drop decide on the same ClientHello.
        assert!(traps(
            s8,
            "pass tls $HOME_NET any -> any 443 (tls.sni; content:\"ok.example\"; sid:1;)\n\
             drop tls $HOME_NET any -> any 443 (ssl_state:client_hello; sid:2;)\n",
        )
        .is_empty());
        // A deny list before a catch-all pass: the drop sees the SNI on the detection packet.
        assert!(traps(
            s8,
            "drop tls $HOME_NET any -> any any (tls.sni; content:\"bad.example\"; sid:1;)\n\
             pass tls $HOME_NET any -> any any (sid:2;)\n",
        )
        .is_empty());
    }

    #[test]
    fn packet_scoped_passes_disjoint_headers_and_late_unknown_passes_are_not_traps() {
        let s8 = "rule_order: strict";
        let rules =
            "drop:flow smtp $HOME_NET any -> any 25 (smtp.rcpt_to; content:\"x\"; sid:1;)\n";
        assert!(traps(
            s8,
            &format!("{rules}pass:packet smtp $HOME_NET any -> any 25 (sid:2;)\n")
        )
        .is_empty());
        assert_eq!(
            traps(
                s8,
                &format!("{rules}pass:flow smtp $HOME_NET any -> any 25 (sid:2;)\n")
            )
            .len(),
            1
        );
        assert_eq!(
            traps(
                s8,
                &format!("{rules}pass smtp $HOME_NET any -> any 25 (sid:2;)\n")
            )
            .len(),
            1
        );
        // Port 587 flows are not port 25 flows (with `any` on both sides a flow could be both,
        // one rule per direction, so the other side is pinned down).
        let out =
            "drop smtp $HOME_NET any -> $EXTERNAL_NET 25 (smtp.rcpt_to; content:\"x\"; sid:1;)\n";
        assert!(traps(
            s8,
            &format!("{out}pass smtp $HOME_NET any -> $EXTERNAL_NET 587 (sid:2;)\n")
        )
        .is_empty());
        assert_eq!(
            traps(
                s8,
                &format!("{out}pass smtp $HOME_NET any -> $EXTERNAL_NET [25,587] (sid:2;)\n")
            )
            .len(),
            1
        );
        // A pass whose match point is unknown, after every rule of its protocol.
        assert!(traps(
            s8,
            &format!("{rules}pass smtp $HOME_NET any -> any 25 (content:\"QUIT\"; sid:2;)\n")
        )
        .is_empty());
        // ...but before them it shadows them.
        assert_eq!(
            traps(
                s8,
                &format!("pass smtp $HOME_NET any -> any 25 (content:\"QUIT\"; sid:2;)\n{rules}")
            )
            .len(),
            1
        );
    }

    #[test]
    fn raw_tcp_rules_count_and_action_order_is_explained() {
        let t = traps(
            "rule_order: action",
            "alert tcp any any -> any any (content:\"DATA\"; sid:1;)\n\
             alert udp any any -> any any (content:\"DATA\"; sid:2;)\n\
             alert tcp any any -> any any (flow:established; sid:3;)\n\
             pass smtp $HOME_NET any -> any 25 (sid:4;)\n",
        );
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].contains("keeps sid 1 from"), "{}", t[0]);
        assert!(
            t[0].contains("under rule_order: action every pass rule is evaluated before"),
            "{}",
            t[0]
        );
    }

    #[test]
    fn more_than_five_blinded_rules_are_counted() {
        let mut rules = String::new();
        for sid in 1..=7 {
            rules.push_str(&format!(
                "alert smtp any any -> any any (content:\"c{sid}\"; sid:{sid};)\n"
            ));
        }
        rules.push_str("pass smtp any any -> any any (sid:8;)\n");
        let t = traps("rule_order: strict", &rules);
        assert!(
            t[0].contains("keeps sids 1, 2, 3, 4, 5 and 2 more from"),
            "{}",
            t[0]
        );
    }

    fn ip_only(settings: &str, rules: &str) -> Vec<String> {
        check(settings, rules)
            .into_iter()
            .filter(|(c, _)| c == "ip-only-pass")
            .map(|(_, m)| m)
            .collect()
    }

    #[test]
    fn a_header_only_tcp_pass_shadows_payload_rules_before_and_after_it() {
        let t = ip_only(
            STRICT,
            "alert tcp $HOME_NET any -> any 25 (content:\"yamashita\"; sid:1;)\n\
             alert smtp $HOME_NET any -> any 25 (sid:2;)\n\
             alert tcp $HOME_NET any -> any 25 (flow:established; sid:3;)\n\
             alert tcp $HOME_NET any -> 203.0.113.0/24 80 (content:\"x\"; sid:4;)\n\
             pass tcp $HOME_NET any -> 198.51.100.0/24 25 (msg:\"any\"; sid:5; rev:1;)\n\
             drop tls $HOME_NET any -> any any (tls.sni; content:\"x\"; sid:6;)\n\
             alert udp $HOME_NET any -> any 25 (content:\"x\"; sid:7;)\n",
        );
        assert_eq!(t.len(), 1, "{t:?}");
        // 3 has no payload keyword, 4 goes to other hosts, 7 is UDP; 6 (TLS to any port)
        // covers port 25 too.
        assert!(
            t[0].starts_with("this pass (sid 5) is an IP-only rule, so sids 1, 2, 6 never see"),
            "{}",
            t[0]
        );
        assert!(t[0].contains("(the SYN and the SYN-ACK)"), "{}", t[0]);
        // Not the app-layer trap as well.
        assert!(traps(STRICT, "pass tcp any any -> any 25 (sid:1;)\nalert smtp any any -> any 25 (content:\"x\"; sid:2;)\n").is_empty());
    }

    #[test]
    fn keywords_negated_destinations_and_packet_scope_make_it_not_ip_only() {
        let s8 = "rule_order: strict";
        let after = "alert smtp $HOME_NET any -> 198.51.100.0/24 25 (smtp.rcpt_to; content:\"x\"; sid:9;)\n";
        for pass in [
            "pass tcp $HOME_NET any -> any 25 (flow:established; sid:1;)",
            "pass tcp $HOME_NET any -> any 25 (content:\"EHLO\"; sid:1;)",
            "pass tcp $HOME_NET any -> any 25 (flags:S; sid:1;)",
            "pass tcp $HOME_NET any -> any 25 (dsize:0; sid:1;)",
            "pass tcp $HOME_NET any -> any 25 (flowbits:isset,x; sid:1;)",
            "pass tcp $HOME_NET any -> ![192.0.2.0/24] 25 (sid:1;)",
            // $EXTERNAL_NET is !$HOME_NET: negated once expanded.
            "pass tcp $HOME_NET any -> $EXTERNAL_NET 25 (sid:1;)",
            "pass:packet tcp $HOME_NET any -> any 25 (sid:1;)",
            "pass tcp 192.0.2.0/24 any -> any 25 (sid:1;)",
            "pass udp $HOME_NET any -> any 25 (sid:1;)",
        ] {
            assert!(
                ip_only(s8, &format!("{pass}\n{after}")).is_empty(),
                "{pass}"
            );
        }
        for pass in [
            "pass tcp $HOME_NET any -> any 25 (msg:\"m\"; classtype:misc-activity; metadata:a b; sid:1; rev:2;)",
            "pass:flow ip $HOME_NET any -> 198.51.100.0/24 any (sid:1;)",
            "pass ip any any -> any any (sid:1;)",
        ] {
            assert_eq!(ip_only(s8, &format!("{pass}\n{after}")).len(), 1, "{pass}");
        }
    }

    #[test]
    fn udp_rules_before_the_pass_still_see_the_first_packet() {
        let s8 = "rule_order: strict";
        let dns = "drop dns $HOME_NET any -> any 53 (dns.query; content:\"bad\"; sid:1;)\n";
        let pass = "pass udp $HOME_NET any -> any 53 (sid:2;)\n";
        assert!(ip_only(s8, &format!("{dns}{pass}")).is_empty());
        let t = ip_only(s8, &format!("{pass}{dns}"));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].contains("so sid 1 never sees the payload"), "{}", t[0]);
        assert!(!t[0].contains("handshake"), "{}", t[0]);
        // Under action order the pass runs first wherever it is written.
        let t = ip_only("rule_order: action", &format!("{dns}{pass}"));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].contains("under rule_order: action"), "{}", t[0]);
    }

    #[test]
    fn aws_nfw_rejects_suricata_8_buffers_and_scopes() {
        let d = check(
            "engine_profile: aws-nfw",
            "drop:flow smtp any any -> any 25 (smtp.rcpt_to; content:\"x\"; sid:1;)\n\
             alert dns any any -> any any (dns.answers.rrname; content:\"x\"; sid:2;)\n\
             alert dns any any -> any any (dns.query; content:\"x\"; dataset:isset,d,type string; sid:3;)\n",
        );
        let codes: Vec<&str> = d.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            codes,
            [
                "nfw-action-scope",
                "nfw-keyword",
                "nfw-keyword",
                "unsupported-keyword",
                "nfw-compat"
            ],
            "{d:?}"
        );
        assert!(check(
            "engine_profile: suricata-8",
            "drop:flow smtp any any -> any 25 (smtp.rcpt_to; content:\"x\"; sid:1;)\n"
        )
        .is_empty());
    }
}
