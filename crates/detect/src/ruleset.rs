//! A compiled policy: rules in evaluation order, the prefilter, the default actions, and
//! the list of rules that could not be loaded.

use std::time::Instant;

use sekisho_engine::app::AppProto;
use sekisho_engine::{Direction, PacketContext};
use sekisho_policy::{DefaultAction, Policy, RuleOrder};
use sekisho_rules::{ActionKind, BitsCmd, Rule, Variables};

use crate::firewall::{DefaultPolicy, Firewall, FirewallConfig};
use crate::prefilter::{Prefilter, PrefilterStats};
use crate::sig::{compile_rule, BitNames, BufKind, NotLoaded, Sig};

/// Which direction NFW's `aws:drop_established` / `aws:alert_established` act on.
///
/// AWS documents only that the bidirectional *app-layer* variant drops server banners; field
/// evidence (a mail policy that passes by app protocol under `drop_established` delivered
/// mail although the server's banner arrives before any rule can pass the flow) says the
/// plain variant leaves
/// server-to-client packets alone. That is the default here; `Both` is the switch for the
/// other reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EstablishedScope {
    /// Client-to-server packets only (default).
    #[default]
    ToServer,
    /// Both directions.
    Both,
}

/// One NFW default action, applied in strict order to packets no rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRule {
    action: DefaultAction,
    scope: EstablishedScope,
}

impl DefaultRule {
    /// The policy name, e.g. `aws:drop_established`.
    pub fn name(&self) -> &'static str {
        match self.action {
            DefaultAction::DropStrict => "aws:drop_strict",
            DefaultAction::DropEstablished => "aws:drop_established",
            DefaultAction::AlertStrict => "aws:alert_strict",
            DefaultAction::AlertEstablished => "aws:alert_established",
            DefaultAction::DropEstablishedAppLayer => "aws:drop_established_app_layer",
            DefaultAction::DropEstablishedAppLayerToServer => {
                "aws:drop_established_app_layer_to_server"
            }
            DefaultAction::AlertEstablishedAppLayer => "aws:alert_established_app_layer",
            DefaultAction::AlertEstablishedAppLayerToServer => {
                "aws:alert_established_app_layer_to_server"
            }
        }
    }

    /// True for the drop family.
    pub fn is_drop(&self) -> bool {
        matches!(
            self.action,
            DefaultAction::DropStrict
                | DefaultAction::DropEstablished
                | DefaultAction::DropEstablishedAppLayer
                | DefaultAction::DropEstablishedAppLayerToServer
        )
    }

    /// True when the default acts on this packet (it is only asked when no rule decided).
    /// `established` is the flow's state before this packet: the packet that completes the
    /// TCP handshake is connection setup, which the established family lets through (else a
    /// server-first protocol would never see its handshake complete).
    /// `app_ready`: the app layer has parsed what rules decide on (TLS: the whole
    /// ClientHello, however many segments it took); the `*_app_layer` defaults wait for it.
    pub fn applies(
        &self,
        p: &PacketContext<'_>,
        app: AppProto,
        established: bool,
        app_ready: bool,
    ) -> bool {
        let to_server = p.direction == Direction::ToServer;
        match self.action {
            DefaultAction::DropStrict | DefaultAction::AlertStrict => true,
            DefaultAction::DropEstablished | DefaultAction::AlertEstablished => {
                established && (to_server || self.scope == EstablishedScope::Both)
            }
            DefaultAction::DropEstablishedAppLayer | DefaultAction::AlertEstablishedAppLayer => {
                established && app != AppProto::Unknown && app_ready
            }
            DefaultAction::DropEstablishedAppLayerToServer
            | DefaultAction::AlertEstablishedAppLayerToServer => {
                established && app != AppProto::Unknown && app_ready && to_server
            }
        }
    }
}

