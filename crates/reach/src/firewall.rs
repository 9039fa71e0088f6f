//! A firewall endpoint's policy, compiled once ([`Compiled`]: the `Settings` and the
//! `Arc<RuleSet>` every conversation's fresh [`Sensor`] shares), and what a sensor's records
//! say about who decided ([`Decider`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sekisho_diag::Diagnostic;
use sekisho_engine::records::{AlertInfo, Record};
use sekisho_policy::{LoadOptions, Policy};
use sekisho_sensor::{Mode, RuleSet, Sensor, Settings};

/// A rule as reports name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// The rule group (the policy's `rule_groups[].name`, or `firewall_rules`).
    pub group: String,
    /// Signature id.
    pub sid: u64,
    /// Revision.
    pub rev: u64,
    /// `msg` (empty without one).
    pub msg: String,
    /// The rule's action as written (`pass`, `reject`, `drop:flow`, `accept:hook`, …).
    pub action: String,
    /// The rule's text.
    pub text: String,
}

/// A firewall's policy, loaded and compiled once; [`Compiled::sensor`] makes a fresh
/// sensor for each conversation, sharing the rules.
pub struct Compiled {
    /// The policy file.
    pub policy_path: String,
    /// The policy.
    pub policy: Policy,
    settings: Settings,
    rules: Arc<RuleSet>,
    sids: HashMap<u64, RuleRef>,
}

impl Compiled {
    /// Loads, checks and compiles `path` (with `vars` overrides). Invalid policies and
    /// drop/reject rules the engine cannot evaluate are errors: an answer computed without
    /// them would say "reachable" about traffic the rule was written to stop.
    pub fn load(path: &Path, vars: &[(String, String)]) -> Result<Compiled, Vec<Diagnostic>> {
        let opts = LoadOptions {
            vars: vars.to_vec(),
        };
        let checked = Policy::check_file(path, &opts);
        let (policy, _warnings) = checked.into_result()?;
        let mut settings = Settings::new(Mode::Inline);
        settings.apply_policy(&policy);
        settings.explain = true;
        // A conversation is one flow: a small table (the engine sizes its maps for
        // min(cap, 10,000) flows up front) keeps a sensor per question cheap.
        settings
            .set("flow.max-flows", "64")
            .map_err(|e| vec![Diagnostic::error(e.to_string())])?;
        let rules = RuleSet::from_policy(&policy, settings.compile_options());
        let blocking: Vec<String> = rules
            .not_loaded()
            .iter()
            .filter(|n| n.blocks)
            .map(|n| n.sid.to_string())
            .collect();
        if !blocking.is_empty() {
            return Err(vec![Diagnostic::error(format!(
                "drop/reject rule(s) sid {} cannot be evaluated, so an answer would ignore them",
                blocking.join(", ")
            ))
            .in_file(path.display().to_string())
            .with_hint(
                "`sekisho check` on the policy says why; change or remove them",
            )]);
        }
        let mut sids = HashMap::new();
        for (group, rule) in policy.evaluation_order() {
            let text = group.rule_text(rule);
            let action = text.split_whitespace().next().unwrap_or("").to_string();
            sids.entry(rule.sid()).or_insert_with(|| RuleRef {
                group: group.name.clone(),
                sid: rule.sid(),
                rev: rule.rev(),
                msg: rule.msg().unwrap_or("").to_string(),
                action,
                text: text.trim().to_string(),
            });
        }
        Ok(Compiled {
            policy_path: path.display().to_string(),
            policy,
            settings,
            rules: Arc::new(rules),
            sids,
        })
    }

    /// A fresh sensor (inline, explaining) evaluating the shared rules.
    pub fn sensor(&self) -> Sensor {
        Sensor::new(&self.settings, Some(self.rules.clone()))
    }

    /// The rule with signature id `sid`, as the policy wrote it.
    pub fn rule(&self, sid: u64) -> Option<&RuleRef> {
        self.sids.get(&sid)
    }

    /// The policy's default actions, NFW spelling (`aws:drop_established`); empty: none.
    pub fn default_actions(&self) -> Vec<String> {
        self.policy
            .default_actions
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    /// `strict` or `action`.
    pub fn rule_order(&self) -> String {
        format!("{:?}", self.policy.rule_order).to_ascii_lowercase()
    }

    /// A rule reference from an alert's facts (falling back to the alert when the sid is
    /// not one of the policy's, e.g. a generated domain-list rule).
    pub fn rule_of(&self, a: &AlertInfo) -> RuleRef {
        self.rule(a.sid).cloned().unwrap_or_else(|| RuleRef {
            group: String::new(),
            sid: a.sid,
            rev: a.rev,
            msg: a.signature.clone(),
            action: String::new(),
            text: String::new(),
        })
    }
}

/// What one packet's records say: drops with their rule or default action, pass lines.
#[derive(Debug, Default, Clone)]
pub struct PacketRecords {
    /// `--explain` lines.
    pub explain: Vec<String>,
    /// Drop records: the dropping rule (`None` for a default action) and the reason.
    pub drops: Vec<(Option<AlertInfo>, &'static str)>,
    /// Alerts: (rule, blocked).
    pub alerts: Vec<(AlertInfo, bool)>,
}

/// Drains the sensor's records of the last packet.
pub fn drain(sensor: &mut Sensor) -> PacketRecords {
    let mut out = PacketRecords::default();
    while let Some(r) = sensor.poll_record() {
        match r {
            Record::Explain(l) => out.explain.push(l),
            Record::Drop(d) => out.drops.push((d.alert.clone(), d.reason)),
            Record::Alert(a) => out.alerts.push((a.alert.clone(), a.alert.blocked)),
            _ => {}
        }
    }
    out
}

/// The sid of the first `--explain` line that says a rule passed or accepted the packet or
/// flow (`… sid 1000008 pass: flow passed …`, `… sid 3002 accept:hook matched`), with the
/// line. Lines about rules that did not match (`sid 7 pass: no match: …`) or could not be
/// evaluated are skipped.
pub fn passing_sid(lines: &[String]) -> Option<(u64, &str)> {
    for l in lines {
        let mut rest = l.as_str();
        while let Some(i) = rest.find("sid ") {
            rest = &rest[i + 4..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let Ok(sid) = rest[..digits].parse::<u64>() else {
                continue;
            };
            let after = rest[digits..].trim_start();
            let action = after.split_whitespace().next().unwrap_or("");
            let note = after[action.len()..].trim_start();
            let act = action.trim_end_matches(':');
            let passes = act == "pass" || act.starts_with("pass:") || act.starts_with("accept");
            if passes && !note.starts_with("no match") && !note.starts_with("cannot") {
                return Some((sid, l.as_str()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::passing_sid;

    #[test]
    fn only_lines_where_a_pass_rule_matched_count() {
        let l = |s: &str| vec![s.to_string()];
        assert_eq!(
            passing_sid(&l(
                "pkt 4 flow 1 (a -> b, tls) sid 1001 pass: flow passed; later packets"
            ))
            .map(|p| p.0),
            Some(1001)
        );
        assert_eq!(
            passing_sid(&l(
                "pkt 2 flow 1 (a -> b) sid 7 pass: no match: flow (not established)"
            )),
            None
        );
        assert_eq!(
            passing_sid(&l("pkt 9 flow 1 (a -> b) sid 5 drop: flow dropped")),
            None
        );
        assert_eq!(
            passing_sid(&l(
                "pkt 3 flow 1: hook packet:filter: sid 1000 accept:hook matched"
            ))
            .map(|p| p.0),
            Some(1000)
        );
    }
}
