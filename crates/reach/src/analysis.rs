//! One question answered: walk the forward path, walk the return path, run the question's
//! conversation through every firewall on them (the real sensor, each firewall's policy),
//! and say `reachable`, `blocked`, `no-route` or `asymmetric`, with the hops, the deciding
//! rule or default action and the packet at which it decided.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sekisho_diag::Diagnostic;
use sekisho_engine::{LinkType, Timestamp};
use serde_json::{json, Value};

use crate::firewall::{drain, passing_sid, Compiled, PacketRecords, RuleRef};
use crate::model::{Model, Target};
use crate::path::{self, Header, Hop, Kind, Start, Walk};
use crate::synth::{self, Dir, Segment, Talk};

/// Where the question goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A host of the model, by name.
    Host(String),
    /// An address (a host's, or one on the internet).
    Addr(Ipv4Addr),
    /// A name on the internet (the conversation uses it as SNI / Host; the address is
    /// [`NAMED_ADDR`]).
    Name(String),
}

/// The address a named internet destination stands at (TEST-NET-3; rules on names, not
/// on this address, decide such questions).
pub const NAMED_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);

/// The client's source port.
pub const CLIENT_PORT: u16 = 49152;

/// A question: from a host of the model to a destination and port, with what is said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The source host's name (or an address of one).
    pub from: String,
    /// The destination.
    pub to: Dest,
    /// Destination port.
    pub port: u16,
    /// The conversation.
    pub talk: Talk,
}

/// The answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The conversation completes both ways.
    Reachable,
    /// A firewall (or a host's allow list) stops it.
    Blocked,
    /// A route table has no usable route (forward or return).
    NoRoute,
    /// The return path does not cross the same stateful firewalls as the forward path.
    Asymmetric,
}

impl Status {
    /// `reachable`, `blocked`, `no-route`, `asymmetric`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reachable => "reachable",
            Status::Blocked => "blocked",
            Status::NoRoute => "no-route",
            Status::Asymmetric => "asymmetric",
        }
    }
}

/// What one firewall did with the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallVerdict {
    /// The firewall's name.
    pub firewall: String,
    /// Its policy file.
    pub policy: String,
    /// On the forward path.
    pub forward: bool,
    /// On the return path.
    pub on_return: bool,
    /// True when it stopped a packet.
    pub blocked: bool,
    /// What decided: `pass`, `drop`, `reject`, or the default action (`aws:drop_established`,
    /// `default pass`).
    pub action: String,
    /// The deciding rule, if a rule decided.
    pub rule: Option<RuleRef>,
    /// The default action, if a default decided.
    pub default_action: Option<String>,
    /// The conversation's packet at which it decided: (1-based index, direction, label).
    pub packet: Option<(usize, Dir, String)>,
    /// The engine's `--explain` lines of that packet.
    pub explain: Vec<String>,
    /// Packets of the conversation this firewall saw.
    pub packets_seen: usize,
}

/// The answer.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The question.
    pub question: Question,
    /// The client's header as it leaves the source.
    pub header: Option<Header>,
    /// The status.
    pub status: Status,
    /// The forward path.
    pub forward: Walk,
    /// The return path (none when the forward path was not delivered).
    pub ret: Option<Walk>,
    /// Each firewall's verdict, forward path order first.
    pub firewalls: Vec<FirewallVerdict>,
    /// AWS-style explanation objects (why not reachable).
    pub explanations: Vec<Value>,
}

/// A model with every firewall's policy compiled once.
pub struct Analyzer {
    /// The model.
    pub model: Model,
    firewalls: BTreeMap<String, Compiled>,
}