/// Options for compiling a policy.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Direction scoping of the plain `*_established` defaults.
    pub established_scope: EstablishedScope,
    /// Suricata's `classification.config` entries: (short name, description, priority).
    /// With entries, an alert's `category` is the description of the rule's classtype (`""`
    /// for an unknown one) and its severity defaults to the classtype's priority, as
    /// Suricata does; without any, `category` is the classtype name as written.
    pub classtypes: Vec<(String, String, u8)>,
    /// Collect firewall-mode `--explain` lines.
    pub explain: bool,
    /// The engine's `app-layer.protocols.<name>.enabled` switches: a rule needing a protocol
    /// that is off (or a buffer of one that is `detection-only`) is not loaded, since it
    /// could never match ([`NotLoaded`], failing the load if it blocks).
    pub protocols: sekisho_engine::ProtocolSwitches,
    /// The firewall's `packet:filter` default policy (Suricata's
    /// `firewall.policies.packet.filter`); `None` keeps [`FirewallConfig`]'s default,
    /// Suricata's `drop:packet`. Only drop/reject policies and `accept:hook` are evaluated
    /// as Suricata does (an accept default lets the packet go on to the app hooks).
    pub firewall_packet_filter: Option<DefaultPolicy>,
}

/// Parses `classification.config` text: `config classification: short,Description,prio`
/// lines; other lines are ignored.
pub fn parse_classification(text: &str) -> Vec<(String, String, u8)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("config classification:"))
        .filter_map(|rest| {
            let mut it = rest.splitn(3, ',');
            let short = it.next()?.trim().to_string();
            let long = it.next()?.trim().to_string();
            let prio = it.next()?.trim().parse().ok()?;
            Some((short, long, prio))
        })
        .collect()
}

/// What loading cost, for the load report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadStats {
    /// Rules in the policy.
    pub rules: usize,
    /// Rules compiled.
    pub loaded: usize,
    /// Wall time of compilation, seconds.
    pub compile_secs: f64,
    /// Prefilter sizes.
    pub prefilter: PrefilterStats,
}

/// The compiled rules of a policy: immutable once built, and `Send + Sync`, so one
/// `Arc<RuleSet>` serves every worker and a reload swaps in a new one beside the old
/// (per-worker state, such as prefilter scratch, thresholds and per-flow bits, lives in the
/// [`crate::Detector`]).
pub struct RuleSet {
    sigs: Vec<Sig>,
    prefilter: Prefilter,
    strict: bool,
    defaults: Vec<DefaultRule>,
    not_loaded: Vec<NotLoaded>,
    bits: BitNames,
    needs_stream: bool,
    needs_app_tx: bool,
    can_drop: bool,
    stats: LoadStats,
    firewall: Option<Firewall>,
}

/// Action class for action order (suricata-rules.md §11).
fn action_class(a: ActionKind) -> u8 {
    match a {
        ActionKind::Pass => 0,
        ActionKind::Drop => 1,
        ActionKind::Reject
        | ActionKind::RejectSrc
        | ActionKind::RejectDst
        | ActionKind::RejectBoth => 2,
        _ => 3,
    }
}

/// Flowbit setters sort before readers inside one action class.
fn bits_rank(r: &Rule) -> u8 {
    use sekisho_rules::{Flowbits, RuleOption};
    let (mut sets, mut reads) = (false, false);
    for o in &r.options {
        if let RuleOption::Flowbits(Flowbits::Cmd(c, _)) = &o.node {
            match c {
                BitsCmd::IsSet | BitsCmd::IsNotSet => reads = true,
                _ => sets = true,
            }
        }
    }
    // Suricata: setters, then set-and-read, then readers, then rules without flowbits.
    match (sets, reads) {
        (true, false) => 0,
        (true, true) => 1,
        (false, true) => 2,
        (false, false) => 3,
    }
}

