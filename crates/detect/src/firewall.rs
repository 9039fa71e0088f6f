//! Suricata 8 firewall mode: the fail-closed rule set evaluated before threat detection (TD).
//!
//! Tables modelled (suricata-firewall-mode.md §3, §6): `packet:filter` (hooks `all` and
//! `flow_start`, file order, default `drop:packet`) and `app:filter` for every protocol
//! whose registry entry names progress states (the hooks `<proto>:<state>` per direction,
//! e.g. the mail protocol's `request_started|request_data|request_complete`; file order per
//! hook, default `drop:flow`). `pre_flow`/`pre_stream` and the hooks of protocols without
//! progress states are listed by [`Firewall::not_loaded`] (keyword `hook`), never silently
//! ignored.
//!
//! Per transaction and direction the hooks from the last inspected one up to the
//! transaction's progress are walked. Within a hook, a rule that matched this transaction
//! before is not evaluated again (it alerts once per transaction); if it is an accept for the
//! transaction's current hook it accepts again, as Suricata re-applies a stored full match.
//! A hook no accept rule covered gets the default policy unless an accept covered it on an
//! earlier packet. `xbits:...,track tx` bits live per transaction.

use sekisho_engine::app::{AppLayer, AppProto, TxRef, PROTOCOLS};
use sekisho_engine::PacketContext;
use sekisho_policy::Policy;
use sekisho_rules::{
    Action, ActionKind, ActionScope, ActionSpec, BitsCmd, Flowbits, ProtoKind, Rule, RuleOption,
    Track,
};

use crate::detector::{eval, EvalState};
use crate::output::AlertInfo;
use crate::payload::MatchScratch;
use crate::sig::{app_proto_from_name, compile_rule, reject_to, BitNames, NotLoaded, Sig, SigKind};

/// Most transactions whose firewall state one flow keeps (older ones are forgotten).
const MAX_TX_STATES: usize = 256;

/// The hook names of `proto` in direction index `dir` (0 request, 1 response), in
/// progress order (from the protocol registry).
fn hook_names(proto: AppProto, dir: usize) -> &'static [&'static str] {
    proto.def().map_or(&[], |d| d.hooks[dir])
}

/// A default policy: what happens at a table or hook no accept rule covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultPolicy {
    /// The action with its scope (`drop:packet`, `drop:flow`, `accept:hook`, `reject:flow` ...).
    pub action: ActionSpec,
    /// Emit the default-policy alert (sid 2201000 packet, 2201001 app).
    pub alert: bool,
}

impl DefaultPolicy {
    fn text(&self) -> String {
        spec_text(self.action)
    }
}

/// Firewall configuration: the default policies (Suricata's `firewall.policies`).
#[derive(Debug, Clone)]
pub struct FirewallConfig {
    /// `packet:filter` default (Suricata: `drop:packet`).
    pub packet_filter: DefaultPolicy,
    /// Default of every app-layer hook (Suricata: `drop:flow`).
    pub app: DefaultPolicy,
    /// Collect explain lines in [`FwOutcome::explain`].
    pub explain: bool,
    /// The engine's protocol switches: a rule on the hooks of a protocol that is not parsed
    /// (`enabled: no` or `detection-only`) could never fire, so it is not loaded.
    pub protocols: sekisho_engine::ProtocolSwitches,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            packet_filter: DefaultPolicy {
                action: ActionSpec {
                    kind: ActionKind::Drop,
                    scope: Some(ActionScope::Packet),
                },
                alert: false,
            },
            app: DefaultPolicy {
                action: ActionSpec {
                    kind: ActionKind::Drop,
                    scope: Some(ActionScope::Flow),
                },
                alert: false,
            },
            explain: false,
            protocols: Default::default(),
        }
    }
}

/// Where a firewall rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FwHook {
    /// `packet:filter`; `flow_start` only on the first packet of each direction.
    Packet { flow_start: bool },
    /// An app-layer hook: the protocol, direction index (0 request, 1 response) and
    /// progress value.
    App {
        proto: AppProto,
        dir: usize,
        progress: usize,
    },
}

/// Where in an app protocol's hooks an evaluation is: protocol, direction index, hook
/// being evaluated and the transaction's current progress in that direction.
#[derive(Debug, Clone, Copy)]
struct HookAt {
    proto: AppProto,
    d: usize,
    h: usize,
    cur: usize,
}