impl Analyzer {
    /// Compiles every firewall's policy (errors name the policy file).
    pub fn new(model: Model) -> Result<Analyzer, Vec<Diagnostic>> {
        let mut firewalls = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, fw) in &model.firewalls {
            match Compiled::load(&fw.policy, &fw.vars) {
                Ok(c) => {
                    firewalls.insert(name.clone(), c);
                }
                Err(d) => errors.extend(d.into_iter().filter(|d| d.is_error()).map(|d| {
                    let m = d.message.clone();
                    d.with_hint(format!("while loading firewall {name}'s policy: {m}"))
                })),
            }
        }
        if errors.is_empty() {
            Ok(Analyzer { model, firewalls })
        } else {
            Err(errors)
        }
    }

    /// A compiled firewall.
    pub fn firewall(&self, name: &str) -> Option<&Compiled> {
        self.firewalls.get(name)
    }

    /// Resolves the source: a host name or one host's address.
    fn source(&self, from: &str) -> Result<String, String> {
        if self.model.hosts.contains_key(from) {
            return Ok(from.to_string());
        }
        if let Ok(a) = from.parse::<Ipv4Addr>() {
            if let Some((n, _)) = self.model.host_by_address(a) {
                return Ok(n.to_string());
            }
        }
        let names = self.model.hosts.keys().map(String::as_str);
        Err(match sekisho_diag::suggest(from, names) {
            Some(s) => format!("--from '{from}' is not a host of the model (did you mean '{s}'?)"),
            None => format!(
                "--from '{from}' is not a host of the model; hosts: {}",
                self.model
                    .hosts
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// Answers `q`. Errors are about the question (an unknown source host).
    pub fn analyze(&self, q: &Question) -> Result<Analysis, String> {
        let from = self.source(&q.from)?;
        let src = self.model.hosts[&from].address;
        let dst = match &q.to {
            Dest::Host(h) => match self.model.hosts.get(h) {
                Some(x) => x.address,
                None => return Err(format!("--to '{h}' is not a host of the model")),
            },
            Dest::Addr(a) => *a,
            Dest::Name(_) => NAMED_ADDR,
        };
        let header = Header {
            src,
            sport: CLIENT_PORT,
            dst,
            dport: q.port,
            proto: q.talk.proto.ip_proto(),
        };
        let mut nat = Vec::new();
        let forward = path::walk(
            &self.model,
            &Start::Host(from.clone()),
            header,
            &mut nat,
            false,
        );
        let mut a = Analysis {
            question: q.clone(),
            header: Some(header),
            status: Status::Reachable,
            forward,
            ret: None,
            firewalls: Vec::new(),
            explanations: Vec::new(),
        };
        if let Some(stop) = &a.forward.stop {
            a.status = if stop.code == "ENI_SG_RULES_MISMATCH" {
                Status::Blocked
            } else {
                Status::NoRoute
            };
            a.explanations.push(stop_explanation(stop, "forward"));
            return Ok(a);
        }
        // The return path starts where the forward path was delivered.
        let last = a.forward.hops.last().cloned();
        let Some(last) = last else {
            return Ok(a);
        };
        let reply = last.inbound.reversed();
        let start = match last.kind {
            Kind::Internet => {
                let igw = a
                    .forward
                    .hops
                    .iter()
                    .rev()
                    .find(|h| h.kind == Kind::InternetGateway)
                    .map(|h| h.id.clone())
                    .unwrap_or_default();
                Start::Internet(last.inbound.dst, igw)
            }
            _ => Start::Host(last.id.clone()),
        };
        let mut ret = path::walk(&self.model, &start, reply, &mut nat, true);
        if ret.stop.is_none() {
            // The reply must come back to the client's own address and port.
            let back = ret.hops.last().map(|h| (h.kind, h.id.clone(), h.outbound));
            if let Some((kind, id, hd)) = back {
                if kind != Kind::Host || id != from || hd.dst != src || hd.dport != CLIENT_PORT {
                    ret.stop = Some(path::Stop {
                        code: "NO_PATH",
                        component: id.clone(),
                        detail: format!(
                            "the reply is delivered to {} {id} ({}:{}), not to {from}",
                            kind.as_str(),
                            hd.dst,
                            hd.dport
                        ),
                    });
                }
            }
        }
        if let Some(stop) = &ret.stop {
            a.status = Status::NoRoute;
            a.explanations.push(stop_explanation(stop, "return"));
        }
        a.ret = Some(ret);
        self.run_conversation(&mut a);
        let fwd: Vec<&str> = a.forward.firewalls().map(|(n, _)| n).collect();
        let back: Vec<&str> = a
            .ret
            .as_ref()
            .map(|r| r.firewalls().map(|(n, _)| n).collect())
            .unwrap_or_default();
        let one_way: Vec<&str> = fwd
            .iter()
            .filter(|f| !back.contains(f))
            .chain(back.iter().filter(|f| !fwd.contains(f)))
            .copied()
            .collect();
        if a.status != Status::NoRoute && !one_way.is_empty() {
            a.status = Status::Asymmetric;
            for f in &one_way {
                let (way, other) = if fwd.contains(f) {
                    ("forward", "return")
                } else {
                    ("return", "forward")
                };
                a.explanations.push(json!({
                    "ExplanationCode": "ASYMMETRIC_PATH",
                    "Component": {"Id": f},
                    "Direction": way,
                    "Detail": format!(
                        "firewall {f} is on the {way} path but not on the {other} path: a stateful firewall sees only one side of the conversation"
                    ),
                }));
            }
        }
        for v in &a.firewalls {
            if v.blocked {
                if a.status == Status::Reachable {
                    a.status = Status::Blocked;
                }
                a.explanations.push(firewall_explanation(v, &a.question));
            }
        }
        Ok(a)
    }

    /// Runs the conversation through every firewall on the paths, packet by packet, each
    /// packet through the firewalls of its direction in path order; the first drop stops it.
    fn run_conversation(&self, a: &mut Analysis) {
        let conv = synth::conversation(&a.question.talk);
        let views = views(a);
        let fwd_order: Vec<String> = a.forward.firewalls().map(|(n, _)| n.to_string()).collect();
        let ret_order: Vec<String> = a
            .ret
            .as_ref()
            .map(|r| r.firewalls().map(|(n, _)| n.to_string()).collect())
            .unwrap_or_default();
        let (mut runs, mut verdicts) = self.start_runs(&views);
        self.play(
            &conv,
            &views,
            (&fwd_order, &ret_order),
            &mut runs,
            &mut verdicts,
        );
        // Firewalls that passed everything: which rule passed (the first pass/accept the
        // engine explains), else the default.
        for (name, fv) in verdicts.iter_mut() {
            let Some(run) = runs.get(name) else { continue };
            fv.packets_seen = run.seen;
            if fv.blocked {
                continue;
            }
            let Some(c) = self.firewalls.get(name) else {
                continue;
            };
            record_pass(c, fv, run, &conv);
        }
        let mut out: Vec<FirewallVerdict> = Vec::new();
        for v in &views {
            if let Some(v) = verdicts.remove(&v.name) {
                out.push(v);
            }
        }
        a.firewalls = out;
    }

    /// A sensor and an undecided verdict for every firewall of `views` the analyzer knows.
    fn start_runs(
        &self,
        views: &[View],
    ) -> (BTreeMap<String, Run>, BTreeMap<String, FirewallVerdict>) {
        let mut runs: BTreeMap<String, Run> = BTreeMap::new();
        let mut verdicts: BTreeMap<String, FirewallVerdict> = BTreeMap::new();
        for v in views {
            let Some(c) = self.firewalls.get(&v.name) else {
                continue;
            };
            runs.insert(
                v.name.clone(),
                Run {
                    sensor: c.sensor(),
                    lines: Vec::new(),
                    seen: 0,
                },
            );
            verdicts.insert(
                v.name.clone(),
                FirewallVerdict {
                    firewall: v.name.clone(),
                    policy: c.policy_path.clone(),
                    forward: v.forward,
                    on_return: v.on_return,
                    blocked: false,
                    action: String::new(),
                    rule: None,
                    default_action: None,
                    packet: None,
                    explain: Vec::new(),
                    packets_seen: 0,
                },
            );
        }
        (runs, verdicts)
    }

    /// Feeds the conversation's packets, each through the firewalls of its direction
    /// (`orders`: forward, return) in path order, until the first drop, which is recorded in
    /// the dropping firewall's verdict.
    fn play(
        &self,
        conv: &[Segment],
        views: &[View],
        orders: (&[String], &[String]),
        runs: &mut BTreeMap<String, Run>,
        verdicts: &mut BTreeMap<String, FirewallVerdict>,
    ) {
        for (i, seg) in conv.iter().enumerate() {
            let order = match seg.dir {
                Dir::ToServer => orders.0,
                Dir::ToClient => orders.1,
            };
            for name in order {
                let (Some(run), Some(view), Some(c), Some(fv)) = (
                    runs.get_mut(name),
                    views.iter().find(|v| &v.name == name),
                    self.firewalls.get(name),
                    verdicts.get_mut(name),
                ) else {
                    continue;
                };
                let pkt = synth::packet(&view.header, seg);
                let ts = Timestamp::from_secs_micros(1_700_000_000, (i as u64) * 1_000);
                let v = run.sensor.handle_packet(ts, LinkType::Ipv4, &pkt);
                run.seen += 1;
                let rec = drain(&mut run.sensor);
                run.lines.push((i, rec.explain.clone()));
                if v.is_drop() {
                    record_drop(c, fv, &v, &rec, i, seg);
                    return;
                }
            }
        }
    }
}

/// One firewall as the client side sees it.
struct View {
    /// The firewall's name.
    name: String,
    /// The client-side header at it: the forward header entering it, or the reverse of the
    /// return header entering it.
    header: Header,
    /// On the forward path.
    forward: bool,
    /// On the return path.
    on_return: bool,
}

/// One firewall's run of the conversation.
struct Run {
    sensor: sekisho_sensor::Sensor,
    /// The `--explain` lines of each packet it saw, by the packet's index.
    lines: Vec<(usize, Vec<String>)>,
    /// Packets it saw.
    seen: usize,
}

/// The firewalls on the paths, forward path first, each once.
fn views(a: &Analysis) -> Vec<View> {
    let mut views: Vec<View> = Vec::new();
    for (n, h) in a.forward.firewalls() {
        views.push(View {
            name: n.to_string(),
            header: h,
            forward: true,
            on_return: false,
        });
    }
    if let Some(r) = &a.ret {
        for (n, h) in r.firewalls() {
            match views.iter_mut().find(|v| v.name == n) {
                Some(v) => v.on_return = true,
                None => views.push(View {
                    name: n.to_string(),
                    header: h.reversed(),
                    forward: false,
                    on_return: true,
                }),
            }
        }
    }
    views
}

/// Records in `fv` the drop `v` of firewall `c` at packet `i` (`seg`): the dropping rule, or
/// the default action or exception policy that dropped.
fn record_drop(
    c: &Compiled,
    fv: &mut FirewallVerdict,
    v: &sekisho_engine::Verdict,
    rec: &PacketRecords,
    i: usize,
    seg: &Segment,
) {
    fv.blocked = true;
    fv.packet = Some((i + 1, seg.dir, seg.label.clone()));
    fv.explain = rec.explain.clone();
    let rule = rec
        .drops
        .iter()
        .find_map(|(r, _)| r.clone())
        .or_else(|| rec.alerts.iter().find(|(_, b)| *b).map(|(r, _)| r.clone()));
    match rule {
        Some(r) => {
            let rr = c.rule_of(&r);
            fv.action = if matches!(v, sekisho_engine::Verdict::Reject { .. }) {
                "reject".into()
            } else if rr.action.is_empty() {
                "drop".into()
            } else {
                rr.action.clone()
            };
            fv.rule = Some(rr);
        }
        None => {
            // A policy default action, or an exception policy (a stream
            // the engine cannot follow, e.g. one side of an asymmetric
            // path): the drop record's reason says which.
            let reason = rec.drops.first().map(|d| d.1).unwrap_or("");
            let d = match reason {
                "default action" | "" => c
                    .default_actions()
                    .into_iter()
                    .find(|d| d.contains("drop"))
                    .unwrap_or_else(|| "drop".to_string()),
                other => format!("exception policy ({other})"),
            };
            fv.action = d.clone();
            fv.default_action = Some(d);
        }
    }
}

/// Records in `fv` what let the conversation through firewall `c`: the pass at the
/// question's key packet, else the first pass, else the default.
fn record_pass(c: &Compiled, fv: &mut FirewallVerdict, run: &Run, conv: &[Segment]) {
    // The pass at the question's key packet (the last RCPT TO, the ClientHello)
    // names the rule that let the question through; else the first pass (a flow
    // passed at its SYN is never inspected again).
    let passes: Vec<(usize, u64, Vec<String>)> = run
        .lines
        .iter()
        .filter_map(|(i, l)| passing_sid(l).map(|(sid, _)| (*i, sid, l.clone())))
        .collect();
    let found = passes
        .iter()
        .rev()
        .find(|(i, _, _)| conv[*i].key)
        .or(passes.first())
        .cloned();
    match found {
        Some((i, sid, lines)) => {
            let rr = c.rule(sid).cloned().unwrap_or(RuleRef {
                group: String::new(),
                sid,
                rev: 0,
                msg: String::new(),
                action: "pass".into(),
                text: String::new(),
            });
            fv.action = if rr.action.is_empty() {
                "pass".into()
            } else {
                rr.action.clone()
            };
            fv.rule = Some(rr);
            fv.packet = Some((i + 1, conv[i].dir, conv[i].label.clone()));
            fv.explain = lines;
        }
        None => {
            fv.action = "default pass".into();
            fv.default_action = Some(match c.default_actions().is_empty() {
                true => "none (undecided packets pass)".into(),
                false => format!(
                    "{} (no packet was dropped by it)",
                    c.default_actions().join(", ")
                ),
            });
        }
    }
}

fn stop_explanation(stop: &path::Stop, way: &str) -> Value {
    json!({
        "ExplanationCode": stop.code,
        "Component": {"Id": stop.component},
        "Direction": way,
        "Detail": stop.detail,
    })
}

fn firewall_explanation(v: &FirewallVerdict, q: &Question) -> Value {
    let mut rule = json!({
        "RuleGroupArn": v.rule.as_ref().map_or("network-firewall-policy-default".to_string(), |r| r.group.clone()),
        "RuleAction": v.action,
        "Protocol": q.talk.proto.to_string(),
        "Direction": "FORWARD",
    });
    if let Some(r) = &v.rule {
        rule["Sid"] = json!(r.sid);
        rule["Rev"] = json!(r.rev);
        rule["Msg"] = json!(r.msg);
        rule["Rule"] = json!(r.text);
    }
    if let Some(d) = &v.default_action {
        rule["DefaultAction"] = json!(d);
    }
    json!({
        "ExplanationCode": "FIREWALL_RULES_RESTRICTION",
        "Component": {"Id": v.firewall},
        "FirewallStatefulRule": rule,
        "DecidingPacket": packet_json(v),
        "Explain": v.explain,
    })
}

fn packet_json(v: &FirewallVerdict) -> Value {
    match &v.packet {
        Some((i, d, l)) => json!({
            "Index": i,
            "Direction": if *d == Dir::ToServer { "to_server" } else { "to_client" },
            "Packet": l,
        }),
        None => Value::Null,
    }
}

fn header_json(h: &Header) -> Value {
    json!({
        "SourceAddresses": [format!("{}/32", h.src)],
        "DestinationAddresses": [format!("{}/32", h.dst)],
        "SourcePortRanges": [{"From": h.sport, "To": h.sport}],
        "DestinationPortRanges": [{"From": h.dport, "To": h.dport}],
        "Protocol": h.proto.to_string(),
    })
}

impl Analysis {
    /// True when the answer is `reachable`.
    pub fn reachable(&self) -> bool {
        self.status == Status::Reachable
    }

    /// The firewall's verdict by name.
    pub fn verdict(&self, firewall: &str) -> Option<&FirewallVerdict> {
        self.firewalls.iter().find(|v| v.firewall == firewall)
    }

    /// A one-line summary of who decided: `sid 2 reject "msg" (group)`, `aws:drop_established`,
    /// the route table that had no route, ….
    pub fn decided_by(&self) -> String {
        if let Some(v) = self
            .firewalls
            .iter()
            .find(|v| v.blocked)
            .or_else(|| self.firewalls.first())
        {
            let at = v
                .packet
                .as_ref()
                .map(|(i, _, l)| format!(" at packet {i} ({l})"))
                .unwrap_or_default();
            return match (&v.rule, &v.default_action) {
                (Some(r), _) => format!(
                    "{}: {} sid {} \"{}\" ({}){at}",
                    v.firewall, v.action, r.sid, r.msg, r.group
                ),
                (None, Some(d)) => format!("{}: default action {d}{at}", v.firewall),
                _ => format!("{}: {}", v.firewall, v.action),
            };
        }
        let stop = self
            .forward
            .stop
            .as_ref()
            .or(self.ret.as_ref().and_then(|r| r.stop.as_ref()));
        match stop {
            Some(s) => format!("{} at {}", s.code, s.component),
            None => "no firewall on the path".into(),
        }
    }

    fn components(&self, walk: &Walk) -> Vec<Value> {
        walk.hops
            .iter()
            .enumerate()
            .map(|(i, h)| self.component(i + 1, h))
            .collect()
    }

    fn component(&self, seq: usize, h: &Hop) -> Value {
        let mut v = json!({
            "SequenceNumber": seq,
            "Component": {"Id": h.id, "Name": h.kind.as_str()},
            "InboundHeader": header_json(&h.inbound),
            "OutboundHeader": header_json(&h.outbound),
        });
        if let Some(r) = route_json(h) {
            v["RouteTableRoute"] = r;
        }
        if let Some(n) = &h.note {
            v["Note"] = json!(n);
        }
        if h.kind == Kind::Firewall {
            if let Some(fv) = self.verdict(&h.id) {
                let mut f = json!({
                    "Policy": fv.policy,
                    "Action": fv.action,
                    "Blocked": fv.blocked,
                    "PacketsSeen": fv.packets_seen,
                    "DecidingPacket": packet_json(fv),
                    "Explain": fv.explain,
                });
                if let Some(r) = &fv.rule {
                    f["RuleGroup"] = json!(r.group);
                    f["Sid"] = json!(r.sid);
                    f["Rev"] = json!(r.rev);
                    f["Msg"] = json!(r.msg);
                    f["Rule"] = json!(r.text);
                }
                if let Some(d) = &fv.default_action {
                    f["DefaultAction"] = json!(d);
                }
                v["Firewall"] = f;
            }
        }
        v
    }

    /// The answer as JSON: AWS analysis field names (`NetworkPathFound`,
    /// `ForwardPathComponents`, `ReturnPathComponents`, `Explanations`) plus `status`.
    pub fn to_json(&self) -> Value {
        let q = &self.question;
        json!({
            "status": self.status.as_str(),
            "NetworkPathFound": self.status == Status::Reachable,
            "Question": {
                "From": q.from,
                "To": match &q.to { Dest::Host(h) => h.clone(), Dest::Addr(a) => a.to_string(), Dest::Name(n) => n.clone() },
                "Port": q.port,
                "Proto": q.talk.proto.to_string(),
                "Sni": if q.talk.proto == synth::Proto::Tls { q.talk.sni.clone() } else { None },
                "Host": if q.talk.proto == synth::Proto::Http { q.talk.host.clone() } else { None },
                "MailFrom": if q.talk.proto == synth::Proto::Smtp { Some(&q.talk.mail_from) } else { None },
                "Rcpt": if q.talk.proto == synth::Proto::Smtp { Some(&q.talk.rcpt) } else { None },
                "Qname": if q.talk.proto == synth::Proto::Dns { Some(&q.talk.qname) } else { None },
            },
            "ForwardPathComponents": self.components(&self.forward),
            "ReturnPathComponents": self.ret.as_ref().map(|r| self.components(r)).unwrap_or_default(),
            "Explanations": self.explanations,
        })
    }

    /// The answer for people.
    pub fn to_text(&self) -> String {
        let q = &self.question;
        let mut s = String::new();
        let to = match &q.to {
            Dest::Host(h) => h.clone(),
            Dest::Addr(a) => a.to_string(),
            Dest::Name(n) => format!("{n} ({NAMED_ADDR})"),
        };
        let mut what = q.talk.proto.to_string();
        match (q.talk.proto, &q.talk.sni, &q.talk.host) {
            (synth::Proto::Tls, Some(n), _) => what.push_str(&format!(", SNI {n}")),
            (synth::Proto::Http, _, Some(n)) => what.push_str(&format!(", Host {n}")),
            _ => {}
        }
        if q.talk.proto == synth::Proto::Smtp {
            what.push_str(&format!(
                ", MAIL FROM {}, RCPT TO {}",
                q.talk.mail_from,
                q.talk.rcpt.join(" ")
            ));
        }
        if q.talk.proto == synth::Proto::Dns {
            what.push_str(&format!(", query {}", q.talk.qname));
        }
        let _ = writeln!(s, "{} -> {to} port {} ({what})", q.from, q.port);
        let _ = writeln!(s, "status: {}", self.status.as_str());
        let _ = writeln!(s, "forward path:");
        self.walk_text(&mut s, &self.forward);
        if let Some(r) = &self.ret {
            let _ = writeln!(s, "return path:");
            self.walk_text(&mut s, r);
        }
        for v in &self.firewalls {
            let _ = writeln!(
                s,
                "firewall {} ({}; {}): {}",
                v.firewall,
                v.policy,
                match (v.forward, v.on_return) {
                    (true, true) => "both directions",
                    (true, false) => "forward path only",
                    _ => "return path only",
                },
                if v.blocked { "BLOCKED" } else { "passed" }
            );
            match (&v.rule, &v.default_action) {
                (Some(r), _) => {
                    let _ = writeln!(
                        s,
                        "  decided by rule: group {}, sid {}, rev {}, action {}, msg \"{}\"",
                        r.group, r.sid, r.rev, v.action, r.msg
                    );
                    if !r.text.is_empty() {
                        let _ = writeln!(s, "    {}", r.text);
                    }
                }
                (None, Some(d)) => {
                    let _ = writeln!(s, "  decided by the default action: {d}");
                }
                _ => {}
            }
            if let Some((i, d, l)) = &v.packet {
                let _ = writeln!(
                    s,
                    "  at packet {i} of the conversation ({}, {l}); the firewall saw {} packets of it",
                    if *d == Dir::ToServer { "client to server" } else { "server to client" },
                    v.packets_seen
                );
            }
            for l in &v.explain {
                let _ = writeln!(s, "    explain: {l}");
            }
        }
        for e in &self.explanations {
            let _ = writeln!(
                s,
                "explanation: {} at {}{}",
                e["ExplanationCode"].as_str().unwrap_or(""),
                e["Component"]["Id"].as_str().unwrap_or(""),
                e["Detail"]
                    .as_str()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
        s
    }

    fn walk_text(&self, s: &mut String, w: &Walk) {
        let width = w.hops.iter().map(|h| h.id.len()).max().unwrap_or(0).max(14);
        for (i, h) in w.hops.iter().enumerate() {
            let detail = match h.kind {
                Kind::RouteTable => match &h.route {
                    Some(r) => format!(
                        "{} -> {}{}",
                        r.dest,
                        r.target.name(),
                        if r.implicit { " (VPC local route)" } else { "" }
                    ),
                    None => format!("no route for {}", h.inbound.dst),
                },
                Kind::Firewall => match self.verdict(&h.id) {
                    Some(v) if v.blocked => format!("BLOCKED ({})", v.action),
                    Some(v) => format!("passed ({})", v.action),
                    None => String::new(),
                },
                _ => format!(
                    "{}:{} -> {}:{}",
                    h.inbound.src, h.inbound.sport, h.inbound.dst, h.inbound.dport
                ),
            };
            let note = h
                .note
                .as_ref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:>2} {:<17} {:<width$} {detail}{note}",
                i + 1,
                h.kind.as_str(),
                h.id
            );
        }
        if let Some(st) = &w.stop {
            let _ = writeln!(
                s,
                "     stopped: {} at {}: {}",
                st.code, st.component, st.detail
            );
        }
    }
}

fn route_json(h: &Hop) -> Option<Value> {
    let route = h.route.as_ref()?;
    let mut v = json!({
        "DestinationCidr": route.dest.to_string(),
        "Origin": if route.implicit { "CreateRouteTable" } else { "CreateRoute" },
        "State": if route.target == Target::Blackhole { "blackhole" } else { "active" },
    });
    let t = route.target.name().to_string();
    match &route.target {
        Target::Local => v["GatewayId"] = json!("local"),
        Target::Blackhole => {}
        Target::Firewall(_) | Target::Igw(_) => v["GatewayId"] = json!(t),
        Target::Nat(_) => v["NatGatewayId"] = json!(t),
        Target::Host(_) => v["NetworkInterfaceId"] = json!(t),
    }
    Some(v)
}
