//! `sekisho check` on YAML policies: rule errors written inline land on the policy file's
//! lines, NFW-style policy validation (priority under strict order, default actions), key
//! typos with did-you-mean hints, and the full example policy.

#[path = "support/check.rs"]
mod common;

use common::*;

#[test]
fn inline_rule_errors_point_into_the_policy_file() {
    assert_invalid(
        "examples/errors/inline-rules.yaml",
        r#"examples/errors/inline-rules.yaml:8:50: error: unknown keyword 'smtp.rcpt'
  |
8 |       alert smtp any any -> any any (msg:"rcpt"; smtp.rcpt; content:"x"; sid:1;)
  |                                                  ^^^^^^^^^
  hint: did you mean 'smtp.rcpt_to'?
examples/errors/inline-rules.yaml:9:17: error: invalid address '10.0.0.300': not an IP address
  |
9 |       alert tcp 10.0.0.300 any -> any any (msg:"x"; sid:2;)
  |                 ^^^^^^^^^^
  hint: use any, an IP, a CIDR (10.0.0.0/8), a range (10.0.0.1-10.0.0.9), $VAR, !x or a [list]
examples/errors/inline-rules.yaml:10:32: error: invalid port '70000': port is larger than 65535
   |
10 |       alert tcp any any -> any 70000 (msg:"x"; sid:3;)
   |                                ^^^^^
  hint: use any, a port 0-65535, a range (1024:65535, 1024:, :1023), $VAR, !x or a [list]
examples/errors/inline-rules.yaml:11:61: error: unterminated quote in 'content' value
   |
11 |       alert tcp any any -> any 25 (msg:"semicolon"; content:"a;b"; sid:4;)
   |                                                             ^^
  hint: escape ';' inside content as \; or |3B|
examples/errors/inline-rules.yaml:12:7: error: rule has no sid
   |
12 |       alert tcp any any -> any 25 (msg:"no sid"; content:"x";)
   |       ^^^^^
  hint: add a unique rule id, e.g. 'sid:1000001;' (ids from 1000000 are for local rules)
examples/errors/inline-rules.yaml:14:50: error: duplicate sid 6: first used on line 13
   |
14 |       alert tcp any any -> any 26 (msg:"second"; sid:6;)
   |                                                  ^^^^^
  hint: give every rule a unique sid; bump 'rev' instead when updating a rule
examples/errors/inline-rules.yaml:15:34: error: undefined variable '$MAIL_SERVERS' in rule sid 7 (destination address)
   |
15 |       alert tcp $HOME_NET any -> $MAIL_SERVERS 25 (msg:"x"; sid:7;)
   |                                  ^^^^^^^^^^^^^
  hint: define it under 'variables:' in the policy, e.g. MAIL_SERVERS: "[10.0.0.0/8]"
examples/errors/inline-rules.yaml: 7 errors, 0 warnings
"#,
    );
}