/// One compiled firewall rule.
struct FwRule {
    sig: Sig,
    primary: ActionSpec,
    alert: bool,
    /// Secondary `pass`: `Some(true)` for `pass:flow`.
    pass: Option<bool>,
    hook: FwHook,
    xbits_cond: Vec<(BitsCmd, u32)>,
    xbits_act: Vec<(BitsCmd, u32)>,
}

impl FwRule {
    fn hook_text(&self) -> String {
        hook_text(self.hook)
    }
}

fn hook_text(h: FwHook) -> String {
    match h {
        FwHook::Packet { .. } => "packet:filter".to_string(),
        FwHook::App {
            proto,
            dir,
            progress,
        } => format!(
            "{}:{}",
            proto.as_str(),
            hook_names(proto, dir).get(progress).unwrap_or(&"?")
        ),
    }
}

fn spec_text(s: ActionSpec) -> String {
    match s.scope {
        Some(sc) => format!("{}:{}", s.kind.as_str(), sc.as_str()),
        None => s.kind.as_str().to_string(),
    }
}

fn is_drop(k: ActionKind) -> bool {
    !matches!(
        k,
        ActionKind::Accept | ActionKind::Alert | ActionKind::Pass | ActionKind::Config
    )
}

/// The app hooks of one protocol, per direction and progress state.
#[derive(Default)]
struct AppHooks {
    /// Rule indices per hook, in file order.
    rules: [Vec<Vec<usize>>; 2],
    /// A `<hook` accept rule exists at a later hook: this hook is accepted automatically.
    auto_accept: [Vec<bool>; 2],
}

impl AppHooks {
    fn new(proto: AppProto) -> Self {
        let n = |d: usize| hook_names(proto, d).len();
        AppHooks {
            rules: [vec![Vec::new(); n(0)], vec![Vec::new(); n(1)]],
            auto_accept: [vec![false; n(0)], vec![false; n(1)]],
        }
    }
}

/// The firewall rule set compiled from a policy's `firewall_rules` group.
pub struct Firewall {
    rules: Vec<FwRule>,
    packet: Vec<usize>,
    /// App hook tables, indexed like the protocol registry's list.
    app: Vec<AppHooks>,
    not_loaded: Vec<NotLoaded>,
    bits: BitNames,
    xbits: BitNames,
    cfg: FirewallConfig,
}

/// The firewall's verdict on one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwVerdict {
    /// The packet goes on to TD.
    AcceptPacket,
    /// This and every later packet of the flow are accepted by the firewall (TD still runs).
    AcceptFlow,
    /// The packet is dropped (TD does not see it).
    DropPacket,
    /// The packet and the rest of the flow are dropped.
    DropFlow,
}

impl FwVerdict {
    /// True for the drop verdicts.
    pub fn is_drop(self) -> bool {
        matches!(self, FwVerdict::DropPacket | FwVerdict::DropFlow)
    }
}

/// An alert raised by the firewall (EVE `alert.engine: "fw"` with `firewall{hook, policy}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwAlert {
    /// Rule identity and text; `blocked` when the rule's action drops/rejects.
    pub info: AlertInfo,
    /// `firewall.hook`, e.g. `packet:filter`, `<proto>:request_data`.
    pub hook: String,
    /// `firewall.policy`, e.g. `accept:hook`, `drop:flow`.
    pub policy: String,
    /// The transaction an app-hook alert is about.
    pub tx_id: Option<u64>,
}

/// What the firewall decided for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwOutcome {
    /// The verdict.
    pub verdict: FwVerdict,
    /// EVE `drop.reason` for drops: `firewall rules`, `firewall default packet policy`,
    /// `firewall default app policy` or `firewall flow drop`.
    pub drop_reason: Option<&'static str>,
    /// The rule that dropped (none for a default policy or an earlier flow drop): its
    /// alert, if it has one, is the one the `drop` record carries.
    pub drop_sid: Option<u64>,
    /// The drop came from a `reject*` action: who gets the RST/ICMP error.
    pub reject: Option<sekisho_engine::RejectTo>,
    /// Threat detection must not run on this packet (secondary `pass` on this packet or an
    /// earlier `pass:flow`).
    pub skip_td: bool,
    /// `accept:packet|flow` in `packet:filter`: the app-layer stage (app:td) is skipped for
    /// this packet; packet TD rules still run.
    pub skip_app_td: bool,
    /// Alerts to log, in order.
    pub alerts: Vec<FwAlert>,
    /// `--explain` lines (only with [`FirewallConfig::explain`]).
    pub explain: Vec<String>,
}

