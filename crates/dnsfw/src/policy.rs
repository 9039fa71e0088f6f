//! Pure policy evaluation: (query name, query type, answer chain) → decision.
//!
//! Semantics follow Route 53 Resolver DNS Firewall (reference `aws-dns-firewall.md` §2, §4, §5):
//! rule groups run in ascending priority, rules inside a group in ascending priority, and the
//! first rule whose domain list (and optional query type) matches ends evaluation, whatever its
//! action (ALLOW terminates too). No match means normal resolution.
//!
//! Nothing here does I/O: the server is a driver around [`Policy::evaluate`] and
//! [`Policy::evaluate_response`].

use crate::domains::{normalise, DomainSet};

/// What a BLOCK rule answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockResponse {
    /// RCODE NOERROR with an empty answer section.
    NoData,
    /// RCODE NXDOMAIN.
    NxDomain,
    /// NOERROR with one CNAME to `domain` (normalised, no trailing dot), TTL in seconds
    /// (0–604800).
    Override {
        /// CNAME target, lower case, no trailing dot.
        domain: String,
        /// TTL of the CNAME record, seconds.
        ttl: u32,
    },
}

/// A rule's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Stop inspecting and resolve normally; nothing firewall-specific is logged.
    Allow,
    /// Stop inspecting, resolve normally and record the match.
    Alert,
    /// Stop inspecting and answer with the block response instead of resolving.
    Block(BlockResponse),
}

/// How a rule treats the CNAME/DNAME chain of an answer (reference §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Redirection {
    /// `INSPECT_REDIRECTION_DOMAIN` (default): every chain member is evaluated too.
    #[default]
    Inspect,
    /// `TRUST_REDIRECTION_DOMAIN`: once the query name matched this rule, the chain is trusted.
    Trust,
}

/// Whether BLOCK rules act (enforce) or only report (alert, the rollout trial period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// BLOCK rules block.
    #[default]
    Enforce,
    /// Every BLOCK acts as ALERT; the decision remembers it would have blocked.
    Alert,
}

/// One rule of a rule group.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Rule name (unique within its group).
    pub name: String,
    /// Priority; lower runs first.
    pub priority: u32,
    /// Index into [`Policy::lists`].
    pub list: usize,
    /// What happens on a match.
    pub action: Action,
    /// Only queries of this type match (numeric RR type); `None` matches all types.
    pub qtype: Option<u16>,
    /// Treatment of redirection chains.
    pub redirection: Redirection,
}

/// A rule group: rules sorted by priority.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// Identifier written to `firewall_rule_group_id` (defaults to the name).
    pub id: String,
    /// Priority; lower runs first.
    pub priority: u32,
    /// Rules in ascending priority.
    pub rules: Vec<Rule>,
}

/// A named domain list.
#[derive(Debug, Clone)]
pub struct DomainList {
    /// List name, as referenced by rules.
    pub name: String,
    /// Identifier written to `firewall_domain_list_id` (defaults to the name).
    pub id: String,
    /// The entries.
    pub set: DomainSet,
}

/// A complete firewall policy: lists, groups (sorted), and the enforcement mode.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Domain lists referenced by index from rules.
    pub lists: Vec<DomainList>,
    /// Rule groups in ascending priority.
    pub groups: Vec<RuleGroup>,
    /// Enforce or alert-only.
    pub mode: Mode,
}

/// Which rule matched: group and rule indexes into [`Policy::groups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index of the group.
    pub group: usize,
    /// Index of the rule inside the group.
    pub rule: usize,
}

/// What the firewall does with a query, as the driver needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Resolve normally (an ALLOW rule or no rule matched); nothing is logged as a match.
    Resolve,
    /// Resolve normally and log the match.
    Alert,
    /// Answer with the matching rule's block response.
    Block,
}

/// The result of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The rule that decided, if any.
    pub hit: Option<Hit>,
    /// What to do.
    pub verdict: Verdict,
    /// True when the rule is a BLOCK demoted to ALERT by [`Mode::Alert`].
    pub demoted: bool,
    /// Which name decided: `None` for the query name, `Some(i)` for the i-th chain member.
    pub chain_index: Option<usize>,
}

impl Decision {
    const NONE: Decision = Decision {
        hit: None,
        verdict: Verdict::Resolve,
        demoted: false,
        chain_index: None,
    };
}

impl Policy {
    /// Sorts groups and rules by priority (stable, so equal priorities keep file order).
    pub fn sort(&mut self) {
        self.groups.sort_by_key(|g| g.priority);
        for g in &mut self.groups {
            g.rules.sort_by_key(|r| r.priority);
        }
    }

    /// The group, rule and list of a hit.
    pub fn parts(&self, hit: Hit) -> (&RuleGroup, &Rule, &DomainList) {
        let g = &self.groups[hit.group];
        let r = &g.rules[hit.rule];
        (g, r, &self.lists[r.list])
    }