/// Applies threshold.config to the compiled rules by (gid, sid), in file order:
/// `threshold`/`event_filter` replace the rule's own threshold, `suppress` lines add up, a
/// `rate_filter` replaces an earlier one. Lines naming no loaded rule, and `ip` values that
/// do not resolve, change nothing (the policy loader reported them).
fn apply_threshold_config(
    sigs: &mut [Sig],
    sig_vars: &[usize],
    vars: &[Variables],
    cfg: &sekisho_rules::ThresholdConfig,
) {
    use crate::threshold::{RateFilter, Spec, Suppress};
    use sekisho_rules::ThresholdDirective as D;
    let wanted = |sig: &Sig, gid: u32, sid: u32| {
        (sid == 0 || u64::from(sid) == sig.sid) && (gid == 0 || u64::from(gid) == sig.gid)
    };
    // Rules by sid, so a line naming one rule does not walk all of them (ET Open: 22k).
    let mut by_sid: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for (i, sig) in sigs.iter().enumerate() {
        by_sid.entry(sig.sid).or_default().push(i);
    }
    let all: Vec<usize> = (0..sigs.len()).collect();
    for e in &cfg.entries {
        let sid = match &e.directive {
            D::Threshold { sid, .. } | D::Suppress { sid, .. } | D::RateFilter { sid, .. } => *sid,
        };
        let targets = if sid == 0 {
            &all
        } else {
            match by_sid.get(&u64::from(sid)) {
                Some(v) => v,
                None => continue,
            }
        };
        for &i in targets {
            let Some(sig) = sigs.get_mut(i) else { continue };
            match &e.directive {
                D::Threshold {
                    gid,
                    sid,
                    threshold: t,
                } if wanted(sig, *gid, *sid) => {
                    sig.threshold = Some(Spec::threshold(
                        t.kind,
                        t.track,
                        t.count,
                        t.seconds,
                        t.multiplier,
                    ));
                }
                D::Suppress { gid, sid, by } if wanted(sig, *gid, *sid) => {
                    let by = match by {
                        None => None,
                        Some((track, ip)) => {
                            let v = sig_vars.get(i).and_then(|&vi| vars.get(vi));
                            match v.map(|v| v.resolve_address(ip)) {
                                Some(Ok(set)) => Some((*track, set)),
                                _ => continue,
                            }
                        }
                    };
                    sig.suppress.push(Suppress { by });
                }
                D::RateFilter {
                    gid,
                    sid,
                    track,
                    count,
                    seconds,
                    new_action,
                    timeout,
                } if wanted(sig, *gid, *sid) => {
                    sig.rate_filter = Some(RateFilter {
                        track: *track,
                        count: *count,
                        window_us: u64::from(*seconds) * 1_000_000,
                        new_action: *new_action,
                        timeout_us: u64::from(*timeout) * 1_000_000,
                    });
                }
                _ => {}
            }
        }
    }
}

impl RuleSet {
    /// An empty rule set (no detection).
    pub fn empty() -> RuleSet {
        RuleSet {
            sigs: Vec::new(),
            prefilter: Prefilter::default(),
            strict: false,
            defaults: Vec::new(),
            not_loaded: Vec::new(),
            bits: BitNames::default(),
            needs_stream: false,
            needs_app_tx: false,
            can_drop: false,
            stats: LoadStats::default(),
            firewall: None,
        }
    }