/// Per-transaction firewall state, one direction per index (0 request, 1 response).
#[derive(Debug, Clone, Default)]
struct TxState {
    tx_id: u64,
    /// First hook not yet closed; the number of hooks = all done.
    next: [usize; 2],
    /// Bit `h`: hook `h` was accepted on some packet.
    accepted: [u8; 2],
    /// `accept:tx` applied.
    tx_accepted: [bool; 2],
    /// Rule indices that matched this transaction.
    matched: Vec<usize>,
    /// `xbits ... track tx` set on this transaction.
    xbits: Vec<u32>,
}

/// Per-flow firewall state; create with `FwFlow::default()` and keep it with the flow.
#[derive(Debug, Clone, Default)]
pub struct FwFlow {
    /// `accept:flow`: (packet, sid).
    accepted: Option<(u64, u64)>,
    /// Flow drop: (packet, sid; 0 for a default policy).
    dropped: Option<(u64, u64)>,
    /// Secondary `pass:flow`: TD skips the flow.
    td_pass: bool,
    bits: Vec<u32>,
    txs: Vec<TxState>,
}

impl FwFlow {
    /// Carries the flow's state over from firewall tables `old` to `new` (a reload):
    /// flowbits and tx xbits by name; a bit the new rules never name is forgotten.
    /// "Matched earlier in this tx" marks are rule indices of the old tables, so they are
    /// dropped: after a reload a firewall rule may match a live transaction once more.
    pub(crate) fn carry_over(&mut self, old: Option<&Firewall>, new: Option<&Firewall>) {
        let map = |ids: &mut Vec<u32>, o: Option<&BitNames>, n: Option<&BitNames>| {
            let mapped = match (o, n) {
                (Some(o), Some(n)) => ids.iter().filter_map(|&b| n.find(o.name(b))).collect(),
                _ => Vec::new(),
            };
            *ids = mapped;
        };
        map(&mut self.bits, old.map(|f| &f.bits), new.map(|f| &f.bits));
        for tx in &mut self.txs {
            map(&mut tx.xbits, old.map(|f| &f.xbits), new.map(|f| &f.xbits));
            tx.matched.clear();
        }
    }

    /// The flow was accepted by `accept:flow` (EVE flow `action: accept`).
    pub fn accepted(&self) -> bool {
        self.accepted.is_some()
    }

    /// The firewall dropped the flow (EVE flow `action: drop`).
    pub fn dropped(&self) -> bool {
        self.dropped.is_some()
    }

    /// A secondary `pass:flow` took effect: TD skips the flow.
    pub fn td_passed(&self) -> bool {
        self.td_pass
    }
}

fn nl(rule: &Rule, group: &str, keyword: &str, reason: &str) -> NotLoaded {
    NotLoaded {
        gid: rule.gid(),
        sid: rule.sid(),
        group: group.to_string(),
        keyword: keyword.to_string(),
        reason: reason.to_string(),
        // An accept rule left out only makes the table stricter (fail closed); a drop or
        // reject rule left out may let through what it was written to stop.
        blocks: is_drop(rule.action.kind()),
    }
}

impl Firewall {
    /// Compiles the policy's `firewall_rules` group (`None` when the policy has none).
    pub fn from_policy(policy: &Policy, cfg: FirewallConfig) -> Option<Firewall> {
        let g = policy.firewall_rules.as_ref()?;
        let vars = policy.variables_for(g);
        Some(Firewall::compile(&g.rules, &g.name, &vars, cfg))
    }

    /// Compiles firewall rules in file order.
    pub fn compile(
        rules: &[Rule],
        group: &str,
        vars: &sekisho_rules::Variables,
        cfg: FirewallConfig,
    ) -> Firewall {
        let mut fw = Firewall {
            rules: Vec::new(),
            packet: Vec::new(),
            app: PROTOCOLS.iter().map(|d| AppHooks::new(d.proto)).collect(),
            not_loaded: Vec::new(),
            bits: BitNames::default(),
            xbits: BitNames::default(),
            cfg,
        };
        for r in rules {
            match fw.compile_one(r, group, vars) {
                Ok(()) => {}
                Err(e) => fw.not_loaded.push(e),
            }
        }
        fw
    }