    /// True when some rule inspects redirection chains, i.e. when answers must be decoded.
    pub fn inspects_chains(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .any(|r| r.redirection == Redirection::Inspect)
    }

    /// Evaluates one name (any case, trailing dot optional) and query type (numeric).
    pub fn evaluate(&self, qname: &str, qtype: u16) -> Decision {
        let name = normalise(qname);
        self.evaluate_normalised(&name, qtype)
    }

    fn first_hit(&self, name: &str, qtype: u16) -> Option<Hit> {
        for (gi, g) in self.groups.iter().enumerate() {
            for (ri, r) in g.rules.iter().enumerate() {
                if r.qtype.is_some_and(|t| t != qtype) {
                    continue;
                }
                if self.lists[r.list].set.matches(name) {
                    return Some(Hit {
                        group: gi,
                        rule: ri,
                    });
                }
            }
        }
        None
    }

    fn evaluate_normalised(&self, name: &str, qtype: u16) -> Decision {
        let Some(hit) = self.first_hit(name, qtype) else {
            return Decision::NONE;
        };
        let (verdict, demoted) = match (&self.parts(hit).1.action, self.mode) {
            (Action::Allow, _) => (Verdict::Resolve, false),
            (Action::Alert, _) => (Verdict::Alert, false),
            (Action::Block(_), Mode::Enforce) => (Verdict::Block, false),
            (Action::Block(_), Mode::Alert) => (Verdict::Alert, true),
        };
        Decision {
            hit: Some(hit),
            verdict,
            demoted,
            chain_index: None,
        }
    }

    /// Evaluates a query name together with the redirection chain of its answer (the CNAME and
    /// DNAME targets, in answer order).
    ///
    /// The query name is evaluated first. If the rule that matched it trusts redirection, its
    /// decision stands. Otherwise (inspect, or no rule matched) each chain member is evaluated
    /// in order with the query's type, as reference §5 describes; a chain member matched by an
    /// ALLOW rule with `trust` ends inspection. The result is the first BLOCK found, else the
    /// first ALERT (query name first), else the query name's decision. So an allowed name whose
    /// CNAME leads into a blocked one is blocked, which is the practical consequence the
    /// reference gives for allow-lists under INSPECT.
    pub fn evaluate_response(&self, qname: &str, qtype: u16, chain: &[&str]) -> Decision {
        let first = self.evaluate(qname, qtype);
        if first.verdict == Verdict::Block || self.trusts(first) {
            return first;
        }
        let mut alert = (first.verdict == Verdict::Alert).then_some(first);
        for (i, member) in chain.iter().enumerate() {
            let mut d = self.evaluate(member, qtype);
            d.chain_index = Some(i);
            match d.verdict {
                Verdict::Block => return d,
                Verdict::Alert if alert.is_none() => alert = Some(d),
                _ => {}
            }
            if self.trusts(d) {
                break;
            }
        }
        alert.unwrap_or(first)
    }

