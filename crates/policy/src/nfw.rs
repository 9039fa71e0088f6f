//! AWS Network Firewall JSON: rule groups (`describe-rule-group` output or the bare
//! `RuleGroup` object) and firewall policies (`describe-firewall-policy`).
//!
//! Every rule group form becomes Suricata rule text (NFW reference §5):
//! * `RulesString` as is;
//! * `StatefulRules` (5-tuple) rendered as `action proto src sport dir dst dport (opts)`, with
//!   `Direction` `FORWARD` → `->` and `ANY` → `<>`, `ANY` addresses/ports → `any`, options as
//!   `keyword:setting1,setting2;` (or `keyword;` without settings). AWS's documentation shows
//!   the `msg` of its example without quotes; Suricata requires them, so settings are copied
//!   verbatim (the AWS example already carries the quotes inside the setting);
//! * `RulesSourceList` as a [`DomainList`].

use std::ops::Range;

use sekisho_diag::{Diagnostic, SourceFile};
use serde::Deserialize;

use crate::domain::{check_target, DomainList, ListType, TargetType};
use crate::settings::{check_default_actions, DefaultAction, RuleOrder, StreamExceptionPolicy};
use crate::vars::{VarDef, VarKind};

/// What a rule group JSON file holds once read.
#[derive(Debug, Clone)]
pub struct NfwRuleGroup {
    /// `RuleGroupResponse.RuleGroupName` when present.
    pub name: Option<String>,
    /// `StatefulRuleOptions.RuleOrder`, when given.
    pub rule_order: Option<RuleOrder>,
    /// `RuleVariables.IPSets` / `.PortSets`, in file order.
    pub variables: Vec<VarDef>,
    /// The rules source.
    pub source: NfwSource,
}

/// The three `RulesSource` forms.
#[derive(Debug, Clone)]
pub enum NfwSource {
    /// `RulesString`: Suricata rules, one per line.
    RulesString(String),
    /// `StatefulRules` rendered to Suricata text, one per rule (same order).
    StatefulRules(Vec<String>),
    /// `RulesSourceList`.
    DomainList(DomainList),
}

/// A firewall policy JSON file once read (the parts sekisho uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfwFirewallPolicy {
    /// `StatefulEngineOptions.RuleOrder` (default action order when absent).
    pub rule_order: RuleOrder,
    /// `StatefulDefaultActions`.
    pub default_actions: Vec<DefaultAction>,
    /// `StatefulEngineOptions.StreamExceptionPolicy` (drop when absent).
    pub stream_exception_policy: StreamExceptionPolicy,
    /// `PolicyVariables.RuleVariables.HOME_NET.Definition`.
    pub home_net: Option<Vec<String>>,
    /// Number of `StatefulRuleGroupReferences`.
    pub stateful_group_refs: usize,
}