    fn compile_one(
        &mut self,
        r: &Rule,
        group: &str,
        vars: &sekisho_rules::Variables,
    ) -> Result<(), NotLoaded> {
        let Some(h) = &r.protocol.hook else {
            return Err(nl(r, group, "hook", "firewall rules need an explicit hook"));
        };
        let primary = r.action.primary;
        let Some(scope) = primary.scope else {
            return Err(nl(
                r,
                group,
                "action",
                "firewall rules need an explicit action scope",
            ));
        };
        match primary.kind {
            ActionKind::Accept => {}
            k if is_drop(k) => {
                if !matches!(scope, ActionScope::Packet | ActionScope::Flow) {
                    return Err(nl(r, group, "action", "drop/reject take :packet or :flow"));
                }
            }
            k => {
                return Err(nl(
                    r,
                    group,
                    k.as_str(),
                    "not a primary firewall action (accept, drop, reject)",
                ))
            }
        }
        if h.and_earlier
            && !(primary.kind == ActionKind::Accept
                && matches!(
                    scope,
                    ActionScope::Flow | ActionScope::Tx | ActionScope::Hook
                ))
        {
            return Err(nl(
                r,
                group,
                "hook",
                "'<hook' needs accept:flow, accept:tx or accept:hook",
            ));
        }
        let hook = match &r.protocol.kind {
            ProtoKind::App(name)
                if app_proto_from_name(name)
                    .is_some_and(|p| p.def().is_some_and(|d| !d.hooks[0].is_empty())) =>
            {
                let proto = app_proto_from_name(name).unwrap_or(AppProto::Unknown);
                if let Some(off) = crate::sig::parser_off(proto, &self.cfg.protocols) {
                    return Err(nl(
                        r,
                        group,
                        proto.as_str(),
                        &format!("the {} hooks need {off}", proto.as_str()),
                    ));
                }
                let found = (0..2).find_map(|d| {
                    hook_names(proto, d)
                        .iter()
                        .position(|n| *n == h.name)
                        .map(|p| (d, p))
                });
                let Some((dir, progress)) = found else {
                    return Err(nl(
                        r,
                        group,
                        "hook",
                        &format!("unknown {} hook", proto.as_str()),
                    ));
                };
                if scope == ActionScope::Packet {
                    return Err(nl(
                        r,
                        group,
                        "action",
                        ":packet on an app-layer hook is only allowed for UDP protocols",
                    ));
                }
                FwHook::App {
                    proto,
                    dir,
                    progress,
                }
            }
            ProtoKind::App(name) => {
                let with_hooks: Vec<&str> = PROTOCOLS
                    .iter()
                    .filter(|d| !d.hooks[0].is_empty())
                    .map(|d| d.name)
                    .collect();
                return Err(nl(
                    r,
                    group,
                    "hook",
                    &format!(
                        "firewall hooks of '{name}' are not evaluated yet (only {})",
                        with_hooks.join(", ")
                    ),
                ));
            }
            _ => match h.name.as_str() {
                "all" => FwHook::Packet { flow_start: false },
                "flow_start" => FwHook::Packet { flow_start: true },
                other => {
                    return Err(nl(
                        r,
                        group,
                        "hook",
                        &format!("the {other} table is not evaluated yet"),
                    ))
                }
            },
        };
        if matches!(hook, FwHook::Packet { .. }) && scope == ActionScope::Tx {
            return Err(nl(r, group, "action", "accept:tx needs an app-layer hook"));
        }
        let mut alert = false;
        let mut pass = None;
        for s in &r.action.secondary {
            match s.kind {
                ActionKind::Alert => alert = true,
                ActionKind::Pass => pass = Some(s.scope == Some(ActionScope::Flow)),
                k => {
                    return Err(nl(
                        r,
                        group,
                        k.as_str(),
                        "secondary actions are alert and pass",
                    ))
                }
            }
        }
        // A TD-shaped copy for the shared compiler; hook, actions and tx xbits stay here.
        let mut td = r.clone();
        td.protocol.hook = None;
        td.action = Action {
            primary: ActionSpec {
                kind: ActionKind::Alert,
                scope: None,
            },
            secondary: Vec::new(),
        };
        let mut xbits_cond = Vec::new();
        let mut xbits_act = Vec::new();
        let mut options = Vec::with_capacity(td.options.len());
        for o in td.options.drain(..) {
            match &o.node {
                RuleOption::Xbits(x) => {
                    if x.track != Track::Tx || !matches!(hook, FwHook::App { .. }) {
                        return Err(nl(
                            r,
                            group,
                            "xbits",
                            "only 'track tx' on app-layer hooks is evaluated",
                        ));
                    }
                    let id = self.xbits.id(&x.name);
                    match x.cmd {
                        BitsCmd::IsSet | BitsCmd::IsNotSet => xbits_cond.push((x.cmd, id)),
                        c => xbits_act.push((c, id)),
                    }
                }
                RuleOption::Flowbits(Flowbits::NoAlert) => {}
                _ => options.push(o),
            }
        }
        td.options = options;
        let idx = self.rules.len();
        let mut sig = compile_rule(&td, group, vars, idx as u32, &mut self.bits)?;
        if matches!(hook, FwHook::Packet { .. }) {
            // Every packet of the table, not only the first of each direction (IP-only).
            if sig.kind == SigKind::IpOnly {
                sig.kind = SigKind::Packet;
            }
        }
        alert |= sig.force_alert;
        match hook {
            FwHook::Packet { .. } => self.packet.push(idx),
            FwHook::App {
                proto,
                dir,
                progress,
            } => {
                if let Some(t) = proto.index().and_then(|i| self.app.get_mut(i)) {
                    t.rules[dir][progress].push(idx);
                    if h.and_earlier {
                        for p in 0..progress {
                            t.auto_accept[dir][p] = true;
                        }
                    }
                }
            }
        }
        self.rules.push(FwRule {
            sig,
            primary,
            alert,
            pass,
            hook,
            xbits_cond,
            xbits_act,
        });
        Ok(())
    }