    fn trusts(&self, d: Decision) -> bool {
        d.hit
            .is_some_and(|h| self.parts(h).1.redirection == Redirection::Trust)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn list(name: &str, entries: &[&str]) -> DomainList {
        let mut set = DomainSet::new();
        for e in entries {
            set.insert(e).unwrap();
        }
        DomainList {
            name: name.into(),
            id: name.into(),
            set,
        }
    }

    pub(crate) fn rule(name: &str, prio: u32, list: usize, action: Action) -> Rule {
        Rule {
            name: name.into(),
            priority: prio,
            list,
            action,
            qtype: None,
            redirection: Redirection::Inspect,
        }
    }

    /// The engineer's walled garden: allow lists, then `*` BLOCK NXDOMAIN.
    pub(crate) fn walled_garden() -> Policy {
        let mut p = Policy {
            lists: vec![
                list(
                    "allowed",
                    &[
                        "gmail.com",
                        "*.google.com",
                        "*.amazonaws.com",
                        "*.amazon.pool.ntp.org",
                        "*.compute.internal",
                        "*.fedoraproject.org",
                    ],
                ),
                list("everything", &["*"]),
            ],
            groups: vec![RuleGroup {
                name: "egress".into(),
                id: "egress".into(),
                priority: 100,
                rules: vec![
                    rule("block-rest", 900, 1, Action::Block(BlockResponse::NxDomain)),
                    rule("allow", 100, 0, Action::Allow),
                ],
            }],
            mode: Mode::Enforce,
        };
        p.sort();
        p
    }

    const A: u16 = 1;
    const MX: u16 = 15;

    #[test]
    fn walled_garden_allows_listed_and_blocks_the_rest() {
        let p = walled_garden();
        let d = p.evaluate("gmail.com.", MX);
        assert_eq!(d.verdict, Verdict::Resolve);
        assert_eq!(p.parts(d.hit.unwrap()).1.name, "allow");
        assert_eq!(
            p.evaluate("gmail-smtp-in.l.google.com", A).verdict,
            Verdict::Resolve
        );
        let d = p.evaluate("yahoo.co.jp.", MX);
        assert_eq!(d.verdict, Verdict::Block);
        assert_eq!(p.parts(d.hit.unwrap()).1.name, "block-rest");
        // `*.google.com` does not cover the apex.
        assert_eq!(p.evaluate("google.com", A).verdict, Verdict::Block);
    }

    #[test]
    fn allow_terminates_before_later_groups() {
        let mut p = walled_garden();
        p.groups.push(RuleGroup {
            name: "late".into(),
            id: "late".into(),
            priority: 200,
            rules: vec![rule(
                "block-gmail",
                1,
                0,
                Action::Block(BlockResponse::NoData),
            )],
        });
        p.sort();
        assert_eq!(p.evaluate("gmail.com", A).verdict, Verdict::Resolve);
    }

    #[test]
    fn group_priority_orders_before_rule_priority() {
        let mut p = Policy {
            lists: vec![list("x", &["x.example"])],
            groups: vec![
                RuleGroup {
                    name: "g2".into(),
                    id: "g2".into(),
                    priority: 200,
                    rules: vec![rule("allow", 1, 0, Action::Allow)],
                },
                RuleGroup {
                    name: "g1".into(),
                    id: "g1".into(),
                    priority: 100,
                    rules: vec![rule("alert", 9000, 0, Action::Alert)],
                },
            ],
            mode: Mode::Enforce,
        };
        p.sort();
        let d = p.evaluate("x.example", A);
        assert_eq!(d.verdict, Verdict::Alert);
        assert_eq!(p.parts(d.hit.unwrap()).0.name, "g1");
    }

    #[test]
    fn qtype_rule_only_matches_its_type() {
        let mut p = walled_garden();
        p.lists.push(list("mx", &["mail.example"]));
        p.groups[0].rules.push(Rule {
            qtype: Some(MX),
            ..rule("mx-alert", 150, 2, Action::Alert)
        });
        p.sort();
        assert_eq!(p.evaluate("mail.example", MX).verdict, Verdict::Alert);
        // Other types fall through to the catch-all.
        let d = p.evaluate("mail.example", A);
        assert_eq!(p.parts(d.hit.unwrap()).1.name, "block-rest");
    }

    #[test]
    fn alert_mode_demotes_block() {
        let mut p = walled_garden();
        p.mode = Mode::Alert;
        let d = p.evaluate("yahoo.co.jp", MX);
        assert_eq!(d.verdict, Verdict::Alert);
        assert!(d.demoted);
        assert_eq!(p.evaluate("gmail.com", MX).verdict, Verdict::Resolve);
    }

    #[test]
    fn inspected_chain_into_blocked_name_is_blocked() {
        let p = walled_garden();
        let d = p.evaluate_response("www.google.com", A, &["cdn.elsewhere.net"]);
        assert_eq!(d.verdict, Verdict::Block);
        assert_eq!(d.chain_index, Some(0));
        // A chain that stays inside the allow list resolves.
        let d = p.evaluate_response("www.google.com", A, &["x.l.google.com"]);
        assert_eq!(d.verdict, Verdict::Resolve);
    }

    #[test]
    fn trusted_chain_is_not_inspected() {
        let mut p = walled_garden();
        p.groups[0].rules[0].redirection = Redirection::Trust;
        let d = p.evaluate_response("www.google.com", A, &["cdn.elsewhere.net"]);
        assert_eq!(d.verdict, Verdict::Resolve);
        assert_eq!(d.chain_index, None);
    }

    #[test]
    fn clean_name_reaching_a_blocklisted_target_is_blocked() {
        let mut p = Policy {
            lists: vec![list("bad", &["*.bad.example"])],
            groups: vec![RuleGroup {
                name: "g".into(),
                id: "g".into(),
                priority: 1,
                rules: vec![rule("b", 1, 0, Action::Block(BlockResponse::NoData))],
            }],
            mode: Mode::Enforce,
        };
        p.sort();
        let d = p.evaluate_response("clean.example", A, &["a.clean.example", "x.bad.example"]);
        assert_eq!((d.verdict, d.chain_index), (Verdict::Block, Some(1)));
        assert_eq!(
            p.evaluate_response("clean.example", A, &[]).verdict,
            Verdict::Resolve
        );
    }

    #[test]
    fn chain_alert_is_reported_when_nothing_blocks() {
        let mut p = walled_garden();
        p.groups[0].rules[1].action = Action::Alert;
        let d = p.evaluate_response("www.google.com", A, &["cdn.elsewhere.net"]);
        assert_eq!((d.verdict, d.chain_index), (Verdict::Alert, Some(0)));
    }
}