/// Which NFW document a JSON text is, decided by its top-level keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NfwKind {
    /// A rule group (`RuleGroup` or bare `RulesSource`).
    RuleGroup,
    /// A firewall policy (`FirewallPolicy` or bare policy keys).
    FirewallPolicy,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleGroupDoc {
    rule_group: Option<RuleGroupJson>,
    rule_group_response: Option<RuleGroupResponse>,
    rules_source: Option<RulesSource>,
    rule_variables: Option<RuleVariables>,
    stateful_rule_options: Option<StatefulRuleOptions>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleGroupResponse {
    rule_group_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleGroupJson {
    rules_source: Option<RulesSource>,
    rule_variables: Option<RuleVariables>,
    stateful_rule_options: Option<StatefulRuleOptions>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RulesSource {
    rules_string: Option<String>,
    stateful_rules: Option<Vec<StatefulRule>>,
    rules_source_list: Option<RulesSourceList>,
    stateless_rules_and_custom_actions: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RuleVariables {
    #[serde(rename = "IPSets", default)]
    ip_sets: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    port_sets: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatefulRuleOptions {
    rule_order: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatefulRule {
    action: String,
    header: Header,
    #[serde(default)]
    rule_options: Vec<RuleOptionJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Header {
    protocol: String,
    source: String,
    source_port: String,
    direction: String,
    destination: String,
    destination_port: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleOptionJson {
    keyword: String,
    #[serde(default)]
    settings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RulesSourceList {
    targets: Vec<String>,
    target_types: Vec<String>,
    generated_rules_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FirewallPolicyDoc {
    firewall_policy: Option<FirewallPolicyJson>,
    #[serde(flatten)]
    bare: FirewallPolicyJson,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct FirewallPolicyJson {
    #[serde(default)]
    stateful_default_actions: Option<Vec<String>>,
    stateful_engine_options: Option<EngineOptions>,
    policy_variables: Option<PolicyVariables>,
    #[serde(default)]
    stateful_rule_group_references: Option<Vec<GroupRef>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EngineOptions {
    rule_order: Option<String>,
    stream_exception_policy: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyVariables {
    rule_variables: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupRef {
    priority: Option<i64>,
}

/// The protocols the NFW 5-tuple API accepts (`IP` means all).
pub const STATEFUL_PROTOCOLS: &[&str] = &[
    "IP", "TCP", "UDP", "ICMP", "HTTP", "FTP", "TLS", "SMB", "DNS", "DCERPC", "SSH", "SMTP",
    "IMAP", "MSN", "KRB5", "IKEV2", "TFTP", "NTP", "DHCP", "HTTP2", "QUIC",
];

/// Decides which NFW document `text` is, or `None` when it is neither (or not JSON).
pub fn detect_kind(text: &str) -> Option<NfwKind> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let o = v.as_object()?;
    if o.contains_key("RuleGroup") || o.contains_key("RulesSource") {
        Some(NfwKind::RuleGroup)
    } else if [
        "FirewallPolicy",
        "StatefulDefaultActions",
        "StatefulEngineOptions",
        "StatelessDefaultActions",
        "StatefulRuleGroupReferences",
    ]
    .iter()
    .any(|k| o.contains_key(*k))
    {
        Some(NfwKind::FirewallPolicy)
    } else {
        None
    }
}

/// A JSON syntax or type error located where serde_json stopped.
fn json_error(src: &SourceFile, e: &serde_json::Error) -> Diagnostic {
    let msg = e.to_string();
    let msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let d = Diagnostic::error(msg).with_code("json");
    if e.line() == 0 {
        return d.in_file(src.name());
    }
    let off = line_col_offset(src.text(), e.line(), e.column());
    d.at_span(src, off..off + 1)
}

fn line_col_offset(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &text[start.min(text.len())..];
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let byte = rest[..line_len]
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(line_len, |(i, _)| i);
    start + byte
}

/// Finds the JSON string literal `value` in `text` at or after `from`, for locating semantic
/// errors (the typed model no longer knows positions). Falls back to `None`.
fn find_string(text: &str, value: &str, from: usize) -> Option<Range<usize>> {
    let lit = serde_json::to_string(value).ok()?;
    let at = text.get(from..)?.find(&lit)? + from;
    Some(at..at + lit.len())
}

/// Locates `value` (a JSON string in the file) or the whole file.
fn locate(d: Diagnostic, src: &SourceFile, value: &str) -> Diagnostic {
    match find_string(src.text(), value, 0) {
        Some(r) => d.at_span(src, r),
        None => d.in_file(src.name()),
    }
}

fn err_at(src: &SourceFile, value: &str, e: crate::settings::ParseError) -> Diagnostic {
    let d = Diagnostic::error(e.message).with_code("nfw");
    let d = locate(d, src, value);
    match e.hint {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

/// Reads a rule group JSON document. Errors are located in `src`; `None` when the document
/// cannot be used at all.
pub fn parse_rule_group(src: &SourceFile, diags: &mut Vec<Diagnostic>) -> Option<NfwRuleGroup> {
    let doc: RuleGroupDoc = match serde_json::from_str(src.text()) {
        Ok(d) => d,
        Err(e) => {
            diags.push(json_error(src, &e));
            return None;
        }
    };
    let name = doc.rule_group_response.and_then(|r| r.rule_group_name);
    let (source, vars, opts) = match doc.rule_group {
        Some(g) => (g.rules_source, g.rule_variables, g.stateful_rule_options),
        None => (
            doc.rules_source,
            doc.rule_variables,
            doc.stateful_rule_options,
        ),
    };
    let Some(source) = source else {
        diags.push(
            Diagnostic::error("rule group has no RulesSource")
                .with_code("nfw")
                .in_file(src.name())
                .with_hint("expected the output of `aws network-firewall describe-rule-group` or a RuleGroup object"),
        );
        return None;
    };
    let rule_order = match opts.and_then(|o| o.rule_order) {
        Some(w) => match RuleOrder::parse(&w) {
            Ok(o) => Some(o),
            Err(e) => {
                diags.push(err_at(src, &w, e));
                None
            }
        },
        None => None,
    };
    let mut variables = Vec::new();
    if let Some(v) = vars {
        for (kind, sets) in [(VarKind::Address, v.ip_sets), (VarKind::Port, v.port_sets)] {
            for (name, def) in sets.unwrap_or_default() {
                let items: Vec<String> = def
                    .get("Definition")
                    .and_then(|d| d.as_array())
                    .map(|a| {
                        a.iter()
                            .map(|x| match x {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if items.is_empty() {
                    diags.push(locate(
                        Diagnostic::error(format!("rule variable '{name}' has no Definition"))
                            .with_code("nfw"),
                        src,
                        &name,
                    ));
                    continue;
                }
                variables.push(VarDef::new(&name, kind, format!("[{}]", items.join(", "))));
            }
        }
    }
    let forms = usize::from(source.rules_string.is_some())
        + usize::from(source.stateful_rules.is_some())
        + usize::from(source.rules_source_list.is_some());
    if source.stateless_rules_and_custom_actions.is_some() && forms == 0 {
        diags.push(locate(
            Diagnostic::error("stateless rule groups are not supported")
                .with_code("nfw")
                .with_hint("sekisho runs the stateful engine only; use StatefulRules, RulesString or RulesSourceList"),
            src,
            "StatelessRulesAndCustomActions",
        ));
        return None;
    }
    if forms != 1 {
        diags.push(locate(
            Diagnostic::error(format!(
                "RulesSource must hold exactly one of RulesString, StatefulRules, RulesSourceList (found {forms})"
            ))
            .with_code("nfw"),
            src,
            "RulesSource",
        ));
        return None;
    }
    let source = if let Some(s) = source.rules_string {
        NfwSource::RulesString(s)
    } else if let Some(rules) = source.stateful_rules {
        let mut out = Vec::new();
        let mut from = find_string(src.text(), "StatefulRules", 0).map_or(0, |r| r.end);
        for r in &rules {
            // Locate each rule's errors at its own "Action" key.
            let at = find_string(src.text(), "Action", from);
            if let Some(a) = &at {
                from = a.end;
            }
            match render_stateful_rule(r) {
                Ok(text) => out.push(text),
                Err(e) => {
                    let d = Diagnostic::error(e.message).with_code("nfw");
                    let d = match &at {
                        Some(a) => d.at_span(src, a.clone()),
                        None => d.in_file(src.name()),
                    };
                    diags.push(match e.hint {
                        Some(h) => d.with_hint(h),
                        None => d,
                    });
                }
            }
        }
        NfwSource::StatefulRules(out)
    } else if let Some(l) = source.rules_source_list {
        let mut ok = true;
        let mut target_types = Vec::new();
        for t in &l.target_types {
            match TargetType::parse(t) {
                Ok(t) => target_types.push(t),
                Err(e) => {
                    ok = false;
                    diags.push(err_at(src, t, e));
                }
            }
        }
        let list_type = match ListType::parse(&l.generated_rules_type) {
            Ok(t) => Some(t),
            Err(e) => {
                diags.push(err_at(src, &l.generated_rules_type, e));
                None
            }
        };
        for t in &l.targets {
            if let Err(e) = check_target(t) {
                ok = false;
                diags.push(err_at(src, t, e));
            }
        }
        if target_types.is_empty() && ok {
            diags.push(locate(
                Diagnostic::error("TargetTypes is empty")
                    .with_code("nfw")
                    .with_hint("list TLS_SNI, HTTP_HOST or both"),
                src,
                "TargetTypes",
            ));
            ok = false;
        }
        let list_type = list_type.filter(|_| ok)?;
        NfwSource::DomainList(DomainList {
            targets: l.targets,
            target_types,
            list_type,
        })
    } else {
        return None;
    };
    Some(NfwRuleGroup {
        name,
        rule_order,
        variables,
        source,
    })
}

fn nfw_word(s: &str) -> String {
    if s.eq_ignore_ascii_case("any") {
        "any".into()
    } else {
        s.to_string()
    }
}

fn render_stateful_rule(r: &StatefulRule) -> Result<String, crate::settings::ParseError> {
    use crate::settings::ParseError;
    let action = match r.action.as_str() {
        "PASS" | "DROP" | "ALERT" | "REJECT" => r.action.to_ascii_lowercase(),
        other => {
            return Err(ParseError {
                message: format!("unknown stateful rule Action '{other}'"),
                hint: Some("expected one of: PASS, DROP, ALERT, REJECT".into()),
            })
        }
    };
    let h = &r.header;
    if !STATEFUL_PROTOCOLS.contains(&h.protocol.as_str()) {
        let hint = match sekisho_diag::suggest(&h.protocol, STATEFUL_PROTOCOLS.iter().copied()) {
            Some(s) => format!("did you mean '{s}'?"),
            None => format!("expected one of: {}", STATEFUL_PROTOCOLS.join(", ")),
        };
        return Err(ParseError {
            message: format!("unknown Protocol '{}'", h.protocol),
            hint: Some(hint),
        });
    }
    let dir = match h.direction.as_str() {
        "FORWARD" => "->",
        "ANY" => "<>",
        other => {
            return Err(ParseError {
                message: format!("unknown Direction '{other}'"),
                hint: Some("expected FORWARD (->) or ANY (<>)".into()),
            })
        }
    };
    if !r.rule_options.iter().any(|o| o.keyword == "sid") {
        return Err(ParseError {
            message: "stateful rule has no sid option".into(),
            hint: Some("add {\"Keyword\": \"sid\", \"Settings\": [\"N\"]} to RuleOptions".into()),
        });
    }
    let opts: Vec<String> = r
        .rule_options
        .iter()
        .map(|o| {
            if o.settings.is_empty() {
                format!("{};", o.keyword)
            } else {
                format!("{}:{};", o.keyword, o.settings.join(","))
            }
        })
        .collect();
    Ok(format!(
        "{action} {} {} {} {dir} {} {} ({})",
        h.protocol.to_ascii_lowercase(),
        nfw_word(&h.source),
        nfw_word(&h.source_port),
        nfw_word(&h.destination),
        nfw_word(&h.destination_port),
        opts.join(" ")
    ))
}

/// Reads and validates a firewall policy JSON document (default actions, rule order, stream
/// exception policy), pushing located diagnostics. `None` when it is not usable.
pub fn parse_firewall_policy(
    src: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Option<NfwFirewallPolicy> {
    let doc: FirewallPolicyDoc = match serde_json::from_str(src.text()) {
        Ok(d) => d,
        Err(e) => {
            diags.push(json_error(src, &e));
            return None;
        }
    };
    let p = doc.firewall_policy.unwrap_or(doc.bare);
    let before = diags.iter().filter(|d| d.is_error()).count();
    let opts = p.stateful_engine_options;
    let rule_order = match opts.as_ref().and_then(|o| o.rule_order.clone()) {
        Some(w) => RuleOrder::parse(&w).unwrap_or_else(|e| {
            diags.push(err_at(src, &w, e));
            RuleOrder::Action
        }),
        None => RuleOrder::Action,
    };
    let stream_exception_policy = match opts.and_then(|o| o.stream_exception_policy) {
        Some(w) => StreamExceptionPolicy::parse(&w).unwrap_or_else(|e| {
            diags.push(err_at(src, &w, e));
            StreamExceptionPolicy::Drop
        }),
        None => StreamExceptionPolicy::Drop,
    };
    let words = p.stateful_default_actions.unwrap_or_default();
    let mut default_actions = Vec::new();
    let mut spans = Vec::new();
    let mut from = find_string(src.text(), "StatefulDefaultActions", 0).map_or(0, |r| r.end);
    for w in &words {
        let at = find_string(src.text(), w, from);
        if let Some(a) = &at {
            from = a.end;
        }
        match DefaultAction::parse(w) {
            Ok(a) => {
                default_actions.push(a);
                spans.push(at);
            }
            Err(e) => {
                let d = Diagnostic::error(e.message).with_code("default-action");
                let d = match at {
                    Some(a) => d.at_span(src, a),
                    None => d.in_file(src.name()),
                };
                diags.push(match e.hint {
                    Some(h) => d.with_hint(h),
                    None => d,
                });
            }
        }
    }
    for (i, e) in check_default_actions(&default_actions) {
        let d = Diagnostic::error(e.message).with_code("default-action");
        let d = match spans.get(i).cloned().flatten() {
            Some(a) => d.at_span(src, a),
            None => d.in_file(src.name()),
        };
        diags.push(match e.hint {
            Some(h) => d.with_hint(h),
            None => d,
        });
    }
    if rule_order == RuleOrder::Action && !default_actions.is_empty() {
        let d = Diagnostic::error(
            "StatefulDefaultActions are only allowed with RuleOrder STRICT_ORDER",
        )
        .with_code("default-action")
        .with_hint(
            "set StatefulEngineOptions.RuleOrder to STRICT_ORDER, or remove the default actions",
        );
        diags.push(locate(d, src, "StatefulDefaultActions"));
    }
    if let Some(refs) = &p.stateful_rule_group_references {
        let mut seen = std::collections::HashSet::new();
        for r in refs {
            if let Some(prio) = r.priority {
                if rule_order == RuleOrder::Strict && !seen.insert(prio) {
                    diags.push(locate(
                        Diagnostic::error(format!(
                            "two stateful rule group references have Priority {prio}"
                        ))
                        .with_code("nfw")
                        .with_hint("strict order needs a unique Priority per rule group"),
                        src,
                        "StatefulRuleGroupReferences",
                    ));
                }
            }
        }
    }
    let home_net = p
        .policy_variables
        .and_then(|v| v.rule_variables)
        .and_then(|m| m.get("HOME_NET").cloned())
        .and_then(|h| h.get("Definition").cloned())
        .and_then(|d| serde_json::from_value::<Vec<String>>(d).ok());
    let stateful_group_refs = p.stateful_rule_group_references.map_or(0, |r| r.len());
    if diags.iter().filter(|d| d.is_error()).count() > before {
        return None;
    }
    Some(NfwFirewallPolicy {
        rule_order,
        default_actions,
        stream_exception_policy,
        home_net,
        stateful_group_refs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_tuple_renders_as_reference() {
        let src = SourceFile::new(
            "rg.json",
            r#"{"RuleGroup":{"RulesSource":{"StatefulRules":[{
  "Action":"DROP",
  "Header":{"Protocol":"HTTP","Source":"$HOME_NET","SourcePort":"ANY",
            "Direction":"ANY","Destination":"$EXTERNAL_NET","DestinationPort":"ANY"},
  "RuleOptions":[{"Keyword":"msg","Settings":["\"this is a stateful drop rule\""]},
                 {"Keyword":"sid","Settings":["1234"]}]}]}}}"#,
        );
        let mut d = Vec::new();
        let g = parse_rule_group(&src, &mut d).unwrap();
        assert!(d.is_empty(), "{d:?}");
        let NfwSource::StatefulRules(r) = g.source else {
            panic!("wrong form")
        };
        assert_eq!(
            r,
            vec!["drop http $HOME_NET any <> $EXTERNAL_NET any (msg:\"this is a stateful drop rule\"; sid:1234;)"]
        );
    }

    #[test]
    fn five_tuple_without_sid_is_located() {
        let src = SourceFile::new(
            "rg.json",
            "{\"RulesSource\":{\"StatefulRules\":[\n {\"Action\":\"PASS\",\"Header\":{\"Protocol\":\"TCP\",\"Source\":\"ANY\",\"SourcePort\":\"ANY\",\"Direction\":\"FORWARD\",\"Destination\":\"ANY\",\"DestinationPort\":\"80\"},\"RuleOptions\":[]}]}}",
        );
        let mut d = Vec::new();
        let g = parse_rule_group(&src, &mut d).unwrap();
        assert_eq!(d.len(), 1);
        let loc = d[0].location.as_ref().unwrap();
        assert_eq!((loc.line, loc.column), (2, 3));
        assert_eq!(d[0].message, "stateful rule has no sid option");
        assert!(matches!(g.source, NfwSource::StatefulRules(ref v) if v.is_empty()));
    }

    #[test]
    fn rules_source_list_and_variables() {
        let src = SourceFile::new(
            "rg.json",
            r#"{"RuleGroup":{"RuleVariables":{"IPSets":{"HOME_NET":{"Definition":["10.0.0.0/16"]}},"PortSets":{"WEB":{"Definition":["80","443"]}}},
               "RulesSource":{"RulesSourceList":{"Targets":["evil.com"],"TargetTypes":["TLS_SNI","HTTP_HOST"],"GeneratedRulesType":"DENYLIST"}},
               "StatefulRuleOptions":{"RuleOrder":"STRICT_ORDER"}},
               "RuleGroupResponse":{"RuleGroupName":"deny"}}"#,
        );
        let mut d = Vec::new();
        let g = parse_rule_group(&src, &mut d).unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(g.name.as_deref(), Some("deny"));
        assert_eq!(g.rule_order, Some(RuleOrder::Strict));
        assert_eq!(g.variables.len(), 2);
        assert_eq!(g.variables[0].value, "[10.0.0.0/16]");
        assert_eq!(g.variables[1].kind, VarKind::Port);
        assert!(
            matches!(g.source, NfwSource::DomainList(ref l) if l.list_type == ListType::Denylist)
        );
    }

    #[test]
    fn firewall_policy_validation() {
        let src = SourceFile::new(
            "fp.json",
            "{\"FirewallPolicy\":{\"StatefulDefaultActions\":[\"aws:drop_strict\",\n \"aws:drop_established\"],\"StatefulEngineOptions\":{\"RuleOrder\":\"STRICT_ORDER\"}}}",
        );
        let mut d = Vec::new();
        assert!(parse_firewall_policy(&src, &mut d).is_none());
        assert_eq!(d.len(), 1);
        let loc = d[0].location.as_ref().unwrap();
        assert_eq!((loc.line, loc.column), (2, 2));
        let ok = SourceFile::new(
            "fp.json",
            r#"{"StatefulDefaultActions":["aws:drop_established","aws:alert_established"],"StatefulEngineOptions":{"RuleOrder":"STRICT_ORDER","StreamExceptionPolicy":"REJECT"}}"#,
        );
        let mut d = Vec::new();
        let p = parse_firewall_policy(&ok, &mut d).unwrap();
        assert_eq!(p.stream_exception_policy, StreamExceptionPolicy::Reject);
        assert_eq!(p.default_actions.len(), 2);
        assert_eq!(detect_kind(ok.text()), Some(NfwKind::FirewallPolicy));
    }
}