    /// Rules that were not loaded, with the keyword responsible. Suricata refuses to start
    /// when any firewall rule fails, so callers should treat a non-empty list as an error.
    pub fn not_loaded(&self) -> &[NotLoaded] {
        &self.not_loaded
    }

    /// Number of loaded firewall rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when no firewall rule loaded (everything then falls to the default policies).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The configuration in use.
    pub fn config(&self) -> &FirewallConfig {
        &self.cfg
    }

    fn rule_alert(&self, r: &FwRule, tx_id: Option<u64>) -> FwAlert {
        FwAlert {
            info: AlertInfo {
                blocked: is_drop(r.primary.kind),
                gid: r.sig.gid,
                sid: r.sig.sid,
                rev: r.sig.rev,
                signature: r.sig.msg.clone(),
                category: r.sig.category.clone(),
                severity: r.sig.severity,
            },
            hook: r.hook_text(),
            policy: spec_text(r.primary),
            tx_id,
        }
    }

    fn policy_alert(d: &DefaultPolicy, app: bool, hook: String, tx_id: Option<u64>) -> FwAlert {
        let (sid, msg) = if app {
            (2201001, "SURICATA FW default app policy")
        } else {
            (2201000, "SURICATA FW default packet policy")
        };
        FwAlert {
            info: AlertInfo {
                blocked: is_drop(d.action.kind),
                gid: 1,
                sid,
                rev: 1,
                signature: msg.to_string(),
                category: String::new(),
                severity: 3,
            },
            hook,
            policy: d.text(),
            tx_id,
        }
    }