#[test]
fn priority_is_an_error_under_strict_order() {
    assert_invalid(
        "examples/errors/priority-strict.yaml",
        r#"examples/errors/priority-strict.yaml:6:85: error: the priority keyword is not allowed under rule_order: strict
  |
6 |       drop http any any -> any any (msg:"no curl"; http.user_agent; content:"curl"; priority:1; sid:10;)
  |                                                                                     ^^^^^^^^^^
  hint: remove it: strict order evaluates groups in order and rules in file order
examples/errors/priority-strict.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn at_most_one_drop_default_action() {
    assert_invalid(
        "examples/errors/two-drop-defaults.yaml",
        r#"examples/errors/two-drop-defaults.yaml:3:54: error: at most one drop default action is allowed, found 'aws:drop_strict' and 'aws:drop_established'
  |
3 | default_actions: [aws:drop_strict, aws:alert_strict, aws:drop_established]
  |                                                      ^^^^^^^^^^^^^^^^^^^^
  hint: keep one drop_* action; pair it with its alert_* twin to log the drops
examples/errors/two-drop-defaults.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn established_and_app_layer_families_do_not_mix() {
    assert_invalid(
        "examples/errors/mixed-families.yaml",
        r#"examples/errors/mixed-families.yaml:3:37: error: default actions 'aws:drop_established' and 'aws:alert_established_app_layer' cannot exist together: the established and app-layer families cannot be mixed
  |
3 | default_actions: [drop_established, alert_established_app_layer]
  |                                     ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  hint: use drop_established with alert_established, or the *_app_layer* actions together
examples/errors/mixed-families.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn default_actions_need_strict_order() {
    assert_invalid(
        "examples/errors/defaults-action-order.yaml",
        r#"examples/errors/defaults-action-order.yaml:3:1: error: default_actions are only allowed with rule_order: strict
  |
3 | default_actions: [drop_established]
  | ^^^^^^^^^^^^^^^
  hint: set 'rule_order: strict', or remove default_actions: under action order, traffic no rule decided passes
examples/errors/defaults-action-order.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn unknown_key_gets_did_you_mean() {
    assert_invalid(
        "examples/errors/unknown-key.yaml",
        r#"examples/errors/unknown-key.yaml:5:5: error: unknown key 'rulez' in rule_groups[0]
  |
5 |     rulez: ../egress/rules/mail.rules
  |     ^^^^^
  hint: did you mean 'rules'? expected one of: name, rules, rules_text, domain_list, nfw_rule_group
examples/errors/unknown-key.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn unknown_setting_values_get_did_you_mean() {
    assert_invalid(
        "examples/errors/unknown-setting.yaml",
        r#"examples/errors/unknown-setting.yaml:2:17: error: unknown engine_profile 'suricata8'
  |
2 | engine_profile: suricata8
  |                 ^^^^^^^^^
  hint: did you mean 'suricata-8'? expected one of: suricata-8, aws-nfw
examples/errors/unknown-setting.yaml:3:13: error: unknown rule_order 'strikt'
  |
3 | rule_order: strikt
  |             ^^^^^^
  hint: did you mean 'strict'? expected one of: strict, action
examples/errors/unknown-setting.yaml: 2 errors, 0 warnings
"#,
    );
}

#[test]
fn missing_rules_file_is_located_at_its_path() {
    let (code, _, stderr) = check(&["examples/errors/missing-rules-file.yaml"]);
    assert_eq!(code, 1);
    let expected_head = "examples/errors/missing-rules-file.yaml:4:12: error: cannot read rules file 'examples/errors/rules/nope.rules': ";
    assert!(stderr.starts_with(expected_head), "{stderr}");
    assert!(stderr.contains(
        "  |\n4 |     rules: rules/nope.rules\n  |            ^^^^^^^^^^^^^^^^\n  hint: paths are relative to the policy file's directory\n"
    ), "{stderr}");
}

#[test]
fn a_group_has_exactly_one_source() {
    assert_invalid(
        "examples/errors/two-sources.yaml",
        r#"examples/errors/two-sources.yaml:5:5: error: rule group 'mixed' has 2 rules sources (rules, rules_text); exactly one is allowed
  |
5 |     rules_text: |
  |     ^^^^^^^^^^
  hint: give each group one of: rules, rules_text, domain_list, nfw_rule_group
examples/errors/two-sources.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn sids_are_unique_across_groups() {
    assert_invalid(
        "examples/errors/cross-group-sid.yaml",
        r#"examples/errors/cross-group-sid.yaml:10:51: error: duplicate sid 1000002: first used at examples/egress/rules/mail.rules:5
   |
10 |       alert smtp any any -> any any (msg:"again"; sid:1000002;)
   |                                                   ^^^^^^^^^^^
  hint: each (gid, sid) must be unique across the policy; pick an unused sid
examples/errors/cross-group-sid.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn imported_group_must_use_the_policy_rule_order() {
    assert_invalid(
        "examples/errors/nfw-rule-order.yaml",
        r#"examples/nfw/denylist-action-order.json:10:42: error: rule group declares RuleOrder DEFAULT_ACTION_ORDER but the policy uses rule_order: strict
   |
10 |     "StatefulRuleOptions": {"RuleOrder": "DEFAULT_ACTION_ORDER"}
   |                                          ^^^^^^^^^^^^^^^^^^^^^^
  hint: NFW requires every stateful rule group to use the policy's rule order
examples/errors/nfw-rule-order.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn the_egress_example_is_valid_and_prints_in_strict_order() {
    let (code, stdout, stderr) = check(&["--print-rules", "examples/egress/policy.yaml"]);
    assert_eq!(
        stderr,
        "examples/egress/policy.yaml: ok (4 groups, 16 rules)\n"
    );
    assert_eq!(code, 0);
    let headers: Vec<&str> = stdout.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# policy: egress-fw (rule_order: strict, engine_profile: suricata-8)",
            "# firewall rules: examples/egress/fw.rules (evaluated first, in file order)",
            "# group: mail (examples/egress/rules/mail.rules)",
            "# group: smtp-hygiene",
            "# group: web (allowlist generated from a domain list; sids local to this group)",
            "# group: imported (NFW StatefulRules from examples/egress/nfw/rg.json)",
            "# default actions (applied after all groups to traffic no rule decided):",
            "#   aws:drop_established: drop packets of established flows no rule decided; handshakes pass (silent)",
            "#   aws:alert_established: alert on packets of established flows no rule decided",
        ]
    );
    let rules: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rules.len(), 16);
    // Strict order: firewall rules, then groups in file order; generated rules without priority.
    assert!(
        rules[0].starts_with("drop:flow,alert tcp:all $HOME_NET any -> $EXTERNAL_NET [139,445] ")
    );
    assert!(rules[3].contains("sid:1000001;"));
    // The relays' pass is packet-scoped: a flow-wide `pass smtp` here would be the pass trap
    // (a `pass-trap` warning), blinding sid 1000001 to RCPT TO.
    assert!(
        rules[5].starts_with("pass:packet smtp $MAIL_RELAYS any -> $EXTERNAL_NET $SMTP_PORTS "),
        "{}",
        rules[5]
    );
    assert_eq!(
        rules[8],
        "pass tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; dotprefix; content:\".example.com\"; nocase; endswith; msg:\"matching TLS allowlisted FQDNs\"; flow:to_server, established; sid:1; rev:1;)"
    );
    assert_eq!(
        rules[13],
        "drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:\"|0d 0a|\"; startswith; msg:\"not matching any HTTP allowlisted FQDNs\"; flow:to_server, established; sid:6; rev:1;)"
    );
    assert!(rules.iter().all(|r| !r.contains("priority")));
    assert!(rules[14].starts_with("pass dns $HOME_NET any -> $DNS_RESOLVERS 53 "));
}

#[test]
fn action_order_sorts_by_action_class_then_priority() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        "rule_groups:\n  - name: a\n    rules_text: |\n      alert tcp any any -> any 1 (msg:\"a\"; sid:1;)\n      drop tcp any any -> any 2 (msg:\"d3\"; sid:2;)\n      drop tcp any any -> any 3 (msg:\"d1\"; priority:1; sid:3;)\n  - name: b\n    rules_text: |\n      pass tcp any any -> any 4 (msg:\"p\"; sid:4;)\n      reject tcp any any -> any 5 (msg:\"r\"; sid:5;)\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&["--print-rules", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let order: Vec<&str> = stdout
        .lines()
        .map(|l| match l.find("sid:") {
            Some(i) => &l[i..i + 5],
            None => l,
        })
        .collect();
    assert_eq!(
        order,
        [
            "# policy: sekisho (rule_order: action, engine_profile: suricata-8)",
            "# group: b",
            "sid:4",
            "# group: a",
            "sid:3",
            "sid:2",
            "# group: b",
            "sid:5",
            "# group: a",
            "sid:1",
        ]
    );
}

#[test]
fn policy_json_output() {
    let (code, stdout, _) = check(&["--format", "json", "examples/errors/priority-strict.yaml"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["files"][0]["kind"], "policy");
    assert_eq!(v["files"][0]["valid"], false);
    assert_eq!(v["diagnostics"][0]["code"], "priority-strict");
    assert_eq!(
        v["diagnostics"][0]["file"],
        "examples/errors/priority-strict.yaml"
    );
    assert_eq!(v["diagnostics"][0]["line"], 6);
    assert_eq!(v["diagnostics"][0]["column"], 85);
}

#[test]
fn firewall_rule_shape_and_nfw_profile_warnings() {
    assert_invalid(
        "examples/errors/firewall-rules.yaml",
        r#"examples/errors/bad-fw.rules:2:1: error: firewall rules need accept, drop or reject with an explicit scope and a hook
  |
2 | accept tcp any any -> any any (msg:"no scope, no hook"; sid:1;)
  | ^^^^^^
  hint: e.g. 'accept:hook tcp:all any any -> any any (sid:1;)' or 'drop:flow tls:client_hello_done ...'
examples/errors/bad-fw.rules:2:1: warning: AWS Network Firewall has no Suricata 8 firewall mode; under engine_profile aws-nfw these rules have no NFW equivalent
  |
2 | accept tcp any any -> any any (msg:"no scope, no hook"; sid:1;)
  | ^^^^^^
examples/errors/firewall-rules.yaml:7:7: error: 'accept' is only valid in firewall rules
  |
7 |       accept:flow tcp:all any any -> any any (msg:"belongs in firewall_rules"; sid:2;)
  |       ^^^^^^
  hint: move the rule to the policy's firewall_rules file, or use pass
examples/errors/firewall-rules.yaml:8:50: error: AWS Network Firewall runs Suricata 7.0, which has no 'smtp.helo' keyword (added in Suricata 8.0)
  |
8 |       alert smtp any any -> any any (msg:"helo"; smtp.helo; content:"x"; sid:3;)
  |                                                  ^^^^^^^^^
  hint: Network Firewall runs Suricata 7.0, which has no smtp.helo buffer; use engine_profile: suricata-8, or (weaker) match the raw stream: content:"EHLO "; nocase; (raw content also sees pipelined commands, and nothing once a pass rule has passed the flow)
examples/errors/firewall-rules.yaml: 3 errors, 1 warning
"#,
    );
}

#[test]
fn drop_strict_with_domain_lists_is_a_warning() {
    let (code, _, stderr) = check(&["examples/errors/drop-strict-domain-list.yaml"]);
    assert_eq!(
        stderr,
        r#"examples/errors/drop-strict-domain-list.yaml:3:19: warning: aws:drop_strict drops TCP handshakes, so the domain list rules of 'web' never see a TLS ClientHello or HTTP request
  |
3 | default_actions: [drop_strict]
  |                   ^^^^^^^^^^^
  hint: use drop_established (or an *_app_layer* variant) with domain lists, as AWS recommends
examples/errors/drop-strict-domain-list.yaml: ok (1 group, 2 rules, 1 warning)
"#
    );
    assert_eq!(code, 0);
}

#[test]
fn yaml_mistakes_get_plain_messages() {
    let dir = tempfile::tempdir().unwrap();
    let tag = dir.path().join("tag.yaml");
    std::fs::write(&tag, "variables:\n  EXTERNAL_NET: !$HOME_NET\n").unwrap();
    let (code, _, stderr) = check(&[tag.to_str().unwrap()]);
    assert_eq!(code, 1);
    let shown = stderr.replace(&tag.display().to_string(), "tag.yaml");
    assert_eq!(
        shown,
        "tag.yaml:2:17: error: variables.EXTERNAL_NET: unquoted value starting with '!' is read as a YAML tag\n  |\n2 |   EXTERNAL_NET: !$HOME_NET\n  |                 ^\n  hint: quote the value, e.g. \"!$HOME_NET\"\ntag.yaml: 1 error, 0 warnings\n"
    );
    let missing = dir.path().join("m.yaml");
    std::fs::write(&missing, "rule_groups:\n  - rules: x.rules\n").unwrap();
    let (code, _, stderr) = check(&[missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    let shown = stderr.replace(&missing.display().to_string(), "m.yaml");
    assert_eq!(
        shown,
        "m.yaml:2:5: error: missing key 'name' in rule_groups[0]\n  |\n2 |   - rules: x.rules\n  |     ^\n  hint: add 'name: ...' here\nm.yaml: 1 error, 0 warnings\n"
    );
}

#[test]
fn self_referential_variable_is_reported_once_at_its_definition() {
    assert_invalid(
        "examples/errors/variable-loop.yaml",
        r#"examples/errors/variable-loop.yaml:4:13: error: variable 'HOME_NET' refers to itself
  |
4 |   HOME_NET: "$HOME_NET"
  |             ^^^^^^^^^^^
  hint: a variable cannot contain itself; define it from addresses or ports, or from other variables
examples/errors/variable-loop.yaml: 1 error, 0 warnings
"#,
    );
}

#[test]
fn variables_in_a_cycle_are_each_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cycle.yaml");
    std::fs::write(
        &p,
        "variables:\n  A_NET: \"$B_NET\"\n  B_NET: \"[$A_NET, 10.0.0.0/8]\"\n  C_NET: \"!$A_NET\"\n",
    )
    .unwrap();
    let (code, _, stderr) = check(&[p.to_str().unwrap()]);
    assert_eq!(code, 1);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].ends_with(":2:10: error: variable 'A_NET' refers to itself through '$B_NET'"),
        "{stderr}"
    );
    assert!(
        errors[1].ends_with(":3:10: error: variable 'B_NET' refers to itself through '$A_NET'"),
        "{stderr}"
    );
}

#[test]
fn every_unknown_key_is_reported_in_one_pass() {
    assert_invalid(
        "examples/errors/unknown-keys.yaml",
        r#"examples/errors/unknown-keys.yaml:3:1: error: unknown key 'rule_ordr'
  |
3 | rule_ordr: strict
  | ^^^^^^^^^
  hint: did you mean 'rule_order'? expected one of: name, availability_zone, variables, engine_profile, rule_order, default_actions, stream_exception_policy, exception_policy, firewall_rules, rule_groups, logging
examples/errors/unknown-keys.yaml:4:1: error: unknown key 'defalt_actions'
  |
4 | defalt_actions: [drop_established]
  | ^^^^^^^^^^^^^^
  hint: did you mean 'default_actions'? expected one of: name, availability_zone, variables, engine_profile, rule_order, default_actions, stream_exception_policy, exception_policy, firewall_rules, rule_groups, logging
examples/errors/unknown-keys.yaml:7:5: error: unknown key 'rulez' in rule_groups[0]
  |
7 |     rulez: ../egress/rules/mail.rules
  |     ^^^^^
  hint: did you mean 'rules'? expected one of: name, rules, rules_text, domain_list, nfw_rule_group
examples/errors/unknown-keys.yaml:9:3: error: unknown key 'formt' in logging
  |
9 |   formt: nfw
  |   ^^^^^
  hint: did you mean 'format'? expected one of: format, dir
examples/errors/unknown-keys.yaml: 4 errors, 0 warnings
"#,
    );
}