    /// Compiles `policy`'s rules in its evaluation order with its default actions.
    pub fn from_policy(policy: &Policy, opts: CompileOptions) -> RuleSet {
        let started = Instant::now();
        let mut not_loaded = Vec::new();
        // Suricata 8 firewall mode: its rules are their own tables, evaluated before TD.
        let mut fw_cfg = FirewallConfig {
            explain: opts.explain,
            protocols: opts.protocols,
            ..FirewallConfig::default()
        };
        if let Some(d) = opts.firewall_packet_filter {
            fw_cfg.packet_filter = d;
        }
        let firewall = Firewall::from_policy(policy, fw_cfg);
        if let Some(fw) = &firewall {
            not_loaded.extend(fw.not_loaded().iter().cloned());
        }
        let strict = policy.rule_order == RuleOrder::Strict;
        let mut list: Vec<(&Rule, &str, usize)> = Vec::new();
        let mut vars: Vec<Variables> = Vec::new();
        for g in &policy.rule_groups {
            vars.push(policy.variables_for(g));
            let vi = vars.len() - 1;
            list.extend(g.rules.iter().map(|r| (r, g.name.as_str(), vi)));
        }
        if !strict {
            // Stable: ties keep load order.
            list.sort_by_key(|(r, _, _)| {
                (
                    action_class(r.action.kind()),
                    bits_rank(r),
                    r.priority().unwrap_or(3),
                )
            });
        }
        let mut bits = BitNames::default();
        let mut sigs = Vec::with_capacity(list.len());
        // The variables each compiled rule resolved against (threshold.config `ip` values
        // resolve the same way).
        let mut sig_vars: Vec<usize> = Vec::with_capacity(list.len());
        for (r, g, vi) in &list {
            let order = sigs.len() as u32;
            let compiled = compile_rule(r, g, &vars[*vi], order, &mut bits).and_then(|s| {
                match crate::sig::protocol_gap(&s, r, g, &opts.protocols) {
                    Some(e) => Err(e),
                    None => Ok(s),
                }
            });
            match compiled {
                Ok(mut s) => {
                    if !opts.classtypes.is_empty() {
                        let ct = r.classtype().unwrap_or("");
                        match opts.classtypes.iter().find(|(short, _, _)| short == ct) {
                            Some((_, long, prio)) => {
                                s.category = long.clone();
                                if r.priority().is_none() {
                                    s.severity = *prio;
                                }
                            }
                            None => s.category = String::new(),
                        }
                    }
                    sigs.push(s);
                    sig_vars.push(*vi);
                }
                Err(e) => not_loaded.push(e),
            }
        }
        if let Some(cfg) = &policy.threshold_config {
            apply_threshold_config(&mut sigs, &sig_vars, &vars, cfg);
        }
        let prefilter = Prefilter::build(&sigs);
        // The firewall's app hooks run on the stream bytes a packet released.
        // A rule testing only a transaction's fields (`dns.rrtype`, `ssl_state`) has no app
        // buffer group but needs transactions all the same.
        let needs_app_tx = firewall.is_some()
            || sigs.iter().any(|s| {
                s.kind == crate::sig::SigKind::AppTx || s.groups.iter().any(|g| g.kind.is_app())
            });
        let needs_stream = firewall.is_some()
            || sigs
                .iter()
                .any(|s| s.groups.iter().any(|g| g.kind == BufKind::Payload));
        let defaults = if strict {
            policy
                .default_actions
                .iter()
                .map(|&action| DefaultRule {
                    action,
                    scope: opts.established_scope,
                })
                .collect()
        } else {
            Vec::new()
        };
        let can_drop = firewall.is_some()
            || defaults.iter().any(|d: &DefaultRule| d.is_drop())
            || sigs.iter().any(|s| {
                !matches!(
                    s.action,
                    ActionKind::Pass | ActionKind::Alert | ActionKind::Accept | ActionKind::Config
                )
            });
        let stats = LoadStats {
            rules: list.len() + policy.firewall_rules.as_ref().map_or(0, |f| f.rules.len()),
            loaded: sigs.len() + firewall.as_ref().map_or(0, Firewall::len),
            compile_secs: started.elapsed().as_secs_f64(),
            prefilter: prefilter.stats(),
        };
        RuleSet {
            sigs,
            prefilter,
            strict,
            defaults,
            not_loaded,
            bits,
            needs_stream,
            needs_app_tx,
            can_drop,
            stats,
            firewall,
        }
    }

    /// True when there is nothing to evaluate (no rules, no default actions, no firewall).
    pub fn is_empty(&self) -> bool {
        self.sigs.is_empty() && self.defaults.is_empty() && self.firewall.is_none()
    }

    /// The firewall-mode tables, when the policy has `firewall_rules`.
    pub fn firewall(&self) -> Option<&Firewall> {
        self.firewall.as_ref()
    }

    /// Strict order.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// The compiled rules in evaluation order.
    pub fn sigs(&self) -> &[Sig] {
        &self.sigs
    }

    /// Rule at evaluation position `order`.
    pub fn sig(&self, order: u32) -> Option<&Sig> {
        self.sigs.get(order as usize)
    }

    /// The default actions (strict order only).
    pub fn defaults(&self) -> &[DefaultRule] {
        &self.defaults
    }

    /// Rules that were not loaded, each with the keyword responsible.
    pub fn not_loaded(&self) -> &[NotLoaded] {
        &self.not_loaded
    }

    /// Flowbit names.
    pub fn bit_names(&self) -> &BitNames {
        &self.bits
    }

    /// Load statistics.
    pub fn load_stats(&self) -> LoadStats {
        self.stats
    }

    /// True when some rule uses an app-layer transaction buffer (or firewall mode is on).
    pub fn needs_app_tx(&self) -> bool {
        self.needs_app_tx
    }

    /// True when some rule, default action or firewall table can drop or reject a packet
    /// (inline, the engine then keeps what it needs to undo a dropped packet's delivery).
    pub fn can_drop(&self) -> bool {
        self.can_drop
    }

    /// True when some rule inspects the packet/stream payload.
    pub fn needs_stream(&self) -> bool {
        self.needs_stream
    }

    /// The prefilter (immutable; scans take a worker's [`crate::prefilter::PrefilterScratch`]).
    pub(crate) fn prefilter(&self) -> &Prefilter {
        &self.prefilter
    }
}

/// Compile-time proof that a compiled rule set can be shared between worker threads.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<RuleSet>();
};