    /// Evaluates the firewall for one packet (call from `on_packet_end`, with the stream
    /// bytes this packet released as `payload`, or the packet payload for non-TCP).
    pub fn evaluate(
        &self,
        p: &PacketContext<'_>,
        fw: &mut FwFlow,
        payload: &[u8],
        scratch: &mut MatchScratch,
    ) -> FwOutcome {
        let explain = self.cfg.explain;
        let mut out = FwOutcome {
            verdict: FwVerdict::AcceptPacket,
            drop_reason: None,
            drop_sid: None,
            reject: None,
            skip_td: fw.td_pass,
            skip_app_td: false,
            alerts: Vec::new(),
            explain: Vec::new(),
        };
        // Only `--explain` needs the prefix; an empty String does not allocate.
        let pre = if explain {
            format!("pkt {}", p.pkt_num)
        } else {
            String::new()
        };
        if let Some((at, sid)) = fw.dropped {
            out.verdict = FwVerdict::DropFlow;
            out.drop_reason = Some("firewall flow drop");
            if explain {
                out.explain.push(format!(
                    "{pre}: firewall: flow dropped at pkt {at} (sid {sid}) → drop (firewall flow drop)"
                ));
            }
            return out;
        }
        if let Some((at, sid)) = fw.accepted {
            out.verdict = FwVerdict::AcceptFlow;
            if explain {
                out.explain.push(format!(
                    "{pre}: firewall: flow accepted at pkt {at} by sid {sid}; firewall rules skipped"
                ));
            }
            return out;
        }

        // packet:filter (§6 step 3), then app:filter (§6 steps 6, 7).
        if self.packet_filter(p, fw, payload, scratch, &mut out, &pre) {
            return out;
        }
        self.app_filter(p, fw, payload, scratch, &mut out);
        out
    }

    /// The `packet:filter` table on this packet (§6 step 3): rules in file order, the first
    /// accept or drop decides, else the default packet policy. Returns true when the
    /// packet's firewall verdict is final (a drop, `accept:flow`, `accept:packet`).
    fn packet_filter(
        &self,
        p: &PacketContext<'_>,
        fw: &mut FwFlow,
        payload: &[u8],
        scratch: &mut MatchScratch,
        out: &mut FwOutcome,
        pre: &str,
    ) -> bool {
        let explain = self.cfg.explain;
        let mut hook_accepted = false;
        for &i in &self.packet {
            let r = &self.rules[i];
            if r.hook == (FwHook::Packet { flow_start: true }) && !p.first_in_direction {
                continue;
            }
            let es = EvalState {
                bits: &fw.bits,
                tx_matched: &[],
                tx_scanned: None,
                pd_done: false,
            };
            if eval(&r.sig, p, es, payload, &[], scratch).is_err() {
                continue;
            }
            apply_bits(&mut fw.bits, &r.sig);
            if r.alert {
                out.alerts.push(self.rule_alert(r, None));
            }
            if explain {
                out.explain.push(format!(
                    "{pre}: hook packet:filter: sid {} {} matched",
                    r.sig.sid,
                    spec_text(r.primary)
                ));
            }
            if let Some(flow) = r.pass {
                out.skip_td = true;
                fw.td_pass |= flow;
            }
            if is_drop(r.primary.kind) {
                self.drop(out, fw, p, r, "firewall rules");
                return true;
            }
            match r.primary.scope {
                Some(ActionScope::Flow) => {
                    fw.accepted = Some((p.pkt_num, r.sig.sid));
                    out.verdict = FwVerdict::AcceptFlow;
                    out.skip_app_td = true;
                    return true;
                }
                Some(ActionScope::Packet) => {
                    out.skip_app_td = true;
                    return true;
                }
                _ => {
                    hook_accepted = true;
                    break;
                }
            }
        }
        if !hook_accepted {
            let d = self.cfg.packet_filter;
            if d.alert {
                out.alerts.push(Self::policy_alert(
                    &d,
                    false,
                    "packet:filter".to_string(),
                    None,
                ));
            }
            if explain {
                out.explain.push(format!(
                    "{pre}: hook packet:filter: no accept rule matched → default {} (firewall default packet policy)",
                    d.text()
                ));
            }
            if is_drop(d.action.kind) {
                self.default_drop(out, fw, p, d, "firewall default packet policy");
                return true;
            }
        }

        false
    }

    /// The app-layer hooks (§6 steps 6, 7), only for packets that gave the app layer new
    /// data: per live transaction and direction, the hooks from the last inspected one up to
    /// the transaction's progress.
    fn app_filter(
        &self,
        p: &PacketContext<'_>,
        fw: &mut FwFlow,
        payload: &[u8],
        scratch: &mut MatchScratch,
        out: &mut FwOutcome,
    ) {
        let Some(parser) = p.app.and_then(AppLayer::active_parser) else {
            return;
        };
        let proto = parser.proto();
        let d = p.direction.index();
        let n_hooks = hook_names(proto, d).len();
        if payload.is_empty() || n_hooks == 0 {
            return;
        }
        let last = n_hooks - 1;
        let live = parser.txs();
        fw.txs.retain(|t| live.iter().any(|l| l.id() == t.tx_id));
        for tx in live {
            let cur = tx.progress(p.direction).min(last);
            let si = match fw.txs.iter().position(|t| t.tx_id == tx.id()) {
                Some(i) => i,
                None => {
                    if fw.txs.len() >= MAX_TX_STATES {
                        fw.txs.remove(0);
                    }
                    fw.txs.push(TxState {
                        tx_id: tx.id(),
                        ..TxState::default()
                    });
                    fw.txs.len() - 1
                }
            };
            if fw.txs[si].tx_accepted[d] || fw.txs[si].next[d] > last {
                continue;
            }
            let views = [tx];
            let start = fw.txs[si].next[d];
            for h in start..=cur {
                let at = HookAt { proto, d, h, cur };
                match self.eval_hook(p, fw, si, at, payload, &views, scratch, out) {
                    HookResult::Accepted => {}
                    HookResult::TxAccepted => {
                        // The transaction's hooks in both directions: each of sekisho's
                        // firewall protocols carries request and response in one
                        // transaction (suricata-verify ruletype-firewall-21 accepts the
                        // response of a GET accepted by `accept:tx` at request_line).
                        fw.txs[si].tx_accepted = [true; 2];
                        break;
                    }
                    HookResult::Done => return,
                }
            }
            let st = &mut fw.txs[si];
            st.next[d] = if cur == last && st.accepted[d] & (1 << last) != 0 {
                n_hooks
            } else {
                cur
            };
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_hook(
        &self,
        p: &PacketContext<'_>,
        fw: &mut FwFlow,
        si: usize,
        at: HookAt,
        payload: &[u8],
        views: &[TxRef<'_>],
        scratch: &mut MatchScratch,
        out: &mut FwOutcome,
    ) -> HookResult {
        let HookAt { proto, d, h, cur } = at;
        let explain = self.cfg.explain;
        let hook = hook_text(FwHook::App {
            proto,
            dir: d,
            progress: h,
        });
        let Some(table) = proto.index().and_then(|i| self.app.get(i)) else {
            return HookResult::Accepted;
        };
        let tx_id = fw.txs[si].tx_id;
        // Only `--explain` needs the prefix; an empty String does not allocate.
        let pre = if explain {
            format!("pkt {}", p.pkt_num)
        } else {
            String::new()
        };
        for &i in &table.rules[d][h] {
            let r = &self.rules[i];
            if fw.txs[si].matched.contains(&i) {
                if r.primary.kind == ActionKind::Accept && h == cur {
                    if explain {
                        out.explain.push(format!(
                            "{pre}: hook {hook} tx {tx_id}: sid {} {} (matched earlier in this tx)",
                            r.sig.sid,
                            spec_text(r.primary)
                        ));
                    }
                    return self.accept(p, fw, si, d, h, r, out);
                }
                continue;
            }
            let st = &fw.txs[si];
            let xb_ok = r.xbits_cond.iter().all(|(c, id)| {
                let set = st.xbits.contains(id);
                if *c == BitsCmd::IsSet {
                    set
                } else {
                    !set
                }
            });
            if !xb_ok {
                continue;
            }
            let es = EvalState {
                bits: &fw.bits,
                tx_matched: &[],
                tx_scanned: None,
                pd_done: false,
            };
            if eval(&r.sig, p, es, payload, views, scratch).is_err() {
                continue;
            }
            apply_bits(&mut fw.bits, &r.sig);
            let st = &mut fw.txs[si];
            st.matched.push(i);
            for (c, id) in &r.xbits_act {
                match c {
                    BitsCmd::Set if !st.xbits.contains(id) => st.xbits.push(*id),
                    BitsCmd::Unset => st.xbits.retain(|b| b != id),
                    BitsCmd::Toggle => {
                        if st.xbits.contains(id) {
                            st.xbits.retain(|b| b != id);
                        } else {
                            st.xbits.push(*id);
                        }
                    }
                    _ => {}
                }
            }
            if r.alert {
                out.alerts.push(self.rule_alert(r, Some(tx_id)));
            }
            if explain {
                out.explain.push(format!(
                    "{pre}: hook {hook} tx {tx_id}: sid {} {} matched",
                    r.sig.sid,
                    spec_text(r.primary)
                ));
            }
            if let Some(flow) = r.pass {
                out.skip_td = true;
                fw.td_pass |= flow;
            }
            if is_drop(r.primary.kind) {
                self.drop(out, fw, p, r, "firewall rules");
                return HookResult::Done;
            }
            return self.accept(p, fw, si, d, h, r, out);
        }
        let st = &mut fw.txs[si];
        if st.accepted[d] & (1 << h) != 0 {
            return HookResult::Accepted;
        }
        if table.auto_accept[d].get(h).copied().unwrap_or(false) {
            st.accepted[d] |= 1 << h;
            if explain {
                out.explain.push(format!(
                    "{pre}: hook {hook} tx {tx_id}: accepted by a later '<' hook rule"
                ));
            }
            return HookResult::Accepted;
        }
        let dp = self.cfg.app;
        if dp.alert {
            out.alerts
                .push(Self::policy_alert(&dp, true, hook.clone(), Some(tx_id)));
        }
        if explain {
            out.explain.push(format!(
                "{pre}: hook {hook} tx {tx_id}: no accept rule matched → default {} (firewall default app policy)",
                dp.text()
            ));
        }
        if is_drop(dp.action.kind) {
            self.default_drop(out, fw, p, dp, "firewall default app policy");
            return HookResult::Done;
        }
        match dp.action.scope {
            Some(ActionScope::Tx) => HookResult::TxAccepted,
            Some(ActionScope::Flow) if dp.action.kind == ActionKind::Accept => {
                fw.accepted = Some((p.pkt_num, 0));
                out.verdict = FwVerdict::AcceptFlow;
                HookResult::Done
            }
            _ => {
                fw.txs[si].accepted[d] |= 1 << h;
                HookResult::Accepted
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn accept(
        &self,
        p: &PacketContext<'_>,
        fw: &mut FwFlow,
        si: usize,
        d: usize,
        h: usize,
        r: &FwRule,
        out: &mut FwOutcome,
    ) -> HookResult {
        match r.primary.scope {
            Some(ActionScope::Flow) => {
                fw.accepted = Some((p.pkt_num, r.sig.sid));
                out.verdict = FwVerdict::AcceptFlow;
                HookResult::Done
            }
            Some(ActionScope::Tx) => HookResult::TxAccepted,
            _ => {
                fw.txs[si].accepted[d] |= 1 << h;
                HookResult::Accepted
            }
        }
    }

    fn drop(
        &self,
        out: &mut FwOutcome,
        fw: &mut FwFlow,
        p: &PacketContext<'_>,
        r: &FwRule,
        reason: &'static str,
    ) {
        out.reject = reject_to(r.primary.kind);
        out.drop_reason = Some(reason);
        out.drop_sid = Some(r.sig.sid);
        if r.primary.scope == Some(ActionScope::Flow) {
            out.verdict = FwVerdict::DropFlow;
            fw.dropped = Some((p.pkt_num, r.sig.sid));
        } else {
            out.verdict = FwVerdict::DropPacket;
        }
    }

    fn default_drop(
        &self,
        out: &mut FwOutcome,
        fw: &mut FwFlow,
        p: &PacketContext<'_>,
        d: DefaultPolicy,
        reason: &'static str,
    ) {
        out.reject = reject_to(d.action.kind);
        out.drop_reason = Some(reason);
        if d.action.scope == Some(ActionScope::Flow) {
            out.verdict = FwVerdict::DropFlow;
            fw.dropped = Some((p.pkt_num, 0));
        } else {
            out.verdict = FwVerdict::DropPacket;
        }
    }
}

/// How one hook's evaluation ended.
enum HookResult {
    /// The hook is accepted; go on to the next hook.
    Accepted,
    /// `accept:tx`: the rest of this transaction's hooks are accepted, both directions.
    TxAccepted,
    /// The packet's firewall verdict is final (drop, accept:flow).
    Done,
}

fn apply_bits(bits: &mut Vec<u32>, sig: &Sig) {
    for (cmd, ids) in &sig.bits_act {
        for id in ids {
            match cmd {
                BitsCmd::Set if !bits.contains(id) => bits.push(*id),
                BitsCmd::Unset => bits.retain(|b| b != id),
                BitsCmd::Toggle => {
                    if bits.contains(id) {
                        bits.retain(|b| b != id);
                    } else {
                        bits.push(*id);
                    }
                }
                _ => {}
            }
        }
    }
}
